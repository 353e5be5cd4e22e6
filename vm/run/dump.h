/* klab dump: a VM's memory into a file crash, drgn and libklab read, through QEMU's dump-guest-memory (HMP,
 * detached, polled with `info dump`). QEMU pauses a running guest for the dump and resumes it afterwards
 * (dump/dump.c dump_init/dump_cleanup). The file is written into a private folder beside the target and
 * then moved into place without replacing anything (renameat2 RENAME_NOREPLACE), so no other user's link
 * or file at the target is ever followed or overwritten. */
#ifndef KLAB_DUMP_H
#define KLAB_DUMP_H

#include "run/runstate.h"

#include <stdbool.h>
#include <stddef.h>

enum dump_format { DUMP_ELF, DUMP_ELF_PAGING, DUMP_KDUMP_ZLIB, DUMP_KDUMP_LZO, DUMP_KDUMP_SNAPPY, DUMP_NFORMATS };

/* "elf", "kdump-zlib", ... → format: 0, or -1 (unknown). */
int dump_format_parse(const char *name, enum dump_format *f);
const char *dump_format_name(enum dump_format f);
/* The HMP dump-guest-memory flag for the format ("" for ELF, "-z", "-l", "-s"). */
const char *dump_format_flag(enum dump_format f);

/* `info dump` parsed: status "active", "completed", "failed", "none" (copied into status), and the percentage
 * done when active (-1 when not said). 0, or -1 when the text has no Status line. */
int dump_parse_info(const char *text, char *status, size_t statuslen, double *percent);

struct dump_result {
    enum dump_format format;   /* what was written: libvirt has no paging dump, so elf-paging becomes elf there */
    double seconds;
    unsigned long long bytes;
    bool vmcoreinfo;           /* the file carries the kernel's VMCOREINFO (OSRELEASE=...) */
    char note[200];            /* why the ELF has no virtual view for drgn (dump_vaddr.h), "" when it has */
};

/* Dumps the VM to target (absolute or relative; must not exist) in the format, with progress on stderr
 * when it is a terminal. 0, or -1 after one error line. */
int dump_vm(const struct runstate *rs, const char *target, enum dump_format f, struct dump_result *out);

/* What a dump file is, from its first bytes: an ELF core (e_machine gives the architecture) or a makedumpfile
 * (kdump-compressed, flattened) file, and the kernel release its VMCOREINFO names. The bytes are anyone's:
 * every length is checked. */
struct dump_info {
    bool elf;                  /* an ELF core (else a makedumpfile file) */
    const char *arch;          /* "x86_64", "arm64", or NULL when the ELF machine is another */
    bool vaddrs;               /* ELF: some PT_LOAD has a kernel virtual address (QEMU's paging dump) */
    char release[128];         /* OSRELEASE= of VMCOREINFO, "" when there is none */
};

/* buf holds the file's first bytes, phdrs (NULL: in buf, at e_phoff) its program header table, file_size its
 * size (an ELF core whose segments end past it is truncated). 0, or -1 with err filled (not a dump klab knows,
 * or truncated). */
int dump_inspect_buffer(const unsigned char *buf, size_t len, const unsigned char *phdrs, size_t phlen,
                        unsigned long long file_size, struct dump_info *out, char *err, size_t errlen);
int dump_inspect(const char *path, struct dump_info *out, char *err, size_t errlen);

/* vmlinux must be the dump's kernel: the same architecture, and its banner's release the one the dump's
 * VMCOREINFO names (OSRELEASE). 0, or -1 with err filled; *info is the dump's. */
int dump_vmlinux_check(const char *dump, const char *vmlinux, struct dump_info *info, char *err, size_t errlen);

#endif
