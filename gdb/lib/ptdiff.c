/* What changed between two page-table snapshots, as VA ranges.
 *
 * Both snapshots are lists of merged ranges in VA order. One sweep cuts the address space at every range
 * boundary of either side; each piece is then mapped on one side only, or on both, where its physical
 * address, leaf size, rights and attribute names are compared at the piece's start (a piece lies inside one
 * range of each side, so what holds at its start holds all along). Neighbouring pieces that changed the same
 * way are joined, so a fork's write-protection of a VMA is one line however scattered its pages are. */
#define _GNU_SOURCE
#include "mmu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t last_of(const struct klab_range *r)
{
    return r->va_end - 1;   /* va_end 0: the range runs to the top */
}

static bool same_perms(const struct klab_perms *a, const struct klab_perms *b)
{
    return !memcmp(a, b, sizeof *a);
}

/* A range cut to start at va. */
static struct klab_range cut(const struct klab_range *r, uint64_t va)
{
    struct klab_range c = *r;
    c.va_start = va;
    if (r->kind == KLAB_RANGE_MAPPED)
        c.pa_start = r->pa_start + (va - r->va_start);
    return c;
}

static bool name_in(const char *tok, size_t n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count && names[i]; i++)
        if (strlen(names[i]) == n && !memcmp(tok, names[i], n))
            return true;
    return false;
}

static bool has_name(const char *attrs, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = attrs; (p = strstr(p, name)); p += n)
        if ((p == attrs || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
            return true;
    return false;
}

/* Whether a name of one side's attributes counts in the comparison. */
static bool counts(const struct klab_arch_ops *a, const char *tok, size_t n, bool dbm_both, unsigned flags)
{
    if (name_in(tok, n, a->diff_size_names, 4))
        return false;
    if (flags & KLAB_PTDIFF_ALL_BITS)
        return true;
    if (name_in(tok, n, a->diff_volatile, 4))
        return false;
    return !(dbm_both && a->dbm_managed && !strncmp(tok, a->dbm_managed, strlen(a->dbm_managed)));
}

/* The names of x that are not in y (and count), space-separated into out. */
static void names_only_in(const struct klab_arch_ops *a, const char *x, const char *y, bool dbm_both,
                          unsigned flags, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = x; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        char tok[64];
        if (n < sizeof tok && counts(a, p, n, dbm_both, flags)) {
            memcpy(tok, p, n);
            tok[n] = '\0';
            if (!has_name(y, tok)) {
                int w = snprintf(out + used, outlen - used, "%s%s", used ? " " : "", tok);
                if (w > 0 && used + (size_t)w < outlen)
                    used += (size_t)w;
            }
        }
        p += n;
    }
}

/* Whether the space-separated names hold one that is not a rights name (a prefix of diff_perm_names). */
static bool other_than_perms(const struct klab_arch_ops *a, const char *names)
{
    for (const char *p = names; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        bool perm = false;
        for (size_t i = 0; i < 6 && a->diff_perm_names[i] && !perm; i++) {
            size_t k = strlen(a->diff_perm_names[i]);
            perm = n >= k && !memcmp(p, a->diff_perm_names[i], k) && (k == n || a->diff_perm_names[i][k - 1] == '=');
        }
        if (!perm)
            return true;
        p += n;
    }
    return false;
}

/* How the piece [va, ...) differs where both sides map it; what == 0: not at all. */
static void compare(const struct klab_arch_ops *a, const struct klab_range *x, const struct klab_range *y, unsigned flags,
                    struct klab_ptchange *c)
{
    if (x->kind == KLAB_RANGE_BAD || y->kind == KLAB_RANGE_BAD) {
        if (x->kind != y->kind || x->first_raw != y->first_raw || strcmp(x->attrs, y->attrs))
            c->what |= KLAB_PTDIFF_BAD;
        return;
    }
    if (!same_perms(&x->perms, &y->perms))
        c->what |= KLAB_PTDIFF_PERMS;
    if (c->before.pa_start != c->after.pa_start)
        c->what |= KLAB_PTDIFF_MOVED;
    if (y->page_size < x->page_size)
        c->what |= KLAB_PTDIFF_SPLIT;
    else if (y->page_size > x->page_size)
        c->what |= KLAB_PTDIFF_MERGED;
    bool dbm = a->dbm_name && has_name(x->attrs, a->dbm_name) && has_name(y->attrs, a->dbm_name);
    names_only_in(a, x->attrs, y->attrs, dbm, flags, c->bits_gone, sizeof c->bits_gone);
    names_only_in(a, y->attrs, x->attrs, dbm, flags, c->bits_new, sizeof c->bits_new);
    /* The names always show what flipped ("-RW +RO"); "bits" in what says something beyond the rights did. */
    if (other_than_perms(a, c->bits_gone) || other_than_perms(a, c->bits_new))
        c->what |= KLAB_PTDIFF_BITS;
}

