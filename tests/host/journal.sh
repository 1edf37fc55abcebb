#!/bin/sh
# The journal as the one source of truth (TAP), through the vmshift command
# on the skeleton plugin, verified against the skeleton's own state file
# (its "hypervisor"):
#  - kill -9 right after the switchover: jobs / job show / vms never show
#    the pre-switchover host; they ask the backend first ("verified");
#  - a cancel that arrives after the switchover: succeeded, with a note;
#  - SIGHUP (the terminal gone) does not stop a migration;
#  - config errors, an empty, truncated, corrupt or newer journal are
#    refused with one line; journal check / export; read-only listing.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
JSON=$B/tests/host/json-check
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-journal.XXXXXX")
chmod 755 "$T"
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    chmod -R u+w "$T" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ]; then
    echo "1..0 # SKIP the skeleton plugin is not built"; exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
: > "$T/etc/vmshift.conf"
cat > "$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;web2@alpha;web3@alpha;web4@alpha
transfer-seconds=1
switchover-reply-seconds=4
state-file=$T/hv.state
EOC

V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
VBG() { out=$1; shift; exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
            --state-dir "$T/state" "$@" >"$out.out" 2>"$out.err"; }
# where the skeleton's "hypervisor" has VM $1
hv_host() { sed -n "/^\[vm $1\]/,/^\[/s/^host=//p" "$T/hv.state"; }
# waits until the hypervisor has VM $1 on host $2
wait_hv() { i=0; while [ $i -lt 300 ]; do [ "$(hv_host "$1")" = "$2" ] && return 0; sleep 0.05; i=$((i + 1)); done; return 1; }
# the id of the newest job of VM $1, once it exists
wait_job() { i=0; while [ $i -lt 200 ]; do
        V --json jobs --vm "$1" >"$T/jobs" 2>/dev/null
        id=$("$JSON" jobs.0.id <"$T/jobs" 2>/dev/null) && [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1; i=$((i + 1)); done; return 1; }

V vms >/dev/null 2>&1 # creates the hypervisor's state
# another user, for files we may not read or write: root runs as nobody,
# anyone else as themselves (modes then keep them out)
if [ "$(id -u)" -ne 0 ]; then OTHER=env
elif command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    OTHER="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups"
else OTHER=; fi

# ---- 1. kill -9 right after the switchover ---------------------------------------------------
(VBG "$T/k" migrate web1 --to beta) &
mpid=$!; pids="$pids $mpid"
if wait_hv web1 beta; then
    kill -9 $mpid; wait $mpid 2>/dev/null
    hv=$(hv_host web1)
    V jobs >"$T/out" 2>"$T/err"; rc=$?
    line=$(grep " web1 " "$T/out")
    case "$line" in
    *" beta"*) [ $rc -eq 0 ] && [ "$hv" = beta ] && ok "kill -9 after switchover: jobs says beta, as the hypervisor" \
        || notok "jobs (rc $rc, hv $hv)" "$line" ;;
    *) notok "kill -9 after switchover: jobs says the wrong host (hypervisor: $hv)" "$line" "$(cat "$T/err")" ;;
    esac
    V --json job show 1 >"$T/out" 2>"$T/err"
    loc=$("$JSON" location.host <"$T/out"); ver=$("$JSON" location.verified <"$T/out")
    st=$("$JSON" state <"$T/out")
    if [ "$loc" = "$hv" ] && [ "$ver" = true ] && [ "$st" = interrupted ]; then ok "job show: interrupted, VM on $loc (verified)"
    else notok "job show (state $st loc $loc verified $ver, hypervisor $hv)" "$(cat "$T/out" "$T/err")"; fi
    V job show 1 >"$T/out" 2>&1
    grep -q "VM is on:  beta" "$T/out" && grep -q "location verified" "$T/out" \
        && ok "job show text: VM is on beta, the check is in the log" || notok "job show text" "$(cat "$T/out")"
else notok "kill -9: the switchover never happened" "$(cat "$T/k.err")"; notok "job show"; notok "job show text"; fi

# ---- a cancel after the switchover -----------------------------------------------------------
# vmshift stops itself as the cleanup phase begins (VMSHIFT_TEST_STOP_AT: after
# the switchover, before the job ends), so that the cancel lands in that
# window however slow the machine is; then it goes on
stopped() { for i in $(seq 300); do
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = T ] && return 0; sleep 0.1; done
    return 1; }
