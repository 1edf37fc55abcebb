#!/bin/bash
# The kvm plugin through the `vmshift` command: backends, inventory, check,
# live migration with the guest alive afterwards, merge status, ACLs, job
# cancel from another process, and `kill -9` of vmshift mid-transfer
# followed by `job repair`.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
kvm_setup
mkdir -p "$KT/state"
printf '[vmshift]\nstate-dir=%s\n\n[backend kvm]\nplugin=kvm\nhosts=hostA=%s, hostB=%s\n' \
    "$KT/state" "$KT/a" "$KT/b" > "$KT/vmshift.conf"
V() { timeout "${V_TIMEOUT:-180}" "$VMSHIFT" --config "$KT/vmshift.conf" \
          --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }
last_job() { V jobs --json 2>/dev/null | sed -n 's/^ *"id":\([0-9]*\),.*/\1/p' | sort -n | tail -1; }
job_json() { V job show "$1" --json 2>/dev/null; }

timeout 60 qemu-img create -q -f qcow2 "$KT/a/images/demo.qcow2" 64M
define_vm "$KT/a" demo "dirty=64 disk=1" "[disk vda]
path=$KT/a/images/demo.qcow2
format=qcow2"
timeout 120 "$DRIVE" start "$KT/a" demo >/dev/null
check "guest boots on hostA" wait_console "$KT/a" demo "DIRTY pass=1" 90

out=$(V backends 2>&1)
check "vmshift backends: kvm loaded and ready" grep -qE "^kvm +kvm .* ready" <<<"$out"
out=$(V vms 2>&1)
check "vmshift vms: demo running on hostA with its disk" grep -qE "^kvm +demo +hostA +running .* 1 " <<<"$out"
V check demo --to hostB >"$KT/out-check" 2>&1
check "vmshift check demo --to hostB passes" test $? = 0

V migrate demo --to hostB >"$KT/out-mig" 2>&1
rc=$?
check "vmshift migrate demo --to hostB exits 0" test "$rc" = 0
check "guest alive on hostB after the switchover" alive_on "$KT/b" demo
id=$(last_job)
j=$(job_json "$id")
check "the job succeeded, records the VM on hostB and the plugin's tuning" \
    bash -c 'grep -q "\"state\":\"succeeded\"" <<<"$0" && grep -q "\"host\":\"hostB\"" <<<"$0" &&
             grep -q "\"tuning\":" <<<"$0" && grep -q "\"downtime-ms\":" <<<"$0"' "$j"

out=$(V merge-status demo 2>&1)
check "vmshift merge-status: no merge" grep -q "no merge in progress" <<<"$out"
# acl recreate: read from the file system, not from vmshift's exit code: a
# change made outside vmshift (o+r, an extra ACL entry) is replaced by the
# rules the first run applied
img=$KT/a/images/demo.qcow2
V acl recreate demo >"$KT/out-acl" 2>&1
rc=$?
model=$(getfacl -cEn "$img" 2>/dev/null | tr '\n' ' ')
chmod o+r "$img"
setfacl -m "u:$(id -u daemon):rwx" "$img"
V acl recreate demo >"$KT/out-acl2" 2>&1
rc2=$?
check "vmshift acl recreate replaces an outside change to the image's mode and ACL" \
    bash -c 'test "$1" = 0 && test "$2" = 0 && test -n "$3" &&
             test "$(getfacl -cEn "$4" | tr "\n" " ")" = "$3"' _ "$rc" "$rc2" "$model" "$img"

# hostB caps outgoing migrations at 8 MiB/s and forbids post-copy: a
# pre-copy slow enough to interrupt
printf '[host]\nmax-bandwidth-mib-s=8\nallow-postcopy=false\n' > "$KT/b/host.conf"

# job cancel from another process
prev=$(last_job)
V migrate demo --to hostA >"$KT/out-cancel" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
for i in $(seq 150); do
    id=$(last_job)
    [ -n "$id" ] && [ "$id" -gt "${prev:-0}" ] && job_json "$id" | grep -q '"phase":"transfer"' && break
    sleep 0.2
done
sleep 1
V job cancel "$id" >/dev/null 2>&1
wait "$bg"; rc=$?
check "vmshift job cancel from another process stops the migration" test "$rc" != 0
check "after the cancel the guest runs on hostB only" \
    bash -c "alive_on '$KT/b' demo && ! test -e '$KT/a/vms/demo'"
j=$(job_json "$id")
check "the cancelled job says where the VM is" bash -c 'grep -q "\"host\":\"hostB\"" <<<"$0"' "$j"
check "the plugin kept to pre-copy because hostB forbids post-copy, and said so" \
    bash -c 'grep -q "allow-postcopy=false" <<<"$0" && grep -q "postcopy=off" <<<"$0"' "$j"

# kill -9 of vmshift mid-transfer, then job repair
prev=$(last_job)
setsid "$VMSHIFT" --config "$KT/vmshift.conf" --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" \
    migrate demo --to hostA >"$KT/out-kill" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
for i in $(seq 150); do
    id=$(last_job)
    [ -n "$id" ] && [ "$id" -gt "${prev:-0}" ] && job_json "$id" | grep -q '"phase":"transfer"' && break
    sleep 0.2
done
sleep 1
kill -9 -- "-$bg" 2>/dev/null || kill -9 "$bg"
wait "$bg" 2>/dev/null
j=$(job_json "$id")
check "the killed job is in the journal, interrupted in transfer" \
    bash -c 'grep -q "\"phase\":\"transfer\"" <<<"$0" && ! grep -q "\"state\":\"succeeded\"" <<<"$0"' "$j"
V job repair "$id" >"$KT/out-repair" 2>&1
rc=$?
j=$(job_json "$id")
check "vmshift job repair rolls the job back" \
    bash -c 'test "$1" = 0 && grep -q "\"repair\":\"rolled-back\"" <<<"$0"' "$j" "$rc"
check "after repair the VM runs on hostB only, alive" \
    bash -c "running_on '$KT/b' demo && ! test -e '$KT/a/vms/demo' && alive_on '$KT/b' demo"
[ "$TAP_FAILED" = 0 ] || { diag "outputs:"; tail -n 8 "$KT"/out-* | sed 's/^/# /'; }
echo "1..$TAP_N"
exit 0
