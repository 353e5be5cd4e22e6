/* libFuzzer target: the text files klab reads that another party may have written — a VM's run state, an
 * exam room file, a task's checks, QEMU's monitor answers — parsed from arbitrary bytes. Each parser must either accept or refuse
 * with a message, never read out of bounds, leak or crash. */
#define _GNU_SOURCE
#include "exam/checks.h"
#include "exam/room.h"
#include "machine/kimage.h"
#include "run/dump.h"
#include "run/dump_vaddr.h"
#include "run/runstate.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512];

    struct runstate rs = { 0 };
    rs.name = strdup("fuzz");
    rs.dir = strdup("/nonexistent/fuzz");
    char *copy = strdup(text);
    if (runstate_parse(copy, &rs) == 0)
        runstate_free(&rs);
    free(copy);

    struct room room;
    if (room_parse(text, "/nonexistent/room.conf", &room, err, sizeof err) == 0)
        room_free(&room);

    char status[32];
    double pct;
    (void)dump_parse_info(text, status, sizeof status, &pct);   /* QEMU's `info dump` answer */
    struct dump_pgd_view pv;
    (void)dump_plan_pgd_view(text, size, 183, &pv, err, sizeof err);   /* a dump's VMCOREINFO */
    struct dump_info di;
    (void)dump_inspect_buffer(data, size, NULL, 0, size, &di, err, sizeof err);   /* a dump someone sent */

    uint32_t entry;
    (void)elf_pvh_entry(data, size, &entry, err, sizeof err);   /* a vmlinux the user named */

    struct task_checks t;
    if (checks_parse(text, "/nonexistent/checks", &t, err, sizeof err) == 0)
        checks_free(&t);
    free(text);
    return 0;
}
