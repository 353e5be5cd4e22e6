/* Page-table snapshots: a range walk kept in memory, as text, and in a file of the caller's.
 *
 * The text is line-oriented so a person can read it and diff(1) it too:
 *   klab-ptsnap 1
 *   arch x86_64
 *   pid -1
 *   roots 0x1f2c000 0x0
 *   label VM lab, CPU 0
 *   r M CR3 0xffff888000000000 0xffff888000200000 0x0 0x200000 1 pmd 2 12 rw-/--- 0x80000000000001e3 ATTRS...
 *   ranges 1
 * The last line counts the ranges, so a file cut short is refused instead of read as a smaller table. */
#define _GNU_SOURCE
#include "mmu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PTSNAP_MAGIC "klab-ptsnap 1"
#define PTSNAP_MAX_RANGES (1u << 24)      /* 16M ranges: far above any real table (a 4K-merged 64 GiB map) */
#define PTSNAP_MAX_FILE (1ull << 31)

struct klab_ptsnap {
    struct klab_ptsnap_info info;
    struct klab_range *r;
    size_t cap;
};

static struct klab_ptsnap *snap_new(enum klab_arch arch, int pid, const char *label)
{
    struct klab_ptsnap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->info.arch = arch;
    s->info.pid = pid;
    /* The label is one line of printable text: it is written back into the file. */
    size_t n = 0;
    for (const char *p = label ? label : ""; *p && n + 1 < sizeof s->info.label; p++)
        s->info.label[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    s->info.label[n] = '\0';
    return s;
}

static int snap_push(struct klab_ptsnap *s, const struct klab_range *r)
{
    if (s->info.nranges == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if (cap > PTSNAP_MAX_RANGES)
            return -1;
        struct klab_range *n = realloc(s->r, cap * sizeof *n);
        if (!n)
            return -1;
        s->r = n;
        s->cap = cap;
    }
    s->r[s->info.nranges++] = *r;
    return 0;
}

void klab_ptsnap_free(struct klab_ptsnap *s)
{
    if (s) {
        free(s->r);
        free(s);
    }
}

void klab_ptsnap_info(const struct klab_ptsnap *s, struct klab_ptsnap_info *out)
{
    *out = s->info;
}

const struct klab_range *klab_ptsnap_range(const struct klab_ptsnap *s, size_t i)
{
    return i < s->info.nranges ? &s->r[i] : NULL;
}

static int keep_range(void *ctx, const struct klab_range *r)
{
    struct klab_ptsnap *s = ctx;
    if (r->kind == KLAB_RANGE_NON_PRESENT)
        return 0;
    return snap_push(s, r) == 0 ? 0 : 1;
}

struct klab_ptsnap *klab_ptsnap_take(const struct klab_mmu_regs *regs, struct klab_physmem *mem,
                                     const struct klab_range_opts *opts, int pid, const char *label,
                                     struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_ptsnap *s = snap_new(regs->arch, pid, label);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    for (int i = 0; a && i < a->nroots; i++)
        s->info.root_pa[i] = *(const uint64_t *)((const char *)regs + a->root_offset[i]);
    struct klab_range_opts o = opts ? *opts : (struct klab_range_opts){ 0 };
    o.filters &= ~(unsigned)(KLAB_FILTER_NON_PRESENT | KLAB_FILTER_NO_MERGE);
    int rc = klab_walk_ranges(regs, mem, &o, keep_range, s, NULL, error);
    if (rc != 0) {
        if (rc > 0)
            snprintf(err, errlen, "out of memory (more than %u ranges?)", PTSNAP_MAX_RANGES);
        klab_ptsnap_free(s);
        return NULL;
    }
    return s;
}

/* ---- text ------------------------------------------------------------------------------------------------ */

char *klab_ptsnap_format(const struct klab_ptsnap *s, size_t *len)
{
    struct klab_textbuf t = { 0 };
    const struct klab_ptsnap_info *in = &s->info;
    klab_tb_add(&t, "%s\narch %s\npid %d\nroots 0x%llx 0x%llx\nlabel %s\n", PTSNAP_MAGIC, klab_arch_name(in->arch), in->pid,
           (unsigned long long)in->root_pa[0], (unsigned long long)in->root_pa[1], in->label);
    for (size_t i = 0; i < in->nranges; i++) {
        const struct klab_range *r = &s->r[i];
        char perms[8];
        klab_tb_add(&t, "r %c %s 0x%llx 0x%llx 0x%llx 0x%llx %llu %s %d %u %s 0x%llx %s\n",
               r->kind == KLAB_RANGE_BAD ? 'B' : 'M', r->root_name, (unsigned long long)r->va_start,
               (unsigned long long)r->va_end, (unsigned long long)r->pa_start, (unsigned long long)r->page_size,
               (unsigned long long)r->leaves, r->level_name[0] ? r->level_name : "-", r->hw_level, r->granule_shift,
               klab_perms_str(&r->perms, perms), (unsigned long long)r->first_raw, r->attrs);
    }
    klab_tb_add(&t, "ranges %zu\n", in->nranges);
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    if (len)
        *len = t.len;
    return t.p;
}

/* A strict reader of one line's fields: tokens split by single spaces, numbers in the exact form written. */
struct fields {
    const char *p, *end;   /* the rest of the line */
};

static bool next_token(struct fields *f, char *out, size_t outlen)
{
    const char *sp = memchr(f->p, ' ', (size_t)(f->end - f->p));
    const char *e = sp ? sp : f->end;
    size_t n = (size_t)(e - f->p);
    if (n == 0 || n >= outlen)
        return false;
    memcpy(out, f->p, n);
    out[n] = '\0';
    f->p = sp ? sp + 1 : f->end;
    return true;
}

static bool tok_hex(struct fields *f, uint64_t *v)
{
    char t[24];
    if (!next_token(f, t, sizeof t) || t[0] != '0' || t[1] != 'x' || !t[2] || strlen(t) > 18)
        return false;
    uint64_t x = 0;
    for (const char *c = t + 2; *c; c++) {
        int d = (*c >= '0' && *c <= '9') ? *c - '0' : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}

static bool tok_dec(struct fields *f, long long lo, long long hi, long long *v)
{
    char t[24];
    if (!next_token(f, t, sizeof t))
        return false;
    const char *c = t;
    bool neg = *c == '-';
    if (neg)
        c++;
    if (!*c || strlen(c) > 18)
        return false;
    long long x = 0;
    for (; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        x = x * 10 + (*c - '0');
    }
    x = neg ? -x : x;
    if (x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static bool parse_perms(const char *t, struct klab_perms *p)
{
    /* klab_perms_str: "rwx/rwx" with '-' for a right not given. */
    static const char want[] = "rwx/rwx";
    if (strlen(t) != 7 || t[3] != '/')
        return false;
    bool *bits[] = { &p->kernel_read, &p->kernel_write, &p->kernel_exec, NULL,
                     &p->user_read, &p->user_write, &p->user_exec };
    for (int i = 0; i < 7; i++) {
        if (i == 3)
            continue;
        if (t[i] != want[i] && t[i] != '-')
            return false;
        *bits[i] = t[i] == want[i];
    }
    return true;
}

static bool known_word(const char *t, const char *const *words)
{
    for (; *words; words++)
        if (!strcmp(t, *words))
            return true;
    return false;
}

/* One "r ..." line (after "r "): true when every field is well-formed. */
static bool parse_range_line(struct fields *f, enum klab_arch arch, struct klab_range *r)
{
    static const char *const roots_x86[] = { "CR3", NULL }, *const roots_arm[] = { "TTBR0_EL1", "TTBR1_EL1", NULL };
    static const char *const levels[] = { "pgd", "p4d", "pud", "pmd", "pte", "-", NULL };
    char kind[4], root[12], level[8], perms[8];
    long long leaves, hw_level, granule;
    memset(r, 0, sizeof *r);
    if (!next_token(f, kind, sizeof kind) || (strcmp(kind, "M") && strcmp(kind, "B")))
        return false;
    r->kind = kind[0] == 'B' ? KLAB_RANGE_BAD : KLAB_RANGE_MAPPED;
    if (!next_token(f, root, sizeof root) || !known_word(root, arch == KLAB_ARCH_X86_64 ? roots_x86 : roots_arm))
        return false;
    snprintf(r->root_name, sizeof r->root_name, "%s", root);
    if (!tok_hex(f, &r->va_start) || !tok_hex(f, &r->va_end) || !tok_hex(f, &r->pa_start) || !tok_hex(f, &r->page_size) ||
        !tok_dec(f, 0, 1ll << 52, &leaves) || !next_token(f, level, sizeof level) || !known_word(level, levels) ||
        !tok_dec(f, -1, 5, &hw_level) || !tok_dec(f, 12, 16, &granule) || !next_token(f, perms, sizeof perms) ||
        !parse_perms(perms, &r->perms) || !tok_hex(f, &r->first_raw))
        return false;
    if (r->va_end != 0 && r->va_end <= r->va_start)
        return false;
    if (r->kind == KLAB_RANGE_MAPPED && (r->page_size < 4096 || (r->page_size & (r->page_size - 1)) || leaves < 1))
        return false;
    if (granule != 12 && granule != 14 && granule != 16)
        return false;
    r->leaves = (uint64_t)leaves;
    r->hw_level = (int)hw_level;
    r->granule_shift = (unsigned)granule;
    snprintf(r->level_name, sizeof r->level_name, "%s", strcmp(level, "-") ? level : "");
    size_t n = (size_t)(f->end - f->p);
    if (n >= sizeof r->attrs)
        return false;
    for (size_t i = 0; i < n; i++)
        if (f->p[i] < 0x20 || f->p[i] >= 0x7f)
            return false;
    memcpy(r->attrs, f->p, n);
    r->attrs[n] = '\0';
    return true;
}

/* The header line `key` (after which *f holds its value). */
static bool header(const char **p, const char *end, const char *key, struct fields *f)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t klen = strlen(key);
    if (!nl || (size_t)(nl - *p) < klen + 1 || memcmp(*p, key, klen) || (*p)[klen] != ' ')
        return false;
    f->p = *p + klen + 1;
    f->end = nl;
    *p = nl + 1;
    return true;
}

static bool parse_headers(const char **p, const char *end, struct klab_ptsnap_info *in)
{
    struct fields f;
    char arch[16];
    long long pid;
    if ((size_t)(end - *p) < sizeof PTSNAP_MAGIC || memcmp(*p, PTSNAP_MAGIC "\n", sizeof PTSNAP_MAGIC))
        return false;
    *p += sizeof PTSNAP_MAGIC;
    if (!header(p, end, "arch", &f) || !next_token(&f, arch, sizeof arch) || f.p != f.end)
        return false;
    int a = klab_arch_from_name(arch);
    if (a < 0)
        return false;
    in->arch = (enum klab_arch)a;
    if (!header(p, end, "pid", &f) || !tok_dec(&f, -1, 1 << 30, &pid) || f.p != f.end)
        return false;
    in->pid = (int)pid;
    if (!header(p, end, "roots", &f) || !tok_hex(&f, &in->root_pa[0]) || !tok_hex(&f, &in->root_pa[1]) || f.p != f.end)
        return false;
    const char *lp = *p;
    const char *nl = memchr(lp, '\n', (size_t)(end - lp));
    if (!nl || (size_t)(nl - lp) < 5 || memcmp(lp, "label", 5) || (nl - lp > 5 && lp[5] != ' '))
        return false;
    size_t n = nl - lp > 5 ? (size_t)(nl - lp - 6) : 0;
    if (n >= sizeof in->label)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lp[6 + i] < 0x20 || lp[6 + i] >= 0x7f)
            return false;
    memcpy(in->label, lp + 6, n);
    in->label[n] = '\0';
    *p = nl + 1;
    return true;
}

struct klab_ptsnap *klab_ptsnap_parse(const char *text, size_t len, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    struct klab_ptsnap_info in = { .pid = -1 };
    const char *p = text, *end = text + len;
    if (!parse_headers(&p, end, &in)) {
        snprintf(err, errlen, "not a klab page-table snapshot (no '%s' header with arch, pid, roots, label)",
                 PTSNAP_MAGIC);
        return NULL;
    }
    struct klab_ptsnap *s = snap_new(in.arch, in.pid, in.label);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(s->info.root_pa, in.root_pa, sizeof in.root_pa);
    for (unsigned line = 6;; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            snprintf(err, errlen, "snapshot cut short at line %u (no 'ranges N' line)", line);
            break;
        }
        struct fields f = { p, nl };
        struct klab_range r;
        long long count;
        if (nl - p > 2 && p[0] == 'r' && p[1] == ' ') {
            f.p += 2;
            if (!parse_range_line(&f, s->info.arch, &r)) {
                snprintf(err, errlen, "snapshot line %u: not a range", line);
                break;
            }
            const struct klab_range *prev = s->info.nranges ? &s->r[s->info.nranges - 1] : NULL;
            if (prev && (prev->va_end == 0 || r.va_start < prev->va_end)) {
                snprintf(err, errlen, "snapshot line %u: ranges out of VA order or overlapping", line);
                break;
            }
            if (snap_push(s, &r) != 0) {
                snprintf(err, errlen, "snapshot line %u: more than %u ranges", line, PTSNAP_MAX_RANGES);
                break;
            }
            p = nl + 1;
            continue;
        }
        if (header(&p, end, "ranges", &f) && tok_dec(&f, 0, PTSNAP_MAX_RANGES, &count) && f.p == f.end) {
            if ((size_t)count != s->info.nranges)
                snprintf(err, errlen, "snapshot says %lld ranges but holds %zu", count, s->info.nranges);
            else if (p != end)
                snprintf(err, errlen, "snapshot has text after its 'ranges' line");
            else
                return s;
            break;
        }
        snprintf(err, errlen, "snapshot line %u: neither a range nor the 'ranges N' line", line);
        break;
    }
    klab_ptsnap_free(s);
    return NULL;
}

/* ---- files ----------------------------------------------------------------------------------------------- */

/* The folder of path opened without following a final symlink, and checked: a real folder owned by the
 * caller or root that nobody else may write unless it is sticky (as /tmp: there nobody can replace a file
 * of ours). base gets the file's name. -1 with err. */
static int open_folder(const char *path, char *base, size_t baselen, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strlen(name) >= baselen) {
        snprintf(err, errlen, "%s: not a file name", path);
        return -1;
    }
    snprintf(base, baselen, "%s", name);
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0)   /* named by the snapshot's path: "no such file" is about it, wherever it lives */
        snprintf(err, errlen, "%s: %s", errno == ENOENT ? path : dir, strerror(errno));
    else if (fstat(fd, &st) != 0 || (st.st_uid != geteuid() && st.st_uid != 0))
        snprintf(err, errlen, "%s: not your folder (owner %u): refusing to trust a snapshot in it", dir,
                 (unsigned)st.st_uid);
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        snprintf(err, errlen, "%s: writable by others: refusing to trust a snapshot in it", dir);
    else {
        free(dir);
        return fd;
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return -1;
}

