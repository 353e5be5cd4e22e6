#define _GNU_SOURCE
#include "room.h"

#include "runstate.h"
#include "util.h"

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

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
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

int room_parse(const char *input, const char *path, struct room *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->cpus = 1;
    r->mem_bytes = 256ull << 20;
    r->time_limit_s = 90 * 60;
    char *text = strdup(input);
    char *dir = strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int rc = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (!*l)
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = FAIL("%s:%d: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        char *k = trim(l), *v = trim(eq + 1);
        if (!strcmp(k, "name")) {
            free(r->name);
            r->name = strdup(v);
        } else if (!strcmp(k, "kernel")) {
            free(r->kernel);
            r->kernel = strdup(v);
        } else if (!strcmp(k, "task")) {
            free(r->task_dir);
            r->task_dir = v[0] == '/' ? strdup(v) : xasprintf("%s/%s", dir, v);
        } else if (!strcmp(k, "connect")) {
            free(r->connect);
            r->connect = strdup(v);
        } else if (!strcmp(k, "backend")) {
            free(r->backend);
            r->backend = strdup(v);
        } else if (!strcmp(k, "time_limit")) {
            if (room_parse_duration(v, &r->time_limit_s) != 0)
                rc = FAIL("%s:%d: time_limit wants e.g. 90m, 45s, 2h, not '%s'", path, lineno, v);
        } else if (!strcmp(k, "memory")) {
            if (!parse_size_mib(v, &r->mem_bytes) || r->mem_bytes < (64ull << 20))
                rc = FAIL("%s:%d: memory wants a size of at least 64M, not '%s'", path, lineno, v);
        } else if (!strcmp(k, "cpus")) {
            uint64_t n = 0;
            if (!parse_u64(v, &n) || n < 1 || n > 8)
                rc = FAIL("%s:%d: cpus wants 1 to 8, not '%s'", path, lineno, v);
            else
                r->cpus = (unsigned)n;
        } else if (!strcmp(k, "candidates")) {
            char *s2 = NULL;
            for (char *c = strtok_r(v, " \t,", &s2); c && rc == 0; c = strtok_r(NULL, " \t,", &s2)) {
                if (!runstate_valid_name(c) || strlen(c) > 32)
                    rc = FAIL("%s:%d: candidate name '%s' (letters, digits, '.', '_', '-'; at most 32)", path, lineno, c);
                else if (r->ncandidates == ROOM_MAX_CANDIDATES)
                    rc = FAIL("%s:%d: more than %d candidates", path, lineno, ROOM_MAX_CANDIDATES);
                else
                    for (unsigned i = 0; i < r->ncandidates && rc == 0; i++)
                        if (!strcmp(r->candidates[i], c))
                            rc = FAIL("%s:%d: candidate '%s' listed twice", path, lineno, c);
                if (rc == 0)
                    r->candidates[r->ncandidates++] = strdup(c);
            }
        } else {
            rc = FAIL("%s:%d: unknown key '%s' (name, kernel, task, time_limit, memory, cpus, backend, connect, candidates)",
                      path, lineno, k);
        }
    }
    free(text);
    free(dir);
    if (rc == 0 && !r->backend)
        r->backend = strdup("qemu");
    if (rc == 0 && (!r->name || !runstate_valid_name(r->name) || strlen(r->name) > 24))
        rc = FAIL("%s: name is missing or not a valid name (letters, digits, '.', '_', '-'; at most 24)", path);
    else if (rc == 0 && !r->kernel)
        rc = FAIL("%s: kernel is missing (a registered kernel: x86_64, arm64-64k, debian-amd64, ...)", path);
    else if (rc == 0 && !r->task_dir)
        rc = FAIL("%s: task is missing (a task folder, e.g. labs/exam/myhello)", path);
    else if (rc == 0 && !r->ncandidates)
        rc = FAIL("%s: no candidates", path);
    else if (rc == 0 && strcmp(r->backend, "qemu") != 0 && strcmp(r->backend, "libvirt") != 0)
        rc = FAIL("%s: backend '%s' (qemu or libvirt)", path, r->backend);
    if (rc == 0 && !r->connect)
        r->connect = strdup("qemu:///session");
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
