#include "machine/paths.h"

#include "util/util.h"

#include <stdlib.h>

#ifndef KLAB_SOURCE_DIR
#define KLAB_SOURCE_DIR "."
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

const char *klab_source_dir(void)
{
    return KLAB_SOURCE_DIR;
}

const char *klab_gdb_dir(void)
{
    const char *e = getenv("KLAB_GDB_DIR");
    return e && *e ? e : KLAB_SOURCE_DIR "/gdb";
}
