/* klab boot --swap: a virtio disk in the run-state folder that the guest's init hook makes its swap. */
#ifndef KLAB_SWAP_DISK_H
#define KLAB_SWAP_DISK_H

#include <stddef.h>
#include <stdint.h>

/* Whether the kernel can swap to a virtio disk, from the config beside its image (Debian's and klab's kernels
 * keep one there): CONFIG_SWAP, and virtio-blk over PCI built in or as modules in modules/ (load.order, as
 * kernels/fetch-debian.sh unpacks them). *modules is that folder (malloc'ed), NULL when built in. 0, or -1
 * with err filled. */
int swap_disk_resolve(const char *kernel, char **modules, char *err, size_t errlen);
/* Creates the sparse disk (0600, never through an existing file or link): 0, or -1 after one error line. */
int swap_disk_create(const char *path, uint64_t size);
/* The init hook that loads the modules, finds the disk by its serial and turns it into swap; its path in
 * run_dir (malloc'ed). */
char *swap_disk_hook(const char *run_dir);
/* The disk's serial, which the hook looks for in /sys/block/vd*\/serial. */
#define SWAP_DISK_SERIAL "klab-swap"

#endif
