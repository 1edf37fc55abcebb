#!/bin/sh
# vmshiftd's web view (#17) in a real headless Chromium driven through
# WebDriver (Debian's chromium and chromium-driver; tests/daemon/webdriver.py
# speaks the protocol with urllib): sign in with a token over HTTPS, start a
# migration from the page and watch it reach "succeeded" with its progress
# updating, the job's page, the hosts rated for a VM, a bulk plan by wave,
# a cross-site post that must start nothing, a read token. Every move is
# checked in the skeleton peer's state file, the ratings against `vmshift
# rate`; a migration waiting for its scheduled switchover shows so in the
# list and on its page. Screenshots of each view: tests/daemon/web-*.png in the build dir.
set -u
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
JSON=$B/tests/host/json-check
CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver || echo /usr/bin/chromedriver)}
[ -x "$CHROMEDRIVER" ] || skip_all "chromedriver not installed (Debian: chromium-driver)"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip_all "chromium not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"

echo "1..26"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
U=https://127.0.0.1:$PORT
C=$T/tls
mkdir -p "$C"
ssl() { openssl "$@" >/dev/null 2>&1; }
ssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/srv.key" -out "$C/srv.crt" -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1"
ADMIN=admin-token-web-0123456789
READ=read-token-web-0123456789
printf 'admin ops %s\nread viewer %s\n' "$ADMIN" "$READ" >"$C/tokens"
chmod 600 "$C/tokens"
cat >>"$T/etc/vmshift.conf" <<EOC
[vmshiftd]
listen=127.0.0.1:$PORT
tls-cert=$C/srv.crt
tls-key=$C/srv.key
tokens=$C/tokens
EOC
# a backend whose moves take long enough to watch
cat >>"$T/etc/backends.d/demo.conf" <<EOC
[backend mid]
plugin=skeleton
hosts=alpha;beta
vms=app9@alpha;app8@alpha
transfer-seconds=6
state-file=$T/mid.state
EOC
start_daemon && ok "vmshiftd listens on its socket" || { notok "vmshiftd did not start" "$(cat "$T/d.log")"; exit 1; }
i=0; while [ $i -lt 50 ] && ! grep -q "https://127.0.0.1:$PORT" "$T/d.log"; do sleep 0.1; i=$((i + 1)); done
# two jobs before the browser comes: the list has rows to read
V migrate web1 --to beta --daemon no >/dev/null 2>&1
V migrate web1 --to alpha --daemon no >/dev/null 2>&1

# ---- the lists read without JavaScript -------------------------------------------
curl -sS --max-time 30 -k -H "Authorization: Bearer $READ" "$U/" >"$T/page.html"
last=$(V --json jobs | "$JSON" jobs.0.id)
if grep -q "<tr id=\"job-$last\" data-id=\"$last\" class=\"state-succeeded\">" "$T/page.html" \
    && grep -q '<span class="badge">succeeded</span>' "$T/page.html"; then ok "GET / without JavaScript: the jobs table has job $last, succeeded"
else notok "server-rendered jobs" "$(head -c 400 "$T/page.html")"; fi
curl -sS --max-time 30 -k -H "Authorization: Bearer $READ" "$U/hosts?vm=demo:web1" >"$T/hosts.html"
V --json rate web1 >"$T/rate.json"
s0=$("$JSON" ratings.0.stars <"$T/rate.json"); h0=$("$JSON" ratings.0.host <"$T/rate.json")
if grep -q "data-host=\"demo:$h0\"><td>demo:$h0</td><td><span class=\"stars\" role=\"img\" aria-label=\"$s0 of 5 stars\"" "$T/hosts.html"; then
    ok "GET /hosts?vm=demo:web1 without JavaScript: $h0 first with $s0 stars, as vmshift rate"
else notok "server-rendered ratings ($h0 $s0)" "$(grep -o '<table id="ratings".*' "$T/hosts.html" | head -c 400)"; fi

# a migration whose switchover waits an hour (the slow backend does not copy
# ahead: the move starts then); its schedule shows in the list and its page
AT=$(date -d '+1 hour' +%Y-%m-%dT%H:%M)
SCHED=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"vm\": \"slow:big1\", \"to\": \"beta\", \"switchover_at\": \"$AT\"}" http://x/api/v1/jobs | "$JSON" id)
i=0; while [ $i -lt 100 ] && ! V --json job show "$SCHED" 2>/dev/null | grep -q '"state":"waiting"'; do sleep 0.1; i=$((i + 1)); done
curl -sS --max-time 30 -k -H "Authorization: Bearer $READ" "$U/" >"$T/page2.html"
when=$(V --json job show "$SCHED" | "$JSON" switchover.at_text)
if [ -n "$when" ] && grep "<tr id=\"job-$SCHED\"" "$T/page2.html" \
        | grep -qF "<span class=\"schedule\" data-in=\"row\">, waiting for switchover at $when</span>"; then
    ok "GET / without JavaScript: job $SCHED says it is waiting for switchover at $when"
else notok "the scheduled job's row ($SCHED, '$when')" "$(grep "<tr id=\"job-$SCHED\"" "$T/page2.html" | head -c 600)"; fi

