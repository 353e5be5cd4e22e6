/* A gzip writer built from independently compressed segments.
 *
 * Each segment is a raw deflate stream ended with Z_FULL_FLUSH: byte-aligned, no final-block bit and no
 * back-references into earlier data, so segments can be concatenated (the technique of zlib's
 * examples/gzjoin.c). The member is closed with an empty final block, and the gzip CRC is stitched together
 * with crc32_combine(). The result is one ordinary gzip member that gzip, bsdtar and the kernel read.
 *
 * Why: a segment's compressed bytes depend only on its own contents, so a large, unchanging entry (busybox,
 * a module) is compressed once and its deflate bytes are reused from a content-addressed cache. */
#ifndef KLAB_GZSEG_H
#define KLAB_GZSEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct gzseg_writer;

/* cache_dir may be NULL (no cache). Returns NULL with a message in err on failure. */
struct gzseg_writer *gzseg_open(FILE *out, int level, const char *cache_dir, char *err, size_t errlen);

/* Compresses one segment; cacheable segments are looked up in / stored to the cache. 0 or -1 (err set). */
int gzseg_add(struct gzseg_writer *w, const unsigned char *data, size_t len, bool cacheable);

/* How the cache served the segments (for benchmarks and tests). */
struct gzseg_stats { unsigned cache_hits, cache_misses; };

/* Writes the final block and the gzip trailer, frees w; stats may be NULL. 0 or -1 (err set). */
int gzseg_close(struct gzseg_writer *w, struct gzseg_stats *stats);

#endif
