# Shared by the per-backend claims scripts (tests/claims/esx.sh, kvm.sh,
# libvirt.sh): TAP helpers and the loop over tests/claims/claims.tsv. Source
# it, define claim_ID (the backend does it) and claim_ID_unsupported (the
# backend must answer with its "does not support" line) for each row, then
# call claims_run BACKEND. A row naming the backend with no function here is
# a failure. The peer's state is read by each function itself.
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
# check WHAT COMMAND...: ok when the command succeeds; else the last lines
# of the command's output ($CT/out, $CT/err)
check() {
    what=$1; shift
    if "$@"; then ok "$what"; else notok "$what" "$(cat "$CT/out" "$CT/err" 2>/dev/null | tail -8)"; fi
}
# one_line_err PATTERN: exactly one line on stderr, and it has PATTERN
one_line_err() { [ "$(wc -l <"$CT/err")" -eq 1 ] && grep -q -- "$1" "$CT/err"; }
# the id of the newest job in the journal ($1: the vmshift function)
last_job() {
    "$1" --json jobs >/dev/null 2>&1
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"]; print(max(x["id"] for x in j) if j else 0)' "$CT/out" 2>/dev/null
}

# claims_run BACKEND: every row of claims.tsv that names BACKEND
claims_run() {
    grep -v '^#' "$S/tests/claims/claims.tsv" | sed '/^$/d' >"$CT/rows"
    exec 3<"$CT/rows"
    while IFS='	' read -r id does lacks <&3; do
        fn=claim_$(echo "$id" | tr - _)
        for be in $(echo "$does" | tr , ' '); do
            [ "$be" = "$1" ] || continue
            if command -v "$fn" >/dev/null; then "$fn" </dev/null
            else notok "$1 $id: no test of this claim in tests/claims for backend $1"; fi
        done
        for be in $(echo "$lacks" | tr , ' '); do
            [ "$be" = "$1" ] || continue
            if command -v "${fn}_unsupported" >/dev/null; then "${fn}_unsupported" </dev/null
            else notok "$1 $id: no test that backend $1 answers 'does not support' in tests/claims"; fi
        done
    done
    exec 3<&-
}
