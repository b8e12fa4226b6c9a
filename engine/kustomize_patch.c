/*
 * Patches (spec/engine.md §2.3 P8): strategic merge patches and RFC 6902 JSON patches, and the
 * three kustomization fields that carry them: patchesStrategicMerge, patches and
 * patchesJson6902.
 *
 * Design: the strategic merge follows kyaml's merge2 as kustomize calls it (list direction
 * "prepend"): maps merge key by key, null deletes, scalars and lists replace, except lists
 * that the Kubernetes schema declares with merge keys, which merge element by element; the
 * result holds the patch's elements in patch order, then the remaining original elements.
 * berth does not embed the OpenAPI schema: merge keys are known by field name for built-in API
 * groups only (containers by name, ports by containerPort or Service port, ...); custom
 * resources have no schema, so their lists are replaced, as in kustomize. Directives: $patch
 * delete / replace / merge on maps and lists. After a strategic merge the object keeps its
 * apiVersion, kind, name and namespace (kustomize's ApplySmPatch); a JSON patch may rename,
 * and the old id is recorded for name references. Patch text is parsed with quoting marks so
 * post-build substitution sees patched-in values as the patch quoted them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/kustomize_internal.h"

#define SMP_MAX_DEPTH 200

typedef struct smp_ctx {
    eng_kz_ctx *ctx;
    bool schema;  /* a built-in kind: lists with merge keys merge */
    bool service; /* kind Service: spec.ports merge by port */
} smp_ctx;

/* Where a map sits, to pick merge keys for the lists it holds. */
typedef struct smp_pos {
    const char *in_list;    /* name of the list holding this map, or NULL */
    const char *parent_key; /* key of this map in its parent map, or NULL */
    int depth;              /* 0 = the object */
} smp_pos;

typedef struct merge_keys {
    const char *primary;   /* NULL: no merge key (replace); "" = primitive list (union) */
    const char *secondary; /* compared only when both elements have it */
} merge_keys;

static int merge_map(smp_ctx *sc, json_t *dst, const json_t *patch, smp_pos pos, bool *deleted);

static int nomem(eng_kz_ctx *ctx)
{
    return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
}

/* API groups whose kinds have a schema in kustomize's built-in OpenAPI document. */
static bool builtin_group(const json_t *obj)
{
    static const char *const groups[] = {"",
                                         "apps",
                                         "batch",
                                         "extensions",
                                         "policy",
                                         "autoscaling",
                                         "networking.k8s.io",
                                         "rbac.authorization.k8s.io",
                                         "storage.k8s.io",
                                         "scheduling.k8s.io",
                                         "coordination.k8s.io",
                                         "discovery.k8s.io",
                                         "node.k8s.io",
                                         "admissionregistration.k8s.io",
                                         NULL};
    char group[128], version[64];
    eng_kz_gv(obj, group, version);
    for (size_t i = 0; groups[i]; i++) {
        if (strcmp(groups[i], group) == 0)
            return true;
    }
    return false;
}

static bool is_container_list(const char *name)
{
    return name && (strcmp(name, "containers") == 0 || strcmp(name, "initContainers") == 0 ||
                    strcmp(name, "ephemeralContainers") == 0);
}

static merge_keys keys_for(const smp_ctx *sc, const char *field, smp_pos pos)
{
    static const char *const by_name[] = {
        "containers",       "initContainers", "ephemeralContainers", "volumes", "env",
        "imagePullSecrets", "resourceClaims", "schedulingGates",     NULL};
    merge_keys k = {NULL, NULL};
    if (!sc->schema)
        return k;
    for (size_t i = 0; by_name[i]; i++) {
        if (strcmp(by_name[i], field) == 0)
            k.primary = "name";
    }
    if (strcmp(field, "volumeMounts") == 0)
        k.primary = "mountPath";
    else if (strcmp(field, "volumeDevices") == 0)
        k.primary = "devicePath";
    else if (strcmp(field, "hostAliases") == 0)
        k.primary = "ip";
    else if (strcmp(field, "conditions") == 0)
        k.primary = "type";
    else if (strcmp(field, "ownerReferences") == 0)
        k.primary = "uid";
    else if (strcmp(field, "topologySpreadConstraints") == 0)
        k.primary = "topologyKey", k.secondary = "whenUnsatisfiable";
    else if (strcmp(field, "ports") == 0 && is_container_list(pos.in_list))
        k.primary = "containerPort", k.secondary = "protocol";
    else if (strcmp(field, "ports") == 0 && sc->service && pos.depth == 1 && pos.parent_key &&
             strcmp(pos.parent_key, "spec") == 0)
        k.primary = "port", k.secondary = "protocol";
    else if (strcmp(field, "finalizers") == 0 && pos.depth == 1 && pos.parent_key &&
             strcmp(pos.parent_key, "metadata") == 0)
        k.primary = "";
    return k;
}

