/* Range iteration: walks whole page tables depth first in VA order and merges leaves into ranges, the way
 * Linux's ptdump (mm/ptdump.c, arch/x86/mm/dump_pagetables.c) presents them. Architecture rules come from the
 * regime and step functions of mmu_arm64.c / mmu_x86_64.c; this file only traverses.
 *
 * Each level keeps the table it is walking in its own buffer, read whole in one request (as drgn's
 * page-table iterator caches the table in use per level), so a full dump reads every table exactly once
 * — one RSP round trip per 2 KiB from a gdb stub, one memcpy from the RAM file. */
#include "mmu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct level_cache {
    uint64_t *entries;
    size_t cap;           /* entries allocated */
    uint64_t table_pa;
    bool valid;
};

struct range_walk {
    const struct klab_regime *rg;
    struct klab_physmem *mem;
    const struct klab_range_opts *opts;
    uint64_t span_lo, span_hi, max_entries;
    klab_range_fn fn;
    void *ctx;
    struct klab_range_stats *stats;
    struct level_cache cache[KLAB_MAX_LEVELS];
    struct klab_range pending;
    bool have_pending;
    uint64_t pending_key;
    int rc;               /* non-zero: stop (callback value or -1) */
    char *err;
    size_t errlen;
};

static bool same_perms(const struct klab_perms *a, const struct klab_perms *b)
{
    return a->kernel_read == b->kernel_read && a->kernel_write == b->kernel_write &&
           a->kernel_exec == b->kernel_exec && a->user_read == b->user_read && a->user_write == b->user_write &&
           a->user_exec == b->user_exec;
}

static void emit(struct range_walk *w, const struct klab_range *r)
{
    if (w->rc)
        return;
    w->stats->ranges++;
    w->rc = w->fn(w->ctx, r);
}

static void flush(struct range_walk *w)
{
    if (w->have_pending) {
        w->have_pending = false;
        emit(w, &w->pending);
    }
}

static bool leaf_wanted(const struct klab_range_opts *o, const struct klab_perms *p, uint64_t page_size)
{
    if (o->page_size && o->page_size != page_size)
        return false;
    if ((o->filters & KLAB_FILTER_WRITABLE) && !p->kernel_write)
        return false;
    if ((o->filters & KLAB_FILTER_EXEC) && !p->kernel_exec && !p->user_exec)
        return false;
    if ((o->filters & KLAB_FILTER_USER) && !p->user_read)
        return false;
    if ((o->filters & KLAB_FILTER_KERNEL) && p->user_read)
        return false;
    return true;
}

static void leaf(struct range_walk *w, int li, uint64_t va, uint64_t raw, const struct klab_step *st)
{
    const uint64_t size = 1ull << w->rg->level[li].shift;
    w->stats->leaves++;
    if (!leaf_wanted(w->opts, &st->perms, size)) {
        flush(w);
        return;
    }
    /* Clip a leaf that straddles the requested span. */
    uint64_t lo = va < w->span_lo ? w->span_lo : va;
    uint64_t hi = va + (size - 1) > w->span_hi ? w->span_hi : va + (size - 1);
    uint64_t pa = st->out_pa + (lo - va);
    struct klab_range *p = &w->pending;
    if (w->have_pending && !(w->opts->filters & KLAB_FILTER_NO_MERGE) && p->va_end == lo &&
        p->pa_start + (p->va_end - p->va_start) == pa && p->page_size == size && w->pending_key == st->attr_key &&
        same_perms(&p->perms, &st->perms) && !strcmp(p->root_name, w->rg->root_name)) {
        p->va_end = hi + 1;
        p->leaves++;
        return;
    }
    flush(w);
    memset(p, 0, sizeof *p);
    p->kind = KLAB_RANGE_MAPPED;
    snprintf(p->root_name, sizeof p->root_name, "%s", w->rg->root_name);
    p->va_start = lo;
    p->va_end = hi + 1;   /* wraps to 0 only for a leaf ending at 2^64, which the caller sees as "to the top" */
    p->pa_start = pa;
    p->page_size = size;
    p->leaves = 1;
    snprintf(p->level_name, sizeof p->level_name, "%s", w->rg->level[li].name);
    p->hw_level = w->rg->level[li].hw_level;
    p->granule_shift = w->rg->granule_shift;
    p->perms = st->perms;
    p->first_raw = raw;
    struct klab_level l = { 0 };
    w->rg->describe(w->rg, li, raw, &l);
    snprintf(p->attrs, sizeof p->attrs, "%s", l.bits);
    w->pending_key = st->attr_key;
    w->have_pending = true;
}

