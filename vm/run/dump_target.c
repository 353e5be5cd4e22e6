/* vm/run/dump_target.h. */
#define _GNU_SOURCE
#include "run/dump_target.h"

#include "machine/profile.h"
#include "run/dump.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* CPU cpu's own translation: x86_64's CR3 and CR4 from QEMU's CPU-state note for it (the task it ran, user
 * half included). arm64's notes hold no TTBR0_EL1/TTBR1_EL1 (target/arm/arch_dump.c writes the general
 * registers only), so there the kernel's tables are all a dump gives, said in one line. */
static int cpu_tables(const char *path, int cpu, struct vm_target *t)
{
    struct klab_error err;
    uint64_t cr3, cr4;
    if (t->regs.arch != KLAB_ARCH_X86_64) {
        klab_error("dump %s: --cpu %d: an arm64 dump holds no TTBR0_EL1 or TTBR1_EL1 (QEMU's notes have the "
                   "general registers only): drop --cpu for the kernel's tables", path, cpu);
        return -1;
    }
    if (klab_elfcore_register(t->mem, (unsigned)cpu, "cr3", &cr3, &err) != 0 ||
        klab_elfcore_register(t->mem, (unsigned)cpu, "cr4", &cr4, &err) != 0) {
        klab_error("dump %s: --cpu %d: %s", path, cpu, err.msg);
        return -1;
    }
    t->regs.cr3 = cr3;
    t->regs.cr4 = cr4;
    t->dump_user_tables = true;
    return 0;
}

int dump_target_open(const char *path, const char *vmlinux, int cpu, struct vm_target *t)
{
    memset(t, 0, sizeof *t);
    struct klab_elfcore_info info;
    struct klab_error err;
    t->mem = klab_physmem_open_elfcore(path, &info, &err);
    if (!t->mem) {
        klab_error("%s", err.msg);
        return -1;
    }
    if (klab_mmu_regs_from_vmcoreinfo(info.vmcoreinfo, info.vmcoreinfo_len, info.arch, &t->regs, &err) != 0) {
        klab_error("dump %s: %s", path, err.msg);
        goto fail;
    }
    if (cpu >= 0 && cpu_tables(path, cpu, t) != 0)
        goto fail;
    uint64_t offset = 0;
    if (info.vmcoreinfo && !klab_vmcoreinfo_value(info.vmcoreinfo, info.vmcoreinfo_len, "KERNELOFFSET=", 16, &offset))
        offset = 0;   /* kernels before v4.x wrote none: no KASLR to undo */
    if (vmlinux) {
        struct dump_info d;
        char why[512];
        if (dump_vmlinux_check(path, vmlinux, &d, why, sizeof why) != 0) {
            klab_error("%s", why);
            goto fail;
        }
        t->rs.vmlinux = strdup(vmlinux);
    }
    t->rs.profile = profile_for_elf_machine(info.arch == KLAB_ARCH_X86_64 ? 62 : 183);   /* EM_X86_64, EM_AARCH64 */
    t->symbol_offset = offset;
    t->dump_cpus = info.ncpus;
    t->dump = true;
    return 0;
fail:
    vm_target_close(t);
    return -1;
}
