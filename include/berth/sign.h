/*
 * Signing and offline verification compatible with cosign (docs: /work/shared/spec/signing.md):
 * cosign.pub / cosign.key files, classic "simple signing" payloads, and Sigstore bundles v0.3
 * (DSSE in-toto statements and message signatures).
 *
 * This module works on bytes only: digests are "sha256:<64 hex>" strings, payloads and bundles
 * are the exact bytes fetched, signatures are the base64 strings found in annotations. Finding
 * signatures in a registry (".sig" tags, referrers) is the caller's job.
 *
 * Thread safety: keys are immutable after loading and may be shared by threads for signing and
 * verifying. Call berth_init() once before using this module (it initialises libsodium).
 */
#ifndef BERTH_SIGN_H
#define BERTH_SIGN_H

#include "buf.h"
#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- wire constants */
/** Media type of a classic signature layer (its blob is the simple-signing payload). */
#define BERTH_SIGN_SIMPLESIGNING_MEDIA_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
/** Layer annotation holding the base64 signature of a classic signature. */
#define BERTH_SIGN_ANNOTATION_SIGNATURE "dev.cosignproject.cosign/signature"
/** Layer annotation holding the Rekor bundle (SET) of a classic signature. */
#define BERTH_SIGN_ANNOTATION_REKOR_BUNDLE "dev.sigstore.cosign/bundle"
/** Media type of a Sigstore bundle v0.3 (referrer layer and artifactType). */
#define BERTH_SIGN_BUNDLE_MEDIA_TYPE "application/vnd.dev.sigstore.bundle.v0.3+json"
/** The in-toto predicate type of a cosign signature (not an attestation). */
#define BERTH_SIGN_PREDICATE_COSIGN_SIGN "https://sigstore.dev/cosign/sign/v1"

/** Length of a key fingerprint: base64 of the SHA-256 of the DER SubjectPublicKeyInfo. */
#define BERTH_SIGN_FINGERPRINT_LEN 44

/* ---------------------------------------------------------------- public keys */
/** A trusted public key: ECDSA P-256/P-384/P-521, RSA 2048/3072/4096 or Ed25519. */
typedef struct berth_sign_pubkey berth_sign_pubkey;

/**
 * Load a PEM public key file ("PUBLIC KEY" PKIX, or "RSA PUBLIC KEY" PKCS#1; only the first PEM
 * block counts). The key's name is the file name without its directory. Other key types and
 * sizes are refused. Returns 0, BERTH_ENOTFOUND/BERTH_EIO (file), BERTH_EINVAL (not a PEM key,
 * unsupported type) or BERTH_ENOMEM. *out is yours (berth_sign_pubkey_free).
 */
BERTH_EXTERN int berth_sign_pubkey_load_file(berth_sign_pubkey **out, const char *path,
                                             berth_error **err);
/**
 * Load a PEM public key from memory (e.g. a Secret's "cosign.pub" value). name labels the key
 * in results and messages (NULL: "public key"); it is copied. Codes as for _load_file.
 */
BERTH_EXTERN int berth_sign_pubkey_load_pem(berth_sign_pubkey **out, const char *name,
                                            const void *pem, size_t len, berth_error **err);
/** Free a key. Accepts NULL. */
BERTH_EXTERN void berth_sign_pubkey_free(berth_sign_pubkey *key);
/** The key's name ("cosign.pub"); borrowed until the key is freed. */
BERTH_EXTERN const char *berth_sign_pubkey_name(const berth_sign_pubkey *key);
/**
 * The fingerprint cosign uses as bundle hint: base64(SHA-256(DER SPKI)), 44 characters;
 * borrowed until the key is freed.
 */
BERTH_EXTERN const char *berth_sign_pubkey_fingerprint(const berth_sign_pubkey *key);
/** "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096" or "ed25519". */
BERTH_EXTERN const char *berth_sign_pubkey_type(const berth_sign_pubkey *key);
/** Append the key as a "PUBLIC KEY" PEM (64 columns) to out. Returns 0 or BERTH_ENOMEM. */
BERTH_EXTERN int berth_sign_pubkey_pem(berth_buf *out, const berth_sign_pubkey *key,
                                       berth_error **err);

/* ---------------------------------------------------------------- private keys */
/** A decrypted signing key. Its secret stays in OpenSSL's memory and is wiped on free. */
typedef struct berth_sign_privkey berth_sign_privkey;

