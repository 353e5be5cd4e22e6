/* libklab's text and its architecture questions (gdb/lib/format.c, the arch tables): the words both the
 * klab program and the gdb commands print, checked against values written here by hand. */
#define _GNU_SOURCE
#include "check.h"
#include "klab.h"

static void test_sizes(void)
{
    char b[24];
    CHECK_STR(klab_size_str(4096, b), "4K");
    CHECK_STR(klab_size_str(2ull << 20, b), "2M");
    CHECK_STR(klab_size_str(1ull << 30, b), "1G");
    CHECK_STR(klab_size_str(3ull << 40, b), "3T");
    CHECK_STR(klab_size_str(4097, b), "4097");
    CHECK_STR(klab_size_str(0, b), "0");
}

static struct klab_walk walk(void)
{
    struct klab_walk w = { .va = 0xffffffff81000000ull, .root_pa = 0x2a0c000, .granule_shift = 12, .va_bits = 48,
                           .nlevels = 2, .pa = 0x1000000, .page_size = 2ull << 20, .stop = KLAB_WALK_OK };
    strcpy(w.root_name, "CR3");
    w.levels[0] = (struct klab_level){ .name = "pgd", .hw_name = "PML4", .index = 511, .shift = 39,
                                       .entry_pa = 0x2a0cff8, .raw = 0x2a0f067, .bits = "P RW" };
    w.levels[1] = (struct klab_level){ .name = "pmd", .hw_name = "PD", .index = 8, .shift = 21,
                                       .entry_pa = 0x2a0e040, .raw = 0x10001e1, .bits = "P RW PS" };
    w.perms = (struct klab_perms){ .kernel_read = true, .kernel_write = true, .kernel_exec = true };
    return w;
}

static void test_vtop_layout(void)
{
    struct klab_walk w = walk();
    char text[2048];
    klab_format_walk(&w, "_text", false, text, sizeof text);
    CHECK(strstr(text, "VIRTUAL           PHYSICAL\nffffffff81000000  1000000  _text\n\n") == text);
    CHECK(strstr(text, "CR3: 2a0c000  (4K granule, 48-bit VA, 2 levels walked)\n") != NULL);
    CHECK(strstr(text, "    PGD: 2a0cff8 => 2a0f067  [PML4 pgd index 511] P RW\n") != NULL);
    CHECK(strstr(text, "    PMD: 2a0e040 => 10001e1  [PD pmd index 8] P RW PS\n") != NULL);
    CHECK(strstr(text, "   PAGE: 1000000  (2M)  rwx/---\n") != NULL);
    w.stop = KLAB_STOP_NOT_PRESENT;
    strcpy(w.why, "pmd entry 8 (PD) is not present");
    klab_format_walk(&w, NULL, false, text, sizeof text);
    CHECK(strstr(text, "ffffffff81000000  (not mapped)\n") != NULL);
    CHECK(strstr(text, "  STOP: not present: pmd entry 8 (PD) is not present\n") != NULL);
    CHECK(strstr(text, "PAGE:") == NULL);
    char tiny[20];
    size_t need = klab_format_walk(&w, NULL, false, tiny, sizeof tiny);
    CHECK(need > sizeof tiny && strlen(tiny) == sizeof tiny - 1);   /* snprintf's contract */
}

static void test_explain(void)
{
    struct klab_walk w = walk();
    char text[2048];
    klab_format_walk(&w, NULL, true, text, sizeof text);
    /* 48-bit VA, pgd shift 39: 9 index bits, 512 entries; index of 0xffffffff81000000 is 511. */
    CHECK(strstr(text, "PGDIR_SHIFT = 39  PTRS_PER_PGD = 512    pgd_index = (addr >> 39) & 511 = 511") != NULL);
    CHECK(strstr(text, "page offset = addr & 0xfff = 0x0") != NULL);
}

