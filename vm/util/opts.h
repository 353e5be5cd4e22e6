/* One option table per command: it drives getopt_long and prints the command's --help, so the usage text
 * cannot drift from what the parser takes (the shape of kvmtool's parse-options, not its code). */
#ifndef KLAB_OPTS_H
#define KLAB_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_kind {
    OPT_KIND_CALL,   /* the command's handler gets (id, arg): values that need checking */
    OPT_KIND_STR,    /* arg is stored in the const char * at offset in the command's options struct */
    OPT_KIND_BOOL,   /* true is stored in the bool at offset */
};

struct opt {
    const char *name;   /* long name, without "--" */
    int id;             /* what the handler is called with (a letter or an enum above 255) */
    const char *arg;    /* metavar ("N", "FILE"), NULL for a flag */
    const char *help;   /* one line; '\n' starts an indented continuation line */
    char short_name;    /* also "-o", or 0 */
    enum opt_kind kind;
    size_t offset;      /* OPT_KIND_STR / OPT_KIND_BOOL: where, in the struct opts_parse's ctx points at */
};

/* Table rows. TYPE is the struct opts_parse() is given as ctx. */
#define OPT_STR(name, meta, help, type, field) { name, 0, meta, help, 0, OPT_KIND_STR, offsetof(type, field) }
#define OPT_BOOL(name, help, type, field) { name, 0, NULL, help, 0, OPT_KIND_BOOL, offsetof(type, field) }
#define OPT_CALL(name, id, meta, help) { name, id, meta, help, 0, OPT_KIND_CALL, 0 }
#define OPT_END { 0 }

struct opt_cmd {
    const char *name;       /* "boot", or "exam grade" */
    const char *args;       /* positional part of the synopsis ("[NAME]"), or NULL */
    const char *more_usage; /* further synopsis lines ("       klab exam stop DIR"), or NULL */
    const char *about;      /* the paragraph after the synopsis */
    const char *epilog;     /* printed after the options, or NULL */
    const struct opt *opts; /* terminated by { 0 } */
    bool long_only;         /* also take "-name" (gdb's -ex, -batch) */
    bool no_synopsis_opts;  /* the synopsis says [OPTIONS] instead of listing each */
};

/* Called for each OPT_KIND_CALL option found: 0 to go on, -1 after one error line (exit status 2). NULL when
 * the table has none. */
typedef int (*opt_handler)(void *ctx, int id, const char *arg);

/* Parses argv[1..argc) by the table. Returns the index of the first positional argument (positionals are
 * moved to the end, as getopt_long does), 0 after --help was printed (exit status 0), or -1 after one error
 * line (exit status 2). */
int opts_parse(const struct opt_cmd *c, int argc, char **argv, opt_handler on, void *ctx);
/* The exit status of an opts_parse() result that is not a positional index: 0 (--help) or 2. */
static inline int opts_exit(int r) { return r == 0 ? 0 : 2; }
void opts_usage(const struct opt_cmd *c, FILE *f);
/* The command's man page, klab-NAME(1), from the same table (util/opts_man.c). */
void opts_man(const struct opt_cmd *c, const char *summary, const char *version, FILE *f);
/* An option's number (decimal or 0x-hex) from lo to hi: 0, or -1 after "WHAT, not 'ARG'". */
int opts_number(const char *arg, uint64_t lo, uint64_t hi, uint64_t *v, const char *what);

#endif
