/* klab gdb: exec gdb-multiarch on a running VM with its vmlinux, the stub, klab's gdb package, and (when the
 * VM has not run yet) a first stop at start_kernel. */
#define _GNU_SOURCE
#include "commands.h"
#include "monitor.h"
#include "paths.h"
#include "private_dir.h"
#include "qemu_argv.h"
#include "runstate.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: klab gdb [NAME] [--batch] [--no-start] [--print] [--wait S] [-ex CMD]... [-- GDB-ARGS...]\n"
          "\n"
          "Starts gdb-multiarch attached to the VM's stub with its vmlinux and klab's commands. A VM still at its\n"
          "first instruction is run to start_kernel (a hardware breakpoint on x86_64, where software ones set\n"
          "before the decompressor are lost).\n"
          "\n"
          "  --batch      run gdb in batch mode (for scripts): the -ex commands, then exit\n"
          "  --no-start   attach only, do not run to start_kernel\n"
          "  --print      print the gdb command line instead of running it\n"
          "  --wait S     wait up to S seconds for a VM that is starting (default 600 when `make vm-*` or\n"
          "               `klab boot` is starting it, 0 otherwise)\n"
          "  -ex CMD      a gdb command to run after attaching (repeatable)\n",
          f);
}

/* Someone is starting VM NAME: its `klab boot` holds the folder's lock, or `make vm-*` announced it
 * (klab boot --announce) and is still fetching or building. */
static bool vm_starting(const char *name)
{
    return runstate_starting(name) || runstate_announced(name);
}

/* Waits until VM NAME has its run state (its stub listens), while someone is starting it. The name, or
 * NULL after one line. */
static char *wait_for_vm(const char *name, long wait_s)
{
    uint64_t deadline = now_ns() + (uint64_t)wait_s * 1000000000u;
    bool said = false;
    for (;;) {
        struct runstate rs;
        if (runstate_load(name, &rs) == 0) {
            bool up = runstate_alive(&rs);
            runstate_free(&rs);
            if (up)
                return strdup(name);
        }
        if (!vm_starting(name)) {
            if (said)
                klab_error("VM '%s' did not start (klab status shows why)", name);
            else
                return resolve_vm_name(name);   /* says what is running instead */
            return NULL;
        }
        if (wait_s <= 0 || now_ns() >= deadline) {
            klab_error("VM '%s' is starting but its gdb stub was not up within %ld s", name, wait_s);
            return NULL;
        }
        if (!said) {
            klab_info("VM '%s' is starting; waiting up to %ld s for its gdb stub", name, wait_s);
            said = true;
        }
        sleep_ms(200);
    }
}

static bool vm_never_ran(const struct runstate *rs)
{
    char *out = runstate_monitor(rs, "info status", 2000);
    bool prelaunch = out && strstr(out, "prelaunch");
    free(out);
    return prelaunch;
}

