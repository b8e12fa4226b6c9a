/*
 * Fuzz target for the simple-signing payload (sign/simple.c). Any bytes either fail to parse
 * with an error and leave nothing allocated, or give a digest claim. The same bytes used as a
 * docker reference either are refused (not UTF-8, empty) or build a payload that parses back to
 * that reference and digest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sign/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char digest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sign_simple_claims c;
    berth_error *err = NULL;
    berth_buf payload = BERTH_BUF_INIT;
    char *ref;

    if (sign_simple_payload_parse(&c, data, size, &err) < 0) {
        if (!err || !berth_error_message(err)[0] || c.digest || c.docker_reference)
            abort();
        berth_error_free(err);
        err = NULL;
    } else {
        if (err || !c.digest)
            abort();
        sign_simple_claims_dispose(&c);
    }

    if (!(ref = malloc(size + 1)))
        return 0;
    memcpy(ref, data, size);
    ref[size] = '\0';
    if (berth_sign_simple_payload(&payload, ref, digest, &err) < 0) {
        if (!err || (strlen(ref) > 0 && berth_error_code(err) != BERTH_EINVAL &&
                     berth_error_code(err) != BERTH_ENOMEM))
            abort();
        berth_error_free(err);
    } else {
        if (sign_simple_payload_parse(&c, payload.ptr, payload.len, &err) < 0) {
            /* only the size limit may refuse what we built */
            if (payload.len <= 64u * 1024u)
                abort();
            berth_error_free(err);
        } else {
            if (strcmp(c.digest, digest) != 0 || !c.docker_reference ||
                strcmp(c.docker_reference, ref) != 0)
                abort();
            sign_simple_claims_dispose(&c);
        }
    }
    berth_buf_dispose(&payload);
    free(ref);
    return 0;
}
