/* The supervisor of one VM: starts it through its backend, tells the user where the stub is, waits for its
 * end however it comes (powered off, panic, klab stop, a signal), and then removes what must not outlive it
 * and records why it ended (<run dir>/exit). One loop for every backend and for foreground or --detach. */
#ifndef KLAB_SUPERVISOR_H
#define KLAB_SUPERVISOR_H

#include "run/boot_plan.h"

/* klab boot's exit status: 0 (ended normally, or detached and running), 1 (did not start), 2 (QEMU failed),
 * 3 (the guest panicked). The caller holds the VM folder's lock (the supervisor inherits it). */
int supervise(struct boot_plan *p);

#endif
