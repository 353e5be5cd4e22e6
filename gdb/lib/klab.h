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

/* ---- errors -------------------------------------------------------------------------------------------- */

/* One convention: a call that can fail returns 0 (or a pointer) on success and -1 (or NULL, or a negative
 * klab_rsp_status) on failure, and says why in the struct klab_error the caller passed (NULL: not told).
 * The RSP client keeps its last error in its handle (klab_rsp_error). A walk that stops is not an error:
 * where and why it stopped is the walk's answer (walk->stop, walk->why). */
struct klab_error {
    char msg[384];
};

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
                                               size_t nregions, struct klab_error *err);
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
    bool translation_off;   /* x86 CR0.PG=0 / arm64 SCTLR_EL1.M=0: addresses are not translated at all */
};

/* An ELF core dump (QEMU's dump-guest-memory, paging or not) as physical memory: its PT_LOAD segments by
 * p_paddr. A PA the dump does not hold reads as an error. The file is opened without following a link and
 * checked against its size (klab_elfcore_info says what it holds; vmcoreinfo points into the mapped file,
 * valid until klab_physmem_close; NULL when the dump has no VMCOREINFO note). */
struct klab_elfcore_info {
    enum klab_arch arch;
    const char *vmcoreinfo;
    size_t vmcoreinfo_len;
    uint64_t ram_bytes;   /* bytes of RAM the segments hold, each PA counted once */
    unsigned ncpus;       /* CPUs with an NT_PRSTATUS note */
};
KLAB_API struct klab_physmem *klab_physmem_open_elfcore(const char *path, struct klab_elfcore_info *info,
                                                        struct klab_error *err);

/* A dumped CPU's register, by the gdb stub's name: x86_64 rip rsp rbp rax..r15 eflags cs ss ds es fs gs
 * fs_base gs_base (NT_PRSTATUS) and cr0 cr2 cr3 cr4 k_gs_base (QEMU's CPU-state note); arm64 pc sp x0..x30
 * cpsr (NT_PRSTATUS). 0, or -1 when the dump has no such CPU or register. */
KLAB_API int klab_elfcore_register(const struct klab_physmem *m, unsigned cpu, const char *name, uint64_t *value,
                                   struct klab_error *err);

/* The translation registers of the kernel's own page tables, from a dump's VMCOREINFO (a dump has no system
 * registers: QEMU's x86 note lacks EFER, its arm64 notes lack TTBR/TCR). x86_64: CR3 = PA of
 * SYMBOL(swapper_pg_dir) (init_top_pgt) by NUMBER(phys_base), CR4.LA57 = NUMBER(pgtable_l5_enabled), long mode
 * with NXE. arm64: TTBR1 = SYMBOL(swapper_pg_dir) - NUMBER(kimage_voffset), TCR_EL1.T1SZ =
 * NUMBER(TCR_EL1_T1SZ), TG1 from PAGESIZE, TTBR0 walks off (EPD0: user tables are a task's, not the kernel's).
 * 0, or -1 with err saying which fact is missing. Pure. */
KLAB_API int klab_mmu_regs_from_vmcoreinfo(const char *text, size_t len, enum klab_arch arch,
                                           struct klab_mmu_regs *regs, struct klab_error *err);
/* The value after "KEY=" at a line start of a VMCOREINFO text; base 16 takes hex with or without 0x, 0 takes
 * what strtoull does, and a "-N" is N's two's complement (VMCOREINFO_NUMBER prints with %ld). false when the
 * key is missing or its value is not a number. */
KLAB_API bool klab_vmcoreinfo_value(const char *text, size_t len, const char *key, int base, uint64_t *v);

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
    KLAB_STOP_DISABLED,      /* translation is off, or disabled for this half (TCR_EL1.EPDn) */
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

/* The shape of the translation root that covers the kernel half (upper) or the user half: granule, VA size,
 * levels, and the VAs it translates. Callers take the page size and the start of the kernel half (arm64's
 * PAGE_OFFSET is the lowest TTBR1 address) from the registers instead of assuming them. Returns 0, or -1
 * with why filled when the registers describe no usable root. */
struct klab_geometry {
    char root_name[12];
    uint64_t root_pa;
    uint64_t va_lo, va_hi;   /* as klab_regime: va_lo > va_hi means x86's one root for both halves */
    unsigned va_bits, granule_shift;
    int nlevels;
};
KLAB_API int klab_geometry(const struct klab_mmu_regs *regs, bool upper, struct klab_geometry *g,
                           struct klab_error *err);

