/* A virtual view for the dump readers that need one: Debian 12's drgn (0.0.22) translates a kernel address of
 * an ELF core through the page tables, but reads the top table itself (swapper_pg_dir, a kernel-image address)
 * only through a PT_LOAD whose p_vaddr covers it; QEMU's dumps have such segments only when QEMU walks the
 * guest's tables (-p), which it cannot do for arm64 (target/arm has no memory-mapping hook). klab adds one
 * PT_LOAD, swapper_pg_dir's page at its virtual address, computed from the dump's own VMCOREINFO:
 *   arm64: PA = SYMBOL(swapper_pg_dir) - NUMBER(kimage_voffset)   (arch/arm64/include/asm/memory.h)
 *   x86_64: PA = SYMBOL(swapper_pg_dir) - __START_KERNEL_map + NUMBER(phys_base)   (asm/page_64.h)
 * The segment reuses the bytes of the PT_LOAD that holds that PA. The new program header table goes right
 * after the ELF header when it fits there without touching any segment's or section's bytes (QEMU's section
 * header table, in that place, moves to the end of the file): crash reads [0, the lowest PT_LOAD offset) as the
 * header, wants the program headers and the notes inside it, and gives up on a dump whose table lies further
 * ("PHdr to far into file", netdump.c is_netdump and resize_elf_header). Where it does not fit, the table goes
 * at the end of the file (e_phoff may point anywhere, System V gABI): drgn reads that, crash does not. */
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

/* Where the table of the program headers goes: a span of the file that some reader needs kept (a segment's
 * or a section's bytes). */
struct dump_span {
    uint64_t off, len;
};
struct dump_table_place {
    uint64_t phoff;   /* the new program header table */
    uint64_t shoff;   /* the section header table: as it was, or moved to the end */
};
/* The place of a program header table of table_len bytes in a file of file_end bytes whose ELF header is
 * ehdr_len long, whose section header table is [shoff, shoff + sh_len) (sh_len 0: none) and whose spans
 * keep[0..nkeep) must not be written: right after the ELF header if it fits there clear of them, the section
 * header table moved to the end when it is in the way; else at the end. Pure. */
struct dump_table_place dump_plan_table_place(uint64_t ehdr_len, uint64_t table_len, uint64_t shoff, uint64_t sh_len,
                                              const struct dump_span *keep, size_t nkeep, uint64_t file_end);

/* Adds the view to the ELF core at path (opened without following links): 0 (also when it already has a
 * kernel virtual address), or -1 with err filled. */
int dump_add_pgd_view(const char *path, char *err, size_t errlen);

#endif
