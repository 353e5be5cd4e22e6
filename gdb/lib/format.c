/* The words and layouts of klab's MMU output, for the klab program and the gdb commands alike
 * (gdb/klab/mmu.py prints what these return). crash's vtop layout (crash/x86_64.c x86_64_uvtop and
 * arm64.c arm64_vtop_4level_4k: the address pair, then "PGD: entry => value" per level, then PAGE). */
#define _GNU_SOURCE
#include "mmu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

/* snprintf that appends at *used and never runs past len. */
void klab_add(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*used < len ? buf + *used : NULL, *used < len ? len - *used : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n;
}

void klab_tb_add(struct klab_textbuf *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 65536) + (size_t)n;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->failed = true;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

const char *klab_size_str(uint64_t size, char buf[24])
{
    static const struct { unsigned shift; char unit; } units[] = { { 40, 'T' }, { 30, 'G' }, { 20, 'M' }, { 10, 'K' } };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (size >= (1ull << units[i].shift) && !(size & ((1ull << units[i].shift) - 1))) {
            snprintf(buf, 24, "%llu%c", (unsigned long long)(size >> units[i].shift), units[i].unit);
            return buf;
        }
    snprintf(buf, 24, "%llu", (unsigned long long)size);
    return buf;
}

/* Seed 002's derivation, from the walk's own geometry: each level's shift, table size and index; Linux's
 * names (include/asm-generic/pgtable-nop*.h, arch/ARCH/include/asm/pgtable*.h). */
static void explain(const struct klab_walk *w, char *buf, size_t len, size_t *used)
{
    const unsigned g = w->granule_shift;
    for (int i = 0; i < w->nlevels; i++) {
        const struct klab_level *l = &w->levels[i];
        unsigned bits = i == 0 ? w->va_bits - l->shift : g - 3;
        char name[8];
        for (size_t k = 0; k < sizeof name; k++)
            name[k] = (char)toupper((unsigned char)l->name[k]);
        const char *shift_name = i == 0 ? "PGDIR" : i == w->nlevels - 1 && !strcmp(name, "PTE") ? "PAGE" : name;
        klab_add(buf, len, used, "    %s_SHIFT = %-2u  PTRS_PER_%s = %-5u  %s_index = (addr >> %u) & %u = %llu\n",
            shift_name, l->shift, name, 1u << bits, l->name, l->shift, (1u << bits) - 1,
            (unsigned long long)((w->va >> l->shift) & ((1ull << bits) - 1)));
    }
    klab_add(buf, len, used, "    page offset = addr & 0x%llx = 0x%llx\n", (unsigned long long)((1ull << g) - 1),
        (unsigned long long)(w->va & ((1ull << g) - 1)));
}

static void levels(const struct klab_walk *w, char *buf, size_t len, size_t *used)
{
    for (int i = 0; i < w->nlevels; i++) {
        const struct klab_level *l = &w->levels[i];
        char name[8];
        for (size_t k = 0; k < sizeof name; k++)
            name[k] = (char)toupper((unsigned char)l->name[k]);
        klab_add(buf, len, used, "  %5s: %llx => %llx  [%s %s index %u] %s\n", name, (unsigned long long)l->entry_pa,
            (unsigned long long)l->raw, l->hw_name, l->name, l->index, l->bits);
    }
}

