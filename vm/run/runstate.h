/* The run-state folder of one VM: how `klab gdb`, `klab stop`, `klab status` (and libklab) find a running
 * machine. One folder per VM name under the run root, holding:
 *   state         key=value lines (below)      console.log   everything the guest printed
 *   ram           the guest RAM backend file   monitor.sock  QEMU's human monitor
 *   qemu.log      QEMU's own stderr            console.sock  the console, when detached
 *   exit          why the VM ended (once it has) */
#ifndef KLAB_RUNSTATE_H
#define KLAB_RUNSTATE_H

#include "machine/profile.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct runstate {
    char *name;
    char *dir;
    const struct machine_profile *profile;
    pid_t qemu_pid;
    pid_t supervisor_pid;
    char *gdb_listen;      /* "tcp:127.0.0.1:1234" or "unix:/path" */
    int gdb_port;          /* 0 for a Unix socket */
    char *kernel, *vmlinux, *initrd, *accel, *cpu;
    uint64_t mem_bytes;
    bool kaslr;            /* booted with KASLR on: symbols sit at a slide found live (klab gdb) */
    bool restored;         /* this QEMU was restored from a snapshot (run/snapshot.h), not booted */
    char *backend;         /* "qemu" (klab runs QEMU) or "libvirt" (a transient domain klab-<name>) */
    char *connect;         /* libvirt URI, "" for libvirt's default */
    struct ram_region ram[MAX_RAM_REGIONS];
    size_t nram;
};

/* Where run-state folders live: $KLAB_RUN_DIR, else $XDG_RUNTIME_DIR/klab, else /dev/shm/klab-UID (tmpfs, so
 * the RAM file costs no disk I/O), else /tmp/klab-UID. malloc'ed. */
char *runstate_root(void);
char *runstate_dir_for(const char *name);
/* The run root is the user's own and writable by nobody else (vm/util/private_dir.h); created 0700 when
 * `create`. 0 = private, 1 = absent (and not created), -1 = refused after one error line (said once). */
int runstate_check_root(bool create);
/* The VM folder NAME, opened and checked private (created 0700 when `create`): a descriptor, or -1. */
int runstate_open_dir(const char *name, bool create);
/* Takes the VM folder's lock (held by its supervisor for the VM's life): a descriptor, or -1 if held. */
int runstate_lock(int dfd);
/* `make vm-*` says it is starting VM NAME (fetching, building the image) as process PID; announced: that
 * process is still alive. */
int runstate_announce(const char *name, pid_t pid);
bool runstate_announced(const char *name);
/* Claims the VM folder for a boot: created private, its lock taken — held by the caller and its supervisor
 * for the VM's whole life, which is how every other klab command knows the VM is starting or running — and
 * emptied of what an ended VM left. The lock's descriptor, or -1 after one line. */
int runstate_claim(const char *name);
/* A VM of that name is starting or running: its folder's lock is held. */
bool runstate_starting(const char *name);

int runstate_write(const struct runstate *rs);             /* writes <dir>/state atomically */
int runstate_load(const char *name, struct runstate *rs);  /* 0, or -1 if there is no such VM */
/* The state file's text (modified in place) into rs, whose name and dir the caller set: 0, or -1 (rs freed)
 * when arch, qemu_pid or gdb is missing. */
int runstate_parse(char *text, struct runstate *rs);
void runstate_free(struct runstate *rs);

/* The QEMU process of this state is alive (and is really ours: its command line names the VM). For a libvirt
 * domain: its supervisor is, which holds the connection the domain dies with. */
bool runstate_alive(const struct runstate *rs);
bool runstate_is_libvirt(const struct runstate *rs);
/* One human-monitor command to the VM: its monitor socket, or libvirt's passthrough. malloc'ed or NULL. */
char *runstate_monitor(const struct runstate *rs, const char *cmd, int timeout_ms);

/* Names of all VMs starting or running (malloc'ed array of malloc'ed strings, *count set). Folders of ended
 * VMs are swept on the way, keeping nothing but the logs and `exit` (why it ended). */
char **runstate_list(size_t *count, bool clean_stale);
/* Names of the folders of VMs that have ended (swept first), for `klab status`. */
char **runstate_list_ended(size_t *count);
void runstate_free_list(char **names, size_t count);

/* Shared by the commands that act on one running VM: NAME if given, else the only one running. Prints one
 * clear line and returns NULL when that is not possible. malloc'ed. */
char *resolve_vm_name(const char *given);

/* Valid VM names: [A-Za-z0-9_.-], 1..64 chars, not starting with '.'. */
bool runstate_valid_name(const char *name);

#endif
