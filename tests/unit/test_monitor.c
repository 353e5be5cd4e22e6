/* vm/run/monitor.c against a stand-in for QEMU's human monitor on a Unix socket (a child process): like QEMU
 * it listens before its main loop runs (here: 150 ms later it starts accepting), serves one connection at a
 * time, greets each with a banner and "(qemu) ", echoes what it is sent (readline) and ends every answer with
 * the prompt. The stand-in counts the connections it accepted, which is what the restore's one connection is
 * about: a waiter that gave up and connected again would leave dead ones in its listen queue. */
#define _GNU_SOURCE
#include "check.h"
#include "run/monitor.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char sock_path[108];

static void say(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) < 0)
        _exit(1);
}

/* One client until it goes: each line echoed, then "answer N: LINE" or, for "connections", how many
 * connections were accepted so far; "close" ends the connection without an answer. */
static void serve(int c, int accepted)
{
    char line[256], reply[512];
    size_t n = 0;
    say(c, "QEMU stand-in monitor - type 'help' for more information\r\n(qemu) ");
    for (int answers = 0;;) {
        char ch;
        if (read(c, &ch, 1) != 1)
            return;
        if (ch != '\n') {
            if (n < sizeof line - 1)
                line[n++] = ch;
            continue;
        }
        line[n] = '\0';
        n = 0;
        if (!strcmp(line, "close"))
            return;
        snprintf(reply, sizeof reply, "%s\r\n", line);   /* the echo */
        say(c, reply);
        if (!strcmp(line, "connections"))
            snprintf(reply, sizeof reply, "%d\r\n(qemu) ", accepted);
        else
            snprintf(reply, sizeof reply, "answer %d: %s\r\n(qemu) ", ++answers, line);
        say(c, reply);
    }
}

static pid_t start_stand_in(int main_loop_delay_ms)
{
    snprintf(sock_path, sizeof sock_path, "/tmp/klab-test-monitor-%d.sock", (int)getpid());
    unlink(sock_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, sock_path);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 8) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec d = { main_loop_delay_ms / 1000, main_loop_delay_ms % 1000 * 1000000L };
        nanosleep(&d, NULL);
        for (int accepted = 0;;) {
            int c = accept(l, NULL, NULL);
            if (c < 0)
                _exit(0);
            serve(c, ++accepted);
            close(c);
        }
    }
    close(l);
    return pid;
}

static void stop_stand_in(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sock_path);
}

/* The wait for the greeting keeps its one connection while the stand-in's main loop has not started: the
 * greeting comes on it, the commands after it go through it, and the stand-in accepted it alone. */
static void test_one_connection_from_greeting_to_the_last_command(void)
{
    pid_t pid = start_stand_in(150);
    CHECK(pid > 0);
    struct monitor_conn *m = monitor_connect(sock_path);
    CHECK(m != NULL);
    int waits = 0, r = 0;
    while (m && (r = monitor_greeting(m, 20)) == 0 && waits < 500)
        waits++;
    CHECK(r == 1);
    CHECK(waits >= 3);   /* it did wait (150 ms of 20 ms waits) on the same connection */
    char *a = m ? monitor_conn_command(m, "info status", -1, 2000) : NULL;
    char *b = m ? monitor_conn_command(m, "migrate_incoming fd:3", -1, 2000) : NULL;
    char *n = m ? monitor_conn_command(m, "connections", -1, 2000) : NULL;
    CHECK_STR(a, "answer 1: info status\n");   /* echo and prompt gone, \r dropped */
    CHECK_STR(b, "answer 2: migrate_incoming fd:3\n");
    CHECK_STR(n, "1\n");
    free(a);
    free(b);
    free(n);
    monitor_close(m);
    stop_stand_in(pid);
}

/* monitor_command: a connection of its own per command; the stand-in sees each. */
static void test_one_shot_commands(void)
{
    pid_t pid = start_stand_in(0);
    CHECK(pid > 0);
    char *a = monitor_command(sock_path, "stop", 2000);
    char *n = monitor_command(sock_path, "connections", 2000);
    CHECK_STR(a, "answer 1: stop\n");
    CHECK_STR(n, "2\n");
    free(a);
    free(n);
    struct monitor_conn *ready = monitor_open(sock_path, 2000);
    CHECK(ready != NULL);   /* greeted within the time */
    monitor_close(ready);
    stop_stand_in(pid);
}

/* A connection that ends: -1 from the greeting wait (QEMU is ending), NULL for a command; no socket: NULL. */
static void test_ended_and_missing(void)
{
    pid_t pid = start_stand_in(60000);   /* never gets to accept */
    struct monitor_conn *q = monitor_connect(sock_path);
    CHECK(q != NULL);
    CHECK(q && monitor_greeting(q, 20) == 0);
    stop_stand_in(pid);   /* its listening socket goes, and the queued connection with it */
    CHECK(q && monitor_greeting(q, 2000) == -1);
    monitor_close(q);

    pid = start_stand_in(0);
    struct monitor_conn *m = monitor_open(sock_path, 2000);
    CHECK(m != NULL);
    char *out = m ? monitor_conn_command(m, "close", -1, 2000) : NULL;
    CHECK(out == NULL);
    monitor_close(m);
    stop_stand_in(pid);
    CHECK(monitor_connect(sock_path) == NULL);
    CHECK(monitor_open(sock_path, 50) == NULL);
    CHECK(monitor_command(sock_path, "info status", 50) == NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_one_connection_from_greeting_to_the_last_command);
    RUN(test_one_shot_commands);
    RUN(test_ended_and_missing);
    return CHECK_DONE();
}
