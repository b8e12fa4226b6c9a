/*
 * images/reconcile.c: Flux's image-reflector and image-automation controllers on berth's OCI
 * client and state directory (see images/reconcile.h for the three kinds).
 *
 * Design:
 *  - ImageRepository: the tags are streamed page by page (berth_oci_tags_each) through the
 *    exclusion list into a temp file beside STATE/images/<ns>/<name>/tags, one tag per line,
 *    while a sha256 of the kept lines is computed. Memory holds one page and the ten highest
 *    tags (lastScanResult.latestTags), never the whole list. The hash is
 *    lastScanResult.revision: when it equals the stored one and the file exists, the temp file
 *    is dropped and consumers are not woken, so a rescan that finds nothing new costs the tags
 *    requests and nothing else (no manifest is fetched by a scan).
 *  - ImagePolicy: the tags file is read line by line into img_policy_eval, which keeps only the
 *    current best. Digest reflection HEADs the chosen tag (IfNotPresent: once per tag; Always:
 *    every reconcile). status.latestRef / observedPreviousRef as Flux v1 names them.
 *  - ImageUpdateAutomation: the source OCIRepository's stored tree is copied into a private
 *    work directory, the Setters rewrite runs under spec.update.path, and when a file changed
 *    and (source revision, policies) differ from the last publication, the whole tree is pushed
 *    as a Flux artifact to spec.publish.url and signed with the cosign key of the Secret in
 *    spec.publish.signingKey (loaded before the push, so a bad key publishes nothing). The
 *    source is never modified; the work directory is removed at the end.
 * Everything runs on the engine's loop thread.
 */
#include "images/reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/artifact.h>
#include <berth/oci.h>
#include <berth/sign.h>
#include <berth/signatures.h>

#include "core/core.h"
#include "images/policy.h"
#include "images/setters.h"

#define LATEST_TAGS 10            /* lastScanResult.latestTags, as Flux keeps */
#define TREE_FILE_MAX (64u << 20) /* one file copied into the work directory */
#define TREE_DEPTH_MAX 64

/* A failure: the reason and a heap message. */
typedef struct fail {
    const char *reason;
    char *message;
    bool stalled;
} fail;

static void fail_set(fail *f, const char *reason, berth_error *e, const char *prefix)
{
    char *t = e ? berth_error_text(e) : NULL;
    f->reason = reason;
    core_free(f->message);
    f->message = core_sprintf("%s%s", prefix ? prefix : "", t ? t : "");
    free(t);
}

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* Read the old status and start the new one; *suspended_out when suspended (status written). */
static int status_begin(json_t **old_out, json_t **st_out, bool *suspended_out, eng_ctx *ctx,
                        const char *kind, const eng_meta *m, bool spec_suspend, berth_error **err)
{
    int rc;

    *st_out = NULL;
    *suspended_out = false;
    eng_reconcile_mark(kind, m->ns, m->name, false); /* controller mode: requestedAt handling */
    if ((rc = eng_state_status_read(old_out, ctx->state, kind, m->ns, m->name, err)) < 0)
        return rc;
    if (!(*st_out = *old_out ? json_deep_copy(*old_out) : eng_status_new()))
        return oom(err);
    json_object_del(*st_out, "suspended");
    if (!spec_suspend && !eng_suspend_override(ctx->state, kind, m->ns, m->name))
        return 0;
    *suspended_out = true;
    if (json_object_set_new(*st_out, "suspended", json_true()) < 0)
        return oom(err);
    eng_log("info", "suspended", kind, m->ns, m->name, "reconciliation is suspended");
    return eng_status_commit(ctx, kind, m->ns, m->name, *old_out, *st_out, err);
}

/* Conditions from f (failure: f->reason set) or ok_msg (success), then write the status. */
static int status_end(eng_ctx *ctx, const char *kind, const eng_meta *m, const json_t *old,
                      json_t *st, const fail *f, const char *ok_msg, bool *ready_out,
                      berth_error **err)
{
    int rc = 0;

    eng_status_remove_condition(st, "Reconciling");
    if (f->reason) {
        const char *fm = f->message ? f->message : f->reason; /* NULL only after an OOM */
        eng_log("error", f->reason, kind, m->ns, m->name, "%s", fm);
        if (f->stalled)
            rc = eng_cond(st, "Stalled", "True", f->reason, fm, ctx->now_ms, err);
        else
            eng_status_remove_condition(st, "Stalled");
        if (rc == 0)
            rc = eng_cond(st, "Ready", "False", f->reason, fm, ctx->now_ms, err);
        if (rc == 0 && (!old || eng_status_is_ready(old)))
            eng_emit(ctx, "error", kind, m->ns, m->name, f->reason, fm);
    } else {
        eng_status_remove_condition(st, "Stalled");
        rc = eng_cond(st, "Ready", "True", "Succeeded", ok_msg, ctx->now_ms, err);
        *ready_out = rc == 0;
    }
    if (rc == 0)
        rc = eng_status_commit(ctx, kind, m->ns, m->name, old, st, err);
    return rc;
}

static int set_str(json_t *o, const char *key, const char *v, berth_error **err)
{
    if (json_object_set_new(o, key, json_string(v ? v : "")) < 0)
        return oom(err);
    return 0;
}

static void now_rfc3339(char out[32], const eng_ctx *ctx)
{
    core_time_rfc3339(out, ctx->now_ms / 1000);
}

/* STATE/images/<ns>/<name>/tags (heap). */
static char *tags_path(const eng_ctx *ctx, const char *ns, const char *name)
{
    return core_sprintf("%s/images/%s/%s/tags", eng_state_path(ctx->state), ns, name);
}

/* ---------------------------------------------------------------- ImageRepository */

