/*
 * engine/source_oci.c: the OCIRepository reconciler (spec/oci-artifacts.md §2). It turns a
 * url + ref into a verified, extracted artifact under
 * STATE/artifacts/ocirepository/<ns>/<name>/<digest hex>/ and writes Flux's status.
 *
 * Design: the reference is resolved (digest > semver > tag > "latest") and the manifest HEADed;
 * when the resulting revision equals the stored one and its directory is there, nothing else is
 * sent (a no-change reconcile is one HEAD). Otherwise, with spec.verify, the signatures of that
 * exact digest are verified with the Secret's *.pub keys before any blob is fetched, and the pull
 * goes by digest (never by tag again) into a fresh directory that berth_artifact_pull fills only
 * with verified bytes. A failure keeps the previous artifact and status.artifact. Credentials
 * and TLS material from Secrets are written to a private temp dir for the client and removed
 * (wiped first) at the end of the reconcile.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/artifact.h>
#include <berth/oci.h>
#include <berth/regex.h>
#include <berth/semver.h>
#include <berth/sign.h>
#include <berth/signatures.h>

#include "core/core.h"
#include "engine/internal.h"

/* Reasons (oci-artifacts.md §2.6). */
#define R_SUCCEEDED "Succeeded"
#define R_URL_INVALID "URLInvalid"
#define R_AUTH "AuthenticationFailed"
#define R_READ "ReadOperationFailed"
#define R_PULL "OCIArtifactPullFailed"
#define R_LAYER "OCIArtifactLayerOperationFailed"
#define R_VERIFY "VerificationError"
#define R_STORAGE "StorageOperationFailed"

/* A failure of the reconcile: the reason and a heap message. */
typedef struct fail {
    const char *reason;
    const char *cond; /* the condition carrying it: "FetchFailed", "SourceVerified", ... */
    char *message;
    bool stalled;
    int64_t timeout_ms; /* spec.timeout, named when a failure is a timeout */
} fail;

static void fail_set(fail *f, const char *cond, const char *reason, berth_error *e,
                     const char *prefix)
{
    char *t = berth_error_text(e), dur[32] = "";
    bool timeout = berth_error_code(e) == BERTH_ETIMEOUT && f->timeout_ms > 0;

    if (timeout)
        eng_duration_format(dur, f->timeout_ms);
    f->cond = cond;
    f->reason = reason;
    core_free(f->message);
    f->message = core_sprintf("%s%s%s%s%s", prefix ? prefix : "", timeout ? "timeout of " : "", dur,
                              timeout ? " (spec.timeout) exceeded: " : "", t ? t : "unknown error");
    free(t);
}

/* Parse "oci://host[:port]/path" into *out; a tag or digest in the URL is an error. */
static int parse_url(berth_oci_ref *out, const char *url, berth_error **err)
{
    const char *rest, *slash;

    if (!core_str_has_prefix(url, "oci://"))
        return core_error_set(err, BERTH_EINVAL, "URL \"%s\" must start with oci://", url);
    rest = url + 6;
    slash = strchr(rest, '/');
    if (!slash || !slash[1])
        return core_error_set(err, BERTH_EINVAL, "URL \"%s\" has no repository path", url);
    if (strchr(slash, ':') || strchr(slash, '@'))
        return core_error_set(err, BERTH_EINVAL, "URL \"%s\" must not contain a tag or digest",
                              url);
    return berth_oci_ref_parse(out, rest, err);
}

static int write_secret_file(char **path_out, const char *dir, const char *file, const eng_kv *kv,
                             berth_error **err)
{
    int rc;
    char *p = core_sprintf("%s/%s", dir, file);

    if (!p)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = core_fs_write_atomic(p, kv->value, kv->len, 0600, err)) < 0) {
        core_free(p);
        return rc;
    }
    *path_out = p;
    return 0;
}

