/* What `klab exam` commands share: the room's state file the controller writes (DIR/room.state) and the
 * helpers both the controller and the grader use. */
#ifndef KLAB_EXAM_H
#define KLAB_EXAM_H

#include <stdbool.h>

struct exam_room_state {
    char name[64], kernel[64], arch[16], accel[16];
    char task[4096];
};

int exam_room_state_write(const char *dir, const struct exam_room_state *s);
int exam_room_state_load(const char *dir, struct exam_room_state *s);   /* 0, or -1 after saying why */
int exam_grade(const char *dir, const char *candidate);                  /* 0 all passed, 3 some failed, 1 error */

#endif
