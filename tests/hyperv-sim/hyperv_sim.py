#!/usr/bin/env python3
"""Hyper-V simulator: WS-Management (DSP0226 / MS-WSMV) over HTTP on loopback,
serving the WMI classes of root/virtualization/v2 and the root/cimv2 file
security classes that vmshift's Hyper-V plugin uses.

Python 3 standard library only.  See README.md beside this file for the
documents each part follows, the state model and the control channel.

Usage:
    hyperv_sim.py --credentials FILE [--port N] [--state FILE]
                  [--job-seconds S] [--tls-cert PEM --tls-key PEM]
                  [--ready-file FILE] [--control-port N]

It prints, when every listener is ready:
    HOST <name> <url>          one line per simulated Hyper-V host
    CONTROL <url>              the JSON control endpoint (tests only)
    URL <url>                  the first host's WS-Man URL
    READY
"""

import argparse
import base64
import copy
import hmac
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

# sim_vsms sits beside this file, which tests also load by its path
# (importlib), with another directory first on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_vsms  # noqa: E402

# ---------------------------------------------------------------------------
# Namespaces (docs/design/hyperv.md §1.2; MS-WSMV 2.2.1)

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_X = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_F = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_ID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
NS_XML = "http://www.w3.org/XML/1998/namespace"

ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
URI_BASE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
V2 = "root/virtualization/v2"
CIMV2 = "root/cimv2"

A_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
A_ENUM = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
A_PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
A_RELEASE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
A_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
A_ENUM_FAULT = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"
A_ADDR_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

KNOWN_HEADERS = {
    (NS_A, "Action"), (NS_A, "To"), (NS_A, "ReplyTo"), (NS_A, "MessageID"),
    (NS_A, "FaultTo"),
    (NS_W, "ResourceURI"), (NS_W, "MaxEnvelopeSize"),
    (NS_W, "OperationTimeout"), (NS_W, "Locale"), (NS_W, "SelectorSet"),
    (NS_W, "OptionSet"), (NS_P, "DataLocale"), (NS_P, "SessionId"),
    (NS_P, "OperationID"), (NS_P, "SequenceId"),
}

MAX_REQUEST_BYTES = 512 * 1024          # WinRM MaxEnvelopeSizekb = 500

# ---------------------------------------------------------------------------
# Small helpers


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def class_uri(ns, cls):
    return URI_BASE + ns + "/" + cls


def vm_sid(guid):
    """NT VIRTUAL MACHINE\\{GUID} -> S-1-5-83-1-r1-r2-r3-r4 (docs/design/hyperv.md §3.1)."""
    r = struct.unpack("<4I", uuid.UUID(guid).bytes_le)
    return "S-1-5-83-1-%d-%d-%d-%d" % r


def sid_to_bytes(sid):
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S":
        raise ValueError("bad SID " + sid)
    rev, auth = int(parts[1]), int(parts[2])
    subs = [int(x) for x in parts[3:]]
    return bytes([rev, len(subs)]) + auth.to_bytes(6, "big") + b"".join(
        struct.pack("<I", s) for s in subs)


def bytes_to_sid(b):
    b = bytes(b)
    if len(b) < 8 or len(b) != 8 + 4 * b[1]:
        raise ValueError("bad binary SID")
    auth = int.from_bytes(b[2:8], "big")
    subs = struct.unpack("<%dI" % b[1], b[8:])
    return "S-%d-%d" % (b[0], auth) + "".join("-%d" % s for s in subs)


WELL_KNOWN = {
    "S-1-5-18": ("NT AUTHORITY", "SYSTEM"),
    "S-1-5-32-544": ("BUILTIN", "Administrators"),
    "S-1-1-0": ("", "Everyone"),
    "S-1-5-83-0": ("NT VIRTUAL MACHINE", "Virtual Machines"),
}
VM_WORKER_CAP = ("S-1-15-3-1024-2268835264-3721307629-241982045-173645152-"
                 "1490879176-104643441-2915960892-1612460704")
VM_MASK = 0x12019F   # FILE_GENERIC_READ|FILE_GENERIC_WRITE (docs/design/hyperv.md §3.1)


def lower_path(p):
    return p.replace("/", "\\").rstrip("\\").lower()


def path_join(d, f):
    return d.rstrip("\\") + "\\" + f


def basename(p):
    return p.replace("/", "\\").rstrip("\\").split("\\")[-1]


def dirname(p):
    p = p.replace("/", "\\").rstrip("\\")
    return p.rsplit("\\", 1)[0] if "\\" in p else p


def wmi_path(host, cls, keys):
    """A WMI object path as Hyper-V puts in string properties (Parent,
    HostResource): \\\\HOST\\root\\virtualization\\v2:Class.K="v",..."""
    ks = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
                  for k, v in keys)
    return "\\\\%s\\root\\virtualization\\v2:%s.%s" % (host, cls, ks)


def parse_wmi_path(p):
    m = re.match(r'^(?:\\\\[^\\]+\\)?(?:[^:]*:)?(\w+)\.(.*)$', p)
    if not m:
        return None, {}
    keys = {}
    for km in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)):
        keys[km.group(1)] = re.sub(r'\\(.)', r'\1', km.group(2))
    return m.group(1), keys


class Fault(Exception):
    """A WS-Man fault (docs/design/hyperv.md §1.9)."""

    def __init__(self, subcode, reason, code=None, sender=True, http=500,
                 provider=None, action=A_FAULT, detail_extra=""):
        Exception.__init__(self, reason)
        self.subcode = subcode
        self.reason = reason
        self.code = code
        self.sender = sender
        self.http = http
        self.provider = provider   # (wmi message, wmi code) for ProviderFault
        self.action = action
        self.detail_extra = detail_extra


def fault_bad_selectors():
    return Fault("w:InvalidSelectors",
                 "The WS-Management service cannot process the request "
                 "because the request contained invalid selectors for the "
                 "resource. ", code=2150858843)


def fault_not_found():
    # docs/design/hyperv.md §1.9: Get of a vanished instance / unknown URI.
    return Fault("a:DestinationUnreachable",
                 "The WS-Management service cannot process the request. The "
                 "service cannot find the resource identified by the "
                 "resource URI and selectors. ", code=2150858752)


def fault_schema(what):
    return Fault("w:SchemaValidationError",
                 "The SOAP XML in the message does not match the "
                 "corresponding XML schema definition. Change the XML and "
                 "retry. (%s)" % what, code=2150858817)


def fault_class_missing():
    # docs/design/hyperv.md §1.9 (WinRb soap_fault_v1.xml)
    return Fault("n:CannotProcessFilter",
                 "The data source could not process the filter. The filter "
                 "might be missing or it might be invalid. Change the filter "
                 "and try the request again.  ", code=2150858778,
                 provider=("The specified class does not exist in the given "
                           "namespace. ", 2150858778),
                 action=A_ENUM_FAULT)


def fault_bad_query(msg):
    return Fault("n:CannotProcessFilter",
                 "The data source could not process the filter. The filter "
                 "might be missing or it might be invalid. Change the filter "
                 "and try the request again.  ", code=2150858778,
                 provider=("Invalid query (%s) " % msg, 2147749911),
                 action=A_ENUM_FAULT)

# ---------------------------------------------------------------------------
# Class schema: property name -> CIM type ("string", "uint16", ..., "ref",
# "datetime", "interval"); a trailing "[]" marks an array.  Only the
# properties the simulator fills are listed; the rest of each class (MSDOC)
# is not emitted.  Property values are serialized in alphabetical order as
# WinRM does (docs/design/hyperv.md §1.7).

SCHEMA = {
    "Msvm_ComputerSystem": dict(
        Caption="string", CreationClassName="string", Description="string",
        ElementName="string", EnabledDefault="uint16", EnabledState="uint16",
        HealthState="uint16", InstallDate="datetime", Name="string",
        NumberOfNumaNodes="uint16", OnTimeInMilliseconds="uint64",
        OperationalStatus="uint16[]", OtherEnabledState="string",
        PrimaryOwnerName="string", ProcessID="uint32",
        RequestedState="uint16", StatusDescriptions="string[]",
        TimeOfLastStateChange="datetime"),
    "Msvm_VirtualSystemSettingData": dict(
        Caption="string", ConfigurationDataRoot="string",
        ConfigurationFile="string", ConfigurationID="string",
        CreationTime="datetime",
        Description="string", ElementName="string", InstanceID="string",
        IsSaved="boolean", LogDataRoot="string", Notes="string[]",
        Parent="string", SnapshotDataRoot="string", SuspendDataRoot="string",
        SwapFileDataRoot="string", Version="string",
        VirtualSystemIdentifier="string", VirtualSystemSubType="string",
        VirtualSystemType="string"),
    "Msvm_StorageAllocationSettingData": dict(
        Address="string", AddressOnParent="string", AllocationUnits="string",
        AutomaticAllocation="boolean", AutomaticDeallocation="boolean",
        Caption="string", Connection="string[]", Description="string",
        ElementName="string", HostResource="string[]", InstanceID="string",
        Limit="uint64", MappingBehavior="uint16", Parent="string",
        PoolID="string", Reservation="uint64", ResourceSubType="string",
        ResourceType="uint16", VirtualQuantity="uint64", Weight="uint32"),
    # MSDOC msvm-memorysettingdata: VirtualQuantity in AllocationUnits
    # "byte * 2^20" (MB); one instance per VM, ResourceType 4.
    "Msvm_MemorySettingData": dict(
        AllocationUnits="string", Caption="string", Description="string",
        DynamicMemoryEnabled="boolean", ElementName="string",
        InstanceID="string", Limit="uint64", Reservation="uint64",
        ResourceSubType="string", ResourceType="uint16",
        VirtualQuantity="uint64", Weight="uint32"),
    # MSDOC msvm-processorsettingdata: VirtualQuantity = number of virtual
    # processors, ResourceType 3; Limit/Reservation in 1/1000 percent.
    "Msvm_ProcessorSettingData": dict(
        AllocationUnits="string", Caption="string", Description="string",
        ElementName="string", InstanceID="string", Limit="uint64",
        LimitProcessorFeatures="boolean", Reservation="uint64",
        ResourceSubType="string", ResourceType="uint16",
        VirtualQuantity="uint64", Weight="uint32"),
    "Msvm_SyntheticEthernetPortSettingData": dict(
        Address="string", Caption="string", Description="string",
        ElementName="string", InstanceID="string", PoolID="string",
        ResourceSubType="string", ResourceType="uint16",
        StaticMacAddress="boolean", VirtualSystemIdentifiers="string[]"),
    "Msvm_EthernetPortAllocationSettingData": dict(
        Address="string", Caption="string", Description="string",
        ElementName="string", EnabledState="uint16",
        HostResource="string[]", InstanceID="string", Parent="string",
        PoolID="string", ResourceSubType="string", ResourceType="uint16"),
    "Msvm_VirtualEthernetSwitch": dict(
        Caption="string", CreationClassName="string", Description="string",
        ElementName="string", EnabledState="uint16", HealthState="uint16",
        Name="string", OperationalStatus="uint16[]"),
    "Msvm_VirtualSystemMigrationService": dict(
        ActiveStorageMigrationCount="uint32",
        ActiveVirtualSystemMigrationCount="uint32", Caption="string",
        CreationClassName="string", Description="string",
        ElementName="string", EnabledState="uint16",
        MigrationServiceListenerIPAddressList="string[]", Name="string",
        SystemCreationClassName="string", SystemName="string"),
    "Msvm_VirtualSystemMigrationServiceSettingData": dict(
        AuthenticationType="uint16", Caption="string", Description="string",
        ElementName="string", EnableCompression="boolean",
        EnableSmbTransport="boolean", EnableVirtualSystemMigration="boolean",
        InstanceID="string", MaximumActiveStorageMigration="uint32",
        MaximumActiveVirtualSystemMigration="uint32"),
    "Msvm_VirtualSystemMigrationSettingData": dict(
        AvoidRemovingVHDs="boolean", Bandwidth="uint64",
        BandwidthUnit="string", Caption="string", Description="string",
        DestinationIPAddressList="string[]",
        DestinationPlannedVirtualSystemId="string", ElementName="string",
        EnableCompression="boolean", InstanceID="string",
        MigrationType="uint16", OtherTransportType="string",
        Priority="uint16", RemoveSourceUnmanagedVhds="boolean",
        RetainVhdCopiesOnSource="boolean", TransportType="uint16",
        UnmanagedVhds="string[]"),
    "Msvm_VirtualSystemManagementService": dict(
        Caption="string", CreationClassName="string", Description="string",
        ElementName="string", EnabledState="uint16", Name="string",
        SystemCreationClassName="string", SystemName="string"),
    # MSDOC msvm-imagemanagementservice; GetVirtualHardDiskSettingData
    # answers an embedded Msvm_VirtualHardDiskSettingData (docs/design/hyperv.md §2.2).
    "Msvm_ImageManagementService": dict(
        Caption="string", CreationClassName="string", Description="string",
        ElementName="string", EnabledState="uint16", Name="string",
        SystemCreationClassName="string", SystemName="string"),
    "Msvm_VirtualHardDiskSettingData": dict(
        BlockSize="uint32", Caption="string", Description="string",
        ElementName="string", Format="uint16", InstanceID="string",
        LogicalSectorSize="uint32", MaxInternalSize="uint64",
        ParentPath="string", Path="string", PhysicalSectorSize="uint32",
        Type="uint16"),
    "Msvm_VirtualSystemManagementServiceSettingData": dict(
        Caption="string", DefaultExternalDataRoot="string",
        DefaultVirtualHardDiskPath="string", Description="string",
        ElementName="string", InstanceID="string"),
    "Msvm_ConcreteJob": dict(
        Cancellable="boolean", Caption="string", DeleteOnCompletion="boolean",
        Description="string", ElapsedTime="interval", ElementName="string",
        ErrorCode="uint16", ErrorDescription="string",
        ErrorSummaryDescription="string", InstanceID="string",
        JobState="uint16", JobStatus="string", JobType="uint16",
        Name="string", OperationalStatus="uint16[]",
        PercentComplete="uint16", StartTime="datetime",
        StatusDescriptions="string[]", TimeBeforeRemoval="interval",
        TimeOfLastStateChange="datetime", TimeSubmitted="datetime"),
    "Win32_Volume": dict(
        BlockSize="uint64", Capacity="uint64", Caption="string",
        DeviceID="string", DriveLetter="string", DriveType="uint32",
        FileSystem="string", FreeSpace="uint64", Label="string",
        Name="string", SystemName="string"),
    # MSDOC win32-computersystem: TotalPhysicalMemory in bytes,
    # NumberOfLogicalProcessors over all sockets.
    "Win32_ComputerSystem": dict(
        Caption="string", DNSHostName="string", Domain="string",
        Manufacturer="string", Model="string", Name="string",
        NumberOfLogicalProcessors="uint32", NumberOfProcessors="uint32",
        TotalPhysicalMemory="uint64"),
    # MSDOC win32-operatingsystem: FreePhysicalMemory and
    # TotalVisibleMemorySize in KiB; Caption is the product name.
    "Win32_OperatingSystem": dict(
        BuildNumber="string", Caption="string", CSName="string",
        FreePhysicalMemory="uint64", Name="string",
        TotalVisibleMemorySize="uint64", Version="string"),
    # MSDOC win32-processor: one instance per socket ("CPU0", "CPU1"),
    # LoadPercentage averaged over the last second.
    "Win32_Processor": dict(
        DeviceID="string", LoadPercentage="uint16", Manufacturer="string",
        MaxClockSpeed="uint32", Name="string", NumberOfCores="uint32",
        NumberOfLogicalProcessors="uint32", SocketDesignation="string"),
    "Win32_LogicalFileSecuritySetting": dict(
        Caption="string", ControlFlags="uint32", Description="string",
        OwnerPermissions="boolean", Path="string", SettingID="string"),
    "CIM_DataFile": dict(
        Caption="string", CreationClassName="string", Drive="string",
        Extension="string", FileName="string", FileSize="uint64",
        FileType="string", Name="string", Path="string"),
}
SCHEMA["Msvm_MigrationJob"] = dict(
    SCHEMA["Msvm_ConcreteJob"], DestinationHost="string",
    MigrationType="uint16", NewResourceSettingData="string[]",
    NewSystemSettingData="string", VirtualSystemName="string")
SCHEMA["Msvm_StorageJob"] = dict(SCHEMA["Msvm_ConcreteJob"])
SCHEMA["Win32_Directory"] = dict(SCHEMA["CIM_DataFile"])
del SCHEMA["Win32_Directory"]["FileSize"]

NAMESPACE_OF = {c: (CIMV2 if c.startswith(("Win32_", "CIM_")) else V2)
                for c in SCHEMA}

