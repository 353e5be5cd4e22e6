/* klab ptdump --svg and ptdiff --svg: an address space as a map. The mapped ranges are gathered into rows
 * (a row ends at a gap, at the edge of a region the caller named, or at another translation root), each row
 * drawn to its own linear scale: the rights as colours, the leaf sizes as shades in a strip below, what a
 * diff found as outlines (green mapped, red unmapped, amber changed) and listed under the map as klab ptdiff
 * words it. Planning (rows, scales, colours) is pure; drawing only appends text. */
#define _GNU_SOURCE
#include "svg_internal.h"
#include "error_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MARGIN = 20, LABEL_W = 440, BAR_W = 1000, BAR_H = 22, SIZE_H = 8, ROW_H = 66, MAX_ROWS = 40,
    MAX_LISTED = 60, MAX_KEYS = 32,
};

/* A stretch of address space that has something to draw: a range of the snapshot, or a change (an unmapped
 * range is in the old snapshot only). last is inclusive: a range may end at the top of the address space. */
struct span {
    uint64_t first, last;
    const char *root;
};

struct row {
    uint64_t first, last;       /* the row's scale */
    int region;                 /* index into the caller's regions, or -1 */
    const char *root;
    uint64_t mapped, nranges, nchanges;
};

struct changes {
    struct klab_ptchange *c;
    size_t n, cap;
    bool failed;
};

static int keep_change(void *ctx, const struct klab_ptchange *c)
{
    struct changes *cs = ctx;
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 64;
        struct klab_ptchange *nc = realloc(cs->c, cap * sizeof *nc);
        if (!nc) {
            cs->failed = true;
            return 1;
        }
        cs->c = nc;
        cs->cap = cap;
    }
    cs->c[cs->n++] = *c;
    return 0;
}

static uint64_t last_va(uint64_t va_end)
{
    return va_end - 1;   /* va_end 0: to the top of the address space */
}

static bool in_span(uint64_t first, uint64_t last, const struct klab_svg_map_opts *o)
{
    if (!o->va_start && !o->va_end)
        return true;
    return last >= o->va_start && first <= o->va_end;
}

static int region_of(uint64_t va, const struct klab_svg_map_opts *o)
{
    for (size_t i = 0; i < o->nregions; i++)
        if (va >= o->regions[i].start && va <= last_va(o->regions[i].end))
            return (int)i;
    return -1;
}

/* Every range of the snapshot and every change, in VA order (both lists are). */
static struct span *plan_spans(const struct klab_ptsnap *now, const struct changes *cs,
                               const struct klab_svg_map_opts *o, size_t *n)
{
    struct klab_ptsnap_info info;
    klab_ptsnap_info(now, &info);
    struct span *s = calloc(info.nranges + cs->n + 1, sizeof *s);
    if (!s)
        return NULL;
    size_t k = 0, ri = 0, ci = 0;
    while (ri < info.nranges || ci < cs->n) {
        const struct klab_range *r = ri < info.nranges ? klab_ptsnap_range(now, ri) : NULL;
        const struct klab_ptchange *c = ci < cs->n ? &cs->c[ci] : NULL;
        struct span x;
        if (r && (!c || r->va_start <= c->va_start)) {
            x = (struct span){ r->va_start, last_va(r->va_end), r->root_name };
            ri++;
        } else {
            const struct klab_range *side = c->kind == KLAB_PTCHANGE_UNMAPPED ? &c->before : &c->after;
            x = (struct span){ c->va_start, last_va(c->va_end), side->root_name };
            ci++;
        }
        if (in_span(x.first, x.last, o))
            s[k++] = x;
    }
    *n = k;
    return s;
}

/* Rows for a gap threshold: a new row at a gap of at least gap bytes, another region, another root. */
static size_t plan_rows(const struct span *s, size_t n, uint64_t gap, const struct klab_svg_map_opts *o,
                        struct row *rows, size_t max)
{
    size_t nrows = 0;
    for (size_t i = 0; i < n; i++) {
        const int region = region_of(s[i].first, o);
        struct row *cur = nrows ? &rows[nrows - 1] : NULL;
        if (cur && s[i].first > cur->last && s[i].first - cur->last - 1 < gap && region == cur->region &&
            !strcmp(cur->root, s[i].root)) {
            if (s[i].last > cur->last)
                cur->last = s[i].last;
            continue;
        }
        if (cur && s[i].first <= cur->last) {   /* a change over a range already drawn */
            if (s[i].last > cur->last)
                cur->last = s[i].last;
            continue;
        }
        if (nrows == max)
            return max + 1;
        rows[nrows++] = (struct row){ s[i].first, s[i].last, region, s[i].root, 0, 0, 0 };
    }
    return nrows;
}

