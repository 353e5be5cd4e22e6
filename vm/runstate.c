#define _GNU_SOURCE
#include "runstate.h"

#include "backend_libvirt.h"
#include "monitor.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *runstate_root(void)
{
    const char *env = getenv("KLAB_RUN_DIR");
    if (env && *env)
        return strdup(env);
    env = getenv("XDG_RUNTIME_DIR");
    if (env && *env && access(env, W_OK) == 0)
        return path_join(env, "klab");
    if (access("/dev/shm", W_OK) == 0)
        return xasprintf("/dev/shm/klab-%u", (unsigned)getuid());
    return xasprintf("/tmp/klab-%u", (unsigned)getuid());
}

char *runstate_dir_for(const char *name)
{
    char *root = runstate_root();
    char *dir = path_join(root, name);
    free(root);
    return dir;
}

bool runstate_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 64 && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int runstate_write(const struct runstate *rs)
{
    char *ram = strdup("");
    for (size_t i = 0; i < rs->nram; i++) {
        char *n = xasprintf("%sram_region=0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n", ram, rs->ram[i].gpa,
                            rs->ram[i].size, rs->ram[i].file_offset);
        free(ram);
        ram = n;
    }
    char *text = xasprintf("name=%s\narch=%s\nqemu_pid=%d\nsupervisor_pid=%d\ngdb=%s\ngdb_port=%d\n"
                           "kernel=%s\nvmlinux=%s\ninitrd=%s\naccel=%s\ncpu=%s\nmem_bytes=%" PRIu64 "\n"
                           "kaslr=%d\nbackend=%s\nconnect=%s\nram_file=%s/ram\nconsole_log=%s/console.log\nmonitor=%s/monitor.sock\n%s",
                           rs->name, rs->profile->arch, (int)rs->qemu_pid, (int)rs->supervisor_pid, rs->gdb_listen,
                           rs->gdb_port, rs->kernel, rs->vmlinux ? rs->vmlinux : "", rs->initrd ? rs->initrd : "",
                           rs->accel, rs->cpu, rs->mem_bytes, (int)rs->kaslr, rs->backend ? rs->backend : "qemu",
                           rs->connect ? rs->connect : "", rs->dir, rs->dir, rs->dir, ram);
    char *path = path_join(rs->dir, "state");
    int rc = write_text_file(path, text);
    free(path);
    free(text);
    free(ram);
    return rc;
}

static char *dup_nonempty(const char *v) { return *v ? strdup(v) : NULL; }

int runstate_load(const char *name, struct runstate *rs)
{
    memset(rs, 0, sizeof *rs);
    if (!runstate_valid_name(name))
        return -1;
    rs->dir = runstate_dir_for(name);
    char *path = path_join(rs->dir, "state");
    char *text = read_text_file(path);
    free(path);
    if (!text) {
        runstate_free(rs);
        return -1;
    }
    rs->name = strdup(name);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "arch"))
            rs->profile = profile_find(v);
        else if (!strcmp(k, "qemu_pid"))
            rs->qemu_pid = (pid_t)atoi(v);
        else if (!strcmp(k, "supervisor_pid"))
            rs->supervisor_pid = (pid_t)atoi(v);
        else if (!strcmp(k, "gdb"))
            rs->gdb_listen = strdup(v);
        else if (!strcmp(k, "gdb_port"))
            rs->gdb_port = atoi(v);
        else if (!strcmp(k, "kernel"))
            rs->kernel = dup_nonempty(v);
        else if (!strcmp(k, "vmlinux"))
            rs->vmlinux = dup_nonempty(v);
        else if (!strcmp(k, "initrd"))
            rs->initrd = dup_nonempty(v);
        else if (!strcmp(k, "accel"))
            rs->accel = strdup(v);
        else if (!strcmp(k, "cpu"))
            rs->cpu = strdup(v);
        else if (!strcmp(k, "mem_bytes"))
            rs->mem_bytes = strtoull(v, NULL, 10);
        else if (!strcmp(k, "kaslr"))
            rs->kaslr = atoi(v) != 0;
        else if (!strcmp(k, "backend"))
            rs->backend = strdup(v);
        else if (!strcmp(k, "connect"))
            rs->connect = strdup(v);
        else if (!strcmp(k, "ram_region") && rs->nram < MAX_RAM_REGIONS) {
            struct ram_region *r = &rs->ram[rs->nram];
            if (sscanf(v, "%" SCNx64 " %" SCNx64 " %" SCNx64, &r->gpa, &r->size, &r->file_offset) == 3)
                rs->nram++;
        }
    }
    free(text);
    if (!rs->profile || rs->qemu_pid <= 0 || !rs->gdb_listen) {
        runstate_free(rs);
        return -1;
    }
    return 0;
}

void runstate_free(struct runstate *rs)
{
    free(rs->name);
    free(rs->dir);
    free(rs->gdb_listen);
    free(rs->kernel);
    free(rs->vmlinux);
    free(rs->initrd);
    free(rs->accel);
    free(rs->cpu);
    free(rs->backend);
    free(rs->connect);
    memset(rs, 0, sizeof *rs);
}

bool runstate_is_libvirt(const struct runstate *rs)
{
    return rs->backend && !strcmp(rs->backend, "libvirt");
}

char *runstate_monitor(const struct runstate *rs, const char *cmd, int timeout_ms)
{
    if (runstate_is_libvirt(rs))
        return libvirt_monitor(rs->connect && *rs->connect ? rs->connect : NULL, rs->name, cmd);
    char *mon = path_join(rs->dir, "monitor.sock");
    char *out = monitor_command(mon, cmd, timeout_ms);
    free(mon);
    return out;
}

bool runstate_alive(const struct runstate *rs)
{
    if (runstate_is_libvirt(rs))
        return rs->supervisor_pid > 0 && !(kill(rs->supervisor_pid, 0) != 0 && errno == ESRCH);
    if (rs->qemu_pid <= 0 || (kill(rs->qemu_pid, 0) != 0 && errno == ESRCH))
        return false;
    /* Guard against pid reuse: QEMU was started with -name klab-<name>. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)rs->qemu_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    char want[80];
    snprintf(want, sizeof want, "klab-%s", rs->name);
    for (size_t i = 0; i < n;) {
        if (!strcmp(buf + i, want))
            return true;
        i += strnlen(buf + i, n - i) + 1;
    }
    return false;
}

static int compare_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **runstate_list(size_t *count, bool clean_stale)
{
    *count = 0;
    char *root = runstate_root();
    DIR *d = opendir(root);
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!runstate_valid_name(de->d_name))
            continue;
        struct runstate rs;
        bool alive = false;
        if (runstate_load(de->d_name, &rs) == 0) {
            alive = runstate_alive(&rs);
            runstate_free(&rs);
        }
        if (!alive) {
            if (clean_stale) {
                /* QEMU is gone but its folder is not (the supervisor was killed): drop the RAM file and
                 * sockets; keep console.log and exit for `klab status`, until the next boot of that name. */
                char *dir = path_join(root, de->d_name);
                static const char *const leftovers[] = { "ram", "state", "monitor.sock", "console.sock" };
                for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++) {
                    char *p = path_join(dir, leftovers[i]);
                    unlink(p);
                    free(p);
                }
                free(dir);
            }
            continue;
        }
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            names = realloc(names, cap * sizeof *names);
        }
        names[(*count)++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    free(root);
    if (names)
        qsort(names, *count, sizeof *names, compare_str);
    return names;
}

void runstate_free_list(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}
