#!/bin/sh
# Moves between backends with ESX on either side (issue 16), through
# `vmshift migrate VM --to BACKEND:HOST` and `vmshift check ... --to`,
# between the skeleton plugin (a vendor's plugin on real disk files) and
# the esx plugin against the vSphere simulator (tests/vcsim/vcsim-launcher).
# Results come from each peer's own view, never from vmshift's report: the
# simulator's (tests/vcsim/vcsim-check: the defined VM's firmware, devices,
# MACs, networks, power; the datastore's directory: the uploaded flat files'
# sha256), the skeleton's (its state file and its disk files' sha256):
#  - check --to esx:HOST lists every change ESX forces as a warning (bus
#    remapped, guest drivers, MAC not kept, firmware unknown) and errors
#    (name taken, network missing, no space) with exit 1;
#  - skeleton -> esx with --network and --start: the VM defined as the
#    source was (UEFI, buses, MAC, mapped network), its disks' bytes on the
#    datastore, powered on; the source left off, unchanged;
#  - skeleton -> esx -> skeleton with --delete-source both ways: the same
#    bytes at the end, the sources gone; a simulator-made VM to the skeleton;
#  - a powered-on ESX VM is refused; an import that fails after the upload
#    (CreateVM_Task, or ReconfigVM_Task once the VM is defined) leaves no VM
#    and no file on the datastore, the source unchanged;
#  - vmshift killed during the import: `job repair` removes the partial VM
#    and its files from the job's saved data.
# TAP output; the plan comes last.

B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
PLUGIN=$B/plugins/esx/.libs/esx.so
SKEL=$B/tests/skeleton/.libs/skeleton.so
VMSHIFT=$B/host/vmshift
if [ ! -x "$LAUNCHER" ] || [ ! -x "$CHECKER" ]; then
    echo "1..0 # SKIP vSphere simulator not built (needs golang-go and golang-github-vmware-govmomi-dev)"
    exit 0
fi
for p in "launcher:$LAUNCHER" "check:$CHECKER"; do
    want=$(sh "$S/tests/vcsim/source-hash" "$S/tests/vcsim/${p%%:*}")
    have=$("${p#*:}" -source-hash 2>/dev/null)
    if [ -z "$want" ] || [ "$want" != "$have" ]; then
        echo "Bail out! ${p#*:} was built from other sources than $S/tests/vcsim/${p%%:*}"
        exit 1
    fi
done
if [ ! -f "$PLUGIN" ] || [ ! -f "$SKEL" ] || [ ! -x "$VMSHIFT" ]; then
    echo "1..0 # SKIP ESX plugin, skeleton plugin or vmshift not built"
    exit 0