typedef struct scan {
    core_fs_atomic out;
    core_sha256 *hash;
    const img_exclusion *excl;
    berth_buf page;
    size_t count;
    char *top[LATEST_TAGS]; /* the highest tags in byte order, highest first */
    size_t ntop;
} scan;

static int top_insert(scan *s, const char *tag)
{
    size_t at = s->ntop;
    char *copy;

    while (at > 0 && strcmp(tag, s->top[at - 1]) > 0)
        at--;
    if (at >= LATEST_TAGS)
        return 0;
    if (!(copy = core_strdup(tag)))
        return BERTH_ENOMEM;
    if (s->ntop == LATEST_TAGS)
        core_free(s->top[--s->ntop]);
    memmove(&s->top[at + 1], &s->top[at], (s->ntop - at) * sizeof(*s->top));
    s->top[at] = copy;
    s->ntop++;
    return 0;
}

static int scan_page(void *payload, const char *const *tags, size_t n, berth_error **err)
{
    scan *s = payload;
    int rc;

    berth_buf_clear(&s->page);
    for (size_t i = 0; i < n; i++) {
        bool excluded = false;
        if (strchr(tags[i], '\n'))
            continue; /* not a tag (the grammar has no newline); the file is line-based */
        if ((rc = img_exclusion_match(&excluded, s->excl, tags[i], err)) < 0)
            return rc;
        if (excluded)
            continue;
        if (berth_buf_puts(&s->page, tags[i]) < 0 || berth_buf_put(&s->page, "\n", 1) < 0 ||
            top_insert(s, tags[i]) < 0)
            return oom(err);
        s->count++;
    }
    if (s->page.len == 0)
        return 0;
    if (core_sha256_update(s->hash, s->page.ptr, s->page.len) < 0)
        return core_error_set(err, BERTH_ERROR, "hashing the tag list failed");
    return core_fs_atomic_write(&s->out, s->page.ptr, s->page.len, err);
}

static int exclusion_of(img_exclusion **out, const eng_imagerepo *repo, berth_error **err)
{
    const char **pats = NULL;
    size_t n = repo->exclusion_list ? json_array_size(repo->exclusion_list) : 0;
    int rc;

    if (!repo->exclusion_list)
        return img_exclusion_new(out, NULL, 0, err);
    if (!(pats = core_calloc(n + 1, sizeof(*pats))))
        return oom(err);
    for (size_t i = 0; i < n; i++)
        pats[i] = json_string_value(json_array_get(repo->exclusion_list, i));
    rc = img_exclusion_new(out, pats, n, err);
    core_free(pats);
    return rc;
}

/* The client for an ImageRepository (its Secrets, insecure, provider, timeout). Without Secrets
 * it is the worker's cached client (*borrowed_out true: not to be freed). */
static int repo_client(berth_oci_client **out, char **tmpdir_out, bool *borrowed_out, eng_ctx *ctx,
                       const eng_imagerepo *repo, berth_error **err)
{
    *tmpdir_out = NULL;
    *borrowed_out = false;
    if (repo->provider && strcmp(repo->provider, "generic") != 0)
        return core_error_set(err, BERTH_EUNSUPPORTED, "provider \"%s\" is not supported yet",
                              repo->provider);
    return eng_registry_client_new(out, tmpdir_out, borrowed_out, ctx, repo->meta.ns,
                                   repo->secret_ref, repo->cert_secret_ref, repo->insecure,
                                   repo->timeout_ms, err);
}

