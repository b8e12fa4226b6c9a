/*
 * Unit tests for Sigstore bundles (sign/bundle.c): the cosign v3 DSSE bundle, the conformance
 * messageSignature bundles (the two *_fail cases must fail), the sigstore-go tlog-less bundle,
 * tlog promises checked with the Rekor keys, and bundles berth creates (verified by berth and,
 * for the DSSE signature, by openssl).
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

#define V3 "cosign-v3-bundle-referrer-key/"
#define CONF "sigstore-conformance-managed-key/"
#define SGO "sigstore-go-public-key-bundle-no-tlog/"

static char tmpdir[1024];

static int setup_tmp(void **state)
{
    berth_error *err = NULL;
    char *dir = NULL;
    (void)state;
    if (core_fs_mkdtemp(&dir, "/tmp", "berth-bundle-test-", &err) < 0) {
        berth_error_free(err);
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s", dir);
    core_free(dir);
    return 0;
}

static int teardown_tmp(void **state)
{
    berth_error *err = NULL;
    (void)state;
    core_fs_remove_all(tmpdir, &err);
    berth_error_free(err);
    return 0;
}

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
    static char p[2][4096];
    static int next;
    char *s = p[next++ % 2];
    snprintf(s, 4096, "%s/testdata/keys/%s", sv_repo_root(), name);
    return s;
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

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" lacks \"%s\"", hay, needle);
}

static berth_sign_verify_opts opts_for(berth_sign_pubkey **keys, size_t n)
{
    berth_sign_verify_opts o = BERTH_SIGN_VERIFY_OPTS_INIT;
    o.keys = (const berth_sign_pubkey *const *)keys;
    o.n_keys = n;
    return o;
}

/* The subject digest of the v3 referrer manifest (read, not typed in). */
static void v3_subject_digest(char out[72])
{
    char *m = sv_read_vector(V3 "bundle-referring-manifest.json", NULL, 0);
    json_t *root = json_loads(m, 0, NULL);
    assert_non_null(root);
    snprintf(out, 72, "%s",
             json_string_value(json_object_get(json_object_get(root, "subject"), "digest")));
    json_decref(root);
    free(m);
}

/* ---- cosign v3 DSSE bundle ---- */

static void cosign_v3_dsse_bundle_verifies_for_its_subject(void **state)
{
    berth_sign_pubkey *k[2];
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0;
    char *bundle, digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    /* an unrelated key first: the hint puts the right one first anyway */
    k[0] = load_pub(sv_path("tekton-chains-cosign-keypair/cosign.pub"));
    k[1] = load_pub(sv_path(V3 "bundle-cosign.pub"));
    o = opts_for(k, 2);
    bundle = sv_read_vector(V3 "bundle-sigstore.json", &len, 0);
    v3_subject_digest(digest);
    if (berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_true(res.ok);
    assert_string_equal(res.format, "bundle-dsse");
    assert_string_equal(res.key_name, "bundle-cosign.pub");
    assert_string_equal(res.key_fingerprint, berth_sign_pubkey_fingerprint(k[1]));
    assert_string_equal(res.reason, "");
    free(bundle);
    berth_sign_pubkey_free(k[0]);
    berth_sign_pubkey_free(k[1]);
}

static void cosign_v3_bundle_fails_for_other_digest_key_or_signature(void **state)
{
    berth_sign_pubkey *good, *wrong;
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0;
    char *bundle, digest[72], *sig;
    const char *other = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    (void)state;
    SIGN_NEED_VECTORS();
    good = load_pub(sv_path(V3 "bundle-cosign.pub"));
    wrong = load_pub(sv_path("tekton-chains-cosign-keypair/cosign.pub"));
    bundle = sv_read_vector(V3 "bundle-sigstore.json", &len, 0);
    v3_subject_digest(digest);

    o = opts_for(&good, 1);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, other, &err), BERTH_EVERIFY);
    assert_false(res.ok);
    assert_contains(res.reason, "no statement subject has digest");
    assert_contains(berth_error_message(err), other);
    berth_error_free(err);
    err = NULL;

    o = opts_for(&wrong, 1);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "cosign.pub: signature mismatch");
    berth_error_free(err);
    err = NULL;

    /* one character of the DSSE signature changed */
    sig = strstr(bundle, "\"sig\":\"");
    assert_non_null(sig);
    sig[strlen("\"sig\":\"") + 10] = sig[strlen("\"sig\":\"") + 10] == 'A' ? 'B' : 'A';
    o = opts_for(&good, 1);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "signature mismatch");
    berth_error_free(err);
    free(bundle);
    berth_sign_pubkey_free(good);
    berth_sign_pubkey_free(wrong);
}

