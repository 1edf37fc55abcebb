#!/usr/bin/env python3
"""The default Hyper-V authentication, auth=negotiate (Kerberos through
libcurl's SPNEGO), against a real MIT KDC (issue 12 item 6).

The test creates a realm on loopback (kdb5_util in a temporary directory,
its own krb5.conf through KRB5_CONFIG and kdc.conf through
KRB5_KDC_PROFILE, its own KDC port), principals with random keys and
keytabs (no password anywhere: kinit -k), starts krb5kdc, and runs the
Hyper-V simulator over HTTPS with the HTTP/localhost keytab; the simulator
accepts the SPNEGO token through GSS-API (python3-gssapi, so it runs under
/usr/bin/python3, Debian's, which has it).  `vmshift` then runs with no
auth= key (the default) and each case's KRB5CCNAME:

* a ticket of an allowed account: `vms` lists the simulator's VMs and
  `migrate` moves one, checked in the simulator's state and its log of
  Kerberos logons;
* a ticket of an account the host does not allow, an expired ticket, no
  ticket, a URL whose host has no HTTP/ principal: each fails with exactly
  one line saying which, exit non-zero, and the simulator's state unchanged.

Helpers come from test-cli.py.  Prints TAP."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

_spec = importlib.util.spec_from_file_location(
    "hv_test_cli", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "test-cli.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)
ok, control, vm_state = T.ok, T.control, T.vm_state

REALM = "VMSHIFT.TEST"
SYS_PY = "/usr/bin/python3"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist", "openssl")


def sbin(name):
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin",
                                                              "/sbin"]:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def missing():
    """What this test needs and the machine lacks ('' when nothing)."""
    gone = [t for t in TOOLS if sbin(t) is None]
    if not os.access(SYS_PY, os.X_OK) or subprocess.run(
            [SYS_PY, "-c", "import gssapi"], capture_output=True).returncode:
        gone.append("python3-gssapi for " + SYS_PY)
    return ", ".join(gone)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Realm:
    """A KDC of its own: realm VMSHIFT.TEST on 127.0.0.1:<port> (TCP)."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "krb")
        os.mkdir(self.dir, 0o700)
        port = free_port()
        self.env = dict(os.environ)
        self.env["KRB5_CONFIG"] = self.path("krb5.conf")
        self.env["KRB5_KDC_PROFILE"] = self.path("kdc.conf")
        self.env.pop("KRB5CCNAME", None)
        self.env.pop("KRB5_KTNAME", None)
        with open(self.path("krb5.conf"), "w") as fh:
            fh.write("[libdefaults]\n default_realm = %s\n"
                     " dns_lookup_realm = false\n dns_lookup_kdc = false\n"
                     " dns_canonicalize_hostname = false\n rdns = false\n"
                     " udp_preference_limit = 1\n"
                     # tickets end when they say (the KDC and GSS-API
                     # accept expired ones for clockskew seconds, 300 by
                     # default)
                     " clockskew = 1\n"
                     "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n"
                     % (REALM, REALM, port))
        with open(self.path("kdc.conf"), "w") as fh:
            fh.write("[kdcdefaults]\n kdc_listen = 127.0.0.1:%d\n"
                     " kdc_tcp_listen = 127.0.0.1:%d\n"
                     "[realms]\n %s = {\n  database_name = %s\n"
                     "  key_stash_file = %s\n  acl_file = %s\n"
                     "  max_life = 1h\n }\n"
                     "[logging]\n kdc = FILE:%s\n"
                     % (port, port, REALM, self.path("principal"),
                        self.path("stash"), self.path("kadm5.acl"),
                        self.path("kdc.log")))
        # The master key goes through stdin (twice: asked and confirmed).
        mk = os.urandom(18).hex()
        self.run(["kdb5_util", "create", "-s", "-r", REALM],
                 stdin="%s\n%s\n" % (mk, mk))
        for p in ("alice", "mallory", "HTTP/localhost"):
            self.kadmin("addprinc -randkey %s" % p)
        self.kadmin("ktadd -k %s HTTP/localhost" % self.path("http.keytab"))
        for p in ("alice", "mallory"):
            self.kadmin("ktadd -k %s %s" % (self.path(p + ".keytab"), p))
        self.kdc = subprocess.Popen(
            [sbin("krb5kdc"), "-n", "-r", REALM, "-P", self.path("kdc.pid")],
            env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        T.procs.append(self.kdc)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)

    def path(self, f):
        return os.path.join(self.dir, f)

    def run(self, argv, stdin=None):
        return subprocess.run([sbin(argv[0])] + argv[1:], env=self.env,
                              input=stdin, capture_output=True, text=True,
                              check=True, timeout=60)

    def kadmin(self, q):
        self.run(["kadmin.local", "-r", REALM, "-q", q])

    def kinit(self, who, cache, life=None):
        """A ticket for @who (from its keytab: no password) in @cache."""
        argv = ["kinit", "-k", "-t", self.path(who + ".keytab"), "-c",
                "FILE:" + cache]
        if life:
            argv += ["-l", life]
        self.run(argv + [who])
        return "FILE:" + cache

    def valid(self, cache):
        return subprocess.run([sbin("klist"), "-s", "-c", cache],
                              env=self.env).returncode == 0


