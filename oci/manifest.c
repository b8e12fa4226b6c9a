/*
 * Manifest and index parsing: turns registry bytes (OCI image manifest, OCI image index, Docker
 * v2 manifest, Docker manifest list) into berth_oci_manifest. These bytes are untrusted, so every
 * field that later drives a request or a file (digests, sizes, media types) is checked here.
 *
 * Design: the raw bytes stay the source of truth for digests; this file only reads them. The
 * media type comes from the document's "mediaType", else from the HTTP Content-Type (parameters
 * after ';' dropped), else from the shape ("manifests" means an index). When both are present
 * they must agree (distribution-spec "Pulling manifests"); a generic Content-Type such as
 * "application/json" makes no claim and is ignored. A document must not mix index and manifest
 * fields (the ambiguity behind GHSA-77vh-xpmg-72qh). Docker schema1 is refused outright. Every
 * descriptor needs a media type, a grammatical digest and a non-negative size, and embedded
 * "data" must hash to that digest and size (image-spec descriptor.md). Unknown fields are
 * ignored; duplicate keys are refused, so no two parsers can read different values from one
 * document. jansson types never leave this file. Thread-safe: no shared state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include <berth/oci.h>

#define WHERE_MAX 48 /* "manifests[18446744073709551615].platform" fits */
#define SCHEMA1_PREFIX "application/vnd.docker.distribution.manifest.v1+"

/* ------------------------------------------------------------------ small helpers */

static bool mt_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && core_strncasecmp(a, b, n) == 0;
}

void berth_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        core_free(v[i]);
    core_free(v);
}

const char *berth_kv_get(const berth_kv *kv, size_t n, const char *key)
{
    if (!kv || !key)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

static void kv_free(berth_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        core_free(kv[i].key);
        core_free(kv[i].value);
    }
    core_free(kv);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const berth_kv *)a)->key, ((const berth_kv *)b)->key);
}

static int kv_copy(berth_kv **out, size_t *n_out, const berth_kv *src, size_t n)
{
    berth_kv *kv;
    *out = NULL;
    *n_out = 0;
    if (!src || n == 0)
        return 0;
    if (!(kv = core_calloc(n, sizeof(*kv))))
        return BERTH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        kv[i].key = core_strdup(src[i].key ? src[i].key : "");
        kv[i].value = core_strdup(src[i].value ? src[i].value : "");
        if (!kv[i].key || !kv[i].value) {
            kv_free(kv, n);
            return BERTH_ENOMEM;
        }
    }
    *out = kv;
    *n_out = n;
    return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = core_strdup(s)))
        *oom = true;
    return d;
}

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory parsing a manifest");
}

/* ------------------------------------------------------------------ descriptors */

void berth_oci_desc_dispose(berth_oci_desc *d)
{
    if (!d)
        return;
    core_free(d->media_type);
    core_free(d->digest);
    core_free(d->artifact_type);
    kv_free(d->annotations, d->annotations_len);
    core_free(d->platform_os);
    core_free(d->platform_arch);
    memset(d, 0, sizeof(*d));
}

int berth_oci_desc_copy(berth_oci_desc *out, const berth_oci_desc *src, berth_error **err)
{
    berth_oci_desc d = {0};
    bool failed = false;

    BERTH_ARG_CHECK(out);
    BERTH_ARG_CHECK(src);
    memset(out, 0, sizeof(*out));
    d.size = src->size;
    d.media_type = dup_or_null(src->media_type, &failed);
    d.digest = dup_or_null(src->digest, &failed);
    d.artifact_type = dup_or_null(src->artifact_type, &failed);
    d.platform_os = dup_or_null(src->platform_os, &failed);
    d.platform_arch = dup_or_null(src->platform_arch, &failed);
    if (failed ||
        kv_copy(&d.annotations, &d.annotations_len, src->annotations, src->annotations_len) < 0) {
        berth_oci_desc_dispose(&d);
        return core_error_set(err, BERTH_ENOMEM, "out of memory copying a descriptor");
    }
    *out = d;
    return 0;
}

/* An optional string member: absent or null gives NULL, anything but a string is an error. */
static int opt_string(const char **out, json_t *obj, const char *key, const char *where,
                      berth_error **err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return core_error_set(err, BERTH_EINVAL, "manifest %s%s%s is not a string", where,
                              *where ? "." : "", key);
    *out = json_string_value(v);
    return 0;
}

