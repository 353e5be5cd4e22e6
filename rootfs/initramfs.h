/* Builds a klab initramfs: busybox, /init, /dev nodes, an overlay folder and extra files, as one newc cpio
 * archive, gzip-compressed or not. The same inputs give the same bytes: entries are sorted by path, owned by
 * root, stamped with one fixed mtime, and numbered in that order. */
#ifndef KLAB_INITRAMFS_H
#define KLAB_INITRAMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct initramfs_add {
    const char *src;   /* host file or folder */
    const char *dest;  /* path in the guest */
};

enum initramfs_compress { INITRAMFS_GZIP, INITRAMFS_NONE };

struct initramfs_spec {
    const char *busybox;          /* a static busybox for the guest's architecture */
    const char *init_path;        /* NULL: klab's own /init */
    const char *overlay;          /* NULL or a folder copied over the root */
    const struct initramfs_add *adds;
    size_t nadds;
    enum initramfs_compress compress;
    int level;                    /* zlib level */
    const char *cache_dir;        /* NULL: no cache of compressed segments */
    uint32_t mtime;               /* stamped on every entry */
    bool no_base;                 /* the adds alone, for a system that has the rest (busybox unused) */
};

struct initramfs_stats {
    unsigned entries;
    uint64_t uncompressed_bytes;
    uint64_t output_bytes;
    unsigned cache_hits, cache_misses;
};

/* Writes the image to out_path (through a temporary file, renamed at the end). 0 or -1 with err set. */
/* Whether an archive path has a ".." component (refused: it would land outside the root). */
bool initramfs_dest_climbs(const char *dest);
int initramfs_build(const struct initramfs_spec *spec, const char *out_path, struct initramfs_stats *stats,
                    char *err, size_t errlen);

#endif
