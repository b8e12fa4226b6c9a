/*
 * engine/kustomization.c: the Kustomization reconciler (spec/engine.md §1): take the artifact of
 * its source, build it (eng_build: kustomize subset, spec overlay, postBuild substitution), apply
 * the objects to the target, prune what left the inventory, and write inventory and status as
 * kustomize-controller does.
 *
 * Design: every reconcile builds and plans (cheap, local, and it is how drift is found); only
 * changes are written, so a no-change pass rewrites nothing. A failure before or during apply
 * (source not ready, dependency not ready, build error, apply error) leaves the previous
 * inventory and never prunes: the last applied state stays in place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/artifact.h>
#include <berth/buf.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/internal.h"

#define R_SUCCEEDED "ReconciliationSucceeded"
#define R_FAILED "ReconciliationFailed"
#define R_BUILD "BuildFailed"
#define R_ARTIFACT "ArtifactFailed"
#define R_DEPENDENCY "DependencyNotReady"
#define R_HEALTH "HealthCheckFailed"
#define R_PRUNE "PruneFailed"

/* The path inside the artifact, relative ("." for the root). */
static const char *rel_path(const char *p)
{
    if (!p)
        return ".";
    for (;;) {
        if (p[0] == '.' && p[1] == '/')
            p += 2;
        else if (p[0] == '/')
            p++;
        else
            break;
    }
    return p[0] ? p : ".";
}

static char *rel_path_dup(const char *p)
{
    char *s = core_strdup(rel_path(p));
    size_t n;

    if (!s)
        return NULL;
    n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

/* The current artifact revision of source (status), or NULL; borrowed from *status_out. */
static int source_status(json_t **status_out, eng_ctx *ctx, const eng_objref *ref,
                         berth_error **err)
{
    *status_out = NULL;
    if (!eng_config_find_ocirepo(ctx->cfg, ref->ns, ref->name))
        return 0;
    return eng_state_status_read(status_out, ctx->state, ENG_KIND_OCIREPO, ref->ns, ref->name, err);
}

/*
 * The tree of a copy-mode artifact (its path is the layer blob, a .tar.gz file): extracted once
 * into "extracted/" beside the blob (staged, then renamed, so a reader never sees half a tree;
 * when two extract at once the first rename wins) and reused while the artifact is current. The
 * source's GC removes it with the artifact. *dir_out heap.
 */
static int copy_artifact_tree(char **dir_out, const char *blob, berth_error **err)
{
    const char *slash = strrchr(blob, '/');
    char *parent = slash ? core_strndup(blob, (size_t)(slash - blob)) : NULL;
    char *dir = parent ? core_sprintf("%s/extracted", parent) : NULL, *stage = NULL;
    int rc = 0;

    *dir_out = NULL;
    if (!dir) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!core_fs_is_dir(dir)) {
        if ((rc = core_fs_mkdtemp(&stage, parent, ".extract-", err)) < 0)
            goto out;
        if ((rc = berth_artifact_extract_file(blob, stage, NULL, err)) < 0) {
            core_error_wrap(err, "extracting \"%s\"", blob);
            goto out;
        }
        if (rename(stage, dir) != 0 && !core_fs_is_dir(dir)) {
            rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", stage, dir);
            goto out;
        }
    }
    *dir_out = dir;
    dir = NULL;
out:
    if (stage && core_fs_is_dir(stage)) {
        berth_error *e = NULL; /* a leftover staging directory is not worth a failure */
        (void)core_fs_remove_all(stage, &e);
        berth_error_free(e);
    }
    core_free(stage);
    core_free(dir);
    core_free(parent);
    return rc;
}

/* NULL when every dependency is Ready at its source's revision, else a heap message. */
static int check_dependencies(char **why_out, eng_ctx *ctx, const eng_kustomization *ks,
                              berth_error **err)
{
    int rc = 0;

    *why_out = NULL;
    for (size_t i = 0; i < ks->depends_on_len && !*why_out; i++) {
        const eng_objref *d = &ks->depends_on[i];
        const eng_kustomization *dk = eng_config_find_kustomization(ctx->cfg, d->ns, d->name);
        json_t *ds = NULL, *ss = NULL;
        const char *applied, *cur;

        if (!dk) {
            *why_out = core_sprintf("dependency '%s/%s' not found", d->ns, d->name);
            continue;
        }
        if ((rc = eng_state_status_read(&ds, ctx->state, ENG_KIND_KS, d->ns, d->name, err)) < 0)
            return rc;
        if ((rc = source_status(&ss, ctx, &dk->source_ref, err)) < 0) {
            json_decref(ds);
            return rc;
        }
        applied = eng_status_str(ds, "lastAppliedRevision", NULL);
        cur = eng_status_str(ss, "artifact", "revision");
        if (!eng_status_is_ready(ds) || !applied || !cur || strcmp(applied, cur) != 0)
            *why_out = core_sprintf("dependency '%s/%s' is not ready", d->ns, d->name);
        json_decref(ds);
        json_decref(ss);
    }
    return rc;
}

