/* The few SVG shapes klab's pictures are made of (svg.c), for svg_walk.c and svg_map.c. Plain SVG 1.1: a
 * style sheet and shapes, no script, so any browser, viewer or converter (rsvg, Inkscape) shows it. */
#ifndef LIBKLAB_SVG_INTERNAL_H
#define LIBKLAB_SVG_INTERNAL_H

#include "mmu_internal.h"

/* The document's opening (size, title, the shared style sheet) and closing. */
void svg_begin(struct klab_textbuf *t, int width, int height, const char *title);
void svg_end(struct klab_textbuf *t);
/* Text at (x, y) in class cls ("" for the default), escaped for XML. */
void svg_text(struct klab_textbuf *t, int x, int y, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A rectangle filled with fill (a colour, or NULL for the class's) in class cls. */
void svg_rect(struct klab_textbuf *t, double x, double y, double w, double h, const char *cls, const char *fill);
/* The same with a tooltip (SVG's <title> child: a browser shows it under the pointer); title NULL: none. */
void svg_rect_titled(struct klab_textbuf *t, double x, double y, double w, double h, const char *cls,
                     const char *fill, const char *title);
/* An arrow from (x1, y1) to (x2, y2). */
void svg_arrow(struct klab_textbuf *t, int x1, int y1, int x2, int y2, const char *cls);
/* The colour klab draws a leaf's rights in (kernel and user read/write/execute), and the legend's words. */
const char *svg_perms_colour(const struct klab_perms *p);
/* Splits words into lines of at most width characters: the start of line n (0-based) of text, its length in
 * *n_chars; false when there is no line n. */
bool svg_wrap_line(const char *text, unsigned width, unsigned n, const char **start, size_t *n_chars);
/* The document as klab_svg_* return it: the buffer (*len), or NULL with err when memory ran out. */
char *svg_finish(struct klab_textbuf *t, size_t *len, char *err, size_t errlen);

#endif
