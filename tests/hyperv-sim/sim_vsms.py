"""Hyper-V simulator, part two: defining and removing VMs
(Msvm_VirtualSystemManagementService DefineSystem, AddResourceSettings,
ModifyResourceSettings, DestroySystem), the controller and drive settings
(Msvm_ResourceAllocationSettingData) and the host's files on disk.

hyperv_sim.py calls install(globals()) once; this module then uses its
helpers.  Facts: docs/design/hyperv.md §1.8 (embedded instances, REF
parameters, 4096 + Job, out REFs left empty by a job), §2.2 (settings,
HostResource, Parent as a WMI object path), §2.9 (VSMS methods); MSDOC
msvm-virtualsystemmanagementservice (DefineSystem, AddResourceSettings,
ModifyResourceSettings, DestroySystem: 0, 4096, 32768-32778),
msvm-resourceallocationsettingdata (ResourceType 5 IDE controller, 6 SCSI
controller, 17 disk drive; AddressOnParent), msvm-virtualsystemsettingdata
(VirtualSystemSubType "Microsoft:Hyper-V:SubType:1|2": generation 1 has two
IDE controllers and boots from IDE, generation 2 has SCSI only and takes
VHDX only), msvm-memorysettingdata (a multiple of 2 MB).

A host's files: a host with "smb_dirs" {"D:": "/local/dir"} keeps the files
of that drive in a real directory (the one the tests share with a real
Samba server), so D:\\VMs\\a.vhdx is /local/dir/VMs/a.vhdx: AddResourceSettings
of a VHD that is not there fails, as on a real host, and
GetVirtualHardDiskSettingData reads its virtual size from the file.
"""

import os
import struct
import uuid

G = {}

IDE_CTL = "Microsoft:Hyper-V:Emulated IDE Controller"
SCSI_CTL = "Microsoft:Hyper-V:Synthetic SCSI Controller"
DRIVE = "Microsoft:Hyper-V:Synthetic Disk Drive"
VHD = "Microsoft:Hyper-V:Virtual Hard Disk"
PORT = "Microsoft:Hyper-V:Synthetic Ethernet Port"
CONN = "Microsoft:Hyper-V:Ethernet Connection"
MAX_SCSI = 4            # SCSI controllers per VM
MAX_SCSI_SLOT = 64      # disks per SCSI controller
JOB_S = 0.3             # how long a VSMS job runs

# VHDX (MS-VHDX 2.2, 2.6): region table at 192 KiB; metadata region and
# its Virtual Disk Size item.
VHDX_METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
VHDX_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le


def install(g):
    G.update(g)
    g["SCHEMA"]["Msvm_ResourceAllocationSettingData"] = dict(
        Address="string", AddressOnParent="string", Caption="string",
        Description="string", ElementName="string",
        HostResource="string[]", InstanceID="string", Parent="string",
        PoolID="string", ResourceSubType="string", ResourceType="uint16")
    g["NAMESPACE_OF"]["Msvm_ResourceAllocationSettingData"] = g["V2"]
    g["PARENT"]["Msvm_ResourceAllocationSettingData"] = \
        "CIM_ResourceAllocationSettingData"
    g["KNOWN_QUERY_CLASSES"].add("Msvm_ResourceAllocationSettingData")


HANDLERS = {}


def handler(name):
    def deco(f):
        HANDLERS[("Msvm_VirtualSystemManagementService", name)] = f
        return f
    return deco

# -- files -------------------------------------------------------------------


def real_path(h, winpath):
    """The local file of a host path on a drive kept in a real directory,
    or None."""
    dirs = h.get("smb_dirs") or {}
    if not winpath or len(winpath) < 2 or winpath[1] != ":":
        return None
    base = dirs.get(winpath[:2].upper())
    if base is None:
        return None
    rest = [p for p in winpath[2:].split("\\") if p]
    if any(p in (".", "..") for p in rest):
        return None
    return os.path.join(base, *rest)