def start_sim(tmp, realm, cert, key):
    ready = os.path.join(tmp, "krb-sim.json")
    env = dict(realm.env)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    p = subprocess.Popen(
        [SYS_PY, T.SIM, "--credentials", os.path.join(tmp, "sim-cred"),
         "--ready-file", ready, "--job-seconds", "1.2",
         "--auth", "negotiate,kerberos", "--tls-cert", cert, "--tls-key", key,
         "--kerberos-keytab", realm.path("http.keytab"),
         "--kerberos-principal", "alice@" + REALM],
        env=env, stdout=subprocess.DEVNULL)
    T.procs.append(p)
    for _ in range(200):
        if os.path.exists(ready):
            return json.load(open(ready))
        if p.poll() is not None:
            raise RuntimeError("simulator exited")
        time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def write_conf(tmp, name, urls, cert):
    """No auth= key: the default (negotiate).  The credentials file names
    the account; Kerberos takes the ticket, never its password= line."""
    cred = os.path.join(tmp, "krb-cred")
    with open(cred, "w") as fh:
        fh.write("user=alice\npassword=\n")
    os.chmod(cred, 0o600)
    conf = os.path.join(tmp, name)
    with open(conf, "w") as fh:
        fh.write("[vmshift]\nstate-dir=%s\n\n[backend hv]\nplugin=hyperv\n"
                 "credentials=%s\nhosts=%s\nca-file=%s\ntimeout=20\n"
                 % (os.path.join(tmp, "state"), cred, ";".join(urls), cert))
    os.chmod(conf, 0o644)
    return conf


class KCli(T.Cli):
    """vmshift with the realm's krb5.conf and one ticket cache."""

    def __init__(self, conf, env, cache):
        super().__init__(conf)
        self.env = dict(env)
        self.env["KRB5CCNAME"] = cache

    def run(self, *args, timeout=120):
        r = subprocess.run(self.base + list(args), capture_output=True,
                           text=True, timeout=timeout, env=self.env)
        T.outputs.append(r.stdout + r.stderr)
        return r.returncode, r.stdout, r.stderr


def invokes(info):
    return [r for r in control(info, "/state")["requests"]
            if (r.get("action") or "").endswith(
                "/MigrateVirtualSystemToHost")]


def auth_log(info, since):
    return control(info, "/state")["auth"][since:]


def refused(V, info, what, want, sim_says=None):
    """`vmshift migrate csv01` fails with exactly one line containing
    @want, exit non-zero, csv01 where it was; the simulator logged no
    successful logon (and, with @sim_says, a refusal saying that)."""
    src, _, _, _ = vm_state(info, "csv01")
    dst = "HV02" if src == "HV01" else "HV01"
    n0 = len(control(info, "/state")["auth"])
    rc, out, err = V.run("migrate", "csv01", "--to", dst)
    h, _, _, cnt = vm_state(info, "csv01")
    lines = [l for l in err.splitlines() if l.strip()]
    ev = auth_log(info, n0)
    ok(rc != 0 and len(lines) == 1 and want in lines[0] and h == src and
       cnt == 1 and not any(e.get("ok") is True for e in ev),
       "%s: migrate fails with one line, exit %d; csv01 stays on %s in "
       "the simulator" % (what, rc, src),
       out + err + json.dumps(ev))
    print("# " + (lines[0] if lines else ""))
    if sim_says is not None:
        ok(any(e.get("ok") is False and sim_says in (e.get("detail") or "")
               for e in ev),
           "%s: the simulator refused the logon (%s)" % (what, sim_says),
           json.dumps(ev))


