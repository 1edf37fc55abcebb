#!/bin/bash
# Finding codes on the kvm plugin over libvirt (transport=libvirt), through
# the vmshift command (TAP), against two real libvirt hosts on this machine
# (tests/kvm/lvhosts.sh, started once): each scenario sets the peer up
# through virsh (domains, networks, storage pools, a tmpfs in host B's own
# mount namespace), runs `vmshift --json check` and `vmshift migrate
# --dry-run`, and asserts the code, its severity, that it appears exactly
# once, and both exit statuses. One running guest and a few defined (shut
# off) domains on lvA serve every scenario; nothing moves, which libvirt
# confirms at the end. tests/rules/codes.tsv lists which codes this
# transport can raise (and why not the others).
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
command -v python3 >/dev/null || skip_all "python3 is not installed"
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
mkdir -p "$LV" "$KT/state"
trap 'timeout 60 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" down "$LV"; kvm_cleanup' EXIT
timeout 120 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" up "$LV" >"$KT/lvhosts.out" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "$(cat "$KT/lvhosts.out")"
[ $rc = 0 ] || { echo "not ok 1 - two libvirt hosts start: $(tr '\n' ' ' <"$KT/lvhosts.out")"; echo "1..1"; exit 1; }
A="qemu+unix:///system?socket=$LV/A/run/libvirt-sock"
B="qemu+unix:///system?socket=$LV/B/run/libvirt-sock"
vA() { timeout 60 virsh -q -c "$A" "$@"; }
vB() { timeout 60 virsh -q -c "$B" "$@"; }
in_B() { timeout 30 nsenter -t "$(cat "$LV/B/libvirtd.pid")" -m -- "$@"; }
# backend lv: both hosts; backend lv2: host B again under another backend
# (only for rate's other-backend: every VM lives on lvA)
cat >"$KT/vmshift.conf" <<EOC
[vmshift]
state-dir=$KT/state

[backend lv]
plugin=kvm
transport=libvirt
hosts=lvA=$A, lvB=$B
migration-uris=lvA=qemu+tcp://198.51.100.1/system, lvB=qemu+tcp://198.51.100.2/system

[backend lv2]
plugin=kvm
transport=libvirt
hosts=lvB2=$B

[group all]
hosts=lv:lvA, lv:lvB, lv:lvZ, lv2:lvB2
EOC
V() { timeout "${V_TIMEOUT:-120}" "$VMSHIFT" --config "$KT/vmshift.conf" \
          --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }

# the network lan on both hosts (defined: listed, never started)
printf "<network><name>lan</name><forward mode='bridge'/><bridge name='brlan'/></network>" >"$KT/lan.xml"
vA net-define "$KT/lan.xml" >/dev/null && vB net-define "$KT/lan.xml" >/dev/null
# storage pools of host B: small (its 4 MiB tmpfs), idle (defined, not
# started: its free space unknown)
mkdir -p "$LV/B/lib/idle" "$LV/B/lib/tiny"
vB pool-define-as small dir --target /var/lib/libvirt/small >/dev/null && vB pool-start small >/dev/null
vB pool-define-as idle dir --target /var/lib/libvirt/idle >/dev/null

