#!/bin/sh
# The administrator's view through the vmshift command (TAP), issue 18:
# --version, `help CMD` = `CMD --help` with an EXAMPLES block, `vm show`,
# `networks`, `volumes` (checked against the skeleton plugin's own state
# file), `jobs` filters and `journal prune` (checked with sqlite3 on the
# journal), ASCII output under LC_ALL=C, names that are not UTF-8 or hold
# control characters (escaped on a terminal, U+FFFD in JSON), and the bash
# completion (data/bash-completion/vmshift).
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
JSON=$B/tests/host/json-check
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-admin.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ] || ! command -v sqlite3 >/dev/null; then
    echo "1..0 # SKIP needs the skeleton plugin and sqlite3"
    exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
cat > "$T/etc/vmshift.conf" <<EOC
[group pair]
hosts=demo:alpha;demo:beta
EOC
cat > "$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha
transfer-seconds=0
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
STATE=$T/state/backends/demo/skeleton.state
DB=$T/state/journal.db
# the skeleton's own view: KEY of [vm VM] in its state file
peer() { sed -n "/^\[vm $1\]/,/^\[/p" "$STATE" | sed -n "s/^$2=//p"; }
json_ok() { "$JSON" <"$1" 2>/dev/null; }

# ---- 1. --version, help CMD, EXAMPLES ----------------------------------------------
"$VMSHIFT" --version >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q '^vmshift [0-9]' "$T/out" && grep -q '^SDK [0-9]' "$T/out" \
    && grep -q '^plugin ABI [0-9]*\.[0-9]*$' "$T/out" && [ ! -s "$T/err" ]; then
    ok "--version: host, SDK and ABI versions, exit 0"
else notok "--version (exit $rc)" "$(cat "$T/out" "$T/err")"; fi

# the last block of a help text is "Examples:" followed only by vmshift commands
examples_last() {
    awk '/^Examples:$/ { ex = 1; bad = 0; next } ex && NF && $1 != "vmshift" { bad = 1 }
         END { exit !(ex && !bad) }' "$1"
}
"$VMSHIFT" help >"$T/out" 2>&1; rc=$?
if [ $rc -eq 0 ] && examples_last "$T/out"; then ok "help: exit 0, ends with Examples"
else notok "help (exit $rc)"; fi
cmds=$(V __complete commands | grep -v '^help$')
for c in $cmds; do
    subs=$(V __complete subcommands "$c")
    for s in ${subs:-""}; do
        # shellcheck disable=SC2086
        "$VMSHIFT" help $c $s >"$T/h1" 2>&1; rc1=$?
        # shellcheck disable=SC2086
        "$VMSHIFT" $c $s --help >"$T/h2" 2>&1; rc2=$?
        if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s "$T/h1" "$T/h2" && examples_last "$T/h1"
        then ok "help $c $s = $c $s --help, exit 0, ends with Examples"
        else notok "help $c $s (exit $rc1/$rc2)" "$(tail -5 "$T/h1")"; fi
    done
done
"$VMSHIFT" help frobnicate >"$T/out" 2>"$T/err"; rc=$?
check "help of an unknown command: exit 2, one line" \
    test $rc -eq 2 -a "$(wc -l <"$T/err")" -eq 1

# ---- 2. vm show, networks, volumes ------------------------------------------------------
V migrate web1 --to beta >"$T/out" 2>"$T/err" || notok "migrate web1" "$(cat "$T/err")"
id=$(sqlite3 "$DB" "SELECT id FROM jobs WHERE vm='web1' AND state='succeeded'")
V vm show web1 >"$T/out" 2>"$T/err"; rc=$?
host=$(peer web1 host)
if [ $rc -eq 0 ] && [ "$host" = beta ] && grep -q "^  host: *beta$" "$T/out" \
    && grep -q "^  state: *running$" "$T/out"; then ok "vm show: host as the plugin's state file says ($host)"
