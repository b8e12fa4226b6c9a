/*
 * engine/remote.c: Kustomizations that apply to a remote cluster (spec.kubeConfig.secretRef,
 * issue 5), as kustomize-controller does: the kubeconfig comes from a Secret in the
 * Kustomization's namespace (key spec.kubeConfig.secretRef.key, else "value", then
 * "value.yaml"), and apply, drift, health and prune go to that cluster with the same owner
 * labels and serviceAccountName impersonation as the engine's own Kubernetes target.
 *
 * Design:
 *   - A kubeconfig from a Secret is untrusted (eng_kube_config_from_secret): no local files, and
 *     exec plugins and insecure-skip-tls-verify only when the operator allowed them.
 *   - Targets are cached per worker (an eng_kube is used by one thread at a time, kube.h), like
 *     the registry clients of engine/clients.c: one Kubernetes target (one client, one
 *     discovery cache) per distinct kubeconfig, keyed by the sha256 of its bytes. A slot is freed
 *     when the Secret it was made from now holds another kubeconfig, when it was not used for
 *     REMOTE_IDLE_MS, or when REMOTE_MAX distinct clusters are in use (least recently used).
 *   - The inventory records the server the objects went to (eng_inventory.cluster) and the state
 *     keeps the kubeconfig they were applied with beside it, so a prune after the kubeConfig
 *     changed, and the garbage collection of a removed Kustomization (whose Secret may be gone
 *     too), reach the cluster that holds the objects (eng_ks_target_stored).
 */
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kube.h"

#define REMOTE_MAX 16
#define REMOTE_IDLE_MS (5 * 60 * 1000)

typedef struct slot {
    char hash[72]; /* sha256 of the kubeconfig bytes */
    char *source;  /* who asked for it last: "Secret ns/name key" or "stored ns/name" */
    eng_target *target;
    int64_t used_ms; /* monotonic */
} slot;

struct eng_remotes {
    eng_kube_secret_policy policy;
    slot slots[REMOTE_MAX];
    size_t len;
};

