#define _GNU_SOURCE
/* libklab's page-table snapshots and their diff on synthetic x86_64 tables: each test builds tables, takes a
 * snapshot, changes the tables the way the kernel would (fork's write-protect, a copy-on-write fault, a
 * direct-map split, an A/D update, a new mapping) and checks the changes against what it changed. Then the
 * snapshot text: round trip, and refusal of cut, reordered or malformed text; the file checks. */
#include "check.h"
#include "klab.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synthetic_ram.h"

#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define A 0x20ull
#define D 0x40ull
#define PS 0x80ull
#define G 0x100ull
#define NX (1ull << 63)

#define PML4 (RAM_BASE + 0x1000)
#define UPDPT (RAM_BASE + 0x2000)
#define UPD (RAM_BASE + 0x3000)
#define UPT (RAM_BASE + 0x4000)
#define KPDPT (RAM_BASE + 0x5000)
#define KPD (RAM_BASE + 0x6000)
#define KPT (RAM_BASE + 0x7000)
#define USER_VA 0x400000ull
#define DMAP 0xffff888000000000ull   /* PML4[273] */
#define USER_PA(i) (0x5000000ull + 0x3000ull * (i))   /* scattered: never contiguous */

/* 8 user pages rw- at USER_VA with scattered PAs; a 2M direct-map page at DMAP (PD[0]) and one at PD[1]. */
static struct klab_mmu_regs build(void)
{
    put(PML4, 0, UPDPT | P | RW | US);
    put(UPDPT, 0, UPD | P | RW | US);
    put(UPD, 2, UPT | P | RW | US);
    for (unsigned i = 0; i < 8; i++)
        put(UPT, i, USER_PA(i) | P | RW | US | A | D | NX);
    put(PML4, 273, KPDPT | P | RW);
    put(KPDPT, 0, KPD | P | RW);
    put(KPD, 0, 0x0 | P | RW | PS | A | D | G | NX);
    put(KPD, 1, 0x200000 | P | RW | PS | A | D | G | NX);
    return (struct klab_mmu_regs){ .arch = KLAB_ARCH_X86_64, .cr3 = PML4, .efer = 1ull << 11 };
}

#define MAX_CH 16
struct changes {
    struct klab_ptchange c[MAX_CH];
    int n;
};
static int collect(void *ctx, const struct klab_ptchange *c)
{
    struct changes *g = ctx;
    if (g->n < MAX_CH)
        g->c[g->n] = *c;
    g->n++;
    return 0;
}

static struct klab_ptsnap *snap(struct klab_physmem *m, const struct klab_mmu_regs *r)
{
    struct klab_error err;
    struct klab_ptsnap *s = klab_ptsnap_take(r, m, NULL, -1, "test", &err);
    CHECK(s != NULL);
    return s;
}

static struct changes diff(struct klab_ptsnap *a, struct klab_ptsnap *b, unsigned flags)
{
    struct changes g = { .n = 0 };
    struct klab_error err;
    CHECK(klab_ptdiff(a, b, 0, 0, flags, collect, &g, &err) == 0);
    return g;
}

static void test_no_change(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct klab_ptsnap *a = snap(m, &regs), *b = snap(m, &regs);
    struct klab_ptsnap_info in;
    klab_ptsnap_info(a, &in);
    CHECK_EQ_U64(in.nranges, 9);          /* 8 scattered user pages + the two 2M pages merged */
    CHECK_EQ_U64(in.root_pa[0], PML4);
    CHECK_EQ_U64(diff(a, b, 0).n, 0);
    /* A and D set or cleared by the CPU are not a change, unless asked for. */
    put(UPT, 3, USER_PA(3) | P | RW | US | NX);
    klab_ptsnap_free(b);
    b = snap(m, &regs);
    CHECK_EQ_U64(diff(a, b, 0).n, 0);
    struct changes g = diff(a, b, KLAB_PTDIFF_ALL_BITS);
    CHECK_EQ_U64(g.n, 1);
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_BITS);
    CHECK_EQ_U64(g.c[0].va_start, USER_VA + 0x3000);
    CHECK_STR(g.c[0].bits_gone, "ACCESSED DIRTY");
    CHECK_STR(g.c[0].bits_new, "");
    /* Rights and another bit together: "perms" and "bits". */
    put(UPT, 2, USER_PA(2) | P | US | A | D | G | NX);
    klab_ptsnap_free(b);
    b = snap(m, &regs);
    g = diff(a, b, 0);
    CHECK_EQ_U64(g.n, 1);
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_PERMS | KLAB_PTDIFF_BITS);
    CHECK(strstr(g.c[0].bits_new, "GLOBAL") && strstr(g.c[0].bits_new, "RO") && !strcmp(g.c[0].bits_gone, "RW"));
    klab_ptsnap_free(a);
    klab_ptsnap_free(b);
    klab_physmem_close(m);
}

