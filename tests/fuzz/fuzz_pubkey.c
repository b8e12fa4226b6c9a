/*
 * Fuzz target for the PEM/DER public key loader (sign/keys.c): any bytes either fail with an
 * error, or give a supported key whose fingerprint is 44 characters and whose PEM form loads
 * back to the same fingerprint and type.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <berth/sign.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    berth_sign_pubkey *k = NULL, *again = NULL;
    berth_error *err = NULL;
    berth_buf pem = BERTH_BUF_INIT;

    if (berth_sign_pubkey_load_pem(&k, "fuzz.pub", data, size, &err) < 0) {
        if (!err || k || !berth_error_message(err)[0])
            abort();
        berth_error_free(err);
        return 0;
    }
    if (err || !k || strlen(berth_sign_pubkey_fingerprint(k)) != BERTH_SIGN_FINGERPRINT_LEN ||
        !berth_sign_pubkey_type(k))
        abort();
    if (berth_sign_pubkey_pem(&pem, k, &err) < 0 ||
        berth_sign_pubkey_load_pem(&again, "again.pub", pem.ptr, pem.len, &err) < 0 ||
        strcmp(berth_sign_pubkey_fingerprint(k), berth_sign_pubkey_fingerprint(again)) != 0 ||
        strcmp(berth_sign_pubkey_type(k), berth_sign_pubkey_type(again)) != 0)
        abort();
    berth_buf_dispose(&pem);
    berth_sign_pubkey_free(again);
    berth_sign_pubkey_free(k);
    return 0;
}