/* Decodes one raw descriptor on its own. arm64: granule_shift 12/14/16 and hw_level -1..3 (3 = page level);
 * x86_64: granule_shift 12, hw_level 1 (PT) .. 5 (PML5). Returns 0, or -1 for arguments that describe no
 * level (err says why). */
KLAB_API int klab_decode_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw,
                               struct klab_level *out, struct klab_error *err);

/* ---- non-present entries: what the kernel keeps in them ----------------------------------------------- */

/* A non-present leaf means nothing to the MMU, but Linux stores a software entry in it: a swap entry (swap
 * type and offset), or, in the swap types above MAX_SWAPFILES, a migration, device-private, hwpoison or PTE
 * marker entry (include/linux/swap.h, swapops.h), each in the architecture's bit layout
 * (arch/x86/include/asm/pgtable_64.h, arch/arm64/include/asm/pgtable.h). The numbering of the special types
 * depends on the kernel's version and configuration, so the caller says what it knows of the kernel. */
enum {
    KLAB_KCONFIG_MIGRATION = 1 << 0,       /* CONFIG_MIGRATION: 3 migration types */
    KLAB_KCONFIG_MEMORY_FAILURE = 1 << 1,  /* CONFIG_MEMORY_FAILURE: the hwpoison type */
    KLAB_KCONFIG_DEVICE_PRIVATE = 1 << 2,  /* CONFIG_DEVICE_PRIVATE: 4 device types */
    KLAB_KCONFIG_PTE_MARKER = 1 << 3,      /* CONFIG_PTE_MARKER (5.19 .. 6.11): the PTE marker type */
    KLAB_KCONFIG_SOFT_DIRTY = 1 << 4,      /* CONFIG_MEM_SOFT_DIRTY: x86's swap soft-dirty bit */
    KLAB_KCONFIG_UFFD_WP = 1 << 5,         /* CONFIG_PTE_MARKER_UFFD_WP: the swap uffd-wp bit */
};
struct klab_kernel_mm {
    unsigned version;           /* major << 16 | minor << 8 (as KERNEL_VERSION); 0: unknown */
    int max_swapfiles;          /* MAX_SWAPFILES = ARRAY_SIZE(swap_info), from the kernel's DWARF; 0: unknown */
    unsigned config;            /* KLAB_KCONFIG_* that are =y */
    unsigned config_known;      /* KLAB_KCONFIG_* the caller read from the kernel's config (the rest: unknown) */
    unsigned max_physmem_bits;  /* MAX_PHYSMEM_BITS (x86: 52 with LA57, else 46; arm64: CONFIG_ARM64_PA_BITS) */
};

enum klab_swp_kind {
    KLAB_SWP_NONE,               /* pte_none(): an empty entry */
    KLAB_SWP_SWAP,               /* a page in swap area `type` at page `offset` */
    KLAB_SWP_MIGRATION_READ,     /* a page under migration, mapped read-only */
    KLAB_SWP_MIGRATION_READ_EXCLUSIVE,
    KLAB_SWP_MIGRATION_WRITE,
    KLAB_SWP_DEVICE_WRITE,       /* device-private memory (HMM) */
    KLAB_SWP_DEVICE_READ,
    KLAB_SWP_DEVICE_EXCLUSIVE_WRITE,
    KLAB_SWP_DEVICE_EXCLUSIVE_READ,
    KLAB_SWP_HWPOISON,           /* a page with a memory error */
    KLAB_SWP_PTE_MARKER,         /* offset = marker bits: uffd-wp, poisoned / swapin error */
    KLAB_SWP_SWAPIN_ERROR,       /* 5.19 .. 6.1: a page whose swap-in failed */
    KLAB_SWP_PROT_NONE,          /* present to the kernel, not to the MMU: PROT_NONE or NUMA hinting */
    KLAB_SWP_INVALIDATED,        /* a huge PMD made invalid while it is split or changed (pmdp_invalidate) */
    KLAB_SWP_KERNEL,             /* not present in a kernel mapping: no software entry there */
    KLAB_SWP_UNKNOWN,            /* an encoding klab cannot justify (why says why) */
};

struct klab_swp {
    enum klab_swp_kind kind;
    unsigned type;               /* swp_type(): the swap area, or the special type's number */
    uint64_t offset;             /* swp_offset() */
    uint64_t pfn;                /* migration, device, hwpoison, PROT_NONE, invalidated: the page frame */
    bool has_pfn;
    bool soft_dirty, exclusive, uffd_wp;   /* the swap PTE's own bits (x86 bit 1, x86 bit 3 / arm64 bit 2, ...) */
    bool young, dirty;           /* a migration entry's saved A/D bits (swapops.h SWP_MIG_YOUNG/DIRTY) */
    char why[160];               /* UNKNOWN: why klab does not decode it; KERNEL: what such entries are */
};

