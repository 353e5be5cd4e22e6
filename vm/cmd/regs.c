/* klab regs: a running VM's registers through its gdb stub, and what its translation registers set up. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "cmd/target.h"
#include "run/dump_target.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>

struct regs_options {
    struct target_opts t;
};

static const struct opt options[] = {
    TARGET_OPTIONS(struct regs_options, t),
    OPT_STR("dump", "FILE", "a dump (klab dump) instead of a VM: CPU N's registers from its notes, the kernel's\n"
                            "translation from its VMCOREINFO", struct regs_options, t.dump),
    OPT_END,
};

const struct opt_cmd regs_command = {
    .name = "regs", .args = "[REGISTER...]", .opts = options,
    .about = "Prints a running VM's registers by their gdb-stub names (default: pc/rip, stack, translation and\n"
             "per-CPU registers), then what the translation registers set up.",
    .epilog = TARGET_EPILOG,
};

static int on_option(void *ctx, int id, const char *arg)
{
    return target_option(&((struct regs_options *)ctx)->t, id, arg) > 0 ? 0 : -1;
}

/* A dump's CPU: what its notes hold (NT_PRSTATUS, QEMU's CPU state), "not in the dump" for the rest (EFER,
 * TTBRn, TCR: QEMU's notes have none), then the kernel's translation that VMCOREINFO gives. */
static int dump_regs(const struct target_opts *o, char **names_arg, int n)
{
    if (o->vm || o->via_stub) {
        klab_error("--dump reads a file: --vm and --via-stub are for a running VM");
        return 2;
    }
    struct vm_target t;
    if (dump_target_open(o->dump, NULL, -1, &t) != 0)
        return 1;
    if ((unsigned)o->cpu >= t.dump_cpus) {
        klab_error("dump %s has no CPU %d (its notes describe %u)", o->dump, o->cpu, t.dump_cpus);
        vm_target_close(&t);
        return 1;
    }
    int rc = 0;
    printf("dump %s, CPU %d (%s)\n", o->dump, o->cpu, t.rs.profile->arch);
    const char *const *names = n ? (const char *const *)names_arg : t.rs.profile->show_regs;
    for (int i = 0; n ? i < n : names[i] != NULL; i++) {
        uint64_t v;
        struct klab_error err;
        if (klab_elfcore_register(t.mem, (unsigned)o->cpu, names[i], &v, &err) == 0)
            printf("  %-10s 0x%016llx\n", names[i], (unsigned long long)v);
        else
            printf("  %-10s unknown (%s)\n", names[i], err.msg);
    }
    char desc[1024];
    klab_describe_regs(&t.regs, desc, sizeof desc);
    printf("the kernel's translation (from VMCOREINFO):\n%s", desc);
    vm_target_close(&t);
    return rc;
}

int cmd_regs(int argc, char **argv)
{
    struct regs_options ro = { .t = { .cpu = 0 } };
    int first = opts_parse(&regs_command, argc, argv, on_option, &ro);
    const struct target_opts o = ro.t;
    if (first <= 0)
        return opts_exit(first);
    if (o.dump)
        return dump_regs(&o, argv + first, argc - first);
    struct vm_target t;
    if (vm_target_open(o.vm, o.cpu, o.via_stub, &t) != 0)
        return 1;
    int rc = 0;
    printf("VM %s, CPU %d (%s)\n", t.rs.name, o.cpu, t.rs.profile->arch);
    const char *const *names = first < argc ? (const char *const *)argv + first : t.rs.profile->show_regs;
    for (int i = 0; first < argc ? i < argc - first : names[i] != NULL; i++) {
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
