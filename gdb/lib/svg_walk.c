/* klab vtop --svg: one translation drawn. The address's bits split into the index fields of each level (seed
 * 002's "pgd_index = (addr >> 42) & 63" for arm64 64K pages), the root register, each level's table with the
 * entry at the index highlighted and decoded, arrows to the next table and to the page. A field and the
 * table it indexes share a colour. Everything drawn comes from the walk (struct klab_walk): the picture says
 * no more than the text of klab_format_walk. */
#define _GNU_SOURCE
#include "svg_internal.h"
#include "error_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum {
    MARGIN = 20, BIT_W = 20, STRIP_H = 56, BOX_W = 200, BOX_H = 260, COL_W = 240, ROW_H = 18, BITS_WRAP = 30,
    ENTRIES_TOP = 44, ENTRIES_H = 200,
};

/* One field of the address: a level's index, the page offset, or the bits above the translated VA. */
struct field {
    char name[16];
    unsigned hi, lo;      /* bits [hi:lo] */
    int level;            /* index into walk->levels, or -1 (offset), -2 (above the VA) */
    bool reached;         /* the walk read this level's entry */
};

/* The address's fields from the top: the bits above va_bits, each level's index (visited levels as the walk
 * saw them, the rest at the granule's stride, as the MMU would index them), then the offset into the page
 * (the leaf's size when mapped, else a granule). Returns how many. Pure. */
static int plan_fields(const struct klab_walk *w, struct field *f, int max)
{
    const unsigned g = w->granule_shift, stride = g - 3;
    int n = 0;
    if (w->va_bits < 64)
        f[n++] = (struct field){ "upper", 63, w->va_bits, -2, true };
    /* Levels below a stop are not read, but the address still has their index bits: level i of n indexes
     * at g + stride * (n - 1 - i), the top level taking what is left of the VA (Arm ARM D8.2, SDM 4.5). */
    const struct klab_level *last = w->nlevels ? &w->levels[w->nlevels - 1] : NULL;
    const bool leaf = last && (last->kind == KLAB_ENTRY_BLOCK || last->kind == KLAB_ENTRY_PAGE);
    const unsigned from = last ? last->shift : w->va_bits;
    const int below = leaf || from <= g ? 0 : (int)((from - g + stride - 1) / stride);
    const int total = w->nlevels + below;
    unsigned top = w->va_bits;
    for (int i = 0; i < total && n < max - 1; i++) {
        const unsigned shift = i < w->nlevels ? w->levels[i].shift : g + stride * (unsigned)(total - 1 - i);
        struct field *x = &f[n++];
        *x = (struct field){ "", top - 1, shift, i, i < w->nlevels };
        snprintf(x->name, sizeof x->name, "%s", i < w->nlevels ? w->levels[i].name : klab_linux_level_name(i, total));
        top = shift;
    }
    if (top > 0 && n < max)
        f[n++] = (struct field){ "offset", top - 1, 0, -1, w->stop == KLAB_WALK_OK };
    return n;
}

static uint64_t field_value(uint64_t va, const struct field *f)
{
    return klab_bits(va, f->hi, f->lo);
}

static const char *level_class(int level)
{
    static const char *const cls[] = { "lvl0", "lvl1", "lvl2", "lvl3", "lvl4", "lvl5" };
    return level == -2 ? "sign" : level < 0 ? "lvl5" : cls[level % 5];
}

/* The strip of bits, 63 at the left as the Arm ARM and the SDM draw them, one box per field. */
static void draw_strip(struct klab_textbuf *t, const struct klab_walk *w, const struct field *f, int n, int y)
{
    int x = MARGIN;
    for (int i = 0; i < n; i++) {
        const int width = (int)(f[i].hi - f[i].lo + 1) * BIT_W;
        svg_rect(t, x, y, width, STRIP_H, level_class(f[i].level), NULL);
        svg_text(t, x + 4, y + 16, "", "%s", f[i].name);
        svg_text(t, x + 4, y + 32, "small", "[%u:%u]", f[i].hi, f[i].lo);
        svg_text(t, x + 4, y + 48, "small", "0x%llx", (unsigned long long)field_value(w->va, &f[i]));
        x += width;
    }
}

