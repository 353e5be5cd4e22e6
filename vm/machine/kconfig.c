/* vm/machine/kconfig.h. */
#define _GNU_SOURCE
#include "machine/kconfig.h"
#include "util/util.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kconfig_load_beside(const char *kernel_image, struct kconfig *c)
{
    char *copy = strdup(kernel_image);
    char *path = path_join(dirname(copy), "config");
    c->text = read_text_file(path);
    free(copy);
    free(path);
    return c->text ? 0 : -1;
}

const char *kconfig_get(const struct kconfig *c, const char *name, char *buf, size_t len)
{
    const size_t n = strlen(name);
    for (const char *p = c->text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) || p[n] != '=')
            continue;
        const char *v = p + n + 1;
        snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
        return buf;
    }
    return NULL;
}

bool kconfig_is_y(const struct kconfig *c, const char *name)
{
    char v[8];
    const char *s = kconfig_get(c, name, v, sizeof v);
    return s && !strcmp(s, "y");
}

bool kconfig_is_m(const struct kconfig *c, const char *name)
{
    char v[8];
    const char *s = kconfig_get(c, name, v, sizeof v);
    return s && !strcmp(s, "m");
}

void kconfig_free(struct kconfig *c)
{
    free(c->text);
    c->text = NULL;
}
