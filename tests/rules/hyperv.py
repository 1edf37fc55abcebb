#!/usr/bin/env python3
"""Finding codes on the hyperv plugin against the Hyper-V simulator
(tests/hyperv-sim), through the vmshift command (TAP): each scenario sets
the simulator up through its control channel (power, operational status, a
merge, free memory, free space, the migration service), runs `vmshift --json check` and `vmshift migrate --dry-run`,
and asserts the code, its severity, that it appears exactly once, and both
exit statuses; a second configuration adds a host that does not answer and
HV02 again as another backend (for rate's other-backend); then `rate` and
`check` agree on both hosts, and the
simulator's state shows nothing moved. One simulator for all of it; the
helpers are tests/hyperv/test-cli.py's."""

import copy
import importlib.util
import json
import os
import sys
import tempfile

SRC = os.environ.get("VMSHIFT_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
spec = importlib.util.spec_from_file_location(
    "hv_cli", os.path.join(SRC, "tests", "hyperv", "test-cli.py"))
hv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hv)
ok, control = hv.ok, hv.control
GIB = 1 << 30


def count(js, code):
    c = [f for f in (js or {}).get("findings", []) if f.get("code") == code]
    return len(c), ",".join(sorted({f["severity"] for f in c}))


def scenario(V, name, code, sev, want, *args):
    rc, js, out = V.json("check", *args)
    drc, _, dout = V.run("migrate", *args, "--dry-run")
    got = count(js, code)
    ok(got == (1, sev) and rc == want and drc == want,
       "%s: %s (%s) once, check and --dry-run exit %d" % (name, code, sev, want),
       "%s\ngot %s, check rc %d, dry-run rc %d, findings %s"
       % (out[-1500:], got, rc, drc,
          [(f["code"], f["severity"]) for f in (js or {}).get("findings", [])]))


