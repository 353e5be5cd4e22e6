#define _GNU_SOURCE
/* libklab walkers on synthetic page tables. Every expected index and address is computed here from the
 * architecture's formulas (seed 002's pgd_index = (addr >> 42) & 63 for 64K/48-bit/3-level, the SDM's 9-bit
 * indices), never taken from the walker's output. */
#include "check.h"
#include "klab.h"

#include <stdlib.h>
#include <unistd.h>

#include "synthetic_ram.h"


/* Seed 002: 64K pages, 48-bit VA, 3 levels; mk_pte gave 0x68000061020713. */
static void test_arm64_64k_48bit_3level_seed(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t va = 0xffff000008123456ull, leaf = 0x68000061020713ull;
    const uint64_t pgd = RAM_BASE + 0x10000, pmd = RAM_BASE + 0x20000, pte = RAM_BASE + 0x30000;
    /* PGDIR_SHIFT = (16-3)*(4-1)+3 = 42, PTRS_PER_PGD = 1 << (48-42) = 64 (seed 002, 3.1.5). */
    const unsigned pgd_index = (unsigned)((va >> 42) & 63);
    const unsigned pmd_index = (unsigned)((va >> 29) & 8191), pte_index = (unsigned)((va >> 16) & 8191);
    put(pgd, pgd_index, pmd | 3);
    put(pmd, pmd_index, pte | 3);
    put(pte, pte_index, leaf);
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr1 = pgd, .tcr = tcr_upper(48, 3) };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) == 0);
    CHECK_EQ_U64(w.nlevels, 3);
    CHECK_STR(w.root_name, "TTBR1_EL1");
    CHECK_STR(w.levels[0].name, "pgd");
    CHECK_STR(w.levels[1].name, "pmd");
    CHECK_STR(w.levels[2].name, "pte");
    CHECK_STR(w.levels[0].hw_name, "L1");
    CHECK_EQ_U64(w.levels[0].index, pgd_index);
    CHECK_EQ_U64(w.levels[0].entry_pa, pgd + 8 * pgd_index);
    CHECK_EQ_U64(w.levels[1].index, pmd_index);
    CHECK_EQ_U64(w.levels[2].index, pte_index);
    CHECK_EQ_U64(w.levels[2].raw, leaf);
    CHECK_EQ_U64(w.page_size, 65536);
    CHECK_EQ_U64(w.pa, 0x61020000ull | (va & 0xffff));
    /* AP=00: EL1 read/write, EL0 nothing; PXN: the kernel cannot execute it. */
    CHECK(w.perms.kernel_read && w.perms.kernel_write && !w.perms.kernel_exec);
    CHECK(!w.perms.user_read && !w.perms.user_exec);
    klab_physmem_close(m);
}

static void test_decode_seed_value(void)
{
    struct klab_level l;
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 16, 3, 0x68000061020713ull, &l, NULL) == 0);
    CHECK(l.kind == KLAB_ENTRY_PAGE);
    CHECK_EQ_U64(l.out_pa, 0x61020000);
    /* 0x713: valid, page, AttrIndx=4, SH=11, AF; 0x68 << 48: DBM (51), PXN (53), UXN (54). */
    CHECK(strstr(l.bits, "AttrIndx=4") && strstr(l.bits, "SH=inner") && strstr(l.bits, " AF"));
    CHECK(strstr(l.bits, "DBM") && strstr(l.bits, "PXN") && strstr(l.bits, "UXN"));
    CHECK(strstr(l.bits, "AP=00") && !strstr(l.bits, "nG") && !strstr(l.bits, "CONT"));
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 16, 2, 0x61020001ull, &l, NULL) == 0 && l.kind == KLAB_ENTRY_BLOCK);
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 16, 3, 0x61020001ull, &l, NULL) == 0 && l.kind == KLAB_ENTRY_RESERVED);
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 14, 1, 0x61020001ull, &l, NULL) == 0 && l.kind == KLAB_ENTRY_RESERVED);
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 13, 3, 1, &l, NULL) != 0);
    CHECK(klab_decode_entry(KLAB_ARCH_ARM64, 16, 7, 1, &l, NULL) != 0);
}