int cmd_gdb(int argc, char **argv)
{
    const char *name_arg = NULL;
    bool batch = false, no_start = false, print_only = false;
    long wait_s = 600;
    struct argv ex = { 0 }, extra = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "-batch")) {
            batch = true;
        } else if (!strcmp(a, "--no-start")) {
            no_start = true;
        } else if (!strcmp(a, "--print")) {
            print_only = true;
        } else if (!strcmp(a, "--wait")) {
            uint64_t v;
            if (++i == argc || !parse_u64(argv[i], &v) || v > 86400) {
                klab_error("gdb: --wait wants seconds (0-86400)");
                return 2;
            }
            wait_s = (long)v;
        } else if (!strcmp(a, "-ex") || !strcmp(a, "--ex")) {
            if (++i == argc) {
                klab_error("gdb: -ex needs a command");
                return 2;
            }
            ex.v = realloc(ex.v, sizeof(char *) * (size_t)(ex.n + 2));
            ex.v[ex.n++] = argv[i];
        } else if (!strcmp(a, "--")) {
            extra.v = argv + i + 1;
            extra.n = argc - i - 1;
            break;
        } else if (a[0] == '-') {
            klab_error("gdb: unknown option '%s' (see klab gdb --help; pass gdb's own after --)", a);
            return 2;
        } else if (!name_arg) {
            name_arg = a;
        } else {
            klab_error("gdb: more than one VM name given");
            return 2;
        }
    }
    char *name = name_arg && runstate_valid_name(name_arg) ? wait_for_vm(name_arg, wait_s) : resolve_vm_name(name_arg);
    if (!name)
        return 1;
    struct runstate rs;
    if (runstate_load(name, &rs) != 0) {
        klab_error("VM '%s' vanished", name);
        return 1;
    }
    if (!rs.vmlinux) {
        klab_error("VM '%s' was booted without a vmlinux; gdb needs one for symbols (klab boot --vmlinux)", name);
        return 1;
    }
    char *gdb = find_in_path("gdb-multiarch");
    if (!gdb) {
        klab_error("gdb-multiarch not found: run scripts/deps.sh (Debian package gdb-multiarch)");
        return 1;
    }
    bool never_ran = vm_never_ran(&rs);
    /* Under KASLR start_kernel is not where vmlinux says until the kernel has moved itself: the symbols are
     * placed from the live machine (klab kaslr) once it has run, so there is no first stop to set. */
    bool first_stop = !no_start && never_ran && !rs.kaslr;
    if (rs.kaslr && never_ran && !print_only)
        klab_info("KASLR is on: continue, interrupt (^C) once the kernel runs, and klab's commands place the symbols "
                  "at the slide they read from the machine (klab kaslr)");
    const char *target = rs.gdb_listen;
    char *remote = !strncmp(target, "tcp:", 4) ? xasprintf("target remote %s", target + 4)
                                               : xasprintf("target remote %s", target + 5);
    char *py = xasprintf("python import sys; sys.path.insert(0, '%s'); import klab", klab_gdb_dir());
    char *state_env = path_join(rs.dir, "state");
    /* gdb looks for <vmlinux>-gdb.py beside vmlinux's real path (a registered source kernel's vmlinux is a
     * link into its build folder, where scripts_gdb put vmlinux-gdb.py). */
    char *vmlinux_real = realpath(rs.vmlinux, NULL);
    if (!vmlinux_real)
        vmlinux_real = strdup(rs.vmlinux);
    char *vmlinux_dir = strdup(vmlinux_real);
    char *slash = strrchr(vmlinux_dir, '/');
    if (slash)
        *slash = '\0';
    /* gdb runs the Python it auto-loads from that folder: add it only when nobody but this user or root can
     * write it or the script (a vmlinux named by someone else's files must not run their code as us). */
    char *script = xasprintf("%s-gdb.py", vmlinux_real);
    bool trusted = slash && trusted_path(vmlinux_dir, getuid()) &&
                   (!file_exists(script) || trusted_path(script, getuid()));
    if (slash && !trusted && !print_only)
        klab_info("not auto-loading scripts beside %s: that folder or its -gdb.py is writable by others or not "
                  "yours", vmlinux_real);
    free(script);
    free(vmlinux_real);
    char *safe_path = trusted ? xasprintf("add-auto-load-safe-path %s", vmlinux_dir) : NULL;
    setenv("KLAB_STATE", state_env, 1);

    struct argv av = { 0 };
    av.v = calloc((size_t)(20 + 2 * ex.n + extra.n), sizeof(char *));
    av.v[av.n++] = gdb;
    av.v[av.n++] = "-q";
    if (batch) {
        av.v[av.n++] = "-nx";   /* scripts get the same gdb whatever the user's ~/.gdbinit says */
        av.v[av.n++] = "-batch";
    }
    av.v[av.n++] = "-iex";
    av.v[av.n++] = "set pagination off";
    /* `break hello_open` before the module is loaded: pending until klab adds the module's symbols. */
    av.v[av.n++] = "-iex";
    av.v[av.n++] = "set breakpoint pending on";
    /* The kernel's own scripts (vmlinux-gdb.py beside vmlinux: lx-symbols, lx-dmesg, ...) load with klab's. */
    if (safe_path) {
        av.v[av.n++] = "-iex";
        av.v[av.n++] = safe_path;
    }
    av.v[av.n++] = rs.vmlinux;
    av.v[av.n++] = "-ex";
    av.v[av.n++] = remote;
    av.v[av.n++] = "-ex";
    av.v[av.n++] = py;
    if (first_stop) {
        av.v[av.n++] = "-ex";
        av.v[av.n++] = (char *)rs.profile->first_stop;
        av.v[av.n++] = "-ex";
        av.v[av.n++] = "continue";
    }
    for (int i = 0; i < ex.n; i++) {
        av.v[av.n++] = "-ex";
        av.v[av.n++] = ex.v[i];
    }
    for (int i = 0; i < extra.n; i++)
        av.v[av.n++] = extra.v[i];
    av.v[av.n] = NULL;
    if (print_only) {
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
