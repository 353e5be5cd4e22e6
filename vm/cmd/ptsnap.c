/* klab ptsnap: keep a VM's (or a dump's) whole page table as a named snapshot, list, show and remove them.
 * The snapshots are libklab's (gdb/lib/ptsnap.c): gdb's klab ptsnap writes the same files to the same store,
 * so one taken in gdb can be diffed here and the other way round. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "cmd/target.h"
#include "util/opts.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ptsnap_options {
    struct target_opts t;
    const char *range, *label;
};

static const struct opt options[] = {
    OPT_STR("range", "A-B", "save: only VAs from A to B (inclusive; hex or vmlinux symbols)", struct ptsnap_options,
            range),
    OPT_STR("label", "TEXT", "save: what the snapshot is of (default: the VM, CPU and time)", struct ptsnap_options,
            label),
    TARGET_OPTIONS(struct ptsnap_options, t),
    TARGET_DUMP_OPTIONS(struct ptsnap_options, t),
    OPT_END,
};

const struct opt_cmd ptsnap_command = {
    .name = "ptsnap", .args = "save NAME", .opts = options,
    .more_usage = "       klab ptsnap list\n"
                  "       klab ptsnap show NAME\n"
                  "       klab ptsnap rm NAME",
    .about = "Saves the CPU's whole page table (every root its registers set up, as klab ptdump walks it) as\n"
             "snapshot NAME, for klab ptdiff. A plain NAME (letters, digits, '_', '.', '-') is kept in the\n"
             "snapshot store that gdb's klab ptsnap uses too: $KLAB_PTSNAP_DIR, else $KLAB_CACHE/ptsnap, else\n"
             "~/.cache/klab/ptsnap; a NAME with a '/' is a file path. Files are 0600 and only read back from\n"
             "folders and files of yours that nobody else may write. gdb's klab ptsnap save --pid N keeps a\n"
             "process's user tables; here the CPU's own are taken (its current process).",
    .epilog = TARGET_EPILOG,
};

static int on_option(void *ctx, int id, const char *arg)
{
    return target_option(&((struct ptsnap_options *)ctx)->t, id, arg) > 0 ? 0 : -1;
}

static int snap_path(const char *name, bool create, char *path, size_t len)
{
    struct klab_error err;
    if (klab_ptsnap_path(name, create, path, len, &err) == 0)
        return 0;
    klab_error("ptsnap: %s", err.msg);
    return -1;
}

static char *default_label(const struct ptsnap_options *p, const struct vm_target *t)
{
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    if (p->t.dump)
        return xasprintf("dump %s%s, %s", p->t.dump, t->dump_user_tables ? " (CPU's own tables)" : "", when);
    return xasprintf("VM %s, CPU %d, %s", t->rs.name, p->t.cpu, when);
}

static int save(const struct ptsnap_options *p, const char *name)
{
    char path[4096];
    if (snap_path(name, true, path, sizeof path) != 0)
        return 2;
    struct vm_target t;
    if (target_open(&p->t, &t) != 0)
        return 1;
    struct klab_range_opts ro = { 0 };
    int rc = 0;
    if (p->range && !parse_span(&t, p->range, &ro.va_start, &ro.va_end))
        rc = 2;
    char *label = p->label ? xasprintf("%s", p->label) : default_label(p, &t);
    struct klab_error err;
    struct klab_ptsnap *s = rc ? NULL : klab_ptsnap_take(&t.regs, t.mem, &ro, -1, label, &err);
    vm_target_close(&t);
    if (!rc && !s) {
        klab_error("ptsnap: %s", err.msg);
        rc = 1;
    } else if (s && klab_ptsnap_save(s, path, &err) != 0) {
        klab_error("ptsnap: %s", err.msg);
        rc = 1;
    } else if (s) {
        struct klab_ptsnap_info in;
        klab_ptsnap_info(s, &in);
        printf("saved %s: %zu ranges of %s (%s)\n", path, in.nranges, klab_arch_name(in.arch), in.label);
    }
    klab_ptsnap_free(s);
    free(label);
    return rc;
}

static struct klab_ptsnap *load(const char *name)
{
    struct klab_error err;
    struct klab_ptsnap *s = klab_ptsnap_open(name, &err);
    if (!s)
        klab_error("ptsnap: %s", err.msg);
    return s;
}

static int show(const char *name)
{
    struct klab_ptsnap *s = load(name);
    if (!s)
        return 1;
    struct klab_ptsnap_info in;
    klab_ptsnap_info(s, &in);
    printf("snapshot %s: %s, %zu ranges, %s", name, klab_arch_name(in.arch), in.nranges, in.label);
    if (in.pid >= 0)
        printf(" (pid %d's tables)", in.pid);
    printf("\n");
    char last_root[12] = "", line[1024];
    for (size_t i = 0; i < in.nranges; i++) {
        klab_format_range(klab_ptsnap_range(s, i), last_root, line, sizeof line);
        fputs(line, stdout);
    }
    klab_ptsnap_free(s);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(void)
{
    char dir[4096];
    struct klab_error err;
    if (klab_ptsnap_store(false, dir, sizeof dir, &err) != 0) {
        klab_error("ptsnap: %s", err.msg);
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            printf("no snapshots in %s\n", dir);
            return 0;
        }
        klab_error("ptsnap: %s: %s", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            char **grown = realloc(names, (n + 1) * sizeof *names);
            if (!grown)
                break;
            names = grown;
            names[n++] = xasprintf("%s", e->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    printf("%zu snapshot%s in %s\n", n, n == 1 ? "" : "s", dir);
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        struct klab_ptsnap *s = klab_ptsnap_load(path, &err);
        free(path);
        if (s) {
            struct klab_ptsnap_info in;
            klab_ptsnap_info(s, &in);
            printf("  %-20s %-7s %7zu ranges  %s%s\n", names[i], klab_arch_name(in.arch), in.nranges, in.label,
                   in.pid >= 0 ? " (a process's tables)" : "");
            klab_ptsnap_free(s);
        } else
            printf("  %-20s unreadable: %s\n", names[i], err.msg);
        free(names[i]);
    }
    free(names);
    return 0;
}

static int rm(const char *name)
{
    /* Only what loads as a snapshot is removed: a name cannot be used to delete another file. */
    struct klab_ptsnap *s = load(name);
    if (!s)
        return 1;
    klab_ptsnap_free(s);
    char path[4096];
    if (snap_path(name, false, path, sizeof path) != 0)
        return 2;
    if (unlink(path) != 0) {
        klab_error("ptsnap: %s: %s", path, strerror(errno));
        return 1;
    }
    return 0;
}

