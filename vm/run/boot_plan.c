/* boot_plan(): klab boot's options and what boot_resolve() found → the backend's request and the run state.
 * Pure: no I/O (tests/unit/test_boot_plan.c). */
#include "run/boot_plan.h"
#include "backend/backend.h"

#include <string.h>

const char *boot_cpu(const struct boot_options *o, const struct machine_profile *p, unsigned page_shift)
{
    if (o->cpu)
        return o->cpu;
    if (page_shift && !(p->cpu_page_shifts & 1u << page_shift))
        return p->full_cpu;
    return p->default_cpu;
}

void boot_plan(const struct boot_options *o, const struct boot_facts *f, struct boot_plan *plan)
{
    const struct backend_ops *backend = backend_find(o->backend);
    /* A recording's console is a file or klab's relay, a replay's a file (machine/qemu_argv.c): never the terminal. */
    bool interactive = !o->detach && f->tty && backend->console_on_terminal && !o->record && !o->replay;
    /* -cpu is passed only when it is not the profile's default, as the user gave it. */
    const char *cpu_arg = f->cpu && strcmp(f->cpu, f->profile->default_cpu) ? f->cpu : o->cpu;
    /* The vmlinux by its PVH entry, when it has one: the same kernel (kernel_pair_check matched their
     * banners) at the same physical address, minus the decompressor's time. KASLR is the decompressor's work
     * (arch/x86/boot/compressed/kaslr.c), so --kaslr keeps the image. */
    bool pvh = f->profile->pvh_boot && f->vmlinux_pvh && f->vmlinux && !o->kaslr && !o->no_pvh;
    *plan = (struct boot_plan){
        .req = {
            .profile = f->profile, .qemu = f->qemu_path, .name = o->name ? o->name : f->profile->arch,
            .kernel = pvh ? f->vmlinux : f->kernel, .initrd = f->initrd, .append = o->append, .cpu = cpu_arg, .accel = f->accel,
            .smp = o->smp, .mem_bytes = o->mem, .kaslr = o->kaslr, .wait_for_gdb = !o->no_wait || o->record || o->replay,
            .gdb_listen = f->gdb_listen, .run_dir = f->run_dir, .swap_image = f->swap_image,
            .console = interactive ? CONSOLE_STDIO : CONSOLE_SOCKET,
            .rr_mode = o->record ? "record" : o->replay ? "replay" : NULL,
            .rr_dir = o->record ? o->record : o->replay,
            .rr_console_input = o->record && o->console_input,
            .file_channel = o->snapshot && f->file_channel,
        },
        .backend = backend,
        .connect = o->connect,
        .detach = o->detach,
        .interactive = interactive,
        .quiet = o->detach,
        /* A recording starts paused whatever --no-wait says: it has no monitor to say QEMU is ready, and the
         * gdb stub that says so instead stops a running guest as it is connected to. */
        .resume = (o->record || o->replay) && o->no_wait,
        .snapshot = o->snapshot,
        .snapshot_dir = o->snapshot_dir,
    };
    if (plan->req.file_channel) {   /* the snapshot holds the base image; these come after each restore */
        plan->deliver_adds = o->adds;
        plan->ndeliver_adds = o->nadds;
        plan->deliver_runs = o->runs;
        plan->ndeliver_runs = o->nruns;
    }
    plan->rs = (struct runstate){
        .name = (char *)plan->req.name, .dir = f->run_dir, .profile = f->profile, .gdb_listen = f->gdb_listen,
        .gdb_port = f->gdb_port, .kernel = f->kernel, .vmlinux = f->vmlinux, .initrd = f->initrd,
        .accel = (char *)f->accel, .cpu = (char *)f->cpu, .mem_bytes = o->mem, .kaslr = o->kaslr,
        .backend = (char *)backend->name, .connect = (char *)(o->connect ? o->connect : ""),
    };
    if (backend->ram_file)
        plan->rs.nram = f->profile->ram_layout(o->mem, plan->rs.ram);
}
