/*
 * Registry-level signing and verification (include/berth/signatures.h): finds and stores cosign
 * signatures in a registry with the OCI client and checks or makes them with the sign module.
 * It lives in engine/ because that is the one module allowed to see both oci/ and sign/.
 *
 * Design: everything is addressed by digest or by a tag computed from the digest ("sha256-<hex>"
 * and "sha256-<hex>.sig"), never by listing tags (spec signing.md 8). Documents we write are
 * built byte for byte the way cosign writes them (spec 3.2, 5.2): Go's encoding/json key order
 * and escaping, no insignificant whitespace, so a manifest berth writes has the digest cosign
 * would give it. Documents we read are never re-serialised before a check: signatures are
 * verified over the exact bytes fetched, and the registry client has already checked that those
 * bytes hash to the digests that name them.
 *
 * Verification failures of one signature (bad blob, bad signature, wrong digest claim) are
 * recorded in its entry and do not stop the others; transport and auth errors abort the call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/signatures.h>

#include "core/core.h"

#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define BUNDLE_MT_PREFIX "application/vnd.dev.sigstore.bundle"
#define ANN_BUNDLE_CONTENT "dev.sigstore.bundle.content"
#define ANN_BUNDLE_PREDICATE "dev.sigstore.bundle.predicateType"
#define ZERO_TIME "0001-01-01T00:00:00Z"
#define PAYLOAD_MAX (64u * 1024u)  /* a simple-signing payload is ~250 bytes */
#define BUNDLE_MAX (1024u * 1024u) /* spec 8: bundle <= 1 MiB */
#define SIGNATURES_MAX 1000u       /* cosign's layer ceiling */

/* Writable copies of constant strings, for descriptors we build (berth_kv holds char *). */
static char k_signature[] = BERTH_SIGN_ANNOTATION_SIGNATURE;
static char k_content[] = ANN_BUNDLE_CONTENT;
static char v_content[] = "dsse-envelope";
static char k_predicate[] = ANN_BUNDLE_PREDICATE;
static char v_predicate[] = BERTH_SIGN_PREDICATE_COSIGN_SIGN;
static char k_created[] = BERTH_ANN_CREATED;
static char mt_simplesigning[] = BERTH_SIGN_SIMPLESIGNING_MEDIA_TYPE;
static char mt_manifest[] = BERTH_MT_OCI_MANIFEST;
static char mt_bundle[] = BERTH_SIGN_BUNDLE_MEDIA_TYPE;

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

const char *berth_signatures_format_name(berth_signatures_format f)
{
    return f == BERTH_SIGNATURES_BUNDLE ? "bundle" : "classic";
}

/* ---------------------------------------------------------------- small helpers */
/* Append s as a JSON string the way Go's encoding/json writes it (HTML-safe escaping). */
static int go_str(berth_buf *b, const char *s)
{
    int rc = berth_buf_put(b, "\"", 1);

    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = berth_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = berth_buf_puts(b, "\\n");
        else if (*p == '\r')
            rc = berth_buf_puts(b, "\\r");
        else if (*p == '\t')
            rc = berth_buf_puts(b, "\\t");
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
            rc = berth_buf_printf(b, "\\u%04x", *p);
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            rc = berth_buf_printf(b, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
            p += 2;
        } else
            rc = berth_buf_put(b, p, 1);
    }
    return rc == 0 ? berth_buf_put(b, "\"", 1) : rc;
}

/* {"mediaType":..,"size":..,"digest":..[,"annotations":{..}]} as ggcr writes a descriptor. */
static int desc_json(berth_buf *b, const berth_oci_desc *d)
{
    int rc = berth_buf_puts(b, "{\"mediaType\":");

    if (rc == 0)
        rc = go_str(b, d->media_type ? d->media_type : "");
    if (rc == 0)
        rc = berth_buf_printf(b, ",\"size\":%lld,\"digest\":", (long long)d->size);
    if (rc == 0)
        rc = go_str(b, d->digest);
    for (size_t i = 0; rc == 0 && i < d->annotations_len; i++) {
        rc = berth_buf_puts(b, i == 0 ? ",\"annotations\":{" : ",");
        if (rc == 0)
            rc = go_str(b, d->annotations[i].key);
        if (rc == 0)
            rc = berth_buf_put(b, ":", 1);
        if (rc == 0)
            rc = go_str(b, d->annotations[i].value);
    }
    if (rc == 0 && d->annotations_len > 0)
        rc = berth_buf_put(b, "}", 1);
    return rc == 0 ? berth_buf_put(b, "}", 1) : rc;
}

