/* A running VM's gdb stub and RAM, for the klab commands that inspect a machine without gdb (regs, vtop,
 * ptdump): connect through the run state, read registers, and remember whether to let the VM run again. */
#ifndef KLAB_STUB_H
#define KLAB_STUB_H

#include "klab.h"
#include "run/runstate.h"

struct vm_target {
    struct runstate rs;
    struct klab_rsp *rsp;
    struct klab_physmem *mem;   /* the RAM file, or the stub in physical mode */
    bool was_running;           /* resumed (detach) on close */
    struct klab_mmu_regs regs;
    bool dump;                  /* a dump file (run/dump_target.h): no stub, no run state, the kernel's tables */
    uint64_t symbol_offset;     /* added to vmlinux symbols: a dump's KERNELOFFSET (KASLR), else 0 */
    unsigned dump_cpus;         /* a dump's CPUs (its NT_PRSTATUS notes) */
    bool dump_user_tables;      /* a dump read with one CPU's own root (--cpu): user addresses translate too */
};

/* Opens VM `name` (NULL: the only one running), connects to its stub (stopping the guest), selects `cpu` and
 * reads its MMU registers; memory from the RAM file unless memory_via_stub. Prints one line and returns -1
 * on failure. */
int vm_target_open(const char *name, int cpu, bool memory_via_stub, struct vm_target *t);
/* Disconnects; a guest that was running before is resumed. */
void vm_target_close(struct vm_target *t);

#endif
