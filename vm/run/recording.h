/* A recording of a VM's execution (klab boot --record DIR, klab replay DIR): a folder of the user's with
 * QEMU's record/replay log (replay.bin), the qcow2 drive QEMU keeps its snapshots in (snapshots.qcow2), the
 * exact initramfs the guest booted (initramfs.cpio.gz), and a manifest (recording) of everything else that
 * shapes the run, so that a replay boots the same machine or refuses to. docs/walkthroughs/who-wrote-it.md. */
#ifndef KLAB_RECORDING_H
#define KLAB_RECORDING_H

#include <stdbool.h>
#include <stdint.h>

struct recording {
    char *dir;
    char *arch, *kernel, *vmlinux, *append, *cpu, *qemu;
    uint64_t mem;
    bool kaslr, no_pvh;
    char *stamps;   /* "size:mtime" of kernel, vmlinux and QEMU at record time, space-separated */
};

/* Makes DIR (0700, which must not exist yet: a recording is never overwritten) with its snapshot drive
 * (qemu-img create). 0, or -1 after one line. */
int recording_create(const char *dir, const char *qemu_img);
/* Copies the booted initramfs in and writes the manifest. 0, or -1 after one line. */
int recording_finish(const struct recording *r, const char *initrd);
/* Reads DIR's manifest: the folder must be the caller's, not writable by others, no symlinks. The manifest
 * is data, not trusted: its qemu= only says what ran (replay runs the profile's QEMU, recording_check). 0, or
 * -1 after one line. */
int recording_open(const char *dir, struct recording *r);
/* The kernel, vmlinux and the QEMU that will replay (qemu) must be the files the recording was made with
 * (size and mtime). 0, or -1 after one line. */
int recording_check(const struct recording *r, const char *qemu);
void recording_free(struct recording *r);
/* "size:mtime" stamps of the three files, malloc'ed. */
char *recording_stamps(const char *kernel, const char *vmlinux, const char *qemu);
/* The paths inside a recording, malloc'ed. */
char *recording_path(const char *dir, const char *name);

#endif
