/*
 * oci/layout.c: OCI image layouts (directories) and OCI archives (tars of layouts) as stores for
 * berth_copy: the offline end of the air-gap path (spec oci-artifacts.md §4).
 *
 * Design: a layout is `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. Blobs are written by a
 * temp file in the same directory, fsync and rename, and hashed both as they are written and when
 * they are read back, so a truncated or tampered file is never handed on. index.json is the only
 * mutable file: it is re-read for each operation, edited as a jansson tree (unknown fields and
 * media types are kept) and replaced atomically. Tags are `org.opencontainers.image.ref.name`
 * annotations; putting a tag removes any entry that already holds the same name, as skopeo does.
 * Referrers are found in index.json: manifests whose `subject` is the digest, plus the children
 * of a "sha256-<hex>" fallback index; a referrer we add becomes an untagged index entry (as
 * oras-go does). An archive is a layout extracted to a temporary directory (libarchive, every
 * path checked with core_fs_check_relpath, only files and directories) and re-packed on commit
 * with entries in lexical order, mtime 0 and owner 0, through a temp file and rename.
 * Only sha256 blobs can be verified, so other algorithms are refused. Not thread-safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "core/core.h"
#include "oci/store.h"

#define LAYOUT_FILE "oci-layout"
#define INDEX_FILE "index.json"
#define LAYOUT_JSON "{\"imageLayoutVersion\":\"1.0.0\"}"
#define EMPTY_INDEX_JSON                                                                           \
    "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX "\",\"manifests\":[]}"
#define IO_CHUNK 65536
#define SHA256_DIGEST_LEN 71 /* "sha256:" + 64 hex */

/* One manifest in index.json and the subject it names, for referrers(). */
typedef struct subject_entry {
    char *subject; /* digest or NULL */
    berth_oci_desc desc;
} subject_entry;

typedef struct layout {
    oci_store base;
    char *dir;           /* the layout directory (a temp dir for archives) */
    char *archive;       /* archive file, or NULL for a plain layout */
    char *tmp;           /* temp directory to remove on close, or NULL */
    bool dirty;          /* written since open: archives re-pack on commit */
    subject_entry *subj; /* referrers cache, built on first use, dropped on writes */
    size_t subj_len;
    bool subj_loaded;
} layout;

static const oci_store_ops layout_ops;

/* ---------------------------------------------------------------- small helpers */

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool is_sha256_digest(const char *d)
{
    return d && strlen(d) == SHA256_DIGEST_LEN && core_str_has_prefix(d, "sha256:") &&
           is_lower_hex(d + 7, 64);
}

/* The digest grammar of the image spec (algorithm ":" encoded), for index.json entries that we
 * only pass through. */
static bool digest_grammar_ok(const char *d)
{
    const char *colon = strchr(d, ':');
    size_t i;
    if (!colon || colon == d || colon[1] == '\0')
        return false;
    for (i = 0; d + i < colon; i++) {
        char c = d[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool sep = c == '+' || c == '.' || c == '_' || c == '-';
        if (!alnum && !(sep && i > 0 && d + i + 1 < colon))
            return false;
    }
    for (const char *p = colon + 1; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

char *oci_store_digest_tag(const char *digest)
{
    const char *colon = digest ? strchr(digest, ':') : NULL;
    if (!colon)
        return NULL;
    return core_sprintf("%.*s-%s", (int)(colon - digest), digest, colon + 1);
}

void oci_store_close(oci_store *s)
{
    if (s)
        s->ops->close(s);
}

static const char *tmp_parent(void)
{
    const char *t = getenv("TMPDIR");
    return (t && *t) ? t : "/tmp";
}

static int check_digest(const layout *l, const char *digest, berth_error **err)
{
    if (is_sha256_digest(digest))
        return 0;
    return core_error_set(err, BERTH_EINVAL, "unsupported or invalid digest \"%s\" in %s",
                          digest ? digest : "", l->base.name);
}

static char *blob_path(const layout *l, const char *digest)
{
    return core_sprintf("%s/blobs/sha256/%s", l->dir, digest + 7);
}

static int verify_failed(berth_error **err, const char *digest, const char *where,
                         const char *got_hex)
{
    return core_error_set(err, BERTH_EVERIFY,
                          "blob \"%s\" in %s does not match its digest (content hashes to "
                          "sha256:%.12s...)",
                          digest, where, got_hex);
}

static void subj_drop(layout *l)
{
    for (size_t i = 0; i < l->subj_len; i++) {
        core_free(l->subj[i].subject);
        berth_oci_desc_dispose(&l->subj[i].desc);
    }
    core_free(l->subj);
    l->subj = NULL;
    l->subj_len = 0;
    l->subj_loaded = false;
}

/* ---------------------------------------------------------------- index.json */

void oci_layout_index_dispose(oci_layout_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++) {
        core_free(ix->v[i].media_type);
        core_free(ix->v[i].digest);
        core_free(ix->v[i].ref_name);
    }
    core_free(ix->v);
    ix->v = NULL;
    ix->n = 0;
}

static const char *entry_ref_name(const json_t *desc)
{
    const json_t *ann = json_object_get(desc, "annotations");
    return json_is_object(ann) ? json_string_value(json_object_get(ann, BERTH_ANN_REF_NAME)) : NULL;
}

/* Validate a parsed index.json and list its entries. `what` names the file in messages. */
static int index_entries(oci_layout_index *out, const json_t *root, const char *what,
                         berth_error **err)
{
    oci_layout_index ix = {NULL, 0};
    const json_t *arr, *desc, *mt, *dg, *sz, *ann, *rn;
    size_t i;
    int rc = 0;

    if (!json_is_object(root))
        return core_error_set(err, BERTH_EINVAL, "%s: not a json object", what);
    arr = json_object_get(root, "manifests");
    if (!arr || json_is_null(arr)) {
        *out = ix;
        return 0;
    }
    if (!json_is_array(arr))
        return core_error_set(err, BERTH_EINVAL, "%s: \"manifests\" is not an array", what);
    if (json_array_size(arr) > 0) {
        ix.v = core_calloc(json_array_size(arr), sizeof(*ix.v));
        if (!ix.v)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    json_array_foreach(arr, i, desc)
    {
        oci_layout_entry *e = &ix.v[ix.n];
        if (!json_is_object(desc)) {
            rc = core_error_set(err, BERTH_EINVAL, "%s: manifests[%zu] is not an object", what, i);
            goto out;
        }
        mt = json_object_get(desc, "mediaType");
        dg = json_object_get(desc, "digest");
        sz = json_object_get(desc, "size");
        ann = json_object_get(desc, "annotations");
        if (mt && !json_is_string(mt)) {
            rc = core_error_set(err, BERTH_EINVAL, "%s: manifests[%zu]: mediaType is not a string",
                                what, i);
            goto out;
        }
        if (!json_is_string(dg) || !digest_grammar_ok(json_string_value(dg))) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "%s: manifests[%zu]: digest is missing or invalid", what, i);
            goto out;
        }
        if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "%s: manifests[%zu]: size is missing or negative", what, i);
            goto out;
        }
        if (ann && !json_is_null(ann) && !json_is_object(ann)) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "%s: manifests[%zu]: annotations is not an object", what, i);
            goto out;
        }
        rn = json_is_object(ann) ? json_object_get(ann, BERTH_ANN_REF_NAME) : NULL;
        if (rn && !json_is_string(rn)) {
            rc = core_error_set(err, BERTH_EINVAL, "%s: manifests[%zu]: %s is not a string", what,
                                i, BERTH_ANN_REF_NAME);
            goto out;
        }
        e->media_type = mt ? core_strdup(json_string_value(mt)) : NULL;
        e->digest = core_strdup(json_string_value(dg));
        e->size = (int64_t)json_integer_value(sz);
        e->ref_name = rn ? core_strdup(json_string_value(rn)) : NULL;
        ix.n++;
        if ((mt && !e->media_type) || !e->digest || (rn && !e->ref_name)) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    *out = ix;
    ix.v = NULL;
    ix.n = 0;
