#define _GNU_SOURCE
#include "machine/kpair.h"

#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int kernel_banners_match(const struct kimage_info *image, const struct kimage_info *vmlinux, char *err,
                         size_t errlen)
{
    if (image->profile != vmlinux->profile) {
        snprintf(err, errlen, "the image is %s but vmlinux is %s", image->profile->arch, vmlinux->profile->arch);
        return -1;
    }
    if (strcmp(image->release, vmlinux->release) || strcmp(image->version, vmlinux->version)) {
        snprintf(err, errlen, "vmlinux does not match the image: image is %s %s, vmlinux is %s %s", image->release,
                 image->version, vmlinux->release, vmlinux->version);
        return -1;
    }
    return 0;
}

static char *identity(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    char *real = realpath(path, NULL);
    char *id = xasprintf("%s:%lld:%lld.%09ld", real ? real : path, (long long)st.st_size,
                         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    free(real);
    return id;
}

int kernel_pair_check(const char *image, const char *vmlinux, const char *memo_dir, char *err, size_t errlen)
{
    char *a = identity(image), *b = identity(vmlinux);
    char *key = a && b ? xasprintf("%s %s\n", a, b) : NULL;
    char *memo = memo_dir ? path_join(memo_dir, "verified-kernels") : NULL;
    char *seen = memo ? read_text_file(memo) : NULL;
    int rc = 0;
    if (!(key && seen && strstr(seen, key))) {
        struct kimage_info ii, vi;
        if (kimage_inspect(image, true, &ii, err, errlen) != 0 || vmlinux_inspect(vmlinux, &vi, err, errlen) != 0)
            rc = -1;
        else
            rc = kernel_banners_match(&ii, &vi, err, errlen);
        if (rc == 0 && key && memo) {
            mkdir_p(memo_dir, 0755);
            char *text = xasprintf("%s%s", seen ? seen : "", key);
            write_text_file(memo, text);
            free(text);
        }
    }
    free(a);
    free(b);
    free(key);
    free(memo);
    free(seen);
    return rc;
}