img="$KT/img"; con="$KT/con"; mkdir -p "$img" "$con"
qemu-img create -q -f qcow2 "$img/base.qcow2" 64M
qemu-img create -q -f qcow2 -b "$img/base.qcow2" -F qcow2 "$img/top.qcow2"
qemu-io -f qcow2 -c "write -P 0x44 0 8M" "$img/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 "$img/cold.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x55 0 8M" "$img/cold.qcow2" >/dev/null
# domain NAME MEMORY-MIB DEVICES: a domain definition
domain() {
    cat >"$KT/$1.xml" <<EOX
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>$2</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 disk=1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    $3
    <serial type='file'><source path='$con/$1.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
    vA define "$KT/$1.xml" >/dev/null
}
qdisk() { echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='$1'/><target dev='vda' bus='virtio'/></disk>"; }
# lvweb: running, a qcow2 disk with a backing file (8 MiB written)
domain lvweb 256 "$(qdisk "$img/top.qcow2")" && vA start lvweb >/dev/null
# lvcold: shut off, a NIC on lan, a qcow2 disk (8 MiB written)
domain lvcold 256 "$(qdisk "$img/cold.qcow2")
    <interface type='network'><mac address='52:54:00:aa:bb:07'/><source network='lan'/><model type='virtio'/></interface>"
# lvbig: shut off, more memory than this machine has
domain lvbig $((4 * 1024 * 1024)) ""
# lvlost: shut off, its disk gone (libvirt cannot tell its size)
domain lvlost 256 "$(qdisk "$img/gone.qcow2")"
for i in $(seq 300); do grep -q "disk=ok" "$con/lvweb.log" 2>/dev/null && break; sleep 0.2; done
check "lvweb boots on libvirt host lvA" grep -q "disk=ok" "$con/lvweb.log"

# count JSON CODE: how often CODE is among the findings, and its severities
count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1])); c = [f for f in j["findings"] if f["code"] == sys.argv[2]]
print(len(c), ",".join(sorted(set(f["severity"] for f in c))))' "$1" "$2" 2>/dev/null
}
# scenario NAME CODE SEVERITY RC ARGS...: check raises CODE once with
# SEVERITY and exits RC; migrate --dry-run exits RC too
scenario() {
    local name=$1 code=$2 sev=$3 want=$4 rc drc got
    shift 4
    V --json check "$@" >"$KT/out" 2>"$KT/err"; rc=$?
    V migrate "$@" --dry-run >"$KT/dry" 2>&1; drc=$?
    got=$(count "$KT/out" "$code")
    if [ "$got" = "1 $sev" ] && [ "$rc" -eq "$want" ] && [ "$drc" -eq "$want" ]; then
        ok "$name: $code ($sev) once, check and --dry-run exit $want"
    else
        not_ok "$name: $code (got '$got', check rc $rc, dry-run rc $drc; want '1 $sev', rc $want)"
        sed 's/^/# /' "$KT/out" "$KT/err" "$KT/dry" | head -30
    fi
}
# clean NAME ARGS...: check finds nothing and exits 0
clean() {
    local name=$1 rc
    shift
    V --json check "$@" >"$KT/out" 2>"$KT/err"; rc=$?
    if python3 -c 'import sys, json; assert json.load(open(sys.argv[1]))["findings"] == [] and sys.argv[2] == "0"' \
        "$KT/out" "$rc" 2>/dev/null; then
        ok "$name: no findings, exit 0"
    else
        not_ok "$name: findings or rc $rc"
        sed 's/^/# /' "$KT/out" "$KT/err" | head -30
    fi
}

clean "live move lvweb -> lvB" lvweb --to lvB
clean "cold move lvcold -> lvB (lan on both hosts)" lvcold --to lvB --cold
scenario "VM already there" same-host error 1 lvweb --to lvA
scenario "live move of a shut-off domain" not-running error 1 lvcold --to lvB --live
scenario "cold move of a running domain" running error 1 lvweb --to lvB --cold
scenario "more memory than lvB has free (--start)" no-memory error 1 lvbig --to lvB --cold --start
scenario "mapping to a network lvB lacks" network-missing error 1 lvcold --to lvB --cold --network net0=dmz
vB net-undefine lan >/dev/null
scenario "the domain's network is not on lvB" network-missing error 1 lvcold --to lvB --cold
vB net-define "$KT/lan.xml" >/dev/null
scenario "no such NIC" nic-not-found error 1 lvcold --to lvB --cold --network net9=lan
scenario "no such disk" disk-not-found error 1 lvcold --to lvB --cold --disk-path vdz=/var/lib/libvirt/small
scenario "--transfer san on a local file" storage-not-shared error 1 lvweb --to lvB --transfer san
scenario "an --option the plugin does not know" check-failed error 1 lvweb --to lvB --option nosuch=1
scenario "8 MiB disk into lvB's 4 MiB pool" no-space error 1 lvcold --to lvB --cold --path /var/lib/libvirt/small
scenario "a pool that is not started" space-unknown warning 1 lvcold --to lvB --cold --path /var/lib/libvirt/idle
scenario "disk gone: size unknown, not 0" disk-size-unknown warning 1 lvlost --to lvB --cold --path /var/lib/libvirt/small
# a pool on a tmpfs of lvB's own 2.5 % larger than what the disk occupies
# (libvirt's allocation): less than the 5 % the rule wants left
need=$(vA domblkinfo lvcold vda | awk '/^Allocation:/ { print $2 }')
size=$(( (need + need / 40 + 4095) / 4096 * 4096 ))
in_B mount -t tmpfs -o size="$size" lvtiny /var/lib/libvirt/tiny &&
    vB pool-define-as tiny dir --target /var/lib/libvirt/tiny >/dev/null && vB pool-start tiny >/dev/null