/* "annotations": an object of strings, stored sorted by key. */
static int parse_annotations(berth_kv **out, size_t *n_out, json_t *obj, const char *where,
                             berth_error **err)
{
    json_t *ann = json_object_get(obj, "annotations");
    const char *key;
    json_t *val;
    berth_kv *kv = NULL;
    size_t n = 0, i = 0;

    *out = NULL;
    *n_out = 0;
    if (!ann || json_is_null(ann))
        return 0;
    if (!json_is_object(ann))
        return core_error_set(err, BERTH_EINVAL, "manifest %s%sannotations is not an object", where,
                              *where ? "." : "");
    n = json_object_size(ann);
    if (n == 0)
        return 0;
    json_object_foreach(ann, key, val)
    {
        if (!json_is_string(val))
            return core_error_set(err, BERTH_EINVAL,
                                  "manifest %s%sannotations: value of \"%s\" is not a string",
                                  where, *where ? "." : "", key);
    }
    if (!(kv = core_calloc(n, sizeof(*kv))))
        return oom(err);
    json_object_foreach(ann, key, val)
    {
        if (BERTH_NEVER(i >= n))
            break;
        kv[i].key = core_strdup(key);
        kv[i].value = core_strdup(json_string_value(val));
        i++;
        if (!kv[i - 1].key || !kv[i - 1].value) {
            kv_free(kv, n);
            return oom(err);
        }
    }
    qsort(kv, i, sizeof(*kv), kv_cmp);
    *out = kv;
    *n_out = i;
    return 0;
}

/* Embedded "data" must decode to exactly size bytes that hash to the digest. */
static int check_data(const char *b64, const berth_oci_desc *d, const char *where,
                      berth_error **err)
{
    berth_buf raw;
    char got[72];
    int rc = 0;

    berth_buf_init(&raw, BERTH_OCI_MANIFEST_MAX);
    if ((rc = core_base64_decode(&raw, b64, strlen(b64), false, err)) < 0) {
        rc = core_error_wrap(err, "manifest %s: invalid base64 in data", where);
        goto out;
    }
    if ((int64_t)raw.len != d->size) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "manifest %s: embedded data is %zu bytes, descriptor size is %lld",
                            where, raw.len, (long long)d->size);
        goto out;
    }
    if (!core_str_has_prefix(d->digest, "sha256:")) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED,
                            "manifest %s: cannot verify embedded data with digest \"%s\"", where,
                            d->digest);
        goto out;
    }
    core_sha256_digest(got, raw.ptr ? raw.ptr : "", raw.len);
    if (strcmp(got, d->digest) != 0)
        rc = core_error_set(err, BERTH_EVERIFY,
                            "manifest %s: embedded data has digest %s, descriptor says %s", where,
                            got, d->digest);
out:
    berth_buf_dispose(&raw);
    return rc;
}

static int parse_desc(berth_oci_desc *out, json_t *j, const char *where, bool with_platform,
                      berth_error **err)
{
    berth_oci_desc d = {0};
    const char *mt, *digest, *atype, *data, *os = NULL, *arch = NULL;
    json_t *size, *platform;
    bool failed = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(j))
        return core_error_set(err, BERTH_EINVAL, "manifest %s: descriptor is not an object", where);
    if ((rc = opt_string(&mt, j, "mediaType", where, err)) < 0 ||
        (rc = opt_string(&digest, j, "digest", where, err)) < 0 ||
        (rc = opt_string(&atype, j, "artifactType", where, err)) < 0 ||
        (rc = opt_string(&data, j, "data", where, err)) < 0)
        return rc;
    if (!mt || !*mt)
        return core_error_set(err, BERTH_EINVAL, "manifest %s: descriptor has no mediaType", where);
    if (!digest)
        return core_error_set(err, BERTH_EINVAL, "manifest %s: descriptor has no digest", where);
    if (!berth_oci_digest_is_valid(digest))
        return core_error_set(err, BERTH_EINVAL, "manifest %s: invalid digest \"%s\"", where,
                              digest);
    size = json_object_get(j, "size");
    if (!size)
        return core_error_set(err, BERTH_EINVAL, "manifest %s: descriptor has no size", where);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return core_error_set(err, BERTH_EINVAL, "manifest %s: size must be a non-negative integer",
                              where);
    if (with_platform) {
        platform = json_object_get(j, "platform");
        if (platform && !json_is_null(platform)) {
            char pwhere[WHERE_MAX + 16];
            if (!json_is_object(platform))
                return core_error_set(err, BERTH_EINVAL, "manifest %s.platform is not an object",
                                      where);
            snprintf(pwhere, sizeof(pwhere), "%s.platform", where);
            if ((rc = opt_string(&os, platform, "os", pwhere, err)) < 0 ||
                (rc = opt_string(&arch, platform, "architecture", pwhere, err)) < 0)
                return rc;
            if (!os || !*os || !arch || !*arch)
                return core_error_set(err, BERTH_EINVAL,
                                      "manifest %s: platform needs os and architecture", where);
        }
    }

    d.size = (int64_t)json_integer_value(size);
    d.media_type = dup_or_null(mt, &failed);
    d.digest = dup_or_null(digest, &failed);
    d.artifact_type = dup_or_null(atype, &failed);
    d.platform_os = dup_or_null(os, &failed);
    d.platform_arch = dup_or_null(arch, &failed);
    if (failed) {
        rc = oom(err);
        goto fail;
    }
    if ((rc = parse_annotations(&d.annotations, &d.annotations_len, j, where, err)) < 0)
        goto fail;
    if (data && (rc = check_data(data, &d, where, err)) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    berth_oci_desc_dispose(&d);
    return rc;
}