/* Wipe and remove the credential files of tmpdir, then tmpdir. */
void eng_registry_tmp_remove(char *tmpdir)
{
    static const char *const files[] = {"config.json", "ca.crt", "tls.crt", "tls.key"};
    berth_error *e = NULL;

    if (!tmpdir)
        return;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = core_sprintf("%s/%s", tmpdir, files[i]);
        if (p)
            (void)remove(p);
        core_free(p);
    }
    (void)core_fs_remove_all(tmpdir, &e);
    berth_error_free(e);
    core_free(tmpdir);
}

/* Build the registry client from insecure, secretRef and certSecretRef. Without Secrets it comes
 * from the thread's cache (*borrowed_out true: not to be freed). */
static int client_new(berth_oci_client **out, char **tmpdir_out, bool *borrowed_out, eng_ctx *ctx,
                      const eng_ocirepo *repo, berth_error **err)
{
    *tmpdir_out = NULL;
    if (repo->provider && strcmp(repo->provider, "generic") != 0)
        return core_error_set(err, BERTH_EUNSUPPORTED, "provider \"%s\" is not supported yet",
                              repo->provider);
    if (repo->proxy_secret_ref || repo->service_account_name)
        return core_error_set(err, BERTH_EUNSUPPORTED, "%s is not supported yet",
                              repo->proxy_secret_ref ? "proxySecretRef" : "serviceAccountName");
    return eng_registry_client_new(out, tmpdir_out, borrowed_out, ctx, repo->meta.ns,
                                   repo->secret_ref, repo->cert_secret_ref, repo->insecure,
                                   repo->timeout_ms, err);
}

int eng_registry_client_new(berth_oci_client **out, char **tmpdir_out, bool *borrowed_out,
                            eng_ctx *ctx, const char *ns, const char *secret_ref,
                            const char *cert_secret_ref, bool insecure, int64_t timeout_ms,
                            berth_error **err)
{
    berth_oci_client_opts o = BERTH_OCI_CLIENT_OPTS_INIT;
    char *cfg = NULL, *ca = NULL, *crt = NULL, *key = NULL, *tmp = NULL;
    const eng_secret *s;
    const eng_kv *kv;
    int rc = 0;

    o.insecure = insecure;
    o.debug = ctx->debug;
    o.max_retries = 2;
    o.timeout_ms = timeout_ms; /* bounds the whole reconcile's traffic (§2.1 timeout) */
    if (borrowed_out)
        *borrowed_out = false;
    if (secret_ref || cert_secret_ref) {
        if ((rc = core_fs_mkdtemp(&tmp, eng_state_path(ctx->state), ".creds-", err)) < 0)
            goto out;
    }
    if (secret_ref) {
        if (!(s = eng_config_find_secret(ctx->cfg, ns, secret_ref))) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "secret \"%s/%s\" not found", ns, secret_ref);
            goto out;
        }
        if (!(kv = eng_kv_find(s->data, s->data_len, ".dockerconfigjson"))) {
            rc =
                core_error_set(err, BERTH_EINVAL,
                               "secret \"%s/%s\" has no \".dockerconfigjson\" key", ns, secret_ref);
            goto out;
        }
        if ((rc = write_secret_file(&cfg, tmp, "config.json", kv, err)) < 0)
            goto out;
        o.docker_config = cfg;
    }
    if (cert_secret_ref) {
        if (!(s = eng_config_find_secret(ctx->cfg, ns, cert_secret_ref))) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "secret \"%s/%s\" not found", ns,
                                cert_secret_ref);
            goto out;
        }
        if ((kv = eng_kv_find(s->data, s->data_len, "ca.crt")) &&
            (rc = write_secret_file(&ca, tmp, "ca.crt", kv, err)) < 0)
            goto out;
        if ((kv = eng_kv_find(s->data, s->data_len, "tls.crt")) &&
            (rc = write_secret_file(&crt, tmp, "tls.crt", kv, err)) < 0)
            goto out;
        if ((kv = eng_kv_find(s->data, s->data_len, "tls.key")) &&
            (rc = write_secret_file(&key, tmp, "tls.key", kv, err)) < 0)
            goto out;
        if (!crt != !key) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "secret \"%s/%s\" must hold both tls.crt and tls.key or neither",
                                ns, cert_secret_ref);
            goto out;
        }
        o.ca_file = ca;
        o.cert_file = crt;
        o.key_file = key;
        if (ca || crt)
            o.insecure = false; /* a cert secret keeps TLS verification on (§2.1) */
    }
    if (!tmp && ctx->clients && borrowed_out) {
        rc = eng_clients_get(out, ctx->clients, &o, err);
        *borrowed_out = rc == 0;
    } else {
        rc = berth_oci_client_new(out, &o, err);
    }
