#define _GNU_SOURCE
/* The RSP client: byte-level parsing on hand-made packets (checksums computed here), and the client against
 * a scripted stub on a Unix socket that behaves like QEMU 7.2's (acks, the unasked stop reply on connect,
 * target descriptions with includes and comments, 4096-byte packets) or breaks the protocol. */
#include "check.h"
#include "klab.h"
#include "rsp_parse.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* "$payload#xx" with the checksum computed independently of the code under test. */
static void frame(const char *payload, char *out)
{
    unsigned sum = 0;
    for (const char *p = payload; *p; p++)
        sum += (unsigned char)*p;
    sprintf(out, "$%s#%02x", payload, sum & 0xff);
}

static void test_decode_plain_escape_rle(void)
{
    char in[256], out[256];
    size_t n, used;
    const char *why;
    frame("OK", in);
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_OK);
    CHECK_STR(out, "OK");
    CHECK_EQ_U64(used, 6);   /* "$OK#9a" */
    /* "}\x03" is '#' escaped (0x23 ^ 0x20 = 0x03); "0* " is "0000" (' ' = 32 → 3 more). */
    frame("a}\x03" "b0* z", in);
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_OK);
    CHECK_STR(out, "a#b0000z");
    /* Trailing bytes after the frame are not consumed. */
    frame("S05", in);
    strcat(in, "+$junk");
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_OK);
    CHECK_EQ_U64(used, 7);
}

