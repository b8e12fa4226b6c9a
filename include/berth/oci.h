/*
 * berth/oci.h: OCI references, the registry client, manifests and descriptors.
 *
 * Ownership: every pointer handed out through an `out` parameter is the caller's and has a
 * matching _dispose/_free. Strings inside structs filled by the library are heap strings owned by
 * that struct. Thread safety: a berth_oci_client is used by one thread at a time.
 */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H

#include "buf.h"
#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- media types */
#define BERTH_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BERTH_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BERTH_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define BERTH_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BERTH_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define BERTH_MT_FLUX_CONFIG "application/vnd.cncf.flux.config.v1+json"
#define BERTH_MT_FLUX_CONTENT "application/vnd.cncf.flux.content.v1.tar+gzip"
#define BERTH_ANN_CREATED "org.opencontainers.image.created"
#define BERTH_ANN_SOURCE "org.opencontainers.image.source"
#define BERTH_ANN_REVISION "org.opencontainers.image.revision"
#define BERTH_ANN_REF_NAME "org.opencontainers.image.ref.name"
#define BERTH_OCI_MANIFEST_MAX (4u * 1024u * 1024u) /* manifest and index ceiling */

/* ---------------------------------------------------------------- references */
/**
 * A parsed image reference. `registry` is the host as the user wrote it, normalised
 * ("docker.io" for Docker Hub); `api_host` is where requests go ("registry-1.docker.io" for
 * Docker Hub, else equal to registry). `tag` and `digest` may both be set; the digest wins for
 * fetching. All strings are owned by the struct.
 */
typedef struct berth_oci_ref {
    char *registry;   /* "127.0.0.1:5000", "docker.io" */
    char *api_host;   /* "127.0.0.1:5000", "registry-1.docker.io" */
    char *repository; /* "library/alpine", "berth/app" */
    char *tag;        /* "v1" or NULL */
    char *digest;     /* "sha256:<hex>" or NULL */
} berth_oci_ref;

/**
 * Parse a docker reference, with or without the "oci://" prefix (Flux's URL form). Without a tag
 * or digest the tag is NULL (callers choose a default such as "latest"). Errors are BERTH_EINVAL
 * with a message naming the part at fault ("invalid tag ... in reference ...").
 */
BERTH_EXTERN int berth_oci_ref_parse(berth_oci_ref *out, const char *text, berth_error **err);
BERTH_EXTERN void berth_oci_ref_dispose(berth_oci_ref *r);
/** Deep copy. */
BERTH_EXTERN int berth_oci_ref_copy(berth_oci_ref *out, const berth_oci_ref *src,
                                    berth_error **err);
/** "registry/repository[:tag][@digest]" (heap, free()). NULL on OOM. */
BERTH_EXTERN char *berth_oci_ref_string(const berth_oci_ref *r);
/** The reference to fetch by: "digest" if set, else "tag", else "latest". Borrowed. */
BERTH_EXTERN const char *berth_oci_ref_target(const berth_oci_ref *r);
/** Replace tag (NULL clears) and digest (NULL clears) with copies. */
BERTH_EXTERN int berth_oci_ref_set(berth_oci_ref *r, const char *tag, const char *digest);
/** True when s is a valid "sha256:<64 lowercase hex>" (or other grammatical algorithm) digest. */
BERTH_EXTERN bool berth_oci_digest_is_valid(const char *s);
/** True when the tag matches [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
BERTH_EXTERN bool berth_oci_tag_is_valid(const char *s);

/* ---------------------------------------------------------------- descriptors, manifests */
typedef struct berth_kv {
    char *key;
    char *value;
} berth_kv;

typedef struct berth_oci_desc {
    char *media_type;
    char *digest;
    int64_t size;
    char *artifact_type;   /* or NULL */
    berth_kv *annotations; /* sorted by key */
    size_t annotations_len;
    char *platform_os; /* index children only, or NULL */
    char *platform_arch;
} berth_oci_desc;

/** A parsed manifest or index (the raw bytes stay the source of truth for digests). */
typedef struct berth_oci_manifest {
    char *media_type;       /* from the document, else from Content-Type */
    char *artifact_type;    /* or NULL */
    bool is_index;          /* OCI index or Docker manifest list */
    berth_oci_desc config;  /* manifests only */
    berth_oci_desc *layers; /* manifests: layers; indexes: manifests */
    size_t layers_len;
    berth_oci_desc *subject; /* or NULL */
    berth_kv *annotations;
    size_t annotations_len;
} berth_oci_manifest;

