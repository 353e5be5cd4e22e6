/* boot_plan(): options and resolved facts → the backend's request and the run state, without I/O. */
#include "check.h"
#include "backend/backend.h"
#include "run/boot_plan.h"

static struct boot_facts facts(const char *arch)
{
    return (struct boot_facts){ .profile = profile_find(arch), .kernel = "/k/vmlinuz", .vmlinux = "/k/vmlinux",
                                .qemu_path = "/usr/bin/qemu", .gdb_listen = "tcp:127.0.0.1:1235", .gdb_port = 1235,
                                .cpu = profile_find(arch)->default_cpu, .accel = "tcg", .run_dir = "/run/v",
                                .tty = true };
}

static void test_defaults(void)
{
    struct boot_options o = { .smp = 2, .mem = 1ull << 30 };
    struct boot_facts f = facts("x86_64");
    struct boot_plan p;
    boot_plan(&o, &f, &p);
    CHECK_STR(p.req.name, "x86_64");            /* the VM is named after its architecture */
    CHECK_STR(p.rs.name, "x86_64");
    CHECK(p.req.wait_for_gdb);                  /* stopped at the first instruction */
    CHECK(p.req.cpu == NULL);                   /* the profile's CPU: no -cpu override */
    CHECK(p.interactive && p.req.console == CONSOLE_STDIO);
    CHECK(p.backend == &qemu_backend);
    CHECK_STR(p.rs.backend, "qemu");
    CHECK_EQ_U64(p.rs.nram, 1);                 /* 1G below the PCI hole: one region */
    CHECK_EQ_U64(p.rs.gdb_port, 1235);
    CHECK(!p.detach && !p.quiet);
}

static void test_detached_libvirt(void)
{
    struct boot_options o = { .smp = 1, .mem = 4ull << 30, .backend = "libvirt", .detach = true, .name = "lv",
                              .connect = "qemu:///session", .no_wait = true };
    struct boot_facts f = facts("x86_64");
    struct boot_plan p;
    boot_plan(&o, &f, &p);
    CHECK(p.backend == &libvirt_backend);
    CHECK(!p.interactive && p.req.console == CONSOLE_SOCKET);   /* libvirt owns QEMU's stdio */
    CHECK_EQ_U64(p.rs.nram, 0);                                 /* no RAM file: klab reads through the stub */
    CHECK_STR(p.rs.connect, "qemu:///session");
    CHECK(!p.req.wait_for_gdb && p.quiet);
    CHECK_STR(p.req.name, "lv");
}

static void test_cpu_for_granule(void)
{
    const struct machine_profile *arm = profile_find("arm64");
    struct boot_options o = { 0 };
    /* Cortex-A57 has no 16K granule: a 16K-page kernel gets QEMU's max CPU, 4K and 64K keep the default. */
    CHECK_STR(boot_cpu(&o, arm, 14), "max");
    CHECK_STR(boot_cpu(&o, arm, 12), "cortex-a57");
    CHECK_STR(boot_cpu(&o, arm, 16), "cortex-a57");
    o.cpu = "neoverse-n1";
    CHECK_STR(boot_cpu(&o, arm, 14), "neoverse-n1");   /* the user's choice stands */
    struct boot_facts f = facts("arm64");
    f.cpu = "max";
    struct boot_options none = { .smp = 1, .mem = 1ull << 30 };
    struct boot_plan p;
    boot_plan(&none, &f, &p);
    CHECK_STR(p.req.cpu, "max");                       /* a chosen CPU that is not the default is passed */
    CHECK_STR(p.rs.cpu, "max");
}

static void test_not_a_terminal(void)
{
    struct boot_options o = { .smp = 1, .mem = 1ull << 30 };
    struct boot_facts f = facts("arm64");
    f.tty = false;
    struct boot_plan p;
    boot_plan(&o, &f, &p);
    CHECK(!p.interactive && p.req.console == CONSOLE_SOCKET);
    CHECK_EQ_U64(p.rs.ram[0].gpa, 0x40000000);         /* virt's RAM at 1 GiB */
}

/* x86_64 boots the vmlinux by its PVH entry when it has one; --kaslr (the decompressor's work) and --no-pvh keep
 * the image, and the run state names the image either way. arm64's profile never does. */
static void test_pvh_entry(void)
{
    struct boot_facts f = facts("x86_64");
    f.vmlinux_pvh = true;
    struct boot_options o = { .smp = 1, .mem = 1ull << 30 };
    struct boot_plan p;
    boot_plan(&o, &f, &p);
    CHECK_STR(p.req.kernel, "/k/vmlinux");
    CHECK_STR(p.rs.kernel, "/k/vmlinuz");
    o.kaslr = true;
    boot_plan(&o, &f, &p);
    CHECK_STR(p.req.kernel, "/k/vmlinuz");
    o.kaslr = false, o.no_pvh = true;
    boot_plan(&o, &f, &p);
    CHECK_STR(p.req.kernel, "/k/vmlinuz");
    o.no_pvh = false;
    f.vmlinux_pvh = false;
    boot_plan(&o, &f, &p);
    CHECK_STR(p.req.kernel, "/k/vmlinuz");
    struct boot_facts a = facts("arm64");
    a.vmlinux_pvh = true;                              /* even if a caller said so */
    boot_plan(&o, &a, &p);
    CHECK_STR(p.req.kernel, "/k/vmlinuz");
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_detached_libvirt);
    RUN(test_cpu_for_granule);
    RUN(test_not_a_terminal);
    RUN(test_pvh_entry);
    return CHECK_DONE();
}