static void cosign_v3_bundle_tlog_promise_verifies_with_rekor_key(void **state)
{
    berth_sign_pubkey *key, *rekor, *not_rekor;
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0;
    char *bundle, digest[72];
    json_t *root;
    (void)state;
    SIGN_NEED_VECTORS();
    key = load_pub(sv_path(V3 "bundle-cosign.pub"));
    rekor = load_pub(sv_path("containers-image-cosign-simplesigning/rekor.pub"));
    not_rekor = load_pub(sv_path("containers-image-cosign-simplesigning/cosign.pub"));
    bundle = sv_read_vector(V3 "bundle-sigstore.json", &len, 0);
    v3_subject_digest(digest);
    o = opts_for(&key, 1);
    o.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    o.n_tlog_keys = 1;
    o.require_tlog = true;
    if (berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_true(res.tlog_verified);
    root = json_loads(bundle, 0, NULL);
    assert_int_equal(
        res.tlog_integrated_time,
        strtoll(json_string_value(json_object_get(
                    json_array_get(json_object_get(json_object_get(root, "verificationMaterial"),
                                                   "tlogEntries"),
                                   0),
                    "integratedTime")),
                NULL, 10));
    json_decref(root);

    o.tlog_keys = (const berth_sign_pubkey *const *)&not_rekor;
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err), BERTH_EVERIFY);
    assert_contains(res.reason, "no transparency-log entry verified");
    berth_error_free(err);
    free(bundle);
    berth_sign_pubkey_free(key);
    berth_sign_pubkey_free(rekor);
    berth_sign_pubkey_free(not_rekor);
}

/* ---- messageSignature bundles ---- */

static void conformance_happy_path_verifies_over_artifact_and_digest(void **state)
{
    berth_sign_pubkey *key, *rekor;
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0, alen = 0;
    char *bundle, *artifact, digest[72];
    (void)state;
    SIGN_NEED_VECTORS();
    key = load_pub(sv_path(CONF "managed-key-happy-path/key.pub"));
    rekor = load_pub(sv_path("containers-image-cosign-simplesigning/rekor.pub"));
    bundle = sv_read_vector(CONF "managed-key-happy-path/bundle.sigstore.json", &len, 0);
    artifact = sv_read_vector(CONF "a.txt", &alen, 0);
    o = opts_for(&key, 1);
    if (berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_string_equal(res.format, "bundle-message");
    assert_string_equal(res.key_name, "key.pub");
    core_sha256_digest(digest, artifact, alen);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err), 0);
    assert_true(res.ok);
    /* with the Rekor key, the hashedrekord promise verifies too */
    o.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    o.n_tlog_keys = 1;
    o.require_tlog = true;
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle, len, digest, &err), 0);
    assert_true(res.tlog_verified);
    /* another artifact */
    artifact[0] ^= 1;
    assert_int_equal(berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err),
                     BERTH_EVERIFY);
    assert_contains(res.reason, "the bundle signs digest");
    berth_error_free(err);
    free(bundle);
    free(artifact);
    berth_sign_pubkey_free(key);
    berth_sign_pubkey_free(rekor);
}

/* The staging Rekor key from the trusted root next to the bundle, as a PEM key. */
static berth_sign_pubkey *staging_rekor_key(void)
{
    char *tr = sv_read_vector(CONF "managed-key-and-trusted-root/trusted_root.json", NULL, 0);
    json_t *root = json_loads(tr, 0, NULL);
    json_t *pk = json_object_get(json_array_get(json_object_get(root, "tlogs"), 0), "publicKey");
    const char *raw = json_string_value(json_object_get(pk, "rawBytes"));
    berth_buf der = BERTH_BUF_INIT, pem = BERTH_BUF_INIT;
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    assert_non_null(raw);
    assert_int_equal(core_base64_decode(&der, raw, strlen(raw), false, &err), 0);
    assert_int_equal(sign_pem_encode(&pem, "PUBLIC KEY", der.ptr, der.len), 0);
    assert_int_equal(berth_sign_pubkey_load_pem(&k, "staging rekor", pem.ptr, pem.len, &err), 0);
    berth_buf_dispose(&der);
    berth_buf_dispose(&pem);
    json_decref(root);
    free(tr);
    return k;
}

