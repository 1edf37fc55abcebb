#!/bin/sh
# Finding codes, rate = check, and placement on the esx plugin against the
# vSphere simulator (TAP), all through the vmshift command: each scenario
# sets the simulator up (its control channel: maintenance, connection,
# power, consolidation, datastore free space, mounts and maintenance), runs
# `vmshift --json check` and `vmshift migrate --dry-run`, and asserts the
# code, its severity, that it appears once, and both exit statuses; `rate`
# over a group with an unknown host and a host of a second backend (the
# same simulator again) rules them out by host-not-found and other-backend.
# Then `rate` and `check` must agree on every host of the cluster, and a real `vmshift
# bulk` of 20 VMs to the 4 cluster hosts must spread them 5/5/5/5 and move
# no storage, as the simulator's own properties (vcsim-check) show.
B=${VMSHIFT_BUILDDIR:-$(pwd)}
S=${VMSHIFT_SRCDIR:-$B}
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
VMSHIFT=$B/host/vmshift
if [ ! -x "$LAUNCHER" ] || [ ! -x "$CHECKER" ] || [ ! -f "$B/plugins/esx/.libs/esx.so" ]; then
    echo "1..0 # SKIP vSphere simulator or ESX plugin not built"; exit 0
fi
for p in "launcher:$LAUNCHER" "check:$CHECKER"; do
    want=$(sh "$S/tests/vcsim/source-hash" "$S/tests/vcsim/${p%%:*}")
    have=$("${p#*:}" -source-hash 2>/dev/null)
    if [ -z "$want" ] || [ "$want" != "$have" ]; then
        echo "Bail out! ${p#*:} was built from other sources"; exit 1
    fi
done
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-rules-esx.XXXXXX")
SIM_PID=
trap '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "$l" | sed 's/^/# /' | head -40; done; }

: >"$T/sim.out" # made before the launcher's redirection: the wait below reads it
"$LAUNCHER" -ca-file "$T/ca.pem" -credentials "$T/creds" -task-step-ms 5 -cluster-hosts 4 \
    -vms-per-pool 20 -portgroups 1 -nsx 1 >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
i=0
while [ "$(wc -l <"$T/sim.out")" -lt 2 ] && [ $i -lt 600 ]; do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
URL=$(sed -n 1p "$T/sim.out") CTL=$(sed -n 2p "$T/sim.out")
[ -n "$CTL" ] || { echo "Bail out! the simulator did not start"; cat "$T/sim.err"; exit 1; }
mkdir -p "$T/plugins" "$T/state"
chmod 755 "$T" "$T/plugins"
cp "$B/plugins/esx/.libs/esx.so" "$T/plugins/" && chmod 755 "$T/plugins/esx.so"
cat >"$T/vmshift.conf" <<EOC
[vmshift]
state-dir=$T/state

[backend esx]
plugin=esx
url=$URL
credentials=$T/creds
ca-file=$T/ca.pem

[group cluster]
hosts=esx:DC0_C0_H0;esx:DC0_C0_H1;esx:DC0_C0_H2;esx:DC0_C0_H3
EOC
V() { timeout 120 "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" "$@"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$T/ca.pem" -credentials "$T/creds" "$@"; }
ctl() { timeout 10 curl -sf "$CTL/ctl/$1" >/dev/null || echo "# control call $1 failed"; }

count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1])); c = [f for f in j["findings"] if f["code"] == sys.argv[2]]
print(len(c), ",".join(sorted(set(f["severity"] for f in c))))' "$1" "$2" 2>/dev/null
}
scenario() {
    name=$1 code=$2 sev=$3 want=$4; shift 4
    V --json check "$@" >"$T/out" 2>"$T/err"; rc=$?
    got=$(count "$T/out" "$code")
    V migrate "$@" --dry-run >"$T/dry" 2>&1; drc=$?
    if [ "$got" = "1 $sev" ] && [ $rc -eq "$want" ] && [ $drc -eq "$want" ]; then
        ok "$name: $code ($sev) once, check and --dry-run exit $want"
    else
        notok "$name: $code (got '$got', check rc $rc, dry-run rc $drc, want '1 $sev' rc $want)" \
            "$(cat "$T/out" "$T/err")"
    fi
}

