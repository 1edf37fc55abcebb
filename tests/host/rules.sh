#!/bin/sh
# The one rule engine through the vmshift command on the skeleton plugin
# (TAP): each finding code the host raises from facts, raised by a scenario
# set up in the skeleton's state file (its stand-in hypervisor), appears
# exactly once with the table's severity, and the exit status of check and
# migrate --dry-run is the verdict; rate and check agree on every host of a
# group; placing 20 VMs on the 4 hosts of a group spreads them and, the
# storage being shared, moves none of it (read back from the state file).
set -u
B=${VMSHIFT_BUILDDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-rules.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

if [ ! -f "$B/tests/skeleton/.libs/skeleton.so" ] || ! command -v python3 >/dev/null; then
    echo "1..0 # SKIP skeleton plugin or python3 missing"; exit 0
fi
mkdir -p "$T/plugins" "$T/etc/backends.d" "$T/state"
chmod 755 "$T" "$T/plugins" "$T/etc" "$T/etc/backends.d"
cp "$B/tests/skeleton/.libs/skeleton.so" "$T/plugins/" && chmod 755 "$T/plugins/skeleton.so"
cat >"$T/etc/vmshift.conf" <<EOC
[group four]
hosts=demo:alpha;demo:beta;demo:gamma;demo:delta
[group odd]
hosts=demo:beta;demo:nosuch
[group farm]
hosts=farm:h1;farm:h2;farm:h3;farm:h4
[group mixed]
hosts=demo:beta;farm:h1
EOC
vms=""
for i in $(seq 1 20); do vms="$vms${vms:+;}v$i@h0"; done
cat >"$T/etc/backends.d/demo.conf" <<EOC
[backend demo]
plugin=skeleton
hosts=alpha;beta;gamma;delta
vms=web1@alpha;db1@alpha
state-file=$T/demo.state
transfer-seconds=0
[backend farm]
plugin=skeleton
hosts=h0;h1;h2;h3;h4
vms=$vms
state-file=$T/farm.state
shared-path=/srv/shared
transfer-seconds=0
EOC
V() { "$VMSHIFT" --config "$T/etc/vmshift.conf" --plugin-dir "$T/plugins" --state-dir "$T/state" "$@"; }
V hosts >/dev/null 2>&1 # creates the state files

# state FILE GROUP KEY VALUE (VALUE "-" removes the key): the hypervisor's facts
state() {
    python3 - "$@" <<'EOP'
import sys, configparser
f, g, k, v = sys.argv[1:5]
c = configparser.RawConfigParser(delimiters=("=",))
c.optionxform = str
c.read(f)
if not c.has_section(g):
    c.add_section(g)
if v == "-":
    c.remove_option(g, k)
else:
    c.set(g, k, v)
with open(f, "w") as o:
    c.write(o, space_around_delimiters=False)
EOP
}
# count JSON CODE: how often CODE is among the findings; and its severities
count() {
    python3 -c 'import sys, json
j = json.load(open(sys.argv[1])); c = [f for f in j["findings"] if f["code"] == sys.argv[2]]
print(len(c), ",".join(sorted(set(f["severity"] for f in c))))' "$1" "$2"
}
# scenario NAME CODE SEVERITY RC ARGS...: check ARGS raises CODE once with
# SEVERITY, exits RC; migrate --dry-run says the same
scenario() {
    name=$1 code=$2 sev=$3 want=$4; shift 4
    V --json check "$@" >"$T/out" 2>"$T/err"; rc=$?
    got=$(count "$T/out" "$code" 2>&1)
    V migrate "$@" --dry-run >"$T/dry" 2>&1; drc=$?
    if [ "$got" = "1 $sev" ] && [ $rc -eq "$want" ] && [ $drc -eq "$want" ]; then
        ok "$name: $code ($sev) once, check and --dry-run exit $want"
    else
        notok "$name: $code (got '$got', check rc $rc, dry-run rc $drc, want 1 $sev rc $want)" \
            "$(cat "$T/out" "$T/err")"
    fi
}
S=$T/demo.state

V --json check web1 --to beta >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && python3 -c 'import sys, json; assert json.load(open(sys.argv[1]))["findings"] == []' "$T/out" \
    && ok "clean move: no findings, exit 0" || notok "clean move (rc $rc)" "$(cat "$T/out" "$T/err")"
scenario "VM already there" same-host error 1 web1 --to alpha
state "$S" "host beta" status maintenance
scenario "maintenance" host-maintenance error 1 web1 --to beta
state "$S" "host beta" status disconnected
scenario "disconnected" host-unreachable error 1 web1 --to beta
state "$S" "host beta" status limited
scenario "degraded host" host-limited warning 1 web1 --to beta
V check web1 --to beta --force >/dev/null 2>&1 && ok "--force accepts the warning (exit 0)" \
    || notok "--force with a warning"
state "$S" "host beta" status -
state "$S" "vm web1" power stopped
scenario "live move of a stopped VM" not-running error 1 web1 --to beta --live
state "$S" "vm web1" power running
scenario "cold move of a running VM" running error 1 web1 --to beta --cold
state "$S" "vm web1" merging pre-patch
scenario "merge running" merge-in-progress error 1 web1 --to beta
state "$S" "vm web1" merging -
state "$S" "vm web1" consolidate true
scenario "consolidation due" needs-consolidation warning 1 web1 --to beta
state "$S" "vm web1" consolidate -
state "$S" "host beta" memory-free 1073741824
scenario "no memory" no-memory error 1 web1 --to beta
state "$S" "host beta" memory-free unknown
scenario "memory unknown" memory-unknown warning 1 web1 --to beta
state "$S" "host beta" memory-free -
state "$S" "host beta" volume-free 1048576
scenario "no space" no-space error 1 web1 --to beta --path /srv/vms
state "$S" "host beta" volume-free 11811160064
scenario "little space left" low-space warning 1 web1 --to beta --path /srv/vms
state "$S" "host beta" volume-free unknown
scenario "free space unknown" space-unknown warning 1 web1 --to beta --path /srv/vms
state "$S" "host beta" volume-free -
state "$S" "vm web1" disk-size unknown
scenario "disk size unknown (not 0)" disk-size-unknown warning 1 web1 --to beta --path /srv/vms
state "$S" "vm web1" disk-size -
state "$S" "host beta" networks dmz
scenario "network missing" network-missing error 1 web1 --to beta
state "$S" "host beta" networks -
scenario "mapping to a missing network" network-missing error 1 web1 --to beta --network net0=dmz
scenario "no such disk" disk-not-found error 1 web1 --to beta --disk-path disk9=/srv/vms
scenario "no such NIC" nic-not-found error 1 web1 --to beta --network net9=lan
scenario "--transfer san on local storage" storage-not-shared error 1 web1 --to beta --transfer san
state "$S" "host alpha" compat cpu-a
state "$S" "host beta" compat cpu-b
scenario "CPU class differs" cpu-incompatible error 1 web1 --to beta --live
state "$S" "host alpha" compat -
state "$S" "host beta" compat -
scenario "backend-only: unknown option" unknown-option error 1 web1 --to beta --option x=1
scenario "backend-only: a --transfer it lacks" transfer-conflict error 1 web1 --to beta --transfer network

# rate: a host check refuses gets 0 stars and the refusing finding
V --json rate web1 --group odd >"$T/out" 2>"$T/err"
python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["nosuch"]["stars"] == 0 and r["nosuch"]["reason_code"] == "host-not-found", r
assert r["beta"]["eligible"] and all(f["detail"] for f in r["beta"]["factors"])' "$T/out" \
    && ok "rate: a host the backend does not know is ruled out by host-not-found" \
    || notok "rate odd group" "$(cat "$T/out" "$T/err")"

# rate: a host of another backend is ruled out by "other-backend"
V --json rate web1 --group mixed >"$T/out" 2>"$T/err"
python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
assert r["h1"]["stars"] == 0 and r["h1"]["reason_code"] == "other-backend", r
assert r["beta"]["eligible"], r' "$T/out" \
    && ok "rate: a host of backend farm is ruled out by other-backend (0 stars)" \
    || notok "rate mixed group" "$(cat "$T/out" "$T/err")"

# rate and check agree on every host of the group
state "$S" "host gamma" status maintenance
state "$S" "host delta" memory-free 1073741824
state "$S" "vm web1" consolidate true
V --json rate web1 --group four >"$T/rate" 2>"$T/err"
agree=yes
for h in alpha beta gamma delta; do
    line=$(python3 -c 'import sys, json
r = [x for x in json.load(open(sys.argv[1]))["ratings"] if x["host"] == sys.argv[2]][0]
print("yes" if r["eligible"] else "no", r["stars"], r["reason_code"] or "-", r["dest_path"] or "-")' "$T/rate" "$h")
    set -- $line
    if [ "$4" = - ]; then V --json check web1 --to "$h" --force >"$T/chk" 2>&1; rc=$?
    else V --json check web1 --to "$h" --path "$4" --force >"$T/chk" 2>&1; rc=$?; fi
    if [ "$1" = yes ] && [ $rc -eq 0 ]; then :
    elif [ "$1" = no ] && [ $rc -ne 0 ] && [ "$2" = 0 ] && [ "$(count "$T/chk" "$3")" = "1 error" ]; then :
    else agree=no; echo "# $h: rate $line, check rc $rc"; cat "$T/chk" | sed 's/^/# /'; fi
done
[ $agree = yes ] && ok "rate and check agree on every host of the group (ruled out = refused, same code)" \
    || notok "rate and check disagree"
python3 -c 'import sys, json
r = {x["host"]: x for x in json.load(open(sys.argv[1]))["ratings"]}
f = [x for x in r["beta"]["factors"] if x["code"] == "needs-consolidation"]
assert f and f[0]["effect"] < 0 and r["beta"]["score"] <= 4, r["beta"]' "$T/rate" \
    && ok "rate: consolidation due takes stars off, as check warns" || notok "rate consolidation" "$(cat "$T/rate")"
state "$S" "host gamma" status -
state "$S" "host delta" memory-free -
state "$S" "vm web1" consolidate -

# placement: 20 VMs on the 4 hosts of a group, storage shared
{ echo "[bulk]"; echo "max-per-backend=20"; echo "max-per-host=20"; echo "[wave 1]"
  printf 'vms='; for i in $(seq 1 20); do printf 'farm:v%s;' "$i"; done; echo; echo "to-group=farm"; } >"$T/plan.conf"
V --json bulk "$T/plan.conf" --dry-run >"$T/out" 2>"$T/err"; rc=$?
python3 -c 'import sys, json, collections
cmds = json.load(open(sys.argv[1]))["waves"][0]["commands"]
hosts = collections.Counter(c["command"].split("--to ")[1].split()[0] for c in cmds)
assert len(cmds) == 20 and all(c["would_run"] for c in cmds), cmds
assert sorted(hosts.values()) == [5, 5, 5, 5], hosts
assert not any("--path" in c["command"] for c in cmds), cmds
assert all("storage stays" in c["placement"] for c in cmds), cmds' "$T/out" && [ $rc -eq 0 ] \
    && ok "bulk --dry-run: 20 VMs spread 5/5/5/5, no storage move, each validated" \
    || notok "placement dry run (rc $rc)" "$(cat "$T/out" "$T/err")"
V bulk "$T/plan.conf" >"$T/out" 2>"$T/err"; rc=$?
python3 -c 'import sys, configparser, collections
c = configparser.RawConfigParser(); c.optionxform = str; c.read(sys.argv[1])
vms = [s for s in c.sections() if s.startswith("vm ")]
hosts = collections.Counter(c.get(s, "host") for s in vms)
assert sorted(hosts.items()) == [("h1", 5), ("h2", 5), ("h3", 5), ("h4", 5)], hosts
assert all(c.get(s, "path") == "/srv/shared" for s in vms)' "$T/farm.state" && [ $rc -eq 0 ] \
    && ok "bulk: the hypervisor has 5 VMs on each host, every disk still on /srv/shared" \
    || notok "placement run (rc $rc)" "$(cat "$T/out" "$T/err")"

# a wrong filter is an error, not an empty listing
V vms --host nosuch >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "host 'nosuch' not found" "$T/err" && ok "vms --host NOSUCH: exit 1, says so" \
    || notok "vms --host NOSUCH (rc $rc)" "$(cat "$T/out" "$T/err")"
V vms --backend nosuch >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "no backend 'nosuch'" "$T/err" && ok "vms --backend NOSUCH: exit 1" \
    || notok "vms --backend NOSUCH (rc $rc)" "$(cat "$T/err")"
# a VM not found while a host did not answer: the message names that host
state "$S" "host gamma" status disconnected
V check nosuchvm --to beta >"$T/out" 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "VM 'nosuchvm' not found in any backend" "$T/err" \
    && grep -q "host 'gamma' of backend 'demo' did not answer (disconnected" "$T/err" \
    && [ "$(grep -c . "$T/err")" = 1 ] \
    && ok "VM not found: the disconnected host and its backend are named, on one line" \
    || notok "not found with a silent host (rc $rc)" "$(cat "$T/err")"
state "$S" "host gamma" status -
echo "1..$n"
