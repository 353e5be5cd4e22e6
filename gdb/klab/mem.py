"""klab ptov / pfn / page: physical ↔ virtual ↔ pfn ↔ struct page, and crash's `kmem -p` line with the page
flags named by the kernel's own enum pageflags."""

import gdb

from klab.command import KlabCommand
from klab import kernel, lib, mmu

MASK64 = kernel.MASK64

# include/linux/page-flags.h (v6.1): page_type shares _mapcount; a page is of type T when
# (page_type & (PAGE_TYPE_BASE | T)) == PAGE_TYPE_BASE. Kernels with `enum pagetype` in DWARF (v6.9+) give
# their own values and take precedence; since v6.11 (PGTY_* values) the type is the top byte:
# page_type >> 24 == PGTY_T, and slab is one of them (it was the flag PG_slab before).
_PAGE_TYPE_BASE_V61 = 0xf0000000
_PAGE_TYPES_V61 = (("buddy", 0x80), ("offline", 0x100), ("table", 0x200), ("guard", 0x400))


def _image_offset(regs, mem, what):
    """VA - PA of the kernel image, from the live walk of _stext (arm64 kimage_voffset, x86 __START_KERNEL_map
    - phys_base): right under KASLR without knowing either. (arm64 leaves _text.._stext, the image header,
    unmapped: arch/arm64/mm/mmu.c map_kernel.) Returns (offset, PA of _text, PA of _end)."""
    stext = kernel.address_of("_stext", what)
    walk = mmu.translate(regs, mem, stext)
    if walk.stop != 0:
        raise kernel.error(what, "_stext %x is not mapped: %s", stext, walk.why.decode())
    offset = (stext - walk.pa) & MASK64
    return offset, kernel.address_of("_text", what) - offset, kernel.address_of("_end", what) - offset


def _walk_pa(regs, mem, va):
    w = mmu.translate(regs, mem, va)
    return w.pa if w.stop == 0 else None


class KlabPtov(KlabCommand):
    """Physical address to kernel virtual addresses (linear map, kernel image).

The linear-map (direct map) address and, for the kernel image, its image alias. Each answer is checked by walking the page tables back to the same physical address.

Usage: klab ptov PA
  The linear map starts at x86_64 page_offset_base / arm64 PAGE_OFFSET (memstart_addr is its PA), read live."""

    def __init__(self):
        super().__init__("klab ptov")

    def invoke(self, arg, from_tty):
        pos, _ = mmu.split_args(arg, "ptov", set(), set())
        if len(pos) != 1:
            raise gdb.GdbError("klab ptov: give one physical address (see help klab ptov)")
        pa = mmu.value(pos[0], "ptov")
        regs = lib.mmu_regs()
        kernel.check_ram(pa, "ptov")
        va = kernel.ptov(regs, pa, "ptov")
        with lib.PhysMem() as mem:
            back = _walk_pa(regs, mem, va)
            offset, img_lo, img_hi = _image_offset(regs, mem, "ptov")
            rows = [(va, "linear map" if back == pa else "linear map, NOT MAPPED there now" if back is None
                     else "linear map, but it translates to %x" % back)]
            if img_lo <= pa < img_hi:
                iva = (pa + offset) & MASK64
                back = _walk_pa(regs, mem, iva)
                rows.append((iva, "kernel image" if back == pa else "kernel image, not mapped (freed init?)"))
        gdb.write("VIRTUAL           PHYSICAL\n")
        for v, where in rows:
            gdb.write("%-16x  %-10x  (%s)\n" % (v, pa, where))


def _page_geometry(regs, what):
    shift = kernel.page_shift(regs, what)
    base = kernel.vmemmap(1 << shift, what)
    size = kernel.struct_page_size(what)
    max_pfn = kernel.read_int(kernel.symbol_value("max_pfn", what), what, "max_pfn")
    return shift, base, size, max_pfn


class KlabPfn(KlabCommand):
    """Virtual address to physical address, page frame number and struct page.

Walks the page tables, so linear map, kernel image, vmalloc and module addresses all work.

Usage: klab pfn ADDRESS"""

    def __init__(self):
        super().__init__("klab pfn")

    def invoke(self, arg, from_tty):
        pos, _ = mmu.split_args(arg, "pfn", set(), set())
        if len(pos) != 1:
            raise gdb.GdbError("klab pfn: give one virtual address (see help klab pfn)")
        va = mmu.address(pos[0], "pfn")
        regs = lib.mmu_regs()
        with lib.PhysMem() as mem:
            w = mmu.translate(regs, mem, va)
        if w.stop != 0:
            raise gdb.GdbError("klab pfn: %x is not mapped: %s" % (va, w.why.decode()))
        shift, base, size, max_pfn = _page_geometry(regs, "pfn")
        pfn = w.pa >> shift
        gdb.write("VIRTUAL           PHYSICAL    PFN       PAGE\n")
        gdb.write("%-16x  %-10x  %-8x  %x\n" % (va, w.pa, pfn, (base + pfn * size) & MASK64))