size_t klab_format_walk(const struct klab_walk *w, const char *label, bool want_explain, char *buf, size_t len)
{
    size_t used = 0;
    const bool mapped = w->stop == KLAB_WALK_OK;
    char pa[24] = "(not mapped)", sz[24], perms[8];
    if (mapped)
        snprintf(pa, sizeof pa, "%llx", (unsigned long long)w->pa);
    klab_add(buf, len, &used, "VIRTUAL           PHYSICAL\n%-16llx  %s%s%s\n\n", (unsigned long long)w->va, pa,
        label ? "  " : "", label ? label : "");
    if (!w->granule_shift) {   /* nothing was walked: translation off, or no usable root */
        klab_add(buf, len, &used, "  STOP: %s: %s\n", klab_stop_name(w->stop), w->why);
        return used;
    }
    klab_add(buf, len, &used, "%s: %llx  (%uK granule, %u-bit VA, %d level%s walked)\n", w->root_name,
        (unsigned long long)w->root_pa, 1u << (w->granule_shift - 10), w->va_bits, w->nlevels,
        w->nlevels == 1 ? "" : "s");
    if (want_explain)
        explain(w, buf, len, &used);
    levels(w, buf, len, &used);
    if (mapped)
        klab_add(buf, len, &used, "   PAGE: %llx  (%s)  %s\n", (unsigned long long)(w->pa & ~(w->page_size - 1)),
            klab_size_str(w->page_size, sz), klab_perms_str(&w->perms, perms));
    else
        klab_add(buf, len, &used, "  STOP: %s: %s\n", klab_stop_name(w->stop), w->why);
    return used;
}

size_t klab_format_range(const struct klab_range *r, char last_root[12], char *buf, size_t len)
{
    size_t used = 0;
    if (strcmp(last_root, r->root_name)) {
        snprintf(last_root, 12, "%s", r->root_name);
        klab_add(buf, len, &used, "---[ %s ]---\n", r->root_name);
    }
    char sz[24], ps[24], perms[8];
    const uint64_t span = r->va_end - r->va_start;
    if (r->kind == KLAB_RANGE_NON_PRESENT)
        klab_add(buf, len, &used, "0x%016llx-0x%016llx %6s  %-4s entry 0x%016llx\n", (unsigned long long)r->va_start,
            (unsigned long long)r->va_end, klab_size_str(span, sz), r->level_name, (unsigned long long)r->first_raw);
    else if (r->kind == KLAB_RANGE_BAD)
        klab_add(buf, len, &used, "0x%016llx-0x%016llx %6s  BAD %s entry 0x%016llx: %s\n", (unsigned long long)r->va_start,
            (unsigned long long)r->va_end, klab_size_str(span, sz), r->level_name, (unsigned long long)r->first_raw,
            r->attrs);
    else
        klab_add(buf, len, &used, "0x%016llx-0x%016llx %6s  PA 0x%-12llx %4s x%-6llu %-4s %s  %s\n",
            (unsigned long long)r->va_start, (unsigned long long)r->va_end, klab_size_str(span, sz),
            (unsigned long long)r->pa_start, klab_size_str(r->page_size, ps), (unsigned long long)r->leaves,
            r->level_name, klab_perms_str(&r->perms, perms), r->attrs);
    return used;
}

size_t klab_format_range_swp(const struct klab_range *r, const struct klab_swp *s, const char *swap_name,
                             char last_root[12], char *buf, size_t len)
{
    size_t used = klab_format_range(r, last_root, buf, len);
    if (used >= len || used == 0 || buf[used - 1] != '\n')
        return used;
    char decoded[512];
    klab_format_swp(s, swap_name, decoded, sizeof decoded);
    used--;   /* the range line goes on: "entry 0x...: SWAP: ..." */
    klab_add(buf, len, &used, ": %s", decoded + strspn(decoded, " "));
    return used;
}

int klab_format_entry(enum klab_arch arch, unsigned granule_shift, int hw_level, uint64_t raw, char *buf, size_t len,
                      struct klab_error *err)
{
    static const char *const kinds[] = { "invalid", "table", "block", "page", "reserved" };
    struct klab_level l;
    const struct klab_arch_ops *a = klab_arch(arch);
    if (len)
        buf[0] = '\0';
    if (klab_decode_entry(arch, granule_shift, hw_level, raw, &l, err) != 0)
        return -1;
    size_t used = 0;
    klab_add(buf, len, &used, "  PTE: %llx  %s level %s (%uK granule)\n  kind: %s\n", (unsigned long long)raw, a->name,
        l.hw_name, 1u << (granule_shift - 10), kinds[l.kind]);
    if (l.kind == KLAB_ENTRY_TABLE || l.kind == KLAB_ENTRY_BLOCK || l.kind == KLAB_ENTRY_PAGE)
        klab_add(buf, len, &used, "  output address: %llx\n", (unsigned long long)l.out_pa);
    klab_add(buf, len, &used, "  bits: %s\n", l.bits);
    return 0;
}

