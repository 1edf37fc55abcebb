#!/bin/sh
# The symbols libvmshift-sdk exports are exactly those of
# tests/abi/sdk-symbols.txt, each under its version node: a symbol that
# disappears or changes node breaks every plugin linked against it, and a new
# one must be listed (in a new node of sdk/libvmshift-sdk.syms). The version
# script and the Debian symbols file must name the same symbols.
. "$VMSHIFT_SRCDIR/tests/lib.sh"
tap_plan 5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
lib="$VMSHIFT_BUILDDIR/sdk/.libs/libvmshift-sdk.so"
list="$VMSHIFT_SRCDIR/tests/abi/sdk-symbols.txt"
syms="$VMSHIFT_SRCDIR/sdk/libvmshift-sdk.syms"
debsyms="$VMSHIFT_SRCDIR/packaging/debian/libvmshift-sdk1.symbols"

grep -v '^#' "$list" | grep . | LC_ALL=C sort >"$tmp/expected"
# NAME@@NODE (default version) and NAME@NODE both mean NAME in NODE.
if ! nm -D --defined-only "$lib" >"$tmp/nm" 2>"$tmp/nm.err"; then
    tap_not_ok "nm -D reads $lib"; sed 's/^/# /' "$tmp/nm.err"; exit 1
fi
awk '$2 != "A" { sub(/@@/, "@", $3); print $3 }' "$tmp/nm" | LC_ALL=C sort >"$tmp/actual"

LC_ALL=C comm -23 "$tmp/expected" "$tmp/actual" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    tap_not_ok "every listed symbol is exported under its node"
    sed 's/^/# missing or in another node: /' "$tmp/missing"
else
    tap_ok "every listed symbol is exported under its node ($(wc -l <"$tmp/expected"))"
fi

LC_ALL=C comm -13 "$tmp/expected" "$tmp/actual" >"$tmp/extra"
if [ -s "$tmp/extra" ]; then
    tap_not_ok "every exported symbol is listed in tests/abi/sdk-symbols.txt"
    sed 's/^/# not listed: /' "$tmp/extra"
else
    tap_ok "every exported symbol is listed in tests/abi/sdk-symbols.txt"
fi

# Every node of the version script is defined in the library (its A symbol).
awk '/^[A-Z_0-9.]+ *\{/ { print $1 }' "$syms" | LC_ALL=C sort >"$tmp/nodes"
awk '$2 == "A" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | LC_ALL=C sort >"$tmp/libnodes"
if [ -s "$tmp/nodes" ] && cmp -s "$tmp/nodes" "$tmp/libnodes"; then
    tap_ok "the library defines the version nodes of libvmshift-sdk.syms: $(echo $(cat "$tmp/nodes"))"
else
    tap_not_ok "the library defines the version nodes of libvmshift-sdk.syms"
    diff "$tmp/nodes" "$tmp/libnodes" | sed 's/^/# /'
fi

# The version script names each symbol in its node, without wildcards.
awk '/^[A-Z_0-9.]+ *\{/ { node = $1; global = 0; next }
     /^ *global:/ { global = 1; next }
     /^ *local:/ { global = 0; next }
     /^ *\}/ { node = ""; next }
     node != "" && global && NF { s = $1; sub(/;$/, "", s); print s "@" node }' "$syms" |
    LC_ALL=C sort >"$tmp/script"
if cmp -s "$tmp/expected" "$tmp/script"; then
    tap_ok "sdk/libvmshift-sdk.syms lists the same symbols and nodes, by name"
else
    tap_not_ok "sdk/libvmshift-sdk.syms lists the same symbols and nodes, by name"
    diff "$tmp/expected" "$tmp/script" | sed 's/^/# /'
fi

# The Debian symbols file: " NAME@NODE MINVER" for each, plus the nodes.
# (A tarball of `make dist` carries no packaging/.)
awk '/^ / && $1 !~ /^VMSHIFT_SDK_/ { print $1 }' "$debsyms" 2>/dev/null | LC_ALL=C sort >"$tmp/deb"
if [ ! -f "$debsyms" ]; then
    tap_skip "packaging/debian/libvmshift-sdk1.symbols lists the same symbols" "no packaging/ here"
elif cmp -s "$tmp/expected" "$tmp/deb"; then
    tap_ok "packaging/debian/libvmshift-sdk1.symbols lists the same symbols and nodes"
else
    tap_not_ok "packaging/debian/libvmshift-sdk1.symbols lists the same symbols and nodes"
    diff "$tmp/expected" "$tmp/deb" | sed 's/^/# /'
fi
tap_done
