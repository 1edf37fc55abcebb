#!/bin/bash
# ESX -> KVM (issue 16 item 6): the bootable test guest's disk
# (tests/guest/make-boot-disk.sh) is put on the vSphere simulator through
# vmshift itself (skeleton -> esx, the disk PUT on the datastore), then moved
# `vmshift migrate VM --to kvm:HOST --start` from ESX to a bare QEMU host of
# the kvm plugin (qmp transport). Checked from each peer's own view: the
# datastore's flat file (sha256), the kvm host's vm.conf and qcow2 image
# (qemu-img, sha256 of its raw conversion), and the guest's heartbeat on
# the QEMU console: it booted from the disk that came from ESX. Then a
# failed ESX -> KVM import (the definition cannot be written after the disk
# was) leaves nothing on the kvm host and the ESX VM as it was.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
B=$VMSHIFT_BUILDDIR
LAUNCHER=$B/tests/vcsim/vcsim-launcher
CHECKER=$B/tests/vcsim/vcsim-check
ESX=$B/plugins/esx/.libs/esx.so
SKEL=$B/tests/skeleton/.libs/skeleton.so
VMSHIFT=$B/host/vmshift
[ -x "$LAUNCHER" ] && [ -x "$CHECKER" ] ||
    skip_all "vSphere simulator not built (needs golang-go and golang-github-vmware-govmomi-dev)"
for p in "launcher:$LAUNCHER" "check:$CHECKER"; do
    want=$(sh "$VMSHIFT_SRCDIR/tests/vcsim/source-hash" "$VMSHIFT_SRCDIR/tests/vcsim/${p%%:*}")
    have=$("${p#*:}" -source-hash 2>/dev/null)
    if [ -z "$want" ] || [ "$want" != "$have" ]; then
        echo "Bail out! ${p#*:} was built from other sources than tests/vcsim/${p%%:*}"
        exit 1
    fi
done
[ -f "$ESX" ] && [ -f "$SKEL" ] && [ -x "$VMSHIFT" ] ||
    skip_all "esx plugin, skeleton plugin or vmshift not built"
[ -f "$VMSHIFT_SRCDIR/plugins/esx/esx-v2v.c" ] || skip_all "the esx plugin has no moves between backends"
command -v syslinux >/dev/null && command -v mcopy >/dev/null ||
    skip_all "syslinux and mtools are not installed (see .ci/deps/v2v.txt)"
kvm_setup
timeout 300 "$VMSHIFT_SRCDIR/tests/guest/make-boot-disk.sh" "$GUEST" >&2 ||
    { echo "1..1"; echo "not ok 1 - building the bootable guest disk"; exit 1; }
BOOT="$GUEST/boot-disk.raw"
BOOT_SHA=$(sha256sum < "$BOOT" | cut -d' ' -f1)

SIM_PID=
esx_cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill "$SIM_PID" 2>/dev/null
        wait "$SIM_PID" 2>/dev/null
    fi
    kvm_cleanup
}
trap esx_cleanup EXIT
: > "$KT/sim.out"
"$LAUNCHER" -ca-file "$KT/ca.pem" -credentials "$KT/creds" -task-step-ms 20 \
    > "$KT/sim.out" 2> "$KT/sim.err" &
SIM_PID=$!
for i in $(seq 600); do
    [ "$(wc -l < "$KT/sim.out")" -ge 2 ] && break
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
done
URL=$(sed -n 1p "$KT/sim.out")
if [ -z "$(sed -n 2p "$KT/sim.out")" ]; then
    echo "Bail out! the simulator did not start"
    sed 's/^/# /' "$KT/sim.err"
    exit 1
fi

P="$KT/plugins"
mkdir -p "$P" "$KT/state"
chmod 755 "$KT" "$P"
install -m 0755 "$ESX" "$SKEL" "$B/plugins/kvm/.libs/kvm.so" "$P/"
cat > "$KT/vmshift.conf" <<EOC
[vmshift]
state-dir=$KT/state

[backend esx]
plugin=esx
url=$URL
credentials=$KT/creds
ca-file=$KT/ca.pem

[backend skel]
plugin=skeleton
hosts=alpha
vms=bootx@alpha
state-file=$KT/skel.state

[backend kvm]
plugin=kvm
hosts=b=$KT/b
EOC
# the kvm host knows vSphere's port group as a network of its own
cat > "$KT/b/networks.conf" <<EOC
[network VM Network]
netdev=user
EOC
VM() { timeout 600 "$VMSHIFT" --config "$KT/vmshift.conf" --plugin-dir "$P" --daemon no "$@"; }
sim() { timeout 60 "$CHECKER" -url "$URL" -ca-file "$KT/ca.pem" -credentials "$KT/creds" "$@"; }
conf() { # conf FILE GROUP KEY
    awk -v g="[$2]" -v k="$3" '$0 == g { in_g = 1; next } /^\[/ { in_g = 0 }
        in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
}
raw_sha() {
    timeout 120 qemu-img convert -U -O raw "$1" "$KT/raw.tmp" && sha256sum < "$KT/raw.tmp" |
        cut -d' ' -f1
    rm -f "$KT/raw.tmp"
}

