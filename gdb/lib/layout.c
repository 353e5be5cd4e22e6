/* The spans of a kernel's address space klab can name for the pictures' labels (klab_kernel_regions): only
 * what the kernel's own variables, read live, or its documented fixed layout say.
 *
 * x86_64: the kernel image is [_text, _end); the direct map starts at page_offset_base and holds max_pfn
 * pages; vmalloc starts at vmalloc_base and spans VMALLOC_SIZE_TB (32 TB with 4 levels, 12800 TB with 5);
 * the struct page array starts at vmemmap_base (1 TB / 0.5 PB); cpu_entry_area is fixed at
 * 0xfffffe0000000000, 0.5 TB (arch/x86/include/asm/pgtable_64_types.h, Documentation/arch/x86/x86_64/mm.rst).
 * The three bases are variables because KASLR moves them (arch/x86/mm/kaslr.c), so they are read from the
 * guest, not assumed.
 * The module area is [__START_KERNEL_map + KERNEL_IMAGE_SIZE, MODULES_END = 0xffffffffff000000): the
 * image size is a config choice (512 MB, or 1 GB with RANDOMIZE_BASE), so it is read from the kernel's own
 * VMCOREINFO (NUMBER(KERNEL_IMAGE_SIZE), arch/x86/kernel/machine_kexec_64.c); above MODULES_END lie the fixmap
 * and the vsyscall page, to the top (mm.rst: "fixmap", "legacy vsyscall ABI").
 * arm64: the linear map is the lower half of the kernel's VA range, [PAGE_OFFSET, PAGE_END) with
 * PAGE_OFFSET = -(1 << VA_BITS) and PAGE_END = -(1 << (VA_BITS_MIN - 1)), VA_BITS_MIN = min(VA_BITS, 48)
 * (arch/arm64/include/asm/memory.h since v5.4); the image is [_text, _end); the module area, vmalloc and
 * vmemmap moved between releases, so they are named only where the kernel's VMCOREINFO gives them
 * (NUMBER(MODULES_VADDR) ... NUMBER(VMEMMAP_END), arch/arm64/kernel/crash_core.c in the releases that
 * export them).
 * VMCOREINFO is read live: vmcoreinfo_data points to its text, vmcoreinfo_size bytes long, one page at most
 * (kernel/crash_core.c, VMCOREINFO_BYTES). */
#define _GNU_SOURCE
#include "mmu_internal.h"

#include <stdio.h>
#include <string.h>

struct layout {
    const struct klab_mmu_regs *regs;
    struct klab_physmem *mem;
    klab_symbol_fn symbol;
    void *ctx;
    struct klab_svg_region *out;
    size_t max, n;
};

/* A kernel variable of 8 bytes, through the kernel's own page tables. */
static bool variable(const struct layout *l, const char *name, uint64_t *v)
{
    uint64_t va;
    struct klab_walk w;
    if (l->symbol(l->ctx, name, &va) != 0 || klab_translate(l->regs, l->mem, va, &w) != 0)
        return false;
    return klab_physmem_read(l->mem, w.pa, v, sizeof *v) == 0;
}

/* len bytes at the kernel VA va, page by page through the kernel's tables. */
static bool read_virt(const struct layout *l, uint64_t va, char *buf, size_t len)
{
    while (len) {
        struct klab_walk w;
        if (klab_translate(l->regs, l->mem, va, &w) != 0)
            return false;
        size_t in_page = (size_t)(4096 - (va & 4095));   /* the smallest page: never crosses a leaf */
        size_t n = len < in_page ? len : in_page;
        if (klab_physmem_read(l->mem, w.pa, buf, n) != 0)
            return false;
        va += n;
        buf += n;
        len -= n;
    }
    return true;
}

/* The kernel's VMCOREINFO text into buf (cap bytes, NUL-terminated): its length, 0 when unknown. */
static size_t live_vmcoreinfo(const struct layout *l, char *buf, size_t cap)
{
    uint64_t data, size;
    if (!variable(l, "vmcoreinfo_data", &data) || !variable(l, "vmcoreinfo_size", &size) || !data || !size ||
        size >= cap || !read_virt(l, data, buf, (size_t)size))
        return 0;
    buf[size] = '\0';
    return (size_t)size;
}

