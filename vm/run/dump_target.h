/* A dump file as the target of klab vtop / ptdump (--dump): its RAM through libklab's ELF-core source, the
 * kernel's translation registers from its VMCOREINFO, and, for symbols, a vmlinux checked against the dump's
 * OSRELEASE and shifted by its KERNELOFFSET (a KASLR dump's symbols are not at their link addresses). */
#ifndef KLAB_DUMP_TARGET_H
#define KLAB_DUMP_TARGET_H

#include "run/stub.h"

/* 0, or -1 after one line. vmlinux may be NULL (addresses in hex only). cpu >= 0: that CPU's own tables
 * (x86_64: its CR3 and CR4 from QEMU's note, the user half of the task it ran included) instead of the
 * kernel's. */
int dump_target_open(const char *path, const char *vmlinux, int cpu, struct vm_target *t);

#endif
