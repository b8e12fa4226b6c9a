/*
 * ImagePolicy evaluation: which tag of an image repository is "the latest" for a policy. Flux
 * users move their ImagePolicy manifests to berth unchanged, so the choice must be the one
 * image-reflector-controller makes (internal/policy: semver.go, alphabetical.go, numerical.go,
 * filter.go), quirks included.
 *
 * Design: a policy is compiled once (constraint, filter regex, extract template checked) and
 * then evaluated as a stream: img_policy_eval_add sees one tag at a time and keeps only the best
 * so far, so a repository of 10,000 tags read page by page from the state store costs the
 * memory of one tag. The rules, from Flux:
 *  - filterTags: the pattern must match (unanchored, Go regexp semantics: RE2 syntax checked by
 *    core/regex.c, then compiled here a second time with PCRE2 to reach the groups); extract
 *    is expanded like Go's Regexp.ExpandString ($name, ${name}, $1, $$). Flux keeps the results
 *    in a map from value to tag, so a repeated value keeps the last tag seen.
 *  - semver: values must pass fluxcd/pkg/version.ParseVersion (two dots, then Masterminds'
 *    loose NewVersion); others are skipped; the highest version satisfying the range wins and
 *    only a strictly greater one replaces it.
 *  - alphabetical: byte order (Go's sort.Strings); asc takes the last, desc the first.
 *  - numerical: strconv.ParseFloat; a value that does not parse fails the whole evaluation;
 *    asc keeps the largest (a later equal value replaces it), desc the smallest.
 * The exclusion list of ImageRepository is a list of berth_regex patterns.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "images/policy.h"

#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include <berth/regex.h>

#include "core/core.h"
#include "core/semver.h"

#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u
#define EXTRACT_MAX 4096 /* bytes of one expanded value; tags are at most 128 */

struct img_policy {
    img_policy_kind kind;
    img_order order;
    core_semver_constraint *range; /* IMG_POLICY_SEMVER */
    pcre2_code *filter;            /* NULL when every tag passes */
    pcre2_match_context *mctx;
    char *pattern; /* spec.filterTags.pattern as given, for messages */
    char *extract; /* NULL when the tag itself is the value */
};

struct img_policy_eval {
    const img_policy *p;
    pcre2_match_data *md;
    size_t seen;    /* tags offered */
    size_t matched; /* tags that passed the filter */
    bool have;      /* best_* hold a candidate */
    char *best_tag;
    char *best_value;
    core_semver best_ver; /* IMG_POLICY_SEMVER */
    double best_num;      /* IMG_POLICY_NUMERICAL */
};

