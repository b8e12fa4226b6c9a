/*
 * Helpers shared by the kustomize steps (engine/kustomize_internal.h): resource sets and ids,
 * object fields, field-path walking, confined file access, typed access to kustomization
 * values and patch-target selectors.
 *
 * Design: a resource's ids are its current (name, namespace) plus every earlier pair, recorded
 * by eng_kz_rename/eng_kz_renamespace/eng_kz_record_prev before each change, as kustomize keeps
 * PrevIds. Files are resolved with realpath(3) and must stay under the artifact root, so
 * neither "../" nor a symlink can read outside it. Thread-safe: state lives in the ctx.
 */
#define _XOPEN_SOURCE 700 /* realpath(3) is XSI */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/kustomize_internal.h"

/* ------------------------------------------------------------------ errors */

int eng_kz_fail(eng_kz_ctx *ctx, const eng_kz_file *f, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!f)
        return core_error_set(ctx->err, code, "%s", msg);
    return core_error_set(ctx->err, code, "kustomization \"%s\": %s", f->name, msg);
}

int eng_kz_wrap(eng_kz_ctx *ctx, const eng_kz_file *f, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!f)
        return core_error_wrap(ctx->err, "%s", msg);
    return core_error_wrap(ctx->err, "kustomization \"%s\": %s", f->name, msg);
}

/* ------------------------------------------------------------------ resources and sets */

eng_kz_res *eng_kz_res_new(json_t *obj)
{
    eng_kz_res *r = core_calloc(1, sizeof(*r));
    if (!r) {
        json_decref(obj);
        return NULL;
    }
    r->obj = obj;
    r->behavior = 'c';
    return r;
}

void eng_kz_res_free(eng_kz_res *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->prev_len; i++) {
        core_free(r->prev[i].name);
        core_free(r->prev[i].ns);
    }
    core_free(r->prev);
    core_free(r->affixes);
    json_decref(r->obj);
    core_free(r);
}

int eng_kz_set_push(eng_kz_set *s, eng_kz_res *r)
{
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        eng_kz_res **grown = core_realloc(s->v, cap * sizeof(*grown));
        if (!grown) {
            eng_kz_res_free(r);
            return BERTH_ENOMEM;
        }
        s->v = grown;
        s->cap = cap;
    }
    s->v[s->len++] = r;
    return 0;
}

static bool same_current_id(const json_t *a, const json_t *b)
{
    return eng_kz_same_gvk(a, b) && strcmp(eng_kz_name(a), eng_kz_name(b)) == 0 &&
           strcmp(eng_kz_effective_ns(a, eng_kz_ns(a)), eng_kz_effective_ns(b, eng_kz_ns(b))) == 0;
}

int eng_kz_set_add(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *s, eng_kz_res *r)
{
    char id[300];
    for (size_t i = 0; i < s->len; i++) {
        if (!same_current_id(s->v[i]->obj, r->obj))
            continue;
        eng_kz_obj_id(r->obj, id, sizeof(id));
        eng_kz_res_free(r);
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "may not add resource with an already registered id \"%s\"", id);
    }
    if (eng_kz_set_push(s, r) < 0)
        return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
    return 0;
}

void eng_kz_set_remove(eng_kz_set *s, size_t i)
{
    eng_kz_res_free(s->v[i]);
    memmove(&s->v[i], &s->v[i + 1], (s->len - i - 1) * sizeof(*s->v));
    s->len--;
}

void eng_kz_set_dispose(eng_kz_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->len; i++)
        eng_kz_res_free(s->v[i]);
    core_free(s->v);
    s->v = NULL;
    s->len = s->cap = 0;
}

/* ------------------------------------------------------------------ object fields */

const char *eng_kz_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

const char *eng_kz_kind(const json_t *obj)
{
    const char *k = eng_kz_str(obj, "kind");
    return k ? k : "";
}

const char *eng_kz_name(const json_t *obj)
{
    const char *n = eng_kz_str(json_object_get(obj, "metadata"), "name");
    return n ? n : "";
}

