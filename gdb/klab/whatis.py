"""klab whatis: what a kernel address is, found from the kernel's own bookkeeping rather than from layout
constants: the image's symbols, the module list, the vmap areas (mm/vmalloc.c), the tasks' stacks, the
struct page array, the linear map; for RAM, the page and, in a slab, its cache and object (crash's kmem ADDR,
drgn's identify_address). An address none of them claims is said to be mapped (with its PA) or not mapped."""

import re

import gdb

from klab.command import KlabCommand
from klab import arch, kernel, lib, mem, mmu, modules, slab

MASK64 = kernel.MASK64


def _symbol(addr):
    """'name+off in section S [of module]' for an address gdb has a symbol for, else None."""
    out = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    if out.startswith("No symbol"):
        return None
    m = re.match(r"(\S+)(?: \+ (\d+))? in section (\S+)(?: of (\S+))?", out)
    if not m:
        return out
    return "%s+%#x in %s" % (m.group(1), int(m.group(2) or 0), m.group(3))


def _module_regions(what):
    """[(base, size, module name, region)] of every loaded module: mem[] since v6.4 (include/linux/module.h
    struct module_memory), core_layout / init_layout before."""
    mod_t = kernel.lookup_type("struct module", what)
    out = []
    for mod in modules.loaded_modules(what):
        if kernel.has_field(mod_t, "mem"):
            regions = [(i, mod["mem"][i]) for i in range(mod["mem"].type.range()[1] + 1)]
        else:
            regions = [("core", mod["core_layout"]), ("init", mod["init_layout"])]
        name = mod["name"].string()
        for label, r in regions:
            size = int(r["size"])
            if size:
                out.append((int(r["base"]) & MASK64, size, name, label))
    return out


def module_of(addr, what):
    """(module name, region) for an address in a module's memory, else None. The module list is read once per
    stop (klab bt --all asks for each task's last pc); a user address is in no module."""
    if addr < 1 << 63:
        return None
    for base, size, name, label in kernel.per_stop("module regions", lambda: _module_regions(what)):
        if base <= addr < base + size:
            return name, label
    return None


def _rb_find_vmap(root_addr, addr, what):
    """The vmap_area whose [va_start, va_end) holds addr in an rb-tree of them (mm/vmalloc.c
    __find_vmap_area), or None."""
    off = kernel.field_offset("struct vmap_area", "rb_node", what)
    node = kernel.kread_u64(root_addr, what, "a vmap_area tree")
    for _ in range(128):
        if not node:
            return None
        va = kernel.kstruct(node - off, "struct vmap_area", what, "a vmap_area")
        start, end = int(va["va_start"]) & MASK64, int(va["va_end"]) & MASK64
        if addr < start:
            node = int(va["rb_node"]["rb_left"]) & MASK64
        elif addr >= end:
            node = int(va["rb_node"]["rb_right"]) & MASK64
        else:
            return va
    raise kernel.error(what, "the vmap_area tree at %x is deeper than any balanced tree", root_addr)


