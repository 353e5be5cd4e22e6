/* Memory search through the page tables, as crash's `search` does it: every mapped leaf of the span, in VA
 * order (range.c), read from physical memory and scanned for an aligned value. Only RAM is read: a leaf that
 * maps device memory (ioremap, MMIO BARs) is skipped, because reading a device register can change the
 * device, and a leaf outside the RAM the caller names is no part of an answer. Pure of I/O but for the
 * physical-memory source the caller passes. */
#include "error_internal.h"
#include "klab.h"
#include "physmem_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

struct search {
    const struct klab_search_opts *o;
    struct klab_physmem *mem;
    klab_hit_fn fn;
    void *ctx;
    struct klab_search_stats *st;
    unsigned char *buf;
    /* The last extent of the RAM file learned, [ext_lo, ext_hi) in guest PAs: one lseek pair answers for a
     * whole data or hole run rather than for each chunk, since SEEK_HOLE from inside a long data run walks
     * the file's page cache to the run's end, and asked per MiB that walk is quadratic in the run. */
    uint64_t ext_lo, ext_hi;
    bool ext_hole;
};

/* [pa, pa + len) clipped to the RAM region holding pa: the bytes that may be read from there on. */
static uint64_t ram_run(const struct klab_search_opts *o, uint64_t pa, uint64_t len)
{
    for (size_t i = 0; i < o->nram; i++) {
        const struct klab_ram_region *r = &o->ram[i];
        if (pa >= r->gpa && pa - r->gpa < r->size)
            return len < r->size - (pa - r->gpa) ? len : r->size - (pa - r->gpa);
    }
    return 0;
}

/* The next offset at or after off, below n, of an aligned word equal to value, else n. One loop per width,
 * with the width a constant, so that each load is one instruction rather than a memcpy call. Little-endian
 * guests: the low bytes come first. */
static size_t next_match(const unsigned char *p, size_t off, size_t n, unsigned w, uint64_t value)
{
    if (w == 8) {
        for (; off < n; off += 8) {
            uint64_t v;
            memcpy(&v, p + off, 8);
            if (v == value)
                return off;
        }
    } else {
        uint32_t want = (uint32_t)value;
        for (; off < n; off += 4) {
            uint32_t v;
            memcpy(&v, p + off, 4);
            if (v == want)
                return off;
        }
    }
    return n;
}

static int hit(struct search *s, uint64_t va, uint64_t pa)
{
    s->st->hits++;
    int rc = s->fn(s->ctx, va, pa);
    if (rc || (s->o->max_hits && s->st->hits >= s->o->max_hits))
        return rc ? rc : 1;
    return 0;
}

/* A hit for each aligned word of [va, va + n) (n a multiple of the width), in order; p NULL: all zeros. */
static int hits_in(struct search *s, const unsigned char *p, uint64_t va, uint64_t pa, size_t n)
{
    unsigned w = s->o->width;
    for (size_t off = 0; off < n; off += w) {
        if (p)
            off = next_match(p, off, n, w, s->o->value);
        else if (s->o->value)
            return 0;
        if (off >= n)
            break;
        int rc = hit(s, va + off, pa + off);
        if (rc)
            return rc;
    }
    return 0;
}

/* How many of the n bytes from pa are one extent of the RAM file, and whether it is a hole; run (>= n) is the
 * RAM that follows pa, so that the extent learned may cover later chunks too. */
static size_t extent_at(struct search *s, uint64_t pa, size_t n, uint64_t run)
{
    if (!(pa >= s->ext_lo && pa < s->ext_hi)) {
        bool hole;
        size_t want = run > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)run;
        size_t ext = klab_physmem_extent(s->mem, pa, want, &hole);
        s->ext_lo = pa, s->ext_hi = pa + (ext ? ext : 1), s->ext_hole = hole;
    }
    uint64_t left = s->ext_hi - pa;
    return left < n ? (size_t)left : n;
}

