/*
 * engine/bootstrap_kube.c: the cluster half of `berth bootstrap --kube` (include/berth/
 * bootstrap.h, docs/deploy.md "Bootstrap a cluster"): what the artifact's berth-system/ holds
 * for a cluster, and the first install.
 *
 * Design: the install is the Kustomization berth-system/berth-system run once by hand. The
 * staged tree is built as that Kustomization builds it (eng_build of "./") and applied through
 * the Kubernetes target with that Kustomization's scope, so every object carries the owner
 * labels and the field manager ("berth") the controller will use: when `berth run --kube`
 * reconciles the Kustomization for the first time, its plan finds every object unchanged, and
 * since the Kustomization's status holds no inventory yet, nothing is stale and nothing is
 * pruned. bootstrap itself never prunes. The CRDs and the Namespace are annotated
 * kustomize.toolkit.fluxcd.io/prune: disabled, so a push that drops berth-system/ cannot take
 * every Flux object of the cluster with it (deleting a CRD deletes all its objects).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/artifact.h>
#include <berth/bootstrap.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/deploy.h"
#include "engine/kube.h"
#include "engine/target.h"

#define NAME BERTH_BOOTSTRAP_NAME
#define HEALTH_ROUND_MS 3000 /* how often progress is reported while waiting */
#define HEALTH_SLACK_MS 1500 /* what a health round may overrun its timeout by */

