/* klab boot: start a kernel under QEMU, paused at its first instruction with a gdb stub on 127.0.0.1.
 *
 * Process shape: klab (the supervisor) forks QEMU and stays its parent until it exits, so that the RAM file
 * and sockets are removed and a guest panic is reported however the VM ends. QEMU gets PR_SET_PDEATHSIG, so a
 * killed supervisor never leaves a VM behind. With --detach the supervisor moves to its own session and the
 * command returns once the stub listens. */
#define _GNU_SOURCE
#include "accel.h"
#include "backend_libvirt.h"
#include "commands.h"
#include "gdb_port.h"
#include "kimage.h"
#include "kpair.h"
#include "monitor.h"
#include "paths.h"
#include "qemu_argv.h"
#include "runstate.h"
#include "util.h"

#include "../rootfs/initramfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 15000

static void usage(FILE *f)
{
    fputs("usage: klab boot [--arch x86_64|arm64] [--kernel IMAGE] [--vmlinux VMLINUX] [--initrd CPIO]\n"
          "                 [--smp N] [--mem SIZE] [--cpu MODEL] [--append ARGS] [--kaslr] [--no-wait]\n"
          "                 [--name NAME] [--gdb-port PORT] [--accel kvm|tcg] [--detach] [--dry-run]\n"
          "                 [--add SRC:DEST]... [--run CMD]... [--gdb-socket PATH]\n"
          "                 [--backend qemu|libvirt] [--connect URI]\n"
          "\n"
          "Boots a kernel under QEMU, stopped at its first instruction, with a gdb stub on 127.0.0.1.\n"
          "\n"
          "  --arch A        x86_64 (alias x86, amd64) or arm64 (alias arm, aarch64); default: from --kernel\n"
          "  --kernel F      bzImage / arm64 Image (gzip'd is fine), or a registered kernel's name (debian-amd64,\n"
          "                  arm64-64k, ... as `make kernels` / `make kernel PROFILE=` made them); default: the\n"
          "                  Debian kernel fetched for --arch\n"
          "  --vmlinux F     the matching vmlinux (checked against the image's banner); default: vmlinux beside\n"
          "                  the image\n"
          "  --initrd F      initramfs; default: a fresh klab image (busybox shell) in the run-state folder\n"
          "  --add SRC:DEST  put a host file or folder into that fresh image (e.g. hellodrv.ko:/lib/modules/)\n"
          "  --run CMD       a shell command the guest runs after boot, before its shell (repeatable, in order)\n"
          "  --smp N         CPUs (default 2)            --mem SIZE   RAM, e.g. 1G, 512M (default 1G)\n"
          "  --cpu MODEL     QEMU CPU (x86_64: max = 5-level paging, qemu64 = 4-level; arm64: cortex-a57)\n"
          "  --append ARGS   extra kernel arguments      --kaslr      keep KASLR on (default: nokaslr)\n"
          "  --no-wait       run at once instead of waiting for gdb (the stub still listens)\n"
          "  --name NAME     the VM's name for klab gdb/stop/status (default: the architecture)\n"
          "  --gdb-port P    stub port (default 1234, or the next free one); a busy P is an error\n"
          "  --gdb-socket F  the stub on a Unix socket instead (mode 0600: only its owner can attach)\n"
          "  --accel A       kvm or tcg (default: kvm only if a probe guest really runs under it)\n"
          "  --detach        return once the stub listens; the console goes to console.log and console.sock\n"
          "  --dry-run       print the QEMU command line (libvirt: the domain XML) and exit\n"
          "  --backend B     qemu (klab runs QEMU, default) or libvirt (a transient domain klab-NAME, started\n"
          "                  paused, destroyed when klab's supervisor ends; no RAM file: klab reads through the stub)\n"
          "  --connect URI   libvirt URI (default: libvirt's, e.g. qemu:///session; qemu+ssh://host/session)\n"
          "  --announce PID  boot nothing: record that process PID (e.g. `make vm-x86` fetching and building) is\n"
          "                  starting this VM, so that `klab gdb` waits for it while PID lives\n"
          "\n"
          "The terminal is the guest console when interactive (^A x quits QEMU); it is always logged to\n"
          "console.log in the run-state folder. A guest panic ends QEMU and is reported (exit status 3).\n",
          f);
}

