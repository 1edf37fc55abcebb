#!/bin/bash
# lvhosts.sh up DIR | down DIR | ns DIR A|B: two real libvirt "hosts" on this machine for
# the libvirt transport's tests. Each libvirtd runs in its own network
# namespace (a veth pair between them, 198.51.100.1 and .2, no route out),
# its own mount namespace (its own /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt bound over the real
# ones) and UTS namespace (own hostname), with its own host UUID; QEMU runs
# as root, TCG. Clients in the root namespace use
#   qemu+unix:///system?socket=DIR/A/run/libvirt/libvirt-sock
# and the daemons reach each other at qemu+tcp://198.51.100.{1,2}/system.
# Files under /var/lib/libvirt are each host's own (DIR/A/lib, DIR/B/lib);
# /var/lib/libvirt/small is a 4 MiB tmpfs seen by that host only.
# (Facts: shared/design/TESTBED.md, docs/design/kvm.md §3.)
set -u
cmd=$1 D=$2
# namespace names unique per DIR (runs in parallel must not collide)
ns() { echo "vms$(printf %s "$D" | md5sum | cut -c1-8)$1"; }
case "$cmd" in
ns)
    ns "$3"
    ;;
up)
    command -v libvirtd >/dev/null || { echo "libvirtd is not installed" >&2; exit 77; }
    command -v ip >/dev/null || { echo "iproute2 is not installed" >&2; exit 77; }
    for h in A B; do
        n=$(ns $h)
        ip netns add "$n" || exit 1
        r=$D/$h
        mkdir -p "$r/etc" "$r/run" "$r/lib" "$r/log/qemu" "$r/cache"
        addr=198.51.100.1; [ $h = B ] && addr=198.51.100.2
        uuid=11111111-2222-3333-4444-00000000000a; [ $h = B ] && uuid=11111111-2222-3333-4444-00000000000b
        cat > "$r/etc/libvirtd.conf" <<EOC
listen_tls = 0
listen_tcp = 1
listen_addr = "$addr"
auth_tcp = "none"
auth_unix_rw = "none"
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
host_uuid = "$uuid"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOC
        cat > "$r/etc/qemu.conf" <<EOC
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
migration_address = "$addr"
migration_host = "$addr"
EOC
    done
    # veth names: at most 15 characters
    la="v$(ns A | cut -c4-)"; lb="v$(ns B | cut -c4-)"
    ip link add "$la" type veth peer name "$lb" || exit 1
    ip link set "$la" netns "$(ns A)"
    ip link set "$lb" netns "$(ns B)"
    ip -n "$(ns A)" addr add 198.51.100.1/24 dev "$la"
    ip -n "$(ns B)" addr add 198.51.100.2/24 dev "$lb"
    for h in A B; do
        l=$la; [ $h = B ] && l=$lb
        ip -n "$(ns $h)" link set lo up
        ip -n "$(ns $h)" link set "$l" up
        r=$D/$h
        ip netns exec "$(ns $h)" unshare --mount --uts --propagation private bash -c "
            set -e
            for m in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
                mkdir -p \${m#*:}
                mount --bind '$r'/\${m%%:*} \${m#*:}
            done
            # a small file system of this host only (a destination that fills up)
            mkdir -p /var/lib/libvirt/small
            mount -t tmpfs -o size=4m lvsmall /var/lib/libvirt/small
            hostname lvhost$h
            exec libvirtd --listen --pid-file '$r/libvirtd.pid' -f /etc/libvirt/libvirtd.conf
        " </dev/null >"$r/libvirtd.out" 2>&1 &
    done
    for h in A B; do
        for i in $(seq 100); do [ -S "$D/$h/run/libvirt-sock" ] && break; sleep 0.1; done
        if [ ! -S "$D/$h/run/libvirt-sock" ]; then
            echo "libvirtd $h did not start: $(tail -2 "$D/$h/libvirtd.out" "$D/$h/log/libvirtd.log" 2>/dev/null)" >&2
            exit 1
        fi
    done
    ;;
down)
    for h in A B; do
        p=$(cat "$D/$h/libvirtd.pid" 2>/dev/null)
        n=$(ns $h)
        # QEMUs started by this libvirtd run in its namespace
        for q in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$q" 2>/dev/null; done
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
        ip netns del "$n" 2>/dev/null
    done
    ;;
esac
