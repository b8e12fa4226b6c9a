/*
 * Key material in cosign's formats (spec 2.1, 2.2): PEM public keys with their fingerprint, the
 * encrypted cosign.key (scrypt + nacl/secretbox around PKCS#8 DER), and key-pair generation.
 *
 * Design: parsing of an encrypted key is split in three steps so each can be tested and fuzzed
 * alone: sign_enckey_parse (PEM, JSON, whitelisted scrypt costs: all cheap checks before any
 * scrypt), the scrypt derivation, and sign_enckey_open (secretbox, PKCS#8). Every secret - the
 * derived key, the plaintext DER - lives in sodium_malloc memory and is wiped by sodium_free;
 * the password is only read. OpenSSL keeps the parsed private key and clears it on free.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "core/core.h"
#include "sign/internal.h"

#define LABEL_SIGSTORE "ENCRYPTED SIGSTORE PRIVATE KEY"
#define LABEL_COSIGN "ENCRYPTED COSIGN PRIVATE KEY"
#define SCRYPT_KEY_LEN 32u

/* ---------------------------------------------------------------- PEM */

/* The first PEM block of data: its label and decoded body (OPENSSL_free both). */
static int pem_first(char **label, unsigned char **body, long *body_len, const void *data,
                     size_t len, const char *what, berth_error **err)
{
    BIO *bio = NULL;
    char *header = NULL;
    int rc = 0;

    *label = NULL;
    *body = NULL;
    *body_len = 0;
    if (len > SIGN_MAX_KEY_FILE)
        return core_error_set(err, BERTH_EINVAL, "\"%s\": larger than %u bytes", what,
                              SIGN_MAX_KEY_FILE);
    if (!(bio = BIO_new_mem_buf(len ? data : "", (int)len)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (!PEM_read_bio(bio, label, &header, body, body_len)) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": no PEM block found", what);
        goto out;
    }
    if (header && header[0]) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": PEM headers are not supported", what);
        goto out;
    }
out:
    if (rc < 0) {
        OPENSSL_free(*label);
        OPENSSL_clear_free(*body, *body && *body_len > 0 ? (size_t)*body_len : 0);
        *label = NULL;
        *body = NULL;
        *body_len = 0;
    }
    OPENSSL_free(header);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int sign_pem_encode(berth_buf *out, const char *label, const void *der, size_t len)
{
    char *b64 = core_base64_encode(der, len);
    size_t n;
    int rc;

    if (!b64)
        return BERTH_ENOMEM;
    n = strlen(b64);
    rc = berth_buf_printf(out, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; rc == 0 && i < n; i += 64) {
        rc = berth_buf_put(out, b64 + i, n - i < 64 ? n - i : 64);
        if (rc == 0)
            rc = berth_buf_put(out, "\n", 1);
    }
    if (rc == 0)
        rc = berth_buf_printf(out, "-----END %s-----\n", label);
    core_free(b64);
    return rc;
}

/* ---------------------------------------------------------------- key types */

int sign_keyinfo_get(sign_keyinfo *out, EVP_PKEY *pkey, const char *what, berth_error **err)
{
    memset(out, 0, sizeof(*out));
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[80];
        size_t glen = 0;
        if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen))
            group[0] = '\0';
        ERR_clear_error();
        out->kind = SIGN_KEY_EC;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            out->type = "ecdsa-p256";
            out->md = EVP_sha256();
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            out->type = "ecdsa-p384";
            out->md = EVP_sha384();
        } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            out->type = "ecdsa-p521";
            out->md = EVP_sha512();
        } else {
            return core_error_set(err, BERTH_EINVAL,
                                  "\"%s\": unsupported elliptic curve \"%s\" (want P-256, P-384 or "
                                  "P-521)",
                                  what, group[0] ? group : "explicit parameters");
        }
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        out->kind = SIGN_KEY_RSA;
        out->md = EVP_sha256();
        if (bits == 2048)
            out->type = "rsa-2048";
        else if (bits == 3072)
            out->type = "rsa-3072";
        else if (bits == 4096)
            out->type = "rsa-4096";
        else
            return core_error_set(err, BERTH_EINVAL,
                                  "\"%s\": unsupported RSA key size %d (want 2048, 3072 or 4096)",
                                  what, bits);
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        out->kind = SIGN_KEY_ED25519;
        out->type = "ed25519";
        out->md = NULL;
        return 0;
    }
    return core_error_set(err, BERTH_EINVAL,
                          "\"%s\": unsupported key type \"%s\" (want ECDSA, RSA or Ed25519)", what,
                          EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
}

