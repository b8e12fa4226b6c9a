/*
 * Offline transparency-log checks (spec 3.6, 5.1): a Rekor "signed entry timestamp" (inclusion
 * promise) verified with a configured log key, and the logged entry body tied to the signature
 * being verified. Only used when the caller configured trusted log keys; inclusion proofs,
 * checkpoints and RFC 3161 timestamps are not checked here.
 *
 * Design: the SET input is the canonical JSON of {body, integratedTime, logID, logIndex}; its
 * values are base64, hex and integers, so jansson's compact sorted output is RFC 8785 (spec 8).
 * The body must name the same signature, the same public key and the hash of the same data,
 * or a valid promise for another entry could be replayed next to this signature.
 */
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "sign/internal.h"

/* A public key given as base64 of a PEM (how Rekor stores it) equals key. */
static bool body_key_matches(const char *b64, const berth_sign_pubkey *key)
{
    berth_buf pem = BERTH_BUF_INIT;
    berth_sign_pubkey *logged = NULL;
    berth_error *sub = NULL;
    bool same = false;

    berth_buf_init(&pem, SIGN_MAX_KEY_FILE);
    if (sign_b64_decode(&pem, b64, strlen(b64), &sub) == 0 &&
        berth_sign_pubkey_load_pem(&logged, "logged key", pem.ptr, pem.len, &sub) == 0)
        same = EVP_PKEY_eq(logged->pkey, key->pkey) == 1;
    berth_error_free(sub); /* the caller reports a plain mismatch */
    berth_sign_pubkey_free(logged);
    berth_buf_dispose(&pem);
    return same;
}

static bool body_sig_matches(const char *b64, const sign_tlog_expect *expect)
{
    berth_buf sig = BERTH_BUF_INIT;
    berth_error *sub = NULL;
    bool same;

    berth_buf_init(&sig, SIGN_MAX_SIGNATURE);
    same = sign_b64_decode(&sig, b64, strlen(b64), &sub) == 0 && sig.len == expect->sig_len &&
           memcmp(sig.ptr, expect->sig, sig.len) == 0;
    berth_error_free(sub);
    berth_buf_dispose(&sig);
    return same;
}

static const char *str_at(json_t *obj, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The decoded entry body binds to expect. */
static int check_body(const char *body_b64, const sign_tlog_expect *expect, berth_error **err)
{
    berth_buf body = BERTH_BUF_INIT;
    json_t *root = NULL, *spec;
    json_error_t jerr;
    const char *kind, *alg, *value;
    berth_error *sub = NULL;
    int rc = 0;

    berth_buf_init(&body, SIGN_MAX_BUNDLE);
    if (sign_b64_decode(&body, body_b64, strlen(body_b64), &sub) < 0 ||
        !(root = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, &jerr)) ||
        !json_is_object(root)) {
        berth_error_free(sub);
        rc = core_error_set(err, BERTH_EVERIFY, "the log entry body is not base64 JSON");
        goto out;
    }
    kind = str_at(root, "kind", NULL, NULL);
    spec = json_object_get(root, "spec");
    if (!kind || strcmp(kind, expect->kind) != 0 || !json_is_object(spec)) {
        rc = core_error_set(err, BERTH_EVERIFY, "the log entry is of kind \"%.32s\", want %s",
                            kind ? kind : "", expect->kind);
        goto out;
    }
    if (strcmp(expect->kind, "hashedrekord") == 0) {
        const char *content = str_at(spec, "signature", "content", NULL);
        const char *key = str_at(spec, "signature", "publicKey", "content");
        json_t *hash = json_object_get(json_object_get(spec, "data"), "hash");
        alg = str_at(hash, "algorithm", NULL, NULL);
        value = str_at(hash, "value", NULL, NULL);
        if (!alg || strcmp(alg, "sha256") != 0 || !value || strcmp(value, expect->hash_hex) != 0) {
            rc = core_error_set(err, BERTH_EVERIFY, "the log entry is for other data");
            goto out;
        }
        if (!content || !body_sig_matches(content, expect)) {
            rc = core_error_set(err, BERTH_EVERIFY, "the log entry holds another signature");
            goto out;
        }
        if (!key || !body_key_matches(key, expect->key)) {
            rc = core_error_set(err, BERTH_EVERIFY, "the log entry names another public key");
            goto out;
        }
    } else {
        json_t *sigs = json_object_get(spec, "signatures");
        bool found = false;
        alg = str_at(spec, "payloadHash", "algorithm", NULL);
        value = str_at(spec, "payloadHash", "value", NULL);
        if (!alg || strcmp(alg, "sha256") != 0 || !value || strcmp(value, expect->hash_hex) != 0) {
            rc = core_error_set(err, BERTH_EVERIFY, "the log entry is for another payload");
            goto out;
        }
        for (size_t i = 0; json_is_array(sigs) && i < json_array_size(sigs) && !found; i++) {
            json_t *s = json_array_get(sigs, i);
            const char *content = str_at(s, "signature", NULL, NULL);
            const char *verifier = str_at(s, "verifier", NULL, NULL);
            found = content && verifier && body_sig_matches(content, expect) &&
                    body_key_matches(verifier, expect->key);
        }
        if (!found) {
            rc = core_error_set(err, BERTH_EVERIFY, "the log entry holds no signature by this key");
            goto out;
        }
    }
out:
    json_decref(root);
    berth_buf_dispose(&body);
    return rc;
}