# Key properties (used to build selectors / EPRs).
KEYS = {
    "Msvm_ComputerSystem": ["CreationClassName", "Name"],
    "Msvm_VirtualEthernetSwitch": ["CreationClassName", "Name"],
    "Msvm_VirtualSystemMigrationService": [
        "CreationClassName", "Name", "SystemCreationClassName", "SystemName"],
    "Msvm_VirtualSystemManagementService": [
        "CreationClassName", "Name", "SystemCreationClassName", "SystemName"],
    "Msvm_ImageManagementService": [
        "CreationClassName", "Name", "SystemCreationClassName", "SystemName"],
    "Win32_Volume": ["DeviceID"],
    "Win32_ComputerSystem": ["Name"],
    "Win32_OperatingSystem": ["Name"],
    "Win32_Processor": ["DeviceID"],
    "Win32_LogicalFileSecuritySetting": ["Path"],
    "CIM_DataFile": ["Name"],
    "Win32_Directory": ["Name"],
}

# WMI class inheritance used by WQL polymorphism.
PARENT = {
    "Msvm_MigrationJob": "Msvm_ConcreteJob",
    "Msvm_StorageJob": "Msvm_ConcreteJob",
    "Msvm_StorageAllocationSettingData": "CIM_ResourceAllocationSettingData",
    "Msvm_EthernetPortAllocationSettingData":
        "CIM_ResourceAllocationSettingData",
    "Msvm_SyntheticEthernetPortSettingData":
        "CIM_ResourceAllocationSettingData",
    "Msvm_ConcreteJob": "CIM_ConcreteJob",
    "Msvm_MemorySettingData": "CIM_ResourceAllocationSettingData",
    "Msvm_ProcessorSettingData": "CIM_ResourceAllocationSettingData",
}
KNOWN_QUERY_CLASSES = set(SCHEMA) | {"Msvm_ResourceAllocationSettingData",
                                     "CIM_ResourceAllocationSettingData",
                                     "CIM_ConcreteJob"}


def is_a(cls, want):
    if want == "Msvm_ResourceAllocationSettingData":
        want = "CIM_ResourceAllocationSettingData"
    while cls:
        if cls == want:
            return True
        cls = PARENT.get(cls)
    return False


def key_of(cls):
    for c in [cls, PARENT.get(cls)]:
        if c in KEYS:
            return KEYS[c]
    return ["InstanceID"]


class Inst:
    """One WMI instance: class name, namespace and property values."""

    def __init__(self, cls, props, host):
        self.cls = cls
        self.ns = NAMESPACE_OF[cls]
        self.props = props
        self.host = host

    def keys(self):
        return [(k, str(self.props.get(k, ""))) for k in key_of(self.cls)]

# ---------------------------------------------------------------------------
# Simulated world


def default_state():
    """Two hosts, a few VMs, shared and local volumes, a missing switch."""
    def vm(name, guid, state, root, disks, nics, mem=2048, cpus=2, snaps=()):
        return dict(name=name, guid=guid, enabled_state=state,
                    operational_status=[2], config_root=root,
                    memory_mb=mem, cpus=cpus, version="9.0",
                    disks=[dict(id=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                  guid + p)).upper(),
                                path=p, size=s, capacity=c)
                           for p, s, c in disks],
                    nics=[dict(id=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                 guid + n)).upper(),
                               name="Network Adapter", mac=mac, switch=n)
                          for n, mac in nics],
                    snapshots=list(snaps))
    gib = 1 << 30
    hosts = {
        "HV01": dict(
            fqdn="hv01.example.test", ips=["192.0.2.11"],
            os="Microsoft Windows Server 2022 Datacenter 10.0.20348",
            memory_total=256 * gib, memory_free=200 * gib, cpus=32,
            sockets=2, cpu_load=23,
            cpu_model="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
            volumes=[
                dict(device="\\\\?\\Volume{1a0e0e11-0000-4000-8000-000000000001}\\",
                     name="C:\\", label="System", capacity=200 * gib,
                     free=80 * gib),
                dict(device="\\\\?\\Volume{1a0e0e11-0000-4000-8000-000000000002}\\",
                     name="D:\\", label="VMs", capacity=2000 * gib,
                     free=900 * gib),
                dict(device="\\\\?\\Volume{5a0e0e11-0000-4000-8000-0000000000c5}\\",
                     name="C:\\ClusterStorage\\Volume1\\", label="CSV1",
                     capacity=4000 * gib, free=3000 * gib, shared=True)],
            switches=[dict(name="LAN", guid="5B5D6A9E-1F2C-4F4D-9C4E-6B1C0A000001"),
                      dict(name="DMZ", guid="5B5D6A9E-1F2C-4F4D-9C4E-6B1C0A000002")],
            migration=dict(enabled=True, max_vm=2, max_storage=2, auth=1),
            default_vm_path="D:\\Hyper-V",
            default_vhd_path="D:\\Hyper-V\\Virtual Hard Disks",
            vms=[
                vm("web01", "1D3C5B1E-7A2B-4C1D-9E0F-000000000101", 2,
                   "D:\\VMs\\web01",
                   [("D:\\VMs\\web01\\web01.vhdx", 12 * gib, 40 * gib),
                    ("D:\\VMs\\web01\\web01-data.vhdx", 3 * gib, 20 * gib)],
                   [("LAN", "00155D000101")]),
                vm("db01", "1D3C5B1E-7A2B-4C1D-9E0F-000000000102", 3,
                   "D:\\VMs\\db01",
                   [("D:\\VMs\\db01\\db01.vhdx", 20 * gib, 60 * gib)],
                   [("LAN", "00155D000102")], mem=8192, cpus=4),
                vm("csv01", "1D3C5B1E-7A2B-4C1D-9E0F-000000000103", 2,
                   "C:\\ClusterStorage\\Volume1\\csv01",
                   [("C:\\ClusterStorage\\Volume1\\csv01\\csv01.vhdx",
                     8 * gib, 40 * gib)],
                   [("LAN", "00155D000103")]),
                vm("dmz01", "1D3C5B1E-7A2B-4C1D-9E0F-000000000104", 2,
                   "D:\\VMs\\dmz01",
                   [("D:\\VMs\\dmz01\\dmz01.vhdx", 5 * gib, 30 * gib)],
                   [("DMZ", "00155D000104")]),
            ]),
        "HV02": dict(
            fqdn="hv02.example.test", ips=["192.0.2.12"],
            os="Microsoft Windows Server 2022 Datacenter 10.0.20348",
            memory_total=256 * gib, memory_free=220 * gib, cpus=32,
            sockets=2, cpu_load=41,
            cpu_model="AMD EPYC 7313 16-Core Processor",
            volumes=[
                dict(device="\\\\?\\Volume{2a0e0e11-0000-4000-8000-000000000001}\\",
                     name="C:\\", label="System", capacity=200 * gib,
                     free=90 * gib),
                dict(device="\\\\?\\Volume{2a0e0e11-0000-4000-8000-000000000002}\\",
                     name="E:\\", label="Fast", capacity=1000 * gib,
                     free=700 * gib),
                dict(device="\\\\?\\Volume{5a0e0e11-0000-4000-8000-0000000000c5}\\",
                     name="C:\\ClusterStorage\\Volume1\\", label="CSV1",
                     capacity=4000 * gib, free=3000 * gib, shared=True)],
            switches=[dict(name="LAN", guid="6C6E7BAF-2A3D-4A5E-8D5F-7C2D1B000001")],
            migration=dict(enabled=True, max_vm=2, max_storage=2, auth=1),
            default_vm_path="E:\\Hyper-V",
            default_vhd_path="E:\\Hyper-V\\Virtual Hard Disks",
            vms=[
                vm("app02", "1D3C5B1E-7A2B-4C1D-9E0F-000000000201", 2,
                   "E:\\VMs\\app02",
                   [("E:\\VMs\\app02\\app02.vhdx", 6 * gib, 30 * gib)],
                   [("LAN", "00155D000201")],
                   snaps=[dict(id="6F1E0C2A-3B4D-4E5F-8A9B-0C1D2E3F0201",
                               name="app02 - before patch",
                               created="2025-12-20T08:30:00.000000Z")]),
            ]),
    }
    return dict(hosts=hosts)


