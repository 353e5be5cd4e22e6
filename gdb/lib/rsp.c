/* GDB remote serial protocol client over TCP or a Unix socket: connection, acks, requests, registers by
 * name, memory, monitor commands, breakpoints, resume and stop. Byte-level parsing is in rsp_parse.c. */
#define _GNU_SOURCE
#include "error_internal.h"
#include "rsp_parse.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RX_CAP (RSP_MAX_PAYLOAD + 16)
#define MAX_XML_DEPTH 4
#define MAX_XML_BYTES (1u << 20)

struct reg_entry {
    char name[32];
    int regnum;
    unsigned bitsize;
};

struct klab_rsp {
    int fd;
    int timeout_ms;
    bool no_ack;
    bool regs_loaded;
    size_t packet_size;          /* the stub's PacketSize, bytes of one packet */
    char *rx;                    /* raw bytes received and not yet consumed */
    size_t rx_len;
    char *payload;               /* the last decoded packet */
    size_t payload_len;
    bool has_async_stop;         /* a stop reply arrived unasked (the stop made by connecting) */
    struct klab_rsp_stop async_stop;
    struct reg_entry *regs;
    size_t nregs, regs_cap;
    char error[256];
};

static int fail(struct klab_rsp *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct klab_rsp *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return status;
}

