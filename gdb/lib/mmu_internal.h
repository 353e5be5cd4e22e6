/* Shared by klab.c and the per-architecture MMU files; not part of the public API. */
#ifndef LIBKLAB_MMU_INTERNAL_H
#define LIBKLAB_MMU_INTERNAL_H

#include "klab.h"

#include <stdarg.h>

/* One translation root as a walk sees it: where its table is, which VAs it covers, and the shape of every
 * level. Filled by the architecture's file from the registers. */
struct klab_regime_level {
    unsigned shift;       /* VA bits below this level's index */
    unsigned index_bits;  /* the table has 1 << index_bits entries */
    int hw_level;
    const char *name;     /* Linux's name */
    const char *hw_name;  /* the architecture's */
};
struct klab_regime {
    enum klab_arch arch;
    char root_name[12];
    uint64_t root_pa;
    uint64_t va_lo, va_hi;          /* inclusive span of VAs this root translates */
    unsigned va_bits, granule_shift;
    int nlevels;
    struct klab_regime_level level[KLAB_MAX_LEVELS];
    /* architecture specifics */
    bool tbi, lpa2, hw_dirty, nxe;
    const void *granule;
};

/* Access limits that the entries above a level put on everything below it (arm64 APTable/PXNTable/
 * UXNTable, x86 R/W, U/S and XD of every level). */
struct klab_inherit {
    bool no_write, no_user, no_kernel_exec, no_user_exec;
};

/* One entry classified for a walk, without text. */
struct klab_step {
    enum klab_entry_kind kind;
    uint64_t out_pa;              /* next table, or the page/block base */
    uint64_t attr_key;            /* leaf attributes that must be equal for two leaves to merge */
    struct klab_inherit child;    /* TABLE: limits for the next level */
    struct klab_perms perms;      /* BLOCK/PAGE: effective permissions */
};

/* Fills the regime of one root: arm64 upper = TTBR1 (else TTBR0); x86_64 has one root (upper ignored).
 * Returns KLAB_WALK_OK or the reason there is none (why filled). */
enum klab_stop klab_regime_arm64(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                                 size_t whylen);
enum klab_stop klab_regime_x86_64(const struct klab_mmu_regs *regs, struct klab_regime *rg, char *why, size_t whylen);
void klab_step_arm64(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                     struct klab_step *st);
void klab_step_x86_64(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                      struct klab_step *st);
/* Decodes a leaf's attribute text (as klab_decode_entry) for the regime's level li. */
void klab_describe_arm64(const struct klab_regime *rg, int li, uint64_t raw, struct klab_level *out);
void klab_describe_x86_64(const struct klab_regime *rg, int li, uint64_t raw, struct klab_level *out);

int klab_translate_arm64(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va,
                         struct klab_walk *w);
int klab_translate_x86_64(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va,
                          struct klab_walk *w);
int klab_decode_arm64(unsigned granule_shift, int hw_level, bool lpa2, uint64_t raw, struct klab_level *out);
int klab_decode_x86_64(int hw_level, uint64_t raw, struct klab_level *out);

/* Linux's name for level i of n (top is pgd; the rest are named from the bottom: pte, pmd, pud, p4d). */
const char *klab_linux_level_name(int i, int n);
/* Ends the walk: sets stop and a printf-style reason; returns -1. */
int klab_walk_stop(struct klab_walk *w, enum klab_stop stop, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fills l's position (name, index from va bits [shift+index_bits-1:shift], table and entry PA) and reads the
 * entry. 0, or -1 with the walk stopped as KLAB_STOP_UNREADABLE. */
int klab_visit_entry(struct klab_walk *w, struct klab_physmem *mem, struct klab_level *l, const char *name,
                     uint64_t table_pa, unsigned shift, unsigned index_bits, uint64_t *raw);
/* Appends " name" to bits. */
void klab_bits_add(struct klab_level *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline uint64_t klab_bits(uint64_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & ((hi - lo == 63) ? ~0ull : ((1ull << (hi - lo + 1)) - 1));
}
static inline uint64_t klab_mask(unsigned hi, unsigned lo)
{
    return ((hi == 63) ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
}

#endif
