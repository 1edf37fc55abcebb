#!/bin/bash
# Build vmshift's Debian packages from a clean export of the tree, check
# them with lintian, and install them into a throwaway Debian root where
# `vmshift backends` must list every installed plugin as loaded and report
# every removed one as missing, naming the package to install. Also checks
# `make install DESTDIR=` (plugindir from vmshift-sdk.pc, no .la files)
# and, when rpm's tools are here, the RPM spec. Prints TAP.
#
#   tests/packaging/debian.sh          (as root; CI calls it from .ci/run)
#
# Environment:
#   VMSHIFT_PKG_WORK=DIR     work directory (default: a new /tmp/vmshift-pkg.*)
#   VMSHIFT_PKG_KEEP=1       keep the work directory (and the root) afterwards
#   VMSHIFT_PKG_TREE=head    build the last commit only (default: the work
#                            tree's tracked and untracked, not ignored files)
#   VMSHIFT_PKG_OVERLAY=DIR  copy DIR over the export (to try the packaging
#                            with stand-ins for parts not written yet)
#   VMSHIFT_PKG_MIRROR=FILE  apt sources for the root
#                            (default: /etc/apt/sources.list.d/debian.sources)
#
# The throwaway root is made by mmdebstrap (variant apt, Debian's own suite
# of this machine) and our .deb files are installed into it with apt, so
# their Depends are resolved for real: a missing runtime dependency fails
# the install, as it would for a user. It needs the package archive that
# apt here uses and takes about a minute.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
work=${VMSHIFT_PKG_WORK:-$(mktemp -d /tmp/vmshift-pkg.XXXXXX)}
mkdir -p "$work"
PLUGINS="kvm hyperv esx"
n=0
failed=0
root=
mounted=

