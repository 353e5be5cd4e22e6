/* klab exam grade DIR CANDIDATE: the candidate's module, built from their workspace, booted in a fresh VM
 * (never their own), run against the task's checks; a report in text and JSON beside their workspace.
 *
 * The task's `checks` file (in the task folder):
 *   program = myhello-test.c                         a user-space test, built static, at /bin/<name> in the guest
 *   check NAME : run COMMAND                          passes when COMMAND exits 0
 *   check NAME : output COMMAND = TEXT                passes when COMMAND exits 0 and prints TEXT
 *   check NAME : console TEXT                         passes when the console (dmesg included) shows TEXT
 * The checks run in order in the guest, from a klab.d hook that marks each result on the console and
 * powers the guest off at the end. */
#define _GNU_SOURCE
#include "exam/exam.h"
#include "exam/checks.h"
#include "exam/report.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "run/runstate.h"
#include "exam/sandbox.h"
#include "exam/untrusted_copy.h"
#include "util/spawn.h"
#include "util/util.h"

#include "rootfs/initramfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The guest side: each check's exit status and output, marked on the console, then power off. */
static char *grade_hook(const struct task_checks *t)
{
    char *s = strdup("echo KLAB-GRADE-BEGIN\n");
    for (unsigned i = 0; i < t->n; i++) {
        const struct check *c = &t->c[i];
        if (c->kind == CHECK_CONSOLE)
            continue;
        char *n = xasprintf("%sout=$( %s 2>&1 ); rc=$?\necho \"$out\" | sed 's/^/KLAB-OUT %s: /'\n"
                            "echo \"KLAB-CHECK %s rc=$rc\"\n", s, c->command, c->name, c->name);
        free(s);
        s = n;
    }
    char *n = xasprintf("%sdmesg | sed 's/^/KLAB-DMESG /'\necho KLAB-GRADE-END\npoweroff -f\n", s);
    free(s);
    return n;
}

/* A trusted helper (the grader's own compiler, module.sh, klab boot) with its output in LOG: its exit status,
 * SPAWN_TIMEOUT after TERM at the deadline, or SPAWN_FAILED. */
static int run_wait(char *const argv[], const char *log, int timeout_s)
{
    struct spawn s = { .argv = argv, .output = log, .timeout_ms = timeout_s * 1000, .deadline_signal = SIGTERM };
    return spawn_run(&s);
}

static void append_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) {
            /* the note is extra: the build's own lines are already there */
        }
        close(fd);
    }
}

static char *first_error_line(const char *log)
{
    char *text = read_text_file(log);
    char *line = NULL;
    for (char *s = text ? strtok(text, "\n") : NULL; s && !line; s = strtok(NULL, "\n"))
        if (strstr(s, "error") || strstr(s, "Error"))
            line = strdup(s);
    free(text);
    return line ? line : strdup("see the build log");
}

/* The output a check printed in the guest (its KLAB-OUT lines), and its exit status (-1 when absent). */
/* Who builds a candidate's module, and where: their Unix user when the grader is root and they have one,
 * else nobody (root) or the grader in a user namespace (not root) — always in the sandbox. */
struct builder {
    struct copy_rules rules;
    char *sandbox, *kernel, *module_sh, *cache;
    const char *read_dirs[3];
    size_t nread;
    const char *room_dir;
};

static void builder_free(struct builder *b)
{
    free(b->sandbox);
    free(b->kernel);
    free(b->module_sh);
    free(b->cache);
}

