"""Checks of klab dmesg / bt / slab / whatis / search inside one real gdb session (sourced by gdb_triage.sh,
which stopped the VM at its shell). Oracles: the console log (the kernel's own console output), what the guest
printed from /proc/PID/stack and /proc/slabinfo before the stop, the kernel's task list read by gdb, and QEMU's
gva2gpa; and that bt / info registers read the same after klab bt as before."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from gdb_checks import ARCH, check, console, ev, expect_error, fail, gva2gpa, ok, run  # noqa: E402

LOG = console()
SOFTLOCKUP = os.environ.get("KLAB_TEST_SOFTLOCKUP") == "1"
STAMP = re.compile(r"^\[ *\d+\.\d{6}\] ")


def section(begin, end):
    m = re.search(r"^%s\n(.*?)^%s$" % (begin, end), LOG, re.S | re.M)
    return m.group(1).splitlines() if m else []


def check_dmesg():
    out = run("klab dmesg")
    mine = out.splitlines()
    # The console prints the records below console_loglevel (include/linux/printk.h console_printk[0]);
    # a line can be cut by the shell's own output on the same serial line, so only whole stamped lines count.
    loglevel = ev("console_printk[0]")
    shown = [line for r, line in _records_with_level(loglevel)]
    cons = [line for line in LOG.splitlines() if STAMP.match(line)]
    pos = 0
    found = 0
    for line in cons:
        try:
            pos = shown.index(line, pos) + 1
            found += 1
        except ValueError:
            pass
    check("klab dmesg has the console's %d kernel lines in order (%d found)" % (len(cons), found),
          len(cons) > 50 and found >= len(cons) - 2, "first missing: %s" % next(
              (c for c in cons if c not in shown), None))
    # and nothing the console printed is missing from klab's lines up to where the console got. The 8250
    # console writes a record whole with the port locked (serial8250_console_write), but the shell's output
    # may come between two records and so start the line of the next: a record counts when its text is on
    # the console, at the start of a line or not.
    last = shown.index(cons[-1]) if cons and cons[-1] in shown else -1
    missing = [s for s in shown[:last + 1] if s not in LOG]
    check("every klab dmesg line up to the console's last is on the console (%d of %d)" % (
        last + 1 - len(missing), last + 1), last > 50 and len(missing) <= 2, "missing: %s" % missing[:3])
    n3 = run("klab dmesg -n 3").splitlines()
    check("klab dmesg -n 3 is the end of klab dmesg", len(n3) >= 3 and n3 == mine[-len(n3):], "\n".join(n3))
    err = run("klab dmesg --level err+")
    check("klab dmesg --level err+ is a subset of the log", all(l in mine for l in err.splitlines()), err[:300])
    expect_error("klab dmesg --level nosuch")
    expect_error("klab dmesg -n -1")


def _records_with_level(loglevel):
    """klab's own lines, restricted to the levels the console prints: from --level with the numbers below it."""
    if loglevel <= 0:
        return []
    out = run("klab dmesg --level %s" % ",".join(str(n) for n in range(min(loglevel, 8))))
    return [(None, line) for line in out.splitlines()]


def task_of_pid(pid):
    for line in run("klab ps").splitlines():
        m = re.match(r"^[> ]\s*(\d+)\s+\d+\s+\d+\s+([0-9a-f]{16})\s+(\S\S)\s.*\s(\S+)$", line)
        if m and int(m.group(1)) == pid:
            return int(m.group(2), 16), m.group(3), m.group(4)
    return None


def bt_names(out):
    """The frames' names; a frame in a module gdb has no symbols for is "?? [module]" (the walk's last)."""
    return [m.group(1) for m in re.finditer(r"^ ?#\d+ \[[0-9a-f]+\] (\S+|\?\? \[\S+\]) at [0-9a-f]+$", out, re.M)]


