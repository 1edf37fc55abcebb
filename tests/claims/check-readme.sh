#!/bin/sh
# Every claim of README.md's "Claims and their tests" section (the bullets
# "* `ID`: ...") has a row in tests/claims/claims.tsv, and every row a
# claim. Prints TAP.
set -u
S=${VMSHIFT_SRCDIR:-.}
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-claims.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
# the section, from its heading to the next "## "
awk '/^## Claims and their tests/ {on = 1; next} /^## / {on = 0} on' "$S/README.md" |
    sed -n 's/^\* `\([a-z0-9-]*\)`:.*/\1/p' | sort >"$T/readme"
grep -v '^#' "$S/tests/claims/claims.tsv" | cut -f1 | sed '/^$/d' | sort >"$T/rows"
n=0
fail=0
res() { n=$((n + 1)); if [ "$1" = ok ]; then echo "ok $n - $2"; else fail=1; echo "not ok $n - $2"; fi; }
if [ -s "$T/readme" ]; then res ok "README.md has a claims section ($(wc -l <"$T/readme") claims)"
else res bad "README.md has no \"Claims and their tests\" section with \"* \`ID\`:\" bullets"; fi
missing=$(comm -23 "$T/readme" "$T/rows" | tr '\n' ' ')
extra=$(comm -13 "$T/readme" "$T/rows" | tr '\n' ' ')
if [ -z "$missing" ]; then res ok "every README claim has a row in claims.tsv"
else res bad "README claims with no row in tests/claims/claims.tsv: $missing"; fi
if [ -z "$extra" ]; then res ok "every row of claims.tsv is a README claim"
else res bad "rows of tests/claims/claims.tsv with no README claim: $extra"; fi
dups=$(uniq -d "$T/rows" | tr '\n' ' ')
if [ -z "$dups" ]; then res ok "no claim has two rows"; else res bad "claims with two rows: $dups"; fi
bad=$(grep -v '^#' "$S/tests/claims/claims.tsv" | sed '/^$/d' | awk -F'\t' 'NF != 3 {print NR": "$0}')
if [ -z "$bad" ]; then res ok "every row has three tab-separated fields"; else res bad "malformed rows: $bad"; fi
echo "1..$n"
exit $fail
