/* What klab regs, vtop and ptdump share: the options that pick the VM, CPU and memory path, and how an
 * address is read (hex, or a vmlinux symbol). */
#ifndef KLAB_CMD_TARGET_H
#define KLAB_CMD_TARGET_H

#include "run/stub.h"

#include <stdbool.h>
#include <stdint.h>

struct target_opts {
    const char *vm;
    int cpu;
    bool cpu_given;
    bool via_stub;
    const char *dump, *vmlinux;   /* --dump FILE [--vmlinux F]: a dump instead of a VM */
};

enum { T_CPU = 200 };

/* The three options, for a command's table (each lists them after its own); TYPE.MEMBER is where the
 * command keeps its struct target_opts. */
#define TARGET_OPTIONS(type, member)                                                                          \
    OPT_STR("vm", "NAME", "the VM (default: the only one running)", type, member.vm),                        \
    OPT_CALL("cpu", T_CPU, "N", "the CPU whose registers are used (default 0)"),                             \
    OPT_BOOL("via-stub", "read memory through the gdb stub (Qqemu.PhyMemMode) instead of the RAM file", type, \
             member.via_stub)

/* --dump and --vmlinux, for the commands that read a dump's memory too (vtop, ptdump). */
#define TARGET_DUMP_OPTIONS(type, member)                                                                     \
    OPT_STR("dump", "FILE", "a dump (klab dump: ELF or kdump-compressed) instead of a VM: the kernel's page\n"  \
                            "tables, from its VMCOREINFO", type, member.dump),                               \
    OPT_STR("vmlinux", "F", "with --dump: the dumped kernel's vmlinux, for symbols (checked against the\n"     \
                            "dump's OSRELEASE; KASLR's KERNELOFFSET applied)", type, member.vmlinux)

#define TARGET_EPILOG                                                                                          \
    "The stub serves one client: detach gdb first. A running guest is paused while klab reads it and\n"       \
    "resumed afterwards; a paused one stays paused."

/* --cpu N: 1 if id is it (taken), 0 if not, -1 on a bad value (reported). */
int target_option(struct target_opts *o, int id, const char *arg);
/* Hex with or without 0x, at most 64 bits (v may be NULL: only checks). */
bool parse_hex(const char *s, uint64_t *v);
/* The VM (vm_target_open) or, with --dump, the dump (dump_target_open): 0, or -1 after one line. */
int target_open(const struct target_opts *o, struct vm_target *t);
/* A user-half address of a dump: its tables are the kernel's, not a task's. true after one line. */
bool target_refuses(const struct vm_target *t, uint64_t va);
/* An address: hex, or a vmlinux symbol (its link address plus a dump's KERNELOFFSET; a VM must run with
 * nokaslr). */
bool parse_address(const struct vm_target *t, const char *s, uint64_t *va);

/* A vmlinux symbol's run-time address (a dump's KERNELOFFSET added), silently: 0, or -1 when there is no
 * vmlinux, no such symbol, or a VM booted with KASLR (its slide is klab gdb's to find). */
int target_symbol(const struct vm_target *t, const char *name, uint64_t *va);

/* --range START-END (inclusive; hex or symbols, as parse_address): true, or false after one line. */
bool parse_span(const struct vm_target *t, const char *text, uint64_t *start, uint64_t *end);

#endif
