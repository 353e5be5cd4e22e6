/* boot_resolve(): what boot_plan() needs from this machine — the kernel and its vmlinux (checked against each
 * other), QEMU, the gdb stub's address, the CPU and the accelerator (probed) — each failure one line. */
#define _GNU_SOURCE
#include "run/boot_plan.h"
#include "machine/file_channel.h"
#include "machine/swap_disk.h"
#include "machine/vmcoreinfo.h"
#include "machine/accel.h"
#include "machine/kimage.h"
#include "machine/kpair.h"
#include "machine/paths.h"
#include "run/gdb_port.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The kernel image: --kernel (a file or a registered name), else the Debian kernel of --arch. */
static int find_kernel(const struct boot_options *o, const struct machine_profile *asked, char **kernel)
{
    if (!o->kernel && !asked) {
        klab_error("boot needs --arch or --kernel (see klab boot --help)");
        return -1;
    }
    if (o->kernel && !(*kernel = resolve_kernel(o->kernel))) {
        klab_error("kernel '%s' is neither a file nor a registered kernel (klab fetch, or make kernel PROFILE=%s "
                   "in a clone)", o->kernel, o->kernel);
        return -1;
    }
    if (!o->kernel)
        *kernel = default_kernel(asked);
    if (file_exists(*kernel))
        return 0;
    if (o->kernel)
        klab_error("kernel image %s not found", *kernel);
    else
        klab_error("no %s kernel yet (%s is missing): run `klab fetch --arch %s` (in a clone: make kernels)",
                   asked->arch, *kernel, asked->arch);
    return -1;
}

/* The vmlinux: --vmlinux, else the one beside the image (none is fine: booting does not need it). */
static int find_vmlinux(const struct boot_options *o, const char *kernel, char **vmlinux)
{
    if (o->vmlinux) {
        *vmlinux = strdup(o->vmlinux);
        if (file_exists(*vmlinux))
            return 0;
        klab_error("vmlinux %s not found", *vmlinux);
        return -1;
    }
    char *dir = strdup(kernel);
    char *slash = strrchr(dir, '/');
    *vmlinux = slash ? (*slash = '\0', path_join(dir, "vmlinux")) : strdup("vmlinux");
    free(dir);
    if (!file_exists(*vmlinux)) {
        free(*vmlinux);
        *vmlinux = NULL;
    }
    return 0;
}

/* Resolves the profile, kernel and vmlinux, and checks that they agree. */
static int check_kernel(const struct boot_options *o, struct boot_facts *f)
{
    const struct machine_profile *asked = NULL;
    if (o->arch && !(asked = profile_find(o->arch))) {
        klab_error("unknown architecture '%s' (x86_64 or arm64)", o->arch);
        return -1;
    }
    if (find_kernel(o, asked, &f->kernel) != 0)
        return -1;
    char err[512];
    struct kimage_info info;
    if (kimage_inspect(f->kernel, false, &info, err, sizeof err) != 0) {
        klab_error("%s", err);
        return -1;
    }
    if (asked && asked != info.profile) {
        klab_error("%s is an %s kernel, but --arch %s was asked", f->kernel, info.profile->arch, asked->arch);
        return -1;
    }
    f->profile = info.profile;
    f->page_shift = info.page_shift;
    if (find_vmlinux(o, f->kernel, &f->vmlinux) != 0)
        return -1;
    if (!f->vmlinux)
        return 0;
    char *cache = klab_cache_dir();
    int rc = kernel_pair_check(f->kernel, f->vmlinux, cache, err, sizeof err);
    free(cache);
    if (rc != 0) {
        klab_error("%s", err);
        return rc;
    }
    uint32_t entry;
    f->vmlinux_pvh = f->profile->pvh_boot && !o->kaslr && !o->no_pvh &&
                     vmlinux_pvh_entry(f->vmlinux, &entry, err, sizeof err) == 1;
    return 0;
}

