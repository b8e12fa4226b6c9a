/*
 * Flux config artifacts on a registry: push (build, upload, tag), pull (download, verify and
 * extract into a directory) and diff (compare a registry artifact with a local tree by content),
 * plus the staging-directory commit that pull relies on. Wire format: spec §1.1-§1.2, §1.7.
 *
 * Design: push builds the layer into a private temp directory (the digest must be known before
 * the upload starts), writes the config and manifest byte-for-byte as go-containerregistry would
 * (compact JSON, Go key order, Go string escaping) and uploads both blobs in one
 * berth_oci_blobs_push call before PUTting the manifest. Pull never writes into the output
 * directory before every check passed: the layer streams from berth_oci_blob_get (which verifies
 * the digest as it goes) into a berth_extractor working in a staging directory beside out_dir,
 * and only when both the download and the extraction succeeded does
 * berth_artifact_commit_dir move the staged entries in. Diff trusts the config's
 * rootfs.diff_ids[0] when it equals the local diff_id; otherwise it compares the two tar streams
 * entry by entry (path, mode, sha256 of content), since gzip bytes and tar header encodings
 * differ between producers.
 *
 * Durability: the commit fsyncs the output directory after the renames but not the extracted
 * files (one fsync per file would cost more than the whole pull of a 2,000-file tree, and there
 * is no portable syncfs). After a crash the files may be incomplete; the consumer repeats the
 * pull, which is keyed by digest, so nothing unverified is ever trusted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "oci/artifact_internal.h"
#include "oci/ignore.h"

#define CONFIG_MAX (1u << 20) /* style.md 2.5: config ceiling */

/* ---------------------------------------------------------------- commit */
typedef struct moved {
    char *name;
    bool old_in_trash; /* dir/name was moved to trash/name */
    bool new_in_place; /* staging/name was moved to dir/name */
} moved;

static char *path_join2(const char *a, const char *b)
{
    return core_sprintf("%s/%s", a, b);
}

/* Undo the moves of a failed commit, newest first, as far as the file system allows. */
static void rollback(moved *mv, size_t n, const char *staging, const char *dir, const char *trash)
{
    for (size_t i = n; i-- > 0;) {
        char *src = path_join2(staging, mv[i].name), *dst = path_join2(dir, mv[i].name);
        char *old = trash ? path_join2(trash, mv[i].name) : NULL;
        if (src && dst && mv[i].new_in_place)
            (void)rename(dst, src);
        if (old && dst && mv[i].old_in_trash)
            (void)rename(old, dst);
        core_free(src);
        core_free(dst);
        core_free(old);
    }
}

int berth_artifact_commit_dir(const char *staging, const char *dir, berth_error **err)
{
    BERTH_ARG_CHECK(staging && dir);
    moved *mv = NULL;
    size_t n = 0, cap = 0;
    char *trash = NULL, *src = NULL, *dst = NULL, *old = NULL;
    int rc = 0;
    DIR *d = opendir(staging);
    if (!d)
        return core_error_errno(err, errno, "opening staging directory \"%s\"", staging);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = core_error_errno(err, errno, "reading \"%s\"", staging);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            moved *nm = core_realloc(mv, ncap * sizeof(*mv));
            if (!nm) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                break;
            }
            mv = nm;
            cap = ncap;
        }
        mv[n].old_in_trash = mv[n].new_in_place = false;
        if (!(mv[n].name = core_strdup(de->d_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct stat st;
        src = path_join2(staging, mv[i].name);
        dst = path_join2(dir, mv[i].name);
        if (!src || !dst) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        if (lstat(dst, &st) == 0) {
            if (!trash && (rc = core_fs_mkdtemp(&trash, dir, ".berth-trash-", err)) < 0)
                break;
            if (!(old = path_join2(trash, mv[i].name))) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                break;
            }
            if (rename(dst, old) < 0) {
                rc = core_error_errno(err, errno, "moving \"%s\" aside", dst);
                break;
            }
            mv[i].old_in_trash = true;
        } else if (errno != ENOENT) {
            rc = core_error_errno(err, errno, "inspecting \"%s\"", dst);
            break;
        }
        if (rename(src, dst) < 0) {
            rc = core_error_errno(err, errno, "moving \"%s\" to \"%s\"", src, dst);
            break;
        }
        mv[i].new_in_place = true;
        core_free(src);
        core_free(dst);
        core_free(old);
        src = dst = old = NULL;
    }
    if (rc < 0) {
        rollback(mv, n, staging, dir, trash);
        goto out;
    }
    if ((rc = core_fs_sync_dir(dir, err)) < 0)
        goto out;
    /* The new content is in place; leftovers only cost disk space, so failures to remove the
     * old entries or the empty staging directory are not reported. */
    berth_error *ignored = NULL;
    if (trash)
        core_fs_remove_all(trash, &ignored);
    core_fs_remove_all(staging, &ignored);
    berth_error_free(ignored);
out:
    if (rc < 0 && trash)
        (void)rmdir(trash); /* empty again after a rollback */
    for (size_t i = 0; i < n; i++)
        core_free(mv[i].name);
    core_free(mv);
    core_free(src);
    core_free(dst);
    core_free(old);
    core_free(trash);
    return rc;
}

