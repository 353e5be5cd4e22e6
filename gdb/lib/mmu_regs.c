/* The registers that define translation, read by name through the gdb stub's target description (QEMU names
 * them cr3/cr4/efer in i386-64bit.xml and TTBR0_EL1/TTBR1_EL1/TCR_EL1 in its generated
 * system-registers.xml), and a one-line description of each translation root they set up. */
#include "mmu_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct mmu_reg {
    const char *name;
    size_t offset;   /* into struct klab_mmu_regs */
};

static const struct mmu_reg x86_64_regs[] = {
    { "cr3", offsetof(struct klab_mmu_regs, cr3) },
    { "cr4", offsetof(struct klab_mmu_regs, cr4) },
    { "efer", offsetof(struct klab_mmu_regs, efer) },
    { NULL, 0 },
};

static const struct mmu_reg arm64_regs[] = {
    { "TTBR0_EL1", offsetof(struct klab_mmu_regs, ttbr0) },
    { "TTBR1_EL1", offsetof(struct klab_mmu_regs, ttbr1) },
    { "TCR_EL1", offsetof(struct klab_mmu_regs, tcr) },
    { NULL, 0 },
};

/* Translation on/off: CR0.PG is bit 31 (SDM Vol. 3A, 2.5); SCTLR_EL1.M is bit 0 (Arm ARM D19.2.118). QEMU
 * names SCTLR_EL1 "SCTLR" in its system-registers.xml. */
static const struct mmu_enable {
    const char *name;
    uint64_t bit;
} mmu_enable[] = { [KLAB_ARCH_X86_64] = { "cr0", 1ull << 31 }, [KLAB_ARCH_ARM64] = { "SCTLR", 1ull << 0 } };

int klab_rsp_read_mmu_regs(struct klab_rsp *r, enum klab_arch arch, struct klab_mmu_regs *regs)
{
    memset(regs, 0, sizeof *regs);
    regs->arch = arch;
    uint64_t enable;
    int rc = klab_rsp_read_register(r, mmu_enable[arch].name, &enable);
    if (rc)
        return rc;
    regs->translation_off = !(enable & mmu_enable[arch].bit);
    const struct mmu_reg *set = arch == KLAB_ARCH_ARM64 ? arm64_regs : x86_64_regs;
    for (; set->name; set++) {
        int rc = klab_rsp_read_register(r, set->name, (uint64_t *)((char *)regs + set->offset));
        if (rc)
            return rc;
    }
    return 0;
}

size_t klab_describe_regs(const struct klab_mmu_regs *regs, char *buf, size_t len)
{
    struct klab_regime rg[2];
    char why[2][160] = { "", "" };
    enum klab_stop st[2];
    const int n = regs->arch == KLAB_ARCH_ARM64 ? 2 : 1;
    for (int upper = 0; upper < n; upper++)
        st[upper] = klab_regime(regs, upper, &rg[upper], why[upper], sizeof why[upper]);
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    if (regs->translation_off)
        return (size_t)snprintf(buf, len, "translation is off (%s): virtual addresses are physical\n",
                                regs->arch == KLAB_ARCH_ARM64 ? "SCTLR_EL1.M=0" : "CR0.PG=0");
    for (int i = 0; i < n; i++) {
        char line[320];
        if (st[i] != KLAB_WALK_OK) {
            snprintf(line, sizeof line, "%s: %s\n", rg[i].root_name, why[i]);
        } else {
            const struct klab_regime *g = &rg[i];
            const char *lo = g->level[0].hw_name, *hi = g->level[g->nlevels - 1].hw_name;
            snprintf(line, sizeof line, "%s: %uK granule, %u-bit VA, %d levels (%s..%s), %u index bits at the top, "
                     "table at PA 0x%llx\n", g->root_name, 1u << (g->granule_shift - 10), g->va_bits, g->nlevels, lo, hi,
                     g->level[0].index_bits, (unsigned long long)g->root_pa);
        }
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s", line);
    }
    return used < len ? used : (len ? len - 1 : 0);
}
