/* libFuzzer target: everything the RSP client parses from a stub — frames (escapes, run-length, checksums),
 * stop replies, target descriptions — and the client itself reading arbitrary bytes as the stub's replies. */
#include "klab.h"
#include "rsp_parse.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int no_include(void *ctx, const char *href) { (void)ctx; (void)href; return 0; }
static void ignore_reg(void *ctx, const struct rsp_reg *reg) { (void)ctx; (void)reg; }

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    /* The pure parsers. */
    char out[512];
    size_t n, used;
    const char *why;
    for (size_t off = 0; off < size; off++)
        if (text[off] == '$')
            rsp_decode_frame(text + off, size - off, out, sizeof out, &n, &used, &why);
    struct klab_rsp_stop st;
    rsp_parse_stop_reply(text, &st, &why);
    int next = 0;
    rsp_scan_target_xml(text, size, &next, ignore_reg, no_include, NULL, &why);
    /* The client, with the input as everything the stub ever says. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        if (write(sv[1], data, size) < 0) {
        }
        shutdown(sv[1], SHUT_WR);
        struct klab_rsp *r = rsp_open_fd(sv[0], 50);
        if (r) {
            uint64_t v;
            unsigned char mem[64];
            char mon[128];
            klab_rsp_read_register(r, "pc", &v);
            klab_rsp_read_memory(r, 0x1000, mem, sizeof mem);
            klab_rsp_monitor(r, "info status", mon, sizeof mon);
            klab_rsp_resume(r, false, 50, &st);
            klab_rsp_close(r);
        }
        close(sv[1]);
    }
    free(text);
    return 0;
}
