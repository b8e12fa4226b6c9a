/*
 * berth/semver.h: semantic versions and Masterminds-style constraints, as Flux applies them to
 * tags (`list artifacts --filter-semver`, OCIRepository `ref.semver`; spec oci-artifacts.md 2.3).
 *
 * A tag is a version when it parses as Masterminds does (optional leading "v", missing parts
 * are 0) and, as Flux demands first, has at least two dots: "1.2.3" and "v1.2.3-rc.1" are
 * versions, "1.2" is not. Constraints: =, !=, >, <, >=, <=, AND by comma or space, OR by ||, hyphen
 * ranges, x, X and * wildcards, ~ and ^. Prereleases match only constraints that carry one.
 * Thread safety: a parsed constraint is read-only and may be shared by threads.
 */
#ifndef BERTH_SEMVER_H
#define BERTH_SEMVER_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_semver_constraint berth_semver_constraint;

/**
 * Parse a constraint ("^1.2", ">=1.0.0 <2.0.0 || 3.x") into *out (free with
 * berth_semver_constraint_free). Returns 0, BERTH_ENOMEM, or BERTH_EINVAL with a message
 * quoting the constraint.
 */
BERTH_EXTERN int berth_semver_constraint_parse(berth_semver_constraint **out, const char *text,
                                               berth_error **err);

/** True when tag is a version (see above) and satisfies c. */
BERTH_EXTERN bool berth_semver_constraint_check(const berth_semver_constraint *c, const char *tag);

/** Free a constraint. Accepts NULL. */
BERTH_EXTERN void berth_semver_constraint_free(berth_semver_constraint *c);

/** True when tag is a version (see above). */
BERTH_EXTERN bool berth_semver_is_valid(const char *tag);

/**
 * Order two tags by SemVer 2.0 precedence (build metadata ignored): <0, 0 or >0. A tag that is
 * not a version sorts before every version; two such tags compare as strings (strcmp).
 */
BERTH_EXTERN int berth_semver_compare(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
