#!/usr/bin/env python3
"""The acl phase after a host-only move and `acl recreate` from the VM's
last move, through the `vmshift` command against the Hyper-V simulator
(tests/hyperv-sim), checked in the simulator's own ACL state (issue 12:
"the acl phase runs after every host or storage move on every backend";
"acl recreate uses the ACL data saved by the last move of the VM").
Helpers come from test-cli.py.  Prints TAP."""

import importlib.util
import os
import sys
import tempfile

_spec = importlib.util.spec_from_file_location(
    "hv_test_cli", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "test-cli.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)
ok, control, vm_state, Cli = T.ok, T.control, T.vm_state, T.Cli


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
        info = T.start_sim(tmp)
        V = Cli(T.write_conf(tmp, info))
        host_move_then_recreate(V, info)
    finally:
        T.stop_all(tmp)
    ok(not any(T.PASSWORD in o for o in T.outputs),
       "no password in any output")
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