/* fork: every private writable page becomes read-only (mm/memory.c copy_present_pte's ptep_set_wrprotect);
 * one write then gives page 5 a new frame, writable again (wp_page_copy). */
static void test_fork_then_cow(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct klab_ptsnap *before = snap(m, &regs);
    for (unsigned i = 0; i < 8; i++)
        put(UPT, i, USER_PA(i) | P | US | A | D | NX);
    struct klab_ptsnap *forked = snap(m, &regs);
    struct changes g = diff(before, forked, 0);
    CHECK_EQ_U64(g.n, 1);
    CHECK_EQ_U64(g.c[0].kind, KLAB_PTCHANGE_CHANGED);
    /* Only the rights' own bits flipped (R/W): "perms", with the names shown, not also "bits". */
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_PERMS);
    CHECK_EQ_U64(g.c[0].va_start, USER_VA);
    CHECK_EQ_U64(g.c[0].va_end, USER_VA + 0x8000);
    CHECK_EQ_U64(g.c[0].pieces, 8);
    CHECK(!g.c[0].pa_follows);
    CHECK(g.c[0].before.perms.user_write && !g.c[0].after.perms.user_write);
    CHECK_STR(g.c[0].bits_gone, "RW");
    CHECK_STR(g.c[0].bits_new, "RO");
    char line[512];
    klab_format_ptchange(&g.c[0], line, sizeof line);
    CHECK(strstr(line, " perms ") && !strstr(line, "bits") && strstr(line, "rw-/rw- -> r--/r--") && strstr(line, "-RW +RO") &&
          strstr(line, "4K x8 pte") && line[0] == '~');
    put(UPT, 5, 0x7777000ull | P | RW | US | A | D | NX);
    struct klab_ptsnap *wrote = snap(m, &regs);
    g = diff(forked, wrote, 0);
    CHECK_EQ_U64(g.n, 1);
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_MOVED | KLAB_PTDIFF_PERMS);
    CHECK_EQ_U64(g.c[0].va_start, USER_VA + 0x5000);
    CHECK_EQ_U64(g.c[0].va_end, USER_VA + 0x6000);
    CHECK_EQ_U64(g.c[0].before.pa_start, USER_PA(5));
    CHECK_EQ_U64(g.c[0].after.pa_start, 0x7777000);
    /* Against the first snapshot: pages 0-4 and 6-7 read-only, page 5 only moved. */
    g = diff(before, wrote, 0);
    CHECK_EQ_U64(g.n, 3);
    CHECK_EQ_U64(g.c[0].va_end, USER_VA + 0x5000);
    CHECK_EQ_U64(g.c[1].what, KLAB_PTDIFF_MOVED);
    CHECK_EQ_U64(g.c[2].va_start, USER_VA + 0x6000);
    CHECK_EQ_U64(g.c[2].what, KLAB_PTDIFF_PERMS);
    klab_ptsnap_free(before);
    klab_ptsnap_free(forked);
    klab_ptsnap_free(wrote);
    klab_physmem_close(m);
}

/* set_direct_map_invalid_noflush (memfd_secret) on one page of a 2M direct-map page: the PMD is split into
 * a PTE table (arch/x86/mm/pat/set_memory.c split_large_page) and the page's PTE cleared. */
