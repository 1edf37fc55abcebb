#!/bin/bash
# The README's demo: run from `./quickstart demo` with the build directory.
# With the KVM plugin built (the default on Debian): a real live migration of
# a tiny Debian guest between two local QEMU "hosts" (tests/kvm/demo-kvm.sh).
# Without it: the skeleton plugin's demo, on a throw-away configuration.
set -euo pipefail
build=${1:?usage: demo.sh BUILDDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "${VMSHIFT_DEMO:-}" != skeleton ] && grep -q '^S\["PLUGIN_KVM_TRUE"\]=""' "$build/config.status"; then
    exec "$top/tests/kvm/demo-kvm.sh" "$build"
fi
demo=$(mktemp -d /tmp/vmshift-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT INT TERM
mkdir -p "$demo/backends.d" "$demo/state"

cat >"$demo/vmshift.conf" <<CONF
[vmshift]
state-dir=$demo/state
CONF
cp "$top/sdk/examples/skeleton/skeleton.conf.example" "$demo/backends.d/skeleton.conf"

vmshift() {
    "$build/host/vmshift" --config "$demo/vmshift.conf" \
        --plugin-dir "$build/tests/skeleton/.libs" "$@"
}
make -s -C "$build" tests/skeleton/skeleton.la >/dev/null

say() { printf '\n\033[1m$ vmshift %s\033[0m\n' "$*"; }
say backends;               vmshift backends
say vms;                    vmshift vms
say check web1 --to beta;   vmshift check web1 --to beta
say migrate web1 --to beta; vmshift migrate web1 --to beta
say vms;                    vmshift vms
say jobs;                   vmshift jobs