(VMSHIFT_TEST_STOP_AT=cleanup VBG "$T/c" migrate web2 --to beta) &
mpid=$!; pids="$pids $mpid"
if wait_hv web2 beta && id=$(wait_job web2) && stopped $mpid; then
    V job cancel "$id" >"$T/out" 2>"$T/err"; crc=$?
    kill -CONT $mpid
    wait $mpid; rc=$?
    V --json job show "$id" >"$T/out" 2>"$T/err"
    st=$("$JSON" state <"$T/out"); note=$("$JSON" note <"$T/out"); hv=$(hv_host web2)
    if [ $crc -eq 0 ] && [ $rc -eq 0 ] && [ "$st" = succeeded ] && [ "$hv" = beta ] \
        && [ "$note" = "cancel arrived after the switchover; the VM is on beta" ]; then
        ok "cancel after the switchover: succeeded, with the note"
    else notok "late cancel (cancel rc $crc, rc $rc, state $st, hv $hv, note '$note')" "$(cat "$T/c.err")"; fi
    V job show "$id" 2>&1 | grep -q "^  note:      cancel arrived after the switchover; the VM is on beta$" \
        && ok "job show prints the note" || notok "job show note" "$(V job show "$id" 2>&1)"
else notok "late cancel: the switchover never happened" "$(cat "$T/c.err")"; notok "job show note"; fi

# ---- SIGHUP: the terminal goes, the migration goes on ------------------------------------------
# stdout and stderr go to a FIFO whose reader is killed with the hangup:
# later writes fail with EPIPE, which must not kill vmshift either
mkfifo "$T/tty"
cat "$T/tty" >"$T/h.tty" &
rpid=$!; pids="$pids $rpid"
("$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" \
    migrate web3 --to beta >"$T/tty" 2>&1) &
mpid=$!; pids="$pids $mpid"
if id=$(wait_job web3); then
    kill $rpid; wait $rpid 2>/dev/null
    kill -HUP $mpid
    sleep 1
    V --json job show "$id" >"$T/out" 2>"$T/err"
    st=$("$JSON" state <"$T/out")
    if kill -0 $mpid 2>/dev/null && [ "$st" = running ]; then ok "after SIGHUP the job runs, as another shell sees"
    else notok "after SIGHUP (state $st)" "$(cat "$T/out" "$T/err")"; fi
    wait $mpid; rc=$?
    V --json job show "$id" >"$T/out" 2>"$T/err"
    st=$("$JSON" state <"$T/out"); loc=$("$JSON" location.host <"$T/out"); hv=$(hv_host web3)
    if [ $rc -eq 0 ] && [ "$st" = succeeded ] && [ "$hv" = beta ] && [ "$loc" = beta ]; then
        ok "SIGHUP: migration finished, the hypervisor has web3 on beta"
    else notok "SIGHUP (rc $rc state $st loc $loc hv $hv)" "$(cat "$T/h.tty")"; fi
    grep -q "terminal hung up" "$T/out" && ok "the hangup is in the job's log" || notok "hangup event" "$(cat "$T/out")"
else notok "SIGHUP: no job" "$(cat "$T/h.tty")"; notok "SIGHUP finish"; notok "hangup event"; fi

# ---- configuration errors are errors -------------------------------------------------------------
cfg_error() { # what expected-substring config-text
    printf '%b' "$3" >"$T/bad.conf"
    "$VMSHIFT" --config "$T/bad.conf" --plugin-dir "$T/plugins" jobs >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "$2" "$T/err" && [ ! -s "$T/out" ]; then ok "config: $1: exit 1, one line"
    else notok "config: $1 (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
}
cfg_error "syntax error" "bad.conf: line 2" "[vmshift]\n[oops\n"
cfg_error "relative state-dir" "bad.conf:3: \[vmshift\]: state-dir must be an absolute path" "[vmshift]\n# where\nstate-dir=rel/state\n"
if [ -n "$OTHER" ]; then
    printf '[vmshift]\nstate-dir=%s/nb-state\n' "$T" >"$T/secret.conf"; chmod 600 "$T/secret.conf"
    [ "$OTHER" = env ] && chmod 000 "$T/secret.conf"
    $OTHER "$VMSHIFT" --config "$T/secret.conf" \
        --plugin-dir "$T/plugins" jobs >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "secret.conf: Permission denied" "$T/err" \
        && [ ! -s "$T/out" ] && [ ! -e "$T/nb-state" ]; then ok "config: unreadable: exit 1, one line, no other journal"
    else notok "config: unreadable (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
