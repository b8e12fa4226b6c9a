/*
 * sign/internal.h: shared between the files of sign/ (and its unit and fuzz tests). Prefix sign_.
 * Nothing here is public; OpenSSL types stay inside this module.
 */
#ifndef BERTH_SIGN_INTERNAL_H
#define BERTH_SIGN_INTERNAL_H

#include <openssl/evp.h>

#include <berth/sign.h>

/* ---- limits (spec 8) ---- */
#define SIGN_MAX_PAYLOAD (64u * 1024u)   /* simple-signing payload, DSSE payload */
#define SIGN_MAX_BUNDLE (1024u * 1024u)  /* bundle JSON */
#define SIGN_MAX_KEY_FILE (64u * 1024u)  /* cosign.key / cosign.pub */
#define SIGN_MAX_SIGNATURE (16u * 1024u) /* base64 text of one signature */
#define SIGN_MAX_TLOG_ENTRIES 32u        /* tlog entries looked at per bundle */

#define SIGN_SIMPLE_TYPE "cosign container image signature"
#define SIGN_INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define SIGN_INTOTO_STATEMENT_V1 "https://in-toto.io/Statement/v1"
#define SIGN_INTOTO_STATEMENT_V01 "https://in-toto.io/Statement/v0.1"

typedef enum { SIGN_KEY_EC, SIGN_KEY_RSA, SIGN_KEY_ED25519 } sign_key_kind;

/* What both key objects know about their algorithm. */
typedef struct sign_keyinfo {
    sign_key_kind kind;
    const char *type; /* static: "ecdsa-p256" ... */
    const EVP_MD *md; /* ECDSA: the curve's hash (SHA-256/384/512); RSA: SHA-256; Ed25519: NULL */
} sign_keyinfo;

struct berth_sign_pubkey {
    EVP_PKEY *pkey;
    char *name; /* core_malloc */
    sign_keyinfo info;
    char fingerprint[BERTH_SIGN_FINGERPRINT_LEN + 1];
    char log_id[65]; /* hex SHA-256 of the DER SPKI: a transparency log's logID */
};

struct berth_sign_privkey {
    EVP_PKEY *pkey; /* holds the secret; EVP_PKEY_free clears it */
    char *name;
    sign_keyinfo info;
};

/* ---- keys.c ---- */
/**
 * Check that pkey is an allowed type (spec 2.1) and describe it. what names the key in the
 * message. Returns 0 or BERTH_EINVAL.
 */
int sign_keyinfo_get(sign_keyinfo *out, EVP_PKEY *pkey, const char *what, berth_error **err);
/** A public key object around pkey; takes pkey in every case. */
int sign_pubkey_from_evp(berth_sign_pubkey **out, EVP_PKEY *pkey, const char *name,
                         berth_error **err);
/** A private key from PKCS#8 DER (SEC1 and PKCS#1 refused). The DER is not kept. */
int sign_privkey_from_pkcs8(berth_sign_privkey **out, const char *name, const unsigned char *der,
                            size_t len, berth_error **err);
/** A private key from an unencrypted "PRIVATE KEY" PEM (PKCS#8): tests and imports. */
int sign_privkey_load_plain_pem(berth_sign_privkey **out, const char *name, const void *pem,
                                size_t len, berth_error **err);
/** Encrypt a private key in cosign's format (given scrypt N) and append the PEM to out. */
int sign_privkey_encrypt_pem(berth_buf *out, const berth_sign_privkey *key, const char *password,
                             uint64_t scrypt_n, berth_error **err);
/** Append PEM text with the given label, 64-column base64 lines. */
int sign_pem_encode(berth_buf *out, const char *label, const void *der, size_t len);
/** Append the DER SubjectPublicKeyInfo of pkey. */
int sign_spki_der(berth_buf *out, EVP_PKEY *pkey, berth_error **err);

/* The parsed JSON of an encrypted key file (before any scrypt). */
typedef struct sign_enckey {
    uint64_t n;
    uint32_t r, p;
    unsigned char salt[64];
    size_t salt_len;
    unsigned char nonce[24];
    unsigned char *ciphertext; /* core_malloc */
    size_t ciphertext_len;
} sign_enckey;
/**
 * Parse an encrypted key file: PEM label, JSON, algorithm names, the scrypt cost whitelist,
 * salt, nonce and ciphertext sizes. name is for messages. Returns 0 or BERTH_EINVAL/ENOMEM.
 */
int sign_enckey_parse(sign_enckey *out, const char *name, const void *pem, size_t len,
                      berth_error **err);
void sign_enckey_dispose(sign_enckey *k);
/** Open the secretbox with a derived 32-byte key and parse the PKCS#8 plaintext. */
int sign_enckey_open(berth_sign_privkey **out, const char *name, const sign_enckey *k,
                     const unsigned char key[32], berth_error **err);

/* ---- crypto.c ---- */
/** Verify sig over msg with key (spec 2.3, both Ed25519 variants, P-384/521 with SHA-256 too). */
bool sign_verify_message(const berth_sign_pubkey *key, const void *msg, size_t len,
                         const unsigned char *sig, size_t sig_len);
/**
 * Verify sig over a message known only by its SHA-256. Returns 1 when it verifies, 0 when it
 * does not, BERTH_EUNSUPPORTED for Ed25519 keys (they sign the message itself).
 */
int sign_verify_sha256(const berth_sign_pubkey *key, const unsigned char hash[32],
                       const unsigned char *sig, size_t sig_len);
