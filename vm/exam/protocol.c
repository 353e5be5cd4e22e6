/* vm/exam/protocol.h. */
#define _GNU_SOURCE
#include "exam/protocol.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

int protocol_listen(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (fd < 0 || strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    chmod(path, 0666);   /* everyone may ask; the controller decides by SO_PEERCRED */
    return fd;
}

bool protocol_answers(const char *path)
{
    int fd = connect_to(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

bool protocol_read(int fd, char *line, size_t len, uid_t *peer)
{
    struct ucred cred;
    socklen_t clen = sizeof cred;
    ssize_t n = read(fd, line, len - 1);
    if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
        return false;
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    *peer = cred.uid;
    return true;
}

void protocol_reply(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0 && write(fd, s, strlen(s)) < 0) {
        /* the client went away: nothing to tell */
    }
    va_end(ap);
    free(s);
}

int protocol_request(const char *dir, const char *request)
{
    char *ctl = path_join(dir, "control.sock");
    int fd = connect_to(ctl);
    if (fd < 0) {
        klab_error("exam: no room controller answers at %s (is `klab exam run` running?)", ctl);
        free(ctl);
        return 1;
    }
    free(ctl);
    if (write(fd, request, strlen(request)) < 0 || shutdown(fd, SHUT_WR) != 0) {
        klab_error("exam: cannot talk to the controller: %s", strerror(errno));
        close(fd);
        return 1;
    }
    char buf[4096];
    ssize_t n;
    int rc = 0;
    bool first = true;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (first && !strncmp(buf, "error: ", 7)) {
            fprintf(stderr, "klab: exam: %.*s", (int)(n - 7), buf + 7);
            rc = 1;
        } else if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
            rc = 1;
        }
        first = false;
    }
    close(fd);
    return rc;
}
