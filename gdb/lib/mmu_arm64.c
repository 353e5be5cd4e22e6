/* arm64 stage-1 translation for the EL1&0 regime, VMSAv8-64.
 *
 * Rules from the Arm Architecture Reference Manual (DDI 0487), chapter D8 "The AArch64 Virtual Memory System
 * Architecture": D8.2 translation table walk (granules, start level, TTBR selection), D8.3 descriptor
 * formats, D8.4 memory access control (AP, APTable, PXN/UXN, implicit PXN for EL0-writable), D8.5 memory
 * attributes. The register fields are those of TCR_EL1 (D19.2). Everything that varies with the granule is
 * in granules[] below. */
#include "mmu_internal.h"

#include <stdio.h>
#include <string.h>

#define BLOCK_AT(level) (1u << ((level) + 1))

struct granule {
    unsigned shift;        /* page size = 1 << shift */
    unsigned tg0, tg1;     /* encodings in TCR_EL1.TG0 / TG1 (they differ: D19.2.139) */
    unsigned block_levels; /* BLOCK_AT(level) where a block descriptor is legal (D8.3.1) */
    unsigned block_levels_lpa2; /* extra block levels with TCR_EL1.DS=1 (FEAT_LPA2, 52-bit 4K/16K) */
};

static const struct granule granules[] = {
    { 12, 0, 2, BLOCK_AT(1) | BLOCK_AT(2), BLOCK_AT(0) },  /* 4K: 1G and 2M blocks; 512G with LPA2 */
    { 14, 2, 1, BLOCK_AT(2), BLOCK_AT(1) },                /* 16K: 32M blocks; 64G with LPA2 */
    { 16, 1, 3, BLOCK_AT(1) | BLOCK_AT(2), 0 },            /* 64K: 4T (FEAT_LPA) and 512M blocks */
};

/* TCR_EL1 fields (D19.2.139). */
#define TCR_T0SZ(t) klab_bits(t, 5, 0)
#define TCR_EPD0(t) klab_bits(t, 7, 7)
#define TCR_TG0(t) klab_bits(t, 15, 14)
#define TCR_T1SZ(t) klab_bits(t, 21, 16)
#define TCR_EPD1(t) klab_bits(t, 23, 23)
#define TCR_TG1(t) klab_bits(t, 31, 30)
#define TCR_TBI0(t) klab_bits(t, 37, 37)
#define TCR_TBI1(t) klab_bits(t, 38, 38)
#define TCR_HD(t) klab_bits(t, 40, 40)
#define TCR_DS(t) klab_bits(t, 59, 59)

static const struct granule *granule_by_shift(unsigned shift)
{
    for (size_t i = 0; i < sizeof granules / sizeof *granules; i++)
        if (granules[i].shift == shift)
            return &granules[i];
    return NULL;
}

/* VA bits resolved below the index of `level`. */
static unsigned level_shift(const struct granule *g, int level)
{
    return g->shift + (unsigned)(3 - level) * (g->shift - 3);
}

/* Output address of a table/block/page descriptor (D8.3.1): bits [47:shift]; with the 64K granule bits
 * [15:12] hold OA[51:48] (FEAT_LPA); with DS=1 (FEAT_LPA2) bits [9:8] hold OA[51:50] and [49:shift] the rest. */
static uint64_t output_address(const struct granule *g, bool lpa2, uint64_t raw)
{
    if (lpa2)
        return (raw & klab_mask(49, g->shift)) | (klab_bits(raw, 9, 8) << 50);
    uint64_t oa = raw & klab_mask(47, g->shift);
    if (g->shift == 16)
        oa |= klab_bits(raw, 15, 12) << 48;
    return oa;
}

