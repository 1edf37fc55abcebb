#!/bin/sh
# Start-up (issue 15), TAP: no plugin's open waits on the network. Backends
# of each network plugin (esx, hyperv, kvm over libvirt, kvm/qmp over ssh)
# point at a loopback port that takes connections and never answers (a
# host that hangs) or at one that refuses them. From the peer's side (the
# listener's own log of the connections it took):
#   * `vmshift backends` succeeds, lists them all, and no host is contacted;
#   * a real operation contacts the host and fails with one line naming
#     the backend and the host, non-zero exit (within the configured
#     timeouts: the commands run under a guard, no timing is asserted);
#   * `backends --check` contacts them, all at once, and says which do not
#     answer (exit 1).
# bench/startup measures the time of `backends` against `--help`.
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-startup.XXXXXX")
HOLE=
cleanup() {
    [ -n "$HOLE" ] && kill "$HOLE" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() {
    d=$1
    shift
    if "$@"; then ok "$d"; else notok "$d" "stdout: $(cat "$T/out" 2>/dev/null | head -5)" \
        "stderr: $(cat "$T/err" 2>/dev/null | head -5)"; fi
}

command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
mkdir -p "$T/plugins" "$T/state" "$T/backends.d"
have=
for p in esx hyperv kvm; do
    if [ -e "$B/plugins/$p/.libs/$p.so" ]; then
        cp "$B/plugins/$p/.libs/$p.so" "$T/plugins/"
        have="$have $p"
    fi
done
[ -n "$have" ] || { echo "1..0 # SKIP no network plugin built"; exit 0; }
has() { case " $have " in *" $1 "*) return 0 ;; esac; return 1; }
libvirt=no
has kvm && grep -q virConnectOpen "$T/plugins/kvm.so" 2>/dev/null && libvirt=yes
# libvirt's RPC crashes under ASan's XDR interceptors (libtirpc), as the
# libvirt suites say: in a sanitizer build no libvirt connection is made
# (the backends are still listed)
lvrpc=$libvirt
ldd "$T/plugins/kvm.so" 2>/dev/null | grep -q libasan && lvrpc=no

# The hanging host: completes the handshake, logs each connection (one
# line), never reads nor answers. The refused port: bound, then closed.
python3 -c '
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
r = socket.socket(); r.bind(("127.0.0.1", 0)); refused = r.getsockname()[1]; r.close()
print(s.getsockname()[1], refused, flush=True)
log = open(sys.argv[1], "a", buffering=1)
held = []
while True:
    c, a = s.accept(); held.append(c); log.write("conn %s:%d\n" % a)
