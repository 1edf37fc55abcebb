#!/bin/bash
# The libvirt transport against two real libvirt hosts on this machine
# (tests/kvm/lvhosts.sh: two libvirtd in their own network, mount and UTS
# namespaces): inventory, merge detection with a real throttled active
# block-commit, check, live peer-to-peer migration with the guest alive on
# the destination, cancel, the destination QEMU killed mid-transfer, kill -9
# of the client followed by repair, storage migration (block copy + pivot),
# recreate_acl on real files with real ACLs, --network NIC=NET, the
# same backend through the vmshift command, and between the hosts' own
# files (/var/lib/libvirt is each host's): cold migration through the
# storage API (checksums, --network, --start, a full destination, repair
# after a kill) and VM + storage live migration (NBD; cancel, a full
# destination, success with the guest alive on the new disk; the client
# killed mid-transfer, before the switchover and in the cleanup, each
# followed by repair; post-copy together with the disk copy).
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
command -v libvirtd >/dev/null && command -v virsh >/dev/null || skip_all "libvirt is not installed"
command -v ip >/dev/null || skip_all "iproute2 is not installed"
ldd "$VMSHIFT_BUILDDIR/plugins/kvm/.libs/kvm.so" 2>/dev/null | grep -q libvirt ||
    skip_all "the kvm plugin was built without libvirt"
ldd "$VMSHIFT_BUILDDIR/plugins/kvm/.libs/kvm.so" 2>/dev/null | grep -q libasan &&
    skip_all "libvirt's RPC crashes under ASan's XDR interceptors (libtirpc): not run in sanitizer builds"
kvm_setup
# libvirt's QEMU driver resolves its compiled-in user even when qemu.conf
# says root (TESTBED.md): a system user, as libvirt-daemon-system makes it
if ! id libvirt-qemu >/dev/null 2>&1; then
    groupadd -r libvirt-qemu 2>/dev/null
    useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu ||
        skip_all "cannot create the libvirt-qemu user"
fi
LV="$KT/lv"
mkdir -p "$LV"
trap 'timeout 60 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" down "$LV"; kvm_cleanup' EXIT
timeout 120 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" up "$LV" >"$KT/lvhosts.out" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "$(cat "$KT/lvhosts.out")"
[ $rc = 0 ] || { echo "not ok 1 - two libvirt hosts start: $(tr '\n' ' ' < "$KT/lvhosts.out")"; echo "1..1"; exit 0; }
A="qemu+unix:///system?socket=$LV/A/run/libvirt-sock"
B="qemu+unix:///system?socket=$LV/B/run/libvirt-sock"
vA() { timeout 60 virsh -q -c "$A" "$@"; }
vB() { timeout 60 virsh -q -c "$B" "$@"; }
printf '[backend lv]\nplugin=kvm\ntransport=libvirt\nhosts=lvA=%s, lvB=%s\nmigration-uris=lvA=qemu+tcp://198.51.100.1/system, lvB=qemu+tcp://198.51.100.2/system\n' \
    "$A" "$B" > "$KT/lv.conf"
lvd() { timeout 180 "$DRIVE" --config "$KT/lv.conf" "$@"; }

img="$KT/img"; mkdir -p "$img"; con="$KT/con"; mkdir -p "$con"
timeout 60 qemu-img create -q -f qcow2 "$img/base.qcow2" 64M
timeout 60 qemu-img create -q -f qcow2 -b "$img/base.qcow2" -F qcow2 "$img/top.qcow2"
timeout 60 qemu-io -f qcow2 -c "write -P 0x44 0 24M" "$img/top.qcow2" >/dev/null
cat > "$KT/lvdemo.xml" <<EOX
<domain type='qemu'>
  <name>lvdemo</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 disk=1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source file='$img/top.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <serial type='file'><source path='$con/lvdemo.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
vA define "$KT/lvdemo.xml" >/dev/null && vA start lvdemo >/dev/null
log="$con/lvdemo.log"
beat() { # [TRIES] two new heartbeats in the (shared) console file, no kernel BUG, no lost write
    local n0 n i; n0=$(grep -c HEARTBEAT "$log")
    for i in $(seq "${1:-75}"); do
        n=$(grep -c HEARTBEAT "$log")
        if [ "$n" -gt $((n0 + 1)) ]; then ! grep -qE "$GUEST_BROKEN" "$log"; return; fi
        sleep 0.2
    done
    return 1
}
for i in $(seq 300); do grep -q "disk=ok" "$log" 2>/dev/null && break; sleep 0.2; done
check "guest boots on libvirt host A" grep -q "disk=ok" "$log"

out=$(lvd hosts 2>&1)
check "hosts: both libvirt hosts ok" \
    bash -c 'grep -q "host lvA status=ok hypervisor=QEMU" <<<"$0" && grep -q "host lvB status=ok" <<<"$0"' "$out"