/* 4K, 48-bit, 4 levels (Debian's arm64): a 2M block at level 2, and a 4K page. */
static void test_arm64_4k_48bit_4level(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t l0 = RAM_BASE + 0x1000, l1 = RAM_BASE + 0x2000, l2 = RAM_BASE + 0x3000, l3 = RAM_BASE + 0x4000;
    const uint64_t va_block = 0xffff800008234567ull, va_page = 0xffff800008456789ull;
    put(l0, (va_block >> 39) & 511, l1 | 3);
    put(l1, (va_block >> 30) & 511, l2 | 3);
    put(l2, (va_block >> 21) & 511, 0x40200000ull | 0x401);             /* block: valid, AF */
    put(l2, (va_page >> 21) & 511, l3 | 3);
    put(l3, (va_page >> 12) & 511, 0x41234000ull | 0x443 | 1ull << 54); /* page, AP=01 (EL0 rw), UXN */
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr1 = l0 | 0xabcdull << 48, .tcr = tcr_upper(48, 2) };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va_block, &w) == 0);
    CHECK_EQ_U64(w.nlevels, 3);
    CHECK(w.levels[2].kind == KLAB_ENTRY_BLOCK);
    CHECK_EQ_U64(w.page_size, 2ull << 20);
    CHECK_EQ_U64(w.pa, 0x40200000ull + (va_block & 0x1fffff));
    CHECK_STR(w.levels[0].name, "pgd");
    CHECK_STR(w.levels[1].name, "pud");
    CHECK_STR(w.levels[2].name, "pmd");
    CHECK(klab_translate(&regs, m, va_page, &w) == 0);
    CHECK_EQ_U64(w.nlevels, 4);
    CHECK_EQ_U64(w.pa, 0x41234000ull + (va_page & 0xfff));
    /* EL0-writable memory is never executable at EL1 (implicit PXN); UXN stops EL0 too. */
    CHECK(w.perms.user_read && w.perms.user_write && !w.perms.user_exec && !w.perms.kernel_exec);
    klab_physmem_close(m);
}

/* 16K, 47-bit: 3 levels from L1, whose index has 47 - 36 = 11 bits. */
static void test_arm64_16k_47bit(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t l1 = RAM_BASE + 0x10000, l2 = RAM_BASE + 0x14000, l3 = RAM_BASE + 0x18000;
    const uint64_t va = 0xffff9abcdef01234ull;   /* bits 63:47 all ones */
    put(l1, (va >> 36) & 2047, l2 | 3);
    put(l2, (va >> 25) & 2047, l3 | 3);
    put(l3, (va >> 14) & 2047, 0x45670000ull | 0x403);
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr1 = l1, .tcr = tcr_upper(47, 1) };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) == 0);
    CHECK_EQ_U64(w.nlevels, 3);
    CHECK_EQ_U64(w.granule_shift, 14);
    CHECK_EQ_U64(w.levels[0].index, (va >> 36) & 2047);
    CHECK_EQ_U64(w.pa, 0x45670000ull + (va & 0x3fff));
    klab_physmem_close(m);
}

/* 64K, 52-bit VA and PA (FEAT_LPA): PA bits 51:48 live in descriptor bits 15:12. */
static void test_arm64_64k_52bit(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t l1 = RAM_BASE + 0x10000, l2 = RAM_BASE + 0x20000, l3 = RAM_BASE + 0x30000;
    const uint64_t va = 0xfff1234567890abcull;   /* bits 63:52 all ones */
    const uint64_t pa_page = 0xa000012340000ull; /* PA bit 51..48 = 0xa */
    put(l1, (va >> 42) & 1023, l2 | 3);
    put(l2, (va >> 29) & 8191, l3 | 3);
    put(l3, (va >> 16) & 8191, (pa_page & 0xffffffff0000ull) | (0xaull << 12) | 0x403);
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr1 = l1, .tcr = tcr_upper(52, 3) };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) == 0);
    CHECK_EQ_U64(w.va_bits, 52);
    CHECK_EQ_U64(w.levels[0].index, (va >> 42) & 1023);
    CHECK_EQ_U64(w.pa, pa_page | (va & 0xffff));
    klab_physmem_close(m);
}

