/* The option tables (vm/util/opts.c): what getopt_long takes is what --help prints. */
#define _GNU_SOURCE
#include "check.h"
#include "util/opts.h"

#include <stdlib.h>

struct seen {
    int level, quiet;
    const char *out;
    bool flag;
    const char *name;
};

static const struct opt options[] = {
    OPT_CALL("level", 'l', "N", "a number\nover two lines"),
    OPT_CALL("quiet", 'q', NULL, "say less"),
    { "output", 'o', "FILE", "where", 'o', OPT_KIND_CALL, 0 },
    OPT_BOOL("flag", "stored by the table", struct seen, flag),
    OPT_STR("name", "N", "stored by the table", struct seen, name),
    OPT_END,
};
static const struct opt_cmd cmd = { .name = "t", .args = "[NAME]", .about = "About.", .opts = options };

static int on(void *ctx, int id, const char *arg)
{
    struct seen *s = ctx;
    if (id == 'l') {
        if (strcmp(arg, "7"))
            return -1;
        s->level = 7;
    } else if (id == 'q') {
        s->quiet++;
    } else {
        s->out = arg;
    }
    return 0;
}

static void test_parse(void)
{
    char *argv[] = { "t", "--level", "7", "name", "-o", "f", "--quiet", "--flag", "--name", "n", NULL };
    struct seen s = { 0 };
    int first = opts_parse(&cmd, 10, argv, on, &s);
    CHECK_EQ_U64(first, 9);                 /* positionals are moved to the end */
    CHECK(s.flag);
    CHECK_STR(s.name, "n");
    CHECK_STR(argv[first], "name");
    CHECK_EQ_U64(s.level, 7);
    CHECK_EQ_U64(s.quiet, 1);
    CHECK_STR(s.out, "f");
}

static void test_errors(void)
{
    struct seen s = { 0 };
    char *unknown[] = { "t", "--frob", NULL }, *missing[] = { "t", "--level", NULL }, *bad[] = { "t", "--level=3", NULL };
    CHECK(opts_parse(&cmd, 2, unknown, on, &s) == -1);
    CHECK(opts_parse(&cmd, 2, missing, on, &s) == -1);
    CHECK(opts_parse(&cmd, 2, bad, on, &s) == -1);   /* the handler's refusal */
}

static void test_usage_is_the_table(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    opts_usage(&cmd, f);
    fclose(f);
    CHECK(strstr(text, "usage: klab t [NAME] [--level N] [--quiet] [--output FILE] [--flag] [--name N]\n") != NULL);
    CHECK(strstr(text, "  --level N       a number\n                  over two lines\n") != NULL);
    CHECK(strstr(text, "  -o, --output FILE\n                  where\n") != NULL);
    CHECK(strstr(text, "\nAbout.\n") != NULL);
    free(text);
}

/* The man page of the same table: every option as a .TP item, roff's special characters escaped (groff(7)). */
static void test_man_is_the_table(void)
{
    static const struct opt tricky[] = {
        OPT_CALL("back-slash", 'b', "A\\B", ".starts with a dot\n'and a quote"),
        OPT_END,
    };
    static const struct opt_cmd tcmd = { .name = "exam run", .args = "FILE", .about = "About.", .opts = tricky,
                                         .more_usage = "       klab exam stop DIR" };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    opts_man(&cmd, "a test", "1.2", f);
    fclose(f);
    CHECK(strstr(text, ".TH klab-t 1 \"\" \"klab 1.2\" \"klab manual\"\n") != NULL);
    CHECK(strstr(text, ".SH NAME\nklab-t \\- a test\n") != NULL);
    CHECK(strstr(text, ".TP\n\\fB\\-\\-level\\fR \\fIN\\fR\na number\nover two lines\n") != NULL);
    CHECK(strstr(text, ".TP\n\\fB\\-o\\fR, \\fB\\-\\-output\\fR \\fIFILE\\fR\nwhere\n") != NULL);
    CHECK(strstr(text, "\\fB\\-\\-help\\fR") != NULL);
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    opts_man(&tcmd, "rooms", "1.2", f);
    fclose(f);
    CHECK(strstr(text, ".TH klab-exam 1") != NULL);
    CHECK(strstr(text, "\\fB\\-\\-back\\-slash\\fR \\fIA\\eB\\fR\n\\&.starts with a dot\n\\&'and a quote\n") != NULL);
    CHECK(strstr(text, ".br\nklab exam stop DIR\n") != NULL);
    free(text);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_errors);
    RUN(test_usage_is_the_table);
    RUN(test_man_is_the_table);
    return CHECK_DONE();
}
