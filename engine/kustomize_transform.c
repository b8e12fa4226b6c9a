/*
 * The field transformers of one kustomization level (spec/engine.md §2.3 P2-P7): namespace,
 * namePrefix/nameSuffix, labels and commonLabels, commonAnnotations, replicas and images.
 *
 * Design: where kustomize drives a transformer by field specs (kind, optional group/version,
 * path, create), the same tables are kept here (api/internal/konfig/builtinpluginconsts) and
 * applied with eng_kz_walk. Renames go through eng_kz_rename/eng_kz_renamespace so patches and
 * name references can still find a resource by its earlier ids. The image transformer is
 * kustomize's legacy filter (every `image` in a list named containers or initContainers,
 * anywhere but in CRDs) followed by its `images` field specs (pod containers and volume
 * images), so a tagSuffix reaches pod-template containers twice, as it does in kustomize.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/kustomize_internal.h"

typedef struct fieldspec {
    const char *group;   /* NULL: any group */
    const char *version; /* NULL: any version */
    const char *kind;    /* NULL: any kind */
    const char *path;
    bool create;
} fieldspec;

#define FS_END                                                                                     \
    {                                                                                              \
        NULL, NULL, NULL, NULL, false                                                              \
    }
#define AFFINITY "spec/template/spec/affinity/"
#define MATCH_LABELS "labelSelector/matchLabels"

/* metadataLabelsFieldSpecs: metadata and pod-template labels. */
#define TEMPLATE_LABELS                                                                            \
    {NULL, NULL, NULL, "metadata/labels", true},                                                   \
        {NULL, "v1", "ReplicationController", "spec/template/metadata/labels", true},              \
        {NULL, NULL, "Deployment", "spec/template/metadata/labels", true},                         \
        {NULL, NULL, "ReplicaSet", "spec/template/metadata/labels", true},                         \
        {NULL, NULL, "DaemonSet", "spec/template/metadata/labels", true},                          \
        {"apps", NULL, "StatefulSet", "spec/template/metadata/labels", true},                      \
        {"batch", NULL, "Job", "spec/template/metadata/labels", true},                             \
        {"batch", NULL, "CronJob", "spec/jobTemplate/metadata/labels", true},                      \
    {                                                                                              \
        "batch", NULL, "CronJob", "spec/jobTemplate/spec/template/metadata/labels", true           \
    }

#define VCT_LABELS                                                                                 \
    {                                                                                              \
        "apps", NULL, "StatefulSet", "spec/volumeClaimTemplates[]/metadata/labels", true           \
    }

#define AFFINITY_SELECTORS(kind)                                                                   \
    {"apps", NULL, kind,                                                                           \
     AFFINITY                                                                                      \
     "podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/" MATCH_LABELS,  \
     false},                                                                                       \
        {"apps", NULL, kind,                                                                       \
         AFFINITY "podAffinity/requiredDuringSchedulingIgnoredDuringExecution/" MATCH_LABELS,      \
         false},                                                                                   \
        {"apps", NULL, kind,                                                                       \
         AFFINITY "podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/"               \
                  "podAffinityTerm/" MATCH_LABELS,                                                 \
         false},                                                                                   \
        {"apps", NULL, kind,                                                                       \
         AFFINITY "podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/" MATCH_LABELS,  \
         false},                                                                                   \
    {                                                                                              \
        "apps", NULL, kind, "spec/template/spec/topologySpreadConstraints/" MATCH_LABELS, false    \
    }

