#!/usr/bin/env python3
"""The claims suite's Hyper-V rows (tests/claims/run.sh passes the claim
ids, '-' as '_', with '_unsupported' for a row the backend must refuse):
each runs through `vmshift` against the Hyper-V simulator and is checked in
the simulator's own /state.  Setup helpers come from tests/hyperv/test-cli.py.
Prints "ok - ..." / "not ok - ..." lines, numbered by run.sh."""

import importlib.util
import os
import sys
import tempfile

SRC = os.environ.get("VMSHIFT_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
_spec = importlib.util.spec_from_file_location(
    "hv_test_cli", os.path.join(SRC, "tests", "hyperv", "test-cli.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)
control, vm_state = T.control, T.vm_state


def ok(cond, what, diag=None):
    print("%s - hyperv %s" % ("ok" if cond else "not ok", what), flush=True)
    if not cond and diag:
        for line in str(diag).splitlines()[-10:]:
            print("# " + line)


def other(h):
    return "HV02" if h == "HV01" else "HV01"


def move_host(V, info):
    src, _, _, _ = vm_state(info, "csv01")
    rc, out, err = V.run("migrate", "csv01", "--to", other(src))
    h, v, _, cnt = vm_state(info, "csv01")
    ok(rc == 0 and h == other(src) and cnt == 1 and v["enabled_state"] == 2,
       "move-host: migrate csv01 --to %s: the simulator has it there, "
       "running, once" % other(src), out + err)


def verified(V, info):
    """A host that reports success without applying the NIC mapping fails
    the job; a complete move lists what was verified in `job show`."""
    rc, js, out = V.json("vms")
    nic = [v for v in (js or {}).get("vms", [])
           if v["name"] == "dmz01"][0]["nics"][0]["id"]
    src, _, _, _ = vm_state(info, "dmz01")
    control(info, "/fault", {"kind": "not-applied", "what": "nics",
                             "host": src})
    rc, out, err = V.run("migrate", "dmz01", "--to", other(src), "--path",
                         "E:\\VMs\\dmz01", "--network", nic + "=LAN")
    h, v, _, cnt = vm_state(info, "dmz01")
    control(info, "/clear", {})
    ok(rc != 0 and "did not apply it all" in err and "'LAN'" in err and
       cnt == 1 and v["nics"][0]["switch"] != "LAN",
       "verified: the simulator completes the move without the NIC "
       "mapping: the job fails naming it (exit %d)" % rc, out + err)
    src, _, _, _ = vm_state(info, "csv01")
    rc, out, err = V.run("migrate", "csv01", "--to", other(src))
    j = V.job((V.last_job("csv01") or {}).get("id"))
    res = {r.get("key"): r.get("value") for r in j.get("results", [])} \
        if isinstance(j.get("results"), list) else (j.get("results") or {})
    h, _, _, _ = vm_state(info, "csv01")
    ok(rc == 0 and h == other(src) and
       res.get("verified") == "host,power,disks,nics",
       "verified: job show lists verified=host,power,disks,nics; csv01 on "
       "%s in the simulator" % other(src), json_dump(j) + out + err)


def json_dump(x):
    import json
    return json.dumps(x)[:600]


def cold_start(V, info):
    src, _, _, _ = vm_state(info, "csv01")
    control(info, "/vm", {"vm": "csv01", "enabled_state": 3})
    rc, out, err = V.run("migrate", "csv01", "--cold", "--to", other(src),
                         "--start")
    h, v, _, cnt = vm_state(info, "csv01")
    ok(rc == 0 and h == other(src) and cnt == 1 and v["enabled_state"] == 2,
       "cold-start: stopped csv01, migrate --cold --start: on %s and "
       "running in the simulator" % other(src), out + err)


def refused(V, info, what, args, needle):
    src, _, _, _ = vm_state(info, "csv01")
    rc, out, err = V.run("migrate", "csv01", "--to", other(src), *args)
    h, _, _, cnt = vm_state(info, "csv01")
    ok(rc != 0 and needle in out + err and h == src and cnt == 1,
       "%s: refused (%s); csv01 still on %s in the simulator" %
       (what, needle, src), out + err)


def option_unknown(V, info):
    refused(V, info, "option-unknown", ["--option", "bogus-key=1"],
            "unknown migration option 'bogus-key'")


def transfer_san_path(V, info):
    refused(V, info, "transfer-san-path",
            ["--transfer", "san", "--path", "E:\\VMs\\csv01"],
            "--transfer san keeps the VHDs of csv01 where they are")


def dry_run(V, info):
    src, _, s0, _ = vm_state(info, "csv01")
    n0 = len(s0["requests"])
    rc, out, err = V.run("migrate", "csv01", "--to", other(src), "--dry-run")
    h, _, s, cnt = vm_state(info, "csv01")
    moves = [r for r in s["requests"][n0:]
             if (r.get("action") or "").endswith("MigrateVirtualSystemToHost")]
    ok(rc == 0 and "vmshift migrate" in out and h == src and cnt == 1 and
       not moves,
       "dry-run: prints the plan; the simulator got no migration call and "
       "has csv01 on %s" % src, out + err)


def check_stops(V, info):
    src, _, _, _ = vm_state(info, "csv01")
    rc, out, err = V.run("migrate", "csv01", "--cold", "--to", other(src))
    h, v, _, cnt = vm_state(info, "csv01")
    ok(rc != 0 and "error" in out + err and h == src and cnt == 1 and
       v["enabled_state"] == 2,
       "check-stops: --cold on running csv01: check's error stops migrate; "
       "csv01 still on %s, running" % src, out + err)


def guest_ip_unsupported(V, info):
    """--ip needs the plugin's guest customization, which Hyper-V's plugin
    does not have: one line, the VM untouched."""
    src, _, _, _ = vm_state(info, "csv01")
    rc, out, err = V.run("migrate", "csv01", "--to", other(src), "--cold",
                         "--ip", "Network Adapter=192.0.2.10/24")
    h, _, _, cnt = vm_state(info, "csv01")
    lines = (out + err).strip().splitlines()
    ok(rc != 0 and len(lines) == 1 and lines[0].endswith("does not support --ip")
       and h == src and cnt == 1,
       "guest-ip: --ip refused in one line ('backend ... does not support --ip'); "
       "csv01 still on %s in the simulator" % src, out + err)


def acl_complete(V, info):
    """After a storage move (files arriving without the VM's grant) the
    VM's account is granted on every file it opens: folders, .vmcx, .vmrs,
    the .avhdx and its parent .vhdx, and the simulator starts the VM."""
    A = acl_helpers()
    control(info, "/host", {"host": "HV01", "acl_after_move": "inherit"})
    rc, out, err = V.run("migrate-storage", A.DIF, "--path",
                         "C:\\VMs\\dif01")
    h, v, s, cnt = vm_state(info, A.DIF)
    miss = A.missing_grants(s, "HV01", v) if v else ["?"]
    state, why = A.start_vm(info, "HV01", A.DIF_GUID)
    _, v2, _, _ = vm_state(info, A.DIF)
    control(info, "/host", {"host": "HV01", "acl_after_move": "hyperv"})
    ok(rc == 0 and h == "HV01" and cnt == 1 and not miss and
       len(A.vm_files(v)) == 6 and state == 7 and v2["enabled_state"] == 2,
       "acl-complete: migrate-storage dif01: the VM account is granted on "
       "its 6 files and folders (.vmrs, parent .vhdx and the Virtual Machines folder included) and the simulator "
       "starts it (missing %s; start: %s %s)" % (miss, state, why),
       out + err)


def acl_helpers():
    spec = importlib.util.spec_from_file_location(
        "hv_test_cli_acl", os.path.join(SRC, "tests", "hyperv",
                                        "test-cli-acl.py"))
    A = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(A)
    return A


def main():
    if not os.path.exists(T.VMSHIFT) or not os.path.exists(
            os.path.join(T.PLUGDIR, "hyperv.so")):
        print("SKIP host/vmshift or hyperv.so not built")
        return 0
    tests = {f.__name__: f for f in (move_host, verified, cold_start, option_unknown,
                                     transfer_san_path, dry_run, check_stops,
                                     acl_complete, guest_ip_unsupported)}
    tmp = tempfile.mkdtemp(prefix="claims-hv-")
    try:
        T.write_creds(tmp)
        # the built-in world plus dif01 (a differencing chain), as
        # tests/hyperv/test-cli-acl.py builds it
        info = T.start_sim(tmp, ["--state", acl_helpers().world(tmp)])
        V = T.Cli(T.write_conf(tmp, info))
        for name in sys.argv[1:]:
            if name in tests:
                tests[name](V, info)
            else:
                ok(False, "%s: no test of this claim in tests/claims/hyperv.py"
                   % name)
    finally:
        T.stop_all(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
