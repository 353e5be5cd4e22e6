/* run/snapshot_key.h. */
#define _GNU_SOURCE
#include "run/snapshot_key.h"

#include "util/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options whose value is host-side only (see the header); -S and -incoming say how QEMU starts, not what. */
static const char *const skip_with_value[] = { "-name", "-gdb", "-chardev", "-monitor", "-incoming" };

static bool skipped(const char *arg)
{
    for (size_t i = 0; i < sizeof skip_with_value / sizeof *skip_with_value; i++)
        if (!strcmp(arg, skip_with_value[i]))
            return true;
    return false;
}

/* arg with every occurrence of run_dir replaced by @RUN, appended to *out as one line. */
static void append_arg(char **out, size_t *len, const char *arg, const char *run_dir)
{
    size_t rl = strlen(run_dir);
    size_t need = *len + 5 + strlen(arg) * 2 + 8;
    *out = realloc(*out, need);
    char *o = *out + *len;
    o = stpcpy(o, "arg ");
    for (const char *p = arg; *p;) {
        if (rl && !strncmp(p, run_dir, rl)) {
            o = stpcpy(o, "@RUN");
            p += rl;
        } else {
            /* A newline in an argument would forge a line of the key. */
            *o++ = *p == '\n' ? ' ' : *p;
            p++;
        }
    }
    *o++ = '\n';
    *o = '\0';
    *len = (size_t)(o - *out);
}

char *snapshot_key_text(char *const *argv, const char *run_dir)
{
    char *out = strdup("");
    size_t len = 0;
    for (size_t i = 0; argv[i]; i++) {
        if (skipped(argv[i])) {
            if (argv[i + 1])
                i++;
            continue;
        }
        if (!strcmp(argv[i], "-S"))
            continue;
        append_arg(&out, &len, argv[i], run_dir);
    }
    return out;
}

uint64_t snapshot_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static const struct {
    const char *prefix, *what;
} parts[] = {
    { "version ", "klab's snapshot format" },
    { "arg ", "the QEMU command line" },
    { "file kernel ", "the kernel" },
    { "file qemu ", "QEMU" },
    { "image ", "the initramfs" },
};

static const char *part_of(const char *line)
{
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (!strncmp(line, parts[i].prefix, strlen(parts[i].prefix)))
            return parts[i].what;
    return "the machine";
}

const char *snapshot_manifest_diff(const char *old, const char *now)
{
    while (*old || *now) {
        size_t lo = strcspn(old, "\n"), ln = strcspn(now, "\n");
        if (lo != ln || memcmp(old, now, lo))
            return part_of(*now ? now : old);
        old += lo + (old[lo] == '\n');
        now += ln + (now[ln] == '\n');
    }
    return NULL;
}
