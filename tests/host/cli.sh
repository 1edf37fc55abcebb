#!/bin/sh
# CLI tests of the vmshift command (TAP): every command's --help, usage
# errors (non-zero exit, exactly one line on stderr), --json validity
# (parsed with json-c), loader refusals and "not supported" through the
# command line, and end-to-end jobs on the skeleton plugin: migrate, cancel
# from another process, SIGINT, one job per VM, and the journal surviving a
# kill -9 of `vmshift migrate` mid-transfer, then `job repair`.
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
JSON=$B/tests/host/json-check
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-cli.XXXXXX")
chmod 755 "$T"
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
for p in good shortops; do
    cp "$B/tests/plugins/.libs/$p.so" "$T/plugins/" && chmod 755 "$T/plugins/$p.so"
done
have_skeleton=no
if [ -f "$B/tests/skeleton/.libs/skeleton.so" ]; then
    cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
    have_skeleton=yes
fi
cat > "$T/etc/vmshift.conf" <<EOC
[group pair]
hosts=demo:alpha;demo:beta
EOC
cat > "$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha;app2@alpha
transfer-seconds=1
EOC
cat > "$T/etc/backends.d/slow.conf" <<EOC
[backend slow]
plugin=skeleton
hosts=alpha;beta
vms=big1@alpha;big2@alpha;big3@alpha
transfer-seconds=60
EOC
cat > "$T/etc/backends.d/tp.conf" <<EOC
[backend tp]
plugin=good
vms=t1@h1
[backend short]
plugin=shortops
[backend gone]
plugin=hyperv
EOC
[ $have_skeleton = yes ] || rm -f "$T/etc/backends.d/demo.conf" "$T/etc/backends.d/slow.conf"

V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
# in the background, so that $! is vmshift itself
VBG() { out=$1; shift; exec "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
            --state-dir "$T/state" "$@" >"$out.out" 2>"$out.err"; }

# usage error: exit code $1 expected non-zero, one line on stderr
usage_error() {
    what=$1; shift
    V "$@" >"$T/out" 2>"$T/err"; rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$T/out" ]; then ok "$what: exit $rc, one line on stderr"
    else notok "$what: exit $rc, $lines lines on stderr" "$(cat "$T/err")"; fi
}

# json_ok [--rc N] WHAT ARGS...: valid JSON on stdout and exit status N (0 unless given)
json_ok() {
    want=0
    if [ "$1" = --rc ]; then want=$2; shift 2; fi
    what=$1; shift
    V --json "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -ne "$want" ]; then notok "--json $what: exit $rc, expected $want" "$(cat "$T/err")"
    elif "$JSON" <"$T/out" 2>"$T/jerr"; then ok "--json $what: valid JSON (exit $rc)"
    else notok "--json $what: invalid JSON" "$(cat "$T/jerr")" "$(head -c 400 "$T/out")"; fi
}

# ---- the process: GLib's log on stderr, no core dumps -----------------------------
G_MESSAGES_DEBUG=all V --json backends >"$T/out" 2>"$T/err"
if "$JSON" <"$T/out" 2>"$T/jerr"; then ok "G_MESSAGES_DEBUG=all: --json stays valid JSON"
else notok "G_MESSAGES_DEBUG=all breaks --json" "$(head -c 400 "$T/out")"; fi

# ---- --help -------------------------------------------------------------------
"$VMSHIFT" --help >"$T/out" 2>"$T/err" && [ -s "$T/out" ] && [ ! -s "$T/err" ] \
    && ok "vmshift --help" || notok "vmshift --help"
for c in backends hosts vms rate check migrate migrate-storage merge-status "acl recreate" \
         jobs "job show" "job cancel" "job repair" bulk; do
    # shellcheck disable=SC2086
    "$VMSHIFT" $c --help >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && grep -q "Usage:" "$T/out" && [ ! -s "$T/err" ]; then ok "$c --help"
    else notok "$c --help (exit $rc)" "$(cat "$T/err")"; fi
done