/* Seed 002's derivation under the strip, one line per index field, then the offset. */
static int draw_formulas(struct klab_textbuf *t, const struct klab_walk *w, const struct field *f, int n, int y)
{
    for (int i = 0; i < n; i++) {
        const unsigned bits = f[i].hi - f[i].lo + 1;
        const unsigned long long v = field_value(w->va, &f[i]);
        if (f[i].level >= 0)
            svg_text(t, MARGIN, y, "", "%s_index = (addr >> %u) & %llu = %llu%s", f[i].name, f[i].lo,
                     (unsigned long long)((1ull << bits) - 1), v, f[i].reached ? "" : "   (not reached)");
        else if (f[i].level == -1)
            svg_text(t, MARGIN, y, "", "page offset = addr & 0x%llx = 0x%llx", (unsigned long long)((1ull << bits) - 1), v);
        else
            svg_text(t, MARGIN, y, "", "bits [%u:%u] = 0x%llx: %s", f[i].hi, f[i].lo, v,
                     w->root_name[0] == 'T' ? "all ones (TTBR1) or all zeros (TTBR0); bit 55 picks the root"
                                            : "copies of the top translated bit (canonical address)");
        y += 16;
    }
    return y;
}

static void draw_root(struct klab_textbuf *t, const struct klab_walk *w, int x, int y)
{
    svg_rect(t, x, y, BOX_W - 40, 60, "table", NULL);
    svg_text(t, x + 8, y + 22, "", "%s", w->root_name);
    svg_text(t, x + 8, y + 42, "small", "0x%llx", (unsigned long long)w->root_pa);
}

/* Level i's table: the box, its name and PA, the entry at the index highlighted where it sits among the
 * table's entries, its decoded bits below. Returns the entry's y (for the arrow out). */
static int draw_table(struct klab_textbuf *t, const struct klab_walk *w, int i, unsigned index_bits, int x, int y)
{
    const struct klab_level *l = &w->levels[i];
    const bool stopped = i == w->nlevels - 1 && w->stop != KLAB_WALK_OK;
    const unsigned entries = 1u << index_bits;
    svg_rect(t, x, y, BOX_W, BOX_H, "table", NULL);
    svg_text(t, x + 8, y + 16, "", "%s table (%s)", l->name, l->hw_name);
    svg_text(t, x + 8, y + 32, "small", "at PA 0x%llx, %u entries", (unsigned long long)l->table_pa, entries);
    const int ey = y + ENTRIES_TOP + (int)((double)l->index / entries * (ENTRIES_H - ROW_H));
    if (ey > y + ENTRIES_TOP + 14)   /* the table's first and last index, where the entry does not cover them */
        svg_text(t, x + 8, y + ENTRIES_TOP + 10, "small", "[0]");
    if (ey + ROW_H < y + ENTRIES_TOP + ENTRIES_H - 14)
        svg_text(t, x + 8, y + ENTRIES_TOP + ENTRIES_H - 2, "small", "[%u]", entries - 1);
    svg_rect(t, x + 4, ey, BOX_W - 8, ROW_H, stopped ? "bad" : level_class(i), NULL);
    svg_text(t, x + 8, ey + 13, "", "[%u] %016llx", l->index, (unsigned long long)l->raw);
    const char *start;
    size_t len;
    int ly = y + BOX_H + 14;
    for (unsigned k = 0; k < 12 && svg_wrap_line(l->bits, BITS_WRAP, k, &start, &len); k++, ly += 13)
        svg_text(t, x, ly, "small", "%.*s", (int)len, start);
    return ey + ROW_H / 2;
}

