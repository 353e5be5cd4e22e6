/* controller_prepare(): the room's folder before any VM starts (vm/exam/controller.h). */
#define _GNU_SOURCE
#include "exam/controller.h"
#include "exam/exam.h"
#include "exam/protocol.h"
#include "machine/accel.h"
#include "machine/kimage.h"
#include "machine/paths.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hard link, else copy (the kernel files candidates' users must be able to read). */
static int share_file(const char *src_path, const char *dst)
{
    unlink(dst);
    char *src = realpath(src_path, NULL);   /* registered kernels are links into their build folder */
    if (!src)
        return -1;
    if (link(src, dst) == 0) {
        free(src);
        return 0;
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    free(src);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    close(in);
    close(out);
    return n < 0 ? -1 : rc;
}

/* The room's registered kernel: its image and vmlinux in the cache, and its profile. */
static int find_room_kernel(struct controller *c, char **kimg, char **kvml)
{
    char *cache = klab_cache_dir();
    char *kdir = xasprintf("%s/kernels/%s", cache, c->room.kernel);
    *kimg = path_join(kdir, "vmlinuz");
    *kvml = path_join(kdir, "vmlinux");
    free(kdir);
    free(cache);
    if (!file_exists(*kimg) || !file_exists(*kvml)) {
        klab_error("exam: kernel '%s' is not registered (make kernel PROFILE=%s, or make kernels)", c->room.kernel,
                   c->room.kernel);
        return -1;
    }
    char err[512];
    struct kimage_info ki;
    if (kimage_inspect(*kimg, false, &ki, err, sizeof err) != 0) {
        klab_error("exam: %s", err);
        return -1;
    }
    c->profile = ki.profile;
    return 0;
}

/* DIR (absolute), not already a running room's. */
static int claim_dir(struct controller *c, const char *dir_arg)
{
    c->dir = dir_arg ? strdup(dir_arg) : xasprintf("exam-%s", c->room.name);
    if (c->dir[0] != '/') {
        char *cwd = realpath(".", NULL);
        char *d = xasprintf("%s/%s", cwd, c->dir);
        free(cwd);
        free(c->dir);
        c->dir = d;
    }
    char *ctl = path_join(c->dir, "control.sock");
    bool running = protocol_answers(ctl);
    free(ctl);
    if (running) {
        klab_error("exam: room %s is already running in %s (klab exam stop %s)", c->room.name, c->dir, c->dir);
        return -1;
    }
    return 0;
}

/* What klab boot reads beside a kernel: its config (which drivers are built in) and modules/ (the virtio and
 * fw_cfg modules klab's image loads), when the cache has them. */
static void place_kernel_extras(const char *kimg, const char *kernel_dir)
{
    static const char *const files[] = { "config", "modules/load.order", "modules/fw_cfg/qemu_fw_cfg.ko" };
    char *copy = strdup(kimg), *src_dir = dirname(copy);
    char *mods = path_join(kernel_dir, "modules"), *fw = path_join(kernel_dir, "modules/fw_cfg");
    char *order = xasprintf("%s/modules/load.order", src_dir);
    char *list = read_text_file(order);
    mkdir(mods, 0755);
    mkdir(fw, 0755);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *src = path_join(src_dir, files[i]), *dst = path_join(kernel_dir, files[i]);
        if (file_exists(src) && share_file(src, dst) == 0)
            chmod(dst, 0644);
        free(src);
        free(dst);
    }
    for (char *line = list ? strtok(list, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || strchr(line, '/'))
            continue;
        char *src = xasprintf("%s/modules/%s", src_dir, line), *dst = path_join(mods, line);
        if (share_file(src, dst) == 0)
            chmod(dst, 0644);
        free(src);
        free(dst);
    }
    free(list);
    free(order);
    free(mods);
    free(fw);
    free(copy);
}

/* DIR/kernel/{vmlinuz,vmlinux}, readable by every candidate; then one accelerator probe for the room:
 * every VM takes its answer instead of probing again. */
