"""What the kernel does differently on each architecture, as the gdb commands need it: one class per
architecture, the only place in this package that tells them apart (the MMU's own rules are libklab's, in
gdb/lib/mmu_x86_64.c and gdb/lib/mmu_arm64.c). Each method cites where the kernel or the CPU says so."""

import re

import gdb

from klab import lib


class X86_64:
    name = "x86_64"
    # do_init_module(struct module *mod): SysV AMD64 passes the first argument in rdi.
    first_arg_reg = "rdi"

    @staticmethod
    def cpu_mode():
        """(in user mode, words): the CPL in CS (SDM Vol. 3A 5.5)."""
        user = lib.reg("cs") & 3 == 3
        return user, "user mode, CPL 3" if user else "kernel mode, CPL 0"

    @staticmethod
    def kaslr_slide(link_address, error, what):
        """The IDT register (QEMU's `info registers` IDT=) points at the IDT, whose vector 0 gate holds the
        address of asm_exc_divide_error (arch/x86/kernel/idt.c def_idts)."""
        try:
            regs = gdb.execute("monitor info registers", to_string=True)
        except gdb.error as e:
            raise error(what, "cannot ask QEMU for the IDT register: %s", e)
        m = re.search(r"IDT=\s*([0-9a-f]+)", regs)
        if not m:
            raise error(what, "QEMU's info registers shows no IDT")
        base = int(m.group(1), 16)
        try:
            gate = gdb.selected_inferior().read_memory(base, 16).tobytes()
        except gdb.MemoryError:
            raise error(what, "the IDT at %x is not readable yet (continue, then interrupt)", base)
        # 64-bit gate descriptor, SDM Vol. 3A 6.14.1: offset 15:0, selector, IST/type/P, offset 31:16, 63:32
        if not base or not gate[5] & 0x80:
            raise error(what, "IDT vector 0 is not present yet (continue, then interrupt)")
        handler = int.from_bytes(gate[0:2], "little") | int.from_bytes(gate[6:8], "little") << 16 | \
            int.from_bytes(gate[8:12], "little") << 32
        link = link_address("asm_exc_divide_error", what)
        return (handler - link) & lib.MASK64, "IDT vector 0 %x - asm_exc_divide_error %x" % (handler, link)

    @staticmethod
    def kernel_view(regs, kernel, what):
        """x86 PTI: the user PGD is the kernel's plus 4K (arch/x86/entry/calling.h SWITCH_TO_KERNEL_CR3 clears
        bit 12 and the PCID bits). None when there is no other view to try."""
        other = lib.MmuRegs.from_buffer_copy(regs)
        other.cr3 = regs.cr3 & ~0x1fff & lib.MASK64
        return other

    @staticmethod
    def linear_map(regs, kernel, what):
        """(start VA, PA it maps): page_offset_base and 0 (arch/x86/include/asm/page_64.h __va)."""
        return kernel.read_int(kernel.symbol_value("page_offset_base", what), what, "page_offset_base"), 0

    @staticmethod
    def ptov(pa, start, phys_start):
        return (start + pa - phys_start) & lib.MASK64

    @staticmethod
    def current_methods(per_cpu, current_variable, cpu, user, what):
        """The per-CPU current task pointer (pcpu_hot.current_task since v6.2), through __per_cpu_offset and
        through the GS base; in user mode swapgs has parked the kernel's in KERNEL_GS_BASE (SDM Vol. 2B
        SWAPGS; arch/x86/entry/entry_64.S)."""
        var, off = current_variable(what)
        by_offset = per_cpu("%s @ __per_cpu_offset[%d]" % (var, cpu), var, cpu, what, off)
        gs_name = "k_gs_base" if user else "gs_base"
        label = "%s @ %s" % (var, "KERNEL_GS_BASE" if user else "GS base")
        gs = lib.reg(gs_name)
        if not gs:
            return [by_offset, (label, None, "%s is 0 (per-CPU areas not set up yet)" % gs_name)]
        return [by_offset, per_cpu(label, var, cpu, what, off, gs)]

    @staticmethod
    def irq_stack(cpu, kernel, what):
        """(base, size) of a CPU's hard-IRQ stack, or None before it is set up. arch/x86/kernel/irq_64.c
        map_irq_stack stores the top minus 8 in hardirq_stack_ptr (pcpu_hot's member since v6.2, its own
        per-CPU variable before); the size is struct irq_stack's (IRQ_STACK_SIZE)."""
        if kernel.has_member("struct pcpu_hot", "hardirq_stack_ptr"):
            where = kernel.per_cpu_address("pcpu_hot", cpu, what) + \
                kernel.field_offset("struct pcpu_hot", "hardirq_stack_ptr", what)
        elif kernel.has_symbol("hardirq_stack_ptr"):
            where = kernel.per_cpu_address("hardirq_stack_ptr", cpu, what)
        else:
            return None
        top = kernel.kread_u64(where, what, "CPU %d's hardirq_stack_ptr" % cpu)
        size = kernel.lookup_type("struct irq_stack", what).sizeof
        return ((top + 8 - size) & lib.MASK64, size) if top else None