out:
    core_free(cfg);
    core_free(ca);
    core_free(crt);
    core_free(key);
    if (rc < 0) {
        eng_registry_tmp_remove(tmp);
        tmp = NULL;
    }
    *tmpdir_out = tmp;
    return rc;
}

/* The highest tag satisfying the semver constraint (and the filter); *tag_out heap. */
static int resolve_semver(char **tag_out, berth_oci_client *c, const berth_oci_ref *ref,
                          const eng_ocirepo *repo, berth_error **err)
{
    berth_semver_constraint *sc = NULL;
    berth_regex *re = NULL;
    char **tags = NULL;
    size_t n = 0;
    const char *best = NULL;
    bool match;
    int rc;

    if ((rc = berth_semver_constraint_parse(&sc, repo->ref_semver, err)) < 0)
        goto out;
    if (repo->ref_semver_filter &&
        (rc = berth_regex_compile(&re, repo->ref_semver_filter, err)) < 0)
        goto out;
    if ((rc = berth_oci_tags_list(&tags, &n, c, ref, 0, err)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (re) {
            if ((rc = berth_regex_match(&match, re, tags[i], err)) < 0)
                goto out;
            if (!match)
                continue;
        }
        if (!berth_semver_constraint_check(sc, tags[i]))
            continue;
        if (!best || berth_semver_compare(tags[i], best) > 0)
            best = tags[i];
    }
    if (!best) {
        rc =
            core_error_set(err, BERTH_ENOTFOUND, "no match found for semver: %s", repo->ref_semver);
        goto out;
    }
    if (!(*tag_out = core_strdup(best)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    berth_strv_free(tags, n);
    berth_regex_free(re);
    berth_semver_constraint_free(sc);
    return rc;
}

/* Verify the signatures of ref (at its digest) with the *.pub keys of the verify Secret. */
static int verify(eng_ctx *ctx, const eng_ocirepo *repo, berth_oci_client *c,
                  const berth_oci_ref *ref, berth_error **err)
{
    berth_sign_verify_opts trust = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_signatures_verify_opts vo = BERTH_SIGNATURES_VERIFY_OPTS_INIT;
    berth_signatures_result res = {.ok = false};
    berth_sign_pubkey **keys = NULL;
    const eng_secret *s;
    size_t n = 0;
    int rc = 0;

    if (strcmp(repo->verify->provider, "cosign") != 0)
        return core_error_set(err, BERTH_EUNSUPPORTED,
                              "verification provider \"%s\" is not supported",
                              repo->verify->provider);
    if (!repo->verify->secret_ref)
        return core_error_set(err, BERTH_EUNSUPPORTED,
                              "cosign keyless verification is not supported: set verify.secretRef");
    if (!(s = eng_config_find_secret(ctx->cfg, repo->meta.ns, repo->verify->secret_ref)))
        return core_error_set(err, BERTH_ENOTFOUND, "secret \"%s/%s\" not found", repo->meta.ns,
                              repo->verify->secret_ref);
    if (!(keys = core_calloc(s->data_len + 1, sizeof(*keys))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->data_len; i++) {
        if (!core_str_has_suffix(s->data[i].key, ".pub"))
            continue;
        if ((rc = berth_sign_pubkey_load_pem(&keys[n], s->data[i].key, s->data[i].value,
                                             s->data[i].len, err)) < 0) {
            core_error_wrap(err, "secret \"%s/%s\"", repo->meta.ns, repo->verify->secret_ref);
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = core_error_set(err, BERTH_EINVAL, "no public keys (*.pub) in secret \"%s/%s\"",
                            repo->meta.ns, repo->verify->secret_ref);
        goto out;
    }
    trust.keys = (const berth_sign_pubkey *const *)keys;
    trust.n_keys = n;
    vo.trust = &trust;
    rc = berth_signatures_verify(&res, c, ref, &vo, err);
    if (rc == 0 && strcmp(res.digest, ref->digest) != 0)
        rc = core_error_set(err, BERTH_EVERIFY, "verified digest \"%s\" is not \"%s\"", res.digest,
                            ref->digest);
    if (rc == BERTH_EVERIFY && res.n_entries > 0) {
        const char *why = res.entries[0].check.reason;
        core_error_wrap(err, "%s", why[0] ? why : "signature rejected");
    }
out:
    berth_signatures_result_dispose(&res);
    for (size_t i = 0; i < n; i++)
        berth_sign_pubkey_free(keys[i]);
    core_free(keys);
    return rc;
}

/* Remove every entry of dir except keep (the current artifact). */
static void gc_artifacts(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d))) {
        berth_error *e = NULL;
        char *p;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (keep && strcmp(de->d_name, keep) == 0))
            continue;
        if (!(p = core_sprintf("%s/%s", dir, de->d_name)))
            continue;
        (void)core_fs_remove_all(p, &e);
        berth_error_free(e);
        core_free(p);
    }
    closedir(d);
}

/* What Flux always excludes before spec.ignore when the user gives patterns (§2.8). */
#define VCS_IGNORE ".git/\n.gitignore\n.gitmodules\n.gitattributes\n"

/* The file a copy-mode artifact is stored as, inside its directory. */
#define COPY_FILE "artifact.tgz"

/*
 * The name of the stored artifact's directory: the manifest hex, plus "-" and 12 hex digits of a
 * hash of the storage settings (operation, layer media type, ignore) when they are not the
 * default (extract the first layer, keep every file). A settings change then stores anew instead
 * of reusing a tree made under the old settings. Heap, NULL on OOM.
 */
static char *artifact_dirname(const char *hex, const eng_ocirepo *repo)
{
    char key[72];
    char *text;

    if (repo->layer_operation == ENG_LAYER_EXTRACT && !repo->layer_media_type && !repo->ignore)
        return core_strdup(hex);
    text = core_sprintf("%s\n%s\n%s", repo->layer_operation == ENG_LAYER_COPY ? "copy" : "extract",
                        repo->layer_media_type ? repo->layer_media_type : "",
                        repo->ignore ? repo->ignore : "");
    if (!text)
        return NULL;
    core_sha256_digest(key, text, strlen(text));
    core_free(text);
    return core_sprintf("%s-%.12s", hex, key + 7);
}

/*
 * Pull ref (by digest) into a fresh staging directory beside dest, then rename it to dest: a
 * dest that exists is always complete (a crash leaves only a ".pull-" directory, which GC
 * removes). A dest that is already there (the same digest and settings, pulled before) is kept
 * and nothing is fetched. extract: the layer's tree, less what spec.ignore excludes (with
 * Flux's VCS set first); copy: the layer blob as is in dest/artifact.tgz (spec.ignore does not
 * apply, as in Flux). *size_out is the layer size, or -1 when nothing was pulled.
 */
static int store(int64_t *size_out, berth_oci_client *c, const berth_oci_ref *ref,
                 const eng_ocirepo *repo, const char *objdir, const char *dest, berth_error **err)
{
    berth_pull_result res = {.source = NULL};
    char *stage = NULL, *file = NULL, *patterns = NULL;
    int rc;

    *size_out = -1;
    if (core_fs_is_dir(dest))
        return 0;
    if ((rc = core_fs_mkdtemp(&stage, objdir, ".pull-", err)) < 0)
        return rc;
    if (repo->layer_operation == ENG_LAYER_COPY) {
        if (!(file = core_sprintf("%s/" COPY_FILE, stage))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = berth_artifact_pull_blob(&res, c, ref, file, repo->layer_media_type, err)) < 0)
            goto out;
    } else {
        if ((rc = berth_artifact_pull(&res, c, ref, stage, repo->layer_media_type, NULL, err)) < 0)
            goto out;
        if (repo->ignore) {
            if (!(patterns = core_sprintf("%s%s", VCS_IGNORE, repo->ignore))) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
            if ((rc = berth_artifact_apply_ignore(stage, patterns, err)) < 0) {
                core_error_wrap(err, "applying spec.ignore");
                goto out;
            }
        }
    }
    if (rename(stage, dest) != 0) {
        rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", stage, dest);
        goto out;
    }
    *size_out = res.layer_size;
    rc = core_fs_sync_dir(objdir, err);
out:
    if (rc < 0 && stage) {
        berth_error *e = NULL;
        (void)core_fs_remove_all(stage, &e);
        berth_error_free(e);
    }
    core_free(stage);
    core_free(file);
    core_free(patterns);
    berth_pull_result_dispose(&res);
    return rc;
}

