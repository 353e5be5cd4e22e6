#define _GNU_SOURCE
#include "machine/kimage.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }

bool kimage_parse_banner(const char *banner, size_t len, struct kimage_info *out)
{
    static const char prefix[] = "Linux version ";
    if (len >= sizeof prefix - 1 && !memcmp(banner, prefix, sizeof prefix - 1)) {
        banner += sizeof prefix - 1;
        len -= sizeof prefix - 1;
    }
    const char *end = memchr(banner, '\n', len);
    if (end)
        len = (size_t)(end - banner);
    const char *space = memchr(banner, ' ', len);
    /* UTS_VERSION starts with '#' (scripts/mkcompile_h); the part between is builder and compiler. */
    const char *hash = memmem(banner, len, " #", 2);
    if (!space || !hash || space == banner || (size_t)(space - banner) >= sizeof out->release)
        return false;
    snprintf(out->release, sizeof out->release, "%.*s", (int)(space - banner), banner);
    snprintf(out->version, sizeof out->version, "%.*s", (int)(banner + len - hash - 1), hash + 1);
    return true;
}

/* Boot protocol (Documentation/arch/x86/boot.rst): 0xAA55 at 0x1FE, "HdrS" at 0x202, version at 0x206;
 * kernel_version at 0x20E points (minus 0x200) at "release (builder) #version"; xloadflags at 0x236,
 * bit 0 = XLF_KERNEL_64 (protocol 2.12+). */
static int inspect_bzimage(const unsigned char *buf, size_t len, bool want_banner, struct kimage_info *out,
                           char *err, size_t errlen)
{
    uint16_t protocol = le16(buf + 0x206);
    if (protocol >= 0x20c && len > 0x237 && !(buf[0x236] & 1))
        return FAIL("this bzImage is a 32-bit x86 kernel; klab runs x86_64 kernels");
    out->profile = profile_for_image(IMAGE_BZIMAGE);
    if (!want_banner)
        return 0;
    size_t at = (size_t)le16(buf + 0x20e) + 0x200;
    if (le16(buf + 0x20e) == 0 || at >= len)
        return FAIL("bzImage carries no kernel_version string");
    const char *s = (const char *)buf + at;
    size_t n = strnlen(s, len - at);
    if (!kimage_parse_banner(s, n, out))
        return FAIL("bzImage kernel_version string is not a Linux banner");
    return 0;
}

/* Since 6.1 an image holds two banners: init/version.o's, whose UTS version is a bare "#" placeholder, and
 * the final linux_banner from init/version-timestamp.o with the build number ("#1"). The numbered one is the
 * symbol gdb and the kernel use, so it wins. */
static int banner_in(const unsigned char *buf, size_t len, struct kimage_info *out, char *err, size_t errlen)
{
    static const char needle[] = "Linux version ";
    bool found = false;
    for (const unsigned char *p = buf; (p = memmem(p, len - (size_t)(p - buf), needle, sizeof needle - 1));
         p++) {
        const char *s = (const char *)p;
        size_t n = strnlen(s, len - (size_t)(p - buf));
        struct kimage_info cand = *out;
        /* The banner itself, not a format string that merely mentions it. */
        if (n > sizeof needle && s[sizeof needle - 1] >= '0' && s[sizeof needle - 1] <= '9' &&
            kimage_parse_banner(s, n, &cand)) {
            *out = cand;
            found = true;
            if (cand.version[1] >= '0' && cand.version[1] <= '9')
                return 0;
        }
    }
    return found ? 0 : FAIL("no 'Linux version' banner in the image");
}

static int gunzip_all(const unsigned char *buf, size_t len, size_t limit, unsigned char **out, size_t *outlen,
                      char *err, size_t errlen)
{
    z_stream zs = { 0 };
    if (inflateInit2(&zs, 16 + 15) != Z_OK)
        return FAIL("inflateInit2 failed");
    size_t cap = limit < (size_t)1 << 20 ? limit : len * 4, used = 0;
    unsigned char *dst = malloc(cap);
    zs.next_in = (Bytef *)buf;
    zs.avail_in = (uInt)len;
    int rc = Z_OK;
    while (dst && rc == Z_OK && used < limit) {
        if (used == cap) {
            unsigned char *n = realloc(dst, cap *= 2);
            if (!n)
                break;
            dst = n;
        }
        size_t room = (cap < limit ? cap : limit) - used;
        zs.next_out = dst + used;
        zs.avail_out = (uInt)room;
        rc = inflate(&zs, Z_NO_FLUSH);
        used += room - zs.avail_out;
        if (rc == Z_BUF_ERROR && zs.avail_out != 0)
            break;
        if (rc == Z_BUF_ERROR)
            rc = Z_OK;
    }
    inflateEnd(&zs);
    if (!dst || used == 0 || (rc != Z_STREAM_END && rc != Z_OK)) {
        free(dst);
        return FAIL("gzip data in the image is corrupt");
    }
    *out = dst;
    *outlen = used;
    return 0;
}

