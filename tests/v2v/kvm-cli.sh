# Sourced by tests/v2v/kvm.sh: moves between the skeleton and the kvm
# plugin's qmp transport through `vmshift migrate VM --to BACKEND:HOST`,
# checked from each peer's own view (the skeleton's state and data files;
# the kvm host's vm.conf, images, QEMU and the guest's console).
P="$KT/plugins"
mkdir -p "$P" "$KT/etc/backends.d" "$KT/state"
chmod 755 "$P" "$KT/etc" "$KT/etc/backends.d"
install -m 0755 "$SKEL" "$P/skeleton.so"
install -m 0755 "$VMSHIFT_BUILDDIR/plugins/kvm/.libs/kvm.so" "$P/kvm.so"
: > "$KT/etc/vmshift.conf"
cat > "$KT/etc/backends.d/v2v.conf" <<EOC
[backend skel]
plugin=skeleton
hosts=alpha
vms=boot3@alpha;two@alpha;crash1@alpha;efi1@alpha
state-file=$KT/s.state

[backend kvm]
plugin=kvm
hosts=b=$KT/b, c=$KT/c
EOC
VM() { timeout 600 "$VMSHIFT" --config "$KT/etc/vmshift.conf" --plugin-dir "$P" \
    --state-dir "$KT/state" --daemon no "$@"; }
SD="$KT/s.state.data/srv/vms"
VM vms >/dev/null 2>&1 # makes the skeleton's state file
# skel_vm VM KEY=VALUE...: a stopped skeleton VM with these state keys
skel_vm() {
    local vm=$1 kv
    shift
    sed -i "/^\[vm $vm\]/,/^\[/{s/^power=running/power=stopped/;s/^memory=.*/memory=268435456/}" \
        "$KT/s.state"
    for kv in "$@"; do sed -i "/^\[vm $vm\]/a $kv" "$KT/s.state"; done
    mkdir -p "$SD/$vm"
}
skel_key() { sed -n "/^\[vm $1\]/,/^\[/p" "$KT/s.state" | sed -n "s/^$2=//p"; }

# skeleton -> kvm: the bootable disk on an IDE bus, a MAC, network mapped
skel_vm boot3 "nics=net0;" "mac-net0=52:54:00:aa:bb:03" "network-net0=lan" "bus-disk0=ide" \
    "firmware=bios"
cp "$BOOT" "$SD/boot3/disk0.img"
out=$(VM check skel:boot3 --to kvm:b 2>&1)
check "vmshift check skel:boot3 --to kvm:b: network-missing (host b has no 'lan')" \
    grep -q "network-missing" <<<"$out"
out=$(VM migrate skel:boot3 --to kvm:b --network net0=default --start 2>&1)
rc=$?
check "vmshift migrate skel:boot3 --to kvm:b --network net0=default --start exits 0" test $rc = 0
[ $rc = 0 ] || diag "$(tail -3 <<<"$out")"
BC="$KT/b/vms/boot3/vm.conf"
check "kvm host b: vm.conf with the IDE disk first in the boot order, qcow2" \
    test "$(conf "$BC" "disk disk0" bus)/$(conf "$BC" "disk disk0" boot-order)/$(conf "$BC" "disk disk0" format)" = "ide/1/qcow2"
check "kvm host b: the NIC keeps its MAC on the mapped network" \
    test "$(conf "$BC" "nic net0" mac)/$(conf "$BC" "nic net0" network)" = "52:54:00:aa:bb:03/default"
check "kvm host b: the image's raw bytes are the skeleton disk's (sha256)" \
    test "$(raw_sha "$(conf "$BC" "disk disk0" path)")" = "$SRC_SHA"
check "the moved guest boots from its disk on host b (heartbeat)" \
    wait_console "$KT/b" boot3 "HEARTBEAT n=2" 180
check "the skeleton source stays, off" test "$(skel_key boot3 power)" = stopped

# a failed import: the second disk cannot be read at the source (declared
# qcow2, a raw file): nothing is left on host c, the source is unchanged
skel_vm two "disks=disk0;disk1;" "format-disk1=qcow2" "nics=net0;" "network-net0=lan"
head -c 4M /dev/urandom > "$SD/two/disk0.img"
head -c 2M /dev/urandom > "$SD/two/disk1.img"
s0=$(sha256sum < "$SD/two/disk0.img")
out=$(VM check skel:two --to kvm:c 2>&1)
has_code() { grep -qE "^$1 +$2 " <<<"$out"; }
check "a VM whose firmware the source does not tell: \"firmware-unknown\" warning" \
    has_code warning "firmware-unknown"
