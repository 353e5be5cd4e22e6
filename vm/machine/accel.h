/* Choosing the accelerator. KVM is used only when a real guest has been seen to run under it: on some hosts
 * /dev/kvm opens fine but every guest spins in host system time and never gets anywhere. */
#ifndef KLAB_ACCEL_H
#define KLAB_ACCEL_H

#include "machine/profile.h"

#include <stdbool.h>

enum probe_result { PROBE_OK, PROBE_FAILED, PROBE_TIMEOUT, PROBE_CANNOT_RUN };

/* Runs argv (no shell) for up to timeout_ms: PROBE_OK as soon as watch_file contains watch_text,
 * PROBE_FAILED if the program exits first, PROBE_TIMEOUT if neither happens in time. The program is killed
 * in every case. The mechanism behind the KVM probe, exposed for tests. */
enum probe_result accel_run_probe(char *const argv[], int timeout_ms, const char *watch_file,
                                  const char *watch_text);

/* "kvm" or "tcg" for booting `kernel` with this profile and CPU model on this host. The probe boots that very
 * kernel under KVM and wants its banner on the console within seconds (a guest that merely starts proves
 * nothing: on some hosts a few instructions run but a kernel never prints). The answer is remembered per host
 * boot, QEMU binary and CPU model in cache_dir (NULL: no memory). why gets a short reason. */
const char *accel_choose(const struct machine_profile *p, const char *qemu, const char *cpu, const char *kernel,
                         const char *cache_dir, char *why, size_t whylen);

const char *probe_result_name(enum probe_result r);

#endif
