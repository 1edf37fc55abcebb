#!/bin/sh
# vmshiftd on TCP with TLS (#17): bearer tokens from a 0600 file (read vs
# admin), client certificates from a CA, no plain text, and changes refused
# when a browser says they come from another site. Every refused change is
# checked in the skeleton peer's state file (the VM did not move) and in
# the journal (no job); the allowed one moves the VM on the peer.
set -u
. "${VMSHIFT_SRCDIR:-.}/tests/daemon/lib.sh"
JSON=$B/tests/host/json-check
command -v openssl >/dev/null || skip_all "openssl not installed"

echo "1..14"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
U=https://127.0.0.1:$PORT
C=$T/tls
mkdir -p "$C"
# a CA, the daemon's certificate for 127.0.0.1, a client certificate it
# signs, and a self-signed one with the same name
ssl() { openssl "$@" >/dev/null 2>&1; }
ssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" -out "$C/ca.crt" -days 2 -subj /CN=test-ca
ssl req -newkey rsa:2048 -nodes -keyout "$C/srv.key" -out "$C/srv.csr" -subj /CN=localhost
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$C/srv.ext"
ssl x509 -req -in "$C/srv.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -out "$C/srv.crt" -days 2 -extfile "$C/srv.ext"
ssl req -newkey rsa:2048 -nodes -keyout "$C/cli.key" -out "$C/cli.csr" -subj /CN=ops-robot
ssl x509 -req -in "$C/cli.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -out "$C/cli.crt" -days 2
ssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/fake.key" -out "$C/fake.crt" -days 2 -subj /CN=ops-robot
READ=read-token-0123456789abcdef
ADMIN=admin-token-0123456789abcdef
printf '# who may use vmshiftd on TCP\nread viewer %s\nadmin ops %s\n' "$READ" "$ADMIN" >"$C/tokens"
chmod 644 "$C/tokens"
cat >>"$T/etc/vmshift.conf" <<EOC
[vmshiftd]
listen=127.0.0.1:$PORT
tls-cert=$C/srv.crt
tls-key=$C/srv.key
tokens=$C/tokens
client-ca=$C/ca.crt
admin-certs=ops-robot
EOC
tcp() { curl -sS --max-time 30 --cacert "$C/ca.crt" "$@"; }
njobs() { V --json jobs | grep -c '"pid"'; }

# ---- the tokens file must be 0600 ------------------------------------------------
start_daemon
sleep 0.5
if ! kill -0 "$DPID" 2>/dev/null && [ "$(grep -c . "$T/d.log")" -eq 1 ] && grep -q "tokens file $C/tokens is mode 0644: it must be 0600" "$T/d.log"; then
    ok "a tokens file readable by others: vmshiftd refuses to start, one line"
else notok "tokens file 0644" "$(cat "$T/d.log")"; fi
stop_daemon; : >"$T/d.log"
chmod 600 "$C/tokens"
start_daemon && ok "vmshiftd listens on its socket and $U" || { notok "vmshiftd did not start" "$(cat "$T/d.log")"; exit 1; }
i=0; while [ $i -lt 50 ] && ! grep -q "https://127.0.0.1:$PORT" "$T/d.log"; do sleep 0.1; i=$((i + 1)); done

# ---- who is asking -----------------------------------------------------------------
code=$(tcp -o "$T/r" -D "$T/h" -w '%{http_code}' "$U/api/v1/jobs")
if [ "$code" = 401 ] && grep -qi '^WWW-Authenticate: Bearer' "$T/h" && grep -q auth-failed "$T/r"; then ok "no token: 401 with WWW-Authenticate"
else notok "no token (HTTP $code)" "$(cat "$T/r")"; fi
code=$(tcp -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer not-a-token-at-all-xxxx" "$U/api/v1/jobs")
[ "$code" = 401 ] && ok "an unknown token: 401" || notok "unknown token (HTTP $code)" "$(cat "$T/r")"
code=$(curl -sS --max-time 10 -o "$T/r" -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/jobs" 2>/dev/null)
case $code in 2*|4*) notok "plain HTTP on the TLS port answered (HTTP $code)" "$(cat "$T/r")";; *) ok "plain HTTP on the TLS port gets no answer";; esac
tcp -H "Authorization: Bearer $READ" "$U/api/v1/vms?backend=demo" >"$T/a.json"
V --json vms --backend demo >"$T/c.json"
if python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:3]); sys.exit(a!=b)' "$T/a.json" "$T/c.json"; then
    ok "read token: GET /api/v1/vms equals vmshift --json vms"