/* Decodes the non-present entry raw at hw_level (as klab_decode_entry) of a user-half table (upper_half
 * false) or a kernel-half one. 0, or -1 when the arguments describe no level or raw is present. */
KLAB_API int klab_decode_swp(enum klab_arch arch, const struct klab_kernel_mm *k, unsigned granule_shift,
                             int hw_level, bool upper_half, uint64_t raw, struct klab_swp *out,
                             struct klab_error *err);
/* The same for the entry a walk stopped at (walk->stop == KLAB_STOP_NOT_PRESENT), in the walk's half. */
KLAB_API int klab_walk_swp(const struct klab_walk *walk, const struct klab_kernel_mm *k, struct klab_swp *out,
                           struct klab_error *err);
/* The same for a KLAB_RANGE_NON_PRESENT range of klab_walk_ranges (below). */
struct klab_range;
KLAB_API int klab_range_swp(const struct klab_range *range, const struct klab_kernel_mm *k, struct klab_swp *out,
                            struct klab_error *err);
/* The kernel's MAX_PHYSMEM_BITS under these registers: x86 52 with LA57 else 46 (asm/sparsemem.h); arm64
 * CONFIG_ARM64_PA_BITS (config_pa_bits, 0: unknown, then 0), but 48 with CONFIG_ARM64_LPA2 while TCR_EL1.DS
 * is clear (asm/pgtable-prot.h PHYS_MASK_SHIFT). */
KLAB_API unsigned klab_max_physmem_bits(const struct klab_mmu_regs *regs, unsigned config_pa_bits, bool config_lpa2);
/* The kernel config options behind KLAB_KCONFIG_* bit 0, 1, ...: "CONFIG_MIGRATION", ...; NULL-terminated. */
KLAB_API const char *const *klab_kconfig_names(void);
/* The kind's name: "swap", "migration-write", ... */
KLAB_API const char *klab_swp_kind_name(enum klab_swp_kind kind);

/* ---- architectures: what differs, asked by name (the tables are in mmu_x86_64.c and mmu_arm64.c) ---- */

/* klab's name ("x86_64", "arm64") or gdb's architecture name ("i386:x86-64", "aarch64") → the arch, or -1. */
KLAB_API int klab_arch_from_name(const char *name);
KLAB_API const char *klab_arch_name(enum klab_arch arch);
/* What a descriptor decode takes on this arch: granules (bit N = a 2^N-byte granule), the hw_level of the
 * top-most and of the page level. 0, or -1 for no such arch. */
KLAB_API int klab_arch_levels(enum klab_arch arch, unsigned *granules, int *first_level, int *leaf_level);
/* The stub registers (gdb's names) that define translation: the enable register (x86 cr0, arm64 SCTLR) first,
 * NULL-terminated. A debugger reads them in that order and hands the values to klab_mmu_regs_set(). */
KLAB_API const char *const *klab_mmu_reg_names(enum klab_arch arch);
KLAB_API int klab_mmu_regs_set(struct klab_mmu_regs *regs, enum klab_arch arch, const uint64_t *values);

/* Which translation root another address space replaces. */
enum klab_root {
    KLAB_ROOT_USER,     /* a process's own tables (mm->pgd): x86 CR3, arm64 TTBR0_EL1 */
    KLAB_ROOT_FOR_VA,   /* the root that translates va: arm64 by VA bit 55 */
    KLAB_ROOT_ALL,      /* every root */
};
KLAB_API int klab_replace_root(struct klab_mmu_regs *regs, enum klab_root which, uint64_t va, uint64_t root_pa);

/* ---- range iteration: whole page tables as merged ranges ---------------------------------------------- */

enum klab_range_kind {
    KLAB_RANGE_MAPPED,   /* leaves with contiguous VA and PA and equal attributes */
    KLAB_RANGE_BAD,      /* an entry the hardware would fault on (reserved encoding) or a table outside RAM */
    KLAB_RANGE_NON_PRESENT, /* one non-present, non-zero entry (KLAB_FILTER_NON_PRESENT): klab_decode_swp says
                             * what the kernel keeps in it */
};

struct klab_range {
    enum klab_range_kind kind;
    char root_name[12];
    uint64_t va_start, va_end;   /* [va_start, va_end) */
    uint64_t pa_start;
    uint64_t page_size;          /* size of each leaf: 4K, 2M, 1G, 64K, 512M, ... */
    uint64_t leaves;             /* leaf entries merged into this range */
    char level_name[8];          /* Linux's name of the leaf level (pte, pmd, pud) */
    int hw_level;                /* the architecture's number of that level (as klab_decode_entry) */
    unsigned granule_shift;      /* the root's granule */
    struct klab_perms perms;
    uint64_t first_raw;          /* raw value of the first leaf (or of the bad entry) */
    char attrs[200];             /* the first leaf decoded (or why the range is bad) */
};