fi
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2v-esx.XXXXXX")
chmod 755 "$T"
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    [ -n "${KEEP_T:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
show() { head -n 20 "$T/out" "$T/err" 2>/dev/null | sed 's/^/# /'; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; show; fi; }
# DESCRIPTION 'SHELL CONDITION'
cond() { if eval "$2"; then ok "$1"; else nok "$1"; echo "# $2"; show; fi; }

: >"$T/sim.out"
"$LAUNCHER" -ca-file "$T/ca.pem" -credentials "$T/creds" -task-step-ms 20 \
    >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
i=0
while [ "$(wc -l <"$T/sim.out")" -lt 2 ] && [ $i -lt 600 ]; do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
URL=$(sed -n 1p "$T/sim.out") CTL=$(sed -n 2p "$T/sim.out")
if [ -z "$CTL" ]; then
    echo "Bail out! the simulator did not start"
    sed 's/^/# /' "$T/sim.err"
    exit 1
fi

# ---- vmshift with two backends: esx (the simulator) and skel --------------
mkdir -p "$T/plugins" "$T/state"
chmod 755 "$T/plugins"
cp "$PLUGIN" "$SKEL" "$T/plugins/" && chmod 755 "$T/plugins/"*.so
SST=$T/skel.state
SD=$T/skel.state.data
cat >"$T/vmshift.conf" <<EOC
[vmshift]
state-dir=$T/state

[backend esx]
plugin=esx
url=$URL
credentials=$T/creds
ca-file=$T/ca.pem

[backend skel]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;bad1@alpha;big1@alpha;crash1@alpha;DC0_C0_RP0_VM0@alpha
state-file=$SST
EOC
V() { timeout 300 "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" --daemon no "$@"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" "$@"; }
ctl() { timeout 10 curl -sf "$CTL/ctl/$1" >/dev/null || echo "# control call $1 failed"; }
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
zeros() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
DS0=$(sim datastore LocalDS_0 | sed -n 's/^url=//p')
DS1=$(sim datastore LocalDS_1 | sed -n 's/^url=//p')
# the skeleton's own view: KEY of [vm VM]
peer() { sed -n "/^\[vm $1\]/,/^\[/p" "$SST" | sed -n "s/^$2=//p"; }
has_vm() { grep -q "^\[vm $1\]" "$SST"; }
# a stopped skeleton VM: NAME FIRMWARE(-: none) MAC BUS-OF-disk1 SIZES-KiB...
make_vm() {
    vm=$1 fw=$2 mac=$3 bus1=$4; shift 4
    sed -i "/^\[vm $vm\]/,/^\[/s/^power=running/power=stopped/" "$SST"
    mkdir -p "$SD/srv/vms/$vm"
    ids= i=0
    for kib in "$@"; do
        head -c $((kib * 1024)) /dev/urandom >"$SD/srv/vms/$vm/disk$i.img"
        ids="${ids}disk$i;" i=$((i + 1))
    done
    {
        printf '/^\\[vm %s\\]/a disks=%s\n' "$vm" "$ids"
        printf '/^\\[vm %s\\]/a nics=net0;\n/^\\[vm %s\\]/a mac-net0=%s\n' "$vm" "$vm" "$mac"
        printf '/^\\[vm %s\\]/a bus-disk1=%s\n' "$vm" "$bus1"
        [ "$fw" = - ] || printf '/^\\[vm %s\\]/a firmware=%s\n' "$vm" "$fw"
    } >"$T/sed"
    sed -i -f "$T/sed" "$SST"
}
# CODE SEVERITY: how often `vmshift --json check`'s output in $T/out has it
count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1]))
print(len([f for f in j["findings"] if f["code"] == sys.argv[2] and f["severity"] == sys.argv[3]]))' \
        "$T/out" "$1" "$2" 2>/dev/null
}
found() { [ "$(count "$1" "$2")" -ge 1 ] 2>/dev/null; }
errors() { python3 -c 'import sys, json; print(json.load(open(sys.argv[1]))["errors"])' "$T/out" 2>/dev/null; }
V vms >/dev/null 2>&1 # the skeleton's state file

# ---- check --to esx:HOST: the forced changes as warnings, errors ---------
MAC=52:54:00:aa:bb:01
make_vm web1 uefi "$MAC" sata 3072 1024
make_vm db1 - 00:50:56:9a:00:01 scsi 2048
V --json check skel:web1 --to esx:DC0_H0 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
rc=$?
cond "check --to esx: virtio disk0 \"bus-remapped\", \"guest-drivers\" (warnings, no error), exit 1" \
    '[ $rc -eq 1 ] && found "bus-remapped" warning && found "guest-drivers" warning &&
     [ "$(count bus-remapped warning)" = 1 ] && [ "$(errors)" = 0 ]'
V check skel:web1 --to esx:DC0_H0 --network net0=DC0_DVPG0 --force >"$T/out" 2>"$T/err"
check "check --force accepts ESX's forced changes: exit 0" [ $? -eq 0 ]
V migrate skel:web1 --to esx:DC0_H0 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
cond "migrate without --force stops at validate, nothing in vSphere" \
    '[ $? -eq 1 ] && grep -q "rerun with --force" "$T/err" && ! sim vm web1 >/dev/null 2>&1'
V --json check skel:db1 --to esx:DC0_H0 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
rc=$?
cond "check --to esx: a MAC in vCenter's generated range \"mac-not-kept\", no firmware \"firmware-unknown\"" \
    '[ "$(errors)" = 0 ] && found "mac-not-kept" warning && found "firmware-unknown" warning'
