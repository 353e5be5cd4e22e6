/* libklab's one error convention (klab.h, struct klab_error), inside the library. */
#ifndef LIBKLAB_ERROR_INTERNAL_H
#define LIBKLAB_ERROR_INTERNAL_H

#include "klab.h"

#include <stddef.h>

/* The message buffer of a struct klab_error * (NULL: nowhere), as the snprintf-style pair the code below
 * writes into: `KLAB_ERROR_BUF(error);` declares err and errlen. */
#define KLAB_ERROR_BUF(e)                                                                                     \
    char *err = (e) ? (e)->msg : NULL;                                                                      \
    size_t errlen = (e) ? sizeof (e)->msg : 0;                                                               \
    if (err)                                                                                                  \
        err[0] = '\0'

#endif
