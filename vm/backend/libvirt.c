/* klab boot --backend libvirt: the same machine as the plain QEMU backend, as a transient libvirt domain,
 * through libvirt's C API (virDomainCreateXML; the gdb stub through libvirt-qemu's monitor passthrough).
 *
 * Why the stub is added with the monitor command `gdbserver` instead of -gdb/-S on a qemu:commandline:
 * libvirt starts QEMU with -S itself and sends `cont` unless told VIR_DOMAIN_START_PAUSED, which overrides
 * a passed-through -S (measured); START_PAUSED keeps the guest at its first instruction and `gdbserver
 * tcp:127.0.0.1:PORT` opens the stub on loopback only. The domain is created with
 * VIR_DOMAIN_START_AUTODESTROY: it lives as long as the connection of the supervisor that created it, so a
 * supervisor killed even with SIGKILL leaves no QEMU behind. */
#define _GNU_SOURCE
#include "backend/libvirt.h"
#include "backend/backend.h"
#include "backend/libvirt_api.h"
#include "run/boot_plan.h"
#include "run/runstate.h"

#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Set by connect_to(), which every way into libvirt goes through first. */
static const struct libvirt_api *lv;

struct libvirt_vm {
    virConnectPtr conn;
    virDomainPtr dom;
};

/* libvirt prints its errors to stderr by default; klab says them in one line itself. */
static void quiet(void *ctx, virErrorPtr e)
{
    (void)ctx;
    (void)e;
}

static const char *last_error(void)
{
    virErrorPtr e = lv->GetLastError();
    return e && e->message ? e->message : "unknown libvirt error";
}

/* Text for an XML attribute or element: &, <, >, ' and " escaped. */
static char *xml_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += strchr("&<>'\"", *p) ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '\'' ? "&apos;"
                        : *p == '"' ? "&quot;" : NULL;
        if (rep)
            o = stpcpy(o, rep);
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

char *libvirt_domain_xml(const struct boot_request *r, const char *qemu_path)
{
    const char *cpu = r->cpu ? r->cpu : r->profile->default_cpu;
    char *cmdline = qemu_kernel_cmdline(r);
    char *e_cmdline = xml_escape(cmdline), *e_kernel = xml_escape(r->kernel), *e_initrd = xml_escape(r->initrd);
    char *e_cpu = xml_escape(cpu), *e_qemu = xml_escape(qemu_path), *e_dir = xml_escape(r->run_dir);
    /* `max` is libvirt's maximum mode (every feature the accelerator can give), anything else a named model. */
    char *cpu_xml = !strcmp(cpu, "max") ? strdup("<cpu mode='maximum' migratable='off'/>")
                                        : xasprintf("<cpu mode='custom' match='exact'><model fallback='forbid'>%s"
                                                    "</model></cpu>", e_cpu);
    char *xml = xasprintf(
        "<domain type='%s'>\n"
        "  <name>klab-%s</name>\n"
        "  <memory unit='KiB'>%llu</memory>\n"
        "  <vcpu>%u</vcpu>\n"
        "  <os>\n"
        "    <type arch='%s' machine='%s'>hvm</type>\n"
        "    <kernel>%s</kernel>\n"
        "    <initrd>%s</initrd>\n"
        "    <cmdline>%s</cmdline>\n"
        "  </os>\n"
        "  %s\n"
        "  <features>%s<vmcoreinfo state='on'/></features>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>destroy</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <emulator>%s</emulator>\n"
        "    <serial type='unix'>\n"
        "      <source mode='bind' path='%s/console.sock'/>\n"
        "      <log file='%s/console.log' append='off'/>\n"
        "      <target port='0'/>\n"
        "    </serial>\n"
        "    <controller type='usb' model='none'/>\n"
        "    <memballoon model='none'/>\n"
        "  </devices>\n"
        "</domain>\n",
        !strcmp(r->accel, "kvm") ? "kvm" : "qemu", r->name, (unsigned long long)(r->mem_bytes >> 10), r->smp,
        r->profile->libvirt_arch, r->profile->libvirt_machine, e_kernel, e_initrd, e_cmdline, cpu_xml,
        r->profile->libvirt_features, e_qemu, e_dir, e_dir);
    free(cmdline);
    free(e_cmdline);
    free(e_kernel);
    free(e_initrd);
    free(e_cpu);
    free(e_qemu);
    free(e_dir);
    free(cpu_xml);
    return xml;
}

