/* Where klab keeps what it fetches and builds, shared by every clone of the project:
 *   $KLAB_CACHE, else $XDG_CACHE_HOME/klab, else ~/.cache/klab
 *     kernels/debian-<amd64|arm64>/   vmlinuz, vmlinux, config, VERSION (kernels/fetch-debian.sh)
 *     busybox/<amd64|arm64>/busybox   Debian's busybox-static (rootfs/fetch-busybox.sh)
 *     segments/                       compressed initramfs segments (rootfs/gzseg.c) */
#ifndef KLAB_PATHS_H
#define KLAB_PATHS_H

#include "machine/profile.h"

#include <stdbool.h>

char *klab_cache_dir(void);
char *default_kernel(const struct machine_profile *p);   /* may not exist yet */
char *default_busybox(const struct machine_profile *p);
char *segment_cache_dir(void);
/* klab's own files, laid out as in the source tree (gdb/klab/, the kernels/ scripts and configs/, rootfs/ and
 * scripts/): the clone build/klab was made in, or <prefix>/share/klab for an installed klab. */
const char *klab_data_dir(void);
/* The folder with the klab gdb Python package: $KLAB_GDB_DIR, else <data dir>/gdb (malloc'ed). */
char *klab_gdb_dir(void);
/* The libklab.so gdb's Python loads: the clone's build/libklab.so, or the installed one (malloc'ed). */
char *klab_lib_path(void);
/* Whether this is the installed klab (make install / the .deb), which never uses a source tree. */
bool klab_installed(void);

#endif
