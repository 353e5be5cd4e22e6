/* vm/cmd/picture.h. */
#define _GNU_SOURCE
#include "cmd/picture.h"
#include "cmd/target.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* klab_kernel_regions' symbol callback: a VM booted with KASLR names no region (its slide is unknown here). */
static int symbol(void *ctx, const char *name, uint64_t *va)
{
    return target_symbol(ctx, name, va);
}

static int write_picture(const char *path, char *svg, size_t len, const struct klab_error *err)
{
    struct klab_error werr;
    int rc = 0;
    if (!svg) {
        klab_error("--svg: %s", err->msg);
        return 1;
    }
    if (klab_write_output(path, svg, len, &werr) != 0) {
        klab_error("--svg: %s", werr.msg);
        rc = 1;
    } else if (strcmp(path, "-"))
        klab_info("picture written to %s (%zu bytes of SVG)", path, len);
    free(svg);
    return rc;
}

int picture_walk(const char *path, const struct klab_walk *w, const char *label)
{
    struct klab_error err;
    size_t len = 0;
    char *svg = klab_svg_walk(w, label, &len, &err);
    return write_picture(path, svg, len, &err);
}

int picture_map(const char *path, const struct klab_ptsnap *now, const struct klab_ptsnap *before, unsigned flags,
                uint64_t lo, uint64_t hi, const struct vm_target *t, const char *title)
{
    struct klab_svg_region regions[12];
    const struct klab_svg_map_opts o = {
        .before = before, .diff_flags = flags, .va_start = lo, .va_end = hi, .regions = regions,
        .nregions = t ? klab_kernel_regions(&t->regs, t->mem, symbol, (void *)t, regions, 12) : 0, .title = title,
    };
    struct klab_error err;
    size_t len = 0;
    char *svg = klab_svg_map(now, &o, &len, &err);
    return write_picture(path, svg, len, &err);
}
