#!/bin/sh
# A plugin compiled against the frozen ABI 1.0 headers loads in today's host.
. "$VMSHIFT_SRCDIR/tests/lib.sh"
tap_plan 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cat >"$tmp/vmshift.conf" <<CONF
[vmshift]
state-dir=$tmp/state

[backend old]
plugin=oldabi
enabled=true
CONF
run() { timeout 60 "$VMSHIFT_BIN" --config "$tmp/vmshift.conf" \
            --plugin-dir "$VMSHIFT_BUILDDIR/tests/abi/.libs" "$@"; }

if run backends >"$tmp/out" 2>&1 && grep -q oldabi "$tmp/out" && ! grep -qi refused "$tmp/out"; then
    tap_ok "host loads a plugin built against ABI 1.0 headers"
else
    tap_not_ok "host loads a plugin built against ABI 1.0 headers"; sed 's/^/# /' "$tmp/out"
fi
if run vms --json >"$tmp/vms" 2>&1 && grep -q '"oldvm"' "$tmp/vms"; then
    tap_ok "host calls the old plugin's list_vms"
else
    tap_not_ok "host calls the old plugin's list_vms"; sed 's/^/# /' "$tmp/vms"
fi
# An operation the 1.0 plugin left NULL is reported, not crashed on.
if run merge-status oldvm >"$tmp/merge" 2>&1; then
    tap_not_ok "a NULL operation of an old plugin fails cleanly"
elif grep -q "does not support 'checkpoint_state'" "$tmp/merge" && [ "$(wc -l <"$tmp/merge")" -eq 1 ]; then
    tap_ok "a NULL operation of an old plugin fails cleanly with one line"
else
    tap_not_ok "a NULL operation of an old plugin fails cleanly"; sed 's/^/# /' "$tmp/merge"
fi
tap_done