check "hosts: each libvirt host reports its CPU use (0-100%)" \
    bash -c 'test "$(grep -cE "^host lv[AB] .* cpu-use=([0-9]|[1-9][0-9]|100)( |$)" <<<"$0")" = 2' "$out"
out=$(lvd vms 2>&1)
check "vms: lvdemo running on lvA with its qcow2 disk and backing file" \
    bash -c "grep -q 'vm lvdemo host=lvA state=running' <<<\"\$0\" && grep -q 'disk vda path=$img/top.qcow2 format=qcow2' <<<\"\$0\"" "$out"

vA blockcommit lvdemo vda --active --bandwidth 1 >/dev/null 2>&1
out=$(lvd merge-status lvdemo 2>&1)
check "a throttled active block-commit is a merge in progress" \
    bash -c 'grep -q "^merging=1" <<<"$0" && grep -q "active block-commit job on disk vda" <<<"$0"' "$out"
diag "$(grep '^detail=' <<<"$out")"
out=$(lvd check lvdemo --to lvB 2>&1)
check "check reports the merge as an error" grep -q "finding error merge-in-progress" <<<"$out"
vA blockjob lvdemo vda --abort >/dev/null 2>&1
for i in $(seq 50); do lvd merge-status lvdemo 2>/dev/null | grep -q "^merging=0" && break; sleep 0.2; done
out=$(lvd check lvdemo --to lvB 2>&1)
check "after the abort: no findings" grep -q "^findings=0" <<<"$out"

# both "hosts" share this machine's file system, which libvirt cannot know:
# it calls such a migration unsafe; --force accepts that
out=$(lvd migrate lvdemo --to lvB 2>&1)
check "without --force libvirt's unsafe-storage refusal comes back as one clear error" \
    bash -c 'grep -q "^error=conflict" <<<"$0" && grep -q "Unsafe migration.*--force" <<<"$0" &&
             [ "$(timeout 30 virsh -q -c "$1" domstate lvdemo)" = running ]' "$out" "$A"
out=$(lvd migrate lvdemo --to lvB --force 2>"$KT/err1")
check "live migration lvA -> lvB through libvirt succeeds" grep -q "^ok=1" <<<"$out"
diag "$(grep -E '^(tuning|total-time-ms|downtime-ms)=' <<<"$out" | tr '\n' ' ')"
check "the guest is alive after the switchover" beat
check "libvirt: lvdemo runs on lvB and is gone from lvA" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvdemo)" = running ] && ! timeout 30 virsh -q -c "$1" dominfo lvdemo >/dev/null 2>&1' "$B" "$A"

# (the interruption tests force pre-copy: an idle guest measured at even
# 1 MiB/s over the 8 MiB/s cap would get post-copy, which cannot be cancelled
# after its switch)
out=$(lvd --journal "$KT/j2" migrate lvdemo --to lvA --force --option max-bandwidth=8388608 --option postcopy=false \
      --cancel-in transfer --cancel-delay-ms 1500 2>"$KT/err2"); rc=$?
check "cancel during a libvirt migration: cancelled" test "$rc" = 3
check "after the cancel the VM runs on lvB only" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvdemo)" = running ] && ! timeout 30 virsh -q -c "$1" domstate lvdemo 2>/dev/null | grep -q running' "$B" "$A"
check "the guest is alive on lvB" beat

# the tuning keys both transports share (kvm-tuning.c): an unknown one is
# refused by name; a known key changes what libvirt asks of QEMU (below).
out=$(lvd migrate lvdemo --to lvA --force --option bogus-key=1 2>&1)
check "an unknown --option key is refused by name, the VM left on lvB" \
    bash -c 'grep -q "^error=invalid-argument" <<<"$0" && grep -q "bogus-key" <<<"$0" &&
             [ "$(timeout 30 virsh -q -c "$1" domstate lvdemo)" = running ]' "$out" "$B"
# --option reaches libvirt: the default tuning of this guest is a parallel
# (multifd, 4 channels) migration, and QEMU refuses an incoming multifd
# stream unless libvirt turned the capability on at the destination too;
# multifd-channels=1 asks for one stream, so the destination QEMU, which
# stays, must show multifd off after the move. (QEMU 7.2's multifd ignores
# max-bandwidth, so a paused guest moves too fast to poll the source's
# parameters reliably while the transfer runs.)
lvd migrate lvdemo --to lvA --force --option postcopy=false --option multifd-channels=1 \
    --option downtime-limit=1234 >"$KT/out-tune" 2>"$KT/err-tune"
