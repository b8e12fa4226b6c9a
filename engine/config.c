/*
 * engine/config.c: reads the file store (YAML under --config) into the typed structs of
 * engine/config.h, with every problem reported at its file and line.
 *
 * Design: libyaml's document API gives a node tree with marks; each kind is described by
 * tables of fields (key, handler, offset into the target struct, flags) walked by one
 * function, so an unknown key, a duplicate key and a missing required field are found in one
 * place for every mapping. Handlers either fill a typed struct field or, for the parts the
 * build stage consumes as JSON (patches, images, commonMetadata), a jansson object; the same
 * walker serves both. Validation problems are recorded as eng_config_error entries and the
 * object is dropped; only out-of-memory stops the load. Aliases are resolved by libyaml into
 * shared (even cyclic) nodes, so every walk is bounded by depth and by a node budget.
 * After all files are read, identities seen more than once become "defined twice" errors and
 * every object with an error against its identity is removed from the valid arrays.
 */
#include "engine/config.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <yaml.h>

#include "core/core.h"
#include "images/policy.h"
#include "images/reconcile.h"

#define MAX_DIR_DEPTH 32
#define MAX_ERRORS_PER_DOC 50
#define PATH_LEN 512

/* ---------------------------------------------------------------------------------------- */
/* growable arrays                                                                          */

static int grow(void **arr, size_t *cap, size_t len, size_t item)
{
    size_t ncap;
    void *p;
    if (len < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 8;
    if (ncap > SIZE_MAX / item)
        return BERTH_ENOMEM;
    if (!(p = core_realloc(*arr, ncap * item)))
        return BERTH_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* freeing                                                                                  */

static void kv_free(eng_kv *kv, size_t len, bool wipe)
{
    for (size_t i = 0; kv && i < len; i++) {
        if (wipe && kv[i].value)
            sodium_memzero(kv[i].value, kv[i].len);
        core_free(kv[i].key);
        core_free(kv[i].value);
    }
    core_free(kv);
}

static void meta_dispose(eng_meta *m)
{
    core_free(m->api_version);
    core_free(m->name);
    core_free(m->ns);
    json_decref(m->labels);
    json_decref(m->annotations);
    core_free(m->file);
}

static void objref_dispose(eng_objref *r)
{
    core_free(r->api_version);
    core_free(r->kind);
    core_free(r->name);
    core_free(r->ns);
}

static void objrefs_free(eng_objref *r, size_t len)
{
    for (size_t i = 0; r && i < len; i++)
        objref_dispose(&r[i]);
    core_free(r);
}

static void verify_free(eng_ocirepo_verify *v)
{
    if (!v)
        return;
    core_free(v->provider);
    core_free(v->secret_ref);
    for (size_t i = 0; v->match_oidc && i < v->match_oidc_len; i++) {
        core_free(v->match_oidc[i].issuer);
        core_free(v->match_oidc[i].subject);
    }
    core_free(v->match_oidc);
    core_free(v->trusted_root_secret_ref);
    core_free(v);
}

static void ocirepo_dispose(void *p)
{
    eng_ocirepo *o = p;
    meta_dispose(&o->meta);
    core_free(o->url);
    core_free(o->ref_tag);
    core_free(o->ref_semver);
    core_free(o->ref_semver_filter);
    core_free(o->ref_digest);
    core_free(o->layer_media_type);
    core_free(o->ignore);
    core_free(o->provider);
    core_free(o->secret_ref);
    core_free(o->cert_secret_ref);
    core_free(o->proxy_secret_ref);
    core_free(o->service_account_name);
    verify_free(o->verify);
}

static void kustomization_dispose(void *p)
{
    eng_kustomization *k = p;
    meta_dispose(&k->meta);
    objref_dispose(&k->source_ref);
    core_free(k->path);
    objrefs_free(k->depends_on, k->depends_on_len);
    core_free(k->target_namespace);
    core_free(k->name_prefix);
    core_free(k->name_suffix);
    json_decref(k->common_metadata);
    json_decref(k->patches);
    json_decref(k->images);
    json_decref(k->components);
    json_decref(k->substitute);
    for (size_t i = 0; k->substitute_from && i < k->substitute_from_len; i++) {
        core_free(k->substitute_from[i].kind);
        core_free(k->substitute_from[i].name);
    }
    core_free(k->substitute_from);
    objrefs_free(k->health_checks, k->health_checks_len);
    core_free(k->service_account_name);
    core_free(k->kubeconfig_secret);
    core_free(k->kubeconfig_key);
}

static void secret_dispose(void *p)
{
    eng_secret *s = p;
    meta_dispose(&s->meta);
    core_free(s->type);
    kv_free(s->data, s->data_len, true);
}

static void configmap_dispose(void *p)
{
    eng_configmap *c = p;
    meta_dispose(&c->meta);
    kv_free(c->data, c->data_len, false);
    kv_free(c->binary_data, c->binary_data_len, false);
}

static void imagerepo_dispose(void *p)
{
    eng_imagerepo *r = p;
    meta_dispose(&r->meta);
    core_free(r->image);
    core_free(r->secret_ref);
    core_free(r->cert_secret_ref);
    core_free(r->provider);
    json_decref(r->exclusion_list);
}

static void imagepolicy_dispose(void *p)
{
    eng_imagepolicy *ip = p;
    meta_dispose(&ip->meta);
    objref_dispose(&ip->repo_ref);
    core_free(ip->semver_range);
    core_free(ip->alpha_order);
    core_free(ip->num_order);
    core_free(ip->filter_pattern);
    core_free(ip->filter_extract);
}

static void imageupdate_dispose(void *p)
{
    eng_imageupdate *u = p;
    meta_dispose(&u->meta);
    objref_dispose(&u->source_ref);
    core_free(u->update_path);
    json_decref(u->policy_selector);
    core_free(u->publish_url);
    core_free(u->publish_key_ref);
    core_free(u->publish_source);
    core_free(u->publish_secret_ref);
}

static void config_error_dispose(eng_config_error *e)
{
    core_free(e->kind);
    core_free(e->ns);
    core_free(e->name);
    core_free(e->file);
    core_free(e->message);
    core_free(e->text);
}

void eng_config_free(eng_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->ocirepos_len; i++)
        ocirepo_dispose(&cfg->ocirepos[i]);
    for (size_t i = 0; i < cfg->kustomizations_len; i++)
        kustomization_dispose(&cfg->kustomizations[i]);
    for (size_t i = 0; i < cfg->secrets_len; i++)
        secret_dispose(&cfg->secrets[i]);
    for (size_t i = 0; i < cfg->configmaps_len; i++)
        configmap_dispose(&cfg->configmaps[i]);
    for (size_t i = 0; i < cfg->imagerepos_len; i++)
        imagerepo_dispose(&cfg->imagerepos[i]);
    for (size_t i = 0; i < cfg->imagepolicies_len; i++)
        imagepolicy_dispose(&cfg->imagepolicies[i]);
    for (size_t i = 0; i < cfg->imageupdates_len; i++)
        imageupdate_dispose(&cfg->imageupdates[i]);
    for (size_t i = 0; i < cfg->errors_len; i++)
        config_error_dispose(&cfg->errors[i]);
    core_free(cfg->imagerepos);
    core_free(cfg->imagepolicies);
    core_free(cfg->imageupdates);
    core_free(cfg->ocirepos);
    core_free(cfg->kustomizations);
    core_free(cfg->secrets);
    core_free(cfg->configmaps);
    core_free(cfg->errors);
    core_free(cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* the loader and its error list                                                            */

/* An identified document (valid or not), for duplicate detection. */
typedef struct ident {
    const char *kind; /* static kind name or the loader's copy */
    char *ns;
    char *name;
    char *file;
    int line;
    size_t seq;
} ident;

typedef struct loader {
    eng_config *cfg;
    size_t caps[8]; /* ocirepos, kustomizations, secrets, configmaps, errors, imagerepos,
                       imagepolicies, imageupdates */
    ident *seen;
    size_t seen_len, seen_cap;
    size_t seq;
    struct stat dirs[MAX_DIR_DEPTH + 2]; /* the directories being read, to stop symlink loops */
} loader;

/* Where an error is and whom it is about. */
typedef struct where {
    const char *kind, *ns, *name, *file;
    int line, column;
} where;

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = core_strdup(s)))
        *oom = true;
    return d;
}

static char *error_text(const where *w, const char *msg)
{
    char loc[64] = "";
    if (w->line > 0)
        snprintf(loc, sizeof(loc), ":%d:%d", w->line, w->column);
    if (w->kind && w->name)
        return core_sprintf("%s%s: %s/%s/%s: %s", w->file ? w->file : "", loc, w->kind,
                            w->ns ? w->ns : "", w->name, msg);
    if (w->kind)
        return core_sprintf("%s%s: %s: %s", w->file ? w->file : "", loc, w->kind, msg);
    return core_sprintf("%s%s: %s", w->file ? w->file : "", loc, msg);
}

/* Append an error; objects that can not be identified make the config incomplete. */
static int add_error(loader *l, const where *w, int code, const char *msg)
{
    eng_config *cfg = l->cfg;
    eng_config_error *e;
    bool oom = false;
    if (grow((void **)&cfg->errors, &l->caps[4], cfg->errors_len, sizeof(*e)) < 0)
        return BERTH_ENOMEM;
    e = &cfg->errors[cfg->errors_len];
    memset(e, 0, sizeof(*e));
    e->kind = dup_or_null(w->kind, &oom);
    e->ns = dup_or_null(w->kind && w->name ? w->ns : NULL, &oom);
    e->name = dup_or_null(w->kind ? w->name : NULL, &oom);
    e->file = dup_or_null(w->file, &oom);
    e->message = dup_or_null(msg, &oom);
    e->text = error_text(w, msg);
    e->line = w->line;
    e->column = w->column;
    e->code = code;
    if (oom || !e->text) {
        config_error_dispose(e);
        return BERTH_ENOMEM;
    }
    cfg->errors_len++;
    if (!e->kind || !e->name)
        cfg->incomplete = true;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* per-document parse context and node helpers                                              */

typedef struct pctx {
    loader *l;
    yaml_document_t *doc;
    where id;       /* identity for error entries (line/column set per error) */
    size_t budget;  /* node visits left */
    int depth;      /* current nesting */
    int errors;     /* problems found in this document */
    bool limit_hit; /* depth/budget error already reported */
} pctx;

static int perr_code(pctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
    BERTH_PRINTF(4, 5);

static int perr_code(pctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    where w = c->id;
    c->errors++;
    if (c->errors > MAX_ERRORS_PER_DOC)
        return 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->errors == MAX_ERRORS_PER_DOC)
        snprintf(msg, sizeof(msg), "too many errors, stopped reporting");
    for (char *p = msg; *p; p++) /* keys and values may hold line breaks: keep one line */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    w.line = n ? (int)n->start_mark.line + 1 : 0;
    w.column = n ? (int)n->start_mark.column + 1 : 0;
    return add_error(c->l, &w, code, msg);
}

#define perr(c, n, ...) perr_code(c, n, BERTH_EINVAL, __VA_ARGS__)

static yaml_node_t *node_at(pctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *scalar_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(scalar_text(n), nulls[i]) == 0)
            return true;
    return false;
}