static void bad(struct range_walk *w, int li, uint64_t va, uint64_t span, uint64_t raw, const char *why)
{
    flush(w);
    struct klab_range r = { .kind = KLAB_RANGE_BAD, .va_start = va, .va_end = va + span, .first_raw = raw,
                            .hw_level = w->rg->level[li].hw_level, .granule_shift = w->rg->granule_shift };
    snprintf(r.root_name, sizeof r.root_name, "%s", w->rg->root_name);
    snprintf(r.level_name, sizeof r.level_name, "%s", w->rg->level[li].name);
    snprintf(r.attrs, sizeof r.attrs, "%s", why);
    w->stats->bad++;
    emit(w, &r);
}

/* A non-present entry that still holds something (a swap or migration entry, PROT_NONE, ...). */
static void non_present(struct range_walk *w, int li, uint64_t va, uint64_t span, uint64_t raw)
{
    struct klab_range r = { .kind = KLAB_RANGE_NON_PRESENT, .va_start = va, .va_end = va + span, .first_raw = raw,
                            .page_size = span, .leaves = 1, .hw_level = w->rg->level[li].hw_level,
                            .granule_shift = w->rg->granule_shift };
    snprintf(r.root_name, sizeof r.root_name, "%s", w->rg->root_name);
    snprintf(r.level_name, sizeof r.level_name, "%s", w->rg->level[li].name);
    emit(w, &r);
}

/* Reads the table at table_pa for level li into its cache, unless that table is already there. */
static const uint64_t *load_table(struct range_walk *w, int li, uint64_t table_pa, size_t n)
{
    struct level_cache *c = &w->cache[li];
    if (c->valid && c->table_pa == table_pa)
        return c->entries;
    if (c->cap < n) {
        uint64_t *e = realloc(c->entries, n * sizeof *e);
        if (!e)
            return NULL;
        c->entries = e;
        c->cap = n;
    }
    c->valid = false;
    if (klab_physmem_read(w->mem, table_pa, c->entries, n * sizeof *c->entries) != 0)
        return NULL;
    /* Keyed by PA: a table that several entries point at in a row (a shared zero table) is read once. */
    c->table_pa = table_pa;
    c->valid = true;
    w->stats->tables_read++;
    w->stats->bytes_read += n * sizeof *c->entries;
    return c->entries;
}

static uint64_t entry_va(const struct klab_regime *rg, int li, uint64_t base, uint64_t idx)
{
    uint64_t va = base | (idx << rg->level[li].shift);
    /* One root for both halves (va_lo > va_hi: x86_64's): indices in the upper half of the top table are
     * sign-extended. */
    if (li == 0 && rg->va_lo > rg->va_hi && (va >> (rg->va_bits - 1)) & 1)
        va |= ~0ull << rg->va_bits;
    return va;
}

