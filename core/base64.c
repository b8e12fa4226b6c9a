/* Base64 through libsodium (no hand-written codec). */
#include <sodium.h>
#include <string.h>

#include "core/core.h"

char *core_base64_encode(const void *data, size_t len)
{
    size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = core_malloc(n);
    if (!out)
        return NULL;
    sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

int core_base64_decode(berth_buf *out, const char *text, size_t len, bool url, berth_error **err)
{
    /* Padding is optional: drop it and decode the unpadded variant. */
    while (len > 0 && (text[len - 1] == '=' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == ' '))
        len--;
    size_t cap = len / 4 * 3 + 3;
    unsigned char *bin = core_malloc(cap);
    if (!bin)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    size_t n = 0;
    const char *end = NULL;
    int variant =
        url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    int rc = 0;
    if (sodium_base642bin(bin, cap, text, len, " \r\n\t", &n, &end, variant) != 0 ||
        (end && end != text + len))
        rc = core_error_set(err, BERTH_EINVAL, "invalid base64 text");
    else if (berth_buf_put(out, bin, n) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    sodium_memzero(bin, cap);
    core_free(bin);
    return rc;
}
