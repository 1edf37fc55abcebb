#!/bin/sh
# Moves between backends with the ESX plugin as source and destination
# (issue 16), against the vSphere simulator (tests/vcsim/vcsim-launcher).
# The plugin's operations run through the SDK ABI (tests/esx/esx-drive
# v2v-*, with raw files as the other side, the skeleton's role); the
# result is read from the simulator's own view: the defined VM's devices
# with tests/vcsim/vcsim-check, the uploaded bytes from the datastore's
# directory and over /folder with curl, sha256 against the source.
# When the host's `vmshift migrate --to` exists, skeleton <-> esx runs
# through it too. TAP output; the plan comes last.

B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
PLUGIN=$B/plugins/esx/.libs/esx.so
DRIVE=$B/tests/esx/esx-drive
VMSHIFT=
for c in "$B/host/vmshift" "$B/vmshift"; do
    [ -x "$c" ] && VMSHIFT=$c && break
done
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
if [ ! -f "$PLUGIN" ] || [ ! -x "$DRIVE" ]; then
    echo "1..0 # SKIP ESX plugin not built"
    exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2v-esx.XXXXXX")
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() {
    d=$1; shift
    if "$@"; then ok "$d"; else nok "$d"; head -n 15 "$T/out" "$T/err" 2>/dev/null | sed 's/^/# /'; fi
}

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
if [ -z "$URL" ]; then
    echo "Bail out! the simulator did not start"
    sed 's/^/# /' "$T/sim.err"
    exit 1
fi
{
    echo "[backend esx]"; echo "plugin=esx"; echo "url=$URL"
    echo "credentials=$T/creds"; echo "ca-file=$T/ca.pem"
} >"$T/esx.conf"

drive() { timeout 120 "$DRIVE" "$PLUGIN" "$T/esx.conf" "$@" >"$T/out" 2>"$T/err"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
DS0=$(sim datastore LocalDS_0 | sed -n 's/^url=//p')
DS1=$(sim datastore LocalDS_1 | sed -n 's/^url=//p')
# a file over the datastore HTTP access, as another client reads it: curl
# with a session cookie from vcsim-check's own login is not available, so
# an unauthenticated GET must be refused and the bytes are read from the
# datastore's directory
folder_status() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" \
        "${URL%/sdk}/folder/$1?dcPath=DC0&dsName=$2"
}

# ---- source disks (the other backend's side: raw files) --------------
head -c 3145728 /dev/urandom >"$T/d0.raw"
head -c 1048576 /dev/urandom >"$T/d1.raw"
MAC=52:54:00:aa:bb:01

# ---- check_import ------------------------------------------------------
drive v2v-check web1 DC0_H0 --disk "$T/d0.raw,virtio,1" --disk "$T/d1.raw,sata,0" \
    --nic "net0,$MAC,VM Network,virtio-net-pci"
found() { grep -q "severity=$1 code=$2" "$T/out"; }
check "check_import: virtio disk and NIC remapped, guest drivers, as warnings" \
    eval 'found warning "bus-remapped" && found warning "nic-model-changed" &&
          found warning "guest-drivers" && ! grep -q severity=error "$T/out"'
drive v2v-check DC0_H0_VM0 DC0_H0 --disk "$T/d0.raw,scsi,1" --nic "net0,$MAC,NoSuchNet,vmxnet3"
check "check_import: name taken and missing network are errors" \
    eval 'found error "name-taken" &&
          grep -q "severity=error code=network-missing subject=.net0." "$T/out"'
drive v2v-check web1 DC0_H0 --path LocalDS_1 --disk "$T/d0.raw,scsi,1,999999999999999"
check "check_import: a disk larger than the datastore's free space is no-space" \
    grep -q 'severity=error code=no-space subject="LocalDS_1"' "$T/out"

# ---- import: other backend -> esx ----------------------------------------
drive v2v-import web1 DC0_H0 --path LocalDS_1 --firmware efi \
    --disk "$T/d0.raw,virtio,1" --disk "$T/d1.raw,sata,0" \
    --nic "net0,$MAC,DC0_DVPG0,virtio-net-pci"
check "import_vm: web1 defined" grep -q 'job ok=1' "$T/out"
DC=$(sed -n 's/^save key=esx-import-dir value="[^	]*	\([^	]*\)	.*/\1/p' "$T/out")
check "import_vm: folder saved in the job before it was made" \
    eval "grep -n 'save key=esx-import-dir' '$T/out' | head -1 | grep -q '^1:'"
sim hw web1 >"$T/hw" 2>&1
check "vcsim: web1 is efi, 2 CPUs, 512 MB, boots from its first disk" \
    eval "grep -q '^vm firmware=efi guest=otherLinux64Guest cpus=2 memory=512 boot=[0-9]' '$T/hw' &&
          test \"\$(sed -n 's/.*boot=//p' '$T/hw')\" = \"\$(sed -n 's/^disk \([0-9]*\) file=.*web1\.vmdk .*/\1/p' '$T/hw')\""
check "vcsim: disk 0 on pvscsi, disk 1 on SATA, attached to the uploaded files" \
    eval "grep -q 'file=\[LocalDS_1\] web1/web1.vmdk ctl=ParaVirtualSCSIController unit=0 capacity=3145728' '$T/hw' &&
          grep -q 'file=\[LocalDS_1\] web1/web1_1.vmdk ctl=VirtualAHCIController unit=0 capacity=1048576' '$T/hw'"
