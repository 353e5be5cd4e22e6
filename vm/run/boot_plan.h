/* What `klab boot` will start, decided before anything starts. boot_resolve() does the looking (files,
 * kernel banners, free ports, the KVM probe); boot_plan() is pure — options and those facts in, the backend's
 * request and the VM's run state out — so it is unit-tested like qemu_build_argv. */
#ifndef KLAB_BOOT_PLAN_H
#define KLAB_BOOT_PLAN_H

#include "machine/qemu_argv.h"
#include "run/runstate.h"
#include "rootfs/initramfs.h"

#include <stdbool.h>
#include <sys/types.h>

struct backend_ops;

/* The user's request: klab boot's options, as vm/cmd/boot.c's table parses them. */
struct boot_options {
    const char *arch, *kernel, *vmlinux, *initrd, *append, *cpu, *accel, *name, *qemu, *gdb_socket, *connect;
    const char *backend;          /* "qemu" (default) or "libvirt" */
    struct initramfs_add *adds;   /* --add, for the default image */
    size_t nadds;
    const char **runs;            /* --run commands */
    size_t nruns;
    unsigned smp;
    uint64_t mem;
    uint64_t swap;                /* --swap SIZE: bytes of the swap disk, 0 for none */
    int gdb_port;
    pid_t announce;   /* --announce PID: only say that PID is starting this VM (for `make vm-*`) */
    bool kaslr, no_wait, detach, dry_run;
    bool no_pvh;                  /* boot the image through its decompressor even when vmlinux has a PVH entry */
    const char *record;           /* --record DIR: QEMU's record/replay log and snapshots go there (run/recording.h) */
    bool console_input;           /* --console-input: a recording whose console takes typed input */
    const char *replay;           /* klab replay DIR: boot that recording again */
    bool smp_given;
    bool snapshot;                /* --snapshot: restore this machine at its shell (run/snapshot.h) */
    const char *snapshot_dir;     /* --snapshot-dir: the snapshots' folder (default: the cache's) */
    bool save_snapshot;           /* --save-snapshot: only make sure the snapshot is saved */
};

/* What boot_resolve() found on this machine. Strings malloc'ed (boot_facts_free). */
struct boot_facts {
    const struct machine_profile *profile;
    char *kernel, *vmlinux;   /* absolute; vmlinux NULL when there is none (gdb will need one, booting not) */
    char *initrd;             /* the user's --initrd, absolute; NULL: klab builds one in the run-state folder */
    unsigned page_shift;      /* the kernel's page size, from its image */
    char *qemu_path;
    char *gdb_listen;         /* "tcp:127.0.0.1:PORT" or "unix:/abs/path" */
    int gdb_port;             /* 0 for a Unix socket */
    const char *cpu;          /* boot_cpu()'s choice */
    const char *accel;        /* "kvm" or "tcg" */
    char accel_why[160];      /* why, when the probe chose */
    char *run_dir;
    char *swap_image;         /* --swap: run_dir/swap.img */
    char *swap_modules;       /* --swap: the kernel's virtio modules folder; NULL when they are built in */
    char *fw_cfg_modules;     /* qemu_fw_cfg.ko's folder (VMCOREINFO for dumps); NULL: built in or none */
    bool tty;                 /* stdin and stdout are a terminal */
    bool vmlinux_pvh;         /* the checked vmlinux has a PVH entry and the profile boots one */
    bool file_channel;        /* --snapshot: the kernel can have klab's file channel (machine/file_channel.h) */
    char *channel_modules;    /* its virtio modules' folder; NULL when built in */
};

struct boot_plan {
    struct boot_request req;            /* what the backend starts */
    struct runstate rs;                 /* what klab gdb / stop / status will read (pids set at start) */
    const struct backend_ops *backend;
    const char *connect;                /* libvirt URI, NULL for libvirt's default */
    bool detach;
    bool interactive;                   /* the terminal is the guest's console */
    bool quiet;                         /* say nothing but errors (detached) */
    bool resume;                        /* started paused because only the stub can tell a recording is up
                                         * (it has no monitor): --no-wait continues it then */
    bool snapshot;                      /* restore the machine from its snapshot (saved first if need be) */
    const char *snapshot_dir;           /* where snapshots live; NULL: $KLAB_CACHE/snapshots */
    bool restored;                      /* set by the backend: this start was a restore */
    /* --add / --run for a snapshot's VM: delivered through the file channel after each start */
    const struct initramfs_add *deliver_adds;
    size_t ndeliver_adds;
    const char *const *deliver_runs;
    size_t ndeliver_runs;
    /* A cold start after a reset packs the lab image again, so its --add files are read again as the file
     * channel reads them for a snapshot's VM (set by klab boot; NULL: the image is the user's --initrd).
     * 0, or -1 with why set. */
    int (*repack)(struct boot_plan *p, char *why, size_t whylen);
    void *repack_ctx;
};

/* The CPU model: --cpu, else the profile's, else its full CPU when the default lacks the kernel's granule. */
const char *boot_cpu(const struct boot_options *o, const struct machine_profile *p, unsigned page_shift);
/* Pure: fills plan from the options and facts (pointers into both: they must outlive it). */
void boot_plan(const struct boot_options *o, const struct boot_facts *f, struct boot_plan *plan);

/* Looks at the machine for boot_plan: 0, or the exit status after one error line. */
int boot_resolve(const struct boot_options *o, struct boot_facts *f);
void boot_facts_free(struct boot_facts *f);

#endif
