/* Non-present entries (gdb/lib/swp.c and the arch tables): every value below is built with the kernel's own
 * encoders, transcribed from arch/x86/include/asm/pgtable_64.h (__swp_entry), arch/arm64/include/asm/pgtable.h
 * (both layouts), include/linux/swapops.h (swp_entry, SWP_MIG_*) and pgtable-invert.h (the L1TF inversion);
 * the expected kinds follow include/linux/swap.h of 6.1 and 6.12 for Debian's configs. */
#define _GNU_SOURCE
#include "check.h"
#include "klab.h"

#include <stdint.h>

#define KV(a, b) ((unsigned)(a) << 16 | (unsigned)(b) << 8)

/* x86_64: TYPE in bits 59-63, ~OFFSET in 9-58. */
static uint64_t x86_swp(unsigned type, uint64_t offset)
{
    return (~offset << 14 >> 5) | ((uint64_t)type << 59);
}
/* arm64 before 6.10: type at 3, offset at 8; from 6.10: type at 6, offset at 12. */
static uint64_t arm64_swp(bool new_layout, unsigned type, uint64_t offset)
{
    return new_layout ? ((uint64_t)type << 6 | offset << 12) : ((uint64_t)type << 3 | offset << 8);
}

/* Debian's kernels: 6.1 amd64 has MIGRATION and PTE_MARKER (no MEMORY_FAILURE, no DEVICE_PRIVATE); 6.12 has
 * MEMORY_FAILURE and MIGRATION. Both come to MAX_SWAPFILES 27. */
static const struct klab_kernel_mm deb61_amd64 = {
    .version = KV(6, 1), .max_swapfiles = 27,
    .config = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5), .config_known = 0x3f, .max_physmem_bits = 46,
};
static const struct klab_kernel_mm deb612_amd64 = {
    .version = KV(6, 12), .max_swapfiles = 27,
    .config = (1 << 0) | (1 << 1) | (1 << 4) | (1 << 5), .config_known = 0x3f, .max_physmem_bits = 52,
};
static const struct klab_kernel_mm deb61_arm64 = {
    .version = KV(6, 1), .max_swapfiles = 27, .config = (1 << 0) | (1 << 1), .config_known = 0x3f,
    .max_physmem_bits = 48,
};
static const struct klab_kernel_mm deb612_arm64 = {
    .version = KV(6, 12), .max_swapfiles = 27, .config = (1 << 0) | (1 << 1) | (1 << 5), .config_known = 0x3f,
    .max_physmem_bits = 48,
};

static struct klab_swp decode(enum klab_arch a, const struct klab_kernel_mm *k, int level, bool upper, uint64_t raw)
{
    struct klab_swp s;
    struct klab_error e = { "" };
    CHECK(klab_decode_swp(a, k, 12, level, upper, raw, &s, &e) == 0);
    if (e.msg[0])
        fprintf(stderr, "  error: %s\n", e.msg);
    return s;
}

static void test_x86_swap(void)
{
    /* A swapped anonymous page: swap area 0, slot 0x1f3, PG_anon_exclusive (bit 3) and soft-dirty (bit 1). */
    struct klab_swp s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, x86_swp(0, 0x1f3) | 8 | 2);
    CHECK_EQ_U64(s.kind, KLAB_SWP_SWAP);
    CHECK_EQ_U64(s.type, 0);
    CHECK_EQ_U64(s.offset, 0x1f3);
    CHECK(s.exclusive && s.soft_dirty && !s.uffd_wp);
    char line[256];
    klab_format_swp(&s, "/dev/vda", line, sizeof line);
    CHECK_STR(line, "   SWAP: type 0 (/dev/vda)  offset 0x1f3  exclusive  soft-dirty\n");
    /* The largest offset: 50 bits. */
    s = decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(26, (1ull << 50) - 1));
    CHECK_EQ_U64(s.kind, KLAB_SWP_SWAP);
    CHECK_EQ_U64(s.type, 26);
    CHECK_EQ_U64(s.offset, (1ull << 50) - 1);
}

