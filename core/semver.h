/*
 * core/semver.h: semantic versions and Masterminds (v3) constraints, as Flux uses them to pick
 * tags (OCIRepository ref.semver, `flux list artifacts --filter-semver`, image policies).
 * Internal to libberth. Thread-safe: no shared state; a parsed constraint may be checked from
 * several threads at once.
 */
#ifndef BERTH_CORE_SEMVER_H
#define BERTH_CORE_SEMVER_H

#include <stdbool.h>
#include <stdint.h>

#include <berth/error.h>

/** A parsed version. All strings are heap strings owned by the struct. */
typedef struct core_semver {
    uint64_t major;
    uint64_t minor;
    uint64_t patch;
    char *pre;      /* pre-release without the '-', or NULL */
    char *build;    /* build metadata without the '+', or NULL */
    char *original; /* the text as given, "v1.2.3" */
} core_semver;

/**
 * Parse s the way Masterminds' NewVersion does (loose): an optional "v", major[.minor[.patch]]
 * (missing parts are 0, leading zeros allowed), then an optional "-pre-release" (numeric
 * identifiers without leading zeros) and "+build". With strict, s must also have at least two
 * dots, as Flux's version.ParseVersion demands before it calls NewVersion: "1.2" is refused, while
 * "1.2.3" and "1.2-rc.1" are accepted. Returns 0 or BERTH_EINVAL (message quotes s); *out is
 * zeroed on failure.
 */
int core_semver_parse(core_semver *out, const char *s, bool strict, berth_error **err);
/** Free the strings and zero the struct. Accepts NULL. */
void core_semver_dispose(core_semver *v);
/**
 * Precedence per SemVer 2.0 section 11: -1, 0 or 1. Build metadata is ignored, so two versions
 * that differ only in it compare equal.
 */
int core_semver_compare(const core_semver *a, const core_semver *b);

/** A parsed constraint: OR groups of AND-ed comparators. */
typedef struct core_semver_constraint core_semver_constraint;

/**
 * Parse a Masterminds v3 constraint: operators = (or none) != > < >= <= => =< ~ ~> ^, wildcards
 * x X * ("1.2.x", "*"), hyphen ranges "1.2 - 1.4.5", AND by spaces or commas, OR by "||".
 * *out is the caller's (core_semver_constraint_free). Returns 0, BERTH_EINVAL (message quotes the
 * constraint) or BERTH_ENOMEM.
 */
int core_semver_constraint_parse(core_semver_constraint **out, const char *s, berth_error **err);
/**
 * True when v satisfies c. As in Masterminds v3.4, a pre-release version can satisfy an AND
 * group only if one of that group's comparators carries a pre-release itself (">=1.0.0-0").
 */
bool core_semver_constraint_check(const core_semver_constraint *c, const core_semver *v);
/** The constraint text as given; borrowed. */
const char *core_semver_constraint_string(const core_semver_constraint *c);
void core_semver_constraint_free(core_semver_constraint *c);

#endif