const char *eng_kz_ns(const json_t *obj)
{
    const char *n = eng_kz_str(json_object_get(obj, "metadata"), "namespace");
    return n ? n : "";
}

void eng_kz_gv(const json_t *obj, char group[128], char version[64])
{
    const char *api = eng_kz_str(obj, "apiVersion");
    const char *slash = api ? strchr(api, '/') : NULL;
    group[0] = version[0] = '\0';
    if (!api)
        return;
    if (slash) {
        snprintf(group, 128, "%.*s", (int)(slash - api), api);
        snprintf(version, 64, "%s", slash + 1);
    } else {
        snprintf(version, 64, "%s", api);
    }
}

bool eng_kz_same_gvk(const json_t *a, const json_t *b)
{
    const char *va = eng_kz_str(a, "apiVersion"), *vb = eng_kz_str(b, "apiVersion");
    return strcmp(eng_kz_kind(a), eng_kz_kind(b)) == 0 && strcmp(va ? va : "", vb ? vb : "") == 0;
}

/* kustomize's built-in cluster-scoped kinds (kyaml/openapi), by group. */
static const char *const cluster_kinds[] = {
    "/Namespace",
    "/Node",
    "/PersistentVolume",
    "/ComponentStatus",
    "rbac.authorization.k8s.io/ClusterRole",
    "rbac.authorization.k8s.io/ClusterRoleBinding",
    "apiextensions.k8s.io/CustomResourceDefinition",
    "apiregistration.k8s.io/APIService",
    "admissionregistration.k8s.io/MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
    "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
    "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/MutatingAdmissionPolicy",
    "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding",
    "certificates.k8s.io/CertificateSigningRequest",
    "certificates.k8s.io/ClusterTrustBundle",
    "flowcontrol.apiserver.k8s.io/FlowSchema",
    "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
    "networking.k8s.io/IngressClass",
    "networking.k8s.io/IPAddress",
    "networking.k8s.io/ServiceCIDR",
    "node.k8s.io/RuntimeClass",
    "policy/PodSecurityPolicy",
    "scheduling.k8s.io/PriorityClass",
    "storage.k8s.io/CSIDriver",
    "storage.k8s.io/CSINode",
    "storage.k8s.io/StorageClass",
    "storage.k8s.io/VolumeAttachment",
    "storage.k8s.io/VolumeAttributesClass",
    "authentication.k8s.io/TokenReview",
    "authentication.k8s.io/SelfSubjectReview",
    "authorization.k8s.io/SubjectAccessReview",
    "authorization.k8s.io/SelfSubjectAccessReview",
    "authorization.k8s.io/SelfSubjectRulesReview",
    "resource.k8s.io/DeviceClass",
    "resource.k8s.io/ResourceSlice",
    NULL,
};

bool eng_kz_cluster_scoped(const json_t *obj)
{
    char group[128], version[64], gk[300];
    eng_kz_gv(obj, group, version);
    snprintf(gk, sizeof(gk), "%s/%s", group, eng_kz_kind(obj));
    for (size_t i = 0; cluster_kinds[i]; i++) {
        if (strcmp(cluster_kinds[i], gk) == 0)
            return true;
    }
    return false;
}

const char *eng_kz_effective_ns(const json_t *obj, const char *ns)
{
    if (eng_kz_cluster_scoped(obj))
        return "";
    return (ns && ns[0]) ? ns : "default";
}

void eng_kz_obj_id(const json_t *obj, char *out, size_t size)
{
    const char *ns = eng_kz_ns(obj);
    if (ns[0])
        snprintf(out, size, "%s/%s/%s", eng_kz_kind(obj), ns, eng_kz_name(obj));
    else
        snprintf(out, size, "%s/%s", eng_kz_kind(obj), eng_kz_name(obj));
}

json_t *eng_kz_meta_map(json_t *obj, const char *key, bool create)
{
    json_t *meta = json_object_get(obj, "metadata"), *m;
    if (!json_is_object(meta)) {
        if (!create || !(meta = json_object()) || json_object_set_new(obj, "metadata", meta) < 0)
            return NULL;
    }
    m = json_object_get(meta, key);
    if (json_is_object(m) || !create)
        return json_is_object(m) ? m : NULL;
    if (!(m = json_object()) || json_object_set_new(meta, key, m) < 0)
        return NULL;
    return m;
}

