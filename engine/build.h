/*
 * engine/build.h: the build stage of the engine (internal, prefix eng_): a directory of
 * manifests in, a list of objects out. It runs the kustomize subset of spec/engine.md §2 with
 * Flux's overlay of the Kustomization spec (§2.1), then post-build substitution (§1.4), then
 * commonMetadata. The build is pure: no network, no target, no clock; the same directory and
 * options give the same objects in the same order (resource order; the apply stage sorts).
 *
 * Objects are jansson trees. A kustomize feature outside the subset fails with
 * BERTH_EUNSUPPORTED (an unknown field with BERTH_EINVAL) and a message naming the field and the
 * kustomization file, never a silent skip.
 */
#ifndef BERTH_ENGINE_BUILD_H
#define BERTH_ENGINE_BUILD_H

#include <jansson.h>

#include <berth/error.h>

#include "engine/yaml.h"

/** One `postBuild.substituteFrom` entry, already looked up by the caller. */
typedef struct eng_subst_from {
    const char *kind;   /* "ConfigMap" or "Secret" (for messages) */
    const char *name;   /* object name (for messages) */
    bool optional;      /* a missing object is skipped instead of failing */
    const json_t *data; /* object of string values (Secret values decoded); NULL = not found */
} eng_subst_from;

/** `spec.postBuild` (§1.4). */
typedef struct eng_postbuild {
    const json_t *substitute;   /* object of string values, or NULL; wins over substituteFrom */
    const eng_subst_from *from; /* substituteFrom in list order (later entries overwrite) */
    size_t from_len;
    bool always; /* substituteStrategy Always: substitute even with no variables */
    bool strict; /* ${var} without a default fails when var is undefined (Flux >= 1.9) */
} eng_postbuild;

#define ENG_BUILD_OPTS_VERSION 1

/**
 * The Kustomization spec fields Flux applies on top of the root kustomization.yaml (§2.1 step
 * 4) and after the build. JSON values are borrowed and shaped as in the Kustomization spec.
 */
typedef struct eng_build_opts {
    unsigned int version;
    const char *target_namespace; /* replaces `namespace`; NULL keeps it */
    const char *name_prefix;      /* replaces `namePrefix`; NULL keeps it */
    const char *name_suffix;      /* replaces `nameSuffix`; NULL keeps it */
    const json_t *patches;        /* [{patch, target?}], appended to `patches` */
    const json_t *images;         /* [{name, newName?, newTag?, digest?}], merged by name */
    const json_t *components;     /* [string], local relative paths appended to `components` */
    bool ignore_missing_components;
    const json_t *common_metadata;   /* {labels?, annotations?} set on every object at the end */
    const eng_postbuild *post_build; /* NULL: no substitution */
} eng_build_opts;

#define ENG_BUILD_OPTS_INIT                                                                        \
    {                                                                                              \
        ENG_BUILD_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL              \
    }

/**
 * Build the directory `path` (relative, checked with core_fs_check_relpath; "" or "." is the
 * root) of the artifact tree at root_dir into *objects_out, a new JSON array of objects.
 * Files are read only inside root_dir, symlinks included. opts may be NULL.
 * Returns 0, or: BERTH_ENOTFOUND (path or a referenced file missing), BERTH_EINVAL (malformed
 * YAML, kustomization or object; failed patch; substitution error), BERTH_EUNSUPPORTED (a
 * kustomize feature outside the subset), BERTH_EIO, BERTH_ENOMEM. Messages name the file.
 * Thread-safe (no shared state); reads the file system only.
 */
int eng_build(json_t **objects_out, const char *root_dir, const char *path,
              const eng_build_opts *opts, berth_error **err);

/**
 * Post-build substitution (§1.4) on every object of the array objects, in place: objects with
 * the label or annotation `kustomize.toolkit.fluxcd.io/substitute: disabled` are skipped; the
 * others are written as YAML, run through Flux's envsubst dialect and read back.
 * Returns 0, BERTH_EINVAL (invalid variable name, missing substituteFrom object, envsubst
 * error, unreadable result) or BERTH_ENOMEM. Messages start "post build failed for '<gvk>/<name>'".
 */
int eng_substitute(json_t *objects, const eng_postbuild *pb, berth_error **err);

/**
 * Flux's envsubst (fluxcd/pkg/envsubst) over text with the variables of vars (an object of
 * strings). strict: an undefined variable without a default operator is an error. *out is heap
 * (core_free). Returns 0, BERTH_EINVAL with envsubst's message, or BERTH_ENOMEM.
 */
int eng_envsubst(char **out, const char *text, const json_t *vars, bool strict, berth_error **err);

/**
 * kustomize's name hash of a ConfigMap, Secret or other object (§2.4): the 10 characters
 * appended as "-<hash>". Returns 0 or BERTH_ENOMEM.
 */
int eng_kz_object_hash(char out[11], const json_t *obj, berth_error **err);

/** The hash of an arbitrary JSON value (Go encoding, sorted keys), for the test vectors. */
int eng_kz_json_hash(char out[11], const json_t *value, berth_error **err);

#endif