rc=$?
cap=$(timeout 10 virsh -c "$A" qemu-monitor-command lvdemo '{"execute":"query-migrate-capabilities"}' 2>/dev/null)
tuned=
if [ "$rc" = 0 ] &&
    grep -Eq '"state": ?false, ?"capability": ?"multifd"|"capability": ?"multifd", ?"state": ?false' <<<"$cap"; then
    tuned=1
fi
[ -n "$tuned" ] || diag "rc=$rc capabilities: $cap"
check "--option multifd-channels=1 turns the default multifd off (the destination QEMU's capability)" \
    test -n "$tuned"
check "  that migration leaves the VM running on lvA only, alive" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvdemo)" = running ] &&
             ! timeout 30 virsh -q -c "$1" domstate lvdemo 2>/dev/null | grep -q running' "$A" "$B"
lvd migrate lvdemo --to lvB --force --option postcopy=false >"$KT/out-back" 2>"$KT/err-back"
check "  and it moves back to lvB, alive" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvdemo)" = running ]' "$B"
check "  the guest is alive on lvB" beat

# the destination QEMU dies mid-transfer
lvd migrate lvdemo --to lvA --force --option max-bandwidth=8388608 --option postcopy=false >"$KT/out3" 2>"$KT/err3" &
job=$!
KVM_EXTRA_PIDS="$job"
for i in $(seq 100); do grep -q "PHASE transfer" "$KT/err3" && break; sleep 0.1; done
sleep 2
nsA=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" A)
for p in $(ip netns pids "$nsA" 2>/dev/null); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = qemu-system-x86 ] && kill -9 "$p"
done
wait "$job"; rc=$?
check "destination QEMU killed: the migration fails" \
    bash -c "test $rc = 1 && grep -q '^error=' '$KT/out3'"
diag "$(grep '^error:' "$KT/err3")"
check "and the VM still runs on lvB, alive" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvdemo)" = running ]' "$B"
check "the guest is alive on lvB after the failed attempt" beat

# the client killed -9 mid-transfer, then repair
setsid timeout 180 "$DRIVE" --config "$KT/lv.conf" --journal "$KT/j4" migrate lvdemo --to lvA \
    --force --option max-bandwidth=8388608 --option postcopy=false >"$KT/out4" 2>"$KT/err4" &
job=$!
KVM_EXTRA_PIDS="$job"
for i in $(seq 100); do grep -q "stage=transfer" "$KT/j4" 2>/dev/null && break; sleep 0.1; done
sleep 1.5
kill -9 -- "-$job"; wait "$job" 2>/dev/null
out=$(lvd --journal "$KT/j4" repair 2>"$KT/err4r")
check "repair after the client was killed succeeds" grep -q "^ok=1" <<<"$out"
sleep 2
on=0
[ "$(vA domstate lvdemo 2>/dev/null)" = running ] && on=$((on+1))
[ "$(vB domstate lvdemo 2>/dev/null)" = running ] && on=$((on+1))
check "after repair the VM runs in exactly one place" test "$on" = 1
check "and the guest is alive" beat
diag "$(grep -E '^(repair|location)=' <<<"$out" | tr '\n' ' ')"
# ---- storage migration on the same host: block copy + pivot -------------
cur=lvA; [ "$(vB domstate lvdemo 2>/dev/null)" = running ] && cur=lvB
vcur() { if [ $cur = lvA ]; then vA "$@"; else vB "$@"; fi; }
img2="$KT/img2"; mkdir -p "$img2"
out=$(lvd migrate-storage lvdemo --path "$img2" 2>"$KT/err5")
check "storage migration through libvirt (block copy + pivot) succeeds" grep -q "^ok=1" <<<"$out"
check "the running disk is the new file" \
    bash -c 'timeout 30 virsh -q -c "$0" domblklist lvdemo | grep -q "vda *$1/top.qcow2"' \
    "$([ $cur = lvA ] && echo "$A" || echo "$B")" "$img2"
check "the persistent definition names the new file" \
    bash -c 'timeout 30 virsh -q -c "$0" dumpxml --inactive lvdemo | grep -q "$1/top.qcow2"' \
    "$([ $cur = lvA ] && echo "$A" || echo "$B")" "$img2"
check "the old file is removed after the pivot, the backing file is kept" \
    bash -c "! test -e '$img/top.qcow2' && test -e '$img/base.qcow2'"
check "the data written before is in the copy (a whole image)" \
    bash -c "timeout 60 qemu-io -U -r -f qcow2 -c 'read -P 0x44 0 24M' '$img2/top.qcow2' | grep -q 'read 25165824'"
check "the guest is alive after the pivot" beat
out=$(lvd migrate-storage lvdemo --path "$img2" --disk-path vdz="$img" 2>&1)
check "an unknown disk in --disk-path is one clear error" grep -q "^error=not-found" <<<"$out"

