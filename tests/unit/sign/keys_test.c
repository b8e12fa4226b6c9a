/*
 * Unit tests for sign/ keys: public key loading and fingerprints, decryption of cosign.key files
 * (the interop vectors: tekton N=32768, empty password, cosign's "hello" keys incl. the SEC1
 * one), key-pair generation, and cross-checks of berth-written keys and signatures against
 * independent tools (openssl dgst, Python hashlib.scrypt + libsodium).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "../../support/sign_vectors.h"
#include "core/core.h"
#include "sign/internal.h"

/* ---- helpers ---- */

static char tmpdir[1024];

static int setup_tmp(void **state)
{
    berth_error *err = NULL;
    char *dir = NULL;
    (void)state;
    if (core_fs_mkdtemp(&dir, "/tmp", "berth-sign-test-", &err) < 0) {
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

static const char *tmp_path(const char *name)
{
    static char slots[4][4096];
    static int next;
    char *p = slots[next++ % 4];
    snprintf(p, 4096, "%s/%s", tmpdir, name);
    return p;
}

static const char *testdata_key(const char *name)
{
    static char slots[4][4096];
    static int next;
    char *p = slots[next++ % 4];
    snprintf(p, 4096, "%s/testdata/keys/%s", sv_repo_root(), name);
    return p;
}

static berth_sign_pubkey *load_pub(const char *path)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    int rc = berth_sign_pubkey_load_file(&k, path, &err);
    if (rc < 0)
        fprintf(stderr, "loading %s: %s\n", path, berth_error_message(err));
    assert_int_equal(rc, 0);
    assert_null(err);
    return k;
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

/* The hint a vector bundle carries: read from the bundle, not typed in here. */
static char *bundle_hint(const char *rel)
{
    berth_buf b = BERTH_BUF_INIT;
    sign_bundle parsed;
    berth_error *err = NULL;
    char *hint;
    assert_int_equal(sv_read(&b, sv_path(rel)), 0);
    assert_int_equal(sign_bundle_parse(&parsed, b.ptr, b.len, &err), 0);
    assert_non_null(parsed.hint);
    hint = core_strdup(parsed.hint);
    sign_bundle_dispose(&parsed);
    berth_buf_dispose(&b);
    return hint;
}

static void assert_err(const berth_error *err, int code, const char *word)
{
    assert_non_null(err);
    assert_int_equal(berth_error_code(err), code);
    if (!strstr(berth_error_message(err), word))
        fail_msg("message \"%s\" lacks \"%s\"", berth_error_message(err), word);
}

/* ---- public keys ---- */

static void pubkey_fingerprint_equals_cosign_bundle_hint(void **state)
{
    static const struct {
        const char *pub, *bundle;
    } cases[] = {
        {"cosign-v3-bundle-referrer-key/bundle-cosign.pub",
         "cosign-v3-bundle-referrer-key/bundle-sigstore.json"},
        {"sigstore-conformance-managed-key/managed-key-happy-path/key.pub",
         "sigstore-conformance-managed-key/managed-key-happy-path/bundle.sigstore.json"},
        {"sigstore-go-public-key-bundle-no-tlog/public-key-validity.pem",
         "sigstore-go-public-key-bundle-no-tlog/public-key-validity.sigstore.json"},
    };
    (void)state;
    SIGN_NEED_VECTORS();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_sign_pubkey *k = load_pub(sv_path(cases[i].pub));
        char *hint = bundle_hint(cases[i].bundle);
        assert_string_equal(berth_sign_pubkey_fingerprint(k), hint);
        assert_int_equal(strlen(berth_sign_pubkey_fingerprint(k)), BERTH_SIGN_FINGERPRINT_LEN);
        assert_string_equal(berth_sign_pubkey_type(k), "ecdsa-p256");
        core_free(hint);
        berth_sign_pubkey_free(k);
    }
}

static void pubkey_named_after_file_and_pem_round_trips_byte_exact(void **state)
{
    berth_buf file = BERTH_BUF_INIT, pem = BERTH_BUF_INIT;
    berth_sign_pubkey *k;
    berth_error *err = NULL;
    (void)state;
    SIGN_NEED_VECTORS();
    k = load_pub(sv_path("tekton-chains-cosign-keypair/cosign.pub"));
    assert_string_equal(berth_sign_pubkey_name(k), "cosign.pub");
    assert_int_equal(berth_sign_pubkey_pem(&pem, k, &err), 0);
    assert_int_equal(sv_read(&file, sv_path("tekton-chains-cosign-keypair/cosign.pub")), 0);
    /* Go's pem.Encode and ours agree on a P-256 SPKI */
    assert_string_equal(pem.ptr, file.ptr);
    berth_buf_dispose(&file);
    berth_buf_dispose(&pem);
    berth_sign_pubkey_free(k);
}

static void pubkey_loads_rsa_ed25519_p384_p521_and_pkcs1(void **state)
{
    static const struct {
        const char *file, *type;
    } cases[] = {
        {"rsa2048.pub", "rsa-2048"}, {"rsa2048-pkcs1.pub", "rsa-2048"}, {"ed25519.pub", "ed25519"},
        {"p384.pub", "ecdsa-p384"},  {"p521.pub", "ecdsa-p521"},        {"p256.pub", "ecdsa-p256"},
    };
    berth_sign_pubkey *spki, *pkcs1;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_sign_pubkey *k = load_pub(testdata_key(cases[i].file));
        assert_string_equal(berth_sign_pubkey_type(k), cases[i].type);
        berth_sign_pubkey_free(k);
    }
    /* PKCS#1 and PKIX forms of one key have one fingerprint */
    spki = load_pub(testdata_key("rsa2048.pub"));
    pkcs1 = load_pub(testdata_key("rsa2048-pkcs1.pub"));
    assert_string_equal(berth_sign_pubkey_fingerprint(spki), berth_sign_pubkey_fingerprint(pkcs1));
    berth_sign_pubkey_free(spki);
    berth_sign_pubkey_free(pkcs1);
}

