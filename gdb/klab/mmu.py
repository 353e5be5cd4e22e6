"""klab vtop / pte / ptdump in gdb: libklab walks the tables, this file parses arguments and prints."""

import ctypes

import gdb

from klab.command import KlabCommand
from klab import kernel, lib

MASK64 = (1 << 64) - 1


def value(expr, what):
    """A number: any gdb expression (hex, casts, $registers, struct members)."""
    try:
        return int(gdb.parse_and_eval(expr)) & MASK64
    except (gdb.error, ValueError, OverflowError) as e:
        raise gdb.GdbError("klab %s: '%s' is not an address or number (%s)" % (what, expr, e))


def address(expr, what):
    """An address: like _value, except that a bare variable name means the variable's address (as nm and
    crash print it), unless it is a pointer, which means where it points. Functions are their address."""
    if expr.replace("_", "a").isalnum() and not expr[0].isdigit():
        try:
            v = gdb.parse_and_eval(expr)
            code = v.type.strip_typedefs().code
            if v.address is not None and code != gdb.TYPE_CODE_PTR:
                return int(v.address) & MASK64
        except gdb.error:
            pass
    return value(expr, what)


def split_args(arg, what, flags, options):
    """argv → (positional, {option: value or True}); one clear error for anything unknown."""
    words = gdb.string_to_argv(arg)
    pos, opts = [], {}
    i = 0
    while i < len(words):
        w = words[i]
        if w in flags:
            opts[w] = True
        elif w in options:
            if i + 1 >= len(words):
                raise gdb.GdbError("klab %s: %s needs a value" % (what, w))
            opts[w] = words[i + 1]
            i += 1
        elif w.startswith("--"):
            raise gdb.GdbError("klab %s: unknown option %s (see help klab %s)" % (what, w, what))
        else:
            pos.append(w)
        i += 1
    return pos, opts


def address_space(regs, opts, what, va=None):
    """The registers as they would be with another address space loaded: --pid N and --mm PTR take the
    mm's pgd (a kernel virtual address, translated with the CPU's own tables) as the user root (x86 CR3,
    arm64 TTBR0_EL1); --pgd PA replaces the root that translates va (both halves when va is None)."""
    given = [o for o in ("--pid", "--mm", "--pgd") if o in opts]
    if len(given) > 1:
        raise gdb.GdbError("klab %s: give only one of %s" % (what, ", ".join(given)))
    if not given:
        return regs
    if "--pgd" in opts:
        root = value(opts["--pgd"], what)
    else:
        if "--pid" in opts:
            try:
                pid = int(opts["--pid"], 0)
            except ValueError:
                raise gdb.GdbError("klab %s: --pid wants a number, not '%s'" % (what, opts["--pid"]))
            task = kernel.task_by_pid(pid, what)
            mm = task["mm"]
            if not int(mm):
                raise gdb.GdbError("klab %s: pid %d (%s) is a kernel thread: no mm, only the kernel's tables" % (
                    what, pid, kernel.task_comm(task, what)))
            owner = "pid %d's mm" % pid
        else:
            mm = gdb.Value(value(opts["--mm"], what)).cast(kernel.lookup_type("struct mm_struct", what).pointer())
            owner = "mm %x" % int(mm)
        pgd = kernel.read_int(mm["pgd"], what, "%s->pgd" % owner)
        with lib.PhysMem() as mem:
            w = translate(regs, mem, pgd)
        if w.stop != 0:
            raise gdb.GdbError("klab %s: %s->pgd %x is not mapped: %s" % (what, owner, pgd, w.why.decode()))
        root = w.pa
    if regs.arch == lib.ARCH_X86_64:
        regs.cr3 = root
    elif "--pgd" in opts and va is not None and (va >> 55) & 1:
        regs.ttbr1 = root
    elif "--pgd" in opts and va is None:
        regs.ttbr0 = regs.ttbr1 = root
    else:
        regs.ttbr0 = root
    return regs


def translate(regs, mem, va):
    walk = lib.Walk()
    lib.lib().klab_translate(ctypes.byref(regs), mem.handle, va, ctypes.byref(walk))
    return walk


def print_walk(walk, explain=False):
    """crash's vtop layout: VIRTUAL / PHYSICAL, the root, one line per level (entry address => value), PAGE."""
    mapped = walk.stop == 0
    gdb.write("VIRTUAL           PHYSICAL\n")
    gdb.write("%-16x  %s\n\n" % (walk.va, "%x" % walk.pa if mapped else "(not mapped)"))
    if not walk.granule_shift:
        gdb.write("%s\n" % walk.why.decode())
        return
    gdb.write("%s: %x  (%uK granule, %u-bit VA, %d level%s walked)\n" % (
        walk.root_name.decode(), walk.root_pa, 1 << (walk.granule_shift - 10), walk.va_bits, walk.nlevels,
        "" if walk.nlevels == 1 else "s"))
    if explain:
        _explain(walk)
    for i in range(walk.nlevels):
        l = walk.levels[i]
        gdb.write("  %5s: %x => %x  [%s %s index %u] %s\n" % (
            l.name.decode().upper(), l.entry_pa, l.raw, l.hw_name.decode(), l.name.decode(), l.index, l.bits.decode()))
    if mapped:
        gdb.write("   PAGE: %x  (%s)  %s\n" % (walk.pa & ~(walk.page_size - 1) & MASK64, lib.size_str(walk.page_size),
                                            lib.perms_str(walk.perms)))
    else:
        gdb.write("  STOP: %s: %s\n" % (lib.lib().klab_stop_name(walk.stop).decode(), walk.why.decode()))