static int place_kernel(struct controller *c, const char *kimg, const char *kvml)
{
    char *kernel_dir = path_join(c->dir, "kernel");
    mkdir_p(kernel_dir, 0755);
    chmod(c->dir, 0755);
    c->kernel = path_join(kernel_dir, "vmlinuz");
    c->vmlinux = path_join(kernel_dir, "vmlinux");
    int rc = share_file(kimg, c->kernel) == 0 && share_file(kvml, c->vmlinux) == 0 ? 0 : -1;
    if (rc == 0)
        place_kernel_extras(kimg, kernel_dir);
    if (rc != 0)
        klab_error("exam: cannot place the kernel in %s: %s", kernel_dir, strerror(errno));
    free(kernel_dir);
    if (rc != 0)
        return -1;
    chmod(c->kernel, 0644);
    chmod(c->vmlinux, 0644);
    char why[160], *cache = klab_cache_dir();
    const struct machine_profile *p = c->profile;
    c->accel = strdup(accel_choose(p, p->qemu, p->default_cpu, c->kernel, cache, why, sizeof why));
    free(cache);
    return 0;
}

/* Candidate i's names and folders; whether they are a Unix user the VM runs as (only under root). */
static void name_candidate(struct controller *c, unsigned i)
{
    struct candidate *k = &c->cand[i];
    k->name = c->room.candidates[i];
    k->dir = xasprintf("%s/candidates/%s", c->dir, k->name);
    k->run_dir = path_join(k->dir, "run");
    k->vm_name = xasprintf("exam-%s-%s", c->room.name, k->name);
    struct passwd *pw = getuid() == 0 ? getpwnam(k->name) : NULL;
    k->as_user = pw != NULL;
    if (pw) {
        k->uid = pw->pw_uid;
        k->gid = pw->pw_gid;
    }
}

static int write_room_state(const struct controller *c)
{
    struct exam_room_state rs = { 0 };
    snprintf(rs.name, sizeof rs.name, "%s", c->room.name);
    snprintf(rs.kernel, sizeof rs.kernel, "%s", c->room.kernel);
    snprintf(rs.arch, sizeof rs.arch, "%s", c->profile->arch);
    snprintf(rs.accel, sizeof rs.accel, "%s", c->accel);
    char *task_abs = realpath(c->room.task_dir, NULL);
    snprintf(rs.task, sizeof rs.task, "%s", task_abs ? task_abs : c->room.task_dir);
    free(task_abs);
    if (exam_room_state_write(c->dir, &rs) == 0)
        return 0;
    klab_error("exam: cannot write %s/room.state", c->dir);
    return -1;
}

static int listen_control(struct controller *c)
{
    char *ctl = path_join(c->dir, "control.sock");
    c->listen_fd = protocol_listen(ctl);
    if (c->listen_fd < 0)
        klab_error("exam: cannot listen on %s: %s", ctl, strerror(errno));
    free(ctl);
    return c->listen_fd < 0 ? -1 : 0;
}

static int prepare_room(struct controller *c, const char *dir_arg, const char *skeleton)
{
    char *kimg = NULL, *kvml = NULL;
    int rc = find_room_kernel(c, &kimg, &kvml) == 0 && claim_dir(c, dir_arg) == 0 && place_kernel(c, kimg, kvml) == 0
                 ? 0 : -1;
    free(kimg);
    free(kvml);
    for (unsigned i = 0; rc == 0 && i < c->room.ncandidates; i++) {
        name_candidate(c, i);
        rc = workspace_setup(c, &c->cand[i], skeleton);
    }
    return rc == 0 && write_room_state(c) == 0 && listen_control(c) == 0 ? 0 : -1;
}

int controller_prepare(struct controller *c, const char *room_file, const char *dir_arg)
{
    char err[512];
    if (room_load(room_file, &c->room, err, sizeof err) != 0) {
        klab_error("exam: %s", err);
        return -1;
    }
    char *skeleton = path_join(c->room.task_dir, "skeleton");
    struct stat st;
    int rc = -1;
    if (stat(skeleton, &st) != 0 || !S_ISDIR(st.st_mode))
        klab_error("exam: task %s has no skeleton/ folder", c->room.task_dir);
    else
        rc = prepare_room(c, dir_arg, skeleton);
    free(skeleton);
    return rc;
}