out:
    oci_layout_index_dispose(&ix);
    return rc;
}

int oci_layout_index_parse(oci_layout_index *out, const void *data, size_t len, berth_error **err)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    BERTH_ARG_CHECK(out && (data || len == 0));
    out->v = NULL;
    out->n = 0;
    if (len > BERTH_OCI_MANIFEST_MAX)
        return core_error_set(err, BERTH_EINVAL, "index.json: %zu bytes is over the %u limit", len,
                              BERTH_OCI_MANIFEST_MAX);
    root = json_loadb(data ? data : "", len, 0, &jerr);
    if (!root)
        return core_error_set(err, BERTH_EINVAL, "index.json: invalid json at line %d: %s",
                              jerr.line, jerr.text);
    rc = index_entries(out, root, "index.json", err);
    json_decref(root);
    return rc;
}

/* Load index.json as a tree (for edits) and its entries (for lookups). Either may be NULL. */
static int index_load(json_t **root_out, oci_layout_index *ix_out, layout *l, berth_error **err)
{
    berth_buf buf = BERTH_BUF_INIT;
    json_error_t jerr;
    json_t *root = NULL;
    char *path = NULL, *what = NULL;
    oci_layout_index ix = {NULL, 0};
    int rc;

    path = core_sprintf("%s/%s", l->dir, INDEX_FILE);
    what = core_sprintf("index.json of %s", l->base.name);
    if (!path || !what) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_read_file(&buf, path, BERTH_OCI_MANIFEST_MAX, err)) < 0) {
        core_error_wrap(err, "reading %s", what);
        goto out;
    }
    root = json_loadb(buf.ptr ? buf.ptr : "", buf.len, 0, &jerr);
    if (!root) {
        rc = core_error_set(err, BERTH_EINVAL, "%s: invalid json at line %d: %s", what, jerr.line,
                            jerr.text);
        goto out;
    }
    if ((rc = index_entries(&ix, root, what, err)) < 0)
        goto out;
    if (ix_out) {
        *ix_out = ix;
        ix.v = NULL;
        ix.n = 0;
    }
    if (root_out) {
        *root_out = root;
        root = NULL;
    }
out:
    oci_layout_index_dispose(&ix);
    json_decref(root);
    berth_buf_dispose(&buf);
    core_free(path);
    core_free(what);
    return rc;
}

static int index_save(layout *l, const json_t *root, berth_error **err)
{
    char *text = NULL, *path = NULL;
    int rc;

    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    path = core_sprintf("%s/%s", l->dir, INDEX_FILE);
    if (!text || !path) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_write_atomic(path, text, strlen(text), 0644, err)) < 0) {
        core_error_wrap(err, "writing index.json of %s", l->base.name);
        goto out;
    }
    l->dirty = true;
    subj_drop(l);
out:
    free(text); /* allocated by jansson */
    core_free(path);
    return rc;
}

/* A descriptor object for index.json. ref_name may be NULL. */
static json_t *desc_json(const char *media_type, const char *digest, int64_t size,
                         const char *artifact_type, const berth_kv *ann, size_t ann_len,
                         const char *ref_name)
{
    json_t *d = json_object(), *a = NULL;
    if (!d)
        return NULL;
    if (json_object_set_new(d, "mediaType", json_string(media_type)) < 0 ||
        json_object_set_new(d, "digest", json_string(digest)) < 0 ||
        json_object_set_new(d, "size", json_integer((json_int_t)size)) < 0)
        goto fail;
    if (artifact_type && json_object_set_new(d, "artifactType", json_string(artifact_type)) < 0)
        goto fail;
    if (ann_len > 0 || ref_name) {
        a = json_object();
        if (!a)
            goto fail;
        for (size_t i = 0; i < ann_len; i++) {
            if (strcmp(ann[i].key, BERTH_ANN_REF_NAME) == 0)
                continue;
            if (json_object_set_new(a, ann[i].key, json_string(ann[i].value)) < 0)
                goto fail;
        }
        if (ref_name && json_object_set_new(a, BERTH_ANN_REF_NAME, json_string(ref_name)) < 0)
            goto fail;
        if (json_object_set_new(d, "annotations", a) < 0) {
            a = NULL; /* set_new consumed it */
            goto fail;
        }
        a = NULL;
    }
    return d;
fail:
    json_decref(a);
    json_decref(d);
    return NULL;
}

