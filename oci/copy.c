/*
 * oci/copy.c: berth_copy, moving an artifact and its signatures between registries, OCI image
 * layouts and OCI archives (the air-gap path), plus the registry implementation of the store.
 *
 * Design: both ends are oci_store vtables (oci/store.h), so one algorithm serves every pair.
 * The root is resolved at the source, then its graph is copied depth-first: for an index every
 * child manifest (all platforms), for a manifest its config and layers. Blobs go through a temp
 * file in a private work directory: the source store verifies the digest while the file is
 * written, so the destination only ever receives verified bytes, and blobs the destination
 * already holds are skipped. Manifests are written children first and byte for byte, so no
 * digest changes. Signatures follow (cosign "sha256-<hex>.sig|.att|.sbom" tags and referrers,
 * recursively for every manifest copied), and the root is tagged last: a failure anywhere leaves
 * nothing new tagged at the destination under the requested name. Single-threaded; the blob
 * transfers themselves are done by the stores (the registry client streams and resumes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/copy.h>

#include "core/core.h"
#include "oci/store.h"

#define LOC_FORMS                                                                                  \
    "oci://REG/REPO[:TAG|@DIGEST], docker://REG/REPO[:TAG|@DIGEST], oci-layout:DIR[:TAG] or "      \
    "oci-archive:FILE[:TAG]"

static const char *const companion_suffixes[] = {".sig", ".att", ".sbom"};

/* ================================================================ registry store */

typedef struct registry {
    oci_store base;
    berth_oci_client *client;     /* borrowed, or own_client */
    berth_oci_client *own_client; /* made here when the caller gave none */
    berth_oci_ref ref;
    int referrers_api; /* -1 unknown, 0 no (fallback tag), 1 yes */
} registry;

/* A copy of the repository reference pointing at tag or digest. */
static int reg_ref(berth_oci_ref *out, const registry *r, const char *tag, const char *digest,
                   berth_error **err)
{
    int rc;
    if ((rc = berth_oci_ref_copy(out, &r->ref, err)) < 0)
        return rc;
    if ((rc = berth_oci_ref_set(out, tag, digest)) < 0) {
        berth_oci_ref_dispose(out);
        if (rc == BERTH_EINVAL)
            return core_error_set(err, rc, "invalid tag or digest \"%s\" for %s",
                                  tag ? tag : digest, r->base.name);
        return core_error_set(err, rc, "out of memory");
    }
    return 0;
}

/* Fill in what a fetch may leave out and check the bytes once more against the digest. */
static int reg_check_blob(berth_oci_blob *b, const char *want, const char *where, berth_error **err)
{
    char got[72];
    core_sha256_digest(got, b->data ? b->data : "", b->len);
    if (!b->digest && !(b->digest = core_strdup(got)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((want && strcmp(want, got) != 0) || strcmp(b->digest, got) != 0)
        return core_error_set(err, BERTH_EVERIFY,
                              "manifest \"%s\" from %s does not match its digest", b->digest,
                              where);
    if (!b->media_type)
        return core_error_set(err, BERTH_EINVAL, "manifest \"%s\" from %s has no media type",
                              b->digest, where);
    return 0;
}

static int reg_fetch(oci_store *s, const char *tag, const char *digest, berth_oci_blob *out,
                     berth_error **err)
{
    registry *r = (registry *)s;
    berth_oci_ref ref = {0};
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = reg_ref(&ref, r, tag, digest, err)) < 0)
        return rc;
    if ((rc = berth_oci_manifest_get(out, r->client, &ref, err)) == 0 &&
        (rc = reg_check_blob(out, digest, s->name, err)) < 0)
        berth_oci_blob_dispose(out);
    berth_oci_ref_dispose(&ref);
    return rc;
}

static int reg_resolve(oci_store *s, const char *want, berth_oci_blob *out, berth_error **err)
{
    if (!want) {
        if (s->digest)
            return reg_fetch(s, NULL, s->digest, out, err);
        if (!s->tag && !(s->tag = core_strdup("latest")))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        return reg_fetch(s, s->tag, NULL, out, err);
    }
    if (berth_oci_digest_is_valid(want))
        return reg_fetch(s, NULL, want, out, err);
    return reg_fetch(s, want, NULL, out, err);
}