static void conformance_staging_bundle_verifies_with_its_trusted_root_log(void **state)
{
    berth_sign_pubkey *key, *staging;
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0, alen = 0;
    char *bundle, *artifact;
    (void)state;
    SIGN_NEED_VECTORS();
    key = load_pub(sv_path(CONF "managed-key-and-trusted-root/key.pub"));
    staging = staging_rekor_key();
    bundle = sv_read_vector(CONF "managed-key-and-trusted-root/bundle.sigstore.json", &len, 0);
    artifact = sv_read_vector(CONF "a.txt", &alen, 0);
    o = opts_for(&key, 1);
    o.tlog_keys = (const berth_sign_pubkey *const *)&staging;
    o.n_tlog_keys = 1;
    o.require_tlog = true;
    if (berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_true(res.tlog_verified);
    free(bundle);
    free(artifact);
    berth_sign_pubkey_free(key);
    berth_sign_pubkey_free(staging);
}

static void conformance_no_key_fail_case_fails(void **state)
{
    berth_sign_verify_opts o = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0, alen = 0;
    char *bundle, *artifact;
    (void)state;
    SIGN_NEED_VECTORS();
    bundle = sv_read_vector(CONF "managed-key-no-key_fail/bundle.sigstore.json", &len, 0);
    artifact = sv_read_vector(CONF "a.txt", &alen, 0);
    assert_int_equal(berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err),
                     BERTH_EVERIFY);
    assert_false(res.ok);
    assert_contains(res.reason, "no trusted public keys");
    berth_error_free(err);
    free(bundle);
    free(artifact);
}

static void conformance_wrong_key_fail_case_fails(void **state)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    SIGN_NEED_VECTORS();
    /* the supplied key does not parse, so nothing can verify the bundle */
    assert_int_equal(
        berth_sign_pubkey_load_file(&k, sv_path(CONF "managed-key-wrong-key_fail/key.pub"), &err),
        BERTH_EINVAL);
    assert_null(k);
    assert_contains(berth_error_message(err), "managed-key-wrong-key_fail/key.pub");
    berth_error_free(err);
}

static void sigstore_go_bundle_without_tlog_verifies(void **state)
{
    berth_sign_pubkey *key, *rekor;
    berth_sign_verify_opts o;
    berth_sign_result res;
    berth_error *err = NULL;
    size_t len = 0, alen = 0;
    char *bundle, *artifact;
    (void)state;
    SIGN_NEED_VECTORS();
    key = load_pub(sv_path(SGO "public-key-validity.pem"));
    rekor = load_pub(sv_path("containers-image-cosign-simplesigning/rekor.pub"));
    bundle = sv_read_vector(SGO "public-key-validity.sigstore.json", &len, 0);
    artifact = sv_read_vector(SGO "artifact.txt", &alen, 0);
    o = opts_for(&key, 1);
    if (berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err) != 0)
        fail_msg("%s", berth_error_message(err));
    assert_false(res.tlog_verified);
    /* requiring a tlog entry fails: the bundle has none */
    o.tlog_keys = (const berth_sign_pubkey *const *)&rekor;
    o.n_tlog_keys = 1;
    o.require_tlog = true;
    assert_int_equal(berth_sign_bundle_verify_blob(&res, &o, bundle, len, artifact, alen, &err),
                     BERTH_EVERIFY);
    assert_contains(res.reason, "no transparency-log entry");
    berth_error_free(err);
    free(bundle);
    free(artifact);
    berth_sign_pubkey_free(key);
    berth_sign_pubkey_free(rekor);
}

/* ---- bundles berth creates ---- */

