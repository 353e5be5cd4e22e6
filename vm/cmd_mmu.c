/* klab regs / vtop / ptdump: a running VM's registers and page tables without gdb, through the stub for
 * registers and the RAM file (or the stub) for memory. The walks are libklab's. */
#define _GNU_SOURCE
#include "commands.h"
#include "kimage.h"
#include "stub.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Options every one of the three takes. */
struct target_opts {
    const char *vm;
    int cpu;
    bool via_stub;
};

enum { OPT_VM = 1000, OPT_CPU, OPT_VIA_STUB, OPT_QEMU, OPT_RANGE, OPT_FILTER, OPT_PAGE_SIZE, OPT_NO_MERGE,
       OPT_STATS, OPT_REPEAT, OPT_QUIET, OPT_HELP };

#define TARGET_LONG_OPTS                                                                                      \
    { "vm", required_argument, NULL, OPT_VM }, { "cpu", required_argument, NULL, OPT_CPU },                    \
        { "via-stub", no_argument, NULL, OPT_VIA_STUB }, { "help", no_argument, NULL, OPT_HELP }

#define TARGET_HELP                                                                                           \
    "  --vm NAME       the VM (default: the only one running)\n"                                              \
    "  --cpu N         the CPU whose registers are used (default 0)\n"                                         \
    "  --via-stub      read memory through the gdb stub (Qqemu.PhyMemMode) instead of the RAM file\n"          \
    "\nThe stub serves one client: detach gdb first. A running guest is paused while klab reads it and\n"       \
    "resumed afterwards; a paused one stays paused.\n"

/* 1 if consumed, 0 if not a target option, -1 on a bad value (reported). */
static int target_option(int c, struct target_opts *o)
{
    uint64_t v;
    switch (c) {
    case OPT_VM: o->vm = optarg; return 1;
    case OPT_CPU:
        if (!parse_u64(optarg, &v) || v > 4095) {
            klab_error("--cpu wants a CPU number, not '%s'", optarg);
            return -1;
        }
        o->cpu = (int)v;
        return 1;
    case OPT_VIA_STUB: o->via_stub = true; return 1;
    }
    return 0;
}

/* Parses argv with the target options plus the command's own (extra: 1 consumed, 0 unknown, -1 bad value
 * already reported). Returns -1 to go on, or the exit status (0 after --help, 2 on bad usage). */
static int parse_options(int argc, char **argv, const struct option *longopts, struct target_opts *o,
                         int (*extra)(int c, void *ctx), void *ctx, void (*usage)(FILE *f))
{
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int r = target_option(c, o);
        if (r == 0 && extra)
            r = extra(c, ctx);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (c == OPT_HELP || c == 'h') {
            usage(stdout);
            return 0;
        }
        klab_error("%s: unknown or incomplete option '%s' (see klab %s --help)", argv[0], argv[optind - 1], argv[0]);
        return 2;
    }
    return -1;
}

/* Hex with or without 0x, at most 64 bits. */
static bool parse_hex(const char *s, uint64_t *v)
{
    const char *hex = !strncasecmp(s, "0x", 2) ? s + 2 : s;
    if (!*hex || strspn(hex, "0123456789abcdefABCDEF") != strlen(hex) || strlen(hex) > 16)
        return false;
    if (v)
        *v = strtoull(hex, NULL, 16);
    return true;
}

/* An address: hex, or a vmlinux symbol (its link address: the VM must run with nokaslr). */
static bool parse_address(const struct vm_target *t, const char *s, uint64_t *va)
{
    if (parse_hex(s, va))
        return true;
    char err[300];
    if (t->rs.vmlinux && vmlinux_symbol_address(t->rs.vmlinux, s, va, err, sizeof err) == 0)
        return true;
    klab_error("'%s' is neither a hex address nor a symbol of %s", s, t->rs.vmlinux ? t->rs.vmlinux : "vmlinux");
    return false;
}

/* ---- regs -------------------------------------------------------------------------------------------- */

