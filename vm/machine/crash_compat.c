/* machine/crash_compat.h. The DWARF is read with elfutils' libdw (the reader crash's and drgn's own
 * distributions build on); only the bytes of each struct pid's DW_AT_byte_size are written, in a copy. */
#define _GNU_SOURCE
#include "machine/crash_compat.h"
#include "machine/paths.h"
#include "util/private_dir.h"
#include "util/util.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The byte size of the element of a flexible array member `numbers` of struct die s (0: no such member). */
static Dwarf_Word flexible_numbers(Dwarf_Die *s)
{
    Dwarf_Die m, array, sub, elem;
    Dwarf_Attribute a;
    if (dwarf_child(s, &m) != 0)
        return 0;
    do {
        const char *name = dwarf_diename(&m);
        if (dwarf_tag(&m) != DW_TAG_member || !name || strcmp(name, "numbers"))
            continue;
        if (!dwarf_formref_die(dwarf_attr(&m, DW_AT_type, &a), &array) || dwarf_tag(&array) != DW_TAG_array_type ||
            dwarf_child(&array, &sub) != 0 || dwarf_hasattr(&sub, DW_AT_upper_bound) || dwarf_hasattr(&sub, DW_AT_count))
            return 0;   /* numbers[1] (before v6.5, or a kernel without the backport): crash copes */
        Dwarf_Word size = 0;
        if (!dwarf_formref_die(dwarf_attr(&array, DW_AT_type, &a), &elem) ||
            dwarf_formudata(dwarf_attr(&elem, DW_AT_byte_size, &a), &size) != 0)
            return 0;
        return size;
    } while (dwarf_siblingof(&m, &m) == 0);
    return 0;
}

/* The file offset and data of .debug_info, where libdw's attribute pointers point. */
static bool debug_info_at(Dwarf *d, const char **base, off_t *off, size_t *size)
{
    Elf *e = dwarf_getelf(d);
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    if (!e || elf_getshdrstrndx(e, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(e, scn))) {
        const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(e, shstrndx, sh.sh_name) : NULL;
        Elf_Data *data = name && !strcmp(name, ".debug_info") && !(sh.sh_flags & SHF_COMPRESSED) ? elf_getdata(scn, NULL) : NULL;
        if (data && data->d_buf && data->d_size == sh.sh_size) {
            *base = data->d_buf;
            *off = (off_t)sh.sh_offset;
            *size = sh.sh_size;
            return true;
        }
    }
    return false;
}

struct fixes {
    off_t *offs;
    size_t max;
    long n;
    unsigned old_size, new_size;
    const char *base;
    off_t section_off;
    size_t section_size;
};

/* One top-level DIE: a struct pid with numbers[] has its byte size's offset recorded. -1: cannot be fixed. */
static int consider(Dwarf_Die *die, struct fixes *f)
{
    const char *name = dwarf_diename(die);
    Dwarf_Attribute a;
    Dwarf_Word size, upid;
    if (dwarf_tag(die) != DW_TAG_structure_type || !name || strcmp(name, "pid") || !(upid = flexible_numbers(die)) ||
        !dwarf_attr(die, DW_AT_byte_size, &a) || dwarf_formudata(&a, &size) != 0)
        return 0;
    const char *at = (const char *)a.valp;
    if (dwarf_whatform(&a) != DW_FORM_data1 || size + upid > 255 || at < f->base || at >= f->base + f->section_size ||
        (f->n && (size != f->old_size || size + upid != f->new_size)))
        return -1;
    f->old_size = (unsigned)size;
    f->new_size = (unsigned)(size + upid);
    if ((size_t)f->n < f->max)
        f->offs[f->n] = f->section_off + (at - f->base);
    f->n++;
    return 0;
}