# ---- recreate_acl: libacl model on the domain's files -------------------
f="$img2/top.qcow2"
chown root:root "$f"; chmod 0640 "$f"; setfacl -m u:65534:r "$f"
out=$(lvd acl lvdemo 2>&1)
check "acl: the first call records the model in the domain's metadata" \
    bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^acl=.*model recorded" <<<"$0"' "$out"
check "the model is in the domain's XML (travels with it)" \
    bash -c 'timeout 30 virsh -q -c "$0" metadata lvdemo https://vmshift.example/kvm/acl/1 | grep -q "acl=.*u:65534:r"' \
    "$([ $cur = lvA ] && echo "$A" || echo "$B")"
# changes outside vmshift
chown 65534:65534 "$f"; setfacl -x u:65534 "$f"; setfacl -m u:65533:rw "$f"; chmod 0606 "$f"
out=$(lvd acl lvdemo 2>&1)
check "acl: changes made outside vmshift are replaced and reported" \
    bash -c 'grep -q "^ok=1" <<<"$0" && ! grep -q "^acl=.* 0 change" <<<"$0"' "$out"
check "owner, mode and ACL entries are the model's again" \
    bash -c "[ \"\$(stat -c %U:%G '$f')\" = root:root ] && getfacl -cpn '$f' | grep -qx 'user:65534:r--' &&
             ! getfacl -cpn '$f' | grep -q 65533 && getfacl -cpn '$f' | grep -qx 'other::---'"
out=$(lvd acl lvdemo 2>&1)
check "acl: a second call changes nothing" grep -q "^acl=.* 0 change" <<<"$out"
# the same host reached over TCP (from inside its network namespace): its
# files are not this machine's to change, and the plugin says so
h=A addr=198.51.100.1
vB dominfo lvdemo >/dev/null 2>&1 && h=B addr=198.51.100.2
nsX=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" $h)
printf '[backend lv]\nplugin=kvm\ntransport=libvirt\nhosts=lv%s=qemu+tcp://%s/system\n' "$h" "$addr" \
    > "$KT/lv-remote.conf"
out=$(timeout 60 ip netns exec "$nsX" "$DRIVE" --config "$KT/lv-remote.conf" acl lvdemo 2>&1)
check "acl on a remote libvirt host is refused in one line (not supported, says why)" \
    bash -c 'grep -q "^error=not-supported" <<<"$0" && grep -q "is remote and its image files are not reachable" <<<"$0"' "$out"

# ---- --network NIC=NET on live migration (destination XML) --------------
ip -n "$nsA" link add brfront type bridge && ip -n "$nsA" link set brfront up
nsB=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" B)
ip -n "$nsB" link add brback type bridge && ip -n "$nsB" link set brback up
printf "<network><name>front</name><forward mode='bridge'/><bridge name='brfront'/></network>" > "$KT/front.xml"
printf "<network><name>back</name><forward mode='bridge'/><bridge name='brback'/></network>" > "$KT/back.xml"
vA net-define "$KT/front.xml" >/dev/null && vA net-start front >/dev/null
vB net-define "$KT/back.xml" >/dev/null && vB net-start back >/dev/null
cat > "$KT/lvnet.xml" <<EOX
<domain type='qemu'>
  <name>lvnet</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    <interface type='network'><mac address='52:54:00:aa:bb:01'/><source network='front'/>
      <model type='virtio'/><rom enabled='no'/></interface>
    <serial type='file'><source path='$con/lvnet.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
vA define "$KT/lvnet.xml" >/dev/null && vA start lvnet >"$KT/lvnet.start" 2>&1
log="$con/lvnet.log"
for i in $(seq 300); do grep -q "HEARTBEAT" "$log" 2>/dev/null && break; sleep 0.2; done
check "a guest with a NIC on network 'front' boots on lvA" grep -q HEARTBEAT "$log"
out=$(lvd vms lvA 2>&1)
check "vms: its NIC is on network front" grep -q "nic .*network=front" <<<"$out"
out=$(lvd migrate lvnet --to lvB 2>&1)
check "without --network the migration fails (lvB has no network front), VM stays on lvA" \
    bash -c 'grep -q "^error=" <<<"$0" && [ "$(timeout 30 virsh -q -c "$1" domstate lvnet)" = running ]' "$out" "$A"
out=$(lvd migrate lvnet --to lvB --network net0=nope 2>&1)
check "an unknown NIC in --network is one clear error" \
    bash -c 'grep -q "^error=" <<<"$0"' "$out"
out=$(lvd migrate lvnet --to lvB --network 52:54:00:aa:bb:01=back 2>"$KT/err6")
check "live migration with --network NIC=back succeeds" grep -q "^ok=1" <<<"$out"
check "the guest is alive on lvB" beat
check "on lvB the NIC is on network back (live and persistent)" \
    bash -c 'timeout 30 virsh -q -c "$0" domiflist lvnet | grep -q " back " &&
             timeout 30 virsh -q -c "$0" dumpxml --inactive lvnet | grep -q "network=.back."' "$B"

