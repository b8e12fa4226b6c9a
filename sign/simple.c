/*
 * Classic cosign signatures (spec 3): the simple-signing payload, built byte-exact as cosign
 * writes it, and parsed and verified as `cosign verify --key` does, plus the digest claim check
 * Flux skips (spec 3.7 step 3e, 7).
 *
 * Design: the signature is checked over the exact payload bytes before the payload is parsed;
 * the parser refuses duplicate keys (Go keeps the last one: a parser differential) and anything
 * not shaped like a simple-signing document. Verification never stops at the first key that
 * fails: each key's outcome goes into the result's reason.
 */
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "sign/internal.h"

int berth_sign_simple_payload(berth_buf *out, const char *docker_reference, const char *digest,
                              berth_error **err)
{
    char hex[65];
    size_t start;
    int rc;

    BERTH_ARG_CHECK(out && docker_reference);
    if ((rc = sign_digest_parse(hex, digest, err)) < 0)
        return rc;
    if (!docker_reference[0])
        return core_error_set(err, BERTH_EINVAL, "empty docker reference");
    start = out->len;
    rc = berth_buf_puts(out, "{\"critical\":{\"identity\":{\"docker-reference\":");
    if (rc == 0 && (rc = sign_json_go_string(out, docker_reference)) == BERTH_EINVAL) {
        out->len = start;
        if (out->ptr)
            out->ptr[start] = '\0';
        return core_error_set(err, BERTH_EINVAL, "docker reference is not valid UTF-8");
    }
    if (rc == 0)
        rc = berth_buf_printf(out,
                              "},\"image\":{\"docker-manifest-digest\":\"sha256:%s\"},\"type\":"
                              "\"" SIGN_SIMPLE_TYPE "\"},\"optional\":null}",
                              hex);
    return rc < 0 ? core_error_set(err, BERTH_ENOMEM, "out of memory") : 0;
}

void sign_simple_claims_dispose(sign_simple_claims *c)
{
    if (!c)
        return;
    core_free(c->digest);
    core_free(c->docker_reference);
    memset(c, 0, sizeof(*c));
}

int sign_simple_payload_parse(sign_simple_claims *out, const void *data, size_t len,
                              berth_error **err)
{
    json_t *root = NULL, *critical, *image, *digest, *type, *identity, *ref, *optional;
    json_error_t jerr;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len > SIGN_MAX_PAYLOAD)
        return core_error_set(err, BERTH_EINVAL, "payload exceeds %u bytes", SIGN_MAX_PAYLOAD);
    if (!(root = json_loadb(len ? data : "", len, JSON_REJECT_DUPLICATES, &jerr))) {
        return core_error_set(err, BERTH_EINVAL, "payload is not JSON: %s (offset %d)", jerr.text,
                              jerr.position);
    }
    if (!json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "payload is not a JSON object");
        goto out;
    }
    critical = json_object_get(root, "critical");
    image = json_object_get(critical, "image");
    digest = json_object_get(image, "docker-manifest-digest");
    if (!json_is_object(critical) || !json_is_object(image) || !json_is_string(digest)) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "payload has no critical.image.docker-manifest-digest string");
        goto out;
    }
    type = json_object_get(critical, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), SIGN_SIMPLE_TYPE) != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "payload type is \"%.60s\", want \"%s\"",
                            json_is_string(type) ? json_string_value(type) : "", SIGN_SIMPLE_TYPE);
        goto out;
    }
    identity = json_object_get(critical, "identity");
    ref = json_object_get(identity, "docker-reference");
    if ((identity && !json_is_object(identity)) || (ref && !json_is_string(ref))) {
        rc = core_error_set(err, BERTH_EINVAL, "payload critical.identity is malformed");
        goto out;
    }
    optional = json_object_get(root, "optional");
    if (optional && !json_is_null(optional) && !json_is_object(optional)) {
        rc = core_error_set(err, BERTH_EINVAL, "payload optional is neither null nor an object");
        goto out;
    }
    if (!(out->digest = core_strdup(json_string_value(digest))) ||
        (ref && !(out->docker_reference = core_strdup(json_string_value(ref))))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
out:
    if (rc < 0)
        sign_simple_claims_dispose(out);
    json_decref(root);
    return rc;
}