static int reg_get_manifest(oci_store *s, const char *digest, berth_oci_blob *out,
                            berth_error **err)
{
    return reg_fetch(s, NULL, digest, out, err);
}

static int reg_put_manifest(oci_store *s, const char *media_type, const char *digest,
                            const void *data, size_t len, const char *tag, oci_put_mode mode,
                            berth_error **err)
{
    registry *r = (registry *)s;
    berth_oci_ref ref = {0};
    char *got = NULL;
    int rc;

    if ((rc = reg_ref(&ref, r, mode == OCI_PUT_ROOT ? tag : NULL,
                      (mode == OCI_PUT_ROOT && tag) ? NULL : digest, err)) < 0)
        return rc;
    if ((rc = berth_oci_manifest_put(&got, r->client, &ref, media_type, data, len, err)) < 0)
        goto out;
    if (got && strcmp(got, digest) != 0)
        rc = core_error_set(err, BERTH_EVERIFY, "%s stored manifest \"%s\" as \"%s\"", s->name,
                            digest, got);
out:
    core_free(got);
    berth_oci_ref_dispose(&ref);
    return rc;
}

static int reg_blob_exists(oci_store *s, const char *digest, int64_t size, bool *out,
                           berth_error **err)
{
    registry *r = (registry *)s;
    (void)size;
    return berth_oci_blob_exists(out, r->client, &r->ref, digest, err);
}

static int reg_manifest_exists(oci_store *s, const char *digest, bool *out, berth_error **err)
{
    registry *r = (registry *)s;
    berth_oci_ref ref = {0};
    berth_error *e = NULL;
    char *got = NULL, *mt = NULL;
    int rc;

    *out = false;
    if ((rc = reg_ref(&ref, r, NULL, digest, err)) < 0)
        return rc;
    rc = berth_oci_manifest_head(&got, &mt, r->client, &ref, &e);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(e); /* absent: the caller copies it */
        rc = 0;
    } else if (rc < 0) {
        if (err && !*err)
            *err = e;
        else
            berth_error_free(e); /* err holds an earlier chain or is NULL: keep the code */
    } else {
        *out = got && strcmp(got, digest) == 0;
    }
    core_free(got);
    core_free(mt);
    berth_oci_ref_dispose(&ref);
    return rc;
}

static int reg_get_blob(oci_store *s, const char *digest, int64_t size, berth_oci_sink_fn sink,
                        void *payload, berth_error **err)
{
    registry *r = (registry *)s;
    return berth_oci_blob_get(r->client, &r->ref, digest, size, sink, payload, err);
}

static int reg_put_blob(oci_store *s, const char *digest, int64_t size, const char *path,
                        berth_error **err)
{
    registry *r = (registry *)s;
    berth_oci_upload up;
    memset(&up, 0, sizeof(up));
    up.digest = digest;
    up.size = size;
    up.path = path;
    return berth_oci_blobs_push(r->client, &r->ref, &up, 1, NULL, err);
}

static int reg_list_tags(oci_store *s, char ***tags_out, size_t *n_out, berth_error **err)
{
    registry *r = (registry *)s;
    return berth_oci_tags_list(tags_out, n_out, r->client, &r->ref, 0, err);
}

static void descs_free(berth_oci_desc *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        berth_oci_desc_dispose(&v[i]);
    core_free(v);
}

/* Referrers, with "unknown" (404 on the fallback tag) read as none. */
static int reg_query_referrers(berth_oci_desc **descs_out, size_t *n_out, bool *fallback_out,
                               registry *r, const char *subject, berth_error **err)
{
    berth_error *e = NULL;
    int rc;

    *descs_out = NULL;
    *n_out = 0;
    *fallback_out = false;
    rc = berth_oci_referrers(descs_out, n_out, fallback_out, r->client, &r->ref, subject, NULL, &e);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(e); /* nothing refers to subject here */
        *descs_out = NULL;
        *n_out = 0;
        *fallback_out = true;
        return 0;
    }
    if (rc < 0) {
        if (err && !*err)
            *err = e;
        else
            berth_error_free(e); /* err holds an earlier chain or is NULL: keep the code */
        return rc;
    }
    return 0;
}

