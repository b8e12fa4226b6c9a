/*
 * Unit tests for engine/log.c: the logfmt and JSON line formats of `berth run --log-format`, and
 * the sink contract (one call per whole line, nothing without a sink).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/core.h"
#include "engine/internal.h"

/* 2026-11-22T05:52:32.042Z */
#define T_MS ((int64_t)1795326752042)

static json_t *parse_line(const berth_buf *b)
{
    json_error_t je;
    json_t *j;

    assert_non_null(b->ptr);
    assert_true(b->len > 1);
    assert_int_equal(b->ptr[b->len - 1], '\n');
    assert_null(memchr(b->ptr, '\n', b->len - 1)); /* one line */
    j = json_loadb(b->ptr, b->len, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, b->ptr);
    return j;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void json_line_has_every_field(void **state)
{
    berth_buf b = BERTH_BUF_INIT;
    json_t *j;

    (void)state;
    assert_int_equal(eng_log_format_line(&b, BERTH_LOG_JSON, T_MS, "info", "stored",
                                         "OCIRepository", "flux-system", "app",
                                         "stored artifact 'v1@sha256:ab'"),
                     0);
    j = parse_line(&b);
    assert_string_equal(str(j, "ts"), "2026-11-22T05:52:32.042Z");
    assert_string_equal(str(j, "level"), "info");
    assert_string_equal(str(j, "event"), "stored");
    assert_string_equal(str(j, "kind"), "OCIRepository");
    assert_string_equal(str(j, "name"), "flux-system/app");
    assert_string_equal(str(j, "namespace"), "flux-system");
    assert_string_equal(str(j, "msg"), "stored artifact 'v1@sha256:ab'");
    assert_int_equal(json_object_size(j), 7);
    json_decref(j);
    berth_buf_dispose(&b);
}

static void json_line_escapes_and_drops_absent_object(void **state)
{
    berth_buf b = BERTH_BUF_INIT;
    const char msg[] = "a \"quoted\"\nsecond line\tand \\ and bad \xff byte";
    json_t *j;

    (void)state;
    assert_int_equal(
        eng_log_format_line(&b, BERTH_LOG_JSON, 999, "error", "start", NULL, NULL, NULL, msg), 0);
    j = parse_line(&b);
    assert_string_equal(str(j, "ts"), "1970-01-01T00:00:00.999Z");
    assert_null(json_object_get(j, "kind"));
    assert_null(json_object_get(j, "name"));
    assert_string_equal(str(j, "msg"), "a \"quoted\"\nsecond line\tand \\ and bad ? byte");
    json_decref(j);
    berth_buf_dispose(&b);
}

static void logfmt_line_quotes_what_needs_it(void **state)
{
    berth_buf b = BERTH_BUF_INIT;

    (void)state;
    assert_int_equal(eng_log_format_line(&b, BERTH_LOG_LOGFMT, T_MS, "info", "drift",
                                         "Kustomization", "default", "web",
                                         "1 object(s) \"changed\"\nout of band"),
                     0);
    assert_string_equal(b.ptr, "ts=2026-11-22T05:52:32.042Z level=info event=drift "
                               "kind=Kustomization name=default/web "
                               "msg=\"1 object(s) \\\"changed\\\"\\nout of band\"\n");
    berth_buf_clear(&b);
    assert_int_equal(
        eng_log_format_line(&b, BERTH_LOG_LOGFMT, T_MS, "warn", "x", NULL, NULL, NULL, ""), 0);
    assert_string_equal(b.ptr, "ts=2026-11-22T05:52:32.042Z level=warn event=x msg=\"\"\n");
    berth_buf_dispose(&b);
}

typedef struct captured {
    int calls;
    char last[2048];
} captured;

static void capture(void *payload, const char *line, size_t len)
{
    captured *c = payload;
    c->calls++;
    assert_true(len < sizeof(c->last));
    assert_int_equal(line[len], '\0');
    memcpy(c->last, line, len + 1);
}

static void sink_gets_one_call_per_line_and_none_without_sink(void **state)
{
    captured c = {0};
    json_t *j;
    json_error_t je;

    (void)state;
    eng_log("info", "nobody", NULL, NULL, NULL, "dropped"); /* no sink: nothing, no crash */
    eng_log_set_sink(BERTH_LOG_JSON, capture, &c);
    eng_log("error", "ReadOperationFailed", "OCIRepository", "ns", "n", "failed: %d tags", 3);
    assert_int_equal(c.calls, 1);
    j = json_loads(c.last, 0, &je);
    assert_non_null(j);
    assert_string_equal(str(j, "msg"), "failed: 3 tags");
    assert_string_equal(str(j, "level"), "error");
    json_decref(j);
    eng_log_set_sink(BERTH_LOG_LOGFMT, NULL, NULL);
    eng_log("info", "nobody", NULL, NULL, NULL, "dropped again");
    assert_int_equal(c.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_has_every_field),
        cmocka_unit_test(json_line_escapes_and_drops_absent_object),
        cmocka_unit_test(logfmt_line_quotes_what_needs_it),
        cmocka_unit_test(sink_gets_one_call_per_line_and_none_without_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
