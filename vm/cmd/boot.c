/* klab boot: start a kernel under QEMU, paused at its first instruction with a gdb stub on 127.0.0.1.
 * Options → boot_resolve() (what this machine has) → boot_plan() (pure) → supervise() (run/supervisor.c). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "backend/backend.h"
#include "machine/lab_image.h"
#include "machine/swap_disk.h"
#include "cmd/boot.h"
#include "run/boot_plan.h"
#include "run/recording.h"
#include "run/runstate.h"
#include "run/supervisor.h"
#include "util/opts.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { O_ADD = 256, O_RUN, O_SMP, O_MEM, O_SWAP, O_GDB_PORT, O_ACCEL, O_BACKEND, O_ANNOUNCE };

/* Plain values land in struct boot_options by themselves; the rest are checked in on_option(). */
#define STR(name, meta, help, field) OPT_STR(name, meta, help, struct boot_options, field)
#define FLAG(name, help, field) OPT_BOOL(name, help, struct boot_options, field)

static const struct opt options[] = {
    STR("arch", "A", "x86_64 (alias x86, amd64) or arm64 (alias arm, aarch64); default: from --kernel", arch),
    STR("kernel", "F", "bzImage / arm64 Image (gzip'd is fine), or a registered kernel's name (debian-amd64,\n"
                              "arm64-64k, ... as `make kernels` / `make kernel PROFILE=` made them); default: the\n"
                              "Debian kernel fetched for --arch", kernel),
    STR("vmlinux", "F", "the matching vmlinux (checked against the image's banner); default: vmlinux beside\n"
                                "the image", vmlinux),
    STR("initrd", "F", "initramfs; default: a fresh klab image (busybox shell) in the run-state folder", initrd),
    OPT_CALL("add", O_ADD, "SRC:DEST",
             "put a host file or folder into that fresh image (e.g. hellodrv.ko:/lib/modules/)"),
    OPT_CALL("run", O_RUN, "CMD", "a shell command the guest runs after boot, before its shell (repeatable, in order)"),
    OPT_CALL("smp", O_SMP, "N", "CPUs (default 2)"),
    OPT_CALL("mem", O_MEM, "SIZE", "RAM, e.g. 1G, 512M (default 1G)"),
    OPT_CALL("swap", O_SWAP, "SIZE",
             "a swap disk of SIZE (e.g. 256M) in the run-state folder: virtio-blk, made swap by the\n"
                               "guest's init before the lab's hooks run (needs klab's fresh image)"),
    STR("cpu", "MODEL", "QEMU CPU (x86_64: max = 5-level paging, qemu64 = 4-level; arm64: cortex-a57)", cpu),
    STR("append", "ARGS", "extra kernel arguments", append),
    FLAG("kaslr", "keep KASLR on (default: nokaslr)", kaslr),
    FLAG("no-pvh", "x86_64: boot the bzImage through its decompressor; by default QEMU boots the matching\n"
                   "vmlinux by its PVH entry when it has one (no decompression: start_kernel comes sooner)", no_pvh),
    FLAG("no-wait", "run at once instead of waiting for gdb (the stub still listens)", no_wait),
    STR("name", "NAME", "the VM's name for klab gdb/stop/status (default: the architecture)", name),
    OPT_CALL("gdb-port", O_GDB_PORT, "P", "stub port (default 1234, or the next free one); a busy P is an error"),
    STR("gdb-socket", "F", "the stub on a Unix socket instead (mode 0600: only its owner can attach)", gdb_socket),
    OPT_CALL("accel", O_ACCEL, "A", "kvm or tcg (default: kvm only if a probe guest really runs under it)"),
    FLAG("detach", "return once the stub listens; the console goes to console.log and console.sock", detach),
    FLAG("dry-run", "print the QEMU command line (libvirt: the domain XML) and exit", dry_run),
    OPT_CALL("backend", O_BACKEND, "B",
             "qemu (klab runs QEMU, default) or libvirt (a transient domain klab-NAME, started\n"
                                "paused, destroyed when klab's supervisor ends; no RAM file: klab reads through the stub)"),
    STR("connect", "URI", "libvirt URI (default: libvirt's, e.g. qemu:///session; qemu+ssh://host/session)", connect),
    OPT_CALL("announce", O_ANNOUNCE, "PID",
             "boot nothing: record that process PID (e.g. `make vm-x86` fetching and building) is\n"
                                    "starting this VM, so that `klab gdb` waits for it while PID lives"),
    STR("qemu", "BINARY", "the system emulator to run (default: the profile's, found in PATH)", qemu),
    FLAG("snapshot", "restore the machine at its shell from a snapshot in the cache (a fraction of a second);\n"
                     "the first boot of a kernel + image + options saves it (docs/snapshots.md)", snapshot),
    STR("snapshot-dir", "DIR", "--snapshot with the snapshots in DIR (default: the cache's); a folder of root's\n"
                               "that others cannot write is used read-only (an exam room's)", snapshot_dir),
    FLAG("save-snapshot", "only save the machine's snapshot (unless a fresh one is there) and exit", save_snapshot),
    STR("record", "DIR", "record the whole run (QEMU record/replay: one CPU, TCG with icount) into the new\n"
                         "folder DIR, --run's input included (typed input with --console-input); `klab replay DIR`\n"
                         "runs it again for reverse debugging (reverse-stepi, reverse-continue, watchpoints backwards)",
        record),
    FLAG("console-input", "with --record: the console takes typed input through console.sock, recorded with the\n"
                          "run (input otherwise comes from --run); its replay prints the session again (going\n"
                          "backwards through it is not tested)", console_input),
    OPT_END,
};

