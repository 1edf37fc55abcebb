#!/usr/bin/env python3
"""Scripted HTTP(S) peer for tests/unit/test-http.c.

Usage: http-peer.py [--cert CERT --key KEY]

Listens on 127.0.0.1 (an ephemeral port: plain HTTP, and HTTPS when a
certificate is given), prints "PORTS <plain> <tls-or-0>" on stdout, and
serves until its stdin is closed (so it never outlives the test).

Endpoints (any method unless noted):
  /hello              200 "hello world"
  /echo               200, the request body back; X-Got-* headers describe
                      the request (method, content type, SOAPAction, cookie)
  /auth-basic         200 with Basic alice:s3cr3t-pw, else 401 + challenge
  /login              200 + Set-Cookie vmware_soap_session=abc123
  /needs-cookie       200 SOAP envelope with that cookie, else 500 SOAP fault
                      NotAuthenticated
  /fault              500 SOAP 1.1 fault InvalidLogin
  /fault12            500 SOAP 1.2 WS-Man fault w:AccessDenied
  /soap-ok            200 SOAP 1.1 LoginResponse
  /html500            500 text/html that is not XML
  /empty200           200 with an empty body
  /status/N           status N, empty body
  /drop               headers promising 100000 bytes, 10 bytes, then close
  /nothing            close the connection without a reply
  /slow?s=N           wait N seconds, then 200
  /big?n=N            200 with N bytes
"""
import argparse
import base64
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

LOGIN_FAULT = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP11}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>
"""

NOT_AUTH_FAULT = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP11}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>
"""

WSMAN_FAULT = f"""<s:Envelope xmlns:s="{SOAP12}" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">Access is denied.</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5" Machine="hv1"><f:Message>Access is denied. </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>
"""

LOGIN_OK = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body><LoginResponse xmlns="urn:vim25"><returnval><key>k1</key><userName>alice</userName></returnval></LoginResponse></soapenv:Body></soapenv:Envelope>
"""

GOOD_AUTH = "Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body=b"", ctype="text/plain", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        body = self.read_body()
        p = url.path
        if p == "/hello":
            self.reply(200, "hello world", headers=[("X-Test", "1"), ("X-Test", "2")])
        elif p == "/echo":
            self.reply(200, body, ctype="application/octet-stream", headers=[
                ("X-Got-Method", self.command),
                ("X-Got-Content-Type", self.headers.get("Content-Type", "")),
                ("X-Got-SOAPAction", self.headers.get("SOAPAction", "")),
                ("X-Got-Extra", self.headers.get("X-Extra", "")),
                ("X-Got-Default", self.headers.get("X-Default", "")),
                ("X-Got-User-Agent", self.headers.get("User-Agent", "")),
            ])
        elif p == "/auth-basic":
            if self.headers.get("Authorization") == GOOD_AUTH:
                self.reply(200, "welcome")
            else:
                self.reply(401, "no", headers=[("WWW-Authenticate", 'Basic realm="test"')])
        elif p == "/login":
            self.reply(200, LOGIN_OK, ctype="text/xml; charset=utf-8",
                       headers=[("Set-Cookie", "vmware_soap_session=abc123; HttpOnly; Path=/")])
        elif p == "/needs-cookie":
            if "vmware_soap_session=abc123" in (self.headers.get("Cookie") or ""):
                self.reply(200, LOGIN_OK, ctype="text/xml; charset=utf-8")
            else:
                self.reply(500, NOT_AUTH_FAULT, ctype="text/xml; charset=utf-8")
        elif p == "/fault":
            self.reply(500, LOGIN_FAULT, ctype="text/xml; charset=utf-8")
        elif p == "/fault12":
            self.reply(500, WSMAN_FAULT, ctype="application/soap+xml;charset=UTF-8")
        elif p == "/soap-ok":
            self.reply(200, LOGIN_OK, ctype="text/xml; charset=utf-8")
        elif p == "/html500":
            self.reply(500, "<html><body>Internal error<br></body>", ctype="text/html")
        elif p == "/empty200":
            self.reply(200, b"", ctype="text/xml")
        elif p.startswith("/status/"):
            self.reply(int(p.split("/")[2]), b"")
        elif p == "/drop":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_now()
        elif p == "/nothing":
            self.close_now()
        elif p == "/slow":
            time.sleep(float(q.get("s", ["30"])[0]))
            self.reply(200, "slow")
        elif p == "/big":
            self.reply(200, b"x" * int(q.get("n", ["0"])[0]))
        else:
            self.reply(404, "not found")

    def close_now(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tls = None

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, on the request's own thread, so a
        # client that rejects our certificate only ends its own connection.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        try:
            super().finish_request(request, client_address)
        except (ssl.SSLError, OSError):
            pass

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    plain = Server(("127.0.0.1", 0), Handler)
    servers = [plain]
    tls_port = 0
    if args.cert:
        tls = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        tls.tls = ctx
        servers.append(tls)
        tls_port = tls.server_address[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stdout.write(f"PORTS {plain.server_address[1]} {tls_port}\n")
    sys.stdout.flush()
    # Serve until the test closes our stdin (or dies).
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
