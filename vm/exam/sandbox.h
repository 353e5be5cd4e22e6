/* Running code someone else wrote (an exam candidate's Makefile and Kbuild: make runs whatever `$(shell …)`
 * they contain) with no more rights than its author.
 *
 * The program runs in new mount, network, IPC and PID namespaces (a new user namespace too when klab is
 * not root): no network device but a down loopback, every mount read-only except one folder it may write
 * and a private /tmp, a folder it must not see (the exam room: the other candidates, the control socket)
 * covered by an empty tmpfs, its own /proc, no new privileges (PR_SET_NO_NEW_PRIVS), and, when klab is
 * root, the Unix user given (the candidate's, or nobody). Folders it must read whose parents others cannot
 * search (a root's ~/.cache/klab kernel tree) are shown at their own path through a tmpfs over the private
 * parent, read-only. */
#ifndef KLAB_SANDBOX_H
#define KLAB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct sandbox {
    const char *write_dir;          /* the one folder it may write; also its working folder and HOME */
    const char *const *read_dirs;   /* folders it must be able to read at their own path */
    size_t nread;
    const char *hide_dir;           /* shown as an empty folder (write_dir inside it excepted); NULL: none */
    uid_t uid;                      /* who it runs as when klab is root */
    gid_t gid;
};

/* Runs argv (argv[0] an absolute path) with envp in the sandbox, stdin /dev/null, stdout and stderr to
 * `log` (created by the caller's user). Its exit status; -2 after timeout_s (everything in it killed); -1
 * when it could not start. A sandbox that cannot be set up says why in the log ("klab sandbox: …") and
 * exits 125: the program never runs outside it. */
int sandbox_run(const struct sandbox *sb, char *const argv[], char *const envp[], const char *log, int timeout_s);

#endif
