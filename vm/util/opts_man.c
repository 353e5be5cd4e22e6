/* A command's man page (roff, man(7) macros) from its option table: the same rows opts_usage() prints as
 * --help, so `man klab-vtop` and `klab vtop --help` list the same options, always. */
#include "util/opts.h"

#include <string.h>

/* Text for a roff text line: backslashes doubled as \e, minus signs as \-, and a line that would start with
 * a control character ('.' or '\'') guarded by \& (groff(7), "Control characters"). */
static void roff_text(FILE *f, const char *s, size_t len, bool line_start)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (line_start && (ch == '.' || ch == '\''))
            fputs("\\&", f);
        line_start = ch == '\n';
        if (ch == '\\')
            fputs("\\e", f);
        else if (ch == '-')
            fputs("\\-", f);
        else
            fputc(ch, f);
    }
}

static void roff_para(FILE *f, const char *s)
{
    roff_text(f, s, strlen(s), true);
    fputc('\n', f);
}

static void option_item(const struct opt_cmd *c, const struct opt *o, FILE *f)
{
    const char *dash = c->long_only ? "\\-" : "\\-\\-";
    fputs(".TP\n", f);
    if (o->short_name)
        fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
    fprintf(f, "\\fB%s", dash);
    roff_text(f, o->name, strlen(o->name), false);
    fputs("\\fR", f);
    if (o->arg) {
        fputs(" \\fI", f);
        roff_text(f, o->arg, strlen(o->arg), false);
        fputs("\\fR", f);
    }
    fputc('\n', f);
    roff_para(f, o->help ? o->help : "");
}

static void synopsis(const struct opt_cmd *c, FILE *f)
{
    fputs(".SH SYNOPSIS\n.B klab ", f);
    roff_para(f, c->name);
    if (c->args) {
        fputs(".I ", f);
        roff_para(f, c->args);
    }
    fputs("[\\fIOPTIONS\\fR]\n", f);
    if (c->more_usage) {
        /* "       klab exam stop DIR" lines: one synopsis line each. */
        for (const char *l = c->more_usage; *l;) {
            size_t len = strcspn(l, "\n");
            size_t skip = strspn(l, " ");
            fputs(".br\n", f);
            roff_text(f, l + skip, len - skip, true);
            fputc('\n', f);
            l += len + (l[len] == '\n');
        }
    }
}

void opts_man(const struct opt_cmd *c, const char *summary, const char *version, FILE *f)
{
    char page[64];
    snprintf(page, sizeof page, "klab-%s", c->name);
    char *sp = strchr(page, ' ');
    if (sp)
        *sp = '\0';   /* "exam run" is klab-exam */
    fprintf(f, ".TH %s 1 \"\" \"klab %s\" \"klab manual\"\n", page, version);
    fprintf(f, ".SH NAME\n%s \\- ", page);
    roff_para(f, summary);
    synopsis(c, f);
    if (c->about) {
        fputs(".SH DESCRIPTION\n", f);
        roff_para(f, c->about);
    }
    fputs(".SH OPTIONS\n", f);
    for (const struct opt *o = c->opts; o->name; o++)
        option_item(c, o, f);
    fprintf(f, ".TP\n\\fB%shelp\\fR\nprint this help and exit\n", c->long_only ? "\\-" : "\\-\\-");
    if (c->epilog) {
        fputs(".SH NOTES\n", f);
        roff_para(f, c->epilog);
    }
    fputs(".SH SEE ALSO\n.BR klab (1)\n", f);
}