int klab_parse_filters(const char *s, unsigned *filters, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    static const struct { const char *name; unsigned bit; } names[] = {
        { "w", KLAB_FILTER_WRITABLE }, { "writable", KLAB_FILTER_WRITABLE }, { "x", KLAB_FILTER_EXEC },
        { "exec", KLAB_FILTER_EXEC }, { "executable", KLAB_FILTER_EXEC }, { "u", KLAB_FILTER_USER },
        { "user", KLAB_FILTER_USER }, { "k", KLAB_FILTER_KERNEL }, { "kernel", KLAB_FILTER_KERNEL },
    };
    char *copy = strdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < sizeof names / sizeof *names && strcmp(tok, names[i].name))
            i++;
        if (i == sizeof names / sizeof *names) {
            snprintf(err, errlen, "unknown filter '%s' (w, x, u, k)", tok);
            rc = -1;
        } else {
            *filters |= names[i].bit;
        }
    }
    free(copy);
    if (rc == 0 && (*filters & KLAB_FILTER_USER) && (*filters & KLAB_FILTER_KERNEL)) {
        snprintf(err, errlen, "--filter u and k exclude each other");
        rc = -1;
    }
    return rc;
}

int klab_parse_page_size(const char *s, uint64_t *size, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = !strcasecmp(end, "K") ? 10 : !strcasecmp(end, "M") ? 20 : !strcasecmp(end, "G") ? 30 :
                     !strcasecmp(end, "T") ? 40 : 99;
    if (end == s || shift == 99 || v == 0 || (v & (v - 1)) || v > 1024) {
        snprintf(err, errlen, "--page-size wants a size like 4K, 2M, 1G, 64K, 512M, not '%s'", s);
        return -1;
    }
    *size = (uint64_t)v << shift;
    return 0;
}

/* The swap PTE's own bits, then a migration entry's saved young/dirty bits. */
static void swp_bits(const struct klab_swp *s, char *buf, size_t len, size_t *used)
{
    const struct { bool on; const char *name; } bits[] = {
        { s->exclusive, "exclusive" }, { s->soft_dirty, "soft-dirty" }, { s->uffd_wp, "uffd-wp" },
        { s->young, "young" }, { s->dirty, "dirty" },
    };
    for (size_t i = 0; i < sizeof bits / sizeof *bits; i++)
        if (bits[i].on)
            klab_add(buf, len, used, "  %s", bits[i].name);
}

static void swp_pfn(const struct klab_swp *s, char *buf, size_t len, size_t *used)
{
    if (s->has_pfn)
        klab_add(buf, len, used, "PFN %#llx", (unsigned long long)s->pfn);
    else
        klab_add(buf, len, used, "PFN unknown (%s)", s->why);
}

