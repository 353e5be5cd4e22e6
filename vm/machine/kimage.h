/* What a kernel file is: a bootable image (x86 bzImage, arm64 Image, gzip'd arm64 Image) or a vmlinux ELF, for
 * which architecture, and which "Linux version" banner it carries, so that klab can refuse a wrong-arch
 * kernel or an image and vmlinux that were not built together. */
#ifndef KLAB_KIMAGE_H
#define KLAB_KIMAGE_H

#include "machine/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kimage_info {
    const struct machine_profile *profile;
    bool gzipped;
    unsigned page_shift;   /* arm64: the page size the Image header declares (12/14/16), 0 if unspecified */
    /* The release ("6.1.0-56-cloud-amd64") and UTS version ("#1 SMP PREEMPT_DYNAMIC Debian ..."), when asked. */
    char release[128];
    char version[256];
};

/* Bootable image on disk. want_banner costs a full decompression of a gzip'd image. 0 or -1 (err set). */
int kimage_inspect(const char *path, bool want_banner, struct kimage_info *out, char *err, size_t errlen);

/* Same on an image already in memory (uncompressed or gzip), for tests. */
int kimage_inspect_buffer(const unsigned char *buf, size_t len, bool want_banner, struct kimage_info *out,
                          char *err, size_t errlen);

/* A vmlinux: architecture from e_machine, banner from the linux_banner symbol. 0 or -1 (err set). */
int vmlinux_inspect(const char *path, struct kimage_info *out, char *err, size_t errlen);

/* A symbol's link-time address from vmlinux's ELF symbol table. 0 or -1 (err set). */
int vmlinux_symbol_address(const char *path, const char *name, uint64_t *addr, char *err, size_t errlen);
/* The same with the symbol's size (st_size: an array's bytes). */
int vmlinux_symbol(const char *path, const char *name, uint64_t *addr, uint64_t *size, char *err, size_t errlen);

/* Whether an x86_64 vmlinux has a PVH entry point: an ELF note "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18),
 * as arch/x86/platform/pvh/head.S emits with CONFIG_PVH. QEMU then boots the ELF itself (hw/i386/x86-common.c,
 * the pvh.bin option ROM) without the bzImage's decompressor. 1 found (entry set), 0 none, -1 not a 64-bit ELF
 * or a malformed one (err set). The buffer is any bytes: each header and note is bounds-checked. */
int elf_pvh_entry(const unsigned char *buf, size_t len, uint32_t *entry, char *err, size_t errlen);
/* The same on a file. */
int vmlinux_pvh_entry(const char *path, uint32_t *entry, char *err, size_t errlen);

/* Splits "Linux version 6.1.0-x (...) (...) #1 SMP ..." or the bzImage form "6.1.0-x (...) #1 SMP ..." into
 * release and version. false if it does not look like a banner. */
bool kimage_parse_banner(const char *banner, size_t len, struct kimage_info *out);

#endif
