/* vm/run/console_relay.c against FIFOs and a socket made here, with this test playing QEMU's part (its pipe
 * chardev opens console.in and console.out O_RDWR): the guest's output reaches console.log and a client, a
 * client's typed line reaches the guest one byte per echo, the socket is the owner's alone, and a
 * console.out that is not klab's FIFO is refused. (The real recording: tests/integration/replay.sh.) */
#define _GNU_SOURCE
#include "check.h"
#include "run/console_relay.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[] = "/tmp/klab-test-relay-XXXXXX";

static int open_end(const char *name)
{
    char *p = path_join(dir, name);
    int fd = open(p, O_RDWR | O_NONBLOCK);
    free(p);
    return fd;
}

static int connect_client(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/console.sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Pumps for about ms milliseconds. */
static void pump_for(struct console_relay *r, int ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    while (now_ns() < end)
        console_relay_pump(r, 5);
}

/* What the "guest" has been given so far (the bytes in console.in). */
static size_t guest_read(int in, char *buf, size_t cap)
{
    ssize_t n = read(in, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

static void test_relay(void)
{
    char err[256];
    CHECK(console_relay_fifos(dir, err, sizeof err) == 0);
    int out = open_end("console.out"), in = open_end("console.in");   /* QEMU's ends */
    struct console_relay *r = console_relay_open(dir, err, sizeof err);
    CHECK(r && out >= 0 && in >= 0);
    if (!r)
        return;
    char *sock = path_join(dir, "console.sock");
    struct stat st;
    CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 077) == 0);
    int c = connect_client();
    CHECK(c >= 0);
    pump_for(r, 20);   /* accepts the client */

    /* The guest's output: into the log and to the client. */
    CHECK(write(out, "login: ", 7) == 7);
    pump_for(r, 20);
    char buf[64] = { 0 };
    CHECK(recv(c, buf, sizeof buf - 1, MSG_DONTWAIT) == 7 && !strcmp(buf, "login: "));
    char *log = path_join(dir, "console.log");
    char *text = read_text_file(log);
    CHECK_STR(text, "login: ");
    free(text);

    /* A line typed at once reaches the guest one byte at a time: the next only after the guest's echo. */
    CHECK(send(c, "ls\n", 3, 0) == 3);
    pump_for(r, 50);
    CHECK(guest_read(in, buf, sizeof buf) == 1 && buf[0] == 'l');
    pump_for(r, 50);   /* no echo yet: nothing more */
    CHECK(guest_read(in, buf, sizeof buf) == 0);
    CHECK(write(out, "l", 1) == 1);   /* the echo */
    pump_for(r, 50);
    CHECK(guest_read(in, buf, sizeof buf) == 1 && buf[0] == 's');
    pump_for(r, 300);   /* no echo (stty -echo): the next byte after 250 ms anyway */
    CHECK(guest_read(in, buf, sizeof buf) == 1 && buf[0] == '\n');

    /* A client that goes away is dropped; the guest's output still reaches the log. */
    close(c);
    pump_for(r, 20);
    CHECK(write(out, "bye\n", 4) == 4);
    console_relay_close(r);   /* drains what is left */
    text = read_text_file(log);
    CHECK(text && strstr(text, "login: lbye\n"));
    free(text);
    free(log);
    free(sock);
    close(out);
    close(in);
}

static void test_refuses_a_planted_end(void)
{
    char err[256];
    CHECK(console_relay_fifos(dir, err, sizeof err) == 0);
    char *p = path_join(dir, "console.out"), *target = path_join(dir, "elsewhere");
    CHECK(write_text_file(target, "x") == 0);
    unlink(p);
    CHECK(symlink(target, p) == 0);   /* someone's symlink where klab's FIFO was */
    struct console_relay *r = console_relay_open(dir, err, sizeof err);
    CHECK(r == NULL && strstr(err, "cannot set up the recording's console"));
    console_relay_close(r);
    unlink(p);
    CHECK(write_text_file(p, "") == 0);   /* a plain file */
    r = console_relay_open(dir, err, sizeof err);
    CHECK(r == NULL);
    console_relay_close(r);
    free(p);
    free(target);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    RUN(test_relay);
    RUN(test_refuses_a_planted_end);
    remove_tree(dir);
    return CHECK_DONE();
}