int klab_ptsnap_save(const struct klab_ptsnap *s, const char *path, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    char base[256], tmp[300];
    int dfd = open_folder(path, base, sizeof base, err, errlen);
    if (dfd < 0)
        return -1;
    size_t len;
    char *text = klab_ptsnap_format(s, &len);
    int fd = -1, rc = -1;
    if (!text) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (unsigned i = 0; fd < 0 && i < 100; i++) {
        snprintf(tmp, sizeof tmp, ".%s.%ld.%u", base, (long)getpid(), i);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "short write");
            unlinkat(dfd, tmp, 0);
            goto out;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlinkat(dfd, tmp, 0);
        goto out;
    }
    fd = -1;
    struct stat st;
    /* rename() replaces a symlink at path rather than following it; a folder there is refused. */
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a folder", path);
        unlinkat(dfd, tmp, 0);
    } else if (renameat(dfd, tmp, dfd, base) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlinkat(dfd, tmp, 0);
    } else
        rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    close(dfd);
    return rc;
}

struct klab_ptsnap *klab_ptsnap_load(const char *path, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    char base[256];
    int dfd = open_folder(path, base, sizeof base, err, errlen);
    if (dfd < 0)
        return NULL;
    int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    close(dfd);
    struct stat st;
    struct klab_ptsnap *s = NULL;
    char *text = NULL;
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, errno == ELOOP ? "a symlink: not followed" : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s: not a regular file", path);
    else if (st.st_uid != geteuid() && st.st_uid != 0)
        snprintf(err, errlen, "%s: owned by uid %u, not you: not trusted", path, (unsigned)st.st_uid);
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        snprintf(err, errlen, "%s: writable by others: not trusted", path);
    else if ((unsigned long long)st.st_size > PTSNAP_MAX_FILE)
        snprintf(err, errlen, "%s: %lld bytes: too large for a snapshot", path, (long long)st.st_size);
    else if (!(text = malloc((size_t)st.st_size + 1)))
        snprintf(err, errlen, "out of memory");
    else {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got != (size_t)st.st_size)
            snprintf(err, errlen, "%s: short read", path);
        else if (!(s = klab_ptsnap_parse(text, got, error)) && err) {
            char why[sizeof error->msg];
            memcpy(why, err, sizeof why);
            snprintf(err, errlen, "%.100s: %.270s", path, why);
        }
    }
    free(text);
    close(fd);
    return s;
}

