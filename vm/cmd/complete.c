/* klab __complete CWORD WORD...: the words bash may complete WORD[CWORD] to, one per line, for
 * scripts/klab.bash. Everything comes from klab's own tables (commands, their option tables and synopses,
 * machine profiles, dump formats) and the user's run state and cache, so completion cannot drift from the
 * parser. A line "__files__" asks the shell to offer file names as well. Hidden from `klab --help`. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "run/dump.h"
#include "run/runstate.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void vm_names(void)
{
    size_t n;
    char **names = runstate_list(&n, false);
    for (size_t i = 0; i < n; i++)
        puts(names[i]);
    runstate_free_list(names, n);
}

/* Registered kernels: <cache>/kernels/NAME/vmlinuz (as boot_resolve.c resolves --kernel NAME). */
static void kernel_names(void)
{
    char *cache = klab_cache_dir();
    char *dir = xasprintf("%s/kernels", cache);
    free(cache);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        struct stat st;
        char *img = xasprintf("%s/%s/vmlinuz", dir, e->d_name);
        if (e->d_name[0] != '.' && runstate_valid_name(e->d_name) && stat(img, &st) == 0)
            puts(e->d_name);
        free(img);
    }
    if (d)
        closedir(d);
    free(dir);
}

static void arch_names(void)
{
    for (const struct machine_profile *const *p = klab_profiles; *p; p++)
        puts((*p)->arch);
}

static void cpu_names(void)
{
    for (const struct machine_profile *const *p = klab_profiles; *p; p++) {
        puts((*p)->default_cpu);
        if ((*p)->full_cpu && strcmp((*p)->full_cpu, (*p)->default_cpu))
            puts((*p)->full_cpu);
    }
    puts("qemu64");
}

/* The values of one option, by its name (the tables' metavars are terse: "A", "F"). */
static void option_values(const struct opt *o)
{
    static const char *const files[] = { "kernel", "vmlinux", "initrd", "init", "dump", "output", "gdb-socket",
                                         "overlay", "dir", "busybox", "qemu", NULL };
    if (!strcmp(o->name, "arch"))
        arch_names();
    else if (!strcmp(o->name, "cpu"))
        cpu_names();
    else if (!strcmp(o->name, "vm"))
        vm_names();
    else if (!strcmp(o->name, "backend"))
        puts("qemu\nlibvirt");
    else if (!strcmp(o->name, "accel"))
        puts("kvm\ntcg");
    else if (!strcmp(o->name, "format"))
        for (int f = 0; f < DUMP_NFORMATS; f++)
            puts(dump_format_name((enum dump_format)f));
    if (!strcmp(o->name, "kernel"))
        kernel_names();
    for (int i = 0; files[i]; i++)
        if (!strcmp(o->name, files[i]))
            puts("__files__");
}

static const struct opt *option_named(const struct opt_cmd *c, const char *word)
{
    if (word[0] != '-')
        return NULL;
    const char *name = word + 1 + (word[1] == '-');
    for (const struct opt *o = c->opts; o->name; o++)
        if (!strcmp(o->name, name) || (o->short_name && word[1] == o->short_name && !word[2]))
            return o;
    return NULL;
}

static void option_names(const struct opt_cmd *c)
{
    const char *dash = c->long_only ? "-" : "--";
    for (const struct opt *o = c->opts; o->name; o++)
        printf("%s%s\n", dash, o->name);
    printf("%shelp\n", dash);
}

/* Positional words, from the synopsis: NAME is a VM, DUMP / FILE / ROOMFILE / IMAGE a file. */
static void positionals(const struct opt_cmd *c)
{
    const char *a = c->args ? c->args : "";
    if (strstr(a, "NAME"))
        vm_names();
    if (strstr(a, "DUMP") || strstr(a, "FILE") || strstr(a, "IMAGE") || strstr(a, "VMLINUX"))
        puts("__files__");
}

int cmd_complete(int argc, char **argv)
{
    uint64_t cword;
    if (argc < 3 || !parse_u64(argv[1], &cword) || cword < 1 || cword >= (uint64_t)argc - 2)
        return 2;
    char **words = argv + 2;   /* words[0] is "klab" */
    if (cword == 1) {
        for (size_t i = 0; i < klab_ncommands; i++)
            puts(klab_commands[i].name);
        puts("help");
        return 0;
    }
    if (!strcmp(words[1], "help")) {
        for (size_t i = 0; cword == 2 && i < klab_ncommands; i++)
            puts(klab_commands[i].name);
        return 0;
    }
    const struct klab_command *k = klab_command_find(words[1]);
    if (!k)
        return 0;
    if (!strcmp(k->name, "exam") && cword == 2) {
        puts("run\nstatus\nreset\nstop\ngrade");
        return 0;
    }
    if (!strcmp(k->name, "exam") && strcmp(words[2], "run")) {
        puts("__files__");
        return 0;
    }
    const struct opt *prev = option_named(k->opts, words[cword - 1]);
    if (prev && prev->arg)
        option_values(prev);
    else if (words[cword][0] == '-')
        option_names(k->opts);
    else
        positionals(k->opts);
    return 0;
}
