"""Inside gdb, on a VM stopped in scheduler_tick with 3 CPUs: $klab_current(), klab current --cpu N and
klab ps --user/--kernel, each against what gdb itself reads of the kernel's structures. (The stack-pointer
check of current is gdb_kernel.py's, at stops outside interrupt context: here the CPU is on its IRQ stack.)"""
import re

import gdb


def ok(name):
    print("ok - %s" % name)


def fail(name, why):
    print(("not ok - %s: %s" % (name, why)).replace("\n", "\n    "))


def check(name, cond, why=""):
    ok(name) if cond else fail(name, why)


def ev(expr):
    return int(gdb.parse_and_eval(expr)) & ((1 << 64) - 1)


def task_cpu(task):
    """The CPU a task is on, as the kernel keeps it (x86 6.1: thread_info.cpu, THREAD_INFO_IN_TASK)."""
    for field in ("thread_info.cpu", "cpu"):
        try:
            return ev("((struct task_struct *)0x%x)->%s" % (task, field))
        except gdb.error:
            continue
    return None


out = gdb.execute("klab current", to_string=True)
m = re.search(r"^current: PID (\d+) .* task ([0-9a-f]+)", out, re.M)
fn = ev("$klab_current()")
check("$klab_current() = the task klab current names (%x)" % fn, m and int(m.group(2), 16) == fn, out)
for cpu in (1, 2):
    out = gdb.execute("klab current --cpu %d" % cpu, to_string=True)
    m = re.search(r"^current: PID (\d+) .* task ([0-9a-f]+)", out, re.M)
    t = int(m.group(2), 16) if m else 0
    on = task_cpu(t) if t else None
    check("klab current --cpu %d: its task (%x) is on CPU %d by the kernel's own field" % (cpu, t, cpu), on == cpu,
          "task_cpu %s: %s" % (on, out))
for flag, want_mm in (("--user", True), ("--kernel", False)):
    out = gdb.execute("klab ps %s" % flag, to_string=True)
    tasks = [int(x, 16) for x in re.findall(r"^[> ]\s*\d+\s+\d+\s+\d+\s+([0-9a-f]+)\s", out, re.M)]
    wrong = [t for t in tasks if (ev("(unsigned long)((struct task_struct *)0x%x)->mm" % t) != 0) != want_mm]
    check("klab ps %s: %d tasks, each %s an mm (gdb reads ->mm)" % (flag, len(tasks), "with" if want_mm else "without"),
          tasks and not wrong, "wrong: %s" % [hex(t) for t in wrong[:4]])