static void decode_leaf_bits(struct klab_level *l, bool lpa2, uint64_t raw)
{
    static const char *const ap_names[] = { "AP=00(EL1:rw,EL0:-)", "AP=01(EL1:rw,EL0:rw)", "AP=10(EL1:r,EL0:-)",
                                            "AP=11(EL1:r,EL0:r)" };
    static const char *const sh_names[] = { "SH=non", "SH=reserved", "SH=outer", "SH=inner" };
    klab_bits_add(l, "AttrIndx=%u", (unsigned)klab_bits(raw, 4, 2));
    if (klab_bits(raw, 5, 5))
        klab_bits_add(l, "NS");
    klab_bits_add(l, "%s", ap_names[klab_bits(raw, 7, 6)]);
    if (!lpa2)
        klab_bits_add(l, "%s", sh_names[klab_bits(raw, 9, 8)]);
    klab_bits_add(l, "%s", klab_bits(raw, 10, 10) ? "AF" : "!AF");
    if (klab_bits(raw, 11, 11))
        klab_bits_add(l, "nG");
    if (klab_bits(raw, 51, 51))
        klab_bits_add(l, "DBM");
    if (klab_bits(raw, 52, 52))
        klab_bits_add(l, "CONT");
    if (klab_bits(raw, 53, 53))
        klab_bits_add(l, "PXN");
    if (klab_bits(raw, 54, 54))
        klab_bits_add(l, "UXN");
    /* Bits 58:55 are ignored by the hardware and left to software; Linux 6.1 uses 55 = PTE_DIRTY,
     * 56 = PTE_SPECIAL, 57 = PTE_DEVMAP, 58 = PTE_PROT_NONE (arch/arm64/include/asm/pgtable-prot.h). */
    static const char *const linux_sw[] = { "sw:DIRTY", "sw:SPECIAL", "sw:DEVMAP", "sw:PROT_NONE" };
    for (unsigned b = 55; b <= 58; b++)
        if (klab_bits(raw, b, b))
            klab_bits_add(l, "%s", linux_sw[b - 55]);
}

static void decode_table_bits(struct klab_level *l, uint64_t raw)
{
    if (klab_bits(raw, 59, 59))
        klab_bits_add(l, "PXNTable");
    if (klab_bits(raw, 60, 60))
        klab_bits_add(l, "UXNTable");
    if (klab_bits(raw, 62, 61))
        klab_bits_add(l, "APTable=%u", (unsigned)klab_bits(raw, 62, 61));
    if (klab_bits(raw, 63, 63))
        klab_bits_add(l, "NSTable");
}

static const char *hw_level_name(int level)
{
    static const char *const names[] = { "L-1", "L0", "L1", "L2", "L3" };
    return names[level + 1];
}

/* Descriptor kind and output address (D8.3.1): bit 0 valid; bit 1 table (levels < 3) or page (level 3); a
 * block only where the granule allows one, else reserved. */
static enum klab_entry_kind classify(const struct granule *g, int level, bool lpa2, uint64_t raw, uint64_t *out_pa)
{
    if (!(raw & 1))
        return KLAB_ENTRY_INVALID;
    *out_pa = output_address(g, lpa2, raw);
    if (level == 3)
        return (raw & 2) ? KLAB_ENTRY_PAGE : KLAB_ENTRY_RESERVED;
    if (raw & 2)
        return KLAB_ENTRY_TABLE;
    unsigned legal = g->block_levels | (lpa2 ? g->block_levels_lpa2 : 0);
    return (legal & BLOCK_AT(level)) ? KLAB_ENTRY_BLOCK : KLAB_ENTRY_RESERVED;
}

static int decode(const struct granule *g, int level, bool lpa2, uint64_t raw, struct klab_level *l)
{
    snprintf(l->hw_name, sizeof l->hw_name, "%s", hw_level_name(level));
    l->hw_level = level;
    l->raw = raw;
    l->bits[0] = '\0';
    l->kind = classify(g, level, lpa2, raw, &l->out_pa);
    switch (l->kind) {
    case KLAB_ENTRY_INVALID:
        klab_bits_add(l, "invalid");
        break;
    case KLAB_ENTRY_TABLE:
        klab_bits_add(l, "table");
        decode_table_bits(l, raw);
        break;
    case KLAB_ENTRY_PAGE:
    case KLAB_ENTRY_BLOCK:
        klab_bits_add(l, l->kind == KLAB_ENTRY_PAGE ? "page" : "block");
        decode_leaf_bits(l, lpa2, raw);
        break;
    case KLAB_ENTRY_RESERVED:
        klab_bits_add(l, level == 3 ? "reserved(level-3 descriptor with bit1=0)" : "reserved(block not allowed here)");
        break;
    }
    return 0;
}

