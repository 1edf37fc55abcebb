#!/bin/sh
# The claims suite: every row of tests/claims/claims.tsv on every backend it
# names, through the `vmshift` command, checked in the peer's own state.
# A backend listed as lacking a behaviour must answer with its exact "does
# not support" line. Skeleton rows run here (the peer: the skeleton's state
# file, and for the journal rows the journal file, read-only); Hyper-V rows
# in tests/claims/hyperv.py (the peer: the simulator's /state); kvm-qmp,
# kvm-libvirt and esx rows in tests/claims/kvm.sh, libvirt.sh and esx.sh.
# A row naming a backend with no test is a failure. Prints TAP.
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-claims.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT INT TERM
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { what=$1; shift; if "$@"; then ok "$what"; else notok "$what" "$(cat "$T/out" "$T/err" 2>/dev/null | tail -5)"; fi; }

# ---- skeleton: the peer is its state file -----------------------------------
SK=$T/sk
skeleton_setup() {
    [ -f "$B/tests/skeleton/.libs/skeleton.so" ] || return 1
    mkdir -p "$SK/plugins" "$SK/etc/backends.d"
    chmod 755 "$SK" "$SK/plugins" "$SK/etc" "$SK/etc/backends.d"
    cp "$B/tests/skeleton/.libs/skeleton.so" "$SK/plugins/" && chmod 755 "$SK/plugins/skeleton.so"
    : >"$SK/etc/vmshift.conf"
    cat >"$SK/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha;app2@alpha
state-file=$SK/demo.state
transfer-seconds=0
[backend slow]
plugin=skeleton
hosts=alpha;beta
vms=s1@alpha
state-file=$SK/slow.state
transfer-seconds=30
[backend other]
plugin=skeleton
hosts=gamma
vms=o1@gamma;o2@gamma
state-file=$SK/other.state
transfer-seconds=0
EOC
}
SV() { "$VMSHIFT" --config "$SK/etc/vmshift.conf" --plugin-dir "$SK/plugins" --state-dir "$SK/state" "$@" >"$T/out" 2>"$T/err"; }
# sk_get VM KEY: the state file's value, the hypervisor's own view
sk_get() { sed -n "/^\[vm $1\]/,/^\[/s/^$2=//p" "$SK/demo.state"; }
sk_set_hv() { # the stand-in hypervisor's switches ([hypervisor] ignore=...)
    sed -i '/^\[hypervisor\]/,$d' "$SK/demo.state"
    [ -n "$1" ] && printf '[hypervisor]\nignore=%s\n' "$1" >>"$SK/demo.state"
    return 0
}
sk_one_line() { [ "$(wc -l <"$T/err")" -eq 1 ]; }
sk_last_job() { SV --json jobs && python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"]; print(max(x["id"] for x in j))' "$T/out"; }

claim_skeleton_move_host() {
    SV migrate web1 --to beta
    check "skeleton move-host: migrate web1 --to beta: the state file has web1 on beta" \
        test "$(sk_get web1 host)" = beta
}
claim_skeleton_verified() {
    sk_set_hv host
    SV migrate app1 --to beta; rc=$?
    check "skeleton verified: the hypervisor ignores the host: the job fails, naming it, app1 stays on alpha" \
        sh -c "[ $rc -ne 0 ] && grep -q \"it is on 'alpha', not 'beta'\" '$T/err' && [ \"\$(sed -n '/^\[vm app1\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ]"
    sk_set_hv ""
    SV migrate app1 --to beta
    id=$(sk_last_job)
    SV --json job show "$id"
    check "skeleton verified: job show lists what was verified (host,power,disks,nics) and app1 is on beta" \
        sh -c "grep -q '\"verified\"' '$T/out' && grep -q 'host,power,disks,nics' '$T/out' && [ \"\$(sed -n '/^\[vm app1\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = beta ]"
}
claim_skeleton_cold_start() {
    sed -i '/^\[vm db1\]/,/^\[/s/^power=.*/power=stopped/' "$SK/demo.state"
    SV migrate db1 --cold --to beta --start
    check "skeleton cold-start: db1 stopped, migrate --cold --start: running on beta in the state file" \
        sh -c "[ \"\$(sed -n '/^\[vm db1\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = beta ] && [ \"\$(sed -n '/^\[vm db1\]/,/^\[/s/^power=//p' '$SK/demo.state')\" = running ]"
}
claim_skeleton_option_unknown() {
    SV migrate app2 --to beta --option bogus-key=1; rc=$?
    check "skeleton option-unknown: refused naming 'bogus-key'; app2 still on alpha" \
        sh -c "[ $rc -ne 0 ] && grep -q \"unknown option 'bogus-key'\" '$T/out' '$T/err' && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ]"
}
claim_skeleton_transfer_san_path_unsupported() {
    SV migrate app2 --to beta --transfer san --path /srv/other; rc=$?
    check "skeleton transfer-san-path: does not support it, in one finding line; app2 still on alpha" \
        sh -c "[ $rc -ne 0 ] && grep -q 'skeleton: --transfer san is not supported (this backend has no transfer choice)' '$T/out' '$T/err' && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ]"
}
claim_skeleton_dry_run() {
    SV migrate app2 --to beta --dry-run; rc=$?
    check "skeleton dry-run: prints the plan (exit 0); app2 still on alpha" \
        sh -c "[ $rc -eq 0 ] && grep -q 'vmshift migrate' '$T/out' && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ]"
}
claim_skeleton_check_stops() {
    SV migrate app2 --cold --to beta; rc=$?
    check "skeleton check-stops: --cold on a running VM: check's error stops migrate; app2 still on alpha, running" \
        sh -c "[ $rc -ne 0 ] && grep -q 'check running:' '$T/out' '$T/err' && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ] && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^power=//p' '$SK/demo.state')\" = running ]"
}
claim_skeleton_cross_backend() {
    sed -i '/^\[vm o1\]/,/^\[/s/^power=running/power=stopped/' "$SK/other.state"
    mkdir -p "$SK/other.state.data/srv/vms/o1"
    head -c 1048576 /dev/urandom >"$SK/other.state.data/srv/vms/o1/disk0.img"
    SV migrate other:o1 --to demo:beta; rc=$?
    check "skeleton cross-backend: other:o1 --to demo:beta: defined at demo on beta, its disk's sha256sum the source's; the source o1 still on gamma, off" \
        sh -c "[ $rc -eq 0 ] && [ \"\$(sed -n '/^\[vm o1\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = beta ] && [ \"\$(sha256sum <'$SK/other.state.data/srv/vms/o1/disk0.img')\" = \"\$(sha256sum <'$SK/demo.state.data/srv/vms/o1/disk0.img')\" ] && [ \"\$(sed -n '/^\[vm o1\]/,/^\[/s/^power=//p' '$SK/other.state')\" = stopped ]"
}
claim_skeleton_cross_backend_rollback() {
    sed -i '/^\[vm o2\]/,/^\[/s/^power=running/power=stopped/' "$SK/other.state"
    mkdir -p "$SK/other.state.data/srv/vms/o2"
    head -c 524288 /dev/urandom >"$SK/other.state.data/srv/vms/o2/disk0.img"
    s0=$(sha256sum <"$SK/other.state.data/srv/vms/o2/disk0.img")
    printf '[hypervisor]\nfault=corrupt@import\n' >>"$SK/demo.state"
    SV migrate other:o2 --to demo:beta; rc=$?
    sed -i '/^fault=/d' "$SK/demo.state"
    check "skeleton cross-backend-rollback: a byte changed by demo's import: the job fails, demo has no o2 nor its files, other's o2 unchanged" \
        sh -c "[ $rc -ne 0 ] && ! grep -q '^\[vm o2\]' '$SK/demo.state' && [ ! -e '$SK/demo.state.data/srv/vms/o2/disk0.img' ] && [ \"\$(sha256sum <'$SK/other.state.data/srv/vms/o2/disk0.img')\" = '$s0' ]"
}
claim_skeleton_acl_unsupported_unsupported() {
    SV acl recreate app2; rc=$?
    check "skeleton acl-unsupported: the exact does-not-support line" \
        sh -c "[ $rc -ne 0 ] && grep -q \"backend 'demo' (plugin skeleton 1.0.0) does not support 'recreate_acl'\" '$T/err'"
}

claim_skeleton_guest_ip_unsupported() {
    SV check app2 --to beta --cold --ip nic0=192.0.2.5/24; rc=$?
    check "skeleton guest-ip: check --ip answers 'backend demo does not support --ip' in one line; app2 still on alpha" \
        sh -c "[ $rc -ne 0 ] && [ \"\$(cat '$T/err')\" = 'vmshift: backend demo does not support --ip' ] && [ \"\$(sed -n '/^\[vm app2\]/,/^\[/s/^host=//p' '$SK/demo.state')\" = alpha ]"
}
claim_skeleton_tables() {
    # the state file's VMs of backend demo, as "VM HOST" lines, sorted
    awk -F= '/^\[vm / {vm = $0; sub(/^\[vm /, "", vm); sub(/\]$/, "", vm)} /^host=/ && vm {print vm, $2; vm = ""}' \
        "$SK/demo.state" | sort >"$T/want"
    SV vms --backend demo -o VM,host -n -r; rc=$?
    sort "$T/out" >"$T/got"
    check "skeleton tables: vms -o VM,host -n -r: no header, one space between columns, the state file's VMs and hosts" \
        sh -c "[ $rc -eq 0 ] && [ -s '$T/want' ] && cmp -s '$T/want' '$T/got'"
    SV vms --backend demo -o host,vm; rc=$?
    check "skeleton tables: -o host,vm puts the columns in that order under a header" \
        sh -c "[ $rc -eq 0 ] && head -1 '$T/out' | grep -Eq '^HOST +VM *\$' && grep -Eq '^(alpha|beta) +web1 *\$' '$T/out'"
    SV vms -o vm,bogus; rc=$?
    check "skeleton tables: an unknown column is a usage error (exit 2) in one line listing the valid ones" \
        sh -c "[ $rc -eq 2 ] && [ \"\$(wc -l <'$T/err')\" -eq 1 ] && grep -q 'bogus' '$T/err' && grep -qi 'host' '$T/err'"
}
claim_skeleton_journal_check() {
    SV journal check; rc=$?
    check "skeleton journal-check: the journal of this run is ok (exit 0)" \
        sh -c "[ $rc -eq 0 ] && grep -q 'ok (schema version' '$T/out'"
    mkdir -p "$T/bad"
    chmod 755 "$T/bad"
    # a journal cut in the middle (a copy: the run's own stays intact)
    size=$(wc -c <"$SK/state/journal.db")
    head -c $((size / 2)) "$SK/state/journal.db" >"$T/bad/journal.db"
    "$VMSHIFT" --config "$SK/etc/vmshift.conf" --plugin-dir "$SK/plugins" --state-dir "$T/bad" journal check >"$T/out" 2>"$T/err"; rc=$?
    check "skeleton journal-check: a truncated journal: exit 1, one line saying so" \
        sh -c "[ $rc -eq 1 ] && [ \"\$(wc -l <'$T/err')\" -eq 1 ] && grep -q 'truncated' '$T/err' && [ -s '$T/bad/journal.db' ] && [ \$(wc -c <'$T/bad/journal.db') -eq $((size / 2)) ]"
}
claim_skeleton_journal_export() {
    SV journal export; rc=$?
    # the journal file itself, read-only, is the peer here
    want=$(sqlite3 -readonly "$SK/state/journal.db" 'SELECT count(*) FROM jobs' 2>/dev/null)
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["jobs"]) if all("events" in j for j in d["jobs"]) else -1)' "$T/out" 2>/dev/null)
    check "skeleton journal-export: one JSON document with every job ($want in the journal file) and its events" \
        sh -c "[ $rc -eq 0 ] && [ -n '$want' ] && [ '$want' -gt 0 ] && [ '$got' = '$want' ]"
}
claim_skeleton_repair_choices() {
    # a slow backend whose migration a kill -9 interrupts in its transfer
    SVS() { "$VMSHIFT" --config "$SK/etc/vmshift.conf" --plugin-dir "$SK/plugins" --state-dir "$SK/state" "$@"; }
    prev=$(sqlite3 -readonly "$SK/state/journal.db" 'SELECT max(id) FROM jobs' 2>/dev/null)
    setsid "$VMSHIFT" --config "$SK/etc/vmshift.conf" --plugin-dir "$SK/plugins" --state-dir "$SK/state" \
        migrate s1 --to beta >/dev/null 2>&1 &
    bg=$!
    id=
    for i in $(seq 100); do
        id=$(sqlite3 -readonly "$SK/state/journal.db" "SELECT id FROM jobs WHERE vm='s1' AND phase='transfer' AND id > ${prev:-0}" 2>/dev/null)
        [ -n "$id" ] && break
        sleep 0.1
    done
    kill -9 -- "-$bg" 2>/dev/null || kill -9 "$bg" 2>/dev/null
    wait "$bg" 2>/dev/null
    copy=$(grep -c '^\[copy s1\]' "$SK/slow.state")
    SV job repair "$id" --dismiss; rc=$?
    check "skeleton repair-choices: --dismiss without --reason is a usage error in one line; the job stays to repair" \
        sh -c "[ -n '$id' ] && [ $rc -eq 2 ] && [ \"\$(wc -l <'$T/err')\" -eq 1 ] && grep -q -- '--reason' '$T/err'"
    SV job repair "$id"; rc=$?
    SV --json job show "$id"
    check "skeleton repair-choices: job repair of the interrupted move rolls it back: s1 on alpha only, the partial copy gone (state file)" \
        sh -c "[ $rc -eq 0 ] && [ '$copy' = 1 ] && grep -q '\"repair\":\"rolled-back\"' '$T/out' && [ \"\$(sed -n '/^\[vm s1\]/,/^\[/s/^host=//p' '$SK/slow.state')\" = alpha ] && ! grep -q '^\[copy s1\]' '$SK/slow.state'"
}
claim_skeleton_daemon_submit() {
    D=$B/daemon/vmshiftd
    if [ ! -x "$D" ]; then n=$((n + 1)); echo "ok $n - skeleton daemon-submit # SKIP vmshiftd not built"; return; fi
    rm -f "$T/d.sock"
    "$D" --config "$SK/etc/vmshift.conf" --plugin-dir "$SK/plugins" --state-dir "$SK/state" \
        --socket "$T/d.sock" --data-dir "$S/data" >"$T/d.log" 2>&1 &
    dpid=$!
    for i in $(seq 100); do [ -S "$T/d.sock" ] && break; sleep 0.1; done
    # s1 of backend slow (30 s transfers), detached: the command returns
    # while the job runs, so only the daemon can finish it
    SV --daemon "$T/d.sock" migrate s1 --to beta --detach; rc=$?
    id=$(grep -o '[0-9][0-9]*' "$T/out" | head -1)
    st0=$(sqlite3 -readonly "$SK/state/journal.db" "SELECT state FROM jobs WHERE id=${id:-0}" 2>/dev/null)
    h0=$(sed -n '/^\[vm s1\]/,/^\[/s/^host=//p' "$SK/slow.state")
    for i in $(seq 900); do
        [ "$(sed -n '/^\[vm s1\]/,/^\[/s/^host=//p' "$SK/slow.state")" = beta ] && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    timeout 30 curl -sS --unix-socket "$T/d.sock" "http://localhost/api/v1/jobs" >"$T/api" 2>&1
    kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
    check "skeleton daemon-submit: migrate --daemon SOCKET --detach returns with job $id running and s1 still on $h0; vmshiftd finishes it: its API lists it, the state file has s1 on beta" \
        sh -c "[ $rc -eq 0 ] && [ -n '$id' ] && { [ '$st0' = running ] || [ '$st0' = queued ]; } && [ '$h0' = alpha ] && grep -q '\"s1\"' '$T/api' && [ \"\$(sed -n '/^\[vm s1\]/,/^\[/s/^host=//p' '$SK/slow.state')\" = beta ]"
}

