#!/bin/bash
# Moves between Hyper-V and the other hypervisors (issue 16) through
# `vmshift migrate VM --to BACKEND:HOST`, each checked from the peers' own
# views, never from vmshift's report:
#  - ESX -> Hyper-V: a VM put on the vSphere simulator (from the skeleton)
#    moved to the Hyper-V simulator's HV02: the simulator's state has it
#    defined (generation from the firmware, its NIC's static MAC on the
#    mapped switch) and the VHDX uploaded through the real Samba server
#    holds the ESX disk's bytes (qemu-img convert -O raw + sha256sum);
#  - Hyper-V -> KVM: HV01's generation 1 VM read through the Samba share
#    into a KVM host directory: its vm.conf (buses, MAC, network, BIOS) and
#    its images' guest bytes are the Hyper-V disks' (sha256sum); the source
#    stays on HV01, off.
# The Hyper-V side (simulator + smbd in a namespace) comes from
# `tests/v2v/hyperv.py --serve`. TAP; needs root, smbd, qemu-img, nbdcopy,
# the vSphere simulator (tests/vcsim) and the esx, kvm, hyperv and
# skeleton plugins with their moves between backends.
set -u
B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
VMSHIFT=$B/host/vmshift
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
P_ESX=$B/plugins/esx/.libs/esx.so
P_KVM=$B/plugins/kvm/.libs/kvm.so
P_HV=$B/plugins/hyperv/.libs/hyperv.so
SKEL=$B/tests/skeleton/.libs/skeleton.so

