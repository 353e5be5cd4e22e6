"""klab search: crash's `search`, through the page tables. libklab walks every mapped leaf of the span and scans
its RAM (klab_search, gdb/lib/search.c); this file parses arguments and prints."""

import ctypes

import gdb

from klab.command import KlabCommand
from klab import kernel, lib, mmu

_USAGE = "usage: klab search VALUE [--range START-END] [--kernel | --user] [--width 8|4] [--max N]"


def _opts(arg, what):
    pos, opts = mmu.split_args(arg, what, {"--kernel", "--user"}, {"--range", "--width", "--max"})
    if not pos:
        raise kernel.error(what, _USAGE)
    if "--kernel" in opts and "--user" in opts:
        raise kernel.error(what, "--kernel and --user exclude each other")
    o = lib.SearchOpts()
    o.value = mmu.value(" ".join(pos), what)   # an expression may have spaces: (unsigned long) $t
    o.width = {"8": 8, "4": 4}.get(opts.get("--width", "8"), 0)
    if not o.width:
        raise kernel.error(what, "--width is 8 or 4, not %s", opts["--width"])
    if o.width == 4 and o.value >> 32:
        raise kernel.error(what, "%#x does not fit in 4 bytes (--width 4)", o.value)
    try:
        o.max_hits = int(opts.get("--max", "256"), 0)
    except ValueError:
        raise kernel.error(what, "--max wants a count, not '%s'", opts["--max"])
    return o, opts


def _span(regs, o, opts, what):
    """The VA span: --range, else the kernel half (crash's default) or, with --user, the user half."""
    kernel_half = kernel.geometry(regs, True, what)
    if "--range" in opts:
        start, sep, end = opts["--range"].partition("-")
        if not sep or not start or not end:
            raise kernel.error(what, "--range wants START-END, not '%s'", opts["--range"])
        o.va_start, o.va_end = mmu.address(start, what), mmu.address(end, what)
        if o.va_end < o.va_start:
            raise kernel.error(what, "--range %s ends before it starts", opts["--range"])
        if "--user" in opts:
            o.filters |= 1 << 2      # KLAB_FILTER_USER
        elif "--kernel" in opts:
            o.filters |= 1 << 3      # KLAB_FILTER_KERNEL
    elif "--user" in opts:
        o.va_start, o.va_end = 0, kernel.geometry(regs, False, what).va_hi
    else:
        o.va_start, o.va_end = kernel_half.va_lo, kernel.MASK64


class KlabSearch(KlabCommand):
    """Search memory for a value through the page tables, as crash's search does.

Usage: klab search VALUE [--range START-END] [--kernel | --user] [--width 8|4] [--max N]
  VALUE     any expression; compared as an aligned little-endian 8-byte (or --width 4) word
  --range   only this VA span (with --kernel/--user: only leaves of that kind in it)
  --kernel  the kernel half (the default);  --user  the user half of the current page tables
  --max N   stop after N hits (default 256; 0: no limit)
Every mapped leaf of the span is read from RAM (the VM's RAM file when klab started it, else through the
stub): an address is found at each VA that maps it, so a linear-map alias shows up beside a vmalloc or image
address. Leaves that map device memory are never read. Lines: VA: VALUE (PA)."""

    OPTIONS = ("--range", "--kernel", "--user", "--width", "--max")

    def __init__(self):
        super().__init__("klab search")

    def invoke(self, arg, from_tty):
        what = "search"
        o, opts = _opts(arg, what)
        if not gdb.selected_inferior().pid:
            raise kernel.error(what, "no process attached (start with `klab gdb` or `target remote`)")
        regs = lib.mmu_regs()
        _span(regs, o, opts, what)
        ram = kernel.ram_ranges(what)
        if not ram:
            raise kernel.error(what, "where RAM is is unknown (no System RAM resources yet and no run state)")
        regions = (lib.RamRegion * len(ram))(*[lib.RamRegion(lo, hi - lo + 1, 0) for lo, hi in ram])
        o.ram, o.nram = regions, len(ram)
        hits = []
        fn = lib.HIT_FN(lambda ctx, va, pa: hits.append((va, pa)) or 0)
        stats, err = lib.SearchStats(), lib.Error()
        with lib.PhysMem() as mem:
            rc = lib.lib().klab_search(ctypes.byref(regs), mem.handle, ctypes.byref(o), fn, None,
                                       ctypes.byref(stats), ctypes.byref(err))
        if rc != 0:
            raise kernel.error(what, "%s", err)
        digits = 2 * o.width
        for va, pa in hits:
            gdb.write("%x: %0*x  (PA %x)\n" % (va, digits, o.value, pa))
        more = " (stopped at --max %d)" % o.max_hits if o.max_hits and stats.hits >= o.max_hits else ""
        gdb.write("%d hit%s in %s mapped: %s of RAM read, %s never written by the guest (zeros)%s\n" % (
            stats.hits, "" if stats.hits == 1 else "s", lib.size_str(stats.mapped_bytes),
            lib.size_str(stats.bytes_read), lib.size_str(stats.zero_bytes), more))


KlabSearch()