/* ------------------------------------------------------------------ Go's ParseFloat */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_dec(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_dec(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

/* Length of the common prefix of s and word (lowercase), ignoring case in s. */
static size_t prefix_nocase(const char *s, const char *word)
{
    size_t n = 0;
    while (s[n] && word[n] && lower(s[n]) == word[n])
        n++;
    return n;
}

/* strconv's underscoreOK: '_' only between digits, or between a base prefix and a digit. */
static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    bool hex = false;

    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    if (n >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if (is_dec(s[i]) || (hex && is_hex(s[i]))) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* strconv.readFloat's grammar: the length of the literal at s, or 0 when it is not one. */
static size_t scan_go_float(const char *s, bool *underscores)
{
    size_t i = 0;
    bool hex = false, sawdot = false, sawdigits = false;

    *underscores = false;
    if (s[i] == '+' || s[i] == '-')
        i++;
    if (s[i] == '0' && lower(s[i + 1]) == 'x' && s[i + 2]) {
        hex = true;
        i += 2;
    }
    for (;; i++) {
        char c = s[i];
        if (c == '_') {
            *underscores = true;
        } else if (c == '.') {
            if (sawdot)
                break;
            sawdot = true;
        } else if (is_dec(c) || (hex && is_hex(c))) {
            sawdigits = true;
        } else {
            break;
        }
    }
    if (!sawdigits)
        return 0;
    if (lower(s[i]) == (hex ? 'p' : 'e')) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (!is_dec(s[i]))
            return 0;
        for (; is_dec(s[i]) || s[i] == '_'; i++)
            if (s[i] == '_')
                *underscores = true;
    } else if (hex) {
        return 0; /* a hexadecimal mantissa needs a 'p' exponent */
    }
    return i;
}

bool img_parse_go_float(const char *s, double *out)
{
    const char *p = s;
    bool underscores, neg = false;
    size_t n, len, k = 0;
    char *clean, *end = NULL;
    double v;

    if (!s || !*s)
        return false;
    /* the special values: [+-]inf, [+-]infinity, nan; the whole string must be used */
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    n = prefix_nocase(p, "infinity");
    if ((n == 3 || n == 8) && p[n] == '\0') {
        *out = neg ? -HUGE_VAL : HUGE_VAL;
        return true;
    }
    if (p == s && prefix_nocase(p, "nan") == 3 && p[3] == '\0') {
        *out = NAN;
        return true;
    }
    len = strlen(s);
    n = scan_go_float(s, &underscores);
    if (n == 0 || n != len || (underscores && !underscore_ok(s, n)))
        return false;
    if (!(clean = core_malloc(len + 1)))
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '_')
            clean[k++] = s[i];
    clean[k] = '\0';
    errno = 0;
    v = strtod(clean, &end);
    /* Go reports overflow (ErrRange) but returns an underflow as a plain zero or subnormal */
    if (!end || *end != '\0' || (errno == ERANGE && isinf(v))) {
        core_free(clean);
        return false;
    }
    core_free(clean);
    *out = v;
    return true;
}

/* ------------------------------------------------------------------ extract templates */

/* Go's regexp name characters: letters, digits, '_' (non-ASCII bytes taken as letters). */
static bool is_name_char(unsigned char c)
{
    return is_dec((char)c) || (lower((char)c) >= 'a' && lower((char)c) <= 'z') || c == '_' ||
           c >= 0x80;
}

/*
 * Go's regexp extract(): parse "name", "{name}" or a number after a '$'. Sets *name and *name_len
 * to the reference, *num to its group number (-1 for a name) and returns the bytes used, or 0
 * when the reference is malformed (Go then copies the '$' as text).
 */
static size_t template_ref(const char *t, const char **name, size_t *name_len, long *num)
{
    size_t i = 0, used;
    bool brace = t[0] == '{';
    const char *s = t + (brace ? 1 : 0);

    while (s[i] && is_name_char((unsigned char)s[i]))
        i++;
    if (i == 0)
        return 0;
    used = i + (brace ? 1 : 0);
    if (brace) {
        if (s[i] != '}')
            return 0;
        used++;
    }
    *name = s;
    *name_len = i;
    *num = 0;
    for (size_t k = 0; k < i; k++) {
        if (!is_dec(s[k]) || *num >= 100000000L) {
            *num = -1;
            break;
        }
        *num = *num * 10 + (s[k] - '0');
    }
    if (s[0] == '0' && i > 1)
        *num = -1; /* no leading zeros */
    return used;
}

/* The group number of a name, or -1 when the pattern has no such group. */
static long group_number(const pcre2_code *code, const char *name, size_t len)
{
    char buf[256];
    int n;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    n = pcre2_substring_number_from_name(code, (PCRE2_SPTR)buf);
    return n > 0 ? n : -1;
}

/*
 * Check that every reference in the extract template names a group of the pattern: Go would
 * expand a missing one to "", which makes every tag extract the same text.
 */
static int check_template(const pcre2_code *code, const char *tmpl, const char *pattern,
                          berth_error **err)
{
    uint32_t groups = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
    for (const char *t = strchr(tmpl, '$'); t; t = strchr(t, '$')) {
        const char *name;
        size_t name_len, used;
        long num;
        t++;
        if (*t == '$') {
            t++;
            continue;
        }
        if ((used = template_ref(t, &name, &name_len, &num)) == 0)
            continue;
        if ((num >= 0 && (uint32_t)num > groups) ||
            (num < 0 && group_number(code, name, name_len) < 0))
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid spec.filterTags.extract \"%s\": pattern \"%s\" has no "
                                  "group \"%.*s\"",
                                  tmpl, pattern, (int)name_len, name);
        t += used;
    }
    return 0;
}

