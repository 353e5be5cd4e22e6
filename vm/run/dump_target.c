/* vm/run/dump_target.h. */
#define _GNU_SOURCE
#include "run/dump_target.h"

#include "machine/profile.h"
#include "run/dump.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

int dump_target_open(const char *path, const char *vmlinux, struct vm_target *t)
{
    memset(t, 0, sizeof *t);
    struct klab_elfcore_info info;
    struct klab_error err;
    t->mem = klab_physmem_open_elfcore(path, &info, &err);
    if (!t->mem) {
        klab_error("%s", err.msg);
        return -1;
    }
    if (klab_mmu_regs_from_vmcoreinfo(info.vmcoreinfo, info.vmcoreinfo_len, info.arch, &t->regs, &err) != 0) {
        klab_error("dump %s: %s", path, err.msg);
        goto fail;
    }
    uint64_t offset = 0;
    if (info.vmcoreinfo && !klab_vmcoreinfo_value(info.vmcoreinfo, info.vmcoreinfo_len, "KERNELOFFSET=", 16, &offset))
        offset = 0;   /* kernels before v4.x wrote none: no KASLR to undo */
    if (vmlinux) {
        struct dump_info d;
        char why[512];
        if (dump_vmlinux_check(path, vmlinux, &d, why, sizeof why) != 0) {
            klab_error("%s", why);
            goto fail;
        }
        t->rs.vmlinux = strdup(vmlinux);
    }
    t->rs.profile = profile_for_elf_machine(info.arch == KLAB_ARCH_X86_64 ? 62 : 183);   /* EM_X86_64, EM_AARCH64 */
    t->symbol_offset = offset;
    t->dump_cpus = info.ncpus;
    t->dump = true;
    return 0;
fail:
    vm_target_close(t);
    return -1;
}
