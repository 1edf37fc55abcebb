#!/bin/sh
# The claims suite on the esx backend: every row of tests/claims/claims.tsv
# that names esx, through the `vmshift` command against the vSphere
# simulator (tests/vcsim/vcsim-launcher, started as tests/esx/test-esx.sh
# does), checked with an independent govmomi client (tests/vcsim/vcsim-check:
# runtime.host, power state, each disk's datastore, each NIC's network, the
# guest's address). Prints TAP.
. "${VMSHIFT_SRCDIR:-.}/tests/claims/lib.sh"
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
PLUGIN=$B/plugins/esx/.libs/esx.so
if [ ! -x "$LAUNCHER" ] || [ ! -x "$CHECKER" ] || [ ! -f "$PLUGIN" ] || [ ! -x "$VMSHIFT" ]; then
    echo "1..0 # SKIP vSphere simulator, esx plugin or vmshift not built"
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
CT=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-claims-esx.XXXXXX")
chmod 755 "$CT"
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$CT"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
: >"$CT/sim.out" # made before the launcher's redirection: the wait below reads it
"$LAUNCHER" -ca-file "$CT/ca.pem" -credentials "$CT/creds" -task-step-ms 20 \
    >"$CT/sim.out" 2>"$CT/sim.err" &
SIM_PID=$!
i=0
while [ "$(wc -l <"$CT/sim.out")" -lt 2 ] && [ $i -lt 600 ]; do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
URL=$(sed -n 1p "$CT/sim.out")
CTL=$(sed -n 2p "$CT/sim.out")
if [ -z "$CTL" ]; then
    echo "Bail out! the simulator did not start: $(tail -3 "$CT/sim.err")"
    exit 1
fi
mkdir -p "$CT/state" "$CT/plugins"
cp "$PLUGIN" "$CT/plugins/esx.so"
chmod 755 "$CT/plugins" "$CT/plugins/esx.so"
printf '[backend vc]\nplugin=esx\nurl=%s\ncredentials=%s\nca-file=%s\n' "$URL" "$CT/creds" \
    "$CT/ca.pem" >"$CT/vmshift.conf"
V() { timeout 120 "$VMSHIFT" --config "$CT/vmshift.conf" --plugin-dir "$CT/plugins" --state-dir "$CT/state" "$@" >"$CT/out" 2>"$CT/err"; }
# the simulator's own view, through govmomi
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$CT/ca.pem" -credentials "$CT/creds" "$@"; }
ctl() { timeout 10 curl -sf "$CTL/ctl/$1" >/dev/null || echo "# control call $1 failed"; }
prop() { sim vm "$1" | sed -n "s/^$2=//p"; }
nic_net() { sim nics "$1" | awk -F '\t' -v k="$2" '$1 == k { print $4 }'; }
# a cluster host other than VM $1's
other_host() { h=$(prop "$1" host); for c in DC0_C0_H0 DC0_C0_H1 DC0_C0_H2; do [ "$c" != "$h" ] && echo "$c" && return; done; }

