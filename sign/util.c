/*
 * Small helpers of the signing module: digest strings, hex, Go-compatible JSON strings, base64,
 * and the fixed-size result the verify functions fill.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "sign/internal.h"

int sign_digest_parse(char hex[65], const char *digest, berth_error **err)
{
    if (!digest || !core_str_has_prefix(digest, "sha256:") || strlen(digest) != 7 + 64)
        goto bad;
    for (size_t i = 0; i < 64; i++) {
        char c = digest[7 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            goto bad;
    }
    memcpy(hex, digest + 7, 64);
    hex[64] = '\0';
    return 0;
bad:
    return core_error_set(err, BERTH_EINVAL, "invalid digest \"%.80s\": want sha256:<64 hex>",
                          digest ? digest : "");
}

void sign_hex(char *out, const unsigned char *bin, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 0xf];
    }
    out[2 * len] = '\0';
}

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
            return 0; /* overlong or surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

/*
 * Go's encoding/json with its default HTML escaping: '"' and '\\' escaped, \n \r \t short,
 * other control characters and < > & as \u00xx, U+2028 and U+2029 as \u2028 / \u2029.
 */
int sign_json_go_string(berth_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = berth_buf_put(out, "\"", 1);
    while (rc == 0 && *p) {
        size_t n = utf8_len(p);
        if (n == 0)
            return BERTH_EINVAL;
        if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            rc = berth_buf_printf(out, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
        } else if (n > 1) {
            rc = berth_buf_put(out, p, n);
        } else if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            rc = berth_buf_put(out, esc, 2);
        } else if (*p == '\n') {
            rc = berth_buf_puts(out, "\\n");
        } else if (*p == '\r') {
            rc = berth_buf_puts(out, "\\r");
        } else if (*p == '\t') {
            rc = berth_buf_puts(out, "\\t");
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            rc = berth_buf_printf(out, "\\u00%02x", *p);
        } else {
            rc = berth_buf_put(out, p, 1);
        }
        p += n;
    }
    if (rc == 0)
        rc = berth_buf_put(out, "\"", 1);
    return rc;
}

int sign_b64_decode(berth_buf *out, const char *text, size_t len, berth_error **err)
{
    size_t data = 0, pad = 0, decoded;

    /* Go's StdEncoding, which wrote every value we read: the standard alphabet, CR and LF
     * skipped anywhere, at most two '=' and only at the end, whole quanta when padded. Padding
     * may also be absent (core_base64_decode accepts both). An empty value is not a value. */
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (pad == 0 && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            data++;
        } else {
            return core_error_set(err, BERTH_EINVAL, "invalid base64 character at offset %zu", i);
        }
    }
    if (data == 0 || data % 4 == 1 || pad > 2 || (pad && (data + pad) % 4 != 0))
        return core_error_set(err, BERTH_EINVAL, "invalid base64 length or padding");
    /* the exact decoded size, so an oversized value is EINVAL here, not a failed append */
    decoded = data / 4 * 3 + (data % 4 == 3 ? 2 : data % 4 == 2 ? 1 : 0);
    if (out->max && decoded > out->max - out->len)
        return core_error_set(err, BERTH_EINVAL, "base64 value of %zu bytes is too large", decoded);
    return core_base64_decode(out, text, len, false, err);
}

void sign_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0)
        return;
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void sign_result_reset(berth_sign_result *r, const char *format)
{
    memset(r, 0, sizeof(*r));
    sign_strlcpy(r->format, format, sizeof(r->format));
}

void sign_reason_add(berth_sign_result *r, const char *fmt, ...)
{
    size_t cap = sizeof(r->reason);
    size_t used = strlen(r->reason);
    va_list ap;
    int n;

    if (used + 1 >= cap)
        return;
    if (used > 0) {
        n = snprintf(r->reason + used, cap - used, "; ");
        used += (size_t)(n > 0 ? n : 0);
        if (used + 1 >= cap)
            used = cap - 1;
    }
    va_start(ap, fmt);
    n = vsnprintf(r->reason + used, cap - used, fmt, ap);
    va_end(ap);
    if (n > 0 && used + (size_t)n >= cap)
        memcpy(r->reason + cap - 4, "...", 4);
}

int sign_opts_check(const berth_sign_verify_opts *opts, berth_error **err)
{
    if (!opts || opts->version != BERTH_SIGN_VERIFY_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "unsupported verify options version %u",
                              opts ? opts->version : 0u);
    if ((opts->n_keys && !opts->keys) || (opts->n_tlog_keys && !opts->tlog_keys))
        return core_error_set(err, BERTH_EINVAL, "verify options: key array missing");
    for (size_t i = 0; i < opts->n_keys; i++) {
        if (!opts->keys[i])
            return core_error_set(err, BERTH_EINVAL, "verify options: key %zu is NULL", i);
    }
    for (size_t i = 0; i < opts->n_tlog_keys; i++) {
        if (!opts->tlog_keys[i])
            return core_error_set(err, BERTH_EINVAL, "verify options: tlog key %zu is NULL", i);
    }
    return 0;
}

int berth_sign_verify_opts_init(berth_sign_verify_opts *opts, unsigned int version)
{
    if (!opts || version != BERTH_SIGN_VERIFY_OPTS_VERSION)
        return BERTH_EINVAL;
    berth_sign_verify_opts def = BERTH_SIGN_VERIFY_OPTS_INIT;
    *opts = def;
    return 0;
}

int sign_verify_failed(berth_sign_result *r, const char *what, const char *digest,
                       berth_error **err)
{
    r->ok = false;
    r->key_name[0] = '\0';
    r->key_fingerprint[0] = '\0';
    r->identity[0] = '\0';
    r->tlog_verified = false;
    r->tlog_integrated_time = 0;
    if (!r->reason[0])
        sign_strlcpy(r->reason, "no signature verified", sizeof(r->reason));
    return core_error_set(err, BERTH_EVERIFY, "%s \"%s\" not verified: %s", what, digest,
                          r->reason);
}
