/* A recording's console that takes typed input (klab boot --record DIR --console-input).
 *
 * QEMU's record/replay logs how many bytes of each console write the chardev took and every byte the guest
 * read (replay.rst, "character devices"); the replay takes both from the log. A socket chardev takes nothing
 * while no client is connected and part of a write when its client lags, which a replay cannot reproduce
 * ("Missing character write event in the replay log"). So a recording's console is QEMU's pipe chardev on
 * two FIFOs klab makes, RUN/console.in and RUN/console.out, which take every byte as long as someone drains
 * console.out: the supervisor does, into console.log and to every client of RUN/console.sock (a socket of
 * klab's own, owner-only in the private run-state folder), and it writes what the clients type into
 * console.in, which QEMU records as the guest's input. A client that cannot keep up loses output, never the
 * guest: the log keeps all of it. */
#ifndef KLAB_CONSOLE_RELAY_H
#define KLAB_CONSOLE_RELAY_H

#include <stddef.h>

struct console_relay;

/* The two FIFOs, before QEMU starts (its -chardev pipe,path=RUN/console opens both). 0, or -1 with err. */
int console_relay_fifos(const char *run_dir, char *err, size_t errlen);

/* Once QEMU has opened them: the relay, listening on RUN/console.sock; NULL with err. */
struct console_relay *console_relay_open(const char *run_dir, char *err, size_t errlen);

/* Moves what is there (waiting up to timeout_ms for something to move). */
void console_relay_pump(struct console_relay *r, int timeout_ms);

/* Drains what QEMU still wrote, then closes everything (the FIFOs and socket stay for finish to remove). */
void console_relay_close(struct console_relay *r);

#endif
