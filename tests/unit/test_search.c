#define _GNU_SOURCE
/* libklab's memory search on synthetic x86_64 tables: a value is found at every VA that maps it (an alias
 * too), aligned only, never in a page outside the RAM named (a device page is not read), within --range,
 * bounded by max_hits; bad requests are refused with a reason. Expected hits come from where the test wrote
 * the value and how it mapped the pages. */
#include "check.h"
#include "klab.h"

#include "synthetic_ram.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define P 0x1ull
#define RW 0x2ull
#define A 0x20ull
#define G 0x100ull
#define NX (1ull << 63)
#define VA0 0xffff888000000000ull   /* PML4[273] PDPT[0] PD[0] PT[0..3] */
#define DEVICE_PA 0xfe000000ull     /* outside RAM_BASE's 32 MiB */
#define VALUE 0x6b6c61622d736561ull

struct hits {
    uint64_t va[8], pa[8];
    int n;
};
static int collect(void *ctx, uint64_t va, uint64_t pa)
{
    struct hits *h = ctx;
    if (h->n < 8)
        h->va[h->n] = va, h->pa[h->n] = pa;
    h->n++;
    return 0;
}

static struct klab_mmu_regs build(void)
{
    const uint64_t pml4 = RAM_BASE + 0x1000, pdpt = RAM_BASE + 0x2000, pd = RAM_BASE + 0x3000, pt = RAM_BASE + 0x4000;
    put(pml4, 273, pdpt | P | RW);
    put(pdpt, 0, pd | P | RW);
    put(pd, 0, pt | P | RW);
    put(pt, 0, (RAM_BASE + 0x100000) | P | RW | A | G | NX);
    put(pt, 1, (RAM_BASE + 0x101000) | P | RW | A | G | NX);
    put(pt, 2, DEVICE_PA | P | RW | A | G | NX);              /* an ioremap-like page */
    put(pt, 3, (RAM_BASE + 0x100000) | P | RW | A | G | NX);  /* a second VA for page 0 */
    uint64_t v = VALUE;
    memcpy(ram + 0x100000 + 0x18, &v, 8);    /* aligned: found */
    memcpy(ram + 0x101000 + 0x21, &v, 8);    /* unaligned: not a hit at width 8 */
    return (struct klab_mmu_regs){.arch = KLAB_ARCH_X86_64, .cr3 = pml4, .efer = 1ull << 11};
}

static const struct klab_ram_region RAM_REGION = {RAM_BASE, RAM_SIZE, 0};

static int search(const struct klab_mmu_regs *regs, struct klab_physmem *m, struct klab_search_opts o,
                  struct hits *h, struct klab_search_stats *st, struct klab_error *err)
{
    memset(h, 0, sizeof *h);
    o.ram = &RAM_REGION, o.nram = 1;
    return klab_search(regs, m, &o, collect, h, st, err);
}

static void test_finds_every_alias(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct hits h;
    struct klab_search_stats st;
    struct klab_error err;
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8}, &h, &st, &err), 0);
    CHECK_EQ_U64(h.n, 2);
    CHECK_EQ_U64(h.va[0], VA0 + 0x18);
    CHECK_EQ_U64(h.pa[0], RAM_BASE + 0x100018);
    CHECK_EQ_U64(h.va[1], VA0 + 0x3000 + 0x18);
    CHECK_EQ_U64(h.pa[1], RAM_BASE + 0x100018);
    CHECK_EQ_U64(st.mapped_bytes, 0x4000);
    CHECK_EQ_U64(st.bytes_read, 0x3000);       /* the device page is skipped, not read */
    CHECK_EQ_U64(st.skipped_bytes, 0x1000);
    klab_physmem_close(m);
}

static void test_range_width_and_bound(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct hits h;
    struct klab_search_stats st;
    struct klab_error err;
    /* only the alias page */
    search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8, .va_start = VA0 + 0x3000,
                                               .va_end = VA0 + 0x3fff}, &h, &st, &err);
    CHECK_EQ_U64(h.n, 1);
    CHECK_EQ_U64(h.va[0], VA0 + 0x3018);
    /* a range that ends inside the value's word: not found */
    search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8, .va_start = VA0, .va_end = VA0 + 0x1b},
           &h, &st, &err);
    CHECK_EQ_U64(h.n, 0);
    /* the low half at width 4: at 0x18 and its alias; the unaligned copy at 0x1021 is not 4-aligned either */
    search(&regs, m, (struct klab_search_opts){.value = VALUE & 0xffffffff, .width = 4}, &h, &st, &err);
    CHECK_EQ_U64(h.n, 2);
    /* max_hits */
    search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8, .max_hits = 1}, &h, &st, &err);
    CHECK_EQ_U64(h.n, 1);
    CHECK_EQ_U64(st.hits, 1);
    klab_physmem_close(m);
}

static void test_bad_requests(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    struct hits h;
    struct klab_error err;
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = 1, .width = 3}, &h, NULL, &err), (uint64_t)-1);
    CHECK(strstr(err.msg, "width") != NULL);
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = 1ull << 32, .width = 4}, &h, NULL, &err),
                 (uint64_t)-1);
    CHECK(strstr(err.msg, "4 bytes") != NULL);
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = 1, .width = 8, .va_start = 2, .va_end = 1},
                        &h, NULL, &err), (uint64_t)-1);
    CHECK(strstr(err.msg, "empty range") != NULL);
    klab_physmem_close(m);
}

