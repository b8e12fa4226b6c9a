/*
 * configMapGenerator and secretGenerator (spec/engine.md §2.3 P9) and kustomize's content-hash
 * name suffix (§2.4).
 *
 * Design: key/value pairs are collected in kustomize's order (envs, literals, files) as raw
 * bytes, checked (key syntax, duplicates), then written sorted by key as kustomize does
 * (SortedMapKeys): ConfigMap values that are valid UTF-8 go to data, others base64 to
 * binaryData; Secret values are all base64. A generated object is absorbed like kustomize's
 * appendReplaceOrMerge: create adds it (an existing id is an error), merge and replace combine
 * it with the one existing object having any of its ids, keeping that object's name, namespace
 * and place. The hash is computed at the end of the top-level build from the final object:
 * Go's encoding/json of {kind, name, data[, binaryData]} (Secret: type and stringData too) with
 * sorted keys, sha256, first ten hex digits with 0 1 3 a e mapped to g h k m t.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/kustomize_internal.h"

typedef struct kv {
    char *key;
    char *val;
    size_t len;
} kv;

typedef struct kv_list {
    kv *v;
    size_t len;
} kv_list;

typedef struct gen_opts {
    const json_t *labels, *annotations;
    bool no_hash, immutable;
} gen_opts;

typedef struct gen_entry {
    const json_t *e; /* the generator entry */
    char where[64];  /* "configMapGenerator[2]" */
    bool secret;
} gen_entry;

static const char *const entry_keys[] = {"name", "namespace", "behavior", "literals", "files",
                                         "envs", "env",       "options",  "type",     NULL};
static const char *const option_keys[] = {"labels", "annotations", "disableNameSuffixHash",
                                          "immutable", NULL};

static int nomem(eng_kz_ctx *ctx)
{
    return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void kv_dispose(kv_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        core_free(l->v[i].key);
        core_free(l->v[i].val);
    }
    core_free(l->v);
    l->v = NULL;
    l->len = 0;
}

static int kv_add(kv_list *l, const char *key, size_t key_len, const char *val, size_t len)
{
    kv *grown = core_realloc(l->v, (l->len + 1) * sizeof(*grown));
    kv *p;
    if (!grown)
        return BERTH_ENOMEM;
    l->v = grown;
    p = &l->v[l->len];
    p->key = core_strndup(key, key_len);
    p->val = core_malloc(len + 1);
    if (!p->key || !p->val) {
        core_free(p->key);
        core_free(p->val);
        return BERTH_ENOMEM;
    }
    memcpy(p->val, val, len);
    p->val[len] = '\0';
    p->len = len;
    l->len++;
    return 0;
}

/* ------------------------------------------------------------------ validation */

/* Go's utf8.Valid: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], need, min;
        unsigned long cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

static bool is_config_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 253)
        return false;
    return strspn(k, "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

/* Kubernetes IsEnvVarName: [-._a-zA-Z][-._a-zA-Z0-9]* */
static bool is_env_name(const char *k, size_t n)
{
    static const char first[] = "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t i;
    if (n == 0 || !memchr(first, k[0], sizeof(first) - 1))
        return false;
    for (i = 1; i < n; i++) {
        if (!memchr(first, k[i], sizeof(first) - 1) && !(k[i] >= '0' && k[i] <= '9'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ sources */

/* One env-file line (kustomize kv.go keyValuesFromLine); blanks and comments add nothing. */
static int env_line(eng_kz_ctx *ctx, const eng_kz_file *f, const char *file, const char *line,
                    size_t n, kv_list *out)
{
    const char *eq;
    if (!utf8_valid((const unsigned char *)line, n))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "env file \"%s\": a line has invalid utf8", file);
    while (n &&
           (*line == ' ' || *line == '\t' || *line == '\v' || *line == '\f' || *line == '\r')) {
        line++;
        n--;
    }
    if (n == 0 || line[0] == '#')
        return 0;
    eq = memchr(line, '=', n);
    if (!is_env_name(line, eq ? (size_t)(eq - line) : n))
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "env file \"%s\": \"%.*s\" is not a valid environment variable name",
                           file, (int)(eq ? (size_t)(eq - line) : n), line);
    if (!eq)
        return kv_add(out, line, n, "", 0) < 0 ? nomem(ctx) : 0;
    return kv_add(out, line, (size_t)(eq - line), eq + 1, n - (size_t)(eq - line) - 1) < 0
               ? nomem(ctx)
               : 0;
}

static int env_file(eng_kz_ctx *ctx, const eng_kz_file *f, const char *rel, kv_list *out)
{
    berth_buf b;
    char *abs = NULL;
    const char *p, *end;
    int rc;
    if ((rc = eng_kz_resolve(ctx, f, rel, &abs)) < 0)
        return rc;
    rc = eng_kz_read(ctx, abs, ENG_KZ_MAX_FILE_BYTES, &b);
    core_free(abs);
    if (rc < 0)
        return eng_kz_wrap(ctx, f, "env file");
    p = b.ptr ? b.ptr : "";
    end = p + b.len;
    if (b.len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[n - 1] == '\r')
            n--;
        rc = env_line(ctx, f, rel, p, n, out);
        p = nl ? nl + 1 : end;
    }
    berth_buf_dispose(&b);
    return rc;
}

/* "k=v", quotes around v removed (kv.go parseLiteralSource). */
static int literal(eng_kz_ctx *ctx, const eng_kz_file *f, const char *src, kv_list *out)
{
    const char *eq = strchr(src, '=');
    const char *v;
    size_t n;
    if (!eq || eq == src)
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "invalid literal source \"%s\", expected key=value", src);
    v = eq + 1;
    n = strlen(v);
    if (n >= 2 && v[0] == v[n - 1] && (v[0] == '"' || v[0] == '\'')) {
        v++;
        n -= 2;
    }
    return kv_add(out, src, (size_t)(eq - src), v, n) < 0 ? nomem(ctx) : 0;
}

