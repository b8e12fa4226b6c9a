/*
 * engine/target_kube.c: the Kubernetes target. It applies a Kustomization's objects with
 * server-side apply as kustomize-controller does (spec/engine.md §3): ordered by Flux's kind
 * ranks, in stages (CRDs, Namespaces and ClusterRoles; then *Class kinds; then the rest), with
 * drift found by a dry-run apply compared with the live object, kubectl's field managers taken
 * over, immutable-field errors turned into a recreate under force, prune through the inventory
 * limited to objects carrying this Kustomization's owner labels, and health through kstatus.
 *
 * Design: plan does every check that can fail before anything is written: each object is
 * mapped through discovery (or through a CRD of the same set), namespaced objects must have a
 * namespace, and every object that can be dry-run is; so a bad object fails the run before the
 * first write and nothing is pruned. Objects that cannot be dry-run yet (a CR whose CRD, or an
 * object whose Namespace, is created by this same set) are planned as creates. apply then
 * writes stage by stage, waiting for new CRDs to be Established and refreshing discovery
 * between stages. The inventory digest is the sha256 of the object as sent, so drift (the
 * live object differs while the desired one did not change) is told apart from a new revision.
 */
#include "engine/kube.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kstatus.h"

#define OWNER_NAME "kustomize.toolkit.fluxcd.io/name"
#define OWNER_NS "kustomize.toolkit.fluxcd.io/namespace"
#define K_RECONCILE "kustomize.toolkit.fluxcd.io/reconcile"
#define K_SSA "kustomize.toolkit.fluxcd.io/ssa"
#define K_FORCE "kustomize.toolkit.fluxcd.io/force"
#define K_PRUNE "kustomize.toolkit.fluxcd.io/prune"
#define STAGE_WAIT_MS 60000
#define STAGE_POLL_MS 500
#define HEALTH_POLL_MS 1000
#define DELETE_POLL_MS 500
#define FLUX_FIELD_MANAGER "kustomize-controller"
#define Q_APPLY "fieldManager=" ENG_KUBE_FIELD_MANAGER "&force=true"

typedef struct kube_target {
    eng_target base; /* first: the vtable */
    eng_kube *k;
    char *ks_ns, *ks_name, *sa;
    char *server; /* the API server's URL, for messages and the inventory's cluster */
    bool force;
    int64_t timeout_ms;
} kube_target;

/* ---------------------------------------------------------------- ordering */

static const char *const ranked[] = {"CustomResourceDefinition",
                                     "Namespace",
                                     "ClusterRole",
                                     "ClusterClass",
                                     "RuntimeClass",
                                     "PriorityClass",
                                     "StorageClass",
                                     "VolumeSnapshotClass",
                                     "IngressClass",
                                     "GatewayClass",
                                     "ClusterRoleBinding",
                                     "ResourceQuota",
                                     "ServiceAccount",
                                     "Role",
                                     "RoleBinding",
                                     "ConfigMap",
                                     "Secret",
                                     "Service",
                                     "LimitRange",
                                     "Deployment",
                                     "StatefulSet",
                                     "CronJob",
                                     "PodDisruptionBudget"};

int eng_kube_kind_rank(const char *kind)
{
    const size_t n = sizeof(ranked) / sizeof(ranked[0]);
    if (!kind)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(kind, ranked[i]) == 0)
            return (int)i - (int)n;
    if (strcmp(kind, "MutatingWebhookConfiguration") == 0)
        return 1;
    if (strcmp(kind, "ValidatingWebhookConfiguration") == 0)
        return 2;
    return 0;
}

int eng_kube_stage(const char *group, const char *kind)
{
    if (!kind)
        return 3;
    if ((strcmp(kind, "CustomResourceDefinition") == 0 &&
         strcmp(group, "apiextensions.k8s.io") == 0) ||
        (strcmp(kind, "Namespace") == 0 && group[0] == '\0') ||
        (strcmp(kind, "ClusterRole") == 0 && strcmp(group, "rbac.authorization.k8s.io") == 0))
        return 1;
    return core_str_has_suffix(kind, "Class") ? 2 : 3;
}

static const char *jstr(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* The group of an apiVersion into buf ("" for core). */
static const char *group_of(char *buf, size_t cap, const char *av)
{
    const char *slash = av ? strchr(av, '/') : NULL;
    size_t n = slash ? (size_t)(slash - av) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, av ? av : "", n);
    buf[n] = '\0';
    return buf;
}

int eng_kube_compare(const json_t *a, const json_t *b)
{
    char ga[256], gb[256];
    const char *ka = nz(jstr(a, "kind", NULL)), *kb = nz(jstr(b, "kind", NULL));
    int ra = eng_kube_kind_rank(ka), rb = eng_kube_kind_rank(kb), c;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if ((c = strcmp(group_of(ga, sizeof(ga), jstr(a, "apiVersion", NULL)),
                    group_of(gb, sizeof(gb), jstr(b, "apiVersion", NULL)))) != 0)
        return c;
    if ((c = strcmp(ka, kb)) != 0)
        return c;
    if ((c = strcmp(nz(jstr(a, "metadata", "namespace")), nz(jstr(b, "metadata", "namespace")))))
        return c;
    return strcmp(nz(jstr(a, "metadata", "name")), nz(jstr(b, "metadata", "name")));
}

/* ---------------------------------------------------------------- object helpers */

/* Label or annotation key with value (case-insensitive) on obj. */
static bool has_flag(const json_t *obj, const char *key, const char *value)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *l = json_string_value(json_object_get(json_object_get(md, "labels"), key));
    const char *a = json_string_value(json_object_get(json_object_get(md, "annotations"), key));
    size_t n = strlen(value);
    return (l && strlen(l) == n && core_strncasecmp(l, value, n) == 0) ||
           (a && strlen(a) == n && core_strncasecmp(a, value, n) == 0);
}

static bool is_ignored(const json_t *obj)
{
    return obj && (has_flag(obj, K_RECONCILE, "disabled") || has_flag(obj, K_SSA, "Ignore"));
}

static char *subject_of(const char *kind, const char *ns, const char *name)
{
    return ns && ns[0] ? core_sprintf("%s/%s/%s", kind, ns, name)
                       : core_sprintf("%s/%s", kind, name);
}

