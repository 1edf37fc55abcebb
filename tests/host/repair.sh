#!/bin/sh
# Recovery through the vmshift command on the skeleton plugin (TAP), issue
# 13 items 2 and 4, checked against the skeleton's own state file (its
# "hypervisor") and the journal read with sqlite3:
#  - an interrupted job that is not repaired holds its VM (one line naming
#    the job and the repair command);
#  - `job repair ID` with --force-cleanup (the partial copy goes, the VM
#    stays), --retry (the move runs again and lands), --undo (before and
#    after the switchover: the VM and its files back where they were),
#    --dismiss --reason (kept in the journal, shown by job show), and the
#    automatic repair that must not say "resumed" for a job that never
#    reached its switchover;
#  - bulk: every VM moved, failed or skipped with a reason, exit 1 on any
#    failure or skip; --reverse from the last move that took effect
#    (repaired ones included), storage-only moves reversed, paths exact;
#  - acl recreate on a backend without access rules: the exact line.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
JSON=$B/tests/host/json-check
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-repair.XXXXXX")
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

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ] || ! command -v sqlite3 >/dev/null; then
    echo "1..0 # SKIP needs the skeleton plugin and sqlite3"
    exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
: >"$T/etc/vmshift.conf"
cat > "$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha;app2@alpha;app3@alpha;app4@alpha;app5@alpha
transfer-seconds=3
state-file=$T/demo.state
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
VBG() { out=$1; shift; exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
            --state-dir "$T/state" "$@" >"$out.out" 2>"$out.err"; }
# --path /pN: no volume of the skeleton holds it, so its free space is
# unknown, a warning (space-unknown) that --force accepts
STATE=$T/demo.state
DB=$T/state/journal.db
# the skeleton's own view: KEY of [GROUP] in its state file
peer_of() { sed -n "/^\[$1\]/,/^\[/p" "$STATE" | sed -n "s/^$2=//p"; }
peer() { peer_of "vm $1" "$2"; }
has_copy() { grep -q "^\[copy $1\]" "$STATE"; }

V vms >/dev/null 2>&1 # creates the state file
# kill -9 of `vmshift migrate VM ARGS` in phase transfer; prints the job id
killed_job() {
    vm=$1; shift
    (VBG "$T/bg" migrate "demo:$vm" "$@") &
    mpid=$!; pids="$pids $mpid"
    i=0
    while [ $i -lt 300 ]; do
        id=$(sqlite3 -readonly "$DB" "SELECT id FROM jobs WHERE vm='$vm' AND phase='transfer' AND state='running'" 2>/dev/null)
        [ -n "$id" ] && has_copy "$vm" && break
        sleep 0.1; i=$((i + 1))
    done
    kill -9 $mpid; wait $mpid 2>/dev/null
    V jobs >/dev/null 2>&1 # the sweep marks it interrupted
    echo "$id"
}
jstate() { sqlite3 "$DB" "SELECT state FROM jobs WHERE id=$1"; }
result() { sqlite3 "$DB" "SELECT json_extract(results, '\$.$2') FROM jobs WHERE id=$1"; }

# ---- 1. an interrupted job holds its VM -------------------------------------------
id=$(killed_job web1 --to beta)
if [ -n "$id" ] && [ "$(jstate "$id")" = interrupted ] && has_copy web1; then
    ok "kill -9 mid-transfer: job $id interrupted, a partial copy at the destination"
else notok "kill -9 mid-transfer (job '$id')" "$(cat "$T/bg.err")"; fi
V migrate demo:web1 --to beta >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] \
    && grep -q "held by interrupted job $id; repair it first: vmshift job repair $id" "$T/err" \
    && [ "$(peer web1 host)" = alpha ]; then
    ok "a new migration of a VM held by interrupted job $id: refused, one line naming the repair"
else notok "new job on a held VM (rc $rc)" "$(cat "$T/err")"; fi

# ---- 2. repair choices: usage -------------------------------------------------------
for args in "--retry --undo" "--dismiss" "--reason x" "--undo --force-cleanup"; do
    # shellcheck disable=SC2086
    V job repair "$id" $args >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(jstate "$id")" = interrupted ]; then
        ok "job repair $args: usage error, one line, job untouched"
    else notok "job repair $args (rc $rc)" "$(cat "$T/err")"; fi
done

