/* libvirt's C API, loaded the first time a libvirt VM is used (dlopen), not linked: linked in, libvirt and
 * the 50 libraries it pulls in (glib, gnutls, curl, ICU, krb5...) took 7 ms of the start of every klab command
 * (`klab --version`: 9.2 ms linked, 1.8 ms without), for the few commands that use it. */
#ifndef KLAB_LIBVIRT_API_H
#define KLAB_LIBVIRT_API_H

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stddef.h>

/* The functions klab calls, named without their "vir" prefix, typed from libvirt's own declarations. */
struct libvirt_api {
    __typeof__(virConnectOpen) *ConnectOpen;
    __typeof__(virConnectClose) *ConnectClose;
    __typeof__(virDomainCreateXML) *DomainCreateXML;
    __typeof__(virDomainLookupByName) *DomainLookupByName;
    __typeof__(virDomainIsActive) *DomainIsActive;
    __typeof__(virDomainDestroy) *DomainDestroy;
    __typeof__(virDomainResume) *DomainResume;
    __typeof__(virDomainFree) *DomainFree;
    __typeof__(virDomainCoreDumpWithFormat) *DomainCoreDumpWithFormat;
    __typeof__(virGetLastError) *GetLastError;
    __typeof__(virSetErrorFunc) *SetErrorFunc;
    __typeof__(virDomainQemuMonitorCommand) *DomainQemuMonitorCommand;   /* libvirt-qemu */
};

/* The API (loaded once), or NULL with err set: libvirt is not installed, or lacks a function. */
const struct libvirt_api *libvirt_api(char *err, size_t errlen);

#endif