else n=$((n + 1)); echo "ok $n # SKIP setpriv or nobody missing"; fi

# ---- a journal that is not whole is refused, with what to do ----------------------------------------
refused() { # what expected-substring
    V jobs >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "$2" "$T/err" && [ ! -s "$T/out" ]; then ok "$1: refused with one line"
    else notok "$1 (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
}
V journal check >"$T/out" 2>"$T/err" && grep -q "journal $T/state/journal.db: ok (schema version" "$T/out" \
    && ok "journal check: ok" || notok "journal check" "$(cat "$T/out" "$T/err")"
V journal export >"$T/export.json" 2>"$T/err"; rc=$?
jobs=$("$JSON" jobs <"$T/export.json" | grep -c '"vm"')
if [ $rc -eq 0 ] && [ "$("$JSON" jobs.0.vm <"$T/export.json")" = web1 ] && [ "$("$JSON" jobs.0.events.0.kind <"$T/export.json")" = state ]; then
    ok "journal export: JSON, oldest job first, with its events"
else notok "journal export (rc $rc)" "$(head -c 600 "$T/export.json")" "$(cat "$T/err")"; fi
cp "$T/state/journal.db" "$T/journal.good"
rm -f "$T/state/journal.db-wal" "$T/state/journal.db-shm"
: >"$T/state/journal.db"
refused "0-byte journal" "journal $T/state/journal.db is empty (0 bytes).*restore it from a backup"
V journal check >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "is empty (0 bytes)" "$T/err" && ok "journal check: an empty journal fails, saying so" \
    || notok "journal check of an empty journal (rc $rc)" "$(cat "$T/out" "$T/err")"
size=$(wc -c <"$T/journal.good")
head -c $((size / 2)) "$T/journal.good" >"$T/state/journal.db"
refused "truncated journal" "is truncated"
head -c 100 "$T/journal.good" >"$T/state/journal.db"
head -c $((size - 100)) /dev/urandom >>"$T/state/journal.db"
V jobs >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ]; then ok "corrupt journal: refused with one line"
else notok "corrupt journal (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
V journal check >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "is damaged" "$T/err" && ok "journal check: a corrupt journal fails, saying so" \
    || notok "journal check of a corrupt journal (rc $rc)" "$(cat "$T/out" "$T/err")"
echo "not a journal" >"$T/state/journal.db"
refused "a file that is not SQLite" "is not an SQLite database"
cp "$T/journal.good" "$T/state/journal.db"
if command -v sqlite3 >/dev/null; then
    sqlite3 "$T/state/journal.db" "PRAGMA user_version = 99"
    refused "journal of a newer schema" "written by a newer vmshift (schema version 99"
    cp "$T/journal.good" "$T/state/journal.db"
else n=$((n + 1)); echo "ok $n # SKIP sqlite3 missing"; fi
V jobs >"$T/out" 2>"$T/err" && grep -q " web1 " "$T/out" && ok "the journal restored: jobs lists" \
    || notok "restored journal" "$(cat "$T/out" "$T/err")"

# ---- read-only: jobs and job show work, writing commands say why not ------------------------------
if [ -n "$OTHER" ]; then
    rm -f "$T/state/journal.db-wal" "$T/state/journal.db-shm"
    chmod 555 "$T/state" && chmod 444 "$T/state/journal.db"
    RO() { $OTHER "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
    RO jobs >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && grep -q " web1 " "$T/out" && ! grep -q readonly "$T/err"; then ok "read-only journal: jobs lists"
    else notok "read-only jobs (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
    RO --json job show 1 >"$T/out" 2>"$T/err" && [ "$("$JSON" vm <"$T/out")" = web1 ] \
        && ok "read-only journal: job show" || notok "read-only job show" "$(cat "$T/out" "$T/err")"
    RO job cancel 1 >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "read-only" "$T/err"; then ok "read-only journal: job cancel says why not"
    else notok "read-only cancel (rc $rc)" "$(cat "$T/err")"; fi
else for w in jobs "job show" cancel; do n=$((n + 1)); echo "ok $n # SKIP setpriv or nobody missing"; done; fi

echo "1..$n"
