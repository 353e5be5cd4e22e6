/* The QEMU command line for each profile: stub on loopback only, -S, RAM file, console, no NIC. */
#include "check.h"
#include "machine/qemu_argv.h"

#include <stdbool.h>
#include <stdlib.h>

static const char *value_of(const struct argv *a, const char *opt)
{
    for (int i = 0; i + 1 < a->n; i++)
        if (!strcmp(a->v[i], opt))
            return a->v[i + 1];
    return NULL;
}

static bool has(const struct argv *a, const char *arg)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->v[i], arg))
            return true;
    return false;
}

/* OPT VAL appears as a pair (options that repeat, like -device). */
static bool has_pair(const struct argv *a, const char *opt, const char *val)
{
    for (int i = 0; i + 1 < a->n; i++)
        if (!strcmp(a->v[i], opt) && !strcmp(a->v[i + 1], val))
            return true;
    return false;
}

static int count_of(const struct argv *a, const char *opt)
{
    int n = 0;
    for (int i = 0; i < a->n; i++)
        n += !strcmp(a->v[i], opt);
    return n;
}

static struct boot_request request(const char *arch)
{
    return (struct boot_request){ .profile = profile_find(arch), .name = "t", .kernel = "/k", .initrd = "/r",
                                  .accel = "tcg", .smp = 2, .mem_bytes = 1ull << 30, .wait_for_gdb = true,
                                  .gdb_listen = "tcp:127.0.0.1:1234", .run_dir = "/run/klab/t",
                                  .console = CONSOLE_SOCKET };
}

static void test_x86_defaults(void)
{
    struct boot_request r = request("x86_64");
    struct argv a;
    char err[128];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(a.v[0], "qemu-system-x86_64");
    CHECK_STR(value_of(&a, "-gdb"), "tcp:127.0.0.1:1234");
    CHECK(!has(&a, "-s"));                 /* -s would listen on every interface */
    CHECK(has(&a, "-S"));
    CHECK(has(&a, "-nodefaults"));         /* no NIC, no VGA */
    CHECK_STR(value_of(&a, "-cpu"), "max");
    CHECK_STR(value_of(&a, "-machine"), "pc,memory-backend=klab-ram");
    CHECK_STR(value_of(&a, "-object"), "memory-backend-file,id=klab-ram,size=1024M,mem-path=/run/klab/t/ram,share=on");
    CHECK_STR(value_of(&a, "-append"), "console=ttyS0 nokaslr panic=-1 rdinit=/init");
    CHECK_STR(value_of(&a, "-smp"), "2");
    CHECK_STR(value_of(&a, "-m"), "1024M");
    CHECK_STR(value_of(&a, "-serial"), "chardev:klab-con");
    CHECK(strstr(value_of(&a, "-chardev"), "logfile=/run/klab/t/console.log") != NULL);
    CHECK(a.v[a.n] == NULL);
    argv_free(&a);
}

/* The documented defaults of the arm64 profile (README: -M virt,gic-version=3 -cpu cortex-a57), and --smp
 * and --mem as QEMU gets them. */
static void test_arm64_defaults(void)
{
    struct boot_request r = request("arm64");
    r.smp = 4;
    r.mem_bytes = 512ull << 20;
    struct argv a;
    char err[128];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(value_of(&a, "-cpu"), "cortex-a57");
    CHECK_STR(value_of(&a, "-smp"), "4");
    CHECK_STR(value_of(&a, "-m"), "512M");
    CHECK_STR(value_of(&a, "-object"), "memory-backend-file,id=klab-ram,size=512M,mem-path=/run/klab/t/ram,share=on");
    CHECK_STR(value_of(&a, "-append"), "console=ttyAMA0 nokaslr panic=-1 rdinit=/init");
    argv_free(&a);
}

