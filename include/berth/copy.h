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
        BERTH_COPY_OPTS_VERSION                                                                    \
    }

typedef struct berth_copy_result {
    char digest[72];      /* digest of the root manifest */
    size_t manifests;     /* manifests and indexes copied (root, children, signatures) */
    size_t blobs;         /* blobs written */
    size_t blobs_skipped; /* blobs already present at the destination */
    size_t signatures;    /* signature/attestation/referrer manifests carried along */
} berth_copy_result;

/** Copy src to dst (location strings as above). */
BERTH_EXTERN int berth_copy(berth_copy_result *out, const char *src, const char *dst,
                            const berth_copy_opts *opts, berth_error **err);

#ifdef __cplusplus
}
#endif
#endif
