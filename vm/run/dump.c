/* vm/run/dump.h. */
#define _GNU_SOURCE
#include "run/dump.h"
#include "machine/kimage.h"
#include "run/dump_vaddr.h"
#include "backend/backend.h"
#include "util/util.h"

#include "klab.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* QEMU's names (qapi/dump.json DumpGuestMemoryFormat) and HMP's flags for them (hmp-commands.hx). */
static const struct {
    const char *name, *flag;
} formats[DUMP_NFORMATS] = {
    [DUMP_ELF] = {"elf", ""},
    /* the guest's page tables walked by QEMU: PT_LOAD segments with virtual addresses (dump/dump.c) */
    [DUMP_ELF_PAGING] = {"elf-paging", "-p"},
    [DUMP_KDUMP_ZLIB] = {"kdump-zlib", "-z"},
    [DUMP_KDUMP_LZO] = {"kdump-lzo", "-l"},
    [DUMP_KDUMP_SNAPPY] = {"kdump-snappy", "-s"},
};

int dump_format_parse(const char *name, enum dump_format *f)
{
    for (int i = 0; i < DUMP_NFORMATS; i++)
        if (!strcmp(name, formats[i].name)) {
            *f = (enum dump_format)i;
            return 0;
        }
    return -1;
}

const char *dump_format_name(enum dump_format f) { return formats[f].name; }
const char *dump_format_flag(enum dump_format f) { return formats[f].flag; }

int dump_parse_info(const char *text, char *status, size_t statuslen, double *percent)
{
    const char *s = text ? strstr(text, "Status: ") : NULL;
    *percent = -1;
    if (!s || !statuslen)
        return -1;
    s += strlen("Status: ");
    size_t n = strcspn(s, " \r\n");
    if (n == 0 || n >= statuslen)
        return -1;
    memcpy(status, s, n);
    status[n] = '\0';
    const char *p = strstr(text, "Finished: ");
    if (p && sscanf(p + strlen("Finished: "), "%lf", percent) != 1)
        *percent = -1;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The VMCOREINFO note in the file's first MiB: ELF notes come right after the program headers, the kdump
 * header carries it in its sub-header (QEMU dump/dump.c). */
static bool has_vmcoreinfo(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    static char buf[1 << 20];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 && memmem(buf, (size_t)n, "OSRELEASE=", 10) != NULL;
}

/* The end of the last PT_LOAD's bytes in the file (ELF64 program headers of 56 bytes: p_type 0, p_offset 8,
 * p_vaddr 16, p_filesz 32; System V gABI) over num headers at ph; vaddrs: some p_vaddr is a kernel address. */
static uint64_t elf_segments_end(const unsigned char *ph, uint64_t num, bool *vaddrs)
{
    uint64_t end = 0;
    *vaddrs = false;
    for (uint64_t i = 0; i < num; i++, ph += 56) {
        uint64_t off = dump_le(ph + 8, 8), size = dump_le(ph + 32, 8);
        if (dump_le(ph, 4) != 1)
            continue;
        *vaddrs |= dump_le(ph + 16, 8) >> 63;   /* QEMU's plain dump has p_vaddr = p_paddr */
        if (off + size >= off && off + size > end)
            end = off + size;
    }
    return end;
}

/* VMCOREINFO's OSRELEASE= value in text, printable characters up to the line's end ("" when there is none). */
static void release_of(const char *text, size_t len, struct dump_info *out)
{
    const char *r = text ? memmem(text, len, "OSRELEASE=", 10) : NULL;
    size_t n = 0;
    while (r && r + 10 + n < text + len && n < sizeof out->release - 1 && r[10 + n] != '\n' &&
           (unsigned char)r[10 + n] >= 0x20 && (unsigned char)r[10 + n] < 0x7f)
        n++;
    if (r)
        memcpy(out->release, r + 10, n);
    out->release[n] = '\0';
}

int dump_inspect_buffer(const unsigned char *buf, size_t len, const unsigned char *phdrs, size_t phlen,
                        unsigned long long file_size, struct dump_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    static const char flat[] = "makedumpfile";   /* the flattened format's signature (makedumpfile.h) */
    if (len >= 20 && !memcmp(buf, "\177ELF", 4)) {
        /* ELF64 little-endian core: e_type (16) ET_CORE, e_machine (18): 62 x86-64, 183 AArch64 */
        if (buf[4] != 2 || buf[5] != 1) {
            snprintf(err, errlen, "an ELF file, but not a 64-bit little-endian one");
            return -1;
        }
        unsigned type = buf[16] | buf[17] << 8, machine = buf[18] | buf[19] << 8;
        if (type != 4) {
            snprintf(err, errlen, "an ELF file, but not a core dump (e_type %u)", type);
            return -1;
        }
        out->elf = true;
        out->arch = machine == 62 ? "x86_64" : machine == 183 ? "arm64" : NULL;
        if (len < 64) {
            snprintf(err, errlen, "a truncated ELF header");
            return -1;
        }
        uint64_t phoff = dump_le(buf + 32, 8), entsize = dump_le(buf + 54, 2), num = dump_le(buf + 56, 2);
        if (!phdrs && phoff <= len) {
            phdrs = buf + phoff;
            phlen = len - phoff;
        }
        if (entsize == 56 && phoff + num * 56 > file_size) {
            snprintf(err, errlen, "truncated: its program headers end at byte %llu, the file has %llu",
                     (unsigned long long)(phoff + num * 56), file_size);
            return -1;
        }
        if (entsize != 56 || !phdrs || num > phlen / 56) {
            snprintf(err, errlen, "its program headers are not where it says (%llu of %llu bytes at %llu)",
                     (unsigned long long)num, (unsigned long long)entsize, (unsigned long long)phoff);
            return -1;
        }
        uint64_t end = elf_segments_end(phdrs, num, &out->vaddrs);
        if (end > file_size) {
            snprintf(err, errlen, "truncated: its segments end at byte %llu, the file has %llu",
                     (unsigned long long)end, file_size);
            return -1;
        }
    } else if ((len < sizeof flat - 1 || memcmp(buf, flat, sizeof flat - 1)) && (len < 8 || memcmp(buf, "KDUMP   ", 8))) {
        snprintf(err, errlen, "not a dump klab knows (neither an ELF core nor a makedumpfile file)");
        return -1;
    }
    release_of((const char *)buf, len, out);
    return 0;
}

/* A makedumpfile file's architecture and release, from libklab's reading of it (its header's utsname machine,
 * its VMCOREINFO), which also refuses a truncated or damaged one. */
static int kdump_facts(const char *path, struct dump_info *out, char *err, size_t errlen)
{
    struct klab_elfcore_info info;
    struct klab_error e;
    struct klab_physmem *m = klab_physmem_open_elfcore(path, &info, &e);
    if (!m) {
        snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    out->arch = info.arch == KLAB_ARCH_X86_64 ? "x86_64" : "arm64";
    release_of(info.vmcoreinfo, info.vmcoreinfo ? info.vmcoreinfo_len : 0, out);
    klab_physmem_close(m);
    return 0;
}

int dump_inspect(const char *path, struct dump_info *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    static unsigned char buf[1 << 20], phdrs[56 * 4096];
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf) : -1;
    ssize_t phn = -1;
    /* klab dump appends a program header table at the end (dump_vaddr.h): read it where e_phoff says */
    if (n >= 64 && !memcmp(buf, "\177ELF", 4) && dump_le(buf + 32, 8) + 64 > (uint64_t)n)
        phn = pread(fd, phdrs, sizeof phdrs, (off_t)dump_le(buf + 32, 8));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read %s (not a regular file?)", path);
        return -1;
    }
    if (dump_inspect_buffer(buf, (size_t)n, phn > 0 ? phdrs : NULL, phn > 0 ? (size_t)phn : 0,
                            (unsigned long long)st.st_size, out, err, errlen) != 0)
        return -1;
    return out->elf ? 0 : kdump_facts(path, out, err, errlen);
}

