/*
 * engine/kube_store.c: controller mode (`berth run --kube`, issue 5): the Kubernetes API as the
 * engine's store (design.md "one store interface").
 *
 * Design: a sync pass takes the OCIRepository (source.toolkit.fluxcd.io/v1), Kustomization
 * (kustomize.toolkit.fluxcd.io/v1) and, when their CRDs are installed at start, ImageRepository,
 * ImagePolicy and ImageUpdateAutomation (image.toolkit.fluxcd.io/v1) objects of every namespace
 * (optionally filtered by a label selector, for sharding), the Secrets and ConfigMaps their specs
 * reference (any
 * "*secretRef"/"*SecretRef" {name} and postBuild.substituteFrom entries, in the object's
 * namespace), and materialises them (metadata.name/namespace/labels and spec; Secrets' data,
 * never logged) as one file each in STATE/kube-store (atomic writes, mode 0600); files of objects
 * that are gone are removed. The engine's loop runs with that directory as its config and polls
 * it every 250 ms, so the unchanged loader, reload and status GC (a deleted Kustomization is
 * pruned as the file store does) do the reconciling. A referenced object whose document changed
 * (edited, created, deleted) makes the loop reconcile the CRs that use it (through the control
 * socket, asking it to reload the store first), since the reload alone reconciles
 * only the CRs whose own document changed. The same pass writes the status files the reconciles
 * left (STATE/status/<kind>/<ns>/<name>.json) back to each object's status subresource (merge
 * patch) with observedGeneration (top-level and in every condition) set to metadata.generation,
 * when some field differs from the live status and that same patch was not already sent to the
 * object as it is now (a server whose schema prunes a field would otherwise get it every pass).
 * A reconcile.fluxcd.io/requestedAt annotation that differs from status.lastHandledReconcileAt
 * makes the object due now through the control socket (as `berth reconcile`); the value becomes
 * lastHandledReconcileAt when a reconcile of that object that began after the request ends (the
 * engine's reconcile hook), so it is written back together with that reconcile's status, as
 * Flux does. The JSON-only parts (documents,
 * references, the reference filter, the status patch) are engine/kube_store_doc.c.
 *
 * The first pass (listing, and a GET per reference) runs before the loop starts (its failure
 * fails the run). Then one watch thread per kind, each with its own Kubernetes client, lists
 * (pages of 500) and watches from the list's resourceVersion into its cache (under mu): the
 * CRs into s->cache[i]; Secrets and ConfigMaps cluster-wide into s->rcache[i], keeping only the
 * objects s->refs names (every other one is dropped on arrival, page by page when listing, so
 * thousands of Secrets cost nothing to keep). A reference that is new (a new CR) and not cached
 * is read once with a GET; after that the watch keeps it current, and one it saw deleted is not
 * read again. A dropped watch resumes from the last resourceVersion, 410 Expired and a RESYNC_MS
 * timer list again (replacing the cache, so objects gone in between drop out). Each watch asks
 * for timeoutSeconds between 5 and 10 minutes (client-go's spread), so an idle controller sends
 * no request for minutes but its Lease renewals; a stop sets s->cancel, which ends every watch
 * and list in flight within about 100 ms (core/http's cancel hook). The store thread repeats
 * the pass (from the caches, no request) every second and at once after a watch event, until
 * the loop ends, logging a failed pass once per distinct message, and looks at the caller's stop
 * flag every STOP_CHECK_MS; its client (s->k) is used by that thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kube.h"
#include "engine/kube_store.h"

#define STORE_DIR "kube-store"
#define SYNC_PERIOD_MS 1000
#define STOP_CHECK_MS 200 /* how often the store thread looks at the caller's stop flag */
#define WATCH_MIN_S 300   /* a watch asks for timeoutSeconds in [5, 10) minutes, as client-go */
#define WATCH_SPAN_S 300
#define RESYNC_MS (10 * 60 * 1000) /* the safety-net full list */
#define STORE_POLL_MS 250
#define REQUESTED_AT "reconcile.fluxcd.io/requestedAt"
#define FILE_MAX (8u << 20)

#define NCR 5  /* crs[] */
#define NREF 2 /* refkinds[] */

typedef struct ks {
    eng_kube *k;
    const berth_engine_opts *opts;
    char *dir;        /* STATE/kube-store */
    json_t *handled;  /* under mu: "Kind/ns/name" -> the requestedAt value a finished reconcile
                         handled (written back as lastHandledReconcileAt) */
    json_t *pending;  /* under mu: "Kind/ns/name" -> {"at": requestedAt, "began": a reconcile
                         started since the request was sent to the loop} */
    char *last_error; /* of the last failed pass, to log each distinct failure once */
    bool loop_up;     /* the loop listens on its control socket */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    /* leader election (opts->leader_elect) */
    char *lease_path;   /* /apis/coordination.k8s.io/v1/namespaces/NS/leases/berth-leader */
    char *identity;     /* holderIdentity: "<hostname>_<pid>" */
    int64_t renewed_ms; /* monotonic time of the last successful acquire or renew */
    eng_kstore_lease_obs lease_seen; /* another holder's Lease as last seen, and since when */
    volatile sig_atomic_t loop_stop; /* the loop's stop flag: the caller's, or the lease lost */
    bool lease_lost;
    off_t events_off; /* STATE/events.jsonl: bytes already sent as Kubernetes Events */
    /* watches (after the first pass): one thread per kind keeps cache[i] ("ns/name" -> the
     * object) as the API server has it; the pass reads the cache instead of listing */
    json_t *cache[NCR]; /* under mu; NULL until that kind's watch thread listed */
    bool absent[NCR];   /* an optional kind the API server did not serve at the first pass */
    bool watching;      /* the pass reads the cache */
    bool dirty;         /* under mu: a watch changed a cache since the last pass */
    /* referenced Secrets and ConfigMaps: one cluster-wide watch per kind keeps in rcache[i]
     * ("ns/name" -> object) only the objects refs names; a reference not cached and not in
     * tried is read once with a GET (then the watch keeps it current) */
    json_t *refs;         /* under mu: "Kind/ns/name" -> true, what the CRs reference now */
    json_t *rcache[NREF]; /* under mu; never NULL while running */
    json_t *tried;        /* under mu: "Kind/ns/name" read with GET (or deleted) and absent */
    atomic_int cancel;    /* set by watches_stop: ends the watches' requests in flight */
    json_t *ref_digest;   /* store thread: "Kind/ns/name" -> sha256 of its store document, ""
                             when absent, as of the last pass */
    json_t *wake;         /* store thread: CR "Kind/ns/name" -> monotonic ms from which to ask
                             the loop to reconcile it (a referenced object changed) */
    int64_t wake_at;      /* store thread: the earliest time in wake, 0 when it is empty */
    json_t *sent; /* store thread: "Kind/ns/name" -> {"body": sha256 of the last status patch sent,
                     "from"/"rv": the resourceVersion before it and the one it returned} */
} ks;

