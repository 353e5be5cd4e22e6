"""KASLR: where the kernel image really is, read from the machine, and vmlinux's symbols placed there.

arm64: VBAR_EL1 holds the address of `vectors` (arch/arm64/kernel/head.S __primary_switched), so the slide
is VBAR_EL1 - &vectors. x86_64: the IDT register (QEMU's `info registers` IDT=) points at the IDT, whose
vector 0 gate holds the address of asm_exc_divide_error (arch/x86/kernel/idt.c def_idts); the slide is
that address - &asm_exc_divide_error. Both are exact: no guess from a stack or a banner."""

import re

import gdb

from klab import kernel, lib, modules, vm

_applied = 0          # the slide the loaded symbols already carry
_armed = False        # the module loader's breakpoint placed at the slid address


def _link_address(name, what):
    return kernel.address_of(name, what) - _applied


def _x86_idt_base(what):
    try:
        regs = gdb.execute("monitor info registers", to_string=True)
    except gdb.error as e:
        raise kernel.error(what, "cannot ask QEMU for the IDT register: %s", e)
    m = re.search(r"IDT=\s*([0-9a-f]+)", regs)
    if not m:
        raise kernel.error(what, "QEMU's info registers shows no IDT")
    return int(m.group(1), 16)


def measure(what="kaslr"):
    """(slide, how) from the live machine; an error while the kernel has not installed its vectors yet."""
    if lib.arch() == lib.ARCH_ARM64:
        vbar = lib.reg("VBAR")                       # QEMU names VBAR_EL1 "VBAR"
        link = _link_address("vectors", what)
        if not vbar >> 63:
            raise kernel.error(what, "VBAR_EL1 is %x: the kernel has not installed its vectors yet (continue, "
                               "then interrupt)", vbar)
        return (vbar - link) & kernel.MASK64, "VBAR_EL1 %x - vectors %x" % (vbar, link)
    base = _x86_idt_base(what)
    try:
        gate = gdb.selected_inferior().read_memory(base, 16).tobytes()
    except gdb.MemoryError:
        raise kernel.error(what, "the IDT at %x is not readable yet (continue, then interrupt)", base)
    # 64-bit gate descriptor, SDM Vol. 3A 6.14.1: offset 15:0, selector, IST/type/P, offset 31:16, offset 63:32
    if not base or not gate[5] & 0x80:
        raise kernel.error(what, "IDT vector 0 is not present yet (continue, then interrupt)")
    handler = int.from_bytes(gate[0:2], "little") | int.from_bytes(gate[6:8], "little") << 16 | \
        int.from_bytes(gate[8:12], "little") << 32
    link = _link_address("asm_exc_divide_error", what)
    return (handler - link) & kernel.MASK64, "IDT vector 0 %x - asm_exc_divide_error %x" % (handler, link)


def _zero_based_sections():
    """Sections linked at address 0 (x86_64's per-CPU section): their symbols are offsets, never slid."""
    out = []
    text = gdb.execute("maintenance info sections", to_string=True)
    for m in re.finditer(r"0x0+->0x[0-9a-f]+ at 0x[0-9a-f]+: (\S+) ALLOC", text):
        out.append(m.group(1))
    return out


def apply(slide):
    """Reloads vmlinux with every section moved by slide (but zero-based ones)."""
    global _applied
    objfile = gdb.objfiles()[0] if gdb.objfiles() else None
    if objfile is None:
        raise gdb.GdbError("klab kaslr: no vmlinux loaded")
    path = objfile.filename
    keep = _zero_based_sections()
    gdb.execute("set confirm off")
    try:
        gdb.execute("symbol-file", to_string=True)
        cmd = "add-symbol-file %s -o 0x%x %s" % (path, slide, " ".join("-s %s 0" % s for s in keep))
        gdb.execute(cmd, to_string=True)
    finally:
        gdb.execute("set confirm on")
    _applied = slide


def place_symbols(quiet=False):
    global _armed
    slide, how = measure()
    delta = (slide - _applied) & kernel.MASK64
    if delta:
        apply(slide)
    if delta or not _armed:
        modules.arm()            # its breakpoint goes where do_init_module really is
        _armed = True
    if not quiet or delta:
        gdb.write("klab kaslr: slide 0x%x (%s)%s\n" % (slide, how, "; symbols moved" if delta else ""))
    return slide


class KlabKaslr(gdb.Command):
    """Find the kernel's KASLR slide from the live machine and load vmlinux's symbols there.

Usage: klab kaslr
arm64: VBAR_EL1 - &vectors; x86_64: the handler in IDT vector 0 - &asm_exc_divide_error. Runs by itself
for a VM booted with --kaslr (klab gdb), at stops until the slide is known; type it to see the slide."""

    def __init__(self):
        super().__init__("klab kaslr", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("klab kaslr: takes no arguments")
        if not gdb.selected_inferior().pid:
            raise gdb.GdbError("klab kaslr: no process attached")
        place_symbols()


def _on_stop(event):
    """Until the slide is known. A klab VM never reboots (-no-reboot), so one measure holds for its life and
    later stops need no monitor round trip."""
    try:
        place_symbols(quiet=True)
    except gdb.GdbError as e:
        gdb.write("%s\n" % e)
        return
    gdb.events.stop.disconnect(_on_stop)


KlabKaslr()
_state = vm.load_state()
if _state and _state.get("kaslr") == "1":
    gdb.events.stop.connect(_on_stop)
    if gdb.selected_inferior().pid:
        _on_stop(None)
