/* The room controller's state, shared by its parts: prepare.c (the room's folder, kernel and workspaces),
 * workspace.c (each candidate's files and image), controller.c (their VMs and the control socket). */
#ifndef KLAB_CONTROLLER_H
#define KLAB_CONTROLLER_H

#include "exam/room.h"
#include "machine/profile.h"
#include "rootfs/initramfs.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct candidate {
    const char *name;
    char *dir, *run_dir, *vm_name;
    uid_t uid;
    gid_t gid;
    bool as_user;        /* the VM runs as the candidate's Unix user */
    pid_t supervisor;    /* the candidate's `klab boot`, 0 when not running */
    unsigned boots;
};

struct controller {
    struct room room;
    char *dir, *kernel, *vmlinux, *accel, *self;
    const struct machine_profile *profile;   /* the room kernel's, from its image */
    struct candidate cand[ROOM_MAX_CANDIDATES];
    time_t deadline;
    int listen_fd;
};

/* The room's folder, its kernel (shared read-only with every candidate), one accelerator probe, every
 * candidate's workspace, room.state and the control socket. 0, or -1 after one line. */
int controller_prepare(struct controller *c, const char *room_file, const char *dir_arg);
/* A candidate's folder: created 0700 (theirs when they are a Unix user), the task's skeleton copied into
 * work/ the first time. 0, or -1 after one line. */
int workspace_setup(const struct controller *c, struct candidate *k, const char *skeleton);
/* The candidate's image (DIR/candidates/NAME/initrd.cpio.gz): busybox plus every .ko of theirs. */
int workspace_initrd(const struct controller *c, const struct candidate *k, char *err, size_t errlen);
/* A qemu room's candidate boots the room's snapshot and gets their modules through klab's file channel
 * (machine/file_channel.h): every .ko of theirs staged in DIR/candidates/NAME/.klab-modules (the
 * controller's copies), into adds (src and dest malloc'ed). How many. */
size_t workspace_modules(const struct candidate *k, struct initramfs_add *adds, size_t max);
/* Runs the room until its time limit or a stop; 0. */
int controller_run(struct controller *c);

#endif
