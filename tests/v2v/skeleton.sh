#!/bin/sh
# Moves between backends (issue 16) through the vmshift command, between two
# skeleton backends, checked from the skeleton's own view: its state files
# (its "hypervisor") and the bytes of its disk files with sha256sum, never
# from vmshift's report:
#  - a move copies every disk byte for byte (two disks, order kept), maps
#    the NIC's network, keeps the MAC, leaves the source off; --start starts
#    the copy; --delete-source removes the source VM and its files;
#  - a running VM is refused (check, --dry-run and migrate), nothing made;
#  - an import that fails, or writes a wrong byte (caught by verify), or a
#    destination disk read back wrong: the destination has nothing, the
#    source is unchanged;
#  - bulk: a wave to=skel2:delta with delete-source=true, then --reverse
#    moves each VM back to its own skel1 host, bytes unchanged;
#  - check/--dry-run exit non-zero on errors (a name taken at the
#    destination); unknown backend or host, a backend without the
#    operations, options that do not apply: one error line, exit non-zero.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2v.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }
# DESCRIPTION 'SHELL CONDITION'
cond() { if eval "$2"; then ok "$1"; else notok "$1" "$2"; fi; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ]; then
    echo "1..0 # SKIP needs the skeleton plugin"
    exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
: >"$T/etc/vmshift.conf"
cat >"$T/etc/backends.d/skel.conf" <<EOC
[backend skel1]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha;app2@alpha;app3@alpha;busy@alpha;bulk1@alpha;bulk2@beta
state-file=$T/s1.state

[backend skel2]
plugin=skeleton
hosts=gamma;delta
vms=other@gamma;app3@gamma
state-file=$T/s2.state
import-format=qcow2
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" --daemon no "$@"; }
S1=$T/s1.state
S2=$T/s2.state
D1=$T/s1.state.data
D2=$T/s2.state.data
# the skeleton's own view: KEY of [vm VM] in state file FILE
peer() { sed -n "/^\[vm $2\]/,/^\[/p" "$1" | sed -n "s/^$3=//p"; }
has_vm() { grep -q "^\[vm $2\]" "$1"; }
sum() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
# the guest-visible bytes of a destination disk (qcow2 at skel2)
rawsum() { qemu-img convert -O raw "$1" "$T/raw.tmp" && sum "$T/raw.tmp"; rm -f "$T/raw.tmp"; }
# a stopped VM of skel1 with disks (name, then sizes in KiB)
make_vm() {
    vm=$1; shift
    sed -i "/^\[vm $vm\]/,/^\[/s/^power=running/power=stopped/" "$S1"
    mkdir -p "$D1/srv/vms/$vm"
    ids=
    i=0
    for kib in "$@"; do
        head -c $((kib * 1024)) /dev/urandom >"$D1/srv/vms/$vm/disk$i.img"
        ids="${ids}disk$i;"
        i=$((i + 1))
    done
    printf '/^\\[vm %s\\]/a disks=%s\n' "$vm" "$ids" >"$T/sed"
    printf '/^\\[vm %s\\]/a mac-net0=52:54:00:00:00:%02x\n/^\\[vm %s\\]/a nics=net0;\n' \
        "$vm" "$i" "$vm" >>"$T/sed"
    sed -i -f "$T/sed" "$S1"
}

V vms >/dev/null 2>&1 # creates both state files
command -v qemu-img >/dev/null || { echo "1..0 # SKIP needs qemu-img (qemu-utils)"; exit 0; }

# ---- a move: bytes, order, network, MAC, the source off ----
make_vm web1 2048 1536
s0=$(sum "$D1/srv/vms/web1/disk0.img"); s1=$(sum "$D1/srv/vms/web1/disk1.img")
V migrate skel1:web1 --to skel2:delta --network net0=dmz >"$T/out" 2>"$T/err"
rc=$?
check "migrate skel1:web1 --to skel2:delta exits 0" [ $rc -eq 0 ]
check "skel2 has web1 on delta, stopped" [ "$(peer "$S2" web1 host)/$(peer "$S2" web1 power)" = delta/stopped ]
check "skel2 wrote web1's disks as qcow2"  [ "$(qemu-img info --output=json "$D2/srv/vms/web1/disk0.img" 2>/dev/null | grep -c '"format": "qcow2"')" = 1 ]
d0=$(rawsum "$D2/srv/vms/web1/disk0.img"); d1=$(rawsum "$D2/srv/vms/web1/disk1.img")
if [ -n "$s0" ] && [ "$s0" = "$d0" ] && [ "$s1" = "$d1" ]; then
    ok "both disks' guest bytes are identical on both sides (sha256sum), in their order"
