#!/bin/sh
# Moves between ESX (the esx plugin against the vSphere simulator) and KVM
# (the kvm plugin's qmp transport: bare QEMU hosts, run directories)
# through `vmshift migrate VM --to BACKEND:HOST` (issue 16), checked from
# each peer's own view: the simulator's (tests/vcsim/vcsim-check hw: the
# defined VM's firmware, CPUs, memory, controllers, MAC, network; the
# datastore's directory: the flat files' bytes) and the KVM host's (its
# vm.conf, its images read as raw with qemu-img). No VM runs: only the
# definitions and the bytes move.
#  - check kvm:VM --to esx:HOST: the virtio disk and NIC ESX replaces are
#    warnings (bus-remapped, nic-model-changed, guest-drivers);
#  - KVM -> ESX: the defined VM and the uploaded disks' bytes;
#  - ESX -> KVM -> ESX round trip (--delete-source on each leg): the raw
#    bytes of both disks have the same sha256 at every step, in their order.
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
for f in plugins/esx/.libs/esx.so plugins/kvm/.libs/kvm.so host/vmshift; do
    [ -e "$B/$f" ] || { echo "1..0 # SKIP $f not built"; exit 0; }
done
for c in python3 qemu-img; do
    command -v $c >/dev/null || { echo "1..0 # SKIP $c missing"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (the kvm plugin's ACLs)"; exit 0; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-esx-kvm.XXXXXX")
chmod 755 "$T"
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    [ -n "${KEEP_T:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
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

mkdir -p "$T/plugins" "$T/state" "$T/b/images" "$T/c/images"
chmod 755 "$T/plugins"
cp "$B/plugins/esx/.libs/esx.so" "$B/plugins/kvm/.libs/kvm.so" "$T/plugins/"
chmod 755 "$T/plugins/"*.so
cat >"$T/vmshift.conf" <<EOC
[vmshift]
state-dir=$T/state

[backend esx]
plugin=esx
url=$URL
credentials=$T/creds
ca-file=$T/ca.pem

[backend kvm]
plugin=kvm
hosts=b=$T/b, c=$T/c
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
count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1]))
print(len([f for f in j["findings"] if f["code"] == sys.argv[2] and f["severity"] == sys.argv[3]]))' \
        "$T/out" "$1" "$2" 2>/dev/null
}
found() { [ "$(count "$1" "$2")" -ge 1 ] 2>/dev/null; }
DS0=$(sim datastore LocalDS_0 | sed -n 's/^url=//p')
DS1=$(sim datastore LocalDS_1 | sed -n 's/^url=//p')

# ---- a KVM VM on host b: a qcow2 virtio disk, a raw SATA disk, virtio NIC --
MAC=52:54:00:12:34:56
head -c 4194304 /dev/urandom >"$T/d0.raw"
head -c 1048576 /dev/urandom >"$T/d1.raw"
A=$(sha "$T/d0.raw") Bs=$(sha "$T/d1.raw")
qemu-img convert -f raw -O qcow2 "$T/d0.raw" "$T/b/images/rt.qcow2"
cp "$T/d1.raw" "$T/b/images/rt-data.raw"
mkdir -p "$T/b/vms/rt"
cat >"$T/b/vms/rt/vm.conf" <<EOC
[vm]
name=rt
memory-mib=256
vcpus=2
guest-os=linux
firmware=bios
[disk vda]
path=$T/b/images/rt.qcow2
format=qcow2
bus=virtio
boot-order=1
[disk vdb]
path=$T/b/images/rt-data.raw
format=raw
bus=sata
[nic net0]
mac=$MAC
network=default
model=virtio-net-pci
EOC

V --json check kvm:rt --to esx:DC0_H0 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
if grep -qE "does not support (moves to/from other backends|'export_vm')" "$T/err"; then
    echo "1..0 # SKIP the kvm plugin's qmp transport has no moves between backends here"
    exit 0
fi
cond "check kvm:rt --to esx: \"bus-remapped\", \"nic-model-changed\", \"guest-drivers\" warnings, no error" \
    'found "bus-remapped" warning && found "nic-model-changed" warning &&
     found "guest-drivers" warning && python3 -c "import json,sys; sys.exit(json.load(open(\"$T/out\"))[\"errors\"])"'

# ---- KVM -> ESX --------------------------------------------------------------
V migrate kvm:rt --to esx:DC0_H0 --network net0=DC0_DVPG0 --force --delete-source >"$T/out" 2>"$T/err"
check "migrate kvm:rt --to esx:DC0_H0 --force --delete-source exits 0" [ $? -eq 0 ]
sim hw rt >"$T/hw" 2>&1
cond "vcsim: rt is bios, 2 CPUs, 256 MB, boots from the first disk" \
    'grep -q "^vm firmware=bios guest=otherLinux64Guest cpus=2 memory=256 boot=[0-9]" "$T/hw"'
