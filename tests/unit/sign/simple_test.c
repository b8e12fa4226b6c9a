/*
 * Unit tests for classic cosign signatures (sign/simple.c, sign/tlog.c) over the interop
 * vectors: cosign-made payload/signature pairs must verify, wrong keys, unknown keys, changed
 * payloads and the modified-manifest case must fail with the reason, and the Rekor SET of the
 * key-rekor-valid signature must verify offline with the production Rekor key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../support/sign_vectors.h"
#include "core/core.h"
#include "sign/internal.h"

/* ---- helpers ---- */

static berth_sign_pubkey *load_pub(const char *path)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    if (berth_sign_pubkey_load_file(&k, path, &err) < 0)
        fail_msg("loading %s: %s", path, berth_error_message(err));
    return k;
}

static const char *testdata_key(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof(p), "%s/testdata/keys/%s", sv_repo_root(), name);
    return p;
}

static berth_sign_privkey *load_plain_priv(const char *name)
{
    berth_buf pem = BERTH_BUF_INIT;
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    assert_int_equal(sv_read(&pem, testdata_key(name)), 0);
    assert_int_equal(sign_privkey_load_plain_pem(&k, name, pem.ptr, pem.len, &err), 0);
    berth_buf_dispose(&pem);
    return k;
}

/* One signature of containers/image's "dir:" format: 0x00 "sigstore-json" LF + JSON. */
typedef struct csig {
    berth_buf payload;
    char *signature;
    char *rekor_bundle; /* or NULL */
} csig;

static void csig_load(csig *s, const char *rel)
{
    size_t len = 0;
    char *raw = sv_read_vector(rel, &len, 0);
    const char *nl;
    json_t *root, *ann, *v;
    json_error_t jerr;
    berth_error *err = NULL;
    memset(s, 0, sizeof(*s));
    assert_non_null(raw);
    assert_int_equal(raw[0], '\0');
    nl = memchr(raw, '\n', len);
    assert_non_null(nl);
    root = json_loadb(nl + 1, len - (size_t)(nl + 1 - raw), 0, &jerr);
    assert_non_null(root);
    v = json_object_get(root, "payload");
    assert_int_equal(
        core_base64_decode(&s->payload, json_string_value(v), json_string_length(v), false, &err),
        0);
    ann = json_object_get(root, "annotations");
    s->signature =
        core_strdup(json_string_value(json_object_get(ann, BERTH_SIGN_ANNOTATION_SIGNATURE)));
    v = json_object_get(ann, BERTH_SIGN_ANNOTATION_REKOR_BUNDLE);
    if (v)
        s->rekor_bundle = core_strdup(json_string_value(v));
    json_decref(root);
    free(raw);
}

static void csig_dispose(csig *s)
{
    berth_buf_dispose(&s->payload);
    core_free(s->signature);
    core_free(s->rekor_bundle);
}

/* "sha256:<hex>" of a vector file. */
static void vector_digest(char out[72], const char *rel)
{
    size_t len = 0;
    char *data = sv_read_vector(rel, &len, 0);
    assert_non_null(data);
    core_sha256_digest(out, data, len);
    free(data);
}

typedef struct keys {
    berth_sign_pubkey *k[4];
    size_t n;
    berth_sign_verify_opts opts;
} keys;

static void keys_add(keys *ks, const char *path)
{
    ks->k[ks->n++] = load_pub(path);
    berth_sign_verify_opts def = BERTH_SIGN_VERIFY_OPTS_INIT;
    ks->opts = def;
    ks->opts.keys = (const berth_sign_pubkey *const *)ks->k;
    ks->opts.n_keys = ks->n;
}

static void keys_dispose(keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        berth_sign_pubkey_free(ks->k[i]);
}

static int verify_csig(berth_sign_result *res, const keys *ks, const csig *s, const char *digest,
                       berth_error **err)
{
    berth_sign_simple_sig sig = {s->payload.ptr, s->payload.len, s->signature, s->rekor_bundle};
    return berth_sign_verify_simple(res, &ks->opts, &sig, digest, err);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" lacks \"%s\"", hay, needle);
}

#define CI "containers-image-cosign-simplesigning/"

/* ---- payload ---- */

static void payload_is_byte_identical_to_cosign_v3(void **state)
{
    berth_buf out = BERTH_BUF_INIT;
    berth_error *err = NULL;
    size_t len = 0;
    char *want;
    (void)state;
    SIGN_NEED_VECTORS();
    want = sv_read_vector("cosign-v3-classic-sigtag-key/payload.json", &len, 0);
    assert_int_equal(berth_sign_simple_payload(
                         &out, "localhost:15381/tobby/fixture",
                         "sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268",
                         &err),
                     0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.ptr, want, len);
    free(want);
    berth_buf_dispose(&out);
}

