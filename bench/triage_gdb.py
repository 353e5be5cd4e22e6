"""Sourced by bench/triage.sh inside `klab gdb`: each triage command RUNS times on the stopped VM, medians.
The first `klab bt` of a session also pays for gdb reading vmlinux's call-frame information; it is shown apart."""
import os
import statistics
import sys
import time

import gdb

sys.path.insert(0, os.path.join(os.getcwd(), "gdb"))
from klab import kernel, lib  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))
NAME = os.environ["BENCH_NAME"]


def timed(cmd):
    t = time.time()
    out = gdb.execute(cmd, to_string=True)
    return (time.time() - t) * 1000, out


first, out = timed("klab bt 1")
print("%-22s %-34s %8.1f ms   (gdb reads vmlinux's CFI once per session)" % (NAME, "first klab bt", first))
start, _ = kernel.linear_map(lib.mmu_regs(), "bench")
span = "0x%x-0x%x" % (start, start + (1 << 30) - 1)
for label, cmd, goal, count in (
        ("klab dmesg", "klab dmesg", 500, lambda o: "%d lines" % o.count("\n")),
        ("klab bt --all", "klab bt --all", 500, lambda o: "%d tasks" % (o.count("\nPID: ") + 1)),
        ("klab slab", "klab slab", 500, lambda o: "%d caches" % (o.count("\n") - 1)),
        ("klab slab task_struct --objects", "klab slab task_struct --objects", None,
         lambda o: o.strip().splitlines()[-1]),
        ("klab search (1 GiB linear map)", "klab search 0x6b6c61622d6e6f6e --range " + span, 500,
         lambda o: o.strip().splitlines()[-1])):
    runs = []
    for _ in range(RUNS):
        ms, out = timed(cmd)
        runs.append(ms)
    print("%-22s %-34s %8.1f ms   (runs: %s; %s)%s" % (
        NAME, label, statistics.median(runs), " ".join("%.0f" % r for r in runs), count(out),
        "  goal <= %d ms" % goal if goal else ""))
