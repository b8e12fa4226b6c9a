/*
 * Sigstore bundles v0.3 signed with a public key (spec 4, 5): created as cosign v3 `sign` writes
 * them (DSSE envelope around an in-toto statement) and verified offline, for DSSE as well as
 * messageSignature contents.
 *
 * Design: sign_bundle_parse does every structural check and decodes every base64 field before
 * any crypto, so the fuzzer reaches all of it; verification then tries the keys (the one whose
 * fingerprint equals the bundle's hint first), checks the statement or message digest against
 * the expected digest, and looks at tlog entries only when trusted log keys are configured.
 * The statement is parsed, never compared byte for byte (protojson output is not stable).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "sign/internal.h"

#define BUNDLE_MEDIA_TYPE_LEGACY "application/vnd.dev.sigstore.bundle+json;version=0.3"

/* ---------------------------------------------------------------- parsing */

/* proto3 JSON int64: a decimal string (canonical) or a number; must be >= 0. */
static bool json_int64(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out >= 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        long long n;
        if (!s[0] || strlen(s) > 19 || strspn(s, "0123456789") != strlen(s))
            return false;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno || *end)
            return false;
        *out = (int64_t)n;
        return true;
    }
    return false;
}

/* Decode the base64 string member key of obj into out (which has its ceiling set). */
static int b64_member(berth_buf *out, json_t *obj, const char *key, const char *what,
                      berth_error **err)
{
    json_t *v = json_object_get(obj, key);
    berth_error *sub = NULL;
    if (!json_is_string(v))
        return core_error_set(err, BERTH_EINVAL, "%s is missing or not a string", what);
    if (sign_b64_decode(out, json_string_value(v), json_string_length(v), &sub) < 0) {
        int code = berth_error_code(sub) == BERTH_ENOMEM ? BERTH_ENOMEM : BERTH_EINVAL;
        int rc = core_error_set(err, code, "%s: %s", what, berth_error_message(sub));
        berth_error_free(sub); /* its message is in ours, with the field named */
        return rc;
    }
    return 0;
}