static void regs_usage(FILE *f)
{
    fputs("usage: klab regs [--vm NAME] [--cpu N] [REGISTER...]\n\n"
          "Prints a running VM's registers by their gdb-stub names (default: pc/rip, stack, translation and\n"
          "per-CPU registers), then what the translation registers set up.\n\n" TARGET_HELP,
          f);
}

int cmd_regs(int argc, char **argv)
{
    static const struct option longopts[] = { TARGET_LONG_OPTS, { 0, 0, 0, 0 } };
    struct target_opts o = { .cpu = 0 };
    int done = parse_options(argc, argv, longopts, &o, NULL, NULL, regs_usage);
    if (done >= 0)
        return done;
    struct vm_target t;
    if (vm_target_open(o.vm, o.cpu, o.via_stub, &t) != 0)
        return 1;
    int rc = 0;
    printf("VM %s, CPU %d (%s)\n", t.rs.name, o.cpu, t.rs.profile->arch);
    const char *const *names = t.rs.profile->show_regs;
    int n = 0;
    while (names[n])
        n++;
    if (optind < argc) {
        names = (const char *const *)argv + optind;
        n = argc - optind;
    }
    for (int i = 0; i < n; i++) {
        uint64_t v;
        if (klab_rsp_read_register(t.rsp, names[i], &v) != 0) {
            klab_error("%s", klab_rsp_error(t.rsp));
            rc = 1;
            continue;
        }
        printf("  %-10s 0x%016llx\n", names[i], (unsigned long long)v);
    }
    char desc[1024];
    klab_describe_regs(&t.regs, desc, sizeof desc);
    printf("%s", desc);
    vm_target_close(&t);
    return rc;
}

/* ---- vtop ---------------------------------------------------------------------------------------------- */

static void vtop_usage(FILE *f)
{
    fputs("usage: klab vtop [--vm NAME] [--cpu N] [--qemu] ADDRESS|SYMBOL...\n\n"
          "Translates virtual addresses with the CPU's page tables and prints every level like crash's\n"
          "vtop: the root register, then per level the index, the entry's physical address, its raw value\n"
          "and decoded bits; then the physical address, page size and permissions (kernel/user).\n\n"
          "  --qemu          also ask QEMU (monitor command gva2gpa) and say whether it agrees\n" TARGET_HELP
          "\nExit status: 0 all mapped, 1 some address not mapped (or QEMU disagrees), 2 bad usage.\n",
          f);
}

/* QEMU's own translation of va on the given CPU: 1 mapped (*pa set), 0 unmapped, -1 no answer. */
static int qemu_gva2gpa(struct klab_rsp *rsp, int cpu, uint64_t va, uint64_t *pa)
{
    char cmd[64], out[512];
    snprintf(cmd, sizeof cmd, "cpu %d", cpu);
    if (klab_rsp_monitor(rsp, cmd, out, sizeof out) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "gva2gpa 0x%llx", (unsigned long long)va);
    if (klab_rsp_monitor(rsp, cmd, out, sizeof out) != 0)
        return -1;
    const char *g = strstr(out, "gpa: ");
    if (g) {
        *pa = strtoull(g + 5, NULL, 16);
        return 1;
    }
    return strstr(out, "Unmapped") ? 0 : -1;
}

static void print_walk(const struct klab_walk *w)
{
    if (!w->granule_shift)   /* translation off or no usable root: nothing was walked */
        return;
    printf("%s: 0x%016llx  (%uK granule, %u-bit VA)\n", w->root_name, (unsigned long long)w->root_pa,
           1u << (w->granule_shift - 10), w->va_bits);
    for (int i = 0; i < w->nlevels; i++) {
        const struct klab_level *l = &w->levels[i];
        printf("  %-4s %-4s [%4u]  entry PA 0x%-12llx  0x%016llx  %s\n", l->name, l->hw_name, l->index,
               (unsigned long long)l->entry_pa, (unsigned long long)l->raw, l->bits);
    }
}