static void test_direct_map_split(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct klab_ptsnap *a = snap(m, &regs);
    for (unsigned i = 0; i < 512; i++)
        if (i != 83)
            put(KPT, i, (0x1000ull * i) | P | RW | A | D | G | NX);
    put(KPD, 0, KPT | P | RW | A | D);
    struct klab_ptsnap *b = snap(m, &regs);
    struct changes g = diff(a, b, 0);
    CHECK_EQ_U64(g.n, 3);
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_SPLIT);
    CHECK_EQ_U64(g.c[0].va_start, DMAP);
    CHECK_EQ_U64(g.c[0].va_end, DMAP + 83 * 0x1000);
    CHECK_EQ_U64(g.c[0].before.page_size, 2ull << 20);
    CHECK_EQ_U64(g.c[0].after.page_size, 4096);
    CHECK(g.c[0].pa_follows);
    CHECK_STR(g.c[0].bits_gone, "");   /* "2M-page" -> "4K-page" is what the split says */
    CHECK_EQ_U64(g.c[1].kind, KLAB_PTCHANGE_UNMAPPED);
    CHECK_EQ_U64(g.c[1].va_start, DMAP + 83 * 0x1000);
    CHECK_EQ_U64(g.c[1].va_end, DMAP + 84 * 0x1000);
    CHECK_EQ_U64(g.c[1].before.pa_start, 83 * 0x1000);
    char line[512];
    klab_format_ptchange(&g.c[1], line, sizeof line);
    CHECK(line[0] == '-' && strstr(line, "unmapped") && strstr(line, "part of a 2M pmd"));
    klab_format_ptchange(&g.c[0], line, sizeof line);
    CHECK(strstr(line, "split") && strstr(line, "2M pmd -> 4K x83 pte"));
    CHECK_EQ_U64(g.c[2].what, KLAB_PTDIFF_SPLIT);
    CHECK_EQ_U64(g.c[2].va_start, DMAP + 84 * 0x1000);
    CHECK_EQ_U64(g.c[2].va_end, DMAP + (2ull << 20));   /* the second 2M page did not change */
    /* The other way round, the page comes back and the range merges. */
    g = diff(b, a, 0);
    CHECK_EQ_U64(g.n, 3);
    CHECK_EQ_U64(g.c[0].what, KLAB_PTDIFF_MERGED);
    CHECK_EQ_U64(g.c[1].kind, KLAB_PTCHANGE_MAPPED);
    /* Only the span asked for. */
    struct changes h = { .n = 0 };
    struct klab_error err;
    CHECK(klab_ptdiff(a, b, DMAP + 83 * 0x1000, DMAP + 83 * 0x1000 + 0xfff, 0, collect, &h, &err) == 0);
    CHECK_EQ_U64(h.n, 1);
    CHECK_EQ_U64(h.c[0].kind, KLAB_PTCHANGE_UNMAPPED);
    char *text = klab_ptdiff_text(a, b, 0, 0, 0, &err);
    CHECK(text && strstr(text, "3 changes: 0 mapped, 1 unmapped, 2 changed (2 split)\n"));
    free(text);
    text = klab_ptdiff_text(a, a, 0, 0, 0, &err);
    CHECK(text && !strcmp(text, "no change\n"));
    free(text);
    klab_ptsnap_free(a);
    klab_ptsnap_free(b);
    klab_physmem_close(m);
}

static void test_text_round_trip_and_refusals(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct klab_error err;
    struct klab_ptsnap *a = klab_ptsnap_take(&regs, m, NULL, 77, "pid 77 (cow)\n\x01", &err);
    size_t len;
    char *t = klab_ptsnap_format(a, &len);
    CHECK(t && strstr(t, "label pid 77 (cow)??\n"));
    struct klab_ptsnap *b = klab_ptsnap_parse(t, len, &err);
    CHECK(b != NULL);
    size_t len2;
    char *t2 = b ? klab_ptsnap_format(b, &len2) : NULL;
    CHECK(t2 && len2 == len && !memcmp(t, t2, len));
    struct klab_ptsnap_info in;
    if (b) {
        klab_ptsnap_info(b, &in);
        CHECK_EQ_U64(in.pid, 77);
        CHECK_EQ_U64(diff(a, b, KLAB_PTDIFF_ALL_BITS).n, 0);
        klab_ptsnap_free(b);
    }
    /* Cut before the count line, and cut inside a line: refused. */
    char *cut_at = strstr(t, "ranges ");
    CHECK(!klab_ptsnap_parse(t, (size_t)(cut_at - t), &err) && strstr(err.msg, "cut short"));
    CHECK(!klab_ptsnap_parse(t, len - 2, &err));
    /* A count that disagrees. */
    char *wrong = strdup(t);
    wrong[cut_at - t + 7] = '8';
    CHECK(!klab_ptsnap_parse(wrong, len, &err) && strstr(err.msg, "says 8 ranges"));
    free(wrong);
    /* Two ranges swapped: out of order. */
    char *l1 = strstr(t, "\nr "), *l2 = l1 ? strstr(l1 + 1, "\nr ") : NULL, *l3 = l2 ? strstr(l2 + 1, "\nr ") : NULL;
    CHECK(l3 != NULL);
    if (l3) {
        size_t n1 = (size_t)(l2 - l1), n2 = (size_t)(l3 - l2);
        char *sw = malloc(len + 1);
        size_t o = (size_t)(l1 - t);
        memcpy(sw, t, o);
        memcpy(sw + o, l2, n2);
        memcpy(sw + o + n2, l1, n1);
        memcpy(sw + o + n1 + n2, l3, len - (size_t)(l3 - t));
        CHECK(!klab_ptsnap_parse(sw, len, &err) && strstr(err.msg, "out of VA order"));
        free(sw);
    }
    /* Malformed fields. */
    static const char *const bad[] = {
        "klab-ptsnap 2\n",
        "klab-ptsnap 1\narch sparc\npid -1\nroots 0x0 0x0\nlabel\nranges 0\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M CR3 0x1000 0x0fff 0x0 0x1000 1 pte 1 12 rw-/--- 0x1 x\nranges 1\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M TTBR0_EL1 0x0 0x1000 0x0 0x1000 1 pte 1 12 rw-/--- 0x1 x\nranges 1\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M CR3 0x0 0x1000 0x0 0x1001 1 pte 1 12 rw-/--- 0x1 x\nranges 1\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M CR3 0x0 0x1000 0x0 0x1000 1 pte 1 12 rw-/--x- 0x1 x\nranges 1\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M CR3 0x0 0x1000 0x0 0x1000 1 pte 1 12 rw-/--- 0x11111111111111111 x\nranges 1\n",
        "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\nr M CR3 0x0 0x1000  0x0 0x1000 1 pte 1 12 rw-/--- 0x1 x\nranges 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct klab_ptsnap *s = klab_ptsnap_parse(bad[i], strlen(bad[i]), &err);
        if (s)
            fprintf(stderr, "  accepted bad snapshot %zu\n", i);
        CHECK(s == NULL);
        klab_ptsnap_free(s);
    }
    const char *good = "klab-ptsnap 1\narch x86_64\npid -1\nroots 0x0 0x0\nlabel\n"
                       "r M CR3 0x0 0x1000 0x0 0x1000 1 pte 1 12 rw-/--- 0x1 x y\nranges 1\n";
    struct klab_ptsnap *g = klab_ptsnap_parse(good, strlen(good), &err);
    CHECK(g && !strcmp(klab_ptsnap_range(g, 0)->attrs, "x y"));
    klab_ptsnap_free(g);
    free(t);
    free(t2);
    klab_ptsnap_free(a);
    klab_physmem_close(m);
}

