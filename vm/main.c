/* klab: a QEMU + gdb kernel debug lab. */
#include "cmd/commands.h"
#include "machine/paths.h"
#include "util/util.h"


#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: klab COMMAND [ARGS]   (klab COMMAND --help for each; klab --version)\n\n", f);
    for (size_t i = 0; i < klab_ncommands; i++)
        fprintf(f, "  %-8s %s\n", klab_commands[i].name, klab_commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        const struct klab_command *k = argc > 2 && !strcmp(argv[1], "help") ? klab_command_find(argv[2]) : NULL;
        if (k) {
            char *args[] = { argv[2], "--help", NULL };
            return k->run(2, args);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("klab %s (%s %s)\n", KLAB_VERSION, klab_installed() ? "files in" : "source tree", klab_data_dir());
        return 0;
    }
    /* Hidden helpers of the bash completion and the man pages. */
    if (!strcmp(argv[1], "__complete"))
        return cmd_complete(argc - 1, argv + 1);
    if (!strcmp(argv[1], "__man"))
        return cmd_man(argc - 1, argv + 1);
    const struct klab_command *k = klab_command_find(argv[1]);
    if (k)
        return k->run(argc - 1, argv + 1);
    klab_error("unknown command '%s' (see klab --help)", argv[1]);
    return 2;
}
