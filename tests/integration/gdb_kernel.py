"""Checks of klab current / ps / page / pfn / ptov / initmem-watch / vtop --pid inside one real gdb session
(sourced by gdb_kernel.sh, which booted the VM and stopped it at start_kernel). Each klab answer is compared
with something klab did not compute: QEMU's gva2gpa and xp monitor commands, gdb's own memory reads, the
CPU's stack pointer, the kernel's variables and enums, and what the guest itself printed (its /proc/PID/stat
and /proc/self/pagemap). Prints "ok - ..." / "not ok - ..." lines."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from gdb_checks import (ARCH, CONSOLE, MASK64, check, ev, expect_error, fail, gva2gpa, nm,  # noqa: E402
                        current_rows, page_line, qemu_bytes, run, walked_pa)


def stack_holds_sp(task, sp):
    """The CPU's own stack pointer lies in the task's kernel stack, THREAD_SIZE bytes from task->stack; the
    kernel's THREAD_SIZE is the size of init_stack (include/linux/sched/task.h: init_stack[THREAD_SIZE/...])."""
    stack = ev("((struct task_struct *)0x%x)->stack" % task)
    return stack <= sp < stack + ev("sizeof(init_stack)")


def check_current(where, want_pid=None, want_task=None, want_comm=None, user=False):
    out = run("klab current")
    rows, mode = current_rows(out)
    usable = {k: v for k, v in rows.items() if v}
    if not check("%s: klab current names a task" % where, usable and "both methods agree" in out or len(usable) == 1,
                 out):
        return None
    task, pid, comm = list(usable.values())[0]
    if want_pid is not None:
        check("%s: current pid %d (want %d)" % (where, pid, want_pid), pid == want_pid, out)
    if want_task is not None:
        check("%s: current task %x = %x" % (where, task, want_task), task == want_task, out)
    if want_comm is not None:
        check("%s: current comm %s (want %s)" % (where, comm, want_comm), comm == want_comm, out)
    if user:
        check("%s: stopped in user mode" % where, "user mode" in mode, mode)
        if ARCH == "arm64":
            check("%s: SP_EL0 not used at EL0, __entry_task used" % where,
                  rows.get("SP_EL0", 1) is None and any(k.startswith("__entry_task") for k in usable), out)
        else:
            check("%s: KERNEL_GS_BASE used in user mode" % where, any("KERNEL_GS_BASE" in k for k in usable), out)
    else:
        sp = ev("$sp")
        check("%s: $sp %x lies in current's kernel stack" % (where, sp), stack_holds_sp(task, sp), out)
    return task, pid, comm


def check_page(what, cmd):
    """klab page's flags against the struct page gdb reads and the kernel's enum pageflags values."""
    try:
        out = run(cmd)
    except gdb.error as e:
        fail("%s: %s" % (what, cmd), str(e))
        return None
    p = page_line(out)
    if not check("%s: %s prints a kmem -p line" % (what, cmd), p is not None, out):
        return None
    flags = ev("((struct page *)0x%x)->flags" % p["page"])
    nr = ev("(int)__NR_PAGEFLAGS")
    want = set()
    for b in range(nr):
        if flags >> b & 1:
            want.add(b)
    got = set(ev("(int)PG_%s" % n) for n in p["names"])
    check("%s: FLAGS %x = gdb's page->flags %x" % (what, p["flags"], flags), p["flags"] == flags)
    check("%s: names %s = the set bits below __NR_PAGEFLAGS by enum pageflags" % (what, ",".join(p["names"])),
          got == want, "named bits %s, set bits %s" % (sorted(got), sorted(want)))
    p["out"] = out
    return p


def guest_pagemap():
    """(pid, stack VA, stack pfn) as the guest's pagemap tool printed them from /proc/self/pagemap."""
    with open(CONSOLE, errors="replace") as f:
        text = f.read()
    pid = re.search(r"pagemap: pid (\d+)", text)
    stack = re.search(r"^stack\s+0x([0-9a-f]+) pfn 0x([0-9a-f]+) present 1", text, re.M)
    if not pid or not stack:
        return None
    return int(pid.group(1)), int(stack.group(1), 16), int(stack.group(2), 16)


