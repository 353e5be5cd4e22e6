"""ctypes binding to libklab (build/libklab.so): the structures of gdb/lib/klab.h, and the two things every
command needs from gdb — the MMU registers of the selected CPU and a physical-memory source. No MMU rule
lives here."""

import ctypes
import os

import gdb

from klab import vm

FILTER_NO_MERGE = 16
FILTER_NON_PRESENT = 32
RANGE_NON_PRESENT = 2
RANGE_MAPPED = 0
ROOT_USER, ROOT_FOR_VA, ROOT_ALL = 0, 1, 2
ABI_VERSION = 7
STOP_NOT_PRESENT = 1
MASK64 = (1 << 64) - 1


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
                ("leaves", ctypes.c_uint64), ("level_name", ctypes.c_char * 8), ("hw_level", ctypes.c_int),
                ("granule_shift", ctypes.c_uint), ("perms", Perms),
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


class Error(ctypes.Structure):
    """struct klab_error: the one place libklab says why a call failed."""
    _fields_ = [("msg", ctypes.c_char * 384)]

    def __str__(self):
        return self.msg.decode(errors="replace")


class KernelMm(ctypes.Structure):
    """struct klab_kernel_mm: what the kernel's non-present entries depend on (gdb/klab/swap.py fills it)."""
    _fields_ = [("version", ctypes.c_uint), ("max_swapfiles", ctypes.c_int), ("config", ctypes.c_uint),
                ("config_known", ctypes.c_uint), ("max_physmem_bits", ctypes.c_uint)]


class Swp(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("type", ctypes.c_uint), ("offset", ctypes.c_uint64),
                ("pfn", ctypes.c_uint64), ("has_pfn", ctypes.c_bool), ("soft_dirty", ctypes.c_bool),
                ("exclusive", ctypes.c_bool), ("uffd_wp", ctypes.c_bool), ("young", ctypes.c_bool),
                ("dirty", ctypes.c_bool), ("why", ctypes.c_char * 160)]


class SearchOpts(ctypes.Structure):
    _fields_ = [("va_start", ctypes.c_uint64), ("va_end", ctypes.c_uint64), ("value", ctypes.c_uint64),
                ("width", ctypes.c_uint), ("filters", ctypes.c_uint), ("max_hits", ctypes.c_uint64),
                ("ram", ctypes.POINTER(RamRegion)), ("nram", ctypes.c_size_t)]


class SearchStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("mapped_bytes", "bytes_read", "skipped_bytes", "hits", "zero_bytes")]


class PtsnapInfo(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_int), ("nranges", ctypes.c_size_t), ("pid", ctypes.c_int),
                ("root_pa", ctypes.c_uint64 * 2), ("label", ctypes.c_char * 160)]


class SvgRegion(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64), ("name", ctypes.c_char * 32)]


class SvgMapOpts(ctypes.Structure):
    _fields_ = [("before", ctypes.c_void_p), ("diff_flags", ctypes.c_uint), ("va_start", ctypes.c_uint64),
                ("va_end", ctypes.c_uint64), ("regions", ctypes.POINTER(SvgRegion)), ("nregions", ctypes.c_size_t),
                ("title", ctypes.c_char_p)]


class Abi(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint)] + [(n, ctypes.c_size_t) for n in (
        "mmu_regs", "level", "perms", "walk", "range", "range_opts", "range_stats", "geometry", "ram_region",
        "error", "kernel_mm", "swp", "search_opts", "search_stats", "svg_region", "svg_map_opts")]


# The structures above and the fields of struct klab_abi that give their C sizes.
_MIRRORS = (("mmu_regs", MmuRegs), ("level", Level), ("perms", Perms), ("walk", Walk), ("range", Range),
            ("range_opts", RangeOpts), ("range_stats", RangeStats), ("geometry", Geometry),
            ("ram_region", RamRegion), ("error", Error), ("kernel_mm", KernelMm), ("swp", Swp),
            ("search_opts", SearchOpts), ("search_stats", SearchStats), ("svg_region", SvgRegion),
            ("svg_map_opts", SvgMapOpts))