/* Go's path.Base of a slash-separated path. */
static void path_base(const char *p, const char **base, size_t *n)
{
    size_t len = strlen(p);
    const char *slash;
    while (len > 1 && p[len - 1] == '/')
        len--;
    slash = len ? memchr(p, '/', len) : NULL;
    while (slash) {
        const char *next = memchr(slash + 1, '/', len - (size_t)(slash + 1 - p));
        if (!next)
            break;
        slash = next;
    }
    *base = slash && len > 1 ? slash + 1 : p;
    *n = len - (size_t)(*base - p);
}

/* "path" or "key=path" (generators/utils.go ParseFileSource). */
static int file_source(eng_kz_ctx *ctx, const eng_kz_file *f, const char *src, kv_list *out)
{
    const char *eq = strchr(src, '='), *key = src, *path = src;
    size_t key_len;
    char *abs = NULL;
    berth_buf b;
    int rc;
    if (eq && (eq == src || !eq[1] || strchr(eq + 1, '=')))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "file source \"%s\" is invalid (key=path)", src);
    if (eq) {
        key_len = (size_t)(eq - src);
        path = eq + 1;
    } else {
        path_base(src, &key, &key_len);
    }
    if ((rc = eng_kz_resolve(ctx, f, path, &abs)) < 0)
        return rc;
    rc = eng_kz_read(ctx, abs, ENG_KZ_MAX_FILE_BYTES, &b);
    core_free(abs);
    if (rc < 0)
        return eng_kz_wrap(ctx, f, "file source");
    rc = kv_add(out, key, key_len, b.ptr ? b.ptr : "", b.len) < 0 ? nomem(ctx) : 0;
    berth_buf_dispose(&b);
    return rc;
}

typedef int (*source_fn)(eng_kz_ctx *, const eng_kz_file *, const char *, kv_list *);

static int each_source(eng_kz_ctx *ctx, const eng_kz_file *f, const gen_entry *g, const char *key,
                       source_fn fn, kv_list *out)
{
    const json_t *list, *e;
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, g->e, key, g->where, &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        if (!json_is_string(e))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s[%zu] must be a string", g->where, key,
                               i);
        if ((rc = fn(ctx, f, json_string_value(e), out)) < 0)
            return rc;
    }
    return 0;
}

static int check_pairs(eng_kz_ctx *ctx, const eng_kz_file *f, const gen_entry *g, const char *name,
                       const kv_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        if (!is_config_key(l->v[i].key))
            return eng_kz_fail(ctx, f, BERTH_EINVAL,
                               "%s: key \"%s\" is not a valid config key (alphanumerics, '-', "
                               "'_' or '.')",
                               g->where, l->v[i].key);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->v[i].key, l->v[j].key) == 0)
                return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s %s illegally repeats the key \"%s\"",
                                   g->secret ? "secret" : "configmap", name, l->v[i].key);
        }
    }
    return 0;
}

