/*
 * Unit tests for engine/signatures.c over an in-memory registry: a fake transport that stores
 * manifests (by tag and by digest) and blobs, accepts uploads, and answers 404 on the referrers
 * API as Debian's registry does. The cosign captures in the shared vectors are served from it
 * byte for byte, so verification is tested on what cosign really wrote, and what berth writes is
 * compared with those captures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/signatures.h>

#include "core/http.h"
#include "oci/internal.h"
#include "tests/support/sign_vectors.h"

/* ------------------------------------------------------------------ the in-memory registry */
typedef struct object {
    char *key; /* "manifest <repo> <tag-or-digest>" or "blob <digest>" */
    char *media_type;
    char *digest;
    char *data; /* NULL: a phantom manifest (answers HEAD only) */
    size_t len;
} object;

#define MAX_OBJ 256
static object store[MAX_OBJ];
static size_t n_store;
static size_t n_requests;

static object *find(const char *key)
{
    for (size_t i = 0; i < n_store; i++) {
        if (strcmp(store[i].key, key) == 0)
            return &store[i];
    }
    return NULL;
}

static void put(const char *key, const char *media_type, const char *digest, const void *data,
                size_t len)
{
    object *o = find(key);
    if (!o) {
        assert_true(n_store < MAX_OBJ);
        o = &store[n_store++];
        o->key = core_strdup(key);
    } else {
        core_free(o->media_type);
        core_free(o->digest);
        core_free(o->data);
    }
    o->media_type = media_type ? core_strdup(media_type) : NULL;
    o->digest = core_strdup(digest);
    o->data = NULL;
    if (data) {
        o->data = core_malloc(len + 1);
        memcpy(o->data, data, len);
        o->data[len] = '\0';
    }
    o->len = len;
}

static void store_reset(void)
{
    for (size_t i = 0; i < n_store; i++) {
        core_free(store[i].key);
        core_free(store[i].media_type);
        core_free(store[i].digest);
        core_free(store[i].data);
    }
    n_store = 0;
    n_requests = 0;
}

static void put_manifest(const char *repo, const char *ref, const char *media_type,
                         const void *data, size_t len)
{
    char digest[72], key[512];
    core_sha256_digest(digest, data, len);
    snprintf(key, sizeof(key), "manifest %s %s", repo, ref);
    put(key, media_type, digest, data, len);
    snprintf(key, sizeof(key), "manifest %s %s", repo, digest);
    put(key, media_type, digest, data, len);
}

static void put_blob(const void *data, size_t len)
{
    char digest[72], key[128];
    core_sha256_digest(digest, data, len);
    snprintf(key, sizeof(key), "blob %s", digest);
    put(key, NULL, digest, data, len);
}

/* The bytes of a stored object, or NULL. */
static const object *get_manifest(const char *repo, const char *ref)
{
    char key[512];
    snprintf(key, sizeof(key), "manifest %s %s", repo, ref);
    return find(key);
}

static const object *get_blob(const char *digest)
{
    char key[128];
    snprintf(key, sizeof(key), "blob %s", digest);
    return find(key);
}

static void reply(core_http_xfer *x, long status, const char *headers, const void *body, size_t len)
{
    berth_buf_init(&x->resp.headers, 0);
    berth_buf_init(&x->resp.body, 0);
    x->resp.url = core_strdup(x->req.url);
    x->resp.status = status;
    if (headers)
        berth_buf_puts(&x->resp.headers, headers);
    if (!body || strcmp(x->req.method, "HEAD") == 0)
        return;
    if (status >= 200 && status < 300 && x->req.sink)
        x->rc = x->req.sink(x->req.sink_payload, body, len);
    else
        berth_buf_put(&x->resp.body, body, len);
    x->resp.body_bytes = (int64_t)len;
}

static void request_body(berth_buf *b, core_http_xfer *x)
{
    if (x->req.source) {
        char chunk[4096];
        ssize_t got;
        while ((got = x->req.source(x->req.source_payload, chunk, sizeof(chunk))) > 0)
            berth_buf_put(b, chunk, (size_t)got);
    } else if (x->req.body) {
        berth_buf_put(b, x->req.body, x->req.body_len);
    }
}

