# Shell helpers for TAP test scripts. Source with:  . "$VMSHIFT_SRCDIR/tests/lib.sh"
_tap_n=0
_tap_failed=0
tap_plan() { echo "1..$1"; }
tap_ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
tap_not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
tap_skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
tap_diag() { echo "$*" | sed 's/^/# /'; }
# tap_check DESCRIPTION COMMAND...: ok when COMMAND exits 0
tap_check() { d="$1"; shift; if "$@"; then tap_ok "$d"; else tap_not_ok "$d"; fi; }
tap_done() { [ "$_tap_failed" -eq 0 ]; }
# Builddir paths
: "${VMSHIFT_BUILDDIR:=$(pwd)}"
VMSHIFT_BIN="$VMSHIFT_BUILDDIR/host/vmshift"
# Each built plugin lives in plugins/NAME/.libs; pass them all to --plugin-dir.
vmshift_plugin_args() { for d in "$VMSHIFT_BUILDDIR"/plugins/*/.libs; do [ -d "$d" ] && printf -- "--plugin-dir=%s " "$d"; done; }
