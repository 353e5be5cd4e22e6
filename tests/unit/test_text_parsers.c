/* klab's line readers (vm/util/kv.c) and the files read through them: run state, room files, checks. */
#define _GNU_SOURCE
#include "check.h"
#include "exam/checks.h"
#include "exam/room.h"
#include "run/dump.h"
#include "run/dump_vaddr.h"
#include "run/runstate.h"
#include "util/kv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* klab dump: the formats' names and HMP flags (hmp-commands.hx), and QEMU's `info dump` answers
 * (monitor/hmp-cmds.c hmp_info_dump: "Status: active" then "Finished: 12.50 %"). */
static void test_dump_text(void)
{
    enum dump_format f;
    CHECK(dump_format_parse("kdump-zlib", &f) == 0 && f == DUMP_KDUMP_ZLIB);
    CHECK_STR(dump_format_flag(f), "-z");
    CHECK(dump_format_parse("elf", &f) == 0 && f == DUMP_ELF);
    CHECK_STR(dump_format_flag(f), "");
    CHECK(dump_format_parse("kdump-snappy", &f) == 0 && !strcmp(dump_format_flag(f), "-s"));
    CHECK(dump_format_parse("kdump", &f) == -1 && dump_format_parse("", &f) == -1);
    char st[32];
    double pct;
    CHECK(dump_parse_info("Status: active\r\nFinished: 12.50 %\r\n", st, sizeof st, &pct) == 0);
    CHECK_STR(st, "active");
    CHECK(pct > 12.49 && pct < 12.51);
    CHECK(dump_parse_info("Status: completed\r\n", st, sizeof st, &pct) == 0 && pct == -1);
    CHECK_STR(st, "completed");
    CHECK(dump_parse_info("unknown command: 'info dump'", st, sizeof st, &pct) == -1);
    CHECK(dump_parse_info("Status: ", st, sizeof st, &pct) == -1);
    CHECK(dump_parse_info("Status: averyveryveryveryverylongstatusword", st, 8, &pct) == -1);
    CHECK(dump_parse_info(NULL, st, sizeof st, &pct) == -1);
}

/* A dump's first bytes: ELF64 core headers built here (gABI offsets), makedumpfile's signature, garbage. */
static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static size_t elf_core(unsigned char *b, unsigned machine, uint64_t load_off, uint64_t load_size, uint64_t vaddr)
{
    memset(b, 0, 4096);
    memcpy(b, "\177ELF", 4);
    b[4] = 2, b[5] = 1;
    put_le(b + 16, 4, 2), put_le(b + 18, machine, 2);
    put_le(b + 32, 64, 8), put_le(b + 54, 56, 2), put_le(b + 56, 1, 2);   /* one program header at 64 */
    put_le(b + 64, 1, 4), put_le(b + 64 + 8, load_off, 8), put_le(b + 64 + 16, vaddr, 8);
    put_le(b + 64 + 32, load_size, 8);
    memcpy(b + 200, "VMCOREINFO\0\0OSRELEASE=6.1.0-57-cloud-amd64\nPAGESIZE=4096\n", 56);
    return 4096;
}

static void test_dump_inspect(void)
{
    static unsigned char b[4096];
    struct dump_info d;
    char err[160];
    size_t n = elf_core(b, 62, 4096, 1 << 20, 0xffff888000000000ull);
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 4096 + (1 << 20), &d, err, sizeof err) == 0);
    CHECK(d.elf && d.vaddrs && !strcmp(d.arch, "x86_64"));
    CHECK_STR(d.release, "6.1.0-57-cloud-amd64");
    /* QEMU's plain dump: p_vaddr = p_paddr, no kernel address */
    elf_core(b, 183, 4096, 1 << 20, 0x40000000);
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 4096 + (1 << 20), &d, err, sizeof err) == 0);
    CHECK(!d.vaddrs && !strcmp(d.arch, "arm64"));
    /* truncated: the segment ends past the file */
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 4096 + 100, &d, err, sizeof err) == -1 && strstr(err, "truncated"));
    /* a foreign machine, a non-core ELF, 32-bit, garbage, makedumpfile */
    elf_core(b, 40, 4096, 16, 0);
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 1 << 20, &d, err, sizeof err) == 0 && d.arch == NULL);
    put_le(b + 16, 2, 2);
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 1 << 20, &d, err, sizeof err) == -1 && strstr(err, "not a core"));
    elf_core(b, 62, 4096, 16, 0);
    b[4] = 1;
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 1 << 20, &d, err, sizeof err) == -1);
    CHECK(dump_inspect_buffer((const unsigned char *)"root:x:0:0", 10, NULL, 0, 10, &d, err, sizeof err) == -1);
    CHECK(dump_inspect_buffer((const unsigned char *)"makedumpfile\0\0\0\0", 16, NULL, 0, 16, &d, err, sizeof err) == 0 &&
          !d.elf && !d.release[0]);
    /* program headers that claim to lie past the buffer are refused, not read */
    elf_core(b, 62, 4096, 16, 0);
    put_le(b + 56, 60000, 2);
    CHECK(dump_inspect_buffer(b, n, NULL, 0, 1 << 20, &d, err, sizeof err) == -1 && strstr(err, "program headers"));
    /* the table klab dump appends at the end, passed apart */
    elf_core(b, 62, 4096, 16, 0x40000000);
    static unsigned char ph[2 * 56];
    memcpy(ph, b + 64, 56);
    memcpy(ph + 56, b + 64, 56);
    put_le(ph + 56 + 16, 0xffff80000938f000ull, 8);
    put_le(b + 32, 1 << 30, 8), put_le(b + 56, 2, 2);
    CHECK(dump_inspect_buffer(b, n, ph, sizeof ph, 1ull << 31, &d, err, sizeof err) == 0 && d.vaddrs);
}

