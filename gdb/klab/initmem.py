"""klab initmem-watch: what free_initmem really does to the init section, measured on the live kernel.

Breakpoints go on the call in kernel_init and on the instruction after it, found by disassembling
kernel_init: the name free_initmem can resolve to the wrong place (Debian's arm64 6.1 has a weak copy in
init/main.c and an inline one from include/linux/mm.h besides arch/arm64/mm/init.c's, and `info address`
names one the kernel never calls)."""

import ctypes
import re

import gdb

from klab import kernel, lib, mmu

MASK64 = kernel.MASK64
_CALL = re.compile(r"^\s*(?:=> )?0x([0-9a-f]+) <\+(\d+)>:\s+(?:call|callq|bl)\s+0x([0-9a-f]+) <free_initmem>")
_INSN = re.compile(r"^\s*(?:=> )?0x([0-9a-f]+) <\+(\d+)>:")
_SAMPLE = 16


def call_site(what):
    """(call address, return address, callee, offset in kernel_init) of kernel_init's call to free_initmem."""
    try:
        text = gdb.execute("disassemble kernel_init", to_string=True)
    except gdb.error as e:
        raise kernel.error(what, "cannot disassemble kernel_init: %s", e)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _CALL.match(line)
        if m:
            for nxt in lines[i + 1:]:
                n = _INSN.match(nxt)
                if n:
                    return int(m.group(1), 16), int(n.group(1), 16), int(m.group(3), 16), int(m.group(2))
    raise kernel.error(what, "kernel_init has no call to free_initmem in this kernel")


def _mapping(regs, mem, start, end):
    """(bytes mapped, [(perms, page size)] of the ranges) of [start, end) in the CPU's page tables."""
    o = lib.RangeOpts(va_start=start, va_end=end - 1)
    found = []

    def one(r):
        if r.kind == lib.RANGE_MAPPED:
            lo, hi = max(r.va_start, start), min(r.va_end, end)
            found.append((hi - lo, lib.perms_str(r.perms), r.page_size))

    lib.walk_ranges(regs, mem, o, one, "initmem-watch")
    return sum(f[0] for f in found), sorted({(f[1], f[2]) for f in found})


def _first_bytes(va):
    try:
        return gdb.selected_inferior().read_memory(va, _SAMPLE).tobytes()
    except gdb.MemoryError:
        return None


def snapshot(regions):
    """{region: (bytes mapped, [(perms, page size)], first bytes or None)} as the CPU sees them now."""
    regs = lib.mmu_regs()
    out = {}
    with lib.PhysMem() as mem:
        for name, (start, end) in regions.items():
            out[name] = _mapping(regs, mem, start, end) + (_first_bytes(start),)
    return out


def _describe(state, size):
    mapped, kinds, data = state
    where = "not mapped" if not mapped else "mapped %s of %s, %s" % (
        lib.size_str(mapped), lib.size_str(size), " ".join("%s %s" % (p, lib.size_str(s)) for p, s in kinds))
    return "%-40s bytes: %s" % (where, data.hex(" ") if data is not None else "cannot read (not mapped)")


def verdict(before, after, size):
    """What changed, in words, from two snapshots of one region."""
    said = []
    if before[0] and not after[0]:
        said.append("unmapped (a read now takes a translation fault)")
    elif before[0] != after[0]:
        said.append("mapping shrank from %s to %s" % (lib.size_str(before[0]), lib.size_str(after[0])))
    elif before[1] != after[1]:
        said.append("still mapped, permissions changed")
    else:
        said.append("still mapped, same permissions")
    if after[2] is not None and before[2] != after[2]:
        said.append("poisoned with 0x%02x (POISON_FREE_INITMEM)" % after[2][0] if len(set(after[2])) == 1
                    else "contents changed")
    elif after[2] is not None:
        said.append("contents unchanged")
    return "; ".join(said)


def _ptdiff_lines(before, regs, regions):
    """klab ptdiff from the call's snapshot to now, over each region: {region: [lines]}."""
    out = {}
    with lib.PhysMem() as mem, lib.Snapshot.take(regs, mem, -1, "initmem-watch: at the return", "initmem-watch") as now:
        for name, (start, end) in regions.items():
            out[name] = before.diff_text(now, start, end - 1, 0, "initmem-watch").splitlines()
    return out


class _Stop(gdb.Breakpoint):
    def __init__(self, address, on_hit):
        super().__init__("*0x%x" % address, internal=True, temporary=True)
        self.on_hit = on_hit

    def stop(self):
        return self.on_hit()


