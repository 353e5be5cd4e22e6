/* vm/machine/file_channel.h. */
#define _GNU_SOURCE
#include "machine/file_channel.h"
#include "machine/kconfig.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_channel_resolve(const char *kernel, char **modules, char *err, size_t errlen)
{
    char *copy = strdup(kernel), *dir = dirname(copy);
    char *order = xasprintf("%s/modules/load.order", dir);
    char *text = NULL;
    struct kconfig c;
    int rc = -1;
    *modules = NULL;
    if (kconfig_load_beside(kernel, &c) != 0) {
        snprintf(err, errlen, "no kernel config beside %s, so klab cannot tell whether it has a virtio console", kernel);
        free(copy);
        free(order);
        return -1;
    }
    if (kconfig_is_y(&c, "CONFIG_VIRTIO_CONSOLE") && kconfig_is_y(&c, "CONFIG_VIRTIO_PCI"))
        rc = 0;
    else if (!kconfig_is_y(&c, "CONFIG_VIRTIO_CONSOLE") && !kconfig_is_m(&c, "CONFIG_VIRTIO_CONSOLE"))
        snprintf(err, errlen, "this kernel has no virtio console (CONFIG_VIRTIO_CONSOLE)");
    else if (!(text = read_text_file(order)) || !strstr(text, "virtio_console.ko\n"))
        snprintf(err, errlen, "the kernel builds virtio_console as a module and %s does not list it (make kernels "
                 "unpacks it)", order);
    else {
        *modules = xasprintf("%s/modules", dir);
        rc = 0;
    }
    kconfig_free(&c);
    free(text);
    free(copy);
    free(order);
    return rc;
}

/* /init's hook (before the lab's, after vmcoreinfo's): the modules, the port, the agent in the background. */
static const char hook_text[] =
    "# klab boot --snapshot: the channel that brings files into a restored VM (vm/machine/file_channel.h)\n"
    "m=/lib/modules/klab-virtio\n"
    "if [ -f $m/load.order ]; then\n"
    "    for k in $(grep -v '^#' $m/load.order); do insmod $m/$k 2>/dev/null; done\n"
    "fi\n"
    "port=\n"
    "for i in $(seq 100); do\n"
    "    for p in /sys/class/virtio-ports/*; do\n"
    "        [ \"$(cat $p/name 2>/dev/null)\" = " FILE_CHANNEL_PORT " ] && port=/dev/${p##*/}\n"
    "    done\n"
    "    [ -n \"$port\" ] && [ -c \"$port\" ] && break\n"
    "    port=\n"
    "    usleep 20000\n"
    "done\n"
    "if [ -z \"$port\" ]; then echo 'klab: files: the channel did not appear'; exit 0; fi\n"
    "setsid sh /etc/klab-files.sh \"$port\" </dev/null >/dev/console 2>&1 &\n";

/* The agent, in / with as few processes as can be (under TCG a restored guest translates every program
 * afresh). dd's count_bytes reads exactly LEN bytes in 64K reads (busybox's head -c reads ahead on a pipe;
 * cpio reading the port itself, in its small header-sized reads, measured slower). After the
 * unpack it says so and waits for "run": klab pauses a VM that is to wait for gdb in between, so that the
 * --run commands (insmod, open the device) run once gdb has set its breakpoints and continued. */
static const char agent_text[] =
    "# klab's file channel agent: LEN, then LEN bytes of newc cpio unpacked in /, then /run/klab/run.sh\n"
    "exec 3<>\"$1\"\n"
    "cd /\n"
    "while read -r len <&3; do\n"
    "    case $len in ''|*[!0-9]*) echo 'error bad header' >&3; continue ;; esac\n"
    "    if ! dd bs=65536 count=$len iflag=count_bytes,fullblock <&3 2>/dev/null | cpio -idmu 2>/tmp/klab-files.err; then\n"
    "        echo \"error $(head -n 1 /tmp/klab-files.err)\" >&3\n"
    "        continue\n"
    "    fi\n"
    "    echo unpacked >&3\n"
    "    read -r go <&3\n"
    "    r=0\n"
    "    if [ \"$go\" = run ] && [ -f /run/klab/run.sh ]; then\n"
    "        echo 'klab: running the --run commands'\n"
    "        sh /run/klab/run.sh; r=$?\n"
    "    fi\n"
    "    rm -f /run/klab/run.sh\n"
    "    echo \"ok $r\" >&3\n"
    "done\n";

