#!/bin/bash
# Finding codes on the kvm plugin (qmp transport), through the vmshift
# command (TAP): each scenario sets the peer up (host.conf, networks.conf,
# VM definitions, a small tmpfs in a private mount namespace), runs
# `vmshift --json check` and `vmshift migrate --dry-run`, and asserts the
# code, its severity, that it appears exactly once, and both exit statuses.
# One running guest and a few defined (stopped) VMs serve every scenario;
# nothing moves, which the run directories confirm at the end.
# tests/rules/codes.tsv lists which codes this backend can raise.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
command -v python3 >/dev/null || skip_all "python3 is not installed"
kvm_setup
mkdir -p "$KT/c/images" "$KT/state" "$KT/b/tiny" "$KT/b/small"
printf '[network lan]\nnetdev=user\n' >"$KT/a/networks.conf"
cp "$KT/a/networks.conf" "$KT/b/networks.conf"
printf '[host]\nqemu=/nonexistent/qemu-system-x86_64\n' >"$KT/c/host.conf"
# hostF: an older QEMU installed (a real QEMU that says it is 2.12);
# hostG: runs its guests with KVM, hostA with TCG
mkdir -p "$KT/f" "$KT/g"
cat >"$KT/f/qemu-2.12" <<'EOQ'
#!/bin/sh
[ "$1" = --version ] && { echo "QEMU emulator version 2.12.0"; exit 0; }
exec qemu-system-x86_64 "$@"
EOQ
chmod 755 "$KT/f/qemu-2.12"
printf '[host]\nqemu=%s\n' "$KT/f/qemu-2.12" >"$KT/f/host.conf"
printf '[host]\naccel=kvm\n' >"$KT/g/host.conf"
cp "$KT/a/networks.conf" "$KT/f/networks.conf"
cp "$KT/a/networks.conf" "$KT/g/networks.conf"
cat >"$KT/vmshift.conf" <<EOC
[vmshift]
state-dir=$KT/state

[backend kvm]
plugin=kvm
hosts=hostA=$KT/a, hostB=$KT/b, hostC=$KT/c, hostD=ssh://nobody@127.0.0.1:1$KT/d, hostF=$KT/f, hostG=$KT/g
EOC
V() { timeout "${V_TIMEOUT:-120}" "$VMSHIFT" --config "$KT/vmshift.conf" \
          --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }

# web1: running, a NIC on lan, a 64 MiB qcow2 disk (allocated: 8 MiB)
qemu-img create -q -f qcow2 "$KT/a/images/web1.qcow2" 64M
qemu-io -c "write 0 8M" "$KT/a/images/web1.qcow2" >/dev/null
VM_MEM=256 define_vm "$KT/a" web1 "" "[nic net0]
network=lan
[disk vda]
path=$KT/a/images/web1.qcow2
format=qcow2"
timeout 120 "$DRIVE" start "$KT/a" web1 >/dev/null
# cold1: stopped, asks for more memory than any host has
VM_MEM=$((64 * 1024 * 1024)) define_vm "$KT/a" cold1 ""
# lost1: stopped, its disk gone (size unknown, nobody reaches it), a CPU
# model no QEMU knows
define_vm "$KT/a" lost1 "" "[disk vda]
path=$KT/a/images/gone.qcow2
format=qcow2"
sed -i 's/^\[vm\]$/[vm]\ncpu=NoSuchCpu-v9/' "$KT/a/vms/lost1/vm.conf"
# held1: stopped, its qcow2 disk write-locked by another process (as
# qemu-img commit holds it)
qemu-img create -q -f qcow2 "$KT/a/images/held1.qcow2" 16M
define_vm "$KT/a" held1 "" "[disk vda]
path=$KT/a/images/held1.qcow2
format=qcow2"
# pass1: stopped, CPU model 'host' (the CPU of whichever host runs it)
define_vm "$KT/a" pass1 ""
sed -i 's/^\[vm\]$/[vm]\ncpu=host/' "$KT/a/vms/pass1/vm.conf"
check "web1 boots on hostA" wait_console "$KT/a" web1 HEARTBEAT 90