struct sweep {
    klab_ptchange_fn fn;
    void *ctx;
    struct klab_ptchange pending;
    bool have;
    int rc;
};

static bool pa_follows(const struct klab_range *first, const struct klab_range *next, uint64_t dva)
{
    return first->kind != KLAB_RANGE_MAPPED || first->pa_start + dva == next->pa_start;
}

/* Whether change n continues the pending one: contiguous, changed the same way, the same shapes. */
static bool joins(const struct klab_ptchange *p, const struct klab_ptchange *n)
{
    if (p->va_end != n->va_start || p->kind != n->kind || p->what != n->what || strcmp(p->bits_gone, n->bits_gone) ||
        strcmp(p->bits_new, n->bits_new))
        return false;
    const struct klab_range *side[2][2] = { { &p->before, &n->before }, { &p->after, &n->after } };
    for (int i = 0; i < 2; i++) {
        const struct klab_range *x = side[i][0], *y = side[i][1];
        if (x->kind != y->kind || x->page_size != y->page_size || !same_perms(&x->perms, &y->perms) ||
            strcmp(x->level_name, y->level_name) || strcmp(x->root_name, y->root_name))
            return false;
    }
    return true;
}

static void flush(struct sweep *s)
{
    if (s->have && !s->rc)
        s->rc = s->fn(s->ctx, &s->pending);
    s->have = false;
}

static void add_piece(struct sweep *s, const struct klab_ptchange *c)
{
    if (s->have && joins(&s->pending, c)) {
        const uint64_t dva = c->va_start - s->pending.va_start;
        if (!pa_follows(&s->pending.before, &c->before, dva) || !pa_follows(&s->pending.after, &c->after, dva))
            s->pending.pa_follows = false;
        s->pending.va_end = c->va_end;
        s->pending.pieces++;
        return;
    }
    flush(s);
    s->pending = *c;
    s->have = true;
}

/* The piece [x, last] with a (may be NULL) and b (may be NULL) covering it. */
static void piece(struct sweep *s, const struct klab_arch_ops *a, const struct klab_range *ra,
                  const struct klab_range *rb, uint64_t x, uint64_t last, unsigned flags)
{
    struct klab_ptchange c;
    memset(&c, 0, sizeof c);
    c.va_start = x;
    c.va_end = last + 1;
    c.pa_follows = true;
    c.pieces = 1;
    if (ra)
        c.before = cut(ra, x);
    if (rb)
        c.after = cut(rb, x);
    if (ra && rb) {
        c.kind = KLAB_PTCHANGE_CHANGED;
        compare(a, ra, rb, flags, &c);
        if (!c.what) {
            flush(s);
            return;
        }
    } else {
        c.kind = ra ? KLAB_PTCHANGE_UNMAPPED : KLAB_PTCHANGE_MAPPED;
        if ((ra ? ra : rb)->kind == KLAB_RANGE_BAD)
            c.what = KLAB_PTDIFF_BAD;
    }
    add_piece(s, &c);
}

