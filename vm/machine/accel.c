#define _GNU_SOURCE
#include "machine/accel.h"

#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* A kernel under working KVM prints its banner in well under a second. */
#define PROBE_TIMEOUT_MS 4000

const char *probe_result_name(enum probe_result r)
{
    switch (r) {
    case PROBE_OK: return "printed its banner";
    case PROBE_FAILED: return "exited without a banner";
    case PROBE_TIMEOUT: return "hung (no banner in time)";
    default: return "could not run";
    }
}

static bool file_has(const char *path, const char *text)
{
    char *content = read_text_file(path);
    bool found = content && strstr(content, text);
    free(content);
    return found;
}

struct watch {
    const char *file, *text;
};

static bool watched_text_appeared(void *ctx)
{
    const struct watch *w = ctx;
    return file_has(w->file, w->text);
}

enum probe_result accel_run_probe(char *const argv[], int timeout_ms, const char *watch_file,
                                  const char *watch_text)
{
    struct watch w = { watch_file, watch_text };
    struct spawn s = { .argv = argv, .ctx = &w, .own_group = true, .timeout_ms = timeout_ms,
                       .done = watched_text_appeared };
    int rc = spawn_run(&s);
    if (rc == SPAWN_DONE || (rc >= 0 && file_has(watch_file, watch_text)))
        return PROBE_OK;
    return rc == SPAWN_TIMEOUT ? PROBE_TIMEOUT : rc == 127 || rc == SPAWN_FAILED ? PROBE_CANNOT_RUN : PROBE_FAILED;
}

static bool host_matches(const struct machine_profile *p)
{
    struct utsname u;
    if (uname(&u) != 0)
        return false;
    return !strcmp(p->uname_machine, u.machine);
}

static char *probe_cache_key(const char *qemu_path, const char *cpu)
{
    char *boot_id = read_text_file("/proc/sys/kernel/random/boot_id");
    struct stat st = { 0 };
    stat(qemu_path, &st);
    char *key = xasprintf("%s %s %lld %s", boot_id ? strtok(boot_id, "\n") : "?", qemu_path,
                          (long long)st.st_mtime, cpu);
    free(boot_id);
    return key;
}

static enum probe_result probe_kernel_under_kvm(const struct machine_profile *p, const char *qemu_path,
                                                const char *cpu, const char *kernel)
{
    char log[] = "/tmp/klab-kvm-probe-XXXXXX";
    int fd = mkstemp(log);
    if (fd < 0)
        return PROBE_CANNOT_RUN;
    close(fd);
    char *serial = xasprintf("file:%s", log);
    char *append = xasprintf("console=%s panic=-1", p->console);
    char *argv[] = { (char *)qemu_path, "-accel", "kvm", "-M", (char *)p->machine, "-cpu", (char *)cpu,
                     "-m", "256M", "-nodefaults", "-display", "none", "-no-reboot", "-kernel", (char *)kernel,
                     "-append", append, "-serial", serial, NULL };
    enum probe_result r = accel_run_probe(argv, PROBE_TIMEOUT_MS, log, "Linux version");
    free(serial);
    free(append);
    unlink(log);
    return r;
}

const char *accel_choose(const struct machine_profile *p, const char *qemu, const char *cpu, const char *kernel,
                         const char *cache_dir, char *why, size_t whylen)
{
    if (!host_matches(p)) {
        snprintf(why, whylen, "%s guest on a different host architecture", p->arch);
        return "tcg";
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        snprintf(why, whylen, "/dev/kvm is not usable");
        return "tcg";
    }
    char *qemu_path = find_in_path(qemu);
    if (!qemu_path) {
        snprintf(why, whylen, "%s not found", qemu);
        return "tcg";
    }
    char *key = probe_cache_key(qemu_path, cpu);
    char *memo = cache_dir ? path_join(cache_dir, "kvm-probe") : NULL;
    char *seen = memo ? read_text_file(memo) : NULL;
    const char *choice;
    size_t klen = strlen(key);
    if (seen && !strncmp(seen, key, klen) && seen[klen] == ' ') {
        choice = !strncmp(seen + klen + 1, "kvm", 3) ? "kvm" : "tcg";
        snprintf(why, whylen, "KVM probe earlier this host boot: %s", !strcmp(choice, "kvm") ? "worked" : "failed");
    } else {
        enum probe_result r = probe_kernel_under_kvm(p, qemu_path, cpu, kernel);
        choice = r == PROBE_OK ? "kvm" : "tcg";
        snprintf(why, whylen, "kernel under KVM %s", probe_result_name(r));
        if (memo) {
            mkdir_p(cache_dir, 0755);
            char *line = xasprintf("%s %s\n", key, choice);
            write_text_file(memo, line);
            free(line);
        }
    }
    free(seen);
    free(memo);
    free(key);
    free(qemu_path);
    return choice;
}