static int latest_tags_json(json_t **out, const scan *s)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < s->ntop; i++)
        if (json_array_append_new(a, json_string(s->top[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    *out = a;
    return a ? 0 : BERTH_ENOMEM;
}

int img_repo_reconcile(eng_ctx *ctx, const eng_imagerepo *repo, bool *ready_out, berth_error **err)
{
    const eng_meta *m = &repo->meta;
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    img_exclusion *excl = NULL;
    berth_error *e = NULL;
    json_t *old = NULL, *st = NULL, *lsr = NULL, *latest = NULL;
    char *tmpdir = NULL, *path = NULL, *dir = NULL, *msg = NULL, *canon = NULL;
    bool borrowed = false;
    char hex[CORE_SHA256_HEX_LEN + 1], revision[80], ts[32];
    const char *stored;
    fail f = {.reason = NULL};
    scan s;
    bool suspended, open = false;
    int rc;

    memset(&s, 0, sizeof(s));
    berth_buf_init(&s.page, 0);
    *ready_out = false;
    if ((rc = status_begin(&old, &st, &suspended, ctx, IMG_KIND_REPO, m, repo->suspend, err)) < 0 ||
        suspended) {
        *ready_out = rc == 0;
        goto out;
    }
    if (berth_oci_ref_parse(&ref, repo->image, &e) < 0) {
        fail_set(&f, "ImageURLInvalid", e, "invalid image: ");
        f.stalled = true;
        goto status;
    }
    if (ref.tag || ref.digest) {
        f.reason = "ImageURLInvalid";
        f.message = core_sprintf("image \"%s\" must not carry a tag or digest", repo->image);
        f.stalled = true;
        goto status;
    }
    if (exclusion_of(&excl, repo, &e) < 0) {
        fail_set(&f, "InvalidExclusionList", e, NULL);
        f.stalled = true;
        goto status;
    }
    if (repo_client(&client, &tmpdir, &borrowed, ctx, repo, &e) < 0) {
        fail_set(&f, "AuthenticationFailed", e, "failed to configure the registry client: ");
        goto status;
    }
    if (!(path = tags_path(ctx, m->ns, m->name)) ||
        !(dir = core_strndup(path, (size_t)(strrchr(path, '/') - path)))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = core_fs_mkdirs(dir, 0700, err)) < 0 ||
        (rc = core_fs_atomic_open(&s.out, path, 0600, err)) < 0 ||
        (rc = core_sha256_new(&s.hash, err)) < 0)
        goto out;
    open = true;
    s.excl = excl;
    if ((rc = berth_oci_tags_each(client, &ref, 0, scan_page, &s, &e)) < 0) {
        if (rc == BERTH_ENOMEM || rc == BERTH_EIO) /* our side, not the registry's */
            goto out_e;
        fail_set(&f,
                 rc == BERTH_EAUTH || rc == BERTH_EDENIED ? "AuthenticationFailed"
                                                          : "ReadOperationFailed",
                 e, "scan failed: ");
        rc = 0;
        goto status;
    }
    if (core_sha256_final_hex(s.hash, hex) < 0) {
        rc = core_error_set(err, BERTH_ERROR, "hashing the tag list failed");
        goto out;
    }
    snprintf(revision, sizeof(revision), "sha256:%s", hex);
    stored = eng_status_str(st, "lastScanResult", "revision");
    if (stored && strcmp(stored, revision) == 0 && core_fs_exists(path)) {
        core_fs_atomic_abort(&s.out); /* the same list: keep the file, wake nobody */
        open = false;
        eng_log("debug", "up-to-date", IMG_KIND_REPO, m->ns, m->name, "no new tags (%zu)", s.count);
    } else {
        open = false;
        if ((rc = core_fs_atomic_commit(&s.out, err)) < 0)
            goto out;
        ctx->changed = true;
        msg = core_sprintf("found %zu tags (revision %s)", s.count, revision);
        eng_log("info", "scanned", IMG_KIND_REPO, m->ns, m->name, "%s", msg ? msg : "new tags");
        if (!stored)
            eng_emit(ctx, "info", IMG_KIND_REPO, m->ns, m->name, "Succeeded",
                     msg ? msg : "new tags");
        core_free(msg);
        msg = NULL;
    }
    now_rfc3339(ts, ctx);
    if (!(lsr = json_object()) || latest_tags_json(&latest, &s) < 0 ||
        json_object_set_new(lsr, "revision", json_string(revision)) < 0 ||
        json_object_set_new(lsr, "tagCount", json_integer((json_int_t)s.count)) < 0 ||
        json_object_set_new(lsr, "scanTime", json_string(ts)) < 0 ||
        json_object_set(lsr, "latestTags", latest) < 0 ||
        json_object_set(st, "lastScanResult", lsr) < 0) {
        rc = oom(err);
        goto out;
    }
    canon = berth_oci_ref_string(&ref);
    if (!canon || set_str(st, "canonicalImageName", canon, err) < 0) {
        rc = oom(err);
        goto out;
    }
    json_object_del(st, "observedExclusionList"); /* absent: the defaults */
    if (repo->exclusion_list &&
        json_object_set(st, "observedExclusionList", repo->exclusion_list) < 0) {
        rc = oom(err);
        goto out;
    }

status:
    rc = 0;
    msg = f.reason ? NULL : core_sprintf("successful scan: found %zu tags", s.count);
    if (!f.reason && !msg) {
        rc = oom(err);
        goto out;
    }
    rc = status_end(ctx, IMG_KIND_REPO, m, old, st, &f, msg, ready_out, err);
    goto out;
out_e:
    if (err && !*err) {
        *err = e;
        e = NULL;
    }
out:
    if (open)
        core_fs_atomic_abort(&s.out);
    core_sha256_free(s.hash);
    berth_buf_dispose(&s.page);
    for (size_t i = 0; i < s.ntop; i++)
        core_free(s.top[i]);
    berth_error_free(e);
    core_free(f.message);
    eng_registry_tmp_remove(tmpdir);
    if (!borrowed)
        berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    img_exclusion_free(excl);
    core_free(path);
    core_free(dir);
    core_free(msg);
    free(canon);
    json_decref(lsr);
    json_decref(latest);
    json_decref(old);
    json_decref(st);
    return rc;
}

/* ---------------------------------------------------------------- ImagePolicy */

void img_policy_spec_of(struct img_policy_spec *out, const eng_imagepolicy *pol)
{
    const char *order = pol->has_alpha ? pol->alpha_order : pol->num_order;

    memset(out, 0, sizeof(*out));
    out->kind = pol->has_alpha ? IMG_POLICY_ALPHABETICAL
                : pol->has_num ? IMG_POLICY_NUMERICAL
                               : IMG_POLICY_SEMVER;
    out->semver_range = pol->semver_range;
    out->order = order && strcmp(order, "desc") == 0 ? IMG_ORDER_DESC : IMG_ORDER_ASC;
    out->filter_pattern = pol->filter_pattern;
    out->filter_extract = pol->filter_extract;
}

/* Evaluate the policy over the stored tags file, line by line. */
static int evaluate(img_policy_pick *pick, size_t *matched_out, const char *path,
                    const img_policy *p, berth_error **err)
{
    img_policy_eval *ev = NULL;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;

    if (!f)
        return core_error_errno(err, errno, "opening tag list \"%s\"", path);
    if ((rc = img_policy_eval_new(&ev, p, err)) < 0)
        goto out;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if ((rc = img_policy_eval_add(ev, line, err)) < 0)
            goto out;
    }
    if (ferror(f)) {
        rc = core_error_errno(err, errno, "reading tag list \"%s\"", path);
        goto out;
    }
    *matched_out = img_policy_eval_matched(ev);
    rc = img_policy_eval_result(pick, ev, err);
out:
    free(line);
    img_policy_eval_free(ev);
    fclose(f);
    return rc;
}

/* Resolve image:tag to its manifest digest with the repository's client. */
static int reflect_digest(char **digest_out, eng_ctx *ctx, const eng_imagerepo *repo,
                          const char *tag, berth_error **err)
{
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    char *tmpdir = NULL;
    bool borrowed = false;
    int rc;

    if ((rc = berth_oci_ref_parse(&ref, repo->image, err)) < 0)
        goto out;
    if (berth_oci_ref_set(&ref, tag, NULL) < 0) {
        rc = oom(err);
        goto out;
    }
    if ((rc = repo_client(&client, &tmpdir, &borrowed, ctx, repo, err)) < 0)
        goto out;
    rc = berth_oci_manifest_head(digest_out, NULL, client, &ref, err);
out:
    eng_registry_tmp_remove(tmpdir);
    if (!borrowed)
        berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    return rc;
}

static const char *ref_field(const json_t *st, const char *ref, const char *key)
{
    return eng_status_str(st, ref, key);
}

int img_policy_reconcile(eng_ctx *ctx, const eng_imagepolicy *pol, bool *ready_out,
                         berth_error **err)
{
    const eng_meta *m = &pol->meta;
    const eng_imagerepo *repo;
    img_policy_spec spec;
    img_policy *compiled = NULL;
    img_policy_pick pick = {.tag = NULL};
    berth_error *e = NULL;
    json_t *old = NULL, *st = NULL, *rst = NULL, *latest = NULL;
    char *path = NULL, *msg = NULL, *digest = NULL;
    const char *old_tag, *old_digest;
    fail f = {.reason = NULL};
    size_t matched = 0;
    bool suspended, changed;
    int rc;

    *ready_out = false;
    if ((rc = status_begin(&old, &st, &suspended, ctx, IMG_KIND_POLICY, m, false, err)) < 0 ||
        suspended) {
        *ready_out = rc == 0;
        goto out;
    }
    repo = eng_config_find_imagerepo(ctx->cfg, pol->repo_ref.ns, pol->repo_ref.name);
    if (strcmp(pol->repo_ref.ns, m->ns) != 0) {
        f.reason = "AccessDenied";
        f.message = core_sprintf("ImageRepository '%s/%s' is in another namespace: "
                                 "cross-namespace references need accessFrom, which berth does "
                                 "not support",
                                 pol->repo_ref.ns, pol->repo_ref.name);
        f.stalled = true;
        goto status;
    }
    if (!repo) {
        f.reason = "DependencyNotReady";
        f.message = core_sprintf("referenced ImageRepository '%s/%s' not found", pol->repo_ref.ns,
                                 pol->repo_ref.name);
        goto status;
    }
    if ((rc = eng_state_status_read(&rst, ctx->state, IMG_KIND_REPO, repo->meta.ns, repo->meta.name,
                                    err)) < 0)
        goto out;
    if (!(path = tags_path(ctx, repo->meta.ns, repo->meta.name))) {
        rc = oom(err);
        goto out;
    }
    if (!eng_status_str(rst, "lastScanResult", "revision") || !core_fs_exists(path)) {
        f.reason = "DependencyNotReady";
        f.message = core_sprintf("referenced ImageRepository '%s/%s' has not been scanned yet",
                                 repo->meta.ns, repo->meta.name);
        goto status;
    }
    img_policy_spec_of(&spec, pol);
    if (img_policy_compile(&compiled, &spec, &e) < 0) {
        fail_set(&f, "InvalidPolicy", e, NULL);
        f.stalled = true;
        goto status;
    }
    if ((rc = evaluate(&pick, &matched, path, compiled, &e)) < 0) {
        if (rc == BERTH_ENOMEM)
            goto out_e;
        fail_set(&f, "ReconciliationFailed", e, "cannot determine latest tag for policy: ");
        rc = 0;
        goto status;
    }
    old_tag = ref_field(st, "latestRef", "tag");
    old_digest = ref_field(st, "latestRef", "digest");
    if (pol->digest_reflection == ENG_DIGEST_ALWAYS ||
        (pol->digest_reflection == ENG_DIGEST_IF_NOT_PRESENT &&
         (!old_tag || strcmp(old_tag, pick.tag) != 0 || !old_digest || !old_digest[0]))) {
        if (reflect_digest(&digest, ctx, repo, pick.tag, &e) < 0) {
            fail_set(&f, "ReconciliationFailed", e,
                     "cannot reflect the digest of the latest tag: ");
            goto status;
        }
    } else if (pol->digest_reflection == ENG_DIGEST_IF_NOT_PRESENT && old_digest &&
               !(digest = core_strdup(old_digest))) {
        rc = oom(err);
        goto out;
    }
    changed = !old_tag || strcmp(old_tag, pick.tag) != 0 ||
              strcmp(old_digest ? old_digest : "", digest ? digest : "") != 0;
    if (!(latest = json_object()) || set_str(latest, "name", repo->image, err) < 0 ||
        set_str(latest, "tag", pick.tag, err) < 0 ||
        (digest && set_str(latest, "digest", digest, err) < 0)) {
        rc = oom(err);
        goto out;
    }
    if (changed && old_tag) {
        json_t *prev = json_object_get(st, "latestRef");
        if (json_object_set(st, "observedPreviousRef", prev) < 0) {
            rc = oom(err);
            goto out;
        }
    }
    if (json_object_set(st, "latestRef", latest) < 0) {
        rc = oom(err);
        goto out;
    }
    if (changed) {
        ctx->changed = true;
        msg = old_tag
                  ? core_sprintf("Latest image tag for %s updated from %s to %s", repo->image,
                                 old_tag, pick.tag)
                  : core_sprintf("Latest image tag for %s resolved to %s", repo->image, pick.tag);
        eng_log("info", "latest", IMG_KIND_POLICY, m->ns, m->name, "%s", msg ? msg : pick.tag);
        eng_emit(ctx, "info", IMG_KIND_POLICY, m->ns, m->name, "Succeeded", msg ? msg : pick.tag);
        core_free(msg);
        msg = NULL;
    }
status:
    rc = 0;
    if (!f.reason && !(msg = core_sprintf("Latest image tag for %s resolved to %s",
                                          repo ? repo->image : "", pick.tag ? pick.tag : ""))) {
        rc = oom(err);
        goto out;
    }
    rc = status_end(ctx, IMG_KIND_POLICY, m, old, st, &f, msg, ready_out, err);
    goto out;
out_e:
    if (err && !*err) {
        *err = e;
        e = NULL;
    }
out:
    berth_error_free(e);
    core_free(f.message);
    img_policy_free(compiled);
    img_policy_pick_dispose(&pick);
    core_free(path);
    core_free(msg);
    core_free(digest);
    json_decref(latest);
    json_decref(rst);
    json_decref(old);
    json_decref(st);
    return rc;
}

/* ---------------------------------------------------------------- ImageUpdateAutomation */

/* Copy the tree at src into dst (which exists): directories, regular files, symlinks. */
static int copy_tree(const char *src, const char *dst, int depth, berth_error **err)
{
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (depth > TREE_DEPTH_MAX)
        return core_error_set(err, BERTH_EINVAL, "directory \"%s\" is nested too deeply", src);
    if (!(d = opendir(src)))
        return core_error_errno(err, errno, "reading directory \"%s\"", src);
    while (rc == 0 && (de = readdir(d))) {
        char *s = NULL, *t = NULL;
        struct stat sb;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        s = core_sprintf("%s/%s", src, de->d_name);
        t = core_sprintf("%s/%s", dst, de->d_name);
        if (!s || !t) {
            rc = oom(err);
        } else if (lstat(s, &sb) < 0) {
            rc = core_error_errno(err, errno, "reading \"%s\"", s);
        } else if (S_ISDIR(sb.st_mode)) {
            if (mkdir(t, 0700) < 0)
                rc = core_error_errno(err, errno, "creating \"%s\"", t);
            else
                rc = copy_tree(s, t, depth + 1, err);
        } else if (S_ISREG(sb.st_mode)) {
            berth_buf b = BERTH_BUF_INIT;
            if ((rc = core_fs_read_file(&b, s, TREE_FILE_MAX, err)) == 0)
                rc = core_fs_write_atomic(t, b.ptr ? b.ptr : "", b.len, sb.st_mode & 0777, err);
            berth_buf_dispose(&b);
        } else if (S_ISLNK(sb.st_mode)) {
            char target[4096];
            ssize_t n = readlink(s, target, sizeof(target) - 1);
            if (n < 0) {
                rc = core_error_errno(err, errno, "reading link \"%s\"", s);
            } else {
                target[n] = '\0';
                if (symlink(target, t) < 0)
                    rc = core_error_errno(err, errno, "creating link \"%s\"", t);
            }
        } /* other types are not in an extracted artifact */
        core_free(s);
        core_free(t);
    }
    closedir(d);
    return rc;
}

/* Does pol match the automation's policySelector (matchLabels)? */
static bool selected(const eng_imageupdate *upd, const eng_imagepolicy *pol)
{
    const char *k;
    json_t *v;

    if (strcmp(pol->meta.ns, upd->meta.ns) != 0)
        return false;
    json_object_foreach(upd->policy_selector, k, v)
    {
        const char *have = json_string_value(json_object_get(pol->meta.labels, k));
        if (!have || strcmp(have, json_string_value(v)) != 0)
            return false;
    }
    return true;
}

/* The policies in the automation's scope with a latestRef: results point into *statuses. */
typedef struct policy_set {
    img_policy_result *res;
    json_t **statuses;
    size_t n;
    json_t *observed; /* {"<name>": {name, tag, digest?}} as Flux's observedPolicies */
} policy_set;

static void policy_set_dispose(policy_set *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        json_decref(ps->statuses[i]);
    core_free(ps->statuses);
    core_free(ps->res);
    json_decref(ps->observed);
    memset(ps, 0, sizeof(*ps));
}

static int policy_set_load(policy_set *ps, eng_ctx *ctx, const eng_imageupdate *upd,
                           berth_error **err)
{
    const eng_config *cfg = ctx->cfg;
    int rc;

    memset(ps, 0, sizeof(*ps));
    if (!(ps->res = core_calloc(cfg->imagepolicies_len + 1, sizeof(*ps->res))) ||
        !(ps->statuses = core_calloc(cfg->imagepolicies_len + 1, sizeof(*ps->statuses))) ||
        !(ps->observed = json_object()))
        return oom(err);
    for (size_t i = 0; i < cfg->imagepolicies_len; i++) {
        const eng_imagepolicy *p = &cfg->imagepolicies[i];
        json_t *pst = NULL, *lr;
        if (!selected(upd, p))
            continue;
        if ((rc = eng_state_status_read(&pst, ctx->state, IMG_KIND_POLICY, p->meta.ns, p->meta.name,
                                        err)) < 0)
            return rc;
        lr = pst ? json_object_get(pst, "latestRef") : NULL;
        if (!eng_status_is_ready(pst) || !json_string_value(json_object_get(lr, "tag"))) {
            json_decref(pst);
            continue; /* not ready: its markers are left alone, as Flux does */
        }
        ps->statuses[ps->n] = pst;
        ps->res[ps->n] = (img_policy_result){
            .ns = p->meta.ns,
            .name = p->meta.name,
            .image = json_string_value(json_object_get(lr, "name")),
            .tag = json_string_value(json_object_get(lr, "tag")),
            .digest = json_string_value(json_object_get(lr, "digest")),
        };
        if (json_object_set(ps->observed, p->meta.name, lr) < 0)
            return oom(err);
        ps->n++;
    }
    return 0;
}

/* The signing key of spec.publish.signingKey: a cosign key Secret (cosign.key, cosign.password). */
static int load_key(berth_sign_privkey **out, eng_ctx *ctx, const eng_imageupdate *upd,
                    berth_error **err)
{
    const eng_secret *s = eng_config_find_secret(ctx->cfg, upd->meta.ns, upd->publish_key_ref);
    const eng_kv *key, *pw;
    char name[300];

    if (!s)
        return core_error_set(err, BERTH_ENOTFOUND, "secret \"%s/%s\" not found", upd->meta.ns,
                              upd->publish_key_ref);
    if (!(key = eng_kv_find(s->data, s->data_len, "cosign.key")))
        return core_error_set(err, BERTH_EINVAL, "secret \"%s/%s\" has no \"cosign.key\" key",
                              upd->meta.ns, upd->publish_key_ref);
    pw = eng_kv_find(s->data, s->data_len, "cosign.password");
    snprintf(name, sizeof(name), "secret %s/%s cosign.key", upd->meta.ns, upd->publish_key_ref);
    return berth_sign_privkey_load_pem(out, name, key->value, key->len, pw ? pw->value : "", err);
}

/* The policies whose markers changed something, "ns/name=tag" joined with ", " (heap). */
static char *changed_policies(const img_setter_files *files, const policy_set *ps)
{
    berth_buf b = BERTH_BUF_INIT;
    bool *seen = core_calloc(ps->n + 1, sizeof(bool));

    if (!seen)
        return NULL;
    for (size_t i = 0; i < files->n; i++) {
        const img_setter_report *r = &files->files[i].report;
        for (size_t c = 0; c < r->n_changes; c++) {
            size_t p = r->changes[c].policy;
            if (p >= ps->n || seen[p])
                continue;
            seen[p] = true;
            if (berth_buf_printf(&b, "%s%s/%s=%s", b.len ? ", " : "", ps->res[p].ns,
                                 ps->res[p].name, ps->res[p].tag) < 0) {
                berth_buf_dispose(&b);
                core_free(seen);
                return NULL;
            }
        }
    }
    core_free(seen);
    if (berth_buf_puts(&b, "") < 0) {
        berth_buf_dispose(&b);
        return NULL;
    }
    return berth_buf_detach(&b);
}

/* Push work as an artifact to spec.publish.url and sign it. */
static int publish(char digest_out[72], eng_ctx *ctx, const eng_imageupdate *upd, const char *work,
                   const char *src_url, const char *src_rev, char *policies, berth_error **err)
{
    berth_push_opts opts = BERTH_PUSH_OPTS_INIT;
    berth_push_result res = {.repository = NULL};
    berth_signatures_sign_result sres = {.location = NULL};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_sign_privkey *key = NULL;
    char key_desc[] = "org.opencontainers.image.description";
    char key_policies[] = "io.berth.image.policies"; /* "ns/policy=tag, ..." */
    berth_kv ann[2];
    char *tmpdir = NULL, *desc = NULL;
    bool borrowed = false;
    int rc;

    if ((rc = load_key(&key, ctx, upd, err)) < 0) /* before the push: nothing unsigned */
        goto out;
    if ((rc = berth_oci_ref_parse(&ref, upd->publish_url, err)) < 0)
        goto out;
    if ((rc = eng_registry_client_new(&client, &tmpdir, &borrowed, ctx, upd->meta.ns,
                                      upd->publish_secret_ref, NULL, upd->publish_insecure, 0,
                                      err)) < 0)
        goto out;
    if (!(desc = core_sprintf("berth image update automation %s/%s: %s", upd->meta.ns,
                              upd->meta.name, policies))) {
        rc = oom(err);
        goto out;
    }
    ann[0] = (berth_kv){.key = key_desc, .value = desc};
    ann[1] = (berth_kv){.key = key_policies, .value = policies};
    opts.source = upd->publish_source ? upd->publish_source : src_url;
    opts.revision = src_rev;
    opts.annotations = ann;
    opts.annotations_len = 2;
    if ((rc = berth_artifact_push(&res, client, &ref, work, &opts, err)) < 0)
        goto out;
    snprintf(digest_out, 72, "%s", res.digest);
    if (berth_oci_ref_set(&ref, NULL, res.digest) < 0) {
        rc = oom(err);
        goto out;
    }
    if ((rc = berth_signatures_sign(&sres, client, &ref, key, NULL, err)) < 0)
        core_error_wrap(err, "signing %s@%s", upd->publish_url, res.digest);
out:
    berth_signatures_sign_result_dispose(&sres);
    berth_push_result_dispose(&res);
    berth_oci_ref_dispose(&ref);
    if (!borrowed)
        berth_oci_client_free(client);
    eng_registry_tmp_remove(tmpdir);
    berth_sign_privkey_free(key);
    core_free(desc);
    return rc;
}

/*
 * "sha256:<hex>" of what the update produced: the source revision, then the path and bytes of
 * every rewritten file under dir. Equal digests mean an equal artifact to publish, whatever
 * policies changed elsewhere.
 */
static int update_digest(char out[72], const char *src_rev, const img_setter_files *files,
                         const char *dir, berth_error **err)
{
    core_sha256 *h = NULL;
    char hex[CORE_SHA256_HEX_LEN + 1];
    int rc;

    if ((rc = core_sha256_new(&h, err)) < 0)
        return rc;
    rc = core_sha256_update(h, src_rev, strlen(src_rev) + 1);
    for (size_t i = 0; rc == 0 && i < files->n; i++) {
        berth_buf b = BERTH_BUF_INIT;
        char *p;
        if (!files->files[i].changed)
            continue;
        if (!(p = core_sprintf("%s/%s", dir, files->files[i].path))) {
            rc = oom(err);
            break;
        }
        if ((rc = core_fs_read_file(&b, p, IMG_SETTERS_MAX_FILE, err)) == 0 &&
            (core_sha256_update(h, files->files[i].path, strlen(files->files[i].path) + 1) < 0 ||
             core_sha256_update(h, b.ptr ? b.ptr : "", b.len) < 0))
            rc = core_error_set(err, BERTH_ERROR, "hashing \"%s\" failed", p);
        berth_buf_dispose(&b);
        core_free(p);
    }
    if (rc == 0 && core_sha256_final_hex(h, hex) < 0)
        rc = core_error_set(err, BERTH_ERROR, "hashing the update failed");
    if (rc == 0)
        snprintf(out, 72, "sha256:%s", hex);
    core_sha256_free(h);
    return rc;
}

/* spec.update.path without "./" and trailing '/'; "" for the root (heap). */
static char *clean_update_path(const char *p)
{
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    if (strcmp(p, ".") == 0)
        p = "";
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    return core_strndup(p, n);
}

int img_update_reconcile(eng_ctx *ctx, const eng_imageupdate *upd, bool *ready_out,
                         berth_error **err)
{
    const eng_meta *m = &upd->meta;
    const eng_ocirepo *src;
    berth_error *e = NULL;
    json_t *old = NULL, *st = NULL, *sst = NULL;
    img_setter_files files = {.files = NULL};
    policy_set ps = {.res = NULL};
    char *workparent = NULL, *work = NULL, *root = NULL, *rel = NULL, *sub = NULL, *msg = NULL;
    char *changed = NULL, digest[72] = "", ts[32], rev[400];
    const char *src_rev, *apath, *pub_digest, *pub_rev;
    char result[72];
    fail f = {.reason = NULL};
    bool suspended, any = false;
    int rc;

    *ready_out = false;
    if ((rc = status_begin(&old, &st, &suspended, ctx, IMG_KIND_UPDATE, m, upd->suspend, err)) <
            0 ||
        suspended) {
        *ready_out = rc == 0;
        goto out;
    }
    /* 1. the source's stored tree */
    src = eng_config_find_ocirepo(ctx->cfg, upd->source_ref.ns, upd->source_ref.name);
    if (!src) {
        f.reason = "SourceNotFound";
        f.message = core_sprintf("source OCIRepository '%s/%s' not found", upd->source_ref.ns,
                                 upd->source_ref.name);
        goto status;
    }
    if ((rc = eng_state_status_read(&sst, ctx->state, ENG_KIND_OCIREPO, src->meta.ns,
                                    src->meta.name, err)) < 0)
        goto out;
    src_rev = eng_status_str(sst, "artifact", "revision");
    apath = eng_status_str(sst, "artifact", "path");
    if (!src_rev || !apath ||
        !(root = core_sprintf("%s/artifacts/%s", eng_state_path(ctx->state), apath)) ||
        !core_fs_is_dir(root)) {
        if (src_rev && apath && !root) {
            rc = oom(err);
            goto out;
        }
        f.reason = "SourceNotReady";
        f.message = core_sprintf("source OCIRepository '%s/%s' has no stored artifact",
                                 src->meta.ns, src->meta.name);
        goto status;
    }
    /* 2. the policies */
    if ((rc = policy_set_load(&ps, ctx, upd, err)) < 0)
        goto out;
    /* 3. a private copy, rewritten */
    if (!(workparent = core_sprintf("%s/images/automation/%s/%s", eng_state_path(ctx->state), m->ns,
                                    m->name)) ||
        !(rel = clean_update_path(upd->update_path))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = core_fs_mkdirs(workparent, 0700, err)) < 0 ||
        (rc = core_fs_remove_all(workparent, err)) < 0 || /* leftovers of a crash */
        (rc = core_fs_mkdirs(workparent, 0700, err)) < 0 ||
        (rc = core_fs_mkdtemp(&work, workparent, ".work-", err)) < 0)
        goto out;
    if (copy_tree(root, work, 0, &e) < 0) {
        fail_set(&f, "UpdateFailed", e, "copying the source tree: ");
        goto status;
    }
    if (rel[0] && core_fs_join(&sub, work, rel, &e) < 0) {
        fail_set(&f, "InvalidPath", e, "spec.update.path: ");
        f.stalled = true;
        goto status;
    }
    if (!core_fs_is_dir(sub ? sub : work)) {
        f.reason = "InvalidPath";
        f.message = core_sprintf("spec.update.path \"%s\" is not a directory of revision %s",
                                 upd->update_path, src_rev);
        goto status;
    }
    if (img_setters_apply_dir(&files, sub ? sub : work, ps.res, ps.n, &e) < 0) {
        fail_set(&f, "UpdateFailed", e, "applying setters: ");
        goto status;
    }
    for (size_t i = 0; i < files.n; i++) {
        any = any || files.files[i].changed;
        for (size_t k = 0; k < files.files[i].report.n_notes; k++)
            eng_log("info", "setter-note", IMG_KIND_UPDATE, m->ns, m->name, "%s:%zu: %s",
                    files.files[i].path, files.files[i].report.notes[k].line,
                    files.files[i].report.notes[k].message);
    }
    now_rfc3339(ts, ctx);
    if (set_str(st, "lastAutomationRunTime", ts, err) < 0) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    if (!any) {
        msg = core_sprintf("no updates made: the markers of revision %s are current", src_rev);
        goto status;
    }
    /* 4. publish, unless this exact result was published already */
    if ((rc = update_digest(result, src_rev, &files, sub ? sub : work, err)) < 0)
        goto out;
    pub_digest = eng_status_str(st, "lastPublishedUpdateDigest", NULL);
    pub_rev = eng_status_str(st, "lastPublishedRevision", NULL);
    if (pub_rev && pub_digest && strcmp(pub_digest, result) == 0) {
        if (set_str(st, "observedSourceRevision", src_rev, err) < 0 ||
            json_object_set(st, "observedPolicies", ps.observed) < 0) {
            rc = oom(err);
            goto out;
        }
        msg = core_sprintf("published revision '%s' is current", pub_rev);
        goto status;
    }
    if (!(changed = changed_policies(&files, &ps))) {
        rc = oom(err);
        goto out;
    }
    if (publish(digest, ctx, upd, work, src->url, src_rev, changed, &e) < 0) {
        fail_set(&f, "PublishFailed", e, "publishing the update: ");
        goto status;
    }
    snprintf(rev, sizeof(rev), "%s@%s", strrchr(upd->publish_url, ':') + 1, digest);
    if (set_str(st, "lastPublishedRevision", rev, err) < 0 ||
        set_str(st, "lastPublishedPolicies", changed, err) < 0 ||
        set_str(st, "lastPushTime", ts, err) < 0 ||
        set_str(st, "observedSourceRevision", src_rev, err) < 0 ||
        set_str(st, "lastPublishedUpdateDigest", result, err) < 0 ||
        json_object_set(st, "observedPolicies", ps.observed) < 0) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    ctx->changed = true;
    msg = core_sprintf("published and signed revision '%s' to %s (%s)", rev, upd->publish_url,
                       changed);
    eng_log("info", "published", IMG_KIND_UPDATE, m->ns, m->name, "%s", msg ? msg : rev);
    eng_emit(ctx, "info", IMG_KIND_UPDATE, m->ns, m->name, "Succeeded", msg ? msg : rev);
status:
    rc = 0;
    if (!f.reason && !msg) {
        rc = oom(err);
        goto out;
    }
    rc = status_end(ctx, IMG_KIND_UPDATE, m, old, st, &f, msg, ready_out, err);
out:
    if (workparent) {
        berth_error *re = NULL;
        (void)core_fs_remove_all(workparent, &re);
        berth_error_free(re); /* a leftover is removed by the next run */
    }
    img_setter_files_dispose(&files);
    policy_set_dispose(&ps);
    berth_error_free(e);
    core_free(f.message);
    core_free(workparent);
    core_free(work);
    core_free(root);
    core_free(rel);
    core_free(sub);
    core_free(msg);
    free(changed);
    json_decref(sst);
    json_decref(old);
    json_decref(st);
    return rc;
}

