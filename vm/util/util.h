/* Small helpers shared by klab's subcommands: error lines, files, folders, numbers, time. */
#ifndef KLAB_UTIL_H
#define KLAB_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every user-facing failure is one line on stderr starting with "klab: ". */
void klab_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void klab_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int write_text_file(const char *path, const char *text);        /* atomic: temp file + rename */
char *read_text_file(const char *path);                         /* malloc'ed, NUL-terminated, or NULL */
/* The same inside an opened folder, following no symlink at the last name (read: regular files only). */
int write_text_file_at(int dfd, const char *name, const char *text);
char *read_text_file_at(int dfd, const char *name);
int mkdir_p(const char *path, unsigned mode);
int remove_tree(const char *path);
bool file_exists(const char *path);
char *path_join(const char *a, const char *b);                  /* malloc'ed "a/b" */
/* FIFOs dir/names[0..n) (0600, any old file of that name replaced: klab's own run-state folder). 0, or -1
 * with err. */
int make_fifos(const char *dir, const char *const *names, size_t n, char *err, size_t errlen);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *find_in_path(const char *prog);                           /* malloc'ed absolute path or NULL */

/* "512", "512M", "2G", "1024K" → bytes; unit-less numbers are MiB, as QEMU's -m takes them. */
bool parse_size_mib(const char *s, uint64_t *bytes);
bool parse_u64(const char *s, uint64_t *out);                   /* decimal or 0x-hex, whole string */

uint64_t now_ns(void);
void sleep_ms(unsigned ms);
/* sleep_ms, cut short by a signal whose handler set *flag (a stop or reset waits on no full period). */
void sleep_ms_unless(unsigned ms, volatile sig_atomic_t *flag);

#endif