# the bootable disk into vSphere, through vmshift (skeleton -> esx)
VM vms > /dev/null 2>&1
sed -i '/^\[vm bootx\]/,/^\[/{s/^power=running/power=stopped/;s/^memory=.*/memory=268435456/}' \
    "$KT/skel.state"
sed -i '/^\[vm bootx\]/a nics=net0;\nmac-net0=00:50:56:0a:bb:05\nnetwork-net0=VM Network\nbus-disk0=ide\nfirmware=bios' \
    "$KT/skel.state"
mkdir -p "$KT/skel.state.data/srv/vms/bootx"
cp "$BOOT" "$KT/skel.state.data/srv/vms/bootx/disk0.img"
out=$(VM migrate skel:bootx --to esx:DC0_H0 --force 2>&1)
rc=$?
check "the bootable disk goes to vSphere (vmshift migrate skel:bootx --to esx:DC0_H0)" test $rc = 0
[ $rc = 0 ] || diag "$(tail -3 <<<"$out")"
DS0=$(sim datastore LocalDS_0 | sed -n 's/^url=//p')
flat=$(find "$DS0" -path '*bootx*' -name '*-flat.vmdk' 2>/dev/null | head -1)
check "the datastore holds the boot disk's bytes (sha256 of the flat file)" \
    test -n "$flat" -a "$(sha256sum < "${flat:-/dev/null}" | cut -d' ' -f1)" = "$BOOT_SHA"

# ESX -> KVM, started there
out=$(VM check esx:bootx --to kvm:b 2>&1)
check "vmshift check esx:bootx --to kvm:b finds no error" test $? -le 1 -a \
    "$(grep -cE '^error ' <<<"$out")" = 0
out=$(VM migrate esx:bootx --to kvm:b --start --force 2>&1)
rc=$?
check "vmshift migrate esx:bootx --to kvm:b --start exits 0" test $rc = 0
[ $rc = 0 ] || diag "$(tail -5 <<<"$out")"
KC="$KT/b/vms/bootx/vm.conf"
img=$(conf "$KC" "$(grep -m1 '^\[disk ' "$KC" 2>/dev/null | tr -d '[]')" path)
check "kvm host b: a vm.conf for bootx with one qcow2 disk and the MAC from ESX" \
    bash -c "[ -n '$img' ] && qemu-img info -U --output=json '$img' | grep -q '\"format\": \"qcow2\"' &&
             grep -qi '^mac=00:50:56:0a:bb:05' '$KC'"
check "kvm host b: the image's raw conversion is the boot disk (sha256)" \
    test -n "$img" -a "$(raw_sha "${img:-/dev/null}")" = "$BOOT_SHA"
check "the guest from ESX boots on KVM (heartbeat on host b's console)" \
    wait_console "$KT/b" bootx "HEARTBEAT n=2" 180
esx_off() { sim vm bootx 2> /dev/null | grep -q '^power=poweredOff'; }
check "vSphere still has bootx, powered off" esx_off

# a failed ESX -> KVM import: the disk is written, then the definition
# cannot be (the run directory's vms/ is a file): the import rolls back
timeout 30 "$DRIVE" --config "$KT/kvm.conf" qmp "$KT/b" bootx quit > /dev/null 2>&1
for i in $(seq 50); do running_on "$KT/b" bootx || break; sleep 0.2; done
mv "$KT/b/vms" "$KT/b.vms.kept"
echo "not a directory" > "$KT/b/vms"
mkdir -p "$KT/b/other"
out=$(VM migrate esx:bootx --to kvm:b --path "$KT/b/other" --force 2>&1)
rc=$?
check "an import whose definition cannot be written fails" test $rc != 0
grep -q 'bytes into b:' <<<"$out" || diag "the disk was not written before the failure: $(tail -2 <<<"$out")"
check "nothing of it is left on kvm host b (no image in the --path directory)" \
    bash -c "! ls '$KT/b/other/'* 2>/dev/null | grep -q ."
check "vSphere's bootx is unchanged (its flat file's sha256), still off" \
    bash -c "[ \"\$(sha256sum < '$flat' | cut -d' ' -f1)\" = '$BOOT_SHA' ]" && esx_off
rm -f "$KT/b/vms"
mv "$KT/b.vms.kept" "$KT/b/vms"
echo "1..$TAP_N"
exit $TAP_FAILED
