/* GDB remote serial protocol: the parts that only look at bytes. See rsp_parse.h for the manual's sections. */
#include "rsp_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rsp_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rsp_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t n)
{
    if (hexlen < 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = rsp_hex_digit((unsigned char)hex[2 * i]), lo = rsp_hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

enum rsp_frame_result rsp_decode_frame(const char *in, size_t n, char *out, size_t outcap, size_t *outlen,
                                       size_t *consumed, const char **why)
{
    *outlen = 0;
    *consumed = 0;
    if (outcap == 0 || n == 0 || in[0] != '$') {
        *why = "a packet must start with '$'";
        return RSP_FRAME_MALFORMED;
    }
    const char *hash = memchr(in + 1, '#', n - 1);
    if (!hash) {
        *why = "incomplete";
        return RSP_FRAME_INCOMPLETE;
    }
    size_t body = (size_t)(hash - in) - 1;
    if (body + 4 > n) {
        *why = "incomplete";
        return RSP_FRAME_INCOMPLETE;
    }
    *consumed = body + 4;
    /* The checksum is the modulo-256 sum of the bytes as sent, before unescaping (E.1). */
    unsigned sum = 0;
    for (size_t i = 0; i < body; i++)
        sum += (unsigned char)in[1 + i];
    int hi = rsp_hex_digit((unsigned char)hash[1]), lo = rsp_hex_digit((unsigned char)hash[2]);
    if (hi < 0 || lo < 0) {
        *why = "checksum is not two hex digits";
        return RSP_FRAME_MALFORMED;
    }
    if ((unsigned)(hi << 4 | lo) != (sum & 0xff)) {
        *why = "checksum mismatch";
        return RSP_FRAME_BAD_CHECKSUM;
    }
    size_t o = 0;
    const size_t limit = outcap - 1 < RSP_MAX_PAYLOAD ? outcap - 1 : RSP_MAX_PAYLOAD;
    for (size_t i = 0; i < body; i++) {
        unsigned char c = (unsigned char)in[1 + i];
        if (c == '}') {
            /* Escape: the next byte XOR 0x20. */
            if (++i >= body) {
                *why = "escape character at the end of a packet";
                return RSP_FRAME_MALFORMED;
            }
            c = (unsigned char)in[1 + i] ^ 0x20;
        } else if (c == '*') {
            /* Run-length: repeat the previous character (count - 29) more times; counts are printable and
             * never '#' or '$' (E.1). */
            if (o == 0 || ++i >= body) {
                *why = "run-length marker without a character to repeat";
                return RSP_FRAME_MALFORMED;
            }
            unsigned char nc = (unsigned char)in[1 + i];
            if (nc < 29 + 3 || nc > 126 || nc == '#' || nc == '$') {
                *why = "bad run-length count";
                return RSP_FRAME_MALFORMED;
            }
            size_t repeat = nc - 29u;
            if (repeat > limit - o) {
                *why = "packet too large";
                return RSP_FRAME_MALFORMED;
            }
            memset(out + o, out[o - 1], repeat);
            o += repeat;
            continue;
        }
        if (o >= limit) {
            *why = "packet too large";
            return RSP_FRAME_MALFORMED;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *outlen = o;
    *why = NULL;
    return RSP_FRAME_OK;
}

size_t rsp_encode_frame(const char *payload, size_t len, char *out, size_t outcap)
{
    size_t o = 0;
    unsigned sum = 0;
    if (outcap < 4)
        return 0;
    out[o++] = '$';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)payload[i];
        bool esc = c == '$' || c == '#' || c == '}' || c == '*';
        if (o + (esc ? 2 : 1) + 3 > outcap)
            return 0;
        if (esc) {
            out[o++] = '}';
            sum += '}';
            c ^= 0x20;
        }
        out[o++] = (char)c;
        sum += c;
    }
    static const char hex[] = "0123456789abcdef";
    out[o++] = '#';
    out[o++] = hex[(sum >> 4) & 15];
    out[o++] = hex[sum & 15];
    return o;
}

static int parse_hex_u64(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > 16)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = rsp_hex_digit((unsigned char)s[i]);
        if (d < 0)
            return -1;
        x = x << 4 | (unsigned)d;
    }
    *v = x;
    return 0;
}