static void test_x86_special(void)
{
    /* 6.12: 27 hwpoison, 28-30 migration read / read-exclusive / write, 31 the PTE marker. A migration entry
     * keeps the PFN in SWP_PFN_BITS = 52 - 12 = 40 bits (5-level), young at bit 40, dirty at 41. */
    struct klab_swp s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, x86_swp(30, 0x12345 | 1ull << 40));
    CHECK_EQ_U64(s.kind, KLAB_SWP_MIGRATION_WRITE);
    CHECK(s.has_pfn && s.young && !s.dirty);
    CHECK_EQ_U64(s.pfn, 0x12345);
    char line[256];
    klab_format_swp(&s, NULL, line, sizeof line);
    CHECK_STR(line, "MIGRATE: migration-write (swap type 30)  PFN 0x12345  young\n");
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, x86_swp(28, 7)).kind, KLAB_SWP_MIGRATION_READ);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, x86_swp(27, 7)).kind, KLAB_SWP_HWPOISON);
    s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, x86_swp(31, 2));
    CHECK_EQ_U64(s.kind, KLAB_SWP_PTE_MARKER);
    klab_format_swp(&s, NULL, line, sizeof line);
    CHECK_STR(line, " MARKER: pte-marker (swap type 31)  poisoned\n");
    /* 6.1 (no MEMORY_FAILURE): 27-29 migration, 30 the PTE marker, 31 the swapin error. */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(27, 7)).kind, KLAB_SWP_MIGRATION_READ);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(31, 0)).kind, KLAB_SWP_SWAPIN_ERROR);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(30, 1)).kind, KLAB_SWP_PTE_MARKER);
    /* 6.1 has one marker bit: bit 1 is unknown there. 4-level: PFN bits 34, so bit 36 is reserved. */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(30, 2)).kind, KLAB_SWP_UNKNOWN);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb61_amd64, 1, false, x86_swp(29, 1ull << 36)).kind, KLAB_SWP_UNKNOWN);
    /* A THP migration entry in a PMD is fine; a swap entry there is not Linux's. */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 2, false, x86_swp(30, 0x200)).kind, KLAB_SWP_MIGRATION_WRITE);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 2, false, x86_swp(0, 0x200)).kind, KLAB_SWP_UNKNOWN);
    /* Nothing software lives above the PUD. */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 4, false, x86_swp(30, 0x200)).kind, KLAB_SWP_UNKNOWN);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 3, false, x86_swp(30, 0x200)).kind, KLAB_SWP_MIGRATION_WRITE);
}

static void test_x86_present_and_none(void)
{
    /* pfn_pte(0x4321, PAGE_NONE): PROTNONE | ACCESSED, the PFN inverted. */
    uint64_t protnone = (~(0x4321ull << 12) & 0x000ffffffffff000ull) | 0x100 | 0x20;
    struct klab_swp s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, protnone);
    CHECK_EQ_U64(s.kind, KLAB_SWP_PROT_NONE);
    CHECK_EQ_U64(s.pfn, 0x4321);
    /* pmd_mkinvalid() of a 2M page at PFN 0x200: PSE kept, P cleared, inverted. */
    uint64_t inval = (~(0x200ull << 12) & 0x000fffffffe00000ull) | 0x80 | (0x67 & ~1ull);
    s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 2, false, inval);
    CHECK_EQ_U64(s.kind, KLAB_SWP_INVALIDATED);
    CHECK_EQ_U64(s.pfn, 0x200);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, 0).kind, KLAB_SWP_NONE);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, 0x60).kind, KLAB_SWP_NONE);   /* KNL A/D */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, false, 0x80 | (5ull << 59)).kind, KLAB_SWP_UNKNOWN);
    /* The kernel half: no software entries (KFENCE keeps its guard pages' PFN with P clear). */
    s = decode(KLAB_ARCH_X86_64, &deb612_amd64, 1, true, 0x8000000001234062ull);
    CHECK_EQ_U64(s.kind, KLAB_SWP_KERNEL);
    struct klab_swp out;
    struct klab_error e;
    CHECK(klab_decode_swp(KLAB_ARCH_X86_64, &deb612_amd64, 12, 1, false, 0x1234067, &out, &e) == -1);
    CHECK(strstr(e.msg, "valid") != NULL);
    CHECK(klab_decode_swp(KLAB_ARCH_X86_64, &deb612_amd64, 12, 7, false, 0x1234066, &out, &e) == -1);
}

