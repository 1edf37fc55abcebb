#!/bin/bash
# Moves between backends with the kvm plugin's libvirt transport at either
# end (issue 16): `vmshift migrate VM --to BACKEND:HOST` between two libvirt
# backends, each on its own real libvirtd (tests/kvm/lvhosts.sh: own
# network, mount and UTS namespaces, so each host's /var/lib/libvirt is its
# own and only libvirt's storage API reaches it), and between the skeleton
# and libvirt when the skeleton can export and import. Checked in libvirt's
# own view: virsh dumpxml / domstate / vol-list on the hosts, the bytes of
# each volume (virsh vol-download, qemu-img convert to raw, sha256sum)
# against the source's. Prints TAP.
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
mkdir -p "$LV" "$KT/pl" "$KT/state" "$KT/shared"
trap 'timeout 60 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" down "$LV"; [ -n "${KEEP_KT:-}" ] || rm -rf "$KT"' EXIT
timeout 120 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" up "$LV" >"$KT/lvhosts.out" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "$(cat "$KT/lvhosts.out")"
[ $rc = 0 ] || { echo "not ok 1 - two libvirt hosts start: $(tr '\n' ' ' <"$KT/lvhosts.out")"; echo "1..1"; exit 0; }
A="qemu+unix:///system?socket=$LV/A/run/libvirt-sock"
B="qemu+unix:///system?socket=$LV/B/run/libvirt-sock"
vA() { timeout 60 virsh -q -c "$A" "$@"; }
vB() { timeout 60 virsh -q -c "$B" "$@"; }
cp "$KSO" "$KT/pl/"
[ -f "$SKSO" ] && cp "$SKSO" "$KT/pl/"
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
hosts=lvB=$B
EOC
V() { timeout 300 "$VMSHIFT" --config "$KT/v.conf" --plugin-dir "$KT/pl" "$@" >"$KT/out" 2>"$KT/err"; }

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
export -f file_sha

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
if grep -q "moving between backends is not supported" "$KT/err"; then
    skip_all "the host does not move VMs between backends yet (host/crossmove.c)"
fi
check "source x1 defined on libvirt host A, its boot volume readable through libvirt" \
    test "$(vol_sha "$A" /var/lib/libvirt/images/x1-boot.qcow2 qcow2)" = "$sha_boot"
check "check x1 --to lvdst:lvB --path v2vpool: exit 0, no error finding" \
    bash -c '[ $0 = 0 ] && ! grep -q "error" "$1"' $rc "$KT/out"
V check x1 --to lvdst:lvB --path /var/lib/libvirt/small
check "check into B's 4 MiB file system: no-space, non-zero exit" \
    bash -c '[ $0 != 0 ] && grep -q "no-space" "$1" "$2"' $? "$KT/out" "$KT/err"
V check x1 --to lvdst:lvB --path v2vpool --network net0=nosuchnet
check "check with a network B lacks: network-missing" \
    bash -c '[ $0 != 0 ] && grep -q "network-missing" "$1" "$2"' $? "$KT/out" "$KT/err"

# ---- libvirt A -> libvirt B into B's pool (upload + conversion on B) -----------
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
V migrate x1 --to lvsrc:lvA --path "$KT/shared/back"
rc=$?
check "back to A while A still has x1: refused (non-zero exit)" test $rc != 0
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
V migrate x1 --to lvsrc:lvA --path "$KT/shared/back" --delete-source --start
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

tap_plan "$_tap_n"
tap_done
