/* What Linux keeps in a non-present entry of a user page table: a swap entry, or one of the special types
 * above MAX_SWAPFILES (include/linux/swap.h) with their offsets (include/linux/swapops.h). The architecture's
 * file splits the entry into type, offset and bits (klab_arch_ops.swp); this file gives the type its meaning
 * for the kernel at hand, and refuses to when the kernel's own MAX_SWAPFILES disagrees with the rules. */
#include "mmu_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KV(a, b) ((unsigned)(a) << 16 | (unsigned)(b) << 8)
#define MAX_SWAPFILES_SHIFT 5   /* include/linux/swap.h, 5.19 .. 6.14 */

/* A run of special types, in the order swap.h numbers them upwards from MAX_SWAPFILES. */
struct slot_group {
    enum klab_swp_kind first;
    int n;
    unsigned config;   /* the KLAB_KCONFIG_* bit that brings the group in; 0: always there */
};
struct type_rules {
    unsigned since, until;   /* [since, until) */
    struct slot_group groups[5];
    int ngroups;
};

static const struct type_rules type_rules[] = {
    /* 6.1: SWP_HWPOISON = MAX_SWAPFILES, then migration, device, the PTE marker and the swapin error. */
    { KV(5, 19), KV(6, 2),
      { { KLAB_SWP_HWPOISON, 1, KLAB_KCONFIG_MEMORY_FAILURE }, { KLAB_SWP_MIGRATION_READ, 3, KLAB_KCONFIG_MIGRATION },
        { KLAB_SWP_DEVICE_WRITE, 4, KLAB_KCONFIG_DEVICE_PRIVATE }, { KLAB_SWP_PTE_MARKER, 1, KLAB_KCONFIG_PTE_MARKER },
        { KLAB_SWP_SWAPIN_ERROR, 1, 0 } },
      5 },
    /* 6.2 turned the swapin error into a PTE marker bit ("mm: use PTE markers for swap errors"); until the
     * marker type became unconditional (it is in 6.12) CONFIG_PTE_MARKER brings it in. */
    { KV(6, 2), KV(6, 12),
      { { KLAB_SWP_HWPOISON, 1, KLAB_KCONFIG_MEMORY_FAILURE }, { KLAB_SWP_MIGRATION_READ, 3, KLAB_KCONFIG_MIGRATION },
        { KLAB_SWP_DEVICE_WRITE, 4, KLAB_KCONFIG_DEVICE_PRIVATE }, { KLAB_SWP_PTE_MARKER, 1, KLAB_KCONFIG_PTE_MARKER } },
      4 },
    /* 6.12 */
    { KV(6, 12), KV(6, 15),
      { { KLAB_SWP_HWPOISON, 1, KLAB_KCONFIG_MEMORY_FAILURE }, { KLAB_SWP_MIGRATION_READ, 3, KLAB_KCONFIG_MIGRATION },
        { KLAB_SWP_DEVICE_WRITE, 4, KLAB_KCONFIG_DEVICE_PRIVATE }, { KLAB_SWP_PTE_MARKER, 1, 0 } },
      4 },
};

static const struct type_rules *rules_of(const struct klab_kernel_mm *k)
{
    for (size_t i = 0; i < sizeof type_rules / sizeof *type_rules; i++)
        if (k->version >= type_rules[i].since && k->version < type_rules[i].until)
            return &type_rules[i];
    return NULL;
}

/* Types below this are swap areas whatever the config: MAX_SWAPFILES with every special type configured. */
static unsigned swap_floor(const struct klab_kernel_mm *k)
{
    const struct type_rules *r = rules_of(k);
    int n = 0;
    for (int g = 0; r && g < r->ngroups; g++)
        n += r->groups[g].n;
    return r ? (unsigned)((1 << MAX_SWAPFILES_SHIFT) - n) : 0;
}

/* The number of each swap type: map[t] for t in [0, 32), SWAP below MAX_SWAPFILES. The config bits the caller
 * does not know are tried both ways; exactly one choice may match the kernel's MAX_SWAPFILES. */
