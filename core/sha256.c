/* Streaming sha256 over OpenSSL EVP (SHA-NI where the CPU has it). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

struct core_sha256 {
    EVP_MD_CTX *ctx;
};

int core_sha256_new(core_sha256 **out, berth_error **err)
{
    core_sha256 *h = core_calloc(1, sizeof(*h));
    if (!h)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        core_sha256_free(h);
        return core_error_set(err, BERTH_ERROR, "sha256: cannot initialise digest");
    }
    *out = h;
    return 0;
}

int core_sha256_update(core_sha256 *h, const void *data, size_t len)
{
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : BERTH_ERROR;
}

static void to_hex(char *out, const unsigned char *md, unsigned int n)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

int core_sha256_final_hex(core_sha256 *h, char hex[CORE_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
        return BERTH_ERROR;
    to_hex(hex, md, n);
    return 0;
}

void core_sha256_free(core_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    core_free(h);
}

void core_sha256_digest(char out[72], const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    memcpy(out, "sha256:", 7);
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        out[7] = '\0';
        return;
    }
    to_hex(out + 7, md, n);
}
