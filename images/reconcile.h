/*
 * images/reconcile.h: the reconcilers of the image.toolkit.fluxcd.io kinds (internal, prefix
 * img_), run as jobs on the engine loop's worker threads (engine/loop.c, engine/sched.c):
 *
 *   ImageRepository        scan the tags into STATE/images/<ns>/<name>/tags
 *   ImagePolicy            choose the latest tag from that file (images/policy.h)
 *   ImageUpdateAutomation  rewrite the source's marked fields (images/setters.h) and publish
 *                          the result as a signed artifact (berth's spec.publish)
 *
 * Same contract as the engine's reconcilers: object failures go into the status (*ready_out
 * false); the return is 0, or a negative code when the state directory could not be written or
 * memory ran out. ctx->changed is set when the object produced something new for its consumers
 * (new tags, a new latest reference, a published artifact).
 */
#ifndef BERTH_IMAGES_RECONCILE_H
#define BERTH_IMAGES_RECONCILE_H

#include "engine/internal.h"

#define IMG_KIND_REPO "ImageRepository"
#define IMG_KIND_POLICY "ImagePolicy"
#define IMG_KIND_UPDATE "ImageUpdateAutomation"

int img_repo_reconcile(eng_ctx *ctx, const eng_imagerepo *repo, bool *ready_out, berth_error **err);
int img_policy_reconcile(eng_ctx *ctx, const eng_imagepolicy *pol, bool *ready_out,
                         berth_error **err);
int img_update_reconcile(eng_ctx *ctx, const eng_imageupdate *upd, bool *ready_out,
                         berth_error **err);

/**
 * Dispatch on kind (one of the three above) with obj the matching config struct; *interval_out
 * is the object's interval (an ImagePolicy without one uses its repository's). Returns what the
 * reconciler returns, BERTH_EINVAL for another kind.
 */
int img_reconcile(eng_ctx *ctx, const char *kind, const void *obj, bool *ready_out,
                  int64_t *interval_out, berth_error **err);

/** The metadata of obj of kind (one of the three kinds), or NULL for another kind. */
const eng_meta *img_meta(const char *kind, const void *obj);

/**
 * Whether a new output of producer (pkind, pobj: an OCIRepository, or one of the three kinds)
 * should make consumer (kind, obj) due now: a policy after its repository, an automation after
 * the policies of its namespace and after its source, an OCIRepository after an automation that
 * publishes to its URL.
 */
bool img_consumes(const char *kind, const void *obj, const char *pkind, const void *pobj);

/** The ImagePolicy spec of the config struct (strings borrowed from pol). */
struct img_policy_spec;
void img_policy_spec_of(struct img_policy_spec *out, const eng_imagepolicy *pol);

#endif
