/* What a VM snapshot is keyed by (pure: unit-tested like qemu_build_argv). A snapshot holds a machine at its
 * shell; it may only be restored into a QEMU started with the same shape: the same binary, machine, CPU, RAM,
 * devices, kernel and initramfs. QEMU checks part of that itself (RAM block names and sizes, device sections,
 * docs/devel/migration.rst) but not the kernel or the image, which live in guest RAM: restored into a VM
 * that was meant to boot another kernel, the old one would run. So the key is everything that shapes the
 * guest, and the manifest (run/snapshot.c) adds what paths alone cannot tell (file stamps, the image's hash).
 *
 * What does not shape the guest is left out, so that one snapshot serves every run of that machine: the
 * run-state folder (a path, replaced by @RUN), -name, the gdb stub's address, -S, the console and monitor
 * chardevs (host-side backends: a chardev is not migrated, the serial device behind it is). */
#ifndef KLAB_SNAPSHOT_KEY_H
#define KLAB_SNAPSHOT_KEY_H

#include <stddef.h>
#include <stdint.h>

/* The key text of a QEMU argv (NULL-terminated) run in run_dir: one "arg ..." line per argument that shapes
 * the guest, in order. malloc'ed. */
char *snapshot_key_text(char *const *argv, const char *run_dir);

/* 64-bit FNV-1a (the slot's folder name, the image's digest). Chainable: pass the previous value as h,
 * SNAPSHOT_HASH_INIT first. */
#define SNAPSHOT_HASH_INIT 0xcbf29ce484222325ull
uint64_t snapshot_hash(uint64_t h, const void *data, size_t len);

/* The first line that differs between two manifests, as "what changed" for the stale message (a static
 * string naming the part: "the kernel", "QEMU", ...), or NULL when they are equal. Manifests are
 * "NAME rest\n" lines; the names are run/snapshot.c's. */
const char *snapshot_manifest_diff(const char *old, const char *now);

#endif