static void join_path(char out[PATH_LEN], const char *path, const char *key)
{
    if (!path[0])
        snprintf(out, PATH_LEN, "%s", key);
    else
        snprintf(out, PATH_LEN, "%s.%s", path, key);
}

/* Count a node visit; false when nesting or the node budget is exhausted (reported once). */
static bool enter(pctx *c, const yaml_node_t *n, int *rc)
{
    if (c->depth < ENG_CONFIG_MAX_DEPTH && c->budget > 0) {
        c->budget--;
        c->depth++;
        return true;
    }
    if (!c->limit_hit) {
        c->limit_hit = true;
        *rc = perr(c, n, "document is too deeply nested or too large (aliases included)");
    }
    return false;
}

/* A string scalar (any style) without NUL bytes, borrowed; NULL after recording an error. */
static const char *get_str(pctx *c, const yaml_node_t *n, const char *path, int *rc)
{
    if (n->type != YAML_SCALAR_NODE) {
        *rc = perr(c, n, "field \"%s\": expected a string", path);
        return NULL;
    }
    if (strlen(scalar_text(n)) != n->data.scalar.length) {
        *rc = perr(c, n, "field \"%s\": contains a NUL byte", path);
        return NULL;
    }
    return scalar_text(n);
}

/* ---------------------------------------------------------------------------------------- */
/* the table walker                                                                         */

typedef struct field field;
typedef int (*field_fn)(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f);

#define F_REQ 0x1u         /* required */
#define F_UNSUPPORTED 0x2u /* a Flux field berth does not implement */

struct field {
    const char *key;
    field_fn fn;
    size_t off; /* into the base struct (typed handlers) */
    unsigned flags;
    const void *arg; /* handler argument: a table, a list_desc, a value list, ... */
};

typedef struct table {
    const field *fields;
    size_t n;
} table;

#define TABLE(a)                                                                                   \
    {                                                                                              \
        a, sizeof(a) / sizeof(a[0])                                                                \
    }

static size_t find_field(const table *t, const char *key)
{
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->fields[i].key, key) == 0)
            break;
    return i;
}

static int walk_pair(pctx *c, yaml_node_pair_t *pair, const char *path, const table *t, void *base,
                     uint64_t seen[2])
{
    yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
    char sub[PATH_LEN];
    size_t i;
    const field *f;
    if (!k || !v || k->type != YAML_SCALAR_NODE)
        return perr(c, k ? k : v, "field \"%s\": keys must be strings", path);
    join_path(sub, path, scalar_text(k));
    if ((i = find_field(t, scalar_text(k))) == t->n)
        return perr(c, k, "unknown field \"%s\"", sub);
    if (seen[0] & (UINT64_C(1) << i))
        return perr(c, k, "duplicate field \"%s\"", sub);
    seen[0] |= UINT64_C(1) << i;
    f = &t->fields[i];
    if (f->flags & F_UNSUPPORTED)
        return perr_code(c, k, BERTH_EUNSUPPORTED, "field \"%s\" is not supported by berth", sub);
    if (is_null(v))
        return 0; /* null is absent, as in Kubernetes */
    seen[1] |= UINT64_C(1) << i;
    return f->fn(c, v, sub, base, f);
}

/* Walk a mapping against a table: unknown, duplicate and missing required keys are errors. */
static int walk_map(pctx *c, yaml_node_t *n, const char *path, const table *t, void *base)
{
    uint64_t seen[2] = {0, 0}; /* keys seen, keys with a non-null value */
    int rc = 0;
    char sub[PATH_LEN];
    if (!n || !enter(c, n, &rc))
        return rc;
    if (n->type != YAML_MAPPING_NODE) {
        rc = perr(c, n, "field \"%s\": expected a mapping", path[0] ? path : "(document)");
        goto out;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
        if ((rc = walk_pair(c, p, path, t, base, seen)) < 0)
            goto out;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        if (!(t->fields[i].flags & F_REQ) || (seen[1] & (UINT64_C(1) << i)))
            continue;
        join_path(sub, path, t->fields[i].key);
        rc = perr(c, n, "missing required field \"%s\"", sub);
    }
out:
    c->depth--;
    return rc;
}

/* ---- typed handlers (base + off) ---- */

#define AT(base, f, type) ((type *)(void *)((char *)(base) + (f)->off))

static int f_skip(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    (void)c, (void)n, (void)path, (void)base, (void)f;
    return 0;
}

static int f_str(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    char **dst = AT(base, f, char *);
    if (!s)
        return rc;
    core_free(*dst);
    if (!(*dst = core_strdup(s)))
        return BERTH_ENOMEM;
    return 0;
}

typedef struct bounds {
    size_t min, max;
} bounds;

static int f_bounded(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    const bounds *b = f->arg;
    size_t len;
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    len = strlen(s);
    if (len < b->min || len > b->max)
        return perr(c, n, "field \"%s\": length %zu is outside %zu..%zu", path, len, b->min,
                    b->max);
    return f_str(c, n, path, base, f);
}

/* One of a fixed list of strings (arg: NULL-terminated array); the index or -1. */
static int enum_index(pctx *c, yaml_node_t *n, const char *path, const char *const *vals, int *rc)
{
    const char *s = get_str(c, n, path, rc);
    char list[256] = "";
    if (!s)
        return -1;
    for (int i = 0; vals[i]; i++)
        if (strcmp(s, vals[i]) == 0)
            return i;
    for (int i = 0; vals[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof(list) - l, "%s\"%s\"", i ? ", " : "", vals[i]);
    }
    *rc = perr(c, n, "field \"%s\": \"%.100s\" is not one of %s", path, s, list);
    return -1;
}

static int f_enum(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    if (enum_index(c, n, path, f->arg, &rc) < 0)
        return rc;
    return f_str(c, n, path, base, f);
}

static int f_bool(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                              "FALSE"};
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; i < 3; i++) {
            if (strcmp(scalar_text(n), yes[i]) == 0 || strcmp(scalar_text(n), no[i]) == 0) {
                *AT(base, f, bool) = strcmp(scalar_text(n), yes[i]) == 0;
                return 0;
            }
        }
    }
    return perr(c, n, "field \"%s\": expected true or false", path);
}

static int duration(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f,
                    bool hours, bool positive)
{
    int rc = 0;
    int64_t ms;
    berth_error *e = NULL;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    if (eng_duration_parse(&ms, s, hours, &e) < 0) {
        rc = perr(c, n, "field \"%s\": %s", path, berth_error_message(e));
        berth_error_free(e); /* its message is now in the config error */
        return rc;
    }
    if (positive && ms <= 0)
        return perr(c, n, "field \"%s\": must be greater than zero", path);
    *AT(base, f, int64_t) = ms;
    return 0;
}

static int f_interval(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    return duration(c, n, path, base, f, true, true);
}

static int f_duration_noh(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    return duration(c, n, path, base, f, false, false);
}

/* A nested mapping onto base + off (off 0: the same struct). */
static int f_map(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    return walk_map(c, n, path, f->arg, (char *)base + f->off);
}

/* A list of typed structs: arg describes the item and where the length lives. */
typedef struct list_desc {
    size_t item_size;
    size_t len_off;
    table items;
} list_desc;

static int f_list(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    const list_desc *d = f->arg;
    void **arr = AT(base, f, void *);
    size_t *len = (size_t *)(void *)((char *)base + d->len_off), count, i = 0;
    char sub[PATH_LEN];
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return perr(c, n, "field \"%s\": expected a list", path);
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (*arr || count == 0)
        return 0;
    if (!(*arr = core_calloc(count, d->item_size)))
        return BERTH_ENOMEM;
    *len = count;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        if ((rc = walk_map(c, node_at(c, *it), sub, &d->items, (char *)*arr + i * d->item_size)) <
            0)
            return rc;
    }
    return 0;
}

/* ---- JSON-building handlers: base is a json_t object, the key is f->key ---- */

static int json_put(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        return BERTH_ENOMEM;
    return 0;
}

static int j_str(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    return json_put(base, f->key, json_string(s));
}

/* A mapping of arbitrary keys to strings (labels, annotations, substitute) into *out. */
static int strmap(pctx *c, yaml_node_t *n, const char *path, json_t **out)
{
    char sub[PATH_LEN];
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE)
        return perr(c, n, "field \"%s\": expected a mapping of strings", path);
    if (!*out && !(*out = json_object()))
        return BERTH_ENOMEM;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *key, *val;
        if (!(key = get_str(c, k, path, &rc))) {
            if (rc < 0)
                return rc;
            continue;
        }
        join_path(sub, path, key);
        if (json_object_get(*out, key)) {
            if ((rc = perr(c, k, "duplicate field \"%s\"", sub)) < 0)
                return rc;
            continue;
        }
        val = is_null(v) ? "" : get_str(c, v, sub, &rc);
        if (rc < 0 || (val && (rc = json_put(*out, key, json_string(val))) < 0))
            return rc;
    }
    return 0;
}

static int f_strmap(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    return strmap(c, n, path, AT(base, f, json_t *));
}

static int j_strmap(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    json_t *m = NULL;
    int rc = strmap(c, n, path, &m);
    if (rc < 0 || !m) {
        json_decref(m);
        return rc;
    }
    return json_put(base, f->key, m);
}

static int f_strlist(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    json_t **out = AT(base, f, json_t *);
    char sub[PATH_LEN];
    size_t i = 0;
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return perr(c, n, "field \"%s\": expected a list of strings", path);
    if (!*out && !(*out = json_array()))
        return BERTH_ENOMEM;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        const char *s;
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        s = get_str(c, node_at(c, *it), sub, &rc);
        if (rc < 0 || (s && json_array_append_new(*out, json_string(s)) < 0))
            return BERTH_ENOMEM;
    }
    return 0;
}

/* A nested JSON object walked with the j_ table in arg. */
static int j_map(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    json_t *o = json_object();
    int rc;
    if (!o)
        return BERTH_ENOMEM;
    if ((rc = walk_map(c, n, path, f->arg, o)) < 0) {
        json_decref(o);
        return rc;
    }
    return json_put(base, f->key, o);
}

/* A typed json_t * field holding an object walked with the j_ table in arg. */
static int f_jobj(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    json_t **out = AT(base, f, json_t *);
    if (!*out && !(*out = json_object()))
        return BERTH_ENOMEM;
    return walk_map(c, n, path, f->arg, *out);
}

/* A typed json_t * field holding a list of objects, each walked with the j_ table in arg. */
static int f_jlist(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    json_t **out = AT(base, f, json_t *);
    char sub[PATH_LEN];
    size_t i = 0;
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return perr(c, n, "field \"%s\": expected a list", path);
    if (!*out && !(*out = json_array()))
        return BERTH_ENOMEM;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(*out, o) < 0)
            return BERTH_ENOMEM;
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        if ((rc = walk_map(c, node_at(c, *it), sub, f->arg, o)) < 0)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* names and keys                                                                           */

