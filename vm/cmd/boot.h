/* klab boot's start, shared with klab replay (vm/cmd/replay.c). */
#ifndef KLAB_CMD_BOOT_H
#define KLAB_CMD_BOOT_H

#include "run/boot_plan.h"

/* Resolves, plans and starts the VM o describes (as klab boot after its options): the exit status. */
int boot_start(struct boot_options *o);

#endif
