#define _DEFAULT_SOURCE
#include "initramfs.h"

#include "gzseg.h"
#include "init_script.h"
#include "newc.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Entries at least this large get a deflate segment (and a cache slot) of their own. */
#define OWN_SEGMENT_MIN (64u * 1024u)

struct item {
    char *name;
    uint32_t mode;
    uint32_t rdev_major, rdev_minor;
    unsigned char *data;
    size_t size;
    unsigned seq;  /* later sources override earlier ones; 0 = implied parent folder, weakest */
};

struct builder {
    struct item *items;
    size_t n, cap;
    unsigned next_seq;
    char *err;
    size_t errlen;
};

static int fail(struct builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Archive names have no leading or trailing '/', no empty or "." components. */
static char *normalize(const char *path)
{
    char *out = malloc(strlen(path) + 1), *o = out;
    if (!out)
        return NULL;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            break;
        if (!(len == 1 && p[0] == '.')) {
            if (o != out)
                *o++ = '/';
            memcpy(o, p, len);
            o += len;
        }
        p += len;
    }
    *o = '\0';
    return out;
}

static int push(struct builder *b, const char *name, uint32_t mode, unsigned char *data, size_t size,
                uint32_t rmaj, uint32_t rmin, bool implied)
{
    char *norm = normalize(name);
    if (!norm || !*norm) {
        free(norm);
        free(data);
        return norm ? fail(b, "empty path in the archive (from '%s')", name) : fail(b, "out of memory");
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct item *items = realloc(b->items, cap * sizeof *items);
        if (!items) {
            free(norm);
            free(data);
            return fail(b, "out of memory");
        }
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n++] = (struct item){ norm, mode, rmaj, rmin, data, size, implied ? 0 : ++b->next_seq };
    return 0;
}

static int push_dir(struct builder *b, const char *name, uint32_t perm, bool implied)
{
    return push(b, name, S_IFDIR | perm, NULL, 0, 0, 0, implied);
}

/* Every folder above `name`, so that the kernel can create the entry (it does not make parents). */
static int push_parents(struct builder *b, const char *name)
{
    char *copy = normalize(name);
    if (!copy)
        return fail(b, "out of memory");
    int rc = 0;
    for (char *slash = strchr(copy, '/'); slash && rc == 0; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        rc = push_dir(b, copy, 0755, true);
        *slash = '/';
    }
    free(copy);
    return rc;
}

static int read_file(struct builder *b, const char *path, unsigned char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(b, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return fail(b, "cannot stat %s: %s", path, strerror(errno));
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return fail(b, "out of memory reading %s", path);
    }
    if (fread(buf, 1, len, f) != len) {
        free(buf);
        fclose(f);
        return fail(b, "short read on %s", path);
    }
    fclose(f);
    *data = buf;
    *size = len;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int add_host_path(struct builder *b, const char *src, const char *dest);

static int add_host_dir(struct builder *b, const char *src, const char *dest, uint32_t perm)
{
    if (*dest && push_dir(b, dest, perm, false) != 0)
        return -1;
    DIR *d = opendir(src);
    if (!d)
        return fail(b, "cannot read folder %s: %s", src, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        size_t ls = strlen(src) + strlen(de->d_name) + 2, ld = strlen(dest) + strlen(de->d_name) + 2;
        char *s = malloc(ls), *t = malloc(ld);
        if (!s || !t)
            rc = fail(b, "out of memory");
        else {
            snprintf(s, ls, "%s/%s", src, de->d_name);
            snprintf(t, ld, "%s/%s", dest, de->d_name);
            rc = add_host_path(b, s, t);
        }
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

static int add_host_path(struct builder *b, const char *src, const char *dest)
{
    struct stat st;
    if (lstat(src, &st) != 0)
        return fail(b, "cannot add %s: %s", src, strerror(errno));
    uint32_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode))
        return add_host_dir(b, src, dest, perm);
    if (S_ISREG(st.st_mode)) {
        unsigned char *data = NULL;
        size_t size = 0;
        if (read_file(b, src, &data, &size) != 0)
            return -1;
        return push(b, dest, S_IFREG | perm, data, size, 0, 0, false);
    }
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(src, target, sizeof target);
        if (n < 0 || (size_t)n >= sizeof target)
            return fail(b, "cannot read link %s", src);
        unsigned char *data = malloc((size_t)n + 1);
        if (!data)
            return fail(b, "out of memory");
        memcpy(data, target, (size_t)n);
        return push(b, dest, S_IFLNK | 0777, data, (size_t)n, 0, 0, false);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode))
        return push(b, dest, (st.st_mode & S_IFMT) | perm, NULL, 0, major(st.st_rdev), minor(st.st_rdev),
                    false);
    return fail(b, "cannot add %s: not a file, folder, link or device", src);
}