int klab_decode_arm64(unsigned granule_shift, int hw_level, bool lpa2, uint64_t raw, struct klab_level *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const struct granule *g = granule_by_shift(granule_shift);
    if (!g || hw_level < -1 || hw_level > 3) {
        snprintf(err, errlen, "no arm64 level %d with a %u-bit granule", hw_level, granule_shift);
        return -1;
    }
    return decode(g, hw_level, lpa2, raw, out);
}

static void describe(const struct klab_regime *rg, int li, uint64_t raw, struct klab_level *out)
{
    decode(rg->granule, rg->level[li].hw_level, rg->lpa2, raw, out);
}

static void step(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                 struct klab_step *st);

enum klab_stop klab_regime_arm64(const struct klab_mmu_regs *regs, bool upper, struct klab_regime *rg, char *why,
                                 size_t whylen)
{
    const uint64_t tcr = regs->tcr;
    const unsigned tsz = (unsigned)(upper ? TCR_T1SZ(tcr) : TCR_T0SZ(tcr));
    const unsigned tg = (unsigned)(upper ? TCR_TG1(tcr) : TCR_TG0(tcr));
    memset(rg, 0, sizeof *rg);
    rg->arch = KLAB_ARCH_ARM64;
    rg->step = step;
    rg->describe = describe;
    rg->tbi = upper ? TCR_TBI1(tcr) : TCR_TBI0(tcr);
    rg->lpa2 = TCR_DS(tcr);
    /* With hardware dirty management (TCR_EL1.HD), a DBM page that is read-only only until first written is
     * writable (D8.4.6). */
    rg->hw_dirty = TCR_HD(tcr);
    snprintf(rg->root_name, sizeof rg->root_name, "%s", upper ? "TTBR1_EL1" : "TTBR0_EL1");
    const struct granule *g = NULL;
    for (size_t i = 0; i < sizeof granules / sizeof *granules; i++)
        if ((upper ? granules[i].tg1 : granules[i].tg0) == tg)
            g = &granules[i];
    if (!g) {
        snprintf(why, whylen, "TCR_EL1.TG%d=%u is a reserved granule encoding", upper, tg);
        return KLAB_STOP_BAD_REGS;
    }
    const unsigned va_bits = 64 - tsz;
    rg->granule = g;
    rg->granule_shift = g->shift;
    rg->va_bits = va_bits;
    /* The largest TxSZ (with FEAT_TTST: 48, or 47 for 64K) still leaves index bits above the page offset
     * (D8.2.6, "Restrictions on the effective value of TxSZ"); fewer VA bits than the page size walk nothing. */
    if (va_bits > (rg->lpa2 || g->shift == 16 ? 52u : 48u) || va_bits <= g->shift) {
        snprintf(why, whylen, "TCR_EL1.T%dSZ=%u gives an unsupported %u-bit VA", upper, tsz, va_bits);
        return KLAB_STOP_BAD_REGS;
    }
    rg->va_lo = upper ? ~0ull << va_bits : 0;
    rg->va_hi = upper ? ~0ull : (1ull << va_bits) - 1;
    if (upper ? TCR_EPD1(tcr) : TCR_EPD0(tcr)) {
        snprintf(why, whylen, "TCR_EL1.EPD%d=1: walks through %s are disabled", upper, rg->root_name);
        return KLAB_STOP_DISABLED;
    }
    const uint64_t ttbr = upper ? regs->ttbr1 : regs->ttbr0;
    /* TTBR BADDR (D19.2.155): bits [47:1]; with 52-bit PA, bits [5:2] are BADDR[51:48]. ASID bits 63:48 out. */
    uint64_t table = ttbr & klab_mask(47, 1) & ~0x3eull;
    if (va_bits > 48 || rg->lpa2)
        table |= klab_bits(ttbr, 5, 2) << 48;
    /* Each level resolves shift-3 bits; the start level takes whatever is left (D8.2.6). */
    const unsigned levels = (va_bits - g->shift + (g->shift - 3) - 1) / (g->shift - 3);
    const int start = 4 - (int)levels;
    rg->nlevels = (int)levels;
    for (int i = 0; i < rg->nlevels; i++) {
        struct klab_regime_level *lv = &rg->level[i];
        lv->hw_level = start + i;
        lv->shift = level_shift(g, lv->hw_level);
        lv->index_bits = i == 0 ? va_bits - lv->shift : g->shift - 3;
        lv->name = klab_linux_level_name(i, rg->nlevels);
        lv->hw_name = hw_level_name(lv->hw_level);
    }
    /* The start-level table is aligned to its own size, which may be smaller than a page (D8.2.6). */
    table &= ~((8ull << rg->level[0].index_bits) - 1);
    rg->root_pa = table;
    return KLAB_WALK_OK;
}