/* QEMU's answer is warnings only ("warning: guest note is not present": no VMCOREINFO): the dump runs. */
static bool only_warnings(const char *answer)
{
    for (const char *line = answer; *line;) {
        size_t n = strcspn(line, "\n");
        if (n && strncmp(line, "warning: ", 9))
            return false;
        line += n + (line[n] == '\n');
    }
    return true;
}

static char *monitor_line(const struct runstate *rs, const char *cmd)
{
    char *out = runstate_monitor(rs, cmd, 5000);
    if (out) {   /* trim the trailing newlines */
        size_t n = strlen(out);
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
    }
    return out;
}

/* Waits for the detached dump to end: 0 when completed, -1 after one error line. */
static int wait_dump(const struct runstate *rs, const char *tmp_dir)
{
    bool tty = isatty(STDERR_FILENO);
    /* a bound for the largest guests klab boots (64 GiB at well over 100 MB/s), so a wedged QEMU ends here */
    for (double start = now();;) {
        if (now() - start > 900) {
            klab_error("dump: QEMU's dump has not finished after 15 minutes; giving up (the VM may still be paused)");
            return -1;
        }
        char *info = runstate_monitor(rs, "info dump", 5000);
        char status[32];
        double pct;
        if (!info || dump_parse_info(info, status, sizeof status, &pct) != 0) {
            klab_error("dump: QEMU's monitor gave no dump status (%s)", info ? info : "no answer");
            free(info);
            return -1;
        }
        free(info);
        if (!strcmp(status, "completed"))
            break;
        if (strcmp(status, "active")) {
            struct statvfs v;
            bool full = statvfs(tmp_dir, &v) == 0 && v.f_bavail * v.f_frsize < (16u << 20);
            klab_error("dump: QEMU's dump %s%s", status, full ? ": the file system is full" : "");
            return -1;
        }
        if (tty && pct >= 0)
            fprintf(stderr, "\rklab dump: %5.1f%%", pct);
        usleep(100 * 1000);
    }
    if (tty)
        fprintf(stderr, "\rklab dump: 100.0%%\n");
    return 0;
}

