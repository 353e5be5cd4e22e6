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

int main(void)
{
    RUN(test_parse);
    RUN(test_errors);
    RUN(test_usage_is_the_table);
    return CHECK_DONE();
}
