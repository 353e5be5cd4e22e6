#include "init_script.h"

/* Runs as PID 1 from the initramfs. Busybox applet links are made here, in the guest, because the arm64
 * busybox cannot run on the host to list its applets. /proc must be mounted first: `--install` resolves its
 * own path through /proc/self/exe. The shell runs under `setsid cttyhack` so that the console is its
 * controlling terminal (job control, ^C). When it exits the guest powers off and QEMU ends. */
const char klab_init_script[] =
    "#!/bin/busybox sh\n"
    "# klab /init (written by `klab rootfs`)\n"
    "/bin/busybox mount -t proc proc /proc\n"
    "/bin/busybox --install -s\n"
    "export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root\n"
    "mount -t sysfs sysfs /sys\n"
    "mount -t devtmpfs devtmpfs /dev 2>/dev/null\n"
    "mkdir -p /dev/pts /sys/kernel/debug\n"
    "mount -t devpts devpts /dev/pts\n"
    "mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || echo 'klab: no debugfs in this kernel'\n"
    "mount -t tmpfs tmpfs /tmp\n"
    "hostname klab\n"
    "echo \"" KLAB_INIT_BANNER "$(uname -r) ($(uname -m))\"\n"
    "for hook in /etc/klab.d/*.sh; do\n"
    "    [ -f \"$hook\" ] || continue\n"
    "    echo \"klab: running $hook\"\n"
    "    sh \"$hook\"\n"
    "done\n"
    "cd /root\n"
    "echo '" KLAB_SHELL_MARK "'\n"
    "setsid cttyhack sh -l\n"
    "echo 'klab: shell exited, powering off'\n"
    "poweroff -f\n";
