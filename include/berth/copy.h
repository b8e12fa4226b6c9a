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
    char digest[72];      /* digest of the root manifest */
    size_t manifests;     /* manifests and indexes copied (root, children, signatures) */
    size_t blobs;         /* blobs written */
    size_t blobs_skipped; /* blobs already present at the destination */
    size_t signatures;    /* signature/attestation/referrer manifests carried along */
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

#ifdef __cplusplus
}
#endif
#endif