else notok "vm show host (exit $rc, state file: $host)" "$(cat "$T/out" "$T/err")"; fi
check "vm show: disk id, path and size" grep -q "^disk0 *$(peer web1 path)/web1/disk0.img *raw *10.0 GiB" "$T/out"
check "vm show: NIC id and network" grep -q "^net0 *- *lan" "$T/out"
check "vm show: the job that moved it (job $id)" \
    sh -c "sed -n '/^Jobs:/,\$p' '$T/out' | grep -q '^$id *migrate *demo *web1 *succeeded'"
V --json vm show web1 >"$T/out" 2>"$T/err"
if json_ok "$T/out" && grep -q '"id": *"disk0"' "$T/out" && grep -q '"network": *"lan"' "$T/out" \
    && grep -q "\"id\": *$id," "$T/out"; then ok "--json vm show: disks, NICs, jobs"
else notok "--json vm show" "$(head -c 400 "$T/out")"; fi
V vm show nosuchvm >"$T/out" 2>"$T/err"; rc=$?
check "vm show of an unknown VM: exit 1, one line" test $rc -eq 1 -a "$(wc -l <"$T/err")" -eq 1
V networks >"$T/out" 2>&1
check "networks: the skeleton's bridge" grep -q "^demo *lan *bridge *all *lan$" "$T/out"
V --json networks >"$T/out" 2>&1
check "--json networks: valid, named" sh -c "'$JSON' <'$T/out' && grep -q '\"name\": *\"lan\"' '$T/out'"
V volumes --host demo:beta >"$T/out" 2>&1
if grep -q "^demo *beta *vms *directory */srv/vms *512.0 GiB *1.0 TiB *no *yes" "$T/out" \
    && ! grep -q alpha "$T/out"; then ok "volumes --host demo:beta: beta's volume only"
else notok "volumes --host" "$(cat "$T/out")"; fi
V --json volumes --backend demo >"$T/out" 2>&1
check "--json volumes --backend: valid, both hosts" \
    sh -c "'$JSON' <'$T/out' && test \$(grep -c '\"is_default\": *true' '$T/out') -eq 2"
V volumes --backend nosuch >"$T/out" 2>"$T/err"; rc=$?
check "volumes --backend unknown: exit 1, one line" test $rc -ne 0 -a "$(wc -l <"$T/err")" -eq 1

# ---- 3. jobs filters, journal prune ---------------------------------------------------------
V migrate db1 --to beta >/dev/null 2>&1
V migrate app1 --to beta >/dev/null 2>&1
old=$(($(date +%s) - 10 * 86400))
# job of web1: failed ten days ago (the journal is the peer: set and read with sqlite3)
sqlite3 "$DB" "UPDATE jobs SET state='failed', created=$old, started=$old, ended=$old WHERE vm='web1'"
ids() { awk 'NR > 1 { print $4 }' "$T/out" | sort | tr '\n' ' '; }
V jobs --state failed >"$T/out" 2>&1
check "jobs --state failed: web1 only" test "$(ids)" = "web1 "
V jobs --since 7d >"$T/out" 2>&1
check "jobs --since 7d: app1 db1" test "$(ids)" = "app1 db1 "
V jobs --since "$(date -d @$((old - 86400)) +%Y-%m-%d)" >"$T/out" 2>&1
check "jobs --since DATE: all three" test "$(ids)" = "app1 db1 web1 "
V jobs --vm db1 --backend demo >"$T/out" 2>&1
check "jobs --vm db1 --backend demo: db1" test "$(ids)" = "db1 "
V jobs --vm demo:db1 >"$T/out" 2>&1
check "jobs --vm demo:db1: db1" test "$(ids)" = "db1 "
V --json jobs --backend other >"$T/out" 2>&1
check "--json jobs --backend other: no jobs" sh -c "'$JSON' <'$T/out' && tr -d ' \\n' <'$T/out' | grep -q '\"jobs\":\[\]'"
for bad in "--state happy" "--since yesterday" "--since 2026-13-45"; do
    # shellcheck disable=SC2086
    V jobs $bad >"$T/out" 2>"$T/err"; rc=$?
    check "jobs $bad: exit 2, one line" test $rc -eq 2 -a "$(wc -l <"$T/err")" -eq 1 -a ! -s "$T/out"
