/* pagemap — where a process's pages are in physical memory, from the kernel's own /proc/PID/pagemap.
 *
 *   pagemap                 this program's stack, heap and data pages
 *   pagemap PID ADDR [N]    N pages (default 1) of process PID from virtual address ADDR
 *   pagemap --spin          as the first form, then spin in user mode forever in pagemap_spin(), so a
 *                           debugger can stop the CPU while it runs this process at EL0 / CPL 3
 *   pagemap --user-memory   seed 003's states of one process's pages: 16 anonymous pages, clear_refs, pages
 *                           0-7 written again (soft-dirty), pages 0-11 paged out (MADV_PAGEOUT: needs swap,
 *                           klab boot --swap), page 15 migrated (MADV_SOFT_OFFLINE: CONFIG_MEMORY_FAILURE);
 *                           prints each page's entry before the migration and page 15's after, then spins
 *
 * One 64-bit entry per virtual page (Documentation/admin-guide/mm/pagemap.rst): bits 0-54 the page frame
 * number when present (zero without CAP_SYS_ADMIN), 55 soft-dirty, 56 exclusively mapped, 61 file page or
 * shared anonymous, 62 swapped, 63 present. Static, so it runs in klab's busybox initramfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

/* What a debugger reads (by symbol) once it has stopped this process in pagemap_spin. */
volatile uintptr_t pagemap_probe_va;
volatile uint64_t pagemap_probe_pfn;
volatile int pagemap_probe_pid;

static unsigned char data_page[1 << 16] = { 1 };

static int print_entry(int fd, const char *what, uintptr_t va, long page_size, uint64_t *pfn_out)
{
    uint64_t e;
    off_t off = (off_t)(va / (uintptr_t)page_size) * (off_t)sizeof e;
    if (pread(fd, &e, sizeof e, off) != (ssize_t)sizeof e) {
        fprintf(stderr, "pagemap: cannot read the entry of %#" PRIxPTR ": %s\n", va, strerror(errno));
        return -1;
    }
    uint64_t pfn = e & ((1ull << 55) - 1);
    /* A swapped page's frame field is its swap entry: type in bits 0-4, offset above (pte_to_pagemap_entry). */
    const bool swapped = (e >> 62) & 1;
    printf("%-6s 0x%016" PRIxPTR " pfn 0x%" PRIx64 " present %d swapped %d soft-dirty %d exclusive %d file %d"
           " swap-type %d swap-offset 0x%" PRIx64 "\n",
           what, va, (e >> 63) & 1 ? pfn : 0, (int)(e >> 63 & 1), (int)swapped, (int)(e >> 55 & 1),
           (int)(e >> 56 & 1), (int)(e >> 61 & 1), swapped ? (int)(pfn & 31) : -1, swapped ? pfn >> 5 : 0);
    if (pfn_out)
        *pfn_out = (e >> 63) & 1 ? pfn : ~0ull;
    return 0;
}

