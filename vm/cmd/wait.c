/* klab wait: until the console log shows a text (default: the init banner), the VM ends, or time runs out. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/spawn.h"
#include "util/util.h"

#include "rootfs/init_script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wait_options {
    const char *text;
    uint64_t timeout;
};

static const struct opt options[] = {
    OPT_STR("for", "TEXT", "the text to wait for (default: the init banner \"" KLAB_INIT_BANNER "\")",
            struct wait_options, text),
    OPT_CALL("timeout", 't', "SECONDS", "give up after that long (default 60)"),
    OPT_END,
};

const struct opt_cmd wait_command = {
    .name = "wait", .args = "[NAME]", .opts = options,
    .about = "Waits until the VM's console shows TEXT, then prints that line. Fails if the VM ends\n"
             "or panics first, or after the timeout.",
};

static int on_option(void *ctx, int id, const char *arg)
{
    struct wait_options *o = ctx;
    (void)id;   /* --timeout */
    return opts_number(arg, 1, 86400, &o->timeout, "--timeout wants seconds (1-86400)");
}

struct watch {
    const char *name, *log, *exit_file, *text;
    int rc;   /* 0 the text appeared (its line printed), 1 the VM ended first, -1 not yet */
};

static bool settled(void *ctx)
{
    struct watch *w = ctx;
    bool ended = file_exists(w->exit_file);   /* read before the log: the log is complete once this exists */
    char *con = read_text_file(w->log);
    char *hit = con ? strstr(con, w->text) : NULL;
    if (hit) {
        char *start = hit;
        while (start > con && start[-1] != '\n')
            start--;
        printf("%.*s\n", (int)strcspn(start, "\r\n"), start);
        w->rc = 0;
    } else if (ended) {
        char *why = read_text_file(w->exit_file);
        klab_error("VM '%s' ended before \"%s\" appeared: %s", w->name, w->text, why ? strtok(why, "\n") : "?");
        free(why);
        w->rc = 1;
    }
    free(con);
    return w->rc >= 0;
}

static int wait_for(const char *name, const struct wait_options *o)
{
    char *dir = runstate_dir_for(name);
    struct watch w = { name, path_join(dir, "console.log"), path_join(dir, "exit"), o->text, -1 };
    if (!wait_until((int)o->timeout * 1000, 20, settled, &w)) {
        klab_error("\"%s\" did not appear on the console of '%s' within %llu s (see %s)", o->text, name,
                   (unsigned long long)o->timeout, w.log);
        w.rc = 1;
    }
    free((char *)w.log);
    free((char *)w.exit_file);
    free(dir);
    return w.rc;
}

int cmd_wait(int argc, char **argv)
{
    struct wait_options o = { .text = KLAB_INIT_BANNER, .timeout = 60 };
    int first = opts_parse(&wait_command, argc, argv, on_option, &o);
    if (first <= 0)
        return opts_exit(first);
    if (runstate_check_root(false) < 0)
        return 1;
    /* A named VM may already have ended: its folder then still says why. */
    const char *given = first < argc ? argv[first] : NULL;
    char *given_dir = given && runstate_valid_name(given) ? runstate_dir_for(given) : NULL;
    char *name = given_dir && file_exists(given_dir) ? strdup(given) : resolve_vm_name(given);
    free(given_dir);
    if (!name)
        return 1;
    int rc = wait_for(name, &o);
    free(name);
    return rc;
}
