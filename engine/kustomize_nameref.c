/*
 * Name-reference fixes (spec/engine.md §2.5): after prefixes, suffixes and content hashes have
 * renamed objects, fields that refer to a renamed object by an earlier name get its final name.
 *
 * Design: a subset of kustomize's namereference table (api/internal/konfig/builtinpluginconsts/
 * namereference.go): ConfigMap, Secret, ServiceAccount and PersistentVolumeClaim references in
 * pod specs (Pod, PodTemplate, Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob),
 * plus Ingress, StatefulSet serviceName, APIService, ServiceAccount secrets, StorageClass
 * parameters, RBAC bindings and HPA targets. The referral is chosen like kustomize's
 * selectReferral: resources of the referenced kind that had the field's value as an earlier
 * name, in the referrer's namespace (cluster-scoped objects and ServiceAccounts pass), then,
 * when several remain, those with the same prefixes and suffixes as the referrer. Still
 * several with different final names is an error. Runs once, at the top of the build.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/kustomize_internal.h"

typedef struct ref_spec {
    const char *target;   /* kind of the referenced object */
    const char *referrer; /* kind holding the field; NULL: every pod-spec holder */
    const char *path;     /* for pod-spec holders: relative to the pod spec */
    bool check_kind;      /* the map holding the field names the kind in "kind" */
} ref_spec;

static const ref_spec pod_refs[] = {
    {"ConfigMap", NULL, "volumes/configMap/name", false},
    {"ConfigMap", NULL, "volumes/projected/sources/configMap/name", false},
    {"ConfigMap", NULL, "containers/env/valueFrom/configMapKeyRef/name", false},
    {"ConfigMap", NULL, "initContainers/env/valueFrom/configMapKeyRef/name", false},
    {"ConfigMap", NULL, "containers/envFrom/configMapRef/name", false},
    {"ConfigMap", NULL, "initContainers/envFrom/configMapRef/name", false},
    {"Secret", NULL, "volumes/secret/secretName", false},
    {"Secret", NULL, "volumes/projected/sources/secret/name", false},
    {"Secret", NULL, "containers/env/valueFrom/secretKeyRef/name", false},
    {"Secret", NULL, "initContainers/env/valueFrom/secretKeyRef/name", false},
    {"Secret", NULL, "containers/envFrom/secretRef/name", false},
    {"Secret", NULL, "initContainers/envFrom/secretRef/name", false},
    {"Secret", NULL, "imagePullSecrets/name", false},
    {"ServiceAccount", NULL, "serviceAccountName", false},
    {"PersistentVolumeClaim", NULL, "volumes/persistentVolumeClaim/claimName", false},
    {NULL, NULL, NULL, false},
};

static const ref_spec object_refs[] = {
    {"Secret", "Ingress", "spec/tls/secretName", false},
    {"Secret", "ServiceAccount", "imagePullSecrets/name", false},
    {"Secret", "ServiceAccount", "secrets/name", false},
    {"Secret", "StorageClass", "parameters/secretName", false},
    {"Secret", "StorageClass", "parameters/adminSecretName", false},
    {"Secret", "StorageClass", "parameters/userSecretName", false},
    {"Secret", "StorageClass", "parameters/secretRef", false},
    {"Service", "StatefulSet", "spec/serviceName", false},
    {"Service", "Ingress", "spec/rules/http/paths/backend/service/name", false},
    {"Service", "Ingress", "spec/defaultBackend/service/name", false},
    {"Service", "Ingress", "spec/rules/http/paths/backend/serviceName", false},
    {"Service", "Ingress", "spec/backend/serviceName", false},
    {"Service", "APIService", "spec/service/name", false},
    {"ServiceAccount", "RoleBinding", "subjects/name", true},
    {"ServiceAccount", "ClusterRoleBinding", "subjects/name", true},
    {"Role", "RoleBinding", "roleRef/name", true},
    {"ClusterRole", "RoleBinding", "roleRef/name", true},
    {"ClusterRole", "ClusterRoleBinding", "roleRef/name", true},
    {"Deployment", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name", true},
    {"StatefulSet", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name", true},
    {"ReplicaSet", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name", true},
    {"ReplicationController", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name", true},
    {NULL, NULL, NULL, false},
};

/* Where each kind keeps its pod spec. */
static const char *const pod_holders[][2] = {
    {"Pod", "spec"},
    {"PodTemplate", "template/spec"},
    {"Deployment", "spec/template/spec"},
    {"ReplicaSet", "spec/template/spec"},
    {"DaemonSet", "spec/template/spec"},
    {"StatefulSet", "spec/template/spec"},
    {"Job", "spec/template/spec"},
    {"CronJob", "spec/jobTemplate/spec/template/spec"},
    {NULL, NULL},
};

typedef struct ref_walk {
    eng_kz_ctx *ctx;
    eng_kz_set *set;
    const eng_kz_res *referrer;
    const ref_spec *spec;
} ref_walk;

static bool had_name(const eng_kz_res *r, const char *name)
{
    for (size_t i = 0; i < r->prev_len; i++) {
        if (strcmp(r->prev[i].name, name) == 0)
            return true;
    }
    return false;
}

/* kustomize sameCurrentNamespaceAsReferrer. */
static bool same_namespace(const eng_kz_res *referrer, const eng_kz_res *c)
{
    const json_t *a = referrer->obj, *b = c->obj;
    if (eng_kz_cluster_scoped(a) || eng_kz_cluster_scoped(b) ||
        strcmp(eng_kz_kind(b), "ServiceAccount") == 0)
        return true;
    return strcmp(eng_kz_effective_ns(a, eng_kz_ns(a)), eng_kz_effective_ns(b, eng_kz_ns(b))) == 0;
}

static bool same_affixes(const eng_kz_res *a, const eng_kz_res *b)
{
    return strcmp(a->affixes ? a->affixes : "", b->affixes ? b->affixes : "") == 0;
}

typedef bool (*sieve_fn)(const eng_kz_res *referrer, const eng_kz_res *c);

/* Keep the candidates (indexes into set) that pass fn; returns the new count. */
static size_t sieve(const ref_walk *w, size_t *cand, size_t n, sieve_fn fn)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (fn(w->referrer, w->set->v[cand[i]]))
            cand[k++] = cand[i];
    }
    return k;
}

static bool all_same_name(const ref_walk *w, const size_t *cand, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp(eng_kz_name(w->set->v[cand[0]]->obj), eng_kz_name(w->set->v[cand[i]]->obj)))
            return false;
    }
    return true;
}