const char *klab_rsp_error(const struct klab_rsp *r) { return r ? r->error : "no connection"; }
void klab_rsp_set_timeout(struct klab_rsp *r, int timeout_ms) { r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(struct klab_rsp *r, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(r->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(r, KLAB_RSP_EIO, "send to gdb stub failed: %s", strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more bytes into rx, waiting until deadline. */
static int fill(struct klab_rsp *r, long long deadline)
{
    if (r->rx_len >= RX_CAP)
        return fail(r, KLAB_RSP_EPROTO, "gdb stub sent more than %u bytes without a complete packet", RX_CAP);
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return fail(r, KLAB_RSP_ETIMEDOUT, "no reply from the gdb stub within %d ms", r->timeout_ms);
        struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return fail(r, KLAB_RSP_EIO, "poll: %s", strerror(errno));
        if (pr == 0)
            continue;
        ssize_t n = recv(r->fd, r->rx + r->rx_len, RX_CAP - r->rx_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return fail(r, KLAB_RSP_EIO, "the gdb stub closed the connection");
        if (n < 0)
            return fail(r, KLAB_RSP_EIO, "recv from gdb stub: %s", strerror(errno));
        r->rx_len += (size_t)n;
        return 0;
    }
}

static void consume(struct klab_rsp *r, size_t n)
{
    memmove(r->rx, r->rx + n, r->rx_len - n);
    r->rx_len -= n;
}

/* Receives one packet into r->payload, acking it unless no-ack mode is on. Acks ('+'/'-') and stray bytes
 * before '$' are skipped; a packet with a bad checksum is nacked and read again (up to 3 times). */
static int receive_packet(struct klab_rsp *r, long long deadline)
{
    int bad = 0;
    for (;;) {
        size_t start = 0;
        while (start < r->rx_len && r->rx[start] != '$')
            start++;
        consume(r, start);
        if (r->rx_len == 0) {
            int rc = fill(r, deadline);
            if (rc)
                return rc;
            continue;
        }
        size_t used;
        const char *why;
        enum rsp_frame_result fr = rsp_decode_frame(r->rx, r->rx_len, r->payload, RSP_MAX_PAYLOAD + 1,
                                                    &r->payload_len, &used, &why);
        if (fr == RSP_FRAME_INCOMPLETE) {
            int rc = fill(r, deadline);
            if (rc)
                return rc;
            continue;
        }
        if (fr == RSP_FRAME_BAD_CHECKSUM && !r->no_ack && ++bad <= 3) {
            consume(r, used);
            int rc = send_all(r, "-", 1);
            if (rc)
                return rc;
            continue;
        }
        if (fr != RSP_FRAME_OK) {
            consume(r, used ? used : r->rx_len);
            return fail(r, KLAB_RSP_EPROTO, "malformed packet from gdb stub: %s", why);
        }
        consume(r, used);
        if (!r->no_ack) {
            int rc = send_all(r, "+", 1);
            if (rc)
                return rc;
        }
        return 0;
    }
}

/* Remembers a stop reply that arrived without being asked for. */
static void note_async(struct klab_rsp *r)
{
    const char *why;
    struct klab_rsp_stop st;
    if (rsp_parse_stop_reply(r->payload, &st, &why) == 0) {
        r->async_stop = st;
        r->has_async_stop = true;
    }
}

/* Sends a packet; in ack mode waits for '+' and resends on '-'. */
static int send_packet(struct klab_rsp *r, const char *payload, size_t len)
{
    size_t cap = 2 * len + 8;
    char *frame = malloc(cap);
    if (!frame)
        return fail(r, KLAB_RSP_EIO, "out of memory");
    size_t flen = rsp_encode_frame(payload, len, frame, cap);
    int rc = 0;
    long long deadline = now_ms() + r->timeout_ms;
    for (int tries = 0; tries < 4; tries++) {
        if ((rc = send_all(r, frame, flen)) != 0)
            break;
        if (r->no_ack)
            break;
        for (;;) {
            while (r->rx_len == 0)
                if ((rc = fill(r, deadline)) != 0)
                    goto out;
            char c = r->rx[0];
            if (c != '$')
                break;
            /* A packet before the ack: QEMU announces the stop it makes when a client connects to a running
             * guest ("T02thread:..." from gdb_vm_state_change) whenever its main loop gets to it. Take it
             * (acked by receive_packet) and keep waiting for the ack. */
            if ((rc = receive_packet(r, deadline)) != 0)
                goto out;
            note_async(r);
        }
        char c = r->rx[0];
        consume(r, 1);
        if (c == '+')
            goto out;
        if (c != '-') {
            rc = fail(r, KLAB_RSP_EPROTO, "expected an ack from the gdb stub, got 0x%02x", (unsigned char)c);
            goto out;
        }
        rc = fail(r, KLAB_RSP_EPROTO, "the gdb stub rejected the packet 4 times");
    }
out:
    free(frame);
    return rc;
}

/* "O" + hex is console output, sent before the real reply (E.3, qRcmd) or while running; "OK" is a reply. */
static bool console_output(const struct klab_rsp *r)
{
    return r->payload[0] == 'O' && r->payload_len > 1 && strcmp(r->payload, "OK") != 0;
}

/* Sends a packet and receives its reply into r->payload. Console output packets before the reply are
 * hex-decoded into out (when given; NUL-terminated, truncated to outlen - 1). */
static int exchange(struct klab_rsp *r, const char *packet, size_t len, char *out, size_t outlen)
{
    int rc = send_packet(r, packet, len);
    if (rc)
        return rc;
    size_t used = 0;
    if (outlen)
        out[0] = '\0';
    long long deadline = now_ms() + r->timeout_ms;
    for (;;) {
        if ((rc = receive_packet(r, deadline)) != 0)
            return rc;
        if (!console_output(r))
            return 0;
        for (size_t i = 1; i + 1 < r->payload_len; i += 2) {
            unsigned char c;
            if (rsp_hex_decode(r->payload + i, 2, &c, 1) != 0)
                return fail(r, KLAB_RSP_EPROTO, "console output from the gdb stub is not hex");
            if (used + 1 < outlen)
                out[used++] = (char)c;
        }
        if (outlen)
            out[used] = '\0';
    }
}

int klab_rsp_request(struct klab_rsp *r, const char *packet, char *reply, size_t replylen)
{
    int rc = exchange(r, packet, strlen(packet), NULL, 0);
    if (rc)
        return rc;
    if (!reply)
        return (int)r->payload_len;
    if (replylen == 0 || r->payload_len >= replylen) {
        if (replylen)
            snprintf(reply, replylen, "%s", r->payload);
        return fail(r, KLAB_RSP_EINVAL, "reply of %zu bytes does not fit a %zu-byte buffer", r->payload_len, replylen);
    }
    memcpy(reply, r->payload, r->payload_len + 1);
    return (int)r->payload_len;
}

/* Maps the usual error replies to a status; 0 when the reply is none of them. */
static int reply_status(struct klab_rsp *r, const char *what)
{
    const char *p = r->payload;
    if (r->payload_len == 0)
        return fail(r, KLAB_RSP_EUNSUPPORTED, "%s: the gdb stub does not support this request", what);
    if (p[0] == 'E' && r->payload_len == 3 && rsp_hex_digit((unsigned char)p[1]) >= 0 &&
        rsp_hex_digit((unsigned char)p[2]) >= 0)
        return fail(r, KLAB_RSP_ETARGET, "%s: the gdb stub answered %s", what, p);
    return 0;
}

static int request_ok(struct klab_rsp *r, const char *packet, const char *what)
{
    int rc = klab_rsp_request(r, packet, NULL, 0);
    if (rc < 0)
        return rc;
    if ((rc = reply_status(r, what)) != 0)
        return rc;
    if (strcmp(r->payload, "OK") != 0)
        return fail(r, KLAB_RSP_EPROTO, "%s: expected OK, got \"%.40s\"", what, r->payload);
    return 0;
}

static int open_socket(const char *where, char *err, size_t errlen)
{
    const char *path = !strncmp(where, "unix:", 5) ? where + 5 : strchr(where, '/') ? where : NULL;
    if (path) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sun.sun_path) {
            snprintf(err, errlen, "socket path too long: %s", path);
            return -1;
        }
        strcpy(sun.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
            return fd;
        snprintf(err, errlen, "cannot connect to gdb stub at %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char host[256];
    const char *colon = strrchr(where, ':');
    if (!colon || colon == where || (size_t)(colon - where) >= sizeof host || !colon[1]) {
        snprintf(err, errlen, "gdb stub address must be HOST:PORT or unix:PATH, not \"%s\"", where);
        return -1;
    }
    memcpy(host, where, (size_t)(colon - where));
    host[colon - where] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "cannot resolve gdb stub address %s: %s", where, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            /* Requests, acks and replies are tiny and strictly alternating: with Nagle's algorithm each
             * one waits for the peer's delayed ACK (~40 ms here). */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            break;
        }
        saved = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to gdb stub at %s: %s", where, strerror(saved));
    return fd;
}

struct klab_rsp *rsp_open_fd(int fd, int timeout_ms)
{
    struct klab_rsp *r = calloc(1, sizeof *r);
    if (r) {
        r->rx = malloc(RX_CAP);
        r->payload = malloc(RSP_MAX_PAYLOAD + 1);
    }
    if (!r || !r->rx || !r->payload) {
        close(fd);
        if (r) {
            free(r->rx);
            free(r->payload);
            free(r);
        }
        return NULL;
    }
    r->fd = fd;
    r->packet_size = 4096;
    klab_rsp_set_timeout(r, timeout_ms);
    return r;
}

struct klab_rsp *klab_rsp_connect(const char *where, int timeout_ms, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    int fd = open_socket(where, err, errlen);
    if (fd < 0)
        return NULL;
    struct klab_rsp *r = rsp_open_fd(fd, timeout_ms);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* qSupported: learn PacketSize and whether no-ack mode is offered. A stub already serving another client
     * (QEMU takes one at a time) accepts the TCP connection but never answers: that is the time-out below. */
    int rc = klab_rsp_request(r, "qSupported:multiprocess-;swbreak+;hwbreak+;xmlRegisters=i386,aarch64", NULL, 0);
    /* Without acks, the unasked stop reply lands where the reply is expected: skip it. */
    for (int skipped = 0; rc >= 0 && skipped < 2 && (r->payload[0] == 'T' || r->payload[0] == 'S'); skipped++) {
        note_async(r);
        rc = receive_packet(r, now_ms() + r->timeout_ms);
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s%s", r->error,
                 rc == KLAB_RSP_ETIMEDOUT ? " (is another debugger attached to this stub?)" : "");
        klab_rsp_close(r);
        return NULL;
    }
    bool offers_no_ack = false;
    for (char *tok = strtok(r->payload, ";"); tok; tok = strtok(NULL, ";")) {
        if (!strncmp(tok, "PacketSize=", 11)) {
            unsigned long ps = strtoul(tok + 11, NULL, 16);
            if (ps >= 64 && ps <= RSP_MAX_PAYLOAD)
                r->packet_size = ps;
        } else if (!strcmp(tok, "QStartNoAckMode+")) {
            offers_no_ack = true;
        }
    }
    if (offers_no_ack && request_ok(r, "QStartNoAckMode", "QStartNoAckMode") == 0)
        r->no_ack = true;
    return r;
}

void klab_rsp_close(struct klab_rsp *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->rx);
    free(r->payload);
    free(r->regs);
    free(r);
}

/* ---- target description ---------------------------------------------------------------------------- */

struct xml_ctx {
    struct klab_rsp *r;
    int depth;
    int next_regnum;
    int status;
};

static void add_reg(void *vctx, const struct rsp_reg *reg)
{
    struct xml_ctx *x = vctx;
    struct klab_rsp *r = x->r;
    if (r->nregs == r->regs_cap) {
        size_t cap = r->regs_cap ? 2 * r->regs_cap : 128;
        struct reg_entry *n = realloc(r->regs, cap * sizeof *n);
        if (!n)
            return;
        r->regs = n;
        r->regs_cap = cap;
    }
    struct reg_entry *e = &r->regs[r->nregs++];
    snprintf(e->name, sizeof e->name, "%s", reg->name);
    e->regnum = reg->regnum;
    e->bitsize = reg->bitsize;
}

static int load_annex(struct xml_ctx *x, const char *annex);

static int include_annex(void *vctx, const char *href)
{
    struct xml_ctx *x = vctx;
    return load_annex(x, href);
}

/* Reads one target-description annex with qXfer:features:read (reply 'm' = more, 'l' = last) and scans it. */
static int load_annex(struct xml_ctx *x, const char *annex)
{
    struct klab_rsp *r = x->r;
    if (++x->depth > MAX_XML_DEPTH) {
        x->status = fail(r, KLAB_RSP_EPROTO, "target description includes nest deeper than %d", MAX_XML_DEPTH);
        return -1;
    }
    if (strpbrk(annex, ":;#$}*")) {
        x->status = fail(r, KLAB_RSP_EPROTO, "bad target description name \"%s\"", annex);
        return -1;
    }
    char *doc = NULL;
    size_t len = 0;
    const size_t chunk = r->packet_size > 64 ? r->packet_size - 32 : 32;
    for (;;) {
        char req[256];
        snprintf(req, sizeof req, "qXfer:features:read:%s:%zx,%zx", annex, len, chunk);
        int rc = klab_rsp_request(r, req, NULL, 0);
        if (rc >= 0)
            rc = reply_status(r, annex);
        if (rc < 0) {
            free(doc);
            x->status = rc;
            return -1;
        }
        char kind = r->payload[0];
        if ((kind != 'm' && kind != 'l') || len + r->payload_len > MAX_XML_BYTES) {
            free(doc);
            x->status = fail(r, KLAB_RSP_EPROTO, "bad qXfer reply for %s", annex);
            return -1;
        }
        char *n = realloc(doc, len + r->payload_len + 1);
        if (!n) {
            free(doc);
            x->status = fail(r, KLAB_RSP_EIO, "out of memory");
            return -1;
        }
        doc = n;
        memcpy(doc + len, r->payload + 1, r->payload_len - 1);
        len += r->payload_len - 1;
        doc[len] = '\0';
        if (kind == 'l' || r->payload_len == 1)
            break;
    }
    const char *why = NULL;
    int rc = rsp_scan_target_xml(doc, len, &x->next_regnum, add_reg, include_annex, x, &why);
    free(doc);
    x->depth--;
    if (rc != 0 && x->status == 0)
        x->status = fail(r, KLAB_RSP_EPROTO, "target description %s: %s", annex, why);
    return rc;
}

static int load_registers(struct klab_rsp *r)
{
    if (r->regs_loaded)
        return 0;
    struct xml_ctx x = { .r = r };
    r->nregs = 0;
    if (load_annex(&x, "target.xml") != 0)
        return x.status ? x.status : KLAB_RSP_EPROTO;
    r->regs_loaded = true;
    return 0;
}

int klab_rsp_register_number(struct klab_rsp *r, const char *name, unsigned *bitsize)
{
    int rc = load_registers(r);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->nregs; i++)
        if (!strcasecmp(r->regs[i].name, name)) {
            if (bitsize)
                *bitsize = r->regs[i].bitsize;
            return r->regs[i].regnum;
        }
    return fail(r, KLAB_RSP_EINVAL, "the target has no register named %s", name);
}

int klab_rsp_read_register(struct klab_rsp *r, const char *name, uint64_t *value)
{
    unsigned bits;
    int num = klab_rsp_register_number(r, name, &bits);
    if (num < 0)
        return num;
    if (bits == 0 || bits > 64 || bits % 8)
        return fail(r, KLAB_RSP_EINVAL, "register %s is %u bits wide, not 8..64", name, bits);
    char req[32];
    snprintf(req, sizeof req, "p%x", (unsigned)num);
    int rc = klab_rsp_request(r, req, NULL, 0);
    if (rc >= 0)
        rc = reply_status(r, name);
    if (rc < 0)
        return rc;
    unsigned char bytes[8];
    size_t n = bits / 8;
    if (r->payload_len == 2 * n && r->payload[0] == 'x')
        return fail(r, KLAB_RSP_ETARGET, "register %s is unavailable", name);
    if (r->payload_len != 2 * n) {
        return fail(r, KLAB_RSP_EPROTO, "register %s: expected %zu hex digits, got \"%.40s\"", name, 2 * n, r->payload);
    }
    if (rsp_hex_decode(r->payload, r->payload_len, bytes, n) != 0)
        return fail(r, KLAB_RSP_EPROTO, "register %s: reply is not hex: \"%.40s\"", name, r->payload);
    /* Register contents are in target byte order: little-endian on both architectures klab serves. */
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)bytes[i] << (8 * i);
    *value = v;
    return 0;
}