def vhd_size(local):
    """Virtual size of a VHDX or VHD file; None when it is neither."""
    try:
        with open(local, "rb") as f:
            head = f.read(8)
            if head == b"vhdxfile":
                f.seek(192 * 1024)
                rt = f.read(64 * 1024)
                if rt[:4] != b"regi":
                    return None
                count = struct.unpack_from("<I", rt, 8)[0]
                for i in range(min(count, 2047)):
                    e = rt[16 + 32 * i:48 + 32 * i]
                    if e[:16] == VHDX_METADATA:
                        off = struct.unpack_from("<Q", e, 16)[0]
                        f.seek(off)
                        md = f.read(64 * 1024)
                        if md[:8] != b"metadata":
                            return None
                        n = struct.unpack_from("<H", md, 10)[0]
                        for j in range(n):
                            it = md[32 + 32 * j:64 + 32 * j]
                            if it[:16] == VHDX_DISK_SIZE:
                                o = struct.unpack_from("<I", it, 16)[0]
                                f.seek(off + o)
                                return struct.unpack("<Q", f.read(8))[0]
                return None
            f.seek(-512, os.SEEK_END)
            foot = f.read(512)
            if foot[:8] == b"conectix":
                return struct.unpack_from(">Q", foot, 48)[0]
    except OSError:
        return None
    return None


def disk_capacity(h, path, default):
    rp = real_path(h, path)
    if rp is not None and os.path.isfile(rp):
        return vhd_size(rp) or default
    return default

# -- instances ----------------------------------------------------------------


def rasds(sim, h, v):
    """The VM's controllers and drives (defined VMs and VMs whose state
    lists them)."""
    Inst, wmi_path = G["Inst"], G["wmi_path"]
    out = []
    for c in v.get("controllers", []):
        out.append(Inst("Msvm_ResourceAllocationSettingData", dict(
            Address=str(c["address"]), AddressOnParent=None,
            Caption="IDE Controller" if c["type"] == 5 else "SCSI Controller",
            Description="Microsoft Emulated IDE Controller" if c["type"] == 5
            else "Microsoft Synthetic SCSI Controller",
            ElementName="IDE Controller %d" % c["address"] if c["type"] == 5
            else "SCSI Controller", HostResource=None, InstanceID=c["id"],
            Parent=None, PoolID="",
            ResourceSubType=IDE_CTL if c["type"] == 5 else SCSI_CTL,
            ResourceType=c["type"]), h))
    for d in v.get("drives", []):
        out.append(Inst("Msvm_ResourceAllocationSettingData", dict(
            Address=None, AddressOnParent=str(d["slot"]), Caption="Hard Drive",
            Description="Microsoft Synthetic Disk Drive",
            ElementName="Hard Drive", HostResource=None, InstanceID=d["id"],
            Parent=wmi_path(h["name"], "Msvm_ResourceAllocationSettingData",
                            [("InstanceID", d["controller"])]),
            PoolID="", ResourceSubType=DRIVE, ResourceType=17), h))
    return out


def all_rasds(sim, h):
    out = []
    for v in h["vms"].values():
        out += rasds(sim, h, v)
    return out

# -- parameters ----------------------------------------------------------------


def embedded(params, name):
    """Every embedded instance given as parameter @name: [(class, props)]."""
    out = []
    for e in params.get(name, []):
        try:
            out.append(G["parse_cimxml"](G["elem_text"](e) or ""))
        except ValueError as ex:
            raise G["fault_schema"]("%s: %s" % (name, ex))
    return out


def one_int(props, k, default=None):
    try:
        return int(props.get(k))
    except (TypeError, ValueError):
        return default


def job_reply(svc, caption, jtype, vm, work):
    """4096 and a Msvm_ConcreteJob that carries out @work (a function
    returning None or (ErrorCode, description)) when it completes; the
    method's other out REFs stay empty, as a job leaves them (§1.8)."""
    sim, h = svc.sim, svc.h
    job = sim.new_job(h, "Msvm_ConcreteJob", jtype, caption, vm=vm,
                      duration=JOB_S, cancellable=False)
    job["complete"] = lambda j: work()
    epr = G["ser_epr_children"](sim.job_inst(job))
    return "<p:Job>%s</p:Job><p:ReturnValue>4096</p:ReturnValue>" % epr


def vm_of_vssd(svc, params, name):
    uri, sel = G["parse_epr_param"](svc.one(params, name, True))
    if uri != G["class_uri"](G["V2"], "Msvm_VirtualSystemSettingData"):
        return None
    iid = sel.get("InstanceID") or ""
    if not iid.startswith("Microsoft:"):
        return None
    return svc.h["vms"].get(iid[len("Microsoft:"):].upper())