static void test_arm64_profile(void)
{
    struct boot_request r = request("aarch64");
    r.kaslr = true;
    r.wait_for_gdb = false;
    r.append = "loglevel=8";
    r.cpu = "max";
    struct argv a;
    char err[128];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(a.v[0], "qemu-system-aarch64");
    CHECK_STR(value_of(&a, "-machine"), "virt,gic-version=3,memory-backend=klab-ram");
    CHECK_STR(value_of(&a, "-cpu"), "max");
    CHECK_STR(value_of(&a, "-append"), "console=ttyAMA0 kaslr panic=-1 rdinit=/init loglevel=8");
    CHECK(!has(&a, "-S"));
    argv_free(&a);
}

static void test_interactive_console(void)
{
    struct boot_request r = request("arm64");
    r.console = CONSOLE_STDIO;
    struct argv a;
    char err[128];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    const char *chardev = value_of(&a, "-chardev");
    CHECK(chardev && !strncmp(chardev, "stdio,", 6) && strstr(chardev, "signal=off"));
    argv_free(&a);
}

static void test_rejects_bad_requests(void)
{
    struct boot_request r = request("x86_64");
    struct argv a;
    char err[128];
    r.smp = 0;
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) != 0);
    r = request("x86_64");
    r.mem_bytes = 1 << 20;
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) != 0);
    r = request("x86_64");
    r.profile = NULL;
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) != 0);
}

static void test_shell_quoting(void)
{
    char *v[] = { "qemu", "-append", "console=ttyS0 it's", NULL };
    struct argv a = { .v = v, .n = 3 };
    char *s = argv_join(&a);
    CHECK_STR(s, "qemu -append 'console=ttyS0 it'\\''s'");
    free(s);
}

/* QEMU's pc machine splits RAM at 3 GiB once it reaches 0xe0000000 (hw/i386/pc_piix.c); virt starts at 1 GiB. */
static void test_ram_layouts(void)
{
    struct ram_region r[MAX_RAM_REGIONS];
    const struct machine_profile *x86 = profile_find("x86_64"), *arm = profile_find("arm64");
    CHECK_EQ_U64(x86->ram_layout(1ull << 30, r), 1);
    CHECK_EQ_U64(r[0].gpa, 0);
    CHECK_EQ_U64(r[0].size, 1ull << 30);
    CHECK_EQ_U64(x86->ram_layout(0xdfffffffull, r), 1);
    CHECK_EQ_U64(x86->ram_layout(4ull << 30, r), 2);
    CHECK_EQ_U64(r[0].size, 3ull << 30);
    CHECK_EQ_U64(r[1].gpa, 4ull << 30);
    CHECK_EQ_U64(r[1].size, 1ull << 30);
    CHECK_EQ_U64(r[1].file_offset, 3ull << 30);
    CHECK_EQ_U64(arm->ram_layout(2ull << 30, r), 1);
    CHECK_EQ_U64(r[0].gpa, 0x40000000);
    CHECK(profile_find("sparc") == NULL);
    CHECK(profile_find("amd64") == x86);
}

/* Whether a stop is in user code, from QEMU 7.2's own `info registers` lines (as printed by a klab VM's monitor:
 * an idle x86 CPU in the kernel, an arm64 one in cpu_do_idle, and the same CPUs in busybox). */
static void test_hmp_user_mode(void)
{
    const struct machine_profile *x86 = profile_find("x86_64"), *arm = profile_find("arm64");
    CHECK(!x86->hmp_user_mode("CPU#0\nRIP=ffffffff81a17a0b RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\n"
                              "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\n"));
    CHECK(x86->hmp_user_mode("CPU#0\nRIP=000000000044c29c RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0\n"
                             "CS =0033 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]\n"));
    CHECK(!arm->hmp_user_mode("CPU#0\n X29=ffff800009813d50 X30=ffff800008baf514  SP=ffff800009813d50\n"
                              "PSTATE=400000c5 -Z-- EL1h     FPCR=00000000 FPSR=00000000\n"));
    CHECK(arm->hmp_user_mode("CPU#0\n X29=0000ffffd2f0a8a0 X30=000000000044c1f0  SP=0000ffffd2f0a8a0\n"
                             "PSTATE=80000000 N--- EL0t     FPCR=00000000 FPSR=00000000\n"));
    CHECK(!arm->hmp_user_mode("PSTATE=80000000 N---\nQ00=EL0"));   /* no level on the PSTATE line: not claimed */
    CHECK(!x86->hmp_user_mode(NULL) && !arm->hmp_user_mode(NULL) && !arm->hmp_user_mode(""));
}