# ---- the libvirt transport through the vmshift command ------------------
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
if [ -x "$VMSHIFT" ]; then
    mkdir -p "$KT/state"
    { printf '[vmshift]\nstate-dir=%s\n\n' "$KT/state"; sed 's/^\[backend lv\]/[backend lv]/' "$KT/lv.conf"; } > "$KT/vmshift.conf"
    V() { timeout 180 "$VMSHIFT" --config "$KT/vmshift.conf" --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }
    out=$(V backends 2>&1)
    check "vmshift backends: the libvirt backend is ready" grep -qE "^lv +kvm .* ready" <<<"$out"
    out=$(V vms 2>&1)
    check "vmshift vms: lvnet running on lvB" grep -qE "^lv +lvnet +lvB +running" <<<"$out"
    V migrate lvnet --to lvA --network net0=front >"$KT/out-v" 2>&1
    rc=$?
    check "vmshift migrate lvnet --to lvA --network net0=front exits 0" test "$rc" = 0
    check "the guest is alive on lvA" beat
    id=$(V jobs --json 2>/dev/null | sed -n 's/^ *"id":\([0-9]*\),.*/\1/p' | sort -n | tail -1)
    j=$(V job show "$id" --json 2>/dev/null)
    check "vmshift job show: succeeded, VM on lvA, with the tuning" \
        bash -c 'grep -q "\"state\":\"succeeded\"" <<<"$0" && grep -q "\"host\":\"lvA\"" <<<"$0" &&
                 grep -q "\"tuning\":" <<<"$0"' "$j"
    [ "$TAP_FAILED" = 0 ] || diag "$(tail -3 "$KT/out-v")"
else
    ok "vmshift through libvirt # SKIP host/vmshift is not built"
fi
vA destroy lvnet >/dev/null 2>&1; vB destroy lvnet >/dev/null 2>&1
vA destroy lvdemo >/dev/null 2>&1; vB destroy lvdemo >/dev/null 2>&1

# ---- cold migration between the hosts' own files (storage API) ----------
# /var/lib/libvirt of host A is $LV/A/lib here, of host B $LV/B/lib;
# /var/lib/libvirt/small is a 4 MiB tmpfs of each host (lvhosts.sh)
in_ns() { local h=$1; shift; timeout 30 nsenter -t "$(cat "$LV/$h/libvirtd.pid")" -m -- "$@"; }
gone_from() { # gone_from HOST-URI DIR: no lvcold domain there, no image in DIR
    ! timeout 30 virsh -q -c "$1" dominfo lvcold >/dev/null 2>&1 && ! test -e "$2/lvcold.qcow2"
}
beats() { local n; n=$(grep -c HEARTBEAT "$log" 2>/dev/null); echo "${n:-0}"; }
boots() { # the guest (re)starts: a first new heartbeat within 60 s, then another,
          # and it has read its disk
    local n0 i; n0=$(beats)
    for i in $(seq 300); do [ "$(beats)" -gt "$n0" ] && break; sleep 0.2; done
    beat && grep HEARTBEAT "$log" | tail -1 | grep -q disk=ok
}
small_empty() { local l; l=$(in_ns "$1" ls -A /var/lib/libvirt/small) && [ -z "$l" ]; }
mkdir -p "$LV/A/lib/images"
ci="$LV/A/lib/images/lvcold.qcow2"
timeout 60 qemu-img create -q -f qcow2 "$ci" 64M
timeout 60 qemu-io -f qcow2 -c "write -P 0x55 0 24M" "$ci" >/dev/null
cat > "$KT/lvcold.xml" <<EOX
<domain type='qemu'>
  <name>lvcold</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 disk=1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/libvirt/images/lvcold.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:02'/><source network='front'/>
      <model type='virtio'/><rom enabled='no'/></interface>
    <serial type='file'><source path='$con/lvcold.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
vA define "$KT/lvcold.xml" >/dev/null
log="$con/lvcold.log"
sum0=$(sha256sum < "$ci")
out=$(lvd migrate lvcold --to lvB --cold --network net0=back 2>"$KT/err7")
check "cold migration lvA -> lvB (same path, --network net0=back) succeeds" \
    bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^location=lvB" <<<"$0"' "$out"
check "the image on lvB is byte for byte the one of lvA (sha256)" \
    test "$(sha256sum < "$LV/B/lib/images/lvcold.qcow2" 2>/dev/null)" = "$sum0"
