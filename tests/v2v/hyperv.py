#!/usr/bin/env python3
"""Moves between backends with the Hyper-V plugin (issue 16), against the
Hyper-V simulator (tests/hyperv-sim) whose hosts keep drive D: (HV01) and
E: (HV02) in real directories that a real Samba server serves from a
network namespace this test makes (a veth pair with test-made addresses,
no route out); the plugin reaches them with libsmbclient.

hv-v2v-drive plays the host's part between a backend on HV01 (source) and
one on HV02 (destination): export_vm of a stopped generation 1 VM, its
disks read through SMB, check_import, import_vm (VHDX uploaded, the VM
defined with DefineSystem / AddResourceSettings), the copy verified disk by
disk, start_vm, remove_vm; a running VM refused; a failed import (a switch
missing, or a failure after the import) leaves nothing on the destination.
Each result is checked in the simulator's state and in the share's files
(qemu-img convert -O raw + SHA-256).  The simulator's own refusals
(a VHD that is not there, a VHD on generation 2) are checked with raw
WS-Man requests.  Prints TAP; needs root (namespaces), smbd, qemu-img,
qemu-nbd and nbdcopy."""

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("VMSHIFT_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
BUILD = os.environ.get("VMSHIFT_BUILDDIR", os.getcwd())
SIMDIR = os.path.join(SRC, "tests", "hyperv-sim")
SIM = os.path.join(SIMDIR, "hyperv_sim.py")
DRIVE = os.path.join(BUILD, "tests", "v2v", "hv-v2v-drive")
PLUGIN = os.path.join(BUILD, "plugins", "hyperv", ".libs", "hyperv.so")
PASSWORD = "V2v-Smb-Pa55"
MIB = 1 << 20

n = 0
failed = 0
procs = []
outputs = []


def ok(cond, what, diag=None):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, what), flush=True)
    if not cond and diag is not None:
        for line in str(diag).splitlines()[-30:]:
            print("# " + line)
    return cond


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MIB), b""):
            h.update(b)
    return h.hexdigest()


def raw_sha(tmp, image):
    """SHA-256 of an image's guest-visible bytes (qemu-img convert -O raw)."""
    out = os.path.join(tmp, "check.raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", image, out],
                   check=True, capture_output=True)
    s = sha(out)
    os.unlink(out)
    return s


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d)
                  for r, _, fs in os.walk(d) for f in fs)


# -- a real Samba server in a namespace ------------------------------------------

class Samba:
    def __init__(self, tmp, shares):
        tag = hashlib.md5(tmp.encode()).hexdigest()
        self.ns = "vmshv" + tag[:8]
        self.veth = ("vh" + tag[:8], "vs" + tag[:8])
        b = int(tag[8:12], 16) % 16000      # a /30 of 198.18.0.0/15 (RFC 2544)
        self.ip = "198.18.%d.%d" % (b >> 6, (b & 63) * 4 + 1)
        self.peer = "198.18.%d.%d" % (b >> 6, (b & 63) * 4 + 2)
        self.dir = os.path.join(tmp, "samba")
        self.conf = os.path.join(self.dir, "smb.conf")
        self.proc = None
        self.shares = shares

    def up(self):
        d = self.dir
        for s in ("private", "lock", "state", "cache", "run", "ncalrpc"):
            os.makedirs(os.path.join(d, s), exist_ok=True)
        with open(os.path.join(d, "users.map"), "w") as f:
            f.write("root = Administrator\n")
        with open(self.conf, "w") as f:
            f.write("[global]\n  server role = standalone server\n"
                    "  workgroup = WORKGROUP\n  netbios name = HVSIM\n"
                    "  security = user\n  map to guest = never\n"
                    "  passdb backend = tdbsam:%s/private/passdb.tdb\n"
                    "  private dir = %s/private\n  lock directory = %s/lock\n"
                    "  state directory = %s/state\n"
                    "  cache directory = %s/cache\n  pid directory = %s/run\n"
                    "  ncalrpc dir = %s/ncalrpc\n  log file = %s/log.%%m\n"
                    "  interfaces = %s/30\n  bind interfaces only = yes\n"
                    "  smb ports = 445\n  disable netbios = yes\n"
                    "  username map = %s/users.map\n  load printers = no\n"
                    "  printing = bsd\n  printcap name = /dev/null\n"
                    "  disable spoolss = yes\n"
                    % ((d,) * 8 + (self.ip, d)))
            for name, path in self.shares.items():
                f.write("[%s]\n  path = %s\n  read only = no\n"
                        "  valid users = root\n  create mask = 0644\n"
                        % (name, path))
        run = subprocess.run
        run(["ip", "netns", "add", self.ns], check=True)
        run(["ip", "link", "add", self.veth[0], "type", "veth", "peer",
             "name", self.veth[1]], check=True)
        run(["ip", "link", "set", self.veth[1], "netns", self.ns], check=True)
        run(["ip", "addr", "add", self.peer + "/30", "dev", self.veth[0]],
            check=True)
        run(["ip", "link", "set", self.veth[0], "up"], check=True)
        run(["ip", "-n", self.ns, "addr", "add", self.ip + "/30", "dev",
             self.veth[1]], check=True)
        run(["ip", "-n", self.ns, "link", "set", self.veth[1], "up"],
            check=True)
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        run(["smbpasswd", "-c", self.conf, "-s", "-a", "root"],
            input="%s\n%s\n" % (PASSWORD, PASSWORD), text=True, check=True,
            capture_output=True)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "smbd", "-F", "--no-process-group",
             "--debug-stdout", "-d", "1", "-s", self.conf],
            stdout=open(os.path.join(d, "smbd.out"), "w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection((self.ip, 445), 0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("smbd did not start: " + open(
            os.path.join(d, "smbd.out")).read()[-500:])

    def down(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        out = subprocess.run(["ip", "netns", "pids", self.ns],
                             capture_output=True, text=True).stdout.split()
        for p in out:
            try:
                os.kill(int(p), 9)
            except (ValueError, OSError):
                pass
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.veth[0]], capture_output=True)


