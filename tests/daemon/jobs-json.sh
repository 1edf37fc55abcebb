#!/bin/sh
# vmshiftd: GET /api/v1/jobs is written by the daemon's own JSON writer
# (daemon/jobs-json.c), streamed in chunks; its bytes must be json-c's, those
# of `vmshift --json jobs` on the same journal, for every odd thing a journal
# can hold (escapes, bytes that are not UTF-8, specs and results that are
# not plain JSON, schedules), whole and filtered. (Jobs of the journal that
# `vmshift jobs` would show otherwise than the daemon -- running ones of a
# dead process, unverified locations it asks a backend about -- are not
# what this compares.)
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
command -v python3 >/dev/null || skip_all "python3 not installed"
echo "1..11"

V jobs >/dev/null 2>&1 # creates the journal
python3 - "$T/state/journal.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time())
specs = [
    '{"kind": "migrate", "vm": "w/1", "dest_path": null, "disk_paths": {}, "networks": [], "n": 2.50, "e": 2E+3, "neg": -7, "z": 0, "f": -0.0, "t": true, "u": false}',
    '{"nested": {"a": [1, [2, {"b": []}], {}], "s": "tab\\t nl\\n q\\" bs\\\\ sl\\/ bf\\b\\f"}}',
    '{"uni": "caf\\u00e9 \\ud83d\\ude00", "ctl": "\\u0001"}',  # \u escapes: json-c's own
    '{"dup": 1, "x": 2, "dup": 3}',                               # duplicate key
    '{"big": 123456789012345678901, "neg0": -0, "lead": 007}',    # json-c's integers
    '{"huge": 1e400, "small": 1e-400}',
    '{"ok": 1} trailing',
    '/* comment */ {"c": 1}',
    '', 'null', 'not json at all', '[1, 2, "three"]', '42', '"just a string"',
    '{' * 40 + '}' * 40, '{"a": [' + '[' * 20 + ']' * 20 + ']}',
    '{"raw": "é ü 中文", "sp" : [ 1 ,2 ] }',
    None,
]
results = ['{"disks": "1"}', 'null', '', '[]', '{}', 'garbage', None, '{"x": {"y": [1.0, 2]}}']
texts = ['plain', 'quote " back \\ slash / tab \t nl \n cr \r bs \b ff \f bell \a esc \x1b del \x7f',
         'café — 中文 😀', None]
rows = []
for i in range(60):
    t = texts[i % len(texts)]
    bad = (b'bad \xff\xfe utf8 \xc3' if i % 7 == 3 else None)
    rows.append(("migrate" if i % 2 else "migrate-storage", "demo", ("vm%d" % i) if i % 5 else (t or "v"),
                 specs[i % len(specs)], ["succeeded", "failed", "repaired", "cancelled", "succeeded"][i % 5],
                 (t or "done") if i % 3 else "transfer", i, "x", now - i, now - i,
                 None if i % 4 == 0 else now - i + 30,
                 ("E%d" % i) if i % 5 == 1 else None, (t if i % 10 == 1 else None),
                 "beta" if i % 6 else None, bad if bad else (t if i % 4 == 2 else None),
                 results[i % len(results)], "alpha", t,
                 [100.0, -1.0, 33.333333333333336, 0.1, 1e20, 5e-7, 0.0, 12.5][i % 8],
                 (1 << 40) + i, (1 << 41) if i % 2 else 0, i % 2, 1, t if i % 9 == 0 else None))
db.executemany("INSERT INTO jobs(kind, backend, vm, spec, state, phase, pid, pid_start, created, "
               "started, ended, error_code, error_message, location_host, location_detail, results, "
               "source_host, source_path, percent, bytes_done, bytes_total, cancel_requested, "
               "location_verified, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
ids = [r[0] for r in db.execute("SELECT id FROM jobs ORDER BY id")]
for k, st in enumerate(["scheduled", "waiting", "released", "missed"]):
    db.execute("INSERT INTO schedules(job, switchover_at, mode, state, changed) VALUES (?,?,?,?,?)",
               (ids[3 + 7 * k], now + 3600 * (k - 1), "copy-ahead" if k % 2 else "start-at", st, now))
db.commit()
PY
[ $? -eq 0 ] && ok "a journal of 60 odd jobs, 4 with schedules" || notok "filling the journal"

start_daemon && ok "vmshiftd started" || notok "vmshiftd did not start" "$(cat "$T/d.log")"

# $1: the daemon's listing, $2: the command's; the daemon's adds total, limit, offset
same() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
d, c = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
if not c.endswith(b"\n}\n"):
    sys.exit("the command's output does not end as json-c's: %r" % c[-20:])
head = c[:-3] + b",\n  \"total\":"
if not d.startswith(head):
    n = next((i for i in range(min(len(d), len(head))) if d[i] != head[i]), min(len(d), len(head)))
    sys.exit("differ at byte %d: daemon %r, command %r" % (n, d[max(0, n - 60):n + 40],
                                                           head[max(0, n - 60):n + 40]))
tail = d[len(head):]
if not tail.endswith(b"\n}") or tail.count(b"\n") != 3:
    sys.exit("the daemon's tail: %r" % tail)
if sys.argv[3] and not tail.startswith(sys.argv[3].encode() + b","):
    sys.exit("total: %r, want %s" % (tail, sys.argv[3]))
PY
}