# ---- usage errors -----------------------------------------------------------------
usage_error "no command"
usage_error "unknown command" frobnicate
usage_error "unknown subcommand" job frob 1
usage_error "acl without subcommand" acl
usage_error "unknown option" jobs --bogus
usage_error "extra argument" hosts extra
usage_error "migrate without VM" migrate --to beta
usage_error "migrate without --to" migrate web1
usage_error "--to and --to-group" migrate web1 --to a --to-group b
usage_error "--live and --cold" migrate web1 --to beta --live --cold
usage_error "bad --transfer" migrate web1 --to beta --transfer pigeon
usage_error "bad --network" migrate web1 --to beta --network nonic
usage_error "bad --disk-path" migrate-storage web1 --disk-path =x
usage_error "bad --option" migrate web1 --to beta --option novalue
usage_error "--option key twice" check web1 --to beta --option a=1 --option a=2
usage_error "migrate-storage without path" migrate-storage web1
usage_error "rate without VM" rate
usage_error "job show without ID" job show
usage_error "job show bad ID" job show abc
usage_error "bulk without plan" bulk
usage_error "option missing its value" hosts --backend

# ---- loader refusals and not-supported through the CLI -------------------------------
V hosts --backend gone >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] \
   && grep -q "tp.conf: backend 'gone': plugin 'hyperv' not found in $T/plugins" "$T/err" \
   && grep -q "(install vmshift-plugin-hyperv)" "$T/err"; then ok "missing plugin: one line naming the file"
else notok "missing plugin" "$(cat "$T/err")"; fi
V hosts --backend short >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "^vmshift: backend 'short' (plugin shortops 1.0) does not support 'list_hosts'$" "$T/err"
then ok "operation beyond struct_size: not supported"; else notok "shortops list_hosts" "$(cat "$T/err")"; fi
V acl recreate tp:t1 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "^vmshift: backend 'tp' (plugin good 1.0) does not support 'recreate_acl'$" "$T/err"
then ok "NULL operation: not supported, exit $rc"; else notok "NULL op" "$(cat "$T/err")"; fi
V backends >"$T/out" 2>"$T/err"
if grep -q "^gone .*missing" "$T/out" && grep -q "^tp .*ready" "$T/out"; then ok "backends lists placeholders"
else notok "backends listing" "$(cat "$T/out")"; fi
V hosts --backend tp >"$T/out" 2>"$T/err" && grep -q "^tp  *h2 " "$T/out" \
    && ok "other backends keep working" || notok "hosts --backend tp" "$(cat "$T/err")"

# ---- files vmshift reads: no FIFO, no symlinked or writable plugin dir -------------------
# (timeout only guards against a hang; no timing is asserted)
one_line() { # what expected-text command...
    what=$1; want=$2; shift 2
    timeout 20 "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qF -- "$want" "$T/err"
    then ok "$what: exit $rc, one line"; else notok "$what (rc $rc)" "$(cat "$T/err")"; fi
}
mkfifo "$T/fifo.conf"
one_line "FIFO as --config" "$T/fifo.conf: refusing configuration file: not a regular file (a FIFO)" \
    "$VMSHIFT" --config "$T/fifo.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" hosts
one_line "FIFO as a plan" "$T/fifo.conf: refusing plan file: not a regular file (a FIFO)" \
    "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" bulk "$T/fifo.conf"
mkdir -p "$T/e2/backends.d" && cp "$T/etc/vmshift.conf" "$T/e2/" && mkfifo "$T/e2/backends.d/ff.conf"
timeout 20 "$VMSHIFT" --config "$T/e2/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" \
    backends >"$T/out" 2>"$T/err"
grep -q "^ff .*bad-config" "$T/out" && grep -qF "ff.conf: refusing configuration file: not a regular file (a FIFO)" "$T/out" "$T/err" \
    && ok "FIFO drop-in: refused, listed" || notok "FIFO drop-in" "$(cat "$T/out" "$T/err")"
printf '[vmshift]\nstate-dir=relative/dir\n' >"$T/e2/vmshift.conf"
one_line "relative state-dir is an error" "$T/e2/vmshift.conf:2: [vmshift]: state-dir must be an absolute path, not 'relative/dir'" \
    "$VMSHIFT" --config "$T/e2/vmshift.conf" --plugin-dir "$T/plugins" hosts
one_line "--plugin-dir \"\"" '--plugin-dir "": refusing an empty plugin directory name' \
    "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "" --state-dir "$T/state" hosts --backend tp
ln -s "$T/plugins" "$T/plugins-link"
one_line "symlinked --plugin-dir" "--plugin-dir $T/plugins-link: refusing a plugin directory that is a symbolic link" \
    "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins-link" --state-dir "$T/state" hosts --backend tp
