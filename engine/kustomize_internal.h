/*
 * engine/kustomize_internal.h: what the kustomize_*.c files share (prefix eng_kz_). Not for
 * other modules: they use engine/build.h.
 *
 * A build holds a set of resources (eng_kz_set): each one an object plus what kustomize tracks
 * beside it: the (name, namespace) pairs it had before each rename, so patches, generators and
 * name references can find it by any of its ids, the prefixes/suffixes applied to it, and
 * whether it gets a content-hash suffix at the end. Kustomization files are read with every
 * scalar as text (ENG_YAML_TEXT_SCALARS), as sigs.k8s.io/yaml reads them into Go strings; the
 * eng_kz_get_* accessors convert and check types.
 */
#ifndef BERTH_ENGINE_KUSTOMIZE_INTERNAL_H
#define BERTH_ENGINE_KUSTOMIZE_INTERNAL_H

#include <jansson.h>

#include <berth/buf.h>
#include <berth/error.h>
#include <berth/regex.h>

#define ENG_KZ_MAX_DEPTH 64               /* nested kustomizations and components */
#define ENG_KZ_MAX_FILE_BYTES (64u << 20) /* one manifest, patch or generator source */
#define ENG_KZ_KFILE_MAX_BYTES (4u << 20) /* one kustomization.yaml */
#define ENG_KZ_AFFIX_MAX 4096             /* recorded prefixes/suffixes per resource */

typedef struct eng_kz_prev {
    char *name;
    char *ns; /* "" when unset */
} eng_kz_prev;

typedef struct eng_kz_res {
    json_t *obj;       /* the object (owned) */
    eng_kz_prev *prev; /* ids before each rename, oldest first: prev[0] is the original */
    size_t prev_len;
    char *affixes;   /* prefixes and suffixes applied, for name-reference disambiguation */
    bool needs_hash; /* generated: gets "-<hash>" at the end of the top-level build */
    char behavior;   /* generator behavior while absorbed: 'c'reate, 'm'erge, 'r'eplace */
} eng_kz_res;

typedef struct eng_kz_set {
    eng_kz_res **v;
    size_t len, cap;
} eng_kz_set;

typedef struct eng_kz_ctx {
    char *root; /* realpath of the artifact root; no file outside it is read */
    const char *stack[ENG_KZ_MAX_DEPTH]; /* directories being built (borrowed): cycle check */
    size_t depth;
    berth_error **err;
} eng_kz_ctx;

typedef struct eng_kz_file {
    const json_t *k;  /* the kustomization, scalars as text */
    const char *dir;  /* absolute directory */
    const char *name; /* root-relative file name for messages */
} eng_kz_file;

/* ---- errors: "kustomization \"<name>\": <message>" ---- */
int eng_kz_fail(eng_kz_ctx *ctx, const eng_kz_file *f, int code, const char *fmt, ...)
    BERTH_PRINTF(4, 5);
/** Wrap the error in *ctx->err with the file and a context line; keeps the code. */
int eng_kz_wrap(eng_kz_ctx *ctx, const eng_kz_file *f, const char *fmt, ...) BERTH_PRINTF(3, 4);

/* ---- resources and sets ---- */
/** A new resource owning obj (the reference is taken even on failure); NULL when out of memory. */
eng_kz_res *eng_kz_res_new(json_t *obj);
void eng_kz_res_free(eng_kz_res *r);
/** Append r (taken even on failure). Returns 0 or BERTH_ENOMEM. */
int eng_kz_set_push(eng_kz_set *s, eng_kz_res *r);
/** Append r unless a resource with the same current id exists (error). Takes r. */
int eng_kz_set_add(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *s, eng_kz_res *r);
/** Remove and free element i, keeping the order. */
void eng_kz_set_remove(eng_kz_set *s, size_t i);
void eng_kz_set_dispose(eng_kz_set *s);

/* ---- object fields ---- */
const char *eng_kz_str(const json_t *obj, const char *key); /* string member, else NULL */
const char *eng_kz_kind(const json_t *obj);                 /* "" when absent */
const char *eng_kz_name(const json_t *obj);                 /* metadata.name, "" when absent */
const char *eng_kz_ns(const json_t *obj);                   /* metadata.namespace, "" */
/** Group and version of apiVersion ("apps/v1" -> "apps", "v1"), truncated to the buffers. */
void eng_kz_gv(const json_t *obj, char group[128], char version[64]);
/** Is the kind cluster-scoped (kustomize's built-in list; unknown kinds are namespaced)? */
bool eng_kz_cluster_scoped(const json_t *obj);
/** Namespace for id comparison: "" for cluster-scoped kinds, "default" when unset. */
const char *eng_kz_effective_ns(const json_t *obj, const char *ns);
/** "Kind/ns/name" or "Kind/name" for messages, into out. */
void eng_kz_obj_id(const json_t *obj, char *out, size_t size);
/** Set a string at obj.metadata.<key>, creating metadata. Returns 0 or BERTH_ENOMEM. */
int eng_kz_set_meta(json_t *obj, const char *key, const char *value);
/** obj.metadata.<key> as an object, created when create is set; NULL otherwise or on OOM. */
json_t *eng_kz_meta_map(json_t *obj, const char *key, bool create);