size_t klab_format_swp(const struct klab_swp *s, const char *swap_name, char *buf, size_t len)
{
    size_t used = 0;
    const char *kind = klab_swp_kind_name(s->kind);
    switch (s->kind) {
    case KLAB_SWP_NONE:
        klab_add(buf, len, &used, "  EMPTY: an empty entry: nothing mapped, nothing kept");
        break;
    case KLAB_SWP_SWAP:
        klab_add(buf, len, &used, "   SWAP: type %u%s%s%s  offset %#llx", s->type, swap_name ? " (" : "",
            swap_name ? swap_name : "", swap_name ? ")" : "", (unsigned long long)s->offset);
        swp_bits(s, buf, len, &used);
        break;
    case KLAB_SWP_MIGRATION_READ:
    case KLAB_SWP_MIGRATION_READ_EXCLUSIVE:
    case KLAB_SWP_MIGRATION_WRITE:
    case KLAB_SWP_DEVICE_WRITE:
    case KLAB_SWP_DEVICE_READ:
    case KLAB_SWP_DEVICE_EXCLUSIVE_WRITE:
    case KLAB_SWP_DEVICE_EXCLUSIVE_READ:
    case KLAB_SWP_HWPOISON:
        klab_add(buf, len, &used, "%7s: %s (swap type %u)  ", s->kind == KLAB_SWP_HWPOISON ? "POISON"
                             : s->kind <= KLAB_SWP_MIGRATION_WRITE ? "MIGRATE" : "DEVICE", kind, s->type);
        swp_pfn(s, buf, len, &used);
        swp_bits(s, buf, len, &used);
        break;
    case KLAB_SWP_PTE_MARKER:
        klab_add(buf, len, &used, " MARKER: pte-marker (swap type %u)%s%s", s->type, s->offset & 1 ? "  uffd-wp" : "",
            s->offset & 2 ? "  poisoned" : "");
        if (s->offset & 4)
            klab_add(buf, len, &used, "  guard");
        break;
    case KLAB_SWP_SWAPIN_ERROR:
        klab_add(buf, len, &used, "  ERROR: swapin-error (swap type %u): reading the page back from swap failed", s->type);
        break;
    case KLAB_SWP_PROT_NONE:
    case KLAB_SWP_INVALIDATED:
        klab_add(buf, len, &used, "%7s: ", s->kind == KLAB_SWP_PROT_NONE ? "PROTNONE" : "INVALID");
        swp_pfn(s, buf, len, &used);
        klab_add(buf, len, &used, "  %s", s->kind == KLAB_SWP_PROT_NONE
                                         ? "present to the kernel, not to the MMU: PROT_NONE or a NUMA-hinting fault"
                                         : "a huge page made invalid while it is split or changed (pmdp_invalidate)");
        break;
    case KLAB_SWP_KERNEL:
        klab_add(buf, len, &used, "   SOFT: not present in a kernel mapping: %s", s->why);
        break;
    default:
        klab_add(buf, len, &used, "   SOFT: unknown non-present entry: %s", s->why);
        break;
    }
    klab_add(buf, len, &used, "\n");
    return used;
}

int klab_qemu_verdict(const struct klab_walk *w, bool qemu_mapped, uint64_t qemu_pa, uint64_t cpu_state, char *buf,
                      size_t len)
{
    size_t used = 0;
    const bool mapped = w->stop == KLAB_WALK_OK;
    const struct klab_arch_ops *a = klab_arch(klab_root_arch(w->root_name));
    const char *blind = !qemu_mapped && a->qemu_blind ? a->qemu_blind(w, cpu_state) : NULL;
    const int verdict = blind ? 2 : qemu_mapped != mapped || (mapped && qemu_pa != w->pa) ? 1 : 0;
    char pa[24] = "unmapped";
    if (qemu_mapped)
        snprintf(pa, sizeof pa, "%llx", (unsigned long long)qemu_pa);
    klab_add(buf, len, &used, "QEMU gva2gpa: %s (%s)\n", pa, blind ? blind : verdict ? "DISAGREES" : "agrees");
    return verdict;
}

const char *klab_qemu_state_reg(enum klab_arch arch)
{
    const struct klab_arch_ops *a = klab_arch(arch);
    return a ? a->state_reg : NULL;
}

void klab_abi(struct klab_abi *out)
{
    *out = (struct klab_abi){
        .version = KLAB_ABI_VERSION, .mmu_regs = sizeof(struct klab_mmu_regs), .level = sizeof(struct klab_level),
        .perms = sizeof(struct klab_perms), .walk = sizeof(struct klab_walk), .range = sizeof(struct klab_range),
        .range_opts = sizeof(struct klab_range_opts), .range_stats = sizeof(struct klab_range_stats),
        .geometry = sizeof(struct klab_geometry), .ram_region = sizeof(struct klab_ram_region),
        .error = sizeof(struct klab_error), .kernel_mm = sizeof(struct klab_kernel_mm), .swp = sizeof(struct klab_swp),
        .search_opts = sizeof(struct klab_search_opts), .search_stats = sizeof(struct klab_search_stats),
        .svg_region = sizeof(struct klab_svg_region), .svg_map_opts = sizeof(struct klab_svg_map_opts),
    };
}
