/*
 * Regular expressions with RE2 semantics on top of PCRE2 (include/berth/regex.h). Flux filters
 * tags with Go's regexp (RE2 syntax); berth must accept the same patterns and mean the same by
 * them, and must not accept patterns Flux refuses.
 *
 * Design: before PCRE2 sees a pattern, a small scanner walks it (skipping escapes, \Q..\E and
 * character classes) and refuses the constructs RE2 has no equivalent for: backreferences (\1-\9,
 * \g, \k, (?P=name)), lookaround, atomic groups, possessive quantifiers, recursion and
 * subroutine calls, conditionals, callouts, (*VERB)s, and letter escapes Go does not know (\K,
 * \G, \R, \X, \Z, \h ...). What remains is compiled
 * with PCRE2_UTF (patterns are UTF-8), PCRE2_DOLLAR_ENDONLY (RE2's `$` does not match before a
 * final newline) and PCRE2_NEVER_BACKSLASH_C, and subjects may hold invalid UTF-8
 * (PCRE2_MATCH_INVALID_UTF). Matching has backtracking limits, so a pathological pattern fails
 * with an error instead of running for minutes. Compiled code is read-only; match data is made
 * per call, so one berth_regex may be used from several threads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include <berth/regex.h>

#include "core/core.h"

#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u

struct berth_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
    char *pattern;
};

static int refuse(berth_error **err, const char *pattern, size_t at, const char *what)
{
    return core_error_set(err, BERTH_EINVAL,
                          "invalid regular expression \"%s\": %s at offset %zu (not RE2 syntax)",
                          pattern, what, at);
}

/* True when p starts a group flag list such as "i)", "-s:", "im-sU)". */
static bool flag_group(const char *p)
{
    size_t n = strspn(p, "imsU-");
    return n > 0 && (p[n] == ')' || p[n] == ':');
}

/* Check the syntax after "(?" at p (offset at) against what RE2 accepts. */
static int check_group(berth_error **err, const char *pattern, const char *p, size_t at)
{
    if (p[0] == ':' || flag_group(p) || (p[0] == 'P' && p[1] == '<'))
        return 0;
    if (p[0] == '<' && p[1] != '=' && p[1] != '!')
        return 0; /* (?<name>...), accepted by Go since 1.22 */
    if (p[0] == '=' || p[0] == '!' || (p[0] == '<' && (p[1] == '=' || p[1] == '!')))
        return refuse(err, pattern, at, "lookaround");
    if (p[0] == '>')
        return refuse(err, pattern, at, "atomic group");
    if (p[0] == 'P' && p[1] == '=')
        return refuse(err, pattern, at, "backreference");
    if (p[0] == '(')
        return refuse(err, pattern, at, "conditional group");
    return refuse(err, pattern, at, "unsupported group syntax");
}

/* Refuse what RE2 refuses (see the file comment). Returns 0 or BERTH_EINVAL. */
static int check_re2(const char *pattern, berth_error **err)
{
    const char *p = pattern;
    bool quantified = false; /* the previous token was a quantifier */

    while (*p) {
        size_t at = (size_t)(p - pattern);
        bool quant = false;
        if (p[0] == '\\') {
            char c = p[1];
            if (c == '\0')
                return refuse(err, pattern, at, "trailing backslash");
            if ((c >= '1' && c <= '9') || c == 'g' || c == 'k')
                return refuse(err, pattern, at, "backreference");
            if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
                !strchr("aftnrvxpPdDsSwWbBAzQE", c))
                return refuse(err, pattern, at, "unsupported escape");
            if (c == 'Q') {
                const char *e = strstr(p + 2, "\\E");
                p = e ? e + 2 : p + strlen(p);
            } else {
                p += 2;
            }
        } else if (p[0] == '[') {
            /* a class: "]" right after "[" or "[^" is literal; skip escapes and [:name:] */
            p += (p[1] == '^') ? 2 : 1;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (p[0] == '\\' && p[1])
                    p += 2;
                else if (p[0] == '[' && p[1] == ':' && strstr(p + 2, ":]"))
                    p = strstr(p + 2, ":]") + 2;
                else
                    p++;
            }
            if (*p)
                p++;
        } else if (p[0] == '(' && p[1] == '?') {
            int rc = check_group(err, pattern, p + 2, at);
            if (rc < 0)
                return rc;
            p += 2;
        } else if (p[0] == '(' && p[1] == '*') {
            return refuse(err, pattern, at, "backtracking verb");
        } else if (strchr("*+?}", p[0])) {
            if (p[0] == '+' && quantified)
                return refuse(err, pattern, at, "possessive quantifier");
            quant = p[0] != '?' || !quantified; /* "*?" is lazy, not a second quantifier */
            p++;
        } else {
            p++;
        }
        quantified = quant;
    }
    return 0;
}

int berth_regex_compile(berth_regex **out, const char *pattern, berth_error **err)
{
    berth_regex *re = NULL;
    int errcode = 0, rc;
    PCRE2_SIZE erroff = 0;
    PCRE2_UCHAR msg[256];

    BERTH_ARG_CHECK(out && pattern);
    *out = NULL;
    if ((rc = check_re2(pattern, err)) < 0)
        return rc;
    if (!(re = core_calloc(1, sizeof(*re))) || !(re->pattern = core_strdup(pattern)) ||
        !(re->mctx = pcre2_match_context_create(NULL))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory compiling \"%s\"", pattern);
        goto out;
    }
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C |
                                 PCRE2_MATCH_INVALID_UTF,
                             &errcode, &erroff, NULL);
    if (!re->code) {
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            memcpy(msg, "syntax error", sizeof("syntax error"));
        rc = core_error_set(err, errcode == PCRE2_ERROR_NOMEMORY ? BERTH_ENOMEM : BERTH_EINVAL,
                            "invalid regular expression \"%s\": %s at offset %zu", pattern,
                            (const char *)msg, (size_t)erroff);
        goto out;
    }
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
    *out = re;
    re = NULL;
    rc = 0;
out:
    berth_regex_free(re);
    return rc;
}

int berth_regex_match(bool *matched_out, const berth_regex *re, const char *text, berth_error **err)
{
    pcre2_match_data *md;
    int n;

    BERTH_ARG_CHECK(matched_out && re && text);
    *matched_out = false;
    if (!(md = pcre2_match_data_create_from_pattern(re->code, NULL)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory matching \"%s\"", re->pattern);
    n = pcre2_match(re->code, (PCRE2_SPTR)text, strlen(text), 0, 0, md, re->mctx);
    pcre2_match_data_free(md);
    if (n >= 0) {
        *matched_out = true;
        return 0;
    }
    if (n == PCRE2_ERROR_NOMATCH)
        return 0;
    if (n == PCRE2_ERROR_NOMEMORY)
        return core_error_set(err, BERTH_ENOMEM, "out of memory matching \"%s\"", re->pattern);
    return core_error_set(err, BERTH_ERROR,
                          "regular expression \"%s\" gave up matching \"%s\" (error %d)",
                          re->pattern, text, n);
}

void berth_regex_free(berth_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    core_free(re->pattern);
    core_free(re);
}