# -- DefineSystem ----------------------------------------------------------------


@handler("DefineSystem")
def m_define(svc, r, target, params):
    """DefineSystem(SystemSettings, ResourceSettings[], ReferenceConfiguration)
    -> ResultingSystem, Job.  A generation 1 VM gets its two IDE
    controllers; memory 1024 MB and one processor until modified."""
    h, sim = svc.h, svc.sim
    ss = embedded(params, "SystemSettings")
    if len(ss) != 1 or ss[0][0] != "Msvm_VirtualSystemSettingData":
        return "<p:ReturnValue>32773</p:ReturnValue>"
    if params.get("ResourceSettings") or params.get("ReferenceConfiguration"):
        return "<p:ReturnValue>32770</p:ReturnValue>"   # not modelled
    props = ss[0][1]
    name = props.get("ElementName") or ""
    sub = props.get("VirtualSystemSubType") or "Microsoft:Hyper-V:SubType:1"
    if not name or len(name) > 100 or sub not in (
            "Microsoft:Hyper-V:SubType:1", "Microsoft:Hyper-V:SubType:2"):
        return "<p:ReturnValue>32773</p:ReturnValue>"
    root = props.get("ConfigurationDataRoot") or \
        G["path_join"](h["default_vm_path"], name)
    gen = int(sub[-1])
    guid = str(uuid.uuid4()).upper()
    ctls = []
    if gen == 1:
        ctls = [dict(id="Microsoft:%s\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\%d"
                     % (guid, i), type=5, address=i) for i in (0, 1)]
    v = dict(name=name, guid=guid, enabled_state=3, operational_status=[2],
             config_root=root, memory_mb=1024, cpus=1, version="9.0",
             generation=gen, disks=[], nics=[], snapshots=[],
             controllers=ctls, drives=[])
    with sim.lock:
        rp = real_path(h, root)
        if rp is not None:
            os.makedirs(os.path.join(rp, "Virtual Machines"), exist_ok=True)
            for ext in ("vmcx", "vmrs"):
                with open(os.path.join(rp, "Virtual Machines",
                                       "%s.%s" % (guid, ext)), "wb") as f:
                    f.write(b"\0" * 4096)
        sim.add_vm(h, v)
        cs = sim.vm_cs(h, h["vms"][guid])
    return ("<p:ResultingSystem>%s</p:ResultingSystem>"
            "<p:ReturnValue>0</p:ReturnValue>" % G["ser_epr_children"](cs))

# -- ModifyResourceSettings ---------------------------------------------------------


@handler("ModifyResourceSettings")
def m_modify(svc, r, target, params):
    """Memory (VirtualQuantity in MB, a multiple of 2, Reservation and Limit
    alike) and processors (VirtualQuantity 1..64) of a VM that is off."""
    h, sim = svc.h, svc.sim
    changes = []
    for cls, props in embedded(params, "ResourceSettings"):
        iid = props.get("InstanceID") or ""
        guid = iid[len("Microsoft:"):].split("\\")[0].upper() \
            if iid.startswith("Microsoft:") else ""
        v = h["vms"].get(guid)
        if v is None:
            return "<p:ReturnValue>32773</p:ReturnValue>"
        if v["enabled_state"] != 3:
            return "<p:ReturnValue>32775</p:ReturnValue>"
        q = one_int(props, "VirtualQuantity")
        if cls == "Msvm_MemorySettingData" and \
                iid == sim.vm_memory(h, v).props["InstanceID"]:
            if q is None or q < 32 or q % 2:
                return "<p:ReturnValue>32773</p:ReturnValue>"
            changes.append((v, "memory_mb", q))
        elif cls == "Msvm_ProcessorSettingData" and \
                iid == sim.vm_processor(h, v).props["InstanceID"]:
            if q is None or not 1 <= q <= 64:
                return "<p:ReturnValue>32773</p:ReturnValue>"
            changes.append((v, "cpus", q))
        else:
            return "<p:ReturnValue>32770</p:ReturnValue>"
    with sim.lock:
        for v, k, q in changes:
            v[k] = q
    return "<p:ReturnValue>0</p:ReturnValue>"

# -- AddResourceSettings --------------------------------------------------------------


def fail(what, why):
    return (32768, "Failed to add device '%s'.\n%s" % (what, why))


