"""klab's decode of non-present user entries, checked in one real gdb session (sourced by gdb_umem.sh) against
the guest's own /proc/PID/pagemap, which the pagemap lab printed for each of its 16 pages before gdb stopped
it: a swapped page's swap type and offset (pagemap's frame field), its soft-dirty bit (pagemap's bit 55, clean
after clear_refs), the swap device (/proc/swaps, printed by the swapon hook), and a page under migration
(MADV_SOFT_OFFLINE), stopped in move_to_new_folio (its PTEs are migration entries, the copy not yet
made): klab must name the migration entry and the PFN the page
had (pagemap, before), and after the migration the new PFN (pagemap, after)."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from gdb_checks import (ARCH, check, console, ok, current_rows, ev, expect_error, fail, gva2gpa, nm, run,  # noqa: E402
                        skip, walked_pa)

MIGRATION = os.environ.get("KLAB_TEST_MIGRATION") == "1"
SOFT_DIRTY = os.environ.get("KLAB_TEST_SOFT_DIRTY") == "1"
MIGRATE_PAGE = 15

PAGE_RE = re.compile(r"(um\d\d|moved)\s+0x([0-9a-f]+) pfn 0x([0-9a-f]+) present (\d) swapped (\d) soft-dirty (\d) "
                     r"exclusive (\d) file (\d) swap-type (-?\d+) swap-offset 0x([0-9a-f]+)$", re.M)


def guest():
    """pagemap's own report: pid, {page: entry}, the entry after the migration (or None), the swap device."""
    text = console()
    pid = re.search(r"pagemap: pid (\d+), page size \d+, user-memory", text)
    dev = re.search(r"^klab: swap on (\S+):", text, re.M)
    pages, moved = {}, None
    for m in PAGE_RE.finditer(text):
        e = {"va": int(m.group(2), 16), "pfn": int(m.group(3), 16), "present": m.group(4) == "1",
             "swapped": m.group(5) == "1", "soft_dirty": m.group(6) == "1", "type": int(m.group(9)),
             "offset": int(m.group(10), 16)}
        if m.group(1) == "moved":
            moved = e
        else:
            pages[int(m.group(1)[2:])] = e
    return (int(pid.group(1)) if pid else None), pages, moved, dev.group(1) if dev else None


def swap_line(out):
    m = re.search(r"^\s+SWAP: type (\d+)(?: \((\S+)\))?\s+offset 0x([0-9a-f]+)(.*)$", out, re.M)
    if not m:
        return None
    return {"type": int(m.group(1)), "name": m.group(2), "offset": int(m.group(3), 16), "flags": m.group(4).split()}


def migrate_line(out):
    m = re.search(r"^MIGRATE: (migration-\S+) \(swap type (\d+)\)\s+PFN 0x([0-9a-f]+)(.*)$", out, re.M)
    return (m.group(1), int(m.group(3), 16), m.group(4).split()) if m else None


def current_pid():
    """The pid klab current names (it reads kernel memory through the page tables when the CPU is at EL0 or
    CPL 3, where gdb's own reads of kernel memory fail)."""
    rows = [r for r in current_rows(run("klab current"))[0].values() if r]
    return rows[0][1] if rows else None


def stop_in(pid, symbol_or_addr, limit=40):
    """Continue to the hardware breakpoint until the CPU stopped there runs process pid."""
    run("delete")
    run("hbreak %s" % symbol_or_addr)
    for _ in range(limit):
        run("continue")
        if current_pid() == pid:
            return True
    return False


def check_swapped(pid, pages, dev, where):
    for i, e in sorted(pages.items()):
        if not e["swapped"]:
            continue
        out = run("klab vtop --pid %d 0x%x" % (pid, e["va"]))
        s = swap_line(out)
        if not check("%s: um%02d swapped: klab's SWAP line" % (where, i), s is not None, out):
            continue
        check("%s: um%02d: type %d offset %#x = pagemap's (%d, %#x)" % (where, i, s["type"], s["offset"], e["type"],
                                                                      e["offset"]),
              (s["type"], s["offset"]) == (e["type"], e["offset"]), out)
        check("%s: um%02d: swap file %s = /proc/swaps' %s" % (where, i, s["name"], dev), s["name"] == dev, out)
        # clear_refs cleared VM_SOFTDIRTY, so pagemap's bit 55 is the PTE's own bit (task_mmu.c pte_to_pagemap_entry)
        if SOFT_DIRTY:
            check("%s: um%02d: soft-dirty %s = pagemap's %s" % (where, i, "soft-dirty" in s["flags"], e["soft_dirty"]),
                  ("soft-dirty" in s["flags"]) == e["soft_dirty"], out)
        # a private anonymous page this process alone wrote is PG_anon_exclusive; reclaim keeps that in the entry
        check("%s: um%02d: exclusive (a private page only this process mapped)" % (where, i),
              "exclusive" in s["flags"], out)


def check_present(pid, pages, where, skip_page=None):
    for i, e in sorted(pages.items()):
        if not e["present"] or i == skip_page:
            continue
        out = run("klab vtop --pid %d 0x%x" % (pid, e["va"]))
        pa = walked_pa(out)
        check("%s: um%02d present: pfn = pagemap's %#x" % (where, i, e["pfn"]),
              pa is not None and pa[0] >> pa[1] == e["pfn"], out)