mkdir -p "$T/ww/p" && chmod 777 "$T/ww" && chmod 755 "$T/ww/p" && cp -p "$T/plugins/good.so" "$T/ww/p/"
one_line "world-writable parent of the plugin dir" "$T/ww/p/good.so: refusing plugin: directory $T/ww is world-writable (mode 0777" \
    "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/ww/p" --state-dir "$T/state" hosts --backend tp
mkdir -p "$T/e3/backends.d" && : >"$T/e3/vmshift.conf" && printf 'user=u\npassword=pw\n' >"$T/e3/backends.d/real.cred" \
    && chmod 600 "$T/e3/backends.d/real.cred" && ln -s real.cred "$T/e3/backends.d/link.cred"
printf '[backend cr]\nplugin=good\ncredentials=link.cred\n' >"$T/e3/backends.d/cr.conf"
one_line "symlinked credentials file" "credentials file $T/e3/backends.d/link.cred is a symbolic link; refused" \
    "$VMSHIFT" --config "$T/e3/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" hosts --backend cr

# ---- JSON ------------------------------------------------------------------------------
json_ok backends backends
json_ok --rc 1 hosts hosts  # backend short lacks list_hosts
json_ok --rc 1 vms vms  # and list_vms
json_ok jobs jobs
json_ok --rc 1 "hosts (with errors)" hosts --backend gone

if [ $have_skeleton = no ]; then
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do
        n=$((n + 1)); echo "ok $n # SKIP skeleton plugin not built"
    done
    echo "1..$n"
    exit 0
fi

json_ok rate rate web1 --group pair
json_ok check check web1 --to beta
json_ok merge-status merge-status web1
json_ok "migrate --dry-run" migrate web1 --to beta --dry-run

# --option reaches the plugin: the skeleton has no options and refuses each key by name
V check web1 --to beta --option tcg-safe=false >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "unknown-option  tcg-safe  skeleton: unknown option 'tcg-safe'" "$T/out"
then ok "--option reaches the plugin (refused by name)"; else notok "--option (rc $rc)" "$(cat "$T/out" "$T/err")"; fi
# the plan is printed, and the exit status is the verdict (the option is refused)
V migrate web1 --to beta --option tcg-safe=false --dry-run >"$T/out" 2>"$T/err"; [ $? -eq 1 ] \
    && grep -q "options:   {'tcg-safe': <'false'>}" "$T/out" && grep -q -- "--live --option tcg-safe=false$" "$T/out" \
    && ok "--option in --dry-run" || notok "--option dry-run" "$(cat "$T/out" "$T/err")"
V rate web1 --group pair >"$T/out" 2>"$T/err" && grep -q "^beta" "$T/out" && grep -q "memory" "$T/out" \
    && ok "rate explains" || notok "rate" "$(cat "$T/out" "$T/err")"

# ---- jobs end to end -----------------------------------------------------------------------
V --json migrate web1 --to-group pair >"$T/out" 2>"$T/err"; rc=$?
state=$("$JSON" state <"$T/out"); loc=$("$JSON" location.host <"$T/out")
if [ $rc -eq 0 ] && [ "$state" = succeeded ] && [ "$loc" = beta ]; then ok "migrate --to-group: succeeded, on beta"
else notok "migrate (rc $rc state $state loc $loc)" "$(cat "$T/err")"; fi
V vms --host demo:beta >"$T/out" 2>&1 && grep -q "web1" "$T/out" && ok "vms --host sees the move" \
    || notok "vms after migrate" "$(cat "$T/out")"