claim_move_host() {
    vm=DC0_C0_RP0_VM0; to=$(other_host $vm)
    V migrate $vm --to "$to" --live; rc=$?
    check "esx move-host: migrate $vm --to $to: runtime.host is $to (vcsim-check)" \
        test $rc -eq 0 -a "$(prop $vm host)" = "$to"
}
claim_verified() {
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host); to=$(other_host $vm)
    net=$(nic_net $vm 4000); want=DC0_DVPG1; [ "$net" = DC0_DVPG1 ] && want=DC0_DVPG0
    ctl "ignore?what=device-change"
    V migrate $vm --to "$to" --live --network "4000=$want"; rc=$?
    ctl reset
    check "esx verified: the server drops the NIC change: the job fails naming adapter 4000; the simulator shows it on $net" \
        sh -c "[ $rc -ne 0 ] && grep -q \"the network of adapter 4000 is '$net', expected '$want'\" '$CT/err' && [ \"\$1\" = '$net' ]" _ "$(nic_net $vm 4000)"
    to=$(other_host $vm)
    V migrate $vm --to "$to" --live --network "4000=$want"; rc=$?
    id=$(last_job V)
    V --json job show "$id"
    check "esx verified: job show lists verified=host,power,home,disks,nics; the simulator has the VM on $to, NIC 4000 on $want" \
        sh -c "[ $rc -eq 0 ] && grep -q '\"verified\":\"host,power,home,disks,nics\"' '$CT/out' && [ \"\$1\" = '$to' ] && [ \"\$2\" = '$want' ]" \
        _ "$(prop $vm host)" "$(nic_net $vm 4000)"
    : "$from"
}
claim_cold_start() {
    vm=DC0_C0_RP0_VM1; sim power $vm off >/dev/null 2>&1; to=$(other_host $vm)
    V migrate $vm --cold --to "$to" --start; rc=$?
    check "esx cold-start: $vm powered off, migrate --cold --start: poweredOn on $to (vcsim-check)" \
        test $rc -eq 0 -a "$(prop $vm host)" = "$to" -a "$(prop $vm power)" = poweredOn
}
claim_option_unknown() {
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host)
    V migrate $vm --to "$(other_host $vm)" --option bogus-key=1; rc=$?
    check "esx option-unknown: refused naming 'bogus-key'; the simulator keeps $vm on $from" \
        sh -c "[ $rc -ne 0 ] && grep -q \"unknown [a-z ]*option 'bogus-key'\" '$CT/out' '$CT/err' && [ \"\$1\" = '$from' ]" _ "$(prop $vm host)"
}
claim_transfer_san_path() {
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host); ds=$(prop $vm datastores)
    V migrate $vm --to "$(other_host $vm)" --transfer san --path LocalDS_2; rc=$?
    check "esx transfer-san-path: refused in one error line; the simulator keeps $vm on $from, on $ds" \
        sh -c "[ $rc -ne 0 ] && [ \"\$(grep -c '^vmshift: ' '$CT/err')\" -eq 1 ] && grep -q -- '^vmshift: .*--transfer san keeps the storage' '$CT/err' && [ \"\$1\" = '$from' ] && [ \"\$2\" = '$ds' ]" \
        _ "$(prop $vm host)" "$(prop $vm datastores)"
}
claim_dry_run() {
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host)
    V migrate $vm --to "$(other_host $vm)" --dry-run; rc=$?
    check "esx dry-run: prints the plan (exit 0); the simulator keeps $vm on $from" \
        sh -c "[ $rc -eq 0 ] && grep -q 'vmshift migrate' '$CT/out' && [ \"\$1\" = '$from' ]" _ "$(prop $vm host)"
}
claim_check_stops() {
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host)
    V migrate $vm --cold --to "$(other_host $vm)"; rc=$?
    check "esx check-stops: --cold on a powered-on VM: check's error stops migrate; $vm stays on $from, poweredOn" \
        sh -c "[ $rc -ne 0 ] && grep -q 'validation failed' '$CT/err' && [ \"\$1\" = '$from' ] && [ \"\$2\" = poweredOn ]" \
        _ "$(prop $vm host)" "$(prop $vm power)"
}
claim_placement() {
    vm=DC0_H0_VM0; sim power $vm off >/dev/null 2>&1
    disk=$(sim disks $vm | cut -f1 | head -1)
    net=$(nic_net $vm 4000); want=DC0_DVPG1; [ "$net" = DC0_DVPG1 ] && want=DC0_DVPG0
    home=$(prop $vm datastores)
    V migrate $vm --cold --to DC0_C0_H1 --path LocalDS_1 --disk-path "$disk=LocalDS_2" --network "4000=$want"; rc=$?
    check "esx placement: cold move with --path LocalDS_1 --disk-path $disk=LocalDS_2 --network 4000=$want: home on LocalDS_1 (was $home), disk on LocalDS_2, NIC on $want (was $net), on DC0_C0_H1 (vcsim-check)" \
        sh -c "[ $rc -eq 0 ] && [ \"\$1\" = '[LocalDS_1]' ] && [ \"\$2\" = LocalDS_2 ] && [ \"\$3\" = '$want' ] && [ \"\$4\" = DC0_C0_H1 ]" \
        _ "$(prop $vm path | cut -d' ' -f1)" "$(prop $vm "disk.$disk")" "$(nic_net $vm 4000)" "$(prop $vm host)"
    # the request itself carried them: with the server told to drop the
    # locators and NIC changes, the same kind of move fails on them
    ctl "ignore?what=disk-locators,device-change"
    V migrate $vm --cold --to DC0_C0_H2 --path LocalDS_0 --disk-path "$disk=LocalDS_1" --network "4000=$net"; rc=$?
    ctl reset
    check "esx placement: vcsim logs that the RelocateVM_Task carried disk locators and a NIC change (it dropped them), and vmshift fails the job" \
        sh -c "[ $rc -ne 0 ] && grep -q 'dropping disk locators=true' '$CT/sim.err' && grep -q 'device changes=true' '$CT/sim.err'"
}
claim_guest_ip() {
    vm=DC0_H0_VM1; sim power $vm off >/dev/null 2>&1
    nics=$(sim nics $vm | cut -f1 | sed 's/$/=192.0.2.77\/24,192.0.2.1/' | sed 's/^/--ip /' | tr '\n' ' ')
    to=$(other_host $vm)
    # shellcheck disable=SC2086
    V migrate $vm --cold --to "$to" --start $nics; rc=$?
    id=$(last_job V)
    V --json job show "$id"
    check "esx guest-ip: migrate --cold --start --ip NIC=192.0.2.77/24,192.0.2.1: on $to, poweredOn, the guest's address 192.0.2.77 (vcsim-check guest)" \
        sh -c "[ $rc -eq 0 ] && grep -q '\"customize\"' '$CT/out' && [ \"\$1\" = '$to' ] && [ \"\$2\" = poweredOn ] && [ \"\$3\" = 192.0.2.77 ]" \
        _ "$(prop $vm host)" "$(prop $vm power)" "$(sim guest $vm | sed -n 's/^ip=//p')"
    # IPv6 (ipV6Spec): vcsim's customization applies IPv4 only, so this
    # checks that the simulator took the spec (the plugin reads
    # config.tools.pendingCustomization back) and the VM stays off
    vm=DC0_H0_VM0; sim power $vm off >/dev/null 2>&1; to=$(other_host $vm)
    V migrate $vm --cold --to "$to" --ip 4000=2001:db8::5/64,2001:db8::1; rc=$?
    check "esx guest-ip: an IPv6 --ip: the simulator takes the customization (pending), $vm on $to, poweredOff (vcsim-check)" \
        sh -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && [ \"\$2\" = poweredOff ]" \
        _ "$(prop $vm host)" "$(prop $vm power)"
    vm=DC0_C0_RP0_VM0; from=$(prop $vm host)
    V migrate $vm --to "$(other_host $vm)" --live --ip 4000=192.0.2.78/24; rc=$?
    check "esx guest-ip: --ip with a live move is refused in one line; $vm stays on $from" \
        sh -c "[ $rc -ne 0 ] && one_line_err() { [ \"\$(wc -l <'$CT/err')\" -eq 1 ] && grep -q -- '--ip needs a cold move' '$CT/err'; }; one_line_err && [ \"\$1\" = '$from' ]" _ "$(prop $vm host)"
    V migrate $vm --to "$(other_host $vm)" --ip 4000=192.0.2.300/24; rc=$?
    check "esx guest-ip: a bad address is a usage error in one line naming it" \
        sh -c "[ $rc -eq 2 ] && [ \"\$(wc -l <'$CT/err')\" -eq 1 ] && grep -q \"'192.0.2.300' is not an IPv4 or IPv6 address\" '$CT/err'"
    guest_ip_every_nic
    guest_ip_repair
}
# --dry-run shows --ip; check and migrate refuse an --ip that misses one of
# the VM's adapters before anything moves (vSphere rewrites them all)
guest_ip_every_nic() {
    vm=DC0_H0_VM0; from=$(prop $vm host); to=$(other_host $vm)
    V migrate $vm --cold --to "$to" --ip 4000=192.0.2.79/24,192.0.2.1 --dry-run; rc=$?
    check "esx guest-ip: --dry-run's equivalent command has --ip 4000=192.0.2.79/24,192.0.2.1; $vm stays on $from" \
        sh -c "[ $rc -eq 0 ] && grep -q -- 'vmshift migrate .* --ip 4000=192.0.2.79/24,192.0.2.1' '$CT/out' && grep -q 'guest: *NIC 4000 -> 192.0.2.79/24 gateway 192.0.2.1' '$CT/out' && [ \"\$1\" = '$from' ]" _ "$(prop $vm host)"
    sim add-nic $vm DC0_DVPG1 >/dev/null 2>&1
    key2=$(sim nics $vm | awk -F '\t' '$1 != 4000 { print $1; exit }')
    V check $vm --cold --to "$to" --ip 4000=192.0.2.79/24; rc=$?
    check "esx guest-ip: check with --ip for adapter 4000 only (the simulator shows a 2nd adapter ${key2:-none}): NOT OK, one finding naming adapter $key2" \
        sh -c "[ -n '$key2' ] && [ $rc -ne 0 ] && [ \"\$(grep -c 'no --ip for network adapter' '$CT/out')\" -eq 1 ] && grep -q \"no --ip for network adapter $key2 \" '$CT/out'"
    V migrate $vm --cold --to "$to" --ip 4000=192.0.2.79/24; rc=$?
    check "esx guest-ip: migrate with an adapter lacking --ip fails before the move naming adapter $key2; the simulator keeps $vm on $from" \
        sh -c "[ $rc -ne 0 ] && grep -q \"validation failed.*no --ip for network adapter $key2 \" '$CT/err' && [ \"\$1\" = '$from' ]" _ "$(prop $vm host)"
    V check $vm --cold --to "$to" --ip 4000=192.0.2.79/24 --ip "$key2=198.51.100.7/24"; rc=$?
    check "esx guest-ip: check with an --ip for both adapters is OK" test $rc -eq 0
    V check $vm --cold --to "$to" --ip 4000=192.0.2.79/24 --ip 4999=198.51.100.7/24; rc=$?
    check "esx guest-ip: check with --ip for an adapter the VM lacks names it" \
        sh -c "[ $rc -ne 0 ] && grep -q \"has no network adapter '4999'\" '$CT/out'"
}
# a job killed while its CustomizeVM_Task is in flight (the simulator holds
# that call, then drops it unanswered): the VM moved, powered off, without
# its customization; `job repair` customizes it and starts it (--start)
guest_ip_repair() {
    vm=DC0_C0_RP0_VM1; sim power $vm off >/dev/null 2>&1; to=$(other_host $vm)
    ctl "delay?method=CustomizeVM_Task&ms=15000&count=1"
    ctl "http?method=CustomizeVM_Task&mode=close"
    "$VMSHIFT" --config "$CT/vmshift.conf" --plugin-dir "$CT/plugins" --state-dir "$CT/state" \
        migrate $vm --cold --to "$to" --start --ip 4000=192.0.2.88/24,192.0.2.1 >"$CT/bg.out" 2>"$CT/bg.err" &
    pid=$! # vmshift itself: the kill below is that of the process
    i=0
    while ! grep -q "adapter 4000: 192.0.2.88" "$CT/bg.err" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 1 # CustomizeVM_Task is on its way (held by the simulator)
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    ctl reset
    id=$(last_job V)
    V jobs
    check "esx guest-ip repair: killed during CustomizeVM_Task: job $id interrupted; the simulator has $vm on $to, poweredOff, without the guest address 192.0.2.88" \
        sh -c "grep -q '^$id .*interrupted' '$CT/out' && [ \"\$1\" = '$to' ] && [ \"\$2\" = poweredOff ] && [ \"\$3\" != 192.0.2.88 ]" \
        _ "$(prop $vm host)" "$(prop $vm power)" "$(sim guest $vm | sed -n 's/^ip=//p')"
    V job repair "$id"; rc=$?
    check "esx guest-ip repair: job repair $id customizes and starts $vm: on $to, poweredOn, guest address 192.0.2.88 (vcsim-check)" \
        sh -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && [ \"\$2\" = poweredOn ] && [ \"\$3\" = 192.0.2.88 ]" \
        _ "$(prop $vm host)" "$(prop $vm power)" "$(sim guest $vm | sed -n 's/^ip=//p')"
}

claims_run esx
echo "1..$n"
exit $fail
