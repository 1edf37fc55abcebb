#!/usr/bin/env python3
"""TAP: the progress of concurrent jobs, issue 18.

Runs `vmshift bulk` of three VMs at once on the skeleton plugin with
standard error on a pseudo-terminal of a known width, and replays the bytes
it wrote on a small terminal model (CR, LF, CUU, EL, ED, printable text,
wrapping at the width). Checks that every job had a line of its own (never
two jobs' bars on one row, all three on screen at once), that no progress
line reached the width, that the cursor never went above the block, and
that no bar is left once the jobs ended. Then the same plan back with
standard error on a pipe: plain lines, no escape sequences. Where the VMs
are is read from the skeleton's own state file. Standard library only."""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import fcntl
import termios

B = os.environ.get("VMSHIFT_BUILDDIR", ".")
VMSHIFT = os.path.join(B, "host", "vmshift")
SKELETON = os.path.join(B, "tests", "skeleton", ".libs", "skeleton.so")
WIDTH = 64
VMS = ["v1", "v2", "v3"]
BAR = re.compile(r"job \d+ \((v\d)\) \S+ \[[#-]{20}\]")
LABEL = re.compile(r"job \d+ \((v\d)\)")

n = 0


def ok(cond, what, diag=""):
    global n
    n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, what))
    if not cond and diag:
        for line in str(diag).splitlines()[:40]:
            print("# " + line)


class Screen:
    """Just enough of a terminal: rows of text, a cursor, wrapping."""

    def __init__(self, width):
        self.width = width
        self.rows = [[]]
        self.row = self.col = 0
        self.wrapped_bars = []  # rows that wrapped while showing a bar
        self.above_top = False
        self.snapshots = []  # the bars on screen after each erase-below (a redraw's end)
        self.crowded = []  # rows that showed two jobs at once, after any escape sequence

    def _line(self):
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def text(self, i):
        return "".join(self.rows[i]).rstrip()

    def put(self, ch):
        if self.col >= self.width:
            if BAR.search("".join(self._line())):
                self.wrapped_bars.append("".join(self._line()))
            self.row += 1
            self.col = 0
        line = self._line()
        while len(line) < self.col:
            line.append(" ")
        if self.col < len(line):
            line[self.col] = ch
        else:
            line.append(ch)
        self.col += 1

    def csi(self, params, final):
        num = int(params) if params.isdigit() else 1
        for i in range(len(self.rows)):
            if len(set(LABEL.findall(self.text(i)))) > 1:
                self.crowded.append(self.text(i))
        if final == "A":
            self.row -= num
            if self.row < 0:
                self.above_top = True
                self.row = 0
        elif final == "K":
            del self._line()[self.col:]
        elif final == "J":
            del self._line()[self.col:]
            del self.rows[self.row + 1:]
            self.snapshots.append(self.bars())

    def feed(self, data):
        i = 0
        while i < len(data):
            c = data[i]
            if c == "\x1b" and data[i + 1:i + 2] == "[":
                m = re.match(r"\x1b\[([0-9;?]*)([@-~])", data[i:])
                if m:
                    self.csi(m.group(1), m.group(2))
                    i += m.end()
                    continue
            if c == "\r":
                self.col = 0
            elif c == "\n":
                self.row += 1
                self._line()
            elif c >= " ":
                self.put(c)
            i += 1

    def bars(self):
        """The VM of each row that shows a bar, per row (a list per row)."""
        out = []
        for i in range(len(self.rows)):
            found = BAR.findall(self.text(i))
            if found:
                out.append(found)
        return out


