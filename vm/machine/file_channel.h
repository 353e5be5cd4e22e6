/* Files into a VM restored from a snapshot (klab boot --snapshot --add / --run): the snapshot holds klab's
 * base image, so a rebuilt hellodrv.ko must come in afterwards, without a boot.
 *
 * The channel is a virtio-serial port (org.klab.files) on a QEMU pipe chardev, run-dir/files.in and .out:
 * - virtio-serial is in every kernel klab boots (Debian builds virtio_console as a module: the image loads
 *   it; kernels/fetch-debian.sh unpacks it), needs no guest network, and a port is a plain character device
 *   that busybox can read;
 * - a pipe chardev, unlike a socket one, is always "connected": with a socket chardev and nobody attached,
 *   the guest's read() returns 0 at once (drivers/char/virtio_console.c port_fops_read, !port->host_connected)
 *   and its agent would spin; on a pipe it sleeps until klab writes;
 * - virtio-9p or virtiofs would need the share present in the snapshot's QEMU and a daemon (virtiofsd) or
 *   9p modules, and a mount in the guest after the restore: an agent anyway.
 * The guest's agent (started by /init's hook in the base image) reads "LEN\n" and LEN bytes of a newc cpio
 * archive, unpacks it in /, answers "unpacked" (or "error WHY"), waits for "run", runs /run/klab/run.sh if the
 * archive has one (--run), and answers "ok STATUS". */
#ifndef KLAB_FILE_CHANNEL_H
#define KLAB_FILE_CHANNEL_H

#include "rootfs/initramfs.h"

#include <stdbool.h>
#include <stddef.h>

#define FILE_CHANNEL_PORT "org.klab.files"

/* Whether the kernel can have the channel: 0 with *modules NULL (built in) or the folder of its modules
 * (load.order with virtio_console), or -1 with err set (no virtio console: files go into the image). */
int file_channel_resolve(const char *kernel, char **modules, char *err, size_t errlen);

/* The guest's side for the base image: adds for the hook, the agent and (modules non-NULL) the modules,
 * written into run_dir; fills out[0..2], returns how many. */
size_t file_channel_image_adds(const char *run_dir, const char *modules, struct initramfs_add *out);

/* The FIFOs QEMU's pipe chardev opens (run_dir/files.in and .out), created 0600. 0 or -1 with err set. */
int file_channel_create(const char *run_dir, char *err, size_t errlen);

/* before_run: called once the files are unpacked, before the go-ahead; returning 1 means the VM is paused
 * now (for gdb) and the --run commands run when it continues, unawaited. */
struct file_channel_hooks {
    int (*before_run)(void *ctx);
    void *ctx;
};

/* Sends adds (and runs, as /run/klab/run.sh) to the running guest and waits for its agent's answers.
 * 0, or -1 with err set. */
int file_channel_deliver(const char *run_dir, const struct initramfs_add *adds, size_t nadds,
                         const char *const *runs, size_t nruns, const struct file_channel_hooks *h, int timeout_ms,
                         char *err, size_t errlen);

#endif
