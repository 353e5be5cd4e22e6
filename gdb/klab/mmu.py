"""klab vtop / pte / ptdump in gdb: libklab walks the tables, this file parses arguments and prints."""

import ctypes
import re

import gdb

from klab.command import KlabCommand
from klab import kernel, lib, swap

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
    if "--pgd" not in opts:
        which = lib.ROOT_USER
    else:
        which = lib.ROOT_ALL if va is None else lib.ROOT_FOR_VA
    lib.replace_root(regs, which, va, root)
    return regs


def given_space(opts):
    return any(o in opts for o in ("--pid", "--mm", "--pgd"))


def qemu_gva2gpa(va):
    """QEMU's own translation on the selected CPU (HMP gva2gpa through the stub): the PA, or None."""
    try:
        gdb.execute("monitor cpu %d" % (gdb.selected_thread().ptid[1] - 1), to_string=True)
        out = gdb.execute("monitor gva2gpa 0x%x" % va, to_string=True)
    except gdb.error as e:
        raise gdb.GdbError("klab vtop: QEMU's gva2gpa gave no answer: %s" % e)
    m = re.search(r"gpa: 0x([0-9a-f]+)", out)
    if m:
        return int(m.group(1), 16)
    if "Unmapped" not in out:
        raise gdb.GdbError("klab vtop: QEMU's gva2gpa gave no answer: %s" % out.strip())
    return None


def translate(regs, mem, va):
    walk = lib.Walk()
    lib.lib().klab_translate(ctypes.byref(regs), mem.handle, va, ctypes.byref(walk))
    return walk


def _symbol_address(name):
    """A kernel symbol's address as gdb has it (KASLR's slide applied by klab kaslr), or None."""
    return kernel.address_of(name, "svg") if kernel.has_symbol(name) else None


def regions(regs, mem):
    return lib.kernel_regions(regs, mem, _symbol_address)


def print_walk(walk, explain=False):
    """crash's vtop layout, as libklab words it (klab_format_walk: the shell's klab vtop prints the same)."""
    gdb.write(lib.format_walk(walk, explain=explain))


class KlabVtop(KlabCommand):
    """Translate a virtual address, printing every page-table level (crash's vtop layout).

Usage: klab vtop ADDRESS [--pid N | --mm PTR | --pgd PA] [--explain] [--qemu] [--svg FILE]
  ADDRESS     any expression: 0xffff800008000000, $sp, init_task.stack; a bare variable name means
              its address (jiffies = &jiffies), a pointer variable where it points
  --pid N     walk process N's page tables (its mm->pgd), e.g. for one of its user addresses
  --mm PTR    walk this struct mm_struct's page tables
  --pgd PA    walk from this top-level table instead of CR3 / TTBR0_EL1 / TTBR1_EL1
  --explain   derive each level's shift, table size and index from the address bits (seed 002's
              PGDIR_SHIFT = 42, PTRS_PER_PGD = 64 for 64K pages, 48-bit VA, 3 levels)
  --qemu      also ask QEMU (monitor gva2gpa, the selected CPU's tables) and say whether it agrees; where
              QEMU cannot see a page (arm64 EL1 with PSTATE.PAN set: EL0's pages) klab says so
  --svg FILE  also draw the walk as an SVG picture: the address's index fields, each table with its
              entry highlighted and decoded, arrows to the page ('-': the picture instead of the text)
A non-present user entry is decoded as the kernel wrote it: SWAP (type, the swap file, offset), MIGRATE
(and the PFN), POISON, MARKER, PROTNONE, by this kernel's version and config; what klab cannot justify
says "unknown non-present entry".
Tables are read from the VM's RAM file when klab gdb started this session, else through the stub."""

    OPTIONS = ("--pid", "--mm", "--pgd", "--explain", "--qemu", "--svg")

    def __init__(self):
        super().__init__("klab vtop")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "vtop", {"--explain", "--qemu"}, {"--pgd", "--pid", "--mm", "--svg"})
        if len(pos) != 1:
            raise gdb.GdbError("klab vtop: give one address (see help klab vtop)")
        va = address(pos[0], "vtop")
        regs = address_space(lib.mmu_regs(), opts, "vtop", va)
        with lib.PhysMem() as mem:
            walk = translate(regs, mem, va)
        if "--svg" in opts:
            label = None if re.match(r"(0x)?[0-9a-fA-F]+$", pos[0]) else pos[0]
            lib.svg_walk(walk, label, opts["--svg"], "vtop")
            if opts["--svg"] == "-":
                return
        print_walk(walk, "--explain" in opts)
        gdb.write(swap.describe_walk(walk, regs, "vtop"))
        if "--qemu" in opts:
            if given_space(opts):
                raise gdb.GdbError("klab vtop: --qemu asks QEMU with the CPU's own tables: not with --pid, --mm or --pgd")
            gdb.write(lib.qemu_verdict(walk, qemu_gva2gpa(va))[1])


