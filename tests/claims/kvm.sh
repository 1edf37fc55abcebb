#!/bin/bash
# The claims suite on kvm over QMP: every row of tests/claims/claims.tsv
# that names kvm-qmp, through the `vmshift` command against real QEMU (TCG)
# on two local run-directory hosts (tests/kvm/kvm-lib.sh), checked in QEMU's
# own view: which host's QEMU process runs the VM, and QMP queries to it
# (query-status, query-block for each disk's open file, "info network" for
# each NIC's netdev) through tests/claims/qmp.py. Prints TAP.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
. "$VMSHIFT_SRCDIR/tests/claims/lib.sh"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
kvm_setup
CT=$KT
QMP="$S/tests/claims/qmp.py"
mkdir -p "$KT/state"
printf '[vmshift]\nstate-dir=%s\n\n[backend kvm]\nplugin=kvm\nhosts=hostA=%s, hostB=%s\n' \
    "$KT/state" "$KT/a" "$KT/b" >"$KT/vmshift.conf"
V() { timeout 300 "$VMSHIFT" --config "$KT/vmshift.conf" --plugin-dir "$B/plugins/kvm/.libs" "$@" >"$KT/out" 2>"$KT/err"; }
# both hosts: network lan (user), and backup (user, another subnet)
for h in a b; do
    printf '[network lan]\nnetdev=user\n[network backup]\nnetdev=user,net=10.0.3.0/24\n' >"$KT/$h/networks.conf"
done

