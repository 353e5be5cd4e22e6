#define _GNU_SOURCE
#include "exam_checks.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

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
    int lineno = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        if (!strncmp(l, "program", 7) && strchr(l, '=')) {
            free(t->program);
            t->program = strdup(trim(strchr(l, '=') + 1));
            continue;
        }
        char *colon = strchr(l, ':');
        if (strncmp(l, "check ", 6) || !colon || t->n == MAX_CHECKS) {
            snprintf(err, errlen, "%s:%d: expected 'check NAME : run|output|console ...'", path, lineno);
            rc = -1;
            break;
        }
        *colon = '\0';
        struct check *c = &t->c[t->n];
        c->name = strdup(trim(l + 6));
        char *what = trim(colon + 1);
        if (!strncmp(what, "run ", 4)) {
            c->kind = CHECK_RUN;
            c->command = strdup(trim(what + 4));
        } else if (!strncmp(what, "output ", 7) && strstr(what, " = ")) {
            c->kind = CHECK_OUTPUT;
            char *eq = strstr(what, " = ");
            *eq = '\0';
            c->command = strdup(trim(what + 7));
            c->expect = strdup(trim(eq + 3));
        } else if (!strncmp(what, "console ", 8)) {
            c->kind = CHECK_CONSOLE;
            c->expect = strdup(trim(what + 8));
        } else {
            snprintf(err, errlen, "%s:%d: a check is 'run CMD', 'output CMD = TEXT' or 'console TEXT'", path, lineno);
            rc = -1;
            break;
        }
        if (!*c->name || strchr(c->name, ' ')) {
            snprintf(err, errlen, "%s:%d: a check's name is one word", path, lineno);
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

