#!/bin/bash
# The qmp transport over ssh, through the `vmshift` command: hostA is a local
# run directory, hostB is ssh://root@127.0.0.1:PORT/DIR served by a real
# OpenSSH server this test starts (its own sshd_config, fresh host and client
# keys, key-only root login, on a random loopback port). The plugin reaches
# hostB with ssh-config= (ssh -F) and strict host-key checking: inventory,
# check, live migration A->B and B->A with the guest's heartbeat on the
# destination console each time, cold migration to B with --start, cold
# migration of a VM whose disk is copied between the hosts over NBD, acl
# recreate on hostB over ssh (libacl model, getfacl/setfacl there), a wrong
# known_hosts and an unreachable port (one clear error, nothing left
# running), and the ssh-config checks (private identity, file exists).
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
VMSHIFT="$VMSHIFT_BUILDDIR/host/vmshift"
SSHD=/usr/sbin/sshd
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
[ -x "$SSHD" ] || skip_all "openssh-server is not installed (no $SSHD)"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
    skip_all "openssh-client is not installed"
command -v socat >/dev/null || skip_all "socat is not installed (QMP over ssh needs it)"
kvm_setup

SSHD_PID=
MADE_PRIVSEP=
ssh_cleanup() {
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null
        wait "$SSHD_PID" 2>/dev/null
    fi
    # shared-connection masters of a vmshift that was killed
    local p
    for p in $(pgrep -f -- "$KT/tmp/vmshift-ssh-"); do kill "$p" 2>/dev/null; done
    [ -z "$MADE_PRIVSEP" ] || rmdir /run/sshd 2>/dev/null
    kvm_cleanup
}
trap ssh_cleanup EXIT

S="$KT/ssh"
mkdir -p "$S" "$KT/state" "$KT/tmp"
chmod 700 "$S"
for k in host_key id other_key; do
    timeout 30 ssh-keygen -q -t ed25519 -N '' -C "vmshift-test-$k" -f "$S/$k" || exit 1
done
cp "$S/id.pub" "$S/authorized_keys"

# sshd's privilege separation directory (compiled in); Debian's init
# script makes it, nothing here has run that
if [ ! -d /run/sshd ]; then
    mkdir -m 755 /run/sshd && MADE_PRIVSEP=1
fi
start_sshd() {
    local port=$1
    cat > "$S/sshd_config" <<EOC
ListenAddress 127.0.0.1
Port $port
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
# the keys live in a temp dir below the world-writable /tmp
StrictModes no
EOC
    : > "$S/sshd.log"
    "$SSHD" -D -f "$S/sshd_config" -E "$S/sshd.log" &
    SSHD_PID=$!
    local i
    for i in $(seq 50); do
        grep -q "Server listening" "$S/sshd.log" && return 0
        kill -0 "$SSHD_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill "$SSHD_PID" 2>/dev/null
    wait "$SSHD_PID" 2>/dev/null
    SSHD_PID=
    return 1
}
PORT=
for try in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 40000))
    if start_sshd "$p"; then PORT=$p; break; fi
done
if [ -z "$PORT" ]; then
    echo "1..1"
    echo "not ok 1 - sshd starts on 127.0.0.1"
    sed 's/^/# /' "$S/sshd.log"
    exit 1
fi
diag "sshd pid $SSHD_PID on 127.0.0.1:$PORT"

# the client side: what a site would put in /etc/vmshift/kvm-ssh.conf
echo "[127.0.0.1]:$PORT $(cat "$S/host_key.pub")" > "$S/known_hosts"
echo "[127.0.0.1]:$PORT $(cat "$S/other_key.pub")" > "$S/wrong_known_hosts"
client_config() { # FILE KNOWN-HOSTS IDENTITY
    cat > "$1" <<EOC
Host *
    IdentityFile $3
    IdentitiesOnly yes
    UserKnownHostsFile $2
    GlobalKnownHostsFile /dev/null
EOC
    chmod 600 "$1"
}
client_config "$S/config" "$S/known_hosts" "$S/id"
client_config "$S/config-wrong-key" "$S/wrong_known_hosts" "$S/id"
cp "$S/id" "$S/id-loose"
chmod 644 "$S/id-loose"
client_config "$S/config-loose" "$S/known_hosts" "$S/id-loose"

