/* The /init every klab initramfs starts with. */
#ifndef KLAB_INIT_SCRIPT_H
#define KLAB_INIT_SCRIPT_H
extern const char klab_init_script[];
/* The banner /init prints once the guest is up; tests and `klab boot --wait-banner` look for it. */
#define KLAB_INIT_BANNER "klab: init ready, kernel "
/* The line /init prints as it starts the shell: a snapshot is taken once the shell's prompt follows it. */
#define KLAB_SHELL_MARK "klab: starting the shell"
#endif
