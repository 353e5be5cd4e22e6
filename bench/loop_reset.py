"""The module loop with gdb kept (bench/snapshot.sh): in one `klab gdb` session, RUNS times: a one-line edit of
hellodrv.c -> kernels/module.sh -> `klab reset` (restored, the new .ko added, gdb attached again) ->
`continue` -> the pending `break hello_open` hits in the new module. Timed per phase with time.monotonic();
the figures go to $LOOP_OUT as "rebuilt reset hit total" lines, in milliseconds.
Environment: RUNS, LOOP_SRC (the module folder edited), LOOP_OUT_DIR (its build), LOOP_KERNEL, LOOP_OUT."""

import os
import re
import subprocess
import time

import gdb

runs = int(os.environ["RUNS"])
src, build, kernel = os.environ["LOOP_SRC"], os.environ["LOOP_OUT_DIR"], os.environ["LOOP_KERNEL"]


def ms(t):
    return (time.monotonic() - t) * 1000


def stopped_in_hello_open():
    return re.match(r"hello_open( \+ \d+)? in section", gdb.execute("info symbol $pc", to_string=True)) is not None


gdb.execute("break hello_open", to_string=True)
gdb.execute("continue", to_string=True)          # the boot's own module: not the loop
if not stopped_in_hello_open():
    raise gdb.GdbError("loop: the first continue did not stop in hello_open")
with open(os.environ["LOOP_OUT"], "w") as out:
    for i in range(1, runs + 1):
        t0 = time.monotonic()
        subprocess.run(["sed", "-i", "s/myhello open[^,]*,/myhello open (loop %d),/" % i, src + "/hellodrv.c"],
                       check=True)
        subprocess.run(["bash", "kernels/module.sh", src, kernel, build], check=True, stdout=subprocess.DEVNULL)
        rebuilt = ms(t0)
        t1 = time.monotonic()
        gdb.execute("klab reset", to_string=True)
        reset = ms(t1)
        t2 = time.monotonic()
        gdb.execute("continue", to_string=True)
        hit = ms(t2)
        if not stopped_in_hello_open():
            raise gdb.GdbError("loop %d: continue did not stop in hello_open" % i)
        out.write("%.1f %.1f %.1f %.1f\n" % (rebuilt, reset, hit, ms(t0)))
gdb.execute("delete")
gdb.execute("detach")