/* The smallest gap, doubling from 64M, that leaves at most MAX_ROWS rows (regions and roots still split). */
static size_t choose_rows(const struct span *s, size_t n, const struct klab_svg_map_opts *o, struct row *rows)
{
    size_t nrows = MAX_ROWS + 1;
    for (unsigned shift = 26; shift <= 63 && nrows > MAX_ROWS; shift++)
        nrows = plan_rows(s, n, 1ull << shift, o, rows, MAX_ROWS);
    return nrows > MAX_ROWS ? plan_rows(s, n, ~0ull, o, rows, MAX_ROWS) : nrows;
}

static int row_of(const struct row *rows, size_t nrows, uint64_t va)
{
    for (size_t i = 0; i < nrows; i++)
        if (va >= rows[i].first && va <= rows[i].last)
            return (int)i;
    return -1;
}

/* x of va on row r's scale, and the width of [first, last] there (at least min pixels: a 4K page in a 1T row
 * still shows). */
static double scale_x(const struct row *r, uint64_t va)
{
    const double span = (double)(r->last - r->first) + 1;
    return LABEL_W + MARGIN + (double)(va - r->first) / span * BAR_W;
}
static double scale_w(const struct row *r, uint64_t first, uint64_t last, double min)
{
    const double span = (double)(r->last - r->first) + 1;
    const double w = ((double)(last - first) + 1) / span * BAR_W;
    return w < min ? min : w;
}

/* The leaf sizes present, smallest first, each a shade from light to dark. */
struct sizes {
    uint64_t size[MAX_KEYS];
    size_t n;
};
static void note_size(struct sizes *z, uint64_t size)
{
    size_t i = 0;
    while (i < z->n && z->size[i] < size)
        i++;
    if ((i < z->n && z->size[i] == size) || z->n == MAX_KEYS)
        return;
    memmove(&z->size[i + 1], &z->size[i], (z->n - i) * sizeof *z->size);
    z->size[i] = size;
    z->n++;
}
static void size_shade(const struct sizes *z, uint64_t size, char out[8])
{
    size_t i = 0;
    while (i < z->n && z->size[i] != size)
        i++;
    const int grey = z->n > 1 ? 0xd0 - (int)(0xa0 * i / (z->n - 1)) : 0x90;
    snprintf(out, 8, "#%02x%02x%02x", grey, grey, grey);
}

struct perms_keys {
    struct klab_perms p[MAX_KEYS];
    size_t n;
};
static void note_perms(struct perms_keys *k, const struct klab_perms *p)
{
    for (size_t i = 0; i < k->n; i++)
        if (!memcmp(&k->p[i], p, sizeof *p))
            return;
    if (k->n < MAX_KEYS)
        k->p[k->n++] = *p;
}

struct map {
    const struct klab_ptsnap *now;
    struct klab_ptsnap_info info;
    const struct klab_svg_map_opts *o;
    struct changes cs;
    struct row rows[MAX_ROWS + 1];
    size_t nrows;
    bool cut;                   /* more rows than MAX_ROWS: the rest are not drawn */
    struct sizes sizes;
    struct perms_keys keys;
};

/* Counts per row, and the legend's keys. */
static void plan_totals(struct map *m)
{
    for (size_t i = 0; i < m->info.nranges; i++) {
        const struct klab_range *r = klab_ptsnap_range(m->now, i);
        const int row = row_of(m->rows, m->nrows, r->va_start);
        if (row < 0)
            continue;
        m->rows[row].nranges++;
        if (r->kind == KLAB_RANGE_MAPPED) {
            m->rows[row].mapped += r->va_end - r->va_start;
            note_size(&m->sizes, r->page_size);
            note_perms(&m->keys, &r->perms);
        }
    }
    for (size_t i = 0; i < m->cs.n; i++) {
        const int row = row_of(m->rows, m->nrows, m->cs.c[i].va_start);
        if (row >= 0)
            m->rows[row].nchanges++;
    }
}