/* A copy of ref pointing at tag (digest cleared) or at digest (tag cleared). */
static int ref_at(berth_oci_ref *out, const berth_oci_ref *ref, const char *tag, const char *digest,
                  berth_error **err)
{
    int rc = berth_oci_ref_copy(out, ref, err);

    if (rc == 0 && berth_oci_ref_set(out, tag, digest) < 0) {
        berth_oci_ref_dispose(out);
        rc = oom(err);
    }
    return rc;
}

/* "sha256-<hex>.sig" (heap). */
static char *sig_tag(const char *digest)
{
    char *base = berth_oci_referrers_tag(digest);
    char *tag = base ? core_sprintf("%s.sig", base) : NULL;

    core_free(base);
    return tag;
}

/* What cosign writes as critical.identity.docker-reference: the repository, fully qualified the
 * way go-containerregistry names it (Docker Hub is "index.docker.io"). */
static char *docker_reference(const berth_oci_ref *ref)
{
    const char *reg = strcmp(ref->registry, "docker.io") == 0 ? "index.docker.io" : ref->registry;
    return core_sprintf("%s/%s", reg, ref->repository);
}

/* Push small in-memory blobs (config, payload, bundle). */
static int push_mem(berth_oci_client *c, const berth_oci_ref *repo, const char *const *data,
                    const size_t *lens, size_t n, berth_error **err)
{
    char digests[3][72];
    berth_oci_upload up[3];

    if (BERTH_NEVER(n > 3))
        return core_error_set(err, BERTH_EINVAL, "too many blobs");
    memset(up, 0, sizeof(up));
    for (size_t i = 0; i < n; i++) {
        core_sha256_digest(digests[i], data[i], lens[i]);
        up[i].digest = digests[i];
        up[i].size = (int64_t)lens[i];
        up[i].data = data[i];
    }
    return berth_oci_blobs_push(c, repo, up, n, NULL, err);
}

/* ---------------------------------------------------------------- classic signing */
/* The image config ggcr makes when layers are appended to an empty image (spec 3.2). */
static int classic_config(berth_buf *b, const berth_oci_desc *layers, size_t n)
{
    int rc =
        berth_buf_puts(b, "{\"architecture\":\"\",\"created\":\"" ZERO_TIME "\",\"history\":[");

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = berth_buf_printf(b, "%s{\"created\":\"" ZERO_TIME "\"}", i ? "," : "");
    if (rc == 0)
        rc = berth_buf_puts(b, "],\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = berth_buf_puts(b, i ? "," : "");
        if (rc == 0)
            rc = go_str(b, layers[i].digest);
    }
    return rc == 0 ? berth_buf_puts(b, "]},\"config\":{}}") : rc;
}

static int classic_manifest(berth_buf *b, bool docker, const char *config, size_t config_len,
                            const berth_oci_desc *layers, size_t n)
{
    char cdigest[72];
    int rc;

    core_sha256_digest(cdigest, config, config_len);
    rc = berth_buf_printf(b,
                          "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                          "\"%s\",\"size\":%zu,\"digest\":\"%s\"},\"layers\":[",
                          docker ? BERTH_MT_DOCKER_MANIFEST : BERTH_MT_OCI_MANIFEST,
                          docker ? MT_DOCKER_CONFIG : MT_OCI_CONFIG, config_len, cdigest);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = berth_buf_puts(b, i ? "," : "");
        if (rc == 0)
            rc = desc_json(b, &layers[i]);
    }
    return rc == 0 ? berth_buf_puts(b, "]}") : rc;
}

