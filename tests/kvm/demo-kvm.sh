#!/bin/bash
# demo-kvm.sh BUILDDIR: the KVM backend's demo. Builds the tiny Debian guest
# (first run only, cached), makes two local "hosts" (run directories), starts
# the guest on hostA and live-migrates it to hostB with `vmshift`, then shows
# the guest's heartbeat continuing on hostB's console. No root needed (TCG).
set -euo pipefail
build=${1:?usage: demo-kvm.sh BUILDDIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
guest="$build/tests/guest/out"
make -s -C "$build" plugins/kvm/kvm.la tests/kvm/kvm-drive host/vmshift >/dev/null
timeout 900 "$top/tests/guest/make-guest.sh" "$guest" >/dev/null
demo=$(mktemp -d /tmp/vmshift-kvm-demo.XXXXXX)
cleanup() {
    local f
    for f in "$demo"/*/vms/*/qemu.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    rm -rf "$demo"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$demo/a/vms/tiny" "$demo/b" "$demo/state"
cat >"$demo/vmshift.conf" <<CONF
[vmshift]
state-dir=$demo/state

[backend kvm]
plugin=kvm
hosts=hostA=$demo/a, hostB=$demo/b
CONF
cat >"$demo/a/vms/tiny/vm.conf" <<CONF
[vm]
name=tiny
memory-mib=1024
vcpus=1
kernel=$guest/vmlinux
initrd=$guest/initramfs.cpio.gz
append=console=ttyS0 quiet panic=-1 dirty=64
CONF
vmshift() {
    timeout 300 "$build/host/vmshift" --config "$demo/vmshift.conf" \
        --plugin-dir "$build/plugins/kvm/.libs" "$@"
}
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say "start the tiny guest on hostA (QEMU, TCG)"
timeout 120 "$build/tests/kvm/kvm-drive" start "$demo/a" tiny >/dev/null
for i in $(seq 150); do grep -q "DIRTY pass=1" "$demo/a/vms/tiny/console.log" 2>/dev/null && break; sleep 0.2; done
tail -n 2 "$demo/a/vms/tiny/console.log"
say "vmshift hosts";                   vmshift hosts
say "vmshift vms";                     vmshift vms
say "vmshift check tiny --to hostB";   vmshift check tiny --to hostB
say "vmshift migrate tiny --to hostB"; vmshift migrate tiny --to hostB
say "vmshift vms";                     vmshift vms
say "vmshift job show 1";              vmshift job show 1 | head -n 20
sleep 2
say "the guest's console on hostB (it keeps running there)"
tail -n 4 "$demo/b/vms/tiny/console.log"