static const char *size_str(uint64_t size, char buf[24])
{
    if (size >= (1ull << 40) && !(size & ((1ull << 40) - 1)))
        snprintf(buf, 24, "%lluT", (unsigned long long)(size >> 40));
    else if (size >= (1ull << 30) && !(size & ((1ull << 30) - 1)))
        snprintf(buf, 24, "%lluG", (unsigned long long)(size >> 30));
    else if (size >= (1ull << 20) && !(size & ((1ull << 20) - 1)))
        snprintf(buf, 24, "%lluM", (unsigned long long)(size >> 20));
    else if (size >= 1024 && !(size & 1023))
        snprintf(buf, 24, "%lluK", (unsigned long long)(size >> 10));
    else
        snprintf(buf, 24, "%llu", (unsigned long long)size);
    return buf;
}

static int vtop_option(int c, void *ctx)
{
    if (c != OPT_QEMU)
        return 0;
    *(bool *)ctx = true;
    return 1;
}

int cmd_vtop(int argc, char **argv)
{
    static const struct option longopts[] = { TARGET_LONG_OPTS, { "qemu", no_argument, NULL, OPT_QEMU },
                                               { 0, 0, 0, 0 } };
    struct target_opts o = { .cpu = 0 };
    bool ask_qemu = false;
    int done = parse_options(argc, argv, longopts, &o, vtop_option, &ask_qemu, vtop_usage);
    if (done >= 0)
        return done;
    if (optind >= argc) {
        klab_error("vtop needs an address (see klab vtop --help)");
        return 2;
    }
    struct vm_target t;
    if (vm_target_open(o.vm, o.cpu, o.via_stub, &t) != 0)
        return 1;
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        uint64_t va;
        if (!parse_address(&t, argv[i], &va)) {
            rc = 2;
            break;
        }
        struct klab_walk w;
        int mapped = klab_translate(&t.regs, t.mem, va, &w) == 0;
        if (i > optind)
            printf("\n");
        bool symbol = parse_hex(argv[i], NULL) == false;
        printf("VIRTUAL 0x%016llx%s%s\n", (unsigned long long)va, symbol ? "  " : "", symbol ? argv[i] : "");
        print_walk(&w);
        char sz[24], perms[8];
        if (mapped) {
            printf("PHYSICAL 0x%llx  page %s at 0x%llx  %s\n", (unsigned long long)w.pa, size_str(w.page_size, sz),
                   (unsigned long long)(w.pa & ~(w.page_size - 1)), klab_perms_str(&w.perms, perms));
        } else {
            printf("NOT MAPPED (%s): %s\n", klab_stop_name(w.stop), w.why);
            if (rc == 0)
                rc = 1;
        }
        if (ask_qemu) {
            uint64_t qpa = 0;
            int q = qemu_gva2gpa(t.rsp, o.cpu, va, &qpa);
            if (q < 0) {
                klab_error("QEMU's gva2gpa gave no answer: %s", klab_rsp_error(t.rsp));
                rc = 1;
            } else if (q == 0) {
                printf("QEMU gva2gpa: unmapped (%s)\n", mapped ? "DISAGREES" : "agrees");
            } else {
                printf("QEMU gva2gpa: 0x%llx (%s)\n", (unsigned long long)qpa,
                       mapped && qpa == w.pa ? "agrees" : "DISAGREES");
            }
            if (q >= 0 && (q != mapped || (mapped && qpa != w.pa)))
                rc = 1;
        }
    }
    vm_target_close(&t);
    return rc;
}

/* ---- ptdump ------------------------------------------------------------------------------------------- */