static void test_arm64(void)
{
    struct klab_swp s = decode(KLAB_ARCH_ARM64, &deb61_arm64, 3, false, arm64_swp(false, 1, 0x77) | 4);
    CHECK_EQ_U64(s.kind, KLAB_SWP_SWAP);
    CHECK_EQ_U64(s.type, 1);
    CHECK_EQ_U64(s.offset, 0x77);
    CHECK(s.exclusive && !s.uffd_wp);
    s = decode(KLAB_ARCH_ARM64, &deb612_arm64, 3, false, arm64_swp(true, 1, 0x77) | 8);
    CHECK_EQ_U64(s.kind, KLAB_SWP_SWAP);
    CHECK_EQ_U64(s.offset, 0x77);
    CHECK(!s.exclusive && s.uffd_wp);
    /* The same bits read with the other version's layout are another entry: the version decides. */
    CHECK(decode(KLAB_ARCH_ARM64, &deb61_arm64, 3, false, arm64_swp(true, 1, 0x77)).offset != 0x77);
    /* 6.1: 27 hwpoison, 28-30 migration (PFN bits 48 - 12 = 36), 31 swapin error. */
    s = decode(KLAB_ARCH_ARM64, &deb61_arm64, 3, false, arm64_swp(false, 29, 0x40123 | 1ull << 37));
    CHECK_EQ_U64(s.kind, KLAB_SWP_MIGRATION_READ_EXCLUSIVE);
    CHECK(s.dirty && !s.young);
    CHECK_EQ_U64(s.pfn, 0x40123);
    CHECK_EQ_U64(decode(KLAB_ARCH_ARM64, &deb61_arm64, 3, false, arm64_swp(false, 31, 0)).kind, KLAB_SWP_SWAPIN_ERROR);
    CHECK_EQ_U64(decode(KLAB_ARCH_ARM64, &deb612_arm64, 3, false, arm64_swp(true, 31, 1)).kind, KLAB_SWP_PTE_MARKER);
    /* PAGE_NONE: 6.1 PTE_PROT_NONE (bit 58), 6.12 PTE_PRESENT_INVALID = nG (bit 11); the PFN where a page has it. */
    s = decode(KLAB_ARCH_ARM64, &deb61_arm64, 3, false, (1ull << 58) | 0x40123000ull | (1ull << 54) | (1ull << 53));
    CHECK_EQ_U64(s.kind, KLAB_SWP_PROT_NONE);
    CHECK_EQ_U64(s.pfn, 0x40123);
    s = decode(KLAB_ARCH_ARM64, &deb612_arm64, 3, false, (1ull << 11) | 0x40123000ull | (1ull << 7));
    CHECK_EQ_U64(s.kind, KLAB_SWP_PROT_NONE);
    CHECK_EQ_U64(s.pfn, 0x40123);
    /* 6.1 pmdp_invalidate: PMD_PRESENT_INVALID (bit 59). */
    s = decode(KLAB_ARCH_ARM64, &deb61_arm64, 2, false, (1ull << 59) | 0x40200000ull);
    CHECK_EQ_U64(s.kind, KLAB_SWP_INVALIDATED);
    CHECK_EQ_U64(s.pfn, 0x40200);
    CHECK_EQ_U64(decode(KLAB_ARCH_ARM64, &deb612_arm64, 3, false, 2).kind, KLAB_SWP_UNKNOWN);
    struct klab_kernel_mm unknown_version = deb612_arm64;
    unknown_version.version = 0;
    s = decode(KLAB_ARCH_ARM64, &unknown_version, 3, false, arm64_swp(true, 0, 5));
    CHECK_EQ_U64(s.kind, KLAB_SWP_UNKNOWN);
    CHECK(strstr(s.why, "version") != NULL);
}

