#!/bin/sh
# vmshiftd end to end (#17), on the skeleton backend: the API's documents
# equal the command's --json ones; `vmshift migrate` through the daemon
# (followed, --detach, a failure, Ctrl-C detaching); cancel from the
# command line; the /events stream; /metrics against the journal; the
# OpenAPI document against the real answers; a daemon killed mid-job and
# restarted repairs the job. Every move is checked in the skeleton peer's
# state file and in the journal through `vmshift job show`.
set -u
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
JSON=$B/tests/host/json-check

echo "1..35"
start_daemon && ok "vmshiftd listens on its socket" || { notok "vmshiftd did not start" "$(cat "$T/d.log")"; exit 1; }

# ---- the documents are the command's --json ----------------------------------------
same_json() {
    what=$1; path=$2; shift 2
    api "http://localhost$path" >"$T/a.json" 2>"$T/a.err"
    V --json "$@" >"$T/c.json" 2>/dev/null
    if python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:3]); sys.exit(a!=b)' \
        "$T/a.json" "$T/c.json"; then ok "GET $path equals vmshift --json $*"
    else notok "GET $path differs from vmshift --json $*" "$(head -c 300 "$T/a.json")" "$(head -c 300 "$T/c.json")"; fi
}
same_json backends /api/v1/backends backends
same_json hosts /api/v1/hosts hosts
same_json vms "/api/v1/vms?backend=demo" vms --backend demo
same_json rating "/api/v1/vms/web1/rating?group=pair" rate web1 --group pair

# ---- migrate through the daemon, followed ------------------------------------------
VD migrate web1 --to beta >"$T/out" 2>"$T/err"; rc=$?
id=$(V --json jobs --vm web1 | "$JSON" jobs.0.id)
if [ $rc -eq 0 ] && [ "$(peer_host demo web1)" = beta ] && grep -q "in vmshiftd" "$T/err" \
    && grep -q "phase switchover" "$T/err"; then ok "migrate through vmshiftd: exit 0, phases shown, peer has web1 on beta"
else notok "migrate through vmshiftd (rc $rc, peer $(peer_host demo web1))" "$(cat "$T/err")"; fi
V --json job show "$id" >"$T/out"
pid=$("$JSON" pid <"$T/out")
if [ "$("$JSON" state <"$T/out")" = succeeded ] && [ "$pid" = "$DPID" ] \
    && grep -q "submitted by root (uid 0" "$T/out"; then ok "journal: job $id succeeded, run by the daemon (pid $pid), submitted by root"
else notok "journal of job $id (daemon pid $DPID)" "$(head -c 600 "$T/out")"; fi

# --detach: the id at once; the job goes on in the daemon
VD migrate web1 --to alpha --detach >"$T/out" 2>"$T/err"; rc=$?
did=$(cat "$T/out")
st=$(wait_job "$did" 30)
if [ $rc -eq 0 ] && [ "$did" -gt "$id" ] 2>/dev/null && [ "$st" = succeeded ] && [ "$(peer_host demo web1)" = alpha ]; then
    ok "--detach prints job $did; it succeeds in the daemon; peer has web1 on alpha"
else notok "--detach (rc $rc, id '$did', state $st, peer $(peer_host demo web1))" "$(cat "$T/err")"; fi

# a failure: the job's exit status and one line
VD migrate db1 --to nowhere >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(peer_host demo db1)" = alpha ]; then ok "a bad destination: exit 1, one line, db1 stays on alpha"
else notok "bad destination (rc $rc)" "$(cat "$T/err")"; fi
VD migrate db1 --to beta --json >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$("$JSON" state <"$T/out")" = succeeded ] && [ "$("$JSON" location.host <"$T/out")" = beta ] \
    && [ "$(peer_host demo db1)" = beta ]; then ok "--json through the daemon: the job's document, db1 on beta"
else notok "--json through the daemon (rc $rc)" "$(cat "$T/err")" "$(head -c 300 "$T/out")"; fi

