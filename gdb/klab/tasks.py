"""klab current, $klab_current() and klab ps: which task a CPU runs, found two independent ways and checked
against each other, and the task list in crash's ps layout."""

import gdb

from klab.command import KlabCommand
from klab import arch, kernel, lib

# Task state bits, include/linux/sched.h (v6.1); crash's two-letter names (crash task.c task_state_string).
_STATES = ((0x20, "ZO"), (0x10, "DE"), (0x80, "DE"), (0x8, "TR"), (0x4, "ST"), (0x40, "PA"), (0x200, "WA"),
           (0x800, "NE"), (0x1, "IN"))
_TASK_UNINTERRUPTIBLE, _TASK_NOLOAD = 0x2, 0x400


def state_name(task):
    state = int(task["__state"] if kernel.has_field(task.type, "__state") else task["state"])
    state |= int(task["exit_state"])
    if state & _TASK_UNINTERRUPTIBLE:
        return "ID" if state & _TASK_NOLOAD else "UN"
    for bit, name in _STATES:
        if state & bit:
            return name
    return "RU"


def _current_variable(what):
    """(symbol, offset of the task pointer in it): pcpu_hot.current_task since v6.2, current_task before."""
    if kernel.has_symbol("pcpu_hot"):
        off = int(gdb.parse_and_eval("(unsigned long)&((struct pcpu_hot *)0)->current_task"))
        return "pcpu_hot", off
    if kernel.has_symbol("current_task"):
        return "current_task", 0
    raise kernel.error(what, "this kernel has neither pcpu_hot nor current_task")


def _per_cpu_method(label, name, cpu, what, add=0, offset=None):
    """(label, task pointer read from per-CPU variable name (+ add) of cpu, or None, why not)."""
    try:
        addr = kernel.per_cpu_address(name, cpu, what, offset) + add
        return label, kernel.kread_u64(addr, what, "the task pointer"), None
    except gdb.GdbError as e:
        return label, None, str(e).split(": ", 1)[-1]


def _methods(cpu, what):
    """[(method, task address or None, why not usable)] for the selected CPU (already switched to)."""
    user, mode = kernel.cpu_mode()
    return mode, arch.current().current_methods(_per_cpu_method, _current_variable, cpu, user, what)


def _describe(addr, what):
    """(pid, comm) when addr holds a readable task, else None."""
    if not addr:
        return None
    try:
        pid = kernel.kread(addr + kernel.field_offset("struct task_struct", "pid", what), 4, what, "pid")
        comm = kernel.kread(addr + kernel.field_offset("struct task_struct", "comm", what), 16, what, "comm")
    except (gdb.GdbError, gdb.error):
        return None
    return int.from_bytes(pid, "little", signed=True), comm.split(b"\0")[0].decode(errors="replace")


def current_of(cpu, what):
    """Runs both methods on cpu: (mode, [(method, addr, pid, comm, why)], chosen task address). Raises when
    no method is usable or two usable methods disagree."""
    previous = kernel.select_cpu(cpu, what)
    try:
        mode, methods = _methods(cpu, what)
    finally:
        previous.switch()
    rows = []
    for label, addr, why in methods:
        d = _describe(addr, what) if why is None else None
        if why is None and d is None:
            why = "NULL" if not addr else "%x is not a readable task_struct" % addr
        rows.append((label, addr if d else None, d[0] if d else None, d[1] if d else None, why))
    usable = [r for r in rows if r[1] is not None]
    chosen = usable[0][1] if usable else None
    return mode, rows, chosen, len({r[1] for r in usable}) > 1


def _parse_cpu(arg, what):
    words = gdb.string_to_argv(arg)
    if not words:
        return kernel.selected_cpu()
    if len(words) == 2 and words[0] == "--cpu":
        try:
            return int(words[1], 0)
        except ValueError:
            raise kernel.error(what, "--cpu wants a number, not '%s'", words[1])
    raise kernel.error(what, "usage: klab %s [--cpu N]", what)


class KlabCurrent(KlabCommand):
    """The task a CPU is running, found two independent ways and checked against each other.

Usage: klab current [--cpu N]      (default: the CPU gdb has selected)
  arm64:  SP_EL0 (the kernel keeps `current` there while at EL1; at EL0 it is the user stack pointer),
          and the per-CPU __entry_task that __switch_to sets, read through __per_cpu_offset[N].
  x86_64: the per-CPU current_task (pcpu_hot.current_task since v6.2) read through __per_cpu_offset[N],
          and through the GS base register (KERNEL_GS_BASE while the CPU is in user mode).
Prints each method's task, pid and comm, and which were usable. Two usable methods that disagree are an
error. $klab_current() and $klab_current(N) give the task as a struct task_struct *."""

    OPTIONS = ("--cpu",)

    def __init__(self):
        super().__init__("klab current")

    def invoke(self, arg, from_tty):
        cpu = _parse_cpu(arg, "current")
        mode, rows, chosen, disagree = current_of(cpu, "current")
        gdb.write("CPU %d (%s)\n" % (cpu, mode))
        width = max(len(r[0]) for r in rows)
        gdb.write("  %-*s  %-16s  %6s  %s\n" % (width, "METHOD", "TASK", "PID", "COMM"))
        for label, addr, pid, comm, why in rows:
            if addr is None:
                gdb.write("  %-*s  %-16s  %6s  not usable: %s\n" % (width, label, "-", "-", why))
            else:
                gdb.write("  %-*s  %16x  %6d  %s\n" % (width, label, addr, pid, comm))
        usable = [r for r in rows if r[1] is not None]
        if disagree:
            raise kernel.error("current", "the methods disagree on CPU %d (%s)", cpu,
                               ", ".join("%s: %x" % (r[0], r[1]) for r in usable))
        if chosen is None:
            raise kernel.error("current", "no method gives a task on CPU %d", cpu)
        pid, comm = usable[0][2], usable[0][3]
        gdb.write("current: PID %d \"%s\" task %x (%s)\n" % (
            pid, comm, chosen, "both methods agree" if len(usable) > 1 else "only " + usable[0][0] + " usable"))