/* commonLabelFieldSpecs: selectors too (kustomize commonlabels.go). */
static const fieldspec common_labels[] = {
    {NULL, "v1", "Service", "spec/selector", true},
    {NULL, "v1", "ReplicationController", "spec/selector", true},
    {NULL, NULL, "Deployment", "spec/selector/matchLabels", true},
    AFFINITY_SELECTORS("Deployment"),
    {NULL, NULL, "ReplicaSet", "spec/selector/matchLabels", true},
    {NULL, NULL, "DaemonSet", "spec/selector/matchLabels", true},
    {"apps", NULL, "StatefulSet", "spec/selector/matchLabels", true},
    AFFINITY_SELECTORS("StatefulSet"),
    {"batch", NULL, "Job", "spec/selector/matchLabels", false},
    {"batch", NULL, "CronJob", "spec/jobTemplate/spec/selector/matchLabels", false},
    {"policy", NULL, "PodDisruptionBudget", "spec/selector/matchLabels", false},
    {"networking.k8s.io", NULL, "NetworkPolicy", "spec/podSelector/matchLabels", false},
    {"networking.k8s.io", NULL, "NetworkPolicy", "spec/ingress/from/podSelector/matchLabels",
     false},
    {"networking.k8s.io", NULL, "NetworkPolicy", "spec/egress/to/podSelector/matchLabels", false},
    TEMPLATE_LABELS,
    VCT_LABELS,
    FS_END,
};

static const fieldspec template_labels[] = {TEMPLATE_LABELS, FS_END};
static const fieldspec vct_labels[] = {VCT_LABELS, FS_END};
static const fieldspec metadata_labels[] = {{NULL, NULL, NULL, "metadata/labels", true}, FS_END};

static const fieldspec common_annotations[] = {
    {NULL, NULL, NULL, "metadata/annotations", true},
    {NULL, "v1", "ReplicationController", "spec/template/metadata/annotations", true},
    {NULL, NULL, "Deployment", "spec/template/metadata/annotations", true},
    {NULL, NULL, "ReplicaSet", "spec/template/metadata/annotations", true},
    {NULL, NULL, "DaemonSet", "spec/template/metadata/annotations", true},
    {NULL, NULL, "StatefulSet", "spec/template/metadata/annotations", true},
    {"batch", NULL, "Job", "spec/template/metadata/annotations", true},
    {"batch", NULL, "CronJob", "spec/jobTemplate/metadata/annotations", true},
    {"batch", NULL, "CronJob", "spec/jobTemplate/spec/template/metadata/annotations", true},
    FS_END,
};

static const char *const replica_kinds[] = {"Deployment", "ReplicationController", "ReplicaSet",
                                            "StatefulSet", NULL};

static int nomem(eng_kz_ctx *ctx)
{
    return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
}

static bool spec_selects(const fieldspec *fs, const json_t *obj)
{
    char group[128], version[64];
    eng_kz_gv(obj, group, version);
    return (!fs->group || strcmp(fs->group, group) == 0) &&
           (!fs->version || strcmp(fs->version, version) == 0) &&
           (!fs->kind || strcmp(fs->kind, eng_kz_kind(obj)) == 0);
}

/* ------------------------------------------------------------------ maps at field specs */