B="ssh://root@127.0.0.1:$PORT$KT/b"
vconf() { # FILE HOSTB-SPEC SSH-CONFIG
    printf '[vmshift]\nstate-dir=%s\n\n[backend kvm]\nplugin=kvm\nhosts=hostA=%s, hostB=%s\nssh-config=%s\n' \
        "$KT/state" "$KT/a" "$2" "$3" > "$1"
}
vconf "$KT/vmshift.conf" "$B" "$S/config"
vconf "$KT/wrong-key.conf" "$B" "$S/config-wrong-key"
vconf "$KT/loose.conf" "$B" "$S/config-loose"
vconf "$KT/missing.conf" "$B" "$S/no-such-config"
# port 1 on loopback: nothing listens there
vconf "$KT/down.conf" "ssh://root@127.0.0.1:1$KT/b" "$S/config"

# vmshift with TMPDIR in the test dir: the shared ssh connections' private
# directories must be gone after every run
V() { TMPDIR="$KT/tmp" timeout "${V_TIMEOUT:-300}" "$VMSHIFT" --config "${CONF:-$KT/vmshift.conf}" \
          --plugin-dir "$VMSHIFT_BUILDDIR/plugins/kvm/.libs" "$@"; }
# nothing of ours left: no ssh client or master, no connection directory
no_leftovers() {
    ! pgrep -f -- "-F $S/" >/dev/null && ! pgrep -f -- "$KT/tmp/" >/dev/null &&
        [ -z "$(ls -A "$KT/tmp")" ]
}

check "plain ssh with the test's client config reaches sshd (host key checked)" \
    timeout 30 ssh -F "$S/config" -o BatchMode=yes -p "$PORT" root@127.0.0.1 -- true

# ---- ssh-config checks (no guest needed) ----
CONF="$KT/loose.conf" V hosts >"$KT/out-loose" 2>"$KT/err-loose"
rc=$?
check "an IdentityFile readable by others is refused: non-zero exit, one line naming it" \
    bash -c 'test "$1" != 0 && grep -q "id-loose is accessible by group/others (mode 0644); run: chmod 600" "$2" &&
             test "$(grep -c "id-loose" "$2")" = 1' _ "$rc" "$KT/err-loose"
CONF="$KT/missing.conf" V hosts >"$KT/out-missing" 2>"$KT/err-missing"
rc=$?
check "a missing ssh-config is refused with its path" \
    bash -c 'test "$1" != 0 && grep -q "ssh-config $2: No such file or directory" "$3"' \
    _ "$rc" "$S/no-such-config" "$KT/err-missing"

# ---- a guest on hostA ----
define_vm "$KT/a" demo ""
timeout 120 "$DRIVE" start "$KT/a" demo >/dev/null
check "guest boots on hostA" wait_console "$KT/a" demo HEARTBEAT 90

out=$(V hosts 2>&1)
check "vmshift hosts: hostB over ssh is ok and runs QEMU" grep -qE "^kvm +hostB +ok +QEMU [0-9.]+ " <<<"$out"
out=$(V vms 2>&1)
check "vmshift vms: demo runs on hostA" grep -qE "^kvm +demo +hostA +running " <<<"$out"
V check demo --to hostB >"$KT/out-check" 2>&1
check "vmshift check demo --to hostB (over ssh) passes" test $? = 0
check "no ssh process or connection directory left after a command" no_leftovers