# ---- the browser -----------------------------------------------------------------
WDPORT=$(free_port)
"$CHROMEDRIVER" --port="$WDPORT" >"$T/wd.log" 2>&1 &
pids="$pids $!"
i=0; while [ $i -lt 100 ] && ! curl -s "http://127.0.0.1:$WDPORT/status" 2>/dev/null | grep -q '"ready": *true'; do sleep 0.1; i=$((i + 1)); done
SHOTS=$B/tests/daemon
mkdir -p "$SHOTS"
rm -f "$SHOTS"/web-*.png
python3 "$S/tests/daemon/webdriver.py" "http://127.0.0.1:$WDPORT" "$U" "$ADMIN" "$READ" "$SHOTS" "$SCHED" "$when" >"$T/wd.out" 2>&1
while read -r verdict rest; do
    case $verdict in PASS) ok "browser: $rest";; FAIL) notok "browser: $rest";; esac
done <<EOS
$(grep -E '^(PASS|FAIL) ' "$T/wd.out")
EOS
nbrowser=$(grep -cE '^(PASS|FAIL) ' "$T/wd.out")
[ "$nbrowser" -eq 15 ] || { notok "the browser run ended early ($nbrowser of 15 checks)" "$(tail -5 "$T/wd.out")"; while [ $n -lt 19 ]; do notok "(not reached)"; done; }

# what the page did, from the peer's and the command's own view
job=$(sed -n 's/^JOB //p' "$T/wd.out")
if [ -n "$job" ] && [ "$(peer_host mid app9)" = beta ] && [ "$(V --json job show "$job" | "$JSON" state)" = succeeded ] \
    && V --json job show "$job" | grep -q "submitted by token 'ops' (admin, web, 127.0.0.1)"; then
    ok "job $job started from the page: the peer has app9 on beta; the journal names token 'ops' (web)"
else notok "the page's job '$job' (peer app9 on $(peer_host mid app9))"; fi
cjob=$(sed -n 's/^CANCELLED //p' "$T/wd.out")
if [ -n "$cjob" ] && [ "$(V --json job show "$cjob" | "$JSON" state)" = repaired ] && [ "$(peer_host mid app9)" = beta ] \
    && V --json job show "$cjob" | grep -q "cancel requested by token 'ops'" \
    && V --json job show "$cjob" | grep -q "repair (dismiss: left on beta on purpose) by token 'ops'"; then
    ok "job $cjob cancelled, then dismissed from its page: the journal says so and who; the peer still has app9 on beta"
else notok "cancel from the page: job '$cjob' $(V --json job show "$cjob" 2>/dev/null | "$JSON" state), app9 on $(peer_host mid app9)"; fi
if [ "$(peer_host demo web1)" = beta ] && [ "$(peer_host demo db1)" = beta ]; then ok "the bulk plan from the page: the peer has web1 and db1 on beta"
else notok "bulk from the page: web1 on $(peer_host demo web1), db1 on $(peer_host demo db1)"; fi
if [ "$(peer_host mid app8)" = alpha ] && ! V --json jobs --vm mid:app8 | grep -q '"id"'; then ok "cross-site posts started nothing: no job for app8, still on alpha"
else notok "cross-site: app8 on $(peer_host mid app8)" "$(V jobs --vm mid:app8)"; fi
bad=0
while read -r tag host stars nf; do
    [ "$tag" = RATING ] || continue
    want=$(python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1]))["ratings"] if "demo:"+x["host"]==sys.argv[2]]; print(r[0]["stars"] if r else "none")' "$T/rate.json" "$host")
    [ "$want" = "$stars" ] || bad=$((bad + 1))
done <"$T/wd.out"
[ $bad -eq 0 ] && grep -q '^RATING ' "$T/wd.out" && ok "the stars the browser showed are vmshift rate's" || notok "stars differ from vmshift rate ($bad)" "$(grep RATING "$T/wd.out")"
missing=
for v in jobs job hosts bulk schedule; do [ -s "$SHOTS/web-$v.png" ] || missing="$missing $v"; done
[ -z "$missing" ] && ok "screenshots: web-jobs.png, web-job.png, web-hosts.png, web-bulk.png, web-schedule.png" || notok "screenshots missing:$missing"
# the scheduled job, cancelled while it waits: the schedule says so on its page
api -X POST -H 'Content-Type: application/json' -d '{}' "http://x/api/v1/jobs/$SCHED/cancel" >/dev/null
st=$(wait_job "$SCHED" 30)
curl -sS --max-time 30 -k -H "Authorization: Bearer $READ" "$U/jobs/$SCHED" >"$T/sched.html"
if [ "$st" = cancelled ] && [ "$(peer_host slow big1)" = alpha ] \
        && grep -qF "<span class=\"schedule\" data-in=\"page\" data-state=\"cancelled\">switchover at $when: cancelled</span>" "$T/sched.html"; then
    ok "job $SCHED cancelled while waiting: big1 stays on alpha, its page says the switchover was cancelled"
else notok "cancel of the scheduled job $SCHED: $st, big1 on $(peer_host slow big1)" "$(grep -o '<dt>Switchover.\{0,300\}' "$T/sched.html")"; fi
