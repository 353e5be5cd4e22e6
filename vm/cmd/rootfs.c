/* klab rootfs: build an initramfs image (see rootfs/initramfs.h). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "machine/lab_image.h"
#include "util/opts.h"
#include "util/util.h"

#include "rootfs/initramfs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { R_ADD = 256, R_COMPRESS, R_LEVEL, R_MTIME, R_OVERLAY, R_INIT };

struct rootfs_options {
    const char *arch, *out, *busybox;
    struct initramfs_spec spec;
    struct initramfs_add *adds;
    bool no_cache, stats;
};

#define STR(name, meta, help, field) OPT_STR(name, meta, help, struct rootfs_options, field)

static const struct opt options[] = {
    STR("arch", "A", "x86_64 or arm64: whose busybox (default for --busybox)", arch),
    { "output", 0, "OUT", "the image to write (required)", 'o', OPT_KIND_STR, offsetof(struct rootfs_options, out) },
    STR("busybox", "FILE", "default: the Debian busybox-static fetched by `make rootfs` for --arch", busybox),
    OPT_CALL("overlay", R_OVERLAY, "DIR", "a folder whose tree goes on top of klab's"),
    OPT_CALL("add", R_ADD, "SRC:DEST",
             "a host file or folder at DEST in the guest (e.g. hello.ko:/lib/modules/hello.ko)"),
    OPT_CALL("init", R_INIT, "FILE", "your own /init instead of klab's"),
    OPT_CALL("compress", R_COMPRESS, "C", "gzip (default) or none"),
    OPT_CALL("level", R_LEVEL, "0-9", "gzip level (default 9)"),
    OPT_BOOL("no-cache", "compress every segment again instead of using the segment cache", struct rootfs_options,
             no_cache),
    OPT_CALL("mtime", R_MTIME, "N", "timestamp for every entry (default $SOURCE_DATE_EPOCH or 0)"),
    OPT_BOOL("stats", "print entry count, sizes and cache use", struct rootfs_options, stats),
    OPT_END,
};

const struct opt_cmd rootfs_command = {
    .name = "rootfs", .opts = options,
    .about = "Writes a newc initramfs: Debian's static busybox, klab's /init (mounts proc, sys, devtmpfs, debugfs,\n"
             "prints a banner, runs /etc/klab.d/*.sh, then a shell on the console; poweroff -f when it exits), the\n"
             "/dev/console and /dev/null nodes, then the overlay folder and each --add on top (later wins). Output is\n"
             "byte-for-byte the same for the same inputs. Compressed segments of large files are cached, so a\n"
             "rebuild only compresses what changed.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    struct rootfs_options *o = ctx;
    uint64_t v;
    switch (id) {
    case R_OVERLAY: o->spec.overlay = arg; return 0;
    case R_INIT: o->spec.init_path = arg; return 0;
    case R_ADD: return lab_image_parse_add((char *)arg, &o->adds[o->spec.nadds++]);
    case R_COMPRESS:
        if (strcmp(arg, "gzip") && strcmp(arg, "none")) {
            klab_error("--compress must be gzip or none, not '%s'", arg);
            return -1;
        }
        o->spec.compress = strcmp(arg, "gzip") ? INITRAMFS_NONE : INITRAMFS_GZIP;
        return 0;
    case R_LEVEL:
        if (opts_number(arg, 0, 9, &v, "--level wants 0-9") != 0)
            return -1;
        o->spec.level = (int)v;
        return 0;
    case R_MTIME:
        if (opts_number(arg, 0, UINT32_MAX, &v, "--mtime wants seconds since 1970") != 0)
            return -1;
        o->spec.mtime = (uint32_t)v;
        return 0;
    }
    return -1;
}

/* Options, then the busybox they name. -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct rootfs_options *o, char **busybox)
{
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    uint64_t v;
    if (epoch && parse_u64(epoch, &v) && v <= UINT32_MAX)
        o->spec.mtime = (uint32_t)v;
    int first = opts_parse(&rootfs_command, argc, argv, on_option, o);
    if (first <= 0)
        return opts_exit(first);
    if (first < argc || !o->out) {
        klab_error(first < argc ? "rootfs: unexpected argument '%s'" : "rootfs: -o OUT is required%s",
                   first < argc ? argv[first] : "");
        return 2;
    }
    const struct machine_profile *p = o->arch ? profile_find(o->arch) : NULL;
    if (o->arch && !p) {
        klab_error("unknown architecture '%s' (x86_64 or arm64)", o->arch);
        return 2;
    }
    if (!o->busybox && !p) {
        klab_error("rootfs needs --arch (to find its busybox) or --busybox");
        return 2;
    }
    *busybox = o->busybox ? strdup(o->busybox) : default_busybox(p);
    if (!file_exists(*busybox)) {
        klab_error("busybox %s not found%s", *busybox,
                   o->busybox ? "" : ": run `make rootfs` (fetches busybox-static)");
        return 1;
    }
    return -1;
}

int cmd_rootfs(int argc, char **argv)
{
    struct rootfs_options o = { .spec = { .compress = INITRAMFS_GZIP, .level = 9 } };
    o.adds = calloc((size_t)argc, sizeof *o.adds);
    char *bb = NULL;
    int rc = parse(argc, argv, &o, &bb);
    if (rc >= 0) {
        free(o.adds);
        free(bb);
        return rc;
    }
    o.spec.busybox = bb;
    o.spec.adds = o.adds;
    char *cache = o.no_cache ? NULL : segment_cache_dir();
    if (cache && mkdir_p(cache, 0755) != 0) {
        free(cache);
        cache = NULL;
    }
    o.spec.cache_dir = cache;
    struct initramfs_stats st;
    char err[512];
    uint64_t t0 = now_ns();
    rc = initramfs_build(&o.spec, o.out, &st, err, sizeof err);
    uint64_t t1 = now_ns();
    if (rc != 0)
        klab_error("rootfs: %s", err);
    else if (o.stats)
        printf("%s: %u entries, %" PRIu64 " bytes of cpio, %" PRIu64 " bytes written, segment cache %u hit(s) "
               "%u miss(es), %.1f ms\n", o.out, st.entries, st.uncompressed_bytes, st.output_bytes, st.cache_hits,
               st.cache_misses, (double)(t1 - t0) / 1e6);
    free(cache);
    free(bb);
    free(o.adds);
    return rc ? 1 : 0;
}