size_t file_channel_image_adds(const char *run_dir, const char *modules, struct initramfs_add *out)
{
    char *hook = path_join(run_dir, "files-hook.sh"), *agent = path_join(run_dir, "files-agent.sh");
    write_text_file(hook, hook_text);
    write_text_file(agent, agent_text);
    size_t n = 0;
    out[n++] = (struct initramfs_add){ hook, "/etc/klab.d/03-files.sh" };
    out[n++] = (struct initramfs_add){ agent, "/etc/klab-files.sh" };
    if (modules)
        out[n++] = (struct initramfs_add){ strdup(modules), "/lib/modules/klab-virtio" };
    return n;
}

int file_channel_create(const char *run_dir, char *err, size_t errlen)
{
    static const char *const ends[] = { "files.in", "files.out" };
    return make_fifos(run_dir, ends, 2, err, errlen);
}

/* The archive of adds and the --run script, uncompressed: busybox cpio reads it from the agent's dd. */
static char *build_archive(const char *run_dir, const struct initramfs_add *adds, size_t nadds,
                           const char *const *runs, size_t nruns, char *err, size_t errlen)
{
    struct initramfs_add *all = calloc(nadds + 1, sizeof *all);
    if (nadds)
        memcpy(all, adds, nadds * sizeof *all);
    char *script = NULL;
    if (nruns) {
        char *text = strdup("");
        for (size_t i = 0; i < nruns; i++) {
            char *t = xasprintf("%s%s\n", text, runs[i]);
            free(text);
            text = t;
        }
        script = path_join(run_dir, "files-run.sh");
        write_text_file(script, text);
        free(text);
        all[nadds] = (struct initramfs_add){ script, "/run/klab/run.sh" };
    }
    struct initramfs_spec spec = { .compress = INITRAMFS_NONE, .adds = all, .nadds = nadds + (nruns > 0),
                                   .no_base = true };
    char *out = path_join(run_dir, "files.cpio");
    if (initramfs_build(&spec, out, NULL, err, errlen) != 0) {
        free(out);
        out = NULL;
    }
    free(script);
    free(all);
    return out;
}

/* All of buf into the FIFO by the deadline (QEMU stops reading it while the guest does not). */
static int write_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        uint64_t now = now_ns();
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (wait_aborted() || now >= deadline || (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 &&
                                                  errno != EINTR))
            return -1;
    }
    return 0;
}

enum { ANSWER_TIMEOUT = -1, ANSWER_CLOSED = -2 };

/* The agent's one-line answer, by the deadline: 0, ANSWER_TIMEOUT (or asked to stop), or ANSWER_CLOSED when
 * QEMU closed its end of files.out (a FIFO read gives 0 once it has no writer: pipe(7)). The guest's bytes
 * are not text klab may print as they are: what is not printable ASCII becomes '?'. */
static int read_answer(int fd, char *line, size_t cap, uint64_t deadline)
{
    size_t len = 0;
    while (len + 1 < cap) {
        uint64_t now = now_ns();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (wait_aborted() || now >= deadline)
            return ANSWER_TIMEOUT;
        int r = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
        if (r < 0 && errno != EINTR)
            return ANSWER_TIMEOUT;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, line + len, 1);
        if (n == 0)
            return ANSWER_CLOSED;
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return ANSWER_CLOSED;
            continue;
        }
        if (line[len] == '\n')
            break;
        if (line[len] < 0x20 || line[len] > 0x7e)
            line[len] = '?';
        len++;
    }
    line[len] = '\0';
    return 0;
}

