/* run/console_relay.h. */
#define _GNU_SOURCE
#include "run/console_relay.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum { MAX_CLIENTS = 8, PENDING_MAX = 16384 };

/* Typed input goes to the guest a byte at a time, the next one once the guest has answered the last (its
 * tty's echo) or after ECHO_WAIT_MS without an answer (no echo: a password prompt, `stty -echo`). Under
 * record, QEMU logs the bytes its serial port reads and hands them to the UART later, at the replay's next
 * event, but goes on reading the FIFO as long as the UART's 16-byte receive FIFO looked free (chardev/
 * char-fd.c sizes a read by the port's can_receive): a pasted line reaches the UART at once, and what does
 * not fit is an overrun the guest never sees ("ttyS0: N input overrun(s)"). One byte outstanding cannot. */
enum { ECHO_WAIT_MS = 250, INPUT_INTERVAL_MS = 2 };

struct console_relay {
    int out;                     /* RUN/console.out: what the guest writes */
    int in;                      /* RUN/console.in: what it reads */
    int log;                     /* RUN/console.log, appended */
    int listen;                  /* RUN/console.sock */
    int client[MAX_CLIENTS];     /* -1: free */
    char pending[PENDING_MAX];   /* typed, not yet given to the guest */
    size_t npending;
    uint64_t last_input_ns;
    bool awaiting_echo;          /* a byte went in and the guest has written nothing since */
};

int console_relay_fifos(const char *run_dir, char *err, size_t errlen)
{
    static const char *const ends[] = { "console.in", "console.out" };
    return make_fifos(run_dir, ends, 2, err, errlen);
}

/* A FIFO of run_dir, opened without following a symlink. O_RDWR never blocks on a FIFO (fifo(7)). */
static int open_fifo(const char *run_dir, const char *name)
{
    char *p = path_join(run_dir, name);
    int fd = open(p, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = EINVAL;
    }
    free(p);
    return fd;
}

/* RUN/console.sock, the owner's alone (the umask at bind decides a Unix socket's mode: unix(7)). */
static int listen_on(const char *run_dir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *p = path_join(run_dir, "console.sock");
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p);
    bool fits = n > 0 && (size_t)n < sizeof sa.sun_path;
    int fd = fits ? socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    unlink(p);
    mode_t mask = umask(077);
    int bound = fd >= 0 ? bind(fd, (struct sockaddr *)&sa, sizeof sa) : -1;
    umask(mask);
    if (fd >= 0 && (bound != 0 || listen(fd, 4) != 0)) {
        close(fd);
        fd = -1;
    }
    free(p);
    return fd;
}

struct console_relay *console_relay_open(const char *run_dir, char *err, size_t errlen)
{
    struct console_relay *r = calloc(1, sizeof *r);
    char *log = path_join(run_dir, "console.log");
    r->out = open_fifo(run_dir, "console.out");
    r->in = open_fifo(run_dir, "console.in");
    r->log = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    r->listen = listen_on(run_dir);
    for (int i = 0; i < MAX_CLIENTS; i++)
        r->client[i] = -1;
    free(log);
    if (r->out < 0 || r->in < 0 || r->log < 0 || r->listen < 0) {
        snprintf(err, errlen, "cannot set up the recording's console in %s: %s", run_dir, strerror(errno));
        console_relay_close(r);
        return NULL;
    }
    return r;
}

static void drop_client(struct console_relay *r, int i)
{
    close(r->client[i]);
    r->client[i] = -1;
}

/* The guest's output, to the log and to every client (one that would block is dropped: the log has it). */
static void from_guest(struct console_relay *r)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(r->out, buf, sizeof buf)) > 0) {
        r->awaiting_echo = false;
        if (write(r->log, buf, (size_t)n) != n)
            klab_error("console: cannot append to console.log: %s", strerror(errno));
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (r->client[i] >= 0 && send(r->client[i], buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
                drop_client(r, i);
    }
}

/* What client i typed, to the guest. */
static void from_client(struct console_relay *r, int i)
{
    char buf[1024];
    ssize_t n = recv(r->client[i], buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop_client(r, i);
        return;
    }
    size_t room = sizeof r->pending - r->npending, take = n > 0 ? ((size_t)n < room ? (size_t)n : room) : 0;
    memcpy(r->pending + r->npending, buf, take);
    r->npending += take;
    if (n > 0 && take < (size_t)n)
        klab_error("console: typed input faster than the guest reads it: %zu bytes dropped", (size_t)n - take);
}

/* The next byte of typed input, when the guest has taken the last. */
static void to_guest(struct console_relay *r)
{
    uint64_t now = now_ns(), since = now - r->last_input_ns;
    if (!r->npending || since < INPUT_INTERVAL_MS * 1000000ull ||
        (r->awaiting_echo && since < ECHO_WAIT_MS * 1000000ull))
        return;
    ssize_t n = write(r->in, r->pending, 1);
    if (n <= 0)
        return;   /* the FIFO is full: the guest is not reading; try again next time */
    memmove(r->pending, r->pending + n, r->npending - (size_t)n);
    r->npending -= (size_t)n;
    r->last_input_ns = now;
    r->awaiting_echo = true;
}

static void accept_clients(struct console_relay *r)
{
    int fd;
    while ((fd = accept4(r->listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        int i = 0;
        while (i < MAX_CLIENTS && r->client[i] >= 0)
            i++;
        if (i == MAX_CLIENTS)
            close(fd);
        else
            r->client[i] = fd;
    }
}

void console_relay_pump(struct console_relay *r, int timeout_ms)
{
    struct pollfd p[2 + MAX_CLIENTS] = { { .fd = r->out, .events = POLLIN }, { .fd = r->listen, .events = POLLIN } };
    for (int i = 0; i < MAX_CLIENTS; i++)
        p[2 + i] = (struct pollfd){ .fd = r->client[i], .events = POLLIN };   /* fd -1: ignored by poll */
    if (r->npending && timeout_ms > INPUT_INTERVAL_MS)
        timeout_ms = INPUT_INTERVAL_MS;
    int ready = poll(p, 2 + MAX_CLIENTS, timeout_ms);
    to_guest(r);
    if (ready <= 0)
        return;
    if (p[0].revents)
        from_guest(r);
    if (p[1].revents)
        accept_clients(r);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (r->client[i] >= 0 && p[2 + i].revents)
            from_client(r, i);
}

void console_relay_close(struct console_relay *r)
{
    if (!r)
        return;
    if (r->out >= 0 && r->log >= 0)
        from_guest(r);
    int fds[] = { r->out, r->in, r->log, r->listen };
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (r->client[i] >= 0)
            close(r->client[i]);
    free(r);
}
