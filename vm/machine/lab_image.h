/* The lab's default initramfs: klab's busybox image for the profile, with --add files and --run commands,
 * built into the VM's run-state folder from the segment cache. */
#ifndef KLAB_LAB_IMAGE_H
#define KLAB_LAB_IMAGE_H

#include "machine/profile.h"
#include "rootfs/initramfs.h"

/* The image's path (malloc'ed), or NULL after one error line. */
char *lab_image_build(const struct machine_profile *p, const char *run_dir, const struct initramfs_add *adds,
                      size_t nadds, const char *const *runs, size_t nruns);

/* "SRC:DEST" (an --add of klab boot or klab rootfs), split in place: 0, or -1 after one error line. */
int lab_image_parse_add(char *arg, struct initramfs_add *out);

#endif
