#define _GNU_SOURCE
/* libklab's pictures on synthetic tables: the walk of seed 002's arm64 64K/48-bit/3-level shape drawn with
 * its index fields computed here from the address (not read back from the picture), a stopped x86 walk, the
 * escaping of labels, the map's rows, region names, tooltips and change outlines, and the output file's
 * refusals. With a folder argument, the pictures are also written there (tests/integration/svg.sh renders
 * them in a browser). */
#include "check.h"
#include "klab.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synthetic_ram.h"

static const char *out_dir;

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Well-formed enough to hand to xmllint: one document, every text and title closed. */
static void check_document(const char *svg)
{
    CHECK(!strncmp(svg, "<?xml version=\"1.0\"", 19));
    CHECK(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    CHECK_EQ_U64(count(svg, "</svg>\n"), 1);
    CHECK(!strcmp(svg + strlen(svg) - 7, "</svg>\n"));
    CHECK_EQ_U64(count(svg, "<text"), count(svg, "</text>"));
    CHECK_EQ_U64(count(svg, "<title>"), count(svg, "</title>"));
    CHECK(!strstr(svg, "<script"));
}

static void keep(const char *name, const char *svg)
{
    if (!out_dir)
        return;
    char path[4096];
    struct klab_error err;
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    CHECK(klab_write_output(path, svg, strlen(svg), &err) == 0);
}


static void test_walk_seed002_64k(void)
{
    struct klab_physmem *m = fresh_memory();
    const uint64_t va = 0xffff000008123456ull, leaf = 0x68000061020713ull;
    const uint64_t pgd = RAM_BASE + 0x10000, pmd = RAM_BASE + 0x20000, pte = RAM_BASE + 0x30000;
    /* Seed 002 3.1.5: PGDIR_SHIFT 42, PTRS_PER_PGD 64; PMD_SHIFT 29 and PAGE_SHIFT 16, 8192 entries each. */
    const unsigned pgd_index = (unsigned)((va >> 42) & 63), pmd_index = (unsigned)((va >> 29) & 8191);
    const unsigned pte_index = (unsigned)((va >> 16) & 8191);
    put(pgd, pgd_index, pmd | 3);
    put(pmd, pmd_index, pte | 3);
    put(pte, pte_index, leaf);
    struct klab_mmu_regs regs = { .arch = KLAB_ARCH_ARM64, .ttbr1 = pgd, .tcr = tcr_upper(48, 3) };
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, va, &w) == 0);
    size_t len = 0;
    char *svg = klab_svg_walk(&w, "seed 002", &len, NULL);
    CHECK(svg != NULL);
    if (!svg)
        return;
    CHECK_EQ_U64(len, strlen(svg));
    check_document(svg);
    char want[160];
    snprintf(want, sizeof want, "pgd_index = (addr &gt;&gt; 42) &amp; 63 = %u<", pgd_index);
    CHECK(strstr(svg, want) != NULL);
    snprintf(want, sizeof want, "pmd_index = (addr &gt;&gt; 29) &amp; 8191 = %u<", pmd_index);
    CHECK(strstr(svg, want) != NULL);
    snprintf(want, sizeof want, "pte_index = (addr &gt;&gt; 16) &amp; 8191 = %u<", pte_index);
    CHECK(strstr(svg, want) != NULL);
    CHECK(strstr(svg, "page offset = addr &amp; 0xffff = 0x3456<") != NULL);
    snprintf(want, sizeof want, ">[%u] %016llx<", pgd_index, (unsigned long long)(pmd | 3));
    CHECK(strstr(svg, want) != NULL);
    snprintf(want, sizeof want, ">[%u] %016llx<", pte_index, (unsigned long long)leaf);
    CHECK(strstr(svg, want) != NULL);
    CHECK(strstr(svg, ">[47:42]<") && strstr(svg, ">[41:29]<") && strstr(svg, ">[28:16]<") && strstr(svg, ">[15:0]<"));
    CHECK(strstr(svg, "pgd table (L1)") && strstr(svg, "64 entries") && strstr(svg, "8192 entries"));
    CHECK(strstr(svg, ">64K page<") != NULL);
    CHECK(strstr(svg, "-&gt; PA 0x61023456") != NULL);
    CHECK(strstr(svg, "TTBR1_EL1 = 0x40010000: 64K granule, 48-bit VA, 3 levels walked") != NULL);
    CHECK(!strstr(svg, "STOP"));
    keep("walk-arm64-64k-3level.svg", svg);
    free(svg);
    klab_physmem_close(m);
}