def peer_hosts(state):
    hosts, vm = {}, None
    with open(state, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\[vm (.*)\]", line.strip())
            if m:
                vm = m.group(1)
            elif line.startswith("host=") and vm:
                hosts[vm] = line.strip()[5:]
    return hosts


def main():
    if not os.path.exists(SKELETON):
        print("1..0 # SKIP the skeleton plugin is not built")
        return 0
    t = tempfile.mkdtemp(prefix="vmshift-progress.")
    try:
        return run(t)
    finally:
        shutil.rmtree(t, ignore_errors=True)


def run(t):
    os.chmod(t, 0o755)
    for d in ("plugins", "etc", "etc/backends.d"):
        os.makedirs(os.path.join(t, d), mode=0o755, exist_ok=True)
        os.chmod(os.path.join(t, d), 0o755)
    shutil.copy(SKELETON, os.path.join(t, "plugins", "skeleton.so"))
    os.chmod(os.path.join(t, "plugins", "skeleton.so"), 0o755)
    open(os.path.join(t, "etc", "vmshift.conf"), "w").close()
    with open(os.path.join(t, "etc", "backends.d", "demo.conf"), "w") as f:
        f.write("[backend demo]\nplugin=skeleton\nhosts=alpha;beta\n"
                "vms=%s\ntransfer-seconds=3\n" % ";".join(v + "@alpha" for v in VMS))
    plan = os.path.join(t, "plan.conf")
    with open(plan, "w") as f:
        f.write("[bulk]\nmax-per-backend=3\nmax-per-host=3\n[wave 1]\nvms=%s\nto=beta\n"
                % ";".join("demo:" + v for v in VMS))
    argv = [VMSHIFT, "--config", os.path.join(t, "etc", "vmshift.conf"),
            "--plugin-dir", os.path.join(t, "plugins"), "--state-dir", os.path.join(t, "state")]
    state = os.path.join(t, "state", "backends", "demo", "skeleton.state")
    env = dict(os.environ, COLUMNS=str(WIDTH), TERM="xterm", LC_ALL="C.UTF-8")

    # ---- on a terminal ----------------------------------------------------------------
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, WIDTH, 0, 0))
    p = subprocess.Popen(argv + ["bulk", plan], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    raw = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        raw += chunk
    os.close(master)
    out = p.stdout.read().decode("utf-8", "replace")
    rc = p.wait(timeout=120)
    text = raw.decode("utf-8", "replace")
    hosts = peer_hosts(state)
    ok(rc == 0 and all(hosts.get(v) == "beta" for v in VMS),
       "bulk on a terminal: exit 0, the skeleton has every VM on beta",
       "exit %d, %s\n%s%s" % (rc, hosts, out, text))

    scr = Screen(WIDTH)
    scr.feed(text)
    ok(scr.snapshots and any(scr.snapshots) and not scr.crowded,
       "never two jobs on one row", "\n".join(scr.crowded[:3]) or text[:2000])
    most = max((len({r[0] for r in snap}) for snap in scr.snapshots), default=0)
    ok(most == len(VMS) and all(len(snap) == len({r[0] for r in snap}) for snap in scr.snapshots),
       "each running job on a line of its own, all %d at once" % len(VMS),
       "at most %d at once; %s" % (most, scr.snapshots[-5:]))
    # each line of a bar as written: text between CR/LF and escape sequences
    pieces = [s for s in re.split(r"\x1b\[[0-9;?]*[@-~]|[\r\n]", text) if BAR.search(s)]
    longest = max((len(s) for s in pieces), default=0)
    ok(pieces and longest < WIDTH and not scr.wrapped_bars,
       "no progress line reaches the width (%d columns; longest %d)" % (WIDTH, longest),
       "\n".join(s for s in pieces if len(s) >= WIDTH)[:800] or scr.wrapped_bars)
    ok(not scr.above_top, "the cursor never goes above the block")
    final = [scr.text(i) for i in range(len(scr.rows))]
    ok(not scr.bars() and any("job" in line for line in final),
       "no bar left once the jobs ended; their log lines stay", "\n".join(final))

    # ---- on a pipe: plain lines -----------------------------------------------------
    p = subprocess.run(argv + ["bulk", plan, "--reverse"], stdin=subprocess.DEVNULL,
                       capture_output=True, env=env, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    hosts = peer_hosts(state)
    ok(p.returncode == 0 and all(hosts.get(v) == "alpha" for v in VMS),
       "bulk --reverse on a pipe: exit 0, the skeleton has every VM back on alpha",
       "exit %d, %s\n%s" % (p.returncode, hosts, err))
    ok("\x1b" not in err and "\r" not in err
       and all(re.search(r"job \d+ \(%s\): \S+ \d+%%" % v, err) for v in VMS),
       "on a pipe: plain progress lines of every job, no escape sequences", err)
    print("1..%d" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