static int nomem(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ the artifact */

int eng_bootstrap_image_check(const char *image, berth_error **err)
{
    const char *at = strchr(image, '@');
    if (!image[0] || strpbrk(image, "\"\\\n\r\t '#") || image[0] == ':' || image[0] == '@' ||
        image[strlen(image) - 1] == ':' || (at && !core_str_has_prefix(at + 1, "sha256:")))
        return core_error_set(err, BERTH_EINVAL,
                              "--image \"%s\": want NAME[:TAG] or NAME@sha256:DIGEST", image);
    return 0;
}

/* Split image into name and tag or digest (pointers into buf). */
static void image_split(char *buf, const char **name, const char **tag, const char **digest)
{
    char *at = strchr(buf, '@'), *slash, *colon;
    *tag = *digest = NULL;
    if (at) {
        *at = '\0';
        *digest = at + 1;
    }
    slash = strrchr(buf, '/');
    colon = strrchr(buf, ':');
    if (colon && (!slash || colon > slash)) { /* not the registry's port */
        *colon = '\0';
        *tag = colon + 1;
    }
    *name = buf;
}

int eng_bootstrap_kube_kfile(berth_buf *out, const berth_bootstrap_opts *o)
{
    char *img = core_strdup(o->image ? o->image : BERTH_BOOTSTRAP_IMAGE);
    const char *name, *tag, *digest;
    int rc;

    if (!img)
        return BERTH_ENOMEM;
    image_split(img, &name, &tag, &digest);
    rc = berth_buf_printf(
        out,
        "# Written by berth bootstrap --kube: berth's own install (install/ is deploy/ of\n"
        "# berth %s) and the sync objects. To upgrade berth, change the image below and push\n"
        "# (docs/deploy.md); berth applies it to itself.\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - install\n  - sync.yaml\n%s"
        "images:\n  - name: berth\n    newName: \"%s\"\n",
        BERTH_VERSION, o->pubkey_pem ? "  - verify-key.yaml\n" : "", name);
    if (rc == 0 && tag)
        rc = berth_buf_printf(out, "    newTag: \"%s\"\n", tag);
    if (rc == 0 && digest)
        rc = berth_buf_printf(out, "    digest: \"%s\"\n", digest);
    /* never pruned: deleting a CRD deletes every object of its kind, the Namespace everything
     * in it; `berth uninstall --kube` says how to remove them by hand */
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = berth_buf_printf(out,
                              "%s  - target:\n      kind: %s\n    patch: |\n"
                              "      apiVersion: %s\n      kind: %s\n"
                              "      metadata:\n        name: any\n        annotations:\n"
                              "          kustomize.toolkit.fluxcd.io/prune: disabled\n",
                              i == 0 ? "patches:\n" : "",
                              i == 0 ? "CustomResourceDefinition" : "Namespace",
                              i == 0 ? "apiextensions.k8s.io/v1" : "v1",
                              i == 0 ? "CustomResourceDefinition" : "Namespace");
    if (rc == 0 && o->image_pull_secret)
        rc = berth_buf_printf(out,
                              "  - target:\n      kind: Deployment\n      name: berth\n"
                              "    patch: |\n      apiVersion: apps/v1\n      kind: Deployment\n"
                              "      metadata:\n        name: berth\n"
                              "      spec:\n        template:\n          spec:\n"
                              "            imagePullSecrets:\n              - name: %s\n",
                              o->image_pull_secret);
    core_free(img);
    return rc;
}

int eng_bootstrap_kube_stage(const char *sys_dir, berth_error **err)
{
    char *path = NULL, *slash;
    int rc = 0;

    for (const eng_deploy_file *f = eng_deploy_kube_files; rc == 0 && f->path; f++) {
        if (!(path = core_sprintf("%s/install/%s", sys_dir, f->path)))
            return nomem(err);
        slash = strrchr(path, '/');
        *slash = '\0';
        if ((rc = core_fs_mkdirs(path, 0755, err)) == 0) {
            *slash = '/';
            if (unlink(path) != 0 && errno != ENOENT)
                rc = core_error_errno(err, errno, "replacing \"%s\"", path);
            else
                rc = core_fs_write_atomic(path, f->text, strlen(f->text), 0644, err);
        }
        core_free(path);
    }
    return rc;
}

/* ------------------------------------------------------------------ the install */

void berth_bootstrap_objects_free(berth_bootstrap_object *objs, size_t n)
{
    for (size_t i = 0; objs && i < n; i++) {
        core_free(objs[i].subject);
        core_free(objs[i].action);
    }
    core_free(objs);
}

static int objects_from_plan(berth_bootstrap_object **out, size_t *n_out, const eng_plan *plan,
                             berth_error **err)
{
    berth_bootstrap_object *o = core_calloc(plan->len + 1, sizeof(*o));
    size_t n = 0;

    if (!o)
        return nomem(err);
    for (size_t i = 0; i < plan->len; i++) {
        const eng_change *c = &plan->changes[i];
        if (c->action == ENG_CHANGE_DELETE) /* an empty inventory: never, but not ours to say */
            continue;
        o[n].subject = core_strdup(c->subject);
        o[n].action = core_strdup(eng_change_action_name(c->action));
        if (!o[n].subject || !o[n++].action) {
            berth_bootstrap_objects_free(o, n);
            return nomem(err);
        }
    }
    *out = o;
    *n_out = n;
    return 0;
}

/* The objects bootstrap waits for: the CRDs and the Deployment berth-system/berth. */
static int watched_objects(json_t **out, const json_t *objects, berth_error **err)
{
    json_t *list = json_array(), *o;
    size_t i;

    if (!list)
        return nomem(err);
    json_array_foreach(objects, i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const json_t *md = json_object_get(o, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        bool crd = kind && strcmp(kind, "CustomResourceDefinition") == 0;
        bool dep = kind && strcmp(kind, "Deployment") == 0 && name && strcmp(name, "berth") == 0 &&
                   ns && strcmp(ns, NAME) == 0;
        if ((crd || dep) && json_array_append(list, o) < 0) {
            json_decref(list);
            return nomem(err);
        }
    }
    *out = list;
    return 0;
}

/* Wait for health in rounds, reporting what is not ready after each; ETIMEOUT at the end. */
static int wait_ready(eng_target *t, const json_t *list, const berth_bootstrap_kube_opts *ko,
                      int64_t start, berth_error **err)
{
    int64_t deadline = start + ko->timeout_ms;
    char *last = NULL;
    int rc = 0;

    for (;;) {
        eng_target_scope scope = {.ks_ns = NAME, .ks_name = NAME};
        eng_health h = {.healthy = false};
        int64_t left = deadline - core_mono_now();
        const char *what;

        scope.timeout_ms = left < HEALTH_ROUND_MS ? (left > 0 ? left : 1) : HEALTH_ROUND_MS;
        if ((rc = eng_target_set_scope(t, &scope, err)) < 0 ||
            (rc = eng_target_health(t, &h, list, err)) < 0 || h.healthy) {
            eng_health_dispose(&h);
            break;
        }
        what = h.message ? h.message : "not ready";
        if (core_str_has_prefix(what, "timeout waiting for: "))
            what += strlen("timeout waiting for: ");
        /* a round overruns its timeout by up to a poll interval and a read: stop before */
        if (!core_str_has_prefix(h.message ? h.message : "", "timeout") ||
            core_mono_now() + HEALTH_SLACK_MS >= deadline) {
            rc = core_error_set(err,
                                core_str_has_prefix(h.message ? h.message : "", "timeout")
                                    ? BERTH_ETIMEOUT
                                    : BERTH_ERROR,
                                "berth is not ready after %.1fs: %s",
                                (double)(core_mono_now() - start) / 1000.0, what);
            eng_health_dispose(&h);
            break;
        }
        if (ko->progress && (!last || strcmp(last, what) != 0)) {
            char *line = core_sprintf("waiting for %s", what);
            if (line)
                ko->progress(ko->payload, line);
            core_free(line);
        }
        core_free(last);
        last = core_strdup(what);
        eng_health_dispose(&h);
    }
    core_free(last);
    return rc;
}

int berth_bootstrap_kube_check(const berth_bootstrap_kube_opts *ko, berth_error **err)
{
    eng_kube_config *cfg = NULL;
    eng_kube_resp r = {0};
    eng_kube *k = NULL;
    char *server = NULL, *source = NULL;
    int rc;

    BERTH_ARG_CHECK(ko);
    if ((rc = eng_kube_config_load(&cfg, ko->kubeconfig, ko->context, err)) < 0)
        return rc;
    server = core_strdup(cfg->server ? cfg->server : "");
    source = core_strdup(cfg->source ? cfg->source : "");
    if (!server || !source) {
        eng_kube_config_free(cfg);
        rc = nomem(err);
        goto out;
    }
    if ((rc = eng_kube_new(&k, cfg, err)) < 0 ||
        (rc = eng_kube_do(k, &r, "GET", "/version", NULL, NULL, 0, err)) < 0 ||
        (r.code != 200 && (rc = eng_kube_resp_error(err, &r, "GET /version")) < 0))
        core_error_wrap(err, "Kubernetes API server %s (%s)", server, source);
out:
    eng_kube_resp_dispose(&r);
    eng_kube_free(k);
    core_free(server);
    core_free(source);
    return rc;
}

int berth_bootstrap_kube_install(berth_bootstrap_object **objs_out, size_t *n_out,
                                 const char *stage_dir, const berth_bootstrap_kube_opts *ko,
                                 berth_error **err)
{
    eng_target_scope scope = {.ks_ns = NAME, .ks_name = NAME};
    eng_inventory none = ENG_INVENTORY_INIT, inv = ENG_INVENTORY_INIT;
    json_t *objects = NULL, *list = NULL;
    eng_target *t = NULL;
    int64_t start = core_mono_now();
    eng_plan plan;
    int rc;

    BERTH_ARG_CHECK(objs_out && n_out && stage_dir && ko);
    *objs_out = NULL;
    *n_out = 0;
    eng_plan_init(&plan);
    if (ko->version != BERTH_BOOTSTRAP_KUBE_OPTS_VERSION || ko->timeout_ms <= 0)
        return core_error_set(err, BERTH_EINVAL, "bootstrap kube options: bad version or timeout");
    if ((rc = eng_build(&objects, stage_dir, ".", NULL, err)) < 0) {
        core_error_wrap(err, "building Kustomization %s/%s", NAME, NAME);
        goto out;
    }
    if ((rc = eng_target_kube_new(&t, ko->kubeconfig, ko->context, err)) < 0 ||
        (rc = eng_target_set_scope(t, &scope, err)) < 0)
        goto out;
    /* plan checks every object against the cluster (dry-run) before anything is written */
    if ((rc = eng_target_plan(t, &plan, objects, &none, err)) < 0 ||
        (rc = eng_target_apply(t, &inv, &plan, err)) < 0) {
        core_error_wrap(err, "installing into the cluster");
        goto out;
    }
    if ((rc = objects_from_plan(objs_out, n_out, &plan, err)) < 0 ||
        (rc = watched_objects(&list, objects, err)) < 0)
        goto out;
    rc = wait_ready(t, list, ko, start, err);
out:
    json_decref(list);
    json_decref(objects);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    eng_target_free(t);
    return rc;
}

/* ------------------------------------------------------------------ uninstall */

#define SYNC_OCI "source.toolkit.fluxcd.io/v1", "OCIRepository"
#define SYNC_KS "kustomize.toolkit.fluxcd.io/v1", "Kustomization"
#define GONE_POLL_MS 500

/* One request on path (from apiVersion, kind, ns, name); *code_out the HTTP status (404 ok). */
static int kube_call(long *code_out, eng_kube *k, const char *method, const char *av,
                     const char *kind, const char *ns, const char *name, const char *query,
                     const char *ctype, const char *body, berth_error **err)
{
    eng_kube_mapping m = {0};
    eng_kube_resp r = {0};
    char *path = NULL, *url = NULL;
    int rc = eng_kube_map(&m, k, av, kind, err);

    *code_out = 404;
    if (rc == BERTH_ENOTFOUND && err) { /* the kind is not served: its CRD, the object gone */
        berth_error_free(*err);
        *err = NULL;
    }
    if (rc < 0)
        return rc == BERTH_ENOTFOUND ? 0 : rc;
    if (!(path = eng_kube_path(&m, ns, name)) ||
        !(url = core_sprintf("%s%s%s", path, query ? "?" : "", query ? query : "")))
        rc = nomem(err);
    else if ((rc = eng_kube_do(k, &r, method, url, ctype, body, body ? strlen(body) : 0, err)) ==
                 0 &&
             r.code >= 300 && r.code != 404)
        rc = eng_kube_resp_error(err, &r, path);
    if (rc == 0)
        *code_out = r.code;
    eng_kube_resp_dispose(&r);
    eng_kube_mapping_dispose(&m);
    core_free(path);
    core_free(url);
    return rc;
}

/* Suspend the sync CRs: a berth still running then keeps every object when they go. */
static int suspend_sync(eng_kube *k, berth_error **err)
{
    static const char patch[] = "{\"spec\":{\"suspend\":true}}";
    long code;
    int rc;
    if ((rc = kube_call(&code, k, "PATCH", SYNC_KS, NAME, NAME, NULL,
                        "application/merge-patch+json", patch, err)) < 0 ||
        (rc = kube_call(&code, k, "PATCH", SYNC_OCI, NAME, NAME, NULL,
                        "application/merge-patch+json", patch, err)) < 0)
        return core_error_wrap(err, "suspending the sync objects %s/%s", NAME, NAME);
    return 0;
}

/* Delete the berth Deployment in the foreground and wait until it (with its pods) is gone. */
static int stop_berth(berth_bootstrap_state *st, eng_kube *k, int64_t deadline, berth_error **err)
{
    static const char body[] = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                               "\"propagationPolicy\":\"Foreground\"}";
    long code;
    int rc = kube_call(&code, k, "DELETE", "apps/v1", "Deployment", NAME, "berth", NULL,
                       "application/json", body, err);

    *st = code == 404 ? BERTH_BOOTSTRAP_ABSENT : BERTH_BOOTSTRAP_REMOVED;
    while (rc == 0 && code != 404) {
        if (core_mono_now() >= deadline)
            return core_error_set(err, BERTH_ETIMEOUT,
                                  "Deployment/%s/berth: still there (its pods terminating?)", NAME);
        core_sleep_ms(GONE_POLL_MS);
        rc = kube_call(&code, k, "GET", "apps/v1", "Deployment", NAME, "berth", NULL, NULL, NULL,
                       err);
    }
    return rc;
}

/* The inventory of what uninstall removes: deploy/ without the CRDs and the Namespace, the
 * sync objects and the key Secret. */
static int uninstall_inventory(eng_inventory *inv, berth_error **err)
{
    static const char *const sync_ids[] = {
        NAME "_" NAME "_kustomize.toolkit.fluxcd.io_Kustomization",
        NAME "_" NAME "_source.toolkit.fluxcd.io_OCIRepository", NAME "_" NAME "-verify__Secret"};
    json_t *objects = NULL, *o;
    char *dir = NULL;
    const char *tmp = getenv("TMPDIR");
    size_t i;
    int rc;

    if ((rc = core_fs_mkdtemp(&dir, tmp && *tmp ? tmp : "/tmp", ".berth-uninstall-", err)) < 0)
        return rc;
    if ((rc = eng_bootstrap_kube_stage(dir, err)) < 0 ||
        (rc = eng_build(&objects, dir, "install", NULL, err)) < 0)
        goto out;
    for (i = 0; i < 3 && rc == 0; i++)
        rc = eng_inventory_add(inv, sync_ids[i], "v1", NULL, err);
    json_array_foreach(objects, i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        char *id = NULL, *version = NULL;
        if (rc < 0 || !kind || strcmp(kind, "CustomResourceDefinition") == 0 ||
            strcmp(kind, "Namespace") == 0 || strcmp(kind, "Deployment") == 0)
            continue;
        if ((rc = eng_object_id(&id, &version, o, i, err)) == 0)
            rc = eng_inventory_add(inv, id, version, NULL, err);
        core_free(id);
        core_free(version);
    }
out:
    json_decref(objects);
    berth_bootstrap_unstage(dir);
    return rc;
}

static int add_object(berth_bootstrap_object **objs, size_t *n, const char *subject,
                      const char *action, berth_error **err)
{
    berth_bootstrap_object *grown = core_realloc(*objs, (*n + 1) * sizeof(**objs));
    if (!grown)
        return nomem(err);
    *objs = grown;
    grown[*n].subject = core_strdup(subject);
    grown[*n].action = core_strdup(action);
    if (!grown[(*n)++].subject || !grown[*n - 1].action)
        return nomem(err);
    return 0;
}

int berth_bootstrap_kube_uninstall(berth_bootstrap_object **objs_out, size_t *n_out,
                                   const berth_bootstrap_kube_opts *ko, berth_error **err)
{
    eng_target_scope scope = {.ks_ns = NAME, .ks_name = NAME};
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_kube_config *cfg = NULL;
    berth_bootstrap_state dep = BERTH_BOOTSTRAP_ABSENT;
    eng_kube *k = NULL;
    eng_target *t = NULL;
    eng_plan pruned;
    int64_t deadline = core_mono_now() + ko->timeout_ms;
    int rc;

    BERTH_ARG_CHECK(objs_out && n_out && ko);
    *objs_out = NULL;
    *n_out = 0;
    eng_plan_init(&pruned);
    if ((rc = uninstall_inventory(&inv, err)) < 0 ||
        (rc = eng_kube_config_load(&cfg, ko->kubeconfig, ko->context, err)) < 0 ||
        (rc = eng_kube_new(&k, cfg, err)) < 0 ||
        (rc = eng_target_kube_new(&t, ko->kubeconfig, ko->context, err)) < 0 ||
        (rc = eng_target_set_scope(t, &scope, err)) < 0)
        goto out;
    if ((rc = suspend_sync(k, err)) < 0 || (rc = stop_berth(&dep, k, deadline, err)) < 0 ||
        (rc = add_object(objs_out, n_out, "Deployment/" NAME "/berth",
                         dep == BERTH_BOOTSTRAP_ABSENT ? "absent" : "deleted", err)) < 0)
        goto out;
    /* the target's prune: only objects with this Kustomization's owner labels are deleted */
    rc = eng_target_prune(t, &pruned, &inv, err);
    for (size_t i = 0; i < pruned.len && rc != BERTH_ENOMEM; i++) {
        const eng_change *c = &pruned.changes[i];
        int arc = add_object(objs_out, n_out, c->subject,
                             c->action == ENG_CHANGE_SKIPPED  ? "skipped"
                             : c->action == ENG_CHANGE_DELETE ? "deleted"
                                                              : "unknown",
                             NULL);
        if (arc < 0)
            rc = nomem(err);
    }
out:
    eng_plan_dispose(&pruned);
    eng_inventory_dispose(&inv);
    eng_target_free(t);
    eng_kube_free(k);
    return rc;
}

/* ------------------------------------------------------------------ install only */

/* The artifact's berth-system/sync.yaml follows o->url:o->tag (the lines berth_bootstrap_sync_yaml
 * writes), and berth-system/install/ exists. */
static int fetched_check(const char *dir, const berth_oci_ref *ref, const berth_bootstrap_opts *o,
                         berth_error **err)
{
    char *sync = core_sprintf("%s/" NAME "/sync.yaml", dir);
    char *inst = core_sprintf("%s/" NAME "/install", dir);
    char *url_line = core_sprintf("  url: \"%s\"\n", o->url);
    char *tag_line = core_sprintf("    tag: \"%s\"\n", o->tag);
    berth_buf text = BERTH_BUF_INIT;
    int rc = 0;

    if (!sync || !inst || !url_line || !tag_line)
        rc = nomem(err);
    else if (!core_fs_is_dir(inst) || core_fs_read_file(&text, sync, 1u << 20, NULL) < 0)
        rc = core_error_set(err, BERTH_EINVAL,
                            "%s/%s:%s is not a cluster bootstrap artifact (no %s/install/ or "
                            "%s/sync.yaml): push it with berth bootstrap --kube --path=DIR",
                            ref->registry, ref->repository, o->tag, NAME, NAME);
    else if (!text.ptr || !strstr(text.ptr, url_line) || !strstr(text.ptr, tag_line))
        rc = core_error_set(err, BERTH_EINVAL,
                            "%s/%s:%s: its %s/sync.yaml does not follow %s:%s (it was pushed for "
                            "another registry or tag); push it for this one with berth bootstrap "
                            "--kube --push-only",
                            ref->registry, ref->repository, o->tag, NAME, o->url, o->tag);
    berth_buf_dispose(&text);
    core_free(sync);
    core_free(inst);
    core_free(url_line);
    core_free(tag_line);
    return rc;
}

int berth_bootstrap_kube_fetch(char **dir_out, berth_oci_client *c, const berth_oci_ref *ref,
                               const berth_bootstrap_opts *opts, const char *parent,
                               berth_error **err)
{
    berth_pull_result res = {.source = NULL};
    char *dir = NULL;
    int rc;

    BERTH_ARG_CHECK(dir_out && c && ref && opts && opts->url && opts->tag);
    *dir_out = NULL;
    if (!parent)
        parent = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    if ((rc = core_fs_mkdtemp(&dir, parent, ".berth-bootstrap-", err)) < 0)
        return rc;
    if ((rc = berth_artifact_pull(&res, c, ref, dir, NULL, NULL, err)) < 0 ||
        (rc = fetched_check(dir, ref, opts, err)) < 0) {
        berth_pull_result_dispose(&res);
        berth_bootstrap_unstage(dir);
        return rc;
    }
    berth_pull_result_dispose(&res);
    *dir_out = dir;
    return 0;
}
