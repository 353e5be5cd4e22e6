/* Folders that hold a user's private state (run state, port locks): opened without following symlinks and
 * checked on the opened descriptor, as OpenSSH checks ~/.ssh (auth2-pubkeyfile.c safe_path) and tmux its
 * socket folder (tmux.c expand_paths / server's check of the socket directory).
 *
 * A folder is private when it is a real folder (not a symlink), owned by the user, and writable by nobody
 * else; every folder above it is owned by root or the user, and sticky when others may write it (as /tmp
 * and /dev/shm are: there only a file's owner can rename or remove it). After that check on an opened
 * descriptor, nobody but the user and root can change what is inside, so paths under it are safe to use. */
#ifndef KLAB_PRIVATE_DIR_H
#define KLAB_PRIVATE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Opens PATH (created 0700 with its missing parents when `create`) as a private folder of the calling user.
 * Returns an O_DIRECTORY descriptor, or -1 with one line of reason in err (errno ENOENT when it is missing
 * and not created). */
int private_dir_open(const char *path, bool create, char *err, size_t errlen);

/* The same for NAME inside an opened private folder (openat, O_NOFOLLOW). */
int private_subdir_open(int parent, const char *name, bool create, char *err, size_t errlen);

/* Why a stat'ed folder is not private to `uid` (NULL when it is): pure, for the checks above and tests. */
const char *private_dir_problem(const struct stat *st, uid_t uid);

/* Why a folder above a private one is unsafe (NULL when safe): owned by someone other than root or uid,
 * or writable by others without the sticky bit. */
const char *ancestor_problem(const struct stat *st, uid_t uid);

/* A file some other party could have planted (a script gdb would run): safe when it is a regular file or
 * folder owned by root or uid, and neither it nor its folder is writable by group or others. A symlink is
 * judged by the file it leads to (its realpath), checked the same way. */
bool trusted_path(const char *path, uid_t uid);

#endif
