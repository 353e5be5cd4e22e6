"""What the gdb-side integration tests share (gdb_kernel.py, gdb_umem.py, sourced inside a real gdb session by
their .sh): result lines tests/run.sh counts, QEMU's monitor as the independent oracle, gdb's own reads, and
the guest program's symbols (nm) and printed lines (its console log)."""

import os
import re
import subprocess

import gdb

ARCH = os.environ["KLAB_TEST_ARCH"]
PAGEMAP_BIN = os.environ["KLAB_TEST_PAGEMAP"]
CONSOLE = os.environ["KLAB_TEST_CONSOLE"]
MASK64 = (1 << 64) - 1
def ok(name):
    print("ok - %s: %s" % (ARCH, name))


def fail(name, why):
    # the later lines of a long why are indented: none of them may read as a result line of its own
    print(("not ok - %s: %s: %s" % (ARCH, name, why)).replace("\n", "\n    "))


def check(name, cond, why=""):
    ok(name) if cond else fail(name, why)
    return cond


def run(cmd):
    return gdb.execute(cmd, to_string=True)


def monitor(cmd):
    return run("monitor " + cmd).replace("\r", "")


def gva2gpa(va):
    """QEMU's translation with the page tables of the CPU gdb stopped on (the monitor's CPU is set to it)."""
    monitor("cpu %d" % (gdb.selected_thread().ptid[1] - 1))
    m = re.search(r"gpa: (?:0x)?([0-9a-f]+)\b", monitor("gva2gpa 0x%x" % va))
    return int(m.group(1), 16) if m else None


def qemu_bytes(pa, n=16):
    """QEMU's own read of guest-physical memory (xp), independent of the page tables."""
    out = monitor("xp /%dxb 0x%x" % (n, pa))
    return bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})\b", out.split(":", 1)[1] if ":" in out else ""))[:n]


def ev(expr):
    return int(gdb.parse_and_eval(expr)) & MASK64



def expect_error(cmd):
    try:
        out = run(cmd)
    except gdb.error as e:
        msg = str(e)
        check("'%s' -> one klab error line: %s" % (cmd, msg), msg.startswith("klab ") and "\n" not in msg.strip()
              and "Python" not in msg, msg)
        return
    fail("'%s' gives an error" % cmd, "no error: %s" % out.strip()[:200])


def nm(symbol):
    out = subprocess.run(["nm", PAGEMAP_BIN], capture_output=True, text=True).stdout
    m = re.search(r"^([0-9a-f]+) \w %s$" % symbol, out, re.M)
    return int(m.group(1), 16)


def walked_pa(out):
    """(PA, page shift) from klab vtop's output, or None when not mapped."""
    m = re.search(r"^[0-9a-f]+\s+([0-9a-f]+)$", out, re.M)
    size = re.search(r"PAGE: [0-9a-f]+\s+\((\d+)([KMG])\)", out)
    if not m or not size:
        return None
    return int(m.group(1), 16), (int(size.group(1)) << {"K": 10, "M": 20, "G": 30}[size.group(2)]).bit_length() - 1




def current_rows(out):
    """klab current's table: {method: (task, pid, comm) or None}, and the mode line."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  (\S.*?\S)\s+([0-9a-f]{16})\s+(\d+)\s+(\S+)$", line)
        if m:
            rows[m.group(1)] = (int(m.group(2), 16), int(m.group(3)), m.group(4))
        m = re.match(r"  (\S.*?\S)\s+-\s+-\s+not usable: (.*)$", line)
        if m:
            rows[m.group(1)] = None
    return rows, out.splitlines()[0] if out else ""


def page_line(out):
    m = re.search(r"^([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(-?\d+) ([0-9a-f]+) ?(\S*)$", out, re.M)
    if not m:
        return None
    return {"page": int(m.group(1), 16), "pa": int(m.group(2), 16), "flags": int(m.group(6), 16),
            "names": [n for n in m.group(7).split(",") if n]}


def console():
    """Everything the guest printed so far (the console log klab keeps in the run-state folder)."""
    with open(CONSOLE, errors="replace") as f:
        return f.read().replace("\r", "")


def skip(name, why):
    print("skip - %s: %s: %s" % (ARCH, name, why))
