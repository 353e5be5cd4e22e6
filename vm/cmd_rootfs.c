/* klab rootfs: build an initramfs image (see rootfs/initramfs.h). */
#define _GNU_SOURCE
#include "commands.h"
#include "paths.h"
#include "profile.h"
#include "util.h"

#include "../rootfs/initramfs.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: klab rootfs --arch x86_64|arm64 -o OUT [--busybox FILE] [--overlay DIR] [--add SRC:DEST]...\n"
          "                   [--init FILE] [--compress gzip|none] [--level 0-9] [--no-cache] [--mtime N]\n"
          "                   [--stats]\n"
          "\n"
          "Writes a newc initramfs: Debian's static busybox, klab's /init (mounts proc, sys, devtmpfs, debugfs,\n"
          "prints a banner, runs /etc/klab.d/*.sh, then a shell on the console; poweroff -f when it exits), the\n"
          "/dev/console and /dev/null nodes, then the overlay folder and each --add on top (later wins). Output is\n"
          "byte-for-byte the same for the same inputs. Compressed segments of large files are cached, so a\n"
          "rebuild only compresses what changed.\n"
          "\n"
          "  --busybox FILE   default: the Debian busybox-static fetched by `make rootfs` for --arch\n"
          "  --add SRC:DEST   a host file or folder at DEST in the guest (e.g. hello.ko:/lib/modules/hello.ko)\n"
          "  --init FILE      your own /init instead of klab's\n"
          "  --mtime N        timestamp for every entry (default $SOURCE_DATE_EPOCH or 0)\n"
          "  --stats          print entry count, sizes and cache use\n",
          f);
}

int cmd_rootfs(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "arch", required_argument, 0, 'a' },   { "output", required_argument, 0, 'o' },
        { "busybox", required_argument, 0, 'b' }, { "overlay", required_argument, 0, 'O' },
        { "add", required_argument, 0, 'A' },    { "init", required_argument, 0, 'i' },
        { "compress", required_argument, 0, 'c' }, { "level", required_argument, 0, 'l' },
        { "no-cache", no_argument, 0, 'N' },     { "mtime", required_argument, 0, 'm' },
        { "stats", no_argument, 0, 's' },        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *arch = NULL, *out = NULL, *busybox = NULL;
    struct initramfs_spec spec = { .compress = INITRAMFS_GZIP, .level = 9 };
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    uint64_t v;
    if (epoch && parse_u64(epoch, &v) && v <= UINT32_MAX)
        spec.mtime = (uint32_t)v;
    bool use_cache = true, stats = false;
    struct initramfs_add *adds = calloc((size_t)argc, sizeof *adds);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': arch = optarg; break;
        case 'o': out = optarg; break;
        case 'b': busybox = optarg; break;
        case 'O': spec.overlay = optarg; break;
        case 'i': spec.init_path = optarg; break;
        case 'N': use_cache = false; break;
        case 's': stats = true; break;
        case 'A': {
            char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1]) {
                klab_error("--add wants SRC:DEST, not '%s'", optarg);
                return 2;
            }
            *colon = '\0';
            adds[spec.nadds++] = (struct initramfs_add){ optarg, colon + 1 };
            break;
        }
        case 'c':
            if (!strcmp(optarg, "gzip"))
                spec.compress = INITRAMFS_GZIP;
            else if (!strcmp(optarg, "none"))
                spec.compress = INITRAMFS_NONE;
            else {
                klab_error("--compress must be gzip or none, not '%s'", optarg);
                return 2;
            }
            break;
        case 'l':
            if (!parse_u64(optarg, &v) || v > 9) {
                klab_error("--level wants 0-9, not '%s'", optarg);
                return 2;
            }
            spec.level = (int)v;
            break;
        case 'm':
            if (!parse_u64(optarg, &v) || v > UINT32_MAX) {
                klab_error("--mtime wants seconds since 1970, not '%s'", optarg);
                return 2;
            }
            spec.mtime = (uint32_t)v;
            break;
        case 'h': usage(stdout); return 0;
        default:
            klab_error("rootfs: unknown or incomplete option '%s' (see klab rootfs --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc || !out) {
        klab_error(optind < argc ? "rootfs: unexpected argument '%s'" : "rootfs: -o OUT is required%s",
                   optind < argc ? argv[optind] : "");
        return 2;
    }
    const struct machine_profile *p = arch ? profile_find(arch) : NULL;
    if (arch && !p) {
        klab_error("unknown architecture '%s' (x86_64 or arm64)", arch);
        return 2;
    }
    if (!busybox && !p) {
        klab_error("rootfs needs --arch (to find its busybox) or --busybox");
        return 2;
    }
    char *bb = busybox ? strdup(busybox) : default_busybox(p);
    if (!file_exists(bb)) {
        klab_error("busybox %s not found%s", bb, busybox ? "" : ": run `make rootfs` (fetches busybox-static)");
        return 1;
    }
    spec.busybox = bb;
    spec.adds = adds;
    char *cache = use_cache ? segment_cache_dir() : NULL;
    if (cache && mkdir_p(cache, 0755) != 0) {
        free(cache);
        cache = NULL;
    }
    spec.cache_dir = cache;
    struct initramfs_stats st;
    char err[512];
    uint64_t t0 = now_ns();
    int rc = initramfs_build(&spec, out, &st, err, sizeof err);
    uint64_t t1 = now_ns();
    if (rc != 0)
        klab_error("rootfs: %s", err);
    else if (stats)
        printf("%s: %u entries, %" PRIu64 " bytes of cpio, %" PRIu64 " bytes written, segment cache %u hit(s) "
               "%u miss(es), %.1f ms\n", out, st.entries, st.uncompressed_bytes, st.output_bytes, st.cache_hits,
               st.cache_misses, (double)(t1 - t0) / 1e6);
    free(cache);
    free(bb);
    free(adds);
    return rc ? 1 : 0;
}
