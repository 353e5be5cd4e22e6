#include "newc.h"

#include <stdio.h>
#include <string.h>

#define NEWC_HEADER_LEN 110u

static size_t pad4(size_t n) { return (n + 3u) & ~(size_t)3u; }

size_t newc_entry_size(const struct newc_entry *e)
{
    size_t namesize = strlen(e->name) + 1;
    return pad4(NEWC_HEADER_LEN + namesize) + pad4(e->size);
}

/* The header is thirteen 8-digit hex fields after the magic; "check" stays 0 for the 070701 variant. */
static void format_header(unsigned char *out, const struct newc_entry *e, size_t namesize)
{
    char hdr[NEWC_HEADER_LEN + 1];
    snprintf(hdr, sizeof hdr,
             "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
             e->ino, e->mode, e->uid, e->gid, e->nlink, e->mtime, (unsigned)e->size,
             0u, 0u, /* dev major/minor of the archive's own file system: meaningless here */
             e->rdev_major, e->rdev_minor, (unsigned)namesize, 0u);
    memcpy(out, hdr, NEWC_HEADER_LEN);
}

size_t newc_format(const struct newc_entry *e, unsigned char *out)
{
    size_t namesize = strlen(e->name) + 1;
    if (namesize < 2 || e->size > 0xffffffffu)
        return 0;
    size_t total = newc_entry_size(e);
    memset(out, 0, total);
    format_header(out, e, namesize);
    memcpy(out + NEWC_HEADER_LEN, e->name, namesize);
    size_t data_at = pad4(NEWC_HEADER_LEN + namesize);
    if (e->size)
        memcpy(out + data_at, e->data, e->size);
    return total;
}

static const struct newc_entry trailer = { .name = "TRAILER!!!", .nlink = 1 };

size_t newc_trailer_size(void) { return newc_entry_size(&trailer); }
size_t newc_format_trailer(unsigned char *out) { return newc_format(&trailer, out); }