static int reg_referrers(oci_store *s, const char *subject, berth_oci_desc **descs_out,
                         size_t *n_out, berth_error **err)
{
    bool fallback = false;
    return reg_query_referrers(descs_out, n_out, &fallback, (registry *)s, subject, err);
}

static int reg_add_referrer(oci_store *s, const char *subject, const berth_oci_desc *desc,
                            berth_error **err)
{
    registry *r = (registry *)s;
    berth_oci_desc *v = NULL;
    size_t n = 0;
    bool fallback = false;
    int rc;

    if (r->referrers_api < 0) {
        /* One probe: a registry with the referrers API indexes `subject` itself on PUT. */
        if ((rc = reg_query_referrers(&v, &n, &fallback, r, subject, err)) < 0)
            return rc;
        descs_free(v, n);
        r->referrers_api = fallback ? 0 : 1;
    }
    if (r->referrers_api == 1)
        return 0;
    return berth_oci_referrers_tag_add(r->client, &r->ref, subject, desc, err);
}

static int reg_commit(oci_store *s, berth_error **err)
{
    (void)s;
    (void)err;
    return 0; /* every PUT is already visible */
}

static void reg_close(oci_store *s)
{
    registry *r = (registry *)s;
    if (!r)
        return;
    berth_oci_client_free(r->own_client);
    berth_oci_ref_dispose(&r->ref);
    core_free(r->base.name);
    core_free(r->base.tag);
    core_free(r->base.digest);
    core_free(r);
}

static const oci_store_ops registry_ops = {
    .resolve = reg_resolve,
    .get_manifest = reg_get_manifest,
    .put_manifest = reg_put_manifest,
    .blob_exists = reg_blob_exists,
    .manifest_exists = reg_manifest_exists,
    .get_blob = reg_get_blob,
    .put_blob = reg_put_blob,
    .list_tags = reg_list_tags,
    .referrers = reg_referrers,
    .add_referrer = reg_add_referrer,
    .commit = reg_commit,
    .close = reg_close,
};

static int registry_open(oci_store **out, const char *text, berth_oci_client *client,
                         berth_error **err)
{
    registry *r = core_calloc(1, sizeof(*r));
    berth_oci_ref tmp;
    int rc;

    *out = NULL;
    if (!r)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    r->base.ops = &registry_ops;
    r->referrers_api = -1;
    if ((rc = berth_oci_ref_parse(&r->ref, text, err)) < 0)
        goto out;
    /* the repository alone names the store in messages */
    tmp = r->ref;
    tmp.tag = NULL;
    tmp.digest = NULL;
    r->base.name = berth_oci_ref_string(&tmp);
    r->base.tag = r->ref.tag ? core_strdup(r->ref.tag) : NULL;
    r->base.digest = r->ref.digest ? core_strdup(r->ref.digest) : NULL;
    if (!r->base.name || (r->ref.tag && !r->base.tag) || (r->ref.digest && !r->base.digest)) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    r->client = client;
    if (!client) {
        berth_oci_client_opts o;
        memset(&o, 0, sizeof(o)); /* the _INIT macro trips -Wmissing-field-initializers */
        o.version = BERTH_OCI_CLIENT_OPTS_VERSION;
        if ((rc = berth_oci_client_new(&r->own_client, &o, err)) < 0)
            goto out;
        r->client = r->own_client;
    }
    *out = &r->base;
    r = NULL;
out:
    reg_close(r ? &r->base : NULL);
    return rc;
}

/* ================================================================ locations */

