"""bench/faults' libvirt backend: the kvm plugin's libvirt transport against
two real libvirtd (tests/kvm/lvhosts.sh: own network, mount and UTS
namespaces; QEMU under TCG). Loaded by bench/faults (not run on its own).

VMs: lvc (diskless) for live and cold moves (--start every other
repetition), lvd (a qcow2 disk in a directory both hosts see, its first
4 MiB written with 0x5a) for storage-only and host+storage moves. Faults:
vmshift killed -9 at each phase; the destination's QEMU killed mid-transfer;
a proxy on each libvirtd's UNIX socket that cuts vmshift's connections
during the transfer or the switchover, or answers the migration call
itself with an error (a server error); `job cancel` raced with the transfer
and the switchover; the disk's destination filled while vmshift is stopped
as the transfer begins (disk-full).

Checked with virsh on both hosts: the domain defined or running on exactly
one host (an inactive definition left on the other counts as twice: it can
be started), its state (running, and the guest's heartbeats go on; shut off
after a cold move without --start), vda's path, the disk's 0x5a pattern
read back with qemu-io, and no copy of the disk left in another directory.
"""

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

F = sys.modules["__main__"]

LV_KILLS = ["kill@validate", "kill@prepare", "kill@transfer", "kill@transfer+1500",
            "kill@switchover", "kill@acl", "kill@cleanup", "kill@done"]
# freeze@: vmshift's connections to libvirtd stop carrying anything, both
# ways, without closing (a hung libvirtd or a network that drops packets):
# libvirt's keepalive must end the waiting call
LV_PEER = ["dest-kill@transfer", "cut@transfer+1000", "cut@switchover", "error@migrate",
           "freeze@transfer+1000"]
LV_CANCEL = ["cancel@transfer", "cancel@switchover"]
# disk-full@PHASE: vmshift stops itself as PHASE begins (VMSHIFT_TEST_STOP_AT),
# the bench fills df (a small tmpfs both hosts see) the disk is sent to,
# then vmshift goes on
LV_DISK = ["disk-full@transfer"]
DF_SIZE = "192m"
SLOW = ["--option", "max-bandwidth=8388608", "--option", "postcopy=false"]
HOSTS = ["lvA", "lvB"]


# libvirt's remote protocol: its program number, the peer-to-peer migration
# call (REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS, what
# virDomainMigrateToURI3 sends), and an error reply
LV_PROG = 0x20008086
LV_PROC_MIGRATE = 305


def xdr_string(t):
    b = t.encode()
    return len(b).to_bytes(4, "big") + b + b"\0" * (-len(b) % 4)


def lv_error_reply(proc, serial):
    """a REPLY frame with status ERROR: remote_error {code
    VIR_ERR_OPERATION_FAILED, domain VIR_FROM_QEMU, message, level
    VIR_ERR_ERROR, no dom, no str1-3, int1, int2, no net}"""
    def u(v):
        return v.to_bytes(4, "big")
    msg = "operation failed: injected server error (bench/faults)"
    body = (u(9) + u(10) + u(1) + xdr_string(msg) + u(2) + u(0) + u(0) + u(0) + u(0) + u(0)
            + u(0) + u(0))
    head = u(LV_PROG) + u(1) + u(proc) + u(1) + u(serial) + u(1)
    return u(4 + len(head) + len(body)) + head + body


