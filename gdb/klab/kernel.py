"""Reading the kernel's own data through gdb: symbols, per-CPU variables, tasks, the linear map and the
struct page array. Every layout fact comes from the kernel's DWARF or its live variables; the page size and
the start of the kernel half come from libklab's reading of the MMU registers. No MMU rule lives here."""

import ctypes
import sys

import gdb

from klab import arch, lib

MASK64 = (1 << 64) - 1


def error(what, fmt, *args):
    return gdb.GdbError(("klab %s: " % what) + (fmt % args if args else fmt))


def has_symbol(name):
    return gdb.lookup_global_symbol(name) is not None or gdb.lookup_static_symbol(name) is not None


def symbol_value(name, what):
    """The variable `name` as a gdb.Value (error when this kernel has no such symbol)."""
    try:
        return gdb.parse_and_eval(name)
    except gdb.error:
        raise error(what, "this kernel has no symbol %s", name)


def address_of(name, what):
    return int(symbol_value(name, what).address) & MASK64


def lookup_type(name, what):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise error(what, "this kernel's debug info has no %s", name)


_HAS_FIELD = {}


def has_field(gdb_type, field):
    """Whether a struct has a direct member of that name; kept per type, since a type's fields are read from
    DWARF each time gdb is asked (Type.fields() costs ~0.1 ms, and bt --all asks twice per task)."""
    t = gdb_type.strip_typedefs()
    key = (str(t), field)
    if key not in _HAS_FIELD:
        _HAS_FIELD[key] = any(f.name == field for f in t.fields())
    return _HAS_FIELD[key]


def value_at(addr, type_name, what):
    """*(type *)addr as a gdb.Value (lazy: reading a field may still fail; see read_int)."""
    return gdb.Value(addr & MASK64).cast(lookup_type(type_name, what).pointer()).dereference()


def cpu_mode():
    """(in user mode, words) for the selected CPU: arm64 PSTATE.EL (Arm ARM D1.4, CPSR M[3:2]), x86 the CPL in
    CS (SDM Vol. 3A 5.5)."""
    return arch.current().cpu_mode()


def read_int(value, what, describe):
    try:
        return int(value) & MASK64
    except gdb.MemoryError:
        if cpu_mode()[0]:
            raise error(what, "cannot read %s: the CPU runs user code, and QEMU's stub reads with user permissions; "
                        "stop in the kernel (e.g. hbreak on a system call)", describe)
        raise error(what, "cannot read %s (not mapped in the CPU's current page tables)", describe)
    except gdb.error as e:
        raise error(what, "cannot read %s: %s", describe, e)


def read_string(chars, what, describe):
    try:
        return chars.string(length=chars.type.sizeof).split("\0")[0]
    except (gdb.MemoryError, gdb.error):
        raise error(what, "cannot read %s", describe)


def container_of(ptr, type_name, field, what):
    """The struct that holds the list_head (or other member) at ptr, as a gdb.Value."""
    t = lookup_type(type_name, what)
    offset = None
    for f in t.fields():
        if f.name == field:
            offset = f.bitpos // 8
    if offset is None:
        raise error(what, "%s has no member %s in this kernel", type_name, field)
    return value_at((int(ptr) - offset) & MASK64, type_name, what)


# ---- kernel memory while the CPU runs user code --------------------------------------------------------

def _kernel_roots(regs, what):
    """Candidate registers for the kernel's view of memory from a CPU stopped in user mode: as they are (QEMU's
    stub reads with the current exception level's permissions, so EL0/CPL3 cannot read kernel pages even
    where they are mapped), then as the entry code would switch them with the kernel unmapped at user level.
    arm64 KPTI: TTBR1_EL1 holds tramp_pg_dir, at a fixed distance from swapper_pg_dir
    (arch/arm64/kernel/vmlinux.lds.S; entry.S tramp_map_kernel). x86 PTI: the user PGD is the kernel's plus
    4K (arch/x86/entry/calling.h SWITCH_TO_KERNEL_CR3 clears bit 12 and the PCID bits)."""
    yield regs
    other = arch.of(regs).kernel_view(regs, sys.modules[__name__], what)
    if other is not None:
        yield other


# The RAM file, when klab started the VM, reads kernel memory without a round trip to the stub per read: the
# selected CPU's registers are read once per stop and CPU, then every read is a libklab walk and a memcpy.
_FAST = {"key": None, "mem": None, "roots": None}


def _forget_fast():
    if _FAST["mem"] is not None:
        _FAST["mem"].close()
    _FAST.update(key=None, mem=None, roots=None)


_PER_STOP = {}