int sign_spki_der(berth_buf *out, EVP_PKEY *pkey, berth_error **err)
{
    int n = i2d_PUBKEY(pkey, NULL);
    unsigned char *der = NULL, *p;
    int rc;

    if (n <= 0) {
        ERR_clear_error();
        return core_error_set(err, BERTH_ERROR, "encoding a public key failed");
    }
    if (!(der = core_malloc((size_t)n)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    p = der;
    if (i2d_PUBKEY(pkey, &p) != n) {
        ERR_clear_error();
        core_free(der);
        return core_error_set(err, BERTH_ERROR, "encoding a public key failed");
    }
    rc = berth_buf_put(out, der, (size_t)n);
    core_free(der);
    return rc < 0 ? core_error_set(err, BERTH_ENOMEM, "out of memory") : 0;
}

/* base64 and hex of SHA-256(DER SPKI). */
static int key_ids(char fp[BERTH_SIGN_FINGERPRINT_LEN + 1], char log_id[65], EVP_PKEY *pkey,
                   berth_error **err)
{
    berth_buf der = BERTH_BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *b64 = NULL;
    int rc;

    if ((rc = sign_spki_der(&der, pkey, err)) < 0)
        goto out;
    if (!EVP_Digest(der.ptr, der.len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        ERR_clear_error();
        rc = core_error_set(err, BERTH_ERROR, "hashing a public key failed");
        goto out;
    }
    if (!(b64 = core_base64_encode(md, 32))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    sign_strlcpy(fp, b64, BERTH_SIGN_FINGERPRINT_LEN + 1);
    if (log_id)
        sign_hex(log_id, md, 32);
out:
    core_free(b64);
    berth_buf_dispose(&der);
    return rc;
}

/* ---------------------------------------------------------------- public keys */

int sign_pubkey_from_evp(berth_sign_pubkey **out, EVP_PKEY *pkey, const char *name,
                         berth_error **err)
{
    berth_sign_pubkey *k = core_calloc(1, sizeof(*k));
    int rc;

    *out = NULL;
    if (!k) {
        EVP_PKEY_free(pkey);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    k->pkey = pkey;
    if (!(k->name = core_strdup(name))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = sign_keyinfo_get(&k->info, pkey, name, err)) < 0)
        goto out;
    rc = key_ids(k->fingerprint, k->log_id, pkey, err);
out:
    if (rc < 0)
        berth_sign_pubkey_free(k);
    else
        *out = k;
    return rc;
}

int berth_sign_pubkey_load_pem(berth_sign_pubkey **out, const char *name, const void *pem,
                               size_t len, berth_error **err)
{
    const char *what = name ? name : "public key";
    char *label = NULL;
    unsigned char *body = NULL;
    const unsigned char *p;
    long body_len = 0;
    EVP_PKEY *pkey = NULL;
    int rc;

    BERTH_ARG_CHECK(out && (pem || len == 0));
    *out = NULL;
    if ((rc = pem_first(&label, &body, &body_len, pem, len, what, err)) < 0)
        return rc;
    p = body;
    if (strcmp(label, "PUBLIC KEY") == 0) {
        pkey = d2i_PUBKEY(NULL, &p, body_len);
    } else if (strcmp(label, "RSA PUBLIC KEY") == 0) {
        pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, body_len);
    } else {
        rc =
            core_error_set(err, BERTH_EINVAL,
                           "\"%s\": unsupported PEM type \"%.40s\" (want PUBLIC KEY)", what, label);
        goto out;
    }
    if (!pkey || p != body + body_len) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": invalid %s", what, label);
        goto out;
    }
    rc = sign_pubkey_from_evp(out, pkey, what, err);
    pkey = NULL; /* taken */
out:
    EVP_PKEY_free(pkey);
    OPENSSL_free(label);
    OPENSSL_free(body);
    ERR_clear_error();
    return rc;
}

/* The last path component, for key names. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

int berth_sign_pubkey_load_file(berth_sign_pubkey **out, const char *path, berth_error **err)
{
    berth_buf data = BERTH_BUF_INIT;
    int rc;

    BERTH_ARG_CHECK(out && path);
    *out = NULL;
    if ((rc = core_fs_read_file(&data, path, SIGN_MAX_KEY_FILE, err)) < 0)
        goto out;
    if ((rc = berth_sign_pubkey_load_pem(out, base_name(path), data.ptr, data.len, err)) < 0)
        core_error_wrap(err, "loading public key \"%s\"", path);
out:
    berth_buf_dispose(&data);
    return rc;
}

void berth_sign_pubkey_free(berth_sign_pubkey *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    core_free(key->name);
    core_free(key);
}

const char *berth_sign_pubkey_name(const berth_sign_pubkey *key)
{
    return key ? key->name : NULL;
}

const char *berth_sign_pubkey_fingerprint(const berth_sign_pubkey *key)
{
    return key ? key->fingerprint : NULL;
}

const char *berth_sign_pubkey_type(const berth_sign_pubkey *key)
{
    return key ? key->info.type : NULL;
}

int berth_sign_pubkey_pem(berth_buf *out, const berth_sign_pubkey *key, berth_error **err)
{
    berth_buf der = BERTH_BUF_INIT;
    int rc;

    BERTH_ARG_CHECK(out && key);
    if ((rc = sign_spki_der(&der, key->pkey, err)) == 0 &&
        sign_pem_encode(out, "PUBLIC KEY", der.ptr, der.len) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    berth_buf_dispose(&der);
    return rc;
}

/* ---------------------------------------------------------------- private keys */

static int privkey_wrap(berth_sign_privkey **out, EVP_PKEY *pkey, const char *name,
                        berth_error **err)
{
    berth_sign_privkey *k = core_calloc(1, sizeof(*k));
    int rc;

    *out = NULL;
    if (!k) {
        EVP_PKEY_free(pkey);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    k->pkey = pkey;
    if (!(k->name = core_strdup(name))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    rc = sign_keyinfo_get(&k->info, pkey, name, err);
out:
    if (rc < 0)
        berth_sign_privkey_free(k);
    else
        *out = k;
    return rc;
}

int sign_privkey_from_pkcs8(berth_sign_privkey **out, const char *name, const unsigned char *der,
                            size_t len, berth_error **err)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = 0;

    *out = NULL;
    if (len == 0 || len > SIGN_MAX_KEY_FILE)
        return core_error_set(err, BERTH_EINVAL, "\"%s\": invalid private key size %zu", name, len);
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (!p8 || p != der + len) {
        /* cosign (x509.ParsePKCS8PrivateKey) refuses SEC1 and PKCS#1 plaintexts: say so when
         * that is what we got, since decryption itself worked. */
        const unsigned char *q = der;
        EVP_PKEY *other = d2i_AutoPrivateKey(NULL, &q, (long)len);
        if (other)
            rc = core_error_set(err, BERTH_EINVAL,
                                "\"%s\": the decrypted key is not PKCS#8 (a SEC1 or PKCS#1 key, "
                                "which cosign refuses too)",
                                name);
        else
            rc = core_error_set(err, BERTH_EINVAL, "\"%s\": the decrypted key is not PKCS#8 DER",
                                name);
        EVP_PKEY_free(other);
        goto out;
    }
    if (!(pkey = EVP_PKCS82PKEY(p8))) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": unsupported or invalid PKCS#8 key", name);
        goto out;
    }
    rc = privkey_wrap(out, pkey, name, err);
out:
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets */
    ERR_clear_error();
    return rc;
}

