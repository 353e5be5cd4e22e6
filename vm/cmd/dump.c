/* klab dump: a running VM's memory into a dump file (vm/run/dump.h does the work). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/dump.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dump_options {
    const char *output, *format;
};

static const struct opt options[] = {
    { "output", 0, "FILE", "where to write it (default NAME.vmcore here); never an existing file", 'o',
      OPT_KIND_STR, offsetof(struct dump_options, output) },
    OPT_STR("format", "F", "elf-paging (default: ELF with the guest's virtual addresses, which both crash and\n"
            "Debian's drgn open), elf (physical addresses only: crash, not drgn 0.0.22), kdump-zlib,\n"
            "kdump-lzo or kdump-snappy (makedumpfile's compressed format: smaller; crash, not drgn; lzo and\n"
            "snappy only from a QEMU built with them, which Debian's is not)",
            struct dump_options, format),
    OPT_END,
};

const struct opt_cmd dump_command = {
    .name = "dump", .args = "[NAME]", .opts = options,
    .about = "Writes the VM's memory and CPU registers to a dump file through QEMU's dump-guest-memory: a\n"
             "running guest is paused for it and resumed after; a guest stopped by gdb stays stopped. klab's\n"
             "VMs carry QEMU's vmcoreinfo device, so the dump has the kernel's VMCOREINFO (KASLR offset,\n"
             "memory layout) when the guest's qemu_fw_cfg driver is there (klab's image loads it).\n"
             "Open it with `crash VMLINUX FILE` or `drgn -c FILE -s VMLINUX`.",
};

int cmd_dump(int argc, char **argv)
{
    struct dump_options o = { 0 };
    int first = opts_parse(&dump_command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    if (argc - first > 1) {
        klab_error("dump: one VM at a time (see klab dump --help)");
        return 2;
    }
    enum dump_format f = DUMP_ELF_PAGING;
    if (o.format && dump_format_parse(o.format, &f) != 0) {
        klab_error("dump: unknown --format '%s' (elf-paging, elf, kdump-zlib, kdump-lzo or kdump-snappy)", o.format);
        return 2;
    }
    char *name = resolve_vm_name(first < argc ? argv[first] : NULL);
    if (!name)
        return 1;
    struct runstate rs;
    if (runstate_load(name, &rs) != 0) {
        klab_error("no VM named '%s'", name);
        free(name);
        return 1;
    }
    int rc = 1;
    char *target = o.output ? strdup(o.output) : xasprintf("%s.vmcore", name);
    struct dump_result r = { 0 };
    if (!runstate_alive(&rs))
        klab_error("VM '%s' is not running", name);
    else if (dump_vm(&rs, target, f, &r) == 0) {
        printf("klab: dumped %s to %s (%s, %.1f MiB, %.1f s)%s%s%s\n", name, target, dump_format_name(r.format),
               (double)r.bytes / (1 << 20), r.seconds,
               r.vmcoreinfo ? "" : "; no VMCOREINFO in it: the guest did not load qemu_fw_cfg", r.note[0] ? "; " : "",
               r.note);
        rc = 0;
    }
    free(target);
    runstate_free(&rs);
    free(name);
    return rc;
}
