#!/bin/bash
# Scheduled switchover (#17 item 6) on KVM through the `vmshift` command,
# with a guest that keeps writing to its disk while the job waits. Checked
# from QEMU's own view (QMP through kvm-drive, the images read with
# qemu-io), never from vmshift's report:
#  - a storage move with --switchover-at ~40 s ahead: `vmshift jobs` says
#    "waiting for switchover at"; QMP shows the mirror job ready (in sync)
#    and the VM still on its old image until the time; a marker written
#    through QEMU during the wait and the guest's own writes are on the new
#    image afterwards, which QMP shows the VM running on; the guest is alive;
#  - `job cancel` while waiting: the mirror is gone (query-block-jobs), the
#    VM runs on its old image, the new one is removed;
#  - a host+storage live move with a switchover: the VM stays on hostA until
#    the time, then runs on hostB from the new image with the data written
#    during the wait;
#  - kill -9 of vmshift while it waits, then `job repair`: the mirror is
#    re-established and the switchover happens at the time.
# No timing asserts beyond "not switched before the time".
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
command -v qemu-io >/dev/null || skip_all "qemu-io (qemu-utils) is not installed"
kvm_setup
mkdir -p "$KT/state"
printf '[vmshift]\nstate-dir=%s\n\n[backend kvm]\nplugin=kvm\nhosts=hostA=%s, hostB=%s\n' \
    "$KT/state" "$KT/a" "$KT/b" > "$KT/vmshift.conf"
V() { timeout "${V_TIMEOUT:-300}" "$VMSHIFT" --config "$KT/vmshift.conf" --daemon no \
          --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }
# a vmshift that kill -9 must reach: exec'd in a subshell, its pid in $!
VX() { exec "$VMSHIFT" --config "$KT/vmshift.conf" --daemon no \
           --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }
qmp() { timeout 60 "$DRIVE" qmp "$@" 2>/dev/null; }
job_json() { V job show "$1" --json 2>/dev/null; }
last_job() { V jobs --json 2>/dev/null | sed -n 's/^ *"id":\([0-9]*\),.*/\1/p' | sort -n | tail -1; }
# the image QEMU runs disk vda on (query-block's inserted file)
disk_file() {
    qmp "$1" "$2" query-block | sed 's#\\/#/#g' | grep -o '"file":"[^"]*"' | head -1 | cut -d'"' -f4
}
at_in() { date -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%S; }
epoch_of() { date -d "$1" +%s; }
# wait_waiting: `vmshift jobs` says the job waits (up to $1 s)
wait_waiting() {
    local i
    for i in $(seq $(($1 * 2))); do
        V jobs 2>/dev/null | grep -v "was waiting" | grep -q "waiting for switchover at" && return 0
        sleep 0.5
    done
    return 1
}
# watch_until EPOCH HOSTDIR VM BADPATTERN: samples the VM's disk file over
# QMP until 2 s before EPOCH; fails when it ever matches BADPATTERN
watch_until() {
    local f seen=0
    while [ "$(date +%s)" -lt $(($1 - 2)) ]; do
        f=$(disk_file "$2" "$3")
        case "$f" in *"$4"*) return 1 ;; "") ;; *) seen=1 ;; esac
        sleep 1
    done
    [ "$seen" = 1 ]
}
# running_until EPOCH HOSTDIR VM: QMP says "running" there at every sample
# until 2 s before EPOCH
running_until() {
    while [ "$(date +%s)" -lt $(($1 - 2)) ]; do
        qmp "$2" "$3" query-status | grep -q '"status":"running"' || return 1
        sleep 1
    done
}
# marker_in IMAGE PATTERN OFFSET: qemu-io reads PATTERN at OFFSET (64 KiB)
marker_in() {
    local o
    o=$(timeout 60 qemu-io -r -U -f qcow2 -c "read -P $2 $3 64k" "$1" 2>&1) &&
        ! grep -q "verification failed" <<<"$o"
}
# the guest's integrity stamp "SEQ N" at MiB 40 of IMAGE (qemu-io shows
# the space as '.')
stamp_in() {
    timeout 60 qemu-io -r -U -f qcow2 -c "read -v 40M 32" "$1" 2>/dev/null |
        sed -n 's/.*SEQ[. ]\([0-9]*\).*/\1/p' | head -1
}
guest_writes() { sed -n 's/^DISKWRITE n=\([0-9]*\).*/\1/p' "$1/vms/$2/console.log" | tail -1; }
export DRIVE
export -f qmp disk_file
bg_wait() { # bg_wait PID SECONDS: waits for a background vmshift
    local i
    for i in $(seq $(($2 * 5))); do pid_alive "$1" || { wait "$1" 2>/dev/null; return 0; }; sleep 0.2; done
    return 1
}

