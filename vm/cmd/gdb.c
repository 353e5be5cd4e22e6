/* klab gdb: exec gdb-multiarch on a running VM with its vmlinux, the stub, klab's gdb package, and (when the
 * VM has not run yet) a first stop at start_kernel. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/monitor.h"
#include "machine/kernel_source.h"
#include "machine/paths.h"
#include "util/private_dir.h"
#include "machine/qemu_argv.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { G_WAIT = 256, G_EX };

struct gdb_options {
    bool batch, no_start, print_only;
    long wait_s;
    struct argv ex;       /* -ex commands */
    char **extra;         /* after --: gdb's own arguments */
    int nextra;
};

/* Single-dash names too (getopt_long_only), as gdb's own -ex and -batch. */
static const struct opt options[] = {
    OPT_BOOL("batch", "run gdb in batch mode (for scripts): the -ex commands, then exit", struct gdb_options, batch),
    OPT_BOOL("no-start", "attach only, do not run to start_kernel", struct gdb_options, no_start),
    OPT_BOOL("print", "print the gdb command line instead of running it", struct gdb_options, print_only),
    OPT_CALL("wait", G_WAIT, "S", "wait up to S seconds for a VM that is starting (default 600 when `make vm-*` or\n"
                                 "`klab boot` is starting it, 0 otherwise)"),
    OPT_CALL("ex", G_EX, "CMD", "a gdb command to run after attaching (repeatable)"),
    OPT_END,
};

const struct opt_cmd gdb_command = {
    .name = "gdb", .args = "[NAME]", .opts = options, .long_only = true,
    .about = "Starts gdb-multiarch attached to the VM's stub with its vmlinux and klab's commands. A VM still at its\n"
             "first instruction is run to start_kernel (a hardware breakpoint on x86_64, where software ones set\n"
             "before the decompressor are lost).",
    .epilog = "Arguments after -- go to gdb itself.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    struct gdb_options *o = ctx;
    uint64_t v;
    switch (id) {
    case G_WAIT:
        if (!parse_u64(arg, &v) || v > 86400) {
            klab_error("gdb: --wait wants seconds (0-86400)");
            return -1;
        }
        o->wait_s = (long)v;
        return 0;
    case G_EX:
        o->ex.v = realloc(o->ex.v, sizeof(char *) * (size_t)(o->ex.n + 2));
        o->ex.v[o->ex.n++] = (char *)arg;
        return 0;
    }
    return -1;
}

/* Options, then at most one VM name; what follows "--" is gdb's. Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct gdb_options *o, const char **name)
{
    int end = 1;
    while (end < argc && strcmp(argv[end], "--"))
        end++;
    if (end < argc) {
        o->extra = argv + end + 1;
        o->nextra = argc - end - 1;
    }
    int first = opts_parse(&gdb_command, end, argv, on_option, o);
    if (first <= 0)
        return opts_exit(first);
    if (first + 1 < end) {
        klab_error("gdb: more than one VM name given");
        return 2;
    }
    *name = first < end ? argv[first] : NULL;
    return -1;
}

/* Someone is starting VM NAME: its `klab boot` holds the folder's lock, or `make vm-*` announced it
 * (klab boot --announce) and is still fetching or building. */
static bool vm_starting(const char *name)
{
    return runstate_starting(name) || runstate_announced(name);
}

/* The wait for a VM that is starting: up (its run state is there and its QEMU alive), or nobody starts it. */
struct vm_wait {
    const char *name;
    bool up, starting;
};

static bool up_or_abandoned(void *ctx)
{
    struct vm_wait *w = ctx;
    struct runstate rs;
    if (runstate_load(w->name, &rs) == 0) {
        w->up = runstate_alive(&rs);
        runstate_free(&rs);
    }
    w->starting = !w->up && vm_starting(w->name);
    return w->up || !w->starting;
}

/* Waits until VM NAME has its run state (its stub listens), while someone is starting it. The name, or
 * NULL after one line. */
