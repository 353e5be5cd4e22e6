/* klab's subcommands; each returns the process exit status. */
#ifndef KLAB_COMMANDS_H
#define KLAB_COMMANDS_H

int cmd_boot(int argc, char **argv);
int cmd_gdb(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_rootfs(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_regs(int argc, char **argv);
int cmd_vtop(int argc, char **argv);
int cmd_ptdump(int argc, char **argv);
int cmd_exam(int argc, char **argv);

/* Shared by the commands that act on one running VM: NAME if given, else the only one running.
 * Prints one clear line and returns NULL when that is not possible. malloc'ed. */
char *resolve_vm_name(const char *given);

#endif