/* ---- ids and renames ---- */
/** Rename r, recording its previous id. Returns 0 or BERTH_ENOMEM. */
int eng_kz_rename(eng_kz_res *r, const char *name);
/** Move r to namespace ns, recording its previous id. */
int eng_kz_renamespace(eng_kz_res *r, const char *ns);
/** Record the current id as a previous one (before a change the caller makes). */
int eng_kz_record_prev(eng_kz_res *r);
const char *eng_kz_org_name(const eng_kz_res *r);
const char *eng_kz_org_ns(const eng_kz_res *r);
/** Does any id of r (current, previous, original) have this name (and namespace, when ns is
 * not NULL; compared as effective namespaces)? */
bool eng_kz_any_id(const eng_kz_res *r, const char *name, const char *ns);
/** Same group, version and kind. */
bool eng_kz_same_gvk(const json_t *a, const json_t *b);

/* ---- field paths: "spec/template/metadata/labels"; arrays on the way are entered ---- */
typedef int (*eng_kz_visit_fn)(json_t *parent, const char *key, void *arg);
/**
 * Call fn(parent, last-segment, arg) for every place the path reaches. With create, missing
 * (or null) maps on the way are created and fn is called even when the last key is absent;
 * without it only existing keys are visited. A "[]" suffix on a segment is ignored.
 */
int eng_kz_walk(json_t *node, const char *path, bool create, eng_kz_visit_fn fn, void *arg);

/* ---- files ---- */
/** The root-relative form of an absolute path inside the root ("." for the root). */
const char *eng_kz_rel(const eng_kz_ctx *ctx, const char *abs);
/** Is the absolute, resolved path at or below the artifact root? */
bool eng_kz_inside_root(const eng_kz_ctx *ctx, const char *real);
/** Resolve rel against f->dir into a heap absolute path that exists inside the root. */
int eng_kz_resolve(eng_kz_ctx *ctx, const eng_kz_file *f, const char *rel, char **abs_out);
/** Read a whole file (at most max bytes). */
int eng_kz_read(eng_kz_ctx *ctx, const char *abs, size_t max, berth_buf *out);

/* ---- kustomization values (text scalars) ---- */
/** Check that obj has only the given keys; `where` names obj ("configMapGenerator[0]"). */
int eng_kz_check_keys(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *where,
                      const char *const *allowed);
/** A string member or NULL when missing/null; any other type is an error. */
int eng_kz_get_string(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                      const char *where, const char **out);
/** A boolean member ("true"/"false" in any YAML spelling); missing/null gives false. */
int eng_kz_get_bool(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                    const char *where, bool *out);
/** An array member or NULL when missing/null. */
int eng_kz_get_list(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                    const char *where, const json_t **out);
/** An object member whose values are all strings, or NULL when missing/null. */
int eng_kz_get_string_map(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *obj, const char *key,
                          const char *where, const json_t **out);

/* ---- selectors (patch targets) ---- */
typedef struct eng_kz_selector {
    berth_regex *group, *version, *kind, *name, *ns; /* anchored; NULL = any */
    const char *labels, *annotations;                /* selector text (borrowed) or NULL */
} eng_kz_selector;
int eng_kz_selector_parse(eng_kz_ctx *ctx, const eng_kz_file *f, const json_t *target,
                          const char *where, eng_kz_selector *out);
int eng_kz_selector_match(eng_kz_ctx *ctx, const eng_kz_selector *sel, const eng_kz_res *r,
                          bool *out);
void eng_kz_selector_dispose(eng_kz_selector *sel);
/** Match a Kubernetes label selector ("a=b,c!=d,e in (x,y),!f") against a labels map. */
int eng_kz_label_selector_match(const char *selector, const json_t *labels, bool *out,
                                berth_error **err);

/* ---- steps (one file each) ---- */
int eng_kz_run_generators(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_add_hashes(eng_kz_ctx *ctx, eng_kz_set *set);
int eng_kz_run_patches_sm(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_patches(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_patches_json6902(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_namespace(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_affixes(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_labels(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_annotations(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_replicas(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_run_images(eng_kz_ctx *ctx, const eng_kz_file *f, eng_kz_set *set);
int eng_kz_fix_references(eng_kz_ctx *ctx, eng_kz_set *set);

/* ---- patch primitives (kustomize_patch.c) ---- */
/** Strategic-merge patch into r->obj; *deleted_out when the patch deletes the object. */
int eng_kz_smp(eng_kz_ctx *ctx, eng_kz_res *r, const json_t *patch, bool *deleted_out);
/** Apply RFC 6902 operations to *doc (which may be replaced). */
int eng_kz_json6902(eng_kz_ctx *ctx, json_t **doc, const json_t *ops);

#endif
