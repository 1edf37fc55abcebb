#!/bin/bash
# Moves between backends with the KVM plugin's qmp transport (bare QEMU
# hosts, run directories) as source and destination, checked from QEMU's
# side: qemu-img (format, compare, sha256 of the raw conversion), the
# vm.conf read back from the host's run directory, and the moved bootable
# disk (tests/guest/make-boot-disk.sh) started with --start: its heartbeat
# on the destination console proves it booted from the copied disk.
#
# Until `vmshift migrate --to` lands (host/crossmove.c), the moves run
# through tests/v2v/v2v-drive, which calls the plugins' operations in the
# host's order; two kvm backends (kvmA: host a, kvmB: hosts b and c) make
# the qmp transport source and destination at once.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
V2V="$VMSHIFT_BUILDDIR/tests/v2v/v2v-drive"
[ -x "$V2V" ] || skip_all "tests/v2v/v2v-drive is not built"
command -v syslinux >/dev/null && command -v mcopy >/dev/null ||
    skip_all "syslinux and mtools are not installed (see .ci/deps/v2v.txt)"
command -v nbdcopy >/dev/null || skip_all "libnbd-bin is not installed"
kvm_setup
timeout 300 "$VMSHIFT_SRCDIR/tests/guest/make-boot-disk.sh" "$GUEST" >&2 ||
    { echo "1..1"; echo "not ok 1 - building the bootable guest disk"; exit 1; }
BOOT="$GUEST/boot-disk.raw"

mkdir -p "$KT/c/images"
cat > "$KT/v2v.conf" <<EOC
[backend kvmA]
plugin=kvm
hosts=a=$KT/a
[backend kvmB]
plugin=kvm
hosts=b=$KT/b, c=$KT/c
EOC
cat > "$KT/c/networks.conf" <<EOC
[network lan]
netdev=user
EOC
v2v() { timeout 600 "$V2V" --config "$KT/v2v.conf" "$@"; }
# raw_sha IMAGE: sha256 of the image's guest-visible bytes
raw_sha() {
    timeout 120 qemu-img convert -U -O raw "$1" "$KT/raw.tmp" && sha256sum < "$KT/raw.tmp" |
        cut -d' ' -f1
    rm -f "$KT/raw.tmp"
}
conf() { # conf FILE GROUP KEY
    awk -v g="[$2]" -v k="$3" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
        in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
}

# the bootable guest on host a: qcow2 on a SATA disk, an e1000 NIC
qemu-img convert -f raw -O qcow2 "$BOOT" "$KT/a/images/boot1.qcow2"
mkdir -p "$KT/a/vms/boot1"
cat > "$KT/a/vms/boot1/vm.conf" <<EOC
[vm]
name=boot1
memory-mib=256
vcpus=1
guest-os=linux
[disk vda]
path=$KT/a/images/boot1.qcow2
format=qcow2
bus=sata
[nic net0]
mac=52:54:00:aa:bb:01
network=default
model=e1000
EOC
SRC_SHA=$(sha256sum < "$BOOT" | cut -d' ' -f1)

# 1-3: check_import: nothing to object to; a missing network is an error
out=$(v2v --check-only kvmA boot1 kvmB b 2>&1)
check "check_import kvmA:boot1 -> kvmB:b runs" test $? = 0
check "no error or warning for a SATA/e1000 BIOS VM" \
    bash -c '! grep -qE "^finding (error|warning)" <<<"$1"' _ "$out"
# every change the destination forces is a warning with its code
mkdir -p "$KT/a/vms/win1"
qemu-img create -q -f qcow2 "$KT/a/images/win1.qcow2" 8M
cat > "$KT/a/vms/win1/vm.conf" <<EOC
[vm]
name=win1
guest-os=windows
[disk sda]
path=$KT/a/images/win1.qcow2
bus=scsi
[nic net0]
mac=01:00:5e:00:00:01
model=netvsc
EOC
out=$(v2v --check-only kvmA win1 kvmB b 2>&1)
code_on() { grep -q "^finding warning $1 $2: " <<<"$out"; }
check "a SCSI disk: \"bus-remapped\" warning" code_on "bus-remapped" sda
check "a multicast MAC: \"mac-not-kept\" warning" code_on "mac-not-kept" net0
check "a NIC model QEMU lacks (netvsc): \"nic-model-changed\" warning" \
    code_on "nic-model-changed" net0
check "a Windows guest's NIC becomes virtio-net: \"guest-drivers\" warning" \
    code_on "guest-drivers" net0
out=$(v2v --check-only --network net0=nosuch kvmA boot1 kvmB b 2>&1)
check "an unknown network is a network-missing error" \
    grep -q '^finding error network-missing net0: NIC net0: host b has no network .nosuch.' <<<"$out"

# 4-12: the move, --start on the destination
out=$(v2v --start kvmA boot1 kvmB b 2>&1)
rc=$?
check "move kvmA:boot1 -> kvmB:b --start" grep -q '^ok=1' <<<"$out"
[ $rc = 0 ] || diag "$out"
DIMG="$KT/b/images/boot1-vda.qcow2"
DCONF="$KT/b/vms/boot1/vm.conf"
check "the destination image is qcow2 (qemu-img info)" \
    bash -c "qemu-img info -U --output=json '$DIMG' | grep -q '\"format\": \"qcow2\"'"