/** Sign msg; append the raw signature bytes to out. */
int sign_sign_message(berth_buf *out, const berth_sign_privkey *key, const void *msg, size_t len,
                      berth_error **err);

/* ---- util.c ---- */
/** Check "sha256:<64 lowercase hex>" and copy the hex (with NUL) into hex. BERTH_EINVAL. */
int sign_digest_parse(char hex[65], const char *digest, berth_error **err);
/** Lowercase hex of len bytes into out (2*len+1 bytes). */
void sign_hex(char *out, const unsigned char *bin, size_t len);
/** Append s as a JSON string literal escaped as Go's encoding/json does; EINVAL if not UTF-8. */
int sign_json_go_string(berth_buf *out, const char *s);
/** Decode standard base64 (padding optional, CR/LF ignored, strict otherwise); EINVAL/ENOMEM. */
int sign_b64_decode(berth_buf *out, const char *text, size_t len, berth_error **err);
/** Append to a result's reason, separated by "; ", cut with "..." when full. */
void sign_reason_add(berth_sign_result *r, const char *fmt, ...) BERTH_PRINTF(2, 3);
/** Reset a result. */
void sign_result_reset(berth_sign_result *r, const char *format);
/** Copy a string into a fixed buffer, cutting it. */
void sign_strlcpy(char *dst, const char *src, size_t size);
/**
 * Finish a failed verification: clear the success fields, keep the reason, set err to
 * BERTH_EVERIFY "<what> "<digest>" not verified: <reason>" and return BERTH_EVERIFY.
 */
int sign_verify_failed(berth_sign_result *r, const char *what, const char *digest,
                       berth_error **err);
/** Validate opts (version, key arrays). */
int sign_opts_check(const berth_sign_verify_opts *opts, berth_error **err);

/* ---- simple.c ---- */
typedef struct sign_simple_claims {
    char *digest;           /* critical.image.docker-manifest-digest (core_malloc) */
    char *docker_reference; /* critical.identity.docker-reference, or NULL */
} sign_simple_claims;
/**
 * Parse a simple-signing payload: JSON object without duplicate keys; critical.image.
 * docker-manifest-digest a string; critical.type the cosign type; optional null or an object.
 * Returns 0 or BERTH_EINVAL (message says what is wrong), BERTH_ENOMEM.
 */
int sign_simple_payload_parse(sign_simple_claims *out, const void *data, size_t len,
                              berth_error **err);
void sign_simple_claims_dispose(sign_simple_claims *c);

/* ---- tlog.c ---- */
/** What a transparency-log body must bind to. */
typedef struct sign_tlog_expect {
    const char *kind;         /* "hashedrekord" or "dsse" */
    const char *hash_hex;     /* hashedrekord: data hash; dsse: payload hash */
    const unsigned char *sig; /* the signature bytes */
    size_t sig_len;
    const berth_sign_pubkey *key; /* the key that verified the signature */
} sign_tlog_expect;
/**
 * Verify one inclusion promise offline: find the log key by log_id_hex (*known = false and 0
 * when none of opts->tlog_keys matches), verify the SET over the canonical JSON of
 * {body, integratedTime, logID, logIndex}, and check that the decoded body binds to expect.
 * Returns 0 or BERTH_EVERIFY/ENOMEM.
 */
int sign_tlog_verify_promise(bool *known, const berth_sign_verify_opts *opts, const char *body_b64,
                             int64_t integrated_time, int64_t log_index, const char *log_id_hex,
                             const unsigned char *set, size_t set_len,
                             const sign_tlog_expect *expect, berth_error **err);
/**
 * Verify a classic Rekor bundle annotation (spec 3.6) for a signature that key verified.
 * Sets *known like sign_tlog_verify_promise and *integrated_time on success.
 */
int sign_tlog_verify_rekor_bundle(bool *known, int64_t *integrated_time,
                                  const berth_sign_verify_opts *opts, const char *annotation,
                                  const sign_tlog_expect *expect, berth_error **err);

/* ---- bundle.c ---- */
typedef struct sign_tlog_entry {
    int64_t log_index;
    int64_t integrated_time;
    char log_id_hex[65];
    char kind[32];
    char *body_b64;     /* canonicalizedBody (core_malloc) */
    unsigned char *set; /* inclusionPromise.signedEntryTimestamp decoded, or NULL */
    size_t set_len;
} sign_tlog_entry;

typedef struct sign_bundle {
    char *hint;        /* verificationMaterial.publicKey.hint, or NULL */
    bool dsse;         /* dsseEnvelope, else messageSignature */
    berth_buf payload; /* DSSE: decoded payload */
    char *payload_type;
    unsigned char message_digest[32]; /* messageSignature: SHA2_256 digest */
    berth_buf sig;                    /* the one signature, decoded */
    sign_tlog_entry *tlog;
    size_t n_tlog;
} sign_bundle;
/** Parse a bundle into b (all structure checks, no crypto). 0 or BERTH_EINVAL/ENOMEM. */
int sign_bundle_parse(sign_bundle *b, const void *data, size_t len, berth_error **err);
void sign_bundle_dispose(sign_bundle *b);
/** Append the DSSE pre-authentication encoding of (type, payload) to out. */
int sign_dsse_pae(berth_buf *out, const char *payload_type, const void *payload, size_t len);
/**
 * Check an in-toto statement: _type, a subject with digest.sha256 == hex, predicateType ==
 * BERTH_SIGN_PREDICATE_COSIGN_SIGN. 0 or BERTH_EVERIFY (message says which) / ENOMEM.
 */
int sign_statement_check(const void *data, size_t len, const char *hex, berth_error **err);

#endif
