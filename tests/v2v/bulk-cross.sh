#!/bin/sh
# `vmshift bulk` and `vmshift bulk --reverse` of a wave that moves between
# hypervisors (issue 16 item 6): two stopped VMs on ESX (the vSphere
# simulator) go to a KVM host (the kvm plugin's qmp transport, a run
# directory) in one wave with delete-source=true, then --reverse brings
# both back. The VMs are put on ESX through vmshift itself (skeleton ->
# esx, the disks PUT on the datastore; not what is tested). Checked from
# each peer's own view, never from vmshift's report:
#  - KVM: each VM's vm.conf (vCPUs, memory, MAC) and its images' raw bytes
#    (qemu-img, sha256) equal to the ESX flat files, in their order;
#  - vcsim: the source VMs and their datastore folders gone;
#  - after --reverse: vcsim-check hw/vm of each VM (defined on its original
#    host DC0_H0 and its original datastore: bk2 was on LocalDS_1, not the
#    default; its MAC, its disks and their sizes), the datastore flat files'
#    sha256 equal to the original bytes, nothing left on the KVM host.
# TAP output; the plan comes last.

B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
VMSHIFT=$B/host/vmshift
if [ ! -x "$LAUNCHER" ] || [ ! -x "$CHECKER" ]; then
    echo "1..0 # SKIP vSphere simulator not built (needs golang-go and golang-github-vmware-govmomi-dev)"
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
for f in plugins/esx/.libs/esx.so plugins/kvm/.libs/kvm.so tests/skeleton/.libs/skeleton.so \
    host/vmshift; do
    [ -e "$B/$f" ] || { echo "1..0 # SKIP $f not built"; exit 0; }
