/* libFuzzer target: a page-table snapshot file (klab ptsnap), which a user may be handed or find in a store,
 * parsed from arbitrary bytes; what parses is written back, re-parsed (it must, and say the same) and diffed
 * against itself (no change), and drawn (klab ptdump / ptdiff --svg: labels and ranges from the file go into
 * the picture, which must stay one closed document). */
#define _GNU_SOURCE
#include "klab.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    struct klab_error err;
    struct klab_ptsnap *s = klab_ptsnap_parse((const char *)data, size, &err);
    if (!s)
        return 0;
    size_t len;
    char *text = klab_ptsnap_format(s, &len);
    struct klab_ptsnap *again = text ? klab_ptsnap_parse(text, len, &err) : NULL;
    if (text && !again)
        abort();   /* klab wrote a snapshot it cannot read */
    char *diff = again ? klab_ptdiff_text(s, again, 0, 0, KLAB_PTDIFF_ALL_BITS, &err) : NULL;
    if (diff && strcmp(diff, "no change\n"))
        abort();
    free(diff);
    const struct klab_svg_map_opts o = { .before = again, .title = "fuzz" };
    char *svg = klab_svg_map(s, &o, &len, &err);
    if (svg && (len != strlen(svg) || len < 7 || strcmp(svg + len - 7, "</svg>\n")))
        abort();   /* a NUL or a cut document from untrusted text */
    free(svg);
    free(text);
    klab_ptsnap_free(again);
    klab_ptsnap_free(s);
    return 0;
}
