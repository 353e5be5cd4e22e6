/* vm/machine/lab_image.h. */
#define _GNU_SOURCE
#include "machine/lab_image.h"
#include "machine/file_channel.h"
#include "machine/paths.h"
#include "machine/swap_disk.h"
#include "machine/vmcoreinfo.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* --run: one hook, run by klab's /init after the banner (rootfs/init_script.c), commands in order. */
static char *write_run_hook(const char *run_dir, const char *const *runs, size_t nruns)
{
    char *hook = path_join(run_dir, "run-hook.sh");
    char *text = strdup("");
    for (size_t i = 0; i < nruns; i++) {
        char *n = xasprintf("%s%s\n", text, runs[i]);
        free(text);
        text = n;
    }
    write_text_file(hook, text);
    free(text);
    return hook;
}

char *lab_image_build(const struct machine_profile *p, const char *run_dir, const struct initramfs_add *given,
                      size_t ngiven, const char *const *runs, size_t nruns, const struct lab_image_kernel *k)
{
    char *busybox = default_busybox(p);
    if (!file_exists(busybox)) {
        klab_error("no %s busybox yet (%s is missing): run `klab fetch --arch %s` (in a clone: make rootfs) or "
                   "pass --initrd", p->arch, busybox, p->arch);
        free(busybox);
        return NULL;
    }
    char *segments = segment_cache_dir();
    mkdir_p(segments, 0755);
    struct initramfs_add *adds = calloc(ngiven + 8, sizeof *adds);
    if (ngiven)
        memcpy(adds, given, ngiven * sizeof *adds);
    size_t nadds = ngiven;
    const struct lab_image_swap *swap = k ? &k->swap : NULL;
    char *fw_hook = k && k->fw_cfg ? vmcoreinfo_hook(run_dir) : NULL;
    if (fw_hook) {
        adds[nadds++] = (struct initramfs_add){ fw_hook, "/etc/klab.d/02-vmcoreinfo.sh" };
        adds[nadds++] = (struct initramfs_add){ k->fw_cfg, "/lib/modules/klab-fw-cfg" };
    }
    char *swap_hook = swap && swap->on ? swap_disk_hook(run_dir) : NULL;
    if (swap_hook)
        adds[nadds++] = (struct initramfs_add){ swap_hook, "/etc/klab.d/05-swap.sh" };
    if (swap_hook && swap->modules)
        adds[nadds++] = (struct initramfs_add){ swap->modules, "/lib/modules/klab-swap" };
    size_t channel_from = nadds;
    if (k && k->file_channel)
        nadds += file_channel_image_adds(run_dir, k->channel_modules, adds + nadds);
    size_t channel_to = nadds;
    char *hook = nruns ? write_run_hook(run_dir, runs, nruns) : NULL;
    if (hook)
        adds[nadds++] = (struct initramfs_add){ hook, "/etc/klab.d/90-run.sh" };
    struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 9,
                                   .cache_dir = segments, .adds = adds, .nadds = nadds };
    char *out = path_join(run_dir, "initramfs.cpio.gz");
    char err[512];
    if (initramfs_build(&spec, out, NULL, err, sizeof err) != 0) {
        klab_error("initramfs: %s", err);
        free(out);
        out = NULL;
    }
    free(busybox);
    free(segments);
    for (size_t i = channel_from; i < channel_to; i++)
        free((char *)adds[i].src);
    free(adds);
    free(hook);
    free(swap_hook);
    free(fw_hook);
    return out;
}

int lab_image_parse_add(char *arg, struct initramfs_add *out)
{
    char *colon = strchr(arg, ':');
    if (!colon || colon == arg || !colon[1]) {
        klab_error("--add wants SRC:DEST, not '%s'", arg);
        return -1;
    }
    if (initramfs_dest_climbs(colon + 1)) {
        klab_error("--add: DEST %s has a '..' component (it would land outside the guest's root)", colon + 1);
        return -1;
    }
    *colon = '\0';
    *out = (struct initramfs_add){ arg, colon + 1 };
    return 0;
}