static int parse_desc_array(berth_oci_desc **out, size_t *n_out, json_t *root, const char *key,
                            bool with_platform, berth_error **err)
{
    json_t *arr = json_object_get(root, key);
    berth_oci_desc *v = NULL;
    size_t n, i;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    if (!arr)
        return core_error_set(err, BERTH_EINVAL, "manifest has no \"%s\" array", key);
    if (!json_is_array(arr))
        return core_error_set(err, BERTH_EINVAL, "manifest \"%s\" is not an array", key);
    n = json_array_size(arr);
    if (n == 0)
        return 0;
    if (!(v = core_calloc(n, sizeof(*v))))
        return oom(err);
    for (i = 0; i < n; i++) {
        char where[WHERE_MAX];
        snprintf(where, sizeof(where), "%s[%zu]", key, i);
        if ((rc = parse_desc(&v[i], json_array_get(arr, i), where, with_platform, err)) < 0)
            goto fail;
    }
    *out = v;
    *n_out = n;
    return 0;
fail:
    for (size_t k = 0; k < i; k++)
        berth_oci_desc_dispose(&v[k]);
    core_free(v);
    return rc;
}

/* ------------------------------------------------------------------ manifests */

void berth_oci_manifest_dispose(berth_oci_manifest *m)
{
    if (!m)
        return;
    core_free(m->media_type);
    core_free(m->artifact_type);
    berth_oci_desc_dispose(&m->config);
    for (size_t i = 0; m->layers && i < m->layers_len; i++)
        berth_oci_desc_dispose(&m->layers[i]);
    core_free(m->layers);
    if (m->subject) {
        berth_oci_desc_dispose(m->subject);
        core_free(m->subject);
    }
    kv_free(m->annotations, m->annotations_len);
    memset(m, 0, sizeof(*m));
}

/* The media type of a Content-Type header: parameters and surrounding blanks dropped. NULL for
 * none, or for generic types that say nothing about the document. */
static char *content_type_base(const char *ct, bool *failed)
{
    const char *end;
    char *base;
    if (!ct)
        return NULL;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    end = strchr(ct, ';');
    if (!end)
        end = ct + strlen(ct);
    while (end > ct && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == ct)
        return NULL;
    if (!(base = core_strndup(ct, (size_t)(end - ct)))) {
        *failed = true;
        return NULL;
    }
    if (mt_equal(base, "application/json") || mt_equal(base, "application/octet-stream") ||
        mt_equal(base, "text/plain")) {
        core_free(base);
        return NULL;
    }
    return base;
}

static int check_schema_version(json_t *root, berth_error **err)
{
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!sv)
        return core_error_set(err, BERTH_EINVAL, "manifest has no schemaVersion");
    if (!json_is_integer(sv))
        return core_error_set(err, BERTH_EINVAL, "manifest schemaVersion is not an integer");
    if (json_integer_value(sv) == 1)
        return core_error_set(err, BERTH_EUNSUPPORTED,
                              "docker schema1 manifests are not supported (schemaVersion 1): "
                              "push the image again with a current client");
    if (json_integer_value(sv) != 2)
        return core_error_set(err, BERTH_EUNSUPPORTED,
                              "manifest schemaVersion %lld is not supported, expected 2",
                              (long long)json_integer_value(sv));
    return 0;
}

