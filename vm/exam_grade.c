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
#include "paths.h"
#include "util.h"

#include "../rootfs/initramfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum check_kind { CHECK_RUN, CHECK_OUTPUT, CHECK_CONSOLE };

struct check {
    char *name, *command, *expect;
    enum check_kind kind;
    bool passed;
    char *detail;
};

#define MAX_CHECKS 32

struct task_checks {
    char *program;
    struct check c[MAX_CHECKS];
    unsigned n;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int load_checks(const char *path, struct task_checks *t, char *err, size_t errlen)
{
    char *text = read_text_file(path);
    if (!text) {
        snprintf(err, errlen, "the task has no checks file (%s)", path);
        return -1;
    }
    int lineno = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        if (!strncmp(l, "program", 7) && strchr(l, '=')) {
            t->program = strdup(trim(strchr(l, '=') + 1));
            continue;
        }
        char *colon = strchr(l, ':');
        if (strncmp(l, "check ", 6) || !colon || t->n == MAX_CHECKS) {
            snprintf(err, errlen, "%s:%d: expected 'check NAME : run|output|console ...'", path, lineno);
            rc = -1;
            break;
        }
        *colon = '\0';
        struct check *c = &t->c[t->n];
        c->name = strdup(trim(l + 6));
        char *what = trim(colon + 1);
        if (!strncmp(what, "run ", 4)) {
            c->kind = CHECK_RUN;
            c->command = strdup(trim(what + 4));
        } else if (!strncmp(what, "output ", 7) && strstr(what, " = ")) {
            c->kind = CHECK_OUTPUT;
            char *eq = strstr(what, " = ");
            *eq = '\0';
            c->command = strdup(trim(what + 7));
            c->expect = strdup(trim(eq + 3));
        } else if (!strncmp(what, "console ", 8)) {
            c->kind = CHECK_CONSOLE;
            c->expect = strdup(trim(what + 8));
        } else {
            snprintf(err, errlen, "%s:%d: a check is 'run CMD', 'output CMD = TEXT' or 'console TEXT'", path, lineno);
            rc = -1;
            break;
        }
        if (!*c->name || strchr(c->name, ' ')) {
            snprintf(err, errlen, "%s:%d: a check's name is one word", path, lineno);
            rc = -1;
            break;
        }
        t->n++;
    }
    free(text);
    return rc;
}

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
    char *cand_dir = xasprintf("%s/candidates/%s", dir, candidate);
    char *work = path_join(cand_dir, "work");
    if (!file_exists(work)) {
        klab_error("exam grade: no candidate '%s' in %s", candidate, dir);
        return 1;
    }
    char err[512];
    struct task_checks t = { 0 };
    char *checks_path = path_join(room.task, "checks");
    if (load_checks(checks_path, &t, err, sizeof err) != 0) {
        klab_error("exam grade: %s", err);
        return 1;
    }
    char *gdir = xasprintf("%s/grading/%s", dir, candidate);
    remove_tree(gdir);
    mkdir_p(gdir, 0700);
    bool arm = !strcmp(room.arch, "arm64");

    /* 1. the module, from a copy of the workspace (as the candidate left it) */
    char *src = path_join(gdir, "work");
    char *build_log = path_join(gdir, "build.txt");
    char *module_sh = xasprintf("%s/kernels/module.sh", klab_source_dir());
    char *out_dir = path_join(gdir, "build");
    char *const build_argv[] = { "bash", module_sh, src, room.kernel, out_dir, NULL };
    bool built = exam_copy_tree(work, src) == 0 && run_wait(build_argv, build_log, 300) == 0;
    char *ko = NULL, *build_error = NULL;
    if (built) {
        char *text = read_text_file(build_log);
        if (text) {
            text[strcspn(text, "\n")] = '\0';
            ko = strdup(text);
        }
        free(text);
        built = ko && file_exists(ko);
    }
    if (!built)
        build_error = first_error_line(build_log);

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
    FILE *f = fopen(txt, "w");
    FILE *j = fopen(json, "w");
    if (!f || !j) {
        klab_error("exam grade: cannot write the report in %s: %s", cand_dir, strerror(errno));
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
    char *report = read_text_file(txt);
    fputs(report ? report : "", stdout);
    free(report);
    free(clog);
    return passed == t.n ? 0 : 3;
}