static int type_map(const struct klab_kernel_mm *k, enum klab_swp_kind map[32], char *why, size_t whylen)
{
    const struct type_rules *r = rules_of(k);
    if (!r) {
        if (k->version)
            snprintf(why, whylen, "klab knows the special swap types of Linux 5.19 to 6.14, not of %u.%u",
                     k->version >> 16, (k->version >> 8) & 0xff);
        else
            snprintf(why, whylen, "the kernel version is not known, and the special swap types depend on it");
        return -1;
    }
    unsigned unknown = 0;   /* bit g: group g's config is not known */
    for (int g = 0; g < r->ngroups; g++)
        if (r->groups[g].config && !(k->config_known & r->groups[g].config))
            unknown |= 1u << g;
    int matches = 0, total = 0;
    unsigned chosen = 0;
    for (unsigned guess = 0; guess < 1u << r->ngroups; guess++) {
        if (guess & ~unknown)
            continue;
        int n = 0;
        for (int g = 0; g < r->ngroups; g++) {
            const unsigned c = r->groups[g].config;
            if (!c || ((unknown >> g) & 1 ? (guess >> g) & 1 : (k->config & c) != 0))
                n += r->groups[g].n;
        }
        if (k->max_swapfiles ? n == (1 << MAX_SWAPFILES_SHIFT) - k->max_swapfiles : !unknown) {
            matches++;
            chosen = guess;
            total = n;
        }
    }
    if (matches != 1) {
        if (!k->max_swapfiles)
            snprintf(why, whylen, "neither the kernel's config nor its MAX_SWAPFILES is known");
        else if (!matches)
            snprintf(why, whylen, "the kernel's MAX_SWAPFILES is %d, which Linux %u.%u with this config would not have",
                     k->max_swapfiles, k->version >> 16, (k->version >> 8) & 0xff);
        else
            snprintf(why, whylen, "MAX_SWAPFILES %d fits more than one config of Linux %u.%u: give the kernel's config",
                     k->max_swapfiles, k->version >> 16, (k->version >> 8) & 0xff);
        return -1;
    }
    int t = 0;
    for (; t < (1 << MAX_SWAPFILES_SHIFT) - total; t++)
        map[t] = KLAB_SWP_SWAP;
    for (int g = 0; g < r->ngroups; g++) {
        const unsigned c = r->groups[g].config;
        if (c && !((unknown >> g) & 1 ? (chosen >> g) & 1 : (k->config & c) != 0))
            continue;
        for (int j = 0; j < r->groups[g].n; j++)
            map[t++] = (enum klab_swp_kind)(r->groups[g].first + j);
    }
    return 0;
}