/* A connection to uri (NULL: libvirt's default), libvirt loaded first; NULL with err set. */
static virConnectPtr connect_to(const char *uri, char *err, size_t errlen)
{
    if (!(lv = libvirt_api(err, errlen)))
        return NULL;
    lv->SetErrorFunc(NULL, quiet);
    virConnectPtr conn = lv->ConnectOpen(uri);
    if (!conn)
        snprintf(err, errlen, "cannot connect to libvirt at %s: %s", uri ? uri : "(default URI)", last_error());
    return conn;
}

struct libvirt_vm *libvirt_start(const char *uri, const char *xml, const char *gdb_listen, bool paused, char *err,
                                 size_t errlen)
{
    virConnectPtr conn = connect_to(uri, err, errlen);
    if (!conn)
        return NULL;
    struct libvirt_vm *vm = calloc(1, sizeof *vm);
    vm->conn = conn;
    unsigned flags = VIR_DOMAIN_START_AUTODESTROY | (paused ? VIR_DOMAIN_START_PAUSED : 0);
    vm->dom = lv->DomainCreateXML(vm->conn, xml, flags);
    if (!vm->dom) {
        snprintf(err, errlen, "libvirt did not start the domain: %s", last_error());
        libvirt_close(vm);
        return NULL;
    }
    /* gdbserver takes a chardev (HMP, hmp-commands.hx): tcp:127.0.0.1:PORT, or a Unix socket QEMU (running as
     * the connection's user in session mode) creates with its umask; klab boot's caller narrows it to 0600. */
    char *cmd = !strncmp(gdb_listen, "unix:", 5) ? xasprintf("gdbserver %s,server=on,wait=off", gdb_listen)
                                                 : xasprintf("gdbserver %s", gdb_listen);
    char *out = NULL;
    int rc = lv->DomainQemuMonitorCommand(vm->dom, cmd, &out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP);
    if (rc != 0 || !out || !strstr(out, "Waiting for gdb connection")) {
        snprintf(err, errlen, "the domain's gdb stub did not open (%s): %s", cmd,
                 rc != 0 ? last_error() : out ? out : "no answer");
        lv->DomainDestroy(vm->dom);
        libvirt_close(vm);
        vm = NULL;
    }
    free(cmd);
    free(out);
    return vm;
}

int libvirt_wait(struct libvirt_vm *vm, volatile sig_atomic_t *stop)
{
    for (;;) {
        int active = lv->DomainIsActive(vm->dom);
        if (active <= 0)
            return active < 0 ? -1 : 0;
        if (*stop) {
            lv->DomainDestroy(vm->dom);
            return 0;
        }
        sleep_ms_unless(100, stop);   /* klab stop waits on no full period */
    }
}

void libvirt_close(struct libvirt_vm *vm)
{
    if (!vm)
        return;
    if (vm->dom)
        lv->DomainFree(vm->dom);
    if (vm->conn)
        lv->ConnectClose(vm->conn);
    free(vm);
}

/* klab VM vm_name's domain on a connection of its own (*conn NULL, err set, when libvirt is missing or does not
 * answer); the domain is NULL when it is gone. close_domain() ends both. */
static virDomainPtr open_domain(const char *uri, const char *vm_name, virConnectPtr *conn, char *err, size_t errlen)
{
    if (!(*conn = connect_to(uri, err, errlen)))
        return NULL;
    char *domain = xasprintf("klab-%s", vm_name);
    virDomainPtr dom = lv->DomainLookupByName(*conn, domain);
    free(domain);
    return dom;
}

static void close_domain(virConnectPtr conn, virDomainPtr dom)
{
    if (dom)
        lv->DomainFree(dom);
    if (conn)
        lv->ConnectClose(conn);
}

char *libvirt_monitor(const char *uri, const char *vm_name, const char *cmd)
{
    virConnectPtr conn;
    char err[256];
    virDomainPtr dom = open_domain(uri, vm_name, &conn, err, sizeof err);
    char *out = NULL;
    if (dom && lv->DomainQemuMonitorCommand(dom, cmd, &out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) != 0)
        out = NULL;
    close_domain(conn, dom);
    return out;
}

/* QEMU's own run state (HMP info status), which libvirt does not track when gdb resumes a domain. */
static bool qemu_running(virDomainPtr dom)
{
    char *out = NULL;
    bool running = lv->DomainQemuMonitorCommand(dom, "info status", &out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) == 0 &&
                   out && strstr(out, "running");
    free(out);
    return running;
}

