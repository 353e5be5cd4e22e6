/* A minimal test harness: each TEST is a function; CHECK records a failure with its line and goes on.
 * Output is one line per test ("ok - name" / "not ok - name: why" / "skip - name: why"), read by
 * tests/run.sh, which counts skips apart. */
#ifndef KLAB_CHECK_H
#define KLAB_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_in_test;
static const char *check_skip_reason;   /* SKIP(why): the test could not run here; shown, never "ok" */
static int check_tests_failed, check_tests_run;

#define CHECK(cond)                                                                                   \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                 \
            check_failures_in_test++;                                                                 \
        }                                                                                             \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                            \
    do {                                                                                              \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);              \
        if (va_ != vb_) {                                                                             \
            fprintf(stderr, "  %s:%d: %s == %s failed: 0x%llx != 0x%llx\n", __FILE__, __LINE__, #a, #b, \
                    va_, vb_);                                                                        \
            check_failures_in_test++;                                                                 \
        }                                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                               \
    do {                                                                                              \
        const char *sa_ = (a), *sb_ = (b);                                                            \
        if (!sa_ || !sb_ || strcmp(sa_, sb_)) {                                                       \
            fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, \
                    sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                      \
            check_failures_in_test++;                                                                 \
        }                                                                                             \
    } while (0)

#define SKIP(why)                                                                                     \
    do {                                                                                              \
        check_skip_reason = (why);                                                                    \
        return;                                                                                       \
    } while (0)

#define RUN(test)                                                                                     \
    do {                                                                                              \
        check_failures_in_test = 0;                                                                   \
        check_skip_reason = NULL;                                                                     \
        test();                                                                                       \
        check_tests_run++;                                                                            \
        if (check_skip_reason && !check_failures_in_test) {                                           \
            printf("skip - %s: %s\n", #test, check_skip_reason);                                      \
        } else if (check_failures_in_test) {                                                                 \
            check_tests_failed++;                                                                     \
            printf("not ok - %s\n", #test);                                                           \
        } else {                                                                                      \
            printf("ok - %s\n", #test);                                                               \
        }                                                                                             \
        fflush(stdout);                                                                               \
    } while (0)

#define CHECK_DONE() (check_tests_failed ? 1 : 0)

#endif
