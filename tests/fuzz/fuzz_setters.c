/*
 * Fuzz target for images/setters.c. The input is a YAML stream rewritten with a fixed set of
 * policies. Any input either fails with a message and no output, or yields output that equals
 * the input when nothing changed, holds every new value, and is a fixed point: a second pass
 * succeeds, changes nothing and returns the same bytes (so a rewrite never breaks the YAML or
 * moves a marker away from its scalar).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/setters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const img_policy_result policies[] = {
    {"flux-system", "app", "ghcr.io/acme/app", "1.4.2", NULL},
    {"flux-system", "num", "reg.example.com/job", "20240101", NULL},
    {"apps", "float", "reg.example.com/calc", "1.10", NULL},
    {"apps", "signed", "reg.example.com/api", "2.0.0", "sha256:0123abcd"},
    {"apps", "odd", "reg.example.com/o d", "x: #y, [z]", NULL},
};

static bool contains(const berth_buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->ptr + i, s, n) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t n = sizeof(policies) / sizeof(policies[0]);
    berth_buf out, again;
    img_setter_report rep, rep2;
    berth_error *err = NULL;

    if (size > 64 * 1024)
        return 0;
    berth_buf_init(&out, 0);
    berth_buf_init(&again, 0);
    img_setter_report_init(&rep);
    img_setter_report_init(&rep2);
    if (img_setters_apply(&out, (const char *)data, size, policies, n, &rep, &err) < 0) {
        if (!err || !berth_error_message(err)[0] || out.len != 0 || rep.n_changes != 0)
            abort();
        berth_error_free(err);
        return 0;
    }
    if (rep.n_changes == 0 && (out.len != size || (size && memcmp(out.ptr, data, size) != 0)))
        abort();
    for (size_t i = 0; i < rep.n_changes; i++) {
        if (rep.changes[i].policy >= n || strchr(rep.changes[i].new_value, '\n'))
            abort();
        if (!contains(&out, rep.changes[i].new_value))
            abort(); /* no policy value needs escaping, so it appears as is in any style */
    }
    if (img_setters_apply(&again, out.ptr ? out.ptr : "", out.len, policies, n, &rep2, &err) < 0)
        abort(); /* the rewrite produced text that is no longer YAML */
    if (rep2.n_changes != 0 || again.len != out.len ||
        (out.len && memcmp(again.ptr, out.ptr, out.len) != 0))
        abort();
    img_setter_report_dispose(&rep);
    img_setter_report_dispose(&rep2);
    berth_buf_dispose(&out);
    berth_buf_dispose(&again);
    return 0;
}