class KlabCurrentFunction(gdb.Function):
    """$klab_current([CPU]): the running task of CPU (default: the selected one) as struct task_struct *,
    by the methods of `klab current`; an error when none is usable or they disagree."""

    def __init__(self):
        super().__init__("klab_current")

    def invoke(self, *args):
        if len(args) > 1:
            raise kernel.error("current", "$klab_current takes at most one argument (a CPU number)")
        cpu = int(args[0]) if args else kernel.selected_cpu()
        _, rows, chosen, disagree = current_of(cpu, "current")
        if disagree or chosen is None:
            raise kernel.error("current", "no agreed task on CPU %d (see klab current --cpu %d)", cpu, cpu)
        return kernel.task_pointer(chosen, "current")


def _online_cpus():
    """The CPUs in __cpu_online_mask (include/linux/cpumask.h), lowest first."""
    bits = gdb.parse_and_eval("__cpu_online_mask")["bits"]
    n = bits.type.range()[1] + 1
    return [w * 64 + b for w in range(n) for b in range(64) if int(bits[w]) >> b & 1]


def _percpu_counter_sum(counter, what):
    """A struct percpu_counter as percpu_counter_sum() adds it up (lib/percpu_counter.c): the shared count
    plus each online CPU's s32 delta at counters + __per_cpu_offset[cpu]."""
    total = int(counter["count"])
    base = int(counter["counters"])
    for cpu in _online_cpus():
        addr = (base + kernel.per_cpu_offset(cpu, what)) & kernel.MASK64   # the offset may wrap (arm64)
        raw = kernel.kread(addr, 4, what, "a per-CPU RSS counter")
        total += int.from_bytes(raw, "little", signed=True)
    return total


def _rss_pages(mm, what="ps"):
    """file + anon + shmem pages, as get_mm_rss() (include/linux/mm.h); swap entries are not resident."""
    total = 0
    stat = mm["rss_stat"]
    for name in ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"):
        i = int(gdb.parse_and_eval(name))
        counter = stat["count"][i] if kernel.has_field(stat.type, "count") else stat[i]
        # atomic_long_t until v6.1; struct percpu_counter since v6.2 (commit f1a7941243c1), whose per-CPU
        # deltas are summed as get_mm_counter_sum() does
        if kernel.has_field(counter.type, "counter"):
            value = int(counter["counter"])
        else:
            value = _percpu_counter_sum(counter, what)
        total += max(value, 0)
    return total


class KlabPs(KlabCommand):
    """List tasks as crash's ps does: PID PPID CPU TASK ST %MEM VSZ RSS COMM.

Usage: klab ps [--user | --kernel]
  '>' marks the task each CPU's run queue has as curr; kernel threads (no mm) show as [comm].
  ST: RU running, IN interruptible, UN uninterruptible, ID idle, ST stopped, TR traced, ZO zombie, DE dead,
  PA parked, WA waking, NE new. VSZ and RSS in KiB."""

    OPTIONS = ("--user", "--kernel")

    def __init__(self):
        super().__init__("klab ps")

    def invoke(self, arg, from_tty):
        words = gdb.string_to_argv(arg)
        if any(w not in ("--user", "--kernel") for w in words) or len(words) > 1:
            raise kernel.error("ps", "usage: klab ps [--user | --kernel]")
        if not gdb.selected_inferior().pid:
            raise gdb.GdbError("klab ps: no process attached (start with `klab gdb` or `target remote`)")
        what = "ps"
        shift = kernel.page_shift(lib.mmu_regs(), what)
        running = set()
        for cpu in range(len(kernel.cpu_threads())):
            running.add(kernel.read_int(kernel.runqueue(cpu, what)["curr"], what, "runqueues[%d].curr" % cpu))
        try:
            totalram = int(gdb.parse_and_eval("_totalram_pages.counter"))
        except gdb.error:
            totalram = 0
        rows = []
        try:
            for t in kernel.all_tasks(what):
                addr = int(t.address)
                mm = t["mm"]
                user = bool(int(mm))
                if words and (words[0] == "--user") != user:
                    continue
                rss = vsz = 0
                if user:
                    rss = _rss_pages(mm)
                    vsz = int(mm["total_vm"])
                comm = kernel.task_comm(t, what)
                rows.append((int(t["pid"]), int(t["real_parent"]["pid"]), kernel.task_cpu(t), addr, state_name(t),
                             100.0 * rss / totalram if totalram else 0.0, vsz << (shift - 10), rss << (shift - 10),
                             comm if user else "[%s]" % comm, addr in running))
        except gdb.MemoryError as e:
            raise kernel.error(what, "cannot read the task list: %s", e)
        rows.sort(key=lambda r: (r[0], r[2]))
        gdb.write("   PID    PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM\n")
        for pid, ppid, cpu, addr, st, mem, vsz, rss, comm, run in rows:
            gdb.write("%s %5d  %6d  %3d  %16x  %s  %4.1f  %6d  %5d  %s\n" % (
                ">" if run else " ", pid, ppid, cpu, addr, st, mem, vsz, rss, comm))


KlabCurrent()
KlabCurrentFunction()
KlabPs()
