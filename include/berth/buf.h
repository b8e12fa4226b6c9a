/* A growable byte buffer with a hard ceiling (curl's dynbuf idea). */
#ifndef BERTH_BUF_H
#define BERTH_BUF_H

#include <stdarg.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Caller-owned buffer. `ptr` is always NUL-terminated when non-NULL (the NUL is not counted in
 * `len`). Growing past `max` (0 = unlimited) fails with BERTH_EINVAL and leaves it unchanged.
 */
typedef struct berth_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* ceiling in bytes; 0 = none */
} berth_buf;

#define BERTH_BUF_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/** Set up an empty buffer with a ceiling (0 = none). Allocates nothing. */
BERTH_EXTERN void berth_buf_init(berth_buf *b, size_t max);
/** Free the memory and reset to empty. Accepts NULL. */
BERTH_EXTERN void berth_buf_dispose(berth_buf *b);
/** Append bytes. Returns 0, BERTH_ENOMEM or BERTH_EINVAL (ceiling). */
BERTH_EXTERN int berth_buf_put(berth_buf *b, const void *data, size_t len);
/** Append a NUL-terminated string. */
BERTH_EXTERN int berth_buf_puts(berth_buf *b, const char *s);
/** Append formatted text. */
BERTH_EXTERN int berth_buf_printf(berth_buf *b, const char *fmt, ...) BERTH_PRINTF(2, 3);
BERTH_EXTERN int berth_buf_vprintf(berth_buf *b, const char *fmt, va_list ap) BERTH_PRINTF(2, 0);
/** Drop the contents but keep the memory. */
BERTH_EXTERN void berth_buf_clear(berth_buf *b);
/** Hand the memory to the caller (free with free()); the buffer becomes empty. Never NULL
 * unless out of memory: an empty buffer gives "". */
BERTH_EXTERN char *berth_buf_detach(berth_buf *b);

#ifdef __cplusplus
}
#endif
#endif