static void serve(core_http_xfer *x)
{
    const char *v2 = strstr(x->req.url, "/v2/");
    char path[1024], hdr[1200], key[600];
    char *q, *at;
    berth_buf body = BERTH_BUF_INIT;

    n_requests++;
    assert_non_null(v2);
    snprintf(path, sizeof(path), "%s", v2 + 4);
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    if ((at = strstr(path, "/referrers/"))) {
        reply(x, 404, NULL, "404 page not found\n", 19); /* no referrers API */
    } else if ((at = strstr(path, "/manifests/"))) {
        *at = '\0';
        const char *ref = at + strlen("/manifests/");
        if (strcmp(x->req.method, "PUT") == 0) {
            char *ct = NULL;
            for (size_t i = 0; x->req.headers && x->req.headers[i]; i++) {
                if (strncmp(x->req.headers[i], "Content-Type: ", 14) == 0)
                    ct = core_strdup(x->req.headers[i] + 14);
            }
            request_body(&body, x);
            put_manifest(path, ref, ct, body.ptr, body.len);
            core_free(ct);
            snprintf(hdr, sizeof(hdr), "Docker-Content-Digest: %s\r\n",
                     get_manifest(path, ref)->digest);
            reply(x, 201, hdr, NULL, 0);
        } else {
            const object *o = get_manifest(path, ref);
            if (!o || (!o->data && strcmp(x->req.method, "HEAD") != 0)) {
                reply(x, 404, NULL, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}", 40);
            } else {
                snprintf(hdr, sizeof(hdr),
                         "Content-Type: %s\r\nDocker-Content-Digest: %s\r\nContent-Length: "
                         "%zu\r\n",
                         o->media_type ? o->media_type : BERTH_MT_OCI_MANIFEST, o->digest, o->len);
                reply(x, 200, hdr, o->data, o->len);
            }
        }
    } else if ((at = strstr(path, "/blobs/uploads/"))) {
        if (strcmp(x->req.method, "POST") == 0) {
            *at = '\0';
            snprintf(hdr, sizeof(hdr), "Location: /v2/%s/blobs/uploads/u%zu\r\n", path, n_requests);
            reply(x, 202, hdr, NULL, 0);
        } else {
            assert_string_equal(x->req.method, "PUT");
            assert_non_null(query);
            q = strstr(query, "digest=");
            assert_non_null(q);
            snprintf(key, sizeof(key), "%s", q + 7);
            char *colon = strstr(key, "%3A");
            if (colon) /* sha256%3A<hex> */
                memmove(colon + 1, colon + 3, strlen(colon + 3) + 1);
            if (colon)
                *colon = ':';
            request_body(&body, x);
            char digest[72];
            core_sha256_digest(digest, body.ptr ? body.ptr : "", body.len);
            assert_string_equal(digest, key);
            put_blob(body.ptr ? body.ptr : "", body.len);
            snprintf(hdr, sizeof(hdr), "Docker-Content-Digest: %s\r\n", digest);
            reply(x, 201, hdr, NULL, 0);
        }
    } else if ((at = strstr(path, "/blobs/"))) {
        const object *o = get_blob(at + strlen("/blobs/"));
        if (!o) {
            reply(x, 404, NULL, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}", 36);
        } else {
            snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\nDocker-Content-Digest: %s\r\n",
                     o->len, o->digest);
            reply(x, 200, hdr, o->data, o->len);
        }
    } else {
        fail_msg("unexpected request %s %s", x->req.method, x->req.url);
    }
    berth_buf_dispose(&body);
}

static int fake_run(void *self, core_http_xfer *xfers, size_t n)
{
    (void)self;
    for (size_t i = 0; i < n; i++)
        serve(&xfers[i]);
    return 0;
}

static void no_sleep(void *payload, int64_t ms)
{
    (void)payload;
    (void)ms;
}

