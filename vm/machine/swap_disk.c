/* vm/machine/swap_disk.h. */
#define _GNU_SOURCE
#include "machine/swap_disk.h"
#include "machine/kconfig.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int swap_disk_resolve(const char *kernel, char **modules, char *err, size_t errlen)
{
    char *copy = strdup(kernel), *dir = dirname(copy);
    char *order = xasprintf("%s/modules/load.order", dir);
    struct kconfig c;
    int rc = -1;
    *modules = NULL;
    if (kconfig_load_beside(kernel, &c) != 0)
        snprintf(err, errlen, "--swap: no kernel config beside %s (%s/config), so klab cannot tell whether it can swap",
                 kernel, dir);
    else if (!kconfig_is_y(&c, "CONFIG_SWAP"))
        snprintf(err, errlen, "--swap: this kernel has no CONFIG_SWAP (%s/config)", dir);
    else if (kconfig_is_y(&c, "CONFIG_VIRTIO_BLK") && kconfig_is_y(&c, "CONFIG_VIRTIO_PCI"))
        rc = 0;
    else if (!file_exists(order))
        snprintf(err, errlen, "--swap: the kernel builds virtio-blk as a module and %s is missing (kernels/fetch-debian.sh "
                 "unpacks it: run `make kernels`)", order);
    else {
        *modules = xasprintf("%s/modules", dir);
        rc = 0;
    }
    kconfig_free(&c);
    free(copy);
    free(order);
    return rc;
}

int swap_disk_create(const char *path, uint64_t size)
{
    /* The run-state folder is the user's own (runstate checks it); a leftover disk of an earlier boot goes. */
    if (unlink(path) != 0 && errno != ENOENT) {
        klab_error("cannot remove the old swap disk %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        klab_error("cannot create the swap disk %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Runs before the lab's own hooks (05-): loads the modules in load.order, waits for the disk with klab's
 * serial (udev-less: devtmpfs makes /dev/vdX), mkswap + swapon, and says what /proc/swaps says. */
static const char hook_text[] =
    "# klab boot --swap: the virtio disk in the run-state folder becomes this guest's swap\n"
    "if [ -f /lib/modules/klab-swap/load.order ]; then\n"
    "    for m in $(grep -v '^#' /lib/modules/klab-swap/load.order); do\n"
    "        insmod /lib/modules/klab-swap/$m || echo \"klab: swap: insmod $m failed\"\n"
    "    done\n"
    "fi\n"
    "dev=\n"
    "for i in $(seq 100); do\n"
    "    for b in /sys/block/vd*; do\n"
    "        [ \"$(cat $b/serial 2>/dev/null)\" = " SWAP_DISK_SERIAL " ] && dev=/dev/${b##*/}\n"
    "    done\n"
    "    [ -n \"$dev\" ] && [ -b \"$dev\" ] && break\n"
    "    dev=\n"
    "    usleep 50000\n"
    "done\n"
    "if [ -z \"$dev\" ]; then\n"
    "    echo 'klab: swap: the swap disk did not appear'\n"
    "elif mkswap \"$dev\" >/dev/null && swapon \"$dev\"; then\n"
    "    echo \"klab: swap on $dev: $(tail -n +2 /proc/swaps)\"\n"
    "else\n"
    "    echo \"klab: swap: mkswap/swapon $dev failed\"\n"
    "fi\n";

char *swap_disk_hook(const char *run_dir)
{
    char *hook = path_join(run_dir, "swap-hook.sh");
    write_text_file(hook, hook_text);
    return hook;
}