/* ------------------------------------------------------------------ directives */

/* The $patch value of a map: 'd'elete, 'r'eplace, 'm'erge (also when absent), 0 = invalid. */
static char map_directive(const json_t *m)
{
    const json_t *d = json_object_get(m, "$patch");
    const char *v = json_string_value(d);
    if (!d)
        return 'm';
    if (v && strcmp(v, "delete") == 0)
        return 'd';
    if (v && strcmp(v, "replace") == 0)
        return 'r';
    if (v && strcmp(v, "merge") == 0)
        return 'm';
    return 0;
}

/* A list element that is only {$patch: x} sets the directive of the whole list. */
static char list_directive(const json_t *list)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        if (json_is_object(e) && json_object_size(e) == 1 && json_object_get(e, "$patch"))
            return map_directive(e);
    }
    return 'm';
}

static bool is_directive_element(const json_t *e)
{
    return json_is_object(e) && json_object_size(e) == 1 && json_object_get(e, "$patch");
}

static int unsupported_key(smp_ctx *sc, const char *key)
{
    static const char *const prefixes[] = {"$retainKeys", "$setElementOrder/",
                                           "$deleteFromPrimitiveList/", NULL};
    for (size_t i = 0; prefixes[i]; i++) {
        if (core_str_has_prefix(key, prefixes[i]))
            return core_error_set(sc->ctx->err, BERTH_EUNSUPPORTED,
                                  "strategic merge directive \"%s\" is not supported", key);
    }
    return 0;
}

/* ------------------------------------------------------------------ lists */

static bool scalar_equal(const json_t *a, const json_t *b)
{
    char ta[64], tb[64];
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b)) == 0;
    if (json_is_integer(a) && json_is_string(b)) {
        snprintf(ta, sizeof(ta), "%" JSON_INTEGER_FORMAT, json_integer_value(a));
        return strcmp(ta, json_string_value(b)) == 0;
    }
    if (json_is_string(a) && json_is_integer(b)) {
        snprintf(tb, sizeof(tb), "%" JSON_INTEGER_FORMAT, json_integer_value(b));
        return strcmp(json_string_value(a), tb) == 0;
    }
    return json_equal(a, b);
}

static bool same_element(const merge_keys *k, const json_t *a, const json_t *b)
{
    const json_t *pa = json_object_get(a, k->primary), *pb = json_object_get(b, k->primary);
    const json_t *sa, *sb;
    if (!pa || !pb || !scalar_equal(pa, pb))
        return false;
    if (!k->secondary)
        return true;
    sa = json_object_get(a, k->secondary);
    sb = json_object_get(b, k->secondary);
    return !sa || !sb || scalar_equal(sa, sb);
}

static const json_t *find_element(const merge_keys *k, const json_t *list, const json_t *e)
{
    size_t i;
    const json_t *x;
    json_array_foreach(list, i, x)
    {
        if (json_is_object(x) && same_element(k, x, e))
            return x;
    }
    return NULL;
}