def per_stop(key, compute):
    """compute(), kept until the target runs or changes: for facts of kernel memory that one stop cannot change
    (the module list), asked once per task by commands that walk every task."""
    if key not in _PER_STOP:
        _PER_STOP[key] = compute()
    return _PER_STOP[key]


def _target_moved(*_):
    """What is kept per stop (registers, the thread list, per_stop facts) is stale once the target runs or
    changes."""
    _forget_fast()
    _THREADS.clear()
    _PER_STOP.clear()


for _event in (gdb.events.cont, gdb.events.stop, gdb.events.exited, gdb.events.register_changed):
    _event.connect(_target_moved)


def target_replaced():
    """gdb is attached to another QEMU at the same address (klab reset): nothing kept of the old one holds, the
    RAM file it had open least of all (the new machine's is a new file)."""
    _target_moved()


def _fast_roots(what):
    """(RAM-file source, candidate registers) for the selected CPU at this stop, or None without a RAM file."""
    thread = gdb.selected_thread()
    key = (gdb.selected_inferior().pid, thread.ptid if thread else None)
    if _FAST["key"] != key:
        _forget_fast()
        mem = lib.PhysMem(ram_file_only=True)
        if mem.handle is None:
            return None
        _FAST.update(key=key, mem=mem, roots=list(_kernel_roots(lib.mmu_regs(), what)))
    return _FAST["mem"], _FAST["roots"]


def _read_translated(mem, roots, addr, size, what, describe):
    """size bytes at addr through the first root that maps each page; raises with the last walk's reason."""
    out = bytearray(size)
    done = 0
    while done < size:
        va = (addr + done) & MASK64
        for regs in roots:
            w = lib.Walk()
            if lib.lib().klab_translate(ctypes.byref(regs), mem.handle, va, ctypes.byref(w)) == 0:
                break
        else:
            raise error(what, "cannot read %s at %x: %s", describe, va, w.why.decode())
        n = min(size - done, w.page_size - (w.pa & (w.page_size - 1)))
        buf = (ctypes.c_char * n).from_buffer(out, done)
        if lib.lib().klab_physmem_read(mem.handle, w.pa, buf, n) != 0:
            raise error(what, "cannot read %s at PA %x", describe, w.pa)
        done += n
    return bytes(out)


def kread(addr, size, what, describe):
    """size bytes of kernel memory at addr: from the RAM file through the kernel's page tables when klab
    started the VM, else through gdb, else (a CPU in user mode, where the stub cannot read kernel pages)
    through the page tables and the stub's physical mode."""
    fast = _fast_roots(what)
    if fast is not None:
        return _read_translated(fast[0], fast[1], addr, size, what, describe)
    try:
        return gdb.selected_inferior().read_memory(addr, size).tobytes()
    except gdb.MemoryError:
        pass
    with lib.PhysMem() as mem:
        return _read_translated(mem, list(_kernel_roots(lib.mmu_regs(), what)), addr, size, what, describe)


def kread_u64(addr, what, describe):
    return int.from_bytes(kread(addr, 8, what, describe), "little")


def kstruct(addr, type_name, what, describe):
    """*(type *)addr read whole with kread (so also while the CPU runs user code), as a gdb.Value whose fields
    are in hand; pointers in it are followed with another kstruct."""
    t = lookup_type(type_name, what)
    return gdb.Value(kread(addr & MASK64, t.sizeof, what, describe), t)


def kstring(addr, what, describe, limit=256):
    """A NUL-terminated string of kernel memory, read with kread a piece at a time."""
    out = b""
    while len(out) < limit:
        piece = kread((addr + len(out)) & MASK64, 16, what, describe)
        if b"\0" in piece:
            return (out + piece[:piece.index(b"\0")]).decode(errors="replace")
        out += piece
    return out.decode(errors="replace")


# gdb's expression evaluator takes milliseconds per call: offsets are computed once per set of symbol files
_OFFSETS = {}
gdb.events.new_objfile.connect(lambda event: _OFFSETS.clear())
gdb.events.clear_objfiles.connect(lambda event: _OFFSETS.clear())


def field_offset(type_name, field, what):
    """offsetof(type, field), field may be a path (a.b) or lie in anonymous unions."""
    key = (type_name, field)
    if key not in _OFFSETS:
        try:
            _OFFSETS[key] = int(gdb.parse_and_eval("(unsigned long)&((%s *)0)->%s" % (type_name, field)))
        except gdb.error:
            _OFFSETS[key] = None
    if _OFFSETS[key] is None:
        raise error(what, "%s has no member %s in this kernel", type_name, field)
    return _OFFSETS[key]


def has_member(type_name, field):
    """Whether field_offset(type_name, field) exists (anonymous unions included)."""
    try:
        field_offset(type_name, field, "")
        return True
    except gdb.GdbError:
        return False