int eng_remotes_new(eng_remotes **out, bool allow_exec, bool allow_insecure_tls, berth_error **err)
{
    if (!(*out = core_calloc(1, sizeof(**out))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    (*out)->policy.allow_exec = allow_exec;
    (*out)->policy.allow_insecure_tls = allow_insecure_tls;
    return 0;
}

static void slot_drop(eng_remotes *r, size_t i)
{
    eng_target_free(r->slots[i].target);
    core_free(r->slots[i].source);
    r->slots[i] = r->slots[--r->len];
    memset(&r->slots[r->len], 0, sizeof(slot));
}

void eng_remotes_free(eng_remotes *r)
{
    if (!r)
        return;
    while (r->len > 0)
        slot_drop(r, r->len - 1);
    core_free(r);
}

void eng_remotes_expire(eng_remotes *r)
{
    int64_t now = core_mono_now();
    for (size_t i = r ? r->len : 0; i-- > 0;)
        if (now - r->slots[i].used_ms > REMOTE_IDLE_MS)
            slot_drop(r, i);
}

size_t eng_remotes_count(const eng_remotes *r)
{
    return r ? r->len : 0;
}

/*
 * The target for kubeconfig data (what names it in messages, source identifies who asks): from
 * the cache, else parsed, checked and made. *out is borrowed until the next call.
 */
static int remotes_get(eng_target **out, eng_remotes *r, const char *source, const void *data,
                       size_t len, const char *what, berth_error **err)
{
    int64_t now = core_mono_now();
    eng_kube_config *cfg = NULL;
    char hash[72];
    slot *s = NULL;
    int rc;

    core_sha256_digest(hash, data, len);
    for (size_t i = r->len; i-- > 0;) {
        slot *x = &r->slots[i];
        bool same = strcmp(x->hash, hash) == 0;
        if (!same &&
            (now - x->used_ms > REMOTE_IDLE_MS || !x->source || strcmp(x->source, source) == 0))
            slot_drop(r, i); /* idle, or the Secret it came from changed */
    }
    for (size_t i = 0; i < r->len && !s; i++)
        if (strcmp(r->slots[i].hash, hash) == 0)
            s = &r->slots[i];
    if (!s) {
        if ((rc = eng_kube_config_from_secret(&cfg, data, len, what, &r->policy, err)) < 0)
            return rc;
        if (r->len == REMOTE_MAX) { /* the least recently used goes */
            size_t lru = 0;
            for (size_t i = 1; i < r->len; i++)
                if (r->slots[i].used_ms < r->slots[lru].used_ms)
                    lru = i;
            slot_drop(r, lru);
        }
        s = &r->slots[r->len];
        if ((rc = eng_target_kube_from_config(&s->target, cfg, err)) < 0) {
            memset(s, 0, sizeof(*s));
            return rc;
        }
        memcpy(s->hash, hash, sizeof(hash));
        r->len++;
    }
    if (!s->source || strcmp(s->source, source) != 0) {
        char *src = core_strdup(source);
        if (!src)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        core_free(s->source);
        s->source = src;
    }
    s->used_ms = now;
    *out = s->target;
    return 0;
}

/* ---------------------------------------------------------------- a Kustomization's target */

void eng_ks_target_dispose(eng_ks_target *t)
{
    if (!t)
        return;
    core_free(t->where);
    core_free(t->cluster);
    if (t->kubeconfig.ptr)
        sodium_memzero(t->kubeconfig.ptr, t->kubeconfig.len);
    berth_buf_dispose(&t->kubeconfig);
    memset(t, 0, sizeof(*t));
}

static int local(eng_ks_target *out, eng_ctx *ctx)
{
    out->target = ctx->target;
    return 0;
}

/* The remote target for kubeconfig data, with where and cluster from its server. */
static int remote(eng_ks_target *out, eng_ctx *ctx, const char *source, const void *data,
                  size_t len, const char *what, berth_error **err)
{
    const char *server;
    int rc;
    if ((rc = remotes_get(&out->target, ctx->remotes, source, data, len, what, err)) < 0)
        return rc;
    server = eng_target_kube_server(out->target);
    if (!(out->where = core_sprintf("%s (server %s)", what, server ? server : "?")) ||
        !(out->cluster = core_strdup(server ? server : "")))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

/* The engine's target must be Kubernetes for a kubeConfig to mean anything. */
static int need_kube(eng_ctx *ctx, const char *what, berth_error **err)
{
    if (ctx->remotes && eng_target_kube_server(ctx->target))
        return 0;
    return core_error_set(err, BERTH_EINVAL,
                          "%s: spec.kubeConfig needs the Kubernetes target (berth run "
                          "--target=kube or --kube), not the \"%s\" target",
                          what, ctx->target && ctx->target->name ? ctx->target->name : "?");
}

int eng_ks_target_resolve(eng_ks_target *out, eng_ctx *ctx, const eng_kustomization *ks,
                          berth_error **err)
{
    const char *ns = ks->meta.ns, *name = ks->kubeconfig_secret;
    const eng_secret *sec;
    const eng_kv *kv = NULL;
    char *what = NULL, *source = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!name)
        return local(out, ctx);
    if (!(what = core_sprintf("kubeConfig Secret \"%s/%s\"", ns, name)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = need_kube(ctx, what, err)) < 0)
        goto out;
    if (!(sec = eng_config_find_secret(ctx->cfg, ns, name))) {
        rc = core_error_set(err, BERTH_ENOTFOUND, "%s not found", what);
        goto out;
    }
    if (ks->kubeconfig_key)
        kv = eng_kv_find(sec->data, sec->data_len, ks->kubeconfig_key);
    else if (!(kv = eng_kv_find(sec->data, sec->data_len, "value")) || kv->len == 0)
        kv = eng_kv_find(sec->data, sec->data_len, "value.yaml");
    if (!kv || kv->len == 0) {
        if (ks->kubeconfig_key)
            rc = core_error_set(err, BERTH_EINVAL, "%s has no key \"%s\" with a kubeconfig", what,
                                ks->kubeconfig_key);
        else
            rc =
                core_error_set(err, BERTH_EINVAL,
                               "%s has no key \"value\" or \"value.yaml\" with a kubeconfig", what);
        goto out;
    }
    if (!(source = core_sprintf("Secret %s/%s %s", ns, name, kv->key))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = remote(out, ctx, source, kv->value, kv->len, what, err)) < 0)
        goto out;
    if (berth_buf_put(&out->kubeconfig, kv->value, kv->len) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    if (rc < 0)
        eng_ks_target_dispose(out);
    core_free(what);
    core_free(source);
    return rc;
}

int eng_ks_target_stored(eng_ks_target *out, eng_ctx *ctx, const char *ns, const char *name,
                         const eng_inventory *inv, berth_error **err)
{
    char *what = NULL, *source = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!inv->cluster)
        return local(out, ctx);
    if (!(what = core_sprintf("the kubeconfig kept for cluster %s of Kustomization \"%s/%s\"",
                              inv->cluster, ns, name)) ||
        !(source = core_sprintf("stored %s/%s", ns, name))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = need_kube(ctx, what, err)) < 0)
        goto out;
    if ((rc = eng_state_kubeconfig_read(&out->kubeconfig, ctx->state, ns, name, err)) < 0) {
        core_error_wrap(err, "%s", what);
        goto out;
    }
    rc = remote(out, ctx, source, out->kubeconfig.ptr ? out->kubeconfig.ptr : "",
                out->kubeconfig.len, what, err);
out:
    if (rc < 0)
        eng_ks_target_dispose(out);
    core_free(what);
    core_free(source);
    return rc;
}

bool eng_ks_target_same_cluster(const eng_ks_target *t, const eng_inventory *old,
                                const eng_target *local_target)
{
    const char *local_server = eng_target_kube_server(local_target);
    const char *a = t->cluster ? t->cluster : local_server;
    const char *b = old->cluster ? old->cluster : local_server;
    if (!t->cluster && !old->cluster)
        return true;
    return a && b && strcmp(a, b) == 0;
}
