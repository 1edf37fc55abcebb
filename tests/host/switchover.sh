#!/bin/sh
# Scheduled switchover (#17 item 6) through the vmshift command on the
# skeleton plugin, which cannot copy ahead (no VMSHIFT_PLUGIN_SWITCHOVER_AT):
# the job is created at once and its move starts at the time. Checked
# against the skeleton's own state file (its "hypervisor"):
#  - bad --switchover-at values and a malformed or past switchover= line of
#    a bulk plan: one line naming what and where, non-zero exit, nothing
#    moved;
#  - `vmshift jobs` says "waiting for switchover at"; the VM is not touched
#    (no copy, still on alpha) before the time, and moved after it;
#  - `job cancel` while waiting: the VM stays, nothing was copied;
#  - a bulk wave with switchover=: its VMs wait, then move;
#  - kill -9 while waiting: `job repair` waits again and moves at the time;
#    once the time has passed, the repair does not move the VM (missed).
# No timing asserts beyond "not started before the time".
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-switchover.XXXXXX")
chmod 755 "$T"
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ] || ! command -v date >/dev/null; then
    echo "1..0 # SKIP needs the skeleton plugin"
    exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
: >"$T/etc/vmshift.conf"
cat >"$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha;app2@alpha;app3@alpha;app4@alpha
transfer-seconds=1
state-file=$T/demo.state
EOC
V() { timeout 120 "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
          --state-dir "$T/state" --daemon no "$@"; }
STATE=$T/demo.state
# the skeleton's own view: KEY of [vm VM], and whether a copy of VM exists
peer() { sed -n "/^\[vm $1\]/,/^\[/p" "$STATE" | sed -n "s/^$2=//p"; }
has_copy() { grep -q "^\[copy $1\]" "$STATE"; }
at_in() { date -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%S; }
epoch_of() { date -d "$1" +%s; }
wait_waiting() { # up to $1 s for `vmshift jobs` to say a job waits
    i=0
    while [ $i -lt $(($1 * 5)) ]; do
        V jobs 2>/dev/null | grep -v "was waiting" | grep -q "waiting for switchover at" && return 0
        sleep 0.2; i=$((i + 1))
    done
    return 1
}
# untouched_until EPOCH VM...: at every sample until 1 s before EPOCH each
# VM is on alpha with no copy started
untouched_until() {
    e=$1; shift
    while [ "$(date +%s)" -lt $((e - 1)) ]; do
        for vm in "$@"; do
            [ "$(peer "$vm" host)" = alpha ] && ! has_copy "$vm" || return 1
        done
        sleep 0.3
    done
}
# a vmshift that kill -9 must reach: exec'd in a subshell, its pid in $!
VX() { exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
           --state-dir "$T/state" --daemon no "$@"; }
last_job() { V jobs --json 2>/dev/null | sed -n 's/^ *"id":\([0-9]*\),.*/\1/p' | sort -n | tail -1; }
one_line() { [ "$(wc -l <"$1")" -eq 1 ]; }

V vms >/dev/null 2>&1 # creates the state file

# ---- bad input -----------------------------------------------------------------------
V migrate demo:web1 --to beta --switchover-at 2026-02-14 >"$T/o" 2>"$T/e"
rc=$?
check "--switchover-at without a time: exit 2, one line naming the option and value" \
    sh -c '[ "$0" = 2 ] && [ "$(wc -l <"$1")" -eq 1 ] && grep -q -- "--switchover-at: .2026-02-14. is not a switchover time" "$1"' "$rc" "$T/e"
V migrate demo:web1 --to beta --switchover-at "2030-01-01T25:00" >"$T/o" 2>"$T/e"
rc=$?
check "--switchover-at 25:00: refused (exit 2, one line)" sh -c '[ "$0" = 2 ] && [ "$(wc -l <"$1")" -eq 1 ]' "$rc" "$T/e"
V migrate-storage demo:web1 --path /p1 --switchover-at 2020-01-01T10:00Z >"$T/o" 2>"$T/e"
rc=$?
check "--switchover-at in the past: refused with 'has passed'" \
    sh -c '[ "$0" = 2 ] && grep -q "has passed" "$1"' "$rc" "$T/e"
cat >"$T/bad.ini" <<EOP
[bulk]
max-per-backend=2

[wave 1]
vms=demo:app1
to=beta
switchover=2030-02-14 22:00
EOP
V bulk "$T/bad.ini" >"$T/o" 2>"$T/e"
rc=$?
check "a malformed switchover= line: non-zero exit, one line with file:line and wave" \
    sh -c '[ "$0" != 0 ] && [ "$(wc -l <"$1")" -eq 1 ] && grep -q "bad.ini:7: \[wave 1\]: switchover: .2030-02-14 22:00. is not a switchover time" "$1"' "$rc" "$T/e"
sed -i 's/^switchover=.*/switchover=2030-02-30T22:00+01:00/' "$T/bad.ini"
V bulk "$T/bad.ini" >"$T/o" 2>"$T/e"
rc=$?
check "switchover=2030-02-30T22:00+01:00 (no such day): refused with file:line" \
    sh -c '[ "$0" != 0 ] && grep -q "bad.ini:7: \[wave 1\]: switchover:" "$1"' "$rc" "$T/e"