wait_phase() { # job-vm phase
    i=0
    while [ $i -lt 200 ]; do
        V --json jobs >"$T/jobs" 2>/dev/null
        id=$("$JSON" jobs.0.id <"$T/jobs"); ph=$("$JSON" jobs.0.phase <"$T/jobs")
        vm=$("$JSON" jobs.0.vm <"$T/jobs")
        [ "$vm" = "$1" ] && [ "$ph" = "$2" ] && { echo "$id"; return 0; }
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

# cancel from another process
(VBG "$T/m1" migrate slow:big1 --to beta) &
mpid=$!; pids="$pids $mpid"
if id=$(wait_phase big1 transfer); then
    V job cancel "$id" >/dev/null 2>&1
    wait $mpid; rc=$?
    st=$(V --json job show "$id" | "$JSON" state)
    if [ $rc -ne 0 ] && [ "$st" = cancelled ]; then ok "job cancel from another process"
    else notok "job cancel (rc $rc, state $st)" "$(cat "$T/m1.err")"; fi
else notok "job cancel: job never reached transfer" "$(cat "$T/m1.err")"; fi

# SIGINT in the running process cancels; meanwhile one job per VM
(VBG "$T/m2" migrate slow:big2 --to beta) &
mpid=$!; pids="$pids $mpid"
if id=$(wait_phase big2 transfer); then
    V migrate slow:big2 --to beta >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "is busy with job $id" "$T/err"; then ok "one mutating job per VM"
    else notok "second job on a busy VM (rc $rc)" "$(cat "$T/err")"; fi
    kill -INT $mpid
    wait $mpid; rc=$?
    st=$(V --json job show "$id" | "$JSON" state)
    if [ $rc -ne 0 ] && [ "$st" = cancelled ]; then ok "SIGINT cancels the job"
    else notok "SIGINT (rc $rc, state $st)" "$(cat "$T/m2.err")"; fi
else notok "SIGINT: job never reached transfer"; notok "busy VM: not tested"; fi

# kill -9 mid-transfer: the next start marks the job interrupted with its phase
(VBG "$T/m3" migrate slow:big3 --to beta) &
mpid=$!; pids="$pids $mpid"
if id=$(wait_phase big3 transfer); then
    kill -9 $mpid; wait $mpid 2>/dev/null
    V --json job show "$id" >"$T/out" 2>"$T/err"
    st=$("$JSON" state <"$T/out"); ph=$("$JSON" phase <"$T/out")
    if [ "$st" = interrupted ] && [ "$ph" = transfer ]; then ok "kill -9: job interrupted in phase transfer"
    else notok "kill -9 (state $st phase $ph)" "$(cat "$T/err")"; fi
    "$JSON" events <"$T/out" | grep -q '"save"' && ok "saved plugin data survived" \
        || notok "saved data" "$(cat "$T/out")"
    V --json job repair "$id" >"$T/out" 2>"$T/err"; rc=$?
    st=$("$JSON" state <"$T/out"); rep=$("$JSON" results.repair <"$T/out")
    # killed before the switchover: the VM never left alpha, so the repair
    # rolls back, and the skeleton's own state file has big3 on alpha
    sf=$(grep -l '^\[vm big3\]' $(find "$T/state" -name skeleton.state) 2>/dev/null | head -1)
    h=$(sed -n '/^\[vm big3\]/,/^\[/s/^host=//p' "$sf" 2>/dev/null)
    if [ $rc -eq 0 ] && [ "$st" = repaired ] && [ "$rep" = rolled-back ] && [ "$h" = alpha ]; then
        ok "job repair: rolled-back, big3 on alpha in the skeleton's state"
    else notok "job repair (rc $rc state $st repair '$rep' host '$h')" "$(cat "$T/err")"; fi
else notok "kill -9: job never reached transfer"; notok "saved data"; notok "repair"; fi

# non-dumpable: another process of the same (unprivileged) user may not read
# its /proc/PID/environ, and its core size limit is 0
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    NB="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups"
    mkdir -p "$T/nb" && chown nobody "$T/nb"
    (exec $NB "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/nb/state" \
        migrate slow:big1 --to beta >"$T/nb.out" 2>"$T/nb.err") &
    mpid=$!; pids="$pids $mpid"
    i=0; while [ $i -lt 200 ] && ! grep -q "^job 1: migrate" "$T/nb.err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    if $NB cat "/proc/$mpid/environ" >/dev/null 2>&1; then notok "vmshift is dumpable (environ readable)"
    elif grep -q "^Max core file size *0 *0 " "/proc/$mpid/limits"; then ok "vmshift: not dumpable, core limit 0"
    else notok "core limit" "$(grep core "/proc/$mpid/limits")" "$(cat "$T/nb.err")"; fi
    kill -9 "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null
else n=$((n + 1)); echo "ok $n # SKIP setpriv or nobody missing"; fi

json_ok "job show" job show 1

# bulk: dry run, then a run and its reverse
cat > "$T/plan.conf" <<EOC
[bulk]
max-per-backend=2
max-per-host=2
[wave 1]
vms=demo:app1;demo:app2
to=beta

# NICs of VMs sent to backend demo: from network lan onto dmz
[networks demo]
lan=dmz
EOC
skel_vm() { # VM KEY: a key of VM's group in the demo backend's state file
    sf=$(grep -l "^\[vm $1\]" $(find "$T/state" -name skeleton.state) 2>/dev/null | head -1)
    [ -n "$sf" ] && awk -v g="[vm $1]" -v k="$2" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
        in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$sf"
}
# host beta of the stand-in hypervisor has networks lan and dmz
sf=$(grep -l '^\[vm app1\]' $(find "$T/state" -name skeleton.state) 2>/dev/null | head -1)
if grep -q '^\[host beta\]' "$sf"; then sed -i '/^\[host beta\]/a networks=lan;dmz' "$sf"
else printf '\n[host beta]\nnetworks=lan;dmz\n' >>"$sf"; fi
V bulk "$T/plan.conf" --dry-run >"$T/out" 2>"$T/err" &&
    grep -q "vmshift migrate demo:app1 --to demo:beta --live --network net0=dmz" "$T/out" \
    && ok "bulk --dry-run prints the commands, the plan's [networks demo] as --network" \
    || notok "bulk dry-run" "$(cat "$T/out" "$T/err")"
# the skeleton's own state: app1 on beta, its NIC on dmz (the plan's mapping)
V bulk "$T/plan.conf" >"$T/out" 2>"$T/err" && [ "$(skel_vm app1 host)" = beta ] \
    && [ "$(skel_vm app1 network)" = dmz ] && [ "$(skel_vm app2 network)" = dmz ] \
    && ok "bulk: app1 and app2 on beta, their NICs on dmz (the skeleton's state)" \
    || notok "bulk with [networks demo]" "$(cat "$T/out" "$T/err")" \
        "app1: $(skel_vm app1 host) $(skel_vm app1 network)"
V bulk "$T/plan.conf" --reverse >>"$T/out" 2>>"$T/err" \
    && [ "$(skel_vm app1 host)" = alpha ] && [ "$(skel_vm app2 host)" = alpha ] \
    && [ "$(skel_vm app1 network)" = lan ] && [ "$(skel_vm app2 network)" = lan ] \
    && ok "bulk --reverse: app1 and app2 back on alpha, their NICs back on lan (the skeleton's state)" \
    || notok "bulk --reverse" "$(cat "$T/out" "$T/err")" \
        "app1: $(skel_vm app1 host) $(skel_vm app1 network)"

# strict plan grammar: each mistake one line with file:line, before anything runs
plan_error() { # what expected-text plan-text
    printf '%b' "$3" >"$T/bad.plan"
    one_line "plan: $1" "$T/bad.plan:$2" "$VMSHIFT" --config "$T/etc/vmshift.conf" \
        --plugin-dir "$T/plugins" --state-dir "$T/state" bulk "$T/bad.plan"
}
plan_error "second [wave 1]" "5: [wave 1] appears twice (first at line 1)" \
    "[wave 1]\nvms=demo:app1\nto=beta\n\n[wave 1]\nvms=demo:web1\nto=beta\n"
plan_error "duplicate key" "3: [wave 1]: key 'to' given twice (first at line 2)" "[wave 1]\nto=beta\nto=alpha\nvms=app1\n"
plan_error "to.NAME of no VM" "4: [wave 1]: to.wbe2 names no VM of this wave's vms=" \
    "[wave 1]\nvms=demo:app1;demo:app2\nto=beta\nto.wbe2=alpha\n"
plan_error "window start = end" "2: [bulk]: window 10:00-10:00 starts where it ends" \
    "[bulk]\nwindow=10:00-10:00\n[wave 1]\nvms=app1\nto=beta\n"
plan_error "relative path" "4: [wave 1]: path must be an absolute directory, not 'vms'" \
    "[wave 1]\nvms=app1\nto=beta\npath=vms\n"
plan_error "empty path" "4: [wave 1]: path must be an absolute directory, not ''" \
    "[wave 1]\nvms=app1\nto=beta\npath=\n"
plan_error "not UTF-8" "2: not UTF-8" "[wave 1]\nvms=app1;be\377t\nto=beta\n"
plan_error "[networks] of no backend" "4: [networks demi]: no backend 'demi' is configured" \
    "[wave 1]\nvms=app1\nto=beta\n[networks demi]\nlan=dmz\n"
plan_error "[networks] mapping to nothing" "5: [networks demo]: 'lan' maps to no network" \
    "[wave 1]\nvms=app1\nto=beta\n[networks demo]\nlan=\n"
V vms --host demo:beta >"$T/out" 2>&1; grep -q "web1" "$T/out" && ! grep -q "app1" "$T/out" \
    && ok "refused plans moved nothing" || notok "refused plans moved VMs" "$(cat "$T/out")"

echo "1..$n"
