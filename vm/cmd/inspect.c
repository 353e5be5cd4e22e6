/* klab inspect: what a kernel image (and vmlinux) is, and whether the two belong together. */
#include "cmd/commands.h"
#include "machine/kimage.h"
#include "machine/kpair.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

struct inspect_options {
    const char *kernel, *vmlinux;
};

static const struct opt options[] = {
    OPT_STR("kernel", "IMAGE", "a bootable image (bzImage, arm64 Image, gzip'd or not)", struct inspect_options,
            kernel),
    OPT_STR("vmlinux", "VMLINUX", "the kernel's ELF with symbols", struct inspect_options, vmlinux),
    OPT_END,
};

const struct opt_cmd inspect_command = {
    .name = "inspect", .opts = options,
    .about = "Prints the architecture and banner (release, version) of a bootable image and/or a\n"
             "vmlinux; with both, fails unless they were built together.",
};

int cmd_inspect(int argc, char **argv)
{
    struct inspect_options o = { 0 };
    int first = opts_parse(&inspect_command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    const char *kernel = o.kernel, *vmlinux = o.vmlinux;
    if ((!kernel && !vmlinux) || first < argc) {
        klab_error("inspect needs --kernel and/or --vmlinux (see klab inspect --help)");
        return 2;
    }
    char err[512];
    struct kimage_info ki, vi;
    if (kernel) {
        if (kimage_inspect(kernel, true, &ki, err, sizeof err) != 0) {
            klab_error("%s", err);
            return 1;
        }
        printf("image:   %s\narch:    %s\nformat:  %s%s\nrelease: %s\nversion: %s\n", kernel, ki.profile->arch,
               ki.profile->image_name, ki.gzipped ? " (gzip)" : "",
               ki.release, ki.version);
    }
    if (vmlinux) {
        if (vmlinux_inspect(vmlinux, &vi, err, sizeof err) != 0) {
            klab_error("%s", err);
            return 1;
        }
        printf("vmlinux: %s\narch:    %s\nrelease: %s\nversion: %s\n", vmlinux, vi.profile->arch, vi.release,
               vi.version);
    }
    if (kernel && vmlinux && kernel_banners_match(&ki, &vi, err, sizeof err) != 0) {
        klab_error("%s", err);
        return 1;
    }
    return 0;
}
