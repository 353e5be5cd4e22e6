/* libklab's dump reader on synthetic ELF cores laid out as QEMU's dump/dump.c writes them (a PT_NOTE with
 * VMCOREINFO, PT_LOADs by p_paddr; a paging dump's aliases overlap): reads come from the segment holding the
 * PA, a PA no segment holds is an error, and malformed files are refused with a reason. The translation
 * registers from VMCOREINFO follow the kernel's __pa_symbol rules, computed here from the numbers the test
 * wrote. */
#define _GNU_SOURCE
#include "check.h"
#include "klab.h"
#include "physmem_internal.h"

#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

static const char X86_VMCI[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\n"
                               "NUMBER(phys_base)=16777216\nNUMBER(pgtable_l5_enabled)=1\nKERNELOFFSET=0\n";
static const char ARM_VMCI[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffff800009a1b000\n"
                               "NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffff7fffc7e00000\n"
                               "NUMBER(TCR_EL1_T1SZ)=0x10\n";

struct seg {
    uint64_t pa, size;
    unsigned char fill;
};

/* Extra notes after VMCOREINFO (the CPUs' notes of test_cpu_notes); none by default. */
static const unsigned char *extra_notes;
static size_t extra_len;

/* An ELF core: the note, then each segment's bytes filled with its fill byte. */
static unsigned char *core(uint16_t machine, const char *vmci, const struct seg *segs, int n, size_t *len)
{
    size_t vlen = strlen(vmci), notelen = 12 + 12 + (vlen + 3) / 4 * 4 + extra_len;
    size_t phoff = sizeof(Elf64_Ehdr), noteoff = phoff + (size_t)(n + 1) * sizeof(Elf64_Phdr);
    size_t off = noteoff + notelen;
    *len = off;
    for (int i = 0; i < n; i++)
        *len += segs[i].size;
    unsigned char *b = calloc(1, *len);
    Elf64_Ehdr eh = {.e_type = ET_CORE, .e_machine = machine, .e_version = EV_CURRENT, .e_phoff = phoff,
                     .e_ehsize = sizeof eh, .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)(n + 1)};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64, eh.e_ident[EI_DATA] = ELFDATA2LSB, eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(b, &eh, sizeof eh);
    Elf64_Phdr note = {.p_type = PT_NOTE, .p_offset = noteoff, .p_filesz = notelen};
    memcpy(b + phoff, &note, sizeof note);
    uint32_t hdr[3] = {11, (uint32_t)vlen, 0};
    memcpy(b + noteoff, hdr, 12);
    memcpy(b + noteoff + 12, "VMCOREINFO", 11);
    memcpy(b + noteoff + 24, vmci, vlen);
    if (extra_len)
        memcpy(b + noteoff + 24 + (vlen + 3) / 4 * 4, extra_notes, extra_len);
    for (int i = 0; i < n; i++) {
        Elf64_Phdr ph = {.p_type = PT_LOAD, .p_offset = off, .p_paddr = segs[i].pa, .p_filesz = segs[i].size,
                         .p_memsz = segs[i].size};
        memcpy(b + phoff + (size_t)(i + 1) * sizeof ph, &ph, sizeof ph);
        memset(b + off, segs[i].fill, segs[i].size);
        off += segs[i].size;
    }
    return b;
}

static struct klab_physmem *open_core(const unsigned char *b, size_t len, char *path, struct klab_elfcore_info *info,
                                      struct klab_error *err)
{
    strcpy(path, "/tmp/klab-test-elfcore-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, b, len) == (ssize_t)len);
    close(fd);
    return klab_physmem_open_elfcore(path, info, err);
}

/* core() written to a fresh file and opened as a dump; the bytes are freed, path names the file to unlink. */
static struct klab_physmem *open_synthetic(const struct seg *segs, int n, char *path, struct klab_elfcore_info *info)
{
    size_t len;
    unsigned char *b = core(EM_X86_64, X86_VMCI, segs, n, &len);
    struct klab_error err;
    struct klab_physmem *m = open_core(b, len, path, info, &err);
    free(b);
    CHECK(m != NULL);
    return m;
}

static void test_reads_by_paddr(void)
{
    /* RAM at 0x1000 (2 pages) and 0x10000; a paging dump's alias of the second page overlaps the first */
    const struct seg segs[] = {{0x1000, 0x2000, 0xaa}, {0x10000, 0x1000, 0xbb}, {0x2000, 0x1000, 0xaa}};
    char path[64];
    struct klab_elfcore_info info;
    struct klab_physmem *m = open_synthetic(segs, 3, path, &info);
    if (m) {
        unsigned char buf[16];
        CHECK_EQ_U64(info.arch, KLAB_ARCH_X86_64);
        CHECK_EQ_U64(info.ram_bytes, 0x3000);                    /* the alias counted once */
        CHECK(info.vmcoreinfo && !strncmp(info.vmcoreinfo, "OSRELEASE=6.1.0-test\n", 21));
        CHECK_EQ_U64(klab_physmem_read(m, 0x2ff8, buf, 16), (uint64_t)-1);   /* runs into a gap */
        CHECK_EQ_U64(klab_physmem_read(m, 0x1ff8, buf, 16), 0);              /* across the two pages */
        CHECK_EQ_U64(buf[0], 0xaa);
        CHECK_EQ_U64(buf[15], 0xaa);
        CHECK_EQ_U64(klab_physmem_read(m, 0x10ff0, buf, 16), 0);
        CHECK_EQ_U64(buf[15], 0xbb);
        CHECK_EQ_U64(klab_physmem_read(m, 0x0, buf, 8), (uint64_t)-1);        /* not in the dump */
        CHECK_EQ_U64(klab_physmem_read(m, 0x11000, buf, 8), (uint64_t)-1);
        klab_physmem_close(m);
    }
    unlink(path);
}

/* klab_dump_from_buffer's answer alone: 0 accepted, -1 refused (err says why). */
static int check_buffer(const unsigned char *b, size_t len, struct klab_elfcore_info *info, char *err, size_t errlen)
{
    struct klab_physmem *m = klab_dump_from_buffer(b, len, info, err, errlen);
    klab_physmem_close(m);
    return m ? 0 : -1;
}

static void test_refusals(void)
{
    const struct seg segs[] = {{0x1000, 0x1000, 0xaa}};
    size_t len;
    unsigned char *b = core(EM_X86_64, X86_VMCI, segs, 1, &len);
    char err[256];
    struct klab_elfcore_info info;
    CHECK_EQ_U64(check_buffer(b, len, &info, err, sizeof err), 0);
    CHECK_EQ_U64(check_buffer(b, len - 1, &info, err, sizeof err), (uint64_t)-1);
    CHECK(strstr(err, "truncated") != NULL);
    CHECK_EQ_U64(check_buffer((const unsigned char *)"makedumpfile\0\0\0\0", 16, &info, err, sizeof err),
                 (uint64_t)-1);
    CHECK(strstr(err, "flattened") != NULL && strstr(err, "truncated") != NULL);
    b[offsetof(Elf64_Ehdr, e_machine)] = 40;   /* EM_ARM */
    CHECK_EQ_U64(check_buffer(b, len, &info, err, sizeof err), (uint64_t)-1);
    CHECK(strstr(err, "neither") != NULL);
    b[offsetof(Elf64_Ehdr, e_machine)] = EM_X86_64;
    b[offsetof(Elf64_Ehdr, e_type)] = ET_EXEC;
    CHECK_EQ_U64(check_buffer(b, len, &info, err, sizeof err), (uint64_t)-1);
    free(b);
    char path[] = "/tmp/klab-test-elfcore-link-XXXXXX";
    CHECK(mkdtemp(path) != NULL);
    char link[96];
    snprintf(link, sizeof link, "%s/l", path);
    CHECK(symlink("/etc/passwd", link) == 0);
    struct klab_error e;
    CHECK(klab_physmem_open_elfcore(link, NULL, &e) == NULL);   /* a link is not followed */
    CHECK(strstr(e.msg, "cannot open") != NULL);
    unlink(link);
    rmdir(path);
}

static void test_regs_from_vmcoreinfo(void)
{
    struct klab_mmu_regs r;
    struct klab_error err;
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(X86_VMCI, strlen(X86_VMCI), KLAB_ARCH_X86_64, &r, &err), 0);
    CHECK_EQ_U64(r.cr3, 0xffffffff82a10000ull - 0xffffffff80000000ull + 16777216);   /* __pa_symbol */
    CHECK_EQ_U64(r.cr4 >> 12 & 1, 1);                                                 /* LA57 */
    CHECK_EQ_U64(r.efer >> 11 & 1, 1);                                                /* NXE */
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(ARM_VMCI, strlen(ARM_VMCI), KLAB_ARCH_ARM64, &r, &err), 0);
    CHECK_EQ_U64(r.ttbr1, 0xffff800009a1b000ull - 0xffff7fffc7e00000ull);
    CHECK_EQ_U64(r.tcr >> 16 & 63, 16);     /* T1SZ */
    CHECK_EQ_U64(r.tcr >> 30 & 3, 2);       /* TG1 4K */
    CHECK_EQ_U64(r.tcr >> 7 & 1, 1);        /* EPD0: no user tables */
    const char no_pgd[] = "PAGESIZE=4096\nNUMBER(phys_base)=0\n";
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(no_pgd, strlen(no_pgd), KLAB_ARCH_X86_64, &r, &err), (uint64_t)-1);
    CHECK(strstr(err.msg, "swapper_pg_dir") != NULL);
    const char lpa2[] = "PAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffff800009a1b000\nNUMBER(VA_BITS)=52\n"
                        "NUMBER(kimage_voffset)=0xffff7fffc7e00000\nNUMBER(TCR_EL1_T1SZ)=0xc\n";
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(lpa2, strlen(lpa2), KLAB_ARCH_ARM64, &r, &err), (uint64_t)-1);
    CHECK(strstr(err.msg, "LPA2") != NULL);
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(NULL, 0, KLAB_ARCH_ARM64, &r, &err), (uint64_t)-1);
    CHECK(strstr(err.msg, "no VMCOREINFO") != NULL);
    uint64_t v;
    CHECK(!klab_vmcoreinfo_value("XNUMBER(a)=1\n", 13, "NUMBER(a)=", 10, &v));   /* only at a line start */
    CHECK(klab_vmcoreinfo_value("NUMBER(a)=-1\n", 13, "NUMBER(a)=", 10, &v));   /* %ld below 0 */
    CHECK_EQ_U64(v, ~0ull);
    CHECK(!klab_vmcoreinfo_value("NUMBER(a)=1x\n", 13, "NUMBER(a)=", 10, &v));
    /* a KASLR kernel loaded below 16 MiB: phys_base < 0, and __pa_symbol still lands on the right PA */
    const char low[] = "PAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(phys_base)=-8388608\n"
                       "NUMBER(pgtable_l5_enabled)=0\n";
    CHECK_EQ_U64(klab_mmu_regs_from_vmcoreinfo(low, strlen(low), KLAB_ARCH_X86_64, &r, &err), 0);
    CHECK_EQ_U64(r.cr3, 0x2a10000 - 0x800000);
}