static void test_arm64_stops(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t l0 = RAM_BASE + 0x1000, l1 = RAM_BASE + 0x2000, l2 = RAM_BASE + 0x3000;
    const uint64_t va = 0xffff800000000000ull;
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr0 = l0, .ttbr1 = l0,
                                  .tcr = tcr_upper(48, 2) | (64 - 48) | 0ull << 14 };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) != 0 && w.stop == KLAB_STOP_NOT_PRESENT && w.nlevels == 1);
    put(l0, (va >> 39) & 511, l1 | 3);
    put(l1, (va >> 30) & 511, 0x7ff0000000ull | 3);   /* next table far outside RAM */
    CHECK(klab_translate(&regs, m, va, &w) != 0 && w.stop == KLAB_STOP_UNREADABLE && w.nlevels == 3);
    put(l1, (va >> 30) & 511, l2 | 3);
    put(l2, (va >> 21) & 511, (RAM_BASE + 0x4000) | 3);
    put(RAM_BASE + 0x4000, 0, 0x40000000ull | 1);     /* level 3 with bit 1 clear: reserved */
    CHECK(klab_translate(&regs, m, va, &w) != 0 && w.stop == KLAB_STOP_RESERVED && w.nlevels == 4);
    /* Between the halves: neither TTBR translates it. */
    CHECK(klab_translate(&regs, m, 0x0001000000000000ull, &w) != 0 && w.stop == KLAB_STOP_NOT_CANONICAL);
    /* User half through TTBR0, APTable limiting EL0 below a table. */
    const uint64_t uva = 0x0000aaaabbbbc000ull, u1 = RAM_BASE + 0x6000, u2 = RAM_BASE + 0x7000, u3 = RAM_BASE + 0x8000;
    put(l0, (uva >> 39) & 511, u1 | 3 | 1ull << 61);  /* APTable=01: no EL0 access below */
    put(u1, (uva >> 30) & 511, u2 | 3);
    put(u2, (uva >> 21) & 511, u3 | 3);
    put(u3, (uva >> 12) & 511, 0x40abc000ull | 0x443); /* AP=01 would allow EL0 */
    CHECK(klab_translate(&regs, m, uva, &w) == 0);
    CHECK_STR(w.root_name, "TTBR0_EL1");
    CHECK(!w.perms.user_read && w.perms.kernel_write);
    regs.tcr |= 1ull << 7;                              /* EPD0 */
    CHECK(klab_translate(&regs, m, uva, &w) != 0 && w.stop == KLAB_STOP_DISABLED);
    regs.tcr = tcr_upper(48, 0);                        /* TG1=00 is reserved */
    CHECK(klab_translate(&regs, m, va, &w) != 0 && w.stop == KLAB_STOP_BAD_REGS);
    /* T1SZ=48 with 64K pages leaves a 16-bit VA: no index bits above the page offset (found by fuzzing:
     * the regime had zero levels). */
    regs.tcr = tcr_upper(16, 3);
    CHECK(klab_translate(&regs, m, 0xffffffffffff0000ull, &w) != 0 && w.stop == KLAB_STOP_BAD_REGS);
    char desc[400];
    klab_describe_regs(&regs, desc, sizeof desc);
    CHECK(strstr(desc, "TTBR1_EL1: TCR_EL1.T1SZ=48 gives an unsupported 16-bit VA") != NULL);
    klab_physmem_close(m);
}

/* x86_64 4-level: kernel text in a 2M page, the direct map in a 1G page, PCID bits in CR3. */
static void test_x86_4level_large_pages(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t pml4 = RAM_BASE + 0x1000, pdpt = RAM_BASE + 0x2000, pd = RAM_BASE + 0x3000;
    const uint64_t pdpt_dm = RAM_BASE + 0x4000;
    const uint64_t text = 0xffffffff81234567ull, dm = 0xffff888040001234ull;
    put(pml4, (text >> 39) & 511, pdpt | 0x63);
    put(pdpt, (text >> 30) & 511, pd | 0x63);
    put(pd, (text >> 21) & 511, 0x01200000ull | 0x1e1);          /* P A D PS G, read-only, exec */
    put(pml4, (dm >> 39) & 511, pdpt_dm | 0x63);
    put(pdpt_dm, (dm >> 30) & 511, 0x40000000ull | 0x80000000000000e3ull); /* 1G, RW, NX */
    const uint64_t cr4 = 1ull << 17;                                 /* PCIDE */
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_X86_64, .cr3 = pml4 | 0x5, .cr4 = cr4, .efer = 1ull << 11 };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, text, &w) == 0);
    CHECK_EQ_U64(w.root_pa, pml4);
    CHECK_EQ_U64(w.nlevels, 3);
    CHECK_STR(w.levels[0].hw_name, "PML4");
    CHECK_STR(w.levels[0].name, "pgd");
    CHECK_STR(w.levels[2].name, "pmd");
    CHECK_EQ_U64(w.levels[0].index, (text >> 39) & 511);
    CHECK_EQ_U64(w.page_size, 2ull << 20);
    CHECK_EQ_U64(w.pa, 0x01200000ull + (text & 0x1fffff));
    CHECK(w.perms.kernel_exec && !w.perms.kernel_write && !w.perms.user_read);
    CHECK(strstr(w.levels[2].bits, "2M-page") && strstr(w.levels[2].bits, "GLOBAL") && strstr(w.levels[2].bits, "DIRTY"));
    CHECK(klab_translate(&regs, m, dm, &w) == 0);
    CHECK_EQ_U64(w.page_size, 1ull << 30);
    CHECK_EQ_U64(w.pa, 0x40000000ull + (dm & 0x3fffffff));
    CHECK(w.perms.kernel_write && !w.perms.kernel_exec);
    klab_physmem_close(m);
}

