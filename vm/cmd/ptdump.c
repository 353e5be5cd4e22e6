/* klab ptdump: a running VM's whole page table as merged ranges (libklab's range walk and its text: the same
 * lines as gdb's klab ptdump). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "cmd/picture.h"
#include "cmd/target.h"
#include "machine/kernel_mm.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_FILTER = 1, P_PAGE_SIZE, P_NO_MERGE, P_NON_PRESENT, P_REPEAT };

struct ptdump_options {
    struct target_opts t;
    struct klab_range_opts ro;
    const char *range, *svg;
    bool stats, quiet;
    uint64_t repeat;
};

static const struct opt options[] = {
    OPT_STR("range", "A-B", "only VAs from A to B (inclusive; hex or vmlinux symbols)", struct ptdump_options, range),
    OPT_CALL("filter", P_FILTER, "LIST",
             "only leaves that are all of: w (writable), x (executable), u (user), k (kernel-only)"),
    OPT_CALL("page-size", P_PAGE_SIZE, "S", "only leaves of this size (4K, 2M, 1G, 16K, 32M, 64K, 512M)"),
    OPT_CALL("no-merge", P_NO_MERGE, NULL, "one line per leaf"),
    OPT_CALL("non-present", P_NON_PRESENT, NULL,
             "instead of the mappings, every non-present entry that still holds something, decoded as\n"
                                   "the kernel wrote it (swap, migration, PROT_NONE, ...; see klab vtop)"),
    OPT_BOOL("stats", "print tables read, bytes, entries, leaves, ranges and the walk's time to stderr",
             struct ptdump_options, stats),
    OPT_CALL("repeat", P_REPEAT, "N", "walk N times (timing; output printed once) and report the median to stderr"),
    OPT_STR("svg", "FILE", "draw the address space as an SVG map instead ('-': stdout): rows of ranges\n"
                           "coloured by rights, leaf sizes shaded, kernel regions named", struct ptdump_options, svg),
    OPT_BOOL("quiet", "print nothing but --stats", struct ptdump_options, quiet),
    TARGET_OPTIONS(struct ptdump_options, t),
    TARGET_DUMP_OPTIONS(struct ptdump_options, t),
    OPT_END,
};

const struct opt_cmd ptdump_command = {
    .name = "ptdump", .opts = options,
    .about = "Dumps the CPU's whole page table (every translation root its registers set up) as ranges of\n"
             "leaves with contiguous virtual and physical addresses and equal attributes, in VA order:\n"
             "  VA_START-VA_END  SIZE  PA_START  PAGE_SIZE x COUNT  LEVEL  PERMS(kernel/user)  ATTRIBUTES\n"
             "A range the hardware would fault on (reserved encoding, table outside RAM) is printed as BAD.",
    .epilog = TARGET_EPILOG,
};

static int on_option(void *ctx, int id, const char *arg)
{
    struct ptdump_options *p = ctx;
    struct klab_error err;
    switch (id) {
    case P_NO_MERGE: p->ro.filters |= KLAB_FILTER_NO_MERGE; return 0;
    case P_NON_PRESENT: p->ro.filters |= KLAB_FILTER_NON_PRESENT; return 0;
    case P_FILTER:
        if (klab_parse_filters(arg, &p->ro.filters, &err) == 0)
            return 0;
        klab_error("%s", err.msg);
        return -1;
    case P_PAGE_SIZE:
        if (klab_parse_page_size(arg, &p->ro.page_size, &err) == 0)
            return 0;
        klab_error("%s", err.msg);
        return -1;
    case P_REPEAT:
        return opts_number(arg, 1, 100000, &p->repeat, "--repeat wants a count from 1 to 100000");
    }
    return target_option(&p->t, id, arg) > 0 ? 0 : -1;
}

struct dump_ctx {
    bool print;
    char last_root[12];
    const struct klab_kernel_mm *kernel;   /* --non-present: what the decode needs of the VM's kernel */
};