static void ptdump_usage(FILE *f)
{
    fputs("usage: klab ptdump [--vm NAME] [--cpu N] [--range START-END] [--filter w,x,u,k]\n"
          "                   [--page-size SIZE] [--no-merge] [--stats] [--repeat N]\n\n"
          "Dumps the CPU's whole page table (x86_64: CR3; arm64: TTBR0_EL1 then TTBR1_EL1) as ranges of\n"
          "leaves with contiguous virtual and physical addresses and equal attributes, in VA order:\n"
          "  VA_START-VA_END  SIZE  PA_START  PAGE_SIZE x COUNT  LEVEL  PERMS(kernel/user)  ATTRIBUTES\n"
          "A range the hardware would fault on (reserved encoding, table outside RAM) is printed as BAD.\n\n"
          "  --range A-B     only VAs from A to B (inclusive; hex or vmlinux symbols)\n"
          "  --filter LIST   only leaves that are all of: w (writable), x (executable), u (user), k (kernel-only)\n"
          "  --page-size S   only leaves of this size (4K, 2M, 1G, 16K, 32M, 64K, 512M)\n"
          "  --no-merge      one line per leaf\n"
          "  --stats         print tables read, bytes, entries, leaves, ranges and the walk's time to stderr\n"
          "  --repeat N      walk N times (timing; output printed once) and report the median to stderr\n"
          "  --quiet         print nothing but --stats\n" TARGET_HELP,
          f);
}

struct dump_ctx {
    bool print;
    char last_root[12];
};

static int print_range(void *vctx, const struct klab_range *r)
{
    struct dump_ctx *d = vctx;
    if (!d->print)
        return 0;
    if (strcmp(d->last_root, r->root_name)) {
        snprintf(d->last_root, sizeof d->last_root, "%s", r->root_name);
        printf("---[ %s ]---\n", r->root_name);
    }
    char sz[24], ps[24], perms[8];
    uint64_t len = r->va_end - r->va_start;
    if (r->kind == KLAB_RANGE_BAD) {
        printf("0x%016llx-0x%016llx %6s  BAD %s entry 0x%016llx: %s\n", (unsigned long long)r->va_start,
               (unsigned long long)r->va_end, size_str(len, sz), r->level_name, (unsigned long long)r->first_raw,
               r->attrs);
        return 0;
    }
    printf("0x%016llx-0x%016llx %6s  PA 0x%-12llx %4s x%-6llu %-4s %s  %s\n", (unsigned long long)r->va_start,
           (unsigned long long)r->va_end, size_str(len, sz), (unsigned long long)r->pa_start,
           size_str(r->page_size, ps), (unsigned long long)r->leaves, r->level_name, klab_perms_str(&r->perms, perms),
           r->attrs);
    return 0;
}

static bool parse_filters(const char *s, unsigned *filters)
{
    char *copy = strdup(s), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "w") || !strcmp(tok, "writable"))
            *filters |= KLAB_FILTER_WRITABLE;
        else if (!strcmp(tok, "x") || !strcmp(tok, "exec") || !strcmp(tok, "executable"))
            *filters |= KLAB_FILTER_EXEC;
        else if (!strcmp(tok, "u") || !strcmp(tok, "user"))
            *filters |= KLAB_FILTER_USER;
        else if (!strcmp(tok, "k") || !strcmp(tok, "kernel"))
            *filters |= KLAB_FILTER_KERNEL;
        else {
            klab_error("unknown filter '%s' (w, x, u, k)", tok);
            ok = false;
        }
    }
    free(copy);
    return ok;
}

static bool parse_page_size(const char *s, uint64_t *size)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = !strcasecmp(end, "K") ? 10 : !strcasecmp(end, "M") ? 20 : !strcasecmp(end, "G") ? 30 :
                     !strcasecmp(end, "T") ? 40 : 99;
    if (end == s || shift == 99 || v == 0 || (v & (v - 1)) || v > 1024) {
        klab_error("--page-size wants a size like 4K, 2M, 1G, 64K, 512M, not '%s'", s);
        return false;
    }
    *size = (uint64_t)v << shift;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct ptdump_opts {
    struct klab_range_opts ro;
    const char *range;
    bool stats, quiet;
    uint64_t repeat;
};

