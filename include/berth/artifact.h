/*
 * berth/artifact.h: Flux-format config artifacts: build the tar+gzip layer from a directory,
 * push it, pull and extract it safely, diff it with a local directory.
 *
 * The layer is reproducible: entries in byte-wise lexical pre-order with the root as ".", mtime 0,
 * uid/gid 0 and no owner names, only regular files and directories (symlinks skipped, as Flux
 * does), gzip by ISA-L with a zero header mtime. The same tree always gives the same digest.
 */
#ifndef BERTH_ARTIFACT_H
#define BERTH_ARTIFACT_H

#include "common.h"
#include "error.h"
#include "oci.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Flux's default --ignore-paths. */
#define BERTH_ARTIFACT_DEFAULT_IGNORE                                                              \
    ".git/,.gitignore,.gitmodules,.gitattributes,*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,"   \
    "*.zip"

typedef struct berth_artifact_build_opts {
    unsigned int version;
    const char *ignore_paths; /* comma-separated gitignore patterns; NULL: the default set */
    int level;                /* ISA-L level 0..3; default 1 */
} berth_artifact_build_opts;
#define BERTH_ARTIFACT_BUILD_OPTS_VERSION 1
#define BERTH_ARTIFACT_BUILD_OPTS_INIT                                                             \
    {                                                                                              \
        BERTH_ARTIFACT_BUILD_OPTS_VERSION, NULL, 1                                                 \
    }

/** What a build produced. */
typedef struct berth_artifact_layer {
    char digest[72];  /* "sha256:<hex>" of the .tar.gz bytes */
    char diff_id[72]; /* "sha256:<hex>" of the uncompressed tar */
    int64_t size;     /* bytes of .tar.gz */
    int64_t files;    /* regular files archived */
} berth_artifact_layer;

/**
 * Archive path (a directory, or a single file which is archived as "./<basename>") into a
 * reproducible .tar.gz written to out_file (temp file + rename). Errors name the path at fault.
 */
BERTH_EXTERN int berth_artifact_build(berth_artifact_layer *out, const char *path,
                                      const char *out_file, const berth_artifact_build_opts *opts,
                                      berth_error **err);

typedef struct berth_extract_opts {
    unsigned int version;
    int64_t max_bytes;   /* ceiling on the total uncompressed size; 0: 1 GiB */
    int64_t max_entries; /* ceiling on entries; 0: 100000 */
} berth_extract_opts;
#define BERTH_EXTRACT_OPTS_VERSION 1
#define BERTH_EXTRACT_OPTS_INIT                                                                    \
    {                                                                                              \
        BERTH_EXTRACT_OPTS_VERSION, 0, 0                                                           \
    }

/**
 * A streaming extractor: feed it gzip'd (or plain) tar bytes as they arrive; a worker thread
 * inflates (ISA-L) and unpacks (libarchive) into `dir` (which must exist and should be a fresh
 * staging directory). Refuses absolute paths, "..", links, devices, FIFOs and anything that would
 * escape dir; symlinks are skipped as Flux does.
 */
typedef struct berth_extractor berth_extractor;
BERTH_EXTERN int berth_extractor_new(berth_extractor **out, const char *dir,
                                     const berth_extract_opts *opts, berth_error **err);
/** Feed bytes (copied). Returns a negative code once extraction has failed. */
BERTH_EXTERN int berth_extractor_write(berth_extractor *x, const void *data, size_t len);
/** Signal the end, wait for the worker, and report the first error. *diff_id_out (may be NULL,
 * 72 bytes) gets the sha256 of the uncompressed tar. */
BERTH_EXTERN int berth_extractor_finish(berth_extractor *x, char *diff_id_out, berth_error **err);
/** Stop and free (joins the worker). Accepts NULL. */
BERTH_EXTERN void berth_extractor_free(berth_extractor *x);

/** Extract a whole .tar.gz file into dir (see berth_extractor). */
BERTH_EXTERN int berth_artifact_extract_file(const char *tgz, const char *dir,
                                             const berth_extract_opts *opts, berth_error **err);