def add_controller(svc, v, props):
    if props.get("ResourceSubType") != SCSI_CTL or v.get("generation") is None:
        return fail("Synthetic SCSI Controller", "The operation is not "
                    "supported. (0x80070032)")
    scsi = [c for c in v["controllers"] if c["type"] == 6]
    if len(scsi) >= MAX_SCSI:
        return fail("Synthetic SCSI Controller", "The maximum number of SCSI "
                    "controllers is reached.")
    v["controllers"].append(dict(
        id="Microsoft:%s\\%s" % (v["guid"], str(uuid.uuid4()).upper()),
        type=6, address=len(scsi)))
    return None


def add_drive(svc, v, props):
    _, keys = G["parse_wmi_path"](props.get("Parent") or "")
    ctl = [c for c in v["controllers"] if c["id"] == keys.get("InstanceID")]
    slot = one_int(props, "AddressOnParent", -1)
    if props.get("ResourceSubType") != DRIVE or not ctl:
        return fail("Synthetic Disk Drive", "The controller was not found.")
    limit = 2 if ctl[0]["type"] == 5 else MAX_SCSI_SLOT
    if not 0 <= slot < limit or any(d["controller"] == ctl[0]["id"] and
                                    d["slot"] == slot for d in v["drives"]):
        return fail("Synthetic Disk Drive", "The location %d on the "
                    "controller is not free or does not exist." % slot)
    v["drives"].append(dict(id="%s\\%d\\D" % (ctl[0]["id"], slot),
                            controller=ctl[0]["id"], slot=slot))
    return None


def add_disk(svc, v, props):
    h, sim = svc.h, svc.sim
    _, keys = G["parse_wmi_path"](props.get("Parent") or "")
    drive = [d for d in v["drives"] if d["id"] == keys.get("InstanceID")]
    hr = props.get("HostResource") or []
    path = hr[0] if len(hr) == 1 else ""
    if props.get("ResourceSubType") != VHD or not drive or \
            any(d.get("drive") == drive[0]["id"] for d in v["disks"]):
        return fail("Virtual Hard Disk", "The drive was not found or holds "
                    "a disk already.")
    rp = real_path(h, path)
    exists = os.path.isfile(rp) if rp is not None else \
        sim.get_file(h, path) is not None
    if not exists:
        return fail("Virtual Hard Disk", "'%s': The system cannot find the "
                    "file specified. (0x80070002)" % path)
    if v.get("generation") == 2 and not path.lower().endswith(".vhdx"):
        return fail("Virtual Hard Disk", "'%s': Generation 2 virtual "
                    "machines support VHDX disks only. (0x80070032)" % path)
    size = os.path.getsize(rp) if rp is not None else 0
    cap = vhd_size(rp) if rp is not None else None
    if rp is not None and cap is None:
        return fail("Virtual Hard Disk", "'%s': The file or directory is "
                    "corrupted and unreadable. (0x80070570)" % path)
    for x in h["vms"].values():
        if any(d["path"].lower() == path.lower() for d in x["disks"]):
            return fail("Virtual Hard Disk", "'%s': The process cannot "
                        "access the file because it is being used by "
                        "another process. (0x80070020)" % path)
    v["disks"].append(dict(id=str(uuid.uuid4()).upper(), path=path,
                           size=size, capacity=cap or 0,
                           drive=drive[0]["id"]))
    sim.put_file(h, path, size, False,
                 sim.base_acl() + sim.vm_aces(v["guid"], False))
    return None


def add_port(svc, v, props):
    mac = (props.get("Address") or "").upper()
    static = (props.get("StaticMacAddress") or "").upper() == "TRUE"
    if props.get("ResourceSubType") != PORT:
        return fail("Synthetic Ethernet Port", "Unknown resource subtype.")
    if static and (len(mac) != 12 or any(c not in "0123456789ABCDEF"
                                         for c in mac) or
                   int(mac[1], 16) & 1 or mac == "000000000000"):
        return fail("Synthetic Ethernet Port", "'%s' is not a valid static "
                    "MAC address. (0x80070057)" % mac)
    if not static:
        mac = "00155D" + uuid.uuid4().hex[:6].upper()
    v["nics"].append(dict(id=str(uuid.uuid4()).upper(),
                          name=props.get("ElementName") or "Network Adapter",
                          mac=mac, switch=None, static=static))
    return None