/* ---------------------------------------------------------------- JSON as Go writes it */
/* A JSON string with encoding/json's escaping: <, >, & and U+2028/U+2029 as \u escapes, invalid
 * UTF-8 as U+FFFD. */
static int json_str(berth_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = berth_buf_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (rc == 0 && *p) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                rc = berth_buf_put(b, e, 2);
            } else if (c == '\n') {
                rc = berth_buf_puts(b, "\\n");
            } else if (c == '\r') {
                rc = berth_buf_puts(b, "\\r");
            } else if (c == '\t') {
                rc = berth_buf_puts(b, "\\t");
            } else if (c == '\b') {
                rc = berth_buf_puts(b, "\\b");
            } else if (c == '\f') {
                rc = berth_buf_puts(b, "\\f");
            } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = berth_buf_put(b, e, 6);
            } else {
                rc = berth_buf_put(b, p, 1);
            }
            p++;
            continue;
        }
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t r = need == 2 ? (c & 0x1Fu) : need == 3 ? (c & 0x0Fu) : (c & 0x07u);
        size_t k = 1;
        for (; need && k < need; k++) {
            if ((p[k] & 0xC0) != 0x80)
                break;
            r = (r << 6) | (p[k] & 0x3Fu);
        }
        uint32_t min = need == 2 ? 0x80 : need == 3 ? 0x800 : 0x10000;
        if (!need || k < need || r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) {
            rc = berth_buf_puts(b, "\\ufffd");
            p++;
        } else if (r == 0x2028 || r == 0x2029) {
            rc = berth_buf_puts(b, r == 0x2028 ? "\\u2028" : "\\u2029");
            p += need;
        } else {
            rc = berth_buf_put(b, p, need);
            p += need;
        }
    }
    return rc == 0 ? berth_buf_put(b, "\"", 1) : rc;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const berth_kv *)a)->key, ((const berth_kv *)b)->key);
}

/* Set key to value in a small kv array (keys and values borrowed). */
static void kv_set(berth_kv *kv, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(kv[i].key, key) == 0) {
            kv[i].value = (char *)(uintptr_t)value;
            return;
        }
    }
    kv[*n].key = (char *)(uintptr_t)key;
    kv[*n].value = (char *)(uintptr_t)value;
    (*n)++;
}

static int desc_json(berth_buf *b, const char *media_type, int64_t size, const char *digest)
{
    int rc = berth_buf_puts(b, "{\"mediaType\":");
    if (rc == 0)
        rc = json_str(b, media_type);
    if (rc == 0)
        rc = berth_buf_printf(b, ",\"size\":%lld,\"digest\":", (long long)size);
    if (rc == 0)
        rc = json_str(b, digest);
    return rc == 0 ? berth_buf_puts(b, "}") : rc;
}

/* ---------------------------------------------------------------- push */
static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

void berth_push_result_dispose(berth_push_result *r)
{
    if (!r)
        return;
    core_free(r->repository);
    core_free(r->tag);
    memset(r, 0, sizeof(*r));
}

/* The created timestamp: a user annotation (must be RFC 3339), else reproducible, else
 * opts->created, else now. */