static void test_range_line(void)
{
    struct klab_range r = { .kind = KLAB_RANGE_MAPPED, .va_start = 0xffff800000000000ull,
                            .va_end = 0xffff800000200000ull, .pa_start = 0x40000000, .page_size = 4096, .leaves = 512,
                            .level_name = "pte", .attrs = "AF" };
    strcpy(r.root_name, "TTBR1_EL1");
    r.perms = (struct klab_perms){ .kernel_read = true, .kernel_write = true };
    char last[12] = "", line[512];
    klab_format_range(&r, last, line, sizeof line);
    CHECK_STR(line, "---[ TTBR1_EL1 ]---\n0xffff800000000000-0xffff800000200000     2M  PA 0x40000000       4K x512    "
                    "pte  rw-/---  AF\n");
    CHECK_STR(last, "TTBR1_EL1");
    klab_format_range(&r, last, line, sizeof line);
    CHECK(strncmp(line, "---", 3) != 0);   /* the header once per root */
}

static void test_parsers(void)
{
    unsigned f = 0;
    uint64_t sz = 0;
    struct klab_error err;
    CHECK(klab_parse_filters("w,x", &f, &err) == 0);
    CHECK_EQ_U64(f, KLAB_FILTER_WRITABLE | KLAB_FILTER_EXEC);
    f = 0;
    CHECK(klab_parse_filters("u,k", &f, &err) == -1);
    CHECK(strstr(err.msg, "exclude each other") != NULL);
    CHECK(klab_parse_filters("q", &f, &err) == -1);
    CHECK(klab_parse_page_size("64K", &sz, &err) == 0);
    CHECK_EQ_U64(sz, 65536);
    CHECK(klab_parse_page_size("512m", &sz, &err) == 0);
    CHECK_EQ_U64(sz, 512ull << 20);
    CHECK(klab_parse_page_size("3K", &sz, &err) == -1);   /* not a power of two */
    CHECK(klab_parse_page_size("4Q", &sz, &err) == -1);
}

static void test_arches(void)
{
    CHECK(klab_arch_from_name("i386:x86-64") == KLAB_ARCH_X86_64);
    CHECK(klab_arch_from_name("i386:x86-64:intel") == KLAB_ARCH_X86_64);
    CHECK(klab_arch_from_name("aarch64") == KLAB_ARCH_ARM64);
    CHECK(klab_arch_from_name("arm64") == KLAB_ARCH_ARM64);
    CHECK(klab_arch_from_name("aarch64x") == -1);
    CHECK(klab_arch_from_name("mips") == -1);
    const char *const *n = klab_mmu_reg_names(KLAB_ARCH_ARM64);
    CHECK_STR(n[0], "SCTLR");
    CHECK_STR(n[3], "TCR_EL1");
    CHECK(n[4] == NULL);
    /* SCTLR_EL1.M (bit 0) clear: translation off; the others land in their fields. */
    struct klab_mmu_regs r;
    uint64_t v[] = { 0x30d00800, 0x1000, 0x2000, 0x3000 };
    CHECK(klab_mmu_regs_set(&r, KLAB_ARCH_ARM64, v) == 0);
    CHECK(r.translation_off);
    CHECK_EQ_U64(r.ttbr1, 0x2000);
    CHECK_EQ_U64(r.tcr, 0x3000);
    uint64_t x[] = { 0x80050033, 0x5000, 0x1000, 0xd01 };   /* CR0.PG set */
    CHECK(klab_mmu_regs_set(&r, KLAB_ARCH_X86_64, x) == 0);
    CHECK(!r.translation_off);
    CHECK_EQ_U64(r.cr3, 0x5000);
    CHECK_EQ_U64(r.efer, 0xd01);
}

static void test_roots(void)
{
    struct klab_mmu_regs a = { .arch = KLAB_ARCH_ARM64, .ttbr0 = 1, .ttbr1 = 2 };
    klab_replace_root(&a, KLAB_ROOT_FOR_VA, 0xffff000000000000ull, 0x9000);   /* bit 55 set: TTBR1 */
    CHECK_EQ_U64(a.ttbr1, 0x9000);
    CHECK_EQ_U64(a.ttbr0, 1);
    klab_replace_root(&a, KLAB_ROOT_USER, 0, 0x8000);
    CHECK_EQ_U64(a.ttbr0, 0x8000);
    klab_replace_root(&a, KLAB_ROOT_ALL, 0, 0x7000);
    CHECK(a.ttbr0 == 0x7000 && a.ttbr1 == 0x7000);
    struct klab_mmu_regs x = { .arch = KLAB_ARCH_X86_64, .cr3 = 1 };
    klab_replace_root(&x, KLAB_ROOT_FOR_VA, 0xffffffff81000000ull, 0x6000);   /* one root for both halves */
    CHECK_EQ_U64(x.cr3, 0x6000);
}