# ---- 3. --force-cleanup: the copy goes, the VM stays ---------------------------------
V job repair "$id" --force-cleanup >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && ! has_copy web1 && [ "$(peer web1 host)" = alpha ] \
    && [ "$(peer web1 power)" = running ] && [ "$(result "$id" cleanup)" = "1 item(s) removed" ]; then
    ok "--force-cleanup: partial copy removed, VM still running on alpha"
else notok "--force-cleanup (rc $rc)" "$(cat "$T/err")" "$(cat "$STATE")"; fi
V migrate demo:web1 --to beta >"$T/out" 2>"$T/err" && [ "$(peer web1 host)" = beta ] \
    && ok "after the repair the VM can move again" || notok "migrate after repair" "$(cat "$T/err")"

cp "$STATE" "$T/state.before"
V job repair "$id" --force-cleanup >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] \
    && grep -q "job $id is not the latest job of VM 'web1'" "$T/err" && cmp -s "$STATE" "$T/state.before"; then
    ok "repair of a job the VM has moved on from: refused, one line, nothing touched"
else notok "repair of an older job (rc $rc)" "$(cat "$T/err")"; fi

# ---- 4. --retry: the move runs again and lands ----------------------------------------
id=$(killed_job app1 --to beta --path /p1 --force)
V --json job repair "$id" --retry >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(jstate "$id")" = repaired ] && [ "$(result "$id" repair)" = retried ] \
    && [ "$(peer app1 host)" = beta ] && [ "$(peer app1 path)" = /p1 ] && ! has_copy app1; then
    ok "--retry: app1 on beta in /p1, job repaired (retried)"
else notok "--retry (rc $rc)" "$(cat "$T/err")" "$(cat "$STATE")"; fi

# ---- 5. --undo before the switchover: rolled back, copy gone -----------------------------
id=$(killed_job db1 --to beta)
V job repair "$id" --undo >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(peer db1 host)" = alpha ] && ! has_copy db1 \
    && [ "$(result "$id" moved)" = false ]; then
    ok "--undo before the switchover: db1 on alpha, destination cleaned"
else notok "--undo before switchover (rc $rc)" "$(cat "$T/err")" "$(cat "$STATE")"; fi

# ---- 6. --undo after the switchover: moved back, files exactly where they were -----------
V migrate demo:app2 --to beta --path /p2 --force >"$T/out" 2>"$T/err"
mid=$(sqlite3 "$DB" "SELECT max(id) FROM jobs WHERE vm='app2'")
# the process died after the switchover: the journal as a kill -9 leaves it
sqlite3 "$DB" "UPDATE jobs SET state='interrupted', phase='switchover', ended=NULL WHERE id=$mid"
if [ "$(peer app2 host)" = beta ] && [ "$(peer app2 path)" = /p2 ]; then
    V job repair "$mid" --undo >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && [ "$(peer app2 host)" = alpha ] && [ "$(peer app2 path)" = /srv/vms ]; then
        ok "--undo after the switchover: app2 back on alpha in /srv/vms (not nested)"
    else notok "--undo after switchover (rc $rc, host $(peer app2 host) path $(peer app2 path))" \
        "$(cat "$T/out" "$T/err")"; fi
    sqlite3 "$DB" "SELECT value FROM events WHERE job=$mid AND key='undo'" | grep -q "moved back by job" \
        && ok "the undone job's journal names the job that moved it back" \
        || notok "undo note" "$(sqlite3 "$DB" "SELECT * FROM events WHERE job=$mid")"
else notok "app2 did not move" "$(cat "$T/err")"; notok "undo note: not tested"; fi

# ---- 7. --dismiss --reason: kept and shown ---------------------------------------------
id=$(killed_job app3 --to beta)
V job repair "$id" --dismiss --reason "copied back by hand, ticket 42" >"$T/out" 2>"$T/err"; rc=$?
V job show "$id" >"$T/show" 2>&1
if [ $rc -eq 0 ] && [ "$(jstate "$id")" = repaired ] && [ "$(result "$id" repair)" = dismissed ] \
    && [ "$(result "$id" reason)" = "copied back by hand, ticket 42" ] \
    && grep -q "dismissed: copied back by hand, ticket 42" "$T/show" \
    && [ "$(peer app3 host)" = alpha ]; then
    ok "--dismiss: reason in the journal and in job show, VM untouched"