READ_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t)
RANGE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(Range))
HIT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
SYMBOL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64))

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
        _check_abi(l, path)
        l.klab_translate.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(Walk)]
        l.klab_decode_entry.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_int, ctypes.c_uint64, ctypes.POINTER(Level),
                                        ctypes.POINTER(Error)]
        l.klab_geometry.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_bool, ctypes.POINTER(Geometry), ctypes.POINTER(Error)]
        l.klab_physmem_from_callback.restype = ctypes.c_void_p
        l.klab_physmem_from_callback.argtypes = [READ_FN, ctypes.c_void_p]
        l.klab_physmem_open_ramfile.restype = ctypes.c_void_p
        l.klab_physmem_open_ramfile.argtypes = [ctypes.c_char_p, ctypes.POINTER(RamRegion), ctypes.c_size_t,
                                                 ctypes.POINTER(Error)]
        l.klab_physmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
        l.klab_physmem_close.argtypes = [ctypes.c_void_p]
        l.klab_stop_name.restype = ctypes.c_char_p
        l.klab_perms_str.restype = ctypes.c_char_p
        l.klab_perms_str.argtypes = [ctypes.POINTER(Perms), ctypes.c_char_p]
        l.klab_describe_regs.restype = ctypes.c_size_t
        l.klab_describe_regs.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_char_p, ctypes.c_size_t]
        l.klab_arch_from_name.argtypes = [ctypes.c_char_p]
        l.klab_arch_name.restype = ctypes.c_char_p
        l.klab_arch_levels.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.c_int)]
        l.klab_mmu_reg_names.restype = ctypes.POINTER(ctypes.c_char_p)
        l.klab_mmu_regs_set.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_int, ctypes.POINTER(ctypes.c_uint64)]
        l.klab_replace_root.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64]
        l.klab_size_str.restype = ctypes.c_char_p
        l.klab_size_str.argtypes = [ctypes.c_uint64, ctypes.c_char_p]
        l.klab_format_walk.restype = ctypes.c_size_t
        l.klab_format_walk.argtypes = [ctypes.POINTER(Walk), ctypes.c_char_p, ctypes.c_bool, ctypes.c_char_p,
                                       ctypes.c_size_t]
        l.klab_format_range.restype = ctypes.c_size_t
        l.klab_format_range.argtypes = [ctypes.POINTER(Range), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        l.klab_format_entry.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_int, ctypes.c_uint64, ctypes.c_char_p,
                                        ctypes.c_size_t, ctypes.POINTER(Error)]
        l.klab_parse_filters.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(Error)]
        l.klab_parse_page_size.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(Error)]
        l.klab_walk_ranges.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.POINTER(RangeOpts), RANGE_FN,
                                       ctypes.c_void_p, ctypes.POINTER(RangeStats), ctypes.POINTER(Error)]
        l.klab_decode_swp.argtypes = [ctypes.c_int, ctypes.POINTER(KernelMm), ctypes.c_uint, ctypes.c_int, ctypes.c_bool,
                                      ctypes.c_uint64, ctypes.POINTER(Swp), ctypes.POINTER(Error)]
        l.klab_walk_swp.argtypes = [ctypes.POINTER(Walk), ctypes.POINTER(KernelMm), ctypes.POINTER(Swp),
                                    ctypes.POINTER(Error)]
        l.klab_range_swp.argtypes = [ctypes.POINTER(Range), ctypes.POINTER(KernelMm), ctypes.POINTER(Swp),
                                     ctypes.POINTER(Error)]
        l.klab_qemu_verdict.argtypes = [ctypes.POINTER(Walk), ctypes.c_bool, ctypes.c_uint64, ctypes.c_uint64,
                                        ctypes.c_char_p, ctypes.c_size_t]
        l.klab_qemu_state_reg.restype = ctypes.c_char_p
        l.klab_max_physmem_bits.restype = ctypes.c_uint
        l.klab_max_physmem_bits.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_uint, ctypes.c_bool]
        l.klab_kconfig_names.restype = ctypes.POINTER(ctypes.c_char_p)
        l.klab_format_range_swp.restype = ctypes.c_size_t
        l.klab_format_range_swp.argtypes = [ctypes.POINTER(Range), ctypes.POINTER(Swp), ctypes.c_char_p, ctypes.c_char_p,
                                            ctypes.c_char_p, ctypes.c_size_t]
        l.klab_swp_kind_name.restype = ctypes.c_char_p
        l.klab_search.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.POINTER(SearchOpts), HIT_FN,
                                  ctypes.c_void_p, ctypes.POINTER(SearchStats), ctypes.POINTER(Error)]
        l.klab_format_swp.restype = ctypes.c_size_t
        l.klab_format_swp.argtypes = [ctypes.POINTER(Swp), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        l.klab_ptsnap_take.restype = ctypes.c_void_p
        l.klab_ptsnap_take.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, ctypes.POINTER(RangeOpts), ctypes.c_int,
                                       ctypes.c_char_p, ctypes.POINTER(Error)]
        l.klab_ptsnap_free.argtypes = [ctypes.c_void_p]
        l.klab_ptsnap_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(PtsnapInfo)]
        l.klab_ptsnap_save.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(Error)]
        l.klab_ptsnap_open.restype = ctypes.c_void_p
        l.klab_ptsnap_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(Error)]
        l.klab_ptsnap_path.argtypes = [ctypes.c_char_p, ctypes.c_bool, ctypes.c_char_p, ctypes.c_size_t,
                                       ctypes.POINTER(Error)]
        l.klab_ptdiff_text.restype = ctypes.c_void_p   # malloc'ed: read, then freed with libc's free
        l.klab_ptdiff_text.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint,
                                       ctypes.POINTER(Error)]
        l.klab_svg_walk.restype = ctypes.c_void_p   # malloc'ed, as klab_ptdiff_text
        l.klab_svg_walk.argtypes = [ctypes.POINTER(Walk), ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                                    ctypes.POINTER(Error)]
        l.klab_svg_map.restype = ctypes.c_void_p
        l.klab_svg_map.argtypes = [ctypes.c_void_p, ctypes.POINTER(SvgMapOpts), ctypes.POINTER(ctypes.c_size_t),
                                   ctypes.POINTER(Error)]
        l.klab_write_output.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(Error)]
        l.klab_kernel_regions.restype = ctypes.c_size_t
        l.klab_kernel_regions.argtypes = [ctypes.POINTER(MmuRegs), ctypes.c_void_p, SYMBOL_FN, ctypes.c_void_p,
                                          ctypes.POINTER(SvgRegion), ctypes.c_size_t]
        _lib = l
    return _lib