static berth_oci_client *client(void)
{
    core_http_transport t = {1, fake_run, NULL, NULL};
    core_http *h = NULL;
    berth_oci_client *c = NULL;
    berth_oci_client_opts opts = {.version = BERTH_OCI_CLIENT_OPTS_VERSION,
                                  .docker_config = "/nonexistent/berth-test/config.json"};
    oci_hooks hooks = {no_sleep, NULL, NULL};

    assert_int_equal(core_http_new_with_transport(&h, &t, NULL), 0);
    assert_int_equal(oci_client_new_with_http(&c, &opts, h, NULL), 0);
    oci_client_set_hooks(c, &hooks);
    return c;
}

static berth_oci_ref ref_of(const char *text)
{
    berth_oci_ref r;
    if (berth_oci_ref_parse(&r, text, NULL) < 0)
        fail_msg("bad test reference %s", text);
    return r;
}

/* ------------------------------------------------------------------ helpers */
static char *vec(const char *rel, size_t *len)
{
    char *d = sv_read_vector(rel, len, 0);
    if (!d)
        fail_msg("cannot read vector %s", rel);
    return d;
}

/* s with every occurrence of from replaced by to (heap). */
static char *replace(const char *s, const char *from, const char *to)
{
    berth_buf b = BERTH_BUF_INIT;
    const char *p = s, *hit;
    while ((hit = strstr(p, from))) {
        berth_buf_put(&b, p, (size_t)(hit - p));
        berth_buf_puts(&b, to);
        p = hit + strlen(from);
    }
    berth_buf_puts(&b, p);
    return berth_buf_detach(&b);
}

static berth_sign_privkey *new_key(const char *name, berth_sign_pubkey **pub_out)
{
    berth_buf key = BERTH_BUF_INIT, pub = BERTH_BUF_INIT;
    berth_sign_privkey *k = NULL;
    assert_int_equal(berth_sign_key_pair_generate(&key, &pub, "", NULL), 0);
    assert_int_equal(berth_sign_privkey_load_pem(&k, name, key.ptr, key.len, "", NULL), 0);
    if (pub_out)
        assert_int_equal(berth_sign_pubkey_load_pem(pub_out, name, pub.ptr, pub.len, NULL), 0);
    berth_buf_dispose(&key);
    berth_buf_dispose(&pub);
    return k;
}

static berth_sign_pubkey *vec_key(const char *rel, const char *name)
{
    size_t len;
    char *pem = vec(rel, &len);
    berth_sign_pubkey *k = NULL;
    assert_int_equal(berth_sign_pubkey_load_pem(&k, name, pem, len, NULL), 0);
    free(pem);
    return k;
}

/* Verify ref with keys; returns the code, result in *res (dispose it). */
static int verify(berth_signatures_result *res, const char *ref_text, berth_sign_pubkey **keys,
                  size_t n, berth_error **err)
{
    berth_sign_verify_opts trust = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_signatures_verify_opts opts = BERTH_SIGNATURES_VERIFY_OPTS_INIT;
    berth_oci_client *c = client();
    berth_oci_ref ref = ref_of(ref_text);
    trust.keys = (const berth_sign_pubkey *const *)keys;
    trust.n_keys = n;
    opts.trust = &trust;
    int rc = berth_signatures_verify(res, c, &ref, &opts, err);
    berth_oci_ref_dispose(&ref);
    berth_oci_client_free(c);
    return rc;
}

#define SUBJECT_MANIFEST                                                                           \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","           \
    "\"config\":{\"mediaType\":\"application/vnd.cncf.flux.config.v1+json\",\"size\":2,"           \
    "\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\"},"     \
    "\"layers\":[]}"
#define CLASSIC_SUBJECT "sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"
#define BUNDLE_SUBJECT "sha256:d7d5640c741c60b47fa4b5530daa20a6469b55754a89dd42adbadadb59f9093c"

/* Serve the cosign v3 classic capture: the .sig manifest and payload of CLASSIC_SUBJECT in
 * localhost:15381/tobby/fixture (the subject itself only answers HEAD). */
