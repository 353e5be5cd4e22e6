/* klab ptdiff: what changed in the page tables between two snapshots (klab ptsnap), or between one and the
 * VM's tables now, as ranges: mapped, unmapped, permissions, PA moved, leaves split or merged (libklab's
 * diff and its text: the same lines as gdb's klab ptdiff). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "cmd/picture.h"
#include "cmd/target.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ptdiff_options {
    struct target_opts t;
    const char *range, *svg;
    bool all_bits;
};

static const struct opt options[] = {
    OPT_STR("range", "A-B", "only VAs from A to B (inclusive; hex, or vmlinux symbols)", struct ptdiff_options, range),
    OPT_BOOL("all-bits", "also report the bits the CPU and kernel flip as pages are used (x86 ACCESSED,\n"
                         "DIRTY; arm64 AF, software DIRTY, DBM-managed AP[2])", struct ptdiff_options, all_bits),
    OPT_STR("svg", "FILE", "also draw B (or now) as an SVG map with each change outlined and listed\n"
                           "('-': to stdout, instead of the text)", struct ptdiff_options, svg),
    TARGET_OPTIONS(struct ptdiff_options, t),
    TARGET_DUMP_OPTIONS(struct ptdiff_options, t),
    OPT_END,
};

const struct opt_cmd ptdiff_command = {
    .name = "ptdiff", .args = "A [B]", .opts = options,
    .about = "Prints what changed from snapshot A to snapshot B (klab ptsnap save), or, without B, to the VM's\n"
             "page tables now (the dump's, with --dump), one line per change, in VA order:\n"
             "  + VA_START-VA_END SIZE  mapped    PA ...  PAGE_SIZE xCOUNT LEVEL  PERMS  BITS\n"
             "  - VA_START-VA_END SIZE  unmapped  was PA ...\n"
             "  ~ VA_START-VA_END SIZE  WHAT  PA A -> B  2M pmd -> 4K x512 pte  rw-/--- -> r--/---  -RW +RO\n"
             "WHAT lists moved, split, merged, perms, bits (other attribute bits) or bad (an entry the\n"
             "hardware would fault on). Neighbouring pages that changed the same way are one line; 'PA\n"
             "(scattered)' says their frames are not contiguous. A last line counts the changes.",
    .epilog = TARGET_EPILOG "\n\nExit status: 0 no change, 1 changes found (as diff(1)), 2 trouble.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    return target_option(&((struct ptdiff_options *)ctx)->t, id, arg) > 0 ? 0 : -1;
}

static struct klab_ptsnap *load(const char *name)
{
    struct klab_error err;
    struct klab_ptsnap *s = klab_ptsnap_open(name, &err);
    if (!s)
        klab_error("ptdiff: %s", err.msg);
    return s;
}

/* The VM's (or dump's) tables now, as a snapshot shaped like a: NULL after one line. */
static struct klab_ptsnap *now(const struct ptdiff_options *p, const struct klab_ptsnap *a, struct vm_target *t)
{
    struct klab_ptsnap_info in;
    klab_ptsnap_info(a, &in);
    if (in.pid >= 0) {
        klab_error("ptdiff: snapshot A holds pid %d's tables: diff it against now in gdb (klab ptdiff A), or "
                   "save B there with --pid %d", in.pid, in.pid);
        return NULL;
    }
    if (target_open(&p->t, t) != 0)
        return NULL;
    if (t->regs.arch != in.arch) {
        klab_error("ptdiff: snapshot A is of an %s machine, this one is %s", klab_arch_name(in.arch),
                   klab_arch_name(t->regs.arch));
        vm_target_close(t);
        return NULL;
    }
    struct klab_error err;
    struct klab_ptsnap *s = klab_ptsnap_take(&t->regs, t->mem, NULL, -1, "now", &err);
    if (!s)
        klab_error("ptdiff: %s", err.msg);
    return s;
}

int cmd_ptdiff(int argc, char **argv)
{
    struct ptdiff_options p = { .t = { .cpu = 0 } };
    int first = opts_parse(&ptdiff_command, argc, argv, on_option, &p);
    if (first <= 0)
        return opts_exit(first);
    const int npos = argc - first;
    if (npos < 1 || npos > 2) {
        klab_error("ptdiff wants one or two snapshot names (see klab ptdiff --help)");
        return 2;
    }
    if (npos == 2 && (p.t.vm || p.t.dump || p.t.cpu_given || p.t.via_stub)) {
        klab_error("ptdiff: two snapshots need no VM: --vm, --dump, --cpu and --via-stub are for A against now");
        return 2;
    }
    struct klab_ptsnap *a = load(argv[first]), *b = NULL;
    if (!a)
        return 2;
    struct vm_target t;
    bool have_target = false;
    if (npos == 2)
        b = load(argv[first + 1]);
    else if ((b = now(&p, a, &t)))
        have_target = true;
    int rc = 2;
    uint64_t lo = 0, hi = 0;
    if (b && p.range) {
        /* Symbols need the VM's vmlinux; two snapshots take hex only. */
        struct vm_target none = { 0 };
        if (!parse_span(have_target ? &t : &none, p.range, &lo, &hi))
            goto out;
    }
    if (b) {
        struct klab_error err;
        char *text = klab_ptdiff_text(a, b, lo, hi, p.all_bits ? KLAB_PTDIFF_ALL_BITS : 0, &err);
        if (!text)
            klab_error("ptdiff: %s", err.msg);
        else {
            if (!p.svg || strcmp(p.svg, "-"))
                fputs(text, stdout);
            rc = strcmp(text, "no change\n") ? 1 : 0;
            if (p.svg && picture_map(p.svg, b, a, p.all_bits ? KLAB_PTDIFF_ALL_BITS : 0, lo, hi,
                                     have_target ? &t : NULL, "ptdiff") != 0)
                rc = 2;
        }
        free(text);
    }
out:
    if (have_target)
        vm_target_close(&t);
    klab_ptsnap_free(a);
    klab_ptsnap_free(b);
    return rc;
}
