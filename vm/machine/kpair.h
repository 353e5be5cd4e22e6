/* Checks that a bootable image and a vmlinux were built together: same architecture, and the image's banner
 * equals linux_banner in vmlinux (release and UTS version). A passed check is remembered per (path, size,
 * mtime) of both files, because inflating an arm64 image costs ~100 ms and boots should not pay it twice. */
#ifndef KLAB_KPAIR_H
#define KLAB_KPAIR_H

#include "machine/kimage.h"

#include <stddef.h>

/* 0 when they match; -1 with one line in err otherwise. memo_dir may be NULL. */
int kernel_pair_check(const char *image, const char *vmlinux, const char *memo_dir, char *err, size_t errlen);

/* Compares two parsed banners; 0 or -1 with the difference in err. */
int kernel_banners_match(const struct kimage_info *image, const struct kimage_info *vmlinux, char *err,
                         size_t errlen);

#endif