static void serve_classic_vector(const char *sig_tag_of)
{
    size_t mlen, plen;
    char *m = vec("cosign-v3-classic-sigtag-key/sig-manifest.json", &mlen);
    char *p = vec("cosign-v3-classic-sigtag-key/payload.json", &plen);
    char tag[128];
    put("manifest tobby/fixture " CLASSIC_SUBJECT, BERTH_MT_OCI_MANIFEST, CLASSIC_SUBJECT, NULL, 0);
    snprintf(tag, sizeof(tag), "sha256-%s.sig", sig_tag_of + 7);
    put_manifest("tobby/fixture", tag, BERTH_MT_OCI_MANIFEST, m, mlen);
    put_blob(p, plen);
    free(m);
    free(p);
}

/* ------------------------------------------------------------------ tests */
static int setup(void **state)
{
    (void)state;
    store_reset();
    return 0;
}

static void verify_accepts_cosign_classic_capture(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    serve_classic_vector(CLASSIC_SUBJECT);
    berth_sign_pubkey *keys[2] = {
        vec_key("cosign-v3-bundle-referrer-key/bundle-cosign.pub", "b.pub"),
        vec_key("cosign-v3-classic-sigtag-key/cosign.pub", "cosign.pub")};
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:15381/tobby/fixture@" CLASSIC_SUBJECT, keys, 2, &err),
                     0);
    assert_null(err);
    assert_true(res.ok);
    assert_int_equal(res.n_entries, 1);
    assert_int_equal(res.entries[0].format, BERTH_SIGNATURES_CLASSIC);
    assert_string_equal(res.entries[0].check.key_name, "cosign.pub");
    assert_string_equal(res.entries[0].check.format, "simplesigning");
    assert_string_equal(res.digest, CLASSIC_SUBJECT);
    assert_non_null(strstr(res.entries[0].location, ".sig layer 1"));
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(keys[0]);
    berth_sign_pubkey_free(keys[1]);
}

static void verify_rejects_classic_capture_with_wrong_key(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    serve_classic_vector(CLASSIC_SUBJECT);
    berth_sign_pubkey *key = vec_key("cosign-v3-bundle-referrer-key/bundle-cosign.pub", "b.pub");
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:15381/tobby/fixture@" CLASSIC_SUBJECT, &key, 1, &err),
                     BERTH_EVERIFY);
    assert_false(res.ok);
    assert_int_equal(res.n_entries, 1);
    assert_string_equal(res.entries[0].check.reason, "b.pub: signature mismatch");
    assert_non_null(strstr(berth_error_message(err), "no signature of"));
    berth_error_free(err);
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(key);
}

static void verify_rejects_valid_signature_of_another_digest(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    const char *other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    serve_classic_vector(other); /* the capture, tagged for another digest */
    put("manifest tobby/fixture v2", BERTH_MT_OCI_MANIFEST, other, NULL, 0);
    berth_sign_pubkey *key = vec_key("cosign-v3-classic-sigtag-key/cosign.pub", "cosign.pub");
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:15381/tobby/fixture:v2", &key, 1, &err),
                     BERTH_EVERIFY);
    assert_int_equal(res.n_entries, 1);
    assert_false(res.entries[0].check.ok);
    assert_non_null(strstr(res.entries[0].check.reason, "names digest \"" CLASSIC_SUBJECT "\""));
    berth_error_free(err);
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(key);
}

static void verify_reports_missing_payload_blob_as_failed_signature(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    size_t mlen;
    char *m;
    put("manifest tobby/fixture " CLASSIC_SUBJECT, BERTH_MT_OCI_MANIFEST, CLASSIC_SUBJECT, NULL, 0);
    char tag[128];
    snprintf(tag, sizeof(tag), "sha256-%s.sig", CLASSIC_SUBJECT + 7);
    m = vec("cosign-v3-classic-sigtag-key/sig-manifest.json", &mlen);
    put_manifest("tobby/fixture", tag, BERTH_MT_OCI_MANIFEST, m, mlen); /* no payload blob */
    free(m);
    berth_sign_pubkey *key = vec_key("cosign-v3-classic-sigtag-key/cosign.pub", "cosign.pub");
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:15381/tobby/fixture@" CLASSIC_SUBJECT, &key, 1, &err),
                     BERTH_EVERIFY);
    assert_int_equal(res.n_entries, 1);
    assert_non_null(strstr(res.entries[0].check.reason, "sha256:3a29d26a"));
    berth_error_free(err);
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(key);
}