def guest_stat():
    """pid -> (comm, ppid) from the guest's own /proc/*/stat, printed to the console by the test hook."""
    out = {}
    with open(CONSOLE, errors="replace") as f:
        for line in f:
            m = re.match(r"STAT (\d+) \((.*)\) \S+ (\d+)", line.strip())
            if m:
                out[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return out


def guest_rss():
    """(pid, VmRSS in kB) of the spinning pagemap, from its /proc/PID/status (fs/proc/task_mmu.c task_mem:
    the rss counters summed over every CPU), printed by the test hook; None if not printed."""
    with open(CONSOLE, errors="replace") as f:
        m = re.search(r"^RSSOF (\d+) VmRSS:\s+(\d+) kB", f.read(), re.M)
    return (int(m.group(1)), int(m.group(2))) if m else None


def main():
    # --- at start_kernel: the boot task, before per-CPU areas and free_initmem -----------------------------
    init_task = ev("&init_task")
    check_current("start_kernel", want_pid=0, want_task=init_task)
    init_begin = ev("&__init_begin")
    init_pa = gva2gpa(init_begin)
    check("start_kernel: QEMU maps __init_begin", init_pa is not None)

    # --- free_initmem, watched ------------------------------------------------------------------------------
    out = run("klab initmem-watch")
    check("initmem-watch names the call kernel_init makes", "kernel_init+" in out, out)
    report = run("continue")
    m = re.search(r"init section PA ([0-9a-f]+)", report)
    check("initmem-watch: init section PA = gva2gpa(__init_begin) at start_kernel",
          m and init_pa is not None and int(m.group(1), 16) == init_pa, report)
    image = re.search(r"image .*\n    before: (.*)\n    after:  (.*)\n    changed: (.*)", report)
    linear = re.search(r"linear (\w+)-\w+\n    before: (.*)\n    after:  (.*)\n    changed: (.*)", report)
    if check("initmem-watch prints before/after/changed for image and linear alias", image and linear, report):
        after_pa = gva2gpa(init_begin)
        try:
            seen = gdb.selected_inferior().read_memory(init_begin, 16).tobytes()
        except gdb.MemoryError:
            seen = None
        if ARCH == "arm64":
            check("initmem-watch: arm64 image range reported unmapped", image.group(3).startswith("unmapped"),
                  image.group(0))
            check("initmem-watch: QEMU gva2gpa and gdb's read agree it is unmapped", after_pa is None and seen is None,
                  "gpa %s, read %s" % (after_pa, seen))
        else:
            check("initmem-watch: x86 image range reported still mapped", image.group(3).startswith("still mapped"),
                  image.group(0))
            rep = bytes.fromhex(image.group(2).split("bytes: ")[1].replace(" ", ""))
            check("initmem-watch: x86 image bytes = gdb's own read (%s)" % rep[:4].hex(), seen == rep and
                  after_pa == init_pa, "gdb %s, report %s" % (seen, rep))
        lin_after = bytes.fromhex(linear.group(3).split("bytes: ")[1].replace(" ", ""))
        check("initmem-watch: linear alias bytes after = QEMU's xp at the init PA (%s)" % lin_after[:4].hex(),
              init_pa is not None and qemu_bytes(init_pa) == lin_after, "xp %s" % qemu_bytes(init_pa or 0).hex())
        # The page tables' own account of the same call (klab ptdiff inside initmem-watch): a region
        # initmem-watch calls unmapped is unmapped there whole, one it calls still mapped loses nothing.
        for name, m in (("image", image), ("linear", linear)):
            lo, hi = [int(x, 16) for x in re.search(r"  %s +([0-9a-f]+)-([0-9a-f]+)\n" % name, report).groups()]
            gone = 0
            for a, b in re.findall(r"^    %s +- 0x([0-9a-f]+)-0x([0-9a-f]+) " % name, report, re.M):
                gone += min(int(b, 16), hi) - max(int(a, 16), lo)
            said = m.group(m.lastindex)
            if said.startswith("unmapped"):
                check("initmem-watch: ptdiff finds the %s range unmapped whole, as the watch says" % name,
                      gone == hi - lo, "%d of %d bytes: %s" % (gone, hi - lo, report[report.find("page tables"):]))
            else:
                check("initmem-watch: ptdiff finds nothing of the %s range unmapped, as the watch says (%s)" % (
                    name, said[:40]), gone == 0, report[report.find("page tables"):])
                perms = re.search(r"^    %s +~ .* perms" % name, report, re.M) is not None
                check("initmem-watch: ptdiff %s a rights change of the %s range, as the watch says" % (
                    "finds" if perms else "finds no", name), perms == ("permissions changed" in said),
                      report[report.find("page tables"):])
        # free_initmem poisons what it frees (mm/page_alloc.c free_reserved_area, POISON_FREE_INITMEM): the
        # bytes QEMU itself shows at the PA, not klab's word for it.
        check("initmem-watch: the init PA holds 0xcc after free_initmem (QEMU xp)",
              init_pa is not None and qemu_bytes(init_pa) == b"\xcc" * 16, "xp %s" % qemu_bytes(init_pa or 0).hex())
    # free_initmem ran from kernel_init: pid 1 by construction (init/main.c rest_init)
    check_current("after free_initmem", want_pid=1)

    # --- a process in a system call (the hook runs `sync` while pagemap spins on the other CPU) ----------------
    run("delete")
    run("hbreak ksys_sync")
    run("continue")
    check_current("in sync(2)", want_comm="sync")
    printed = guest_pagemap()
    if not check("the guest's pagemap printed its pid and stack pfn", printed is not None, "console: see log"):
        return
    pid, stack_va, stack_pfn = printed

    # --- the same task list the guest printed -----------------------------------------------------------------
    ps = run("klab ps")
    rows = {}
    for line in ps.splitlines()[1:]:
        m = re.match(r"([> ])\s*(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-f]+)\s+(\S\S)\s+\S+\s+\d+\s+(\d+)\s+(.*)$", line)
        if m:
            rows.setdefault(int(m.group(2)), (m.group(8).strip("[]"), int(m.group(3)), m.group(1) == ">",
                                              m.group(6), int(m.group(7))))
    guest = guest_stat()
    # /proc shows a kthread's full name and a kworker's work queue (fs/proc/array.c proc_task_name); task->comm
    # is its first 15 characters
    agree = [p for p, (c, pp) in guest.items() if p in rows and c.startswith(rows[p][0]) and rows[p][1] == pp]
    missing = [p for p in guest if p not in rows and guest[p][0] not in ("cat", "sh", "sync")]
    differ = [p for p in guest if p in rows and p not in agree]
    check("klab ps agrees with the guest's /proc/*/stat on %d tasks (pid, comm, ppid)" % len(agree),
          len(agree) >= 20 and not missing and not differ,
          "missing %s, differ %s" % (missing, [(p, guest[p], rows[p]) for p in differ]))
    syncs = [r for r in rows.values() if r[0] == "sync"]
    check("klab ps marks sync, which this CPU runs, running ('>', RU)", syncs and syncs[0][2] and syncs[0][3] == "RU",
          syncs)
    check("klab ps shows pagemap, spinning, as RU", pid in rows and rows[pid][3] == "RU", rows.get(pid))
    rss = guest_rss()
    check("klab ps RSS of pagemap = its /proc/%s/status VmRSS (%s kB)" % (rss and rss[0], rss and rss[1]),
          rss and rss[0] == pid and rss[0] in rows and rows[rss[0]][4] == rss[1],
          (rss, pid, rows.get(rss[0]) if rss else None))

    # --- user-space vtop of another process against the guest's own /proc/self/pagemap ----------------------------
    out = run("klab vtop 0x%x --pid %d" % (stack_va, pid))
    pa = walked_pa(out)
    if check("vtop --pid %d of its stack %x is mapped" % (pid, stack_va), pa is not None, out):
        check("vtop --pid: pfn %x = pagemap's %x" % (pa[0] >> pa[1], stack_pfn), pa[0] >> pa[1] == stack_pfn)
        dump = run("klab ptdump --pid %d --filter u" % pid)
        hit = [l for l in dump.splitlines() if l.startswith("0x") and
               int(l[2:18], 16) <= stack_va < int(l[21:37], 16)]
        check("ptdump --pid has the stack page user-writable", hit and " rw-/rw-" in hit[0], hit or dump[-300:])
        check_page("anonymous stack page", "klab page --pa 0x%x" % pa[0])

    # --- the CPU stopped while it runs pagemap in user mode ----------------------------------------------------
    run("delete")
    run("hbreak *0x%x" % nm("pagemap_spin"))
    run("continue")
    check_current("in user mode (pagemap spinning)", want_pid=pid, want_comm="pagemap", user=True)
    out = run("klab vtop 0x%x" % stack_va)
    pa = walked_pa(out)
    check("user mode: vtop %x with the CPU's own tables: pfn = pagemap's, PA = gva2gpa" % stack_va,
          pa is not None and pa[0] >> pa[1] == stack_pfn and gva2gpa(stack_va) == pa[0], out)
    # the rest reads kernel memory: stop in the kernel again (the next timer tick; update_process_times calls
    # scheduler_tick, renamed sched_tick in 6.10, on every kernel generation)
    run("delete")
    run("hbreak update_process_times")
    run("continue")
    run("delete")

    # --- struct page of a kernel-image page and of a slab object ----------------------------------------------
    p = check_page("jiffies (kernel image)", "klab page jiffies")
    if p:
        check("jiffies' page is reserved (memblock reserves the image)", "reserved" in p["names"], p["out"])
    task1 = ev("(unsigned long)&((struct task_struct *)0)->tasks")
    task1 = (ev("init_task.tasks.next") - task1) & MASK64
    p = check_page("pid 1's task_struct", "klab page 0x%x" % task1)
    if p:
        head = re.search(r"tail page of head ([0-9a-f]+)", p["out"])
        head = int(head.group(1), 16) if head else p["page"]
        hp = check_page("task_struct slab head page", "klab page 0x%x" % head)
        try:
            same = ev("((struct slab *)0x%x)->slab_cache == task_struct_cachep" % head)
        except gdb.error:
            same = ev("((struct page *)0x%x)->slab_cache == task_struct_cachep" % head)
        # a slab page is the flag PG_slab until v6.10, the page type slab since (enum pagetype PGTY_slab)
        as_flag = gdb.lookup_type("enum pageflags").fields() and any(
            f.name == "PG_slab" for f in gdb.lookup_type("enum pageflags").fields())
        said = hp and ("slab" in hp["names"] if as_flag else re.search(r"^page_type: .*\bslab\b", hp["out"], re.M))
        check("task_struct's page is a slab page of task_struct_cachep (%s)" % ("PG_slab" if as_flag else "page type"),
              said and same == 1, hp and hp["out"])
        pa1 = gva2gpa(task1)
        out = run("klab ptov 0x%x" % pa1)
        check("ptov(gva2gpa(task %x)) gives the task's linear address back" % task1,
              re.search(r"^%x\s+%x\s+\(linear map\)" % (task1, pa1), out, re.M) is not None, out)
        out = run("klab pfn 0x%x" % task1)
        check("pfn of the task: PA = gva2gpa", re.search(r"^%x\s+%x\s" % (task1, pa1), out, re.M) is not None, out)

    # --- a free page from the buddy allocator's own free lists: page_type buddy, of that order -------------------
    try:
        zones = "node_data[0]->node_zones"
        gdb.parse_and_eval(zones)
    except gdb.error:
        zones = "contig_page_data.node_zones"
    lru = ev("(unsigned long)&((struct page *)0)->lru")
    found = None
    # MAX_ORDER and MIGRATE_TYPES as this kernel was built: the array bounds in its DWARF (6.1 and 6.12 differ).
    orders = gdb.lookup_type("struct zone")["free_area"].type.range()[1] + 1
    mtypes = gdb.lookup_type("struct free_area")["free_list"].type.range()[1] + 1
    for z in range(ev("(int)__MAX_NR_ZONES")):
        for order in range(orders):
            for mt in range(mtypes):
                head = ev("(unsigned long)&%s[%d].free_area[%d].free_list[%d]" % (zones, z, order, mt))
                nxt = ev("*(unsigned long *)0x%x" % head)
                if nxt and nxt != head:
                    found = (nxt - lru, order)
                    break
            if found:
                break
        if found:
            break
    if check("found a page on a buddy free list", found is not None):
        out = run("klab page 0x%x" % found[0])
        check("page_type: buddy (order %d) for a page on free_area[%d]" % (found[1], found[1]),
              "page_type: buddy (order %d)" % found[1] in out, out)

    # --- garbage ------------------------------------------------------------------------------------------------
    for bad in ("klab current --cpu 9", "klab current --cpu x", "klab current foo", "klab ps --frob",
                "klab ptov", "klab ptov nosuchsym", "klab pfn 0x10", "klab page --pa 0xfffffffffffff000",
                "klab vtop 0 --pid 99999", "klab vtop 0 --pid 2", "klab vtop 0 --pid x", "klab vtop 0 --pid 1 --mm 5",
                "klab vtop 0 --mm 0x10", "klab initmem-watch", "klab kaslr now", "p $klab_current(1, 2)"):
        expect_error(bad)
    # A PA that is not RAM on the machine (QEMU hw/arm/virt.c: RAM from 0x40000000, flash below it; the pc
    # machine with 1 GiB: nothing at 2 GiB) gets one line saying so, never a made-up linear address.
    not_ram = 0x1000000 if ARCH == "arm64" else 0x80000000
    try:
        out = run("klab ptov 0x%x" % not_ram)
        fail("ptov of non-RAM PA %#x is refused" % not_ram, "it answered: %s" % out.strip()[:200])
    except gdb.error as e:
        check("ptov of non-RAM PA %#x: one line, 'not RAM': %s" % (not_ram, e),
              "is not RAM" in str(e) and "\n" not in str(e).strip(), str(e))


try:
    main()
    print("# gdb_kernel.py: done")   # only a session that made every check prints it (tests/lib.sh gdb_ran)
except gdb.error as e:
    fail("session", "gdb error: %s" % e)