def check_migrating(pid, pages):
    e = pages[MIGRATE_PAGE]
    out = run("klab vtop --pid %d 0x%x" % (pid, e["va"]))
    kind, pfn, flags = migrate_line(out)
    check("in the migration: it points at the PFN the page had (pagemap: %#x)" % e["pfn"], pfn == e["pfn"], out)
    # try_to_migrate_one (mm/rmap.c): a writable PTE becomes a writable migration entry, a read-only one of a
    # PG_anon_exclusive page a read-exclusive one. With soft-dirty tracking, clear_refs write-protected um15
    # and nothing wrote it since (read-only, still exclusive); without it um15 stayed writable.
    want = "migration-read-exclusive" if SOFT_DIRTY else "migration-write"
    check("in the migration: um15 is %s (%s)" % (want, kind), kind == want, out)
    # with swap_migration_ad_supported the entry keeps the PTE's young and dirty bits: the page was written
    ad = ev("(int)swap_migration_ad_supported")
    check("in the migration: young/dirty kept exactly when swap_migration_ad_supported (%d)" % ad,
          ("young" in flags and "dirty" in flags) == bool(ad), out)
    raw = re.search(r"PTE: [0-9a-f]+ => ([0-9a-f]+)", out)
    if raw:
        pte = run("klab pte 0x%s" % raw.group(1))
        check("klab pte of the same raw entry says the same", migrate_line(pte) == (kind, pfn, flags), pte)


def check_ptdump(pid, pages, dev):
    """ptdump --non-present over the 16 pages: a line for each swapped page and none for the others."""
    lo, hi = pages[0]["va"], pages[15]["va"] + (pages[15]["va"] - pages[14]["va"]) - 1
    out = run("klab ptdump --pid %d --non-present --range 0x%x-0x%x" % (pid, lo, hi))
    got = {}
    for line in out.splitlines():
        m = re.match(r"0x([0-9a-f]{16})-0x[0-9a-f]{16}\s+\S+\s+pte\s+entry 0x[0-9a-f]+: SWAP: type (\d+) \((\S+)\)\s+"
                     r"offset 0x([0-9a-f]+)", line)
        if m:
            got[int(m.group(1), 16)] = (int(m.group(2)), m.group(3), int(m.group(4), 16))
    want = {e["va"]: (e["type"], dev, e["offset"]) for e in pages.values() if e["swapped"]}
    check("ptdump --non-present: one SWAP line per swapped page, as pagemap says (%d)" % len(want), got == want, out)


def qemu_line(out):
    m = re.search(r"^QEMU gva2gpa: (\S+) \((.*)\)$", out, re.M)
    return (m.group(1), m.group(2)) if m else None


def check_qemu_view(pages):
    """klab vtop --qemu of a present user page from the kernel, in pagemap's context. arm64 at EL1 with PSTATE.PAN
    set (FEAT_PAN: -cpu max): QEMU's gva2gpa translates with the CPU's rights and calls EL0's pages unmapped;
    klab must say so, not DISAGREES, and with PAN cleared QEMU must give klab's answer."""
    e = pages[12]
    out = run("klab vtop --qemu 0x%x" % e["va"])
    q = qemu_line(out)
    pan = ARCH.startswith("arm64") and (ev("$cpsr") >> 22) & 1
    if not pan:
        check("kernel mode: vtop --qemu of a user page agrees with QEMU", q is not None and q[1] == "agrees", out)
        return
    pa = walked_pa(out)
    check("PAN: klab's walk of um12 gives pagemap's PFN %#x" % e["pfn"], pa is not None and pa[0] >> pa[1] == e["pfn"],
          out)
    check("PAN: QEMU calls it unmapped and klab says why, not DISAGREES",
          q is not None and q[0] == "unmapped" and "PSTATE.PAN" in q[1], out)
    cpsr = ev("$cpsr")
    run("set $cpsr = %d" % (cpsr & ~(1 << 22)))
    try:
        out = run("klab vtop --qemu 0x%x" % e["va"])
        check("PAN cleared from gdb: QEMU's gva2gpa agrees with klab", qemu_line(out) == ("%x" % pa[0], "agrees"), out)
    finally:
        run("set $cpsr = %d" % cpsr)


def first_stop(symbol_or_addr):
    """Continue until the pagemap process, having printed its 16 pages, is the one stopped there; in
    move_to_new_folio also until um15 is under migration (the kernel migrates other pages too, and the
    folio argument is optimized out at the inlined call sites, so its PTE says which stop is um15's)."""
    run("hbreak %s" % symbol_or_addr)
    for _ in range(40):
        run("continue")
        pid, pages, _, _ = guest()
        if pid is None or len(pages) != 16 or current_pid() != pid:
            continue
        if not MIGRATION or migrate_line(run("klab vtop --pid %d 0x%x" % (pid, pages[MIGRATE_PAGE]["va"]))):
            return pid
    return None


