/* klab fetch: Debian's kernels (image, debug vmlinux, config, the modules klab loads) and busybox-static
 * into klab's cache, with the scripts klab carries (kernels/fetch-debian.sh, rootfs/fetch-busybox.sh). In a
 * clone `make kernels rootfs` does the same; an installed klab has no Makefile, so this is how a fresh host
 * gets its first kernel. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "util/opts.h"
#include "util/spawn.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fetch_options {
    const char *arch, *series;
};

static const struct opt options[] = {
    OPT_STR("arch", "A", "x86_64 or arm64 (aliases as for boot); default: both", struct fetch_options, arch),
    OPT_STR("kver", "SERIES", "Debian 12's kernel series: 6.1 (default; registered as debian-amd64,\n"
            "debian-arm64) or 6.12 (debian-6.12-amd64, debian-6.12-arm64)", struct fetch_options, series),
    OPT_END,
};

const struct opt_cmd fetch_command = {
    .name = "fetch", .opts = options,
    .about = "Fetches Debian's newest cloud kernel of the series with its debug vmlinux, and Debian's\n"
             "busybox-static, for each architecture, into klab's cache ($KLAB_CACHE, else ~/.cache/klab); what is\n"
             "already there is kept. Nothing is installed but Debian's linux-source for gdb's source lines\n"
             "(apt-get, as root or through sudo). arm64 needs dpkg's arm64 architecture (scripts/deps.sh adds it).",
};

/* Runs a bash script of klab's to its end, its progress on klab's terminal: its exit status. */
static int run_script(char *const argv[])
{
    struct spawn sp = { .argv = argv, .inherit_stdio = true };
    int rc = spawn_run(&sp);
    return rc < 0 ? 127 : rc;
}

static int fetch_one(const struct machine_profile *p, const char *series)
{
    char *cache = klab_cache_dir();
    char *kernels = xasprintf("%s/kernels/fetch-debian.sh", klab_data_dir());
    char *busybox_sh = xasprintf("%s/rootfs/fetch-busybox.sh", klab_data_dir());
    char *dest = xasprintf("%s/kernels/debian%s-%s", cache, strcmp(series, "6.12") ? "" : "-6.12", p->debian_arch);
    char *busybox = default_busybox(p);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    /* fetch-debian.sh ARCH DEST [KLAB] [SERIES]: with KLAB it checks the pair and indexes the vmlinux. */
    char *kargv[] = { "bash", kernels, (char *)p->debian_arch, dest, self, (char *)series, NULL };
    char *bargv[] = { "bash", busybox_sh, (char *)p->debian_arch, busybox, NULL };
    int rc = run_script(kargv);
    if (rc == 0)
        rc = run_script(bargv);
    if (rc != 0)
        klab_error("fetch: %s failed (exit status %d; its own line above says why)", p->arch, rc);
    free(cache), free(kernels), free(busybox_sh), free(dest), free(busybox);
    return rc == 0 ? 0 : 1;
}

int cmd_fetch(int argc, char **argv)
{
    struct fetch_options o = { 0 };
    int first = opts_parse(&fetch_command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    if (first < argc) {
        klab_error("fetch: unexpected '%s' (klab fetch [--arch A] [--kver 6.1|6.12])", argv[first]);
        return 2;
    }
    const char *series = o.series ? o.series : "6.1";
    if (strcmp(series, "6.1") && strcmp(series, "6.12")) {
        klab_error("fetch: --kver wants 6.1 or 6.12, not '%s'", series);
        return 2;
    }
    const struct machine_profile *one = NULL;
    if (o.arch && !(one = profile_find(o.arch))) {
        klab_error("fetch: unknown --arch '%s' (x86_64 or arm64)", o.arch);
        return 2;
    }
    int rc = 0;
    for (const struct machine_profile *const *p = klab_profiles; *p && rc == 0; p++)
        if (!one || *p == one)
            rc = fetch_one(*p, series);
    return rc;
}
