/* The grade's verdicts and its report (vm/exam/report.h). */
#define _GNU_SOURCE
#include "exam/report.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check NAME's exit status and output, as the guest hook marked them on the console; -1 if it never ran. */
static int check_result(const char *console, const char *name, char **output)
{
    char *mark = xasprintf("KLAB-CHECK %s rc=", name), *prefix = xasprintf("KLAB-OUT %s: ", name);
    int rc = -1;
    char *out = strdup("");
    char *copy = strdup(console);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        line[strcspn(line, "\r")] = '\0';
        if (!strncmp(line, mark, strlen(mark)))
            rc = atoi(line + strlen(mark));
        else if (!strncmp(line, prefix, strlen(prefix))) {
            char *n = xasprintf("%s%s%s", out, *out ? "\n" : "", line + strlen(prefix));
            free(out);
            out = n;
        }
    }
    free(copy);
    free(mark);
    free(prefix);
    *output = out;
    return rc;
}

static void judge_one(struct check *c, const struct grade_result *r)
{
    char *output = NULL;
    if (!r->built) {
        c->detail = xasprintf("the module did not build: %s", r->build_error);
    } else if (!r->console || !strstr(r->console, "KLAB-GRADE-END")) {
        c->detail = strdup(r->vm_timed_out ? "the grading VM did not finish within 180 s"
                                           : "the grading VM ended before the checks finished (panic?)");
    } else if (c->kind == CHECK_CONSOLE) {
        c->passed = strstr(r->console, c->expect) != NULL;
        c->detail = xasprintf(c->passed ? "the console shows \"%s\"" : "the console never shows \"%s\"", c->expect);
    } else {
        int rc = check_result(r->console, c->name, &output);
        c->passed = rc == 0 && (c->kind == CHECK_RUN || strstr(output, c->expect) != NULL);
        c->detail = c->kind == CHECK_RUN ? xasprintf("`%s` exited %d%s%s", c->command, rc, *output ? ": " : "", output)
                                         : xasprintf("`%s` exited %d and printed \"%s\" (want \"%s\")", c->command,
                                                     rc, output, c->expect);
    }
    free(output);
}

void grade_judge(struct task_checks *t, struct grade_result *r)
{
    r->passed = 0;
    for (unsigned i = 0; i < t->n; i++) {
        judge_one(&t->c[i], r);
        r->passed += t->c[i].passed;
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void report_text(FILE *f, const struct exam_room_state *room, const char *candidate, const char *cand_dir,
                        const struct task_checks *t, const struct grade_result *r)
{
    fprintf(f, "klab exam report: room %s, candidate %s, task %s\nmodule: %s\n\n", room->name, candidate, room->task,
            r->built ? r->ko : "did not build");
    for (unsigned i = 0; i < t->n; i++)
        fprintf(f, "%-4s %-12s %s\n", t->c[i].passed ? "PASS" : "FAIL", t->c[i].name, t->c[i].detail);
    fprintf(f, "\n%u of %u checks passed; console: %s/grade-console.log\n", r->passed, t->n, cand_dir);
}

static void report_json(FILE *j, const struct exam_room_state *room, const char *candidate, const char *cand_dir,
                        const struct task_checks *t, const struct grade_result *r)
{
    fprintf(j, "{\"room\": ");
    json_string(j, room->name);
    fprintf(j, ", \"candidate\": ");
    json_string(j, candidate);
    fprintf(j, ", \"module_built\": %s, \"build_error\": ", r->built ? "true" : "false");
    json_string(j, r->build_error ? r->build_error : "");
    fprintf(j, ", \"checks\": [");
    for (unsigned i = 0; i < t->n; i++) {
        const struct check *c = &t->c[i];
        fprintf(j, "%s{\"name\": ", i ? ", " : "");
        json_string(j, c->name);
        fprintf(j, ", \"passed\": %s, \"detail\": ", c->passed ? "true" : "false");
        json_string(j, c->detail);
        fprintf(j, "}");
    }
    fprintf(j, "], \"passed\": %u, \"total\": %u, \"console_log\": ", r->passed, t->n);
    char *clog = path_join(cand_dir, "grade-console.log");
    json_string(j, clog);
    free(clog);
    fprintf(j, "}\n");
}

/* A report made in memory by one of the two writers above. */
typedef void (*report_writer)(FILE *, const struct exam_room_state *, const char *, const char *,
                              const struct task_checks *, const struct grade_result *);

static char *render(report_writer w, const struct exam_room_state *room, const char *candidate, const char *cand_dir,
                    const struct task_checks *t, const struct grade_result *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    w(f, room, candidate, cand_dir, t, r);
    fclose(f);
    return text;
}

int grade_report(const struct exam_room_state *room, const char *candidate, const char *cand_dir,
                 const struct task_checks *t, const struct grade_result *r)
{
    /* Both reports land with write_text_file: the candidate owns that folder, and a report.txt they made a
     * symlink to /etc/passwd must be replaced, never written through. */
    char *txt = path_join(cand_dir, "report.txt"), *json = path_join(cand_dir, "report.json");
    char *ftext = render(report_text, room, candidate, cand_dir, t, r);
    char *jtext = render(report_json, room, candidate, cand_dir, t, r);
    int rc = r->passed == t->n ? 0 : 3;
    if (!ftext || !jtext) {
        klab_error("exam grade: out of memory");
        rc = 1;
    } else if (write_text_file(txt, ftext) != 0 || write_text_file(json, jtext) != 0) {
        klab_error("exam grade: cannot write the report in %s: %s", cand_dir, strerror(errno));
        rc = 1;
    } else {
        fputs(ftext, stdout);
    }
    free(ftext);
    free(jtext);
    free(txt);
    free(json);
    return rc;
}
