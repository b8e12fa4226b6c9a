/*
 * Fuzz target for encrypted cosign.key files (sign/keys.c). The first byte picks a mode:
 *   0, 1  parse the key file, then open its secretbox with a fixed 32-byte key (FUZZ_KEY, so
 *         seeds made with that key reach the PKCS#8 parser without scrypt's cost);
 *   2     the rest is a decrypted plaintext for the PKCS#8 parser;
 *   3     the full public loader with the fixed password "berth-fuzz" (scrypt runs for inputs
 *         that pass every cheap check, so this mode is slow by design).
 * Any input either fails with an error and no key, or gives a key that can sign.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sign/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_BYTE 0x42

static void check(int rc, berth_sign_privkey *k, berth_error *err)
{
    berth_buf sig = BERTH_BUF_INIT;
    if (rc < 0) {
        if (!err || k || !berth_error_message(err)[0])
            abort();
        berth_error_free(err);
        return;
    }
    if (err || !k || berth_sign_privkey_sign(&sig, k, "x", 1, &err) < 0)
        abort();
    berth_buf_dispose(&sig);
    berth_sign_privkey_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    unsigned char key[32];
    sign_enckey parsed;
    int rc;

    if (size < 1 || sodium_init() < 0)
        return 0;
    memset(key, FUZZ_BYTE, sizeof(key));
    switch (data[0] & 3) {
    case 0:
    case 1:
        if ((rc = sign_enckey_parse(&parsed, "fuzz.key", data + 1, size - 1, &err)) < 0) {
            if (!err || parsed.ciphertext)
                abort();
            berth_error_free(err);
            return 0;
        }
        if (parsed.ciphertext_len <= 16 || parsed.salt_len == 0)
            abort();
        rc = sign_enckey_open(&k, "fuzz.key", &parsed, key, &err);
        sign_enckey_dispose(&parsed);
        check(rc, k, err);
        break;
    case 2:
        rc = sign_privkey_from_pkcs8(&k, "fuzz.der", data + 1, size - 1, &err);
        check(rc, k, err);
        break;
    default:
        rc = berth_sign_privkey_load_pem(&k, "fuzz.key", data + 1, size - 1, "berth-fuzz", &err);
        check(rc, k, err);
        break;
    }
    return 0;
}
