/* backend/libvirt_api.h. */
#define _GNU_SOURCE
#include "backend/libvirt_api.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The sonames of Debian's libvirt0 (the ABI libvirt has kept since 0.x: docs/api.html, "ABI stability"). */
#define LIBVIRT "libvirt.so.0"
#define LIBVIRT_QEMU "libvirt-qemu.so.0"

static struct libvirt_api api;
static bool loaded;

/* Each function: its name, whether libvirt-qemu has it, and its slot in struct libvirt_api. */
#define FN(name, in_qemu) { "vir" #name, in_qemu, offsetof(struct libvirt_api, name) }
static const struct {
    const char *name;
    bool in_qemu;
    size_t slot;
} functions[] = {
    FN(ConnectOpen, false), FN(ConnectClose, false), FN(DomainCreateXML, false), FN(DomainLookupByName, false),
    FN(DomainIsActive, false), FN(DomainDestroy, false), FN(DomainResume, false), FN(DomainFree, false),
    FN(DomainCoreDumpWithFormat, false), FN(GetLastError, false), FN(SetErrorFunc, false),
    FN(DomainQemuMonitorCommand, true),
};

const struct libvirt_api *libvirt_api(char *err, size_t errlen)
{
    if (loaded)
        return &api;
    void *lv = dlopen(LIBVIRT, RTLD_NOW | RTLD_LOCAL);
    void *qemu = lv ? dlopen(LIBVIRT_QEMU, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!qemu) {
        snprintf(err, errlen, "libvirt is not installed (%s): apt-get install libvirt0", dlerror());
        if (lv)
            dlclose(lv);
        return NULL;
    }
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++) {
        /* dlsym(3) gives a void *, which POSIX makes convertible to a function pointer: copied as bytes into
         * the slot (every member is a pointer to a function), without a cast ISO C lacks. */
        void *fn = dlsym(functions[i].in_qemu ? qemu : lv, functions[i].name);
        if (!fn) {
            snprintf(err, errlen, "the installed libvirt has no %s", functions[i].name);
            return NULL;
        }
        memcpy((char *)&api + functions[i].slot, &fn, sizeof fn);
    }
    loaded = true;
    return &api;
}
