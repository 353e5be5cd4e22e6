/* Image-architecture detection and banner parsing on synthetic headers built from the boot-protocol specs
 * (Documentation/arch/x86/boot.rst, Documentation/arch/arm64/booting.rst). */
#include "check.h"
#include "machine/kimage.h"
#include "machine/kpair.h"

#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

static const char banner_release[] = "6.1.0-99-test";
static const char banner_version[] = "#3 SMP PREEMPT_DYNAMIC Debian 6.1.0-99 (2026-01-01)";

static unsigned char *fake_bzimage(size_t *len, int xloadflags)
{
    *len = 0x1000;
    unsigned char *b = calloc(1, *len);
    b[0x1fe] = 0x55, b[0x1ff] = 0xaa;
    memcpy(b + 0x202, "HdrS", 4);
    b[0x206] = 0x0f, b[0x207] = 0x02;             /* protocol 2.15 */
    b[0x236] = (unsigned char)xloadflags;
    b[0x20e] = 0x00, b[0x20f] = 0x04;             /* kernel_version at 0x400 + 0x200 */
    snprintf((char *)b + 0x600, 0x200, "%s (builder@host) %s", banner_release, banner_version);
    return b;
}

static unsigned char *fake_arm64_image(size_t *len)
{
    *len = 0x2000;
    unsigned char *b = calloc(1, *len);
    memcpy(b + 56, "ARM\x64", 4);
    /* The 6.1 placeholder banner first, then the real one (see kimage.c). */
    snprintf((char *)b + 0x400, 0x200, "Linux version %s (b@h) (gcc) # SMP x\n", banner_release);
    snprintf((char *)b + 0x800, 0x200, "Linux version %s (b@h) (gcc 12) %s\n", banner_release, banner_version);
    return b;
}

static void test_bzimage_detected(void)
{
    size_t len;
    unsigned char *b = fake_bzimage(&len, 1);
    struct kimage_info ki;
    char err[256];
    CHECK(kimage_inspect_buffer(b, len, true, &ki, err, sizeof err) == 0);
    CHECK(ki.profile == profile_find("x86_64"));
    CHECK_STR(ki.release, banner_release);
    CHECK_STR(ki.version, banner_version);
    free(b);
}

static void test_32bit_bzimage_refused(void)
{
    size_t len;
    unsigned char *b = fake_bzimage(&len, 0);
    struct kimage_info ki;
    char err[256];
    CHECK(kimage_inspect_buffer(b, len, false, &ki, err, sizeof err) != 0);
    CHECK(strstr(err, "32-bit") != NULL);
    free(b);
}

static void test_arm64_image_prefers_numbered_banner(void)
{
    size_t len;
    unsigned char *b = fake_arm64_image(&len);
    struct kimage_info ki;
    char err[256];
    CHECK(kimage_inspect_buffer(b, len, true, &ki, err, sizeof err) == 0);
    CHECK(ki.profile == profile_find("arm64"));
    CHECK(!ki.gzipped);
    CHECK_STR(ki.version, banner_version);
    free(b);
}

static void test_gzipped_arm64_image(void)
{
    size_t len;
    unsigned char *b = fake_arm64_image(&len);
    uLongf zlen = compressBound(len) + 32;
    unsigned char *z = malloc(zlen);
    z_stream zs = { 0 };
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = b, zs.avail_in = (uInt)len, zs.next_out = z, zs.avail_out = (uInt)zlen;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    struct kimage_info ki;
    char err[256];
    CHECK(kimage_inspect_buffer(z, n, false, &ki, err, sizeof err) == 0);
    CHECK(ki.profile == profile_find("arm64") && ki.gzipped);
    CHECK(kimage_inspect_buffer(z, n, true, &ki, err, sizeof err) == 0);
    CHECK_STR(ki.release, banner_release);
    /* A truncated gzip is an image QEMU could not inflate either: refused, whatever its header says. */
    CHECK(kimage_inspect_buffer(z, n / 2, false, &ki, err, sizeof err) == -1);
    CHECK(strstr(err, "corrupt") != NULL);
    free(z);
    free(b);
}

static void test_garbage_and_elf_refused(void)
{
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    struct kimage_info ki;
    char err[256];
    CHECK(kimage_inspect_buffer(junk, sizeof junk, false, &ki, err, sizeof err) != 0);
    CHECK(strstr(err, "not a kernel image") != NULL);
    memcpy(junk, "\x7f" "ELF", 4);
    CHECK(kimage_inspect_buffer(junk, sizeof junk, false, &ki, err, sizeof err) != 0);
    CHECK(strstr(err, "--vmlinux") != NULL);
    CHECK(kimage_inspect_buffer(junk, 3, false, &ki, err, sizeof err) != 0);
}

