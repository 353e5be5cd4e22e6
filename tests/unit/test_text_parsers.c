/* klab's line readers (vm/util/kv.c) and the files read through them: run state, room files, checks. */
#define _GNU_SOURCE
#include "check.h"
#include "exam/checks.h"
#include "exam/room.h"
#include "run/runstate.h"
#include "util/kv.h"

#include <stdlib.h>

static void test_kv_lines(void)
{
    char text[] = "a = 1\n\n  # note\nb=two words # tail\nc\n";
    struct kv_reader r;
    kv_begin(&r, text, KV_ANY_COMMENTS);
    char *k, *v;
    CHECK(kv_next(&r, '=', &k, &v));
    CHECK_STR(k, "a");
    CHECK_STR(v, "1");
    CHECK_EQ_U64(r.lineno, 1);
    CHECK(kv_next(&r, '=', &k, &v));
    CHECK_STR(k, "b");
    CHECK_STR(v, "two words");
    CHECK_EQ_U64(r.lineno, 4);                   /* blank and comment lines are counted */
    CHECK(kv_next(&r, '=', &k, &v));
    CHECK_STR(k, "c");
    CHECK(v == NULL);                            /* no separator: the caller decides */
    CHECK(!kv_next(&r, '=', &k, &v));
}

static void test_kv_comment_modes(void)
{
    char a[] = "path=/tmp/x#y\n", b[] = "# c\nx = #y\n";
    struct kv_reader r;
    char *k, *v;
    kv_begin(&r, a, KV_NO_COMMENTS);
    CHECK(kv_next(&r, '=', &k, &v));
    CHECK_STR(v, "/tmp/x#y");                    /* run state: '#' is data */
    kv_begin(&r, b, KV_LINE_COMMENTS);
    CHECK(kv_next(&r, '=', &k, &v));
    CHECK_STR(v, "#y");                          /* checks: only whole-line comments */
    CHECK_EQ_U64(r.lineno, 2);
}

static void test_runstate(void)
{
    char text[] = "name=v\narch=arm64\nqemu_pid=42\nsupervisor_pid=41\ngdb=unix:/s/gdb.sock\ngdb_port=0\n"
                  "kernel=/k\nvmlinux=\nkaslr=1\nram_region=0x40000000 0x40000000 0x0\nbackend=libvirt\n"
                  "connect=qemu:///session\nmem_bytes=1073741824\ngdb=tcp:127.0.0.1:1\n";
    struct runstate rs = { .name = strdup("v"), .dir = strdup("/d") };
    CHECK(runstate_parse(text, &rs) == 0);
    CHECK_STR(rs.profile->arch, "arm64");
    CHECK_EQ_U64(rs.qemu_pid, 42);
    CHECK_STR(rs.gdb_listen, "tcp:127.0.0.1:1");  /* a key given twice: the last counts */
    CHECK(rs.vmlinux == NULL);                    /* empty means none */
    CHECK(rs.kaslr);
    CHECK_EQ_U64(rs.nram, 1);
    CHECK_EQ_U64(rs.ram[0].size, 0x40000000);
    CHECK(runstate_is_libvirt(&rs));
    runstate_free(&rs);

    char bad[] = "arch=arm64\nqemu_pid=1\ngdb=tcp:127.0.0.1:1\nbackend=xen\n";
    struct runstate r2 = { .name = strdup("v"), .dir = strdup("/d") };
    CHECK(runstate_parse(bad, &r2) == -1);        /* a backend klab does not know is refused */
    char missing[] = "arch=x86_64\ngdb=tcp:127.0.0.1:1\n";
    struct runstate r3 = { .name = strdup("v"), .dir = strdup("/d") };
    CHECK(runstate_parse(missing, &r3) == -1);    /* no qemu_pid */
}

static void test_room(void)
{
    struct room r;
    char err[256];
    CHECK(room_parse("name = demo   # the room\nkernel = x86_64\ntask = t\ntime_limit = 90m\nmemory = 512M\n"
                     "cpus = 2\ncandidates = alice, bob\n", "/rooms/r.conf", &r, err, sizeof err) == 0);
    CHECK_STR(r.name, "demo");
    CHECK_STR(r.task_dir, "/rooms/t");            /* relative to the room file */
    CHECK_EQ_U64(r.time_limit_s, 5400);
    CHECK_EQ_U64(r.mem_bytes, 512ull << 20);
    CHECK_EQ_U64(r.ncandidates, 2);
    CHECK_STR(r.candidates[1], "bob");
    CHECK_STR(r.backend, "qemu");
    room_free(&r);
    CHECK(room_parse("name = x\n\nkernel = k\ntask = t\ncandidates = a a\n", "r", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "r:5: candidate 'a' listed twice") != NULL);   /* the blank line counts */
    CHECK(room_parse("name = x\nkernel = k\ntask = t\ncandidates = ../a\n", "r", &r, err, sizeof err) == -1);
    CHECK(room_parse("name = x\nkernel\n", "r", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "r:2: expected key = value") != NULL);
    CHECK(room_parse("name = x\nkernel = k\ntask = t\ncandidates = a\nbackend = xen\n", "r", &r, err, sizeof err) == -1);
}

static void test_checks(void)
{
    struct task_checks t;
    char err[256];
    CHECK(checks_parse("# the task's checks\nprogram = t.c\ncheck loads : run insmod /lib/modules/m.ko\n"
                       "check read : output cat /dev/m = 111\ncheck printk : console m: open\n",
                       "checks", &t, err, sizeof err) == 0);
    CHECK_STR(t.program, "t.c");
    CHECK_EQ_U64(t.n, 3);
    CHECK(t.c[1].kind == CHECK_OUTPUT);
    CHECK_STR(t.c[1].command, "cat /dev/m");
    CHECK_STR(t.c[1].expect, "111");
    CHECK_STR(t.c[2].expect, "m: open");          /* the first colon ends the name, later ones are text */
    checks_free(&t);
    CHECK(checks_parse("\ncheck two words : run true\n", "c", &t, err, sizeof err) == -1);
    CHECK(strstr(err, "c:2: a check's name is one word") != NULL);
    CHECK(checks_parse("check x : sing\n", "c", &t, err, sizeof err) == -1);
}

int main(void)
{
    RUN(test_kv_lines);
    RUN(test_kv_comment_modes);
    RUN(test_runstate);
    RUN(test_room);
    RUN(test_checks);
    return CHECK_DONE();
}
