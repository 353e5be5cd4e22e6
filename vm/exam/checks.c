#define _GNU_SOURCE
#include "exam/checks.h"

#include "util/kv.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int checks_load(const char *path, struct task_checks *t, char *err, size_t errlen)
{
    char *text = read_text_file(path);
    if (!text) {
        snprintf(err, errlen, "the task has no checks file (%s)", path);
        return -1;
    }
    int rc = checks_parse(text, path, t, err, errlen);
    free(text);
    return rc;
}

void checks_free(struct task_checks *t)
{
    free(t->program);
    for (unsigned i = 0; i < t->n; i++) {
        free(t->c[i].name);
        free(t->c[i].command);
        free(t->c[i].expect);
        free(t->c[i].detail);
    }
    memset(t, 0, sizeof *t);
}

int checks_parse(const char *input, const char *path, struct task_checks *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    char *text = strdup(input);
    int rc = 0;
    struct kv_reader rd;
    kv_begin(&rd, text, KV_LINE_COMMENTS);
    for (char *l; rc == 0 && (l = kv_next_line(&rd));) {
        unsigned lineno = rd.lineno;
        char *key, *value;
        if (!strncmp(l, "program", 7) && kv_split(l, '=', &key, &value)) {
            free(t->program);
            t->program = strdup(value);
            continue;
        }
        char *colon = strchr(l, ':');
        if (strncmp(l, "check ", 6) || !colon || t->n == MAX_CHECKS) {
            snprintf(err, errlen, "%s:%u: expected 'check NAME : run|output|console ...'", path, lineno);
            rc = -1;
            break;
        }
        *colon = '\0';
        struct check *c = &t->c[t->n];
        c->name = strdup(kv_trim(l + 6));
        char *what = kv_trim(colon + 1);
        if (!strncmp(what, "run ", 4)) {
            c->kind = CHECK_RUN;
            c->command = strdup(kv_trim(what + 4));
        } else if (!strncmp(what, "output ", 7) && strstr(what, " = ")) {
            c->kind = CHECK_OUTPUT;
            char *eq = strstr(what, " = ");
            *eq = '\0';
            c->command = strdup(kv_trim(what + 7));
            c->expect = strdup(kv_trim(eq + 3));
        } else if (!strncmp(what, "console ", 8)) {
            c->kind = CHECK_CONSOLE;
            c->expect = strdup(kv_trim(what + 8));
        } else {
            snprintf(err, errlen, "%s:%u: a check is 'run CMD', 'output CMD = TEXT' or 'console TEXT'", path, lineno);
            rc = -1;
            break;
        }
        if (!*c->name || strchr(c->name, ' ')) {
            snprintf(err, errlen, "%s:%u: a check's name is one word", path, lineno);
            rc = -1;
            break;
        }
        t->n++;
    }
    if (rc != 0 && t->n < MAX_CHECKS) {   /* the check being read when it failed */
        struct check *c = &t->c[t->n];
        free(c->name);
        free(c->command);
        free(c->expect);
        memset(c, 0, sizeof *c);
    }
    free(text);
    if (rc != 0)
        checks_free(t);
    return rc;
}