int eng_kz_set_meta(json_t *obj, const char *key, const char *value)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        if (!(meta = json_object()) || json_object_set_new(obj, "metadata", meta) < 0)
            return BERTH_ENOMEM;
    }
    return json_object_set_new(meta, key, json_string(value)) < 0 ? BERTH_ENOMEM : 0;
}

/* ------------------------------------------------------------------ ids and renames */

int eng_kz_record_prev(eng_kz_res *r)
{
    eng_kz_prev *grown = core_realloc(r->prev, (r->prev_len + 1) * sizeof(*grown));
    eng_kz_prev *p;
    if (!grown)
        return BERTH_ENOMEM;
    r->prev = grown;
    p = &r->prev[r->prev_len];
    p->name = core_strdup(eng_kz_name(r->obj));
    p->ns = core_strdup(eng_kz_ns(r->obj));
    if (!p->name || !p->ns) {
        core_free(p->name);
        core_free(p->ns);
        return BERTH_ENOMEM;
    }
    r->prev_len++;
    return 0;
}

int eng_kz_rename(eng_kz_res *r, const char *name)
{
    int rc;
    if (strcmp(name, eng_kz_name(r->obj)) == 0)
        return 0;
    if ((rc = eng_kz_record_prev(r)) < 0)
        return rc;
    return eng_kz_set_meta(r->obj, "name", name);
}

int eng_kz_renamespace(eng_kz_res *r, const char *ns)
{
    int rc;
    if (strcmp(ns, eng_kz_ns(r->obj)) == 0)
        return 0;
    if ((rc = eng_kz_record_prev(r)) < 0)
        return rc;
    return eng_kz_set_meta(r->obj, "namespace", ns);
}

const char *eng_kz_org_name(const eng_kz_res *r)
{
    return r->prev_len ? r->prev[0].name : eng_kz_name(r->obj);
}

const char *eng_kz_org_ns(const eng_kz_res *r)
{
    return r->prev_len ? r->prev[0].ns : eng_kz_ns(r->obj);
}

static bool id_is(const json_t *obj, const char *name, const char *ns, const char *want_name,
                  const char *want_ns)
{
    if (strcmp(name, want_name) != 0)
        return false;
    return !want_ns || strcmp(eng_kz_effective_ns(obj, ns), eng_kz_effective_ns(obj, want_ns)) == 0;
}