/* Does layer already hold this payload with a signature this key verifies (cosign's dedupe)? */
static int classic_is_duplicate(bool *dup_out, const berth_oci_desc *layer, const char *pdigest,
                                const char *payload, size_t payload_len, const char *digest,
                                const berth_sign_privkey *key, berth_error **err)
{
    berth_sign_verify_opts vo = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_sign_result res;
    berth_sign_pubkey *pub = NULL;
    const berth_sign_pubkey *keys[1];
    berth_sign_simple_sig sig = {payload, payload_len, NULL, NULL};
    berth_error *sub = NULL;
    int rc;

    *dup_out = false;
    sig.signature =
        berth_kv_get(layer->annotations, layer->annotations_len, BERTH_SIGN_ANNOTATION_SIGNATURE);
    if (!sig.signature || layer->annotations_len != 1 || !layer->media_type ||
        strcmp(layer->media_type, BERTH_SIGN_SIMPLESIGNING_MEDIA_TYPE) != 0 ||
        strcmp(layer->digest, pdigest) != 0)
        return 0;
    if ((rc = berth_sign_privkey_public(&pub, key, err)) < 0)
        return rc;
    keys[0] = pub;
    vo.keys = keys;
    vo.n_keys = 1;
    rc = berth_sign_verify_simple(&res, &vo, &sig, digest, &sub);
    berth_error_free(sub); /* a failure only means "not a duplicate" */
    berth_sign_pubkey_free(pub);
    if (rc == BERTH_ENOMEM)
        return oom(err);
    *dup_out = rc == 0 && res.ok;
    return 0;
}

static int sign_classic(berth_signatures_sign_result *out, berth_oci_client *c,
                        const berth_oci_ref *ref, const berth_sign_privkey *key,
                        const berth_signatures_sign_opts *opts, berth_error **err)
{
    berth_buf payload = BERTH_BUF_INIT, sig = BERTH_BUF_INIT, config = BERTH_BUF_INIT;
    berth_buf manifest = BERTH_BUF_INIT;
    berth_oci_blob old = {0};
    berth_oci_manifest m = {0};
    berth_oci_ref sigref = {0};
    berth_oci_desc *layers = NULL;
    berth_kv ann = {k_signature, NULL};
    berth_error *sub = NULL;
    const char *data[2];
    size_t lens[2];
    char *identity = NULL, *tag = NULL, pdigest[72];
    bool have_old = false, docker = false;
    size_t n = 0;
    int rc;

    berth_buf_init(&manifest, BERTH_OCI_MANIFEST_MAX);
    if (!(tag = sig_tag(out->digest)) || (!opts->identity && !(identity = docker_reference(ref)))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = berth_sign_simple_payload(&payload, opts->identity ? opts->identity : identity,
                                        out->digest, err)) < 0 ||
        (rc = berth_sign_privkey_sign(&sig, key, payload.ptr, payload.len, err)) < 0 ||
        (rc = ref_at(&sigref, ref, tag, NULL, err)) < 0)
        goto out;
    core_sha256_digest(pdigest, payload.ptr, payload.len);
    out->location = berth_oci_ref_string(&sigref);
    if (!out->location) {
        rc = oom(err);
        goto out;
    }
    /* read-modify-write (spec 3.5): a missing .sig tag starts an empty list */
    rc = berth_oci_manifest_get(&old, c, &sigref, &sub);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(sub); /* first signature of this digest */
    } else if (rc < 0) {
        if (err && !*err)
            *err = sub;
        else
            berth_error_free(sub); /* keep the caller's chain */
        rc = core_error_wrap(err, "reading signatures \"%s\"", out->location);
        goto out;
    } else {
        have_old = true;
        if ((rc = berth_oci_manifest_parse(&m, old.data, old.len, old.media_type, err)) < 0) {
            rc = core_error_wrap(err, "signature manifest \"%s\"", out->location);
            goto out;
        }
        if (m.is_index || m.layers_len >= SIGNATURES_MAX) {
            rc = core_error_set(err, BERTH_EINVAL, "signature manifest \"%s\": %s", out->location,
                                m.is_index ? "is an index" : "holds too many layers");
            goto out;
        }
        docker = m.media_type && strcmp(m.media_type, BERTH_MT_DOCKER_MANIFEST) == 0;
    }
    for (size_t i = 0; have_old && i < m.layers_len; i++) {
        bool dup;
        if ((rc = classic_is_duplicate(&dup, &m.layers[i], pdigest, payload.ptr, payload.len,
                                       out->digest, key, err)) < 0)
            goto out;
        if (dup) {
            out->appended = false;
            out->signatures = m.layers_len;
            rc = 0;
            goto out;
        }
    }
    if (!(layers = core_calloc(m.layers_len + 1, sizeof(*layers)))) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; have_old && i < m.layers_len; i++)
        layers[n++] = m.layers[i]; /* borrowed: freed with m */
    ann.value = sig.ptr;
    layers[n].media_type = mt_simplesigning;
    layers[n].digest = pdigest;
    layers[n].size = (int64_t)payload.len;
    layers[n].annotations = &ann;
    layers[n].annotations_len = 1;
    n++;
    if (classic_config(&config, layers, n) < 0 ||
        classic_manifest(&manifest, docker, config.ptr, config.len, layers, n) < 0) {
        rc = core_error_set(err, BERTH_EINVAL, "signature manifest \"%s\" is too large",
                            out->location);
        goto out;
    }
    data[0] = payload.ptr;
    lens[0] = payload.len;
    data[1] = config.ptr;
    lens[1] = config.len;
    if ((rc = push_mem(c, ref, data, lens, 2, err)) < 0 ||
        (rc = berth_oci_manifest_put(NULL, c, &sigref,
                                     docker ? BERTH_MT_DOCKER_MANIFEST : BERTH_MT_OCI_MANIFEST,
                                     manifest.ptr, manifest.len, err)) < 0) {
        rc = core_error_wrap(err, "writing signature \"%s\"", out->location);
        goto out;
    }
    out->appended = true;
    out->signatures = n;
