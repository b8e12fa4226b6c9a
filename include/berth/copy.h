/*
 * berth/copy.h: copy artifacts (and their signatures) between registries, OCI image layouts and
 * OCI archives: the air-gap path (registry -> file -> registry in the disconnected site).
 *
 * Locations are written as skopeo users know them:
 *   oci://REG/REPO[:TAG|@DIGEST]  (also docker://)   a registry
 *   oci-layout:DIR[:TAG]                             an OCI image layout directory
 *   oci-archive:FILE.tar[:TAG]                       a tar of an OCI image layout
 * Every byte copied is verified against its digest; digests never change.
 */
#ifndef BERTH_COPY_H
#define BERTH_COPY_H

#include "common.h"
#include "error.h"
#include "oci.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_copy_opts {
    unsigned int version;
    berth_oci_client *src_client; /* for a registry source (borrowed) */
    berth_oci_client *dst_client; /* for a registry destination (borrowed) */
    bool skip_signatures;         /* do not copy .sig/.att/.sbom tags and referrers */
    berth_progress_fn progress;
    void *progress_payload;
} berth_copy_opts;
#define BERTH_COPY_OPTS_VERSION 1
#define BERTH_COPY_OPTS_INIT                                                                       \
    {                                                                                              \
        .version = BERTH_COPY_OPTS_VERSION                                                         \
    }

typedef struct berth_copy_result {
    char digest[72];          /* digest of the root manifest */
    size_t manifests;         /* manifests and indexes copied (root, children, signatures) */
    size_t blobs;             /* blobs written */
    size_t blobs_skipped;     /* blobs already present at the destination */
    size_t signatures;        /* signature/attestation/referrer manifests carried along */
    size_t manifests_skipped; /* child manifests already present at the destination (HEAD) */
} berth_copy_result;

/**
 * Copy src to dst (location strings as above) with every manifest it reaches: all children of an
 * index, then (unless opts->skip_signatures) the cosign "sha256-<hex>.sig|.att|.sbom" tags and
 * the referrers of every manifest copied, recursively. Bytes are copied verbatim and verified
 * against their digests; blobs already at dst are skipped. The root is tagged last (dst's tag,
 * else src's tag), so a failure leaves nothing new under that tag; an oci-archive destination
 * is written only on success (an existing archive is extended, its other tags kept). A layout
 * source without a tag must hold exactly one manifest (companions and referrers aside).
 * opts may be NULL; clients in opts are borrowed, and a default client is made for a registry
 * side without one. *out is filled on success. Returns 0, BERTH_EINVAL (unknown location form:
 * the message lists the accepted ones), BERTH_ENOTFOUND (tag, layout, archive or content
 * missing), BERTH_EVERIFY (content does not hash to its digest: the message names the digest
 * and the location), or what the registry client returns. Thread-safe as long as the clients
 * are not used by another thread meanwhile.
 */
BERTH_EXTERN int berth_copy(berth_copy_result *out, const char *src, const char *dst,
                            const berth_copy_opts *opts, berth_error **err);

/* ---------------------------------------------------------------- many references at once */

/**
 * Parse a copy list: one reference per line (registry references, or for an archive/layout
 * source the names it holds), "#" starts a comment (whole line or after blanks), blank lines
 * are skipped, surrounding blanks trimmed; an "oci://" or "docker://" prefix is dropped. A
 * line that is not a reference is BERTH_EINVAL naming "name:line". Duplicates are kept once,
 * in first-seen order. *refs_out is a heap array of heap strings (berth_strv_free). name is
 * used in messages only. At most 4 MiB of text and 100,000 references.
 */
BERTH_EXTERN int berth_copy_list_parse(char ***refs_out, size_t *n_out, const void *data,
                                       size_t len, const char *name, berth_error **err);
/** The same for a file (read whole, at most 4 MiB). */
BERTH_EXTERN int berth_copy_list_read(char ***refs_out, size_t *n_out, const char *path,
                                      berth_error **err);

typedef enum {
    BERTH_COPY_ITEM_COPIED = 0, /* copied in this run */
    BERTH_COPY_ITEM_RESUMED,    /* done by an earlier, interrupted run (journal) */
    BERTH_COPY_ITEM_FAILED,     /* error holds why */
} berth_copy_item_status;

typedef struct berth_copy_item {
    char *source;      /* as listed (registry reference or archive/layout name) */
    char *destination; /* location written: "REG/REPO:TAG" or "oci-archive:FILE:NAME" */
    berth_copy_item_status status;
    berth_copy_result result; /* COPIED: counts and digest; RESUMED: digest only */
    berth_error *error;       /* FAILED: the chain (owned by the list) */
} berth_copy_item;

typedef struct berth_copy_list_opts {
    unsigned int version;
    berth_copy_opts copy;    /* clients (src for registry sources, dst for registry destinations),
                                skip_signatures, progress */
    const char *from;        /* "oci-archive:FILE" or "oci-layout:DIR" holding the references;
                                NULL: the references are registry references */
    const char *to_registry; /* "HOST[:PORT][/PREFIX]": each REG/PATH:TAG goes to
                                HOST/PREFIX/PATH:TAG; or NULL */
    const char *to;          /* "oci-archive:FILE" or "oci-layout:DIR": each reference is stored
                                under its full name; exactly one of to_registry and to */
    const char *state_file;  /* progress journal; NULL: beside the destination (archive, layout)
                                or beside list_file (registry destination) */
    const char *list_file;   /* the list's path, for the default journal; may be NULL */
    void (*on_item)(void *payload, const berth_copy_item *item); /* after each reference */
    void *payload;
} berth_copy_list_opts;
#define BERTH_COPY_LIST_OPTS_VERSION 1

typedef struct berth_copy_list {
    berth_copy_item *items; /* one per reference, in list order */
    size_t n;
    size_t copied, resumed, failed;
    char *state_file; /* the journal used; it is removed when every reference succeeded */
} berth_copy_list;

/**
 * Copy every reference of refs (from the registry, or from opts->from) to opts->to_registry or
 * opts->to, signatures included as berth_copy does, and go on after a failed reference. With
 * refs NULL and opts->from set, every name opts->from holds is copied (companion tags aside).
 * Resumable: after each reference a journal (written atomically) records it; a rerun with the
 * same destination skips recorded references (RESUMED) and skips blobs and manifests the
 * destination holds already. An archive destination is assembled in "FILE.berth-partial/"
 * and written (temp + rename) only when every reference succeeded; then the journal and the
 * staging directory are removed. Returns 0 when the run took place (out->failed counts failed
 * references: see each item's error), or before anything is copied BERTH_EINVAL (bad
 * destination, two references mapped to one destination, a journal of another destination),
 * BERTH_ENOTFOUND (the source archive/layout missing), or a failure writing the archive.
 * out is filled (and must be disposed) in both cases.
 */
BERTH_EXTERN int berth_copy_list_run(berth_copy_list *out, char *const *refs, size_t n_refs,
                                     const berth_copy_list_opts *opts, berth_error **err);
BERTH_EXTERN void berth_copy_list_dispose(berth_copy_list *l);

#ifdef __cplusplus
}
#endif
#endif
