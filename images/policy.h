/*
 * images/policy.h: ImagePolicy evaluation (image.toolkit.fluxcd.io/v1), internal to libberth.
 *
 * Given the tags of an ImageRepository, choose the one Flux's image-reflector-controller would
 * choose: optional filterTags (pattern, plus an extract template using named or numbered
 * groups), then one of the semver, alphabetical or numerical policies. Also the ImageRepository
 * exclusion list, applied to tags before they are stored. Offline and pure: no I/O, no clock.
 * Thread safety: a compiled img_policy or img_exclusion is read-only and may be shared by
 * threads; an img_policy_eval belongs to one thread.
 */
#ifndef BERTH_IMAGES_POLICY_H
#define BERTH_IMAGES_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <berth/error.h>

typedef enum {
    IMG_POLICY_SEMVER = 1,   /* spec.policy.semver.range */
    IMG_POLICY_ALPHABETICAL, /* spec.policy.alphabetical.order */
    IMG_POLICY_NUMERICAL,    /* spec.policy.numerical.order */
} img_policy_kind;

typedef enum {
    IMG_ORDER_ASC = 0, /* the default: the highest value wins */
    IMG_ORDER_DESC,    /* the lowest value wins */
} img_order;

/**
 * Parse an order field ("asc" or "desc"; NULL or "" is the default, asc). field names it for
 * the message ("spec.policy.numerical.order"). Returns 0 or BERTH_EINVAL.
 */
int img_order_parse(img_order *out, const char *text, const char *field, berth_error **err);

/** An ImagePolicy spec as read from its manifest. Strings are borrowed for the compile call. */
typedef struct img_policy_spec {
    img_policy_kind kind;
    const char *semver_range;   /* IMG_POLICY_SEMVER: a Masterminds constraint, "1.x" */
    img_order order;            /* IMG_POLICY_ALPHABETICAL and IMG_POLICY_NUMERICAL */
    const char *filter_pattern; /* spec.filterTags.pattern; NULL or "" = every tag */
    const char *filter_extract; /* spec.filterTags.extract ("$ts"); NULL or "" = the tag */
} img_policy_spec;

/** A compiled policy. */
typedef struct img_policy img_policy;

/**
 * Check and compile spec into *out (free with img_policy_free). Returns 0, BERTH_ENOMEM, or
 * BERTH_EINVAL with a message naming the field at fault (spec.policy.semver.range,
 * spec.filterTags.pattern, spec.policy.numerical.order ...) and quoting its value.
 */
int img_policy_compile(img_policy **out, const img_policy_spec *spec, berth_error **err);
void img_policy_free(img_policy *p);

/** The tag a policy chose. Both strings are heap strings owned by the struct. */
typedef struct img_policy_pick {
    char *tag;   /* the tag as in the repository, "main-3f2a1c-1712345678" */
    char *value; /* the value that was ordered: the extracted text, or the tag itself */
} img_policy_pick;

void img_policy_pick_dispose(img_policy_pick *pick);

/**
 * Choose the latest of n tags (none may be NULL). On success out holds the pick. Returns 0;
 * BERTH_ENOTFOUND with "no tag matched policy" when no tag passes the filter or (semver) the
 * range; BERTH_EINVAL when the numerical policy meets a value that is not a number (Flux fails
 * the whole evaluation then: use filterTags to keep such tags out); BERTH_ERROR when a filter
 * match gives up (resource limit); BERTH_ENOMEM.
 *
 * Ties: semver keeps the first of equal versions ("1.0.0+a", "1.0.0+b"), numerical the last of
 * equal numbers, as Flux's loops do; when several tags extract the same value, the last of them
 * is the tag returned (Flux keeps them in a map, the last write wins).
 */
int img_policy_latest(img_policy_pick *out, const img_policy *p, const char *const *tags, size_t n,
                      berth_error **err);

/**
 * Streaming evaluation for tag lists read from the state store in pages: only the current best
 * is kept, so memory does not grow with the number of tags. Same rules as img_policy_latest,
 * which is a loop over img_policy_eval_add.
 */
typedef struct img_policy_eval img_policy_eval;

/** Start an evaluation of p (which must outlive it). */
int img_policy_eval_new(img_policy_eval **out, const img_policy *p, berth_error **err);
/** Offer one tag. Returns 0, BERTH_EINVAL (numerical: not a number), BERTH_ERROR, BERTH_ENOMEM. */
int img_policy_eval_add(img_policy_eval *ev, const char *tag, berth_error **err);
/** The result so far: 0 with *out filled, or BERTH_ENOTFOUND "no tag matched policy". */
int img_policy_eval_result(img_policy_pick *out, const img_policy_eval *ev, berth_error **err);
/** How many tags passed the filter so far (counting repeated extracted values each time). */
size_t img_policy_eval_matched(const img_policy_eval *ev);
void img_policy_eval_free(img_policy_eval *ev);

/* ---- ImageRepository exclusion list ---- */

/** Flux's default spec.exclusionList, plus attestation and SBOM tags, NULL-terminated. */
extern const char *const img_exclusion_defaults[];

typedef struct img_exclusion img_exclusion;

/**
 * Compile an exclusion list. patterns == NULL selects img_exclusion_defaults; an explicit list
 * (even an empty one, n == 0) replaces the defaults, as in Flux. Returns 0, BERTH_ENOMEM, or
 * BERTH_EINVAL naming spec.exclusionList[i] and quoting the pattern.
 */
int img_exclusion_new(img_exclusion **out, const char *const *patterns, size_t n,
                      berth_error **err);
void img_exclusion_free(img_exclusion *x);

/** *excluded_out = tag matches one of the patterns. Returns 0 or what berth_regex_match does. */
int img_exclusion_match(bool *excluded_out, const img_exclusion *x, const char *tag,
                        berth_error **err);

/**
 * Apply the list to tags[0..n) in place: a stable partition that moves the kept tags to the
 * front in their order and the excluded ones after them. *kept_out is the number kept. No
 * pointer changes owner. Returns 0 or an error from img_exclusion_match (tags then unchanged).
 */
int img_exclusion_filter(size_t *kept_out, const img_exclusion *x, const char **tags, size_t n,
                         berth_error **err);

/* ---- helpers shared with images/setters.c ---- */

/**
 * Parse s as Go's strconv.ParseFloat(s, 64) does: decimal or hexadecimal (0x1p-2) literals with
 * optional sign, exponent and '_' digit separators, and "inf", "infinity", "nan" in any case.
 * Returns false on a syntax error or when the value overflows (Go's ErrRange).
 */
bool img_parse_go_float(const char *s, double *out);

#endif