/* The "manifests" array of root, created when missing. */
static json_t *index_manifests(json_t *root)
{
    json_t *arr = json_object_get(root, "manifests");
    if (json_is_array(arr))
        return arr;
    arr = json_array();
    if (!arr || json_object_set_new(root, "manifests", arr) < 0)
        return NULL;
    return arr;
}

/* ---------------------------------------------------------------- media types */

static char *sniff_media_type(const void *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    const char *mt;
    char *out;
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    mt = json_string_value(json_object_get(root, "mediaType"));
    if (mt)
        out = core_strdup(mt);
    else if (json_is_array(json_object_get(root, "manifests")))
        out = core_strdup(BERTH_MT_OCI_INDEX);
    else
        out = core_strdup(BERTH_MT_OCI_MANIFEST);
    json_decref(root);
    return out;
}

/* ---------------------------------------------------------------- blobs */

static int layout_blob_exists(oci_store *s, const char *digest, int64_t size, bool *out,
                              berth_error **err)
{
    layout *l = (layout *)s;
    struct stat st;
    char *path;
    int rc;

    *out = false;
    if ((rc = check_digest(l, digest, err)) < 0)
        return rc;
    if (!(path = blob_path(l, digest)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size))
        *out = true;
    core_free(path);
    return 0;
}

static int layout_get_blob(oci_store *s, const char *digest, int64_t size, berth_oci_sink_fn sink,
                           void *payload, berth_error **err)
{
    layout *l = (layout *)s;
    core_sha256 *h = NULL;
    unsigned char *buf = NULL;
    char *path = NULL;
    char hex[CORE_SHA256_HEX_LEN + 1];
    int64_t total = 0;
    int fd = -1, rc;
    ssize_t n;

    if ((rc = check_digest(l, digest, err)) < 0)
        return rc;
    path = blob_path(l, digest);
    buf = core_malloc(IO_CHUNK);
    if (!path || !buf) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT)
            rc = core_error_set(err, BERTH_ENOTFOUND, "blob \"%s\" not found in %s", digest,
                                l->base.name);
        else
            rc = core_error_errno(err, errno, "opening blob \"%s\" in %s", digest, l->base.name);
        goto out;
    }
    if ((rc = core_sha256_new(&h, err)) < 0)
        goto out;
    while ((n = read(fd, buf, IO_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = core_error_errno(err, errno, "reading blob \"%s\" in %s", digest, l->base.name);
            goto out;
        }
        core_sha256_update(h, buf, (size_t)n);
        total += n;
        if (size >= 0 && total > size)
            break; /* longer than its descriptor: fails the size check below */
        if ((rc = sink(payload, buf, (size_t)n)) < 0)
            goto out; /* the sink set the error */
    }
    core_sha256_final_hex(h, hex);
    if (strcmp(hex, digest + 7) != 0) {
        rc = verify_failed(err, digest, l->base.name, hex);
        goto out;
    }
    if (size >= 0 && total != size) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "blob \"%s\" in %s has %lld bytes, its descriptor says %lld", digest,
                            l->base.name, (long long)total, (long long)size);
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    core_sha256_free(h);
    core_free(buf);
    core_free(path);
    return rc;
}

/* Copy src_path (or data) into blobs/sha256 via a temp file, verifying the digest. */
static int blob_write(layout *l, const char *digest, const char *src_path, const void *data,
                      size_t len, berth_error **err)
{
    core_sha256 *h = NULL;
    unsigned char *buf = NULL;
    char *final = NULL, *tmp = NULL, *bdir = NULL;
    char hex[CORE_SHA256_HEX_LEN + 1];
    int in = -1, fd = -1, rc;
    ssize_t n;

    final = blob_path(l, digest);
    tmp = core_sprintf("%s/blobs/sha256/.tmp-XXXXXX", l->dir);
    bdir = core_sprintf("%s/blobs/sha256", l->dir);
    buf = core_malloc(IO_CHUNK);
    if (!final || !tmp || !bdir || !buf) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_mkdirs(bdir, 0755, err)) < 0)
        goto out;
    if ((rc = core_sha256_new(&h, err)) < 0)
        goto out;
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = core_error_errno(err, errno, "creating a temp file in \"%s\"", bdir);
        tmp[0] = '\0';
        goto out;
    }
    if (src_path) {
        in = open(src_path, O_RDONLY);
        if (in < 0) {
            rc = core_error_errno(err, errno, "opening \"%s\"", src_path);
            goto out;
        }
        while ((n = read(in, buf, IO_CHUNK)) != 0) {
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                rc = core_error_errno(err, errno, "reading \"%s\"", src_path);
                goto out;
            }
            core_sha256_update(h, buf, (size_t)n);
            if (core_fs_write_all(fd, buf, (size_t)n) < 0) {
                rc = core_error_errno(err, errno, "writing \"%s\"", tmp);
                goto out;
            }
        }
    } else {
        core_sha256_update(h, data, len);
        if (core_fs_write_all(fd, data, len) < 0) {
            rc = core_error_errno(err, errno, "writing \"%s\"", tmp);
            goto out;
        }
    }
    core_sha256_final_hex(h, hex);
    if (strcmp(hex, digest + 7) != 0) {
        rc = verify_failed(err, digest, src_path ? src_path : "memory", hex);
        goto out;
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        rc = core_error_errno(err, errno, "syncing \"%s\"", tmp);
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, final) < 0) {
        rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", tmp, final);
        goto out;
    }
    tmp[0] = '\0';
    l->dirty = true;
    rc = core_fs_sync_dir(bdir, err);
out:
    if (in >= 0)
        close(in);
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
    core_sha256_free(h);
    core_free(buf);
    core_free(final);
    core_free(tmp);
    core_free(bdir);
    return rc;
}