/* the kinds the store lists; the engine reconciles them from the store's files */
static const struct {
    const char *api_version;
    const char *kind;
    bool optional; /* its CRD may be missing: the kind is then not watched in this run */
} crs[] = {
    {"source.toolkit.fluxcd.io/v1", "OCIRepository", false},
    {"kustomize.toolkit.fluxcd.io/v1", "Kustomization", false},
    {"image.toolkit.fluxcd.io/v1", "ImageRepository", true},
    {"image.toolkit.fluxcd.io/v1", "ImagePolicy", true},
    {"image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation", true},
};

/* the kinds the CRs reference; the store keeps only the referenced objects */
static const struct {
    const char *kind;
    const char *lower; /* file name prefix */
    const char *const keys[4];
} refkinds[] = {
    {"Secret", "secret", {"type", "data", "stringData", NULL}},
    {"ConfigMap", "configmap", {"data", "binaryData", NULL}},
};

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

/* ---------------------------------------------------------------- materialising */

/* Put file name -> document text into files (a JSON object); the text is JSON, which the YAML
 * loader reads. */
static int files_put(json_t *files, const char *kind, const char *ns, const char *name, json_t *doc,
                     berth_error **err)
{
    char *text = doc ? json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
    char *fname = core_sprintf("%s_%s_%s.yaml", kind, ns, name);
    int rc = 0;
    if (!text || !fname || json_object_set_new(files, fname, json_string(text)) < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    free(text);
    core_free(fname);
    json_decref(doc);
    return rc;
}

/* Write files (name -> text) into the store directory and remove its other *.yaml files.
 * *changed_out: something was written or removed. */
static int store_write(ks *s, json_t *files, bool *changed_out, berth_error **err)
{
    const char *fname;
    json_t *text;
    DIR *d;
    struct dirent *de;
    int rc = 0;

    *changed_out = false;
    json_object_foreach(files, fname, text)
    {
        char *path = core_sprintf("%s/%s", s->dir, fname);
        berth_buf cur = BERTH_BUF_INIT;
        const char *t = json_string_value(text);
        size_t tl = strlen(t);
        bool same;
        if (!path)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        same = core_fs_read_file(&cur, path, FILE_MAX, NULL) == 0 && cur.len == tl &&
               memcmp(cur.ptr, t, tl) == 0;
        berth_buf_dispose(&cur);
        if (!same) {
            rc = core_fs_write_atomic(path, t, tl, 0600, err);
            *changed_out = true;
        }
        core_free(path);
        if (rc < 0)
            return rc;
    }
    if (!(d = opendir(s->dir)))
        return core_error_errno(err, errno, "cannot read the store directory \"%s\"", s->dir);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        char *path;
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0 || de->d_name[0] == '.' ||
            json_object_get(files, de->d_name))
            continue;
        if (!(path = core_sprintf("%s/%s", s->dir, de->d_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        if (unlink(path) < 0 && errno != ENOENT)
            rc = core_error_errno(err, errno, "cannot remove \"%s\"", path);
        else
            *changed_out = true;
        core_free(path);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

/* ---------------------------------------------------------------- status write-back */

static char *lower(const char *s)
{
    char *o = core_strdup(s);
    for (char *p = o; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return o;
}

/* The value a finished reconcile handled for id (copy, core_free), or NULL. */
static char *handled_value(ks *s, const char *id)
{
    char *v;
    pthread_mutex_lock(&s->mu);
    v = json_string_value(json_object_get(s->handled, id))
            ? core_strdup(json_string_value(json_object_get(s->handled, id)))
            : NULL;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Ask the loop to reconcile an object whose requestedAt is new. The value becomes
 * lastHandledReconcileAt when a reconcile that started after the loop accepted the request ends
 * (reconcile_marked), as Flux writes it at the end of the reconcile that handled it. */
static void handle_requested(ks *s, const char *kind, const char *ns, const char *name,
                             const json_t *obj)
{
    const char *req;
    const char *seen = str_at(obj, "status", "lastHandledReconcileAt");
    const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    char *id, *path;
    const char *had;
    bool known;
    int status = 0;
    berth_error *e = NULL;

    req = json_string_value(json_object_get(ann, REQUESTED_AT));
    if (!req || !s->loop_up || (seen && strcmp(seen, req) == 0))
        return;
    if (!(id = core_sprintf("%s/%s/%s", kind, ns, name)))
        return;
    pthread_mutex_lock(&s->mu);
    had = json_string_value(json_object_get(s->handled, id));
    known = (had && strcmp(had, req) == 0) ||
            ((had = str_at(json_object_get(s->pending, id), "at", NULL)) && strcmp(had, req) == 0);
    pthread_mutex_unlock(&s->mu);
    if (known) {
        core_free(id);
        return;
    }
    /* pending before the request: the reconcile it starts may begin before the reply */
    pthread_mutex_lock(&s->mu);
    (void)json_object_set_new(s->pending, id, json_pack("{ss sb}", "at", req, "began", 0));
    pthread_mutex_unlock(&s->mu);
    path = core_sprintf("/v1/reconcile/%s", id);
    if (path && berth_engine_control(&status, NULL, s->opts->state_dir, "POST", path, &e) == 0 &&
        status == 202) {
        eng_log("info", "reconcile-requested", kind, ns, name, "%s %s", REQUESTED_AT, req);
    } else {
        pthread_mutex_lock(&s->mu);
        (void)json_object_del(s->pending, id);
        pthread_mutex_unlock(&s->mu);
    }
    berth_error_free(e);
    core_free(path);
    core_free(id);
}

/* The engine's reconcile hook (workers): a reconcile of a pending request's object that began
 * after the request was accepted, and then ended, handled it; the next pass writes it back. */
static void reconcile_marked(void *payload, const char *kind, const char *ns, const char *name,
                             bool ended)
{
    ks *s = payload;
    char *id = core_sprintf("%s/%s/%s", kind, ns, name);
    json_t *p;
    if (!id)
        return;
    pthread_mutex_lock(&s->mu);
    if ((p = json_object_get(s->pending, id))) {
        if (!ended) /* pending is recorded before the request: this began after it */
            (void)json_object_set_new(p, "began", json_true());
        else if (ended && json_is_true(json_object_get(p, "began"))) {
            (void)json_object_set(s->handled, id, json_object_get(p, "at"));
            (void)json_object_del(s->pending, id);
            s->dirty = true;
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    core_free(id);
}

/* This status patch (digest dg) was sent before and nobody wrote the object since: its
 * resourceVersion is the one our PATCH returned, or the one it had then (our own change has not
 * come through the watch yet). */
static bool same_as_sent(ks *s, const char *id, const char *dg, const char *rv)
{
    const json_t *was = json_object_get(s->sent, id);
    const char *b = str_at(was, "body", NULL), *r = str_at(was, "rv", NULL),
               *f = str_at(was, "from", NULL);
    return b && r && f && rv && strcmp(b, dg) == 0 && (strcmp(r, rv) == 0 || strcmp(f, rv) == 0);
}

/* Merge-patch the object's status with the engine's status file when a field differs, unless
 * the same patch was sent and the object has not changed since (a server that prunes a field
 * of ours, inventory.prune for Flux's CRD schema, would otherwise get it every pass). */
static int write_status(ks *s, const eng_kube_mapping *m, const char *kind, const json_t *obj,
                        berth_error **err)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = str_at(md, "namespace", NULL), *name = str_at(md, "name", NULL);
    json_int_t gen = json_integer_value(json_object_get(md, "generation"));
    char *lk = lower(kind), *file = NULL, *id = NULL, *path = NULL, *body = NULL, *obj_path = NULL;
    char *handled = NULL, dg[72];
    berth_buf buf = BERTH_BUF_INIT;
    json_t *st = NULL, *patch = NULL, *want = NULL;
    int rc = 0;

    if (!lk ||
        !(file = core_sprintf("%s/status/%s/%s/%s.json", s->opts->state_dir, lk, ns, name)) ||
        !(id = core_sprintf("%s/%s/%s", kind, ns, name))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (core_fs_read_file(&buf, file, FILE_MAX, NULL) < 0)
        goto out; /* not reconciled yet */
    if (!(st = json_loadb(buf.ptr, buf.len, 0, NULL)) || !json_is_object(st))
        goto out; /* written atomically: a bad file is not ours to judge here */
    handled = handled_value(s, id);
    if (eng_kstore_status_patch(&want, st, json_object_get(obj, "status"), gen, handled) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!want)
        goto out;
    if (!(patch = json_pack("{sO}", "status", want)) || !(body = json_dumps(patch, JSON_COMPACT)) ||
        !(obj_path = eng_kube_path(m, ns, name)) || !(path = core_sprintf("%s/status", obj_path))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    core_sha256_digest(dg, body, strlen(body));
    if (same_as_sent(s, id, dg, str_at(md, "resourceVersion", NULL)))
        goto out; /* the server keeps less than we send (a field its schema prunes) */
    {
        eng_kube_resp r = {0};
        rc = eng_kube_do(s->k, &r, "PATCH", path, "application/merge-patch+json", body,
                         strlen(body), err);
        if (rc == 0 && (r.code < 200 || r.code > 299)) {
            char *what = core_sprintf("writing the status of %s %s/%s", kind, ns, name);
            rc = eng_kube_resp_error(err, &r, what ? what : kind);
            core_free(what);
        } else if (rc == 0) {
            (void)json_object_set_new(
                s->sent, id,
                json_pack("{ss ss ss}", "body", dg, "from",
                          str_at(md, "resourceVersion", NULL) ? str_at(md, "resourceVersion", NULL)
                                                              : "",
                          "rv",
                          str_at(json_object_get(r.body, "metadata"), "resourceVersion", NULL)
                              ? str_at(json_object_get(r.body, "metadata"), "resourceVersion", NULL)
                              : ""));
        }
        eng_kube_resp_dispose(&r);
    }
out:
    berth_buf_dispose(&buf);
    json_decref(st);
    json_decref(want);
    json_decref(patch);
    free(body);
    core_free(handled);
    core_free(path);
    core_free(obj_path);
    core_free(id);
    core_free(file);
    core_free(lk);
    return rc;
}

/* ---------------------------------------------------------------- leader election */

#define LEASE_NAME "berth-leader"
#define LEASE_SECONDS 15
#define RENEW_MS 5000
#define RETRY_MS 2000

/* MicroTime as Kubernetes writes it: "2006-01-02T15:04:05.000000Z" */
static void micro_now(char out[64])
{
    berth_unix_ms now = core_wall_now();
    char sec[32];
    core_time_rfc3339(sec, now / 1000);
    sec[strlen(sec) - 1] = '\0'; /* drop the "Z" */
    snprintf(out, 64, "%.31s.%06dZ", sec, (int)(now % 1000) * 1000);
}

/*
 * One attempt to take or keep the Lease. *held_out: this process holds it now. A lease another
 * identity holds is left alone until its record has not changed for leaseDurationSeconds by our
 * own monotonic clock (client-go's rule, eng_kstore_lease_expired: no wall clocks compared);
 * then it is taken over (leaseTransitions + 1). Writes carry the read resourceVersion, so of two
 * replicas racing for the same lease one gets 409 and stays a follower.
 */
static int lease_try(ks *s, bool *held_out, berth_error **err)
{
    eng_kube_resp r = {0};
    json_t *lease = NULL, *spec;
    char now[64], *body = NULL;
    const char *holder;
    bool create;
    int rc;

    *held_out = false;
    if ((rc = eng_kube_do(s->k, &r, "GET", s->lease_path, NULL, NULL, 0, err)) < 0)
        return rc;
    if (r.code != 200 && r.code != 404) {
        rc = eng_kube_resp_error(err, &r, "reading the leader Lease");
        eng_kube_resp_dispose(&r);
        return rc;
    }
    create = r.code == 404;
    micro_now(now);
    if (create) {
        lease = json_pack("{ss ss s{ss} s{ss si ss ss si}}", "apiVersion", "coordination.k8s.io/v1",
                          "kind", "Lease", "metadata", "name", LEASE_NAME, "spec", "holderIdentity",
                          s->identity, "leaseDurationSeconds", LEASE_SECONDS, "acquireTime", now,
                          "renewTime", now, "leaseTransitions", 0);
    } else {
        lease = json_incref(r.body);
        spec = json_object_get(lease, "spec");
        holder = str_at(spec, "holderIdentity", NULL);
        if (holder && holder[0] && strcmp(holder, s->identity) != 0) {
            int expired =
                eng_kstore_lease_expired(&s->lease_seen, spec, LEASE_SECONDS, core_mono_now());
            if (expired <= 0) {
                json_decref(lease);
                eng_kube_resp_dispose(&r);
                return expired < 0 ? core_error_set(err, BERTH_ENOMEM, "out of memory")
                                   : 0; /* another replica leads */
            }
        }
        if (!json_is_object(spec) && json_object_set_new(lease, "spec", json_object()) == 0)
            spec = json_object_get(lease, "spec");
        if (!holder || strcmp(holder, s->identity) != 0) {
            json_int_t t = json_integer_value(json_object_get(spec, "leaseTransitions"));
            (void)json_object_set_new(spec, "leaseTransitions", json_integer(holder ? t + 1 : t));
            (void)json_object_set_new(spec, "acquireTime", json_string(now));
        }
        (void)json_object_set_new(spec, "holderIdentity", json_string(s->identity));
        (void)json_object_set_new(spec, "leaseDurationSeconds", json_integer(LEASE_SECONDS));
        (void)json_object_set_new(spec, "renewTime", json_string(now));
    }
    eng_kube_resp_dispose(&r);
    if (!lease || !(body = json_dumps(lease, JSON_COMPACT))) {
        json_decref(lease);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    if (create) {
        char *coll = core_strndup(s->lease_path, strlen(s->lease_path) - strlen("/" LEASE_NAME));
        rc = coll ? eng_kube_do(s->k, &r, "POST", coll, "application/json", body, strlen(body), err)
                  : core_error_set(err, BERTH_ENOMEM, "out of memory");
        core_free(coll);
    } else {
        rc = eng_kube_do(s->k, &r, "PUT", s->lease_path, "application/json", body, strlen(body),
                         err);
    }
    free(body);
    json_decref(lease);
    if (rc == 0) {
        if (r.code == 200 || r.code == 201)
            *held_out = true;
        else if (r.code != 409) /* 409: another replica wrote first */
            rc = eng_kube_resp_error(err, &r, "writing the leader Lease");
    }
    eng_kube_resp_dispose(&r);
    if (*held_out)
        s->renewed_ms = core_mono_now();
    return rc;
}

static bool caller_stopped(const ks *s)
{
    return s->opts->stop && *s->opts->stop;
}

/* Wait until this process holds the lease (or the caller stops it: *held_out false). */
static int lease_acquire(ks *s, bool *held_out, berth_error **err)
{
    bool logged = false;
    char *last = NULL;
    *held_out = false;
    while (!caller_stopped(s)) {
        berth_error *e = NULL;
        if (lease_try(s, held_out, &e) < 0) {
            char *t = berth_error_text(e);
            if (t && (!last || strcmp(t, last) != 0))
                eng_log("error", "leader-election-failed", NULL, NULL, NULL, "%s", t);
            core_free(last);
            last = t ? core_strdup(t) : NULL;
            free(t);
        }
        berth_error_free(e);
        if (*held_out) {
            eng_log("info", "leader-elected", NULL, NULL, NULL, "%s holds the Lease %s",
                    s->identity, s->lease_path);
            break;
        }
        if (!logged)
            eng_log("info", "leader-waiting", NULL, NULL, NULL,
                    "waiting for the Lease %s held by another replica", s->lease_path);
        logged = true;
        core_sleep_ms(RETRY_MS);
    }
    core_free(last);
    (void)err;
    return 0;
}

/* Renew the held lease every RENEW_MS; past the lease duration without a renewal, stop the loop
 * (the process then exits non-zero, and a restarted one waits as a follower). */
static void lease_keep(ks *s)
{
    bool held = false;
    berth_error *e = NULL;
    if (!s->lease_path || s->lease_lost || core_mono_now() - s->renewed_ms < RENEW_MS)
        return;
    if (lease_try(s, &held, &e) < 0 || !held) {
        char *t = e ? berth_error_text(e) : NULL;
        eng_log("error", "leader-renew-failed", NULL, NULL, NULL, "%s",
                t ? t : "another replica holds the Lease");
        free(t);
        if (!held && (!e || core_mono_now() - s->renewed_ms >= LEASE_SECONDS * 1000)) {
            s->lease_lost = true;
            s->loop_stop = 1;
            eng_log("error", "leader-lost", NULL, NULL, NULL,
                    "lost the Lease %s: stopping the reconciles", s->lease_path);
        }
    }
    berth_error_free(e);
}

/* ---------------------------------------------------------------- Kubernetes Events */

/* The CR (from the list) an engine event names, or NULL. */
static json_t *find_cr(json_t *const *items, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < sizeof(crs) / sizeof(crs[0]); i++) {
        size_t j;
        json_t *o;
        if (strcmp(crs[i].kind, kind) != 0)
            continue;
        json_array_foreach(items[i], j, o)
        {
            const json_t *md = json_object_get(o, "metadata");
            const char *n = str_at(md, "name", NULL), *x = str_at(md, "namespace", NULL);
            if (n && x && strcmp(n, name) == 0 && strcmp(x, ns) == 0)
                return o;
        }
    }
    return NULL;
}

/* One core/v1 Event for an engine event line about a listed CR; best effort (a failure is
 * logged at debug level and the event stays in events.jsonl). */
static void post_event(ks *s, json_t *const *items, const json_t *line)
{
    const json_t *inv = json_object_get(line, "involvedObject");
    const char *kind = str_at(inv, "kind", NULL), *ns = str_at(inv, "namespace", NULL),
               *name = str_at(inv, "name", NULL), *ts = str_at(line, "timestamp", NULL);
    const char *sev = str_at(line, "severity", NULL);
    json_t *cr, *ev = NULL;
    char *path = NULL, *body = NULL, *gen = NULL;
    eng_kube_resp r = {0};
    berth_error *e = NULL;

    if (!kind || !ns || !name || !ts || !(cr = find_cr(items, kind, ns, name)))
        return;
    if (!(gen = core_sprintf("%s.", name)) ||
        !(path = core_sprintf("/api/v1/namespaces/%s/events", ns)))
        goto out;
    ev = json_pack(
        "{ss ss s{ss} s{sO sO ss ss sO sO} ss ss ss s{ss} ss ss si ss}", "apiVersion", "v1", "kind",
        "Event", "metadata", "generateName", gen, "involvedObject", "apiVersion",
        json_object_get(cr, "apiVersion"), "kind", json_object_get(cr, "kind"), "namespace", ns,
        "name", name, "uid", json_object_get(json_object_get(cr, "metadata"), "uid"),
        "resourceVersion", json_object_get(json_object_get(cr, "metadata"), "resourceVersion"),
        "reason", str_at(line, "reason", NULL) ? str_at(line, "reason", NULL) : "Info", "message",
        str_at(line, "message", NULL) ? str_at(line, "message", NULL) : "", "type",
        sev && strcmp(sev, "error") == 0 ? "Warning" : "Normal", "source", "component", "berth",
        "firstTimestamp", ts, "lastTimestamp", ts, "count", 1, "reportingComponent", "berth");
    if (!ev || !(body = json_dumps(ev, JSON_COMPACT)))
        goto out;
    if (eng_kube_do(s->k, &r, "POST", path, "application/json", body, strlen(body), &e) == 0 &&
        r.code != 201 && r.code != 200)
        (void)eng_kube_resp_error(&e, &r, "creating an Event");
    if (e) {
        char *t = berth_error_text(e);
        eng_log("debug", "event-not-sent", kind, ns, name, "%s", t ? t : "");
        free(t);
    }
out:
    eng_kube_resp_dispose(&r);
    berth_error_free(e);
    json_decref(ev);
    free(body);
    core_free(path);
    core_free(gen);
}

static char *events_path(const ks *s)
{
    return core_sprintf("%s/events.jsonl", s->opts->state_dir);
}

/* Send the lines appended to events.jsonl since the last pass (from the start after a
 * rotation: the file is then shorter than what was read). */
static void forward_events(ks *s, json_t *const *items)
{
    char *path = events_path(s);
    berth_buf buf = BERTH_BUF_INIT;
    size_t off, start;

    if (!path || core_fs_read_file(&buf, path, 64u << 20, NULL) < 0) {
        core_free(path);
        return;
    }
    core_free(path);
    if ((off_t)buf.len < s->events_off)
        s->events_off = 0;
    start = off = (size_t)s->events_off;
    for (size_t i = off; i < buf.len; i++) {
        if (buf.ptr[i] != '\n')
            continue;
        {
            json_t *line = json_loadb(buf.ptr + start, i - start, 0, NULL);
            if (line)
                post_event(s, items, line);
            json_decref(line);
        }
        start = i + 1;
    }
    s->events_off = (off_t)start; /* a torn last line waits for its end */
    berth_buf_dispose(&buf);
}

/* ---------------------------------------------------------------- one pass */

static int refkind_index(const char *kind)
{
    for (size_t i = 0; i < NREF; i++)
        if (strcmp(refkinds[i].kind, kind) == 0)
            return (int)i;
    return -1;
}

/* The references are now refs: the watches keep what it names; cached objects and "tried"
 * marks of references that are gone are dropped (a reference that comes back is read again). */
static int refs_set(ks *s, json_t *refs)
{
    json_t *copy = json_copy(refs), *c;
    const char *key;
    void *tmp;
    if (!copy)
        return BERTH_ENOMEM;
    pthread_mutex_lock(&s->mu);
    json_decref(s->refs);
    s->refs = copy;
    json_object_foreach_safe(s->tried, tmp, key, c) if (!json_object_get(refs, key))
        json_object_del(s->tried, key);
    for (size_t i = 0; i < NREF; i++)
        json_object_foreach_safe(s->rcache[i], tmp, key,
                                 c) if (!eng_kstore_ref_wanted(refs, refkinds[i].kind, c))
            json_object_del(s->rcache[i], key);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* GET one referenced object that is not cached: *out the object (new reference) or NULL when
 * it does not exist. */
static int ref_get(ks *s, json_t **out, const char *kind, const char *ns, const char *name,
                   berth_error **err)
{
    char *path = strcmp(kind, "Secret") == 0
                     ? core_sprintf("/api/v1/namespaces/%s/secrets/%s", ns, name)
                     : core_sprintf("/api/v1/namespaces/%s/configmaps/%s", ns, name);
    eng_kube_resp r = {0};
    int rc;
    *out = NULL;
    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = eng_kube_do(s->k, &r, "GET", path, NULL, NULL, 0, err)) == 0) {
        if (r.code == 200)
            *out = json_incref(r.body);
        else if (r.code != 404) { /* a missing one: the reconcile reports it */
            char *what = core_sprintf("reading %s %s/%s", kind, ns, name);
            rc = eng_kube_resp_error(err, &r, what ? what : kind);
            core_free(what);
        }
    }
    eng_kube_resp_dispose(&r);
    core_free(path);
    return rc;
}

/* Put the store file of one referenced Secret/ConfigMap ("Kind/ns/name") into files: from the
 * watch's cache, else (a new reference) read once with GET into the cache. */
static int ref_put(ks *s, json_t *files, const char *ref, berth_error **err)
{
    char *kind = core_strdup(ref), *ns, *name, *key;
    json_t *obj = NULL;
    bool tried = false;
    int ki, rc = 0;

    if (!kind)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    ns = strchr(kind, '/');
    *ns++ = '\0';
    name = strchr(ns, '/');
    *name++ = '\0';
    ki = refkind_index(kind);
    if (ki < 0 || !eng_kstore_name_ok(name)) {
        core_free(kind);
        return 0; /* not a name the API server can hold; the loader reports the missing ref */
    }
    if (!(key = core_sprintf("%s/%s", ns, name))) {
        core_free(kind);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&s->mu);
    if ((obj = json_object_get(s->rcache[ki], key)))
        json_incref(obj);
    else if (!(tried = json_object_get(s->tried, ref) != NULL))
        (void)json_object_set_new(s->tried, ref, json_true());
    pthread_mutex_unlock(&s->mu);
    if (!obj && !tried) {
        if ((rc = ref_get(s, &obj, kind, ns, name, err)) < 0) {
            pthread_mutex_lock(&s->mu); /* not known to be absent: read it again next pass */
            (void)json_object_del(s->tried, ref);
            pthread_mutex_unlock(&s->mu);
        } else if (obj) {
            pthread_mutex_lock(&s->mu); /* the watch's copy, when it has one, is newer */
            if (!json_object_get(s->rcache[ki], key))
                (void)json_object_set(s->rcache[ki], key, obj);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (rc == 0 && obj)
        rc = files_put(files, refkinds[ki].lower, ns, name,
                       eng_kstore_doc(obj, "v1", kind, refkinds[ki].keys), err);
    json_decref(obj);
    core_free(key);
    core_free(kind);
    return rc;
}

/* The references of one CR's spec into refs: "Kind/ns/name" -> the ids ("Kind/ns/name") of the
 * CRs that reference it. */
static int refs_add_users(json_t *refs, const char *kind, const char *ns, const char *name,
                          json_t *spec)
{
    json_t *mine = json_object(), *users, *v;
    char *id = core_sprintf("%s/%s/%s", kind, ns, name);
    const char *ref;
    int rc = mine && id ? eng_kstore_refs_collect(mine, spec, ns) : BERTH_ENOMEM;
    json_object_foreach(mine, ref, v)
    {
        if (rc < 0)
            break;
        if (!(users = json_object_get(refs, ref)) &&
            (json_object_set_new(refs, ref, json_array()) < 0 ||
             !(users = json_object_get(refs, ref))))
            rc = BERTH_ENOMEM;
        else if (json_array_append_new(users, json_string(id)) < 0)
            rc = BERTH_ENOMEM;
    }
    json_decref(mine);
    core_free(id);
    return rc;
}

/* A referenced Secret or ConfigMap whose store document changed (edited, created or deleted)
 * since the last pass: the CRs that use it are reconciled (a reference is not part of the CR's
 * own document, and a reload alone reconciles only changed documents). The request asks the
 * loop to reload first (?reload=true), so the reconcile sees the new files the pass wrote.
 * The first pass only takes note. */
static int refs_changed(ks *s, json_t *files, json_t *refs)
{
    json_t *seen = json_object(), *users, *u;
    const char *ref;
    int64_t due = core_mono_now();
    size_t i;

    if (!seen)
        return BERTH_ENOMEM;
    json_object_foreach(refs, ref, users)
    {
        char *kind = core_strdup(ref), *ns, *name, *lk = NULL, *fname = NULL, dg[72] = "";
        const char *text, *was;
        if (!kind || !(ns = strchr(kind, '/')) || !(name = strchr(ns + 1, '/'))) {
            core_free(kind);
            continue;
        }
        *ns++ = '\0';
        *name++ = '\0';
        lk = lower(kind);
        fname = lk ? core_sprintf("%s_%s_%s.yaml", lk, ns, name) : NULL;
        if (fname && (text = json_string_value(json_object_get(files, fname))))
            core_sha256_digest(dg, text, strlen(text));
        (void)json_object_set_new(seen, ref, json_string(dg));
        was = json_string_value(json_object_get(s->ref_digest, ref));
        if (was && strcmp(was, dg) != 0) {
            json_array_foreach(users, i, u)(void)
                json_object_set_new(s->wake, json_string_value(u), json_integer(due));
            if (s->wake_at == 0 || due < s->wake_at)
                s->wake_at = due;
        }
        core_free(fname);
        core_free(lk);
        core_free(kind);
    }
    json_decref(s->ref_digest);
    s->ref_digest = seen;
    return 0;
}

/* Ask the loop to reconcile the CRs of refs_changed once their time has come. */
static void wake_users(ks *s)
{
    const char *id;
    json_t *due;
    void *tmp;
    s->wake_at = 0;
    json_object_foreach_safe(s->wake, tmp, id, due)
    {
        char *path;
        int status = 0;
        berth_error *e = NULL;
        if (!s->loop_up || json_integer_value(due) > core_mono_now()) {
            if (s->wake_at == 0 || json_integer_value(due) < s->wake_at)
                s->wake_at = json_integer_value(due);
            continue;
        }
        if (!(path = core_sprintf("/v1/reconcile/%s?reload=true", id)))
            return;
        if (berth_engine_control(&status, NULL, s->opts->state_dir, "POST", path, &e) == 0 &&
            (status == 202 || status == 404)) { /* 404: not (or no longer) in the loop */
            if (status == 202) {
                char *k = core_strdup(id), *n = k ? strchr(k, '/') : NULL, *m;
                if (n && (m = strchr(n + 1, '/'))) {
                    *n++ = '\0';
                    *m++ = '\0';
                    eng_log("info", "reference-changed", k, n, m,
                            "a Secret or ConfigMap it references changed: reconciling");
                }
                core_free(k);
            }
            json_object_del(s->wake, id);
        }
        berth_error_free(e);
        core_free(path);
    }
}

/* Map crs[i]. An optional kind the server does not serve at the first pass (its CRD is not
 * installed) is marked absent, logged once, and left out of this run. */
static int kind_map(ks *s, eng_kube_mapping *m, size_t i, berth_error **err)
{
    berth_error *e = NULL;
    int rc = eng_kube_map(m, s->k, crs[i].api_version, crs[i].kind, &e);
    if (rc == BERTH_ENOTFOUND && crs[i].optional && !s->watching) {
        eng_log("info", "kind-not-served", crs[i].kind, NULL, NULL,
                "%s is not served by the API server (its CRD is not installed); %s objects are "
                "not watched until berth restarts",
                crs[i].api_version, crs[i].kind);
        s->absent[i] = true;
        berth_error_free(e);
        return 0;
    }
    if (rc < 0 && err && !*err)
        *err = e;
    else
        berth_error_free(e);
    return rc;
}

static int sync_pass(ks *s, bool write_back, berth_error **err)
{
    static const char *const cr_keys[] = {"spec", NULL};
    eng_kube_mapping maps[sizeof(crs) / sizeof(crs[0])] = {{0}};
    json_t *items[sizeof(crs) / sizeof(crs[0])] = {0};
    json_t *files = json_object(), *refs = json_object();
    size_t n = sizeof(crs) / sizeof(crs[0]), i, j;
    bool changed = false;
    const char *ref;
    json_t *v;
    int rc = 0;

    if (!files || !refs) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (s->watching) { /* until every watch has listed, the store stays as it is */
        bool ready = true;
        pthread_mutex_lock(&s->mu);
        for (i = 0; i < n; i++)
            ready = ready && (s->cache[i] || s->absent[i]);
        s->dirty = false;
        pthread_mutex_unlock(&s->mu);
        if (!ready)
            goto out;
    }
    for (i = 0; i < n; i++) {
        char *path = NULL, *rv = NULL;
        json_t *o;
        if (s->absent[i])
            continue;
        if ((rc = kind_map(s, &maps[i], i, err)) < 0)
            goto out;
        if (s->absent[i])
            continue;
        if (!(path = eng_kube_path(&maps[i], NULL, NULL))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (s->watching) {
            const char *key;
            json_t *c;
            pthread_mutex_lock(&s->mu);
            if ((items[i] = json_array()) && s->cache[i])
                json_object_foreach(s->cache[i], key, c)
                    json_array_append_new(items[i], json_deep_copy(c));
            pthread_mutex_unlock(&s->mu);
            rc = items[i] ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
        } else {
            rc = eng_kube_list(&items[i], &rv, s->k, path, s->opts->watch_label_selector, err);
        }
        core_free(path);
        core_free(rv);
        if (rc < 0)
            goto out;
        json_array_foreach(items[i], j, o)
        {
            const json_t *md = json_object_get(o, "metadata");
            const char *ns = str_at(md, "namespace", NULL), *name = str_at(md, "name", NULL);
            char *lk;
            if (!eng_kstore_name_ok(ns) || !eng_kstore_name_ok(name) ||
                json_object_get(md, "deletionTimestamp"))
                continue;
            if (!(lk = lower(crs[i].kind)) ||
                refs_add_users(refs, crs[i].kind, ns, name, json_object_get(o, "spec")) < 0) {
                core_free(lk);
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
            rc = files_put(files, lk, ns, name,
                           eng_kstore_doc(o, crs[i].api_version, crs[i].kind, cr_keys), err);
            core_free(lk);
            if (rc < 0)
                goto out;
        }
    }
    if (refs_set(s, refs) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(refs, ref, v) if ((rc = ref_put(s, files, ref, err)) < 0) goto out;
    if (refs_changed(s, files, refs) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = store_write(s, files, &changed, err)) < 0)
        goto out;
    if (changed)
        eng_log("debug", "store-changed", NULL, NULL, NULL, "the Kubernetes objects changed");
    if (!write_back)
        goto out;
    for (i = 0; i < n; i++) {
        json_t *o;
        json_array_foreach(items[i], j, o)
        {
            const json_t *md = json_object_get(o, "metadata");
            const char *ns = str_at(md, "namespace", NULL), *name = str_at(md, "name", NULL);
            if (!eng_kstore_name_ok(ns) || !eng_kstore_name_ok(name) ||
                json_object_get(md, "deletionTimestamp"))
                continue;
            handle_requested(s, crs[i].kind, ns, name, o);
            if ((rc = write_status(s, &maps[i], crs[i].kind, o, err)) < 0)
                goto out;
        }
    }
    wake_users(s);
    forward_events(s, items);
out:
    for (i = 0; i < n; i++) {
        eng_kube_mapping_dispose(&maps[i]);
        json_decref(items[i]);
    }
    json_decref(files);
    json_decref(refs);
    return rc;
}

static void pass_logged(ks *s, bool write_back)
{
    berth_error *e = NULL;
    if (sync_pass(s, write_back, &e) < 0) {
        char *t = berth_error_text(e);
        if (t && (!s->last_error || strcmp(t, s->last_error) != 0)) {
            eng_log("error", "store-failed", NULL, NULL, NULL, "%s", t);
            core_free(s->last_error);
            s->last_error = core_strdup(t);
        }
        free(t);
    } else if (s->last_error) {
        eng_log("info", "store-recovered", NULL, NULL, NULL, "the Kubernetes store works again");
        core_free(s->last_error);
        s->last_error = NULL;
    }
    berth_error_free(e);
}

/* ---------------------------------------------------------------- watches */

/* Watch i: crs[i] for i < NCR, then refkinds[i - NCR] (cluster-wide, referenced objects only). */
#define NWATCH (NCR + NREF)

typedef struct kwatch {
    ks *s;
    size_t i;     /* the watched kind, as above */
    eng_kube *k;  /* this thread's own client (cancelled by s->cancel) */
    char *path;   /* the collection */
    char *failed; /* the last failure logged, to log each distinct one once */
    pthread_t th;
    bool started;
} kwatch;

static bool is_ref(const kwatch *w)
{
    return w->i >= NCR;
}

static const char *wkind(size_t i)
{
    return i < NCR ? crs[i].kind : refkinds[i - NCR].kind;
}

/* The cache watch i fills (under mu). */
static json_t **wcache(ks *s, size_t i)
{
    return i < NCR ? &s->cache[i] : &s->rcache[i - NCR];
}

static bool stopping(ks *s)
{
    bool stop;
    pthread_mutex_lock(&s->mu);
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static char *obj_key(const json_t *o)
{
    const json_t *md = json_object_get(o, "metadata");
    const char *ns = str_at(md, "namespace", NULL), *name = str_at(md, "name", NULL);
    return name ? core_sprintf("%s/%s", ns ? ns : "", name) : NULL;
}

/* One watch event into the cache (under mu); a Secret or ConfigMap no CR references is dropped
 * (and forgotten if cached). *changed: the cache changed. Returns 0 or BERTH_ENOMEM. */
static int cache_event(kwatch *w, const char *type, const json_t *object, bool *changed)
{
    ks *s = w->s;
    json_t *cache = *wcache(s, w->i);
    char *key = obj_key(object);
    bool del = strcmp(type, "DELETED") == 0;
    int rc = 0;

    *changed = false;
    if (!key)
        return 0;
    if (is_ref(w) && !del && !eng_kstore_ref_wanted(s->refs, wkind(w->i), object))
        del = true; /* not (or no longer) referenced */
    if (del && is_ref(w) && strcmp(type, "DELETED") == 0) {
        char *id = core_sprintf("%s/%s", wkind(w->i), key);
        if (id && eng_kstore_ref_wanted(s->refs, wkind(w->i), object))
            (void)json_object_set_new(s->tried, id, json_true()); /* gone: no GET for it */
        core_free(id);
    }
    if (!cache) {
        /* not listed yet */
    } else if (del) {
        *changed = json_object_del(cache, key) == 0;
    } else {
        json_t *copy = json_deep_copy(object);
        if (!copy || json_object_set_new(cache, key, copy) < 0)
            rc = BERTH_ENOMEM;
        *changed = true;
    }
    core_free(key);
    return rc;
}

/* One watch event into the cache; wakes the pass when it changed. Ends the watch when stopping. */
static int watch_apply(void *payload, const char *type, const json_t *object)
{
    kwatch *w = payload;
    ks *s = w->s;
    bool stop, changed;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = cache_event(w, type, object, &changed);
    if (changed) {
        s->dirty = true;
        pthread_cond_broadcast(&s->cv);
    }
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return rc < 0 ? rc : stop ? 1 : 0;
}

typedef struct relister {
    kwatch *w;
    json_t *cache;
} relister;

/* One listed object into the new cache; Secrets and ConfigMaps only when referenced, so a list
 * of thousands of Secrets keeps a handful (page by page). */
static int relist_item(void *payload, json_t *o)
{
    relister *r = payload;
    char *key;
    bool want = true;
    if (is_ref(r->w)) {
        pthread_mutex_lock(&r->w->s->mu);
        want = eng_kstore_ref_wanted(r->w->s->refs, wkind(r->w->i), o);
        pthread_mutex_unlock(&r->w->s->mu);
    }
    if (!want || !(key = obj_key(o)))
        return 0;
    if (json_object_set(r->cache, key, o) < 0) {
        core_free(key);
        return BERTH_ENOMEM;
    }
    core_free(key);
    return 0;
}

/* List the kind into a new cache (objects gone since the last list drop out with the old one);
 * *rv the list's resourceVersion. */
static int watch_relist(kwatch *w, char **rv, berth_error **err)
{
    ks *s = w->s;
    relister r = {.w = w, .cache = json_object()};
    int rc;

    core_free(*rv);
    *rv = NULL;
    if (!r.cache)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc =
             eng_kube_list_each(rv, w->k, w->path, is_ref(w) ? NULL : s->opts->watch_label_selector,
                                relist_item, &r, err)) < 0) {
        json_decref(r.cache);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    json_decref(*wcache(s, w->i));
    *wcache(s, w->i) = r.cache;
    s->dirty = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void watch_failed(kwatch *w, const char *what, berth_error *e)
{
    char *t = berth_error_text(e);
    if (t && (!w->failed || strcmp(t, w->failed) != 0)) {
        eng_log("warn", "store-watch-failed", wkind(w->i), NULL, NULL, "%s: %s", what, t);
        core_free(w->failed);
        w->failed = core_strdup(t);
    }
    free(t);
}

/* Sleep up to ms, less when stopping. */
static void nap(ks *s, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->stop)
        (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

/* List, then watch from the list's resourceVersion; a dropped watch resumes from the last
 * resourceVersion seen (events and bookmarks), 410 Expired lists again, and so does the
 * safety-net resync every RESYNC_MS. Each watch asks for a timeoutSeconds between 5 and 10
 * minutes (spread, as client-go does, so that replicas do not reconnect together); a stop
 * cancels the request in flight (s->cancel, within about 100 ms). */
static void *watch_thread(void *arg)
{
    kwatch *w = arg;
    ks *s = w->s;
    char *rv = NULL;
    bool relist = true;
    int64_t listed = 0;

    while (!stopping(s)) {
        berth_error *e = NULL;
        int rc;
        if (relist || core_mono_now() - listed >= RESYNC_MS) {
            if (watch_relist(w, &rv, &e) < 0) {
                if (berth_error_code(e) != BERTH_ECANCELED)
                    watch_failed(w, "list", e);
                berth_error_free(e);
                nap(s, 1000);
                continue;
            }
            relist = false;
            listed = core_mono_now();
        }
        rc = eng_kube_watch(w->k, w->path, is_ref(w) ? NULL : s->opts->watch_label_selector, &rv,
                            WATCH_MIN_S + (int)randombytes_uniform(WATCH_SPAN_S), watch_apply, w,
                            &e);
        if (rc == BERTH_ECONFLICT) {
            eng_log("info", "store-relist", wkind(w->i), NULL, NULL,
                    "the watch resourceVersion expired; listing again");
            relist = true;
        } else if (rc == BERTH_ECANCELED) {
            /* stopping */
        } else if (rc < 0) {
            watch_failed(w, "watch", e);
            nap(s, 1000);
        } else if (w->failed) {
            core_free(w->failed);
            w->failed = NULL;
        }
        berth_error_free(e);
    }
    core_free(rv);
    return NULL;
}

/* The pass every SYNC_PERIOD_MS and at once after a watch event; the caller's stop flag (set by
 * a signal handler, which cannot signal a condition variable) is looked at every STOP_CHECK_MS
 * so that SIGTERM stops the loop quickly. */
static void *store_thread(void *arg)
{
    ks *s = arg;
    int64_t next = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec ts;
        int64_t now = core_mono_now();
        bool due = s->dirty || now >= next || (s->wake_at && now >= s->wake_at);
        pthread_mutex_unlock(&s->mu);
        s->loop_up = true;
        if (caller_stopped(s))
            s->loop_stop = 1;
        if (due) {
            lease_keep(s);
            if (!s->lease_lost)
                pass_logged(s, true);
            next = core_mono_now() + SYNC_PERIOD_MS;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += STOP_CHECK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        if (!s->stop && !s->dirty)
            (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Start one watch thread per kind, each with its own client. Threads that started are
 * recorded in w[i].started; a failure to start leaves the periodic list (s->watching false). */
static int watches_start(kwatch *w, ks *s, berth_error **err)
{
    int rc = 0;
    for (size_t i = 0; i < NWATCH && rc == 0; i++) {
        eng_kube_config *cfg = NULL;
        eng_kube_mapping m = {0};
        w[i].s = s;
        w[i].i = i;
        if (i < NCR && s->absent[i])
            continue;
        if ((rc = eng_kube_config_load(&cfg, s->opts->kubeconfig, s->opts->kube_context, err)) <
                0 ||
            (rc = eng_kube_new(&w[i].k, cfg, err)) < 0)
            break;
        eng_kube_set_cancel(w[i].k, &s->cancel);
        if ((rc = eng_kube_map(&m, w[i].k, i < NCR ? crs[i].api_version : "v1", wkind(i), err)) < 0)
            break;
        w[i].path = eng_kube_path(&m, NULL, NULL);
        eng_kube_mapping_dispose(&m);
        if (!w[i].path)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if (pthread_create(&w[i].th, NULL, watch_thread, &w[i]) != 0)
            rc = core_error_set(err, BERTH_ENOMEM, "cannot start the %s watch thread", wkind(i));
        else
            w[i].started = true;
    }
    return rc;
}

static void watches_stop(kwatch *w, ks *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    s->cancel = 1; /* ends the watches (and lists) in flight */
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < NWATCH; i++) {
        if (w[i].started)
            pthread_join(w[i].th, NULL);
        w[i].started = false;
        eng_kube_free(w[i].k);
        core_free(w[i].path);
        core_free(w[i].failed);
        w[i].k = NULL;
        w[i].path = w[i].failed = NULL;
    }
}

int eng_kstore_run(bool *all_ready_out, const berth_engine_opts *opts, berth_error **err)
{
    berth_engine_opts inner = *opts;
    eng_kube_config *cfg = NULL;
    ks s = {.opts = opts};
    kwatch w[NWATCH] = {{0}};
    pthread_t th;
    bool started = false;
    int rc;

    *all_ready_out = false;
    eng_log_set_sink(opts->log_format, opts->log, opts->log_payload);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    if (!(s.dir = core_sprintf("%s/%s", opts->state_dir, STORE_DIR)) ||
        !(s.handled = json_object()) || !(s.pending = json_object()) || !(s.refs = json_object()) ||
        !(s.tried = json_object()) || !(s.rcache[0] = json_object()) ||
        !(s.ref_digest = json_object()) || !(s.wake = json_object()) || !(s.sent = json_object()) ||
        !(s.rcache[1] = json_object())) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_mkdirs(s.dir, 0700, err)) < 0)
        goto out;
    { /* Events: only what this run's reconciles record */
        char *ep = events_path(&s);
        struct stat sb;
        if (ep && stat(ep, &sb) == 0)
            s.events_off = sb.st_size;
        core_free(ep);
    }
    if ((rc = eng_kube_config_load(&cfg, opts->kubeconfig, opts->kube_context, err)) < 0) {
        core_error_wrap(err, "controller mode: no Kubernetes API");
        goto out;
    }
    if (opts->leader_elect) {
        char host[256] = "berth";
        const char *lns = opts->leader_election_namespace ? opts->leader_election_namespace
                          : cfg->ns                       ? cfg->ns
                                                          : "default";
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        if (!eng_kstore_name_ok(lns)) {
            eng_kube_config_free(cfg);
            rc = core_error_set(err, BERTH_EINVAL, "leader election namespace \"%s\" is not a name",
                                lns);
            goto out;
        }
        if (!(s.identity = core_sprintf("%s_%ld", host, (long)getpid())) ||
            !(s.lease_path = core_sprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
                                          lns, LEASE_NAME))) {
            eng_kube_config_free(cfg);
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = eng_kube_new(&s.k, cfg, err)) < 0) {
        core_error_wrap(err, "controller mode: no Kubernetes API");
        goto out;
    }
    if (s.lease_path) {
        bool held = false;
        (void)lease_acquire(&s, &held, err);
        if (!held) { /* stopped while waiting */
            rc = 0;
            goto out;
        }
    }
    if ((rc = sync_pass(&s, false, err)) < 0) {
        core_error_wrap(err, "controller mode: reading the objects from the Kubernetes API");
        goto out;
    }
    inner.kube_store = false;
    inner.config_path = s.dir;
    if (!opts->once)
        inner.stop = &s.loop_stop;
    if (inner.config_poll_ms == 0)
        inner.config_poll_ms = STORE_POLL_MS;
    if (!opts->once) {
        if ((rc = watches_start(w, &s, err)) < 0) {
            core_error_wrap(err, "controller mode: watching the objects");
            goto out;
        }
        s.watching = true;
        if (pthread_create(&th, NULL, store_thread, &s) != 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "cannot start the Kubernetes store thread");
            goto out;
        }
        started = true;
    }
    eng_reconcile_hook_set(reconcile_marked, &s);
    rc = berth_engine_run(all_ready_out, &inner, err);
    eng_reconcile_hook_set(NULL, NULL);
    if (started) {
        pthread_mutex_lock(&s.mu);
        s.stop = true;
        pthread_cond_signal(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(th, NULL);
    }
    if (rc == 0 && s.lease_lost)
        rc = core_error_set(err, BERTH_ECONFLICT,
                            "controller mode: lost the leader Lease %s; stopped reconciling",
                            s.lease_path);
    if (opts->once) /* one write-back of what the pass did */
        pass_logged(&s, true);
out:
    watches_stop(w, &s);
    for (size_t i = 0; i < NCR; i++)
        json_decref(s.cache[i]);
    for (size_t i = 0; i < NREF; i++)
        json_decref(s.rcache[i]);
    eng_kube_free(s.k);
    json_decref(s.handled);
    json_decref(s.pending);
    json_decref(s.refs);
    json_decref(s.tried);
    json_decref(s.ref_digest);
    json_decref(s.wake);
    json_decref(s.sent);
    core_free(s.last_error);
    core_free(s.dir);
    core_free(s.identity);
    core_free(s.lease_path);
    eng_kstore_lease_obs_dispose(&s.lease_seen);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