def _check_abi(l, path):
    """The structures mirrored here must be the library's: a stale libklab.so is refused in one line."""
    abi = Abi()
    try:
        l.klab_abi(ctypes.byref(abi))
    except AttributeError:
        raise gdb.GdbError("klab: %s is older than this gdb package (no klab_abi); run `make` in the klab tree" % path)
    wrong = [name for name, cls in _MIRRORS if getattr(abi, name) != ctypes.sizeof(cls)]
    if abi.version != ABI_VERSION or wrong:
        raise gdb.GdbError("klab: %s does not match this gdb package (ABI %d, want %d%s); run `make` in the klab tree"
                           % (path, abi.version, ABI_VERSION, "; sizes differ: " + ", ".join(wrong) if wrong else ""))


def arch():
    """libklab's architecture number for the inferior, from gdb's name for it (the table is libklab's)."""
    name = gdb.selected_inferior().architecture().name()
    a = lib().klab_arch_from_name(name.encode())
    if a < 0:
        raise gdb.GdbError("klab: unsupported architecture %s (x86_64 and arm64 only)" % name)
    return a


def arch_by_name(name, what):
    """klab's or gdb's name of an architecture (klab pte --arch) → its number."""
    a = lib().klab_arch_from_name(name.encode())
    if a < 0:
        raise gdb.GdbError("klab %s: --arch must be x86_64 or arm64" % what)
    return a


def arch_name(a):
    return lib().klab_arch_name(a).decode()


def arch_levels(a):
    """(granule shifts, top-most hw level, page hw level) a descriptor of arch a can have."""
    granules, first, leaf = ctypes.c_uint(), ctypes.c_int(), ctypes.c_int()
    lib().klab_arch_levels(a, ctypes.byref(granules), ctypes.byref(first), ctypes.byref(leaf))
    return [s for s in range(32) if granules.value >> s & 1], first.value, leaf.value


def reg(name):
    try:
        return int(gdb.parse_and_eval("$" + name)) & 0xffffffffffffffff
    except gdb.error as e:
        raise gdb.GdbError("klab: cannot read register %s: %s" % (name, e))