static void test_files(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct klab_error err;
    char dir[] = "/tmp/klab-ptsnap-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], link[256], other[256];
    snprintf(path, sizeof path, "%s/a", dir);
    snprintf(link, sizeof link, "%s/l", dir);
    struct klab_ptsnap *a = klab_ptsnap_take(&regs, m, NULL, -1, "", &err);
    CHECK(klab_ptsnap_save(a, path, &err) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    struct klab_ptsnap *b = klab_ptsnap_load(path, &err);
    CHECK(b != NULL);
    klab_ptsnap_free(b);
    /* A symlink is not followed on load, and replaced (not written through) on save. */
    CHECK(symlink(path, link) == 0);
    CHECK(!klab_ptsnap_load(link, &err) && strstr(err.msg, "symlink"));
    CHECK(klab_ptsnap_save(a, link, &err) == 0);
    CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
    /* A file others may write, a folder others may write: refused. */
    CHECK(chmod(path, 0622) == 0);
    CHECK(!klab_ptsnap_load(path, &err) && strstr(err.msg, "writable by others"));
    CHECK(chmod(path, 0600) == 0);
    CHECK(chmod(dir, 0777) == 0);
    CHECK(!klab_ptsnap_load(path, &err) && strstr(err.msg, "writable by others"));
    CHECK(klab_ptsnap_save(a, path, &err) != 0);
    CHECK(chmod(dir, 01777) == 0);   /* sticky, as /tmp: our files cannot be replaced by others */
    b = klab_ptsnap_load(path, &err);
    CHECK(b != NULL);
    klab_ptsnap_free(b);
    CHECK(chmod(dir, 0700) == 0);
    /* Not a snapshot. */
    snprintf(other, sizeof other, "%s/junk", dir);
    int fd = open(other, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "hello\n", 6) == 6);
    close(fd);
    CHECK(!klab_ptsnap_load(other, &err) && strstr(err.msg, "not a klab page-table snapshot"));
    /* Names in the store. */
    setenv("KLAB_PTSNAP_DIR", dir, 1);
    CHECK(klab_ptsnap_path("before", false, path, sizeof path, &err) == 0);
    snprintf(other, sizeof other, "%s/before", dir);
    CHECK_STR(path, other);
    CHECK(klab_ptsnap_path("../x", false, path, sizeof path, &err) == 0);   /* a path, as given */
    CHECK_STR(path, "../x");
    CHECK(klab_ptsnap_path(".hidden", false, path, sizeof path, &err) != 0);
    CHECK(klab_ptsnap_path("a b", false, path, sizeof path, &err) != 0);
    unsetenv("KLAB_PTSNAP_DIR");
    unlink(other);
    snprintf(other, sizeof other, "%s/junk", dir);
    unlink(other);
    snprintf(path, sizeof path, "%s/a", dir);
    unlink(path);
    unlink(link);
    rmdir(dir);
    klab_ptsnap_free(a);
    klab_physmem_close(m);
}

int main(void)
{
    RUN(test_no_change);
    RUN(test_fork_then_cow);
    RUN(test_direct_map_split);
    RUN(test_text_round_trip_and_refusals);
    RUN(test_files);
    return CHECK_DONE();
}