class UnixCutProxy:
    """vmshift's connections to one libvirtd go through this UNIX socket
    proxy; cut() closes every one of them at once (a dropped connection),
    new ones are served again."""

    def __init__(self, path, target):
        self.target = target
        if os.path.exists(path):
            os.unlink(path)
        self.ls = socket.socket(socket.AF_UNIX)
        self.ls.bind(path)
        self.ls.listen(64)
        self.lock = threading.Lock()
        self.conns = []
        self.refuse = None
        self.frozen = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, s))
            threading.Thread(target=self.pump, args=(c, s), daemon=True).start()

    def pump(self, c, s):
        """relays both ways; the calls vmshift sends are read frame by frame
        (libvirt's RPC: a 4-byte length, then prog, vers, proc, type, serial,
        status) so that an armed refusal can answer one itself"""
        logf = os.environ.get("LV_PROXY_LOG")
        buf = b""
        try:
            while True:
                if self.frozen:  # nothing read, nothing closed: the data waits
                    time.sleep(0.1)
                    continue
                r, _, _ = select.select([c, s], [], [], 1.0)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if x is s:
                        c.sendall(data)
                        continue
                    buf += data
                    while len(buf) >= 28 and len(buf) >= int.from_bytes(buf[:4], "big"):
                        n = int.from_bytes(buf[:4], "big")
                        frame, buf = buf[:n], buf[n:]
                        h = [int.from_bytes(frame[4 + 4 * i:8 + 4 * i], "big") for i in range(6)]
                        if logf:
                            with open(logf, "a") as f:
                                f.write("prog=%x proc=%d type=%d serial=%d\n"
                                        % (h[0], h[2], h[3], h[4]))
                        with self.lock:
                            refuse = self.refuse is not None and h[0] == LV_PROG and \
                                h[2] == self.refuse and h[3] == 0
                            if refuse:
                                self.refuse = None
                        if refuse:
                            F.log("libvirtd's answer to call %d (proc %d): an error" % (h[4], h[2]))
                            c.sendall(lv_error_reply(h[2], h[4]))
                        else:
                            s.sendall(frame)
        except OSError:
            pass
        finally:
            for x in (c, s):
                try:
                    x.close()
                except OSError:
                    pass

    def arm_refusal(self, proc):
        """the next call @proc vmshift makes is answered with an error (a
        server error), never reaching libvirtd"""
        with self.lock:
            self.refuse = proc

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c, s in conns:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(conns)

    def freeze(self, on=True):
        """every connection, present and new, stops relaying (on) or goes
        on (off)"""
        self.frozen = on

    def stop(self):
        self.ls.close()
        self.frozen = False
        self.cut()