ok()   { n=$((n + 1)); echo "ok $n - $*"; }
nok()  { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
diag() { sed 's/^/# /'; }
finish() {
    echo "1..$n"
    exit $((failed > 0))
}
bail() { echo "Bail out! $*"; exit 1; }

cleanup() {
    if [ -n "$mounted" ]; then
        umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
    fi
    if [ -z "${VMSHIFT_PKG_KEEP:-}" ]; then
        rm -rf "$work"
    else
        echo "# kept $work" >&2
    fi
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP needs root (chroot, mmdebstrap)"; exit 0; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

# ---- tools ------------------------------------------------------------------
need=()
for t in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian mmdebstrap:mmdebstrap \
         fakeroot:fakeroot; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "# installing ${need[*]}"
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
        >"$work/tools.log" 2>&1 || { diag <"$work/tools.log"; bail "cannot install ${need[*]}"; }
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
plugindir=/usr/lib/$multiarch/vmshift/plugins

# ---- 1. a clean export with debian/ from packaging/debian --------------------
version=$(sed -n 's/^AC_INIT(\[vmshift\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
src=$work/vmshift-$version
rm -rf "$src"
mkdir -p "$src"
if [ "${VMSHIFT_PKG_TREE:-worktree}" = head ]; then
    git -C "$top" archive HEAD | tar -x -C "$src"
else
    # what a developer sees: tracked and untracked files that are not ignored
    (cd "$top" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
        | tar --null -T - -c) | tar -x -C "$src"
fi
[ -n "${VMSHIFT_PKG_OVERLAY:-}" ] && cp -r "$VMSHIFT_PKG_OVERLAY/." "$src/"
rm -rf "$src/debian"
cp -r "$top/packaging/debian" "$src/debian"
debversion=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
check "debian/changelog version $debversion matches configure.ac ($version)" \
    test "${debversion%-*}" = "$version"

# ---- 2. dpkg-buildpackage -----------------------------------------------------
if ! (cd "$src" && dpkg-checkbuilddeps) >"$work/builddeps.log" 2>&1; then
    echo "# installing build dependencies: $(cat "$work/builddeps.log")"
    apt-get build-dep -y -qq "$src" >>"$work/builddeps.log" 2>&1 || true
fi
start=$(date +%s)
if (cd "$src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
        timeout 900 dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
    ok "dpkg-buildpackage -us -uc -b ($(( $(date +%s) - start ))s)"
else
    nok "dpkg-buildpackage -us -uc -b"
    tail -n 25 "$work/build.log" | diag
    finish
fi
grep '^debian/rules: WARNING' "$work/build.log" | diag

# ---- 3. the package split -------------------------------------------------------
deb() { ls "$work"/"$1"_"$debversion"_*.deb 2>/dev/null | head -n 1; }
contents() { dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | sed 's|^\./|/|'; }
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
has() { contents "$1" | grep -qx -- "$2"; }

for p in vmshift libvmshift-sdk1 libvmshift-sdk-dev vmshift-plugin-kvm vmshift-plugin-hyperv \
         vmshift-plugin-esx; do
    check "package $p was built" test -n "$(deb "$p")"
done
check "no package contains a libtool .la file" \
    sh -c "for d in $work/*_${debversion}_*.deb; do dpkg-deb -c \$d; done | grep -q '\.la$' && exit 1 || exit 0"
check "vmshift: /usr/bin/vmshift, vmshift(1), vmshift.conf(5), vmshift-bulk(5)" \
    sh -c "$(declare -f has contents deb); work=$work debversion=$debversion; \
        has vmshift /usr/bin/vmshift && has vmshift /usr/share/man/man1/vmshift.1.gz && \
        has vmshift /usr/share/man/man5/vmshift.conf.5.gz && \
        has vmshift /usr/share/man/man5/vmshift-bulk.5.gz"
check "vmshift: /etc/vmshift/vmshift.conf is a conffile" \
    sh -c "dpkg-deb --ctrl-tarfile '$(deb vmshift)' | tar -xO ./conffiles 2>/dev/null \
        | grep -qx /etc/vmshift/vmshift.conf"
check "vmshift: Provides vmshift-plugin-abi-1" \
    sh -c "dpkg-deb -f '$(deb vmshift)' Provides | grep -q 'vmshift-plugin-abi-1'"
check "vmshift: Recommends every in-tree plugin" \
    sh -c "r=\$(dpkg-deb -f '$(deb vmshift)' Recommends); for p in $PLUGINS; do \
        echo \"\$r\" | grep -q \"vmshift-plugin-\$p\" || exit 1; done"
for p in $PLUGINS; do
    pkg=vmshift-plugin-$p
    [ -n "$(deb "$pkg")" ] || { skip "$pkg not built"; continue; }
    extra=$(contents "$pkg" | grep -v '/$' \
        | grep -vx -e "$plugindir/$p.so" \
                   -e "/usr/share/vmshift/examples/backends.d/$p.conf.example" \
                   -e "/usr/share/doc/$pkg/.*" -e "/usr/share/lintian/overrides/$pkg")
    check "$pkg: holds $plugindir/$p.so" has "$pkg" "$plugindir/$p.so"
    check "$pkg: holds backends.d/$p.conf.example" \
        has "$pkg" "/usr/share/vmshift/examples/backends.d/$p.conf.example"
    check "$pkg: holds nothing else${extra:+ (also: $(echo $extra))}" test -z "$extra"
    check "$pkg: Depends on vmshift-plugin-abi-1 and libvmshift-sdk1, not on vmshift" \
        sh -c "d=\$(dpkg-deb -f '$(deb "$pkg")' Depends); echo \"\$d\" | grep -q 'vmshift-plugin-abi-1' \
            && echo \"\$d\" | grep -q 'libvmshift-sdk1' && ! echo \"\$d\" | grep -Eq '(^|, )vmshift( |,|$)'"
done
check "libvmshift-sdk1: holds libvmshift-sdk.so.1 (and no .so link)" \
    sh -c "$(declare -f has contents deb); work=$work debversion=$debversion; \
        has libvmshift-sdk1 /usr/lib/$multiarch/libvmshift-sdk.so.1 && \
        ! has libvmshift-sdk1 /usr/lib/$multiarch/libvmshift-sdk.so"
check "libvmshift-sdk-dev: headers, vmshift-sdk.pc, .so link, skeleton, THREADS.md, vmshift-plugin(7)" \
    sh -c "$(declare -f has contents deb); work=$work debversion=$debversion; \
        has libvmshift-sdk-dev /usr/include/vmshift/vmshift.h && \
        has libvmshift-sdk-dev /usr/lib/$multiarch/pkgconfig/vmshift-sdk.pc && \
        has libvmshift-sdk-dev /usr/lib/$multiarch/libvmshift-sdk.so && \
        has libvmshift-sdk-dev /usr/share/doc/libvmshift-sdk-dev/examples/skeleton/skeleton.c && \
        has libvmshift-sdk-dev /usr/share/doc/libvmshift-sdk-dev/THREADS.md && \
        has libvmshift-sdk-dev /usr/share/man/man7/vmshift-plugin.7.gz"

# ---- 4. lintian -------------------------------------------------------------------
changes=$(ls "$work"/vmshift_"$debversion"_*.changes | head -n 1)
lintian --fail-on none --display-info --tag-display-limit 0 "$changes" >"$work/lintian.log" 2>&1
errors=$(grep -c '^E: ' "$work/lintian.log")
warnings=$(grep -c '^W: ' "$work/lintian.log")
infos=$(grep -c '^I: ' "$work/lintian.log")
echo "# lintian: $errors errors, $warnings warnings, $infos info tags (overridden tags are not counted)"
grep -E '^[EW]: ' "$work/lintian.log" | diag
check "lintian: no errors" test "$errors" -eq 0
check "lintian: no warning without an override" test "$warnings" -eq 0

# ---- 5. make install DESTDIR= ---------------------------------------------------
dest=$work/destdir
if make -C "$src/debian/build" install DESTDIR="$dest" >"$work/install.log" 2>&1; then
    ok "make install DESTDIR=... in the package's build tree"
    pcdir=$(PKG_CONFIG_PATH="$dest/usr/lib/$multiarch/pkgconfig" \
        pkg-config --variable=plugindir vmshift-sdk 2>/dev/null)
    check "vmshift-sdk.pc: plugindir=$pcdir (expected $plugindir)" test "$pcdir" = "$plugindir"
    check "make install: nothing outside DESTDIR" sh -c \
        "! grep -E '^ *(/usr/bin/install|install|mkdir) .* (/usr|/etc)/' '$work/install.log' | grep -v '$dest' | grep -q ."
    for p in $PLUGINS; do
        check "make install: $p.so in DESTDIR\$(pkg-config --variable=plugindir vmshift-sdk)" \
            test -f "$dest$pcdir/$p.so"
    done
    check "make install: no .la files in plugindir" \
        sh -c "! ls '$dest$pcdir'/*.la >/dev/null 2>&1"
else
    nok "make install DESTDIR=... in the package's build tree"
    tail -n 20 "$work/install.log" | diag
fi

# ---- 6. a throwaway root ------------------------------------------------------------
root=$work/root
suite=$(. /etc/os-release; echo "${VERSION_CODENAME:-bookworm}")
mirror=${VMSHIFT_PKG_MIRROR:-/etc/apt/sources.list.d/debian.sources}
[ -e "$mirror" ] || mirror=
includes=()
for f in "$work"/*_"$debversion"_*.deb; do
    case "$f" in *-dbgsym_*) continue ;; esac
    includes+=("--include=$f")
done
# apt inside mmdebstrap installs our packages and resolves their Depends
# from the archive, as it would for a user.
start=$(date +%s)
if timeout 600 mmdebstrap --variant=apt "${includes[@]}" \
        --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount "$suite" "$root" \
        ${mirror:+"$mirror"} >"$work/mmdebstrap.log" 2>&1; then
    ok "mmdebstrap --variant=apt $suite with all packages installed by apt ($(( $(date +%s) - start ))s)"
else
    nok "mmdebstrap --variant=apt $suite with all packages installed by apt"
    grep -v '^I: ' "$work/mmdebstrap.log" | tail -n 25 | diag
    finish
fi
mount -t proc proc "$root/proc" && mounted=1
mkdir -p "$root/tmp/debs"
cp "${includes[@]#--include=}" "$root/tmp/debs/"
in_root() { chroot "$root" "$@"; }
check "the root has every package installed" sh -c \
    "for p in vmshift libvmshift-sdk1 libvmshift-sdk-dev vmshift-plugin-kvm vmshift-plugin-hyperv vmshift-plugin-esx; do \
        chroot '$root' dpkg-query -W -f='\${Status}\n' \$p | grep -q 'install ok installed' || exit 1; done"
check "in the root: vmshift-sdk.pc says plugindir=\${libdir}/vmshift/plugins = $plugindir" sh -c \
    "pc='$root/usr/lib/$multiarch/pkgconfig/vmshift-sdk.pc'; grep -qx 'plugindir=\${libdir}/vmshift/plugins' \$pc \
     && [ \"\$(PKG_CONFIG_SYSROOT_DIR= PKG_CONFIG_LIBDIR=\$(dirname \$pc) pkg-config --variable=plugindir vmshift-sdk)\" = '$plugindir' ]"

# One backend per plugin, written the way an administrator would: from the
# plugin package's example when it has one, else a minimal group.
for p in $PLUGINS; do
    ex=$root/usr/share/vmshift/examples/backends.d/$p.conf.example
    conf=$root/etc/vmshift/backends.d/pkgtest-$p.conf
    mkdir -p "$(dirname "$conf")"
    printf '[backend pkgtest-%s]\nplugin=%s\nenabled=true\n' "$p" "$p" >"$conf"
    if [ -f "$ex" ]; then
        # keep the connection keys of the example, under our backend name
        sed -n '/^\[backend /,$p' "$ex" | sed '1d; /^\[/,$d; /^ *plugin *=/d; /^ *enabled *=/d' >>"$conf"
    fi
    # no traffic leaves this machine: peers become a closed loopback port
    sed -i -e 's|^\( *url *= *https\{0,1\}://\)[^/:]*\(:[0-9]*\)\{0,1\}|\1127.0.0.1:9|' "$conf"
    [ "$p" = hyperv ] && sed -i 's|^\( *hosts *= *\).*|\1127.0.0.1|' "$conf"
    # ... and the credentials file the example names, root-only as required
    cred=$(sed -n 's/^ *credentials *= *//p' "$conf" | tail -n 1)
    if [ -n "$cred" ]; then
        case "$cred" in /*) ;; *) cred=/etc/vmshift/backends.d/$cred ;; esac
        mkdir -p "$root$(dirname "$cred")"
        printf 'user=pkgtest\npassword=pkgtest\n' >"$root$cred"
        chmod 600 "$root$cred"
    fi
done

backends() { timeout 60 chroot "$root" vmshift backends 2>&1; }
# `vmshift backends` prints a table: BACKEND PLUGIN VERSION ENABLED STATUS ...
# Plugin P loaded: its backend's row has the plugin's version and a status
# other than missing/refused ("unreachable" is fine: it loaded and tried to
# open, and there is no peer here).
row() { echo "$1" | awk -v b="pkgtest-$2" '$1 == b { print $3, $5; exit }'; }
loaded() {
    local r; r=$(row "$1" "$2")
    [ -n "$r" ] && [ "${r%% *}" != - ] && ! echo "${r#* }" | grep -Eqi '^(missing|refused|error|abi)'
}
missing() {
    local out=$1 p=$2
    [ "$(row "$out" "$p")" = "- missing" ] &&
    echo "$out" | grep -Eq "plugin '$p' not found in [^ ]*$plugindir.*\(install vmshift-plugin-$p\)"
}

out=$(backends); rc=$?
echo "$out" | sed 's/^/# all installed: /'
check "vmshift backends runs in the root (exit $rc, no crash)" test "$rc" -lt 126
for p in $PLUGINS; do
    check "all plugins installed: $p is listed and loads" loaded "$out" "$p"
done
for p in $PLUGINS; do
    in_root dpkg -r "vmshift-plugin-$p" >"$work/remove-$p.log" 2>&1 \
        || { tail -n 5 "$work/remove-$p.log" | diag; }
    check "vmshift-plugin-$p removed: $p.so is gone, its backends.d example too" \
        sh -c "[ ! -e '$root$plugindir/$p.so' ] && [ ! -e '$root/usr/share/vmshift/examples/backends.d/$p.conf.example' ]"
    out=$(backends); rc=$?
    echo "$out" | sed "s/^/# without $p: /"
    check "vmshift-plugin-$p removed: vmshift backends still runs (exit $rc)" test "$rc" -lt 126
    check "vmshift-plugin-$p removed: reported missing, naming vmshift-plugin-$p" missing "$out" "$p"
    for q in $PLUGINS; do
        [ "$q" = "$p" ] && continue
        check "vmshift-plugin-$p removed: $q still loads" loaded "$out" "$q"
    done
    in_root sh -c "dpkg -i /tmp/debs/vmshift-plugin-${p}_*.deb" >"$work/reinstall-$p.log" 2>&1
    out=$(backends)
    check "vmshift-plugin-$p reinstalled: $p loads again" loaded "$out" "$p"
done
check "purging vmshift keeps the admin's backends.d files and removes vmshift.conf" sh -c \
    "chroot '$root' dpkg --purge vmshift-daemon vmshift-plugin-kvm vmshift-plugin-hyperv vmshift-plugin-esx vmshift >/dev/null 2>&1 \
     && [ ! -e '$root/etc/vmshift/vmshift.conf' ] && [ -e '$root/etc/vmshift/backends.d/pkgtest-kvm.conf' ]"

# ---- 7. RPM spec (optional) ------------------------------------------------------------
spec=$top/packaging/rpm/vmshift.spec
if command -v rpmspec >/dev/null && command -v rpmbuild >/dev/null; then
    check "rpmspec -P packaging/rpm/vmshift.spec parses" \
        sh -c "rpmspec -P '$spec' >'$work/rpmspec.out' 2>&1"
    check "rpm spec Version matches configure.ac ($version)" \
        sh -c "rpmspec -q --srpm --qf '%{VERSION}' '$spec' 2>/dev/null | grep -qx '$version'"
    rpmtop=$work/rpm
    mkdir -p "$rpmtop/SOURCES"
    (cd "$work" && tar -czf "$rpmtop/SOURCES/vmshift-$version.tar.gz" --exclude=debian "vmshift-$version")
    check "rpmbuild -bs (source package)" \
        sh -c "rpmbuild -bs --nodeps --define '_topdir $rpmtop' '$spec' >'$work/rpmbuild.log' 2>&1"
else
    skip "rpmspec/rpmbuild not installed (Debian package rpm)"
fi

finish