static bool is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])? of at most max bytes. */
static bool dns_label_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* RFC 1123 subdomain: labels joined by '.', at most 253 bytes. */
static bool dns_subdomain_ok(const char *s)
{
    size_t len = strlen(s);
    const char *p = s;
    if (len == 0 || len > 253)
        return false;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns_label_ok(p, l, 63))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static int f_name(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    if (!dns_subdomain_ok(s))
        return perr(c, n,
                    "field \"%s\": \"%.100s\" is not a valid name (lowercase letters, digits, "
                    "'-' and '.', at most 253)",
                    path, s);
    return f_str(c, n, path, base, f);
}

static int f_namespace(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    if (!dns_label_ok(s, strlen(s), 63))
        return perr(c, n,
                    "field \"%s\": \"%.100s\" is not a valid namespace (lowercase letters, "
                    "digits and '-', at most 63)",
                    path, s);
    return f_str(c, n, path, base, f);
}

/* Secret and ConfigMap keys: [-._a-zA-Z0-9]+, at most 253, not "." or "..". */
static bool data_key_ok(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > 253 || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = k[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_'))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* key/value maps (Secret data, ConfigMap data)                                             */

typedef struct kv_desc {
    size_t len_off;
    bool base64;
} kv_desc;

static int kv_set(eng_kv **kv, size_t *len, size_t *cap, const char *key, char *value, size_t vlen)
{
    for (size_t i = 0; i < *len; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            sodium_memzero((*kv)[i].value, (*kv)[i].len);
            core_free((*kv)[i].value);
            (*kv)[i].value = value;
            (*kv)[i].len = vlen;
            return 0;
        }
    }
    if (grow((void **)kv, cap, *len, sizeof(**kv)) < 0 || !((*kv)[*len].key = core_strdup(key)))
        return BERTH_ENOMEM;
    (*kv)[*len].value = value;
    (*kv)[(*len)++].len = vlen;
    return 0;
}

/* The value of one entry: text as is, or base64-decoded (line breaks are ignored, as Go does). */
static int kv_value(pctx *c, yaml_node_t *v, const char *path, bool b64, char **out, size_t *len)
{
    int rc = 0;
    const char *s = is_null(v) ? "" : get_str(c, v, path, &rc);
    berth_buf dec = BERTH_BUF_INIT;
    if (!s)
        return rc;
    if (!b64) {
        *len = strlen(s);
        return (*out = core_strdup(s)) ? 0 : BERTH_ENOMEM;
    }
    rc = core_base64_decode(&dec, s, strlen(s), false, NULL);
    if (rc < 0 && rc != BERTH_ENOMEM)
        rc = perr(c, v, "field \"%s\": invalid base64", path);
    else if (rc == 0 && berth_buf_put(&dec, "", 0) < 0)
        rc = BERTH_ENOMEM;
    else if (rc == 0) {
        *len = dec.len;
        *out = berth_buf_detach(&dec);
        rc = *out ? 0 : BERTH_ENOMEM;
    }
    if (dec.ptr)
        sodium_memzero(dec.ptr, dec.len);
    berth_buf_dispose(&dec);
    return rc;
}

static int kv_pair(pctx *c, yaml_node_pair_t *p, const char *path, const kv_desc *d, eng_kv **kv,
                   size_t *len, size_t *cap)
{
    yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
    char sub[PATH_LEN], *value = NULL;
    size_t vlen = 0;
    int rc = 0;
    const char *key = get_str(c, k, path, &rc);
    if (!key)
        return rc;
    join_path(sub, path, key);
    if (!data_key_ok(key))
        return perr(c, k, "field \"%s\": invalid key (letters, digits, '-', '_' and '.')", sub);
    for (size_t i = 0; i < *len; i++)
        if (strcmp((*kv)[i].key, key) == 0)
            return perr(c, k, "duplicate field \"%s\"", sub);
    if ((rc = kv_value(c, v, sub, d->base64, &value, &vlen)) < 0 || !value)
        return rc;
    if ((rc = kv_set(kv, len, cap, key, value, vlen)) < 0) {
        sodium_memzero(value, vlen);
        core_free(value);
    }
    return rc;
}

static int f_kvmap(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    const kv_desc *d = f->arg;
    eng_kv **kv = AT(base, f, eng_kv *);
    size_t *len = (size_t *)(void *)((char *)base + d->len_off), cap = *len;
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE)
        return perr(c, n, "field \"%s\": expected a mapping of strings", path);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
        if ((rc = kv_pair(c, p, path, d, kv, len, &cap)) < 0)
            return rc;
    return 0;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const eng_kv *)a)->key, ((const eng_kv *)b)->key);
}

const eng_kv *eng_kv_find(const eng_kv *kv, size_t len, const char *key)
{
    eng_kv k;
    if (!kv || !key)
        return NULL;
    k.key = (char *)(uintptr_t)key; /* bsearch key only; never written */
    return bsearch(&k, kv, len, sizeof(*kv), kv_cmp);
}

int eng_kv_to_json(json_t **out, const eng_kv *kv, size_t len, const char *what, berth_error **err)
{
    json_t *o = json_object();
    BERTH_ARG_CHECK(out);
    if (!o)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *s = json_stringn(kv[i].value, kv[i].len);
        if (!s) {
            json_decref(o);
            return core_error_set(err, BERTH_EINVAL, "%s: value of key \"%s\" is not UTF-8 text",
                                  what ? what : "data", kv[i].key);
        }
        if (json_object_set_new(o, kv[i].key, s) < 0) {
            json_decref(o);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
    }
    *out = o;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* kind tables                                                                              */

static const field name_fields[] = {{"name", f_str, 0, F_REQ, NULL}};
static const table name_table = TABLE(name_fields);

static const field meta_fields[] = {
    {"name", f_name, offsetof(eng_meta, name), F_REQ, NULL},
    {"namespace", f_namespace, offsetof(eng_meta, ns), 0, NULL},
    {"labels", f_strmap, offsetof(eng_meta, labels), 0, NULL},
    {"annotations", f_strmap, offsetof(eng_meta, annotations), 0, NULL},
};
static const table meta_table = TABLE(meta_fields);

#define TOP_FIELDS(type)                                                                           \
    {"apiVersion", f_skip, 0, F_REQ, NULL}, {"kind", f_skip, 0, F_REQ, NULL},                      \
    {                                                                                              \
        "metadata", f_map, offsetof(type, meta), F_REQ, &meta_table                                \
    }

/* ---- OCIRepository ---- */

static const char *const oci_providers[] = {"generic", "aws", "azure", "gcp", NULL};
static const char *const verify_providers[] = {"cosign", "notation", NULL};
static const char *const layer_ops[] = {"extract", "copy", NULL};

static int f_oci_url(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc);
    if (!s)
        return rc;
    if (!core_str_has_prefix(s, "oci://") || !s[6])
        return perr(c, n, "field \"%s\": \"%.200s\" must start with \"oci://\"", path, s);
    return f_str(c, n, path, base, f);
}

static int f_layer_op(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0, i = enum_index(c, n, path, layer_ops, &rc);
    if (i >= 0)
        *AT(base, f, eng_layer_op) = i == 1 ? ENG_LAYER_COPY : ENG_LAYER_EXTRACT;
    return rc;
}

static const field ref_fields[] = {
    {"tag", f_str, offsetof(eng_ocirepo, ref_tag), 0, NULL},
    {"semver", f_str, offsetof(eng_ocirepo, ref_semver), 0, NULL},
    {"semverFilter", f_str, offsetof(eng_ocirepo, ref_semver_filter), 0, NULL},
    {"digest", f_str, offsetof(eng_ocirepo, ref_digest), 0, NULL},
};
static const table ref_table = TABLE(ref_fields);

static const field layer_fields[] = {
    {"mediaType", f_str, offsetof(eng_ocirepo, layer_media_type), 0, NULL},
    {"operation", f_layer_op, offsetof(eng_ocirepo, layer_operation), 0, NULL},
};
static const table layer_table = TABLE(layer_fields);

static int f_layer_selector(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    ((eng_ocirepo *)base)->has_layer_selector = true;
    return f_map(c, n, path, base, f);
}

static const field oidc_fields[] = {
    {"issuer", f_str, offsetof(eng_oidc_identity, issuer), F_REQ, NULL},
    {"subject", f_str, offsetof(eng_oidc_identity, subject), F_REQ, NULL},
};
static const list_desc oidc_list = {
    sizeof(eng_oidc_identity), offsetof(eng_ocirepo_verify, match_oidc_len), TABLE(oidc_fields)};

static const field verify_fields[] = {
    {"provider", f_enum, offsetof(eng_ocirepo_verify, provider), 0, verify_providers},
    {"secretRef", f_map, offsetof(eng_ocirepo_verify, secret_ref), 0, &name_table},
    {"matchOIDCIdentity", f_list, offsetof(eng_ocirepo_verify, match_oidc), 0, &oidc_list},
    {"trustedRootSecretRef", f_map, offsetof(eng_ocirepo_verify, trusted_root_secret_ref), 0,
     &name_table},
};
static const table verify_table = TABLE(verify_fields);

static int f_verify(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    eng_ocirepo_verify **v = AT(base, f, eng_ocirepo_verify *);
    int rc;
    if (!*v && !(*v = core_calloc(1, sizeof(**v))))
        return BERTH_ENOMEM;
    if ((rc = walk_map(c, n, path, &verify_table, *v)) < 0)
        return rc;
    if (!(*v)->provider && !((*v)->provider = core_strdup("cosign")))
        return BERTH_ENOMEM;
    return 0;
}

static const field ocirepo_spec_fields[] = {
    {"url", f_oci_url, offsetof(eng_ocirepo, url), F_REQ, NULL},
    {"ref", f_map, 0, 0, &ref_table},
    {"layerSelector", f_layer_selector, 0, 0, &layer_table},
    {"ignore", f_str, offsetof(eng_ocirepo, ignore), 0, NULL},
    {"interval", f_interval, offsetof(eng_ocirepo, interval_ms), F_REQ, NULL},
    {"timeout", f_duration_noh, offsetof(eng_ocirepo, timeout_ms), 0, NULL},
    {"suspend", f_bool, offsetof(eng_ocirepo, suspend), 0, NULL},
    {"insecure", f_bool, offsetof(eng_ocirepo, insecure), 0, NULL},
    {"provider", f_enum, offsetof(eng_ocirepo, provider), 0, oci_providers},
    {"secretRef", f_map, offsetof(eng_ocirepo, secret_ref), 0, &name_table},
    {"certSecretRef", f_map, offsetof(eng_ocirepo, cert_secret_ref), 0, &name_table},
    {"proxySecretRef", f_map, offsetof(eng_ocirepo, proxy_secret_ref), 0, &name_table},
    {"serviceAccountName", f_str, offsetof(eng_ocirepo, service_account_name), 0, NULL},
    {"verify", f_verify, offsetof(eng_ocirepo, verify), 0, NULL},
};
static const table ocirepo_spec_table = TABLE(ocirepo_spec_fields);

static const field ocirepo_fields[] = {
    TOP_FIELDS(eng_ocirepo),
    {"spec", f_map, 0, F_REQ, &ocirepo_spec_table},
};
static const table ocirepo_table = TABLE(ocirepo_fields);

