/*
 * The signature primitives of spec 2.3, over OpenSSL 3 EVP (ECDSA, RSA, pure Ed25519) and
 * libsodium (Ed25519ph, which OpenSSL 3.0 lacks).
 *
 * Design: verification is lenient only where cosign versions disagree (open questions Q1, Q2):
 * an Ed25519 key accepts pure Ed25519 then Ed25519ph; a P-384/P-521 key accepts its curve's hash
 * then SHA-256; an RSA key accepts PKCS#1 v1.5 then PSS. Signing always uses what current cosign
 * writes. Each call uses its own contexts, so keys can be shared by threads.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "core/core.h"
#include "sign/internal.h"

/* Verify sig over a digest made with md. */
static bool verify_hash(EVP_PKEY *pkey, sign_key_kind kind, const EVP_MD *md,
                        const unsigned char *hash, size_t hash_len, const unsigned char *sig,
                        size_t sig_len, bool pss)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    bool ok = false;

    if (!ctx)
        goto out;
    if (EVP_PKEY_verify_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
        goto out;
    if (kind == SIGN_KEY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0)
            goto out;
        if (pss && EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) <= 0)
            goto out;
    }
    ok = EVP_PKEY_verify(ctx, sig, sig_len, hash, hash_len) == 1;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static bool verify_with_md(const berth_sign_pubkey *key, const EVP_MD *md, const void *msg,
                           size_t len, const unsigned char *sig, size_t sig_len)
{
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hash_len = 0;

    if (!EVP_Digest(msg, len, hash, &hash_len, md, NULL)) {
        ERR_clear_error();
        return false;
    }
    if (verify_hash(key->pkey, key->info.kind, md, hash, hash_len, sig, sig_len, false))
        return true;
    return key->info.kind == SIGN_KEY_RSA &&
           verify_hash(key->pkey, key->info.kind, md, hash, hash_len, sig, sig_len, true);
}

static bool verify_ed25519(const berth_sign_pubkey *key, const void *msg, size_t len,
                           const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    size_t pk_len = sizeof(pk);
    crypto_sign_state st;
    bool ok = false;

    if (sig_len != crypto_sign_BYTES)
        goto out;
    /* pure Ed25519: what `cosign verify --key` and Flux load */
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1) {
        ok = true;
        goto out;
    }
    /* Ed25519ph (SHA-512 pre-hash, empty context): what cosign signs images with */
    if (EVP_PKEY_get_raw_public_key(key->pkey, pk, &pk_len) != 1 || pk_len != sizeof(pk))
        goto out;
    crypto_sign_init(&st);
    crypto_sign_update(&st, msg, len);
    ok = crypto_sign_final_verify(&st, sig, pk) == 0;
out:
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

bool sign_verify_message(const berth_sign_pubkey *key, const void *msg, size_t len,
                         const unsigned char *sig, size_t sig_len)
{
    if (!msg)
        msg = "";
    if (sig_len == 0)
        return false;
    switch (key->info.kind) {
    case SIGN_KEY_ED25519:
        return verify_ed25519(key, msg, len, sig, sig_len);
    case SIGN_KEY_EC:
        if (verify_with_md(key, key->info.md, msg, len, sig, sig_len))
            return true;
        /* older cosign and Flux hash every curve with SHA-256 */
        return EVP_MD_get_size(key->info.md) != 32 &&
               verify_with_md(key, EVP_sha256(), msg, len, sig, sig_len);
    case SIGN_KEY_RSA:
        return verify_with_md(key, EVP_sha256(), msg, len, sig, sig_len);
    }
    return false;
}

int sign_verify_sha256(const berth_sign_pubkey *key, const unsigned char hash[32],
                       const unsigned char *sig, size_t sig_len)
{
    if (key->info.kind == SIGN_KEY_ED25519)
        return BERTH_EUNSUPPORTED;
    if (sig_len == 0)
        return 0;
    if (verify_hash(key->pkey, key->info.kind, EVP_sha256(), hash, 32, sig, sig_len, false))
        return 1;
    return key->info.kind == SIGN_KEY_RSA &&
           verify_hash(key->pkey, key->info.kind, EVP_sha256(), hash, 32, sig, sig_len, true);
}

int sign_sign_message(berth_buf *out, const berth_sign_privkey *key, const void *msg, size_t len,
                      berth_error **err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int rc = 0;

    if (!ctx)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (EVP_DigestSignInit(ctx, &pctx, key->info.md, NULL, key->pkey) != 1 ||
        (key->info.kind == SIGN_KEY_RSA &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) ||
        EVP_DigestSign(ctx, NULL, &sig_len, msg, len) != 1) {
        rc = core_error_set(err, BERTH_ERROR, "\"%s\": signing failed", key->name);
        goto out;
    }
    if (!(sig = core_malloc(sig_len))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSign(ctx, sig, &sig_len, msg, len) != 1) {
        rc = core_error_set(err, BERTH_ERROR, "\"%s\": signing failed", key->name);
        goto out;
    }
    if (berth_buf_put(out, sig, sig_len) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    core_free(sig);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