/* Pairs in kustomize's order: envs (and the deprecated env), literals, files. */
static int collect(eng_kz_ctx *ctx, const eng_kz_file *f, const gen_entry *g, const char *name,
                   kv_list *out)
{
    const char *env = NULL;
    int rc;
    if ((rc = eng_kz_get_string(ctx, f, g->e, "env", g->where, &env)) < 0)
        return rc;
    if (env && (rc = env_file(ctx, f, env, out)) < 0)
        return rc;
    if ((rc = each_source(ctx, f, g, "envs", env_file, out)) < 0 ||
        (rc = each_source(ctx, f, g, "literals", literal, out)) < 0 ||
        (rc = each_source(ctx, f, g, "files", file_source, out)) < 0)
        return rc;
    return check_pairs(ctx, f, g, name, out);
}

/* ------------------------------------------------------------------ objects */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

static int set_value(json_t *obj, const char *map_key, const char *key, json_t *v)
{
    json_t *map = json_object_get(obj, map_key);
    if (!v)
        return BERTH_ENOMEM;
    if (!map && (!(map = json_object()) || json_object_set_new(obj, map_key, map) < 0)) {
        json_decref(v);
        return BERTH_ENOMEM;
    }
    return json_object_set_new(map, key, v) < 0 ? BERTH_ENOMEM : 0;
}

static json_t *b64_string(const char *v, size_t n)
{
    char *enc = core_base64_encode(v, n);
    json_t *s = enc ? json_string(enc) : NULL;
    core_free(enc);
    return s;
}

static int fill_data(json_t *obj, kv_list *l, bool secret)
{
    int rc = 0;
    qsort(l->v, l->len, sizeof(*l->v), kv_cmp);
    for (size_t i = 0; i < l->len && rc == 0; i++) {
        const kv *p = &l->v[i];
        if (secret)
            rc = set_value(obj, "data", p->key, b64_string(p->val, p->len));
        else if (utf8_valid((const unsigned char *)p->val, p->len) && !memchr(p->val, 0, p->len))
            rc = set_value(obj, "data", p->key, json_stringn(p->val, p->len));
        else
            rc = set_value(obj, "binaryData", p->key, b64_string(p->val, p->len));
    }
    return rc;
}