/* The referral for name: *out NULL when none (the field stays). */
static int select_referral(const ref_walk *w, const char *name, const eng_kz_res **out)
{
    size_t cand[64], n = 0;
    char id[300];
    *out = NULL;
    for (size_t i = 0; i < w->set->len && n < 64; i++) {
        const eng_kz_res *c = w->set->v[i];
        if (strcmp(eng_kz_kind(c->obj), w->spec->target) == 0 && had_name(c, name))
            cand[n++] = i;
    }
    if ((n = sieve(w, cand, n, same_namespace)) > 1)
        n = sieve(w, cand, n, same_affixes);
    if (n == 0)
        return 0;
    if (n > 1 && !all_same_name(w, cand, n)) {
        eng_kz_obj_id(w->referrer->obj, id, sizeof(id));
        return core_error_set(w->ctx->err, BERTH_EINVAL,
                              "%s: found multiple possible referrals for %s \"%s\"", id,
                              w->spec->target, name);
    }
    *out = w->set->v[cand[0]];
    return 0;
}

static int visit_ref(json_t *parent, const char *key, void *arg)
{
    const ref_walk *w = arg;
    const char *name = eng_kz_str(parent, key), *kind = eng_kz_str(parent, "kind");
    const eng_kz_res *ref;
    int rc;
    if (!name || (w->spec->check_kind && (!kind || strcmp(kind, w->spec->target) != 0)))
        return 0;
    if ((rc = select_referral(w, name, &ref)) < 0 || !ref)
        return rc;
    if (strcmp(name, eng_kz_name(ref->obj)) == 0)
        return 0;
    return json_object_set_new(parent, key, json_string(eng_kz_name(ref->obj))) < 0 ? BERTH_ENOMEM
                                                                                    : 0;
}

static int fix_path(ref_walk *w, const ref_spec *spec, const char *path)
{
    w->spec = spec;
    return eng_kz_walk(w->referrer->obj, path, false, visit_ref, w);
}

static int fix_pod_refs(ref_walk *w, const char *prefix)
{
    char path[256];
    int rc;
    for (const ref_spec *s = pod_refs; s->target; s++) {
        snprintf(path, sizeof(path), "%s/%s", prefix, s->path);
        if ((rc = fix_path(w, s, path)) < 0)
            return rc;
    }
    return 0;
}

static int fix_object(ref_walk *w)
{
    const char *kind = eng_kz_kind(w->referrer->obj);
    int rc;
    for (size_t i = 0; pod_holders[i][0]; i++) {
        if (strcmp(pod_holders[i][0], kind) == 0 && (rc = fix_pod_refs(w, pod_holders[i][1])) < 0)
            return rc;
    }
    for (const ref_spec *s = object_refs; s->target; s++) {
        if (strcmp(s->referrer, kind) == 0 && (rc = fix_path(w, s, s->path)) < 0)
            return rc;
    }
    return 0;
}

int eng_kz_fix_references(eng_kz_ctx *ctx, eng_kz_set *set)
{
    ref_walk w = {ctx, set, NULL, NULL};
    int rc;
    for (size_t i = 0; i < set->len; i++) {
        w.referrer = set->v[i];
        if ((rc = fix_object(&w)) == BERTH_ENOMEM)
            return core_error_set(ctx->err, rc, "out of memory");
        if (rc < 0)
            return rc;
    }
    return 0;
}
