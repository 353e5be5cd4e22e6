/* The option tables of vm/util/opts.h: getopt_long's table and the --help text, both from one struct opt. */
#define _GNU_SOURCE
#include "util/opts.h"
#include "util/util.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define HELP_COLUMN 18
#define WIDTH 108

/* "usage: klab boot [--arch A] [--kernel F] ...", wrapped under the command name. */
static void synopsis(const struct opt_cmd *c, FILE *f)
{
    int indent = fprintf(f, "usage: klab %s", c->name);
    int col = indent;
    if (c->args)
        col += fprintf(f, " %s", c->args);
    if (c->no_synopsis_opts) {
        fputs(" [OPTIONS]\n", f);
        return;
    }
    for (const struct opt *o = c->opts; o->name; o++) {
        char item[96];
        snprintf(item, sizeof item, "[%s%s%s%s]", c->long_only ? "-" : "--", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        if (col + 1 + (int)strlen(item) > WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        col += fprintf(f, " %s", item);
    }
    fputc('\n', f);
}

/* "  --name ARG      help", the help's further lines under its first. */
static void option_help(const struct opt_cmd *c, const struct opt *o, FILE *f)
{
    int n = o->short_name ? fprintf(f, "  -%c, ", o->short_name) : fprintf(f, "  ");
    n += fprintf(f, "%s%s%s%s", c->long_only ? "-" : "--", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    if (n >= HELP_COLUMN) {
        fputc('\n', f);
        n = 0;
    }
    const char *h = o->help ? o->help : "";
    do {
        size_t len = strcspn(h, "\n");
        fprintf(f, "%*s%.*s\n", HELP_COLUMN - n, "", (int)len, h);
        n = 0;
        h += len;
    } while (*h && *++h);
}

void opts_usage(const struct opt_cmd *c, FILE *f)
{
    synopsis(c, f);
    if (c->more_usage)
        fprintf(f, "%s\n", c->more_usage);
    if (c->about)
        fprintf(f, "\n%s\n", c->about);
    fputc('\n', f);
    for (const struct opt *o = c->opts; o->name; o++)
        option_help(c, o, f);
    static const struct opt help = { "help", 'h', NULL, "print this help and exit", 0, OPT_KIND_BOOL, 0 };
    option_help(c, &help, f);
    if (c->epilog)
        fprintf(f, "\n%s\n", c->epilog);
}

int opts_parse(const struct opt_cmd *c, int argc, char **argv, opt_handler on, void *ctx)
{
    size_t n = 0;
    while (c->opts[n].name)
        n++;
    struct option *lo = calloc(n + 2, sizeof *lo);
    for (size_t i = 0; i < n; i++)
        lo[i] = (struct option){ c->opts[i].name, c->opts[i].arg ? required_argument : no_argument, NULL,
                                 (int)(i + 1) };
    lo[n] = (struct option){ "help", no_argument, NULL, 'h' };
    /* Long options return their index + 1 (below any letter), short ones their letter. */
    char shorts[64] = "h";
    for (size_t i = 0, k = 1; i < n && k + 2 < sizeof shorts; i++)
        if (c->opts[i].short_name) {
            shorts[k++] = c->opts[i].short_name;
            if (c->opts[i].arg)
                shorts[k++] = ':';
            shorts[k] = '\0';
        }
    int r = -2, ch;
    optind = 1;
    opterr = 0;
    while (r == -2 && (ch = (c->long_only ? getopt_long_only : getopt_long)(argc, argv, shorts, lo, NULL)) != -1) {
        size_t i = ch >= 1 && (size_t)ch <= n ? (size_t)ch - 1 : n;
        for (size_t j = 0; i == n && ch > ' ' && j < n; j++)
            if (c->opts[j].short_name == ch)
                i = j;
        if (ch == 'h') {
            opts_usage(c, stdout);
            r = 0;
        } else if (i < n && c->opts[i].kind == OPT_KIND_STR) {
            *(const char **)((char *)ctx + c->opts[i].offset) = optarg;
        } else if (i < n && c->opts[i].kind == OPT_KIND_BOOL) {
            *(bool *)((char *)ctx + c->opts[i].offset) = true;
        } else if (i < n) {
            r = on(ctx, c->opts[i].id, optarg) == 0 ? -2 : -1;
        } else {
            klab_error("%s: unknown or incomplete option '%s' (see klab %s --help)", c->name, argv[optind - 1],
                       c->name);
            r = -1;
        }
    }
    free(lo);
    return r == -2 ? optind : r;
}

int opts_number(const char *arg, uint64_t lo, uint64_t hi, uint64_t *v, const char *what)
{
    if (parse_u64(arg, v) && *v >= lo && *v <= hi)
        return 0;
    klab_error("%s, not '%s'", what, arg);
    return -1;
}