static void test_banner_parsing(void)
{
    struct kimage_info a = { 0 }, b = { 0 };
    const char *full = "Linux version 6.1.0-5 (u@h) (gcc (Debian 12) 12.2.0, GNU ld 2.40) #1 SMP Debian x\n";
    CHECK(kimage_parse_banner(full, strlen(full), &a));
    CHECK_STR(a.release, "6.1.0-5");
    CHECK_STR(a.version, "#1 SMP Debian x");
    const char *bz = "6.1.0-5 (u@h) #1 SMP Debian x";
    CHECK(kimage_parse_banner(bz, strlen(bz), &b));
    a.profile = b.profile = profile_find("x86_64");
    char err[512];
    CHECK(kernel_banners_match(&a, &b, err, sizeof err) == 0);
    const char *other = "6.1.0-5 (u@h) #2 SMP Debian x";
    CHECK(kimage_parse_banner(other, strlen(other), &b));
    CHECK(kernel_banners_match(&a, &b, err, sizeof err) != 0);
    CHECK(strstr(err, "does not match") != NULL);
    CHECK(!kimage_parse_banner("hello", 5, &b));
}

/* A vmlinux's PVH entry: an ELF note "Xen" of type 18 (XEN_ELFNOTE_PHYS32_ENTRY) in a PT_NOTE segment, after
 * other notes, as arch/x86/platform/pvh/head.S lays it out; absent, truncated or pointing outside the file,
 * it is not found and nothing is read out of bounds. */
static void put_note(unsigned char *p, uint32_t namesz, uint32_t descsz, uint32_t type, const char *name,
                     uint64_t desc)
{
    memcpy(p, &namesz, 4), memcpy(p + 4, &descsz, 4), memcpy(p + 8, &type, 4);
    memcpy(p + 12, name, namesz);
    memcpy(p + 12 + (namesz + 3) / 4 * 4, &desc, descsz);
}

static size_t fake_vmlinux(unsigned char *b, size_t cap, uint32_t pvh_type)
{
    memset(b, 0, cap);
    Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_phoff = 64, .e_phentsize = sizeof(Elf64_Phdr),
                      .e_phnum = 2, .e_ehsize = 64 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64, eh.e_ident[EI_DATA] = ELFDATA2LSB, eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(b, &eh, sizeof eh);
    Elf64_Phdr load = { .p_type = PT_LOAD, .p_offset = 0, .p_filesz = 0x100 };
    Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 2 * 24 };
    memcpy(b + 64, &load, sizeof load);
    memcpy(b + 64 + sizeof load, &note, sizeof note);
    put_note(b + 0x200, 4, 8, 6, "Xen", 0x6c696e7578);           /* XEN_ELFNOTE_GUEST_OS */
    put_note(b + 0x218, 4, 8, pvh_type, "Xen", 0x1000a30);
    return 0x300;
}

static void test_pvh_note(void)
{
    unsigned char b[0x300];
    char err[256];
    uint32_t entry = 0;
    size_t len = fake_vmlinux(b, sizeof b, 18);
    CHECK_EQ_U64(elf_pvh_entry(b, len, &entry, err, sizeof err), 1);
    CHECK_EQ_U64(entry, 0x1000a30);
    fake_vmlinux(b, sizeof b, 17);                                  /* another Xen note only */
    CHECK_EQ_U64(elf_pvh_entry(b, len, &entry, err, sizeof err), 0);
    fake_vmlinux(b, sizeof b, 18);
    CHECK_EQ_U64(elf_pvh_entry(b, 0x220, &entry, err, sizeof err), 0);   /* the note segment cut short */
    uint32_t big = 0xfffffff0;
    memcpy(b + 0x218 + 4, &big, 4);                                 /* descsz past the segment */
    CHECK_EQ_U64(elf_pvh_entry(b, len, &entry, err, sizeof err), 0);
    fake_vmlinux(b, sizeof b, 18);
    uint16_t many = 0xffff;
    memcpy(b + offsetof(Elf64_Ehdr, e_phnum), &many, 2);            /* program headers past the file */
    CHECK_EQ_U64(elf_pvh_entry(b, len, &entry, err, sizeof err), (uint64_t)-1);
    CHECK(strstr(err, "program headers") != NULL);
    CHECK_EQ_U64(elf_pvh_entry((const unsigned char *)"MZ", 2, &entry, err, sizeof err), (uint64_t)-1);
}

int main(void)
{
    RUN(test_bzimage_detected);
    RUN(test_32bit_bzimage_refused);
    RUN(test_arm64_image_prefers_numbered_banner);
    RUN(test_gzipped_arm64_image);
    RUN(test_garbage_and_elf_refused);
    RUN(test_banner_parsing);
    RUN(test_pvh_note);
    return CHECK_DONE();
}
