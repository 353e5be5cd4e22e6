/* Copying out of folders someone else controls (a candidate's workspace, their build output) without being
 * led elsewhere: no symlink is followed, only regular files and folders are copied, and a file its author
 * does not own (a hard link to the proctor's file) is left out. Every name is opened relative to an
 * opened folder with O_NOFOLLOW, so swapping a name for a link between check and use changes nothing. */
#ifndef KLAB_UNTRUSTED_COPY_H
#define KLAB_UNTRUSTED_COPY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct copy_rules {
    bool check_author;   /* files must belong to `author` (a candidate with a Unix user) */
    uid_t author;
    uid_t uid;           /* owner of the copies */
    gid_t gid;
    uint64_t max_bytes;  /* in all; the rest is left out */
};

/* SRC's tree into DST (created): symlinks copied as symlinks, devices, FIFOs and sockets left out. What was
 * left out is listed in *skipped (malloc'ed, "" when nothing). 0, or -1 when SRC cannot be opened as a
 * folder (it is a symlink, or missing). */
int copy_untrusted_tree(const char *src, const char *dst, const struct copy_rules *r, char **skipped);

/* One file NAME inside the opened folder DIRFD to DST (created, mode 0644, the caller's): 0, or -1 when
 * NAME is not a regular file (a symlink included) or breaks the rules. */
int copy_untrusted_file(int dirfd, const char *name, const char *dst, const struct copy_rules *r);

#endif
