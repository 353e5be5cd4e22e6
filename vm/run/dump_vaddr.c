/* vm/run/dump_vaddr.h. */
#define _GNU_SOURCE
#include "run/dump_vaddr.h"
#include "klab.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_KERNEL_MAP 0xffffffff80000000ull   /* x86_64 __START_KERNEL_map */
#define EM_X86_64 62
#define EM_AARCH64 183
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define SHDR_SIZE 64
#define MAX_PHDRS 4096

int dump_plan_pgd_view(const char *vmcoreinfo, size_t len, unsigned machine, struct dump_pgd_view *out, char *err,
                       size_t errlen)
{
    uint64_t pgd, page, off;
    if (!klab_vmcoreinfo_value(vmcoreinfo, len, "SYMBOL(swapper_pg_dir)=", 16, &pgd) ||
        !klab_vmcoreinfo_value(vmcoreinfo, len, "PAGESIZE=", 10, &page) || page < 4096 || page > (1u << 16) ||
        (page & (page - 1))) {
        snprintf(err, errlen, "VMCOREINFO has no swapper_pg_dir or PAGESIZE");
        return -1;
    }
    if (machine == EM_AARCH64) {
        if (!klab_vmcoreinfo_value(vmcoreinfo, len, "NUMBER(kimage_voffset)=", 16, &off)) {
            snprintf(err, errlen, "VMCOREINFO has no kimage_voffset");
            return -1;
        }
        out->paddr = pgd - off;
    } else if (machine == EM_X86_64) {
        if (!klab_vmcoreinfo_value(vmcoreinfo, len, "NUMBER(phys_base)=", 10, &off) || pgd < START_KERNEL_MAP) {
            snprintf(err, errlen, "VMCOREINFO has no phys_base, or swapper_pg_dir is not in the kernel image");
            return -1;
        }
        out->paddr = pgd - START_KERNEL_MAP + off;
    } else {
        snprintf(err, errlen, "ELF machine %u is neither x86-64 nor AArch64", machine);
        return -1;
    }
    out->vaddr = pgd & ~(page - 1);
    out->paddr &= ~(page - 1);
    out->size = page;
    return 0;
}