done
V journal prune >"$T/out" 2>"$T/err"; rc=$?
check "journal prune without --before: exit 2" test $rc -eq 2 -a "$(wc -l <"$T/err")" -eq 1
V journal prune --before 5d >"$T/out" 2>&1; rc=$?
left=$(sqlite3 "$DB" "SELECT group_concat(vm) FROM (SELECT vm FROM jobs ORDER BY vm)")
ev=$(sqlite3 "$DB" "SELECT count(*) FROM events WHERE job NOT IN (SELECT id FROM jobs)")
if [ $rc -eq 0 ] && [ "$left" = "app1,db1" ] && [ "$ev" -eq 0 ] && grep -q "^1 job " "$T/out"
then ok "journal prune --before 5d: the old job and its events gone (journal: $left)"
else notok "journal prune (exit $rc, journal: $left, orphan events $ev)" "$(cat "$T/out")"; fi
sqlite3 "$DB" "UPDATE jobs SET state='interrupted' WHERE vm='db1'"
V journal prune --before "$(date -d tomorrow +%Y-%m-%dT%H:%M)" >"$T/out" 2>&1
left=$(sqlite3 "$DB" "SELECT group_concat(vm) FROM jobs")
check "journal prune keeps interrupted jobs (journal: $left)" test "$left" = "db1"

# ---- 5. bash completion ----------------------------------------------------------------------
comp() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));
             _vmshift; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
        sh "$S/data/bash-completion/vmshift" "$VMSHIFT" --config "$T/etc/vmshift.conf" \
        --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"
}
check "complete 'mig': migrate migrate-storage" test "$(comp mig)" = "migrate migrate-storage "
check "complete 'job ': its subcommands" test "$(comp job '')" = "cancel repair show "
check "complete 'jobs --s': its options" test "$(comp jobs --s)" = "--since --state --state-dir "
check "complete '--backend ': configured backends" test "$(comp vms --backend '')" = "demo "
check "complete 'migrate db1 --to ': hosts from journal and groups" \
    test "$(comp migrate db1 --to '')" = "alpha beta demo:alpha demo:beta "
check "complete 'vm show ': VMs from the journal" test "$(comp vm show '')" = "db1 "

# ---- 4. ASCII under LC_ALL=C, names that are not UTF-8 --------------------------------------
LC_ALL=C V rate app1 --group pair >"$T/out" 2>&1
if ! LC_ALL=C grep -q '[^ -~]' "$T/out" && grep -q '\*\*' "$T/out"; then ok "LC_ALL=C rate: ASCII stars"
else notok "LC_ALL=C rate" "$(cat "$T/out")"; fi
LC_ALL=C.UTF-8 V rate app1 --group pair >"$T/out" 2>&1
check "C.UTF-8 rate: UTF-8 stars" grep -q "$(printf '\342\230\205')" "$T/out"
LC_ALL=C.UTF-8 V vms >"$T/out" 2>&1
check "vms: sizes without a no-break space" sh -c "! grep -q '$(printf '\302\240')' '$T/out'"
# a job whose VM name holds a byte that is not UTF-8 and an escape character
sqlite3 "$DB" "INSERT INTO jobs (kind, backend, vm, state, created) VALUES
    ('migrate', 'demo', CAST(X'62ad1b5b326a78' AS TEXT), 'failed', strftime('%s','now'))"
LC_ALL=C.UTF-8 V jobs >"$T/out" 2>&1
if grep -q 'b\\xad\\x1b\[2jx' "$T/out" && ! grep -q "$(printf '\033')" "$T/out"; then
    ok "jobs: a bad byte and ESC in a name shown as \\xNN"
else notok "jobs: escaping" "$(od -c "$T/out" | head)"; fi
V --json jobs >"$T/out" 2>&1
if json_ok "$T/out" && grep -q "\"vm\": *\"b$(printf '\357\277\275')\\\\u001b\[2jx\"" "$T/out"
then ok "--json jobs: valid, the bad byte as U+FFFD, ESC as \\u001b"
else notok "--json jobs: bad name" "$(grep '"vm"' "$T/out" | od -c | head)"; fi

# vmshift(1) against the command table: tests/host/man.sh.

echo "1..$n"
