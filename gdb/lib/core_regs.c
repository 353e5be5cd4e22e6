/* Where each CPU register lies in a dump's notes, one table per architecture. NT_PRSTATUS: the descriptor is
 * struct elf_prstatus, whose pr_reg starts at byte 112 on both arches (include/linux/elfcore.h: siginfo,
 * cursig, sigpend, sighold, four pids, four timevals; QEMU writes the same, target/i386/arch_dump.c
 * x86_64_elf_prstatus and target/arm/arch_dump.c aarch64_elf_prstatus). pr_reg is x86_64's user_regs_struct
 * (arch/x86/include/asm/user_64.h) or arm64's user_pt_regs (arch/arm64/include/uapi/asm/ptrace.h). QEMU's
 * x86 note ("QEMU", QEMUCPUState in target/i386/arch_dump.c): version, size, 18 general registers, ten
 * segments of 24 bytes, cr[5], then kernel_gs_base. */
#include "physmem_internal.h"

#include <string.h>

#define PR_REG 112
#define X86(name, i) {name, PR_REG + 8 * (i), 8, false}
#define QEMU_CR(name, i) {name, 8 + 18 * 8 + 10 * 24 + 8 * (i), 8, true}

static const struct klab_core_reg x86_64_regs[] = {
    X86("r15", 0), X86("r14", 1), X86("r13", 2), X86("r12", 3), X86("rbp", 4), X86("rbx", 5), X86("r11", 6),
    X86("r10", 7), X86("r9", 8), X86("r8", 9), X86("rax", 10), X86("rcx", 11), X86("rdx", 12), X86("rsi", 13),
    X86("rdi", 14), X86("orig_rax", 15), X86("rip", 16), X86("cs", 17), X86("eflags", 18), X86("rsp", 19),
    X86("ss", 20), X86("fs_base", 21), X86("gs_base", 22), X86("ds", 23), X86("es", 24), X86("fs", 25),
    X86("gs", 26),
    QEMU_CR("cr0", 0), QEMU_CR("cr2", 2), QEMU_CR("cr3", 3), QEMU_CR("cr4", 4), QEMU_CR("k_gs_base", 5),
    {NULL, 0, 0, false},
};

#define A64(name, i) {name, PR_REG + 8 * (i), 8, false}
static const struct klab_core_reg arm64_regs[] = {
    A64("x0", 0), A64("x1", 1), A64("x2", 2), A64("x3", 3), A64("x4", 4), A64("x5", 5), A64("x6", 6),
    A64("x7", 7), A64("x8", 8), A64("x9", 9), A64("x10", 10), A64("x11", 11), A64("x12", 12), A64("x13", 13),
    A64("x14", 14), A64("x15", 15), A64("x16", 16), A64("x17", 17), A64("x18", 18), A64("x19", 19),
    A64("x20", 20), A64("x21", 21), A64("x22", 22), A64("x23", 23), A64("x24", 24), A64("x25", 25),
    A64("x26", 26), A64("x27", 27), A64("x28", 28), A64("x29", 29), A64("x30", 30), A64("sp", 31),
    A64("pc", 32), {"cpsr", PR_REG + 8 * 33, 4, false},
    {NULL, 0, 0, false},
};

const struct klab_core_reg *klab_core_reg(enum klab_arch arch, const char *name)
{
    for (const struct klab_core_reg *r = arch == KLAB_ARCH_X86_64 ? x86_64_regs : arm64_regs; r->name; r++)
        if (!strcmp(r->name, name))
            return r;
    return NULL;
}
