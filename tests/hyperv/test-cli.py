#!/usr/bin/env python3
"""Integration test of the Hyper-V plugin through the `vmshift` command
against the Hyper-V simulator (tests/hyperv-sim): inventory, checks (a merge
in progress), live / storage / VM+storage migrations, ACL re-creation,
merge-status, the journal (jobs, job show), a failed job, `job cancel` from a
second process, and `kill -9` of `vmshift migrate` followed by `job repair`
(both outcomes).  The simulator's state is checked after each change.
Prints TAP."""

import copy
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("VMSHIFT_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
BUILD = os.environ.get("VMSHIFT_BUILDDIR", os.getcwd())
SIM = os.path.join(SRC, "tests", "hyperv-sim", "hyperv_sim.py")
VMSHIFT = os.path.join(BUILD, "host", "vmshift")
PLUGDIR = os.path.join(BUILD, "plugins", "hyperv", ".libs")
PASSWORD = "Cli-Pa55-word"
GIB = 1 << 30
VM_MASK = 0x12019F

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
    if not cond and diag:
        for line in str(diag).splitlines()[-20:]:
            print("# " + line)
    return cond


def start_sim(tmp, extra=(), tag="sim"):
    ready = os.path.join(tmp, tag + ".json")
    p = subprocess.Popen([sys.executable, SIM, "--credentials",
                          os.path.join(tmp, "sim-cred"), "--ready-file", ready,
                          "--job-seconds", "1.2"] + list(extra),
                         stdout=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(200):
        if os.path.exists(ready):
            return json.load(open(ready))
        if p.poll() is not None:
            raise RuntimeError("simulator exited")
        time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def control(info, path, obj=None):
    port = int(info["control"].rsplit(":", 1)[1].strip("/"))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    if obj is None:
        c.request("GET", path)
    else:
        c.request("POST", path, body=json.dumps(obj))
    data = json.loads(c.getresponse().read())
    c.close()
    return data


class Cli:
    def __init__(self, conf):
        self.base = [VMSHIFT, "--config", conf, "--plugin-dir", PLUGDIR]

    def run(self, *args, timeout=120):
        r = subprocess.run(self.base + list(args), capture_output=True,
                           text=True, timeout=timeout)
        outputs.append(r.stdout + r.stderr)
        return r.returncode, r.stdout, r.stderr

    def json(self, *args):
        rc, out, err = self.run("--json", *args)
        try:
            return rc, json.loads(out), out + err
        except ValueError:
            return rc, None, out + err

    def bg(self, *args):
        p = subprocess.Popen(self.base + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        procs.append(p)
        return p

    def job(self, jid):
        return self.json("job", "show", str(jid))[1] or {}

    def saved_job(self, vm, phase=None):
        """The newest job of vm once it runs (in phase) and has journaled the
        Hyper-V job's id (results are journaled only when a job ends)."""
        j = self.last_job(vm)
        if not j or j["state"] != "running" or \
                (phase is not None and j["phase"] != phase):
            return None
        ev = self.job(j["id"]).get("events", [])
        return j if any(e["kind"] == "save" and e["key"] == "hyperv-job"
                        for e in ev) else None

    def last_job(self, vm):
        _, js, _ = self.json("jobs")
        mine = [j for j in (js or {}).get("jobs", []) if j["vm"] == vm]
        return max(mine, key=lambda j: j["id"]) if mine else None


def vm_state(info, name):
    s = control(info, "/state")
    where = [(h, v) for h, hs in s["hosts"].items() for v in hs["vms"]
             if v["name"] == name]
    h, v = where[0] if len(where) == 1 else (None, None)
    return h, v, s, len(where)


def acl_ok(s, host, path, guid):
    f = [x for x in s["hosts"][host]["files"] if x["path"] == path]
    return bool(f) and any(a["account"] == "NT VIRTUAL MACHINE\\" + guid and
                           a["mask"] == VM_MASK and a["type"] == 0
                           for a in f[0]["acl"])


def wait_for(pred, secs=30):
    end = time.time() + secs
    while time.time() < end:
        r = pred()
        if r:
            return r
        time.sleep(0.2)
    return None


def write_creds(tmp):
    """The simulator's and vmshift's credentials files."""
    for f in ("sim-cred", "cred"):
        with open(os.path.join(tmp, f), "w") as fh:
            fh.write("user=Administrator\npassword=%s\n" % PASSWORD)
        os.chmod(os.path.join(tmp, f), 0o600)


def write_conf(tmp, info):
    """A vmshift.conf with backend hv on the simulator's HV01 and HV02."""
    conf = os.path.join(tmp, "vmshift.conf")
    with open(conf, "w") as fh:
        fh.write("[vmshift]\nstate-dir=%s\n\n[backend hv]\nplugin=hyperv\n"
                 "credentials=%s\nhosts=%s;%s\nauth=basic\n"
                 "allow-unencrypted=true\ntimeout=20\n" %
                 (os.path.join(tmp, "state"), os.path.join(tmp, "cred"),
                  info["hosts"]["HV01"], info["hosts"]["HV02"]))
    os.chmod(conf, 0o644)
    return conf


def stop_all(tmp):
    """Stops the simulators and any vmshift left running; removes tmp."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL) if p.args[0] == VMSHIFT \
                    else p.terminate()
                p.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                p.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.path.exists(VMSHIFT) or not os.path.exists(
            os.path.join(PLUGDIR, "hyperv.so")):
        print("1..0 # SKIP host/vmshift or hyperv.so not built")
        return 0
    tmp = tempfile.mkdtemp(prefix="hv-cli-")
    try:
        write_creds(tmp)
        run(tmp)
        run_ntlm(tmp)
    finally:
        stop_all(tmp)
    ok(not any(PASSWORD in o for o in outputs), "no password in any output")
    ok(not any("Sanitizer" in o or "runtime error:" in o for o in outputs),
       "no sanitizer reports (leaks, UB) from any vmshift run")
    print("1..%d" % n)
    return 1 if failed else 0


def run(tmp):
    info = start_sim(tmp)
    V = Cli(write_conf(tmp, info))

    # ---- inventory ------------------------------------------------------
    rc, out, err = V.run("backends")
    ok(rc == 0 and "hv" in out and "hyperv" in out and "ready" in out,
       "backends: hv (hyperv) ready", out + err)
    rc, js, out = V.json("hosts")
    hosts = {h["name"]: h for h in (js or {}).get("hosts", [])}
    ok(rc == 0 and set(hosts) == {"HV01", "HV02"},
       "hosts --json: HV01 and HV02", out)
    st = control(info, "/state")["hosts"]
    h1, s1 = hosts.get("HV01", {}), st["HV01"]
    ok(h1.get("cpu_count") == s1["cpus"] and
       h1.get("memory_total") == s1["memory_total"] and
       h1.get("memory_free") == s1["memory_free"] and
       h1.get("cpu_usage_percent") == s1["cpu_load"] and
       h1.get("cpu_model") == s1["cpu_model"] and
       "10.0.20348" in (h1.get("hypervisor") or "") and
       h1.get("status") in ("ok", "OK"),
       "hosts --json: CPUs, CPU use, memory, model, version of HV01", out)
    rc, out, err = V.run("hosts")
    ok(rc == 0 and "HV01" in out and "256" in out and " 0 B" not in out,
       "hosts: the table shows real CPUs and memory", out + err)
    rc, js, out = V.json("vms")
    vms = {v["name"]: v for v in (js or {}).get("vms", [])}
    ok(rc == 0 and set(vms) == {"web01", "db01", "csv01", "dmz01", "app02"}
       and vms["web01"]["host"] == "HV01" and vms["app02"]["host"] == "HV02",
       "vms --json: five VMs on their hosts", out)
    w = vms.get("web01", {})
    d = {x["id"]: x for x in w.get("disks", [])}
    ok(w.get("memory") == 2048 << 20 and w.get("vcpus") == 2 and
       vms["db01"]["memory"] == 8192 << 20 and vms["db01"]["vcpus"] == 4,
       "vms: memory and vCPUs from Msvm_MemorySettingData / "
       "Msvm_ProcessorSettingData", out)
    ok(d.get("web01.vhdx", {}).get("capacity") == 40 * GIB and
       d.get("web01.vhdx", {}).get("allocation") == 12 * GIB,
       "vms: VHD virtual size (MaxInternalSize) vs file size", out)
    ok(vms.get("app02", {}).get("snapshot_count") == 1 and
       vms["web01"]["snapshot_count"] == 0,
       "vms: checkpoint count from Snapshot VSSDs", out)

    # ---- checks -----------------------------------------------------------
    rc, out, err = V.run("check", "web01", "--to", "HV02")
    ok(rc != 0 and "disk-unreachable" in out,
       "check web01 --to HV02: local disks refused (exit %d)" % rc, out + err)
    rc, out, err = V.run("check", "csv01", "--to", "HV02")
    ok(rc == 0, "check csv01 --to HV02: OK (shared storage)", out + err)
    # Space on the destination: C:\ is a volume of HV01 (Win32_Volume Name
    # "C:\\"), so a move to C:\VMs\dmz01 is checked against its free space.
    rc, js, out = V.json("migrate-storage", "--dry-run", "dmz01",
                         "--path", "C:\\VMs\\dmz01")
    codes = [f.get("code") for f in (js or {}).get("findings", [])]
    ok(js is not None and js.get("would_run") and
       "space-unknown" not in codes and "no-space" not in codes,
       "migrate-storage --dry-run dmz01 --path C:\\VMs\\dmz01: the volume C:\\ is known", out)
    vols = copy.deepcopy(st["HV01"]["volumes"])
    vols[0]["free"] = 1 << 30          # C:\ with 1 GiB free; dmz01 needs 5
    control(info, "/host", {"host": "HV01", "volumes": vols})
    rc, js, out = V.json("migrate-storage", "--dry-run", "dmz01",
                         "--path", "C:\\VMs\\dmz01\\")
    codes = [f.get("code") for f in (js or {}).get("findings", [])]
    ok(js is not None and not js.get("would_run") and "no-space" in codes
       and "space-unknown" not in codes,
       "dry run with C:\\ nearly full: no-space (trailing backslash)", out)
    control(info, "/host", {"host": "HV01", "volumes": st["HV01"]["volumes"]})
    control(info, "/fault", {"kind": "merge", "vm": "dmz01"})
    rc, out, err = V.run("check", "dmz01", "--to", "HV02", "--path",
                         "E:\\VMs\\dmz01", "--network", "x=LAN")
    ok(rc != 0 and "merge-in-progress" in out and "wait" in out and
       "Merging" in out,
       "check during a merge: error tells the person to wait (exit %d)" % rc,
       out + err)
    rc, out, err = V.run("merge-status", "dmz01")
    ok(rc == 0 and "Merging" in out + err, "merge-status shows the merge",
       out + err)
    rc, out, err = V.run("migrate-storage", "dmz01", "--path",
                         "C:\\VMs\\dmz01")
    h, v, _, _ = vm_state(info, "dmz01")
    ok(rc != 0 and "wait" in out + err and
       v["disks"][0]["path"] == "D:\\VMs\\dmz01\\dmz01.vhdx",
       "migrate during a merge refused, nothing moved (exit %d)" % rc,
       out + err)
    control(info, "/clear", {})
    rc, js, out = V.json("merge-status", "dmz01")
    ok(rc == 0 and js is not None and "Merging" not in out,
       "merge-status after the merge ended", out)

    # ---- live migration -----------------------------------------------------
    rc, out, err = V.run("migrate", "csv01", "--to", "HV02")
    h, v, _, cnt = vm_state(info, "csv01")
    ok(rc == 0 and h == "HV02" and cnt == 1,
       "migrate csv01 --to HV02 (live): simulator has it on HV02 only",
       out + err)
    j = V.last_job("csv01") or {}
    ok(j.get("state") == "succeeded" and
       (j.get("location") or {}).get("host") == "HV02" and
       j.get("results", {}).get("hyperv-job"),
       "jobs --json: succeeded, VM is on HV02, Hyper-V job recorded", j)
    rc, out, err = V.run("job", "show", str(j.get("id")))
    ok(rc == 0 and "HV02" in out and "succeeded" in out,
       "job show ID", out + err)

    # ---- storage migration ---------------------------------------------------
    rc, out, err = V.run("migrate-storage", "db01", "--path", "C:\\VMs\\db01")
    h, v, s, cnt = vm_state(info, "db01")
    guid = v["guid"] if v else ""
    newp = "C:\\VMs\\db01\\db01.vhdx"
    ok(rc == 0 and h == "HV01" and cnt == 1 and v["disks"][0]["path"] == newp
       and v["config_root"] == "C:\\VMs\\db01",
       "migrate-storage db01 --path C:\\VMs\\db01: VHD and config moved",
       out + err)
    ok("space-unknown" not in out + err,
       "migrate-storage db01: free space of C:\\ was checked", out + err)
    ok(acl_ok(s, "HV01", newp, guid) and
       not any(f["path"] == "D:\\VMs\\db01\\db01.vhdx"
               for f in s["hosts"]["HV01"]["files"]),
       "storage move: old file gone, VM account has R/W on the new one")

    # ---- VM + storage, with files arriving without the VM's ACE -------------
    control(info, "/host", {"host": "HV02", "acl_after_move": "inherit"})
    rc, out, err = V.run("migrate", "web01", "--to", "HV02", "--path",
                         "E:\\VMs\\web01")
    h, v, s, cnt = vm_state(info, "web01")
    wguid = v["guid"] if v else ""
    paths = sorted(x["path"] for x in v["disks"]) if v else []
    ok(rc == 0 and h == "HV02" and cnt == 1 and paths ==
       ["E:\\VMs\\web01\\web01-data.vhdx", "E:\\VMs\\web01\\web01.vhdx"],
       "migrate web01 --to HV02 --path E:\\VMs\\web01: VM and VHDs moved",
       out + err)
    ok(all(acl_ok(s, "HV02", p, wguid) for p in paths) and
       acl_ok(s, "HV02", "E:\\VMs\\web01", wguid),
       "VM+storage: ACL entries re-created by vmshift on every VHD and the "
       "configuration folder")
    j = V.last_job("web01") or {}
    ok("acl" in j.get("results", {}), "job result reports the ACL change: %s"
       % j.get("results", {}).get("acl"), j)
    control(info, "/host", {"host": "HV02", "acl_after_move": "hyperv"})

    # ---- acl recreate after tampering ---------------------------------------
    vhd = "E:\\VMs\\web01\\web01.vhdx"
    control(info, "/acl", {"host": "HV02", "path": vhd,
                           "acl": [{"sid": "S-1-1-0", "mask": 0x1F01FF}]})
    rc, out, err = V.run("acl", "recreate", "web01")
    _, _, s, _ = vm_state(info, "web01")
    ok(rc == 0 and acl_ok(s, "HV02", vhd, wguid),
       "acl recreate web01: VM account's entry restored", out + err)

    # ---- a failed job ------------------------------------------------------------
    control(info, "/fault", {"kind": "job-fail", "at": 40, "host": "HV01"})
    rc, out, err = V.run("migrate-storage", "dmz01", "--path",
                         "C:\\VMs\\dmz01")
    h, v, _, cnt = vm_state(info, "dmz01")
    j = V.last_job("dmz01") or {}
    ok(rc != 0 and h == "HV01" and cnt == 1 and
       v["disks"][0]["path"] == "D:\\VMs\\dmz01\\dmz01.vhdx",
       "job failing at 40%%: vmshift exits %d, VM and disk where they were"
       % rc, out + err)
    emsg = (j.get("error") or {}).get("message") or ""
    ok(j.get("state") == "failed" and "0x800706BE" in emsg and
       "ErrorCode 32768" in emsg and "\n" not in emsg and
       (j.get("location") or {}).get("host") == "HV01",
       "failed job: Hyper-V's error in the journal, location HV01", j)
    rc, out, err = V.run("job", "show", str(j.get("id")))
    ok("failed" in out and "VM is on:  HV01" in out and "0x800706BE" in out,
       "job show of the failed job: state, Hyper-V error, VM is on HV01",
       out + err)

    # ---- job cancel from another process -------------------------------------
    control(info, "/fault", {"kind": "slow-job", "seconds": 60,
                             "host": "HV01"})
    p = V.bg("migrate-storage", "dmz01", "--path", "C:\\VMs\\dmz01")
    j = wait_for(lambda: V.saved_job("dmz01"))
    if ok(j is not None, "slow job running with its Hyper-V job recorded"):
        rc, out, err = V.run("job", "cancel", str(j["id"]))
        try:
            prc = p.wait(60)
        except subprocess.TimeoutExpired:
            prc = None
        jj = V.job(j["id"])
        h, v, s, cnt = vm_state(info, "dmz01")
        hj = [x for x in s["jobs"] if x.get("vm") == v["guid"]][-1:]
        ok(rc == 0 and prc not in (0, None) and jj.get("state") == "cancelled"
           and hj and hj[0]["state"] == 9 and cnt == 1 and
           v["disks"][0]["path"] == "D:\\VMs\\dmz01\\dmz01.vhdx",
           "job cancel: migrate exits %s, job cancelled, Hyper-V job killed, "
           "disk stays" % prc, out + err + json.dumps(jj))
    else:
        ok(False, "job cancel")

    # ---- kill -9 mid-transfer, then job repair: rolled back --------------------
    def kill_mid_transfer(vm, args, seconds):
        control(info, "/fault", {"kind": "slow-job", "seconds": seconds})
        p = V.bg(*args)
        j = wait_for(lambda: V.saved_job(vm, "transfer"))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
        return j

    j = kill_mid_transfer("dmz01", ["migrate-storage", "dmz01", "--path",
                                    "C:\\VMs\\dmz01"], 60)
    if ok(j is not None, "kill -9 of vmshift migrate-storage mid-transfer"):
        jj = V.last_job("dmz01")
        ok(jj["state"] == "interrupted" and jj["phase"] == "transfer",
           "jobs: the killed job is interrupted in phase transfer", jj)
        rc, rep, out = V.json("job", "repair", str(j["id"]))
        jj = V.job(j["id"])
        h, v, s, cnt = vm_state(info, "dmz01")
        hj = [x for x in s["jobs"] if x.get("vm") == v["guid"]][-1:]
        ok(rc == 0 and jj.get("results", {}).get("repair") == "rolled-back"
           and (jj.get("location") or {}).get("host") == "HV01",
           "job repair: rolled-back, job says the VM is on HV01", out)
        ok(cnt == 1 and h == "HV01" and
           v["disks"][0]["path"] == "D:\\VMs\\dmz01\\dmz01.vhdx" and
           hj and hj[0]["state"] == 9 and not hj[0]["running"],
           "simulator: Hyper-V job stopped, dmz01 in exactly one place with "
           "its disk at the source", s["jobs"])
    else:
        ok(False, "interrupted")
        ok(False, "repair")
        ok(False, "simulator after repair")

    # ---- kill -9, Hyper-V finishes on its own, then job repair: resumed --------
    control(info, "/host", {"host": "HV01", "acl_after_move": "inherit"})
    j = kill_mid_transfer("app02", ["migrate", "app02", "--to", "HV01",
                                    "--path", "D:\\VMs\\app02"], 4)
    if ok(j is not None, "kill -9 of vmshift migrate (VM+storage)"):
        wait_for(lambda: not [x for x in control(info, "/state")["jobs"]
                              if x.get("running")], 30)
        rc, rep, out = V.json("job", "repair", str(j["id"]))
        jj = V.job(j["id"])
        h, v, s, cnt = vm_state(info, "app02")
        ok(rc == 0 and jj.get("results", {}).get("repair") == "resumed" and
           (jj.get("location") or {}).get("host") == "HV01" and
           cnt == 1 and h == "HV01" and
           v["disks"][0]["path"] == "D:\\VMs\\app02\\app02.vhdx",
           "job repair after Hyper-V completed: resumed, VM on HV01 only",
           out + json.dumps(jj))
        ok(acl_ok(s, "HV01", "D:\\VMs\\app02\\app02.vhdx", v["guid"]),
           "repair re-created the ACL of the moved VHD")
    else:
        ok(False, "resumed")
        ok(False, "acl after resume")
    control(info, "/host", {"host": "HV01", "acl_after_move": "hyperv"})


def run_ntlm(tmp):
    """vmshift with auth=ntlm against hosts as WinRM's default configuration
    leaves them (Basic off; Negotiate, i.e. NTLM or Kerberos, on)."""
    info = start_sim(tmp, ["--auth", "negotiate,kerberos"], tag="ntlm")

    def conf_for(name, cred, auth):
        path = os.path.join(tmp, name)
        with open(path, "w") as fh:
            fh.write("[vmshift]\nstate-dir=%s\n\n[backend hv]\n"
                     "plugin=hyperv\ncredentials=%s\nhosts=%s;%s\nauth=%s\n"
                     "allow-unencrypted=true\ntimeout=20\n" %
                     (os.path.join(tmp, "nstate"), os.path.join(tmp, cred),
                      info["hosts"]["HV01"], info["hosts"]["HV02"], auth))
        return path
    N = Cli(conf_for("ntlm.conf", "cred", "ntlm"))
    rc, js, out = N.json("hosts")
    ok(rc == 0 and {h["name"] for h in (js or {}).get("hosts", [])} ==
       {"HV01", "HV02"}, "auth=ntlm: vmshift hosts (Basic off on the hosts)",
       out)
    rc, js, out = N.json("vms")
    ok(rc == 0 and len((js or {}).get("vms", [])) == 5,
       "auth=ntlm: vmshift vms", out)
    control(info, "/fault", {"kind": "close", "count": 4})
    rc, out, err = N.run("migrate", "csv01", "--to", "HV02")
    h, v, _, cnt = vm_state(info, "csv01")
    ev = control(info, "/state")["auth"]
    ok(rc == 0 and h == "HV02" and cnt == 1 and
       not [e for e in ev if e["ok"] is False],
       "auth=ntlm: vmshift migrate csv01 --to HV02, with the server closing "
       "connections between requests (re-authenticated)", out + err)
    control(info, "/clear", {})

    with open(os.path.join(tmp, "ncred-bad"), "w") as fh:
        fh.write("user=Administrator\npassword=Not-%s\n" % PASSWORD)
    os.chmod(os.path.join(tmp, "ncred-bad"), 0o600)
    B = Cli(conf_for("ntlm-bad.conf", "ncred-bad", "ntlm"))
    rc, out, err = B.run("vms")
    lines = [l for l in err.splitlines() if "NTLM" in l]
    ok(rc != 0 and len(lines) >= 1 and
       all("NTLM authentication refused" in l for l in lines) and
       "Not-" not in out + err,
       "auth=ntlm, wrong password: non-zero exit, one-line NTLM error per "
       "host, password not shown (exit %d)" % rc, out + err)
    P = Cli(conf_for("ntlm-basic.conf", "cred", "basic"))
    rc, out, err = P.run("vms")
    ok(rc != 0 and "auth=ntlm" in err and "Negotiate" in err,
       "auth=basic against hosts with Basic off: the error says they want "
       "Negotiate (NTLM)", out + err)


if __name__ == "__main__":
    sys.exit(main())
