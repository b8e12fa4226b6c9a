/*
 * engine/kube_store_doc.c: the pure parts of controller mode (engine/kube_store.c): which
 * Secrets and ConfigMaps a spec references, the store document materialised for an object,
 * which referenced objects the Secret/ConfigMap watches keep, and the status merge patch.
 *
 * Design: functions of JSON values only (no I/O, no clock, no locks), so that
 * tests/unit/engine/kube_store_test.c pins them; kube_store.c does the requests, files and
 * threads around them.
 */
#include <string.h>

#include "core/core.h"
#include "engine/kube_store.h"

static const char *str_at(const json_t *o, const char *a)
{
    return json_string_value(json_object_get(o, a));
}

bool eng_kstore_name_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return false;
    return true;
}

json_t *eng_kstore_doc(const json_t *obj, const char *api_version, const char *kind,
                       const char *const *keys)
{
    json_t *md = json_object_get(obj, "metadata");
    json_t *doc = json_object(), *m = json_object();
    json_t *labels = json_object_get(md, "labels");
    if (!doc || !m)
        goto fail;
    if (json_object_set_new(doc, "apiVersion", json_string(api_version)) < 0 ||
        json_object_set_new(doc, "kind", json_string(kind)) < 0 ||
        json_object_set(m, "name", json_object_get(md, "name")) < 0 ||
        json_object_set(m, "namespace", json_object_get(md, "namespace")) < 0 ||
        (json_is_object(labels) && json_object_size(labels) > 0 &&
         json_object_set(m, "labels", labels) < 0) ||
        json_object_set(doc, "metadata", m) < 0)
        goto fail;
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v && json_object_set(doc, keys[i], v) < 0)
            goto fail;
    }
    json_decref(m);
    return doc;
fail:
    json_decref(m);
    json_decref(doc);
    return NULL;
}

static int ref_add(json_t *refs, const char *kind, const char *ns, const char *name)
{
    char *id = core_sprintf("%s/%s/%s", kind, ns, name);
    int rc = id && json_object_set_new(refs, id, json_true()) == 0 ? 0 : BERTH_ENOMEM;
    core_free(id);
    return rc;
}

static bool is_secret_ref_key(const char *key)
{
    size_t kl = key ? strlen(key) : 0;
    return kl >= 9 &&
           (strcmp(key + kl - 9, "secretRef") == 0 || strcmp(key + kl - 9, "SecretRef") == 0);
}

static int collect(json_t *refs, json_t *v, const char *key, const char *ns)
{
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v)) {
        if (is_secret_ref_key(key) && str_at(v, "name") &&
            ref_add(refs, "Secret", ns, str_at(v, "name")) < 0)
            return BERTH_ENOMEM;
        json_object_foreach(v, k, c) if (collect(refs, c, k, ns) < 0) return BERTH_ENOMEM;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            const char *kind = str_at(c, "kind"), *n = str_at(c, "name");
            if (key && strcmp(key, "substituteFrom") == 0 && kind && n &&
                (strcmp(kind, "Secret") == 0 || strcmp(kind, "ConfigMap") == 0) &&
                ref_add(refs, kind, ns, n) < 0)
                return BERTH_ENOMEM;
            if (collect(refs, c, key, ns) < 0)
                return BERTH_ENOMEM;
        }
    }
    return 0;
}

int eng_kstore_refs_collect(json_t *refs, json_t *spec, const char *ns)
{
    return collect(refs, spec, NULL, ns);
}

bool eng_kstore_ref_wanted(const json_t *refs, const char *kind, const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = str_at(md, "namespace"), *name = str_at(md, "name");
    char *id;
    bool wanted;
    if (!refs || !ns || !name)
        return false;
    if (!(id = core_sprintf("%s/%s/%s", kind, ns, name)))
        return false;
    wanted = json_object_get(refs, id) != NULL;
    core_free(id);
    return wanted;
}

int eng_kstore_status_patch(json_t **out, const json_t *file_status, const json_t *live_status,
                            int64_t generation, const char *handled)
{
    json_t *st = json_deep_copy(file_status), *c, *v;
    const char *key;
    bool differs = false;
    size_t i;

    *out = NULL;
    if (!st)
        return BERTH_ENOMEM;
    if (generation > 0) {
        if (json_object_set_new(st, "observedGeneration", json_integer(generation)) < 0)
            goto nomem;
        json_array_foreach(json_object_get(st, "conditions"), i, c)
        {
            if (json_is_object(c) &&
                json_object_set_new(c, "observedGeneration", json_integer(generation)) < 0)
                goto nomem;
        }
    }
    if (handled && json_object_set_new(st, "lastHandledReconcileAt", json_string(handled)) < 0)
        goto nomem;
    json_object_foreach(st, key, v) if (!json_equal(v, json_object_get(live_status, key))) differs =
        true;
    if (differs)
        *out = st;
    else
        json_decref(st);
    return 0;
nomem:
    json_decref(st);
    return BERTH_ENOMEM;
}

void eng_kstore_lease_obs_dispose(eng_kstore_lease_obs *o)
{
    if (!o)
        return;
    core_free(o->record);
    o->record = NULL;
    o->changed_ms = 0;
}

int eng_kstore_lease_expired(eng_kstore_lease_obs *o, const json_t *spec, int64_t default_s,
                             int64_t now_ms)
{
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    json_int_t trans = json_integer_value(json_object_get(spec, "leaseTransitions"));
    char *record;

    if (dur <= 0)
        dur = default_s;
    record = core_sprintf("%s|%s|%lld|%lld", holder ? holder : "", renew ? renew : "",
                          (long long)trans, (long long)dur);
    if (!record)
        return BERTH_ENOMEM;
    if (!o->record || strcmp(o->record, record) != 0) {
        core_free(o->record);
        o->record = record;
        o->changed_ms = now_ms;
        return 0;
    }
    core_free(record);
    return now_ms - o->changed_ms >= (int64_t)dur * 1000 ? 1 : 0;
}