/**
 * Move the entries of staging into dir (which must exist) and remove staging. Existing entries
 * of the same name are replaced. Used after a verified pull so DIR never sees unverified bytes.
 */
BERTH_EXTERN int berth_artifact_commit_dir(const char *staging, const char *dir, berth_error **err);

/* ---------------------------------------------------------------- push / pull */
typedef struct berth_push_opts {
    unsigned int version;
    const char *source;          /* org.opencontainers.image.source (required) */
    const char *revision;        /* org.opencontainers.image.revision (required) */
    const berth_kv *annotations; /* extra annotations, override the standard three */
    size_t annotations_len;
    const char *ignore_paths; /* NULL: default set */
    bool reproducible;        /* created = 1970-01-01T00:00:00Z */
    int64_t created;          /* Unix seconds for created when > 0 (SOURCE_DATE_EPOCH) */
} berth_push_opts;
#define BERTH_PUSH_OPTS_VERSION 1
#define BERTH_PUSH_OPTS_INIT                                                                       \
    {                                                                                              \
        .version = BERTH_PUSH_OPTS_VERSION                                                         \
    }

typedef struct berth_push_result {
    char digest[72];  /* manifest digest */
    char *repository; /* "registry/repo" (heap) */
    char *tag;        /* heap or NULL */
    berth_artifact_layer layer;
} berth_push_result;
BERTH_EXTERN void berth_push_result_dispose(berth_push_result *r);

/** Build path into a Flux artifact and push it to ref (tag required). */
BERTH_EXTERN int berth_artifact_push(berth_push_result *out, berth_oci_client *c,
                                     const berth_oci_ref *ref, const char *path,
                                     const berth_push_opts *opts, berth_error **err);

typedef struct berth_pull_result {
    char digest[72]; /* manifest digest */
    char *source;    /* annotation or NULL */
    char *revision;  /* annotation or NULL */
    char *layer_media_type;
    int64_t layer_size;
} berth_pull_result;
BERTH_EXTERN void berth_pull_result_dispose(berth_pull_result *r);

/**
 * Pull ref and extract its first tar+gzip layer (or the layer of layer_media_type when non-NULL)
 * into out_dir (must exist). Bytes are extracted into a staging directory beside out_dir while
 * they stream and are moved into out_dir only after every digest verified; on failure out_dir is
 * untouched.
 */
BERTH_EXTERN int berth_artifact_pull(berth_pull_result *out, berth_oci_client *c,
                                     const berth_oci_ref *ref, const char *out_dir,
                                     const char *layer_media_type, const berth_extract_opts *xopts,
                                     berth_error **err);

/**
 * Pull ref and store its first layer (or the layer of layer_media_type when non-NULL) as is,
 * without extracting it, in out_file (created, mode 0600; it must not exist). The bytes are
 * checked against the layer's size and digest as they stream; on failure out_file is removed.
 * Flux's OCIRepository layerSelector.operation "copy". *out as berth_artifact_pull.
 */
BERTH_EXTERN int berth_artifact_pull_blob(berth_pull_result *out, berth_oci_client *c,
                                          const berth_oci_ref *ref, const char *out_file,
                                          const char *layer_media_type, berth_error **err);

/**
 * Remove from the tree dir what the gitignore patterns exclude (one pattern per line, '#'
 * comments and blank lines skipped; the go-git gitignore subset of spec §1.4, evaluated with dir
 * as the root, last matching pattern wins). Used for OCIRepository spec.ignore on an extracted
 * layer. Returns 0, BERTH_EIO / BERTH_EDENIED (naming the path) or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_artifact_apply_ignore(const char *dir, const char *patterns,
                                             berth_error **err);

/**
 * Compare the artifact at ref with the local path by content: builds the local tar, and compares
 * its diff_id with the remote config's diff_ids[0] when present, else the per-file content of the
 * remote layer. *differs_out set; *report_out (may be NULL, heap) lists differing paths.
 */
BERTH_EXTERN int berth_artifact_diff(bool *differs_out, char **report_out, berth_oci_client *c,
                                     const berth_oci_ref *ref, const char *path,
                                     const char *ignore_paths, berth_error **err);

#ifdef __cplusplus
}
#endif
#endif
