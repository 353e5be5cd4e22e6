#include "machine/profile.h"

#include <elf.h>
#include <string.h>

/* QEMU's pc machine (hw/i386/pc_piix.c, pc_init1): RAM fills low memory up to the PCI hole. When RAM reaches
 * max-ram-below-4g (0xe0000000 by default) the low part is cut at 3 GiB on gigabyte-aligned machine types and
 * the rest continues at 4 GiB. The backend file holds the low part first, then the high part. */
static size_t x86_pc_ram_layout(uint64_t ram, struct ram_region out[MAX_RAM_REGIONS])
{
    const uint64_t lowmem = ram >= 0xe0000000ull ? 0xc0000000ull : ram;
    out[0] = (struct ram_region){ .gpa = 0, .size = lowmem, .file_offset = 0 };
    if (ram == lowmem)
        return 1;
    out[1] = (struct ram_region){ .gpa = 1ull << 32, .size = ram - lowmem, .file_offset = lowmem };
    return 2;
}

/* QEMU's virt machine (hw/arm/virt.c, base_memmap[VIRT_MEM]): one RAM span from 1 GiB. */
static size_t arm_virt_ram_layout(uint64_t ram, struct ram_region out[MAX_RAM_REGIONS])
{
    out[0] = (struct ram_region){ .gpa = 0x40000000ull, .size = ram, .file_offset = 0 };
    return 1;
}

/* Registers a kernel debugger looks at first: where the CPU is, translation, and the per-CPU base (x86 keeps
 * the kernel's gs_base in k_gs_base while user space runs; arm64 has current in SP_EL0 and the per-CPU offset
 * in TPIDR_EL1). VBAR is QEMU's name for VBAR_EL1. */
static const char *const x86_64_regs[] = { "rip", "rsp", "cr0", "cr3", "cr4", "efer", "gs_base", "k_gs_base", NULL };
static const char *const arm64_regs[] = { "pc", "sp", "cpsr", "SP_EL0", "TPIDR_EL1", "VBAR", "TTBR0_EL1",
                                          "TTBR1_EL1", "TCR_EL1", NULL };

/* QEMU's x86 register dump (target/i386/cpu-dump.c) says "CPL=N": the privilege level, 3 in user code. */
static bool x86_hmp_user_mode(const char *regs)
{
    const char *at = regs ? strstr(regs, "CPL=") : NULL;
    return at && at[4] == '3';
}

/* QEMU's AArch64 register dump (target/arm/cpu.c, aarch64_cpu_dump_state) ends its PSTATE line with the
 * exception level, "EL0t" in user code (Arm ARM D1.4: PSTATE.EL). */
static bool arm64_hmp_user_mode(const char *regs)
{
    const char *at = regs ? strstr(regs, "PSTATE=") : NULL;
    const char *el = at ? strstr(at, "EL") : NULL;
    const char *eol = at ? strchr(at, '\n') : NULL;
    return el && (!eol || el < eol) && el[2] == '0';
}

static const struct machine_profile x86_64_profile = {
    .arch = "x86_64",
    .aliases = { "x86", "amd64", "x86-64", NULL },
    .debian_arch = "amd64",
    .qemu = "qemu-system-x86_64",
    .machine = "pc",
    /* -cpu max turns on LA57: Debian's kernel then runs 5-level paging; --cpu qemu64 keeps 4 levels. */
    .default_cpu = "max",
    .console = "ttyS0",
    .image = IMAGE_BZIMAGE,
    .elf_machine = EM_X86_64,
    /* A software breakpoint set at the reset vector does not survive the decompressor; a hardware one does. */
    .first_stop = "thbreak start_kernel",
    .make_suffix = "x86",
    .mmu_arch = KLAB_ARCH_X86_64,
    .show_regs = x86_64_regs,
    .qemu_package = "qemu-system-x86",
    .uname_machine = "x86_64",
    .libvirt_arch = "x86_64",
    .libvirt_machine = "pc",
    .libvirt_features = "<acpi/>",
    .image_name = "bzImage",
    .cc = "x86_64-linux-gnu-gcc",
    .objcopy = "x86_64-linux-gnu-objcopy",
    .cpu_page_shifts = 1u << 12,
    .full_cpu = "max",
    /* The PVH entry (arch/x86/platform/pvh/enlighten.c) skips the decompressor: under TCG, running zstd over
     * Debian 6.12's 11 MB image took a second before start_kernel. arm64 Images are not self-decompressing. */
    .pvh_boot = true,
    .hmp_user_mode = x86_hmp_user_mode,
    .ram_layout = x86_pc_ram_layout,
};

static const struct machine_profile arm64_profile = {
    .arch = "arm64",
    .aliases = { "aarch64", "arm", NULL },
    .debian_arch = "arm64",
    .qemu = "qemu-system-aarch64",
    .machine = "virt,gic-version=3",
    .default_cpu = "cortex-a57",
    .console = "ttyAMA0",
    .image = IMAGE_ARM64,
    .elf_machine = EM_AARCH64,
    .first_stop = "tbreak start_kernel",
    .make_suffix = "arm",
    .mmu_arch = KLAB_ARCH_ARM64,
    .show_regs = arm64_regs,
    .qemu_package = "qemu-system-arm",
    .uname_machine = "aarch64",
    .libvirt_arch = "aarch64",
    .libvirt_machine = "virt",
    .libvirt_features = "<gic version='3'/>",
    .image_name = "arm64 Image",
    .cc = "aarch64-linux-gnu-gcc",
    .objcopy = "aarch64-linux-gnu-objcopy",   /* binutils-aarch64-linux-gnu, with gcc-aarch64-linux-gnu */
    /* Cortex-A57 implements the 4K and 64K granules only (ID_AA64MMFR0_EL1.TGran16 = 0): a 16K-page kernel
     * would wait forever in __no_granule_support. QEMU's max CPU has all three. */
    .cpu_page_shifts = 1u << 12 | 1u << 16,
    .full_cpu = "max",
    .hmp_user_mode = arm64_hmp_user_mode,
    .ram_layout = arm_virt_ram_layout,
};

const struct machine_profile *const klab_profiles[] = { &x86_64_profile, &arm64_profile, NULL };

const struct machine_profile *profile_find(const char *name)
{
    for (size_t i = 0; name && klab_profiles[i]; i++) {
        const struct machine_profile *p = klab_profiles[i];
        if (!strcmp(p->arch, name))
            return p;
        for (size_t j = 0; p->aliases[j]; j++)
            if (!strcmp(p->aliases[j], name))
                return p;
    }
    return NULL;
}

const struct machine_profile *profile_for_elf_machine(uint16_t e_machine)
{
    for (size_t i = 0; klab_profiles[i]; i++)
        if (klab_profiles[i]->elf_machine == e_machine)
            return klab_profiles[i];
    return NULL;
}

const struct machine_profile *profile_for_image(enum image_format f)
{
    for (size_t i = 0; klab_profiles[i]; i++)
        if (klab_profiles[i]->image == f)
            return klab_profiles[i];
    return NULL;
}