long crash_pid_size_fixes(int fd, off_t *offs, size_t max, unsigned *old_size, unsigned *new_size, char *err,
                          size_t errlen)
{
    Dwarf *d = dwarf_begin(fd, DWARF_C_READ);
    struct fixes f = { .offs = offs, .max = max };
    if (!d || !debug_info_at(d, &f.base, &f.section_off, &f.section_size)) {
        snprintf(err, errlen, "no DWARF to read (%s)", dwarf_errmsg(-1));
        if (d)
            dwarf_end(d);
        return -1;
    }
    Dwarf_Off off = 0, next;
    size_t header;
    int bad = 0;
    while (!bad && dwarf_nextcu(d, off, &next, &header, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu, die;
        if (dwarf_offdie(d, off + header, &cu) && dwarf_child(&cu, &die) == 0)
            do
                bad = consider(&die, &f);
            while (!bad && dwarf_siblingof(&die, &die) == 0);
        off = next;
    }
    dwarf_end(d);
    if (bad || (size_t)f.n > max) {
        snprintf(err, errlen, "struct pid's size is not a one-byte DWARF form here (or there are too many)");
        return -1;
    }
    *old_size = f.old_size;
    *new_size = f.new_size;
    return f.n;
}

/* crash's version from `crash --version` ("crash 8.0.2"), as 10000 * major + 100 * minor + patch; 0 unknown. */
static unsigned crash_version(const char *binary)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDERR_FILENO);
        execl(binary, binary, "--version", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[256] = { 0 };
    ssize_t n = pid > 0 ? read(pipefd[0], buf, sizeof buf - 1) : -1;
    close(pipefd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    unsigned a, b, c;
    const char *at = n > 0 ? strstr(buf, "crash ") : NULL;   /* after a blank line */
    return at && sscanf(at, "crash %u.%u.%u", &a, &b, &c) == 3 ? a * 10000 + b * 100 + c : 0;
}

static int copy_file(int in, int out, off_t size)
{
    off_t off = 0;
    while (off < size) {
        ssize_t n = sendfile(out, in, &off, (size_t)(size - off));
        if (n <= 0)
            return -1;
    }
    return 0;
}

/* The fixed copy, written beside its final name and renamed into place. 0, or -1 with err. */
static int make_copy(int in, const struct stat *st, int dir, const char *name, const off_t *offs, long n,
                     unsigned new_size, char *err, size_t errlen)
{
    char tmp[192];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", name, (long)getpid());
    int out = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    unsigned char byte = (unsigned char)new_size;
    int rc = out < 0 || copy_file(in, out, st->st_size) != 0 ? -1 : 0;
    for (long i = 0; rc == 0 && i < n; i++)
        if (pwrite(out, &byte, 1, offs[i]) != 1)
            rc = -1;
    if (out >= 0 && close(out) != 0)
        rc = -1;
    if (rc == 0 && renameat(dir, tmp, dir, name) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the copy: %s", strerror(errno));
        unlinkat(dir, tmp, 0);
    }
    return rc;
}

/* The cache's folder for the copies (private to this user). */
static int copies_dir(char *err, size_t errlen)
{
    char *cache = klab_cache_dir(), *dir = path_join(cache, "crash-vmlinux");
    int fd = private_dir_open(dir, true, err, errlen);
    free(cache);
    free(dir);
    return fd;
}

/* The fixed copy's path in the cache, made now when missing (*made says so). NULL with err. */
static char *fixed_copy(int in, const struct stat *st, const off_t *offs, long n, unsigned new_size, bool *made,
                        char *err, size_t errlen)
{
    char name[128];
    snprintf(name, sizeof name, "%llx-%llx-%llx-%lld.%09ld-pid%u", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec, new_size);
    int dir = copies_dir(err, errlen);
    if (dir < 0)
        return NULL;
    struct stat have;
    *made = !(fstatat(dir, name, &have, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(have.st_mode) &&
              have.st_size == st->st_size);
    int rc = *made ? make_copy(in, st, dir, name, offs, n, new_size, err, errlen) : 0;
    close(dir);
    if (rc != 0)
        return NULL;
    char *cache = klab_cache_dir(), *sub = path_join(cache, "crash-vmlinux"), *out = path_join(sub, name);
    free(cache);
    free(sub);
    return out;
}

enum { MAX_FIXES = 1 << 16 };

char *crash_vmlinux(const char *vmlinux, const char *crash_binary)
{
    unsigned v = crash_version(crash_binary);
    if (v >= 80006)   /* crash 8.0.6 counts the upid itself */
        return strdup(vmlinux);
    int in = open(vmlinux, O_RDONLY | O_CLOEXEC);
    struct stat st;
    off_t *offs = calloc(MAX_FIXES, sizeof *offs);
    unsigned old_size = 0, new_size = 0;
    char err[256] = "";
    long n = -1;
    if (in < 0 || fstat(in, &st) != 0)
        snprintf(err, sizeof err, "%s", strerror(errno));
    else
        n = crash_pid_size_fixes(in, offs, MAX_FIXES, &old_size, &new_size, err, sizeof err);
    bool made = false;
    char *out = n == 0 ? strdup(vmlinux) : n > 0 ? fixed_copy(in, &st, offs, n, new_size, &made, err, sizeof err) : NULL;
    if (made && out)
        klab_info("crash: %s's struct pid ends in numbers[] (v6.5's b69f0aeb0689): crash %u.%u.%u reads a copy "
                  "whose DWARF counts one upid (%u -> %u bytes): %s", vmlinux, v / 10000, v / 100 % 100, v % 100,
                  old_size, new_size, out);
    if (!out)
        klab_error("crash: cannot fix %s for crash's task list (%s): `ps` will show the idle tasks only", vmlinux, err);
    if (in >= 0)
        close(in);
    free(offs);
    return out;
}
