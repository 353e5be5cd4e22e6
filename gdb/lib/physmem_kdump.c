/* kdump-compressed dumps as physical memory: makedumpfile's disk_dump format, as QEMU's dump-guest-memory
 * -z/-l/-s and makedumpfile -c/-l/-p write it, and its "flattened" stream (QEMU before 8.2 writes only that;
 * makedumpfile -F). The layout (makedumpfile's diskdump_mod.h; QEMU include/sysemu/dump.h and dump/dump.c
 * create_kdump_vmcore): block 0 the disk_dump_header, then sub_hdr_size blocks of kdump_sub_header (phys_base,
 * where the VMCOREINFO text and the ELF notes lie), then bitmap_blocks blocks of two bitmaps of equal size
 * (the second marks the page frames the file holds), then one 24-byte page_desc per set bit of it in PFN
 * order, then the pages, each zlib-, LZO- or snappy-compressed or raw. The flattened stream is the same file
 * cut into records {be64 offset, be64 size, bytes} after a 4096-byte header: klab indexes the records and
 * reads the file they describe without writing it out. Every offset and size is someone else's and is
 * checked; a page frame the file does not hold reads as an error ("not in the dump"). */
#define _GNU_SOURCE
#include "dumpfile_internal.h"

#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FLAT_HEADER_SIZE 4096           /* MAX_SIZE_MDF_HEADER */
#define HDR_SIZE 464                    /* sizeof(struct disk_dump_header) on 64-bit */
#define HDR_MACHINE (12 + 65 * 4)       /* utsname.machine */
#define HDR_BLOCK_SIZE 428
#define HDR_SUB_HDR_SIZE 432
#define HDR_BITMAP_BLOCKS 436
#define HDR_MAX_MAPNR 440
#define SUB_SIZE 104                    /* sizeof(struct kdump_sub_header) on 64-bit, header_version 6 */
#define DESC_SIZE 24                    /* struct page_desc: offset, size, flags, page_flags */
#define COMPRESSED_ZLIB 0x1
#define COMPRESSED_LZO 0x2
#define COMPRESSED_SNAPPY 0x4
#define CACHE_BYTES (4u << 20)        /* decompressed pages kept: a kernel's page tables fit (about 400 pages) */
#define MAX_NOTES (64u << 20)

/* A run of the file as written: bytes [off, off + size) of the dump are at map + pos. */
struct ext {
    uint64_t off, size, pos;
};

struct kdump {
    struct ext *ext;
    size_t next;
    uint32_t block_size;
    uint64_t max_mapnr, ndesc, desc_off;
    uint64_t *bitmap, *rank;            /* the second bitmap by 64-frame word; set bits before each word */
    size_t nwords;
    unsigned char *notes, *vmcoreinfo;  /* copies: in a flattened file they need not be contiguous */
    unsigned char *cbuf, *pages;        /* one compressed page; nslots decompressed ones */
    uint64_t *cached;                   /* pfn + 1 of each cache slot (direct-mapped by pfn), 0: empty */
    unsigned nslots;
};