/* Merge patch element p into a copy of d (or into an empty map); append unless deleted. */
static int merge_element(smp_ctx *sc, json_t *out, const json_t *d, const json_t *p,
                         const char *field, int depth)
{
    smp_pos pos = {field, NULL, depth + 1};
    json_t *e = d ? json_deep_copy(d) : json_object();
    bool deleted = false;
    int rc;
    if (!e)
        return nomem(sc->ctx);
    if (p && (rc = merge_map(sc, e, p, pos, &deleted)) < 0) {
        json_decref(e);
        return rc;
    }
    if (deleted) {
        json_decref(e);
        return 0;
    }
    return json_array_append_new(out, e) < 0 ? nomem(sc->ctx) : 0;
}

/* Patch elements first (merged with their originals), then the untouched originals. */
static int merge_keyed(smp_ctx *sc, const merge_keys *k, const json_t *dst, const json_t *patch,
                       const char *field, int depth, json_t *out)
{
    size_t i;
    const json_t *e;
    int rc;
    json_array_foreach(patch, i, e)
    {
        if (is_directive_element(e))
            continue;
        if (!json_is_object(e) || !json_object_get(e, k->primary))
            return core_error_set(sc->ctx->err, BERTH_EINVAL,
                                  "strategic merge patch: an element of \"%s\" has no \"%s\"",
                                  field, k->primary);
        if (find_element(k, patch, e) != e)
            continue; /* a later duplicate of an element already merged */
        if ((rc = merge_element(sc, out, find_element(k, dst, e), e, field, depth)) < 0)
            return rc;
    }
    json_array_foreach(dst, i, e)
    {
        if (json_is_object(e) && json_object_get(e, k->primary) && find_element(k, patch, e))
            continue;
        if (json_array_append(out, (json_t *)(uintptr_t)e) < 0)
            return nomem(sc->ctx);
    }
    return 0;
}

/* finalizers: the patch's values, then the original values not among them. */
static int merge_primitive(smp_ctx *sc, const json_t *dst, const json_t *patch, json_t *out)
{
    const json_t *lists[2] = {patch, dst};
    for (int l = 0; l < 2; l++) {
        size_t i, j;
        const json_t *e, *seen;
        json_array_foreach(lists[l], i, e)
        {
            bool dup = false;
            json_array_foreach(out, j, seen)
            {
                dup = dup || json_equal(seen, e);
            }
            if (!dup && !is_directive_element(e) &&
                json_array_append_new(out, json_deep_copy(e)) < 0)
                return nomem(sc->ctx);
        }
    }
    return 0;
}

