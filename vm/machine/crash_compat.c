/* machine/crash_compat.h. The DWARF is read with elfutils' libdw (the reader crash's and drgn's own
 * distributions build on); only the bytes of each struct pid's DW_AT_byte_size are written, in a copy. */
#define _GNU_SOURCE
#include "machine/crash_compat.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The byte size of the element of a flexible array member `numbers` of struct die s (0: no such member). */
static Dwarf_Word flexible_numbers(Dwarf_Die *s)
{
    Dwarf_Die m, array, sub, elem;
    Dwarf_Attribute a;
    if (dwarf_child(s, &m) != 0)
        return 0;
    do {
        const char *name = dwarf_diename(&m);
        if (dwarf_tag(&m) != DW_TAG_member || !name || strcmp(name, "numbers"))
            continue;
        if (!dwarf_formref_die(dwarf_attr(&m, DW_AT_type, &a), &array) || dwarf_tag(&array) != DW_TAG_array_type ||
            dwarf_child(&array, &sub) != 0 || dwarf_hasattr(&sub, DW_AT_upper_bound) || dwarf_hasattr(&sub, DW_AT_count))
            return 0;   /* numbers[1] (before v6.5, or a kernel without the backport): crash copes */
        Dwarf_Word size = 0;
        if (!dwarf_formref_die(dwarf_attr(&array, DW_AT_type, &a), &elem) ||
            dwarf_formudata(dwarf_attr(&elem, DW_AT_byte_size, &a), &size) != 0)
            return 0;
        return size;
    } while (dwarf_siblingof(&m, &m) == 0);
    return 0;
}

/* The file offset and data of .debug_info, where libdw's attribute pointers point. */
static bool debug_info_at(Dwarf *d, const char **base, off_t *off, size_t *size)
{
    Elf *e = dwarf_getelf(d);
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    if (!e || elf_getshdrstrndx(e, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(e, scn))) {
        const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(e, shstrndx, sh.sh_name) : NULL;
        Elf_Data *data = name && !strcmp(name, ".debug_info") && !(sh.sh_flags & SHF_COMPRESSED) ? elf_getdata(scn, NULL) : NULL;
        if (data && data->d_buf && data->d_size == sh.sh_size) {
            *base = data->d_buf;
            *off = (off_t)sh.sh_offset;
            *size = sh.sh_size;
            return true;
        }
    }
    return false;
}

struct fixes {
    off_t *offs;
    size_t max;
    long n;
    unsigned old_size, new_size;
    const char *base;
    off_t section_off;
    size_t section_size;
};

/* One top-level DIE: a struct pid with numbers[] has its byte size's offset recorded. -1: cannot be fixed. */
static int consider(Dwarf_Die *die, struct fixes *f)
{
    const char *name = dwarf_diename(die);
    Dwarf_Attribute a;
    Dwarf_Word size, upid;
    if (dwarf_tag(die) != DW_TAG_structure_type || !name || strcmp(name, "pid") || !(upid = flexible_numbers(die)) ||
        !dwarf_attr(die, DW_AT_byte_size, &a) || dwarf_formudata(&a, &size) != 0)
        return 0;
    const char *at = (const char *)a.valp;
    if (dwarf_whatform(&a) != DW_FORM_data1 || size + upid > 255 || at < f->base || at >= f->base + f->section_size ||
        (f->n && (size != f->old_size || size + upid != f->new_size)))
        return -1;
    f->old_size = (unsigned)size;
    f->new_size = (unsigned)(size + upid);
    if ((size_t)f->n < f->max)
        f->offs[f->n] = f->section_off + (at - f->base);
    f->n++;
    return 0;
}

long crash_pid_size_fixes(int fd, off_t *offs, size_t max, unsigned *old_size, unsigned *new_size, char *err,
                          size_t errlen)
{
    Dwarf *d = dwarf_begin(fd, DWARF_C_READ);
    struct fixes f = { .offs = offs, .max = max };
    if (!d || !debug_info_at(d, &f.base, &f.section_off, &f.section_size)) {
        snprintf(err, errlen, "no DWARF to read (%s)", dwarf_errmsg(-1));
        if (d)
            dwarf_end(d);
        return -1;
    }
    Dwarf_Off off = 0, next;
    size_t header;
    int bad = 0;
    while (!bad && dwarf_nextcu(d, off, &next, &header, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu, die;
        if (dwarf_offdie(d, off + header, &cu) && dwarf_child(&cu, &die) == 0)
            do
                bad = consider(&die, &f);
            while (!bad && dwarf_siblingof(&die, &die) == 0);
        off = next;
    }
    dwarf_end(d);
    if (bad || (size_t)f.n > max) {
        snprintf(err, errlen, "struct pid's size is not a one-byte DWARF form here (or there are too many)");
        return -1;
    }
    *old_size = f.old_size;
    *new_size = f.new_size;
    return f.n;
}
