/*
 * berth/signatures.h: signing and verifying artifacts in a registry, cosign-compatible
 * (spec signing.md 3 and 5). This is where the registry client (oci.h) and the signature library
 * (sign.h) meet; neither knows the other.
 *
 * Two formats are written and read:
 *   classic  the "sha256-<hex>.sig" tag in the artifact's repository: an image manifest with one
 *            layer per signature (simple-signing payload, base64 signature in an annotation);
 *   bundle   a Sigstore bundle v0.3 (DSSE in-toto statement) pushed as an OCI 1.1 referrer of
 *            the signed manifest, indexed under the "sha256-<hex>" tag on registries without the
 *            referrers API.
 *
 * Verification is bound to the manifest digest: a signature passes only when a trusted key
 * verifies it AND the digest it claims equals the digest resolved here, which is the one the
 * caller must then fetch (never re-resolve the tag). The engine calls this before it stores any
 * artifact; the CLI's sign/verify verbs and push --sign-key / pull --verify-key call it too.
 *
 * Thread safety: a call uses the client it is given, so one thread at a time per client.
 */
#ifndef BERTH_SIGNATURES_H
#define BERTH_SIGNATURES_H

#include "common.h"
#include "error.h"
#include "oci.h"
#include "sign.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a signature lives. */
typedef enum {
    BERTH_SIGNATURES_CLASSIC = 0, /* a layer of the "sha256-<hex>.sig" manifest */
    BERTH_SIGNATURES_BUNDLE = 1,  /* a Sigstore bundle referrer */
} berth_signatures_format;

/** "classic" or "bundle". */
BERTH_EXTERN const char *berth_signatures_format_name(berth_signatures_format f);

/* ---------------------------------------------------------------- signing */
typedef struct berth_signatures_sign_opts {
    unsigned int version;
    berth_signatures_format format; /* what to write; default classic */
    const char *identity;           /* classic: docker-reference in the payload; NULL: the
                                       repository as cosign names it ("REGISTRY/REPOSITORY") */
    int64_t created;                /* bundle: created annotation, Unix seconds; 0: now */
} berth_signatures_sign_opts;
#define BERTH_SIGNATURES_SIGN_OPTS_VERSION 1
#define BERTH_SIGNATURES_SIGN_OPTS_INIT                                                            \
    {                                                                                              \
        .version = BERTH_SIGNATURES_SIGN_OPTS_VERSION                                              \
    }

/** What a signing run did. Strings are heap and owned by the struct. */
typedef struct berth_signatures_sign_result {
    char digest[72]; /* the signed manifest's digest */
    berth_signatures_format format;
    char *location;             /* classic: "REG/REPO:sha256-<hex>.sig"; bundle: "REG/REPO@<referrer
                                   manifest digest>" */
    bool appended;              /* classic: false when an equal signature by this key was there */
    size_t signatures;          /* classic: layers in the .sig manifest now; bundle: 1 */
    bool referrers_tag_updated; /* bundle: the "sha256-<hex>" fallback index was updated */
} berth_signatures_sign_result;

/** Free the strings of r and zero it. Accepts NULL. */
BERTH_EXTERN void berth_signatures_sign_result_dispose(berth_signatures_sign_result *r);

/**
 * Sign the manifest ref names (by digest if it has one, else its tag, else "latest") with key
 * and store the signature in ref's repository.
 *
 * classic (spec 3.2-3.5): the simple-signing payload names the digest and the identity; the
 * existing ".sig" manifest is read (absent: a new one) and the new layer appended, the previous
 * layers kept in order; if a layer with the same payload already carries a signature this key
 * verifies, nothing is written (appended = false). Blobs (payload, config) are pushed, then the
 * manifest is PUT to the tag. There is no lock: concurrent signers may lose a layer, as with
 * cosign.
 *
 * bundle (spec 5.2): a bundle v0.3 is pushed as a referrer manifest (empty config, one layer,
 * subject = the signed manifest, cosign's annotations), PUT by digest; when the registry has no
 * referrers API the "sha256-<hex>" index tag gets the referrer added.
 *
 * opts may be NULL (classic). *out is filled on success (dispose it). Returns 0, BERTH_EINVAL
 * (bad arguments, unknown opts version), BERTH_ENOTFOUND (ref does not exist), or what the
 * registry client or the signer returns (BERTH_EAUTH, BERTH_EDENIED, BERTH_ENET ...).
 */
BERTH_EXTERN int berth_signatures_sign(berth_signatures_sign_result *out, berth_oci_client *c,
                                       const berth_oci_ref *ref, const berth_sign_privkey *key,
                                       const berth_signatures_sign_opts *opts, berth_error **err);

/* ---------------------------------------------------------------- verification */
typedef struct berth_signatures_verify_opts {
    unsigned int version;
    const berth_sign_verify_opts *trust; /* keys (and optional tlog keys); required */
    bool skip_classic;                   /* do not look at the .sig tag */
    bool skip_bundles;                   /* do not look at referrers */
    size_t max_signatures;               /* ceiling per format; 0: 1000 (cosign's limit) */
} berth_signatures_verify_opts;
#define BERTH_SIGNATURES_VERIFY_OPTS_VERSION 1
#define BERTH_SIGNATURES_VERIFY_OPTS_INIT                                                          \
    {                                                                                              \
        .version = BERTH_SIGNATURES_VERIFY_OPTS_VERSION                                            \
    }

/** The outcome for one signature found. */
typedef struct berth_signatures_entry {
    berth_signatures_format format;
    char *location;          /* "REG/REPO:sha256-<hex>.sig layer N" or "REG/REPO@<digest>" */
    berth_sign_result check; /* ok, which key (name, fingerprint), or the reason it failed */
} berth_signatures_entry;

/** Everything found for one manifest. Owned by the struct; dispose it. */
typedef struct berth_signatures_result {
    char digest[72];                 /* the manifest digest that was verified */
    char *media_type;                /* its media type (heap, may be NULL) */
    bool ok;                         /* at least one signature verified */
    size_t verified;                 /* index in entries of the first that verified */
    berth_signatures_entry *entries; /* bundles first, then classic layers in order */
    size_t n_entries;
} berth_signatures_result;

/** Free the entries of r and zero it. Accepts NULL. */
BERTH_EXTERN void berth_signatures_result_dispose(berth_signatures_result *r);

/**
 * Resolve ref to a manifest digest (HEAD), collect its signatures (bundle referrers through the
 * referrers API or its tag fallback, and the layers of the ".sig" manifest), and verify each one
 * against opts->trust: the signature over the exact fetched bytes with any trusted key, then the
 * digest claim against the resolved digest. A signature whose blob is missing or does not match
 * its descriptor counts as a failed signature (its reason says so), not as an error.
 *
 * *out is filled whenever the return is 0 or BERTH_EVERIFY (dispose it in both cases): on 0,
 * out->ok is true and out->entries[out->verified] names the key and format. BERTH_EVERIFY means
 * nothing verified; the message says "no signatures found for ..." when there were none, else
 * how many failed, and each entry's check.reason says why. Other codes: BERTH_EINVAL (bad
 * arguments, no trusted key), BERTH_ENOTFOUND (ref does not exist), registry errors.
 */
BERTH_EXTERN BERTH_MUST_CHECK int
berth_signatures_verify(berth_signatures_result *out, berth_oci_client *c, const berth_oci_ref *ref,
                        const berth_signatures_verify_opts *opts, berth_error **err);

#ifdef __cplusplus
}
#endif
#endif