out:
    core_free(layers);
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&old);
    berth_oci_ref_dispose(&sigref);
    berth_buf_dispose(&payload);
    berth_buf_dispose(&sig);
    berth_buf_dispose(&config);
    berth_buf_dispose(&manifest);
    core_free(identity);
    core_free(tag);
    return rc;
}

/* ---------------------------------------------------------------- bundle signing */
/* The referrer manifest cosign v3 writes (spec 5.2, byte for byte in key order). */
static int bundle_manifest(berth_buf *b, const char *empty_digest, const char *bundle_digest,
                           size_t bundle_len, const char *created, const berth_oci_blob *subject)
{
    int rc = berth_buf_printf(
        b,
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"config\":{\"mediaType"
        "\":\"" BERTH_MT_OCI_EMPTY
        "\",\"size\":2,\"digest\":\"%s\",\"artifactType\":\"" BERTH_SIGN_BUNDLE_MEDIA_TYPE
        "\"},\"layers\":[{\"mediaType\":\"" BERTH_SIGN_BUNDLE_MEDIA_TYPE
        "\",\"size\":%zu,\"digest\":\"%s\"}],\"annotations\":{\"" ANN_BUNDLE_CONTENT
        "\":\"dsse-envelope\",\"" ANN_BUNDLE_PREDICATE "\":\"" BERTH_SIGN_PREDICATE_COSIGN_SIGN
        "\",\"" BERTH_ANN_CREATED "\":\"%s\"},\"subject\":{"
        "\"mediaType\":",
        empty_digest, bundle_len, bundle_digest, created);

    if (rc == 0)
        rc = go_str(b, subject->media_type ? subject->media_type : BERTH_MT_OCI_MANIFEST);
    if (rc == 0)
        rc = berth_buf_printf(b,
                              ",\"size\":%zu,\"digest\":\"%s\"},\"artifactType\":"
                              "\"" BERTH_SIGN_BUNDLE_MEDIA_TYPE "\"}",
                              subject->len, subject->digest);
    return rc;
}