static int draw_legend(struct klab_textbuf *t, const struct map *m, int y)
{
    char perms[8], sz[24], shade[8];
    int x = MARGIN;
    svg_text(t, x, y + 12, "small", "rights (kernel/user):");
    x += 150;
    for (size_t i = 0; i < m->keys.n; i++, x += 90) {
        svg_rect(t, x, y, 14, 14, "", svg_perms_colour(&m->keys.p[i]));
        svg_text(t, x + 18, y + 12, "small", "%s", klab_perms_str(&m->keys.p[i], perms));
    }
    svg_rect(t, x, y, 14, 14, "bad", NULL);
    svg_text(t, x + 18, y + 12, "small", "BAD entry");
    y += 22;
    x = MARGIN;
    svg_text(t, x, y + 12, "small", "leaf sizes:");
    x += 150;
    for (size_t i = 0; i < m->sizes.n; i++, x += 90) {
        size_shade(&m->sizes, m->sizes.size[i], shade);
        svg_rect(t, x, y + 3, 14, SIZE_H, "seg", shade);
        svg_text(t, x + 18, y + 12, "small", "%s", klab_size_str(m->sizes.size[i], sz));
    }
    if (m->o->before) {
        static const char *const kinds[][2] = { { "mapped key", "+ mapped" }, { "unmapped key", "- unmapped" },
                                                 { "changed key", "~ changed" } };
        x += 40;
        for (size_t i = 0; i < 3; i++, x += 120) {
            svg_rect(t, x, y, 14, 14, kinds[i][0], NULL);
            svg_text(t, x + 18, y + 12, "small", "%s", kinds[i][1]);
        }
    }
    return y + 30;
}

/* A caller's region, else the half and its root: "user (CR3)", "kernel (TTBR1_EL1)". */
static const char *row_name(const struct map *m, const struct row *r, char *buf, size_t len)
{
    if (r->region >= 0)
        return m->o->regions[r->region].name;
    snprintf(buf, len, "%s (%s)", r->first >> 63 ? "kernel" : "user", r->root);
    return buf;
}

/* A size to read at a glance: exact when it is whole units ("2M"), else to a tenth ("1023.9M"). */
static const char *rough_size(uint64_t size, char buf[24])
{
    static const struct { unsigned shift; char unit; } units[] = { { 40, 'T' }, { 30, 'G' }, { 20, 'M' }, { 10, 'K' } };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (size >= (1ull << units[i].shift)) {
            if (size & ((1ull << units[i].shift) - 1))
                snprintf(buf, 24, "%.1f%c", (double)size / (double)(1ull << units[i].shift), units[i].unit);
            else
                snprintf(buf, 24, "%llu%c", (unsigned long long)(size >> units[i].shift), units[i].unit);
            return buf;
        }
    snprintf(buf, 24, "%llu", (unsigned long long)size);
    return buf;
}

static void draw_row(struct klab_textbuf *t, const struct map *m, const struct row *r, int y)
{
    char span[24], mapped[24], changes[40] = "", name[48];
    if (r->nchanges)
        snprintf(changes, sizeof changes, ", %llu change%s", (unsigned long long)r->nchanges,
                 r->nchanges == 1 ? "" : "s");
    svg_text(t, MARGIN, y + 12, "", "%s", row_name(m, r, name, sizeof name));
    svg_text(t, MARGIN, y + 28, "small", "0x%016llx-0x%016llx", (unsigned long long)r->first,
             (unsigned long long)r->last);
    svg_text(t, MARGIN, y + 42, "small", "span %s, %s mapped in %llu range%s%s",
             rough_size(r->last - r->first + 1, span), rough_size(r->mapped, mapped),
             (unsigned long long)r->nranges, r->nranges == 1 ? "" : "s", changes);
    svg_rect(t, LABEL_W + MARGIN, y, BAR_W, BAR_H, "none", NULL);
}

