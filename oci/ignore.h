/*
 * oci/ignore.h: Flux's --ignore-paths matcher (the go-git gitignore subset, spec §1.4).
 * Internal to oci/.
 */
#ifndef BERTH_OCI_IGNORE_H
#define BERTH_OCI_IGNORE_H

#include "core/core.h"

typedef struct oci_ignore oci_ignore;

/**
 * Compile a comma-separated pattern list (NULL: BERTH_ARTIFACT_DEFAULT_IGNORE). Empty items and
 * items starting with '#' are skipped, as Flux does. Returns 0 or BERTH_ENOMEM.
 */
int oci_ignore_new(oci_ignore **out, const char *patterns, berth_error **err);
/** Compile an array of individual patterns (no comma splitting). */
int oci_ignore_new_list(oci_ignore **out, const char *const *patterns, size_t n, berth_error **err);
/**
 * True when rel ("a/b/c.yaml", '/'-separated, relative to the archive root, not "." or empty)
 * is excluded. Patterns are tried last to first and the first that matches decides.
 */
bool oci_ignore_match(const oci_ignore *ig, const char *rel, bool is_dir);
/** True when some pattern starts with '!' (a child of an excluded directory may come back). */
bool oci_ignore_has_negation(const oci_ignore *ig);
void oci_ignore_free(oci_ignore *ig);

/**
 * Go's filepath.Match on one path component: '*', '?', '[...]' with ranges and '^' negation,
 * '\\' escapes; '*' and '?' never match '/'. A malformed pattern matches nothing.
 */
bool oci_glob_match(const char *pattern, const char *name);

#endif