/* An immutable-field style error (engine.md §3.6). */
static bool is_immutable(const eng_kube_resp *r)
{
    return r->code == 409 || r->code == 422 ||
           (r->message &&
            (strstr(r->message, "is immutable") || strstr(r->message, "immutable field")));
}

/* One object of a plan, prepared for the API. */
typedef struct item {
    json_t *obj; /* the prepared copy (owned) */
    const char *kind, *name, *ns, *av;
    char group[256];
    eng_kube_mapping map;
    bool mapped;     /* map is valid (else the kind comes from a CRD of this set) */
    bool namespaced; /* from discovery or the CRD's scope */
    char *id, *version, *subject;
    char digest[72];
} item;

static void item_dispose(item *it)
{
    json_decref(it->obj);
    eng_kube_mapping_dispose(&it->map);
    core_free(it->id);
    core_free(it->version);
    core_free(it->subject);
}

static int set_label(json_t *obj, const char *key, const char *val)
{
    json_t *md = json_object_get(obj, "metadata"), *labels;
    if (!json_is_object(md))
        return -1;
    if (!json_is_object(labels = json_object_get(md, "labels"))) {
        if (json_object_set_new(md, "labels", json_object()) < 0)
            return -1;
        labels = json_object_get(md, "labels");
    }
    return json_object_set_new(labels, key, json_string(val));
}

/* A CRD of objects that defines group+kind, or NULL. */
static const json_t *crd_in_set(const json_t *objects, const char *group, const char *kind)
{
    size_t i;
    json_t *o;
    json_array_foreach(objects, i, o)
    {
        const json_t *spec = json_object_get(o, "spec");
        if (strcmp(nz(jstr(o, "kind", NULL)), "CustomResourceDefinition") == 0 &&
            strcmp(nz(jstr(spec, "group", NULL)), group) == 0 &&
            strcmp(nz(jstr(spec, "names", "kind")), kind) == 0)
            return o;
    }
    return NULL;
}

/* Whether objects creates the Namespace ns. */
static bool ns_in_set(const json_t *objects, const char *ns)
{
    size_t i;
    json_t *o;
    json_array_foreach(objects, i, o)
    {
        if (strcmp(nz(jstr(o, "kind", NULL)), "Namespace") == 0 &&
            strcmp(nz(jstr(o, "apiVersion", NULL)), "v1") == 0 &&
            strcmp(nz(jstr(o, "metadata", "name")), nz(ns)) == 0)
            return true;
    }
    return false;
}