/* Build the objects of ks from the artifact tree root. */
static int build(json_t **objects_out, eng_ctx *ctx, const eng_kustomization *ks, const char *root,
                 berth_error **err)
{
    eng_build_opts o = ENG_BUILD_OPTS_INIT;
    eng_postbuild pb = {.substitute = NULL};
    eng_subst_from *from = NULL;
    json_t **datas = NULL;
    char *path = rel_path_dup(ks->path);
    int rc = 0;

    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    o.target_namespace = ks->target_namespace;
    o.name_prefix = ks->name_prefix;
    o.name_suffix = ks->name_suffix;
    o.patches = ks->patches;
    o.images = ks->images;
    o.components = ks->components;
    o.ignore_missing_components = ks->ignore_missing_components;
    o.common_metadata = ks->common_metadata;
    if (ks->has_post_build) {
        size_t n = ks->substitute_from_len;
        from = core_calloc(n + 1, sizeof(*from));
        datas = core_calloc(n + 1, sizeof(*datas));
        if (!from || !datas) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const eng_subst_ref *r = &ks->substitute_from[i];
            from[i].kind = r->kind;
            from[i].name = r->name;
            from[i].optional = r->optional;
            if (strcmp(r->kind, "Secret") == 0) {
                const eng_secret *s = eng_config_find_secret(ctx->cfg, ks->meta.ns, r->name);
                if (s && (rc = eng_kv_to_json(&datas[i], s->data, s->data_len, r->name, err)) < 0)
                    goto out;
            } else {
                const eng_configmap *c = eng_config_find_configmap(ctx->cfg, ks->meta.ns, r->name);
                if (c && (rc = eng_kv_to_json(&datas[i], c->data, c->data_len, r->name, err)) < 0)
                    goto out;
            }
            from[i].data = datas[i];
        }
        pb.substitute = ks->substitute;
        pb.from = from;
        pb.from_len = n;
        pb.always = ks->substitute_always;
        pb.strict = false;
        o.post_build = &pb;
    }
    rc = eng_build(objects_out, root, path, &o, err);
out:
    for (size_t i = 0; datas && i < ks->substitute_from_len; i++)
        json_decref(datas[i]);
    core_free(datas);
    core_free(from);
    core_free(path);
    return rc;
}

static bool inventory_equal(const eng_inventory *a, const eng_inventory *b)
{
    if (a->len != b->len || a->prune != b->prune || !a->cluster != !b->cluster ||
        (a->cluster && strcmp(a->cluster, b->cluster) != 0))
        return false;
    for (size_t i = 0; i < a->len; i++) {
        const eng_inv_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->id, y->id) != 0 || strcmp(x->version, y->version) != 0 ||
            !x->digest != !y->digest || (x->digest && strcmp(x->digest, y->digest) != 0))
            return false;
    }
    return true;
}

/* Append "<subject> <action>" lines for the changes of p, deletes only when with_deletes (the
 * plan lists the stale entries as deletes; prune reports what really happened to them). */