/* The stub's address: --gdb-socket (absolute, not there yet), --gdb-port (free), or the next free port. */
static int choose_stub(const struct boot_options *o, struct boot_facts *f)
{
    if (o->gdb_socket) {
        char *cwd = getcwd(NULL, 0);
        char *abs = o->gdb_socket[0] == '/' ? strdup(o->gdb_socket) : xasprintf("%s/%s", cwd, o->gdb_socket);
        free(cwd);
        if (file_exists(abs)) {
            klab_error("gdb socket %s already exists (another VM's?); remove it or choose another path", abs);
            free(abs);
            return -1;
        }
        f->gdb_listen = xasprintf("unix:%s", abs);
        free(abs);
        return 0;
    }
    int port = o->gdb_port;
    if (port && !reserve_port(port)) {
        klab_error("gdb port %d on 127.0.0.1 is in use; choose another --gdb-port or omit it", port);
        return -1;
    }
    if (!port && (port = pick_free_port(KLAB_DEFAULT_GDB_PORT)) < 0) {
        klab_error("no free TCP port for the gdb stub from %d on", KLAB_DEFAULT_GDB_PORT);
        return -1;
    }
    f->gdb_port = port;
    f->gdb_listen = xasprintf("tcp:127.0.0.1:%d", port);
    return 0;
}

/* QEMU under libvirt does not run in this folder: every path it gets must be absolute. */
static void make_absolute(char **path)
{
    char *abs = *path ? realpath(*path, NULL) : NULL;
    if (abs) {
        free(*path);
        *path = abs;
    }
}

int boot_resolve(const struct boot_options *o, struct boot_facts *f)
{
    *f = (struct boot_facts){ 0 };
    if (check_kernel(o, f) != 0)
        return 1;
    const char *name = o->name ? o->name : f->profile->arch;
    if (!runstate_valid_name(name)) {
        klab_error("invalid VM name '%s' (letters, digits, '.', '_', '-'; at most 64)", name);
        return 2;
    }
    const char *qemu = o->qemu ? o->qemu : f->profile->qemu;
    if (!(f->qemu_path = find_in_path(qemu))) {
        klab_error("%s not found: run scripts/deps.sh (Debian package %s)", qemu, f->profile->qemu_package);
        return 1;
    }
    if (o->initrd && !file_exists(o->initrd)) {
        klab_error("initrd %s not found", o->initrd);
        return 1;
    }
    if (choose_stub(o, f) != 0)
        return 1;
    f->cpu = boot_cpu(o, f->profile, f->page_shift);
    if (!o->cpu && f->cpu != f->profile->default_cpu && !o->detach)
        klab_info("%uK-page kernel: the default CPU has no %uK granule, using --cpu %s", (1u << f->page_shift) >> 10,
                  (1u << f->page_shift) >> 10, f->cpu);
    char *cache = klab_cache_dir();
    f->accel = o->accel ? o->accel
                        : accel_choose(f->profile, f->qemu_path, f->cpu, f->kernel, cache, f->accel_why,
                                       sizeof f->accel_why);
    free(cache);
    f->run_dir = runstate_dir_for(name);
    f->initrd = o->initrd ? realpath(o->initrd, NULL) : NULL;
    if (o->swap) {
        char err[512];
        if (swap_disk_resolve(f->kernel, &f->swap_modules, err, sizeof err) != 0) {
            klab_error("%s", err);
            return 1;
        }
        f->swap_image = path_join(f->run_dir, "swap.img");
    }
    if (o->snapshot && !o->initrd) {
        char why[512];
        f->file_channel = file_channel_resolve(f->kernel, &f->channel_modules, why, sizeof why) == 0;
        if (!f->file_channel && (o->nadds || o->nruns))
            klab_info("snapshot: %s: --add and --run go into the image, one snapshot per set of files", why);
    }
    const char *no_vmcoreinfo;
    f->fw_cfg_modules = vmcoreinfo_module_dir(f->kernel, &no_vmcoreinfo);
    make_absolute(&f->kernel);
    make_absolute(&f->vmlinux);
    f->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    return 0;
}

void boot_facts_free(struct boot_facts *f)
{
    free(f->kernel);
    free(f->vmlinux);
    free(f->initrd);
    free(f->qemu_path);
    free(f->gdb_listen);
    free(f->run_dir);
    free(f->swap_image);
    free(f->swap_modules);
    free(f->fw_cfg_modules);
    free(f->channel_modules);
    *f = (struct boot_facts){ 0 };
}
