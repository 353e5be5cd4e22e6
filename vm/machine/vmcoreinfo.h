/* The kernel's VMCOREINFO in klab's dumps: QEMU's vmcoreinfo device (-device vmcoreinfo) is a fw_cfg file
 * that the guest's qemu_fw_cfg driver fills with the address of its VMCOREINFO note when it probes
 * (drivers/firmware/qemu_fw_cfg.c fw_cfg_write_vmcoreinfo, CONFIG_CRASH_CORE); dump-guest-memory then writes
 * that note into the dump, and crash and drgn read KASLR's offset, page_offset_base, pgtable_l5_enabled and
 * the memory layout from it. Debian builds the driver as a module (CONFIG_FW_CFG_SYSFS=m):
 * kernels/fetch-debian.sh unpacks it into modules/fw_cfg/, and klab's image loads it first thing. */
#ifndef KLAB_VMCOREINFO_H
#define KLAB_VMCOREINFO_H

/* The folder holding qemu_fw_cfg.ko for the kernel image (malloc'ed), or NULL when the driver is built in,
 * absent from the config, or not unpacked; *why (static) says which when NULL and the dump will lack it. */
char *vmcoreinfo_module_dir(const char *kernel, const char **why);
/* The init hook that loads it (malloc'ed path in run_dir). */
char *vmcoreinfo_hook(const char *run_dir);

#endif
