/* x86_64 4- and 5-level paging (IA-32e), Intel SDM Vol. 3A, chapter 4: 4.5 "4-level and 5-level paging"
 * (tables 4-14..4-20 give every entry format), 4.6 access rights (R/W, U/S and XD combine across levels),
 * 4.6.2 protection keys. Everything level-specific is in levels[] below. */
#include "mmu_internal.h"

#include <stdio.h>
#include <string.h>

#define CR4_PCIDE (1ull << 17)
#define CR4_LA57 (1ull << 12)
#define CR4_PKE (1ull << 22)
#define EFER_NXE (1ull << 11)

/* Entry bits (SDM Vol. 3A, tables 4-15..4-20). */
#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)    /* page size at PDPT and PD; PAT at PT */
#define PTE_G (1ull << 8)
#define PTE_PAT_LARGE (1ull << 12)
#define PTE_NX (1ull << 63)

struct x86_level {
    int hw_level;          /* 5 = PML5 ... 1 = PT */
    const char *hw_name;
    unsigned shift;
    bool ps_allowed;       /* PS=1 maps a page here (1G at PDPT, 2M at PD) */
};

static const struct x86_level levels[] = {
    { 5, "PML5", 48, false },
    { 4, "PML4", 39, false },
    { 3, "PDPT", 30, true },
    { 2, "PD", 21, true },
    { 1, "PT", 12, false },
};

/* MAXPHYADDR: QEMU's CPUs report up to 52; Linux masks with PTE_PFN_MASK = bits 51:12. */
#define ADDR_MASK klab_mask(51, 12)

/* Entry kind and output address (tables 4-15..4-20): P clear = not present; PS selects a page at PDPT/PD and
 * is reserved at PML5/PML4; a large page's address field starts at its size (bit 12 is PAT there). */
static enum klab_entry_kind classify(const struct x86_level *lv, uint64_t raw, uint64_t *out_pa)
{
    if (!(raw & PTE_P))
        return KLAB_ENTRY_INVALID;
    const bool large = lv->hw_level != 1 && (raw & PTE_PS);
    if (large && !lv->ps_allowed)
        return KLAB_ENTRY_RESERVED;
    *out_pa = raw & ADDR_MASK & (large ? ~((1ull << lv->shift) - 1) : ~0ull);
    return lv->hw_level == 1 ? KLAB_ENTRY_PAGE : large ? KLAB_ENTRY_BLOCK : KLAB_ENTRY_TABLE;
}

static int decode(const struct x86_level *lv, uint64_t raw, struct klab_level *l)
{
    snprintf(l->hw_name, sizeof l->hw_name, "%s", lv->hw_name);
    l->hw_level = lv->hw_level;
    l->raw = raw;
    l->bits[0] = '\0';
    l->kind = classify(lv, raw, &l->out_pa);
    if (l->kind == KLAB_ENTRY_INVALID) {
        klab_bits_add(l, "not-present");
        return 0;
    }
    if (l->kind == KLAB_ENTRY_RESERVED) {
        klab_bits_add(l, "reserved(PS set in a %s entry)", lv->hw_name);
        return 0;
    }
    const bool leaf = l->kind != KLAB_ENTRY_TABLE;
    klab_bits_add(l, "%s", l->kind == KLAB_ENTRY_TABLE ? "table" : l->kind == KLAB_ENTRY_PAGE ? "4K-page"
                           : lv->hw_level == 3 ? "1G-page" : "2M-page");
    klab_bits_add(l, "P");
    klab_bits_add(l, "%s", raw & PTE_RW ? "RW" : "RO");
    klab_bits_add(l, "%s", raw & PTE_US ? "USER" : "SUPERVISOR");
    if (raw & PTE_PWT)
        klab_bits_add(l, "PWT");
    if (raw & PTE_PCD)
        klab_bits_add(l, "PCD");
    if (raw & PTE_A)
        klab_bits_add(l, "ACCESSED");
    if (leaf) {
        if (raw & PTE_D)
            klab_bits_add(l, "DIRTY");
        if ((lv->hw_level == 1 && (raw & PTE_PS)) || (lv->hw_level != 1 && (raw & PTE_PAT_LARGE)))
            klab_bits_add(l, "PAT");
        if (raw & PTE_G)
            klab_bits_add(l, "GLOBAL");
        if (klab_bits(raw, 62, 59))
            klab_bits_add(l, "PKEY=%u", (unsigned)klab_bits(raw, 62, 59));
    }
    if (raw & PTE_NX)
        klab_bits_add(l, "NX");
    return 0;
}

int klab_decode_x86_64(int hw_level, uint64_t raw, struct klab_level *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
        if (levels[i].hw_level == hw_level)
            return decode(&levels[i], raw, out);
    snprintf(err, errlen, "no x86_64 paging level %d (1 = PT .. 5 = PML5)", hw_level);
    return -1;
}

