/* Synthetic guest RAM for libklab's tests: 32 MiB from RAM_BASE, read through a callback that counts reads
 * and refuses anything outside it, and put() to write one 64-bit table entry. */
#ifndef KLAB_SYNTHETIC_RAM_H
#define KLAB_SYNTHETIC_RAM_H

#include "klab.h"

#include <stdlib.h>
#include <string.h>

#define RAM_BASE 0x40000000ull
#define RAM_SIZE (32ull << 20)
static unsigned char *ram;
static unsigned ram_reads;

static int read_ram(void *ctx, uint64_t pa, void *buf, size_t len)
{
    (void)ctx;
    ram_reads++;
    if (pa < RAM_BASE || pa - RAM_BASE + len > RAM_SIZE)
        return -1;
    memcpy(buf, ram + (pa - RAM_BASE), len);
    return 0;
}

static void put(uint64_t table_pa, uint64_t index, uint64_t value)
{
    memcpy(ram + (table_pa - RAM_BASE) + 8 * index, &value, 8);
}

/* TCR_EL1 for the upper half: T1SZ, TG1 (01 = 16K, 10 = 4K, 11 = 64K). */
static inline uint64_t tcr_upper(unsigned va_bits, unsigned tg1)
{
    return (uint64_t)(64 - va_bits) << 16 | (uint64_t)tg1 << 30;
}

/* Zeroed RAM (allocated on first use) and a physical-memory source over it. */
static struct klab_physmem *fresh_memory(void)
{
    if (!ram)
        ram = malloc(RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    ram_reads = 0;
    return klab_physmem_from_callback(read_ram, NULL);
}

#endif
