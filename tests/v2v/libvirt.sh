#!/bin/bash
# Moves between backends with the kvm plugin's libvirt transport at either
# end (issue 16), through `vmshift migrate VM --to BACKEND:HOST`:
#  - libvirt host A -> libvirt host B (another backend) into B's pool: B is
#    reached over TCP from inside A's network namespace, so its files are
#    not this machine's and only libvirt's storage API (volume upload)
#    reaches them; back B -> A into a directory, --delete-source --start;
#  - skeleton -> libvirt (buses remapped, a MAC libvirt refuses, a NIC
#    model QEMU lacks, firmware unknown, virtio drivers: check's warnings,
#    then the domain as libvirt defined it; --start) and libvirt ->
#    skeleton (--delete-source);
#  - a UEFI VM: refused by a host whose libvirt offers no EFI firmware
#    (B, its firmware directories hidden), taken by one that does (A);
#  - a name taken at the destination, a destination that fills up: the
#    import fails and leaves no domain and no volume, the source as it was.
# Each libvirt host is its own real libvirtd (tests/kvm/lvhosts.sh: own
# network, mount and UTS namespaces). Checked in the peers' own views:
# virsh dumpxml / domstate / vol-list, the bytes of each volume (virsh
# vol-download, qemu-img convert to raw, sha256sum) against the source's,
# the skeleton's state file and disk files. Prints TAP.
set -u
: "${VMSHIFT_BUILDDIR:?}" "${VMSHIFT_SRCDIR:?}"
. "$VMSHIFT_SRCDIR/tests/lib.sh"
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
check() { tap_check "$@"; }
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
KSO="$VMSHIFT_BUILDDIR/plugins/kvm/.libs/kvm.so"
SKSO="$VMSHIFT_BUILDDIR/tests/skeleton/.libs/skeleton.so"
[ "$(id -u)" = 0 ] || skip_all "needs root (libvirtd in namespaces)"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
[ -f "$SKSO" ] || skip_all "the skeleton plugin (tests/skeleton) is not built"
command -v libvirtd >/dev/null && command -v virsh >/dev/null || skip_all "libvirt is not installed"
command -v qemu-img >/dev/null || skip_all "qemu-utils is not installed"
command -v ip >/dev/null || skip_all "iproute2 is not installed"
ldd "$KSO" 2>/dev/null | grep -q libvirt || skip_all "the kvm plugin was built without libvirt"
ldd "$KSO" 2>/dev/null | grep -q libasan &&
    skip_all "libvirt's RPC crashes under ASan's XDR interceptors (libtirpc): not run in sanitizer builds"
if ! id libvirt-qemu >/dev/null 2>&1; then
    groupadd -r libvirt-qemu 2>/dev/null
    useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu ||
        skip_all "cannot create the libvirt-qemu user"
fi
KT=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2vlv.XXXXXX")
LV="$KT/lv"
mkdir -p "$LV" "$KT/pl" "$KT/state" "$KT/shared" "$KT/q/images"
printf '[network front]\nnetdev=user\n' >"$KT/q/networks.conf"
# (a QEMU the qmp transport started: killed by its pid file)
trap 'p=$(cat "$KT/q/vms/boot1/qemu.pid" 2>/dev/null) && kill -9 "$p" 2>/dev/null
      timeout 60 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" down "$LV"; [ -n "${KEEP_KT:-}" ] || rm -rf "$KT"' EXIT
timeout 120 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" up "$LV" >"$KT/lvhosts.out" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "$(cat "$KT/lvhosts.out")"
[ $rc = 0 ] || { echo "not ok 1 - two libvirt hosts start: $(tr '\n' ' ' <"$KT/lvhosts.out")"; echo "1..1"; exit 0; }
A="qemu+unix:///system?socket=$LV/A/run/libvirt-sock"
B="qemu+unix:///system?socket=$LV/B/run/libvirt-sock"
vA() { timeout 60 virsh -q -c "$A" "$@"; }
vB() { timeout 60 virsh -q -c "$B" "$@"; }
cp "$KSO" "$KT/pl/"
cp "$SKSO" "$KT/pl/"
nsA=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" A)
SK="$KT/sk.state"
cat >"$KT/v.conf" <<EOC
[vmshift]
state-dir=$KT/state

[backend lvsrc]
plugin=kvm
transport=libvirt
hosts=lvA=$A

[backend lvdst]
plugin=kvm
transport=libvirt
hosts=lvB=qemu+tcp://198.51.100.2/system