/* The page and the byte: or, for a walk that stopped, why. */
static void draw_end(struct klab_textbuf *t, const struct klab_walk *w, int x, int y)
{
    if (w->stop != KLAB_WALK_OK) {
        svg_text(t, x, y + 16, "bad", "STOP: %s", klab_stop_name(w->stop));
        const char *start;
        size_t len;
        for (unsigned k = 0; k < 8 && svg_wrap_line(w->why, BITS_WRAP, k, &start, &len); k++)
            svg_text(t, x, y + 34 + 14 * (int)k, "bad", "%.*s", (int)len, start);
        return;
    }
    char sz[24], perms[8];
    const uint64_t base = w->pa & ~(w->page_size - 1), off = w->pa - base;
    svg_rect(t, x, y, BOX_W, BOX_H, "table", NULL);
    svg_text(t, x + 8, y + 16, "", "%s page", klab_size_str(w->page_size, sz));
    svg_text(t, x + 8, y + 32, "small", "at PA 0x%llx", (unsigned long long)base);
    const int by = y + ENTRIES_TOP + (int)((double)off / w->page_size * (ENTRIES_H - ROW_H));
    svg_rect(t, x + 4, by, BOX_W - 8, ROW_H, "lvl5", NULL);
    svg_text(t, x + 8, by + 13, "", "+0x%llx = 0x%llx", (unsigned long long)off, (unsigned long long)w->pa);
    svg_text(t, x, y + BOX_H + 14, "small", "rights %s (kernel/user)", klab_perms_str(&w->perms, perms));
}

static unsigned index_bits(const struct klab_walk *w, int i)
{
    return i == 0 ? w->va_bits - w->levels[0].shift : w->granule_shift - 3;
}

char *klab_svg_walk(const struct klab_walk *w, const char *label, size_t *len, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct field f[KLAB_MAX_LEVELS + 3];
    const int nf = w->granule_shift ? plan_fields(w, f, KLAB_MAX_LEVELS + 3) : 0;
    const int strip_w = 64 * BIT_W, cols = MARGIN + (BOX_W - 20) + COL_W * (w->nlevels + 1);
    const int width = 2 * MARGIN + (strip_w > cols ? strip_w : cols);
    const int y_tables = 146 + 16 * nf + 24, height = y_tables + BOX_H + 14 * 13 + MARGIN;
    char title[160], pa[40] = "not mapped", sz[24];
    if (w->stop == KLAB_WALK_OK)
        snprintf(pa, sizeof pa, "PA 0x%llx", (unsigned long long)w->pa);
    snprintf(title, sizeof title, "VA 0x%llx%s%s%s -> %s", (unsigned long long)w->va, label ? " (" : "",
             label ? label : "", label ? ")" : "", pa);
    struct klab_textbuf t = { 0 };
    svg_begin(&t, width, w->granule_shift ? height : 120, title);
    svg_text(&t, MARGIN, 28, "title", "%s", title);
    if (!w->granule_shift) {
        svg_text(&t, MARGIN, 60, "bad", "STOP: %s: %s", klab_stop_name(w->stop), w->why);
        svg_end(&t);
        return svg_finish(&t, len, err, errlen);
    }
    svg_text(&t, MARGIN, 50, "", "%s = 0x%llx: %s granule, %u-bit VA, %d level%s walked", w->root_name,
             (unsigned long long)w->root_pa, klab_size_str(1ull << w->granule_shift, sz), w->va_bits, w->nlevels,
             w->nlevels == 1 ? "" : "s");
    draw_strip(&t, w, f, nf, 66);
    draw_formulas(&t, w, f, nf, 146);
    draw_root(&t, w, MARGIN, y_tables);
    int from_x = MARGIN + BOX_W - 40, from_y = y_tables + 30;
    for (int i = 0; i < w->nlevels; i++) {
        const int x = MARGIN + (BOX_W - 20) + COL_W * i + 20;
        svg_arrow(&t, from_x, from_y, x - 2, y_tables + 12, "arrow");
        from_y = draw_table(&t, w, i, index_bits(w, i), x, y_tables);
        from_x = x + BOX_W - 4;
    }
    const int end_x = MARGIN + (BOX_W - 20) + COL_W * w->nlevels + 20;
    if (w->stop == KLAB_WALK_OK)
        svg_arrow(&t, from_x, from_y, end_x - 2, y_tables + 12, "arrow");
    draw_end(&t, w, end_x, y_tables);
    svg_end(&t);
    return svg_finish(&t, len, err, errlen);
}