static void draw_ranges(struct klab_textbuf *t, const struct map *m, int y0)
{
    char shade[8];
    for (size_t i = 0; i < m->info.nranges; i++) {
        const struct klab_range *r = klab_ptsnap_range(m->now, i);
        const int row = row_of(m->rows, m->nrows, r->va_start);
        if (row < 0)
            continue;
        const struct row *w = &m->rows[row];
        const uint64_t last = last_va(r->va_end) > w->last ? w->last : last_va(r->va_end);
        const double x = scale_x(w, r->va_start), width = scale_w(w, r->va_start, last, 1);
        const int y = y0 + row * ROW_H;
        char line[512], root[12];
        snprintf(root, sizeof root, "%s", r->root_name);   /* the same root: no "---[ ROOT ]---" line */
        size_t n = klab_format_range(r, root, line, sizeof line);
        if (n && n < sizeof line && line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (r->kind != KLAB_RANGE_MAPPED) {
            svg_rect_titled(t, x, y, width, BAR_H, "bad", NULL, line);
            continue;
        }
        svg_rect_titled(t, x, y, width, BAR_H, "seg", svg_perms_colour(&r->perms), line);
        size_shade(&m->sizes, r->page_size, shade);
        svg_rect(t, x, y + BAR_H + 2, width, SIZE_H, "seg", shade);
    }
}

static void draw_changes(struct klab_textbuf *t, const struct map *m, int y0)
{
    static const char *const cls[] = { "mapped", "unmapped", "changed" };
    for (size_t i = 0; i < m->cs.n; i++) {
        const struct klab_ptchange *c = &m->cs.c[i];
        const int row = row_of(m->rows, m->nrows, c->va_start);
        if (row < 0)
            continue;
        const struct row *w = &m->rows[row];
        const uint64_t last = last_va(c->va_end) > w->last ? w->last : last_va(c->va_end);
        const double x = scale_x(w, c->va_start), width = scale_w(w, c->va_start, last, 3);
        svg_rect(t, x - 1, y0 + row * ROW_H - 4, width + 2, BAR_H + SIZE_H + 10, cls[c->kind], NULL);
    }
}

static int draw_list(struct klab_textbuf *t, const struct map *m, int y)
{
    char line[512];
    svg_text(t, MARGIN, y, "", "%zu change%s", m->cs.n, m->cs.n == 1 ? "" : "s");
    y += 18;
    for (size_t i = 0; i < m->cs.n && i < MAX_LISTED; i++, y += 15) {
        size_t n = klab_format_ptchange(&m->cs.c[i], line, sizeof line);
        if (n && n < sizeof line && line[n - 1] == '\n')
            line[n - 1] = '\0';
        svg_text(t, MARGIN, y, "small", "%s", line);
    }
    if (m->cs.n > MAX_LISTED)
        svg_text(t, MARGIN, y, "small", "... and %zu more (klab ptdiff lists them all)", m->cs.n - MAX_LISTED);
    return y + 15;
}

static int plan(struct map *m, char *err, size_t errlen)
{
    struct klab_error e;
    if (m->o->before && klab_ptdiff(m->o->before, m->now, m->o->va_start, m->o->va_end, m->o->diff_flags,
                                    keep_change, &m->cs, &e) != 0) {
        snprintf(err, errlen, "%s", m->cs.failed ? "out of memory" : e.msg);
        return -1;
    }
    size_t n;
    struct span *s = plan_spans(m->now, &m->cs, m->o, &n);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->nrows = choose_rows(s, n, m->o, m->rows);
    free(s);
    if (m->nrows > MAX_ROWS) {
        m->nrows = MAX_ROWS;
        m->cut = true;
    }
    plan_totals(m);
    return 0;
}

char *klab_svg_map(const struct klab_ptsnap *now, const struct klab_svg_map_opts *o, size_t *len,
                   struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    static const struct klab_svg_map_opts none;
    struct map *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->now = now;
    m->o = o ? o : &none;
    klab_ptsnap_info(now, &m->info);
    if (plan(m, err, errlen) != 0) {
        free(m->cs.c);
        free(m);
        return NULL;
    }
    const int listed = m->o->before ? (int)(m->cs.n < MAX_LISTED ? m->cs.n : MAX_LISTED) + 3 : 0;
    const int y_rows = 130, height = y_rows + (int)m->nrows * ROW_H + listed * 15 + 3 * MARGIN;
    char title[256];
    snprintf(title, sizeof title, "%s%s%s", m->o->title ? m->o->title : "", m->o->title ? ": " : "",
             m->info.label[0] ? m->info.label : klab_arch_name(m->info.arch));
    struct klab_textbuf t = { 0 };
    svg_begin(&t, LABEL_W + BAR_W + 2 * MARGIN + 20, height, title);
    svg_text(&t, MARGIN, 28, "title", "%s", title);
    svg_text(&t, MARGIN, 48, "small", "%s, %zu ranges; each row to its own scale; one row per stretch of "
             "address space without a large gap", klab_arch_name(m->info.arch), m->info.nranges);
    draw_legend(&t, m, 62);
    if (!m->nrows)
        svg_text(&t, MARGIN, y_rows + 14, "", "nothing mapped%s", m->o->va_start || m->o->va_end ? " in this span" : "");
    if (m->cut)
        svg_text(&t, MARGIN + 700, 48, "bad", "more than %d regions: the map ends at row %d (use --range)",
                 MAX_ROWS, MAX_ROWS);
    for (size_t i = 0; i < m->nrows; i++)
        draw_row(&t, m, &m->rows[i], y_rows + (int)i * ROW_H);
    draw_ranges(&t, m, y_rows);
    draw_changes(&t, m, y_rows);
    if (m->o->before)
        draw_list(&t, m, y_rows + (int)m->nrows * ROW_H + MARGIN);
    svg_end(&t);
    free(m->cs.c);
    free(m);
    return svg_finish(&t, len, err, errlen);
}
