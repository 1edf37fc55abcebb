#!/usr/bin/env python3
"""The acl phase after a host-only move and `acl recreate` from the VM's
last move, through the `vmshift` command against the Hyper-V simulator
(tests/hyperv-sim), checked in the simulator's own ACL state (issue 12:
"the acl phase runs after every host or storage move on every backend";
"acl recreate uses the ACL data saved by the last move of the VM"), and
that the ACLs are complete (issue 13): after `migrate-storage` of a VM with
a differencing disk, and after `acl recreate`, the VM's account is granted
on the configuration folder, the .vmcx, the .vmrs, the .avhdx and its
parent .vhdx, and the VM starts (the simulator refuses to start a VM that
lacks any of them: "does not have the required security settings",
0x80070005).  Helpers come from test-cli.py.  Prints TAP."""

import importlib.util
import json
import os
import sys
import tempfile

_spec = importlib.util.spec_from_file_location(
    "hv_test_cli", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "test-cli.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)
ok, control, vm_state, Cli = T.ok, T.control, T.vm_state, T.Cli
_spec = importlib.util.spec_from_file_location(
    "hv_sim_selftest", os.path.join(T.SRC, "tests", "hyperv-sim",
                                    "test-sim.py"))
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)
_spec = importlib.util.spec_from_file_location("hv_sim", T.SIM)
SIM = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SIM)

DIF = "dif01"
DIF_GUID = "1D3C5B1E-7A2B-4C1D-9E0F-000000000105"
CS = W.V2 + "Msvm_ComputerSystem"


def world(tmp):
    """The simulator's built-in world plus dif01 on HV01: off, running from
    a checkpoint, so its disk is an .avhdx whose parent is dif01.vhdx."""
    st = SIM.default_state()
    gib = 1 << 30
    root = "D:\\VMs\\dif01"
    st["hosts"]["HV01"]["vms"].append(dict(
        name=DIF, guid=DIF_GUID, enabled_state=3, operational_status=[2],
        config_root=root, memory_mb=2048, cpus=2, version="9.0",
        disks=[dict(id="8E1F0C2A-3B4D-4E5F-8A9B-0C1D2E3F0105",
                    path=root + "\\dif01_8E1F0C2A.avhdx", size=1 * gib,
                    capacity=40 * gib,
                    parents=[dict(path=root + "\\dif01.vhdx",
                                  size=9 * gib)])],
        nics=[dict(id="9A2B1C3D-4E5F-4061-8A9B-0C1D2E3F0105",
                   name="Network Adapter", mac="00155D000105",
                   switch="LAN")],
        snapshots=[dict(id="7A1E0C2A-3B4D-4E5F-8A9B-0C1D2E3F0105",
                        name="dif01 - before update",
                        created="2025-12-21T08:30:00.000000Z")]))
    path = os.path.join(tmp, "world.json")
    with open(path, "w") as fh:
        json.dump(st, fh)
    return path


def start_vm(info, host, guid):
    """Starts the VM as an administrator would (Start-VM: RequestStateChange
    2 over WS-Man, Basic) and follows the job; (JobState, error text)."""
    c = W.Client(info["hosts"][host], "Administrator", T.PASSWORD)
    st, doc = c.call(CS + "/RequestStateChange", CS,
                     '<p:RequestStateChange_INPUT xmlns:p="%s">'
                     '<p:RequestedState>2</p:RequestedState>'
                     '</p:RequestStateChange_INPUT>' % CS,
                     {"CreationClassName": "Msvm_ComputerSystem",
                      "Name": guid})
    if st != 200:
        return None, "HTTP %d" % st
    state, inst, _ = W.wait_job(c, doc)
    return state, (W.prop(inst, "ErrorDescription") or "") if inst is not \
        None else ""


def vm_files(v):
    """The files the VM's account must be granted on, from the
    simulator's VM record."""
    root = v["config_root"]
    out = [root, root + "\\Virtual Machines",
           root + "\\Virtual Machines\\%s.vmcx" % v["guid"],
           root + "\\Virtual Machines\\%s.vmrs" % v["guid"]]
    for d in v["disks"]:
        out.append(d["path"])
        out += [x["path"] for x in d.get("parents", [])]
    return out


def missing_grants(s, host, v):
    return [p for p in vm_files(v) if not T.acl_ok(s, host, p, v["guid"])]