/* Leaf attributes that decide whether neighbours merge in a dump: AttrIndx, NS, AP, SH, AF, nG (bits 11:2),
 * PXN and UXN. DBM, the contiguous hint and software bits vary page by page without changing access. */
#define LEAF_ATTR_KEY (klab_mask(11, 2) | klab_mask(54, 53))

static void step(const struct klab_regime *rg, int li, uint64_t raw, const struct klab_inherit *parent,
                 struct klab_step *st)
{
    const struct granule *g = rg->granule;
    const int level = rg->level[li].hw_level;
    st->kind = classify(g, level, rg->lpa2, raw, &st->out_pa);
    if (st->kind == KLAB_ENTRY_RESERVED)
        st->reserved_why = level == 3 ? "a level-3 descriptor with bit 1 clear is reserved"
                                      : "a block descriptor is not allowed at this level with this granule";
    if (st->kind == KLAB_ENTRY_TABLE) {
        /* Hierarchical controls (D8.4.2): APTable[0] takes EL0 access away, APTable[1] write access;
         * PXNTable/UXNTable forbid execution below. */
        unsigned apt = (unsigned)klab_bits(raw, 62, 61);
        st->child = *parent;
        st->child.no_user |= apt & 1;
        st->child.no_write |= (apt & 2) != 0;
        st->child.no_kernel_exec |= klab_bits(raw, 59, 59);
        st->child.no_user_exec |= klab_bits(raw, 60, 60);
        return;
    }
    if (st->kind != KLAB_ENTRY_BLOCK && st->kind != KLAB_ENTRY_PAGE)
        return;
    st->attr_key = raw & LEAF_ATTR_KEY;
    unsigned ap = (unsigned)klab_bits(raw, 7, 6);
    bool writable = (!(ap & 2) || (rg->hw_dirty && klab_bits(raw, 51, 51))) && !parent->no_write;
    bool el0 = (ap & 1) && !parent->no_user;
    struct klab_perms *p = &st->perms;
    p->kernel_read = true;
    p->kernel_write = writable;
    p->user_read = el0;
    p->user_write = el0 && writable;
    p->user_exec = el0 && !klab_bits(raw, 54, 54) && !parent->no_user_exec;
    /* "Any region writable at EL0 is treated as PXN" (D8.4.1.2 "Instruction access permissions"). */
    p->kernel_exec = !klab_bits(raw, 53, 53) && !parent->no_kernel_exec && !p->user_write;
}

static int decode_entry(unsigned granule_shift, int hw_level, uint64_t raw, struct klab_level *out, char *err,
                        size_t errlen)
{
    return klab_decode_arm64(granule_shift, hw_level, false, raw, out, err, errlen);
}

