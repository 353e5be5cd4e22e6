/* Shared by klab.c and the per-architecture MMU files; not part of the public API. */
#ifndef LIBKLAB_MMU_INTERNAL_H
#define LIBKLAB_MMU_INTERNAL_H

#include "error_internal.h"
#include "klab.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

/* The shape of one level of a translation root. */
struct klab_regime_level {
    unsigned shift;       /* VA bits below this level's index */
    unsigned index_bits;  /* the table has 1 << index_bits entries */
    int hw_level;
    const char *name;     /* Linux's name */
    const char *hw_name;  /* the architecture's */
};
struct klab_regime;

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
    const char *reserved_why;     /* RESERVED: which rule the entry breaks */
};

/* One translation root as a walk sees it: where its table is, which VAs it covers, the shape of every level,
 * and the architecture's two entry functions. Filled by the architecture's file from the registers; the
 * walks themselves (klab.c for one address, range.c for spans) only traverse. */
struct klab_regime {
    enum klab_arch arch;
    char root_name[12];
    uint64_t root_pa;
    uint64_t va_lo, va_hi;          /* VAs this root translates: [va_lo, va_hi], or, when va_lo > va_hi
                                     * (x86's one root for both halves), [va_lo, ~0] and [0, va_hi] */
    unsigned va_bits, granule_shift;
    int nlevels;
    struct klab_regime_level level[KLAB_MAX_LEVELS];
    /* Classifies entry raw at level li under the parent's limits. */
    void (*step)(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                 struct klab_step *st);
    /* Fills the hardware-level and decoded-bits fields of out (as klab_decode_entry does). */
    void (*describe)(const struct klab_regime *rg, int li, uint64_t raw, struct klab_level *out);
    /* architecture specifics */
    bool tbi, lpa2, hw_dirty, nxe;
    const void *granule;
};

/* A non-present entry split by the architecture's software layout (swp.c gives the types their meaning). */
struct klab_swp_arch {
    enum { SWP_ARCH_NONE, SWP_ARCH_PRESENT, SWP_ARCH_ENTRY, SWP_ARCH_UNKNOWN } what;
    enum klab_swp_kind present_kind;   /* PRESENT: KLAB_SWP_PROT_NONE or KLAB_SWP_INVALIDATED */
    uint64_t pfn;                      /* PRESENT */
    unsigned type;                     /* ENTRY: __swp_type() */
    uint64_t offset;                   /* ENTRY: __swp_offset() */
    bool soft_dirty, exclusive, uffd_wp;
    const char *why;                   /* UNKNOWN */
};

/* Everything libklab knows that differs between the architectures, one table each (mmu_x86_64.c,
 * mmu_arm64.c), as drgn's arch_info: the rest of libklab asks klab_arch() instead of testing the arch. */
struct klab_arch_ops {
    enum klab_arch arch;
    const char *name;                 /* klab's: "x86_64", "arm64" */
    const char *gdb_names[3];         /* gdb's architecture names ("i386:x86-64", "aarch64") */
    /* Translation on/off and the registers that shape it, by their gdb-stub names (QEMU's XML). */
    const char *enable_reg;
    uint64_t enable_bit;
    const char *off_text;             /* how the off state reads: "CR0.PG=0" */
    const char *regs[5];              /* enable_reg, then the rest in the order of reg_offset; NULL-terminated */
    size_t reg_offset[3];             /* into struct klab_mmu_regs, of regs[1..] */
    int nroots;                       /* translation roots: 1 (CR3) or 2 (TTBR0_EL1, TTBR1_EL1) */
    size_t root_offset[2];            /* the root register of the lower / upper half */
    unsigned va_root_bit;             /* the VA bit that chooses the upper root (arm64: 55), 0 if one root */
    unsigned granules;                /* bit N: a 2^N-byte granule exists */
    int first_level, leaf_level;      /* hw_level numbers of the top-most and the page level */
    enum klab_stop (*regime)(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                             size_t whylen);
    int (*decode)(unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out, char *err,
                  size_t errlen);
    /* Why QEMU's debug translation (gva2gpa) cannot see a page the walk w mapped, given the stub register
     * state_reg (NULL: none); NULL when it can. */
    const char *state_reg;
    const char *(*qemu_blind)(const struct klab_walk *w, uint64_t state);
    /* MAX_PHYSMEM_BITS (klab_max_physmem_bits). */
    unsigned (*max_physmem_bits)(const struct klab_mmu_regs *regs, unsigned config_pa_bits, bool config_lpa2);
    /* Splits a non-present entry of a user table at hw_level by the kernel's layout for this arch. */
    void (*swp)(const struct klab_kernel_mm *k, unsigned granule_shift, int hw_level, uint64_t raw,
                struct klab_swp_arch *out);
    /* For ptdiff, by the names describe() writes: the leaf bits the hardware or the kernel flip as a page is
     * used (left out unless asked), the names that only restate the leaf's size (a split says it already),
     * and the bit that makes write permission hardware-managed (arm64 DBM: the CPU clears AP[2] on the first
     * write, Arm ARM D8.4.6), whose presence on both sides makes names starting with dbm_managed volatile. */
    const char *diff_volatile[4];
    const char *diff_size_names[4];
    /* The names (prefixes) that carry the rights: a change of only these is "perms", not also "bits". */
    const char *diff_perm_names[6];
    const char *dbm_name, *dbm_managed;
};
extern const struct klab_arch_ops klab_arch_x86_64, klab_arch_arm64;
/* The table of an architecture; NULL for a value that is none. */
const struct klab_arch_ops *klab_arch(enum klab_arch arch);

/* The architecture a walk or range was made on, from its root's name: x86's one root is CR3. */
static inline enum klab_arch klab_root_arch(const char *root_name)
{
    return strcmp(root_name, "CR3") ? KLAB_ARCH_ARM64 : KLAB_ARCH_X86_64;
}

/* Whether va is translated by the upper root (arm64 TTBR1); false where one root covers both halves. */
static inline bool klab_upper_root(const struct klab_arch_ops *a, uint64_t va)
{
    return a->va_root_bit && ((va >> a->va_root_bit) & 1);
}

/* Fills the regime of one root: arm64 upper = TTBR1 (else TTBR0); x86_64 has one root (upper ignored).
 * Returns KLAB_WALK_OK or the reason there is none (why filled). */
enum klab_stop klab_regime_arm64(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                                 size_t whylen);
enum klab_stop klab_regime_x86_64(const struct klab_mmu_regs *regs, struct klab_regime *rg, char *why, size_t whylen);
/* The regime of either architecture (klab.c). */
enum klab_stop klab_regime(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                           size_t whylen);

int klab_decode_arm64(unsigned granule_shift, int hw_level, bool lpa2, uint64_t raw, struct klab_level *out,
                      char *err, size_t errlen);
int klab_decode_x86_64(int hw_level, uint64_t raw, struct klab_level *out, char *err, size_t errlen);

/* Linux's name for level i of n (top is pgd; the rest are named from the bottom: pte, pmd, pud, p4d). */
const char *klab_linux_level_name(int i, int n);
/* snprintf that appends at *used and never runs past len (*used counts what did not fit too): the text of
 * format.c and ptdiff.c. */
void klab_add(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Text that grows as it is written (snapshot files, diffs): p is malloc'ed and NUL-terminated; failed once
 * memory ran out (the text is then incomplete). */
struct klab_textbuf {
    char *p;
    size_t len, cap;
    bool failed;
};
void klab_tb_add(struct klab_textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
