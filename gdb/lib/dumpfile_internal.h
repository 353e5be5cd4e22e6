/* What the two dump readers share: the ELF core reader (physmem_elfcore.c) and the kdump-compressed one
 * (physmem_kdump.c) fill one struct dumpfile, so notes, registers and the open/close path are one code. */
#ifndef LIBKLAB_DUMPFILE_INTERNAL_H
#define LIBKLAB_DUMPFILE_INTERNAL_H

#include "klab.h"

#include <stddef.h>
#include <stdint.h>

#define DUMP_MAX_CPUS 256

/* A note's descriptor, in the mapped file or in a copy the dump owns. */
struct note_ref {
    const unsigned char *p;
    uint64_t size;
};

struct seg {
    uint64_t pa, size, off;
};

struct kdump;

struct dumpfile {
    struct klab_elfcore_info info;
    const unsigned char *map;     /* the whole file, mapped read-only */
    size_t len;
    struct seg *segs;             /* ELF: PT_LOAD segments by PA, sorted, without overlaps */
    size_t nseg;
    struct note_ref prstatus[DUMP_MAX_CPUS], qemu[DUMP_MAX_CPUS];   /* per CPU, in the order QEMU writes */
    unsigned nqemu;
    struct kdump *kdump;          /* kdump-compressed: its page index and decompressor (NULL for ELF) */
};

/* The ELF notes in [p, p + len): VMCOREINFO, and per CPU NT_PRSTATUS ("CORE") and QEMU's CPU state ("QEMU").
 * Each note is bounds-checked; a note that runs past len ends the scan. */
void dump_read_notes(struct dumpfile *c, const unsigned char *p, uint64_t len);

/* kdump-compressed (physmem_kdump.c): the header, bitmap and notes of c->map checked and indexed: 0, or -1
 * with err set. kdump_read reads guest PAs; kdump_free releases what kdump_parse made. */
int kdump_parse(struct dumpfile *c, char *err, size_t errlen);
int kdump_read(struct dumpfile *c, uint64_t pa, void *buf, size_t len);
void kdump_free(struct dumpfile *c);

#endif