class Arm64:
    name = "arm64"
    # do_init_module(struct module *mod): AAPCS64 passes the first argument in x0.
    first_arg_reg = "x0"

    @staticmethod
    def cpu_mode():
        """(in user mode, words): PSTATE.EL (Arm ARM D1.4, CPSR M[3:2])."""
        el = (lib.reg("cpsr") >> 2) & 3
        return el == 0, "kernel mode, EL%d" % el if el else "user mode, EL0"

    @staticmethod
    def kaslr_slide(link_address, error, what):
        """VBAR_EL1 holds the address of `vectors` (arch/arm64/kernel/head.S __primary_switched)."""
        vbar = lib.reg("VBAR")                       # QEMU names VBAR_EL1 "VBAR"
        link = link_address("vectors", what)
        if not vbar >> 63:
            raise error(what, "VBAR_EL1 is %x: the kernel has not installed its vectors yet (continue, then "
                        "interrupt)", vbar)
        return (vbar - link) & lib.MASK64, "VBAR_EL1 %x - vectors %x" % (vbar, link)

    @staticmethod
    def kernel_view(regs, kernel, what):
        """arm64 KPTI: TTBR1_EL1 holds tramp_pg_dir, at a fixed distance from swapper_pg_dir
        (arch/arm64/kernel/vmlinux.lds.S; entry.S tramp_map_kernel)."""
        if not kernel.has_symbol("tramp_pg_dir"):
            return None
        other = lib.MmuRegs.from_buffer_copy(regs)
        baddr = regs.ttbr1 & 0x0000fffffffffffe
        other.ttbr1 = (baddr + kernel.address_of("swapper_pg_dir", what) -
                       kernel.address_of("tramp_pg_dir", what)) & lib.MASK64
        return other

    @staticmethod
    def linear_map(regs, kernel, what):
        """(start VA, PA it maps): PAGE_OFFSET = the lowest TTBR1 address and memstart_addr
        (arch/arm64/include/asm/memory.h __phys_to_virt: (pa - PHYS_OFFSET) | PAGE_OFFSET)."""
        start = kernel.geometry(regs, True, what).va_lo
        phys = kernel.read_int(kernel.symbol_value("memstart_addr", what), what, "memstart_addr")
        if phys == lib.MASK64:   # arch/arm64/mm/init.c: -1 until arm64_memblock_init() in setup_arch()
            raise kernel.error(what, "the linear map is not set up yet (memstart_addr is -1 until setup_arch)")
        return start, phys

    @staticmethod
    def ptov(pa, start, phys_start):
        # modular: under KASLR memstart_addr can sit "below 0" (arch/arm64/mm/init.c arm64_memblock_init)
        return ((pa - phys_start) & lib.MASK64 | start) & lib.MASK64

    @staticmethod
    def current_methods(per_cpu, current_variable, cpu, user, what):
        """arch/arm64/include/asm/current.h: the kernel keeps `current` in SP_EL0 while at EL1;
        arch/arm64/kernel/process.c: __switch_to stores `next` in the per-CPU __entry_task."""
        from klab import kernel
        sp_el0 = ("SP_EL0", None, "at EL0 SP_EL0 is the user stack pointer") if user else \
            ("SP_EL0", lib.reg("SP_EL0"), None)
        if not kernel.has_symbol("__entry_task"):
            return [sp_el0, ("__entry_task", None, "this kernel has no __entry_task")]
        return [sp_el0, per_cpu("__entry_task @ __per_cpu_offset[%d]" % cpu, "__entry_task", cpu, what)]

    @staticmethod
    def irq_stack(cpu, kernel, what):
        """(base, size) of a CPU's IRQ stack, or None before init_irq_stacks: irq_stack_ptr holds the base
        (arch/arm64/kernel/irq.c), and IRQ_STACK_SIZE is THREAD_SIZE (arch/arm64/include/asm/memory.h)."""
        if not kernel.has_symbol("irq_stack_ptr"):
            return None
        base = kernel.kread_u64(kernel.per_cpu_address("irq_stack_ptr", cpu, what), what,
                                "CPU %d's irq_stack_ptr" % cpu)
        return (base, kernel.thread_size(what)) if base else None


_BY_NAME = {cls.name: cls for cls in (X86_64, Arm64)}


def of(regs):
    """The class for a struct klab_mmu_regs (its arch number, named by libklab)."""
    return _BY_NAME[lib.arch_name(regs.arch)]


def current():
    """The class for the inferior's architecture."""
    return _BY_NAME[lib.arch_name(lib.arch())]
