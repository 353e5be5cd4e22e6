/* vm/machine/kernel_mm.h. */
#define _GNU_SOURCE
#include "machine/kernel_mm.h"
#include "machine/kconfig.h"
#include "machine/kimage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned version_of(const char *kernel, const char *vmlinux)
{
    struct kimage_info info;
    char err[256];
    if (!(vmlinux && vmlinux_inspect(vmlinux, &info, err, sizeof err) == 0) &&
        !(kernel && kimage_inspect(kernel, true, &info, err, sizeof err) == 0))
        return 0;
    unsigned major, minor;
    return sscanf(info.release, "%u.%u", &major, &minor) == 2 ? major << 16 | minor << 8 : 0;
}

/* The config beside the image, or beside the vmlinux when there is no image (a dump: klab's cache keeps both
 * in the kernel's folder). */
static void config_of(const char *beside, const struct klab_mmu_regs *regs, struct klab_kernel_mm *k)
{
    struct kconfig c;
    if (!beside || kconfig_load_beside(beside, &c) != 0)
        return;
    const char *const *names = klab_kconfig_names();
    for (unsigned i = 0; names[i]; i++) {
        k->config_known |= 1u << i;
        k->config |= kconfig_is_y(&c, names[i]) ? 1u << i : 0;
    }
    char v[16];
    const char *pa = kconfig_get(&c, "CONFIG_ARM64_PA_BITS", v, sizeof v);
    k->max_physmem_bits = klab_max_physmem_bits(regs, pa ? (unsigned)atoi(pa) : 0,
                                                kconfig_is_y(&c, "CONFIG_ARM64_LPA2"));
    kconfig_free(&c);
}

void kernel_mm_facts(const char *kernel, const char *vmlinux, const struct klab_mmu_regs *regs,
                     struct klab_kernel_mm *k)
{
    memset(k, 0, sizeof *k);
    k->version = version_of(kernel, vmlinux);
    uint64_t addr, size;
    char err[256];
    if (vmlinux && vmlinux_symbol(vmlinux, "swap_info", &addr, &size, err, sizeof err) == 0 && size % 8 == 0 &&
        size / 8 <= 32)
        k->max_swapfiles = (int)(size / 8);
    k->max_physmem_bits = klab_max_physmem_bits(regs, 0, false);
    config_of(kernel ? kernel : vmlinux, regs, k);
}
