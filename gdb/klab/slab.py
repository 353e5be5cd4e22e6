"""klab slab: SLUB's caches as crash's `kmem -s` lists them, counted as /proc/slabinfo counts them
(mm/slub.c get_slabinfo), and the slab object an address lies in (for klab whatis). Layouts come from the
DWARF: struct slab (v5.17+) or struct page before it, kmem_cache, kmem_cache_node, kmem_cache_cpu."""

import gdb

from klab.command import KlabCommand
from klab import kernel, lib, mem

# include/linux/slub_def.h: oo packs the order above OO_SHIFT and the objects per slab below it
_OO_SHIFT = 16


def _slab_type(what):
    """The name of struct slab since v5.17 (mm/slab.h), which overlays struct page; struct page before."""
    try:
        gdb.lookup_type("struct slab")
        return "struct slab"
    except gdb.error:
        kernel.lookup_type("struct page", what)
        return "struct page"


def _member(value, name):
    """A member of value, also one inside anonymous unions and structs (struct slab's counters)."""
    t = value.type.strip_typedefs()
    for f in t.fields():
        if f.name == name:
            return value[f]
        if f.name is None and f.type.strip_typedefs().code in (gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_STRUCT):
            try:
                return _member(value[f], name)
            except KeyError:
                pass
    raise KeyError(name)


def member(value, name, what):
    try:
        return _member(value, name)
    except KeyError:
        raise kernel.error(what, "%s has no member %s in this kernel", value.type, name)


def caches(what):
    """(address, struct kmem_cache read whole) of every cache on slab_caches (mm/slab_common.c)."""
    if not kernel.has_symbol("slab_caches"):
        raise kernel.error(what, "this kernel has no slab_caches list")
    if kernel.has_symbol("cache_chain") or not kernel.has_field(kernel.lookup_type("struct kmem_cache", what),
                                                                "cpu_slab"):
        raise kernel.error(what, "this kernel's allocator is not SLUB (no kmem_cache.cpu_slab)")
    head = kernel.address_of("slab_caches", what)
    off = kernel.field_offset("struct kmem_cache", "list", what)
    node = kernel.kread_u64(head, what, "slab_caches")
    for _ in range(1 << 14):
        if node == head:
            return
        if not node:
            raise kernel.error(what, "broken slab_caches list (NULL next)")
        yield node - off, kernel.kstruct(node - off, "struct kmem_cache", what, "a kmem_cache at %x" % (node - off))
        node = kernel.kread_u64(node, what, "slab_caches")
    raise kernel.error(what, "slab_caches does not close")


def cache_name(s, what):
    return kernel.kstring(int(s["name"]), what, "a cache name", 64)


_NODE_IDS = {}


def _node_ids(what):
    """nr_node_ids (mm/page_alloc.c), read once per stop: gdb's evaluator is slow and it never changes."""
    key = gdb.selected_inferior().pid, gdb.selected_thread().ptid
    if key not in _NODE_IDS:
        _NODE_IDS.clear()
        _NODE_IDS[key] = int.from_bytes(kernel.kread(kernel.address_of("nr_node_ids", what), 4, what, "nr_node_ids"),
                                        "little") if kernel.has_symbol("nr_node_ids") else 1
    return _NODE_IDS[key]


def _nodes(s, what):
    """(address, struct kmem_cache_node) for each node that has one. s->node[] is declared MAX_NUMNODES long
    but a cache is allocated with only nr_node_ids of them (mm/slab_common.c create_boot_cache,
    kmem_cache_init): entries past those are other memory."""
    nodes = s["node"]
    for i in range(min(nodes.type.range()[1] + 1, _node_ids(what))):
        p = int(nodes[i]) & kernel.MASK64
        if p:
            yield p, kernel.kstruct(p, "struct kmem_cache_node", what, "kmem_cache_node %x" % p)