static int copy_sorted(json_t *dst, const json_t *src)
{
    const char *keys[256];
    const char *k;
    const json_t *v;
    size_t n = 0;
    json_object_foreach((json_t *)(uintptr_t)src, k, v)
    {
        if (n == sizeof(keys) / sizeof(*keys))
            return BERTH_EINVAL;
        keys[n++] = k;
    }
    qsort(keys, n, sizeof(*keys), str_ptr_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!json_object_get(dst, keys[i]) &&
            json_object_set(dst, keys[i], json_object_get(src, keys[i])) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int set_meta_map(json_t *obj, const char *key, const json_t *entries)
{
    json_t *m;
    if (!entries || json_object_size(entries) == 0)
        return 0;
    if (!(m = eng_kz_meta_map(obj, key, true)))
        return BERTH_ENOMEM;
    return copy_sorted(m, entries);
}

static json_t *base_object(const char *kind, const char *name, const char *ns)
{
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", kind, "metadata",
                            "name", name);
    if (obj && ns && ns[0] && eng_kz_set_meta(obj, "namespace", ns) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int make_object(const gen_entry *g, const char *name, const char *ns, const char *type,
                       kv_list *pairs, const gen_opts *o, json_t **out)
{
    json_t *obj = base_object(g->secret ? "Secret" : "ConfigMap", name, ns);
    int rc = obj ? 0 : BERTH_ENOMEM;
    if (rc == 0 && g->secret)
        rc = json_object_set_new(obj, "type", json_string(type ? type : "Opaque")) < 0
                 ? BERTH_ENOMEM
                 : 0;
    if (rc == 0)
        rc = fill_data(obj, pairs, g->secret);
    if (rc == 0 && (rc = set_meta_map(obj, "labels", o->labels)) == 0)
        rc = set_meta_map(obj, "annotations", o->annotations);
    if (rc == 0 && o->immutable)
        rc = json_object_set_new(obj, "immutable", json_true()) < 0 ? BERTH_ENOMEM : 0;
    if (rc < 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* ------------------------------------------------------------------ options */

static int read_options(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *o, const char *where,
                        gen_opts *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (!o || json_is_null(o))
        return 0;
    if ((rc = eng_kz_check_keys(ctx, f, o, where, option_keys)) < 0 ||
        (rc = eng_kz_get_string_map(ctx, f, o, "labels", where, &out->labels)) < 0 ||
        (rc = eng_kz_get_string_map(ctx, f, o, "annotations", where, &out->annotations)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, o, "disableNameSuffixHash", where, &out->no_hash)) < 0)
        return rc;
    return eng_kz_get_bool(ctx, f, o, "immutable", where, &out->immutable);
}

/* generatorOptions into an entry's options: the entry's keys win, booleans are or-ed. */
static int merge_options(const gen_opts *global, gen_opts *local, json_t **labels,
                         json_t **annotations)
{
    *labels = json_object();
    *annotations = json_object();
    if (!*labels || !*annotations)
        return BERTH_ENOMEM;
    if ((local->labels && json_object_update(*labels, (json_t *)(uintptr_t)local->labels) < 0) ||
        (local->annotations &&
         json_object_update(*annotations, (json_t *)(uintptr_t)local->annotations) < 0) ||
        (global->labels &&
         json_object_update_missing(*labels, (json_t *)(uintptr_t)global->labels) < 0) ||
        (global->annotations &&
         json_object_update_missing(*annotations, (json_t *)(uintptr_t)global->annotations) < 0))
        return BERTH_ENOMEM;
    local->labels = *labels;
    local->annotations = *annotations;
    local->no_hash = local->no_hash || global->no_hash;
    local->immutable = local->immutable || global->immutable;
    return 0;
}

/* ------------------------------------------------------------------ absorbing */

static int find_matches(const eng_kz_set *set, const eng_kz_res *r, size_t *idx_out)
{
    int n = 0;
    for (size_t i = 0; i < set->len; i++) {
        if (eng_kz_same_gvk(set->v[i]->obj, r->obj) &&
            eng_kz_any_id(set->v[i], eng_kz_name(r->obj), eng_kz_ns(r->obj))) {
            *idx_out = i;
            n++;
        }
    }
    return n;
}

/* dst.key = old.key overlaid with dst.key (dst wins); absent stays absent. */
static int merge_map_from(json_t *dst_parent, const json_t *old_parent, const char *key)
{
    json_t *old = json_object_get(old_parent, key), *mine = json_object_get(dst_parent, key);
    json_t *merged;
    if (!json_is_object(old))
        return 0;
    if (!(merged = json_deep_copy(old)))
        return BERTH_ENOMEM;
    if (json_is_object(mine) && json_object_update(merged, mine) < 0) {
        json_decref(merged);
        return BERTH_ENOMEM;
    }
    return json_object_set_new(dst_parent, key, merged) < 0 ? BERTH_ENOMEM : 0;
}

/* kustomize CopyMergeMetaDataFieldsFrom (+ MergeDataMapFrom for merge). */
static int combine(eng_kz_res *old, eng_kz_res *r, bool merge)
{
    json_t *meta = json_object_get(r->obj, "metadata");
    const json_t *old_meta = json_object_get(old->obj, "metadata");
    eng_kz_prev *prev = r->prev;
    size_t prev_len = r->prev_len;
    char *affixes = r->affixes;
    int rc;
    if ((rc = merge_map_from(meta, old_meta, "labels")) < 0 ||
        (rc = merge_map_from(meta, old_meta, "annotations")) < 0 ||
        (rc = eng_kz_set_meta(r->obj, "name", eng_kz_name(old->obj))) < 0)
        return rc;
    if (eng_kz_ns(old->obj)[0])
        rc = eng_kz_set_meta(r->obj, "namespace", eng_kz_ns(old->obj));
    else
        json_object_del(meta, "namespace");
    if (rc == 0 && merge && (rc = merge_map_from(r->obj, old->obj, "data")) == 0)
        rc = merge_map_from(r->obj, old->obj, "binaryData");
    if (rc < 0)
        return rc;
    r->prev = old->prev;
    r->prev_len = old->prev_len;
    r->affixes = old->affixes;
    old->prev = prev;
    old->prev_len = prev_len;
    old->affixes = affixes;
    return 0;
}

static int absorb(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, eng_kz_res *r,
                  const char *where)
{
    size_t idx = 0;
    char id[300];
    int n = find_matches(set, r, &idx), rc;
    eng_kz_obj_id(r->obj, id, sizeof(id));
    if (n == 0 && r->behavior != 'c')
        rc = eng_kz_fail(ctx, f, BERTH_EINVAL,
                         "%s: id \"%s\" does not exist; cannot merge or "
                         "replace",
                         where, id);
    else if (n == 0)
        return eng_kz_set_push(set, r) < 0 ? nomem(ctx) : 0;
    else if (n > 1)
        rc = eng_kz_fail(ctx, f, BERTH_EINVAL,
                         "%s: found multiple objects that could accept "
                         "merge of \"%s\"",
                         where, id);
    else if (r->behavior == 'c')
        rc = eng_kz_fail(ctx, f, BERTH_EINVAL,
                         "%s: id \"%s\" exists; behavior must be merge or replace", where, id);
    else if ((rc = combine(set->v[idx], r, r->behavior == 'm')) < 0)
        rc = nomem(ctx);
    if (rc < 0) {
        eng_kz_res_free(r);
        return rc;
    }
    eng_kz_res_free(set->v[idx]);
    set->v[idx] = r;
    return 0;
}

/* ------------------------------------------------------------------ one generator entry */

static int read_behavior(eng_kz_ctx *ctx, const eng_kz_file *f, const gen_entry *g, char *out)
{
    const char *b = NULL;
    int rc;
    if ((rc = eng_kz_get_string(ctx, f, g->e, "behavior", g->where, &b)) < 0)
        return rc;
    if (!b || !b[0] || strcmp(b, "create") == 0)
        *out = 'c';
    else if (strcmp(b, "merge") == 0)
        *out = 'm';
    else if (strcmp(b, "replace") == 0)
        *out = 'r';
    else
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "%s: behavior \"%s\" is not one of create, merge, replace", g->where, b);
    return 0;
}

static int entry_object(eng_kz_ctx *ctx, const eng_kz_file *f, const gen_entry *g,
                        const gen_opts *global, json_t **obj_out, bool *no_hash)
{
    const char *name = NULL, *ns = NULL, *type = NULL;
    json_t *labels = NULL, *annotations = NULL;
    kv_list pairs = {NULL, 0};
    gen_opts o;
    int rc;
    if ((rc = eng_kz_check_keys(ctx, f, g->e, g->where, entry_keys)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, g->e, "name", g->where, &name)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, g->e, "namespace", g->where, &ns)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, g->e, "type", g->where, &type)) < 0 ||
        (rc = read_options(ctx, f, json_object_get(g->e, "options"), g->where, &o)) < 0)
        return rc;
    if (!name || !name[0])
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: name is required", g->where);
    if (type && !g->secret)
        return eng_kz_fail(ctx, f, BERTH_EUNSUPPORTED, "%s: field \"type\" is not supported",
                           g->where);
    if ((rc = collect(ctx, f, g, name, &pairs)) == 0) {
        if (merge_options(global, &o, &labels, &annotations) < 0 ||
            make_object(g, name, ns, type, &pairs, &o, obj_out) < 0)
            rc = nomem(ctx);
        *no_hash = o.no_hash;
    }
    json_decref(labels);
    json_decref(annotations);
    kv_dispose(&pairs);
    return rc;
}