else
    notok "disks identical" "src $s0 $s1" "dst $d0 $d1"
fi
check "the NIC is on the mapped network dmz, with its MAC"  [ "$(peer "$S2" web1 network-net0)/$(peer "$S2" web1 mac-net0)" = "dmz/52:54:00:00:00:02" ]
cond "the source VM stays, off, its disk unchanged" ' [ "$(peer "$S1" web1 power)" = stopped ] && [ "$(sum "$D1/srv/vms/web1/disk0.img")" = "$s0" ]'
check "the job's phases: validate export import verify acl finish"  grep -q "phase validate.*" "$T/err"
for p in export import verify acl finish; do grep -q "phase $p" "$T/err" || notok "phase $p shown" "$(cat "$T/err")"; done

# ---- --start and --delete-source ----
make_vm app1 1024
s0=$(sum "$D1/srv/vms/app1/disk0.img")
V migrate skel1:app1 --to skel2:gamma --start --delete-source >"$T/out" 2>"$T/err"
rc=$?
check "--start --delete-source exits 0" [ $rc -eq 0 ]
check "--start: the copy runs at skel2" [ "$(peer "$S2" app1 power)" = running ]
cond "--delete-source: skel1 has no app1, nor its disk file" '! has_vm "$S1" app1 && [ ! -e "$D1/srv/vms/app1/disk0.img" ]'
check "the copy's bytes are the source's" [ "$(rawsum "$D2/srv/vms/app1/disk0.img")" = "$s0" ]

# ---- a running VM is refused ----
mkdir -p "$D1/srv/vms/busy" && head -c 65536 /dev/urandom >"$D1/srv/vms/busy/disk0.img"
V check skel1:busy --to skel2:delta >"$T/out" 2>&1
rc=$?
cond "check of a running VM: exit 1, finding 'running'" '[ $rc -eq 1 ] && grep -q "running" "$T/out"'
V migrate skel1:busy --to skel2:delta --dry-run >"$T/out" 2>&1
check "--dry-run of a running VM exits non-zero" [ $? -ne 0 ]
V migrate skel1:busy --to skel2:delta >"$T/out" 2>"$T/err"
check "migrate of a running VM fails" [ $? -ne 0 ]
check "... and skel2 has no 'busy'" sh -c "! grep -q '^\[vm busy\]' '$S2'"

# ---- import failures: nothing at the destination, the source unchanged ----
make_vm app2 1024 512
s0=$(sum "$D1/srv/vms/app2/disk0.img")
for fault in error@import corrupt@import corrupt@open-disk; do
    printf '[hypervisor]\nfault=%s\n' "$fault" >>"$S2"
    V migrate skel1:app2 --to skel2:delta >"$T/out" 2>"$T/err"
    rc=$?
    sed -i '/^fault=/d' "$S2"
    [ "$fault" = error@import ] || cond "fault $fault: the wrong byte is caught by verify" 'grep -q "differs at the destination" "$T/err"'
    cond "fault $fault at skel2: migrate fails with one line naming the job" '[ $rc -eq 1 ] && [ "$(grep -c "^vmshift: job" "$T/err")" = 1 ]'
    if ! has_vm "$S2" app2 && [ -z "$(ls -A "$D2/srv/vms/app2" 2>/dev/null)" ]; then
        ok "fault $fault: skel2 has no app2 and no file of it"
    else
        notok "fault $fault: skel2 clean" "$(ls -la "$D2/srv/vms/app2" 2>&1)"
    fi
    cond "fault $fault: the source app2 is unchanged, off" ' [ "$(sum "$D1/srv/vms/app2/disk0.img")" = "$s0" ] && [ "$(peer "$S1" app2 power)" = stopped ]'