int berth_oci_manifest_parse(berth_oci_manifest *out, const void *data, size_t len,
                             const char *content_type, berth_error **err)
{
    berth_oci_manifest m = {0};
    json_t *root = NULL;
    json_error_t jerr;
    char *ct = NULL;
    const char *doc_mt = NULL, *mt, *atype = NULL;
    bool failed = false;
    int rc = 0;

    BERTH_ARG_CHECK(out);
    memset(out, 0, sizeof(*out));
    BERTH_ARG_CHECK(data || len == 0);
    if (len > BERTH_OCI_MANIFEST_MAX)
        return core_error_set(err, BERTH_EINVAL,
                              "manifest is %zu bytes, more than the %u byte limit", len,
                              BERTH_OCI_MANIFEST_MAX);
    ct = content_type_base(content_type, &failed);
    if (failed)
        return oom(err);
    if (ct && core_str_has_prefix(ct, SCHEMA1_PREFIX)) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED,
                            "docker schema1 manifests are not supported (content type \"%s\"): "
                            "push the image again with a current client",
                            ct);
        goto out;
    }
    root = json_loadb(len ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc =
            core_error_set(err, BERTH_EINVAL, "manifest is not valid JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "manifest is not a JSON object");
        goto out;
    }
    if ((rc = opt_string(&doc_mt, root, "mediaType", "", err)) < 0)
        goto out;
    if (doc_mt && core_str_has_prefix(doc_mt, SCHEMA1_PREFIX)) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED,
                            "docker schema1 manifests are not supported (media type \"%s\"): "
                            "push the image again with a current client",
                            doc_mt);
        goto out;
    }
    if ((rc = check_schema_version(root, err)) < 0)
        goto out;
    if (doc_mt && ct && !mt_equal(doc_mt, ct)) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "manifest media type \"%s\" does not match content type \"%s\"", doc_mt,
                            ct);
        goto out;
    }
    if (doc_mt)
        mt = doc_mt;
    else if (ct)
        mt = ct;
    else
        mt = json_object_get(root, "manifests") ? BERTH_MT_OCI_INDEX : BERTH_MT_OCI_MANIFEST;

    if (mt_equal(mt, BERTH_MT_OCI_INDEX) || mt_equal(mt, BERTH_MT_DOCKER_LIST)) {
        m.is_index = true;
    } else if (!mt_equal(mt, BERTH_MT_OCI_MANIFEST) && !mt_equal(mt, BERTH_MT_DOCKER_MANIFEST)) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED, "unsupported manifest media type \"%s\"", mt);
        goto out;
    }
    /* One document, one meaning: no index fields in a manifest and the reverse. */
    if (m.is_index && (json_object_get(root, "config") || json_object_get(root, "layers"))) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "manifest of type \"%s\" has image manifest fields (config, layers)",
                            mt);
        goto out;
    }
    if (!m.is_index && json_object_get(root, "manifests")) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "manifest of type \"%s\" has an index field (manifests)", mt);
        goto out;
    }

    if (!(m.media_type = core_strdup(mt))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = opt_string(&atype, root, "artifactType", "", err)) < 0)
        goto out;
    if (atype && !(m.artifact_type = core_strdup(atype))) {
        rc = oom(err);
        goto out;
    }
    if (m.is_index) {
        if ((rc = parse_desc_array(&m.layers, &m.layers_len, root, "manifests", true, err)) < 0)
            goto out;
    } else {
        json_t *config = json_object_get(root, "config");
        if (!config) {
            rc = core_error_set(err, BERTH_EINVAL, "manifest has no config descriptor");
            goto out;
        }
        if ((rc = parse_desc(&m.config, config, "config", false, err)) < 0)
            goto out;
        if ((rc = parse_desc_array(&m.layers, &m.layers_len, root, "layers", false, err)) < 0)
            goto out;
    }
    {
        json_t *subject = json_object_get(root, "subject");
        if (subject && !json_is_null(subject)) {
            if (!(m.subject = core_calloc(1, sizeof(*m.subject)))) {
                rc = oom(err);
                goto out;
            }
            if ((rc = parse_desc(m.subject, subject, "subject", false, err)) < 0)
                goto out;
        }
    }
    if ((rc = parse_annotations(&m.annotations, &m.annotations_len, root, "", err)) < 0)
        goto out;
    *out = m;
    memset(&m, 0, sizeof(m));
out:
    berth_oci_manifest_dispose(&m);
    json_decref(root);
    core_free(ct);
    return rc;
}