static void pubkey_rejects_rsa1024_and_secp256k1(void **state)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(berth_sign_pubkey_load_file(&k, testdata_key("rsa1024.pub"), &err),
                     BERTH_EINVAL);
    assert_null(k);
    assert_err(berth_error_cause(err), BERTH_EINVAL, "RSA key size 1024");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_pubkey_load_file(&k, testdata_key("secp256k1.pub"), &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(berth_error_cause(err)), "unsupported elliptic"));
    /* the outer link names the file */
    assert_non_null(strstr(berth_error_message(err), "secp256k1.pub"));
    berth_error_free(err);
}

static void pubkey_rejects_corrupted_conformance_key(void **state)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    SIGN_NEED_VECTORS();
    assert_int_equal(
        berth_sign_pubkey_load_file(
            &k, sv_path("sigstore-conformance-managed-key/managed-key-wrong-key_fail/key.pub"),
            &err),
        BERTH_EINVAL);
    assert_null(k);
    assert_non_null(strstr(berth_error_message(berth_error_cause(err)), "invalid"));
    berth_error_free(err);
}

static void pubkey_rejects_private_key_pem_and_garbage(void **state)
{
    berth_buf pem = BERTH_BUF_INIT;
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(sv_read(&pem, testdata_key("p256.key.pem")), 0);
    assert_int_equal(berth_sign_pubkey_load_pem(&k, "p256.key.pem", pem.ptr, pem.len, &err),
                     BERTH_EINVAL);
    assert_err(err, BERTH_EINVAL, "unsupported PEM type");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_pubkey_load_pem(&k, "junk", "hello", 5, &err), BERTH_EINVAL);
    assert_err(err, BERTH_EINVAL, "no PEM block");
    berth_error_free(err);
    berth_buf_dispose(&pem);
}

static void pubkey_missing_file_is_not_found(void **state)
{
    berth_sign_pubkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(berth_sign_pubkey_load_file(&k, tmp_path("nope.pub"), &err), BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), "nope.pub"));
    berth_error_free(err);
}

/* ---- encrypted private keys (vectors) ---- */

