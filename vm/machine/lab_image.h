/* The lab's default initramfs: klab's busybox image for the profile, with --add files and --run commands,
 * built into the VM's run-state folder from the segment cache. */
#ifndef KLAB_LAB_IMAGE_H
#define KLAB_LAB_IMAGE_H

#include "machine/profile.h"
#include "rootfs/initramfs.h"

#include <stdbool.h>

/* klab boot --swap: the swapon hook, and the kernel's virtio modules when they are not built in. */
struct lab_image_swap {
    bool on;
    const char *modules;   /* a folder with load.order and the .ko files, or NULL */
};

/* What the image adds for the kernel it boots: --swap's disk hook and modules, and the folder with the
 * qemu_fw_cfg module that hands the kernel's VMCOREINFO to QEMU (machine/vmcoreinfo.h; NULL: built in or
 * none). */
struct lab_image_kernel {
    struct lab_image_swap swap;
    const char *fw_cfg;
    bool file_channel;              /* the snapshot's file channel (machine/file_channel.h) */
    const char *channel_modules;    /* its virtio modules, NULL when built in */
};

/* The image's path (malloc'ed), or NULL after one error line. k may be NULL. */
char *lab_image_build(const struct machine_profile *p, const char *run_dir, const struct initramfs_add *adds,
                      size_t nadds, const char *const *runs, size_t nruns, const struct lab_image_kernel *k);

/* "SRC:DEST" (an --add of klab boot or klab rootfs), split in place: 0, or -1 after one error line. */
int lab_image_parse_add(char *arg, struct initramfs_add *out);

#endif
