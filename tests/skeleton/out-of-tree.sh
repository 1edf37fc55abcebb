#!/bin/sh
# The vendor's path, end to end: install the SDK and host into a temporary
# root, build sdk/examples/skeleton out of tree with nothing but
# `pkg-config vmshift-sdk`, install the plugin into a temporary plugindir,
# and have the installed host load and call it.
. "$VMSHIFT_SRCDIR/tests/lib.sh"
tap_plan 9

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
root="$tmp/root"

# Install from the build tree (a sub-make must not inherit our job server).
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$VMSHIFT_BUILDDIR" install DESTDIR="$root" \
    >"$tmp/install.log" 2>&1; then
    tap_ok "SDK and host install into DESTDIR"
else
    tap_not_ok "SDK and host install into DESTDIR"; sed 's/^/# /' "$tmp/install.log" | tail -20
fi

pc=$(find "$root" -name vmshift-sdk.pc | head -n 1)
if [ -n "$pc" ]; then tap_ok "vmshift-sdk.pc installed"; else tap_not_ok "vmshift-sdk.pc installed"; fi
# The SDK was installed under a DESTDIR: relocate its .pc file the way a
# vendor with an SDK in a non-standard place would (only our own .pc: glib's
# must keep pointing at the system).
mkdir -p "$tmp/pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed "s|^prefix=.*|prefix=$root$prefix|" "$pc" >"$tmp/pc/vmshift-sdk.pc"
export PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
PKGC=pkg-config
plugindir=$($PKGC --variable=plugindir vmshift-sdk)
libdir=$($PKGC --variable=libdir vmshift-sdk)
case "$plugindir" in
    "$root$prefix"/*/vmshift/plugins) tap_ok "plugindir is under the prefix: ${plugindir#$root}" ;;
    *) tap_not_ok "plugindir is under the prefix (got '$plugindir')" ;;
esac

# Out of tree: a copy of the example, far from the source tree.
cp -r "$VMSHIFT_SRCDIR/sdk/examples/skeleton" "$tmp/skeleton"
chmod -R u+w "$tmp/skeleton"
if make -s -C "$tmp/skeleton" PKG_CONFIG="$PKGC" PLUGINDIR="$tmp/plugins" install \
    >"$tmp/build.log" 2>&1 && [ -f "$tmp/plugins/skeleton.so" ]; then
    tap_ok "skeleton builds out of tree with pkg-config and installs into a plugindir"
else
    tap_not_ok "skeleton builds out of tree"; sed 's/^/# /' "$tmp/build.log" | tail -20
fi

syms=$(nm -D --defined-only "$tmp/plugins/skeleton.so" 2>/dev/null | awk '{print $3}' | grep -v '^_' | sort | tr '\n' ' ')
if [ "$syms" = "vmshift_plugin_entry " ]; then
    tap_ok "the plugin exports only vmshift_plugin_entry"
else
    tap_not_ok "the plugin exports only vmshift_plugin_entry (exports: $syms)"
fi

# The installed host loads it.
vmshift=$(find "$root" -path '*/bin/vmshift' -type f | head -n 1)
mkdir -p "$tmp/etc" "$tmp/state"
cat >"$tmp/etc/vmshift.conf" <<CONF
[vmshift]
state-dir=$tmp/state

[backend demo]
plugin=skeleton
enabled=true
hosts=alpha;beta
vms=web1@alpha;db1@alpha
transfer-seconds=0
CONF
run() { LD_LIBRARY_PATH="$libdir" timeout 60 "$vmshift" --config "$tmp/etc/vmshift.conf" \
            --plugin-dir "$tmp/plugins" "$@"; }

if run backends >"$tmp/out" 2>&1 && grep -q demo "$tmp/out" && grep -q skeleton "$tmp/out" \
    && grep -q 1.0.0 "$tmp/out"; then
    tap_ok "installed host lists the backend with the plugin's version"
else
    tap_not_ok "installed host lists the backend"; sed 's/^/# /' "$tmp/out"
fi

if run vms --json >"$tmp/vms.json" 2>"$tmp/err" && grep -q '"web1"' "$tmp/vms.json"; then
    tap_ok "host calls the plugin's list_vms"
else
    tap_not_ok "host calls the plugin's list_vms"; sed 's/^/# /' "$tmp/vms.json" "$tmp/err"
fi

if run migrate web1 --to beta >"$tmp/mig" 2>&1; then
    tap_ok "host runs a migration through the plugin"
else
    tap_not_ok "host runs a migration through the plugin"; sed 's/^/# /' "$tmp/mig"
fi

if run vms --json 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
vms = doc if isinstance(doc, list) else doc.get("vms", [])
sys.exit(0 if any(v.get("name") == "web1" and v.get("host") == "beta" for v in vms) else 1)
'; then
    tap_ok "the VM is on the destination afterwards"
else
    tap_not_ok "the VM is on the destination afterwards"
fi
tap_done
