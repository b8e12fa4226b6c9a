/*
 * engine/kstatus.c: placeholder kstatus (generic rules only): deletionTimestamp is Terminating,
 * a Ready condition decides, anything else is Current. The full computation (engine.md §4.2)
 * replaces this file.
 */
#include "engine/kstatus.h"

#include <string.h>

#include "core/core.h"

const char *eng_kstatus_name(eng_kstatus s)
{
    switch (s) {
    case ENG_KSTATUS_CURRENT:
        return "Current";
    case ENG_KSTATUS_IN_PROGRESS:
        return "InProgress";
    case ENG_KSTATUS_FAILED:
        return "Failed";
    case ENG_KSTATUS_TERMINATING:
        return "Terminating";
    case ENG_KSTATUS_NOT_FOUND:
        return "NotFound";
    case ENG_KSTATUS_UNKNOWN:
        return "Unknown";
    }
    return "Unknown";
}

int eng_kstatus_compute(eng_kstatus *out, char **msg_out, const json_t *obj, berth_error **err)
{
    const json_t *conds;
    size_t i;
    json_t *c;

    (void)err;
    BERTH_ARG_CHECK(out);
    if (msg_out)
        *msg_out = NULL;
    if (!obj) {
        *out = ENG_KSTATUS_NOT_FOUND;
        return 0;
    }
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")) {
        *out = ENG_KSTATUS_TERMINATING;
        return 0;
    }
    *out = ENG_KSTATUS_CURRENT;
    conds = json_object_get(json_object_get(obj, "status"), "conditions");
    json_array_foreach(conds, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *st = json_string_value(json_object_get(c, "status"));
        if (type && st && strcmp(type, "Ready") == 0) {
            *out = strcmp(st, "True") == 0 ? ENG_KSTATUS_CURRENT : ENG_KSTATUS_IN_PROGRESS;
            if (*out != ENG_KSTATUS_CURRENT && msg_out)
                *msg_out = core_strdup("Ready condition is not True");
        }
    }
    return 0;
}
