# Shared by the KVM integration tests: TAP helpers, two local "hosts" (run
# directories) under a temp dir, the tiny guest, and cleanup of every QEMU
# they started (trap). Source it; then call kvm_setup.
set -u
: "${VMSHIFT_BUILDDIR:?}" "${VMSHIFT_SRCDIR:?}"
DRIVE="$VMSHIFT_BUILDDIR/tests/kvm/kvm-drive"
GUEST="${VMSHIFT_GUEST_DIR:-$VMSHIFT_BUILDDIR/tests/guest/out}"
TAP_N=0
TAP_FAILED=0
ok() { TAP_N=$((TAP_N+1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N+1)); TAP_FAILED=1; echo "not ok $TAP_N - $*"; }
check() { # check "what" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
diag() { echo "# $*"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

kvm_cleanup() {
    local f p
    for f in "$KT"/*/vms/*/qemu.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null) || continue
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    done
    for p in ${KVM_EXTRA_PIDS:-}; do kill -9 "$p" 2>/dev/null; done
    [ -n "${KEEP_KT:-}" ] || rm -rf "$KT"
}

kvm_setup() {
    [ "$(id -u)" = 0 ] || skip_all "needs root (QEMU, ACLs)"
    command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86 is not installed"
    command -v qemu-img >/dev/null || skip_all "qemu-utils is not installed"
    [ -x "$DRIVE" ] || skip_all "kvm-drive not built (plugin kvm disabled)"
    [ -x /bin/busybox ] || skip_all "busybox-static is not installed"
    timeout 900 "$VMSHIFT_SRCDIR/tests/guest/make-guest.sh" "$GUEST" >&2 ||
        { echo "1..1"; echo "not ok 1 - building the tiny guest"; exit 1; }
    KT=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-kvm.XXXXXX")
    trap kvm_cleanup EXIT
    trap 'exit 1' INT TERM
    mkdir -p "$KT/a/images" "$KT/b/images"
    cat > "$KT/kvm.conf" <<EOC
[backend kvm]
plugin=kvm
hosts=hostA=$KT/a, hostB=$KT/b
EOC
}

# define_vm HOSTDIR NAME APPEND [EXTRA-CONF]: writes vms/NAME/vm.conf
define_vm() {
    mkdir -p "$1/vms/$2"
    cat > "$1/vms/$2/vm.conf" <<EOC
[vm]
name=$2
memory-mib=${VM_MEM:-512}
vcpus=1
kernel=$GUEST/vmlinux
initrd=$GUEST/initramfs.cpio.gz
append=console=ttyS0 quiet panic=-1 $3
${4:-}
EOC
}

drive() { timeout "${DRIVE_TIMEOUT:-180}" "$DRIVE" --config "$KT/kvm.conf" "$@"; }

# wait_console HOSTDIR VM PATTERN [SECONDS]
wait_console() {
    local i
    for i in $(seq $((${4:-60} * 5))); do
        grep -q -- "$3" "$1/vms/$2/console.log" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# alive_on HOSTDIR VM: two new heartbeats appear on this console within
# 45 s, with no kernel BUG/panic and no lost guest write (a dirtying guest
# checks every page it rewrites: MEMCHECK, tests/guest/dirty.c), so the
# guest really runs there with its memory intact, not only QEMU. The guest
# beats every 0.5 s of its own time, but a TCG guest on two cores shared
# with a parallel `make -j2 check` can take many seconds of wall time per
# beat right after a switchover.
export GUEST_BROKEN="BUG:|Oops|Kernel panic|MEMCHECK bad"
alive_on() {
    local log="$1/vms/$2/console.log" n0 i
    [ -f "$log" ] || return 1
    n0=$(grep -c HEARTBEAT "$log")
    for i in $(seq 225); do
        if [ "$(grep -c HEARTBEAT "$log")" -gt $((n0 + 1)) ]; then
            ! grep -qE "$GUEST_BROKEN" "$log"
            return
        fi
        sleep 0.2
    done
    return 1
}

qemu_pid() { cat "$1/vms/$2/qemu.pid" 2>/dev/null; }
# a process that exists and is not a zombie (PID 1 here may not reap them)
pid_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]
}
running_on() { pid_alive "$(qemu_pid "$1" "$2")"; }
export -f qemu_pid pid_alive running_on alive_on wait_console
result() { grep "^$1=" | head -1 | cut -d= -f2-; }
