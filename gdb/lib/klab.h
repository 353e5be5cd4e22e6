/* libklab: exact page-table work for kernel debugging — physical-memory sources, arm64 and x86_64 walkers,
 * descriptor decoding. No Python, no gdb: the klab gdb commands and the klab program both use it. */
#ifndef LIBKLAB_H
#define LIBKLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; only what is marked here is exported. */
#define KLAB_API __attribute__((visibility("default")))

/* ---- physical memory ---------------------------------------------------------------------------------- */

/* Reads len bytes of guest physical memory at pa into buf: 0, or -1 (outside RAM, I/O error). */
typedef int (*klab_read_fn)(void *ctx, uint64_t pa, void *buf, size_t len);

struct klab_physmem;

/* One span of guest RAM: guest physical address → offset in QEMU's RAM backend file. */
struct klab_ram_region {
    uint64_t gpa, size, file_offset;
};

/* The RAM file `klab boot` creates (memory-backend-file, share=on), mapped read-only. */
KLAB_API struct klab_physmem *klab_physmem_open_ramfile(const char *path, const struct klab_ram_region *regions,
                                               size_t nregions, char *err, size_t errlen);
/* Any reader: the gdb Python layer passes one, tests pass synthetic memory. */
KLAB_API struct klab_physmem *klab_physmem_from_callback(klab_read_fn read, void *ctx);
KLAB_API int klab_physmem_read(struct klab_physmem *m, uint64_t pa, void *buf, size_t len);
KLAB_API void klab_physmem_close(struct klab_physmem *m);

/* ---- translation ----------------------------------------------------------------------------------------- */

enum klab_arch { KLAB_ARCH_X86_64, KLAB_ARCH_ARM64 };

/* The registers that define translation. x86_64: CR3, CR4 (LA57, PCIDE, PKE), EFER (NXE).
 * arm64: TTBR0_EL1, TTBR1_EL1, TCR_EL1. */
struct klab_mmu_regs {
    enum klab_arch arch;
    uint64_t cr3, cr4, efer;
    uint64_t ttbr0, ttbr1, tcr;
};

#define KLAB_MAX_LEVELS 5

enum klab_entry_kind {
    KLAB_ENTRY_INVALID,   /* not present / not valid */
    KLAB_ENTRY_TABLE,     /* points at the next level */
    KLAB_ENTRY_BLOCK,     /* a leaf above the last level: x86 2M/1G page, arm64 block */
    KLAB_ENTRY_PAGE,      /* a leaf at the last level */
    KLAB_ENTRY_RESERVED,  /* an encoding the architecture reserves */
};

struct klab_perms {
    bool kernel_read, kernel_write, kernel_exec;
    bool user_read, user_write, user_exec;
};

/* One visited level of a walk, or one decoded descriptor. */
struct klab_level {
    char name[8];          /* Linux's name: pgd, p4d, pud, pmd, pte */
    char hw_name[8];       /* the architecture's: PML4, PD, ... / L0..L3 (L-1 for 52-bit 4K) */
    int hw_level;
    unsigned index;        /* index of the entry in its table */
    unsigned shift;        /* VA bits below this level's index */
    uint64_t table_pa;     /* physical address of the table */
    uint64_t entry_pa;     /* physical address of the entry */
    uint64_t raw;
    enum klab_entry_kind kind;
    uint64_t out_pa;       /* next table (TABLE) or output page/block base (BLOCK, PAGE) */
    char bits[200];        /* decoded attribute names, space-separated */
};

enum klab_stop {
    KLAB_WALK_OK,
    KLAB_STOP_NOT_PRESENT,   /* an invalid entry: the address is not mapped */
    KLAB_STOP_RESERVED,      /* a reserved encoding or reserved bit: the hardware would fault */
    KLAB_STOP_UNREADABLE,    /* a table outside RAM or unreadable */
    KLAB_STOP_NOT_CANONICAL, /* the address is outside every translated range */
    KLAB_STOP_DISABLED,      /* translation for this half is disabled (TCR_EL1.EPDn) */
    KLAB_STOP_BAD_REGS,      /* the registers describe no valid configuration */
};

struct klab_walk {
    uint64_t va;
    char root_name[12];      /* "CR3", "TTBR0_EL1", "TTBR1_EL1" */
    uint64_t root_pa;
    unsigned granule_shift;  /* 12, 14, 16 */
    unsigned va_bits;
    int nlevels;             /* levels visited (including the one that stopped the walk) */
    struct klab_level levels[KLAB_MAX_LEVELS];
    enum klab_stop stop;
    char why[160];
    uint64_t pa, page_size;  /* when stop == KLAB_WALK_OK */
    struct klab_perms perms;
};

/* Translates va. Returns 0 when mapped (walk->stop == KLAB_WALK_OK), -1 otherwise with walk->stop and
 * walk->why saying where and why it stopped. Bounded: at most KLAB_MAX_LEVELS reads. */
KLAB_API int klab_translate(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va, struct klab_walk *walk);

/* Decodes one raw descriptor on its own. arm64: granule_shift 12/14/16 and hw_level -1..3 (3 = page level);
 * x86_64: granule_shift 12, hw_level 1 (PT) .. 5 (PML5). Returns 0, or -1 for arguments that describe no
 * level (out->bits says why). */
KLAB_API int klab_decode_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out);

KLAB_API const char *klab_stop_name(enum klab_stop stop);
/* "rwx/r-x"-style text: kernel then user permissions. buf needs 8 bytes. */
KLAB_API const char *klab_perms_str(const struct klab_perms *p, char buf[8]);

#ifdef __cplusplus
}
#endif
#endif
