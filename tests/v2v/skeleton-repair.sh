#!/bin/sh
# Moves between backends killed at each phase (VMSHIFT_TEST_KILL_AT), then
# `vmshift job repair ID`: the VM exists in exactly one place afterwards,
# checked from the skeleton's own state files and disk files (sha256sum):
# before verify passed, only at the source, unchanged, and nothing of it at
# the destination; after, only at the destination (--delete-source), its
# disk the source's bytes. Also: --retry of a job killed in import lands
# the move; `jobs` and `job show` name both backends.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2vrep.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
cond() { if eval "$2"; then ok "$1"; else notok "$1" "$2"; fi; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ]; then
    echo "1..0 # SKIP needs the skeleton plugin"
    exit 0
fi
PHASES="validate export import verify acl finish done"
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
: >"$T/etc/vmshift.conf"
vms=
for p in $PHASES retry; do vms="${vms}vm-$p@alpha;"; done
cat >"$T/etc/backends.d/skel.conf" <<EOC
[backend skel1]
plugin=skeleton
hosts=alpha;beta
vms=$vms
state-file=$T/s1.state

[backend skel2]
plugin=skeleton
hosts=gamma;delta
vms=other@gamma
state-file=$T/s2.state
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" --daemon no "$@"; }
S1=$T/s1.state
S2=$T/s2.state
D1=$T/s1.state.data
D2=$T/s2.state.data
has_vm() { grep -q "^\[vm $2\]" "$1"; }
sum() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
V vms >/dev/null 2>&1
for p in $PHASES retry; do
    vm=vm-$p
    sed -i "/^\[vm $vm\]/,/^\[/s/^power=running/power=stopped/" "$S1"
    mkdir -p "$D1/srv/vms/$vm"
    head -c 786432 /dev/urandom >"$D1/srv/vms/$vm/disk0.img"
done
# only at the source, unchanged; nothing at the destination
at_source() {
    has_vm "$S1" "$1" && [ "$(sum "$D1/srv/vms/$1/disk0.img")" = "$2" ] && ! has_vm "$S2" "$1" &&
        [ -z "$(ls -A "$D2/srv/vms/$1" 2>/dev/null)" ]
}
# only at the destination, with the source's bytes
at_dest() {
    has_vm "$S2" "$1" && [ "$(sum "$D2/srv/vms/$1/disk0.img")" = "$2" ] && ! has_vm "$S1" "$1" &&
        [ ! -e "$D1/srv/vms/$1/disk0.img" ]
}
job_of() { V jobs --vm "$1" -o ID -n | head -n 1 | tr -d ' '; }

for p in $PHASES; do
    vm=vm-$p
    s0=$(sum "$D1/srv/vms/$vm/disk0.img")
    VMSHIFT_TEST_KILL_AT=$p V migrate "skel1:$vm" --to skel2:delta --delete-source \
        >"$T/out" 2>"$T/err"
    rc=$?
    id=$(job_of "$vm")
    st=$(V jobs --vm "$vm" -o STATE -n | head -n 1 | tr -d ' ')
    cond "killed at $p: exit 137, job $id interrupted" '[ $rc -eq 137 ] && [ "$st" = interrupted ]'
    V job repair "$id" >"$T/out" 2>"$T/err"
    rc=$?
    cond "job repair $id (killed at $p) exits 0" '[ $rc -eq 0 ]'
    case $p in
        validate | export | import | verify)
            cond "killed at $p, repaired: $vm only at the source, unchanged; nothing at skel2" 'at_source "$vm" "$s0"' ;;
        *)
            cond "killed at $p, repaired: $vm only at skel2, with the source's bytes" 'at_dest "$vm" "$s0"' ;;
    esac
done
V job show "$(job_of vm-acl)" >"$T/out" 2>&1
cond "job show names the destination backend" 'grep -q "moves to:  backend skel2, host delta" "$T/out"'
V jobs >"$T/out" 2>&1
cond "jobs shows both backends" 'grep -q "skel1->skel2" "$T/out"'

vm=vm-retry
s0=$(sum "$D1/srv/vms/$vm/disk0.img")
VMSHIFT_TEST_KILL_AT=import V migrate "skel1:$vm" --to skel2:gamma --delete-source >/dev/null 2>&1
id=$(job_of "$vm")
V jobs >/dev/null 2>&1
V job repair "$id" --retry >"$T/out" 2>"$T/err"
rc=$?
cond "job repair --retry of a move killed in import exits 0" '[ $rc -eq 0 ]'
cond "... and the VM is only at skel2, with the source's bytes" 'at_dest "$vm" "$s0"'
echo "1..$n"