/* Linux's software use of a non-valid entry (arch/arm64/include/asm/pgtable.h "Encode and decode a swap entry",
 * pgtable-prot.h). Bits 0-1 are zero and bit 2 remembers PG_anon_exclusive in both layouts; the rest moved in
 * 6.10 with userfaultfd write-protect ("arm64/mm: Remove PTE_PROT_NONE bit", "arm64/mm: Move
 * PTE_PRESENT_INVALID to overlay PTE_NG", "arm64/mm: Add uffd write-protect support"). */
#define KV(a, b) ((a) << 16 | (b) << 8)
struct swp_layout {
    unsigned since;           /* first kernel version with this layout */
    unsigned type_shift, offset_shift;   /* __SWP_TYPE_SHIFT (5 bits), __SWP_OFFSET_SHIFT (50 bits) */
    unsigned pte_present_bit;            /* PTE_PROT_NONE / PTE_PRESENT_INVALID: present to the kernel */
    unsigned pmd_present_bit;            /* PMD_PRESENT_INVALID / PTE_PRESENT_INVALID: pmdp_invalidate() */
    int uffd_wp_bit;                     /* PTE_SWP_UFFD_WP, -1: none */
};
static const struct swp_layout swp_layouts[] = {
    { KV(6, 10), 6, 12, 11, 11, 3 },    /* 6.12: type 6-10, PTE_PRESENT_INVALID = PTE_NG (11), offset 12-61 */
    { KV(5, 19), 3, 8, 58, 59, -1 },    /* 6.1: type 3-7, offset 8-57, PTE_PROT_NONE 58, PMD_PRESENT_INVALID 59 */
};

static void swp(const struct klab_kernel_mm *k, unsigned granule_shift, int hw_level, uint64_t raw,
                struct klab_swp_arch *o)
{
    memset(o, 0, sizeof *o);
    if (!raw) {   /* pte_none() */
        o->what = SWP_ARCH_NONE;
        return;
    }
    const struct swp_layout *l = NULL;
    for (size_t i = 0; i < sizeof swp_layouts / sizeof *swp_layouts && !l; i++)
        if (k->version >= swp_layouts[i].since)
            l = &swp_layouts[i];
    if (!l) {
        o->what = SWP_ARCH_UNKNOWN;
        o->why = k->version ? "klab knows arm64's swap layout from Linux 5.19 on" :
                              "arm64's swap layout depends on the kernel version, which is not known";
        return;
    }
    const unsigned present_bit = hw_level == 2 ? l->pmd_present_bit : l->pte_present_bit;
    if (klab_bits(raw, present_bit, present_bit) || (hw_level == 2 && klab_bits(raw, l->pte_present_bit,
                                                                                l->pte_present_bit))) {
        /* The PFN is where a valid entry has it (__pte_to_phys): the output address of the same descriptor. */
        const struct granule *g = granule_by_shift(granule_shift);
        const bool lpa2 = k->max_physmem_bits == 52 && granule_shift != 16;
        o->what = SWP_ARCH_PRESENT;
        o->present_kind = hw_level == 2 && klab_bits(raw, l->pmd_present_bit, l->pmd_present_bit) &&
                                  l->pmd_present_bit != l->pte_present_bit ? KLAB_SWP_INVALIDATED : KLAB_SWP_PROT_NONE;
        o->pfn = g ? output_address(g, lpa2, raw) >> granule_shift : 0;
        return;
    }
    if (raw & 2) {
        o->what = SWP_ARCH_UNKNOWN;
        o->why = "bit 1 is set in a non-valid entry: Linux's swap entries keep bits 0-1 zero";
        return;
    }
    o->what = SWP_ARCH_ENTRY;
    o->type = (unsigned)klab_bits(raw, l->type_shift + 4, l->type_shift);
    o->offset = klab_bits(raw, l->offset_shift + 49, l->offset_shift);
    o->exclusive = klab_bits(raw, 2, 2);
    o->uffd_wp = l->uffd_wp_bit >= 0 && klab_bits(raw, (unsigned)l->uffd_wp_bit, (unsigned)l->uffd_wp_bit);
}