bool eng_kz_any_id(const eng_kz_res *r, const char *name, const char *ns)
{
    if (id_is(r->obj, eng_kz_name(r->obj), eng_kz_ns(r->obj), name, ns))
        return true;
    for (size_t i = 0; i < r->prev_len; i++) {
        if (id_is(r->obj, r->prev[i].name, r->prev[i].ns, name, ns))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ field paths */

static int walk(json_t *node, const char *path, bool create, eng_kz_visit_fn fn, void *arg)
{
    char seg[256];
    const char *slash;
    size_t n, i;
    json_t *child;
    int rc;
    if (json_is_array(node)) {
        json_array_foreach(node, i, child)
        {
            if ((rc = walk(child, path, create, fn, arg)) < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    slash = strchr(path, '/');
    n = slash ? (size_t)(slash - path) : strlen(path);
    if (n >= 2 && path[n - 2] == '[' && path[n - 1] == ']')
        n -= 2;
    if (n >= sizeof(seg))
        return 0;
    memcpy(seg, path, n);
    seg[n] = '\0';
    if (!slash)
        return (create || json_object_get(node, seg)) ? fn(node, seg, arg) : 0;
    child = json_object_get(node, seg);
    if (!child || json_is_null(child)) {
        if (!create)
            return 0;
        if (!(child = json_object()) || json_object_set_new(node, seg, child) < 0)
            return BERTH_ENOMEM;
    }
    return walk(child, slash + 1, create, fn, arg);
}

int eng_kz_walk(json_t *node, const char *path, bool create, eng_kz_visit_fn fn, void *arg)
{
    return walk(node, path, create, fn, arg);
}

/* ------------------------------------------------------------------ files */

const char *eng_kz_rel(const eng_kz_ctx *ctx, const char *abs)
{
    size_t n = strlen(ctx->root);
    if (strncmp(abs, ctx->root, n) != 0)
        return abs;
    if (abs[n] == '\0')
        return ".";
    return abs[n] == '/' ? abs + n + 1 : abs;
}

static bool is_remote(const char *p)
{
    static const char *const hosts[] = {"github.com/", "gitlab.com/", "bitbucket.org/",
                                        "git@",        "git::",       NULL};
    if (strstr(p, "://"))
        return true;
    for (size_t i = 0; hosts[i]; i++) {
        if (core_str_has_prefix(p, hosts[i]))
            return true;
    }
    return false;
}

bool eng_kz_inside_root(const eng_kz_ctx *ctx, const char *real)
{
    size_t n = strlen(ctx->root);
    return strncmp(real, ctx->root, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

int eng_kz_resolve(eng_kz_ctx *ctx, const eng_kz_file *f, const char *rel, char **abs_out)
{
    char *joined, *real;
    *abs_out = NULL;
    if (!rel[0])
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "empty path");
    if (is_remote(rel))
        return eng_kz_fail(ctx, f, BERTH_EUNSUPPORTED,
                           "remote resource \"%s\" is not supported (only local paths)", rel);
    if (rel[0] == '/')
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "absolute path \"%s\" is not allowed", rel);
    if (!(joined = core_sprintf("%s/%s", f->dir, rel)))
        return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
    real = realpath(joined, NULL);
    core_free(joined);
    if (!real)
        return eng_kz_fail(ctx, f, errno == ENOMEM ? BERTH_ENOMEM : BERTH_ENOTFOUND,
                           "\"%s\" not found", rel);
    if (!eng_kz_inside_root(ctx, real)) {
        free(real);
        return eng_kz_fail(ctx, f, BERTH_EDENIED, "\"%s\" is outside the artifact root", rel);
    }
    *abs_out = core_strdup(real);
    free(real);
    return *abs_out ? 0 : core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
}

int eng_kz_read(eng_kz_ctx *ctx, const char *abs, size_t max, berth_buf *out)
{
    berth_buf_init(out, 0);
    if (core_fs_read_file(out, abs, max, ctx->err) < 0)
        return core_error_wrap(ctx->err, "reading \"%s\"", eng_kz_rel(ctx, abs));
    return 0;
}

/* ------------------------------------------------------------------ kustomization values */

int eng_kz_check_keys(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *where,
                      const char *const *allowed)
{
    const char *key;
    const json_t *val;
    if (!json_is_object(obj))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s must be a mapping", where);
    json_object_foreach((json_t *)(uintptr_t)obj, key, val)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            return eng_kz_fail(ctx, f, BERTH_EUNSUPPORTED, "%s: field \"%s\" is not supported",
                               where, key);
    }
    return 0;
}

int eng_kz_get_string(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                      const char *where, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s must be a string", where, key);
    *out = json_string_value(v);
    return 0;
}

/* sigs.k8s.io/yaml reads kustomization booleans with YAML 1.1: yes/no/on/off count too. */
int eng_kz_get_bool(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                    const char *where, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "y",  "Y",  "yes",
                                      "Yes",  "YES",  "on",   "On", "ON", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "n",   "N",   "no",
                                     "No",    "NO",    "off",   "Off", "OFF", NULL};
    const json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);
    *out = false;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    for (size_t i = 0; s && yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s must be true or false", where, key);
}

int eng_kz_get_list(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                    const char *where, const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s must be a list", where, key);
    *out = v;
    return 0;
}

int eng_kz_get_string_map(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                          const char *where, const json_t **out)
{
    const json_t *v = json_object_get(obj, key), *val;
    const char *k;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s must be a mapping", where, key);
    json_object_foreach((json_t *)(uintptr_t)v, k, val)
    {
        if (!json_is_string(val))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.%s: value of \"%s\" must be a string",
                               where, key, k);
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ selectors */

static int compile_anchored(eng_kz_ctx *ctx, const eng_kz_file *f, const char *where,
                            const char *pattern, berth_regex **out)
{
    char *anchored;
    int rc;
    *out = NULL;
    if (!pattern || !pattern[0])
        return 0;
    if (!(anchored = core_sprintf("^(?:%s)$", pattern)))
        return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
    rc = berth_regex_compile(out, anchored, ctx->err);
    core_free(anchored);
    if (rc < 0)
        return eng_kz_wrap(ctx, f, "%s", where);
    return 0;
}

int eng_kz_selector_parse(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *target,
                          const char *where, eng_kz_selector *out)
{
    static const char *const keys[] = {
        "group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector",
        NULL};
    const char *v[7];
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = eng_kz_check_keys(ctx, f, target, where, keys)) < 0)
        return rc;
    for (size_t i = 0; i < 7; i++) {
        if ((rc = eng_kz_get_string(ctx, f, target, keys[i], where, &v[i])) < 0)
            return rc;
    }
    if ((rc = compile_anchored(ctx, f, where, v[0], &out->group)) < 0 ||
        (rc = compile_anchored(ctx, f, where, v[1], &out->version)) < 0 ||
        (rc = compile_anchored(ctx, f, where, v[2], &out->kind)) < 0 ||
        (rc = compile_anchored(ctx, f, where, v[3], &out->name)) < 0 ||
        (rc = compile_anchored(ctx, f, where, v[4], &out->ns)) < 0) {
        eng_kz_selector_dispose(out);
        return rc;
    }
    out->labels = v[5];
    out->annotations = v[6];
    return 0;
}

void eng_kz_selector_dispose(eng_kz_selector *sel)
{
    if (!sel)
        return;
    berth_regex_free(sel->group);
    berth_regex_free(sel->version);
    berth_regex_free(sel->kind);
    berth_regex_free(sel->name);
    berth_regex_free(sel->ns);
    memset(sel, 0, sizeof(*sel));
}

/* re matches a or b (either may be NULL); a NULL re matches anything. */
static int match_either(eng_kz_ctx *ctx, const berth_regex *re, const char *a, const char *b,
                        bool *out)
{
    int rc;
    *out = true;
    if (!re)
        return 0;
    if ((rc = berth_regex_match(out, re, a, ctx->err)) < 0 || *out || !b)
        return rc;
    return berth_regex_match(out, re, b, ctx->err);
}

static int match_gvk(eng_kz_ctx *ctx, const eng_kz_selector *sel, const json_t *obj, bool *out)
{
    char group[128], version[64];
    int rc;
    eng_kz_gv(obj, group, version);
    if ((rc = match_either(ctx, sel->group, group, NULL, out)) < 0 || !*out)
        return rc;
    if ((rc = match_either(ctx, sel->version, version, NULL, out)) < 0 || !*out)
        return rc;
    return match_either(ctx, sel->kind, eng_kz_kind(obj), NULL, out);
}

int eng_kz_selector_match(eng_kz_ctx *ctx, const eng_kz_selector *sel, const eng_kz_res *r,
                          bool *out)
{
    const json_t *obj = r->obj;
    int rc;
    if ((rc = match_either(ctx, sel->ns, eng_kz_effective_ns(obj, eng_kz_org_ns(r)),
                           eng_kz_effective_ns(obj, eng_kz_ns(obj)), out)) < 0 ||
        !*out)
        return rc;
    if ((rc = match_either(ctx, sel->name, eng_kz_org_name(r), eng_kz_name(obj), out)) < 0 || !*out)
        return rc;
    if ((rc = match_gvk(ctx, sel, obj, out)) < 0 || !*out)
        return rc;
    if (sel->labels &&
        ((rc = eng_kz_label_selector_match(
              sel->labels, eng_kz_meta_map((json_t *)(uintptr_t)obj, "labels", false), out,
              ctx->err)) < 0 ||
         !*out))
        return rc;
    if (sel->annotations)
        return eng_kz_label_selector_match(
            sel->annotations, eng_kz_meta_map((json_t *)(uintptr_t)obj, "annotations", false), out,
            ctx->err);
    return 0;
}

/* ------------------------------------------------------------------ label selectors */

typedef struct lsel_req {
    char key[256];
    char op; /* '=' equal, '!' not equal, 'i' in, 'n' notin, 'e' exists, 'x' does not exist */
    char values[512]; /* comma-separated for in/notin */
} lsel_req;

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static bool copy_tok(char *dst, size_t size, const char *s, size_t n)
{
    trim(&s, &n);
    if (n == 0 || n >= size)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* "k in (a,b)" / "k notin (a,b)": the word after the key, then a parenthesised list. */
static bool parse_set_req(lsel_req *q, const char *s, size_t n)
{
    const char *sp = memchr(s, ' ', n), *open = memchr(s, '(', n);
    const char *word;
    size_t wn;
    if (!sp || !open || s[n - 1] != ')' || open < sp ||
        !copy_tok(q->key, sizeof(q->key), s, (size_t)(sp - s)))
        return false;
    word = sp;
    wn = (size_t)(open - sp);
    trim(&word, &wn);
    if (wn == 2 && memcmp(word, "in", 2) == 0)
        q->op = 'i';
    else if (wn == 5 && memcmp(word, "notin", 5) == 0)
        q->op = 'n';
    else
        return false;
    return copy_tok(q->values, sizeof(q->values), open + 1, (size_t)(s + n - 1 - open - 1));
}

static bool parse_req(lsel_req *q, const char *s, size_t n)
{
    const char *eq, *key_end, *val, *end;
    trim(&s, &n);
    memset(q, 0, sizeof(*q));
    if (n == 0)
        return false;
    if (s[n - 1] == ')')
        return parse_set_req(q, s, n);
    if (s[0] == '!') {
        q->op = 'x';
        return copy_tok(q->key, sizeof(q->key), s + 1, n - 1);
    }
    if (!(eq = memchr(s, '=', n))) {
        q->op = 'e';
        return copy_tok(q->key, sizeof(q->key), s, n);
    }
    end = s + n;
    q->op = (eq > s && eq[-1] == '!') ? '!' : '=';
    key_end = q->op == '!' ? eq - 1 : eq;
    val = (q->op == '=' && eq + 1 < end && eq[1] == '=') ? eq + 2 : eq + 1;
    if (!copy_tok(q->key, sizeof(q->key), s, (size_t)(key_end - s)))
        return false;
    return copy_tok(q->values, sizeof(q->values), val, (size_t)(end - val)) || val == end;
}

static bool in_list(const char *list, const char *v)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &n);
        if (n == strlen(v) && memcmp(item, v, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static bool req_matches(const lsel_req *q, const json_t *labels)
{
    const char *v = json_string_value(json_object_get(labels, q->key));
    switch (q->op) {
    case 'e':
        return v != NULL;
    case 'x':
        return v == NULL;
    case '=':
        return v && strcmp(v, q->values) == 0;
    case '!':
        return !v || strcmp(v, q->values) != 0;
    case 'i':
        return v && in_list(q->values, v);
    default:
        return !v || !in_list(q->values, v);
    }
}

/* Length of the next requirement: up to a comma outside parentheses. */
static size_t req_len(const char *s)
{
    int depth = 0;
    size_t i;
    for (i = 0; s[i]; i++) {
        if (s[i] == '(')
            depth++;
        else if (s[i] == ')')
            depth--;
        else if (s[i] == ',' && depth == 0)
            break;
    }
    return i;
}

int eng_kz_label_selector_match(const char *selector, const json_t *labels, bool *out,
                                berth_error **err)
{
    const char *p = selector;
    lsel_req q;
    *out = true;
    while (*p) {
        size_t n = req_len(p);
        if (!parse_req(&q, p, n))
            return core_error_set(err, BERTH_EINVAL, "invalid label selector \"%s\"", selector);
        if (!req_matches(&q, labels))
            *out = false;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}
