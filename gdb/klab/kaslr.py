"""KASLR: where the kernel image really is, read from the machine, and vmlinux's symbols placed there.

arm64: VBAR_EL1 holds the address of `vectors` (arch/arm64/kernel/head.S __primary_switched), so the slide
is VBAR_EL1 - &vectors. x86_64: the IDT register (QEMU's `info registers` IDT=) points at the IDT, whose
vector 0 gate holds the address of asm_exc_divide_error (arch/x86/kernel/idt.c def_idts); the slide is
that address - &asm_exc_divide_error. Both are exact: no guess from a stack or a banner."""

import re

import gdb

from klab import arch, kernel, lib, modules, vm

_applied = 0          # the slide the loaded symbols already carry
_armed = False        # the module loader's breakpoint placed at the slid address
_listening = False    # _on_stop connected to gdb's stop events


def _link_address(name, what):
    return kernel.address_of(name, what) - _applied


def measure(what="kaslr"):
    """(slide, how) from the live machine; an error while the kernel has not installed its vectors yet."""
    return arch.current().kaslr_slide(_link_address, kernel.error, what)


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
    """Until the slide is known. A klab VM never reboots (-no-reboot), so one measure holds until a klab reset
    (reattached measures again) and later stops need no monitor round trip."""
    try:
        place_symbols(quiet=True)
    except gdb.GdbError as e:
        gdb.write("%s\n" % e)
        return
    global _listening
    if _listening:
        gdb.events.stop.disconnect(_on_stop)
        _listening = False


def _listen():
    """Measure at this stop, or at the next ones until the kernel has set its vectors up."""
    global _listening
    if not _listening:
        gdb.events.stop.connect(_on_stop)
        _listening = True
    if gdb.selected_inferior().pid:
        _on_stop(None)


def reattached():
    """gdb is on a machine started again (klab reset): a cold boot may have a new slide, and the module
    loader's breakpoint goes in again either way."""
    global _armed
    _armed = False
    state = vm.load_state()
    if state and state.get("kaslr") == "1":
        _listen()
    elif gdb.selected_inferior().pid:
        modules.arm()


KlabKaslr()
_state = vm.load_state()
if _state and _state.get("kaslr") == "1":
    _listen()