sed -i 's/^switchover=.*/switchover=2020-02-14T22:00Z/' "$T/bad.ini"
V bulk "$T/bad.ini" >"$T/o" 2>"$T/e"
rc=$?
check "a switchover= time already past: the wave's VM fails, naming file:line, not moved" \
    sh -c '[ "$0" != 0 ] && grep -q "bad.ini:7: \[wave 1\]: switchover time .* had passed" "$1" "$2"' "$rc" "$T/o" "$T/e"
check "no VM moved by the refused commands" \
    sh -c '[ "$0" = alpha ] && [ "$1" = alpha ]' "$(peer web1 host)" "$(peer app1 host)"

# ---- the move starts at the time (the skeleton cannot copy ahead) ---------------------
AT=$(at_in 8)
V migrate demo:web1 --to beta --switchover-at "$AT" >"$T/o1" 2>&1 &
bg=$!; pids="$pids $bg"
check "vmshift jobs: the job is waiting for switchover" wait_waiting 6
check "the VM is not touched before the time (skeleton: on alpha, no copy)" \
    untouched_until "$(epoch_of "$AT")" web1
wait $bg; rc=$?
check "after the time the migration ran and exited 0" test "$rc" = 0
check "the skeleton has web1 on beta" test "$(peer web1 host)" = beta
id=$(last_job)
V job show "$id" >"$T/show1" 2>&1
check "job show: 'switchover at ...: released' (start-at)" \
    grep -q "schedule:  switchover at .*: released (start-at)" "$T/show1"

# ---- job cancel while waiting ----------------------------------------------------------
AT=$(at_in 120)
V migrate demo:db1 --to beta --switchover-at "$AT" >"$T/o2" 2>&1 &
bg=$!; pids="$pids $bg"
wait_waiting 6
id=$(last_job)
V job cancel "$id" >/dev/null 2>&1
wait $bg; rc=$?
check "job cancel while waiting: vmshift exits non-zero" test "$rc" != 0
check "the cancelled VM stays on alpha, nothing was copied" \
    sh -c '[ "$(sed -n "/^\[vm db1\]/,/^\[/p" "$0" | sed -n "s/^host=//p")" = alpha ] && ! grep -q "^\[copy db1\]" "$0"' "$STATE"
V job show "$id" --json >"$T/show2" 2>&1
check "job show: the job and its schedule are cancelled" \
    sh -c '[ "$(grep -c "\"state\":\"cancelled\"" "$0")" -ge 2 ]' "$T/show2"

# ---- a bulk wave with switchover= --------------------------------------------------------
AT=$(at_in 8)
cat >"$T/plan.ini" <<EOP
[bulk]
max-per-backend=2
max-per-host=2

[wave 1]
vms=demo:app1;demo:app2
to=beta
switchover=$AT
EOP
V bulk "$T/plan.ini" >"$T/o3" 2>&1 &
bg=$!; pids="$pids $bg"
check "bulk: the wave's jobs wait for their switchover" wait_waiting 6
check "bulk: neither VM is touched before the time" untouched_until "$(epoch_of "$AT")" app1 app2
wait $bg; rc=$?
check "bulk: exit 0, both VMs on beta after the time" \
    sh -c '[ "$0" = 0 ] && [ "$1" = beta ] && [ "$2" = beta ]' "$rc" "$(peer app1 host)" "$(peer app2 host)"

# ---- kill -9 while waiting, then job repair -------------------------------------------------
# (windows of tens of seconds: under ASan on two loaded cores each vmshift
# command can take seconds, and a repair that starts after the time finds
# the schedule missed)
AT=$(at_in 30)
(VX migrate demo:app3 --to beta --switchover-at "$AT" >"$T/o4" 2>&1) &
bg=$!; pids="$pids $bg"
wait_waiting 15
id=$(last_job)
kill -9 $bg; wait $bg 2>/dev/null
V jobs >/dev/null 2>&1 # marks it interrupted
V job repair "$id" >"$T/o5" 2>&1 &
bg=$!; pids="$pids $bg"
check "job repair of a job interrupted while waiting waits again" wait_waiting 15
check "the repaired job does not move the VM before the time" untouched_until "$(epoch_of "$AT")" app3
wait $bg; rc=$?
check "job repair exits 0 and app3 is on beta after the time" \
    sh -c '[ "$0" = 0 ] && [ "$1" = beta ]' "$rc" "$(peer app3 host)"

AT=$(at_in 15)
(VX migrate demo:app4 --to beta --switchover-at "$AT" >"$T/o6" 2>&1) &
bg=$!; pids="$pids $bg"
wait_waiting 10
id=$(last_job)
kill -9 $bg; wait $bg 2>/dev/null
while [ "$(date +%s)" -le "$(epoch_of "$AT")" ]; do sleep 0.5; done
V job repair "$id" >"$T/o7" 2>&1
check "job repair after the time passed: app4 not moved (stays on alpha)" \
    test "$(peer app4 host)" = alpha
V job show "$id" >"$T/show3" 2>&1
check "job show: the schedule is 'missed'" grep -q "switchover at .*: missed" "$T/show3"

[ -n "${KEEP:-}" ] && { trap - EXIT; echo "# kept $T"; }
echo "1..$n"
