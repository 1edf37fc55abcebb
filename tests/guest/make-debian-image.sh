#!/bin/bash
# make-debian-image.sh OUTDIR - a small Debian disk image for virt-v2v.
#
# Builds with mmdebstrap (Debian bookworm, variant minbase) a root file
# system with the cloud kernel (linux-image-cloud-amd64), initramfs-tools,
# GRUB's configuration tools and a GRUB 2 menu, and lays it on a raw,
# MBR-partitioned disk: one bootable ext4 partition, /etc/fstab naming it by
# UUID. No loop device and no mount: `mkfs.ext4 -d` fills the partition in
# the image file at its offset. The master boot record carries GRUB's boot
# code (boot.img and a core.img from the image's own grub-mkimage), so the
# disk can boot under QEMU; virt-v2v's inspection finds Debian, the kernel and GRUB 2.
#
# The initramfs is built with MODULES=list and no module listed, so it holds
# no virtio driver: virt-v2v's conversion adds virtio modules to
# /etc/initramfs-tools/modules and rebuilds it, which a test can read back.
#
# Produces in OUTDIR:
#   debian.raw   the disk image (sparse; 1 GiB guest-visible)
#   rootfs.tar   mmdebstrap's output (the slow part, reused when only the
#                layout below changes)
#   stamp        the cache key
# The result is cached: when OUTDIR/stamp matches, nothing is rebuilt.
# Environment: VMSHIFT_DEBIAN_MIRROR (default: the Debian archive),
#              VMSHIFT_DEBIAN_SUITE (default bookworm).
# Exit status: 0 built or cached; 1 failure (message on stderr).
set -euo pipefail

die() { echo "make-debian-image: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: make-debian-image.sh OUTDIR"
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUITE=${VMSHIFT_DEBIAN_SUITE:-bookworm}
MIRROR=${VMSHIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SIZE_MIB=1024
PART_START=2048 # sectors: 1 MiB
ROOT_UUID=5d1f0c1e-7a8b-4c3d-9e2f-16a2b3c4d5e6

for t in mmdebstrap mkfs.ext4 sfdisk tar chroot flock timeout; do
    command -v "$t" >/dev/null || die "missing tool '$t' (Debian: mmdebstrap e2fsprogs fdisk)"
done
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap's root mode keeps file owners)"

exec 9>"$OUT/.lock"
timeout 900 flock 9 || die "timed out waiting for the lock on $OUT"

key="$(sha256sum < "$0" | cut -c1-16) $SUITE"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$key" ] && [ -s "$OUT/debian.raw" ]; then
    echo "make-debian-image: cached ($key)"
    exit 0
fi
rm -f "$OUT/stamp" "$OUT/debian.raw"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-debian.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 1. the root file system (cached by the packages' part of the key)
pkgs=linux-image-cloud-amd64,initramfs-tools,grub-pc-bin,grub2-common,systemd-sysv,udev,kmod
tkey="$SUITE $pkgs"
if [ ! -s "$OUT/rootfs.tar" ] || [ "$(cat "$OUT/rootfs.key" 2>/dev/null)" != "$tkey" ]; then
    echo "make-debian-image: mmdebstrap $SUITE (a few minutes)"
    timeout 1200 mmdebstrap --quiet --variant=minbase --include="$pkgs" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/vmshift-test"' \
        --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
        "$SUITE" "$TMP/rootfs.tar" "$MIRROR" > "$TMP/mmdebstrap.log" 2>&1 ||
        { tail -20 "$TMP/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
    mv "$TMP/rootfs.tar" "$OUT/rootfs.tar"
    echo "$tkey" > "$OUT/rootfs.key"
fi

# 2. the tree: fstab, hostname, root password-less console, GRUB's menu
R=$TMP/root
mkdir "$R"
tar -C "$R" -xf "$OUT/rootfs.tar"
kver=$(ls "$R/lib/modules" | head -1)
[ -n "$kver" ] && [ -f "$R/boot/vmlinuz-$kver" ] && [ -f "$R/boot/initrd.img-$kver" ] ||
    die "no kernel and initrd in the root file system"
echo "UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1" > "$R/etc/fstab"
echo vmshift-debian > "$R/etc/hostname"
mkdir -p "$R/boot/grub"
cat > "$R/boot/grub/grub.cfg" <<EOF
set default=0
set timeout=1
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian GNU/Linux' {
	linux /boot/vmlinuz-$kver root=UUID=$ROOT_UUID ro console=ttyS0
	initrd /boot/initrd.img-$kver
}
EOF
cat > "$R/etc/default/grub" <<EOF
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0"
GRUB_DISABLE_OS_PROBER=true
EOF
cp -a "$R/usr/lib/grub/i386-pc" "$R/boot/grub/"

# 3. the disk: MBR, one bootable partition filled by mkfs.ext4 -d
img=$TMP/debian.raw
truncate -s "${SIZE_MIB}M" "$img"
echo "start=$PART_START, type=83, bootable" | sfdisk --quiet "$img" >/dev/null
sectors=$((SIZE_MIB * 2048 - PART_START))
mkfs.ext4 -q -F -U "$ROOT_UUID" -L root -E offset=$((PART_START * 512)) -d "$R" "$img" \
    "$((sectors / 2))k" || die "mkfs.ext4 failed"

# 4. GRUB's boot code, as grub-bios-setup lays it: boot.img's code in the
#    MBR (its partition table kept), core.img from sector 1 (boot.img's and
#    core.img's default block lists point there); core.img is made by the
#    image's own grub-mkimage and finds its menu on the first partition.
PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$R" grub-mkimage -O i386-pc -o /tmp/core.img \
    -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 >"$TMP/grub.log" 2>&1 ||
    { cat "$TMP/grub.log" >&2; die "grub-mkimage failed"; }
core_sectors=$((($(stat -c %s "$R/tmp/core.img") + 511) / 512))
[ "$core_sectors" -lt $((PART_START - 1)) ] || die "core.img does not fit before the partition"
dd if="$R/usr/lib/grub/i386-pc/boot.img" of="$img" bs=440 count=1 conv=notrunc status=none
dd if="$R/tmp/core.img" of="$img" bs=512 seek=1 conv=notrunc status=none

mv "$img" "$OUT/debian.raw"
echo "$key" > "$OUT/stamp"
echo "make-debian-image: built $OUT/debian.raw (kernel $kver, $(du -m "$OUT/debian.raw" | cut -f1) MiB used)"