V --json check skel:web1 --to esx:DC0_H0 >"$T/out" 2>"$T/err"
rc=$?
cond "check --to esx: the unmapped network lan is network-missing, exit 1" \
    '[ $rc -eq 1 ] && found network-missing error'
make_vm DC0_C0_RP0_VM0 bios "$MAC" scsi 64
V --json check skel:DC0_C0_RP0_VM0 --to esx:DC0_H0 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
rc=$?
cond "check --to esx: a VM of that name exists in vSphere: \"name-taken\" error, exit 1" \
    '[ $rc -eq 1 ] && found "name-taken" error'
V migrate skel:DC0_C0_RP0_VM0 --to esx:DC0_H0 --network net0=DC0_DVPG0 --dry-run >"$T/out" 2>&1
check "--dry-run with name-taken exits 1" [ $? -eq 1 ]
make_vm big1 bios "$MAC" scsi 2048 2048
free0=$(sim datastore LocalDS_1 | sed -n 's/^free=//p')
ctl "datastore?name=LocalDS_1&free=3145728"
V --json check skel:big1 --to esx:DC0_H0 --path LocalDS_1 --network net0=DC0_DVPG0 >"$T/out" 2>"$T/err"
rc=$?
[ -n "$free0" ] && ctl "datastore?name=LocalDS_1&free=$free0"
cond "check --to esx: 4 MiB of disks on a datastore with 3 MiB free is no-space, exit 1" \
    '[ $rc -eq 1 ] && found no-space error'

# ---- skeleton -> esx: --path, --network, --start -------------------------
s0=$(sha "$SD/srv/vms/web1/disk0.img") s1=$(sha "$SD/srv/vms/web1/disk1.img")
V migrate skel:web1 --to esx:DC0_H0 --path LocalDS_1 --network net0=DC0_DVPG0 --start --force \
    >"$T/out" 2>"$T/err"
check "migrate skel:web1 --to esx:DC0_H0 --path LocalDS_1 --network --start exits 0" [ $? -eq 0 ]
for p in export import verify finish; do
    grep -q "phase $p" "$T/err" || { nok "phase $p shown"; show; }
done
sim hw web1 >"$T/hw" 2>&1
cond "vcsim: web1 is efi and boots from its first disk first" \
    'grep -q "^vm firmware=efi .*boot=[0-9]" "$T/hw" &&
     [ "$(sed -n "s/^vm .*boot=\([0-9]*\).*/\1/p" "$T/hw")" = "$(sed -n "s/^disk \([0-9]*\) file=.*web1\.vmdk .*/\1/p" "$T/hw")" ]'
cond "vcsim: disk0 (virtio) on pvscsi, disk1 on SATA, attached to the uploaded files" \
    'grep -q "file=\[LocalDS_1\] web1/web1.vmdk ctl=ParaVirtualSCSIController unit=0 capacity=3145728" "$T/hw" &&
     grep -q "file=\[LocalDS_1\] web1/web1_1.vmdk ctl=VirtualAHCIController unit=0 capacity=1048576" "$T/hw"'
check "vcsim: the NIC keeps its MAC (manual) on the mapped DC0_DVPG0, as vmxnet3" \
    grep -q "type=VirtualVmxnet3 mac=$MAC addressType=manual network=DC0_DVPG0" "$T/hw"
cond "datastore: the flat files hold the source disks' bytes, in their order (sha256)" \
    '[ -n "$s0" ] && [ "$(sha "$DS1/web1/web1-flat.vmdk")" = "$s0" ] &&
     [ "$(sha "$DS1/web1/web1_1-flat.vmdk")" = "$s1" ]'
cond "--start: vcsim has web1 poweredOn" 'sim vm web1 | grep -q "^power=poweredOn"'
cond "the source skel:web1 stays, stopped, its disks unchanged" \
    '[ "$(peer web1 power)" = stopped ] && [ "$(sha "$SD/srv/vms/web1/disk0.img")" = "$s0" ]'
