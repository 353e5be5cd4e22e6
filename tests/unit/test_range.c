#define _GNU_SOURCE
/* libklab's range iteration on synthetic page tables: merging, VA order and sign extension, filters, span
 * clipping, bad entries, the entry budget on cyclic tables, and that each table is read once. Expected ranges
 * are derived from how each test builds its tables. */
#include "check.h"
#include "klab.h"

#include <stdlib.h>

#include "synthetic_ram.h"

#define MAX_GOT 64
struct got {
    struct klab_range r[MAX_GOT];
    int n;
};
static int collect(void *ctx, const struct klab_range *r)
{
    struct got *g = ctx;
    if (g->n < MAX_GOT)
        g->r[g->n] = *r;
    g->n++;
    return 0;
}

/* x86_64 4-level bits (SDM Vol. 3A table 4-19/4-20). */
#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define A 0x20ull
#define D 0x40ull
#define PS 0x80ull
#define G 0x100ull
#define NX (1ull << 63)

/* Tables: PML4 at +0x1000; upper half: PDPT +0x2000, PD +0x3000, PT +0x4000; lower half: PDPT +0x5000, PD
 * +0x6000, PT +0x7000. */
static struct klab_mmu_regs build_x86(void)
{
    const uint64_t pml4 = RAM_BASE + 0x1000, pdpt = RAM_BASE + 0x2000, pd = RAM_BASE + 0x3000,
                   pt = RAM_BASE + 0x4000, updpt = RAM_BASE + 0x5000, upd = RAM_BASE + 0x6000,
                   upt = RAM_BASE + 0x7000;
    /* Kernel text at 0xffffffff81000000: PML4[511] PDPT[510] PD[8] → PT with 4 contiguous RO pages, then a
     * page whose PA jumps, then a writable one. */
    put(pml4, 511, pdpt | P | RW);
    put(pdpt, 510, pd | P | RW);
    put(pd, 8, pt | P | RW);
    for (int i = 0; i < 4; i++)
        put(pt, (uint64_t)i, (0x1000000ull + 0x1000ull * (uint64_t)i) | P | A | G);
    put(pt, 4, 0x2000000ull | P | A | D | G);            /* PA not contiguous with the 4 before */
    put(pt, 5, 0x2001000ull | P | RW | A | D | G | NX);  /* contiguous PA, other attributes */
    /* Two 2M pages at PD[9], PD[10], contiguous, RW NX; D differs (must not split a range). */
    put(pd, 9, 0x3000000ull | P | RW | PS | A | D | G | NX);
    put(pd, 10, 0x3200000ull | P | RW | PS | A | G | NX);
    /* A 1G page at PDPT[0] of PML4[273]: the 4-level direct map 0xffff888000000000. */
    put(pml4, 273, (RAM_BASE + 0x8000) | P | RW);
    put(RAM_BASE + 0x8000, 0, 0x0 | P | RW | PS | A | D | G | NX);
    /* User space: PML4[0] PDPT[0] PD[2] PT: pages at 0x400000 (r-x user) and 0x401000 (rw- user). */
    put(pml4, 0, updpt | P | RW | US);
    put(updpt, 0, upd | P | RW | US);
    put(upd, 2, upt | P | RW | US);
    put(upt, 0, 0x5000000ull | P | US | A);
    put(upt, 1, 0x5001000ull | P | RW | US | A | NX);
    return (struct klab_mmu_regs){ .arch = KLAB_ARCH_X86_64, .cr3 = pml4, .efer = 1ull << 11 };
}