# ---- live A -> B over ssh ----
V migrate demo --to hostB >"$KT/out-mig1" 2>&1
check "vmshift migrate demo --to hostB (live, over ssh) exits 0" test $? = 0
check "guest alive on hostB after the switchover (new heartbeat, no BUG)" alive_on "$KT/b" demo
check "hostA has no demo any more" bash -c "! test -e '$KT/a/vms/demo/vm.conf' && ! running_on '$KT/a' demo"
out=$(V vms --host hostB 2>&1)
check "vmshift vms --host hostB lists demo running there (inventory over ssh)" \
    grep -qE "^kvm +demo +hostB +running " <<<"$out"
V check demo --to hostA >"$KT/out-check2" 2>&1
check "vmshift check demo --to hostA from hostB passes" test $? = 0

# ---- live B -> A ----
V migrate demo --to hostA >"$KT/out-mig2" 2>&1
check "vmshift migrate demo --to hostA (live, source over ssh) exits 0" test $? = 0
check "guest alive on hostA again" alive_on "$KT/a" demo
check "hostB has no demo any more" bash -c "! test -e '$KT/b/vms/demo/vm.conf' && ! running_on '$KT/b' demo"
check "no ssh process or connection directory left after migrations" no_leftovers

# ---- a wrong known_hosts: refused, nothing moves ----
pid_a=$(qemu_pid "$KT/a" demo)
CONF="$KT/wrong-key.conf" V migrate demo --to hostB >"$KT/out-wrong" 2>"$KT/err-wrong"
rc=$?
check "wrong host key: vmshift migrate exits non-zero" test "$rc" != 0
# the job log lists each finding once (the backend's check repeating the
# host's own "unavailable" reason is dropped); the verdict is one line, and
# ssh's multi-line banner never shows
check "wrong host key: the reason is listed once among the findings" \
    bash -c 'test "$(grep -c "error: check .*Host key verification failed" "$1")" = 1' _ "$KT/err-wrong"
check "wrong host key: one verdict line says host key verification failed for hostB" \
    bash -c 'test "$(grep -c "^vmshift: " "$1")" = 1 &&
             grep "^vmshift: " "$1" | grep -q "hostB.*ssh to root@127.0.0.1 port [0-9]* failed: Host key verification failed" &&
             ! grep -qE "^@|IDENTIFICATION HAS CHANGED|remove with" "$1"' _ "$KT/err-wrong"
check "wrong host key: the VM still runs on hostA, nothing on hostB, nothing left running" \
    bash -c "test '$(qemu_pid "$KT/a" demo)' = '$pid_a' && running_on '$KT/a' demo &&
             ! test -e '$KT/b/vms/demo'" 
check "wrong host key: no ssh process or connection directory left" no_leftovers
out=$(CONF="$KT/wrong-key.conf" V hosts 2>&1)
check "wrong host key: vmshift hosts shows hostB disconnected and why" \
    grep -qE "^kvm +hostB +disconnected .*Host key verification failed" <<<"$out"

# ---- an ssh host nobody answers on ----
CONF="$KT/down.conf" V migrate demo --to hostB >"$KT/out-down" 2>"$KT/err-down"
rc=$?
check "unreachable host: vmshift migrate exits non-zero with a clear error" \
    bash -c 'test "$1" != 0 && grep -q "ssh to root@127.0.0.1 port 1 failed: connect to host 127.0.0.1 port 1: Connection refused" "$2"' \
    _ "$rc" "$KT/err-down"
out=$(CONF="$KT/down.conf" V hosts 2>&1)
check "unreachable host: vmshift hosts shows hostB disconnected (connection refused)" \
    grep -qE "^kvm +hostB +disconnected .*Connection refused" <<<"$out"
check "unreachable host: the VM still runs on hostA" running_on "$KT/a" demo

# ---- cold A -> B, started there over ssh ----
timeout 60 "$DRIVE" qmp "$KT/a" demo quit >/dev/null 2>&1
for i in $(seq 100); do running_on "$KT/a" demo || break; sleep 0.2; done
check "guest stopped on hostA" bash -c "! running_on '$KT/a' demo"
V migrate demo --to hostB --cold --start >"$KT/out-cold" 2>&1
check "vmshift migrate demo --to hostB --cold --start exits 0" test $? = 0
check "guest boots on hostB, started over ssh (heartbeat)" \
    bash -c "running_on '$KT/b' demo && alive_on '$KT/b' demo"