static int run_entry(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const gen_entry *g,
                     const gen_opts *global)
{
    json_t *obj = NULL;
    eng_kz_res *r;
    bool no_hash = false;
    char behavior = 'c';
    int rc;
    if ((rc = read_behavior(ctx, f, g, &behavior)) < 0 ||
        (rc = entry_object(ctx, f, g, global, &obj, &no_hash)) < 0)
        return rc;
    if (!(r = eng_kz_res_new(obj)))
        return nomem(ctx);
    r->needs_hash = !no_hash;
    r->behavior = behavior;
    return absorb(ctx, f, set, r, g->where);
}

static int run_list(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, bool secret,
                    const gen_opts *global)
{
    const char *key = secret ? "secretGenerator" : "configMapGenerator";
    const json_t *list;
    gen_entry g;
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, key, "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, g.e)
    {
        snprintf(g.where, sizeof(g.where), "%s[%zu]", key, i);
        g.secret = secret;
        if ((rc = run_entry(ctx, f, set, &g, global)) < 0)
            return rc;
    }
    return 0;
}

int eng_kz_run_generators(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    gen_opts global;
    int rc;
    if ((rc = read_options(ctx, f, json_object_get(f->k, "generatorOptions"), "generatorOptions",
                           &global)) < 0 ||
        (rc = run_list(ctx, f, set, false, &global)) < 0)
        return rc;
    return run_list(ctx, f, set, true, &global);
}