static int layout_put_blob(oci_store *s, const char *digest, int64_t size, const char *path,
                           berth_error **err)
{
    layout *l = (layout *)s;
    bool have = false;
    int rc;

    if ((rc = layout_blob_exists(s, digest, size, &have, err)) < 0 || have)
        return rc;
    if ((rc = blob_write(l, digest, path, NULL, 0, err)) < 0)
        return core_error_wrap(err, "writing blob \"%s\" to %s", digest, l->base.name);
    return 0;
}

/* ---------------------------------------------------------------- manifests */

static int read_manifest(berth_oci_blob *out, layout *l, const char *digest,
                         const char *index_media_type, berth_error **err)
{
    berth_buf buf = BERTH_BUF_INIT;
    char *path = NULL;
    char got[72];
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check_digest(l, digest, err)) < 0)
        return rc;
    if (!(path = blob_path(l, digest))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!core_fs_exists(path)) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "manifest \"%s\" not found in %s", digest,
                            l->base.name);
        goto out;
    }
    if ((rc = core_fs_read_file(&buf, path, BERTH_OCI_MANIFEST_MAX, err)) < 0) {
        core_error_wrap(err, "reading manifest \"%s\" in %s", digest, l->base.name);
        goto out;
    }
    core_sha256_digest(got, buf.ptr ? buf.ptr : "", buf.len);
    if (strcmp(got, digest) != 0) {
        rc = verify_failed(err, digest, l->base.name, got + 7);
        goto out;
    }
    out->media_type = sniff_media_type(buf.ptr ? buf.ptr : "", buf.len);
    if (!out->media_type && index_media_type) {
        out->media_type = core_strdup(index_media_type);
        if (!out->media_type) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (!out->media_type) {
        rc = core_error_set(err, BERTH_EINVAL, "manifest \"%s\" in %s is not a json object", digest,
                            l->base.name);
        goto out;
    }
    out->digest = core_strdup(digest);
    if (!out->digest) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    out->len = buf.len;
    out->data = berth_buf_detach(&buf);
    if (!out->data) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
out:
    if (rc < 0)
        berth_oci_blob_dispose(out);
    berth_buf_dispose(&buf);
    core_free(path);
    return rc;
}

static int layout_get_manifest(oci_store *s, const char *digest, berth_oci_blob *out,
                               berth_error **err)
{
    return read_manifest(out, (layout *)s, digest, NULL, err);
}

/* Is a tag the companion of some digest: "sha256-<hex>", optionally ".sig", ".att", ".sbom"? */
static bool is_companion_tag(const char *tag)
{
    size_t n = strlen(tag);
    if (n < 71 || !core_str_has_prefix(tag, "sha256-") || !is_lower_hex(tag + 7, 64))
        return false;
    return n == 71 || strcmp(tag + 71, ".sig") == 0 || strcmp(tag + 71, ".att") == 0 ||
           strcmp(tag + 71, ".sbom") == 0;
}

/* Does the manifest at digest name a subject? Unreadable ones count as "no". */
static bool has_subject(layout *l, const char *digest)
{
    berth_oci_blob b = {0};
    berth_oci_manifest m;
    berth_error *e = NULL;
    bool yes = false;

    memset(&m, 0, sizeof(m));
    if (read_manifest(&b, l, digest, NULL, &e) == 0 &&
        berth_oci_manifest_parse(&m, b.data, b.len, b.media_type, &e) == 0)
        yes = m.subject != NULL;
    berth_error_free(e); /* only a hint to pick the default manifest; reading it reports */
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&b);
    return yes;
}

/* Pick the default root: the only manifest that is neither a companion tag nor a referrer. */
static int default_entry(const oci_layout_entry **out, layout *l, const oci_layout_index *ix,
                         berth_error **err)
{
    const oci_layout_entry **cand = NULL;
    size_t count = 0;
    int rc = 0;

    cand = core_calloc(ix->n + 1, sizeof(*cand));
    if (!cand)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < ix->n; i++) {
        const oci_layout_entry *e = &ix->v[i];
        size_t j;
        if (e->ref_name && is_companion_tag(e->ref_name))
            continue;
        for (j = 0; j < count; j++)
            if (strcmp(cand[j]->digest, e->digest) == 0)
                break;
        if (j < count) {
            if (!cand[j]->ref_name && e->ref_name)
                cand[j] = e; /* the same manifest, named: report its tag */
            continue;
        }
        if (!e->ref_name && is_sha256_digest(e->digest) && has_subject(l, e->digest))
            continue; /* an untagged referrer (a signature) is not a root */
        cand[count++] = e;
    }
    if (count == 1)
        *out = cand[0];
    else if (count == 0)
        rc = core_error_set(err, BERTH_ENOTFOUND, "%s holds no manifest", l->base.name);
    else
        rc = core_error_set(err, BERTH_EINVAL, "%s holds %zu manifests: name one with \":TAG\"",
                            l->base.name, count);
    core_free(cand);
    return rc;
}

static int layout_resolve(oci_store *s, const char *ref, berth_oci_blob *out, berth_error **err)
{
    layout *l = (layout *)s;
    oci_layout_index ix = {NULL, 0};
    const oci_layout_entry *hit = NULL;
    const char *want = ref ? ref : (s->tag ? s->tag : s->digest);
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = index_load(NULL, &ix, l, err)) < 0)
        goto out;
    if (!want) {
        if ((rc = default_entry(&hit, l, &ix, err)) < 0)
            goto out;
        if (hit->ref_name && !s->tag && !(s->tag = core_strdup(hit->ref_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        for (size_t i = 0; i < ix.n; i++)
            if (ix.v[i].ref_name && strcmp(ix.v[i].ref_name, want) == 0)
                hit = &ix.v[i]; /* the last entry of a name wins */
        if (!hit && is_sha256_digest(want)) {
            if (!ref && s->tag && want == s->tag) {
                s->digest = s->tag; /* "DIR:sha256:..." named a digest, not a tag */
                s->tag = NULL;
            }
            rc = read_manifest(out, l, want, NULL, err);
            goto out;
        }
        if (!hit) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "tag \"%s\" not found in %s", want,
                                l->base.name);
            goto out;
        }
    }
    rc = read_manifest(out, l, hit->digest, hit->media_type, err);
out:
    oci_layout_index_dispose(&ix);
    return rc;
}