static int sign_bundle(berth_signatures_sign_result *out, berth_oci_client *c,
                       const berth_oci_ref *ref, const berth_sign_privkey *key,
                       const berth_oci_blob *subject, const berth_signatures_sign_opts *opts,
                       berth_error **err)
{
    static const char empty[] = "{}";
    berth_buf bundle = BERTH_BUF_INIT, manifest = BERTH_BUF_INIT;
    berth_oci_ref mref = {0};
    berth_oci_desc *found = NULL;
    size_t n_found = 0;
    bool fallback = false;
    char empty_digest[72], bundle_digest[72], mdigest[72], created[32];
    berth_kv anns[3] = {{k_content, v_content}, {k_predicate, v_predicate}, {k_created, created}};
    berth_oci_desc desc = {0};
    const char *data[2] = {empty, NULL};
    size_t lens[2] = {2, 0};
    int rc;

    core_time_rfc3339(created, opts->created > 0 ? opts->created : core_wall_now() / 1000);
    core_sha256_digest(empty_digest, empty, 2);
    if ((rc = berth_sign_bundle_create(&bundle, key, NULL, out->digest, err)) < 0)
        goto out;
    core_sha256_digest(bundle_digest, bundle.ptr, bundle.len);
    berth_buf_init(&manifest, BERTH_OCI_MANIFEST_MAX);
    if (bundle_manifest(&manifest, empty_digest, bundle_digest, bundle.len, created, subject) < 0) {
        rc = oom(err);
        goto out;
    }
    core_sha256_digest(mdigest, manifest.ptr, manifest.len);
    if ((rc = ref_at(&mref, ref, NULL, mdigest, err)) < 0)
        goto out;
    if (!(out->location = berth_oci_ref_string(&mref))) {
        rc = oom(err);
        goto out;
    }
    data[1] = bundle.ptr;
    lens[1] = bundle.len;
    if ((rc = push_mem(c, ref, data, lens, 2, err)) < 0 ||
        (rc = berth_oci_manifest_put(NULL, c, &mref, BERTH_MT_OCI_MANIFEST, manifest.ptr,
                                     manifest.len, err)) < 0) {
        rc = core_error_wrap(err, "writing signature \"%s\"", out->location);
        goto out;
    }
    /* A registry with the referrers API indexes the subject itself; without it (404 on the
     * endpoint) the pusher maintains the "sha256-<hex>" index tag (OCI distribution 1.1). */
    if ((rc = berth_oci_referrers(&found, &n_found, &fallback, c, ref, out->digest, NULL, err)) < 0)
        goto out;
    if (fallback) {
        desc.media_type = mt_manifest;
        desc.digest = mdigest;
        desc.size = (int64_t)manifest.len;
        desc.artifact_type = mt_bundle;
        desc.annotations = anns;
        desc.annotations_len = 3;
        if ((rc = berth_oci_referrers_tag_add(c, ref, out->digest, &desc, err)) < 0)
            goto out;
        out->referrers_tag_updated = true;
    }
    out->appended = true;
    out->signatures = 1;
out:
    for (size_t i = 0; i < n_found; i++)
        berth_oci_desc_dispose(&found[i]);
    core_free(found);
    berth_oci_ref_dispose(&mref);
    berth_buf_dispose(&bundle);
    berth_buf_dispose(&manifest);
    return rc;
}

void berth_signatures_sign_result_dispose(berth_signatures_sign_result *r)
{
    if (!r)
        return;
    core_free(r->location);
    memset(r, 0, sizeof(*r));
}

int berth_signatures_sign(berth_signatures_sign_result *out, berth_oci_client *c,
                          const berth_oci_ref *ref, const berth_sign_privkey *key,
                          const berth_signatures_sign_opts *opts, berth_error **err)
{
    berth_signatures_sign_opts defaults = BERTH_SIGNATURES_SIGN_OPTS_INIT;
    berth_oci_blob subject = {0};
    int rc;

    BERTH_ARG_CHECK(out && c && ref && ref->registry && ref->repository && key);
    memset(out, 0, sizeof(*out));
    if (!opts)
        opts = &defaults;
    if (opts->version != BERTH_SIGNATURES_SIGN_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "unknown signing options version %u",
                              opts->version);
    /* GET, not HEAD: a referrer's subject descriptor needs the manifest's size */
    if ((rc = berth_oci_manifest_get(&subject, c, ref, err)) < 0)
        goto out;
    if (!subject.digest || strlen(subject.digest) >= sizeof(out->digest)) {
        rc = core_error_set(err, BERTH_EINVAL, "manifest of \"%s\" has no usable digest",
                            ref->repository);
        goto out;
    }
    memcpy(out->digest, subject.digest, strlen(subject.digest) + 1);
    out->format = opts->format;
    if (opts->format == BERTH_SIGNATURES_BUNDLE)
        rc = sign_bundle(out, c, ref, key, &subject, opts, err);
    else
        rc = sign_classic(out, c, ref, key, opts, err);
out:
    berth_oci_blob_dispose(&subject);
    if (rc < 0)
        berth_signatures_sign_result_dispose(out);
    return rc;
}

/* ---------------------------------------------------------------- verification */
typedef struct verify_ctx {
    berth_oci_client *c;
    const berth_oci_ref *ref;
    const berth_signatures_verify_opts *opts;
    berth_signatures_result *out;
    size_t max;
} verify_ctx;