static int pick_created(char out[32], const berth_push_opts *opts, berth_error **err)
{
    const char *user = opts->annotations ? berth_kv_get(opts->annotations, opts->annotations_len,
                                                        BERTH_ANN_CREATED)
                                         : NULL;
    if (user) {
        int64_t t;
        if (core_time_parse_rfc3339(&t, user) < 0)
            return core_error_set(err, BERTH_EINVAL,
                                  "annotation \"%s\" value \"%s\" is not an rfc 3339 time",
                                  BERTH_ANN_CREATED, user);
        core_time_rfc3339(out, t);
        return 0;
    }
    if (opts->reproducible)
        core_time_rfc3339(out, 0);
    else if (opts->created > 0)
        core_time_rfc3339(out, opts->created);
    else
        core_time_rfc3339(out, core_wall_now() / 1000);
    return 0;
}

static int manifest_json(berth_buf *m, const berth_push_opts *opts, const char *created,
                         const char *config_digest, size_t config_len,
                         const berth_artifact_layer *layer)
{
    size_t n = 0, cap = 3 + opts->annotations_len;
    berth_kv *kv = core_calloc(cap, sizeof(*kv));
    if (!kv)
        return BERTH_ENOMEM;
    kv_set(kv, &n, BERTH_ANN_CREATED, created);
    kv_set(kv, &n, BERTH_ANN_SOURCE, opts->source);
    kv_set(kv, &n, BERTH_ANN_REVISION, opts->revision);
    for (size_t i = 0; i < opts->annotations_len; i++)
        if (opts->annotations[i].key && opts->annotations[i].value)
            kv_set(kv, &n, opts->annotations[i].key, opts->annotations[i].value);
    qsort(kv, n, sizeof(*kv), cmp_kv);
    int rc = berth_buf_puts(m, "{\"schemaVersion\":2,\"mediaType\":");
    if (rc == 0)
        rc = json_str(m, BERTH_MT_OCI_MANIFEST);
    if (rc == 0)
        rc = berth_buf_puts(m, ",\"config\":");
    if (rc == 0)
        rc = desc_json(m, BERTH_MT_FLUX_CONFIG, (int64_t)config_len, config_digest);
    if (rc == 0)
        rc = berth_buf_puts(m, ",\"layers\":[");
    if (rc == 0)
        rc = desc_json(m, BERTH_MT_FLUX_CONTENT, layer->size, layer->digest);
    if (rc == 0)
        rc = berth_buf_puts(m, "],\"annotations\":{");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = berth_buf_puts(m, ",");
        if (rc == 0)
            rc = json_str(m, kv[i].key);
        if (rc == 0)
            rc = berth_buf_puts(m, ":");
        if (rc == 0)
            rc = json_str(m, kv[i].value);
    }
    if (rc == 0)
        rc = berth_buf_puts(m, "}}");
    core_free(kv);
    return rc;
}

