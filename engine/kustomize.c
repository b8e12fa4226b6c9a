/*
 * The build stage entry point (engine/build.h): find or generate the root kustomization,
 * overlay the Kustomization spec onto it as Flux does, build it recursively with the kustomize
 * subset, then substitute and set commonMetadata. spec/engine.md §2.1 and §2.2.
 *
 * Design: one kustomization level is built by build_level() in kustomize's order (v5
 * kusttarget.go accumulateTarget): resources (files, or directories built fully on their own
 * first), generators, components (which work on the accumulated set itself), then this level's
 * transformers in the fixed order patchesStrategicMerge, patches, namespace, namePrefix and
 * nameSuffix, labels/commonLabels, commonAnnotations, patchesJson6902, replicas, images.
 * Content-hash suffixes, name-reference fixes and dropping local-config objects happen once, at
 * the top. The steps live in kustomize_gen.c, kustomize_patch.c, kustomize_transform.c and
 * kustomize_nameref.c. Every field outside the subset is refused with BERTH_EUNSUPPORTED. The
 * only I/O is reading files under the artifact root. Thread-safe.
 */
#define _XOPEN_SOURCE 700 /* realpath(3) is XSI */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/kustomize_internal.h"

static const char *const kfile_names[] = {"kustomization.yaml", "kustomization.yml",
                                          "Kustomization", NULL};

static const char *const supported_fields[] = {
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    NULL,
};

/* Known kustomize fields berth does not implement (spec/engine.md §2.3, lower priority). */
static const char *const unsupported_fields[] = {
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "replacements",
    "vars",
    "crds",
    "openapi",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "inventory",
    "buildMetadata",
    "sortOptions",
    "imageTags",
    NULL,
};

typedef int (*step_fn)(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);

static const step_fn transformers[] = {
    eng_kz_run_patches_sm,       eng_kz_run_patches,  eng_kz_run_namespace,
    eng_kz_run_affixes,          eng_kz_run_labels,   eng_kz_run_annotations,
    eng_kz_run_patches_json6902, eng_kz_run_replicas, eng_kz_run_images,
};

static int build_dir(eng_kz_ctx *ctx, const eng_kz_file *parent, const char *dir, bool component,
                     eng_kz_set *set);

static int nomem(eng_kz_ctx *ctx)
{
    return core_error_set(ctx->err, BERTH_ENOMEM, "out of memory");
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ kustomization files */

/* The kustomization file in dir: *path_out is heap, NULL when there is none. */
static int find_kfile(eng_kz_ctx *ctx, const char *dir, char **path_out)
{
    struct stat st;
    char *found = NULL;
    *path_out = NULL;
    for (size_t i = 0; kfile_names[i]; i++) {
        char *p = core_sprintf("%s/%s", dir, kfile_names[i]);
        if (!p)
            return nomem(ctx);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            core_free(p);
            continue;
        }
        if (found) {
            core_free(p);
            core_free(found);
            return core_error_set(ctx->err, BERTH_EINVAL,
                                  "found multiple kustomization files in \"%s\"",
                                  eng_kz_rel(ctx, dir));
        }
        found = p;
    }
    *path_out = found;
    return 0;
}

static int load_kfile(eng_kz_ctx *ctx, const char *path, json_t **out)
{
    berth_buf b;
    json_t *docs = NULL;
    const char *rel = eng_kz_rel(ctx, path);
    int rc;
    *out = NULL;
    if ((rc = eng_kz_read(ctx, path, ENG_KZ_KFILE_MAX_BYTES, &b)) < 0)
        return rc;
    rc = eng_yaml_parse(&docs, b.ptr, b.len, ENG_YAML_TEXT_SCALARS, rel, ctx->err);
    berth_buf_dispose(&b);
    if (rc < 0)
        return rc;
    if (json_array_size(docs) != 1 || !json_is_object(json_array_get(docs, 0))) {
        json_decref(docs);
        return core_error_set(ctx->err, BERTH_EINVAL,
                              "kustomization \"%s\": must hold exactly one mapping", rel);
    }
    *out = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return 0;
}

