/* libklab's kdump-compressed reader on synthetic dumps laid out as QEMU's dump/dump.c writes them (include/
 * sysemu/dump.h: disk_dump_header, kdump_sub_header, two bitmaps, page descriptors, pages), plain and as a
 * flattened stream whose records come in any order. The pages are compressed here with the libraries
 * themselves (zlib, LZO, snappy), so the reader's output is checked against the bytes the test put in. */
#define _GNU_SOURCE
#include "check.h"
#include "klab.h"
#include "physmem_internal.h"

#include <elf.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <zlib.h>

#define BS 4096u
#define MAPNR 100u   /* frames 63, 64, 65 straddle a bitmap word; 120 lies past the end */

static const char VMCI[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\n"
                           "NUMBER(phys_base)=0\nNUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=0\n";

struct buf {
    unsigned char *p;
    size_t len;
};

static void put(struct buf *b, size_t off, const void *src, size_t n)
{
    if (off + n > b->len) {
        b->p = realloc(b->p, off + n);
        memset(b->p + b->len, 0, off + n - b->len);
        b->len = off + n;
    }
    memcpy(b->p + off, src, n);
}

static void put32(struct buf *b, size_t off, uint32_t v) { put(b, off, &v, 4); }
static void put64(struct buf *b, size_t off, uint64_t v) { put(b, off, &v, 8); }

/* The page frames the dump holds and how each is stored: 'z' zlib, 'l' LZO, 's' snappy, 'r' raw, '0' QEMU's
 * shared zero page. A frame's bytes are (pfn * 7 + i) & 0xff, so each page is its own. */
static const struct { uint64_t pfn; char how; } PAGES[] = {
    {1, 'z'}, {2, 'r'}, {3, 'l'}, {9, 's'}, {10, '0'}, {11, '0'}, {63, 'z'}, {64, 'r'}, {65, 'z'}, {39, 'l'}, {120, 'z'},
};
#define NPAGES (sizeof PAGES / sizeof *PAGES)

static void fill(uint64_t pfn, unsigned char *page)
{
    for (unsigned i = 0; i < BS; i++)
        page[i] = (unsigned char)(pfn * 7 + i);
}

static size_t compress_page(char how, const unsigned char *page, unsigned char *out, uint32_t *flags)
{
    if (how == 'z') {
        uLongf n = compressBound(BS);
        CHECK(compress2(out, &n, page, BS, 6) == Z_OK);
        *flags = 1;
        return n;
    }
    if (how == 'l') {
        static unsigned char wrk[LZO1X_1_MEM_COMPRESS];
        lzo_uint n = 0;
        CHECK(lzo_init() == LZO_E_OK && lzo1x_1_compress(page, BS, out, &n, wrk) == LZO_E_OK);
        *flags = 2;
        return n;
    }
    if (how == 's') {
        size_t n = snappy_max_compressed_length(BS);
        CHECK(snappy_compress((const char *)page, BS, (char *)out, &n) == SNAPPY_OK);
        *flags = 4;
        return n;
    }
    memcpy(out, page, BS);
    *flags = 0;
    return BS;
}

/* A plain kdump file with PAGES (in PFN order, as the bitmap says), the VMCOREINFO and one NT_PRSTATUS. */
static struct buf kdump(const char *machine, uint64_t rip)
{
    struct buf b = {0};
    put(&b, 0, "KDUMP   ", 8);
    put32(&b, 8, 6);
    put(&b, 12 + 65 * 4, machine, strlen(machine));
    uint32_t h[10] = {0, BS, 1, 2, MAPNR, 0, 0, 0, 0, 1};   /* status, block_size, sub_hdr_size, bitmap_blocks, ... */
    put(&b, 424, h, sizeof h);
    /* bitmaps at block 2 (first) and 3 (second), descriptors at block 4 */
    unsigned char bitmap[BS] = {0};
    uint64_t pfns[NPAGES];
    size_t n = 0;
    for (uint64_t pfn = 0; pfn < 128; pfn++)
        for (size_t i = 0; i < NPAGES; i++)
            if (PAGES[i].pfn == pfn && pfn < MAPNR) {
                bitmap[pfn / 8] |= (unsigned char)(1u << (pfn % 8));
                pfns[n++] = i;
            }
    put(&b, 2 * BS, bitmap, BS);
    put(&b, 3 * BS, bitmap, BS);
    size_t desc = 4 * BS, data = desc + n * 24 + BS, zero_at = 0;
    unsigned char page[BS], out[2 * BS];
    for (size_t k = 0; k < n; k++) {
        char how = PAGES[pfns[k]].how;
        uint32_t flags;
        size_t len;
        uint64_t at;
        if (how == '0' && zero_at) {
            at = zero_at, len = BS, flags = 0;
        } else {
            if (how == '0')
                memset(page, 0, BS);
            else
                fill(PAGES[pfns[k]].pfn, page);
            len = compress_page(how == '0' ? 'r' : how, page, out, &flags);
            at = data;
            put(&b, data, out, len);
            data += len;
            if (how == '0')
                zero_at = at;
        }
        put64(&b, desc + k * 24, at);
        put32(&b, desc + k * 24 + 8, (uint32_t)len);
        put32(&b, desc + k * 24 + 12, flags);
    }
    /* VMCOREINFO's text, then the notes: one NT_PRSTATUS with pr_reg.rip (index 16) set */
    size_t vm = data, vlen = strlen(VMCI);
    put(&b, vm, VMCI, vlen);
    size_t note = vm + vlen, descsz = 112 + 27 * 8 + 8;
    uint32_t nh[3] = {5, (uint32_t)descsz, NT_PRSTATUS};
    put(&b, note, nh, 12);
    put(&b, note + 12, "CORE\0\0\0", 8);
    unsigned char d[112 + 27 * 8 + 8] = {0};
    memcpy(d + 112 + 16 * 8, &rip, 8);
    put(&b, note + 20, d, descsz);
    size_t note_len = 20 + descsz;
    /* sub-header: phys_base, dump_level, split, start/end pfn, vmcoreinfo, notes, eraseinfo, 64-bit pfns */
    put64(&b, BS + 32, vm);
    put64(&b, BS + 40, vlen);
    put64(&b, BS + 48, note);
    put64(&b, BS + 56, note_len);
    put64(&b, BS + 96, MAPNR);
    return b;
}

/* The same file as a flattened stream: records of uneven sizes, written in a scrambled order. */
static struct buf flatten(const struct buf *in)
{
    struct buf f = {0};
    unsigned char hdr[4096] = "makedumpfile";
    hdr[16 + 7] = 1, hdr[24 + 7] = 1;   /* be64 type 1, version 1 */
    put(&f, 0, hdr, sizeof hdr);
    size_t cuts[64], ncut = 0;
    for (size_t off = 0; off < in->len; off += 777 + (off % 3) * 1000)
        cuts[ncut++] = off;
    for (size_t k = 0; k < ncut; k++) {
        size_t i = (k * 7) % ncut;   /* 7 is prime to ncut below 64 unless 7 divides it */
        if (ncut % 7 == 0)
            i = ncut - 1 - k;
        size_t off = cuts[i], end = i + 1 < ncut ? cuts[i + 1] : in->len;
        unsigned char r[16];
        for (int j = 0; j < 8; j++)
            r[j] = (unsigned char)((uint64_t)off >> (56 - 8 * j)), r[8 + j] = (unsigned char)((uint64_t)(end - off) >> (56 - 8 * j));
        put(&f, f.len, r, 16);
        put(&f, f.len, in->p + off, end - off);
    }
    unsigned char e[16];
    memset(e, 0xff, 16);
    put(&f, f.len, e, 16);
    return f;
}

static void check_reads(struct klab_physmem *m, const struct klab_elfcore_info *info)
{
    CHECK_EQ_U64(info->arch, KLAB_ARCH_X86_64);
    CHECK_EQ_U64(info->ncpus, 1);
    CHECK(info->vmcoreinfo && strstr(info->vmcoreinfo, "OSRELEASE=6.1.0-test\n") == info->vmcoreinfo);
    unsigned char page[BS], want[BS];
    for (size_t i = 0; i < NPAGES; i++) {
        uint64_t pfn = PAGES[i].pfn;
        int rc = klab_physmem_read(m, pfn * BS, page, BS);
        if (pfn >= MAPNR) {
            CHECK_EQ_U64(rc, (uint64_t)-1);   /* past max_mapnr: not in the dump */
            continue;
        }
        CHECK_EQ_U64(rc, 0);
        if (PAGES[i].how == '0')
            memset(want, 0, BS);
        else
            fill(pfn, want);
        CHECK(memcmp(page, want, BS) == 0);
    }
    /* across a page boundary: the end of PFN 1 (zlib) and the start of PFN 2 (raw) */
    unsigned char two[16];
    CHECK_EQ_U64(klab_physmem_read(m, 2 * BS - 8, two, 16), 0);
    CHECK_EQ_U64(two[7], (unsigned char)(1 * 7 + BS - 1));
    CHECK_EQ_U64(two[8], (unsigned char)(2 * 7));
    CHECK_EQ_U64(klab_physmem_read(m, 4 * BS, two, 8), (uint64_t)-1);       /* PFN 4: left out */
    CHECK_EQ_U64(klab_physmem_read(m, 3 * BS + BS - 4, two, 8), (uint64_t)-1);   /* runs into PFN 4 */
    CHECK_EQ_U64(klab_physmem_read(m, 0, two, 8), (uint64_t)-1);
    uint64_t rip = 0;
    struct klab_error e;
    CHECK_EQ_U64(klab_elfcore_register(m, 0, "rip", &rip, &e), 0);
    CHECK_EQ_U64(rip, 0xffffffff81abcdefull);
    /* the kernel's registers from this dump's VMCOREINFO, as for an ELF one */
    struct klab_mmu_regs regs;
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(info->vmcoreinfo, info->vmcoreinfo_len, info->arch, &regs, &e), 0);
    CHECK_EQ_U64(regs.cr3, 0x2a10000);
}