/* ---- Kustomization ---- */

static const char *const source_kinds[] = {"OCIRepository", "GitRepository", "Bucket",
                                           "ExternalArtifact", NULL};
static const char *const subst_kinds[] = {"ConfigMap", "Secret", NULL};
static const char *const strategies[] = {"WithVariables", "Always", NULL};
static const char *const deletion_policies[] = {"MirrorPrune", "Delete", "WaitForTermination",
                                                "Orphan", NULL};
static const bounds ns_bounds = {1, 63}, affix_bounds = {1, 200};

static const field source_ref_fields[] = {
    {"apiVersion", f_str, offsetof(eng_objref, api_version), 0, NULL},
    {"kind", f_enum, offsetof(eng_objref, kind), F_REQ, source_kinds},
    {"name", f_str, offsetof(eng_objref, name), F_REQ, NULL},
    {"namespace", f_str, offsetof(eng_objref, ns), 0, NULL},
};
static const table source_ref_table = TABLE(source_ref_fields);

static const field depends_fields[] = {
    {"name", f_str, offsetof(eng_objref, name), F_REQ, NULL},
    {"namespace", f_str, offsetof(eng_objref, ns), 0, NULL},
    {"readyExpr", f_skip, 0, F_UNSUPPORTED, NULL},
};
static const list_desc depends_list = {
    sizeof(eng_objref), offsetof(eng_kustomization, depends_on_len), TABLE(depends_fields)};

static const field health_fields[] = {
    {"apiVersion", f_str, offsetof(eng_objref, api_version), 0, NULL},
    {"kind", f_str, offsetof(eng_objref, kind), F_REQ, NULL},
    {"name", f_str, offsetof(eng_objref, name), F_REQ, NULL},
    {"namespace", f_str, offsetof(eng_objref, ns), 0, NULL},
};
static const list_desc health_list = {
    sizeof(eng_objref), offsetof(eng_kustomization, health_checks_len), TABLE(health_fields)};

static const field subst_fields[] = {
    {"kind", f_enum, offsetof(eng_subst_ref, kind), F_REQ, subst_kinds},
    {"name", f_str, offsetof(eng_subst_ref, name), F_REQ, NULL},
    {"optional", f_bool, offsetof(eng_subst_ref, optional), 0, NULL},
};
static const list_desc subst_list = {
    sizeof(eng_subst_ref), offsetof(eng_kustomization, substitute_from_len), TABLE(subst_fields)};

static int f_strategy(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0, i = enum_index(c, n, path, strategies, &rc);
    if (i >= 0)
        *AT(base, f, bool) = i == 1;
    return rc;
}

static int f_deletion(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    static const eng_deletion_policy vals[] = {ENG_DELETION_MIRROR_PRUNE, ENG_DELETION_DELETE,
                                               ENG_DELETION_WAIT_FOR_TERMINATION,
                                               ENG_DELETION_ORPHAN};
    int rc = 0, i = enum_index(c, n, path, deletion_policies, &rc);
    if (i >= 0)
        *AT(base, f, eng_deletion_policy) = vals[i];
    return rc;
}

static const field postbuild_fields[] = {
    {"substitute", f_strmap, offsetof(eng_kustomization, substitute), 0, NULL},
    {"substituteFrom", f_list, offsetof(eng_kustomization, substitute_from), 0, &subst_list},
    {"substituteStrategy", f_strategy, offsetof(eng_kustomization, substitute_always), 0, NULL},
};
static const table postbuild_table = TABLE(postbuild_fields);

static int f_postbuild(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    ((eng_kustomization *)base)->has_post_build = true;
    return f_map(c, n, path, base, f);
}

static const field selector_fields[] = {
    {"group", j_str, 0, 0, NULL},
    {"version", j_str, 0, 0, NULL},
    {"kind", j_str, 0, 0, NULL},
    {"name", j_str, 0, 0, NULL},
    {"namespace", j_str, 0, 0, NULL},
    {"labelSelector", j_str, 0, 0, NULL},
    {"annotationSelector", j_str, 0, 0, NULL},
};
static const table selector_table = TABLE(selector_fields);

static const field patch_fields[] = {
    {"patch", j_str, 0, F_REQ, NULL},
    {"target", j_map, 0, 0, &selector_table},
};
static const table patch_table = TABLE(patch_fields);

static const field image_fields[] = {
    {"name", j_str, 0, F_REQ, NULL},
    {"newName", j_str, 0, 0, NULL},
    {"newTag", j_str, 0, 0, NULL},
    {"digest", j_str, 0, 0, NULL},
};
static const table image_table = TABLE(image_fields);

static const field common_meta_fields[] = {
    {"labels", j_strmap, 0, 0, NULL},
    {"annotations", j_strmap, 0, 0, NULL},
};
static const table common_meta_table = TABLE(common_meta_fields);

/* spec.kubeConfig: secretRef {name, key?}; configMapRef (Flux's workload identity) refused */
static const field kubeconfig_secret_fields[] = {
    {"name", f_str, offsetof(eng_kustomization, kubeconfig_secret), F_REQ, NULL},
    {"key", f_str, offsetof(eng_kustomization, kubeconfig_key), 0, NULL},
};
static const table kubeconfig_secret_table = TABLE(kubeconfig_secret_fields);

static const field kubeconfig_fields[] = {
    {"secretRef", f_map, 0, 0, &kubeconfig_secret_table},
    {"configMapRef", f_skip, 0, F_UNSUPPORTED, NULL},
};
static const table kubeconfig_table = TABLE(kubeconfig_fields);

/* spec.kubeConfig: secretRef is the one reference berth implements, so it is required (after
 * configMapRef, which is refused as unsupported rather than as a missing secretRef) */
static int f_kubeconfig(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int before = c->errors, rc = f_map(c, n, path, base, f);
    if (rc == 0 && c->errors == before && !((eng_kustomization *)base)->kubeconfig_secret)
        rc = perr(c, n, "missing required field \"%s.secretRef\"", path);
    return rc;
}

static const field ks_spec_fields[] = {
    {"sourceRef", f_map, offsetof(eng_kustomization, source_ref), F_REQ, &source_ref_table},
    {"path", f_str, offsetof(eng_kustomization, path), 0, NULL},
    {"interval", f_interval, offsetof(eng_kustomization, interval_ms), F_REQ, NULL},
    {"retryInterval", f_interval, offsetof(eng_kustomization, retry_interval_ms), 0, NULL},
    {"timeout", f_interval, offsetof(eng_kustomization, timeout_ms), 0, NULL},
    {"prune", f_bool, offsetof(eng_kustomization, prune), F_REQ, NULL},
    {"deletionPolicy", f_deletion, offsetof(eng_kustomization, deletion_policy), 0, NULL},
    {"wait", f_bool, offsetof(eng_kustomization, wait), 0, NULL},
    {"force", f_bool, offsetof(eng_kustomization, force), 0, NULL},
    {"suspend", f_bool, offsetof(eng_kustomization, suspend), 0, NULL},
    {"dependsOn", f_list, offsetof(eng_kustomization, depends_on), 0, &depends_list},
    {"targetNamespace", f_bounded, offsetof(eng_kustomization, target_namespace), 0, &ns_bounds},
    {"namePrefix", f_bounded, offsetof(eng_kustomization, name_prefix), 0, &affix_bounds},
    {"nameSuffix", f_bounded, offsetof(eng_kustomization, name_suffix), 0, &affix_bounds},
    {"commonMetadata", f_jobj, offsetof(eng_kustomization, common_metadata), 0, &common_meta_table},
    {"patches", f_jlist, offsetof(eng_kustomization, patches), 0, &patch_table},
    {"images", f_jlist, offsetof(eng_kustomization, images), 0, &image_table},
    {"components", f_strlist, offsetof(eng_kustomization, components), 0, NULL},
    {"ignoreMissingComponents", f_bool, offsetof(eng_kustomization, ignore_missing_components), 0,
     NULL},
    {"postBuild", f_postbuild, 0, 0, &postbuild_table},
    {"healthChecks", f_list, offsetof(eng_kustomization, health_checks), 0, &health_list},
    {"serviceAccountName", f_str, offsetof(eng_kustomization, service_account_name), 0, NULL},
    {"decryption", f_skip, 0, F_UNSUPPORTED, NULL},
    {"kubeConfig", f_kubeconfig, 0, 0, &kubeconfig_table},
    {"healthCheckExprs", f_skip, 0, F_UNSUPPORTED, NULL},
    {"ignore", f_skip, 0, F_UNSUPPORTED, NULL},
    {"buildMetadata", f_skip, 0, F_UNSUPPORTED, NULL},
};
static const table ks_spec_table = TABLE(ks_spec_fields);

static const field ks_fields[] = {
    TOP_FIELDS(eng_kustomization),
    {"spec", f_map, 0, F_REQ, &ks_spec_table},
};
static const table ks_table = TABLE(ks_fields);

/* ---- ImageRepository, ImagePolicy, ImageUpdateAutomation ---- */

static yaml_node_t *map_node(pctx *c, yaml_node_t *n, const char *key);

/* spec.image: "host[:port]/path" without scheme, tag or digest (Flux refuses a tag there). */
static int f_image(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc), *slash;
    if (!s)
        return rc;
    if (strstr(s, "://"))
        return perr(c, n, "field \"%s\": \"%.200s\" must not have a scheme (want host/repo)", path,
                    s);
    slash = strrchr(s, '/');
    if (strchr(s, '@') || strchr(slash ? slash : s, ':'))
        return perr(c, n, "field \"%s\": \"%.200s\" must not contain a tag or digest", path, s);
    if (!s[0] || s[strlen(s) - 1] == '/')
        return perr(c, n, "field \"%s\": \"%.200s\" is not an image name", path, s);
    return f_str(c, n, path, base, f);
}

static const field imagerepo_spec_fields[] = {
    {"image", f_image, offsetof(eng_imagerepo, image), F_REQ, NULL},
    {"interval", f_interval, offsetof(eng_imagerepo, interval_ms), F_REQ, NULL},
    {"timeout", f_interval, offsetof(eng_imagerepo, timeout_ms), 0, NULL},
    {"secretRef", f_map, offsetof(eng_imagerepo, secret_ref), 0, &name_table},
    {"certSecretRef", f_map, offsetof(eng_imagerepo, cert_secret_ref), 0, &name_table},
    {"provider", f_enum, offsetof(eng_imagerepo, provider), 0, oci_providers},
    {"insecure", f_bool, offsetof(eng_imagerepo, insecure), 0, NULL},
    {"suspend", f_bool, offsetof(eng_imagerepo, suspend), 0, NULL},
    {"exclusionList", f_strlist, offsetof(eng_imagerepo, exclusion_list), 0, NULL},
    {"serviceAccountName", f_skip, 0, F_UNSUPPORTED, NULL},
    {"proxySecretRef", f_skip, 0, F_UNSUPPORTED, NULL},
    {"accessFrom", f_skip, 0, F_UNSUPPORTED, NULL},
};
static const table imagerepo_spec_table = TABLE(imagerepo_spec_fields);