def chain_acls(V, info):
    # Files Hyper-V moves arrive without the VM's grant (copied outside
    # Hyper-V): the acl phase must put every one back.
    control(info, "/host", {"host": "HV01", "acl_after_move": "inherit"})
    rc, out, err = V.run("migrate-storage", DIF, "--path", "C:\\VMs\\dif01")
    h, v, s, cnt = vm_state(info, DIF)
    files = vm_files(v) if v else []
    ok(rc == 0 and h == "HV01" and cnt == 1 and
       v["config_root"] == "C:\\VMs\\dif01" and
       [x["path"] for x in v["disks"][0]["parents"]] ==
       ["C:\\VMs\\dif01\\dif01.vhdx"],
       "migrate-storage dif01: the .avhdx and its parent .vhdx moved to "
       "C:\\VMs\\dif01 (simulator)", out + err)
    miss = missing_grants(s, "HV01", v) if v else ["?"]
    ok(v is not None and not miss and len(files) == 6,
       "after migrate-storage the VM account is granted on the folders, "
       ".vmcx, .vmrs, .avhdx and parent .vhdx (missing: %s)" % miss,
       out + err)
    j = V.last_job(DIF) or {}
    acl = (j.get("results") or {}).get("acl", "")
    ok(" 6 of 6 files and folders updated" in acl,
       "the acl phase reports 6 of 6 updated (%s)" % acl, json.dumps(j))
    state, why = start_vm(info, "HV01", DIF_GUID)
    _, v, _, _ = vm_state(info, DIF)
    ok(state == 7 and v["enabled_state"] == 2,
       "dif01 starts after migrate-storage (job state %s %s)" % (state, why))

    # The grant removed from the .vmrs and the parent: the host refuses to
    # start it, `acl recreate` puts both back and says 2 of 6.
    control(info, "/vm", {"vm": DIF, "enabled_state": 3})
    for p in (files[2], files[4]):
        control(info, "/acl", {"host": "HV01", "path": p, "acl": [
            {"sid": "S-1-5-32-544", "mask": 0x1F01FF}]})
    state, why = start_vm(info, "HV01", DIF_GUID)
    ok(state == 10 and "does not have the required security settings" in why
       and "0x80070005" in why and files[2] in why,
       "without the .vmrs grant the simulator refuses to start dif01: %s"
       % why)
    rc, out, err = V.run("acl", "recreate", DIF)
    _, v, s, _ = vm_state(info, DIF)
    miss = missing_grants(s, "HV01", v)
    ok(rc == 0 and not miss and "2 of 6 files and folders updated" in
       out + err,
       "acl recreate dif01: .vmrs and parent .vhdx granted again, reports "
       "2 of 6 (missing: %s)" % miss, out + err)
    state, why = start_vm(info, "HV01", DIF_GUID)
    _, v, _, _ = vm_state(info, DIF)
    ok(state == 7 and v["enabled_state"] == 2,
       "dif01 starts after acl recreate (job state %s %s)" % (state, why))
    control(info, "/host", {"host": "HV01", "acl_after_move": "hyperv"})


def holders(s, path):
    """The simulated hosts whose file lists hold @path (a cluster shared
    volume is seen by each of its hosts)."""
    return [h for h, hs in s["hosts"].items()
            if any(f["path"] == path for f in hs["files"])]


def host_move_then_recreate(V, info):
    src, v, _, _ = vm_state(info, "csv01")
    dst = "HV02" if src == "HV01" else "HV01"
    rc, out, err = V.run("migrate", "csv01", "--to", dst)
    h, v, s, cnt = vm_state(info, "csv01")
    j = V.last_job("csv01") or {}
    rc2, show, err2 = V.json("job", "show", str(j.get("id")))
    phases = [e.get("value") for e in
              (show or {}).get("events", []) if e.get("kind") == "phase"]
    ok(rc == 0 and h == dst and cnt == 1 and "acl" in phases and
       "acl" in j.get("results", {}),
       "host-only move of csv01 to %s (simulator): the acl phase ran (%s)"
       % (dst, j.get("results", {}).get("acl")), out + err + err2)
    guid = v["guid"] if v else ""
    vhd = v["disks"][0]["path"] if v and v["disks"] else ""
    fh = holders(s, vhd)
    ok(dst in fh and T.acl_ok(s, dst, vhd, guid),
       "after the move the VM account has its entry on %s" % vhd)
    # the VM's entry is removed, after the move, as every host sees the file
    for x in fh:
        control(info, "/acl", {"host": x, "path": vhd,
                               "acl": [{"sid": "S-1-1-0", "mask": 0x1F01FF}]})
    _, _, s, _ = vm_state(info, "csv01")
    ok(not any(T.acl_ok(s, x, vhd, guid) for x in fh),
       "tampered: the VM's entry is gone")
    rc, out, err = V.run("acl", "recreate", "csv01")
    _, _, s, _ = vm_state(info, "csv01")
    ok(rc == 0 and T.acl_ok(s, dst, vhd, guid),
       "acl recreate csv01: the VM account's entry is back (simulator)",
       out + err)
    ok("the last move of 'csv01'" in err and
       ("saved by job %s" % j.get("id")) in err,
       "acl recreate says it re-applies the data of job %s, the last move"
       % j.get("id"), out + err)


def main():
    if not os.path.exists(T.VMSHIFT) or not os.path.exists(
            os.path.join(T.PLUGDIR, "hyperv.so")):
        print("1..0 # SKIP host/vmshift or hyperv.so not built")
        return 0
    tmp = tempfile.mkdtemp(prefix="hv-acl-")
    try:
        T.write_creds(tmp)
        info = T.start_sim(tmp, ["--state", world(tmp)])
        V = Cli(T.write_conf(tmp, info))
        host_move_then_recreate(V, info)
        chain_acls(V, info)
    finally:
        T.stop_all(tmp)
    ok(not any(T.PASSWORD in o for o in T.outputs),
       "no password in any output")
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
