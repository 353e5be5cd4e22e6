/* Physical-memory sources behind one read interface. */
#define _GNU_SOURCE
#include "error_internal.h"
#include "physmem_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REGIONS 8

struct klab_physmem {
    klab_read_fn read;
    void *ctx;
    void (*close)(struct klab_physmem *m);
    /* RAM file source */
    const unsigned char *map;
    size_t map_len;
    int fd;               /* kept open for SEEK_DATA / SEEK_HOLE */
    struct klab_ram_region regions[MAX_REGIONS];
    size_t nregions;
};

/* Guest PA → file offset through the machine's RAM layout; a PA outside RAM is an error, never a wild read. */
const unsigned char *klab_physmem_view(const struct klab_physmem *m, uint64_t pa, size_t len)
{
    if (!m || !m->map)
        return NULL;
    for (size_t i = 0; i < m->nregions; i++) {
        const struct klab_ram_region *r = &m->regions[i];
        if (pa < r->gpa || pa - r->gpa >= r->size || len > r->size - (pa - r->gpa))
            continue;
        uint64_t off = r->file_offset + (pa - r->gpa);
        if (off > m->map_len || len > m->map_len - off)
            return NULL;
        return m->map + off;
    }
    return NULL;
}

/* How much of [pa, pa + len) from pa on is data, or is a hole of the RAM file (memory the guest never wrote:
 * zeros that reading through the mapping would allocate in the host, lseek(2) SEEK_DATA/SEEK_HOLE). */
size_t klab_physmem_extent(const struct klab_physmem *m, uint64_t pa, size_t len, bool *hole)
{
    *hole = false;
    if (!m || !m->map || m->fd < 0)
        return len;
    for (size_t i = 0; i < m->nregions; i++) {
        const struct klab_ram_region *r = &m->regions[i];
        if (pa < r->gpa || pa - r->gpa >= r->size)
            continue;
        if (len > r->size - (pa - r->gpa))   /* an extent answers for this region only */
            len = (size_t)(r->size - (pa - r->gpa));
        off_t off = (off_t)(r->file_offset + (pa - r->gpa));
        off_t data = lseek(m->fd, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)   /* no data after off: a hole to the end of the file */
            data = (off_t)m->map_len;
        if (data < 0)
            return len;
        if (data > off) {
            *hole = true;
            return (uint64_t)(data - off) < len ? (size_t)(data - off) : len;
        }
        off_t end = lseek(m->fd, off, SEEK_HOLE);
        if (end <= off)
            return len;
        return (uint64_t)(end - off) < len ? (size_t)(end - off) : len;
    }
    return len;
}

static int ramfile_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    const unsigned char *p = klab_physmem_view(ctx, pa, len);
    if (!p)
        return -1;
    memcpy(buf, p, len);
    return 0;
}

struct klab_physmem *klab_physmem_open_ramfile(const char *path, const struct klab_ram_region *regions,
                                               size_t nregions, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    if (nregions == 0 || nregions > MAX_REGIONS) {
        snprintf(err, errlen, "a RAM layout needs 1..%d regions", MAX_REGIONS);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open RAM file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        snprintf(err, errlen, "RAM file %s is empty or unreadable", path);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "cannot map RAM file %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct klab_physmem *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        munmap(map, (size_t)st.st_size);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->read = ramfile_read;
    m->ctx = m;
    m->fd = fd;
    m->map = map;
    m->map_len = (size_t)st.st_size;
    memcpy(m->regions, regions, nregions * sizeof *regions);
    m->nregions = nregions;
    return m;
}

struct klab_physmem *klab_physmem_from_callback(klab_read_fn read, void *ctx)
{
    struct klab_physmem *m = calloc(1, sizeof *m);
    if (m) {
        m->read = read;
        m->ctx = ctx;
        m->fd = -1;
    }
    return m;
}

struct klab_physmem *klab_physmem_with_close(klab_read_fn read, void *ctx, void (*close)(struct klab_physmem *m))
{
    struct klab_physmem *m = klab_physmem_from_callback(read, ctx);
    if (m)
        m->close = close;
    return m;
}

void *klab_physmem_ctx(const struct klab_physmem *m)
{
    return m ? m->ctx : NULL;
}

void (*klab_physmem_close_fn(const struct klab_physmem *m))(struct klab_physmem *)
{
    return m ? m->close : NULL;
}

int klab_physmem_read(struct klab_physmem *m, uint64_t pa, void *buf, size_t len)
{
    return m && m->read ? m->read(m->ctx, pa, buf, len) : -1;
}

void klab_physmem_close(struct klab_physmem *m)
{
    if (!m)
        return;
    if (m->close)
        m->close(m);
    if (m->map)
        munmap((void *)m->map, m->map_len);
    if (m->fd >= 0)
        close(m->fd);
    free(m);
}

/* The gdb stub in physical mode. QEMU 7.2 answers at most 2048 bytes per memory request; the RSP client
 * splits reads accordingly. */
struct stub_source {
    struct klab_rsp *rsp;
    bool was_physical;
};

static int stub_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    const struct stub_source *s = ctx;
    return klab_rsp_read_memory(s->rsp, pa, buf, len) == 0 ? 0 : -1;
}

static void stub_close(struct klab_physmem *m)
{
    struct stub_source *s = m->ctx;
    if (!s->was_physical)
        klab_rsp_set_physical(s->rsp, false);
    free(s);
}

struct klab_physmem *klab_physmem_from_rsp(struct klab_rsp *r, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct stub_source *s = calloc(1, sizeof *s);
    struct klab_physmem *m = calloc(1, sizeof *m);
    if (!s || !m) {
        free(s);
        free(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->rsp = r;
    if (klab_rsp_get_physical(r, &s->was_physical) != 0 || (!s->was_physical && klab_rsp_set_physical(r, true) != 0)) {
        snprintf(err, errlen, "gdb stub has no physical-memory mode (Qqemu.PhyMemMode): %s", klab_rsp_error(r));
        free(s);
        free(m);
        return NULL;
    }
    m->read = stub_read;
    m->ctx = s;
    m->fd = -1;
    m->close = stub_close;
    return m;
}