static const field imagerepo_fields[] = {
    TOP_FIELDS(eng_imagerepo),
    {"spec", f_map, 0, F_REQ, &imagerepo_spec_table},
};
static const table imagerepo_table = TABLE(imagerepo_fields);

static const char *const orders[] = {"asc", "desc", NULL};
static const char *const digest_policies[] = {"Never", "IfNotPresent", "Always", NULL};

static const field repo_ref_fields[] = {
    {"name", f_str, offsetof(eng_objref, name), F_REQ, NULL},
    {"namespace", f_namespace, offsetof(eng_objref, ns), 0, NULL},
};
static const table repo_ref_table = TABLE(repo_ref_fields);

static const field semver_fields[] = {
    {"range", f_str, offsetof(eng_imagepolicy, semver_range), F_REQ, NULL},
};
static const table semver_table = TABLE(semver_fields);

static int f_alpha(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    ((eng_imagepolicy *)base)->has_alpha = true;
    return f_map(c, n, path, base, f);
}

static int f_num(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    ((eng_imagepolicy *)base)->has_num = true;
    return f_map(c, n, path, base, f);
}

static const field alpha_fields[] = {
    {"order", f_enum, offsetof(eng_imagepolicy, alpha_order), 0, orders},
};
static const table alpha_table = TABLE(alpha_fields);

static const field num_fields[] = {
    {"order", f_enum, offsetof(eng_imagepolicy, num_order), 0, orders},
};
static const table num_table = TABLE(num_fields);

static const field policy_choice_fields[] = {
    {"semver", f_map, 0, 0, &semver_table},
    {"alphabetical", f_alpha, 0, 0, &alpha_table},
    {"numerical", f_num, 0, 0, &num_table},
};
static const table policy_choice_table = TABLE(policy_choice_fields);

/* spec.policy: exactly one of semver, alphabetical, numerical (the CRD's oneOf). */
static int f_policy_choice(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    eng_imagepolicy *p = base;
    int rc = f_map(c, n, path, base, f), count;
    if (rc < 0 || c->errors)
        return rc;
    count = (p->semver_range != NULL) + p->has_alpha + p->has_num;
    if (count != 1)
        return perr(c, n, "field \"%s\": set exactly one of semver, alphabetical, numerical", path);
    return 0;
}

static const field filter_fields[] = {
    {"pattern", f_str, offsetof(eng_imagepolicy, filter_pattern), 0, NULL},
    {"extract", f_str, offsetof(eng_imagepolicy, filter_extract), 0, NULL},
};
static const table filter_table = TABLE(filter_fields);

static int f_digest_policy(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0, i = enum_index(c, n, path, digest_policies, &rc);
    if (i >= 0)
        *AT(base, f, eng_digest_reflection) = (eng_digest_reflection)i;
    return rc;
}

static const field imagepolicy_spec_fields[] = {
    {"imageRepositoryRef", f_map, offsetof(eng_imagepolicy, repo_ref), F_REQ, &repo_ref_table},
    {"policy", f_policy_choice, 0, F_REQ, &policy_choice_table},
    {"filterTags", f_map, 0, 0, &filter_table},
    {"digestReflectionPolicy", f_digest_policy, offsetof(eng_imagepolicy, digest_reflection), 0,
     NULL},
    {"interval", f_interval, offsetof(eng_imagepolicy, interval_ms), 0, NULL},
};
static const table imagepolicy_spec_table = TABLE(imagepolicy_spec_fields);

static const field imagepolicy_fields[] = {
    TOP_FIELDS(eng_imagepolicy),
    {"spec", f_map, 0, F_REQ, &imagepolicy_spec_table},
};
static const table imagepolicy_table = TABLE(imagepolicy_fields);

/* spec.git: Flux's only output; berth writes to Git only once the Git adapter exists. */
static int f_git_output(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    (void)base, (void)f;
    return perr_code(c, n, BERTH_EUNSUPPORTED,
                     "field \"%s\": Git output needs the Git adapter, not yet available (use the "
                     "gitless spec.publish output)",
                     path);
}

static const char *const update_source_kinds[] = {"OCIRepository", "GitRepository", NULL};

static int f_update_source_kind(pctx *c, yaml_node_t *n, const char *path, void *base,
                                const field *f)
{
    int rc = 0, i = enum_index(c, n, path, update_source_kinds, &rc);
    if (i == 1)
        return perr_code(c, n, BERTH_EUNSUPPORTED,
                         "field \"%s\": a GitRepository source needs the Git adapter, not yet "
                         "available (use an OCIRepository source and spec.publish)",
                         path);
    return i < 0 ? rc : f_str(c, n, path, base, f);
}

static const field update_source_fields[] = {
    {"apiVersion", f_str, offsetof(eng_objref, api_version), 0, NULL},
    {"kind", f_update_source_kind, offsetof(eng_objref, kind), F_REQ, NULL},
    {"name", f_str, offsetof(eng_objref, name), F_REQ, NULL},
    {"namespace", f_namespace, offsetof(eng_objref, ns), 0, NULL},
};
static const table update_source_table = TABLE(update_source_fields);

static const char *const strategies_update[] = {"Setters", NULL};

/* spec.update.strategy: checked only, Setters is the one strategy Flux has. */
static int f_update_strategy(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    (void)base, (void)f;
    return enum_index(c, n, path, strategies_update, &rc) < 0 ? rc : 0;
}

static const field update_fields[] = {
    {"path", f_str, offsetof(eng_imageupdate, update_path), 0, NULL},
    {"strategy", f_update_strategy, 0, 0, NULL},
};
static const table update_table = TABLE(update_fields);

static const field selector_match_fields[] = {
    {"matchLabels", f_strmap, offsetof(eng_imageupdate, policy_selector), 0, NULL},
    {"matchExpressions", f_skip, 0, F_UNSUPPORTED, NULL},
};
static const table selector_match_table = TABLE(selector_match_fields);

static int f_publish_url(pctx *c, yaml_node_t *n, const char *path, void *base, const field *f)
{
    int rc = 0;
    const char *s = get_str(c, n, path, &rc), *slash;
    if (!s)
        return rc;
    slash = strrchr(s, '/');
    if (!core_str_has_prefix(s, "oci://") || !slash || slash < s + 7 || !strchr(slash, ':') ||
        strchr(s, '@'))
        return perr(c, n, "field \"%s\": \"%.200s\" must be oci://HOST/REPO:TAG", path, s);
    return f_str(c, n, path, base, f);
}

static const field secret_ref_holder_fields[] = {
    {"secretRef", f_map, 0, F_REQ, &name_table},
};
static const table secret_ref_holder_table = TABLE(secret_ref_holder_fields);

static const field publish_fields[] = {
    {"url", f_publish_url, offsetof(eng_imageupdate, publish_url), F_REQ, NULL},
    {"signingKey", f_map, offsetof(eng_imageupdate, publish_key_ref), F_REQ,
     &secret_ref_holder_table},
    {"source", f_str, offsetof(eng_imageupdate, publish_source), 0, NULL},
    {"secretRef", f_map, offsetof(eng_imageupdate, publish_secret_ref), 0, &name_table},
    {"insecure", f_bool, offsetof(eng_imageupdate, publish_insecure), 0, NULL},
};
static const table publish_table = TABLE(publish_fields);

static const field imageupdate_spec_fields[] = {
    {"sourceRef", f_map, offsetof(eng_imageupdate, source_ref), F_REQ, &update_source_table},
    {"interval", f_interval, offsetof(eng_imageupdate, interval_ms), F_REQ, NULL},
    {"update", f_map, 0, 0, &update_table},
    {"suspend", f_bool, offsetof(eng_imageupdate, suspend), 0, NULL},
    {"policySelector", f_map, 0, 0, &selector_match_table},
    {"publish", f_map, 0, 0, &publish_table},
    {"git", f_git_output, 0, 0, NULL},
};
static const table imageupdate_spec_table = TABLE(imageupdate_spec_fields);

static const field imageupdate_fields[] = {
    TOP_FIELDS(eng_imageupdate),
    {"spec", f_map, 0, F_REQ, &imageupdate_spec_table},
};
static const table imageupdate_table = TABLE(imageupdate_fields);

/* ---- Secret and ConfigMap ---- */

/* A Secret while parsing: stringData is kept apart and merged over data at the end. */
typedef struct secret_parse {
    eng_secret s;
    eng_kv *string_data;
    size_t string_data_len;
} secret_parse;

static const kv_desc secret_data_desc = {offsetof(secret_parse, s.data_len), true};
static const kv_desc secret_sdata_desc = {offsetof(secret_parse, string_data_len), false};
static const kv_desc cm_data_desc = {offsetof(eng_configmap, data_len), false};
static const kv_desc cm_bdata_desc = {offsetof(eng_configmap, binary_data_len), true};

static const field secret_fields[] = {
    {"apiVersion", f_skip, 0, F_REQ, NULL},
    {"kind", f_skip, 0, F_REQ, NULL},
    {"metadata", f_map, offsetof(secret_parse, s.meta), F_REQ, &meta_table},
    {"type", f_str, offsetof(secret_parse, s.type), 0, NULL},
    {"data", f_kvmap, offsetof(secret_parse, s.data), 0, &secret_data_desc},
    {"stringData", f_kvmap, offsetof(secret_parse, string_data), 0, &secret_sdata_desc},
    {"immutable", f_bool, offsetof(secret_parse, s.immutable), 0, NULL},
};
static const table secret_table = TABLE(secret_fields);

static const field cm_fields[] = {
    TOP_FIELDS(eng_configmap),
    {"data", f_kvmap, offsetof(eng_configmap, data), 0, &cm_data_desc},
    {"binaryData", f_kvmap, offsetof(eng_configmap, binary_data), 0, &cm_bdata_desc},
    {"immutable", f_bool, offsetof(eng_configmap, immutable), 0, NULL},
};
static const table cm_table = TABLE(cm_fields);

/* ---------------------------------------------------------------------------------------- */
/* document digest: the document without metadata, scalars as text, canonical JSON          */

static int node_json(pctx *c, yaml_node_t *n, json_t **out);

