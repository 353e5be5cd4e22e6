/* DIR/room.state: what the controller tells the grader (and anyone in the room) about the room — its name,
 * kernel, architecture, accelerator and task — as key=value lines (vm/util/kv.h). */
#include "exam/exam.h"
#include "util/kv.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int exam_room_state_write(const char *dir, const struct exam_room_state *s)
{
    char *path = path_join(dir, "room.state");
    char *text = xasprintf("name=%s\nkernel=%s\narch=%s\naccel=%s\ntask=%s\n", s->name, s->kernel, s->arch, s->accel,
                           s->task);
    int rc = write_text_file(path, text);
    chmod(path, 0644);
    free(path);
    free(text);
    return rc;
}

int exam_room_state_load(const char *dir, struct exam_room_state *s)
{
    memset(s, 0, sizeof *s);
    char *path = path_join(dir, "room.state");
    char *text = read_text_file(path);
    if (!text) {
        klab_error("exam: %s is not a room folder (no room.state; klab exam run makes one)", dir);
        free(path);
        return -1;
    }
    struct kv_reader rd;
    kv_begin(&rd, text, KV_NO_COMMENTS);
    char *l, *eq;
    while (kv_next(&rd, '=', &l, &eq)) {
        if (!eq)
            continue;
        char *dst = !strcmp(l, "name") ? s->name : !strcmp(l, "kernel") ? s->kernel : !strcmp(l, "arch") ? s->arch
                  : !strcmp(l, "accel") ? s->accel : !strcmp(l, "task") ? s->task : NULL;
        size_t cap = !strcmp(l, "task") ? sizeof s->task : !strcmp(l, "arch") || !strcmp(l, "accel") ? 16 : 64;
        if (dst)
            snprintf(dst, cap, "%s", eq);
    }
    free(text);
    free(path);
    if (!s->name[0] || !s->kernel[0] || !s->task[0] || !s->arch[0] || !s->accel[0]) {
        klab_error("exam: %s/room.state is incomplete", dir);
        return -1;
    }
    return 0;
}