# --ip goes to the daemon (the request's "ips", no bypass): the skeleton has
# no guest customization, and the daemon's refusal is the command's own line
VD migrate web1 --to beta --ip eth0=192.0.2.5/24 >"$T/out" 2>"$T/err"; rc=$?
V migrate web1 --to beta --ip eth0=192.0.2.5/24 --daemon no >"$T/out2" 2>"$T/err2"; rc2=$?
code=$(api -o "$T/r" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"kind":"migrate","vm":"web1","to":"beta","ips":{"eth0":"192.0.2.5/24"}}' "http://localhost/api/v1/jobs")
# the client asks the daemon it is told of, even with --ip (none there: it says so)
V migrate web1 --to beta --ip eth0=192.0.2.5/24 --daemon "$T/none.sock" >"$T/out3" 2>"$T/err3"; rc3=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "backend demo does not support --ip" "$T/err" \
    && cmp -s "$T/err" "$T/err2" && [ $rc2 -eq $rc ] && [ "$code" -ge 400 ] && grep -q "does not support --ip" "$T/r" \
    && [ $rc3 -eq 1 ] && grep -q "vmshiftd at $T/none.sock" "$T/err3" && [ "$(peer_host demo web1)" = alpha ]; then
    ok "--ip through vmshiftd: POST /jobs with ips answers HTTP $code 'does not support --ip'; the client's one line equals the standalone command's; with no daemon at --daemon it says so; web1 stays on alpha"
else notok "--ip through vmshiftd (rc $rc/$rc2/$rc3, HTTP $code, peer $(peer_host demo web1))" "$(cat "$T/err" "$T/err2" "$T/err3" "$T/r")"; fi
code=$(api -o "$T/r" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"kind":"migrate","vm":"web1","to":"beta","ips":["eth0=192.0.2.5/24"]}' "http://localhost/api/v1/jobs")
if [ "$code" = 400 ] && grep -q "'ips' must be an object of strings" "$T/r"; then ok "POST /jobs with ips not an object: 400, naming 'ips'"
else notok "POST /jobs with a bad ips (HTTP $code)" "$(cat "$T/r")"; fi

# ---- events: a stream open during a job sees it run and succeed -------------------
api -N "http://localhost/api/v1/events" >"$T/events" 2>/dev/null &
epid=$!; pids="$pids $epid"
sleep 0.5
VD migrate app1 --to beta >/dev/null 2>&1
sleep 1
kill $epid 2>/dev/null
aid=$(V --json jobs --vm app1 | "$JSON" jobs.0.id)
if grep -q "^event: job" "$T/events" && grep "^data: " "$T/events" | grep "\"id\":$aid," | grep -q '"state":"running"' \
    && grep "^data: " "$T/events" | grep "\"id\":$aid," | grep -q '"state":"succeeded"'; then ok "/events streamed job $aid running, then succeeded"
else notok "/events" "$(head -c 600 "$T/events")"; fi

# ---- cancel: from the command line (the journal) and through the API ---------------
VD migrate slow:big1 --to beta --detach >"$T/out" 2>"$T/err"; cid=$(cat "$T/out")
sleep 1
V job cancel "$cid" >/dev/null 2>&1
st=$(wait_job "$cid" 30)
if [ "$st" = cancelled ] && [ "$(peer_host slow big1)" = alpha ]; then ok "vmshift job cancel stops the daemon's job $cid; big1 stays on alpha"
else notok "cancel from the command line (state $st, peer $(peer_host slow big1))" "$(cat "$T/err")"; fi

