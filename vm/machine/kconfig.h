/* A kernel's .config, as klab keeps one beside each kernel image (Debian's /boot/config, a source build's). */
#ifndef KLAB_KCONFIG_H
#define KLAB_KCONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct kconfig {
    char *text;   /* the file, NUL-terminated */
};

/* The config beside a kernel image (DIR/config): 0, or -1 when there is none (errno). */
int kconfig_load_beside(const char *kernel_image, struct kconfig *c);
/* CONFIG_NAME's value ("y", "m", "48", "\"...\""), or NULL when it is not set. */
const char *kconfig_get(const struct kconfig *c, const char *name, char *buf, size_t len);
bool kconfig_is_y(const struct kconfig *c, const char *name);
bool kconfig_is_m(const struct kconfig *c, const char *name);
void kconfig_free(struct kconfig *c);

#endif