int sign_tlog_verify_promise(bool *known, const berth_sign_verify_opts *opts, const char *body_b64,
                             int64_t integrated_time, int64_t log_index, const char *log_id_hex,
                             const unsigned char *set, size_t set_len,
                             const sign_tlog_expect *expect, berth_error **err)
{
    const berth_sign_pubkey *log_key = NULL;
    json_t *obj = NULL;
    char *canon = NULL;
    int rc = 0;

    *known = false;
    for (size_t i = 0; i < opts->n_tlog_keys && !log_key; i++) {
        if (strcmp(opts->tlog_keys[i]->log_id, log_id_hex) == 0)
            log_key = opts->tlog_keys[i];
    }
    if (!log_key)
        return 0;
    *known = true;
    if (!set || set_len == 0)
        return core_error_set(err, BERTH_EVERIFY, "the entry of log %.12s has no inclusion promise",
                              log_id_hex);
    obj = json_pack("{s:s, s:I, s:s, s:I}", "body", body_b64, "integratedTime",
                    (json_int_t)integrated_time, "logID", log_id_hex, "logIndex",
                    (json_int_t)log_index);
    if (!obj || !(canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!sign_verify_message(log_key, canon, strlen(canon), set, set_len)) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "the inclusion promise does not verify with log key \"%s\"",
                            log_key->name);
        goto out;
    }
    rc = check_body(body_b64, expect, err);
out:
    free(canon); /* jansson allocates with malloc */
    json_decref(obj);
    return rc;
}

int sign_tlog_verify_rekor_bundle(bool *known, int64_t *integrated_time,
                                  const berth_sign_verify_opts *opts, const char *annotation,
                                  const sign_tlog_expect *expect, berth_error **err)
{
    json_t *root = NULL, *payload, *body, *itime, *index, *log_id, *set_text;
    json_error_t jerr;
    berth_buf set = BERTH_BUF_INIT;
    berth_error *sub = NULL;
    const char *id;
    int rc = 0;

    *known = false;
    *integrated_time = 0;
    if (strlen(annotation) > SIGN_MAX_BUNDLE)
        return core_error_set(err, BERTH_EVERIFY, "the bundle exceeds %u bytes", SIGN_MAX_BUNDLE);
    if (!(root = json_loads(annotation, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(root)) {
        rc = core_error_set(err, BERTH_EVERIFY, "not a JSON object");
        goto out;
    }
    set_text = json_object_get(root, "SignedEntryTimestamp");
    payload = json_object_get(root, "Payload");
    body = json_object_get(payload, "body");
    itime = json_object_get(payload, "integratedTime");
    index = json_object_get(payload, "logIndex");
    log_id = json_object_get(payload, "logID");
    if (!json_is_string(set_text) || !json_is_string(body) || !json_is_integer(itime) ||
        !json_is_integer(index) || !json_is_string(log_id)) {
        rc = core_error_set(err, BERTH_EVERIFY, "missing SignedEntryTimestamp or Payload fields");
        goto out;
    }
    id = json_string_value(log_id);
    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64) {
        rc = core_error_set(err, BERTH_EVERIFY, "logID is not 64 lowercase hex digits");
        goto out;
    }
    berth_buf_init(&set, SIGN_MAX_SIGNATURE);
    if (json_string_length(set_text) > SIGN_MAX_SIGNATURE ||
        sign_b64_decode(&set, json_string_value(set_text), json_string_length(set_text), &sub) <
            0) {
        berth_error_free(sub);
        rc = core_error_set(err, BERTH_EVERIFY, "SignedEntryTimestamp is not base64");
        goto out;
    }
    rc = sign_tlog_verify_promise(known, opts, json_string_value(body),
                                  (int64_t)json_integer_value(itime),
                                  (int64_t)json_integer_value(index), id,
                                  (const unsigned char *)set.ptr, set.len, expect, err);
    if (rc == 0 && *known)
        *integrated_time = (int64_t)json_integer_value(itime);
out:
    json_decref(root);
    berth_buf_dispose(&set);
    return rc;
}
