/* The spans of a kernel's address space klab can name for the pictures' labels (klab_kernel_regions): only
 * what the kernel's own variables, read live, or its documented fixed layout say.
 *
 * x86_64: the kernel image is [_text, _end); the direct map starts at page_offset_base and holds max_pfn
 * pages; vmalloc starts at vmalloc_base and spans VMALLOC_SIZE_TB (32 TB with 4 levels, 12800 TB with 5);
 * the struct page array starts at vmemmap_base (1 TB / 0.5 PB); cpu_entry_area is fixed at
 * 0xfffffe0000000000, 0.5 TB (arch/x86/include/asm/pgtable_64_types.h, Documentation/arch/x86/x86_64/mm.rst).
 * The three bases are variables because KASLR moves them (arch/x86/mm/kaslr.c), so they are read from the
 * guest, not assumed.
 * arm64: the linear map is the lower half of the kernel's VA range, [PAGE_OFFSET, PAGE_END) with
 * PAGE_OFFSET = -(1 << VA_BITS) and PAGE_END = -(1 << (VA_BITS_MIN - 1)), VA_BITS_MIN = min(VA_BITS, 48)
 * (arch/arm64/include/asm/memory.h since v5.4); the image is [_text, _end). */
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