/* ------------------------------------------------------------------ generated kustomization */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(names[i]);
    core_free(names);
}

/* The entries of dir except "." and "..", sorted bytewise as Go's filepath.Walk does. */
static int list_dir(eng_kz_ctx *ctx, const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    if (!d)
        return core_error_errno(ctx->err, errno, "reading directory \"%s\"", eng_kz_rel(ctx, dir));
    while ((de = readdir(d)) != NULL) {
        char **grown;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!(grown = core_realloc(names, (n + 1) * sizeof(*grown))) ||
            !(grown[n] = core_strdup(de->d_name))) {
            names = grown ? grown : names;
            closedir(d);
            free_names(names, n);
            return nomem(ctx);
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    *names_out = names;
    *n_out = n;
    return 0;
}

static bool is_yaml_name(const char *name)
{
    return core_str_has_suffix(name, ".yaml") || core_str_has_suffix(name, ".yml");
}

/* Flux accepts a file only if every document is a Kubernetes object (has a kind). */
static int check_manifest_file(eng_kz_ctx *ctx, const char *path)
{
    const char *rel = eng_kz_rel(ctx, path);
    char *real = realpath(path, NULL);
    berth_buf b;
    json_t *docs = NULL;
    int rc;
    bool inside = real && eng_kz_inside_root(ctx, real);
    free(real);
    if (!inside)
        return core_error_set(ctx->err, BERTH_EDENIED, "\"%s\" is outside the artifact root", rel);
    if ((rc = eng_kz_read(ctx, path, ENG_KZ_MAX_FILE_BYTES, &b)) < 0)
        return rc;
    rc = eng_yaml_parse(&docs, b.ptr, b.len, 0, rel, ctx->err);
    berth_buf_dispose(&b);
    for (size_t i = 0; rc == 0 && i < json_array_size(docs); i++) {
        if (!eng_kz_str(json_array_get(docs, i), "kind"))
            rc = core_error_set(ctx->err, BERTH_EINVAL, "document %zu has no kind", i + 1);
    }
    json_decref(docs);
    if (rc < 0)
        return core_error_wrap(ctx->err, "failed to decode Kubernetes YAML from \"%s\"", rel);
    return 0;
}

static int scan_dir(eng_kz_ctx *ctx, const char *base, const char *dir, json_t *resources);

static int scan_entry(eng_kz_ctx *ctx, const char *base, const char *path, json_t *resources)
{
    struct stat st;
    char *kfile = NULL, *entry;
    int rc;
    if (lstat(path, &st) != 0)
        return core_error_errno(ctx->err, errno, "reading \"%s\"", eng_kz_rel(ctx, path));
    if (S_ISDIR(st.st_mode)) {
        if ((rc = find_kfile(ctx, path, &kfile)) < 0)
            return rc;
        core_free(kfile);
        if (!kfile)
            return scan_dir(ctx, base, path, resources);
    } else if (!is_yaml_name(path)) {
        return 0;
    } else if ((rc = check_manifest_file(ctx, path)) < 0) {
        return rc;
    }
    if (!(entry = core_sprintf(".%s", path + strlen(base))))
        return nomem(ctx);
    rc = json_array_append_new(resources, json_string(entry)) < 0 ? nomem(ctx) : 0;
    core_free(entry);
    return rc;
}

static int scan_dir(eng_kz_ctx *ctx, const char *base, const char *dir, json_t *resources)
{
    char **names = NULL;
    size_t n = 0;
    int rc;
    if ((rc = list_dir(ctx, dir, &names, &n)) < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = core_sprintf("%s/%s", dir, names[i]);
        rc = path ? scan_entry(ctx, base, path, resources) : nomem(ctx);
        core_free(path);
    }
    free_names(names, n);
    return rc;
}

/* Flux's generated kustomization.yaml for a directory without one (§2.1 step 2). */
static int generate_kfile(eng_kz_ctx *ctx, const char *dir, json_t **out)
{
    json_t *k = json_pack("{s:s, s:s}", "apiVersion", "kustomize.config.k8s.io/v1beta1", "kind",
                          "Kustomization");
    json_t *resources = json_array();
    int rc = 0;
    if (!k || !resources) {
        rc = nomem(ctx);
    } else if ((rc = scan_dir(ctx, dir, dir, resources)) == 0) {
        if (json_array_size(resources) == 0)
            rc = json_object_set_new(k, "namespace", json_string("_placeholder"));
        else
            rc = json_object_set(k, "resources", resources);
        rc = rc < 0 ? nomem(ctx) : 0;
    }
    json_decref(resources);
    if (rc < 0) {
        json_decref(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* ------------------------------------------------------------------ Flux's overlay (§2.1.4) */

static int set_string(json_t *k, const char *key, const char *value)
{
    if (!value)
        return 0;
    return json_object_set_new(k, key, json_string(value)) < 0 ? BERTH_ENOMEM : 0;
}

static int append_all(json_t *k, const char *key, const json_t *items)
{
    json_t *list = json_object_get(k, key);
    if (!items || json_array_size(items) == 0)
        return 0;
    if (!json_is_array(list)) {
        if (!(list = json_array()) || json_object_set_new(k, key, list) < 0)
            return BERTH_ENOMEM;
    }
    return json_array_extend(list, (json_t *)(uintptr_t)items) < 0 ? BERTH_ENOMEM : 0;
}

static bool is_local_relative(const char *p)
{
    static const char *const remote[] = {
        "https://", "http://", "ssh://", "git::", "git@", "github.com:", "github.com/", NULL};
    for (size_t i = 0; remote[i]; i++) {
        if (core_str_has_prefix(p, remote[i]))
            return false;
    }
    return p[0] != '/';
}

static int overlay_components(eng_kz_ctx *ctx, json_t *k, const char *dir, const eng_build_opts *o)
{
    json_t *keep = json_array();
    const json_t *c;
    size_t i;
    int rc = 0;
    if (!keep)
        return nomem(ctx);
    json_array_foreach(o->components, i, c)
    {
        const char *p = json_string_value(c);
        char *full;
        if (!p || !is_local_relative(p)) {
            rc = core_error_set(ctx->err, BERTH_EINVAL,
                                "component path \"%s\" must be local and relative", p ? p : "");
            break;
        }
        if (!(full = core_sprintf("%s/%s", dir, p))) {
            rc = nomem(ctx);
            break;
        }
        if (core_fs_exists(full) || !o->ignore_missing_components)
            rc = json_array_append(keep, (json_t *)(uintptr_t)c) < 0 ? nomem(ctx) : 0;
        core_free(full);
    }
    if (rc == 0 && append_all(k, "components", keep) < 0)
        rc = nomem(ctx);
    json_decref(keep);
    return rc;
}

static json_t *find_image(json_t *images, const char *name)
{
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        const char *n = eng_kz_str(img, "name");
        if (n && strcmp(n, name) == 0)
            return img;
    }
    return NULL;
}

static int set_or_drop(json_t *obj, const char *key, const char *value)
{
    if (value && value[0])
        return json_object_set_new(obj, key, json_string(value));
    json_object_del(obj, key);
    return 0;
}

/* Merge one spec image into `images`: newName overrides, newTag and digest go together. */
static int merge_image(json_t *images, const json_t *img)
{
    const char *name = eng_kz_str(img, "name"), *new_name = eng_kz_str(img, "newName");
    const char *tag = eng_kz_str(img, "newTag"), *digest = eng_kz_str(img, "digest");
    json_t *have;
    if (!name)
        return BERTH_EINVAL;
    if (!(have = find_image(images, name))) {
        if (!(have = json_pack("{s:s}", "name", name)) || json_array_append_new(images, have) < 0)
            return BERTH_ENOMEM;
    }
    if (new_name && new_name[0] && json_object_set_new(have, "newName", json_string(new_name)) < 0)
        return BERTH_ENOMEM;
    if ((tag && tag[0]) || (digest && digest[0])) {
        if (set_or_drop(have, "newTag", tag) < 0 || set_or_drop(have, "digest", digest) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int overlay_images(eng_kz_ctx *ctx, json_t *k, const json_t *spec_images)
{
    json_t *images = json_object_get(k, "images");
    const json_t *img;
    size_t i;
    int rc;
    if (json_array_size(spec_images) == 0)
        return 0;
    if (!json_is_array(images)) {
        if (!(images = json_array()) || json_object_set_new(k, "images", images) < 0)
            return nomem(ctx);
    }
    json_array_foreach(spec_images, i, img)
    {
        if ((rc = merge_image(images, img)) == BERTH_EINVAL)
            return core_error_set(ctx->err, rc, "spec.images[%zu]: name is required", i);
        if (rc < 0)
            return nomem(ctx);
    }
    return 0;
}

static int overlay(eng_kz_ctx *ctx, json_t *k, const char *dir, const eng_build_opts *o)
{
    int rc;
    if (!o)
        return 0;
    if (set_string(k, "namespace", o->target_namespace) < 0 ||
        set_string(k, "namePrefix", o->name_prefix) < 0 ||
        set_string(k, "nameSuffix", o->name_suffix) < 0 ||
        append_all(k, "patches", json_is_array(o->patches) ? o->patches : NULL) < 0)
        return nomem(ctx);
    if (json_is_array(o->components) && (rc = overlay_components(ctx, k, dir, o)) < 0)
        return rc;
    return json_is_array(o->images) ? overlay_images(ctx, k, o->images) : 0;
}

/* ------------------------------------------------------------------ one level */

static int check_fields(eng_kz_ctx *ctx, const eng_kz_file *f, bool component)
{
    const char *key, *kind = NULL;
    const json_t *val;
    int rc;
    json_object_foreach((json_t *)(uintptr_t)f->k, key, val)
    {
        if (in_list(unsupported_fields, key))
            return eng_kz_fail(ctx, f, BERTH_EUNSUPPORTED, "field \"%s\" is not supported by berth",
                               key);
        if (!in_list(supported_fields, key))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "unknown field \"%s\"", key);
    }
    if ((rc = eng_kz_get_string(ctx, f, f->k, "kind", "kustomization", &kind)) < 0)
        return rc;
    if (component && (!kind || strcmp(kind, "Component") != 0))
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "expected kind \"Component\" but got \"%s\"",
                           kind ? kind : "");
    if (!component && kind && kind[0] && strcmp(kind, "Kustomization") != 0)
        return eng_kz_fail(ctx, f, BERTH_EINVAL,
                           "expected kind \"Kustomization\" but got \"%s\" (components belong in "
                           "`components`)",
                           kind);
    return 0;
}

static int check_object(eng_kz_ctx *ctx, const eng_kz_file *f, const char *rel, size_t doc,
                        const json_t *obj)
{
    const char *missing = NULL;
    if (!json_is_object(obj))
        missing = "a mapping (the document is not one)";
    else if (!eng_kz_str(obj, "apiVersion"))
        missing = "apiVersion";
    else if (!eng_kz_kind(obj)[0])
        missing = "kind";
    else if (!eng_kz_name(obj)[0])
        missing = "metadata.name";
    if (!missing)
        return 0;
    return eng_kz_fail(ctx, f, BERTH_EINVAL, "resource \"%s\" document %zu: missing %s", rel, doc,
                       missing);
}

static bool is_list(const json_t *obj)
{
    return json_is_object(obj) && core_str_has_suffix(eng_kz_kind(obj), "List") &&
           json_is_array(json_object_get(obj, "items"));
}

static int add_object(eng_kz_ctx *ctx, const eng_kz_file *f, const char *rel, size_t doc,
                      json_t *obj, eng_kz_set *set)
{
    eng_kz_res *r;
    int rc = 0;
    if (is_list(obj)) {
        json_t *item;
        size_t i;
        json_array_foreach(json_object_get(obj, "items"), i, item)
        {
            if ((rc = check_object(ctx, f, rel, doc, item)) < 0 ||
                (rc = add_object(ctx, f, rel, doc, json_incref(item), set)) < 0)
                break;
        }
        json_decref(obj);
        return rc < 0 ? rc : 0;
    }
    if ((rc = check_object(ctx, f, rel, doc, obj)) < 0) {
        json_decref(obj);
        return rc;
    }
    if (!(r = eng_kz_res_new(obj)))
        return nomem(ctx);
    return eng_kz_set_add(ctx, f, set, r);
}

static int load_resource_file(eng_kz_ctx *ctx, const eng_kz_file *f, const char *abs,
                              eng_kz_set *set)
{
    const char *rel = eng_kz_rel(ctx, abs);
    berth_buf b;
    json_t *docs = NULL;
    int rc;
    if ((rc = eng_kz_read(ctx, abs, ENG_KZ_MAX_FILE_BYTES, &b)) < 0)
        return eng_kz_wrap(ctx, f, "resources");
    rc = eng_yaml_parse(&docs, b.ptr, b.len, ENG_YAML_MARK_QUOTED, rel, ctx->err);
    berth_buf_dispose(&b);
    if (rc < 0)
        return eng_kz_wrap(ctx, f, "resources");
    for (size_t i = 0; i < json_array_size(docs) && rc == 0; i++)
        rc = add_object(ctx, f, rel, i + 1, json_incref(json_array_get(docs, i)), set);
    json_decref(docs);
    return rc;
}

static int add_resource(eng_kz_ctx *ctx, const eng_kz_file *f, const char *entry, eng_kz_set *set)
{
    eng_kz_set sub = {NULL, 0, 0};
    char *abs = NULL;
    int rc;
    if ((rc = eng_kz_resolve(ctx, f, entry, &abs)) < 0)
        return rc;
    if (!core_fs_is_dir(abs)) {
        rc = load_resource_file(ctx, f, abs, set);
    } else if ((rc = build_dir(ctx, f, abs, false, &sub)) == 0) {
        for (size_t i = 0; i < sub.len && rc == 0; i++) {
            rc = eng_kz_set_add(ctx, f, set, sub.v[i]);
            sub.v[i] = NULL;
        }
    }
    eng_kz_set_dispose(&sub);
    core_free(abs);
    return rc;
}

static int add_resources(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    static const char *const keys[] = {"resources", "bases", NULL};
    for (size_t k = 0; keys[k]; k++) {
        const json_t *list, *e;
        size_t i;
        int rc;
        if ((rc = eng_kz_get_list(ctx, f, f->k, keys[k], "kustomization", &list)) < 0)
            return rc;
        json_array_foreach(list, i, e)
        {
            if (!json_is_string(e))
                return eng_kz_fail(ctx, f, BERTH_EINVAL, "%s[%zu] must be a string", keys[k], i);
            if ((rc = add_resource(ctx, f, json_string_value(e), set)) < 0)
                return rc;
        }
    }
    return 0;
}

static int add_components(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set)
{
    const json_t *list, *e;
    size_t i;
    int rc;
    if ((rc = eng_kz_get_list(ctx, f, f->k, "components", "kustomization", &list)) < 0)
        return rc;
    json_array_foreach(list, i, e)
    {
        char *abs = NULL;
        if (!json_is_string(e))
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "components[%zu] must be a string", i);
        if ((rc = eng_kz_resolve(ctx, f, json_string_value(e), &abs)) < 0)
            return rc;
        if (!core_fs_is_dir(abs))
            rc = eng_kz_fail(ctx, f, BERTH_EINVAL, "component \"%s\" is not a directory",
                             json_string_value(e));
        else
            rc = build_dir(ctx, f, abs, true, set);
        core_free(abs);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int push_dir(eng_kz_ctx *ctx, const eng_kz_file *f)
{
    for (size_t i = 0; i < ctx->depth; i++) {
        if (strcmp(ctx->stack[i], f->dir) == 0)
            return eng_kz_fail(ctx, f, BERTH_EINVAL, "cycle: directory \"%s\" includes itself",
                               eng_kz_rel(ctx, f->dir));
    }
    if (ctx->depth == ENG_KZ_MAX_DEPTH)
        return eng_kz_fail(ctx, f, BERTH_EINVAL, "kustomizations nested too deep");
    ctx->stack[ctx->depth++] = f->dir;
    return 0;
}

static int build_level(eng_kz_ctx *ctx, const eng_kz_file *f, bool component, eng_kz_set *set)
{
    int rc;
    if ((rc = push_dir(ctx, f)) < 0)
        return rc;
    if ((rc = check_fields(ctx, f, component)) == 0 && (rc = add_resources(ctx, f, set)) == 0 &&
        (rc = eng_kz_run_generators(ctx, f, set)) == 0 && (rc = add_components(ctx, f, set)) == 0) {
        for (size_t i = 0; i < sizeof(transformers) / sizeof(*transformers) && rc == 0; i++)
            rc = transformers[i](ctx, f, set);
    }
    ctx->depth--;
    return rc;
}

/* Build the kustomization in dir (a resource or component directory of parent). */
static int build_dir(eng_kz_ctx *ctx, const eng_kz_file *parent, const char *dir, bool component,
                     eng_kz_set *set)
{
    eng_kz_file f;
    char *path = NULL;
    json_t *k = NULL;
    int rc;
    if ((rc = find_kfile(ctx, dir, &path)) < 0)
        return rc;
    if (!path)
        return eng_kz_fail(ctx, parent, BERTH_ENOTFOUND,
                           "directory \"%s\" has no kustomization.yaml, kustomization.yml or "
                           "Kustomization",
                           eng_kz_rel(ctx, dir));
    if ((rc = load_kfile(ctx, path, &k)) == 0) {
        f.k = k;
        f.dir = dir;
        f.name = eng_kz_rel(ctx, path);
        rc = build_level(ctx, &f, component, set);
    }
    json_decref(k);
    core_free(path);
    return rc;
}

/* ------------------------------------------------------------------ the top */

static bool is_local_config(const json_t *obj)
{
    const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    const char *v = eng_kz_str(ann, "config.kubernetes.io/local-config");
    return v && strcmp(v, "true") == 0;
}

static int finish(eng_kz_ctx *ctx, eng_kz_set *set, json_t **out)
{
    json_t *objects;
    int rc;
    if ((rc = eng_kz_add_hashes(ctx, set)) < 0 || (rc = eng_kz_fix_references(ctx, set)) < 0)
        return rc;
    if (!(objects = json_array()))
        return nomem(ctx);
    for (size_t i = 0; i < set->len; i++) {
        if (!is_local_config(set->v[i]->obj) && json_array_append(objects, set->v[i]->obj) < 0) {
            json_decref(objects);
            return nomem(ctx);
        }
    }
    *out = objects;
    return 0;
}

static int set_metadata_map(eng_kz_ctx *ctx, json_t *objects, const json_t *src, const char *key)
{
    const char *k;
    const json_t *v;
    json_t *obj;
    size_t i;
    json_array_foreach(objects, i, obj)
    {
        json_t *dst = eng_kz_meta_map(obj, key, true);
        if (!dst)
            return nomem(ctx);
        json_object_foreach((json_t *)(uintptr_t)src, k, v)
        {
            if (!json_is_string(v))
                return core_error_set(ctx->err, BERTH_EINVAL,
                                      "spec.commonMetadata.%s: value of \"%s\" must be a string",
                                      key, k);
            if (json_object_set(dst, k, (json_t *)(uintptr_t)v) < 0)
                return nomem(ctx);
        }
    }
    return 0;
}

/* spec.commonMetadata: plain metadata merge on every object, after the build (§1.1). */
static int common_metadata(eng_kz_ctx *ctx, json_t *objects, const json_t *cm)
{
    const json_t *labels = json_object_get(cm, "labels");
    const json_t *annotations = json_object_get(cm, "annotations");
    int rc;
    if (json_is_object(labels) && (rc = set_metadata_map(ctx, objects, labels, "labels")) < 0)
        return rc;
    if (json_is_object(annotations))
        return set_metadata_map(ctx, objects, annotations, "annotations");
    return 0;
}

/* realpath of root_dir/path, which must be a directory inside the root. */
static int resolve_start(eng_kz_ctx *ctx, const char *path, char **dir_out)
{
    char *joined, *real;
    bool root_only = !path || !path[0] || strcmp(path, ".") == 0;
    if (!root_only && core_fs_check_relpath(path, ctx->err) < 0)
        return core_error_wrap(ctx->err, "kustomization path");
    if (!(joined = root_only ? core_strdup(ctx->root) : core_sprintf("%s/%s", ctx->root, path)))
        return nomem(ctx);
    real = realpath(joined, NULL);
    core_free(joined);
    if (!real || !eng_kz_inside_root(ctx, real) || !core_fs_is_dir(real)) {
        free(real);
        return core_error_set(ctx->err, BERTH_ENOTFOUND, "kustomization path not found: \"%s\"",
                              path ? path : "");
    }
    *dir_out = core_strdup(real);
    free(real);
    return *dir_out ? 0 : nomem(ctx);
}

static int init_ctx(eng_kz_ctx *ctx, const char *root_dir, berth_error **err)
{
    char *real = realpath(root_dir, NULL);
    memset(ctx, 0, sizeof(*ctx));
    ctx->err = err;
    if (!real || !core_fs_is_dir(real)) {
        free(real);
        return core_error_set(err, BERTH_ENOTFOUND, "artifact directory \"%s\" not found",
                              root_dir);
    }
    ctx->root = core_strdup(real);
    free(real);
    return ctx->root ? 0 : nomem(ctx);
}

/* Load or generate the root kustomization, overlay the spec, build it. */
static int build_root(eng_kz_ctx *ctx, const char *dir, const eng_build_opts *opts, eng_kz_set *set)
{
    eng_kz_file f;
    char *kpath = NULL, *gen_name = NULL;
    json_t *k = NULL;
    int rc;
    if ((rc = find_kfile(ctx, dir, &kpath)) < 0)
        return rc;
    if (kpath)
        rc = load_kfile(ctx, kpath, &k);
    else
        rc = generate_kfile(ctx, dir, &k);
    if (rc == 0 && !kpath &&
        !(gen_name = core_sprintf("%s/kustomization.yaml (generated)", eng_kz_rel(ctx, dir))))
        rc = nomem(ctx);
    if (rc == 0 && (rc = overlay(ctx, k, dir, opts)) == 0) {
        f.k = k;
        f.dir = dir;
        f.name = kpath ? eng_kz_rel(ctx, kpath) : gen_name;
        rc = build_level(ctx, &f, false, set);
    }
    json_decref(k);
    core_free(kpath);
    core_free(gen_name);
    return rc;
}

static int post_build(eng_kz_ctx *ctx, json_t *objects, const eng_build_opts *opts)
{
    int rc;
    if (opts && opts->post_build && (rc = eng_substitute(objects, opts->post_build, ctx->err)) < 0)
        return rc;
    if (opts && json_is_object(opts->common_metadata) &&
        (rc = common_metadata(ctx, objects, opts->common_metadata)) < 0)
        return rc;
    return eng_yaml_unmark(objects) < 0 ? nomem(ctx) : 0;
}

int eng_build(json_t **objects_out, const char *root_dir, const char *path,
              const eng_build_opts *opts, berth_error **err)
{
    eng_kz_ctx ctx;
    eng_kz_set set = {NULL, 0, 0};
    char *dir = NULL;
    json_t *objects = NULL;
    int rc;

    BERTH_ARG_CHECK(objects_out && root_dir);
    BERTH_ARG_CHECK(!opts || opts->version == ENG_BUILD_OPTS_VERSION);
    *objects_out = NULL;
    if ((rc = init_ctx(&ctx, root_dir, err)) < 0)
        goto out;
    if ((rc = resolve_start(&ctx, path, &dir)) < 0 ||
        (rc = build_root(&ctx, dir, opts, &set)) < 0 || (rc = finish(&ctx, &set, &objects)) < 0 ||
        (rc = post_build(&ctx, objects, opts)) < 0)
        goto out;
    *objects_out = objects;
    objects = NULL;
out:
    json_decref(objects);
    eng_kz_set_dispose(&set);
    core_free(dir);
    core_free(ctx.root);
    return rc;
}
