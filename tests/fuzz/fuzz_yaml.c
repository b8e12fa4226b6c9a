/*
 * Fuzz target for engine/yaml.c. The first byte picks the parse flags, the rest is YAML. Any
 * input either fails with a message and nothing allocated, or parses into documents that the
 * emitter writes out and that read back as the same trees (with the same flags, marks
 * aside). Post-build substitution relies on that round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags = size ? (data[0] & 7u) : 0;
    const char *text = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    json_t *docs = NULL, *again = NULL;
    berth_error *err = NULL;
    berth_buf out;

    if (eng_yaml_parse(&docs, text, len, flags, "fuzz", &err) < 0) {
        if (!err || !berth_error_message(err)[0] || docs)
            abort();
        berth_error_free(err);
        return 0;
    }
    berth_buf_init(&out, 0);
    if (eng_yaml_emit(&out, docs, &err) < 0)
        abort(); /* everything the parser returns can be written */
    if (eng_yaml_parse(&again, out.ptr ? out.ptr : "", out.len, flags & ~ENG_YAML_TEXT_SCALARS,
                       "again", &err) < 0)
        abort();
    /* a mark's style may change when libyaml can not write it (a tab in single quotes) */
    if (eng_yaml_unmark(docs) < 0 || eng_yaml_unmark(again) < 0)
        abort();
    if ((flags & ENG_YAML_TEXT_SCALARS) == 0 && !json_equal(docs, again))
        abort();
    if (json_array_size(docs) != json_array_size(again))
        abort();
    json_decref(again);
    json_decref(docs);
    berth_buf_dispose(&out);
    return 0;
}
