#!/bin/sh
# Recovery on the ESX plugin through the vmshift command against the
# vSphere simulator (issues 12 and 13), each result read back with the
# independent govmomi client (tests/vcsim/vcsim-check):
#  - the acl phase runs after a host-only move, and `acl recreate` puts back
#    the permissions the move saved after they were removed;
#  - a lost reply to RelocateVM_Task (the reply cut short): vmshift finds
#    the task the server started and follows it instead of calling again
#    (exactly one relocate task in TaskManager.recentTask), and the VM is
#    where the job says;
#  - a kept-alive connection closed under RelocateVM_Task: the call is not
#    resent by the HTTP layer (send-once), nothing was started, VM stays.
# TAP output; the plan comes last.
B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
PLUGIN=$B/plugins/esx/.libs/esx.so
VMSHIFT=$B/host/vmshift

if [ ! -x "$LAUNCHER" ] || [ ! -x "$CHECKER" ]; then
    echo "1..0 # SKIP vSphere simulator launcher not built (needs golang-go and golang-github-vmware-govmomi-dev)"
    exit 0
fi
for p in "launcher:$LAUNCHER" "check:$CHECKER"; do
    want=$(sh "$S/tests/vcsim/source-hash" "$S/tests/vcsim/${p%%:*}")
    have=$("${p#*:}" -source-hash 2>/dev/null)
    if [ -z "$want" ] || [ "$want" != "$have" ]; then
        echo "Bail out! ${p#*:} was built from other sources than $S/tests/vcsim/${p%%:*}"
        exit 1
    fi
done
if [ ! -f "$PLUGIN" ] || [ ! -x "$VMSHIFT" ] || ! command -v sqlite3 >/dev/null; then
    echo "1..0 # SKIP ESX plugin, vmshift or sqlite3 missing"
    exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-esx-rec.XXXXXX")
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for f in "$@"; do sed 's/^/# /' "$f"; done; }

: >"$T/sim.out"
"$LAUNCHER" -ca-file "$T/ca.pem" -credentials "$T/creds" -task-step-ms 60 \
    >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
i=0
while [ "$(wc -l <"$T/sim.out")" -lt 2 ] && [ $i -lt 600 ]; do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
URL=$(sed -n 1p "$T/sim.out")
CTL=$(sed -n 2p "$T/sim.out")
if [ -z "$CTL" ]; then
    echo "Bail out! the simulator did not start"
    exit 1