static char *wait_for_vm(const char *name, long wait_s)
{
    struct vm_wait w = { .name = name };
    if (up_or_abandoned(&w))   /* up, or nobody starts it: resolve_vm_name says what is running instead */
        return w.up ? strdup(name) : resolve_vm_name(name);
    if (wait_s > 0) {
        klab_info("VM '%s' is starting; waiting up to %ld s for its gdb stub", name, wait_s);
        wait_until((int)wait_s * 1000, 200, up_or_abandoned, &w);
    }
    if (w.up)
        return strdup(name);
    if (w.starting)
        klab_error("VM '%s' is starting but its gdb stub was not up within %ld s", name, wait_s);
    else
        klab_error("VM '%s' did not start (klab status shows why)", name);
    return NULL;
}

static bool vm_never_ran(const struct runstate *rs)
{
    char *out = runstate_monitor(rs, "info status", 2000);
    bool prelaunch = out && strstr(out, "prelaunch");
    free(out);
    return prelaunch;
}

/* gdb looks for <vmlinux>-gdb.py beside vmlinux's real path (a registered source kernel's vmlinux is a link
 * into its build folder, where scripts_gdb put vmlinux-gdb.py), and runs the Python it auto-loads from that
 * folder: "add-auto-load-safe-path DIR" only when nobody but this user or root can write it or the script (a
 * vmlinux named by someone else's files must not run their code as us). malloc'ed, or NULL. */
static char *auto_load_command(const char *vmlinux, bool quiet)
{
    char *real = realpath(vmlinux, NULL);
    if (!real)
        real = strdup(vmlinux);
    char *dir = strdup(real);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char *script = xasprintf("%s-gdb.py", real);
    bool trusted = slash && trusted_path(dir, getuid()) && (!file_exists(script) || trusted_path(script, getuid()));
    if (slash && !trusted && !quiet)
        klab_info("not auto-loading scripts beside %s: that folder or its -gdb.py is writable by others or not "
                  "yours", real);
    char *cmd = trusted ? xasprintf("add-auto-load-safe-path %s", dir) : NULL;
    free(script);
    free(real);
    free(dir);
    return cmd;
}

static void push(struct argv *av, const char *a, const char *b)
{
    av->v[av->n++] = (char *)a;
    if (b)
        av->v[av->n++] = (char *)b;
}

/* gdb's index of the vmlinux's DWARF, kept under klab's cache (kernels/gdb-index.sh builds it when a kernel is
 * fetched or built, so even the first session skips the indexing: 13 s and 1.5 GB of RSS on Debian's 6.1). */
static void index_cache(struct argv *av)
{
    char *cache = klab_cache_dir();
    push(av, "-iex", xasprintf("set index-cache directory %s/gdb-index", cache));
    push(av, "-iex", "set index-cache enabled on");
    free(cache);
}

/* Debian's kernel source, when the unpacked linux-source is the same version (machine/kernel_source.c). */
static void source_lines(struct argv *av, const char *vmlinux, bool quiet)
{
    struct kernel_source src;
    char why[400];
    int rc = kernel_source_find(vmlinux, &src, why, sizeof why);
    if (rc < 0 && !quiet)
        klab_info("%s", why);
    if (rc != 0)
        return;
    push(av, "-iex", xasprintf("set substitute-path %s %s", src.prefix, src.dir));
    push(av, "-iex", xasprintf("directory %s", src.dir));
    kernel_source_free(&src);
}

/* gdb's command line: quiet, no pager, pending breakpoints, the DWARF index and source, the vmlinux, the stub,
 * klab's package, then the first stop, the user's -ex commands and gdb's own arguments. */