out=$(V vms 2>&1)
check "vmshift vms: demo runs on hostB" grep -qE "^kvm +demo +hostB +running " <<<"$out"

# ---- cold A -> B with its disk: copied over NBD between the hosts ----
# the image has data and access rules of its own (mode 0640, daemon may
# read); hostB's QEMU runs as nobody
timeout 60 qemu-img create -q -f qcow2 "$KT/a/images/data.qcow2" 64M
timeout 60 qemu-io -f qcow2 -c "write -P 0x5a 0 1M" -c "write -P 0xa5 32M 512k" \
    "$KT/a/images/data.qcow2" >/dev/null
chmod 640 "$KT/a/images/data.qcow2"
setfacl -m u:daemon:r "$KT/a/images/data.qcow2"
sum_a=$(timeout 60 qemu-img convert -O raw "$KT/a/images/data.qcow2" /dev/stdout | sha256sum)
define_vm "$KT/a" data "" "[disk vda]
path=$KT/a/images/data.qcow2
format=qcow2"
printf '[host]\nqemu-user=nobody\n' > "$KT/b/host.conf"
V migrate data --to hostB --cold --path "$KT/b/images" >"$KT/out-colddisk" 2>&1
check "vmshift migrate data --to hostB --cold --path (disk over NBD) exits 0" test $? = 0
nb="$KT/b/images/data.qcow2"
check "the image arrived on hostB as qcow2 with the same content" \
    bash -c 'timeout 60 qemu-img info "$1" | grep -q "file format: qcow2" &&
             test "$(timeout 60 qemu-img convert -O raw "$1" /dev/stdout | sha256sum)" = "$2"' _ "$nb" "$sum_a"
check "hostA no longer has the VM or its image; hostB's definition points at the new path" \
    bash -c "! test -e '$KT/a/vms/data' && ! test -e '$KT/a/images/data.qcow2' &&
             grep -q 'path=$nb' '$KT/b/vms/data/vm.conf'"
check "no qemu-nbd left serving the image" bash -c "! pgrep -f '[q]emu-nbd.*data[.]qcow2' >/dev/null"

# ---- acl recreate on hostB, over ssh ----
V acl recreate data >"$KT/out-acl1" 2>&1
check "vmshift acl recreate data (on hostB, over ssh) exits 0" test $? = 0
acl_of() { getfacl -cEn "$1" 2>/dev/null | tr '\n' ' '; }
daemon_uid=$(id -u daemon) nobody_uid=$(id -u nobody)
check "the image on hostB has the source's rules plus rw for hostB's QEMU user" \
    bash -c 'a=$(getfacl -cEn "$1"); grep -q "^user:$2:r--" <<<"$a" && grep -q "^user:$3:rw-" <<<"$a" &&
             grep -q "^group::r--" <<<"$a" && grep -q "^other::---" <<<"$a"' _ "$nb" "$daemon_uid" "$nobody_uid"
before=$(acl_of "$nb")
setfacl -x "u:$daemon_uid" "$nb"
chmod o+r "$nb"
V acl recreate data >"$KT/out-acl2" 2>&1
check "a change made outside vmshift is replaced on the next acl recreate, and reported" \
    bash -c 'test "$(getfacl -cEn "$1" | tr "\n" " ")" = "$2" && grep -q "ACL " "$3"' \
    _ "$nb" "$before" "$KT/out-acl2"
check "no ssh process or connection directory left at the end" no_leftovers

[ "$TAP_FAILED" = 0 ] || {
    diag "outputs:"
    for f in "$KT"/out-* "$KT"/err-*; do diag "== ${f##*/}"; tail -n 8 "$f" | sed 's/^/# /'; done
    diag "sshd log:"; tail -n 20 "$S/sshd.log" | sed 's/^/# /'
}
echo "1..$TAP_N"
exit 0