__attribute__((noinline)) void pagemap_spin(void)
{
    for (;;)
        __asm__ volatile("" ::: "memory");
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif

static int open_pagemap(const char *pid);

/* --user-memory: swapped, soft-dirty, present and migrating pages of this process, each entry printed. */
static int user_memory(long page_size)
{
    enum { PAGES = 16, DIRTY = 8, OUT = 12, MIGRATE = 15 };
    unsigned char *p = mmap(NULL, PAGES * (size_t)page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    if (p == MAP_FAILED) {
        perror("pagemap: mmap");
        return 1;
    }
    for (int i = 0; i < PAGES; i++)
        memset(p + (size_t)i * (size_t)page_size, 0x40 + i, (size_t)page_size);
    int cr = open("/proc/self/clear_refs", O_WRONLY);   /* "4": clear the soft-dirty bits (soft-dirty.rst) */
    if (cr < 0 || write(cr, "4", 1) != 1)
        perror("pagemap: clear_refs");
    if (cr >= 0)
        close(cr);
    for (int i = 0; i < DIRTY; i++)
        p[(size_t)i * (size_t)page_size] = 0x80 + i;
    if (madvise(p, OUT * (size_t)page_size, MADV_PAGEOUT) != 0)
        perror("pagemap: madvise(MADV_PAGEOUT)");
    int fd = open_pagemap("self");
    if (fd < 0)
        return 1;
    uint64_t pfn = 0;
    printf("pagemap: pid %d, page size %ld, user-memory pages at 0x%" PRIxPTR "\n", (int)getpid(), page_size,
           (uintptr_t)p);
    for (int i = 0; i < PAGES; i++) {
        char what[16];
        snprintf(what, sizeof what, "um%02d", i);
        if (print_entry(fd, what, (uintptr_t)(p + (size_t)i * (size_t)page_size), page_size,
                        i == MIGRATE ? &pfn : NULL) != 0)
            return 1;
    }
    printf("pagemap: migrating um%02d at 0x%" PRIxPTR " from pfn 0x%" PRIx64 "\n", MIGRATE,
           (uintptr_t)(p + (size_t)MIGRATE * (size_t)page_size), pfn);
    fflush(stdout);
    sleep(1);   /* the console drains before a debugger stops the guest in the migration */
    if (madvise(p + (size_t)MIGRATE * (size_t)page_size, (size_t)page_size, MADV_SOFT_OFFLINE) != 0)
        printf("pagemap: madvise(MADV_SOFT_OFFLINE): %s\n", strerror(errno));
    else if (print_entry(fd, "moved", (uintptr_t)(p + (size_t)MIGRATE * (size_t)page_size), page_size, NULL) != 0)
        return 1;
    printf("pagemap: spinning in pagemap_spin\n");
    fflush(stdout);
    /* Until the serial line has sent it (tcdrain(3)): a debugger stops every CPU in pagemap_spin, and bytes
     * still in the tty's buffer then reach the console only once the guest runs again. */
    tcdrain(STDOUT_FILENO);
    pagemap_spin();
    return 0;
}

static int open_pagemap(const char *pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/pagemap", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fprintf(stderr, "pagemap: cannot open %s: %s\n", path, strerror(errno));
    return fd;
}

int main(int argc, char **argv)
{
    long page_size = sysconf(_SC_PAGESIZE);
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: pagemap [--spin | --user-memory] | pagemap PID ADDR [N]\n");
        return 0;
    }
    if (argc >= 3) {
        char *end;
        uintptr_t va = (uintptr_t)strtoull(argv[2], &end, 0);
        long n = argc > 3 ? strtol(argv[3], NULL, 0) : 1;
        if (*end || n < 1) {
            fprintf(stderr, "pagemap: ADDR and N must be numbers\n");
            return 2;
        }
        int fd = open_pagemap(argv[1]);
        if (fd < 0)
            return 1;
        for (long i = 0; i < n; i++)
            if (print_entry(fd, "page", va + (uintptr_t)(i * page_size), page_size, NULL) != 0)
                return 1;
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--user-memory"))
        return user_memory(page_size);
    int spin = argc == 2 && !strcmp(argv[1], "--spin");
    if (argc == 2 && !spin) {
        fprintf(stderr, "usage: pagemap [--spin] | pagemap PID ADDR [N]\n");
        return 2;
    }
    volatile char stack_var[64];
    stack_var[0] = 1;                       /* touch it: the stack page is present */
    char *heap = malloc((size_t)page_size);
    if (!heap)
        return 1;
    memset(heap, 2, (size_t)page_size);
    data_page[0] = 3;
    int fd = open_pagemap("self");
    if (fd < 0)
        return 1;
    uint64_t stack_pfn = 0;
    printf("pagemap: pid %d, page size %ld\n", (int)getpid(), page_size);
    if (print_entry(fd, "stack", (uintptr_t)stack_var, page_size, &stack_pfn) != 0 ||
        print_entry(fd, "heap", (uintptr_t)heap, page_size, NULL) != 0 ||
        print_entry(fd, "data", (uintptr_t)data_page, page_size, NULL) != 0)
        return 1;
    fflush(stdout);
    if (!spin)
        return 0;
    pagemap_probe_va = (uintptr_t)stack_var;
    pagemap_probe_pfn = stack_pfn;
    pagemap_probe_pid = (int)getpid();
    printf("pagemap: spinning in pagemap_spin\n");
    fflush(stdout);
    /* Until the serial line has sent it (tcdrain(3)): a debugger stops every CPU in pagemap_spin, and bytes
     * still in the tty's buffer then reach the console only once the guest runs again. */
    tcdrain(STDOUT_FILENO);
    pagemap_spin();
}