/* x86_64 5-level (CR4.LA57), 4K page, permissions ANDed/ORed across levels; reserved and canonical stops. */
static void test_x86_5level(void)
{
    struct klab_physmem *m = fresh_memory();
    uint64_t t[5];
    for (int i = 0; i < 5; i++)
        t[i] = RAM_BASE + 0x10000 + 0x1000 * (uint64_t)i;
    const uint64_t va = 0xff11000012345678ull;   /* page_offset_base of a 5-level Debian kernel */
    const unsigned shifts[5] = { 48, 39, 30, 21, 12 };
    for (int i = 0; i < 4; i++)
        put(t[i], (va >> shifts[i]) & 511, t[i + 1] | (i == 2 ? 0x21 : 0x27));   /* PUD entry read-only */
    put(t[4], (va >> 12) & 511, 0x40fed000ull | 0x67 | 0xbull << 59);          /* PKEY 11 */
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_X86_64, .cr3 = t[0], .cr4 = 1ull << 12, .efer = 1ull << 11 };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) == 0);
    CHECK_EQ_U64(w.nlevels, 5);
    CHECK_STR(w.levels[0].hw_name, "PML5");
    CHECK_STR(w.levels[1].name, "p4d");
    CHECK_EQ_U64(w.pa, 0x40fed000ull + (va & 0xfff));
    CHECK(!w.perms.kernel_write && !w.perms.user_read);   /* one RO and one supervisor level decide */
    CHECK(strstr(w.levels[4].bits, "PKEY=11") != NULL);
    /* A 4-level walk of the same address is not canonical (bits 63:47 differ). */
    regs.cr4 = 0;
    regs.cr3 = t[1];
    CHECK(klab_translate(&regs, m, va, &w) != 0 && w.stop == KLAB_STOP_NOT_CANONICAL);
    /* PS in a PML4 entry is reserved. */
    put(t[1], (0xffff888000000000ull >> 39) & 511, 0x40000000ull | 0x83);
    CHECK(klab_translate(&regs, m, 0xffff888000000000ull, &w) != 0 && w.stop == KLAB_STOP_RESERVED);
    /* XD with EFER.NXE=0 is a reserved bit. */
    put(t[1], (0xffff888000000000ull >> 39) & 511, t[2] | 0x3 | 1ull << 63);
    regs.efer = 0;
    CHECK(klab_translate(&regs, m, 0xffff888000000000ull, &w) != 0 && w.stop == KLAB_STOP_RESERVED);
    klab_physmem_close(m);
}

static void test_ramfile_layout(void)
{
    char path[] = "/tmp/klab-ramfile-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unsigned char page[4096];
    for (int i = 0; i < 4; i++) {          /* 4 pages: 0..1 below the hole, 2..3 "above 4G" */
        memset(page, 0x10 + i, sizeof page);
        CHECK(write(fd, page, sizeof page) == (ssize_t)sizeof page);
    }
    close(fd);
    struct klab_ram_region layout[] = { { 0, 0x2000, 0 }, { 1ull << 32, 0x2000, 0x2000 } };
    struct klab_error err;
    struct klab_physmem *m = klab_physmem_open_ramfile(path, layout, 2, &err);
    CHECK(m != NULL);
    unsigned char b = 0;
    CHECK(klab_physmem_read(m, 0x1000, &b, 1) == 0 && b == 0x11);
    CHECK(klab_physmem_read(m, (1ull << 32) + 0x1fff, &b, 1) == 0 && b == 0x13);
    CHECK(klab_physmem_read(m, 0x2000, &b, 1) != 0);              /* the hole */
    CHECK(klab_physmem_read(m, 0x1ff8, page, 16) != 0);           /* straddles the end of a region */
    klab_physmem_close(m);
    CHECK(klab_physmem_open_ramfile("/nonexistent", layout, 2, &err) == NULL && strstr(err.msg, "cannot open"));
    unlink(path);
}

int main(void)
{
    RUN(test_arm64_64k_48bit_3level_seed);
    RUN(test_decode_seed_value);
    RUN(test_arm64_4k_48bit_4level);
    RUN(test_arm64_16k_47bit);
    RUN(test_arm64_64k_52bit);
    RUN(test_arm64_stops);
    RUN(test_x86_4level_large_pages);
    RUN(test_x86_5level);
    RUN(test_ramfile_layout);
    return CHECK_DONE();
}