check "/folder refuses the uploaded file to a request without a session (401)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" \
        "${URL%/sdk}/folder/web1/web1-flat.vmdk?dcPath=DC0&dsName=LocalDS_1")" = 401

# ---- skeleton -> esx -> skeleton, --delete-source both ways ----------------
d0=$(sha "$SD/srv/vms/db1/disk0.img")
V migrate skel:db1 --to esx:DC0_H0 --network "net0=VM Network" --delete-source --force >"$T/out" 2>"$T/err"
check "migrate skel:db1 --to esx:DC0_H0 --delete-source exits 0" [ $? -eq 0 ]
sim hw db1 >"$T/hw" 2>&1
cond "vcsim: db1 is bios, on LocalDS_0 (the host's first datastore), stopped" \
    'grep -q "^vm firmware=bios " "$T/hw" && grep -q "file=\[LocalDS_0\] db1/db1.vmdk" "$T/hw" &&
     sim vm db1 | grep -q "^power=poweredOff"'
emac=$(sed -n 's/^nic [0-9]* type=VirtualVmxnet3 mac=\([^ ]*\) addressType=generated network=VM Network$/\1/p' "$T/hw")
cond "vcsim: a MAC vSphere refuses as static is replaced by a generated one" \
    '[ -n "$emac" ] && [ "$emac" != 00:50:56:9a:00:01 ]'
check "datastore: db1's flat file holds its bytes" [ "$(sha "$DS0/db1/db1-flat.vmdk")" = "$d0" ]
cond "--delete-source: skel has no db1, nor its disk file" \
    '! has_vm db1 && [ ! -e "$SD/srv/vms/db1/disk0.img" ]'
key=$(sed -n 's/^nic \([0-9]*\) .*/\1/p' "$T/hw" | head -1)
dkey=$(sed -n 's/^disk \([0-9]*\) .*/\1/p' "$T/hw" | head -1)
V migrate esx:db1 --to skel:beta --network "$key=lan" --delete-source >"$T/out" 2>"$T/err"
check "migrate esx:db1 --to skel:beta --network $key=lan --delete-source exits 0" [ $? -eq 0 ]
cond "skel: db1 on beta, stopped, bios, its NIC on lan with the MAC ESX gave" \
    '[ "$(peer db1 host)/$(peer db1 power)/$(peer db1 firmware)" = beta/stopped/bios ] &&
     [ "$(peer db1 "network-$key")/$(peer db1 "mac-$key")" = "lan/$emac" ]'
check "skel: db1's disk has the bytes it left with (skeleton -> esx -> skeleton, sha256)" \
    [ "$(sha "$SD/srv/vms/db1/$dkey.img")" = "$d0" ]
cond "--delete-source: vcsim has no db1, the datastore no folder db1" \
    '! sim vm db1 >/dev/null 2>&1 && [ ! -e "$DS0/db1" ]'

# ---- a simulator-made VM to the skeleton -----------------------------------
sim power DC0_H0_VM0 off >/dev/null 2>&1
sim hw DC0_H0_VM0 >"$T/hw" 2>&1
cap=$(sed -n 's/^disk [0-9]* .*capacity=\([0-9]*\).*/\1/p' "$T/hw" | head -1)
k=$(sed -n 's/^disk \([0-9]*\) .*/\1/p' "$T/hw" | head -1)
V migrate esx:DC0_H0_VM0 --to skel:alpha >"$T/out" 2>"$T/err"
check "migrate esx:DC0_H0_VM0 --to skel:alpha exits 0" [ $? -eq 0 ]
cond "skel: its disk is the simulator's disk, the capacity in zeros (sha256)" \
    '[ -n "$cap" ] && [ "$(peer DC0_H0_VM0 host)" = alpha ] &&
     [ "$(sha "$SD/srv/vms/DC0_H0_VM0/$k.img")" = "$(zeros "$cap")" ]'
cond "the source is left in vSphere, powered off" 'sim vm DC0_H0_VM0 | grep -q "^power=poweredOff"'

