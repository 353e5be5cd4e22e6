/* What Debian 12's crash needs to list a 6.1.1xx kernel's tasks.
 *
 * Debian's 6.1.1xx kernels carry the backport of commit b69f0aeb0689 (v6.5, "pid: Replace struct pid 1-element
 * array with flex-array"): struct pid ends in `struct upid numbers[]`, so its DWARF size no longer counts the
 * one upid every pid of the initial namespace has. crash before 8.0.6 copies SIZE(pid) bytes of each pid and
 * reads numbers[0].ns past the copy (task.c, refresh_xarray_task_table): it never sees init_pid_ns there and
 * skips every task but the idle ones (`sys` says TASKS: 2, `ps` lists the swappers, `bt PID` finds nothing).
 *
 * klab gives such a crash a copy of the vmlinux whose DWARF says what the kernel allocates for a pid of level
 * 0 (kernel/pid.c: pid_cachep objects of struct_size(pid, numbers, 1)): every struct pid's DW_AT_byte_size
 * grows by one upid, in place (the same DW_FORM, so no offset moves). Nothing else in the DWARF changes. The
 * copy lives in klab's cache, once per vmlinux. */
#ifndef KLAB_CRASH_COMPAT_H
#define KLAB_CRASH_COMPAT_H

#include <stddef.h>
#include <sys/types.h>

/* Where each struct pid's DW_AT_byte_size is in the ELF file fd, when struct pid ends in a flexible
 * numbers[]: up to max file offsets into offs (all DW_FORM_data1), the sizes old and new (old + one upid).
 * The count found (0: no such struct pid, nothing to do), or -1 with err (not an ELF with DWARF, or a form
 * that cannot be rewritten in place). Pure but for reading fd. */
long crash_pid_size_fixes(int fd, off_t *offs, size_t max, unsigned *old_size, unsigned *new_size, char *err,
                          size_t errlen);

/* The vmlinux `crash` (the binary given) should read (machine/crash_vmlinux.c): a copy in klab's cache, made
 * once, that carries gdb's index of its DWARF (so crash's gdb does not read all of it at each start) and, for a
 * crash before 8.0.6 on such a kernel, the struct pid fix; vmlinux's own path when no copy can help or be made
 * (after one line saying why when crash then lacks the fix). Malloc'ed. */
char *crash_vmlinux(const char *vmlinux, const char *crash_binary);

#endif