/* ---------------------------------------------------------------- scheduling helpers */

const eng_meta *img_meta(const char *kind, const void *obj)
{
    if (strcmp(kind, IMG_KIND_REPO) == 0)
        return &((const eng_imagerepo *)obj)->meta;
    if (strcmp(kind, IMG_KIND_POLICY) == 0)
        return &((const eng_imagepolicy *)obj)->meta;
    if (strcmp(kind, IMG_KIND_UPDATE) == 0)
        return &((const eng_imageupdate *)obj)->meta;
    return NULL;
}

int img_reconcile(eng_ctx *ctx, const char *kind, const void *obj, bool *ready_out,
                  int64_t *interval_out, berth_error **err)
{
    if (strcmp(kind, IMG_KIND_REPO) == 0) {
        *interval_out = ((const eng_imagerepo *)obj)->interval_ms;
        return img_repo_reconcile(ctx, obj, ready_out, err);
    }
    if (strcmp(kind, IMG_KIND_POLICY) == 0) {
        const eng_imagepolicy *p = obj;
        const eng_imagerepo *r =
            eng_config_find_imagerepo(ctx->cfg, p->repo_ref.ns, p->repo_ref.name);
        *interval_out = p->interval_ms > 0 ? p->interval_ms : r ? r->interval_ms : 60000;
        return img_policy_reconcile(ctx, p, ready_out, err);
    }
    if (strcmp(kind, IMG_KIND_UPDATE) == 0) {
        *interval_out = ((const eng_imageupdate *)obj)->interval_ms;
        return img_update_reconcile(ctx, obj, ready_out, err);
    }
    return core_error_set(err, BERTH_EINVAL, "kind \"%s\" is not an image kind", kind);
}

