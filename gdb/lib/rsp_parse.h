/* The pure parts of the GDB remote serial protocol client: framing, escapes, run-length decoding, stop
 * replies, target descriptions. No I/O here, so the fuzz targets and unit tests can drive them directly.
 * Protocol reference: the GDB manual, appendix E "GDB Remote Serial Protocol" (E.1 Overview for framing,
 * escapes and run-length encoding; E.3 Stop Reply Packets; G "Target Descriptions" for the XML). */
#ifndef LIBKLAB_RSP_PARSE_H
#define LIBKLAB_RSP_PARSE_H

#include "klab.h"

#include <stddef.h>
#include <stdint.h>

/* Largest packet payload accepted after decoding: bounds what a hostile or broken stub can make us hold. */
#define RSP_MAX_PAYLOAD (1u << 20)

enum rsp_frame_result {
    RSP_FRAME_OK,          /* a whole packet was decoded */
    RSP_FRAME_INCOMPLETE,  /* need more bytes */
    RSP_FRAME_BAD_CHECKSUM,
    RSP_FRAME_MALFORMED,   /* bad run-length count, escape at the end, payload too large */
};

/* Decodes one packet from in[0..n): in[0] must be '$'. On RSP_FRAME_OK, out[0..*outlen) holds the payload
 * (unescaped, run-length expanded, NUL-terminated; outcap must be > 0) and *consumed counts the bytes of the
 * frame including "#xx". On RSP_FRAME_BAD_CHECKSUM *consumed is set too, so the caller can skip it. */
enum rsp_frame_result rsp_decode_frame(const char *in, size_t n, char *out, size_t outcap, size_t *outlen,
                                       size_t *consumed, const char **why);

/* Builds "$payload#xx" with '$', '#', '}' and '*' escaped. Returns the frame length, or 0 if it did not fit. */
size_t rsp_encode_frame(const char *payload, size_t len, char *out, size_t outcap);

/* Parses a stop reply (S, T, W, X). 0, or -1 when it is not one (why says what was wrong). */
int rsp_parse_stop_reply(const char *payload, struct klab_rsp_stop *stop, const char **why);

/* Hex helpers: -1 on a non-hex digit. */
int rsp_hex_digit(int c);
/* Decodes 2*n hex digits into n bytes; -1 on a bad digit or short input. */
int rsp_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t n);

/* One register from a target description. */
struct rsp_reg {
    char name[32];
    int regnum;
    unsigned bitsize;
};

/* Scans a target-description document for <reg> and <xi:include> elements in document order. Registers are
 * numbered from *next_regnum (updated), or by their regnum attribute. For an include, on_include is called
 * with its href (and may recurse into this function); a non-zero return aborts the scan.
 * Returns 0, or -1 with why set on a malformed element. */
typedef int (*rsp_include_fn)(void *ctx, const char *href);
typedef void (*rsp_reg_fn)(void *ctx, const struct rsp_reg *reg);
int rsp_scan_target_xml(const char *xml, size_t len, int *next_regnum, rsp_reg_fn on_reg,
                        rsp_include_fn on_include, void *ctx, const char **why);

/* A client on an already connected socket (tests and fuzzing); no handshake is done. Takes fd. */
struct klab_rsp *rsp_open_fd(int fd, int timeout_ms);

#endif