static void payload_is_byte_identical_to_containers_image_cosign(void **state)
{
    csig s;
    berth_buf out = BERTH_BUF_INIT;
    berth_error *err = NULL;
    char digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    csig_load(&s, CI "dir-img-cosign-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-valid/manifest.json");
    assert_int_equal(berth_sign_simple_payload(
                         &out, "192.168.64.2:5000/cosign-signed-single-sample", digest, &err),
                     0);
    assert_int_equal(out.len, s.payload.len);
    assert_memory_equal(out.ptr, s.payload.ptr, out.len);
    csig_dispose(&s);
    berth_buf_dispose(&out);
}

static void payload_escapes_reference_like_go(void **state)
{
    berth_buf out = BERTH_BUF_INIT;
    berth_error *err = NULL;
    const char *d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    (void)state;
    assert_int_equal(berth_sign_simple_payload(&out, "a<b>&\"c\\\n\x01", d, &err), 0);
    assert_contains(out.ptr, "\"docker-reference\":\"a\\u003cb\\u003e\\u0026\\\"c\\\\\\n\\u0001\"");
    berth_buf_dispose(&out);
    assert_int_equal(berth_sign_simple_payload(&out, "bad\xff", d, &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "UTF-8");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_simple_payload(&out, "r", "sha256:ABC", &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "invalid digest");
    berth_error_free(err);
    berth_buf_dispose(&out);
}

static void payload_parser_requires_digest_type_and_no_duplicates(void **state)
{
    static const struct {
        const char *json, *word;
    } cases[] = {
        {"{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:x\"},\"type\":\"other\"}}",
         "payload type"},
        {"{\"critical\":{\"type\":\"cosign container image signature\"}}",
         "docker-manifest-digest"},
        {"{\"critical\":{\"image\":{\"docker-manifest-digest\":\"a\",\"docker-manifest-digest\":"
         "\"b\"},\"type\":\"cosign container image signature\"}}",
         "duplicate"},
        {"{\"critical\":{\"image\":{\"docker-manifest-digest\":\"a\"},\"type\":\"cosign container "
         "image signature\"},\"optional\":[]}",
         "optional"},
        {"[1]", "not a JSON object"},
        {"{\"critical\":", "not JSON"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sign_simple_claims c;
        berth_error *err = NULL;
        assert_int_equal(sign_simple_payload_parse(&c, cases[i].json, strlen(cases[i].json), &err),
                         BERTH_EINVAL);
        assert_contains(berth_error_message(err), cases[i].word);
        berth_error_free(err);
    }
}

static void base64_decoding_is_strict_like_go(void **state)
{
    static const struct {
        const char *text;
        size_t want; /* decoded length, or 0 when it must be refused */
    } cases[] = {
        {"TWFu", 3},  {"TWE=", 2},     {"TWE", 2}, {"TQ==", 1}, {"TW\r\nFu", 3},
        {"====", 0},  {"TWFu====", 0}, {"TQ=", 0}, {"T", 0},    {"TW Fu", 0},
        {"TW=Fu", 0}, {"TW-_", 0},     {"", 0},    {"\n", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_buf out = BERTH_BUF_INIT;
        berth_error *err = NULL;
        int rc = sign_b64_decode(&out, cases[i].text, strlen(cases[i].text), &err);
        if (cases[i].want) {
            if (rc != 0)
                fail_msg("\"%s\": %s", cases[i].text, berth_error_message(err));
            assert_int_equal(out.len, cases[i].want);
        } else {
            if (rc != BERTH_EINVAL)
                fail_msg("\"%s\" was accepted", cases[i].text);
            assert_contains(berth_error_message(err), "base64");
            berth_error_free(err);
        }
        berth_buf_dispose(&out);
    }
}

/* ---- verification: positive vectors ---- */

static void cosign_v3_classic_signature_verifies(void **state)
{
    keys ks = {.n = 0};
    berth_sign_result res;
    berth_error *err = NULL;
    size_t plen = 0;
    char *payload, *sig;
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path("cosign-v3-classic-sigtag-key/cosign.pub"));
    payload = sv_read_vector("cosign-v3-classic-sigtag-key/payload.json", &plen, 0);
    sig = sv_read_vector("cosign-v3-classic-sigtag-key/signature.b64", NULL, 1);
    berth_sign_simple_sig s = {payload, plen, sig, NULL};
    /* the digest the payload was made for (the subject manifest itself is not in the vector) */
    assert_int_equal(berth_sign_verify_simple(
                         &res, &ks.opts, &s,
                         "sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268",
                         &err),
                     0);
    assert_true(res.ok);
    assert_string_equal(res.key_name, "cosign.pub");
    assert_string_equal(res.key_fingerprint, berth_sign_pubkey_fingerprint(ks.k[0]));
    assert_string_equal(res.format, "simplesigning");
    assert_string_equal(res.identity, "localhost:15381/tobby/fixture");
    assert_false(res.tlog_verified);
    free(payload);
    free(sig);
    keys_dispose(&ks);
}

static void containers_image_signatures_verify_with_the_right_key(void **state)
{
    static const struct {
        const char *sig, *manifest, *key;
    } cases[] = {
        {CI "dir-img-cosign-valid/signature-1", CI "dir-img-cosign-valid/manifest.json",
         "cosign.pub"},
        {CI "dir-img-cosign-valid-2.signature-2", CI "dir-img-cosign-valid/manifest.json",
         "cosign.pub"},
        {CI "dir-img-cosign-valid-with-tag.signature-1",
         CI "dir-img-cosign-valid-with-tag.manifest.json", "cosign.pub"},
        {CI "dir-img-cosign-key-rekor-valid/signature-1",
         CI "dir-img-cosign-key-rekor-valid/manifest.json", "cosign2.pub"},
    };
    keys ks = {.n = 0};
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign.pub"));
    keys_add(&ks, sv_path(CI "cosign2.pub"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csig s;
        berth_sign_result res;
        berth_error *err = NULL;
        char digest[72];
        csig_load(&s, cases[i].sig);
        vector_digest(digest, cases[i].manifest);
        if (verify_csig(&res, &ks, &s, digest, &err) != 0)
            fail_msg("%s: %s", cases[i].sig, berth_error_message(err));
        assert_true(res.ok);
        assert_string_equal(res.key_name, cases[i].key);
        csig_dispose(&s);
    }
    keys_dispose(&ks);
}

static void signature_with_line_breaks_still_verifies(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    char digest[72];
    char *broken;
    size_t n;
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign.pub"));
    csig_load(&s, CI "dir-img-cosign-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-valid/manifest.json");
    n = strlen(s.signature);
    broken = core_calloc(1, n + 3);
    memcpy(broken, s.signature, 20);
    memcpy(broken + 20, "\r\n", 2);
    memcpy(broken + 22, s.signature + 20, n - 20);
    core_free(s.signature);
    s.signature = broken;
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), 0);
    csig_dispose(&s);
    keys_dispose(&ks);
}

/* ---- verification: negative vectors ---- */

static void wrong_key_fails_with_mismatch_per_key(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    char digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign2.pub"));
    csig_load(&s, CI "dir-img-cosign-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-valid/manifest.json");
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_false(res.ok);
    assert_string_equal(res.key_name, "");
    assert_contains(res.reason, "cosign2.pub: signature mismatch");
    assert_int_equal(berth_error_code(err), BERTH_EVERIFY);
    assert_contains(berth_error_message(err), digest);
    berth_error_free(err);
    csig_dispose(&s);
    keys_dispose(&ks);

    /* and the Rekor one does not verify with cosign.pub */
    memset(&ks, 0, sizeof(ks));
    err = NULL;
    keys_add(&ks, sv_path(CI "cosign.pub"));
    csig_load(&s, CI "dir-img-cosign-key-rekor-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-key-rekor-valid/manifest.json");
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "cosign.pub: signature mismatch");
    berth_error_free(err);
    csig_dispose(&s);
    keys_dispose(&ks);
}

