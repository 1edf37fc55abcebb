#!/bin/bash
# make-boot-disk.sh GUESTDIR - the tiny test guest on a disk that boots by
# itself (no -kernel): GUESTDIR/boot-disk.raw, built from GUESTDIR's
# vmlinuz and initramfs.cpio.gz (make-guest.sh makes them).
#
# The disk: a DOS partition table with syslinux's MBR and one active FAT16
# partition from 1 MiB holding syslinux (ldlinux.sys), syslinux.cfg, the
# kernel and the initramfs. Built as a user, without loop devices or mounts
# (mkfs.fat -C, `syslinux --install` and mcopy work on the image file).
# The guest prints its HEARTBEAT lines on ttyS0 as with -kernel.
#
# Packages: syslinux, syslinux-common, mtools, dosfstools, fdisk (sfdisk).
# Cached: rebuilt only when its inputs change (GUESTDIR/boot-disk.stamp).
# Exit status: 0 built or cached; 1 failure (message on stderr).
set -euo pipefail

die() { echo "make-boot-disk: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: make-boot-disk.sh GUESTDIR"
G=$(cd "$1" && pwd) || die "no directory $1"
SRC=$(cd "$(dirname "$0")" && pwd)
MBR=/usr/lib/syslinux/mbr/mbr.bin
for t in syslinux mcopy mkfs.fat sfdisk flock timeout; do
    command -v "$t" >/dev/null || die "missing tool '$t' (see .ci/deps/v2v.txt)"
done
[ -f "$MBR" ] || die "no $MBR (install syslinux-common)"
[ -s "$G/vmlinuz" ] && [ -s "$G/initramfs.cpio.gz" ] ||
    die "no vmlinuz/initramfs.cpio.gz in $G (run make-guest.sh first)"

exec 9>"$G/.boot-disk.lock"
timeout 300 flock 9 || die "timed out waiting for the lock on $G"

key=$(cat "$SRC/make-boot-disk.sh" "$G/stamp" 2>/dev/null | sha256sum | cut -c1-16)
if [ -s "$G/boot-disk.raw" ] && [ "$(cat "$G/boot-disk.stamp" 2>/dev/null)" = "$key" ]; then
    echo "make-boot-disk: cached ($G/boot-disk.raw)"
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-bootdisk.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
SIZE_MIB=64
PART_KIB=$(( (SIZE_MIB - 1) * 1024 ))

cat > "$TMP/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT vmshift
PROMPT 0
TIMEOUT 0
LABEL vmshift
  KERNEL vmlinuz
  INITRD initramfs.cpio.gz
  APPEND console=ttyS0 quiet panic=-1
EOF

# the partition: FAT16 with syslinux and the guest
timeout 60 mkfs.fat -F 16 -n VMSHIFT -C "$TMP/part.img" "$PART_KIB" >/dev/null ||
    die "mkfs.fat failed"
timeout 60 syslinux --install "$TMP/part.img" || die "syslinux --install failed"
export MTOOLS_SKIP_CHECK=1
timeout 60 mcopy -i "$TMP/part.img" "$G/vmlinuz" ::vmlinuz || die "mcopy vmlinuz failed"
timeout 60 mcopy -i "$TMP/part.img" "$G/initramfs.cpio.gz" ::initramfs.cpio.gz ||
    die "mcopy initramfs failed"
timeout 60 mcopy -i "$TMP/part.img" "$TMP/syslinux.cfg" ::syslinux.cfg ||
    die "mcopy syslinux.cfg failed"

# the disk: partition table, MBR boot code, the partition at 1 MiB
truncate -s "${SIZE_MIB}M" "$TMP/disk.raw"
echo 'start=2048, type=6, bootable' | timeout 60 sfdisk -q "$TMP/disk.raw" >/dev/null ||
    die "sfdisk failed"
dd if="$MBR" of="$TMP/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$TMP/part.img" of="$TMP/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none

mv "$TMP/disk.raw" "$G/boot-disk.raw"
echo "$key" > "$G/boot-disk.stamp"
echo "make-boot-disk: built $G/boot-disk.raw (${SIZE_MIB} MiB)"
