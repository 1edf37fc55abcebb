#!/bin/sh
# vmshiftd runs bulk plans (#17): POST /api/v1/jobs {"kind": "bulk", "plan":
# TEXT} runs the plan wave by wave through `vmshift bulk`'s code; GET
# /api/v1/bulks/{id} shows each wave's VMs and jobs. The moves are checked
# in the skeleton peer's state file, the order of the waves in the journal.
# The view of the runs survives a restart of the daemon (kept in the
# journal): a run that ended as it was, one cut by the stop "interrupted".
set -u
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
JSON=$B/tests/host/json-check

echo "1..11"
start_daemon && ok "vmshiftd listens on its socket" || { notok "vmshiftd did not start" "$(cat "$T/d.log")"; exit 1; }

plan_body() { python3 -c 'import json,sys; print(json.dumps({"kind": "bulk", "plan": sys.stdin.read()}))'; }
printf '[bulk]\nmax-per-backend=2\n\n[wave 1]\nvms=web1;db1\nto=beta\n\n[wave 2]\nvms=app1;nosuch\nto=beta\n' \
    | plan_body >"$T/plan.json"
code=$(api -o "$T/r" -D "$T/h" -w '%{http_code}' -H 'Content-Type: application/json' -d @"$T/plan.json" \
    "http://localhost/api/v1/jobs")
bid=$("$JSON" id <"$T/r" 2>/dev/null)
if [ "$code" = 201 ] && grep -qi "^Location: /api/v1/bulks/$bid" "$T/h" && [ "$("$JSON" waves.0.wave <"$T/r")" = "wave 1" ] \
    && [ "$("$JSON" waves.1.state <"$T/r")" = waiting ]; then ok "POST /jobs with a bulk plan: 201, bulk $bid, wave 1 running, wave 2 waiting"
else notok "POST bulk (HTTP $code)" "$(head -c 500 "$T/r")"; fi

i=0
while [ $i -lt 300 ]; do
    api "http://localhost/api/v1/bulks/$bid" >"$T/b" 2>/dev/null
    [ "$("$JSON" state <"$T/b" 2>/dev/null)" = running ] || break
    sleep 0.1; i=$((i + 1))
done
if [ "$("$JSON" state <"$T/b")" = failed ] && [ "$("$JSON" waves.0.state <"$T/b")" = done ] \
    && [ "$("$JSON" waves.0.vms.0.state <"$T/b")" = succeeded ] && [ "$("$JSON" waves.1.vms.0.state <"$T/b")" = succeeded ] \
    && [ "$("$JSON" waves.1.vms.1.error <"$T/b")" = "VM 'nosuch' not found in any backend" ]; then
    ok "GET /bulks/$bid: both waves done, their jobs succeeded, 'nosuch' failed with its reason"
else notok "bulk $bid at the end" "$(head -c 900 "$T/b")"; fi
if [ "$(peer_host demo web1)" = beta ] && [ "$(peer_host demo db1)" = beta ] && [ "$(peer_host demo app1)" = beta ]; then
    ok "the peer has web1, db1 and app1 on beta"
else notok "peer: web1 $(peer_host demo web1), db1 $(peer_host demo db1), app1 $(peer_host demo app1)"; fi

# wave 2 started after wave 1 ended (the journal's times, in seconds)
w1a=$("$JSON" waves.0.vms.0.job <"$T/b"); w1b=$("$JSON" waves.0.vms.1.job <"$T/b"); w2=$("$JSON" waves.1.vms.0.job <"$T/b")
e1=$(V --json job show "$w1a" | "$JSON" ended); e2=$(V --json job show "$w1b" | "$JSON" ended)
s3=$(V --json job show "$w2" | "$JSON" started)
if [ -n "$s3" ] && [ "$s3" -ge "$e1" ] && [ "$s3" -ge "$e2" ]; then
    ok "wave 2's job $w2 started after wave 1's jobs $w1a and $w1b ended"
else notok "wave order: job $w2 started $s3, wave 1 ended $e1 $e2"; fi

printf '[bulk]\nmax-per-backend=zero\n[wave 1]\nvms=web1\nto=alpha\n' | plan_body >"$T/bad.json"
code=$(api -o "$T/r" -w '%{http_code}' -H 'Content-Type: application/json' -d @"$T/bad.json" "http://localhost/api/v1/jobs")
if [ "$code" = 400 ] && grep -q "plan" "$T/r" && ! grep -q "vmshiftd-plan" "$T/r" && [ "$(peer_host demo web1)" = beta ]; then
    ok "a bad plan: 400 saying where, nothing moves"
