/* --svg FILE of klab vtop, ptdump and ptdiff: libklab draws, this writes and says so. */
#ifndef KLAB_CMD_PICTURE_H
#define KLAB_CMD_PICTURE_H

#include "run/stub.h"

/* The walk drawn to path ("-": stdout): 0, or 1 after one line. */
int picture_walk(const char *path, const struct klab_walk *w, const char *label);
/* now's map (with what changed since before, when not NULL) over [lo, hi] (0, 0: all) to path, its rows named
 * from t's kernel (t may be NULL: two snapshots, no VM). 0, or 1 after one line. */
int picture_map(const char *path, const struct klab_ptsnap *now, const struct klab_ptsnap *before, unsigned flags,
                uint64_t lo, uint64_t hi, const struct vm_target *t, const char *title);

#endif