#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define PS 0x80ull
#define NX (1ull << 63)
#define PML4 (RAM_BASE + 0x1000)
#define UPDPT (RAM_BASE + 0x2000)
#define UPD (RAM_BASE + 0x3000)
#define UPT (RAM_BASE + 0x4000)
#define KPDPT (RAM_BASE + 0x5000)
#define KPD (RAM_BASE + 0x6000)
#define DMAP 0xffff888000000000ull   /* PML4[273] */

/* Four user pages rw- at 0x400000, two 2M direct-map pages at DMAP. */
static struct klab_mmu_regs build_x86(void)
{
    put(PML4, 0, UPDPT | P | RW | US);
    put(UPDPT, 0, UPD | P | RW | US);
    put(UPD, 2, UPT | P | RW | US);
    for (unsigned i = 0; i < 4; i++)
        put(UPT, i, (0x5000000ull + 0x3000ull * i) | P | RW | US | NX);
    put(PML4, 273, KPDPT | P | RW);
    put(KPDPT, 0, KPD | P | RW);
    put(KPD, 0, 0x0ull | P | RW | PS | NX);
    put(KPD, 1, 0x200000ull | P | RW | PS | NX);
    return (struct klab_mmu_regs){ .arch = KLAB_ARCH_X86_64, .cr3 = PML4, .efer = 1ull << 11 };
}

static void test_walk_stopped(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, 0x7000000ull, &w) != 0);   /* PD[56]: nothing there */
    char *svg = klab_svg_walk(&w, NULL, NULL, NULL);
    CHECK(svg != NULL);
    if (!svg)
        return;
    check_document(svg);
    CHECK(strstr(svg, "-&gt; not mapped") != NULL);
    CHECK(strstr(svg, ">STOP: not present<") != NULL);
    CHECK(strstr(svg, "class=\"bad\"/>") != NULL);
    CHECK(strstr(svg, "pte_index = (addr &gt;&gt; 12) &amp; 511 = 0   (not reached)") != NULL);
    CHECK(!strstr(svg, " page<"));
    keep("walk-x86_64-stopped.svg", svg);
    free(svg);
    klab_physmem_close(m);
}

static void test_walk_label_escaped(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    struct klab_walk w;
    CHECK(klab_translate(&regs, m, DMAP + 0x1234, &w) == 0);
    char *svg = klab_svg_walk(&w, "<x&y>\"'\x01", NULL, NULL);
    CHECK(svg && strstr(svg, "(&lt;x&amp;y&gt;&quot;&apos;)") && !strstr(svg, "<x&y>") && !strchr(svg, '\x01'));
    CHECK(svg && strstr(svg, ">2M page<") && strstr(svg, "+0x1234 = 0x1234<"));
    free(svg);
    /* Nothing walked (paging off): the reason, no strip. */
    regs.translation_off = true;
    CHECK(klab_translate(&regs, m, DMAP, &w) != 0);
    svg = klab_svg_walk(&w, NULL, NULL, NULL);
    CHECK(svg && strstr(svg, "STOP: ") && !strstr(svg, "_index"));
    if (svg)
        check_document(svg);
    free(svg);
    klab_physmem_close(m);
}