static int node_json_map(pctx *c, yaml_node_t *n, json_t *o)
{
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        json_t *v = NULL;
        if (!k || k->type != YAML_SCALAR_NODE)
            return BERTH_EINVAL;
        if ((rc = node_json(c, node_at(c, p->value), &v)) < 0)
            return rc;
        if (json_object_set_new(o, scalar_text(k), v) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int node_json_seq(pctx *c, yaml_node_t *n, json_t *a)
{
    int rc;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        json_t *v = NULL;
        if ((rc = node_json(c, node_at(c, *it), &v)) < 0)
            return rc;
        if (json_array_append_new(a, v) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int node_json(pctx *c, yaml_node_t *n, json_t **out)
{
    int rc = BERTH_ENOMEM, ignored = 0;
    if (!n || !enter(c, n, &ignored))
        return BERTH_EINVAL;
    if (n->type == YAML_SCALAR_NODE)
        *out = is_null(n) ? json_null() : json_stringn(scalar_text(n), n->data.scalar.length);
    else
        *out = n->type == YAML_MAPPING_NODE ? json_object() : json_array();
    if (*out && n->type == YAML_MAPPING_NODE)
        rc = node_json_map(c, n, *out);
    else if (*out && n->type == YAML_SEQUENCE_NODE)
        rc = node_json_seq(c, n, *out);
    else if (*out)
        rc = 0;
    c->depth--;
    return rc;
}

static int content_digest(pctx *c, yaml_node_t *root, char out[72])
{
    json_t *j = NULL;
    char *text = NULL;
    int rc;
    c->budget = ENG_CONFIG_MAX_NODES; /* the walk already passed with this budget */
    if ((rc = node_json(c, root, &j)) < 0)
        goto out;
    json_object_del(j, "metadata");
    if (!(text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY))) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    core_sha256_digest(out, text, strlen(text));
    sodium_memzero(text, strlen(text)); /* may hold Secret data */
out:
    free(text);
    json_decref(j);
    return rc == BERTH_EINVAL ? 0 : rc; /* cannot happen after a clean walk: leave it empty */
}

/* ---------------------------------------------------------------------------------------- */
/* per-kind finishing: defaults, then hand the object to the config                         */

static int meta_finish(pctx *c, eng_meta *m, yaml_node_t *root, const char *api_version)
{
    if (!m->ns && !(m->ns = core_strdup(ENG_DEFAULT_NAMESPACE)))
        return BERTH_ENOMEM;
    /* labels and annotations stay NULL when absent: two empty objects per object are about
     * 0.4 KB each of the idle heap at 1,000 pairs (bench/engine-scale.md) */
    if (!(m->api_version = core_strdup(api_version)) || !(m->file = core_strdup(c->id.file)))
        return BERTH_ENOMEM;
    m->line = (int)root->start_mark.line + 1;
    m->seq = c->l->seq;
    return content_digest(c, root, m->content_digest);
}

static int default_str(char **s, const char *v)
{
    if (!*s && !(*s = core_strdup(v)))
        return BERTH_ENOMEM;
    return 0;
}

static int ocirepo_defaults(eng_ocirepo *o)
{
    if (o->timeout_ms < 0)
        o->timeout_ms = 60000;
    return default_str(&o->provider, "generic");
}

static int ks_defaults(eng_kustomization *k)
{
    int64_t t = k->timeout_ms >= 0 ? k->timeout_ms : k->interval_ms - 30000;
    k->timeout_ms = t < 30000 ? 30000 : t;
    if (k->retry_interval_ms <= 0)
        k->retry_interval_ms = k->interval_ms;
    if (default_str(&k->source_ref.ns, k->meta.ns) < 0)
        return BERTH_ENOMEM;
    for (size_t i = 0; i < k->depends_on_len; i++)
        if (default_str(&k->depends_on[i].ns, k->meta.ns) < 0)
            return BERTH_ENOMEM;
    return 0;
}

static int secret_merge(secret_parse *sp)
{
    size_t cap = sp->s.data_len;
    for (size_t i = 0; i < sp->string_data_len; i++) {
        eng_kv *e = &sp->string_data[i];
        if (kv_set(&sp->s.data, &sp->s.data_len, &cap, e->key, e->value, e->len) < 0)
            return BERTH_ENOMEM;
        e->value = NULL; /* moved */
    }
    if (sp->s.data_len)
        qsort(sp->s.data, sp->s.data_len, sizeof(eng_kv), kv_cmp);
    return default_str(&sp->s.type, "Opaque");
}

/* Append a finished object (item_size bytes at obj) to one of the config's arrays. */
static int keep(void **arr, size_t *len, size_t *cap, const void *obj, size_t size)
{
    if (grow(arr, cap, *len, size) < 0)
        return BERTH_ENOMEM;
    memcpy((char *)*arr + *len * size, obj, size);
    (*len)++;
    return 0;
}

static int parse_ocirepo(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_ocirepo o;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = -1;
    if ((rc = walk_map(c, root, "", &ocirepo_table, &o)) < 0 || c->errors)
        goto out;
    if ((rc = meta_finish(c, &o.meta, root, api_version)) < 0 || (rc = ocirepo_defaults(&o)) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->ocirepos, &cfg->ocirepos_len, &c->l->caps[0], &o, sizeof(o))) ==
        0)
        return 0;
out:
    ocirepo_dispose(&o);
    return rc;
}

static int parse_kustomization(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_kustomization k;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&k, 0, sizeof(k));
    k.timeout_ms = -1;
    if ((rc = walk_map(c, root, "", &ks_table, &k)) < 0 || c->errors)
        goto out;
    if ((rc = meta_finish(c, &k.meta, root, api_version)) < 0 || (rc = ks_defaults(&k)) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->kustomizations, &cfg->kustomizations_len, &c->l->caps[1], &k,
                   sizeof(k))) == 0)
        return 0;
out:
    kustomization_dispose(&k);
    return rc;
}

static int parse_secret(pctx *c, yaml_node_t *root, const char *api_version)
{
    secret_parse sp;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&sp, 0, sizeof(sp));
    if ((rc = walk_map(c, root, "", &secret_table, &sp)) < 0 || c->errors)
        goto out;
    if ((rc = meta_finish(c, &sp.s.meta, root, api_version)) < 0 || (rc = secret_merge(&sp)) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->secrets, &cfg->secrets_len, &c->l->caps[2], &sp.s,
                   sizeof(sp.s))) == 0) {
        kv_free(sp.string_data, sp.string_data_len, true);
        return 0;
    }
out:
    secret_dispose(&sp.s);
    kv_free(sp.string_data, sp.string_data_len, true);
    return rc;
}

static int parse_configmap(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_configmap m;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&m, 0, sizeof(m));
    if ((rc = walk_map(c, root, "", &cm_table, &m)) < 0 || c->errors)
        goto out;
    if ((rc = meta_finish(c, &m.meta, root, api_version)) < 0)
        goto out;
    if (m.data_len)
        qsort(m.data, m.data_len, sizeof(eng_kv), kv_cmp);
    if (m.binary_data_len)
        qsort(m.binary_data, m.binary_data_len, sizeof(eng_kv), kv_cmp);
    if ((rc = keep((void **)&cfg->configmaps, &cfg->configmaps_len, &c->l->caps[3], &m,
                   sizeof(m))) == 0)
        return 0;
out:
    configmap_dispose(&m);
    return rc;
}

static int parse_imagerepo(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_imagerepo r;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&r, 0, sizeof(r));
    r.timeout_ms = -1;
    if ((rc = walk_map(c, root, "", &imagerepo_table, &r)) < 0 || c->errors)
        goto out;
    if (r.exclusion_list) { /* the patterns must compile, as the CRD's CEL rule checks */
        img_exclusion *x = NULL;
        berth_error *e = NULL;
        const char **pats = core_calloc(json_array_size(r.exclusion_list) + 1, sizeof(*pats));
        if (!pats) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < json_array_size(r.exclusion_list); i++)
            pats[i] = json_string_value(json_array_get(r.exclusion_list, i));
        rc = img_exclusion_new(&x, pats, json_array_size(r.exclusion_list), &e);
        core_free(pats);
        img_exclusion_free(x);
        if (rc == BERTH_ENOMEM) {
            berth_error_free(e);
            goto out;
        }
        if (rc < 0) {
            rc = perr(c, map_node(c, map_node(c, root, "spec"), "exclusionList"), "%s",
                      berth_error_message(e));
            berth_error_free(e); /* its message is now in the config error */
            goto out;
        }
    }
    if (r.timeout_ms < 0)
        r.timeout_ms = r.interval_ms;
    if ((rc = meta_finish(c, &r.meta, root, api_version)) < 0 ||
        (rc = default_str(&r.provider, "generic")) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->imagerepos, &cfg->imagerepos_len, &c->l->caps[5], &r,
                   sizeof(r))) == 0)
        return 0;
out:
    imagerepo_dispose(&r);
    return rc;
}

/* Compile the policy once so that a bad range, order or pattern is a file:line error. */
static int imagepolicy_check(pctx *c, yaml_node_t *root, const eng_imagepolicy *p)
{
    img_policy_spec spec;
    img_policy *compiled = NULL;
    berth_error *e = NULL;
    yaml_node_t *spec_node = map_node(c, root, "spec");
    int rc;
    img_policy_spec_of(&spec, p);
    rc = img_policy_compile(&compiled, &spec, &e);
    img_policy_free(compiled);
    if (rc == BERTH_ENOMEM) {
        berth_error_free(e);
        return rc;
    }
    if (rc < 0) {
        rc = perr(c, spec_node ? spec_node : root, "%s", berth_error_message(e));
        berth_error_free(e); /* its message is now in the config error */
        return rc;
    }
    if (p->digest_reflection == ENG_DIGEST_ALWAYS && p->interval_ms <= 0)
        return perr(c, spec_node ? spec_node : root,
                    "field \"spec.interval\" is required with digestReflectionPolicy Always");
    return 0;
}

static int parse_imagepolicy(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_imagepolicy p;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&p, 0, sizeof(p));
    if ((rc = walk_map(c, root, "", &imagepolicy_table, &p)) < 0 || c->errors)
        goto out;
    if ((rc = imagepolicy_check(c, root, &p)) < 0 || c->errors)
        goto out;
    if ((rc = meta_finish(c, &p.meta, root, api_version)) < 0 ||
        (rc = default_str(&p.repo_ref.ns, p.meta.ns)) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->imagepolicies, &cfg->imagepolicies_len, &c->l->caps[6], &p,
                   sizeof(p))) == 0)
        return 0;
out:
    imagepolicy_dispose(&p);
    return rc;
}

static int parse_imageupdate(pctx *c, yaml_node_t *root, const char *api_version)
{
    eng_imageupdate u;
    eng_config *cfg = c->l->cfg;
    int rc;
    memset(&u, 0, sizeof(u));
    if ((rc = walk_map(c, root, "", &imageupdate_table, &u)) < 0 || c->errors)
        goto out;
    if (!u.publish_url) {
        rc = perr(c, map_node(c, root, "spec"),
                  "missing required field \"spec.publish\": berth publishes the updated files as a "
                  "signed artifact (Git output needs the Git adapter, not yet available)");
        goto out;
    }
    if ((rc = meta_finish(c, &u.meta, root, api_version)) < 0 ||
        (rc = default_str(&u.source_ref.ns, u.meta.ns)) < 0 ||
        (rc = default_str(&u.update_path, "./")) < 0)
        goto out;
    if ((rc = keep((void **)&cfg->imageupdates, &cfg->imageupdates_len, &c->l->caps[7], &u,
                   sizeof(u))) == 0)
        return 0;
out:
    imageupdate_dispose(&u);
    return rc;
}

typedef struct kind_desc {
    const char *kind;
    const char *api_versions[3];
    int (*parse)(pctx *c, yaml_node_t *root, const char *api_version);
} kind_desc;