/* ------------------------------------------------------------------ Go's encoding/json */

static int go_value(berth_buf *b, const json_t *v, int depth);

static int go_string(berth_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = berth_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            esc = u;
        else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            esc = (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            i += 2;
        }
        rc = esc ? berth_buf_puts(b, esc) : berth_buf_put(b, &s[i], 1);
    }
    return rc ? rc : berth_buf_put(b, "\"", 1);
}

/* Digits and decimal exponent of the shortest %e form of d (d > 0) that reads back as d. */
static void shortest(double d, char digits[24], long *exp10)
{
    char tmp[40];
    size_t k = 0;
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    for (const char *c = tmp; *c && *c != 'e'; c++) {
        if (*c >= '0' && *c <= '9')
            digits[k++] = *c;
    }
    digits[k] = '\0';
    *exp10 = strtol(strchr(tmp, 'e') + 1, NULL, 10);
}

/* strconv.FormatFloat(d, 'f', -1, 64) of a positive d. */
static int go_fixed(berth_buf *b, const char *digits, long e)
{
    long nd = (long)strlen(digits);
    int rc = 0;
    if (e < 0) {
        rc = berth_buf_puts(b, "0.");
        for (long i = 0; i < -e - 1 && rc == 0; i++)
            rc = berth_buf_put(b, "0", 1);
        return rc ? rc : berth_buf_puts(b, digits);
    }
    for (long i = 0; i <= e && rc == 0; i++)
        rc = berth_buf_put(b, i < nd ? &digits[i] : "0", 1);
    if (rc == 0 && nd > e + 1) {
        rc = berth_buf_put(b, ".", 1);
        if (rc == 0)
            rc = berth_buf_puts(b, digits + e + 1);
    }
    return rc;
}

/* Go encoding/json for a float64: 'f' format, or 'e' below 1e-6 and from 1e21 on. */
static int go_number(berth_buf *b, double d)
{
    char digits[24];
    long e;
    int rc = 0;
    if (d == 0)
        return berth_buf_put(b, "0", 1);
    if (d < 0 && (rc = berth_buf_put(b, "-", 1)) < 0)
        return rc;
    d = fabs(d);
    shortest(d, digits, &e);
    if (d >= 1e-6 && d < 1e21)
        return go_fixed(b, digits, e);
    rc = berth_buf_put(b, digits, 1);
    if (rc == 0 && digits[1])
        rc = berth_buf_printf(b, ".%s", digits + 1);
    if (rc)
        return rc;
    return e < 0 ? berth_buf_printf(b, "e-%ld", -e) : berth_buf_printf(b, "e+%02ld", e);
}

static int go_object(berth_buf *b, const json_t *v, int depth)
{
    size_t n = json_object_size(v), i = 0;
    const char **keys = core_malloc((n ? n : 1) * sizeof(*keys));
    const char *k;
    const json_t *val;
    int rc;
    if (!keys)
        return BERTH_ENOMEM;
    json_object_foreach((json_t *)(uintptr_t)v, k, val)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), str_ptr_cmp);
    rc = berth_buf_put(b, "{", 1);
    for (i = 0; i < n && rc == 0; i++) {
        if ((i && (rc = berth_buf_put(b, ",", 1)) < 0) ||
            (rc = go_string(b, keys[i], strlen(keys[i]))) < 0 ||
            (rc = berth_buf_put(b, ":", 1)) < 0)
            break;
        rc = go_value(b, json_object_get(v, keys[i]), depth + 1);
    }
    core_free(keys);
    return rc ? rc : berth_buf_put(b, "}", 1);
}