img="$KT/a/images/sw.qcow2"
timeout 60 qemu-img create -q -f qcow2 "$img" 64M
define_vm "$KT/a" sw "disk=1 diskwrite=1" "[disk vda]
path=$img
format=qcow2"
timeout 120 "$DRIVE" start "$KT/a" sw >/dev/null
check "guest boots on hostA and writes to its disk" wait_console "$KT/a" sw "DISKWRITE n=" 90

# ---- 1. storage move, copied now, switched over at the time ---------------------------
AT=$(at_in 40)
V migrate-storage sw --force --path "$KT/a/fast" --switchover-at "$AT" >"$KT/out1" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
check "vmshift jobs: the storage move is waiting for switchover" wait_waiting 35
bj=$(qmp "$KT/a" sw query-block-jobs)
check "QMP: the mirror job runs and is ready (in sync) during the wait" \
    bash -c 'grep -q "\"device\":\"vmshift-mirror-vda\"" <<<"$0" &&
             grep -q "\"ready\":true" <<<"$0" && grep -q "\"status\":\"ready\"" <<<"$0"' "$bj"
# written to the running disk through QEMU while the job waits: only the
# mirror can bring it to the new image
hmp=$(qmp "$KT/a" sw human-monitor-command \
    '{"command-line":"qemu-io -d /machine/peripheral/vda-dev/virtio-backend \"write -P 0xab 48M 64k\""}')
check "QMP: a marker written to the running disk during the wait" \
    test "$hmp" = '""'
n_wait=$(guest_writes "$KT/a" sw)
check "QMP: the VM stays on its old image until the switchover time" \
    watch_until "$(epoch_of "$AT")" "$KT/a" sw "$KT/a/fast/"
bj2=$(qmp "$KT/a" sw query-block-jobs)
check "QMP: the mirror is still ready just before the time (the guest kept writing)" \
    bash -c 'grep -q "\"ready\":true" <<<"$0" && test "$1" -gt "$2"' "$bj2" \
    "$(guest_writes "$KT/a" sw)" "${n_wait:-0}"
bg_wait "$bg" 180
wait "$bg"; rc=$?
check "vmshift migrate-storage --switchover-at exits 0" test "$rc" = 0
check "QMP: after the time the VM's disk is the new image" \
    test "$(disk_file "$KT/a" sw)" = "$KT/a/fast/sw.qcow2"
check "the guest is alive on its new disk" alive_on "$KT/a" sw
check "the marker written during the wait is on the new image" \
    marker_in "$KT/a/fast/sw.qcow2" 0xab 48M
s=$(stamp_in "$KT/a/fast/sw.qcow2")
check "the guest's writes during the wait are on the new image (stamp $s >= $n_wait)" \
    bash -c 'test -n "$0" && test -n "$1" && test "$0" -ge "$1"' "$s" "${n_wait:-}"
check "no guest write was lost" bash -c "! grep -q 'DISKCHECK bad' '$KT/a/vms/sw/console.log'"
id=$(last_job)
check "job show: the schedule was released at its time" \
    bash -c 'grep -q "\"state\":\"released\"" <<<"$0"' "$(job_json "$id")"

# ---- 2. job cancel while waiting: mirror aborted, VM on its old image -----------------
AT=$(at_in 300)
V migrate-storage sw --force --path "$KT/a/back" --switchover-at "$AT" >"$KT/out2" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
check "vmshift jobs: the second move waits for its switchover" wait_waiting 35
id=$(last_job)
V job cancel "$id" >/dev/null 2>&1
bg_wait "$bg" 60
wait "$bg"; rc=$?
check "the cancelled vmshift exits non-zero" test "$rc" != 0
check "QMP: no mirror job is left after the cancel" \
    test "$(qmp "$KT/a" sw query-block-jobs)" = "[]"