class KlabPte(KlabCommand):
    """Decode a raw page-table entry.

Usage: klab pte VALUE [--level L] [--granule 4K|16K|64K] [--arch x86_64|arm64] [--kver X.Y]
  arm64: --level 0..3 (3 = page level, the default), --granule from TCR_EL1 when attached (else 4K);
  x86_64: --level 1 (PT, default) .. 5 (PML5).
  A non-present entry is decoded as a user entry of the loaded kernel (swap, migration, ...); --kver
  says which kernel version's layout to use when no kernel is loaded.
Example (seed 002, arm64 64K pages): klab pte 0x68000061020713 --granule 64K"""

    OPTIONS = ("--level", "--granule", "--arch", "--kver")

    def __init__(self):
        super().__init__("klab pte")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "pte", set(), {"--level", "--granule", "--arch", "--kver"})
        if len(pos) != 1:
            raise gdb.GdbError("klab pte: give one value (see help klab pte)")
        raw = value(pos[0], "pte")
        a = lib.arch_by_name(opts["--arch"], "pte") if "--arch" in opts else lib.arch()
        granules, _, leaf = lib.arch_levels(a)
        granule = 12
        if "--granule" in opts:
            granule = {"4K": 12, "16K": 14, "64K": 16}.get(opts["--granule"].upper())
            if granule not in granules:
                raise gdb.GdbError("klab pte: --granule must be one of %s on %s" % (
                    ", ".join("%dK" % (1 << (g - 10)) for g in granules), lib.arch_name(a)))
        elif len(granules) > 1 and gdb.selected_inferior().pid:
            granule = kernel.page_shift(lib.mmu_regs(), "pte")
        level = leaf
        if "--level" in opts:
            try:
                level = int(opts["--level"], 0)
            except ValueError:
                raise gdb.GdbError("klab pte: --level wants a number")
        gdb.write(lib.format_entry(a, granule, level, raw, "pte"))
        entry, err = lib.Level(), lib.Error()
        if lib.lib().klab_decode_entry(a, granule, level, raw, ctypes.byref(entry), ctypes.byref(err)) == 0 \
                and entry.kind == 0:
            # The loaded kernel's facts apply to its own architecture only.
            own = a == lib.arch() and kernel.has_symbol("init_uts_ns")
            kmm = swap.kernel_mm(lib.mmu_regs() if own and gdb.selected_inferior().pid else None, "pte") if own \
                else lib.KernelMm()
            if "--kver" in opts:
                m = re.match(r"(\d+)\.(\d+)$", opts["--kver"])
                if not m:
                    raise gdb.GdbError("klab pte: --kver wants MAJOR.MINOR, e.g. 6.12")
                kmm.version = int(m.group(1)) << 16 | int(m.group(2)) << 8
            s = lib.decode_swp(a, kmm, granule, level, False, raw, "pte")
            gdb.write(lib.format_swp(s, swap.swap_name(s.type) if lib.swp_kind_name(s) == "swap" else None))


class KlabPtdump(KlabCommand):
    """Dump the page tables as merged ranges with permissions and page sizes.

Each line: VA span, size, PA, page size x count, level, permissions, attributes.

Usage: klab ptdump [--pid N | --mm PTR | --pgd PA] [--range START-END] [--filter w,x,u,k]
                   [--page-size 4K|2M|1G|64K|...] [--no-merge] [--non-present] [--svg FILE]
  --pid N / --mm PTR: that process's page tables (user half from its mm->pgd; the kernel half is shared).
  Leaves merge while VA and PA continue and the attributes stay equal. Permissions are kernel/user rwx.
  --filter: w writable, x executable, u user-accessible, k kernel-only (all given must hold).
  --non-present: instead of the mappings, every non-present entry that still holds something, decoded as
  klab vtop does (swapped and migrating pages of --pid N, PROT_NONE, ...).
  --svg FILE: draw the address space as an SVG map instead ('-': to gdb's output): rows of ranges coloured
  by rights, leaf sizes shaded, the kernel's regions named."""

    OPTIONS = ("--pid", "--mm", "--pgd", "--range", "--filter", "--page-size", "--no-merge", "--non-present", "--svg")

    def __init__(self):
        super().__init__("klab ptdump")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "ptdump", {"--no-merge", "--non-present"},
                               {"--range", "--filter", "--page-size", "--pid", "--mm", "--pgd", "--svg"})
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
        if "--filter" in opts:
            o.filters |= lib.parse_filters(opts["--filter"], "ptdump")
        if "--no-merge" in opts:
            o.filters |= lib.FILTER_NO_MERGE
        if "--non-present" in opts:
            o.filters |= lib.FILTER_NON_PRESENT
        if "--page-size" in opts:
            o.page_size = lib.parse_page_size(opts["--page-size"], "ptdump")
        regs = address_space(lib.mmu_regs(), opts, "ptdump")
        if "--svg" in opts:
            if "--non-present" in opts:
                raise gdb.GdbError("klab ptdump: --svg draws the mapped ranges, not --non-present")
            label = "gdb, %s" % ("pid %s" % opts["--pid"] if "--pid" in opts else "the CPU's own tables")
            with lib.PhysMem() as mem, lib.Snapshot.take(regs, mem, -1, label, "ptdump", o) as s:
                lib.svg_map(s, None, 0, o.va_start, o.va_end, regions(regs, mem), "ptdump", opts["--svg"], "ptdump")
            return
        lines = []
        last_root = ctypes.create_string_buffer(12)

        kmm = swap.kernel_mm(regs, "ptdump") if "--non-present" in opts else None

        def line(r):
            if r.kind != lib.RANGE_NON_PRESENT:
                lines.append(lib.format_range(r, last_root))
                return
            s = lib.range_swp(r, kmm, "ptdump")
            name = swap.swap_name(s.type, "ptdump") if lib.swp_kind_name(s) == "swap" else None
            lines.append(lib.format_range_swp(r, s, name, last_root))

        with lib.PhysMem() as mem:
            lib.walk_ranges(regs, mem, o, line, "ptdump")
        gdb.write("".join(lines))