int berth_artifact_push(berth_push_result *out, berth_oci_client *c, const berth_oci_ref *ref,
                        const char *path, const berth_push_opts *opts, berth_error **err)
{
    BERTH_ARG_CHECK(out && c && ref && ref->registry && ref->repository && path && opts);
    memset(out, 0, sizeof(*out));
    char *tmpdir = NULL, *layer_path = NULL, *config = NULL, *digest = NULL;
    berth_buf m = BERTH_BUF_INIT;
    berth_artifact_layer layer;
    berth_artifact_build_opts bopts = BERTH_ARTIFACT_BUILD_OPTS_INIT;
    berth_oci_upload up[2];
    char created[32], config_digest[72];
    int rc = 0;

    if (!ref->tag || !*ref->tag)
        return core_error_set(err, BERTH_EINVAL, "pushing to \"%s/%s\": a tag is required",
                              ref->registry, ref->repository);
    if (!opts->source || !opts->revision)
        return core_error_set(err, BERTH_EINVAL,
                              "pushing to \"%s/%s\": the source and revision are required",
                              ref->registry, ref->repository);
    if ((rc = pick_created(created, opts, err)) < 0)
        return rc;
    if ((rc = core_fs_mkdtemp(&tmpdir, tmp_root(), "berth-push-", err)) < 0)
        return rc;
    bopts.ignore_paths = opts->ignore_paths;
    if (!(layer_path = path_join2(tmpdir, "layer.tar.gz"))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = oci_artifact_build(&layer, path, layer_path, &bopts, false, err)) < 0) {
        core_error_wrap(err, "building the artifact from \"%s\"", path);
        goto out;
    }
    config = core_sprintf("{\"architecture\":\"\",\"created\":\"%s\",\"history\":[{\"created\":"
                          "\"0001-01-01T00:00:00Z\"}],\"os\":\"\",\"rootfs\":{\"type\":\"layers\","
                          "\"diff_ids\":[\"%s\"]},\"config\":{}}",
                          created, layer.diff_id);
    if (!config) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    core_sha256_digest(config_digest, config, strlen(config));
    if (manifest_json(&m, opts, created, config_digest, strlen(config), &layer) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    memset(up, 0, sizeof(up));
    up[0].digest = config_digest;
    up[0].size = (int64_t)strlen(config);
    up[0].data = config;
    up[1].digest = layer.digest;
    up[1].size = layer.size;
    up[1].path = layer_path;
    if ((rc = berth_oci_blobs_push(c, ref, up, 2, NULL, err)) < 0) {
        core_error_wrap(err, "pushing to \"%s/%s\"", ref->registry, ref->repository);
        goto out;
    }
    if ((rc = berth_oci_manifest_put(&digest, c, ref, BERTH_MT_OCI_MANIFEST, m.ptr, m.len, err)) <
        0) {
        core_error_wrap(err, "tagging \"%s/%s:%s\"", ref->registry, ref->repository, ref->tag);
        goto out;
    }
    if (digest)
        snprintf(out->digest, sizeof(out->digest), "%s", digest);
    else
        core_sha256_digest(out->digest, m.ptr, m.len);
    out->repository = core_sprintf("%s/%s", ref->registry, ref->repository);
    out->tag = core_strdup(ref->tag);
    out->layer = layer;
    if (!out->repository || !out->tag) {
        berth_push_result_dispose(out);
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
out:
    if (tmpdir) {
        berth_error *ignored = NULL; /* a leftover temp directory is not worth a failure */
        core_fs_remove_all(tmpdir, &ignored);
        berth_error_free(ignored);
    }
    berth_buf_dispose(&m);
    core_free(digest);
    core_free(config);
    core_free(layer_path);
    core_free(tmpdir);
    return rc;
}

/* ---------------------------------------------------------------- pull */
void berth_pull_result_dispose(berth_pull_result *r)
{
    if (!r)
        return;
    core_free(r->source);
    core_free(r->revision);
    core_free(r->layer_media_type);
    memset(r, 0, sizeof(*r));
}

/* Where the staging directory goes: dir/.. (the real parent, even when dir is a symlink), or dir
 * itself when dir is a mount point, so that rename never crosses file systems. */
static int staging_parent(char **out, const char *dir, berth_error **err)
{
    struct stat sd, sp;
    char *up = core_sprintf("%s/..", dir);
    if (!up)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (stat(dir, &sd) < 0) {
        core_free(up);
        return core_error_errno(err, errno, "inspecting \"%s\"", dir);
    }
    if (stat(up, &sp) < 0 || sp.st_dev != sd.st_dev || access(up, W_OK) < 0) {
        core_free(up);
        up = core_strdup(dir);
        if (!up)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    *out = up;
    return 0;
}

/* Fetch and parse the manifest of ref, refusing indexes. blob_out gets the raw manifest. */
static int fetch_manifest(berth_oci_blob *blob_out, berth_oci_manifest *m, berth_oci_client *c,
                          const berth_oci_ref *ref, const char *shown, berth_error **err)
{
    int rc = berth_oci_manifest_get(blob_out, c, ref, err);
    if (rc < 0)
        return rc;
    if ((rc = berth_oci_manifest_parse(m, blob_out->data, blob_out->len, blob_out->media_type,
                                       err)) < 0)
        return core_error_wrap(err, "parsing the manifest of \"%s\"", shown);
    if (m->is_index)
        return core_error_set(err, BERTH_EINVAL, "\"%s\" is an index, not an artifact manifest",
                              shown);
    return 0;
}

static const berth_oci_desc *pick_layer(const berth_oci_manifest *m, const char *media_type)
{
    for (size_t i = 0; i < m->layers_len; i++)
        if (!media_type ||
            (m->layers[i].media_type && strcmp(m->layers[i].media_type, media_type) == 0))
            return &m->layers[i];
    return NULL;
}

typedef struct pull_sink {
    berth_extractor *x;
    int xrc; /* the extractor refused a write: it failed first */
} pull_sink;

/* What a pull reports: the manifest digest, Flux's source and revision annotations, the layer. */
static int pull_result_fill(berth_pull_result *out, const char *digest, const berth_oci_manifest *m,
                            const berth_oci_desc *layer, berth_error **err)
{
    const char *src = berth_kv_get(m->annotations, m->annotations_len, BERTH_ANN_SOURCE);
    const char *rev = berth_kv_get(m->annotations, m->annotations_len, BERTH_ANN_REVISION);

    snprintf(out->digest, sizeof(out->digest), "%s", digest ? digest : "");
    out->source = src ? core_strdup(src) : NULL;
    out->revision = rev ? core_strdup(rev) : NULL;
    out->layer_media_type = layer->media_type ? core_strdup(layer->media_type) : NULL;
    out->layer_size = layer->size;
    if ((src && !out->source) || (rev && !out->revision) ||
        (layer->media_type && !out->layer_media_type)) {
        berth_pull_result_dispose(out);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

static int pull_write(void *payload, const void *data, size_t len)
{
    pull_sink *s = payload;
    int rc = berth_extractor_write(s->x, data, len);
    if (rc < 0)
        s->xrc = rc;
    return rc;
}

int berth_artifact_pull(berth_pull_result *out, berth_oci_client *c, const berth_oci_ref *ref,
                        const char *out_dir, const char *layer_media_type,
                        const berth_extract_opts *xopts, berth_error **err)
{
    BERTH_ARG_CHECK(out && c && ref && out_dir);
    memset(out, 0, sizeof(*out));
    berth_oci_blob blob = {0};
    berth_oci_manifest m = {0};
    char *shown = berth_oci_ref_string(ref), *parent = NULL, *staging = NULL;
    pull_sink sink = {NULL, 0};
    berth_error *gerr = NULL, *xerr = NULL;
    const berth_oci_desc *layer;
    int rc = 0, grc, xrc = 0;

    if (!shown)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (!core_fs_is_dir(out_dir)) {
        rc =
            core_error_set(err, BERTH_ENOTFOUND, "output directory \"%s\" does not exist", out_dir);
        goto out;
    }
    if ((rc = fetch_manifest(&blob, &m, c, ref, shown, err)) < 0)
        goto out;
    layer = pick_layer(&m, layer_media_type);
    if (!layer && layer_media_type) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "\"%s\" has no layer of media type \"%s\"", shown,
                            layer_media_type);
        goto out;
    }
    if (!layer) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "\"%s\" has no layers", shown);
        goto out;
    }
    if ((rc = staging_parent(&parent, out_dir, err)) < 0 ||
        (rc = core_fs_mkdtemp(&staging, parent, ".berth-pull-", err)) < 0 ||
        (rc = oci_extractor_new(&sink.x, staging, xopts, false, err)) < 0)
        goto out;
    grc = berth_oci_blob_get(c, ref, layer->digest, layer->size, pull_write, &sink, &gerr);
    if (grc == 0 || sink.xrc < 0)
        xrc = berth_extractor_finish(sink.x, NULL, &xerr);
    if (sink.xrc < 0 || (grc == 0 && xrc < 0)) {
        /* Extraction failed; a download error after that only says the sink stopped. */
        rc = xrc < 0 ? xrc : sink.xrc;
        if (err && !*err) {
            *err = xerr;
            xerr = NULL;
        }
        core_error_wrap(err, "extracting layer %s of \"%s\"", layer->digest, shown);
        goto out;
    }
    if (grc < 0) {
        rc = grc;
        if (err && !*err) {
            *err = gerr;
            gerr = NULL;
        }
        core_error_wrap(err, "downloading layer %s of \"%s\"", layer->digest, shown);
        goto out;
    }
    if ((rc = berth_artifact_commit_dir(staging, out_dir, err)) < 0)
        goto out;
    core_free(staging);
    staging = NULL;
    rc = pull_result_fill(out, blob.digest, &m, layer, err);
out:
    berth_extractor_free(sink.x);
    if (staging) {
        berth_error *ignored = NULL; /* the failure being reported matters more */
        core_fs_remove_all(staging, &ignored);
        berth_error_free(ignored);
    }
    berth_error_free(gerr);
    berth_error_free(xerr);
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    core_free(staging);
    core_free(parent);
    core_free(shown);
    return rc;
}

