#!/bin/sh
# bulk: a wave of many VMs at a concurrency well below its size (the host
# keeps only each ended job's outcome, host_bulk_retire): every VM is
# accounted for exactly once -- moved, failed or skipped -- in the report,
# in --json (vms, jobs) and in the skeleton's state file (the peer); then
# --reverse brings back exactly the moved ones. No timing. (Peak memory is
# not checked here: the skeleton rereads its whole state file per call, so
# its own memory grows with the number of VMs; bench/bulk measures it.)
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
JSON=$B/tests/host/json-check
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-bulkmany.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ]; then echo "1..0 # SKIP skeleton plugin not built"; exit 0; fi
N=40
mkdir -p "$T/plugins" "$T/state"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/"
names() { i=0; while [ $i -lt $N ]; do echo "vm$i"; i=$((i + 1)); done; }
printf '[backend sk]\nplugin=skeleton\nhosts=alpha;beta\nvms=%s\ntransfer-seconds=0\nstate-file=%s\n' \
    "$(names | sed 's/$/@alpha/' | paste -sd';')" "$T/sk.state" >"$T/vmshift.conf"
V() { "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
# on HOST: the VMs the state file puts there, sorted
on() { awk -v h="host=$1" '/^\[vm / { v = substr($2, 1, length($2) - 1) } $0 == h { print v }' "$T/sk.state" | sort; }

V vms >/dev/null 2>"$T/err" || { notok "skeleton state" "$(cat "$T/err")"; echo "1..$n"; exit 1; }
# the hypervisor refuses the prepare call of two moves (they fail, nothing changes)
printf '[hypervisor]\nfault=error@prepare\nfault-count=2\n' >>"$T/sk.state"
grep -c '^\[hypervisor\]' "$T/sk.state" | grep -qx 1 \
    || { notok "one [hypervisor] group in the state file" "$(grep -n hypervisor "$T/sk.state")"; echo "1..$n"; exit 1; }
{
    printf '[bulk]\nmax-per-backend = 3\nmax-per-host = 3\n[wave 1]\n'
    printf 'vms = %s;sk:ghost\nto = beta\ntype = live\n' "$(names | sed 's/^/sk:/' | paste -sd';')"
} >"$T/plan"

V --json bulk --force "$T/plan" >"$T/out" 2>"$T/err"; rc=$?
get() { "$JSON" "$1" <"$T/out"; }
[ $rc -ne 0 ] && "$JSON" <"$T/out" && [ "$(get moved)" = 38 ] && [ "$(get failed)" = 2 ] && [ "$(get skipped)" = 1 ] \
    && ok "--json bulk: 38 moved, 2 failed, 1 skipped (exit $rc)" \
    || notok "--json bulk counts" "rc=$rc" "$(head -c 600 "$T/out")" "$(tail -3 "$T/err")"

# each VM once in vms[], in plan order; moved/failed with their own job, whose
# record is in jobs[] with the same VM and its end state
: >"$T/moved"; : >"$T/failed"; bad=
i=0
while [ $i -le $N ]; do
    vm=$(get vms.$i.vm) outcome=$(get vms.$i.outcome) job=$(get vms.$i.job)
    want=sk:vm$i; [ $i -eq $N ] && want=sk:ghost
    [ "$vm" = "$want" ] || bad="$bad vms.$i.vm=$vm"
    case $outcome in
    moved | failed)
        echo "${vm#sk:}" >>"$T/$outcome"
        echo "$job" >>"$T/jobs"
        k=0 found=
        while [ $k -lt $N ] && [ -z "$found" ]; do
            [ "$(get jobs.$k.id)" = "$job" ] && found=$k
            k=$((k + 1))
        done
        if [ -z "$found" ]; then bad="$bad no-jobs-record-$job"
        else
            st=$(get jobs.$found.state)
            { [ "$outcome" = moved ] && [ "$st" = succeeded ]; } || { [ "$outcome" = failed ] && [ "$st" = failed ]; } \
                || bad="$bad job$job=$st/$outcome"
        fi ;;
    skipped) [ "$vm" = sk:ghost ] || bad="$bad skipped-$vm" ;;
    *) bad="$bad $vm:$outcome" ;;
    esac
    i=$((i + 1))
done
[ -z "$(get vms.$((N + 1)))" ] && [ -z "$(get jobs.$N)" ] || bad="$bad extra-entries"
[ "$(sort -u "$T/jobs" | wc -l)" -eq $N ] || bad="$bad job-ids-not-distinct"
[ -z "$bad" ] && ok "--json: each VM once, in order, with its own job and that job's record" \
    || notok "--json vms/jobs" "$bad"

sort "$T/moved" >"$T/m"; sort "$T/failed" >"$T/f"
on beta >"$T/beta"; on alpha >"$T/alpha"
cmp -s "$T/m" "$T/beta" && cmp -s "$T/f" "$T/alpha" && [ "$(wc -l <"$T/beta")" -eq 38 ] \
    && ok "state file: the 38 moved VMs on beta, the 2 failed still on alpha" \
    || notok "peer's view differs from the report" "beta: $(paste -sd' ' "$T/beta")" "alpha: $(paste -sd' ' "$T/alpha")"

V bulk --force "$T/plan" --reverse >"$T/out" 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && grep -qx "bulk: 38 VM(s) moved, 0 failed, 3 skipped" "$T/out" \
    && [ "$(grep -c ': skipped: ' "$T/err")" -eq 3 ] \
    && ok "bulk --reverse: the 38 moved back, the 2 failed and the unknown VM skipped with a reason" \
    || notok "bulk --reverse report" "rc=$rc" "$(cat "$T/out")" "$(tail -5 "$T/err")"
[ "$(on alpha | wc -l)" -eq $N ] && [ -z "$(on beta)" ] \
    && ok "state file: all $N VMs back on alpha" || notok "after --reverse" "beta: $(on beta | paste -sd' ')"
echo "1..$n"
