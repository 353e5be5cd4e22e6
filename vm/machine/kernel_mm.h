/* What libklab's decoder of non-present entries (gdb/lib/swp.c) needs to know of a VM's kernel, found without
 * gdb: the shell's klab vtop and ptdump use it; the gdb package reads the same from DWARF. */
#ifndef KLAB_KERNEL_MM_H
#define KLAB_KERNEL_MM_H

#include "klab.h"

/* The version from vmlinux's linux_banner (else the image's), MAX_SWAPFILES from the size of swap_info in
 * vmlinux's symbol table (swap_info[MAX_SWAPFILES] of pointers), the config beside the image, and
 * MAX_PHYSMEM_BITS from libklab with the registers. What cannot be found stays 0 (unknown). vmlinux may be NULL. */
void kernel_mm_facts(const char *kernel, const char *vmlinux, const struct klab_mmu_regs *regs,
                     struct klab_kernel_mm *k);

#endif
