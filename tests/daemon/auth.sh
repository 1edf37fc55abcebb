#!/bin/sh
# vmshiftd: who may do what on the Unix socket (#17). The daemon reads the
# peer's credentials; the groups come from [vmshiftd] read-group= and
# admin-group= so that the test needs no system group of its own. Requests
# are made as `nobody` (setpriv), a user outside the groups, then inside
# the read group only, then inside the admin group; each change is checked
# in the skeleton peer's state and in the journal (who asked).
set -u
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
JSON=$B/tests/host/json-check

[ "$(id -u)" -eq 0 ] || skip_all "needs root to ask as another user (setpriv)"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) not installed"
nobody_gid=$(id -g nobody 2>/dev/null) || skip_all "no user nobody"
nobody_group=$(getent group "$nobody_gid" | cut -d: -f1)
[ -n "$nobody_group" ] || skip_all "nobody's group has no name"
AS_NOBODY="setpriv --reuid=nobody --regid=$nobody_gid --clear-groups"

# $1 = read group, $2 = admin group
daemon_with() {
    stop_daemon
    printf '[group pair]\nhosts=demo:alpha;demo:beta\n[vmshiftd]\nread-group=%s\nadmin-group=%s\n' "$1" "$2" \
        >"$T/etc/vmshift.conf"
    start_daemon
}
# as nobody: METHOD PATH [BODY]; prints the HTTP status, the body in $T/nb
# (written by this shell: nobody cannot write in $T)
nb() {
    if [ $# -ge 3 ]; then
        $AS_NOBODY curl -sS --max-time 30 --unix-socket "$SOCK" -w '\n%{http_code}' \
            -X "$1" -H 'Content-Type: application/json' -d "$3" "http://localhost$2" >"$T/nb.raw"
    else
        $AS_NOBODY curl -sS --max-time 30 --unix-socket "$SOCK" -w '\n%{http_code}' \
            -X "$1" "http://localhost$2" >"$T/nb.raw"
    fi
    sed '$d' "$T/nb.raw" >"$T/nb"
    tail -n 1 "$T/nb.raw"
}
njobs() { V --json jobs | grep -c '"pid"'; }

echo "1..10"
# ---- nobody outside both groups: refused -------------------------------------------
daemon_with root root || { notok "vmshiftd did not start" "$(cat "$T/d.log")"; exit 1; }
for p in /api/v1/jobs /api/v1/vms /metrics /api/v1/events; do
    code=$(nb GET "$p")
    if [ "$code" = 403 ] && grep -q "nobody (uid $(id -u nobody)" "$T/nb" && grep -q "group 'root'" "$T/nb"; then
        ok "outside the read group: GET $p is refused (403, naming the user and the group)"
    else notok "GET $p as nobody: HTTP $code" "$(cat "$T/nb")"; fi
done

# ---- nobody in the read group: reads, cannot start or cancel a job -----------------
daemon_with "$nobody_group" root || notok "vmshiftd did not restart" "$(tail -3 "$T/d.log")"
code=$(nb GET /api/v1/vms)
[ "$code" = 200 ] && grep -q '"web1"' "$T/nb" && ok "read group: GET /api/v1/vms answers" \
    || notok "read group GET vms: HTTP $code" "$(cat "$T/nb")"
before=$(njobs)
code=$(nb POST /api/v1/jobs '{"vm": "web1", "to": "beta"}')
sleep 1
if [ "$code" = 403 ] && grep -q "may not change anything" "$T/nb" && [ "$(njobs)" = "$before" ] \
    && [ "$(peer_host demo web1)" = alpha ]; then ok "read group: POST /api/v1/jobs refused; no job, web1 stays on alpha"
else notok "read group POST jobs: HTTP $code, jobs $before -> $(njobs), peer $(peer_host demo web1)" "$(cat "$T/nb")"; fi
api -X POST -H 'Content-Type: application/json' -d '{"vm": "slow:big1", "to": "beta"}' \
    "http://localhost/api/v1/jobs" >"$T/out"
rid=$("$JSON" id <"$T/out")
code=$(nb POST "/api/v1/jobs/$rid/cancel" '{}')
sleep 0.5
st=$(V --json job show "$rid" | "$JSON" cancel_requested)
[ "$code" = 403 ] && [ "$st" = false ] && ok "read group: cancelling root's job $rid is refused; no cancel request recorded" \
    || notok "read group cancel: HTTP $code, cancel_requested $st" "$(cat "$T/nb")"
api -X POST -H 'Content-Type: application/json' -d '{}' "http://localhost/api/v1/jobs/$rid/cancel" >/dev/null
st=$(wait_job "$rid" 30)
[ "$st" = cancelled ] && ok "root cancels job $rid" || notok "root cancel: $st"

# ---- a cross-site form cannot start a job ------------------------------------------
before=$(njobs)
code=$(curl -sS --unix-socket "$SOCK" -o "$T/out" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/x-www-form-urlencoded' -d 'vm=web1&to=beta' "http://localhost/api/v1/jobs")
if [ "$code" = 400 ] && grep -q "Content-Type: application/json" "$T/out" && [ "$(njobs)" = "$before" ]; then
    ok "a form POST (what a cross-site page can send) starts nothing (400)"
else notok "form POST: HTTP $code" "$(cat "$T/out")"; fi

# ---- nobody in the admin group: starts a job, logged with who asked ---------------
daemon_with root "$nobody_group" || notok "vmshiftd did not restart" "$(tail -3 "$T/d.log")"
code=$(nb POST /api/v1/jobs '{"vm": "web1", "to": "beta"}')
jid=$("$JSON" id <"$T/nb" 2>/dev/null)
st=$([ -n "$jid" ] && wait_job "$jid" 30)
if [ "$code" = 201 ] && [ "$st" = succeeded ] && [ "$(peer_host demo web1)" = beta ] \
    && V --json job show "$jid" | grep -q "submitted by nobody (uid $(id -u nobody)"; then
    ok "admin group: nobody's job $jid succeeds, web1 on beta, the journal says nobody asked"
else notok "admin group POST: HTTP $code, state $st, peer $(peer_host demo web1)" "$(cat "$T/nb")"; fi
stop_daemon