# QEMU's own view of VM $2 on host dir $1
q() { timeout 40 python3 "$QMP" "$1/vms/$2/qmp.sock" "${@:3}"; }
status_on() { q "$1" "$2" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
# the host dir whose QEMU runs VM $1 (QMP answers "running"), or nothing
where() { for h in a b; do running_on "$KT/$h" "$1" && [ "$(status_on "$KT/$h" "$1")" = running ] && echo "$h"; done; }
other() { [ "$1" = a ] && echo b || echo a; }
hostname_of() { [ "$1" = a ] && echo hostA || echo hostB; }
disk_file() { # the image QEMU on host dir $1 has open for disk $3 of VM $2
    q "$1" "$2" query-block | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b.get("qdev", "").startswith("/machine/peripheral/%s-dev" % sys.argv[1]) and "inserted" in b:
        print(b["inserted"]["file"])' "$3"
}
nic_info() { q "$1" "$2" human-monitor-command '{"command-line":"info network"}' | tr -d '\r'; }

mkdir -p "$KT/a/images/moved" "$KT/b/images/moved"
timeout 60 qemu-img create -q -f qcow2 "$KT/a/images/qd.qcow2" 64M
define_vm "$KT/a" qc "" "[nic net0]
network=lan
mac=52:54:00:cc:00:01"
define_vm "$KT/a" qd "" "[disk vda]
path=$KT/a/images/qd.qcow2
format=qcow2
[nic net0]
network=lan
mac=52:54:00:cc:00:02"
timeout 120 "$DRIVE" start "$KT/a" qc >/dev/null
timeout 120 "$DRIVE" start "$KT/a" qd >/dev/null
wait_console "$KT/a" qc HEARTBEAT 120
wait_console "$KT/a" qd HEARTBEAT 120

claim_move_host() {
    from=$(where qc); to=$(other "$from")
    V migrate qc --to "$(hostname_of "$to")"; rc=$?
    check "kvm-qmp move-host: migrate qc --to $(hostname_of "$to"): QMP on $(hostname_of "$to") says running, no QEMU on the source, the guest beats there" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && alive_on '$KT/$to' qc" _ "$(where qc)"
}
claim_verified() {
    from=$(where qc); to=$(other "$from")
    V migrate qc --to "$(hostname_of "$to")" --network net0=backup; rc=$?
    id=$(last_job V)
    V --json job show "$id"
    check "kvm-qmp verified: job show lists verified=host,power,disks,nics; QMP on $(hostname_of "$to") runs qc with net0 on 10.0.3.0 (backup)" \
        bash -c "[ $rc -eq 0 ] && grep -q '\"verified\":\"host,power,disks,nics\"' '$KT/out' && [ \"\$1\" = '$to' ] && grep -q 'net=10.0.3.0' <<<\"\$2\"" \
        _ "$(where qc)" "$(nic_info "$KT/$to" qc net0)"
}
claim_cold_start() {
    from=$(where qc); to=$(other "$from")
    q "$KT/$from" qc quit >/dev/null 2>&1
    for i in $(seq 50); do running_on "$KT/$from" qc || break; sleep 0.2; done
    V migrate qc --cold --to "$(hostname_of "$to")" --start; rc=$?
    check "kvm-qmp cold-start: qc stopped, migrate --cold --start: QMP on $(hostname_of "$to") says running, gone from the source" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && ! test -e '$KT/$from/vms/qc/vm.conf'" _ "$(where qc)"
    wait_console "$KT/$to" qc HEARTBEAT 120
}
claim_option_unknown() {
    from=$(where qc)
    V migrate qc --to "$(hostname_of "$(other "$from")")" --option bogus-key=1; rc=$?
    check "kvm-qmp option-unknown: refused naming 'bogus-key'; QMP: qc still runs on $(hostname_of "$from")" \
        bash -c "[ $rc -ne 0 ] && grep -q \"unknown [a-z ]*option 'bogus-key'\" '$KT/out' '$KT/err' && [ \"\$1\" = '$from' ]" _ "$(where qc)"
}
claim_transfer_san_path() {
    from=$(where qd); f0=$(disk_file "$KT/$from" qd vda)
    V migrate qd --to "$(hostname_of "$(other "$from")")" --transfer san --path "$KT/moved"; rc=$?
    check "kvm-qmp transfer-san-path: refused in one error line; QMP: qd still runs on $(hostname_of "$from") from $f0" \
        bash -c "[ $rc -ne 0 ] && [ \"\$(grep -c '^vmshift: ' '$KT/err')\" -eq 1 ] && grep -q -- '--transfer san keeps the disks where they are' '$KT/err' && [ \"\$1\" = '$from' ] && [ \"\$2\" = '$f0' ]" \
        _ "$(where qd)" "$(disk_file "$KT/$from" qd vda)"
}
claim_dry_run() {
    from=$(where qc)
    V migrate qc --to "$(hostname_of "$(other "$from")")" --dry-run; rc=$?
    check "kvm-qmp dry-run: prints the plan (exit 0); QMP: qc still runs on $(hostname_of "$from")" \
        bash -c "[ $rc -eq 0 ] && grep -q 'vmshift migrate' '$KT/out' && [ \"\$1\" = '$from' ]" _ "$(where qc)"
}
claim_check_stops() {
    from=$(where qc)
    V migrate qc --cold --to "$(hostname_of "$(other "$from")")"; rc=$?
    check "kvm-qmp check-stops: --cold on a running VM: check's error stops migrate; QMP: qc runs on $(hostname_of "$from")" \
        bash -c "[ $rc -ne 0 ] && grep -q 'validation failed' '$KT/err' && [ \"\$1\" = '$from' ]" _ "$(where qc)"
}
claim_placement() {
    from=$(where qd); to=$(other "$from")
    V migrate qd --to "$(hostname_of "$to")" --disk-path "vda=$KT/$to/images/moved" --network net0=backup; rc=$?
    check "kvm-qmp placement: migrate qd --disk-path vda=DIR --network net0=backup: QMP on $(hostname_of "$to") has vda open at DIR/qd.qcow2 and net0 on 10.0.3.0" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && [ \"\$2\" = '$KT/$to/images/moved/qd.qcow2' ] && grep -q 'net=10.0.3.0' <<<\"\$3\"" \
        _ "$(where qd)" "$(disk_file "$KT/$to" qd vda)" "$(nic_info "$KT/$to" qd net0)"
}
claim_guest_ip_unsupported() {
    from=$(where qc)
    V check qc --to "$(hostname_of "$(other "$from")")" --cold --ip net0=192.0.2.5/24; rc=$?
    check "kvm-qmp guest-ip: check --ip answers 'backend kvm does not support --ip' in one line; qc still runs on $(hostname_of "$from")" \
        bash -c "[ $rc -ne 0 ] && [ \"\$(cat '$KT/err')\" = 'vmshift: backend kvm does not support --ip' ] && [ \"\$1\" = '$from' ]" _ "$(where qc)"
}

claims_run kvm-qmp
echo "1..$n"
exit $fail
