"""ctypes binding to libklab (build/libklab.so): the structures of gdb/lib/klab.h, and the two things every
command needs from gdb — the MMU registers of the selected CPU and a physical-memory source. No MMU rule
lives here."""

import ctypes
import os

import gdb

from klab import vm

ARCH_X86_64, ARCH_ARM64 = 0, 1
KIND_NAMES = ("invalid", "table", "block", "page", "reserved")
RANGE_MAPPED, RANGE_BAD = 0, 1
FILTER_WRITABLE, FILTER_EXEC, FILTER_USER, FILTER_KERNEL, FILTER_NO_MERGE = 1, 2, 4, 8, 16


class MmuRegs(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_int), ("cr3", ctypes.c_uint64), ("cr4", ctypes.c_uint64),
                ("efer", ctypes.c_uint64), ("ttbr0", ctypes.c_uint64), ("ttbr1", ctypes.c_uint64),
                ("tcr", ctypes.c_uint64), ("translation_off", ctypes.c_bool)]


class Level(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 8), ("hw_name", ctypes.c_char * 8), ("hw_level", ctypes.c_int),
                ("index", ctypes.c_uint), ("shift", ctypes.c_uint), ("table_pa", ctypes.c_uint64),
                ("entry_pa", ctypes.c_uint64), ("raw", ctypes.c_uint64), ("kind", ctypes.c_int),
                ("out_pa", ctypes.c_uint64), ("bits", ctypes.c_char * 200)]


class Perms(ctypes.Structure):
    _fields_ = [(n, ctypes.c_bool) for n in ("kernel_read", "kernel_write", "kernel_exec",
                                              "user_read", "user_write", "user_exec")]


class Walk(ctypes.Structure):
    _fields_ = [("va", ctypes.c_uint64), ("root_name", ctypes.c_char * 12), ("root_pa", ctypes.c_uint64),
                ("granule_shift", ctypes.c_uint), ("va_bits", ctypes.c_uint), ("nlevels", ctypes.c_int),
                ("levels", Level * 5), ("stop", ctypes.c_int), ("why", ctypes.c_char * 160),
                ("pa", ctypes.c_uint64), ("page_size", ctypes.c_uint64), ("perms", Perms)]


class Range(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("root_name", ctypes.c_char * 12), ("va_start", ctypes.c_uint64),
                ("va_end", ctypes.c_uint64), ("pa_start", ctypes.c_uint64), ("page_size", ctypes.c_uint64),
                ("leaves", ctypes.c_uint64), ("level_name", ctypes.c_char * 8), ("perms", Perms),
                ("first_raw", ctypes.c_uint64), ("attrs", ctypes.c_char * 200)]


class RangeOpts(ctypes.Structure):
    _fields_ = [("va_start", ctypes.c_uint64), ("va_end", ctypes.c_uint64), ("filters", ctypes.c_uint),
                ("page_size", ctypes.c_uint64), ("max_entries", ctypes.c_uint64)]


class RangeStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("tables_read", "bytes_read", "entries", "leaves", "ranges", "bad")]


class Geometry(ctypes.Structure):
    _fields_ = [("root_name", ctypes.c_char * 12), ("root_pa", ctypes.c_uint64), ("va_lo", ctypes.c_uint64),
                ("va_hi", ctypes.c_uint64), ("va_bits", ctypes.c_uint), ("granule_shift", ctypes.c_uint),
                ("nlevels", ctypes.c_int)]


class RamRegion(ctypes.Structure):
    _fields_ = [("gpa", ctypes.c_uint64), ("size", ctypes.c_uint64), ("file_offset", ctypes.c_uint64)]


READ_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t)
RANGE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(Range))

_lib = None


