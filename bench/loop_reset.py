"""The module loop with gdb kept (bench/snapshot.sh, bench/loop.sh): in one `klab gdb` session, RUNS times each
way: a one-line edit of hellodrv.c, the rebuild (kernels/module.sh) and `klab reset`, then `continue` until
the pending `break hello_open` hits in the new module. "seq" rebuilds, then resets; "overlap" resets with
`--build`, the rebuild running while the VM is restored. Timed with time.monotonic(); $LOOP_OUT gets
"MODE rebuilt-or-0 reset hit total" lines in milliseconds.
Environment: RUNS, LOOP_SRC (the module folder edited), LOOP_OUT_DIR (its build), LOOP_KERNEL, LOOP_OUT."""

import os
import re
import shlex
import subprocess
import time

import gdb

runs = int(os.environ["RUNS"])
src, build, kernel = os.environ["LOOP_SRC"], os.environ["LOOP_OUT_DIR"], os.environ["LOOP_KERNEL"]
rebuild = ["bash", "kernels/module.sh", src, kernel, build]


def ms(t):
    return (time.monotonic() - t) * 1000


def stopped_in_hello_open():
    return re.match(r"hello_open( \+ \d+)? in section", gdb.execute("info symbol $pc", to_string=True)) is not None


def edit(n):
    subprocess.run(["sed", "-i", "s/myhello open[^,]*,/myhello open (loop %d),/" % n, src + "/hellodrv.c"], check=True)


gdb.execute("break hello_open", to_string=True)
gdb.execute("continue", to_string=True)          # the boot's own module: not the loop
if not stopped_in_hello_open():
    raise gdb.GdbError("loop: the first continue did not stop in hello_open")
n = 0
with open(os.environ["LOOP_OUT"], "w") as out:
    for mode in ("seq", "overlap"):
        for _ in range(runs):
            n += 1
            t0 = time.monotonic()
            edit(n)
            rebuilt = 0.0
            if mode == "seq":
                subprocess.run(rebuild, check=True, stdout=subprocess.DEVNULL)
                rebuilt = ms(t0)
                t1 = time.monotonic()
                gdb.execute("klab reset", to_string=True)
            else:
                t1 = time.monotonic()
                gdb.execute("klab reset --build %s" % shlex.quote(" ".join(shlex.quote(a) for a in rebuild)
                                                                 + " >/dev/null"), to_string=True)
            reset = ms(t1)
            t2 = time.monotonic()
            gdb.execute("continue", to_string=True)
            hit = ms(t2)
            if not stopped_in_hello_open():
                raise gdb.GdbError("loop %d: continue did not stop in hello_open" % n)
            out.write("%s %.1f %.1f %.1f %.1f\n" % (mode, rebuilt, reset, hit, ms(t0)))
gdb.execute("delete")
gdb.execute("detach")
