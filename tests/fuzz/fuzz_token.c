/*
 * Fuzz target for token server replies (oci/auth.c): any reply either fails with an error, or
 * gives a non-empty token and an expiry at least 60 s after the start it was counted from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const berth_unix_ms now = 1700000000000LL;
    oci_token t;
    berth_error *err = NULL;

    int rc = oci_token_parse(&t, data, size, now, &err);
    if (rc < 0) {
        if (!err || !berth_error_message(err)[0] || t.token || t.refresh_token)
            abort();
        berth_error_free(err);
        return 0;
    }
    if (err || !t.token || !t.token[0] || t.expires_in_s < 60)
        abort();
    if (t.expires_at > now + t.expires_in_s * 1000 || t.expires_at <= now - t.expires_in_s * 1000)
        abort();
    oci_token_dispose(&t);
    return 0;
}