def check_bt():
    m = re.search(r"^SLEEP (\d+)$", LOG, re.M)
    if not check("the guest printed the sleeper's pid", m is not None, ""):
        return
    pid = int(m.group(1))
    proc = [re.sub(r"\+0x.*", "", l.split("] ", 1)[-1]) for l in section("STACK-BEGIN", "STACK-END")]
    before_bt, before_regs = run("bt"), run("info registers")
    out = run("klab bt %d" % pid)
    names = [re.sub(r"\+\d+$", "", n) for n in bt_names(out)]
    check("klab bt %d: crash's header" % pid, re.search(r"^PID: %d +TASK: [0-9a-f]+  CPU: \d+ +COMMAND: \"sleep\"$"
                                                          % pid, out, re.M) is not None, out)
    # /proc/PID/stack (kernel/stacktrace.c, no inline frames) must be klab's frames in order; an assembly label
    # (entry_SYSCALL_64_after_hwframe) is named by gdb as its enclosing symbol
    i = 0
    for fn in proc:
        while i < len(names) and not (names[i] == fn or fn.startswith(names[i] + "_")):
            i += 1
        if i == len(names):
            break
        i += 1
    check("klab bt %d has /proc/%d/stack's %d frames in order (%s)" % (pid, pid, len(proc), ",".join(proc)),
          len(proc) >= 3 and i <= len(names) and all(any(n == f or f.startswith(n + "_") for n in names)
                                                      for f in proc), out)
    check("after klab bt, bt is as before", run("bt") == before_bt, run("bt")[:300])
    check("after klab bt, info registers is as before", run("info registers") == before_regs, "")
    task = task_of_pid(pid)
    if task:
        out2 = run("klab bt 0x%x" % task[0])
        check("klab bt TASK gives the frames of klab bt PID", bt_names(out2) == bt_names(out), out2)
    out = run("klab bt")
    check("klab bt of the current task names the CPU", "running on CPU" in out and len(bt_names(out)) >= 2, out)
    out = run("klab bt --all")
    tasks = len([l for l in run("klab ps").splitlines()[1:] if l.strip()])
    check("klab bt --all: one header per task of klab ps (%d)" % tasks, out.count("\nPID: ") + 1 == tasks, out[:200])
    expect_error("klab bt 99999")
    expect_error("klab bt --nosuch")


def check_irq():
    """Stopped inside the timer interrupt (hrtimer_interrupt, on the IRQ stack) of each CPU in turn: klab bt of
    that CPU's task leaves the IRQ stack, reads the interrupt's pt_regs and goes on in the code the interrupt
    hit, as crash's bt does. Each CPU: its IRQ stack lies above or below the stack of the task it interrupted
    (CPU 0's idle task runs on a stack in the kernel image), and a walk that crosses must work both ways. The
    truth for the pt_regs: x86, the `regs` argument gdb itself finds (DWARF) in the frame of
    sysvec_apic_timer_interrupt; arm64, ELR_EL1, the CPU's own exception return address."""
    for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
        run("hbreak hrtimer_interrupt if $_thread == %d" % t.num)
        try:
            run("continue")
        finally:
            run("delete")
        check_irq_bt("CPU %d" % (t.num - 1))


def check_irq_bt(where):
    out = run("klab bt")
    # x86 finds the pt_regs at once from the IRQ stack; arm64 leaves it through call_on_irq_stack's frame
    # record and meets the pt_regs at the vector (el1h_64_irq). An interrupt nested in a softirq that runs on
    # the IRQ stack has its pt_regs there, before the IRQ stack line: the first pt_regs is the innermost's.
    irq = out.find("\n--- <IRQ stack> ---\n")
    m = re.search(r"^    \[(exception|user space)[^\]]*\(pt_regs at ([0-9a-f]+)\)\]$", out, re.M)
    if not check("%s: klab bt in the timer interrupt: leaves the IRQ stack, then the interrupt's pt_regs" % where,
                 irq >= 0 and m is not None, out):
        return
    regs = int(m.group(2), 16)
    after = bt_names(out[m.end():])
    resumed = re.search(r"^ ?#\d+ \[[0-9a-f]+\] \S+ at ([0-9a-f]+)$", out[m.end():], re.M)
    if ARCH == "x86_64":
        f, truth = gdb.newest_frame(), None
        while f is not None and truth is None:
            if f.name() == "sysvec_apic_timer_interrupt":
                truth = int(f.read_var("regs")) & ((1 << 64) - 1)
            f = f.older()
        check("%s: the pt_regs klab found (%x) is sysvec_apic_timer_interrupt's regs argument (%s)" % (
            where, regs, "%x" % truth if truth else "?"), truth == regs, out)
        pc = ev("((struct pt_regs *)0x%x)->ip" % regs)
    else:
        pc = ev("$ELR_EL1")
        check("%s: the pt_regs klab found (%x) holds ELR_EL1 (%x) as its pc" % (where, regs, pc),
              ev("((struct pt_regs *)0x%x)->pc" % regs) == pc, out)
    if m.group(1) == "exception":
        check("%s: klab bt goes on at the interrupted pc (%x), %d frames" % (where, pc, len(after)),
              resumed is not None and int(resumed.group(1), 16) == pc and len(after) >= 2, out)
    else:
        check("%s: the interrupt hit user code: klab bt ends at its pc (%x)" % (where, pc), "%016x" % pc in m.group(0),
              out)