done
for c in python3 qemu-img; do
    command -v $c >/dev/null || { echo "1..0 # SKIP $c missing"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (the kvm plugin's ACLs)"; exit 0; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-bulk-cross.XXXXXX")
chmod 755 "$T"
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    [ -n "${KEEP_T:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
show() { tail -n 12 "$T/out" "$T/err" 2>/dev/null | sed 's/^/# /'; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; show; fi; }
cond() { if eval "$2"; then ok "$1"; else nok "$1"; echo "# $2"; show; fi; }

: >"$T/sim.out"
"$LAUNCHER" -ca-file "$T/ca.pem" -credentials "$T/creds" -task-step-ms 20 \
    >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
i=0
while [ "$(wc -l <"$T/sim.out")" -lt 2 ] && [ $i -lt 600 ]; do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
URL=$(sed -n 1p "$T/sim.out")
[ -n "$URL" ] || { echo "Bail out! the simulator did not start"; sed 's/^/# /' "$T/sim.err"; exit 1; }

mkdir -p "$T/plugins" "$T/state" "$T/b/images"
chmod 755 "$T/plugins"
cp "$B/plugins/esx/.libs/esx.so" "$B/plugins/kvm/.libs/kvm.so" \
    "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/"
chmod 755 "$T/plugins/"*.so
cat >"$T/vmshift.conf" <<EOC
[vmshift]
state-dir=$T/state

[backend esx]
plugin=esx
url=$URL
credentials=$T/creds
ca-file=$T/ca.pem

[backend skel]
plugin=skeleton
hosts=alpha
vms=bk1@alpha;bk2@alpha
state-file=$T/skel.state

[backend kvm]
plugin=kvm
hosts=b=$T/b
EOC
# the kvm host has a network lan (the plan maps vSphere's port group onto
# it) and knows the port group too
cat >"$T/b/networks.conf" <<EOC
[network VM Network]
netdev=user

[network lan]
netdev=user
EOC
V() { timeout 300 "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" --daemon no "$@"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" "$@"; }
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
# the guest-visible bytes of a KVM image, as QEMU reads them
raw_sha() {
    timeout 120 qemu-img convert -U -O raw "$1" "$T/raw.tmp" 2>/dev/null && sha "$T/raw.tmp"
    rm -f "$T/raw.tmp"
}
# conf FILE GROUP KEY: a key of a KVM host's vm.conf
conf() {
    awk -v g="[$2]" -v k="$3" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
        in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
}
# the raw sha256 of each disk of a KVM VM's vm.conf, in its order
kvm_shas() {
    for g in $(sed -n 's/^\[disk \(.*\)\]$/\1/p' "$1"); do
        printf '%s ' "$(raw_sha "$(conf "$1" "disk $g" path)")"
    done
}
# the sha256 of each flat file of an ESX VM, in the order of its disks
esx_shas() {
    for f in $(sim hw "$1" 2>/dev/null | sed -n 's/^disk [0-9]* file=\[\([^]]*\)\] \([^ ]*\)\.vmdk .*/\1:\2/p'); do
        ds=$(sim datastore "${f%%:*}" | sed -n 's/^url=//p')
        printf '%s ' "$(sha "$ds/${f#*:}-flat.vmdk")"
    done
}
# an ESX VM's hardware without the device keys (assigned anew by each definition)
hw_nokeys() { sim hw "$1" 2>&1 | sed 's/^\(disk\|nic\) [0-9]* /\1 /; s/ boot=[0-9,]*$//'; }

# ---- two stopped VMs with real disks on ESX (skeleton -> esx, untimed) ------
V vms >/dev/null 2>&1 # creates the skeleton's state file
SK=$T/skel.state
i=0
for vm in bk1 bk2; do
    i=$((i + 1))
    d=$T/skel.state.data/srv/vms/$vm
    mkdir -p "$d"
    head -c $((2097152 * i)) /dev/urandom >"$d/disk0.img"
    head -c 1048576 /dev/urandom >"$d/disk1.img"
    sed -i "/^\[vm $vm\]/,/^\[/{s/^power=running/power=stopped/;s/^memory=.*/memory=268435456/}" "$SK"
    sed -i "/^\[vm $vm\]/a disks=disk0;disk1;\nnics=net0;\nmac-net0=00:50:56:0a:bb:0$i\nnetwork-net0=VM Network\nfirmware=bios" "$SK"
    # bk2 on a datastore other than the default one: --reverse puts it back there
    [ $vm = bk2 ] && set -- --path LocalDS_1 || set --
    V migrate "skel:$vm" --to esx:DC0_H0 "$@" --force >"$T/out" 2>"$T/err" ||
        { echo "Bail out! skel:$vm --to esx:DC0_H0 (the setup) failed"; show; exit 1; }
done
S1="$(sha "$T/skel.state.data/srv/vms/bk1/disk0.img") $(sha "$T/skel.state.data/srv/vms/bk1/disk1.img") "
S2="$(sha "$T/skel.state.data/srv/vms/bk2/disk0.img") $(sha "$T/skel.state.data/srv/vms/bk2/disk1.img") "
cond "setup: vcsim has bk1 (LocalDS_0) and bk2 (LocalDS_1) on DC0_H0, off, the skeleton's bytes" \
    'sim vm bk1 | grep -q "^datastores=LocalDS_0$" && sim vm bk2 | grep -q "^datastores=LocalDS_1$" &&
     sim vm bk1 | grep -q "^host=DC0_H0" && sim vm bk2 | grep -q "^power=poweredOff" &&
     [ "$(esx_shas bk1)" = "$S1" ] && [ "$(esx_shas bk2)" = "$S2" ]'
hw_nokeys bk1 >"$T/hw1.orig"
hw_nokeys bk2 >"$T/hw2.orig"
DS0=$(sim datastore LocalDS_0 | sed -n 's/^url=//p')
DS1=$(sim datastore LocalDS_1 | sed -n 's/^url=//p')

# ---- one wave ESX -> KVM -------------------------------------------------------
cat >"$T/plan" <<EOP
[wave 1]
vms=esx:bk1;esx:bk2
to=kvm:b
delete-source=true

# a per-backend network mapping: NICs sent to kvm leave VM Network for lan
[networks kvm]
VM Network=lan
EOP
V bulk "$T/plan" --dry-run >"$T/out" 2>"$T/err"
cond "bulk --dry-run: both moves between backends shown, nothing moved" \
    'grep -q "migrate esx:bk1 --to kvm:b --network [0-9]*=lan --delete-source" "$T/out" &&
     grep -q "migrate esx:bk2 --to kvm:b --network [0-9]*=lan --delete-source" "$T/out" &&
     [ ! -e "$T/b/vms/bk1" ]'
V bulk "$T/plan" --force >"$T/out" 2>"$T/err"
check "bulk PLAN --force (wave 1: esx:bk1, esx:bk2 to=kvm:b delete-source=true) exits 0" [ $? -eq 0 ]
for vm in bk1 bk2; do
    C=$T/b/vms/$vm/vm.conf
    eval "want=\$S${vm#bk}"
    cond "kvm host b: vm.conf of $vm, 256 MiB, its MAC from ESX, on lan (the plan's [networks kvm])" \
        '[ "$(conf "$C" vm memory-mib)" = 256 ] && grep -qi "^mac=00:50:56:0a:bb:0${vm#bk}" "$C" &&
         grep -q "^network=lan$" "$C" && ! grep -q "^network=VM Network" "$C"'
    cond "kvm host b: $vm's images hold the ESX disks' bytes, in order (sha256 of raw)" \
        '[ "$(kvm_shas "$C")" = "$want" ]'
    cond "delete-source: vcsim has no $vm, no datastore a folder $vm" \
        '! sim vm $vm >/dev/null 2>&1 && [ ! -e "$DS0/$vm" ] && [ ! -e "$DS1/$vm" ]'
done

# ---- --reverse: both back to ESX -------------------------------------------------
V bulk "$T/plan" --reverse --dry-run >"$T/out" 2>"$T/err"
cond "bulk --reverse --dry-run: kvm:bk1 and kvm:bk2 back to esx:DC0_H0" \
    'grep -q "migrate kvm:bk1 --to esx:DC0_H0" "$T/out" && grep -q "migrate kvm:bk2 --to esx:DC0_H0" "$T/out"'
V bulk "$T/plan" --reverse --force >"$T/out" 2>"$T/err"
check "bulk PLAN --reverse --force exits 0" [ $? -eq 0 ]
for vm in bk1 bk2; do
    eval "want=\$S${vm#bk}"
    ds=LocalDS_$((${vm#bk} - 1))
    sim vm $vm >"$T/vm" 2>&1
    cond "vcsim: $vm defined again on DC0_H0, off, its disks on its own datastore $ds" \
        'grep -q "^host=DC0_H0" "$T/vm" && grep -q "^power=poweredOff" "$T/vm" &&
         grep -q "^datastores=$ds$" "$T/vm"'
    sim hw $vm >"$T/hw" 2>&1
    cond "vcsim: $vm has its MAC (00:50:56:0a:bb:0${vm#bk}) on VM Network, bios, 256 MB" \
        'grep -q "mac=00:50:56:0a:bb:0${vm#bk} .*network=VM Network" "$T/hw" &&
         grep -q "^vm firmware=bios .*memory=256" "$T/hw"'
    cond "vcsim: $vm's two disks with their original sizes" \
        '[ "$(grep "^disk " "$T/hw" | sed "s/.* capacity=//" | tr "\n" " ")" = "$((2097152 * ${vm#bk})) 1048576 " ]'
    hw_nokeys $vm >"$T/hw.now"
    if ! cmp -s "$T/hw${vm#bk}.orig" "$T/hw.now"; then
        echo "# $vm's hardware differs from before the wave (not a failure):"
        diff "$T/hw${vm#bk}.orig" "$T/hw.now" | sed 's/^/#   /'
    fi
    cond "$vm: the datastore's flat files hold the original bytes, in order (sha256)" \
        '[ "$(esx_shas $vm)" = "$want" ]'
done
cond "nothing left on kvm host b (no VM, no image)" \
    '[ -z "$(ls -A "$T/b/vms" 2>/dev/null)" ] && [ -z "$(find "$T/b" -type f \( -name "*.qcow2" -o -name "*.raw" -o -name "*.img" \) 2>/dev/null)" ]'

echo "1..$n"
exit $failed
