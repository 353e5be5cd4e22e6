/* QEMU's human monitor (HMP) over the Unix socket in the run-state folder: `info status`, `quit`, and any
 * other command. */
#ifndef KLAB_MONITOR_H
#define KLAB_MONITOR_H

#include <stddef.h>

/* Connects, runs one command, returns its output (malloc'ed, prompt and echo removed) or NULL. */
char *monitor_command(const char *socket_path, const char *command, int timeout_ms);
/* The same, with descriptor fd passed along the command (SCM_RIGHTS), as `getfd NAME` wants it; fd -1: none. */
char *monitor_command_fd(const char *socket_path, const char *command, int fd, int timeout_ms);

/* Connects and waits for the monitor's greeting: once it answers, QEMU has finished setting up every
 * listening socket (the gdb stub included). 0 when ready within timeout_ms. */
int monitor_wait_ready(const char *socket_path, int timeout_ms);

#endif
