/* A physical-memory source over an ELF core dump (QEMU's dump-guest-memory, with or without -p; a kdump
 * /proc/vmcore saved by makedumpfile -E): each PT_LOAD's p_paddr..+p_filesz is guest RAM at p_offset
 * (System V gABI, "Program Header"; QEMU dump/dump.c write_elf_load). A paging dump has one segment per
 * mapping, so a page of RAM can appear more than once (its linear-map and image aliases): the same bytes,
 * kept once. The file is someone else's: every header and segment is checked against the file's size, and
 * a PA no segment holds is a read error ("not in the dump"), never a read elsewhere. */
#define _GNU_SOURCE
#include "dumpfile_internal.h"
#include "error_internal.h"
#include "physmem_internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int by_pa(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->pa < y->pa ? -1 : x->pa > y->pa;
}

/* Sorted and without overlaps, so that one binary search finds the only segment holding a PA: a segment that
 * starts inside the previous one keeps only its part past the previous end. */
static void flatten(struct dumpfile *c)
{
    qsort(c->segs, c->nseg, sizeof *c->segs, by_pa);
    size_t n = 0;
    for (size_t i = 0; i < c->nseg; i++) {
        struct seg s = c->segs[i];
        if (n) {
            const struct seg *prev = &c->segs[n - 1];
            uint64_t end = prev->pa + prev->size;
            if (s.pa + s.size <= end)
                continue;
            if (s.pa < end) {
                s.off += end - s.pa;
                s.size -= end - s.pa;
                s.pa = end;
            }
        }
        c->segs[n++] = s;
    }
    c->nseg = n;
}

static bool note_named(const unsigned char *name, uint32_t namesz, const char *want)
{
    size_t n = strlen(want);
    return namesz >= n && !memcmp(name, want, n) && (namesz == n || name[n] == 0);
}

/* The notes, each bounds-checked: VMCOREINFO ("VMCOREINFO", any type; kernel/vmcore_info.c and QEMU's
 * vmcoreinfo device both name it so), and per CPU the NT_PRSTATUS ("CORE") and QEMU's own CPU state ("QEMU",
 * dump/dump.c), one of each per CPU in CPU order. */
void dump_read_notes(struct dumpfile *c, const unsigned char *p, uint64_t len)
{
    uint64_t off = 0;
    while (len - off >= 12) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        memcpy(&type, p + off + 8, 4);
        uint64_t name = off + 12, desc = name + ((uint64_t)namesz + 3) / 4 * 4;
        uint64_t next = desc + ((uint64_t)descsz + 3) / 4 * 4;
        if (next > len)
            return;
        if (note_named(p + name, namesz, "VMCOREINFO") && !c->info.vmcoreinfo) {
            c->info.vmcoreinfo = (const char *)p + desc;
            c->info.vmcoreinfo_len = descsz;
        } else if (note_named(p + name, namesz, "CORE") && type == NT_PRSTATUS && c->info.ncpus < DUMP_MAX_CPUS) {
            c->prstatus[c->info.ncpus++] = (struct note_ref){p + desc, descsz};
        } else if (note_named(p + name, namesz, "QEMU") && c->nqemu < DUMP_MAX_CPUS) {
            c->qemu[c->nqemu++] = (struct note_ref){p + desc, descsz};
        }
        off = next;
    }
}

static int parse(struct dumpfile *c, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    /* makedumpfile's two containers: the kdump-compressed header ("KDUMP   ", KDUMP_SIGNATURE) and the
     * flattened stream QEMU writes ("makedumpfile", MAKEDUMPFILE_SIGNATURE): physmem_kdump.c */
    if ((c->len >= 8 && !memcmp(c->map, "KDUMP   ", 8)) || (c->len >= 12 && !memcmp(c->map, "makedumpfile", 12)))
        return kdump_parse(c, err, errlen);
    if (c->len < sizeof eh || memcmp(c->map, ELFMAG, SELFMAG)) {
        snprintf(err, errlen, "not an ELF core dump");
        return -1;
    }
    memcpy(&eh, c->map, sizeof eh);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_CORE) {
        snprintf(err, errlen, "not a 64-bit little-endian ELF core (e_type %u)", eh.e_type);
        return -1;
    }
    if (eh.e_machine == EM_X86_64)
        c->info.arch = KLAB_ARCH_X86_64;
    else if (eh.e_machine == EM_AARCH64)
        c->info.arch = KLAB_ARCH_ARM64;
    else {
        snprintf(err, errlen, "an ELF core for machine %u, neither x86-64 nor AArch64", eh.e_machine);
        return -1;
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum == PN_XNUM || eh.e_phoff > c->len ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > c->len - eh.e_phoff) {
        snprintf(err, errlen, "the dump's program headers lie outside the file (truncated?)");
        return -1;
    }
    c->segs = calloc(eh.e_phnum, sizeof *c->segs);
    if (!c->segs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, c->map + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_offset > c->len || ph.p_filesz > c->len - ph.p_offset) {
            snprintf(err, errlen, "segment %u (%#llx bytes at offset %#llx) runs past the end of the file "
                     "(truncated?)", i, (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_offset);
            return -1;
        }
        if (ph.p_type == PT_NOTE)
            dump_read_notes(c, c->map + ph.p_offset, ph.p_filesz);
        if (ph.p_type == PT_LOAD && ph.p_filesz && ph.p_paddr + ph.p_filesz > ph.p_paddr)
            c->segs[c->nseg++] = (struct seg){ph.p_paddr, ph.p_filesz, ph.p_offset};
    }
    if (!c->nseg) {
        snprintf(err, errlen, "the dump holds no memory (no PT_LOAD with bytes in the file)");
        return -1;
    }
    flatten(c);
    for (size_t i = 0; i < c->nseg; i++)
        c->info.ram_bytes += c->segs[i].size;
    return 0;
}

