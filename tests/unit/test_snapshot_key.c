#define _GNU_SOURCE
/* What a snapshot is keyed by (run/snapshot_key.h): the guest's shape in, host-side details out, and the
 * manifest comparison that names what changed. The argv comes from qemu_build_argv, as klab builds it. */
#include "check.h"
#include "machine/qemu_argv.h"
#include "run/snapshot_key.h"

#include <stdlib.h>

static struct boot_request request(const char *run_dir, const char *gdb)
{
    return (struct boot_request){ .profile = profile_find("x86_64"), .name = "t", .kernel = "/k/vmlinux",
                                  .initrd = NULL, .accel = "tcg", .smp = 2, .mem_bytes = 1ull << 30,
                                  .gdb_listen = gdb, .run_dir = run_dir, .console = CONSOLE_SOCKET,
                                  .wait_for_gdb = true };
}

static char *key_of(const struct boot_request *r)
{
    struct argv a;
    char err[128];
    if (qemu_build_argv(r, &a, err, sizeof err) != 0)
        return strdup("");
    char *k = snapshot_key_text(a.v, r->run_dir);
    argv_free(&a);
    return k;
}

/* Two VMs of one machine in other run folders, stubs, names, consoles, paused or restoring: one key. */
static void test_host_side_left_out(void)
{
    struct boot_request a = request("/run/a", "tcp:127.0.0.1:1234"), b = request("/dev/shm/other/b", "unix:/x/g.sock");
    b.name = "other";
    b.console = CONSOLE_STDIO;
    b.wait_for_gdb = false;
    b.incoming = true;
    char *ka = key_of(&a), *kb = key_of(&b);
    CHECK_STR(ka, kb);
    CHECK(strstr(ka, "mem-path=@RUN/ram") != NULL);
    CHECK(strstr(ka, "/run/a") == NULL && strstr(ka, "1234") == NULL && strstr(ka, "klab-t") == NULL);
    CHECK(strstr(ka, "arg -S\n") == NULL && strstr(kb, "arg -incoming") == NULL);
    free(ka);
    free(kb);
}

/* What shapes the guest changes the key: RAM, CPUs, CPU model, kernel arguments, the file channel. */
static void test_guest_shape_kept(void)
{
    struct boot_request base = request("/run/a", "tcp:127.0.0.1:1234");
    char *k0 = key_of(&base);
    struct boot_request v[5] = { base, base, base, base, base };
    v[0].mem_bytes = 2ull << 30;
    v[1].smp = 1;
    v[2].cpu = "qemu64";
    v[3].append = "loglevel=8";
    v[4].file_channel = true;
    for (int i = 0; i < 5; i++) {
        char *k = key_of(&v[i]);
        if (!strcmp(k, k0))
            fprintf(stderr, "  variant %d has the base key\n", i);
        CHECK(strcmp(k, k0) != 0);
        free(k);
    }
    free(k0);
}

/* A newline inside an argument cannot forge a key line. */
static void test_newline_cannot_forge(void)
{
    char *argv[] = { "qemu", "-append", "a\narg -m", NULL };
    char *k = snapshot_key_text(argv, "/run/a");
    CHECK_STR(k, "arg qemu\narg -append\narg a arg -m\n");
    free(k);
}

static void test_manifest_diff(void)
{
    const char *m = "version klab-snapshot 1\narg qemu\nfile kernel /k 1 2 3:4\nfile qemu /q 5\nimage 10 ab\n";
    CHECK(snapshot_manifest_diff(m, m) == NULL);
    CHECK_STR(snapshot_manifest_diff(m, "version klab-snapshot 1\narg qemu\nfile kernel /k 1 9 3:4\nfile qemu /q 5\nimage 10 ab\n"),
              "the kernel");
    CHECK_STR(snapshot_manifest_diff(m, "version klab-snapshot 1\narg qemu\nfile kernel /k 1 2 3:4\nfile qemu /q 6\nimage 10 ab\n"),
              "QEMU");
    CHECK_STR(snapshot_manifest_diff(m, "version klab-snapshot 1\narg qemu\nfile kernel /k 1 2 3:4\nfile qemu /q 5\nimage 10 ac\n"),
              "the initramfs");
    CHECK_STR(snapshot_manifest_diff(m, "version klab-snapshot 2\narg qemu\n"), "klab's snapshot format");
    /* A truncated manifest (a crash while writing) is a difference too. */
    CHECK(snapshot_manifest_diff(m, "version klab-snapshot 1\narg qemu\n") != NULL);
}

/* FNV-1a 64 test vectors (Fowler/Noll/Vo reference: "" and "a"). */
static void test_hash_vectors(void)
{
    CHECK_EQ_U64(snapshot_hash(SNAPSHOT_HASH_INIT, "", 0), 0xcbf29ce484222325ull);
    CHECK_EQ_U64(snapshot_hash(SNAPSHOT_HASH_INIT, "a", 1), 0xaf63dc4c8601ec8cull);
    uint64_t h = snapshot_hash(SNAPSHOT_HASH_INIT, "fo", 2);
    CHECK_EQ_U64(snapshot_hash(h, "obar", 4), snapshot_hash(SNAPSHOT_HASH_INIT, "foobar", 6));
}

int main(void)
{
    RUN(test_host_side_left_out);
    RUN(test_guest_shape_kept);
    RUN(test_newline_cannot_forge);
    RUN(test_manifest_diff);
    RUN(test_hash_vectors);
    return CHECK_DONE();
}
