/* vm/util/util.c sleep_ms_unless: the supervisor's wait on a detached VM sleeps in it, so a stop or reset
 * signal whose handler sets the flag must end the sleep there, not after the rest of its period (sleep_ms
 * sleeps on across EINTR). The margins are seconds against a 20 ms timer: no figure is measured here. */
#define _GNU_SOURCE
#include "check.h"
#include "util/util.h"

#include <signal.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t flag;

static void on_alarm(int sig)
{
    (void)sig;
    flag = 1;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 20 ms from now, SIGALRM (no SA_RESTART, like the supervisor's handlers). */
static void alarm_soon(void)
{
    struct sigaction sa = { .sa_handler = on_alarm };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { .it_value = { 0, 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static void test_a_set_flag_ends_the_sleep(void)
{
    flag = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_soon();
    sleep_ms_unless(6000, &flag);
    CHECK(flag == 1);
    CHECK(seconds_since(&t0) < 3.0);   /* ended by the signal, not by its 6 s */
}

static void test_a_flag_set_before_does_not_sleep(void)
{
    flag = 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sleep_ms_unless(6000, &flag);
    CHECK(seconds_since(&t0) < 3.0);
}

/* Another signal (its handler leaves the flag alone) does not end it: the sleep goes on to its period. */
static volatile sig_atomic_t other;
static void on_other(int sig)
{
    (void)sig;
    other = 1;
}

static void test_another_signal_sleeps_on(void)
{
    flag = 0;
    struct sigaction sa = { .sa_handler = on_other };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { .it_value = { 0, 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sleep_ms_unless(300, &flag);
    CHECK(other == 1);
    CHECK(seconds_since(&t0) >= 0.29);
}

int main(void)
{
    RUN(test_a_set_flag_ends_the_sleep);
    RUN(test_a_flag_set_before_does_not_sleep);
    RUN(test_another_signal_sleeps_on);
    return CHECK_DONE();
}
