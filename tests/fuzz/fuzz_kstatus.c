/*
 * Fuzz target for engine/kstatus.c: the bytes are parsed as JSON (as an API server's answer
 * would be) and, when they parse, the object's kstatus is computed. Whatever the input: the call
 * returns 0, BERTH_EINVAL (only for a non-object or an object without a string kind) or
 * BERTH_ENOMEM; on 0 the status is one of the six and the message is not NULL; on an error the
 * status is Unknown and an error is set. The corpus (testdata/fuzz/kstatus/) is seeded with the
 * objects of the table tests (testdata/kstatus/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "engine/kstatus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    eng_kstatus st = ENG_KSTATUS_CURRENT;
    berth_error *err = NULL;
    char *msg = NULL;
    const json_t *kind;
    int rc;
    if (!obj)
        return 0;
    rc = eng_kstatus_compute(&st, &msg, obj, &err);
    kind = json_object_get(obj, "kind");
    if (rc == 0) {
        if (!msg || err || st > ENG_KSTATUS_UNKNOWN || st == ENG_KSTATUS_NOT_FOUND)
            abort();
        if (!json_is_object(obj) || !json_string_value(kind) || !*json_string_value(kind))
            abort();
        if (!eng_kstatus_name(st)[0])
            abort();
    } else {
        if ((rc != BERTH_EINVAL && rc != BERTH_ENOMEM) || msg || !err || st != ENG_KSTATUS_UNKNOWN)
            abort();
        if (rc == BERTH_EINVAL && json_is_object(obj) && json_string_value(kind) &&
            *json_string_value(kind))
            abort();
    }
    core_free(msg);
    berth_error_free(err);
    json_decref(obj);
    return 0;
}