static void test_entry_text(void)
{
    char text[1024];
    struct klab_error err;
    /* Seed 002's arm64 64K page descriptor: valid page, output address 0x61020000. */
    CHECK(klab_format_entry(KLAB_ARCH_ARM64, 16, 3, 0x68000061020713ull, text, sizeof text, NULL) == 0);
    CHECK(strstr(text, "  PTE: 68000061020713  arm64 level L3 (64K granule)\n  kind: page\n") == text);
    CHECK(strstr(text, "  output address: 61020000\n") != NULL);
    CHECK(klab_format_entry(KLAB_ARCH_X86_64, 16, 1, 1, text, sizeof text, &err) == -1);   /* no 64K on x86 */
    CHECK(strstr(err.msg, "4K pages only") != NULL);
}

static void test_abi(void)
{
    struct klab_abi abi;
    klab_abi(&abi);
    CHECK_EQ_U64(abi.version, KLAB_ABI_VERSION);
    CHECK_EQ_U64(abi.walk, sizeof(struct klab_walk));
    CHECK_EQ_U64(abi.range, sizeof(struct klab_range));
}

/* QEMU's answer beside a walk: PSTATE as QEMU's cpsr, EL in bits 3:2 and PAN in bit 22. */
static void test_qemu_verdict(void)
{
    struct klab_walk w = { .va = 0x400000, .stop = KLAB_WALK_OK, .pa = 0x41a06000, .page_size = 4096 };
    strcpy(w.root_name, "TTBR0_EL1");
    w.perms = (struct klab_perms){ .kernel_read = true, .user_read = true };
    char line[256];
    const uint64_t el1 = 1u << 2, pan = 1u << 22;
    CHECK_EQ_U64(klab_qemu_verdict(&w, true, 0x41a06000, el1 | pan, line, sizeof line), 0);
    CHECK_STR(line, "QEMU gva2gpa: 41a06000 (agrees)\n");
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, el1 | pan, line, sizeof line), 2);
    CHECK(strstr(line, "QEMU gva2gpa: unmapped (QEMU cannot translate EL0 pages while PSTATE.PAN") == line);
    /* Without PAN, at EL0, or for a kernel-only page, QEMU's "unmapped" is a disagreement. */
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, el1, line, sizeof line), 1);
    CHECK_STR(line, "QEMU gva2gpa: unmapped (DISAGREES)\n");
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, pan, line, sizeof line), 1);
    w.perms.user_read = false;
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, el1 | pan, line, sizeof line), 1);
    CHECK_EQ_U64(klab_qemu_verdict(&w, true, 0x1000, el1 | pan, line, sizeof line), 1);
    /* x86: QEMU's debug walk ignores SMAP; there is no state register and no excuse. */
    strcpy(w.root_name, "CR3");
    w.perms.user_read = true;
    CHECK(klab_qemu_state_reg(KLAB_ARCH_X86_64) == NULL);
    CHECK_STR(klab_qemu_state_reg(KLAB_ARCH_ARM64), "cpsr");
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, el1 | pan, line, sizeof line), 1);
    w.stop = KLAB_STOP_NOT_PRESENT;
    CHECK_EQ_U64(klab_qemu_verdict(&w, false, 0, 0, line, sizeof line), 0);
    CHECK_STR(line, "QEMU gva2gpa: unmapped (agrees)\n");
}

int main(void)
{
    RUN(test_sizes);
    RUN(test_vtop_layout);
    RUN(test_explain);
    RUN(test_range_line);
    RUN(test_parsers);
    RUN(test_arches);
    RUN(test_roots);
    RUN(test_entry_text);
    RUN(test_abi);
    RUN(test_qemu_verdict);
    return CHECK_DONE();
}