static int layout_put_manifest(oci_store *s, const char *media_type, const char *digest,
                               const void *data, size_t len, const char *tag, oci_put_mode mode,
                               berth_error **err)
{
    layout *l = (layout *)s;
    json_t *root = NULL, *arr, *d;
    bool have = false;
    size_t i;
    int rc;

    if ((rc = layout_blob_exists(s, digest, (int64_t)len, &have, err)) < 0)
        return rc;
    if (!have && (rc = blob_write(l, digest, NULL, data, len, err)) < 0)
        return core_error_wrap(err, "writing manifest \"%s\" to %s", digest, l->base.name);
    if (mode != OCI_PUT_ROOT)
        return 0;
    if ((rc = index_load(&root, NULL, l, err)) < 0)
        goto out;
    if (!(arr = index_manifests(root))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (i = json_array_size(arr); i-- > 0;) {
        const json_t *e = json_array_get(arr, i);
        const char *rn = entry_ref_name(e);
        const char *dg = json_string_value(json_object_get(e, "digest"));
        if (tag ? (rn && strcmp(rn, tag) == 0) : (!rn && dg && strcmp(dg, digest) == 0))
            json_array_remove(arr, i);
    }
    d = desc_json(media_type, digest, (int64_t)len, NULL, NULL, 0, tag);
    if (!d || json_array_append_new(arr, d) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    rc = index_save(l, root, err);
out:
    json_decref(root);
    return rc;
}

static int layout_list_tags(oci_store *s, char ***tags_out, size_t *n_out, berth_error **err)
{
    layout *l = (layout *)s;
    oci_layout_index ix = {NULL, 0};
    char **v = NULL;
    size_t n = 0;
    int rc;

    *tags_out = NULL;
    *n_out = 0;
    if ((rc = index_load(NULL, &ix, l, err)) < 0)
        return rc;
    v = core_calloc(ix.n + 1, sizeof(*v));
    if (!v) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ix.n; i++) {
        bool dup = false;
        if (!ix.v[i].ref_name)
            continue;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(v[j], ix.v[i].ref_name) == 0;
        if (dup)
            continue;
        if (!(v[n] = core_strdup(ix.v[i].ref_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    *tags_out = v;
    *n_out = n;
    v = NULL;
out:
    if (v)
        berth_strv_free(v, n);
    oci_layout_index_dispose(&ix);
    return rc;
}

/* ---------------------------------------------------------------- referrers */

/* A descriptor for the referrer b (parsed as m), artifactType as the referrers API gives it. */
static int referrer_desc(berth_oci_desc *out, const berth_oci_blob *b, const berth_oci_manifest *m)
{
    const char *at = m->artifact_type;
    memset(out, 0, sizeof(*out));
    if (!at && !m->is_index && m->config.media_type)
        at = m->config.media_type;
    out->media_type = core_strdup(b->media_type);
    out->digest = core_strdup(b->digest);
    out->size = (int64_t)b->len;
    out->artifact_type = at ? core_strdup(at) : NULL;
    if (!out->media_type || !out->digest || (at && !out->artifact_type))
        goto fail;
    if (m->annotations_len > 0) {
        out->annotations = core_calloc(m->annotations_len, sizeof(*out->annotations));
        if (!out->annotations)
            goto fail;
        for (size_t i = 0; i < m->annotations_len; i++) {
            out->annotations[i].key = core_strdup(m->annotations[i].key);
            out->annotations[i].value = core_strdup(m->annotations[i].value);
            out->annotations_len++;
            if (!out->annotations[i].key || !out->annotations[i].value)
                goto fail;
        }
    }
    return 0;
fail:
    berth_oci_desc_dispose(out);
    return BERTH_ENOMEM;
}

/* Read every untagged-or-tagged manifest of index.json once and note its subject. */
static int subj_load(layout *l, berth_error **err)
{
    oci_layout_index ix = {NULL, 0};
    int rc;

    if (l->subj_loaded)
        return 0;
    if ((rc = index_load(NULL, &ix, l, err)) < 0)
        return rc;
    l->subj = core_calloc(ix.n + 1, sizeof(*l->subj));
    if (!l->subj) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ix.n; i++) {
        berth_oci_blob b = {0};
        berth_oci_manifest m;
        berth_error *e = NULL;
        bool dup = false;

        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(ix.v[j].digest, ix.v[i].digest) == 0;
        if (dup || !is_sha256_digest(ix.v[i].digest))
            continue;
        memset(&m, 0, sizeof(m));
        if (read_manifest(&b, l, ix.v[i].digest, ix.v[i].media_type, &e) == 0 &&
            berth_oci_manifest_parse(&m, b.data, b.len, b.media_type, &e) == 0 && m.subject) {
            subject_entry *se = &l->subj[l->subj_len];
            se->subject = core_strdup(m.subject->digest);
            if (!se->subject || referrer_desc(&se->desc, &b, &m) < 0) {
                core_free(se->subject);
                se->subject = NULL;
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            } else {
                l->subj_len++;
            }
        }
        /* Entries that are missing or not manifests are tolerated here (layouts may hold
         * anything); copying one by name reports its error. */
        berth_error_free(e);
        berth_oci_manifest_dispose(&m);
        berth_oci_blob_dispose(&b);
        if (rc < 0)
            goto out;
    }
    l->subj_loaded = true;
out:
    if (rc < 0)
        subj_drop(l);
    oci_layout_index_dispose(&ix);
    return rc;
}

static bool descs_have(const berth_oci_desc *v, size_t n, const char *digest)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].digest, digest) == 0)
            return true;
    return false;
}

