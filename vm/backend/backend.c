/* The backend table (backend/backend.h). */
#include "backend/backend.h"

#include <string.h>

const struct backend_ops *backend_find(const char *name)
{
    if (!name || !*name || !strcmp(name, qemu_backend.name))
        return &qemu_backend;
    if (!strcmp(name, libvirt_backend.name))
        return &libvirt_backend;
    return NULL;
}
