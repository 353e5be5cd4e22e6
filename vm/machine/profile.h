/* Per-architecture machine profiles: everything that differs between the arm64 and x86_64 labs lives in
 * one table (profile.c), so the rest of klab asks the profile instead of testing the architecture. */
#ifndef KLAB_PROFILE_H
#define KLAB_PROFILE_H

#include "klab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum image_format { IMAGE_BZIMAGE, IMAGE_ARM64 };

/* One span of guest RAM as QEMU lays it out: guest physical address → offset in the RAM backend file. */
struct ram_region {
    uint64_t gpa, size, file_offset;
};
#define MAX_RAM_REGIONS 2

struct machine_profile {
    const char *arch;            /* klab's name: "x86_64", "arm64" */
    const char *aliases[4];      /* other names users type: x86, amd64, arm, aarch64 */
    const char *debian_arch;     /* Debian's: amd64, arm64 (kernel and busybox packages) */
    const char *qemu;            /* the system emulator */
    const char *machine;         /* -M, without the memory backend */
    const char *default_cpu;     /* -cpu */
    const char *console;         /* console= device for the kernel */
    enum image_format image;     /* what --kernel must be */
    uint16_t elf_machine;        /* e_machine of its vmlinux */
    const char *first_stop;      /* gdb command that stops at start_kernel from the reset vector */
    const char *make_suffix;     /* the Makefile's vm-<suffix> / gdb-<suffix> */
    enum klab_arch mmu_arch;     /* libklab's architecture */
    const char *const *show_regs;/* what `klab regs` prints by default (the stub's register names) */
    const char *qemu_package;    /* the Debian package that has `qemu` */
    const char *uname_machine;   /* uname -m of a host that can run it under KVM */
    const char *libvirt_arch;    /* libvirt's <type arch=…> */
    const char *libvirt_machine; /* libvirt's <type machine=…> */
    const char *libvirt_features;/* libvirt's <features> */
    const char *image_name;      /* what `klab inspect` calls its kernel image */
    const char *cc;              /* a C compiler for its user space (a task's static test program) */
    const char *objcopy;         /* binutils' objcopy for its ELF files, on any host (klab crash's vmlinux) */
    unsigned cpu_page_shifts;    /* bit N set: the default CPU has the 2^N-byte granule */
    const char *full_cpu;        /* the CPU to use when the default lacks the kernel's granule */
    bool pvh_boot;               /* QEMU boots the vmlinux by its PVH entry (elf_pvh_entry) when it has one */
    /* Whether the CPU in QEMU's `info registers` text runs user code (x86 CPL 3, arm64 EL0): QEMU's arm64 stub
     * reads memory with that CPU's permissions, so gdb cannot read the kernel from such a stop. */
    bool (*hmp_user_mode)(const char *info_registers);
    /* Guest RAM layout for a RAM size; returns the number of regions. */
    size_t (*ram_layout)(uint64_t ram_size, struct ram_region out[MAX_RAM_REGIONS]);
};

const struct machine_profile *profile_find(const char *name);   /* by arch or alias; NULL if unknown */
const struct machine_profile *profile_for_elf_machine(uint16_t e_machine);
const struct machine_profile *profile_for_image(enum image_format f);
extern const struct machine_profile *const klab_profiles[];     /* NULL-terminated */

#endif