static int layout_referrers(oci_store *s, const char *subject, berth_oci_desc **descs_out,
                            size_t *n_out, berth_error **err)
{
    layout *l = (layout *)s;
    berth_oci_blob b = {0};
    berth_oci_manifest m;
    berth_oci_desc *v = NULL, *grown;
    berth_error *e = NULL;
    size_t n = 0, cap;
    char *ftag = NULL;
    int rc;

    memset(&m, 0, sizeof(m));
    *descs_out = NULL;
    *n_out = 0;
    if ((rc = subj_load(l, err)) < 0)
        goto out;
    cap = l->subj_len + 1;
    v = core_calloc(cap, sizeof(*v));
    if (!v) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l->subj_len; i++) {
        if (strcmp(l->subj[i].subject, subject) != 0 || descs_have(v, n, l->subj[i].desc.digest))
            continue;
        if ((rc = berth_oci_desc_copy(&v[n], &l->subj[i].desc, err)) < 0)
            goto out;
        n++;
    }
    /* The referrers fallback tag: an index whose children refer to subject (spec §3.7). */
    if (!(ftag = oci_store_digest_tag(subject))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    rc = layout_resolve(s, ftag, &b, &e);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(e); /* no fallback index: nothing more to add */
        e = NULL;
        rc = 0;
        goto done;
    }
    if (rc < 0) {
        if (err && !*err) {
            *err = e; /* hand the error on */
            e = NULL;
        }
        goto out;
    }
    if ((rc = berth_oci_manifest_parse(&m, b.data, b.len, b.media_type, err)) < 0) {
        core_error_wrap(err, "referrers index \"%s\" in %s", ftag, l->base.name);
        goto out;
    }
    if (m.is_index && m.layers_len > 0) {
        if (!core_size_add(&cap, n, m.layers_len) ||
            !(grown = core_realloc(v, (cap + 1) * sizeof(*v)))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        v = grown;
        for (size_t i = 0; i < m.layers_len; i++) {
            if (descs_have(v, n, m.layers[i].digest))
                continue;
            if ((rc = berth_oci_desc_copy(&v[n], &m.layers[i], err)) < 0)
                goto out;
            n++;
        }
    }
done:
    *descs_out = v;
    *n_out = n;
    v = NULL;
out:
    if (v) {
        for (size_t i = 0; i < n; i++)
            berth_oci_desc_dispose(&v[i]);
        core_free(v);
    }
    berth_error_free(e);
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&b);
    core_free(ftag);
    return rc;
}

