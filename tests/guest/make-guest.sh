#!/bin/bash
# make-guest.sh OUTDIR - build the vmshift tiny Linux test guest.
#
# From Debian packages only: the kernel of linux-image-amd64 (fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`, so no post-install runs)
# and busybox-static, plus the static dirtier built from dirty.c.
#
# Produces in OUTDIR:
#   vmlinux             uncompressed ELF kernel (PVH entry: boots in ~2.5 s
#                       under TCG instead of ~7.5 s for the bzImage)
#   vmlinuz             the bzImage, as shipped
#   initramfs.cpio.gz   busybox + /bin/dirty + virtio modules + /init
#   stamp               the cache key (kernel package + version + our sources)
#
# The result is cached: when OUTDIR/stamp matches, nothing is rebuilt.
# Environment:
#   VMSHIFT_GUEST_KERNEL_DEB  use this kernel .deb instead of downloading
#   VMSHIFT_GUEST_KERNEL_PKG  kernel package (default: what linux-image-amd64
#                             depends on)
# Exit status: 0 built or cached; 1 failure (message on stderr).
set -euo pipefail

die() { echo "make-guest: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: make-guest.sh OUTDIR"
OUT=$1
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for t in dpkg-deb gcc readelf cpio gzip xz timeout flock; do
    command -v "$t" >/dev/null || die "missing tool '$t' (see .ci/deps/kvm.txt)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "busybox-static is not installed (/bin/busybox)"
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'INTERP'; then
    die "$BUSYBOX is dynamically linked: install busybox-static"
fi

# One builder at a time per OUTDIR (tests may run in parallel).
exec 9>"$OUT/.lock"
timeout 600 flock 9 || die "timed out waiting for the lock on $OUT"

srchash=$(cat "$SRC/make-guest.sh" "$SRC/init.sh" "$SRC/dirty.c" | sha256sum | cut -c1-16)

if [ -n "${VMSHIFT_GUEST_KERNEL_DEB:-}" ]; then
    [ -f "$VMSHIFT_GUEST_KERNEL_DEB" ] || die "no such file: $VMSHIFT_GUEST_KERNEL_DEB"
    kkey="deb:$(basename "$VMSHIFT_GUEST_KERNEL_DEB")"
else
    kpkg=${VMSHIFT_GUEST_KERNEL_PKG:-}
    if [ -z "$kpkg" ]; then
        kpkg=$(timeout 60 apt-cache depends linux-image-amd64 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/ { print $2; exit }') || true
    fi
    kver=
    [ -n "$kpkg" ] && kver=$(timeout 60 apt-cache policy "$kpkg" 2>/dev/null |
                             awk '/Candidate:/ { print $2 }') || true
    if [ -z "$kpkg" ] || [ -z "$kver" ] || [ "$kver" = "(none)" ]; then
        # No package lists: a cached build is still good.
        if [ -f "$OUT/stamp" ] && [ -f "$OUT/vmlinux" ] && [ -f "$OUT/initramfs.cpio.gz" ]; then
            echo "make-guest: apt knows no kernel package; using the cached guest in $OUT" >&2
            exit 0
        fi
        die "cannot resolve linux-image-amd64 to a kernel package (run 'apt-get update')"
    fi
    kkey="$kpkg=$kver"
fi
key="$kkey src=$srchash"

if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$key" ] &&
   [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initramfs.cpio.gz" ]; then
    echo "make-guest: cached ($key)"
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-guest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [ -n "${VMSHIFT_GUEST_KERNEL_DEB:-}" ]; then
    deb=$VMSHIFT_GUEST_KERNEL_DEB
else
    cached_deb="$OUT/${kpkg}_${kver//:/%3a}_amd64.deb"
fi
if [ -n "${VMSHIFT_GUEST_KERNEL_DEB:-}" ]; then
    :
elif [ -s "$cached_deb" ]; then
    deb=$cached_deb
else
    echo "make-guest: downloading $kpkg ($kver)"
    # apt's sandbox user must be able to write the download directory.
    chmod 0777 "$TMP"
    (cd "$TMP" && timeout 600 apt-get download -q "$kpkg=$kver" >/dev/null 2>"$TMP/apt.err") ||
        { cat "$TMP/apt.err" >&2; die "apt-get download $kpkg=$kver failed"; }
    chmod 0700 "$TMP"
    rm -f "$OUT"/linux-image-*.deb          # keep only the current one
    mv "$(ls "$TMP"/*.deb | head -1)" "$cached_deb"
    deb=$cached_deb
fi
mkdir "$TMP/k"
timeout 300 dpkg-deb -x "$deb" "$TMP/k" || die "dpkg-deb -x $deb failed"
vmlinuz=$(ls "$TMP"/k/boot/vmlinuz-* 2>/dev/null | head -1)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $deb"
moddir=$(ls -d "$TMP"/k/lib/modules/* | head -1)

# vmlinux: find the compressed payload inside the bzImage and unpack it
# (like the kernel's scripts/extract-vmlinux).
is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = "177ELF" ]; }
try_decomp() { # MAGIC CMD...
    local magic=$1; shift
    local pos
    for pos in $(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1); do
        tail -c +$((pos + 1)) "$vmlinuz" | timeout 120 "$@" > "$TMP/vmlinux" 2>/dev/null || true
        if [ -s "$TMP/vmlinux" ] && is_elf "$TMP/vmlinux"; then return 0; fi
    done
    return 1
}
try_decomp '\xFD\x37\x7A\x58\x5A\x00' xz -dc ||
try_decomp '\x28\xB5\x2F\xFD' zstd -dc ||
try_decomp '\x1F\x8B\x08' gzip -dc ||
    die "could not extract vmlinux from $(basename "$vmlinuz")"

# initramfs
R=$TMP/root
mkdir -p "$R"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
timeout 300 gcc -O2 -static -o "$R/bin/dirty" "$SRC/dirty.c" ||
    die "cannot build the static dirtier (is libc6-dev installed?)"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    f=$(find "$moddir" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) | head -1)
    [ -n "$f" ] || continue          # built in
    case "$f" in
        *.xz) xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
        *.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
        *) cp "$f" "$R/lib/modules/$m.ko" ;;
    esac
done
install -m 0755 "$SRC/init.sh" "$R/init"
(cd "$R" && find . | LC_ALL=C sort | timeout 120 cpio -o -H newc --quiet -R 0:0) |
    gzip -9 > "$TMP/initramfs.cpio.gz"

install -m 0644 "$TMP/vmlinux" "$OUT/vmlinux.new"
install -m 0644 "$vmlinuz" "$OUT/vmlinuz.new"
install -m 0644 "$TMP/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz.new"
mv "$OUT/vmlinux.new" "$OUT/vmlinux"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
mv "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.gz"
echo "$key" > "$OUT/stamp"
echo "make-guest: built $OUT ($key; initramfs $(du -k "$OUT/initramfs.cpio.gz" | cut -f1) KiB)"