static int go_value(berth_buf *b, const json_t *v, int depth)
{
    size_t i;
    const json_t *item;
    int rc;
    if (depth > 1000)
        return BERTH_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return go_object(b, v, depth);
    case JSON_ARRAY:
        rc = berth_buf_put(b, "[", 1);
        json_array_foreach(v, i, item)
        {
            if (rc == 0 && i)
                rc = berth_buf_put(b, ",", 1);
            if (rc == 0)
                rc = go_value(b, item, depth + 1);
        }
        return rc ? rc : berth_buf_put(b, "]", 1);
    case JSON_STRING:
        return go_string(b, json_string_value(v), eng_yaml_strlen(v));
    case JSON_INTEGER:
    case JSON_REAL:
        return go_number(b, json_number_value(v));
    case JSON_TRUE:
        return berth_buf_puts(b, "true");
    case JSON_FALSE:
        return berth_buf_puts(b, "false");
    case JSON_NULL:
        break;
    }
    return berth_buf_puts(b, "null");
}

/* ------------------------------------------------------------------ the hash */

int eng_kz_json_hash(char out[11], const json_t *value, berth_error **err)
{
    static const char from[] = "013ae", to[] = "ghkmt";
    berth_buf b;
    char digest[72];
    berth_buf_init(&b, 0);
    if (go_value(&b, value, 0) < 0) {
        berth_buf_dispose(&b);
        return core_error_set(err, BERTH_ENOMEM, "hashing: out of memory");
    }
    core_sha256_digest(digest, b.ptr ? b.ptr : "", b.len);
    berth_buf_dispose(&b);
    for (size_t i = 0; i < 10; i++) {
        const char *p = strchr(from, digest[7 + i]);
        out[i] = p ? to[p - from] : digest[7 + i];
    }
    out[10] = '\0';
    return 0;
}

/* A scalar as kustomize's getNodeValues sees it: its text; a missing field is "". */
static json_t *node_value(const json_t *v)
{
    char num[64];
    if (!v || json_is_null(v))
        return json_string("");
    if (json_is_object(v) || json_is_array(v))
        return json_incref((json_t *)(uintptr_t)v);
    if (json_is_string(v))
        return json_stringn(json_string_value(v), eng_yaml_strlen(v));
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    if (json_is_integer(v))
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
    return json_string(num);
}

static int put(json_t *m, const char *key, json_t *v)
{
    return (!v || json_object_set_new(m, key, v) < 0) ? BERTH_ENOMEM : 0;
}

/* The object kustomize's hasher encodes for a ConfigMap or a Secret. */
static json_t *hash_input(const json_t *obj)
{
    const char *kind = eng_kz_kind(obj);
    const json_t *meta = json_object_get(obj, "metadata");
    bool secret = strcmp(kind, "Secret") == 0;
    const char *extra = secret ? "stringData" : "binaryData";
    json_t *m = json_object();
    if (!m || put(m, "kind", json_string(kind)) < 0 ||
        put(m, "name", node_value(json_object_get(meta, "name"))) < 0 ||
        put(m, "data", node_value(json_object_get(obj, "data"))) < 0 ||
        (secret && put(m, "type", node_value(json_object_get(obj, "type"))) < 0) ||
        (json_is_object(json_object_get(obj, extra)) &&
         put(m, extra, json_incref(json_object_get(obj, extra))) < 0)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

int eng_kz_object_hash(char out[11], const json_t *obj, berth_error **err)
{
    const char *kind = eng_kz_kind(obj);
    json_t *in;
    int rc;
    if (strcmp(kind, "ConfigMap") != 0 && strcmp(kind, "Secret") != 0)
        return eng_kz_json_hash(out, obj, err);
    if (!(in = hash_input(obj)))
        return core_error_set(err, BERTH_ENOMEM, "hashing: out of memory");
    rc = eng_kz_json_hash(out, in, err);
    json_decref(in);
    return rc;
}

int eng_kz_add_hashes(eng_kz_ctx *ctx, eng_kz_set *set)
{
    char hash[11], *name;
    int rc;
    for (size_t i = 0; i < set->len; i++) {
        eng_kz_res *r = set->v[i];
        if (!r->needs_hash)
            continue;
        if ((rc = eng_kz_object_hash(hash, r->obj, ctx->err)) < 0)
            return rc;
        if (!(name = core_sprintf("%s-%s", eng_kz_name(r->obj), hash)))
            return nomem(ctx);
        rc = eng_kz_rename(r, name);
        core_free(name);
        if (rc < 0)
            return nomem(ctx);
    }
    return 0;
}