int klab_rsp_select_cpu(struct klab_rsp *r, int cpu)
{
    if (cpu < 0)
        return fail(r, KLAB_RSP_EINVAL, "CPU number must not be negative");
    char req[32];
    snprintf(req, sizeof req, "Hg%x", (unsigned)cpu + 1);   /* QEMU's thread ids are CPU index + 1 */
    return request_ok(r, req, "select CPU");
}

int klab_rsp_read_memory(struct klab_rsp *r, uint64_t addr, void *buf, size_t len)
{
    /* Each reply carries 2 hex digits per byte; keep it within the stub's packet size (QEMU 7.2: 4096 bytes,
     * so 2048 bytes of memory per request). */
    const size_t max = (r->packet_size - 8) / 2 >= 2048 ? 2048 : (r->packet_size - 8) / 2;
    unsigned char *out = buf;
    while (len) {
        size_t n = len < max ? len : max;
        char req[64];
        snprintf(req, sizeof req, "m%llx,%zx", (unsigned long long)addr, n);
        int rc = klab_rsp_request(r, req, NULL, 0);
        if (rc >= 0)
            rc = reply_status(r, "memory read");
        if (rc < 0) {
            if (rc == KLAB_RSP_ETARGET)
                snprintf(r->error, sizeof r->error, "cannot read %zu bytes at 0x%llx (stub answered %s)", n,
                         (unsigned long long)addr, r->payload);
            return rc;
        }
        if (r->payload_len != 2 * n || rsp_hex_decode(r->payload, r->payload_len, out, n) != 0)
            return fail(r, KLAB_RSP_EPROTO, "memory read at 0x%llx: expected %zu hex digits, got %zu",
                        (unsigned long long)addr, 2 * n, r->payload_len);
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

int klab_rsp_set_physical(struct klab_rsp *r, bool on)
{
    return request_ok(r, on ? "Qqemu.PhyMemMode:1" : "Qqemu.PhyMemMode:0", "Qqemu.PhyMemMode");
}

int klab_rsp_get_physical(struct klab_rsp *r, bool *on)
{
    int rc = klab_rsp_request(r, "qqemu.PhyMemMode", NULL, 0);
    if (rc >= 0)
        rc = reply_status(r, "qqemu.PhyMemMode");
    if (rc < 0)
        return rc;
    if (strcmp(r->payload, "0") && strcmp(r->payload, "1"))
        return fail(r, KLAB_RSP_EPROTO, "qqemu.PhyMemMode: unexpected reply \"%.20s\"", r->payload);
    *on = r->payload[0] == '1';
    return 0;
}

int klab_rsp_monitor(struct klab_rsp *r, const char *command, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t clen = strlen(command);
    if (clen > 1000)
        return fail(r, KLAB_RSP_EINVAL, "monitor command too long");
    char req[2048 + 8] = "qRcmd,";
    char *p = req + 6;
    for (size_t i = 0; i < clen; i++) {
        *p++ = hex[(unsigned char)command[i] >> 4];
        *p++ = hex[(unsigned char)command[i] & 15];
    }
    *p = '\0';
    int rc = exchange(r, req, (size_t)(p - req), out, outlen);
    if (rc)
        return rc;
    if ((rc = reply_status(r, "qRcmd")) != 0)
        return rc;
    if (strcmp(r->payload, "OK") != 0)
        return fail(r, KLAB_RSP_EPROTO, "qRcmd: unexpected reply \"%.40s\"", r->payload);
    return 0;
}

int klab_rsp_breakpoint(struct klab_rsp *r, enum klab_rsp_break type, uint64_t addr, bool insert)
{
    char req[64];
    /* kind: the breakpoint length; 4 suits an AArch64 BRK, and QEMU ignores it on x86. */
    snprintf(req, sizeof req, "%c%d,%llx,%d", insert ? 'Z' : 'z', type == KLAB_BREAK_HARDWARE ? 1 : 0,
             (unsigned long long)addr, 4);
    return request_ok(r, req, insert ? "insert breakpoint" : "remove breakpoint");
}

static int wait_stop(struct klab_rsp *r, long long deadline, struct klab_rsp_stop *stop)
{
    for (;;) {
        int rc = receive_packet(r, deadline);
        if (rc)
            return rc;
        if (console_output(r))
            continue;
        const char *why;
        if (rsp_parse_stop_reply(r->payload, stop, &why) != 0)
            return fail(r, KLAB_RSP_EPROTO, "bad stop reply \"%.40s\": %s", r->payload, why);
        return 0;
    }
}

int klab_rsp_interrupt(struct klab_rsp *r, struct klab_rsp_stop *stop)
{
    int rc = send_all(r, "\003", 1);
    if (rc)
        return rc;
    return wait_stop(r, now_ms() + r->timeout_ms, stop);
}

int klab_rsp_resume(struct klab_rsp *r, bool step, int timeout_ms, struct klab_rsp_stop *stop)
{
    int rc = send_packet(r, step ? "s" : "c", 1);
    if (rc)
        return rc;
    rc = wait_stop(r, now_ms() + (timeout_ms > 0 ? timeout_ms : r->timeout_ms), stop);
    if (rc != KLAB_RSP_ETIMEDOUT)
        return rc;
    char saved[sizeof r->error];
    memcpy(saved, r->error, sizeof saved);
    if ((rc = klab_rsp_interrupt(r, stop)) != 0)
        return rc;
    memcpy(r->error, saved, sizeof saved);
    return KLAB_RSP_ETIMEDOUT;
}

int klab_rsp_query_stop(struct klab_rsp *r, struct klab_rsp_stop *stop)
{
    int rc = klab_rsp_request(r, "?", NULL, 0);
    if (rc < 0)
        return rc;
    const char *why;
    if (rsp_parse_stop_reply(r->payload, stop, &why) != 0)
        return fail(r, KLAB_RSP_EPROTO, "bad stop reply \"%.40s\": %s", r->payload, why);
    return 0;
}

int klab_rsp_detach(struct klab_rsp *r)
{
    return request_ok(r, "D", "detach");
}