skip() { echo "1..0 # SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespace for smbd)"
for t in smbd smbpasswd ip qemu-img nbdcopy qemu-nbd python3 curl; do
    command -v "$t" >/dev/null || skip "$t is not installed"
done
for f in "$VMSHIFT" "$LAUNCHER" "$CHECKER" "$P_ESX" "$P_KVM" "$P_HV" "$SKEL"; do
    [ -e "$f" ] || skip "$f is not built"
done
"$VMSHIFT" migrate --help 2>&1 | grep -q "BACKEND:HOST" || skip "vmshift has no moves between backends"

T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-v2v-hvx.XXXXXX")
chmod 755 "$T"
HV_PID= SIM_PID=
cleanup() {
    [ -n "$HV_PID" ] && kill "$HV_PID" 2>/dev/null && wait "$HV_PID" 2>/dev/null
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
cond() { if eval "$2"; then ok "$1"; else nok "$1" "$2" "$(tail -5 "$T/err" 2>/dev/null)"; fi; }
raw_sha() {
    timeout 120 qemu-img convert -U -O raw "$1" "$T/raw.tmp" && sha256sum <"$T/raw.tmp" | cut -d' ' -f1
    rm -f "$T/raw.tmp"
}
# the Hyper-V side: simulator and Samba server
python3 "$S/tests/v2v/hyperv.py" --serve "$T/hv" >"$T/hv.out" 2>&1 &
HV_PID=$!
for i in $(seq 300); do [ -f "$T/hv/info.json" ] && break; kill -0 $HV_PID 2>/dev/null || break; sleep 0.1; done
[ -f "$T/hv/info.json" ] || { echo "Bail out! the Hyper-V side did not start: $(tail -3 "$T/hv.out")"; exit 1; }
info() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d = d[k]
print(d)' "$T/hv/info.json" "$@"; }
# the simulator's own view: FIELD of VM on HOST (JSON of the VM when FIELD is -)
hvsim() {
    curl -sf "$(info control)/state" | python3 -c 'import json,sys
s = json.load(sys.stdin); h, vm, f = sys.argv[1:4]
v = [x for x in s["hosts"][h]["vms"] if x["name"] == vm]
x = None if not v else v[0] if f == "-" else v[0].get(f)
print(x if isinstance(x, (str, int)) else json.dumps(x) if x is not None else "")' "$@"
}
# the vSphere simulator
"$LAUNCHER" -ca-file "$T/ca.pem" -credentials "$T/creds" -task-step-ms 20 >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
for i in $(seq 600); do [ "$(wc -l <"$T/sim.out")" -ge 2 ] && break; kill -0 $SIM_PID 2>/dev/null || break; sleep 0.1; done
URL=$(sed -n 1p "$T/sim.out")
[ -n "$URL" ] || { echo "Bail out! the vSphere simulator did not start"; exit 1; }

mkdir -p "$T/plugins" "$T/etc/backends.d" "$T/k/images" "$T/k/vms" "$T/stage"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
install -m 0755 "$P_ESX" "$P_KVM" "$P_HV" "$SKEL" "$T/plugins/"
cat >"$T/k/networks.conf" <<EOC
[network lan]
netdev=user
EOC
: >"$T/etc/vmshift.conf"
SMB=$(info smb)
cat >"$T/etc/backends.d/v2v.conf" <<EOC
[backend skel]
plugin=skeleton
hosts=alpha
vms=web1@alpha;web2@alpha
state-file=$T/skel.state

[backend esx]
plugin=esx
url=$URL
credentials=$T/creds
ca-file=$T/ca.pem

[backend hv]
plugin=hyperv
hosts=$(info hosts HV01);$(info hosts HV02)
credentials=$(info cred)
auth=basic
allow-unencrypted=true
timeout=20
smb-shares=D:=//$SMB/d\$;E:=//$SMB/e\$
staging-dir=$T/stage

[backend kvm]
plugin=kvm
hosts=k=$T/k
EOC
V() { timeout 600 "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
    --state-dir "$T/state" --daemon no "$@"; }
V vms >/dev/null 2>&1 # the skeleton's state file

# ---- ESX -> Hyper-V ----------------------------------------------------------
sed -i "/^\[vm web1\]/,/^\[/s/^power=running/power=stopped/" "$T/skel.state"
mkdir -p "$T/skel.state.data/srv/vms/web1"
head -c 3145728 /dev/urandom >"$T/skel.state.data/srv/vms/web1/disk0.img"
SUM=$(sha256sum <"$T/skel.state.data/srv/vms/web1/disk0.img" | cut -d' ' -f1)
sed -i "/^\[vm web1\]/a firmware=uefi\nnics=net0;\nmac-net0=00:50:56:00:00:21\ndisks=disk0;" "$T/skel.state"
V migrate skel:web1 --to esx:DC0_H0 --network net0=DC0_DVPG0 --force >"$T/out" 2>"$T/err"
cond "skel:web1 --to esx:DC0_H0: web1 is on the vSphere simulator" '[ $? -eq 0 ]'
timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" hw web1 >"$T/hw" 2>&1
NIC=$(sed -n 's/^nic \([0-9]*\) .*/\1/p' "$T/hw" | head -1)
EMAC=$(sed -n 's/^nic [0-9]* .*mac=\([^ ]*\) .*/\1/p' "$T/hw" | head -1 | tr -d : | tr a-f A-F)
# once CODE SEVERITY JSON: CODE is among the findings exactly once, with SEVERITY
once() { python3 -c 'import json, sys
f = [x for x in json.load(open(sys.argv[3]))["findings"] if x["code"] == sys.argv[1]]
sys.exit(0 if len(f) == 1 and f[0]["severity"] == sys.argv[2] else 1)' "$@" 2>/dev/null; }
# what Hyper-V forces, as check's warnings: ESX's vmxnet3 NIC becomes synthetic
V --json check esx:web1 --to hv:HV02 --path 'E:\VMs' --network "${NIC:-net0}=LAN" >"$T/chk" 2>"$T/err"
crc=$?
cond "check esx:web1 --to hv:HV02: nic-model-changed (warning) once, exit 1" \
    '[ $crc -eq 1 ] && once "nic-model-changed" warning "$T/chk"'
# a Windows guest with no MAC, no firmware said and virtio disks (skeleton web2)
sed -i "/^\[vm web2\]/,/^\[/s/^power=running/power=stopped/" "$T/skel.state"
mkdir -p "$T/skel.state.data/srv/vms/web2"
head -c 1048576 /dev/urandom >"$T/skel.state.data/srv/vms/web2/disk0.img"
sed -i "/^\[vm web2\]/a guest-os=windows\nnics=net0;\ndisks=disk0;" "$T/skel.state"
V --json check skel:web2 --to hv:HV02 --path 'E:\VMs' --network net0=LAN >"$T/chk" 2>"$T/err"
crc=$?
for c in "firmware-unknown" "bus-remapped" "mac-not-kept" "guest-drivers"; do
    cond "check skel:web2 --to hv:HV02: $c (warning) once, exit 1" \
        '[ $crc -eq 1 ] && once $c warning "$T/chk"'
done
V migrate esx:web1 --to hv:HV02 --path 'E:\VMs' --network "${NIC:-net0}=LAN" --force >"$T/out" 2>"$T/err"
rc=$?
cond "esx:web1 --to hv:HV02 exits 0" '[ $rc -eq 0 ]'
cond "HV02 (simulator): web1 defined off, generation 2 (UEFI), in E:\\VMs\\web1" \
    '[ "$(hvsim HV02 web1 generation)/$(hvsim HV02 web1 enabled_state)/$(hvsim HV02 web1 config_root)" = "2/3/E:\\VMs\\web1" ]'
cond "HV02: the NIC keeps the ESX MAC ($EMAC) as a static MAC, on switch LAN" \
    'hvsim HV02 web1 nics | grep -q "\"mac\": \"$EMAC\".*\"switch\": \"LAN\".*\"static\": true"'
VHDX="$(info e02)/VMs/web1/Virtual Hard Disks/web1.vhdx"
cond "the share's VHDX holds the ESX disk's bytes (qemu-img convert -O raw + sha256sum)" \
    '[ -f "$VHDX" ] && [ "$(raw_sha "$VHDX")" = "$SUM" ]'
cond "the ESX source stays (off)" 'V vms 2>/dev/null | grep -q web1'
V --json check esx:web1 --to hv:HV02 --path 'E:\VMs' --network "${NIC:-net0}=LAN" >"$T/chk" 2>"$T/err"
crc=$?
cond "check esx:web1 --to hv:HV02 again: name-taken (error) once, exit 1" \
    '[ $crc -eq 1 ] && once "name-taken" error "$T/chk"'

# ---- Hyper-V -> KVM ---------------------------------------------------------------
V migrate hv:hvsrc --to kvm:k --network N0=lan --force >"$T/out" 2>"$T/err"
rc=$?
cond "hv:hvsrc --to kvm:k exits 0 (disks read from HV01 through the Samba share)" '[ $rc -eq 0 ]'
KC="$T/k/vms/hvsrc/vm.conf"
conf() { awk -v g="[$1]" -v k="$2" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
    in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$KC"; }
cond "kvm host k: vm.conf for hvsrc" '[ -f "$KC" ]'
cond "kvm host k: the boot disk first (IDE), the data disk second, the MAC kept on lan" \
    'grep -q "00:15:5d:00:aa:01" "$KC" && grep -q "network=lan" "$KC" && grep -q "bus=ide" "$KC"'
imgs=$(sed -n 's/^path=//p' "$KC")
i=0 good=0
for want in "$(info raws hvsrc)" "$(info raws data)"; do
    i=$((i + 1))
    f=$(sed -n "${i}p" <<<"$imgs")
    [ -n "$f" ] && [ "$(raw_sha "$f")" = "$want" ] && good=$((good + 1))
done
cond "kvm host k: both images hold the Hyper-V disks' guest bytes, in order (sha256sum)" '[ $good -eq 2 ]'
cond "the source hvsrc stays on HV01, off" '[ "$(hvsim HV01 hvsrc enabled_state)" = 3 ]'
cond "no password in any output" '! grep -rq "V2v-Smb-Pa55" "$T/out" "$T/err"'
echo "1..$n"