struct boot_options {
    const char *arch, *kernel, *vmlinux, *initrd, *append, *cpu, *accel, *name, *qemu, *gdb_socket, *connect;
    bool libvirt;
    struct initramfs_add *adds;   /* --add, for the default image */
    size_t nadds;
    const char **runs;            /* --run commands */
    size_t nruns;
    unsigned smp;
    uint64_t mem;
    int gdb_port;
    pid_t announce;   /* --announce PID: only say that PID is starting this VM (for `make vm-*`) */
    bool kaslr, no_wait, detach, dry_run;
};

static int parse(int argc, char **argv, struct boot_options *o)
{
    static const struct option longopts[] = {
        { "arch", required_argument, 0, 'a' },   { "kernel", required_argument, 0, 'k' },
        { "vmlinux", required_argument, 0, 'v' }, { "initrd", required_argument, 0, 'i' },
        { "smp", required_argument, 0, 's' },    { "mem", required_argument, 0, 'm' },
        { "append", required_argument, 0, 'A' }, { "cpu", required_argument, 0, 'c' },
        { "accel", required_argument, 0, 'x' },  { "name", required_argument, 0, 'n' },
        { "gdb-port", required_argument, 0, 'p' }, { "qemu", required_argument, 0, 'q' },
        { "kaslr", no_argument, 0, 'K' },        { "no-wait", no_argument, 0, 'W' },
        { "detach", no_argument, 0, 'd' },       { "dry-run", no_argument, 0, 'D' },
        { "gdb-socket", required_argument, 0, 'G' }, { "backend", required_argument, 0, 'B' },
        { "connect", required_argument, 0, 'U' },
        { "add", required_argument, 0, 'Y' },    { "run", required_argument, 0, 'R' },
        { "announce", required_argument, 0, 'N' },
        { "help", no_argument, 0, 'h' },         { 0, 0, 0, 0 },
    };
    *o = (struct boot_options){ .smp = 2, .mem = 1ull << 30 };
    o->adds = calloc((size_t)argc, sizeof *o->adds);
    o->runs = calloc((size_t)argc, sizeof *o->runs);
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->arch = optarg; break;
        case 'k': o->kernel = optarg; break;
        case 'v': o->vmlinux = optarg; break;
        case 'i': o->initrd = optarg; break;
        case 'A': o->append = optarg; break;
        case 'c': o->cpu = optarg; break;
        case 'x':
            if (strcmp(optarg, "kvm") && strcmp(optarg, "tcg")) {
                klab_error("--accel must be kvm or tcg, not '%s'", optarg);
                return -1;
            }
            o->accel = optarg;
            break;
        case 'n': o->name = optarg; break;
        case 'q': o->qemu = optarg; break;
        case 'K': o->kaslr = true; break;
        case 'W': o->no_wait = true; break;
        case 'd': o->detach = true; break;
        case 'D': o->dry_run = true; break;
        case 's':
            if (!parse_u64(optarg, &v) || v == 0 || v > 64) {
                klab_error("--smp wants a CPU count from 1 to 64, not '%s'", optarg);
                return -1;
            }
            o->smp = (unsigned)v;
            break;
        case 'm':
            if (!parse_size_mib(optarg, &o->mem) || o->mem < (64ull << 20)) {
                klab_error("--mem wants a size of at least 64M (e.g. 512M, 2G), not '%s'", optarg);
                return -1;
            }
            break;
        case 'p':
            if (!parse_u64(optarg, &v) || v == 0 || v > 65535) {
                klab_error("--gdb-port wants a TCP port (1-65535), not '%s'", optarg);
                return -1;
            }
            o->gdb_port = (int)v;
            break;
        case 'Y': {
            char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1]) {
                klab_error("--add wants SRC:DEST, not '%s'", optarg);
                return -1;
            }
            *colon = '\0';
            o->adds[o->nadds++] = (struct initramfs_add){ optarg, colon + 1 };
            break;
        }
        case 'R': o->runs[o->nruns++] = optarg; break;
        case 'N':
            if (!parse_u64(optarg, &v) || v == 0 || v > 4194304) {
                klab_error("--announce wants a process id, not '%s'", optarg);
                return -1;
            }
            o->announce = (pid_t)v;
            break;
        case 'G': o->gdb_socket = optarg; break;
        case 'U': o->connect = optarg; break;
        case 'B':
            if (strcmp(optarg, "qemu") && strcmp(optarg, "libvirt")) {
                klab_error("--backend wants qemu or libvirt, not '%s'", optarg);
                return -1;
            }
            o->libvirt = !strcmp(optarg, "libvirt");
            break;
        case 'h': usage(stdout); exit(0);
        default:
            klab_error("boot: unknown or incomplete option '%s' (see klab boot --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        klab_error("boot: unexpected argument '%s' (see klab boot --help)", argv[optind]);
        return -1;
    }
    if (o->connect && !o->libvirt) {
        klab_error("boot: --connect is for --backend libvirt");
        return -1;
    }
    if (o->gdb_socket && o->gdb_port) {
        klab_error("boot: give --gdb-port or --gdb-socket, not both");
        return -1;
    }
    if (o->initrd && (o->nadds || o->nruns)) {
        klab_error("boot: --add and --run go into klab's fresh image; with --initrd put them in yours (klab rootfs)");
        return -1;
    }
    return 0;
}