static const struct x86_level *level_by_hw(int hw_level)
{
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
        if (levels[i].hw_level == hw_level)
            return &levels[i];
    return NULL;
}

static void describe(const struct klab_regime *rg, int li, uint64_t raw, struct klab_level *out)
{
    decode(level_by_hw(rg->level[li].hw_level), raw, out);
}

static void step(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                 struct klab_step *st);

enum klab_stop klab_regime_x86_64(const struct klab_mmu_regs *regs, struct klab_regime *rg, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    const bool la57 = regs->cr4 & CR4_LA57;
    memset(rg, 0, sizeof *rg);
    rg->arch = KLAB_ARCH_X86_64;
    rg->step = step;
    rg->describe = describe;
    snprintf(rg->root_name, sizeof rg->root_name, "CR3");
    rg->granule_shift = 12;
    rg->va_bits = la57 ? 57 : 48;
    rg->nlevels = la57 ? 5 : 4;
    /* One root for the whole canonical space: the lower half from 0, the upper half sign-extended. */
    rg->va_lo = ~0ull << (rg->va_bits - 1);
    rg->va_hi = (1ull << (rg->va_bits - 1)) - 1;
    rg->nxe = regs->efer & EFER_NXE;
    /* CR3: table address in bits 51:12; with CR4.PCIDE bits 11:0 are the PCID, and bit 63 (no-flush) is not
     * part of the address either (SDM Vol. 3A, 4.5.2). */
    rg->root_pa = regs->cr3 & ADDR_MASK;
    const struct x86_level *first = &levels[la57 ? 0 : 1];
    for (int i = 0; i < rg->nlevels; i++) {
        rg->level[i].hw_level = first[i].hw_level;
        rg->level[i].shift = first[i].shift;
        rg->level[i].index_bits = 9;
        rg->level[i].name = klab_linux_level_name(i, rg->nlevels);
        rg->level[i].hw_name = first[i].hw_name;
    }
    return KLAB_WALK_OK;
}

/* Leaf attributes that decide merges in a dump: R/W, U/S, PWT, PCD, G, XD, the protection key, and PAT (bit 7
 * in a PTE, bit 12 in a large page). Accessed and Dirty change as the CPU runs. */
#define LEAF_ATTR_KEY (PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_G | PTE_NX | klab_mask(62, 59))

static void step(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                 struct klab_step *st)
{
    const struct x86_level *lv = level_by_hw(rg->level[li].hw_level);
    st->kind = classify(lv, raw, &st->out_pa);
    if (st->kind == KLAB_ENTRY_RESERVED)
        st->reserved_why = "PS is reserved in a PML5 or PML4 entry";
    if (st->kind == KLAB_ENTRY_INVALID || st->kind == KLAB_ENTRY_RESERVED)
        return;
    if ((raw & PTE_NX) && !rg->nxe) {
        st->kind = KLAB_ENTRY_RESERVED;   /* XD is a reserved bit while EFER.NXE=0 (4.5.4) */
        st->reserved_why = "XD is set while EFER.NXE=0 (a reserved bit)";
        return;
    }
    /* R/W, U/S and XD combine across all levels (4.6.1): any level can take access away. */
    struct klab_inherit acc = *parent;
    acc.no_write |= !(raw & PTE_RW);
    acc.no_user |= !(raw & PTE_US);
    acc.no_kernel_exec |= rg->nxe && (raw & PTE_NX);
    acc.no_user_exec = acc.no_kernel_exec;
    if (st->kind == KLAB_ENTRY_TABLE) {
        st->child = acc;
        return;
    }
    const uint64_t pat = lv->hw_level == 1 ? PTE_PS : PTE_PAT_LARGE;
    st->attr_key = (raw & LEAF_ATTR_KEY) | ((raw & pat) ? 1 : 0);
    /* Supervisor writes to read-only pages are allowed when CR0.WP=0; Linux always sets WP, so the permissions
     * here assume it. SMEP/SMAP are not applied: they restrict, they do not map. */
    st->perms = (struct klab_perms){ .kernel_read = true, .kernel_write = !acc.no_write,
                                     .kernel_exec = !acc.no_kernel_exec, .user_read = !acc.no_user,
                                     .user_write = !acc.no_user && !acc.no_write,
                                     .user_exec = !acc.no_user && !acc.no_user_exec };
}

static enum klab_stop regime(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                             size_t whylen)
{
    (void)upper;   /* one root for both halves */
    return klab_regime_x86_64(regs, rg, why, whylen);
}

static int decode_entry(unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out, char *err,
                        size_t errlen)
{
    if (granule_shift == 12)
        return klab_decode_x86_64(hw_level, raw, out, err, errlen);
    memset(out, 0, sizeof *out);
    snprintf(err, errlen, "x86_64 has 4K pages only (a %u-bit granule was asked)", granule_shift);
    return -1;
}

