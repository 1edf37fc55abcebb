#!/bin/sh
# The fault-injection matrix's quick sample (issue 13 item 7; the full run
# is bench/faults, 500 faults per backend), through the vmshift command and
# checked from the peer's own view by bench/faults (the skeleton's state
# file, the Hyper-V simulator's /state):
#  - skeleton: one case per (move, fault) pair, 84 cases: live, cold,
#    storage and host+storage moves x vmshift killed -9 at each phase, the
#    hypervisor's server error, cut connection, lost reply, full disk and
#    dead destination, and job cancel raced with the transfer and the
#    switchover; after each, repair, then: the VM in exactly one place, not
#    half moved, the journal's location and outcome as the peer shows;
#  - skeleton, a move between two skeleton backends (skel1:web1 --to
#    skel2:delta, two disks of random bytes): killed at each of its phases
#    and mid-import, the import failing or writing a wrong byte, the disk
#    read back wrong or refused, the source's disk refused, a cancel in the
#    import; checked from both skeletons' state and data files (sha256);
#    a source giving a wrong byte (sabotage) shows as corrupt, exit 1;
#  - the matrix can fail: a hypervisor that applies half a move (the
#    skeleton's ignore=path) shows in the disks column and exits 1;
#  - vmshift processes starting at once on a new state directory all get
#    the same, complete journal (one saw a 0-byte file and refused it);
#  - Hyper-V simulator: a sample of 16 cases; every column 0, ACLs
#    included (the "Virtual Machines" folder's grant was the matrix's find);
#  - ESX on the vSphere simulator (20 cases, checked with vcsim-check: one
#    registration, host, datastores, power, the VM's permissions) and KVM
#    over two real libvirtd (6 cases, checked with virsh and qemu-io; skipped
#    under ASan like the other libvirt suites);
#  - KVM over QMP (real QEMU, a guest writing to its qcow2 disk): the 5
#    cases that lost data before their fixes.
# TAP; the plan comes last.
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
FAULTS=$S/bench/faults
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-faults.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for f in "$@"; do sed 's/^/# /' "$f" | tail -n 30; done; }
# row BACKEND FILE: the table row of BACKEND (FAULTS LOST TWICE LOCATION ACL DISKS LEFTOVERS)
row() { awk -v b="$1" '$1 == b { print $2, $3, $4, $5, $6, $7, $8 }' "$2"; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ] || ! command -v python3 >/dev/null; then
    echo "1..0 # SKIP needs the skeleton plugin and python3"
    exit 0
fi
export VMSHIFT_BUILDDIR=$B VMSHIFT_SRCDIR=$S

# ---- skeleton: every (move, fault) pair once ------------------------------------------
python3 "$FAULTS" -b skeleton --quick -n 84 --only live/,cold/,storage/ >"$T/skel" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(row skeleton "$T/skel")" = "84 0 0 0 0 0 0" ]; then
    ok "skeleton: 84 faults (4 moves x 21 faults), none lost, twice, misplaced or half moved"
else notok "skeleton matrix (exit $rc)" "$T/skel"; fi
grep -q "job states before repair: .*interrupted [1-9]" "$T/skel" \
    && grep -q "job states before repair: .*failed [1-9]" "$T/skel" \
    && ok "skeleton: the faults struck (jobs interrupted and failed before the repairs)" \
    || notok "skeleton: no fault struck" "$T/skel"

# ---- skeleton: a move between two skeleton backends, every fault once ------------------
python3 "$FAULTS" -b skeleton --quick --only cross/ >"$T/cross" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(row skeleton "$T/cross")" = "14 0 0 0 0 0 0" ] \
    && grep -q "job states before repair: cancelled 1, failed [1-9], interrupted [1-9]" "$T/cross"; then
    ok "skeleton cross (skel1 -> skel2): 14 faults struck, none lost, twice, misplaced, corrupt or left over"
else notok "skeleton cross matrix (exit $rc)" "$T/cross"; fi
python3 "$FAULTS" -b skeleton --quick --only cross/kill@done,cross/kill@acl --sabotage >"$T/csab" 2>&1; rc=$?
set -- $(row skeleton "$T/csab")
if [ $rc -eq 1 ] && [ "${6:-0}" -eq 2 ] && grep -q "skel2's disks are not the source's bytes" "$T/csab"; then
    ok "cross: a destination copy with a wrong byte shows in the disks column, exit 1"
else notok "sabotaged cross matrix (exit $rc)" "$T/csab"; fi

# ---- the matrix fails when the peer is left half moved ---------------------------------
python3 "$FAULTS" -b skeleton --quick -n 12 --only host+storage/ --sabotage >"$T/sab" 2>&1; rc=$?
set -- $(row skeleton "$T/sab")
if [ $rc -eq 1 ] && [ "${6:-0}" -gt 0 ] && grep -q "disks: half moved" "$T/sab"; then
    ok "a hypervisor that applies half a move: the disks column counts it, exit 1"
else notok "sabotaged matrix (exit $rc)" "$T/sab"; fi

