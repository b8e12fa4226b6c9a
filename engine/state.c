/*
 * engine/state.c: the standalone state directory (status, inventories, artifacts, events) and
 * the inventory and status-condition helpers every reconciler and target shares.
 *
 * Design: one eng_state per directory, guarded by flock(2) on STATE/berth.lock for as long as it
 * is open. flock locks belong to the open file description, so a second open in the same
 * process is refused as well, which is what the tests rely on (fcntl locks would not be). Path
 * components come from object names; they are checked again here (no '/', no leading '.') so a
 * name can never leave its directory even if a caller skipped validation. JSON files are
 * written whole with core_fs_write_atomic; events are an append-only log rotated by size.
 */
#include "engine/state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/core.h"

#define STATE_MAX_JSON_BYTES (4u * 1024u * 1024u)
#define EVENTS_FILE "events.jsonl"
#define LOCK_FILE "berth.lock"

/* ---------------------------------------------------------------------------------------- */
/* inventory                                                                                */

void eng_inventory_init(eng_inventory *inv)
{
    if (inv)
        memset(inv, 0, sizeof(*inv));
}

static void entry_dispose(eng_inv_entry *e)
{
    core_free(e->id);
    core_free(e->version);
    core_free(e->digest);
}

void eng_inventory_dispose(eng_inventory *inv)
{
    if (!inv)
        return;
    for (size_t i = 0; i < inv->len; i++)
        entry_dispose(&inv->entries[i]);
    core_free(inv->entries);
    core_free(inv->cluster);
    memset(inv, 0, sizeof(*inv));
}

static eng_inv_entry *find_mut(const eng_inventory *inv, const char *id)
{
    for (size_t i = 0; inv && id && i < inv->len; i++)
        if (strcmp(inv->entries[i].id, id) == 0)
            return &inv->entries[i];
    return NULL;
}

const eng_inv_entry *eng_inventory_find(const eng_inventory *inv, const char *id)
{
    return find_mut(inv, id);
}

static int entry_fill(eng_inv_entry *e, const char *id, const char *version, const char *digest)
{
    memset(e, 0, sizeof(*e));
    e->id = core_strdup(id);
    e->version = core_strdup(version ? version : "");
    e->digest = digest ? core_strdup(digest) : NULL;
    if (!e->id || !e->version || (digest && !e->digest)) {
        entry_dispose(e);
        return BERTH_ENOMEM;
    }
    return 0;
}

int eng_inventory_add(eng_inventory *inv, const char *id, const char *version, const char *digest,
                      berth_error **err)
{
    eng_inv_entry e, *old;
    BERTH_ARG_CHECK(inv && id);
    if (entry_fill(&e, id, version, digest) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((old = find_mut(inv, id)) != NULL) {
        entry_dispose(old);
        *old = e;
        return 0;
    }
    if (inv->len == inv->cap) {
        size_t ncap = inv->cap ? inv->cap * 2 : 16;
        eng_inv_entry *p = core_realloc(inv->entries, ncap * sizeof(*p));
        if (!p) {
            entry_dispose(&e);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        inv->entries = p;
        inv->cap = ncap;
    }
    inv->entries[inv->len++] = e;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const eng_inv_entry *)a)->id, ((const eng_inv_entry *)b)->id);
}

void eng_inventory_sort(eng_inventory *inv)
{
    if (inv && inv->len > 1)
        qsort(inv->entries, inv->len, sizeof(*inv->entries), entry_cmp);
}

int eng_inventory_diff(eng_inventory *stale_out, const eng_inventory *old, const eng_inventory *cur,
                       berth_error **err)
{
    int rc = 0;
    BERTH_ARG_CHECK(stale_out && old);
    eng_inventory_init(stale_out);
    for (size_t i = 0; i < old->len && rc == 0; i++) {
        const eng_inv_entry *e = &old->entries[i];
        if (!eng_inventory_find(cur, e->id))
            rc = eng_inventory_add(stale_out, e->id, e->version, e->digest, err);
    }
    if (rc < 0)
        eng_inventory_dispose(stale_out);
    return rc;
}