/* Go's Regexp.ExpandString of tmpl for the match in md over subject. */
static int expand(berth_buf *out, const img_policy *p, pcre2_match_data *md, const char *subject)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t pairs = pcre2_get_ovector_count(md);
    const char *t = p->extract;
    int rc = 0;

    while (rc == 0 && *t) {
        const char *dollar = strchr(t, '$');
        const char *name;
        size_t name_len, used;
        long num;

        if (!dollar)
            return berth_buf_puts(out, t);
        if ((rc = berth_buf_put(out, t, (size_t)(dollar - t))) < 0)
            return rc;
        t = dollar + 1;
        if (*t == '$') {
            rc = berth_buf_put(out, "$", 1);
            t++;
            continue;
        }
        if ((used = template_ref(t, &name, &name_len, &num)) == 0) {
            rc = berth_buf_put(out, "$", 1);
            continue;
        }
        t += used;
        if (num < 0)
            num = group_number(p->filter, name, name_len);
        if (num >= 0 && (uint32_t)num < pairs && ov[2 * num] != PCRE2_UNSET)
            rc = berth_buf_put(out, subject + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
    return rc;
}

/* ------------------------------------------------------------------ compiling */

static const char *kind_name(img_policy_kind k)
{
    switch (k) {
    case IMG_POLICY_SEMVER:
        return "semver";
    case IMG_POLICY_ALPHABETICAL:
        return "alphabetical";
    case IMG_POLICY_NUMERICAL:
        return "numerical";
    }
    return "unknown";
}

int img_order_parse(img_order *out, const char *text, const char *field, berth_error **err)
{
    BERTH_ARG_CHECK(out && field);
    *out = IMG_ORDER_ASC;
    if (!text || !*text || strcmp(text, "asc") == 0)
        return 0;
    if (strcmp(text, "desc") == 0) {
        *out = IMG_ORDER_DESC;
        return 0;
    }
    return core_error_set(err, BERTH_EINVAL, "invalid %s \"%s\": want \"asc\" or \"desc\"", field,
                          text);
}

static int compile_filter(img_policy *p, const char *pattern, const char *extract,
                          berth_error **err)
{
    berth_regex *check = NULL;
    int rc, errcode = 0;
    PCRE2_SIZE erroff = 0;

    /* core/regex.c refuses what RE2 refuses; its message quotes the pattern and offset */
    if ((rc = berth_regex_compile(&check, pattern, err)) < 0)
        return core_error_wrap(err, "invalid spec.filterTags.pattern");
    berth_regex_free(check);
    if (!(p->pattern = core_strdup(pattern)) || !(p->mctx = pcre2_match_context_create(NULL)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory compiling \"%s\"", pattern);
    p->filter = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C |
                                  PCRE2_MATCH_INVALID_UTF,
                              &errcode, &erroff, NULL);
    if (!p->filter)
        return core_error_set(err, BERTH_ENOMEM, "out of memory compiling \"%s\"", pattern);
    pcre2_set_match_limit(p->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(p->mctx, DEPTH_LIMIT);
    if (extract && *extract) {
        if ((rc = check_template(p->filter, extract, pattern, err)) < 0)
            return rc;
        if (!(p->extract = core_strdup(extract)))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

int img_policy_compile(img_policy **out, const img_policy_spec *spec, berth_error **err)
{
    img_policy *p = NULL;
    int rc = 0;
    bool has_pattern, has_extract;

    BERTH_ARG_CHECK(out && spec);
    *out = NULL;
    has_pattern = spec->filter_pattern && *spec->filter_pattern;
    has_extract = spec->filter_extract && *spec->filter_extract;
    if (spec->kind != IMG_POLICY_SEMVER && spec->kind != IMG_POLICY_ALPHABETICAL &&
        spec->kind != IMG_POLICY_NUMERICAL)
        return core_error_set(err, BERTH_EINVAL,
                              "invalid spec.policy: one of semver, alphabetical or numerical is "
                              "required");
    if (spec->kind != IMG_POLICY_SEMVER && spec->order != IMG_ORDER_ASC &&
        spec->order != IMG_ORDER_DESC)
        return core_error_set(err, BERTH_EINVAL, "invalid spec.policy.%s.order %d",
                              kind_name(spec->kind), (int)spec->order);
    if (has_extract && !has_pattern)
        return core_error_set(err, BERTH_EINVAL,
                              "invalid spec.filterTags.extract \"%s\": needs "
                              "spec.filterTags.pattern",
                              spec->filter_extract);
    if (!(p = core_calloc(1, sizeof(*p)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    p->kind = spec->kind;
    p->order = spec->order;
    if (spec->kind == IMG_POLICY_SEMVER) {
        const char *range = spec->semver_range ? spec->semver_range : "";
        if ((rc = core_semver_constraint_parse(&p->range, range, err)) < 0) {
            rc = core_error_wrap(err, "invalid spec.policy.semver.range \"%s\"", range);
            goto out;
        }
    }
    if (has_pattern &&
        (rc = compile_filter(p, spec->filter_pattern, spec->filter_extract, err)) < 0)
        goto out;
    *out = p;
    p = NULL;
out:
    img_policy_free(p);
    return rc;
}

void img_policy_free(img_policy *p)
{
    if (!p)
        return;
    core_semver_constraint_free(p->range);
    pcre2_code_free(p->filter);
    pcre2_match_context_free(p->mctx);
    core_free(p->pattern);
    core_free(p->extract);
    core_free(p);
}

void img_policy_pick_dispose(img_policy_pick *pick)
{
    if (!pick)
        return;
    core_free(pick->tag);
    core_free(pick->value);
    pick->tag = NULL;
    pick->value = NULL;
}

/* ------------------------------------------------------------------ evaluating */

int img_policy_eval_new(img_policy_eval **out, const img_policy *p, berth_error **err)
{
    img_policy_eval *ev;

    BERTH_ARG_CHECK(out && p);
    *out = NULL;
    if (!(ev = core_calloc(1, sizeof(*ev))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    ev->p = p;
    if (p->filter && !(ev->md = pcre2_match_data_create_from_pattern(p->filter, NULL))) {
        core_free(ev);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    *out = ev;
    return 0;
}

void img_policy_eval_free(img_policy_eval *ev)
{
    if (!ev)
        return;
    pcre2_match_data_free(ev->md);
    core_free(ev->best_tag);
    core_free(ev->best_value);
    core_semver_dispose(&ev->best_ver);
    core_free(ev);
}

size_t img_policy_eval_matched(const img_policy_eval *ev)
{
    return ev ? ev->matched : 0;
}

/*
 * Run the filter on tag. *value_out is the value to order (the tag itself, or a heap string in
 * *owned_out), NULL when the tag does not pass.
 */
static int filter_tag(const char **value_out, char **owned_out, img_policy_eval *ev,
                      const char *tag, berth_error **err)
{
    const img_policy *p = ev->p;
    berth_buf b;
    int n, rc;

    *value_out = NULL;
    *owned_out = NULL;
    if (!p->filter) {
        *value_out = tag;
        return 0;
    }
    n = pcre2_match(p->filter, (PCRE2_SPTR)tag, strlen(tag), 0, 0, ev->md, p->mctx);
    if (n == PCRE2_ERROR_NOMATCH)
        return 0;
    if (n == PCRE2_ERROR_NOMEMORY)
        return core_error_set(err, BERTH_ENOMEM, "out of memory matching \"%s\"", p->pattern);
    if (n < 0)
        return core_error_set(err, BERTH_ERROR,
                              "spec.filterTags.pattern \"%s\" gave up matching tag \"%s\" "
                              "(error %d)",
                              p->pattern, tag, n);
    if (!p->extract) {
        *value_out = tag;
        return 0;
    }
    berth_buf_init(&b, EXTRACT_MAX);
    if ((rc = expand(&b, p, ev->md, tag)) < 0 || (rc = berth_buf_put(&b, "", 0)) < 0) {
        berth_buf_dispose(&b);
        if (rc == BERTH_ENOMEM)
            return core_error_set(err, rc, "out of memory expanding \"%s\"", p->extract);
        return core_error_set(err, rc,
                              "spec.filterTags.extract \"%s\" gives more than %d bytes for tag "
                              "\"%s\"",
                              p->extract, EXTRACT_MAX, tag);
    }
    *owned_out = core_strndup(b.ptr, b.len);
    berth_buf_dispose(&b);
    if (!*owned_out)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    *value_out = *owned_out;
    return 0;
}

/* Make (tag, value) the best so far; ver (semver) moves into ev. */
static int take(img_policy_eval *ev, const char *tag, const char *value, core_semver *ver,
                double num)
{
    char *t = core_strdup(tag), *v = core_strdup(value);
    if (!t || !v) {
        core_free(t);
        core_free(v);
        return BERTH_ENOMEM;
    }
    core_free(ev->best_tag);
    core_free(ev->best_value);
    ev->best_tag = t;
    ev->best_value = v;
    if (ver) {
        core_semver_dispose(&ev->best_ver);
        ev->best_ver = *ver;
        memset(ver, 0, sizeof(*ver));
    }
    ev->best_num = num;
    ev->have = true;
    return 0;
}

/* Decide whether value beats the best so far; *ver is set for semver candidates. */
static int judge(bool *wins_out, core_semver *ver, double *num, img_policy_eval *ev,
                 const char *tag, const char *value, berth_error **err)
{
    const img_policy *p = ev->p;
    int c;

    *wins_out = false;
    switch (p->kind) {
    case IMG_POLICY_SEMVER:
        /* Flux skips what version.ParseVersion refuses; the error is not news */
        if (core_semver_parse(ver, value, true, NULL) < 0)
            return 0;
        if (!core_semver_constraint_check(p->range, ver))
            return 0;
        if (!ev->have)
            *wins_out = true;
        else if ((c = core_semver_compare(ver, &ev->best_ver)) > 0)
            *wins_out = true;
        else if (c == 0 && strcmp(value, ev->best_value) == 0)
            *wins_out = true; /* the same value again: the last tag wins, as in Flux's map */
        return 0;
    case IMG_POLICY_ALPHABETICAL:
        c = ev->have ? strcmp(value, ev->best_value) : 0;
        *wins_out = !ev->have || (p->order == IMG_ORDER_ASC ? c >= 0 : c <= 0);
        return 0;
    case IMG_POLICY_NUMERICAL:
        if (!img_parse_go_float(value, num)) {
            if (value != tag)
                return core_error_set(err, BERTH_EINVAL,
                                      "numerical policy: value \"%s\" extracted from tag \"%s\" is "
                                      "not a number",
                                      value, tag);
            return core_error_set(err, BERTH_EINVAL,
                                  "numerical policy: tag \"%s\" is not a number (use "
                                  "spec.filterTags to leave it out)",
                                  tag);
        }
        /* Flux: asc skips cv < pv, desc skips cv > pv; everything else (NaN too) replaces */
        if (!ev->have)
            *wins_out = true;
        else if (p->order == IMG_ORDER_ASC)
            *wins_out = !(*num < ev->best_num);
        else
            *wins_out = !(*num > ev->best_num);
        return 0;
    }
    return core_error_set(err, BERTH_EINVAL, "invalid policy kind %d", (int)p->kind);
}

int img_policy_eval_add(img_policy_eval *ev, const char *tag, berth_error **err)
{
    const char *value = NULL;
    char *owned = NULL;
    core_semver ver = {0};
    double num = 0;
    bool wins = false;
    int rc;

    BERTH_ARG_CHECK(ev && tag);
    ev->seen++;
    if ((rc = filter_tag(&value, &owned, ev, tag, err)) < 0 || !value)
        goto out;
    ev->matched++;
    if ((rc = judge(&wins, &ver, &num, ev, tag, value, err)) < 0 || !wins)
        goto out;
    if ((rc = take(ev, tag, value, ev->p->kind == IMG_POLICY_SEMVER ? &ver : NULL, num)) < 0)
        rc = core_error_set(err, rc, "out of memory");
out:
    core_semver_dispose(&ver);
    core_free(owned);
    return rc;
}

int img_policy_eval_result(img_policy_pick *out, const img_policy_eval *ev, berth_error **err)
{
    const img_policy *p;

    BERTH_ARG_CHECK(out && ev);
    memset(out, 0, sizeof(*out));
    p = ev->p;
    if (!ev->have) {
        if (ev->seen == 0)
            return core_error_set(err, BERTH_ENOTFOUND,
                                  "no tag matched policy: the repository has no tags");
        if (p->filter && ev->matched == 0)
            return core_error_set(err, BERTH_ENOTFOUND,
                                  "no tag matched policy: none of %zu tags matches "
                                  "spec.filterTags.pattern \"%s\"",
                                  ev->seen, p->pattern);
        return core_error_set(err, BERTH_ENOTFOUND,
                              "no tag matched policy: none of %zu tags%s is a version in "
                              "spec.policy.semver.range \"%s\"",
                              ev->matched, p->filter ? " passing spec.filterTags" : "",
                              core_semver_constraint_string(p->range));
    }
    if (!(out->tag = core_strdup(ev->best_tag)) || !(out->value = core_strdup(ev->best_value))) {
        img_policy_pick_dispose(out);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

int img_policy_latest(img_policy_pick *out, const img_policy *p, const char *const *tags, size_t n,
                      berth_error **err)
{
    img_policy_eval *ev = NULL;
    int rc;

    BERTH_ARG_CHECK(out && p && (tags || n == 0));
    memset(out, 0, sizeof(*out));
    if ((rc = img_policy_eval_new(&ev, p, err)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = img_policy_eval_add(ev, tags[i], err)) < 0)
            goto out;
    rc = img_policy_eval_result(out, ev, err);
out:
    img_policy_eval_free(ev);
    return rc;
}

/* ------------------------------------------------------------------ exclusion list */

const char *const img_exclusion_defaults[] = {"^.*\\.sig$", "^.*\\.att$", "^.*\\.sbom$", NULL};

struct img_exclusion {
    berth_regex **re;
    size_t n;
};

int img_exclusion_new(img_exclusion **out, const char *const *patterns, size_t n, berth_error **err)
{
    img_exclusion *x = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(out && (patterns || n == 0));
    *out = NULL;
    if (!patterns) {
        patterns = img_exclusion_defaults;
        for (n = 0; img_exclusion_defaults[n]; n++)
            ;
    }
    if (!(x = core_calloc(1, sizeof(*x))) || !(x->re = core_calloc(n, sizeof(*x->re)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (; x->n < n; x->n++) {
        if (!patterns[x->n]) {
            rc =
                core_error_set(err, BERTH_EINVAL, "invalid spec.exclusionList[%zu]: missing", x->n);
            goto out;
        }
        if ((rc = berth_regex_compile(&x->re[x->n], patterns[x->n], err)) < 0) {
            rc = core_error_wrap(err, "invalid spec.exclusionList[%zu]", x->n);
            goto out;
        }
    }
    *out = x;
    x = NULL;
out:
    img_exclusion_free(x);
    return rc;
}

void img_exclusion_free(img_exclusion *x)
{
    if (!x)
        return;
    for (size_t i = 0; x->re && i < x->n; i++)
        berth_regex_free(x->re[i]);
    core_free(x->re);
    core_free(x);
}

int img_exclusion_match(bool *excluded_out, const img_exclusion *x, const char *tag,
                        berth_error **err)
{
    int rc;

    BERTH_ARG_CHECK(excluded_out && x && tag);
    *excluded_out = false;
    for (size_t i = 0; i < x->n; i++) {
        if ((rc = berth_regex_match(excluded_out, x->re[i], tag, err)) < 0)
            return rc;
        if (*excluded_out)
            return 0;
    }
    return 0;
}

int img_exclusion_filter(size_t *kept_out, const img_exclusion *x, const char **tags, size_t n,
                         berth_error **err)
{
    bool *drop = NULL;
    const char **tmp = NULL;
    size_t kept = 0, k = 0;
    int rc = 0;

    BERTH_ARG_CHECK(kept_out && x && (tags || n == 0));
    *kept_out = 0;
    if (n == 0)
        return 0;
    if (!(drop = core_calloc(n, sizeof(*drop))) || !(tmp = core_calloc(n, sizeof(*tmp)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = img_exclusion_match(&drop[i], x, tags[i], err)) < 0)
            goto out;
        kept += !drop[i];
    }
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            tmp[k++] = tags[i];
    for (size_t i = 0; i < n; i++)
        if (drop[i])
            tmp[k++] = tags[i];
    memcpy(tags, tmp, n * sizeof(*tags));
    *kept_out = kept;
out:
    core_free(drop);
    core_free(tmp);
    return rc;
}