/* --swap: one raw virtio-blk disk with klab's serial (the guest's hook finds it by that), nothing without it. */
static void test_swap_disk(void)
{
    struct boot_request r = request("arm64");
    struct argv a;
    char err[128];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK(!has(&a, "-drive") && count_of(&a, "-device") == 1);   /* only vmcoreinfo */
    argv_free(&a);
    r.swap_image = "/run/klab/t/swap.img";
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(value_of(&a, "-drive"), "file=/run/klab/t/swap.img,if=none,id=klab-swap,format=raw,cache=unsafe");
    CHECK(has_pair(&a, "-device", "virtio-blk-pci,drive=klab-swap,serial=klab-swap"));
    argv_free(&a);
}

/* Every VM carries QEMU's vmcoreinfo device, so that a dump has the kernel's VMCOREINFO note. */
static void test_vmcoreinfo_device(void)
{
    const char *arches[] = {"x86_64", "arm64"};
    for (int i = 0; i < 2; i++) {
        struct boot_request r = request(arches[i]);
        struct argv a;
        char err[128];
        CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
        CHECK(has_pair(&a, "-device", "vmcoreinfo"));
        argv_free(&a);
    }
}

/* Record/replay: icount with the log and the start snapshot in the recording, the snapshot drive. */
static void test_record_replay(void)
{
    struct boot_request r = request("x86_64");
    struct argv a;
    char err[160];
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK(!value_of(&a, "-icount"));
    argv_free(&a);
    r.smp = 1;
    r.rr_mode = "record";
    r.rr_dir = "/rec";
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(value_of(&a, "-icount"), "shift=auto,rr=record,rrfile=/rec/replay.bin,rrsnapshot=init");
    CHECK(has_pair(&a, "-drive", "file=/rec/snapshots.qcow2,if=none,id=klab-rr,format=qcow2"));
    /* A recording's console: a file (every byte taken), no monitor; with --console-input the pipe chardev
     * on klab's FIFOs (run/console_relay.h). */
    CHECK(has_pair(&a, "-chardev", "file,id=klab-con,path=/run/klab/t/console.log"));
    CHECK(!has(&a, "-monitor"));
    argv_free(&a);
    r.rr_console_input = true;
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK(has_pair(&a, "-chardev", "pipe,id=klab-con,path=/run/klab/t/console"));
    argv_free(&a);
    r.rr_console_input = false;
    r.rr_mode = "replay";
    CHECK(qemu_build_argv(&r, &a, err, sizeof err) == 0);
    CHECK_STR(value_of(&a, "-icount"), "shift=auto,rr=replay,rrfile=/rec/replay.bin,rrsnapshot=init");
    CHECK(has(&a, "-S"));
    /* A replay's console writes what the recording says the guest wrote, into a file. */
    CHECK(has_pair(&a, "-chardev", "file,id=klab-con,path=/run/klab/t/console.log"));
    argv_free(&a);
}

int main(void)
{
    RUN(test_x86_defaults);
    RUN(test_arm64_defaults);
    RUN(test_arm64_profile);
    RUN(test_interactive_console);
    RUN(test_rejects_bad_requests);
    RUN(test_shell_quoting);
    RUN(test_vmcoreinfo_device);
    RUN(test_ram_layouts);
    RUN(test_hmp_user_mode);
    RUN(test_swap_disk);
    RUN(test_record_replay);
    return CHECK_DONE();
}