static int fail(struct klab_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct klab_error *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool pfn_entry(enum klab_swp_kind kind)
{
    return (kind >= KLAB_SWP_MIGRATION_READ && kind <= KLAB_SWP_DEVICE_EXCLUSIVE_READ) || kind == KLAB_SWP_HWPOISON;
}

static void unknown(struct klab_swp *out, const char *fmt, const char *arg)
{
    out->kind = KLAB_SWP_UNKNOWN;
    snprintf(out->why, sizeof out->why, fmt, arg);
}

/* The PFN of a PFN entry: swp_offset_pfn() masks SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT; a migration
 * entry keeps the page's young and dirty bits right above (SWP_MIG_YOUNG_BIT, SWP_MIG_DIRTY_BIT); any bit
 * above those is reserved and zero. */
static void pfn_fields(const struct klab_kernel_mm *k, unsigned page_shift, struct klab_swp *out)
{
    if (!k->max_physmem_bits || k->max_physmem_bits <= page_shift) {
        snprintf(out->why, sizeof out->why, "MAX_PHYSMEM_BITS is not known: the PFN's width is not either");
        return;
    }
    const unsigned bits = k->max_physmem_bits - page_shift;
    const bool migration = out->kind <= KLAB_SWP_MIGRATION_WRITE;
    if (out->offset >> (bits + (migration ? 2 : 0))) {
        unknown(out, "reserved bits above the PFN are set in a %s entry", migration ? "migration" : "PFN swap");
        return;
    }
    out->pfn = out->offset & ((1ull << bits) - 1);
    out->has_pfn = true;
    out->young = migration && ((out->offset >> bits) & 1);
    out->dirty = migration && ((out->offset >> (bits + 1)) & 1);
}

static void special(const struct klab_kernel_mm *k, const struct klab_arch_ops *a, unsigned granule_shift,
                    int hw_level, struct klab_swp *out)
{
    enum klab_swp_kind map[32];
    if (type_map(k, map, out->why, sizeof out->why) == 0)
        out->kind = map[out->type];
    else if (out->type < (k->max_swapfiles ? (unsigned)k->max_swapfiles : swap_floor(k)))
        out->kind = KLAB_SWP_SWAP;   /* below MAX_SWAPFILES every type is a swap area, whatever the rest is */
    else {
        out->kind = KLAB_SWP_UNKNOWN;
        return;
    }
    out->why[0] = '\0';
    if (out->kind == KLAB_SWP_SWAP && hw_level != a->leaf_level)
        unknown(out, "a swap entry in a %s: Linux swaps out single pages only", hw_level == 2 ? "PMD" : "PUD");
    else if (pfn_entry(out->kind))
        pfn_fields(k, granule_shift, out);
    /* PTE_MARKER_UFFD_WP is bit 0; 6.2 added the swapin-error bit 1 (PTE_MARKER_POISONED from 6.5), 6.13 the
     * guard bit 2 (PTE_MARKER_GUARD). */
    else if (out->kind == KLAB_SWP_PTE_MARKER &&
             out->offset >> (k->version >= KV(6, 13) ? 3 : k->version >= KV(6, 2) ? 2 : 1))
        unknown(out, "unknown PTE marker bits are set%s", "");
}

int klab_decode_swp(enum klab_arch arch, const struct klab_kernel_mm *k, unsigned granule_shift, int hw_level,
                    bool upper_half, uint64_t raw, struct klab_swp *out, struct klab_error *err)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    struct klab_level l;
    char why[160] = "";
    memset(out, 0, sizeof *out);
    if (!a)
        return fail(err, "no such architecture (%d)", (int)arch);
    if (a->decode(granule_shift, hw_level, raw, &l, why, sizeof why) != 0)
        return fail(err, "%s", why);
    if (l.kind != KLAB_ENTRY_INVALID)
        return fail(err, "%#llx is a valid %s entry, not a non-present one", (unsigned long long)raw, a->name);
    struct klab_swp_arch s;
    a->swp(k, granule_shift, hw_level, raw, &s);
    if (s.what == SWP_ARCH_NONE) {
        out->kind = KLAB_SWP_NONE;
        return 0;
    }
    if (upper_half) {
        out->kind = KLAB_SWP_KERNEL;
        snprintf(out->why, sizeof out->why, "the kernel keeps no swap entries in its own tables; KFENCE and "
                                            "DEBUG_PAGEALLOC clear the valid bit of pages they guard");
        return 0;
    }
    /* Software entries live in leaves: PTEs, and PMDs and PUDs (THP and hugetlb migration, hwpoison). */
    const int from_leaf = hw_level > a->leaf_level ? hw_level - a->leaf_level : a->leaf_level - hw_level;
    if (from_leaf > 2) {
        unknown(out, "Linux keeps no software entry in a table above the PUD level%s", "");
        return 0;
    }
    switch (s.what) {
    case SWP_ARCH_PRESENT:
        out->kind = s.present_kind;
        out->pfn = s.pfn;
        out->has_pfn = true;
        return 0;
    case SWP_ARCH_UNKNOWN:
        unknown(out, "%s", s.why);
        return 0;
    default:
        break;
    }
    out->type = s.type;
    out->offset = s.offset;
    out->soft_dirty = s.soft_dirty;
    out->exclusive = s.exclusive;
    out->uffd_wp = s.uffd_wp;
    if (out->soft_dirty && (k->config_known & ~k->config & KLAB_KCONFIG_SOFT_DIRTY))
        unknown(out, "the swap soft-dirty bit is set, but %s is off", "CONFIG_MEM_SOFT_DIRTY");
    else if (out->uffd_wp && (k->config_known & ~k->config & KLAB_KCONFIG_UFFD_WP))
        unknown(out, "the swap uffd-wp bit is set, but %s is off", "CONFIG_PTE_MARKER_UFFD_WP");
    else
        special(k, a, granule_shift, hw_level, out);
    return 0;
}