check "qemu-img compare: source and destination hold the same guest bytes" \
    timeout 120 qemu-img compare -q -U "$KT/a/images/boot1.qcow2" "$DIMG"
check "sha256 of the destination's raw conversion is the boot disk's" \
    test "$(raw_sha "$DIMG")" = "$SRC_SHA"
check "vm.conf on host b: bus sata, boot-order 1, qcow2" \
    test "$(conf "$DCONF" "disk vda" bus)/$(conf "$DCONF" "disk vda" boot-order)/$(conf "$DCONF" "disk vda" format)" = "sata/1/qcow2"
check "vm.conf on host b: MAC kept, e1000, network default, 256 MiB, guest-os" \
    test "$(conf "$DCONF" "nic net0" mac)/$(conf "$DCONF" "nic net0" model)/$(conf "$DCONF" "nic net0" network)/$(conf "$DCONF" vm memory-mib)/$(conf "$DCONF" vm guest-os)" = \
    "52:54:00:aa:bb:01/e1000/default/256/linux"
check "QEMU runs on host b" running_on "$KT/b" boot1
check "the moved guest booted from its disk on host b (heartbeat)" \
    wait_console "$KT/b" boot1 "HEARTBEAT n=2" 180
check "the source is untouched (vm.conf and image bytes)" \
    test -f "$KT/a/vms/boot1/vm.conf" -a "$(raw_sha "$KT/a/images/boot1.qcow2")" = "$SRC_SHA"

# 13: the destination VM runs: reading it is refused
out=$(v2v --check-only kvmB boot1 kvmA a 2>&1)
check "export of a running VM is a conflict" grep -q '^error=conflict' <<<"$out"
timeout 30 "$DRIVE" --config "$KT/v2v.conf" qmp "$KT/b" boot1 quit >/dev/null 2>&1
for i in $(seq 50); do running_on "$KT/b" boot1 || break; sleep 0.2; done

# 14-16: a second import of the same name is refused, and its rollback
# leaves the VM already there alone
out=$(v2v --check-only kvmA boot1 kvmB b 2>&1)
check "check_import: the name is taken on host b (\"name-taken\")" \
    grep -q "^finding error "name-taken" b: host b already has a VM called boot1" <<<"$out"
out=$(v2v --skip-check kvmA boot1 kvmB b 2>&1)
check "import_vm itself refuses the taken name (conflict)" grep -q '^error=conflict' <<<"$out"
check "the VM already on host b keeps its definition and disk" \
    test -f "$DCONF" -a -f "$DIMG"

# 17-18: a failed import (the source stream ends early) leaves nothing on host c
out=$(v2v --network net0=lan --fail-disk vda kvmA boot1 kvmB c 2>&1)
check "an import whose source disk breaks fails" grep -q '^error=' <<<"$out"
check "nothing of it is left on host c (no vms/boot1, no image)" \
    bash -c "! ls '$KT/c/vms/boot1' '$KT/c/images/'* 2>/dev/null | grep -q ."

# 19-21: back the other way (kvmB as the source), IDE and UEFI carried
mkdir -p "$KT/b/vms/efi1"
qemu-img create -q -f qcow2 "$KT/b/images/efi1.qcow2" 32M
qemu-io -f qcow2 -c 'write -P 0x5a 1M 2M' "$KT/b/images/efi1.qcow2" >/dev/null
cat > "$KT/b/vms/efi1/vm.conf" <<EOC
[vm]
name=efi1
firmware=uefi
[disk hda]
path=$KT/b/images/efi1.qcow2
format=qcow2
bus=ide
EOC
out=$(v2v kvmB efi1 kvmA a 2>&1)
check "move kvmB:efi1 (UEFI, IDE) -> kvmA:a" grep -q '^ok=1' <<<"$out"
[ -f "$KT/a/vms/efi1/vm.conf" ] || diag "$out"
check "vm.conf on host a: firmware uefi with its own variable store, bus ide" \
    test "$(conf "$KT/a/vms/efi1/vm.conf" vm firmware)/$(conf "$KT/a/vms/efi1/vm.conf" "disk hda" bus)" = "uefi/ide" -a \
    -f "$KT/a/vms/efi1/OVMF_VARS.fd"
check "qemu-img compare efi1: same guest bytes" \
    timeout 120 qemu-img compare -q "$KT/b/images/efi1.qcow2" "$KT/a/images/efi1-hda.qcow2"

# ---- through `vmshift migrate --to` (host/crossmove.c), with the skeleton ----
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
SKEL="$VMSHIFT_BUILDDIR/tests/skeleton/.libs/skeleton.so"
if [ -f "$VMSHIFT_SRCDIR/host/crossmove.c" ] && [ -x "$VMSHIFT" ] && [ -f "$SKEL" ]; then
    . "$VMSHIFT_SRCDIR/tests/v2v/kvm-cli.sh"
else
    diag "vmshift migrate --to is not built here: its part is skipped"
fi
echo "1..$TAP_N"
exit $TAP_FAILED
