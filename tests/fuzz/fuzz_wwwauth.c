/*
 * Fuzz target for the WWW-Authenticate parser (oci/auth.c): any header either fails with
 * BERTH_EINVAL and a message, or yields challenges whose schemes and parameter names are
 * non-empty lowercase tokens and whose values are strings without NUL bytes.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lower_token(const char *s)
{
    if (!s || !*s)
        abort();
    for (; *s; s++)
        if (isupper((unsigned char)*s) || *s == ' ' || *s == '"' || *s == ',' || *s == '=')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    oci_challenge *ch = NULL;
    size_t n = 0;
    berth_error *err = NULL;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int rc = oci_wwwauth_parse(&ch, &n, text, &err);
    if (rc < 0) {
        if (rc != BERTH_EINVAL && rc != BERTH_ENOMEM)
            abort();
        if (!err || !berth_error_message(err)[0] || ch || n)
            abort();
        berth_error_free(err);
        free(text);
        return 0;
    }
    if (err || n == 0 || n > OCI_CHALLENGES_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        check_lower_token(ch[i].scheme);
        if (ch[i].params_len > OCI_AUTH_PARAMS_MAX)
            abort();
        for (size_t j = 0; j < ch[i].params_len; j++) {
            check_lower_token(ch[i].params[j].name);
            if (!ch[i].params[j].value)
                abort();
            if (oci_challenge_param(&ch[i], ch[i].params[j].name) == NULL)
                abort();
        }
    }
    oci_challenges_free(ch, n);
    free(text);
    return 0;
}