def _flag_names(what):
    """{bit: name} from enum pageflags, first name per value (later ones are aliases: PG_checked =
    PG_owner_priv_1), below __NR_PAGEFLAGS (the rest of page->flags is section/node/zone)."""
    t = kernel.lookup_type("enum pageflags", what)
    limit = None
    names = {}
    for f in t.fields():
        if f.name in ("__NR_PAGEFLAGS", "NR_PAGEFLAGS"):
            limit = f.enumval
        elif f.name.startswith("PG_") and f.enumval not in names:
            names[f.enumval] = f.name[3:]
    if limit is None:
        raise kernel.error(what, "enum pageflags has no __NR_PAGEFLAGS")
    return {b: n for b, n in names.items() if b < limit}


def _page_types():
    """(top_byte, base, [(name, value)]): v6.11+'s PGTY_* values compared with the top byte (top_byte True),
    else cleared bits under PAGE_TYPE_BASE: enum pagetype's PG_* (v6.9, v6.10) or v6.1's defines."""
    try:
        t = gdb.lookup_type("enum pagetype")
    except gdb.error:
        return False, _PAGE_TYPE_BASE_V61, _PAGE_TYPES_V61
    vals = {f.name: f.enumval & 0xffffffff for f in t.fields()}
    if any(n.startswith("PGTY_") for n in vals):
        return True, None, [(n[5:], v) for n, v in vals.items()
                            if n.startswith("PGTY_") and n != "PGTY_mapcount_underflow"]
    base = vals.pop("PAGE_TYPE_BASE", _PAGE_TYPE_BASE_V61)
    return False, base, [(n[3:].lower(), v) for n, v in vals.items() if n.startswith("PG_")]


def page_type(page):
    """Names of the page types set in page->page_type (buddy, table, slab, ...), and the buddy order."""
    try:
        raw = int(page["page_type"]) & 0xffffffff     # (v6.1 keeps it in an anonymous union with _mapcount)
    except gdb.error:
        return []
    top_byte, base, types = _page_types()
    out = []
    for name, value in types:
        if (raw >> 24 == value) if top_byte else (raw & (base | value) == base):
            out.append("%s (order %d)" % (name, int(page["private"])) if name == "buddy" else name)
    return out


def print_page(page_addr, pfn, shift, what):
    page = kernel.value_at(page_addr, "struct page", what)
    try:
        flags = int(page["flags"]) & MASK64
        mapping = int(page["mapping"]) & MASK64
        index = int(page["index"]) & MASK64
        count = int(page["_refcount"]["counter"])
        types = page_type(page)
        head = int(page["compound_head"]) & MASK64   # bit 0: a tail page (include/linux/page-flags.h)
    except gdb.MemoryError:
        raise kernel.error(what, "no struct page for pfn 0x%x at %x (a hole in physical memory)", pfn, page_addr)
    names = _flag_names(what)
    set_names = [names[b] for b in sorted(names) if flags >> b & 1]
    gdb.write("      PAGE        PHYSICAL      MAPPING       INDEX CNT FLAGS\n")
    gdb.write("%16x  %8x  %16x  %8x %3d %x %s\n" % (page_addr, pfn << shift, mapping, index, count, flags,
                                                   ",".join(set_names)))
    if types:
        gdb.write("page_type: %s\n" % ", ".join(types))
    if head & 1:
        gdb.write("compound: tail page of head %x (flags, mapping and count live there)\n" % (head - 1))


class KlabPage(KlabCommand):
    """A page's struct page as crash's `kmem -p` prints it, flags by name.

PAGE PHYSICAL MAPPING INDEX CNT FLAGS, the flags named by this kernel's enum pageflags, and page_type (buddy, table, ...) when one is set.

Usage: klab page ADDRESS | PFN | --pa PA
  a kernel virtual address (any mapped one: its page), a struct page address (that page), or a page frame
  number; --pa takes a physical address."""

    OPTIONS = ("--pa",)

    def __init__(self):
        super().__init__("klab page")

    def invoke(self, arg, from_tty):
        pos, opts = mmu.split_args(arg, "page", set(), {"--pa"})
        if len(pos) + ("--pa" in opts) != 1:
            raise gdb.GdbError("klab page: give one address, pfn or --pa PA (see help klab page)")
        regs = lib.mmu_regs()
        shift, base, size, max_pfn = _page_geometry(regs, "page")
        if "--pa" in opts:
            pfn = mmu.value(opts["--pa"], "page") >> shift
        else:
            v = mmu.address(pos[0], "page")
            kernel_half = kernel.geometry(regs, True, "page").va_lo
            if v >= kernel_half and base <= v < base + max_pfn * size:
                if (v - base) % size:
                    raise gdb.GdbError("klab page: %x is inside a struct page, not at its start" % v)
                pfn = (v - base) // size
            elif v >= kernel_half:
                with lib.PhysMem() as mem:
                    w = mmu.translate(regs, mem, v)
                if w.stop != 0:
                    raise gdb.GdbError("klab page: %x is not mapped: %s" % (v, w.why.decode()))
                pfn = w.pa >> shift
            else:
                pfn = v
        if pfn >= max_pfn:
            raise gdb.GdbError("klab page: pfn 0x%x is beyond max_pfn 0x%x" % (pfn, max_pfn))
        print_page((base + pfn * size) & MASK64, pfn, shift, "page")


KlabPtov()
KlabPfn()
KlabPage()
