/*
 * images/refs.h: collect the container image references of built objects (internal, prefix
 * img_). Pure: jansson trees in, a sorted set out; no I/O.
 */
#ifndef BERTH_IMAGES_REFS_H
#define BERTH_IMAGES_REFS_H

#include <jansson.h>

#include <berth/error.h>
#include <berth/image_refs.h>

typedef struct img_refs {
    berth_image_ref *v; /* unsorted until img_refs_sort */
    size_t n, cap;
} img_refs;

/**
 * Add every image reference of obj: each `image` key at any depth whose value is a non-empty
 * string, or an object with a non-empty string `reference` (pod image volumes). The object is
 * recorded under each reference as "Kind/namespace/name" ("Kind/name" without a namespace).
 * Returns 0 or BERTH_ENOMEM.
 */
int img_refs_add_object(img_refs *acc, const json_t *obj, berth_error **err);
/** Sort by reference (bytewise). */
void img_refs_sort(img_refs *acc);
/** Hand the array to the caller (*out, *n_out) and empty acc. */
void img_refs_take(berth_image_ref **out, size_t *n_out, img_refs *acc);
void img_refs_dispose(img_refs *acc);

#endif
