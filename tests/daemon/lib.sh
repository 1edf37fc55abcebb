# Shared by tests/daemon/*.sh: a skeleton backend ("demo", fast; "slow",
# 60 s transfers) whose peer state is a file the tests read, and vmshiftd
# started on a socket in the test's directory.
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
VMSHIFTD=$B/daemon/vmshiftd
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshiftd-test.XXXXXX")
chmod 755 "$T"
SOCK=$T/d.sock
DPID=
pids=
cleanup() {
    for p in $DPID $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }

[ -x "$VMSHIFTD" ] || skip_all "vmshiftd not built (configure --enable-daemon, libsoup-3.0-dev)"
[ -f "$B/tests/skeleton/.libs/skeleton.so" ] || skip_all "skeleton plugin not built"
# the plugin loader refuses a plugin under a world-writable directory without
# the sticky bit: say so once rather than fail every test
case $(stat -c %a "${TMPDIR:-/tmp}") in 1777|*[0-5]?|*[0-5]) ;; *) skip_all "${TMPDIR:-/tmp} is world-writable without the sticky bit";; esac
command -v curl >/dev/null || skip_all "curl not installed"

mkdir -p "$T/plugins" "$T/etc/backends.d"
chmod 755 "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
printf '[group pair]\nhosts=demo:alpha;demo:beta\n' >"$T/etc/vmshift.conf"
cat >"$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta
vms=web1@alpha;db1@alpha;app1@alpha
transfer-seconds=1
state-file=$T/demo.state
[backend slow]
plugin=skeleton
hosts=alpha;beta
vms=big1@alpha;big2@alpha;big3@alpha
transfer-seconds=60
state-file=$T/slow.state
EOC

V() { timeout 60 "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
# the daemon's client: --daemon names the test's socket
VD() { V --daemon "$SOCK" "$@"; }
api() { curl -sS --max-time 30 --unix-socket "$SOCK" "$@"; }
# the skeleton peer's own record of where VM $2 is (backend file $1)
peer_host() { sed -n "/^\[vm $2\]/,/^\[/s/^host=//p" "$T/$1.state" | head -1; }

start_daemon() {
    rm -f "$SOCK" # one a killed daemon left must not count as the new one's
    "$VMSHIFTD" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" \
        --state-dir "$T/state" --socket "$SOCK" --data-dir "$S/data" "$@" >>"$T/d.log" 2>&1 &
    DPID=$!
    i=0
    while [ $i -lt 100 ] && ! [ -S "$SOCK" ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$SOCK" ]
}
stop_daemon() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    DPID=
}
# waits up to $2 seconds for job $1 to leave running; prints its state
wait_job() {
    [ -n "$1" ] || return
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        st=$(V --json job show "$1" 2>/dev/null | "$B/tests/host/json-check" state)
        case $st in running|queued|"") ;; *) echo "$st"; return;; esac
        sleep 0.1; i=$((i + 1))
    done
    echo "$st"
}