check "vcsim: the NIC keeps its MAC (manual) on DC0_DVPG0 as vmxnet3" \
    grep -q "type=VirtualVmxnet3 mac=$MAC addressType=manual network=DC0_DVPG0" "$T/hw"
check "datastore: the flat files hold the source's bytes" \
    eval "test \"\$(sha '$DS1/web1/web1-flat.vmdk')\" = \"\$(sha '$T/d0.raw')\" &&
          test \"\$(sha '$DS1/web1/web1_1-flat.vmdk')\" = \"\$(sha '$T/d1.raw')\""
check "datastore: descriptors are flat (vmfs) with the sector count" \
    eval "grep -q 'createType=\"vmfs\"' '$DS1/web1/web1.vmdk' &&
          grep -q '^RW 6144 VMFS \"web1-flat.vmdk\"' '$DS1/web1/web1.vmdk'"
check "/folder refuses a request without a session (401)" \
    test "$(folder_status web1/web1-flat.vmdk LocalDS_1)" = 401

# ---- export and open_disk: esx -> other backend --------------------------
drive v2v-export web1
check "export_vm: firmware UEFI, linux, disks with bus and boot order, NIC" \
    eval "grep -q 'vm name=\"web1\" firmware=2 guest=\"linux\" cpus=2 memory=536870912' '$T/out' &&
          grep -q 'path=\"\[LocalDS_1\] web1/web1.vmdk\" bus=\"scsi\" capacity=3145728 boot=1' '$T/out' &&
          grep -q 'path=\"\[LocalDS_1\] web1/web1_1.vmdk\" bus=\"sata\" capacity=1048576 boot=0' '$T/out' &&
          grep -q 'nic id=.* mac=\"$MAC\" network=\"DC0_DVPG0\" model=\"VirtualVmxnet3\"' '$T/out'"
k0=$(sed -n 's/^disk id="\([0-9]*\)" path=".*web1\.vmdk".*/\1/p' "$T/out")
k1=$(sed -n 's/^disk id="\([0-9]*\)" path=".*web1_1\.vmdk".*/\1/p' "$T/out")
drive v2v-read web1 "$k0" "$T/r0" && drive v2v-read web1 "$k1" "$T/r1"
check "open_disk: both disks read back over /folder identical (sha256)" \
    eval "test \"\$(sha '$T/r0')\" = \"\$(sha '$T/d0.raw')\" && test \"\$(sha '$T/r1')\" = \"\$(sha '$T/d1.raw')\""
sim power DC0_H0_VM0 off >/dev/null 2>&1
drive v2v-read DC0_H0_VM0 "$(sim disks DC0_H0_VM0 | cut -f1 | head -1)" "$T/r2"
check "open_disk: a simulator-made disk reads as its capacity of zeros" \
    eval "test \"\$(sha '$T/r2')\" = \"\$(head -c 1048576 /dev/zero | sha256sum | cut -d' ' -f1)\""

# ---- refusals ----------------------------------------------------------------
drive v2v-export DC0_H0_VM1
check "export_vm: a powered-on VM is refused (conflict)" \
    eval "! grep -q '^vm ' '$T/out' && grep -q 'code=conflict.*poweredOn' '$T/out' '$T/err'"

# ---- a failed import leaves nothing ----------------------------------------
drive v2v-import bad1 DC0_H0 --disk "$T/d0.raw,scsi,1" --disk "$T/d1.raw,scsi,0,4194304" \
    --nic "net0,$MAC,VM Network,e1000"
check "import_vm: a source that ends early fails" \
    eval "grep -q 'job ok=0' '$T/out' && grep -q 'source disk ended' '$T/out' '$T/err'"
check "failed import: no VM and no folder left" \
    eval "! sim vm bad1 >/dev/null 2>&1 && test ! -e '$DS0/bad1'"
# a partial import interrupted before CreateVM_Task: remove_vm with the job's saved data
mkdir "$DS0/crash1" && cp "$T/d1.raw" "$DS0/crash1/crash1-flat.vmdk"
drive v2v-remove crash1 "esx-import-dir=$URL	$DC	[LocalDS_0] crash1" "esx-import-vm=crash1"
check "remove_vm with a job: the files of a partial import are deleted" test ! -e "$DS0/crash1"

# ---- start and remove ----------------------------------------------------
drive v2v-start web1
check "start_vm: web1 powered on" eval "sim vm web1 | grep -q '^power=poweredOn'"
drive v2v-remove web1
check "remove_vm: a running VM is refused" eval "grep -q 'code=conflict' '$T/out' '$T/err'"
sim power web1 off >/dev/null 2>&1
drive v2v-remove web1
check "remove_vm: web1 destroyed with its files" \
    eval "! sim vm web1 >/dev/null 2>&1 && test ! -e '$DS1/web1'"

# ---- through vmshift (the host's --to), when it exists ---------------------
# (tests to add once host/crossmove.c is on main: skeleton <-> esx with
# `vmshift migrate VM --to esx:DC0_H0`, checked as above)

echo "1..$n"