scenario "a pool 2.5 % larger than the disk" low-space warning 1 lvcold --to lvB --cold --path /var/lib/libvirt/tiny
V check lvcold --to lvB --cold --path /var/lib/libvirt/tiny --force >/dev/null 2>&1
check "--force accepts the low-space warning (exit 0)" test $? = 0

# a throttled active block-commit (libvirt's own block job) is a merge
vA blockcommit lvweb vda --active --bandwidth 1 >/dev/null 2>&1
check "libvirt shows the block-commit job" bash -c 'timeout 30 virsh -q -c "$0" blockjob lvweb vda 2>&1 | grep -qi commit' "$A"
scenario "a block-commit running" merge-in-progress error 1 lvweb --to lvB
vA blockjob lvweb vda --abort >/dev/null 2>&1

# rate: a member of another backend is ruled out by "other-backend", an
# unknown one by host-not-found; every host check refuses gets 0 stars and
# the same code, the others check passes
V --json rate lvweb --group all >"$KT/rate" 2>"$KT/err"
check "rate: lvB2 (backend lv2) 0 stars, reason other-backend; lvZ host-not-found" \
    python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["lvB2"]["stars"] == 0 and r["lvB2"]["reason_code"] == "other-backend", r["lvB2"]
assert r["lvZ"]["stars"] == 0 and r["lvZ"]["reason_code"] == "host-not-found", r["lvZ"]' "$KT/rate"
agree=yes
for h in lvA lvB; do
    line=$(python3 -c 'import sys, json
r = [x for x in json.load(open(sys.argv[1]))["ratings"] if x["host"] == sys.argv[2]][0]
print("yes" if r["eligible"] else "no", r["stars"], r["reason_code"] or "-")' "$KT/rate" "$h")
    set -- $line
    V --json check lvweb --to "$h" --force >"$KT/chk" 2>&1; rc=$?
    if [ "$1" = yes ] && [ $rc -eq 0 ]; then :
    elif [ "$1" = no ] && [ $rc -ne 0 ] && [ "$2" = 0 ] && [ "$(count "$KT/chk" "$3")" = "1 error" ]; then :
    else agree=no; diag "$h: rate '$line', check rc $rc"; sed 's/^/# /' "$KT/chk" | head -20; fi
done
check "rate and check agree on lvA and lvB (ruled out = refused with the same code)" test $agree = yes

# nothing moved: libvirt's own view
check "nothing moved: lvweb runs on lvA, lvB has no domain, its pools no file" \
    bash -c '[ "$(timeout 30 virsh -q -c "$0" domstate lvweb)" = running ] &&
             [ -z "$(timeout 30 virsh -q -c "$1" list --all --name)" ] &&
             [ -z "$(ls -A "$2/lib/idle")" ] && [ -z "$(timeout 30 nsenter -t "$(cat "$2/libvirtd.pid")" -m -- find /var/lib/libvirt/small /var/lib/libvirt/tiny -mindepth 1)" ]' \
    "$A" "$B" "$LV/B"
echo "1..$TAP_N"
exit $TAP_FAILED
