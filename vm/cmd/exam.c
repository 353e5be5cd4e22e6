/* klab exam: run an exam room (exam/controller.c), talk to its controller (exam/protocol.c), grade a
 * candidate (exam/grade.c). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "exam/controller.h"
#include "exam/exam.h"
#include "exam/protocol.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static const char more_usage[] =
    "       klab exam status DIR\n"
    "       klab exam reset DIR CANDIDATE\n"
    "       klab exam stop DIR\n"
    "       klab exam grade DIR CANDIDATE";

static const char about[] =
    "Runs an exam room: one private VM per candidate (no network, gdb stub on a Unix socket only that\n"
    "candidate can open), reset to a pristine VM on demand, all stopped when the time limit is up.\n"
    "`run` stays in the foreground as the room's controller (DIR default: ./exam-NAME); status, reset\n"
    "and stop talk to it. `grade` builds the candidate's module from their work/ folder, boots it in a\n"
    "fresh VM, runs the task's checks and writes report.txt and report.json in their folder (exit 0: all\n"
    "passed, 3: some failed). See docs/exam-proctor.md and docs/exam-candidate.md.";

struct run_options {
    const char *dir;
};

static const struct opt run_options[] = {
    OPT_STR("dir", "DIR", "the room's folder (default: ./exam-NAME)", struct run_options, dir),
    OPT_END,
};

const struct opt_cmd exam_command = {
    .name = "exam run", .args = "ROOMFILE", .opts = run_options,
    .more_usage = more_usage, .about = about,
};

static int exam_run(int argc, char **argv)
{
    struct run_options o = { 0 };
    int first = opts_parse(&exam_command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    if (first == argc) {
        klab_error("exam run: give the room file (klab exam run ROOMFILE [--dir DIR])");
        return 2;
    }
    if (first + 1 < argc) {
        klab_error("exam run: unexpected '%s' (klab exam run ROOMFILE [--dir DIR])", argv[first + 1]);
        return 2;
    }
    struct controller c = { .listen_fd = -1 };
    c.self = realpath("/proc/self/exe", NULL);
    if (controller_prepare(&c, argv[first], o.dir) != 0)
        return 1;
    return controller_run(&c);
}

int cmd_exam(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        opts_usage(&exam_command, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "run"))
        return exam_run(argc - 1, argv + 1);
    if (!strcmp(sub, "status") && argc == 3)
        return protocol_request(argv[2], "status\n");
    if (!strcmp(sub, "stop") && argc == 3)
        return protocol_request(argv[2], "stop\n");
    if (!strcmp(sub, "grade") && argc == 4)
        return exam_grade(argv[2], argv[3]);
    if (!strcmp(sub, "reset") && argc == 4) {
        char *req = xasprintf("reset %s\n", argv[3]);
        int rc = protocol_request(argv[2], req);
        free(req);
        return rc;
    }
    klab_error("exam: unknown or incomplete command '%s' (see klab exam --help)", sub);
    return 2;
}