/* Leaf filters: a leaf must match every flag given. */
enum {
    KLAB_FILTER_WRITABLE = 1 << 0,   /* writable by the kernel */
    KLAB_FILTER_EXEC = 1 << 1,       /* executable by the kernel or by user space */
    KLAB_FILTER_USER = 1 << 2,       /* accessible from user space */
    KLAB_FILTER_KERNEL = 1 << 3,     /* kernel-only */
    KLAB_FILTER_NO_MERGE = 1 << 4,   /* report every leaf on its own */
    KLAB_FILTER_NON_PRESENT = 1 << 5,/* report the non-present, non-zero entries instead of the mapped leaves */
};

struct klab_range_opts {
    uint64_t va_start, va_end;   /* inclusive span to dump; 0 and 0 = everything */
    unsigned filters;
    uint64_t page_size;          /* only leaves of this size (0 = any) */
    uint64_t max_entries;        /* bound on entries examined (0 = 1 << 26): corrupt tables cannot hang it */
};

struct klab_range_stats {
    uint64_t tables_read, bytes_read, entries, leaves, ranges, bad;
};

/* Called for each range in VA order; a non-zero return stops the walk (and is returned). */
typedef int (*klab_range_fn)(void *ctx, const struct klab_range *range);

/* Walks every root the registers define (x86_64: CR3; arm64: TTBR0_EL1 then TTBR1_EL1) over the span in
 * opts. Every table is read once, whole, and kept while its subtree is walked. Returns 0, the callback's
 * non-zero value, or -1 with err filled (no usable root, entry budget exhausted). stats may be NULL. */
KLAB_API int klab_walk_ranges(const struct klab_mmu_regs *regs, struct klab_physmem *mem,
                              const struct klab_range_opts *opts, klab_range_fn fn, void *ctx,
                              struct klab_range_stats *stats, struct klab_error *err);

/* ---- page-table snapshots and their differences (klab ptsnap, klab ptdiff) ----------------------------- */

/* A whole walk kept for later: every mapped and every bad range of klab_walk_ranges, with what it was taken
 * of. Saved as text (one line per range, ending with a count line so a cut file is refused) and diffed as
 * merged ranges, so a snapshot of a 1 GiB linear map in 4K pages stays a few lines when nothing moved. */
struct klab_ptsnap;

struct klab_ptsnap_info {
    enum klab_arch arch;
    size_t nranges;
    int pid;                 /* the process whose user tables it holds (--pid), or -1: the CPU's own */
    uint64_t root_pa[2];     /* the roots walked: x86 CR3 / arm64 TTBR0_EL1 in [0], TTBR1_EL1 in [1] */
    char label[160];         /* what it was taken of, free text ("VM lab, CPU 0", "pid 77 (cow)") */
};

/* Walks as klab_walk_ranges (opts may be NULL: everything) and keeps the ranges. NULL with err filled. */
KLAB_API struct klab_ptsnap *klab_ptsnap_take(const struct klab_mmu_regs *regs, struct klab_physmem *mem,
                                              const struct klab_range_opts *opts, int pid, const char *label,
                                              struct klab_error *err);
KLAB_API void klab_ptsnap_free(struct klab_ptsnap *s);
KLAB_API void klab_ptsnap_info(const struct klab_ptsnap *s, struct klab_ptsnap_info *out);
/* Range i (i < nranges), or NULL. */
KLAB_API const struct klab_range *klab_ptsnap_range(const struct klab_ptsnap *s, size_t i);
/* The snapshot as text: a malloc'ed, NUL-terminated buffer (*len without the NUL), or NULL (no memory). */
KLAB_API char *klab_ptsnap_format(const struct klab_ptsnap *s, size_t *len);
/* Parses that text (untrusted: every field is checked, a line or count that does not fit is refused). */
KLAB_API struct klab_ptsnap *klab_ptsnap_parse(const char *text, size_t len, struct klab_error *err);
/* Writes the snapshot to path, replacing it atomically: the folder must be the caller's and writable by
 * nobody else, and a symlink at path is refused, not followed. The file is 0600. 0, or -1 with err. */
KLAB_API int klab_ptsnap_save(const struct klab_ptsnap *s, const char *path, struct klab_error *err);
/* Reads a snapshot written by klab_ptsnap_save: a regular file (not a symlink) of the caller's (or root's)
 * that nobody else may write, in such a folder. NULL with err. */
