/* A virtual view for the dump readers that need one: Debian 12's drgn (0.0.22) translates a kernel address of
 * an ELF core through the page tables, but reads the top table itself (swapper_pg_dir, a kernel-image address)
 * only through a PT_LOAD whose p_vaddr covers it; QEMU's dumps have such segments only when QEMU walks the
 * guest's tables (-p), which it cannot do for arm64 (target/arm has no memory-mapping hook). klab adds one
 * PT_LOAD, swapper_pg_dir's page at its virtual address, computed from the dump's own VMCOREINFO:
 *   arm64: PA = SYMBOL(swapper_pg_dir) - NUMBER(kimage_voffset)   (arch/arm64/include/asm/memory.h)
 *   x86_64: PA = SYMBOL(swapper_pg_dir) - __START_KERNEL_map + NUMBER(phys_base)   (asm/page_64.h)
 * The new program header table goes at the end of the file (e_phoff may point anywhere, System V gABI), so
 * nothing is moved; the segment reuses the bytes of the PT_LOAD that holds that PA. */
#ifndef KLAB_DUMP_VADDR_H
#define KLAB_DUMP_VADDR_H

#include <stddef.h>
#include <stdint.h>

/* n bytes at p as a little-endian number (the ELF64 LSB fields of both dump parsers). */
uint64_t dump_le(const unsigned char *p, int n);

/* The planned segment, from a VMCOREINFO text and the ELF machine (62 x86-64, 183 AArch64): 0, or -1 with err
 * filled. Pure: no I/O. */
struct dump_pgd_view {
    uint64_t vaddr, paddr, size;
};
int dump_plan_pgd_view(const char *vmcoreinfo, size_t len, unsigned machine, struct dump_pgd_view *out, char *err,
                       size_t errlen);

/* Adds the view to the ELF core at path (opened without following links): 0 (also when it already has a
 * kernel virtual address), or -1 with err filled. */
int dump_add_pgd_view(const char *path, char *err, size_t errlen);

#endif
