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
#include "exam.h"
#include "exam_checks.h"
#include "paths.h"
#include "runstate.h"
#include "sandbox.h"
#include "untrusted_copy.h"
#include "util.h"

#include "../rootfs/initramfs.h"

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

static int run_wait(char *const argv[], const char *log, int timeout_s)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    int status = 0;
    for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 100) {
        if (waited > timeout_s * 1000) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            return -2;
        }
        sleep_ms(100);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* The output a check printed in the guest (its KLAB-OUT lines), and its exit status (-1 when absent). */
static int check_result(const char *console, const char *name, char **output)
{
    char *mark = xasprintf("KLAB-CHECK %s rc=", name), *prefix = xasprintf("KLAB-OUT %s: ", name);
    int rc = -1;
    char *out = strdup("");
    char *copy = strdup(console);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        line[strcspn(line, "\r")] = '\0';
        if (!strncmp(line, mark, strlen(mark)))
            rc = atoi(line + strlen(mark));
        else if (!strncmp(line, prefix, strlen(prefix))) {
            char *n = xasprintf("%s%s%s", out, *out ? "\n" : "", line + strlen(prefix));
            free(out);
            out = n;
        }
    }
    free(copy);
    free(mark);
    free(prefix);
    *output = out;
    return rc;
}

/* Who builds a candidate's module, and where: their Unix user when the grader is root and they have one,
 * else nobody (root) or the grader in a user namespace (not root) — always in the sandbox. */
struct builder {
    struct copy_rules rules;
    char *sandbox, *kernel, *module_sh, *cache;
    const char *read_dirs[3];
    size_t nread;
    const char *room_dir;
};

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
    b->module_sh = xasprintf("%s/kernels/module.sh", klab_source_dir());
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
    char *kernels = xasprintf("%s/kernels", klab_source_dir());
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