/* parent[key] is a string map: add every pair of arg (an object of strings). */
static int visit_set_map(json_t *parent, const char *key, void *arg)
{
    const json_t *pairs = arg, *v;
    json_t *m = json_object_get(parent, key);
    const char *k;
    if (!m || json_is_null(m)) {
        if (!(m = json_object()) || json_object_set_new(parent, key, m) < 0)
            return BERTH_ENOMEM;
    }
    if (!json_is_object(m))
        return 0;
    json_object_foreach((json_t *)(uintptr_t)pairs, k, v)
    {
        if (json_object_set(m, k, (json_t *)(uintptr_t)v) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int set_maps(eng_kz_ctx *ctx, eng_kz_set *set, const fieldspec *specs, const json_t *pairs)
{
    for (size_t i = 0; i < set->len; i++) {
        for (const fieldspec *fs = specs; fs->path; fs++) {
            if (spec_selects(fs, set->v[i]->obj) &&
                eng_kz_walk(set->v[i]->obj, fs->path, fs->create, visit_set_map,
                            (void *)(uintptr_t)pairs) < 0)
                return nomem(ctx);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ namespace */

static int visit_set_string(json_t *parent, const char *key, void *arg)
{
    return json_object_set_new(parent, key, json_string(arg)) < 0 ? BERTH_ENOMEM : 0;
}

/* (Cluster)RoleBinding subjects named "default" get the namespace (mode defaultOnly). */
static int subjects_named_default(json_t *obj, const char *ns)
{
    json_t *subjects = json_object_get(obj, "subjects"), *s;
    size_t i;
    json_array_foreach(subjects, i, s)
    {
        const char *name = eng_kz_str(s, "name");
        if (json_is_object(s) && name && strcmp(name, "default") == 0 &&
            json_object_set_new(s, "namespace", json_string(ns)) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int namespace_one(eng_kz_res *r, const char *ns)
{
    static const fieldspec extra[] = {
        {"apiregistration.k8s.io", NULL, "APIService", "spec/service/namespace", true},
        {"apiextensions.k8s.io", NULL, "CustomResourceDefinition",
         "spec/conversion/webhook/clientConfig/service/namespace", false},
        FS_END,
    };
    const char *kind = eng_kz_kind(r->obj);
    const char *api = eng_kz_str(r->obj, "apiVersion");
    int rc;
    if (!eng_kz_cluster_scoped(r->obj) && (rc = eng_kz_renamespace(r, ns)) < 0)
        return rc;
    if (strcmp(kind, "Namespace") == 0 && api && strcmp(api, "v1") == 0 &&
        (rc = eng_kz_rename(r, ns)) < 0)
        return rc;
    if ((strcmp(kind, "RoleBinding") == 0 || strcmp(kind, "ClusterRoleBinding") == 0) &&
        (rc = subjects_named_default(r->obj, ns)) < 0)
        return rc;
    for (const fieldspec *fs = extra; fs->path; fs++) {
        if (spec_selects(fs, r->obj) &&
            (rc = eng_kz_walk(r->obj, fs->path, fs->create, visit_set_string,
                              (void *)(uintptr_t)ns)) < 0)
            return rc;
    }
    return 0;
}

int eng_kz_run_namespace(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const char *ns = NULL;
    int rc;
    if ((rc = eng_kz_get_string(ctx, f, f->k, "namespace", "kustomization", &ns)) < 0)
        return rc;
    if (!ns || !ns[0])
        return 0;
    for (size_t i = 0; i < set->len; i++) {
        if (namespace_one(set->v[i], ns) < 0)
            return nomem(ctx);
    }
    return 0;
}

/* ------------------------------------------------------------------ prefix and suffix */

static bool keeps_name(const json_t *obj)
{
    const char *kind = eng_kz_kind(obj);
    return strcmp(kind, "CustomResourceDefinition") == 0 || strcmp(kind, "Namespace") == 0 ||
           strcmp(kind, "APIService") == 0;
}

static int note_affix(eng_kz_res *r, char mark, const char *affix)
{
    char *s = core_sprintf("%s%c%s%c", r->affixes ? r->affixes : "", mark, affix, mark);
    if (!s)
        return BERTH_ENOMEM;
    if (strlen(s) > ENG_KZ_AFFIX_MAX) {
        core_free(s);
        return 0;
    }
    core_free(r->affixes);
    r->affixes = s;
    return 0;
}

static int affix_one(eng_kz_res *r, const char *prefix, const char *suffix)
{
    char *name;
    int rc;
    if (keeps_name(r->obj))
        return 0;
    if (!(name = core_sprintf("%s%s%s", prefix, eng_kz_name(r->obj), suffix)))
        return BERTH_ENOMEM;
    rc = eng_kz_rename(r, name);
    core_free(name);
    if (rc == 0 && prefix[0])
        rc = note_affix(r, '<', prefix);
    if (rc == 0 && suffix[0])
        rc = note_affix(r, '>', suffix);
    return rc;
}

int eng_kz_run_affixes(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const char *prefix = NULL, *suffix = NULL;
    int rc;
    if ((rc = eng_kz_get_string(ctx, f, f->k, "namePrefix", "kustomization", &prefix)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, f->k, "nameSuffix", "kustomization", &suffix)) < 0)
        return rc;
    if ((!prefix || !prefix[0]) && (!suffix || !suffix[0]))
        return 0;
    for (size_t i = 0; i < set->len; i++) {
        if (affix_one(set->v[i], prefix ? prefix : "", suffix ? suffix : "") < 0)
            return nomem(ctx);
    }
    return 0;
}

/* ------------------------------------------------------------------ labels, annotations */

static int one_label_entry(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const json_t *e,
                           const char *where)
{
    static const char *const keys[] = {"pairs", "includeSelectors", "includeTemplates",
                                       "includeVolumeClaimTemplates", NULL};
    const json_t *pairs;
    bool selectors, templates, vcts;
    int rc;
    if ((rc = eng_kz_check_keys(ctx, f, e, where, keys)) < 0 ||
        (rc = eng_kz_get_string_map(ctx, f, e, "pairs", where, &pairs)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, e, "includeSelectors", where, &selectors)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, e, "includeTemplates", where, &templates)) < 0 ||
        (rc = eng_kz_get_bool(ctx, f, e, "includeVolumeClaimTemplates", where, &vcts)) < 0)
        return rc;
    if (!pairs)
        return 0;
    if (selectors)
        return set_maps(ctx, set, common_labels, pairs);
    if (templates && (rc = set_maps(ctx, set, template_labels, pairs)) < 0)
        return rc;
    if (vcts && (rc = set_maps(ctx, set, vct_labels, pairs)) < 0)
        return rc;
    return set_maps(ctx, set, metadata_labels, pairs);
}

/* `labels` entries first, then commonLabels (kusttarget_configplugin.go). */
int eng_kz_run_labels(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *list, *e, *common;
    char where[48];
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, "labels", "kustomization", &list)) < 0 ||
        (rc = eng_kz_get_string_map(ctx, f, f->k, "commonLabels", "kustomization", &common)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        snprintf(where, sizeof(where), "labels[%zu]", i);
        if ((rc = one_label_entry(ctx, f, set, e, where)) < 0)
            return rc;
    }
    return common ? set_maps(ctx, set, common_labels, common) : 0;
}

int eng_kz_run_annotations(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *ann;
    int rc;
    if ((rc = eng_kz_get_string_map(ctx, f, f->k, "commonAnnotations", "kustomization", &ann)) < 0)
        return rc;
    return ann ? set_maps(ctx, set, common_annotations, ann) : 0;
}

/* ------------------------------------------------------------------ replicas */

static int parse_count(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *e, const char *where,
                       json_int_t *out)
{
    const json_t *c = json_object_get(e, "count");
    const char *s = json_string_value(c);
    char *end = NULL;
    long long v;
    if (json_is_integer(c)) {
        *out = json_integer_value(c);
        return 0;
    }
    if (s)
        v = strtoll(s, &end, 10);
    if (!s || !s[0] || *end || v < 0)
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s.count must be a non-negative integer", where);
    *out = v;
    return 0;
}

static bool is_replica_kind(const json_t *obj)
{
    for (size_t i = 0; replica_kinds[i]; i++) {
        if (strcmp(replica_kinds[i], eng_kz_kind(obj)) == 0)
            return true;
    }
    return false;
}

static int one_replica(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set, const json_t *e,
                       const char *where)
{
    static const char *const keys[] = {"name", "count", NULL};
    const char *name = NULL;
    json_int_t count = 0;
    bool found = false;
    int rc;
    if ((rc = eng_kz_check_keys(ctx, f, e, where, keys)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "name", where, &name)) < 0 ||
        (rc = parse_count(ctx, f, e, where, &count)) < 0)
        return rc;
    for (size_t i = 0; name && i < set->len; i++) {
        json_t *spec;
        if (!is_replica_kind(set->v[i]->obj) || !eng_kz_any_id(set->v[i], name, NULL))
            continue;
        found = true;
        spec = json_object_get(set->v[i]->obj, "spec");
        if (!json_is_object(spec) &&
            (!(spec = json_object()) || json_object_set_new(set->v[i]->obj, "spec", spec) < 0))
            return nomem(ctx);
        if (json_object_set_new(spec, "replicas", json_integer(count)) < 0)
            return nomem(ctx);
    }
    if (!found)
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "%s: resource with name \"%s\" does not match a config with the "
                           "following GVK [Deployment.[noVer].[noGrp] "
                           "ReplicationController.[noVer].[noGrp] ReplicaSet.[noVer].[noGrp] "
                           "StatefulSet.[noVer].[noGrp]]",
                           where, name ? name : "");
    return 0;
}

int eng_kz_run_replicas(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *list, *e;
    char where[48];
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, "replicas", "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        snprintf(where, sizeof(where), "replicas[%zu]", i);
        if ((rc = one_replica(ctx, f, set, e, where)) < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ images */

typedef struct image_rule {
    berth_regex *re; /* NULL: the name is not a valid pattern, matches nothing */
    const char *new_name, *new_tag, *digest, *tag_suffix;
    eng_kz_ctx *ctx;
} image_rule;

/* kustomize image.Split: the ':' search starts at the first '/' (host:port is safe). */
static void split_image(const char *v, size_t *name_len, const char **tag, size_t *tag_len,
                        const char **digest)
{
    const char *slash = strchr(v, '/');
    const char *search = (slash && slash != v) ? slash : v;
    const char *at = strchr(search, '@'), *colon = strchr(search, ':');
    *tag = "";
    *tag_len = 0;
    *digest = "";
    if (!at && !colon) {
        *name_len = strlen(v);
    } else if (at && (!colon || at < colon)) {
        *name_len = (size_t)(at - v);
        *digest = at + 1;
    } else {
        *name_len = (size_t)(colon - v);
        *tag = colon + 1;
        *tag_len = at ? (size_t)(at - colon - 1) : strlen(colon + 1);
        *digest = at ? at + 1 : "";
    }
}

static char *new_image(const image_rule *ir, const char *v)
{
    size_t name_len, tag_len;
    const char *tag, *digest, *suffix = "";
    char *out;
    split_image(v, &name_len, &tag, &tag_len, &digest);
    if (ir->new_tag && ir->digest) {
        tag = ir->new_tag, tag_len = strlen(tag), digest = ir->digest;
    } else if (ir->new_tag) {
        tag = ir->new_tag, tag_len = strlen(tag), digest = "";
    } else if (ir->digest) {
        tag = "", tag_len = 0, digest = ir->digest;
    } else if (ir->tag_suffix) {
        suffix = ir->tag_suffix, digest = "";
    }
    out = core_sprintf("%.*s%s%.*s%s%s%s", (int)(ir->new_name ? strlen(ir->new_name) : name_len),
                       ir->new_name ? ir->new_name : v, (tag_len || suffix[0]) ? ":" : "",
                       (int)tag_len, tag, suffix, digest[0] ? "@" : "", digest);
    return out;
}

static int visit_image(json_t *parent, const char *key, void *arg)
{
    const image_rule *ir = arg;
    const char *v = eng_kz_str(parent, key);
    bool match = false;
    char *updated;
    int rc;
    if (!v || !ir->re)
        return 0;
    if ((rc = berth_regex_match(&match, ir->re, v, ir->ctx->err)) < 0 || !match)
        return rc;
    if (!(updated = new_image(ir, v)))
        return BERTH_ENOMEM;
    rc = json_object_set_new(parent, key, json_string(updated)) < 0 ? BERTH_ENOMEM : 0;
    core_free(updated);
    return rc;
}

/* Every `image` in a list named containers or initContainers, at any depth. */
static int legacy_images(json_t *node, const image_rule *ir, int depth)
{
    const char *key;
    json_t *v, *e;
    size_t i;
    int rc;
    if (depth > 200)
        return 0;
    if (json_is_array(node)) {
        json_array_foreach(node, i, e)
        {
            if ((rc = legacy_images(e, ir, depth + 1)) < 0)
                return rc;
        }
        return 0;
    }
    json_object_foreach(node, key, v)
    {
        if ((rc = legacy_images(v, ir, depth + 1)) < 0)
            return rc;
        if (strcmp(key, "containers") != 0 && strcmp(key, "initContainers") != 0)
            continue;
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e) && (rc = visit_image(e, "image", (void *)(uintptr_t)ir)) < 0)
                return rc;
        }
    }
    return 0;
}

/* The legacy filter, then kustomize's `images` field specs (both run, as in kustomize). */
static int image_one(json_t *obj, const image_rule *ir)
{
    static const char *const paths[] = {
        "spec/containers[]/image",
        "spec/initContainers[]/image",
        "spec/volumes[]/image/reference",
        "spec/template/spec/containers[]/image",
        "spec/template/spec/initContainers[]/image",
        "spec/template/spec/volumes[]/image/reference",
        NULL,
    };
    int rc;
    if (strcmp(eng_kz_kind(obj), "CustomResourceDefinition") == 0)
        return 0;
    if ((rc = legacy_images(obj, ir, 0)) < 0)
        return rc;
    for (size_t i = 0; paths[i]; i++) {
        if ((rc = eng_kz_walk(obj, paths[i], false, visit_image, (void *)(uintptr_t)ir)) < 0)
            return rc;
    }
    return 0;
}

static int read_image_rule(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *e,
                           const char *where, const char **name, image_rule *ir)
{
    static const char *const keys[] = {"name", "newName", "newTag", "digest", "tagSuffix", NULL};
    int rc;
    memset(ir, 0, sizeof(*ir));
    ir->ctx = ctx;
    if ((rc = eng_kz_check_keys(ctx, f, e, where, keys)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "name", where, name)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "newName", where, &ir->new_name)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "newTag", where, &ir->new_tag)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "digest", where, &ir->digest)) < 0 ||
        (rc = eng_kz_get_string(ctx, f, e, "tagSuffix", where, &ir->tag_suffix)) < 0)
        return rc;
    if (!*name || !(*name)[0])
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s: name is required", where);
    ir->new_name = (ir->new_name && ir->new_name[0]) ? ir->new_name : NULL;
    ir->new_tag = (ir->new_tag && ir->new_tag[0]) ? ir->new_tag : NULL;
    ir->digest = (ir->digest && ir->digest[0]) ? ir->digest : NULL;
    ir->tag_suffix = (ir->tag_suffix && ir->tag_suffix[0]) ? ir->tag_suffix : NULL;
    return 0;
}

