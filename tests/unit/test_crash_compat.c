/* vm/machine/crash_compat.c on objects the compiler makes here: a struct pid that ends in a flexible
 * numbers[] (v6.5's layout, Debian's 6.1.1xx backport) is found in every unit that defines it, with its size
 * and that size plus one upid; numbers[1] (the layout crash knows) needs nothing; a file without DWARF is an
 * error. The sizes come from the compiler's own sizeof, printed by a program built from the same source. */
#define _GNU_SOURCE
#include "check.h"
#include "machine/crash_compat.h"
#include "util/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/klab-test-crash-XXXXXX";

static const char *const flexible =
    "struct upid { int nr; void *ns; };\n"
    "struct pid { int count; unsigned level; void *tasks[4]; void *inodes; char wait[24]; void *rcu[2];"
    " struct upid numbers[]; };\n";

/* Builds text into dir/name.o (two units that both define the structs when twice), 0 on success. */
static int compile(const char *name, const char *text, bool twice)
{
    char *src = xasprintf("%s/%s.c", dir, name), *src2 = xasprintf("%s/%s2.c", dir, name);
    char *body = xasprintf("%sstruct pid *use_%s;\n", text, name), *body2 = xasprintf("%sstruct pid *use2_%s;\n", text, name);
    int rc = write_text_file(src, body) || write_text_file(src2, body2);
    /* A shared object, linked: its DWARF is final, as a vmlinux's is (a .o's still awaits relocations). */
    char *cmd = twice ? xasprintf("cd %s && cc -g -shared -fPIC -o %s.o %s.c %s2.c", dir, name, name, name)
                      : xasprintf("cd %s && cc -g -shared -fPIC -o %s.o %s.c", dir, name, name);
    rc = rc || system(cmd) != 0;
    free(src), free(src2), free(body), free(body2), free(cmd);
    return rc;
}

static long fixes_of(const char *name, off_t *offs, unsigned *old_size, unsigned *new_size, char *err)
{
    char *obj = xasprintf("%s/%s.o", dir, name);
    int fd = open(obj, O_RDONLY);
    long n = fd >= 0 ? crash_pid_size_fixes(fd, offs, 8, old_size, new_size, err, 256) : -2;
    if (fd >= 0)
        close(fd);
    free(obj);
    return n;
}

static void test_flexible_numbers(void)
{
    if (system("command -v cc >/dev/null") != 0)
        SKIP("no cc to make the objects");
    CHECK(compile("flex", flexible, true) == 0);
    off_t offs[8];
    unsigned old_size = 0, new_size = 0;
    char err[256] = "";
    long n = fixes_of("flex", offs, &old_size, &new_size, err);
    CHECK(n == 2);   /* one struct pid per unit */
    /* The compiler's own sizes: sizeof(struct pid) and sizeof(struct upid). */
    char *probe = xasprintf("%s\n#include <stdio.h>\nint main(void) { printf(\"%%zu %%zu\", sizeof(struct pid), "
                            "sizeof(struct upid)); return 0; }\n", flexible);
    char *src = xasprintf("%s/probe.c", dir);
    write_text_file(src, probe);
    char *cmd = xasprintf("cd %s && cc -o probe probe.c && ./probe > sizes", dir);
    CHECK(system(cmd) == 0);
    char *sizes_file = xasprintf("%s/sizes", dir), *sizes = read_text_file(sizes_file);
    unsigned pid = 0, upid = 0;
    CHECK(sizes && sscanf(sizes, "%u %u", &pid, &upid) == 2);
    CHECK_EQ_U64(old_size, pid);
    CHECK_EQ_U64(new_size, pid + upid);
    /* Each offset holds the old size's byte (DW_FORM_data1) in the file. */
    char *obj = xasprintf("%s/flex.o", dir);
    int fd = open(obj, O_RDONLY);
    for (long i = 0; i < n && i < 8; i++) {
        unsigned char b = 0;
        CHECK(pread(fd, &b, 1, offs[i]) == 1 && b == old_size);
    }
    close(fd);
    free(probe), free(src), free(cmd), free(sizes_file), free(sizes), free(obj);
}

static void test_one_element_array_needs_nothing(void)
{
    if (system("command -v cc >/dev/null") != 0)
        SKIP("no cc to make the object");
    CHECK(compile("one", "struct upid { int nr; void *ns; };\n"
                         "struct pid { int count; unsigned level; struct upid numbers[1]; };\n", false) == 0);
    off_t offs[8];
    unsigned old_size = 0, new_size = 0;
    char err[256] = "";
    CHECK(fixes_of("one", offs, &old_size, &new_size, err) == 0);
}

static void test_no_dwarf(void)
{
    char *p = xasprintf("%s/text", dir);
    CHECK(write_text_file(p, "not an ELF file\n") == 0);
    int fd = open(p, O_RDONLY);
    off_t offs[8];
    unsigned a, b;
    char err[256] = "";
    CHECK(crash_pid_size_fixes(fd, offs, 8, &a, &b, err, sizeof err) == -1 && err[0]);
    close(fd);
    free(p);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    RUN(test_flexible_numbers);
    RUN(test_one_element_array_needs_nothing);
    RUN(test_no_dwarf);
    remove_tree(dir);
    return CHECK_DONE();
}
