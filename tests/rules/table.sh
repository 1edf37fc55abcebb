#!/bin/sh
# The table of finding codes per backend (tests/rules/codes.tsv), TAP:
# every canonical code of <vmshift/findings.h> has exactly one row, every
# row names all five backends, and every cell is a scenario script that
# exists and raises that code (a `scenario ... CODE SEVERITY` line, or for
# a code only `rate` shows, the code in the script's checks), "cannot: WHY",
# or "untested" (counted, and listed as a diagnostic).
S=${VMSHIFT_SRCDIR:-.}
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
exec python3 - "$S" <<'EOP'
import os, re, sys
src = sys.argv[1]
codes = re.findall(r'#define VMSHIFT_FINDING_[A-Z_]+ "([a-z-]+)"',
                   open(os.path.join(src, "sdk/include/vmshift/findings.h")).read())
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(src, "tests/rules/codes.tsv"))
        if l.strip() and not l.startswith("#")]
head, rows = rows[0], rows[1:]
n = 0
def tap(good, what, detail=""):
    global n
    n += 1
    print(("ok" if good else "not ok"), n, "-", what)
    if not good and detail:
        print("# " + detail)
tap(head == ["code", "kvm-qmp", "kvm-libvirt", "hyperv", "esx", "skeleton"], "header names the five backends", str(head))
names = [r[0] for r in rows]
missing = [c for c in codes if c not in names]
extra = [c for c in names if c not in codes]
dup = sorted({c for c in names if names.count(c) > 1})
tap(not missing and not extra and not dup, "one row per canonical code (%d codes)" % len(codes),
    "missing %s, not canonical %s, twice %s" % (missing, extra, dup))
bad, untested, tested = [], [], 0
scripts = {}
for r in rows:
    if len(r) != 6:
        bad.append("%s: %d cells" % (r[0], len(r) - 1)); continue
    for be, cell in zip(head[1:], r[1:]):
        if cell == "untested":
            untested.append("%s/%s" % (r[0], be))
        elif cell.startswith("cannot: ") and len(cell) > 10:
            pass
        elif cell.startswith("tests/"):
            path = os.path.join(src, cell)
            if not os.path.isfile(path):
                bad.append("%s/%s: no script %s" % (r[0], be, cell)); continue
            text = scripts.setdefault(path, open(path).read())
            if not re.search(r"^\s*(PRE=.*\\\n\s*)?scenario .* %s (error|warning|info) " % re.escape(r[0]), text, re.M) \
                    and not re.search(r'"%s"' % re.escape(r[0]), text):
                bad.append("%s/%s: %s raises no such code" % (r[0], be, cell)); continue
            tested += 1
        else:
            bad.append("%s/%s: cell '%s'" % (r[0], be, cell))
tap(not bad, "every cell is a scenario that raises the code, 'cannot: why' or 'untested' (%d scenarios)" % tested,
    "; ".join(bad))
print("# untested (can be raised, no scenario yet): %d: %s" % (len(untested), " ".join(untested)))
print("1..%d" % n)
sys.exit(0)
EOP
