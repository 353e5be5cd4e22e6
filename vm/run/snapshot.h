/* VM snapshots for `klab boot --snapshot` and `klab reset`: a machine saved at its shell and restored in a
 * fraction of a second instead of booting its kernel again (docs/snapshots.md).
 *
 * Guest RAM is a shared file (machine/qemu_argv.c), so the snapshot is that file copied sparsely while the VM
 * is stopped, plus QEMU's device state migrated with the x-ignore-shared capability, which leaves shared RAM
 * blocks out of the stream (QEMU migration/ram.c, "x-ignore-shared": the destination maps the same memory).
 * A restore copies the RAM image into the new run-state folder before QEMU maps it and migrates the device
 * state in (-incoming defer, then migrate_incoming). A plain migration would read the whole RAM file to find
 * its zero pages and make tmpfs allocate all of it (measured: 80 MB → 1 GiB of the run folder's tmpfs).
 *
 * A slot lives in $KLAB_CACHE/snapshots/<hash of the key>/ (private, 0700): manifest, ram, state,
 * console.log. The manifest is the key (run/snapshot_key.h) plus the kernel's and QEMU's file stamps and the
 * initramfs's size and hash; a slot whose manifest differs from this boot's is stale and saved again. */
#ifndef KLAB_SNAPSHOT_H
#define KLAB_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct snapshot {
    char *slot;        /* the slot's folder */
    char *manifest;    /* this boot's machine, as its manifest would say */
    bool ready;        /* the slot holds a snapshot of exactly this machine */
    const char *stale; /* when a snapshot of another build of this machine is there: what changed */
    bool writable;     /* the root is this user's: a missing or stale snapshot may be saved */
    bool shared;       /* others may read the root: what is saved is readable (mode 0644) */
};

/* The slot for QEMU argv run in run_dir, booting kernel with initrd on qemu_path, in root (NULL: the cache's
 * snapshots folder). 0, or -1 with err set. */
int snapshot_find(const char *root, char *const *argv, const char *run_dir, const char *kernel,
                  const char *qemu_path, const char *initrd, struct snapshot *s, char *err, size_t errlen);
void snapshot_free(struct snapshot *s);

/* Until the shell of the VM in run_dir has printed its prompt (its console log), its QEMU process has ended
 * (reaped), or timeout_ms. 0 or -1 with err set. */
int snapshot_wait_shell(const char *run_dir, pid_t qemu, int timeout_ms, char *err, size_t errlen);
/* Saves the running VM of run_dir (stopped first, left stopped) into the slot. 0, or -1 with err set. */
int snapshot_save(const struct snapshot *s, const char *run_dir, char *err, size_t errlen);
/* Forgets the slot (a restore from it failed). */
void snapshot_drop(const struct snapshot *s);

/* Before QEMU starts: the slot's console log into run_dir, and run_dir/ram made at its full size and filled
 * from the slot's RAM image by a child process, the copier, whose pid it returns (-1 with err set). The copy
 * (76 MB for a guest at its shell, 25-40 ms) overlaps QEMU's own start: QEMU maps the file as it is and does not
 * touch guest RAM while a migration is incoming (hw/core/loader.c rom_reset skips RUN_STATE_INMIGRATE), and the
 * copier is waited for before the device state, which reads guest RAM (virtio's vring indices), goes in. */
pid_t snapshot_stage_start(const struct snapshot *s, const char *run_dir, char *err, size_t errlen);
/* Waits for the copier: 0 when the RAM image is whole, -1 with err set. */
int snapshot_stage_finish(pid_t copier, char *err, size_t errlen);
/* Ends the copier of a restore given up on (killed and reaped). */
void snapshot_stage_cancel(pid_t copier);
/* The slot's device state, opened for QEMU to read as its fd SNAPSHOT_STATE_FD (-1 with err set). */
#define SNAPSHOT_STATE_FD 3
int snapshot_open_state(const struct snapshot *s, char *err, size_t errlen);
/* QEMU started with -incoming defer and the state on SNAPSHOT_STATE_FD, its monitor mon: migrates the state
 * in, then leaves the VM paused or (run) running. 0, or -1 with err set. */
struct monitor_conn;
int snapshot_incoming(struct monitor_conn *mon, bool run, char *err, size_t errlen);

#endif
