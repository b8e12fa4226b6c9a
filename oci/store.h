/*
 * oci/store.h: the content stores berth_copy moves manifests and blobs between (not public).
 *
 * Design: a store is a vtable over one place that holds OCI content: a repository in a registry
 * (over berth_oci_client), an OCI image layout directory, or an OCI archive (a tar of a layout,
 * extracted to a temporary layout on open and re-packed by commit). berth_copy only speaks this
 * vtable, so every pair of locations is one algorithm. Every read from a store is verified
 * against its digest; writes are by digest and never change bytes. A store is used by one thread.
 */
#ifndef BERTH_OCI_STORE_H
#define BERTH_OCI_STORE_H

#include <berth/copy.h>
#include <berth/oci.h>

typedef struct oci_store oci_store;

/** How put_manifest records a manifest. */
typedef enum {
    OCI_PUT_CHILD = 0, /* content only (by digest): a child of an index, not named */
    OCI_PUT_ROOT = 1,  /* named: by tag, or (layouts) an untagged entry in index.json */
} oci_put_mode;

typedef struct oci_store_ops {
    /* The root manifest named by ref (a tag or a digest); NULL: the location's own tag or digest,
     * else the store default ("latest" for registries, the only manifest for layouts). */
    int (*resolve)(oci_store *s, const char *ref, berth_oci_blob *out, berth_error **err);
    /* A manifest or index by digest, verified; media_type is always set. */
    int (*get_manifest)(oci_store *s, const char *digest, berth_oci_blob *out, berth_error **err);
    /* Store manifest bytes verbatim; digest is the sha256 of data. tag may be NULL. */
    int (*put_manifest)(oci_store *s, const char *media_type, const char *digest, const void *data,
                        size_t len, const char *tag, oci_put_mode mode, berth_error **err);
    /* *out true when the blob is present (size < 0: unknown size). */
    int (*blob_exists)(oci_store *s, const char *digest, int64_t size, bool *out,
                       berth_error **err);
    /* *out true when the manifest is present by digest; may be NULL (no cheap check: copy it). */
    int (*manifest_exists)(oci_store *s, const char *digest, bool *out, berth_error **err);
    /* Stream a blob into sink, verified: BERTH_EVERIFY (digest and location named) when the
     * bytes do not hash to digest, in which case the sink has seen bad bytes. */
    int (*get_blob)(oci_store *s, const char *digest, int64_t size, berth_oci_sink_fn sink,
                    void *payload, berth_error **err);
    /* Store a blob from a file holding exactly its bytes (already verified by the caller). */
    int (*put_blob)(oci_store *s, const char *digest, int64_t size, const char *path,
                    berth_error **err);
    /* Every tag (heap array of heap strings, berth_strv_free). */
    int (*list_tags)(oci_store *s, char ***tags_out, size_t *n_out, berth_error **err);
    /* Descriptors of manifests whose subject is digest (heap array; free each with
     * berth_oci_desc_dispose, then core_free). */
    int (*referrers)(oci_store *s, const char *subject, berth_oci_desc **descs_out, size_t *n_out,
                     berth_error **err);
    /* Record that desc (already stored) refers to subject, so referrers() finds it here. */
    int (*add_referrer)(oci_store *s, const char *subject, const berth_oci_desc *desc,
                        berth_error **err);
    /* Make the writes durable and visible (archives: write the tar). */
    int (*commit)(oci_store *s, berth_error **err);
    /* Free the store and anything temporary it made. Accepts NULL. */
    void (*close)(oci_store *s);
} oci_store_ops;

struct oci_store {
    const oci_store_ops *ops;
    char *name;   /* "oci-layout:DIR", "oci-archive:FILE", "REG/REPO": for messages */
    char *tag;    /* tag from the location, or NULL */
    char *digest; /* digest from the location, or NULL */
};

/**
 * Open the OCI image layout in dir. With create, a missing layout is created (oci-layout,
 * index.json, blobs/sha256); without it a directory that is not a layout is BERTH_ENOTFOUND.
 * tag (may be NULL) is kept in the store as the location's tag.
 */
int oci_layout_open(oci_store **out, const char *dir, const char *tag, bool create,
                    berth_error **err);

/**
 * Open the OCI archive file. An existing archive is extracted (safely) to a temporary layout;
 * with create a missing one starts empty. commit() writes the layout back to file (entries in
 * lexical order, mtime 0) through a temp file and rename; close() removes the temporary layout.
 */
int oci_archive_open(oci_store **out, const char *file, const char *tag, bool create,
                     berth_error **err);

/**
 * Open a location string (oci://, docker://, oci-layout:, oci-archive:) as a store; is_dst
 * creates missing layouts and archives. client (borrowed, may be NULL) serves a registry.
 */
int oci_location_open(oci_store **out, const char *loc, bool is_dst, berth_oci_client *client,
                      berth_error **err);

/**
 * Copy the manifest src resolves src_want to (NULL: the store's own tag, digest or default),
 * with its whole graph and (unless opts->skip_signatures) its companions, into dst, tagging the
 * root last under dst_tag. With dst_tag NULL and tag_from_src, the tag is dst's own, else (dst
 * has no digest) src's. Manifests and blobs dst already holds are not sent again. Does not
 * commit dst. *out is filled on success.
 */
int oci_copy_graph(berth_copy_result *out, oci_store *src, const char *src_want, oci_store *dst,
                   const char *dst_tag, bool tag_from_src, const berth_copy_opts *opts,
                   berth_error **err);

/** Extract the OCI archive file into the existing directory dir (paths checked). */
int oci_archive_extract(const char *file, const char *dir, berth_error **err);
/** Write the layout in dir as an OCI archive to file (lexical order, mtime 0, temp + rename). */
int oci_archive_pack(const char *dir, const char *file, berth_error **err);
/** Is tag a cosign companion or referrers fallback tag ("sha256-<hex>[.sig|.att|.sbom]")? */
bool oci_store_is_companion_tag(const char *tag);

/** Close a store (NULL accepted). */
void oci_store_close(oci_store *s);

/* ---- index.json (exposed for the fuzz target and tests) ---- */
typedef struct oci_layout_entry {
    char *media_type;
    char *digest;
    int64_t size;
    char *ref_name; /* org.opencontainers.image.ref.name, or NULL */
} oci_layout_entry;

typedef struct oci_layout_index {
    oci_layout_entry *v;
    size_t n;
} oci_layout_index;

/** Parse index.json bytes (at most 4 MiB): BERTH_EINVAL naming the field at fault. Unknown
 * fields and media types are accepted. */
int oci_layout_index_parse(oci_layout_index *out, const void *data, size_t len, berth_error **err);
void oci_layout_index_dispose(oci_layout_index *ix);

/** "sha256-<hex>" for "sha256:<hex>" (heap), the referrers fallback tag; NULL on OOM. */
char *oci_store_digest_tag(const char *digest);

#endif