done

# ---- check / --dry-run: errors, exit codes ----
make_vm app3 256
V check skel1:app3 --to skel2:delta >"$T/out" 2>&1
rc=$?
cond "check: a VM named app3 exists at skel2: \"name-taken\" error, exit 1" '[ $rc -eq 1 ] && grep -q "name-taken" "$T/out"'
V migrate skel1:app3 --to skel2:delta --dry-run >"$T/out" 2>&1
rc=$?
cond "--dry-run with an error exits 1 and says it would not run" ' [ $rc -eq 1 ] && grep -q "would not run" "$T/out"'
check "... and changes nothing" [ "$(peer "$S2" app3 host)" = gamma ]
V migrate skel1:db1 --to skel2:delta --dry-run >"$T/out" 2>&1
check "--dry-run shows the phases of a move between backends" grep -q "export, import, verify" "$T/out"

# ---- bad input: one line, non-zero ----
one_line() { # DESCRIPTION WORDS -- ARGS
    d=$1; w=$2; shift 2
    V "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "$w" "$T/err"; then ok "$d"
    else notok "$d" "rc=$rc" "$(cat "$T/err")"; fi
}
one_line "unknown host at the other backend" "nope" migrate skel1:app3 --to skel2:nope
one_line "unknown backend" "nobackend" migrate skel1:app3 --to nobackend:delta
one_line "--live does not apply" "--live" migrate skel1:app3 --to skel2:gamma --live
one_line "--delete-source needs another backend" "--delete-source" migrate skel1:app3 --to skel1:beta --delete-source
one_line "--convert-guest: refused (virt-v2v missing, or not a KVM destination)" "virt-v2v" \
    migrate skel1:app3 --to skel2:gamma --convert-guest

# ---- bulk: a wave between backends and its reverse ----
make_vm bulk1 512
make_vm bulk2 768
b1=$(sum "$D1/srv/vms/bulk1/disk0.img"); b2=$(sum "$D1/srv/vms/bulk2/disk0.img")
cat >"$T/plan" <<EOP
[wave 1]
vms=skel1:bulk1;skel1:bulk2
to=skel2:delta
delete-source=true
EOP
V bulk "$T/plan" --dry-run >"$T/out" 2>"$T/err"
rc=$?
cond "bulk --dry-run of the wave: exit 0, the commands of moves between backends, nothing moved" \
    '[ $rc -eq 0 ] && grep -q "migrate skel1:bulk1 --to skel2:delta --delete-source" "$T/out" && ! has_vm "$S2" bulk1'
V bulk "$T/plan" >"$T/out" 2>"$T/err"
rc=$?
cond "bulk: a wave to=skel2:delta exits 0" '[ $rc -eq 0 ]'
cond "... both VMs only at skel2 on delta, their bytes the source's" \
    '[ "$(peer "$S2" bulk1 host)/$(peer "$S2" bulk2 host)" = delta/delta ] && ! has_vm "$S1" bulk1 && ! has_vm "$S1" bulk2 && [ "$(rawsum "$D2/srv/vms/bulk1/disk0.img")" = "$b1" ] && [ "$(rawsum "$D2/srv/vms/bulk2/disk0.img")" = "$b2" ]'
V bulk "$T/plan" --reverse >"$T/out" 2>"$T/err"
rc=$?
cond "bulk --reverse of the wave exits 0" '[ $rc -eq 0 ]'
cond "... each VM back at skel1 on its own host (alpha, beta), nothing at skel2, bytes unchanged" \
    '[ "$(peer "$S1" bulk1 host)/$(peer "$S1" bulk2 host)" = alpha/beta ] && ! has_vm "$S2" bulk1 && ! has_vm "$S2" bulk2 && [ "$(sum "$D1/srv/vms/bulk1/disk0.img")" = "$b1" ] && [ "$(sum "$D1/srv/vms/bulk2/disk0.img")" = "$b2" ]'

echo "1..$n"
