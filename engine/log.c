/*
 * engine/log.c: the engine's structured log records (style.md 2.8), formatted as logfmt or as
 * one JSON object per line and handed to the sink the embedder set in berth_engine_opts.
 *
 * Design: the library never writes to stdout or stderr. berth_engine_run installs the sink for
 * the length of the run (eng_log_set_sink); with none, records are dropped. A record is
 * formatted completely into one buffer and passed to the sink in one call, so a sink that does
 * one write(2) per call keeps lines whole even when worker threads log at the same time. The
 * sink is read without a lock: it is set before the loop starts any thread and cleared after
 * they have stopped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "engine/internal.h"

static struct {
    berth_log_format format;
    berth_log_fn fn;
    void *payload;
} sink;

void eng_log_set_sink(berth_log_format format, berth_log_fn fn, void *payload)
{
    sink.format = format;
    sink.fn = fn;
    sink.payload = payload;
}

/* "2026-11-22T05:52:32.123Z" */
static void rfc3339_ms(char out[40], int64_t wall_ms)
{
    char sec[32];
    int64_t ms = wall_ms % 1000;

    if (ms < 0)
        ms += 1000;
    core_time_rfc3339(sec, (wall_ms - ms) / 1000);
    sec[strlen(sec) - 1] = '\0'; /* drop the 'Z' */
    snprintf(out, 40, "%s.%03dZ", sec, (int)ms);
}

static int logfmt_value(berth_buf *b, const char *v)
{
    bool quote = !v[0] || strpbrk(v, " =\"\\\t\n\r") != NULL;
    int rc = 0;

    if (!quote)
        return berth_buf_puts(b, v);
    rc |= berth_buf_puts(b, "\"");
    for (; *v && rc == 0; v++) {
        if (*v == '"' || *v == '\\')
            rc |= berth_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            rc |= berth_buf_puts(b, "\\n");
        else if (*v == '\r')
            rc |= berth_buf_puts(b, "\\r");
        else if (*v == '\t')
            rc |= berth_buf_puts(b, "\\t");
        else
            rc |= berth_buf_put(b, v, 1);
    }
    rc |= berth_buf_puts(b, "\"");
    return rc;
}

/* A JSON string of s; bytes of invalid UTF-8 (a registry's error body) become '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    char *t;

    if (j)
        return j;
    if (!(t = core_strdup(s)))
        return NULL;
    for (unsigned char *p = (unsigned char *)t; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(t);
    core_free(t);
    return j;
}

static int set_text(json_t *o, const char *key, const char *v)
{
    return json_object_set_new(o, key, json_text(v));
}

int eng_log_format_line(berth_buf *out, berth_log_format format, int64_t wall_ms, const char *level,
                        const char *event, const char *kind, const char *ns, const char *name,
                        const char *msg)
{
    char ts[40], *obj = NULL;
    int rc = 0;

    rfc3339_ms(ts, wall_ms);
    if (name && !(obj = core_sprintf("%s/%s", ns ? ns : "", name)))
        return BERTH_ENOMEM;
    if (format == BERTH_LOG_JSON) {
        json_t *o = json_object();
        char *text = NULL;
        rc = !o;
        rc = rc || set_text(o, "ts", ts) < 0 || set_text(o, "level", level) < 0 ||
             set_text(o, "event", event) < 0;
        if (!rc && kind)
            rc = set_text(o, "kind", kind) < 0;
        if (!rc && obj)
            rc = set_text(o, "name", obj) < 0 || set_text(o, "namespace", ns ? ns : "") < 0;
        rc = rc || set_text(o, "msg", msg) < 0;
        if (!rc && !(text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)))
            rc = 1;
        if (!rc)
            rc = berth_buf_puts(out, text) < 0 || berth_buf_puts(out, "\n") < 0;
        free(text);
        json_decref(o);
    } else {
        rc |= berth_buf_printf(out, "ts=%s level=", ts) < 0;
        rc |= logfmt_value(out, level) < 0;
        rc |= berth_buf_puts(out, " event=") < 0;
        rc |= logfmt_value(out, event) < 0;
        if (kind) {
            rc |= berth_buf_puts(out, " kind=") < 0;
            rc |= logfmt_value(out, kind) < 0;
        }
        if (obj) {
            rc |= berth_buf_puts(out, " name=") < 0;
            rc |= logfmt_value(out, obj) < 0;
        }
        rc |= berth_buf_puts(out, " msg=") < 0;
        rc |= logfmt_value(out, msg) < 0;
        rc |= berth_buf_puts(out, "\n") < 0;
    }
    core_free(obj);
    return rc ? BERTH_ENOMEM : 0;
}

void eng_log(const char *level, const char *event, const char *kind, const char *ns,
             const char *name, const char *fmt, ...)
{
    berth_log_fn fn = sink.fn;
    berth_buf line = BERTH_BUF_INIT;
    char msg[1024];
    va_list ap;

    if (!fn || (strcmp(level, "debug") == 0 && !getenv("BERTH_DEBUG")))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (eng_log_format_line(&line, sink.format, core_wall_now(), level, event, kind, ns, name,
                            msg) == 0)
        fn(sink.payload, line.ptr, line.len);
    berth_buf_dispose(&line);
}