static void verify_finds_cosign_bundle_through_fallback_tag(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    size_t ilen, mlen, blen;
    char *idx = vec("cosign-v3-bundle-referrer-key/bundle-referrers-index.json", &ilen);
    char *m = vec("cosign-v3-bundle-referrer-key/bundle-referring-manifest.json", &mlen);
    char *b = vec("cosign-v3-bundle-referrer-key/bundle-sigstore.json", &blen);
    char tag[128];
    /* the index lists the referrer with artifactType "application/vnd.oci.empty.v1+json" */
    assert_non_null(strstr(idx, "\"artifactType\":\"application/vnd.oci.empty.v1+json\""));
    snprintf(tag, sizeof(tag), "sha256-%s", BUNDLE_SUBJECT + 7);
    put("manifest lab/subject " BUNDLE_SUBJECT, BERTH_MT_OCI_INDEX, BUNDLE_SUBJECT, NULL, 0);
    put_manifest("lab/subject", tag, BERTH_MT_OCI_INDEX, idx, ilen);
    put_manifest("lab/subject", "ref", BERTH_MT_OCI_MANIFEST, m, mlen);
    put_blob(b, blen);
    berth_sign_pubkey *key =
        vec_key("cosign-v3-bundle-referrer-key/bundle-cosign.pub", "bundle-cosign.pub");
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:5000/lab/subject@" BUNDLE_SUBJECT, &key, 1, &err), 0);
    assert_true(res.ok);
    assert_int_equal(res.n_entries, 1);
    assert_int_equal(res.entries[0].format, BERTH_SIGNATURES_BUNDLE);
    assert_string_equal(res.entries[0].check.key_name, "bundle-cosign.pub");
    assert_string_equal(res.entries[0].check.format, "bundle-dsse");
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(key);
    free(idx);
    free(m);
    free(b);
}