/**
 * Parse manifest/index JSON (at most 4 MiB). content_type may be NULL; when both the document's
 * mediaType and content_type are present they must agree. Docker schema1 is refused.
 */
BERTH_EXTERN int berth_oci_manifest_parse(berth_oci_manifest *out, const void *data, size_t len,
                                          const char *content_type, berth_error **err);
BERTH_EXTERN void berth_oci_manifest_dispose(berth_oci_manifest *m);
BERTH_EXTERN void berth_oci_desc_dispose(berth_oci_desc *d);
BERTH_EXTERN int berth_oci_desc_copy(berth_oci_desc *out, const berth_oci_desc *src,
                                     berth_error **err);
/** Annotation value by key, borrowed, or NULL. */
BERTH_EXTERN const char *berth_kv_get(const berth_kv *kv, size_t n, const char *key);

/* ---------------------------------------------------------------- the registry client */
typedef struct berth_oci_client berth_oci_client;

/** Progress of a transfer: done and total bytes (total -1 if unknown). */
typedef void (*berth_progress_fn)(void *payload, const char *what, int64_t done, int64_t total);

typedef struct berth_oci_client_opts {
    unsigned int version;
    const char *creds;          /* "user:pass" (basic) or a lone token (bearer), or NULL */
    const char *docker_config;  /* config.json path; NULL: $DOCKER_CONFIG, ~/.docker, ... */
    const char *ca_file;        /* extra CA (PEM) */
    const char *cert_file;      /* mTLS client certificate */
    const char *key_file;       /* mTLS client key */
    bool insecure;              /* allow plain HTTP for non-loopback hosts and skip TLS verify */
    int max_retries;            /* retries of idempotent requests; 0: default 5 */
    int64_t retry_base_ms;      /* first backoff; 0: default 250 ms */
    int64_t chunk_size;         /* blobs larger than this go in chunked PATCHes of this size;
                                   0: 128 MiB; <0: never chunk */
    berth_progress_fn progress; /* or NULL */
    void *progress_payload;
    const char *user_agent; /* NULL: "berth/<version>" */
    bool debug;             /* trace HTTP exchanges to stderr, secrets redacted */
    /* a budget for everything the client sends, counted from berth_oci_client_new: requests,
     * token fetches, retries and their backoff; past it requests fail with BERTH_ETIMEOUT and
     * are not retried. 0: no budget (each transfer still has the low-speed limit) */
    int64_t timeout_ms;
} berth_oci_client_opts;
#define BERTH_OCI_CLIENT_OPTS_VERSION 1
#define BERTH_OCI_CLIENT_OPTS_INIT                                                                 \
    {                                                                                              \
        .version = BERTH_OCI_CLIENT_OPTS_VERSION                                                   \
    }

BERTH_EXTERN int berth_oci_client_new(berth_oci_client **out, const berth_oci_client_opts *opts,
                                      berth_error **err);
BERTH_EXTERN void berth_oci_client_free(berth_oci_client *c);
/**
 * Start a new time budget of timeout_ms (0: none) from now, as opts.timeout_ms does at creation:
 * a client kept across operations (the engine's workers reuse theirs) gets a fresh budget for
 * each one instead of a clock that kept running since it was made.
 */
BERTH_EXTERN void berth_oci_client_restart_budget(berth_oci_client *c, int64_t timeout_ms);

/** A fetched manifest: its exact bytes, media type and digest. */
typedef struct berth_oci_blob {
    char *data;
    size_t len;
    char *media_type;
    char *digest;
} berth_oci_blob;
BERTH_EXTERN void berth_oci_blob_dispose(berth_oci_blob *b);

/**
 * GET a manifest or index by the ref's digest (else tag, else "latest") with the full Accept
 * list. Verifies the digest of the body (by-digest fetches and Docker-Content-Digest).
 * BERTH_ENOTFOUND names the reference when the registry does not know it.
 */
BERTH_EXTERN int berth_oci_manifest_get(berth_oci_blob *out, berth_oci_client *c,
                                        const berth_oci_ref *ref, berth_error **err);
/** HEAD a manifest: its digest (heap) and media type (heap, may be NULL). Falls back to GET
 * when the registry gives no Docker-Content-Digest. */
BERTH_EXTERN int berth_oci_manifest_head(char **digest_out, char **media_type_out,
                                         berth_oci_client *c, const berth_oci_ref *ref,
                                         berth_error **err);
