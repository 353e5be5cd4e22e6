/* The vmlinux klab gives crash (machine/crash_compat.h: crash_vmlinux).
 *
 * crash's embedded gdb (10.2 in crash 8.0.x) reads the kernel's DWARF at every start: without an index it builds
 * its partial symbol tables from all of .debug_info, 8.6 s of a 9 s start on Debian's 6.1 amd64 vmlinux here.
 * gdb reads a .gdb_index section instead when the file has one (gdb/dwarf2/read.c, dwarf2_read_gdb_index), and
 * klab already keeps gdb's index of every kernel it fetches or builds (kernels/gdb-index.sh, the index-cache
 * file named by the vmlinux's build-id, version 8 of the format, which gdb 10 reads). crash passes gdb no
 * options and has no index cache of its own, so klab hands it a copy of the vmlinux with that index added as
 * a section, by binutils' objcopy, once per vmlinux in its cache. The copy also carries the struct pid fix a
 * crash before 8.0.6 needs (crash_compat.c), written after objcopy has laid the file out. */
#define _GNU_SOURCE
#include "machine/crash_compat.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "util/private_dir.h"
#include "util/spawn.h"
#include "util/util.h"

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

/* The vmlinux's GNU build-id in hex (what gdb names its index-cache files by), or NULL; *machine its e_machine. */
static char *build_id(int fd, uint16_t *machine)
{
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    GElf_Ehdr eh;
    *machine = e && gelf_getehdr(e, &eh) ? eh.e_machine : 0;
    char *hex = NULL;
    for (Elf_Scn *s = e ? elf_nextscn(e, NULL) : NULL; s && !hex; s = elf_nextscn(e, s)) {
        GElf_Shdr sh;
        Elf_Data *d;
        if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_NOTE || !(d = elf_getdata(s, NULL)))
            continue;
        GElf_Nhdr nh;
        size_t off = 0, name_off, desc_off;
        while (!hex && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 || memcmp((char *)d->d_buf + name_off, "GNU", 4) ||
                nh.n_descsz == 0 || nh.n_descsz > 64)
                continue;
            hex = calloc(2 * nh.n_descsz + 1, 1);
            for (size_t i = 0; hex && i < nh.n_descsz; i++)
                sprintf(hex + 2 * i, "%02x", ((unsigned char *)d->d_buf)[desc_off + i]);
        }
    }
    if (e)
        elf_end(e);
    return hex;
}

/* gdb's index of vmlinux from klab's index cache, built now (kernels/gdb-index.sh, as `make kernels` does) when
 * it is missing: an open descriptor (not close-on-exec: objcopy reads it as /proc/self/fd/N), or -1. Only a
 * regular file of this user's, in the cache's private folder, is taken: crash's gdb parses it. */
static int gdb_index_open(const char *vmlinux, const char *id)
{
    char *cache = klab_cache_dir(), *dir = path_join(cache, "gdb-index"), *name = xasprintf("%s.gdb-index", id);
    char err[256];
    struct stat st;
    int d = private_dir_open(dir, false, err, sizeof err), fd = -1;
    if (d < 0 || fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (d >= 0)
            close(d);
        char *script = xasprintf("%s/kernels/gdb-index.sh", klab_data_dir());
        char *const argv[] = { "bash", script, (char *)vmlinux, NULL };
        struct spawn s = { .argv = argv, .inherit_stdio = true, .timeout_ms = 600000 };
        spawn_run(&s);   /* it says what it does, or why it could not */
        free(script);
        d = private_dir_open(dir, false, err, sizeof err);
    }
    if (d >= 0) {
        fd = openat(d, name, O_RDONLY | O_NOFOLLOW);
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
                        (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size == 0)) {
            close(fd);
            fd = -1;
        }
        close(d);
    }
    free(cache);
    free(dir);
    free(name);
    return fd;
}

enum { MAX_FIXES = 1 << 16 };

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

/* vmlinux into dir/tmp: by objcopy (binutils' for the vmlinux's architecture: the host's own reads only its
 * own) with the index added as .gdb_index when index >= 0, else byte for byte. 0, or -1 with err. */
static int write_copy(const char *vmlinux, int in, off_t size, const char *objcopy, int index, int dir,
                      const char *tmp, char *err, size_t errlen)
{
    if (index < 0) {
        int out = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        int rc = out < 0 || copy_file(in, out, size) != 0 ? -1 : 0;
        if (out >= 0 && close(out) != 0)
            rc = -1;
        if (rc != 0)
            snprintf(err, errlen, "cannot write the copy: %s", strerror(errno));
        return rc;
    }
    char *section = xasprintf(".gdb_index=/proc/self/fd/%d", index);
    char *cache = klab_cache_dir(), *out = xasprintf("%s/crash-vmlinux/%s", cache, tmp);   /* dir, checked private */
    free(cache);
    char *const argv[] = { (char *)objcopy, "--add-section", section, "--set-section-flags", ".gdb_index=readonly",
                           (char *)vmlinux, out, NULL };
    struct spawn s = { .argv = argv, .timeout_ms = 300000 };
    int rc = spawn_run(&s);
    free(section);
    free(out);
    if (rc != 0) {
        snprintf(err, errlen, "%s could not add gdb's index (%s)", objcopy, rc == 127 ? "not installed: "
                 "scripts/deps.sh installs it" : rc == SPAWN_TIMEOUT ? "timed out" : "it failed");
        return -1;
    }
    return 0;
}

/* Every struct pid's DW_AT_byte_size in the copy at dir/tmp made new_size (offsets found in the copy itself:
 * objcopy may have moved .debug_info). 0, or -1 with err. */