# ---- a powered-on ESX VM is refused ----------------------------------------
V --json check esx:DC0_H0_VM1 --to skel:beta >"$T/out" 2>"$T/err"
rc=$?
cond "check of a powered-on ESX VM: \"running\" error, exit 1" '[ $rc -eq 1 ] && found running error'
V migrate esx:DC0_H0_VM1 --to skel:beta >"$T/out" 2>"$T/err"
rc=$?
cond "migrate of a powered-on ESX VM fails with one error line" \
    '[ $rc -ne 0 ] && [ "$(grep -c "^vmshift:" "$T/err")" = 1 ]'
cond "... skel has no DC0_H0_VM1, vcsim still runs it" \
    '! has_vm DC0_H0_VM1 && sim vm DC0_H0_VM1 | grep -q "^power=poweredOn"'

# ---- failed imports leave nothing in vSphere ------------------------------
make_vm bad1 bios "$MAC" scsi 1024 512
b0=$(sha "$SD/srv/vms/bad1/disk0.img")
for m in CreateVM_Task ReconfigVM_Task; do
    ctl "http?method=$m&mode=500&count=5"
    V migrate skel:bad1 --to esx:DC0_H0 --network net0=DC0_DVPG0 --force >"$T/out" 2>"$T/err"
    rc=$?
    ctl "reset"
    cond "$m fails (HTTP 500): migrate exits 1 with one line naming the job" \
        '[ $rc -eq 1 ] && [ "$(grep -c "^vmshift: job" "$T/err")" = 1 ]'
    cond "$m failed: vcsim has no bad1, LocalDS_0 no folder bad1" \
        '! sim vm bad1 >/dev/null 2>&1 && [ ! -e "$DS0/bad1" ]'
    cond "$m failed: skel:bad1 unchanged, stopped" \
        '[ "$(sha "$SD/srv/vms/bad1/disk0.img")" = "$b0" ] && [ "$(peer bad1 power)" = stopped ]'
done

# ---- a move killed during the import, then `job repair` -------------------
# CreateVM_Task is held 5 s by the simulator; vmshift is killed once both
# disks are on the datastore; the simulator then defines the VM (the call
# had reached it). job repair must remove the VM and its folder from the
# job's saved data, and leave the source as it was.
make_vm crash1 bios "$MAC" scsi 1024 512
c0=$(sha "$SD/srv/vms/crash1/disk0.img")
ctl "delay?method=CreateVM_Task&ms=5000&count=1"
"$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" --daemon no \
    migrate skel:crash1 --to esx:DC0_H0 --network net0=DC0_DVPG0 --force >"$T/out" 2>"$T/err" &
mpid=$!
i=0
until [ "$(stat -c %s "$DS0/crash1/crash1_1-flat.vmdk" 2>/dev/null)" = 524288 ] || [ $i -ge 600 ]; do
    sleep 0.1; i=$((i + 1))
done
kill -9 $mpid 2>/dev/null
wait $mpid 2>/dev/null
ctl "reset"
i=0
until sim vm crash1 >/dev/null 2>&1 || [ $i -ge 200 ]; do sleep 0.1; i=$((i + 1)); done
job=$(sed -n 's/^job \([0-9]*\): migrate crash1$/\1/p' "$T/err")
cond "killed during the import: vcsim has crash1 and its folder (the partial import)" \
    '[ -n "$job" ] && sim vm crash1 >/dev/null 2>&1 && [ -e "$DS0/crash1" ]'
V job repair "$job" >"$T/out" 2>"$T/err"
check "job repair $job exits 0" [ $? -eq 0 ]
cond "job repair: vcsim has no crash1, LocalDS_0 no folder crash1" \
    '! sim vm crash1 >/dev/null 2>&1 && [ ! -e "$DS0/crash1" ]'
cond "job repair: skel:crash1 unchanged, stopped" \
    '[ "$(sha "$SD/srv/vms/crash1/disk0.img")" = "$c0" ] && [ "$(peer crash1 power)" = stopped ]'

echo "1..$n"