def slabinfo():
    """{cache: (active_objs, num_objs)} from the guest's /proc/slabinfo; a line a kernel message cut on the
    console does not parse and is left out."""
    rows = {}
    for line in section("SLABINFO-BEGIN", "SLABINFO-END"):
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+\d+ : tunables", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return rows


def check_slab():
    guest = slabinfo()
    out = run("klab slab")
    mine = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) == 7:
            mine[f[6]] = (int(f[2]), int(f[3]))
    # every cache the guest listed, and no more than the few lines a console message may have cut
    same_names = set(guest) <= set(mine) and len(mine) - len(guest) <= 3
    check("klab slab lists the caches of /proc/slabinfo (%d, klab %d)" % (len(guest), len(mine)),
          len(guest) > 50 and same_names, "only guest: %s; only klab: %s" % (sorted(set(guest) - set(mine))[:5],
                                                                       sorted(set(mine) - set(guest))[:5]))
    both = [n for n in guest if n in mine]
    equal = [n for n in both if guest[n] == mine[n]]
    # the guest's cat ran a moment before the stop: caches in use by the shell may move, quiet ones may not
    check("klab slab's allocated/total equal /proc/slabinfo's active_objs/num_objs for %d of %d caches" % (
        len(equal), len(both)), len(both) and len(equal) >= 0.9 * len(both),
        "; ".join("%s guest %s klab %s" % (n, guest[n], mine[n]) for n in both if n not in equal)[:400])
    quiet = [n for n in ("kmem_cache", "kmem_cache_node", "pid_namespace", "files_cache") if n in both]
    check("quiet caches equal exactly (%s)" % ",".join(quiet), quiet and all(guest[n] == mine[n] for n in quiet),
          "; ".join("%s guest %s klab %s" % (n, guest[n], mine[n]) for n in quiet))
    one = run("klab slab task_struct").splitlines()
    check("klab slab task_struct is one row", len(one) == 2 and one[1].endswith(" task_struct"), "\n".join(one))
    expect_error("klab slab nosuchcache")
    expect_error("klab slab --objects")
    check_slab_objects()


def objects(out):
    """(slab count, total, {allocated}, {free}) from klab slab CACHE --objects."""
    slabs = re.findall(r"^  [0-9a-f]{16}  [0-9a-f]{16}\s+(\d+)\s+", out, re.M)
    return (len(slabs), sum(int(n) for n in slabs), {int(a, 16) for a in re.findall(r"^  \[([0-9a-f]+)\]$", out, re.M)},
            {int(a, 16) for a in re.findall(r"^   ([0-9a-f]+)$", out, re.M)})