class _Watch:
    """One watch: the regions, the snapshot taken at the call, the report at the return."""
    active = []

    def __init__(self, call, ret, regions, header):
        self.regions, self.header, self.before, self.tables = regions, header, None, None
        self.breakpoints = [_Stop(call, self.at_call), _Stop(ret, self.at_return)]

    def at_call(self):
        # The linear map exists by now (on arm64 it does not at start_kernel): place the alias here.
        regs = lib.mmu_regs()
        begin, end = self.regions["image"]
        with lib.PhysMem() as mem:
            walk = mmu.translate(regs, mem, begin)
        if walk.stop == 0:
            alias = kernel.ptov(regs, walk.pa, "initmem-watch")
            self.regions["linear"] = (alias, alias + (end - begin))
            self.header += "  init section PA %x\n" % walk.pa
        self.before = snapshot(self.regions)
        # The whole page table too: at the return, klab ptdiff's words for what changed over each region.
        with lib.PhysMem() as mem:
            self.tables = lib.Snapshot.take(regs, mem, -1, "initmem-watch: at the call", "initmem-watch")
        return False                                   # keep going into free_initmem

    def at_return(self):
        after = snapshot(self.regions)
        gdb.write(self.header)
        for name, (start, end) in self.regions.items():
            gdb.write("  %-6s %x-%x\n" % (name, start, end))
            if self.before:
                gdb.write("    before: %s\n" % _describe(self.before[name], end - start))
            gdb.write("    after:  %s\n" % _describe(after[name], end - start))
            if self.before:
                gdb.write("    changed: %s\n" % verdict(self.before[name], after[name], end - start))
        if self.tables:
            self.report_ptdiff()
        _Watch.active.remove(self)
        return True                                    # stop here so the user can look

    def report_ptdiff(self):
        try:
            found = _ptdiff_lines(self.tables, lib.mmu_regs(), self.regions)
        finally:
            self.tables.__exit__(None, None, None)
            self.tables = None
        gdb.write("  page tables, call -> return (klab ptdiff):\n")
        for name, lines in found.items():
            for line in lines:
                gdb.write("    %-6s %s\n" % (name, line))


class KlabInitmemWatch(gdb.Command):
    """Watch free_initmem free the kernel's init section, and report what it did to it.

The init section is __init_begin..__init_end.

Usage: klab initmem-watch      (then continue)
Breaks where kernel_init really calls free_initmem and where the call returns; records, each time, the
mapping (from the page tables) and the first bytes of the init section at its kernel-image address and at
its linear-map alias; stops after the return and prints what changed: arm64 unmaps the image range, x86_64
keeps it mapped and poisons it with 0xcc. Then the page tables' own account (klab ptdiff of a snapshot at
the call against the return, over each region). Set it before kernel_init runs (klab gdb stops at start_kernel)."""

    def __init__(self):
        super().__init__("klab initmem-watch", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        what = "initmem-watch"
        if arg.strip():
            raise kernel.error(what, "takes no arguments")
        regs = lib.mmu_regs()
        # include/linux/kernel.h: free_initmem runs while system_state is still SYSTEM_SCHEDULING.
        try:
            state = int(gdb.parse_and_eval("(int)system_state"))
            running = int(gdb.parse_and_eval("(int)SYSTEM_RUNNING"))
        except gdb.error as e:
            raise kernel.error(what, "cannot read system_state: %s", e)
        if state >= running:
            raise kernel.error(what, "free_initmem has already run (system_state is past SYSTEM_SCHEDULING); "
                               "boot a fresh VM and set the watch at start_kernel")
        call, ret, callee, offset = call_site(what)
        begin = kernel.address_of("__init_begin", what)
        end = kernel.address_of("__init_end", what)
        with lib.PhysMem() as mem:
            walk = mmu.translate(regs, mem, begin)
        if walk.stop != 0:
            raise kernel.error(what, "__init_begin %x is not mapped now: %s", begin, walk.why.decode())
        regions = {"image": (begin, end)}
        for w in _Watch.active:
            for b in w.breakpoints:
                if b.is_valid():
                    b.delete()
        _Watch.active = [_Watch(call, ret, regions, "klab initmem-watch: free_initmem (%x) returned to "
                                "kernel_init+%d; init section %s\n" % (
                                    callee, offset + (ret - call), lib.size_str(end - begin)))]
        gdb.write("klab initmem-watch: kernel_init+%d calls free_initmem at %x (info address says %x); watching "
                  "%x-%x and its linear-map alias; continue to see it run\n" % (
                      offset, callee, kernel.address_of("free_initmem", what), begin, end))


KlabInitmemWatch()
