/* backend/libvirt_api.h. */
#define _GNU_SOURCE
#include "backend/libvirt_api.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The sonames of Debian's libvirt0 (the ABI libvirt has kept since 0.x: docs/api.html, "ABI stability"). */
#define LIBVIRT "libvirt.so.0"
#define LIBVIRT_QEMU "libvirt-qemu.so.0"

static struct libvirt_api api;
static bool loaded;

/* One function of lib into the function pointer at slot; false when lib lacks it. dlsym(3) returns it as a
 * void *, which POSIX makes convertible to a function pointer: copied as bytes, without a cast ISO C lacks. */
static bool load(void *lib, const char *name, void *slot, size_t size)
{
    void *fn = dlsym(lib, name);
    if (!fn || size != sizeof fn)
        return false;
    memcpy(slot, &fn, sizeof fn);
    return true;
}

#define LOAD(lib, fn) load(lib, "vir" #fn, &api.fn, sizeof api.fn)

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
    const char *missing = !LOAD(lv, ConnectOpen) ? "virConnectOpen"
                        : !LOAD(lv, ConnectClose) ? "virConnectClose"
                        : !LOAD(lv, DomainCreateXML) ? "virDomainCreateXML"
                        : !LOAD(lv, DomainLookupByName) ? "virDomainLookupByName"
                        : !LOAD(lv, DomainIsActive) ? "virDomainIsActive"
                        : !LOAD(lv, DomainDestroy) ? "virDomainDestroy"
                        : !LOAD(lv, DomainResume) ? "virDomainResume"
                        : !LOAD(lv, DomainFree) ? "virDomainFree"
                        : !LOAD(lv, DomainCoreDumpWithFormat) ? "virDomainCoreDumpWithFormat"
                        : !LOAD(lv, GetLastError) ? "virGetLastError"
                        : !LOAD(lv, SetErrorFunc) ? "virSetErrorFunc"
                        : !LOAD(qemu, DomainQemuMonitorCommand) ? "virDomainQemuMonitorCommand"
                        : NULL;
    if (missing) {
        snprintf(err, errlen, "the installed libvirt has no %s", missing);
        return NULL;
    }
    loaded = true;
    return &api;
}