/* QEMU translates gva2gpa with the CPU's current translation regime and rights (target/arm/ptw.c,
 * arm_cpu_get_phys_page_attrs_debug with the current mmu_idx): at EL1 with PSTATE.PAN set that is
 * ARMMMUIdx_E10_1_PAN, which may not access EL0-accessible pages (Arm ARM D8.4.2 "About PSTATE.PAN"), so QEMU
 * calls every user page unmapped. PSTATE as QEMU's cpsr: EL in bits 3:2, PAN in bit 22 (SPSR layout). */
static const char *qemu_blind(const struct klab_walk *w, uint64_t pstate)
{
    const bool el1 = ((pstate >> 2) & 3) == 1, pan = (pstate >> 22) & 1;
    if (w->stop == KLAB_WALK_OK && w->perms.user_read && el1 && pan)
        return "QEMU cannot translate EL0 pages while PSTATE.PAN is set at EL1; klab's walk is the table's";
    return NULL;
}

/* arch/arm64/include/asm/sparsemem.h: MAX_PHYSMEM_BITS = CONFIG_ARM64_PA_BITS (6.1) or PHYS_MASK_SHIFT (6.12),
 * which with CONFIG_ARM64_LPA2 is 48 unless lpa2_is_enabled(), i.e. TCR_EL1.DS (bit 59, D19.2.139). */
static unsigned max_physmem_bits(const struct klab_mmu_regs *regs, unsigned config_pa_bits, bool config_lpa2)
{
    if (config_lpa2 && !klab_bits(regs->tcr, 59, 59))
        return config_pa_bits ? 48 : 0;
    return config_pa_bits;
}

/* SCTLR_EL1.M is bit 0 (Arm ARM D19.2.118); QEMU's system-registers.xml calls SCTLR_EL1 "SCTLR". VA bit 55
 * selects TTBR1 or TTBR0 whether or not the top byte is ignored (D8.2.1). */
const struct klab_arch_ops klab_arch_arm64 = {
    .arch = KLAB_ARCH_ARM64,
    .name = "arm64",
    .gdb_names = { "aarch64", NULL },
    .enable_reg = "SCTLR",
    .enable_bit = 1ull << 0,
    .off_text = "SCTLR_EL1.M=0",
    .regs = { "SCTLR", "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", NULL },
    .reg_offset = { offsetof(struct klab_mmu_regs, ttbr0), offsetof(struct klab_mmu_regs, ttbr1),
                    offsetof(struct klab_mmu_regs, tcr) },
    .nroots = 2,
    .root_offset = { offsetof(struct klab_mmu_regs, ttbr0), offsetof(struct klab_mmu_regs, ttbr1) },
    .va_root_bit = 55,
    .granules = 1u << 12 | 1u << 14 | 1u << 16,
    .first_level = -1,
    .leaf_level = 3,
    .regime = klab_regime_arm64,
    .decode = decode_entry,
    .state_reg = "cpsr",
    .max_physmem_bits = max_physmem_bits,
    .qemu_blind = qemu_blind,
    .swp = swp,
    /* AF is set by hardware (FEAT_HAFDBS) or by the kernel's access-flag fault, and cleared by page aging;
     * PTE_DIRTY is Linux's software dirty bit (arch/arm64/include/asm/pgtable.h pte_mkdirty/pte_mkclean). */
    .diff_volatile = { "AF", "!AF", "sw:DIRTY" },
    .diff_size_names = { "page", "block" },
    /* AP[2:1], PXN, UXN (Arm ARM D8.4.1, D8.4.2); DBM is Linux's PTE_WRITE (asm/pgtable-hwdef.h). */
    .diff_perm_names = { "AP=", "PXN", "UXN", "DBM" },
    .dbm_name = "DBM",
    .dbm_managed = "AP=",
};
