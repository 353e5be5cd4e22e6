/* The room's control socket (DIR/control.sock): one request line in, text out. The controller answers root
 * and its own user for everything, a candidate for `status` and for resetting their own VM only — it tells
 * them apart by SO_PEERCRED, never by anything the client says. */
#ifndef KLAB_PROTOCOL_H
#define KLAB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Listens on path (replacing a stale socket; mode 0666: everyone may ask). A descriptor, or -1. */
int protocol_listen(const char *path);
/* Someone answers at path: a room controller is running there. */
bool protocol_answers(const char *path);
/* Reads one request from an accepted connection: the line (NUL-terminated, no newline) and the peer's uid.
 * false when the client sent nothing or its credentials cannot be read. */
bool protocol_read(int fd, char *line, size_t len, uid_t *peer);
void protocol_reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The client: sends request to the controller of room DIR and prints its answer ("error: …" as one klab
 * error line). klab's exit status. */
int protocol_request(const char *dir, const char *request);

#endif