class Sim:
    """The whole simulated world, shared by every host listener."""

    def __init__(self, state, job_seconds):
        self.lock = threading.RLock()
        self.job_seconds = job_seconds
        self.hosts = {}
        self.jobs = {}            # InstanceID -> job dict (all hosts)
        self.enums = {}           # context -> (host, [Inst], mode)
        self.faults = []
        self.log = []             # (host, action, resource uri)
        self.auth_log = []        # authentication events (never secrets)
        self.counter = 0
        pending = []
        for hname, h in state["hosts"].items():
            h = copy.deepcopy(h)
            h["name"] = hname
            h.setdefault("acl_after_move", "hyperv")
            h.setdefault("idle_timeout", None)
            h.setdefault("connections", 0)
            pending.append((h, h.pop("vms", [])))
            h["vms"] = {}
            h["files"] = {}
            self.hosts[hname] = h
        for h, vms in pending:       # after every host exists (shared files)
            for v in vms:
                self.add_vm(h, v)

    # -- world model ------------------------------------------------------

    def base_acl(self):
        return [dict(sid="S-1-5-18", mask=0x1F01FF, flags=0x10, type=0),
                dict(sid="S-1-5-32-544", mask=0x1F01FF, flags=0x10, type=0)]

    def vm_aces(self, guid, is_dir):
        fl = 0x3 if is_dir else 0
        return [dict(sid=vm_sid(guid), mask=VM_MASK, flags=fl, type=0),
                dict(sid=VM_WORKER_CAP, mask=VM_MASK, flags=fl, type=0)]

    def vm_files(self, v):
        """Every file and folder that holds the VM's ACE (docs/design/hyperv.md §3.2):
        the configuration folder, its "Virtual Machines" folder, the .vmcx
        and the .vmrs (runtime state, beside the .vmcx since configuration
        version 6.2), each disk and every parent of a differencing disk."""
        out = [(v["config_root"], True),
               (path_join(v["config_root"], "Virtual Machines"), True),
               (self.config_file(v), False),
               (self.runtime_file(v), False)]
        for d in v["disks"]:
            out.append((d["path"], False))
            out += [(x["path"], False) for x in d.get("parents", [])]
        return out

    def start_files(self, v):
        """The files a VM's worker process opens when it starts: each must
        grant the VM's account (else "does not have the required security
        settings", 0x80070005)."""
        return [p for p, _ in self.vm_files(v)
                if not p.endswith("\\Virtual Machines")]

    def config_file(self, v):
        return path_join(v["config_root"],
                         "Virtual Machines\\%s.vmcx" % v["guid"])

    def runtime_file(self, v):
        return path_join(v["config_root"],
                         "Virtual Machines\\%s.vmrs" % v["guid"])

    def file_size(self, v, p):
        for d in v["disks"]:
            if d["path"] == p:
                return d["size"]
            for x in d.get("parents", []):
                if x["path"] == p:
                    return x["size"]
        return 64 * 1024 if p.endswith((".vmcx", ".vmrs")) else 0

    def disk_chain(self, path):
        """(disk, parent path or None, size, capacity) of a VHD path that
        is a VM's disk or one of its parents; None when unknown."""
        for h in self.hosts.values():
            for v in h["vms"].values():
                for d in v["disks"]:
                    chain = [dict(path=d["path"], size=d["size"])] + \
                        list(d.get("parents", []))
                    for i, x in enumerate(chain):
                        if x["path"].lower() == path.lower():
                            nxt = chain[i + 1]["path"] \
                                if i + 1 < len(chain) else None
                            return (d, nxt, x["size"],
                                    d.get("capacity", d["size"]))
        return None

    def add_vm(self, h, v):
        v = copy.deepcopy(v)
        v.setdefault("operational_status", [2])
        v.setdefault("snapshots", [])
        # The checkpoint the VM runs from (its VSSD's Parent): the newest.
        v.setdefault("current_snapshot",
                     v["snapshots"][-1]["id"] if v["snapshots"] else None)
        v.setdefault("version", "9.0")
        h["vms"][v["guid"]] = v
        for p, is_dir in self.vm_files(v):
            self.put_file(h, p, self.file_size(v, p), is_dir,
                          self.base_acl() + self.vm_aces(v["guid"], is_dir))

    def volume_of(self, h, path):
        best = None
        lp = lower_path(path) + "\\"
        for vol in h["volumes"]:
            vn = lower_path(vol["name"]) + "\\"
            if lp.startswith(vn) and (best is None or
                                      len(vn) > len(lower_path(best["name"]))):
                best = vol
        return best

    def shared_hosts(self, vol):
        return [x for x in self.hosts.values()
                for v2 in x["volumes"]
                if v2.get("shared") and v2["device"] == vol["device"]]

    def put_file(self, h, path, size, is_dir, acl):
        targets = [h]
        vol = self.volume_of(h, path)
        if vol and vol.get("shared"):
            targets = self.shared_hosts(vol)
        for t in targets:
            t["files"][lower_path(path)] = dict(path=path, size=size,
                                                dir=is_dir,
                                                acl=copy.deepcopy(acl))
        return vol

    def get_file(self, h, path):
        return h["files"].get(lower_path(path))

    def del_file(self, h, path):
        vol = self.volume_of(h, path)
        targets = self.shared_hosts(vol) if vol and vol.get("shared") else [h]
        for t in targets:
            t["files"].pop(lower_path(path), None)

    def adjust_free(self, h, path, delta):
        vol = self.volume_of(h, path)
        if not vol:
            return
        targets = [h]
        if vol.get("shared"):
            targets = self.shared_hosts(vol)
        for t in targets:
            for v2 in t["volumes"]:
                if v2["device"] == vol["device"]:
                    v2["free"] = max(0, v2["free"] + delta)

    def find_host(self, name):
        if name is None:
            return None
        n = name.lower()
        for h in self.hosts.values():
            if n in (h["name"].lower(), h["fqdn"].lower()) or name in h["ips"]:
                return h
        return None

    # -- instances --------------------------------------------------------

    def host_cs(self, h):
        return Inst("Msvm_ComputerSystem", dict(
            Caption="Hosting Computer System",
            CreationClassName="Msvm_ComputerSystem",
            Description="Microsoft Hosting Computer System",
            ElementName=h["name"], EnabledDefault=2, EnabledState=2,
            HealthState=5, InstallDate=None, Name=h["name"],
            NumberOfNumaNodes=1, OnTimeInMilliseconds=None,
            OperationalStatus=[2], OtherEnabledState=None,
            PrimaryOwnerName="Administrators", ProcessID=None,
            RequestedState=12, StatusDescriptions=["OK"],
            TimeOfLastStateChange=None), h)

    def vm_cs(self, h, v):
        status = {2: "Operating normally", 32772: "Merging disks",
                  32770: "Deleting snapshot", 32774: "Migrating"}
        descs = [status.get(s, "Operating normally")
                 for s in v["operational_status"]]
        return Inst("Msvm_ComputerSystem", dict(
            Caption="Virtual Machine",
            CreationClassName="Msvm_ComputerSystem",
            Description="Microsoft Virtual Machine", ElementName=v["name"],
            EnabledDefault=2, EnabledState=v["enabled_state"], HealthState=5,
            InstallDate=("dt", "2025-12-17T09:55:22.702341Z"),
            Name=v["guid"], NumberOfNumaNodes=1,
            OnTimeInMilliseconds=123456 if v["enabled_state"] == 2 else 0,
            OperationalStatus=list(v["operational_status"]),
            OtherEnabledState=None, PrimaryOwnerName="HV\\Administrator",
            ProcessID=4242 if v["enabled_state"] == 2 else None,
            RequestedState=5, StatusDescriptions=descs,
            TimeOfLastStateChange=("dt", "2025-12-17T09:55:22.702341Z")), h)

    def vm_vssd(self, h, v, snap=None):
        root = v["config_root"]
        vtype = "Microsoft:Hyper-V:System:Realized"
        iid = "Microsoft:" + v["guid"]
        created = "2025-12-17T09:55:22.702341Z"
        name = v["name"]
        # Parent: object path of the parent checkpoint's VSSD (for the VM's
        # own settings: the checkpoint it runs from), NULL at the root.
        parent = v.get("current_snapshot")
        if snap:
            vtype = "Microsoft:Hyper-V:Snapshot:Realized"
            iid = "Microsoft:" + snap["id"]
            name = snap["name"]
            created = snap.get("created", created)
            parent = snap.get("parent")
        if parent:
            parent = wmi_path(h["name"], "Msvm_VirtualSystemSettingData",
                              [("InstanceID", "Microsoft:" + parent)])
        return Inst("Msvm_VirtualSystemSettingData", dict(
            Caption="Virtual Machine Settings",
            ConfigurationDataRoot=root,
            ConfigurationFile=self.config_file(v),
            ConfigurationID=v["guid"], CreationTime=("dt", created),
            Description="Active settings for the virtual machine.",
            ElementName=name, InstanceID=iid,
            IsSaved=v["enabled_state"] == 32769, LogDataRoot=root,
            Notes=[""], Parent=parent or None, SnapshotDataRoot=root,
            SuspendDataRoot=root, SwapFileDataRoot=root,
            Version=v["version"], VirtualSystemIdentifier=v["guid"],
            VirtualSystemSubType="Microsoft:Hyper-V:SubType:%d"
            % v.get("generation", 2),
            VirtualSystemType=vtype), h)

    def vm_sasds(self, h, v):
        out = []
        for i, d in enumerate(v["disks"]):
            drive = d.get("drive") or "Microsoft:%s\\%s\\0\\%d\\D" % (
                v["guid"], "83F8638B-8DCA-4152-9EDA-2CA8B33039B4", i)
            out.append(Inst("Msvm_StorageAllocationSettingData", dict(
                Address=None, AddressOnParent=None,
                AllocationUnits="byte", AutomaticAllocation=True,
                AutomaticDeallocation=True, Caption="Hard Disk Image",
                Connection=None,
                Description="Settings for the Microsoft Hard Disk Image.",
                ElementName="Hard Disk Image", HostResource=[d["path"]],
                InstanceID="Microsoft:%s\\%s\\L" % (v["guid"], d["id"]),
                Limit=1, MappingBehavior=None,
                Parent=wmi_path(h["name"],
                                "Msvm_ResourceAllocationSettingData",
                                [("InstanceID", drive)]),
                PoolID="", Reservation=1,
                ResourceSubType="Microsoft:Hyper-V:Virtual Hard Disk",
                ResourceType=31, VirtualQuantity=1, Weight=0), h))
        return out

    def vm_memory(self, h, v):
        mb = v.get("memory_mb", 2048)
        return Inst("Msvm_MemorySettingData", dict(
            AllocationUnits="byte * 2^20", Caption="Memory",
            Description="Settings for Microsoft Virtual Machine Memory.",
            DynamicMemoryEnabled=False, ElementName="Memory",
            InstanceID="Microsoft:%s\\4764334D-E001-4176-82EE-5594EC9B530E"
            % v["guid"], Limit=mb, Reservation=mb,
            ResourceSubType="Microsoft:Hyper-V:Memory", ResourceType=4,
            VirtualQuantity=mb, Weight=5000), h)

    def vm_processor(self, h, v):
        return Inst("Msvm_ProcessorSettingData", dict(
            AllocationUnits="percent / 1000", Caption="Processor",
            Description="Settings for Microsoft Virtual Processor.",
            ElementName="Processor",
            InstanceID="Microsoft:%s\\B637F346-6A0E-4DEC-AF52-BD70CB80A21D"
            "\\0" % v["guid"], Limit=100000, LimitProcessorFeatures=False,
            Reservation=0, ResourceSubType="Microsoft:Hyper-V:Processor",
            ResourceType=3, VirtualQuantity=v.get("cpus", 1), Weight=100), h)

    def vm_ports(self, h, v):
        out = []
        for n in v["nics"]:
            iid = "Microsoft:%s\\%s" % (v["guid"], n["id"])
            out.append(Inst("Msvm_SyntheticEthernetPortSettingData", dict(
                Address=n["mac"], Caption="Virtual Ethernet Port",
                Description="Microsoft Virtual Network Adapter",
                ElementName=n["name"], InstanceID=iid, PoolID="",
                ResourceSubType="Microsoft:Hyper-V:Synthetic Ethernet Port",
                ResourceType=10, StaticMacAddress=bool(n.get("static")),
                VirtualSystemIdentifiers=["{%s}" % n["id"].lower()]), h))
        return out

    def vm_epasds(self, h, v):
        out = []
        for n in v["nics"]:
            if n.get("switch") is None:
                continue        # an adapter not connected has no port settings
            sw = [s for s in h["switches"] if s["name"] == n["switch"]]
            hr = None
            if sw:
                hr = [wmi_path(h["name"], "Msvm_VirtualEthernetSwitch",
                               [("CreationClassName",
                                 "Msvm_VirtualEthernetSwitch"),
                                ("Name", sw[0]["guid"])])]
            iid = "Microsoft:%s\\%s" % (v["guid"], n["id"])
            out.append(Inst("Msvm_EthernetPortAllocationSettingData", dict(
                Address="", Caption="Ethernet Switch Port Settings",
                Description="Ethernet Switch Port Settings",
                ElementName="Dynamic Ethernet Switch Port",
                EnabledState=2 if sw else 3, HostResource=hr,
                InstanceID=iid + "\\C",
                Parent=wmi_path(h["name"],
                                "Msvm_SyntheticEthernetPortSettingData",
                                [("InstanceID", iid)]),
                PoolID="", ResourceSubType=
                "Microsoft:Hyper-V:Ethernet Connection",
                ResourceType=33), h))
        return out

    def switches(self, h):
        return [Inst("Msvm_VirtualEthernetSwitch", dict(
            Caption="Virtual Switch",
            CreationClassName="Msvm_VirtualEthernetSwitch",
            Description="Microsoft Virtual Switch", ElementName=s["name"],
            EnabledState=2, HealthState=5, Name=s["guid"],
            OperationalStatus=[2]), h) for s in h["switches"]]

    def mig_service(self, h):
        active_vm = sum(1 for j in self.jobs.values()
                        if j["host"] == h["name"] and j["running"]
                        and j.get("mtype") in (32768, 32771))
        active_st = sum(1 for j in self.jobs.values()
                        if j["host"] == h["name"] and j["running"]
                        and j.get("mtype") == 32769)
        return Inst("Msvm_VirtualSystemMigrationService", dict(
            ActiveStorageMigrationCount=active_st,
            ActiveVirtualSystemMigrationCount=active_vm,
            Caption="Virtual System Migration Service",
            CreationClassName="Msvm_VirtualSystemMigrationService",
            Description="Microsoft Virtual System Migration Service",
            ElementName="Virtual System Migration Service", EnabledState=2,
            MigrationServiceListenerIPAddressList=list(h["ips"]),
            Name="vsmigrationsvc", SystemCreationClassName="Msvm_ComputerSystem",
            SystemName=h["name"]), h)

    def mig_service_sd(self, h):
        m = h["migration"]
        return Inst("Msvm_VirtualSystemMigrationServiceSettingData", dict(
            AuthenticationType=m.get("auth", 1),
            Caption="Virtual System Migration Service Setting Data",
            Description="Microsoft Virtual System Migration Service Settings",
            ElementName="Virtual System Migration Service Settings",
            EnableCompression=True, EnableSmbTransport=False,
            EnableVirtualSystemMigration=m.get("enabled", True),
            InstanceID="Microsoft:" + h["name"],
            MaximumActiveStorageMigration=m.get("max_storage", 2),
            MaximumActiveVirtualSystemMigration=m.get("max_vm", 2)), h)

    def mig_templates(self, h):
        out = []
        for t in (32768, 32769, 32770, 32771):
            out.append(Inst("Msvm_VirtualSystemMigrationSettingData", dict(
                AvoidRemovingVHDs=False, Bandwidth=None, BandwidthUnit=None,
                Caption="Virtual System Migration Setting Data",
                Description="Microsoft Virtual System Migration Setting Data",
                DestinationIPAddressList=None,
                DestinationPlannedVirtualSystemId=None,
                ElementName="Virtual System Migration Setting Data",
                EnableCompression=True,
                InstanceID="Microsoft:%s\\%d" % (h["name"], t),
                MigrationType=t, OtherTransportType=None, Priority=0,
                RemoveSourceUnmanagedVhds=False,
                RetainVhdCopiesOnSource=False, TransportType=5,
                UnmanagedVhds=None), h))
        return out

    def vsms(self, h):
        return Inst("Msvm_VirtualSystemManagementService", dict(
            Caption="Virtual Machine Management Service",
            CreationClassName="Msvm_VirtualSystemManagementService",
            Description="Service used to manage virtual machines",
            ElementName="Virtual Machine Management Service",
            EnabledState=2, Name="vmms",
            SystemCreationClassName="Msvm_ComputerSystem",
            SystemName=h["name"]), h)

    def vsms_sd(self, h):
        return Inst("Msvm_VirtualSystemManagementServiceSettingData", dict(
            Caption="Hyper-V Virtual System Management Service",
            DefaultExternalDataRoot=h["default_vm_path"],
            DefaultVirtualHardDiskPath=h["default_vhd_path"],
            Description="Settings for the Virtual System Management Service",
            ElementName="Hyper-V Virtual System Management Service",
            InstanceID="Microsoft:host"), h)

    def volumes(self, h):
        out = []
        for vol in h["volumes"]:
            letter = vol["name"][:2] if re.match(r"^[A-Z]:\\$", vol["name"]) \
                else None
            out.append(Inst("Win32_Volume", dict(
                BlockSize=4096, Capacity=vol["capacity"],
                Caption=vol["name"], DeviceID=vol["device"],
                DriveLetter=letter, DriveType=3,
                FileSystem="CSVFS" if vol.get("shared") else "NTFS",
                FreeSpace=vol["free"], Label=vol["label"], Name=vol["name"],
                SystemName=h["name"]), h))
        return out

    def win32_cs(self, h):
        return Inst("Win32_ComputerSystem", dict(
            Caption=h["name"], DNSHostName=h["name"].lower(),
            Domain=h["fqdn"].partition(".")[2], Manufacturer="Contoso",
            Model="Contoso Server 2U", Name=h["name"],
            NumberOfLogicalProcessors=h["cpus"],
            NumberOfProcessors=h.get("sockets", 1),
            TotalPhysicalMemory=h["memory_total"]), h)

    def win32_os(self, h):
        product, _, version = h["os"].rpartition(" ")
        return Inst("Win32_OperatingSystem", dict(
            BuildNumber=version.rpartition(".")[2], Caption=product,
            CSName=h["name"], FreePhysicalMemory=h["memory_free"] // 1024,
            Name=product + "|C:\\Windows|\\Device\\Harddisk0\\Partition2",
            TotalVisibleMemorySize=h["memory_total"] // 1024,
            Version=version), h)

    def win32_processors(self, h):
        n = max(1, h.get("sockets", 1))
        model = h.get("cpu_model", "")
        return [Inst("Win32_Processor", dict(
            DeviceID="CPU%d" % i, LoadPercentage=h.get("cpu_load", 0),
            Manufacturer="AuthenticAMD" if "AMD" in model else "GenuineIntel",
            MaxClockSpeed=2000, Name=model,
            NumberOfCores=h["cpus"] // n // 2 or 1,
            NumberOfLogicalProcessors=h["cpus"] // n,
            SocketDesignation="CPU%d" % i), h) for i in range(n)]

    def job_inst(self, j):
        h = self.hosts[j["host"]]
        el = max(0.0, (j["end"] or time.time()) - j["start"])
        props = dict(
            Cancellable=j["cancellable"], Caption=j["caption"],
            DeleteOnCompletion=True, Description=j["caption"],
            ElapsedTime=("iv", el), ElementName=j["caption"],
            ErrorCode=j["error_code"],
            ErrorDescription=j["error_description"],
            ErrorSummaryDescription=j["error_summary"],
            InstanceID=j["id"], JobState=j["state"],
            JobStatus=j["status"], JobType=j["type"], Name=j["caption"],
            OperationalStatus=[2] if j["state"] in (2, 3, 4, 7) else [6],
            PercentComplete=int(j["percent"]),
            StartTime=("dt", j["start_iso"]),
            StatusDescriptions=[j["status"]],
            TimeBeforeRemoval=("iv", 300.0),
            TimeOfLastStateChange=("dt", j["changed_iso"]),
            TimeSubmitted=("dt", j["start_iso"]))
        if j["cls"] == "Msvm_MigrationJob":
            props.update(DestinationHost=j.get("dest"),
                         MigrationType=j.get("mtype"),
                         NewResourceSettingData=j.get("nrsd") or None,
                         NewSystemSettingData=j.get("nssd"),
                         VirtualSystemName=j.get("vm"))
        return Inst(j["cls"], props, h)

    def all_instances(self, h, cls):
        """Every instance of cls (or a subclass) on host h."""
        out = []

        def want(c):
            return is_a(c, cls)
        if want("Msvm_ComputerSystem"):
            out.append(self.host_cs(h))
            out += [self.vm_cs(h, v) for v in h["vms"].values()]
        if want("Msvm_VirtualSystemSettingData"):
            for v in h["vms"].values():
                out.append(self.vm_vssd(h, v))
                out += [self.vm_vssd(h, v, s) for s in v["snapshots"]]
        if want("Msvm_StorageAllocationSettingData"):
            for v in h["vms"].values():
                out += self.vm_sasds(h, v)
        if want("Msvm_MemorySettingData"):
            out += [self.vm_memory(h, v) for v in h["vms"].values()]
        if want("Msvm_ProcessorSettingData"):
            out += [self.vm_processor(h, v) for v in h["vms"].values()]
        if want("Msvm_SyntheticEthernetPortSettingData"):
            for v in h["vms"].values():
                out += self.vm_ports(h, v)
        if want("Msvm_EthernetPortAllocationSettingData"):
            for v in h["vms"].values():
                out += self.vm_epasds(h, v)
        if want("Msvm_ResourceAllocationSettingData"):
            out += sim_vsms.all_rasds(self, h)
        if want("Msvm_VirtualEthernetSwitch"):
            out += self.switches(h)
        if want("Msvm_VirtualSystemMigrationService"):
            out.append(self.mig_service(h))
        if want("Msvm_VirtualSystemMigrationServiceSettingData"):
            out.append(self.mig_service_sd(h))
        if want("Msvm_VirtualSystemMigrationSettingData"):
            out += self.mig_templates(h)
        if want("Msvm_VirtualSystemManagementService"):
            out.append(self.vsms(h))
        if want("Msvm_ImageManagementService"):
            out.append(Inst("Msvm_ImageManagementService", dict(
                Caption="Hyper-V Image Management Service",
                CreationClassName="Msvm_ImageManagementService",
                Description="Hyper-V Image Management Service",
                ElementName="Hyper-V Image Management Service",
                EnabledState=2, Name="vhdsvc",
                SystemCreationClassName="Msvm_ComputerSystem",
                SystemName=h["name"]), h))
        if want("Msvm_VirtualSystemManagementServiceSettingData"):
            out.append(self.vsms_sd(h))
        for j in self.jobs.values():
            if j["host"] == h["name"] and is_a(j["cls"], cls):
                out.append(self.job_inst(j))
        if want("Win32_Volume"):
            out += self.volumes(h)
        if want("Win32_ComputerSystem"):
            out.append(self.win32_cs(h))
        if want("Win32_OperatingSystem"):
            out.append(self.win32_os(h))
        if want("Win32_Processor"):
            out += self.win32_processors(h)
        return out

    def get_instance(self, h, cls, sel):
        if cls == "Win32_LogicalFileSecuritySetting":
            f = self.get_file(h, sel.get("Path", ""))
            if not f or set(sel) != {"Path"}:
                raise fault_not_found()
            return Inst(cls, dict(
                Caption="Security settings of " + f["path"],
                ControlFlags=0x8004, Description="Security settings of " +
                f["path"], OwnerPermissions=True, Path=f["path"],
                SettingID=f["path"]), h)
        if cls in ("CIM_DataFile", "Win32_Directory"):
            f = self.get_file(h, sel.get("Name", ""))
            if not f or set(sel) != {"Name"} or \
                    f["dir"] != (cls == "Win32_Directory"):
                raise fault_not_found()
            p = f["path"]
            props = dict(Caption=p, CreationClassName=cls, Drive=p[:2].lower(),
                         Extension=basename(p).rpartition(".")[2]
                         if "." in basename(p) else "",
                         FileName=basename(p).rpartition(".")[0]
                         if "." in basename(p) else basename(p),
                         FileType="File Folder" if f["dir"] else
                         "Virtual Hard Disk file", Name=p,
                         Path=dirname(p)[2:] + "\\")
            if cls == "CIM_DataFile":
                rp = sim_vsms.real_path(h, p)
                props["FileSize"] = os.path.getsize(rp) \
                    if rp is not None and os.path.isfile(rp) else f["size"]
            return Inst(cls, props, h)
        if cls not in SCHEMA:
            raise fault_not_found()
        want = key_of(cls)
        if set(sel) - set(want):
            raise fault_bad_selectors()
        for inst in self.all_instances(h, cls):
            if inst.cls != cls and not cls.endswith("ConcreteJob"):
                continue
            if all(str(inst.props.get(k, "")).lower() == v.lower()
                   for k, v in sel.items()) and sel:
                return inst
        raise fault_not_found()

    def associators(self, h, cls, keys, assoc, result):
        """ASSOCIATORS OF {cls.keys} WHERE AssocClass = A ResultClass = R."""
        src = None
        try:
            src = self.get_instance(h, cls, keys)
        except Fault:
            return []
        out = []
        if cls == "Msvm_ComputerSystem":
            v = h["vms"].get(src.props["Name"])
            if assoc in (None, "Msvm_SettingsDefineState") and v:
                out.append(self.vm_vssd(h, v))
            if assoc in (None, "Msvm_AffectedJobElement") and v:
                for j in self.jobs.values():
                    if j["host"] == h["name"] and j.get("vm") == v["guid"]:
                        out.append(self.job_inst(j))
            if assoc in (None, "Msvm_SnapshotOfVirtualSystem") and v:
                out += [self.vm_vssd(h, v, s) for s in v["snapshots"]]
        elif cls == "Msvm_VirtualSystemSettingData":
            guid = src.props["VirtualSystemIdentifier"]
            v = h["vms"].get(guid)
            if v and assoc in (None, "Msvm_VirtualSystemSettingDataComponent") \
                    and src.props["VirtualSystemType"].endswith(
                        "System:Realized"):
                out += self.vm_sasds(h, v) + self.vm_ports(h, v) + \
                    self.vm_epasds(h, v) + [self.vm_memory(h, v),
                                            self.vm_processor(h, v)] + \
                    sim_vsms.rasds(self, h, v)
        if result:
            out = [i for i in out if is_a(i.cls, result)]
        return out

    # -- jobs ---------------------------------------------------------------

    def new_job(self, h, cls, jtype, caption, **kw):
        jid = str(uuid.uuid4()).upper()
        t = time.time()
        j = dict(id=jid, host=h["name"], cls=cls, type=jtype, caption=caption,
                 state=4, percent=0, error_code=0, error_description=None,
                 error_summary=None, status="Job is running",
                 cancellable=True, start=t, end=None, start_iso=now_iso(),
                 changed_iso=now_iso(), running=True, cancel=None)
        j.update(kw)
        self.jobs[jid] = j
        return j

    def finish_job(self, j, state, code=0, desc=None, summary=None):
        j["state"] = state
        j["running"] = False
        j["end"] = time.time()
        j["changed_iso"] = now_iso()
        j["error_code"] = code
        j["error_description"] = desc
        j["error_summary"] = summary
        j["status"] = {7: "Job completed successfully", 8: "Job terminated",
                       9: "Job was killed", 10: "Job failed"}.get(
                           state, "Job is running")
        if j.get("on_end"):
            j["on_end"](j)

    def tick(self):
        with self.lock:
            t = time.time()
            for j in list(self.jobs.values()):
                if not j["running"]:
                    if j["end"] and t - j["end"] > 300:
                        del self.jobs[j["id"]]      # TimeBeforeRemoval
                    continue
                if j.get("manual"):
                    continue
                if j.get("cancel"):
                    self.finish_job(j, j["cancel"], 0, None, None)
                    continue
                dur = j.get("duration", self.job_seconds)
                pct = min(100, int(100 * (t - j["start"]) / max(dur, 0.01)))
                fail_at = j.get("fail_at")
                if fail_at is not None and pct >= fail_at:
                    j["percent"] = fail_at
                    self.finish_job(j, 10, j.get("fail_code", 32768),
                                    j.get("fail_desc"), j.get("fail_summary"))
                    continue
                j["percent"] = pct
                if pct >= 100:
                    err = None
                    if j.get("complete"):
                        err = j["complete"](j)
                    if err:
                        j["percent"] = err[2] if len(err) > 2 else 99
                        self.finish_job(j, 10, err[0], err[1], err[1])
                    else:
                        self.finish_job(j, 7)

    # -- faults -------------------------------------------------------------

    def take_fault(self, host, action, kinds, raw=b""):
        with self.lock:
            for f in self.faults:
                if f["kind"] not in kinds:
                    continue
                if f.get("host") and f["host"].lower() != host.lower():
                    continue
                if f.get("action") and f["action"] not in (action or ""):
                    continue
                if f.get("match") and f["match"].encode() not in raw:
                    continue
                if f.get("skip", 0) > 0:
                    f["skip"] -= 1
                    continue
                f["count"] = f.get("count", 1) - 1
                if f["count"] <= 0:
                    self.faults.remove(f)
                return f
        return None

    def note_auth(self, host, scheme, user, good, why):
        with self.lock:
            self.auth_log.append(dict(host=host, scheme=scheme, user=user,
                                      ok=good, detail=why))
            del self.auth_log[:-500]

    def snapshot(self):
        with self.lock:
            out = dict(hosts={}, jobs=[], faults=copy.deepcopy(self.faults),
                       requests=list(self.log), auth=list(self.auth_log))
            for name, h in self.hosts.items():
                hh = {k: copy.deepcopy(v) for k, v in h.items()
                      if k not in ("files", "vms")}
                hh["vms"] = copy.deepcopy(list(h["vms"].values()))
                hh["files"] = []
                for f in h["files"].values():
                    ff = copy.deepcopy(f)
                    for a in ff["acl"]:
                        d = WELL_KNOWN.get(a["sid"])
                        if a["sid"].startswith("S-1-5-83-1-"):
                            d = ("NT VIRTUAL MACHINE", self.guid_of_sid(
                                a["sid"]))
                        a["account"] = "\\".join(x for x in d if x) if d \
                            else a["sid"]
                    hh["files"].append(ff)
                out["hosts"][name] = hh
            for j in self.jobs.values():
                out["jobs"].append({k: v for k, v in j.items()
                                    if not callable(v)})
            return out

    def guid_of_sid(self, sid):
        r = [int(x) for x in sid.split("-")[5:9]]
        return str(uuid.UUID(bytes_le=struct.pack("<4I", *r))).upper()