/**
 * Load and decrypt a cosign private key file ("ENCRYPTED SIGSTORE PRIVATE KEY" or "ENCRYPTED
 * COSIGN PRIVATE KEY": scrypt + nacl/secretbox around PKCS#8 DER). password is NUL-terminated,
 * may be "" and is never logged nor kept. Only the scrypt costs cosign accepts (N 32768, 65536 or
 * 131072 with r=8, p=1) are tried; decryption needs up to 128 MiB for a moment.
 * Returns 0; BERTH_EAUTH when decryption fails (wrong password or corrupt file); BERTH_EINVAL
 * for a malformed file, a plaintext that is not PKCS#8 (SEC1 and PKCS#1 are refused as cosign
 * does) or an unsupported key; file errors; BERTH_ENOMEM. Every message names the file.
 */
BERTH_EXTERN int berth_sign_privkey_load_file(berth_sign_privkey **out, const char *path,
                                              const char *password, berth_error **err);
/** Like _load_file with the file's bytes in memory; name labels it in messages (NULL: "key"). */
BERTH_EXTERN int berth_sign_privkey_load_pem(berth_sign_privkey **out, const char *name,
                                             const void *pem, size_t len, const char *password,
                                             berth_error **err);
/** Free a key, wiping its secret. Accepts NULL. */
BERTH_EXTERN void berth_sign_privkey_free(berth_sign_privkey *key);
/** Append the public half as a "PUBLIC KEY" PEM to out. Returns 0 or BERTH_ENOMEM. */
BERTH_EXTERN int berth_sign_privkey_public_pem(berth_buf *out, const berth_sign_privkey *key,
                                               berth_error **err);
/** A new public key object for the public half (named like the private key); yours to free. */
BERTH_EXTERN int berth_sign_privkey_public(berth_sign_pubkey **out, const berth_sign_privkey *key,
                                           berth_error **err);
/**
 * Sign data with the algorithm cosign uses for the key type (ECDSA with the curve's hash, DER;
 * RSA PKCS#1 v1.5 SHA-256; pure Ed25519) and append the base64 signature to out.
 * Returns 0, BERTH_ERROR (crypto failure) or BERTH_ENOMEM. Thread-safe.
 */
BERTH_EXTERN int berth_sign_privkey_sign(berth_buf *out, const berth_sign_privkey *key,
                                         const void *data, size_t len, berth_error **err);

/**
 * Generate an ECDSA P-256 key pair the way `cosign generate-key-pair` does: key_pem receives the
 * "ENCRYPTED SIGSTORE PRIVATE KEY" PEM (PKCS#8, scrypt N=65536 r=8 p=1, random 32-byte salt and
 * 24-byte nonce), pub_pem the "PUBLIC KEY" PEM. Both are appended. password may be "".
 * Returns 0, BERTH_ERROR or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_sign_key_pair_generate(berth_buf *key_pem, berth_buf *pub_pem,
                                              const char *password, berth_error **err);
/**
 * Generate a key pair and write "<prefix>.key" (mode 0600) and "<prefix>.pub" (0644), each
 * atomically. Existing files are refused with BERTH_ECONFLICT unless force is true.
 * Returns 0, BERTH_ECONFLICT, file errors, BERTH_ERROR or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_sign_key_pair_write(const char *prefix, const char *password, bool force,
                                           berth_error **err);

/** Overwrite len bytes at p with zeros in a way the compiler keeps (for passwords). */
BERTH_EXTERN void berth_sign_secret_wipe(void *p, size_t len);

/* ---------------------------------------------------------------- producing signatures */
/**
 * Append to out the simple-signing payload cosign signs for an image (spec 3.3), byte for byte:
 * {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":DIGEST},
 * "type":"cosign container image signature"},"optional":null}. docker_reference is the
 * repository without tag or digest (e.g. "index.docker.io/library/alpine"); it is escaped like
 * Go's encoding/json. Returns 0, BERTH_EINVAL (bad digest, empty or non-UTF-8 reference) or
 * BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_sign_simple_payload(berth_buf *out, const char *docker_reference,
                                           const char *digest, berth_error **err);
/**
 * Append to out a Sigstore bundle v0.3 (JSON, as cosign v3 `sign` writes it without a
 * transparency log): a DSSE envelope around the in-toto Statement v1 whose subject has the
 * sha256 of digest (and "name": subject_name unless NULL), predicate type
 * BERTH_SIGN_PREDICATE_COSIGN_SIGN and an empty predicate, signed over the DSSE PAE, with
 * verificationMaterial.publicKey.hint = the key's fingerprint.
 * Returns 0, BERTH_EINVAL (bad digest), BERTH_ERROR or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_sign_bundle_create(berth_buf *out, const berth_sign_privkey *key,
                                          const char *subject_name, const char *digest,
                                          berth_error **err);

/* ---------------------------------------------------------------- verification */
/** Trust material for verification; the caller owns every key and keeps it alive. */
typedef struct berth_sign_verify_opts {
    unsigned int version;
    const berth_sign_pubkey *const *keys; /* trusted signing keys, tried in order */
    size_t n_keys;
    /* Trusted transparency-log (Rekor) keys. None: tlog data is ignored (Flux's key mode,
     * cosign --insecure-ignore-tlog). Some: every tlog promise from one of these logs must
     * verify (entries of other logs are skipped). */
    const berth_sign_pubkey *const *tlog_keys;
    size_t n_tlog_keys;
    bool require_tlog; /* also fail unless one tlog promise verified */
} berth_sign_verify_opts;

