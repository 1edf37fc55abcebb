#!/usr/bin/env python3
"""qmp.py SOCKET COMMAND [ARGUMENTS-JSON]: one QMP command to a QEMU, the
peer's own view for tests/claims/kvm.sh; prints the "return" value as JSON
(a string return as is) and exits 0, or prints the error and exits 1."""
import json
import socket
import sys


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sys.argv[1])
    f = s.makefile("rw")
    json.loads(f.readline())  # the greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    cmd = {"execute": sys.argv[2]}
    if len(sys.argv) > 3:
        cmd["arguments"] = json.loads(sys.argv[3])
    answered = False
    while True:
        line = f.readline()
        if not line:
            print("no answer", file=sys.stderr)
            return 1
        r = json.loads(line)
        if "event" in r:
            continue
        if not answered:  # qmp_capabilities
            answered = True
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            continue
        if "error" in r:
            print(r["error"].get("desc", "error"), file=sys.stderr)
            return 1
        v = r.get("return")
        print(v if isinstance(v, str) else json.dumps(v))
        return 0


sys.exit(main())
