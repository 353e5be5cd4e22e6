#define _GNU_SOURCE
#include "machine/paths.h"

#include "util/util.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two builds of one program. build/klab, made in a clone, has the clone's path compiled in (KLAB_SOURCE_DIR)
 * and runs its scripts and gdb package from there. The installed klab (make install, the .deb) is built with
 * KLAB_PREFIX and KLAB_LIBDIR instead and never looks at a source tree: its files are under its own prefix,
 * found from where the running binary is (so a staged DESTDIR or a moved prefix works), else the prefix it
 * was built for. */
#ifdef KLAB_PREFIX
static const char *const source_dir = NULL, *const built_prefix = KLAB_PREFIX;
#else
#ifndef KLAB_SOURCE_DIR
#define KLAB_SOURCE_DIR "."
#endif
static const char *const source_dir = KLAB_SOURCE_DIR, *const built_prefix = "/usr/local";
#endif
#ifndef KLAB_LIBDIR
#define KLAB_LIBDIR "lib"
#endif
#ifndef KLAB_SOVERSION
#define KLAB_SOVERSION "0"
#endif

char *klab_cache_dir(void)
{
    const char *e = getenv("KLAB_CACHE");
    if (e && *e)
        return xasprintf("%s", e);
    e = getenv("XDG_CACHE_HOME");
    if (e && *e)
        return xasprintf("%s/klab", e);
    e = getenv("HOME");
    return xasprintf("%s/.cache/klab", e && *e ? e : "/tmp");
}

/* cache dir + "/" + rest */
static char *in_cache(const char *rest)
{
    char *c = klab_cache_dir();
    char *p = xasprintf("%s/%s", c, rest);
    free(c);
    return p;
}

char *default_kernel(const struct machine_profile *p)
{
    char *rest = xasprintf("kernels/debian-%s/vmlinuz", p->debian_arch);
    char *path = in_cache(rest);
    free(rest);
    return path;
}

char *default_busybox(const struct machine_profile *p)
{
    char *rest = xasprintf("busybox/%s/busybox", p->debian_arch);
    char *path = in_cache(rest);
    free(rest);
    return path;
}

char *segment_cache_dir(void) { return in_cache("segments"); }

/* prefix(): PREFIX from the running binary, <prefix>/bin/klab, when <prefix>/share/klab/gdb/klab is there
 * (a staged DESTDIR, a moved prefix); else the prefix it was built for. */
static const char *prefix(void)
{
    static char found[PATH_MAX];
    if (found[0])
        return found;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash && slash - exe >= 4 && !strncmp(slash - 4, "/bin", 4)) {
        slash[-4] = '\0';
        char share[PATH_MAX + 32];
        struct stat st;
        snprintf(share, sizeof share, "%s/share/klab/gdb/klab", exe);
        if (stat(share, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(found, sizeof found, "%s", exe);
            return found;
        }
    }
    snprintf(found, sizeof found, "%s", built_prefix);
    return found;
}

bool klab_installed(void) { return source_dir == NULL; }

const char *klab_data_dir(void)
{
    static char dir[PATH_MAX + 16];
    if (source_dir)
        return source_dir;
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s/share/klab", prefix());
    return dir;
}

char *klab_lib_path(void)
{
    if (source_dir)
        return xasprintf("%s/build/libklab.so", source_dir);
    return xasprintf("%s/%s/libklab.so.%s", prefix(), KLAB_LIBDIR, KLAB_SOVERSION);
}

char *klab_gdb_dir(void)
{
    const char *e = getenv("KLAB_GDB_DIR");
    return e && *e ? xasprintf("%s", e) : xasprintf("%s/gdb", klab_data_dir());
}