int exam_grade(const char *dir_arg, const char *candidate)
{
    char *dir = realpath(dir_arg, NULL);
    if (!dir) {
        klab_error("exam grade: no room folder %s", dir_arg);
        return 1;
    }
    struct exam_room_state room;
    if (exam_room_state_load(dir, &room) != 0)
        return 1;
    if (!runstate_valid_name(candidate)) {
        klab_error("exam grade: '%s' is not a candidate name", candidate);
        return 1;
    }
    char *cand_dir = xasprintf("%s/candidates/%s", dir, candidate);
    char *work = path_join(cand_dir, "work");
    if (!file_exists(work)) {
        klab_error("exam grade: no candidate '%s' in %s", candidate, dir);
        return 1;
    }
    char err[512];
    struct task_checks t = { 0 };
    char *checks_path = path_join(room.task, "checks");
    if (checks_load(checks_path, &t, err, sizeof err) != 0) {
        klab_error("exam grade: %s", err);
        return 1;
    }
    char *gdir = xasprintf("%s/grading/%s", dir, candidate);
    remove_tree(gdir);
    mkdir_p(gdir, 0700);
    bool arm = !strcmp(room.arch, "arm64");

    /* 1. the module, from a copy of the workspace (as the candidate left it), built by the candidate's own
     *    user in a sandbox: their Makefile and Kbuild are their code */
    struct builder b;
    if (builder_for(candidate, dir, gdir, room.kernel, &b) != 0)
        return 1;
    char *ko = NULL, *build_error = NULL;
    bool built = build_module(&b, work, gdir, &ko, &build_error);
    /* 2. the task's test program, static for the room's architecture */
    char *program_dst = NULL, *program_bin = NULL;
    if (t.program) {
        char *psrc = path_join(room.task, t.program);
        program_bin = path_join(gdir, "program");
        char *base = strdup(t.program);
        char *dot = strrchr(base, '.');
        if (dot)
            *dot = '\0';
        program_dst = xasprintf("/bin/%s", base);
        free(base);
        char *cc = arm ? "aarch64-linux-gnu-gcc" : "gcc";
        char *const cc_argv[] = { cc, "-O2", "-static", "-o", program_bin, psrc, NULL };
        char *cc_log = path_join(gdir, "program-build.txt");
        if (run_wait(cc_argv, cc_log, 120) != 0) {
            klab_error("exam grade: the task's test program %s does not build (see %s)", psrc, cc_log);
            return 1;
        }
        free(cc_log);
        free(psrc);
    }

    /* 3. a fresh VM with the module, the program and the checks */
    int vm_rc = 0;
    char *console = NULL;
    if (built) {
        char *hook = grade_hook(&t);
        char *hook_path = path_join(gdir, "90-grade.sh");
        write_text_file(hook_path, hook);
        free(hook);
        char *mod_dst = xasprintf("/lib/modules/%s", strrchr(ko, '/') + 1);
        struct initramfs_add adds[3] = { { ko, mod_dst }, { hook_path, "/etc/klab.d/90-grade.sh" } };
        size_t nadds = 2;
        if (program_bin)
            adds[nadds++] = (struct initramfs_add){ program_bin, program_dst };
        char *busybox = exam_busybox(arm);
        char *segments = segment_cache_dir();
        struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 6,
                                       .cache_dir = segments, .adds = adds, .nadds = nadds };
        char *img = path_join(gdir, "initrd.cpio.gz");
        if (initramfs_build(&spec, img, NULL, err, sizeof err) != 0) {
            klab_error("exam grade: image: %s", err);
            return 1;
        }
        char *run_dir = path_join(gdir, "run");
        mkdir_p(run_dir, 0700);
        setenv("KLAB_RUN_DIR", run_dir, 1);
        char *vm_name = xasprintf("grade-%s", candidate);
        char *kernel = path_join(dir, "kernel/vmlinuz"), *vmlinux = path_join(dir, "kernel/vmlinux");
        char *self = realpath("/proc/self/exe", NULL);
        char *const boot_argv[] = { self, "boot", "--kernel", kernel, "--vmlinux", vmlinux, "--initrd", img,
                                    "--name", vm_name, "--mem", "256M", "--smp", "1", "--accel", room.accel,
                                    "--no-wait", NULL };
        char *boot_log = path_join(gdir, "boot.txt");
        vm_rc = run_wait(boot_argv, boot_log, 180);
        char *log = xasprintf("%s/%s/console.log", run_dir, vm_name);
        console = read_text_file(log);
        char *keep = path_join(cand_dir, "grade-console.log");
        if (console)
            write_text_file(keep, console);
        free(keep);
        free(log);
        free(boot_log);
        free(self);
        free(kernel);
        free(vmlinux);
        free(vm_name);
        free(run_dir);
        free(img);
        free(busybox);
        free(segments);
        free(mod_dst);
        free(hook_path);
    }
    bool finished = console && strstr(console, "KLAB-GRADE-END");

    /* 4. verdicts and the report */
    unsigned passed = 0;
    for (unsigned i = 0; i < t.n; i++) {
        struct check *c = &t.c[i];
        char *output = NULL;
        if (!built) {
            c->detail = xasprintf("the module did not build: %s", build_error);
        } else if (!finished) {
            c->detail = strdup(vm_rc == -2 ? "the grading VM did not finish within 180 s"
                                           : "the grading VM ended before the checks finished (panic?)");
        } else if (c->kind == CHECK_CONSOLE) {
            c->passed = strstr(console, c->expect) != NULL;
            c->detail = xasprintf(c->passed ? "the console shows \"%s\"" : "the console never shows \"%s\"", c->expect);
        } else {
            int rc = check_result(console, c->name, &output);
            if (c->kind == CHECK_RUN)
                c->passed = rc == 0;
            else
                c->passed = rc == 0 && strstr(output, c->expect) != NULL;
            c->detail = c->kind == CHECK_RUN ? xasprintf("`%s` exited %d%s%s", c->command, rc, *output ? ": " : "", output)
                                             : xasprintf("`%s` exited %d and printed \"%s\" (want \"%s\")", c->command,
                                                         rc, output, c->expect);
        }
        free(output);
        passed += c->passed;
    }
    char *txt = path_join(cand_dir, "report.txt"), *json = path_join(cand_dir, "report.json");
    /* Both reports are made in memory and land with write_text_file: the candidate owns that folder, and a
     * report.txt they made a symlink to /etc/passwd must be replaced, never written through. */
    char *ftext = NULL, *jtext = NULL;
    size_t flen = 0, jlen = 0;
    FILE *f = open_memstream(&ftext, &flen);
    FILE *j = open_memstream(&jtext, &jlen);
    if (!f || !j) {
        klab_error("exam grade: out of memory");
        return 1;
    }
    fprintf(f, "klab exam report: room %s, candidate %s, task %s\nmodule: %s\n\n", room.name, candidate, room.task,
            built ? ko : "did not build");
    fprintf(j, "{\"room\": ");
    json_string(j, room.name);
    fprintf(j, ", \"candidate\": ");
    json_string(j, candidate);
    fprintf(j, ", \"module_built\": %s, \"build_error\": ", built ? "true" : "false");
    json_string(j, build_error ? build_error : "");
    fprintf(j, ", \"checks\": [");
    for (unsigned i = 0; i < t.n; i++) {
        struct check *c = &t.c[i];
        fprintf(f, "%-4s %-12s %s\n", c->passed ? "PASS" : "FAIL", c->name, c->detail);
        fprintf(j, "%s{\"name\": ", i ? ", " : "");
        json_string(j, c->name);
        fprintf(j, ", \"passed\": %s, \"detail\": ", c->passed ? "true" : "false");
        json_string(j, c->detail);
        fprintf(j, "}");
    }
    fprintf(f, "\n%u of %u checks passed; console: %s/grade-console.log\n", passed, t.n, cand_dir);
    fprintf(j, "], \"passed\": %u, \"total\": %u, \"console_log\": ", passed, t.n);
    char *clog = path_join(cand_dir, "grade-console.log");
    json_string(j, clog);
    fprintf(j, "}\n");
    fclose(f);
    fclose(j);
    if (write_text_file(txt, ftext) != 0 || write_text_file(json, jtext) != 0) {
        klab_error("exam grade: cannot write the report in %s: %s", cand_dir, strerror(errno));
        return 1;
    }
    fputs(ftext, stdout);
    free(ftext);
    free(jtext);
    free(clog);
    return passed == t.n ? 0 : 3;
}