# ---------------------------------------------------------------------------
# Serialization (docs/design/hyperv.md §1.7)


def ser_value(prefix, name, typ, val):
    tag = "%s:%s" % (prefix, name)
    if val is None:
        return '<%s xsi:nil="true"/>' % tag
    base = typ.rstrip("[]")
    if typ.endswith("[]"):
        if not val:
            return '<%s xsi:nil="true"/>' % tag
        return "".join(ser_value(prefix, name, base, x) for x in val)
    if base == "boolean":
        return "<%s>%s</%s>" % (tag, "true" if val else "false", tag)
    if base == "datetime":
        return "<%s><cim:Datetime>%s</cim:Datetime></%s>" % (tag, val[1], tag)
    if base == "interval":
        s = val[1]
        return ("<%s><cim:Interval>P0DT0H0M%.6fS</cim:Interval></%s>"
                % (tag, s, tag))
    return "<%s>%s</%s>" % (tag, esc(val), tag)


def ser_instance(inst, prefix="p"):
    uri = class_uri(inst.ns, inst.cls)
    schema = SCHEMA[inst.cls]
    body = "".join(ser_value(prefix, k, schema[k], inst.props.get(k))
                   for k in sorted(schema))
    return ('<%s:%s xmlns:%s="%s" xmlns:cim="%s" xmlns:xsi="%s" '
            'xsi:type="%s:%s_Type">%s</%s:%s>'
            % (prefix, inst.cls, prefix, esc(uri), NS_CIM, NS_XSI, prefix,
               inst.cls, body, prefix, inst.cls))


def ser_epr_children(inst):
    sel = "".join('<w:Selector Name="%s">%s</w:Selector>' % (esc(k), esc(v))
                  for k, v in inst.keys())
    return ("<a:Address>%s</a:Address><a:ReferenceParameters>"
            "<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet>%s</w:SelectorSet>"
            "</a:ReferenceParameters>"
            % (ANON, esc(class_uri(inst.ns, inst.cls)), sel))


def ser_epr(inst):
    return "<a:EndpointReference>%s</a:EndpointReference>" % \
        ser_epr_children(inst)


def ser_item(inst, mode):
    if mode == "EnumerateEPR":
        return ser_epr(inst)
    if mode == "EnumerateObjectAndEPR":
        return "<w:Item>%s%s</w:Item>" % (ser_instance(inst), ser_epr(inst))
    return ser_instance(inst)


def cimxml_instance(cls, props):
    """DSP0201 CIM-XML of an instance (host output form, docs/design/hyperv.md §1.8)."""
    schema = SCHEMA[cls]
    out = ['<INSTANCE CLASSNAME="%s">' % cls]
    for k in sorted(props):
        typ = schema.get(k, "string")
        base = typ.rstrip("[]").replace("interval", "datetime")
        v = props[k]
        if typ.endswith("[]"):
            out.append('<PROPERTY.ARRAY NAME="%s" TYPE="%s">' % (k, base))
            if v is not None:
                out.append("<VALUE.ARRAY>%s</VALUE.ARRAY>" % "".join(
                    "<VALUE>%s</VALUE>" % esc(x) for x in v))
            out.append("</PROPERTY.ARRAY>")
        else:
            out.append('<PROPERTY NAME="%s" TYPE="%s">' % (k, base))
            if v is not None:
                if isinstance(v, bool):
                    v = "TRUE" if v else "FALSE"
                out.append("<VALUE>%s</VALUE>" % esc(v))
            out.append("</PROPERTY>")
    out.append("</INSTANCE>")
    return "".join(out)


def parse_cimxml(text):
    """Parse an embedded instance (CIM-XML, DSP0201) given as a method
    parameter.  Returns (classname, {prop: value or [values]}).  Raises
    ValueError on anything that is not a well-formed INSTANCE."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("DTD not allowed")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as e:
        raise ValueError("embedded instance is not XML: %s" % e)
    if root.tag != "INSTANCE" or not root.get("CLASSNAME"):
        raise ValueError("embedded instance must be <INSTANCE CLASSNAME=...>")
    cls = root.get("CLASSNAME")
    props = {}
    for p in root:
        name = p.get("NAME")
        if not name or not p.get("TYPE"):
            raise ValueError("PROPERTY without NAME/TYPE")
        if p.tag == "PROPERTY":
            v = p.find("VALUE")
            props[name] = v.text or "" if v is not None else None
        elif p.tag == "PROPERTY.ARRAY":
            va = p.find("VALUE.ARRAY")
            props[name] = [x.text or "" for x in va.findall("VALUE")] \
                if va is not None else None
        elif p.tag == "PROPERTY.REFERENCE":
            props[name] = None
        elif p.tag == "QUALIFIER":
            continue
        else:
            raise ValueError("unexpected element %s in INSTANCE" % p.tag)
    return cls, props

# ---------------------------------------------------------------------------
# WQL (docs/design/hyperv.md §1.6, §7)

TOKEN = re.compile(r"""\s*(?:(?P<str>'[^']*'|"[^"]*")|(?P<num>-?\d+)|"""
                   r"""(?P<op><>|!=|=|\(|\)|\{|\}|,|\.|\*)|(?P<word>[\w:]+))""")


def tokenize(s):
    pos, out = 0, []
    s = s.strip()
    while pos < len(s):
        m = TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError("unexpected character at %d" % pos)
        pos = m.end()
        kind = m.lastgroup
        v = m.group(kind)
        if kind == "str":
            v = v[1:-1]
        out.append((kind, v))
    return out


class WqlQuery:
    def __init__(self, text):
        self.toks = tokenize(text)
        self.i = 0
        self.assoc = None
        self.result = None
        self.where = None
        self.src_cls = None
        self.src_keys = {}
        first = self.word()
        if first.upper() == "SELECT":
            if self.next() != ("op", "*"):
                raise ValueError("only SELECT * is supported")
            self.expect_word("FROM")
            self.cls = self.word()
            if self.peek() is not None:
                self.expect_word("WHERE")
                self.where = self.parse_or()
            self.kind = "select"
        elif first.upper() == "ASSOCIATORS":
            self.expect_word("OF")
            self.expect_op("{")
            self.src_cls = self.word()
            self.expect_op(".")
            while True:
                k = self.word()
                self.expect_op("=")
                kind, v = self.next()
                if kind not in ("str", "num"):
                    raise ValueError("key value expected")
                self.src_keys[k] = v
                t = self.next()
                if t == ("op", "}"):
                    break
                if t != ("op", ","):
                    raise ValueError("',' or '}' expected")
            if self.peek() is not None:
                self.expect_word("WHERE")
                while self.peek() is not None:
                    w = self.word()
                    self.expect_op("=")
                    val = self.word()
                    if w.lower() == "assocclass":
                        self.assoc = val
                    elif w.lower() == "resultclass":
                        self.result = val
                    else:
                        raise ValueError("unsupported ASSOCIATORS clause " + w)
            self.kind = "assoc"
            self.cls = self.result
        else:
            raise ValueError("SELECT or ASSOCIATORS OF expected")
        if self.peek() is not None:
            raise ValueError("trailing tokens")

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self):
        t = self.peek()
        if t is None:
            raise ValueError("unexpected end of query")
        self.i += 1
        return t

    def word(self):
        kind, v = self.next()
        if kind != "word":
            raise ValueError("identifier expected, got %r" % v)
        return v

    def expect_word(self, w):
        if self.word().upper() != w:
            raise ValueError(w + " expected")

    def expect_op(self, o):
        if self.next() != ("op", o):
            raise ValueError("'%s' expected" % o)

    def parse_or(self):
        left = self.parse_and()
        while self.peek() and self.peek()[0] == "word" and \
                self.peek()[1].upper() == "OR":
            self.next()
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self):
        left = self.parse_term()
        while self.peek() and self.peek()[0] == "word" and \
                self.peek()[1].upper() == "AND":
            self.next()
            left = ("and", left, self.parse_term())
        return left

    def parse_term(self):
        if self.peek() == ("op", "("):
            self.next()
            e = self.parse_or()
            self.expect_op(")")
            return e
        if self.peek() and self.peek()[1].upper() == "NOT":
            self.next()
            return ("not", self.parse_term())
        prop = self.word()
        kind, op = self.next()
        if op not in ("=", "<>", "!=") or kind != "op":
            raise ValueError("comparison operator expected")
        kind, v = self.next()
        if kind == "word" and v.upper() in ("TRUE", "FALSE", "NULL"):
            v = v.upper()
        elif kind not in ("str", "num"):
            raise ValueError("literal expected")
        return ("cmp", prop, op, v)

    def match(self, inst, e=None):
        e = self.where if e is None else e
        if e is None:
            return True
        if e[0] == "and":
            return self.match(inst, e[1]) and self.match(inst, e[2])
        if e[0] == "or":
            return self.match(inst, e[1]) or self.match(inst, e[2])
        if e[0] == "not":
            return not self.match(inst, e[1])
        _, prop, op, lit = e
        props = {k.lower(): v for k, v in inst.props.items()}
        val = props.get(prop.lower())
        if isinstance(val, tuple):
            val = val[1]
        if lit == "NULL":
            eq = val is None
        elif isinstance(val, bool):
            eq = (lit == "TRUE") == val
        elif isinstance(val, list):
            eq = any(str(x).lower() == lit.lower() for x in val)
        else:
            eq = val is not None and str(val).lower() == lit.lower()
        return eq if op == "=" else not eq

# ---------------------------------------------------------------------------
# Request parsing


class Req:
    pass


def parse_request(raw):
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise Fault("s:Sender", "DTDs are not allowed in SOAP messages",
                    code=2150858817, http=400)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise Fault("w:SchemaValidationError",
                    "The WS-Management service cannot process the request "
                    "because the XML is invalid. (%s)" % e,
                    code=2150858813, http=400)
    if root.tag != q(NS_S, "Envelope"):
        if root.tag.endswith("}Envelope"):
            raise Fault("s:VersionMismatch", "The SOAP envelope version is "
                        "not supported.", http=400, sender=None)
        raise fault_schema("root element is not s:Envelope")
    header = root.find(q(NS_S, "Header"))
    body = root.find(q(NS_S, "Body"))
    if body is None:
        raise fault_schema("s:Body missing")
    r = Req()
    r.header = header
    r.body = body
    r.msgid = None
    r.action = None
    r.uri = None
    r.selectors = {}
    r.max_env = None
    if header is not None:
        for h in header:
            key = tuple(h.tag[1:].split("}", 1)) if h.tag.startswith("{") \
                else ("", h.tag)
            mu = h.get(q(NS_S, "mustUnderstand"), "false").lower()
            if key not in KNOWN_HEADERS and mu in ("true", "1"):
                f = Fault("s:MustUnderstand",
                          "The WS-Management service cannot process a "
                          "SOAP header in the request that is marked as "
                          "mustUnderstand by the client. (%s)" % key[1],
                          code=2150858769, sender=None)
                raise f
        g = lambda ns, t: header.find(q(ns, t))
        r.action = (g(NS_A, "Action").text or "").strip() \
            if g(NS_A, "Action") is not None else None
        r.msgid = (g(NS_A, "MessageID").text or "").strip() \
            if g(NS_A, "MessageID") is not None else None
        r.uri = (g(NS_W, "ResourceURI").text or "").strip() \
            if g(NS_W, "ResourceURI") is not None else None
        r.to = g(NS_A, "To")
        r.replyto = g(NS_A, "ReplyTo")
        me = g(NS_W, "MaxEnvelopeSize")
        if me is not None:
            try:
                r.max_env = int((me.text or "").strip())
            except ValueError:
                raise fault_schema("w:MaxEnvelopeSize is not a number")
        ss = g(NS_W, "SelectorSet")
        if ss is not None:
            for s in ss:
                if s.tag != q(NS_W, "Selector") or not s.get("Name"):
                    raise fault_bad_selectors()
                if s.get("Name") in r.selectors:
                    raise Fault("w:InvalidSelectors", "The WS-Management "
                                "service cannot process the request because "
                                "the request contained duplicate selectors.",
                                code=2150858843)
                r.selectors[s.get("Name")] = (s.text or "").strip()
    return r


