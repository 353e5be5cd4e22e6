/* What a grading found, the verdict on each check, and the report beside the candidate's workspace
 * (report.txt for people, report.json for the proctor's tools). */
#ifndef KLAB_REPORT_H
#define KLAB_REPORT_H

#include "exam/checks.h"
#include "exam/exam.h"

#include <stdbool.h>

struct grade_result {
    bool built;            /* the module built, exactly one .ko */
    char *ko;              /* its copy, the grader's */
    char *build_error;     /* why not */
    char *console;         /* the grading VM's console, NULL if it never ran */
    bool vm_timed_out;
    unsigned passed;       /* checks passed (grade_judge) */
};

/* Sets each check's passed and detail from the result. */
void grade_judge(struct task_checks *t, struct grade_result *r);
/* Writes both reports and prints the text one: 0 all passed, 3 some failed, 1 not written. */
int grade_report(const struct exam_room_state *room, const char *candidate, const char *cand_dir,
                 const struct task_checks *t, const struct grade_result *r);

#endif
