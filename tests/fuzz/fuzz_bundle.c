/*
 * Fuzz target for Sigstore bundle JSON (sign/bundle.c, sign/tlog.c): the structural parser must
 * either fail with an error and leave nothing allocated, or give one decoded signature; full
 * verification with a fixed trusted key and log key either succeeds with the key named, or fails
 * with BERTH_EVERIFY and a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sign/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only keys (testdata/keys/fuzz-signer.pub, fuzz-log.pub): the seeds are signed with
 * their private halves, so valid bundles and tlog promises reach every check. */
static const char signer_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEForxGiBF+Pww+nqd5m50BnGA72OM\n"
    "mKQJeS1QJmm0+uHU49cAOOoJ+WTcDAB490xL6UQGMzVPtuVcIWpoB24bNQ==\n"
    "-----END PUBLIC KEY-----\n";
static const char log_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAER2i+GrJKyn8HSnGPur/7TOO6bzn8\n"
                              "DXvLC5p3LrDcZpXtdJbDh71A2S/W7DNyxiOAe5WdQPfgf5ixrCJEpsoh3g==\n"
                              "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static berth_sign_pubkey *signer, *log_key;
    berth_sign_verify_opts opts = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    sign_bundle b;
    int rc;

    if (!signer &&
        (berth_sign_pubkey_load_pem(&signer, "signer.pub", signer_pem, strlen(signer_pem), NULL) <
             0 ||
         berth_sign_pubkey_load_pem(&log_key, "log.pub", log_pem, strlen(log_pem), NULL) < 0))
        abort();
    if (sign_bundle_parse(&b, data, size, &err) < 0) {
        if (!err || b.hint || b.tlog || b.payload.ptr || b.sig.ptr)
            abort();
        berth_error_free(err);
        err = NULL;
    } else {
        if (err || b.sig.len == 0 || (b.dsse && !b.payload_type) || b.n_tlog > 32)
            abort();
        sign_bundle_dispose(&b);
    }
    opts.keys = (const berth_sign_pubkey *const *)&signer;
    opts.n_keys = 1;
    opts.tlog_keys = (const berth_sign_pubkey *const *)&log_key;
    opts.n_tlog_keys = 1;
    rc = berth_sign_bundle_verify(
        &res, &opts, data, size,
        "sha256:d7d5640c741c60b47fa4b5530daa20a6469b55754a89dd42adbadadb59f9093c", &err);
    if (rc == 0) {
        if (!res.ok || strcmp(res.key_name, "signer.pub") != 0 || err)
            abort();
    } else if (rc != BERTH_EVERIFY || res.ok || !res.reason[0] || !err) {
        abort();
    }
    berth_error_free(err);
    return 0;
}
