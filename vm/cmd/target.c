/* vm/cmd/target.h. */
#define _GNU_SOURCE
#include "cmd/target.h"
#include "machine/kimage.h"
#include "run/dump_target.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int target_option(struct target_opts *o, int id, const char *arg)
{
    uint64_t v;
    if (id != T_CPU)
        return 0;
    if (opts_number(arg, 0, 4095, &v, "--cpu wants a CPU number") != 0)
        return -1;
    o->cpu = (int)v;
    o->cpu_given = true;
    return 1;
}

bool parse_hex(const char *s, uint64_t *v)
{
    const char *hex = !strncasecmp(s, "0x", 2) ? s + 2 : s;
    if (!*hex || strspn(hex, "0123456789abcdefABCDEF") != strlen(hex) || strlen(hex) > 16)
        return false;
    if (v)
        *v = strtoull(hex, NULL, 16);
    return true;
}

int target_open(const struct target_opts *o, struct vm_target *t)
{
    if (!o->dump) {
        if (o->vmlinux) {
            klab_error("--vmlinux goes with --dump (a VM's vmlinux is in its run state)");
            return -1;
        }
        return vm_target_open(o->vm, o->cpu, o->via_stub, t);
    }
    if (o->vm || o->via_stub) {
        klab_error("--dump reads a file: --vm and --via-stub are for a running VM");
        return -1;
    }
    return dump_target_open(o->dump, o->vmlinux, o->cpu_given ? o->cpu : -1, t);
}

bool target_refuses(const struct vm_target *t, uint64_t va)
{
    if (!t->dump || t->dump_user_tables || va >> 63)
        return false;
    klab_error("%#llx is a user address: without --cpu N a dump gives the kernel's page tables (swapper_pg_dir), "
               "not a task's", (unsigned long long)va);
    return true;
}

int target_symbol(const struct vm_target *t, const char *name, uint64_t *va)
{
    char err[300];
    if (!t->rs.vmlinux || (!t->dump && t->rs.kaslr) ||
        vmlinux_symbol_address(t->rs.vmlinux, name, va, err, sizeof err) != 0)
        return -1;
    *va += t->symbol_offset;
    return 0;
}

bool parse_address(const struct vm_target *t, const char *s, uint64_t *va)
{
    if (parse_hex(s, va))
        return true;
    if (!t->dump && t->rs.kaslr && t->rs.vmlinux) {
        klab_error("'%s': this VM booted with KASLR, so its symbols sit at a slide klab gdb finds (klab kaslr); "
                   "give a hex address", s);
        return false;
    }
    if (target_symbol(t, s, va) == 0)
        return true;
    klab_error("'%s' is neither a hex address nor a symbol of %s", s, t->rs.vmlinux ? t->rs.vmlinux : "vmlinux");
    return false;
}

bool parse_span(const struct vm_target *t, const char *text, uint64_t *start, uint64_t *end)
{
    char *copy = strdup(text);
    char *dash = strchr(copy, '-');
    bool ok = false;
    if (!dash || dash == copy || !dash[1])
        klab_error("--range wants START-END, not '%s'", text);
    else {
        *dash = '\0';
        if (parse_address(t, copy, start) && parse_address(t, dash + 1, end)) {
            ok = *end >= *start;
            if (!ok)
                klab_error("--range %s ends before it starts", text);
        }
    }
    free(copy);
    return ok;
}
