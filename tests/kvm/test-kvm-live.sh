#!/bin/bash
# Live migration between two local hosts through the plugin (SDK), with the
# guest's heartbeat checked on the destination; network mapping; inventory;
# check_migration findings.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
kvm_setup

printf '[network lan]\nnetdev=user\n' > "$KT/a/networks.conf"
printf '[network lan]\nnetdev=user\n[network backup]\nnetdev=user,net=10.0.3.0/24\n' > "$KT/b/networks.conf"
define_vm "$KT/a" demo "dirty=64" "[nic net0]
network=lan
mac=52:54:00:00:00:01"
timeout 120 "$DRIVE" start "$KT/a" demo >/dev/null
check "guest boots on hostA" wait_console "$KT/a" demo HEARTBEAT 60

out=$(drive hosts 2>&1)
check "hosts: both qmp hosts ok, each with its CPU use (0-100%)" \
    bash -c 'test "$(grep -cE "^host host[AB] status=ok .* cpu-use=([0-9]|[1-9][0-9]|100)( |$)" <<<"$0")" = 2' "$out"
out=$(drive vms 2>&1)
check "inventory lists demo running on hostA" grep -q "vm demo host=hostA state=running" <<<"$out"
check "inventory shows NIC net0 on network lan" grep -q "nic net0 mac=52:54:00:00:00:01 network=lan" <<<"$out"

out=$(drive check demo --to hostB 2>&1)
check "check: no findings for a plain move" grep -q "^findings=0" <<<"$out"
printf '[network other]\nnetdev=user\n' > "$KT/b/networks.conf.new"
out=$(cd "$KT" && mv b/networks.conf b/networks.conf.keep && mv b/networks.conf.new b/networks.conf &&
      drive check demo --to hostB 2>&1; mv b/networks.conf.keep b/networks.conf)
check "check: NIC on a network missing at the destination is an error" \
    grep -q "finding error network-missing" <<<"$out"

wait_console "$KT/a" demo "DIRTY pass=1" 60
out=$(drive --journal "$KT/j1" migrate demo --to hostB 2>"$KT/err1")
check "live migration A->B succeeds" grep -q "^ok=1" <<<"$out"
diag "$(grep -E '^(tuning|total-time-ms|downtime-ms|transferred-bytes)=' <<<"$out" | tr '\n' ' ')"
check "guest alive on hostB after switchover (new heartbeat, no BUG)" alive_on "$KT/b" demo
check "source QEMU is gone and its definition removed" \
    bash -c "! test -e '$KT/a/vms/demo/vm.conf'"
check "job reports the VM on hostB" grep -q "^location=hostB" <<<"$out"
check "the plugin reported its tuning and why (TCG on a QEMU before 9.0)" \
    grep -q "^tuning-reason=TCG on QEMU [1-8] loses guest writes" <<<"$out"
check "so the source is paused and the destination runs at once in post-copy" \
    grep -q "^tuning=.*postcopy=on.*source paused for the transfer" <<<"$out"
check "the journal recorded the stages" grep -q "stage=done" "$KT/j1"

# back to A, with the NIC rewired to another network on the way out of B
printf '[network lan]\nnetdev=user\n[network backup]\nnetdev=user,net=10.0.4.0/24\n' > "$KT/a/networks.conf"
out=$(drive migrate demo --to hostA --network net0=backup 2>"$KT/err2")
check "live migration B->A with --network net0=backup succeeds" grep -q "^ok=1" <<<"$out"
check "guest alive on hostA again" alive_on "$KT/a" demo
check "definition on hostA has net0 on backup" grep -q "network=backup" "$KT/a/vms/demo/vm.conf"
pid=$(qemu_pid "$KT/a" demo)
check "QEMU on hostA runs the backup network's netdev" \
    grep -q "user,net=10.0.4.0/24,id=net0" <(tr '\0' '\n' < /proc/$pid/cmdline)
out=$(drive migrate demo --to hostB --network net9=lan 2>&1)
check "mapping an unknown NIC is refused and the VM stays" \
    bash -c "grep -q 'error=not-found' <<<'$out' && test -e '$KT/a/vms/demo/vm.conf' && ! test -e '$KT/b/vms/demo'"

# tcg-safe=false: the plugin's own live tuning (no probe before the start:
# pre-copy with post-copy armed, switched from QEMU's statistics of the
# first pass). QEMU 7.2 under TCG may lose guest writes on this path (QEMU
# commit 03bfc2188f), which is why it is not the default; the guest checks
# every page it rewrites (MEMCHECK, tests/guest/dirty.c), so what is
# asserted is the guest itself on the destination: new heartbeats, no
# kernel BUG, no lost write.
wait_console "$KT/a" demo "DIRTY pass=" 60
out=$(drive migrate demo --to hostB --option tcg-safe=false 2>"$KT/err3")
check "tcg-safe=false: live migration A->B succeeds, the source not paused" \
    bash -c 'grep -q "^ok=1" <<<"$0" && ! grep -q "source paused" <<<"$0"' "$out"
diag "$(grep -E '^(tuning|postcopy|postcopy-reason|total-time-ms|downtime-ms|wall-time-ms)=' <<<"$out" | tr '\n' ' ')"
check "  the guest runs on hostB (two new heartbeats, no kernel BUG or panic)" \
    env GUEST_BROKEN="BUG:|Oops|Kernel panic" bash -c 'alive_on "$0" demo' "$KT/b"
# its memory: every page the dirtier rewrites on hostB is checked against
# what it wrote on hostA. QEMU before 9.0 under TCG loses such writes on a
# live migration (the warning above; the reason tcg-safe=true is the
# default): there a loss is reported (SKIP, with the count), not failed.
lost=$(grep -c "MEMCHECK bad page" "$KT/b/vms/demo/console.log")
qmaj=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p;q')
if [ "$lost" != 0 ] && grep -q "tcg-safe=false: migrating a TCG guest live" "$KT/err3" &&
    [ "${qmaj:-0}" -lt 9 ]; then
    ok "  guest memory on hostB # SKIP QEMU $qmaj under TCG loses guest writes in a live migration (QEMU commit 03bfc2188f): the guest reported $lost lost page(s)"
else
    check "  guest memory intact on hostB (the dirtier's MEMCHECK found no lost write)" \
        test "$lost" = 0
fi
check "  the dirtier itself kept running there (a new DIRTY pass line)" \
    bash -c 'n0=$(grep -c "DIRTY pass=" "$0"); for i in $(seq 100); do
                 [ "$(grep -c "DIRTY pass=" "$0")" -gt "$n0" ] && exit 0; sleep 0.2; done; exit 1' \
    "$KT/b/vms/demo/console.log"
check "  it warned that the guest may lose writes" grep -q "tcg-safe=false: migrating a TCG guest live" "$KT/err3"
check "  QEMU runs the VM on hostB, not on hostA" \
    bash -c "running_on '$KT/b' demo && ! test -e '$KT/a/vms/demo/vm.conf'"
[ "$TAP_FAILED" = 0 ] || { diag "stderr:"; sed 's/^/# /' "$KT"/err* | tail -30; }
echo "1..$TAP_N"
exit 0
