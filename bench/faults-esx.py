"""bench/faults' ESX backend: the vSphere simulator (tests/vcsim/vcsim-launcher,
govmomi's vcsim with vmshift's overrides) checked with tests/vcsim/vcsim-check,
an independent govmomi client. Loaded by bench/faults (not run on its own).

Moves: live (vMotion) and host+storage of DC0_C0_RP0_VM0, storage-only of
the same VM, cold (--start every other repetition) of DC0_C0_RP0_VM1; hosts
DC0_C0_H0..H2, datastores LocalDS_0..2. Each case starts with the VM's own
permissions alice (ReadOnly, propagate) and bob (Admin); every
RelocateVM_Task drops them at 90 % (the launcher's clear-perms action: the
permissions a move to another folder or vCenter loses), so the acl phase
must put them back. Faults: vmshift killed -9 at each phase; the launcher's
own: an HTTP 500 or a SOAP fault (NotAuthenticated) instead of the
RelocateVM_Task reply (nothing started), the connection closed unanswered
(nothing started), the reply cut in half after the task started (lost
reply), a task poll cut or truncated, the task failing at 50 % or 90 %
(MigrationFault), PowerOnVM_Task's reply lost (cold --start); a TCP proxy
between vmshift and the simulator that closes every connection in the
middle of a reply (cut@transfer+MS, after the job reached the transfer);
and `job cancel` raced with the transfer and the switchover.

Checked from the simulator: the VM found exactly once (vcsim-check's finder
refuses a name registered twice), runtime.host, the home datastore
(config.files.vmPathName) and each disk's datastore, the power state, and
the two permissions on the VM itself.
"""

import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request

F = sys.modules["__main__"]

ESX_KILLS = ["kill@validate", "kill@prepare", "kill@transfer", "kill@transfer+250",
             "kill@transfer+450", "kill@switchover", "kill@acl", "kill@cleanup", "kill@done"]
ESX_PEER = ["error-http@call", "fault@call", "cut@call", "lost-reply@call", "cut@poll",
            "lost-reply@poll", "error@transfer", "error@switchover", "cut@transfer+150",
            "cut@transfer+350", "lost-reply@poweron"]
ESX_CANCEL = ["cancel@transfer", "cancel@switchover"]
HOSTS = ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
DATASTORES = ["LocalDS_0", "LocalDS_1", "LocalDS_2"]
PERMS = ["alice ReadOnly true false", "bob Admin false false"]