def _list_offset(slab_type, what):
    """Where a slab links into a node's partial list: slab_list (struct slab, and struct page since v4.19),
    else lru."""
    for field in ("slab_list", "lru"):
        if kernel.has_member(slab_type, field):
            return kernel.field_offset(slab_type, field, what)
    raise kernel.error(what, "%s has neither slab_list nor lru", slab_type)


def _partial_slabs(n_addr, n, what):
    """The slabs on a node's partial list, read whole; nr_partial bounds the walk (a corrupt list cannot hang
    it) and a list that does not close within it is an error."""
    slab_type = _slab_type(what)
    off = _list_offset(slab_type, what)
    head = n_addr + kernel.field_offset("struct kmem_cache_node", "partial", what)
    node = int(n["partial"]["next"]) & kernel.MASK64
    for _ in range(int(n["nr_partial"]) + 1):
        if node == head:
            return
        if not node:
            raise kernel.error(what, "broken partial list at %x (NULL next)", head)
        yield kernel.kstruct(node - off, slab_type, what, "a slab at %x" % (node - off))
        node = kernel.kread_u64(node, what, "a partial list")
    raise kernel.error(what, "the partial list at %x holds more than nr_partial slabs", head)


def counts(s, what):
    """(active objects, total objects, slabs) as get_slabinfo: per node total_objects and nr_slabs
    (CONFIG_SLUB_DEBUG), less the free objects of the node partial lists (objects - inuse)."""
    total = slabs = free = 0
    for n_addr, n in _nodes(s, what):
        if not kernel.has_field(n.type, "total_objects"):
            raise kernel.error(what, "this kernel has no CONFIG_SLUB_DEBUG: SLUB keeps no per-node counts")
        total += int(n["total_objects"]["counter"])
        slabs += int(n["nr_slabs"]["counter"])
        for slab in _partial_slabs(n_addr, n, what):
            free += int(member(slab, "objects", what)) - int(member(slab, "inuse", what))
    return total - free, total, slabs


def order_objects(s):
    x = int(s["oo"]["x"])
    return x >> _OO_SHIFT, x & ((1 << _OO_SHIFT) - 1)


def find_cache(name, what):
    for addr, s in caches(what):
        if cache_name(s, what) == name:
            return addr, s
    raise kernel.error(what, "no slab cache named '%s' (klab slab lists them)", name)


# ---- an address in a slab --------------------------------------------------------------------------------