static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Bytes [off, off + len) of the dump, across records: 0, or -1 when some byte is in no record. */
static int file_read(const struct dumpfile *c, uint64_t off, void *buf, size_t len)
{
    const struct kdump *k = c->kdump;
    unsigned char *out = buf;
    size_t lo = 0, hi = k->next;
    while (lo < hi) {   /* the last record starting at or before off */
        size_t mid = lo + (hi - lo) / 2;
        if (k->ext[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo ? lo - 1 : k->next; len && i < k->next; i++) {
        const struct ext *e = &k->ext[i];
        if (off < e->off || off - e->off >= e->size)
            return -1;
        uint64_t in = e->size - (off - e->off);
        size_t n = in < len ? (size_t)in : len;
        memcpy(out, c->map + e->pos + (off - e->off), n);
        out += n, off += n, len -= n;
    }
    return len ? -1 : 0;
}

static int by_off(const void *a, const void *b)
{
    const struct ext *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* The flattened stream's records, sorted by where they go; overlapping records are refused (makedumpfile -R
 * would let the later win: such a stream is not one QEMU or makedumpfile writes). */
static int index_flattened(struct dumpfile *c, char *err, size_t errlen)
{
    struct kdump *k = c->kdump;
    size_t cap = 0;
    uint64_t pos = FLAT_HEADER_SIZE;
    if (c->len < FLAT_HEADER_SIZE || get_be64(c->map + 16) != 1) {
        snprintf(err, errlen, "a flattened makedumpfile stream of unknown type (or truncated)");
        return -1;
    }
    for (;;) {
        if (c->len - pos < 16) {
            snprintf(err, errlen, "the flattened dump ends without its end record (truncated?)");
            return -1;
        }
        int64_t off = (int64_t)get_be64(c->map + pos), size = (int64_t)get_be64(c->map + pos + 8);
        if (off == -1 && size == -1)   /* END_FLAG_FLAT_HEADER */
            break;
        if (off < 0 || size <= 0 || (uint64_t)size > c->len - pos - 16 || (uint64_t)off + (uint64_t)size < (uint64_t)off) {
            snprintf(err, errlen, "a record of the flattened dump at offset %#llx is malformed or runs past the "
                     "end of the file (truncated?)", (unsigned long long)pos);
            return -1;
        }
        if (k->next == cap) {
            cap = cap ? 2 * cap : 1024;
            struct ext *e = realloc(k->ext, cap * sizeof *e);
            if (!e) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            k->ext = e;
        }
        k->ext[k->next++] = (struct ext){(uint64_t)off, (uint64_t)size, pos + 16};
        pos += 16 + (uint64_t)size;
    }
    qsort(k->ext, k->next, sizeof *k->ext, by_off);
    size_t n = 0;
    for (size_t i = 0; i < k->next; i++) {
        struct ext e = k->ext[i];
        struct ext *prev = n ? &k->ext[n - 1] : NULL;
        if (prev && e.off < prev->off + prev->size) {
            snprintf(err, errlen, "the flattened dump has overlapping records at offset %#llx",
                     (unsigned long long)e.off);
            return -1;
        }
        if (prev && e.off == prev->off + prev->size && e.pos == prev->pos + prev->size)
            prev->size += e.size;
        else
            k->ext[n++] = e;
    }
    k->next = n;
    return 0;
}

/* A copy of [off, off + size) of the dump (notes, VMCOREINFO), NUL-terminated; NULL when it is not there. */
static unsigned char *copy_region(const struct dumpfile *c, uint64_t off, uint64_t size)
{
    if (!size || size > MAX_NOTES || size > c->len)
        return NULL;
    unsigned char *p = malloc((size_t)size + 1);
    if (p && file_read(c, off, p, (size_t)size) != 0) {
        free(p);
        return NULL;
    }
    if (p)
        p[size] = 0;
    return p;
}

/* The second bitmap, and the count of set bits before each 64-frame word (a frame's descriptor index). */
static int load_bitmap(struct dumpfile *c, uint64_t bitmap_off, uint64_t half, char *err, size_t errlen)
{
    struct kdump *k = c->kdump;
    if (k->max_mapnr == 0 || k->max_mapnr / 8 > half || half > c->len) {
        snprintf(err, errlen, "the dump's bitmap (%#llx bytes) cannot describe its %#llx page frames",
                 (unsigned long long)half, (unsigned long long)k->max_mapnr);
        return -1;
    }
    k->nwords = (size_t)((k->max_mapnr + 63) / 64);
    k->bitmap = calloc(k->nwords, 8);
    k->rank = calloc(k->nwords, 8);
    unsigned char *bytes = malloc(k->nwords * 8);
    if (!k->bitmap || !k->rank || !bytes) {
        free(bytes);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nbytes = (size_t)((k->max_mapnr + 7) / 8);
    memset(bytes, 0, k->nwords * 8);
    if (file_read(c, bitmap_off + half, bytes, nbytes) != 0) {
        free(bytes);
        snprintf(err, errlen, "the dump's bitmap lies outside the file (truncated?)");
        return -1;
    }
    /* Bit (pfn & 7) of byte pfn / 8 (makedumpfile's is_dumpable), gathered into words whatever the host. */
    for (size_t w = 0; w < k->nwords; w++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = v << 8 | bytes[w * 8 + (size_t)b];
        if (w + 1 == k->nwords && k->max_mapnr % 64)
            v &= (1ull << (k->max_mapnr % 64)) - 1;
        k->bitmap[w] = v;
        k->rank[w] = k->ndesc;
        k->ndesc += (uint64_t)__builtin_popcountll(v);
    }
    free(bytes);
    return 0;
}

/* The architecture: the header's utsname.machine, which QEMU fills from ELF_MACHINE_UNAME, defined for x86
 * only (target/i386/cpu.h): an arm64 dump says "Unknown". Then the kernel's VMCOREINFO says it
 * (arch/arm64/kernel/vmcore_info.c exports kimage_voffset; arch/x86/kernel/vmcore_info_64.c
 * pgtable_l5_enabled), else the size of an NT_PRSTATUS (struct elf_prstatus: 336 bytes on x86_64, 392 on
 * arm64). */
static int dump_machine(struct dumpfile *c, const unsigned char *h, char *err, size_t errlen)
{
    char machine[66] = {0};
    memcpy(machine, h + HDR_MACHINE, 65);
    const char *vi = c->info.vmcoreinfo;
    size_t vlen = c->info.vmcoreinfo_len;
    uint64_t prsize = c->info.ncpus ? c->prstatus[0].size : 0;
    if (!strcmp(machine, "x86_64"))
        c->info.arch = KLAB_ARCH_X86_64;
    else if (!strcmp(machine, "aarch64"))
        c->info.arch = KLAB_ARCH_ARM64;
    else if (strcmp(machine, "Unknown") && machine[0]) {
        snprintf(err, errlen, "a kdump of machine '%.20s', neither x86_64 nor aarch64", machine);
        return -1;
    } else if (vi && memmem(vi, vlen, "NUMBER(kimage_voffset)=", 23))
        c->info.arch = KLAB_ARCH_ARM64;
    else if (vi && memmem(vi, vlen, "NUMBER(pgtable_l5_enabled)=", 27))
        c->info.arch = KLAB_ARCH_X86_64;
    else if (prsize == 392)
        c->info.arch = KLAB_ARCH_ARM64;
    else if (prsize == 336)
        c->info.arch = KLAB_ARCH_X86_64;
    else {
        snprintf(err, errlen, "a kdump that does not say its machine ('%.20s'), with no VMCOREINFO or CPU note "
                 "that tells", machine);
        return -1;
    }
    return 0;
}

static int parse_headers(struct dumpfile *c, char *err, size_t errlen)
{
    struct kdump *k = c->kdump;
    unsigned char h[HDR_SIZE], sub[SUB_SIZE] = {0};
    if (file_read(c, 0, h, sizeof h) != 0 || memcmp(h, "KDUMP   ", 8)) {
        snprintf(err, errlen, "not a kdump-compressed dump (no KDUMP header; truncated?)");
        return -1;
    }
    uint32_t version = get32(h + 8);
    k->block_size = get32(h + HDR_BLOCK_SIZE);
    uint32_t sub_blocks = get32(h + HDR_SUB_HDR_SIZE), bitmap_blocks = get32(h + HDR_BITMAP_BLOCKS);
    if (k->block_size < 4096 || k->block_size > 65536 || (k->block_size & (k->block_size - 1)) || version < 1 ||
        bitmap_blocks < 2 || bitmap_blocks % 2) {
        snprintf(err, errlen, "a kdump header with block size %u, header version %u, %u bitmap blocks: not one "
                 "klab can read", k->block_size, version, bitmap_blocks);
        return -1;
    }
    uint64_t bs = k->block_size;
    if (sub_blocks && file_read(c, bs, sub, sizeof sub) != 0) {
        snprintf(err, errlen, "the dump's sub-header lies outside the file (truncated?)");
        return -1;
    }
    k->max_mapnr = version >= 6 ? get64(sub + 96) : get32(h + HDR_MAX_MAPNR);
    uint64_t bitmap_off = (1 + (uint64_t)sub_blocks) * bs;
    if (load_bitmap(c, bitmap_off, (uint64_t)bitmap_blocks * bs / 2, err, errlen) != 0)
        return -1;
    k->desc_off = bitmap_off + (uint64_t)bitmap_blocks * bs;
    unsigned char last[DESC_SIZE];
    if (k->ndesc && file_read(c, k->desc_off + (k->ndesc - 1) * DESC_SIZE, last, sizeof last) != 0) {
        snprintf(err, errlen, "the dump's %llu page descriptors run past the end of the file (truncated?)",
                 (unsigned long long)k->ndesc);
        return -1;
    }
    /* header_version 3: VMCOREINFO's text; 4: the ELF notes (NT_PRSTATUS per CPU, QEMU's CPU state) */
    if (version >= 4 && (k->notes = copy_region(c, get64(sub + 48), get64(sub + 56))))
        dump_read_notes(c, k->notes, get64(sub + 56));
    if (version >= 3 && (k->vmcoreinfo = copy_region(c, get64(sub + 32), get64(sub + 40)))) {
        c->info.vmcoreinfo = (const char *)k->vmcoreinfo;
        c->info.vmcoreinfo_len = (size_t)get64(sub + 40);
    }
    c->info.ram_bytes = k->ndesc * bs;
    return dump_machine(c, h, err, errlen);
}

int kdump_parse(struct dumpfile *c, char *err, size_t errlen)
{
    struct kdump *k = c->kdump = calloc(1, sizeof *c->kdump);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->len >= 12 && !memcmp(c->map, "makedumpfile", 12)) {
        if (index_flattened(c, err, errlen) != 0)
            return -1;
    } else {
        k->ext = malloc(sizeof *k->ext);
        if (!k->ext) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        k->ext[0] = (struct ext){0, c->len, 0};
        k->next = 1;
    }
    if (parse_headers(c, err, errlen) != 0)
        return -1;
    k->nslots = CACHE_BYTES / k->block_size;
    k->cbuf = malloc(k->block_size);
    k->pages = malloc((size_t)k->block_size * k->nslots);
    k->cached = calloc(k->nslots, sizeof *k->cached);
    if (!k->cbuf || !k->pages || !k->cached) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* One page's bytes out of its descriptor: decompressed, and exactly a block long, else refused. */
static int inflate_page(const struct kdump *k, uint32_t flags, const unsigned char *in, size_t n, unsigned char *out)
{
    size_t bs = k->block_size;
    if (flags & COMPRESSED_ZLIB) {
        uLongf dl = bs;
        return uncompress(out, &dl, in, n) == Z_OK && dl == bs ? 0 : -1;
    }
    if (flags & COMPRESSED_LZO) {
        lzo_uint dl = bs;
        return lzo1x_decompress_safe(in, n, out, &dl, NULL) == LZO_E_OK && dl == bs ? 0 : -1;
    }
    if (flags & COMPRESSED_SNAPPY) {
        size_t dl;
        if (snappy_uncompressed_length((const char *)in, n, &dl) != SNAPPY_OK || dl != bs)
            return -1;
        return snappy_uncompress((const char *)in, n, (char *)out, &dl) == SNAPPY_OK && dl == bs ? 0 : -1;
    }
    if (flags || n != bs)
        return -1;
    memcpy(out, in, bs);
    return 0;
}

/* The page frame's bytes (in the cache), or NULL when the dump does not hold it or holds it damaged. */
static const unsigned char *page_of(struct dumpfile *c, uint64_t pfn)
{
    struct kdump *k = c->kdump;
    unsigned slot = (unsigned)(pfn % k->nslots);
    unsigned char *page = k->pages + (size_t)slot * k->block_size;
    if (k->cached[slot] == pfn + 1)
        return page;
    if (pfn >= k->max_mapnr)
        return NULL;
    uint64_t word = k->bitmap[pfn / 64], bit = pfn % 64;
    if (!(word >> bit & 1))
        return NULL;
    uint64_t idx = k->rank[pfn / 64] + (uint64_t)__builtin_popcountll(word & ((1ull << bit) - 1));
    unsigned char d[DESC_SIZE];
    if (file_read(c, k->desc_off + idx * DESC_SIZE, d, sizeof d) != 0)
        return NULL;
    uint64_t off = get64(d);
    uint32_t size = get32(d + 8), flags = get32(d + 12);
    if (size == 0 || size > k->block_size || file_read(c, off, k->cbuf, size) != 0)
        return NULL;
    k->cached[slot] = 0;
    if (inflate_page(k, flags, k->cbuf, size, page) != 0)
        return NULL;
    k->cached[slot] = pfn + 1;
    return page;
}

int kdump_read(struct dumpfile *c, uint64_t pa, void *buf, size_t len)
{
    uint64_t bs = c->kdump->block_size;
    unsigned char *out = buf;
    while (len) {
        const unsigned char *page = page_of(c, pa / bs);
        if (!page)
            return -1;   /* not RAM, left out of the dump (makedumpfile -d), or damaged */
        uint64_t in = bs - pa % bs;
        size_t n = in < len ? (size_t)in : len;
        memcpy(out, page + pa % bs, n);
        out += n, pa += n, len -= n;
    }
    return 0;
}

void kdump_free(struct dumpfile *c)
{
    struct kdump *k = c->kdump;
    if (!k)
        return;
    free(k->ext), free(k->bitmap), free(k->rank), free(k->notes), free(k->vmcoreinfo), free(k->cbuf), free(k->pages), free(k->cached);
    free(k);
    c->kdump = NULL;
}
