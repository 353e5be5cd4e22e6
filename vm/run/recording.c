/* vm/run/recording.h. QEMU's record/replay (docs/system/replay.rst): -icount ...,rr=record|replay,rrfile=,
 * rrsnapshot=init writes or reads every non-deterministic input (clock reads, interrupts, the serial
 * console's input) and keeps VM snapshots on the first drive that can hold them. A replay must boot the
 * very same machine: the same kernel, initramfs, command line, CPU, memory and QEMU; anything else diverges
 * silently, so a changed file is refused. */
#define _GNU_SOURCE
#include "run/recording.h"
#include "util/kv.h"
#include "util/private_dir.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *recording_path(const char *dir, const char *name)
{
    return path_join(dir, name);
}

static void stamp(char *buf, size_t len, const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0)
        snprintf(buf, len, "%lld:%lld", (long long)st.st_size, (long long)st.st_mtime);
    else
        snprintf(buf, len, "-");
}

char *recording_stamps(const char *kernel, const char *vmlinux, const char *qemu)
{
    char k[48], v[48], q[48];
    stamp(k, sizeof k, kernel);
    stamp(v, sizeof v, vmlinux);
    stamp(q, sizeof q, qemu);
    return xasprintf("%s %s %s", k, v, q);
}

int recording_create(const char *dir, const char *qemu_img)
{
    if (mkdir(dir, 0700) != 0) {
        klab_error("--record %s: %s", dir, errno == EEXIST ? "exists already (a recording is never overwritten)"
                                                           : strerror(errno));
        return -1;
    }
    char *drive = recording_path(dir, "snapshots.qcow2");
    char *const argv[] = { (char *)qemu_img, "create", "-q", "-f", "qcow2", drive, "256M", NULL };
    const struct spawn s = { .argv = argv, .timeout_ms = 30000 };
    const int rc = spawn_run(&s);
    free(drive);
    if (rc != 0) {
        klab_error("--record: %s create failed (status %d): the snapshot drive QEMU's replay needs", qemu_img, rc);
        return -1;
    }
    return 0;
}

/* Copies src to dst (new, 0600). */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
    int rc = -1;
    char buf[65536];
    if (in >= 0 && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                break;
        rc = n == 0 ? 0 : -1;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

int recording_finish(const struct recording *r, const char *initrd)
{
    char *copy = recording_path(r->dir, "initramfs.cpio.gz");
    int rc = copy_file(initrd, copy);
    if (rc != 0)
        klab_error("--record: cannot copy %s into %s: %s", initrd, r->dir, strerror(errno));
    free(copy);
    if (rc != 0)
        return -1;
    char *text = xasprintf("# klab recording: klab replay %s\narch=%s\nkernel=%s\nvmlinux=%s\nappend=%s\ncpu=%s\n"
                           "qemu=%s\nmem=%llu\nkaslr=%d\nno_pvh=%d\nstamps=%s\n", r->dir, r->arch, r->kernel,
                           r->vmlinux ? r->vmlinux : "", r->append ? r->append : "", r->cpu ? r->cpu : "", r->qemu,
                           (unsigned long long)r->mem, r->kaslr, r->no_pvh, r->stamps);
    char *path = recording_path(r->dir, "recording");
    rc = write_text_file(path, text);
    if (rc != 0)
        klab_error("--record: cannot write %s: %s", path, strerror(errno));
    free(path);
    free(text);
    return rc;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int parse_manifest(char *text, struct recording *r)
{
    struct kv_reader kv;
    kv_begin(&kv, text, KV_LINE_COMMENTS);
    char *key, *value;
    while (kv_next(&kv, '=', &key, &value)) {
        if (!value)
            return -1;
        char **field = !strcmp(key, "arch") ? &r->arch : !strcmp(key, "kernel") ? &r->kernel
                     : !strcmp(key, "vmlinux") ? &r->vmlinux : !strcmp(key, "append") ? &r->append
                     : !strcmp(key, "cpu") ? &r->cpu : !strcmp(key, "qemu") ? &r->qemu
                     : !strcmp(key, "stamps") ? &r->stamps : NULL;
        if (field) {
            free(*field);
            *field = dup_or_null(value);
        } else if (!strcmp(key, "mem")) {
            if (!parse_u64(value, &r->mem))
                return -1;
        } else if (!strcmp(key, "kaslr") || !strcmp(key, "no_pvh")) {
            *(!strcmp(key, "kaslr") ? &r->kaslr : &r->no_pvh) = !strcmp(value, "1");
        } else {
            return -1;
        }
    }
    return r->arch && r->kernel && r->qemu && r->stamps && r->mem ? 0 : -1;
}

int recording_open(const char *dir, struct recording *r)
{
    *r = (struct recording){ .dir = strdup(dir) };
    char err[300];
    int fd = private_dir_open(dir, false, err, sizeof err);
    if (fd < 0) {
        klab_error("replay: %s", err);
        return -1;
    }
    char *text = read_text_file_at(fd, "recording");
    struct stat st;
    const bool have = fstatat(fd, "replay.bin", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                      fstatat(fd, "snapshots.qcow2", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                      fstatat(fd, "initramfs.cpio.gz", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!text || !have) {
        klab_error("replay: %s is not a finished klab recording (it needs recording, replay.bin, snapshots.qcow2 "
                   "and initramfs.cpio.gz)", dir);
        free(text);
        return -1;
    }
    int rc = parse_manifest(text, r);
    free(text);
    if (rc != 0) {
        klab_error("replay: %s/recording is not a klab recording manifest", dir);
        return -1;
    }
    return 0;
}

int recording_check(const struct recording *r, const char *qemu)
{
    char *now = recording_stamps(r->kernel, r->vmlinux, qemu);
    int rc = strcmp(now, r->stamps) ? -1 : 0;
    if (rc != 0)
        klab_error("replay: the kernel, vmlinux or QEMU changed since %s was recorded (%s, now %s): a replay "
                   "would diverge; record again", r->dir, r->stamps, now);
    free(now);
    return rc;
}

void recording_free(struct recording *r)
{
    free(r->dir);
    free(r->arch);
    free(r->kernel);
    free(r->vmlinux);
    free(r->append);
    free(r->cpu);
    free(r->qemu);
    free(r->stamps);
    memset(r, 0, sizeof *r);
}
