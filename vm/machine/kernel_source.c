/* vm/machine/kernel_source.h. */
#define _GNU_SOURCE
#include "machine/kernel_source.h"
#include "machine/paths.h"
#include "util/kv.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of key in a key=value file, malloc'ed, or NULL. */
static char *file_value(const char *path, const char *key)
{
    char *text = read_text_file(path), *found = NULL, *k, *v;
    if (!text)
        return NULL;
    struct kv_reader r;
    kv_begin(&r, text, KV_NO_COMMENTS);
    while (!found && kv_next(&r, '=', &k, &v))
        if (v && !strcmp(k, key))
            found = strdup(v);
    free(text);
    return found;
}

/* "6.1.192-3" → "6.1.192" (upstream) and "6.1" (the linux-source-X.Y series). */
static int split_version(const char *package, char upstream[32], char series[16])
{
    unsigned a, b, c;
    if (sscanf(package, "%u.%u.%u", &a, &b, &c) != 3)
        return -1;
    snprintf(upstream, 32, "%u.%u.%u", a, b, c);
    snprintf(series, 16, "%u.%u", a, b);
    return 0;
}

/* The tree's own version from its top Makefile (VERSION, PATCHLEVEL, SUBLEVEL): what it really holds. */
static int makefile_version(const char *dir, char out[32])
{
    char *path = path_join(dir, "Makefile"), *text = read_text_file(path);
    free(path);
    if (!text)
        return -1;
    unsigned v[3];
    const char *keys[] = { "VERSION = ", "PATCHLEVEL = ", "SUBLEVEL = " };
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        char *at = text;   /* the key at the start of a line */
        while (at && strncmp(at, keys[i], strlen(keys[i])))
            at = (at = strchr(at, '\n')) ? at + 1 : NULL;
        rc = at && sscanf(at + strlen(keys[i]), "%u", &v[i]) == 1 ? 0 : -1;
    }
    free(text);
    if (rc == 0)
        snprintf(out, 32, "%u.%u.%u", v[0], v[1], v[2]);
    return rc;
}

/* The VERSION file of the kernel whose vmlinux this is (registered kernels keep both in one folder). */
static char *version_file(const char *vmlinux)
{
    char *real = realpath(vmlinux, NULL);
    char *dir = strdup(real ? real : vmlinux);
    free(real);
    char *slash = strrchr(dir, '/');
    char *file = slash ? (*slash = '\0', path_join(dir, "VERSION")) : strdup("VERSION");
    free(dir);
    return file;
}

int kernel_source_find(const char *vmlinux, struct kernel_source *out, char *why, size_t whylen)
{
    *out = (struct kernel_source){ 0 };
    char *vfile = version_file(vmlinux), *package = file_value(vfile, "package_version");
    free(vfile);
    char upstream[32], series[16], tree[32] = "";
    if (!package || split_version(package, upstream, series) != 0) {
        free(package);
        return 1;
    }
    char *cache = klab_cache_dir();
    char *dir = xasprintf("%s/src/linux-source-%s", cache, series);
    char *stampf = path_join(dir, ".klab-version"), *stamp = read_text_file(stampf);
    if (stamp)
        stamp[strcspn(stamp, "\n")] = '\0';
    int rc = -1;
    if (makefile_version(dir, tree) != 0)
        snprintf(why, whylen, "no source lines: Debian's linux-source-%s is not unpacked (kernels/build.sh --source "
                 "unpacks it into %s)", series, dir);
    else if (strcmp(tree, upstream) || (stamp && strcmp(stamp, package)))
        snprintf(why, whylen, "no source lines: the kernel is %s, but %s holds %s (apt-get install "
                 "linux-source-%s=%s, then kernels/build.sh --source)", package, dir, stamp ? stamp : tree, series,
                 package);
    else
        rc = 0;
    if (rc == 0)
        *out = (struct kernel_source){ .dir = strdup(dir),
                                       .prefix = xasprintf("/build/reproducible-path/linux-%s", upstream) };
    free(stamp);
    free(stampf);
    free(dir);
    free(cache);
    free(package);
    return rc;
}

void kernel_source_free(struct kernel_source *s)
{
    free(s->dir);
    free(s->prefix);
    *s = (struct kernel_source){ 0 };
}
