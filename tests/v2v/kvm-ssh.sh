#!/bin/bash
# The kvm plugin's qmp transport over ssh in moves between backends: a disk
# read from an ssh host (`nbdcopy -- [ qemu-nbd -r ... ] -` run there, its
# stdout through the backend's ssh connection) and written to one
# (`qemu-img create` there, then nbdcopy from stdin into qemu-nbd), against
# a real OpenSSH server this test starts on loopback (its own keys,
# key-only root login, strict host-key checking through ssh-config=).
# kvmL is a local run directory, kvmS the same machine's other run directory
# reached as ssh://root@127.0.0.1:PORT/DIR. Checked with qemu-img on the
# files themselves and the vm.conf written there.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
V2V="$VMSHIFT_BUILDDIR/tests/v2v/v2v-drive"
SSHD=/usr/sbin/sshd
[ -x "$V2V" ] || skip_all "tests/v2v/v2v-drive is not built"
[ -x "$SSHD" ] || skip_all "openssh-server is not installed (no $SSHD)"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
    skip_all "openssh-client is not installed"
command -v nbdcopy >/dev/null || skip_all "libnbd-bin is not installed"
kvm_setup

SSHD_PID=
MADE_PRIVSEP=
ssh_cleanup() {
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null
        wait "$SSHD_PID" 2>/dev/null
    fi
    [ -z "$MADE_PRIVSEP" ] || rmdir /run/sshd 2>/dev/null
    kvm_cleanup
}
trap ssh_cleanup EXIT

S="$KT/ssh"
mkdir -p "$S"
chmod 700 "$S"
for k in host_key id; do
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
echo "[127.0.0.1]:$PORT $(cat "$S/host_key.pub")" > "$S/known_hosts"
cat > "$S/config" <<EOC
Host *
    IdentityFile $S/id
    IdentitiesOnly yes
    UserKnownHostsFile $S/known_hosts
    GlobalKnownHostsFile /dev/null
EOC
chmod 600 "$S/config"
cat > "$KT/v2v.conf" <<EOC
[backend kvmL]
plugin=kvm
hosts=a=$KT/a
[backend kvmS]
plugin=kvm
hosts=b=ssh://root@127.0.0.1:$PORT$KT/b
ssh-config=$S/config
EOC
v2v() { timeout 600 "$V2V" --config "$KT/v2v.conf" "$@"; }
conf() { # conf FILE GROUP KEY
    awk -v g="[$2]" -v k="$3" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
        in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
}

# a local VM with two disks: qcow2 and raw, patterned data
mkdir -p "$KT/a/vms/two"
qemu-img create -q -f qcow2 "$KT/a/images/two-0.qcow2" 24M
qemu-io -f qcow2 -c 'write -P 0x11 0 5M' -c 'write -P 0x22 20M 1M' "$KT/a/images/two-0.qcow2" >/dev/null
head -c 3M /dev/urandom > "$KT/a/images/two-1.raw"
cat > "$KT/a/vms/two/vm.conf" <<EOC
[vm]
name=two
memory-mib=128
[disk vda]
path=$KT/a/images/two-0.qcow2
format=qcow2
[disk vdb]
path=$KT/a/images/two-1.raw
format=raw
bus=scsi
[nic net0]
mac=52:54:00:aa:cc:01
EOC

out=$(v2v --check-only kvmL two kvmS b 2>&1)
check "check_import on the ssh host: the SCSI disk is a bus warning, nothing else" \
    test "$(grep -c '^finding' <<<"$out")" = 1 -a "$(grep -c '^finding warning [a-z-]* vdb' <<<"$out")" = 1
out=$(v2v --force kvmL two kvmS b 2>&1)
rc=$?
check "local -> ssh host: the move (both disks written over ssh, verified over ssh)" \
    grep -q '^ok=1' <<<"$out"
[ $rc = 0 ] || diag "$out"
check "on the ssh host: two qcow2 images with the source's guest bytes (qemu-img compare)" \
    bash -c "qemu-img compare -q '$KT/a/images/two-0.qcow2' '$KT/b/images/two-vda.qcow2' &&
             qemu-img compare -q -f raw -F qcow2 '$KT/a/images/two-1.raw' '$KT/b/images/two-vdb.qcow2'"
check "on the ssh host: vm.conf with the MAC, the disks in order, vdb on scsi" \
    test "$(conf "$KT/b/vms/two/vm.conf" "nic net0" mac)/$(conf "$KT/b/vms/two/vm.conf" "disk vdb" bus)" = \
    "52:54:00:aa:cc:01/scsi"

# back: the ssh host as the source, into a new name on the local host
sed -i 's/^name=two$/name=two2/' "$KT/b/vms/two/vm.conf"
mv "$KT/b/vms/two" "$KT/b/vms/two2"
out=$(v2v --force kvmS two2 kvmL a 2>&1)
rc=$?
check "ssh host -> local: the move (disks read over ssh)" grep -q '^ok=1' <<<"$out"
[ $rc = 0 ] || diag "$out"
check "local copies hold the same guest bytes (qemu-img compare)" \
    bash -c "qemu-img compare -q '$KT/a/images/two-0.qcow2' '$KT/a/images/two2-vda.qcow2' &&
             qemu-img compare -q -f raw -F qcow2 '$KT/a/images/two-1.raw' '$KT/a/images/two2-vdb.qcow2'"

# a failed import to the ssh host: nothing is left there
rm -rf "$KT/b/vms/two2" "$KT/b/images/two-"*
out=$(v2v --force --fail-disk vdb kvmL two kvmS b 2>&1)
check "an import to the ssh host whose second disk breaks fails" grep -q '^error=' <<<"$out"
check "nothing of it is left on the ssh host" \
    bash -c "! ls '$KT/b/vms/two' '$KT/b/images/two-'* 2>/dev/null | grep -q ."
echo "1..$TAP_N"
exit $TAP_FAILED
