/* The libvirt backend of klab boot: a boot request as a transient libvirt domain (backend/libvirt.c). Its
 * struct backend_ops is libvirt_backend (backend/backend.h). */
#ifndef KLAB_BACKEND_LIBVIRT_H
#define KLAB_BACKEND_LIBVIRT_H

#include "machine/qemu_argv.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct libvirt_vm;

/* The domain XML (named klab-<name>) for the machine qemu_build_argv would start. malloc'ed. */
char *libvirt_domain_xml(const struct boot_request *r, const char *qemu_path);
/* Connects to uri (NULL: libvirt's default), creates the domain (paused: at its first instruction;
 * destroyed with this connection) and opens the gdb stub on gdb_listen ("tcp:127.0.0.1:PORT"). */
struct libvirt_vm *libvirt_start(const char *uri, const char *xml, const char *gdb_listen, bool paused, char *err,
                                 size_t errlen);
/* Until the domain is gone; destroys it when *stop is set. 0, or -1 when libvirt cannot tell. */
int libvirt_wait(struct libvirt_vm *vm, volatile sig_atomic_t *stop);
void libvirt_close(struct libvirt_vm *vm);
/* One human-monitor command to the running domain of klab VM vm_name. malloc'ed output, or NULL. */
char *libvirt_monitor(const char *uri, const char *vm_name, const char *cmd);
/* A memory-only core dump of klab VM vm_name to path through libvirt's own API (virDomainCoreDumpWithFormat):
 * format "elf" (libvirt's raw: ELF, physical addresses), "kdump-zlib", "kdump-lzo" or "kdump-snappy". Debian 12's
 * libvirtd dies on QEMU's DUMP_COMPLETED event for a dump it did not start (HMP passthrough), so a dump goes
 * through libvirt's job. 0, or -1 with err set. */
int libvirt_dump(const char *uri, const char *vm_name, const char *path, const char *format, char *err,
                 size_t errlen);

#endif