/* One RAM run: holes of the RAM file are zeros that are never read (reading them would make the host allocate
 * them); data is scanned in place when the source is a mapped file, else through a bounce buffer. */
static int scan_ram(struct search *s, uint64_t va, uint64_t pa, size_t n, uint64_t run)
{
    while (n) {
        size_t ext = extent_at(s, pa, n, run);
        bool hole = s->ext_hole;
        ext -= ext % s->o->width;
        if (!ext)
            ext = n, hole = false;   /* a boundary inside a word (never with page-aligned holes): read it */
        int rc = 0;
        if (hole) {
            s->st->zero_bytes += ext;
            rc = s->o->value == 0 ? hits_in(s, NULL, va, pa, ext) : 0;
        } else {
            const unsigned char *p = klab_physmem_view(s->mem, pa, ext);
            if (!p && klab_physmem_read(s->mem, pa, s->buf, ext) == 0)
                p = s->buf;
            if (!p)
                s->st->skipped_bytes += ext;
            else {
                s->st->bytes_read += ext;
                rc = hits_in(s, p, va, pa, ext);
            }
        }
        if (rc)
            return rc;
        va += ext, pa += ext, n -= ext, run -= ext;
    }
    return 0;
}

static int scan(struct search *s, uint64_t va, uint64_t pa, uint64_t len)
{
    unsigned w = s->o->width;
    while (len >= w) {
        uint64_t run = ram_run(s->o, pa, len);
        if (!run) {   /* not RAM: skip to the next page of the leaf */
            uint64_t step = 4096 - (pa & 4095);
            step = step < len ? step : len;
            s->st->skipped_bytes += step;
            va += step, pa += step, len -= step;
            continue;
        }
        size_t n = run < CHUNK ? (size_t)run : CHUNK;
        n -= n % w;
        if (!n)
            break;
        int rc = scan_ram(s, va, pa, n, run);
        if (rc)
            return rc;
        va += n, pa += n, len -= n;
    }
    return 0;
}

static int on_range(void *ctx, const struct klab_range *r)
{
    struct search *s = ctx;
    if (r->kind != KLAB_RANGE_MAPPED)
        return 0;
    uint64_t lo = r->va_start, hi = r->va_end;   /* [lo, hi) */
    if (s->o->va_start > lo)
        lo = s->o->va_start;
    if (s->o->va_end && s->o->va_end < hi - 1)
        hi = s->o->va_end + 1;
    lo = (lo + s->o->width - 1) / s->o->width * s->o->width;
    if (lo >= hi)
        return 0;
    s->st->mapped_bytes += hi - lo;
    return scan(s, lo, r->pa_start + (lo - r->va_start), hi - lo);
}

int klab_search(const struct klab_mmu_regs *regs, struct klab_physmem *mem, const struct klab_search_opts *o,
                klab_hit_fn fn, void *ctx, struct klab_search_stats *stats, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_search_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!regs || !mem || !o || !fn || (o->width != 4 && o->width != 8)) {
        if (err)
            snprintf(err, errlen, "bad search request (width must be 4 or 8)");
        return -1;
    }
    if (o->width == 4 && o->value >> 32) {
        if (err)
            snprintf(err, errlen, "value %#llx does not fit in 4 bytes", (unsigned long long)o->value);
        return -1;
    }
    if (o->va_end && o->va_end < o->va_start) {
        if (err)
            snprintf(err, errlen, "empty range %#llx-%#llx", (unsigned long long)o->va_start,
                     (unsigned long long)o->va_end);
        return -1;
    }
    struct search s = {.o = o, .mem = mem, .fn = fn, .ctx = ctx, .st = stats, .buf = malloc(CHUNK)};
    if (!s.buf) {
        if (err)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct klab_range_opts ro = {.va_start = o->va_start, .va_end = o->va_end, .filters = o->filters};
    int rc = klab_walk_ranges(regs, mem, &ro, on_range, &s, NULL, error);
    free(s.buf);
    return rc < 0 ? -1 : 0;
}