# count JSON CODE: how often CODE is among the findings, and its severities
count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1])); c = [f for f in j["findings"] if f["code"] == sys.argv[2]]
print(len(c), ",".join(sorted(set(f["severity"] for f in c))))' "$1" "$2" 2>/dev/null
}
# scenario NAME CODE SEVERITY RC ARGS...: check raises CODE once with
# SEVERITY and exits RC; migrate --dry-run exits RC too. $PRE, when set,
# runs the commands (a shell snippet taking "$@" as the vmshift command).
scenario() {
    local name=$1 code=$2 sev=$3 want=$4 rc drc got
    shift 4
    if [ -n "${PRE:-}" ]; then
        unshare -m bash -c "$PRE"' && exec "$@"' _ "$VMSHIFT" --config "$KT/vmshift.conf" \
            --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" --json check "$@" \
            >"$KT/out" 2>"$KT/err"; rc=$?
        unshare -m bash -c "$PRE"' && exec "$@"' _ "$VMSHIFT" --config "$KT/vmshift.conf" \
            --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" migrate "$@" --dry-run \
            >"$KT/dry" 2>&1; drc=$?
    else
        V --json check "$@" >"$KT/out" 2>"$KT/err"; rc=$?
        V migrate "$@" --dry-run >"$KT/dry" 2>&1; drc=$?
    fi
    got=$(count "$KT/out" "$code")
    if [ "$got" = "1 $sev" ] && [ "$rc" -eq "$want" ] && [ "$drc" -eq "$want" ]; then
        ok "$name: $code ($sev) once, check and --dry-run exit $want"
    else
        not_ok "$name: $code (got '$got', check rc $rc, dry-run rc $drc; want '1 $sev', rc $want)"
        sed 's/^/# /' "$KT/out" "$KT/err" | head -30
    fi
}

V --json check web1 --to hostB >"$KT/out" 2>"$KT/err"; rc=$?
check "clean live move web1 -> hostB: no findings, exit 0" \
    python3 -c 'import sys, json; assert json.load(open(sys.argv[1]))["findings"] == [] and sys.argv[2] == "0"' "$KT/out" "$rc"
V --json check web1 --to hostB --path "$KT/b/small" >"$KT/out" 2>"$KT/err"; rc=$?
check "a --path outside every images dir: its filesystem's free space is known (no space-unknown), exit 0" \
    python3 -c 'import sys, json; assert json.load(open(sys.argv[1]))["findings"] == [] and sys.argv[2] == "0"' "$KT/out" "$rc"

scenario "VM already there" same-host error 1 web1 --to hostA
scenario "host behind an unreachable ssh" host-unreachable error 1 web1 --to hostD
scenario "QEMU missing on the host" hypervisor-missing error 1 web1 --to hostC
scenario "QEMU missing: the host's status" host-limited warning 1 web1 --to hostC
scenario "live move of a stopped VM" not-running error 1 cold1 --to hostB --live
scenario "cold move of a running VM" running error 1 web1 --to hostB --cold
scenario "not enough memory to start it there" no-memory error 1 cold1 --to hostB --cold --start
scenario "mapping to a network the host lacks" network-missing error 1 web1 --to hostB --network net0=dmz
rm "$KT/b/networks.conf"
scenario "the VM's network missing on the host" network-missing error 1 web1 --to hostB
cp "$KT/a/networks.conf" "$KT/b/networks.conf"
scenario "no such NIC" nic-not-found error 1 web1 --to hostB --network net9=lan
scenario "no such disk" disk-not-found error 1 web1 --to hostB --disk-path vdz="$KT/b/small"
scenario "--transfer san on local disks" storage-not-shared error 1 web1 --to hostB --transfer san
scenario "--transfer san with --path" transfer-conflict error 1 web1 --to hostB --transfer san --path "$KT/b/small"
scenario "disk gone: size unknown, not 0" disk-size-unknown warning 1 lost1 --to hostB --cold --path "$KT/b/small"
scenario "disk gone: the destination does not reach it" disk-unreachable error 1 lost1 --to hostB --cold
scenario "CPU model the destination's QEMU lacks" cpu-incompatible error 1 lost1 --to hostB --cold
# web1's QEMU stopped (SIGSTOP): its QMP does not answer, so whether a
# block job merges cannot be read (a backend kvmq on the same hosts with a
# short QMP timeout, for the time of this scenario)
cp "$KT/vmshift.conf" "$KT/vmshift.conf.orig"
printf '\n[backend kvmq]\nplugin=kvm\nhosts=hostA=%s, hostB=%s\nqmp-timeout-ms=1500\n' \
    "$KT/a" "$KT/b" >>"$KT/vmshift.conf"