static void verify_without_signatures_says_none_found(void **state)
{
    (void)state;
    put_manifest("app", "v1", BERTH_MT_OCI_MANIFEST, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    berth_sign_pubkey *pub = NULL;
    berth_sign_privkey *k = new_key("cosign.pub", &pub);
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:5000/app:v1", &pub, 1, &err), BERTH_EVERIFY);
    assert_int_equal(res.n_entries, 0);
    assert_non_null(strstr(berth_error_message(err), "no signatures found for"));
    berth_error_free(err);
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(pub);
    berth_sign_privkey_free(k);
}

static void verify_refuses_empty_key_list(void **state)
{
    (void)state;
    berth_signatures_result res;
    berth_error *err = NULL;
    assert_int_equal(verify(&res, "localhost:5000/app:v1", NULL, 0, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "no trusted public keys"));
    assert_int_equal(n_requests, 0);
    berth_error_free(err);
}

static int sign_ref(berth_signatures_sign_result *out, const char *ref_text,
                    const berth_sign_privkey *key, berth_signatures_format f)
{
    berth_signatures_sign_opts opts = BERTH_SIGNATURES_SIGN_OPTS_INIT;
    berth_oci_client *c = client();
    berth_oci_ref ref = ref_of(ref_text);
    opts.format = f;
    opts.created = 1786568008; /* 2026-08-12T20:53:28Z, the capture's created time */
    int rc = berth_signatures_sign(out, c, &ref, key, &opts, NULL);
    berth_oci_ref_dispose(&ref);
    berth_oci_client_free(c);
    return rc;
}

static void sign_classic_writes_what_cosign_writes(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    char digest[72], tag[128], pdigest[72], old_cfg[72], new_cfg[72];
    put_manifest("tobby/fixture", "v1", BERTH_MT_OCI_MANIFEST, SUBJECT_MANIFEST,
                 strlen(SUBJECT_MANIFEST));
    core_sha256_digest(digest, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    berth_sign_privkey *k = new_key("cosign.key", NULL);
    berth_signatures_sign_result out;

    assert_int_equal(sign_ref(&out, "localhost:15381/tobby/fixture:v1", k, 0), 0);
    assert_string_equal(out.digest, digest);
    assert_true(out.appended);
    assert_int_equal(out.signatures, 1);
    snprintf(tag, sizeof(tag), "sha256-%s.sig", digest + 7);
    const object *m = get_manifest("tobby/fixture", tag);
    assert_non_null(m);
    assert_string_equal(m->media_type, BERTH_MT_OCI_MANIFEST);

    /* the payload is the capture's payload with our digest */
    size_t len;
    char *vp = vec("cosign-v3-classic-sigtag-key/payload.json", &len);
    char *want_payload = replace(vp, CLASSIC_SUBJECT, digest);
    core_sha256_digest(pdigest, want_payload, strlen(want_payload));
    const object *p = get_blob(pdigest);
    assert_non_null(p);
    assert_string_equal(p->data, want_payload);

    /* the config is the capture's config with our payload digest */
    char *vc = vec("cosign-v3-classic-sigtag-key/derived/config.json", &len);
    core_sha256_digest(old_cfg, vc, len);
    char *want_cfg = replace(vc,
                             "sha256:3a29d26a2fc848d25ccf9c2288194ca90599e70ef69087644f186e5e"
                             "7331f28b",
                             pdigest);
    core_sha256_digest(new_cfg, want_cfg, strlen(want_cfg));
    assert_non_null(get_blob(new_cfg));

    /* the manifest is the capture's manifest with our digests and signature */
    berth_oci_manifest pm;
    assert_int_equal(berth_oci_manifest_parse(&pm, m->data, m->len, NULL, NULL), 0);
    char *vm = vec("cosign-v3-classic-sigtag-key/sig-manifest.json", &len);
    char *sig = vec("cosign-v3-classic-sigtag-key/signature.b64", &len);
    while (len > 0 && (sig[len - 1] == '\n' || sig[len - 1] == '\r'))
        sig[--len] = '\0';
    char *a = replace(vm, old_cfg, new_cfg);
    char *b = replace(a, "sha256:3a29d26a2fc848d25ccf9c2288194ca90599e70ef69087644f186e5e7331f28b",
                      pdigest);
    char *want = replace(b, sig,
                         berth_kv_get(pm.layers[0].annotations, pm.layers[0].annotations_len,
                                      BERTH_SIGN_ANNOTATION_SIGNATURE));
    assert_string_equal(m->data, want);

    berth_oci_manifest_dispose(&pm);
    berth_signatures_sign_result_dispose(&out);
    berth_sign_privkey_free(k);
    free(vp);
    free(want_payload);
    free(vc);
    free(want_cfg);
    free(vm);
    free(sig);
    free(a);
    free(b);
    free(want);
}

static void sign_classic_appends_other_keys_and_skips_duplicates(void **state)
{
    (void)state;
    char digest[72], tag[128];
    put_manifest("app", "v1", BERTH_MT_OCI_MANIFEST, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    core_sha256_digest(digest, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    snprintf(tag, sizeof(tag), "sha256-%s.sig", digest + 7);
    berth_sign_pubkey *pubs[2] = {NULL, NULL};
    berth_sign_privkey *k1 = new_key("one", &pubs[0]);
    berth_sign_privkey *k2 = new_key("two", &pubs[1]);
    berth_signatures_sign_result out;
    berth_oci_manifest m1, m2;

    assert_int_equal(sign_ref(&out, "localhost:5000/app:v1", k1, 0), 0);
    berth_signatures_sign_result_dispose(&out);
    const object *o = get_manifest("app", tag);
    assert_int_equal(berth_oci_manifest_parse(&m1, o->data, o->len, NULL, NULL), 0);

    assert_int_equal(sign_ref(&out, "localhost:5000/app:v1", k1, 0), 0);
    assert_false(out.appended); /* same payload, signature by this key: nothing written */
    assert_int_equal(out.signatures, 1);
    berth_signatures_sign_result_dispose(&out);

    assert_int_equal(sign_ref(&out, "localhost:5000/app:v1", k2, 0), 0);
    assert_true(out.appended);
    assert_int_equal(out.signatures, 2);
    berth_signatures_sign_result_dispose(&out);
    o = get_manifest("app", tag);
    assert_int_equal(berth_oci_manifest_parse(&m2, o->data, o->len, NULL, NULL), 0);
    assert_int_equal(m2.layers_len, 2);
    assert_string_equal(m2.layers[0].digest, m1.layers[0].digest);
    assert_string_equal(m2.layers[0].annotations[0].value, m1.layers[0].annotations[0].value);
    const object *cfg = get_blob(m2.config.digest);
    assert_non_null(cfg);
    assert_non_null(strstr(cfg->data, "\"history\":[{\"created\":\"0001-01-01T00:00:00Z\"},{"));

    /* both keys verify, each naming itself */
    berth_signatures_result res;
    assert_int_equal(verify(&res, "localhost:5000/app:v1", &pubs[1], 1, NULL), 0);
    assert_string_equal(res.entries[res.verified].check.key_name, "two");
    assert_int_equal(res.verified, 1);
    berth_signatures_result_dispose(&res);

    berth_oci_manifest_dispose(&m1);
    berth_oci_manifest_dispose(&m2);
    berth_sign_pubkey_free(pubs[0]);
    berth_sign_pubkey_free(pubs[1]);
    berth_sign_privkey_free(k1);
    berth_sign_privkey_free(k2);
}

static void sign_bundle_pushes_cosign_shaped_referrer_and_fallback_index(void **state)
{
    (void)state;
    SIGN_NEED_VECTORS();
    char digest[72], tag[128], bdigest[72];
    put_manifest("app", "v1", BERTH_MT_OCI_MANIFEST, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    core_sha256_digest(digest, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    berth_sign_pubkey *pub = NULL;
    berth_sign_privkey *k = new_key("cosign.pub", &pub);
    berth_signatures_sign_result out;

    assert_int_equal(sign_ref(&out, "localhost:5000/app:v1", k, BERTH_SIGNATURES_BUNDLE), 0);
    assert_true(out.referrers_tag_updated);
    assert_int_equal(out.format, BERTH_SIGNATURES_BUNDLE);
    snprintf(tag, sizeof(tag), "sha256-%s", digest + 7);
    const object *idx = get_manifest("app", tag);
    assert_non_null(idx);
    assert_non_null(strstr(idx->data, "\"artifactType\":\"" BERTH_SIGN_BUNDLE_MEDIA_TYPE "\""));
    const char *at = strchr(out.location, '@');
    assert_non_null(at);
    const object *m = get_manifest("app", at + 1);
    assert_non_null(m);
    assert_non_null(strstr(idx->data, at + 1));

    /* the capture's manifest with our bundle, subject and (same) created time */
    berth_oci_manifest pm;
    assert_int_equal(berth_oci_manifest_parse(&pm, m->data, m->len, NULL, NULL), 0);
    snprintf(bdigest, sizeof(bdigest), "%s", pm.layers[0].digest);
    const object *bundle = get_blob(bdigest);
    assert_non_null(bundle);
    size_t len;
    char *vm = vec("cosign-v3-bundle-referrer-key/bundle-referring-manifest.json", &len);
    char size[32], subject[600];
    snprintf(size, sizeof(size), "\"size\":%zu,", bundle->len);
    char *a = replace(vm, "\"size\":4037,", size);
    char *b = replace(a, "sha256:adbf6372367b1d18204f9a60675cdd31c26e60b5cb664b937a69c448cfab6512",
                      bdigest);
    snprintf(subject, sizeof(subject),
             "\"subject\":{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"size\":%zu,\"digest\":"
             "\"%s\"}",
             strlen(SUBJECT_MANIFEST), digest);
    char *want = replace(b,
                         "\"subject\":{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                         "\"size\":928,\"digest\":\"" BUNDLE_SUBJECT "\"}",
                         subject);
    while (strlen(want) > 0 && want[strlen(want) - 1] == '\n')
        want[strlen(want) - 1] = '\0';
    assert_string_equal(m->data, want);

    /* and it verifies, as a bundle, with the key */
    berth_signatures_result res;
    assert_int_equal(verify(&res, "localhost:5000/app:v1", &pub, 1, NULL), 0);
    assert_int_equal(res.entries[res.verified].format, BERTH_SIGNATURES_BUNDLE);
    berth_signatures_result_dispose(&res);

    berth_oci_manifest_dispose(&pm);
    berth_signatures_sign_result_dispose(&out);
    berth_sign_pubkey_free(pub);
    berth_sign_privkey_free(k);
    free(vm);
    free(a);
    free(b);
    free(want);
}

static void verify_ignores_referrers_that_are_not_bundles(void **state)
{
    (void)state;
    char digest[72], tag[128], idx[1024], ref[1024], rdigest[72];
    static const char sbom[] = "{\"spdxVersion\":\"SPDX-2.3\"}";
    put_manifest("app", "v1", BERTH_MT_OCI_MANIFEST, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    core_sha256_digest(digest, SUBJECT_MANIFEST, strlen(SUBJECT_MANIFEST));
    char sdigest[72];
    core_sha256_digest(sdigest, sbom, strlen(sbom));
    put_blob(sbom, strlen(sbom));
    snprintf(ref, sizeof(ref),
             "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"artifactType\":"
             "\"application/spdx+json\",\"config\":{\"mediaType\":\"" BERTH_MT_OCI_EMPTY "\","
             "\"size\":2,\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c0"
             "60f61caaff8a\"},\"layers\":[{\"mediaType\":\"application/spdx+json\",\"size\":%zu,"
             "\"digest\":\"%s\"}],\"subject\":{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\","
             "\"size\":%zu,\"digest\":\"%s\"}}",
             strlen(sbom), sdigest, strlen(SUBJECT_MANIFEST), digest);
    put_manifest("app", "sbom", BERTH_MT_OCI_MANIFEST, ref, strlen(ref));
    core_sha256_digest(rdigest, ref, strlen(ref));
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX "\",\"manifests\":[{"
             "\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
             "\"artifactType\":\"application/spdx+json\"}]}",
             rdigest, strlen(ref));
    snprintf(tag, sizeof(tag), "sha256-%s", digest + 7);
    put_manifest("app", tag, BERTH_MT_OCI_INDEX, idx, strlen(idx));
    berth_sign_pubkey *pub = NULL;
    berth_sign_privkey *k = new_key("cosign.pub", &pub);
    berth_signatures_result res;
    berth_error *err = NULL;

    assert_int_equal(verify(&res, "localhost:5000/app:v1", &pub, 1, &err), BERTH_EVERIFY);
    assert_int_equal(res.n_entries, 0);
    assert_non_null(strstr(berth_error_message(err), "no signatures found"));
    berth_error_free(err);
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(pub);
    berth_sign_privkey_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(verify_accepts_cosign_classic_capture, setup),
        cmocka_unit_test_setup(verify_rejects_classic_capture_with_wrong_key, setup),
        cmocka_unit_test_setup(verify_rejects_valid_signature_of_another_digest, setup),
        cmocka_unit_test_setup(verify_reports_missing_payload_blob_as_failed_signature, setup),
        cmocka_unit_test_setup(verify_finds_cosign_bundle_through_fallback_tag, setup),
        cmocka_unit_test_setup(verify_without_signatures_says_none_found, setup),
        cmocka_unit_test_setup(verify_refuses_empty_key_list, setup),
        cmocka_unit_test_setup(sign_classic_writes_what_cosign_writes, setup),
        cmocka_unit_test_setup(sign_classic_appends_other_keys_and_skips_duplicates, setup),
        cmocka_unit_test_setup(sign_bundle_pushes_cosign_shaped_referrer_and_fallback_index, setup),
        cmocka_unit_test_setup(verify_ignores_referrers_that_are_not_bundles, setup),
    };
    int rc;
    assert_int_equal(berth_init(), 0);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    store_reset();
    return rc;
}
