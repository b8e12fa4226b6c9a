/*
 * Error chains (style.md 2.4). Each link holds a code, a bounded message and its cause. Running
 * out of memory while building an error yields a static node, so no failure is ever lost.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ERR_MSG_MAX 256

struct berth_error {
    int code;
    char msg[ERR_MSG_MAX];
    berth_error *cause;
    bool is_static; /* the out-of-memory node: never freed */
};

static berth_error oom_error = {BERTH_ENOMEM, "out of memory", NULL, true};

static void format_msg(char *dst, const char *fmt, va_list ap) BERTH_PRINTF(2, 0);
static void format_msg(char *dst, const char *fmt, va_list ap)
{
    int n = vsnprintf(dst, ERR_MSG_MAX, fmt, ap);
    if (n >= ERR_MSG_MAX)
        memcpy(dst + ERR_MSG_MAX - 4, "...", 4); /* mark the cut */
}

static int push_link(berth_error **err, int code, const char *fmt, va_list ap) BERTH_PRINTF(3, 0);
static int push_link(berth_error **err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    berth_error *e = calloc(1, sizeof(*e));
    if (!e) {
        /* Keep the original chain; the OOM node can only be a head with no cause. */
        if (!*err)
            *err = &oom_error;
        return code;
    }
    e->code = code;
    format_msg(e->msg, fmt, ap);
    e->cause = *err;
    *err = e;
    return code;
}

int core_error_set(berth_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_link(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int core_error_errno(berth_error **err, int errnum, const char *fmt, ...)
{
    char head[ERR_MSG_MAX];
    int code = BERTH_EIO;
    va_list ap;
    if (errnum == ENOENT || errnum == ENOTDIR)
        code = BERTH_ENOTFOUND;
    else if (errnum == EACCES || errnum == EPERM)
        code = BERTH_EDENIED;
    else if (errnum == ENOMEM)
        code = BERTH_ENOMEM;
    va_start(ap, fmt);
    format_msg(head, fmt, ap);
    va_end(ap);
    return core_error_set(err, code, "%s: %s", head, strerror(errnum));
}

int core_error_wrap(berth_error **err, const char *fmt, ...)
{
    int code = (err && *err) ? (*err)->code : BERTH_ERROR;
    va_list ap;
    va_start(ap, fmt);
    push_link(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int berth_error_code(const berth_error *e)
{
    return e ? e->code : BERTH_OK;
}

const char *berth_error_message(const berth_error *e)
{
    return e ? e->msg : "";
}

const berth_error *berth_error_cause(const berth_error *e)
{
    return e ? e->cause : NULL;
}

int berth_error_render(const berth_error *e, berth_buf *out)
{
    int rc = 0;
    for (const berth_error *l = e; l && rc == 0; l = l->cause) {
        if (l != e)
            rc = berth_buf_puts(out, ": ");
        if (rc == 0)
            rc = berth_buf_puts(out, l->msg);
    }
    return rc;
}

char *berth_error_text(const berth_error *e)
{
    berth_buf b = BERTH_BUF_INIT;
    if (berth_error_render(e, &b) < 0) {
        berth_buf_dispose(&b);
        return NULL;
    }
    return berth_buf_detach(&b);
}

bool berth_error_is_transient(const berth_error *e)
{
    int code = berth_error_code(e);
    return code == BERTH_ENET || code == BERTH_ETIMEOUT;
}

const char *berth_code_name(int code)
{
    switch (code) {
    case BERTH_OK:
        return "OK";
    case BERTH_ERROR:
        return "ERROR";
    case BERTH_ENOMEM:
        return "ENOMEM";
    case BERTH_EINVAL:
        return "EINVAL";
    case BERTH_ENOTFOUND:
        return "ENOTFOUND";
    case BERTH_EAUTH:
        return "EAUTH";
    case BERTH_EDENIED:
        return "EDENIED";
    case BERTH_EVERIFY:
        return "EVERIFY";
    case BERTH_ETIMEOUT:
        return "ETIMEOUT";
    case BERTH_ENET:
        return "ENET";
    case BERTH_ECONFLICT:
        return "ECONFLICT";
    case BERTH_EIO:
        return "EIO";
    case BERTH_EUNSUPPORTED:
        return "EUNSUPPORTED";
    case BERTH_ECANCELED:
        return "ECANCELED";
    default:
        return "UNKNOWN";
    }
}

void berth_error_free(berth_error *e)
{
    while (e) {
        berth_error *next = e->cause;
        if (!e->is_static)
            free(e);
        e = next;
    }
}
