/* Source lines for Debian's kernels: their vmlinux names files as Debian's build saw them
 * (/build/reproducible-path/linux-6.1.N/..., or relative to its build folder), and Debian's linux-source-6.1
 * package holds the same tree once unpacked (kernels/build.sh --source). gdb is pointed at it only when the
 * versions are equal: wrong lines are worse than none. */
#ifndef KLAB_KERNEL_SOURCE_H
#define KLAB_KERNEL_SOURCE_H

#include <stddef.h>

struct kernel_source {
    char *dir;      /* the unpacked tree */
    char *prefix;   /* the path Debian's build had it at */
};

/* For the vmlinux of a registered Debian kernel (its VERSION file says package_version=): 0 with *out set;
 * 1 when the vmlinux is not a Debian build (a source kernel names its own tree: nothing to map); -1 when
 * the matching source is not there (why: one line saying what is and how to get the right one). */
int kernel_source_find(const char *vmlinux, struct kernel_source *out, char *why, size_t whylen);
void kernel_source_free(struct kernel_source *s);

#endif