/* Copy a patch list with directives processed (no original to merge with). */
static int plain_list(smp_ctx *sc, const json_t *patch, const char *field, int depth, json_t *out)
{
    size_t i;
    const json_t *e;
    int rc;
    json_array_foreach(patch, i, e)
    {
        if (is_directive_element(e))
            continue;
        if (json_is_object(e))
            rc = merge_element(sc, out, NULL, e, field, depth);
        else
            rc = json_array_append_new(out, json_deep_copy(e)) < 0 ? nomem(sc->ctx) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The merged value of list field `field` (dst may be NULL); NULL *out deletes the field. */
static int merge_list(smp_ctx *sc, const json_t *dst, const json_t *patch, const char *field,
                      smp_pos pos, json_t **out)
{
    merge_keys k = keys_for(sc, field, pos);
    char directive = list_directive(patch);
    json_t *res;
    int rc;
    *out = NULL;
    if (!directive)
        return core_error_set(sc->ctx->err, BERTH_EINVAL,
                              "strategic merge patch: unknown $patch value in \"%s\"", field);
    if (directive == 'd')
        return 0;
    if (!(res = json_array()))
        return nomem(sc->ctx);
    if (!json_is_array(dst) || directive == 'r' || !k.primary)
        rc = plain_list(sc, patch, field, pos.depth, res);
    else if (!k.primary[0])
        rc = merge_primitive(sc, dst, patch, res);
    else
        rc = merge_keyed(sc, &k, dst, patch, field, pos.depth, res);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* ------------------------------------------------------------------ maps */

static int merge_child_map(smp_ctx *sc, json_t *dst, const char *key, const json_t *pv, smp_pos pos)
{
    json_t *dv = json_object_get(dst, key);
    smp_pos child = {NULL, key, pos.depth + 1};
    bool deleted = false;
    int rc;
    if (!json_is_object(dv)) {
        if (!(dv = json_object()) || json_object_set_new(dst, key, dv) < 0)
            return nomem(sc->ctx);
    }
    if ((rc = merge_map(sc, dv, pv, child, &deleted)) < 0)
        return rc;
    if (deleted)
        json_object_del(dst, key);
    return 0;
}

static int merge_field(smp_ctx *sc, json_t *dst, const char *key, const json_t *pv, smp_pos pos)
{
    json_t *merged = NULL;
    int rc;
    if ((rc = unsupported_key(sc, key)) < 0)
        return rc;
    if (json_is_null(pv)) {
        json_object_del(dst, key);
        return 0;
    }
    if (json_is_object(pv))
        return merge_child_map(sc, dst, key, pv, pos);
    if (!json_is_array(pv))
        return json_object_set_new(dst, key, json_deep_copy(pv)) < 0 ? nomem(sc->ctx) : 0;
    if ((rc = merge_list(sc, json_object_get(dst, key), pv, key, pos, &merged)) < 0)
        return rc;
    if (!merged) {
        json_object_del(dst, key);
        return 0;
    }
    return json_object_set_new(dst, key, merged) < 0 ? nomem(sc->ctx) : 0;
}

static int merge_map(smp_ctx *sc, json_t *dst, const json_t *patch, smp_pos pos, bool *deleted)
{
    char directive = map_directive(patch);
    const char *key;
    const json_t *pv;
    int rc;
    *deleted = false;
    if (pos.depth > SMP_MAX_DEPTH)
        return core_error_set(sc->ctx->err, BERTH_EINVAL, "strategic merge patch nested too deep");
    if (!directive)
        return core_error_set(sc->ctx->err, BERTH_EINVAL,
                              "strategic merge patch: unknown $patch value");
    if (directive == 'd') {
        *deleted = true;
        return 0;
    }
    if (directive == 'r')
        json_object_clear(dst);
    json_object_foreach((json_t *)(uintptr_t)patch, key, pv)
    {
        if (strcmp(key, "$patch") != 0 && (rc = merge_field(sc, dst, key, pv, pos)) < 0)
            return rc;
    }
    return 0;
}

/* Restore a top-level or metadata string field to its value before the patch. */
static int restore(json_t *parent, const char *key, const char *value)
{
    if (!parent)
        return 0;
    if (!value || !value[0]) {
        json_object_del(parent, key);
        return 0;
    }
    return json_object_set_new(parent, key, json_string(value)) < 0 ? BERTH_ENOMEM : 0;
}

int eng_kz_smp(eng_kz_ctx *ctx, eng_kz_res *r, const json_t *patch, bool *deleted_out)
{
    smp_ctx sc = {ctx, builtin_group(r->obj), strcmp(eng_kz_kind(r->obj), "Service") == 0};
    smp_pos top = {NULL, NULL, 0};
    json_t *before =
        json_pack("{s:s?, s:s, s:s, s:s}", "apiVersion", eng_kz_str(r->obj, "apiVersion"), "kind",
                  eng_kz_kind(r->obj), "name", eng_kz_name(r->obj), "namespace", eng_kz_ns(r->obj));
    int rc;
    if (!before)
        return nomem(ctx);
    if ((rc = merge_map(&sc, r->obj, patch, top, deleted_out)) == 0 && !*deleted_out) {
        if (restore(r->obj, "apiVersion", eng_kz_str(before, "apiVersion")) < 0 ||
            restore(r->obj, "kind", eng_kz_str(before, "kind")) < 0 ||
            eng_kz_set_meta(r->obj, "name", eng_kz_str(before, "name")) < 0 ||
            restore(json_object_get(r->obj, "metadata"), "namespace",
                    eng_kz_str(before, "namespace")) < 0)
            rc = nomem(ctx);
    }
    json_decref(before);
    return rc;
}

/* ------------------------------------------------------------------ JSON patch */

typedef struct op_ctx {
    eng_kz_ctx *ctx;
    size_t index;
    const char *op, *path;
} op_ctx;

static int op_fail(op_ctx *oc, const char *what)
{
    return core_error_set(oc->ctx->err, BERTH_EINVAL, "json patch operation %zu (%s \"%s\"): %s",
                          oc->index, oc->op, oc->path, what);
}

/* The next reference token of a JSON pointer, unescaped (~1 -> /, ~0 -> ~). */
static char *next_token(const char **p)
{
    const char *s = *p + 1, *end = strchr(s, '/');
    size_t n = end ? (size_t)(end - s) : strlen(s), k = 0;
    char *tok = core_malloc(n + 1);
    if (!tok)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1'))
            tok[k++] = s[++i] == '0' ? '~' : '/';
        else
            tok[k++] = s[i];
    }
    tok[k] = '\0';
    *p = s + n;
    return tok;
}

/* An array index token: decimal without leading zeros. */
static bool parse_index(const char *tok, size_t *out)
{
    char *end;
    unsigned long long v;
    if (!tok[0] || (tok[0] == '0' && tok[1]) || tok[0] < '0' || tok[0] > '9')
        return false;
    v = strtoull(tok, &end, 10);
    if (*end)
        return false;
    *out = (size_t)v;
    return true;
}

static json_t *child(json_t *node, const char *tok)
{
    size_t i;
    if (json_is_object(node))
        return json_object_get(node, tok);
    if (json_is_array(node) && parse_index(tok, &i))
        return json_array_get(node, i);
    return NULL;
}

/* Split ptr into the container of its target and the last token (heap). */
static int locate(op_ctx *oc, json_t *doc, const char *ptr, json_t **parent, char **last)
{
    const char *p = ptr;
    json_t *node = doc;
    if (ptr[0] != '/')
        return op_fail(oc, "a path must start with \"/\"");
    for (;;) {
        char *tok = next_token(&p);
        if (!tok)
            return nomem(oc->ctx);
        if (*p == '\0') {
            *parent = node;
            *last = tok;
            return 0;
        }
        node = child(node, tok);
        core_free(tok);
        if (!node)
            return op_fail(oc, "path does not exist");
    }
}

static json_t *get_at(json_t *doc, const char *ptr)
{
    const char *p = ptr;
    json_t *node = doc;
    if (!ptr[0])
        return doc;
    if (ptr[0] != '/')
        return NULL;
    while (node && *p) {
        char *tok = next_token(&p);
        if (!tok)
            return NULL;
        node = child(node, tok);
        core_free(tok);
    }
    return node;
}

static int add_at(op_ctx *oc, json_t **doc, const char *ptr, json_t *value)
{
    json_t *parent;
    char *last = NULL;
    size_t i;
    int rc;
    if (!ptr[0]) {
        json_decref(*doc);
        *doc = json_incref(value);
        return 0;
    }
    if ((rc = locate(oc, *doc, ptr, &parent, &last)) < 0)
        return rc;
    if (json_is_object(parent))
        rc = json_object_set(parent, last, value) < 0 ? nomem(oc->ctx) : 0;
    else if (json_is_array(parent) && strcmp(last, "-") == 0)
        rc = json_array_append(parent, value) < 0 ? nomem(oc->ctx) : 0;
    else if (json_is_array(parent) && parse_index(last, &i) && i <= json_array_size(parent))
        rc = json_array_insert(parent, i, value) < 0 ? nomem(oc->ctx) : 0;
    else
        rc = op_fail(oc, "path does not exist");
    core_free(last);
    return rc;
}

static int remove_at(op_ctx *oc, json_t *doc, const char *ptr)
{
    json_t *parent;
    char *last = NULL;
    size_t i;
    int rc;
    if (!ptr[0])
        return op_fail(oc, "can not remove the whole document");
    if ((rc = locate(oc, doc, ptr, &parent, &last)) < 0)
        return rc;
    if (json_is_object(parent) && json_object_get(parent, last))
        json_object_del(parent, last);
    else if (json_is_array(parent) && parse_index(last, &i) && i < json_array_size(parent))
        json_array_remove(parent, i);
    else
        rc = op_fail(oc, "path does not exist");
    core_free(last);
    return rc;
}

/* A copy of the operation's value (the patch may be applied to several objects). */
static int op_value(op_ctx *oc, const json_t *op, json_t **out)
{
    const json_t *v = json_object_get(op, "value");
    if (!v)
        return op_fail(oc, "missing \"value\"");
    if (!(*out = json_deep_copy(v)))
        return nomem(oc->ctx);
    return 0;
}

static int op_from(op_ctx *oc, json_t *doc, const json_t *op, json_t **out)
{
    const char *from = eng_kz_str(op, "from");
    if (!from)
        return op_fail(oc, "missing \"from\"");
    if (!(*out = get_at(doc, from)))
        return op_fail(oc, "\"from\" does not exist");
    return 0;
}

static int copy_or_move(op_ctx *oc, json_t **doc, const json_t *op)
{
    json_t *from, *v;
    int rc;
    if ((rc = op_from(oc, *doc, op, &from)) < 0)
        return rc;
    if (!(v = json_deep_copy(from)))
        return nomem(oc->ctx);
    if (oc->op[0] == 'm' && (rc = remove_at(oc, *doc, eng_kz_str(op, "from"))) < 0) {
        json_decref(v);
        return rc;
    }
    rc = add_at(oc, doc, oc->path, v);
    json_decref(v);
    return rc;
}

static int run_op(op_ctx *oc, json_t **doc, const json_t *op)
{
    json_t *v = NULL;
    int rc;
    if (strcmp(oc->op, "remove") == 0)
        return remove_at(oc, *doc, oc->path);
    if (strcmp(oc->op, "copy") == 0 || strcmp(oc->op, "move") == 0)
        return copy_or_move(oc, doc, op);
    if (strcmp(oc->op, "add") != 0 && strcmp(oc->op, "replace") != 0 && strcmp(oc->op, "test") != 0)
        return op_fail(oc, "unknown operation");
    if ((rc = op_value(oc, op, &v)) < 0)
        return rc;
    if (strcmp(oc->op, "test") == 0)
        rc = json_equal(get_at(*doc, oc->path), v) ? 0 : op_fail(oc, "test failed");
    else if (oc->op[0] == 'r' && !get_at(*doc, oc->path))
        rc = op_fail(oc, "path does not exist");
    else
        rc = add_at(oc, doc, oc->path, v);
    json_decref(v);
    return rc;
}

int eng_kz_json6902(eng_kz_ctx *ctx, json_t **doc, const json_t *ops)
{
    size_t i;
    const json_t *op;
    int rc;
    json_array_foreach(ops, i, op)
    {
        op_ctx oc = {ctx, i, eng_kz_str(op, "op"), eng_kz_str(op, "path")};
        if (!json_is_object(op) || !oc.op || !oc.path) {
            oc.op = oc.op ? oc.op : "?";
            oc.path = oc.path ? oc.path : "";
            return op_fail(&oc, "an operation needs \"op\" and \"path\"");
        }
        if ((rc = run_op(&oc, doc, op)) < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ loading patch text */

/* Inline text, or the content of the file at path (relative to the kustomization). */
static int patch_text(eng_kz_ctx *ctx, const eng_kz_file *f, const char *inline_text,
                      const char *path, berth_buf *out)
{
    char *abs = NULL;
    int rc;
    berth_buf_init(out, 0);
    if (inline_text)
        return berth_buf_puts(out, inline_text) < 0 ? nomem(ctx) : 0;
    if ((rc = eng_kz_resolve(ctx, f, path, &abs)) < 0)
        return rc;
    rc = eng_kz_read(ctx, abs, ENG_KZ_MAX_FILE_BYTES, out);
    core_free(abs);
    return rc < 0 ? eng_kz_wrap(ctx, f, "patch file \"%s\"", path) : 0;
}

static int parse_patch(eng_kz_ctx *ctx, const eng_kz_file *f, const berth_buf *text,
                       const char *where, json_t **docs)
{
    int rc = eng_yaml_parse(docs, text->ptr, text->len, ENG_YAML_MARK_QUOTED, where, ctx->err);
    if (rc < 0)
        return eng_kz_wrap(ctx, f, "%s", where);
    if (json_array_size(*docs) == 0) {
        json_decref(*docs);
        *docs = NULL;
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: empty patch", where);
    }
    return 0;
}

/* ------------------------------------------------------------------ applying */

static int smp_by_id(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const json_t *patch,
                     const char *where)
{
    const char *name = eng_kz_name(patch), *ns = eng_kz_ns(patch);
    size_t hit = 0, n = 0;
    bool deleted = false;
    char id[300];
    int rc;
    for (size_t i = 0; i < set->len; i++) {
        if (eng_kz_same_gvk(set->v[i]->obj, patch) && eng_kz_any_id(set->v[i], name, ns)) {
            hit = i;
            n++;
        }
    }
    eng_kz_obj_id(patch, id, sizeof(id));
    if (n != 1)
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "%s: %s resource matches strategic merge patch "
                           "\"%s\"",
                           where, n ? "more than one" : "no", id);
    if ((rc = eng_kz_smp(ctx, set->v[hit], patch, &deleted)) < 0)
        return eng_kz_wrap(ctx, f, "%s", where);
    if (deleted)
        eng_kz_set_remove(set, hit);
    return 0;
}

/* Apply patch (a strategic merge map or a JSON6902 op list) to every selected resource. */
static int patch_selected(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set,
                          const eng_kz_selector *sel, const json_t *patch, const char *where)
{
    for (size_t i = 0; i < set->len;) {
        eng_kz_res *r = set->v[i];
        bool match = false, deleted = false;
        int rc;
        if ((rc = eng_kz_selector_match(ctx, sel, r, &match)) < 0)
            return eng_kz_wrap(ctx, f, "%s", where);
        if (match && json_is_array(patch))
            rc = eng_kz_record_prev(r) < 0 ? nomem(ctx) : eng_kz_json6902(ctx, &r->obj, patch);
        else if (match)
            rc = eng_kz_smp(ctx, r, patch, &deleted);
        if (rc < 0)
            return eng_kz_wrap(ctx, f, "%s", where);
        if (json_is_array(patch) && match && !json_is_object(r->obj))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: the patch did not leave an object",
                               where);
        if (deleted)
            eng_kz_set_remove(set, i);
        else
            i++;
    }
    return 0;
}

static int with_target(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const json_t *target,
                       const json_t *patch, const char *where)
{
    eng_kz_selector sel;
    int rc;
    if ((rc = eng_kz_selector_parse(ctx, f, target, where, &sel)) < 0)
        return rc;
    rc = patch_selected(ctx, f, set, &sel, patch, where);
    eng_kz_selector_dispose(&sel);
    return rc;
}

static bool all_objects(const json_t *docs)
{
    size_t i;
    const json_t *d;
    json_array_foreach(docs, i, d)
    {
        if (!json_is_object(d))
            return false;
    }
    return true;
}

/* One `patches` entry once its text is parsed. */
static int apply_docs(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const json_t *docs,
                      const json_t *target, const char *where)
{
    const json_t *first = json_array_get(docs, 0);
    int rc;
    if (json_array_size(docs) == 1 && json_is_array(first)) {
        if (!target)
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: a JSON patch needs a target", where);
        return with_target(ctx, f, set, target, first, where);
    }
    if (!all_objects(docs))
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "%s: unable to parse a strategic merge or JSON patch", where);
    if (target && json_array_size(docs) > 1)
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "%s: several strategic merge patches in one entry can not have a "
                           "target",
                           where);
    if (target)
        return with_target(ctx, f, set, target, first, where);
    for (size_t i = 0; i < json_array_size(docs); i++) {
        if ((rc = smp_by_id(ctx, f, set, json_array_get(docs, i), where)) < 0)
            return rc;
    }
    return 0;
}

static const char *trimmed(const char *s, berth_buf *tmp)
{
    size_t n;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    berth_buf_init(tmp, 0);
    if (berth_buf_put(tmp, s, n) < 0)
        return NULL;
    return tmp->ptr ? tmp->ptr : "";
}

static int options_check(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *e, const char *where)
{
    static const char *const keys[] = {"allowNameChange", "allowKindChange", NULL};
    const json_t *o = json_object_get(e, "options");
    bool name = false, kind = false;
    int rc;
    if (!o || json_is_null(o))
        return 0;
    if ((rc = eng_kz_check_keys(ctx, f, o, where, keys)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, o, "allowNameChange", where, &name)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, o, "allowKindChange", where, &kind)) < 0)
        return rc;
    if (name || kind)
        return eng_kz_fail(ctx, f, BERTH_EUNSUPPORTED,
                           "%s: options allowNameChange/allowKindChange are not supported", where);
    return 0;
}