static const struct seg *seg_of(const struct dumpfile *c, uint64_t pa)
{
    size_t lo = 0, hi = c->nseg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct seg *s = &c->segs[mid];
        if (pa < s->pa)
            hi = mid;
        else if (pa - s->pa >= s->size)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

static int elfcore_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    struct dumpfile *c = ctx;
    if (c->kdump)
        return kdump_read(c, pa, buf, len);
    unsigned char *out = buf;
    while (len) {
        const struct seg *s = seg_of(c, pa);
        if (!s)
            return -1;   /* not in the dump: not RAM, or RAM the dump left out */
        uint64_t in = s->size - (pa - s->pa);
        size_t n = in < len ? (size_t)in : len;
        memcpy(out, c->map + s->off + (pa - s->pa), n);
        out += n, pa += n, len -= n;
    }
    return 0;
}

static void elfcore_free(struct dumpfile *c)
{
    if (c->map && c->map != MAP_FAILED)
        munmap((void *)c->map, c->len);
    free(c->segs);
    kdump_free(c);
    free(c);
}

static void elfcore_close(struct klab_physmem *m)
{
    elfcore_free(klab_physmem_ctx(m));
}

/* A dump over bytes the caller owns (klab_dump_from_buffer): nothing to unmap. */
static void buffer_close(struct klab_physmem *m)
{
    struct dumpfile *c = klab_physmem_ctx(m);
    free(c->segs);
    kdump_free(c);
    free(c);
}

struct klab_physmem *klab_physmem_open_elfcore(const char *path, struct klab_elfcore_info *info,
                                               struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    /* O_NOFOLLOW: a dump path is the user's to name, but a link planted in its place is not followed */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open dump %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    struct dumpfile *c = calloc(1, sizeof *c);
    if (!c || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        snprintf(err, errlen, "dump %s is not a regular, non-empty file", path);
        free(c);
        close(fd);
        return NULL;
    }
    c->len = (size_t)st.st_size;
    c->map = mmap(NULL, c->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (c->map == MAP_FAILED) {
        snprintf(err, errlen, "cannot map dump %s: %s", path, strerror(errno));
        elfcore_free(c);
        return NULL;
    }
    char why[200];
    if (parse(c, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        elfcore_free(c);
        return NULL;
    }
    struct klab_physmem *m = klab_physmem_with_close(elfcore_read, c, elfcore_close);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        elfcore_free(c);
        return NULL;
    }
    if (info)
        *info = c->info;
    return m;
}

struct klab_physmem *klab_dump_from_buffer(const unsigned char *buf, size_t len, struct klab_elfcore_info *info,
                                           char *err, size_t errlen)
{
    struct dumpfile *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->map = buf;
    c->len = len;
    struct klab_physmem *m = parse(c, err, errlen) == 0 ? klab_physmem_with_close(elfcore_read, c, buffer_close) : NULL;
    if (!m) {
        free(c->segs);
        kdump_free(c);
        free(c);
        return NULL;
    }
    if (info)
        *info = c->info;
    return m;
}

int klab_elfcore_register(const struct klab_physmem *m, unsigned cpu, const char *name, uint64_t *value,
                          struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    const struct dumpfile *c = klab_physmem_ctx(m);
    if (!c || !m || (klab_physmem_close_fn(m) != elfcore_close && klab_physmem_close_fn(m) != buffer_close)) {
        if (err)
            snprintf(err, errlen, "not a dump");
        return -1;
    }
    if (cpu >= c->info.ncpus) {
        if (err)
            snprintf(err, errlen, "the dump has no CPU %u (it has %u)", cpu, c->info.ncpus);
        return -1;
    }
    const struct klab_core_reg *r = klab_core_reg(c->info.arch, name);
    if (!r) {
        if (err)
            snprintf(err, errlen, "not in the dump's notes: QEMU writes no %s for %s", name,
                     c->info.arch == KLAB_ARCH_X86_64 ? "x86_64" : "arm64");
        return -1;
    }
    const struct note_ref *n = r->qemu_note ? (cpu < c->nqemu ? &c->qemu[cpu] : NULL) : &c->prstatus[cpu];
    if (!n || r->offset + 8 > n->size) {
        if (err)
            snprintf(err, errlen, "the dump's notes for CPU %u do not hold %s", cpu, name);
        return -1;
    }
    memcpy(value, n->p + r->offset, 8);
    if (r->width == 4)
        *value &= 0xffffffffull;
    return 0;
}