/* ---------------------------------------------------------------- diff */
typedef struct file_sink {
    int fd;
    const char *path;
    int errnum;
} file_sink;

static int file_write(void *payload, const void *data, size_t len)
{
    file_sink *f = payload;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            f->errnum = errno;
            return BERTH_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* rootfs.diff_ids[0] of a config, or NULL (heap). */
static char *config_diff_id(const berth_buf *cfg)
{
    json_error_t jerr;
    json_t *root = json_loadb(cfg->ptr, cfg->len, 0, &jerr);
    const char *v = NULL;
    if (root) {
        json_t *ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
        v = json_string_value(json_array_get(ids, 0));
    }
    char *out = v ? core_strdup(v) : NULL;
    json_decref(root);
    return out;
}

/* True when some item of the sorted list lies under dir ("dir/..."). */
static bool has_children(const oci_tar_item *v, size_t n, const char *dir)
{
    size_t dl = strlen(dir), lo = 0, hi = n;
    while (lo < hi) { /* first item > dir */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v[mid].path, dir) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n; i++) {
        int c = strncmp(v[i].path, dir, dl);
        if (c != 0)
            return false;
        if (v[i].path[dl] == '/')
            return true;
        if ((unsigned char)v[i].path[dl] > '/')
            return false;
    }
    return false;
}

