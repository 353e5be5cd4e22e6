#define _GNU_SOURCE
#include "run/monitor.h"

#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char prompt[] = "(qemu) ";

/* Retries until the socket exists and accepts, or the deadline passes. */
static int connect_until(const char *path, uint64_t deadline)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        close(fd);
        if (now_ns() >= deadline)
            return -1;
        sleep_ms(2);
    }
}

/* Appends to buf until it ends with the prompt (1), EOF or an error (-1), or the deadline (0). */
static int read_to_prompt(int fd, char **buf, size_t *len, uint64_t deadline)
{
    size_t cap = *len + 4096;
    *buf = realloc(*buf, cap);
    for (;;) {
        (*buf)[*len] = '\0';
        if (*len >= sizeof prompt - 1 && !strcmp(*buf + *len - (sizeof prompt - 1), prompt))
            return 1;
        uint64_t now = now_ns();
        if (now >= deadline)
            return 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if (*len + 1024 > cap)
            *buf = realloc(*buf, cap *= 2);
        ssize_t n = read(fd, *buf + *len, cap - *len - 1);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
    }
}

struct monitor_conn {
    int fd;
    char *buf;     /* what has come since the last command was sent */
    size_t len;
    bool greeted;  /* the greeting's prompt has come: commands may be sent */
};

/* One connection, or NULL (no socket yet, or one nobody accepts). */
static struct monitor_conn *conn_new(int fd)
{
    struct monitor_conn *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return NULL;
    }
    m->fd = fd;
    return m;
}

struct monitor_conn *monitor_connect(const char *socket_path)
{
    int fd = connect_until(socket_path, 0);
    return fd < 0 ? NULL : conn_new(fd);
}

int monitor_greeting(struct monitor_conn *m, int timeout_ms)
{
    if (m->greeted)
        return 1;
    int r = read_to_prompt(m->fd, &m->buf, &m->len, now_ns() + (uint64_t)timeout_ms * 1000000u);
    m->greeted = r > 0;
    return r;
}

struct monitor_conn *monitor_open(const char *socket_path, int timeout_ms)
{
    int fd = connect_until(socket_path, now_ns() + (uint64_t)timeout_ms * 1000000u);
    struct monitor_conn *m = fd < 0 ? NULL : conn_new(fd);
    if (m && monitor_greeting(m, timeout_ms) <= 0) {
        monitor_close(m);
        return NULL;
    }
    return m;
}

void monitor_close(struct monitor_conn *m)
{
    if (!m)
        return;
    close(m->fd);
    free(m->buf);
    free(m);
}

/* Drops the echoed command line and terminal escapes, keeps the output lines. */
static void tidy_output(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\033') {            /* ESC [ ... letter */
            if (p[1] == '[')
                for (p += 2; *p && !(*p >= '@' && *p <= '~'); p++)
                    ;
            if (!*p)
                break;
            continue;
        }
        if (*p != '\r')
            *o++ = *p;
    }
    *o = '\0';
    /* QEMU's readline echoes what it is sent, redrawing the line as it grows (the command's prefixes, one
     * after another, for a long command), and ends the echo with the newline; the output follows it. */
    char *nl = strchr(s, '\n');
    if (nl)
        memmove(s, nl + 1, strlen(nl + 1) + 1);
    size_t n = strlen(s);
    if (n >= sizeof prompt - 1 && !strcmp(s + n - (sizeof prompt - 1), prompt))
        s[n - (sizeof prompt - 1)] = '\0';
}

/* The command line, with fd attached when there is one (QEMU takes it from the message that carries the
 * command: monitor/hmp-cmds.c hmp_getfd, qemu_chr_fe_get_msgfd). */
static bool send_line(int sock, const char *line, int fd)
{
    struct iovec iov = { .iov_base = (void *)line, .iov_len = strlen(line) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)iov.iov_len;
}

char *monitor_command(const char *socket_path, const char *command, int timeout_ms)
{
    return monitor_command_fd(socket_path, command, -1, timeout_ms);
}

char *monitor_conn_command(struct monitor_conn *m, const char *command, int pass_fd, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    if (!m->greeted && monitor_greeting(m, timeout_ms) <= 0)
        return NULL;
    char *line = xasprintf("%s\n", command);
    bool sent = send_line(m->fd, line, pass_fd);
    free(line);
    m->len = 0;   /* the reply alone, so the greeting's (or the last reply's) prompt does not end it at once */
    if (!sent)
        return NULL;
    int r = read_to_prompt(m->fd, &m->buf, &m->len, deadline);
    /* `quit` answers by closing the connection, which is success too. */
    if (r <= 0 && strcmp(command, "quit"))
        return NULL;
    char *out = strndup(m->buf, m->len);
    tidy_output(out);
    m->len = 0;
    return out;
}

char *monitor_command_fd(const char *socket_path, const char *command, int pass_fd, int timeout_ms)
{
    int fd = connect_until(socket_path, now_ns() + 200000000u);
    struct monitor_conn *m = fd < 0 ? NULL : conn_new(fd);
    char *out = m ? monitor_conn_command(m, command, pass_fd, timeout_ms) : NULL;
    monitor_close(m);
    return out;
}