# ---- CPUs and per-CPU variables ------------------------------------------------------------------------

_THREADS = {}


def cpu_threads():
    """QEMU's stub shows one thread per CPU, numbered from 1 (CPU index + 1). Asking gdb costs two round trips
    to the stub (qfThreadInfo), so the list is kept until the target runs again."""
    pid = gdb.selected_inferior().pid
    if pid not in _THREADS:
        _THREADS.clear()
        _THREADS[pid] = sorted(gdb.selected_inferior().threads(), key=lambda t: t.ptid[1] or t.num)
    return _THREADS[pid]


def select_cpu(cpu, what):
    """Switches gdb to CPU cpu's thread; returns the previously selected thread (to switch back)."""
    previous = gdb.selected_thread()
    for t in cpu_threads():
        if (t.ptid[1] or t.num) == cpu + 1:
            t.switch()
            return previous
    raise error(what, "no CPU %d (this VM has %d)", cpu, len(cpu_threads()))


def selected_cpu():
    t = gdb.selected_thread()
    if t is None:
        raise gdb.GdbError("klab: no process attached (start with `klab gdb` or `target remote`)")
    return (t.ptid[1] or t.num) - 1


def per_cpu_offset(cpu, what):
    """__per_cpu_offset[cpu]: what the kernel adds to a per-CPU symbol's address for that CPU
    (include/asm-generic/percpu.h; on x86_64 the per-CPU section is linked at 0)."""
    return kread_u64(address_of("__per_cpu_offset", what) + 8 * cpu, what, "__per_cpu_offset[%d]" % cpu)


def per_cpu_address(name, cpu, what, offset=None):
    base = per_cpu_offset(cpu, what) if offset is None else offset
    return (address_of(name, what) + base) & MASK64


# ---- tasks ---------------------------------------------------------------------------------------------

def thread_size(what):
    """THREAD_SIZE, a task's kernel stack: the size of union thread_union, or of init_stack where the union is
    gone (include/linux/sched/task.h; init_stack is THREAD_SIZE bytes)."""
    if has_symbol("init_thread_union"):
        return lookup_type("union thread_union", what).sizeof
    return int(gdb.parse_and_eval("sizeof(init_stack)"))


def task_pointer(addr, what):
    return gdb.Value(addr & MASK64).cast(lookup_type("struct task_struct", what).pointer())


def list_entries(head_addr, type_name, field, what, limit=1 << 16):
    """The containers of a circular list_head, starting after the head (the links read with kread)."""
    off = field_offset(type_name, field, what)
    node = kread_u64(head_addr, what, "a list head")
    seen = 0
    while node != head_addr:
        if not node:
            raise error(what, "broken list at %x (NULL next)", head_addr)
        yield value_at((node - off) & MASK64, type_name, what)
        node = kread_u64(node, what, "a list link")
        seen += 1
        if seen > limit:
            raise error(what, "list at %x does not close after %d entries", head_addr, limit)


def processes(what):
    """init_task, then every task on init_task.tasks (thread-group leaders)."""
    init = symbol_value("init_task", what)
    yield init
    yield from list_entries(int(init["tasks"].address), "struct task_struct", "tasks", what)


def threads_of(leader, what):
    """A leader's thread group: signal->thread_head / thread_node (v5.x+), else the older thread_group list."""
    task_t = lookup_type("struct task_struct", what)
    if has_field(task_t, "thread_node"):
        # the signal pointer with kread (the RAM file when there is one): one stub round trip less per process
        signal = kread_u64(int(leader.address) + field_offset("struct task_struct", "signal", what), what,
                           "a task's signal")
        head = (signal + field_offset("struct signal_struct", "thread_head", what)) & MASK64
        yield from list_entries(head, "struct task_struct", "thread_node", what)
    else:
        yield leader
        yield from list_entries(int(leader["thread_group"].address), "struct task_struct", "thread_group", what)


def all_tasks(what):
    """Every task: each process's threads, and each CPU's idle task (which no list holds but init_task)."""
    seen = set()
    for leader in processes(what):
        group = [leader] if int(leader.address) == address_of("init_task", what) else list(threads_of(leader, what))
        for t in group or [leader]:
            a = int(t.address)
            if a not in seen:
                seen.add(a)
                yield t
    for cpu in range(len(cpu_threads())):
        idle = runqueue(cpu, what)["idle"]
        if int(idle) and int(idle) not in seen:
            seen.add(int(idle))
            yield idle.dereference()


def task_by_pid(pid, what):
    for t in all_tasks(what):
        if int(t["pid"]) == pid:
            return t
    raise error(what, "no task with pid %d", pid)