static int render(berth_buf *out, const eng_plan *p, bool with_deletes, berth_error **err)
{
    for (size_t i = 0; i < p->len; i++) {
        const eng_change *c = &p->changes[i];
        if (c->action == ENG_CHANGE_UNCHANGED || (c->action == ENG_CHANGE_DELETE && !with_deletes))
            continue;
        if (berth_buf_printf(out, "%s %s\n", c->subject, eng_change_action_name(c->action)) < 0)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

/* The most objects listed in status.lastDriftCorrection.objects (count has them all). */
#define DRIFT_LIST_MAX 100

/*
 * The drifted changes of plan as {"count": N, "objects": [{"id", "subject", "drift"}]} (at most
 * DRIFT_LIST_MAX objects), or *out NULL when nothing drifted.
 */
int eng_kustomization_drift_json(json_t **out, const eng_plan *plan)
{
    size_t n = eng_plan_drift_count(plan);
    json_t *d = NULL, *objs = NULL;

    *out = NULL;
    if (n == 0)
        return 0;
    if (!(d = json_object()) || !(objs = json_array()) ||
        json_object_set_new(d, "count", json_integer((json_int_t)n)) < 0)
        goto oom;
    for (size_t i = 0; i < plan->len && json_array_size(objs) < DRIFT_LIST_MAX; i++) {
        const eng_change *c = &plan->changes[i];
        json_t *o;
        if (c->drift == ENG_DRIFT_NONE)
            continue;
        if (!(o = json_pack("{s:s, s:s, s:s}", "id", c->id, "subject", c->subject, "drift",
                            c->drift == ENG_DRIFT_MISSING ? "missing" : "modified")) ||
            json_array_append_new(objs, o) < 0)
            goto oom;
    }
    if (json_object_set_new(d, "objects", objs) < 0) {
        objs = NULL;
        goto oom;
    }
    *out = d;
    return 0;
oom:
    json_decref(objs);
    json_decref(d);
    return BERTH_ENOMEM;
}

/*
 * Apply the plan, prune (when asked) and compute the new inventory into *inv; *drift_out gets
 * what drifted (eng_kustomization_drift_json) once the apply that corrected it succeeded. A
 * failed prune is not a failed apply: its text goes to *prune_err_out (heap) and the objects
 * whose deletion was not confirmed stay in *inv, so the next run retries them (engine.md §3.9).
 */
static int apply(eng_inventory *inv, char **changes_out, json_t **drift_out, char **prune_err_out,
                 eng_ctx *ctx, const eng_kustomization *ks, const eng_ks_target *kt,
                 const json_t *objects, const eng_inventory *old, berth_error **err)
{
    json_t *drift = NULL;
    eng_plan plan, pruned;
    eng_inventory stale = ENG_INVENTORY_INIT, none = ENG_INVENTORY_INIT;
    eng_ks_target prev = {0};
    eng_target *prune_target = kt->target;
    berth_buf text = BERTH_BUF_INIT;
    eng_target_scope scope = {.ks_ns = ks->meta.ns,
                              .ks_name = ks->meta.name,
                              .service_account = ks->service_account_name,
                              .force = ks->force,
                              .timeout_ms = ks->timeout_ms};
    /* the objects of old are on another cluster (spec.kubeConfig changed): plan as a first
     * apply there, and prune all of old from the cluster that holds it */
    bool moved = !eng_ks_target_same_cluster(kt, old, ctx->target);
    int rc;

    eng_plan_init(&plan);
    eng_plan_init(&pruned);
    eng_inventory_init(inv);
    if ((rc = eng_target_set_scope(kt->target, &scope, err)) < 0)
        goto out;
    if ((rc = eng_target_plan(kt->target, &plan, objects, moved ? &none : old, err)) < 0)
        goto out;
    if (eng_plan_drift_count(&plan) > 0) {
        eng_log("info", "drift", ENG_KIND_KS, ks->meta.ns, ks->meta.name,
                "%zu object(s) changed out of band, restoring", eng_plan_drift_count(&plan));
        if (eng_kustomization_drift_json(&drift, &plan) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = eng_target_apply(kt->target, inv, &plan, err)) < 0)
        goto out;
    if (kt->cluster && !(inv->cluster = core_strdup(kt->cluster))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = render(&text, &plan, false, err)) < 0)
        goto out;
    if ((rc = eng_inventory_diff(&stale, old, moved ? &none : inv, err)) < 0)
        goto out;
    if (ks->prune && stale.len > 0 && moved) {
        berth_error *pe = NULL;
        if (eng_ks_target_stored(&prev, ctx, ks->meta.ns, ks->meta.name, old, &pe) < 0 ||
            eng_target_set_scope(prev.target, &scope, &pe) < 0) {
            /* the objects stay on the previous cluster: said once, in the status */
            core_error_wrap(&pe, "%zu object(s) left on the previous cluster", stale.len);
            *prune_err_out = berth_error_text(pe);
            berth_error_free(pe);
            if (!*prune_err_out) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
            eng_inventory_dispose(&stale);
        } else {
            prune_target = prev.target;
        }
    }
    if (ks->prune && stale.len > 0) {
        berth_error *pe = NULL;
        int prc = eng_target_prune(prune_target, &pruned, &stale, &pe);
        for (size_t i = 0; i < pruned.len && !moved; i++) { /* moved: left behind, reported */
            const eng_change *c = &pruned.changes[i];
            if (c->action == ENG_CHANGE_UNKNOWN &&
                (rc = eng_inventory_add(inv, c->id, c->version, NULL, err)) < 0)
                goto out;
        }
        if (prc < 0 && prev.where)
            core_error_wrap(&pe, "pruning from the previous cluster, %s", prev.where);
        if ((rc = render(&text, &pruned, true, err)) < 0)
            goto out;
        if (prc == BERTH_ENOMEM) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            berth_error_free(pe);
            goto out;
        }
        if (prc < 0 && !(*prune_err_out = berth_error_text(pe)))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        berth_error_free(pe);
        if (rc < 0)
            goto out;
    }
    eng_inventory_sort(inv);
    if (text.len > 0 && !(*changes_out = core_strndup(text.ptr, text.len)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0) {
        *drift_out = drift;
        drift = NULL;
    }
out:
    if (rc < 0 && kt->where)
        core_error_wrap(err, "%s", kt->where);
    json_decref(drift);
    if (rc < 0)
        eng_inventory_dispose(inv);
    eng_ks_target_dispose(&prev);
    berth_buf_dispose(&text);
    eng_inventory_dispose(&stale);
    eng_plan_dispose(&plan);
    eng_plan_dispose(&pruned);
    return rc;
}

/*
 * Health (engine.md §4): with wait every applied object, else the healthChecks entries (an
 * empty apiVersion is apps/v1). *msg_out (heap) is set when they are not healthy in time.
 */
static int check_health(char **msg_out, const eng_ks_target *kt, const eng_kustomization *ks,
                        const json_t *objects, berth_error **err)
{
    eng_health h = {.healthy = true};
    json_t *list = NULL;
    int64_t start = core_mono_now();
    int rc = 0;

    *msg_out = NULL;
    if (!ks->wait && ks->health_checks_len == 0)
        return 0;
    if (ks->wait) {
        list = json_incref((json_t *)(uintptr_t)objects);
    } else if ((list = json_array())) {
        for (size_t i = 0; i < ks->health_checks_len && rc == 0; i++) {
            const eng_objref *r = &ks->health_checks[i];
            json_t *o = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion",
                                  r->api_version && r->api_version[0] ? r->api_version : "apps/v1",
                                  "kind", r->kind ? r->kind : "", "metadata", "name", r->name);
            if (!o ||
                (r->ns && json_object_set_new(json_object_get(o, "metadata"), "namespace",
                                              json_string(r->ns)) < 0) ||
                json_array_append_new(list, o) < 0)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
    }
    if (!list)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (rc == 0 && (rc = eng_target_health(kt->target, &h, list, err)) == 0 && !h.healthy &&
        !(*msg_out = core_sprintf("health check failed after %.1fs: %s",
                                  (double)(core_mono_now() - start) / 1000.0,
                                  h.message ? h.message : "not ready")))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    eng_health_dispose(&h);
    json_decref(list);
    return rc;
}

static int set_str(json_t *st, const char *key, const char *val, berth_error **err)
{
    if (json_object_set_new(st, key, json_string(val)) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

/*
 * Record a drift correction (drift from eng_kustomization_drift_json, taken) as the berth
 * extension status.lastDriftCorrection {time, revision, count, objects}; it stays until the
 * next correction replaces it.
 */
static int set_drift(json_t *st, json_t *drift, const char *revision, int64_t now_ms,
                     berth_error **err)
{
    char ts[32];
    json_t *d;

    core_time_rfc3339(ts, now_ms / 1000);
    d = json_pack("{s:s, s:s, s:O, s:O}", "time", ts, "revision", revision, "count",
                  json_object_get(drift, "count"), "objects", json_object_get(drift, "objects"));
    json_decref(drift);
    if (!d || json_object_set_new(st, "lastDriftCorrection", d) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

/* Flux's Ready message, plus the last drift correction while it is of the applied revision. */
char *eng_kustomization_ready_message(const json_t *st, const char *revision)
{
    json_t *d = json_object_get(st, "lastDriftCorrection");
    const char *drev = json_string_value(json_object_get(d, "revision"));
    const char *dtime = json_string_value(json_object_get(d, "time"));
    json_int_t n = json_integer_value(json_object_get(d, "count"));

    if (!drev || !dtime || strcmp(drev, revision) != 0)
        return core_sprintf("Applied revision: %s", revision);
    return core_sprintf("Applied revision: %s; drift corrected at %s: %lld object(s) restored",
                        revision, dtime, (long long)n);
}

int eng_kustomization_reconcile(eng_ctx *ctx, const eng_kustomization *ks, bool *ready_out,
                                berth_error **err)
{
    const char *ns = ks->meta.ns, *name = ks->meta.name;
    eng_inventory old_inv = ENG_INVENTORY_INIT, inv = ENG_INVENTORY_INIT;
    json_t *old = NULL, *st = NULL, *src = NULL, *objects = NULL, *drift = NULL;
    char *msg = NULL, *root = NULL, *changes = NULL, *prune_err = NULL;
    const char *reason = NULL, *revision = NULL, *apath;
    eng_ks_target kt = {0};
    berth_error *e = NULL;
    int rc;

    *ready_out = false;
    eng_inventory_init(&old_inv);
    eng_inventory_init(&inv);
    eng_reconcile_mark(ENG_KIND_KS, ns, name, false);
    if ((rc = eng_state_status_read(&old, ctx->state, ENG_KIND_KS, ns, name, err)) < 0)
        goto out;
    if (!(st = old ? json_deep_copy(old) : eng_status_new())) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    json_object_del(st, "suspended");
    if (ks->suspend || eng_suspend_override(ctx->state, ENG_KIND_KS, ns, name)) {
        if (json_object_set_new(st, "suspended", json_true()) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        eng_log("info", "suspended", ENG_KIND_KS, ns, name, "reconciliation is suspended");
        *ready_out = true;
        rc = eng_status_commit(ctx, ENG_KIND_KS, ns, name, old, st, err);
        goto out;
    }

    /* 1. the source artifact */
    if (strcmp(ks->source_ref.kind, ENG_KIND_OCIREPO) != 0) {
        reason = R_ARTIFACT;
        msg = core_sprintf("source kind '%s' is not supported", ks->source_ref.kind);
        goto status;
    }
    if ((rc = source_status(&src, ctx, &ks->source_ref, err)) < 0)
        goto out;
    revision = eng_status_str(src, "artifact", "revision");
    apath = eng_status_str(src, "artifact", "path");
    if (!src || !revision || !apath) {
        reason = R_ARTIFACT;
        msg = core_sprintf("Source artifact not found: %s '%s/%s' has no stored artifact",
                           ks->source_ref.kind, ks->source_ref.ns, ks->source_ref.name);
        goto status;
    }
    if (!eng_status_is_ready(src))
        eng_log("info", "source-not-ready", ENG_KIND_KS, ns, name,
                "source is not ready, using its last artifact '%s'", revision);
    if (!(root = core_sprintf("%s/artifacts/%s", eng_state_path(ctx->state), apath))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!core_fs_is_dir(root) && core_fs_exists(root)) { /* layerSelector.operation copy */
        char *tree = NULL;
        if (copy_artifact_tree(&tree, root, &e) < 0) {
            char *t = berth_error_text(e);
            reason = R_ARTIFACT;
            msg =
                core_sprintf("failed to extract artifact '%s': %s", apath, t ? t : "unknown error");
            free(t);
            goto status;
        }
        core_free(root);
        root = tree;
    }
    if (!core_fs_is_dir(root)) {
        reason = R_ARTIFACT;
        msg = core_sprintf("Source artifact not found: '%s' is missing from storage", apath);
        goto status;
    }
    /* 2. dependencies */
    if ((rc = check_dependencies(&msg, ctx, ks, err)) < 0)
        goto out;
    if (msg) {
        reason = R_DEPENDENCY;
        goto status;
    }
    if ((rc = set_str(st, "lastAttemptedRevision", revision, err)) < 0)
        goto out;
    /* 3. build */
    if (build(&objects, ctx, ks, root, &e) < 0) {
        char *t = berth_error_text(e);
        reason = R_BUILD;
        msg = core_sprintf("kustomize build failed: %s", t ? t : "unknown error");
        free(t);
        goto status;
    }
    /* 4. the cluster (spec.kubeConfig), apply and prune */
    if (eng_ks_target_resolve(&kt, ctx, ks, &e) < 0) {
        char *t = berth_error_text(e);
        reason = R_FAILED;
        msg = core_sprintf("%s", t ? t : "unknown error");
        free(t);
        goto status;
    }
    if ((rc = eng_state_inventory_read(&old_inv, ctx->state, ns, name, err)) < 0)
        goto out;
    if (apply(&inv, &changes, &drift, &prune_err, ctx, ks, &kt, objects, &old_inv, &e) < 0) {
        char *t = berth_error_text(e);
        reason = R_FAILED;
        msg = core_sprintf("apply failed: %s", t ? t : "unknown error");
        free(t);
        goto status;
    }
    inv.prune = eng_ks_prune_on_removal(ks) ? ENG_INV_PRUNE_ON : ENG_INV_PRUNE_OFF;
    inv.wait_ms = ks->deletion_policy == ENG_DELETION_WAIT_FOR_TERMINATION ? ks->timeout_ms : 0;
    /* the kubeconfig the objects went with is kept before the inventory that names its cluster */
    if (kt.cluster && (rc = eng_state_kubeconfig_write(ctx->state, ns, name, kt.kubeconfig.ptr,
                                                       kt.kubeconfig.len, err)) < 0)
        goto out;
    if (!inventory_equal(&inv, &old_inv) &&
        (rc = eng_state_inventory_write(ctx->state, ns, name, &inv, err)) < 0)
        goto out;
    if (!kt.cluster && old_inv.cluster &&
        (rc = eng_state_kubeconfig_remove(ctx->state, ns, name, err)) < 0)
        goto out;
    if (drift) { /* the apply corrected it, whatever prune and health say next */
        rc = set_drift(st, drift, revision, ctx->now_ms, err);
        drift = NULL; /* taken, also on failure */
        if (rc < 0)
            goto out;
    }
    if (changes) {
        eng_emit(ctx, "info", ENG_KIND_KS, ns, name, R_SUCCEEDED, changes);
        for (char *line = changes, *nl; line && *line; line = nl) {
            if ((nl = strchr(line, '\n')))
                *nl++ = '\0';
            eng_log("info", "applied", ENG_KIND_KS, ns, name, "%s", line);
        }
    }
    if ((rc = eng_status_set_inventory(st, &inv, err)) < 0)
        goto out;
    if (prune_err) {
        reason = R_PRUNE;
        msg = core_sprintf("%s", prune_err);
        goto status;
    }
    /* 5. health */
    if (check_health(&msg, &kt, ks, objects, &e) < 0) {
        char *t;
        if (kt.where)
            core_error_wrap(&e, "%s", kt.where);
        t = berth_error_text(e);
        msg = core_sprintf("health check failed: %s", t ? t : "unknown error");
        free(t);
    }
    if (msg) {
        reason = R_HEALTH;
        goto status;
    }
    if (!eng_status_str(old, "lastAppliedRevision", NULL) ||
        strcmp(eng_status_str(old, "lastAppliedRevision", NULL), revision) != 0)
        ctx->changed = true;
    if ((rc = set_str(st, "lastAppliedRevision", revision, err)) < 0)
        goto out;
    if (!(msg = eng_kustomization_ready_message(st, revision))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }

status:
    if (!msg) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    eng_status_remove_condition(st, "Reconciling");
    if (reason) {
        eng_log(strcmp(reason, R_DEPENDENCY) == 0 ? "info" : "error", reason, ENG_KIND_KS, ns, name,
                "%s", msg);
        if ((rc = eng_cond(st, "Ready", "False", reason, msg, ctx->now_ms, err)) < 0)
            goto out;
        if (!old || eng_status_is_ready(old))
            eng_emit(ctx, "error", ENG_KIND_KS, ns, name, reason, msg);
    } else {
        if ((rc = eng_cond(st, "Ready", "True", R_SUCCEEDED, msg, ctx->now_ms, err)) < 0)
            goto out;
        if (!old || !eng_status_is_ready(old))
            eng_log("info", "ready", ENG_KIND_KS, ns, name, "%s", msg);
        *ready_out = true;
    }
    rc = eng_status_commit(ctx, ENG_KIND_KS, ns, name, old, st, err);
out:
    eng_ks_target_dispose(&kt);
    json_decref(drift);
    berth_error_free(e);
    eng_inventory_dispose(&old_inv);
    eng_inventory_dispose(&inv);
    json_decref(objects);
    json_decref(src);
    json_decref(old);
    json_decref(st);
    core_free(msg);
    core_free(root);
    core_free(changes);
    free(prune_err);
    return rc;
}
