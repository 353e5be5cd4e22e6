#define _POSIX_C_SOURCE 200809L
#include "gzseg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct gzseg_writer {
    FILE *out;
    int level;
    const char *cache_dir;
    char *err;
    size_t errlen;
    uLong crc;          /* CRC-32 of all uncompressed bytes so far */
    uint64_t total_in;  /* their count (ISIZE is this mod 2^32) */
    struct gzseg_stats stats;
};

#define FAIL(w, ...) (snprintf((w)->err, (w)->errlen, __VA_ARGS__), -1)

struct gzseg_writer *gzseg_open(FILE *out, int level, const char *cache_dir, char *err, size_t errlen)
{
    struct gzseg_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *w = (struct gzseg_writer){ .out = out, .level = level, .cache_dir = cache_dir,
                                .err = err, .errlen = errlen, .crc = crc32(0L, Z_NULL, 0) };
    /* RFC 1952 header: no name, mtime 0 (reproducible), XFL 0, OS 3 (Unix). */
    static const unsigned char header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
    if (fwrite(header, 1, sizeof header, out) != sizeof header) {
        snprintf(err, errlen, "write error: %s", strerror(errno));
        free(w);
        return NULL;
    }
    return w;
}

/* Raw deflate of one segment with the given memLevel, ending byte-aligned with a full flush. *out is
 * malloc'ed. */
static int deflate_segment(struct gzseg_writer *w, const unsigned char *data, size_t len, int mem_level,
                           unsigned char **out, size_t *outlen)
{
    z_stream zs = { 0 };
    if (deflateInit2(&zs, w->level, Z_DEFLATED, -15, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
        return FAIL(w, "deflateInit2 failed");
    size_t cap = deflateBound(&zs, len) + 16;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return FAIL(w, "out of memory");
    }
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FULL_FLUSH);
    size_t produced = cap - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_OK || zs.avail_in != 0) {
        free(buf);
        return FAIL(w, "deflate failed (%d)", rc);
    }
    *out = buf;
    *outlen = produced;
    return 0;
}

/* A segment that will be cached is compressed once and reused for ever, so it may cost more: both zlib memory
 * levels are tried and the smaller output kept (on busybox memLevel 8 wins by ~600 bytes, on other data 9). */
static int compress_segment(struct gzseg_writer *w, const unsigned char *data, size_t len, bool best,
                            unsigned char **out, size_t *outlen)
{
    if (deflate_segment(w, data, len, 8, out, outlen) != 0)
        return -1;
    unsigned char *alt;
    size_t altlen;
    if (!best || deflate_segment(w, data, len, 9, &alt, &altlen) != 0)
        return 0;
    if (altlen < *outlen) {
        free(*out);
        *out = alt;
        *outlen = altlen;
    } else {
        free(alt);
    }
    return 0;
}

static char *cache_path(const struct gzseg_writer *w, uLong crc, uLong adler, size_t len)
{
    size_t n = strlen(w->cache_dir) + 80;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%08lx%08lx-%zx-l%d-best.deflate", w->cache_dir, crc, adler, len, w->level);
    return p;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && (buf = malloc((size_t)st.st_size)) &&
        fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        *len = (size_t)st.st_size;
    fclose(f);
    return buf;
}

/* Best effort: a cache that cannot be written only costs time next run. Written under a temporary name and
 * renamed so that a concurrent reader never sees half a segment. */
static void store_cached(const char *path, const unsigned char *buf, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    bool ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}

int gzseg_add(struct gzseg_writer *w, const unsigned char *data, size_t len, bool cacheable)
{
    if (len == 0)
        return 0;
    uLong seg_crc = crc32(0L, data, (uInt)len);
    unsigned char *z = NULL;
    size_t zlen = 0;
    char *path = NULL;
    if (cacheable && w->cache_dir) {
        /* Key: two independent checksums and the length, so that a collision needs both to collide. */
        path = cache_path(w, seg_crc, adler32(1L, data, (uInt)len), len);
        if (path && (z = read_whole(path, &zlen)))
            w->stats.cache_hits++;
    }
    if (!z) {
        if (compress_segment(w, data, len, cacheable, &z, &zlen) != 0) {
            free(path);
            return -1;
        }
        if (path) {
            w->stats.cache_misses++;
            store_cached(path, z, zlen);
        }
    }
    free(path);
    int rc = 0;
    if (fwrite(z, 1, zlen, w->out) != zlen)
        rc = FAIL(w, "write error: %s", strerror(errno));
    free(z);
    w->crc = crc32_combine(w->crc, seg_crc, (z_off_t)len);
    w->total_in += len;
    return rc;
}

int gzseg_close(struct gzseg_writer *w, struct gzseg_stats *stats)
{
    /* An empty final block with fixed Huffman codes (BFINAL=1, BTYPE=01, end-of-block) is "03 00". */
    unsigned char tail[10] = { 0x03, 0x00 };
    uint32_t crc = (uint32_t)w->crc, isize = (uint32_t)w->total_in;
    for (int i = 0; i < 4; i++) {
        tail[2 + i] = (unsigned char)(crc >> (8 * i));
        tail[6 + i] = (unsigned char)(isize >> (8 * i));
    }
    int rc = 0;
    if (fwrite(tail, 1, sizeof tail, w->out) != sizeof tail)
        rc = FAIL(w, "write error: %s", strerror(errno));
    if (stats)
        *stats = w->stats;
    free(w);
    return rc;
}