/* Per-CPU notes as QEMU writes them for x86_64 (dump/dump.c): NT_PRSTATUS ("CORE", pr_reg at 112) then the
 * "QEMU" CPU state (cr[] after 18 registers and 10 segments), one pair per CPU in CPU order. */
static size_t put_cpu_note(unsigned char *p, const char *name, uint32_t type, size_t descsz, unsigned at, uint64_t v)
{
    uint32_t namesz = (uint32_t)strlen(name) + 1, hdr[3] = {namesz, (uint32_t)descsz, type};
    size_t nlen = (namesz + 3) / 4 * 4;
    memcpy(p, hdr, 12);
    memcpy(p + 12, name, namesz);
    memset(p + 12 + nlen, 0, descsz);
    memcpy(p + 12 + nlen + at, &v, 8);
    return 12 + nlen + (descsz + 3) / 4 * 4;
}

static void test_cpu_notes(void)
{
    static unsigned char notes[4096];
    size_t n = 0;
    for (unsigned cpu = 0; cpu < 2; cpu++) {
        n += put_cpu_note(notes + n, "CORE", NT_PRSTATUS, 336, 112 + 8 * 16, 0xffffffff81000000ull + cpu);   /* rip */
        n += put_cpu_note(notes + n, "QEMU", 0, 440, 8 + 18 * 8 + 10 * 24 + 8 * 3, 0x1000ull * (cpu + 1)); /* cr3 */
    }
    extra_notes = notes, extra_len = n;
    const struct seg segs[] = {{0x1000, 0x1000, 0}};
    char path[64];
    struct klab_elfcore_info info;
    struct klab_physmem *m = open_synthetic(segs, 1, path, &info);
    extra_len = 0;
    struct klab_error err;
    if (m) {
        uint64_t v = 0;
        CHECK_EQ_U64(info.ncpus, 2);
        CHECK(info.vmcoreinfo != NULL);
        CHECK_EQ_U64(klab_elfcore_register(m, 1, "rip", &v, &err), 0);
        CHECK_EQ_U64(v, 0xffffffff81000001ull);
        CHECK_EQ_U64(klab_elfcore_register(m, 0, "cr3", &v, &err), 0);
        CHECK_EQ_U64(v, 0x1000);
        CHECK_EQ_U64(klab_elfcore_register(m, 1, "cr3", &v, &err), 0);
        CHECK_EQ_U64(v, 0x2000);
        CHECK_EQ_U64(klab_elfcore_register(m, 2, "rip", &v, &err), (uint64_t)-1);
        CHECK(strstr(err.msg, "no CPU 2") != NULL);
        CHECK_EQ_U64(klab_elfcore_register(m, 0, "efer", &v, &err), (uint64_t)-1);
        klab_physmem_close(m);
    }
    unlink(path);
}

int main(void)
{
    RUN(test_reads_by_paddr);
    RUN(test_refusals);
    RUN(test_regs_from_vmcoreinfo);
    RUN(test_cpu_notes);
    return CHECK_DONE();
}
