/* vm/machine/vmcoreinfo.h. */
#define _GNU_SOURCE
#include "machine/vmcoreinfo.h"
#include "machine/kconfig.h"
#include "util/util.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

char *vmcoreinfo_module_dir(const char *kernel, const char **why)
{
    char *copy = strdup(kernel), *dir = dirname(copy);
    char *out = NULL;
    struct kconfig c;
    *why = NULL;
    if (kconfig_load_beside(kernel, &c) != 0) {
        *why = "no kernel config beside the image";
    } else {
        if (kconfig_is_y(&c, "CONFIG_FW_CFG_SYSFS"))
            *why = NULL;   /* built in: nothing to load */
        else if (!kconfig_is_m(&c, "CONFIG_FW_CFG_SYSFS"))
            *why = "the kernel has no CONFIG_FW_CFG_SYSFS";
        else {
            char *ko = xasprintf("%s/modules/fw_cfg/qemu_fw_cfg.ko", dir);
            if (file_exists(ko))
                out = xasprintf("%s/modules/fw_cfg", dir);
            else
                *why = "qemu_fw_cfg.ko is not unpacked beside the kernel (run `make kernels`)";
            free(ko);
        }
        kconfig_free(&c);
    }
    free(copy);
    return out;
}

/* Runs before every other hook (02-): a failure is a line on the console, never a stop of the boot. */
static const char hook_text[] =
    "if [ -f /lib/modules/klab-fw-cfg/qemu_fw_cfg.ko ]; then\n"
    "    insmod /lib/modules/klab-fw-cfg/qemu_fw_cfg.ko 2>/dev/null || echo 'klab: qemu_fw_cfg did not load: dumps "
    "will have no VMCOREINFO'\n"
    "fi\n";

char *vmcoreinfo_hook(const char *run_dir)
{
    char *hook = path_join(run_dir, "vmcoreinfo-hook.sh");
    write_text_file(hook, hook_text);
    return hook;
}