/* Copy, label and map one object; identity and digest. */
static int prepare(item *it, kube_target *t, const json_t *src, size_t index, const json_t *objects,
                   berth_error **err)
{
    json_t *md;
    char *dump = NULL, *why_text;
    berth_error *why = NULL;
    int rc;
    memset(it, 0, sizeof(*it));
    /* the checks of eng_object_id first, so the message names the object by its position */
    if ((rc = eng_object_id(&it->id, &it->version, src, index, err)) < 0)
        return rc;
    core_free(it->id);
    core_free(it->version);
    it->id = it->version = NULL;
    if (!(it->obj = json_deep_copy(src)) ||
        !json_is_object(md = json_object_get(it->obj, "metadata")))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    it->kind = jstr(it->obj, "kind", NULL);
    it->av = jstr(it->obj, "apiVersion", NULL);
    it->name = jstr(it->obj, "metadata", "name");
    group_of(it->group, sizeof(it->group), it->av);
    json_object_del(md, "managedFields");
    json_object_del(md, "resourceVersion");
    json_object_del(md, "uid");
    json_object_del(md, "creationTimestamp");
    if (strcmp(it->kind, "CustomResourceDefinition") != 0)
        json_object_del(it->obj, "status");
    if (t->ks_name && (set_label(it->obj, OWNER_NAME, t->ks_name) < 0 ||
                       set_label(it->obj, OWNER_NS, t->ks_ns) < 0))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = eng_kube_map(&it->map, t->k, it->av, it->kind, &why);
    it->ns = jstr(it->obj, "metadata", "namespace");
    if (rc == 0) {
        it->mapped = true;
        it->namespaced = it->map.namespaced;
    } else if (rc == BERTH_ENOTFOUND && crd_in_set(objects, it->group, it->kind)) {
        const json_t *crd = crd_in_set(objects, it->group, it->kind);
        it->namespaced = strcmp(nz(jstr(crd, "spec", "scope")), "Cluster") != 0;
    } else {
        char *s = subject_of(it->kind, it->ns, it->name);
        why_text = berth_error_text(why);
        berth_error_free(why);
        if (rc == BERTH_ENOTFOUND)
            core_error_set(err, rc,
                           "%s: %s: no CustomResourceDefinition for it on the cluster or in "
                           "this Kustomization",
                           s ? s : it->kind, why_text ? why_text : "unknown kind");
        else
            core_error_set(err, rc, "%s: %s", s ? s : it->kind,
                           why_text ? why_text : "discovery failed");
        free(why_text);
        core_free(s);
        return rc;
    }
    berth_error_free(why);
    if (it->namespaced && (!it->ns || !it->ns[0]))
        return core_error_set(err, BERTH_EINVAL,
                              "%s/%s namespace not specified: %s is namespaced; set "
                              "metadata.namespace or the Kustomization's targetNamespace",
                              it->kind, it->name, it->kind);
    if (!it->namespaced && it->ns) {
        json_object_del(md, "namespace");
        it->ns = NULL;
    }
    if ((rc = eng_object_id(&it->id, &it->version, it->obj, index, err)) < 0)
        return rc;
    if (!(it->subject = subject_of(it->kind, it->ns, it->name)) ||
        !(dump = json_dumps(it->obj, JSON_COMPACT | JSON_SORT_KEYS)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    core_sha256_digest(it->digest, dump, strlen(dump));
    free(dump);
    return 0;
}

/* GET the live object (*out NULL when 404). */
static int get_live(json_t **out, kube_target *t, const eng_kube_mapping *m, const char *ns,
                    const char *name, const char *subject, berth_error **err)
{
    eng_kube_resp r;
    char *path = eng_kube_path(m, ns, name);
    int rc;
    *out = NULL;
    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = eng_kube_do(t->k, &r, "GET", path, NULL, NULL, 0, err);
    core_free(path);
    if (rc < 0) {
        core_error_wrap(err, "%s", subject);
        return rc;
    }
    if (r.code == 200)
        *out = json_incref(r.body);
    else if (r.code != 404)
        rc = eng_kube_resp_error(err, &r, subject);
    eng_kube_resp_dispose(&r);
    return rc;
}

/* PATCH an apply (dry_run or real) of it->obj; the response in *r. */
static int ssa(eng_kube_resp *r, kube_target *t, const eng_kube_mapping *m, const json_t *obj,
               bool dry_run, berth_error **err)
{
    const char *ns = jstr(obj, "metadata", "namespace"), *name = jstr(obj, "metadata", "name");
    char *path = eng_kube_path(m, ns, name), *url = NULL, *body = NULL;
    int rc;
    if (path)
        url = core_sprintf("%s?%s%s", path, dry_run ? "dryRun=All&" : "", Q_APPLY);
    if (!url || !(body = json_dumps(obj, JSON_COMPACT))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else {
        rc = eng_kube_do(t->k, r, "PATCH", url, "application/apply-patch+yaml", body, strlen(body),
                         err);
    }
    core_free(path);
    core_free(url);
    free(body);
    return rc;
}

/* ---------------------------------------------------------------- drift and cleanup */

static bool map_equal(const json_t *a, const json_t *b)
{
    if (json_object_size(a) == 0 && json_object_size(b) == 0)
        return true;
    return json_equal(a, b);
}

/* engine.md §3.5.1: labels, annotations, and everything outside metadata and status. */
static bool drifted(const json_t *dry, const json_t *live)
{
    const json_t *dm = json_object_get(dry, "metadata"), *lm = json_object_get(live, "metadata");
    json_t *a, *b;
    bool eq;
    if (!nz(jstr(dry, "metadata", "resourceVersion"))[0])
        return true;
    if (!map_equal(json_object_get(dm, "labels"), json_object_get(lm, "labels")) ||
        !map_equal(json_object_get(dm, "annotations"), json_object_get(lm, "annotations")))
        return true;
    a = json_copy((json_t *)(uintptr_t)dry);
    b = json_copy((json_t *)(uintptr_t)live);
    if (!a || !b) {
        json_decref(a);
        json_decref(b);
        return true;
    }
    json_object_del(a, "metadata");
    json_object_del(a, "status");
    json_object_del(b, "metadata");
    json_object_del(b, "status");
    eq = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return !eq;
}

/* RFC 6901 escaping of one key. */
static char *pointer_key(const char *k)
{
    berth_buf b = BERTH_BUF_INIT;
    char *s;
    for (; *k; k++)
        if ((*k == '~'   ? berth_buf_puts(&b, "~0")
             : *k == '/' ? berth_buf_puts(&b, "~1")
                         : berth_buf_put(&b, k, 1)) < 0) {
            berth_buf_dispose(&b);
            return NULL;
        }
    s = core_strndup(b.ptr ? b.ptr : "", b.len);
    berth_buf_dispose(&b);
    return s;
}

/* Deep union of fieldsV1 sets (nested objects) into dst. */
static int fields_union(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)src, key, v)
    {
        json_t *d = json_object_get(dst, key);
        if (json_is_object(d) && json_is_object(v)) {
            if (fields_union(d, v) < 0)
                return -1;
        } else if (!d && json_object_set(dst, key, v) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * Entries folded into berth's: Flux's list (kubectl*, before-first-apply, our own Update), plus
 * kustomize-controller, so objects that Flux applied move to berth whole (a field Flux applied
 * and berth's source no longer has is removed, as it would be under Flux).
 */
static bool takeover_match(const json_t *e)
{
    const char *mgr = nz(jstr(e, "manager", NULL)), *op = nz(jstr(e, "operation", NULL));
    if (nz(jstr(e, "subresource", NULL))[0])
        return false;
    if (core_str_has_prefix(mgr, "kubectl") || strcmp(mgr, FLUX_FIELD_MANAGER) == 0)
        return strcmp(op, "Apply") == 0 || strcmp(op, "Update") == 0;
    return strcmp(op, "Update") == 0 &&
           (strcmp(mgr, "before-first-apply") == 0 || strcmp(mgr, ENG_KUBE_FIELD_MANAGER) == 0);
}

/* The managedFields take-over and legacy annotation removal (engine.md §3.7), NULL if none. */
static int cleanup_patch(json_t **out, const json_t *desired, const json_t *live)
{
    static const char *const annots[] = {"kubectl.kubernetes.io/last-applied-configuration",
                                         "kustomize.toolkit.fluxcd.io/checksum",
                                         "fluxcd.io/sync-checksum"};
    const json_t *md = json_object_get(live, "metadata"),
                 *mf = json_object_get(md, "managedFields");
    json_t *ops = json_array(), *keep = json_array(), *mine = NULL, *e;
    bool took = false;
    size_t i;
    int rc = 0;
    *out = NULL;
    if (!ops || !keep) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    if (has_flag(desired, K_SSA, "Merge") || has_flag(live, K_SSA, "Merge"))
        goto out;
    for (size_t a = 0; a < sizeof(annots) / sizeof(annots[0]); a++) {
        const char *section = "annotations", *key = annots[a];
        char *pk, *path;
        if (!json_object_get(json_object_get(md, section), key))
            continue;
        pk = pointer_key(key);
        path = pk ? core_sprintf("/metadata/%s/%s", section, pk) : NULL;
        if (!path ||
            json_array_append_new(ops, json_pack("{s:s,s:s}", "op", "remove", "path", path)) < 0)
            rc = BERTH_ENOMEM;
        core_free(pk);
        core_free(path);
        if (rc < 0)
            goto out;
    }
    if (json_object_get(json_object_get(md, "labels"), "fluxcd.io/sync-gc-mark") &&
        json_array_append_new(ops, json_pack("{s:s,s:s}", "op", "remove", "path",
                                             "/metadata/labels/fluxcd.io~1sync-gc-mark")) < 0) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    json_array_foreach(mf, i, e)
    {
        bool is_mine = strcmp(nz(jstr(e, "manager", NULL)), ENG_KUBE_FIELD_MANAGER) == 0 &&
                       strcmp(nz(jstr(e, "operation", NULL)), "Apply") == 0 &&
                       !nz(jstr(e, "subresource", NULL))[0];
        if (is_mine && !mine) {
            mine = json_deep_copy(e);
        } else if (takeover_match(e)) {
            took = true;
            if (!mine) {
                mine = json_deep_copy(e);
                if (mine && (json_object_set_new(mine, "manager",
                                                 json_string(ENG_KUBE_FIELD_MANAGER)) < 0 ||
                             json_object_set_new(mine, "operation", json_string("Apply")) < 0)) {
                    rc = BERTH_ENOMEM;
                    goto out;
                }
            } else {
                json_t *dst = json_object_get(mine, "fieldsV1");
                if (!dst) {
                    json_object_set_new(mine, "fieldsV1", json_object());
                    dst = json_object_get(mine, "fieldsV1");
                }
                if (!dst || fields_union(dst, json_object_get(e, "fieldsV1")) < 0) {
                    rc = BERTH_ENOMEM;
                    goto out;
                }
            }
        } else if (json_array_append(keep, e) < 0) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        if (!mine && (is_mine || takeover_match(e))) {
            rc = BERTH_ENOMEM;
            goto out;
        }
    }
    if (took &&
        (json_array_append(keep, mine) < 0 ||
         json_array_append_new(ops, json_pack("{s:s,s:s,s:O}", "op", "replace", "path",
                                              "/metadata/managedFields", "value", keep)) < 0)) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    if (json_array_size(ops) > 0)
        *out = json_incref(ops);
out:
    json_decref(ops);
    json_decref(keep);
    json_decref(mine);
    return rc;
}

static int send_cleanup(kube_target *t, const eng_kube_mapping *m, const json_t *desired,
                        const json_t *live, const char *subject, berth_error **err)
{
    json_t *ops = NULL;
    eng_kube_resp r;
    char *path = NULL, *url = NULL, *body = NULL;
    int rc;
    if ((rc = cleanup_patch(&ops, desired, live)) < 0)
        return core_error_set(err, rc, "out of memory");
    if (!ops)
        return 0;
    path = eng_kube_path(m, jstr(live, "metadata", "namespace"), jstr(live, "metadata", "name"));
    url = path ? core_sprintf("%s?fieldManager=%s", path, ENG_KUBE_FIELD_MANAGER) : NULL;
    body = json_dumps(ops, JSON_COMPACT);
    if (!url || !body) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else if ((rc = eng_kube_do(t->k, &r, "PATCH", url, "application/json-patch+json", body,
                                 strlen(body), err)) == 0) {
        if (r.code >= 300)
            rc = eng_kube_resp_error(err, &r, "taking over fields of kubectl");
        eng_kube_resp_dispose(&r);
    }
    if (rc < 0)
        core_error_wrap(err, "%s", subject);
    json_decref(ops);
    core_free(path);
    core_free(url);
    free(body);
    return rc;
}

/* ---------------------------------------------------------------- plan */

static int plan_one(kube_target *t, eng_plan *out, item *it, const json_t *objects,
                    const eng_inventory *inv, berth_error **err)
{
    const eng_inv_entry *rec = eng_inventory_find(inv, it->id);
    json_t *live = NULL, *ops = NULL;
    eng_kube_resp r = {0};
    eng_change_action action;
    eng_drift drift = ENG_DRIFT_NONE;
    bool force;
    int rc;

    if (!it->mapped) /* its CRD comes with this set: nothing of it can exist yet */
        return eng_plan_add(out, ENG_CHANGE_CREATE, ENG_DRIFT_NONE, it->id, it->version,
                            it->subject, it->digest, it->obj, err);
    if ((rc = get_live(&live, t, &it->map, it->ns, it->name, it->subject, err)) < 0)
        goto out;
    if (is_ignored(it->obj) || is_ignored(live) ||
        (live && has_flag(it->obj, K_SSA, "IfNotPresent"))) {
        rc = eng_plan_add(out, ENG_CHANGE_SKIPPED, ENG_DRIFT_NONE, it->id, it->version, it->subject,
                          it->digest, it->obj, err);
        goto out;
    }
    if ((rc = ssa(&r, t, &it->map, it->obj, true, err)) < 0) {
        core_error_wrap(err, "%s dry-run failed", it->subject);
        goto out;
    }
    force = t->force || has_flag(it->obj, K_FORCE, "enabled") || has_flag(live, K_FORCE, "enabled");
    if (r.code >= 300) {
        if (r.code == 404 && !live && it->ns && ns_in_set(objects, it->ns)) {
            action = ENG_CHANGE_CREATE; /* its Namespace comes with this set */
        } else if (live && is_immutable(&r) && force) {
            action = ENG_CHANGE_UPDATE; /* recreated by apply */
        } else if (r.code == 404 && (!it->ns || !it->ns[0])) {
            rc = core_error_set(err, BERTH_ENOTFOUND, "%s namespace not specified: %s", it->subject,
                                nz(r.message));
            goto out;
        } else {
            rc = core_error_set(err, eng_kube_resp_error(NULL, &r, ""),
                                "%s dry-run failed (%s): %s%s", it->subject, nz(r.reason),
                                nz(r.message),
                                live && is_immutable(&r)
                                    ? " (set spec.force or the annotation "
                                      "kustomize.toolkit.fluxcd.io/force: enabled to recreate it)"
                                    : "");
            goto out;
        }
    } else if (!live) {
        action = ENG_CHANGE_CREATE;
    } else {
        bool d = drifted(r.body, live);
        if ((rc = cleanup_patch(&ops, it->obj, live)) < 0) {
            rc = core_error_set(err, rc, "out of memory");
            goto out;
        }
        action = d || ops ? ENG_CHANGE_UPDATE : ENG_CHANGE_UNCHANGED;
        if (d && rec && (!rec->digest || strcmp(rec->digest, it->digest) == 0))
            drift = ENG_DRIFT_MODIFIED;
    }
    if (!live && rec)
        drift = ENG_DRIFT_MISSING;
    rc = eng_plan_add(out, action, drift, it->id, it->version, it->subject, it->digest, it->obj,
                      err);
out:
    eng_kube_resp_dispose(&r);
    json_decref(live);
    json_decref(ops);
    return rc;
}

static int cmp_items(const void *a, const void *b)
{
    return eng_kube_compare(((const item *)a)->obj, ((const item *)b)->obj);
}

static bool plan_has(const eng_plan *p, const char *id)
{
    for (size_t i = 0; i < p->len; i++)
        if (strcmp(p->changes[i].id, id) == 0)
            return true;
    return false;
}

static int plan_delete(eng_plan *out, const eng_inv_entry *e, eng_change_action action,
                       berth_error **err)
{
    eng_objid oid;
    char *subject;
    int rc;
    if ((rc = eng_objid_parse(&oid, e->id, err)) < 0)
        return rc;
    if (!(subject = subject_of(oid.kind, oid.ns, oid.name)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    else
        rc = eng_plan_add(out, action, ENG_DRIFT_NONE, e->id, e->version, subject, NULL, NULL, err);
    core_free(subject);
    eng_objid_dispose(&oid);
    return rc;
}

static int kube_plan(eng_target *base, eng_plan *out, const json_t *objects,
                     const eng_inventory *inv, berth_error **err)
{
    kube_target *t = (kube_target *)base;
    size_t n = json_array_size(objects), prepared = 0;
    item *items = NULL;
    int rc = 0;

    eng_plan_init(out);
    if (!json_is_array(objects))
        return core_error_set(err, BERTH_EINVAL, "objects to plan are not a list");
    if (!(items = core_calloc(n + 1, sizeof(*items))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++, prepared++)
        rc = prepare(&items[i], t, json_array_get(objects, i), i, objects, err);
    if (rc == 0)
        qsort(items, n, sizeof(*items), cmp_items);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (plan_has(out, items[i].id))
            rc = core_error_set(err, BERTH_EINVAL, "%s appears twice", items[i].subject);
        else
            rc = plan_one(t, out, &items[i], objects, inv, err);
    }
    for (size_t i = 0; inv && i < inv->len && rc == 0; i++)
        if (!plan_has(out, inv->entries[i].id))
            rc = plan_delete(out, &inv->entries[i], ENG_CHANGE_DELETE, err);
    for (size_t i = 0; i < prepared; i++)
        item_dispose(&items[i]);
    core_free(items);
    if (rc < 0)
        eng_plan_dispose(out);
    return rc;
}

/* ---------------------------------------------------------------- apply */

/* DELETE (propagation Background); 404 counts as done. */
static int delete_object(eng_kube_resp *r, kube_target *t, const eng_kube_mapping *m,
                         const char *ns, const char *name, berth_error **err)
{
    static const char body[] = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                               "\"propagationPolicy\":\"Background\"}";
    char *path = eng_kube_path(m, ns, name), *url;
    int rc;
    url = path ? core_sprintf("%s?fieldManager=%s", path, ENG_KUBE_FIELD_MANAGER) : NULL;
    if (!url)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    else
        rc = eng_kube_do(t->k, r, "DELETE", url, "application/json", body, strlen(body), err);
    core_free(path);
    core_free(url);
    return rc;
}

/* Delete and wait until the object is gone (a recreate). */
static int recreate_delete(kube_target *t, const eng_kube_mapping *m, const char *ns,
                           const char *name, const char *subject, berth_error **err)
{
    eng_kube_resp r;
    int64_t deadline = core_mono_now() + (t->timeout_ms > 0 ? t->timeout_ms : STAGE_WAIT_MS);
    int rc = delete_object(&r, t, m, ns, name, err);
    if (rc == 0 && r.code >= 300 && r.code != 404)
        rc = eng_kube_resp_error(err, &r, "deleting to recreate");
    eng_kube_resp_dispose(&r);
    while (rc == 0) {
        json_t *live = NULL;
        if ((rc = get_live(&live, t, m, ns, name, subject, err)) < 0 || !live)
            break;
        json_decref(live);
        if (core_mono_now() > deadline)
            rc = core_error_set(err, BERTH_ETIMEOUT, "timeout waiting for deletion");
        else
            core_sleep_ms(DELETE_POLL_MS);
    }
    if (rc < 0)
        core_error_wrap(err, "%s", subject);
    return rc;
}

static int apply_one(kube_target *t, const eng_change *c, berth_error **err)
{
    const json_t *obj = c->object;
    const char *ns = jstr(obj, "metadata", "namespace"), *name = jstr(obj, "metadata", "name");
    eng_kube_mapping m = {0};
    eng_kube_resp r = {0};
    json_t *live = NULL;
    int rc;

    if ((rc = eng_kube_map(&m, t->k, jstr(obj, "apiVersion", NULL), jstr(obj, "kind", NULL), err)) <
        0)
        goto out;
    if (c->action == ENG_CHANGE_UPDATE) {
        if ((rc = get_live(&live, t, &m, ns, name, c->subject, err)) < 0)
            goto out;
        if (live && (rc = send_cleanup(t, &m, obj, live, c->subject, err)) < 0)
            goto out;
    }
    if ((rc = ssa(&r, t, &m, obj, false, err)) < 0)
        goto out;
    if (r.code >= 300 && live && is_immutable(&r) &&
        (t->force || has_flag(obj, K_FORCE, "enabled") || has_flag(live, K_FORCE, "enabled"))) {
        eng_log("info", "recreate", "Kustomization", t->ks_ns, t->ks_name,
                "%s: %s; recreating it (force)", c->subject, nz(r.message));
        eng_kube_resp_dispose(&r);
        if ((rc = recreate_delete(t, &m, ns, name, c->subject, err)) < 0 ||
            (rc = ssa(&r, t, &m, obj, false, err)) < 0)
            goto out;
    }
    if (r.code >= 300)
        rc = core_error_set(err, eng_kube_resp_error(NULL, &r, ""), "%s apply failed (%s): %s",
                            c->subject, nz(r.reason), nz(r.message));
out:
    if (rc < 0 && r.code == 0)
        core_error_wrap(err, "%s apply failed", c->subject);
    eng_kube_resp_dispose(&r);
    eng_kube_mapping_dispose(&m);
    json_decref(live);
    return rc;
}

static bool crd_established(const json_t *crd)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(crd, "status"), "conditions"), i, c)
    {
        if (strcmp(nz(jstr(c, "type", NULL)), "Established") == 0)
            return strcmp(nz(jstr(c, "status", NULL)), "True") == 0;
    }
    return false;
}

/* Wait until every CRD of stage 1 in plan is Established, then refresh discovery. */
static int wait_crds(kube_target *t, const eng_plan *plan, berth_error **err)
{
    static char g[] = "apiextensions.k8s.io", v[] = "v1", res[] = "customresourcedefinitions",
                kind[] = "CustomResourceDefinition";
    eng_kube_mapping m = {.group = g, .version = v, .resource = res, .kind = kind};
    int64_t deadline = core_mono_now() + STAGE_WAIT_MS;
    int rc = 0;
    for (size_t i = 0; i < plan->len && rc == 0; i++) {
        const eng_change *c = &plan->changes[i];
        const char *name;
        if (!c->object || strcmp(nz(jstr(c->object, "kind", NULL)), m.kind) != 0 ||
            (c->action != ENG_CHANGE_CREATE && c->action != ENG_CHANGE_UPDATE))
            continue;
        name = jstr(c->object, "metadata", "name");
        for (;;) {
            json_t *live = NULL;
            bool ok;
            if ((rc = get_live(&live, t, &m, NULL, name, c->subject, err)) < 0)
                break;
            ok = crd_established(live);
            json_decref(live);
            if (ok)
                break;
            if (core_mono_now() > deadline) {
                rc = core_error_set(err, BERTH_ETIMEOUT, "%s is not Established after %d s",
                                    c->subject, STAGE_WAIT_MS / 1000);
                break;
            }
            core_sleep_ms(STAGE_POLL_MS);
        }
    }
    eng_kube_discovery_reset(t->k);
    return rc;
}

static int change_stage(const eng_change *c)
{
    char g[256];
    return eng_kube_stage(group_of(g, sizeof(g), jstr(c->object, "apiVersion", NULL)),
                          jstr(c->object, "kind", NULL));
}

static int kube_apply(eng_target *base, eng_inventory *inv_out, const eng_plan *plan,
                      berth_error **err)
{
    kube_target *t = (kube_target *)base;
    int rc = 0;
    eng_inventory_init(inv_out);
    for (int stage = 1; stage <= 3 && rc == 0; stage++) {
        bool wrote = false;
        for (size_t i = 0; i < plan->len && rc == 0; i++) {
            const eng_change *c = &plan->changes[i];
            if (!c->object || change_stage(c) != stage)
                continue;
            if (c->action == ENG_CHANGE_CREATE || c->action == ENG_CHANGE_UPDATE) {
                rc = apply_one(t, c, err);
                wrote = true;
            }
        }
        if (rc == 0 && wrote && stage < 3)
            rc = wait_crds(t, plan, err);
    }
    for (size_t i = 0; i < plan->len && rc == 0; i++) {
        const eng_change *c = &plan->changes[i];
        if (c->action != ENG_CHANGE_DELETE && c->action != ENG_CHANGE_UNKNOWN)
            rc = eng_inventory_add(inv_out, c->id, c->version, c->digest, err);
    }
    if (rc < 0)
        eng_inventory_dispose(inv_out);
    return rc;
}

/* ---------------------------------------------------------------- prune */

typedef struct stale {
    const eng_inv_entry *e;
    eng_objid oid;
    int rank;
} stale;

static int cmp_stale_reverse(const void *a, const void *b)
{
    const stale *x = a, *y = b;
    int c;
    if (x->rank != y->rank)
        return x->rank > y->rank ? -1 : 1;
    if ((c = strcmp(x->oid.group, y->oid.group)) || (c = strcmp(x->oid.kind, y->oid.kind)) ||
        (c = strcmp(x->oid.ns, y->oid.ns)))
        return -c;
    return -strcmp(x->oid.name, y->oid.name);
}

/* Prune one entry; the action it got, a failure's text into failures. */
static int prune_one(kube_target *t, eng_change_action *action, const stale *s, berth_buf *failures)
{
    eng_kube_mapping m = {0};
    eng_kube_resp r = {0};
    berth_error *why = NULL;
    json_t *live = NULL, *labels;
    char *av = s->oid.group[0] ? core_sprintf("%s/%s", s->oid.group, s->e->version)
                               : core_strdup(s->e->version);
    char *subject = subject_of(s->oid.kind, s->oid.ns, s->oid.name);
    int rc = 0;

    *action = ENG_CHANGE_UNKNOWN;
    if (!av || !subject) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    rc = eng_kube_map(&m, t->k, av, s->oid.kind, &why);
    if (rc == BERTH_ENOTFOUND) { /* the kind itself is gone (its CRD was deleted) */
        *action = ENG_CHANGE_DELETE;
        rc = 0;
        goto out;
    }
    if (rc < 0 || (rc = get_live(&live, t, &m, s->oid.ns, s->oid.name, subject, &why)) < 0)
        goto out;
    if (!live) {
        *action = ENG_CHANGE_DELETE;
        goto out;
    }
    labels = json_object_get(json_object_get(live, "metadata"), "labels");
    if (!t->ks_name || strcmp(nz(jstr(labels, OWNER_NAME, NULL)), t->ks_name) != 0 ||
        strcmp(nz(jstr(labels, OWNER_NS, NULL)), t->ks_ns) != 0 ||
        has_flag(live, K_PRUNE, "disabled") || is_ignored(live)) {
        *action = ENG_CHANGE_SKIPPED;
        goto out;
    }
    if ((rc = delete_object(&r, t, &m, s->oid.ns, s->oid.name, &why)) < 0)
        goto out;
    if (r.code < 300 || r.code == 404)
        *action = ENG_CHANGE_DELETE;
    else
        rc = eng_kube_resp_error(&why, &r, subject);
out:
    if (rc < 0 && rc != BERTH_ENOMEM) {
        char *text = berth_error_text(why);
        if (!text || berth_buf_printf(failures, "%s;", text) < 0)
            rc = BERTH_ENOMEM;
        free(text);
    }
    berth_error_free(why);
    eng_kube_resp_dispose(&r);
    eng_kube_mapping_dispose(&m);
    json_decref(live);
    core_free(av);
    core_free(subject);
    return rc;
}

static int kube_prune(eng_target *base, eng_plan *out, const eng_inventory *entries,
                      berth_error **err)
{
    kube_target *t = (kube_target *)base;
    berth_buf failures = BERTH_BUF_INIT;
    stale *list = core_calloc(entries->len + 1, sizeof(*list));
    size_t parsed = 0;
    int rc = 0, first = 0;

    eng_plan_init(out);
    if (!list)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < entries->len && rc == 0; i++) {
        list[parsed].e = &entries->entries[i];
        if ((rc = eng_objid_parse(&list[parsed].oid, entries->entries[i].id, err)) == 0) {
            list[parsed].rank = eng_kube_kind_rank(list[parsed].oid.kind);
            parsed++;
        }
    }
    if (rc == 0)
        qsort(list, parsed, sizeof(*list), cmp_stale_reverse);
    for (size_t i = 0; i < parsed && rc == 0; i++) {
        eng_change_action action;
        int r = prune_one(t, &action, &list[i], &failures);
        if (r == BERTH_ENOMEM || plan_delete(out, list[i].e, action, NULL) == BERTH_ENOMEM)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if (r < 0 && !first)
            first = r;
    }
    if (rc == 0 && first)
        rc = core_error_set(err, first, "delete failed, errors: %s", failures.ptr);
    for (size_t i = 0; i < parsed; i++)
        eng_objid_dispose(&list[i].oid);
    core_free(list);
    berth_buf_dispose(&failures);
    return rc;
}

/* Whether the object of inventory id (version v) still exists; *subject_out names it. */
static int still_there(bool *there, char **subject_out, kube_target *t, const char *id,
                       const char *v, berth_error **err)
{
    eng_objid oid;
    eng_kube_mapping m = {0};
    json_t *live = NULL;
    char *av = NULL;
    int rc;

    *there = false;
    if ((rc = eng_objid_parse(&oid, id, err)) < 0)
        return rc;
    av = oid.group[0] ? core_sprintf("%s/%s", oid.group, v) : core_strdup(v);
    *subject_out = subject_of(oid.kind, oid.ns, oid.name);
    if (!av || !*subject_out)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    else if ((rc = eng_kube_map(&m, t->k, av, oid.kind, err)) == BERTH_ENOTFOUND) {
        berth_error_free(*err); /* the kind itself is gone */
        *err = NULL;
        rc = 0;
    } else if (rc == 0 && (rc = get_live(&live, t, &m, oid.ns, oid.name, *subject_out, err)) == 0)
        *there = live != NULL;
    json_decref(live);
    eng_kube_mapping_dispose(&m);
    core_free(av);
    eng_objid_dispose(&oid);
    return rc;
}

/* deletionPolicy WaitForTermination: poll the deleted objects until each is gone. */
static int kube_wait_gone(eng_target *base, const eng_plan *pruned, int64_t deadline_ms,
                          berth_error **err)
{
    kube_target *t = (kube_target *)base;
    berth_buf left = BERTH_BUF_INIT;
    size_t n_left;
    int rc = 0;

    for (;;) {
        n_left = 0;
        left.len = 0;
        for (size_t i = 0; i < pruned->len && rc == 0; i++) {
            const eng_change *c = &pruned->changes[i];
            char *subject = NULL;
            bool there = false;
            if (c->action != ENG_CHANGE_DELETE)
                continue;
            rc = still_there(&there, &subject, t, c->id, c->version, err);
            if (rc == 0 && there && n_left++ < 5 &&
                berth_buf_printf(&left, "%s%s", n_left > 1 ? ", " : "", subject) < 0)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            core_free(subject);
        }
        if (rc < 0 || n_left == 0)
            break;
        if (core_mono_now() >= deadline_ms) {
            rc = core_error_set(err, BERTH_ETIMEOUT,
                                "deletionPolicy WaitForTermination: %zu object(s) still "
                                "terminating at the timeout: %s%s",
                                n_left, left.ptr ? left.ptr : "", n_left > 5 ? ", ..." : "");
            break;
        }
        core_sleep_ms(500);
    }
    berth_buf_dispose(&left);
    return rc;
}

/* ---------------------------------------------------------------- health */

typedef struct watched {
    eng_kube_mapping map;
    const char *ns, *name;
    char *subject;
    eng_kstatus st;
    char *msg;
    bool read;
    bool gone_is_done; /* a Job with spec.ttlSecondsAfterFinished: NotFound counts as Current */
} watched;

static int read_status(kube_target *t, watched *w, berth_error **err)
{
    json_t *live = NULL;
    berth_error *why = NULL;
    int rc = get_live(&live, t, &w->map, w->ns, w->name, w->subject, &why);
    core_free(w->msg);
    w->msg = NULL;
    if (rc < 0) {
        w->st = ENG_KSTATUS_UNKNOWN;
        w->msg = berth_error_text(why);
        berth_error_free(why);
        return rc == BERTH_ENOMEM ? core_error_set(err, rc, "out of memory") : 0;
    }
    w->read = true;
    rc = eng_kstatus_compute(&w->st, &w->msg, live, err);
    json_decref(live);
    if (rc == 0 && w->st == ENG_KSTATUS_NOT_FOUND && w->gone_is_done) /* the TTL controller ran */
        w->st = ENG_KSTATUS_CURRENT;
    return rc;
}

static int kube_health(eng_target *base, eng_health *out, const json_t *objects, berth_error **err)
{
    kube_target *t = (kube_target *)base;
    size_t n = json_array_size(objects), ready = 0;
    watched *w = NULL;
    berth_buf msg = BERTH_BUF_INIT;
    int64_t deadline = core_mono_now() + (t->timeout_ms > 0 ? t->timeout_ms : STAGE_WAIT_MS);
    bool failed = false, timed_out = false;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(objects))
        return core_error_set(err, BERTH_EINVAL, "objects to check are not a list");
    if (!(w = core_calloc(n + 1, sizeof(*w))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *o = json_array_get(objects, i);
        w[i].ns = jstr(o, "metadata", "namespace");
        w[i].name = jstr(o, "metadata", "name");
        w[i].gone_is_done =
            core_str_has_prefix(nz(jstr(o, "apiVersion", NULL)), "batch/") &&
            strcmp(nz(jstr(o, "kind", NULL)), "Job") == 0 &&
            json_is_integer(json_object_get(json_object_get(o, "spec"), "ttlSecondsAfterFinished"));
        if (!(w[i].subject = subject_of(nz(jstr(o, "kind", NULL)), w[i].ns, nz(w[i].name))))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if ((rc = eng_kube_map(&w[i].map, t->k, nz(jstr(o, "apiVersion", NULL)),
                                    nz(jstr(o, "kind", NULL)), err)) < 0)
            core_error_wrap(err, "health check of %s", w[i].subject);
        else if (!w[i].map.namespaced)
            w[i].ns = NULL;
    }
    while (rc == 0) {
        ready = 0;
        failed = false;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (w[i].read && w[i].st == ENG_KSTATUS_CURRENT)
                ready++;
            else if ((rc = read_status(t, &w[i], err)) == 0)
                ready += w[i].st == ENG_KSTATUS_CURRENT;
            failed = failed || w[i].st == ENG_KSTATUS_FAILED;
        }
        if (rc < 0 || ready == n || failed)
            break;
        if (core_mono_now() >= deadline) {
            timed_out = true;
            break;
        }
        core_sleep_ms(HEALTH_POLL_MS);
    }
    if (rc == 0 && ready < n) {
        rc = berth_buf_puts(&msg, timed_out ? "timeout waiting for: ["
                                            : "failed early due to stalled resources: [");
        for (size_t i = 0, k = 0; i < n && rc == 0; i++) {
            if (w[i].st == ENG_KSTATUS_CURRENT || (!timed_out && w[i].st != ENG_KSTATUS_FAILED))
                continue;
            rc = !w[i].read ? berth_buf_printf(&msg, "%scan't determine status for %s%s%s",
                                               k++ ? ", " : "", w[i].subject, w[i].msg ? ": " : "",
                                               w[i].msg ? w[i].msg : "")
                            : berth_buf_printf(&msg, "%s%s status: '%s'%s%s", k++ ? ", " : "",
                                               w[i].subject, eng_kstatus_name(w[i].st),
                                               w[i].msg ? ": " : "", w[i].msg ? w[i].msg : "");
        }
        if (rc == 0)
            rc = berth_buf_puts(&msg, "]");
        if (rc < 0 || !(out->message = core_strndup(msg.ptr, msg.len)))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    out->healthy = rc == 0 && ready == n;
    for (size_t i = 0; i < n; i++) {
        eng_kube_mapping_dispose(&w[i].map);
        core_free(w[i].subject);
        core_free(w[i].msg);
    }
    core_free(w);
    berth_buf_dispose(&msg);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static int kube_scope(eng_target *base, const eng_target_scope *s, berth_error **err)
{
    kube_target *t = (kube_target *)base;
    char *ns = s->ks_ns ? core_strdup(s->ks_ns) : NULL;
    char *name = s->ks_name ? core_strdup(s->ks_name) : NULL;
    char *sa = s->service_account && s->service_account[0]
                   ? core_sprintf("system:serviceaccount:%s:%s", nz(s->ks_ns), s->service_account)
                   : NULL;
    if ((s->ks_ns && !ns) || (s->ks_name && !name) ||
        (s->service_account && s->service_account[0] && !sa) ||
        eng_kube_impersonate(t->k, sa) < 0) {
        core_free(ns);
        core_free(name);
        core_free(sa);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    core_free(t->ks_ns);
    core_free(t->ks_name);
    core_free(t->sa);
    t->ks_ns = ns;
    t->ks_name = name;
    t->sa = sa;
    t->force = s->force;
    t->timeout_ms = s->timeout_ms;
    return 0;
}

static void kube_free(eng_target *base)
{
    kube_target *t = (kube_target *)base;
    eng_kube_free(t->k);
    core_free(t->server);
    core_free(t->ks_ns);
    core_free(t->ks_name);
    core_free(t->sa);
    core_free(t);
}

int eng_target_kube_from_config(eng_target **out, eng_kube_config *cfg, berth_error **err)
{
    kube_target *t;
    int rc;
    BERTH_ARG_CHECK(out && cfg);
    *out = NULL;
    if (!(t = core_calloc(1, sizeof(*t)))) {
        eng_kube_config_free(cfg);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    if (!(t->server = core_strdup(cfg->server ? cfg->server : ""))) {
        eng_kube_config_free(cfg);
        core_free(t);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    if ((rc = eng_kube_new(&t->k, cfg, err)) < 0) {
        core_free(t->server);
        core_free(t);
        return rc;
    }
    t->base.version = ENG_TARGET_VERSION;
    t->base.name = "kube";
    t->base.plan = kube_plan;
    t->base.apply = kube_apply;
    t->base.prune = kube_prune;
    t->base.wait_gone = kube_wait_gone;
    t->base.health = kube_health;
    t->base.free = kube_free;
    t->base.scope = kube_scope;
    *out = &t->base;
    return 0;
}

int eng_target_kube_new(eng_target **out, const char *kubeconfig, const char *context,
                        berth_error **err)
{
    eng_kube_config *cfg = NULL;
    int rc;
    BERTH_ARG_CHECK(out);
    *out = NULL;
    if ((rc = eng_kube_config_load(&cfg, kubeconfig, context, err)) < 0)
        return rc;
    return eng_target_kube_from_config(out, cfg, err);
}

const char *eng_target_kube_server(const eng_target *t)
{
    if (!t || !t->name || strcmp(t->name, "kube") != 0 || t->plan != kube_plan)
        return NULL;
    return ((const kube_target *)t)->server;
}
