#!/bin/bash
# Storage migration (blockdev-mirror + pivot, live), VM + storage to another
# host (mirror over NBD during live migration), and cold migration with the
# disk copied and the VM started; the guest writes to its disk throughout.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
kvm_setup

img="$KT/a/images/data.qcow2"
timeout 60 qemu-img create -q -f qcow2 "$img" 64M
# a marker the guest never overwrites (it writes MiB 1..32)
timeout 60 qemu-io -f qcow2 -c "write -P 0x5a 0 64k" "$img" >/dev/null
marker_in() { # qemu-io exits 1 on "Pattern verification failed"
    local o
    o=$(timeout 60 qemu-io -r -U -f qcow2 -c "read -P 0x5a 0 64k" "$1" 2>&1) &&
        ! grep -q "verification failed" <<<"$o"
}
# the guest reads back a stamped block after every write: a write lost by
# a move shows as DISKCHECK bad; new DISKWRITE lines show writes go on
writes_intact() { # HOSTDIR
    local log="$1/vms/st/console.log" n0 i
    n0=$(grep -c "DISKWRITE n=" "$log")
    for i in $(seq 100); do
        [ "$(grep -c "DISKWRITE n=" "$log")" -gt "$n0" ] && break; sleep 0.2
    done
    [ "$(grep -c "DISKWRITE n=" "$log")" -gt "$n0" ] && ! grep -q "DISKCHECK bad" "$log"
}
define_vm "$KT/a" st "disk=1 diskwrite=1" "[disk vda]
path=$img
format=qcow2"
timeout 120 "$DRIVE" start "$KT/a" st >/dev/null
check "guest with a disk boots and writes" wait_console "$KT/a" st "DISKWRITE n=" 90
check "the marker check tells a wrong pattern" bash -c "! timeout 60 qemu-io -r -U -f qcow2 -c 'read -P 0x11 0 64k' '$img' >/dev/null 2>&1"

out=$(drive migrate-storage st --path "$KT/a/fast" 2>"$KT/err1")
check "live storage migration to a new directory succeeds" grep -q "^ok=1" <<<"$out"
check "definition points at the new image" grep -q "path=$KT/a/fast/data.qcow2" "$KT/a/vms/st/vm.conf"
check "old image removed after the pivot" test ! -e "$img"
check "new image holds the data written before" marker_in "$KT/a/fast/data.qcow2"
check "guest still alive with its disk readable" alive_on "$KT/a" st
check "no guest write lost across the pivot, writes go on" writes_intact "$KT/a"
pid=$(qemu_pid "$KT/a" st)
check "QEMU has the new image open, not the old one" \
    bash -c "ls -l /proc/$pid/fd | grep -q '$KT/a/fast/data.qcow2' && ! ls -l /proc/$pid/fd | grep -q '$img'"

out=$(drive migrate st --to hostB --path "$KT/b/images" 2>"$KT/err2")
check "live VM + storage migration A->B succeeds" grep -q "^ok=1" <<<"$out"
check "guest alive on hostB" alive_on "$KT/b" st
check "no guest write lost across VM + storage migration, writes go on" writes_intact "$KT/b"
check "hostB's image holds the data" marker_in "$KT/b/images/data.qcow2"
# the mirrors ended before the RAM moved: no NBD export held the image when
# hostB's QEMU took it over (before, it logged "Permission conflict on node"
# and waited to be resumed; the source's post-copy switch could fail)
check "hostB's QEMU took its image over without a permission conflict" \
    bash -c "! grep -q 'Permission conflict' '$KT/b/vms/st/qemu.log'"
check "the source image is gone" test ! -e "$KT/a/fast/data.qcow2"
check "guest on hostB reads its disk" \
    bash -c "sleep 1; tail -5 '$KT/b/vms/st/console.log' | grep -q 'disk=ok'"

out=$(drive migrate st --to hostA --cold 2>&1)
check "cold migration of a running VM is refused" grep -q "error=conflict" <<<"$out"
timeout 60 "$DRIVE" qmp "$KT/b" st quit >/dev/null 2>&1
for i in $(seq 50); do running_on "$KT/b" st || break; sleep 0.1; done
out=$(drive migrate st --to hostA --cold --path "$KT/a/images" --start 2>"$KT/err3")
check "cold migration B->A with disk copy and --start succeeds" grep -q "^ok=1" <<<"$out"
check "guest boots on hostA from the copied disk" wait_console "$KT/a" st "disk=ok" 90
check "copied image holds the data" marker_in "$KT/a/images/data.qcow2"
check "hostB no longer has the VM or its image" \
    bash -c "! test -e '$KT/b/vms/st' && ! test -e '$KT/b/images/data.qcow2'"
[ "$TAP_FAILED" = 0 ] || { diag "stderr:"; cat "$KT"/err* | sed 's/^/# /' | tail -30; }
echo "1..$TAP_N"
exit 0