/* ---- the store --------------------------------------------------------------------------------------------- */

static int mkdir_parents(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            int rc = mkdir(path, 0700);
            *p = '/';
            if (rc != 0 && errno != EEXIST)
                return -1;
        }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int klab_ptsnap_store(bool create, char *out, size_t outlen, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    const char *e;
    int n;
    if ((e = getenv("KLAB_PTSNAP_DIR")) && *e)
        n = snprintf(out, outlen, "%s", e);
    else if ((e = getenv("KLAB_CACHE")) && *e)
        n = snprintf(out, outlen, "%s/ptsnap", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e)
        n = snprintf(out, outlen, "%s/klab/ptsnap", e);
    else if ((e = getenv("HOME")) && *e)
        n = snprintf(out, outlen, "%s/.cache/klab/ptsnap", e);
    else {
        snprintf(err, errlen, "no snapshot folder: set KLAB_PTSNAP_DIR or HOME");
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen || out[0] != '/') {
        snprintf(err, errlen, "the snapshot folder must be an absolute path that fits (%s)", out);
        return -1;
    }
    if (create && mkdir_parents(out) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", out, strerror(errno));
        return -1;
    }
    /* The folder is checked (owner, mode, not a symlink) when a snapshot is opened in it. */
    return 0;
}

int klab_ptsnap_path(const char *name, bool create, char *out, size_t outlen, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    if (!name || !*name) {
        snprintf(err, errlen, "a snapshot needs a name");
        return -1;
    }
    if (strchr(name, '/')) {
        if (snprintf(out, outlen, "%s", name) >= (int)outlen) {
            snprintf(err, errlen, "snapshot path too long");
            return -1;
        }
        return 0;
    }
    if (name[0] == '.' || strlen(name) > 128 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                             "0123456789_.-") != strlen(name)) {
        snprintf(err, errlen, "'%.140s' is not a snapshot name (letters, digits, '_', '.', '-'; or a path with '/')",
                 name);
        return -1;
    }
    char dir[4096];
    if (klab_ptsnap_store(create, dir, sizeof dir, error) != 0)
        return -1;
    if (snprintf(out, outlen, "%s/%s", dir, name) >= (int)outlen) {
        snprintf(err, errlen, "snapshot path too long");
        return -1;
    }
    return 0;
}

struct klab_ptsnap *klab_ptsnap_open(const char *name, struct klab_error *err)
{
    char path[4096];
    return klab_ptsnap_path(name, false, path, sizeof path, err) == 0 ? klab_ptsnap_load(path, err) : NULL;
}