int berth_sign_verify_simple(berth_sign_result *result, const berth_sign_verify_opts *opts,
                             const berth_sign_simple_sig *sig, const char *expected_digest,
                             berth_error **err)
{
    berth_buf raw = BERTH_BUF_INIT;
    sign_simple_claims claims = {0};
    const berth_sign_pubkey *winner = NULL;
    berth_error *sub = NULL;
    char hex[65];
    size_t sig_text_len;
    int rc;

    BERTH_ARG_CHECK(result && sig);
    sign_result_reset(result, "simplesigning");
    if ((rc = sign_opts_check(opts, err)) < 0 ||
        (rc = sign_digest_parse(hex, expected_digest, err)) < 0)
        return rc;
    if (!sig->payload && sig->payload_len)
        return core_error_set(err, BERTH_EINVAL, "payload pointer is NULL");

    if (!sig->signature || !sig->signature[0]) {
        sign_reason_add(result, "the layer has no signature annotation");
        goto fail;
    }
    if (sig->payload_len > SIGN_MAX_PAYLOAD) {
        sign_reason_add(result, "payload exceeds %u bytes", SIGN_MAX_PAYLOAD);
        goto fail;
    }
    sig_text_len = strlen(sig->signature);
    berth_buf_init(&raw, SIGN_MAX_SIGNATURE);
    if (sig_text_len > SIGN_MAX_SIGNATURE ||
        sign_b64_decode(&raw, sig->signature, sig_text_len, &sub) < 0) {
        berth_error_free(sub); /* summarised in the reason */
        sub = NULL;
        sign_reason_add(result, "the signature is not valid base64");
        goto fail;
    }
    if (opts->n_keys == 0) {
        sign_reason_add(result, "no trusted public keys");
        goto fail;
    }
    for (size_t i = 0; i < opts->n_keys && !winner; i++) {
        const berth_sign_pubkey *k = opts->keys[i];
        if (sign_verify_message(k, sig->payload, sig->payload_len, (unsigned char *)raw.ptr,
                                raw.len))
            winner = k;
        else
            sign_reason_add(result, "%s: signature mismatch", k->name);
    }
    if (!winner)
        goto fail;

    /* The signature is good: now the payload must be about this digest. */
    result->reason[0] = '\0';
    if (sign_simple_payload_parse(&claims, sig->payload, sig->payload_len, &sub) < 0) {
        if (berth_error_code(sub) == BERTH_ENOMEM) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            berth_error_free(sub);
            goto out;
        }
        sign_reason_add(result, "%s verified an invalid payload: %s", winner->name,
                        berth_error_message(sub));
        berth_error_free(sub);
        sub = NULL;
        goto fail;
    }
    if (strcmp(claims.digest, expected_digest) != 0) {
        sign_reason_add(result, "the payload names digest \"%.80s\", not \"%s\"", claims.digest,
                        expected_digest);
        goto fail;
    }
    if (opts->n_tlog_keys > 0) {
        if (sig->rekor_bundle) {
            char payload_hex[65];
            unsigned char md[32];
            bool known = false;
            int64_t when = 0;
            sign_tlog_expect expect = {"hashedrekord", payload_hex, (unsigned char *)raw.ptr,
                                       raw.len, winner};
            if (!EVP_Digest(sig->payload_len ? sig->payload : "", sig->payload_len, md, NULL,
                            EVP_sha256(), NULL)) {
                rc = core_error_set(err, BERTH_ERROR, "sha256 failed");
                goto out;
            }
            sign_hex(payload_hex, md, 32);
            if (sign_tlog_verify_rekor_bundle(&known, &when, opts, sig->rekor_bundle, &expect,
                                              &sub) < 0) {
                sign_reason_add(result, "rekor bundle: %s", berth_error_message(sub));
                berth_error_free(sub);
                sub = NULL;
                goto fail;
            }
            if (known) {
                result->tlog_verified = true;
                result->tlog_integrated_time = when;
            }
        }
        if (opts->require_tlog && !result->tlog_verified) {
            sign_reason_add(result, "no transparency-log entry verified with a trusted log key");
            goto fail;
        }
    }
    result->ok = true;
    sign_strlcpy(result->key_name, winner->name, sizeof(result->key_name));
    sign_strlcpy(result->key_fingerprint, winner->fingerprint, sizeof(result->key_fingerprint));
    if (claims.docker_reference)
        sign_strlcpy(result->identity, claims.docker_reference, sizeof(result->identity));
    rc = 0;
    goto out;
fail:
    rc = sign_verify_failed(result, "signature of", expected_digest, err);
out:
    sign_simple_claims_dispose(&claims);
    berth_buf_dispose(&raw);
    return rc;
}