int libvirt_dump(const char *uri, const char *vm_name, const char *path, const char *format, char *err,
                 size_t errlen)
{
    static const struct { const char *name; int format; } formats[] = {
        {"elf", VIR_DOMAIN_CORE_DUMP_FORMAT_RAW},
        {"kdump-zlib", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB},
        {"kdump-lzo", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_LZO},
        {"kdump-snappy", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_SNAPPY},
    };
    int fmt = -1;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcmp(formats[i].name, format))
            fmt = formats[i].format;
    if (fmt < 0) {
        snprintf(err, errlen, "libvirt dumps elf or kdump-*, not %s", format);
        return -1;
    }
    virConnectPtr conn;
    virDomainPtr dom = open_domain(uri, vm_name, &conn, err, errlen);
    if (!conn)
        return -1;
    /* libvirt resumes after a dump only a domain it believes running, and a domain started paused that gdb
     * then ran is still "paused" to libvirt: QEMU's own status says whether to resume it */
    bool was_running = dom && qemu_running(dom);
    int rc = dom ? lv->DomainCoreDumpWithFormat(dom, path, (unsigned)fmt, VIR_DUMP_MEMORY_ONLY) : -1;
    if (rc != 0)
        snprintf(err, errlen, "%s", dom ? last_error() : "the domain is gone");
    if (was_running && !qemu_running(dom) && lv->DomainResume(dom) != 0 && rc == 0) {
        snprintf(err, errlen, "the dump is written, but the domain stays paused: %s", last_error());
        rc = -1;
    }
    close_domain(conn, dom);
    return rc == 0 ? 0 : -1;
}

/* ---- the backend table ------------------------------------------------------------------------------- */

struct vm_instance {
    struct libvirt_vm *vm;
};

static int describe(const struct boot_plan *p, FILE *f)
{
    char *xml = libvirt_domain_xml(&p->req, p->req.qemu);
    fputs(xml, f);
    free(xml);
    return 0;
}

/* The domain (paused when gdb should find it at the first instruction) and its stub, then the run state.
 * No QEMU child here: the supervisor stands for the VM (it holds the connection the domain dies with). */
static struct vm_instance *start(struct boot_plan *p, int *status)
{
    *status = 0;
    char *xml = libvirt_domain_xml(&p->req, p->req.qemu);
    char *xml_file = path_join(p->rs.dir, "domain.xml");
    write_text_file(xml_file, xml);
    char err[512];
    struct libvirt_vm *vm = libvirt_start(p->connect, xml, p->req.gdb_listen, p->req.wait_for_gdb, err, sizeof err);
    free(xml);
    free(xml_file);
    if (!vm) {
        klab_error("%s", err);
        return NULL;
    }
    if (!strncmp(p->req.gdb_listen, "unix:", 5))
        chmod(p->req.gdb_listen + 5, 0600);   /* only its owner attaches, as with the QEMU backend */
    p->rs.qemu_pid = p->rs.supervisor_pid = getpid();
    if (runstate_write(&p->rs) != 0) {
        klab_error("cannot write the run state in %s", p->rs.dir);
        libvirt_close(vm);
        return NULL;
    }
    struct vm_instance *inst = calloc(1, sizeof *inst);
    inst->vm = vm;
    return inst;
}

static int wait_vm(struct vm_instance *inst, volatile sig_atomic_t *stop, bool echo)
{
    (void)echo;   /* libvirt logs the console itself; the supervisor never echoes it */
    libvirt_wait(inst->vm, stop);
    return 0;
}

static void close_vm(struct vm_instance *inst)
{
    if (inst)
        libvirt_close(inst->vm);
    free(inst);
}

static char *monitor(const struct runstate *rs, const char *cmd, int timeout_ms)
{
    (void)timeout_ms;
    return libvirt_monitor(rs->connect && *rs->connect ? rs->connect : NULL, rs->name, cmd);
}

static int dump(const struct runstate *rs, const char *path, const char *format, char *err, size_t errlen)
{
    return libvirt_dump(rs->connect && *rs->connect ? rs->connect : NULL, rs->name, path, format, err, errlen);
}

const struct backend_ops libvirt_backend = {
    .name = "libvirt",
    .console_on_terminal = false,   /* libvirt owns QEMU's stdio: the console is console.sock / console.log */
    .ram_file = false,              /* klab reads through the stub */
    .describe = describe,
    .start = start,
    .wait = wait_vm,
    .close = close_vm,
    .monitor = monitor,
    .dump = dump,
};
