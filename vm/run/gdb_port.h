/* The gdb stub's TCP port on 127.0.0.1. */
#ifndef KLAB_GDB_PORT_H
#define KLAB_GDB_PORT_H

#include <stdbool.h>

#define KLAB_DEFAULT_GDB_PORT 1234

bool port_is_free(int port);                 /* nothing listens on 127.0.0.1:port (and we may bind it) */
/* preferred if free, else the next free one, reserved against other klab boots for this process's life;
 * -1 if none. */
int pick_free_port(int preferred);
bool reserve_port(int port);                 /* port_is_free and reserved as above */

#endif