def check_slab_objects():
    """Every slab found by the struct page scan: their objects add up to the kernel's own per-node counters
    (what klab slab and /proc/slabinfo print), and the allocated ones are what the kernel's lists hold."""
    table = run("klab slab")
    caches = {int(line.split()[0], 16) for line in table.splitlines()[1:] if line.strip()}
    out = run("klab slab kmem_cache --objects")
    nslabs, total, alloc, free = objects(out)
    row = re.search(r"^[0-9a-f]+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+kmem_cache$", table, re.M)
    check("klab slab kmem_cache --objects: %d slabs, %d objects, as the node counters say (%s)" % (
        nslabs, total, row.group(0) if row else "?"), row and (nslabs, total) == (int(row.group(3)), int(row.group(2))),
        out[-300:])
    # SLUB's bootstrap() moved every cache, kmem_cache's own too, into a kmem_cache object (mm/slub.c)
    check("the allocated kmem_cache objects are exactly the %d caches on slab_caches" % len(caches),
          alloc == caches and not (free & caches), "only objects: %s; only caches: %s" % (
              sorted("%x" % a for a in alloc - caches)[:4], sorted("%x" % c for c in caches - alloc)[:4]))
    out = run("klab slab task_struct --objects")
    nslabs, total, alloc, free = objects(out)
    init = ev("&init_task")
    tasks = set()
    for line in run("klab ps").splitlines()[1:]:
        f = line.lstrip("> ").split()
        if len(f) > 3 and int(f[3], 16) != init:
            tasks.add(int(f[3], 16))
    check("every task of klab ps but init_task is an allocated task_struct object (%d)" % len(tasks),
          tasks and tasks <= alloc and not (tasks & free), "missing: %s" % sorted("%x" % t for t in tasks - alloc)[:4])
    row = re.search(r"^[0-9a-f]+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+task_struct$", table, re.M)
    check("klab slab task_struct --objects: the slabs and objects of the node counters",
          row and (nslabs, total) == (int(row.group(3)), int(row.group(2))), "%d %d vs %s" % (
              nslabs, total, row.group(0) if row else "?"))


def check_whatis():
    m = re.search(r"^SLEEP (\d+)$", LOG, re.M)
    task = task_of_pid(int(m.group(1))) if m else None
    if task:
        out = run("klab whatis 0x%x" % task[0])
        check("klab whatis of the sleeper's task_struct: cache task_struct, allocated object at it",
              "slab cache task_struct" in out and "allocated object %x (+0x0)" % task[0] in out, out)
        inside = task[0] + ev("(unsigned long)&((struct task_struct *)0)->comm")
        out = run("klab whatis 0x%x" % inside)
        check("klab whatis of &task->comm: the same object at the comm offset",
              "allocated object %x (+%#x)" % (task[0], inside - task[0]) in out, out)
        stack = ev("((struct task_struct *)0x%x)->stack" % task[0])
        out = run("klab whatis 0x%x" % (stack + 0x100))
        check("klab whatis of the sleeper's stack: its kernel stack", "kernel stack of PID %s \"sleep\"" % m.group(1)
              in out, out)
    out = run("klab whatis init_task")
    check("klab whatis init_task: kernel image, init_task+0x0", "kernel image, init_task+0x0 in .data" in out, out)
    # CPU 0's IRQ stack, found by gdb's own expression over the per-CPU pointer the kernel keeps
    # (arch/x86/kernel/irq_64.c: top minus 8; arch/arm64/kernel/irq.c: the base)
    if gdb.selected_inferior().architecture().name().startswith("aarch64"):
        inside = ev("*(unsigned long *)((char *)&irq_stack_ptr + __per_cpu_offset[0])") + 0x100
    else:
        var = "pcpu_hot.hardirq_stack_ptr" if gdb.lookup_global_symbol("pcpu_hot") else "hardirq_stack_ptr"
        inside = ev("*(unsigned long *)((char *)&%s + __per_cpu_offset[0])" % var) - 0x100
    out = run("klab whatis 0x%x" % inside)
    check("klab whatis inside CPU 0's IRQ stack (gdb's own per-CPU read): IRQ stack of CPU 0",
          "IRQ stack of CPU 0, +" in out, out)
    # the stop may land in an interrupt: then $sp is on this CPU's IRQ stack
    t = gdb.selected_thread()
    cpu = (t.ptid[1] or t.num) - 1
    out = run("klab whatis $sp")
    check("klab whatis $sp: a kernel stack, init's stack in the image, or this CPU's IRQ stack",
          "kernel stack of PID" in out or "init_thread_union" in out or "init_stack" in out
          or "IRQ stack of CPU %d," % cpu in out, out)
    expect_error("klab whatis 0")