/* A kernel argument: a file, or the name of a registered kernel (<cache>/kernels/NAME/vmlinuz). */
static char *resolve_kernel(const char *arg)
{
    if (strchr(arg, '/') || file_exists(arg))
        return strdup(arg);
    char *cache = klab_cache_dir();
    char *path = xasprintf("%s/kernels/%s/vmlinuz", cache, arg);
    free(cache);
    if (file_exists(path))
        return path;
    free(path);
    return NULL;
}

/* Resolves the profile, kernel and vmlinux, and checks that they agree. */
static int check_kernel(struct boot_options *o, const struct machine_profile **profile, char **kernel,
                        char **vmlinux, unsigned *page_shift)
{
    const struct machine_profile *asked = NULL;
    if (o->arch && !(asked = profile_find(o->arch))) {
        klab_error("unknown architecture '%s' (x86_64 or arm64)", o->arch);
        return -1;
    }
    if (!o->kernel && !asked) {
        klab_error("boot needs --arch or --kernel (see klab boot --help)");
        return -1;
    }
    if (o->kernel && !(*kernel = resolve_kernel(o->kernel))) {
        klab_error("kernel '%s' is neither a file nor a registered kernel (make kernels, or make kernel PROFILE=%s)",
                   o->kernel, o->kernel);
        return -1;
    }
    if (!o->kernel)
        *kernel = default_kernel(asked);
    if (!file_exists(*kernel)) {
        if (o->kernel)
            klab_error("kernel image %s not found", *kernel);
        else
            klab_error("no %s kernel yet (%s is missing): run `make kernels`", asked->arch, *kernel);
        return -1;
    }
    char err[512];
    struct kimage_info info;
    if (kimage_inspect(*kernel, false, &info, err, sizeof err) != 0) {
        klab_error("%s", err);
        return -1;
    }
    if (asked && asked != info.profile) {
        klab_error("%s is an %s kernel, but --arch %s was asked", *kernel, info.profile->arch, asked->arch);
        return -1;
    }
    *profile = info.profile;
    *page_shift = info.page_shift;
    if (o->vmlinux) {
        *vmlinux = strdup(o->vmlinux);
        if (!file_exists(*vmlinux)) {
            klab_error("vmlinux %s not found", *vmlinux);
            return -1;
        }
    } else {
        char *dir = strdup(*kernel);
        char *slash = strrchr(dir, '/');
        *vmlinux = slash ? (*slash = '\0', path_join(dir, "vmlinux")) : strdup("vmlinux");
        free(dir);
        if (!file_exists(*vmlinux)) {
            free(*vmlinux);
            *vmlinux = NULL;   /* gdb will need one; booting does not */
            return 0;
        }
    }
    char *cache = klab_cache_dir();
    int rc = kernel_pair_check(*kernel, *vmlinux, cache, err, sizeof err);
    free(cache);
    if (rc != 0)
        klab_error("%s", err);
    return rc;
}