[backend kq]
plugin=kvm
hosts=q=$KT/q

[backend skel]
plugin=skeleton
hosts=s1
vms=sk1@s1;sk2@s1
state-file=$SK
import-format=qcow2
EOC
# vmshift runs in A's network namespace: A through its socket, B over TCP
V() {
    timeout 300 ip netns exec "$nsA" "$VMSHIFT" --config "$KT/v.conf" --plugin-dir "$KT/pl" \
        --daemon no "$@" >"$KT/out" 2>"$KT/err"
}
# the finding CODE with SEVERITY in the last check's output
has_code() { grep -q "$1" "$KT/out" "$KT/err" && grep "$1" "$KT/out" "$KT/err" | grep -qi "$2"; }

# each host: a bridge network "front" in its namespace, a pool "v2vpool" on
# its own /var/lib/libvirt/images
for h in A B; do
    ns=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" $h)
    ip -n "$ns" link add brfront type bridge && ip -n "$ns" link set brfront up
    printf "<network><name>front</name><forward mode='bridge'/><bridge name='brfront'/></network>" >"$KT/front.xml"
    u=$A; [ $h = B ] && u=$B
    timeout 60 virsh -q -c "$u" net-define "$KT/front.xml" >/dev/null
    timeout 60 virsh -q -c "$u" net-start front >/dev/null
    timeout 60 virsh -q -c "$u" pool-define-as v2vpool dir --target /var/lib/libvirt/images >/dev/null
    timeout 60 virsh -q -c "$u" pool-build v2vpool >/dev/null 2>&1
    timeout 60 virsh -q -c "$u" pool-start v2vpool >/dev/null
done
# B: a host without EFI firmware (its libvirtd sees no OVMF, no descriptors)
pB=$(cat "$LV/B/libvirtd.pid")
for d in /usr/share/qemu/firmware /usr/share/OVMF /usr/share/ovmf /usr/share/edk2; do
    [ -d "$d" ] && nsenter -t "$pB" -m mount -t tmpfs -o size=64k noefi "$d"
done

# raw guest-visible bytes of a volume as libvirt serves it: download, convert
vol_sha() { # URI PATH FORMAT
    rm -f "$KT/dl" "$KT/dl.raw"
    timeout 120 virsh -q -c "$1" vol-download "$2" "$KT/dl" >/dev/null 2>&1 || { echo none; return; }
    timeout 120 qemu-img convert -f "$3" -O raw "$KT/dl" "$KT/dl.raw" && sha256sum <"$KT/dl.raw" | cut -c1-64
}
file_sha() { # PATH (a local image, maybe in use)
    rm -f "$KT/f.raw"
    timeout 120 qemu-img convert -U -O raw "$1" "$KT/f.raw" && sha256sum <"$KT/f.raw" | cut -c1-64
}
export KT
export -f file_sha vol_sha has_code
export A B SK

