#!/bin/bash
# The claims suite on kvm over libvirt: every row of tests/claims/claims.tsv
# that names kvm-libvirt, through the `vmshift` command against two real
# libvirtd (tests/kvm/lvhosts.sh: own network, mount and UTS namespaces),
# checked in libvirt's own view with virsh (domstate, dominfo, domblklist,
# domiflist on each host). Host B has a libvirt qemu hook that, while
# $LV/rewrite exists, rewrites an incoming migration's NIC back to network
# front: a hypervisor that does not apply what it was asked, for the
# read-back. Prints TAP.
. "$VMSHIFT_SRCDIR/tests/kvm/kvm-lib.sh"
. "$VMSHIFT_SRCDIR/tests/claims/lib.sh"
[ -x "$VMSHIFT" ] || skip_all "host/vmshift is not built"
command -v libvirtd >/dev/null && command -v virsh >/dev/null || skip_all "libvirt is not installed"
command -v ip >/dev/null || skip_all "iproute2 is not installed"
ldd "$B/plugins/kvm/.libs/kvm.so" 2>/dev/null | grep -q libvirt ||
    skip_all "the kvm plugin was built without libvirt"
ldd "$B/plugins/kvm/.libs/kvm.so" 2>/dev/null | grep -q libasan &&
    skip_all "libvirt's RPC crashes under ASan's XDR interceptors (libtirpc): not run in sanitizer builds"
kvm_setup
CT=$KT
if ! id libvirt-qemu >/dev/null 2>&1; then
    groupadd -r libvirt-qemu 2>/dev/null
    useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu ||
        skip_all "cannot create the libvirt-qemu user"
fi
LV="$KT/lv"
mkdir -p "$LV/B/etc/hooks"
# libvirt's qemu hook (docs: hooks, "migrate begin"): the XML printed
# replaces the incoming domain's
cat >"$LV/B/etc/hooks/qemu" <<EOH
#!/bin/sh
[ "\$2" = migrate ] || exit 0
if [ -e '$LV/rewrite' ]; then sed "s/network='back'/network='front'/"; else cat; fi
EOH
chmod 755 "$LV/B/etc/hooks/qemu"
trap 'timeout 60 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" down "$LV"; kvm_cleanup' EXIT
timeout 120 bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" up "$LV" >"$KT/lvhosts.out" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "$(cat "$KT/lvhosts.out")"
[ $rc = 0 ] || { echo "not ok 1 - two libvirt hosts start: $(tr '\n' ' ' <"$KT/lvhosts.out")"; echo "1..1"; exit 0; }
A="qemu+unix:///system?socket=$LV/A/run/libvirt-sock"
BU="qemu+unix:///system?socket=$LV/B/run/libvirt-sock"
uri() { [ "$1" = lvA ] && echo "$A" || echo "$BU"; }
vsh() { timeout 60 virsh -q -c "$(uri "$1")" "${@:2}"; }
mkdir -p "$KT/state"
printf '[vmshift]\nstate-dir=%s\n\n[backend lv]\nplugin=kvm\ntransport=libvirt\nhosts=lvA=%s, lvB=%s\nmigration-uris=lvA=qemu+tcp://198.51.100.1/system, lvB=qemu+tcp://198.51.100.2/system\n' \
    "$KT/state" "$A" "$BU" >"$KT/vmshift.conf"
V() { timeout 300 "$VMSHIFT" --config "$KT/vmshift.conf" --plugin-dir "$B/plugins/kvm/.libs" "$@" >"$KT/out" 2>"$KT/err"; }

# networks front and back on both hosts (bridges in each host's namespace)
for h in A B; do
    ns=$(bash "$VMSHIFT_SRCDIR/tests/kvm/lvhosts.sh" ns "$LV" $h)
    for net in front back; do
        ip -n "$ns" link add "br$net" type bridge && ip -n "$ns" link set "br$net" up
        printf "<network><name>%s</name><forward mode='bridge'/><bridge name='br%s'/></network>" \
            $net $net >"$KT/$net.xml"
        vsh lv$h net-define "$KT/$net.xml" >/dev/null && vsh lv$h net-start $net >/dev/null
    done
