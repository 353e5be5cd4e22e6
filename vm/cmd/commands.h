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
int cmd_dump(int argc, char **argv);
int cmd_drgn(int argc, char **argv);
int cmd_crash(int argc, char **argv);

#endif