static struct argv gdb_argv(char *gdb, const struct runstate *rs, const struct gdb_options *o, bool first_stop)
{
    struct argv av = { .v = calloc((size_t)(32 + 2 * o->ex.n + o->nextra), sizeof(char *)) };
    const char *target = rs->gdb_listen;
    char *remote = xasprintf("target remote %s", target + (!strncmp(target, "tcp:", 4) ? 4 : 5));
    char *gdb_dir = klab_gdb_dir();
    char *py = xasprintf("python import sys; sys.path.insert(0, '%s'); import klab", gdb_dir);
    free(gdb_dir);
    char *safe_path = auto_load_command(rs->vmlinux, o->print_only);
    push(&av, gdb, "-q");
    if (o->batch)   /* scripts get the same gdb whatever the user's ~/.gdbinit says */
        push(&av, "-nx", "-batch");
    push(&av, "-iex", "set pagination off");
    /* `break hello_open` before the module is loaded: pending until klab adds the module's symbols. */
    push(&av, "-iex", "set breakpoint pending on");
    /* The kernel's own scripts (vmlinux-gdb.py beside vmlinux: lx-symbols, lx-dmesg, ...) load with klab's. */
    if (safe_path)
        push(&av, "-iex", safe_path);
    index_cache(&av);
    source_lines(&av, rs->vmlinux, o->print_only);
    push(&av, rs->vmlinux, NULL);
    push(&av, "-ex", remote);
    push(&av, "-ex", py);
    if (first_stop) {
        push(&av, "-ex", rs->profile->first_stop);
        push(&av, "-ex", "continue");
    }
    for (int i = 0; i < o->ex.n; i++)
        push(&av, "-ex", o->ex.v[i]);
    for (int i = 0; i < o->nextra; i++)
        push(&av, o->extra[i], NULL);
    av.v[av.n] = NULL;
    return av;
}

/* The VM the user means, its state loaded and fit for gdb. 0, or the exit status after one line. */
static int find_vm(const char *name_arg, long wait_s, struct runstate *rs)
{
    char *name = name_arg && runstate_valid_name(name_arg) ? wait_for_vm(name_arg, wait_s) : resolve_vm_name(name_arg);
    if (!name)
        return 1;
    int rc = runstate_load(name, rs);
    if (rc != 0)
        klab_error("VM '%s' vanished", name);
    else if (!rs->vmlinux)
        klab_error("VM '%s' was booted without a vmlinux; gdb needs one for symbols (klab boot --vmlinux)", name);
    free(name);
    return rc != 0 || !rs->vmlinux ? 1 : 0;
}

int cmd_gdb(int argc, char **argv)
{
    struct gdb_options o = { .wait_s = 600 };
    const char *name_arg = NULL;
    int rc = parse(argc, argv, &o, &name_arg);
    struct runstate rs;
    if (rc >= 0 || (rc = find_vm(name_arg, o.wait_s, &rs)) != 0)
        return rc;
    char *gdb = find_in_path("gdb-multiarch");
    if (!gdb) {
        klab_error("gdb-multiarch not found: run scripts/deps.sh (Debian package gdb-multiarch)");
        return 1;
    }
    bool never_ran = vm_never_ran(&rs);
    /* Under KASLR start_kernel is not where vmlinux says until the kernel has moved itself: the symbols are
     * placed from the live machine (klab kaslr) once it has run, so there is no first stop to set. */
    if (rs.kaslr && never_ran && !o.print_only)
        klab_info("KASLR is on: continue, interrupt (^C) once the kernel runs, and klab's commands place the symbols "
                  "at the slide they read from the machine (klab kaslr)");
    char *state_env = path_join(rs.dir, "state");
    setenv("KLAB_STATE", state_env, 1);
    /* The package's ctypes binding loads this program's own libklab (the clone's build/, or the installed one). */
    char *lib = klab_lib_path();
    setenv("KLAB_LIB", lib, 0);
    free(lib);
    /* klab reset inside gdb (gdb/klab/reset.py) runs this same program. */
    char *self = realpath("/proc/self/exe", NULL);
    if (self)
        setenv("KLAB_PROGRAM", self, 1);
    free(self);
    struct argv av = gdb_argv(gdb, &rs, &o, !o.no_start && never_ran && !rs.kaslr);
    if (o.print_only) {
        char *line = argv_join(&av);
        printf("%s\n", line);
        free(line);
        return 0;
    }
    fflush(NULL);
    execv(gdb, av.v);
    klab_error("cannot execute %s: %s", gdb, strerror(errno));
    return 1;
}