def lib():
    """libklab.so: $KLAB_LIB, else build/libklab.so of the klab tree this package belongs to."""
    global _lib
    if _lib is None:
        path = os.environ.get("KLAB_LIB") or os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build", "libklab.so")
        try:
            l = ctypes.CDLL(path)
        except OSError as e:
            raise gdb.GdbError("klab: cannot load libklab (%s); run `make` in the klab tree" % e)
        l.klab_translate.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(Walk)]
        l.klab_decode_entry.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_int, ctypes.c_uint64, ctypes.POINTER(Level)]
        l.klab_geometry.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_bool, ctypes.POINTER(Geometry),
                                    ctypes.c_char_p, ctypes.c_size_t]
        l.klab_physmem_from_callback.restype = ctypes.c_void_p
        l.klab_physmem_from_callback.argtypes = [READ_FN, ctypes.c_void_p]
        l.klab_physmem_open_ramfile.restype = ctypes.c_void_p
        l.klab_physmem_open_ramfile.argtypes = [ctypes.c_char_p, ctypes.POINTER(RamRegion), ctypes.c_size_t,
                                                 ctypes.c_char_p, ctypes.c_size_t]
        l.klab_physmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
        l.klab_physmem_close.argtypes = [ctypes.c_void_p]
        l.klab_stop_name.restype = ctypes.c_char_p
        l.klab_perms_str.restype = ctypes.c_char_p
        l.klab_perms_str.argtypes = [ctypes.POINTER(Perms), ctypes.c_char_p]
        l.klab_describe_regs.restype = ctypes.c_size_t
        l.klab_describe_regs.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_char_p, ctypes.c_size_t]
        l.klab_walk_ranges.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.POINTER(RangeOpts), RANGE_FN,
                                       ctypes.c_void_p, ctypes.POINTER(RangeStats), ctypes.c_char_p, ctypes.c_size_t]
        _lib = l
    return _lib


def arch():
    name = gdb.selected_inferior().architecture().name()
    if "aarch64" in name:
        return ARCH_ARM64
    if "x86-64" in name or "i386" in name:
        return ARCH_X86_64
    raise gdb.GdbError("klab: unsupported architecture %s (x86_64 and arm64 only)" % name)


def reg(name):
    try:
        return int(gdb.parse_and_eval("$" + name)) & 0xffffffffffffffff
    except gdb.error as e:
        raise gdb.GdbError("klab: cannot read register %s: %s" % (name, e))


def mmu_regs():
    """The selected CPU's translation registers, as gdb reads them from the stub."""
    if not gdb.selected_inferior().pid:
        raise gdb.GdbError("klab: no process attached (start with `klab gdb` or `target remote`)")
    a = arch()
    r = MmuRegs(arch=a)
    if a == ARCH_X86_64:
        r.cr3, r.cr4, r.efer = reg("cr3"), reg("cr4"), reg("efer")
        r.translation_off = not (reg("cr0") >> 31) & 1          # CR0.PG
    else:
        r.ttbr0, r.ttbr1, r.tcr = reg("TTBR0_EL1"), reg("TTBR1_EL1"), reg("TCR_EL1")
        r.translation_off = not reg("SCTLR") & 1                # SCTLR_EL1.M; QEMU calls it SCTLR
    return r


class PhysMem:
    """Guest physical memory: the RAM file of the VM klab gdb attached to (fast, no stub traffic), else gdb's
    own reads with QEMU's stub in physical mode."""

    def __init__(self):
        self.handle = None
        self._keep = None
        self._physical_mode = False
        state = vm.load_state()
        if state and state.get("ram_file") and state.get("ram_regions"):
            regions = [[int(x, 0) for x in r.split()] for r in state["ram_regions"]]
            arr = (RamRegion * len(regions))(*[RamRegion(*r) for r in regions])
            err = ctypes.create_string_buffer(256)
            self.handle = lib().klab_physmem_open_ramfile(state["ram_file"].encode(), arr, len(regions), err, 256)
        if not self.handle:
            # QEMU's physical-memory mode for the life of this source (one command), not per read.
            gdb.execute("maintenance packet Qqemu.PhyMemMode:1", to_string=True)
            self._physical_mode = True
            self._keep = READ_FN(self._read_via_gdb)
            self.handle = lib().klab_physmem_from_callback(self._keep, None)

    @staticmethod
    def _read_via_gdb(ctx, pa, buf, length):
        try:
            data = gdb.selected_inferior().read_memory(pa, length).tobytes()
        except gdb.error:
            return -1
        ctypes.memmove(buf, data, length)
        return 0

    def close(self):
        if self.handle:
            lib().klab_physmem_close(self.handle)
            self.handle = None
        if self._physical_mode:
            gdb.execute("maintenance packet Qqemu.PhyMemMode:0", to_string=True)
            self._physical_mode = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def perms_str(perms):
    buf = ctypes.create_string_buffer(8)
    return lib().klab_perms_str(ctypes.byref(perms), buf).decode()


def size_str(size):
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if size >= 1 << shift and not size & ((1 << shift) - 1):
            return "%d%s" % (size >> shift, unit)
    return str(size)
