/* vm/util/private_dir.c and vm/exam/untrusted_copy.c on folders made here: what a private folder is, and copies out of
 * a folder someone else controls. (The attacks with real second users are tests/integration/security.sh.) */
#define _GNU_SOURCE
#include "check.h"
#include "util/private_dir.h"
#include "exam/untrusted_copy.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/klab-test-private-XXXXXX";

static void test_rules_on_synthetic_stat(void)
{
    struct stat st = { .st_mode = S_IFDIR | 0700, .st_uid = 1000 };
    CHECK(private_dir_problem(&st, 1000) == NULL);
    CHECK(private_dir_problem(&st, 1001) != NULL);           /* another user's */
    st.st_mode = S_IFDIR | 0770;
    CHECK(private_dir_problem(&st, 1000) != NULL);           /* group-writable */
    st.st_mode = S_IFDIR | 0755;
    CHECK(private_dir_problem(&st, 1000) == NULL);           /* readable is fine: writable is not */
    st.st_mode = S_IFLNK | 0777;
    CHECK(private_dir_problem(&st, 1000) != NULL);
    struct stat tmp = { .st_mode = S_IFDIR | 01777, .st_uid = 0 };
    CHECK(ancestor_problem(&tmp, 1000) == NULL);             /* /tmp: shared but sticky, root's */
    tmp.st_mode = S_IFDIR | 0777;
    CHECK(ancestor_problem(&tmp, 1000) != NULL);             /* anyone could rename our folder away */
    tmp.st_mode = S_IFDIR | 0755;
    tmp.st_uid = 1001;
    CHECK(ancestor_problem(&tmp, 1000) != NULL);             /* its owner could */
}

static void test_open_checks_the_folder(void)
{
    char err[512];
    char *mine = path_join(dir, "a/b/run");
    int fd = private_dir_open(mine, true, err, sizeof err);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0700);
    if (fd >= 0)
        close(fd);
    char *loose = path_join(dir, "loose");
    mkdir(loose, 0777);
    chmod(loose, 0777);
    CHECK(private_dir_open(loose, true, err, sizeof err) < 0 && strstr(err, "writable by other users"));
    char *link = path_join(dir, "link");
    CHECK(symlink(mine, link) == 0);
    CHECK(private_dir_open(link, false, err, sizeof err) < 0 && strstr(err, "symlink"));
    char *under = path_join(loose, "run");   /* a folder under a non-sticky shared one */
    CHECK(private_dir_open(under, true, err, sizeof err) < 0 && strstr(err, "not sticky"));
    char *missing = path_join(dir, "nothing");
    CHECK(private_dir_open(missing, false, err, sizeof err) < 0 && errno == ENOENT);
    free(mine);
    free(loose);
    free(link);
    free(under);
    free(missing);
}

static void test_untrusted_copy(void)
{
    char *src = path_join(dir, "work"), *dst = path_join(dir, "copy");
    mkdir(src, 0755);
    char *f = path_join(src, "m.c"), *l = path_join(src, "shadow.c"), *p = path_join(src, "fifo");
    write_text_file(f, "int x;\n");
    CHECK(symlink("/etc/passwd", l) == 0);
    CHECK(mkfifo(p, 0644) == 0);
    struct copy_rules r = { .uid = getuid(), .gid = getgid(), .max_bytes = 1 << 20 };
    char *skipped = NULL;
    CHECK(copy_untrusted_tree(src, dst, &r, &skipped) == 0);
    char *cf = path_join(dst, "m.c"), *cl = path_join(dst, "shadow.c"), *cp = path_join(dst, "fifo");
    char *text = read_text_file(cf);
    CHECK_STR(text, "int x;\n");
    struct stat st;
    CHECK(lstat(cl, &st) == 0 && S_ISLNK(st.st_mode));     /* a link stays a link */
    CHECK(lstat(cp, &st) != 0);                             /* a FIFO is left out, and named */
    CHECK(skipped && strstr(skipped, "fifo"));
    /* The workspace itself as a symlink: refused. */
    char *lsrc = path_join(dir, "worklink");
    CHECK(symlink(src, lsrc) == 0);
    char *s2 = NULL, *d2 = path_join(dir, "copy2");
    CHECK(copy_untrusted_tree(lsrc, d2, &r, &s2) == -1);
    /* One file: a link is refused, a regular file copied. */
    int wfd = open(src, O_RDONLY | O_DIRECTORY);
    char *one = path_join(dir, "one");
    CHECK(copy_untrusted_file(wfd, "shadow.c", one, &r) == -1);
    CHECK(copy_untrusted_file(wfd, "m.c", one, &r) == 0);
    /* A file not its author's (a hard link to someone else's file, as far as the rules can tell). */
    struct copy_rules strict = r;
    strict.check_author = true;
    strict.author = getuid() + 1;
    CHECK(copy_untrusted_file(wfd, "m.c", one, &strict) == -1);
    close(wfd);
    free(text); free(skipped); free(s2); free(src); free(dst); free(f); free(l); free(p);
    free(cf); free(cl); free(cp); free(lsrc); free(d2); free(one);
}

/* gdb auto-loads a -gdb.py: trusted only when nobody else can write it or where it leads. */
static void test_trusted_script(void)
{
    char *safe = path_join(dir, "safe"), *open_dir = path_join(dir, "open");
    mkdir(safe, 0755);
    mkdir(open_dir, 0777);
    chmod(open_dir, 0777);
    char *good = path_join(safe, "vmlinux-gdb.py"), *bad = path_join(open_dir, "vmlinux-gdb.py");
    write_text_file(good, "pass\n");
    chmod(good, 0644);
    write_text_file(bad, "pass\n");
    chmod(bad, 0644);
    CHECK(trusted_path(good, getuid()));
    CHECK(!trusted_path(bad, getuid()));                   /* its folder is writable by anyone */
    chmod(good, 0666);
    CHECK(!trusted_path(good, getuid()));                  /* itself writable by anyone */
    chmod(good, 0644);
    char *l1 = path_join(safe, "to-good.py"), *l2 = path_join(safe, "to-bad.py");
    CHECK(symlink(good, l1) == 0 && symlink(bad, l2) == 0);
    CHECK(trusted_path(l1, getuid()));                     /* scripts_gdb's link into the source tree */
    CHECK(!trusted_path(l2, getuid()));
    free(safe); free(open_dir); free(good); free(bad); free(l1); free(l2);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    RUN(test_rules_on_synthetic_stat);
    RUN(test_open_checks_the_folder);
    RUN(test_untrusted_copy);
    RUN(test_trusted_script);
    remove_tree(dir);
    return CHECK_DONE();
}