def _explain(walk):
    """Seed 002's derivation, from the walk's own geometry: each level's shift, table size and index."""
    g = walk.granule_shift
    for i in range(walk.nlevels):
        l = walk.levels[i]
        bits = walk.va_bits - l.shift if i == 0 else g - 3
        name = l.name.decode().upper()
        # Linux's names (include/asm-generic/pgtable-nop*.h, arch/*/include/asm/pgtable*.h).
        shift_name = "PGDIR" if i == 0 else "PAGE" if i == walk.nlevels - 1 and name == "PTE" else name
        gdb.write("    %s_SHIFT = %-2u  PTRS_PER_%s = %-5u  %s_index = (addr >> %u) & %u = %u\n" % (
            shift_name, l.shift, name, 1 << bits, l.name.decode(), l.shift, (1 << bits) - 1,
            (walk.va >> l.shift) & ((1 << bits) - 1)))
    gdb.write("    page offset = addr & 0x%x = 0x%x\n" % ((1 << g) - 1, walk.va & ((1 << g) - 1)))


class KlabVtop(KlabCommand):
    """Translate a virtual address, printing every page-table level (crash's vtop layout).

Usage: klab vtop ADDRESS [--pid N | --mm PTR | --pgd PA] [--explain]
  ADDRESS     any expression: 0xffff800008000000, $sp, init_task.stack; a bare variable name means
              its address (jiffies = &jiffies), a pointer variable where it points
  --pid N     walk process N's page tables (its mm->pgd), e.g. for one of its user addresses
  --mm PTR    walk this struct mm_struct's page tables
  --pgd PA    walk from this top-level table instead of CR3 / TTBR0_EL1 / TTBR1_EL1
  --explain   derive each level's shift, table size and index from the address bits (seed 002's
              PGDIR_SHIFT = 42, PTRS_PER_PGD = 64 for 64K pages, 48-bit VA, 3 levels)
Tables are read from the VM's RAM file when klab gdb started this session, else through the stub."""

    OPTIONS = ("--pid", "--mm", "--pgd", "--explain")

    def __init__(self):
        super().__init__("klab vtop")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "vtop", {"--explain"}, {"--pgd", "--pid", "--mm"})
        if len(pos) != 1:
            raise gdb.GdbError("klab vtop: give one address (see help klab vtop)")
        va = address(pos[0], "vtop")
        regs = address_space(lib.mmu_regs(), opts, "vtop", va)
        with lib.PhysMem() as mem:
            walk = translate(regs, mem, va)
        print_walk(walk, "--explain" in opts)


class KlabPte(KlabCommand):
    """Decode a raw page-table entry.

Usage: klab pte VALUE [--level L] [--granule 4K|16K|64K] [--arch x86_64|arm64]
  arm64: --level 0..3 (3 = page level, the default), --granule from TCR_EL1 when attached (else 4K);
  x86_64: --level 1 (PT, default) .. 5 (PML5).
Example (seed 002, arm64 64K pages): klab pte 0x68000061020713 --granule 64K"""

    OPTIONS = ("--level", "--granule", "--arch")

    def __init__(self):
        super().__init__("klab pte")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "pte", set(), {"--level", "--granule", "--arch"})
        if len(pos) != 1:
            raise gdb.GdbError("klab pte: give one value (see help klab pte)")
        raw = value(pos[0], "pte")
        if "--arch" in opts:
            a = {"x86_64": lib.ARCH_X86_64, "x86": lib.ARCH_X86_64, "arm64": lib.ARCH_ARM64,
                 "aarch64": lib.ARCH_ARM64}.get(opts["--arch"])
            if a is None:
                raise gdb.GdbError("klab pte: --arch must be x86_64 or arm64")
        else:
            a = lib.arch()
        granule = 12
        if "--granule" in opts:
            granule = {"4K": 12, "16K": 14, "64K": 16}.get(opts["--granule"].upper())
            if granule is None or a == lib.ARCH_X86_64 and granule != 12:
                raise gdb.GdbError("klab pte: --granule must be 4K, 16K or 64K (4K on x86_64)")
        elif a == lib.ARCH_ARM64 and gdb.selected_inferior().pid:
            granule = kernel.page_shift(lib.mmu_regs(), "pte")
        level = 3 if a == lib.ARCH_ARM64 else 1
        if "--level" in opts:
            try:
                level = int(opts["--level"], 0)
            except ValueError:
                raise gdb.GdbError("klab pte: --level wants a number")
        out = lib.Level()
        if lib.lib().klab_decode_entry(a, granule, level, raw, ctypes.byref(out)) != 0:
            raise gdb.GdbError("klab pte: %s" % out.bits.decode())
        gdb.write("  PTE: %x  %s level %s (%uK granule)\n" % (raw, "arm64" if a == lib.ARCH_ARM64 else "x86_64",
                                                           out.hw_name.decode(), 1 << (granule - 10)))
        gdb.write("  kind: %s\n" % lib.KIND_NAMES[out.kind])
        if out.kind in (1, 2, 3):
            gdb.write("  output address: %x\n" % out.out_pa)
        gdb.write("  bits: %s\n" % out.bits.decode())