else notok "bad plan (HTTP $code)" "$(cat "$T/r")"; fi

if python3 -c 'import jsonschema' 2>/dev/null; then
    python3 "$S/tests/daemon/openapi-check.py" "$SOCK" "$S/data/openapi.json" "$w1a" web1 pair "$bid" >"$T/oa" 2>&1
    if grep -q "^PASS GET bulk$" "$T/oa" && ! grep -q FAIL "$T/oa"; then ok "openapi: GET /bulks/$bid and the rest match the document"
    else notok "openapi with a bulk run" "$(grep -v PASS "$T/oa")"; fi
else n=$((n + 1)); echo "ok $n # SKIP python3-jsonschema not installed"; fi

# ---- a restart: the runs are shown from the journal --------------------------------
api "http://localhost/api/v1/bulks/$bid" >"$T/before.json"
# a run cut by the stop: wave 1 moves big1 (60 s), wave 2 waits
printf '[wave 1]\nvms=big1\nto=beta\n\n[wave 2]\nvms=big2\nto=beta\n' | plan_body >"$T/slow.json"
cut=$(api -H 'Content-Type: application/json' -d @"$T/slow.json" "http://localhost/api/v1/jobs" | "$JSON" id)
i=0; while [ $i -lt 100 ] && [ -z "$(api "http://localhost/api/v1/bulks/$cut" | "$JSON" waves.0.vms.0.job 2>/dev/null)" ]; do sleep 0.1; i=$((i + 1)); done
cutjob=$(api "http://localhost/api/v1/bulks/$cut" | "$JSON" waves.0.vms.0.job)
stop_daemon
if ! grep -q Sanitizer "$T/d.log" && start_daemon; then ok "vmshiftd stopped cleanly with a run going, restarted on the same journal"
else notok "vmshiftd's stop and restart" "$(grep -A15 Sanitizer "$T/d.log" | head -30; tail -5 "$T/d.log")"; fi

api "http://localhost/api/v1/bulks/$bid" >"$T/after.json"
if python3 - "$T/before.json" "$T/after.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
sys.exit(0 if a == b else "before %s\nafter  %s" % (a, b))
PY
then ok "GET /bulks/$bid after the restart: the same document (waves, VMs, jobs, states)"
else notok "bulk $bid after the restart" "$(head -c 600 "$T/after.json")"; fi

api "http://localhost/api/v1/bulks/$cut" >"$T/cut.json"
jst=$(V --json job show "$cutjob" | "$JSON" state)
if [ "$("$JSON" state <"$T/cut.json")" = interrupted ] && [ "$("$JSON" waves.0.state <"$T/cut.json")" = interrupted ] \
    && [ "$("$JSON" waves.1.state <"$T/cut.json")" = "not run" ] && [ "$("$JSON" waves.0.vms.0.job <"$T/cut.json")" = "$cutjob" ] \
    && [ "$("$JSON" waves.0.vms.0.state <"$T/cut.json")" = "$jst" ] && [ "$(peer_host slow big2)" = alpha ]; then
    ok "bulk $cut, cut by the stop: interrupted, wave 1 interrupted with job $cutjob $jst (as the journal), wave 2 not run, big2 still on alpha"
else notok "the cut bulk $cut (job $cutjob $jst)" "$(head -c 900 "$T/cut.json")"; fi

api "http://localhost/bulk" >"$T/bulk.html"
api -H 'Content-Type: application/json' -d @"$T/bad.json" "http://localhost/api/v1/jobs" >/dev/null
printf '[wave 1]\nvms=web1\nto=alpha\n' | plan_body >"$T/again.json"
next=$(api -H 'Content-Type: application/json' -d @"$T/again.json" "http://localhost/api/v1/jobs" | "$JSON" id)
if grep -q "<section class=\"bulk state-failed\" id=\"bulk-$bid\"" "$T/bulk.html" \
    && grep -q "<section class=\"bulk state-interrupted\" id=\"bulk-$cut\"" "$T/bulk.html" \
    && grep -q '<table class="wave" data-wave="wave 2">' "$T/bulk.html" && [ "$next" -gt "$cut" ]; then
    ok "the web view's bulk page shows both runs after the restart; the next run is bulk $next"
else notok "bulk page after the restart (next '$next')" "$(grep -o '<div id="bulks">.\{0,400\}' "$T/bulk.html")"; fi