/* A new entry at the end of out->entries (zeroed), or NULL when out of memory. */
static berth_signatures_entry *entry_add(berth_signatures_result *out, berth_signatures_format f,
                                         char *location)
{
    berth_signatures_entry *v;

    if (!location)
        return NULL;
    v = core_realloc(out->entries, (out->n_entries + 1) * sizeof(*v));
    if (!v) {
        core_free(location);
        return NULL;
    }
    out->entries = v;
    v = &out->entries[out->n_entries++];
    memset(v, 0, sizeof(*v));
    v->format = f;
    v->location = location;
    snprintf(v->check.format, sizeof(v->check.format), "%s",
             f == BERTH_SIGNATURES_BUNDLE ? "bundle" : "simplesigning");
    return v;
}

/* Codes that mean "this signature's data is bad", recorded instead of aborting. */
static bool is_content_failure(int rc)
{
    return rc == BERTH_EVERIFY || rc == BERTH_ENOTFOUND || rc == BERTH_EINVAL;
}

/* Record sub's message as e's reason and drop sub. */
static void entry_fail(berth_signatures_entry *e, berth_error *sub, const char *fallback)
{
    char *text = sub ? berth_error_text(sub) : NULL;

    snprintf(e->check.reason, sizeof(e->check.reason), "%s", text ? text : fallback);
    free(text);
    berth_error_free(sub); /* summarised in the entry's reason */
}

/* Fetch a small blob of desc into b; content failures become e's reason (returns 1). */
static int fetch_small(berth_buf *b, verify_ctx *v, const berth_oci_desc *d, size_t max,
                       berth_signatures_entry *e, berth_error **err)
{
    berth_error *sub = NULL;
    int rc;

    if (d->size < 0 || (uint64_t)d->size > max) {
        snprintf(e->check.reason, sizeof(e->check.reason), "blob %s of %lld bytes exceeds %zu",
                 d->digest, (long long)d->size, max);
        return 1;
    }
    rc = berth_oci_blob_get_mem(b, v->c, v->ref, d->digest, max, &sub);
    if (rc == 0 && b->len != (size_t)d->size) {
        snprintf(e->check.reason, sizeof(e->check.reason),
                 "blob %s has %zu bytes, its descriptor says %lld", d->digest, b->len,
                 (long long)d->size);
        return 1;
    }
    if (rc < 0 && is_content_failure(rc)) {
        entry_fail(e, sub, "cannot fetch the blob");
        return 1;
    }
    if (rc < 0) {
        if (err && !*err)
            *err = sub;
        else
            berth_error_free(sub); /* keep the caller's chain */
        return rc;
    }
    return 0;
}

/* Run a sign-module check; EVERIFY stays in e->check, other failures abort. */
static int check_done(int rc, berth_error *sub, berth_error **err)
{
    if (rc == 0 || rc == BERTH_EVERIFY) {
        berth_error_free(sub); /* the reason is in the entry */
        return 0;
    }
    if (err && !*err)
        *err = sub;
    else
        berth_error_free(sub); /* keep the caller's chain */
    return rc;
}