static bool comparable(const oci_tar_item *it)
{
    return it->type == 'f' || it->type == 'd'; /* links and specials never reach the disk */
}

/* Compare two sorted listings into report lines; *differs_out set. */
static int compare_lists(bool *differs_out, berth_buf *rep, const oci_tar_item *l, size_t ln,
                         const oci_tar_item *r, size_t rn)
{
    size_t i = 0, j = 0;
    int rc = 0;
    *differs_out = false;
    while (rc == 0 && (i < ln || j < rn)) {
        int c = i >= ln ? 1 : j >= rn ? -1 : strcmp(l[i].path, r[j].path);
        const oci_tar_item *a = c <= 0 ? &l[i] : NULL, *b = c >= 0 ? &r[j] : NULL;
        i += c <= 0;
        j += c >= 0;
        if (a && !comparable(a))
            a = NULL;
        if (b && !comparable(b))
            b = NULL;
        if (!a && !b)
            continue;
        char mark = 0;
        if (a && !b) {
            /* A directory implied by the other side's files is not a difference. */
            if (!(a->type == 'd' && has_children(r, rn, a->path)))
                mark = '+';
        } else if (b && !a) {
            if (!(b->type == 'd' && has_children(l, ln, b->path)))
                mark = '-';
        } else if (a->type != b->type || a->mode != b->mode ||
                   (a->type == 'f' && strcmp(a->sha256, b->sha256) != 0)) {
            mark = '~';
        }
        if (mark) {
            *differs_out = true;
            rc = berth_buf_printf(rep, "%c %s\n", mark, a ? a->path : b->path);
        }
    }
    return rc;
}

