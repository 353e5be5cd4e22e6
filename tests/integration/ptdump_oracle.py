"""An oracle for `klab ptdump`, run inside gdb on the same stopped VM: for sampled ranges of the dump, the
first, middle and last page are translated by QEMU (`monitor gva2gpa`), and their permissions are computed
here from the raw table entries that gdb itself reads in QEMU's physical mode, by the architecture's rules
written out below (not klab's): Intel SDM Vol. 3A 4.5 and 4.6 (access rights over all levels), Arm ARM
D8.3-D8.4 (descriptor formats, APTable/PXNTable/UXNTable, AP[2:1], PXN/UXN) and D8.4.1.2.1 (EL1 cannot
execute what EL0 can write).
    KLAB_TEST_DUMP=dump | KLAB_TEST_DUMP_CMD='klab ptdump ...'  KLAB_TEST_LABEL=label  gdb ... -ex 'source ptdump_oracle.py'"""
import os
import re
import struct

import gdb

LABEL = os.environ["KLAB_TEST_LABEL"]
MASK64 = (1 << 64) - 1


def ok(name):
    print("ok - %s: %s" % (LABEL, name))


def fail(name, why):
    print(("not ok - %s: %s: %s" % (LABEL, name, why)).replace("\n", "\n    "))


def reg(name):
    return int(gdb.parse_and_eval("$" + name)) & MASK64


def read64(pa):
    return struct.unpack("<Q", bytes(gdb.selected_inferior().read_memory(pa, 8)))[0]


def walk_x86(va, cr3, la57):
    """(pa, 'rwx/rwx') or None: kernel and user rights, ANDed over the levels (W, U) and ORed (NX)."""
    shifts = [48, 39, 30, 21, 12] if la57 else [39, 30, 21, 12]
    table, rw, us, nx = cr3 & 0x000ffffffffff000, True, True, False
    for level, shift in enumerate(shifts):
        e = read64(table + ((va >> shift) & 511) * 8)
        if not e & 1:
            return None
        rw, us, nx = rw and bool(e & 2), us and bool(e & 4), nx or bool(e >> 63)
        leaf = shift == 12 or (shift in (30, 21) and e & 0x80)
        if leaf:
            pa = (e & 0x000ffffffffff000 & ~((1 << shift) - 1)) | (va & ((1 << shift) - 1))
            k = "r" + ("w" if rw else "-") + ("-" if nx else "x")
            u = ("r" + ("w" if rw else "-") + ("-" if nx else "x")) if us else "---"
            return pa, "%s/%s" % (k, u)
        table = e & 0x000ffffffffff000
    return None


def walk_arm64(va, ttbr, tcr):
    """4K granule, 48-bit (the Debian kernel's shape; the test checks TCR says so)."""
    table = ttbr & 0x0000fffffffffffe
    ap_no_write = ap_no_el0 = pxn = uxn = False
    for level, shift in enumerate([39, 30, 21, 12]):
        e = read64(table + ((va >> shift) & 511) * 8)
        kind = e & 3
        if not e & 1 or (level == 3 and kind != 3) or (level == 0 and kind != 3):
            return None
        if level < 3 and kind == 3:          # table descriptor: its limits apply below
            ap_no_write |= bool(e >> 62 & 1)
            ap_no_el0 |= bool(e >> 61 & 1)
            uxn |= bool(e >> 60 & 1)
            pxn |= bool(e >> 59 & 1)
            table = e & 0x0000fffffffff000
            continue
        ap = e >> 6 & 3
        pxn |= bool(e >> 53 & 1)
        uxn |= bool(e >> 54 & 1)
        el0 = bool(ap & 1) and not ap_no_el0
        ro = bool(ap & 2) or ap_no_write
        if el0 and not ro:
            pxn = True                       # writable at EL0: never executable at EL1
        pa = (e & 0x0000fffffffff000 & ~((1 << shift) - 1)) | (va & ((1 << shift) - 1))
        k = "r" + ("-" if ro else "w") + ("-" if pxn else "x")
        u = ("r" + ("-" if ro else "w") + ("-" if uxn else "x")) if el0 else "---"
        return pa, "%s/%s" % (k, u)
    return None