/* Read the text of a {patch|path, target} entry and parse it. */
static int entry_docs(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *e, const char *where,
                      json_t **docs)
{
    const char *inline_text = NULL, *path = NULL, *t;
    berth_buf text, tmp;
    int rc;
    *docs = NULL;
    if ((rc = eng_kz_get_string(ctx, f, e, "patch", where, &inline_text)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "path", where, &path)) < 0)
        return rc;
    if (inline_text && !inline_text[0])
        inline_text = NULL;
    if (!inline_text == !path)
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: set exactly one of patch and path", where);
    if ((rc = patch_text(ctx, f, inline_text, path, &text)) < 0)
        return rc;
    if (!(t = trimmed(text.ptr ? text.ptr : "", &tmp)))
        rc = nomem(ctx);
    else
        rc = parse_patch(ctx, f, &tmp, where, docs);
    berth_buf_dispose(&text);
    berth_buf_dispose(&tmp);
    return rc;
}

static int run_entry_list(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const char *field)
{
    static const char *const keys[] = {"patch", "path", "target", "options", NULL};
    const json_t *list, *e, *target;
    char where[64];
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, field, "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        json_t *docs = NULL;
        snprintf(where, sizeof(where), "%s[%zu]", field, i);
        target = json_object_get(e, "target");
        target = json_is_null(target) ? NULL : target;
        if ((rc = eng_kz_check_keys(ctx, f, e, where, keys)) < 0 ||
            (rc = options_check(ctx, f, e, where)) < 0 ||
            (rc = entry_docs(ctx, f, e, where, &docs)) < 0)
            return rc;
        if (strcmp(field, "patchesJson6902") == 0 &&
            (json_array_size(docs) != 1 || !json_is_array(json_array_get(docs, 0))))
            rc = eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: not a JSON patch (a list of operations)",
                             where);
        else
            rc = apply_docs(ctx, f, set, docs, target, where);
        json_decref(docs);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int eng_kz_run_patches(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    return run_entry_list(ctx, f, set, "patches");
}