else notok "read token GET /vms" "$(head -c 300 "$T/a.json")"; fi

# ---- a read token cannot start a job -----------------------------------------------
before=$(njobs)
code=$(tcp -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $READ" -H 'Content-Type: application/json' \
    -d '{"vm": "web1", "to": "beta"}' "$U/api/v1/jobs")
sleep 1
if [ "$code" = 403 ] && grep -q "token 'viewer' (read" "$T/r" && [ "$(njobs)" = "$before" ] && [ "$(peer_host demo web1)" = alpha ]; then
    ok "read token: POST /jobs refused (403); no job, web1 stays on alpha"
else notok "read token POST (HTTP $code, jobs $before -> $(njobs), peer $(peer_host demo web1))" "$(cat "$T/r")"; fi

# ---- cross-site: an admin's credentials, sent by another site's page -----------------
for hdr in "Origin: https://evil.example" "Sec-Fetch-Site: cross-site"; do
    code=$(tcp -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H "$hdr" \
        -H 'Content-Type: application/json' -d '{"vm": "web1", "to": "beta"}' "$U/api/v1/jobs")
    sleep 1
    if [ "$code" = 403 ] && [ "$(njobs)" = "$before" ] && [ "$(peer_host demo web1)" = alpha ]; then
        ok "admin token, $hdr: POST /jobs refused (403); no job, web1 on alpha"
    else notok "cross-site $hdr (HTTP $code, jobs $(njobs), peer $(peer_host demo web1))" "$(cat "$T/r")"; fi
done

# ---- an admin token starts a job; the journal says who -------------------------------
code=$(tcp -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H "Origin: $U" \
    -H 'Content-Type: application/json' -d '{"vm": "web1", "to": "beta"}' "$U/api/v1/jobs")
jid=$("$JSON" id <"$T/r" 2>/dev/null)
st=$(wait_job "$jid" 30)
if [ "$code" = 201 ] && [ "$st" = succeeded ] && [ "$(peer_host demo web1)" = beta ] \
    && V --json job show "$jid" | grep -q "submitted by token 'ops' (admin, 127.0.0.1)"; then
    ok "admin token (same origin): job $jid succeeds, web1 on beta, the journal names token 'ops'"
else notok "admin token POST (HTTP $code, job '$jid' $st, peer $(peer_host demo web1))" "$(cat "$T/r")"; fi

# ---- client certificates ----------------------------------------------------------
code=$(tcp -o "$T/r" -w '%{http_code}' --cert "$C/cli.crt" --key "$C/cli.key" \
    -H 'Content-Type: application/json' -d '{"vm": "web1", "to": "alpha"}' "$U/api/v1/jobs")
cid=$("$JSON" id <"$T/r" 2>/dev/null)
st=$(wait_job "$cid" 30)
if [ "$code" = 201 ] && [ "$st" = succeeded ] && [ "$(peer_host demo web1)" = alpha ] \
    && V --json job show "$cid" | grep -q "submitted by certificate 'ops-robot'"; then
    ok "client certificate of the CA, in admin-certs: job $cid succeeds, web1 back on alpha"
else notok "client certificate (HTTP $code, job '$cid' $st)" "$(cat "$T/r")"; fi
before=$(njobs)
code=$(tcp -o "$T/r" -w '%{http_code}' --cert "$C/fake.crt" --key "$C/fake.key" \
    -H 'Content-Type: application/json' -d '{"vm": "web1", "to": "beta"}' "$U/api/v1/jobs")
sleep 1
if [ "$code" = 401 ] && [ "$(njobs)" = "$before" ] && [ "$(peer_host demo web1)" = alpha ]; then
    ok "a self-signed certificate with the same name: 401, no job, web1 on alpha"
else notok "fake certificate (HTTP $code)" "$(cat "$T/r")"; fi

# ---- the socket is unchanged by TCP: root on the socket still may -------------------
api "http://localhost/api/v1/jobs?limit=1" >"$T/r"
[ "$("$JSON" total <"$T/r")" = "$(njobs)" ] && ok "the Unix socket still answers root beside TCP" || notok "socket beside TCP" "$(cat "$T/r")"

stop_daemon
sed -i '/^tls-cert=/d' "$T/etc/vmshift.conf"; : >"$T/d.log"
start_daemon; sleep 0.5
if ! kill -0 "$DPID" 2>/dev/null && grep -q "listen=127.0.0.1:$PORT needs tls-cert= and tls-key=" "$T/d.log"; then ok "listen= without a certificate: refused (no plain-text TCP)"
else notok "listen without cert" "$(cat "$T/d.log")"; fi