/* The pgd view from VMCOREINFO: the values of a Debian 6.1 arm64 and x86_64 guest (their dumps' own text), the
 * PAs by the kernel's rules (arm64 __pa_symbol = VA - kimage_voffset; x86 VA - __START_KERNEL_map + phys_base). */
static void test_pgd_view(void)
{
    struct dump_pgd_view v;
    char err[160];
    const char arm[] = "OSRELEASE=6.1.0-57-cloud-arm64\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffff80000938f000\n"
                       "NUMBER(kimage_voffset)=0xffff7fffc7e00000\n";
    CHECK(dump_plan_pgd_view(arm, strlen(arm), 183, &v, err, sizeof err) == 0);
    CHECK_EQ_U64(v.vaddr, 0xffff80000938f000ull);
    CHECK_EQ_U64(v.paddr, 0x4158f000ull);
    CHECK_EQ_U64(v.size, 4096);
    const char x86[] = "PAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(phys_base)=16777216\n";
    CHECK(dump_plan_pgd_view(x86, strlen(x86), 62, &v, err, sizeof err) == 0);
    CHECK_EQ_U64(v.paddr, 0x2a10000ull + 0x1000000);
    CHECK(dump_plan_pgd_view(x86, strlen(x86), 183, &v, err, sizeof err) == -1 && strstr(err, "kimage_voffset"));
    CHECK(dump_plan_pgd_view(arm, strlen(arm), 40, &v, err, sizeof err) == -1);
    const char bad[] = "PAGESIZE=4097\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\n";
    CHECK(dump_plan_pgd_view(bad, strlen(bad), 62, &v, err, sizeof err) == -1);
    /* a key only counts at a line start */
    const char mid[] = "XSYMBOL(swapper_pg_dir)=1\nPAGESIZE=4096\n";
    CHECK(dump_plan_pgd_view(mid, strlen(mid), 62, &v, err, sizeof err) == -1);
}

/* Where the program header table goes. QEMU 7.2's ELF dump of an arm64 guest (its layout as read from one):
 * ELF header 64, 2 section headers at 64 (128 bytes), 2 program headers at 192, notes at 304 (5388 bytes), RAM
 * from 5692; .shstrtab's 11 bytes after the RAM. Three headers (168 bytes) fit at 64 once the section headers
 * move to the end; they are not written over the notes or any data. */
static void test_table_place(void)
{
    const uint64_t end = 5692 + (1ull << 30) + 11;
    struct dump_span keep[] = { { 304, 5388 }, { 5692, 1ull << 30 }, { 5692 + (1ull << 30), 11 } };
    struct dump_table_place at = dump_plan_table_place(64, 3 * 56, 64, 128, keep, 3, end);
    CHECK_EQ_U64(at.phoff, 64);
    CHECK_EQ_U64(at.shoff, (end + 7) & ~7ull);
    /* five headers (280 bytes) would reach the notes at 304: the table goes to the end, the sections stay */
    at = dump_plan_table_place(64, 5 * 56, 64, 128, keep, 3, end);
    CHECK_EQ_U64(at.phoff, (end + 7) & ~7ull);
    CHECK_EQ_U64(at.shoff, 64);
    /* exactly up to the notes: fits (the spans are half-open) */
    at = dump_plan_table_place(64, 240, 64, 128, keep, 3, end);
    CHECK_EQ_U64(at.phoff, 64);
    /* no section headers: nothing moves */
    at = dump_plan_table_place(64, 3 * 56, 0, 0, keep, 3, end);
    CHECK_EQ_U64(at.phoff, 64);
    CHECK_EQ_U64(at.shoff, 0);
    /* section headers out of the way (after the notes) stay where they are */
    at = dump_plan_table_place(64, 3 * 56, 5000, 128, keep, 3, end);
    CHECK_EQ_U64(at.shoff, 5000);
    /* a table length that wraps around is never placed in the header */
    at = dump_plan_table_place(64, UINT64_MAX - 10, 0, 0, keep, 0, end);
    CHECK_EQ_U64(at.phoff, (end + 7) & ~7ull);
}

int main(void)
{
    RUN(test_kv_lines);
    RUN(test_kv_comment_modes);
    RUN(test_runstate);
    RUN(test_room);
    RUN(test_checks);
    RUN(test_dump_text);
    RUN(test_dump_inspect);
    RUN(test_pgd_view);
    RUN(test_table_place);
    return CHECK_DONE();
}