int kimage_inspect_buffer(const unsigned char *buf, size_t len, bool want_banner, struct kimage_info *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len >= 4 && !memcmp(buf, ELFMAG, SELFMAG))
        return FAIL("this is an ELF file (a vmlinux?): pass the bootable image (bzImage or arm64 Image) as "
                    "--kernel and the vmlinux as --vmlinux");
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        /* Debian's arm64 vmlinuz is a gzip'd Image, which QEMU's virt loader inflates itself. */
        unsigned char *plain;
        size_t plen;
        if (gunzip_all(buf, len, want_banner ? SIZE_MAX / 2 : 4096, &plain, &plen, err, errlen) != 0)
            return -1;
        int rc = kimage_inspect_buffer(plain, plen, want_banner, out, err, errlen);
        free(plain);
        out->gzipped = true;
        return rc;
    }
    if (len >= 0x240 && le16(buf + 0x1fe) == 0xaa55 && !memcmp(buf + 0x202, "HdrS", 4))
        return inspect_bzimage(buf, len, want_banner, out, err, errlen);
    /* arm64 Image header (Documentation/arch/arm64/booting.rst): magic "ARM\x64" at offset 56. */
    if (len >= 64 && le32(buf + 56) == 0x644d5241u) {
        out->profile = profile_for_image(IMAGE_ARM64);
        /* flags (le64 at 24), bits 2:1: kernel page size, 0 unspecified, 1 4K, 2 16K, 3 64K */
        static const unsigned page_shifts[4] = { 0, 12, 14, 16 };
        out->page_shift = page_shifts[(buf[24] >> 1) & 3];
        return want_banner ? banner_in(buf, len, out, err, errlen) : 0;
    }
    if (len >= 0x40 && (le32(buf + 0x38) == 0x016f2818u || le32(buf + 0x24) == 0x016f2818u))
        return FAIL("this is a 32-bit ARM zImage; klab runs arm64 kernels");
    return FAIL("not a kernel image klab knows (x86 bzImage, arm64 Image, or gzip'd arm64 Image)");
}

struct mapped {
    unsigned char *p;
    size_t len;
};

static int map_file(const char *path, struct mapped *m, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FAIL("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return FAIL("%s is not a regular, non-empty file", path);
    }
    m->len = (size_t)st.st_size;
    m->p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m->p == MAP_FAILED)
        return FAIL("cannot map %s: %s", path, strerror(errno));
    return 0;
}

int kimage_inspect(const char *path, bool want_banner, struct kimage_info *out, char *err, size_t errlen)
{
    struct mapped m;
    if (map_file(path, &m, err, errlen) != 0)
        return -1;
    int rc = kimage_inspect_buffer(m.p, m.len, want_banner, out, err, errlen);
    munmap(m.p, m.len);
    if (rc != 0) {
        char inner[384];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, errlen, "%s: %s", path, inner);
    }
    return rc;
}

/* Finds a defined symbol in the ELF symbol table (ELF-64 only: both arches). NULL with err set otherwise. */
static const Elf64_Sym *elf_symbol(const struct mapped *m, const char *name, char *err, size_t errlen)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m->p;
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > m->len) {
        snprintf(err, errlen, "vmlinux has no usable section table");
        return NULL;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(m->p + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *strtab = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > m->len || strtab->sh_offset + strtab->sh_size > m->len)
            break;
        const Elf64_Sym *sym = (const Elf64_Sym *)(m->p + sh[i].sh_offset);
        size_t nsym = sh[i].sh_size / sizeof *sym;
        const char *names = (const char *)m->p + strtab->sh_offset;
        for (size_t k = 0; k < nsym; k++)
            if (sym[k].st_name < strtab->sh_size && !strcmp(names + sym[k].st_name, name) &&
                sym[k].st_shndx != SHN_UNDEF && sym[k].st_shndx < eh->e_shnum)
                return &sym[k];
    }
    snprintf(err, errlen, "vmlinux has no symbol %s", name);
    return NULL;
}

