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

/* Ends the walk: sets stop and a printf-style reason; returns -1. */
static int walk_stop(struct klab_walk *w, enum klab_stop stop, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int walk_stop(struct klab_walk *w, enum klab_stop stop, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
    w->stop = stop;
    return -1;
}

const struct klab_arch_ops *klab_arch(enum klab_arch arch)
{
    static const struct klab_arch_ops *const all[] = { [KLAB_ARCH_X86_64] = &klab_arch_x86_64,
                                                      [KLAB_ARCH_ARM64] = &klab_arch_arm64 };
    return (unsigned)arch < sizeof all / sizeof *all ? all[arch] : NULL;
}

int klab_arch_from_name(const char *name)
{
    const struct klab_arch_ops *all[] = { &klab_arch_x86_64, &klab_arch_arm64 };
    for (size_t i = 0; name && i < sizeof all / sizeof *all; i++) {
        if (!strcmp(name, all[i]->name))
            return (int)all[i]->arch;
        /* gdb's names may carry a variant after a colon ("i386:x86-64:intel"). */
        for (size_t k = 0; all[i]->gdb_names[k]; k++) {
            size_t n = strlen(all[i]->gdb_names[k]);
            if (!strncmp(name, all[i]->gdb_names[k], n) && (name[n] == '\0' || name[n] == ':'))
                return (int)all[i]->arch;
        }
    }
    return -1;
}

const char *klab_arch_name(enum klab_arch arch)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    return a ? a->name : "unknown";
}

int klab_arch_levels(enum klab_arch arch, unsigned *granules, int *first_level, int *leaf_level)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    if (!a)
        return -1;
    *granules = a->granules;
    *first_level = a->first_level;
    *leaf_level = a->leaf_level;
    return 0;
}

enum klab_stop klab_regime(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                           size_t whylen)
{
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    if (a)
        return a->regime(regs, upper, rg, why, whylen);
    memset(rg, 0, sizeof *rg);
    snprintf(why, whylen, "unknown architecture %d", (int)regs->arch);
    return KLAB_STOP_BAD_REGS;
}

int klab_geometry(const struct klab_mmu_regs *regs, bool upper, struct klab_geometry *g, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_regime rg;
    memset(g, 0, sizeof *g);
    if (klab_regime(regs, upper, &rg, err, errlen) == KLAB_STOP_BAD_REGS)
        return -1;
    snprintf(g->root_name, sizeof g->root_name, "%s", rg.root_name);
    g->root_pa = rg.root_pa;
    g->va_lo = rg.va_lo;
    g->va_hi = rg.va_hi;
    g->va_bits = rg.va_bits;
    g->granule_shift = rg.granule_shift;
    g->nlevels = rg.nlevels;
    return 0;
}

/* Whether va is one the regime translates. With top-byte-ignore (arm64 TCR_EL1.TBIn) bits 63:56 do not
 * take part: they are replaced by copies of bit 55 before the check (Arm ARM D8.2.1). */
static bool in_regime(const struct klab_regime *rg, uint64_t va)
{
    if (rg->tbi)
        va = (va & klab_mask(55, 0)) | (klab_bits(va, 55, 55) ? klab_mask(63, 56) : 0);
    return rg->va_lo <= rg->va_hi ? va >= rg->va_lo && va <= rg->va_hi : va >= rg->va_lo || va <= rg->va_hi;
}

int klab_translate(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va, struct klab_walk *w)
{
    memset(w, 0, sizeof *w);
    w->va = va;
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    if (!a)
        return walk_stop(w, KLAB_STOP_BAD_REGS, "unknown architecture %d", (int)regs->arch);
    if (regs->translation_off)
        return walk_stop(w, KLAB_STOP_DISABLED, "translation is off (%s): the address is used as is", a->off_text);
    struct klab_regime rg;
    enum klab_stop bad = klab_regime(regs, klab_upper_root(a, va), &rg, w->why, sizeof w->why);
    snprintf(w->root_name, sizeof w->root_name, "%s", rg.root_name);
    w->granule_shift = rg.granule_shift;
    w->va_bits = rg.va_bits;
    if (bad == KLAB_STOP_BAD_REGS)
        return walk_stop(w, bad, "%s", w->why);
    if (!in_regime(&rg, va))
        return walk_stop(w, KLAB_STOP_NOT_CANONICAL, "0x%llx is outside the %u-bit VA range %s translates",
                         (unsigned long long)va, rg.va_bits, rg.root_name);
    if (bad != KLAB_WALK_OK)
        return walk_stop(w, bad, "%s", w->why);
    w->root_pa = rg.root_pa;
    uint64_t table = rg.root_pa;
    struct klab_inherit limits = { 0 };
    for (int li = 0; li < rg.nlevels; li++) {
        const struct klab_regime_level *lv = &rg.level[li];
        struct klab_level *l = &w->levels[w->nlevels++];
        snprintf(l->name, sizeof l->name, "%s", lv->name);
        l->shift = lv->shift;
        l->index = (unsigned)klab_bits(va, lv->shift + lv->index_bits - 1, lv->shift);
        l->table_pa = table;
        l->entry_pa = table + 8ull * l->index;
        uint64_t raw;
        if (klab_physmem_read(mem, l->entry_pa, &raw, sizeof raw) != 0)
            return walk_stop(w, KLAB_STOP_UNREADABLE, "%s table at PA 0x%llx is outside RAM", l->name,
                             (unsigned long long)table);
        rg.describe(&rg, li, raw, l);   /* the text; leaves the position fields above */
        struct klab_step st = { 0 };
        rg.step(&rg, li, raw, &limits, &st);
        switch (st.kind) {
        case KLAB_ENTRY_INVALID:
            return walk_stop(w, KLAB_STOP_NOT_PRESENT, "%s entry %u (%s) is not present: a translation fault",
                             l->name, l->index, l->hw_name);
        case KLAB_ENTRY_RESERVED:
            return walk_stop(w, KLAB_STOP_RESERVED, "%s entry %u (%s): %s", l->name, l->index, l->hw_name,
                             st.reserved_why);
        case KLAB_ENTRY_TABLE:
            limits = st.child;
            table = st.out_pa;
            continue;
        case KLAB_ENTRY_BLOCK:
        case KLAB_ENTRY_PAGE:
            w->page_size = 1ull << lv->shift;
            w->pa = st.out_pa + (va & (w->page_size - 1));
            w->perms = st.perms;
            w->stop = KLAB_WALK_OK;
            return 0;
        }
    }
    return walk_stop(w, KLAB_STOP_RESERVED, "a table descriptor at the last level");
}

int klab_decode_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out,
                      struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    const struct klab_arch_ops *a = klab_arch(arch);
    if (a)
        return a->decode(granule_shift, hw_level, raw, out, err, errlen);
    memset(out, 0, sizeof *out);
    snprintf(err, errlen, "no such architecture %d", (int)arch);
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