/* Linux's software use of a non-present entry, the same in 6.1 and 6.12 (arch/x86/include/asm/pgtable_64.h
 * "Encode and de-code a swap entry", pgtable_types.h, pgtable_64_types.h):
 *   | TYPE (59-63) | ~OFFSET (9-58) | 0 (bit 8, PROTNONE) | 0 (bit 7) | X X X | E | F | SD | 0 (P) |
 * The offset is stored inverted, and so is the PFN of any non-present entry that keeps one (PROT_NONE, an
 * invalidated huge PMD), so that a speculative L1TF load of it hits no real memory (pgtable-invert.h). */
#define PTE_PROTNONE PTE_G          /* _PAGE_PROTNONE: _PAGE_BIT_GLOBAL while P is clear */
#define SWP_TYPE_BITS 5
#define SWP_OFFSET_SHIFT (8 + 1 + SWP_TYPE_BITS)
#define SWP_SOFT_DIRTY PTE_RW       /* _PAGE_SWP_SOFT_DIRTY */
#define SWP_UFFD_WP PTE_US          /* _PAGE_SWP_UFFD_WP */
#define SWP_EXCLUSIVE PTE_PWT       /* _PAGE_SWP_EXCLUSIVE: PG_anon_exclusive, remembered */

static void swp(const struct klab_kernel_mm *k, unsigned granule_shift, int hw_level, uint64_t raw,
                struct klab_swp_arch *o)
{
    (void)k;
    (void)granule_shift;
    memset(o, 0, sizeof *o);
    /* pte_none() ignores Accessed and Dirty: Knights Landing may set them in a non-present entry
     * (pgtable.h, _PAGE_KNL_ERRATUM_MASK). */
    if (!(raw & ~(PTE_A | PTE_D))) {
        o->what = SWP_ARCH_NONE;
        return;
    }
    /* pte_present() is P or PROTNONE; pmd_present() also PSE, which pmdp_invalidate() keeps on a huge PMD. */
    const bool large = hw_level == 2 && (raw & PTE_PS);
    if ((raw & PTE_PROTNONE) || large) {
        const uint64_t mask = large ? klab_mask(51, 21) : ADDR_MASK;
        o->what = SWP_ARCH_PRESENT;
        o->present_kind = (raw & PTE_PROTNONE) ? KLAB_SWP_PROT_NONE : KLAB_SWP_INVALIDATED;
        o->pfn = (~raw & mask) >> 12;
        return;
    }
    if (raw & PTE_PS) {
        o->what = SWP_ARCH_UNKNOWN;
        o->why = "bit 7 is set: pmd_present() would take it for a huge page, so Linux never writes it so";
        return;
    }
    o->what = SWP_ARCH_ENTRY;
    o->type = (unsigned)(raw >> (64 - SWP_TYPE_BITS));
    o->offset = ~raw << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT;
    o->soft_dirty = raw & SWP_SOFT_DIRTY;
    o->uffd_wp = raw & SWP_UFFD_WP;
    o->exclusive = raw & SWP_EXCLUSIVE;
}

/* arch/x86/include/asm/sparsemem.h: MAX_PHYSMEM_BITS is (pgtable_l5_enabled() ? 52 : 46). */
static unsigned max_physmem_bits(const struct klab_mmu_regs *regs, unsigned config_pa_bits, bool config_lpa2)
{
    (void)config_pa_bits;
    (void)config_lpa2;
    return (regs->cr4 & CR4_LA57) ? 52 : 46;
}

/* CR0.PG is bit 31 (SDM Vol. 3A, 2.5); QEMU names the registers cr0/cr3/cr4/efer (gdb-xml/i386-64bit.xml). */
const struct klab_arch_ops klab_arch_x86_64 = {
    .arch = KLAB_ARCH_X86_64,
    .name = "x86_64",
    .gdb_names = { "i386:x86-64", "i386", NULL },
    .enable_reg = "cr0",
    .enable_bit = 1ull << 31,
    .off_text = "CR0.PG=0",
    .regs = { "cr0", "cr3", "cr4", "efer", NULL },
    .reg_offset = { offsetof(struct klab_mmu_regs, cr3), offsetof(struct klab_mmu_regs, cr4),
                    offsetof(struct klab_mmu_regs, efer) },
    .nroots = 1,
    .root_offset = { offsetof(struct klab_mmu_regs, cr3), offsetof(struct klab_mmu_regs, cr3) },
    .granules = 1u << 12,
    .first_level = 5,
    .leaf_level = 1,
    .regime = regime,
    .decode = decode_entry,
    .max_physmem_bits = max_physmem_bits,
    .swp = swp,
    /* The CPU sets A and D as it uses a page (SDM Vol. 3A 4.8); nothing else of a leaf changes by itself. */
    .diff_volatile = { "ACCESSED", "DIRTY" },
    .diff_size_names = { "4K-page", "2M-page", "1G-page" },
    /* R/W, U/S and XD (SDM Vol. 3A 4.6) as describe() names them. */
    .diff_perm_names = { "RW", "RO", "USER", "SUPERVISOR", "NX" },
};