def task_cpu(task):
    """thread_info.cpu with THREAD_INFO_IN_TASK since v5.16, task->cpu before."""
    if has_field(task["thread_info"].type, "cpu"):
        return int(task["thread_info"]["cpu"])
    return int(task["cpu"])


def task_comm(task, what):
    return read_string(task["comm"], what, "task %x comm" % int(task.address))


def runqueue(cpu, what):
    return value_at(per_cpu_address("runqueues", cpu, what), "struct rq", what)


# ---- memory layout -------------------------------------------------------------------------------------

def geometry(regs, upper, what):
    g, err = lib.Geometry(), lib.Error()
    if lib.lib().klab_geometry(ctypes.byref(regs), upper, ctypes.byref(g), ctypes.byref(err)) != 0:
        raise error(what, "%s", err)
    return g


def page_shift(regs, what):
    """The kernel's page size: the granule of the root that translates the kernel half."""
    return geometry(regs, True, what).granule_shift


def linear_map(regs, what):
    """(start VA, PA that start maps): x86_64 page_offset_base and 0 (arch/x86/include/asm/page_64.h
    __va); arm64 PAGE_OFFSET = the lowest TTBR1 address and memstart_addr (arch/arm64/include/asm/memory.h
    __phys_to_virt: (pa - PHYS_OFFSET) | PAGE_OFFSET). Live values, so KASLR's moves are followed."""
    return arch.of(regs).linear_map(regs, sys.modules[__name__], what)


def ram_ranges(what):
    """The physical RAM ranges [(start, end_inclusive)]: the kernel's own "System RAM" resources (what
    /proc/iomem lists, kernel/resource.c), or, before the kernel has registered them (at start_kernel), the
    machine's RAM as klab gave it to QEMU (the run state's ram_region lines). [] when neither is known."""
    ranges = []
    try:
        res = gdb.parse_and_eval("iomem_resource")["child"]
        for _ in range(4096):
            if not int(res):
                break
            name = res["name"].string() if int(res["name"]) else ""
            if name == "System RAM":
                ranges.append((int(res["start"]), int(res["end"])))
            res = res["sibling"]
    except (gdb.error, gdb.MemoryError):
        ranges = []
    if ranges:
        return ranges
    from klab import vm
    state = vm.load_state() or {}
    for line in state.get("ram_regions", []):
        try:
            gpa, size = (int(x, 16) for x in line.split()[:2])
        except ValueError:
            continue
        ranges.append((gpa, gpa + size - 1))
    return ranges


def check_ram(pa, what):
    """Refuses a PA outside RAM (one line saying where RAM is): a linear-map address for it would be made
    up. Says nothing when RAM is unknown, so the caller's walk-back check still decides."""
    ranges = ram_ranges(what)
    if ranges and not any(lo <= pa <= hi for lo, hi in ranges):
        raise error(what, "%#x is not RAM (RAM: %s)", pa, ", ".join("%#x-%#x" % r for r in ranges))


def ptov(regs, pa, what):
    start, phys_start = linear_map(regs, what)
    return arch.of(regs).ptov(pa, start, phys_start)


def struct_page_size(what):
    return lookup_type("struct page", what).sizeof


def vmemmap(page_size, what):
    """The base of the struct page array, pfn_to_page(pfn) = vmemmap + pfn (SPARSEMEM_VMEMMAP). Taken from
    the kernel's own mem_section: each present section stores its mem_map minus its first pfn
    (mm/sparse.c sparse_encode_mem_map), which with a virtual memmap is vmemmap itself; the low
    SECTION_MAP_LAST_BIT bits are flags (include/linux/mmzone.h)."""
    ms = symbol_value("mem_section", what)
    try:
        flag_bits = int(gdb.parse_and_eval("(int)SECTION_MAP_LAST_BIT"))
    except gdb.error:
        raise error(what, "this kernel's debug info has no SECTION_MAP_LAST_BIT (sparse memory model needed)")
    section_t = lookup_type("struct mem_section", what)
    # SECTIONS_PER_ROOT is PAGE_SIZE / sizeof(struct mem_section) with SPARSEMEM_EXTREME
    per_root = page_size // section_t.sizeof if ms.type.code == gdb.TYPE_CODE_PTR else ms.type.range()[1] + 1
    roots = 64 if ms.type.code == gdb.TYPE_CODE_PTR else ms.type.range()[1] + 1
    try:
        for r in range(roots):
            root = ms[r]
            if ms.type.code == gdb.TYPE_CODE_PTR and not int(root):
                continue
            for i in range(per_root):
                enc = int(root[i]["section_mem_map"]) & MASK64
                if enc:
                    return enc & ~((1 << flag_bits) - 1) & MASK64
    except gdb.MemoryError:
        raise error(what, "cannot read mem_section")
    raise error(what, "no present memory section found in mem_section")