fi
mkdir -p "$T/state" "$T/plugins"
cp "$PLUGIN" "$T/plugins/esx.so"
chmod 755 "$T/plugins"
{
    echo "[backend vc]"
    echo "plugin=esx"
    echo "url=$URL"
    echo "credentials=$T/creds"
    echo "ca-file=$T/ca.pem"
} >"$T/vmshift.conf"
V() { timeout 120 "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" \
        --state-dir "$T/state" "$@" >"$T/out" 2>"$T/err"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" "$@"; }
ctl() { timeout 10 curl -sf "$CTL/ctl/$1" >/dev/null || echo "# control call $1 failed"; }
prop() { sim vm "$1" | sed -n "s/^$2=//p"; }
DB=$T/state/journal.db
VM=DC0_C0_RP0_VM0

# ---- the acl phase after a host-only move; acl recreate from its data ----------------
sim power "$VM" on >/dev/null 2>&1
# two destinations in the cluster other than where the VM starts
set -- $(for h in DC0_C0_H0 DC0_C0_H1 DC0_C0_H2; do [ "$h" != "$(prop "$VM" host)" ] && echo "$h"; done)
D1=$1 D2=$2
sim set-perms "$VM" alice ReadOnly true
sim set-perms "$VM" bob Admin false
V migrate "$VM" --to "$D1" --live; rc=$?
id=$(sqlite3 "$DB" "SELECT max(id) FROM jobs WHERE vm='$VM'")
if [ $rc -eq 0 ] && [ "$(prop "$VM" host)" = "$D1" ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM events WHERE job=$id AND kind='phase' AND value='acl'")" = 1 ] \
    && sqlite3 "$DB" "SELECT count(*) FROM events WHERE job=$id AND kind='save' AND key='acl'" | grep -qx 1; then
    ok "host-only move: VM on $D1 (simulator), acl phase run, permissions saved"
else nok "host-only move and acl phase (rc $rc)" "$T/out" "$T/err"; fi
sim clear-perms "$VM"
if [ -z "$(sim perms "$VM")" ]; then
    V acl recreate "$VM"; rc=$?
    if [ $rc -eq 0 ] && sim perms "$VM" | grep -qx 'alice ReadOnly true false' \
        && sim perms "$VM" | grep -qx 'bob Admin false false'; then
        ok "acl recreate after the permissions were removed: both back (simulator)"
    else nok "acl recreate (rc $rc)" "$T/out" "$T/err"; fi
    aid=$(sqlite3 "$DB" "SELECT max(id) FROM jobs WHERE vm='$VM' AND kind='acl'")
    sqlite3 "$DB" "SELECT value FROM events WHERE job=$aid" | grep -q "saved by job $id, the last move" \
        && ok "acl recreate names the move whose data it re-applied" \
        || nok "acl recreate source" "$T/err"
else nok "clear-perms did not clear"; nok "acl recreate source: not tested"; fi

# ---- a lost reply to RelocateVM_Task ------------------------------------------------------
before=$(sim tasks "$VM" | grep -ci relocate)
ctl "http?method=RelocateVM_Task&mode=truncate"
V migrate "$VM" --to "$D2" --live; rc=$?
after=$(sim tasks "$VM" | grep -ci relocate)
host=$(prop "$VM" host)
id=$(sqlite3 "$DB" "SELECT max(id) FROM jobs WHERE vm='$VM'")
loc=$(sqlite3 "$DB" "SELECT location_host FROM jobs WHERE id=$id")
if [ $rc -eq 0 ] && [ "$host" = "$D2" ] && [ "$loc" = "$D2" ] \
    && [ $((after - before)) -eq 1 ] && grep -q "reply was lost" "$T/err"; then
    ok "reply to RelocateVM_Task cut short: its task followed, not sent again; VM on $D2 as the journal says"
else nok "lost reply (rc $rc host $host journal $loc tasks $before->$after)" "$T/out" "$T/err"; fi

# ---- a kept-alive connection that dies under RelocateVM_Task (issue 13) ----------------
# The launcher closes the connection without reading the call; libcurl would
# resend it on a fresh connection by itself. A *_Task call must reach the
# server at most once: vmshift refuses the resend, reads the VM's tasks,
# finds none new and says nothing was started (the VM stays, no new task).
before=$(sim tasks "$VM" | grep -ci relocate)
ctl "http?method=RelocateVM_Task&mode=close"
V migrate "$VM" --to "$D1" --live; rc=$?
after=$(sim tasks "$VM" | grep -ci relocate)
host=$(prop "$VM" host)
if [ $rc -ne 0 ] && [ "$host" = "$D2" ] && [ "$after" -eq "$before" ] \
    && grep -q "not sent again" "$T/err" && grep -q "nothing was started" "$T/err"; then
    ok "connection closed under RelocateVM_Task: not sent again, no task started, VM stays on $D2"
else nok "send-once RelocateVM_Task (rc $rc host $host tasks $before->$after)" "$T/out" "$T/err"; fi
ctl reset

# ---- job repair --force-cleanup on a backend without a cleanup operation --------------------
V migrate "$VM" --to "$(prop "$VM" host)" --live # refused by validation: a failed job
id=$(sqlite3 "$DB" "SELECT max(id) FROM jobs WHERE vm='$VM'")
V job repair "$id" --force-cleanup; rc=$?
if [ "$(sqlite3 "$DB" "SELECT state FROM jobs WHERE id=$id")" = failed ] && [ $rc -eq 1 ] \
    && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^vmshift: backend 'vc' (plugin esx .*) does not support 'cleanup'$" "$T/err"; then
    ok "job repair --force-cleanup on ESX: exit 1, the one 'does not support' line"
else nok "force-cleanup on ESX (rc $rc)" "$T/out" "$T/err"; fi

echo "1..$n"