static void test_map_rows_changes(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build_x86();
    struct klab_error err;
    struct klab_ptsnap *a = klab_ptsnap_take(&regs, m, NULL, -1, "before", &err);
    put(UPT, 1, (0x5003000ull) | P | US | NX);   /* page 1 write-protected (a fork's copy-on-write) */
    put(KPD, 1, 0);                              /* the second 2M page unmapped */
    struct klab_ptsnap *b = klab_ptsnap_take(&regs, m, NULL, -1, "after <&>", &err);
    CHECK(a && b);
    if (!a || !b)
        return;
    const struct klab_svg_region region = { DMAP, DMAP + (1ull << 30), "direct map" };
    struct klab_svg_map_opts o = { .regions = &region, .nregions = 1, .title = "ptdump" };
    char *svg = klab_svg_map(a, &o, NULL, &err);
    CHECK(svg != NULL);
    if (svg) {
        check_document(svg);
        struct klab_ptsnap_info in;
        klab_ptsnap_info(a, &in);
        CHECK_EQ_U64(count(svg, "<title>") - 1, in.nranges);   /* the document's title, one per range */
        CHECK(strstr(svg, ">direct map<") && strstr(svg, ">user (CR3)<"));
        CHECK(strstr(svg, ">0x0000000000400000-0x0000000000403fff<") != NULL);
        CHECK(strstr(svg, ">0xffff888000000000-0xffff8880003fffff<") != NULL);
        CHECK(!strstr(svg, "class=\"changed\""));
        keep("map-x86_64.svg", svg);
    }
    free(svg);
    o.before = a;
    svg = klab_svg_map(b, &o, NULL, &err);
    CHECK(svg != NULL);
    if (svg) {
        check_document(svg);
        CHECK_EQ_U64(count(svg, "class=\"changed\"/>"), 1);
        CHECK_EQ_U64(count(svg, "class=\"unmapped\"/>"), 1);
        CHECK(strstr(svg, ">2 changes<") != NULL);
        CHECK(strstr(svg, "after &lt;&amp;&gt;") != NULL);
        /* The listed changes are klab ptdiff's own lines. */
        char *text = klab_ptdiff_text(a, b, 0, 0, 0, &err);
        CHECK(text != NULL);
        for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
            if (line[0] == '~' || line[0] == '-') {
                char want[1024] = ">";
                for (char *c = line; *c && strlen(want) < sizeof want - 8; c++)
                    strcat(want, *c == '>' ? "&gt;" : *c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[2]){ *c, 0 });
                CHECK(strstr(svg, strcat(want, "<")) != NULL);
            }
        free(text);
        keep("ptdiff-x86_64.svg", svg);
    }
    free(svg);
    /* A span with nothing in it. */
    o.before = NULL;
    o.va_start = 0x100000000ull;
    o.va_end = 0x1ffffffffull;
    svg = klab_svg_map(a, &o, NULL, &err);
    CHECK(svg && strstr(svg, "nothing mapped in this span"));
    free(svg);
    klab_ptsnap_free(a);
    klab_ptsnap_free(b);
    klab_physmem_close(m);
}

static void test_write_output(void)
{
    char dir[] = "/tmp/klab-svg-XXXXXX", path[256], link[256], data[64] = "";
    CHECK(mkdtemp(dir) != NULL);
    struct klab_error err;
    snprintf(path, sizeof path, "%s/a.svg", dir);
    snprintf(link, sizeof link, "%s/link.svg", dir);
    CHECK(klab_write_output(path, "<svg/>", 6, &err) == 0);
    CHECK(klab_write_output(path, "<svg></svg>", 11, &err) == 0);   /* replaced whole */
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, data, sizeof data) == 11 && !strcmp(data, "<svg></svg>"));
    close(fd);
    CHECK(symlink(path, link) == 0);
    CHECK(klab_write_output(link, "x", 1, &err) == -1 && strstr(err.msg, "symlink"));
    fd = open(path, O_RDONLY);
    memset(data, 0, sizeof data);
    CHECK(fd >= 0 && read(fd, data, sizeof data) == 11);   /* the link's target untouched */
    close(fd);
    CHECK(klab_write_output(dir, "x", 1, &err) == -1 && strstr(err.msg, "not a regular file"));
    CHECK(klab_write_output("/nonexistent-dir/a.svg", "x", 1, &err) == -1 && strstr(err.msg, "cannot create"));
    unlink(link);
    unlink(path);
    CHECK(rmdir(dir) == 0);   /* no temporary file left behind */
}

int main(int argc, char **argv)
{
    out_dir = argc > 1 ? argv[1] : NULL;
    RUN(test_walk_seed002_64k);
    RUN(test_walk_stopped);
    RUN(test_walk_label_escaped);
    RUN(test_map_rows_changes);
    RUN(test_write_output);
    return CHECK_DONE();
}
