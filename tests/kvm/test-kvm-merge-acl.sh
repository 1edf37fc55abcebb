#!/bin/bash
# Merge detection (a real throttled block-commit in the running QEMU, and a
# throttled `qemu-img commit` on a stopped VM's chain) and ACL recreation on
# real files with real POSIX ACLs, also after the disk moved.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
kvm_setup
command -v setfacl >/dev/null && command -v getfacl >/dev/null || skip_all "acl tools missing"
id nobody >/dev/null 2>&1 || skip_all "no user 'nobody' to stand for the QEMU user"

im="$KT/a/images"
timeout 60 qemu-img create -q -f qcow2 "$im/base.qcow2" 64M
timeout 60 qemu-img create -q -f qcow2 -b "$im/base.qcow2" -F qcow2 "$im/top.qcow2"
timeout 60 qemu-io -f qcow2 -c "write -P 0x33 0 24M" "$im/top.qcow2" >/dev/null
define_vm "$KT/a" mg "disk=1" "[disk vda]
path=$im/top.qcow2
format=qcow2"
timeout 120 "$DRIVE" start "$KT/a" mg >/dev/null
check "guest with a two-image chain boots" wait_console "$KT/a" mg "disk=ok" 90

out=$(drive merge-status mg 2>&1)
check "no merge reported while none runs" grep -q "^merging=0" <<<"$out"
timeout 60 "$DRIVE" qmp "$KT/a" mg block-commit \
    '{"job-id": "commit-vda", "device": "vda", "speed": 65536}' >/dev/null
out=$(drive merge-status mg 2>&1)
check "a running block-commit is a merge in progress" grep -q "^merging=1" <<<"$out"
check "the detail names the job, the disk and progress" \
    grep -qE "^detail=block-commit job 'commit-vda' on disk vda at [0-9]+%" <<<"$out"
diag "$(grep '^detail=' <<<"$out")"
out=$(drive check mg --to hostB 2>&1)
check "check_migration reports merge-in-progress as an error" \
    grep -q "finding error merge-in-progress" <<<"$out"
timeout 60 "$DRIVE" qmp "$KT/a" mg block-job-cancel '{"device": "commit-vda"}' >/dev/null
for i in $(seq 50); do
    drive merge-status mg 2>/dev/null | grep -q "^merging=0" && break; sleep 0.2
done
out=$(drive merge-status mg 2>&1)
check "after block-job-cancel no merge is reported" grep -q "^merging=0" <<<"$out"

# stopped VM: an external, throttled qemu-img commit holds the chain
timeout 60 "$DRIVE" qmp "$KT/a" mg quit >/dev/null 2>&1
for i in $(seq 50); do running_on "$KT/a" mg || break; sleep 0.1; done
timeout 120 qemu-img commit -q -r 1M "$im/top.qcow2" &
commit=$!
KVM_EXTRA_PIDS="$commit"
sleep 1
out=$(drive merge-status mg 2>&1)
check "a qemu-img commit on a stopped VM's chain is seen" \
    bash -c "grep -q '^merging=1' <<<\"\$0\" && grep -q 'locked by another process' <<<\"\$0\"" "$out"
kill "$commit"; wait "$commit" 2>/dev/null

# ACLs: the QEMU user of hostA is 'nobody' (it must be able to reach the
# directories; vmshift manages the image files, not their parents)
chmod 0755 "$KT" "$KT/a" "$im"
printf '[host]\nqemu-user=nobody\n' > "$KT/a/host.conf"
img="$im/top.qcow2"
chown root:root "$img"; chmod 0600 "$img"
setfacl -m u:daemon:r "$img"
out=$(drive acl mg 2>"$KT/err1")
check "recreate_acl succeeds" grep -q "^ok=1" <<<"$out"
diag "$(grep '^acl=' <<<"$out")"
acl=$(getfacl -cn "$img" 2>/dev/null)
check "image grants the QEMU user read/write" grep -q "^user:65534:rw-" <<<"$acl"
check "the mask lets the grant take effect" grep -q "^mask::rw-" <<<"$acl"
check "the model's other entries are kept" grep -q "^user:$(id -u daemon):r--" <<<"$acl"
check "the QEMU user can really open the image" \
    timeout 30 runuser -u nobody -- qemu-img info -U "$img"
check "the backing file is readable for the QEMU user" \
    grep -q "^user:65534:r--" <(getfacl -cn "$im/base.qcow2" 2>/dev/null)
check "the model is recorded in the definition" grep -q "^acl=" "$KT/a/vms/mg/vm.conf"

# someone changes the file outside vmshift: chmod narrows the mask, an
# extra grant appears; recreate_acl puts the model back
chmod 0600 "$img"
setfacl -m u:bin:rwx "$img"
out=$(drive acl mg 2>"$KT/err2")
acl=$(getfacl -cn "$img" 2>/dev/null)
check "changes made outside vmshift are replaced" \
    bash -c "grep -q '^user:65534:rw-' <<<\"\$0\" && grep -q '^mask::rw-' <<<\"\$0\" &&
             ! grep -q '^user:$(id -u bin):' <<<\"\$0\"" "$acl"
check "the job reports what it set" grep -qE "^acl=[0-9]+ file\(s\) checked, [1-9]" <<<"$out"
out=$(drive acl mg 2>&1)
check "a second run changes nothing" grep -q "^acl=.*, 0 change(s)" <<<"$out"

# after a storage move the new image gets the same rules
out=$(drive migrate-storage mg --path "$KT/a/moved" 2>"$KT/err3")
check "storage migration of the stopped VM succeeds" grep -q "^ok=1" <<<"$out"
new="$KT/a/moved/top.qcow2"
out=$(drive acl mg 2>"$KT/err4")
acl=$(getfacl -cn "$new" 2>/dev/null)
check "the moved image gets the model's ACL and the QEMU user's grant" \
    bash -c "grep -q '^user:65534:rw-' <<<\"\$0\" && grep -q '^user:$(id -u daemon):r--' <<<\"\$0\" &&
             grep -q '^other::---' <<<\"\$0\"" "$acl"
[ "$TAP_FAILED" = 0 ] || { diag "stderr:"; tail -n 5 "$KT"/err* | sed 's/^/# /'; }
echo "1..$TAP_N"
exit 0