class CutProxy:
    """A TCP proxy on loopback in front of the simulator's HTTPS port. When
    armed, the next reply bytes from the server are forwarded in part (the
    first half of that chunk) and then every connection is closed: a
    connection cut in the middle of a reply, whatever call it answered."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.armed = False
        self.fired = False
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, s))
            threading.Thread(target=self.pump, args=(c, s), daemon=True).start()

    def pump(self, c, s):
        try:
            while True:
                r, _, _ = select.select([c, s], [], [], 1.0)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if x is s:
                        with self.lock:
                            fire = self.armed
                            self.armed = False
                        if fire:
                            c.sendall(data[:max(1, len(data) // 2)])
                            self.fired = True
                            self.cut_all()
                            return
                        c.sendall(data)
                    else:
                        s.sendall(data)
        except OSError:
            pass
        finally:
            for x in (c, s):
                try:
                    x.close()
                except OSError:
                    pass

    def cut_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c, s in conns:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def arm(self):
        with self.lock:
            self.armed = True
            self.fired = False

    def disarm(self):
        with self.lock:
            self.armed = False

    def stop(self):
        self.ls.close()
        self.cut_all()


class Esx(F.Backend):
    name = "esx"
    moves = ["live", "cold", "storage", "host+storage"]
    faults = ESX_KILLS + ESX_PEER + ESX_CANCEL

    def __init__(self, tmp):
        super().__init__(tmp)
        self.launcher = os.path.join(F.BUILD, "tests", "vcsim", "vcsim-launcher")
        self.checker = os.path.join(F.BUILD, "tests", "vcsim", "vcsim-check")
        self.plugdir = os.path.join(F.BUILD, "plugins", "esx", ".libs")
        if not os.access(self.launcher, os.X_OK) or not os.access(self.checker, os.X_OK) or \
                not os.path.exists(os.path.join(self.plugdir, "esx.so")):
            raise F.SkipBackend("needs tests/vcsim/vcsim-launcher, vcsim-check (go) and the "
                                "esx plugin")
        for p, d in ((self.launcher, "launcher"), (self.checker, "check")):
            want = subprocess.run(["sh", os.path.join(F.SRC, "tests", "vcsim", "source-hash"),
                                   os.path.join(F.SRC, "tests", "vcsim", d)],
                                  capture_output=True, text=True).stdout.strip()
            have = subprocess.run([p, "-source-hash"], capture_output=True,
                                  text=True).stdout.strip()
            if not want or want != have:
                raise F.SkipBackend("%s was built from other sources" % p)
        self.sim = None
        self.proxy = None
        self.start_sim()

    def start_sim(self):
        if self.sim:
            self.sim.terminate()
            self.sim.wait(10)
        if self.proxy:
            self.proxy.stop()
        out = os.path.join(self.tmp, "sim.out")
        self.sim_err = open(os.path.join(self.tmp, "sim.err"), "w")
        with open(out, "w") as fo:
            self.sim = subprocess.Popen(
                [self.launcher, "-ca-file", os.path.join(self.tmp, "ca.pem"), "-credentials",
                 os.path.join(self.tmp, "creds"), "-task-step-ms", "40"],
                stdout=fo, stderr=self.sim_err)
        self.procs.append(self.sim)
        lines = []
        for _ in range(600):
            lines = open(out).read().split()
            if len(lines) >= 2 or self.sim.poll() is not None:
                break
            time.sleep(0.1)
        if len(lines) < 2:
            raise F.SkipBackend("the simulator did not start")
        self.url, self.ctl_url = lines[0], lines[1]
        port = int(self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.proxy = CutProxy(port)
        self.conf = os.path.join(self.tmp, "vmshift.conf")
        with open(self.conf, "w") as f:
            f.write("[vmshift]\nstate-dir=%s\n\n[backend vc]\nplugin=esx\n"
                    "url=https://127.0.0.1:%d/sdk\ncredentials=%s\nca-file=%s\n"
                    % (self.state_dir(), self.proxy.port, os.path.join(self.tmp, "creds"),
                       os.path.join(self.tmp, "ca.pem")))
        os.chmod(self.conf, 0o644)

    def base_args(self):
        return ["--config", self.conf, "--plugin-dir", self.plugdir]

    def ctl(self, q):
        try:
            with urllib.request.urlopen(self.ctl_url + "/ctl/" + q, timeout=10) as r:
                r.read()
        except OSError as e:
            F.log("control call %s failed: %s" % (q, e))

    def sim_check(self, *args):
        p = subprocess.run([self.checker, "-url", self.url, "-ca-file",
                            os.path.join(self.tmp, "ca.pem"), "-credentials",
                            os.path.join(self.tmp, "creds")] + list(args),
                           capture_output=True, text=True, timeout=90)
        return p.returncode, p.stdout, p.stderr

    def read_vm(self, name):
        """The simulator's view of VM @name: a list of places (empty: not
        found; two: registered twice)."""
        rc, out, err = self.sim_check("vm", name)
        if rc != 0:
            if "multiple" in err:
                return [{"host": "?", "path": "?", "power": "?", "disks": []}] * 2
            return []
        kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        disks = sorted(v for k, v in kv.items() if k.startswith("disk."))
        home = kv.get("path", "").split("]", 1)[0].lstrip("[")
        _, pout, _ = self.sim_check("perms", name)
        return [{"host": kv.get("host"), "path": home,
                 "power": "running" if kv.get("power") == "poweredOn" else "stopped",
                 "disks": disks, "perms": pout.splitlines()}]

    def applies(self, move, fault):
        return fault != "lost-reply@poweron" or move == "cold"

    def setup_case(self, case):
        self.fresh_journal()
        self.ctl("reset")
        self.proxy.disarm()
        self.vm = "DC0_C0_RP0_VM1" if case.move == "cold" else "DC0_C0_RP0_VM0"
        w = self.read_vm(self.vm)
        if len(w) != 1:  # a previous case lost it: a new world
            F.log("restarting the simulator (%s: %d places)" % (self.vm, len(w)))
            self.start_sim()
            w = self.read_vm(self.vm)
        now = w[0]
        for line in PERMS:
            if line not in now["perms"]:
                p, role, prop, _ = line.split()
                self.sim_check("set-perms", self.vm, p, role, prop)
        power = "stopped" if case.move == "cold" else "running"
        if now["power"] != power:
            self.ctl("vm?name=%s&power=%s" % (self.vm, "off" if power == "stopped" else "on"))
        i = case.rep % 2 + 1
        dest_host = [h for h in HOSTS if h != now["host"]][i - 1]
        dest_ds = [d for d in DATASTORES if d != now["path"]][i - 1]
        start = case.move == "cold" and (case.rep % 2 == 1 or case.fault.endswith("@poweron"))
        args = {"live": ["migrate", self.vm, "--to", dest_host, "--live"],
                "cold": ["migrate", self.vm, "--cold", "--to", dest_host]
                + (["--start"] if start else []),
                "storage": ["migrate-storage", self.vm, "--path", dest_ds],
                "host+storage": ["migrate", self.vm, "--to", dest_host, "--path", dest_ds]
                }[case.move]
        src = {"host": now["host"], "path": now["path"], "power": power,
               "disks": now["disks"]}
        moved_ds = case.move in ("storage", "host+storage")
        tgt = {"host": now["host"] if case.move == "storage" else dest_host,
               "path": dest_ds if moved_ds else now["path"],
               "power": "running" if power == "running" or start else "stopped",
               "disks": [dest_ds] * len(now["disks"]) if moved_ds else now["disks"]}
        self.arm(case)
        return args, src, tgt

    def arm(self, case):
        """The launcher's injections for @case; every relocation drops the
        VM's permissions at 90 %."""
        kind, _, where = case.fault.partition("@")
        task = "task?method=RelocateVM_Task&at=90&action=clear-perms"
        if case.fault == "error@transfer":
            task += "&fail-at=50&fault=MigrationFault&message=injected+by+bench/faults"
        elif case.fault == "error@switchover":
            task += "&fail-at=90&fault=MigrationFault&message=injected+by+bench/faults"
        if kind in ("cancel",) or case.fault.startswith("kill@transfer+"):
            task += "&step-ms=120"
        self.ctl(task)
        call = {"error-http@call": "500", "fault@call": "notauth", "cut@call": "close",
                "lost-reply@call": "truncate"}.get(case.fault)
        if call:
            self.ctl("http?method=RelocateVM_Task&mode=%s" % call)
        if case.fault == "lost-reply@poweron":
            self.ctl("http?method=PowerOnVM_Task&mode=truncate")

    def during(self, case, proc):
        kind, _, where = case.fault.partition("@")
        if case.fault in ("cut@poll", "lost-reply@poll"):
            if F.wait_phase(self, self.vm, ["transfer"], proc, 60):
                time.sleep(0.1)
                self.ctl("http?method=RetrievePropertiesEx&mode=%s"
                         % ("close" if kind == "cut" else "truncate"))
        elif kind == "cut" and where.startswith("transfer+"):
            if F.wait_phase(self, self.vm, ["transfer"], proc, 60):
                time.sleep(int(where.split("+")[1]) / 1000.0)
                self.proxy.arm()

    def peer_fault_cleared(self):
        if self.proxy.fired:
            F.log("the proxy cut the connections mid-reply")
            self.proxy.fired = False
        self.proxy.disarm()
        self.ctl("reset")
        # a task the fault left running (a cancelled job's) ends first
        for _ in range(100):
            try:
                with urllib.request.urlopen(self.ctl_url + "/ctl/tasks", timeout=10) as r:
                    t = r.read().decode()
            except OSError:
                break
            if not any(w in ("running", "queued") for line in t.splitlines()
                       for w in line.split()[3:4]):
                break
            time.sleep(0.1)

    def peer(self):
        places = self.read_vm(self.vm)
        self.now = places[0] if len(places) == 1 else None
        return places, False

    def expected_disks(self, place):
        return place["disks"]

    def disks_intact(self, place, want):
        return place["disks"] == want["disks"]

    def acl_missing(self, place):
        return [p for p in PERMS if p not in place.get("perms", [])]

    def stop(self):
        if self.proxy:
            self.proxy.stop()
        super().stop()