/* The dump into tmp_file: by the backend's own call when it has one (libvirt: no paging dump there, so *f
 * becomes elf), else QEMU's dump-guest-memory through the monitor, detached and polled. 0, or -1 after one
 * line. */
static int write_dump(const struct runstate *rs, const char *tmp_dir, const char *tmp_file, enum dump_format *f)
{
    const struct backend_ops *b = backend_find(rs->backend);
    if (b && b->dump) {
        char err[512];
        if (*f == DUMP_ELF_PAGING)
            *f = DUMP_ELF;
        if (b->dump(rs, tmp_file, dump_format_name(*f), err, sizeof err) == 0)
            return 0;
        klab_error("dump: %s refused: %s", b->name, err);
        return -1;
    }
    /* HMP takes the flags in the order of its argument list: -p, -d, then the compression (hmp-commands.hx) */
    char *cmd = *f == DUMP_ELF_PAGING ? xasprintf("dump-guest-memory -p -d %s", tmp_file)
                                      : xasprintf("dump-guest-memory -d %s %s", dump_format_flag(*f), tmp_file);
    char *answer = monitor_line(rs, cmd);
    int rc = -1;
    if (!answer)
        klab_error("dump: QEMU's monitor does not answer");
    else if (*answer && !only_warnings(answer))   /* HMP says nothing when the dump has started */
        klab_error("dump: QEMU refused: %s", answer);
    else
        rc = wait_dump(rs, tmp_dir);
    free(answer);
    free(cmd);
    return rc;
}

int dump_vm(const struct runstate *rs, const char *target, enum dump_format f, struct dump_result *out)
{
    struct stat st;
    if (lstat(target, &st) == 0) {
        klab_error("dump: %s exists (klab never replaces a file: remove it or give another -o)", target);
        return -1;
    }
    char *copy = strdup(target), *dir = dirname(copy);
    char *tmpl = xasprintf("%s/.klab-dump-XXXXXX", dir);
    char *tmp_dir = mkdtemp(tmpl);   /* 0700, ours: QEMU (this user) writes only in here */
    if (!tmp_dir) {
        klab_error("dump: cannot create a folder in %s: %s", dir, strerror(errno));
        free(tmpl);
        free(copy);
        return -1;
    }
    char *abs_dir = realpath(tmp_dir, NULL);
    char *tmp_file = path_join(abs_dir ? abs_dir : tmp_dir, "dump");
    int rc = -1;
    double t0 = now();
    if (write_dump(rs, tmp_dir, tmp_file, &f) == 0) {
        out->format = f;
        out->note[0] = '\0';
        if (f == DUMP_ELF || f == DUMP_ELF_PAGING) {
            /* QEMU wrote it 0400 in our private folder: writable for the moment of the header update */
            char why[160];
            chmod(tmp_file, 0600);
            if (dump_add_pgd_view(tmp_file, why, sizeof why) != 0)
                snprintf(out->note, sizeof out->note, "no virtual view for drgn: %s", why);
            chmod(tmp_file, 0400);
        }
        if (renameat2(AT_FDCWD, tmp_file, AT_FDCWD, target, RENAME_NOREPLACE) != 0 &&
            !(errno == EINVAL && link(tmp_file, target) == 0))
            klab_error("dump: cannot move the dump to %s: %s", target, strerror(errno));
        else {
            out->seconds = now() - t0;
            out->bytes = stat(target, &st) == 0 ? (unsigned long long)st.st_size : 0;
            out->vmcoreinfo = has_vmcoreinfo(target);
            rc = 0;
        }
    }
    unlink(tmp_file);
    rmdir(tmp_dir);
    free(tmp_file);
    free(abs_dir);
    free(tmpl);
    free(copy);
    return rc;
}

int dump_vmlinux_check(const char *dump, const char *vmlinux, struct dump_info *d, char *err, size_t errlen)
{
    struct kimage_info k;
    char why[256];
    if (dump_inspect(dump, d, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", dump, why);
        return -1;
    }
    if (vmlinux_inspect(vmlinux, &k, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (!d->arch || strcmp(d->arch, k.profile->arch)) {
        snprintf(err, errlen, "%s is a %s dump, %s a %s kernel", dump, d->arch ? d->arch : "foreign", vmlinux,
                 k.profile->arch);
        return -1;
    }
    if (!d->release[0]) {
        snprintf(err, errlen, "%s has no VMCOREINFO, so nothing says which kernel it holds", dump);
        return -1;
    }
    if (strcmp(d->release, k.release)) {
        snprintf(err, errlen, "%s holds kernel %s, %s is %s", dump, d->release, vmlinux, k.release);
        return -1;
    }
    return 0;
}