check "lvcold is defined (persistent) and shut off on lvB" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvcold)" = "shut off" ] &&
             [ "$(timeout 30 virsh -q -c "$0" dominfo lvcold | sed -n "s/^Persistent: *//p")" = yes ]' "$B"
check "lvcold's domain and image are gone from lvA" gone_from "$A" "$LV/A/lib/images"
check "on lvB its NIC is on network back" \
    bash -c 'timeout 30 virsh -q -c "$0" dumpxml --inactive lvcold | grep -q "network=.back."' "$B"
vB start lvcold >"$KT/lvcold.start" 2>&1
check "started on lvB, the moved guest runs (fresh heartbeat) and reads its disk" boots
vB destroy lvcold >/dev/null 2>&1
sum1=$(sha256sum < "$LV/B/lib/images/lvcold.qcow2")

out=$(lvd migrate lvcold --to lvA --cold --path /var/lib/libvirt/small --network net0=front 2>"$KT/err8")
check "cold migration into lvA's full file system fails with no-space" grep -q "^error=no-space" <<<"$out"
diag "$(grep '^error:' "$KT/err8")"
check "after it lvcold is on lvB only, its image unchanged" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvcold)" = "shut off" ] &&
             ! timeout 30 virsh -q -c "$1" dominfo lvcold >/dev/null 2>&1 &&
             [ "$(sha256sum < "$2")" = "$3" ]' "$B" "$A" "$LV/B/lib/images/lvcold.qcow2" "$sum1"
check "nothing is left in lvA's small file system" small_empty A

# the client killed -9 after the copy, before the definition moved: repair
lvd --journal "$KT/j8" migrate lvcold --to lvA --cold --path /var/lib/libvirt/moved \
    --network net0=front --die-in switchover >"$KT/out8" 2>"$KT/err8k"
check "killed before the switchover, the copy was made on lvA" test -e "$LV/A/lib/moved/lvcold.qcow2"
out=$(lvd --journal "$KT/j8" repair 2>"$KT/err8r")
check "repair rolls the cold move back: lvcold on lvB only, the copy on lvA removed" \
    bash -c 'grep -q "^repair=rolled-back" <<<"$0" && [ "$(timeout 30 virsh -q -c "$1" domstate lvcold)" = "shut off" ] &&
             ! timeout 30 virsh -q -c "$2" dominfo lvcold >/dev/null 2>&1 && ! test -e "$3/lvcold.qcow2"' \
    "$out" "$B" "$A" "$LV/A/lib/moved"

# cancelled after the copy, right before the definition moves
lvd migrate lvcold --to lvA --cold --path /var/lib/libvirt/moved --network net0=front \
    --cancel-in switchover >"$KT/out8c" 2>"$KT/err8c"; rc=$?
check "cancel of a cold migration after the copy: cancelled, lvcold on lvB only, no copy on lvA" \
    bash -c 'test "$0" = 3 && [ "$(timeout 30 virsh -q -c "$1" domstate lvcold)" = "shut off" ] &&
             ! timeout 30 virsh -q -c "$2" dominfo lvcold >/dev/null 2>&1 && ! test -e "$3/lvcold.qcow2"' \
    "$rc" "$B" "$A" "$LV/A/lib/moved"

out=$(lvd migrate lvcold --to lvA --cold --path /var/lib/libvirt/moved --network net0=front --start 2>"$KT/err9")
check "cold migration lvB -> lvA with --path and --start succeeds" \
    bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^location=lvA" <<<"$0" && grep -q "^location-detail=running" <<<"$0"' "$out"
check "the guest runs on lvA (fresh heartbeat) and reads its disk" boots
check "lvA runs it from /var/lib/libvirt/moved" \
    bash -c 'timeout 30 virsh -q -c "$0" domblklist lvcold | grep -q "vda *.var.lib.libvirt.moved.lvcold.qcow2"' "$A"
check "lvB has neither the domain nor its image" gone_from "$B" "$LV/B/lib/images"

# ---- VM + storage: live migration with NBD disk mirroring ---------------
out=$(lvd migrate lvcold --to lvB --path /var/lib/libvirt/vs --network net0=back --option max-bandwidth=8388608 \
      --option postcopy=false --cancel-in transfer --cancel-delay-ms 1500 2>"$KT/err10"); rc=$?
check "cancel during a VM + storage migration: cancelled" test "$rc" = 3
check "after the cancel lvcold runs on lvA, and lvB has no image of it" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvcold)" = running ] && ! test -e "$1/lvcold.qcow2"' \
    "$A" "$LV/B/lib/vs"
check "  nor a domain" gone_from "$B" "$LV/B/lib/vs"
check "the guest is alive on lvA" beat
out=$(lvd migrate lvcold --to lvB --path /var/lib/libvirt/small --network net0=back 2>"$KT/err11")
check "VM + storage into lvB's full file system fails" grep -q "^error=" <<<"$out"
diag "$(grep '^error:' "$KT/err11")"
check "and lvcold runs on lvA only" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvcold)" = running ] &&
             ! timeout 30 virsh -q -c "$1" dominfo lvcold >/dev/null 2>&1' "$A" "$B"