/* Why no answer came, for err. */
static void no_answer(int why, const char *what, int timeout_ms, char *err, size_t errlen)
{
    if (why == ANSWER_CLOSED)
        snprintf(err, errlen, "QEMU closed the file channel before the guest's agent could %s", what);
    else if (wait_aborted())
        snprintf(err, errlen, "asked to stop before the guest's agent could %s", what);
    else
        snprintf(err, errlen, "the guest's agent did not %s within %d s", what, timeout_ms / 1000);
}

static char *read_whole(const char *path, size_t *len)
{
    char *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        rewind(f);
        data = n > 0 ? malloc((size_t)n) : NULL;
        if (data && fread(data, 1, (size_t)n, f) == (size_t)n)
            *len = (size_t)n;
    }
    fclose(f);
    return data;
}

/* The exchange with the agent (see agent_text) over the opened FIFOs. */
static int exchange(int wfd, int rfd, const char *data, size_t len, const struct file_channel_hooks *h,
                    int timeout_ms, char *err, size_t errlen)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    char head[32], answer[256];
    snprintf(head, sizeof head, "%zu\n", len);
    if (write_all(wfd, head, strlen(head), deadline) || write_all(wfd, data, len, deadline)) {
        snprintf(err, errlen, "the guest did not take the files within %d s", timeout_ms / 1000);
        return -1;
    }
    int why = read_answer(rfd, answer, sizeof answer, deadline);
    if (why != 0) {
        no_answer(why, "answer", timeout_ms, err, errlen);
        return -1;
    }
    if (strcmp(answer, "unpacked")) {
        snprintf(err, errlen, "the guest could not unpack the files: %s", answer);
        return -1;
    }
    bool paused = h && h->before_run && h->before_run(h->ctx) == 1;
    if (write_all(wfd, "run\n", 4, deadline)) {
        snprintf(err, errlen, "the guest did not take the go-ahead");
        return -1;
    }
    if (paused)   /* the commands run once gdb continues the VM */
        return 0;
    if ((why = read_answer(rfd, answer, sizeof answer, deadline)) != 0) {
        no_answer(why, "finish the --run commands", timeout_ms, err, errlen);
        return -1;
    }
    if (strncmp(answer, "ok ", 3)) {
        snprintf(err, errlen, "the guest's agent ended the --run commands with '%s', not 'ok STATUS'", answer);
        return -1;
    }
    if (strcmp(answer, "ok 0"))
        klab_info("files: the --run commands ended with status %s", answer + 3);
    return 0;
}

static int send_archive(const char *run_dir, const char *archive, const struct file_channel_hooks *h,
                        int timeout_ms, char *err, size_t errlen)
{
    char *in = path_join(run_dir, "files.in"), *out = path_join(run_dir, "files.out");
    size_t len;
    char *data = read_whole(archive, &len);
    int wfd = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC), rfd = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int rc = -1;
    if (!data || !len)
        snprintf(err, errlen, "cannot read %s", archive);
    else if (wfd < 0 || rfd < 0)
        snprintf(err, errlen, "the channel's FIFOs in %s are gone: %s", run_dir, strerror(errno));
    else
        rc = exchange(wfd, rfd, data, len, h, timeout_ms, err, errlen);
    if (wfd >= 0)
        close(wfd);
    if (rfd >= 0)
        close(rfd);
    free(data);
    free(in);
    free(out);
    return rc;
}

int file_channel_deliver(const char *run_dir, const struct initramfs_add *adds, size_t nadds,
                         const char *const *runs, size_t nruns, const struct file_channel_hooks *h, int timeout_ms,
                         char *err, size_t errlen)
{
    char *archive = build_archive(run_dir, adds, nadds, runs, nruns, err, errlen);
    if (!archive)
        return -1;
    int rc = send_archive(run_dir, archive, h, timeout_ms, err, errlen);
    unlink(archive);
    free(archive);
    return rc;
}
