/* Shared by klab.c and the per-architecture MMU files; not part of the public API. */
#ifndef LIBKLAB_MMU_INTERNAL_H
#define LIBKLAB_MMU_INTERNAL_H

#include "klab.h"

#include <stdarg.h>

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