else notok "--dismiss (rc $rc)" "$(cat "$T/err")" "$(cat "$T/show")"; fi

# ---- 8. a job that never reached its switchover is never "resumed" ------------------------
id=$(killed_job app4 --to beta)
# someone moved the VM by hand meanwhile (in the hypervisor itself)
sed -i "/^\[vm app4\]/,/^\[/s/^host=alpha/host=beta/" "$STATE"
V --json job repair "$id" >"$T/out" 2>"$T/err"; rc=$?
rep=$(result "$id" repair)
if [ $rc -eq 0 ] && [ -n "$rep" ] && [ "$rep" != resumed ] && [ "$(result "$id" moved)" = false ]; then
    ok "repair of a job killed in transfer: '$rep', not 'resumed'"
else notok "repair said '$rep' (rc $rc)" "$(cat "$T/err")"; fi
sed -i "/^\[vm app4\]/,/^\[/s/^host=beta/host=alpha/" "$STATE"

# ---- 9. bulk: every VM accounted for ----------------------------------------------------
hid=$(killed_job app5 --to beta)
cat > "$T/plan.conf" <<EOC
[bulk]
max-per-backend=2
max-per-host=2
[wave 1]
vms=demo:app4;demo:app5
to=beta
EOC
V --json bulk "$T/plan.conf" >"$T/out" 2>"$T/err"; rc=$?
moved=$("$JSON" moved <"$T/out"); skipped=$("$JSON" skipped <"$T/out")
why=$("$JSON" vms.1.reason <"$T/out"); what=$("$JSON" vms.1.outcome <"$T/out")
if [ $rc -eq 1 ] && [ "$moved" = 1 ] && [ "$skipped" = 1 ] && [ "$what" = skipped ] \
    && echo "$why" | grep -q "interrupted job $hid" && [ "$(peer app4 host)" = beta ] \
    && [ "$(peer app5 host)" = alpha ]; then
    ok "bulk: app4 moved, app5 skipped (held by job $hid), exit 1, counted in --json"
else notok "bulk accounting (rc $rc moved $moved skipped $skipped)" "$(cat "$T/out" "$T/err")"; fi
V bulk "$T/plan.conf" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "^bulk: 0 VM(s) moved, [0-9] failed, [0-9] skipped" "$T/out" \
    && grep -q "app5: skipped: .*interrupted job $hid" "$T/err"; then
    ok "bulk text: the summary counts the failure and the skip"
else notok "bulk text (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
V job repair "$hid" >/dev/null 2>&1

# ---- 10. bulk --reverse: repaired moves, storage-only moves, exact paths -----------------
# app1 was moved by a repaired (retried) job; web1 by a plain migrate; app3's
# files by a storage-only move with a path
V migrate-storage demo:app3 --path /p3 --force >"$T/out" 2>"$T/err"
cat > "$T/rplan.conf" <<EOC
[wave 1]
vms=demo:app1;demo:web1;demo:app3
to=beta
EOC
if [ "$(peer app3 path)" = /p3 ] && [ "$(peer app3 host)" = alpha ]; then
    V --json bulk "$T/rplan.conf" --reverse >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && [ "$("$JSON" moved <"$T/out")" = 3 ] \
        && [ "$(peer app1 host)" = alpha ] && [ "$(peer app1 path)" = /srv/vms ] \
        && [ "$(peer web1 host)" = alpha ] && [ "$(peer web1 path)" = /srv/vms ] \
        && [ "$(peer app3 host)" = alpha ] && [ "$(peer app3 path)" = /srv/vms ]; then
        ok "bulk --reverse: the retried move, a host move and a storage-only move, paths exact"
    else notok "bulk --reverse (rc $rc)" "$(cat "$T/out" "$T/err")" "$(cat "$STATE")"; fi
else notok "migrate-storage app3" "$(cat "$T/err")"; fi

# ---- 11. acl recreate on a backend without access rules ------------------------------------
V acl recreate demo:web1 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(cat "$T/err")" = "vmshift: backend 'demo' (plugin skeleton 1.0.0) does not support 'recreate_acl'" ]; then
    ok "acl recreate on skeleton: the exact 'does not support' line"
else notok "acl recreate on skeleton (rc $rc)" "$(cat "$T/err")"; fi

echo "1..$n"