static void add(struct layout *l, uint64_t start, uint64_t size, const char *name)
{
    if (l->n < l->max && size) {
        l->out[l->n] = (struct klab_svg_region){ .start = start, .end = start + size };
        snprintf(l->out[l->n].name, sizeof l->out[l->n].name, "%s", name);
        l->n++;
    }
}

static void x86_regions(struct layout *l)
{
    const bool la57 = l->regs->cr4 & (1ull << 12);   /* CR4.LA57, SDM Vol. 3A 2.5 */
    uint64_t base, pfns;
    if (variable(l, "page_offset_base", &base) && variable(l, "max_pfn", &pfns) && pfns < (1ull << 40))
        add(l, base, pfns << 12, "direct map");
    if (variable(l, "vmalloc_base", &base))
        add(l, base, (la57 ? 12800ull : 32ull) << 40, "vmalloc");
    if (variable(l, "vmemmap_base", &base))
        add(l, base, la57 ? 1ull << 49 : 1ull << 40, "vmemmap (struct page)");
    add(l, 0xfffffe0000000000ull, 1ull << 39, "cpu_entry_area");
    char info[4096];
    size_t len = live_vmcoreinfo(l, info, sizeof info);
    uint64_t image_size;
    const uint64_t start_kernel_map = 0xffffffff80000000ull, modules_end = 0xffffffffff000000ull;
    if (klab_vmcoreinfo_value(info, len, "NUMBER(KERNEL_IMAGE_SIZE)=", 10, &image_size) &&
        image_size < modules_end - start_kernel_map)
        add(l, start_kernel_map + image_size, modules_end - start_kernel_map - image_size, "modules");
    add(l, modules_end, 0 - modules_end, "fixmap, vsyscall");   /* to the top: its end wraps to 0 */
}

/* A [NUMBER(START), NUMBER(END)) pair of arm64's VMCOREINFO as a region. */
static void add_exported(struct layout *l, const char *info, size_t len, const char *start, const char *end,
                         const char *name)
{
    uint64_t a, b;
    if (klab_vmcoreinfo_value(info, len, start, 16, &a) && klab_vmcoreinfo_value(info, len, end, 16, &b) && b > a)
        add(l, a, b - a, name);
}

static void arm64_regions(struct layout *l)
{
    struct klab_geometry g;
    struct klab_error err;
    if (klab_geometry(l->regs, true, &g, &err) != 0 || g.va_bits < 36 || g.va_bits > 52)
        return;
    const unsigned min_bits = g.va_bits < 48 ? g.va_bits : 48;
    const uint64_t page_offset = ~0ull << g.va_bits, page_end = ~0ull << (min_bits - 1);
    add(l, page_offset, page_end - page_offset, "linear map");
    char info[4096];
    size_t len = live_vmcoreinfo(l, info, sizeof info);
    add_exported(l, info, len, "NUMBER(MODULES_VADDR)=", "NUMBER(MODULES_END)=", "modules");
    add_exported(l, info, len, "NUMBER(VMALLOC_START)=", "NUMBER(VMALLOC_END)=", "vmalloc");
    add_exported(l, info, len, "NUMBER(VMEMMAP_START)=", "NUMBER(VMEMMAP_END)=", "vmemmap (struct page)");
}

size_t klab_kernel_regions(const struct klab_mmu_regs *regs, struct klab_physmem *mem, klab_symbol_fn symbol,
                           void *ctx, struct klab_svg_region *out, size_t max)
{
    struct layout l = { regs, mem, symbol, ctx, out, max, 0 };
    uint64_t text, end;
    if (symbol(ctx, "_text", &text) == 0 && symbol(ctx, "_end", &end) == 0 && end > text)
        add(&l, text, end - text, "kernel image");
    if (regs->arch == KLAB_ARCH_X86_64)
        x86_regions(&l);
    else
        arm64_regions(&l);
    return l.n;
}
