/* Where klab keeps what it fetches and builds, shared by every clone of the project:
 *   $KLAB_CACHE, else $XDG_CACHE_HOME/klab, else ~/.cache/klab
 *     kernels/debian-<amd64|arm64>/   vmlinuz, vmlinux, config, VERSION (kernels/fetch-debian.sh)
 *     busybox/<amd64|arm64>/busybox   Debian's busybox-static (rootfs/fetch-busybox.sh)
 *     segments/                       compressed initramfs segments (rootfs/gzseg.c) */
#ifndef KLAB_PATHS_H
#define KLAB_PATHS_H

#include "machine/profile.h"

char *klab_cache_dir(void);
char *default_kernel(const struct machine_profile *p);   /* may not exist yet */
char *default_busybox(const struct machine_profile *p);
char *segment_cache_dir(void);
/* The folder with the klab gdb Python package: $KLAB_GDB_DIR, else the source tree klab was built from. */
const char *klab_gdb_dir(void);
/* The klab source tree this program was built from (its kernels/ and labs/ scripts). */
const char *klab_source_dir(void);

#endif
