/* QEMU's human monitor (HMP) over the Unix socket in the run-state folder: `info status`, `quit`, and any
 * other command. */
#ifndef KLAB_MONITOR_H
#define KLAB_MONITOR_H

#include <stddef.h>

/* Connects, runs one command, returns its output (malloc'ed, prompt and echo removed) or NULL. */
char *monitor_command(const char *socket_path, const char *command, int timeout_ms);
/* The same, with descriptor fd passed along the command (SCM_RIGHTS), as `getfd NAME` wants it; fd -1: none. */
char *monitor_command_fd(const char *socket_path, const char *command, int fd, int timeout_ms);

/* One connection kept for several commands: QEMU's monitor socket serves one client at a time, and every new
 * connection costs a greeting, so a sequence (a snapshot's restore) goes through one. Nobody else reaches the
 * monitor while it is open. */
struct monitor_conn;
/* One attempt to connect (NULL: no socket yet, or it refused); the greeting is read later. */
struct monitor_conn *monitor_connect(const char *socket_path);
/* Waits up to timeout_ms for the greeting: 1 it came (QEMU's main loop runs, and every listening socket, the
 * gdb stub's included, is set up), 0 not yet, -1 the connection ended. A connection QEMU has not accepted yet
 * waits in its listen queue: it is kept, not made again. */
int monitor_greeting(struct monitor_conn *m, int timeout_ms);
/* Connects (retrying up to timeout_ms) and waits up to timeout_ms for the greeting; NULL if not. */
struct monitor_conn *monitor_open(const char *socket_path, int timeout_ms);
/* As monitor_command_fd, on the connection. */
char *monitor_conn_command(struct monitor_conn *m, const char *command, int fd, int timeout_ms);
void monitor_close(struct monitor_conn *m);

#endif