def uri_class(uri):
    if not uri or not uri.startswith(URI_BASE):
        return None, None
    rest = uri[len(URI_BASE):]
    ns, _, cls = rest.rpartition("/")
    return ns.lower(), cls


def elem_text(e):
    if e is None:
        return None
    if e.get(q(NS_XSI, "nil"), "").lower() == "true":
        return None
    return e.text or ""


def parse_epr_param(e):
    """A REF parameter: a:Address + a:ReferenceParameters directly under the
    parameter element (docs/design/hyperv.md §1.8: a wrapping a:EndpointReference is a
    SchemaValidationError on a real host)."""
    if e.find(q(NS_A, "EndpointReference")) is not None:
        raise fault_schema("EPR parameter must not be wrapped in "
                           "a:EndpointReference")
    rp = e.find(q(NS_A, "ReferenceParameters"))
    if e.find(q(NS_A, "Address")) is None or rp is None:
        raise fault_schema("EPR parameter needs a:Address and "
                           "a:ReferenceParameters")
    uri = rp.find(q(NS_W, "ResourceURI"))
    ss = rp.find(q(NS_W, "SelectorSet"))
    sel = {}
    if ss is not None:
        for s in ss.findall(q(NS_W, "Selector")):
            sel[s.get("Name")] = (s.text or "").strip()
    return (uri.text or "").strip() if uri is not None else None, sel


# ---------------------------------------------------------------------------
# Envelope writers


def envelope(action, relates, body, extra_ns=""):
    return ('<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" '
            'xmlns:n="%s" xmlns:w="%s" xmlns:p="%s"%s><s:Header>'
            '<a:Action>%s</a:Action><a:MessageID>uuid:%s</a:MessageID>'
            '<a:To>%s</a:To>%s</s:Header><s:Body>%s</s:Body></s:Envelope>'
            % (NS_S, NS_A, NS_N, NS_W, NS_P, extra_ns, esc(action),
               str(uuid.uuid4()).upper(), ANON,
               "<a:RelatesTo>%s</a:RelatesTo>" % esc(relates)
               if relates else "", body))


def fault_envelope(f, relates, machine):
    code = "s:Sender" if f.sender else ("s:Receiver" if f.sender is False
                                        else "s:VersionMismatch")
    if f.sender is None and f.subcode == "s:MustUnderstand":
        code = "s:MustUnderstand"
    sub = ""
    if f.subcode and f.subcode not in ("s:VersionMismatch",
                                       "s:MustUnderstand", "s:Sender"):
        sub = "<s:Subcode><s:Value>%s</s:Value></s:Subcode>" % f.subcode
    detail = ""
    if f.code is not None:
        inner = "<f:Message>%s</f:Message>" % esc(f.reason)
        if f.provider:
            inner = ('<f:Message><f:ProviderFault provider="WMIv1 plugin for '
                     'Windows Remote Management " path="%%systemroot%%\\'
                     'system32\\WsmWmiPl.dll"><f:WSManFault xmlns:f="%s" '
                     'Code="%d" Machine="%s"><f:Message>%s</f:Message>'
                     '</f:WSManFault></f:ProviderFault></f:Message>'
                     % (NS_F, f.provider[1], esc(machine),
                        esc(f.provider[0])))
        detail = ('<s:Detail><f:WSManFault xmlns:f="%s" Code="%d" '
                  'Machine="%s">%s</f:WSManFault>%s</s:Detail>'
                  % (NS_F, f.code, esc(machine), inner, f.detail_extra))
    body = ('<s:Fault><s:Code><s:Value>%s</s:Value>%s</s:Code><s:Reason>'
            '<s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>'
            % (code, sub, esc(f.reason), detail))
    return envelope(f.action, relates, body,
                    ' xmlns:e="%s"' % NS_X)

# ---------------------------------------------------------------------------
# Operations


