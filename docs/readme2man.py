#!/usr/bin/env python3
"""Turn named sections of README.md into a man page (roff, man macros).

    readme2man.py README.md -o docs/vmshift.1 --name vmshift --section 1 \
        --summary "move virtual machines between hosts and hypervisors" \
        --synopsis "vmshift [GLOBAL OPTIONS] COMMAND [ARGS]" \
        --take "Commands=COMMANDS" --take "Jobs, the journal and repair" \
        --see-also "vmshift.conf(5)"

--take HEADING[=MAN SECTION] picks the README section whose heading is
HEADING (any level, case-insensitive, backticks ignored); "Backends/kvm"
picks a heading that starts with "kvm" below the heading "Backends". The
section's text, down to the next heading of the same or a higher level, is
converted; its subheadings become .SS. Without =MAN SECTION the heading is
upper-cased.

A section that is missing, or whose body is still only a PLACEHOLDER word,
is a warning (on stderr) and the page says where to find the text instead,
so an unfinished README never breaks the build; --strict makes it an error.

Markdown understood: paragraphs, `code`, **bold**, *emphasis*, [links](x),
bullet and numbered lists (with continuation lines), indented and fenced code
blocks, and pipe tables (rendered as tagged paragraphs). Python 3 stdlib only.
"""

import argparse
import datetime
import os
import re
import sys

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*PLACEHOLDER$")


def norm(text):
    return re.sub(r"\s+", " ", text.replace("`", "")).strip().lower()


def parse_sections(lines):
    """Return a list of (level, title, start, end) for every heading."""
    heads = []
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = HEADING.match(line)
        if m:
            heads.append([len(m.group(1)), m.group(2), i + 1, len(lines)])
    for n, h in enumerate(heads):
        for later in heads[n + 1:]:
            if later[0] <= h[0]:
                h[3] = later[2] - 1
                break
    return heads


def find_section(heads, path):
    parts = [norm(p) for p in path.split("/")]
    scope = (0, 10 ** 9, 0)  # start, end, level
    found = None
    for k, part in enumerate(parts):
        found = None
        for level, title, start, end in heads:
            if not (scope[0] <= start - 1 < scope[1]) or level <= scope[2]:
                continue
            t = norm(title)
            ok = t == part if k == 0 else (t == part or t.startswith(part + " ")
                                           or t.startswith(part + ":"))
            if ok:
                found = (level, title, start, end)
                break
        if not found:
            return None
        scope = (found[2], found[3], found[0])
    return found


# ---- inline -----------------------------------------------------------------