def gva2gpa(va):
    # QEMU's monitor translates with its own current CPU: make it the one gdb stopped (thread N = vCPU N-1),
    # whose tables the dump is of (the user half differs between CPUs).
    gdb.execute("monitor cpu %d" % (gdb.selected_thread().num - 1), to_string=True)
    out = gdb.execute("monitor gva2gpa 0x%x" % va, to_string=True)
    m = re.search(r"gpa: (?:0x)?([0-9a-f]+)\b", out)   # PA 0 is printed "gpa: 0"
    return int(m.group(1), 16) if m else None


def main():
    rows = []
    # The dump: a file `klab ptdump` wrote from the shell (CPU 0's tables, as this session's first thread),
    # or a gdb command run here, on this session's CPU.
    cmd = os.environ.get("KLAB_TEST_DUMP_CMD")
    if not cmd:
        gdb.execute("thread 1", to_string=True)   # klab ptdump's default --cpu 0 is gdb's thread 1
    text = gdb.execute(cmd, to_string=True) if cmd else open(os.environ["KLAB_TEST_DUMP"]).read()
    for line in text.splitlines():
        m = re.match(r"^0x([0-9a-f]+)-0x([0-9a-f]+)\s+\S+\s+PA 0x([0-9a-f]+)\s+(\d+)([KMG]) x\d+\s+\S+\s+(\S+/\S+)", line)
        if m:
            unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(5)]
            rows.append((int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4)) * unit, m.group(6)))
    if len(rows) < int(os.environ.get("KLAB_TEST_MIN_RANGES", "1")):
        fail("ptdump oracle", "only %d ranges parsed from the dump" % len(rows))
        return
    step = max(1, len(rows) // 40)
    sample = rows[::step]
    arm = "aarch64" in gdb.selected_inferior().architecture().name()
    if arm:
        tcr = reg("TCR_EL1")
        if (tcr >> 16) & 63 != 16 or (tcr >> 30) & 3 != 2:
            fail("ptdump oracle", "TCR_EL1 %#x is not the 4K/48-bit shape this oracle knows" % tcr)
            return
    else:
        cr3, la57 = reg("cr3"), bool(reg("cr4") >> 12 & 1)
    gdb.execute("maintenance packet Qqemu.PhyMemMode:1", to_string=True)
    bad_pa, bad_perm, checked = [], [], 0
    try:
        for start, end, pa0, page, perms in sample:
            for va in sorted({start, start + ((end - start) // 2) // page * page, end - page}):
                want_pa = pa0 + (va - start)
                if arm:
                    w = walk_arm64(va, reg("TTBR1_EL1") if va >> 55 & 1 else reg("TTBR0_EL1"), tcr)
                else:
                    w = walk_x86(va, cr3, la57)
                if w is None or w[0] != want_pa or w[1] != perms:
                    bad_perm.append("%x: dump %x %s, entries say %s" % (va, want_pa, perms,
                                    "unmapped" if w is None else "%x %s" % w))
                checked += 1
    finally:
        gdb.execute("maintenance packet Qqemu.PhyMemMode:0", to_string=True)
    for start, end, pa0, page, perms in sample:
        for va in sorted({start, end - page}):
            q = gva2gpa(va)
            if q != pa0 + (va - start):
                bad_pa.append("%x: dump %x, gva2gpa %s" % (va, pa0 + (va - start), "unmapped" if q is None else "%x" % q))
    if bad_perm:
        fail("ptdump PA and permissions = the raw entries gdb reads (%d pages)" % checked, "; ".join(bad_perm[:4]))
    else:
        ok("ptdump PA and permissions of %d pages in %d ranges = the raw entries gdb reads, by the manual's rules"
           % (checked, len(sample)))
    if bad_pa:
        fail("ptdump first/last pages = QEMU gva2gpa", "; ".join(bad_pa[:4]))
    else:
        ok("ptdump first and last page of %d ranges = QEMU gva2gpa" % len(sample))


main()
print("# ptdump_oracle.py: done")