int rsp_parse_stop_reply(const char *p, struct klab_rsp_stop *stop, const char **why)
{
    memset(stop, 0, sizeof *stop);
    stop->thread = -1;
    uint64_t v;
    char kind = p[0];
    if (kind != 'S' && kind != 'T' && kind != 'W' && kind != 'X') {
        *why = "not a stop reply";
        return -1;
    }
    /* The status/signal is two hex digits; W/X may carry ";process:pid" after it. */
    if (strlen(p) < 3 || parse_hex_u64(p + 1, 2, &v) != 0) {
        *why = "stop reply without a two-digit signal or status";
        return -1;
    }
    stop->kind = kind;
    stop->signal = (int)v;
    if (kind != 'T')
        return 0;
    /* T AA n1:r1;n2:r2;... — names we know are read, register numbers and unknown names are skipped. */
    const char *s = p + 3;
    while (*s) {
        const char *colon = strchr(s, ':'), *semi = strchr(s, ';');
        if (!semi)
            semi = s + strlen(s);
        if (!colon || colon > semi) {
            *why = "stop reply field without ':'";
            return -1;
        }
        size_t klen = (size_t)(colon - s), vlen = (size_t)(semi - colon - 1);
        const char *val = colon + 1;
        if (klen == 6 && !memcmp(s, "thread", 6)) {
            /* "thread:p1.2" (multiprocess) or "thread:2"; a leading 'p' names the process. */
            const char *dot = memchr(val, '.', vlen);
            const char *t = dot ? dot + 1 : val;
            size_t tlen = (size_t)(semi - t);
            if (parse_hex_u64(t, tlen, &v) != 0) {
                *why = "bad thread id in stop reply";
                return -1;
            }
            stop->thread = (long)v;
        } else if ((klen == 5 && !memcmp(s, "watch", 5)) || (klen == 6 && !memcmp(s, "rwatch", 6)) ||
                   (klen == 6 && !memcmp(s, "awatch", 6))) {
            if (parse_hex_u64(val, vlen, &stop->data_addr) != 0) {
                *why = "bad watch address in stop reply";
                return -1;
            }
            memcpy(stop->reason, s, klen);
            stop->reason[klen] = '\0';
        } else if ((klen == 7 && !memcmp(s, "swbreak", 7)) || (klen == 7 && !memcmp(s, "hwbreak", 7))) {
            memcpy(stop->reason, s, klen);
            stop->reason[klen] = '\0';
        }
        s = *semi ? semi + 1 : semi;
    }
    return 0;
}

/* Copies the value of attribute `name` from the element text [tag, end) into out; 1 if found, 0 if absent,
 * -1 if malformed or too long. */
static int xml_attr(const char *tag, const char *end, const char *name, char *out, size_t outcap)
{
    size_t nlen = strlen(name);
    for (const char *p = tag; p + nlen + 2 < end; p++) {
        if (!isspace((unsigned char)p[0]) || memcmp(p + 1, name, nlen) != 0)
            continue;
        const char *q = p + 1 + nlen;
        while (q < end && isspace((unsigned char)*q))
            q++;
        if (q >= end || *q != '=')
            continue;
        q++;
        while (q < end && isspace((unsigned char)*q))
            q++;
        if (q >= end || (*q != '"' && *q != '\''))
            return -1;
        char quote = *q++;
        const char *close = memchr(q, quote, (size_t)(end - q));
        if (!close || (size_t)(close - q) >= outcap)
            return -1;
        memcpy(out, q, (size_t)(close - q));
        out[close - q] = '\0';
        return 1;
    }
    return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
    if (!*s)
        return -1;
    char *end;
    unsigned long x = strtoul(s, &end, 0);
    if (*end || x > max)
        return -1;
    *v = x;
    return 0;
}

int rsp_scan_target_xml(const char *xml, size_t len, int *next_regnum, rsp_reg_fn on_reg,
                        rsp_include_fn on_include, void *ctx, const char **why)
{
    const char *p = xml, *end = xml + len;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt)
            break;
        /* Comments can hold whole elements (QEMU's i386-64bit.xml comments out cs_base..es_base). */
        if ((size_t)(end - lt) >= 4 && !memcmp(lt, "<!--", 4)) {
            const char *close = NULL;
            for (const char *q = lt + 4; q + 3 <= end; q++)
                if (!memcmp(q, "-->", 3)) {
                    close = q;
                    break;
                }
            if (!close) {
                *why = "unterminated comment in target description";
                return -1;
            }
            p = close + 3;
            continue;
        }
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt) {
            *why = "unterminated element in target description";
            return -1;
        }
        p = gt + 1;
        size_t elen = (size_t)(gt - lt);
        if (elen >= 4 && !memcmp(lt, "<reg", 4) && isspace((unsigned char)lt[4])) {
            struct rsp_reg reg = { .regnum = *next_regnum };
            char buf[32];
            unsigned long v;
            if (xml_attr(lt, gt, "name", reg.name, sizeof reg.name) != 1) {
                *why = "<reg> without a usable name";
                return -1;
            }
            if (xml_attr(lt, gt, "bitsize", buf, sizeof buf) != 1 || parse_uint(buf, 4096, &v) != 0) {
                *why = "<reg> without a usable bitsize";
                return -1;
            }
            reg.bitsize = (unsigned)v;
            int has = xml_attr(lt, gt, "regnum", buf, sizeof buf);
            if (has < 0 || (has == 1 && parse_uint(buf, 1u << 20, &v) != 0)) {
                *why = "<reg> with a bad regnum";
                return -1;
            }
            if (has == 1)
                reg.regnum = (int)v;
            /* Registers without regnum continue from the previous one (G.3 "Registers"). */
            *next_regnum = reg.regnum + 1;
            on_reg(ctx, &reg);
        } else if (elen >= 11 && !memcmp(lt, "<xi:include", 11) && isspace((unsigned char)lt[11])) {
            char href[128];
            if (xml_attr(lt, gt, "href", href, sizeof href) != 1) {
                *why = "<xi:include> without a usable href";
                return -1;
            }
            if (on_include(ctx, href) != 0) {
                *why = "included target description failed";
                return -1;
            }
        }
    }
    return 0;
}