#define BERTH_SIGN_VERIFY_OPTS_VERSION 1
#define BERTH_SIGN_VERIFY_OPTS_INIT                                                                \
    {                                                                                              \
        BERTH_SIGN_VERIFY_OPTS_VERSION, NULL, 0, NULL, 0, false                                    \
    }
/** Initialise opts to the defaults. Returns 0 or BERTH_EINVAL for an unknown version. */
BERTH_EXTERN int berth_sign_verify_opts_init(berth_sign_verify_opts *opts, unsigned int version);

/** Outcome of one verification, filled in success and failure. */
typedef struct berth_sign_result {
    bool ok;                      /* a trusted key verified the signature and every claim */
    char key_name[128];           /* the key that verified ("cosign.pub"), else "" */
    char key_fingerprint[48];     /* its fingerprint (base64, 44 chars), else "" */
    char format[32];              /* "simplesigning", "bundle-dsse" or "bundle-message" */
    char identity[256];           /* simple signing: the payload's docker-reference, else "" */
    bool tlog_verified;           /* a transparency-log promise verified with a trusted log key */
    int64_t tlog_integrated_time; /* its integratedTime (Unix seconds), else 0 */
    char reason[512];             /* on failure: why, per key ("a.pub: signature mismatch; ...") */
} berth_sign_result;

/** A classic signature: one layer of a ".sig" manifest. Everything is borrowed. */
typedef struct berth_sign_simple_sig {
    const void *payload; /* the layer blob: the exact signed bytes */
    size_t payload_len;
    const char *signature;    /* BERTH_SIGN_ANNOTATION_SIGNATURE value (base64; CR/LF ignored) */
    const char *rekor_bundle; /* BERTH_SIGN_ANNOTATION_REKOR_BUNDLE value, or NULL */
} berth_sign_simple_sig;

/**
 * Verify a classic cosign signature of the manifest expected_digest ("sha256:<hex>"): the
 * signature must verify over the payload bytes with one of opts->keys, then the payload must be
 * a simple-signing document whose critical.image.docker-manifest-digest equals expected_digest
 * and whose critical.type is "cosign container image signature" (duplicate JSON keys are
 * refused). The Rekor bundle is checked offline (spec 3.6) only when opts has tlog keys.
 * Returns 0 (result->ok); BERTH_EVERIFY when nothing verified, with the reasons in
 * result->reason and err; BERTH_EINVAL for bad arguments (malformed expected_digest, unknown
 * opts version); BERTH_ENOMEM. Thread-safe.
 */
BERTH_EXTERN BERTH_MUST_CHECK int berth_sign_verify_simple(berth_sign_result *result,
                                                           const berth_sign_verify_opts *opts,
                                                           const berth_sign_simple_sig *sig,
                                                           const char *expected_digest,
                                                           berth_error **err);

/**
 * Verify a Sigstore bundle (v0.3, public-key material) for the manifest or artifact
 * expected_digest. DSSE: payloadType must be in-toto, exactly one signature, verified over the
 * PAE; the statement needs a subject with digest.sha256 = the hex of expected_digest and
 * predicate type BERTH_SIGN_PREDICATE_COSIGN_SIGN. messageSignature: messageDigest must equal
 * expected_digest and the signature is checked over that digest (ECDSA and RSA keys; Ed25519
 * needs berth_sign_bundle_verify_blob). The key matching the bundle's hint is tried first.
 * Certificate (keyless) bundles are refused. RFC 3161 timestamps are not checked.
 * Codes as for berth_sign_verify_simple.
 */
BERTH_EXTERN BERTH_MUST_CHECK int berth_sign_bundle_verify(berth_sign_result *result,
                                                           const berth_sign_verify_opts *opts,
                                                           const void *bundle, size_t bundle_len,
                                                           const char *expected_digest,
                                                           berth_error **err);

/**
 * Verify a messageSignature bundle over the artifact bytes themselves (cosign sign-blob):
 * messageDigest must equal SHA-256(artifact) and the signature must verify over the artifact.
 * DSSE bundles are checked against the artifact's digest as in berth_sign_bundle_verify.
 */
BERTH_EXTERN BERTH_MUST_CHECK int
berth_sign_bundle_verify_blob(berth_sign_result *result, const berth_sign_verify_opts *opts,
                              const void *bundle, size_t bundle_len, const void *artifact,
                              size_t artifact_len, berth_error **err);

#ifdef __cplusplus
}
#endif
#endif