int berth_artifact_diff(bool *differs_out, char **report_out, berth_oci_client *c,
                        const berth_oci_ref *ref, const char *path, const char *ignore_paths,
                        berth_error **err)
{
    BERTH_ARG_CHECK(differs_out && c && ref && path);
    *differs_out = false;
    if (report_out)
        *report_out = NULL;
    char *shown = berth_oci_ref_string(ref), *tmpdir = NULL, *local = NULL, *remote = NULL;
    char *remote_diff_id = NULL;
    berth_oci_blob blob = {0};
    berth_oci_manifest m = {0};
    berth_buf cfg = BERTH_BUF_INIT, rep = BERTH_BUF_INIT;
    oci_tar_item *li = NULL, *ri = NULL;
    size_t ln = 0, rn = 0;
    file_sink fs = {-1, NULL, 0};
    berth_artifact_layer layer;
    berth_artifact_build_opts bopts = BERTH_ARTIFACT_BUILD_OPTS_INIT;
    const berth_oci_desc *rl;
    bool differs = false;
    int rc = 0;

    if (!shown)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = core_fs_mkdtemp(&tmpdir, tmp_root(), "berth-diff-", err)) < 0)
        goto out;
    if (!(local = path_join2(tmpdir, "local.tar.gz")) ||
        !(remote = path_join2(tmpdir, "remote.tar.gz"))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    bopts.ignore_paths = ignore_paths;
    if ((rc = oci_artifact_build(&layer, path, local, &bopts, false, err)) < 0) {
        core_error_wrap(err, "building the artifact from \"%s\"", path);
        goto out;
    }
    if ((rc = fetch_manifest(&blob, &m, c, ref, shown, err)) < 0)
        goto out;
    rl = pick_layer(&m, NULL);
    if (!rl) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "\"%s\" has no layers", shown);
        goto out;
    }
    if (rl->digest && strcmp(rl->digest, layer.digest) == 0)
        goto same; /* identical bytes */
    if (m.config.digest && m.config.size > 0 && m.config.size <= (int64_t)CONFIG_MAX) {
        if ((rc = berth_oci_blob_get_mem(&cfg, c, ref, m.config.digest, CONFIG_MAX, err)) < 0) {
            core_error_wrap(err, "fetching the config of \"%s\"", shown);
            goto out;
        }
        remote_diff_id = config_diff_id(&cfg);
        if (remote_diff_id && strcmp(remote_diff_id, layer.diff_id) == 0)
            goto same;
    }
    /* Different encodings of the same content are equal: compare entry by entry. */
    fs.path = remote;
    fs.fd = open(remote, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fs.fd < 0) {
        rc = core_error_errno(err, errno, "creating \"%s\"", remote);
        goto out;
    }
    rc = berth_oci_blob_get(c, ref, rl->digest, rl->size, file_write, &fs, err);
    if (rc < 0) {
        if (fs.errnum)
            core_error_errno(err, fs.errnum, "writing \"%s\"", remote);
        core_error_wrap(err, "downloading layer %s of \"%s\"", rl->digest, shown);
        goto out;
    }
    if ((rc = oci_tar_list_file(&li, &ln, local, err)) < 0)
        goto out;
    if ((rc = oci_tar_list_file(&ri, &rn, remote, err)) < 0) {
        core_error_wrap(err, "reading layer %s of \"%s\"", rl->digest, shown);
        goto out;
    }
    if (compare_lists(&differs, &rep, li, ln, ri, rn) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
same:
    *differs_out = differs;
    if (report_out) {
        if (!(*report_out = berth_buf_detach(&rep)))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
out:
    if (fs.fd >= 0)
        close(fs.fd);
    if (tmpdir) {
        berth_error *ignored = NULL; /* a leftover temp directory is not worth a failure */
        core_fs_remove_all(tmpdir, &ignored);
        berth_error_free(ignored);
    }
    oci_tar_items_free(li, ln);
    oci_tar_items_free(ri, rn);
    berth_buf_dispose(&cfg);
    berth_buf_dispose(&rep);
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    core_free(remote_diff_id);
    core_free(remote);
    core_free(local);
    core_free(tmpdir);
    core_free(shown);
    return rc;
}

/* ---------------------------------------------------------------- copy and ignore (engine) */
int berth_artifact_pull_blob(berth_pull_result *out, berth_oci_client *c, const berth_oci_ref *ref,
                             const char *out_file, const char *layer_media_type, berth_error **err)
{
    berth_oci_blob blob = {0};
    berth_oci_manifest m = {0};
    char *shown = NULL;
    file_sink fs = {.fd = -1, .path = out_file, .errnum = 0};
    const berth_oci_desc *layer;
    bool created = false;
    int rc;

    BERTH_ARG_CHECK(out && c && ref && out_file);
    memset(out, 0, sizeof(*out));
    if (!(shown = berth_oci_ref_string(ref)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = fetch_manifest(&blob, &m, c, ref, shown, err)) < 0)
        goto out;
    if (!(layer = pick_layer(&m, layer_media_type))) {
        rc = layer_media_type
                 ? core_error_set(err, BERTH_ENOTFOUND, "\"%s\" has no layer of media type \"%s\"",
                                  shown, layer_media_type)
                 : core_error_set(err, BERTH_ENOTFOUND, "\"%s\" has no layers", shown);
        goto out;
    }
    if ((fs.fd = open(out_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        rc = core_error_errno(err, errno, "creating \"%s\"", out_file);
        goto out;
    }
    created = true;
    /* berth_oci_blob_get checks size and digest as the bytes stream */
    if ((rc = berth_oci_blob_get(c, ref, layer->digest, layer->size, file_write, &fs, err)) < 0) {
        if (fs.errnum)
            core_error_errno(err, fs.errnum, "writing \"%s\"", out_file);
        core_error_wrap(err, "downloading layer %s of \"%s\"", layer->digest, shown);
        goto out;
    }
    if (fsync(fs.fd) < 0 || close(fs.fd) < 0) {
        fs.fd = -1;
        rc = core_error_errno(err, errno, "writing \"%s\"", out_file);
        goto out;
    }
    fs.fd = -1;
    rc = pull_result_fill(out, blob.digest, &m, layer, err);
out:
    if (fs.fd >= 0)
        close(fs.fd);
    if (rc < 0 && created)
        (void)unlink(out_file); /* no partial file, unverified bytes included */
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    core_free(shown);
    return rc;
}

/* Remove what ig excludes below dir/rel (rel "" for the root); rel is a scratch buffer. */
static int prune_ignored(const oci_ignore *ig, bool negation, const char *dir, berth_buf *rel,
                         berth_error **err)
{
    char *path = rel->len ? core_sprintf("%s/%s", dir, rel->ptr) : core_strdup(dir);
    DIR *d = path ? opendir(path) : NULL;
    struct dirent *de;
    int rc = 0;

    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (!d) {
        rc = core_error_errno(err, errno, "reading directory \"%s\"", path);
        core_free(path);
        return rc;
    }
    while (rc == 0 && (de = readdir(d))) {
        size_t mark = rel->len;
        struct stat sb;
        char *child;
        bool is_dir, excluded;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((mark && berth_buf_puts(rel, "/") < 0) || berth_buf_puts(rel, de->d_name) < 0 ||
            !(child = core_sprintf("%s/%s", dir, rel->ptr))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        if (lstat(child, &sb) < 0) {
            rc = core_error_errno(err, errno, "inspecting \"%s\"", child);
        } else {
            is_dir = S_ISDIR(sb.st_mode);
            excluded = oci_ignore_match(ig, rel->ptr, is_dir);
            if (is_dir && (!excluded || negation)) {
                /* a '!' pattern may bring back something below an excluded directory */
                rc = prune_ignored(ig, negation, dir, rel, err);
                if (rc == 0 && excluded)
                    (void)rmdir(child); /* kept only when something below came back */
            } else if (excluded) {
                rc = core_fs_remove_all(child, err);
            }
        }
        core_free(child);
        rel->len = mark;
        if (rel->ptr)
            rel->ptr[mark] = '\0';
    }
    closedir(d);
    core_free(path);
    return rc;
}

int berth_artifact_apply_ignore(const char *dir, const char *patterns, berth_error **err)
{
    berth_buf rel = BERTH_BUF_INIT;
    oci_ignore *ig = NULL;
    const char **lines = NULL;
    char *copy = NULL;
    size_t n = 0, cap = 1;
    int rc;

    BERTH_ARG_CHECK(dir && patterns);
    for (const char *s = patterns; *s; s++)
        cap += *s == '\n';
    if (!(copy = core_strdup(patterns)) || !(lines = core_calloc(cap, sizeof(*lines)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (char *s = copy, *nl;; s = nl + 1) {
        size_t len;
        if ((nl = strchr(s, '\n')))
            *nl = '\0';
        len = strlen(s);
        if (len > 0 && s[len - 1] == '\r')
            s[len - 1] = '\0';
        lines[n++] = s;
        if (!nl)
            break;
    }
    if ((rc = oci_ignore_new_list(&ig, lines, n, err)) < 0)
        goto out;
    rc = prune_ignored(ig, oci_ignore_has_negation(ig), dir, &rel, err);
out:
    oci_ignore_free(ig);
    berth_buf_dispose(&rel);
    core_free(lines);
    core_free(copy);
    return rc;
}