static void test_x86_full_dump(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    struct got g = { .n = 0 };
    struct klab_range_stats st;
    struct klab_error err;
    CHECK(klab_walk_ranges(&regs, m, NULL, collect, &g, &st, &err) == 0);
    CHECK_EQ_U64(g.n, 7);
    /* In VA order: two user pages, the direct map, then kernel text. */
    CHECK_EQ_U64(g.r[0].va_start, 0x400000);
    CHECK_EQ_U64(g.r[0].va_end, 0x401000);
    CHECK(g.r[0].perms.user_exec && !g.r[0].perms.user_write);
    CHECK_EQ_U64(g.r[1].va_start, 0x401000);
    CHECK(g.r[1].perms.user_write && !g.r[1].perms.user_exec);
    const uint64_t dm = 0xffff000000000000ull | (273ull << 39);   /* sign-extended PML4 index 273 */
    CHECK_EQ_U64(g.r[2].va_start, dm);
    CHECK_EQ_U64(g.r[2].va_end - g.r[2].va_start, 1ull << 30);
    CHECK_EQ_U64(g.r[2].page_size, 1ull << 30);
    CHECK_STR(g.r[2].level_name, "pud");
    const uint64_t text = 0xffff000000000000ull | (511ull << 39) | (510ull << 30) | (8ull << 21);
    CHECK_EQ_U64(text, 0xffffffff81000000ull);
    CHECK_EQ_U64(g.r[3].va_start, text);
    CHECK_EQ_U64(g.r[3].leaves, 4);
    CHECK_EQ_U64(g.r[3].va_end, text + 0x4000);
    CHECK_EQ_U64(g.r[3].pa_start, 0x1000000);
    CHECK(g.r[3].perms.kernel_exec && !g.r[3].perms.kernel_write && !g.r[3].perms.user_read);
    CHECK_EQ_U64(g.r[4].va_start, text + 0x4000);   /* PA jump */
    CHECK_EQ_U64(g.r[4].leaves, 1);
    CHECK_EQ_U64(g.r[5].va_start, text + 0x5000);   /* attributes differ */
    CHECK(g.r[5].perms.kernel_write && !g.r[5].perms.kernel_exec);
    CHECK_EQ_U64(g.r[6].va_start, text + (1ull << 21));   /* two 2M pages merged though D differs */
    CHECK_EQ_U64(g.r[6].leaves, 2);
    CHECK_EQ_U64(g.r[6].va_end, text + (3ull << 21));
    CHECK_EQ_U64(g.r[6].page_size, 2ull << 20);
    /* Every table once: PML4, 3 upper-half tables, the direct-map PDPT, 3 lower-half tables. */
    CHECK_EQ_U64(st.tables_read, 8);
    CHECK_EQ_U64(ram_reads, 8);
    CHECK_EQ_U64(st.leaves, 11);
    CHECK_EQ_U64(st.ranges, 7);
    klab_physmem_close(m);
}

static void test_x86_filters_and_span(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    struct klab_error err;
    struct got g = { .n = 0 };
    struct klab_range_opts o = { .filters = KLAB_FILTER_USER };
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, NULL, &err) == 0);
    CHECK_EQ_U64(g.n, 2);
    g.n = 0;
    o = (struct klab_range_opts){ .filters = KLAB_FILTER_KERNEL | KLAB_FILTER_EXEC };
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, NULL, &err) == 0);
    CHECK_EQ_U64(g.n, 2);   /* the 4 text pages and the RO page after the PA jump */
    CHECK_EQ_U64(g.r[0].va_start, 0xffffffff81000000ull);
    g.n = 0;
    o = (struct klab_range_opts){ .filters = KLAB_FILTER_WRITABLE, .page_size = 2ull << 20 };
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, NULL, &err) == 0);
    CHECK_EQ_U64(g.n, 1);
    g.n = 0;
    o = (struct klab_range_opts){ .filters = KLAB_FILTER_NO_MERGE };
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, NULL, &err) == 0);
    CHECK_EQ_U64(g.n, 11);
    /* A span starting in the middle of the second 2M page and ending inside the 1st text page. */
    g.n = 0;
    const uint64_t text = 0xffffffff81000000ull;
    o = (struct klab_range_opts){ .va_start = text + 0x800, .va_end = text + (2ull << 21) + 0x1234 };
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, NULL, &err) == 0);
    CHECK_EQ_U64(g.n, 4);
    CHECK_EQ_U64(g.r[0].va_start, text + 0x800);
    CHECK_EQ_U64(g.r[0].pa_start, 0x1000800);
    CHECK_EQ_U64(g.r[3].va_end, text + (2ull << 21) + 0x1235);
    klab_physmem_close(m);
}

static void test_x86_bad_entries_and_budget(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    const uint64_t pml4 = RAM_BASE + 0x1000;
    put(pml4, 300, 0x1000 | P | PS);                       /* PS in a PML4E is reserved */
    put(pml4, 301, 0x7ff00000000ull | P | RW);             /* a PDPT far outside RAM */
    struct got g = { .n = 0 };
    struct klab_range_stats st;
    struct klab_error err;
    CHECK(klab_walk_ranges(&regs, m, NULL, collect, &g, &st, &err) == 0);
    CHECK_EQ_U64(st.bad, 2);
    int bad = 0;
    for (int i = 0; i < g.n && i < MAX_GOT; i++)
        if (g.r[i].kind == KLAB_RANGE_BAD) {
            const uint64_t va = 0xffff000000000000ull | ((uint64_t)(bad ? 301 : 300) << 39);
            CHECK_EQ_U64(g.r[i].va_start, va);
            CHECK_EQ_U64(g.r[i].va_end - g.r[i].va_start, 1ull << 39);
            bad++;
        }
    CHECK_EQ_U64(bad, 2);
    /* Every PML4 entry pointing back at the PML4: each level re-reads the same table forever unless bounded. */
    for (int i = 0; i < 512; i++)
        put(pml4, (uint64_t)i, pml4 | P | RW);
    struct klab_range_opts o = { .max_entries = 100000 };
    g.n = 0;
    CHECK(klab_walk_ranges(&regs, m, &o, collect, &g, &st, &err) == -1);
    CHECK(strstr(err.msg, "corrupt or cyclic") != NULL);
    CHECK(st.entries <= 100001);
    klab_physmem_close(m);
}