int sign_privkey_load_plain_pem(berth_sign_privkey **out, const char *name, const void *pem,
                                size_t len, berth_error **err)
{
    char *label = NULL;
    unsigned char *body = NULL;
    long body_len = 0;
    int rc;

    *out = NULL;
    if ((rc = pem_first(&label, &body, &body_len, pem, len, name, err)) < 0)
        return rc;
    if (strcmp(label, "PRIVATE KEY") != 0)
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": unsupported PEM type \"%.40s\"", name,
                            label);
    else
        rc = sign_privkey_from_pkcs8(out, name, body, (size_t)body_len, err);
    OPENSSL_free(label);
    OPENSSL_clear_free(body, (size_t)body_len);
    return rc;
}

/* A base64 JSON member decoded into exactly want bytes (want 0: between 1 and max). */
static int json_b64_member(berth_buf *out, json_t *obj, const char *key, size_t want, size_t max,
                           const char *what, berth_error **err)
{
    json_t *v = json_object_get(obj, key);
    berth_error *sub = NULL;
    size_t limit = want ? want : max;
    if (!json_is_string(v))
        return core_error_set(err, BERTH_EINVAL, "\"%s\": \"%s\" is missing or not a string", what,
                              key);
    if (json_string_length(v) > (limit / 3 + 1) * 4 + 8 ||
        sign_b64_decode(out, json_string_value(v), json_string_length(v), &sub) < 0) {
        berth_error_free(sub); /* the message below says all */
        return core_error_set(err, BERTH_EINVAL, "\"%s\": \"%s\" is not valid base64", what, key);
    }
    if ((want && out->len != want) || (!want && (out->len == 0 || out->len > max)))
        return core_error_set(err, BERTH_EINVAL, "\"%s\": \"%s\" has %zu bytes", what, key,
                              out->len);
    return 0;
}