# ---- a new journal, many vmshift processes at once ------------------------------------
mkdir -p "$T/p" "$T/e" && chmod 755 "$T/p" "$T/e"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/p/" && chmod 755 "$T/p/skeleton.so"
printf '[backend demo]\nplugin=skeleton\nstate-file=%s/demo.state\n' "$T" >"$T/e/vmshift.conf"
V() { "$VMSHIFT" --config "$T/e/vmshift.conf" --plugin-dir "$T/p" --state-dir "$T/st" "$@"; }
V vms >/dev/null 2>&1
fails=0
for round in 1 2 3 4 5; do
    rm -rf "$T/st"; pids=
    for i in 1 2 3 4 5 6; do V jobs >"$T/o$i" 2>"$T/r$i" & pids="$pids $!"; done
    for p in $pids; do wait "$p" || fails=$((fails + 1)); done
done
if [ $fails -eq 0 ] && V journal check >"$T/jc" 2>&1 && [ -z "$(ls "$T/st" | grep -v '^journal.db')" ]; then
    ok "30 vmshift processes on 5 new state directories: all exit 0, one complete journal"
else notok "concurrent first use ($fails failed)" "$T/r1" "$T/jc"; fi

# ---- Hyper-V simulator sample -----------------------------------------------------------
if [ -f "$B/plugins/hyperv/.libs/hyperv.so" ]; then
    python3 "$FAULTS" -b hyperv -n 16 --seed 7 >"$T/hv" 2>&1; rc=$?
    set -- $(row hyperv "$T/hv")
    if [ "${1:-}" = 16 ] && [ "$2 $3 $4 $6 $7" = "0 0 0 0 0" ] && [ $rc -eq 0 ]; then
        ok "hyperv: 16 faults, none lost, twice, misplaced, half moved or left over"
    else notok "hyperv matrix (exit $rc)" "$T/hv"; fi
    if [ "${5:-x}" = 0 ]; then ok "hyperv: ACLs complete after every repair"
    else notok "hyperv: ACLs complete after every repair (${5:-?} missing)" "$T/hv"; fi
else
    echo "ok $((n = n + 1)) # SKIP hyperv plugin not built"
    echo "ok $((n = n + 1)) # SKIP hyperv plugin not built"
fi

# ---- ESX (the vSphere simulator) and KVM over libvirt: samples ---------------------------
# sample BACKEND COUNT SEED WHAT: a sample of bench/faults on BACKEND; TAP lines
sample() {
    python3 "$FAULTS" -b "$1" -n "$2" --seed "$3" >"$T/$1" 2>&1; rc=$?
    if skip=$(sed -n "s/^# $1: skipped: //p" "$T/$1") && [ -n "$skip" ]; then
        echo "ok $((n = n + 1)) # SKIP $skip"
        echo "ok $((n = n + 1)) # SKIP $skip"
        return
    fi
    set -- "$1" "$2" "$4" $(row "$1" "$T/$1")
    if [ "${4:-}" = "$2" ] && [ "$5 $6 $7 $8 $9 ${10}" = "0 0 0 0 0 0" ] && [ $rc -eq 0 ]; then
        ok "$1: $2 faults ($3), none lost, twice, misplaced, without ACLs, half moved or left over"
    else notok "$1 matrix (exit $rc)" "$T/$1"; fi
    grep -q "job states before repair: .*interrupted [1-9]" "$T/$1" \
        && ok "$1: the faults struck (jobs interrupted before the repairs)" \
        || notok "$1: no fault struck" "$T/$1"
}
sample esx 20 5 "kills, HTTP and SOAP faults, lost and cut replies, task failures, cancel"
sample libvirt 6 5 "kills, destination QEMU killed, connections cut, cancel"

# ---- KVM over QMP: the cases that found lost data (real QEMU, a guest writing its disk) -
# a cold move killed in its acl or done phase (the repair rolled back a move
# that had taken effect and deleted the VM's only disk), a storage move whose
# pivot's reply was lost (the job deleted the file QEMU had pivoted onto),
# storage and host+storage moves killed after the switchover (the old disk
# stayed, the definition named the old file); and a disk filled at the
# destination of a storage move, and QEMU refusing a host+storage move's
# blockdev-mirror (a server error)
KVM_CASES=cold/kill@acl,cold/kill@done,storage/lost-reply@block-job-complete,storage/kill@cleanup,host+storage/kill@acl,storage/disk-full@transfer,host+storage/error@blockdev-mirror
python3 "$FAULTS" -b kvm --quick -n 7 --only "$KVM_CASES" >"$T/kvm" 2>&1; rc=$?
if skip=$(sed -n "s/^# kvm: skipped: //p" "$T/kvm") && [ -n "$skip" ]; then
    echo "ok $((n = n + 1)) # SKIP $skip"
elif [ $rc -eq 0 ] && [ "$(row kvm "$T/kvm")" = "7 0 0 0 0 0 0" ]; then
    ok "kvm (QMP): 7 faults (cold killed late, a pivot's reply lost, killed after the switchover, disk full, a server error), none lost, misplaced, half moved or left over"
else notok "kvm (QMP) matrix (exit $rc)" "$T/kvm"; fi
echo "1..$n"