static void created_bundle_verifies_and_has_cosign_shape(void **state)
{
    berth_sign_privkey *priv = load_plain_priv("p256.key.pem");
    berth_sign_pubkey *pub = load_pub(testdata_key("p256.pub"));
    berth_sign_verify_opts o = opts_for(&pub, 1);
    berth_buf out = BERTH_BUF_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    sign_bundle b;
    const char *d = "sha256:d7d5640c741c60b47fa4b5530daa20a6469b55754a89dd42adbadadb59f9093c";
    json_t *root, *st;
    (void)state;
    assert_int_equal(berth_sign_bundle_create(&out, priv, NULL, d, &err), 0);
    assert_true(core_str_has_prefix(
        out.ptr, "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\","
                 "\"verificationMaterial\":{\"publicKey\":{\"hint\":\""));
    assert_int_equal(berth_sign_bundle_verify(&res, &o, out.ptr, out.len, d, &err), 0);
    assert_true(res.ok);
    assert_string_equal(res.format, "bundle-dsse");

    assert_int_equal(sign_bundle_parse(&b, out.ptr, out.len, &err), 0);
    assert_string_equal(b.hint, berth_sign_pubkey_fingerprint(pub));
    assert_string_equal(b.payload_type, "application/vnd.in-toto+json");
    st = json_loadb(b.payload.ptr, b.payload.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(st, "_type")),
                        "https://in-toto.io/Statement/v1");
    assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
                        BERTH_SIGN_PREDICATE_COSIGN_SIGN);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(st, "subject"), 0), "digest"),
            "sha256")),
        d + 7);
    assert_null(json_object_get(json_array_get(json_object_get(st, "subject"), 0), "name"));
    assert_true(json_is_object(json_object_get(st, "predicate")));
    json_decref(st);
    sign_bundle_dispose(&b);
    /* no fields beyond what cosign writes (its protobuf parser refuses unknown ones) */
    root = json_loadb(out.ptr, out.len, 0, NULL);
    assert_int_equal(json_object_size(root), 3);
    assert_int_equal(json_object_size(json_object_get(root, "verificationMaterial")), 1);
    json_decref(root);

    /* another digest fails */
    assert_int_equal(berth_sign_bundle_verify(
                         &res, &o, out.ptr, out.len,
                         "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                         &err),
                     BERTH_EVERIFY);
    berth_error_free(err);
    berth_buf_dispose(&out);
    berth_sign_privkey_free(priv);
    berth_sign_pubkey_free(pub);
}

static void created_bundle_subject_name_is_escaped(void **state)
{
    berth_sign_privkey *priv = load_plain_priv("ed25519.key.pem");
    berth_sign_pubkey *pub = load_pub(testdata_key("ed25519.pub"));
    berth_sign_verify_opts o = opts_for(&pub, 1);
    berth_buf out = BERTH_BUF_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    sign_bundle b;
    const char *d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    (void)state;
    assert_int_equal(berth_sign_bundle_create(&out, priv, "reg/app<1>", d, &err), 0);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, out.ptr, out.len, d, &err), 0);
    assert_int_equal(sign_bundle_parse(&b, out.ptr, out.len, &err), 0);
    assert_contains(b.payload.ptr, "{\"name\":\"reg/app\\u003c1\\u003e\",\"digest\":");
    sign_bundle_dispose(&b);
    berth_buf_dispose(&out);
    berth_sign_privkey_free(priv);
    berth_sign_pubkey_free(pub);
}