cond "vcsim: virtio disk on pvscsi, SATA disk on AHCI, with their sizes" \
    'grep -q "file=\[LocalDS_0\] rt/rt.vmdk ctl=ParaVirtualSCSIController unit=0 capacity=4194304" "$T/hw" &&
     grep -q "file=\[LocalDS_0\] rt/rt_1.vmdk ctl=VirtualAHCIController unit=0 capacity=1048576" "$T/hw"'
check "vcsim: the NIC is vmxnet3 with the KVM MAC (manual) on DC0_DVPG0" \
    grep -q "type=VirtualVmxnet3 mac=$MAC addressType=manual network=DC0_DVPG0" "$T/hw"
cond "step 1 (KVM -> ESX): the datastore's flat files hold the KVM disks' raw bytes (sha256)" \
    '[ "$(sha "$DS0/rt/rt-flat.vmdk")" = "$A" ] && [ "$(sha "$DS0/rt/rt_1-flat.vmdk")" = "$Bs" ]'
cond "--delete-source: host b has no rt and no image of it" \
    '[ ! -e "$T/b/vms/rt" ] && [ ! -e "$T/b/images/rt.qcow2" ] && [ ! -e "$T/b/images/rt-data.raw" ]'

# ---- ESX -> KVM ----------------------------------------------------------------
key=$(sed -n 's/^nic \([0-9]*\) .*/\1/p' "$T/hw" | head -1)
V migrate esx:rt --to kvm:c --network "$key=default" --force --delete-source >"$T/out" 2>"$T/err"
check "migrate esx:rt --to kvm:c --delete-source exits 0" [ $? -eq 0 ]
CC=$T/c/vms/rt/vm.conf
# (BIOS is the qmp transport's default: a vm.conf without firmware=)
cond "kvm host c: vm.conf of rt, BIOS, 2 vCPUs, 256 MiB, its NIC's MAC on default" \
    'case "$(conf "$CC" vm firmware)" in ""|bios) ;; *) false ;; esac &&
     [ "$(conf "$CC" vm vcpus)/$(conf "$CC" vm memory-mib)" = 2/256 ] &&
     grep -q "^mac=$MAC" "$CC" && grep -q "^network=default" "$CC"'
all_qcow2() {
    [ -n "$(sed -n "s/^path=//p" "$1")" ] || return 1
    for p in $(sed -n "s/^path=//p" "$1"); do
        qemu-img info -U "$p" | grep -q "^file format: qcow2" || return 1
    done
}
first=$(sed -n 's/^\[\(disk .*\)\]$/\1/p' "$CC" | head -1)
cond "kvm host c: the images are qcow2, the first disk first in the boot order" \
    'all_qcow2 "$CC" && [ "$(conf "$CC" "$first" boot-order)" = 1 ]'
cond "step 2 (ESX -> KVM): both images' raw bytes are the same, in order (sha256)" \
    '[ "$(kvm_shas "$CC")" = "$A $Bs " ]'
cond "--delete-source: vcsim has no rt, LocalDS_0 no folder rt" \
    '! sim vm rt >/dev/null 2>&1 && [ ! -e "$DS0/rt" ]'

# ---- KVM -> ESX, back ----------------------------------------------------------
nic=$(sed -n 's/^\[nic \(.*\)\]$/\1/p' "$CC" | head -1)
V migrate kvm:rt --to esx:DC0_H0 --path LocalDS_1 --network "$nic=DC0_DVPG0" --force >"$T/out" 2>"$T/err"
check "migrate kvm:rt --to esx:DC0_H0 --path LocalDS_1 exits 0" [ $? -eq 0 ]
sim hw rt >"$T/hw" 2>&1
cond "vcsim: rt defined again on LocalDS_1, bios, its MAC on DC0_DVPG0" \
    'grep -q "^vm firmware=bios .*cpus=2 memory=256" "$T/hw" &&
     grep -q "file=\[LocalDS_1\] rt/rt.vmdk .*capacity=4194304" "$T/hw" &&
     grep -q "mac=$MAC addressType=manual network=DC0_DVPG0" "$T/hw"'
cond "step 3 (KVM -> ESX): the flat files are the first step's bytes (sha256)" \
    '[ "$(sha "$DS1/rt/rt-flat.vmdk")" = "$A" ] && [ "$(sha "$DS1/rt/rt_1-flat.vmdk")" = "$Bs" ]'
cond "the KVM source stays on host c, its bytes unchanged" '[ "$(kvm_shas "$CC")" = "$A $Bs " ]'

echo "1..$n"