/* arm64, seed 002's shape: 64K granule, 48-bit VA, 3 levels, both halves; APTable limits inherited. */
static void test_arm64_64k_ranges(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t l1 = RAM_BASE + 0x10000, l2 = RAM_BASE + 0x20000, l3 = RAM_BASE + 0x30000;
    const uint64_t u1 = RAM_BASE + 0x40000, u2 = RAM_BASE + 0x50000, u3 = RAM_BASE + 0x60000;
    /* TTBR1: VA 0xffff000008000000: pgd index (va >> 42) & 63, pmd (va >> 29) & 8191, pte (va >> 16) & 8191. */
    const uint64_t va = 0xffff000008000000ull;
    put(l1, (va >> 42) & 63, l2 | 3);
    put(l2, (va >> 29) & 8191, l3 | 3);
    for (uint64_t i = 0; i < 3; i++)   /* three contiguous 64K pages, seed 002's attributes */
        put(l3, ((va >> 16) & 8191) + i, (0x61020000ull + (i << 16)) | 0x68000000000713ull);
    /* A 512M block at the next pmd index. */
    put(l2, ((va >> 29) & 8191) + 1, 0x80000000ull | 0x60000000000711ull);
    /* TTBR0: a user page under a table with APTable=01 (no EL0 access below). */
    const uint64_t uva = 0x400000;
    put(u1, 0, u2 | 3 | (1ull << 61));
    put(u2, 0, u3 | 3);
    put(u3, (uva >> 16) & 8191, 0x70000000ull | 0x743 | (1ull << 53));   /* AP=01 (EL0 rw), PXN */
    const uint64_t tcr = 16ull | 1ull << 14 /* TG0 64K */ | 16ull << 16 | 3ull << 30 /* TG1 64K */;
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr0 = u1, .ttbr1 = l1, .tcr = tcr };
    struct got g = { .n = 0 };
    struct klab_range_stats st;
    struct klab_error err;
    CHECK(klab_walk_ranges(&regs, m, NULL, collect, &g, &st, &err) == 0);
    CHECK_EQ_U64(g.n, 3);
    CHECK_STR(g.r[0].root_name, "TTBR0_EL1");
    CHECK_EQ_U64(g.r[0].va_start, uva & ~0xffffull);
    CHECK(!g.r[0].perms.user_read && g.r[0].perms.kernel_write);   /* APTable=01 took EL0 away */
    CHECK_STR(g.r[1].root_name, "TTBR1_EL1");
    CHECK_EQ_U64(g.r[1].va_start, va);
    CHECK_EQ_U64(g.r[1].leaves, 3);
    CHECK_EQ_U64(g.r[1].va_end, va + 3 * 0x10000);
    CHECK_EQ_U64(g.r[1].pa_start, 0x61020000);
    CHECK_EQ_U64(g.r[1].page_size, 0x10000);
    CHECK(strstr(g.r[1].attrs, "AttrIndx=4") != NULL);
    CHECK_EQ_U64(g.r[2].va_start, (va & ~((1ull << 29) - 1)) + (1ull << 29));   /* the next pmd slot */
    CHECK_EQ_U64(g.r[2].page_size, 1ull << 29);
    CHECK_STR(g.r[2].level_name, "pmd");
    /* 3 tables per half, 64 top entries + 2 full 8192-entry tables each. */
    CHECK_EQ_U64(st.tables_read, 6);
    CHECK_EQ_U64(st.bytes_read, 2 * (64 * 8 + 2 * 65536));
    klab_physmem_close(m);
}

int main(void)
{
    RUN(test_x86_full_dump);
    RUN(test_x86_filters_and_span);
    RUN(test_x86_bad_entries_and_budget);
    RUN(test_arm64_64k_ranges);
    return CHECK_DONE();
}