const struct opt_cmd boot_command = {
    .name = "boot",
    .about = "Boots a kernel under QEMU, stopped at its first instruction, with a gdb stub on 127.0.0.1.",
    .epilog = "The terminal is the guest console when interactive (^A x quits QEMU); it is always logged to\n"
              "console.log in the run-state folder. A guest panic ends QEMU and is reported (exit status 3).",
    .opts = options,
};

static int one_of(const char *arg, const char *a, const char *b, const char **out, const char *what)
{
    if (strcmp(arg, a) && strcmp(arg, b)) {
        klab_error("%s %s or %s, not '%s'", what, a, b, arg);
        return -1;
    }
    *out = arg;
    return 0;
}

static int on_option(void *ctx, int id, const char *arg)
{
    struct boot_options *o = ctx;
    uint64_t v;
    switch (id) {
    case O_RUN: o->runs[o->nruns++] = arg; return 0;
    case O_ADD: return lab_image_parse_add((char *)arg, &o->adds[o->nadds++]);
    case O_ACCEL: return one_of(arg, "kvm", "tcg", &o->accel, "--accel must be");
    case O_BACKEND: return one_of(arg, "qemu", "libvirt", &o->backend, "--backend wants");
    case O_SMP:
        if (opts_number(arg, 1, 64, &v, "--smp wants a CPU count from 1 to 64") != 0)
            return -1;
        o->smp = (unsigned)v;
        o->smp_given = true;
        return 0;
    case O_MEM:
        if (parse_size_mib(arg, &o->mem) && o->mem >= (64ull << 20))
            return 0;
        klab_error("--mem wants a size of at least 64M (e.g. 512M, 2G), not '%s'", arg);
        return -1;
    case O_SWAP:
        /* mkswap needs at least 10 pages (util-linux, busybox); 16M leaves room on 64K-page kernels too. */
        if (parse_size_mib(arg, &o->swap) && o->swap >= (16ull << 20) && o->swap <= (64ull << 30))
            return 0;
        klab_error("--swap wants a size from 16M to 64G (e.g. 256M), not '%s'", arg);
        return -1;
    case O_GDB_PORT:
        if (opts_number(arg, 1, 65535, &v, "--gdb-port wants a TCP port (1-65535)") != 0)
            return -1;
        o->gdb_port = (int)v;
        return 0;
    case O_ANNOUNCE:
        if (opts_number(arg, 1, 4194304, &v, "--announce wants a process id") != 0)
            return -1;
        o->announce = (pid_t)v;
        return 0;
    }
    return -1;
}