static void unknown_key_signature_fails_with_both_keys(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    char digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign.pub"));
    keys_add(&ks, sv_path(CI "cosign2.pub"));
    csig_load(&s, CI "unknown-cosign-key.signature");
    vector_digest(digest, CI "dir-img-cosign-valid/manifest.json");
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "cosign.pub: signature mismatch; cosign2.pub: signature mismatch");
    berth_error_free(err);
    csig_dispose(&s);
    keys_dispose(&ks);
}

static void modified_manifest_fails_the_digest_claim(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    char digest[72], signed_digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign.pub"));
    csig_load(&s, CI "dir-img-cosign-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-modified-manifest/manifest.json");
    vector_digest(signed_digest, CI "dir-img-cosign-valid/manifest.json");
    assert_string_not_equal(digest, signed_digest);
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_false(res.ok);
    assert_contains(res.reason, "the payload names digest");
    assert_contains(res.reason, signed_digest);
    berth_error_free(err);
    csig_dispose(&s);
    keys_dispose(&ks);
}

static void flipped_payload_byte_fails(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    char digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign.pub"));
    csig_load(&s, CI "dir-img-cosign-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-valid/manifest.json");
    s.payload.ptr[s.payload.len - 3] ^= 0x20; /* "null" -> "nuLl" */
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "signature mismatch");
    berth_error_free(err);
    csig_dispose(&s);
    keys_dispose(&ks);
}