def check_own_tables(pages, dev, moved):
    """In user mode the CPU's own tables are pagemap's: klab vtop without --pid (page-table reads only)."""
    i = min(i for i, e in pages.items() if e["swapped"])
    out = run("klab vtop 0x%x" % pages[i]["va"])
    s = swap_line(out)
    check("user mode, the CPU's own tables: um%02d is pagemap's swap entry" % i,
          s is not None and (s["type"], s["offset"], s["name"]) == (pages[i]["type"], pages[i]["offset"], dev), out)
    if moved is not None:
        out = run("klab vtop 0x%x" % moved["va"])
        pa = walked_pa(out)
        check("after the migration: um15 present at pagemap's new PFN %#x (was %#x)" % (
            moved["pfn"], pages[MIGRATE_PAGE]["pfn"]), pa is not None and pa[0] >> pa[1] == moved["pfn"] and
            moved["pfn"] != pages[MIGRATE_PAGE]["pfn"], out)


def check_triage_in_user_mode(pid, pages):
    """The triage commands from a CPU stopped in user code, where QEMU's stub reads with user permissions:
    kernel memory comes through the page tables (and the RAM file) instead."""
    # the levels the console prints (console_loglevel 7 here: not debug)
    out = run("klab dmesg --level 0,1,2,3,4,5,6 -n 5")
    lines = [l for l in out.splitlines() if l.strip()]
    log = console()
    check("user mode: klab dmesg -n 5 reads the ringbuffer; its lines are on the console",
          len(lines) == 5 and all(l in log for l in lines), out)
    # x86's stub reads kernel memory from user mode, arm64's does not (EL0 permissions): there klab bt, which
    # walks the task list with gdb, must say so in one line
    try:
        out = run("klab bt %d" % pid)
        check("user mode: klab bt of pagemap says it runs user code", "in user code, not in the kernel" in out
              and "(user code)" in out, out)
    except gdb.error as e:
        check("user mode: klab bt of pagemap: one klab line naming user mode (arm64)", ARCH.startswith("arm64")
              and str(e).startswith("klab bt: ") and "runs user code" in str(e) and "\n" not in str(e), str(e))
    present = next(e for e in pages.values() if e["present"])
    out = run("klab whatis 0x%x" % present["va"])
    pa = gva2gpa(present["va"])
    check("user mode: klab whatis of a pagemap page: a user address at QEMU's PA %s" % (
        "%x" % pa if pa is not None else "?"), pa is not None and "user address of the current task, PA %x" % pa in out,
        out)
    out = run("klab slab kmem_cache")
    check("user mode: klab slab kmem_cache reads the cache", out.splitlines()[-1].endswith(" kmem_cache"), out)


def main():
    spin = "*0x%x" % nm("pagemap_spin")
    pid = first_stop("move_to_new_folio" if MIGRATION else spin)
    if pid is None:
        fail("stopped in the pagemap process%s" % (" while um15 is under migration" if MIGRATION else ""),
             "no such stop: %s" % console()[-800:])
        return
    _, pages, _, dev = guest()
    if MIGRATION:
        ok("stopped in move_to_new_folio in pagemap, um15 under migration")
    check("pagemap paged out 12 pages (MADV_PAGEOUT to the --swap disk)",
          sum(e["swapped"] for e in pages.values()) == 12, pages)
    if MIGRATION:
        check_swapped(pid, pages, dev, "in the migration")
        check_present(pid, pages, "in the migration", skip_page=MIGRATE_PAGE)
        check_migrating(pid, pages)
    if MIGRATION and not check("after the migration: stopped in pagemap_spin (user mode)", stop_in(pid, spin)):
        return
    moved = guest()[2]
    if MIGRATION:
        check("pagemap printed the page after the migration", moved is not None and moved["present"],
              console()[-500:])
    else:
        skip("migration", "this kernel has no CONFIG_MEMORY_FAILURE (no MADV_SOFT_OFFLINE)")
    check_own_tables(pages, dev, moved)
    check_triage_in_user_mode(pid, pages)
    # The rest reads kernel memory (the task list for --pid): stop in the kernel, in pagemap's timer tick.
    if not check("stopped in the kernel in pagemap's context", stop_in(pid, "update_process_times")):
        return
    check_swapped(pid, pages, dev, "spinning")
    check_present(pid, pages, "spinning", skip_page=MIGRATE_PAGE)
    check_ptdump(pid, pages, dev)
    check_qemu_view(pages)
    for bad in ("klab pte 0x2 --kver 6", "klab pte 0x2 --kver six.one", "klab vtop --pid 99999 0x1000",
                "klab vtop --qemu --pid %d 0x1000" % pid, "klab ptdump --non-present --frob"):
        expect_error(bad)
    # Leave the guest stopped in user mode in pagemap, for the shell's klab vtop / ptdump (gdb_umem.sh).
    if check("stopped in pagemap_spin again, for the shell", stop_in(pid, spin)):
        print("# user-stop cpu %d" % (gdb.selected_thread().ptid[1] - 1))


try:
    main()
    print("# gdb_umem.py: done")
except gdb.error as e:
    fail("session", "gdb error: %s" % e)
