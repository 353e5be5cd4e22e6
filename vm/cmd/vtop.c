/* klab vtop: translate virtual addresses with a running VM's page tables, level by level (libklab's walk,
 * libklab's text: the same layout as gdb's klab vtop). */
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

struct vtop_options {
    struct target_opts t;
    bool ask_qemu;
    const char *svg;
};

static const struct opt options[] = {
    OPT_BOOL("qemu", "also ask QEMU (monitor command gva2gpa) and say whether it agrees", struct vtop_options,
             ask_qemu),
    OPT_STR("svg", "FILE", "also draw the walk as an SVG picture ('-': to stdout, instead of the text): the\n"
                           "address's index fields, each table with its entry, arrows to the page", struct vtop_options, svg),
    TARGET_OPTIONS(struct vtop_options, t),
    TARGET_DUMP_OPTIONS(struct vtop_options, t),
    OPT_END,
};

const struct opt_cmd vtop_command = {
    .name = "vtop", .args = "ADDRESS|SYMBOL...", .opts = options,
    .about = "Translates virtual addresses with the CPU's page tables and prints every level like crash's\n"
             "vtop: the address and its physical address, the root register, then per level the entry's\n"
             "physical address, its raw value, the level and index and the decoded bits; then the page, its size\n"
             "and permissions (kernel/user).",
    .epilog = TARGET_EPILOG "\n\nExit status: 0 all mapped, 1 some address not mapped (or QEMU disagrees), 2 bad "
                            "usage.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    return target_option(&((struct vtop_options *)ctx)->t, id, arg) > 0 ? 0 : -1;
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

/* QEMU's answer beside klab's, in libklab's words: 0 agrees (or QEMU cannot see the page, and says why), 1
 * not (or no answer). */
static int compare_with_qemu(struct vm_target *t, int cpu, const struct klab_walk *w)
{
    uint64_t qpa = 0, state = 0;
    int q = qemu_gva2gpa(t->rsp, cpu, w->va, &qpa);
    if (q < 0) {
        klab_error("QEMU's gva2gpa gave no answer: %s", klab_rsp_error(t->rsp));
        return 1;
    }
    const char *reg = klab_qemu_state_reg(t->regs.arch);
    if (reg && klab_rsp_read_register(t->rsp, reg, &state) != 0) {
        klab_error("cannot read %s: %s", reg, klab_rsp_error(t->rsp));
        return 1;
    }
    char line[256];
    const int verdict = klab_qemu_verdict(w, q == 1, qpa, state, line, sizeof line);
    fputs(line, stdout);
    return verdict == 1;
}

/* What the kernel keeps in the non-present entry the walk stopped at. The kernel's facts (vmlinux's banner
 * and symbol table, the config) are read once, and only for an entry that needs them: an empty entry or one
 * of the kernel's own tables decodes without them. */
static void print_non_present(const struct vm_target *t, const struct klab_walk *w, struct klab_kernel_mm *k,
                              bool *have)
{
    static const struct klab_kernel_mm unknown;
    struct klab_swp s;
    char line[512];
    if (w->stop != KLAB_STOP_NOT_PRESENT || klab_walk_swp(w, *have ? k : &unknown, &s, NULL) != 0)
        return;
    if (!*have && s.kind != KLAB_SWP_NONE && s.kind != KLAB_SWP_KERNEL) {
        kernel_mm_facts(t->rs.kernel, t->rs.vmlinux, &t->regs, k);
        *have = true;
    }
    if (klab_walk_swp(w, *have ? k : &unknown, &s, NULL) == 0) {
        klab_format_swp(&s, NULL, line, sizeof line);
        fputs(line, stdout);
    }
}

int cmd_vtop(int argc, char **argv)
{
    struct vtop_options o = { .t = { .cpu = 0 } };
    int first = opts_parse(&vtop_command, argc, argv, on_option, &o);
    if (first <= 0)
        return opts_exit(first);
    if (first >= argc) {
        klab_error("vtop needs an address (see klab vtop --help)");
        return 2;
    }
    if (o.svg && argc - first != 1) {
        klab_error("--svg draws one address; give one");
        return 2;
    }
    if (o.ask_qemu && o.t.dump) {
        klab_error("--qemu asks a running VM; a dump has no QEMU to ask");
        return 2;
    }
    struct vm_target t;
    if (target_open(&o.t, &t) != 0)
        return 1;
    int rc = 0;
    struct klab_kernel_mm kernel;
    bool have_kernel = false;
    for (int i = first; i < argc; i++) {
        uint64_t va;
        if (!parse_address(&t, argv[i], &va)) {
            rc = 2;
            break;
        }
        if (target_refuses(&t, va)) {
            rc = 1;
            continue;
        }
        struct klab_walk w;
        if (klab_translate(&t.regs, t.mem, va, &w) != 0 && rc == 0)
            rc = 1;
        const char *label = parse_hex(argv[i], NULL) ? NULL : argv[i];
        if (o.svg && picture_walk(o.svg, &w, label) != 0)
            rc = 2;
        if (o.svg && !strcmp(o.svg, "-"))
            continue;
        char text[4096];
        klab_format_walk(&w, label, false, text, sizeof text);
        printf("%s%s", i > first ? "\n" : "", text);
        print_non_present(&t, &w, &kernel, &have_kernel);
        if (o.ask_qemu && compare_with_qemu(&t, o.t.cpu, &w) != 0)
            rc = 1;
    }
    vm_target_close(&t);
    return rc;
}