# Ctrl-C detaches: the command ends, the job runs on
(exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" \
    --daemon "$SOCK" migrate slow:big2 --to beta >"$T/m2.out" 2>"$T/m2.err") &
mpid=$!; pids="$pids $mpid"
i=0; while [ $i -lt 100 ] && ! grep -q "phase transfer" "$T/m2.err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $mpid; wait $mpid; rc=$?
kid=$(V --json jobs --vm big2 | "$JSON" jobs.0.id)
st=$(V --json job show "$kid" | "$JSON" state)
if [ $rc -ne 0 ] && grep -q "detached from job $kid" "$T/m2.err" && [ "$st" = running ]; then ok "Ctrl-C detaches: exit $rc, job $kid still running"
else notok "Ctrl-C (rc $rc, state $st)" "$(cat "$T/m2.err")"; fi
api -X POST -H 'Content-Type: application/json' -d '{}' "http://localhost/api/v1/jobs/$kid/cancel" >"$T/out" 2>&1
st=$(wait_job "$kid" 30)
if [ "$st" = cancelled ] && [ "$(peer_host slow big2)" = alpha ] \
    && V --json job show "$kid" | grep -q "cancel requested by root"; then ok "POST /jobs/$kid/cancel: cancelled, logged with who asked, big2 on alpha"
else notok "API cancel (state $st)" "$(cat "$T/out")"; fi

# --cancel-on-interrupt: Ctrl-C cancels and the command reports the job's end
(exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" \
    --daemon "$SOCK" migrate slow:big2 --to beta --cancel-on-interrupt >"$T/m3.out" 2>"$T/m3.err") &
mpid=$!; pids="$pids $mpid"
i=0; while [ $i -lt 100 ] && ! grep -q "phase transfer" "$T/m3.err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $mpid; wait $mpid; rc=$?
kid=$(V --json jobs --vm big2 | "$JSON" jobs.0.id)
st=$(V --json job show "$kid" | "$JSON" state)
if [ $rc -eq 1 ] && [ "$st" = cancelled ] && grep -q "job $kid cancelled" "$T/m3.err" && [ "$(peer_host slow big2)" = alpha ]; then
    ok "--cancel-on-interrupt: Ctrl-C cancels job $kid, exit 1"
else notok "--cancel-on-interrupt (rc $rc, state $st)" "$(cat "$T/m3.err")"; fi

# ---- repair modes through the API: dismiss needs a reason ---------------------------
code=$(api -o "$T/r" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"mode": "dismiss"}' \
    "http://localhost/api/v1/jobs/$cid/repair")
if [ "$code" = 400 ] && grep -q "needs a 'reason'" "$T/r" && [ "$(V --json job show "$cid" | "$JSON" state)" = cancelled ]; then
    ok "POST /jobs/$cid/repair {mode: dismiss} without a reason: 400, the job stays cancelled"
else notok "dismiss without reason (HTTP $code)" "$(cat "$T/r")"; fi
code=$(api -o "$T/r" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"mode": "dismiss", "reason": "checked by hand"}' "http://localhost/api/v1/jobs/$cid/repair")
st=$(wait_job "$cid" 30)
if [ "$code" = 201 ] && [ "$st" = repaired ] && [ "$(peer_host slow big1)" = alpha ] \
    && V --json job show "$cid" | grep -q "repair (dismiss: checked by hand) by root" \
    && V --json job show "$cid" | grep -q "dismissed: checked by hand"; then
    ok "POST /jobs/$cid/repair {mode: dismiss, reason}: repaired, the reason and who in the log, big1 on alpha"
else notok "dismiss (HTTP $code, state $st, peer $(peer_host slow big1))" "$(cat "$T/r")" "$(V job show "$cid" | tail -5)"; fi

# ---- metrics agree with the journal ------------------------------------------------
api "http://localhost/metrics" >"$T/metrics"
nsucc=$(V --json jobs --state succeeded --backend demo | grep -c '"pid"')
ncanc=$(V --json jobs --state cancelled --backend slow | grep -c '"pid"')
if grep -qx "vmshift_jobs{state=\"succeeded\",backend=\"demo\"} $nsucc" "$T/metrics" \
    && grep -qx "vmshift_jobs{state=\"cancelled\",backend=\"slow\"} $ncanc" "$T/metrics" \
    && grep -qx 'vmshift_backend_reachable{backend="demo"} 1' "$T/metrics" \
    && grep -q '^vmshift_migration_duration_seconds_count{backend="demo"} ' "$T/metrics" \
    && grep -q '^vmshift_downtime_seconds_bucket{backend="demo",le="+Inf"} ' "$T/metrics"; then
    ok "/metrics: $nsucc succeeded demo jobs, $ncanc cancelled slow ones, reachability, histograms"
else notok "/metrics (succeeded $nsucc, cancelled $ncanc)" "$(grep -v '^#' "$T/metrics" | head -20)"; fi

# ---- the OpenAPI document against the real answers ---------------------------------
if python3 -c 'import jsonschema' 2>/dev/null; then
    python3 "$S/tests/daemon/openapi-check.py" "$SOCK" "$S/data/openapi.json" "$id" web1 pair >"$T/oa" 2>&1
    while read -r verdict rest; do
        case $verdict in PASS) ok "openapi: $rest";; *) notok "openapi: $rest";; esac
    done <<EOS
