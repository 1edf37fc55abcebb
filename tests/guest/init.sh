#!/bin/busybox sh
# /init of the vmshift tiny test guest (busybox-static initramfs).
# Flags on the kernel command line:
#   dirty=MIB        run /bin/dirty over MIB MiB (one non-zero write per page)
#   dirtysleep=US    throttle the dirtier (sleep US microseconds per 256 pages)
#   disk=1           load virtio_pci + virtio_blk; the disk is /dev/vda
#   diskwrite=1      with disk=1: keep writing random data to /dev/vda (MiB
#                    1..32) and a stamped block at MiB 40 that is read back
#                    (DISKCHECK bad on a mismatch)
#   hb=SECONDS       heartbeat period (default 0.5)
#   shell=1          a shell on the console
#   poweroff=1       power off right after INIT-START
# Console lines: INIT-START, HEARTBEAT n=N uptime=S, DIRTY ..., DISK ...,
# DISKWRITE n=N, DISKCHECK bad ...
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "INIT-START uptime=$(cut -d' ' -f1 /proc/uptime)"

arg() { # arg NAME DEFAULT
    for w in $(cat /proc/cmdline); do
        case "$w" in "$1="*) echo "${w#*=}"; return;; esac
    done
    echo "$2"
}

if [ "$(arg poweroff 0)" = 1 ]; then
    echo "POWEROFF"
    poweroff -f
fi

DISK=$(arg disk 0)
if [ "$DISK" = 1 ]; then
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
             virtio_pci virtio_blk; do
        [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
    done
    i=0
    while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
    if [ -b /dev/vda ]; then
        echo "DISK vda sectors=$(cat /sys/block/vda/size)"
    else
        echo "DISK missing"
    fi
fi

if [ "$DISK" = 1 ] && [ "$(arg diskwrite 0)" = 1 ] && [ -b /dev/vda ]; then
    (
        n=0
        while :; do
            # 1 MiB chunks over MiB 1..32; sector 0..2047 stay untouched
            seek=$((1 + n % 32))
            dd if=/dev/urandom of=/dev/vda bs=1048576 count=1 seek=$seek \
                conv=fsync 2>/dev/null || echo "DISKWRITE error n=$n"
            # integrity: a stamped 4 KiB block at MiB 40, written through
            # and read back from the disk; a write lost by a storage move
            # shows up as DISKCHECK bad
            echo "SEQ $n" | dd of=/dev/vda bs=4096 seek=10240 count=1 conv=sync,fsync \
                oflag=direct 2>/dev/null
            got=$(dd if=/dev/vda bs=4096 skip=10240 count=1 iflag=direct 2>/dev/null | head -1 | tr -d '\000')
            [ "$got" = "SEQ $n" ] || echo "DISKCHECK bad n=$n got=$got"
            n=$((n+1))
            [ $((n % 16)) = 0 ] && echo "DISKWRITE n=$n"
            usleep 100000
        done
    ) &
fi

D=$(arg dirty 0)
if [ "$D" != 0 ]; then
    /bin/dirty "$D" "$(arg dirtysleep 0)" &
fi

if [ "$(arg shell 0)" = 1 ]; then
    setsid cttyhack sh &
fi

HB=$(arg hb 0.5)
n=0
while :; do
    n=$((n+1))
    extra=
    if [ "$DISK" = 1 ] && [ -b /dev/vda ]; then
        if dd if=/dev/vda of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null
        then extra=" disk=ok"; else extra=" disk=error"; fi
    fi
    echo "HEARTBEAT n=$n uptime=$(cut -d' ' -f1 /proc/uptime)$extra"
    sleep "$HB"
done