/* Load a vector key and compare its public half with a vector .pub (PEM bytes). */
static void check_vector_key(const char *key_rel, const char *password, const char *pub_rel)
{
    berth_sign_privkey *k = NULL;
    berth_buf got = BERTH_BUF_INIT, want = BERTH_BUF_INIT;
    berth_error *err = NULL;
    int rc = berth_sign_privkey_load_file(&k, sv_path(key_rel), password, &err);
    if (rc < 0)
        fail_msg("%s: %s", key_rel, berth_error_message(err));
    assert_int_equal(berth_sign_privkey_public_pem(&got, k, &err), 0);
    assert_int_equal(sv_read(&want, sv_path(pub_rel)), 0);
    assert_string_equal(got.ptr, want.ptr);
    berth_buf_dispose(&got);
    berth_buf_dispose(&want);
    berth_sign_privkey_free(k);
}

static void privkey_tekton_n32768_decrypts_to_its_cosign_pub(void **state)
{
    char *pw;
    (void)state;
    SIGN_NEED_VECTORS();
    pw = sv_read_vector("tekton-chains-cosign-keypair/cosign.password", NULL, 0);
    assert_non_null(pw);
    check_vector_key("tekton-chains-cosign-keypair/cosign.key", pw,
                     "tekton-chains-cosign-keypair/cosign.pub");
    free(pw);
}

static void privkey_wrong_password_fails_with_eauth_naming_file(void **state)
{
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    SIGN_NEED_VECTORS();
    assert_int_equal(berth_sign_privkey_load_file(
                         &k, sv_path("tekton-chains-cosign-keypair/cosign.key"), "x", &err),
                     BERTH_EAUTH);
    assert_null(k);
    assert_err(err, BERTH_EAUTH, "wrong password");
    assert_non_null(strstr(berth_error_message(err), "tekton-chains-cosign-keypair/cosign.key"));
    berth_error_free(err);
    err = NULL;
    /* the empty-password key does not open with a non-empty one */
    assert_int_equal(
        berth_sign_privkey_load_file(&k,
                                     sv_path("sigstore-rs-cosign-empty-password-key/"
                                             "cosign_generated_encrypted_empty_private.key"),
                                     "x", &err),
        BERTH_EAUTH);
    berth_error_free(err);
}

static void privkey_empty_password_key_decrypts(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    check_vector_key(
        "sigstore-rs-cosign-empty-password-key/cosign_generated_encrypted_empty_private.key", "",
        "sigstore-rs-cosign-empty-password-key/derived/cosign.pub");
}

static void privkey_cosign_hello_keys_with_both_labels_decrypt(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    check_vector_key("cosign-keys-test-hello/cosign-labeled-rsa.key", "hello",
                     "cosign-keys-test-hello/derived/cosign-labeled-rsa.pub");
    check_vector_key("cosign-keys-test-hello/sigstore-labeled.key", "hello",
                     "cosign-keys-test-hello/derived/sigstore-labeled.pub");
}

static void privkey_sec1_plaintext_is_refused_after_decryption(void **state)
{
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    SIGN_NEED_VECTORS();
    assert_int_equal(
        berth_sign_privkey_load_file(
            &k, sv_path("cosign-keys-test-hello/cosign-labeled-ec-sec1.key"), "hello", &err),
        BERTH_EINVAL);
    assert_null(k);
    assert_err(err, BERTH_EINVAL, "not PKCS#8");
    assert_non_null(strstr(berth_error_message(err), "cosign-labeled-ec-sec1.key"));
    berth_error_free(err);
}

static void privkey_from_pkcs8_refuses_sec1_der(void **state)
{
    berth_buf pem = BERTH_BUF_INIT;
    char *label = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    BIO *bio;
    (void)state;
    assert_int_equal(sv_read(&pem, testdata_key("p256-sec1.key.pem")), 0);
    bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    char *header = NULL;
    assert_int_equal(PEM_read_bio(bio, &label, &header, &der, &der_len), 1);
    assert_string_equal(label, "EC PRIVATE KEY");
    assert_int_equal(sign_privkey_from_pkcs8(&k, "sec1.der", der, (size_t)der_len, &err),
                     BERTH_EINVAL);
    assert_err(err, BERTH_EINVAL, "SEC1");
    berth_error_free(err);
    OPENSSL_free(label);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    berth_buf_dispose(&pem);
}

/* ---- encrypted key file checks (no scrypt reached) ---- */