check "nothing is left in lvB's small file system" small_empty B
check "the guest is alive on lvA after the failed attempt" beat
out=$(lvd migrate lvcold --to lvB --path /var/lib/libvirt/vs --network net0=back 2>"$KT/err12")
check "VM + storage migration lvA -> lvB succeeds" grep -q "^ok=1" <<<"$out"
diag "$(grep -E '^(tuning|disk-bytes|downtime-ms)=' <<<"$out" | tr '\n' ' ')"
check "the guest is alive on lvB after the switchover" beat
check "lvB runs it from /var/lib/libvirt/vs (live and persistent definitions)" \
    bash -c 'timeout 30 virsh -q -c "$0" domblklist lvcold | grep -q "vda *.var.lib.libvirt.vs.lvcold.qcow2" &&
             timeout 30 virsh -q -c "$0" dumpxml --inactive lvcold | grep -q "file=.*vs/lvcold.qcow2"' "$B"
check "lvA has neither the domain nor its image any more" gone_from "$A" "$LV/A/lib/moved"
check "the data written before is in lvB's copy" \
    bash -c "timeout 60 qemu-io -U -r -f qcow2 -c 'read -P 0x55 0 24M' '$LV/B/lib/vs/lvcold.qcow2' | grep -q 'read 25165824'"
# ---- repair of an interrupted VM + storage migration; post-copy with it ---
# (where lvcold runs and from which file; /var/lib/libvirt/X of host H is
# $LV/H/lib/X here)
lvhost() { local h; for h in lvA lvB; do [ "$(timeout 30 virsh -q -c "$(uri $h)" domstate lvcold 2>/dev/null)" = running ] && echo $h; done; }
uri() { if [ "$1" = lvA ]; then echo "$A"; else echo "$B"; fi; }
disk_of() { timeout 30 virsh -q -c "$(uri "$1")" domblklist lvcold | awk '$1 == "vda" { print $2 }'; }
file_on() { echo "$LV/${1#lv}/lib${2#/var/lib/libvirt}"; }
no_job_pools() { ! { vA pool-list --all --name; vB pool-list --all --name; } 2>/dev/null | grep -q '^vmshift-'; }
settled() { # settled HOST FILE OTHER OTHER-FILE: lvcold runs on HOST from FILE (live and
            # persistent definitions); OTHER has no definition of it and no OTHER-FILE; no
            # pool of a job is left on either host
    [ "$(lvhost)" = "$1" ] && [ "$(disk_of "$1")" = "$2" ] && test -e "$(file_on "$1" "$2")" &&
    timeout 30 virsh -q -c "$(uri "$1")" dumpxml --inactive lvcold | grep -q "file=.$2." &&
    ! timeout 30 virsh -q -c "$(uri "$3")" dominfo lvcold >/dev/null 2>&1 &&
    ! test -e "$(file_on "$3" "$4")" && no_job_pools
}
saved() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -1; }
net_of() { if [ "$1" = lvA ]; then echo front; else echo back; fi; }
other() { if [ "$1" = lvA ]; then echo lvB; else echo lvA; fi; }
slow=(--option max-bandwidth=8388608 --option postcopy=false)

# the client killed -9 mid-transfer (the disk copy), repair right after
cur=$(lvhost); oth=$(other "$cur"); old=$(disk_of "$cur"); new=/var/lib/libvirt/vs2/lvcold.qcow2
setsid timeout 180 "$DRIVE" --config "$KT/lv.conf" --journal "$KT/j13" migrate lvcold --to "$oth" \
    --path /var/lib/libvirt/vs2 --network net0="$(net_of "$oth")" "${slow[@]}" >"$KT/out13" 2>"$KT/err13" &
job=$!
KVM_EXTRA_PIDS="$job"
for i in $(seq 100); do [ "$(saved "$KT/j13" stage)" = transfer ] && break; sleep 0.1; done
sleep 1.5
kill -9 -- "-$job"; wait "$job" 2>/dev/null
check "VM + storage: the client killed -9 mid-transfer, the journal names the new images" \
    bash -c '[ "$(sed -n "s/^stage=//p" "$0")" = transfer ] && grep -qx "new-vols=$1" "$0"' "$KT/j13" "$new"
out=$(lvd --journal "$KT/j13" repair 2>"$KT/err13r")
r=$(sed -n 's/^repair=//p' <<<"$out")
check "repair after it succeeds (rolled back or finished: $r)" \
    bash -c 'grep -q "^ok=1" <<<"$0" && grep -qE "^repair=(rolled-back|resumed)$" <<<"$0"' "$out"