static int verify_one_bundle(verify_ctx *v, const berth_oci_desc *d, berth_error **err)
{
    berth_oci_ref mref = {0};
    berth_oci_blob blob = {0};
    berth_oci_manifest m = {0};
    berth_buf bundle = BERTH_BUF_INIT;
    berth_signatures_entry *e = NULL;
    berth_error *sub = NULL;
    bool claimed = d->artifact_type && core_str_has_prefix(d->artifact_type, BUNDLE_MT_PREFIX);
    int rc;

    if (d->media_type && (strcmp(d->media_type, BERTH_MT_OCI_INDEX) == 0 ||
                          strcmp(d->media_type, BERTH_MT_DOCKER_LIST) == 0))
        return 0; /* an index refers: not a signature */
    if ((rc = ref_at(&mref, v->ref, NULL, d->digest, err)) < 0)
        return rc;
    rc = berth_oci_manifest_get(&blob, v->c, &mref, &sub);
    if (rc == 0)
        rc = berth_oci_manifest_parse(&m, blob.data, blob.len, blob.media_type, &sub);
    if (rc < 0 && !is_content_failure(rc)) {
        rc = check_done(rc, sub, err);
        goto out;
    }
    if (rc < 0 || m.is_index || m.layers_len != 1 || !m.layers[0].media_type ||
        !core_str_has_prefix(m.layers[0].media_type, BUNDLE_MT_PREFIX)) {
        /* cosign ignores referrers that are not one-layer bundles; so do we, unless the
         * descriptor said it was a bundle and it could not be read */
        if (claimed && rc < 0) {
            if (!(e = entry_add(v->out, BERTH_SIGNATURES_BUNDLE, berth_oci_ref_string(&mref)))) {
                rc = oom(err);
                goto out;
            }
            entry_fail(e, sub, "cannot read the referrer");
            sub = NULL;
        }
        berth_error_free(sub); /* not a signature */
        rc = 0;
        goto out;
    }
    if (!(e = entry_add(v->out, BERTH_SIGNATURES_BUNDLE, berth_oci_ref_string(&mref)))) {
        rc = oom(err);
        goto out;
    }
    if (!m.subject || !m.subject->digest || strcmp(m.subject->digest, v->out->digest) != 0) {
        snprintf(e->check.reason, sizeof(e->check.reason), "the referrer's subject is \"%s\"",
                 m.subject && m.subject->digest ? m.subject->digest : "(none)");
        rc = 0;
        goto out;
    }
    if ((rc = fetch_small(&bundle, v, &m.layers[0], BUNDLE_MAX, e, err)) != 0) {
        rc = rc > 0 ? 0 : rc;
        goto out;
    }
    rc = berth_sign_bundle_verify(&e->check, v->opts->trust, bundle.ptr, bundle.len, v->out->digest,
                                  &sub);
    rc = check_done(rc, sub, err);
out:
    berth_buf_dispose(&bundle);
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    berth_oci_ref_dispose(&mref);
    return rc;
}

static int collect_bundles(verify_ctx *v, berth_error **err)
{
    berth_oci_desc *descs = NULL;
    size_t n = 0;
    int rc;

    rc = berth_oci_referrers(&descs, &n, NULL, v->c, v->ref, v->out->digest, NULL, err);
    for (size_t i = 0; rc == 0 && i < n && i < v->max; i++)
        rc = verify_one_bundle(v, &descs[i], err);
    for (size_t i = 0; i < n; i++)
        berth_oci_desc_dispose(&descs[i]);
    core_free(descs);
    return rc;
}

static int verify_one_layer(verify_ctx *v, const berth_oci_ref *sigref, const berth_oci_desc *d,
                            size_t index, berth_error **err)
{
    berth_signatures_entry *e;
    berth_buf payload = BERTH_BUF_INIT;
    berth_sign_simple_sig sig = {0};
    berth_error *sub = NULL;
    char *where = berth_oci_ref_string(sigref);
    int rc;

    e = entry_add(v->out, BERTH_SIGNATURES_CLASSIC,
                  where ? core_sprintf("%s layer %zu", where, index + 1) : NULL);
    core_free(where);
    if (!e)
        return oom(err);
    sig.signature =
        berth_kv_get(d->annotations, d->annotations_len, BERTH_SIGN_ANNOTATION_SIGNATURE);
    sig.rekor_bundle =
        berth_kv_get(d->annotations, d->annotations_len, BERTH_SIGN_ANNOTATION_REKOR_BUNDLE);
    if (!sig.signature) {
        snprintf(e->check.reason, sizeof(e->check.reason), "the layer has no %s annotation",
                 BERTH_SIGN_ANNOTATION_SIGNATURE);
        return 0;
    }
    if ((rc = fetch_small(&payload, v, d, PAYLOAD_MAX, e, err)) != 0) {
        berth_buf_dispose(&payload);
        return rc > 0 ? 0 : rc;
    }
    sig.payload = payload.ptr ? payload.ptr : "";
    sig.payload_len = payload.len;
    rc = berth_sign_verify_simple(&e->check, v->opts->trust, &sig, v->out->digest, &sub);
    rc = check_done(rc, sub, err);
    berth_buf_dispose(&payload);
    return rc;
}

