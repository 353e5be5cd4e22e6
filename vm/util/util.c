#define _GNU_SOURCE
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Errors and notes look alike on stderr ("klab: ..."); the exit status tells them apart. */
static void say(const char *fmt, va_list ap)
{
    fputs("klab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void klab_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

void klab_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        fputs("klab: out of memory\n", stderr);
        exit(1);
    }
    va_end(ap);
    return s;
}

char *path_join(const char *a, const char *b) { return xasprintf("%s/%s", a, b); }

/* The temporary file is created O_EXCL | O_NOFOLLOW: in a folder someone else can write (a candidate's), a
 * planted name makes the write fail instead of writing through their symlink; rename() then replaces the
 * name itself, never what a symlink there points at. */
static int write_at(int dfd, const char *path, const char *text)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    bool ok = done == len;
    ok = (close(fd) == 0) && ok;
    if (!ok || renameat(dfd, tmp, dfd, path) != 0) {
        unlinkat(dfd, tmp, 0);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int write_text_file(const char *path, const char *text) { return write_at(AT_FDCWD, path, text); }
int write_text_file_at(int dfd, const char *name, const char *text) { return write_at(dfd, name, text); }

static char *read_fd(int fd)
{
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

char *read_text_file(const char *path) { return read_fd(open(path, O_RDONLY | O_CLOEXEC)); }

char *read_text_file_at(int dfd, const char *name)
{
    /* O_NONBLOCK: a FIFO planted under the name must not hang the reader; only regular files are read. */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        return NULL;
    }
    return read_fd(fd);
}

int mkdir_p(const char *path, unsigned mode)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = (mkdir(p, mode) != 0 && errno != EEXIST) ? -1 : 0;
    free(p);
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char *path)
{
    if (!file_exists(path))
        return 0;
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

char *find_in_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
    const char *env = getenv("PATH");
    char *paths = strdup(env ? env : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL, *found = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *cand = path_join(*dir ? dir : ".", prog);
        if (access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(paths);
    return found;
}

/* The number at the start of s (no sign, no overflow): true with *end after it. */
static bool leading_u64(const char *s, int base, unsigned long long *v, char **end)
{
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    *v = strtoull(s, end, base);
    return !errno && *end != s;
}

bool parse_u64(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (!leading_u64(s, 0, &v, &end) || *end)
        return false;
    *out = v;
    return true;
}

bool parse_size_mib(const char *s, uint64_t *bytes)
{
    unsigned long long v;
    char *end;
    if (!leading_u64(s, 10, &v, &end) || v == 0)
        return false;
    unsigned shift;
    switch (*end) {
    case '\0': case 'M': case 'm': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'K': case 'k': shift = 10; break;
    default: return false;
    }
    if (*end && end[1] && !((end[1] == 'B' || end[1] == 'b' || end[1] == 'i') && !end[2]))
        return false;
    if (v > (UINT64_MAX >> shift))
        return false;
    *bytes = (uint64_t)v << shift;
    return true;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void sleep_ms_unless(unsigned ms, volatile sig_atomic_t *flag)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (!*flag && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int make_fifos(const char *dir, const char *const *names, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char *p = path_join(dir, names[i]);
        unlink(p);
        int rc = mkfifo(p, 0600);
        if (rc != 0)
            snprintf(err, errlen, "cannot make %s: %s", p, strerror(errno));
        free(p);
        if (rc != 0)
            return -1;
    }
    return 0;
}