void sign_enckey_dispose(sign_enckey *k)
{
    if (!k)
        return;
    core_free(k->ciphertext);
    memset(k, 0, sizeof(*k));
}

int sign_enckey_parse(sign_enckey *out, const char *name, const void *pem, size_t len,
                      berth_error **err)
{
    char *label = NULL;
    unsigned char *body = NULL;
    long body_len = 0;
    json_t *root = NULL, *kdf, *params, *cipher, *jn, *jr, *jp;
    json_error_t jerr;
    berth_buf salt = BERTH_BUF_INIT, nonce = BERTH_BUF_INIT, ct = BERTH_BUF_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pem_first(&label, &body, &body_len, pem, len, name, err)) < 0)
        return rc;
    if (strcmp(label, LABEL_SIGSTORE) != 0 && strcmp(label, LABEL_COSIGN) != 0) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "\"%s\": unsupported PEM type \"%.40s\" (want " LABEL_SIGSTORE ")",
                            name, label);
        goto out;
    }
    if (!(root = json_loadb((const char *)body, (size_t)body_len, JSON_REJECT_DUPLICATES, &jerr)) ||
        !json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": the key is not a JSON object", name);
        goto out;
    }
    kdf = json_object_get(root, "kdf");
    params = json_object_get(kdf, "params");
    cipher = json_object_get(root, "cipher");
    if (!json_is_object(kdf) || !json_is_object(params) || !json_is_object(cipher)) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": the key has no kdf or cipher", name);
        goto out;
    }
    if (!json_is_string(json_object_get(kdf, "name")) ||
        strcmp(json_string_value(json_object_get(kdf, "name")), "scrypt") != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": unsupported kdf (want scrypt)", name);
        goto out;
    }
    if (!json_is_string(json_object_get(cipher, "name")) ||
        strcmp(json_string_value(json_object_get(cipher, "name")), "nacl/secretbox") != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": unsupported cipher (want nacl/secretbox)",
                            name);
        goto out;
    }
    jn = json_object_get(params, "N");
    jr = json_object_get(params, "r");
    jp = json_object_get(params, "p");
    /* Only cosign's three cost settings (go-securesystemslib): a tampered file must not be able
     * to ask for an arbitrary amount of memory or time. */
    if (!json_is_integer(jn) || !json_is_integer(jr) || !json_is_integer(jp) ||
        (json_integer_value(jn) != 32768 && json_integer_value(jn) != 65536 &&
         json_integer_value(jn) != 131072) ||
        json_integer_value(jr) != 8 || json_integer_value(jp) != 1) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "\"%s\": unsupported scrypt parameters (want N 32768, 65536 or 131072, "
                            "r 8, p 1)",
                            name);
        goto out;
    }
    out->n = (uint64_t)json_integer_value(jn);
    out->r = 8;
    out->p = 1;
    if ((rc = json_b64_member(&salt, kdf, "salt", 0, sizeof(out->salt), name, err)) < 0 ||
        (rc = json_b64_member(&nonce, cipher, "nonce", sizeof(out->nonce), 0, name, err)) < 0 ||
        (rc = json_b64_member(&ct, root, "ciphertext", 0, SIGN_MAX_KEY_FILE, name, err)) < 0)
        goto out;
    if (ct.len <= crypto_secretbox_MACBYTES) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\": the ciphertext is too short", name);
        goto out;
    }
    memcpy(out->salt, salt.ptr, salt.len);
    out->salt_len = salt.len;
    memcpy(out->nonce, nonce.ptr, sizeof(out->nonce));
    out->ciphertext_len = ct.len;
    out->ciphertext = (unsigned char *)berth_buf_detach(&ct);
    if (!out->ciphertext)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    if (rc < 0)
        sign_enckey_dispose(out);
    json_decref(root);
    berth_buf_dispose(&salt);
    berth_buf_dispose(&nonce);
    berth_buf_dispose(&ct);
    OPENSSL_free(label);
    OPENSSL_free(body);
    return rc;
}