KLAB_API struct klab_ptsnap *klab_ptsnap_load(const char *path, struct klab_error *err);

/* Where snapshot NAME lives: a NAME with a '/' is a path, as given; a plain name ([A-Za-z0-9_.-], not
 * starting with '.') is a file of the snapshot store shared by the klab program and gdb:
 * $KLAB_PTSNAP_DIR, else $KLAB_CACHE/ptsnap, else $XDG_CACHE_HOME/klab/ptsnap, else ~/.cache/klab/ptsnap
 * (created 0700 when create). 0, or -1 with err. */
KLAB_API int klab_ptsnap_path(const char *name, bool create, char *out, size_t outlen, struct klab_error *err);
/* klab_ptsnap_load of the snapshot klab_ptsnap_path names. NULL with err. */
KLAB_API struct klab_ptsnap *klab_ptsnap_open(const char *name, struct klab_error *err);
/* The store's folder (as above; out gets it), for listing. 0, or -1 with err. */
KLAB_API int klab_ptsnap_store(bool create, char *out, size_t outlen, struct klab_error *err);

/* What changed over [va_start, va_end) between two snapshots. One change covers VAs where the difference is
 * the same kind all along, so a fork's copy-on-write shows as one "perms" range per VMA. */
enum klab_ptchange_kind {
    KLAB_PTCHANGE_MAPPED,     /* mapped in b only */
    KLAB_PTCHANGE_UNMAPPED,   /* mapped in a only */
    KLAB_PTCHANGE_CHANGED,    /* mapped in both, differently (what says how) */
};
enum {
    KLAB_PTDIFF_PERMS = 1 << 0,    /* kernel or user read/write/execute rights */
    KLAB_PTDIFF_MOVED = 1 << 1,    /* another physical address */
    KLAB_PTDIFF_SPLIT = 1 << 2,    /* smaller leaves (2M -> 4K x 512) */
    KLAB_PTDIFF_MERGED = 1 << 3,   /* larger leaves */
    KLAB_PTDIFF_BITS = 1 << 4,     /* other attribute bits (cache type, global, ...) */
    KLAB_PTDIFF_BAD = 1 << 5,      /* a range the hardware would fault on, in either */
};
struct klab_ptchange {
    enum klab_ptchange_kind kind;
    unsigned what;                 /* KLAB_PTDIFF_* for CHANGED (and BAD for any kind) */
    uint64_t va_start, va_end;     /* [va_start, va_end); va_end 0 means the top of the address space */
    struct klab_range before, after;  /* the ranges at va_start, cut to start there (zeroed where none) */
    bool pa_follows;               /* both sides' PA advance with the VA over the whole change */
    uint64_t pieces;               /* how many diff segments were joined into this change */
    char bits_gone[120], bits_new[120];  /* attribute names only in before / only in after */
};
/* Options of a diff. */
enum {
    KLAB_PTDIFF_ALL_BITS = 1 << 0, /* also report bits the hardware and kernel flip as pages are used
                                    * (x86 ACCESSED and DIRTY; arm64 AF, DBM-managed AP[2], software DIRTY) */
};
typedef int (*klab_ptchange_fn)(void *ctx, const struct klab_ptchange *change);
/* Calls fn for each change in VA order over [va_start, va_end] (0, 0: everything). The snapshots must be of
 * one arch. 0, the callback's non-zero value, or -1 with err. */
KLAB_API int klab_ptdiff(const struct klab_ptsnap *a, const struct klab_ptsnap *b, uint64_t va_start,
                         uint64_t va_end, unsigned flags, klab_ptchange_fn fn, void *ctx, struct klab_error *err);
/* One line: "~ 0x..-0x.. SIZE perms rw-/rw- -> r--/r--  4K x4 pte  -RW +RO", "+ ... mapped PA ...". */
KLAB_API size_t klab_format_ptchange(const struct klab_ptchange *c, char *buf, size_t len);
/* The whole diff as klab ptdiff prints it: one line per change, then a summary line ("3 changes: ..." or
 * "no change"). A malloc'ed string, or NULL with err. */
KLAB_API char *klab_ptdiff_text(const struct klab_ptsnap *a, const struct klab_ptsnap *b, uint64_t va_start,
                                uint64_t va_end, unsigned flags, struct klab_error *err);

/* ---- search ------------------------------------------------------------------------------------------- */

/* What klab_search looks for: an aligned value of width bytes (4 or 8, little-endian) in the mapped leaves
 * of [va_start, va_end] (0, 0: everything) that pass the leaf filters, reading only the physical memory that
 * lies in ram[0..nram) (never device memory). max_hits 0: no bound. */
