#!/bin/sh
# Tables through the vmshift command (TAP), issue 18: the global options
# -o/--output (selection, order, case, +COLUMNS), -n/--noheadings and
# -r/--raw on backends, hosts, vms and jobs with the skeleton plugin; an
# unknown column (one line, exit 2, the valid columns listed, nothing on
# stdout); -o where it does not apply (exit 2, nothing done: the skeleton's
# state file says where the VM is); ASCII only under LC_ALL=C; names with
# control characters and bytes that are not UTF-8 escaped in both modes.
# What the tables say is checked against the skeleton's own state file and,
# for jobs, against the journal read with sqlite3.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-tables.XXXXXX")
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
: >"$T/etc/vmshift.conf"
cat >"$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta;gamma
vms=web1@alpha;db1@alpha;café@beta
transfer-seconds=0
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
STATE=$T/state/backends/demo/skeleton.state
DB=$T/state/journal.db
# the skeleton's own view: "VM HOST" per VM of its state file, sorted
peer_vms() {
    awk '/^\[vm / { vm = substr($0, 5, length($0) - 5) } /^host=/ { print vm, substr($0, 6) }' \
        "$STATE" | sort
}
ascii_only() { ! LC_ALL=C grep -q '[^ -~]' "$1"; }



# ---- -o: selection, order, case ------------------------------------------------------------
LC_ALL=C.UTF-8 V vms -o vm,Host >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(head -1 "$T/out" | tr -s ' ')" = "VM HOST" ] \
    && [ "$(tail -n +2 "$T/out" | tr -s ' ' | sort)" = "$(peer_vms)" ]; then
    ok "vms -o vm,Host: those columns, the skeleton's VMs and hosts"
else notok "vms -o vm,Host (exit $rc)" "$(cat "$T/out" "$T/err")" "peer: $(peer_vms)"; fi
LC_ALL=C.UTF-8 V vms --output HOST,VM,STATE >"$T/out" 2>&1
if [ "$(head -1 "$T/out" | tr -s ' ')" = "HOST VM STATE" ] \
    && [ "$(tail -n +2 "$T/out" | awk '{ print $2, $1 }' | sort)" = "$(peer_vms)" ]; then
    ok "vms --output HOST,VM,STATE: in that order"
else notok "vms --output order" "$(cat "$T/out")"; fi
V vms -o +vm >"$T/out" 2>&1
check "vms -o +vm: the defaults, then VM again" \
    test "$(head -1 "$T/out" | tr -s ' ')" = "BACKEND VM HOST STATE CPUS MEMORY DISKS NICS DETAIL VM"
V hosts -o memory-free-total,host >"$T/out" 2>&1
check "hosts -o memory-free-total,host: a header with spaces by its -o name" \
    test "$(head -1 "$T/out" | tr -s ' ')" = "MEMORY FREE / TOTAL HOST"
V backends -o status,backend >"$T/out" 2>&1
check "backends -o status,backend" test "$(sed -n 2p "$T/out" | tr -s ' ')" = "ready demo"

# ---- --noheadings, --raw --------------------------------------------------------------------
LC_ALL=C.UTF-8 V vms --noheadings -o vm,host >"$T/out" 2>&1
check "vms --noheadings: the VMs' lines only" \
    test "$(tr -s ' ' <"$T/out" | sort)" = "$(peer_vms)"
V hosts -n -o host >"$T/out" 2>&1
check "hosts -n -o host: alpha, beta, gamma" test "$(sort "$T/out" | tr '\n' ' ')" = "alpha beta gamma "
V vms --host gamma -o vm,host >"$T/out" 2>&1; rc=$?
check "vms of a host without VMs: the header alone" test $rc -eq 0 -a "$(cat "$T/out")" = "VM  HOST"
V vms --host gamma -n -r >"$T/out" 2>&1; rc=$?
check "... and nothing with --noheadings" test $rc -eq 0 -a ! -s "$T/out"
V vms --raw -o vm,memory,host -n >"$T/out" 2>&1
if grep -qx 'web1 2.0\\x20GiB alpha' "$T/out" && [ "$(wc -l <"$T/out")" -eq 3 ] \
    && ! grep -q '  ' "$T/out"; then
    ok "vms --raw: one space between columns, a blank in a value as \\x20"
else notok "vms --raw" "$(cat "$T/out")"; fi
V vms -r >"$T/out" 2>&1
check "vms -r: the header line too, one space apart" \
    test "$(head -1 "$T/out")" = "BACKEND VM HOST STATE CPUS MEMORY DISKS NICS DETAIL"
V hosts -r -o memory-free-total >"$T/out" 2>&1
check "hosts -r: a header with spaces by its -o name" \
    test "$(head -1 "$T/out")" = "MEMORY-FREE-TOTAL"
LC_ALL=C.UTF-8 V vms -r -n -o vm >"$T/out" 2>&1
check "vms -r under UTF-8: é as libsmartcols escapes it (\\xc3\\xa9)" grep -qx 'caf\\xc3\\xa9' "$T/out"