static int print_range(void *vctx, const struct klab_range *r)
{
    struct dump_ctx *d = vctx;
    char line[1024];
    struct klab_swp s;
    if (!d->print)
        return 0;
    if (r->kind == KLAB_RANGE_NON_PRESENT && klab_range_swp(r, d->kernel, &s, NULL) == 0)
        klab_format_range_swp(r, &s, NULL, d->last_root, line, sizeof line);
    else
        klab_format_range(r, d->last_root, line, sizeof line);
    fputs(line, stdout);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_stats(const struct ptdump_options *p, const struct klab_range_stats *st, uint64_t median_ns)
{
    fprintf(stderr,
            "klab: ptdump: %llu tables (%llu bytes) read, %llu entries, %llu leaves, %llu ranges, %llu bad; "
            "walk %.3f ms (median of %llu, from %s)\n",
            (unsigned long long)st->tables_read, (unsigned long long)st->bytes_read, (unsigned long long)st->entries,
            (unsigned long long)st->leaves, (unsigned long long)st->ranges, (unsigned long long)st->bad,
            median_ns / 1e6, (unsigned long long)p->repeat, p->t.dump ? "the dump" : p->t.via_stub ? "the gdb stub" : "the RAM file");
}

/* The walk, repeat times (printed the first): 0, or 1 after one line. */
static int dump(struct vm_target *t, const struct ptdump_options *p)
{
    uint64_t *times = calloc(p->repeat, sizeof *times);
    struct klab_range_stats st = { 0 };
    struct klab_kernel_mm kernel = { 0 };
    if (p->ro.filters & KLAB_FILTER_NON_PRESENT)
        kernel_mm_facts(t->rs.kernel, t->rs.vmlinux, &t->regs, &kernel);
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < p->repeat; i++) {
        struct dump_ctx d = { .print = !p->quiet && i == 0, .kernel = &kernel };
        struct klab_error err;
        uint64_t t0 = now_ns();
        int wr = klab_walk_ranges(&t->regs, t->mem, &p->ro, print_range, &d, &st, &err);
        times[i] = now_ns() - t0;
        if (wr != 0) {
            klab_error("ptdump: %s", err.msg);
            rc = 1;
        }
    }
    if (rc == 0 && (p->stats || p->repeat > 1)) {
        qsort(times, p->repeat, sizeof *times, cmp_u64);
        print_stats(p, &st, times[p->repeat / 2]);
    }
    free(times);
    return rc;
}

/* --svg: the walk kept as a snapshot and drawn. 0, or 1 after one line. */
static int draw(struct vm_target *t, const struct ptdump_options *p)
{
    struct klab_error err;
    char *label = t->dump ? xasprintf("dump %s", p->t.dump) : xasprintf("VM %s, CPU %d", t->rs.name, p->t.cpu);
    struct klab_ptsnap *s = klab_ptsnap_take(&t->regs, t->mem, &p->ro, -1, label, &err);
    free(label);
    if (!s) {
        klab_error("ptdump: %s", err.msg);
        return 1;
    }
    int rc = picture_map(p->svg, s, NULL, 0, p->ro.va_start, p->ro.va_end, t, "ptdump");
    klab_ptsnap_free(s);
    return rc;
}

int cmd_ptdump(int argc, char **argv)
{
    struct ptdump_options p = { .t = { .cpu = 0 }, .repeat = 1 };
    int first = opts_parse(&ptdump_command, argc, argv, on_option, &p);
    if (first <= 0)
        return opts_exit(first);
    if (first < argc) {
        klab_error("unexpected argument '%s' (see klab ptdump --help)", argv[first]);
        return 2;
    }
    if (p.svg && (p.ro.filters & KLAB_FILTER_NON_PRESENT || p.repeat > 1 || p.stats || p.quiet)) {
        klab_error("--svg draws the mapped ranges: not with --non-present, --repeat, --stats or --quiet");
        return 2;
    }
    struct vm_target t;
    if (target_open(&p.t, &t) != 0)
        return 1;
    int rc = p.range && !parse_span(&t, p.range, &p.ro.va_start, &p.ro.va_end) ? 2 : 0;
    if (rc == 0)
        rc = p.svg ? draw(&t, &p) : dump(&t, &p);
    vm_target_close(&t);
    return rc;
}
