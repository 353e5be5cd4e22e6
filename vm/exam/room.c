#define _GNU_SOURCE
#include "exam/room.h"

#include "run/runstate.h"
#include "util/kv.h"
#include "util/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

int room_parse_duration(const char *s, uint64_t *seconds)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    unsigned mult = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600 : 0;
    if (!mult || v == 0 || v > 24ull * 3600)
        return -1;
    *seconds = v * mult;
    return 0;
}

int room_load(const char *path, struct room *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char *text = read_text_file(path);
    if (!text)
        return FAIL("cannot read room file %s", path);
    int rc = room_parse(text, path, r, err, errlen);
    free(text);
    return rc;
}

/* Where an error is reported: "room.conf:5: ". */
struct room_line {
    const char *path;
    unsigned lineno;
};

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = strdup(v);
}

static int add_candidates(struct room *r, char *v, struct room_line at, char *err, size_t errlen)
{
    char *save = NULL;
    for (char *c = strtok_r(v, " \t,", &save); c; c = strtok_r(NULL, " \t,", &save)) {
        if (!runstate_valid_name(c) || strlen(c) > 32)
            return FAIL("%s:%u: candidate name '%s' (letters, digits, '.', '_', '-'; at most 32)", at.path, at.lineno, c);
        if (r->ncandidates == ROOM_MAX_CANDIDATES)
            return FAIL("%s:%u: more than %d candidates", at.path, at.lineno, ROOM_MAX_CANDIDATES);
        for (unsigned i = 0; i < r->ncandidates; i++)
            if (!strcmp(r->candidates[i], c))
                return FAIL("%s:%u: candidate '%s' listed twice", at.path, at.lineno, c);
        r->candidates[r->ncandidates++] = strdup(c);
    }
    return 0;
}

/* One "key = value" line; dir is the room file's folder (task is relative to it). */
static int room_key(struct room *r, const char *k, char *v, const char *dir, struct room_line at, char *err,
                    size_t errlen)
{
    uint64_t n = 0;
    if (!strcmp(k, "name"))
        set_str(&r->name, v);
    else if (!strcmp(k, "kernel"))
        set_str(&r->kernel, v);
    else if (!strcmp(k, "connect"))
        set_str(&r->connect, v);
    else if (!strcmp(k, "backend"))
        set_str(&r->backend, v);
    else if (!strcmp(k, "task")) {
        free(r->task_dir);
        r->task_dir = v[0] == '/' ? strdup(v) : xasprintf("%s/%s", dir, v);
    } else if (!strcmp(k, "time_limit")) {
        if (room_parse_duration(v, &r->time_limit_s) != 0)
            return FAIL("%s:%u: time_limit wants e.g. 90m, 45s, 2h, not '%s'", at.path, at.lineno, v);
    } else if (!strcmp(k, "memory")) {
        if (!parse_size_mib(v, &r->mem_bytes) || r->mem_bytes < (64ull << 20))
            return FAIL("%s:%u: memory wants a size of at least 64M, not '%s'", at.path, at.lineno, v);
    } else if (!strcmp(k, "cpus")) {
        if (!parse_u64(v, &n) || n < 1 || n > 8)
            return FAIL("%s:%u: cpus wants 1 to 8, not '%s'", at.path, at.lineno, v);
        r->cpus = (unsigned)n;
    } else if (!strcmp(k, "candidates")) {
        return add_candidates(r, v, at, err, errlen);
    } else {
        return FAIL("%s:%u: unknown key '%s' (name, kernel, task, time_limit, memory, cpus, backend, connect, "
                    "candidates)", at.path, at.lineno, k);
    }
    return 0;
}

/* What a room must have once every line is read; the defaults of what it may leave out. */
static int room_complete(struct room *r, const char *path, char *err, size_t errlen)
{
    if (!r->backend)
        r->backend = strdup("qemu");
    if (!r->connect)
        r->connect = strdup("qemu:///session");
    if (!r->name || !runstate_valid_name(r->name) || strlen(r->name) > 24)
        return FAIL("%s: name is missing or not a valid name (letters, digits, '.', '_', '-'; at most 24)", path);
    if (!r->kernel)
        return FAIL("%s: kernel is missing (a registered kernel: x86_64, arm64-64k, debian-amd64, ...)", path);
    if (!r->task_dir)
        return FAIL("%s: task is missing (a task folder, e.g. labs/exam/myhello)", path);
    if (!r->ncandidates)
        return FAIL("%s: no candidates", path);
    if (strcmp(r->backend, "qemu") != 0 && strcmp(r->backend, "libvirt") != 0)
        return FAIL("%s: backend '%s' (qemu or libvirt)", path, r->backend);
    return 0;
}

int room_parse(const char *input, const char *path, struct room *r, char *err, size_t errlen)
{
    *r = (struct room){ .cpus = 1, .mem_bytes = 256ull << 20, .time_limit_s = 90 * 60 };
    char *text = strdup(input), *dir = strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int rc = 0;
    struct kv_reader rd;
    kv_begin(&rd, text, KV_ANY_COMMENTS);
    char *k, *v;
    while (rc == 0 && kv_next(&rd, '=', &k, &v)) {
        struct room_line at = { path, rd.lineno };
        rc = v ? room_key(r, k, v, dir, at, err, errlen) : FAIL("%s:%u: expected key = value", path, at.lineno);
    }
    free(text);
    free(dir);
    if (rc == 0)
        rc = room_complete(r, path, err, errlen);
    if (rc != 0)
        room_free(r);
    return rc;
}

void room_free(struct room *r)
{
    free(r->name);
    free(r->kernel);
    free(r->task_dir);
    free(r->backend);
    free(r->connect);
    for (unsigned i = 0; i < r->ncandidates; i++)
        free(r->candidates[i]);
    memset(r, 0, sizeof *r);
}
