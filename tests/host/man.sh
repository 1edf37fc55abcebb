#!/bin/sh
# The man pages against the code (TAP), issue 18. Each page built from
# docs/*.scd renders with `man -l` without a warning and with every
# placeholder filled in; then:
#   vmshift(1)          every command of `vmshift --help`, every option each
#                       command's --help lists, its sections, the exit codes
#                       of host/host.h, the environment variables read;
#   vmshift.conf(5)     every configuration key the sources read (the host,
#                       the SDK's conf.c and http.c, each plugin under
#                       plugins/: found here by grep, so that a key added
#                       later without documentation fails this test);
#   vmshift-bulk(5)     every plan key host/bulk.c reads;
#   vmshift-plugin(7)   every installed SDK header, the skeleton, THREADS.md.
set -u
B=${VMSHIFT_BUILDDIR:-.}
S=${VMSHIFT_SRCDIR:-.}
VMSHIFT=$B/host/vmshift
T=$(mktemp -d "${TMPDIR:-/tmp}/vmshift-man.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

if ! command -v man >/dev/null; then
    echo "1..0 # SKIP man (man-db) is not installed"
    exit 0
fi

# ---- 1. every page renders -------------------------------------------------------------
PAGES="vmshift.1 vmshift.conf.5 vmshift-bulk.5 vmshift-plugin.7"
for p in $PAGES; do
    f=$B/docs/$p
    if [ ! -s "$f" ]; then notok "$p: built" "missing: $f"; continue; fi
    LC_ALL=C MANWIDTH=250 MANROFFOPT='-rHY=0 -ww' man --warnings -l "$f" >"$T/$p" 2>"$T/$p.err"
    rc=$?
    left=$(grep -o '%[A-Z]*%' "$f" | sort -u | tr '\n' ' ')
    if [ $rc -eq 0 ] && [ ! -s "$T/$p.err" ] && [ -z "$left" ] \
        && head -1 "$T/$p" | grep -q "^$(echo "$p" | sed 's/\.\([0-9]\)$/(\1)/; s/\./\\./g')"; then
        ok "$p renders without warnings, every placeholder filled in"
    else notok "$p renders (exit $rc)" "$(head -5 "$T/$p.err")" "placeholders left: $left"; fi
done
M1=$T/vmshift.1
M5=$T/vmshift.conf.5
MB=$T/vmshift-bulk.5
M7=$T/vmshift-plugin.7
# a page without its EXAMPLES: a key is documented, not only used in an example
no_examples() { awk '/^[A-Z]/ { ex = ($0 == "EXAMPLES") } !ex' "$1" >"$1.noex"; }
no_examples "$M5"
no_examples "$MB"

# a word of @2 as it is written in a page: not inside a longer name
has_word() { grep -q -- "\(^\|[^a-zA-Z0-9_-]\)$1\([^a-zA-Z0-9_-]\|\$\)" "$2"; }
# KEY= in the page (every key is documented as KEY=VALUE)
has_key() { grep -q -- "\(^\|[^a-zA-Z0-9_.-]\)$1=" "$2"; }
# the text of section @1 of page @2, to the next section
section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on' "$2"; }

# ---- 2. vmshift(1): commands, options, sections, exit codes, environment -----------------
"$VMSHIFT" --help >"$T/help" 2>&1 || notok "vmshift --help" "$(cat "$T/help")"
# "  NAME ARGS     summary": the name is the lowercase words before the arguments
sed -n '/^Commands:$/,/^$/p' "$T/help" | sed -n 's/^  //p' | sed 's/   */\t/' | cut -f1 |
    awk '{ s = ""; for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) s = s (s ? " " : "") $i; print s }' \
    >"$T/commands"
ncmd=$(grep -c . "$T/commands")
missing=
while read -r c; do
    [ -n "$c" ] || continue
    # a command is a term of COMMANDS: its line starts with it
    section COMMANDS "$M1" | grep -q "^ *$c\( \|\$\)" || missing="$missing '$c'"
done <"$T/commands"
if [ "$ncmd" -ge 15 ] && [ -z "$missing" ]; then ok "vmshift(1) has each of the $ncmd commands of --help under COMMANDS"
else notok "vmshift(1) lacks commands:$missing ($ncmd found in --help)" "$(cat "$T/help")"; fi

missing=
nopt=0
while read -r c; do
    [ -n "$c" ] || continue
    # shellcheck disable=SC2086
    "$VMSHIFT" help $c >"$T/h" 2>&1 || missing="$missing help-$c-failed"
    for o in $(grep -o '^ *\(-[a-z], \)\?--[a-z][a-z-]*' "$T/h" | sed 's/^ *//; s/,//'); do
        nopt=$((nopt + 1))
        grep -q -- "\(^\|[^a-z-]\)$o\([^a-z-]\|\$\)" "$M1" || missing="$missing $o($c)"
    done
done <"$T/commands"
for o in --version --help -h; do
    grep -q -- "\(^\|[^a-z-]\)$o\([^a-z-]\|\$\)" "$M1" || missing="$missing $o"
done
if [ "$nopt" -ge 50 ] && [ -z "$missing" ]; then ok "vmshift(1) names every option of every command's --help ($nopt)"
else notok "vmshift(1) lacks options:$missing ($nopt options in the --help texts)"; fi

missing=
for sec in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS FILES ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    grep -q "^$sec\$" "$M1" || missing="$missing '$sec'"
done
if [ -z "$missing" ]; then ok "vmshift(1) has its sections"
else notok "vmshift(1) lacks sections:$missing"; fi

codes=$(sed -n 's/^ *HOST_EXIT_[A-Z_]* *= *\([0-9]*\),.*/\1/p' "$S/host/host.h")
missing=
section "EXIT STATUS" "$M1" >"$T/exit"
for c in $codes; do grep -q "^ *$c\$" "$T/exit" || missing="$missing $c"; done
if [ -n "$codes" ] && [ -z "$missing" ]; then ok "vmshift(1) EXIT STATUS has each HOST_EXIT_ code ($(echo $codes))"
else notok "vmshift(1) EXIT STATUS lacks:$missing (host.h: $(echo $codes))"; fi

vars=$(cat "$S"/host/*.c "$S"/sdk/*.c | grep -o 'getenv("[A-Z_]*")' | sed 's/.*("\(.*\)")/\1/' | sort -u)
missing=
section ENVIRONMENT "$M1" >"$T/env"
for v in $vars; do has_word "$v" "$T/env" || missing="$missing $v"; done
if [ -n "$vars" ] && [ -z "$missing" ]; then ok "vmshift(1) ENVIRONMENT names what the host reads ($(echo $vars))"
else notok "vmshift(1) ENVIRONMENT lacks:$missing"; fi

# the plugins' migration options (--option KEY=VALUE): their *option_keys lists
okeys=$(cat "$S"/plugins/*/*.c | tr '\n\t' '  ' | grep -o 'option_keys\[\] *= *{[^}]*}' |
    grep -o '"[a-z-]*"' | tr -d '"' | sort -u)
missing=
for k in $okeys; do grep -q -- "\(^\|[^a-z-]\)$k=" "$M1" || missing="$missing $k"; done
if [ -n "$okeys" ] && [ -z "$missing" ]; then ok "vmshift(1) documents each --option key of the plugins ($(echo $okeys | wc -w))"
else notok "vmshift(1) lacks --option keys:$missing"; fi

# ---- 3. vmshift.conf(5): every key the code reads --------------------------------------------
# One source's text on one line, so that a call split over lines is found.
flat() { cat "$@" | tr '\n\t' '  '; }
str_args() { grep -o "$1" | sed 's/.*"\([^"]*\)"$/\1/'; }
{
    # the host: [vmshift], [backend NAME] and [group NAME] keys
    flat "$S/host/config.c" | str_args 'strip_value([^,()]*, *[^,()]*, *"[a-z-]*"'
    flat "$S/host/config.c" | str_args 'strcmp(keys\[i\], *"[a-z-]*"'
    # the SDK: credentials files and the keys plugins read through it
    flat "$S/sdk/conf.c" | str_args 'strcmp(line, *"[a-z-]*"'
    flat "$S"/sdk/*.c "$S"/plugins/*/*.c |
        str_args 'vmshift_config_[a-z_]*( *[a-z]*, *"[a-z-]*"'
    # each plugin's declared keys: the list VMSHIFT_PLUGIN_DEFINE's last
    # argument names, and the SDK macro in it
    for f in "$S"/plugins/*/*.c; do
        for a in $(flat "$f" | grep -o 'VMSHIFT_PLUGIN_DEFINE([^;]*)' | sed 's/.*, *\([a-z_]*\) *)$/\1/'); do
            flat "$S"/plugins/*/*.c | grep -o " $a\\[\\] *= *{[^}]*}" | grep -o '"[a-z-]*"' | tr -d '"'
        done
    done
    sed -n '/define VMSHIFT_HTTP_CONFIG_KEYS/,/[^\\]$/p' "$S/sdk/include/vmshift/http.h" |
        grep -o '"[a-z-]*"' | tr -d '"'
    # files of a plugin's own: the kvm run directory's host.conf, networks.conf, vm.conf
    flat "$S"/plugins/*/*.c | str_args 'g_key_file_get_[a-z0-9_]*( *[^,()]*, *[a-z"]*, *"[a-z-]*"'
    flat "$S"/plugins/*/*.c | str_args 'GET("[a-z-]*"'
} | sort -u >"$T/keys"
nkeys=$(grep -c . "$T/keys")
missing=
for k in $(cat "$T/keys"); do has_key "$k" "$M5.noex" || missing="$missing $k"; done
# the extraction itself is checked: these keys are known to be read
for k in state-dir plugin enabled credentials hosts password url datacenter transport netdev \
    migration-address; do
    grep -qx -- "$k" "$T/keys" || missing="$missing not-extracted:$k"
done
if [ "$nkeys" -ge 40 ] && [ -z "$missing" ]; then ok "vmshift.conf(5) documents each of the $nkeys keys the sources read"
else notok "vmshift.conf(5) lacks keys:$missing ($nkeys extracted)"; fi
missing=
for g in '\[vmshift\]' '\[group NAME\]' '\[backend NAME\]' backends.d 'CREDENTIALS FILES' 'chmod 600' \
    'THE kvm PLUGIN' 'THE hyperv PLUGIN' 'THE esx PLUGIN'; do
    grep -q -- "$g" "$M5" || missing="$missing '$g'"
done
for p in "$S"/plugins/*/; do
    p=$(basename "$p")
    grep -q "^THE $p PLUGIN\$" "$M5" || missing="$missing plugin:$p"
done
if [ -z "$missing" ]; then ok "vmshift.conf(5) has the groups, drop-ins, credentials rules and each plugin"
else notok "vmshift.conf(5) lacks:$missing"; fi

# ---- 4. vmshift-bulk(5): every plan key ----------------------------------------------------
{
    flat "$S/host/bulk.c" | str_args 'kf_str([^,()]*, *[^,()]*, *"[a-z.-]*"'
    flat "$S/host/bulk.c" | str_args 'strcmp(keys\[k\], *"[a-z.-]*"'
    flat "$S/host/bulk.c" | grep -o 'known\[\] *= *{[^}]*}' | grep -o '"[a-z.-]*"' | tr -d '"'
} | sort -u >"$T/plan-keys"
nkeys=$(grep -c . "$T/plan-keys")
missing=
for k in $(cat "$T/plan-keys"); do has_key "$k" "$MB.noex" || missing="$missing $k"; done
# per-VM overrides: to.VM=
grep -q 'g_str_has_prefix(keys\[k\], "to\.")' "$S/host/bulk.c" && ! grep -q 'to\.VM=' "$MB" && missing="$missing to.VM"
for g in '\[bulk\]' '\[wave N\]' ERRORS EXAMPLES; do grep -q -- "$g" "$MB" || missing="$missing '$g'"; done
if [ "$nkeys" -ge 9 ] && [ -z "$missing" ]; then ok "vmshift-bulk(5) documents each of the $nkeys plan keys and to.VM="
else notok "vmshift-bulk(5) lacks:$missing ($nkeys keys extracted: $(cat "$T/plan-keys" | tr '\n' ' '))"; fi

# ---- 5. vmshift-plugin(7): the SDK as installed ----------------------------------------------
missing=
for h in "$S"/sdk/include/vmshift/*.h "$S"/sdk/include/vmshift/*.h.in; do
    h=$(basename "$h" .in)
    grep -q "<vmshift/$h>" "$M7" || missing="$missing $h"
done
for w in 'examples/skeleton' 'THREADS.md' 'pkg-config --variable=plugindir vmshift-sdk' \
    VMSHIFT_PLUGIN_DEFINE 'ABI VERSIONS'; do
    grep -q -- "$w" "$M7" || missing="$missing '$w'"
done
if [ -z "$missing" ]; then ok "vmshift-plugin(7) names every SDK header, the skeleton, THREADS.md and pkg-config"
else notok "vmshift-plugin(7) lacks:$missing"; fi

echo "1..$n"