struct klab_search_opts {
    uint64_t va_start, va_end;
    uint64_t value;
    unsigned width;
    unsigned filters;
    uint64_t max_hits;
    const struct klab_ram_region *ram;   /* file_offset unused */
    size_t nram;
};

struct klab_search_stats {
    uint64_t mapped_bytes, bytes_read, skipped_bytes, hits;
    uint64_t zero_bytes;   /* holes of the RAM file: never written by the guest, zeros, not read */
};

/* Called for each hit in VA order; a non-zero return stops the search. */
typedef int (*klab_hit_fn)(void *ctx, uint64_t va, uint64_t pa);

/* Searches as above: 0 (also when stopped by max_hits or the callback), or -1 with err filled. */
KLAB_API int klab_search(const struct klab_mmu_regs *regs, struct klab_physmem *mem, const struct klab_search_opts *o,
                         klab_hit_fn fn, void *ctx, struct klab_search_stats *stats, struct klab_error *err);

/* ---- GDB remote serial protocol client ------------------------------------------------------------------- */

/* Every call returns 0 or one of these (negative); klab_rsp_error() has the message. A malformed reply is an
 * error, never a crash. */
enum klab_rsp_status {
    KLAB_RSP_OK = 0,
    KLAB_RSP_EIO = -1,         /* connection refused, reset or closed */
    KLAB_RSP_ETIMEDOUT = -2,   /* no reply in time */
    KLAB_RSP_EPROTO = -3,      /* a reply that breaks the protocol (framing, checksum, bad hex, wrong shape) */
    KLAB_RSP_ETARGET = -4,     /* the stub answered "Enn" */
    KLAB_RSP_EUNSUPPORTED = -5,/* the stub answered with an empty packet */
    KLAB_RSP_EINVAL = -6,      /* a bad argument: unknown register name, buffer too small */
};

struct klab_rsp;

/* Connects to "HOST:PORT", "unix:PATH" or a path containing '/'. timeout_ms bounds every later wait
 * (0 = 5000). Negotiates qSupported and, when offered, no-ack mode. NULL with err filled on failure. */
KLAB_API struct klab_rsp *klab_rsp_connect(const char *where, int timeout_ms, struct klab_error *err);
KLAB_API void klab_rsp_close(struct klab_rsp *r);
KLAB_API const char *klab_rsp_error(const struct klab_rsp *r);
KLAB_API void klab_rsp_set_timeout(struct klab_rsp *r, int timeout_ms);

/* Sends one packet and returns the first reply that is not console output ("O..."): the reply's length, or a
 * negative status. The reply is NUL-terminated and truncated to replylen - 1 (then KLAB_RSP_EINVAL). */
KLAB_API int klab_rsp_request(struct klab_rsp *r, const char *packet, char *reply, size_t replylen);

/* Register number of a register by name (case-insensitive), from the stub's target description
 * (qXfer:features:read, includes followed). Negative status when absent. bitsize may be NULL. */
KLAB_API int klab_rsp_register_number(struct klab_rsp *r, const char *name, unsigned *bitsize);
/* Reads a register of up to 64 bits by name, on the current CPU. */
KLAB_API int klab_rsp_read_register(struct klab_rsp *r, const char *name, uint64_t *value);
/* Selects the CPU (0-based) later register reads use ("Hg"). */
KLAB_API int klab_rsp_select_cpu(struct klab_rsp *r, int cpu);
/* Reads target memory (virtual, or physical after klab_rsp_set_physical(r, true)). */
KLAB_API int klab_rsp_read_memory(struct klab_rsp *r, uint64_t addr, void *buf, size_t len);
/* QEMU's Qqemu.PhyMemMode: memory requests address guest physical memory while on. */
KLAB_API int klab_rsp_set_physical(struct klab_rsp *r, bool on);
KLAB_API int klab_rsp_get_physical(struct klab_rsp *r, bool *on);
/* A monitor command through qRcmd (QEMU: any HMP command); its output is collected into out. */
KLAB_API int klab_rsp_monitor(struct klab_rsp *r, const char *command, char *out, size_t outlen);

enum klab_rsp_break { KLAB_BREAK_SOFTWARE = 0, KLAB_BREAK_HARDWARE = 1 };
KLAB_API int klab_rsp_breakpoint(struct klab_rsp *r, enum klab_rsp_break type, uint64_t addr, bool insert);

