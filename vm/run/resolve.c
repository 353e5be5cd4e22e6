/* resolve_vm_name() (run/runstate.h): which running VM a command means. */
#define _GNU_SOURCE
#include "run/runstate.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

char *resolve_vm_name(const char *given)
{
    if (runstate_check_root(false) < 0)
        return NULL;
    size_t n;
    char **names = runstate_list(&n, true);
    char *found = NULL;
    if (given) {
        for (size_t i = 0; i < n && !found; i++)
            if (!strcmp(names[i], given))
                found = strdup(given);
        if (!found)
            klab_error("no running VM named '%s'%s", given, n ? " (see klab status)" : "");
    } else if (n == 1) {
        found = strdup(names[0]);
    } else if (n == 0) {
        klab_error("no VM is running (start one with `make vm-x86`, `make vm-arm` or klab boot)");
    } else {
        klab_error("%zu VMs are running; name one (see klab status)", n);
    }
    runstate_free_list(names, n);
    return found;
}