check "QMP: the VM still runs on its old image" \
    bash -c 'test "$(disk_file "$0" sw)" = "$1" &&
             qmp "$0" sw query-status | grep -q "\"status\":\"running\""' "$KT/a" "$KT/a/fast/sw.qcow2"
check "the new image is removed" test ! -e "$KT/a/back/sw.qcow2"
check "the guest is alive after the cancel" alive_on "$KT/a" sw
check "job show: cancelled, and so is its schedule" \
    bash -c 'grep -q "\"state\":\"cancelled\"" <<<"$0"' "$(job_json "$id")"

# ---- 3. host + storage live move, switched over at the time ------------------------------
AT=$(at_in 45)
V migrate sw --to hostB --path "$KT/b/images" --switchover-at "$AT" >"$KT/out3" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
check "vmshift jobs: the host+storage move waits for its switchover" wait_waiting 40
bj=$(qmp "$KT/a" sw query-block-jobs)
check "QMP (hostA): the NBD mirror to hostB is ready during the wait" \
    bash -c 'grep -q "\"device\":\"vmshift-mirror-vda\"" <<<"$0" && grep -q "\"ready\":true" <<<"$0"' "$bj"
hmp=$(qmp "$KT/a" sw human-monitor-command \
    '{"command-line":"qemu-io -d /machine/peripheral/vda-dev/virtio-backend \"write -P 0xcd 52M 64k\""}')
check "QMP (hostA): a marker written to the running disk during the wait" \
    test "$hmp" = '""'
check "QMP: the VM runs on hostA until the switchover time" \
    running_until "$(epoch_of "$AT")" "$KT/a" sw
bg_wait "$bg" 240
wait "$bg"; rc=$?
check "vmshift migrate --to hostB --path --switchover-at exits 0" test "$rc" = 0
check "QMP (hostB): the VM runs there on the new image" \
    bash -c 'test "$(disk_file "$0" sw)" = "$1" &&
             qmp "$0" sw query-status | grep -q "\"status\":\"running\""' "$KT/b" "$KT/b/images/sw.qcow2"
check "the guest is alive on hostB" alive_on "$KT/b" sw
check "the marker written on hostA during the wait is on hostB's image" \
    marker_in "$KT/b/images/sw.qcow2" 0xcd 52M

# ---- 4. kill -9 while waiting, then job repair: the mirror again, the time kept ---------
AT=$(at_in 60)
(VX migrate-storage sw --force --path "$KT/b/fast" --switchover-at "$AT" >"$KT/out4" 2>&1) &
bg=$!
KVM_EXTRA_PIDS="$bg"
check "vmshift jobs: the move to be interrupted waits" wait_waiting 35
id=$(last_job)
kill -9 "$bg"; wait "$bg" 2>/dev/null
V jobs >/dev/null 2>&1 # the sweep marks it interrupted
V job repair "$id" >"$KT/out5" 2>&1 &
bg=$!
KVM_EXTRA_PIDS="$bg"
check "job repair resumes the wait" wait_waiting 35
# the schedule still says "waiting" from the killed run: the repair's new
# mirror is ready a little later, and QMP answers once the job lets go of
# the monitor; poll for it (up to 40 s) rather than ask once
mirror_ready_b() {
    for _ in $(seq 80); do
        bj=$(qmp "$KT/b" sw query-block-jobs 2>/dev/null)
        grep -q '"device":"vmshift-mirror-vda"' <<<"$bj" && grep -q '"ready":true' <<<"$bj" && return 0
        sleep 0.5
    done
    echo "# last query-block-jobs: $bj"
    return 1
}
check "QMP: the repair re-established the mirror (ready)" mirror_ready_b
check "QMP: not switched over before the time after the repair" \
    watch_until "$(epoch_of "$AT")" "$KT/b" sw "$KT/b/fast/"
bg_wait "$bg" 180
wait "$bg"; rc=$?
check "job repair exits 0 after the switchover" test "$rc" = 0
check "QMP: the VM's disk is the new image after the resumed switchover" \
    test "$(disk_file "$KT/b" sw)" = "$KT/b/fast/sw.qcow2"
check "the guest is alive after the resumed switchover" alive_on "$KT/b" sw

if [ "$TAP_FAILED" != 0 ]; then
    diag "vmshift output:"
    cat "$KT"/out* 2>/dev/null | tail -40 | sed 's/^/# /'
fi
echo "1..$TAP_N"
exit 0
