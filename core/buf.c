/* Growable byte buffers with a hard ceiling (see include/berth/buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void berth_buf_init(berth_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void berth_buf_dispose(berth_buf *b)
{
    if (!b)
        return;
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

static int grow(berth_buf *b, size_t extra)
{
    size_t need;
    if (!core_size_add(&need, b->len, extra) || !core_size_add(&need, need, 1))
        return BERTH_ENOMEM;
    if (b->max && need - 1 > b->max)
        return BERTH_EINVAL;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->ptr, cap);
    if (!p)
        return BERTH_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int berth_buf_put(berth_buf *b, const void *data, size_t len)
{
    int rc = grow(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int berth_buf_puts(berth_buf *b, const char *s)
{
    return berth_buf_put(b, s, strlen(s));
}

int berth_buf_vprintf(berth_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BERTH_EINVAL;
    int rc = grow(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int berth_buf_printf(berth_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = berth_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void berth_buf_clear(berth_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *berth_buf_detach(berth_buf *b)
{
    char *p = b->ptr;
    if (!p)
        p = calloc(1, 1);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