/* The skeleton every image has; the overlay and --add may override any of it. */
static int add_base(struct builder *b, const struct initramfs_spec *spec)
{
    static const char *const dirs[] = { "bin", "dev", "etc", "etc/klab.d", "lib", "lib/modules", "mnt",
                                        "proc", "root", "run", "sbin", "sys", "tmp", "usr", "usr/bin",
                                        "usr/sbin" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (push_dir(b, dirs[i], 0755, false) != 0)
            return -1;
    /* The kernel opens /dev/console before /init mounts devtmpfs, so the node must be in the archive
     * (as usr/gen_init_cpio's default list has it): char 5:1 console, char 1:3 null. */
    if (push(b, "dev/console", S_IFCHR | 0600, NULL, 0, 5, 1, false) ||
        push(b, "dev/null", S_IFCHR | 0666, NULL, 0, 1, 3, false))
        return -1;
    if (add_host_path(b, spec->busybox, "bin/busybox") != 0)
        return -1;
    unsigned char *link = (unsigned char *)strdup("busybox");
    if (!link || push(b, "bin/sh", S_IFLNK | 0777, link, strlen("busybox"), 0, 0, false))
        return fail(b, "out of memory");
    if (spec->init_path)
        return add_host_path(b, spec->init_path, "init");
    unsigned char *init = (unsigned char *)strdup(klab_init_script);
    if (!init)
        return fail(b, "out of memory");
    return push(b, "init", S_IFREG | 0755, init, strlen(klab_init_script), 0, 0, false);
}

/* Sorts by path and keeps, for each path, the entry from the latest source. */
static void sort_and_dedupe(struct builder *b)
{
    if (b->n)   /* an archive of nothing (the file channel's warm-up): qsort wants a real array */
        qsort(b->items, b->n, sizeof *b->items, compare_names);
    size_t out = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (out > 0 && !strcmp(b->items[out - 1].name, b->items[i].name)) {
            free(b->items[out - 1].name);
            free(b->items[out - 1].data);
            b->items[out - 1] = b->items[i];
            continue;
        }
        b->items[out++] = b->items[i];
    }
    b->n = out;
}

struct sink {
    FILE *f;
    struct gzseg_writer *gz;
    unsigned char *pending;  /* small entries gathered into one segment */
    size_t plen, pcap;
    uint64_t total;
};

static int sink_segment(struct sink *s, const unsigned char *data, size_t len, bool cacheable, struct builder *b)
{
    s->total += len;
    if (s->gz)
        return gzseg_add(s->gz, data, len, cacheable);
    if (fwrite(data, 1, len, s->f) != len)
        return fail(b, "write error: %s", strerror(errno));
    return 0;
}

/* The small entries between two large ones are one segment, cached by content too once it is large enough
 * to cost time (a lab image's modules, hooks and scripts: 70 ms of level-9 deflate on every boot otherwise);
 * a small one is cheaper to compress than to look up and would only fill the cache. */
static int sink_flush_pending(struct sink *s, struct builder *b)
{
    int rc = sink_segment(s, s->pending, s->plen, s->plen >= OWN_SEGMENT_MIN, b);
    s->plen = 0;
    return rc;
}

static unsigned char *sink_reserve(struct sink *s, size_t len, struct builder *b)
{
    if (s->plen + len > s->pcap) {
        size_t cap = s->pcap ? s->pcap : 65536;
        while (cap < s->plen + len)
            cap *= 2;
        unsigned char *p = realloc(s->pending, cap);
        if (!p) {
            fail(b, "out of memory");
            return NULL;
        }
        s->pending = p;
        s->pcap = cap;
    }
    return s->pending + s->plen;
}

