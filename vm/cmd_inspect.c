/* klab inspect: what a kernel image (and vmlinux) is, and whether the two belong together. */
#include "commands.h"
#include "kimage.h"
#include "kpair.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = { { "kernel", required_argument, 0, 'k' },
                                              { "vmlinux", required_argument, 0, 'v' },
                                              { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *kernel = NULL, *vmlinux = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'k')
            kernel = optarg;
        else if (c == 'v')
            vmlinux = optarg;
        else if (c == 'h') {
            puts("usage: klab inspect [--kernel IMAGE] [--vmlinux VMLINUX]\n\nPrints the architecture and "
                 "banner (release, version) of a bootable image and/or a\nvmlinux; with both, fails unless "
                 "they were built together.");
            return 0;
        } else {
            klab_error("inspect: unknown or incomplete option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if ((!kernel && !vmlinux) || optind < argc) {
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
               ki.profile->image == IMAGE_BZIMAGE ? "bzImage" : "arm64 Image", ki.gzipped ? " (gzip)" : "",
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