/* Replace the JSON inside a PEM key with json (re-encoded), keeping the label. */
static void make_key_file(berth_buf *out, const char *label, const char *json)
{
    assert_int_equal(sign_pem_encode(out, label, json, strlen(json)), 0);
}

static void enckey_refuses_unlisted_scrypt_costs_and_algorithms(void **state)
{
    static const struct {
        const char *json, *word;
    } cases[] = {
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1024,\"r\":8,\"p\":1},\"salt\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},\"cipher\":{\"name\":\"nacl/"
         "secretbox\","
         "\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
         "scrypt parameters"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":65536,\"r\":16,\"p\":1},\"salt\":"
         "\"AAAA\"},\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\"AAAA\"},\"ciphertext\":"
         "\"AAAA\"}",
         "scrypt parameters"},
        {"{\"kdf\":{\"name\":\"pbkdf2\",\"params\":{\"N\":65536,\"r\":8,\"p\":1},\"salt\":"
         "\"AAAA\"},\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\"AAAA\"},\"ciphertext\":"
         "\"AAAA\"}",
         "unsupported kdf"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":65536,\"r\":8,\"p\":1},\"salt\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},\"cipher\":{\"name\":\"nacl/"
         "secretbox\","
         "\"nonce\":\"AAAA\"},\"ciphertext\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
         "\"nonce\" has 3 bytes"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"name\":\"scrypt\"}}", "not a JSON object"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_buf file = BERTH_BUF_INIT;
        sign_enckey k;
        berth_error *err = NULL;
        make_key_file(&file, "ENCRYPTED SIGSTORE PRIVATE KEY", cases[i].json);
        assert_int_equal(sign_enckey_parse(&k, "case.key", file.ptr, file.len, &err), BERTH_EINVAL);
        assert_err(err, BERTH_EINVAL, cases[i].word);
        berth_error_free(err);
        berth_buf_dispose(&file);
    }
}

static void enckey_refuses_other_pem_labels(void **state)
{
    berth_buf pem = BERTH_BUF_INIT;
    berth_sign_privkey *k = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(sv_read(&pem, testdata_key("p256.key.pem")), 0);
    assert_int_equal(berth_sign_privkey_load_pem(&k, "p256.key.pem", pem.ptr, pem.len, "", &err),
                     BERTH_EINVAL);
    assert_err(err, BERTH_EINVAL, "unsupported PEM type \"PRIVATE KEY\"");
    berth_error_free(err);
    berth_buf_dispose(&pem);
}

/* ---- generation ---- */

