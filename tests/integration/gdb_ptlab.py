"""Sourced in a real gdb session by gdb_ptlab.sh: the ptlab program (labs/ptlab) goes through mprotect, fork
and a copy-on-write fault; at each phase gdb stops in the kernel's getppid while current is ptlab and takes
`klab ptsnap save --pid` of it (and of the child after the fork). klab ptdiff's findings over ptlab's 16
pages are then checked against what the kernel must have done (mm/mprotect.c, mm/memory.c copy_present_pte
and wp_page_copy) and against what the guest's /proc said of the same pages: the VMA in /proc/PID/maps, the
frames in /proc/PID/pagemap before and after, in parent and child (read by gdb from ptlab's own memory, where
ptlab keeps what pagemap told it: a serial console may lose a line)."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gdb_checks import ARCH, check, console, current_rows, fail, nm, ok, run  # noqa: E402

READY = os.environ["KLAB_TEST_READY"]
STORE = os.environ["KLAB_TEST_STORE"]
GETPPID = "__x64_sys_getppid" if ARCH.startswith("x86_64") else "__arm64_sys_getppid"


def stop_at_phase(want, parent):
    """Continue to getppid until ptlab (the parent, once known) makes it in phase want: (pid, phase). A
    hardware breakpoint may report the same call twice (arm64: the stop is taken again on resuming over
    it), so an earlier phase is passed over."""
    pid = phase = None
    for _ in range(200):
        run("continue")
        rows = [r for r in current_rows(run("klab current"))[0].values() if r]
        if rows and rows[0][2] == "ptlab" and parent in (None, rows[0][1]):
            pid = rows[0][1]
            phase = int(gdb.parse_and_eval("*(int *)0x%x" % nm("ptlab_phase")))
            if phase >= want:
                return pid, phase
    return pid, phase


def changes(a, b, lo, hi):
    """klab ptdiff A B over [lo, hi): [(sign, start, end, what, text)] and the summary line."""
    out = run("klab ptdiff %s/%s %s/%s --range 0x%x-0x%x" % (STORE, a, STORE, b, lo, hi - 1))
    rows = []
    for line in out.splitlines():
        m = re.match(r"([-+~]) 0x([0-9a-f]+)-0x([0-9a-f]+) +\S+ +(\S+)", line)
        if m:
            rows.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4), line))
    return rows, out.strip().splitlines()[-1] if out.strip() else ""


def guest_maps():
    """ptlab's /proc/self/maps lines over its buffer, from its console lines: [(start, end, perms)]."""
    return re.findall(r"ptlab: maps ([0-9a-f]+)-([0-9a-f]+) (\S+)", console())


def main():
    run("delete")
    run("hbreak %s" % GETPPID)
    open(READY, "w").close()
    parent = None
    for want in (1, 2, 3, 4):
        pid, phase = stop_at_phase(want, parent)
        if not check("phase %d: stopped in %s with ptlab current" % (want, GETPPID), phase == want,
                     "pid %s phase %s; console: %s" % (pid, phase, console()[-300:])):
            return
        parent = pid
        run("klab ptsnap save %s/p%d --pid %d" % (STORE, want, pid))
        if want == 3:
            child = int(gdb.parse_and_eval("*(int *)0x%x" % nm("ptlab_child")))
            run("klab ptsnap save %s/c3 --pid %d" % (STORE, child))
    # At phase 4 ptlab is current, in its getppid: its own mapping reads through the CPU's tables.
    frames = [[int(gdb.parse_and_eval("((unsigned long long *)0x%x)[%d]" % (nm("ptlab_pfns"), g * 16 + i)))
               for i in range(16)] for g in range(3)]
    buf = int(gdb.parse_and_eval("*(unsigned long *)0x%x" % nm("ptlab_buf")))
    ps = int(gdb.parse_and_eval("*(long *)0x%x" % nm("ptlab_page_size")))
    run("delete")
    maps = guest_maps()
    page = lambda i: buf + i * ps  # noqa: E731
    first, later_parent, later_child = (dict(enumerate(f)) for f in frames)
    check("ptlab's pagemap frames, read from its memory: 16 each before, after, and the child's",
          all(all(f) for f in frames), "frames %s" % frames)

    # mprotect: one change, pages 8-11 lose write, as /proc/PID/maps shows the VMA split.
    rows, summary = changes("p1", "p2", page(0), page(16))
    ro = [m for m in maps if int(m[0], 16) == page(8)]
    check("mprotect: /proc/%d/maps shows pages 8-11 as their own r--p VMA" % parent,
          ro and int(ro[0][1], 16) == page(12) and ro[0][2].startswith("r--"), str(maps))
    check("mprotect: ptdiff finds one change, pages 8-11 rw -> r: %s" % (rows[0][4] if rows else summary),
          len(rows) == 1 and rows[0][:3] == ("~", page(8), page(12)) and rows[0][3] == "perms"
          and "rw-/rw- -> r--/r--" in rows[0][4], "\n".join(r[4] for r in rows) or summary)

    # fork: every private writable page write-protected, in place (no frame moves); 8-11 already were.
    rows, summary = changes("p2", "p3", page(0), page(16))
    want = [(page(0), page(8)), (page(12), page(16))]
    got = [(r[1], r[2]) for r in rows]
    check("fork: ptdiff finds pages 0-7 and 12-15 write-protected in place, 8-11 untouched",
          got == want and all(r[3] == "perms" and "rw-/rw- -> r--/r--" in r[4] for r in rows),
          "\n".join(r[4] for r in rows) or summary)
    rows, summary = changes("p3", "c3", page(0), page(16))
    check("fork: parent and child map the same frames with the same rights (%s)" % summary,
          not rows and summary == "no change", "\n".join(r[4] for r in rows))

    # The write: page 5 alone, a new frame for the parent, writable again; the child keeps the old one.
    rows, summary = changes("p3", "p4", page(0), page(16))
    line = rows[0][4] if rows else summary
    m = re.search(r"PA 0x([0-9a-f]+) -> 0x([0-9a-f]+)", line)
    old, new = (int(m.group(1), 16), int(m.group(2), 16)) if m else (None, None)
    check("copy-on-write: ptdiff finds page 5 alone moved and writable: %s" % line,
          len(rows) == 1 and rows[0][:3] == ("~", page(5), page(6)) and "moved" in rows[0][3]
          and "perms" in rows[0][3] and "r--/r-- -> rw-/rw-" in line, "\n".join(r[4] for r in rows) or summary)
    check("copy-on-write: the old frame is the one pagemap gave page 5 before (0x%x)" % (first.get(5, 0) * ps),
          old == first.get(5, -1) * ps, "ptdiff %s" % line)
    check("copy-on-write: the new frame is the parent's pagemap frame after the write (0x%x)"
          % (later_parent.get(5, 0) * ps), new == later_parent.get(5, -1) * ps, "ptdiff %s" % line)
    check("copy-on-write: the child's page 5 stays on the old frame, every other page shared (pagemap)",
          later_child.get(5) == first.get(5) and all(later_child.get(i) == first.get(i) == later_parent.get(i)
                                                     for i in range(16) if i != 5),
          "first %s parent %s child %s" % (first, later_parent, later_child))
    svg = os.path.join(STORE, "cow.svg")
    run("klab ptdiff %s/p3 %s/p4 --range 0x%x-0x%x --svg %s" % (STORE, STORE, page(0), page(16) - 1, svg))
    check("copy-on-write: ptdiff --svg draws it", os.path.getsize(svg) > 1000, svg)
    print("# gdb_ptlab.py: done")


try:
    main()
except gdb.error as e:
    fail("gdb_ptlab.py", str(e))