# x1 on A: a qcow2 volume with data in A's own pool (boot disk), a raw disk
# in a directory both sides see, a NIC with a fixed MAC on front
qemu-img create -q -f qcow2 "$KT/src.qcow2" 48M
qemu-io -f qcow2 -c "write -P 0x33 0 5M" -c "write -P 0x77 40M 1M" "$KT/src.qcow2" >/dev/null
vA vol-create-as v2vpool x1-boot.qcow2 48M --format qcow2 >/dev/null
vA vol-upload --pool v2vpool x1-boot.qcow2 "$KT/src.qcow2"
qemu-img create -q -f raw "$KT/shared/x1-data.img" 16M
qemu-io -f raw -c "write -P 0x5a 1M 3M" "$KT/shared/x1-data.img" >/dev/null
domain() { # NAME DISK1 [DISK2]
    cat <<EOX
<domain type='qemu'><name>$1</name><memory unit='MiB'>128</memory><vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/>
      <target dev='vda' bus='virtio'/><boot order='1'/></disk>
    ${3:+<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$3'/><target dev='sda' bus='sata'/></disk>}
    <interface type='network'><mac address='52:54:00:16:00:01'/><source network='front'/><model type='e1000'/></interface>
  </devices>
</domain>
EOX
}
domain x1 /var/lib/libvirt/images/x1-boot.qcow2 "$KT/shared/x1-data.img" >"$KT/x1.xml"
vA define "$KT/x1.xml" >/dev/null
sha_boot=$(file_sha "$KT/src.qcow2")
sha_data=$(file_sha "$KT/shared/x1-data.img")
V check x1 --to lvdst:lvB --path v2vpool
rc=$?
check "source x1 defined on libvirt host A, its boot volume readable through libvirt" \
    test "$(vol_sha "$A" /var/lib/libvirt/images/x1-boot.qcow2 qcow2)" = "$sha_boot"
check "check x1 --to lvdst:lvB --path v2vpool: exit 0, no error finding" \
    bash -c '[ $0 = 0 ] && grep -q "0 errors" "$1" && ! grep -q "^error" "$1"' $rc "$KT/out"
[ $rc = 0 ] || tap_diag "$(cat "$KT/out" "$KT/err")"
V check x1 --to lvdst:lvB --path /var/lib/libvirt/small
check "check into B's 4 MiB file system: no-space, non-zero exit" \
    bash -c '[ $0 != 0 ] && grep -q "no-space" "$1" "$2"' $? "$KT/out" "$KT/err"
V check x1 --to lvdst:lvB --path v2vpool --network net0=nosuchnet
check "check with a network B lacks: network-missing" \
    bash -c '[ $0 != 0 ] && grep -q "network-missing" "$1" "$2"' $? "$KT/out" "$KT/err"

# ---- libvirt A -> libvirt B (remote) into B's pool (upload + conversion on B)
V migrate x1 --to lvdst:lvB --path v2vpool
rc=$?
check "migrate x1 --to lvdst:lvB --path v2vpool succeeds" test $rc = 0
[ $rc = 0 ] || tap_diag "$(cat "$KT/err")"
vB dumpxml x1 >"$KT/x1-b.xml" 2>/dev/null
check "B: x1 defined, shut off" test "$(vB domstate x1 2>/dev/null)" = "shut off"
check "B: the boot disk is a qcow2 volume on virtio with boot order 1" \
    bash -c 'grep -A4 "x1-vda.qcow2" "$0" | grep -q "bus=.virtio." && grep -B3 "x1-vda.qcow2" "$0" | grep -q "type=.qcow2." && grep -A5 "x1-vda.qcow2" "$0" | grep -q "<boot order=.1./>"' "$KT/x1-b.xml"
check "B: the data disk stays on SATA" bash -c 'grep -A4 "x1-sda.qcow2" "$0" | grep -q "bus=.sata."' "$KT/x1-b.xml"
check "B: the NIC keeps its MAC, network and model" \
    bash -c 'grep -q "52:54:00:16:00:01" "$0" && grep -q "network=.front." "$0" && grep -q "<model type=.e1000./>" "$0"' "$KT/x1-b.xml"
check "B: pool v2vpool has the two qcow2 volumes and no staging volume" \
    bash -c '[ "$(timeout 60 virsh -q -c "$0" vol-list v2vpool | awk "{print \$1}" | sort | tr "\n" " ")" = "x1-sda.qcow2 x1-vda.qcow2 " ]' "$B"
check "B: the boot volume's bytes equal the source's" \
    test "$(vol_sha "$B" /var/lib/libvirt/images/x1-vda.qcow2 qcow2)" = "$sha_boot"
check "B: the data volume's bytes equal the source's" \
    test "$(vol_sha "$B" /var/lib/libvirt/images/x1-sda.qcow2 qcow2)" = "$sha_data"
check "A: the source x1 is left defined and shut off" test "$(vA domstate x1 2>/dev/null)" = "shut off"

# ---- the name taken at the destination: refused, nothing made ---------------
V check lvdst:x1 --to lvsrc:lvA --path "$KT/shared/back"
check "check x1 back to A while A still has x1: \"name-taken\" error, non-zero exit" \
    bash -c '[ $0 != 0 ] && has_code "name-taken" error' $?
V migrate lvdst:x1 --to lvsrc:lvA --path "$KT/shared/back"
rc=$?
check "migrate lvdst:x1 back to A while A still has x1: refused (non-zero exit, name-taken)" \
    bash -c '[ $0 != 0 ] && grep -q name-taken "$1"' $rc "$KT/err"
check "A: no files written for the refused move" test ! -e "$KT/shared/back/x1-vda.qcow2"

# ---- a failed import leaves no domain and no volume -------------------------
vA vol-create-as v2vpool x2-boot.qcow2 48M --format qcow2 >/dev/null
vA vol-upload --pool v2vpool x2-boot.qcow2 "$KT/src.qcow2"
domain x2 /var/lib/libvirt/images/x2-boot.qcow2 >"$KT/x2.xml"
vA define "$KT/x2.xml" >/dev/null
V migrate x2 --to lvdst:lvB --path /var/lib/libvirt/small --force
rc=$?
check "migrate x2 into B's 4 MiB file system fails" test $rc != 0
check "B: no domain x2 after the failure" bash -c '! timeout 60 virsh -q -c "$0" dominfo x2 >/dev/null 2>&1' "$B"
vB pool-create-as v2vsmall dir --target /var/lib/libvirt/small >/dev/null
check "B: no volume left in /var/lib/libvirt/small" test -z "$(vB vol-list v2vsmall 2>/dev/null)"
vB pool-destroy v2vsmall >/dev/null
check "A: x2 untouched (shut off, its volume there)" \
    bash -c '[ "$(timeout 60 virsh -q -c "$0" domstate x2)" = "shut off" ] && timeout 60 virsh -q -c "$0" vol-info --pool v2vpool x2-boot.qcow2 >/dev/null' "$A"

# ---- back B -> A into a directory this process sees (qcow2 written here),
#      --delete-source and --start -------------------------------------------------
vA undefine x1 >/dev/null
V migrate lvdst:x1 --to lvsrc:lvA --path "$KT/shared/back" --delete-source --start
rc=$?
check "migrate x1 --to lvsrc:lvA --path DIR --delete-source --start succeeds" test $rc = 0
[ $rc = 0 ] || tap_diag "$(cat "$KT/err")"
check "A: x1 runs" test "$(vA domstate x1 2>/dev/null)" = running
check "A: its disks are the qcow2 files under DIR" \
    bash -c 'timeout 60 virsh -q -c "$0" domblklist x1 | grep -q "vda *$1/x1-vda.qcow2" && qemu-img info -U "$1/x1-vda.qcow2" | grep -q "file format: qcow2"' "$A" "$KT/shared/back"
check "A: both disks' bytes equal the original's (round trip)" \
    bash -c '[ "$(file_sha "$0/x1-vda.qcow2")" = "$1" ] && [ "$(file_sha "$0/x1-sda.qcow2")" = "$2" ]' \
    "$KT/shared/back" "$sha_boot" "$sha_data"
check "B: x1 and its volumes are gone (--delete-source)" \
    bash -c '! timeout 60 virsh -q -c "$0" dominfo x1 >/dev/null 2>&1 && [ -z "$(timeout 60 virsh -q -c "$0" vol-list v2vpool)" ]' "$B"
vA destroy x1 >/dev/null 2>&1

# ---- skeleton -> libvirt B: what KVM changes, said by check, done by import --
# the skeleton's own view: KEY of [vm VM] in its state file
peer() { sed -n "/^\[vm $1\]/,/^\[/p" "$SK" | sed -n "s/^$2=//p"; }
export -f peer
V vms >/dev/null 2>&1 # the skeleton's state file, sk1 and sk2 in it (running)
SKD="$KT/sk.state.data/srv/vms"
# sk1: disk0 on SCSI, disk1 on NVMe, a multicast MAC, a Hyper-V NIC model,
# no firmware said, stopped
mkdir -p "$SKD/sk1" "$SKD/sk2"
head -c 3145728 /dev/urandom >"$SKD/sk1/disk0.img"
head -c 1048576 /dev/urandom >"$SKD/sk1/disk1.img"
cat >"$KT/sed" <<'EOS'
/^\[vm sk1\]/a disks=disk0;disk1;\nbus-disk0=scsi\nbus-disk1=nvme\nnics=net0;\nnetwork-net0=lan\nmac-net0=03:00:5e:16:00:07\nnic-model=hv_netvsc
/^\[vm sk2\]/a disks=disk0;\nfirmware=uefi\nnics=net0;\nnetwork-net0=lan\nmac-net0=52:54:00:16:00:08
EOS
sed -i -f "$KT/sed" -e 's/^power=running/power=stopped/' "$SK"
head -c 1048576 /dev/urandom >"$SKD/sk2/disk0.img"
sk_d0=$(sha256sum <"$SKD/sk1/disk0.img" | cut -c1-64)
sk_d1=$(sha256sum <"$SKD/sk1/disk1.img" | cut -c1-64)
V check skel:sk1 --to lvdst:lvB --path v2vpool --network net0=front
rc=$?
check "check skel:sk1 --to lvdst:lvB: warnings only (exit 1, 0 errors)" \
    bash -c '[ $0 = 1 ] && grep -q "0 errors" "$1"' $rc "$KT/out"
check "check: disk1's NVMe bus becomes SATA: \"bus-remapped\" warning" has_code "bus-remapped" warning
check "check: the multicast MAC cannot be kept: \"mac-not-kept\" warning" has_code "mac-not-kept" warning
check "check: hv_netvsc becomes virtio: \"nic-model-changed\" warning" has_code "nic-model-changed" warning
check "check: the skeleton does not say how sk1 boots: \"firmware-unknown\" warning" has_code "firmware-unknown" warning
check "check: sk1 gets virtio devices it had not: \"guest-drivers\" warning" has_code "guest-drivers" warning
V migrate skel:sk1 --to lvdst:lvB --path v2vpool --network net0=front --start --force
rc=$?
check "migrate skel:sk1 --to lvdst:lvB --path v2vpool --network net0=front --start --force succeeds" test $rc = 0
[ $rc = 0 ] || tap_diag "$(cat "$KT/err")"
vB dumpxml sk1 >"$KT/sk1-b.xml" 2>/dev/null
check "B: sk1 runs (--start)" test "$(vB domstate sk1 2>/dev/null)" = running
check "B: disk0 on virtio-SCSI, disk1 on SATA, in the source's order" \
    bash -c 'grep -A4 "sk1-disk0.qcow2" "$0" | grep -q "bus=.scsi." && grep -A4 "sk1-disk1.qcow2" "$0" | grep -q "bus=.sata." && grep -q "controller type=.scsi.*virtio-scsi" "$0"' "$KT/sk1-b.xml"
check "B: the NIC is virtio on front with a MAC libvirt made" \
    bash -c 'grep -q "<model type=.virtio./>" "$0" && grep -q "network=.front." "$0" && ! grep -q "03:00:5e:16:00:07" "$0" && grep -q "<mac address=" "$0"' "$KT/sk1-b.xml"
check "B: no EFI firmware (BIOS assumed)" bash -c '! grep -qi "efi" "$0"' "$KT/sk1-b.xml"
check "B: both volumes' bytes equal the skeleton's files" \
    bash -c '[ "$(vol_sha "$0" /var/lib/libvirt/images/sk1-disk0.qcow2 qcow2)" = "$1" ] && [ "$(vol_sha "$0" /var/lib/libvirt/images/sk1-disk1.qcow2 qcow2)" = "$2" ]' \
    "$B" "$sk_d0" "$sk_d1"
check "skeleton: sk1 left, stopped, its files unchanged" \
    bash -c '[ "$(peer sk1 power)" = stopped ] && [ "$(sha256sum <"$0/disk0.img" | cut -c1-64)" = "$1" ]' "$SKD/sk1" "$sk_d0"
vB destroy sk1 >/dev/null 2>&1

# ---- UEFI: B's libvirt has no EFI firmware, A's has -------------------------
V check skel:sk2 --to lvdst:lvB --path v2vpool --network net0=front
check "check UEFI sk2 --to lvdst:lvB (no OVMF there): \"firmware-unsupported\" error, non-zero exit" \
    bash -c '[ $0 != 0 ] && has_code "firmware-unsupported" error' $?
V migrate skel:sk2 --to lvsrc:lvA --path "$KT/shared/uefi" --network net0=front
rc=$?
check "migrate UEFI sk2 --to lvsrc:lvA (OVMF there) succeeds" test $rc = 0
[ $rc = 0 ] || tap_diag "$(cat "$KT/err")"
check "A: sk2 boots with EFI firmware on q35, its MAC kept" \
    bash -c 'x=$(timeout 60 virsh -q -c "$0" dumpxml --inactive sk2) && grep -q "firmware=.efi." <<<"$x" && grep -q "machine=.pc-q35" <<<"$x" && grep -q "52:54:00:16:00:08" <<<"$x"' "$A"
check "A: sk2's disk bytes equal the skeleton's file" \
    test "$(file_sha "$KT/shared/uefi/sk2-disk0.qcow2")" = "$(sha256sum <"$SKD/sk2/disk0.img" | cut -c1-64)"

# ---- libvirt A -> skeleton, --delete-source -------------------------------------
V migrate lvsrc:x2 --to skel:s1 --delete-source
rc=$?
check "migrate lvsrc:x2 --to skel:s1 --delete-source succeeds" test $rc = 0
[ $rc = 0 ] || tap_diag "$(cat "$KT/err")"
check "skeleton: x2 on s1, stopped, its NIC's MAC and network kept" \
    bash -c '[ "$(peer x2 host)/$(peer x2 power)/$(peer x2 mac-net0)/$(peer x2 network-net0)" = s1/stopped/52:54:00:16:00:01/front ]'
check "skeleton: x2's disk file (qcow2) holds the source volume's bytes" \
    test "$(file_sha "$SKD/x2/vda.img")" = "$sha_boot"
check "A: x2 and its volume are gone (--delete-source)" \
    bash -c '! timeout 60 virsh -q -c "$0" dominfo x2 >/dev/null 2>&1 && ! timeout 60 virsh -q -c "$0" vol-info --pool v2vpool x2-boot.qcow2 >/dev/null 2>&1' "$A"

# ---- libvirt A -> kvm (qmp transport, a bare QEMU host): the bootable test
#      guest, started there with --start, its heartbeat on the console --------
GUEST="${VMSHIFT_GUEST_DIR:-$VMSHIFT_BUILDDIR/tests/guest/out}"
boot_disk() {
    command -v qemu-system-x86_64 >/dev/null && [ -x /bin/busybox ] &&
        [ -x "$VMSHIFT_SRCDIR/tests/guest/make-boot-disk.sh" ] || return 1
    timeout 900 "$VMSHIFT_SRCDIR/tests/guest/make-guest.sh" "$GUEST" >"$KT/guest.log" 2>&1 &&
        timeout 300 "$VMSHIFT_SRCDIR/tests/guest/make-boot-disk.sh" "$GUEST" >>"$KT/guest.log" 2>&1
}
if ! boot_disk; then
    tap_skip "libvirt -> kvm(qmp) of the bootable guest" \
        "no bootable test disk (qemu-system-x86, busybox-static, syslinux, mtools): $(tail -1 "$KT/guest.log" 2>/dev/null)"
else
    qemu-img convert -f raw -O qcow2 "$GUEST/boot-disk.raw" "$KT/boot1.qcow2"
    boot_sha=$(sha256sum <"$GUEST/boot-disk.raw" | cut -c1-64)
    vA vol-create-as v2vpool boot1.qcow2 64M --format qcow2 >/dev/null
    vA vol-upload --pool v2vpool boot1.qcow2 "$KT/boot1.qcow2"
    cat >"$KT/boot1.xml" <<EOX
<domain type='qemu'><name>boot1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/boot1.qcow2'/><target dev='sda' bus='sata'/><boot order='1'/></disk>
    <interface type='network'><mac address='52:54:00:16:00:09'/><source network='front'/><model type='e1000'/></interface>
  </devices>
</domain>
EOX
    vA define "$KT/boot1.xml" >/dev/null
    V migrate lvsrc:boot1 --to kq:q --start
    rc=$?
    check "migrate lvsrc:boot1 --to kq:q --start succeeds" test $rc = 0
    [ $rc = 0 ] || tap_diag "$(cat "$KT/out" "$KT/err")"
    QD="$KT/q/vms/boot1"
    check "kvm host q: QEMU runs boot1 (its pid file's process)" \
        bash -c 'p=$(cat "$0/qemu.pid") && [ -r /proc/$p/stat ] && [ "$(sed "s/.*) //" /proc/$p/stat | cut -c1)" != Z ]' "$QD"
    hb=
    for i in $(seq 900); do grep -q HEARTBEAT "$QD/console.log" 2>/dev/null && { hb=1; break; }; sleep 0.2; done
    check "kvm host q: the moved guest booted from its disk (HEARTBEAT on its console)" test -n "$hb"
    [ -n "$hb" ] || tap_diag "$(tail -5 "$QD/console.log" 2>/dev/null)"
    qimg=$(sed -n 's/^path=//p' "$QD/vm.conf" | head -1)
    check "kvm host q: the disk is qcow2 on SATA with the source's bytes, the NIC's MAC kept" \
        bash -c '[ "$(file_sha "$0")" = "$1" ] && qemu-img info -U "$0" | grep -q "file format: qcow2" && grep -q "^bus=sata" "$2" && grep -q "52:54:00:16:00:09" "$2"' \
        "$qimg" "$boot_sha" "$QD/vm.conf"
    check "A: the source boot1 is left defined and shut off" test "$(vA domstate boot1 2>/dev/null)" = "shut off"
fi

tap_plan "$_tap_n"
tap_done