static void generate_writes_0600_key_and_pub_in_cosign_format(void **state)
{
    const char *prefix = tmp_path("gen");
    berth_buf key = BERTH_BUF_INIT, json = BERTH_BUF_INIT;
    sign_enckey parsed;
    struct stat st;
    berth_error *err = NULL;
    char *b64 = NULL;
    const char *body, *end;
    berth_sign_pubkey *pub;
    (void)state;
    assert_int_equal(berth_sign_key_pair_write(prefix, "secret", false, &err), 0);
    assert_int_equal(stat(tmp_path("gen.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(tmp_path("gen.pub"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    assert_int_equal(sv_read(&key, tmp_path("gen.key")), 0);
    assert_true(core_str_has_prefix(key.ptr, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert_true(core_str_has_suffix(key.ptr, "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    /* 64-column body; the JSON has cosign's field order */
    body = strchr(key.ptr, '\n') + 1;
    end = strstr(body, "-----END");
    for (const char *line = body; line < end;) {
        const char *nl = strchr(line, '\n');
        assert_true(nl - line <= 64);
        assert_true(nl - line == 64 || strncmp(nl + 1, "-----END", 8) == 0);
        for (const char *c = line; c < nl; c++) {
            if (!b64)
                b64 = core_calloc(1, (size_t)(end - body) + 1);
            b64[strlen(b64)] = *c;
        }
        line = nl + 1;
    }
    assert_int_equal(core_base64_decode(&json, b64, strlen(b64), false, &err), 0);
    assert_true(core_str_has_prefix(
        json.ptr,
        "{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":65536,\"r\":8,\"p\":1},\"salt\":\""));
    assert_non_null(strstr(json.ptr, "\"},\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\""));
    assert_non_null(strstr(json.ptr, "\"},\"ciphertext\":\""));
    assert_int_equal(sign_enckey_parse(&parsed, "gen.key", key.ptr, key.len, &err), 0);
    assert_int_equal(parsed.salt_len, 32);
    assert_int_equal(parsed.n, 65536);
    /* a P-256 PKCS#8 the size Go writes (138 bytes) plus the 16-byte tag */
    assert_int_equal(parsed.ciphertext_len, 138 + 16);
    sign_enckey_dispose(&parsed);

    pub = load_pub(tmp_path("gen.pub"));
    assert_string_equal(berth_sign_pubkey_type(pub), "ecdsa-p256");
    berth_sign_pubkey_free(pub);
    core_free(b64);
    berth_buf_dispose(&key);
    berth_buf_dispose(&json);
}

static void generate_refuses_to_overwrite_unless_forced(void **state)
{
    const char *prefix = tmp_path("twice");
    berth_buf first = BERTH_BUF_INIT, second = BERTH_BUF_INIT;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(berth_sign_key_pair_write(prefix, "", false, &err), 0);
    assert_int_equal(sv_read(&first, tmp_path("twice.pub")), 0);
    assert_int_equal(berth_sign_key_pair_write(prefix, "", false, &err), BERTH_ECONFLICT);
    assert_err(err, BERTH_ECONFLICT, "already exists");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(berth_sign_key_pair_write(prefix, "", true, &err), 0);
    assert_int_equal(sv_read(&second, tmp_path("twice.pub")), 0);
    assert_string_not_equal(first.ptr, second.ptr);
    berth_buf_dispose(&first);
    berth_buf_dispose(&second);
}

static void generated_key_signs_and_its_pub_verifies(void **state)
{
    const char *prefix = tmp_path("rt");
    berth_sign_privkey *priv = NULL;
    berth_sign_pubkey *pub, *derived = NULL;
    berth_buf payload = BERTH_BUF_INIT, sig = BERTH_BUF_INIT;
    berth_sign_verify_opts opts = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_sign_result res;
    berth_error *err = NULL;
    const char *digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    (void)state;
    assert_int_equal(berth_sign_key_pair_write(prefix, "pw", false, &err), 0);
    assert_int_equal(berth_sign_privkey_load_file(&priv, tmp_path("rt.key"), "pw", &err), 0);
    pub = load_pub(tmp_path("rt.pub"));
    assert_int_equal(berth_sign_privkey_public(&derived, priv, &err), 0);
    assert_string_equal(berth_sign_pubkey_fingerprint(derived), berth_sign_pubkey_fingerprint(pub));

    assert_int_equal(berth_sign_simple_payload(&payload, "reg.example/app", digest, &err), 0);
    assert_int_equal(berth_sign_privkey_sign(&sig, priv, payload.ptr, payload.len, &err), 0);
    opts.keys = (const berth_sign_pubkey *const *)&pub;
    opts.n_keys = 1;
    berth_sign_simple_sig s = {payload.ptr, payload.len, sig.ptr, NULL};
    assert_int_equal(berth_sign_verify_simple(&res, &opts, &s, digest, &err), 0);
    assert_true(res.ok);
    assert_string_equal(res.key_name, "rt.pub");
    assert_string_equal(res.identity, "reg.example/app");

    berth_sign_pubkey_free(derived);
    berth_sign_pubkey_free(pub);
    berth_sign_privkey_free(priv);
    berth_buf_dispose(&payload);
    berth_buf_dispose(&sig);
}

static void generated_signature_verifies_with_openssl_dgst(void **state)
{
    const char *prefix = tmp_path("ossl");
    berth_sign_privkey *priv = NULL;
    berth_buf sig = BERTH_BUF_INIT, der = BERTH_BUF_INIT, out = BERTH_BUF_INIT;
    berth_error *err = NULL;
    const char payload[] = "{\"critical\":{}} any bytes";
    char openssl[] = "openssl", dgst[] = "dgst", sha[] = "-sha256", verify[] = "-verify",
         signature[] = "-signature";
    char pub_path[4096], sig_path[4096], data_path[4096];
    (void)state;
    if (!sv_have_program("openssl")) {
        printf("SKIP: openssl not installed\n");
        skip();
    }
    assert_int_equal(berth_sign_key_pair_write(prefix, "pw", false, &err), 0);
    assert_int_equal(berth_sign_privkey_load_file(&priv, tmp_path("ossl.key"), "pw", &err), 0);
    assert_int_equal(berth_sign_privkey_sign(&sig, priv, payload, strlen(payload), &err), 0);
    assert_int_equal(core_base64_decode(&der, sig.ptr, sig.len, false, &err), 0);
    snprintf(pub_path, sizeof(pub_path), "%s", tmp_path("ossl.pub"));
    snprintf(sig_path, sizeof(sig_path), "%s", tmp_path("ossl.sig.der"));
    snprintf(data_path, sizeof(data_path), "%s", tmp_path("ossl.payload"));
    assert_int_equal(sv_write(sig_path, der.ptr, der.len), 0);
    assert_int_equal(sv_write(data_path, payload, strlen(payload)), 0);
    char *argv[] = {openssl, dgst, sha, verify, pub_path, signature, sig_path, data_path, NULL};
    assert_int_equal(sv_run(argv, &out), 0);
    assert_non_null(strstr(out.ptr, "Verified OK"));
    /* and openssl notices a changed payload */
    assert_int_equal(sv_write(data_path, payload, strlen(payload) - 1), 0);
    berth_buf_clear(&out);
    assert_int_equal(sv_run(argv, &out), 1);
    berth_sign_privkey_free(priv);
    berth_buf_dispose(&sig);
    berth_buf_dispose(&der);
    berth_buf_dispose(&out);
}

static void generated_key_decrypts_with_python_scrypt_and_libsodium(void **state)
{
    const char *prefix = tmp_path("py");
    berth_buf der = BERTH_BUF_INIT, out = BERTH_BUF_INIT;
    berth_sign_pubkey *pub;
    berth_error *err = NULL;
    char python[] = "python3";
    char script[4096], key_path[4096], der_path[4096];
    const unsigned char *p;
    PKCS8_PRIV_KEY_INFO *p8;
    EVP_PKEY *pkey;
    (void)state;
    if (!sv_have_program("python3")) {
        printf("SKIP: python3 not installed\n");
        skip();
    }
    snprintf(script, sizeof(script), "%s/tests/support/cosign_key_decrypt.py", sv_repo_root());
    snprintf(key_path, sizeof(key_path), "%s", tmp_path("py.key"));
    snprintf(der_path, sizeof(der_path), "%s", tmp_path("py.der"));
    assert_int_equal(berth_sign_key_pair_write(prefix, "hunter2", false, &err), 0);
    char *argv[] = {python, script, key_path, der_path, NULL};

    setenv("BERTH_TEST_PASSWORD", "wrong", 1);
    assert_int_equal(sv_run(argv, &out), 1);
    setenv("BERTH_TEST_PASSWORD", "hunter2", 1);
    berth_buf_clear(&out);
    if (sv_run(argv, &out) != 0)
        fail_msg("decrypt script failed: %s", out.ptr ? out.ptr : "");
    unsetenv("BERTH_TEST_PASSWORD");

    /* the plaintext is PKCS#8 whose public key is the written .pub */
    assert_int_equal(sv_read(&der, der_path), 0);
    p = (const unsigned char *)der.ptr;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der.len);
    assert_non_null(p8);
    assert_ptr_equal(p, (const unsigned char *)der.ptr + der.len);
    pkey = EVP_PKCS82PKEY(p8);
    assert_non_null(pkey);
    pub = load_pub(tmp_path("py.pub"));
    assert_int_equal(EVP_PKEY_eq(pkey, pub->pkey), 1);
    berth_sign_pubkey_free(pub);
    EVP_PKEY_free(pkey);
    PKCS8_PRIV_KEY_INFO_free(p8);
    sodium_memzero(der.ptr, der.len);
    berth_buf_dispose(&der);
    berth_buf_dispose(&out);
}

/* ---- other key types ---- */

static void rsa_ed25519_p384_p521_keys_sign_and_verify(void **state)
{
    static const struct {
        const char *priv, *pub;
    } cases[] = {
        {"rsa2048.key.pem", "rsa2048.pub"},
        {"ed25519.key.pem", "ed25519.pub"},
        {"p384.key.pem", "p384.pub"},
        {"p521.key.pem", "p521.pub"},
    };
    const char msg[] = "message";
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_sign_privkey *priv = load_plain_priv(cases[i].priv);
        berth_sign_pubkey *pub = load_pub(testdata_key(cases[i].pub));
        berth_sign_pubkey *other = load_pub(testdata_key("p256.pub"));
        berth_buf sig = BERTH_BUF_INIT;
        berth_error *err = NULL;
        assert_int_equal(sign_sign_message(&sig, priv, msg, strlen(msg), &err), 0);
        assert_true(sign_verify_message(pub, msg, strlen(msg), (unsigned char *)sig.ptr, sig.len));
        assert_false(
            sign_verify_message(pub, msg, strlen(msg) - 1, (unsigned char *)sig.ptr, sig.len));
        assert_false(
            sign_verify_message(other, msg, strlen(msg), (unsigned char *)sig.ptr, sig.len));
        berth_buf_dispose(&sig);
        berth_sign_privkey_free(priv);
        berth_sign_pubkey_free(pub);
        berth_sign_pubkey_free(other);
    }
}

static void ed25519ph_signature_is_accepted(void **state)
{
    berth_sign_privkey *priv = load_plain_priv("ed25519.key.pem");
    berth_sign_pubkey *pub = load_pub(testdata_key("ed25519.pub"));
    unsigned char seed[32], pk[32], sk[64], sig[64];
    size_t seed_len = sizeof(seed);
    crypto_sign_state st;
    const char msg[] = "image payload";
    (void)state;
    assert_int_equal(EVP_PKEY_get_raw_private_key(priv->pkey, seed, &seed_len), 1);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const unsigned char *)msg, strlen(msg));
    assert_int_equal(crypto_sign_final_create(&st, sig, NULL, sk), 0);
    assert_true(sign_verify_message(pub, msg, strlen(msg), sig, sizeof(sig)));
    sig[3] ^= 1;
    assert_false(sign_verify_message(pub, msg, strlen(msg), sig, sizeof(sig)));
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(seed, sizeof(seed));
    berth_sign_privkey_free(priv);
    berth_sign_pubkey_free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pubkey_fingerprint_equals_cosign_bundle_hint),
        cmocka_unit_test(pubkey_named_after_file_and_pem_round_trips_byte_exact),
        cmocka_unit_test(pubkey_loads_rsa_ed25519_p384_p521_and_pkcs1),
        cmocka_unit_test(pubkey_rejects_rsa1024_and_secp256k1),
        cmocka_unit_test(pubkey_rejects_corrupted_conformance_key),
        cmocka_unit_test(pubkey_rejects_private_key_pem_and_garbage),
        cmocka_unit_test(pubkey_missing_file_is_not_found),
        cmocka_unit_test(privkey_tekton_n32768_decrypts_to_its_cosign_pub),
        cmocka_unit_test(privkey_wrong_password_fails_with_eauth_naming_file),
        cmocka_unit_test(privkey_empty_password_key_decrypts),
        cmocka_unit_test(privkey_cosign_hello_keys_with_both_labels_decrypt),
        cmocka_unit_test(privkey_sec1_plaintext_is_refused_after_decryption),
        cmocka_unit_test(privkey_from_pkcs8_refuses_sec1_der),
        cmocka_unit_test(enckey_refuses_unlisted_scrypt_costs_and_algorithms),
        cmocka_unit_test(enckey_refuses_other_pem_labels),
        cmocka_unit_test(generate_writes_0600_key_and_pub_in_cosign_format),
        cmocka_unit_test(generate_refuses_to_overwrite_unless_forced),
        cmocka_unit_test(generated_key_signs_and_its_pub_verifies),
        cmocka_unit_test(generated_signature_verifies_with_openssl_dgst),
        cmocka_unit_test(generated_key_decrypts_with_python_scrypt_and_libsodium),
        cmocka_unit_test(rsa_ed25519_p384_p521_keys_sign_and_verify),
        cmocka_unit_test(ed25519ph_signature_is_accepted),
    };
    if (berth_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
