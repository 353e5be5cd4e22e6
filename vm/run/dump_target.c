/* vm/run/dump_target.h. */
#define _GNU_SOURCE
#include "run/dump_target.h"

#include "machine/kimage.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* OSRELEASE= of VMCOREINFO (kernel/vmcore_info.c: init_uts_ns.name.release) into out. */
static bool vmcoreinfo_release(const struct klab_elfcore_info *info, char *out, size_t outlen)
{
    const char *t = info->vmcoreinfo, *key = "OSRELEASE=";
    for (size_t i = 0; t && i + 10 < info->vmcoreinfo_len; i++) {
        if ((i && t[i - 1] != '\n') || memcmp(t + i, key, 10))
            continue;
        size_t n = 0;
        while (i + 10 + n < info->vmcoreinfo_len && t[i + 10 + n] != '\n' && t[i + 10 + n] && n + 1 < outlen)
            n++;
        memcpy(out, t + i + 10, n);
        out[n] = '\0';
        return n > 0;
    }
    return false;
}

/* The vmlinux must be the dumped kernel's: its banner's release is the dump's OSRELEASE. */
static int check_vmlinux(const char *path, const char *vmlinux, const struct klab_elfcore_info *info)
{
    char release[128], err[512];
    struct kimage_info vi;
    if (vmlinux_inspect(vmlinux, &vi, err, sizeof err) != 0) {
        klab_error("%s", err);
        return -1;
    }
    if (vi.profile->mmu_arch != info->arch) {
        klab_error("%s is an %s vmlinux, but dump %s is not", vmlinux, vi.profile->arch, path);
        return -1;
    }
    if (!vmcoreinfo_release(info, release, sizeof release)) {
        klab_error("dump %s has no OSRELEASE in its VMCOREINFO: cannot tell whether %s is its kernel", path, vmlinux);
        return -1;
    }
    if (strcmp(release, vi.release)) {
        klab_error("%s is %s, but dump %s is of %s", vmlinux, vi.release, path, release);
        return -1;
    }
    return 0;
}

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
        if (check_vmlinux(path, vmlinux, &info) != 0)
            goto fail;
        t->rs.vmlinux = strdup(vmlinux);
    }
    t->symbol_offset = offset;
    t->dump = true;
    return 0;
fail:
    vm_target_close(t);
    return -1;
}