static int builder_for(const char *candidate, const char *room_dir, const char *gdir, const char *kernel,
                       struct builder *b)
{
    memset(b, 0, sizeof *b);
    struct passwd *pw = getuid() == 0 ? getpwnam(candidate) : NULL;
    b->rules = (struct copy_rules){ .check_author = pw != NULL, .author = pw ? pw->pw_uid : 0,
                                    .uid = pw ? pw->pw_uid : 65534, .gid = pw ? pw->pw_gid : 65534,
                                    .max_bytes = 64u << 20 };
    if (getuid() != 0) {
        b->rules.uid = getuid();
        b->rules.gid = getgid();
    }
    b->room_dir = room_dir;
    b->kernel = strdup(kernel);
    b->sandbox = path_join(gdir, "sandbox");
    b->module_sh = xasprintf("%s/kernels/module.sh", klab_data_dir());
    b->cache = klab_cache_dir();
    /* The kernel's build folder, installed (Debian's headers) with the grader's rights, before any of the
     * candidate's code runs. */
    char *const prep[] = { "bash", b->module_sh, "--prepare", (char *)kernel, NULL };
    char *prep_log = path_join(gdir, "prepare.txt");
    int rc = run_wait(prep, prep_log, 300);
    if (rc != 0) {
        char *why = first_error_line(prep_log);
        klab_error("exam grade: kernel %s has no module build folder: %s", kernel, why);
        free(why);
    }
    free(prep_log);
    if (mkdir(b->sandbox, 0700) != 0 || (getuid() == 0 && chown(b->sandbox, b->rules.uid, b->rules.gid) != 0)) {
        klab_error("exam grade: cannot make the build sandbox %s: %s", b->sandbox, strerror(errno));
        return -1;
    }
    return rc == 0 ? 0 : -1;
}

/* Folders the build reads at their own paths: klab's scripts, the kernel's registration and build folder,
 * and the kernel source an O= build folder refers to. */
static void builder_reads(struct builder *b, char **owned)
{
    char *kernels = xasprintf("%s/kernels", klab_data_dir());
    char *reg = xasprintf("%s/kernels/%s", b->cache, b->kernel);
    char *srclink = xasprintf("%s/build/source", reg);
    owned[0] = realpath(kernels, NULL);
    owned[1] = realpath(reg, NULL);
    owned[2] = realpath(srclink, NULL);
    for (int i = 0; i < 3; i++)
        if (owned[i])
            b->read_dirs[b->nread++] = owned[i];
    free(kernels);
    free(reg);
    free(srclink);
}

/* Copies the workspace (no symlink followed), builds it in the sandbox, and copies the one .ko it made
 * (a regular file, not a link) to a file of the grader's. The .ko's path, or the build's first error. */
static bool build_module(struct builder *b, const char *work, const char *gdir, char **ko, char **error)
{
    char *src = path_join(b->sandbox, "work"), *out = path_join(b->sandbox, "build");
    char *log = path_join(gdir, "build.txt");
    char *skipped = NULL;
    bool ok = false;
    if (copy_untrusted_tree(work, src, &b->rules, &skipped) != 0) {
        *error = xasprintf("the workspace %s is not a folder (a symlink?)", work);
        goto out;
    }
    char *owned[3] = { 0 };
    builder_reads(b, owned);
    struct sandbox sb = { .write_dir = b->sandbox, .read_dirs = b->read_dirs, .nread = b->nread,
                          .hide_dir = b->room_dir, .uid = b->rules.uid, .gid = b->rules.gid };
    char *env_cache = xasprintf("KLAB_CACHE=%s", b->cache), *env_home = xasprintf("HOME=%s", b->sandbox);
    char *const argv[] = { "/bin/bash", b->module_sh, src, b->kernel, out, NULL };
    char *const envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", env_cache, env_home, NULL };
    int rc = sandbox_run(&sb, argv, envp, log, 300);
    free(env_cache);
    free(env_home);
    for (int i = 0; i < 3; i++)
        free(owned[i]);
    if (*skipped) {
        char *note = xasprintf("klab: left out of the build copy: %s\n", skipped);
        append_text(log, note);
        free(note);
    }
    if (rc != 0) {
        *error = rc == -2 ? strdup("the build did not finish within 300 s") : first_error_line(log);
        goto out;
    }
    /* The .ko its Kbuild made: exactly one, read without following a link. */
    int dfd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    char *name = NULL;
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 3 && !strcmp(e->d_name + n - 3, ".ko") && count++ == 0)
            name = strdup(e->d_name);
    }
    char *mine = name ? path_join(gdir, name) : NULL;
    struct copy_rules rules = b->rules;
    rules.check_author = getuid() == 0;   /* the builder's own output, not a link to someone's file */
    rules.author = b->rules.uid;
    if (count == 1 && copy_untrusted_file(dirfd(d), name, mine, &rules) == 0) {
        *ko = mine;
        mine = NULL;
        ok = true;
    } else {
        *error = strdup(count == 0 ? "the build made no .ko" : count > 1 ? "the build made more than one .ko"
                                                                         : "the .ko is not a regular file of the build's");
    }
    free(mine);
    free(name);
    if (d)
        closedir(d);
    else if (dfd >= 0)
        close(dfd);