uint64_t dump_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wr(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t align8(uint64_t v)
{
    return (v + 7) & ~7ull;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

struct dump_table_place dump_plan_table_place(uint64_t ehdr_len, uint64_t table_len, uint64_t shoff, uint64_t sh_len,
                                              const struct dump_span *keep, size_t nkeep, uint64_t file_end)
{
    struct dump_table_place at = { align8(ehdr_len), shoff };
    bool clear = at.phoff + table_len > at.phoff;
    for (size_t i = 0; i < nkeep && clear; i++)
        clear = !overlaps(at.phoff, table_len, keep[i].off, keep[i].len);
    if (!clear)
        at.phoff = align8(file_end);
    else if (overlaps(at.phoff, table_len, shoff, sh_len))
        at.shoff = align8(file_end);
    return at;
}

/* The VMCOREINFO note's text in the PT_NOTE segment (ELF notes: namesz, descsz, type, name, desc, each padded
 * to 4 bytes), malloc'ed, or NULL. */
static char *read_vmcoreinfo(int fd, const unsigned char *ph, size_t *len)
{
    uint64_t off = dump_le(ph + 8, 8), size = dump_le(ph + 32, 8);
    if (size > (1u << 24))
        return NULL;
    unsigned char *notes = malloc(size ? size : 1);
    if (!notes || pread(fd, notes, size, (off_t)off) != (ssize_t)size) {
        free(notes);
        return NULL;
    }
    char *text = NULL;
    for (uint64_t p = 0; p + 12 <= size;) {
        uint64_t namesz = dump_le(notes + p, 4), descsz = dump_le(notes + p + 4, 4);
        uint64_t name = p + 12, desc = name + ((namesz + 3) & ~3ull), next = desc + ((descsz + 3) & ~3ull);
        if (next > size || next <= p)
            break;
        if (namesz == 11 && !memcmp(notes + name, "VMCOREINFO", 10)) {
            text = malloc(descsz + 1);
            memcpy(text, notes + desc, descsz);
            text[descsz] = '\0';
            *len = descsz;
            break;
        }
        p = next;
    }
    free(notes);
    return text;
}

/* The spans of the file that the segments' and the sections' bytes take: kept as they are. n, or -1. */
static long kept_spans(int fd, const unsigned char *eh, const unsigned char *ph, uint64_t nph, unsigned char **sh,
                       uint64_t *sh_len, struct dump_span **out)
{
    uint64_t shoff = dump_le(eh + 40, 8), shentsize = dump_le(eh + 58, 2), shnum = dump_le(eh + 60, 2);
    *sh = NULL;
    *sh_len = 0;
    if (shoff && shnum) {
        if (shentsize != SHDR_SIZE || shnum > MAX_PHDRS)
            return -1;
        *sh_len = shnum * SHDR_SIZE;
        *sh = malloc(*sh_len);
        if (!*sh || pread(fd, *sh, *sh_len, (off_t)shoff) != (ssize_t)*sh_len)
            return -1;
    }
    struct dump_span *k = calloc(nph + shnum + 1, sizeof *k);
    long n = 0;
    for (uint64_t i = 0; k && i < nph; i++) {
        const unsigned char *p = ph + i * PHDR_SIZE;
        uint64_t off = dump_le(p + 8, 8), len = dump_le(p + 32, 8);
        if (off)   /* a segment of no bytes still marks where the header ends for crash: one byte */
            k[n++] = (struct dump_span){ off, len ? len : 1 };
    }
    for (uint64_t i = 0; k && *sh && i < shnum; i++) {
        const unsigned char *p = *sh + i * SHDR_SIZE;
        if (dump_le(p + 4, 4) != 8 /* SHT_NOBITS */ && dump_le(p + 32, 8))
            k[n++] = (struct dump_span){ dump_le(p + 24, 8), dump_le(p + 32, 8) };
    }
    *out = k;
    return k ? n : -1;
}

/* The nph program headers at ph written where dump_plan_table_place says (the section headers moved first if
 * they are in the way), then the ELF header eh pointing at them. 0, or -1 with err filled. */
static int place_table(int fd, unsigned char *eh, const unsigned char *ph, uint64_t nph, uint64_t file_end, char *err,
                       size_t errlen)
{
    unsigned char *sh = NULL;
    uint64_t sh_len = 0;
    struct dump_span *keep = NULL;
    long nkeep = kept_spans(fd, eh, ph, nph - 1, &sh, &sh_len, &keep);
    int rc = -1;
    if (nkeep < 0) {
        snprintf(err, errlen, "unexpected section headers");
        goto out;
    }
    uint64_t shoff = dump_le(eh + 40, 8), len = nph * PHDR_SIZE;
    struct dump_table_place at = dump_plan_table_place(EHDR_SIZE, len, shoff, sh_len, keep, (size_t)nkeep,
                                                       file_end);
    if (at.shoff != shoff && pwrite(fd, sh, sh_len, (off_t)at.shoff) != (ssize_t)sh_len) {
        snprintf(err, errlen, "cannot move the section headers: %s", strerror(errno));
        goto out;
    }
    if (pwrite(fd, ph, len, (off_t)at.phoff) != (ssize_t)len) {
        snprintf(err, errlen, "cannot write the program headers: %s", strerror(errno));
        goto out;
    }
    wr(eh + 32, at.phoff, 8);
    wr(eh + 40, at.shoff, 8);
    wr(eh + 56, nph, 2);
    if (pwrite(fd, eh, EHDR_SIZE, 0) != EHDR_SIZE) {
        snprintf(err, errlen, "cannot update the ELF header: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(sh);
    free(keep);
    return rc;
}

int dump_add_pgd_view(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    unsigned char eh[64];
    if (fd < 0 || pread(fd, eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh, "\177ELF", 4) || eh[4] != 2) {
        snprintf(err, errlen, "not a 64-bit ELF core");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t phoff = dump_le(eh + 32, 8), entsize = dump_le(eh + 54, 2), num = dump_le(eh + 56, 2);
    unsigned machine = (unsigned)dump_le(eh + 18, 2);
    int rc = -1;
    unsigned char *ph = NULL;
    char *vmci = NULL;
    if (entsize != PHDR_SIZE || num == 0 || num >= MAX_PHDRS) {
        snprintf(err, errlen, "unexpected program headers (%" PRIu64 " of %" PRIu64 " bytes)", num, entsize);
        goto out;
    }
    ph = malloc((num + 1) * PHDR_SIZE);
    if (!ph || pread(fd, ph, num * PHDR_SIZE, (off_t)phoff) != (ssize_t)(num * PHDR_SIZE)) {
        snprintf(err, errlen, "cannot read the program headers");
        goto out;
    }
    size_t vlen = 0;
    for (uint64_t i = 0; i < num && !vmci; i++)
        if (dump_le(ph + i * PHDR_SIZE, 4) == 4)   /* PT_NOTE */
            vmci = read_vmcoreinfo(fd, ph + i * PHDR_SIZE, &vlen);
    for (uint64_t i = 0; i < num; i++)
        if (dump_le(ph + i * PHDR_SIZE, 4) == 1 && dump_le(ph + i * PHDR_SIZE + 16, 8) >> 63) {
            rc = 0;   /* already has a kernel virtual address (QEMU's paging dump) */
            goto out;
        }
    struct dump_pgd_view v;
    if (!vmci) {
        snprintf(err, errlen, "no VMCOREINFO note");
        goto out;
    }
    if (dump_plan_pgd_view(vmci, vlen, machine, &v, err, errlen) != 0)
        goto out;
    uint64_t file_off = 0;
    bool found = false;
    for (uint64_t i = 0; i < num && !found; i++) {
        const unsigned char *p = ph + i * PHDR_SIZE;
        uint64_t pa = dump_le(p + 24, 8), sz = dump_le(p + 32, 8);
        if (dump_le(p, 4) == 1 && v.paddr >= pa && v.paddr - pa <= sz && sz - (v.paddr - pa) >= v.size) {
            file_off = dump_le(p + 8, 8) + (v.paddr - pa);
            found = true;
        }
    }
    if (!found) {
        snprintf(err, errlen, "no segment holds swapper_pg_dir's PA %#" PRIx64, v.paddr);
        goto out;
    }
    unsigned char *n = ph + num * PHDR_SIZE;
    memset(n, 0, PHDR_SIZE);
    wr(n, 1, 4);                 /* PT_LOAD */
    wr(n + 4, 4, 4);             /* PF_R */
    wr(n + 8, file_off, 8);
    wr(n + 16, v.vaddr, 8);
    wr(n + 24, v.paddr, 8);
    wr(n + 32, v.size, 8);
    wr(n + 40, v.size, 8);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat the dump");
        goto out;
    }
    rc = place_table(fd, eh, ph, num + 1, (uint64_t)st.st_size, err, errlen);
    goto out;
out:
    free(ph);
    free(vmci);
    close(fd);
    return rc;
}
