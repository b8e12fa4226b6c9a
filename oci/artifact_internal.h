/*
 * oci/artifact_internal.h: what the artifact files (artifact_build.c, extract.c, artifact.c)
 * share beyond include/berth/artifact.h. Internal to oci/.
 */
#ifndef BERTH_OCI_ARTIFACT_INTERNAL_H
#define BERTH_OCI_ARTIFACT_INTERNAL_H

#include <berth/artifact.h>

#include "core/core.h"

/**
 * berth_artifact_build with a durability switch: when durable, the output is fsynced before the
 * rename and its directory after (the public build); push and diff write into a private temp
 * directory that is deleted afterwards, so they skip both.
 */
int oci_artifact_build(berth_artifact_layer *out, const char *path, const char *out_file,
                       const berth_artifact_build_opts *opts, bool durable, berth_error **err);

/**
 * berth_extractor_new with the diff_id optional: when want_diff_id is false the tar stream is
 * not hashed (a pull has no use for it) and berth_extractor_finish leaves diff_id_out as "".
 */
int oci_extractor_new(berth_extractor **out, const char *dir, const berth_extract_opts *opts,
                      bool want_diff_id, berth_error **err);

/** One entry of a tar listing (diff). */
typedef struct oci_tar_item {
    char *path;    /* normalised: no "./" prefix, no trailing '/'; the root is skipped */
    char type;     /* 'f' regular file, 'd' directory, 'l' symlink, 'o' other */
    unsigned mode; /* permission bits (07777) */
    int64_t size;
    char sha256[65]; /* content hash of regular files, else "" */
    size_t seq;      /* position in the archive */
} oci_tar_item;

/**
 * List a .tar.gz (or plain tar) file: every entry with its content hash, sorted by path; a
 * later entry of the same path replaces an earlier one (tar semantics). *items_out is a heap
 * array; free with oci_tar_items_free.
 */
int oci_tar_list_file(oci_tar_item **items_out, size_t *n_out, const char *file, berth_error **err);
void oci_tar_items_free(oci_tar_item *items, size_t n);

/** Strip leading "./" (repeatedly) and trailing '/' from an archive path into a heap string;
 * "" for the root. NULL on OOM. */
char *oci_tar_clean_path(const char *name);

#endif
