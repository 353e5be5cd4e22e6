/* libFuzzer target: the walkers on random registers and random memory. The first 56 bytes are the
 * registers, the rest is guest RAM from PA 0; anything outside it is "outside RAM". Translations and full
 * range walks must end (bounded), never read out of bounds, never hit undefined behaviour. */
#include "klab.h"

#include <stdlib.h>

#include <string.h>

struct ram {
    const unsigned char *p;
    size_t len;
};

static int read_ram(void *ctx, uint64_t pa, void *buf, size_t len)
{
    const struct ram *r = ctx;
    if (pa >= r->len || len > r->len - pa)
        return -1;
    memcpy(buf, r->p + pa, len);
    return 0;
}

/* Every non-present entry a walk finds is decoded as the kernel's, with kernel facts from the input. */
static struct klab_kernel_mm kernel_of(const uint64_t *w)
{
    return (struct klab_kernel_mm){ .version = (unsigned)(w[2] >> 40) & 0xffff00, .max_swapfiles = (int)(w[2] & 63) - 8,
                                    .config = (unsigned)(w[3] >> 32), .config_known = (unsigned)(w[3] >> 48),
                                    .max_physmem_bits = (unsigned)(w[1] >> 58) };
}

struct ctx {
    int n;
    struct klab_kernel_mm k;
};

static int count(void *ctx, const struct klab_range *range)
{
    struct ctx *c = ctx;
    struct klab_swp s;
    char line[512];
    if (range->kind == KLAB_RANGE_NON_PRESENT && klab_range_swp(range, &c->k, &s, NULL) == 0)
        klab_format_swp(&s, "/dev/vda", line, sizeof line);
    return ++c->n > 100000;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 56)
        return 0;
    uint64_t w[7];
    memcpy(w, data, sizeof w);
    struct klab_mmu_regs regs = { .arch = (w[0] & 1) ? KLAB_ARCH_ARM64 : KLAB_ARCH_X86_64, .cr3 = w[1] & 0xfffff,
                                  .cr4 = w[2], .efer = w[3], .ttbr0 = w[4] & 0xfffff, .ttbr1 = w[5] & 0xfffff,
                                  .tcr = w[6] };
    struct ram ram = { data + 56, size - 56 };
    struct klab_physmem *m = klab_physmem_from_callback(read_ram, &ram);
    struct klab_walk walk;
    for (int i = 0; i < 4; i++) {
        klab_translate(&regs, m, w[i] ^ w[6], &walk);
        size_t len;
        char *svg = klab_svg_walk(&walk, NULL, &len, NULL);   /* any shape the walker accepts is drawable */
        if (svg && (len != strlen(svg) || strcmp(svg + len - 7, "</svg>\n")))
            abort();
        free(svg);
    }
    klab_translate(&regs, m, 0xffff800008000000ull, &walk);
    klab_translate(&regs, m, 0xffffffff81000000ull, &walk);
    struct ctx c = { .k = kernel_of(w) };
    struct klab_swp s;
    char line[512];
    if (klab_walk_swp(&walk, &c.k, &s, NULL) == 0)
        klab_format_swp(&s, NULL, line, sizeof line);
    struct klab_range_opts o = { .max_entries = 50000, .filters = (w[5] & 1) ? KLAB_FILTER_NON_PRESENT : 0 };
    struct klab_error err;
    klab_walk_ranges(&regs, m, &o, count, &c, NULL, &err);
    struct klab_level l;
    for (int lvl = -2; lvl < 6; lvl++) {
        klab_decode_entry(KLAB_ARCH_ARM64, 12 + 2 * (unsigned)(w[0] % 3), lvl, w[3], &l, NULL);
        klab_decode_entry(KLAB_ARCH_X86_64, 12, lvl, w[3], &l, NULL);
        for (int a = 0; a < 2; a++)
            if (klab_decode_swp(a ? KLAB_ARCH_ARM64 : KLAB_ARCH_X86_64, &c.k, 12 + 2 * (unsigned)(w[0] % 3), lvl,
                                w[4] & 1, w[3] & ~1ull, &s, NULL) == 0)
                klab_format_swp(&s, "x", line, sizeof line);
    }
    char desc[512];
    klab_describe_regs(&regs, desc, sizeof desc);
    klab_physmem_close(m);
    return 0;
}