int eng_kz_run_patches_json6902(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    return run_entry_list(ctx, f, set, "patchesJson6902");
}

/* patchesStrategicMerge: file paths, or inline documents (text with a line break). */
static int sm_entry(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const char *entry,
                    const char *where)
{
    berth_buf text;
    json_t *docs = NULL;
    bool inline_doc = strchr(entry, '\n') != NULL;
    int rc;
    if ((rc = patch_text(ctx, f, inline_doc ? entry : NULL, entry, &text)) < 0)
        return rc;
    rc = parse_patch(ctx, f, &text, where, &docs);
    berth_buf_dispose(&text);
    if (rc == 0 && !all_objects(docs))
        rc = eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: a strategic merge patch must be a mapping",
                         where);
    for (size_t i = 0; rc == 0 && i < json_array_size(docs); i++)
        rc = smp_by_id(ctx, f, set, json_array_get(docs, i), where);
    json_decref(docs);
    return rc;
}

int eng_kz_run_patches_sm(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *list, *e;
    char where[64];
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, "patchesStrategicMerge", "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        snprintf(where, sizeof(where), "patchesStrategicMerge[%zu]", i);
        if (!json_is_string(e))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s must be a string", where);
        if ((rc = sm_entry(ctx, f, set, json_string_value(e), where)) < 0)
            return rc;
    }
    return 0;
}