class Service:
    def __init__(self, sim, host_name):
        self.sim = sim
        self.hname = host_name

    @property
    def h(self):
        return self.sim.hosts[self.hname]

    def handle(self, raw):
        """Returns (http status, body bytes)."""
        r = None
        try:
            r = parse_request(raw)
            # Identify (DSP0226 §11) has no addressing headers.
            ident = r.body.find(q(NS_ID, "Identify"))
            if ident is not None and r.action is None:
                return 200, self.identify().encode()
            if r.action is None or r.msgid is None or r.replyto is None \
                    or r.to is None:
                missing = [n for n, v in (("Action", r.action),
                                          ("MessageID", r.msgid),
                                          ("ReplyTo", r.replyto),
                                          ("To", r.to)) if v is None]
                raise Fault("a:MessageInformationHeaderRequired",
                            "A required header representing a Message "
                            "Addressing Property is not present: "
                            + ", ".join(missing), code=2150858830,
                            action=A_ADDR_FAULT)
            addr = r.replyto.find(q(NS_A, "Address"))
            if addr is None or (addr.text or "").strip() != ANON:
                raise Fault("a:InvalidMessageInformationHeader",
                            "The WS-Management service only supports the "
                            "anonymous ReplyTo address.", code=2150858830,
                            action=A_ADDR_FAULT)
            if r.uri is None:
                raise Fault("a:DestinationUnreachable", "The WS-Management "
                            "service cannot process the request because "
                            "the ResourceURI is missing.", code=2150858752)
            with self.sim.lock:
                self.sim.log.append(dict(host=self.hname, action=r.action,
                                         uri=r.uri))
                if len(self.sim.log) > 2000:
                    del self.sim.log[:1000]
                if r.action == A_GET:
                    body = self.get(r)
                elif r.action == A_ENUM:
                    body = self.enumerate(r)
                elif r.action == A_PULL:
                    body = self.pull(r)
                elif r.action == A_RELEASE:
                    body = self.release(r)
                elif r.action.startswith(URI_BASE):
                    body = self.invoke(r)
                else:
                    raise Fault("a:ActionNotSupported",
                                "The action is not supported by the "
                                "service.", code=2150858771,
                                action=A_ADDR_FAULT)
            text = envelope(r.action + "Response", r.msgid, body)
            if r.max_env and len(text.encode()) > r.max_env:
                raise Fault("w:EncodingLimit", "The response that the "
                            "WS-Management service computed exceeds the "
                            "maximum envelope size in the request.",
                            code=2150858811)
            return 200, text.encode()
        except Fault as f:
            return f.http, fault_envelope(
                f, r.msgid if r else None, self.h["fqdn"]).encode()

    def identify(self):
        # MS-WSMV 3.1.4.1.29.2: basic if Basic is on, spnego-kerberos if
        # Negotiate or Kerberos is on.
        auth = self.h.get("auth", ("basic",))
        profiles = (["basic"] if "basic" in auth else []) + \
            (["spnego-kerberos"] if "negotiate" in auth or "kerberos" in auth
             else [])
        return ('<s:Envelope xmlns:s="%s" xmlns:wsmid="%s"><s:Header/>'
                '<s:Body><wsmid:IdentifyResponse><wsmid:ProtocolVersion>%s'
                '</wsmid:ProtocolVersion><wsmid:ProductVendor>Microsoft '
                'Corporation</wsmid:ProductVendor><wsmid:ProductVersion>OS: '
                '10.0.20348 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>'
                '<wsmid:SecurityProfiles>%s</wsmid:SecurityProfiles>'
                '</wsmid:IdentifyResponse></s:Body></s:Envelope>'
                % (NS_S, NS_ID, NS_W, "".join(
                    '<wsmid:SecurityProfileName>http://schemas.dmtf.org/wbem/'
                    'wsman/1/wsman/secprofile/http/%s'
                    '</wsmid:SecurityProfileName>' % p for p in profiles)))

    # -- Get --------------------------------------------------------------

    def get(self, r):
        ns, cls = uri_class(r.uri)
        if cls is None or cls == "*":
            raise fault_not_found()
        if ns not in (V2, CIMV2) or cls not in SCHEMA or NAMESPACE_OF[cls] != ns:
            raise fault_not_found()
        if not r.selectors:
            raise fault_bad_selectors()
        inst = self.sim.get_instance(self.h, cls, r.selectors)
        if inst.cls != cls:
            inst = Inst(cls, inst.props, inst.host) if cls in SCHEMA else inst
        return ser_instance(inst)

    # -- Enumerate / Pull / Release ----------------------------------------

    def enumerate(self, r):
        en = r.body.find(q(NS_N, "Enumerate"))
        if en is None:
            raise fault_schema("n:Enumerate missing")
        mode_e = en.find(q(NS_W, "EnumerationMode"))
        mode = (mode_e.text or "").strip() if mode_e is not None else None
        if mode not in (None, "EnumerateEPR", "EnumerateObjectAndEPR"):
            raise Fault("w:UnsupportedFeature", "The specified enumeration "
                        "mode is not supported.", code=2150858760)
        flt = en.find(q(NS_W, "Filter"))
        if flt is None:
            flt = en.find(q(NS_N, "Filter"))
        ns, cls = uri_class(r.uri)
        if ns not in (V2, CIMV2):
            raise fault_not_found()
        if flt is not None:
            dialect = flt.get("Dialect", "")
            if dialect != WQL:
                raise Fault("w:FilterDialectRequestedUnavailable",
                            "The requested filter dialect is not supported.",
                            code=2150858786)
            if cls != "*" or r.selectors:
                # R4 enumerate_test.go, confirmed on a real host (docs/design/hyperv.md §1.5)
                raise Fault("w:InvalidParameter", "The WS-Management service "
                            "cannot process the request. The resource URI "
                            "cannot contain keys and the class name must "
                            "be '*' when a WQL filter is used.",
                            code=2150859002)
            try:
                wq = WqlQuery(flt.text or "")
            except ValueError as e:
                raise fault_bad_query(str(e))
            qcls = wq.src_cls if wq.kind == "assoc" else wq.cls
            if qcls not in KNOWN_QUERY_CLASSES or \
                    NAMESPACE_OF.get(qcls, V2 if qcls.startswith(
                        ("Msvm", "CIM_Res", "CIM_Con")) else CIMV2) != ns:
                raise fault_class_missing()
            if wq.kind == "assoc":
                if wq.result and wq.result not in KNOWN_QUERY_CLASSES:
                    raise fault_class_missing()
                items = self.sim.associators(self.h, wq.src_cls, wq.src_keys,
                                             wq.assoc, wq.result)
            else:
                items = [i for i in self.sim.all_instances(self.h, wq.cls)
                         if wq.match(i)]
        else:
            if cls == "*" or cls not in SCHEMA or NAMESPACE_OF[cls] != ns:
                raise fault_not_found()
            items = [i for i in self.sim.all_instances(self.h, cls)
                     if i.cls == cls]
        ctx = "uuid:" + str(uuid.uuid4()).upper()
        self.sim.enums[ctx] = dict(host=self.hname, items=items, mode=mode,
                                   t=time.time())
        body = "<n:EnumerationContext>%s</n:EnumerationContext>" % ctx
        if en.find(q(NS_W, "OptimizeEnumeration")) is not None:
            me = en.find(q(NS_W, "MaxElements"))
            n = int(me.text) if me is not None and (me.text or "").strip() \
                .isdigit() else 1
            chunk, rest = items[:n], items[n:]
            self.sim.enums[ctx]["items"] = rest
            body += "<w:Items>%s</w:Items>" % "".join(
                ser_item(i, mode) for i in chunk)
            if not rest:
                body += "<w:EndOfSequence/>"
                del self.sim.enums[ctx]
        return "<n:EnumerateResponse>%s</n:EnumerateResponse>" % body

    def _ctx(self, el):
        ce = el.find(q(NS_N, "EnumerationContext"))
        ctx = (ce.text or "").strip() if ce is not None else None
        e = self.sim.enums.get(ctx)
        if e is None or e["host"] != self.hname:
            raise Fault("n:InvalidEnumerationContext", "The enumeration "
                        "context supplied in the message is not valid.",
                        code=2150858767, sender=False, action=A_ENUM_FAULT)
        return ctx, e

    def pull(self, r):
        p = r.body.find(q(NS_N, "Pull"))
        if p is None:
            raise fault_schema("n:Pull missing")
        ctx, e = self._ctx(p)
        me = p.find(q(NS_N, "MaxElements"))
        n = 1
        if me is not None:
            try:
                n = max(1, int((me.text or "").strip()))
            except ValueError:
                raise fault_schema("n:MaxElements is not a number")
        chunk, rest = e["items"][:n], e["items"][n:]
        e["items"] = rest
        body = "<n:Items>%s</n:Items>" % "".join(
            ser_item(i, e["mode"]) for i in chunk)
        if rest:
            body = "<n:EnumerationContext>%s</n:EnumerationContext>" % ctx \
                + body
        else:
            body += "<n:EndOfSequence/>"
            del self.sim.enums[ctx]
        return "<n:PullResponse>%s</n:PullResponse>" % body

    def release(self, r):
        rel = r.body.find(q(NS_N, "Release"))
        if rel is None:
            raise fault_schema("n:Release missing")
        ctx, _ = self._ctx(rel)
        del self.sim.enums[ctx]
        return ""

    # -- Invoke (docs/design/hyperv.md §1.8) -------------------------------------------

    def invoke(self, r):
        if not r.action.startswith(r.uri + "/"):
            raise Fault("a:ActionNotSupported", "The action is not supported "
                        "by the service.", code=2150858771,
                        action=A_ADDR_FAULT)
        method = r.action[len(r.uri) + 1:]
        ns, cls = uri_class(r.uri)
        if cls not in SCHEMA or NAMESPACE_OF[cls] != ns:
            raise fault_not_found()
        inp = r.body.find(q(r.uri, method + "_INPUT"))
        if inp is None or len(r.body) != 1:
            raise fault_schema("body must hold one %s_INPUT element in the "
                               "class namespace" % method)
        params = {}
        for c in inp:
            if not c.tag.startswith("{" + r.uri + "}"):
                raise fault_schema("parameter %s not in the class namespace"
                                   % c.tag)
            name = c.tag.split("}", 1)[1]
            params.setdefault(name, []).append(c)
        handler = {
            ("Msvm_VirtualSystemMigrationService", "MigrateVirtualSystemToHost"):
                self.m_migrate,
            ("Msvm_VirtualSystemMigrationService",
             "CheckVirtualSystemIsMigratableToHost"): self.m_check,
            ("Msvm_ComputerSystem", "RequestStateChange"): self.m_vm_rsc,
            ("Msvm_ConcreteJob", "RequestStateChange"): self.m_job_rsc,
            ("Msvm_MigrationJob", "RequestStateChange"): self.m_job_rsc,
            ("Msvm_StorageJob", "RequestStateChange"): self.m_job_rsc,
            ("Win32_LogicalFileSecuritySetting", "GetSecurityDescriptor"):
                self.m_get_sd,
            ("Win32_LogicalFileSecuritySetting", "SetSecurityDescriptor"):
                self.m_set_sd,
            ("CIM_DataFile", "ChangeSecurityPermissions"): self.m_change_sp,
            ("Msvm_ImageManagementService", "GetVirtualHardDiskSettingData"):
                self.m_get_vhdsd,
            ("Win32_Directory", "ChangeSecurityPermissions"): self.m_change_sp,
        }.get((cls, method))
        if handler is None and (cls, method) in sim_vsms.HANDLERS:
            def handler(r, target, params, f=sim_vsms.HANDLERS[(cls, method)]):
                return f(self, r, target, params)
        if handler is None:
            raise Fault("a:ActionNotSupported", "The method %s is not "
                        "implemented by this simulator for %s." %
                        (method, cls), code=2150858771, action=A_ADDR_FAULT)
        # The target instance must exist.
        target = self.sim.get_instance(self.h, cls, r.selectors) \
            if r.selectors else None
        if target is None and not cls.startswith("Msvm_VirtualSystem"):
            raise fault_bad_selectors()
        out = handler(r, target, params)
        return '<p:%s_OUTPUT xmlns:p="%s">%s</p:%s_OUTPUT>' % (
            method, esc(r.uri), out, method)

    @staticmethod
    def one(params, name, required=False):
        v = params.get(name)
        if not v:
            if required:
                raise fault_schema("missing parameter " + name)
            return None
        if len(v) > 1:
            raise fault_schema("parameter %s given more than once" % name)
        return v[0]

    def m_get_vhdsd(self, r, target, params):
        """GetVirtualHardDiskSettingData(Path) -> SettingData (embedded
        Msvm_VirtualHardDiskSettingData, escaped CIM-XML), ReturnValue."""
        path = "".join(params.get("Path", [None])[0].itertext()) \
            if params.get("Path") else ""
        with self.sim.lock:
            found = self.sim.disk_chain(path)
            if found is not None and self.sim.get_file(self.h, path) is None:
                found = None
        if found is None:
            rp = sim_vsms.real_path(self.h, path)
            if rp is None or not os.path.isfile(rp) or \
                    sim_vsms.vhd_size(rp) is None:
                return "<p:ReturnValue>32768</p:ReturnValue>"
            found = (None, None, 0, sim_vsms.vhd_size(rp))
        _, parent, _, capacity = found
        capacity = sim_vsms.disk_capacity(self.h, path, capacity)
        fmt = 3 if path.lower().endswith("vhdx") else 2
        # Type 4: differencing (ParentPath set), 3: dynamic.
        inst = cimxml_instance("Msvm_VirtualHardDiskSettingData", dict(
            BlockSize=33554432, Caption="Virtual Hard Disk Setting Data",
            Description="Setting Data for a Virtual Hard Disk.",
            ElementName=basename(path), Format=fmt, InstanceID=path,
            LogicalSectorSize=512, MaxInternalSize=capacity,
            ParentPath=parent, Path=path, PhysicalSectorSize=4096,
            Type=4 if parent else 3))
        return ("<p:SettingData>%s</p:SettingData>"
                "<p:ReturnValue>0</p:ReturnValue>" % esc(inst))

    def m_check(self, r, target, params):
        code, _ = self.validate_migration(params, check_only=True)
        ok = code == 0
        return ("<p:IsMigratable>%s</p:IsMigratable><p:ReturnValue>%d"
                "</p:ReturnValue>" % ("true" if ok else "false",
                                      0 if ok else 5))

    def validate_migration(self, params, check_only=False):
        cs = self.one(params, "ComputerSystem", True)
        uri, sel = parse_epr_param(cs)
        if uri != class_uri(V2, "Msvm_ComputerSystem") or \
                sel.get("CreationClassName") != "Msvm_ComputerSystem":
            return 32773, None
        vm = self.h["vms"].get((sel.get("Name") or "").upper())
        if vm is None:
            return 32773, None
        msd_e = self.one(params, "MigrationSettingData", True)
        try:
            mcls, msd = parse_cimxml(elem_text(msd_e) or "")
        except ValueError as e:
            raise fault_schema("MigrationSettingData: %s" % e)
        if mcls != "Msvm_VirtualSystemMigrationSettingData":
            return 32776, None
        bad = set(msd) - set(SCHEMA[mcls])
        if bad:
            return 32773, None
        try:
            mtype = int(msd.get("MigrationType") or 0)
        except ValueError:
            return 32776, None
        if mtype not in (32768, 32769, 32771):
            return 32770 if mtype == 32770 else 32773, None
        dest_e = self.one(params, "DestinationHost")
        dest_name = elem_text(dest_e) if dest_e is not None else None
        dest = None
        if mtype == 32769:
            if dest_name:
                return 32773, None
        else:
            if not dest_name:
                return 32773, None
            dest = self.sim.find_host(dest_name)
            if dest is self.h:
                return 32773, None
        nrsd = []
        for e in params.get("NewResourceSettingData", []):
            try:
                c, p = parse_cimxml(elem_text(e) or "")
            except ValueError as ex:
                raise fault_schema("NewResourceSettingData: %s" % ex)
            if c not in ("Msvm_StorageAllocationSettingData",
                         "Msvm_EthernetPortAllocationSettingData"):
                return 32776, None
            if set(p) - set(SCHEMA[c]) or not p.get("InstanceID"):
                return 32773, None
            nrsd.append((c, p, elem_text(e)))
        nssd = None
        nssd_e = self.one(params, "NewSystemSettingData")
        if nssd_e is not None and elem_text(nssd_e):
            try:
                c, p = parse_cimxml(elem_text(nssd_e))
            except ValueError as ex:
                raise fault_schema("NewSystemSettingData: %s" % ex)
            if c != "Msvm_VirtualSystemSettingData" or \
                    set(p) - set(SCHEMA[c]):
                return 32773, None
            nssd = (p, elem_text(nssd_e))
        if len(vm["operational_status"]) > 1 and \
                vm["operational_status"][1] in (32768, 32769, 32770, 32772,
                                                32773, 32774):
            return 32775, None
        if vm["enabled_state"] not in (2, 3, 32768, 32769):
            return 32775, None
        if any(j["running"] and j.get("vm") == vm["guid"]
               for j in self.sim.jobs.values()):
            return 32774, None
        return 0, dict(vm=vm, mtype=mtype, msd=msd, dest_name=dest_name,
                       dest=dest, nrsd=nrsd, nssd=nssd)

    def m_migrate(self, r, target, params):
        code, m = self.validate_migration(params)
        if code:
            return "<p:ReturnValue>%d</p:ReturnValue>" % code
        sim, h, vm = self.sim, self.h, m["vm"]
        mtype = m["mtype"]
        caption = {32768: "Migrating virtual machine",
                   32769: "Moving virtual machine storage",
                   32771: "Migrating virtual machine and storage"}[mtype]
        job = sim.new_job(h, "Msvm_MigrationJob", 54 if mtype == 32769 else
                          53, caption, vm=vm["guid"], mtype=mtype,
                          dest=m["dest_name"],
                          nrsd=[x[2] for x in m["nrsd"]],
                          nssd=m["nssd"][1] if m["nssd"] else None)
        f = sim.take_fault(self.hname, "MigrateVirtualSystemToHost",
                           ("job-fail", "slow-job"))
        if f and f["kind"] == "job-fail":
            job["fail_at"] = int(f.get("at", 40))
            job["fail_code"] = int(f.get("error_code", 32768))
            job["fail_desc"] = f.get("description") or (
                "Virtual machine migration operation for '%s' failed at "
                "migration source '%s'. (Virtual machine ID %s)\n"
                "The remote procedure call failed. (0x800706BE)"
                % (vm["name"], h["name"], vm["guid"]))
            job["fail_summary"] = "Virtual machine migration operation "\
                "failed at migration source."
        job["duration"] = float(f.get("seconds", sim.job_seconds)) if f \
            else sim.job_seconds
        job["complete"] = lambda j, m=m: self.complete_migration(j, m)
        saved = list(vm["operational_status"])

        def on_end(j, vm=vm, saved=saved):
            if vm["operational_status"][1:2] == [32774]:
                vm["operational_status"] = saved
        job["on_end"] = on_end
        vm["operational_status"] = [2, 32774]
        epr = ser_epr_children(sim.job_inst(job))
        return ("<p:Job>%s</p:Job><p:ReturnValue>4096</p:ReturnValue>" % epr)

    def complete_migration(self, j, m):
        """Apply a finished migration to the world; returns None or
        (error code, description) if the destination refuses it."""
        sim, src, vm = self.sim, self.h, m["vm"]
        mtype, dest = m["mtype"], m["dest"] or self.h
        name = vm["name"]
        if vm["guid"] not in src["vms"]:
            return (32768, "The virtual machine '%s' no longer exists on "
                    "'%s'." % (name, src["name"]))
        if mtype != 32769:
            if m["dest"] is None:
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration source '%s'. (Virtual "
                        "machine ID %s)\nFailed to establish a connection "
                        "with host '%s': No such host is known. "
                        "(0x80072AF9)." % (name, src["name"], vm["guid"],
                                           m["dest_name"]), 5)
            for side in (src, dest):
                if not side["migration"].get("enabled", True):
                    return (32768, "Virtual machine migration operation for "
                            "'%s' failed at migration %s '%s'.\nThe "
                            "Virtual Machine Management Service on host "
                            "'%s' is not configured to accept migrations."
                            % (name, "source" if side is src else
                               "destination", side["name"], side["name"]),
                            5)
            ips = m["msd"].get("DestinationIPAddressList")
            if ips and not set(ips) & set(dest["ips"]):
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration source '%s'.\nFailed to "
                        "establish a connection with host '%s': No "
                        "connection could be made because the target "
                        "machine actively refused it. (0x8007274D)."
                        % (name, src["name"], dest["name"]), 5)
            if vm["guid"] in dest["vms"]:
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'.\nThe "
                        "virtual machine already exists on the destination."
                        % (name, dest["name"]), 10)
        # Network: every NIC needs a switch of the same name on dest, unless
        # remapped in NewResourceSettingData.
        remap = {}
        for c, p, _ in m["nrsd"]:
            if c == "Msvm_EthernetPortAllocationSettingData":
                hr = p.get("HostResource") or []
                _, keys = parse_wmi_path(hr[0]) if hr else (None, {})
                sw = [s for s in dest["switches"]
                      if s["guid"].lower() == keys.get("Name", "").lower()]
                if not sw:
                    return (32773, "Virtual machine migration operation for "
                            "'%s' failed: the switch in %s does not exist "
                            "on '%s'." % (name, p["InstanceID"],
                                          dest["name"]), 3)
                remap[p["InstanceID"].rsplit("\\", 1)[0].split("\\")[-1]
                      .upper()] = sw[0]["name"]
        for n in vm["nics"]:
            sw = remap.get(n["id"].upper(), n["switch"])
            if mtype != 32769 and sw not in [s["name"] for s in
                                             dest["switches"]]:
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'. "
                        "(Virtual machine ID %s)\nThe virtual machine "
                        "'%s' is not compatible with physical computer "
                        "'%s'.\nCould not find Ethernet switch '%s'."
                        % (name, dest["name"], vm["guid"], name,
                           dest["name"], sw), 5)
        # Storage: new disk paths.
        moves = {}
        for c, p, _ in m["nrsd"]:
            if c != "Msvm_StorageAllocationSettingData":
                continue
            disk = [d for d in vm["disks"] if ("Microsoft:%s\\%s\\L" % (
                vm["guid"], d["id"])).lower() == p["InstanceID"].lower()]
            if not disk:
                return (32773, "Invalid resource setting data: no disk with "
                        "InstanceID %s" % p["InstanceID"], 2)
            hr = p.get("HostResource") or []
            if len(hr) != 1 or not re.match(r"^([A-Za-z]:\\|\\\\)", hr[0]):
                return (32773, "Invalid HostResource for %s"
                        % p["InstanceID"], 2)
            moves[disk[0]["id"]] = hr[0]
        new_root = vm["config_root"]
        if m["nssd"]:
            p = m["nssd"][0]
            new_root = p.get("ConfigurationDataRoot") or new_root
        if mtype in (32769, 32771) and not moves and new_root == \
                vm["config_root"] and mtype == 32769:
            return (32773, "Nothing to move for '%s'." % name, 2)
        # Storage reach for a pure live migration.
        for d in vm["disks"]:
            target = moves.get(d["id"], d["path"])
            vol = sim.volume_of(dest, target)
            if d["id"] not in moves and dest is not src and not \
                    (vol and vol.get("shared")):
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'. "
                        "(Virtual machine ID %s)\nThe virtual machine "
                        "cannot access its storage '%s' from '%s'. "
                        "(0x80070002)." % (name, dest["name"], vm["guid"],
                                           d["path"], dest["name"]), 10)
            if vol is None:
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'. "
                        "(Virtual machine ID %s)\nThe system cannot find "
                        "the path specified: '%s'. (0x80070003)."
                        % (name, dest["name"], vm["guid"], dirname(target)),
                        10)
            if d["id"] not in moves and dest is not src and not \
                    vol.get("shared"):
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'. "
                        "(Virtual machine ID %s)\nThe virtual machine "
                        "cannot access its storage '%s' from '%s'. "
                        "(0x80070002)." % (name, dest["name"], vm["guid"],
                                           d["path"], dest["name"]), 10)
        # Space.
        need = {}
        for d in vm["disks"]:
            if d["id"] in moves:
                vol = sim.volume_of(dest, moves[d["id"]])
                need[vol["device"]] = need.get(vol["device"], 0) + d["size"]
        for vol in dest["volumes"]:
            if need.get(vol["device"], 0) > vol["free"]:
                return (32768, "Virtual machine migration operation for "
                        "'%s' failed at migration destination '%s'.\n"
                        "There is not enough space on the disk. "
                        "(0x80070070)." % (name, dest["name"]), 30)
        # Apply: files move, the VM moves. A "not-applied" fault (what:
        # disks | nics | start) completes the job and leaves that part
        # undone, as a server that accepted more than it carried out.
        na = sim.take_fault(self.hname, "MigrateVirtualSystemToHost",
                            ("not-applied",))
        skip = na.get("what") if na else None
        if skip == "disks":
            moves = {}
        if skip == "nics":
            remap = {}
        old_files = sim.vm_files(vm)
        for d in vm["disks"]:
            if d["id"] in moves:
                old = d["path"]
                f = sim.get_file(src, old)
                acl = f["acl"] if f else sim.base_acl()
                sim.adjust_free(dest, moves[d["id"]], -d["size"])
                if not m["msd"].get("RetainVhdCopiesOnSource") in ("TRUE",
                                                                   "true"):
                    sim.adjust_free(src, old, d["size"])
                    sim.del_file(src, old)
                d["path"] = moves[d["id"]]
                sim.put_file(dest, d["path"], d["size"], False,
                             self.acl_for_move(dest, vm, acl, False))
                # The differencing chain goes with its child, into its
                # folder.
                for x in d.get("parents", []):
                    f = sim.get_file(src, x["path"])
                    acl = f["acl"] if f else sim.base_acl()
                    if not m["msd"].get("RetainVhdCopiesOnSource") in (
                            "TRUE", "true"):
                        sim.adjust_free(src, x["path"], x["size"])
                        sim.del_file(src, x["path"])
                    x["path"] = path_join(dirname(d["path"]),
                                          basename(x["path"]))
                    sim.adjust_free(dest, x["path"], -x["size"])
                    sim.put_file(dest, x["path"], x["size"], False,
                                 self.acl_for_move(dest, vm, acl, False))
        if new_root != vm["config_root"]:
            for p, is_dir in old_files:
                if not p.lower().endswith((".vhdx", ".avhdx")) and \
                        not p.lower().endswith(".vhd"):
                    sim.del_file(src, p)
            vm["config_root"] = new_root
        for p, is_dir in sim.vm_files(vm):
            if sim.get_file(dest, p) is None:
                size = sim.file_size(vm, p)
                sim.put_file(dest, p, size, is_dir,
                             self.acl_for_move(dest, vm, sim.base_acl(),
                                               is_dir))
        for n in vm["nics"]:
            n["switch"] = remap.get(n["id"].upper(), n["switch"])
        if dest is not src:
            del src["vms"][vm["guid"]]
            dest["vms"][vm["guid"]] = vm
            for p, is_dir in old_files:
                vol = sim.volume_of(src, p)
                if not (vol and vol.get("shared")) and \
                        not p.lower().endswith((".vhdx", ".vhd", ".avhdx")):
                    src["files"].pop(lower_path(p), None)
        return None

    def acl_for_move(self, dest, vm, acl, is_dir):
        """Hyper-V grants the VM account on files it moves ("hyperv"); a
        host with acl_after_move = "inherit" models files that arrived
        without the grant (copied outside Hyper-V, restored from backup)."""
        base = [a for a in acl if not a["sid"].startswith(("S-1-5-83-1-",
                                                           "S-1-15-3-1024"))]
        if dest.get("acl_after_move") == "inherit":
            return base
        return base + self.sim.vm_aces(vm["guid"], is_dir)

    def m_vm_rsc(self, r, target, params):
        """Msvm_ComputerSystem.RequestStateChange (docs/design/hyperv.md
        §2.1): RequestedState 2 (Enabled) starts a VM that is off or saved,
        through a job; the other states are not modelled (32770)."""
        rs = self.one(params, "RequestedState", True)
        try:
            state = int(elem_text(rs) or "")
        except ValueError:
            return "<p:ReturnValue>32773</p:ReturnValue>"
        vm = self.h["vms"].get((target.props.get("Name") or "").upper())
        if vm is None:
            return "<p:ReturnValue>32773</p:ReturnValue>"
        if state != 2:
            return "<p:ReturnValue>32770</p:ReturnValue>"
        if vm["enabled_state"] not in (3, 32769) or \
                vm["operational_status"][1:]:
            return "<p:ReturnValue>32775</p:ReturnValue>"
        sim, h = self.sim, self.h
        job = sim.new_job(h, "Msvm_ConcreteJob", 94,
                          "Changing the state of the virtual machine",
                          vm=vm["guid"], requested_state=2)

        def complete(j, vm=vm, h=h):
            if vm["guid"] not in h["vms"]:
                return (32768, "'%s' failed to start: the virtual machine "
                        "is no longer on '%s'." % (vm["name"], h["name"]))
            # The worker process opens each file as NT VIRTUAL MACHINE\<GUID>.
            for p in sim.start_files(vm):
                f = sim.get_file(h, p)
                if f is None or not any(
                        a["sid"] == vm_sid(vm["guid"]) and a["type"] == 0 and
                        a["mask"] & VM_MASK == VM_MASK for a in f["acl"]):
                    return (32768, "'%s' failed to start. (Virtual machine "
                            "ID %s)\n'%s' could not initialize: '%s' does "
                            "not have the required security settings. Error: "
                            "'General access denied error' (0x80070005)."
                            % (vm["name"], vm["guid"], vm["name"], p))
            vm["enabled_state"] = 2
            return None
        job["complete"] = complete
        epr = ser_epr_children(sim.job_inst(job))
        return "<p:Job>%s</p:Job><p:ReturnValue>4096</p:ReturnValue>" % epr

    def m_job_rsc(self, r, target, params):
        rs = self.one(params, "RequestedState", True)
        try:
            state = int(elem_text(rs) or "")
        except ValueError:
            return "<p:ReturnValue>5</p:ReturnValue>"
        j = self.sim.jobs.get(target.props["InstanceID"])
        if state not in (4, 5):
            return "<p:ReturnValue>5</p:ReturnValue>"
        if not j["running"]:
            return "<p:ReturnValue>4097</p:ReturnValue>"
        if not j["cancellable"]:
            return "<p:ReturnValue>1</p:ReturnValue>"
        j["cancel"] = 8 if state == 4 else 9
        return "<p:ReturnValue>0</p:ReturnValue>"

    # -- file security (docs/design/hyperv.md §3.2) -------------------------------------

    def ser_sd(self, f, prefix_ns):
        sd_ns = class_uri(CIMV2, "Win32_SecurityDescriptor")
        ace_ns = class_uri(CIMV2, "Win32_ACE")
        tr_ns = class_uri(CIMV2, "Win32_Trustee")
        aces = []
        for a in f["acl"]:
            dom, name = WELL_KNOWN.get(a["sid"], (None, None))
            if a["sid"].startswith("S-1-5-83-1-"):
                dom, name = "NT VIRTUAL MACHINE", self.sim.guid_of_sid(
                    a["sid"])
            sid_b = sid_to_bytes(a["sid"])
            tr = ("<t:Domain%s<t:Name%s%s<t:SIDLength>%d</t:SIDLength>"
                  "<t:SIDString>%s</t:SIDString>"
                  % ('>%s</t:Domain>' % esc(dom) if dom is not None
                     else ' xsi:nil="true"/>',
                     '>%s</t:Name>' % esc(name) if name is not None
                     else ' xsi:nil="true"/>',
                     "".join("<t:SID>%d</t:SID>" % b for b in sid_b),
                     len(sid_b), a["sid"]))
            aces.append('<sd:DACL xmlns:ace="%s" xsi:type="ace:Win32_ACE_Type">'
                        '<ace:AccessMask>%d</ace:AccessMask><ace:AceFlags>%d'
                        '</ace:AceFlags><ace:AceType>%d</ace:AceType>'
                        '<ace:Trustee xmlns:t="%s" xsi:type="t:Win32_Trustee_Type">'
                        '%s</ace:Trustee></sd:DACL>'
                        % (ace_ns, a["mask"], a["flags"], a["type"], tr_ns,
                           tr))
        owner = ('<sd:Owner xmlns:t="%s" xsi:type="t:Win32_Trustee_Type">'
                 '<t:Domain>BUILTIN</t:Domain><t:Name>Administrators</t:Name>'
                 '%s<t:SIDLength>16</t:SIDLength><t:SIDString>S-1-5-32-544'
                 '</t:SIDString></sd:Owner>'
                 % (tr_ns, "".join("<t:SID>%d</t:SID>" % b
                                   for b in sid_to_bytes("S-1-5-32-544"))))
        return ('<p:Descriptor xmlns:sd="%s" xmlns:xsi="%s" '
                'xsi:type="sd:Win32_SecurityDescriptor_Type">'
                '<sd:ControlFlags>%d</sd:ControlFlags>%s<sd:Group xsi:nil="true"/>'
                '%s<sd:SACL xsi:nil="true"/><sd:TIME_CREATED xsi:nil="true"/>'
                '</p:Descriptor>'
                % (sd_ns, NS_XSI, 0x8004, "".join(aces), owner))

    def m_get_sd(self, r, target, params):
        f = self.sim.get_file(self.h, target.props["Path"])
        return "%s<p:ReturnValue>0</p:ReturnValue>" % self.ser_sd(f, None)

    def parse_sd(self, e):
        """Win32_SecurityDescriptor in WS-CIM element form (xsi:type'd
        nested elements, arrays as repeated elements).  Returns
        (control flags, [ace]) or raises Fault / returns None for bad
        content."""
        sd_ns = class_uri(CIMV2, "Win32_SecurityDescriptor")
        ace_ns = class_uri(CIMV2, "Win32_ACE")
        tr_ns = class_uri(CIMV2, "Win32_Trustee")
        t = e.get(q(NS_XSI, "type"), "")
        if not t.endswith(":Win32_SecurityDescriptor_Type"):
            raise fault_schema("Descriptor needs "
                               "xsi:type=Win32_SecurityDescriptor_Type")
        cf = e.find(q(sd_ns, "ControlFlags"))
        flags = int((cf.text or "0").strip()) if cf is not None else 0
        aces = []
        for a in e.findall(q(sd_ns, "DACL")):
            if not a.get(q(NS_XSI, "type"), "").endswith(":Win32_ACE_Type"):
                raise fault_schema("DACL entry needs xsi:type=Win32_ACE_Type")
            g = lambda n: a.find(q(ace_ns, n))
            try:
                mask = int(g("AccessMask").text)
                fl = int(g("AceFlags").text) if g("AceFlags") is not None \
                    else 0
                typ = int(g("AceType").text) if g("AceType") is not None \
                    else 0
            except (AttributeError, TypeError, ValueError):
                return None
            tr = g("Trustee")
            if tr is None:
                return None
            sid = None
            sidb = [int(x.text) for x in tr.findall(q(tr_ns, "SID"))
                    if (x.text or "").strip().isdigit()]
            ss = tr.find(q(tr_ns, "SIDString"))
            dom = tr.find(q(tr_ns, "Domain"))
            nm = tr.find(q(tr_ns, "Name"))
            try:
                if sidb:
                    sid = bytes_to_sid(sidb)
                elif ss is not None and (ss.text or "").strip():
                    sid = (ss.text or "").strip()
                    sid_to_bytes(sid)
                elif nm is not None:
                    d = (dom.text or "") if dom is not None else ""
                    n = (nm.text or "").strip()
                    if d.upper() == "NT VIRTUAL MACHINE":
                        sid = vm_sid(n.strip("{}"))
                    else:
                        for k, v in WELL_KNOWN.items():
                            if v[1].lower() == n.lower():
                                sid = k
            except ValueError:
                return None
            if sid is None:
                return None
            aces.append(dict(sid=sid, mask=mask, flags=fl, type=typ))
        return flags, aces

    def apply_dacl(self, path, flags, aces, recursive):
        f = self.sim.get_file(self.h, path)
        if not flags & 0x4:     # SE_DACL_PRESENT unset: DACL kept
            return
        inherited = [a for a in f["acl"] if a["flags"] & 0x10]
        f["acl"] = [dict(a, flags=a["flags"] & ~0x10) for a in aces] + \
            inherited
        vol = self.sim.volume_of(self.h, path)
        if vol and vol.get("shared"):
            for hh in self.sim.shared_hosts(vol):
                hh["files"][lower_path(path)] = f
        if recursive and f["dir"]:
            pre = lower_path(path) + "\\"
            inh = [dict(a, flags=(a["flags"] | 0x10) & ~0x3)
                   for a in aces if a["flags"] & 0x3]
            for k, ff in self.h["files"].items():
                if k.startswith(pre):
                    ff["acl"] = [a for a in ff["acl"]
                                 if not a["flags"] & 0x10] + inh

    def m_set_sd(self, r, target, params):
        d = self.one(params, "Descriptor", True)
        parsed = self.parse_sd(d)
        if parsed is None:
            return "<p:ReturnValue>21</p:ReturnValue>"
        self.apply_dacl(target.props["Path"], parsed[0], parsed[1], False)
        return "<p:ReturnValue>0</p:ReturnValue>"

    def m_change_sp(self, r, target, params):
        d = self.one(params, "SecurityDescriptor", True)
        o = self.one(params, "Option", True)
        try:
            opt = int(elem_text(o) or "")
        except ValueError:
            return "<p:ReturnValue>21</p:ReturnValue>"
        parsed = self.parse_sd(d)
        if parsed is None:
            return "<p:ReturnValue>21</p:ReturnValue>"
        if opt & 4:
            self.apply_dacl(target.props["Name"], parsed[0] | 0x4, parsed[1],
                            True)
        return "<p:ReturnValue>0</p:ReturnValue>"