int klab_ptdiff(const struct klab_ptsnap *sa, const struct klab_ptsnap *sb, uint64_t va_start, uint64_t va_end,
                unsigned flags, klab_ptchange_fn fn, void *ctx, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_ptsnap_info ia, ib;
    klab_ptsnap_info(sa, &ia);
    klab_ptsnap_info(sb, &ib);
    if (ia.arch != ib.arch) {
        snprintf(err, errlen, "the snapshots are of two architectures (%s, %s)", klab_arch_name(ia.arch),
                 klab_arch_name(ib.arch));
        return -1;
    }
    const struct klab_arch_ops *a = klab_arch(ia.arch);
    const uint64_t lo = va_start, hi = (va_start == 0 && va_end == 0) ? UINT64_MAX : va_end;
    if (hi < lo) {
        snprintf(err, errlen, "the span ends before it starts");
        return -1;
    }
    struct sweep s = { .fn = fn, .ctx = ctx };
    size_t i = 0, j = 0;
    uint64_t x = lo;
    for (;;) {
        const struct klab_range *ra, *rb;
        while ((ra = klab_ptsnap_range(sa, i)) && last_of(ra) < x)
            i++;
        while ((rb = klab_ptsnap_range(sb, j)) && last_of(rb) < x)
            j++;
        const bool in_a = ra && ra->va_start <= x, in_b = rb && rb->va_start <= x;
        if (!in_a && !in_b) {
            /* A hole in both: go to the next range of either. */
            uint64_t next = UINT64_MAX;
            bool any = false;
            if (ra)
                next = ra->va_start, any = true;
            if (rb && (!any || rb->va_start < next))
                next = rb->va_start, any = true;
            if (!any || next > hi)
                break;
            x = next;
            continue;
        }
        uint64_t last = hi;
        const struct klab_range *sides[2] = { ra, rb };
        const bool in[2] = { in_a, in_b };
        for (int k = 0; k < 2; k++) {
            if (!sides[k])
                continue;
            uint64_t edge = in[k] ? last_of(sides[k]) : sides[k]->va_start - 1;
            if (edge < last)
                last = edge;
        }
        piece(&s, a, in_a ? ra : NULL, in_b ? rb : NULL, x, last, flags);
        if (s.rc || last >= hi)
            break;
        x = last + 1;
    }
    flush(&s);
    return s.rc;
}

/* ---- text -------------------------------------------------------------------------------------------------- */

/* "4K x64 pte", or "part of a 2M pmd" when the change is smaller than one leaf. */
static void shape(char *buf, size_t len, size_t *used, const struct klab_range *r, uint64_t span)
{
    char ps[24];
    if (span && span < r->page_size)
        klab_add(buf, len, used, "part of a %s %s", klab_size_str(r->page_size, ps), r->level_name);
    else
        klab_add(buf, len, used, "%s x%llu %s", klab_size_str(r->page_size, ps),
            (unsigned long long)(span ? span / r->page_size : (0 - r->va_start) / r->page_size), r->level_name);
}