static const kind_desc kinds[] = {
    {"OCIRepository",
     {"source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2", NULL},
     parse_ocirepo},
    {"Kustomization", {"kustomize.toolkit.fluxcd.io/v1", NULL, NULL}, parse_kustomization},
    {"Secret", {"v1", NULL, NULL}, parse_secret},
    {"ConfigMap", {"v1", NULL, NULL}, parse_configmap},
    {"ImageRepository",
     {"image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2", NULL},
     parse_imagerepo},
    {"ImagePolicy",
     {"image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2", NULL},
     parse_imagepolicy},
    {"ImageUpdateAutomation",
     {"image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2", NULL},
     parse_imageupdate},
};

/* ---------------------------------------------------------------------------------------- */
/* documents                                                                                */

/* The scalar value of key in mapping n, or NULL (no validation: identity for messages). */
static const char *map_scalar(pctx *c, yaml_node_t *n, const char *key)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        if (k && v && k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return v->type == YAML_SCALAR_NODE && !is_null(v) ? scalar_text(v) : NULL;
    }
    return NULL;
}

static yaml_node_t *map_node(pctx *c, yaml_node_t *n, const char *key)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return node_at(c, p->value);
    }
    return NULL;
}

static int remember(loader *l, const char *kind, const where *w)
{
    ident *id;
    if (grow((void **)&l->seen, &l->seen_cap, l->seen_len, sizeof(*id)) < 0)
        return BERTH_ENOMEM;
    id = &l->seen[l->seen_len];
    id->kind = kind;
    id->ns = core_strdup(w->ns);
    id->name = core_strdup(w->name);
    id->file = core_strdup(w->file);
    id->line = w->line;
    id->seq = l->seq;
    l->seen_len++;
    if (!id->ns || !id->name || !id->file)
        return BERTH_ENOMEM; /* freed with the others in loader_dispose */
    return 0;
}

static const kind_desc *find_kind(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].kind, kind) == 0)
            return &kinds[i];
    return NULL;
}

static int check_api_version(pctx *c, yaml_node_t *root, const kind_desc *k, const char *av)
{
    const char *const *v = k->api_versions;
    if (!av)
        return perr(c, root, "missing required field \"apiVersion\"");
    for (size_t i = 0; i < 3 && v[i]; i++)
        if (strcmp(v[i], av) == 0)
            return 0;
    return perr_code(c, root, BERTH_EUNSUPPORTED,
                     "unsupported apiVersion \"%.100s\" for kind %s (berth reads \"%s\"%s%s%s)", av,
                     k->kind, v[0], v[1] ? ", \"" : "", v[1] ? v[1] : "", v[1] ? "\"" : "");
}

static int process_doc(loader *l, yaml_document_t *doc, const char *file, yaml_node_t *root)
{
    pctx c = {l, doc, {NULL, NULL, NULL, file, 0, 0}, ENG_CONFIG_MAX_NODES, 0, 0, false};
    const char *kind, *av;
    const kind_desc *k;
    int rc;
    if (root->type != YAML_MAPPING_NODE)
        return perr(&c, root, "document is not a mapping");
    kind = map_scalar(&c, root, "kind");
    av = map_scalar(&c, root, "apiVersion");
    c.id.name = map_scalar(&c, map_node(&c, root, "metadata"), "name");
    c.id.ns = map_scalar(&c, map_node(&c, root, "metadata"), "namespace");
    if (!c.id.ns)
        c.id.ns = ENG_DEFAULT_NAMESPACE;
    if (!kind)
        return perr(&c, root, "missing required field \"kind\"");
    c.id.kind = kind;
    if (!c.id.name)
        return perr(&c, root, "missing required field \"metadata.name\"");
    if (!(k = find_kind(kind)))
        return perr_code(&c, root, BERTH_EUNSUPPORTED,
                         "unknown kind \"%.100s\" (apiVersion \"%.100s\"): berth reads "
                         "OCIRepository, Kustomization, Secret, ConfigMap, ImageRepository, "
                         "ImagePolicy and ImageUpdateAutomation",
                         kind, av ? av : "");
    l->seq++;
    c.id.line = (int)root->start_mark.line + 1;
    if ((rc = remember(l, k->kind, &c.id)) < 0)
        return rc;
    if ((rc = check_api_version(&c, root, k, av)) < 0 || c.errors)
        return rc;
    return k->parse(&c, root, av);
}

static int syntax_error(loader *l, yaml_parser_t *p, const char *file)
{
    char msg[512];
    where w = {
        NULL, NULL, NULL, file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1};
    if (p->error == YAML_MEMORY_ERROR)
        return BERTH_ENOMEM;
    snprintf(msg, sizeof(msg), "invalid YAML: %s%s%s", p->problem ? p->problem : "syntax error",
             p->context ? " " : "", p->context ? p->context : "");
    return add_error(l, &w, BERTH_EINVAL, msg);
}

