"""The gdb package without a VM (gdb-multiarch -batch -nx -x this file): it loads, checks libklab's ABI and
refuses a stale library in one line, prints what libklab formats, names an architecture class for every arch
libklab has, and refuses bad arguments without a traceback. Values to compare with are written here."""
import ctypes
import os
import sys

import gdb

sys.path.insert(0, os.path.join(os.getcwd(), "gdb"))
import klab  # noqa: E402  (registers the commands)
import klab.command  # noqa: E402
from klab import arch, lib  # noqa: E402


def check(name, cond, why=""):
    print(("ok - %s" % name) if cond else ("not ok - %s: %s" % (name, why)).replace("\n", "\n    "))


def gdb_error(cmd):
    """The one-line error a command gives, or None if it gave none (a Python traceback is not a GdbError)."""
    try:
        gdb.execute(cmd, to_string=True)
    except gdb.GdbError as e:
        return str(e)
    except gdb.error as e:
        return "gdb.error: %s" % e
    return None


class FakeLib:
    """A library whose klab_abi answers what a stale build would."""

    def __init__(self, version, walk_delta):
        self.version, self.walk_delta = version, walk_delta

    def klab_abi(self, ptr):
        abi = ctypes.cast(ptr, ctypes.POINTER(lib.Abi)).contents
        lib.lib().klab_abi(ctypes.byref(abi))
        abi.version = self.version
        abi.walk += self.walk_delta


def abi_refusal(fake):
    try:
        lib._check_abi(fake, "/old/libklab.so")
    except gdb.GdbError as e:
        return str(e)
    return None


check("libklab loads and its ABI matches the package", lib.lib() is not None)
why = abi_refusal(FakeLib(lib.ABI_VERSION, 8))
check("a libklab whose struct klab_walk differs is refused in one line",
      why and "does not match" in why and "walk" in why and "\n" not in why, why)
why = abi_refusal(FakeLib(lib.ABI_VERSION - 1, 0))
check("a libklab of another ABI version is refused", why and "ABI %d" % (lib.ABI_VERSION - 1) in why, why)

names = {lib.arch_name(a) for a in (0, 1)}
check("an architecture class for each of libklab's architectures", names == set(arch._BY_NAME), names)
check("gdb's arch names resolve through libklab",
      lib.lib().klab_arch_from_name(b"i386:x86-64") == 0 and lib.lib().klab_arch_from_name(b"aarch64") == 1)

w = lib.Walk(va=0xffff800008000000, root_pa=0x41b40000, granule_shift=16, va_bits=48, nlevels=1, stop=1)
w.root_name = b"TTBR1_EL1"
w.levels[0].name, w.levels[0].hw_name, w.levels[0].index = b"pgd", b"L1", 0
w.levels[0].entry_pa, w.levels[0].raw = 0x41b40000, 0
w.why = b"pgd entry 0 (L1) is not present: a translation fault"
text = lib.format_walk(w)
check("klab vtop's text comes from libklab (crash's layout)",
      text.startswith("VIRTUAL           PHYSICAL\nffff800008000000  (not mapped)\n") and
      "    PGD: 41b40000 => 0  [L1 pgd index 0]" in text and "  STOP: not present: pgd entry 0" in text, text)
check("size strings are libklab's", lib.size_str(512 << 20) == "512M" and lib.size_str(4096) == "4K")

err = gdb_error("klab ptdump --filter q")
check("klab ptdump --filter q: one line", err and "unknown filter 'q'" in err and "\n" not in err, err)
err = gdb_error("klab ptdump --page-size 3K")
check("klab ptdump --page-size 3K: one line", err and "--page-size wants" in err, err)
err = gdb_error("klab pte 0x68000061020713 --arch sparc")
check("klab pte --arch sparc: one line", err and "--arch must be x86_64 or arm64" in err, err)
out = gdb.execute("klab pte 0x68000061020713 --arch arm64 --granule 64K", to_string=True)
check("klab pte decodes seed 002's descriptor without a VM",
      "arm64 level L3 (64K granule)" in out and "output address: 61020000" in out, out)
err = gdb_error("klab pte 1 --arch x86_64 --granule 64K")
check("klab pte --granule 64K on x86_64: one line", err and "--granule must be one of 4K on x86_64" in err, err)
for cmd in ("klab dmesg", "klab bt", "klab slab", "klab whatis 0x1000", "klab search 1"):
    err = (gdb_error(cmd) or "").replace("gdb.error: ", "", 1)
    check("%s without a VM: one klab line" % cmd, err.startswith("klab ") and "\n" not in err
          and "no process attached" in err, err)
for cmd, want in (("klab dmesg --level loud", "unknown level"), ("klab dmesg -n x", "wants a number"),
                  ("klab bt 1 2", "usage"), ("klab slab a b", "usage"), ("klab search", "usage"),
                  ("klab search 1 --width 2", "--width"), ("klab search 0x100000000 --width 4", "4 bytes"),
                  ("klab search 1 --kernel --user", "exclude"), ("klab whatis", "usage")):
    err = gdb_error(cmd)
    check("%s: one klab line naming the problem (%s)" % (cmd, want), err and want in err and "\n" not in err, err)
err = gdb_error("klab vtop 0x1000")
check("klab vtop without a VM: one line", err and "no process attached" in err, err)


class KlabBoom(klab.command.KlabCommand):
    """A command with a bug."""

    def __init__(self):
        super().__init__("klab boom-test")

    def invoke(self, arg, from_tty):
        return 1 << 70 > int(gdb.Value(1 << 70))   # OverflowError inside gdb's Python


KlabBoom()
err = gdb_error("klab boom-test")
check("a Python error inside a command ends in one klab line, not a Python exception",
      err and "klab boom-test: internal error (OverflowError" in err and "\n" not in err, err)
print("# test_gdb_package: done")