static char *build_default_initrd(const struct machine_profile *p, const char *run_dir,
                                  const struct boot_options *o)
{
    char *busybox = default_busybox(p);
    if (!file_exists(busybox)) {
        klab_error("no %s busybox yet (%s is missing): run `make rootfs` or pass --initrd", p->arch, busybox);
        free(busybox);
        return NULL;
    }
    char *segments = segment_cache_dir();
    mkdir_p(segments, 0755);
    /* --run: one hook, run by klab's /init after the banner (rootfs/init_script.c), commands in order. */
    struct initramfs_add *adds = calloc(o->nadds + 1, sizeof *adds);
    memcpy(adds, o->adds, o->nadds * sizeof *adds);
    size_t nadds = o->nadds;
    char *hook = NULL;
    if (o->nruns) {
        hook = path_join(run_dir, "run-hook.sh");
        char *text = strdup("");
        for (size_t i = 0; i < o->nruns; i++) {
            char *n = xasprintf("%s%s\n", text, o->runs[i]);
            free(text);
            text = n;
        }
        write_text_file(hook, text);
        free(text);
        adds[nadds++] = (struct initramfs_add){ hook, "/etc/klab.d/90-run.sh" };
    }
    struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 9,
                                   .cache_dir = segments, .adds = adds, .nadds = nadds };
    char *out = path_join(run_dir, "initramfs.cpio.gz");
    char err[512];
    if (initramfs_build(&spec, out, NULL, err, sizeof err) != 0) {
        klab_error("initramfs: %s", err);
        free(out);
        out = NULL;
    }
    free(busybox);
    free(segments);
    free(adds);
    free(hook);
    return out;
}

/* First line of QEMU's stderr, to explain an early exit in one line. */
static void report_qemu_failure(const char *run_dir, int status)
{
    char *log = path_join(run_dir, "qemu.log");
    char *text = read_text_file(log);
    char *line = text ? strtok(text, "\n") : NULL;
    if (line && *line)
        klab_error("QEMU failed to start: %s", line);
    else if (WIFSIGNALED(status))
        klab_error("QEMU died on signal %d before it was ready", WTERMSIG(status));
    else
        klab_error("QEMU exited (status %d) before it was ready", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    free(text);
    free(log);
}

static volatile sig_atomic_t qemu_pid_for_signals;
static volatile sig_atomic_t stop_requested;   /* the libvirt backend's supervisor: destroy the domain */

static void forward_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (qemu_pid_for_signals > 0)
        kill((pid_t)qemu_pid_for_signals, SIGTERM);
}

/* The line the kernel prints when it panics (kernel/panic.c), if the console has one. malloc'ed or NULL. */
static char *find_panic(const char *console_log)
{
    char *text = read_text_file(console_log);
    if (!text)
        return NULL;
    char *p = strstr(text, "Kernel panic - not syncing");
    char *line = NULL;
    if (p) {
        size_t n = strcspn(p, "\r\n");
        line = strndup(p, n);
    }
    free(text);
    return line;
}

