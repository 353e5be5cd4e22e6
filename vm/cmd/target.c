/* vm/cmd/target.h. */
#define _GNU_SOURCE
#include "cmd/target.h"
#include "machine/kimage.h"
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

bool parse_address(const struct vm_target *t, const char *s, uint64_t *va)
{
    if (parse_hex(s, va))
        return true;
    char err[300];
    if (t->rs.vmlinux && vmlinux_symbol_address(t->rs.vmlinux, s, va, err, sizeof err) == 0)
        return true;
    klab_error("'%s' is neither a hex address nor a symbol of %s", s, t->rs.vmlinux ? t->rs.vmlinux : "vmlinux");
    return false;
}