static int emit(struct builder *b, struct sink *s, uint32_t mtime)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = &b->items[i];
        struct newc_entry e = {
            .name = it->name, .mode = it->mode, .ino = (uint32_t)(i + 1), .nlink = S_ISDIR(it->mode) ? 2 : 1,
            .mtime = mtime, .rdev_major = it->rdev_major, .rdev_minor = it->rdev_minor,
            .data = it->data, .size = it->size,
        };
        size_t len = newc_entry_size(&e);
        if (len >= OWN_SEGMENT_MIN) {
            unsigned char *buf = malloc(len);
            if (!buf)
                return fail(b, "out of memory");
            int rc = newc_format(&e, buf) ? 0 : fail(b, "%s does not fit a newc record", it->name);
            if (rc == 0)
                rc = sink_flush_pending(s, b);
            if (rc == 0)
                rc = sink_segment(s, buf, len, true, b);
            free(buf);
            if (rc != 0)
                return -1;
            continue;
        }
        unsigned char *at = sink_reserve(s, len, b);
        if (!at)
            return -1;
        if (!newc_format(&e, at))
            return fail(b, "%s does not fit a newc record", it->name);
        s->plen += len;
    }
    unsigned char *at = sink_reserve(s, newc_trailer_size(), b);
    if (!at)
        return -1;
    s->plen += newc_format_trailer(at);
    return sink_flush_pending(s, b);
}

static void free_builder(struct builder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].name);
        free(b->items[i].data);
    }
    free(b->items);
}

bool initramfs_dest_climbs(const char *dest)
{
    for (const char *p = dest; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n + (p[n] == '/');
    }
    return false;
}

int initramfs_build(const struct initramfs_spec *spec, const char *out_path, struct initramfs_stats *stats,
                    char *err, size_t errlen)
{
    /* A ".." component would name a file outside the root when the archive is unpacked (GNU cpio warns of
     * such names; the kernel's own unpacker does not check). */
    for (size_t i = 0; i < spec->nadds; i++)
        if (initramfs_dest_climbs(spec->adds[i].dest)) {
            snprintf(err, errlen, "archive path %s has a '..' component", spec->adds[i].dest);
            return -1;
        }
    struct builder b = { .err = err, .errlen = errlen };
    int rc = spec->no_base ? 0 : add_base(&b, spec);
    if (rc == 0 && spec->overlay)
        rc = add_host_path(&b, spec->overlay, "");
    for (size_t i = 0; rc == 0 && i < spec->nadds; i++) {
        /* DEST ending in '/' is a folder: SRC goes into it under its own name (hellodrv.ko:/lib/modules/),
         * as cp does; without the slash DEST is the name itself. */
        const char *dest = spec->adds[i].dest, *src = spec->adds[i].src;
        size_t dl = strlen(dest), sl = strlen(src);
        while (sl > 1 && src[sl - 1] == '/')
            sl--;
        const char *base = src + sl;
        while (base > src && base[-1] != '/')
            base--;
        char *into = dl && dest[dl - 1] == '/' ? malloc(dl + (size_t)(src + sl - base) + 1) : NULL;
        if (into)
            snprintf(into, dl + (size_t)(src + sl - base) + 1, "%s%.*s", dest, (int)(src + sl - base), base);
        rc = add_host_path(&b, src, into ? into : dest);
        free(into);
    }
    for (size_t i = 0, n = b.n; rc == 0 && i < n; i++)
        rc = push_parents(&b, b.items[i].name);
    if (rc != 0) {
        free_builder(&b);
        return -1;
    }
    sort_and_dedupe(&b);

    size_t tlen = strlen(out_path) + 32;
    char *tmp = malloc(tlen);
    FILE *f = NULL;
    if (tmp) {
        snprintf(tmp, tlen, "%s.tmp.%ld", out_path, (long)getpid());
        f = fopen(tmp, "wb");
    }
    if (!f) {
        rc = fail(&b, "cannot create %s: %s", out_path, strerror(errno));
        free(tmp);
        free_builder(&b);
        return rc;
    }
    struct sink s = { .f = f };
    struct gzseg_stats gzstats = { 0 };
    if (spec->compress == INITRAMFS_GZIP && !(s.gz = gzseg_open(f, spec->level, spec->cache_dir, err, errlen)))
        rc = -1;
    if (rc == 0)
        rc = emit(&b, &s, spec->mtime);
    if (s.gz && gzseg_close(s.gz, &gzstats) != 0)
        rc = -1;
    long out_bytes = ftell(f);
    if (fclose(f) != 0 && rc == 0)
        rc = fail(&b, "write error on %s: %s", out_path, strerror(errno));
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = fail(&b, "cannot rename %s to %s: %s", tmp, out_path, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    if (rc == 0 && stats)
        *stats = (struct initramfs_stats){ .entries = (unsigned)b.n, .uncompressed_bytes = s.total,
                                           .output_bytes = (uint64_t)out_bytes,
                                           .cache_hits = gzstats.cache_hits, .cache_misses = gzstats.cache_misses };
    free(tmp);
    free(s.pending);
    free_builder(&b);
    return rc;
}