/* Reads linux_banner through the ELF symbol table and the section that holds it. */
static int elf_banner(const struct mapped *m, struct kimage_info *out, char *err, size_t errlen)
{
    const Elf64_Sym *sym = elf_symbol(m, "linux_banner", err, errlen);
    if (!sym) {
        char inner[200];
        snprintf(inner, sizeof inner, "%s", err);
        return FAIL("%s (stripped?)", inner);
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m->p;
    const Elf64_Shdr *sec = (const Elf64_Shdr *)(m->p + eh->e_shoff) + sym->st_shndx;
    uint64_t off = sec->sh_offset + (sym->st_value - sec->sh_addr);
    if (sec->sh_type == SHT_NOBITS || sym->st_value < sec->sh_addr || off >= m->len)
        return FAIL("linux_banner is not stored in the vmlinux file");
    const char *str = (const char *)m->p + off;
    if (!kimage_parse_banner(str, strnlen(str, m->len - off), out))
        return FAIL("linux_banner in vmlinux is not a Linux banner");
    return 0;
}

int vmlinux_symbol_address(const char *path, const char *name, uint64_t *addr, char *err, size_t errlen)
{
    uint64_t size;
    return vmlinux_symbol(path, name, addr, &size, err, errlen);
}

int vmlinux_symbol(const char *path, const char *name, uint64_t *addr, uint64_t *size, char *err, size_t errlen)
{
    struct mapped m;
    if (map_file(path, &m, err, errlen) != 0)
        return -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m.p;
    int rc = -1;
    if (m.len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64) {
        snprintf(err, errlen, "%s is not a 64-bit ELF vmlinux", path);
    } else {
        const Elf64_Sym *sym = elf_symbol(&m, name, err, errlen);
        if (sym) {
            *addr = sym->st_value;
            *size = sym->st_size;
            rc = 0;
        }
    }
    munmap(m.p, m.len);
    return rc;
}

int vmlinux_inspect(const char *path, struct kimage_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct mapped m;
    if (map_file(path, &m, err, errlen) != 0)
        return -1;
    int rc = 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m.p;
    if (m.len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG))
        rc = FAIL("%s is not an ELF vmlinux", path);
    else if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        rc = FAIL("%s is a 32-bit ELF; klab debugs 64-bit kernels", path);
    else if (!(out->profile = profile_for_elf_machine(eh->e_machine)))
        rc = FAIL("%s is an ELF for machine %u, neither x86_64 nor arm64", path, eh->e_machine);
    else if (elf_banner(&m, out, err, errlen) != 0) {
        char inner[384];
        snprintf(inner, sizeof inner, "%s", err);
        rc = FAIL("%s: %s", path, inner);
    }
    munmap(m.p, m.len);
    return rc;
}

/* One note at off of a PT_NOTE segment [off, end): namesz, descsz, type, then the name and the descriptor,
 * each padded to 4 bytes (ELF gABI, "Note Section"). The offset of the next, or 0 when it does not fit. */
static uint64_t pvh_note_at(const unsigned char *buf, uint64_t off, uint64_t end, uint32_t *entry, bool *found)
{
    if (end - off < 12)
        return 0;
    uint64_t namesz = le32(buf + off), descsz = le32(buf + off + 4), type = le32(buf + off + 8);
    uint64_t name = off + 12, desc = name + (namesz + 3) / 4 * 4, next = desc + (descsz + 3) / 4 * 4;
    if (next > end)
        return 0;
    if (type == 18 && namesz == 4 && !memcmp(buf + name, "Xen", 4) && descsz >= 4) {   /* XEN_ELFNOTE_PHYS32_ENTRY */
        *entry = le32(buf + desc);
        *found = true;
    }
    return next;
}

int elf_pvh_entry(const unsigned char *buf, size_t len, uint32_t *entry, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    if (len < sizeof eh)
        return FAIL("not a 64-bit ELF file");
    memcpy(&eh, buf, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return FAIL("not a 64-bit little-endian ELF file");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return FAIL("the ELF program headers lie outside the file");
    bool found = false;
    for (unsigned i = 0; i < eh.e_phnum && !found; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_NOTE || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            continue;
        uint64_t end = ph.p_offset + ph.p_filesz;
        for (uint64_t off = ph.p_offset; off && off < end && !found;)
            off = pvh_note_at(buf, off, end, entry, &found);
    }
    return found ? 1 : 0;
}

int vmlinux_pvh_entry(const char *path, uint32_t *entry, char *err, size_t errlen)
{
    struct mapped m;
    if (map_file(path, &m, err, errlen) != 0)
        return -1;
    int rc = elf_pvh_entry(m.p, m.len, entry, err, errlen);
    munmap(m.p, m.len);
    if (rc < 0) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, errlen, "%s: %s", path, inner);
    }
    return rc;
}