/* status.observedIgnore and status.observedLayerSelector, as source-controller writes them. */
static int set_observed(json_t *st, const eng_ocirepo *repo, berth_error **err)
{
    json_t *ls = NULL;

    json_object_del(st, "observedIgnore");
    json_object_del(st, "observedLayerSelector");
    if (repo->ignore && json_object_set_new(st, "observedIgnore", json_string(repo->ignore)) < 0)
        goto oom;
    if (!repo->has_layer_selector)
        return 0;
    if (!(ls = json_object()))
        goto oom;
    if (repo->layer_media_type &&
        json_object_set_new(ls, "mediaType", json_string(repo->layer_media_type)) < 0)
        goto oom;
    if (json_object_set_new(
            ls, "operation",
            json_string(repo->layer_operation == ENG_LAYER_COPY ? "copy" : "extract")) < 0)
        goto oom;
    if (json_object_set_new(st, "observedLayerSelector", ls) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory"); /* ls was taken */
    return 0;
oom:
    json_decref(ls);
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static const char *fetch_reason(int rc)
{
    return rc == BERTH_EAUTH || rc == BERTH_EDENIED ? R_AUTH : R_PULL;
}

int eng_source_oci_reconcile(eng_ctx *ctx, const eng_ocirepo *repo, bool *ready_out,
                             berth_error **err)
{
    const char *ns = repo->meta.ns, *name = repo->meta.name;
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_error *e = NULL;
    json_t *old = NULL, *st = NULL;
    char *tmpdir = NULL, *objdir = NULL, *tag = NULL, *digest = NULL, *revision = NULL;
    char *dest = NULL, *msg = NULL, *relpath = NULL, *dirname = NULL;
    const char *stored_rev, *stored_path, *hex;
    fail f = {.reason = NULL, .timeout_ms = repo->timeout_ms};
    int64_t size = -1;
    bool unchanged = false, borrowed = false;
    int rc;

    *ready_out = false;
    eng_reconcile_mark(ENG_KIND_OCIREPO, ns, name, false);
    if ((rc = eng_state_status_read(&old, ctx->state, ENG_KIND_OCIREPO, ns, name, err)) < 0)
        goto out;
    st = old ? json_deep_copy(old) : eng_status_new();
    if (!st) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    json_object_del(st, "suspended");
    if (repo->suspend || eng_suspend_override(ctx->state, ENG_KIND_OCIREPO, ns, name)) {
        if (json_object_set_new(st, "suspended", json_true()) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        eng_log("info", "suspended", ENG_KIND_OCIREPO, ns, name, "reconciliation is suspended");
        *ready_out = true;
        rc = eng_status_commit(ctx, ENG_KIND_OCIREPO, ns, name, old, st, err);
        goto out;
    }
    if ((rc = eng_state_artifact_dir(&objdir, ctx->state, ENG_KIND_OCIREPO, ns, name, err)) < 0)
        goto out;

    /* 1. the URL */
    if (parse_url(&ref, repo->url, &e) < 0) {
        fail_set(&f, "FetchFailed", R_URL_INVALID, e, NULL);
        f.stalled = true;
        goto status;
    }
    /* 2. the client */
    if (client_new(&client, &tmpdir, &borrowed, ctx, repo, &e) < 0) {
        fail_set(&f, "FetchFailed", R_AUTH, e, "failed to configure the registry client: ");
        goto status;
    }
    /* 3. resolve: digest > semver > tag > latest */
    if (repo->ref_digest) {
        if (berth_oci_ref_set(&ref, NULL, repo->ref_digest) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        if (repo->ref_semver) {
            if (resolve_semver(&tag, client, &ref, repo, &e) < 0) {
                fail_set(&f, "FetchFailed", R_READ, e, "failed to determine the artifact tag: ");
                goto status;
            }
        } else if (!(tag = core_strdup(repo->ref_tag ? repo->ref_tag : "latest"))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (berth_oci_ref_set(&ref, tag, NULL) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = berth_oci_manifest_head(&digest, NULL, client, &ref, &e)) < 0) {
        fail_set(&f, "FetchFailed", fetch_reason(rc), e, "failed to determine artifact digest: ");
        rc = 0;
        goto status;
    }
    revision = tag ? core_sprintf("%s@%s", tag, digest) : core_strdup(digest);
    hex = strchr(digest, ':') ? strchr(digest, ':') + 1 : digest;
    dirname = artifact_dirname(hex, repo);
    dest = dirname ? core_sprintf("%s/%s", objdir, dirname) : NULL;
    relpath = dirname ? core_sprintf("ocirepository/%s/%s/%s%s", ns, name, dirname,
                                     repo->layer_operation == ENG_LAYER_COPY ? "/" COPY_FILE : "")
                      : NULL;
    if (!revision || !dest || !relpath || berth_oci_ref_set(&ref, NULL, digest) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }

    /* 4. no change: same revision, stored files there, verification (if asked) done */
    stored_rev = eng_status_str(st, "artifact", "revision");
    stored_path = eng_status_str(st, "artifact", "path");
    if (stored_rev && strcmp(stored_rev, revision) == 0 && stored_path &&
        strcmp(stored_path, relpath) == 0 && core_fs_is_dir(dest)) {
        json_t *sv = eng_status_condition(st, "SourceVerified");
        const char *svs = sv ? json_string_value(json_object_get(sv, "status")) : NULL;
        unchanged = !repo->verify || (svs && strcmp(svs, "True") == 0);
    }
    if (unchanged) {
        eng_log("debug", "up-to-date", ENG_KIND_OCIREPO, ns, name, "artifact up-to-date with '%s'",
                revision);
        goto status;
    }

    /* 5. verify before any blob is fetched */
    if (repo->verify) {
        if ((rc = verify(ctx, repo, client, &ref, &e)) < 0) {
            fail_set(&f, "SourceVerified", R_VERIFY, e,
                     "failed to verify the signature using provider 'cosign': ");
            rc = 0;
            goto status;
        }
        eng_log("info", "verified", ENG_KIND_OCIREPO, ns, name, "verified signature of revision %s",
                revision);
    }
    /* 6. pull by digest into a fresh directory */
    if ((rc = store(&size, client, &ref, repo, objdir, dest, &e)) < 0) {
        fail_set(&f, "FetchFailed", rc == BERTH_EUNSUPPORTED ? R_LAYER : fetch_reason(rc), e,
                 "failed to pull artifact: ");
        rc = 0;
        goto status;
    }
    gc_artifacts(objdir, dirname);
    if (size < 0) { /* the same digest was stored before (another tag, or re-verified) */
        json_t *sz = json_object_get(json_object_get(st, "artifact"), "size");
        size = json_is_integer(sz) ? json_integer_value(sz) : -1;
    }
    {
        eng_artifact_info ai = {.revision = revision,
                                .digest = digest,
                                .size = size,
                                .updated_ms = ctx->now_ms,
                                .path = relpath,
                                .url = NULL};
        if ((rc = eng_status_set_artifact(st, &ai, err)) < 0 ||
            (rc = set_observed(st, repo, err)) < 0)
            goto out;
    }
    ctx->changed = true;
    msg = core_sprintf("stored artifact with revision '%s' from '%s'", revision, repo->url);
    eng_emit(ctx, "info", ENG_KIND_OCIREPO, ns, name, "NewArtifact", msg ? msg : "new artifact");
    eng_log("info", "stored", ENG_KIND_OCIREPO, ns, name, "%s", msg ? msg : "new artifact");
    core_free(msg);
    msg = NULL;

status:
    rc = 0;
    eng_status_remove_condition(st, "Reconciling");
    if (f.message) {
        eng_log("error", f.reason, ENG_KIND_OCIREPO, ns, name, "%s", f.message);
        if (strcmp(f.cond, "FetchFailed") == 0)
            rc = eng_cond(st, "FetchFailed", "True", f.reason, f.message, ctx->now_ms, err);
        else {
            eng_status_remove_condition(st, "FetchFailed"); /* the fetch itself worked */
            rc = eng_cond(st, f.cond, "False", f.reason, f.message, ctx->now_ms, err);
        }
        if (rc == 0 && f.stalled)
            rc = eng_cond(st, "Stalled", "True", f.reason, f.message, ctx->now_ms, err);
        if (rc == 0)
            rc = eng_cond(st, "Ready", "False", f.reason, f.message, ctx->now_ms, err);
        if (rc == 0 && !eng_status_str(st, "artifact", "revision"))
            eng_status_remove_condition(st, "ArtifactInStorage");
        if (rc == 0 && (!old || eng_status_is_ready(old)))
            eng_emit(ctx, "error", ENG_KIND_OCIREPO, ns, name, f.reason, f.message);
    } else {
        const char *rev = eng_status_str(st, "artifact", "revision");
        if (!(msg = core_sprintf("stored artifact for digest '%s'", rev ? rev : "")))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        eng_status_remove_condition(st, "FetchFailed");
        eng_status_remove_condition(st, "Stalled");
        if (rc == 0)
            rc = eng_cond(st, "Ready", "True", R_SUCCEEDED, msg, ctx->now_ms, err);
        if (rc == 0)
            rc = eng_cond(st, "ArtifactInStorage", "True", R_SUCCEEDED, msg, ctx->now_ms, err);
        if (rc == 0 && repo->verify) {
            char *vm = core_sprintf("verified signature of revision %s", rev ? rev : "");
            rc = vm ? eng_cond(st, "SourceVerified", "True", R_SUCCEEDED, vm, ctx->now_ms, err)
                    : core_error_set(err, BERTH_ENOMEM, "out of memory");
            core_free(vm);
        } else if (!repo->verify)
            eng_status_remove_condition(st, "SourceVerified");
        *ready_out = rc == 0;
    }
    if (rc == 0)
        rc = eng_status_commit(ctx, ENG_KIND_OCIREPO, ns, name, old, st, err);
out:
    berth_error_free(e);
    core_free(f.message);
    eng_registry_tmp_remove(tmpdir);
    if (!borrowed)
        berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    core_free(objdir);
    core_free(tag);
    core_free(digest);
    core_free(revision);
    core_free(dest);
    core_free(dirname);
    core_free(relpath);
    core_free(msg);
    json_decref(old);
    json_decref(st);
    return rc;
}