# ---- jobs, checked against the journal -------------------------------------------------------
V migrate web1 --to beta >"$T/mig" 2>&1
expect=$(sqlite3 -separator ' ' "$DB" "SELECT id, vm, state FROM jobs ORDER BY id DESC")
V jobs -n -r -o id,vm,state >"$T/out" 2>&1
if [ -n "$expect" ] && [ "$(cat "$T/out")" = "$expect" ]; then ok "jobs -n -r -o id,vm,state: the journal's jobs"
else notok "jobs -o" "$(cat "$T/out" "$T/mig")" "journal: $expect"; fi
V jobs -o State,ID >"$T/out" 2>&1
check "jobs -o State,ID: header in that order" test "$(head -1 "$T/out" | tr -s ' ')" = "STATE ID"

# ---- an unknown column: one line, exit 2, the valid ones listed, nothing on stdout ----------
for c in backends hosts vms jobs; do
    V $c -o backend,bogus >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] \
        && grep -q "unknown column 'bogus'" "$T/err" && grep -q 'BACKEND, ' "$T/err"; then
        ok "$c -o backend,bogus: exit 2, one line listing the columns, no output"
    else notok "$c -o bogus (exit $rc)" "$(cat "$T/out" "$T/err")"; fi
done
V vms -o '' >"$T/out" 2>"$T/err"; rc=$?
check "vms -o '': exit 2, one line" test $rc -eq 2 -a "$(wc -l <"$T/err")" -eq 1 -a ! -s "$T/out"

# ---- where the options do not apply: usage errors before anything runs ----------------------
before=$(peer_vms)
V migrate db1 --to beta -o vm >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(peer_vms)" = "$before" ]; then
    ok "migrate -o: exit 2, one line, the VM did not move (skeleton state)"
else notok "migrate -o (exit $rc)" "$(cat "$T/err")" "$(peer_vms)"; fi
V --json vms --raw >"$T/out" 2>"$T/err"; rc=$?
check "--json with --raw: exit 2, one line" test $rc -eq 2 -a "$(wc -l <"$T/err")" -eq 1

# ---- ASCII under LC_ALL=C, escaping of names ----------------------------------------------------
# a job whose VM name holds a byte that is not UTF-8 and an escape character
sqlite3 "$DB" "INSERT INTO jobs (kind, backend, vm, state, created) VALUES
    ('migrate', 'demo', CAST(X'62ad1b5b326a78' AS TEXT), 'failed', strftime('%s','now'))"
for c in backends hosts vms jobs; do
    LC_ALL=C V $c >"$T/out" 2>&1; rc=$?
    if [ $rc -eq 0 ] && ascii_only "$T/out" && [ "$(wc -l <"$T/out")" -ge 2 ]; then
        ok "LC_ALL=C $c: ASCII only"
    else notok "LC_ALL=C $c (exit $rc)" "$(od -c "$T/out" | head -5)"; fi
done
LC_ALL=C V vms -o vm -n >"$T/out" 2>&1
check "LC_ALL=C vms: é as '?'" grep -qx 'caf?' "$T/out"
LC_ALL=C V vms -r -o vm -n >"$T/out" 2>&1
check "LC_ALL=C vms -r: ASCII only" ascii_only "$T/out"
LC_ALL=C.UTF-8 V jobs -o vm >"$T/out" 2>&1
if grep -qx 'b\\xad\\x1b\[2jx' "$T/out" && ! grep -q "$(printf '\033')" "$T/out"; then
    ok "jobs: a bad byte and ESC in a name as \\xNN"
else notok "jobs: escaping" "$(od -c "$T/out" | head)"; fi
LC_ALL=C.UTF-8 V jobs -r -n -o vm,state >"$T/out" 2>&1
if grep -qx 'b\\xad\\x1b\[2jx failed' "$T/out" && ! grep -q "$(printf '\033')" "$T/out"; then
    ok "jobs -r: the same name as \\xNN, as libsmartcols escapes"
else notok "jobs -r: escaping" "$(od -c "$T/out" | head)"; fi

# ---- help ------------------------------------------------------------------------------------
"$VMSHIFT" --help >"$T/out" 2>&1
if grep -q -- '-o, --output COLUMNS' "$T/out" && grep -q -- '-n, --noheadings' "$T/out" \
    && grep -q -- '-r, --raw' "$T/out"; then ok "--help lists -o, -n, -r"
else notok "--help" "$(cat "$T/out")"; fi
# an empty journal: -o still checks its columns (exit 2), and prints the header
"$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/empty" \
    jobs -o bogus >"$T/out" 2>"$T/err"; rc=$?
"$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/empty" \
    jobs -o vm,id >"$T/out2" 2>&1; rc2=$?
if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && grep -q "unknown column 'bogus'" "$T/err" \
    && [ $rc2 -eq 0 ] && [ "$(cat "$T/out2")" = "VM  ID" ]; then
    ok "jobs -o on an empty journal: a bad column is exit 2, good ones print the header"
else notok "jobs -o on an empty journal (rc $rc, $rc2)" "$(cat "$T/err" "$T/out2")"; fi
echo "1..$n"