/* "oci://host/repo:tag" and "oci://host/repo" name the same repository? */
static bool same_repository(const char *publish_url, const char *url)
{
    const char *slash = strrchr(publish_url, '/'), *colon = slash ? strchr(slash, ':') : NULL;
    size_t n = colon ? (size_t)(colon - publish_url) : strlen(publish_url);

    return strlen(url) == n && strncmp(publish_url, url, n) == 0;
}

bool img_consumes(const char *kind, const void *obj, const char *pkind, const void *pobj)
{
    if (strcmp(kind, IMG_KIND_POLICY) == 0 && strcmp(pkind, IMG_KIND_REPO) == 0) {
        const eng_imagepolicy *p = obj;
        const eng_meta *r = &((const eng_imagerepo *)pobj)->meta;
        return strcmp(p->repo_ref.ns, r->ns) == 0 && strcmp(p->repo_ref.name, r->name) == 0;
    }
    if (strcmp(kind, IMG_KIND_UPDATE) == 0 && strcmp(pkind, IMG_KIND_POLICY) == 0)
        return selected(obj, pobj);
    if (strcmp(kind, IMG_KIND_UPDATE) == 0 && strcmp(pkind, ENG_KIND_OCIREPO) == 0) {
        const eng_imageupdate *u = obj;
        const eng_meta *s = &((const eng_ocirepo *)pobj)->meta;
        return strcmp(u->source_ref.ns, s->ns) == 0 && strcmp(u->source_ref.name, s->name) == 0;
    }
    if (strcmp(kind, ENG_KIND_OCIREPO) == 0 && strcmp(pkind, IMG_KIND_UPDATE) == 0)
        return same_repository(((const eng_imageupdate *)pobj)->publish_url,
                               ((const eng_ocirepo *)obj)->url);
    return false;
}
