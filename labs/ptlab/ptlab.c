/* ptlab — page-table changes to watch with klab ptsnap / ptdiff (docs/walkthroughs/fork-cow.md).
 *
 *   ptlab    16 private anonymous pages, each written once; then four phases, each announced by a
 *            getppid() system call (a debugger stops on the kernel's getppid while current is ptlab and
 *            takes a snapshot of this process's tables there):
 *              1  the pages as written: read-write, each its own frame
 *              2  after mprotect(PROT_READ) of pages 8-11: their PTEs lose the write bit
 *              3  after fork(): the child pauses; the kernel write-protected every private writable page
 *                 of both (copy-on-write, mm/memory.c copy_present_pte)
 *              4  after the parent wrote page 5: the write fault gave the parent a copy of that page
 *                 (mm/memory.c wp_page_copy), writable again; the child keeps the old frame
 *            Between phases it prints what /proc says of the same pages (PFNs from /proc/self/pagemap,
 *            the VMA from /proc/self/maps): the debugger's independent truth. Then it pauses forever.
 *
 *   ptlab --secret [N]   seed 004: N pages (default 1) of memfd_secret(2) (the kernel needs
 *            secretmem.enable=1 before v6.5), each written once: the fault takes the page out of the
 *            kernel's direct map (mm/secretmem.c secretmem_fault: set_direct_map_invalid_noflush), which on
 *            x86 first splits the 2M mapping around it into 4K pages. Prints the last page's frame
 *            (pagemap) and /proc/meminfo's DirectMap lines before and after the writes, then pauses with
 *            the pages held. Many pages reach frames in 2M mappings nothing split yet.
 *
 * Static, so it runs in klab's busybox initramfs; root there, so pagemap shows the frames. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { PAGES = 16 };

/* What a debugger that stops in the kernel's getppid reads (by symbol, through ptlab's own mapping): the
 * phase, the buffer, the child, and the frames pagemap gave: [0] the parent's at the start, [1] the
 * parent's after the write, [2] the child's then. The console shows the same, but a serial console may
 * lose a line. */
volatile int ptlab_phase, ptlab_child;
volatile uintptr_t ptlab_buf;
volatile long ptlab_page_size;
volatile uint64_t ptlab_pfns[3][PAGES];

static void phase(int n)
{
    ptlab_phase = n;
    printf("ptlab: phase %d\n", n);
    fflush(stdout);
    syscall(SYS_getppid);   /* the debugger's stop: not the libc wrapper, which might cache */
}

/* Page i's frame from pid's pagemap (Documentation/admin-guide/mm/pagemap.rst: bits 0-54 the PFN when bit
 * 63, present, is set), or 0. */
static uint64_t pfn_of(pid_t pid, const char *buf, long ps, int i)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
    int fd = open(path, O_RDONLY);
    uint64_t e = 0;
    if (fd < 0 || pread(fd, &e, sizeof e, (off_t)((uintptr_t)(buf + (long)i * ps) / (uintptr_t)ps) * 8) != 8)
        e = 0;
    if (fd >= 0)
        close(fd);
    return (e >> 63) & 1 ? e & ((1ull << 55) - 1) : 0;
}

static void print_pfns(int group, const char *who, pid_t pid, const char *buf, long ps)
{
    for (int i = 0; i < PAGES; i++)
        ptlab_pfns[group][i] = pfn_of(pid, buf, ps, i);
    for (int i = 0; i < PAGES; i++)
        printf("ptlab: %s page %02d 0x%016" PRIxPTR " pfn 0x%" PRIx64 "\n", who, i, (uintptr_t)(buf + (long)i * ps),
               pfn_of(pid, buf, ps, i));
    fflush(stdout);
}

/* The /proc/self/maps lines of [lo, hi). */
static void print_maps(const char *lo, const char *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        uintptr_t a, b;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2 && a < (uintptr_t)hi && b > (uintptr_t)lo)
            printf("ptlab: maps %s", line);
    }
    if (f)
        fclose(f);
    fflush(stdout);
}

/* /proc/meminfo's DirectMap lines (x86 only: arch/x86/mm/pat/set_memory.c arch_report_meminfo). */
static void print_direct_map(const char *when)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "DirectMap", 9))
            printf("ptlab: %s %s", when, line);
    if (f)
        fclose(f);
    fflush(stdout);
}

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447   /* the same number on x86_64 and arm64 (include/uapi/asm-generic/unistd.h) */
#endif

static int secret(long ps, long n)
{
    int fd = (int)syscall(SYS_memfd_secret, 0);
    if (fd < 0) {
        printf("ptlab: memfd_secret: %s (Linux before 6.5 needs secretmem.enable=1)\n", strerror(errno));
        return 1;
    }
    char *p = MAP_FAILED;
    if (ftruncate(fd, n * ps) != 0 ||
        (p = mmap(NULL, (size_t)(n * ps), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        printf("ptlab: secret page: %s\n", strerror(errno));
        return 1;
    }
    print_direct_map("before");
    for (long i = 0; i < n; i++)
        p[i * ps] = 's';   /* the fault: the page leaves the direct map */
    printf("ptlab: secret 0x%016" PRIxPTR " pfn 0x%" PRIx64 " (page %ld of %ld)\n", (uintptr_t)(p + (n - 1) * ps),
           pfn_of(getpid(), p, ps, (int)(n - 1)), n, n);
    print_direct_map("after");
    printf("ptlab: done\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    const long ps = sysconf(_SC_PAGESIZE);
    if (argc > 1 && !strcmp(argv[1], "--secret")) {
        const long n = argc > 2 ? strtol(argv[2], NULL, 0) : 1;
        if (n < 1 || n > 65536) {
            fprintf(stderr, "ptlab: --secret wants 1 to 65536 pages\n");
            return 2;
        }
        return secret(ps, n);
    }
    char *buf = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("ptlab: mmap");
        return 1;
    }
    for (int i = 0; i < PAGES; i++)
        buf[i * ps] = (char)i;
    printf("ptlab: pid %d buf 0x%016" PRIxPTR " pages %d page-size %ld\n", (int)getpid(), (uintptr_t)buf, PAGES, ps);
    ptlab_buf = (uintptr_t)buf;
    ptlab_page_size = ps;
    print_pfns(0, "parent", getpid(), buf, ps);
    phase(1);

    if (mprotect(buf + 8 * ps, 4 * ps, PROT_READ) != 0)
        perror("ptlab: mprotect");
    print_maps(buf, buf + PAGES * ps);
    phase(2);

    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    ptlab_child = (int)child;
    printf("ptlab: child %d\n", (int)child);
    phase(3);

    buf[5 * ps] = 42;   /* the write fault: a copy for the parent */
    print_pfns(1, "parent", getpid(), buf, ps);
    print_pfns(2, "child", child, buf, ps);
    phase(4);
    printf("ptlab: done\n");
    fflush(stdout);
    for (;;)
        pause();
}
