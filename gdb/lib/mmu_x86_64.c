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

static int decode(const struct x86_level *lv, uint64_t raw, struct klab_level *l)
{
    snprintf(l->hw_name, sizeof l->hw_name, "%s", lv->hw_name);
    l->hw_level = lv->hw_level;
    l->raw = raw;
    l->bits[0] = '\0';
    if (!(raw & PTE_P)) {
        l->kind = KLAB_ENTRY_INVALID;
        klab_bits_add(l, "not-present");
        return 0;
    }
    const bool leaf = lv->hw_level == 1 || (lv->ps_allowed && (raw & PTE_PS));
    if (!leaf && (raw & PTE_PS) && lv->hw_level != 1) {
        l->kind = KLAB_ENTRY_RESERVED;   /* PS is reserved (must be 0) in PML5E and PML4E: table 4-14/4-15 */
        klab_bits_add(l, "reserved(PS set in a %s entry)", lv->hw_name);
        return 0;
    }
    l->kind = lv->hw_level == 1 ? KLAB_ENTRY_PAGE : leaf ? KLAB_ENTRY_BLOCK : KLAB_ENTRY_TABLE;
    /* A large page's address field starts at its size; bit 12 is PAT there. */
    l->out_pa = raw & ADDR_MASK & (leaf ? ~((1ull << lv->shift) - 1) : ~0ull);
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

int klab_decode_x86_64(int hw_level, uint64_t raw, struct klab_level *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
        if (levels[i].hw_level == hw_level)
            return decode(&levels[i], raw, out);
    snprintf(out->bits, sizeof out->bits, "no x86_64 paging level %d (1 = PT .. 5 = PML5)", hw_level);
    return -1;
}

int klab_translate_x86_64(const struct klab_mmu_regs *regs, struct klab_physmem *mem, uint64_t va,
                          struct klab_walk *w)
{
    const bool la57 = regs->cr4 & CR4_LA57;
    const unsigned va_bits = la57 ? 57 : 48;
    const int nlevels = la57 ? 5 : 4;
    snprintf(w->root_name, sizeof w->root_name, "CR3");
    w->granule_shift = 12;
    w->va_bits = va_bits;
    /* Canonical: bits 63:va_bits-1 all equal (SDM Vol. 1, 3.3.7.1). */
    const uint64_t top = klab_bits(va, 63, va_bits - 1);
    if (top != 0 && top != klab_bits(~0ull, 63 - (va_bits - 1), 0))
        return klab_walk_stop(w, KLAB_STOP_NOT_CANONICAL, "0x%llx is not canonical with %d-level paging",
                              (unsigned long long)va, nlevels);
    /* CR3: table address in bits 51:12; with CR4.PCIDE bits 11:0 are the PCID, and bit 63 (no-flush) is not
     * part of the address either (SDM Vol. 3A, 4.5.2). */
    uint64_t table = regs->cr3 & ADDR_MASK;
    w->root_pa = table;
    const bool nxe = regs->efer & EFER_NXE;
    bool writable = true, user = true, nx = false;
    for (int i = la57 ? 0 : 1; i < 5; i++) {
        const struct x86_level *lv = &levels[i];
        struct klab_level *l = &w->levels[w->nlevels++];
        uint64_t raw;
        if (klab_visit_entry(w, mem, l, klab_linux_level_name(w->nlevels - 1, nlevels), table, lv->shift, 9,
                             &raw) != 0)
            return -1;
        decode(lv, raw, l);
        if (l->kind == KLAB_ENTRY_INVALID)
            return klab_walk_stop(w, KLAB_STOP_NOT_PRESENT, "%s entry %u (%s) is not present", l->name, l->index,
                                  lv->hw_name);
        if (l->kind == KLAB_ENTRY_RESERVED)
            return klab_walk_stop(w, KLAB_STOP_RESERVED, "%s entry %u: %s", l->name, l->index, l->bits);
        if ((raw & PTE_NX) && !nxe)
            return klab_walk_stop(w, KLAB_STOP_RESERVED, "%s entry %u sets XD while EFER.NXE=0 (reserved bit)",
                                  l->name, l->index);
        writable = writable && (raw & PTE_RW);
        user = user && (raw & PTE_US);
        nx = nx || (nxe && (raw & PTE_NX));
        if (l->kind == KLAB_ENTRY_TABLE) {
            table = l->out_pa;
            continue;
        }
        w->page_size = 1ull << lv->shift;
        w->pa = l->out_pa + (va & (w->page_size - 1));
        /* Supervisor writes to read-only pages are allowed when CR0.WP=0; Linux always sets WP, so the
         * permissions here assume it. SMEP/SMAP are not applied: they restrict, they do not map. */
        w->perms = (struct klab_perms){ .kernel_read = true, .kernel_write = writable, .kernel_exec = !nx,
                                        .user_read = user, .user_write = user && writable, .user_exec = user && !nx };
        w->stop = KLAB_WALK_OK;
        return 0;
    }
    return klab_walk_stop(w, KLAB_STOP_RESERVED, "walk ran past the PT level");
}
