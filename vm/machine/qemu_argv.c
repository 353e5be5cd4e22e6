#define _GNU_SOURCE
#include "machine/qemu_argv.h"

#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

static void push(struct argv *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->v = realloc(a->v, (size_t)a->cap * sizeof *a->v);
        if (!a->v) {
            fputs("klab: out of memory\n", stderr);
            exit(1);
        }
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void push2(struct argv *a, const char *opt, char *val)
{
    push(a, strdup(opt));
    push(a, val);
}

char *qemu_kernel_cmdline(const struct boot_request *r)
{
    /* panic=-1 with -no-reboot: a guest panic ends QEMU, and klab reports it instead of a silent reboot loop.
     * nokaslr unless KASLR is the lesson: symbols then sit where vmlinux says. */
    return xasprintf("console=%s %s panic=-1 rdinit=/init%s%s", r->profile->console,
                     r->kaslr ? "kaslr" : "nokaslr", r->append && *r->append ? " " : "",
                     r->append ? r->append : "");
}

int qemu_build_argv(const struct boot_request *r, struct argv *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (!r->profile || !r->kernel || !r->run_dir || !r->gdb_listen || !r->name) {
        snprintf(err, errlen, "incomplete boot request");
        return -1;
    }
    if (r->smp == 0 || r->smp > 64 || r->mem_bytes < (64ull << 20)) {
        snprintf(err, errlen, "need 1..64 CPUs and at least 64M of RAM");
        return -1;
    }
    const uint64_t mib = r->mem_bytes >> 20;
    push(a, strdup(r->qemu ? r->qemu : r->profile->qemu));
    push2(a, "-name", xasprintf("klab-%s", r->name));
    /* Guest RAM in a shared file: libklab maps it read-only and reads page tables without stopping the VM. */
    push2(a, "-object", xasprintf("memory-backend-file,id=klab-ram,size=%" PRIu64 "M,mem-path=%s/ram,share=on",
                                  mib, r->run_dir));
    push2(a, "-machine", xasprintf("%s,memory-backend=klab-ram", r->profile->machine));
    push2(a, "-m", xasprintf("%" PRIu64 "M", mib));
    push2(a, "-cpu", strdup(r->cpu ? r->cpu : r->profile->default_cpu));
    push2(a, "-smp", xasprintf("%u", r->smp));
    push2(a, "-accel", strdup(r->accel ? r->accel : "tcg"));
    push2(a, "-kernel", strdup(r->kernel));
    if (r->initrd)
        push2(a, "-initrd", strdup(r->initrd));
    push2(a, "-append", qemu_kernel_cmdline(r));
    /* No default devices: no NIC, no VGA, no default serial/monitor; only what is listed below. */
    push(a, strdup("-nodefaults"));
    push2(a, "-display", strdup("none"));
    push(a, strdup("-no-reboot"));
    if (r->rr_mode && r->rr_console_input)
        /* A recording that takes typed input (--console-input): QEMU's pipe chardev on klab's FIFOs, relayed
         * by the supervisor to console.log and console.sock (run/console_relay.h: why not a socket chardev). */
        push2(a, "-chardev", xasprintf("pipe,id=klab-con,path=%s/console", r->run_dir));
    else if (r->rr_mode)
        /* Record/replay: a file. QEMU records how much of each console write its chardev took, and a socket
         * takes nothing while nobody is connected (and may take part of a write when its reader lags), so a
         * replay of a socket console diverges ("Missing character write event"); a file takes every byte.
         * Input comes from the image's hooks (klab boot --run), which replay like the rest of the guest; a
         * replay takes typed input from its recording. */
        push2(a, "-chardev", xasprintf("file,id=klab-con,path=%s/console.log", r->run_dir));
    else if (r->console == CONSOLE_STDIO)
        /* signal=off: ^C goes to the guest; mux=on gives QEMU's escape keys (^A x quits, ^A h lists them). */
        push2(a, "-chardev", xasprintf("stdio,id=klab-con,mux=on,signal=off,logfile=%s/console.log%s", r->run_dir,
                                       r->incoming ? ",logappend=on" : ""));
    else
        push2(a, "-chardev", xasprintf("socket,id=klab-con,path=%s/console.sock,server=on,wait=off,"
                                       "logfile=%s/console.log%s", r->run_dir, r->run_dir,
                                       r->incoming ? ",logappend=on" : ""));
    push2(a, "-serial", strdup("chardev:klab-con"));
    if (r->swap_image) {
        /* virtio-blk on PCI on both machines (q35/pc, virt); the serial lets the guest's hook find it. */
        push2(a, "-drive", xasprintf("file=%s,if=none,id=klab-swap,format=raw,cache=unsafe", r->swap_image));
        push2(a, "-device", strdup("virtio-blk-pci,drive=klab-swap,serial=klab-swap"));
    }
    if (r->file_channel) {
        /* machine/file_channel.h: a pipe chardev (run_dir/files.in, files.out), always connected. */
        push2(a, "-device", strdup("virtio-serial-pci,id=klab-vser"));
        push2(a, "-chardev", xasprintf("pipe,id=klab-files,path=%s/files", r->run_dir));
        push2(a, "-device", strdup("virtserialport,bus=klab-vser.0,chardev=klab-files,name=org.klab.files"));
    }
    /* The guest's VMCOREINFO note for dump-guest-memory (crash and drgn read KASLR and the layout from it):
     * a fw_cfg file the guest's qemu_fw_cfg driver fills (machine/vmcoreinfo.h). */
    push2(a, "-device", strdup("vmcoreinfo"));
    /* Not under record/replay: QEMU records the human monitor's output like a guest's console output, so a
     * monitor command in either run makes the replay diverge ("Missing character write event"). Such a VM
     * is driven through its gdb stub (qRcmd), which QEMU keeps out of the recording. */
    if (!r->rr_mode)
        push2(a, "-monitor", xasprintf("unix:%s/monitor.sock,server=on,wait=off", r->run_dir));
    /* Never -s: it listens on every interface. */
    /* A Unix socket is created 0600 (umask set by the supervisor), so only its owner can attach. */
    push2(a, "-gdb", !strncmp(r->gdb_listen, "unix:", 5) ? xasprintf("%s,server=on,wait=off", r->gdb_listen)
                                                         : strdup(r->gdb_listen));
    if (r->rr_mode) {
        /* Record/replay (QEMU docs/system/replay.rst): icount makes execution deterministic, rrfile keeps the
         * inputs, rrsnapshot=init saves (record) or loads (replay) the start state on the one drive below,
         * from which gdb's reverse-step and reverse-continue replay forward to the step before. */
        push2(a, "-icount", xasprintf("shift=auto,rr=%s,rrfile=%s/replay.bin,rrsnapshot=init", r->rr_mode, r->rr_dir));
        push2(a, "-drive", xasprintf("file=%s/snapshots.qcow2,if=none,id=klab-rr,format=qcow2", r->rr_dir));
    }
    if (r->incoming)
        /* A snapshot's state comes through the monitor (migrate_incoming) once x-ignore-shared is set on
         * both ends; the VM stays paused after it, like -S, until klab or gdb continues it. */
        push2(a, "-incoming", strdup("defer"));
    else if (r->wait_for_gdb)
        push(a, strdup("-S"));
    return 0;
}

void argv_free(struct argv *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

char *argv_join(const struct argv *a)
{
    size_t len = 1;
    for (int i = 0; i < a->n; i++)
        len += strlen(a->v[i]) * 4 + 3;
    char *out = malloc(len), *o = out;
    if (!out)
        return NULL;
    for (int i = 0; i < a->n; i++) {
        const char *s = a->v[i];
        bool plain = *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                     "-_./:=,+@%") == strlen(s);
        if (i)
            *o++ = ' ';
        if (plain) {
            o = stpcpy(o, s);
            continue;
        }
        *o++ = '\'';
        for (; *s; s++)
            o = *s == '\'' ? stpcpy(o, "'\\''") : (*o = *s, o + 1);
        *o++ = '\'';
    }
    *o = '\0';
    return out;
}
