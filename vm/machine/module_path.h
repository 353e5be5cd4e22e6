/* Where klab finds out-of-tree modules' .ko files for a kernel: the folders gdb's klab package searches too
 * (gdb/klab/modules.py), for tools that take one folder, such as crash's `mod -S DIR`. */
#ifndef KLAB_MODULE_PATH_H
#define KLAB_MODULE_PATH_H

/* A private folder (0700, under $TMPDIR or /tmp) with one link per module file NAME.ko found for the kernel
 * whose vmlinux is given: $KLAB_MODULE_PATH's folders, then build/modules/KERNEL/ of the current folder and
 * of klab's own clone, then the kernel's own modules/ (Debian's, beside vmlinux); the first NAME.ko wins.
 * Only regular files are linked (a link found there is not followed). NULL when no module file was found;
 * else the folder (malloc'ed), which module_farm_remove() takes away. */
char *module_farm(const char *vmlinux);
void module_farm_remove(char *dir);

#endif