static void signed_payload_with_wrong_type_or_duplicate_keys_fails(void **state)
{
    static const char *payloads[] = {
        "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-"
        "digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\"},"
        "\"type\":\"cosign container image attestation\"},\"optional\":null}",
        "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-"
        "digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
        "\"docker-manifest-digest\":\"sha256:"
        "2222222222222222222222222222222222222222222222222222222222222222\"},"
        "\"type\":\"cosign container image signature\"},\"optional\":null}",
    };
    static const char *words[] = {"payload type", "duplicate"};
    berth_sign_privkey *priv = load_plain_priv("p256.key.pem");
    keys ks = {.n = 0};
    (void)state;
    keys_add(&ks, testdata_key("p256.pub"));
    for (size_t i = 0; i < 2; i++) {
        berth_buf sig = BERTH_BUF_INIT;
        berth_sign_result res;
        berth_error *err = NULL;
        assert_int_equal(
            berth_sign_privkey_sign(&sig, priv, payloads[i], strlen(payloads[i]), &err), 0);
        berth_sign_simple_sig s = {payloads[i], strlen(payloads[i]), sig.ptr, NULL};
        assert_int_equal(
            berth_sign_verify_simple(
                &res, &ks.opts, &s,
                "sha256:1111111111111111111111111111111111111111111111111111111111111111", &err),
            BERTH_EVERIFY);
        assert_contains(res.reason, "p256.pub verified an invalid payload");
        assert_contains(res.reason, words[i]);
        berth_error_free(err);
        berth_buf_dispose(&sig);
    }
    berth_sign_privkey_free(priv);
    keys_dispose(&ks);
}