static void test_plain_and_flattened(void)
{
    struct buf b = kdump("x86_64", 0xffffffff81abcdefull), f = flatten(&b);
    char err[256];
    struct klab_elfcore_info info;
    struct klab_physmem *m = klab_dump_from_buffer(b.p, b.len, &info, err, sizeof err);
    CHECK(m != NULL);
    if (m)
        check_reads(m, &info);
    klab_physmem_close(m);
    m = klab_dump_from_buffer(f.p, f.len, &info, err, sizeof err);
    CHECK(m != NULL);
    if (m)
        check_reads(m, &info);
    klab_physmem_close(m);
    /* the file on disk goes through klab_physmem_open_elfcore the same way */
    char path[] = "/tmp/klab-test-kdump-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, f.p, f.len) == (ssize_t)f.len);
    close(fd);
    struct klab_error e;
    m = klab_physmem_open_elfcore(path, &info, &e);
    CHECK(m != NULL);
    if (m)
        check_reads(m, &info);
    klab_physmem_close(m);
    unlink(path);
    free(b.p), free(f.p);
}

static void test_refusals(void)
{
    struct buf b = kdump("x86_64", 1), f = flatten(&b);
    char err[256];
    struct klab_elfcore_info info;
    struct klab_physmem *m;
    /* every truncation of either form is refused or, when only page data is cut, reads fail cleanly */
    for (size_t len = 0; len < f.len; len += 31) {
        m = klab_dump_from_buffer(f.p, len, &info, err, sizeof err);
        CHECK(m == NULL);
        klab_physmem_close(m);
        CHECK(strstr(err, "truncated") != NULL || strstr(err, "not a") != NULL || strstr(err, "flattened") != NULL);
    }
    /* the plain file: cut anywhere before the end of its 10 descriptors (every PFN but 120) */
    for (size_t len = 0; len < 4 * BS + 10 * 24; len += 7) {
        m = klab_dump_from_buffer(b.p, len, &info, err, sizeof err);
        CHECK(m == NULL);
        klab_physmem_close(m);
    }
    m = klab_dump_from_buffer(b.p, b.len - 4000, &info, err, sizeof err);   /* the last pages cut: opens, reads fail */
    unsigned char page[BS];
    CHECK(m != NULL);
    if (m)
        CHECK_EQ_U64(klab_physmem_read(m, 65 * BS, page, BS), (uint64_t)-1);
    klab_physmem_close(m);
    /* QEMU's arm64 kdump says "Unknown" (ELF_MACHINE_UNAME is x86's only): the VMCOREINFO tells, here x86 */
    struct buf unknown = kdump("Unknown", 1);
    m = klab_dump_from_buffer(unknown.p, unknown.len, &info, err, sizeof err);
    CHECK(m != NULL && info.arch == KLAB_ARCH_X86_64);
    klab_physmem_close(m);
    free(unknown.p);
    struct buf other = kdump("s390x", 1);
    CHECK(klab_dump_from_buffer(other.p, other.len, &info, err, sizeof err) == NULL);
    CHECK(strstr(err, "s390x") != NULL);
    /* a descriptor whose data lies past the end, and one whose zlib stream is damaged */
    put64(&other, 4 * BS, (uint64_t)1 << 40);
    memcpy(other.p + 12 + 65 * 4, "x86_64\0", 7);
    m = klab_dump_from_buffer(other.p, other.len, &info, err, sizeof err);
    CHECK(m != NULL);
    if (m)
        CHECK_EQ_U64(klab_physmem_read(m, 1 * BS, page, 8), (uint64_t)-1);
    klab_physmem_close(m);
    uint64_t at;
    memcpy(&at, b.p + 4 * BS, 8);
    b.p[at + 2] ^= 0xff;
    m = klab_dump_from_buffer(b.p, b.len, &info, err, sizeof err);
    CHECK(m != NULL);
    if (m)
        CHECK_EQ_U64(klab_physmem_read(m, 1 * BS, page, 8), (uint64_t)-1);
    klab_physmem_close(m);
    /* overlapping records in a flattened stream */
    unsigned char *dup = malloc(f.len + 16 + 100);
    memcpy(dup, f.p, 4096);
    size_t n = 4096;
    memcpy(dup + n, f.p + 4096, f.len - 4096 - 16);
    n += f.len - 4096 - 16;
    unsigned char r[16] = {0};
    r[15] = 84;   /* offset 0, 84 bytes: over the first record */
    memcpy(dup + n, r, 16), n += 16;
    memset(dup + n, 0, 84), n += 84;
    memset(dup + n, 0xff, 16), n += 16;
    CHECK(klab_dump_from_buffer(dup, n, &info, err, sizeof err) == NULL);
    CHECK(strstr(err, "overlapping") != NULL);
    free(dup), free(b.p), free(f.p), free(other.p);
}

int main(void)
{
    RUN(test_plain_and_flattened);
    RUN(test_refusals);
    return CHECK_DONE();
}
