/* How klab runs a machine: QEMU as its own child (backend/qemu.c) or a transient libvirt domain
 * (backend/libvirt.c), behind one table, so that one supervisor (run/supervisor.c) serves both. */
#ifndef KLAB_BACKEND_H
#define KLAB_BACKEND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct boot_plan;
struct runstate;
struct vm_instance;   /* one backend's running machine */

struct backend_ops {
    const char *name;            /* "qemu", "libvirt": the run state's backend= */
    bool console_on_terminal;    /* can give the guest console the terminal (else console.sock) */
    bool ram_file;               /* klab reads guest RAM from a file it shares (else through the stub) */
    /* --dry-run: what would be started, on f. 0, or the exit status after one error line. */
    int (*describe)(const struct boot_plan *p, FILE *f);
    /* In the supervisor: starts the machine, waits until its stub listens, sets p->rs's pids and writes
     * the run state. NULL after one error line, with *status what the VM's end is reported as. */
    struct vm_instance *(*start)(struct boot_plan *p, int *status);
    /* Until the machine ends (ending it once *stop is set): a waitpid() status. echo: copy console.log
     * to stdout meanwhile. */
    int (*wait)(struct vm_instance *vm, volatile sig_atomic_t *stop, bool echo);
    void (*close)(struct vm_instance *vm);
    /* One human-monitor command to the VM of that run state: malloc'ed output, or NULL. */
    char *(*monitor)(const struct runstate *rs, const char *cmd, int timeout_ms);
    /* A memory-only dump to path, written by the backend itself and finished on return (NULL: klab drives
     * QEMU's dump-guest-memory through monitor). format: "elf", "kdump-zlib", ... 0, or -1 with err set. */
    int (*dump)(const struct runstate *rs, const char *path, const char *format, char *err, size_t errlen);
};

extern const struct backend_ops qemu_backend, libvirt_backend;
/* klab boot --save-snapshot: the machine's snapshot saved (a boot to its shell) unless a fresh one is there;
 * nothing left running. klab boot's exit status. */
int qemu_save_snapshot(struct boot_plan *p);
/* By name; NULL and "" are QEMU's (run states written before there were backends). NULL if unknown. */
const struct backend_ops *backend_find(const char *name);

#endif
