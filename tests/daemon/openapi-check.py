#!/usr/bin/env python3
"""Checks vmshiftd's real answers against its OpenAPI document (#17).

Usage: openapi-check.py SOCKET OPENAPI.json JOB_ID VM GROUP [BULK_ID]

Asks the daemon on SOCKET for every GET the document lists (and a check,
a bad submission, an unknown job, an unknown path), and validates each
answer's body against the schema the document gives for that path, method
and status (JSON Schema 2020-12, OpenAPI 3.1). Prints one line per answer:
"PASS what" or "FAIL what: why"; tests/daemon/api.sh turns them into TAP.
"""
import http.client
import json
import socket
import sys

import jsonschema


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def request(sock, method, path, body=None, ctype="application/json"):
    c = UnixConnection(sock)
    headers = {}
    if body is not None:
        headers["Content-Type"] = ctype
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def main():
    sock, doc_path, job_id, vm, group = sys.argv[1:6]
    bulk_id = sys.argv[6] if len(sys.argv) > 6 else None
    doc = json.load(open(doc_path))
    failures = 0

    def schema_for(template, method, status, ctype):
        op = doc["paths"][template][method.lower()]
        resp = op["responses"].get(str(status))
        if resp is None:
            return None, "status %d is not documented" % status
        if "$ref" in resp:
            resp = doc["components"]["responses"][resp["$ref"].split("/")[-1]]
        content = resp.get("content", {})
        base = ctype.split(";")[0].strip()
        if base not in content:
            return None, "content type %r is not documented (%s)" % (base, ", ".join(content))
        return content[base]["schema"], None

    def check(what, method, path, template, expect, body=None, ctype="application/json"):
        nonlocal failures
        status, rtype, data = request(sock, method, path, body, ctype)
        why = None
        if status != expect:
            why = "HTTP %d, expected %d: %s" % (status, expect, data[:300])
        else:
            schema, why = schema_for(template, method, status, rtype)
            if schema is not None and rtype.startswith("application/json"):
                try:
                    value = json.loads(data)
                    root = dict(schema)
                    root["components"] = doc["components"]
                    jsonschema.Draft202012Validator(root).validate(value)
                except (ValueError, jsonschema.ValidationError) as e:
                    why = str(e).splitlines()[0]
        if why:
            failures += 1
            print("FAIL %s: %s" % (what, why))
        else:
            print("PASS %s" % what)

    check("GET backends", "GET", "/api/v1/backends", "/api/v1/backends", 200)
    check("GET hosts", "GET", "/api/v1/hosts", "/api/v1/hosts", 200)
    check("GET hosts of a group", "GET", "/api/v1/hosts?group=" + group, "/api/v1/hosts", 200)
    check("GET hosts of an unknown group", "GET", "/api/v1/hosts?group=nope", "/api/v1/hosts", 404)
    check("GET vms", "GET", "/api/v1/vms", "/api/v1/vms", 200)
    check("GET rating", "GET", "/api/v1/vms/%s/rating?group=%s" % (vm, group),
          "/api/v1/vms/{vm}/rating", 200)
    check("GET rating of an unknown VM", "GET", "/api/v1/vms/novm/rating",
          "/api/v1/vms/{vm}/rating", 404)
    check("POST checks", "POST", "/api/v1/checks", "/api/v1/checks", 200,
          json.dumps({"vm": vm, "to_group": group}))
    check("GET jobs", "GET", "/api/v1/jobs", "/api/v1/jobs", 200)
    check("GET jobs?state=succeeded", "GET", "/api/v1/jobs?state=succeeded", "/api/v1/jobs", 200)
    check("GET jobs?state=bogus", "GET", "/api/v1/jobs?state=bogus", "/api/v1/jobs", 400)
    check("GET job", "GET", "/api/v1/jobs/" + job_id, "/api/v1/jobs/{id}", 200)
    check("GET unknown job", "GET", "/api/v1/jobs/999999", "/api/v1/jobs/{id}", 404)
    check("GET job 'abc'", "GET", "/api/v1/jobs/abc", "/api/v1/jobs/{id}", 400)
    check("POST jobs with an unknown key", "POST", "/api/v1/jobs", "/api/v1/jobs", 400,
          json.dumps({"vm": vm, "to": "x", "bogus": 1}))
    check("POST jobs without a JSON body type", "POST", "/api/v1/jobs", "/api/v1/jobs", 400,
          json.dumps({"vm": vm, "to": "x"}), "application/x-www-form-urlencoded")
    check("POST jobs for an unknown VM", "POST", "/api/v1/jobs", "/api/v1/jobs", 404,
          json.dumps({"vm": "novm", "to": "x"}))
    check("POST cancel of an unknown job", "POST", "/api/v1/jobs/999999/cancel",
          "/api/v1/jobs/{id}/cancel", 404, "{}")
    check("POST repair of a succeeded job", "POST", "/api/v1/jobs/%s/repair" % job_id,
          "/api/v1/jobs/{id}/repair", 409, "{}")
    check("GET bulks", "GET", "/api/v1/bulks", "/api/v1/bulks", 200)
    check("GET unknown bulk", "GET", "/api/v1/bulks/999999", "/api/v1/bulks/{id}", 404)
    if bulk_id:
        check("GET bulk", "GET", "/api/v1/bulks/" + bulk_id, "/api/v1/bulks/{id}", 200)
    check("GET openapi.json", "GET", "/api/v1/openapi.json", "/api/v1/openapi.json", 200)
    check("GET metrics", "GET", "/metrics", "/metrics", 200)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
