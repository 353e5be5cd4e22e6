/* klab replay: boot a recording (klab boot --record DIR) again, paused at its first instruction with the stub
 * on loopback, for gdb's reverse execution. Everything that shaped the recorded run comes from the
 * recording's manifest (run/recording.h); what may differ is only how the replay is reached. */
#define _GNU_SOURCE
#include "cmd/boot.h"
#include "cmd/commands.h"
#include "machine/profile.h"
#include "run/recording.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { R_GDB_PORT = 256 };

static const struct opt options[] = {
    OPT_STR("name", "NAME", "the VM's name for klab gdb/stop/status (default: replay)", struct boot_options, name),
    OPT_CALL("gdb-port", R_GDB_PORT, "P", "stub port (default 1234, or the next free one)"),
    OPT_STR("gdb-socket", "F", "the stub on a Unix socket instead (mode 0600)", struct boot_options, gdb_socket),
    OPT_BOOL("detach", "return once the stub listens; the console goes to console.log and console.sock",
             struct boot_options, detach),
    OPT_BOOL("no-wait", "run the replay at once instead of waiting for gdb", struct boot_options, no_wait),
    OPT_BOOL("dry-run", "print the QEMU command line and exit", struct boot_options, dry_run),
    OPT_END,
};

const struct opt_cmd replay_command = {
    .name = "replay", .args = "DIR", .opts = options,
    .about = "Boots the recording DIR (klab boot --record DIR) again: the same kernel, initramfs, command line,\n"
             "CPU and memory, under QEMU's replay, paused at the first instruction with the gdb stub on\n"
             "127.0.0.1. The guest does what it did when recorded, console input included (typing does\n"
             "nothing); `klab gdb NAME` attaches, and gdb's reverse-stepi, reverse-step, reverse-next,\n"
             "reverse-finish and reverse-continue run it backwards, watchpoints included.",
    .epilog = "A recording is refused when its kernel, vmlinux or QEMU changed since (the replay would diverge).\n"
              "Going backwards replays from the recording's start to the step before: the further into the\n"
              "run, the longer each reverse step takes.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    uint64_t v;
    if (id != R_GDB_PORT || opts_number(arg, 1, 65535, &v, "--gdb-port wants a TCP port (1-65535)") != 0)
        return -1;
    ((struct boot_options *)ctx)->gdb_port = (int)v;
    return 0;
}

int cmd_replay(int argc, char **argv)
{
    struct boot_options o = { 0 };
    int first = opts_parse(&replay_command, argc, argv, on_option, &o);
    if (first <= 0)
        return opts_exit(first);
    if (argc - first != 1) {
        klab_error("replay wants one recording folder (see klab replay --help)");
        return 2;
    }
    if (o.gdb_socket && o.gdb_port) {
        klab_error("replay: give --gdb-port or --gdb-socket, not both");
        return 2;
    }
    struct recording r;
    if (recording_open(argv[first], &r) != 0) {
        recording_free(&r);
        return 1;
    }
    /* The QEMU is this machine's for the recorded arch, never the manifest's path: a recording may come
     * from someone else, and its manifest must not name a program to run. */
    const struct machine_profile *p = profile_find(r.arch);
    char *qemu = p ? find_in_path(p->qemu) : NULL;
    if (!p || !qemu || recording_check(&r, qemu) != 0) {
        if (!p)
            klab_error("replay: %s names no architecture klab knows (%s)", r.dir, r.arch);
        else if (!qemu)
            klab_error("replay: %s is not installed (scripts/deps.sh)", p->qemu);
        free(qemu);
        recording_free(&r);
        return 1;
    }
    o.arch = r.arch;
    o.kernel = r.kernel;
    o.vmlinux = r.vmlinux;
    o.append = r.append;
    o.cpu = r.cpu;
    o.qemu = qemu;
    o.mem = r.mem;
    o.kaslr = r.kaslr;
    o.no_pvh = r.no_pvh;
    o.smp = 1;
    o.accel = "tcg";
    o.name = o.name ? o.name : "replay";
    o.initrd = recording_path(r.dir, "initramfs.cpio.gz");
    o.replay = r.dir[0] == '/' ? r.dir : NULL;
    if (!o.replay) {
        char *cwd = getcwd(NULL, 0);
        o.replay = xasprintf("%s/%s", cwd ? cwd : ".", r.dir);
        free(cwd);
    }
    return boot_start(&o);
}