/* Which half a root name and VA are in: arm64's TTBR1_EL1 is the kernel's, TTBR0_EL1 user space; x86's one
 * root (CR3) splits at the sign bit. */
static bool upper_half(const char *root_name, uint64_t va, enum klab_arch *arch)
{
    *arch = klab_root_arch(root_name);
    return *arch == KLAB_ARCH_ARM64 ? !strcmp(root_name, "TTBR1_EL1") : (va >> 63) != 0;
}

int klab_walk_swp(const struct klab_walk *w, const struct klab_kernel_mm *k, struct klab_swp *out,
                  struct klab_error *err)
{
    if (w->stop != KLAB_STOP_NOT_PRESENT || w->nlevels < 1)
        return fail(err, "the walk of %#llx did not stop at a non-present entry", (unsigned long long)w->va);
    const struct klab_level *l = &w->levels[w->nlevels - 1];
    enum klab_arch arch;
    const bool upper = upper_half(w->root_name, w->va, &arch);
    return klab_decode_swp(arch, k, w->granule_shift, l->hw_level, upper, l->raw, out, err);
}

int klab_range_swp(const struct klab_range *r, const struct klab_kernel_mm *k, struct klab_swp *out,
                   struct klab_error *err)
{
    if (r->kind != KLAB_RANGE_NON_PRESENT)
        return fail(err, "the range at %#llx is not a non-present entry", (unsigned long long)r->va_start);
    enum klab_arch arch;
    const bool upper = upper_half(r->root_name, r->va_start, &arch);
    return klab_decode_swp(arch, k, r->granule_shift, r->hw_level, upper, r->first_raw, out, err);
}

const char *const *klab_kconfig_names(void)
{
    static const char *const names[] = { "CONFIG_MIGRATION", "CONFIG_MEMORY_FAILURE", "CONFIG_DEVICE_PRIVATE",
                                         "CONFIG_PTE_MARKER", "CONFIG_MEM_SOFT_DIRTY", "CONFIG_PTE_MARKER_UFFD_WP",
                                         NULL };
    return names;
}

unsigned klab_max_physmem_bits(const struct klab_mmu_regs *regs, unsigned config_pa_bits, bool config_lpa2)
{
    const struct klab_arch_ops *a = klab_arch(regs->arch);
    return a ? a->max_physmem_bits(regs, config_pa_bits, config_lpa2) : 0;
}

const char *klab_swp_kind_name(enum klab_swp_kind kind)
{
    static const char *const names[] = {
        [KLAB_SWP_NONE] = "none", [KLAB_SWP_SWAP] = "swap", [KLAB_SWP_MIGRATION_READ] = "migration-read",
        [KLAB_SWP_MIGRATION_READ_EXCLUSIVE] = "migration-read-exclusive", [KLAB_SWP_MIGRATION_WRITE] = "migration-write",
        [KLAB_SWP_DEVICE_WRITE] = "device-private-write", [KLAB_SWP_DEVICE_READ] = "device-private-read",
        [KLAB_SWP_DEVICE_EXCLUSIVE_WRITE] = "device-exclusive-write",
        [KLAB_SWP_DEVICE_EXCLUSIVE_READ] = "device-exclusive-read", [KLAB_SWP_HWPOISON] = "hwpoison",
        [KLAB_SWP_PTE_MARKER] = "pte-marker", [KLAB_SWP_SWAPIN_ERROR] = "swapin-error",
        [KLAB_SWP_PROT_NONE] = "prot-none", [KLAB_SWP_INVALIDATED] = "invalidated", [KLAB_SWP_KERNEL] = "kernel",
        [KLAB_SWP_UNKNOWN] = "unknown",
    };
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "unknown";
}