out:
    free(skipped);
    free(src);
    free(out);
    free(log);
    return ok;
}

/* Everything one grading holds, freed in one place whatever step it stopped at. */
struct grading {
    const char *candidate;
    char *dir, *cand_dir, *work, *gdir;
    struct exam_room_state room;
    struct task_checks checks;
    const struct machine_profile *profile;
    struct grade_result result;   /* what the report says */
    char *program_bin, *program_dst;
};

static void grading_free(struct grading *g)
{
    free(g->dir);
    free(g->cand_dir);
    free(g->work);
    free(g->gdir);
    checks_free(&g->checks);
    free(g->result.ko);
    free(g->result.build_error);
    free(g->result.console);
    free(g->program_bin);
    free(g->program_dst);
}

/* The room, the candidate's workspace, the task's checks, a fresh DIR/grading/NAME. 0, or -1 after one line. */
static int grading_open(struct grading *g, const char *dir_arg)
{
    char err[512];
    if (!(g->dir = realpath(dir_arg, NULL))) {
        klab_error("exam grade: no room folder %s", dir_arg);
        return -1;
    }
    if (exam_room_state_load(g->dir, &g->room) != 0)
        return -1;
    if (!runstate_valid_name(g->candidate)) {
        klab_error("exam grade: '%s' is not a candidate name", g->candidate);
        return -1;
    }
    g->cand_dir = xasprintf("%s/candidates/%s", g->dir, g->candidate);
    g->work = path_join(g->cand_dir, "work");
    if (!file_exists(g->work)) {
        klab_error("exam grade: no candidate '%s' in %s", g->candidate, g->dir);
        return -1;
    }
    char *checks_path = path_join(g->room.task, "checks");
    int rc = checks_load(checks_path, &g->checks, err, sizeof err);
    free(checks_path);
    if (rc != 0) {
        klab_error("exam grade: %s", err);
        return -1;
    }
    g->gdir = xasprintf("%s/grading/%s", g->dir, g->candidate);
    remove_tree(g->gdir);
    mkdir_p(g->gdir, 0700);
    if (!(g->profile = profile_find(g->room.arch))) {
        klab_error("exam grade: the room's state names an unknown architecture '%s'", g->room.arch);
        return -1;
    }
    return 0;
}

/* The module, from a copy of the workspace (as the candidate left it), built by the candidate's own user in
 * a sandbox: their Makefile and Kbuild are their code. -1 when there is nothing to build with. */
static int grade_build(struct grading *g)
{
    struct builder b;
    int rc = builder_for(g->candidate, g->dir, g->gdir, g->room.kernel, &b);
    if (rc == 0)
        g->result.built = build_module(&b, g->work, g->gdir, &g->result.ko, &g->result.build_error);
    builder_free(&b);
    return rc;
}