def check_search():
    """Plant a value in the sleeper's vmalloc'ed stack (far below its frames), find it at that address and at
    its linear-map alias (QEMU's gva2gpa + the linear map's own base), then put the old word back."""
    m = re.search(r"^SLEEP (\d+)$", LOG, re.M)
    task = task_of_pid(int(m.group(1))) if m else None
    if not task:
        fail("klab search", "no sleeper task")
        return
    stack = ev("((struct task_struct *)0x%x)->stack" % task[0])
    at = stack + 0x200
    value = 0x6b6c61622d736561 ^ at
    old = ev("*(unsigned long *)0x%x" % at)
    run("set var *(unsigned long *)0x%x = 0x%x" % (at, value))
    try:
        out = run("klab search 0x%x --max 0" % value)
    finally:
        run("set var *(unsigned long *)0x%x = 0x%x" % (at, old))
    hits = {int(h, 16) for h in re.findall(r"^([0-9a-f]+): ", out, re.M)}
    pa = gva2gpa(at)
    lm = run("klab ptov 0x%x" % pa) if pa is not None else ""
    alias = re.search(r"^([0-9a-f]+)\s+[0-9a-f]+\s+\(linear map\)", lm, re.M)
    want = {at} | ({int(alias.group(1), 16)} if alias else set())
    check("klab search finds the planted value at the stack VA and its linear-map alias (%s)" % ",".join(
        "%x" % w for w in sorted(want)), len(want) == 2 and hits == want, out)
    expect_error("klab search 1 --range 0x2000-0x1000")
    expect_error("klab search 1 --width 3")


def check_softlockup():
    cons = re.search(r"watchdog: BUG: soft lockup - CPU#(\d+) stuck for \d+s! \[lab_spinner:(\d+)\]", LOG)
    if not check("the console shows the soft lockup of lab_spinner", cons is not None, LOG[-500:]):
        return
    out = run("klab dmesg")
    check("klab dmesg shows the soft-lockup report", cons.group(0) in out, "")
    sp = re.search(r"softlockup: spinner pid (\d+) locked page ([0-9a-f]+) \(pfn (0x[0-9a-f]+), mapping ([0-9a-f]+)\)",
                   LOG)
    wt = re.search(r"softlockup: waiter pid (\d+) waits", LOG)
    if not check("the lab printed its page and both pids", sp is not None and wt is not None, ""):
        return
    spinner, waiter = task_of_pid(int(sp.group(1))), task_of_pid(int(wt.group(1)))
    check("klab ps: lab_spinner RU, lab_waiter UN", spinner and spinner[1:] == ("RU", "[lab_spinner]")
          and waiter and waiter[1:] == ("UN", "[lab_waiter]"), "%s %s" % (spinner, waiter))
    out = run("klab bt %s" % wt.group(1))
    names = bt_names(out)
    check("klab bt of the waiter: blocked on the page lock (folio_wait_bit_common / __folio_lock)",
          any(n in names for n in ("folio_wait_bit_common", "__folio_lock", "__lock_page", "folio_lock")), out)
    # the lab was loaded before gdb attached: until klab modules, gdb has no symbols for it
    out = run("klab bt %s" % sp.group(1))
    names = bt_names(out)
    check("before klab modules, klab bt of the spinner ends in the lab's module and says how to go on",
          names[-1:] == ["?? [softlockup]"] and "the walk ends in module softlockup" in out
          and "`klab modules` loads them" in out, out)
    run("klab modules")   # its symbols come from its .ko
    out = run("klab bt %s" % sp.group(1))
    check("klab bt of the spinner: running, in the lab's spinner()", "running on CPU %s" % cons.group(1) in out
          and "spinner" in bt_names(out), out)
    out = run("klab page 0x%s" % sp.group(2))
    check("klab page of the lab's page: locked among its flags", re.search(r" \S*\blocked\b", out) is not None, out)
    out = run("klab whatis 0x%s" % sp.group(4))
    check("klab whatis of the page's mapping: a shmem inode", "slab cache shmem_inode_cache" in out, out)


PARTS = (check_dmesg, check_bt, check_slab, check_whatis, check_search) + ((check_softlockup,) if SOFTLOCKUP else ()) \
    + (check_irq,)
# KLAB_TEST_PARTS=check_slab_objects,... runs only those (a developer's shortcut; make test runs all)
ONLY = os.environ.get("KLAB_TEST_PARTS")
for part in [globals()[n] for n in ONLY.split(",")] if ONLY else PARTS:
    try:
        part()
    except gdb.error as e:
        fail(part.__name__, "gdb error: %s" % e)
    except Exception as e:   # noqa: BLE001 - a check that breaks is a failure line, not a traceback
        fail(part.__name__, "the check itself broke: %s: %s" % (type(e).__name__, e))
print("# gdb_triage.py: done")