static int parse_stream(loader *l, const char *data, size_t len, const char *file)
{
    yaml_parser_t p;
    int rc = 0;
    if (!yaml_parser_initialize(&p))
        return BERTH_ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    l->cfg->files++;
    for (;;) {
        yaml_document_t doc;
        yaml_node_t *root;
        if (!yaml_parser_load(&p, &doc)) {
            rc = syntax_error(l, &p, file);
            break;
        }
        if (!(root = yaml_document_get_root_node(&doc))) {
            yaml_document_delete(&doc);
            break;
        }
        rc = is_null(root) ? 0 : process_doc(l, &doc, file, root);
        yaml_document_delete(&doc);
        if (rc < 0)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* files and directories                                                                    */

static int file_error(loader *l, const char *path, berth_error *e)
{
    where w = {NULL, NULL, NULL, path, 0, 0};
    char *text = berth_error_text(e);
    int rc = text ? add_error(l, &w, berth_error_code(e), text) : BERTH_ENOMEM;
    free(text);
    berth_error_free(e); /* its text is now a config error */
    return rc;
}

static int load_file(loader *l, const char *path)
{
    berth_buf b = BERTH_BUF_INIT;
    berth_error *e = NULL;
    int rc;
    if ((rc = core_fs_read_file(&b, path, ENG_CONFIG_MAX_FILE_BYTES, &e)) < 0)
        rc = rc == BERTH_ENOMEM ? rc : file_error(l, path, e);
    else
        rc = parse_stream(l, b.ptr, b.len, path);
    if (rc == BERTH_ENOMEM)
        berth_error_free(e);
    if (b.ptr)
        sodium_memzero(b.ptr, b.len); /* may hold Secret data */
    berth_buf_dispose(&b);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir not starting with '.', sorted; *names_out is heap (each name too). */
static int list_dir(char ***names_out, size_t *n_out, const char *dir, berth_error **err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!d)
        return core_error_errno(err, errno, "reading directory \"%s\"", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (grow((void **)&names, &cap, n, sizeof(*names)) < 0 ||
            !(names[n] = core_strdup(de->d_name)))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    *names_out = names;
    *n_out = n;
    return rc;
}

static bool yaml_name(const char *name)
{
    return core_str_has_suffix(name, ".yaml") || core_str_has_suffix(name, ".yml");
}

static int load_dir(loader *l, const char *dir, int depth);

static int load_entry(loader *l, const char *dir, const char *name, int depth)
{
    struct stat st;
    char *path = core_sprintf("%s/%s", dir, name);
    int rc = 0;
    if (!path)
        return BERTH_ENOMEM;
    if (stat(path, &st) < 0) {
        berth_error *e = NULL;
        core_error_errno(&e, errno, "reading \"%s\"", path);
        rc = file_error(l, path, e);
    } else if (S_ISDIR(st.st_mode)) {
        rc = load_dir(l, path, depth + 1);
    } else if (S_ISREG(st.st_mode) && yaml_name(name)) {
        rc = load_file(l, path);
    }
    core_free(path);
    return rc;
}

/* False (and an error recorded in *rc) when dir is nested too deeply or is its own ancestor. */
static bool dir_enter(loader *l, const char *dir, int depth, int *rc)
{
    berth_error *e = NULL;
    if (depth > MAX_DIR_DEPTH) {
        core_error_set(&e, BERTH_EINVAL, "directory \"%s\" is nested too deeply", dir);
    } else if (stat(dir, &l->dirs[depth]) < 0) {
        core_error_errno(&e, errno, "reading directory \"%s\"", dir);
    } else {
        for (int i = 0; i < depth; i++)
            if (l->dirs[i].st_dev == l->dirs[depth].st_dev &&
                l->dirs[i].st_ino == l->dirs[depth].st_ino)
                core_error_set(&e, BERTH_EINVAL, "directory \"%s\" is a link to its own parent",
                               dir);
    }
    if (!e)
        return true;
    *rc = file_error(l, dir, e);
    return false;
}

static int load_dir(loader *l, const char *dir, int depth)
{
    char **names = NULL;
    size_t n = 0;
    berth_error *e = NULL;
    int rc = 0;
    if (!dir_enter(l, dir, depth, &rc))
        return rc;
    if ((rc = list_dir(&names, &n, dir, &e)) < 0)
        rc = rc == BERTH_ENOMEM ? rc : file_error(l, dir, e);
    if (rc == BERTH_ENOMEM)
        berth_error_free(e);
    for (size_t i = 0; i < n && rc >= 0; i++)
        rc = load_entry(l, dir, names[i], depth);
    for (size_t i = 0; i < n; i++)
        core_free(names[i]);
    core_free(names);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* duplicates and the final arrays                                                          */

static int ident_cmp(const void *a, const void *b)
{
    const ident *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    if (!c)
        c = strcmp(x->ns, y->ns);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

static bool same_ident(const ident *x, const ident *y)
{
    return strcmp(x->kind, y->kind) == 0 && strcmp(x->ns, y->ns) == 0 &&
           strcmp(x->name, y->name) == 0;
}

static int report_duplicates(loader *l)
{
    int rc = 0;
    if (l->seen_len > 1)
        qsort(l->seen, l->seen_len, sizeof(ident), ident_cmp);
    for (size_t i = 1; i < l->seen_len && rc == 0; i++) {
        const ident *first = &l->seen[i - 1], *dup = &l->seen[i];
        char msg[768];
        where w = {dup->kind, dup->ns, dup->name, dup->file, dup->line, 1};
        size_t j = i - 1;
        if (!same_ident(first, dup))
            continue;
        while (j > 0 && same_ident(&l->seen[j - 1], dup))
            j--;
        first = &l->seen[j];
        snprintf(msg, sizeof(msg),
                 "%s \"%s/%s\" is defined twice: in \"%s\" line %d and in \"%s\" line %d",
                 dup->kind, dup->ns, dup->name, first->file, first->line, dup->file, dup->line);
        rc = add_error(l, &w, BERTH_ECONFLICT, msg);
    }
    return rc;
}

static int meta_cmp(const void *a, const void *b)
{
    const eng_meta *x = a, *y = b; /* eng_meta is the first member of every kind */
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int err_cmp(const void *a, const void *b)
{
    const eng_config_error *x = *(const eng_config_error *const *)a;
    const eng_config_error *y = *(const eng_config_error *const *)b;
    int c = strcmp(x->kind, y->kind);
    if (!c)
        c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

/* The errors that name an object, sorted by identity, for bsearch. */
typedef struct err_index {
    const eng_config_error **e;
    size_t n;
} err_index;

static int err_index_build(err_index *ix, const eng_config *cfg)
{
    ix->n = 0;
    if (!(ix->e = core_calloc(cfg->errors_len ? cfg->errors_len : 1, sizeof(*ix->e))))
        return BERTH_ENOMEM;
    for (size_t i = 0; i < cfg->errors_len; i++)
        if (cfg->errors[i].kind && cfg->errors[i].ns && cfg->errors[i].name)
            ix->e[ix->n++] = &cfg->errors[i];
    if (ix->n > 1)
        qsort(ix->e, ix->n, sizeof(*ix->e), err_cmp);
    return 0;
}

static bool has_error(const err_index *ix, const char *kind, const eng_meta *m)
{
    eng_config_error key;
    const eng_config_error *kp = &key;
    memset(&key, 0, sizeof(key));
    key.kind = (char *)(uintptr_t)kind; /* search key only; never written */
    key.ns = m->ns;
    key.name = m->name;
    return ix->n && bsearch(&kp, ix->e, ix->n, sizeof(*ix->e), err_cmp) != NULL;
}

/* Drop the objects of one array that have an error against their identity, then sort. */
static void filter_sort(const err_index *ix, void *arr, size_t *len, size_t size, const char *kind,
                        void (*dispose)(void *))
{
    size_t out = 0;
    for (size_t i = 0; i < *len; i++) {
        char *obj = (char *)arr + i * size;
        if (has_error(ix, kind, (const eng_meta *)(void *)obj)) {
            dispose(obj);
            continue;
        }
        if (out != i)
            memmove((char *)arr + out * size, obj, size);
        out++;
    }
    *len = out;
    if (out > 1)
        qsort(arr, out, size, meta_cmp);
}

static int finish(loader *l)
{
    eng_config *c = l->cfg;
    err_index ix;
    int rc = report_duplicates(l);
    if (rc < 0 || (rc = err_index_build(&ix, c)) < 0)
        return rc;
    filter_sort(&ix, c->ocirepos, &c->ocirepos_len, sizeof(eng_ocirepo), "OCIRepository",
                ocirepo_dispose);
    filter_sort(&ix, c->kustomizations, &c->kustomizations_len, sizeof(eng_kustomization),
                "Kustomization", kustomization_dispose);
    filter_sort(&ix, c->secrets, &c->secrets_len, sizeof(eng_secret), "Secret", secret_dispose);
    filter_sort(&ix, c->configmaps, &c->configmaps_len, sizeof(eng_configmap), "ConfigMap",
                configmap_dispose);
    filter_sort(&ix, c->imagerepos, &c->imagerepos_len, sizeof(eng_imagerepo), "ImageRepository",
                imagerepo_dispose);
    filter_sort(&ix, c->imagepolicies, &c->imagepolicies_len, sizeof(eng_imagepolicy),
                "ImagePolicy", imagepolicy_dispose);
    filter_sort(&ix, c->imageupdates, &c->imageupdates_len, sizeof(eng_imageupdate),
                "ImageUpdateAutomation", imageupdate_dispose);
    core_free(ix.e);
    return 0;
}

static void loader_dispose(loader *l)
{
    for (size_t i = 0; i < l->seen_len; i++) {
        core_free(l->seen[i].ns);
        core_free(l->seen[i].name);
        core_free(l->seen[i].file);
    }
    core_free(l->seen);
}

static int loader_init(loader *l, berth_error **err)
{
    memset(l, 0, sizeof(*l));
    if (!(l->cfg = core_calloc(1, sizeof(*l->cfg))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

/* Finish the load and hand the config over, or free it on failure. */
static int loader_done(loader *l, int rc, eng_config **out, berth_error **err)
{
    if (rc >= 0)
        rc = finish(l);
    loader_dispose(l);
    if (rc < 0) {
        eng_config_free(l->cfg);
        if (rc == BERTH_ENOMEM)
            return core_error_set(err, BERTH_ENOMEM, "out of memory loading the configuration");
        return rc;
    }
    *out = l->cfg;
    return 0;
}

int eng_config_parse(eng_config **out, const char *data, size_t len, const char *name,
                     berth_error **err)
{
    loader l;
    int rc;
    BERTH_ARG_CHECK(out && (data || len == 0) && name);
    if ((rc = loader_init(&l, err)) < 0)
        return rc;
    rc = parse_stream(&l, data ? data : "", len, name);
    return loader_done(&l, rc, out, err);
}

int eng_config_load(eng_config **out, const char *path, berth_error **err)
{
    loader l;
    struct stat st;
    int rc;
    BERTH_ARG_CHECK(out && path);
    if (stat(path, &st) < 0)
        return core_error_errno(err, errno, "reading configuration \"%s\"", path);
    if ((rc = loader_init(&l, err)) < 0)
        return rc;
    rc = S_ISDIR(st.st_mode) ? load_dir(&l, path, 0) : load_file(&l, path);
    return loader_done(&l, rc, out, err);
}

/* ---------------------------------------------------------------------------------------- */
/* lookups                                                                                  */

static const void *find_meta(const void *arr, size_t len, size_t size, const char *ns,
                             const char *name)
{
    eng_meta key;
    if (!arr || !ns || !name)
        return NULL;
    memset(&key, 0, sizeof(key));
    key.ns = (char *)(uintptr_t)ns; /* search key only; never written */
    key.name = (char *)(uintptr_t)name;
    for (size_t lo = 0, hi = len; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        const void *m = (const char *)arr + mid * size;
        int c = meta_cmp(&key, m);
        if (c == 0)
            return m;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const eng_ocirepo *eng_config_find_ocirepo(const eng_config *cfg, const char *ns, const char *name)
{
    return cfg ? find_meta(cfg->ocirepos, cfg->ocirepos_len, sizeof(eng_ocirepo), ns, name) : NULL;
}

const eng_kustomization *eng_config_find_kustomization(const eng_config *cfg, const char *ns,
                                                       const char *name)
{
    return cfg ? find_meta(cfg->kustomizations, cfg->kustomizations_len, sizeof(eng_kustomization),
                           ns, name)
               : NULL;
}

const eng_secret *eng_config_find_secret(const eng_config *cfg, const char *ns, const char *name)
{
    return cfg ? find_meta(cfg->secrets, cfg->secrets_len, sizeof(eng_secret), ns, name) : NULL;
}

const eng_configmap *eng_config_find_configmap(const eng_config *cfg, const char *ns,
                                               const char *name)
{
    return cfg ? find_meta(cfg->configmaps, cfg->configmaps_len, sizeof(eng_configmap), ns, name)
               : NULL;
}

const eng_imagerepo *eng_config_find_imagerepo(const eng_config *cfg, const char *ns,
                                               const char *name)
{
    return cfg ? find_meta(cfg->imagerepos, cfg->imagerepos_len, sizeof(eng_imagerepo), ns, name)
               : NULL;
}

const eng_imagepolicy *eng_config_find_imagepolicy(const eng_config *cfg, const char *ns,
                                                   const char *name)
{
    return cfg ? find_meta(cfg->imagepolicies, cfg->imagepolicies_len, sizeof(eng_imagepolicy), ns,
                           name)
               : NULL;
}

const eng_imageupdate *eng_config_find_imageupdate(const eng_config *cfg, const char *ns,
                                                   const char *name)
{
    return cfg ? find_meta(cfg->imageupdates, cfg->imageupdates_len, sizeof(eng_imageupdate), ns,
                           name)
               : NULL;
}

const eng_config_error *eng_config_find_error(const eng_config *cfg, const char *kind,
                                              const char *ns, const char *name)
{
    for (size_t i = 0; cfg && kind && ns && name && i < cfg->errors_len; i++) {
        const eng_config_error *e = &cfg->errors[i];
        if (e->kind && e->ns && e->name && strcmp(e->kind, kind) == 0 && strcmp(e->ns, ns) == 0 &&
            strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* durations                                                                                */

static int64_t unit_ms(const char **p, bool allow_hours)
{
    if ((*p)[0] == 'm' && (*p)[1] == 's') {
        *p += 2;
        return 1;
    }
    switch (**p) {
    case 's':
        (*p)++;
        return 1000;
    case 'm':
        (*p)++;
        return 60000;
    case 'h':
        (*p)++;
        return allow_hours ? 3600000 : -1;
    default:
        return 0;
    }
}

/* One "<digits>[.<digits>]<unit>" segment added to *total; false when malformed. */
static bool duration_segment(const char **p, bool allow_hours, int64_t *total, bool *hours)
{
    int64_t whole = 0, frac = 0, scale = 1, unit;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > (INT64_MAX - 9) / 10)
            return false;
        whole = whole * 10 + (*s - '0');
    }
    if (*s == '.') {
        if (*++s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++)
            if (scale < 1000000000) {
                frac = frac * 10 + (*s - '0');
                scale *= 10;
            }
    }
    if ((unit = unit_ms(&s, allow_hours)) <= 0) {
        *hours = unit < 0;
        return false;
    }
    if (whole > (INT64_MAX - *total) / unit - 1)
        return false;
    *total += whole * unit + frac * unit / scale;
    *p = s;
    return true;
}

int eng_duration_parse(int64_t *ms_out, const char *text, bool allow_hours, berth_error **err)
{
    const char *p = text;
    int64_t total = 0;
    bool hours = false;
    BERTH_ARG_CHECK(ms_out && text);
    if (!*p)
        return core_error_set(err, BERTH_EINVAL, "invalid duration \"\"");
    while (*p) {
        if (!duration_segment(&p, allow_hours, &total, &hours))
            return core_error_set(err, BERTH_EINVAL,
                                  hours ? "invalid duration \"%.64s\": hours are not allowed here"
                                        : "invalid duration \"%.64s\" (want e.g. \"1m30s\", "
                                          "\"10m\", \"1h\")",
                                  text);
    }
    *ms_out = total;
    return 0;
}

void eng_duration_format(char out[32], int64_t ms)
{
    const char *sign = ms < 0 ? "-" : "";
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    uint64_t h = v / 3600000, m = v / 60000 % 60, s = v / 1000 % 60, frac = v % 1000;
    char secs[24], tmp[80];
    if (v == 0) {
        snprintf(out, 32, "0s");
        return;
    }
    if (v < 1000) {
        snprintf(out, 32, "%s%llums", sign, (unsigned long long)v);
        return;
    }
    snprintf(secs, sizeof(secs), "%llu.%03llu", (unsigned long long)s, (unsigned long long)frac);
    for (size_t l = strlen(secs); secs[l - 1] == '0' || secs[l - 1] == '.'; l--) {
        bool dot = secs[l - 1] == '.';
        secs[l - 1] = '\0';
        if (dot)
            break;
    }
    if (h)
        snprintf(tmp, sizeof(tmp), "%s%lluh%llum%ss", sign, (unsigned long long)h,
                 (unsigned long long)m, secs);
    else if (m)
        snprintf(tmp, sizeof(tmp), "%s%llum%ss", sign, (unsigned long long)m, secs);
    else
        snprintf(tmp, sizeof(tmp), "%s%ss", sign, secs);
    snprintf(out, 32, "%.31s", tmp); /* at most 22 bytes for any int64 */
}