static void created_bundle_signature_verifies_with_openssl_over_pae(void **state)
{
    berth_sign_privkey *priv = load_plain_priv("p256.key.pem");
    berth_buf out = BERTH_BUF_INIT, pae = BERTH_BUF_INIT, log = BERTH_BUF_INIT;
    berth_error *err = NULL;
    sign_bundle b;
    char openssl[] = "openssl", dgst[] = "dgst", sha[] = "-sha256", verify[] = "-verify",
         signature[] = "-signature";
    char pub_path[4096], sig_path[2048], pae_path[2048];
    (void)state;
    if (!sv_have_program("openssl")) {
        printf("SKIP: openssl not installed\n");
        skip();
    }
    assert_int_equal(berth_sign_bundle_create(
                         &out, priv, NULL,
                         "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                         &err),
                     0);
    assert_int_equal(sign_bundle_parse(&b, out.ptr, out.len, &err), 0);
    /* PAE written by hand from the spec's definition */
    assert_int_equal(
        berth_buf_printf(&pae, "DSSEv1 28 application/vnd.in-toto+json %zu ", b.payload.len), 0);
    assert_int_equal(berth_buf_put(&pae, b.payload.ptr, b.payload.len), 0);
    snprintf(pub_path, sizeof(pub_path), "%s", testdata_key("p256.pub"));
    snprintf(sig_path, sizeof(sig_path), "%s/pae.sig", tmpdir);
    snprintf(pae_path, sizeof(pae_path), "%s/pae.bin", tmpdir);
    assert_int_equal(sv_write(sig_path, b.sig.ptr, b.sig.len), 0);
    assert_int_equal(sv_write(pae_path, pae.ptr, pae.len), 0);
    char *argv[] = {openssl, dgst, sha, verify, pub_path, signature, sig_path, pae_path, NULL};
    assert_int_equal(sv_run(argv, &log), 0);
    assert_contains(log.ptr, "Verified OK");
    sign_bundle_dispose(&b);
    berth_buf_dispose(&out);
    berth_buf_dispose(&pae);
    berth_buf_dispose(&log);
    berth_sign_privkey_free(priv);
}

/* A DSSE bundle around statement (signed properly) with the given payload type. */
static void make_dsse_bundle(berth_buf *out, const berth_sign_privkey *priv, const char *type,
                             const char *statement, int n_sigs)
{
    berth_buf pae = BERTH_BUF_INIT, sig = BERTH_BUF_INIT;
    berth_error *err = NULL;
    char *p64, *s64;
    assert_int_equal(sign_dsse_pae(&pae, type, statement, strlen(statement)), 0);
    assert_int_equal(sign_sign_message(&sig, priv, pae.ptr, pae.len, &err), 0);
    p64 = core_base64_encode(statement, strlen(statement));
    s64 = core_base64_encode(sig.ptr, sig.len);
    assert_int_equal(
        berth_buf_printf(out,
                         "{\"mediaType\":\"%s\",\"verificationMaterial\":{\"publicKey\""
                         ":{}},\"dsseEnvelope\":{\"payload\":\"%s\",\"payloadType\":"
                         "\"%s\",\"signatures\":[{\"sig\":\"%s\"}%s]}}",
                         BERTH_SIGN_BUNDLE_MEDIA_TYPE, p64, type, s64,
                         n_sigs == 2 ? ",{\"sig\":\"AAAA\"}" : ""),
        0);
    core_free(p64);
    core_free(s64);
    berth_buf_dispose(&pae);
    berth_buf_dispose(&sig);
}

static void dsse_bundle_checks_type_predicate_and_signature_count(void **state)
{
    static const char *hex = "3333333333333333333333333333333333333333333333333333333333333333";
    static const struct {
        const char *type, *predicate;
        int n_sigs;
        const char *word;
    } cases[] = {
        {"application/vnd.in-toto+json", "https://sigstore.dev/cosign/sign/v1", 1, NULL},
        {"application/json", "https://sigstore.dev/cosign/sign/v1", 1, "DSSE payload type"},
        {"application/vnd.in-toto+json", "https://slsa.dev/provenance/v1", 1, "predicate type"},
        {"application/vnd.in-toto+json", "https://sigstore.dev/cosign/sign/v1", 2,
         "has 2 signatures"},
    };
    berth_sign_privkey *priv = load_plain_priv("rsa2048.key.pem");
    berth_sign_pubkey *pub = load_pub(testdata_key("rsa2048.pub"));
    berth_sign_verify_opts o = opts_for(&pub, 1);
    char digest[72];
    (void)state;
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_buf st = BERTH_BUF_INIT, bundle = BERTH_BUF_INIT;
        berth_sign_result res;
        berth_error *err = NULL;
        int rc;
        berth_buf_printf(&st,
                         "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":"
                         "{\"sha256\":\"%s\"}}],\"predicateType\":\"%s\"}",
                         hex, cases[i].predicate);
        make_dsse_bundle(&bundle, priv, cases[i].type, st.ptr, cases[i].n_sigs);
        rc = berth_sign_bundle_verify(&res, &o, bundle.ptr, bundle.len, digest, &err);
        if (!cases[i].word) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, BERTH_EVERIFY);
            assert_contains(res.reason, cases[i].word);
            berth_error_free(err);
        }
        berth_buf_dispose(&st);
        berth_buf_dispose(&bundle);
    }
    berth_sign_privkey_free(priv);
    berth_sign_pubkey_free(pub);
}