def _swab64(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def _free_pointer(s, obj, what):
    """The next free object after obj (mm/slub.c get_freepointer / freelist_ptr_decode): stored at
    obj + s->offset, XORed with s->random and the byte-swapped address it is stored at when the kernel has
    CONFIG_SLAB_FREELIST_HARDENED (kmem_cache.random exists)."""
    at = (obj + int(s["offset"])) & kernel.MASK64
    raw = kernel.kread_u64(at, what, "a free pointer")
    if kernel.has_field(s.type, "random"):
        raw ^= (int(s["random"]) & kernel.MASK64) ^ _swab64(at)
    return raw


def _freelist(s, head, base, end, limit, what):
    """The objects of a freelist starting at head; None when a pointer leaves [base, end) (not decodable)."""
    out = set()
    p = head
    while p and len(out) <= limit:
        if not base <= p < end or (p - base) % int(s["size"]):
            return None
        out.add(p)
        p = _free_pointer(s, p, what)
    return out


def _cpu_freelists(s, what):
    """{struct slab address: that CPU's freelist head} for each CPU's active slab of the cache
    (kmem_cache_cpu.slab since v5.17, .page before): its free objects are on the CPU's list, not the slab's."""
    out = {}
    for cpu in range(len(kernel.cpu_threads())):
        c_addr = (int(s["cpu_slab"]) + kernel.per_cpu_offset(cpu, what)) & kernel.MASK64
        c = kernel.kstruct(c_addr, "struct kmem_cache_cpu", what, "kmem_cache_cpu of CPU %d" % cpu)
        slab_addr = int(c["slab" if kernel.has_field(c.type, "slab") else "page"]) & kernel.MASK64
        if slab_addr:
            out[slab_addr] = int(c["freelist"]) & kernel.MASK64
    return out


def _free_objects(s, slab, slab_addr, base, cpu_lists, what):
    """The free objects of one slab (a set), or None when a freelist pointer does not decode."""
    size, objects = int(s["size"]), int(member(slab, "objects", what))
    end = base + size * objects
    free = _freelist(s, int(member(slab, "freelist", what)) & kernel.MASK64, base, end, objects, what)
    if slab_addr in cpu_lists:
        more = _freelist(s, cpu_lists[slab_addr], base, end, objects, what)
        free = None if free is None or more is None else free | more
    return free


def object_of(slab_addr, base, addr, what):
    """(cache name, object size, object address, 'allocated'/'free'/None) for addr in the slab whose struct
    slab (or head struct page) is at slab_addr and whose memory starts at base."""
    slab = kernel.kstruct(slab_addr, _slab_type(what), what, "the slab at %x" % slab_addr)
    s_addr = int(member(slab, "slab_cache", what)) & kernel.MASK64
    s = kernel.kstruct(s_addr, "struct kmem_cache", what, "the kmem_cache at %x" % s_addr)
    size, objects = int(s["size"]), int(member(slab, "objects", what))
    end = base + size * objects
    if not base <= addr < end:
        return cache_name(s, what), size, None, None
    obj = base + (addr - base) // size * size
    free = _free_objects(s, slab, slab_addr, base, _cpu_freelists(s, what), what)
    state = None if free is None else "free" if obj in free else "allocated"
    return cache_name(s, what), size, obj, state


def _slab_test(what):
    """A test on a struct page's raw words: is it the head page of a slab? PG_slab in flags until v6.9;
    since v6.10 a page type (mem.py reads which encoding this kernel has)."""
    names = mem._flag_names(what)
    bit = next((b for b, n in names.items() if n == "slab"), None)
    if bit is not None:
        return lambda flags, page_type: flags >> bit & 1
    top_byte, base, types = mem._page_types()
    value = dict(types).get("slab")
    if value is None:
        raise kernel.error(what, "this kernel marks slab pages neither with PG_slab nor with a slab page type")
    if top_byte:
        return lambda flags, page_type: page_type >> 24 == value
    return lambda flags, page_type: page_type & (base | value) == base


def slabs_of(cache_addr, what):
    """[(struct slab address, pfn)] of every slab of the cache, found by scanning the struct page array over
    RAM: SLUB keeps full slabs on no list unless a cache has debugging on (mm/slub.c add_full), so the lists
    alone would miss them."""
    regs = lib.mmu_regs()
    shift, vbase, psize, max_pfn = mem._page_geometry(regs, what)
    slab_type = _slab_type(what)
    is_slab = _slab_test(what)
    off_head = kernel.field_offset("struct page", "compound_head", what)
    off_cache = kernel.field_offset(slab_type, "slab_cache", what)
    off_type = kernel.field_offset("struct page", "page_type", what) if kernel.has_member("struct page", "page_type") \
        else None
    if psize % 8 or off_head % 8 or off_cache % 8:
        raise kernel.error(what, "struct page's layout is not 8-byte aligned here")
    out = []
    step = 4096
    for lo, hi in kernel.ram_ranges(what):
        first, last = lo >> shift, min(hi >> shift, max_pfn - 1)
        for pfn0 in range(first, last + 1, step):
            n = min(step, last + 1 - pfn0)
            raw = kernel.kread((vbase + pfn0 * psize) & kernel.MASK64, n * psize, what, "the struct page array")
            q, d = memoryview(raw).cast("Q"), memoryview(raw).cast("I")
            for i in range(n):
                w = i * psize // 8
                if q[w + off_cache // 8] != cache_addr or q[w + off_head // 8] & 1:
                    continue
                if is_slab(q[w], d[(i * psize + off_type) // 4] if off_type is not None else 0):
                    out.append(((vbase + (pfn0 + i) * psize) & kernel.MASK64, pfn0 + i))
    return out


def print_objects(cache_addr, s, what):
    """crash's kmem -S: each slab, then its objects, [allocated] in brackets and free ones bare."""
    regs = lib.mmu_regs()
    shift = kernel.page_shift(regs, what)
    cpu_lists = _cpu_freelists(s, what)
    size = int(s["size"])
    total = allocated = 0
    for slab_addr, pfn in slabs_of(cache_addr, what):
        slab = kernel.kstruct(slab_addr, _slab_type(what), what, "the slab at %x" % slab_addr)
        base = kernel.ptov(regs, pfn << shift, what)
        objects = int(member(slab, "objects", what))
        free = _free_objects(s, slab, slab_addr, base, cpu_lists, what)
        gdb.write("  SLAB              MEMORY            TOTAL  ALLOCATED  FREE%s\n" % (
            "  (CPU slab)" if slab_addr in cpu_lists else ""))
        nfree = len(free) if free is not None else None
        gdb.write("  %-16x  %-16x  %5d  %9s  %4s\n" % (slab_addr, base, objects,
                                                    objects - nfree if free is not None else "?",
                                                    nfree if free is not None else "?"))
        for k in range(objects):
            obj = base + k * size
            gdb.write(("   %x\n" if free is not None and obj in free else "  [%x]\n" if free is not None
                       else "  ?%x\n") % obj)
        total += objects
        allocated += objects - nfree if free is not None else 0
    gdb.write("%d objects in %s's slabs, %d allocated (a CPU's own free list counted as free)\n" % (
        total, cache_name(s, what), allocated))


class KlabSlab(KlabCommand):
    """SLUB's caches as crash's kmem -s lists them, counted as /proc/slabinfo counts them.

Usage: klab slab [CACHE] [--objects]
  CACHE      only the cache of that name (e.g. kmalloc-64, task_struct)
  --objects  with CACHE: every slab of it (found in the struct page array) and each object, as crash's
             kmem -S prints them: [allocated] in brackets, free ones bare (from the slab's freelist and the
             CPUs' own, CONFIG_SLAB_FREELIST_HARDENED decoded), ? when a freelist does not decode
Columns: CACHE (struct kmem_cache address), OBJSIZE (object_size), ALLOCATED and TOTAL objects, SLABS, SSIZE
(slab size), NAME. ALLOCATED is TOTAL less the free objects of the node partial lists, as get_slabinfo()
counts (mm/slub.c): free objects on a CPU's own slab count as allocated there too. Needs CONFIG_SLUB_DEBUG
(per-node counts), which Debian's kernels have."""

    OPTIONS = ("--objects",)

    def __init__(self):
        super().__init__("klab slab")

    def invoke(self, arg, from_tty):
        what = "slab"
        words = gdb.string_to_argv(arg)
        objects = "--objects" in words
        words = [w for w in words if w != "--objects"]
        if len(words) > 1 or (words and words[0].startswith("-")) or (objects and not words):
            raise kernel.error(what, "usage: klab slab [CACHE] [--objects]  (--objects wants a CACHE)")
        if not gdb.selected_inferior().pid:
            raise kernel.error(what, "no process attached (start with `klab gdb` or `target remote`)")
        shift = kernel.page_shift(lib.mmu_regs(), what)
        chosen = [find_cache(words[0], what)] if words else list(caches(what))
        gdb.write("CACHE             OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE  NAME\n")
        for addr, s in chosen:
            active, total, slabs = counts(s, what)
            order, _ = order_objects(s)
            gdb.write("%-16x  %7d  %9d  %8d  %5d  %4dk  %s\n" % (
                addr, int(s["object_size"]), active, total, slabs, (1 << (shift + order)) >> 10,
                cache_name(s, what)))
        if objects:
            print_objects(chosen[0][0], chosen[0][1], what)


KlabSlab()