/* An empty RAM file of RAM_SIZE bytes, all hole, at a fresh path (the template is filled in). -1 if not made. */
static int sparse_ram_file(char *path)
{
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0 && ftruncate(fd, (off_t)RAM_SIZE) != 0) {
        CHECK(!"ftruncate");
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

/* The same tables in a sparse RAM file: only the pages the test writes exist; the search must find the value
 * in data, count the holes as zeros without reading them (the file's allocated blocks do not grow), and find
 * a zero value in a hole without reading it. */
static void test_ram_file_holes(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    klab_physmem_close(m);
    char path[] = "/tmp/klab-test-search-XXXXXX";
    int fd = sparse_ram_file(path);
    if (fd < 0)
        return;
    /* the four table pages and the two data pages; everything else stays a hole */
    const uint64_t written[] = {0x1000, 0x2000, 0x3000, 0x4000, 0x100000, 0x101000};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++)
        CHECK(pwrite(fd, ram + written[i], 4096, (off_t)written[i]) == 4096);
    struct stat before, after;
    fstat(fd, &before);
    struct klab_ram_region region = {RAM_BASE, RAM_SIZE, 0};
    struct klab_error err;
    m = klab_physmem_open_ramfile(path, &region, 1, &err);
    CHECK(m != NULL);
    if (!m) {
        close(fd);
        unlink(path);
        return;
    }
    /* map a hole page too: PT[4] -> RAM_BASE + 0x200000, never written */
    struct hits h;
    struct klab_search_stats st;
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8}, &h, &st, &err), 0);
    CHECK_EQ_U64(h.n, 2);
    CHECK_EQ_U64(st.bytes_read, 0x3000);
    klab_physmem_close(m);
    /* a table that maps a hole */
    put(RAM_BASE + 0x4000, 4, (RAM_BASE + 0x200000) | P | RW | A | G | NX);
    CHECK(pwrite(fd, ram + 0x4000, 4096, 0x4000) == 4096);
    fstat(fd, &before);
    m = klab_physmem_open_ramfile(path, &region, 1, &err);
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = VALUE, .width = 8}, &h, &st, &err), 0);
    CHECK_EQ_U64(h.n, 2);
    CHECK_EQ_U64(st.zero_bytes, 0x1000);
    CHECK_EQ_U64(st.bytes_read, 0x3000);
    CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = 0, .width = 8, .va_start = VA0 + 0x4000,
                                                           .va_end = VA0 + 0x4fff}, &h, &st, &err), 0);
    CHECK_EQ_U64(h.n, 512);                 /* every word of the hole page is zero */
    CHECK_EQ_U64(h.va[0], VA0 + 0x4000);
    CHECK_EQ_U64(st.bytes_read, 0);
    fstat(fd, &after);
    CHECK_EQ_U64(after.st_blocks, before.st_blocks);   /* the hole was not read into existence */
    klab_physmem_close(m);
    close(fd);
    unlink(path);
}

/* A 2 MiB page whose first 1.5 MiB and last page are data, the rest a hole: hits in the second MiB (a later
 * chunk of the same data run) and in the last page (data after a hole) are found at both widths, and the hole
 * between is counted as zeros, not read. Expected offsets are where the test wrote the value. */
static void test_ram_file_runs_across_chunks(void)
{
    struct klab_physmem *m = fresh_memory();
    struct klab_mmu_regs regs = build();
    klab_physmem_close(m);
    const uint64_t big = 0x400000, data_len = 0x180000, last = big + 0x1ff000;
    put(RAM_BASE + 0x3000, 1, (RAM_BASE + big) | P | RW | A | G | NX | 0x80);   /* PD[1]: PS, 2 MiB */
    uint64_t v = VALUE;
    memcpy(ram + big + 0x123458, &v, 8);
    memcpy(ram + last + 0xff8, &v, 8);
    char path[] = "/tmp/klab-test-search-XXXXXX";
    int fd = sparse_ram_file(path);
    if (fd < 0)
        return;
    CHECK(pwrite(fd, ram, 0x200000, 0) == 0x200000);   /* tables and the 4K pages */
    CHECK(pwrite(fd, ram + big, data_len, (off_t)big) == (ssize_t)data_len);
    CHECK(pwrite(fd, ram + last, 4096, (off_t)last) == 4096);
    struct klab_ram_region region = {RAM_BASE, RAM_SIZE, 0};
    struct klab_error err;
    m = klab_physmem_open_ramfile(path, &region, 1, &err);
    CHECK(m != NULL);
    struct hits h;
    struct klab_search_stats st;
    const uint64_t va = VA0 + 0x200000;
    for (unsigned w = 4; m && w <= 8; w += 4) {
        uint64_t want = w == 8 ? VALUE : (uint32_t)VALUE;
        CHECK_EQ_U64(search(&regs, m, (struct klab_search_opts){.value = want, .width = w, .va_start = va,
                                                                .va_end = va + 0x1fffff},
                            &h, &st, &err), 0);
        CHECK_EQ_U64(h.n, 2);
        CHECK_EQ_U64(h.va[0], va + 0x123458);
        CHECK_EQ_U64(h.pa[0], RAM_BASE + big + 0x123458);
        CHECK_EQ_U64(h.va[1], va + 0x1ffff8);
        CHECK_EQ_U64(st.zero_bytes, 0x200000 - data_len - 0x1000);
        CHECK_EQ_U64(st.bytes_read, data_len + 0x1000);
    }
    if (m)
        klab_physmem_close(m);
    close(fd);
    unlink(path);
}

int main(void)
{
    RUN(test_finds_every_alias);
    RUN(test_range_width_and_bound);
    RUN(test_bad_requests);
    RUN(test_ram_file_holes);
    RUN(test_ram_file_runs_across_chunks);
    return CHECK_DONE();
}