static void test_rules_cross_checked(void)
{
    /* A MAX_SWAPFILES the rules cannot produce: nothing above it is named. */
    struct klab_kernel_mm k = deb612_amd64;
    k.max_swapfiles = 26;
    struct klab_swp s = decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(30, 5));
    CHECK_EQ_U64(s.kind, KLAB_SWP_UNKNOWN);
    CHECK(strstr(s.why, "MAX_SWAPFILES is 26") != NULL);
    /* ... but a type below it is still a swap area. */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(3, 5)).kind, KLAB_SWP_SWAP);
    /* No config: MAX_SWAPFILES 23 leaves one choice (everything on) ... */
    k.config_known = 0;
    k.max_swapfiles = 23;
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(23, 5)).kind, KLAB_SWP_HWPOISON);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(31, 1)).kind, KLAB_SWP_PTE_MARKER);
    /* ... 27 fits hwpoison + migration and device-private alike: unknown. */
    k.max_swapfiles = 27;
    s = decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(28, 5));
    CHECK_EQ_U64(s.kind, KLAB_SWP_UNKNOWN);
    CHECK(strstr(s.why, "more than one") != NULL);
    /* Only the version (klab pte --kver): below 32 minus every special type (6.12: 9) a type is a swap area. */
    k = (struct klab_kernel_mm){ .version = KV(6, 12) };
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(22, 5)).kind, KLAB_SWP_SWAP);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(23, 5)).kind, KLAB_SWP_UNKNOWN);
    k.version = KV(6, 1);   /* 6.1 has the swapin-error type too: 10 */
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(22, 5)).kind, KLAB_SWP_UNKNOWN);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(21, 5)).kind, KLAB_SWP_SWAP);
    /* Outside the versions klab has read. */
    k = deb612_amd64;
    k.version = KV(6, 16);
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(30, 5)).kind, KLAB_SWP_UNKNOWN);
    /* The soft-dirty bit of a kernel without CONFIG_MEM_SOFT_DIRTY is not Linux's. */
    k = deb61_arm64;
    CHECK_EQ_U64(decode(KLAB_ARCH_X86_64, &k, 1, false, x86_swp(0, 5) | 2).kind, KLAB_SWP_UNKNOWN);
}

static void test_walk_half(void)
{
    struct klab_walk w = { .va = 0x7ffff7ff8000ull, .granule_shift = 12, .nlevels = 4, .stop = KLAB_STOP_NOT_PRESENT };
    strcpy(w.root_name, "CR3");
    w.levels[3] = (struct klab_level){ .hw_level = 1, .raw = x86_swp(0, 9) };
    struct klab_swp s;
    struct klab_error e;
    CHECK(klab_walk_swp(&w, &deb612_amd64, &s, &e) == 0);
    CHECK_EQ_U64(s.kind, KLAB_SWP_SWAP);
    w.va = 0xffff888000000000ull;
    CHECK(klab_walk_swp(&w, &deb612_amd64, &s, &e) == 0);
    CHECK_EQ_U64(s.kind, KLAB_SWP_KERNEL);
    w.stop = KLAB_WALK_OK;
    CHECK(klab_walk_swp(&w, &deb612_amd64, &s, &e) == -1);
}

int main(void)
{
    RUN(test_x86_swap);
    RUN(test_x86_special);
    RUN(test_x86_present_and_none);
    RUN(test_arm64);
    RUN(test_rules_cross_checked);
    RUN(test_walk_half);
    return CHECK_DONE();
}