def mmu_regs():
    """The selected CPU's translation registers, as gdb reads them from the stub: libklab names them, gdb
    reads them, libklab makes the structure (and knows which bit turns translation on)."""
    if not gdb.selected_inferior().pid:
        raise gdb.GdbError("klab: no process attached (start with `klab gdb` or `target remote`)")
    a = arch()
    names = lib().klab_mmu_reg_names(a)
    values = []
    while names[len(values)]:
        values.append(reg(names[len(values)].decode()))
    r = MmuRegs()
    lib().klab_mmu_regs_set(ctypes.byref(r), a, (ctypes.c_uint64 * len(values))(*values))
    return r


def replace_root(regs, which, va, root):
    lib().klab_replace_root(ctypes.byref(regs), which, va or 0, root)


class PhysMem:
    """Guest physical memory: the RAM file of the VM klab gdb attached to (fast, no stub traffic), else gdb's
    own reads with QEMU's stub in physical mode (unless ram_file_only: then handle stays None)."""

    def __init__(self, ram_file_only=False):
        self.handle = None
        self._keep = None
        self._physical_mode = False
        state = vm.load_state()
        if state and state.get("ram_file") and state.get("ram_regions"):
            regions = [[int(x, 0) for x in r.split()] for r in state["ram_regions"]]
            arr = (RamRegion * len(regions))(*[RamRegion(*r) for r in regions])
            self.handle = lib().klab_physmem_open_ramfile(state["ram_file"].encode(), arr, len(regions), None)
        if not self.handle and not ram_file_only:
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
    buf = ctypes.create_string_buffer(24)
    return lib().klab_size_str(size, buf).decode()


def _text(fn, *args, size=8192):
    buf = ctypes.create_string_buffer(size)
    rc = fn(*args, buf, size)
    return rc, buf.value.decode(errors="replace")


def format_walk(walk, label=None, explain=False):
    return _text(lib().klab_format_walk, ctypes.byref(walk), label.encode() if label else None, explain)[1]


def format_range(r, last_root):
    return _text(lib().klab_format_range, ctypes.byref(r), last_root, size=1024)[1]


def format_range_swp(r, s, swap_name, last_root):
    return _text(lib().klab_format_range_swp, ctypes.byref(r), ctypes.byref(s),
                 swap_name.encode() if swap_name else None, last_root, size=1024)[1]