$(grep -E '^(PASS|FAIL) (GET (backends|jobs|job|metrics|rating|hosts|vms)|POST (checks|jobs with))' "$T/oa" | head -8)
EOS
    if ! grep -q FAIL "$T/oa" && [ "$(grep -c PASS "$T/oa")" -ge 20 ]; then ok "openapi: all $(grep -c PASS "$T/oa") answers match the document"
    else notok "openapi" "$(grep FAIL "$T/oa")"; fi
else
    for i in 1 2 3 4 5 6 7 8 9; do n=$((n + 1)); echo "ok $n # SKIP python3-jsonschema not installed"; done
fi

# ---- GET /jobs pages: ?limit=, ?offset=, "total" (the journal's own count) --------
ntot=$(V --json jobs | grep -c '"pid"')
api "http://localhost/api/v1/jobs?limit=2&offset=1" >"$T/page"
V --json jobs >"$T/all"
if [ "$("$JSON" total <"$T/page")" = "$ntot" ] && [ "$("$JSON" limit <"$T/page")" = 2 ] \
    && [ "$("$JSON" jobs.0.id <"$T/page")" = "$("$JSON" jobs.1.id <"$T/all")" ] \
    && [ "$("$JSON" jobs.1.id <"$T/page")" = "$("$JSON" jobs.2.id <"$T/all")" ] \
    && [ "$(grep -c '"pid"' "$T/page")" = 2 ]; then ok "GET /jobs?limit=2&offset=1: jobs 2 and 3 of the command's $ntot, total $ntot"
else notok "GET /jobs?limit=2&offset=1 (command: $ntot jobs)" "$(head -c 400 "$T/page")"; fi
code=$(api -o "$T/bad" -w '%{http_code}' "http://localhost/api/v1/jobs?limit=0")
if [ "$code" = 400 ] && grep -q "limit '0'" "$T/bad"; then ok "GET /jobs?limit=0: 400, saying why"
else notok "GET /jobs?limit=0 (HTTP $code)" "$(cat "$T/bad")"; fi

# ---- a daemon killed mid-job: the restart repairs the job --------------------------
VD migrate slow:big3 --to beta --detach >"$T/out" 2>"$T/err"; rid=$(cat "$T/out")
i=0; while [ $i -lt 100 ] && [ "$(V --json job show "$rid" | "$JSON" phase)" != transfer ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=
st=$(V --json job show "$rid" | "$JSON" state)
[ "$st" = interrupted ] && ok "kill -9 of vmshiftd: job $rid interrupted" || notok "after kill -9: state $st"
start_daemon || notok "vmshiftd did not restart" "$(tail -5 "$T/d.log")"
st=$(wait_job "$rid" 30)
if [ "$st" = repaired ] && [ "$(peer_host slow big3)" = alpha ] \
    && V --json job show "$rid" | grep -q "repair by vmshiftd (repair on start)"; then ok "restarted vmshiftd repairs job $rid; big3 is on alpha, where it was"
else notok "repair on start (state $st, peer $(peer_host slow big3))" "$(tail -5 "$T/d.log")"; fi

# ---- without a daemon the command works standalone ---------------------------------
stop_daemon
V migrate web1 --to beta --daemon no >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(peer_host demo web1)" = beta ] && ! grep -q "in vmshiftd" "$T/err"; then ok "--daemon no: the job runs in the command"
else notok "standalone (rc $rc)" "$(cat "$T/err")"; fi
V migrate web1 --to alpha --daemon "$SOCK" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "vmshiftd at $SOCK" "$T/err"; then ok "--daemon SOCKET without a daemon: one line, exit 1"
else notok "--daemon without daemon (rc $rc)" "$(cat "$T/err")"; fi