static int collect_classic(verify_ctx *v, berth_error **err)
{
    berth_oci_ref sigref = {0};
    berth_oci_blob blob = {0};
    berth_oci_manifest m = {0};
    berth_signatures_entry *e;
    berth_error *sub = NULL;
    char *tag = sig_tag(v->out->digest);
    int rc;

    if (!tag)
        return oom(err);
    if ((rc = ref_at(&sigref, v->ref, tag, NULL, err)) < 0)
        goto out;
    rc = berth_oci_manifest_get(&blob, v->c, &sigref, &sub);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(sub); /* no .sig tag: no classic signatures */
        rc = 0;
        goto out;
    }
    if (rc == 0)
        rc = berth_oci_manifest_parse(&m, blob.data, blob.len, blob.media_type, &sub);
    if (rc == 0 && m.is_index)
        rc = core_error_set(&sub, BERTH_EINVAL, "it is an index");
    if (rc < 0 && is_content_failure(rc)) {
        if (!(e = entry_add(v->out, BERTH_SIGNATURES_CLASSIC, berth_oci_ref_string(&sigref)))) {
            berth_error_free(sub); /* replaced by the out-of-memory error */
            rc = oom(err);
            goto out;
        }
        entry_fail(e, sub, "unreadable signature manifest");
        rc = 0;
        goto out;
    }
    if (rc < 0) {
        rc = check_done(rc, sub, err);
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < m.layers_len && i < v->max; i++)
        rc = verify_one_layer(v, &sigref, &m.layers[i], i, err);
out:
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    berth_oci_ref_dispose(&sigref);
    core_free(tag);
    return rc;
}

void berth_signatures_result_dispose(berth_signatures_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_entries; i++)
        core_free(r->entries[i].location);
    core_free(r->entries);
    core_free(r->media_type);
    memset(r, 0, sizeof(*r));
}

/* "no signature of REF verified: [classic] why; [bundle] why" */
static int verify_failed(const berth_signatures_result *out, const char *name, berth_error **err)
{
    berth_buf why = BERTH_BUF_INIT;
    int rc;

    for (size_t i = 0; i < out->n_entries; i++)
        berth_buf_printf(
            &why, "%s[%s] %s", i ? "; " : "", berth_signatures_format_name(out->entries[i].format),
            out->entries[i].check.reason[0] ? out->entries[i].check.reason : "not verified");
    rc = core_error_set(err, BERTH_EVERIFY, "no signature of \"%s\" verified (%zu checked): %s",
                        name, out->n_entries, why.ptr ? why.ptr : "");
    berth_buf_dispose(&why);
    return rc;
}

int berth_signatures_verify(berth_signatures_result *out, berth_oci_client *c,
                            const berth_oci_ref *ref, const berth_signatures_verify_opts *opts,
                            berth_error **err)
{
    verify_ctx v = {c, ref, opts, out, SIGNATURES_MAX};
    char *digest = NULL, *name = NULL;
    int rc;

    BERTH_ARG_CHECK(out && c && ref && ref->registry && ref->repository && opts);
    memset(out, 0, sizeof(*out));
    if (opts->version != BERTH_SIGNATURES_VERIFY_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "unknown verification options version %u",
                              opts->version);
    if (!opts->trust || opts->trust->n_keys == 0)
        return core_error_set(err, BERTH_EINVAL, "no trusted public keys to verify with");
    if (opts->max_signatures > 0 && opts->max_signatures < SIGNATURES_MAX)
        v.max = opts->max_signatures;
    if (!(name = berth_oci_ref_string(ref)))
        return oom(err);
    if ((rc = berth_oci_manifest_head(&digest, &out->media_type, c, ref, err)) < 0)
        goto out;
    if (!berth_oci_digest_is_valid(digest) || strlen(digest) >= sizeof(out->digest)) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s\" resolved to an invalid digest", name);
        goto out;
    }
    memcpy(out->digest, digest, strlen(digest) + 1);
    /* bundles first, then the classic tag: the order cosign v3 and Flux look in */
    if (!opts->skip_bundles && (rc = collect_bundles(&v, err)) < 0)
        goto out;
    if (!opts->skip_classic && (rc = collect_classic(&v, err)) < 0)
        goto out;
    for (size_t i = 0; i < out->n_entries && !out->ok; i++) {
        if (out->entries[i].check.ok) {
            out->ok = true;
            out->verified = i;
        }
    }
    if (out->n_entries == 0)
        rc = core_error_set(err, BERTH_EVERIFY, "no signatures found for \"%s\" (%s)", name,
                            out->digest);
    else if (!out->ok)
        rc = verify_failed(out, name, err);
out:
    if (rc < 0 && rc != BERTH_EVERIFY)
        berth_signatures_result_dispose(out);
    core_free(digest);
    core_free(name);
    return rc;
}
