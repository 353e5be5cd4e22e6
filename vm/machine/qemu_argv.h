/* Turns a boot request and a machine profile into QEMU's argv. Pure: no I/O, so it is unit-tested. */
#ifndef KLAB_QEMU_ARGV_H
#define KLAB_QEMU_ARGV_H

#include "machine/profile.h"

#include <stdbool.h>
#include <stdint.h>

enum console_mode {
    CONSOLE_STDIO,   /* the terminal is the guest console (interactive) */
    CONSOLE_SOCKET,  /* a Unix socket in the run-state folder (detached); always also logged */
};

struct boot_request {
    const struct machine_profile *profile;
    const char *qemu;          /* binary (profile->qemu unless overridden) */
    const char *name;
    const char *kernel, *initrd;
    const char *append;        /* extra kernel arguments, may be NULL */
    const char *cpu;           /* NULL: profile default */
    const char *accel;         /* "tcg" or "kvm" */
    unsigned smp;
    uint64_t mem_bytes;
    bool kaslr;
    bool wait_for_gdb;         /* -S: stopped at the first instruction */
    const char *gdb_listen;    /* "tcp:127.0.0.1:1234" or "unix:/path" */
    const char *run_dir;       /* ram, console.log, console.sock, monitor.sock live here */
    const char *swap_image;    /* a raw disk for the guest's swap (virtio-blk, serial klab-swap), or NULL */
    enum console_mode console;
    const char *rr_mode;       /* "record" or "replay" (QEMU's record/replay), NULL for neither */
    const char *rr_dir;        /* the recording: replay.bin and snapshots.qcow2 */
    bool rr_console_input;     /* a recording's console takes typed input (run/console_relay.h) */
    bool file_channel;         /* the virtio-serial port that brings files into a restored VM (file_channel.h) */
    bool incoming;             /* restoring a snapshot (run/snapshot.h): -incoming defer instead of -S, and the
                                * console log appended to the snapshot's */
};

struct argv {
    char **v;
    int n, cap;
};

/* Builds argv (NULL-terminated) into out. 0, or -1 when the request is inconsistent (message in err). */
int qemu_build_argv(const struct boot_request *r, struct argv *out, char *err, size_t errlen);
char *qemu_kernel_cmdline(const struct boot_request *r);   /* malloc'ed -append string */
void argv_free(struct argv *a);
char *argv_join(const struct argv *a);                     /* shell-quoted, for --dry-run and logs */

#endif