VM=DC0_H0_VM0
V --json check $VM --to DC0_C0_H1 >"$T/out" 2>"$T/err"; rc=$?
python3 -c 'import sys, json; j = json.load(open(sys.argv[1])); assert j["errors"] == 0 and j["warnings"] == 0, j["findings"]' "$T/out" \
    && [ $rc -eq 0 ] && ok "clean move $VM -> DC0_C0_H1: no error or warning, exit 0" \
    || notok "clean move (rc $rc)" "$(cat "$T/out" "$T/err")"
scenario "VM already there" same-host error 1 $VM --to DC0_H0
ctl "host?name=DC0_C0_H2&maintenance=true"
scenario "host in maintenance mode" host-maintenance error 1 $VM --to DC0_C0_H2
ctl "host?name=DC0_C0_H2&maintenance=false&connection=disconnected"
scenario "host disconnected" host-unreachable error 1 $VM --to DC0_C0_H2
ctl "host?name=DC0_C0_H2&connection=connected"
scenario "cold move of a running VM" running error 1 $VM --to DC0_C0_H1 --cold
ctl "vm?name=DC0_H0_VM1&power=off"
scenario "live move of a stopped VM" not-running error 1 DC0_H0_VM1 --to DC0_C0_H1 --live
ctl "vm?name=DC0_H0_VM1&power=on"
ctl "vm?name=$VM&consolidation-needed=true"
scenario "disks need consolidation" needs-consolidation warning 1 $VM --to DC0_C0_H1
ctl "vm?name=$VM&consolidation-needed=false"
# every MiB of DC0_C0_H1's memory in use, then its hardware summary gone
mem=$(V --json hosts 2>/dev/null | python3 -c 'import sys, json
print([h for h in json.load(sys.stdin)["hosts"] if h["name"] == "DC0_C0_H1"][0]["memory_total"] // 1048576)')
ctl "host?name=DC0_C0_H1&memory-used-mb=${mem:-0}"
scenario "no free memory on the destination" no-memory error 1 $VM --to DC0_C0_H1
ctl "host?name=DC0_C0_H1&memory-used-mb=0&hardware=unset"
scenario "the destination's memory not reported" memory-unknown warning 1 $VM --to DC0_C0_H1
ctl "host?name=DC0_C0_H1&hardware=set"
V --json check $VM --to DC0_C0_H1 >"$T/out" 2>&1
if [ "$(count "$T/out" memory-unknown)$(count "$T/out" no-memory)" = "0 0 " ]; then
    ok "the host's memory back: neither memory-unknown nor no-memory"
else notok "memory findings after the host's memory is back" "$(cat "$T/out")"; fi
scenario "mapping to a network that does not exist" network-missing error 1 $VM --to DC0_C0_H1 --network 4000=NoSuchNet
scenario "mapping to an NSX opaque network" network-unusable error 1 $VM --to DC0_C0_H1 --network 4000=DC0_NSX0
scenario "no such NIC" nic-not-found error 1 $VM --to DC0_C0_H1 --network 9999=DC0_DVPG0
scenario "no such disk" disk-not-found error 1 $VM --to DC0_C0_H1 --disk-path 9999='[LocalDS_1]'
ctl "datastore?name=LocalDS_1&free=1000"
scenario "datastore full" no-space error 1 $VM --to DC0_C0_H1 --path '[LocalDS_1]'
# room for the VM's disks plus 1 MiB: less than the 5 % the rule wants left
need=$(V --json vms 2>/dev/null | python3 -c 'import sys, json
vms = json.load(sys.stdin)["vms"]; v = [x for x in vms if x["name"] == sys.argv[1]][0]
print(sum(d["capacity"] for d in v["disks"]))' "$VM")
ctl "datastore?name=LocalDS_1&free=$((${need:-0} + 1048576))"
scenario "datastore nearly full afterwards" low-space warning 1 $VM --to DC0_C0_H1 --path '[LocalDS_1]'
# no-destination cannot reach the plugin: the host refuses such a spec first
V check "$VM" >"$T/out" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q "give exactly one of --to HOST and --to-group G" "$T/out"; then
    ok "a check with neither --to nor --path is a usage error (exit 2) before any check"
else notok "check with no destination: rc $rc" "$(cat "$T/out")"; fi
ctl "datastore?name=LocalDS_2&accessible=false"
scenario "datastore inaccessible: free space unknown" space-unknown warning 1 $VM --to DC0_C0_H1 --path '[LocalDS_2]'
ctl "datastore?name=LocalDS_2&accessible=true"
ctl "datastore?name=LocalDS_0&unmount=DC0_C0_H3"
scenario "--transfer san to a host without the VM's datastore" storage-not-shared error 1 $VM --to DC0_C0_H3 --transfer san
ctl "datastore?name=LocalDS_0&mount=DC0_C0_H3"

scenario "--transfer network without --path" transfer-conflict error 1 $VM --to DC0_C0_H1 --transfer network
scenario "--path to a datastore that does not exist" path-not-found error 1 $VM --to DC0_C0_H1 --path '[NoSuchDS]'
scenario "an --option (the plugin takes none)" check-failed error 1 $VM --to DC0_C0_H1 --option nosuch=1
ctl "datastore?name=LocalDS_2&maintenance=inMaintenance"
scenario "target datastore in maintenance mode" volume-unavailable error 1 $VM --to DC0_C0_H1 --path '[LocalDS_2]'
ctl "datastore?name=LocalDS_2&maintenance=normal"
ctl "datastore?name=LocalDS_0&unmount=DC0_C0_H3"
scenario "the VM's datastore not mounted on the destination" volume-not-on-host error 1 $VM --to DC0_C0_H3
ctl "datastore?name=LocalDS_0&mount=DC0_C0_H3"
# a disk named by its file (the VM's first disk as vSphere lists it)
dfile=$(V --json vm show $VM | python3 -c 'import sys, json; print(json.load(sys.stdin)["disks"][0]["path"])')
scenario "a disk mapped by its file name" disk-mapped info 0 $VM --to DC0_C0_H1 --disk-path "$dfile=[LocalDS_2]"
# a NIC named by its MAC address (the VM's first NIC as vSphere lists it)
nmac=$(V --json vm show $VM | python3 -c 'import sys, json; print(json.load(sys.stdin)["nics"][0]["mac"])')
scenario "a NIC mapped by its MAC address" nic-mapped info 0 $VM --to DC0_C0_H1 --network "$nmac=DC0_DVPG0"

# a snapshot (taken through the vSphere API), then its removal running
sim snapshot "$VM" pre-patch >/dev/null || echo "# taking a snapshot failed"
scenario "a snapshot moves with the storage" snapshots-present warning 1 $VM --to DC0_C0_H1 --path '[LocalDS_1]'
ctl "task?method=RemoveSnapshot_Task&step-ms=200"
sim remove-snapshot "$VM" pre-patch >/dev/null || echo "# removing the snapshot failed"
scenario "a snapshot being removed (a merge)" merge-in-progress error 1 $VM --to DC0_C0_H1
i=0
while sim tasks "$VM" 2>/dev/null | grep -q 'VirtualMachineSnapshot.remove running' && [ $i -lt 600 ]; do
    sleep 0.2; i=$((i + 1))
done
ctl reset

# rate: a host no backend has (host-not-found), the same simulator again
# as backend esx2 (other-backend)
sed -e 's/^\[backend esx\]$/[backend esx2]/' -e '/^\[group/,$d' "$T/vmshift.conf" >"$T/esx2.part"
{ cat "$T/vmshift.conf"; echo; sed -n '/^\[backend esx2\]/,$p' "$T/esx2.part"; echo
  echo "[group mixed]"; echo "hosts=esx:DC0_C0_H1;esx:NOSUCH;esx2:DC0_C0_H2"; } >"$T/mixed.conf"
timeout 120 "$VMSHIFT" --config "$T/mixed.conf" --plugin-dir "$T/plugins" --json rate esx:$VM --group mixed >"$T/rate" 2>"$T/err"
python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["NOSUCH"]["stars"] == 0 and r["NOSUCH"]["reason_code"] == "host-not-found", r
assert r["DC0_C0_H2"]["stars"] == 0 and r["DC0_C0_H2"]["reason_code"] == "other-backend", r
assert r["DC0_C0_H1"]["eligible"], r' "$T/rate" \
    && ok "rate: NOSUCH is host-not-found, DC0_C0_H2 of backend esx2 other-backend (0 stars each)" \
    || notok "rate mixed group" "$(cat "$T/rate" "$T/err")"

# rate and check agree on every host of the cluster (one in maintenance)
ctl "host?name=DC0_C0_H2&maintenance=true"
V --json rate $VM --group cluster >"$T/rate" 2>"$T/err"
agree=yes
for h in DC0_C0_H0 DC0_C0_H1 DC0_C0_H2 DC0_C0_H3; do
    line=$(python3 -c 'import sys, json
r = [x for x in json.load(open(sys.argv[1]))["ratings"] if x["host"] == sys.argv[2]][0]
print("yes" if r["eligible"] else "no", r["stars"], r["reason_code"] or "-", r["dest_path"] or "-")' "$T/rate" "$h")
    set -- $line
    if [ "$4" = - ]; then V --json check $VM --to "$h" --force >"$T/chk" 2>&1; rc=$?
    else V --json check $VM --to "$h" --path "$4" --force >"$T/chk" 2>&1; rc=$?; fi
    if [ "$1" = yes ] && [ $rc -eq 0 ]; then :
    elif [ "$1" = no ] && [ $rc -ne 0 ] && [ "$2" = 0 ] && [ "$(count "$T/chk" "$3")" = "1 error" ]; then :
    else agree=no; echo "# $h: rate '$line', check rc $rc"; sed 's/^/# /' "$T/chk" | head -20; fi
done
python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["DC0_C0_H2"]["stars"] == 0 and r["DC0_C0_H2"]["reason_code"] == "host-maintenance", r["DC0_C0_H2"]
assert all(r[h]["eligible"] for h in ("DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H3")), r' "$T/rate" || agree=no
[ $agree = yes ] && ok "rate and check agree on every host of the cluster (maintenance: 0 stars, host-maintenance)" \
    || notok "rate and check disagree" "$(cat "$T/rate" "$T/err")"
ctl "host?name=DC0_C0_H2&maintenance=false"

# placement: 20 VMs of the standalone host to the 4 cluster hosts, whose
# datastores they all share
{ echo "[bulk]"; echo "max-per-backend=4"; echo "max-per-host=4"; echo "[wave 1]"
  printf 'vms='; for i in $(seq 0 19); do printf 'esx:DC0_H0_VM%s;' "$i"; done; echo
  echo "to-group=cluster"; } >"$T/plan.conf"
V --json bulk "$T/plan.conf" --dry-run >"$T/out" 2>"$T/err"; rc=$?
python3 -c 'import sys, json, collections
cmds = json.load(open(sys.argv[1]))["waves"][0]["commands"]
hosts = collections.Counter(c["command"].split("--to ")[1].split()[0] for c in cmds)
assert len(cmds) == 20 and all(c["would_run"] for c in cmds), cmds
assert sorted(hosts.values()) == [5, 5, 5, 5], hosts
assert not any("--path" in c["command"] for c in cmds), cmds' "$T/out" && [ $rc -eq 0 ] \
    && ok "bulk --dry-run: 20 VMs spread 5/5/5/5 over the cluster, no storage move, each validated" \
    || notok "placement dry run (rc $rc)" "$(cat "$T/out" "$T/err")"
V bulk "$T/plan.conf" >"$T/out" 2>"$T/err"; rc=$?
for i in $(seq 0 19); do sim vm DC0_H0_VM$i; echo; done >"$T/props" 2>&1
python3 -c 'import sys, collections
vms = [dict(l.split("=", 1) for l in b.splitlines() if "=" in l) for b in open(sys.argv[1]).read().split("\n\n") if b.strip()]
hosts = collections.Counter(v["host"] for v in vms)
assert len(vms) == 20 and sorted(hosts.items()) == [("DC0_C0_H0", 5), ("DC0_C0_H1", 5), ("DC0_C0_H2", 5), ("DC0_C0_H3", 5)], hosts
assert all(v["datastores"] == "LocalDS_0" for v in vms), [v["datastores"] for v in vms]' "$T/props" && [ $rc -eq 0 ] \
    && ok "bulk: the simulator has 5 of the VMs on each cluster host, every one still on LocalDS_0" \
    || notok "placement run (rc $rc)" "$(cat "$T/err" "$T/props")"
echo "1..$n"
exit $failed