# ---------------------------------------------------------------------------
# NTLM (server side), carried in the HTTP "Negotiate" scheme as WinRM
# accepts it (MS-WSMV 2.2.9.1.1.1: credentials = "Negotiate" gssapi-data;
# Windows' Negotiate package takes a raw NTLMSSP token as well as SPNEGO).
# Messages and NTLMv2 per [MS-NLMP] 2.2.1.1-2.2.1.3, 2.2.2.1, 2.2.2.7,
# 3.3.2 (NTOWFv2, NTProofStr).  MD4 per RFC 1320 (hashlib may lack it under
# OpenSSL 3).  Written for this simulator; see README.md.

NTLM_SIG = b"NTLMSSP\x00"
NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
NTLM_NEGOTIATE_OEM = 0x00000002
NTLMSSP_REQUEST_TARGET = 0x00000004
NTLMSSP_NEGOTIATE_SIGN = 0x00000010
NTLMSSP_NEGOTIATE_SEAL = 0x00000020
NTLMSSP_NEGOTIATE_NTLM = 0x00000200
NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
NTLMSSP_NEGOTIATE_VERSION = 0x02000000
NTLMSSP_NEGOTIATE_128 = 0x20000000
NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
NTLMSSP_NEGOTIATE_56 = 0x80000000
# AV_PAIR ids ([MS-NLMP] 2.2.2.1)
MSV_AV_EOL, MSV_AV_NB_COMPUTER, MSV_AV_NB_DOMAIN = 0, 1, 2
MSV_AV_DNS_COMPUTER, MSV_AV_DNS_DOMAIN, MSV_AV_TIMESTAMP = 3, 4, 7