# -- the simulator's world ------------------------------------------------------------


def make_world(tmp, hs):
    """HV01 and HV02 of the built-in world, their D: and E: in real
    directories, and two VMs of HV01 with real VHDX disks: hvsrc
    (generation 1, off, a boot disk on IDE 0:0 and a data disk on SCSI 0:0,
    a static MAC on LAN) and hvrun (generation 2, running)."""
    world = hs.default_state()
    d01, e02 = os.path.join(tmp, "hv01-d"), os.path.join(tmp, "hv02-e")
    world["hosts"]["HV01"]["smb_dirs"] = {"D:": d01}
    world["hosts"]["HV02"]["smb_dirs"] = {"E:": e02}
    raws = {}
    for name, mib in (("hvsrc", 8), ("data", 4), ("hvrun", 2)):
        vmdir = os.path.join(d01, "VMs", "hvsrc" if name == "data" else name)
        os.makedirs(vmdir, exist_ok=True)
        raw = os.path.join(tmp, name + ".raw")
        with open(raw, "wb") as f:
            f.write(os.urandom(mib * MIB // 2))
            f.write(b"\0" * (mib * MIB // 4))
            f.write(os.urandom(mib * MIB // 4))
        subprocess.run(["qemu-img", "convert", "-O", "vhdx", raw,
                        os.path.join(vmdir, name + ".vhdx")], check=True)
        raws[name] = (sha(raw), mib * MIB)
    os.makedirs(os.path.join(e02, "VMs"), exist_ok=True)
    g1 = "7A0F5E2C-1B3D-4E5F-8A9B-00000000A001"
    g2 = "7A0F5E2C-1B3D-4E5F-8A9B-00000000A002"
    ide0 = "Microsoft:%s\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0" % g1
    ide1 = "Microsoft:%s\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\1" % g1
    scsi = "Microsoft:%s\\D422512D-2BF2-4752-809D-7B82B5FCB1B4\\0" % g1
    hv01 = world["hosts"]["HV01"]
    hv01["vms"].append(dict(
        name="hvsrc", guid=g1, enabled_state=3, operational_status=[2],
        config_root="D:\\VMs\\hvsrc", memory_mb=2048, cpus=2, version="9.0",
        generation=1,
        controllers=[dict(id=ide0, type=5, address=0),
                     dict(id=ide1, type=5, address=1),
                     dict(id=scsi, type=6, address=0)],
        drives=[dict(id=scsi + "\\0\\D", controller=scsi, slot=0),
                dict(id=ide0 + "\\0\\D", controller=ide0, slot=0)],
        # listed data disk first: the export orders by bus, controller, slot
        disks=[dict(id="D1", path="D:\\VMs\\hvsrc\\data.vhdx", size=1 * MIB,
                    capacity=4 * MIB, drive=scsi + "\\0\\D"),
               dict(id="D0", path="D:\\VMs\\hvsrc\\hvsrc.vhdx", size=1 * MIB,
                    capacity=8 * MIB, drive=ide0 + "\\0\\D")],
        nics=[dict(id="N0", name="Network Adapter", mac="00155D00AA01",
                   switch="LAN", static=True)],
        snapshots=[]))
    hv01["vms"].append(dict(
        name="hvrun", guid=g2, enabled_state=2, operational_status=[2],
        config_root="D:\\VMs\\hvrun", memory_mb=1024, cpus=1, version="9.0",
        generation=2, controllers=[], drives=[],
        disks=[dict(id="R0", path="D:\\VMs\\hvrun\\hvrun.vhdx", size=MIB,
                    capacity=2 * MIB)],
        nics=[], snapshots=[]))
    path = os.path.join(tmp, "world.json")
    with open(path, "w") as f:
        json.dump(world, f)
    return path, d01, e02, raws


def start_sim(tmp, world):
    ready = os.path.join(tmp, "sim.json")
    p = subprocess.Popen([sys.executable, SIM, "--credentials",
                          os.path.join(tmp, "cred"), "--ready-file", ready,
                          "--state", world, "--job-seconds", "0.5"],
                         stdout=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(200):
        if os.path.exists(ready):
            return json.load(open(ready))
        if p.poll() is not None:
            raise RuntimeError("simulator exited")
        time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def write_conf(tmp, info, smb):
    conf = os.path.join(tmp, "drive.conf")
    os.makedirs(os.path.join(tmp, "stage"), exist_ok=True)
    common = ("plugin=hyperv\ncredentials=%s\nauth=basic\n"
              "allow-unencrypted=true\ntimeout=20\n"
              "smb-shares=D:=//%s/d$;E:=//%s/e$\nstaging-dir=%s\n"
              % (os.path.join(tmp, "cred"), smb.ip, smb.ip,
                 os.path.join(tmp, "stage")))
    with open(conf, "w") as f:
        f.write("[backend src]\nhosts=%s\n%s\n[backend dst]\nhosts=%s\n%s"
                % (info["hosts"]["HV01"], common, info["hosts"]["HV02"],
                   common))
    return conf


class Driver:
    def __init__(self, conf):
        self.base = [DRIVE, PLUGIN, conf, "src", "dst"]

    def run(self, *args):
        r = subprocess.run(self.base + list(args), capture_output=True,
                           text=True, timeout=300)
        outputs.append(r.stdout + r.stderr)
        lines = []
        for line in r.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            lines.append((kind, parse_kv(rest)))
        return r.returncode, lines, r.stdout + r.stderr


def parse_kv(s):
    out, i = {}, 0
    while i < len(s):
        while i < len(s) and s[i] == " ":
            i += 1
        k_end = s.find("=", i)
        if k_end < 0:
            break
        k = s[i:k_end]
        i = k_end + 1
        if i < len(s) and s[i] == '"':
            j = i + 1
            v = []
            while j < len(s) and s[j] != '"':
                if s[j] == "\\" and j + 1 < len(s):
                    j += 1
                v.append(s[j])
                j += 1
            out[k] = "".join(v)
            i = j + 1
        else:
            j = s.find(" ", i)
            j = len(s) if j < 0 else j
            out[k] = s[i:j]
            i = j
    return out


def sim_vm(info, host, name, T):
    s = T.control(info, "/state")
    vs = [v for v in s["hosts"][host]["vms"] if v["name"] == name]
    return vs[0] if len(vs) == 1 else None


# -- the tests -------------------------------------------------------------------------


def export_and_read(D, tmp, raws):
    rc, ls, out = D.run("export", "hvsrc")
    vm = [x for k, x in ls if k == "vm"]
    disks = [x for k, x in ls if k == "disk"]
    nics = [x for k, x in ls if k == "nic"]
    ok(rc == 0 and vm and vm[0]["firmware"] == "1" and vm[0]["vcpus"] == "2"
       and vm[0]["memory"] == str(2048 * MIB),
       "export hvsrc: generation 1 = BIOS, 2 vCPUs, 2 GiB", out)
    ok(len(disks) == 2 and disks[0]["bus"] == "ide" and
       disks[0]["path"].endswith("hvsrc.vhdx") and disks[0]["boot"] == "1" and
       disks[0]["capacity"] == str(8 * MIB) and disks[1]["bus"] == "scsi" and
       disks[1]["capacity"] == str(4 * MIB) and disks[1]["known"] != "0",
       "export: disks by bus, controller and slot (IDE 0:0 boots, then "
       "SCSI 0:0), virtual sizes known", out)
    ok(len(nics) == 1 and nics[0]["mac"].lower() == "00:15:5d:00:aa:01" and
       nics[0]["network"] == "LAN",
       "export: the NIC's MAC and switch", out)
    dest = os.path.join(tmp, "read.raw")
    rc, ls, out = D.run("read", "hvsrc", disks[0]["id"] if disks else "x",
                        dest)
    ok(rc == 0 and os.path.exists(dest) and sha(dest) == raws["hvsrc"][0],
       "open_disk through SMB: the guest-visible bytes of hvsrc.vhdx",
       out)
    ok(not os.listdir(os.path.join(tmp, "stage")),
       "open_disk left nothing in staging-dir")
    for op in (("export", "hvrun"), ("read", "hvrun", "hvrun.vhdx", dest)):
        rc, ls, out = D.run(*op)
        ok(rc != 0 and "code=conflict" in out and "must be off" in out,
           "%s of running hvrun refused (conflict, must be off)" % op[0], out)


def check(D):
    rc, ls, out = D.run("check", "hvsrc", "HV02", "E:\\VMs")
    f = [x for k, x in ls if k == "finding"]
    codes = [x["code"] for x in f]
    ok(rc == 0 and "guest-drivers" in codes and
       not any(x["severity"] == "2" for x in f),
       "check_import hvsrc on HV02: no error, a guest-drivers warning", out)
    ok("bus-remapped" in codes and any(x["subject"] == "data.vhdx" and
                                        "ide" in x["message"] for x in f),
       "check_import: the data disk goes from SCSI to IDE on generation 1 "
       "(a warning naming it)", out)


def move(D, T, info, tmp, e02, raws):
    rc, ls, out = D.run("move", "hvsrc", "HV02", "E:\\VMs")
    saves = [x["key"] for k, x in ls if k == "save"]
    ver = [x for k, x in ls if k == "verify"]
    ok(rc == 0 and len(ver) == 2 and
       ver[0]["sha256"] == raws["hvsrc"][0] and
       ver[1]["sha256"] == raws["data"][0],
       "move hvsrc HV01 -> HV02: imported, both disks read back through "
       "SMB equal the source's bytes, in the source's order", out)
    ok(saves[:4] == ["hv-backend", "hv-host", "hv-dir", "hv-disks"] and
       saves.index("hv-disk-0") < saves.index("hv-vm-id"),
       "import journals the host, folder and disk files before creating "
       "them, the VM id once it exists", out)
    v = sim_vm(info, "HV02", "hvsrc", T)
    ok(v is not None and v["generation"] == 1 and v["memory_mb"] == 2048 and
       v["cpus"] == 2 and v["enabled_state"] == 3 and
       v["config_root"] == "E:\\VMs\\hvsrc",
       "HV02 (simulator): hvsrc defined off, generation 1, 2048 MB, 2 CPUs, "
       "in E:\\VMs\\hvsrc", v)
    vhd = "E:\\VMs\\hvsrc\\Virtual Hard Disks\\"
    ide = {c["id"] for c in (v or {}).get("controllers", [])
           if c["type"] == 5}
    drv = {d["id"]: d for d in (v or {}).get("drives", [])}
    ok(v is not None and [d["path"] for d in v["disks"]] ==
       [vhd + "hvsrc.vhdx", vhd + "hvsrc_1.vhdx"] and
       all(drv[d["drive"]]["controller"] in ide for d in v["disks"]) and
       [drv[d["drive"]]["slot"] for d in v["disks"]] == [0, 1],
       "HV02: both disks as VHDX on IDE controller 0, slots 0 and 1", v)
    ok(v is not None and v["nics"][0]["mac"] == "00155D00AA01" and
       v["nics"][0]["static"] and v["nics"][0]["switch"] == "LAN",
       "HV02: the NIC with the static MAC 00155D00AA01 on switch LAN", v)
    f1 = os.path.join(e02, "VMs", "hvsrc", "Virtual Hard Disks", "hvsrc.vhdx")
    f2 = os.path.join(e02, "VMs", "hvsrc", "Virtual Hard Disks",
                      "hvsrc_1.vhdx")
    ok(os.path.exists(f1) and raw_sha(tmp, f1) == raws["hvsrc"][0] and
       raw_sha(tmp, f2) == raws["data"][0] and
       subprocess.run(["qemu-img", "info", "--output=json", f1],
                      capture_output=True, text=True).stdout.count('"vhdx"'),
       "the share's files: VHDX whose guest-visible bytes are the source's "
       "(qemu-img convert -O raw + sha256)")
    s = sim_vm(info, "HV01", "hvsrc", T)
    ok(s is not None and s["enabled_state"] == 3 and len(s["disks"]) == 2,
       "the source hvsrc on HV01 is unchanged", s)
    rc, ls, out = D.run("check", "hvsrc", "HV02", "E:\\VMs")
    ok(any(k == "finding" and x["code"] == "name-taken" and
           x["severity"] == "2" for k, x in ls),
       "check_import again: the name is taken on HV02 (error)", out)
    rc, ls, out = D.run("move", "hvsrc", "HV02", "E:\\VMs")
    ok(rc != 0 and "already has a VM named hvsrc" in out and
       len([1 for _ in [sim_vm(info, "HV02", "hvsrc", T)] if _]) == 1,
       "import again: refused, the existing VM untouched", out)


def start_and_remove(D, T, info, e02):
    rc, ls, out = D.run("start", "hvsrc")
    v = sim_vm(info, "HV02", "hvsrc", T)
    ok(rc == 0 and v and v["enabled_state"] == 2,
       "start_vm: hvsrc runs on HV02 (RequestStateChange 2)", out)
    rc, ls, out = D.run("remove", "hvsrc")
    ok(rc != 0 and "code=conflict" in out and
       sim_vm(info, "HV02", "hvsrc", T) is not None,
       "remove_vm of the running VM refused", out)
    T.control(info, "/vm", {"vm": v["guid"], "enabled_state": 3})
    rc, ls, out = D.run("remove", "hvsrc")
    ok(rc == 0 and sim_vm(info, "HV02", "hvsrc", T) is None and
       files_under(e02) == [] and os.listdir(os.path.join(e02, "VMs")) == [],
       "remove_vm: DestroySystem, the disks deleted through SMB, no file "
       "or folder left on E:", (out, files_under(e02)))


def failed_imports(D, T, info, e02):
    rc, ls, out = D.run("move", "hvsrc", "HV02", "E:\\VMs",
                        "--fail-after-import")
    ok(rc != 0 and "rollback ok=1" in out and
       sim_vm(info, "HV02", "hvsrc", T) is None and files_under(e02) == [] and
       os.listdir(os.path.join(e02, "VMs")) == [],
       "a failure after the import (as at verify): remove_vm with the job "
       "leaves no VM and no file on HV02", (out, files_under(e02)))
    T.control(info, "/host", {"host": "HV02", "switches": [
        dict(name="WAN", guid="6C6E7BAF-2A3D-4A5E-8D5F-7C2D1B0000FF")]})
    rc, ls, out = D.run("move", "hvsrc", "HV02", "E:\\VMs")
    ok(rc != 0 and "no switch \\\"LAN\\\"" in out and
       "removing what it made" in out and
       sim_vm(info, "HV02", "hvsrc", T) is None and files_under(e02) == [],
       "import with a switch HV02 lacks: fails after the VM was defined; "
       "the VM and its files are gone", (out, files_under(e02)))
    T.control(info, "/host", {"host": "HV02", "switches": [
        dict(name="LAN", guid="6C6E7BAF-2A3D-4A5E-8D5F-7C2D1B000001")]})
    other = os.path.join(e02, "VMs", "hvsrc", "Virtual Hard Disks")
    os.makedirs(other)
    with open(os.path.join(other, "hvsrc.vhdx"), "wb") as f:
        f.write(b"someone else's file")
    rc, ls, out = D.run("move", "hvsrc", "HV02", "E:\\VMs")
    ok(rc != 0 and "already has" in out and
       files_under(e02) == ["VMs/hvsrc/Virtual Hard Disks/hvsrc.vhdx"] and
       sim_vm(info, "HV02", "hvsrc", T) is None,
       "a disk file already at the destination: refused, that file is kept "
       "(never journaled, never rolled back)", (out, files_under(e02)))
    shutil.rmtree(os.path.join(e02, "VMs", "hvsrc"))


def sim_refusals(info, T, S):
    """The simulator refuses what Hyper-V refuses: a VHD that is not on
    the host, a .vhd on generation 2."""
    c = S.Client(info["hosts"]["HV02"], "Administrator", PASSWORD)
    u = S.V2 + "Msvm_VirtualSystemManagementService"
    sel = {"CreationClassName": "Msvm_VirtualSystemManagementService"}

    def esc(x):
        return x.replace("&", "&amp;").replace("<", "&lt;").replace(">",
                                                                    "&gt;")

    def inst(cls, props):
        return esc('<INSTANCE CLASSNAME="%s">%s</INSTANCE>' % (cls, "".join(
            '<PROPERTY%s NAME="%s" TYPE="string">%s</PROPERTY%s>' % (
                ".ARRAY" if isinstance(v, list) else "", k,
                "<VALUE.ARRAY><VALUE>%s</VALUE></VALUE.ARRAY>" % v[0]
                if isinstance(v, list) else "<VALUE>%s</VALUE>" % v,
                ".ARRAY" if isinstance(v, list) else "")
            for k, v in props.items())))

    def call(method, body):
        return c.call(u + "/" + method, u, '<p:%s_INPUT xmlns:p="%s">%s'
                      '</p:%s_INPUT>' % (method, u, body, method), sel)

    st, d = call("DefineSystem", "<p:SystemSettings>%s</p:SystemSettings>" %
                 inst("Msvm_VirtualSystemSettingData",
                      {"ElementName": "raw2", "VirtualSystemSubType":
                       "Microsoft:Hyper-V:SubType:2",
                       "ConfigurationDataRoot": "E:\\raw2"}))
    v = sim_vm(info, "HV02", "raw2", T)
    ok(st == 200 and v and v["controllers"] == [],
       "DefineSystem of a generation 2 VM: defined, no IDE controller")
    aff = "<p:AffectedConfiguration>%s</p:AffectedConfiguration>" % S.epr(
        S.V2 + "Msvm_VirtualSystemSettingData",
        {"InstanceID": "Microsoft:" + (v or {}).get("guid", "")})
    st, d = call("AddResourceSettings", aff + "<p:ResourceSettings>%s"
                 "</p:ResourceSettings>" % inst(
                     "Msvm_ResourceAllocationSettingData",
                     {"ResourceType": "6", "ResourceSubType":
                      "Microsoft:Hyper-V:Synthetic SCSI Controller"}))
    state, _, _ = S.wait_job(c, d)
    v = sim_vm(info, "HV02", "raw2", T)
    ctl = v["controllers"][0]["id"] if v and v["controllers"] else ""
    path = "\\\\HV02\\root\\virtualization\\v2:Msvm_ResourceAllocationSettingData" \
        '.InstanceID="%s"' % ctl.replace("\\", "\\\\")
    st, d = call("AddResourceSettings", aff + "<p:ResourceSettings>%s"
                 "</p:ResourceSettings>" % inst(
                     "Msvm_ResourceAllocationSettingData",
                     {"ResourceType": "17", "ResourceSubType":
                      "Microsoft:Hyper-V:Synthetic Disk Drive",
                      "Parent": path, "AddressOnParent": "0"}))
    S.wait_job(c, d)
    v = sim_vm(info, "HV02", "raw2", T)
    dpath = path.replace('"%s"' % ctl.replace("\\", "\\\\"),
                         '"%s"' % v["drives"][0]["id"].replace("\\", "\\\\"))
    for hr, why, what in (("E:\\raw2\\missing.vhdx", "0x80070002",
                           "a VHDX that is not on the host"),
                          ("E:\\raw2\\old.vhd", "support VHDX disks only",
                           "a .vhd on generation 2")):
        if hr.endswith(".vhd"):
            os.makedirs(os.path.join(info["e02"], "raw2"), exist_ok=True)
            subprocess.run(["qemu-img", "create", "-q", "-f", "vpc",
                            os.path.join(info["e02"], "raw2", "old.vhd"),
                            "1M"], check=True)
        st, d = call("AddResourceSettings", aff + "<p:ResourceSettings>%s"
                     "</p:ResourceSettings>" % inst(
                         "Msvm_StorageAllocationSettingData",
                         {"ResourceType": "31", "ResourceSubType":
                          "Microsoft:Hyper-V:Virtual Hard Disk",
                          "Parent": dpath, "HostResource": [hr]}))
        state, job, _ = S.wait_job(c, d)
        ok(state == 10 and why in (S.prop(job, "ErrorDescription") or "") and
           sim_vm(info, "HV02", "raw2", T)["disks"] == [],
           "AddResourceSettings of %s: the job fails (%s), nothing attached"
           % (what, why))
    st, d = c.call(u + "/DestroySystem", u,
                   '<p:DestroySystem_INPUT xmlns:p="%s"><p:AffectedSystem>%s'
                   '</p:AffectedSystem></p:DestroySystem_INPUT>' % (u, S.epr(
                       S.V2 + "Msvm_ComputerSystem",
                       {"CreationClassName": "Msvm_ComputerSystem",
                        "Name": v["guid"]})), sel)
    S.wait_job(c, d)
    ok(sim_vm(info, "HV02", "raw2", T) is None,
       "DestroySystem: the VM is gone")
    shutil.rmtree(os.path.join(info["e02"], "raw2"), ignore_errors=True)


# -- through the vmshift command: skeleton <-> hyperv -----------------------------------

SKEL = os.path.join(BUILD, "tests", "skeleton", ".libs", "skeleton.so")
VMSHIFT = os.path.join(BUILD, "host", "vmshift")


class Vmshift:
    def __init__(self, tmp, info, smb):
        self.tmp = tmp
        etc = os.path.join(tmp, "etc")
        os.makedirs(os.path.join(etc, "backends.d"), exist_ok=True)
        plug = os.path.join(tmp, "plugins")
        os.makedirs(plug, exist_ok=True)
        for so in (SKEL, PLUGIN):
            shutil.copy(so, plug)
        open(os.path.join(etc, "vmshift.conf"), "w").close()
        self.s1 = os.path.join(tmp, "skel.state")
        with open(os.path.join(etc, "backends.d", "v2v.conf"), "w") as f:
            f.write("[backend skel]\nplugin=skeleton\nhosts=alpha;beta\n"
                    "vms=sk1@alpha;sk2@alpha;sk3@alpha\nstate-file=%s\n\n"
                    "[backend hv]\nplugin=hyperv\nhosts=%s;%s\n"
                    "credentials=%s\nauth=basic\nallow-unencrypted=true\n"
                    "timeout=20\nsmb-shares=D:=//%s/d$;E:=//%s/e$\n"
                    "staging-dir=%s\n"
                    % (self.s1, info["hosts"]["HV01"], info["hosts"]["HV02"],
                       os.path.join(tmp, "cred"), smb.ip, smb.ip,
                       os.path.join(tmp, "stage")))
        self.base = [VMSHIFT, "--config", os.path.join(etc, "vmshift.conf"),
                     "--plugin-dir", plug, "--state-dir",
                     os.path.join(tmp, "vstate"), "--daemon", "no"]

    def run(self, *args):
        r = subprocess.run(self.base + list(args), capture_output=True,
                           text=True, timeout=600)
        outputs.append(r.stdout + r.stderr)
        return r.returncode, r.stdout + r.stderr

    def section(self, vm):
        """The [vm VM] keys of the skeleton's state file (its own view)."""
        out, cur = {}, None
        for line in open(self.s1):
            line = line.strip()
            if line.startswith("["):
                cur = line == "[vm %s]" % vm
            elif cur and "=" in line:
                k, _, v = line.partition("=")
                out[k] = v
        return out if os.path.exists(self.s1) and out else None

    def make_vm(self, vm, kibs, firmware):
        """A stopped VM of the skeleton with raw disks of random bytes."""
        data = self.s1 + ".data"
        d = os.path.join(data, "srv", "vms", vm)
        os.makedirs(d, exist_ok=True)
        sums = []
        for i, kib in enumerate(kibs):
            with open(os.path.join(d, "disk%d.img" % i), "wb") as f:
                f.write(os.urandom(kib * 1024))
            sums.append(sha(os.path.join(d, "disk%d.img" % i)))
        out, cur = [], False
        for line in open(self.s1).read().split("\n"):
            if line.startswith("["):
                cur = line == "[vm %s]" % vm
            elif cur and line.startswith("power="):
                line = "power=stopped"
            out.append(line)
            if cur and line.startswith("["):
                out += ["disks=" + "".join("disk%d;" % i
                                           for i in range(len(kibs))),
                        "nics=net0;", "mac-net0=52:54:00:00:00:%02x"
                        % len(kibs), "firmware=" + firmware]
        open(self.s1, "w").write("\n".join(out))
        return sums

    def drop_vm(self, vm):
        """Removes [vm VM] from the skeleton's state (its VM deleted)."""
        out, cur = [], False
        for line in open(self.s1).read().split("\n"):
            if line.startswith("["):
                cur = line == "[vm %s]" % vm
            if not cur:
                out.append(line)
        open(self.s1, "w").write("\n".join(out))


def repair_after_kill(V, T, info, e02):
    """vmshift killed (-9) during the import, once the VM is defined on
    HV02 and its disk attached: `job repair` removes the VM and its files
    from what the import journaled; the source is unchanged."""
    V.make_vm("sk3", [1024], "bios")
    T.control(info, "/fault", {"kind": "delay", "seconds": 12, "host": "HV02",
                               "action": "AddResourceSettings",
                               "match": "Msvm_SyntheticEthernetPortSettingData"})
    p = subprocess.Popen(V.base + ["migrate", "skel:sk3", "--to", "hv:HV02",
                                   "--path", "E:\\VMs", "--network",
                                   "net0=LAN", "--force"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    v = T.wait_for(lambda: (sim_vm(info, "HV02", "sk3", T) or {}).get("disks"),
                   60)
    time.sleep(1)
    os.killpg(p.pid, 9)
    out, err = p.communicate()
    outputs.append(out + err)
    T.control(info, "/clear", {})
    time.sleep(13)          # the delayed request ends (Hyper-V carries it out)
    left = sim_vm(info, "HV02", "sk3", T)
    r = subprocess.run(V.base + ["--json", "jobs"], capture_output=True,
                       text=True)
    js = r.stdout + r.stderr
    try:
        jobs = [j for j in json.loads(r.stdout)["jobs"] if j["vm"] == "sk3"]
    except (ValueError, KeyError):
        jobs = []
    jid = str(max(j["id"] for j in jobs)) if jobs else "0"
    rc, out = V.run("job", "repair", jid)
    ok(v and left is not None and rc == 0 and
       sim_vm(info, "HV02", "sk3", T) is None and
       not os.path.exists(os.path.join(e02, "VMs", "sk3")) and
       (V.section("sk3") or {}).get("power") == "stopped",
       "vmshift killed during the import (VM defined, disk attached): job "
       "repair removes the VM and its files from HV02; the source is "
       "unchanged", (out, js, files_under(e02)))


def vmshift_moves(tmp, info, smb, T, e02, raws):
    V = Vmshift(tmp, info, smb)
    V.run("vms")                                  # creates the state file
    sums = V.make_vm("sk1", [2048, 1024], "uefi")
    rc, out = V.run("migrate", "skel:sk1", "--to", "hv:HV02", "--path",
                    "E:\\VMs", "--network", "net0=LAN", "--force")
    v = sim_vm(info, "HV02", "sk1", T)
    vhd = os.path.join(e02, "VMs", "sk1", "Virtual Hard Disks")
    ok(rc == 0 and v is not None and v["generation"] == 2 and
       v["enabled_state"] == 3 and len(v["disks"]) == 2,
       "vmshift migrate skel:sk1 --to hv:HV02: defined off on HV02 "
       "(simulator), UEFI -> generation 2, two disks", out)
    ok(v is not None and os.path.exists(os.path.join(vhd, "sk1.vhdx")) and
       raw_sha(tmp, os.path.join(vhd, "sk1.vhdx")) == sums[0] and
       raw_sha(tmp, os.path.join(vhd, "sk1_1.vhdx")) == sums[1],
       "the share's VHDX files hold the skeleton disks' bytes, in order "
       "(qemu-img convert -O raw + sha256)")
    ok(v is not None and v["nics"][0]["mac"] == "525400000002" and
       v["nics"][0]["switch"] == "LAN" and
       all(c["type"] == 6 for c in v["controllers"]),
       "HV02: the MAC kept (static), the NIC on LAN, disks on SCSI", v)
    sk = V.section("sk1") or {}
    ok(sk.get("power") == "stopped", "the skeleton's sk1 stays, off", sk)
    rc, out = V.run("migrate", "hv:hvsrc", "--to", "skel:beta", "--force")
    sk = V.section("hvsrc") or {}
    data = V.s1 + ".data"
    found = sorted(os.path.join(r, f) for r, _, fs in os.walk(data)
                   for f in fs if "hvsrc" in r)
    ok(rc == 0 and sk.get("host") == "beta" and len(found) == 2 and
       sorted(raw_sha(tmp, f) for f in found) ==
       sorted([raws["hvsrc"][0], raws["data"][0]]),
       "vmshift migrate hv:hvsrc --to skel:beta: the skeleton has hvsrc "
       "with both disks' bytes (read from HV01 through SMB)", (out, found))
    s = sim_vm(info, "HV01", "hvsrc", T)
    ok(s is not None and s["enabled_state"] == 3,
       "the source hvsrc stays on HV01, off", s)
    rc, out = V.run("migrate", "hv:hvrun", "--to", "skel:beta", "--force")
    ok(rc != 0 and V.section("hvrun") is None,
       "a running Hyper-V VM is refused; the skeleton has nothing", out)
    sums = V.make_vm("sk2", [1024], "bios")
    T.control(info, "/fault", {"kind": "soap-fault", "host": "HV02",
                               "action": "AddResourceSettings",
                               "match": "Msvm_SyntheticEthernetPortSettingData",
                               "reason": "The operation failed."})
    rc, out = V.run("migrate", "skel:sk2", "--to", "hv:HV02", "--path",
                    "E:\\VMs", "--network", "net0=LAN", "--force")
    T.control(info, "/clear", {})
    ok(rc != 0 and sim_vm(info, "HV02", "sk2", T) is None and
       not os.path.exists(os.path.join(e02, "VMs", "sk2")) and
       (V.section("sk2") or {}).get("power") == "stopped",
       "an import that fails on HV02 (adding the NIC): no VM, no file or "
       "folder left on E:, the source unchanged", (out, files_under(e02)))
    repair_after_kill(V, T, info, e02)
    V.drop_vm("sk1")        # gone at the skeleton: hv's sk1 may go back
    rc, out = V.run("migrate", "hv:sk1", "--to", "skel:beta", "--force",
                    "--delete-source")
    ok(rc == 0 and sim_vm(info, "HV02", "sk1", T) is None and
       not os.path.exists(os.path.join(e02, "VMs", "sk1")) and
       (V.section("sk1") or {}).get("host") in ("alpha", "beta"),
       "--delete-source from Hyper-V: HV02 has no sk1 and no file of it",
       (out, files_under(e02)))


def main():
    need = [DRIVE, PLUGIN]
    missing = [p for p in need if not os.path.exists(p)]
    tools = [t for t in ("smbd", "smbpasswd", "ip", "qemu-img", "qemu-nbd",
                         "nbdcopy") if shutil.which(t) is None]
    if missing or tools or os.geteuid() != 0:
        print("1..0 # SKIP needs root, %s" % ", ".join(missing + tools or
                                                       ["root"]))
        return 0
    tmp = tempfile.mkdtemp(prefix="v2v-hv-")
    os.chmod(tmp, 0o755)
    hs = load("hyperv_sim_mod", SIM) if sys.path.insert(0, SIMDIR) is None \
        else None
    T = load("hv_test_cli", os.path.join(SRC, "tests", "hyperv",
                                         "test-cli.py"))
    S = load("hv_test_sim", os.path.join(SIMDIR, "test-sim.py"))
    with open(os.path.join(tmp, "cred"), "w") as f:
        f.write("user=Administrator\npassword=%s\n" % PASSWORD)
    os.chmod(os.path.join(tmp, "cred"), 0o600)
    world, d01, e02, raws = make_world(tmp, hs)
    smb = Samba(tmp, {"d$": d01, "e$": e02})
    try:
        smb.up()
        info = start_sim(tmp, world)
        info["e02"] = e02
        D = Driver(write_conf(tmp, info, smb))
        export_and_read(D, tmp, raws)
        check(D)
        move(D, T, info, tmp, e02, raws)
        start_and_remove(D, T, info, e02)
        failed_imports(D, T, info, e02)
        sim_refusals(info, T, S)
        r = subprocess.run([VMSHIFT, "migrate", "--help"],
                           capture_output=True, text=True)
        if os.path.exists(SKEL) and "BACKEND" in r.stdout + r.stderr:
            vmshift_moves(tmp, info, smb, T, e02, raws)
        else:
            print("# vmshift migrate --to BACKEND:HOST or the skeleton "
                  "plugin not built here: those cases skipped")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        smb.down()
        shutil.rmtree(tmp, ignore_errors=True)
    ok(not any(PASSWORD in o for o in outputs), "no password in any output")
    ok(not any("Sanitizer" in o or "runtime error:" in o for o in outputs),
       "no sanitizer reports")
    print("1..%d" % n)
    return 1 if failed else 0


def serve(tmp):
    """--serve DIR: the simulator and the Samba server of these tests for
    another test (tests/v2v/hyperv-cross.sh): writes DIR/info.json (WS-Man
    URLs, control URL, the SMB server's address, the hosts' drive
    directories, the source disks' SHA-256) and runs until SIGTERM."""
    import signal

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o755)
    sys.path.insert(0, SIMDIR)
    hs = load("hyperv_sim_mod", SIM)
    with open(os.path.join(tmp, "cred"), "w") as f:
        f.write("user=Administrator\npassword=%s\n" % PASSWORD)
    os.chmod(os.path.join(tmp, "cred"), 0o600)
    world, d01, e02, raws = make_world(tmp, hs)
    smb = Samba(tmp, {"d$": d01, "e$": e02})
    try:
        smb.up()
        info = start_sim(tmp, world)
        info.update(smb=smb.ip, d01=d01, e02=e02, cred=os.path.join(
            tmp, "cred"), raws={k: v[0] for k, v in raws.items()})
        with open(os.path.join(tmp, "info.json.tmp"), "w") as f:
            json.dump(info, f)
        os.rename(os.path.join(tmp, "info.json.tmp"),
                  os.path.join(tmp, "info.json"))
        while True:
            time.sleep(1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        smb.down()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(serve(sys.argv[2]))
    sys.exit(main())
