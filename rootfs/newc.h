/* newc ("070701") cpio records, as the kernel's initramfs unpacker reads them.
 * Format: Documentation/driver-api/early-userspace/buffer-format.rst and usr/gen_init_cpio.c.
 * The writer only formats bytes into a caller's buffer; it needs no root and touches no file system. */
#ifndef KLAB_NEWC_H
#define KLAB_NEWC_H

#include <stddef.h>
#include <stdint.h>

struct newc_entry {
    const char *name;     /* path inside the archive, no leading '/' */
    uint32_t mode;        /* S_IFREG/S_IFDIR/S_IFLNK/S_IFCHR/S_IFBLK | permission bits */
    uint32_t ino;
    uint32_t uid, gid;
    uint32_t nlink;
    uint32_t mtime;
    uint32_t rdev_major, rdev_minor;
    const void *data;     /* file contents or symlink target */
    size_t size;
};

/* Bytes one entry takes: 110-byte header, name + NUL padded to 4, data padded to 4. */
size_t newc_entry_size(const struct newc_entry *e);

/* Writes the entry into out (which must hold newc_entry_size(e) bytes); returns the bytes written, or 0 if a
 * field does not fit the format (name empty, size over 4 GiB). */
size_t newc_format(const struct newc_entry *e, unsigned char *out);

/* The "TRAILER!!!" record that closes an archive. */
size_t newc_trailer_size(void);
size_t newc_format_trailer(unsigned char *out);

#endif
