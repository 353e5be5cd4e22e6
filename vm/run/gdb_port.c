#define _GNU_SOURCE
#include "run/gdb_port.h"

#include "util/private_dir.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

bool port_is_free(int port)
{
    if (port <= 0 || port > 65535)
        return false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    /* Same options as QEMU's listener (SO_REUSEADDR), so a port in TIME_WAIT counts as free for both. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Between klab choosing a port and QEMU binding it, another klab boot could choose the same one (a room of
 * VMs starting together did). A lock per port, held for the life of the process that boots the VM (the
 * supervisor inherits it across the fork of --detach; QEMU does not), closes that window for klab's own
 * boots. The locks live in a private folder of the user's (/dev/shm/klab-locks-UID, vm/util/private_dir.h):
 * another user can neither hold them (locks anyone could take let one user block every boot on the
 * machine) nor plant files there. Between users the bind test alone decides; a folder that is not private
 * is not used, and that is no failure either. */
static bool lock_port(int port)
{
    static int dir_fd = -2;
    if (dir_fd == -2) {
        char *dir = xasprintf("/dev/shm/klab-locks-%u", (unsigned)getuid());
        char err[512];
        dir_fd = private_dir_open(dir, true, err, sizeof err);
        free(dir);
    }
    if (dir_fd < 0)
        return true;   /* no private place for locks: the bind test alone */
    char name[64];
    snprintf(name, sizeof name, "gdb-port-%d.lock", port);
    int fd = openat(dir_fd, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return true;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return true;   /* fd stays open on purpose: the lock lasts as long as this process */
    close(fd);
    return false;
}

bool reserve_port(int port)
{
    return port_is_free(port) && lock_port(port);
}

int pick_free_port(int preferred)
{
    for (int p = preferred; p < preferred + 1000 && p <= 65535; p++)
        if (port_is_free(p) && lock_port(p))
            return p;
    return -1;
}