def format_entry(a, granule, level, raw, what):
    """klab pte's text for a descriptor; one error line for arguments that describe no level."""
    buf, err = ctypes.create_string_buffer(1024), Error()
    if lib().klab_format_entry(a, granule, level, raw, buf, 1024, ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return buf.value.decode(errors="replace")


def qemu_verdict(walk, qemu_pa):
    """libklab's line for QEMU's gva2gpa answer (qemu_pa None: unmapped) beside the walk, and its verdict."""
    name = lib().klab_qemu_state_reg(arch())   # the walk is of the CPU gdb has selected
    state = reg(name.decode()) if name else 0
    return _text(lib().klab_qemu_verdict, ctypes.byref(walk), qemu_pa is not None, qemu_pa or 0, state, size=512)


def walk_swp(walk, kmm, what):
    """The software entry a walk stopped at (klab_walk_swp), or None when it did not stop at a non-present one."""
    if walk.stop != STOP_NOT_PRESENT:
        return None
    s, err = Swp(), Error()
    if lib().klab_walk_swp(ctypes.byref(walk), ctypes.byref(kmm), ctypes.byref(s), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return s


def range_swp(r, kmm, what):
    s, err = Swp(), Error()
    if lib().klab_range_swp(ctypes.byref(r), ctypes.byref(kmm), ctypes.byref(s), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return s


def decode_swp(a, kmm, granule, level, upper, raw, what):
    s, err = Swp(), Error()
    if lib().klab_decode_swp(a, ctypes.byref(kmm), granule, level, upper, raw, ctypes.byref(s), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return s


def swp_kind_name(s):
    return lib().klab_swp_kind_name(s.kind).decode()


def format_swp(s, swap_name=None):
    return _text(lib().klab_format_swp, ctypes.byref(s), swap_name.encode() if swap_name else None, size=512)[1]


def walk_ranges(regs, mem, opts, fn, what):
    """libklab's range walk over the tables, fn(range) for each; one error line when it cannot walk."""
    cb = RANGE_FN(lambda ctx, rp: fn(rp.contents) or 0)
    err, stats = Error(), RangeStats()
    if lib().klab_walk_ranges(ctypes.byref(regs), mem.handle, ctypes.byref(opts), cb, None, ctypes.byref(stats),
                              ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return stats


def parse_filters(text, what):
    filters, err = ctypes.c_uint(), Error()
    if lib().klab_parse_filters(text.encode(), ctypes.byref(filters), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return filters.value


def parse_page_size(text, what):
    size, err = ctypes.c_uint64(), Error()
    if lib().klab_parse_page_size(text.encode(), ctypes.byref(size), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return size.value


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


class Snapshot:
    """A libklab page-table snapshot (klab ptsnap): taken now, or loaded from the store or a path."""

    def __init__(self, handle):
        self.handle = handle

    @classmethod
    def take(cls, regs, mem, pid, label, what, opts=None):
        err = Error()
        h = lib().klab_ptsnap_take(ctypes.byref(regs), mem.handle, ctypes.byref(opts) if opts else None, pid,
                                   label.encode(), ctypes.byref(err))
        if not h:
            raise gdb.GdbError("klab %s: %s" % (what, err))
        return cls(h)

    @classmethod
    def load(cls, name, what):
        err = Error()
        h = lib().klab_ptsnap_open(name.encode(), ctypes.byref(err))
        if not h:
            raise gdb.GdbError("klab %s: %s" % (what, err))
        return cls(h)

    def save(self, name, what):
        path, err = snapshot_path(name, True, what), Error()
        if lib().klab_ptsnap_save(self.handle, path.encode(), ctypes.byref(err)) != 0:
            raise gdb.GdbError("klab %s: %s" % (what, err))
        return path

    def info(self):
        i = PtsnapInfo()
        lib().klab_ptsnap_info(self.handle, ctypes.byref(i))
        return i

    def diff_text(self, other, lo, hi, flags, what):
        err = Error()
        p = lib().klab_ptdiff_text(self.handle, other.handle, lo, hi, flags, ctypes.byref(err))
        if not p:
            raise gdb.GdbError("klab %s: %s" % (what, err))
        text = ctypes.string_at(p).decode(errors="replace")
        _libc.free(p)
        return text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.handle:
            lib().klab_ptsnap_free(self.handle)
            self.handle = None


def snapshot_path(name, create, what):
    buf, err = ctypes.create_string_buffer(4096), Error()
    if lib().klab_ptsnap_path(name.encode(), create, buf, len(buf), ctypes.byref(err)) != 0:
        raise gdb.GdbError("klab %s: %s" % (what, err))
    return buf.value.decode()


def _write_svg(p, size, err, path, what):
    """Writes a picture libklab drew (p malloc'ed, freed here) to path; '-' is gdb's output."""
    if not p:
        raise gdb.GdbError("klab %s: --svg: %s" % (what, err))
    try:
        if path == "-":
            gdb.write(ctypes.string_at(p, size.value).decode(errors="replace"))
            return
        werr = Error()
        if lib().klab_write_output(path.encode(), p, size.value, ctypes.byref(werr)) != 0:
            raise gdb.GdbError("klab %s: --svg: %s" % (what, werr))
        gdb.write("picture written to %s (%d bytes of SVG)\n" % (path, size.value))
    finally:
        _libc.free(p)


def svg_walk(walk, label, path, what):
    size, err = ctypes.c_size_t(), Error()
    p = lib().klab_svg_walk(ctypes.byref(walk), label.encode() if label else None, ctypes.byref(size),
                            ctypes.byref(err))
    _write_svg(p, size, err, path, what)


def kernel_regions(regs, mem, symbol):
    """libklab's named regions of the kernel (klab_kernel_regions), symbol(name) giving an address or None."""
    def lookup(ctx, name, out):
        try:
            addr = symbol(name.decode())
        except gdb.error:
            addr = None
        if addr is None:
            return -1
        out[0] = addr
        return 0
    regions = (SvgRegion * 12)()
    n = lib().klab_kernel_regions(ctypes.byref(regs), mem.handle, SYMBOL_FN(lookup), None, regions, 12)
    return regions, n


def svg_map(now, before, flags, lo, hi, regions, title, path, what):
    """now's map (a Snapshot), with what changed since before (a Snapshot or None), to path."""
    reg, n = regions
    o = SvgMapOpts(before.handle if before else None, flags, lo, hi, reg, n, title.encode())
    size, err = ctypes.c_size_t(), Error()
    p = lib().klab_svg_map(now.handle, ctypes.byref(o), ctypes.byref(size), ctypes.byref(err))
    _write_svg(p, size, err, path, what)