static int ptdump_option(int c, void *ctx)
{
    struct ptdump_opts *p = ctx;
    switch (c) {
    case OPT_RANGE: p->range = optarg; return 1;
    case OPT_FILTER: return parse_filters(optarg, &p->ro.filters) ? 1 : -1;
    case OPT_PAGE_SIZE: return parse_page_size(optarg, &p->ro.page_size) ? 1 : -1;
    case OPT_NO_MERGE: p->ro.filters |= KLAB_FILTER_NO_MERGE; return 1;
    case OPT_STATS: p->stats = true; return 1;
    case OPT_QUIET: p->quiet = true; return 1;
    case OPT_REPEAT:
        if (!parse_u64(optarg, &p->repeat) || p->repeat == 0 || p->repeat > 100000) {
            klab_error("--repeat wants a count from 1 to 100000, not '%s'", optarg);
            return -1;
        }
        return 1;
    }
    return 0;
}

int cmd_ptdump(int argc, char **argv)
{
    static const struct option longopts[] = {
        TARGET_LONG_OPTS,
        { "range", required_argument, NULL, OPT_RANGE }, { "filter", required_argument, NULL, OPT_FILTER },
        { "page-size", required_argument, NULL, OPT_PAGE_SIZE }, { "no-merge", no_argument, NULL, OPT_NO_MERGE },
        { "stats", no_argument, NULL, OPT_STATS }, { "repeat", required_argument, NULL, OPT_REPEAT },
        { "quiet", no_argument, NULL, OPT_QUIET }, { 0, 0, 0, 0 },
    };
    struct target_opts o = { .cpu = 0 };
    struct ptdump_opts p = { .repeat = 1 };
    int done = parse_options(argc, argv, longopts, &o, ptdump_option, &p, ptdump_usage);
    if (done >= 0)
        return done;
    if (optind < argc) {
        klab_error("unexpected argument '%s' (see klab ptdump --help)", argv[optind]);
        return 2;
    }
    if ((p.ro.filters & KLAB_FILTER_USER) && (p.ro.filters & KLAB_FILTER_KERNEL)) {
        klab_error("--filter u and k exclude each other");
        return 2;
    }
    struct vm_target t;
    if (vm_target_open(o.vm, o.cpu, o.via_stub, &t) != 0)
        return 1;
    int rc = 0;
    if (p.range) {
        char *copy = strdup(p.range);
        char *dash = strchr(copy, '-');
        if (!dash || dash == copy || !dash[1]) {
            klab_error("--range wants START-END, not '%s'", p.range);
            rc = 2;
        } else {
            *dash = '\0';
            if (!parse_address(&t, copy, &p.ro.va_start) || !parse_address(&t, dash + 1, &p.ro.va_end))
                rc = 2;
            else if (p.ro.va_end < p.ro.va_start) {
                klab_error("--range %s ends before it starts", p.range);
                rc = 2;
            }
        }
        free(copy);
    }
    uint64_t *times = calloc(p.repeat, sizeof *times);
    struct klab_range_stats st = { 0 };
    for (uint64_t i = 0; rc == 0 && i < p.repeat; i++) {
        struct dump_ctx d = { .print = !p.quiet && i == 0 };
        char err[256];
        uint64_t t0 = now_ns();
        int wr = klab_walk_ranges(&t.regs, t.mem, &p.ro, print_range, &d, &st, err, sizeof err);
        times[i] = now_ns() - t0;
        if (wr != 0) {
            klab_error("ptdump: %s", err);
            rc = 1;
        }
    }
    if (rc == 0 && (p.stats || p.repeat > 1)) {
        qsort(times, p.repeat, sizeof *times, cmp_u64);
        fprintf(stderr,
                "klab: ptdump: %llu tables (%llu bytes) read, %llu entries, %llu leaves, %llu ranges, %llu bad; "
                "walk %.3f ms (median of %llu, from %s)\n",
                (unsigned long long)st.tables_read, (unsigned long long)st.bytes_read,
                (unsigned long long)st.entries, (unsigned long long)st.leaves, (unsigned long long)st.ranges,
                (unsigned long long)st.bad, times[p.repeat / 2] / 1e6, (unsigned long long)p.repeat,
                o.via_stub ? "the gdb stub" : "the RAM file");
    }
    free(times);
    vm_target_close(&t);
    return rc;
}