def run(tmp):
    realm = Realm(tmp)
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    info = start_sim(tmp, realm, cert, key)
    urls = [info["hosts"][h].replace("127.0.0.1", "localhost")
            for h in ("HV01", "HV02")]
    conf = write_conf(tmp, "krb.conf", urls, cert)

    # ---- a ticket of an allowed account -----------------------------------
    alice = realm.kinit("alice", os.path.join(realm.dir, "cc-alice"))
    V = KCli(conf, realm.env, alice)
    n0 = len(control(info, "/state")["auth"])
    rc, js, out = V.json("vms")
    s = control(info, "/state")
    want = {v["name"] for hs in s["hosts"].values() for v in hs["vms"]}
    got = {v["name"] for v in (js or {}).get("vms", [])}
    ev = auth_log(info, n0)
    ok(rc == 0 and got == want and want,
       "Kerberos: vms lists the simulator's VMs %s" % sorted(want), out)
    ok(any(e.get("ok") is True and e.get("user") == "alice@" + REALM and
           e.get("scheme") == "Negotiate" for e in ev) and
       not any(e.get("ok") is True and e.get("user") != "alice@" + REALM
               for e in ev),
       "Kerberos: the simulator accepted a SPNEGO ticket of alice@%s "
       "(GSS-API, HTTPS)" % REALM, json.dumps(ev[-4:]))
    src, _, _, _ = vm_state(info, "csv01")
    dst = "HV02" if src == "HV01" else "HV01"
    n0 = len(invokes(info))
    rc, out, err = V.run("migrate", "csv01", "--to", dst)
    h, v, _, cnt = vm_state(info, "csv01")
    sent = len(invokes(info)) - n0
    ok(rc == 0 and h == dst and cnt == 1 and v["enabled_state"] == 2 and
       sent == 1,
       "Kerberos: migrate csv01 --to %s: the simulator has it there, "
       "running, once; one MigrateVirtualSystemToHost received (%d: the "
       "401 round trip did not run it twice)" % (dst, sent), out + err)

    # ---- refusals ------------------------------------------------------------
    mallory = realm.kinit("mallory", os.path.join(realm.dir, "cc-mallory"))
    refused(KCli(conf, realm.env, mallory), info, "wrong principal",
            "does not accept mallory@" + REALM,
            "principal may not use WinRM")

    exp = os.path.join(realm.dir, "cc-expired")
    cache = realm.kinit("alice", exp, life="2s")
    # Waits for the ticket's end as klist sees it (not a timing assert).
    T.wait_for(lambda: not realm.valid(cache), 30)
    time.sleep(1.5)  # past the realm's clockskew too
    ok(not realm.valid(cache), "the short ticket has expired (klist -s)")
    refused(KCli(conf, realm.env, cache), info, "expired ticket",
            "ticket in %s has expired; renew it with kinit" % cache)

    none = "FILE:" + os.path.join(realm.dir, "cc-none")
    refused(KCli(conf, realm.env, none), info, "missing ticket",
            "no Kerberos ticket")

    # A URL by address: the realm has no HTTP/127.0.0.1 principal.
    conf2 = write_conf(tmp, "krb-ip.conf", [info["hosts"]["HV01"],
                                            info["hosts"]["HV02"]], cert)
    refused(KCli(conf2, realm.env, alice), info, "no service principal",
            "has no ticket for HTTP/127.0.0.1")


def main():
    if not os.path.exists(T.VMSHIFT) or not os.path.exists(
            os.path.join(T.PLUGDIR, "hyperv.so")):
        print("1..0 # SKIP host/vmshift or hyperv.so not built")
        return 0
    gone = missing()
    if gone:
        print("1..0 # SKIP needs %s (.ci/deps/hyperv.txt)" % gone)
        return 0
    tmp = tempfile.mkdtemp(prefix="hv-krb-")
    try:
        T.write_creds(tmp)
        run(tmp)
        ok(not any(("Negotiate " in o and "YII" in o) for o in T.outputs),
           "no SPNEGO token in any vmshift output")
        ok(not any(T.PASSWORD in o for o in T.outputs),
           "no password in any output")
    finally:
        T.stop_all(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
