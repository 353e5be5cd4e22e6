/* The registers that define translation, read by name through the gdb stub's target description (QEMU names
 * them cr3/cr4/efer in i386-64bit.xml and TTBR0_EL1/TTBR1_EL1/TCR_EL1 in its generated
 * system-registers.xml), and a one-line description of each translation root they set up. */
#include "mmu_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

int klab_rsp_read_mmu_regs(struct klab_rsp *r, enum klab_arch arch, struct klab_mmu_regs *regs)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    if (!a)
        return KLAB_RSP_EINVAL;
    uint64_t values[4] = { 0 };
    for (int i = 0; a->regs[i]; i++) {
        int rc = klab_rsp_read_register(r, a->regs[i], &values[i]);
        if (rc)
            return rc;
    }
    return klab_mmu_regs_set(regs, arch, values);
}

const char *const *klab_mmu_reg_names(enum klab_arch arch)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    return a ? a->regs : NULL;
}

int klab_mmu_regs_set(struct klab_mmu_regs *regs, enum klab_arch arch, const uint64_t *values)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    memset(regs, 0, sizeof *regs);
    if (!a)
        return -1;
    regs->arch = arch;
    regs->translation_off = !(values[0] & a->enable_bit);
    for (int i = 1; a->regs[i]; i++)
        *(uint64_t *)((char *)regs + a->reg_offset[i - 1]) = values[i];
    return 0;
}

int klab_replace_root(struct klab_mmu_regs *regs, enum klab_root which, uint64_t va, uint64_t root_pa)
{
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    if (!a)
        return -1;
    for (int upper = 0; upper < 2; upper++) {
        bool chosen = which == KLAB_ROOT_ALL || (which == KLAB_ROOT_USER && !upper) ||
                      (which == KLAB_ROOT_FOR_VA && upper == klab_upper_root(a, va));
        if (chosen)
            *(uint64_t *)((char *)regs + a->root_offset[upper]) = root_pa;
    }
    return 0;
}

size_t klab_describe_regs(const struct klab_mmu_regs *regs, char *buf, size_t len)
{
    struct klab_regime rg[2];
    char why[2][160] = { "", "" };
    enum klab_stop st[2];
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    if (!a)
        return (size_t)snprintf(buf, len, "unknown architecture %d\n", (int)regs->arch);
    const int n = a->nroots;
    for (int upper = 0; upper < n; upper++)
        st[upper] = klab_regime(regs, upper, &rg[upper], why[upper], sizeof why[upper]);
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    if (regs->translation_off)
        return (size_t)snprintf(buf, len, "translation is off (%s): virtual addresses are physical\n", a->off_text);
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