static int fix_pid(int dir, const char *tmp, char *err, size_t errlen)
{
    int fd = openat(dir, tmp, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    off_t *offs = calloc(MAX_FIXES, sizeof *offs);
    unsigned old_size = 0, new_size = 0;
    long n = fd < 0 || !offs ? -1 : crash_pid_size_fixes(fd, offs, MAX_FIXES, &old_size, &new_size, err, errlen);
    unsigned char byte = (unsigned char)new_size;
    for (long i = 0; i < n; i++)
        if (pwrite(fd, &byte, 1, offs[i]) != 1) {
            snprintf(err, errlen, "cannot write the copy: %s", strerror(errno));
            n = -1;
        }
    if (fd >= 0 && close(fd) != 0)
        n = -1;
    free(offs);
    return n < 0 ? -1 : 0;
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

/* What crash needs of this vmlinux: the pid fix (a crash before 8.0.6 on a kernel whose struct pid ends in
 * numbers[]), gdb's index (when klab has or can build it). Pure planning of the copy's name from them. */
static char *copy_name(const struct stat *st, bool index, unsigned pid_size)
{
    char pid[16] = "";
    if (pid_size)
        snprintf(pid, sizeof pid, "-pid%u", pid_size);
    return xasprintf("%llx-%llx-%llx-%lld.%09ld%s%s", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
                     (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                     index ? "-index" : "", pid);
}

/* The copy at dir/name, made now (through a temporary name, renamed into place) unless it is there. 0, or -1
 * with err; *made says whether it was made now. */
static int ensure_copy(const char *vmlinux, int in, const struct stat *st, const char *objcopy, int index, bool pid,
                       int dir, const char *name, bool *made, char *err, size_t errlen)
{
    struct stat have;
    *made = false;
    if (fstatat(dir, name, &have, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(have.st_mode))
        return 0;   /* the folder is private: only klab put it there, and only complete (renamed into place) */
    char *tmp = xasprintf("%s.%ld.tmp", name, (long)getpid());
    int rc = write_copy(vmlinux, in, st->st_size, objcopy, index, dir, tmp, err, errlen);
    if (rc == 0 && pid)
        rc = fix_pid(dir, tmp, err, errlen);
    if (rc == 0 && renameat(dir, tmp, dir, name) != 0) {
        snprintf(err, errlen, "cannot write the copy: %s", strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlinkat(dir, tmp, 0);
    free(tmp);
    *made = rc == 0;
    return rc;
}

/* The copy's path: with the index (index >= 0) if objcopy can add it, else with the pid fix alone when one is
 * needed (pid_size > 0); NULL with err when neither could be made. Says in one line what crash will miss. */
static char *crash_copy(const char *vmlinux, int in, const struct stat *st, const char *objcopy, int index,
                        unsigned pid_size, bool *made, char *err, size_t errlen)
{
    int dir = copies_dir(err, errlen);
    char *out = NULL;
    for (int with_index = index >= 0; dir >= 0 && !out && with_index >= 0 && (with_index || pid_size); with_index--) {
        char *name = copy_name(st, with_index, pid_size);
        if (ensure_copy(vmlinux, in, st, objcopy, with_index ? index : -1, pid_size > 0, dir, name, made, err,
                        errlen) == 0) {
            char *cache = klab_cache_dir(), *sub = path_join(cache, "crash-vmlinux");
            out = path_join(sub, name);
            free(cache);
            free(sub);
            if (*made && with_index)
                klab_info("crash: a copy of %s with gdb's index of its DWARF, so crash's gdb does not read all of "
                          "it at each start%s: %s", vmlinux, pid_size ? ", and struct pid's size for this crash" : "",
                          out);
        } else if (with_index) {
            klab_info("crash: reads %s%s without gdb's index, so its gdb reads all the DWARF at each start (%s)",
                      pid_size ? "a copy of " : "", vmlinux, err);
        }
        free(name);
    }
    if (dir >= 0)
        close(dir);
    return out;
}

char *crash_vmlinux(const char *vmlinux, const char *crash_binary)
{
    unsigned v = crash_version(crash_binary);
    int in = open(vmlinux, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0) {
        if (in >= 0)
            close(in);
        return strdup(vmlinux);   /* crash says what is wrong with it */
    }
    /* The pid fix, planned on the original (the copy is searched again once written: objcopy lays it out). */
    off_t *offs = calloc(MAX_FIXES, sizeof *offs);
    unsigned old_size = 0, new_size = 0;
    char err[256] = "";
    long fixes = v >= 80006 ? 0 : !offs ? -1 : crash_pid_size_fixes(in, offs, MAX_FIXES, &old_size, &new_size, err,
                                                                      sizeof err);
    free(offs);
    uint16_t machine;
    char *id = build_id(in, &machine);
    const struct machine_profile *p = profile_for_elf_machine(machine);
    int index = id && p ? gdb_index_open(vmlinux, id) : -1;   /* another architecture: crash says so */
    free(id);
    bool made = false;
    char *out = fixes < 0 || (index < 0 && fixes == 0) ? NULL :
                crash_copy(vmlinux, in, &st, p ? p->objcopy : "objcopy", index, fixes > 0 ? new_size : 0, &made, err,
                           sizeof err);
    if (made && fixes > 0)
        klab_info("crash: %s's struct pid ends in numbers[] (v6.5's b69f0aeb0689): crash %u.%u.%u reads a copy "
                  "whose DWARF counts one upid (%u -> %u bytes): %s", vmlinux, v / 10000, v / 100 % 100, v % 100,
                  old_size, new_size, out);
    if (!out && fixes != 0)
        klab_error("crash: cannot fix %s for crash's task list (%s): `ps` will show the idle tasks only", vmlinux, err);
    if (index >= 0)
        close(index);
    close(in);
    return out ? out : strdup(vmlinux);
}