static void certificate_and_malformed_bundles_are_refused(void **state)
{
    static const struct {
        const char *json, *word;
    } cases[] = {
        {"{\"mediaType\":\"application/"
         "vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
         "{\"certificate\":{\"rawBytes\":\"AAAA\"}},\"messageSignature\":{}}",
         "certificate"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle+json;version=0.1\"}",
         "unsupported bundle media type"},
        {"{\"mediaType\":\"application/"
         "vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
         "{\"publicKey\":{}}}",
         "exactly one of"},
        {"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"mediaType\":\"x\"}",
         "duplicate"},
        {"{\"mediaType\":\"application/"
         "vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
         "{\"publicKey\":{}},\"messageSignature\":{\"messageDigest\":{\"algorithm\":\"SHA2_512\","
         "\"digest\":\"AAAA\"},\"signature\":\"AAAA\"}}",
         "SHA2_256"},
        {"not json", "not JSON"},
        /* found by fuzz_bundle: only padding decoded to an empty signature */
        {"{\"mediaType\":\"application/"
         "vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
         "{\"publicKey\":{}},\"dsseEnvelope\":{\"payload\":\"e30=\",\"payloadType\":\"x\","
         "\"signatures\":[{\"sig\":\"==========\"}]}}",
         "base64"},
        /* found by fuzz_bundle: an oversized value was reported as out of memory */
        {"{\"mediaType\":\"application/"
         "vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":"
         "{\"publicKey\":{}},\"messageSignature\":{\"messageDigest\":{\"algorithm\":\"SHA2_256\","
         "\"digest\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         "A\"},"
         "\"signature\":\"AAAA\"}}",
         "too large"},
    };
    berth_sign_pubkey *pub = load_pub(testdata_key("p256.pub"));
    berth_sign_verify_opts o = opts_for(&pub, 1);
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_sign_result res;
        berth_error *err = NULL;
        assert_int_equal(berth_sign_bundle_verify(&res, &o, cases[i].json, strlen(cases[i].json),
                                                  "sha256:"
                                                  "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e83"
                                                  "10c060f61caaff8a",
                                                  &err),
                         BERTH_EVERIFY);
        assert_contains(res.reason, "invalid bundle");
        assert_contains(res.reason, cases[i].word);
        berth_error_free(err);
    }
    berth_sign_pubkey_free(pub);
}

static void ed25519_message_bundle_needs_artifact_bytes(void **state)
{
    berth_sign_privkey *priv = load_plain_priv("ed25519.key.pem");
    berth_sign_pubkey *pub = load_pub(testdata_key("ed25519.pub"));
    berth_sign_verify_opts o = opts_for(&pub, 1);
    berth_buf sig = BERTH_BUF_INIT, bundle = BERTH_BUF_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    const char artifact[] = "blob";
    unsigned char md[32];
    char digest[72], *md64, *s64;
    (void)state;
    core_sha256_digest(digest, artifact, strlen(artifact));
    EVP_Digest(artifact, strlen(artifact), md, NULL, EVP_sha256(), NULL);
    assert_int_equal(sign_sign_message(&sig, priv, artifact, strlen(artifact), &err), 0);
    md64 = core_base64_encode(md, 32);
    s64 = core_base64_encode(sig.ptr, sig.len);
    berth_buf_printf(&bundle,
                     "{\"mediaType\":\"%s\",\"verificationMaterial\":{\"publicKey\":{}},"
                     "\"messageSignature\":{\"messageDigest\":{\"algorithm\":\"SHA2_256\","
                     "\"digest\":\"%s\"},\"signature\":\"%s\"}}",
                     BERTH_SIGN_BUNDLE_MEDIA_TYPE, md64, s64);
    assert_int_equal(berth_sign_bundle_verify(&res, &o, bundle.ptr, bundle.len, digest, &err),
                     BERTH_EVERIFY);
    assert_contains(res.reason, "needs the artifact bytes");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_bundle_verify_blob(&res, &o, bundle.ptr, bundle.len, artifact,
                                                   strlen(artifact), &err),
                     0);
    core_free(md64);
    core_free(s64);
    berth_buf_dispose(&sig);
    berth_buf_dispose(&bundle);
    berth_sign_privkey_free(priv);
    berth_sign_pubkey_free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cosign_v3_dsse_bundle_verifies_for_its_subject),
        cmocka_unit_test(cosign_v3_bundle_fails_for_other_digest_key_or_signature),
        cmocka_unit_test(cosign_v3_bundle_tlog_promise_verifies_with_rekor_key),
        cmocka_unit_test(conformance_happy_path_verifies_over_artifact_and_digest),
        cmocka_unit_test(conformance_staging_bundle_verifies_with_its_trusted_root_log),
        cmocka_unit_test(conformance_no_key_fail_case_fails),
        cmocka_unit_test(conformance_wrong_key_fail_case_fails),
        cmocka_unit_test(sigstore_go_bundle_without_tlog_verifies),
        cmocka_unit_test(created_bundle_verifies_and_has_cosign_shape),
        cmocka_unit_test(created_bundle_subject_name_is_escaped),
        cmocka_unit_test(created_bundle_signature_verifies_with_openssl_over_pae),
        cmocka_unit_test(dsse_bundle_checks_type_predicate_and_signature_count),
        cmocka_unit_test(certificate_and_malformed_bundles_are_refused),
        cmocka_unit_test(ed25519_message_bundle_needs_artifact_bytes),
    };
    if (berth_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