# ---- the table ----------------------------------------------------------------
grep -v '^#' "$S/tests/claims/claims.tsv" | sed '/^$/d' >"$T/rows"
have_skeleton=no
skeleton_setup && have_skeleton=yes
hv_args=
# run_row BACKEND ID FN-SUFFIX: the backend's test of the row, or a failure
run_row() {
    case $1 in
        skeleton)
            if [ $have_skeleton = no ]; then n=$((n + 1)); echo "ok $n - skeleton $2 # SKIP skeleton plugin not built"
            elif command -v "claim_skeleton_$3" >/dev/null; then "claim_skeleton_$3" </dev/null
            else notok "skeleton $2: no test of this claim in tests/claims/run.sh"; fi ;;
        hyperv) hv_args="$hv_args $3" ;;
        kvm-qmp | kvm-libvirt | esx) ;; # tests/claims/kvm.sh, libvirt.sh, esx.sh
        *) notok "$1 $2: no test of this claim for backend $1 in tests/claims" ;;
    esac
}
exec 3<"$T/rows"
while IFS='	' read -r id does lacks <&3; do
    fn=$(echo "$id" | tr - _)
    for be in $(echo "$does" | tr , ' '); do [ "$be" = - ] || run_row "$be" "$id" "$fn"; done
    for be in $(echo "$lacks" | tr , ' '); do [ "$be" = - ] || run_row "$be" "$id" "${fn}_unsupported"; done
done
exec 3<&-

# Hyper-V: the rows collected above, in tests/claims/hyperv.py, renumbered
if [ -n "$hv_args" ]; then
    # shellcheck disable=SC2086
    timeout 600 python3 "$S/tests/claims/hyperv.py" $hv_args </dev/null >"$T/hv" 2>&1
    while IFS= read -r l; do
        case $l in
            "ok "*) n=$((n + 1)); echo "ok $n ${l#ok }" ;;
            "not ok "*) n=$((n + 1)); fail=1; echo "not ok $n ${l#not ok }" ;;
            "SKIP "*) n=$((n + 1)); echo "ok $n - hyperv # SKIP ${l#SKIP }" ;;
            *) echo "# $l" ;;
        esac
    done <"$T/hv"
fi
echo "1..$n"
exit $fail