/* Options that make no sense together: one line, exit status 2. */
static int check_combination(const struct boot_options *o)
{
    bool libvirt = o->backend && !strcmp(o->backend, "libvirt");
    if (o->connect && !libvirt)
        klab_error("boot: --connect is for --backend libvirt");
    else if (o->gdb_socket && o->gdb_port)
        klab_error("boot: give --gdb-port or --gdb-socket, not both");
    else if (o->swap && libvirt)
        klab_error("boot: --swap is for --backend qemu");
    else if (o->initrd && o->swap)
        klab_error("boot: --swap puts its modules and swapon hook into klab's fresh image; it cannot with --initrd");
    else if (o->initrd && (o->nadds || o->nruns))
        klab_error("boot: --add and --run go into klab's fresh image; with --initrd put them in yours (klab rootfs)");
    else if (o->record && libvirt)
        klab_error("boot: --record is for --backend qemu (klab passes QEMU's -icount rr=record itself)");
    else if (o->console_input && !o->record)
        klab_error("boot: --console-input is for --record (any other VM's console.sock takes input already)");
    else if (o->record && o->swap)
        klab_error("boot: --record cannot record a disk's I/O here (QEMU's blkreplay): drop --swap");
    else if (o->record && o->smp_given && o->smp != 1)
        klab_error("boot: --record runs one CPU (QEMU's icount runs the guest in one deterministic thread): drop --smp");
    else if (o->record && o->accel && strcmp(o->accel, "tcg"))
        klab_error("boot: --record needs TCG (icount): a KVM guest's execution cannot be recorded");
    else if (o->snapshot && libvirt)
        klab_error("boot: --snapshot is for --backend qemu (klab restores the RAM file it shares with QEMU)");
    else if (o->snapshot && o->record)
        klab_error("boot: --snapshot and --record: a recording starts from the first instruction; drop one");
    else if (o->snapshot && o->swap)
        klab_error("boot: --snapshot cannot keep a swap disk's contents with the RAM: drop --swap");
    else if (o->record && strchr(o->record, ','))
        klab_error("boot: --record %s: a ',' in the path would split QEMU's -icount option", o->record);
    else
        return 0;
    return -1;
}

static int parse(int argc, char **argv, struct boot_options *o)
{
    *o = (struct boot_options){ .smp = 2, .mem = 1ull << 30 };
    o->adds = calloc((size_t)argc, sizeof *o->adds);
    o->runs = calloc((size_t)argc, sizeof *o->runs);
    int first = opts_parse(&boot_command, argc, argv, on_option, o);
    if (first <= 0)
        return opts_exit(first);
    if (first < argc) {
        klab_error("boot: unexpected argument '%s' (see klab boot --help)", argv[first]);
        return 2;
    }
    if (o->snapshot_dir || o->save_snapshot)
        o->snapshot = true;
    if (o->snapshot_dir && o->snapshot_dir[0] != '/') {
        klab_error("boot: --snapshot-dir wants an absolute path, not '%s'", o->snapshot_dir);
        return 2;
    }
    if (check_combination(o) != 0)
        return 2;
    struct stat st;
    if (o->record && lstat(o->record, &st) == 0) {
        klab_error("boot: --record %s exists already (a recording is never overwritten)", o->record);
        return 2;
    }
    if (o->record) {
        o->smp = 1;
        o->accel = "tcg";
        if (o->record[0] != '/') {   /* QEMU and the supervisor get it: absolute */
            char cwd[4096];
            if (!getcwd(cwd, sizeof cwd)) {
                klab_error("boot: --record: cannot tell the current folder");
                return 2;
            }
            o->record = xasprintf("%s/%s", cwd, o->record);
        }
    }
    return -1;
}

/* --announce: boot nothing, say that process PID is starting this VM (for `make vm-*`). */
static int announce_only(const struct boot_options *o)
{
    const struct machine_profile *p = o->arch ? profile_find(o->arch) : NULL;
    const char *who = o->name ? o->name : p ? p->arch : NULL;
    if (!who) {
        klab_error("boot --announce needs --name or --arch");
        return 2;
    }
    return runstate_announce(who, o->announce) == 0 ? 0 : 1;
}

static int dry_run(struct boot_plan *plan)
{
    plan->req.initrd = plan->req.initrd ? plan->req.initrd : "<run-state>/initramfs.cpio.gz";
    return plan->backend->describe(plan, stdout);
}