static void missing_signature_no_keys_and_bad_arguments_fail(void **state)
{
    keys ks = {.n = 0};
    berth_sign_result res;
    berth_error *err = NULL;
    const char *d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    berth_sign_simple_sig s = {"{}", 2, NULL, NULL};
    berth_sign_verify_opts none = BERTH_SIGN_VERIFY_OPTS_INIT;
    (void)state;
    keys_add(&ks, testdata_key("p256.pub"));
    assert_int_equal(berth_sign_verify_simple(&res, &ks.opts, &s, d, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "no signature annotation");
    berth_error_free(err);
    err = NULL;
    s.signature = "not base64!";
    assert_int_equal(berth_sign_verify_simple(&res, &ks.opts, &s, d, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "not valid base64");
    berth_error_free(err);
    err = NULL;
    s.signature = "MEUCIQ==";
    assert_int_equal(berth_sign_verify_simple(&res, &none, &s, d, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "no trusted public keys");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_verify_simple(&res, &ks.opts, &s, "latest", &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "invalid digest");
    berth_error_free(err);
    err = NULL;
    none.version = 99;
    assert_int_equal(berth_sign_verify_simple(&res, &none, &s, d, &err), BERTH_EINVAL);
    berth_error_free(err);
    keys_dispose(&ks);
}

/* ---- Rekor bundle (SET) ---- */

static void rekor_set_verifies_offline_with_the_rekor_key(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    berth_sign_pubkey *rekor;
    json_t *ann;
    char digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign2.pub"));
    rekor = load_pub(sv_path(CI "rekor.pub"));
    ks.opts.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    ks.opts.n_tlog_keys = 1;
    ks.opts.require_tlog = true;
    csig_load(&s, CI "dir-img-cosign-key-rekor-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-key-rekor-valid/manifest.json");
    if (verify_csig(&res, &ks, &s, digest, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_true(res.tlog_verified);
    ann = json_loads(s.rekor_bundle, 0, NULL);
    assert_int_equal(
        res.tlog_integrated_time,
        json_integer_value(json_object_get(json_object_get(ann, "Payload"), "integratedTime")));
    json_decref(ann);
    csig_dispose(&s);
    berth_sign_pubkey_free(rekor);
    keys_dispose(&ks);
}

static void rekor_set_fails_when_tampered_or_log_unknown(void **state)
{
    keys ks = {.n = 0};
    csig s;
    berth_sign_result res;
    berth_error *err = NULL;
    berth_sign_pubkey *rekor, *other;
    char digest[72], *tampered, *p;
    (void)state;
    SIGN_NEED_VECTORS();
    keys_add(&ks, sv_path(CI "cosign2.pub"));
    rekor = load_pub(sv_path(CI "rekor.pub"));
    other = load_pub(sv_path(CI "cosign.pub"));
    csig_load(&s, CI "dir-img-cosign-key-rekor-valid/signature-1");
    vector_digest(digest, CI "dir-img-cosign-key-rekor-valid/manifest.json");

    /* integratedTime moved by one second: the SET no longer verifies */
    tampered = core_strdup(s.rekor_bundle);
    p = strstr(tampered, "\"integratedTime\":1674251859");
    assert_non_null(p);
    p[strlen("\"integratedTime\":167425185")] = '8';
    ks.opts.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    ks.opts.n_tlog_keys = 1;
    berth_sign_simple_sig sig = {s.payload.ptr, s.payload.len, s.signature, tampered};
    assert_int_equal(berth_sign_verify_simple(&res, &ks.opts, &sig, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "inclusion promise does not verify");
    berth_error_free(err);
    err = NULL;

    /* a log key that is not the entry's log: the bundle is skipped, which require_tlog refuses */
    ks.opts.tlog_keys = (const berth_sign_pubkey *const *)&other;
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), 0);
    assert_false(res.tlog_verified);
    ks.opts.require_tlog = true;
    assert_int_equal(verify_csig(&res, &ks, &s, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "no transparency-log entry verified");
    berth_error_free(err);
    err = NULL;

    /* the promise is for another signature: a valid-2 signature next to this bundle */
    ks.opts.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    ks.opts.require_tlog = false;
    {
        berth_sign_privkey *priv = load_plain_priv("p256.key.pem");
        berth_sign_pubkey *mine = load_pub(testdata_key("p256.pub"));
        berth_buf resig = BERTH_BUF_INIT;
        berth_sign_verify_opts opts = ks.opts;
        assert_int_equal(berth_sign_privkey_sign(&resig, priv, s.payload.ptr, s.payload.len, &err),
                         0);
        opts.keys = (const berth_sign_pubkey *const *)&mine;
        opts.n_keys = 1;
        berth_sign_simple_sig moved = {s.payload.ptr, s.payload.len, resig.ptr, s.rekor_bundle};
        assert_int_equal(berth_sign_verify_simple(&res, &opts, &moved, digest, &err),
                         BERTH_EVERIFY);
        assert_contains(res.reason, "another signature");
        berth_error_free(err);
        berth_buf_dispose(&resig);
        berth_sign_privkey_free(priv);
        berth_sign_pubkey_free(mine);
    }
    core_free(tampered);
    csig_dispose(&s);
    berth_sign_pubkey_free(rekor);
    berth_sign_pubkey_free(other);
    keys_dispose(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(payload_is_byte_identical_to_cosign_v3),
        cmocka_unit_test(payload_is_byte_identical_to_containers_image_cosign),
        cmocka_unit_test(payload_escapes_reference_like_go),
        cmocka_unit_test(payload_parser_requires_digest_type_and_no_duplicates),
        cmocka_unit_test(base64_decoding_is_strict_like_go),
        cmocka_unit_test(cosign_v3_classic_signature_verifies),
        cmocka_unit_test(containers_image_signatures_verify_with_the_right_key),
        cmocka_unit_test(signature_with_line_breaks_still_verifies),
        cmocka_unit_test(wrong_key_fails_with_mismatch_per_key),
        cmocka_unit_test(unknown_key_signature_fails_with_both_keys),
        cmocka_unit_test(modified_manifest_fails_the_digest_claim),
        cmocka_unit_test(flipped_payload_byte_fails),
        cmocka_unit_test(signed_payload_with_wrong_type_or_duplicate_keys_fails),
        cmocka_unit_test(missing_signature_no_keys_and_bad_arguments_fail),
        cmocka_unit_test(rekor_set_verifies_offline_with_the_rekor_key),
        cmocka_unit_test(rekor_set_fails_when_tampered_or_log_unknown),
    };
    if (berth_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