_FILTERS = {"w": lib.FILTER_WRITABLE, "x": lib.FILTER_EXEC, "u": lib.FILTER_USER, "k": lib.FILTER_KERNEL}


class KlabPtdump(KlabCommand):
    """Dump the page tables as merged ranges with permissions and page sizes.

Each line: VA span, size, PA, page size x count, level, permissions, attributes.

Usage: klab ptdump [--pid N | --mm PTR | --pgd PA] [--range START-END] [--filter w,x,u,k]
                   [--page-size 4K|2M|1G|64K|...] [--no-merge]
  --pid N / --mm PTR: that process's page tables (user half from its mm->pgd; the kernel half is shared).
  Leaves merge while VA and PA continue and the attributes stay equal. Permissions are kernel/user rwx.
  --filter: w writable, x executable, u user-accessible, k kernel-only (all given must hold)."""

    OPTIONS = ("--pid", "--mm", "--pgd", "--range", "--filter", "--page-size", "--no-merge")

    def __init__(self):
        super().__init__("klab ptdump")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "ptdump", {"--no-merge"},
                               {"--range", "--filter", "--page-size", "--pid", "--mm", "--pgd"})
        if pos:
            raise gdb.GdbError("klab ptdump: unexpected argument '%s'" % pos[0])
        o = lib.RangeOpts()
        if "--range" in opts:
            start, sep, end = opts["--range"].partition("-")
            if not sep:
                raise gdb.GdbError("klab ptdump: --range wants START-END")
            o.va_start, o.va_end = address(start, "ptdump"), address(end, "ptdump")
            if o.va_end < o.va_start:
                raise gdb.GdbError("klab ptdump: --range ends before it starts")
        for f in opts.get("--filter", "").split(",") if "--filter" in opts else []:
            if f not in _FILTERS:
                raise gdb.GdbError("klab ptdump: unknown filter '%s' (w, x, u, k)" % f)
            o.filters |= _FILTERS[f]
        if "--no-merge" in opts:
            o.filters |= lib.FILTER_NO_MERGE
        if "--page-size" in opts:
            s = opts["--page-size"].upper()
            units = {"K": 10, "M": 20, "G": 30}
            try:
                o.page_size = int(s[:-1]) << units[s[-1]]
            except (KeyError, ValueError, IndexError):
                raise gdb.GdbError("klab ptdump: --page-size wants 4K, 2M, 1G, 64K, ...")
        regs = address_space(lib.mmu_regs(), opts, "ptdump")
        lines = []
        last_root = [None]

        def one(ctx, rp):
            r = rp.contents
            root = r.root_name.decode()
            if root != last_root[0]:
                lines.append("---[ %s ]---" % root)
                last_root[0] = root
            span = (r.va_end - r.va_start) & MASK64
            if r.kind == lib.RANGE_BAD:
                lines.append("0x%016x-0x%016x %6s  BAD %s entry 0x%016x: %s" % (
                    r.va_start, r.va_end, lib.size_str(span), r.level_name.decode(), r.first_raw, r.attrs.decode()))
            else:
                lines.append("0x%016x-0x%016x %6s  PA 0x%-12x %4s x%-6u %-4s %s  %s" % (
                    r.va_start, r.va_end, lib.size_str(span), r.pa_start, lib.size_str(r.page_size), r.leaves,
                    r.level_name.decode(), lib.perms_str(r.perms), r.attrs.decode()))
            return 0

        cb = lib.RANGE_FN(one)
        err = ctypes.create_string_buffer(256)
        stats = lib.RangeStats()
        with lib.PhysMem() as mem:
            rc = lib.lib().klab_walk_ranges(ctypes.byref(regs), mem.handle, ctypes.byref(o), cb, None,
                                           ctypes.byref(stats), err, 256)
        if rc != 0:
            raise gdb.GdbError("klab ptdump: %s" % err.value.decode())
        gdb.write("\n".join(lines) + "\n")


KlabVtop()
KlabPte()
KlabPtdump()