static void test_decode_errors(void)
{
    char out[64];
    size_t n, used;
    const char *why;
    CHECK(rsp_decode_frame("$OK#9", 5, out, sizeof out, &n, &used, &why) == RSP_FRAME_INCOMPLETE);
    CHECK(rsp_decode_frame("$OK", 3, out, sizeof out, &n, &used, &why) == RSP_FRAME_INCOMPLETE);
    CHECK(rsp_decode_frame("$OK#00", 6, out, sizeof out, &n, &used, &why) == RSP_FRAME_BAD_CHECKSUM);
    CHECK_EQ_U64(used, 6);
    CHECK(rsp_decode_frame("$OK#zz", 6, out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
    CHECK(rsp_decode_frame("OK#9a", 5, out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
    char in[64];
    frame("*!", in);                      /* run-length with nothing to repeat */
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
    frame("a}", in);                      /* escape at the end */
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
    frame("a*\x1f", in);                  /* count below ' ' */
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
    frame("a*~a*~a*~", in);               /* expands past the 64-byte buffer */
    CHECK(rsp_decode_frame(in, strlen(in), out, sizeof out, &n, &used, &why) == RSP_FRAME_MALFORMED);
}

static void test_encode_roundtrip(void)
{
    const char payload[] = "X1000,4:$#}*";
    char enc[64], dec[64];
    size_t len = rsp_encode_frame(payload, strlen(payload), enc, sizeof enc);
    CHECK(len > 0);
    size_t n, used;
    const char *why;
    CHECK(rsp_decode_frame(enc, len, dec, sizeof dec, &n, &used, &why) == RSP_FRAME_OK);
    CHECK_STR(dec, payload);
    CHECK_EQ_U64(rsp_encode_frame(payload, strlen(payload), enc, 8), 0);
}

static void test_stop_replies(void)
{
    struct klab_rsp_stop st;
    const char *why;
    CHECK(rsp_parse_stop_reply("T05thread:p01.02;swbreak:;", &st, &why) == 0);
    CHECK(st.kind == 'T' && st.signal == 5 && st.thread == 2);
    CHECK_STR(st.reason, "swbreak");
    CHECK(rsp_parse_stop_reply("T05watch:ffff800008123450;thread:01;", &st, &why) == 0);
    CHECK_STR(st.reason, "watch");
    CHECK_EQ_U64(st.data_addr, 0xffff800008123450ull);
    CHECK_EQ_U64(st.thread, 1);
    CHECK(rsp_parse_stop_reply("S02", &st, &why) == 0 && st.signal == 2 && st.thread == -1);
    CHECK(rsp_parse_stop_reply("W00;process:1", &st, &why) == 0 && st.kind == 'W');
    CHECK(rsp_parse_stop_reply("OK", &st, &why) != 0);
    CHECK(rsp_parse_stop_reply("T5", &st, &why) != 0);
    CHECK(rsp_parse_stop_reply("T05thread", &st, &why) != 0);
    CHECK(rsp_parse_stop_reply("T05thread:zz;", &st, &why) != 0);
}

struct reg_list {
    char names[16][32];
    int nums[16];
    int n;
};
static void collect(void *ctx, const struct rsp_reg *r)
{
    struct reg_list *l = ctx;
    if (l->n < 16) {
        snprintf(l->names[l->n], 32, "%s", r->name);
        l->nums[l->n++] = r->regnum;
    }
}
static int no_include(void *ctx, const char *href) { (void)ctx; (void)href; return -1; }

static void test_target_xml_numbering(void)
{
    /* Numbering continues from the previous register unless regnum says otherwise; commented-out
     * registers do not count (QEMU's i386-64bit.xml comments out cs_base..es_base). */
    const char xml[] = "<feature><reg name=\"rax\" bitsize=\"64\" regnum=\"0\"/><reg name='rbx' bitsize='64'/>"
                       "<!-- <reg name=\"ghost\" bitsize=\"64\"/> --><reg  name=\"cr3\"  bitsize=\"64\" />"
                       "<reg name=\"TTBR1_EL1\" bitsize=\"64\" regnum=\"150\"/><reg name=\"next\" bitsize=\"32\"/>"
                       "</feature>";
    struct reg_list l = { .n = 0 };
    int next = 0;
    const char *why;
    CHECK(rsp_scan_target_xml(xml, strlen(xml), &next, collect, no_include, &l, &why) == 0);
    CHECK_EQ_U64(l.n, 5);
    CHECK_STR(l.names[2], "cr3");
    CHECK_EQ_U64(l.nums[2], 2);
    CHECK_EQ_U64(l.nums[3], 150);
    CHECK_EQ_U64(l.nums[4], 151);
    const char bad1[] = "<reg name=\"x\"/>", bad2[] = "<reg name=\"x\" bitsize=\"64\"", bad3[] = "<!-- open";
    CHECK(rsp_scan_target_xml(bad1, strlen(bad1), &next, collect, no_include, &l, &why) != 0);
    CHECK(rsp_scan_target_xml(bad2, strlen(bad2), &next, collect, no_include, &l, &why) != 0);
    CHECK(rsp_scan_target_xml(bad3, strlen(bad3), &next, collect, no_include, &l, &why) != 0);
    const char inc[] = "<xi:include href=\"a.xml\"/>";
    CHECK(rsp_scan_target_xml(inc, strlen(inc), &next, collect, no_include, &l, &why) != 0);
}

/* ---- a scripted stub ------------------------------------------------------------------------------------ */

enum stub_mode { STUB_QEMU, STUB_SILENT, STUB_GARBAGE, STUB_BAD_CHECKSUM_ONCE };

struct stub {
    int listen_fd;
    char path[108];
    enum stub_mode mode;
    unsigned char memory[8192];   /* "physical memory" at 0x1000 */
    int memory_requests;
    unsigned max_request;
    bool physical;
    pthread_t thread;
};

static const char target_xml[] = "<?xml version=\"1.0\"?><target><xi:include href=\"core.xml\"/>"
                                 "<xi:include href=\"sys.xml\"/></target>";
static const char core_xml[] = "<feature><reg name=\"pc\" bitsize=\"64\" regnum=\"0\"/>"
                               "<!-- <reg name=\"old\" bitsize=\"64\"/> --><reg name=\"cpsr\" bitsize=\"32\"/></feature>";
static const char sys_xml[] = "<feature><reg name=\"TTBR1_EL1\" bitsize=\"64\" regnum=\"40\"/>"
                              "<reg name=\"TCR_EL1\" bitsize=\"64\"/><reg name=\"wide\" bitsize=\"128\"/></feature>";

static void put_frame(int fd, const char *payload)
{
    char buf[9000];
    frame(payload, buf);
    (void)!write(fd, buf, strlen(buf));
}

/* Reads one frame (skipping acks), acks it; returns its payload in buf or -1 at EOF. */
static int get_frame(int fd, char *buf, size_t cap)
{
    char c;
    do {
        if (read(fd, &c, 1) != 1)
            return -1;
    } while (c != '$' && c != 3);
    if (c == 3) {
        strcpy(buf, "\003");
        return 0;
    }
    size_t n = 0;
    while (read(fd, &c, 1) == 1 && c != '#')
        if (n + 1 < cap)
            buf[n++] = c;
    buf[n] = '\0';
    char sum[2];
    if (read(fd, sum, 2) != 2)
        return -1;
    (void)!write(fd, "+", 1);
    return 0;
}

static bool starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static void xfer(int fd, const char *doc, const char *req)
{
    /* qXfer:features:read:ANNEX:OFF,LEN — serve in pieces of at most 40 bytes to exercise 'm' replies. */
    unsigned long off = 0, len = 0;
    const char *args = strrchr(req, ':');
    sscanf(args + 1, "%lx,%lx", &off, &len);
    size_t total = strlen(doc);
    if (len > 40)
        len = 40;
    char out[64];
    if (off >= total) {
        put_frame(fd, "l");
        return;
    }
    size_t n = total - off < len ? total - off : len;
    snprintf(out, sizeof out, "%c%.*s", off + n >= total ? 'l' : 'm', (int)n, doc + off);
    put_frame(fd, out);
}

static void *stub_main(void *arg)
{
    struct stub *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (s->mode == STUB_SILENT) {
        char buf[256];
        while (read(fd, buf, sizeof buf) > 0)
            ;
        close(fd);
        return NULL;
    }
    /* Like QEMU connecting to a running guest: it stops it and says so before reading anything. */
    put_frame(fd, "T02thread:01;");
    char req[4096];
    bool corrupt_next = s->mode == STUB_BAD_CHECKSUM_ONCE;
    while (get_frame(fd, req, sizeof req) == 0) {
        char reply[8300];
        reply[0] = '\0';
        if (s->mode == STUB_GARBAGE && !starts(req, "qSupported")) {
            put_frame(fd, "zz");   /* the shape of no reply we know */
            continue;
        }
        if (starts(req, "qSupported")) {
            strcpy(reply, "PacketSize=1000;qXfer:features:read+");
        } else if (starts(req, "qXfer:features:read:target.xml:")) {
            xfer(fd, target_xml, req);
            continue;
        } else if (starts(req, "qXfer:features:read:core.xml:")) {
            xfer(fd, core_xml, req);
            continue;
        } else if (starts(req, "qXfer:features:read:sys.xml:")) {
            xfer(fd, sys_xml, req);
            continue;
        } else if (!strcmp(req, "p28")) {   /* TTBR1_EL1 = regnum 40 */
            strcpy(reply, "00f0584100000200");   /* 0x000200004158f000, little-endian */
        } else if (!strcmp(req, "p29")) {
            strcpy(reply, "E01");
        } else if (!strcmp(req, "p1")) {
            strcpy(reply, "xxxxxxxx");
        } else if (!strcmp(req, "p0")) {
            strcpy(reply, "1234");       /* too short for 64 bits */
        } else if (starts(req, "Hg")) {
            strcpy(reply, strcmp(req, "Hg1") ? "E22" : "OK");
        } else if (!strcmp(req, "qqemu.PhyMemMode")) {
            strcpy(reply, s->physical ? "1" : "0");
        } else if (starts(req, "Qqemu.PhyMemMode:")) {
            s->physical = req[17] == '1';
            strcpy(reply, "OK");
        } else if (req[0] == 'm') {
            unsigned long addr, len;
            sscanf(req + 1, "%lx,%lx", &addr, &len);
            s->memory_requests++;
            if (len > s->max_request)
                s->max_request = (unsigned)len;
            if (!s->physical || addr < 0x1000 || addr + len > 0x1000 + sizeof s->memory || 2 * len > 4096) {
                strcpy(reply, "E14");
            } else {
                for (unsigned long i = 0; i < len; i++)
                    sprintf(reply + 2 * i, "%02x", s->memory[addr - 0x1000 + i]);
            }
        } else if (starts(req, "qRcmd,")) {
            /* Output in two O packets, then OK: "gpa: 0x1234\n". */
            put_frame(fd, "O6770613a20");   /* "gpa: " */
            put_frame(fd, "O3078313233340a");   /* "0x1234\n" */
            strcpy(reply, "OK");
        } else if (req[0] == 'Z' || req[0] == 'z') {
            strcpy(reply, req[1] == '1' ? "OK" : "");
        } else if (!strcmp(req, "c")) {
            put_frame(fd, "O68690a");
            strcpy(reply, "T05thread:02;hwbreak:;");
        } else if (!strcmp(req, "s")) {
            continue;   /* never stops: the client must time out and interrupt */
        } else if (!strcmp(req, "\003")) {
            strcpy(reply, "T02thread:01;");
        } else if (!strcmp(req, "?")) {
            strcpy(reply, "T05thread:01;");
        } else if (!strcmp(req, "D")) {
            strcpy(reply, "OK");
        }
        if (corrupt_next && starts(req, "qSupported")) {
            (void)!write(fd, "$PacketSize=1000#00", 19);   /* wrong checksum: the client must nack */
            corrupt_next = false;
            char c = 0;
            while (c != '-' && read(fd, &c, 1) == 1)   /* skip the ack of the stop reply */
                ;
            if (c != '-')
                break;
        }
        put_frame(fd, reply);
    }
    close(fd);
    return NULL;
}

static void stub_start(struct stub *s, enum stub_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    for (size_t i = 0; i < sizeof s->memory; i++)
        s->memory[i] = (unsigned char)(i * 7 + 3);
    snprintf(s->path, sizeof s->path, "/tmp/klab-test-rsp-%d-%d.sock", (int)getpid(), (int)mode);
    unlink(s->path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, s->path);
    if (bind(s->listen_fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(s->listen_fd, 1) != 0)
        perror("stub");
    pthread_create(&s->thread, NULL, stub_main, s);
}

static void stub_stop(struct stub *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    unlink(s->path);
}

static void test_client_against_qemu_like_stub(void)
{
    struct stub s;
    stub_start(&s, STUB_QEMU);
    char where[128];
    struct klab_error err;
    snprintf(where, sizeof where, "unix:%s", s.path);
    struct klab_rsp *r = klab_rsp_connect(where, 2000, &err);
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "  connect: %s\n", err.msg);
        stub_stop(&s);
        return;
    }
    unsigned bits;
    CHECK_EQ_U64(klab_rsp_register_number(r, "pc", &bits), 0);
    CHECK_EQ_U64(klab_rsp_register_number(r, "cpsr", &bits), 1);   /* the commented-out one is not counted */
    CHECK_EQ_U64(bits, 32);
    CHECK_EQ_U64(klab_rsp_register_number(r, "ttbr1_el1", NULL), 40);
    CHECK_EQ_U64(klab_rsp_register_number(r, "TCR_EL1", NULL), 41);
    CHECK(klab_rsp_register_number(r, "nosuch", NULL) == KLAB_RSP_EINVAL);
    uint64_t v = 0;
    CHECK(klab_rsp_read_register(r, "TTBR1_EL1", &v) == 0);
    CHECK_EQ_U64(v, 0x000200004158f000ull);
    CHECK(klab_rsp_read_register(r, "TCR_EL1", &v) == KLAB_RSP_ETARGET);
    CHECK(strstr(klab_rsp_error(r), "E01") != NULL);
    CHECK(klab_rsp_read_register(r, "cpsr", &v) == KLAB_RSP_ETARGET);   /* "xxxxxxxx": unavailable */
    CHECK(klab_rsp_read_register(r, "pc", &v) == KLAB_RSP_EPROTO);      /* short reply */
    CHECK(klab_rsp_read_register(r, "wide", &v) == KLAB_RSP_EINVAL);
    CHECK(klab_rsp_select_cpu(r, 0) == 0);
    CHECK(klab_rsp_select_cpu(r, 5) == KLAB_RSP_ETARGET);
    /* Physical memory: 5000 bytes must take three requests of at most 2048 bytes. */
    struct klab_error merr;
    struct klab_physmem *m = klab_physmem_from_rsp(r, &merr);
    CHECK(m != NULL && s.physical);
    unsigned char buf[5000];
    CHECK(klab_physmem_read(m, 0x1000 + 100, buf, sizeof buf) == 0);
    bool same = true;
    for (size_t i = 0; i < sizeof buf; i++)
        same = same && buf[i] == (unsigned char)((i + 100) * 7 + 3);
    CHECK(same);
    CHECK_EQ_U64(s.memory_requests, 3);
    CHECK(s.max_request <= 2048);
    CHECK(klab_physmem_read(m, 0x100000, buf, 8) != 0);   /* E14 outside "RAM" */
    klab_physmem_close(m);
    CHECK(!s.physical);                                  /* mode restored */
    char out[64];
    CHECK(klab_rsp_monitor(r, "gva2gpa 0xffff800008000000", out, sizeof out) == 0);
    CHECK_STR(out, "gpa: 0x1234\n");
    CHECK(klab_rsp_breakpoint(r, KLAB_BREAK_HARDWARE, 0xffff800008000000ull, true) == 0);
    CHECK(klab_rsp_breakpoint(r, KLAB_BREAK_SOFTWARE, 0xffff800008000000ull, true) == KLAB_RSP_EUNSUPPORTED);
    struct klab_rsp_stop st;
    CHECK(klab_rsp_resume(r, false, 1000, &st) == 0);   /* console output before the stop is skipped */
    CHECK(st.kind == 'T' && st.thread == 2);
    CHECK_STR(st.reason, "hwbreak");
    CHECK(klab_rsp_resume(r, true, 200, &st) == KLAB_RSP_ETIMEDOUT);   /* interrupted after the time-out */
    CHECK(st.kind == 'T' && st.signal == 2);
    CHECK(klab_rsp_query_stop(r, &st) == 0 && st.signal == 5);
    CHECK(klab_rsp_detach(r) == 0);
    klab_rsp_close(r);
    stub_stop(&s);
}

static void test_client_failures(void)
{
    struct klab_error err;
    char where[128];
    /* Nothing listening. */
    CHECK(klab_rsp_connect("unix:/nonexistent/klab.sock", 500, &err) == NULL);
    CHECK(strstr(err.msg, "cannot connect") != NULL);
    CHECK(klab_rsp_connect("no-port-here", 500, &err) == NULL);
    CHECK(strstr(err.msg, "HOST:PORT") != NULL);
    /* A stub that accepts and never answers (QEMU while gdb holds it): a time-out, with a hint. */
    struct stub s;
    stub_start(&s, STUB_SILENT);
    snprintf(where, sizeof where, "unix:%s", s.path);
    CHECK(klab_rsp_connect(where, 300, &err) == NULL);
    CHECK(strstr(err.msg, "another debugger") != NULL);
    stub_stop(&s);
    /* Replies of the wrong shape are errors, not crashes. */
    stub_start(&s, STUB_GARBAGE);
    snprintf(where, sizeof where, "unix:%s", s.path);
    struct klab_rsp *r = klab_rsp_connect(where, 1000, &err);
    CHECK(r != NULL);
    if (r) {
        CHECK(klab_rsp_register_number(r, "pc", NULL) == KLAB_RSP_EPROTO);
        unsigned char b[16];
        CHECK(klab_rsp_read_memory(r, 0x1000, b, sizeof b) == KLAB_RSP_EPROTO);
        CHECK(klab_rsp_set_physical(r, true) == KLAB_RSP_EPROTO);
        klab_rsp_close(r);
    }
    stub_stop(&s);
    /* A corrupted reply is nacked and the retransmission accepted. */
    stub_start(&s, STUB_BAD_CHECKSUM_ONCE);
    snprintf(where, sizeof where, "unix:%s", s.path);
    r = klab_rsp_connect(where, 1000, &err);
    CHECK(r != NULL);
    klab_rsp_close(r);
    stub_stop(&s);
}

int main(void)
{
    RUN(test_decode_plain_escape_rle);
    RUN(test_decode_errors);
    RUN(test_encode_roundtrip);
    RUN(test_stop_replies);
    RUN(test_target_xml_numbering);
    RUN(test_client_against_qemu_like_stub);
    RUN(test_client_failures);
    return CHECK_DONE();
}