class Libvirt(F.Backend):
    name = "libvirt"
    moves = ["live", "cold", "storage", "host+storage"]
    faults = LV_KILLS + LV_PEER + LV_CANCEL + LV_DISK
    stop_kinds = ("disk-full",)  # the bench fills the disk while vmshift is stopped

    def applies(self, move, fault):
        if fault == "error@migrate":  # libvirt's migration call: live moves only
            return move in ("live", "host+storage")
        # the diskless lvc (live and cold moves) has no disk to fill
        return not fault.startswith("disk-full") or move in ("storage", "host+storage")

    def __init__(self, tmp):
        super().__init__(tmp)
        so = os.path.join(F.BUILD, "plugins", "kvm", ".libs", "kvm.so")
        self.guest = os.environ.get("VMSHIFT_GUEST_DIR",
                                    os.path.join(F.BUILD, "tests", "guest", "out"))
        if os.getuid() != 0 or not shutil.which("libvirtd") or not shutil.which("virsh") or \
                not shutil.which("ip") or not shutil.which("qemu-io") or \
                not os.path.exists(so) or \
                not os.path.exists(os.path.join(self.guest, "vmlinux")):
            raise F.SkipBackend("needs root, libvirtd, virsh, iproute2, qemu-io, the kvm "
                                "plugin and the tiny guest")
        ldd = subprocess.run(["ldd", so], capture_output=True, text=True).stdout
        if "libvirt" not in ldd:
            raise F.SkipBackend("the kvm plugin was built without libvirt")
        if "libasan" in ldd:
            raise F.SkipBackend("libvirt's RPC crashes under ASan's XDR interceptors "
                                "(libtirpc): not run in sanitizer builds")
        if subprocess.run(["id", "libvirt-qemu"], capture_output=True).returncode != 0:
            subprocess.run(["groupadd", "-r", "libvirt-qemu"], capture_output=True)
            subprocess.run(["useradd", "-r", "-g", "libvirt-qemu", "-d", "/var/lib/libvirt",
                            "-s", "/usr/sbin/nologin", "libvirt-qemu"], capture_output=True)
        self.lv = os.path.join(tmp, "lv")
        self.lvhosts = os.path.join(F.SRC, "tests", "kvm", "lvhosts.sh")
        self.up = False
        self.fill = None
        # mounted before the hosts' mount namespaces are made (private
        # propagation): each host sees this same file system
        self.df = os.path.join(tmp, "disks", "df")
        os.makedirs(self.df, exist_ok=True)
        self.df_mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + DF_SIZE,
                                          "tmpfs", self.df], capture_output=True).returncode == 0
        if not self.df_mounted:
            self.faults = [f for f in self.faults if f not in LV_DISK]
        p = subprocess.run(["timeout", "120", "bash", self.lvhosts, "up", self.lv],
                           capture_output=True, text=True)
        if p.returncode != 0 and self.df_mounted:
            subprocess.run(["umount", "-l", self.df], capture_output=True)
        if p.returncode == 77:
            raise F.SkipBackend(p.stderr.strip())
        if p.returncode != 0:
            subprocess.run(["timeout", "60", "bash", self.lvhosts, "down", self.lv])
            raise F.SkipBackend("the two libvirt hosts did not start: " + p.stderr.strip())
        self.up = True
        self.real = {h: os.path.join(self.lv, h[-1], "run", "libvirt-sock") for h in HOSTS}
        self.proxies = {h: UnixCutProxy(os.path.join(tmp, "px-%s.sock" % h), self.real[h])
                        for h in HOSTS}
        self.conf = os.path.join(tmp, "vmshift.conf")
        with open(self.conf, "w") as f:
            f.write("[vmshift]\nstate-dir=%s\n\n[backend lv]\nplugin=kvm\ntransport=libvirt\n"
                    "hosts=lvA=qemu+unix:///system?socket=%s, lvB=qemu+unix:///system?"
                    "socket=%s\nmigration-uris=lvA=qemu+tcp://198.51.100.1/system, "
                    "lvB=qemu+tcp://198.51.100.2/system\n"
                    % (self.state_dir(), os.path.join(tmp, "px-lvA.sock"),
                       os.path.join(tmp, "px-lvB.sock")))
        self.con = os.path.join(tmp, "con")
        self.disks = os.path.join(tmp, "disks")
        for d in [self.con] + [os.path.join(self.disks, "d%d" % i) for i in range(4)]:
            os.makedirs(d, exist_ok=True)
        img = os.path.join(self.disks, "d0", "lvd.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "64M"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4M", img],
                       capture_output=True, check=True)
        for name, mac, disk in (("lvc", "52:54:00:cc:0f:01", None),
                                ("lvd", "52:54:00:cc:0f:02", img)):
            xml = os.path.join(tmp, name + ".xml")
            with open(xml, "w") as f:
                f.write(self.domain(name, mac, disk))
            self.virsh("lvA", "define", xml)
            self.virsh("lvA", "start", name)
        self.last_src = {}

    def domain(self, name, mac, disk):
        d = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s'/><target dev='vda' bus='virtio'/></disk>" % disk) if disk else ""
        return ("<domain type='qemu'><name>%s</name><memory unit='MiB'>256</memory>"
                "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>"
                "<kernel>%s/vmlinux</kernel><initrd>%s/initramfs.cpio.gz</initrd>"
                "<cmdline>console=ttyS0 quiet panic=-1</cmdline></os>"
                "<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>"
                "<on_crash>destroy</on_crash><devices>%s"
                "<serial type='file'><source path='%s/%s.log' append='on'/>"
                "<target port='0'/></serial></devices></domain>"
                % (name, self.guest, self.guest, d, self.con, name))

    def virsh(self, h, *args):
        p = subprocess.run(["timeout", "60", "virsh", "-q", "-c",
                            "qemu+unix:///system?socket=" + self.real[h]] + list(args),
                           capture_output=True, text=True)
        return p.returncode, p.stdout.strip()

    def base_args(self):
        return ["--config", self.conf, "--plugin-dir",
                os.path.join(F.BUILD, "plugins", "kvm", ".libs")]

    def console(self):
        try:
            return open(os.path.join(self.con, self.vm + ".log"), errors="replace").read()
        except OSError:
            return ""

    def beats(self, secs=30):
        n0 = self.console().count("HEARTBEAT")
        end = time.time() + secs
        while time.time() < end:
            if self.console().count("HEARTBEAT") > n0 + 1:
                return True
            time.sleep(0.2)
        return False

    def states(self):
        """{host: state} of every host whose libvirtd knows the domain."""
        out = {}
        for h in HOSTS:
            rc, st = self.virsh(h, "domstate", self.vm)
            if rc == 0:
                out[h] = st
        return out

    def setup_case(self, case):
        self.fresh_journal()
        self.vm = "lvd" if case.move in ("storage", "host+storage") else "lvc"
        st = self.states()
        if len(st) != 1:
            # a previous case left it twice or nowhere: keep one (counted there)
            F.log("%s was %s: put back on one host" % (self.vm, st))
            for h in list(st)[1:]:
                self.virsh(h, "destroy", self.vm)
                self.virsh(h, "undefine", self.vm)
            if not st:
                self.virsh("lvA", "define", os.path.join(self.tmp, self.vm + ".xml"))
            st = self.states()
        src = list(st)[0]
        want = "shut off" if case.move == "cold" else "running"
        if st[src] != want:
            if want == "running":
                self.virsh(src, "destroy", self.vm)
                self.virsh(src, "start", self.vm)
                end = time.time() + 90
                while time.time() < end and "HEARTBEAT" not in self.console()[-4000:]:
                    time.sleep(0.3)
            else:
                self.virsh(src, "destroy", self.vm)
        dst = "lvB" if src == "lvA" else "lvA"
        cur = self.disk_path(src)
        curdir = os.path.dirname(cur) if cur else ""
        # a copy an earlier case left (counted there) would refuse this move
        for d in [os.path.join(self.disks, "d%d" % i) for i in range(4)] + [self.df]:
            if cur and d != curdir and os.path.exists(os.path.join(d, "lvd.qcow2")):
                os.unlink(os.path.join(d, "lvd.qcow2"))
        newdir = [os.path.join(self.disks, "d%d" % i) for i in range(4)
                  if os.path.join(self.disks, "d%d" % i) != curdir][case.rep % 3]
        if case.fault in LV_DISK and curdir != self.df:
            newdir = self.df
            self.fill = os.path.join(self.df, "filler")
        elif case.fault in LV_DISK:
            F.log("lvd is on the small file system already: no disk to fill this time")
        start = case.move == "cold" and case.rep % 2 == 1
        slow = case.fault in ("kill@transfer+1500", "dest-kill@transfer", "cancel@transfer",
                              "cut@transfer+1000", "freeze@transfer+1000")
        args = {"live": ["migrate", self.vm, "--to", dst],
                "cold": ["migrate", self.vm, "--cold", "--to", dst]
                + (["--start"] if start else []),
                "storage": ["migrate-storage", self.vm, "--path", newdir, "--force"],
                "host+storage": ["migrate", self.vm, "--to", dst, "--path", newdir, "--force"]
                }[case.move]
        if slow and case.move != "cold":
            args += SLOW
        power = "stopped" if case.move == "cold" else "running"
        source = {"host": src, "path": curdir, "power": power, "disks": [cur] if cur else []}
        moved = case.move in ("storage", "host+storage")
        target = {"host": src if case.move == "storage" else dst,
                  "path": newdir if moved else curdir,
                  "power": "running" if power == "running" or start else "stopped",
                  "disks": [os.path.join(newdir, "lvd.qcow2")] if moved else source["disks"]}
        self.src, self.dst, self.target = src, dst, target
        if case.fault == "error@migrate":
            self.proxies[src].arm_refusal(LV_PROC_MIGRATE)
        return args, source, target

    def disk_path(self, h, inactive=False):
        rc, out = self.virsh(h, "domblklist", self.vm, *(["--inactive"] if inactive else []))
        for line in out.splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == "vda":
                return f[1]
        return None

    def during(self, case, proc):
        kind, _, where = case.fault.partition("@")
        if kind == "error":
            return
        if kind == "disk-full":
            F.fill_while_stopped(proc, self.fill)
        elif kind == "dest-kill":
            if F.wait_phase(self, self.vm, ["transfer"], proc, 120):
                time.sleep(1.5)
                ns = subprocess.run(["bash", self.lvhosts, "ns", self.lv, self.dst[-1]],
                                    capture_output=True, text=True).stdout.strip()
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True).stdout.split()
                for p in pids:
                    try:
                        if open("/proc/%s/comm" % p).read().strip().startswith("qemu-system"):
                            os.kill(int(p), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
        elif kind in ("cut", "freeze"):
            phase, _, ms = where.partition("+")
            if F.wait_phase(self, self.vm, [phase], proc, 120):
                time.sleep(int(ms or 0) / 1000.0)
                if kind == "freeze":
                    for p in self.proxies.values():
                        p.freeze()
                    F.log("froze vmshift's connections to libvirtd")
                    return
                n = sum(p.cut() for p in self.proxies.values())
                F.log("cut %d connection(s) to libvirtd" % n)

    def location_ok(self, case, loc, places):
        """Before the repair, while libvirt ends a migration vmshift lost
        touch with, the domain can be on both hosts for a moment: running
        on the destination (Finish resumed it) and still paused on the
        source until Confirm kills that QEMU, or paused for an incoming
        migration. The VM is where it runs: with exactly one running
        domain, the job must name that host."""
        running = [p["host"] for p in places if p["power"].startswith("running")]
        if len(places) > 1:
            F.log("before repair the domain is on %s; job show says %s"
                  % (", ".join("%s (%s)" % (p["host"], p["power"]) for p in places), loc))
            if len(running) == 1:
                return loc == running[0]
        return F.Backend.location_ok(self, case, loc, places)

    def peer_fault_cleared(self):
        for p in self.proxies.values():
            p.arm_refusal(None)
            p.freeze(False)
        if self.fill:
            try:
                os.unlink(self.fill)
            except OSError:
                pass
            self.fill = None

    def peer(self):
        st = self.states()
        places = []
        for h, s in st.items():
            power = "stopped" if s == "shut off" else s
            if s == "running" and len(st) == 1 and not self.beats():
                power = "running, not beating"
            disk = self.disk_path(h)
            places.append({"host": h, "path": os.path.dirname(disk) if disk else "",
                           "power": power, "disks": [disk] if disk else []})
        left = False
        if self.vm == "lvd" and len(places) == 1:
            left = any(os.path.exists(os.path.join(self.disks, d, "lvd.qcow2"))
                       for d in os.listdir(self.disks)
                       if os.path.join(self.disks, d) != places[0]["path"])
        return places, left

    def expected_disks(self, place):
        return place["disks"]

    def disks_intact(self, place, want):
        if place["disks"] != want["disks"]:
            return False
        # the saved definition must name the file the VM runs on (a VM
        # started again later boots from it)
        if place["disks"] and self.disk_path(place["host"], True) != place["disks"][0]:
            F.log("saved definition names %s, the VM runs on %s"
                  % (self.disk_path(place["host"], True), place["disks"][0]))
            return False
        if self.vm != "lvd":
            c = self.console()
            return not any(x in c for x in ("MEMCHECK bad", "BUG:", "Oops", "Kernel panic"))
        p = subprocess.run(["qemu-io", "-U", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 4M",
                            place["disks"][0]], capture_output=True, text=True)
        return "read 4194304" in p.stdout

    def acl_missing(self, place):
        return []  # root-run QEMU, no per-VM labels in this test bed

    def stop(self):
        for p in getattr(self, "proxies", {}).values():
            p.stop()
        if self.up:
            subprocess.run(["timeout", "60", "bash", self.lvhosts, "down", self.lv],
                           capture_output=True)
        if getattr(self, "df_mounted", False):
            subprocess.run(["umount", "-l", self.df], capture_output=True)
        super().stop()