/* Why the target stopped (stop reply packets). */
struct klab_rsp_stop {
    char kind;          /* 'S'/'T' stopped, 'W' exited, 'X' terminated */
    int signal;         /* S/T/X: signal number; W: exit status */
    long thread;        /* T "thread:" (QEMU: CPU index + 1), or -1 */
    char reason[16];    /* T "swbreak", "hwbreak", "watch", "rwatch", "awatch", or "" */
    uint64_t data_addr; /* the watched address for watch/rwatch/awatch */
};
/* Resumes all CPUs (step: one instruction on the current one) and waits for the stop reply. On time-out the
 * target is interrupted, the stop is still collected, and KLAB_RSP_ETIMEDOUT is returned. */
KLAB_API int klab_rsp_resume(struct klab_rsp *r, bool step, int timeout_ms, struct klab_rsp_stop *stop);
/* Stops a running target (^C) and collects its stop reply. */
KLAB_API int klab_rsp_interrupt(struct klab_rsp *r, struct klab_rsp_stop *stop);
/* Asks the stop reason ("?"). */
KLAB_API int klab_rsp_query_stop(struct klab_rsp *r, struct klab_rsp_stop *stop);
/* Detaches: QEMU resumes the guest. */
KLAB_API int klab_rsp_detach(struct klab_rsp *r);

/* Reads the registers that define translation (x86_64: cr0, cr3, cr4, efer; arm64: SCTLR_EL1, TTBR0_EL1,
 * TTBR1_EL1, TCR_EL1) for the current CPU into regs. */
KLAB_API int klab_rsp_read_mmu_regs(struct klab_rsp *r, enum klab_arch arch, struct klab_mmu_regs *regs);

/* Guest physical memory through the stub (Qqemu.PhyMemMode:1 while open, the previous mode restored by
 * klab_physmem_close). Reads are split to fit QEMU's reply limit. The stub connection stays the caller's. */
KLAB_API struct klab_physmem *klab_physmem_from_rsp(struct klab_rsp *r, struct klab_error *err);

/* One line per translation root describing what the registers set up, e.g.
 * "TTBR1_EL1: 64K granule, 48-bit VA, 3 levels (L1..L3), table at PA 0x41b40000". Returns the length. */
KLAB_API size_t klab_describe_regs(const struct klab_mmu_regs *regs, char *buf, size_t len);

KLAB_API const char *klab_stop_name(enum klab_stop stop);

/* ---- text: the one place the walks' output is worded (klab vtop / ptdump / pte, in the shell and in gdb) -- */

/* "4K", "2M", "1G", or bytes. buf needs 24 bytes. */
KLAB_API const char *klab_size_str(uint64_t size, char buf[24]);
/* crash's vtop layout: "VIRTUAL PHYSICAL", the address and its PA (or "(not mapped)"), the root, one line per
 * level ("    PMD: entry-PA => raw  [hw-name name index N] bits"), then "   PAGE: base  (size)  perms" or
 * "  STOP: reason: why". label (may be NULL) follows the address, as a symbol name. explain adds seed 002's
 * derivation of each level's shift and index. Returns the length, as snprintf. */
KLAB_API size_t klab_format_walk(const struct klab_walk *w, const char *label, bool explain, char *buf, size_t len);
/* One ptdump line, after a "---[ ROOT ]---" line when the range's root differs from last_root (updated). */
KLAB_API size_t klab_format_range(const struct klab_range *r, char last_root[12], char *buf, size_t len);
/* A decoded descriptor: "  PTE: raw  ARCH level HW (NK granule)", kind, output address, bits. -1 (err says
 * why) when the arguments describe no level. */
KLAB_API int klab_format_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw, char *buf,
                               size_t len, struct klab_error *err);
/* One line for a decoded non-present entry, crash's "SWAP ... OFFSET" made explicit:
 * "   SWAP: type 0 (/dev/vdb)  offset 0x1f  exclusive soft-dirty", "  MIGRATION: write  PFN 0x1234 ...".
 * swap_name (may be NULL) names swap area `type`. */
KLAB_API size_t klab_format_swp(const struct klab_swp *s, const char *swap_name, char *buf, size_t len);
/* QEMU's own translation (HMP gva2gpa) beside klab's walk, as one line: "QEMU gva2gpa: PA (agrees)",
 * "... (DISAGREES)", or why QEMU's answer does not count: QEMU translates with the CPU's current rights, and
 * an arm64 CPU at EL1 with PSTATE.PAN set may not touch EL0's pages, so QEMU calls them unmapped. cpu_state
 * is the register klab_qemu_state_reg() names (arm64: PSTATE as QEMU's cpsr), 0 where there is none.
 * Returns 0 agrees, 1 disagrees, 2 QEMU cannot see this page (not a disagreement). */
