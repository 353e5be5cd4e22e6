/* machine/module_path.h. */
#define _GNU_SOURCE
#include "machine/module_path.h"
#include "machine/paths.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 3

/* Links every regular NAME.ko under dir (MAX_DEPTH folders down) into farm, unless NAME.ko is there already. */
static int link_modules(const char *dir, const char *farm, int depth)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *path = path_join(dir, e->d_name);
        struct stat st;
        size_t len = strlen(e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth < MAX_DEPTH)
            n += link_modules(path, farm, depth + 1);
        else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && len > 3 && !strcmp(e->d_name + len - 3, ".ko")) {
            char *link = path_join(farm, e->d_name);
            char *abs = realpath(path, NULL);
            if (abs && symlink(abs, link) == 0)
                n++;
            free(abs);
            free(link);
        }
        free(path);
    }
    if (d)
        closedir(d);
    return n;
}

/* The registered kernel's name: vmlinux is <cache>/kernels/NAME/vmlinux (or a link there). */
static char *kernel_name(const char *vmlinux)
{
    char *copy = strdup(vmlinux);
    char *dir = dirname(copy);
    char *name = strdup(basename(dir));
    free(copy);
    return name;
}

char *module_farm(const char *vmlinux)
{
    const char *tmp = getenv("TMPDIR");
    char *farm = xasprintf("%s/klab-modules-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(farm)) {
        free(farm);
        return NULL;
    }
    int n = 0;
    const char *env = getenv("KLAB_MODULE_PATH");
    char *list = strdup(env ? env : "");
    for (char *save = NULL, *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
        n += link_modules(d, farm, 0);
    free(list);
    char *name = kernel_name(vmlinux);
    char *here = xasprintf("build/modules/%s", name);
    n += link_modules(here, farm, 0);
    if (!klab_installed()) {
        char *tree = xasprintf("%s/build/modules/%s", klab_data_dir(), name);
        n += link_modules(tree, farm, 0);
        free(tree);
    }
    char *copy = strdup(vmlinux);
    char *own = path_join(dirname(copy), "modules");
    n += link_modules(own, farm, 0);
    free(own), free(copy), free(here), free(name);
    if (n == 0) {
        module_farm_remove(farm);
        return NULL;
    }
    return farm;
}

void module_farm_remove(char *dir)
{
    if (!dir)
        return;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}
