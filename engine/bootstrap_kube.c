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
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