int cmd_ptsnap(int argc, char **argv)
{
    struct ptsnap_options p = { .t = { .cpu = 0 } };
    int first = opts_parse(&ptsnap_command, argc, argv, on_option, &p);
    if (first <= 0)
        return opts_exit(first);
    const int npos = argc - first;
    const char *sub = first < argc ? argv[first] : NULL;
    if (!sub) {
        klab_error("ptsnap: what to do? save NAME, list, show NAME or rm NAME (see klab ptsnap --help)");
        return 2;
    }
    const bool takes_name = !strcmp(sub, "save") || !strcmp(sub, "show") || !strcmp(sub, "rm");
    if ((takes_name && npos != 2) || (!strcmp(sub, "list") && npos != 1)) {
        klab_error("ptsnap: %s %s (see klab ptsnap --help)", sub, takes_name ? "wants one NAME" : "takes no argument");
        return 2;
    }
    if (strcmp(sub, "save") && (p.range || p.label || p.t.vm || p.t.dump || p.t.cpu_given || p.t.via_stub)) {
        klab_error("ptsnap: --range, --label and the VM options go with save");
        return 2;
    }
    if (!strcmp(sub, "save"))
        return save(&p, argv[first + 1]);
    if (!strcmp(sub, "show"))
        return show(argv[first + 1]);
    if (!strcmp(sub, "rm"))
        return rm(argv[first + 1]);
    if (!strcmp(sub, "list"))
        return list();
    klab_error("ptsnap: unknown action '%s': save, list, show or rm (see klab ptsnap --help)", sub);
    return 2;
}