def md4(data):
    """RFC 1320 MD4."""
    def f(x, y, z):
        return (x & y) | (~x & z)

    def g(x, y, z):
        return (x & y) | (x & z) | (y & z)

    def h(x, y, z):
        return x ^ y ^ z

    def rol(v, s):
        v &= 0xFFFFFFFF
        return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF
    msg = bytes(data) + b"\x80"
    msg += b"\x00" * ((56 - len(msg) % 64) % 64)
    msg += struct.pack("<Q", (len(data) * 8) & 0xFFFFFFFFFFFFFFFF)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):          # round 1
            k, s = i, (3, 7, 11, 19)[i % 4]
            if i % 4 == 0:
                a = rol(a + f(b, c, d) + x[k], s)
            elif i % 4 == 1:
                d = rol(d + f(a, b, c) + x[k], s)
            elif i % 4 == 2:
                c = rol(c + f(d, a, b) + x[k], s)
            else:
                b = rol(b + f(c, d, a) + x[k], s)
        for i in range(16):          # round 2
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            t = 0x5A827999
            if i % 4 == 0:
                a = rol(a + g(b, c, d) + x[k] + t, s)
            elif i % 4 == 1:
                d = rol(d + g(a, b, c) + x[k] + t, s)
            elif i % 4 == 2:
                c = rol(c + g(d, a, b) + x[k] + t, s)
            else:
                b = rol(b + g(c, d, a) + x[k] + t, s)
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):          # round 3
            k, s = order[i], (3, 9, 11, 15)[i % 4]
            t = 0x6ED9EBA1
            if i % 4 == 0:
                a = rol(a + h(b, c, d) + x[k] + t, s)
            elif i % 4 == 1:
                d = rol(d + h(a, b, c) + x[k] + t, s)
            elif i % 4 == 2:
                c = rol(c + h(d, a, b) + x[k] + t, s)
            else:
                b = rol(b + h(c, d, a) + x[k] + t, s)
        a, b = (a + aa) & 0xFFFFFFFF, (b + bb) & 0xFFFFFFFF
        c, d = (c + cc) & 0xFFFFFFFF, (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


def ntowfv2(password, user, domain):
    """[MS-NLMP] 3.3.2: HMAC_MD5(MD4(UNICODE(Passwd)),
    UNICODE(ConcatenationOf(Uppercase(User), UserDom)))."""
    return hmac.new(md4(password.encode("utf-16-le")),
                    (user.upper() + domain).encode("utf-16-le"),
                    "md5").digest()


def ntlm_field(msg, off):
    """A (Len, MaxLen, BufferOffset) payload field ([MS-NLMP] 2.2.1)."""
    ln, _, o = struct.unpack_from("<HHI", msg, off)
    if o + ln > len(msg):
        raise ValueError("NTLM field outside the message")
    return msg[o:o + ln]


def ntlm_msg_type(msg):
    if len(msg) < 12 or msg[:8] != NTLM_SIG:
        return None
    return struct.unpack_from("<I", msg, 8)[0]


def filetime_now():
    return int((time.time() + 11644473600) * 10000000)


def ntlm_challenge(neg, host):
    """CHALLENGE_MESSAGE for a workgroup (stand-alone) server: target = the
    computer's NetBIOS name, TargetInfo with NetBIOS/DNS names and
    MsvAvTimestamp.  Returns (message, server challenge)."""
    nflags = struct.unpack_from("<I", neg, 12)[0] if len(neg) >= 16 else 0
    flags = (NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_REQUEST_TARGET |
             NTLMSSP_TARGET_TYPE_SERVER | NTLMSSP_NEGOTIATE_TARGET_INFO |
             NTLMSSP_NEGOTIATE_VERSION | NTLMSSP_NEGOTIATE_ALWAYS_SIGN)
    flags |= nflags & (NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
                       NTLMSSP_NEGOTIATE_128 | NTLMSSP_NEGOTIATE_56 |
                       NTLMSSP_NEGOTIATE_KEY_EXCH | NTLMSSP_NEGOTIATE_SIGN |
                       NTLMSSP_NEGOTIATE_SEAL)
    flags |= NTLMSSP_NEGOTIATE_UNICODE if nflags & NTLMSSP_NEGOTIATE_UNICODE \
        or not nflags & NTLM_NEGOTIATE_OEM else NTLM_NEGOTIATE_OEM
    nb = host["name"].upper()
    dns = host["fqdn"]
    target = nb.encode("utf-16-le")

    def av(i, v):
        return struct.pack("<HH", i, len(v)) + v
    info = (av(MSV_AV_NB_DOMAIN, target) +
            av(MSV_AV_NB_COMPUTER, target) +
            av(MSV_AV_DNS_DOMAIN, dns.encode("utf-16-le")) +
            av(MSV_AV_DNS_COMPUTER, dns.encode("utf-16-le")) +
            av(MSV_AV_TIMESTAMP, struct.pack("<Q", filetime_now())) +
            av(MSV_AV_EOL, b""))
    chal = os.urandom(8)
    off = 56
    msg = (NTLM_SIG + struct.pack("<I", 2) +
           struct.pack("<HHI", len(target), len(target), off) +
           struct.pack("<I", flags) + chal + b"\x00" * 8 +
           struct.pack("<HHI", len(info), len(info), off + len(target)) +
           bytes([10, 0]) + struct.pack("<H", 20348) + b"\x00\x00\x00\x0f" +
           target + info)
    return msg, chal


def ntlm_verify(auth, chal, creds, host):
    """Checks an AUTHENTICATE_MESSAGE.  Only NTLMv2 responses are taken
    (LmCompatibilityLevel 5 behaviour).  Returns (ok, user, why)."""
    if len(auth) < 64 or ntlm_msg_type(auth) != 3:
        return False, None, "not an AUTHENTICATE_MESSAGE"
    nt = ntlm_field(auth, 20)
    dom = ntlm_field(auth, 28)
    usr = ntlm_field(auth, 36)
    flags = struct.unpack_from("<I", auth, 60)[0]
    enc = "utf-16-le" if flags & NTLMSSP_NEGOTIATE_UNICODE else "latin-1"
    user, domain = usr.decode(enc), dom.decode(enc)
    if len(nt) <= 24:
        return False, user, "NTLMv1 response refused"
    proof, blob = nt[:16], nt[16:]
    if blob[:2] != b"\x01\x01" or len(blob) < 28:
        return False, user, "malformed NTLMv2 blob"
    cu, cp = creds[0], creds[1]
    cdom = creds[2] if len(creds) > 2 else None
    if user.lower() != cu.lower():
        return False, user, "unknown user"
    if domain.upper() not in ("", ".", host["name"].upper()) and \
            (not cdom or domain.upper() != cdom.upper()):
        return False, user, "unknown domain"
    key = ntowfv2(cp, user, domain)
    want = hmac.new(key, chal + blob, "md5").digest()
    if not hmac.compare_digest(want, proof):
        return False, user, "bad NTLMv2 response"
    return True, user, None

# ---------------------------------------------------------------------------
# HTTP


class WsmanHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        if os.environ.get("HYPERV_SIM_DEBUG"):
            sys.stderr.write("hyperv-sim %s: %s\n" % (
                self.server.host_name, fmt % args))

    def setup(self):
        """Counts connections; a host's "idle_timeout" (seconds, HTTP.sys'
        IdleConnectionTimeout, 120 s by default on Windows) closes a
        kept-alive connection that waits longer for its next request."""
        sim, host = self.server.sim, self.server.host_name
        with sim.lock:
            hs = sim.hosts[host]
            hs["connections"] = hs.get("connections", 0) + 1
            idle = hs.get("idle_timeout")
        self.timeout = float(idle) if idle else None
        super().setup()

    def send(self, status, body, ctype="application/soap+xml;charset=UTF-8",
             extra=()):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        mutual = getattr(self, "auth_reply", None)
        if mutual and status != 401:
            self.send_header(*mutual)
        self.auth_reply = None
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.send(405, b"", extra=[("Allow", "POST")])

    def do_POST(self):
        sim = self.server.sim
        host = self.server.host_name
        if self.path.split("?")[0].lower() != "/wsman":
            self.send(404, b"")
            return
        length = self.headers.get("Content-Length")
        if length is None:
            self.send(411, b"")
            self.close_connection = True
            return
        n = int(length)
        if n > MAX_REQUEST_BYTES:
            self.send(413, b"")
            self.close_connection = True
            return
        raw = self.rfile.read(n)
        if not self.authorize(sim, host):
            return
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("application/soap+xml"):
            self.send(415, b"")
            return
        action = None
        m = re.search(rb"<(?:\w+:)?Action[^>]*>([^<]*)<", raw)
        if m:
            action = m.group(1).decode("utf-8", "replace")
        f = sim.take_fault(host, action, ("drop", "malformed", "http-status",
                                          "delay", "soap-fault"), raw)
        if f and f["kind"] == "delay":
            time.sleep(float(f.get("seconds", 5)))
            f = None
        if f and f["kind"] == "drop":
            self.hang_up()
            return
        if f and f["kind"] == "http-status":
            st = int(f.get("status", 500))
            extra = self.offers(sim, host) if st == 401 else []
            self.send(st, f.get("body", "").encode(), ctype="text/html",
                      extra=extra)
            return
        if f and f["kind"] == "soap-fault":
            # w:AccessDenied as WinRM returns it for a user without rights
            # on the WMI namespace (docs/design/hyperv.md §1.9, R4 fault_access_denied).
            m = re.search(rb"<(?:\w+:)?MessageID[^>]*>([^<]*)<", raw)
            flt = Fault(f.get("subcode", "w:AccessDenied"),
                        f.get("reason", "Access is denied. "),
                        code=int(f.get("code", 5)))
            self.send(500, fault_envelope(flt, m.group(1).decode() if m else None,
                                          sim.hosts[host]["fqdn"]).encode())
            return
        status, body = Service(sim, host).handle(raw)
        # A reply lost on the way back: the request was carried out (a
        # migration runs), the connection dies before the client reads it.
        # "style": "truncated": the connection dies in the middle of the
        # reply (headers and half the body sent).
        lf = sim.take_fault(host, action, ("lost-reply",), raw)
        if lf:
            if lf.get("style") == "truncated":
                self.send_response(status)
                self.send_header("Content-Type",
                                 "application/soap+xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
            self.hang_up()
            return
        if f and f["kind"] == "malformed":
            style = f.get("style", "truncated")
            if style == "truncated":
                body = body[:len(body) // 2]
            elif style == "entity":
                body = (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x '
                        b'SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="'
                        + NS_S.encode() + b'"><s:Body>&x;</s:Body>'
                        b'</s:Envelope>')
            elif style == "not-soap":
                body = b"<html><body>Service Unavailable</body></html>"
            else:
                body = b"\x00\xff<<garbage"
            status = 200
        # A close after the reply: "style": "idle" (default) as HTTP.sys'
        # idle timeout does it, the reply complete and no "Connection:
        # close", the socket just goes away; "header": the reply says
        # "Connection: close" (RFC 9112 §9.6) and the server closes.
        cf = sim.take_fault(host, action, ("close",), raw)
        if cf and cf.get("style") == "header":
            self.send(status, body, extra=[("Connection", "close")])
            self.hang_up()
            return
        self.send(status, body)
        if cf:
            self.hang_up()

    # -- authentication (docs/design/hyperv.md §1.10; README "Authentication") --------

    def schemes(self, sim, host):
        """The WinRM service auth config of this host (lower-case names of
        winrm/config/service/auth: basic, negotiate, kerberos; "ntlm" is an
        IIS-style extra, not a WinRM scheme)."""
        with sim.lock:
            return [a.lower() for a in sim.hosts[host].get("auth", ())]

    def offers(self, sim, host):
        have = self.schemes(sim, host)
        out = []
        if "basic" in have:
            out.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        if "negotiate" in have:
            out.append(("WWW-Authenticate", "Negotiate"))
        if "kerberos" in have:
            out.append(("WWW-Authenticate", "Kerberos"))
        if "ntlm" in have:
            out.append(("WWW-Authenticate", "NTLM"))
        return out

    def drop_auth(self):
        self.ntlm_pending = None
        self.conn_user = None

    def hang_up(self):
        """Close the connection with no (more) reply; it was authenticated
        for nothing else."""
        self.drop_auth()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def deny(self, sim, host, extra=None):
        self.send(401, b"", extra=extra or self.offers(sim, host))

    def authorize(self, sim, host):
        """True when the request may run.  Otherwise the 401 is sent.
        NTLM is connection-based: a completed handshake authenticates the
        TCP connection (this handler instance), and later requests on it
        need no Authorization header; a new connection starts over."""
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.strip().partition(" ")
        scheme = scheme.lower()
        token = token.strip()
        have = self.schemes(sim, host)
        if not auth:
            if getattr(self, "conn_user", None):
                return True
            self.deny(sim, host)
            return False
        if scheme == "basic" and "basic" in have:
            self.drop_auth()
            try:
                dec = base64.b64decode(token, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                dec = ""
            user, _, pw = dec.partition(":")
            good = user.lower() == self.server.creds[0].lower() and \
                pw == self.server.creds[1]
            sim.note_auth(host, "Basic", user, good, None if good
                          else "bad user or password")
            if good:
                return True
            self.deny(sim, host)
            return False
        if (scheme == "negotiate" and "negotiate" in have) or \
                (scheme == "ntlm" and "ntlm" in have):
            name = "Negotiate" if scheme == "negotiate" else "NTLM"
            try:
                msg = base64.b64decode(token, validate=True)
            except ValueError:
                msg = b""
            kind = ntlm_msg_type(msg)
            if kind == 1:
                self.drop_auth()
                challenge, self.ntlm_pending = ntlm_challenge(
                    msg, sim.hosts[host])
                sim.note_auth(host, name, None, None, "challenge sent")
                self.deny(sim, host, [("WWW-Authenticate", "%s %s" % (
                    name, base64.b64encode(challenge).decode()))])
                return False
            if kind == 3:
                chal = getattr(self, "ntlm_pending", None)
                self.drop_auth()
                if chal is None:
                    good, user, why = False, None, \
                        "AUTHENTICATE without a CHALLENGE on this connection"
                else:
                    try:
                        good, user, why = ntlm_verify(
                            msg, chal, self.server.creds, sim.hosts[host])
                    except (ValueError, struct.error, UnicodeDecodeError):
                        good, user, why = False, None, "malformed message"
                sim.note_auth(host, name, user, good, why)
                if good:
                    self.conn_user = user
                    return True
                self.deny(sim, host)
                return False
            # A SPNEGO/Kerberos token: GSS-API with the host's keytab when
            # --kerberos-keytab is given, else it cannot succeed.
            self.drop_auth()
            return self.kerberos(sim, host, name, msg)
        self.drop_auth()
        sim.note_auth(host, auth.split(" ")[0], None, False,
                      "scheme not enabled on this host")
        self.deny(sim, host)
        return False

    def kerberos(self, sim, host, name, token):
        """Accepts a SPNEGO (or raw Kerberos) token through GSS-API with the
        keys of the server's keytab (HTTP/<host>, RFC 4559); the initiator
        must be one of --kerberos-principal, the accounts allowed to use
        WinRM.  Success authenticates the connection; the reply carries the
        mutual-authentication token.  A refusal is the bare 401."""
        kt = self.server.kerberos
        if kt is None or not token:
            sim.note_auth(host, name, None, False,
                          "not an NTLM message (Kerberos is not set up: "
                          "no --kerberos-keytab)" if token else "empty token")
            self.deny(sim, host)
            return False
        gssapi = kt["module"]
        try:
            ctx = gssapi.SecurityContext(usage="accept", creds=kt["creds"])
            out = ctx.step(token)
            who = str(ctx.initiator_name) if ctx.complete else None
        except gssapi.exceptions.GSSError as e:
            why = " ".join(str(e).split())
            sim.note_auth(host, name, None, False, "GSS-API: " + why[:200])
            self.deny(sim, host)
            return False
        if who is None:
            sim.note_auth(host, name, None, False,
                          "GSS-API: context not complete in one step")
            self.deny(sim, host)
            return False
        if who.lower() not in kt["allowed"]:
            sim.note_auth(host, name, who, False,
                          "principal may not use WinRM on this host")
            self.deny(sim, host)
            return False
        sim.note_auth(host, name, who, True, "Kerberos")
        self.conn_user = who
        if out:
            self.auth_reply = ("WWW-Authenticate", "%s %s" % (
                name, base64.b64encode(out).decode()))
        return True


class ControlHandler(http.server.BaseHTTPRequestHandler):
    """Tests only: GET /state, POST /fault, POST /clear, POST /vm, POST /acl,
    POST /host, POST /job, POST /shutdown.  JSON in, JSON out."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, obj, status=200):
        body = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        sim = self.server.sim
        if self.path == "/state":
            self.reply(sim.snapshot())
        else:
            self.reply({"error": "unknown path"}, 404)

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length", "0"))
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            self.reply({"error": "bad json"}, 400)
            return
        try:
            with sim.lock:
                res = self.dispatch(sim, req)
        except (KeyError, ValueError, IndexError) as e:
            self.reply({"error": "%s: %s" % (type(e).__name__, e)}, 400)
            return
        self.reply(res or {"ok": True})
        if self.path == "/shutdown":
            threading.Thread(target=self.server.stop_all, daemon=True).start()

    def find_vm(self, sim, name):
        for h in sim.hosts.values():
            for v in h["vms"].values():
                if name in (v["name"], v["guid"]):
                    return h, v
        raise KeyError("no VM " + name)

    def dispatch(self, sim, req):
        p = self.path
        if p == "/fault":
            kind = req["kind"]
            if kind == "merge":
                h, v = self.find_vm(sim, req["vm"])
                v["operational_status"] = [2, int(req.get("status", 32772))]
                j = sim.new_job(h, "Msvm_ConcreteJob", 50, "Merging disks",
                                vm=v["guid"], manual=True,
                                percent=int(req.get("percent", 30)))
                j["cancellable"] = False
                return {"job": j["id"]}
            if kind not in ("job-fail", "slow-job", "drop", "malformed",
                            "http-status", "delay", "soap-fault", "close",
                            "lost-reply", "not-applied"):
                raise ValueError("unknown fault kind " + kind)
            sim.faults.append(dict(req))
            return None
        if p == "/clear":
            sim.faults.clear()
            for h in sim.hosts.values():
                for v in h["vms"].values():
                    v["operational_status"] = [2]
            for j in sim.jobs.values():
                if j.get("manual") and j["running"]:
                    sim.finish_job(j, 7)
            return None
        if p == "/vm":
            h, v = self.find_vm(sim, req.pop("vm"))
            for k, val in req.items():
                if k not in v:
                    raise KeyError(k)
                v[k] = val
            return None
        if p == "/acl":
            h = sim.hosts[req["host"]]
            f = sim.get_file(h, req["path"])
            if f is None:
                raise KeyError(req["path"])
            f["acl"] = [dict(sid=a["sid"], mask=int(a["mask"]),
                             flags=int(a.get("flags", 0)),
                             type=int(a.get("type", 0))) for a in req["acl"]]
            return None
        if p == "/host":
            h = sim.hosts[req.pop("host")]
            for k, val in req.items():
                if k in ("migration",):
                    h[k].update(val)
                elif k == "auth":
                    h[k] = parse_auth(val)
                elif k in h and k not in ("files", "vms"):
                    h[k] = val
                else:
                    raise KeyError(k)
            return None
        if p == "/shutdown":
            return None
        raise KeyError("unknown path " + p)


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


AUTH_SCHEMES = ("basic", "negotiate", "kerberos", "ntlm")


def parse_auth(val):
    """A list or a comma-separated string of scheme names."""
    if isinstance(val, str):
        val = [v for v in val.split(",") if v.strip()]
    out = [str(v).strip().lower() for v in val]
    for a in out:
        if a not in AUTH_SCHEMES:
            raise ValueError("unknown auth scheme %s" % a)
    return out


def load_creds(args):
    user = password = domain = None
    if args.credentials:
        with open(args.credentials) as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith("#") or line.startswith("["):
                    continue
                k, _, v = line.partition("=")
                k = k.strip().lower()
                if k in ("user", "username"):
                    user = v.strip()
                elif k == "password":
                    password = v.strip()
                elif k == "domain":
                    domain = v.strip()
    if user is None or password is None:
        sys.exit("hyperv-sim: --credentials FILE must give user= and "
                 "password=")
    return user, password, domain


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0,
                    help="first host's port (others follow); 0 = pick free")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--credentials", required=True,
                    help="file with user= and password= lines")
    ap.add_argument("--state", help="JSON world description "
                    "(default: the built-in two-host world)")
    ap.add_argument("--job-seconds", type=float, default=1.0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--ready-file")
    ap.add_argument("--auth", default="basic,negotiate,kerberos",
                    help="schemes every host offers unless its state sets "
                    "\"auth\" (basic, negotiate, kerberos, ntlm)")
    ap.add_argument("--kerberos-keytab",
                    help="accept Kerberos (SPNEGO) with the HTTP/<host> "
                    "keys of this keytab (needs the gssapi module)")
    ap.add_argument("--kerberos-principal", action="append", default=[],
                    help="a Kerberos principal allowed to use WinRM "
                    "(repeatable)")
    args = ap.parse_args()
    kerberos = None
    if args.kerberos_keytab:
        try:
            import gssapi
        except ImportError as e:
            sys.exit("hyperv-sim: --kerberos-keytab needs the gssapi "
                     "module (python3-gssapi): %s" % e)
        os.environ["KRB5_KTNAME"] = "FILE:" + os.path.abspath(
            args.kerberos_keytab)
        try:
            kcreds = gssapi.Credentials(usage="accept")
        except gssapi.exceptions.GSSError as e:
            sys.exit("hyperv-sim: keytab %s: %s" % (args.kerberos_keytab, e))
        kerberos = dict(module=gssapi, creds=kcreds, allowed={
            p.lower() for p in args.kerberos_principal})
    try:
        default_auth = parse_auth(args.auth)
    except ValueError as e:
        sys.exit("hyperv-sim: --auth: %s" % e)

    creds = load_creds(args)
    if args.state:
        with open(args.state) as fh:
            state = json.load(fh)
    else:
        state = default_state()
    sim = Sim(state, args.job_seconds)
    for h in sim.hosts.values():
        h["auth"] = parse_auth(h.get("auth", default_auth))
    servers = []
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)

    def stop_all():
        for s in servers:
            s.shutdown()

    urls = {}
    for i, name in enumerate(sim.hosts):
        port = args.port + i if args.port else 0
        srv = ThreadingServer(("127.0.0.1", port), WsmanHandler)
        if ctx:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.sim = sim
        srv.host_name = name
        srv.creds = creds
        srv.kerberos = kerberos
        servers.append(srv)
        urls[name] = "%s://127.0.0.1:%d/wsman" % (
            "https" if ctx else "http", srv.server_address[1])
    csrv = ThreadingServer(("127.0.0.1", args.control_port), ControlHandler)
    csrv.sim = sim
    csrv.stop_all = stop_all
    servers.append(csrv)
    control = "http://127.0.0.1:%d/" % csrv.server_address[1]

    threads = [threading.Thread(target=s.serve_forever, daemon=True)
               for s in servers]
    for t in threads:
        t.start()

    def ticker():
        while True:
            time.sleep(0.05)
            sim.tick()
    threading.Thread(target=ticker, daemon=True).start()

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(hosts=urls, control=control, pid=os.getpid()), fh)
        os.rename(tmp, args.ready_file)
    for name, u in urls.items():
        print("HOST %s %s" % (name, u))
    print("CONTROL %s" % control)
    print("URL %s" % urls[next(iter(urls))])
    print("READY", flush=True)
    try:
        threads[-1].join()
    except KeyboardInterrupt:
        pass



sim_vsms.install(globals())

if __name__ == "__main__":
    main()