/** PUT manifest bytes under ref's tag (or digest when no tag). *digest_out (heap) is the local
 * digest; a differing Docker-Content-Digest is an error. digest_out may be NULL. */
BERTH_EXTERN int berth_oci_manifest_put(char **digest_out, berth_oci_client *c,
                                        const berth_oci_ref *ref, const char *media_type,
                                        const void *data, size_t len, berth_error **err);
/** DELETE the manifest named by ref (digest or tag). */
BERTH_EXTERN int berth_oci_manifest_delete(berth_oci_client *c, const berth_oci_ref *ref,
                                           berth_error **err);

/** HEAD a blob: *exists_out set; 404 is not an error. */
BERTH_EXTERN int berth_oci_blob_exists(bool *exists_out, berth_oci_client *c,
                                       const berth_oci_ref *repo, const char *digest,
                                       berth_error **err);
/** Streaming sink for blob bytes; return 0 or a negative code to abort. */
typedef int (*berth_oci_sink_fn)(void *payload, const void *data, size_t len);
/**
 * Download a blob into sink, verifying size and sha256 as it streams; after a dropped
 * connection it resumes with Range from the last byte received. The sink sees each byte once,
 * in order. On BERTH_EVERIFY the sink has seen bad bytes: the caller must discard them.
 * size < 0 means unknown.
 */
BERTH_EXTERN int berth_oci_blob_get(berth_oci_client *c, const berth_oci_ref *repo,
                                    const char *digest, int64_t size, berth_oci_sink_fn sink,
                                    void *payload, berth_error **err);
/** Download a small blob (at most max_bytes) into memory, verified. */
BERTH_EXTERN int berth_oci_blob_get_mem(berth_buf *out, berth_oci_client *c,
                                        const berth_oci_ref *repo, const char *digest,
                                        size_t max_bytes, berth_error **err);

/** Where the bytes of a blob upload come from: memory, or a file (path). */
typedef struct berth_oci_upload {
    const char *digest; /* "sha256:<hex>", computed by the caller */
    int64_t size;
    const void *data;       /* in memory, or NULL */
    const char *path;       /* a file holding exactly the blob, or NULL */
    const char *mount_from; /* repository on the same registry to mount from, or NULL */
} berth_oci_upload;
/**
 * Upload blobs concurrently on one multi handle: HEAD to skip existing ones, cross-repository
 * mount when mount_from is set, else POST + PUT, or chunked PATCHes for blobs larger than
 * opts.chunk_size.
 * *skipped_out (may be NULL) counts blobs that were already present.
 */
BERTH_EXTERN int berth_oci_blobs_push(berth_oci_client *c, const berth_oci_ref *repo,
                                      const berth_oci_upload *blobs, size_t n, size_t *skipped_out,
                                      berth_error **err);
/** DELETE a blob. */
BERTH_EXTERN int berth_oci_blob_delete(berth_oci_client *c, const berth_oci_ref *repo,
                                       const char *digest, berth_error **err);

/** All tags of repo's repository, following Link pagination (pages of page_size; 0: 1000).
 * *tags_out is a heap array of heap strings: free with berth_strv_free. */
BERTH_EXTERN int berth_oci_tags_list(char ***tags_out, size_t *n_out, berth_oci_client *c,
                                     const berth_oci_ref *repo, int page_size, berth_error **err);
BERTH_EXTERN void berth_strv_free(char **v, size_t n);

/**
 * Referrers of subject_digest: the referrers API, or the "sha256-<hex>" tag index when the
 * registry answers 404 (unsupported). artifact_type filters when non-NULL. *used_fallback_out
 * (may be NULL) says which way was used.
 */
BERTH_EXTERN int berth_oci_referrers(berth_oci_desc **descs_out, size_t *n_out,
                                     bool *used_fallback_out, berth_oci_client *c,
                                     const berth_oci_ref *repo, const char *subject_digest,
                                     const char *artifact_type, berth_error **err);
/**
 * After pushing a manifest that has a subject to a registry without the referrers API: add
 * `desc` to the "sha256-<hex>" index of the subject (creating it), skipping duplicates.
 */
BERTH_EXTERN int berth_oci_referrers_tag_add(berth_oci_client *c, const berth_oci_ref *repo,
                                             const char *subject_digest, const berth_oci_desc *desc,
                                             berth_error **err);
/** The fallback tag for a digest: "sha256-<hex>" (heap). */
BERTH_EXTERN char *berth_oci_referrers_tag(const char *digest);

#ifdef __cplusplus
}
#endif
#endif