/* Called once QEMU has exited: say why, remove what must not outlive the VM. Returns klab's exit status. */
static int finish(const char *run_dir, int status, bool quiet)
{
    char *console = path_join(run_dir, "console.log");
    char *panic = find_panic(console);
    char *why;
    int rc;
    if (panic) {
        why = xasprintf("guest panicked: %s", panic);
        rc = 3;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        why = strdup("powered off");
        rc = 0;
    } else if (WIFSIGNALED(status)) {
        why = xasprintf("QEMU killed by signal %d", WTERMSIG(status));
        rc = WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL ? 0 : 2;
    } else {
        why = xasprintf("QEMU exited with status %d", WEXITSTATUS(status));
        rc = 2;
    }
    static const char *const gone[] = { "ram", "state", "monitor.sock", "console.sock", "initramfs.cpio.gz" };
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        char *p = path_join(run_dir, gone[i]);
        unlink(p);
        free(p);
    }
    char *exit_file = path_join(run_dir, "exit");
    char *line = xasprintf("%s\n", why);
    write_text_file(exit_file, line);
    if (!quiet || rc != 0)
        klab_info("VM ended: %s (console log: %s)", why, console);
    free(line);
    free(exit_file);
    free(panic);
    free(why);
    free(console);
    return rc;
}

static void copy_new_output(int fd, off_t *offset)
{
    char buf[4096];
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, *offset)) > 0) {
        if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
            return;
        *offset += n;
    }
}

/* Waits for QEMU to exit; a non-interactive foreground boot echoes the console log meanwhile. */
static int wait_qemu(pid_t qemu, const char *run_dir, bool echo_log)
{
    char *console = path_join(run_dir, "console.log");
    int fd = echo_log ? open(console, O_RDONLY | O_CLOEXEC) : -1;
    off_t off = 0;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(qemu, &status, fd >= 0 ? WNOHANG : 0);
        if (w == qemu)
            break;
        if (w < 0 && errno != EINTR)
            break;
        if (fd >= 0) {
            copy_new_output(fd, &off);
            sleep_ms(50);
        }
    }
    if (fd >= 0) {
        copy_new_output(fd, &off);
        close(fd);
    }
    free(console);
    return status;
}

static void exec_qemu(const struct argv *av, const char *run_dir, bool detached, pid_t supervisor)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)   /* the supervisor died before prctl took effect */
        _exit(127);
    /* The RAM file and the gdb, monitor and console sockets are the VM: its owner's alone. */
    umask(077);
    char *log = path_join(run_dir, "qemu.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0)
        dup2(fd, STDERR_FILENO);
    if (detached) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(fd >= 0 ? fd : null, STDOUT_FILENO);
    }
    /* Nothing the caller had open (a test's pipe, a terminal's fds) may outlive it inside QEMU. */
    close_range(3, ~0u, 0);
    execvp(av->v[0], av->v);
    fprintf(stderr, "cannot execute %s: %s\n", av->v[0], strerror(errno));
    _exit(127);
}

/* Runs in the supervisor: starts QEMU, waits for it to be ready, writes the run state. Returns QEMU's pid,
 * or -1 after reporting (QEMU gone). */
static pid_t start_qemu(const struct argv *av, struct runstate *rs, bool detached)
{
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        klab_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_qemu(av, rs->dir, detached, self);
    qemu_pid_for_signals = pid;
    char *mon = path_join(rs->dir, "monitor.sock");
    uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
    int status = 0;
    bool ready = false, exited = false;
    while (!ready && !exited && now_ns() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            exited = true;
        else
            ready = monitor_wait_ready(mon, 20) == 0;
    }
    free(mon);
    if (!ready) {
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            klab_error("QEMU did not become ready within %d s", READY_TIMEOUT_MS / 1000);
        } else {
            report_qemu_failure(rs->dir, status);
        }
        finish(rs->dir, status, true);
        return -1;
    }
    rs->qemu_pid = pid;
    rs->supervisor_pid = self;
    if (runstate_write(rs) != 0) {
        klab_error("cannot write the run state in %s", rs->dir);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        finish(rs->dir, status, true);
        return -1;
    }
    return pid;
}

/* The libvirt backend's start, in the supervisor: the domain (paused when gdb should find it at the first
 * instruction) and its stub, then the run state. NULL after reporting. */
