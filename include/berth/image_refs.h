/*
 * berth/image_refs.h: the container images a deployment directory refers to (berth images
 * list-refs), so that a mirror list (berth copy --from-list) can carry them along with the
 * artifacts. The directory is built exactly as a Kustomization builds it (kustomize subset,
 * images transformer included; Flux's generated kustomization when there is no
 * kustomization.yaml), then every `image:` key at any depth of the built objects is read.
 */
#ifndef BERTH_IMAGE_REFS_H
#define BERTH_IMAGE_REFS_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One image reference and the objects ("Kind/namespace/name" or "Kind/name") naming it. */
typedef struct berth_image_ref {
    char *image;
    char **objects; /* in build order, each once */
    size_t n_objects;
} berth_image_ref;

/**
 * Build the directory path (relative to root_dir; "" or "." is root_dir itself, and files are
 * read only inside root_dir) and list the unique image references found in the built objects,
 * sorted bytewise. An `image:` key counts when its value is a non-empty string, or an object
 * with a string `reference` (image volumes). *out is a heap array (berth_image_refs_free).
 * Returns 0 or what the build returns: BERTH_ENOTFOUND, BERTH_EINVAL (messages name the file),
 * BERTH_EUNSUPPORTED, BERTH_EIO, BERTH_ENOMEM. Thread-safe; reads the file system only.
 */
BERTH_EXTERN int berth_images_list_refs(berth_image_ref **out, size_t *n_out, const char *root_dir,
                                        const char *path, berth_error **err);
BERTH_EXTERN void berth_image_refs_free(berth_image_ref *v, size_t n);

#ifdef __cplusplus
}
#endif
#endif