if [ "$r" = resumed ]; then
    check "  lvcold runs on $oth from $new only; $cur has neither its domain nor $old; no job pool" \
        settled "$oth" "$new" "$cur" "$old"
else
    check "  lvcold runs on $cur from $old only; $oth has neither its domain nor $new; no job pool" \
        settled "$cur" "$old" "$oth" "$new"
fi
check "  and the guest is alive (a fresh heartbeat)" beat

# killed before the switchover (the images made, libvirt not yet started): rolled back
cur=$(lvhost); oth=$(other "$cur"); old=$(disk_of "$cur")
lvd --journal "$KT/j14" migrate lvcold --to "$oth" --path /var/lib/libvirt/vs2 --network net0="$(net_of "$oth")" \
    --die-in transfer >"$KT/out14" 2>"$KT/err14"
check "VM + storage killed entering the transfer: $oth has the new image" test -e "$(file_on "$oth" "$new")"
out=$(lvd --journal "$KT/j14" repair 2>"$KT/err14r")
check "repair rolls it back" bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^repair=rolled-back" <<<"$0"' "$out"
check "  lvcold runs on $cur from $old only; $oth has neither its domain nor the new image; no job pool" \
    settled "$cur" "$old" "$oth" "$new"
check "  and the guest is alive (a fresh heartbeat)" beat

# killed after the switchover, before the source's images went: finished
lvd --journal "$KT/j15" migrate lvcold --to "$oth" --path /var/lib/libvirt/vs2 --network net0="$(net_of "$oth")" \
    --die-in cleanup >"$KT/out15" 2>"$KT/err15"
check "VM + storage killed in the cleanup: the journal says completed, $cur still has $old" \
    bash -c '[ "$(sed -n "s/^stage=//p" "$0")" = completed ] && test -e "$1"' "$KT/j15" "$(file_on "$cur" "$old")"
out=$(lvd --journal "$KT/j15" repair 2>"$KT/err15r")
check "repair finishes it" bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^repair=resumed" <<<"$0"' "$out"
check "  lvcold runs on $oth from $new only; $cur has neither its domain nor $old; no job pool" \
    settled "$oth" "$new" "$cur" "$old"
check "  and the guest is alive (a fresh heartbeat)" beat
out=$(lvd --journal "$KT/j15" repair 2>&1)
check "  a second repair changes nothing" \
    bash -c 'grep -q "^ok=1" <<<"$0" && [ "$(sed -n "s/^repair=//p" <<<"$0")" = resumed ]' "$out"

vA destroy lvcold >/dev/null 2>&1; vB destroy lvcold >/dev/null 2>&1

# ---- a TCG guest that keeps writing memory: paused for the transfer ----
# (QEMU 7.2 under TCG loses guest writes in a live migration, pre-copy and
# post-copy alike: kvm_tuning_tcg_loses_writes; the guest's own memory
# check, MEMCHECK, shows it)
cat > "$KT/lvdirty.xml" <<EOX
<domain type='qemu'>
  <name>lvdirty</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 dirty=64</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='$con/lvdirty.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
vA define "$KT/lvdirty.xml" >/dev/null 2>&1 && vA start lvdirty >/dev/null 2>&1
log="$con/lvdirty.log"
for i in $(seq 300); do grep -q "DIRTY pass=1" "$log" 2>/dev/null && break; sleep 0.2; done
check "a guest dirtying 64 MiB/s boots on lvA (TCG)" grep -q "DIRTY pass=1" "$log"
out=$(lvd migrate lvdirty --to lvB 2>"$KT/err-dirty")
grep -E "^(ok|error|tuning|tuning-reason)=" <<<"$out" >"$KT/err-dirty-result"   # shown on failure
check "its migration pauses it for the transfer (TCG on a QEMU before 9.0)" \
    bash -c 'grep -q "^ok=1" <<<"$0" && grep -q "^tuning=.*source paused for the transfer" <<<"$0" &&
             grep -q "^tuning-reason=TCG on QEMU [1-8] loses guest writes.*paused for the transfer" <<<"$0"' "$out"
# 45 s: right after the switch a TCG guest on shared cores may take long per beat
alive_dirty() { beat 225 && [ "$(vB domstate lvdirty)" = running ]; }
check "  the guest runs on lvB with its memory intact (heartbeats, no BUG, no MEMCHECK bad)" alive_dirty
[ "$TAP_FAILED" = 0 ] || { diag "lvdirty console:"; tail -n 5 "$log" | sed 's/^/# /'; }
for v in vA vB; do $v destroy lvdirty >/dev/null 2>&1; $v undefine lvdirty >/dev/null 2>&1; done
[ "$TAP_FAILED" = 0 ] || { diag "stderr:"; tail -n 4 "$KT"/err* | sed 's/^/# /'; }
echo "1..$TAP_N"
exit 0
