/* Connecting klab's own inspection commands to a VM. QEMU's stub serves one client at a time and stops the
 * guest when a client connects (gdbstub.c, CHR_EVENT_OPENED → vm_stop); it resumes it on a detach packet
 * and leaves it paused on a plain disconnect. So: ask the monitor first whether the guest runs, detach
 * afterwards only then. */
#include "run/stub.h"

#include "cmd/commands.h"
#include "run/monitor.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stub held by gdb accepts the TCP connection but never answers; this bounds the wait. */
#define STUB_TIMEOUT_MS 2000

int vm_target_open(const char *name, int cpu, bool memory_via_stub, struct vm_target *t)
{
    memset(t, 0, sizeof *t);
    char *vm = resolve_vm_name(name);
    if (!vm)
        return -1;
    if (runstate_load(vm, &t->rs) != 0) {
        klab_error("VM '%s' has no readable run state", vm);
        free(vm);
        return -1;
    }
    free(vm);
    char *mon = path_join(t->rs.dir, "monitor.sock");
    const bool has_monitor = !strcmp(t->rs.backend ? t->rs.backend : "qemu", "libvirt") || file_exists(mon);
    free(mon);
    if (!has_monitor) {
        /* A recording or replay (machine/qemu_argv.c): connecting the stub would stop it with no way to tell
         * whether it ran before. */
        klab_error("VM '%s' is a recording or a replay: it has no monitor, and klab's shell commands would stop "
                   "it; use `klab gdb %s` (its klab commands read the same tables)", t->rs.name, t->rs.name);
        runstate_free(&t->rs);
        return -1;
    }
    char *status = runstate_monitor(&t->rs, "info status", 2000);
    t->was_running = status && strstr(status, "running");
    free(status);
    const char *listen = t->rs.gdb_listen;
    char where[300];
    if (!strncmp(listen, "tcp:", 4))
        snprintf(where, sizeof where, "%s", listen + 4);
    else
        snprintf(where, sizeof where, "%s", listen);
    struct klab_error err;
    t->rsp = klab_rsp_connect(where, STUB_TIMEOUT_MS, &err);
    if (!t->rsp) {
        klab_error("VM '%s': %s", t->rs.name, err.msg);
        goto fail;
    }
    if (cpu >= 0 && klab_rsp_select_cpu(t->rsp, cpu) != 0) {
        klab_error("VM '%s' has no CPU %d (%s)", t->rs.name, cpu, klab_rsp_error(t->rsp));
        goto fail;
    }
    if (klab_rsp_read_mmu_regs(t->rsp, t->rs.profile->mmu_arch, &t->regs) != 0) {
        klab_error("VM '%s': cannot read MMU registers: %s", t->rs.name, klab_rsp_error(t->rsp));
        goto fail;
    }
    /* A libvirt domain has no RAM file klab can open: its memory comes through the stub. */
    if (memory_via_stub || t->rs.nram == 0) {
        t->mem = klab_physmem_from_rsp(t->rsp, &err);
    } else {
        struct klab_ram_region regions[MAX_RAM_REGIONS];
        for (size_t i = 0; i < t->rs.nram; i++)
            regions[i] = (struct klab_ram_region){ t->rs.ram[i].gpa, t->rs.ram[i].size, t->rs.ram[i].file_offset };
        char *ram = path_join(t->rs.dir, "ram");
        t->mem = klab_physmem_open_ramfile(ram, regions, t->rs.nram, &err);
        free(ram);
    }
    if (!t->mem) {
        klab_error("VM '%s': %s", t->rs.name, err.msg);
        goto fail;
    }
    return 0;
fail:
    vm_target_close(t);
    return -1;
}

void vm_target_close(struct vm_target *t)
{
    klab_physmem_close(t->mem);
    t->mem = NULL;
    if (t->rsp) {
        if (t->was_running)
            klab_rsp_detach(t->rsp);
        klab_rsp_close(t->rsp);
        t->rsp = NULL;
    }
    if (t->rs.name)
        runstate_free(&t->rs);
    else
        free(t->rs.vmlinux);   /* a dump target's only run-state string */
    memset(&t->rs, 0, sizeof t->rs);
}