kill -STOP "$(qemu_pid "$KT/a" web1)"
scenario "the running VM's QMP does not answer" merge-unknown warning 1 kvmq:web1 --to hostB
kill -CONT "$(qemu_pid "$KT/a" web1)"
mv "$KT/vmshift.conf.orig" "$KT/vmshift.conf"
PRE="mount --bind /dev/null /proc/meminfo" \
    scenario "the destination's memory unreadable (an empty /proc/meminfo)" memory-unknown warning 1 cold1 --to hostB --cold --start
scenario "the destination's QEMU is older" hypervisor-older warning 1 web1 --to hostF
scenario "CPU model 'host' from a TCG host to a KVM host" cpu-passthrough warning 1 pass1 --to hostG --cold
scenario "an --option the plugin does not know" check-failed error 1 web1 --to hostB --option nosuch=1
qemu-io -f qcow2 -c "sleep 600000" "$KT/a/images/held1.qcow2" >/dev/null 2>&1 &
held=$!
KVM_EXTRA_PIDS="${KVM_EXTRA_PIDS:-} $held"
for i in $(seq 50); do qemu-img info -U "$KT/a/images/held1.qcow2" >/dev/null 2>&1 &&
    ! qemu-img info "$KT/a/images/held1.qcow2" >/dev/null 2>&1 && break; sleep 0.1; done
scenario "a stopped VM's disk locked (a merge running)" merge-in-progress error 1 held1 --to hostB --cold
kill "$held" 2>/dev/null; wait "$held" 2>/dev/null
PRE="mount -t tmpfs -o size=1m tmpfs '$KT/b/tiny'" \
    scenario "1 MiB filesystem for an 8 MiB disk" no-space error 1 web1 --to hostB --path "$KT/b/tiny"
# what the disk occupies (qemu-img's actual size), plus 2.5 %: less than the
# 5 % of the filesystem the rule wants left
need=$(qemu-img info -U --output=json "$KT/a/images/web1.qcow2" | python3 -c 'import sys, json; print(json.load(sys.stdin)["actual-size"])')
size=$(( (need + need / 40 + 4095) / 4096 * 4096 ))
PRE="mount -t tmpfs -o size=$size tmpfs '$KT/b/tiny'" \
    scenario "a filesystem 2.5 % larger than the disk" low-space warning 1 web1 --to hostB --path "$KT/b/tiny"

# rate: a group member the backend does not know is ruled out by
# host-not-found, one of another backend (kvm2) by other-backend (check refuses an unknown --to before any rule); every
# host check refuses gets 0 stars and the same code, the others check passes
mkdir -p "$KT/e"
cat >>"$KT/vmshift.conf" <<EOC

[backend kvm2]
plugin=kvm
hosts=hostE=$KT/e

[group all]
hosts=kvm:hostA, kvm:hostB, kvm:hostC, kvm:hostD, kvm:hostZ, kvm2:hostE
EOC
V --json rate web1 --group all >"$KT/rate" 2>"$KT/err"
check "rate: hostZ (not a host of the backend) 0 stars, reason host-not-found; hostE (backend kvm2) other-backend" \
    python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["hostZ"]["stars"] == 0 and r["hostZ"]["reason_code"] == "host-not-found", r["hostZ"]
assert r["hostE"]["stars"] == 0 and r["hostE"]["reason_code"] == "other-backend", r["hostE"]' "$KT/rate"
agree=yes
for h in hostA hostB hostC hostD; do
    line=$(python3 -c 'import sys, json
r = [x for x in json.load(open(sys.argv[1]))["ratings"] if x["host"] == sys.argv[2]][0]
print("yes" if r["eligible"] else "no", r["stars"], r["reason_code"] or "-")' "$KT/rate" "$h")
    set -- $line
    V --json check web1 --to "$h" --force >"$KT/chk" 2>&1; rc=$?
    if [ "$1" = yes ] && [ $rc -eq 0 ]; then :
    elif [ "$1" = no ] && [ $rc -ne 0 ] && [ "$2" = 0 ] && [ "$(count "$KT/chk" "$3")" = "1 error" ]; then :
    else agree=no; diag "$h: rate '$line', check rc $rc"; sed 's/^/# /' "$KT/chk" | head -20; fi
done
check "rate and check agree on hostA-hostD (ruled out = refused with the same code)" test $agree = yes

# nothing moved: the peer's own view (run directories, the guest's QEMU)
check "nothing moved: web1 still runs on hostA, no VM or disk on hostB" \
    bash -c "running_on '$KT/a' web1 && test -z \"\$(find '$KT/b/vms' '$KT/b/tiny' '$KT/b/small' -mindepth 1 2>/dev/null)\""
echo "1..$TAP_N"
exit $TAP_FAILED
