#!/usr/bin/env python3
"""qmp-lose-reply.py LISTEN REAL COMMAND LOG [cut]: a QMP proxy for fault tests.

Listens on the unix socket LISTEN and relays every connection to QEMU's
QMP socket REAL, both ways, line by line, except that the reply to the
first COMMAND (e.g. migrate) is swallowed: QEMU carries the command out,
and the client never hears back (a reply lost on the way). LOG gets one
line per COMMAND relayed ("sent ID") and per reply lost ("lost ID").
With "cut", the connection is closed instead, right after the command
went to QEMU (a connection cut while the reply was on its way). With
"error", the first COMMAND never reaches QEMU: the proxy answers it with a
QMP error reply (a server error: QEMU refusing the command), logged as
"refused ID". Runs until killed."""
import json
import os
import socket
import sys
import threading

listen, real, command, logf = sys.argv[1:5]
cut = sys.argv[5:6] == ["cut"]
refuse = sys.argv[5:6] == ["error"]
state = {"lost": None, "refused": False}
lock = threading.Lock()


def note(line):
    with lock, open(logf, "a") as f:
        f.write(line + "\n")


def pump(src, dst, inspect, write):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if inspect(line):
                    write(dst, line + b"\n")
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    up.connect(real)
    wlock = threading.Lock()  # the two directions both write to the client

    def write(sock, data):
        with wlock:
            sock.sendall(data)

    def from_client(line):
        try:
            msg = json.loads(line)
        except ValueError:
            return True
        if isinstance(msg, dict) and msg.get("execute") == command and refuse:
            with lock:
                first = not state["refused"]
                state["refused"] = True
            if first:
                note("refused %s" % msg.get("id"))
                reply = {"error": {"class": "GenericError",
                                   "desc": "injected server error on %s" % command}}
                if "id" in msg:
                    reply["id"] = msg["id"]
                write(client, json.dumps(reply).encode() + b"\r\n")
                return False
        if isinstance(msg, dict) and msg.get("execute") == command and not refuse:
            note("sent %s" % msg.get("id"))
            with lock:
                if state["lost"] is None:
                    state["lost"] = msg.get("id", "")
        return True

    def from_qemu(line):
        try:
            msg = json.loads(line)
        except ValueError:
            return True
        with lock:
            lost = state["lost"]
        if isinstance(msg, dict) and lost is not None and "id" in msg and msg["id"] == lost \
                and ("return" in msg or "error" in msg):
            with lock:
                state["lost"] = False  # only the first
            note("lost %s" % msg["id"])
            if cut:
                raise OSError("cut")
            return False
        return True

    threading.Thread(target=pump, args=(client, up, from_client, write), daemon=True).start()
    pump(up, client, from_qemu, write)


def main():
    if os.path.exists(listen):
        os.unlink(listen)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    srv.listen(8)
    note("ready")
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
