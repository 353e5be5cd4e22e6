/* libklab's architecture-independent entry points. */
#include "mmu_internal.h"

#include <stdio.h>
#include <string.h>

const char *klab_linux_level_name(int i, int n)
{
    static const char *const from_bottom[] = { "pte", "pmd", "pud", "p4d" };
    if (i == 0)
        return "pgd";
    int from_end = n - 1 - i;
    return from_end >= 0 && from_end < 4 ? from_bottom[from_end] : "?";
}

int klab_walk_stop(struct klab_walk *w, enum klab_stop stop, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
    w->stop = stop;
    return -1;
}

int klab_visit_entry(struct klab_walk *w, struct klab_physmem *mem, struct klab_level *l, const char *name,
                     uint64_t table_pa, unsigned shift, unsigned index_bits, uint64_t *raw)
{
    snprintf(l->name, sizeof l->name, "%s", name);
    l->shift = shift;
    l->index = (unsigned)klab_bits(w->va, shift + index_bits - 1, shift);
    l->table_pa = table_pa;
    l->entry_pa = table_pa + 8ull * l->index;
    if (klab_physmem_read(mem, l->entry_pa, raw, sizeof *raw) != 0)
        return klab_walk_stop(w, KLAB_STOP_UNREADABLE, "%s table at PA 0x%llx is outside RAM", l->name,
                              (unsigned long long)table_pa);
    return 0;
}

void klab_bits_add(struct klab_level *l, const char *fmt, ...)
{
    size_t len = strlen(l->bits);
    if (len + 2 >= sizeof l->bits)
        return;
    if (len)
        l->bits[len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->bits + len, sizeof l->bits - len, fmt, ap);
    va_end(ap);
}

int klab_translate(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va, struct klab_walk *walk)
{
    memset(walk, 0, sizeof *walk);
    walk->va = va;
    if (regs->translation_off)
        return klab_walk_stop(walk, KLAB_STOP_DISABLED, "translation is off (%s): the address is used as is",
                              regs->arch == KLAB_ARCH_ARM64 ? "SCTLR_EL1.M=0" : "CR0.PG=0");
    switch (regs->arch) {
    case KLAB_ARCH_X86_64: return klab_translate_x86_64(regs, mem, va, walk);
    case KLAB_ARCH_ARM64: return klab_translate_arm64(regs, mem, va, walk);
    }
    return klab_walk_stop(walk, KLAB_STOP_BAD_REGS, "unknown architecture %d", (int)regs->arch);
}

int klab_decode_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out)
{
    if (arch == KLAB_ARCH_ARM64)
        return klab_decode_arm64(granule_shift, hw_level, false, raw, out);
    if (arch == KLAB_ARCH_X86_64 && granule_shift == 12)
        return klab_decode_x86_64(hw_level, raw, out);
    memset(out, 0, sizeof *out);
    snprintf(out->bits, sizeof out->bits, "no such architecture/granule");
    return -1;
}

const char *klab_stop_name(enum klab_stop stop)
{
    switch (stop) {
    case KLAB_WALK_OK: return "mapped";
    case KLAB_STOP_NOT_PRESENT: return "not present";
    case KLAB_STOP_RESERVED: return "reserved encoding";
    case KLAB_STOP_UNREADABLE: return "table outside RAM";
    case KLAB_STOP_NOT_CANONICAL: return "not canonical";
    case KLAB_STOP_DISABLED: return "walks disabled";
    case KLAB_STOP_BAD_REGS: return "bad registers";
    }
    return "?";
}

const char *klab_perms_str(const struct klab_perms *p, char buf[8])
{
    buf[0] = p->kernel_read ? 'r' : '-';
    buf[1] = p->kernel_write ? 'w' : '-';
    buf[2] = p->kernel_exec ? 'x' : '-';
    buf[3] = '/';
    buf[4] = p->user_read ? 'r' : '-';
    buf[5] = p->user_write ? 'w' : '-';
    buf[6] = p->user_exec ? 'x' : '-';
    buf[7] = '\0';
    return buf;
}