static json_t *entry_json(const eng_inv_entry *e)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "id", json_string(e->id)) < 0 ||
        json_object_set_new(o, "v", json_string(e->version)) < 0 ||
        (e->digest && json_object_set_new(o, "digest", json_string(e->digest)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int eng_inventory_to_json(json_t **out, const eng_inventory *inv, berth_error **err)
{
    json_t *o = json_object(), *a = json_array();
    BERTH_ARG_CHECK(out && inv);
    if (!o || !a || json_object_set(o, "entries", a) < 0)
        goto oom;
    for (size_t i = 0; i < inv->len; i++)
        if (json_array_append_new(a, entry_json(&inv->entries[i])) < 0)
            goto oom;
    if (inv->prune != ENG_INV_PRUNE_UNKNOWN &&
        json_object_set_new(o, "prune", json_boolean(inv->prune == ENG_INV_PRUNE_ON)) < 0)
        goto oom;
    if (inv->cluster && json_object_set_new(o, "cluster", json_string(inv->cluster)) < 0)
        goto oom;
    if (inv->wait_ms > 0 &&
        json_object_set_new(o, "waitForTermination", json_integer(inv->wait_ms)) < 0)
        goto oom;
    json_decref(a);
    *out = o;
    return 0;
oom:
    json_decref(a);
    json_decref(o);
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static int entry_from_json(eng_inventory *out, const json_t *e, size_t i, const char *what,
                           berth_error **err)
{
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *v = json_string_value(json_object_get(e, "v"));
    const json_t *d = json_object_get(e, "digest");
    if (!id || !id[0] || !v || (d && !json_is_string(d)))
        return core_error_set(err, BERTH_EINVAL,
                              "%s: inventory entry %zu needs string \"id\" and \"v\"", what, i);
    return eng_inventory_add(out, id, v, json_string_value(d), err);
}

int eng_inventory_from_json(eng_inventory *out, const json_t *j, const char *what,
                            berth_error **err)
{
    const json_t *a = json_object_get(j, "entries"), *prune = json_object_get(j, "prune");
    const json_t *cluster = json_object_get(j, "cluster");
    int rc = 0;
    BERTH_ARG_CHECK(out);
    eng_inventory_init(out);
    if (!json_is_array(a))
        return core_error_set(err, BERTH_EINVAL, "%s: inventory has no \"entries\" list",
                              what ? what : "inventory");
    if (prune && !json_is_boolean(prune))
        return core_error_set(err, BERTH_EINVAL, "%s: inventory \"prune\" is not a boolean",
                              what ? what : "inventory");
    if (cluster && !json_is_string(cluster))
        return core_error_set(err, BERTH_EINVAL, "%s: inventory \"cluster\" is not a string",
                              what ? what : "inventory");
    for (size_t i = 0; i < json_array_size(a) && rc == 0; i++)
        rc = entry_from_json(out, json_array_get(a, i), i, what ? what : "inventory", err);
    if (rc < 0)
        eng_inventory_dispose(out);
    else
        eng_inventory_sort(out);
    if (rc == 0 && prune)
        out->prune = json_is_true(prune) ? ENG_INV_PRUNE_ON : ENG_INV_PRUNE_OFF;
    if (rc == 0)
        out->wait_ms = json_integer_value(json_object_get(j, "waitForTermination"));
    if (rc == 0 && cluster && !(out->cluster = core_strdup(json_string_value(cluster)))) {
        eng_inventory_dispose(out);
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* inventory ids                                                                            */

static bool is_rbac(const char *group, const char *kind)
{
    return strcmp(group, "rbac.authorization.k8s.io") == 0 &&
           (strcmp(kind, "Role") == 0 || strcmp(kind, "ClusterRole") == 0 ||
            strcmp(kind, "RoleBinding") == 0 || strcmp(kind, "ClusterRoleBinding") == 0);
}

/* Replace every occurrence of from with to; heap result or NULL on OOM. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    berth_buf b = BERTH_BUF_INIT;
    size_t fl = strlen(from);
    int rc = 0;
    while (*s && rc == 0) {
        if (strncmp(s, from, fl) == 0) {
            rc = berth_buf_puts(&b, to);
            s += fl;
        } else {
            rc = berth_buf_put(&b, s++, 1);
        }
    }
    if (rc < 0 || berth_buf_put(&b, "", 0) < 0) {
        berth_buf_dispose(&b);
        return NULL;
    }
    return berth_buf_detach(&b);
}

int eng_objid_format(char **out, const char *ns, const char *name, const char *group,
                     const char *kind, berth_error **err)
{
    char *n;
    BERTH_ARG_CHECK(out && name && kind);
    ns = ns ? ns : "";
    group = group ? group : "";
    if (!name[0] || !kind[0] || strchr(ns, '_') || strchr(group, '_') || strchr(kind, '_'))
        return core_error_set(err, BERTH_EINVAL,
                              "object %s \"%s\" in namespace \"%s\" (group \"%s\") can not be "
                              "named in an inventory",
                              kind, name, ns, group);
    if (!(n = is_rbac(group, kind) ? replace_all(name, ":", "__") : core_strdup(name)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    *out = core_sprintf("%s_%s_%s_%s", ns, n, group, kind);
    core_free(n);
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

void eng_objid_dispose(eng_objid *id)
{
    if (!id)
        return;
    core_free(id->ns);
    core_free(id->name);
    core_free(id->group);
    core_free(id->kind);
    memset(id, 0, sizeof(*id));
}

int eng_objid_parse(eng_objid *out, const char *id, berth_error **err)
{
    const char *first, *last, *prev;
    char *raw_name = NULL;
    BERTH_ARG_CHECK(out && id);
    memset(out, 0, sizeof(*out));
    first = strchr(id, '_');
    last = strrchr(id, '_');
    for (prev = last; prev && prev > first && prev[-1] != '_'; prev--)
        ;
    if (!first || !last || !prev || prev <= first + 1 || !last[1])
        return core_error_set(err, BERTH_EINVAL, "invalid inventory id \"%s\"", id);
    prev--; /* the '_' before the group */
    out->ns = core_strndup(id, (size_t)(first - id));
    raw_name = core_strndup(first + 1, (size_t)(prev - first - 1));
    out->group = core_strndup(prev + 1, (size_t)(last - prev - 1));
    out->kind = core_strdup(last + 1);
    if (raw_name && out->group && out->kind)
        out->name = is_rbac(out->group, out->kind) ? replace_all(raw_name, "__", ":")
                                                   : core_strdup(raw_name);
    core_free(raw_name);
    if (!out->ns || !out->name || !out->group || !out->kind) {
        eng_objid_dispose(out);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

static const char *obj_str(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

/* "object 3 (ConfigMap "x")": enough to find the object in a build's output. */
static void describe(char *buf, size_t size, const json_t *obj, size_t index)
{
    const char *kind = obj_str(obj, "kind", NULL), *name = obj_str(obj, "metadata", "name");
    if (kind && name)
        snprintf(buf, size, "object %zu (%.60s \"%.100s\")", index, kind, name);
    else if (kind || name)
        snprintf(buf, size, "object %zu (%s \"%.100s\")", index, kind ? "kind" : "name",
                 kind ? kind : name);
    else
        snprintf(buf, size, "object %zu", index);
}

int eng_object_id(char **id_out, char **version_out, const json_t *obj, size_t index,
                  berth_error **err)
{
    const char *av = obj_str(obj, "apiVersion", NULL), *kind = obj_str(obj, "kind", NULL);
    const char *name = obj_str(obj, "metadata", "name"),
               *ns = obj_str(obj, "metadata", "namespace");
    const char *missing = !json_is_object(obj) ? "is not an object"
                          : !av || !av[0]      ? "has no apiVersion"
                          : !kind || !kind[0]  ? "has no kind"
                          : !name || !name[0]  ? "has no metadata.name"
                                               : NULL;
    const char *slash;
    char what[200], *group;
    int rc;
    BERTH_ARG_CHECK(id_out && version_out);
    describe(what, sizeof(what), obj, index);
    if (missing)
        return core_error_set(err, BERTH_EINVAL, "%s %s", what, missing);
    slash = strchr(av, '/');
    if (!(group = slash ? core_strndup(av, (size_t)(slash - av)) : core_strdup("")))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = eng_objid_format(id_out, ns, name, group, kind, err);
    core_free(group);
    if (rc < 0) {
        core_error_wrap(err, "%s", what);
        return rc;
    }
    if (!(*version_out = core_strdup(slash ? slash + 1 : av))) {
        core_free(*id_out);
        *id_out = NULL;
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* status conditions                                                                        */

json_t *eng_status_new(void)
{
    json_t *s = json_object();
    if (!s || json_object_set_new(s, "observedGeneration", json_integer(-1)) < 0 ||
        json_object_set_new(s, "conditions", json_array()) < 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

json_t *eng_status_condition(const json_t *status, const char *type)
{
    json_t *conds = json_object_get(status, "conditions"), *c;
    size_t i;
    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && type && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

void eng_status_remove_condition(json_t *status, const char *type)
{
    json_t *conds = json_object_get(status, "conditions");
    for (size_t i = 0; i < json_array_size(conds); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(conds, i), "type"));
        if (t && type && strcmp(t, type) == 0) {
            json_array_remove(conds, i);
            return;
        }
    }
}

/* The message cut to the limit with "..." on a UTF-8 character boundary. */
static json_t *trimmed_message(const char *m)
{
    size_t len = strlen(m), keep = ENG_CONDITION_MESSAGE_MAX - 3;
    char *buf;
    json_t *j;
    if (len <= ENG_CONDITION_MESSAGE_MAX)
        return json_string(m);
    while (keep > 0 && ((unsigned char)m[keep] & 0xC0) == 0x80)
        keep--;
    if (!(buf = core_malloc(keep + 4)))
        return NULL;
    memcpy(buf, m, keep);
    memcpy(buf + keep, "...", 4);
    j = json_string(buf);
    core_free(buf);
    return j;
}

static int cond_rank(const json_t *c)
{
    static const char *const order[] = {"Stalled", "Reconciling", "Ready"};
    const char *t = json_string_value(json_object_get(c, "type"));
    for (int i = 0; t && i < 3; i++)
        if (strcmp(t, order[i]) == 0)
            return i;
    return 3;
}

/* Stable reorder: Stalled, Reconciling, Ready, then the rest as they were. */
static int sort_conditions(json_t *conds)
{
    json_t *sorted = json_array();
    if (!sorted)
        return BERTH_ENOMEM;
    for (int rank = 0; rank <= 3; rank++)
        for (size_t i = 0; i < json_array_size(conds); i++)
            if (cond_rank(json_array_get(conds, i)) == rank &&
                json_array_append(sorted, json_array_get(conds, i)) < 0) {
                json_decref(sorted);
                return BERTH_ENOMEM;
            }
    json_array_clear(conds);
    json_array_extend(conds, sorted);
    json_decref(sorted);
    return 0;
}

static bool same_str(const json_t *obj, const char *key, const json_t *v)
{
    const char *a = json_string_value(json_object_get(obj, key)), *b = json_string_value(v);
    return a && b && strcmp(a, b) == 0;
}

static json_t *condition_json(const eng_condition *c, const json_t *old, int64_t now_ms)
{
    json_t *o = json_object(), *msg = trimmed_message(c->message ? c->message : "");
    json_t *old_ts = json_object_get(old, "lastTransitionTime");
    char ts[32];
    core_time_rfc3339(ts, now_ms / 1000);
    if (!o || !msg || json_object_set_new(o, "type", json_string(c->type)) < 0 ||
        json_object_set_new(o, "status", json_string(c->status)) < 0 ||
        json_object_set_new(o, "observedGeneration", json_integer(c->observed_generation)) < 0 ||
        json_object_set_new(o, "lastTransitionTime", json_string(ts)) < 0 ||
        json_object_set_new(o, "reason", json_string(c->reason)) < 0 ||
        json_object_set(o, "message", msg) < 0) {
        json_decref(o);
        json_decref(msg);
        return NULL;
    }
    if (old_ts && same_str(old, "status", json_object_get(o, "status")) &&
        same_str(old, "reason", json_object_get(o, "reason")) && same_str(old, "message", msg) &&
        json_object_set(o, "lastTransitionTime", old_ts) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(msg);
    return o;
}

int eng_status_set_condition(json_t *status, const eng_condition *c, int64_t now_ms,
                             berth_error **err)
{
    json_t *conds, *old, *cond;
    BERTH_ARG_CHECK(status && c);
    if (!json_is_object(status) || !c->type || !c->status || !c->reason)
        return core_error_set(err, BERTH_EINVAL,
                              "condition %s needs a status object, type, "
                              "status and reason",
                              c->type ? c->type : "(no type)");
    if (!(conds = json_object_get(status, "conditions"))) {
        if (json_object_set_new(status, "conditions", json_array()) < 0)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        conds = json_object_get(status, "conditions");
    }
    if (!json_is_array(conds))
        return core_error_set(err, BERTH_EINVAL, "status \"conditions\" is not a list");
    old = eng_status_condition(status, c->type);
    if (!(cond = condition_json(c, old, now_ms)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    eng_status_remove_condition(status, c->type);
    if (json_array_append_new(conds, cond) < 0 || sort_conditions(conds) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

int eng_status_set_artifact(json_t *status, const eng_artifact_info *a, berth_error **err)
{
    json_t *o;
    char ts[32];
    BERTH_ARG_CHECK(status && a);
    if (!json_is_object(status) || !a->revision || !a->digest)
        return core_error_set(err, BERTH_EINVAL, "artifact needs a revision and a digest");
    core_time_rfc3339(ts, a->updated_ms / 1000);
    if (!(o = json_object()) || json_object_set_new(o, "revision", json_string(a->revision)) < 0 ||
        json_object_set_new(o, "digest", json_string(a->digest)) < 0 ||
        json_object_set_new(o, "lastUpdateTime", json_string(ts)) < 0 ||
        (a->size >= 0 && json_object_set_new(o, "size", json_integer(a->size)) < 0) ||
        (a->path && json_object_set_new(o, "path", json_string(a->path)) < 0) ||
        (a->url && json_object_set_new(o, "url", json_string(a->url)) < 0) ||
        json_object_set_new(status, "artifact", o) < 0) {
        json_decref(o);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

int eng_status_set_inventory(json_t *status, const eng_inventory *inv, berth_error **err)
{
    json_t *j = NULL, *entries;
    int rc;
    BERTH_ARG_CHECK(status && inv);
    if (!json_is_object(status))
        return core_error_set(err, BERTH_EINVAL, "status is not an object");
    if ((rc = eng_inventory_to_json(&j, inv, err)) < 0)
        return rc;
    entries = json_object_get(j, "entries");
    for (size_t i = 0; i < json_array_size(entries); i++)
        json_object_del(json_array_get(entries, i), "digest");
    json_object_del(j, "cluster"); /* the inventory file's; Flux's status has no such field */
    if (json_object_set_new(status, "inventory", j) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the directory                                                                            */

struct eng_state {
    char *dir;
    int lock_fd;
    size_t events_max_bytes;
    unsigned int events_keep;
    pthread_mutex_t events_mu; /* one appender (and rotator) of events.jsonl at a time */
};

const char *eng_state_path(const eng_state *st)
{
    return st ? st->dir : NULL;
}

/* A single path component made of [A-Za-z0-9._-], not starting with '.', at most 253 bytes. */
static int check_component(const char *what, const char *s, berth_error **err)
{
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len <= 253 && s[0] != '.';
    for (size_t i = 0; ok && i < len; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_';
    }
    if (!ok)
        return core_error_set(err, BERTH_EINVAL, "%s \"%s\" can not be used as a file name", what,
                              s ? s : "");
    return 0;
}

static int check_object(const char *kind, const char *ns, const char *name, berth_error **err)
{
    int rc;
    if ((kind && (rc = check_component("kind", kind, err)) < 0) ||
        (rc = check_component("namespace", ns, err)) < 0 ||
        (rc = check_component("name", name, err)) < 0)
        return rc;
    return 0;
}

static char *lower(const char *s)
{
    char *d = core_strdup(s);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* "<dir>/<area>/<kind lowercase>/<ns>/<name><suffix>" (kind NULL: no kind level). */
static int object_path(char **out, const eng_state *st, const char *area, const char *kind,
                       const char *ns, const char *name, const char *suffix, berth_error **err)
{
    char *k = NULL;
    int rc;
    if ((rc = check_object(kind, ns, name, err)) < 0)
        return rc;
    if (kind && !(k = lower(kind)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    *out = k ? core_sprintf("%s/%s/%s/%s/%s%s", st->dir, area, k, ns, name, suffix)
             : core_sprintf("%s/%s/%s/%s%s", st->dir, area, ns, name, suffix);
    core_free(k);
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static int parent_dirs(const char *path, berth_error **err)
{
    const char *slash = strrchr(path, '/');
    char *dir = core_strndup(path, slash ? (size_t)(slash - path) : 0);
    int rc;
    if (!dir)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = core_fs_mkdirs(dir, 0700, err);
    core_free(dir);
    return rc;
}

/* The pid written in the lock file, for the message; 0 when unknown. */
static long lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    char *end;
    long pid;
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

static int lock_busy(const eng_state *st, berth_error **err)
{
    long holder = lock_holder(st->lock_fd);
    if (holder)
        return core_error_set(err, BERTH_ECONFLICT,
                              "state directory \"%s\" is in use by another berth process (pid "
                              "%ld)",
                              st->dir, holder);
    return core_error_set(err, BERTH_ECONFLICT,
                          "state directory \"%s\" is in use by another berth process", st->dir);
}

static int take_lock(eng_state *st, berth_error **err)
{
    char *path = core_sprintf("%s/%s", st->dir, LOCK_FILE), pid[32];
    int rc = 0, n;
    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rc = core_error_errno(err, errno, "opening lock file \"%s\"", path);
    } else if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? lock_busy(st, err)
                                  : core_error_errno(err, errno, "locking \"%s\"", path);
    } else {
        n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(st->lock_fd, 0) < 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n)
            rc = core_error_errno(err, errno, "writing lock file \"%s\"", path);
    }
    core_free(path);
    return rc;
}

static int make_areas(const eng_state *st, berth_error **err)
{
    static const char *const areas[] = {"artifacts", "status", "inventory"};
    for (size_t i = 0; i < 3; i++) {
        char *p = core_sprintf("%s/%s", st->dir, areas[i]);
        int rc =
            p ? core_fs_mkdirs(p, 0700, err) : core_error_set(err, BERTH_ENOMEM, "out of memory");
        core_free(p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int eng_state_open(eng_state **out, const char *dir, const eng_state_opts *opts, berth_error **err)
{
    eng_state *st;
    int rc;
    BERTH_ARG_CHECK(out && dir && dir[0]);
    if (!(st = core_calloc(1, sizeof(*st))) || !(st->dir = core_strdup(dir))) {
        core_free(st);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    st->lock_fd = -1;
    pthread_mutex_init(&st->events_mu, NULL);
    st->events_max_bytes = opts && opts->events_max_bytes ? opts->events_max_bytes : 8u << 20;
    st->events_keep = opts && opts->events_keep ? opts->events_keep : 3;
    if ((rc = core_fs_mkdirs(dir, 0700, err)) < 0 || (rc = take_lock(st, err)) < 0 ||
        (rc = make_areas(st, err)) < 0) {
        eng_state_free(st);
        if (rc != BERTH_ECONFLICT) /* that message names the directory already */
            core_error_wrap(err, "opening state directory \"%s\"", dir);
        return rc;
    }
    *out = st;
    return 0;
}

void eng_state_free(eng_state *st)
{
    if (!st)
        return;
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->events_mu);
    core_free(st->dir);
    core_free(st);
}

int eng_state_artifact_dir(char **out, eng_state *st, const char *kind, const char *ns,
                           const char *name, berth_error **err)
{
    int rc;
    BERTH_ARG_CHECK(out && st && kind);
    if ((rc = object_path(out, st, "artifacts", kind, ns, name, "", err)) < 0)
        return rc;
    if ((rc = core_fs_mkdirs(*out, 0700, err)) < 0) {
        core_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- JSON files ---- */

static int read_json(json_t **out, const char *path, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    json_error_t je;
    int rc;
    *out = NULL;
    if (!core_fs_exists(path))
        return 0;
    if ((rc = core_fs_read_file(&b, path, STATE_MAX_JSON_BYTES, err)) < 0)
        goto out;
    if (!(*out = json_loadb(b.ptr, b.len, 0, &je)))
        rc = core_error_set(err, BERTH_EINVAL, "state file \"%s\": line %d: %s", path, je.line,
                            je.text);
out:
    berth_buf_dispose(&b);
    return rc;
}

/* json_dumps(j) plus a newline, heap (core_free); NULL on OOM or an unwritable value. */
static char *dump_line(const json_t *j, size_t flags)
{
    char *text = json_dumps(j, flags), *line = text ? core_sprintf("%s\n", text) : NULL;
    free(text);
    return line;
}

static int write_json(const char *path, const json_t *j, berth_error **err)
{
    char *text = dump_line(j, JSON_INDENT(2));
    int rc;
    if (!text)
        return core_error_set(err, BERTH_ENOMEM, "out of memory writing \"%s\"", path);
    if ((rc = parent_dirs(path, err)) == 0)
        rc = core_fs_write_atomic(path, text, strlen(text), 0600, err);
    core_free(text);
    return rc;
}

static int remove_file(const char *path, berth_error **err)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int rc;
    if (unlink(path) < 0)
        return errno == ENOENT ? 0 : core_error_errno(err, errno, "removing \"%s\"", path);
    if (!(dir = core_strndup(path, slash ? (size_t)(slash - path) : 0)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = core_fs_sync_dir(dir, err);
    core_free(dir);
    return rc;
}

int eng_state_status_read(json_t **out, eng_state *st, const char *kind, const char *ns,
                          const char *name, berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(out && st && kind);
    *out = NULL;
    if ((rc = object_path(&path, st, "status", kind, ns, name, ".json", err)) < 0)
        return rc;
    rc = read_json(out, path, err);
    if (rc == 0 && *out && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = core_error_set(err, BERTH_EINVAL, "state file \"%s\" is not a JSON object", path);
    }
    core_free(path);
    return rc;
}

int eng_state_status_write(eng_state *st, const char *kind, const char *ns, const char *name,
                           const json_t *status, berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(st && kind && json_is_object(status));
    if ((rc = object_path(&path, st, "status", kind, ns, name, ".json", err)) < 0)
        return rc;
    rc = write_json(path, status, err);
    core_free(path);
    return rc;
}

int eng_state_status_remove(eng_state *st, const char *kind, const char *ns, const char *name,
                            berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(st && kind);
    if ((rc = object_path(&path, st, "status", kind, ns, name, ".json", err)) < 0)
        return rc;
    rc = remove_file(path, err);
    core_free(path);
    return rc;
}

int eng_state_inventory_read(eng_inventory *out, eng_state *st, const char *ns, const char *name,
                             berth_error **err)
{
    char *path = NULL;
    json_t *j = NULL;
    int rc;
    BERTH_ARG_CHECK(out && st);
    eng_inventory_init(out);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".json", err)) < 0)
        return rc;
    if ((rc = read_json(&j, path, err)) == 0 && j)
        rc = eng_inventory_from_json(out, j, path, err);
    json_decref(j);
    core_free(path);
    return rc;
}

static int ptr_entry_cmp(const void *a, const void *b)
{
    return entry_cmp(*(const eng_inv_entry *const *)a, *(const eng_inv_entry *const *)b);
}

/* The inventory as JSON in id order, without reordering inv itself. */
static int sorted_json(json_t **out, const eng_inventory *inv, berth_error **err)
{
    eng_inventory view = ENG_INVENTORY_INIT;
    const eng_inv_entry **p = core_calloc(inv->len ? inv->len : 1, sizeof(*p));
    int rc;
    if (!p || !(view.entries = core_calloc(inv->len ? inv->len : 1, sizeof(eng_inv_entry)))) {
        core_free(p);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < inv->len; i++)
        p[i] = &inv->entries[i];
    if (inv->len > 1)
        qsort(p, inv->len, sizeof(*p), ptr_entry_cmp);
    for (size_t i = 0; i < inv->len; i++)
        view.entries[i] = *p[i]; /* shallow: view borrows the strings */
    view.len = inv->len;
    view.prune = inv->prune;
    view.cluster = inv->cluster;
    view.wait_ms = inv->wait_ms;
    rc = eng_inventory_to_json(out, &view, err);
    core_free(view.entries);
    core_free(p);
    return rc;
}

int eng_state_inventory_write(eng_state *st, const char *ns, const char *name,
                              const eng_inventory *inv, berth_error **err)
{
    char *path = NULL;
    json_t *j = NULL;
    int rc;
    BERTH_ARG_CHECK(st && inv);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".json", err)) < 0)
        return rc;
    if ((rc = sorted_json(&j, inv, err)) == 0)
        rc = write_json(path, j, err);
    json_decref(j);
    core_free(path);
    return rc;
}

int eng_state_inventory_remove(eng_state *st, const char *ns, const char *name, berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(st);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".json", err)) < 0)
        return rc;
    rc = remove_file(path, err);
    core_free(path);
    if (rc == 0)
        rc = eng_state_kubeconfig_remove(st, ns, name, err);
    return rc;
}

int eng_state_kubeconfig_write(eng_state *st, const char *ns, const char *name, const void *data,
                               size_t len, berth_error **err)
{
    berth_buf cur = BERTH_BUF_INIT;
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(st && data);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".kubeconfig", err)) < 0)
        return rc;
    /* unchanged: nothing is written, so a no-change reconcile rewrites nothing */
    if (core_fs_exists(path) && core_fs_read_file(&cur, path, 4u << 20, NULL) == 0 &&
        cur.len == len && (len == 0 || sodium_memcmp(cur.ptr, data, len) == 0))
        goto out;
    if ((rc = parent_dirs(path, err)) == 0)
        rc = core_fs_write_atomic(path, data, len, 0600, err);
out:
    if (cur.ptr)
        sodium_memzero(cur.ptr, cur.len);
    berth_buf_dispose(&cur);
    core_free(path);
    return rc;
}

int eng_state_kubeconfig_read(berth_buf *out, eng_state *st, const char *ns, const char *name,
                              berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(out && st);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".kubeconfig", err)) < 0)
        return rc;
    if (!core_fs_exists(path))
        rc = core_error_set(err, BERTH_ENOTFOUND, "\"%s\" is missing", path);
    else
        rc = core_fs_read_file(out, path, 4u << 20, err);
    core_free(path);
    return rc;
}

int eng_state_kubeconfig_remove(eng_state *st, const char *ns, const char *name, berth_error **err)
{
    char *path = NULL;
    int rc;
    BERTH_ARG_CHECK(st);
    if ((rc = object_path(&path, st, "inventory", NULL, ns, name, ".kubeconfig", err)) < 0)
        return rc;
    rc = remove_file(path, err);
    core_free(path);
    return rc;
}

/* ---- events ---- */

static json_t *event_json(const eng_event *ev)
{
    json_t *o = json_object(), *inv = json_object();
    char ts[32];
    core_time_rfc3339(ts, ev->time_ms / 1000);
    if (!o || !inv || json_object_set_new(inv, "kind", json_string(ev->kind)) < 0 ||
        json_object_set_new(inv, "namespace", json_string(ev->ns ? ev->ns : "")) < 0 ||
        json_object_set_new(inv, "name", json_string(ev->name)) < 0 ||
        (ev->api_version &&
         json_object_set_new(inv, "apiVersion", json_string(ev->api_version)) < 0) ||
        json_object_set(o, "involvedObject", inv) < 0 ||
        json_object_set_new(o, "severity", json_string(ev->severity)) < 0 ||
        json_object_set_new(o, "timestamp", json_string(ts)) < 0 ||
        json_object_set_new(o, "reason", json_string(ev->reason)) < 0 ||
        json_object_set_new(o, "message", json_string(ev->message ? ev->message : "")) < 0 ||
        (ev->metadata && json_object_set_new(o, "metadata", json_deep_copy(ev->metadata)) < 0) ||
        json_object_set_new(o, "reportingController", json_string("berth")) < 0) {
        json_decref(inv);
        json_decref(o);
        return NULL;
    }
    json_decref(inv);
    return o;
}

static int rotate_events(const eng_state *st, berth_error **err)
{
    for (unsigned int i = st->events_keep; i >= 1; i--) {
        char *from = i == 1 ? core_sprintf("%s/%s", st->dir, EVENTS_FILE)
                            : core_sprintf("%s/%s.%u", st->dir, EVENTS_FILE, i - 1);
        char *to = core_sprintf("%s/%s.%u", st->dir, EVENTS_FILE, i);
        int rc = 0;
        if (!from || !to)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if (rename(from, to) < 0 && errno != ENOENT)
            rc = core_error_errno(err, errno, "rotating \"%s\"", from);
        core_free(from);
        core_free(to);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int append_line(const eng_state *st, const char *line, size_t len, berth_error **err)
{
    char *path = core_sprintf("%s/%s", st->dir, EVENTS_FILE);
    struct stat sb;
    int rc = 0, fd = -1;
    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (stat(path, &sb) == 0 && sb.st_size > 0 && (size_t)sb.st_size + len > st->events_max_bytes)
        rc = rotate_events(st, err);
    if (rc == 0 && (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = core_error_errno(err, errno, "opening \"%s\"", path);
    if (rc == 0 && write(fd, line, len) != (ssize_t)len)
        rc = core_error_errno(err, errno ? errno : EIO, "appending to \"%s\"", path);
    if (fd >= 0)
        close(fd);
    core_free(path);
    return rc;
}

int eng_state_event_append(eng_state *st, const eng_event *ev, berth_error **err)
{
    json_t *o;
    char *text;
    int rc;
    BERTH_ARG_CHECK(st && ev);
    if (!ev->kind || !ev->name || !ev->reason || !ev->severity)
        return core_error_set(err, BERTH_EINVAL, "event needs kind, name, reason and severity");
    if (!(o = event_json(ev)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    text = dump_line(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    pthread_mutex_lock(&st->events_mu);
    rc = append_line(st, text, strlen(text), err);
    pthread_mutex_unlock(&st->events_mu);
    core_free(text);
    return rc;
}