static struct libvirt_vm *start_libvirt(const struct boot_request *req, struct runstate *rs, const char *uri,
                                        const char *qemu_path)
{
    char *xml = libvirt_domain_xml(req, qemu_path);
    char *xml_file = path_join(rs->dir, "domain.xml");
    write_text_file(xml_file, xml);
    char err[512];
    struct libvirt_vm *vm = libvirt_start(uri, xml, req->gdb_listen, req->wait_for_gdb, err, sizeof err);
    free(xml);
    free(xml_file);
    if (!vm) {
        klab_error("%s", err);
        finish(rs->dir, 0, true);
        return NULL;
    }
    if (!strncmp(req->gdb_listen, "unix:", 5))
        chmod(req->gdb_listen + 5, 0600);   /* only its owner attaches, as with the QEMU backend */
    /* No QEMU child here: the supervisor stands for the VM (it holds the connection the domain dies with). */
    rs->qemu_pid = rs->supervisor_pid = getpid();
    rs->backend = "libvirt";
    rs->connect = (char *)(uri ? uri : "");
    rs->nram = 0;
    if (runstate_write(rs) != 0) {
        klab_error("cannot write the run state in %s", rs->dir);
        libvirt_close(vm);
        finish(rs->dir, 0, true);
        return NULL;
    }
    return vm;
}

static void announce(const struct runstate *rs, bool waiting, FILE *f)
{
    const char *stub = rs->gdb_listen + (strncmp(rs->gdb_listen, "tcp:", 4) ? 0 : 4);
    fprintf(f, "klab: %s VM '%s' %s; gdb stub on %s (%s)\n", rs->profile->arch, rs->name,
            waiting ? "is paused at its first instruction" : "is running", stub, rs->accel);
    fprintf(f, "klab: attach with `make gdb-%s` or `klab gdb %s`; stop with `klab stop %s`\n",
            rs->profile->make_suffix, rs->name, rs->name);
}