def add_connection(svc, v, props):
    h = svc.h
    _, pkeys = G["parse_wmi_path"](props.get("Parent") or "")
    nic = [n for n in v["nics"] if "Microsoft:%s\\%s" % (v["guid"], n["id"])
           == pkeys.get("InstanceID")]
    hr = props.get("HostResource") or []
    _, skeys = G["parse_wmi_path"](hr[0] if len(hr) == 1 else "")
    sw = [s for s in h["switches"] if s["guid"].upper() ==
          (skeys.get("Name") or "").upper()]
    if props.get("ResourceSubType") != CONN or not nic:
        return fail("Ethernet Connection", "The network adapter was not "
                    "found.")
    if not sw:
        return fail("Ethernet Connection", "Could not find Ethernet switch "
                    "'%s'." % (skeys.get("Name") or ""))
    nic[0]["switch"] = sw[0]["name"]
    return None


ADDERS = {
    ("Msvm_ResourceAllocationSettingData", 6): add_controller,
    ("Msvm_ResourceAllocationSettingData", 17): add_drive,
    ("Msvm_StorageAllocationSettingData", 31): add_disk,
    ("Msvm_SyntheticEthernetPortSettingData", 10): add_port,
    ("Msvm_EthernetPortAllocationSettingData", 33): add_connection,
}


@handler("AddResourceSettings")
def m_add(svc, r, target, params):
    """AddResourceSettings(AffectedConfiguration, ResourceSettings[]) ->
    4096 and a job that adds them, or fails naming the device (a VHD that
    is not there, a switch the host lacks, a slot taken, an IDE device on
    generation 2, a VHD on generation 2)."""
    v = vm_of_vssd(svc, params, "AffectedConfiguration")
    if v is None:
        return "<p:ReturnValue>32773</p:ReturnValue>"
    if v["enabled_state"] != 3:
        return "<p:ReturnValue>32775</p:ReturnValue>"
    items = embedded(params, "ResourceSettings")
    if not items:
        return "<p:ReturnValue>32773</p:ReturnValue>"
    for cls, props in items:
        if (cls, one_int(props, "ResourceType")) not in ADDERS:
            return "<p:ReturnValue>32773</p:ReturnValue>"
    sim = svc.sim

    def work():
        with sim.lock:
            if v["guid"] not in svc.h["vms"]:
                return (32768, "The virtual machine no longer exists.")
            for cls, props in items:
                err = ADDERS[(cls, one_int(props, "ResourceType"))](
                    svc, v, props)
                if err:
                    return err
        return None
    return job_reply(svc, "Adding resources", 30, v["guid"], work)

# -- DestroySystem --------------------------------------------------------------------


@handler("DestroySystem")
def m_destroy(svc, r, target, params):
    """DestroySystem(AffectedSystem) -> 4096 and a job that removes the VM
    and its configuration files; its VHDs stay (Hyper-V never deletes
    them)."""
    h, sim = svc.h, svc.sim
    uri, sel = G["parse_epr_param"](svc.one(params, "AffectedSystem", True))
    if uri != G["class_uri"](G["V2"], "Msvm_ComputerSystem"):
        return "<p:ReturnValue>32773</p:ReturnValue>"
    v = h["vms"].get((sel.get("Name") or "").upper())
    if v is None:
        return "<p:ReturnValue>32773</p:ReturnValue>"
    if v["enabled_state"] not in (3, 32769):
        return "<p:ReturnValue>32775</p:ReturnValue>"

    def work():
        with sim.lock:
            if v["guid"] not in h["vms"]:
                return (32768, "The virtual machine no longer exists.")
            del h["vms"][v["guid"]]
            for p in (sim.config_file(v), sim.runtime_file(v)):
                sim.del_file(h, p)
                rp = real_path(h, p)
                if rp is not None and os.path.isfile(rp):
                    os.unlink(rp)
            vmdir = G["path_join"](v["config_root"], "Virtual Machines")
            sim.del_file(h, vmdir)
            sim.del_file(h, v["config_root"])
            rp = real_path(h, vmdir)
            if rp is not None and os.path.isdir(rp) and not os.listdir(rp):
                os.rmdir(rp)
        return None
    return job_reply(svc, "Destroying the virtual machine", 3, v["guid"],
                     work)
