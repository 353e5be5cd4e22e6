/* Memory search through the page tables, as crash's `search` does it: every mapped leaf of the span, in VA
 * order (range.c), read from physical memory and scanned for an aligned value. Only RAM is read: a leaf that
 * maps device memory (ioremap, MMIO BARs) is skipped, because reading a device register can change the
 * device, and a leaf outside the RAM the caller names is no part of an answer. Pure of I/O but for the
 * physical-memory source the caller passes. */
#include "error_internal.h"
#include "klab.h"
#include "physmem_internal.h"

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
    int rc;
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

/* A hit for each aligned word of [va, va + n) (n a multiple of the width), in order. */
static int hits_in(struct search *s, const unsigned char *p, uint64_t va, uint64_t pa, size_t n)
{
    unsigned w = s->o->width;
    for (size_t off = 0; off < n; off += w) {
        uint64_t v = 0;
        if (p)
            memcpy(&v, p + off, w);   /* little-endian guests: the low bytes come first */
        if (v == s->o->value) {
            s->st->hits++;
            int rc = s->fn(s->ctx, va + off, pa + off);
            if (rc || (s->o->max_hits && s->st->hits >= s->o->max_hits))
                return rc ? rc : 1;
        }
    }
    return 0;
}

/* One RAM run: holes of the RAM file are zeros that are never read (reading them would make the host allocate
 * them); data is scanned in place when the source is a mapped file, else through a bounce buffer. */
static int scan_ram(struct search *s, uint64_t va, uint64_t pa, size_t n)
{
    while (n) {
        bool hole;
        size_t ext = klab_physmem_extent(s->mem, pa, n, &hole);
        ext -= ext % s->o->width;
        if (!ext)
            ext = n;   /* a boundary inside a word (never with page-aligned holes): read it */
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
        va += ext, pa += ext, n -= ext;
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
        int rc = scan_ram(s, va, pa, n);
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