api -D "$T/h1" -o "$T/d1" 'http://x/api/v1/jobs?limit=10000'
V --json jobs >"$T/c1"
if out=$(same "$T/d1" "$T/c1" 60 2>&1); then ok "GET /api/v1/jobs: byte for byte vmshift --json jobs ($(wc -c <"$T/d1") bytes)"
else notok "GET /api/v1/jobs differs from vmshift --json jobs" "$out"; fi

grep -qi '^transfer-encoding: chunked' "$T/h1" && ok "sent chunked" || notok "not chunked" "$(cat "$T/h1")"
grep -c '"switchover":{' "$T/d1" | grep -qx 4 && grep -q '"text":"switchover at ' "$T/d1" \
    && ok "the 4 schedules are in the listing" || notok "schedules missing" "$(grep -A6 switchover "$T/d1" | head -20)"

api -o "$T/d2" 'http://x/api/v1/jobs?limit=10000&state=failed'
V --json jobs --state failed >"$T/c2"
if out=$(same "$T/d2" "$T/c2" 12 2>&1); then ok "?state=failed: byte for byte vmshift --json jobs --state failed"
else notok "?state=failed differs" "$out"; fi

api -o "$T/d3" 'http://x/api/v1/jobs?limit=10000&backend=none'
V --json jobs --backend none >"$T/c3"
if out=$(same "$T/d3" "$T/c3" 0 2>&1); then ok "no match: byte for byte (an empty list)"
else notok "empty listing differs" "$out"; fi

# the pages together are the whole, in order
: >"$T/ids"
for off in 0 25 50; do
    api "http://x/api/v1/jobs?limit=25&offset=$off" |
        python3 -c 'import json,sys; [print(j["id"]) for j in json.load(sys.stdin)["jobs"]]' >>"$T/ids"
done
python3 -c 'import json,sys; [print(j["id"]) for j in json.load(open(sys.argv[1]))["jobs"]]' "$T/d1" >"$T/ids.all"
cmp -s "$T/ids" "$T/ids.all" && ok "three pages of 25 are the listing of 60" || notok "pages differ" "$(diff "$T/ids" "$T/ids.all" | head)"

# an HTTP/1.0 client, which cannot take chunks, gets it whole, ended by the close
python3 - "$SOCK" >"$T/d4" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /api/v1/jobs?limit=10000 HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while True:
    c = s.recv(1 << 16)
    if not c:
        break
    data += c
head, _, body = data.partition(b"\r\n\r\n")
if b"transfer-encoding" in head.lower():
    sys.exit("chunked to HTTP/1.0")
sys.stdout.buffer.write(body)
PY
cmp -s "$T/d1" "$T/d4" && ok "HTTP/1.0: the same bytes, not chunked" || notok "HTTP/1.0 answer differs" "$(wc -c "$T/d1" "$T/d4")"

# a client that goes away in the middle of the listing: the daemon carries on
python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /api/v1/jobs?limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(2000)
s.close()
PY
api -o "$T/d5" 'http://x/api/v1/jobs?limit=10000'
cmp -s "$T/d1" "$T/d5" && ok "a client gone mid-listing: the next listing is whole" || notok "listing after a client went away" "$(wc -c "$T/d5")"

# stopped cleanly (under ASan: no leak of the listings' pieces)
kill "$DPID"; wait "$DPID"; rc=$?; DPID=
if [ $rc -eq 0 ] && ! grep -q "Sanitizer" "$T/d.log"; then ok "vmshiftd stops cleanly (exit 0)"
else notok "vmshiftd's stop: exit $rc" "$(grep -A12 Sanitizer "$T/d.log" | head -30)"; fi