/* --record: the new recording folder before the boot, its initramfs and manifest once the image exists. */
static int record_start(const struct boot_options *o)
{
    char *qemu_img = find_in_path("qemu-img");
    if (!qemu_img) {
        klab_error("boot: --record needs qemu-img for its snapshot drive (scripts/deps.sh installs qemu-utils)");
        return -1;
    }
    int rc = recording_create(o->record, qemu_img);
    free(qemu_img);
    return rc;
}

static int record_finish(const struct boot_options *o, const struct boot_facts *f, struct boot_plan *plan)
{
    struct recording r = {
        .dir = (char *)o->record, .arch = (char *)f->profile->arch, .kernel = f->kernel, .vmlinux = f->vmlinux,
        .append = (char *)o->append, .cpu = (char *)o->cpu, .qemu = f->qemu_path, .mem = o->mem, .kaslr = o->kaslr,
        .no_pvh = o->no_pvh, .stamps = recording_stamps(f->kernel, f->vmlinux, f->qemu_path),
    };
    int rc = recording_finish(&r, f->initrd);
    free(r.stamps);
    if (rc == 0)
        plan->req.initrd = plan->rs.initrd = recording_path(o->record, "initramfs.cpio.gz");
    return rc;
}

/* What a reset's cold start packs again (boot_plan.h repack): the image as boot_start packed it. */
struct repack {
    const struct machine_profile *profile;
    const char *run_dir;
    const struct boot_options *o;
    struct lab_image_kernel k;
};

static int repack_image(struct boot_plan *p, char *why, size_t whylen)
{
    const struct repack *r = p->repack_ctx;
    for (size_t i = 0; i < r->o->nadds; i++)
        if (access(r->o->adds[i].src, R_OK) != 0) {
            snprintf(why, whylen, "--add %s: %s", r->o->adds[i].src, strerror(errno));
            return -1;
        }
    char *image = lab_image_build(r->profile, r->run_dir, r->o->adds, r->o->nadds, r->o->runs, r->o->nruns, &r->k);
    if (!image) {
        snprintf(why, whylen, "the lab image could not be packed again");
        return -1;
    }
    free(image);   /* the same path as the boot's: plan.req.initrd still names it */
    return 0;
}

int boot_start(struct boot_options *o)
{
    int rc;
    struct boot_facts facts;
    if ((rc = boot_resolve(o, &facts)) != 0)
        return rc;
    struct boot_plan plan;
    boot_plan(o, &facts, &plan);
    if (o->dry_run)
        return dry_run(&plan);
    if (runstate_claim(plan.rs.name) < 0)   /* the lock: held until this process and its supervisor end */
        return 1;
    if (o->record && record_start(o) != 0)
        return 1;
    if (facts.swap_image && swap_disk_create(facts.swap_image, o->swap) != 0)
        return 1;
    const struct lab_image_kernel k = {
        .swap = { .on = facts.swap_image != NULL, .modules = facts.swap_modules }, .fw_cfg = facts.fw_cfg_modules,
        .file_channel = facts.file_channel, .channel_modules = facts.channel_modules };
    /* With the file channel the snapshot holds the base image; --add and --run come after each restore. */
    size_t nadds = facts.file_channel ? 0 : o->nadds, nruns = facts.file_channel ? 0 : o->nruns;
    if (!facts.initrd && !(facts.initrd = lab_image_build(facts.profile, facts.run_dir, o->adds, nadds, o->runs,
                                                          nruns, &k)))
        return 1;
    bool packed = !plan.req.initrd;
    plan.req.initrd = plan.rs.initrd = facts.initrd;
    struct repack repack = { facts.profile, facts.run_dir, o, k };
    if (packed && !facts.file_channel && !o->record && !o->replay && (o->nadds || o->nruns)) {
        plan.repack = repack_image;
        plan.repack_ctx = &repack;
    }
    if (o->save_snapshot)
        return qemu_save_snapshot(&plan);
    if (o->record && record_finish(o, &facts, &plan) != 0)
        return 1;
    if (facts.accel_why[0] && !o->detach)
        klab_info("accelerator %s (%s)", facts.accel, facts.accel_why);
    if (o->record && !o->detach)
        klab_info("recording into %s (klab replay %s runs it again)", o->record, o->record);
    return supervise(&plan);
}

int cmd_boot(int argc, char **argv)
{
    struct boot_options o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.announce)
        return announce_only(&o);
    return boot_start(&o);
}