static int layout_add_referrer(oci_store *s, const char *subject, const berth_oci_desc *desc,
                               berth_error **err)
{
    layout *l = (layout *)s;
    json_t *root = NULL, *arr, *d;
    const json_t *e;
    size_t i;
    int rc;

    (void)subject; /* the referrer's own manifest names it: index.json needs only the entry */
    if ((rc = index_load(&root, NULL, l, err)) < 0)
        goto out;
    if (!(arr = index_manifests(root))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(arr, i, e)
    {
        const char *dg = json_string_value(json_object_get(e, "digest"));
        if (dg && strcmp(dg, desc->digest) == 0)
            goto out; /* already listed */
    }
    d = desc_json(desc->media_type, desc->digest, desc->size, desc->artifact_type,
                  desc->annotations, desc->annotations_len, NULL);
    if (!d || json_array_append_new(arr, d) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    rc = index_save(l, root, err);
out:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- archives */

/* Extract the tar at file into dir: only regular files and directories, paths checked. */
static int extract_archive(const char *file, const char *dir, berth_error **err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    char *path = NULL, *rel = NULL, *slash;
    unsigned char *buf = NULL;
    int fd = -1, rc = 0, r;

    buf = core_malloc(IO_CHUNK);
    if (!a || !buf) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    /* plain tar only, as skopeo and oras write it: no decompression, so what is extracted is
     * bounded by the size of the file */
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, file, IO_CHUNK) != ARCHIVE_OK) {
        int en = archive_errno(a);
        if (en == ENOENT)
            rc = core_error_set(err, BERTH_ENOTFOUND, "oci archive \"%s\" not found", file);
        else
            rc = core_error_set(err, BERTH_EIO, "opening oci archive \"%s\": %s", file,
                                archive_error_string(a));
        goto out;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        mode_t type = archive_entry_filetype(e);
        size_t len;

        if (!name)
            continue;
        while (core_str_has_prefix(name, "./"))
            name += 2;
        core_free(rel);
        if (!(rel = core_strdup(name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        len = strlen(rel);
        while (len > 0 && rel[len - 1] == '/')
            rel[--len] = '\0';
        if (len == 0 || strcmp(rel, ".") == 0)
            continue;
        if (type != AE_IFDIR && type != AE_IFREG)
            continue; /* links, devices: not part of a layout, never created */
        core_free(path);
        path = NULL;
        if ((rc = core_fs_join(&path, dir, rel, err)) < 0) {
            core_error_wrap(err, "oci archive \"%s\"", file);
            goto out;
        }
        if (type == AE_IFDIR) {
            if ((rc = core_fs_mkdirs(path, 0755, err)) < 0)
                goto out;
            continue;
        }
        if ((slash = strrchr(path, '/')) != NULL) {
            *slash = '\0';
            rc = core_fs_mkdirs(path, 0755, err);
            *slash = '/';
            if (rc < 0)
                goto out;
        }
        /* Nothing in dir is a symlink (none are created), so O_NOFOLLOW is belt and braces. */
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            rc = core_error_errno(err, errno, "extracting \"%s\" from \"%s\"", rel, file);
            goto out;
        }
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, IO_CHUNK);
            if (n == 0)
                break;
            if (n < 0) {
                rc = core_error_set(err, BERTH_EINVAL, "reading \"%s\" in oci archive \"%s\": %s",
                                    rel, file, archive_error_string(a));
                goto out;
            }
            if (core_fs_write_all(fd, buf, (size_t)n) < 0) {
                rc = core_error_errno(err, errno, "extracting \"%s\" from \"%s\"", rel, file);
                goto out;
            }
        }
        close(fd);
        fd = -1;
    }
    if (r != ARCHIVE_EOF) {
        rc = core_error_set(err, BERTH_EINVAL, "reading oci archive \"%s\": %s", file,
                            archive_error_string(a));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (a)
        archive_read_free(a);
    core_free(buf);
    core_free(path);
    core_free(rel);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (skipping dot files), heap array of heap strings. */
static int list_dir(char ***out, size_t *n_out, const char *dir, berth_error **err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL, **grown;
    size_t n = 0, cap = 0;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return core_error_errno(err, errno, "listing \"%s\"", dir);
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(grown = core_realloc(v, cap * sizeof(*v)))) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
            v = grown;
        }
        if (!(v[n] = core_strdup(de->d_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    *n_out = n;
    v = NULL;
out:
    if (v)
        berth_strv_free(v, n);
    closedir(d);
    return rc;
}

/* Append one entry (a directory when path is NULL) to the tar being written. */
static int pack_entry(struct archive *a, const char *name, const char *path, const char *file,
                      unsigned char *buf, berth_error **err)
{
    struct archive_entry *e = archive_entry_new();
    struct stat st;
    int fd = -1, rc = 0;
    ssize_t n;

    if (!e)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (!path) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
    } else {
        fd = open(path, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) < 0) {
            rc = core_error_errno(err, errno, "archiving \"%s\"", path);
            goto out;
        }
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, st.st_size);
    }
    if (archive_write_header(a, e) != ARCHIVE_OK) {
        rc = core_error_set(err, BERTH_EIO, "writing \"%s\" into \"%s\": %s", name, file,
                            archive_error_string(a));
        goto out;
    }
    while (fd >= 0 && (n = read(fd, buf, IO_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = core_error_errno(err, errno, "reading \"%s\"", path);
            goto out;
        }
        if (archive_write_data(a, buf, (size_t)n) != n) {
            rc = core_error_set(err, BERTH_EIO, "writing \"%s\" into \"%s\": %s", name, file,
                                archive_error_string(a));
            goto out;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    archive_entry_free(e);
    return rc;
}

/* Write the layout in dir as a tar to file: temp file beside it, fsync, rename. */
static int pack_archive(const char *dir, const char *file, berth_error **err)
{
    struct archive *a = NULL;
    char **algs = NULL, **blobs = NULL;
    size_t n_algs = 0, n_blobs = 0;
    char *tmp = NULL, *name = NULL, *path = NULL, *sub = NULL, *parent = NULL, *slash;
    unsigned char *buf = NULL;
    int fd = -1, rc;

    tmp = core_sprintf("%s.tmp-XXXXXX", file);
    sub = core_sprintf("%s/blobs", dir);
    buf = core_malloc(IO_CHUNK);
    if (!tmp || !sub || !buf) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = core_error_errno(err, errno, "creating a temp file for \"%s\"", file);
        tmp[0] = '\0';
        goto out;
    }
    if (!(a = archive_write_new())) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    /* pax only where ustar cannot say it (names, blobs over 8 GiB): plain ustar otherwise */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        rc = core_error_set(err, BERTH_EIO, "writing \"%s\": %s", file, archive_error_string(a));
        goto out;
    }
    if ((rc = list_dir(&algs, &n_algs, sub, err)) < 0)
        goto out;
    if ((rc = pack_entry(a, "blobs/", NULL, file, buf, err)) < 0)
        goto out;
    for (size_t i = 0; i < n_algs; i++) {
        char *adir = core_sprintf("%s/%s", sub, algs[i]);
        core_free(name);
        name = core_sprintf("blobs/%s/", algs[i]);
        if (!adir || !name) {
            core_free(adir);
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (!core_fs_is_dir(adir)) {
            core_free(adir);
            continue;
        }
        rc = list_dir(&blobs, &n_blobs, adir, err);
        if (rc == 0)
            rc = pack_entry(a, name, NULL, file, buf, err);
        for (size_t j = 0; rc == 0 && j < n_blobs; j++) {
            core_free(name);
            core_free(path);
            name = core_sprintf("blobs/%s/%s", algs[i], blobs[j]);
            path = core_sprintf("%s/%s", adir, blobs[j]);
            if (!name || !path)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            else
                rc = pack_entry(a, name, path, file, buf, err);
        }
        core_free(adir);
        berth_strv_free(blobs, n_blobs);
        blobs = NULL;
        n_blobs = 0;
        if (rc < 0)
            goto out;
    }
    core_free(path);
    if (!(path = core_sprintf("%s/%s", dir, INDEX_FILE))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = pack_entry(a, INDEX_FILE, path, file, buf, err)) < 0)
        goto out;
    core_free(path);
    if (!(path = core_sprintf("%s/%s", dir, LAYOUT_FILE))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = pack_entry(a, LAYOUT_FILE, path, file, buf, err)) < 0)
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        rc = core_error_set(err, BERTH_EIO, "writing \"%s\": %s", file, archive_error_string(a));
        goto out;
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        rc = core_error_errno(err, errno, "syncing \"%s\"", tmp);
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, file) < 0) {
        rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", tmp, file);
        goto out;
    }
    tmp[0] = '\0';
    if (!(parent = core_strdup(file))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    rc = core_fs_sync_dir(slash ? parent : ".", err);
out:
    if (a)
        archive_write_free(a);
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
    berth_strv_free(algs, n_algs);
    berth_strv_free(blobs, n_blobs);
    core_free(tmp);
    core_free(name);
    core_free(path);
    core_free(sub);
    core_free(parent);
    core_free(buf);
    return rc;
}

/* ---------------------------------------------------------------- open, commit, close */

static int layout_commit(oci_store *s, berth_error **err)
{
    layout *l = (layout *)s;
    int rc;

    if (!l->archive || !l->dirty)
        return 0;
    if ((rc = pack_archive(l->dir, l->archive, err)) < 0)
        return core_error_wrap(err, "writing %s", l->base.name);
    l->dirty = false;
    return 0;
}

