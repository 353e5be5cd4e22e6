/* The KVM probe: KVM is chosen only when the probe guest prints its banner; a hang or a failure falls back to
 * TCG. Fake QEMUs (shell scripts) stand in for the three outcomes so that each path is exercised on any host. */
#define _GNU_SOURCE
#include "machine/accel.h"
#include "check.h"
#include "util/util.h"

#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/klab-test-accel-XXXXXX";

static char *fake_qemu(const char *name, const char *body)
{
    char *path = path_join(dir, name);
    char *text = xasprintf("#!/bin/sh\n%s\n", body);
    write_text_file(path, text);
    chmod(path, 0755);
    free(text);
    return path;
}

/* Writes the banner to the file named by "-serial file:PATH", as a booting kernel would, then lingers. */
static const char *const prints_banner =
    "for a; do case \"$a\" in file:*) echo 'Linux version 6.1.0 (x)' > \"${a#file:}\";; esac; done; sleep 30";

static void test_probe_mechanics(void)
{
    char *watch = path_join(dir, "watch");
    char *ok = fake_qemu("ok", "echo 'Linux version 1' > \"$1\"; sleep 30");
    char *argv_ok[] = { ok, watch, NULL };
    uint64_t t0 = now_ns();
    CHECK(accel_run_probe(argv_ok, 5000, watch, "Linux version") == PROBE_OK);
    CHECK(now_ns() - t0 < 4000000000ull);   /* returned on the banner, did not wait for the sleep */
    unlink(watch);
    char *argv_hang[] = { "sleep", "30", NULL };
    t0 = now_ns();
    CHECK(accel_run_probe(argv_hang, 300, watch, "Linux version") == PROBE_TIMEOUT);
    CHECK(now_ns() - t0 < 3000000000ull);   /* the hung guest was killed at the timeout */
    char *argv_fail[] = { "false", NULL };
    CHECK(accel_run_probe(argv_fail, 2000, watch, "Linux version") == PROBE_FAILED);
    char *argv_missing[] = { "/nonexistent/qemu", NULL };
    CHECK(accel_run_probe(argv_missing, 2000, watch, "Linux version") == PROBE_CANNOT_RUN);
    free(ok);
    free(watch);
}

static void test_choice_follows_probe(void)
{
    const struct machine_profile *x86 = profile_find("x86_64");
    char why[160];
    char *hangs = fake_qemu("hangs", "sleep 30");
    char *prints = fake_qemu("prints", prints_banner);
    bool kvm_usable = access("/dev/kvm", R_OK | W_OK) == 0;
#if defined(__x86_64__)
    /* A guest that hangs under KVM (what this lab's hosts do) must give TCG. */
    CHECK_STR(accel_choose(x86, hangs, "max", "/k", NULL, why, sizeof why), "tcg");
    CHECK(strstr(why, kvm_usable ? "hung" : "not usable") != NULL);
    CHECK_STR(accel_choose(x86, prints, "max", "/k", NULL, why, sizeof why), kvm_usable ? "kvm" : "tcg");
#endif
    /* Never KVM for a foreign architecture. */
    CHECK_STR(accel_choose(profile_find("arm64"), prints, "max", "/k", NULL, why, sizeof why),
#if defined(__aarch64__)
              kvm_usable ? "kvm" : "tcg"
#else
              "tcg"
#endif
    );
    free(hangs);
    free(prints);
}

static void test_choice_is_remembered(void)
{
#if defined(__x86_64__)
    if (access("/dev/kvm", R_OK | W_OK) != 0)
        SKIP("no usable /dev/kvm: the remembered KVM answer cannot be made here");
    char *cache = path_join(dir, "cache");
    char *prints = fake_qemu("prints2", prints_banner);
    char why[160];
    CHECK_STR(accel_choose(profile_find("x86_64"), prints, "max", "/k", cache, why, sizeof why), "kvm");
    /* Same host boot, same QEMU and CPU: answered from memory even though this QEMU would now hang. */
    char *hang_body = xasprintf("#!/bin/sh\nsleep 30\n");
    struct stat before;
    stat(prints, &before);
    write_text_file(prints, hang_body);
    chmod(prints, 0755);
    struct timespec times[2] = { before.st_atim, before.st_mtim };
    utimensat(AT_FDCWD, prints, times, 0);   /* same binary as far as the memory can tell */
    uint64_t t0 = now_ns();
    CHECK_STR(accel_choose(profile_find("x86_64"), prints, "max", "/k", cache, why, sizeof why), "kvm");
    CHECK(strstr(why, "earlier") != NULL && now_ns() - t0 < 1000000000ull);
    /* Another CPU model is probed anew (and this QEMU now hangs). */
    CHECK_STR(accel_choose(profile_find("x86_64"), prints, "qemu64", "/k", cache, why, sizeof why), "tcg");
    free(hang_body);
    free(prints);
    free(cache);
#else
    SKIP("the KVM probe is for x86_64 hosts");
#endif
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    RUN(test_probe_mechanics);
    RUN(test_choice_follows_probe);
    RUN(test_choice_is_remembered);
    remove_tree(dir);
    return CHECK_DONE();
}
