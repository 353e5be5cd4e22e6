/* The kernel's translation registers from a dump's VMCOREINFO, where a dump has no system registers. What
 * each architecture writes: kernel/vmcore_info.c (SYMBOL(swapper_pg_dir), PAGESIZE), arch/x86/kernel/
 * vmcore_info_64.c (NUMBER(phys_base) "%ld", NUMBER(pgtable_l5_enabled)), arch/arm64/kernel/vmcore_info.c
 * (NUMBER(VA_BITS), NUMBER(kimage_voffset) and NUMBER(TCR_EL1_T1SZ) as 0x hex). SYMBOL values are hex
 * without 0x and are run-time addresses (KASLR included). Pure. */
#include "error_internal.h"
#include "klab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define START_KERNEL_MAP 0xffffffff80000000ull   /* x86_64 __START_KERNEL_map (asm/page_64_types.h) */

bool klab_vmcoreinfo_value(const char *text, size_t len, const char *key, int base, uint64_t *v)
{
    size_t klen = strlen(key);
    if (!text || !klen)
        return false;
    for (size_t i = 0; i + klen < len; i++) {
        if ((i && text[i - 1] != '\n') || memcmp(text + i, key, klen))
            continue;
        char buf[32];
        size_t n = 0;
        const char *p = text + i + klen;
        while (p + n < text + len && n < sizeof buf - 1 && p[n] != '\n' && p[n] != '\0')
            n++;
        memcpy(buf, p, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        *v = strtoull(buf, &end, base);
        return n && !errno && *end == '\0';   /* "-N" wraps: phys_base is printed with %ld and is below 0 when a
                                                  KASLR kernel runs below LOAD_PHYSICAL_ADDR */
    }
    return false;
}

static int missing(char *err, size_t errlen, const char *what)
{
    if (err)
        snprintf(err, errlen, "the dump's VMCOREINFO has no usable %s", what);
    return -1;
}

/* x86_64: init_top_pgt's PA by __pa_symbol (asm/page_64.h: x - __START_KERNEL_map + phys_base); long mode
 * (EFER.LME|LMA, CR4.PAE, CR0.PG); NXE on, as the kernel turns it on wherever the CPU has NX (a kernel on a
 * CPU without it writes no NX bits: __supported_pte_mask), so no entry is misread as reserved. */
static int x86_64_regs(const char *t, size_t len, uint64_t pgd, struct klab_mmu_regs *r, char *err, size_t errlen)
{
    uint64_t phys_base, l5;
    if (!klab_vmcoreinfo_value(t, len, "NUMBER(phys_base)=", 10, &phys_base))
        return missing(err, errlen, "NUMBER(phys_base)");
    if (!klab_vmcoreinfo_value(t, len, "NUMBER(pgtable_l5_enabled)=", 10, &l5) || l5 > 1)
        return missing(err, errlen, "NUMBER(pgtable_l5_enabled) (paging depth)");
    if (pgd < START_KERNEL_MAP)
        return missing(err, errlen, "SYMBOL(swapper_pg_dir) in the kernel image");
    *r = (struct klab_mmu_regs){
        .arch = KLAB_ARCH_X86_64,
        .cr3 = (pgd - START_KERNEL_MAP + phys_base) & ~0xfffull,
        .cr4 = 1ull << 5 | l5 << 12,             /* PAE, LA57 (SDM Vol. 3A 2.5) */
        .efer = 1ull << 8 | 1ull << 10 | 1ull << 11,   /* LME, LMA, NXE (SDM Vol. 3A 2.2.1) */
    };
    return 0;
}

/* arm64: swapper_pg_dir's PA by __pa_symbol (asm/memory.h: x - kimage_voffset). TCR_EL1 (Arm ARM D19.2.139):
 * T1SZ as the kernel computed it, TG1 for PAGESIZE (4K 0b10, 16K 0b01, 64K 0b11), EPD0 set, IPS 48 bits.
 * 52-bit VAs with 4K or 16K pages need TCR_EL1.DS (FEAT_LPA2), which VMCOREINFO does not say: refused. */
static int arm64_regs(const char *t, size_t len, uint64_t pgd, uint64_t page, struct klab_mmu_regs *r, char *err,
                      size_t errlen)
{
    uint64_t voff, t1sz, va_bits;
    if (!klab_vmcoreinfo_value(t, len, "NUMBER(kimage_voffset)=", 16, &voff))
        return missing(err, errlen, "NUMBER(kimage_voffset)");
    if (!klab_vmcoreinfo_value(t, len, "NUMBER(TCR_EL1_T1SZ)=", 16, &t1sz) || t1sz < 12 || t1sz > 48)
        return missing(err, errlen, "NUMBER(TCR_EL1_T1SZ)");
    if (!klab_vmcoreinfo_value(t, len, "NUMBER(VA_BITS)=", 10, &va_bits))
        return missing(err, errlen, "NUMBER(VA_BITS)");
    if (64 - t1sz > 48 && page != 65536) {
        if (err)
            snprintf(err, errlen, "a %llu-bit kernel VA space with %lluK pages needs TCR_EL1.DS (LPA2), which "
                     "VMCOREINFO does not record", (unsigned long long)(64 - t1sz), (unsigned long long)page / 1024);
        return -1;
    }
    const uint64_t tg1 = page == 4096 ? 2 : page == 16384 ? 1 : 3;
    const uint64_t ips = 64 - t1sz > 48 ? 6 : 5;   /* 52 or 48 bits (D19.2.139 IPS) */
    *r = (struct klab_mmu_regs){
        .arch = KLAB_ARCH_ARM64,
        .ttbr1 = (pgd - voff) & 0x0000fffffffff000ull,
        .tcr = t1sz << 16 | tg1 << 30 | 1ull << 7 | ips << 32,
    };
    return 0;
}

int klab_mmu_regs_from_vmcoreinfo(const char *text, size_t len, enum klab_arch arch, struct klab_mmu_regs *regs,
                                  struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    uint64_t pgd, page;
    if (!text || !len) {
        if (err)
            snprintf(err, errlen, "the dump has no VMCOREINFO (a guest without the vmcoreinfo device or "
                                  "qemu_fw_cfg): its page tables cannot be found");
        return -1;
    }
    if (!klab_vmcoreinfo_value(text, len, "SYMBOL(swapper_pg_dir)=", 16, &pgd))
        return missing(err, errlen, "SYMBOL(swapper_pg_dir)");
    if (!klab_vmcoreinfo_value(text, len, "PAGESIZE=", 10, &page) || (page != 4096 && page != 16384 && page != 65536))
        return missing(err, errlen, "PAGESIZE");
    if (arch == KLAB_ARCH_X86_64)
        return page == 4096 ? x86_64_regs(text, len, pgd, regs, err, errlen) : missing(err, errlen, "PAGESIZE");
    return arm64_regs(text, len, pgd, page, regs, err, errlen);
}