KLAB_API int klab_qemu_verdict(const struct klab_walk *w, bool qemu_mapped, uint64_t qemu_pa, uint64_t cpu_state,
                               char *buf, size_t len);
/* The stub register klab_qemu_verdict wants for arch, or NULL. */
KLAB_API const char *klab_qemu_state_reg(enum klab_arch arch);
/* A KLAB_RANGE_NON_PRESENT line with its decode: "0x...-0x... 4K  pte  entry 0x...: SWAP: type 0 ...". */
KLAB_API size_t klab_format_range_swp(const struct klab_range *r, const struct klab_swp *s, const char *swap_name,
                                      char last_root[12], char *buf, size_t len);
/* --filter w,x,u,k (also writable, exec, user, kernel) → KLAB_FILTER_* bits; u and k exclude each other. */
KLAB_API int klab_parse_filters(const char *s, unsigned *filters, struct klab_error *err);
/* --page-size 4K, 2M, 1G, 64K, 512M ... → bytes. */
KLAB_API int klab_parse_page_size(const char *s, uint64_t *size, struct klab_error *err);

/* ---- pictures: a walk and an address space as SVG (klab vtop / ptdump / ptdiff --svg) ------------------- */

/* A walk drawn: the address's bits split into each level's index (with seed 002's "pgd_index = (addr >> 42)
 * & 63"), the root register, each table with the entry at its index highlighted and decoded, arrows to the
 * next table and the page; where the walk stopped, and why. label (may be NULL) names the address. A
 * malloc'ed, NUL-terminated SVG document (*len without the NUL; len may be NULL), or NULL with err. */
KLAB_API char *klab_svg_walk(const struct klab_walk *w, const char *label, size_t *len, struct klab_error *err);

/* A stretch of address space the caller can name (the kernel image, the linear map, modules): [start, end),
 * end 0 meaning the top. */
struct klab_svg_region {
    uint64_t start, end;
    char name[32];
};
struct klab_svg_map_opts {
    const struct klab_ptsnap *before;   /* also draw what changed since this snapshot (NULL: a plain map) */
    unsigned diff_flags;                /* KLAB_PTDIFF_ALL_BITS */
    uint64_t va_start, va_end;          /* inclusive span drawn (0, 0: everything) */
    const struct klab_svg_region *regions;
    size_t nregions;
    const char *title;                  /* may be NULL */
};
/* A snapshot drawn as a map: rows of address space (split at large gaps, region edges and roots), each to its
 * own linear scale, ranges coloured by rights with their leaf size as a shade below; with before, each change
 * outlined and listed as klab ptdiff words it. o may be NULL. As klab_svg_walk returns. */
KLAB_API char *klab_svg_map(const struct klab_ptsnap *now, const struct klab_svg_map_opts *o, size_t *len,
                            struct klab_error *err);
/* A kernel symbol's run-time address (KASLR applied): 0, or non-zero when the caller does not know it. */
typedef int (*klab_symbol_fn)(void *ctx, const char *name, uint64_t *addr);
/* The kernel's regions klab can justify, for the map's labels: the image [_text, _end), and x86's direct
 * map, vmalloc and vmemmap from page_offset_base, vmalloc_base, vmemmap_base and max_pfn read through the
 * tables, its fixed cpu_entry_area; arm64's linear map [PAGE_OFFSET, PAGE_END) from TCR_EL1. A region whose
 * symbol or variable is unknown is left out. Returns how many of out[0..max) it filled. */
KLAB_API size_t klab_kernel_regions(const struct klab_mmu_regs *regs, struct klab_physmem *mem,
                                    klab_symbol_fn symbol, void *ctx, struct klab_svg_region *out, size_t max);
/* Writes len bytes to path ("-": stdout): a new file renamed over the old, never through a symlink or over
 * a non-file. 0, or -1 with err. */
KLAB_API int klab_write_output(const char *path, const char *text, size_t len, struct klab_error *err);

/* ---- the ABI: callers that mirror these structures (gdb/klab/lib.py) check their sizes first ---------- */

#define KLAB_ABI_VERSION 7
struct klab_abi {
    unsigned version;
    size_t mmu_regs, level, perms, walk, range, range_opts, range_stats, geometry, ram_region, error, kernel_mm, swp,
           search_opts, search_stats, svg_region, svg_map_opts;
};
KLAB_API void klab_abi(struct klab_abi *out);
/* "rwx/r-x"-style text: kernel then user permissions. buf needs 8 bytes. */
KLAB_API const char *klab_perms_str(const struct klab_perms *p, char buf[8]);

#ifdef __cplusplus
}
#endif
#endif