class KlabPtsnap(KlabCommand):
    """Save the whole page table as a snapshot, for klab ptdiff.

Usage: klab ptsnap save NAME [--pid N | --mm PTR | --pgd PA]
  Keeps every range klab ptdump would print. --pid N: process N's tables (its user half; the kernel half is
  shared). A plain NAME goes to the snapshot store the klab program uses too ($KLAB_PTSNAP_DIR, else
  $KLAB_CACHE/ptsnap, else ~/.cache/klab/ptsnap); a NAME with a '/' is a path."""

    OPTIONS = ("--pid", "--mm", "--pgd")

    def __init__(self):
        super().__init__("klab ptsnap")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "ptsnap", set(), {"--pid", "--mm", "--pgd"})
        if len(pos) != 2 or pos[0] != "save":
            raise gdb.GdbError("klab ptsnap: usage: klab ptsnap save NAME [--pid N | --mm PTR | --pgd PA]")
        regs = address_space(lib.mmu_regs(), opts, "ptsnap")
        pid = int(opts["--pid"], 0) if "--pid" in opts else -1
        label = "gdb, %s" % ("pid %d's tables" % pid if pid >= 0 else "the CPU's own tables" if len(opts) == 0
                             else "the tables of %s" % " ".join("%s %s" % kv for kv in opts.items()))
        with lib.PhysMem() as mem, lib.Snapshot.take(regs, mem, pid, label, "ptsnap") as s:
            path = s.save(pos[1], "ptsnap")
            gdb.write("saved %s: %d ranges (%s)\n" % (path, s.info().nranges, label))


class KlabPtdiff(KlabCommand):
    """What changed in the page tables from snapshot A to B, or to now.

Usage: klab ptdiff A [B] [--range START-END] [--all-bits] [--svg FILE]
  Without B, A is diffed against the tables now (a --pid snapshot against that process's tables now).
  One line per change: + mapped, - unmapped, ~ moved / split / merged / perms / bits, then a count.
  --all-bits also reports the bits the CPU and kernel flip as pages are used (ACCESSED, DIRTY, AF).
  --svg FILE also draws B (or now) as an SVG map with each change outlined and listed ('-': instead of
  the text)."""

    OPTIONS = ("--range", "--all-bits", "--svg")

    def __init__(self):
        super().__init__("klab ptdiff")

    def invoke(self, arg, from_tty):
        pos, opts = split_args(arg, "ptdiff", {"--all-bits"}, {"--range", "--svg"})
        if len(pos) not in (1, 2):
            raise gdb.GdbError("klab ptdiff: usage: klab ptdiff A [B] [--range START-END] [--all-bits]")
        lo = hi = 0
        if "--range" in opts:
            start, sep, end = opts["--range"].partition("-")
            if not sep:
                raise gdb.GdbError("klab ptdiff: --range wants START-END")
            lo, hi = address(start, "ptdiff"), address(end, "ptdiff")
            if hi < lo:
                raise gdb.GdbError("klab ptdiff: --range ends before it starts")
        flags = 1 if "--all-bits" in opts else 0
        svg = opts.get("--svg")

        def show(a, b, named):
            if svg != "-":
                gdb.write(a.diff_text(b, lo, hi, flags, "ptdiff"))
            if svg:
                lib.svg_map(b, a, flags, lo, hi, named, "ptdiff", svg, "ptdiff")

        with lib.Snapshot.load(pos[0], "ptdiff") as a:
            if len(pos) == 2:
                with lib.Snapshot.load(pos[1], "ptdiff") as b:
                    show(a, b, ((lib.SvgRegion * 1)(), 0))
                return
            pid = a.info().pid
            regs = address_space(lib.mmu_regs(), {"--pid": str(pid)} if pid >= 0 else {}, "ptdiff")
            with lib.PhysMem() as mem, lib.Snapshot.take(regs, mem, pid, "now", "ptdiff") as b:
                show(a, b, regions(regs, mem) if svg else None)


KlabVtop()
KlabPte()
KlabPtdump()
KlabPtsnap()
KlabPtdiff()