static int parse_tlog_entry(sign_tlog_entry *e, json_t *j, size_t i, berth_error **err)
{
    berth_buf id = BERTH_BUF_INIT, set = BERTH_BUF_INIT;
    json_t *body = json_object_get(j, "canonicalizedBody");
    json_t *kind = json_object_get(json_object_get(j, "kindVersion"), "kind");
    json_t *promise = json_object_get(j, "inclusionPromise");
    int rc = 0;

    if (!json_is_object(j) || !json_int64(json_object_get(j, "logIndex"), &e->log_index) ||
        !json_int64(json_object_get(j, "integratedTime"), &e->integrated_time) ||
        !json_is_string(body) || !json_is_string(kind)) {
        return core_error_set(err, BERTH_EINVAL,
                              "tlog entry %zu lacks logIndex, integratedTime, kindVersion or "
                              "canonicalizedBody",
                              i);
    }
    berth_buf_init(&id, 64);
    if ((rc = b64_member(&id, json_object_get(j, "logId"), "keyId", "tlog entry logId.keyId",
                         err)) < 0)
        goto out;
    if (id.len != 32) {
        rc = core_error_set(err, BERTH_EINVAL, "tlog entry %zu: logId.keyId has %zu bytes", i,
                            id.len);
        goto out;
    }
    sign_hex(e->log_id_hex, (const unsigned char *)id.ptr, 32);
    sign_strlcpy(e->kind, json_string_value(kind), sizeof(e->kind));
    if (promise) {
        berth_buf_init(&set, SIGN_MAX_SIGNATURE);
        if ((rc = b64_member(&set, promise, "signedEntryTimestamp",
                             "tlog entry inclusionPromise.signedEntryTimestamp", err)) < 0)
            goto out;
        e->set_len = set.len;
        if (!(e->set = (unsigned char *)berth_buf_detach(&set))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (!(e->body_b64 = core_strdup(json_string_value(body))))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    berth_buf_dispose(&id);
    berth_buf_dispose(&set);
    return rc;
}

void sign_bundle_dispose(sign_bundle *b)
{
    if (!b)
        return;
    core_free(b->hint);
    core_free(b->payload_type);
    berth_buf_dispose(&b->payload);
    berth_buf_dispose(&b->sig);
    for (size_t i = 0; i < b->n_tlog; i++) {
        core_free(b->tlog[i].body_b64);
        core_free(b->tlog[i].set);
    }
    core_free(b->tlog);
    memset(b, 0, sizeof(*b));
}

static int parse_content(sign_bundle *b, json_t *root, berth_error **err)
{
    json_t *dsse = json_object_get(root, "dsseEnvelope");
    json_t *msg = json_object_get(root, "messageSignature");

    if ((dsse != NULL) == (msg != NULL))
        return core_error_set(err, BERTH_EINVAL,
                              "bundle needs exactly one of dsseEnvelope and messageSignature");
    if (dsse) {
        json_t *type = json_object_get(dsse, "payloadType");
        json_t *sigs = json_object_get(dsse, "signatures");
        int rc;
        b->dsse = true;
        if (!json_is_object(dsse) || !json_is_string(type))
            return core_error_set(err, BERTH_EINVAL, "dsseEnvelope has no payloadType");
        if (!(b->payload_type = core_strdup(json_string_value(type))))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        if ((rc = b64_member(&b->payload, dsse, "payload", "dsseEnvelope.payload", err)) < 0)
            return rc;
        if (!json_is_array(sigs) || json_array_size(sigs) != 1)
            return core_error_set(err, BERTH_EINVAL, "dsseEnvelope has %zu signatures, want 1",
                                  json_is_array(sigs) ? json_array_size(sigs) : 0);
        return b64_member(&b->sig, json_array_get(sigs, 0), "sig", "dsseEnvelope signature", err);
    } else {
        json_t *md = json_object_get(msg, "messageDigest");
        json_t *alg = json_object_get(md, "algorithm");
        berth_buf digest = BERTH_BUF_INIT;
        int rc;
        b->dsse = false;
        if (!json_is_object(msg) || !json_is_string(alg) ||
            strcmp(json_string_value(alg), "SHA2_256") != 0)
            return core_error_set(err, BERTH_EINVAL,
                                  "messageSignature needs a SHA2_256 messageDigest");
        berth_buf_init(&digest, 64);
        if ((rc = b64_member(&digest, md, "digest", "messageDigest.digest", err)) == 0 &&
            digest.len != 32)
            rc =
                core_error_set(err, BERTH_EINVAL, "messageDigest.digest has %zu bytes", digest.len);
        if (rc == 0)
            memcpy(b->message_digest, digest.ptr, 32);
        berth_buf_dispose(&digest);
        if (rc < 0)
            return rc;
        return b64_member(&b->sig, msg, "signature", "messageSignature.signature", err);
    }
}

int sign_bundle_parse(sign_bundle *b, const void *data, size_t len, berth_error **err)
{
    json_t *root = NULL, *media, *vm, *pk, *hint, *tlog;
    json_error_t jerr;
    int rc = 0;

    memset(b, 0, sizeof(*b));
    berth_buf_init(&b->payload, SIGN_MAX_PAYLOAD);
    berth_buf_init(&b->sig, SIGN_MAX_SIGNATURE);
    if (len > SIGN_MAX_BUNDLE)
        return core_error_set(err, BERTH_EINVAL, "bundle exceeds %u bytes", SIGN_MAX_BUNDLE);
    if (!(root = json_loadb(len ? data : "", len, JSON_REJECT_DUPLICATES, &jerr)))
        return core_error_set(err, BERTH_EINVAL, "bundle is not JSON: %s (offset %d)", jerr.text,
                              jerr.position);
    if (!json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle is not a JSON object");
        goto out;
    }
    media = json_object_get(root, "mediaType");
    if (!json_is_string(media) ||
        (strcmp(json_string_value(media), BERTH_SIGN_BUNDLE_MEDIA_TYPE) != 0 &&
         strcmp(json_string_value(media), BUNDLE_MEDIA_TYPE_LEGACY) != 0)) {
        rc = core_error_set(err, BERTH_EINVAL, "unsupported bundle media type \"%.80s\"",
                            json_is_string(media) ? json_string_value(media) : "");
        goto out;
    }
    vm = json_object_get(root, "verificationMaterial");
    if (!json_is_object(vm)) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle has no verificationMaterial");
        goto out;
    }
    if (json_object_get(vm, "certificate") || json_object_get(vm, "x509CertificateChain")) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "bundle is signed with a certificate (keyless), not a public key");
        goto out;
    }
    pk = json_object_get(vm, "publicKey");
    if (!json_is_object(pk)) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle has no verificationMaterial.publicKey");
        goto out;
    }
    hint = json_object_get(pk, "hint");
    if (hint && !json_is_string(hint)) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle publicKey.hint is not a string");
        goto out;
    }
    if (hint && !(b->hint = core_strdup(json_string_value(hint)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    tlog = json_object_get(vm, "tlogEntries");
    if (tlog && !json_is_array(tlog)) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle tlogEntries is not an array");
        goto out;
    }
    if (tlog && json_array_size(tlog) > SIGN_MAX_TLOG_ENTRIES) {
        rc = core_error_set(err, BERTH_EINVAL, "bundle has more than %u tlog entries",
                            SIGN_MAX_TLOG_ENTRIES);
        goto out;
    }
    if (tlog && json_array_size(tlog) > 0) {
        if (!(b->tlog = core_calloc(json_array_size(tlog), sizeof(*b->tlog)))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < json_array_size(tlog); i++) {
            b->n_tlog = i + 1;
            if ((rc = parse_tlog_entry(&b->tlog[i], json_array_get(tlog, i), i, err)) < 0)
                goto out;
        }
    }
    rc = parse_content(b, root, err);
out:
    if (rc < 0)
        sign_bundle_dispose(b);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- DSSE and in-toto */

int sign_dsse_pae(berth_buf *out, const char *payload_type, const void *payload, size_t len)
{
    int rc = berth_buf_printf(out, "DSSEv1 %zu %s %zu ", strlen(payload_type), payload_type, len);
    if (rc == 0 && len)
        rc = berth_buf_put(out, payload, len);
    return rc;
}

int sign_statement_check(const void *data, size_t len, const char *hex, berth_error **err)
{
    json_t *root = NULL, *subjects, *ptype;
    json_error_t jerr;
    const char *type;
    bool found = false;
    int rc = 0;

    if (!(root = json_loadb(len ? data : "", len, JSON_REJECT_DUPLICATES, &jerr)) ||
        !json_is_object(root)) {
        rc = core_error_set(err, BERTH_EVERIFY, "the in-toto statement is not a JSON object");
        goto out;
    }
    type = json_is_string(json_object_get(root, "_type"))
               ? json_string_value(json_object_get(root, "_type"))
               : "";
    if (strcmp(type, SIGN_INTOTO_STATEMENT_V1) != 0 &&
        strcmp(type, SIGN_INTOTO_STATEMENT_V01) != 0) {
        rc = core_error_set(err, BERTH_EVERIFY, "the statement _type is \"%.80s\"", type);
        goto out;
    }
    subjects = json_object_get(root, "subject");
    for (size_t i = 0; json_is_array(subjects) && i < json_array_size(subjects) && !found; i++) {
        json_t *d =
            json_object_get(json_object_get(json_array_get(subjects, i), "digest"), "sha256");
        found = json_is_string(d) && strcmp(json_string_value(d), hex) == 0;
    }
    if (!found) {
        rc = core_error_set(err, BERTH_EVERIFY, "no statement subject has digest sha256:%s", hex);
        goto out;
    }
    ptype = json_object_get(root, "predicateType");
    if (!json_is_string(ptype) ||
        strcmp(json_string_value(ptype), BERTH_SIGN_PREDICATE_COSIGN_SIGN) != 0) {
        /* an attestation by the same key is not a signature of the artifact */
        rc = core_error_set(err, BERTH_EVERIFY,
                            "the statement predicate type is \"%.80s\", not a cosign signature",
                            json_is_string(ptype) ? json_string_value(ptype) : "");
        goto out;
    }
out:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- create */

int berth_sign_bundle_create(berth_buf *out, const berth_sign_privkey *key,
                             const char *subject_name, const char *digest, berth_error **err)
{
    berth_buf statement = BERTH_BUF_INIT, pae = BERTH_BUF_INIT, sig = BERTH_BUF_INIT;
    berth_sign_pubkey *pub = NULL;
    char *payload_b64 = NULL, *sig_b64 = NULL;
    char hex[65];
    int rc;

    BERTH_ARG_CHECK(out && key);
    if ((rc = sign_digest_parse(hex, digest, err)) < 0)
        return rc;
    /* cosign >= 3.0.5 statement, field order of protojson (spec 4) */
    rc = berth_buf_puts(&statement, "{\"_type\":\"" SIGN_INTOTO_STATEMENT_V1 "\",\"subject\":[{");
    if (rc == 0 && subject_name) {
        rc = berth_buf_puts(&statement, "\"name\":");
        if (rc == 0 && (rc = sign_json_go_string(&statement, subject_name)) == BERTH_EINVAL) {
            rc = core_error_set(err, BERTH_EINVAL, "subject name is not valid UTF-8");
            goto out;
        }
        if (rc == 0)
            rc = berth_buf_puts(&statement, ",");
    }
    if (rc == 0)
        rc = berth_buf_printf(&statement,
                              "\"digest\":{\"sha256\":\"%s\"},\"annotations\":{}}],"
                              "\"predicateType\":\"" BERTH_SIGN_PREDICATE_COSIGN_SIGN
                              "\",\"predicate\":{}}",
                              hex);
    if (rc == 0)
        rc = sign_dsse_pae(&pae, SIGN_INTOTO_PAYLOAD_TYPE, statement.ptr, statement.len);
    if (rc < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = sign_sign_message(&sig, key, pae.ptr, pae.len, err)) < 0 ||
        (rc = berth_sign_privkey_public(&pub, key, err)) < 0)
        goto out;
    if (!(payload_b64 = core_base64_encode(statement.ptr, statement.len)) ||
        !(sig_b64 = core_base64_encode(sig.ptr, sig.len)) ||
        berth_buf_printf(out,
                         "{\"mediaType\":\"" BERTH_SIGN_BUNDLE_MEDIA_TYPE "\","
                         "\"verificationMaterial\":{\"publicKey\":{\"hint\":\"%s\"}},"
                         "\"dsseEnvelope\":{\"payload\":\"%s\",\"payloadType\":"
                         "\"" SIGN_INTOTO_PAYLOAD_TYPE "\",\"signatures\":[{\"sig\":\"%s\"}]}}",
                         pub->fingerprint, payload_b64, sig_b64) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    berth_sign_pubkey_free(pub);
    core_free(payload_b64);
    core_free(sig_b64);
    berth_buf_dispose(&statement);
    berth_buf_dispose(&pae);
    berth_buf_dispose(&sig);
    return rc;
}

/* ---------------------------------------------------------------- verify */

/* Does key verify the bundle's signature? Notes why not in the result. */
static bool try_key(berth_sign_result *r, const sign_bundle *b, const berth_sign_pubkey *k,
                    const berth_buf *pae, const void *artifact, size_t artifact_len,
                    bool have_artifact)
{
    const unsigned char *sig = (const unsigned char *)b->sig.ptr;
    int v;

    if (b->dsse) {
        if (sign_verify_message(k, pae->ptr, pae->len, sig, b->sig.len))
            return true;
    } else if (have_artifact) {
        if (sign_verify_message(k, artifact, artifact_len, sig, b->sig.len))
            return true;
    } else if ((v = sign_verify_sha256(k, b->message_digest, sig, b->sig.len)) == 1) {
        return true;
    } else if (v == BERTH_EUNSUPPORTED) {
        sign_reason_add(r, "%s: an ed25519 message signature needs the artifact bytes", k->name);
        return false;
    }
    sign_reason_add(r, "%s: signature mismatch", k->name);
    return false;
}

static int tlog_check(berth_sign_result *r, const berth_sign_verify_opts *opts,
                      const sign_bundle *b, const berth_sign_pubkey *winner, const char *hash_hex,
                      berth_error **err)
{
    sign_tlog_expect expect = {b->dsse ? "dsse" : "hashedrekord", hash_hex,
                               (const unsigned char *)b->sig.ptr, b->sig.len, winner};
    for (size_t i = 0; i < b->n_tlog; i++) {
        const sign_tlog_entry *e = &b->tlog[i];
        bool known = false;
        berth_error *sub = NULL;
        int rc =
            sign_tlog_verify_promise(&known, opts, e->body_b64, e->integrated_time, e->log_index,
                                     e->log_id_hex, e->set, e->set_len, &expect, &sub);
        if (rc < 0) {
            if (rc == BERTH_ENOMEM) {
                berth_error_free(sub);
                return core_error_set(err, BERTH_ENOMEM, "out of memory");
            }
            sign_reason_add(r, "tlog entry %zu: %s", i, berth_error_message(sub));
            berth_error_free(sub);
            return BERTH_EVERIFY;
        }
        if (known && !r->tlog_verified) {
            r->tlog_verified = true;
            r->tlog_integrated_time = e->integrated_time;
        }
    }
    if (opts->require_tlog && !r->tlog_verified) {
        sign_reason_add(r, "no transparency-log entry verified with a trusted log key");
        return BERTH_EVERIFY;
    }
    return 0;
}

static int bundle_verify(berth_sign_result *r, const berth_sign_verify_opts *opts,
                         const void *bundle, size_t bundle_len, const char *expected_digest,
                         const void *artifact, size_t artifact_len, bool have_artifact,
                         berth_error **err)
{
    sign_bundle b;
    berth_buf pae = BERTH_BUF_INIT;
    berth_error *sub = NULL;
    const berth_sign_pubkey *winner = NULL;
    char digest[72], payload_digest[72], hex[65], hash_hex[65];
    unsigned char want[32];
    int rc;

    sign_result_reset(r, "bundle");
    memset(&b, 0, sizeof(b));
    if ((rc = sign_opts_check(opts, err)) < 0)
        return rc;
    if (have_artifact) {
        core_sha256_digest(digest, artifact_len ? artifact : "", artifact_len);
    } else {
        if ((rc = sign_digest_parse(hex, expected_digest, err)) < 0)
            return rc;
        sign_strlcpy(digest, expected_digest, sizeof(digest));
    }
    sign_strlcpy(hex, digest + 7, sizeof(hex));
    for (size_t i = 0; i < 32; i++) {
        unsigned int byte = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            byte = byte * 16 + (unsigned int)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        want[i] = (unsigned char)byte;
    }
    if (!bundle && bundle_len)
        return core_error_set(err, BERTH_EINVAL, "bundle pointer is NULL");

    if ((rc = sign_bundle_parse(&b, bundle, bundle_len, &sub)) < 0) {
        if (rc == BERTH_ENOMEM) {
            berth_error_free(sub);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        sign_reason_add(r, "invalid bundle: %s", berth_error_message(sub));
        berth_error_free(sub);
        sub = NULL;
        goto fail;
    }
    sign_strlcpy(r->format, b.dsse ? "bundle-dsse" : "bundle-message", sizeof(r->format));
    if (b.dsse) {
        if (strcmp(b.payload_type, SIGN_INTOTO_PAYLOAD_TYPE) != 0) {
            sign_reason_add(r, "DSSE payload type is \"%.80s\", want %s", b.payload_type,
                            SIGN_INTOTO_PAYLOAD_TYPE);
            goto fail;
        }
        if (sign_dsse_pae(&pae, b.payload_type, b.payload.ptr, b.payload.len) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        core_sha256_digest(payload_digest, b.payload.len ? b.payload.ptr : "", b.payload.len);
        sign_strlcpy(hash_hex, payload_digest + 7, sizeof(hash_hex));
    } else {
        if (memcmp(b.message_digest, want, 32) != 0) {
            char got[65];
            sign_hex(got, b.message_digest, 32);
            sign_reason_add(r, "the bundle signs digest sha256:%s, not sha256:%s", got, hex);
            goto fail;
        }
        sign_strlcpy(hash_hex, hex, sizeof(hash_hex));
    }

    if (opts->n_keys == 0) {
        sign_reason_add(r, "no trusted public keys");
        goto fail;
    }
    /* the hint is unauthenticated: it only orders the keys */
    for (size_t pass = 0; pass < 2 && !winner; pass++) {
        for (size_t i = 0; i < opts->n_keys && !winner; i++) {
            const berth_sign_pubkey *k = opts->keys[i];
            bool hinted = b.hint && strcmp(b.hint, k->fingerprint) == 0;
            if (hinted != (pass == 0))
                continue;
            if (try_key(r, &b, k, &pae, artifact, artifact_len, have_artifact))
                winner = k;
        }
    }
    if (!winner)
        goto fail;
    r->reason[0] = '\0';
    if (b.dsse && sign_statement_check(b.payload.ptr, b.payload.len, hex, &sub) < 0) {
        sign_reason_add(r, "%s verified the envelope but %s", winner->name,
                        berth_error_message(sub));
        berth_error_free(sub);
        sub = NULL;
        goto fail;
    }
    if (opts->n_tlog_keys > 0 && (rc = tlog_check(r, opts, &b, winner, hash_hex, err)) < 0) {
        if (rc == BERTH_ENOMEM)
            goto out;
        goto fail;
    }
    r->ok = true;
    sign_strlcpy(r->key_name, winner->name, sizeof(r->key_name));
    sign_strlcpy(r->key_fingerprint, winner->fingerprint, sizeof(r->key_fingerprint));
    rc = 0;
    goto out;
fail:
    rc = sign_verify_failed(r, "bundle for", digest, err);
out:
    sign_bundle_dispose(&b);
    berth_buf_dispose(&pae);
    return rc;
}

int berth_sign_bundle_verify(berth_sign_result *result, const berth_sign_verify_opts *opts,
                             const void *bundle, size_t bundle_len, const char *expected_digest,
                             berth_error **err)
{
    BERTH_ARG_CHECK(result);
    return bundle_verify(result, opts, bundle, bundle_len, expected_digest, NULL, 0, false, err);
}

int berth_sign_bundle_verify_blob(berth_sign_result *result, const berth_sign_verify_opts *opts,
                                  const void *bundle, size_t bundle_len, const void *artifact,
                                  size_t artifact_len, berth_error **err)
{
    BERTH_ARG_CHECK(result && (artifact || artifact_len == 0));
    return bundle_verify(result, opts, bundle, bundle_len, NULL, artifact, artifact_len, true, err);
}
