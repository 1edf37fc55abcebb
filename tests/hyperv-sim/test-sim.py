#!/usr/bin/env python3
"""TAP self-test of the Hyper-V simulator: drives it with hand-written
WS-Man envelopes (the shapes of docs/design/hyperv.md §1) and checks its answers and
its state.  Standard library only."""

import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "hyperv_sim.py")

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
F = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
BASE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
V2 = BASE + "root/virtualization/v2/"
CV2 = BASE + "root/cimv2/"
ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

n_test = 0
failed = 0


def ok(cond, what):
    global n_test, failed
    n_test += 1
    if not cond:
        failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n_test, what),
          flush=True)
    return cond


class Client:
    def __init__(self, url, user, pw):
        self.url = url
        u = urllib.parse.urlparse(url)
        self.hostport = (u.hostname, u.port)
        self.auth = "Basic " + base64.b64encode(
            ("%s:%s" % (user, pw)).encode()).decode()

    def post(self, body, auth=True):
        c = http.client.HTTPConnection(*self.hostport, timeout=10)
        h = {"Content-Type": "application/soap+xml;charset=UTF-8"}
        if auth:
            h["Authorization"] = self.auth
        c.request("POST", "/wsman", body=body.encode(), headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def env(self, action, uri, body, selectors=None):
        sel = ""
        if selectors:
            sel = "<w:SelectorSet>%s</w:SelectorSet>" % "".join(
                '<w:Selector Name="%s">%s</w:Selector>' % (k, v)
                for k, v in selectors.items())
        return ('<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:w="%s" '
                'xmlns:n="%s"><s:Header><a:To>%s</a:To>'
                '<w:ResourceURI s:mustUnderstand="true">%s</w:ResourceURI>'
                '<a:ReplyTo><a:Address s:mustUnderstand="true">%s</a:Address>'
                '</a:ReplyTo><a:Action s:mustUnderstand="true">%s</a:Action>'
                '<w:MaxEnvelopeSize s:mustUnderstand="true">512000'
                '</w:MaxEnvelopeSize><a:MessageID>uuid:%s</a:MessageID>'
                '<w:OperationTimeout>PT60S</w:OperationTimeout>%s</s:Header>'
                '<s:Body>%s</s:Body></s:Envelope>'
                % (S, A, W, N, self.url, uri, ANON, action, uuid.uuid4(),
                   sel, body))

    def call(self, action, uri, body, selectors=None):
        st, data = self.post(self.env(action, uri, body, selectors))
        return st, ET.fromstring(data)

    def wql(self, query, ns="root/virtualization/v2"):
        st, doc = self.call(
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
            BASE + ns + "/*",
            '<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>2'
            '</w:MaxElements><w:Filter Dialect="http://schemas.microsoft.com/'
            'wbem/wsman/1/WQL">%s</w:Filter></n:Enumerate>'
            % query.replace("&", "&amp;").replace("<", "&lt;"))
        if st != 200:
            return st, doc
        items = list(doc.find(".//{%s}Items" % W))
        done = doc.find(".//{%s}EndOfSequence" % W) is not None
        ctx = doc.find(".//{%s}EnumerationContext" % N).text
        while not done:
            st, doc = self.call(
                "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull",
                BASE + ns + "/*",
                "<n:Pull><n:EnumerationContext>%s</n:EnumerationContext>"
                "<n:MaxElements>2</n:MaxElements></n:Pull>" % ctx)
            assert st == 200, data_of(doc)
            items += list(doc.find(".//{%s}Items" % N))
            done = doc.find(".//{%s}EndOfSequence" % N) is not None
        return 200, items


def data_of(doc):
    return ET.tostring(doc).decode()[:400]


def prop(el, name):
    for c in el:
        if c.tag.endswith("}" + name):
            return c.text
    return None


def props(el, name):
    return [c.text for c in el if c.tag.endswith("}" + name)]


def epr(uri, sel):
    return ('<a:Address>%s</a:Address><a:ReferenceParameters>'
            '<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet>%s'
            '</w:SelectorSet></a:ReferenceParameters>'
            % (ANON, uri, "".join('<w:Selector Name="%s">%s</w:Selector>'
                                  % kv for kv in sel.items())))


def msd(mtype, extra=""):
    return ('<![CDATA[<INSTANCE CLASSNAME="Msvm_VirtualSystemMigrationSettingData">'
            '<PROPERTY NAME="MigrationType" TYPE="uint16"><VALUE>%d</VALUE>'
            '</PROPERTY><PROPERTY NAME="TransportType" TYPE="uint16"><VALUE>5'
            '</VALUE></PROPERTY>%s</INSTANCE>]]>' % (mtype, extra))


def sasd(iid, path):
    x = ('<INSTANCE CLASSNAME="Msvm_StorageAllocationSettingData">'
         '<PROPERTY NAME="InstanceID" TYPE="string"><VALUE>%s</VALUE>'
         '</PROPERTY><PROPERTY.ARRAY NAME="HostResource" TYPE="string">'
         '<VALUE.ARRAY><VALUE>%s</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>'
         '<PROPERTY NAME="PoolID" TYPE="string"><VALUE></VALUE></PROPERTY>'
         '</INSTANCE>' % (iid, path))
    return x.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def migrate(c, guid, mtype, dest=None, nrsd=()):
    u = V2 + "Msvm_VirtualSystemMigrationService"
    body = ('<p:MigrateVirtualSystemToHost_INPUT xmlns:p="%s">'
            '<p:ComputerSystem>%s</p:ComputerSystem>%s'
            '<p:MigrationSettingData>%s</p:MigrationSettingData>%s'
            '</p:MigrateVirtualSystemToHost_INPUT>'
            % (u, epr(V2 + "Msvm_ComputerSystem",
                      {"CreationClassName": "Msvm_ComputerSystem",
                       "Name": guid}),
               "<p:DestinationHost>%s</p:DestinationHost>" % dest
               if dest else "", msd(mtype),
               "".join("<p:NewResourceSettingData>%s"
                       "</p:NewResourceSettingData>" % x for x in nrsd)))
    return c.call(u + "/MigrateVirtualSystemToHost", u, body,
                  {"CreationClassName": "Msvm_VirtualSystemMigrationService"})


def wait_job(c, doc, cancel_at=None):
    job = doc.find(".//{%s}Job" % V2[:-1].rsplit("/", 1)[0]) if False else None
    for el in doc.iter():
        if el.tag.endswith("}Job"):
            job = el
    uri = job.find(".//{%s}ResourceURI" % W).text
    iid = job.find(".//{%s}Selector" % W).text
    last = None
    for _ in range(200):
        st, d = c.call("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
                       uri, "", {"InstanceID": iid})
        inst = d.find(".//{%s}Body" % S)[0]
        state = int(prop(inst, "JobState"))
        pct = int(prop(inst, "PercentComplete"))
        if cancel_at is not None and pct >= cancel_at and state == 4:
            st2, d2 = c.call(uri + "/RequestStateChange", uri,
                             '<p:RequestStateChange_INPUT xmlns:p="%s">'
                             '<p:RequestedState>5</p:RequestedState>'
                             '</p:RequestStateChange_INPUT>' % uri,
                             {"InstanceID": iid})
            cancel_at = None
        if state not in (2, 3, 4, 5, 6):
            return state, inst, uri
        last = inst
        time.sleep(0.05)
    return None, last, uri


def control(url, path, obj=None):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    if obj is None:
        c.request("GET", path)
    else:
        c.request("POST", path, body=json.dumps(obj),
                  headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    return data


def main():
    tmp = tempfile.mkdtemp(prefix="hvsim-")
    cred = os.path.join(tmp, "cred")
    with open(cred, "w") as fh:
        fh.write("user=Administrator\npassword=s3cret-Pw\n")
    os.chmod(cred, 0o600)
    ready = os.path.join(tmp, "ready.json")
    p = subprocess.Popen([sys.executable, SIM, "--credentials", cred,
                          "--ready-file", ready, "--job-seconds", "0.6"],
                         stdout=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:
            if line.strip() == "READY":
                break
        info = json.load(open(ready))
        run(info)
        run_ntlm(info)
    finally:
        p.terminate()
        p.wait(10)
    print("1..%d" % n_test)
    return 1 if failed else 0


def run(info):
    hv1 = Client(info["hosts"]["HV01"], "Administrator", "s3cret-Pw")
    hv2 = Client(info["hosts"]["HV02"], "Administrator", "s3cret-Pw")
    ctl = info["control"]

    st, _ = hv1.post(hv1.env("x", "y", ""), auth=False)
    ok(st == 401, "no credentials: HTTP 401")
    bad = Client(info["hosts"]["HV01"], "Administrator", "wrong")
    st, _ = bad.post(bad.env("x", "y", ""))
    ok(st == 401, "wrong password: HTTP 401")

    st, data = hv1.post('<s:Envelope xmlns:s="%s"><s:Header/><s:Body>'
                        '<wsmid:Identify xmlns:wsmid="http://schemas.dmtf.org/'
                        'wbem/wsman/identity/1/wsmanidentity.xsd"/></s:Body>'
                        '</s:Envelope>' % S)
    ok(st == 200 and b"ProductVendor>Microsoft Corporation" in data,
       "Identify")

    st, items = hv1.wql("SELECT * FROM Msvm_ComputerSystem WHERE "
                        "Description = \"Microsoft Virtual Machine\"")
    names = sorted(prop(i, "ElementName") for i in items)
    ok(st == 200 and names == ["csv01", "db01", "dmz01", "web01"],
       "WQL enumerate VMs over several pulls: %s" % names)

    st, doc = hv1.call(
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
        V2 + "Msvm_ComputerSystem",
        '<n:Enumerate><w:Filter Dialect="http://schemas.microsoft.com/wbem/'
        'wsman/1/WQL">SELECT * FROM Msvm_ComputerSystem</w:Filter>'
        '</n:Enumerate>')
    ok(st == 500 and doc.find(".//{%s}WSManFault" % F) is not None,
       "WQL with a concrete class URI is a fault (docs/design/hyperv.md §1.5)")

    st, doc = hv1.wql("SELECT * FROM Msvm_NoSuchClass")
    ok(st == 500 and "2150858778" in ET.tostring(doc).decode(),
       "unknown class: CannotProcessFilter 2150858778")

    st, items = hv1.wql(
        "ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="
        "'Microsoft:1D3C5B1E-7A2B-4C1D-9E0F-000000000101'} WHERE AssocClass "
        "= Msvm_VirtualSystemSettingDataComponent ResultClass = "
        "Msvm_StorageAllocationSettingData")
    paths = sorted(props(i, "HostResource")[0] for i in items)
    ok(st == 200 and paths == ["D:\\VMs\\web01\\web01-data.vhdx",
                               "D:\\VMs\\web01\\web01.vhdx"],
       "ASSOCIATORS OF VSSD -> SASD paths")
    iids = {props(i, "HostResource")[0]: prop(i, "InstanceID") for i in items}

    st, doc = hv1.call("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
                       CV2 + "CIM_DataFile", "",
                       {"Name": "D:\\VMs\\web01\\web01.vhdx"})
    ok(st == 200 and prop(doc.find(".//{%s}Body" % S)[0], "FileSize") ==
       str(12 << 30), "Get CIM_DataFile FileSize")

    st, doc = hv1.call("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
                       V2 + "Msvm_ComputerSystem", "",
                       {"CreationClassName": "Msvm_ComputerSystem",
                        "Name": "00000000-0000-0000-0000-000000000000"})
    ok(st == 500 and b"DestinationUnreachable" in ET.tostring(doc),
       "Get of a missing VM: a:DestinationUnreachable")

    st, data = hv1.post("<s:Envelope xmlns:s='%s'><s:Body><unclosed>" % S)
    ok(st == 400, "malformed request XML: HTTP 400")

    # live migration web01 -> HV02 fails: local storage not reachable
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000101", 32768,
                      "HV02")
    ok(st == 200 and prop(doc.find(".//{%s}Body" % S)[0], "ReturnValue") ==
       "4096", "MigrateVirtualSystemToHost returns 4096 + job")
    state, inst, _ = wait_job(hv1, doc)
    ok(state == 10 and "cannot access its storage" in
       (prop(inst, "ErrorDescription") or ""),
       "live migration of local-storage VM fails in the job")

    # live migration of the CSV VM works
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000103", 32768,
                      "hv02.example.test")
    state, inst, _ = wait_job(hv1, doc)
    ok(state == 7 and prop(inst, "PercentComplete") == "100",
       "live migration of CSV VM completes")
    s = control(ctl, "/state")
    ok(any(v["name"] == "csv01" for v in s["hosts"]["HV02"]["vms"]) and
       not any(v["name"] == "csv01" for v in s["hosts"]["HV01"]["vms"]),
       "csv01 now on HV02")

    # VM+storage web01 -> HV02 with per-disk paths
    nr = [sasd(iids["D:\\VMs\\web01\\web01.vhdx"], "E:\\VMs\\web01\\web01.vhdx"),
          sasd(iids["D:\\VMs\\web01\\web01-data.vhdx"],
               "E:\\Data\\web01-data.vhdx")]
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000101", 32771,
                      "HV02", nr)
    state, inst, _ = wait_job(hv1, doc)
    ok(state == 7, "VM+storage migration completes (%s)" %
       prop(inst, "ErrorDescription"))
    s = control(ctl, "/state")
    w = [v for v in s["hosts"]["HV02"]["vms"] if v["name"] == "web01"]
    ok(w and sorted(d["path"] for d in w[0]["disks"]) ==
       ["E:\\Data\\web01-data.vhdx", "E:\\VMs\\web01\\web01.vhdx"],
       "web01 disks at new paths on HV02")
    f = [x for x in s["hosts"]["HV02"]["files"]
         if x["path"] == "E:\\VMs\\web01\\web01.vhdx"]
    ok(f and any(a["account"].startswith("NT VIRTUAL MACHINE\\1D3C5B1E")
                 for a in f[0]["acl"]), "moved VHD carries the VM's ACE")

    # storage-only migration of db01, with an injected failure at 40 %
    control(ctl, "/fault", {"kind": "job-fail", "at": 40, "host": "HV01"})
    st, items = hv1.wql(
        "ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID="
        "'Microsoft:1D3C5B1E-7A2B-4C1D-9E0F-000000000102'} WHERE AssocClass "
        "= Msvm_VirtualSystemSettingDataComponent ResultClass = "
        "Msvm_StorageAllocationSettingData")
    db_iid = prop(items[0], "InstanceID")
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000102", 32769,
                      None, [sasd(db_iid, "C:\\VMs\\db01.vhdx")])
    state, inst, _ = wait_job(hv1, doc)
    ok(state == 10 and prop(inst, "PercentComplete") == "40" and
       prop(inst, "ErrorCode") == "32768", "injected job failure at 40%")
    s = control(ctl, "/state")
    d = [v for v in s["hosts"]["HV01"]["vms"] if v["name"] == "db01"][0]
    ok(d["disks"][0]["path"] == "D:\\VMs\\db01\\db01.vhdx",
       "failed storage migration leaves the disk where it was")

    # cancellation
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000102", 32769,
                      None, [sasd(db_iid, "C:\\VMs\\db01.vhdx")])
    state, inst, _ = wait_job(hv1, doc, cancel_at=10)
    ok(state == 9, "RequestStateChange(5) kills the job (JobState 9)")

    # merge in progress -> 32775
    control(ctl, "/fault", {"kind": "merge", "vm": "db01"})
    st, items = hv1.wql("SELECT * FROM Msvm_ConcreteJob WHERE JobType = 50")
    ok(len(items) == 1 and prop(items[0], "JobState") == "4",
       "merge job visible by WQL")
    st, doc = migrate(hv1, "1D3C5B1E-7A2B-4C1D-9E0F-000000000102", 32769,
                      None, [sasd(db_iid, "C:\\VMs\\db01.vhdx")])
    ok(prop(doc.find(".//{%s}Body" % S)[0], "ReturnValue") == "32775",
       "migration during a merge: 32775 invalid state")
    control(ctl, "/clear", {})

    # ACL: get, tamper, set
    path = "E:\\VMs\\web01\\web01.vhdx"
    u = CV2 + "Win32_LogicalFileSecuritySetting"
    st, doc = hv2.call(u + "/GetSecurityDescriptor", u,
                       '<p:GetSecurityDescriptor_INPUT xmlns:p="%s"/>' % u,
                       {"Path": path})
    ok(st == 200 and b"Win32_SecurityDescriptor_Type" in ET.tostring(doc),
       "GetSecurityDescriptor returns a WS-CIM descriptor")
    control(ctl, "/acl", {"host": "HV02", "path": path,
                          "acl": [{"sid": "S-1-1-0", "mask": 2032127}]})
    sd = ('<p:Descriptor xmlns:sd="%sWin32_SecurityDescriptor" '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
          'xsi:type="sd:Win32_SecurityDescriptor_Type">'
          '<sd:ControlFlags>4</sd:ControlFlags>'
          '<sd:DACL xmlns:ace="%sWin32_ACE" xsi:type="ace:Win32_ACE_Type">'
          '<ace:AccessMask>1180063</ace:AccessMask><ace:AceFlags>0'
          '</ace:AceFlags><ace:AceType>0</ace:AceType>'
          '<ace:Trustee xmlns:t="%sWin32_Trustee" '
          'xsi:type="t:Win32_Trustee_Type"><t:Domain>NT VIRTUAL MACHINE'
          '</t:Domain><t:Name>1D3C5B1E-7A2B-4C1D-9E0F-000000000101</t:Name>'
          '</ace:Trustee></sd:DACL></p:Descriptor>' % (CV2, CV2, CV2))
    st, doc = hv2.call(u + "/SetSecurityDescriptor", u,
                       '<p:SetSecurityDescriptor_INPUT xmlns:p="%s">%s'
                       '</p:SetSecurityDescriptor_INPUT>' % (u, sd),
                       {"Path": path})
    ok(st == 200 and prop(doc.find(".//{%s}Body" % S)[0], "ReturnValue")
       == "0", "SetSecurityDescriptor returns 0")
    s = control(ctl, "/state")
    f = [x for x in s["hosts"]["HV02"]["files"] if x["path"] == path][0]
    ok([a["account"] for a in f["acl"]] ==
       ["NT VIRTUAL MACHINE\\1D3C5B1E-7A2B-4C1D-9E0F-000000000101"] and
       f["acl"][0]["sid"] ==
       "S-1-5-83-1-490494750-1277000235-3998-16842752",
       "DACL replaced; VM account resolved to its S-1-5-83-1 SID")

    # faults at the HTTP level
    control(ctl, "/fault", {"kind": "http-status", "status": 500})
    st, _ = hv1.post(hv1.env("x", "y", ""))
    ok(st == 500, "injected HTTP 500")
    control(ctl, "/fault", {"kind": "malformed"})
    st, data = hv1.post(hv1.env(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
        V2 + "Msvm_VirtualSystemMigrationService", "",
        {"CreationClassName": "Msvm_VirtualSystemMigrationService"}))
    try:
        ET.fromstring(data)
        parsed = True
    except ET.ParseError:
        parsed = False
    ok(st == 200 and not parsed, "injected malformed reply")
    control(ctl, "/fault", {"kind": "drop"})
    try:
        hv1.post(hv1.env("x", "y", ""))
        dropped = False
    except (http.client.HTTPException, ConnectionError):
        dropped = True
    ok(dropped, "injected dropped connection")

    # closing connections: "Connection: close", and a host's idle timeout
    get = hv1.env("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
                  V2 + "Msvm_VirtualSystemMigrationService", "",
                  {"CreationClassName": "Msvm_VirtualSystemMigrationService"})
    hdrs = {"Content-Type": "application/soap+xml;charset=UTF-8",
            "Authorization": hv1.auth}
    control(ctl, "/fault", {"kind": "close", "style": "header",
                            "host": "HV01"})
    c = http.client.HTTPConnection(*hv1.hostport, timeout=10)
    c.request("POST", "/wsman", body=get.encode(), headers=hdrs)
    r = c.getresponse()
    r.read()
    ok(r.status == 200 and r.getheader("Connection") == "close",
       "close fault, style header: the reply says Connection: close")
    c.close()
    control(ctl, "/host", {"host": "HV01", "idle_timeout": 0.2})
    c0 = control(ctl, "/state")["hosts"]["HV01"]["connections"]
    c = http.client.HTTPConnection(*hv1.hostport, timeout=10)
    c.request("POST", "/wsman", body=get.encode(), headers=hdrs)
    r = c.getresponse()
    r.read()
    time.sleep(0.6)  # idle longer than the host's idle_timeout
    try:
        c.request("POST", "/wsman", body=get.encode(), headers=hdrs)
        c.getresponse().read()
        closed = False
    except (http.client.HTTPException, ConnectionError):
        closed = True
    c.close()
    control(ctl, "/host", {"host": "HV01", "idle_timeout": None})
    ok(r.status == 200 and closed and
       control(ctl, "/state")["hosts"]["HV01"]["connections"] == c0 + 1,
       "idle_timeout: a kept-alive connection idle too long is closed; "
       "/state counts connections")


