/* A task's `checks` file (in the task folder), which `klab exam grade` runs in the grading VM:
 *   program = myhello-test.c                         a user-space test, built static, at /bin/<name> in the guest
 *   check NAME : run COMMAND                          passes when COMMAND exits 0
 *   check NAME : output COMMAND = TEXT                passes when COMMAND exits 0 and prints TEXT
 *   check NAME : console TEXT                         passes when the console (dmesg included) shows TEXT
 * The parser is fuzzed (tests/fuzz/fuzz_text.c): a task folder may come from anyone. */
#ifndef KLAB_EXAM_CHECKS_H
#define KLAB_EXAM_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

enum check_kind { CHECK_RUN, CHECK_OUTPUT, CHECK_CONSOLE };

struct check {
    char *name, *command, *expect;
    enum check_kind kind;
    bool passed;
    char *detail;
};

#define MAX_CHECKS 32

struct task_checks {
    char *program;
    struct check c[MAX_CHECKS];
    unsigned n;
};

/* 0, or -1 with err naming the file and line. */
int checks_load(const char *path, struct task_checks *t, char *err, size_t errlen);
int checks_parse(const char *text, const char *path, struct task_checks *t, char *err, size_t errlen);
void checks_free(struct task_checks *t);

#endif