def esc(text):
    """Escape plain text for roff (no font changes inside)."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    return text


def inline(text):
    out = []
    pos = 0
    token = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])"
                       r"|\[([^\]]+)\]\(([^)]*)\)")
    for m in token.finditer(text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + inline(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + inline(m.group(3)) + "\\fR")
        else:
            label, target = m.group(4), m.group(5)
            out.append(inline(label))
            if target and not target.startswith("#"):
                out.append(" <" + esc(target) + ">")
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def textline(s):
    """A line of running text: protect a leading control character."""
    s = s.strip()
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def codeline(s):
    s = esc(s.rstrip())
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


# ---- blocks -----------------------------------------------------------------

def convert(body, base_level):
    out = []
    i = 0
    n = len(body)
    list_re = re.compile(r"^(\s*)([*+-]|\d+[.)])\s+(.*)$")

    def para(buf):
        if buf:
            out.append(".PP")
            out.append(textline(inline(" ".join(buf))))

    buf = []
    while i < n:
        line = body[i]
        stripped = line.strip()
        if line.lstrip().startswith("```"):
            para(buf); buf = []
            i += 1
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            while i < n and not body[i].lstrip().startswith("```"):
                out.append(codeline(body[i]))
                i += 1
            out.append(".fi")
            out.append(".RE")
            i += 1
            continue
        m = HEADING.match(line)
        if m:
            para(buf); buf = []
            out.append('.SS "' + inline(m.group(2)).replace('"', "'") + '"')
            i += 1
            continue
        if not stripped:
            para(buf); buf = []
            i += 1
            continue
        if line.startswith("    ") and not buf:
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            while i < n and (body[i].startswith("    ") or not body[i].strip()):
                # stop at a blank line followed by unindented text
                if not body[i].strip():
                    j = i
                    while j < n and not body[j].strip():
                        j += 1
                    if j >= n or not body[j].startswith("    "):
                        break
                out.append(codeline(body[i][4:]))
                i += 1
            out.append(".fi")
            out.append(".RE")
            continue
        if stripped.startswith("|"):
            para(buf); buf = []
            rows = []
            while i < n and body[i].strip().startswith("|"):
                cells = [c.strip() for c in body[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            header = rows[0] if rows else []
            for r in rows[1:]:
                out.append(".TP")
                out.append(textline(inline(r[0])))
                rest = []
                for h, c in zip(header[1:], r[1:]):
                    if c:
                        rest.append((inline(h) + ": " if h else "") + inline(c))
                out.append(textline("; ".join(rest)) if rest else "\\&")
            continue
        lm = list_re.match(line)
        if lm:
            para(buf); buf = []
            indent = len(lm.group(1))
            mark = lm.group(2)
            item = [lm.group(3)]
            i += 1
            while i < n and body[i].strip() and not list_re.match(body[i]) \
                    and not HEADING.match(body[i]) and not body[i].strip().startswith("|"):
                item.append(body[i].strip())
                i += 1
            bullet = "\\(bu" if mark in "*+-" else mark
            width = 2 + indent // 2
            out.append('.IP "%s" %d' % (bullet, width + 2 if bullet != "\\(bu" else width))
            out.append(textline(inline(" ".join(item))))
            continue
        buf.append(stripped)
        i += 1
    para(buf)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("readme")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--name", required=True, help="page name, e.g. vmshift")
    ap.add_argument("--section", required=True, help="man section, e.g. 1")
    ap.add_argument("--summary", required=True, help="the NAME line's description")
    ap.add_argument("--synopsis", action="append", default=[])
    ap.add_argument("--take", action="append", default=[], metavar="HEADING[=SECTION]")
    ap.add_argument("--see-also", action="append", default=[])
    ap.add_argument("--version", default="")
    ap.add_argument("--manual", default="vmshift manual")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()

    with open(a.readme, encoding="utf-8") as f:
        lines = f.read().splitlines()
    heads = parse_sections(lines)

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = int(epoch) if epoch else int(os.stat(a.readme).st_mtime)
    date = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%d")

    out = ['.\\" Generated by docs/readme2man.py from README.md; do not edit.',
           '.TH "%s" "%s" "%s" "%s" "%s"' % (a.name.upper(), a.section, date,
                                           ("vmshift " + a.version).strip(), a.manual),
           ".SH NAME",
           "%s \\- %s" % (esc(a.name), esc(a.summary))]
    if a.synopsis:
        out.append(".SH SYNOPSIS")
        for s in a.synopsis:
            out.append(".PP")
            out.append(textline(inline(s)))
    problems = 0
    for take in a.take:
        path, _, title = take.partition("=")
        sec = find_section(heads, path)
        title = title or path.split("/")[-1].upper()
        out.append('.SH "%s"' % esc(title).replace('"', "'"))
        body = lines[sec[2]:sec[3]] if sec else []
        unwritten = any(PLACEHOLDER.match(b.strip()) for b in body)
        body = [b for b in body if not PLACEHOLDER.match(b.strip())]
        if unwritten and any(b.strip() for b in body):
            problems += 1
            print("readme2man: %s: %s: section '%s' is not finished (placeholder)" % (
                a.readme, a.output, path), file=sys.stderr)
        elif not sec or unwritten or not any(b.strip() for b in body):
            problems += 1
            print("readme2man: %s: %s: section '%s' %s" % (
                a.readme, a.output, path, "is missing" if not sec else "is not written yet"),
                file=sys.stderr)
            out.append(".PP")
            out.append("This section is not written yet; see the section "
                       "\\(lq%s\\(rq of README.md." % esc(path.split("/")[-1]))
            continue
        out.extend(convert(body, sec[0]))
    if a.see_also:
        out.append(".SH \"SEE ALSO\"")
        refs = []
        for s in a.see_also:
            m = re.fullmatch(r"(.+)\((\w+)\)", s)
            refs.append("\\fB%s\\fR(%s)" % (esc(m.group(1)), m.group(2)) if m else esc(s))
        out.append(",\n".join(refs))
    if problems and a.strict:
        sys.exit(1)
    tmp = a.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