static void layout_close(oci_store *s)
{
    layout *l = (layout *)s;
    if (!l)
        return;
    if (l->tmp) {
        berth_error *e = NULL;
        if (core_fs_remove_all(l->tmp, &e) < 0)
            berth_error_free(e); /* a leftover temp dir is harmless; nothing to report to */
    }
    subj_drop(l);
    core_free(l->base.name);
    core_free(l->base.tag);
    core_free(l->base.digest);
    core_free(l->dir);
    core_free(l->archive);
    core_free(l->tmp);
    core_free(l);
}

static const oci_store_ops layout_ops = {
    .resolve = layout_resolve,
    .get_manifest = layout_get_manifest,
    .put_manifest = layout_put_manifest,
    .blob_exists = layout_blob_exists,
    .get_blob = layout_get_blob,
    .put_blob = layout_put_blob,
    .list_tags = layout_list_tags,
    .referrers = layout_referrers,
    .add_referrer = layout_add_referrer,
    .commit = layout_commit,
    .close = layout_close,
};

/* Check (or with create, make) the layout files in l->dir. */
static int layout_prepare(layout *l, bool create, berth_error **err)
{
    berth_buf buf = BERTH_BUF_INIT;
    char *lf = NULL, *ixf = NULL, *bd = NULL;
    json_t *root = NULL;
    int rc = 0;

    lf = core_sprintf("%s/%s", l->dir, LAYOUT_FILE);
    ixf = core_sprintf("%s/%s", l->dir, INDEX_FILE);
    bd = core_sprintf("%s/blobs/sha256", l->dir);
    if (!lf || !ixf || !bd) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!core_fs_exists(lf)) {
        if (!create) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "%s is not an oci layout: no oci-layout file",
                                l->base.name);
            goto out;
        }
        if ((rc = core_fs_mkdirs(bd, 0755, err)) < 0 ||
            (rc = core_fs_write_atomic(lf, LAYOUT_JSON, strlen(LAYOUT_JSON), 0644, err)) < 0)
            goto out;
        l->dirty = true;
    } else {
        if ((rc = core_fs_read_file(&buf, lf, 4096, err)) < 0)
            goto out;
        root = json_loadb(buf.ptr ? buf.ptr : "", buf.len, 0, NULL);
        if (!json_is_string(json_object_get(root, "imageLayoutVersion"))) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "%s: oci-layout file has no \"imageLayoutVersion\"", l->base.name);
            goto out;
        }
        if (create && (rc = core_fs_mkdirs(bd, 0755, err)) < 0)
            goto out;
    }
    if (!core_fs_exists(ixf)) {
        if (!create) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "%s is not an oci layout: no index.json",
                                l->base.name);
            goto out;
        }
        rc = core_fs_write_atomic(ixf, EMPTY_INDEX_JSON, strlen(EMPTY_INDEX_JSON), 0644, err);
        l->dirty = true;
    } else {
        rc = index_load(NULL, NULL, l, err); /* a broken index.json fails the open */
    }
out:
    json_decref(root);
    berth_buf_dispose(&buf);
    core_free(lf);
    core_free(ixf);
    core_free(bd);
    return rc;
}

static int layout_new(layout **out, const char *name, const char *tag, berth_error **err)
{
    layout *l = core_calloc(1, sizeof(*l));
    if (!l)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    l->base.ops = &layout_ops;
    l->base.name = core_strdup(name);
    l->base.tag = tag ? core_strdup(tag) : NULL;
    if (!l->base.name || (tag && !l->base.tag)) {
        layout_close(&l->base);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    *out = l;
    return 0;
}

int oci_layout_open(oci_store **out, const char *dir, const char *tag, bool create,
                    berth_error **err)
{
    layout *l = NULL;
    char *name = NULL;
    int rc;

    BERTH_ARG_CHECK(out && dir);
    *out = NULL;
    if (!(name = core_sprintf("oci-layout:%s", dir))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = layout_new(&l, name, tag, err)) < 0)
        goto out;
    if (!(l->dir = core_strdup(dir))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!create && !core_fs_is_dir(dir)) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "oci layout directory \"%s\" not found", dir);
        goto out;
    }
    if (create && (rc = core_fs_mkdirs(dir, 0755, err)) < 0)
        goto out;
    if ((rc = layout_prepare(l, create, err)) < 0)
        goto out;
    l->dirty = false; /* a plain layout has nothing to re-pack */
    *out = &l->base;
    l = NULL;
out:
    layout_close(l ? &l->base : NULL);
    core_free(name);
    return rc;
}

int oci_archive_open(oci_store **out, const char *file, const char *tag, bool create,
                     berth_error **err)
{
    layout *l = NULL;
    char *name = NULL;
    bool exists;
    int rc;

    BERTH_ARG_CHECK(out && file);
    *out = NULL;
    if (!(name = core_sprintf("oci-archive:%s", file))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = layout_new(&l, name, tag, err)) < 0)
        goto out;
    if (!(l->archive = core_strdup(file))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    exists = core_fs_exists(file);
    if (!exists && !create) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "oci archive \"%s\" not found", file);
        goto out;
    }
    if ((rc = core_fs_mkdtemp(&l->tmp, tmp_parent(), "berth-archive-", err)) < 0)
        goto out;
    if (!(l->dir = core_sprintf("%s/layout", l->tmp))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_mkdirs(l->dir, 0700, err)) < 0)
        goto out;
    if (exists && (rc = extract_archive(file, l->dir, err)) < 0)
        goto out;
    if ((rc = layout_prepare(l, create, err)) < 0)
        goto out;
    if (exists)
        l->dirty = false; /* only our own writes call for re-packing */
    *out = &l->base;
    l = NULL;
out:
    layout_close(l ? &l->base : NULL);
    core_free(name);
    return rc;
}

/* ---------------------------------------------------------------- for copy lists */

bool oci_store_is_companion_tag(const char *tag)
{
    return tag && is_companion_tag(tag);
}

int oci_archive_extract(const char *file, const char *dir, berth_error **err)
{
    BERTH_ARG_CHECK(file && dir);
    return extract_archive(file, dir, err);
}

int oci_archive_pack(const char *dir, const char *file, berth_error **err)
{
    BERTH_ARG_CHECK(dir && file);
    return pack_archive(dir, file, err);
}