# a UEFI VM to a host whose OVMF is gone (/usr/share/OVMF hidden by an
# empty tmpfs in a private mount namespace): an error, and nothing moves
if [ -d /usr/share/OVMF ] && unshare -m true 2>/dev/null; then
    skel_vm efi1 "firmware=uefi" "disks=disk0;"
    head -c 1M /dev/urandom > "$SD/efi1/disk0.img"
    out=$(unshare -m sh -c 'mount -t tmpfs tmpfs /usr/share/OVMF && exec "$@"' _ \
        "$VMSHIFT" --config "$KT/etc/vmshift.conf" --plugin-dir "$P" --state-dir "$KT/state" \
        --daemon no check skel:efi1 --to kvm:c 2>&1)
    rc=$?
    check "a UEFI VM to a host without OVMF: \"firmware-unsupported\" error, exit 1" \
        eval 'has_code error "firmware-unsupported" && [ $rc = 1 ]'
    out=$(VM check skel:efi1 --to kvm:c 2>&1)
    check "with OVMF there: no firmware-unsupported" eval '! has_code error "firmware-unsupported"'
else
    for w in "a UEFI VM to a host without OVMF" "with OVMF there"; do
        TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $w # SKIP no /usr/share/OVMF or no unshare"
    done
fi
out=$(VM migrate skel:two --to kvm:c --force 2>&1)
rc=$?
check "skel:two --to kvm:c fails (disk1 unreadable at the source)" test $rc != 0
[ $rc != 0 ] || diag "$(tail -3 <<<"$out")"
check "kvm host c has nothing of it (no vms/two, no image)" \
    bash -c "! ls '$KT/c/vms/two' '$KT/c/images/'* 2>/dev/null | grep -q ."
check "the skeleton source is unchanged" \
    test "$(sha256sum < "$SD/two/disk0.img")" = "$s0" -a "$(skel_key two power)" = stopped

# kvm -> skeleton: the qmp transport as the source
mkdir -p "$KT/c/vms/kback"
qemu-img create -q -f qcow2 "$KT/c/images/kback.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0xa5 0 3M' "$KT/c/images/kback.qcow2" >/dev/null
cat > "$KT/c/vms/kback/vm.conf" <<EOC
[vm]
name=kback
memory-mib=128
[disk vda]
path=$KT/c/images/kback.qcow2
format=qcow2
[nic net0]
mac=52:54:00:aa:bb:04
network=lan
EOC
out=$(VM migrate kvm:kback --to skel:alpha 2>&1)
rc=$?
check "vmshift migrate kvm:kback --to skel:alpha exits 0" test $rc = 0
[ $rc = 0 ] || diag "$(tail -3 <<<"$out")"
kfile=$(find "$KT/s.state.data" -path '*kback*' -type f | head -1)
check "the skeleton's copy holds the kvm disk's guest bytes (sha256)" \
    test -n "$kfile" -a "$(raw_sha "$kfile")" = "$(raw_sha "$KT/c/images/kback.qcow2")"
check "the skeleton's VM keeps the MAC, virtio bus, 128 MiB" \
    test "$(skel_key kback mac-net0)/$(skel_key kback bus-vda)/$(skel_key kback memory)" = \
    "52:54:00:aa:bb:04/virtio/134217728"
check "the kvm source stays defined on host c" test -f "$KT/c/vms/kback/vm.conf"

# vmshift killed while it writes a disk on the kvm host, then `job repair`:
# the partial image (journaled before it was made) goes, the source stays
skel_vm crash1 "disks=disk0;" "nics=net0;" "network-net0=default"
head -c 192M /dev/urandom > "$SD/crash1/disk0.img"
c0=$(sha256sum < "$SD/crash1/disk0.img")
"$VMSHIFT" --config "$KT/etc/vmshift.conf" --plugin-dir "$P" --state-dir "$KT/state" \
    --daemon no migrate skel:crash1 --to kvm:c --force > "$KT/crash.out" 2> "$KT/crash.err" &
mpid=$!
for i in $(seq 600); do
    [ -s "$KT/c/images/crash1-disk0.qcow2" ] && break
    kill -0 $mpid 2>/dev/null || break
    sleep 0.05
done
kill -9 $mpid 2>/dev/null
wait $mpid 2>/dev/null
job=$(sed -n 's/^job \([0-9]*\): migrate crash1$/\1/p' "$KT/crash.err")
check "killed during the import: host c has the partial image" \
    test -n "$job" -a -e "$KT/c/images/crash1-disk0.qcow2"
sleep 1 # the orphaned copy sees its input end
out=$(VM job repair "$job" 2>&1)
rc=$?
check "vmshift job repair $job exits 0" test $rc = 0
[ $rc = 0 ] || diag "$(tail -3 <<<"$out")"
check "job repair: host c has nothing of crash1 (no image, no vms/crash1)" \
    bash -c "! ls '$KT/c/images/crash1'* '$KT/c/vms/crash1' 2>/dev/null | grep -q ."
check "job repair: the skeleton's crash1 is unchanged, stopped" \
    test "$(sha256sum < "$SD/crash1/disk0.img")" = "$c0" -a "$(skel_key crash1 power)" = stopped
