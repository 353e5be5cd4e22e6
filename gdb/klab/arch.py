"""What the kernel does differently on each architecture, as the gdb commands need it: one class per
architecture, the only place in this package that tells them apart (the MMU's own rules are libklab's, in
gdb/lib/mmu_x86_64.c and gdb/lib/mmu_arm64.c). Each method cites where the kernel or the CPU says so."""

import re

import gdb

from klab import lib


class X86_64:
    name = "x86_64"
    # How far above the stack pointer the IRQ stack saved an exception's pt_regs may lie: the C handler's
    # own frame (a few saved registers) sits between them.
    exception_search = 512
    # gdb's name of the pc, and crash's label for an exception's pc
    pc_register, pc_label = "rip", "RIP"
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

    @staticmethod
    def irq_stack_exit(stack, frame, kernel, what):
        """How to leave the IRQ stack from its last frame gdb found: ("search", sp) when the interrupt's
        pt_regs lie just above sp on the stack the CPU left, ("caller", registers) when the caller's
        registers are known. call_on_irqstack (arch/x86/include/asm/irq_stack.h) stores the old rsp in the
        IRQ stack's top word, the one hardirq_stack_ptr points to, before it switches."""
        base, size = stack
        return "search", kernel.kread_u64(base + size - 8, what, "the IRQ stack's saved stack pointer")

    # struct pt_regs member (arch/x86/include/asm/ptrace.h) -> gdb's register (the 64-bit ones: unwinding
    # needs no flags)
    _PT_REGS = (("r15", "r15"), ("r14", "r14"), ("r13", "r13"), ("r12", "r12"), ("bp", "rbp"), ("bx", "rbx"),
                ("r11", "r11"), ("r10", "r10"), ("r9", "r9"), ("r8", "r8"), ("ax", "rax"), ("cx", "rcx"),
                ("dx", "rdx"), ("si", "rsi"), ("di", "rdi"), ("ip", "rip"), ("sp", "rsp"))
    _KERNEL_CS = 0x10   # GDT_ENTRY_KERNEL_CS * 8, arch/x86/include/asm/segment.h

    @staticmethod
    def exception_frame(p, word, entry_text, kernel, what):
        """The registers an interrupt or exception entry saved as struct pt_regs at p, as
        (gdb registers, in user mode, pc, sp), or None when p is not such a frame. word(a) is the stack's word
        at a. arch/x86/entry/entry_64.S idtentry: the entry code builds pt_regs on the stack and calls the C
        handler with rsp at it, so the word below it is a return address into .entry.text. The CPU pushed
        ss, rsp, rflags (bit 1 always set, SDM Vol. 1 3.4.3), cs, rip (SDM Vol. 3A 6.14.2: in 64-bit mode
        always, also from CPL 0)."""
        ret = word(p - 8)
        if ret is None or not entry_text(ret):
            return None
        regs = {reg: word(p + kernel.field_offset("struct pt_regs", m, what)) for m, reg in X86_64._PT_REGS}
        cs, flags = (word(p + kernel.field_offset("struct pt_regs", m, what)) for m in ("cs", "flags"))
        ip, sp = regs["rip"], regs["rsp"]
        if None in (cs, flags, ip, sp) or not flags & 2 or flags >> 22:
            return None
        if cs & 3 == 3:
            return {}, True, ip, sp
        if cs & 0xffff != X86_64._KERNEL_CS or not p < sp < p + kernel.thread_size(what) or ip >> 63 == 0 \
                or None in regs.values():
            return None
        return regs, False, ip, sp


class Arm64:
    name = "arm64"
    # An exception's pt_regs is exactly at its vector's frame (exception_frame): nothing to search for.
    exception_search = 0
    pc_register, pc_label = "pc", "PC"
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

    @staticmethod
    def irq_stack_exit(stack, frame, kernel, what):
        """How to leave the IRQ stack from its last frame gdb found (see X86_64): call_on_irq_stack
        (arch/arm64/kernel/entry.S) pushes a frame record {x29, x30} on the task's stack and points x29 at it
        before it moves sp to the IRQ stack; the handler's frame record links to it, so in call_on_irq_stack's
        frame x29 is that record: the caller's x29 and return address, and its sp just above the record."""
        fp = int(frame.read_register("x29")) & lib.MASK64
        if not fp:
            return None
        record = kernel.kread(fp, 16, what, "call_on_irq_stack's frame record")
        x29, lr = int.from_bytes(record[:8], "little"), int.from_bytes(record[8:], "little")
        return "caller", {"x29": x29, "x30": lr, "pc": lr, "sp": fp + 16}

    @staticmethod
    def exception_frame(p, word, entry_text, kernel, what):
        """The registers an exception entry saved as struct pt_regs at p, as (gdb registers, in user mode,
        pc, sp), or None. arch/arm64/kernel/entry.S kernel_entry: the vector takes PT_REGS_SIZE off sp, saves
        x0-x30, sp, elr (pc) and spsr (pstate) there, and for an exception from EL1 links a frame record
        {x29, elr} at regs->stackframe; the handler is called with sp = x0 = regs. PSTATE.M[3:2] is the EL
        it came from (Arm ARM C5.2.19 SPSR_EL1)."""
        off = {m: kernel.field_offset("struct pt_regs", m, what) for m in ("regs", "sp", "pc", "pstate",
                                                                           "stackframe")}
        sp, pc, pstate = word(p + off["sp"]), word(p + off["pc"]), word(p + off["pstate"])
        if None in (sp, pc, pstate) or pstate >> 32:
            return None
        record = (word(p + off["stackframe"]), word(p + off["stackframe"] + 8))
        if (pstate >> 2) & 3 == 0:   # from EL0: the frame record is zeroed, the chain's end
            return ({}, True, pc, sp) if record == (0, 0) and pc >> 63 == 0 else None
        if (pstate >> 2) & 3 != 1 or not p < sp < p + kernel.thread_size(what) or pc >> 63 == 0:
            return None
        regs = {"x%d" % n: word(p + off["regs"] + 8 * n) for n in range(31)}
        if None in regs.values() or record != (regs["x29"], pc):
            return None
        regs.update(sp=sp, pc=pc)
        return regs, False, pc, sp


_BY_NAME = {cls.name: cls for cls in (X86_64, Arm64)}


def of(regs):
    """The class for a struct klab_mmu_regs (its arch number, named by libklab)."""
    return _BY_NAME[lib.arch_name(regs.arch)]


def current():
    """The class for the inferior's architecture."""
    return _BY_NAME[lib.arch_name(lib.arch())]