/* "PATH[:TAG]" as skopeo splits it: at the first colon. */
static int split_path_tag(char **path_out, char **tag_out, const char *rest, const char *loc,
                          berth_error **err)
{
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);

    *path_out = NULL;
    *tag_out = NULL;
    if (plen == 0)
        return core_error_set(err, BERTH_EINVAL, "no path in location \"%s\"", loc);
    if (!(*path_out = core_strndup(rest, plen)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (colon && colon[1] && !(*tag_out = core_strdup(colon + 1))) {
        core_free(*path_out);
        *path_out = NULL;
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

int oci_location_open(oci_store **out, const char *loc, bool is_dst, berth_oci_client *client,
                      berth_error **err)
{
    char *path = NULL, *tag = NULL;
    int rc;

    *out = NULL;
    if (core_str_has_prefix(loc, "oci://") || core_str_has_prefix(loc, "docker://"))
        return registry_open(out, loc, client, err);
    if (core_str_has_prefix(loc, "oci-layout:") || core_str_has_prefix(loc, "oci-archive:")) {
        bool archive = core_str_has_prefix(loc, "oci-archive:");
        const char *rest = loc + (archive ? strlen("oci-archive:") : strlen("oci-layout:"));
        if ((rc = split_path_tag(&path, &tag, rest, loc, err)) < 0)
            return rc;
        rc = archive ? oci_archive_open(out, path, tag, is_dst, err)
                     : oci_layout_open(out, path, tag, is_dst, err);
        core_free(path);
        core_free(tag);
        return rc;
    }
    return core_error_set(err, BERTH_EINVAL, "unknown location \"%s\": use " LOC_FORMS, loc);
}

/* ================================================================ the copy */

/* A small set of strings in insertion order (graphs are small: linear search is enough). */
typedef struct strset {
    char **v;
    size_t n, cap;
} strset;

static bool strset_has(const strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static int strset_add(strset *s, const char *x)
{
    char **grown;
    if (strset_has(s, x))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        if (!(grown = core_realloc(s->v, cap * sizeof(*grown))))
            return BERTH_ENOMEM;
        s->v = grown;
        s->cap = cap;
    }
    if (!(s->v[s->n] = core_strdup(x)))
        return BERTH_ENOMEM;
    s->n++;
    return 0;
}

static void strset_dispose(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        core_free(s->v[i]);
    core_free(s->v);
    memset(s, 0, sizeof(*s));
}

typedef struct copier {
    oci_store *src, *dst;
    const berth_copy_opts *opts;
    berth_copy_result *res;
    char *work;            /* private temp dir for blobs in transit */
    unsigned long seq;     /* temp file names */
    strset blobs_done;     /* written or found at the destination in this run */
    strset manifests_done; /* written to the destination in this run */
    strset sig_queue;      /* digests whose companions are looked up, in order */
    size_t sig_next;       /* first sig_queue entry not looked up yet */
    char **tags;           /* source tags, sorted, loaded on first need */
    size_t tags_n;
    bool tags_loaded;
} copier;

typedef struct blob_sink {
    int fd;
    const char *path;
    const char *digest;
    int64_t done, total;
    const berth_copy_opts *opts;
    berth_error **err;
} blob_sink;

static int sink_write(void *payload, const void *data, size_t len)
{
    blob_sink *bs = payload;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(bs->fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return core_error_errno(bs->err, errno, "writing \"%s\"", bs->path);
        }
        p += n;
        left -= (size_t)n;
    }
    bs->done += (int64_t)len;
    if (bs->opts->progress)
        bs->opts->progress(bs->opts->progress_payload, bs->digest, bs->done, bs->total);
    return 0;
}

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static int copy_blob(copier *c, const berth_oci_desc *d, berth_error **err)
{
    blob_sink bs;
    char *path = NULL;
    bool have = false;
    int fd = -1, rc;

    if (!d->digest || strset_has(&c->blobs_done, d->digest))
        return 0;
    if ((rc = c->dst->ops->blob_exists(c->dst, d->digest, d->size, &have, err)) < 0) {
        core_error_wrap(err, "checking blob \"%s\" at %s", d->digest, c->dst->name);
        return rc;
    }
    if (have) {
        c->res->blobs_skipped++;
        return strset_add(&c->blobs_done, d->digest) < 0 ? oom(err) : 0;
    }
    if (!(path = core_sprintf("%s/blob-%lu", c->work, ++c->seq)))
        return oom(err);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = core_error_errno(err, errno, "creating \"%s\"", path);
        goto out;
    }
    bs.fd = fd;
    bs.path = path;
    bs.digest = d->digest;
    bs.done = 0;
    bs.total = d->size;
    bs.opts = c->opts;
    bs.err = err;
    if ((rc = c->src->ops->get_blob(c->src, d->digest, d->size, sink_write, &bs, err)) < 0) {
        core_error_wrap(err, "copying blob \"%s\" from %s", d->digest, c->src->name);
        goto out;
    }
    close(fd);
    fd = -1;
    if ((rc = c->dst->ops->put_blob(c->dst, d->digest, d->size, path, err)) < 0) {
        core_error_wrap(err, "copying blob \"%s\" to %s", d->digest, c->dst->name);
        goto out;
    }
    c->res->blobs++;
    if (strset_add(&c->blobs_done, d->digest) < 0)
        rc = oom(err);
out:
    if (fd >= 0)
        close(fd);
    unlink(path);
    core_free(path);
    return rc;
}

static int copy_manifest(copier *c, const char *digest, const char *tag, oci_put_mode mode,
                         berth_error **err);

/* Everything m refers to: child manifests of an index, config and layers of a manifest. */
static int copy_children(copier *c, const berth_oci_blob *b, berth_error **err)
{
    berth_oci_manifest m;
    int rc;

    memset(&m, 0, sizeof(m));
    if ((rc = berth_oci_manifest_parse(&m, b->data, b->len, b->media_type, err)) < 0) {
        core_error_wrap(err, "manifest \"%s\" in %s", b->digest, c->src->name);
        goto out;
    }
    if (m.is_index) {
        for (size_t i = 0; i < m.layers_len; i++)
            if ((rc = copy_manifest(c, m.layers[i].digest, NULL, OCI_PUT_CHILD, err)) < 0)
                goto out;
        goto out;
    }
    if ((rc = copy_blob(c, &m.config, err)) < 0)
        goto out;
    for (size_t i = 0; i < m.layers_len; i++)
        if ((rc = copy_blob(c, &m.layers[i], err)) < 0)
            goto out;
out:
    berth_oci_manifest_dispose(&m);
    return rc;
}

/* Note a manifest written to the destination (counted once) and queue its companions. */
static int manifest_done(copier *c, const char *digest, berth_error **err)
{
    if (!strset_has(&c->manifests_done, digest)) {
        if (strset_add(&c->manifests_done, digest) < 0)
            return oom(err);
        c->res->manifests++;
    }
    return strset_add(&c->sig_queue, digest) < 0 ? oom(err) : 0;
}

/* Does the destination hold the manifest already (stores without a cheap check say no)? */
static int manifest_present(copier *c, const char *digest, bool *out, berth_error **err)
{
    int rc;
    *out = false;
    if (!c->dst->ops->manifest_exists)
        return 0;
    if ((rc = c->dst->ops->manifest_exists(c->dst, digest, out, err)) < 0)
        return core_error_wrap(err, "checking manifest \"%s\" at %s", digest, c->dst->name);
    return 0;
}

/* Copy the graph of one manifest (by digest) and store it: children first, then itself. */
static int copy_manifest(copier *c, const char *digest, const char *tag, oci_put_mode mode,
                         berth_error **err)
{
    berth_oci_blob b = {0};
    int rc;

    if (mode == OCI_PUT_CHILD && strset_has(&c->manifests_done, digest))
        return 0;
    if (mode == OCI_PUT_CHILD) {
        bool have = false;
        if ((rc = manifest_present(c, digest, &have, err)) < 0)
            return rc;
        if (have) {
            c->res->manifests_skipped++;
            if (strset_add(&c->manifests_done, digest) < 0)
                return oom(err);
            return strset_add(&c->sig_queue, digest) < 0 ? oom(err) : 0;
        }
    }
    if ((rc = c->src->ops->get_manifest(c->src, digest, &b, err)) < 0)
        goto out;
    if ((rc = copy_children(c, &b, err)) < 0)
        goto out;
    if ((rc = c->dst->ops->put_manifest(c->dst, b.media_type, digest, b.data, b.len, tag, mode,
                                        err)) < 0) {
        core_error_wrap(err, "writing manifest \"%s\" to %s", digest, c->dst->name);
        goto out;
    }
    rc = manifest_done(c, digest, err);
out:
    berth_oci_blob_dispose(&b);
    return rc;
}

/* Copy the manifest the source holds under tag to the destination under the same tag. */
static int copy_tagged(copier *c, const char *tag, berth_error **err)
{
    berth_oci_blob b = {0};
    int rc;

    if ((rc = c->src->ops->resolve(c->src, tag, &b, err)) < 0)
        goto out;
    if ((rc = copy_children(c, &b, err)) < 0)
        goto out;
    if ((rc = c->dst->ops->put_manifest(c->dst, b.media_type, b.digest, b.data, b.len, tag,
                                        OCI_PUT_ROOT, err)) < 0) {
        core_error_wrap(err, "writing \"%s\" to %s", tag, c->dst->name);
        goto out;
    }
    c->res->signatures++;
    rc = manifest_done(c, b.digest, err);
out:
    berth_oci_blob_dispose(&b);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_tags(copier *c, berth_error **err)
{
    int rc;
    if (c->tags_loaded)
        return 0;
    if ((rc = c->src->ops->list_tags(c->src, &c->tags, &c->tags_n, err)) < 0)
        return core_error_wrap(err, "listing tags of %s", c->src->name);
    if (c->tags_n > 1)
        qsort(c->tags, c->tags_n, sizeof(*c->tags), cmp_str);
    c->tags_loaded = true;
    return 0;
}

static bool have_tag(const copier *c, const char *tag)
{
    return c->tags_n > 0 && bsearch(&tag, c->tags, c->tags_n, sizeof(*c->tags), cmp_str) != NULL;
}

/* Companions of one digest: cosign tags, then referrers (spec oci-artifacts.md §3.7). */
static int copy_companions_of(copier *c, const char *digest, berth_error **err)
{
    berth_oci_desc *v = NULL;
    size_t n = 0;
    char *base = NULL, *tag = NULL;
    int rc;

    if ((rc = load_tags(c, err)) < 0)
        return rc;
    if (!(base = oci_store_digest_tag(digest)))
        return oom(err);
    for (size_t i = 0; i < sizeof(companion_suffixes) / sizeof(companion_suffixes[0]); i++) {
        core_free(tag);
        if (!(tag = core_sprintf("%s%s", base, companion_suffixes[i]))) {
            rc = oom(err);
            goto out;
        }
        if (have_tag(c, tag) && (rc = copy_tagged(c, tag, err)) < 0) {
            core_error_wrap(err, "copying signature tag \"%s\"", tag);
            goto out;
        }
    }
    if ((rc = c->src->ops->referrers(c->src, digest, &v, &n, err)) < 0) {
        core_error_wrap(err, "finding referrers of \"%s\" in %s", digest, c->src->name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool seen = strset_has(&c->manifests_done, v[i].digest);
        if (!seen && (rc = copy_manifest(c, v[i].digest, NULL, OCI_PUT_CHILD, err)) < 0) {
            core_error_wrap(err, "copying referrer \"%s\" of \"%s\"", v[i].digest, digest);
            goto out;
        }
        if (!seen)
            c->res->signatures++;
        if ((rc = c->dst->ops->add_referrer(c->dst, digest, &v[i], err)) < 0) {
            core_error_wrap(err, "recording referrer \"%s\" at %s", v[i].digest, c->dst->name);
            goto out;
        }
    }
out:
    descs_free(v, n);
    core_free(base);
    core_free(tag);
    return rc;
}

static int copy_companions(copier *c, berth_error **err)
{
    int rc;
    /* sig_queue grows while we walk it: companions may have companions */
    while (c->sig_next < c->sig_queue.n) {
        const char *d = c->sig_queue.v[c->sig_next++];
        if ((rc = copy_companions_of(c, d, err)) < 0)
            return rc;
    }
    return 0;
}

static const char *tmp_parent(void)
{
    const char *t = getenv("TMPDIR");
    return (t && *t) ? t : "/tmp";
}

int oci_copy_graph(berth_copy_result *out, oci_store *src, const char *src_want, oci_store *dst,
                   const char *dst_tag, bool tag_from_src, const berth_copy_opts *opts,
                   berth_error **err)
{
    berth_copy_opts defaults;
    berth_copy_result res;
    copier c;
    berth_oci_blob root = {0};
    bool have = false;
    int rc;

    BERTH_ARG_CHECK(out && src && dst);
    memset(out, 0, sizeof(*out));
    memset(&res, 0, sizeof(res));
    memset(&c, 0, sizeof(c));
    memset(&defaults, 0, sizeof(defaults));
    defaults.version = BERTH_COPY_OPTS_VERSION;
    if (!opts)
        opts = &defaults;
    c.opts = opts;
    c.res = &res;
    c.src = src;
    c.dst = dst;
    if ((rc = core_fs_mkdtemp(&c.work, tmp_parent(), "berth-copy-", err)) < 0)
        goto out;

    if ((rc = c.src->ops->resolve(c.src, src_want, &root, err)) < 0)
        goto out;
    if (c.dst->digest && strcmp(c.dst->digest, root.digest) != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "destination digest \"%s\" differs from \"%s\"",
                            c.dst->digest, root.digest);
        goto out;
    }
    if (!dst_tag && tag_from_src)
        dst_tag = c.dst->tag ? c.dst->tag : (c.dst->digest ? NULL : c.src->tag);

    /* a root the destination already holds has all its content there (registries check
     * references on PUT, and the layout writes children first): only tag and signatures left */
    if ((rc = manifest_present(&c, root.digest, &have, err)) < 0)
        goto out;
    if (!have && (rc = copy_children(&c, &root, err)) < 0)
        goto out;
    if (strset_add(&c.sig_queue, root.digest) < 0) {
        rc = oom(err);
        goto out;
    }
    if (!opts->skip_signatures && (rc = copy_companions(&c, err)) < 0)
        goto out;
    /* the root last: until here nothing is tagged with dst_tag */
    if ((rc = c.dst->ops->put_manifest(c.dst, root.media_type, root.digest, root.data, root.len,
                                       dst_tag, OCI_PUT_ROOT, err)) < 0) {
        core_error_wrap(err, "writing manifest \"%s\" to %s", root.digest, c.dst->name);
        goto out;
    }
    if (!strset_has(&c.manifests_done, root.digest))
        res.manifests++;
    snprintf(res.digest, sizeof(res.digest), "%s", root.digest);
    *out = res;
out:
    if (c.work) {
        berth_error *e = NULL;
        if (core_fs_remove_all(c.work, &e) < 0)
            berth_error_free(e); /* a leftover temp dir must not turn success into failure */
    }
    core_free(c.work);
    berth_oci_blob_dispose(&root);
    strset_dispose(&c.blobs_done);
    strset_dispose(&c.manifests_done);
    strset_dispose(&c.sig_queue);
    berth_strv_free(c.tags, c.tags_n);
    return rc;
}

int berth_copy(berth_copy_result *out, const char *src, const char *dst,
               const berth_copy_opts *opts, berth_error **err)
{
    oci_store *s = NULL, *d = NULL;
    int rc;

    BERTH_ARG_CHECK(out && src && dst);
    memset(out, 0, sizeof(*out));
    if ((rc = oci_location_open(&s, src, false, opts ? opts->src_client : NULL, err)) < 0)
        goto out;
    if ((rc = oci_location_open(&d, dst, true, opts ? opts->dst_client : NULL, err)) < 0)
        goto out;
    if ((rc = oci_copy_graph(out, s, NULL, d, NULL, true, opts, err)) < 0)
        goto out;
    rc = d->ops->commit(d, err);
out:
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        core_error_wrap(err, "copying \"%s\" to \"%s\"", src, dst);
    }
    oci_store_close(s);
    oci_store_close(d);
    return rc;
}
