/* An exam room, as the proctor declares it in a room file (key = value lines, # comments):
 *
 *   name       = demo                  VM names are exam-<name>-<candidate>
 *   kernel     = x86_64                a registered kernel (make kernel PROFILE=..., or debian-amd64)
 *   task       = ../labs/exam/myhello  the task folder, relative to the room file
 *   time_limit = 90m                   s, m or h; the controller stops every VM when it is up
 *   memory     = 256M                  per VM
 *   cpus       = 1                     per VM
 *   backend    = qemu                  qemu, or libvirt (each candidate's VM a transient domain)
 *   connect    = qemu:///session       libvirt URI (default qemu:///session: each candidate's own daemon)
 *   candidates = alice bob carol dave  when a name is a Unix user, that candidate's VM runs as that user
 */
#ifndef KLAB_ROOM_H
#define KLAB_ROOM_H

#include <stddef.h>
#include <stdint.h>

#define ROOM_MAX_CANDIDATES 64

struct room {
    char *name, *kernel, *task_dir, *backend, *connect;
    uint64_t time_limit_s, mem_bytes;
    unsigned cpus;
    char *candidates[ROOM_MAX_CANDIDATES];
    unsigned ncandidates;
};

/* Parses path; 0, or -1 with err saying which line is wrong. */
int room_load(const char *path, struct room *room, char *err, size_t errlen);
/* The same on a room file's text (PATH names it in errors; `task` is relative to its folder). */
int room_parse(const char *text, const char *path, struct room *room, char *err, size_t errlen);
void room_free(struct room *room);
/* "90m", "45s", "2h", or seconds. */
int room_parse_duration(const char *s, uint64_t *seconds);

#endif
