/* A reset that waits for a build: `klab reset --build CMD` signals the supervisor at once and runs CMD while
 * the VM is restored; the supervisor sends the --add files (or packs the image again) only once CMD is done.
 * The hold is a file in the VM's run-state folder (owner-only, machine/paths.h) naming the waiting klab's pid:
 * it ends when the file goes or that process does. */
#ifndef KLAB_RESET_HOLD_H
#define KLAB_RESET_HOLD_H

#include <stdbool.h>
#include <sys/types.h>

/* The hold for pid, made new (O_EXCL, never through a link). 0, or -1 with errno. */
int reset_hold_create(const char *run_dir, pid_t pid);
void reset_hold_release(const char *run_dir);
/* There is a hold (its process alive). */
bool reset_hold_present(const char *run_dir);
/* Until there is no hold (or its process is gone), a stop cuts the wait short, or timeout_ms passed: false
 * then. */
bool reset_hold_wait(const char *run_dir, int timeout_ms);

#endif