/* The task's test program, static for the room's architecture (the proctor's code: built as the grader). */
static int grade_program(struct grading *g)
{
    if (!g->checks.program)
        return 0;
    char *psrc = path_join(g->room.task, g->checks.program);
    g->program_bin = path_join(g->gdir, "program");
    char *base = strdup(g->checks.program);
    char *dot = strrchr(base, '.');
    if (dot)
        *dot = '\0';
    g->program_dst = xasprintf("/bin/%s", base);
    free(base);
    char *const cc_argv[] = { (char *)g->profile->cc, "-O2", "-static", "-o", g->program_bin, psrc, NULL };
    char *cc_log = path_join(g->gdir, "program-build.txt");
    int rc = run_wait(cc_argv, cc_log, 120) == 0 ? 0 : -1;
    if (rc != 0)
        klab_error("exam grade: the task's test program %s does not build (see %s)", psrc, cc_log);
    free(cc_log);
    free(psrc);
    return rc;
}

/* The grading VM's image: klab's busybox with the module, the checks hook and the program. */
static int grade_image(const struct grading *g, const char *img)
{
    char *hook = grade_hook(&g->checks), *hook_path = path_join(g->gdir, "90-grade.sh");
    write_text_file(hook_path, hook);
    char *mod_dst = xasprintf("/lib/modules/%s", strrchr(g->result.ko, '/') + 1);
    struct initramfs_add adds[3] = { { g->result.ko, mod_dst }, { hook_path, "/etc/klab.d/90-grade.sh" } };
    size_t nadds = 2;
    if (g->program_bin)
        adds[nadds++] = (struct initramfs_add){ g->program_bin, g->program_dst };
    char *busybox = default_busybox(g->profile), *segments = segment_cache_dir();
    struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 6,
                                   .cache_dir = segments, .adds = adds, .nadds = nadds };
    char err[512];
    int rc = initramfs_build(&spec, img, NULL, err, sizeof err);
    if (rc != 0)
        klab_error("exam grade: image: %s", err);
    free(hook);
    free(hook_path);
    free(mod_dst);
    free(busybox);
    free(segments);
    return rc;
}

/* A fresh VM (never the candidate's own) with the module, the program and the checks: `klab boot`, whose
 * console the checks' results are read from. */
static int grade_vm(struct grading *g)
{
    char *img = path_join(g->gdir, "initrd.cpio.gz");
    if (grade_image(g, img) != 0) {
        free(img);
        return -1;
    }
    char *run_dir = path_join(g->gdir, "run");
    mkdir_p(run_dir, 0700);
    setenv("KLAB_RUN_DIR", run_dir, 1);
    char *vm_name = xasprintf("grade-%s", g->candidate);
    char *kernel = path_join(g->dir, "kernel/vmlinuz"), *vmlinux = path_join(g->dir, "kernel/vmlinux");
    char *self = realpath("/proc/self/exe", NULL);
    char *const boot_argv[] = { self, "boot", "--kernel", kernel, "--vmlinux", vmlinux, "--initrd", img,
                                "--name", vm_name, "--mem", "256M", "--smp", "1", "--accel", g->room.accel,
                                "--no-wait", NULL };
    char *boot_log = path_join(g->gdir, "boot.txt");
    g->result.vm_timed_out = run_wait(boot_argv, boot_log, 180) == SPAWN_TIMEOUT;
    char *log = xasprintf("%s/%s/console.log", run_dir, vm_name), *keep = path_join(g->cand_dir, "grade-console.log");
    g->result.console = read_text_file(log);
    if (g->result.console)
        write_text_file(keep, g->result.console);
    free(keep);
    free(log);
    free(boot_log);
    free(self);
    free(kernel);
    free(vmlinux);
    free(vm_name);
    free(run_dir);
    free(img);
    return 0;
}

int exam_grade(const char *dir_arg, const char *candidate)
{
    struct grading g = { .candidate = candidate };
    int rc = 1;
    if (grading_open(&g, dir_arg) == 0 && grade_build(&g) == 0 && grade_program(&g) == 0 &&
        (!g.result.built || grade_vm(&g) == 0)) {
        grade_judge(&g.checks, &g.result);
        rc = grade_report(&g.room, candidate, g.cand_dir, &g.checks, &g.result);
    }
    grading_free(&g);
    return rc;
}