def ntlm_type3(chal_msg, user, domain, pw):
    """A minimal NTLMv2 AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3, 3.3.2)
    for the connection-binding checks (the independent client is curl)."""
    import hmac
    import struct
    sys.path.insert(0, HERE)
    import hyperv_sim
    tl, _, to = struct.unpack_from("<HHI", chal_msg, 40)
    info = chal_msg[to:to + tl]
    temp = b"\x01\x01" + b"\0" * 6 + struct.pack(
        "<Q", hyperv_sim.filetime_now()) + os.urandom(8) + b"\0" * 4 + \
        info + b"\0" * 4
    key = hyperv_sim.ntowfv2(pw, user, domain)
    nt = hmac.new(key, chal_msg[24:32] + temp, "md5").digest() + temp
    u, d = user.encode("utf-16-le"), domain.encode("utf-16-le")
    off = 64
    fields = b""
    payload = b""
    for data in (b"\0" * 24, nt, d, u, b"", b""):
        fields += struct.pack("<HHI", len(data), len(data), off + len(payload))
        payload += data
    return (b"NTLMSSP\0" + struct.pack("<I", 3) + fields +
            struct.pack("<I", 0x00088205) + payload)


def run_ntlm(info):
    import shutil
    sys.path.insert(0, HERE)
    import hyperv_sim
    ok(hyperv_sim.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0" and
       hyperv_sim.md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d" and
       hyperv_sim.md4(b"1234567890" * 8).hex() ==
       "e33b4ddc9c38f2199c3e7b164fcc0536", "MD4: RFC 1320 test vectors")
    ok(hyperv_sim.ntowfv2("Password", "User", "Domain").hex() ==
       "0c868a403bfd7a93a3001ef22ef02e3f", "NTOWFv2: MS-NLMP 4.2.4.1.1 vector")
    ctl = info["control"]
    u2 = urllib.parse.urlparse(info["hosts"]["HV02"])
    body = Client(info["hosts"]["HV02"], "x", "y").env("x", "y", "")

    def offers(c, hdrs=None):
        c.request("POST", "/wsman", body=body.encode(), headers=dict(
            {"Content-Type": "application/soap+xml;charset=UTF-8"},
            **(hdrs or {})))
        r = c.getresponse()
        r.read()
        return r.status, r.headers.get_all("WWW-Authenticate") or []

    c = http.client.HTTPConnection(u2.hostname, u2.port, timeout=10)
    st, www = offers(c)
    ok(st == 401 and www == ['Basic realm="WSMAN"', "Negotiate", "Kerberos"],
       "default offers: Basic, Negotiate, Kerberos")
    control(ctl, "/host", {"host": "HV02", "auth": ["negotiate", "kerberos"]})
    st, www = offers(c)
    ok(st == 401 and www == ["Negotiate", "Kerberos"],
       "Basic off (WinRM default): Negotiate and Kerberos only")
    basic = Client(info["hosts"]["HV02"], "Administrator", "s3cret-Pw")
    st, _ = basic.post(basic.env("x", "y", ""))
    ok(st == 401, "Basic off: good Basic credentials refused")

    # Connection binding: the handshake authenticates its TCP connection.
    t1 = base64.b64encode(b"NTLMSSP\0\x01\0\0\0" +
                          struct_pack_flags() + b"\0" * 16).decode()
    st, www = offers(c, {"Authorization": "Negotiate " + t1})
    chal = base64.b64decode(www[0].split(" ", 1)[1]) if www else b""
    ok(st == 401 and len(www) == 1 and chal[:12] ==
       b"NTLMSSP\0\x02\0\0\0" and b"\x07\x00\x08\x00" in chal,
       "NEGOTIATE -> 401 with a CHALLENGE carrying target info "
       "(MsvAvTimestamp)")
    t3 = base64.b64encode(ntlm_type3(chal, "Administrator", "",
                                     "s3cret-Pw")).decode()
    other = http.client.HTTPConnection(u2.hostname, u2.port, timeout=10)
    st, _ = offers(other, {"Authorization": "Negotiate " + t3})
    ok(st == 401, "AUTHENTICATE on another connection: refused")
    st, _ = offers(c, {"Authorization": "Negotiate " + t3})
    ok(st not in (401, 403), "AUTHENTICATE on the challenged connection: "
       "accepted (HTTP %d)" % st)
    st, _ = offers(c)
    ok(st not in (401, 403), "later request on that connection needs no "
       "Authorization")
    st, _ = offers(other)
    ok(st == 401, "a new connection must authenticate again")
    c.close()
    other.close()

    curl = shutil.which("curl")
    if curl is None:
        ok(True, "curl --ntlm # SKIP curl not installed")
        ok(True, "curl --ntlm wrong password # SKIP curl not installed")
    else:
        # libcurl's NTLM (an independent NTLMv2 client) only answers the
        # "NTLM" scheme, which WinRM does not offer: the IIS-style extra.
        control(ctl, "/host", {"host": "HV02", "auth": ["ntlm"]})
        n0 = len(control(ctl, "/state")["auth"])
        cfg = "user = \"Administrator:s3cret-Pw\"\n"
        args = [curl, "-s", "-o", "/dev/null", "-o", "/dev/null",
                "-w", "%{http_code} ",
                "--ntlm", "-K", "-", "-H",
                "Content-Type: application/soap+xml;charset=UTF-8",
                "--data-binary", body, info["hosts"]["HV02"],
                info["hosts"]["HV02"]]
        r = subprocess.run(args, input=cfg, capture_output=True, text=True,
                           timeout=30)
        ev = control(ctl, "/state")["auth"][n0:]
        ok(r.stdout.split() == ["500", "500"] and
           [e["ok"] for e in ev if e["ok"] is not None] == [True],
           "curl --ntlm: NTLMv2 verified, two requests on one handshake")
        r = subprocess.run(args[:-1], input=cfg.replace("Pw", "Px"),
                           capture_output=True, text=True, timeout=30)
        ok(r.stdout.split() == ["401"], "curl --ntlm, wrong password: 401")
    control(ctl, "/host", {"host": "HV02",
                           "auth": ["basic", "negotiate", "kerberos"]})


def struct_pack_flags():
    import struct
    return struct.pack("<I", 0xA0088207)


if __name__ == "__main__":
    sys.exit(main())