' "$T/conns" >"$T/ports" &
HOLE=$!
i=0
while [ ! -s "$T/ports" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
read -r PORT REFUSED <"$T/ports" || { echo "1..0 # SKIP no listener"; exit 0; }
: >>"$T/conns"
conns() { wc -l <"$T/conns" | tr -d ' '; }

printf 'user=root\npassword=not-a-secret\n' >"$T/creds"
chmod 600 "$T/creds"
printf '[vmshift]\nstate-dir=%s\n' "$T/state" >"$T/vmshift.conf"
if has esx; then
    printf '[backend vc]\nplugin=esx\nurl=https://127.0.0.1:%s/sdk\ncredentials=%s\ninsecure=true\ntimeout=2\nconnect-timeout=2\n' \
        "$PORT" "$T/creds" >"$T/backends.d/vc.conf"
fi
if has hyperv; then
    printf '[backend hv]\nplugin=hyperv\nhosts=https://127.0.0.1:%s/wsman\ncredentials=%s\nauth=basic\ninsecure=true\ntimeout=2\nconnect-timeout=2\n' \
        "$PORT" "$T/creds" >"$T/backends.d/hv.conf"
fi
if [ $libvirt = yes ]; then
    printf '[backend lv]\nplugin=kvm\ntransport=libvirt\nhosts=kvm1=qemu+tcp://127.0.0.1:%s/system\nconnect-timeout=2\n' \
        "$PORT" >"$T/backends.d/lv.conf"
    printf '[backend lr]\nplugin=kvm\ntransport=libvirt\nhosts=kvm2=qemu+tcp://127.0.0.1:%s/system\n' \
        "$REFUSED" >"$T/backends.d/lr.conf"
fi
if has kvm; then
    printf '[backend qs]\nplugin=kvm\nhosts=node1=ssh://root@127.0.0.1:%s/srv/vmshift\n' \
        "$PORT" >"$T/backends.d/qs.conf"
fi
# Each command under a guard well above the configured timeouts.
V() { timeout 60 "$VMSHIFT" --config "$T/vmshift.conf" --plugin-dir "$T/plugins" "$@" >"$T/out" 2>"$T/err"; }
# stderr without the TLS warning of insecure=true (a test-only setting)
errlines() { grep -v 'insecure=true' "$T/err" | grep -v '^$'; }
one_line() { [ "$(errlines | wc -l)" -eq 1 ]; }
says() { errlines | grep -qF -- "$1"; }


# ---- backends: no host contacted ---------------------------------------
V backends
rc=$?
check "backends: exit 0 with the hosts hanging" test $rc -eq 0
listed=yes
for b in vc hv lv lr qs; do
    [ -e "$T/backends.d/$b.conf" ] || continue
    grep -qE "^$b +[a-z]+ +[^ ]+ +yes +ready " "$T/out" || listed="no ($b)"
done
check "backends: every backend listed, ready" test "$listed" = yes
check "backends: no host was contacted (the listener took no connection)" test "$(conns)" -eq 0
V --json backends
check "backends --json: exit 0, no host contacted" test $? -eq 0 -a "$(conns)" -eq 0

# ---- a real operation contacts the host and fails in one line -----------
if has hyperv; then
    V vms --backend hv
    rc=$?
    check "hyperv: vms fails (exit $rc), one line" test $rc -ne 0 -a "$(errlines | wc -l)" -eq 1
    check "hyperv: the line names the backend and the host" \
        sh -c 'grep -v insecure=true "$1" | grep -q "backend hv: Hyper-V host https://127.0.0.1:$2/wsman: .*timed out"' \
        _ "$T/err" "$PORT"
else
    skip "hyperv: vms fails" "hyperv plugin not built"
    skip "hyperv: the line names the backend and the host" "hyperv plugin not built"
fi
c=$(conns)
check "the operation did contact the host ($c connection(s))" test "$c" -ge 1
if has esx; then
    V vms --backend vc
    rc=$?
    check "esx: vms fails (exit $rc), one line naming the backend and the server" \
        sh -c 'test "$1" -ne 0 && test "$(grep -v insecure=true "$2" | grep -vc "^$")" -eq 1 &&
            grep -q "backend vc: .*https://127.0.0.1:$3/sdk: timed out" "$2"' _ $rc "$T/err" "$PORT"
else
    skip "esx: vms fails" "esx plugin not built"
fi
if [ $lvrpc = yes ]; then
    V vms --backend lv
    rc=$?
    r=no
    [ $rc -ne 0 ] && one_line && r=yes
    check "kvm/libvirt, host hanging: vms fails (exit $rc) after connect-timeout, one line" test $r = yes
    check "kvm/libvirt: the line names backend, host and URI" \
        says "backend 'lv': host kvm1: cannot connect to qemu+tcp://127.0.0.1:$PORT/system: no answer within 2 s"
    V check lv:web1 --to kvm1
    rc=$?
    r=no
    [ $rc -ne 0 ] && one_line && says "backend 'lv': host kvm1: cannot connect" && r=yes
    check "kvm/libvirt: check fails too (exit $rc), one line naming backend and host" test $r = yes
    V vms --backend lr
    rc=$?
    r=no
    [ $rc -ne 0 ] && one_line &&
        says "backend 'lr': host kvm2: cannot connect to qemu+tcp://127.0.0.1:$REFUSED/system" && r=yes
    check "kvm/libvirt, connection refused: vms fails (exit $rc), one line naming backend, host, URI" \
        test $r = yes
else
    for d in "kvm/libvirt: vms fails" "kvm/libvirt: the line names backend, host and URI" \
        "kvm/libvirt: check fails too" "kvm/libvirt, connection refused"; do
        skip "$d" "kvm plugin without libvirt, or a sanitizer build (libvirt's RPC under ASan)"
    done
fi
if has kvm; then
    # ssh to a refused port: the host is shown disconnected, with ssh's reason
    sed "s/:$PORT\//:$REFUSED\//" "$T/backends.d/qs.conf" >"$T/qs.conf" && mv "$T/qs.conf" "$T/backends.d/qs.conf"
    V hosts --backend qs
    check "kvm/qmp over ssh, refused: hosts shows node1 disconnected with ssh's reason" \
        grep -qE "^qs +node1 +disconnected .*ssh to root@127.0.0.1 port $REFUSED failed" "$T/out"
else
    skip "kvm/qmp over ssh" "kvm plugin not built"
fi

if has hyperv; then
    # two hosts that hang: contacted at once (in parallel), each once
    : >"$T/conns"
    printf '[backend hv2]\nplugin=hyperv\nhosts=https://127.0.0.1:%s/wsman;https://127.0.0.1:%s/wsman2\ncredentials=%s\nauth=basic\ninsecure=true\ntimeout=2\nconnect-timeout=2\n' \
        "$PORT" "$PORT" "$T/creds" >"$T/backends.d/hv2.conf"
    V vms --backend hv2
    rc=$?
    c=$(conns)
    r=no
    [ $rc -ne 0 ] && one_line && says "backend hv2: Hyper-V host https://127.0.0.1:$PORT/wsman" && r=yes
    check "hyperv, two hosts hanging: vms fails (exit $rc) in one line naming the first" test $r = yes
    check "hyperv, two hosts: each contacted once ($c connections)" test "$c" -eq 2
    rm -f "$T/backends.d/hv2.conf"
else
    skip "hyperv, two hosts" "hyperv plugin not built"
    skip "hyperv, two hosts: each contacted once" "hyperv plugin not built"
fi

# ---- backends --check ----------------------------------------------------
: >"$T/conns"
rm -f "$T/backends.d/qs.conf" "$T/backends.d/lr.conf"
[ $lvrpc = yes ] || rm -f "$T/backends.d/lv.conf"
V backends --check
rc=$?
check "backends --check: exit 1 (hosts do not answer)" test $rc -eq 1
bad=
for b in vc hv lv; do
    [ -e "$T/backends.d/$b.conf" ] || continue
    grep -qE "^$b +.* unreachable +.*(127.0.0.1:$PORT|kvm1)" "$T/out" || bad="$bad $b"
done
check "backends --check: each one unreachable, its host named${bad:+ (not:$bad)}" test -z "$bad"
check "backends --check: the hosts were contacted" test "$(conns)" -ge 1
if command -v python3 >/dev/null; then
    V --json backends --check
    check "backends --json --check: reachable false, with the error" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["backends"] and all(b["reachable"] is False and b["status"] == "unreachable" and b["error"]
                             for b in d["backends"]), d' "$T/out"
fi
[ -z "$(grep -rl not-a-secret "$T/out" "$T/err" 2>/dev/null)" ] && ok "no password in any output" ||
    notok "no password in any output"
echo "1..$n"
