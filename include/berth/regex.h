/*
 * berth/regex.h: regular expressions with RE2 syntax and semantics (what Flux's Go regexp
 * accepts), for tag filters such as `list artifacts --filter-regex`.
 *
 * Patterns are UTF-8. Matching is an unanchored search (use ^ and $ to anchor); `$` matches only
 * at the very end of the text, as in RE2. Constructs RE2 refuses because they need backtracking
 * (backreferences, lookahead/lookbehind, atomic groups, possessive quantifiers, recursion,
 * conditionals, backtracking verbs) are refused here too, so a pattern that works in berth works
 * in Flux. Thread safety: a compiled berth_regex is read-only and may be shared by threads.
 */
#ifndef BERTH_REGEX_H
#define BERTH_REGEX_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_regex berth_regex;

/**
 * Compile pattern into *out (free with berth_regex_free). Returns 0, BERTH_ENOMEM, or
 * BERTH_EINVAL with a message quoting the pattern and the offset of the problem.
 */
BERTH_EXTERN int berth_regex_compile(berth_regex **out, const char *pattern, berth_error **err);

/**
 * Search text for a match anywhere. *matched_out is set. Returns 0, BERTH_ENOMEM, or
 * BERTH_ERROR when the match gives up (resource limit), with a message naming the pattern.
 */
BERTH_EXTERN int berth_regex_match(bool *matched_out, const berth_regex *re, const char *text,
                                   berth_error **err);

/** Free a compiled pattern. Accepts NULL. */
BERTH_EXTERN void berth_regex_free(berth_regex *re);

#ifdef __cplusplus
}
#endif
#endif