static void walk_table(struct range_walk *w, int li, uint64_t table_pa, uint64_t base,
                       const struct klab_inherit *limits)
{
    const struct klab_regime_level *lv = &w->rg->level[li];
    const size_t n = (size_t)1 << lv->index_bits;
    const uint64_t span = 1ull << lv->shift;
    const uint64_t *t = load_table(w, li, table_pa, n);
    if (!t) {
        char why[96];
        snprintf(why, sizeof why, "%s table at PA 0x%llx is outside RAM", lv->name, (unsigned long long)table_pa);
        /* The whole span this table would translate; at the root that is the regime's span. */
        uint64_t first = entry_va(w->rg, li, base, 0);
        bad(w, li, li == 0 ? w->rg->va_lo : first, li == 0 ? w->rg->va_hi - w->rg->va_lo + 1 : n * span, 0, why);
        return;
    }
    for (size_t idx = 0; idx < n && !w->rc; idx++) {
        const uint64_t va = entry_va(w->rg, li, base, idx);
        const uint64_t last = va + (span - 1);
        if (last < w->span_lo || va > w->span_hi)
            continue;
        if (++w->stats->entries > w->max_entries) {
            flush(w);
            snprintf(w->err, w->errlen, "stopped after %llu entries: the page tables look corrupt or cyclic",
                     (unsigned long long)w->max_entries);
            w->rc = -1;
            return;
        }
        const uint64_t raw = t[idx];
        struct klab_step st = { 0 };
        w->rg->step(w->rg, li, raw, limits, &st);
        switch (st.kind) {
        case KLAB_ENTRY_INVALID:
            if (raw && (w->opts->filters & KLAB_FILTER_NON_PRESENT))
                non_present(w, li, va, span, raw);
            break;
        case KLAB_ENTRY_TABLE:
            if (li + 1 >= w->rg->nlevels) {
                bad(w, li, va, span, raw, "table descriptor at the last level");
                break;
            }
            walk_table(w, li + 1, st.out_pa, va, &st.child);   /* uses the next level's buffer; t stays */
            break;
        case KLAB_ENTRY_BLOCK:
        case KLAB_ENTRY_PAGE:
            if (!(w->opts->filters & KLAB_FILTER_NON_PRESENT))
                leaf(w, li, va, raw, &st);
            break;
        case KLAB_ENTRY_RESERVED:
            bad(w, li, va, span, raw, st.reserved_why);
            break;
        }
    }
}

int klab_walk_ranges(const struct klab_mmu_regs *regs, struct klab_physmem *mem, const struct klab_range_opts *opts,
                     klab_range_fn fn, void *ctx, struct klab_range_stats *stats, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_range_stats local;
    struct klab_range_opts defaults = { 0 };
    if (!stats)
        stats = &local;
    if (!opts)
        opts = &defaults;
    memset(stats, 0, sizeof *stats);
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    if (!a) {
        snprintf(err, errlen, "unknown architecture %d", (int)regs->arch);
        return -1;
    }
    if (regs->translation_off) {
        snprintf(err, errlen, "translation is off (%s): there are no page tables in use", a->off_text);
        return -1;
    }
    struct klab_regime regimes[2];
    int nregimes = 0;
    char why[160] = "";
    /* x86_64 has one root; arm64 two (TTBR0, then TTBR1), either of which may be disabled. */
    for (int upper = 0; upper < a->nroots; upper++)
        if (klab_regime(regs, upper, &regimes[nregimes], why, sizeof why) == KLAB_WALK_OK)
            nregimes++;
    if (nregimes == 0) {
        snprintf(err, errlen, "no usable translation root: %s", why);
        return -1;
    }
    struct range_walk w = {
        .mem = mem, .opts = opts, .fn = fn, .ctx = ctx, .stats = stats, .err = err, .errlen = errlen,
        .span_lo = opts->va_start, .span_hi = (opts->va_start || opts->va_end) ? opts->va_end : ~0ull,
        .max_entries = opts->max_entries ? opts->max_entries : 1ull << 26,
    };
    /* Index order is VA order: x86's top-level indices 0..255 are the lower half, 256..511 the sign-extended
     * upper half; arm64 walks TTBR0 before TTBR1. */
    for (int i = 0; i < nregimes && !w.rc; i++) {
        w.rg = &regimes[i];
        for (int l = 0; l < KLAB_MAX_LEVELS; l++)
            w.cache[l].valid = false;
        struct klab_inherit none = { 0 };
        /* A root of one half starts at its lowest VA; the one root of both halves at 0. */
        uint64_t base = regimes[i].va_lo <= regimes[i].va_hi ? regimes[i].va_lo : 0;
        walk_table(&w, 0, regimes[i].root_pa, base, &none);
        flush(&w);
    }
    for (int l = 0; l < KLAB_MAX_LEVELS; l++)
        free(w.cache[l].entries);
    return w.rc;
}