/* Empties a VM folder of what an ended VM left, but its lock. */
static void clear_run_dir(int dfd, const char *dir)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "lock"))
            continue;
        if (unlinkat(dfd, e->d_name, 0) != 0 && errno == EISDIR) {
            char *p = path_join(dir, e->d_name);   /* the folder is private: its path is safe to use */
            remove_tree(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
}

/* Claims the VM folder: created private (vm/private_dir.h), its lock taken — held by this process and the
 * supervisor for the VM's whole life, which is how every other klab command knows the VM is starting or
 * running — and emptied of what an ended VM left. The lock's descriptor, or -1 after one line. */
static int claim_run_dir(const char *name, const char *dir)
{
    if (runstate_check_root(true) != 0)
        return -1;
    int dfd = runstate_open_dir(name, true);
    if (dfd < 0)
        return -1;
    int lock = runstate_lock(dfd);
    if (lock < 0) {
        struct runstate old;
        if (runstate_load(name, &old) == 0) {
            klab_error("a VM named '%s' is already running (QEMU pid %d, gdb %s): `klab stop %s`, or choose "
                       "another --name", name, (int)old.qemu_pid, old.gdb_listen, name);
            runstate_free(&old);
        } else {
            klab_error("a VM named '%s' is starting: wait for it, or choose another --name", name);
        }
        close(dfd);
        return -1;
    }
    clear_run_dir(dfd, dir);
    close(dfd);
    return lock;
}

int cmd_boot(int argc, char **argv)
{
    struct boot_options o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    if (o.announce) {
        const struct machine_profile *p = o.arch ? profile_find(o.arch) : NULL;
        const char *who = o.name ? o.name : p ? p->arch : NULL;
        if (!who) {
            klab_error("boot --announce needs --name or --arch");
            return 2;
        }
        return runstate_announce(who, o.announce) == 0 ? 0 : 1;
    }
    const struct machine_profile *profile = NULL;
    char *kernel = NULL, *vmlinux = NULL;
    unsigned page_shift = 0;
    if (check_kernel(&o, &profile, &kernel, &vmlinux, &page_shift) != 0)
        return 1;
    const char *name = o.name ? o.name : profile->arch;
    if (!runstate_valid_name(name)) {
        klab_error("invalid VM name '%s' (letters, digits, '.', '_', '-'; at most 64)", name);
        return 2;
    }
    const char *qemu = o.qemu ? o.qemu : profile->qemu;
    char *qemu_path = find_in_path(qemu);
    if (!qemu_path) {
        klab_error("%s not found: run scripts/deps.sh (Debian package %s)", qemu,
                   !strcmp(profile->arch, "arm64") ? "qemu-system-arm" : "qemu-system-x86");
        return 1;
    }
    if (o.initrd && !file_exists(o.initrd)) {
        klab_error("initrd %s not found", o.initrd);
        return 1;
    }
    int port = o.gdb_port;
    char *gdb_listen = NULL;
    if (o.gdb_socket) {
        char *abs = o.gdb_socket[0] == '/' ? strdup(o.gdb_socket) : xasprintf("%s/%s", getcwd(NULL, 0), o.gdb_socket);
        if (file_exists(abs)) {
            klab_error("gdb socket %s already exists (another VM's?); remove it or choose another path", abs);
            return 1;
        }
        gdb_listen = xasprintf("unix:%s", abs);
        free(abs);
    } else if (port && !reserve_port(port)) {
        klab_error("gdb port %d on 127.0.0.1 is in use; choose another --gdb-port or omit it", port);
        return 1;
    }
    if (!gdb_listen && !port && (port = pick_free_port(KLAB_DEFAULT_GDB_PORT)) < 0) {
        klab_error("no free TCP port for the gdb stub from %d on", KLAB_DEFAULT_GDB_PORT);
        return 1;
    }
    char why[160] = "";
    char *cache = klab_cache_dir();
    /* Cortex-A57 implements the 4K and 64K granules only (ID_AA64MMFR0_EL1.TGran16 = 0): a 16K-page kernel
     * would wait forever in __no_granule_support. QEMU's max CPU has all three. */
    if (!o.cpu && profile->mmu_arch == KLAB_ARCH_ARM64 && page_shift == 14) {
        o.cpu = "max";
        if (!o.detach)
            klab_info("16K-page kernel: the default CPU has no 16K granule, using --cpu max");
    }
    const char *cpu = o.cpu ? o.cpu : profile->default_cpu;
    const char *accel = o.accel ? o.accel : accel_choose(profile, qemu_path, cpu, kernel, cache, why, sizeof why);
    free(cache);

    char *run_dir = runstate_dir_for(name);
    if (!gdb_listen)
        gdb_listen = xasprintf("tcp:127.0.0.1:%d", port);
    bool interactive = !o.detach && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    char *initrd = o.initrd ? realpath(o.initrd, NULL) : NULL;
    /* QEMU under libvirt does not run in this folder: every path it gets must be absolute. */
    char *abs_kernel = realpath(kernel, NULL), *abs_vmlinux = vmlinux ? realpath(vmlinux, NULL) : NULL;
    if (abs_kernel)
        kernel = abs_kernel;
    if (abs_vmlinux)
        vmlinux = abs_vmlinux;
    struct boot_request req = {
        .profile = profile, .qemu = qemu_path, .name = name, .kernel = kernel, .append = o.append,
        .cpu = o.cpu, .accel = accel, .smp = o.smp, .mem_bytes = o.mem, .kaslr = o.kaslr,
        .wait_for_gdb = !o.no_wait, .gdb_listen = gdb_listen, .run_dir = run_dir,
        .console = interactive ? CONSOLE_STDIO : CONSOLE_SOCKET,
    };
    if (o.libvirt)
        req.console = CONSOLE_SOCKET;   /* libvirt owns QEMU's stdio: the console is console.sock / console.log */
    if (o.dry_run && o.libvirt) {
        req.initrd = initrd ? initrd : "<run-state>/initramfs.cpio.gz";
        char *xml = libvirt_domain_xml(&req, qemu_path);
        fputs(xml, stdout);
        free(xml);
        return 0;
    }
    if (o.dry_run) {
        req.initrd = initrd ? initrd : "<run-state>/initramfs.cpio.gz";
        struct argv av;
        char err[256];
        if (qemu_build_argv(&req, &av, err, sizeof err) != 0) {
            klab_error("%s", err);
            return 2;
        }
        char *line = argv_join(&av);
        printf("%s\n", line);
        free(line);
        argv_free(&av);
        return 0;
    }
    int run_lock = claim_run_dir(name, run_dir);   /* held until this process and its supervisor end */
    if (run_lock < 0)
        return 1;
    if (!initrd && !(initrd = build_default_initrd(profile, run_dir, &o)))
        return 1;
    req.initrd = initrd;
    struct argv av;
    char err[256];
    if (qemu_build_argv(&req, &av, err, sizeof err) != 0) {
        klab_error("%s", err);
        return 2;
    }
    char *cmdline = argv_join(&av);
    char *cmdfile = path_join(run_dir, "qemu.cmdline");
    char *cmdtext = xasprintf("%s\n", cmdline);
    write_text_file(cmdfile, cmdtext);
    if (why[0] && !o.detach)
        klab_info("accelerator %s (%s)", accel, why);

    struct runstate rs = {
        .name = (char *)name, .dir = run_dir, .profile = profile, .gdb_listen = gdb_listen, .gdb_port = port,
        .kernel = kernel, .vmlinux = vmlinux, .initrd = initrd, .accel = (char *)accel,
        .cpu = (char *)cpu, .mem_bytes = o.mem, .kaslr = o.kaslr,
    };
    rs.nram = profile->ram_layout(o.mem, rs.ram);

    struct sigaction sa = { .sa_handler = forward_signal };
    sigemptyset(&sa.sa_mask);

    if (!o.detach && o.libvirt) {
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        struct libvirt_vm *vm = start_libvirt(&req, &rs, o.connect, qemu_path);
        if (!vm)
            return 1;
        announce(&rs, req.wait_for_gdb, stderr);
        libvirt_wait(vm, &stop_requested);
        libvirt_close(vm);
        return finish(run_dir, 0, false);
    }
    if (!o.detach) {
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        if (!interactive)
            sigaction(SIGINT, &sa, NULL);
        pid_t pid = start_qemu(&av, &rs, false);
        if (pid < 0)
            return 1;
        announce(&rs, req.wait_for_gdb, stderr);
        int status = wait_qemu(pid, run_dir, !interactive);
        return finish(run_dir, status, false);
    }

    /* Detached: the supervisor reports readiness through a pipe, then lives on in its own session. */
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        klab_error("pipe: %s", strerror(errno));
        return 1;
    }
    fflush(NULL);
    pid_t sup = fork();
    if (sup < 0) {
        klab_error("fork: %s", strerror(errno));
        return 1;
    }
    if (sup == 0) {
        close(pipefd[0]);
        setsid();
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        /* Errors before readiness go to the waiting parent through stderr = the pipe. */
        dup2(pipefd[1], STDERR_FILENO);
        struct libvirt_vm *vm = NULL;
        pid_t pid = -1;
        if (o.libvirt ? !(vm = start_libvirt(&req, &rs, o.connect, qemu_path)) : (pid = start_qemu(&av, &rs, true)) < 0)
            _exit(1);
        announce(&rs, req.wait_for_gdb, stderr);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(pipefd[1]);
        int status = 0;
        if (vm) {
            libvirt_wait(vm, &stop_requested);
            libvirt_close(vm);
        } else {
            status = wait_qemu(pid, run_dir, false);
        }
        _exit(finish(run_dir, status, true));
    }
    close(pipefd[1]);
    char buf[1024];
    ssize_t n;
    bool said = false;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) > 0)
            said = true;
    }
    close(pipefd[0]);
    /* The supervisor closed the pipe: either it announced readiness (state written) or it failed. */
    struct runstate check;
    if (runstate_load(name, &check) == 0) {
        runstate_free(&check);
        return 0;
    }
    int status;
    waitpid(sup, &status, 0);
    if (!said)
        klab_error("the VM did not start (see %s/qemu.log)", run_dir);
    return 1;
}