def vmap_area_of(addr, what):
    """The busy vmap_area holding addr: vmap_area_root before v6.9, the busy tree of the vmap_node that
    addr_to_node() picks since (commit d093602919ad, "mm: vmalloc: remove global vmap_area_root")."""
    if kernel.has_symbol("vmap_area_root"):
        return _rb_find_vmap(kernel.address_of("vmap_area_root", what), addr, what)
    if not kernel.has_symbol("vmap_nodes"):
        raise kernel.error(what, "this kernel has neither vmap_area_root nor vmap_nodes")
    nodes = kernel.read_int(kernel.symbol_value("vmap_nodes", what), what, "vmap_nodes")
    n = int(kernel.symbol_value("nr_vmap_nodes", what))
    zone = int(kernel.symbol_value("vmap_zone_size", what))
    node_t = kernel.symbol_value("vmap_nodes", what).type.target()
    node = nodes + (addr // zone) % n * node_t.sizeof
    root = node + kernel.field_offset(str(node_t), "busy.root", what)
    return _rb_find_vmap(root, addr, what)


# include/linux/vmalloc.h: the same bits in v6.1 and v6.12 (VM_SPARSE is new in v6.12); macros are not in
# the DWARF of Debian's kernels
_VM_FLAGS = ("VM_IOREMAP", "VM_ALLOC", "VM_MAP", "VM_USERMAP", "VM_DMA_COHERENT", "VM_UNINITIALIZED",
             "VM_NO_GUARD", "VM_KASAN", "VM_FLUSH_RESET_PERMS", "VM_MAP_PUT_PAGES", "VM_ALLOW_HUGE_VMAP",
             "VM_DEFER_KMEMLEAK", "VM_SPARSE")


def _vm_flags(flags):
    names = [n for bit, n in enumerate(_VM_FLAGS) if flags >> bit & 1]
    rest = flags & ~((1 << len(_VM_FLAGS)) - 1)
    return "|".join(names + (["%#x" % rest] if rest else [])) or "0"


def _stack_lines(addr, what):
    """Whose stack addr is in: a task's kernel stack (task->stack .. + THREAD_SIZE) or a CPU's IRQ stack."""
    size = kernel.thread_size(what)
    for t in kernel.all_tasks(what):
        base = int(t["stack"]) & MASK64
        if base <= addr < base + size:
            return ["  kernel stack of PID %d \"%s\" (task %x), +%#x of %d" % (
                int(t["pid"]), kernel.task_comm(t, what), int(t.address), addr - base, size)]
    for cpu in range(len(kernel.cpu_threads())):
        stack = arch.current().irq_stack(cpu, kernel, what)
        if stack and stack[0] <= addr < stack[0] + stack[1]:
            return ["  IRQ stack of CPU %d, +%#x of %d" % (cpu, addr - stack[0], stack[1])]
    return []


def _page_of_pa(regs, pa, what):
    shift, base, size, max_pfn = mem._page_geometry(regs, what)
    pfn = pa >> shift
    return (base + pfn * size) & MASK64, pfn, shift, max_pfn


def _describe_ram(regs, addr, pa, what, out):
    """The page under pa and, when it is a slab's, the cache and object addr falls in."""
    page_addr, pfn, shift, max_pfn = _page_of_pa(regs, pa, what)
    if pfn >= max_pfn:
        out.append("  PA %x is beyond max_pfn" % pa)
        return
    page = kernel.value_at(page_addr, "struct page", what)
    head = kernel.read_int(page["compound_head"], what, "struct page %x" % page_addr)
    head_addr = head - 1 if head & 1 else page_addr
    head_page = kernel.value_at(head_addr, "struct page", what)
    flags = kernel.read_int(head_page["flags"], what, "page flags")
    names = mem._flag_names(what)
    in_slab = any(names.get(b) == "slab" and flags >> b & 1 for b in names) or "slab" in mem.page_type(head_page)
    if in_slab:
        head_pfn = (head_addr - (page_addr - pfn * kernel.struct_page_size(what))) // kernel.struct_page_size(what)
        base_va = kernel.ptov(regs, head_pfn << shift, what)
        name, size, obj, state = slab.object_of(head_addr, base_va, addr, what)
        if obj is None:
            out.append("  slab cache %s (object size %d): in the slab's unused tail" % (name, size))
        else:
            out.append("  slab cache %s (object size %d): %s object %x (+%#x)" % (
                name, size, state or "(free state unknown: a freelist pointer does not decode)", obj, addr - obj))
    out.append(("page", page_addr, pfn, shift))


def _in_image(regs, addr, pa, what):
    """Whether addr is the kernel image now: in [_text, _end) and mapped to the image's own PA (or not mapped
    and in no vmap area). The symbols alone are not enough: v6.1 arm64 leaves _text.._stext unmapped
    (arch/arm64/mm/mmu.c map_kernel), and vmalloc hands that range out, e.g. to the IRQ stacks."""
    if not kernel.address_of("_text", what) <= addr < kernel.address_of("_end", what):
        return False
    if pa is None:
        return vmap_area_of(addr, what) is None
    with lib.PhysMem() as m:
        offset = mem._image_offset(regs, m, what)[0]
    return (addr - pa) & MASK64 == offset


def identify(addr, what):
    """The lines whatis prints for addr: strings, or ("page", ...) for a kmem -p line."""
    regs = lib.mmu_regs()
    out = []
    kernel_half = kernel.geometry(regs, True, what).va_lo
    if addr < kernel_half:
        with lib.PhysMem() as m:
            w = mmu.translate(regs, m, addr)
        if w.stop != 0:
            raise kernel.error(what, "%x is a user address, not mapped in the current task's tables", addr)
        out.append("%x: user address of the current task, PA %x" % (addr, w.pa))
        return out
    with lib.PhysMem() as m:
        w = mmu.translate(regs, m, addr)
    pa = w.pa if w.stop == 0 else None
    where = "PA %x" % pa if pa is not None else "not mapped now"
    start, phys_start = kernel.linear_map(regs, what)
    shift, vbase, psize, max_pfn = mem._page_geometry(regs, what)
    module = module_of(addr, what)   # the module list, walked once
    if _in_image(regs, addr, pa, what):
        out.append("%x: kernel image, %s, %s" % (addr, _symbol(addr) or "no symbol", where))
    elif module:
        name, region = module
        out.append("%x: module %s (%s memory), %s, %s" % (addr, name, region, _symbol(addr) or "no symbol", where))
    elif vbase <= addr < vbase + max_pfn * psize:
        pfn, rest = divmod(addr - vbase, psize)
        out.append("%x: vmemmap, struct page of pfn %#x (PA %x)%s" % (
            addr, pfn, pfn << shift, " +%#x" % rest if rest else ""))
        out.append(("page", (vbase + pfn * psize) & MASK64, pfn, shift))
        return out
    else:
        va = vmap_area_of(addr, what)
        if va is not None:
            vm = int(va["vm"]) & MASK64
            text = "%x: vmalloc, vmap area %x-%x" % (addr, int(va["va_start"]), int(va["va_end"]))
            if vm:
                v = kernel.kstruct(vm, "struct vm_struct", what, "a vm_struct")
                caller = int(v["caller"]) & MASK64
                text += ", vm_struct %x size %d (with guard) %s, caller %s" % (
                    vm, int(v["size"]), _vm_flags(int(v["flags"])), _symbol(caller) or "%x" % caller)
            out.append(text + ", " + where)
            out += _stack_lines(addr, what)
        elif start <= addr and pa is not None and addr - start + phys_start == pa:
            out.append("%x: linear map, PA %x (pfn %#x)" % (addr, pa, pa >> shift))
            out += _stack_lines(addr, what)
        elif pa is None:
            raise kernel.error(what, "%x is not in any region klab knows, and not mapped: %s", addr, w.why.decode())
        else:
            out.append("%x: mapped at PA %x, in no region klab knows (fixmap, cpu entry area, ...)" % (addr, pa))
    if pa is not None and any(lo <= pa <= hi for lo, hi in kernel.ram_ranges(what)):
        _describe_ram(regs, addr, pa, what, out)
    elif pa is not None:
        out.append("  PA %x is not RAM" % pa)
    return out


class KlabWhatis(KlabCommand):
    """What a kernel address is: region, symbol, vmap area and caller, slab object, task stack, struct page.

Usage: klab whatis ADDRESS
  kernel image or module: the symbol and section;  vmalloc: the vmap area and its vm_struct's size, flags
  and caller (a task's stack says whose);  vmemmap: whose struct page;  linear map: the PA;  then, for RAM,
  the slab cache and object (allocated or free, from the slab's and the CPUs' freelists) and the struct page
  as kmem -p prints it. Every region comes from the kernel's own lists and trees, not from constants."""

    def __init__(self):
        super().__init__("klab whatis")

    def invoke(self, arg, from_tty):
        what = "whatis"
        if not arg.strip():
            raise kernel.error(what, "usage: klab whatis ADDRESS (any expression)")
        if not gdb.selected_inferior().pid:
            raise kernel.error(what, "no process attached (start with `klab gdb` or `target remote`)")
        addr = mmu.address(arg.strip(), what)
        for line in identify(addr, what):
            if isinstance(line, tuple):
                mem.print_page(line[1], line[2], line[3], what)
            else:
                gdb.write(line + "\n")


KlabWhatis()