int sign_enckey_open(berth_sign_privkey **out, const char *name, const sign_enckey *k,
                     const unsigned char key[32], berth_error **err)
{
    size_t plain_len = k->ciphertext_len - crypto_secretbox_MACBYTES;
    unsigned char *plain = sodium_malloc(plain_len);
    int rc;

    *out = NULL;
    if (!plain)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (crypto_secretbox_open_easy(plain, k->ciphertext, k->ciphertext_len, k->nonce, key) != 0) {
        /* NaCl has no separate password check: a failed MAC is the wrong password (or a
         * damaged file). */
        rc = core_error_set(err, BERTH_EAUTH, "\"%s\": decryption failed (wrong password?)", name);
        goto out;
    }
    rc = sign_privkey_from_pkcs8(out, name, plain, plain_len, err);
out:
    sodium_free(plain); /* wipes */
    return rc;
}

int berth_sign_privkey_load_pem(berth_sign_privkey **out, const char *name, const void *pem,
                                size_t len, const char *password, berth_error **err)
{
    const char *what = name ? name : "key";
    sign_enckey k;
    unsigned char *derived = NULL;
    int rc;

    BERTH_ARG_CHECK(out && password && (pem || len == 0));
    *out = NULL;
    if (sodium_init() < 0)
        return core_error_set(err, BERTH_ERROR, "initialising libsodium failed");
    if ((rc = sign_enckey_parse(&k, what, pem, len, err)) < 0)
        return rc;
    if (!(derived = sodium_malloc(SCRYPT_KEY_LEN))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (crypto_pwhash_scryptsalsa208sha256_ll((const uint8_t *)password, strlen(password), k.salt,
                                              k.salt_len, k.n, k.r, k.p, derived,
                                              SCRYPT_KEY_LEN) != 0) {
        rc =
            core_error_set(err, BERTH_ENOMEM, "\"%s\": scrypt failed (N=%llu needs %llu MiB)", what,
                           (unsigned long long)k.n, (unsigned long long)(128ull * k.r * k.n >> 20));
        goto out;
    }
    rc = sign_enckey_open(out, what, &k, derived, err);
out:
    sodium_free(derived);
    sign_enckey_dispose(&k);
    return rc;
}

int berth_sign_privkey_load_file(berth_sign_privkey **out, const char *path, const char *password,
                                 berth_error **err)
{
    berth_buf data = BERTH_BUF_INIT;
    int rc;

    BERTH_ARG_CHECK(out && path && password);
    *out = NULL;
    if ((rc = core_fs_read_file(&data, path, SIGN_MAX_KEY_FILE, err)) < 0)
        goto out;
    rc = berth_sign_privkey_load_pem(out, path, data.ptr, data.len, password, err);
out:
    berth_buf_dispose(&data);
    return rc;
}

void berth_sign_privkey_free(berth_sign_privkey *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    core_free(key->name);
    core_free(key);
}

int berth_sign_privkey_public_pem(berth_buf *out, const berth_sign_privkey *key, berth_error **err)
{
    berth_buf der = BERTH_BUF_INIT;
    int rc;

    BERTH_ARG_CHECK(out && key);
    if ((rc = sign_spki_der(&der, key->pkey, err)) == 0 &&
        sign_pem_encode(out, "PUBLIC KEY", der.ptr, der.len) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    berth_buf_dispose(&der);
    return rc;
}

int berth_sign_privkey_public(berth_sign_pubkey **out, const berth_sign_privkey *key,
                              berth_error **err)
{
    berth_buf der = BERTH_BUF_INIT;
    const unsigned char *p;
    EVP_PKEY *pub;
    int rc;

    BERTH_ARG_CHECK(out && key);
    *out = NULL;
    /* Through DER so the public object holds no private material. */
    if ((rc = sign_spki_der(&der, key->pkey, err)) < 0)
        goto out;
    p = (const unsigned char *)der.ptr;
    if (!(pub = d2i_PUBKEY(NULL, &p, (long)der.len))) {
        ERR_clear_error();
        rc =
            core_error_set(err, BERTH_ERROR, "\"%s\": extracting the public key failed", key->name);
        goto out;
    }
    rc = sign_pubkey_from_evp(out, pub, key->name, err);
out:
    berth_buf_dispose(&der);
    return rc;
}

int berth_sign_privkey_sign(berth_buf *out, const berth_sign_privkey *key, const void *data,
                            size_t len, berth_error **err)
{
    berth_buf sig = BERTH_BUF_INIT;
    char *b64 = NULL;
    int rc;

    BERTH_ARG_CHECK(out && key && (data || len == 0));
    if ((rc = sign_sign_message(&sig, key, len ? data : "", len, err)) < 0)
        goto out;
    if (!(b64 = core_base64_encode(sig.ptr, sig.len)) || berth_buf_puts(out, b64) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    core_free(b64);
    berth_buf_dispose(&sig);
    return rc;
}

/* ---------------------------------------------------------------- writing keys */

int sign_privkey_encrypt_pem(berth_buf *out, const berth_sign_privkey *key, const char *password,
                             uint64_t scrypt_n, berth_error **err)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *plain = NULL, *derived = NULL, *ct = NULL, *q;
    unsigned char salt[32], nonce[crypto_secretbox_NONCEBYTES];
    char *salt_b64 = NULL, *nonce_b64 = NULL, *ct_b64 = NULL;
    berth_buf json = BERTH_BUF_INIT;
    int der_len = 0, rc = 0;

    if (sodium_init() < 0)
        return core_error_set(err, BERTH_ERROR, "initialising libsodium failed");
    if (!(p8 = EVP_PKEY2PKCS8(key->pkey)) || (der_len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL)) <= 0) {
        rc = core_error_set(err, BERTH_ERROR, "encoding the private key as PKCS#8 failed");
        goto out;
    }
    if (!(plain = sodium_malloc((size_t)der_len)) || !(derived = sodium_malloc(SCRYPT_KEY_LEN)) ||
        !(ct = core_malloc((size_t)der_len + crypto_secretbox_MACBYTES))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    q = plain;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &q) != der_len) {
        rc = core_error_set(err, BERTH_ERROR, "encoding the private key as PKCS#8 failed");
        goto out;
    }
    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(nonce, sizeof(nonce));
    if (crypto_pwhash_scryptsalsa208sha256_ll((const uint8_t *)password, strlen(password), salt,
                                              sizeof(salt), scrypt_n, 8, 1, derived,
                                              SCRYPT_KEY_LEN) != 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "scrypt failed");
        goto out;
    }
    crypto_secretbox_easy(ct, plain, (unsigned long long)der_len, nonce, derived);
    if (!(salt_b64 = core_base64_encode(salt, sizeof(salt))) ||
        !(nonce_b64 = core_base64_encode(nonce, sizeof(nonce))) ||
        !(ct_b64 = core_base64_encode(ct, (size_t)der_len + crypto_secretbox_MACBYTES))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    /* Field order as cosign writes it (go-securesystemslib's struct order). */
    if (berth_buf_printf(
            &json,
            "{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":%llu,\"r\":8,\"p\":1},"
            "\"salt\":\"%s\"},\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\"%s\"}"
            ",\"ciphertext\":\"%s\"}",
            (unsigned long long)scrypt_n, salt_b64, nonce_b64, ct_b64) < 0 ||
        sign_pem_encode(out, LABEL_SIGSTORE, json.ptr, json.len) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    ERR_clear_error();
    PKCS8_PRIV_KEY_INFO_free(p8);
    sodium_free(plain);
    sodium_free(derived);
    core_free(ct);
    core_free(salt_b64);
    core_free(nonce_b64);
    core_free(ct_b64);
    berth_buf_dispose(&json);
    return rc;
}

int berth_sign_key_pair_generate(berth_buf *key_pem, berth_buf *pub_pem, const char *password,
                                 berth_error **err)
{
    berth_sign_privkey *key = NULL;
    EVP_PKEY *pkey;
    int rc;

    BERTH_ARG_CHECK(key_pem && pub_pem && password);
    if (!(pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
        ERR_clear_error();
        return core_error_set(err, BERTH_ERROR, "generating an ECDSA P-256 key failed");
    }
    if ((rc = privkey_wrap(&key, pkey, "cosign.key", err)) < 0)
        return rc;
    if ((rc = sign_privkey_encrypt_pem(key_pem, key, password, 65536, err)) == 0)
        rc = berth_sign_privkey_public_pem(pub_pem, key, err);
    berth_sign_privkey_free(key);
    return rc;
}

int berth_sign_key_pair_write(const char *prefix, const char *password, bool force,
                              berth_error **err)
{
    char *key_path = NULL, *pub_path = NULL;
    berth_buf key_pem = BERTH_BUF_INIT, pub_pem = BERTH_BUF_INIT;
    int rc = 0;

    BERTH_ARG_CHECK(prefix && password);
    if (!prefix[0])
        return core_error_set(err, BERTH_EINVAL, "empty key file prefix");
    if (!(key_path = core_sprintf("%s.key", prefix)) ||
        !(pub_path = core_sprintf("%s.pub", prefix))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!force) {
        const char *exists = core_fs_exists(key_path)   ? key_path
                             : core_fs_exists(pub_path) ? pub_path
                                                        : NULL;
        if (exists) {
            rc = core_error_set(err, BERTH_ECONFLICT, "\"%s\" already exists", exists);
            goto out;
        }
    }
    if ((rc = berth_sign_key_pair_generate(&key_pem, &pub_pem, password, err)) < 0 ||
        (rc = core_fs_write_atomic(key_path, key_pem.ptr, key_pem.len, 0600, err)) < 0 ||
        (rc = core_fs_write_atomic(pub_path, pub_pem.ptr, pub_pem.len, 0644, err)) < 0)
        goto out;
out:
    core_free(key_path);
    core_free(pub_path);
    berth_buf_dispose(&key_pem);
    berth_buf_dispose(&pub_pem);
    return rc;
}

void berth_sign_secret_wipe(void *p, size_t len)
{
    if (p && len)
        sodium_memzero(p, len);
}