done
con="$KT/con"; mkdir -p "$con"
# lvc: no disk (host moves need no storage copy); lvd: a disk in host A's
# own /var/lib/libvirt/images
domain() { # NAME MAC [DISK-PATH]
    cat <<EOX
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinux</kernel><initrd>$GUEST/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_crash>destroy</on_crash>
  <devices>
    ${3:+<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$3'/><target dev='vda' bus='virtio'/></disk>}
    <interface type='network'><mac address='$2'/><source network='front'/>
      <model type='virtio'/><rom enabled='no'/></interface>
    <serial type='file'><source path='$con/$1.log' append='on'/><target port='0'/></serial>
  </devices>
</domain>
EOX
}
mkdir -p "$LV/A/lib/images"
timeout 60 qemu-img create -q -f qcow2 "$LV/A/lib/images/lvd.qcow2" 64M
domain lvc 52:54:00:cc:01:01 >"$KT/lvc.xml"
domain lvd 52:54:00:cc:01:02 /var/lib/libvirt/images/lvd.qcow2 >"$KT/lvd.xml"
for d in lvc lvd; do vsh lvA define "$KT/$d.xml" >/dev/null && vsh lvA start $d >/dev/null; done
for i in $(seq 300); do grep -q HEARTBEAT "$con/lvc.log" 2>/dev/null && break; sleep 0.2; done

# libvirt's view: the host whose libvirtd has domain $1 (each one it is on)
where() { for h in lvA lvB; do vsh $h dominfo "$1" >/dev/null 2>&1 && echo $h; done; }
state_on() { vsh "$1" domstate "$2" 2>/dev/null; }
other() { [ "$1" = lvA ] && echo lvB || echo lvA; }
nic_net() { vsh "$1" domiflist "$2" | awk -v m="$3" '$5 == m { print $3 }'; }
disk_src() { vsh "$1" domblklist "$2" | awk -v d="$3" '$1 == d { print $2 }'; }
beat() { # two new heartbeats in VM $1's console file
    local log="$con/$1.log" n0 i; n0=$(grep -c HEARTBEAT "$log")
    for i in $(seq 150); do
        [ "$(grep -c HEARTBEAT "$log")" -gt $((n0 + 1)) ] && { ! grep -qE "$GUEST_BROKEN" "$log"; return; }
        sleep 0.2
    done
    return 1
}
export con
export -f beat

claim_move_host() {
    from=$(where lvc); to=$(other "$from")
    V migrate lvc --to "$to"; rc=$?
    check "kvm-libvirt move-host: migrate lvc --to $to: virsh: running on $to only, the guest beats" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && [ \"\$2\" = running ] && beat lvc" \
        _ "$(where lvc | tr '\n' ' ' | sed 's/ $//')" "$(state_on "$to" lvc)"
}
claim_verified() {
    from=$(where lvc); to=$(other "$from")
    V migrate lvc --to "$to" --network net0=back; rc=$?
    id=$(last_job V)
    V --json job show "$id"
    check "kvm-libvirt verified: job show lists verified=host,power,disks,nics; virsh on $to: running, NIC on back" \
        bash -c "[ $rc -eq 0 ] && grep -q '\"verified\":\"host,power,disks,nics\"' '$KT/out' && [ \"\$1\" = '$to' ] && [ \"\$2\" = back ]" \
        _ "$(where lvc)" "$(nic_net "$to" lvc 52:54:00:cc:01:01)"
    # to lvB, whose hook puts the NIC back on front
    [ "$(where lvc)" = lvB ] && V migrate lvc --to lvA
    touch "$LV/rewrite"
    V migrate lvc --to lvB --network net0=back; rc=$?
    rm -f "$LV/rewrite"
    check "kvm-libvirt verified: libvirt on lvB puts the NIC on front (hook): the job fails naming it; virsh agrees" \
        bash -c "[ $rc -ne 0 ] && grep -q 'was not moved as asked: NIC net0 is on network front, not back' '$KT/err' && [ \"\$1\" = front ]" \
        _ "$(nic_net lvB lvc 52:54:00:cc:01:01)"
}
claim_cold_start() {
    from=$(where lvc); to=$(other "$from")
    vsh "$from" destroy lvc >/dev/null 2>&1
    V migrate lvc --cold --to "$to" --start; rc=$?
    check "kvm-libvirt cold-start: lvc shut off, migrate --cold --start: virsh: running on $to, gone from $from" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = '$to' ] && [ \"\$2\" = running ]" _ "$(where lvc)" "$(state_on "$to" lvc)"
}
claim_option_unknown() {
    from=$(where lvc)
    V migrate lvc --to "$(other "$from")" --option bogus-key=1; rc=$?
    check "kvm-libvirt option-unknown: refused naming 'bogus-key'; virsh: lvc still runs on $from" \
        bash -c "[ $rc -ne 0 ] && grep -q \"unknown [a-z ]*option 'bogus-key'\" '$KT/out' '$KT/err' && [ \"\$1\" = '$from' ] && [ \"\$2\" = running ]" \
        _ "$(where lvc)" "$(state_on "$from" lvc)"
}
claim_dry_run() {
    from=$(where lvc)
    V migrate lvc --to "$(other "$from")" --dry-run; rc=$?
    check "kvm-libvirt dry-run: prints the plan (exit 0); virsh: lvc still runs on $from" \
        bash -c "[ $rc -eq 0 ] && grep -q 'vmshift migrate' '$KT/out' && [ \"\$1\" = '$from' ] && [ \"\$2\" = running ]" \
        _ "$(where lvc)" "$(state_on "$from" lvc)"
}
claim_check_stops() {
    from=$(where lvc)
    V migrate lvc --cold --to "$(other "$from")"; rc=$?
    check "kvm-libvirt check-stops: --cold on a running VM: check's error stops migrate; virsh: lvc runs on $from" \
        bash -c "[ $rc -ne 0 ] && grep -q 'validation failed\|not shut off' '$KT/err' && [ \"\$1\" = '$from' ] && [ \"\$2\" = running ]" \
        _ "$(where lvc)" "$(state_on "$from" lvc)"
}
claim_placement() {
    # (a directory outside /var/lib/libvirt, which is each host's own: the
    # acl phase after the move reaches it from here; --force: no storage
    # pool covers it yet, so its free space is a warning)
    dir=$KT/lvmoved
    V migrate lvd --to lvB --path "$dir" --network net0=back --force; rc=$?
    check "kvm-libvirt placement: migrate lvd --to lvB --path DIR --network net0=back: virsh on lvB: vda is DIR/lvd.qcow2, NIC on back; the image gone from lvA's disk" \
        bash -c "[ $rc -eq 0 ] && [ \"\$1\" = lvB ] && [ \"\$2\" = '$dir/lvd.qcow2' ] && [ \"\$3\" = back ] && test -s '$dir/lvd.qcow2' && ! test -e '$LV/A/lib/images/lvd.qcow2'" \
        _ "$(where lvd)" "$(disk_src lvB lvd vda)" "$(nic_net lvB lvd 52:54:00:cc:01:02)"
}
claim_guest_ip_unsupported() {
    from=$(where lvc)
    V check lvc --to "$(other "$from")" --cold --ip net0=192.0.2.5/24; rc=$?
    check "kvm-libvirt guest-ip: check --ip answers 'backend lv does not support --ip' in one line; lvc still on $from" \
        bash -c "[ $rc -ne 0 ] && [ \"\$(cat '$KT/err')\" = 'vmshift: backend lv does not support --ip' ] && [ \"\$1\" = '$from' ]" _ "$(where lvc)"
}

claims_run kvm-libvirt
echo "1..$n"
exit $fail