def run(tmp):
    info = hv.start_sim(tmp)
    conf = hv.write_conf(tmp, info)
    with open(conf, "a") as fh:
        fh.write("\n[group both]\nhosts=hv:HV01;hv:HV02\n")
    V = hv.Cli(conf)
    st = control(info, "/state")["hosts"]

    rc, js, out = V.json("check", "csv01", "--to", "HV02")
    ok(rc == 0 and js is not None and js["errors"] == 0 and js["warnings"] == 0,
       "clean move csv01 -> HV02 (CSV storage): no error or warning, exit 0", out)
    scenario(V, "VM already there", "same-host", "error", 1, "csv01", "--to", "HV01")
    scenario(V, "cold move of a running VM", "running", "error", 1, "csv01", "--to", "HV02",
             "--cold")
    control(info, "/vm", {"vm": "csv01", "enabled_state": 3})
    scenario(V, "live move of a stopped VM", "not-running", "error", 1, "csv01", "--to",
             "HV02", "--live")
    control(info, "/vm", {"vm": "csv01", "enabled_state": 2})
    control(info, "/fault", {"kind": "merge", "vm": "csv01"})
    scenario(V, "a checkpoint merge running", "merge-in-progress", "error", 1, "csv01",
             "--to", "HV02")
    control(info, "/clear", {})
    control(info, "/host", {"host": "HV02", "memory_free": 1 * GIB})
    scenario(V, "1 GiB free for a 2 GiB VM", "no-memory", "error", 1, "csv01", "--to", "HV02")
    control(info, "/host", {"host": "HV02", "memory_free": st["HV02"]["memory_free"]})
    scenario(V, "the VM's switch (DMZ) missing on the host", "network-missing", "error", 1,
             "dmz01", "--to", "HV02", "--path", "E:\\VMs\\dmz01")
    scenario(V, "a local disk the destination does not reach", "disk-unreachable", "error", 1,
             "dmz01", "--to", "HV02")
    scenario(V, "--transfer san with disks on a local volume", "storage-not-shared", "error",
             1, "web01", "--to", "HV02", "--transfer", "san")
    vols = copy.deepcopy(st["HV02"]["volumes"])
    vols[1]["free"] = 1 * GIB          # E:\ with 1 GiB free; web01 needs 15
    control(info, "/host", {"host": "HV02", "volumes": vols})
    scenario(V, "E:\\ nearly full", "no-space", "error", 1, "web01", "--to", "HV02",
             "--path", "E:\\VMs\\web01")
    control(info, "/host", {"host": "HV02", "volumes": st["HV02"]["volumes"]})
    scenario(V, "no such NIC", "nic-not-found", "error", 1, "csv01", "--to", "HV02",
             "--network", "nosuch=LAN")
    scenario(V, "no such disk", "disk-not-found", "error", 1, "csv01", "--to", "HV02",
             "--disk-path", "nosuch=E:\\VMs")

    scenario(V, "--transfer network without --path", "transfer-conflict", "error", 1, "csv01",
             "--to", "HV02", "--transfer", "network")
    scenario(V, "--path on a drive HV02 lacks (dmz01: one disk)", "path-not-found", "error", 1,
             "dmz01", "--to", "HV02", "--path", "Q:\\VMs\\dmz01")
    scenario(V, "an --option (this backend has none)", "check-failed", "error", 1, "csv01",
             "--to", "HV02", "--option", "x=1")
    control(info, "/vm", {"vm": "csv01", "operational_status": [2, 32768]})
    scenario(V, "a checkpoint being created", "vm-busy", "error", 1, "csv01", "--to", "HV02")
    control(info, "/vm", {"vm": "csv01", "operational_status": [2]})
    control(info, "/vm", {"vm": "csv01", "enabled_state": 5})
    scenario(V, "a state Hyper-V cannot migrate from", "vm-state", "error", 1, "csv01", "--to",
             "HV02")
    control(info, "/vm", {"vm": "csv01", "enabled_state": 2})
    control(info, "/host", {"host": "HV02", "migration": {"enabled": False}})
    scenario(V, "live migration disabled on HV02", "migration-disabled", "error", 1, "csv01",
             "--to", "HV02")
    # the host's status says "limited" for the same reason: one condition,
    # reported once, by the precise code
    rc, js, out = V.json("check", "csv01", "--to", "HV02")
    ok(count(js, "host-limited")[0] == 0 and count(js, "migration-disabled")[0] == 1,
       "live migration disabled: not also host-limited (one condition, one finding)", out)
    control(info, "/host", {"host": "HV02", "migration": {"enabled": True}})
    ips = st["HV02"]["ips"]
    control(info, "/host", {"host": "HV02", "ips": []})
    scenario(V, "HV02 without a migration network", "no-migration-network", "error", 1,
             "csv01", "--to", "HV02")
    control(info, "/host", {"host": "HV02", "ips": ips})
    control(info, "/host", {"host": "HV02", "migration": {"max_vm": 0}})
    scenario(V, "HV02 at its limit of live migrations", "migration-limit", "warning", 1,
             "csv01", "--to", "HV02")
    control(info, "/host", {"host": "HV02", "migration": {"max_vm": 2}})
    # E:\ with 2.5 % of its capacity left over after web01's 15 GiB
    vols = copy.deepcopy(st["HV02"]["volumes"])
    vols[1]["free"] = 15 * GIB + vols[1]["capacity"] // 40
    control(info, "/host", {"host": "HV02", "volumes": vols})
    scenario(V, "E:\\ nearly full afterwards", "low-space", "warning", 1, "web01", "--to",
             "HV02", "--path", "E:\\VMs\\web01")
    vols[1]["free"] = None
    control(info, "/host", {"host": "HV02", "volumes": vols})
    scenario(V, "E:\\ reports no free space", "space-unknown", "warning", 1, "web01", "--to",
             "HV02", "--path", "E:\\VMs\\web01")
    control(info, "/host", {"host": "HV02", "volumes": st["HV02"]["volumes"]})

    # WMI provider failures, as a real host answers them ("Provider load
    # failure", 0x80041013): what cannot be read is unknown, never 0
    def provider_fails(host, *classes):
        for c in classes:
            control(info, "/fault", {"kind": "soap-fault", "host": host, "match": c,
                                     "count": 1000, "subcode": "w:InternalError",
                                     "reason": "Provider load failure ", "code": 2147749907})
    provider_fails("HV02", "Win32_ComputerSystem", "Win32_OperatingSystem")
    scenario(V, "HV02's memory unreadable", "memory-unknown", "warning", 1, "csv01",
             "--to", "HV02")
    control(info, "/clear", {})
    provider_fails("HV01", "Msvm_AffectedJobElement")
    scenario(V, "csv01's jobs unreadable (a merge cannot be ruled out)", "merge-unknown",
             "warning", 1, "csv01", "--to", "HV02")
    control(info, "/clear", {})
    provider_fails("HV01", "CIM_DataFile", "GetVirtualHardDiskSettingData")
    scenario(V, "dmz01's disk file unreadable (its size unknown, not 0)", "disk-size-unknown",
             "warning", 1, "dmz01", "--to", "HV02", "--path", "E:\\VMs\\dmz01")
    control(info, "/clear", {})

    dmz = [v for v in st["HV01"]["vms"] if v["name"] == "dmz01"][0]
    control(info, "/vm", {"vm": "dmz01", "disks": [
        dict(d, path=d["path"][:-len(".vhdx")] + ".avhdx") for d in dmz["disks"]]})
    scenario(V, "a differencing disk without a checkpoint", "needs-consolidation", "warning", 1,
             "dmz01", "--to", "HV02")
    control(info, "/vm", {"vm": "dmz01", "disks": dmz["disks"]})

    # a host that does not answer, a host of another backend (HV02 again as
    # backend hv2), one no backend has
    conf2 = os.path.join(tmp, "vmshift2.conf")
    with open(conf) as fh:
        text = fh.read()
    base = text[text.index("[backend hv]"):].split("\n\n")[0]
    text = text.replace("hosts=%s;%s" % (info["hosts"]["HV01"], info["hosts"]["HV02"]),
                        "hosts=%s;%s;http://127.0.0.1:9/wsman" % (info["hosts"]["HV01"],
                                                                   info["hosts"]["HV02"]))
    text += "\n" + base.replace("[backend hv]", "[backend hv2]").replace(
        "hosts=%s;%s" % (info["hosts"]["HV01"], info["hosts"]["HV02"]),
        "hosts=%s" % info["hosts"]["HV02"]) + "\n"
    text += "\n[group mixed]\nhosts=hv:HV01;hv:NOSUCH;hv2:HV02\n"
    with open(conf2, "w") as fh:
        fh.write(text)
    os.chmod(conf2, 0o644)
    V2 = hv.Cli(conf2)
    scenario(V2, "a host that does not answer", "host-unreachable", "error", 1, "csv01",
             "--to", "hv:http://127.0.0.1:9/wsman")
    rc, rate, out = V2.json("rate", "csv01", "--group", "mixed")
    r = {x["host"]: x for x in (rate or {}).get("ratings", [])}
    ok(r.get("NOSUCH", {}).get("reason_code") == "host-not-found"
       and r.get("HV02", {}).get("reason_code") == "other-backend"
       and r["NOSUCH"]["stars"] == 0 and r["HV02"]["stars"] == 0,
       "rate: a host no backend has is host-not-found, HV02 of backend hv2 other-backend "
       "(0 stars each)", out)

    # rate and check agree on both hosts
    rc, rate, out = V.json("rate", "csv01", "--group", "both")
    agree = rate is not None
    for r in (rate or {}).get("ratings", []):
        crc, cjs, cout = V.json("check", "csv01", "--to", r["host"], "--force")
        if r["eligible"]:
            agree &= crc == 0
        else:
            agree &= crc != 0 and r["stars"] == 0 and count(cjs, r["reason_code"]) == (1, "error")
    ok(agree and {r["host"]: r["eligible"] for r in rate["ratings"]} == {"HV01": False, "HV02": True},
       "rate and check agree on both hosts (HV01: same-host, 0 stars)", out)

    # nothing moved: the simulator's own view
    now = control(info, "/state")["hosts"]
    ok(sorted(v["name"] for v in now["HV01"]["vms"]) == sorted(v["name"] for v in st["HV01"]["vms"])
       and all(v["disks"] == w["disks"] for v, w in zip(now["HV01"]["vms"], st["HV01"]["vms"])),
       "nothing moved: HV01 keeps its VMs and their disks (simulator state)")


def main():
    if not os.path.exists(hv.VMSHIFT) or not os.path.exists(
            os.path.join(hv.PLUGDIR, "hyperv.so")):
        print("1..0 # SKIP host/vmshift or hyperv.so not built")
        return 0
    tmp = tempfile.mkdtemp(prefix="hv-rules-")
    try:
        hv.write_creds(tmp)
        run(tmp)
    finally:
        hv.stop_all(tmp)
    print("1..%d" % hv.n)
    return 1 if hv.failed else 0


if __name__ == "__main__":
    sys.exit(main())
