/* What libklab's own code may ask of a physical-memory source beyond klab_physmem_read. */
#ifndef LIBKLAB_PHYSMEM_INTERNAL_H
#define LIBKLAB_PHYSMEM_INTERNAL_H

#include "klab.h"

#include <stdbool.h>
#include <stddef.h>

/* The bytes [pa, pa + len) in place when the source is a mapped RAM file and they lie in one RAM region,
 * else NULL (then read them with klab_physmem_read). Valid until the source is closed. */
const unsigned char *klab_physmem_view(const struct klab_physmem *m, uint64_t pa, size_t len);

/* From pa on, how many of the len bytes are data, or (hole set) a hole of the RAM file: memory the guest never
 * wrote, all zeros, which reading through the mapping would make the host allocate. Other sources: len, data. */
size_t klab_physmem_extent(const struct klab_physmem *m, uint64_t pa, size_t len, bool *hole);

/* A source over read(ctx, ...) whose close(m) frees ctx; the ctx back from a source made so. */
struct klab_physmem *klab_physmem_with_close(klab_read_fn read, void *ctx, void (*close)(struct klab_physmem *m));
void *klab_physmem_ctx(const struct klab_physmem *m);
void (*klab_physmem_close_fn(const struct klab_physmem *m))(struct klab_physmem *);

/* Where a register lies in a dump's per-CPU notes (core_regs.c, one table per arch): its byte offset in the
 * NT_PRSTATUS descriptor, or with qemu_note in QEMU's own CPU-state note; width 8 or 4. */
struct klab_core_reg {
    const char *name;
    unsigned offset, width;
    bool qemu_note;
};
const struct klab_core_reg *klab_core_reg(enum klab_arch arch, const char *name);

/* A dump (ELF or kdump-compressed) over bytes in memory, with the checks klab_physmem_open_elfcore makes (fuzz
 * target, unit tests): the source, or NULL with err set. buf must outlive it; info->vmcoreinfo is valid until
 * it is closed. */
struct klab_physmem *klab_dump_from_buffer(const unsigned char *buf, size_t len, struct klab_elfcore_info *info,
                                           char *err, size_t errlen);

#endif