/* An invalid pattern matches nothing (kustomize image.IsImageMatched). */
static int compile_image_pattern(eng_kz_ctx *ctx, const char *name, berth_regex **out)
{
    char *pattern = core_sprintf("^%s(:[a-zA-Z0-9_.{}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:"
                                 "[a-zA-Z0-9_.{}-]*)?$",
                                 name);
    berth_error *ignored = NULL;
    int rc;
    *out = NULL;
    if (!pattern)
        return nomem(ctx);
    rc = berth_regex_compile(out, pattern, &ignored);
    core_free(pattern);
    berth_error_free(ignored); /* not a pattern: the rule matches nothing, as in kustomize */
    return rc == BERTH_ENOMEM ? nomem(ctx) : 0;
}

int eng_kz_run_images(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *list, *e;
    char where[48];
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, "images", "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        image_rule ir;
        const char *name = NULL;
        snprintf(where, sizeof(where), "images[%zu]", i);
        if ((rc = read_image_rule(ctx, f, e, where, &name, &ir)) < 0 ||
            (rc = compile_image_pattern(ctx, name, &ir.re)) < 0)
            return rc;
        for (size_t k = 0; k < set->len && rc == 0; k++)
            rc = image_one(set->v[k]->obj, &ir);
        berth_regex_free(ir.re);
        if (rc < 0)
            return rc == BERTH_ENOMEM ? nomem(ctx) : eng_kz_wrap(ctx, f, "%s", where);
    }
    return 0;
}
