/* klab's subcommands; each returns the process exit status. The table in cmd/commands.c names them for
 * main(), for the man pages (cmd/man.c) and for shell completion (cmd/complete.c), with the option table
 * that drives each one's parser and --help. */
#ifndef KLAB_COMMANDS_H
#define KLAB_COMMANDS_H

#include "util/opts.h"

#include <stddef.h>

#ifndef KLAB_VERSION   /* the Makefile's */
#define KLAB_VERSION "0"
#endif

struct klab_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const struct opt_cmd *opts;   /* its parser's table (exam: `exam run`'s) */
};

extern const struct klab_command klab_commands[];
extern const size_t klab_ncommands;
const struct klab_command *klab_command_find(const char *name);

int cmd_boot(int argc, char **argv);
int cmd_gdb(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_rootfs(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_regs(int argc, char **argv);
int cmd_vtop(int argc, char **argv);
int cmd_ptdump(int argc, char **argv);
int cmd_ptsnap(int argc, char **argv);
int cmd_ptdiff(int argc, char **argv);
int cmd_exam(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_drgn(int argc, char **argv);
int cmd_crash(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_replay(int argc, char **argv);
/* Hidden: what the bash completion (scripts/klab.bash) asks for. */
int cmd_complete(int argc, char **argv);
/* Hidden: klab(1) and klab-COMMAND(1) in roff, for the Makefile's man pages. */
int cmd_man(int argc, char **argv);

extern const struct opt_cmd boot_command, gdb_command, stop_command, reset_command, status_command, wait_command,
    rootfs_command, inspect_command, regs_command, vtop_command, ptdump_command, ptsnap_command, ptdiff_command, exam_command, dump_command,
    drgn_command, crash_command, fetch_command, replay_command;

#endif