static const char *what_words(unsigned what, char *buf, size_t len)
{
    static const struct { unsigned bit; const char *word; } words[] = {
        { KLAB_PTDIFF_BAD, "bad" }, { KLAB_PTDIFF_MOVED, "moved" }, { KLAB_PTDIFF_SPLIT, "split" },
        { KLAB_PTDIFF_MERGED, "merged" }, { KLAB_PTDIFF_PERMS, "perms" }, { KLAB_PTDIFF_BITS, "bits" },
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (what & words[i].bit)
            klab_add(buf, len, &used, "%s%s", used ? "," : "", words[i].word);
    return buf;
}

static void one_side(char *buf, size_t len, size_t *used, const struct klab_range *r, uint64_t span, bool pa_ok)
{
    char perms[8];
    if (r->kind == KLAB_RANGE_BAD) {
        klab_add(buf, len, used, "BAD %s entry 0x%016llx: %s", r->level_name, (unsigned long long)r->first_raw, r->attrs);
        return;
    }
    if (pa_ok)
        klab_add(buf, len, used, "PA 0x%llx  ", (unsigned long long)r->pa_start);
    else
        klab_add(buf, len, used, "PA (scattered)  ");
    shape(buf, len, used, r, span);
    klab_add(buf, len, used, "  %s  %s", klab_perms_str(&r->perms, perms), r->attrs);
}

size_t klab_format_ptchange(const struct klab_ptchange *c, char *buf, size_t len)
{
    size_t used = 0;
    char sz[24], words[64], pa[24], pb[24];
    const uint64_t span = c->va_end - c->va_start;
    const char sign = c->kind == KLAB_PTCHANGE_MAPPED ? '+' : c->kind == KLAB_PTCHANGE_UNMAPPED ? '-' : '~';
    klab_add(buf, len, &used, "%c 0x%016llx-0x%016llx %6s  ", sign, (unsigned long long)c->va_start,
        (unsigned long long)c->va_end, span ? klab_size_str(span, sz) : "top");
    if (c->kind != KLAB_PTCHANGE_CHANGED) {
        klab_add(buf, len, &used, "%-12s ", c->kind == KLAB_PTCHANGE_MAPPED ? "mapped" : "unmapped");
        if (c->kind == KLAB_PTCHANGE_UNMAPPED)
            klab_add(buf, len, &used, "was ");
        one_side(buf, len, &used, c->kind == KLAB_PTCHANGE_MAPPED ? &c->after : &c->before, span, c->pa_follows);
        klab_add(buf, len, &used, "\n");
        return used;
    }
    const struct klab_range *x = &c->before, *y = &c->after;
    klab_add(buf, len, &used, "%-12s ", what_words(c->what, words, sizeof words));
    if (c->what & KLAB_PTDIFF_BAD) {
        one_side(buf, len, &used, x, span, c->pa_follows);
        klab_add(buf, len, &used, " -> ");
        one_side(buf, len, &used, y, span, c->pa_follows);
        klab_add(buf, len, &used, "\n");
        return used;
    }
    if (!c->pa_follows)
        klab_add(buf, len, &used, "PA (scattered)%s  ", (c->what & KLAB_PTDIFF_MOVED) ? " -> (scattered)" : "");
    else if (c->what & KLAB_PTDIFF_MOVED)
        klab_add(buf, len, &used, "PA 0x%llx -> 0x%llx  ", (unsigned long long)x->pa_start, (unsigned long long)y->pa_start);
    else
        klab_add(buf, len, &used, "PA 0x%llx  ", (unsigned long long)x->pa_start);
    shape(buf, len, &used, x, span);
    if (c->what & (KLAB_PTDIFF_SPLIT | KLAB_PTDIFF_MERGED)) {
        klab_add(buf, len, &used, " -> ");
        shape(buf, len, &used, y, span);
    }
    if (c->what & KLAB_PTDIFF_PERMS)
        klab_add(buf, len, &used, "  %s -> %s", klab_perms_str(&x->perms, pa), klab_perms_str(&y->perms, pb));
    else
        klab_add(buf, len, &used, "  %s", klab_perms_str(&x->perms, pa));
    if (c->bits_gone[0] || c->bits_new[0]) {
        klab_add(buf, len, &used, " ");
        for (const char *p = c->bits_gone; *p;) {
            size_t n = strcspn(p, " ");
            klab_add(buf, len, &used, " -%.*s", (int)n, p);
            p += n + (p[n] == ' ');
        }
        for (const char *p = c->bits_new; *p;) {
            size_t n = strcspn(p, " ");
            klab_add(buf, len, &used, " +%.*s", (int)n, p);
            p += n + (p[n] == ' ');
        }
    }
    klab_add(buf, len, &used, "\n");
    return used;
}

/* ---- the whole diff as text ------------------------------------------------------------------------------------ */

struct text {
    struct klab_textbuf tb;
    uint64_t changes, by_kind[3], by_what[6];
};

static int append_change(void *ctx, const struct klab_ptchange *c)
{
    struct text *t = ctx;
    char line[1024];
    size_t n = klab_format_ptchange(c, line, sizeof line);
    if (n >= sizeof line)
        line[sizeof line - 2] = '\n';
    klab_tb_add(&t->tb, "%s", line);
    t->changes++;
    t->by_kind[c->kind]++;
    for (int i = 0; i < 6; i++)
        if (c->what & (1u << i))
            t->by_what[i]++;
    return t->tb.failed;
}

char *klab_ptdiff_text(const struct klab_ptsnap *a, const struct klab_ptsnap *b, uint64_t va_start, uint64_t va_end,
                       unsigned flags, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct text t = { .tb = { 0 } };
    int rc = klab_ptdiff(a, b, va_start, va_end, flags, append_change, &t, error);
    if (rc != 0 && !t.tb.failed) {
        free(t.tb.p);
        return NULL;
    }
    static const char *const what[] = { "perms", "moved", "split", "merged", "bits", "bad" };
    if (!t.changes)
        klab_tb_add(&t.tb, "no change\n");
    else {
        klab_tb_add(&t.tb, "%llu change%s: %llu mapped, %llu unmapped, %llu changed", (unsigned long long)t.changes,
                    t.changes == 1 ? "" : "s", (unsigned long long)t.by_kind[KLAB_PTCHANGE_MAPPED],
                    (unsigned long long)t.by_kind[KLAB_PTCHANGE_UNMAPPED],
                    (unsigned long long)t.by_kind[KLAB_PTCHANGE_CHANGED]);
        const char *sep = " (";
        for (int i = 0; i < 6; i++)
            if (t.by_what[i]) {
                klab_tb_add(&t.tb, "%s%llu %s", sep, (unsigned long long)t.by_what[i], what[i]);
                sep = ", ";
            }
        klab_tb_add(&t.tb, "%s\n", strcmp(sep, " (") ? ")" : "");
    }
    if (t.tb.failed) {
        snprintf(err, errlen, "out of memory");
        free(t.tb.p);
        return NULL;
    }
    return t.tb.p;
}
