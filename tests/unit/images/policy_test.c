/*
 * Unit tests for images/policy.c: ImagePolicy evaluation as Flux's image-reflector-controller
 * does it (semver, alphabetical, numerical, filterTags with extract), the exclusion list, and
 * Go's ParseFloat grammar.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "images/policy.h"

#define SEMVER IMG_POLICY_SEMVER
#define ALPHA IMG_POLICY_ALPHABETICAL
#define NUM IMG_POLICY_NUMERICAL
#define ASC IMG_ORDER_ASC
#define DESC IMG_ORDER_DESC

typedef struct policy_case {
    const char *name; /* what the case pins */
    img_policy_kind kind;
    const char *range;   /* semver */
    img_order order;     /* alphabetical, numerical */
    const char *pattern; /* filterTags.pattern or NULL */
    const char *extract; /* filterTags.extract or NULL */
    const char *tags;    /* blank-separated */
    const char *want;    /* the tag chosen, NULL for an error */
    const char *value;   /* the value ordered, NULL = the tag */
    int want_rc;         /* with want == NULL */
    const char *word;    /* in the error message */
} policy_case;

static const policy_case cases[] = {
    /* semver: ordering */
    {"semver picks the highest in range", SEMVER, ">=1.0.0", ASC, NULL, NULL,
     "0.9.0 1.0.0 1.2.3 1.10.0 1.9.9", "1.10.0", NULL, 0, NULL},
    {"semver accepts a v prefix", SEMVER, ">=1.0.0", ASC, NULL, NULL, "v1.0.0 v1.2.0 1.1.0",
     "v1.2.0", NULL, 0, NULL},
    {"semver compares v and bare versions alike", SEMVER, ">=1.0.0", ASC, NULL, NULL,
     "v1.0.0 1.3.0 v1.2.9", "1.3.0", NULL, 0, NULL},
    {"semver keeps the first of two equal versions", SEMVER, ">=1.0.0", ASC, NULL, NULL,
     "v1.2.0 1.2.0", "v1.2.0", NULL, 0, NULL},
    {"semver leading zeros are numbers", SEMVER, ">=1.0.0", ASC, NULL, NULL, "1.2.2 v01.02.03",
     "v01.02.03", NULL, 0, NULL},
    {"semver 1.x excludes pre-releases", SEMVER, "1.x", ASC, NULL, NULL, "1.0.0 1.2.0-rc.1 1.0.1",
     "1.0.1", NULL, 0, NULL},
    {"semver range with a pre-release includes them", SEMVER, ">=1.0.0-0", ASC, NULL, NULL,
     "1.0.0 1.1.0-rc.1 1.0.1", "1.1.0-rc.1", NULL, 0, NULL},
    {"semver pre-release identifiers in order", SEMVER, ">=1.0.0-0", ASC, NULL, NULL,
     "1.0.0-alpha 1.0.0-rc.1 1.0.0-alpha.1 1.0.0-beta", "1.0.0-rc.1", NULL, 0, NULL},
    {"semver release beats its candidates", SEMVER, ">=1.0.0-0", ASC, NULL, NULL,
     "1.0.0-rc.1 1.0.0 1.0.0-rc.2", "1.0.0", NULL, 0, NULL},
    {"semver numeric pre-release identifiers compare as numbers", SEMVER, ">=1.0.0-0", ASC, NULL,
     NULL, "1.0.0-rc.2 1.0.0-rc.10 1.0.0-rc.9", "1.0.0-rc.10", NULL, 0, NULL},
    {"semver ignores build metadata when ordering", SEMVER, ">=1.0.0", ASC, NULL, NULL,
     "1.1.0 1.2.0+b2 1.2.0+b1", "1.2.0+b2", NULL, 0, NULL},
    {"semver build metadata does not beat a higher patch", SEMVER, ">=1.0.0", ASC, NULL, NULL,
     "1.2.0+zzz 1.2.1+aaa", "1.2.1+aaa", NULL, 0, NULL},
    {"semver skips garbage tags", SEMVER, "*", ASC, NULL, NULL,
     "latest main sha-abc123 1.2.3 foo-9.0.0 1.5.0 V9.0.0 9.0.0.1", "1.5.0", NULL, 0, NULL},
    {"semver needs two dots in a tag, as Flux", SEMVER, ">=1.0", ASC, NULL, NULL, "2.0 v3 1.9.0",
     "1.9.0", NULL, 0, NULL},
    {"semver two dots with a pre-release is enough", SEMVER, ">=1.0.0-0", ASC, NULL, NULL,
     "1.1.0 1.2-rc.1", "1.2-rc.1", NULL, 0, NULL},
    {"semver tilde stays in the minor", SEMVER, "~1.2", ASC, NULL, NULL, "1.2.0 1.2.9 1.3.0",
     "1.2.9", NULL, 0, NULL},
    {"semver caret stays in the major", SEMVER, "^1.2.3", ASC, NULL, NULL, "1.2.3 1.9.0 2.0.0",
     "1.9.0", NULL, 0, NULL},
    {"semver caret on 0.x stays in the minor", SEMVER, "^0.2.0", ASC, NULL, NULL, "0.2.1 0.3.0",
     "0.2.1", NULL, 0, NULL},
    {"semver or of ranges", SEMVER, "<1.0.0 || >=3.0.0", ASC, NULL, NULL, "0.9.0 2.0.0 3.1.0",
     "3.1.0", NULL, 0, NULL},
    {"semver hyphen range is inclusive", SEMVER, "1.0.0 - 2.0.0", ASC, NULL, NULL,
     "1.5.0 2.0.0 2.0.1", "2.0.0", NULL, 0, NULL},
    {"semver and of comparators", SEMVER, ">1.0.0 <2.0.0", ASC, NULL, NULL, "1.0.0 1.5.0 2.0.0",
     "1.5.0", NULL, 0, NULL},
    {"semver nothing in range", SEMVER, ">=5.0.0", ASC, NULL, NULL, "1.0.0 2.0.0", NULL, NULL,
     BERTH_ENOTFOUND, "no tag matched policy"},
    {"semver only pre-releases with a plain range", SEMVER, "1.x", ASC, NULL, NULL,
     "1.0.0-rc.1 1.1.0-beta", NULL, NULL, BERTH_ENOTFOUND, "semver.range"},
    {"semver no tags at all", SEMVER, "*", ASC, NULL, NULL, "", NULL, NULL, BERTH_ENOTFOUND,
     "no tags"},
    {"semver invalid range names the field", SEMVER, "1.x.y", ASC, NULL, NULL, "1.0.0", NULL, NULL,
     BERTH_EINVAL, "spec.policy.semver.range"},
    {"semver empty range names the field", SEMVER, "", ASC, NULL, NULL, "1.0.0", NULL, NULL,
     BERTH_EINVAL, "spec.policy.semver.range"},
    {"semver with an unanchored filter", SEMVER, ">=1.0.0-0", ASC, "rc", NULL,
     "1.0.0 1.1.0-rc.1 1.2.0-beta", "1.1.0-rc.1", NULL, 0, NULL},
    {"semver on extracted values", SEMVER, "1.x", ASC, "^(?P<maj>[0-9]+)\\.(?P<min>[0-9]+)-[a-f]+$",
     "${maj}.${min}.0", "1.2-abc 1.10-def 2.0-aaa 1.11-xyz", "1.10-def", "1.10.0", 0, NULL},
    /* alphabetical */
    {"alphabetical asc picks the last", ALPHA, NULL, ASC, NULL, NULL,
     "2023-01-01 2024-05-01 2023-12-31", "2024-05-01", NULL, 0, NULL},
    {"alphabetical desc picks the first", ALPHA, NULL, DESC, NULL, NULL,
     "2023-01-01 2024-05-01 2023-12-31", "2023-01-01", NULL, 0, NULL},
    {"alphabetical is byte order", ALPHA, NULL, ASC, NULL, NULL, "alpha Zeta", "alpha", NULL, 0,
     NULL},
    {"alphabetical compares digits as text", ALPHA, NULL, ASC, NULL, NULL, "10 9 100", "9", NULL, 0,
     NULL},
    {"alphabetical on extracted timestamps", ALPHA, NULL, ASC, "^RELEASE\\.(?P<ts>.*)Z$", "$ts",
     "RELEASE.2023-01-31T02-24-19Z RELEASE.2023-02-09T05-16-53Z latest zzz",
     "RELEASE.2023-02-09T05-16-53Z", "2023-02-09T05-16-53", 0, NULL},
    {"alphabetical desc with a filter", ALPHA, NULL, DESC, "^v", NULL, "a v2 v1 b", "v1", NULL, 0,
     NULL},
    /* numerical */
    {"numerical asc picks the largest", NUM, NULL, ASC, NULL, NULL, "1 5 10 2", "10", NULL, 0,
     NULL},
    {"numerical desc picks the smallest", NUM, NULL, DESC, NULL, NULL, "5 1 10 2", "1", NULL, 0,
     NULL},
    {"numerical parses floats", NUM, NULL, ASC, NULL, NULL, "1.5 1.25 1.10", "1.5", NULL, 0, NULL},
    {"numerical later equal value wins asc", NUM, NULL, ASC, NULL, NULL, "1e3 999 1_000", "1_000",
     NULL, 0, NULL},
    {"numerical later equal value wins desc", NUM, NULL, DESC, NULL, NULL, "2 1 1.0", "1.0", NULL,
     0, NULL},
    {"numerical timestamps from a flux-style pattern", NUM, NULL, ASC,
     "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "$ts",
     "main-abc123-1700000000 main-def456-1710000000 main-0a1b2c-1690000000 "
     "feature-x-1800000000 latest main-zz-1900000000",
     "main-def456-1710000000", "1710000000", 0, NULL},
    {"numerical pattern not anchored at the end", NUM, NULL, ASC, "^main-[a-f0-9]+-(?P<ts>[0-9]+)",
     "$ts", "main-abc-100 main-fff-200-dirty", "main-fff-200-dirty", "200", 0, NULL},
    {"numerical timestamps desc", NUM, NULL, DESC, "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "$ts",
     "main-a-30 main-b-10 main-c-20", "main-b-10", "10", 0, NULL},
    {"numerical numbered group", NUM, NULL, ASC, "^build-(\\d+)$", "$1", "build-9 build-10 build-x",
     "build-10", "10", 0, NULL},
    {"numerical repeated value keeps the last tag", NUM, NULL, ASC, "^(?P<v>[0-9]+)-", "$v",
     "5-a 3-b 5-c", "5-c", "5", 0, NULL},
    {"numerical fails on a garbage tag", NUM, NULL, ASC, NULL, NULL, "1 2 latest", NULL, NULL,
     BERTH_EINVAL, "not a number"},
    {"numerical fails on a garbage extracted value", NUM, NULL, ASC, "^b-(?P<n>.*)$", "$n",
     "b-1 b-x", NULL, NULL, BERTH_EINVAL, "extracted"},
    /* filter errors */
    {"filter matching nothing", ALPHA, NULL, ASC, "^release-", NULL, "a b", NULL, NULL,
     BERTH_ENOTFOUND, "spec.filterTags.pattern"},
    {"filter lookahead refused as not RE2", ALPHA, NULL, ASC, "^v(?=1)", NULL, "v1", NULL, NULL,
     BERTH_EINVAL, "spec.filterTags.pattern"},
    {"filter backreference refused", ALPHA, NULL, ASC, "(a)\\1", NULL, "aa", NULL, NULL,
     BERTH_EINVAL, "spec.filterTags.pattern"},
    {"filter syntax error", ALPHA, NULL, ASC, "^(main", NULL, "main", NULL, NULL, BERTH_EINVAL,
     "spec.filterTags.pattern"},
    {"extract naming a missing group", NUM, NULL, ASC, "^main-(?P<ts>[0-9]+)$", "$tss", "main-1",
     NULL, NULL, BERTH_EINVAL, "spec.filterTags.extract"},
    {"extract with a group number too high", NUM, NULL, ASC, "^main-([0-9]+)$", "$2", "main-1",
     NULL, NULL, BERTH_EINVAL, "spec.filterTags.extract"},
    {"extract without a pattern", NUM, NULL, ASC, NULL, "$ts", "1", NULL, NULL, BERTH_EINVAL,
     "spec.filterTags.pattern"},
};

/* Split the blank-separated list into a NULL-terminated heap array of pointers into *buf. */
static const char **split_tags(char **buf, size_t *n, const char *list)
{
    const char **tags;
    size_t cap = 1;
    *buf = core_strdup(list);
    assert_non_null(*buf);
    for (const char *p = list; *p; p++)
        cap += *p == ' ';
    tags = calloc(cap + 1, sizeof(*tags));
    assert_non_null(tags);
    *n = 0;
    for (char *p = *buf; *p;) {
        char *e = strchr(p, ' ');
        tags[(*n)++] = p;
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    return tags;
}

static void policy_table(void **state)
{
    (void)state;
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const policy_case *c = &cases[i];
        img_policy_spec spec = {c->kind, c->range, c->order, c->pattern, c->extract};
        img_policy *p = NULL;
        img_policy_pick pick = {0};
        berth_error *err = NULL;
        char *buf = NULL, *text;
        size_t n = 0;
        const char **tags = split_tags(&buf, &n, c->tags);
        int rc = img_policy_compile(&p, &spec, &err);
        if (rc == 0)
            rc = img_policy_latest(&pick, p, tags, n, &err);
        if (!c->want) {
            if (rc != c->want_rc)
                fail_msg("%s: rc %d, want %d", c->name, rc, c->want_rc);
            assert_int_equal(berth_error_code(err), c->want_rc);
            text = berth_error_text(err);
            if (!strstr(text, c->word))
                fail_msg("%s: \"%s\" lacks \"%s\"", c->name, text, c->word);
            assert_null(pick.tag);
            free(text);
        } else {
            if (rc != 0)
                fail_msg("%s: %s", c->name, berth_error_message(err));
            if (strcmp(pick.tag, c->want) != 0)
                fail_msg("%s: picked \"%s\", want \"%s\"", c->name, pick.tag, c->want);
            assert_string_equal(pick.value, c->value ? c->value : c->want);
        }
        berth_error_free(err);
        img_policy_pick_dispose(&pick);
        img_policy_free(p);
        free(tags);
        core_free(buf);
    }
}

static void policy_error_message_quotes_the_range(void **state)
{
    img_policy_spec spec = {SEMVER, ">= 1.0.0 ||", ASC, NULL, NULL};
    img_policy *p = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(img_policy_compile(&p, &spec, &err), BERTH_EINVAL);
    assert_null(p);
    assert_non_null(strstr(berth_error_message(err), "\">= 1.0.0 ||\""));
    assert_non_null(berth_error_cause(err));
    berth_error_free(err);
}

static void policy_stream_of_ten_thousand_tags(void **state)
{
    img_policy_spec spec = {SEMVER, "1.0.x", ASC, "^v?1\\.", NULL};
    img_policy *p = NULL;
    img_policy_eval *ev = NULL;
    img_policy_pick pick = {0};
    char tag[64];
    (void)state;
    assert_int_equal(img_policy_compile(&p, &spec, NULL), 0);
    assert_int_equal(img_policy_eval_new(&ev, p, NULL), 0);
    for (int i = 0; i < 10000; i++) {
        /* 1.0.0 .. 1.0.4999 and 2.0.0 .. 2.0.4999, shuffled by a stride */
        int k = (i * 7919) % 10000;
        snprintf(tag, sizeof(tag), "%d.0.%d", 1 + k / 5000, k % 5000);
        assert_int_equal(img_policy_eval_add(ev, tag, NULL), 0);
    }
    assert_int_equal(img_policy_eval_matched(ev), 5000);
    assert_int_equal(img_policy_eval_result(&pick, ev, NULL), 0);
    assert_string_equal(pick.tag, "1.0.4999");
    img_policy_pick_dispose(&pick);
    img_policy_eval_free(ev);
    img_policy_free(p);
}

static void policy_extract_expands_like_go(void **state)
{
    static const struct {
        const char *extract, *want;
    } t
        [] =
            {
                {"$a-$b", "x-y"}, {"${a}$b", "xy"}, {"$$a", "$a"},   {"$1$2", "xy"},
                {"$a$", "x$"},    {"${a", "${a"},   {"<$a>", "<x>"}, {"${b}_${a}", "y_x"},
                {"$a_$b", "y"}, /* "$a_" names a group "a_" that does not exist... refused below */
            };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        img_policy_spec spec = {ALPHA, NULL, ASC, "^(?P<a>[a-z])-(?P<b>[a-z])$", t[i].extract};
        img_policy *p = NULL;
        img_policy_pick pick = {0};
        const char *tags[] = {"x-y"};
        berth_error *err = NULL;
        int rc = img_policy_compile(&p, &spec, &err);
        if (i == sizeof(t) / sizeof(t[0]) - 1) {
            /* Go reads "$a_" as the group "a_"; the pattern has none, so it is refused */
            assert_int_equal(rc, BERTH_EINVAL);
            assert_non_null(strstr(berth_error_message(err), "\"a_\""));
            berth_error_free(err);
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": %s", t[i].extract, berth_error_message(err));
        assert_int_equal(img_policy_latest(&pick, p, tags, 1, NULL), 0);
        if (strcmp(pick.value, t[i].want) != 0)
            fail_msg("\"%s\" expanded to \"%s\", want \"%s\"", t[i].extract, pick.value, t[i].want);
        img_policy_pick_dispose(&pick);
        img_policy_free(p);
    }
}

static void order_parse_accepts_asc_desc_and_default(void **state)
{
    img_order o = DESC;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(img_order_parse(&o, NULL, "spec.policy.numerical.order", NULL), 0);
    assert_int_equal(o, ASC);
    assert_int_equal(img_order_parse(&o, "desc", "spec.policy.numerical.order", NULL), 0);
    assert_int_equal(o, DESC);
    assert_int_equal(img_order_parse(&o, "asc", "spec.policy.numerical.order", NULL), 0);
    assert_int_equal(o, ASC);
    assert_int_equal(img_order_parse(&o, "DESC", "spec.policy.alphabetical.order", &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "spec.policy.alphabetical.order"));
    assert_non_null(strstr(berth_error_message(err), "\"DESC\""));
    berth_error_free(err);
}

static void exclusion_defaults_drop_signatures_and_attestations(void **state)
{
    img_exclusion *x = NULL;
    const char *tags[] = {"sha256-ab12.sig",  "1.0.0",   "sha256-ab12.att", "sig",
                          "sha256-ab12.sbom", "v2.sigx", "latest"};
    size_t kept = 0;
    (void)state;
    assert_int_equal(img_exclusion_new(&x, NULL, 0, NULL), 0);
    assert_int_equal(img_exclusion_filter(&kept, x, tags, 7, NULL), 0);
    assert_int_equal(kept, 4);
    assert_string_equal(tags[0], "1.0.0");
    assert_string_equal(tags[1], "sig");
    assert_string_equal(tags[2], "v2.sigx");
    assert_string_equal(tags[3], "latest");
    assert_string_equal(tags[4], "sha256-ab12.sig");
    assert_string_equal(tags[5], "sha256-ab12.att");
    assert_string_equal(tags[6], "sha256-ab12.sbom");
    img_exclusion_free(x);
}

static void exclusion_explicit_list_replaces_defaults(void **state)
{
    img_exclusion *x = NULL;
    const char *list[] = {"^dev-", "-debug$"};
    bool ex = true;
    (void)state;
    assert_int_equal(img_exclusion_new(&x, list, 2, NULL), 0);
    assert_int_equal(img_exclusion_match(&ex, x, "sha256-ab.sig", NULL), 0);
    assert_false(ex);
    assert_int_equal(img_exclusion_match(&ex, x, "dev-1", NULL), 0);
    assert_true(ex);
    assert_int_equal(img_exclusion_match(&ex, x, "1.0-debug", NULL), 0);
    assert_true(ex);
    img_exclusion_free(x);
    /* an empty explicit list keeps every tag */
    assert_int_equal(img_exclusion_new(&x, list, 0, NULL), 0);
    assert_int_equal(img_exclusion_match(&ex, x, "a.sig", NULL), 0);
    assert_false(ex);
    img_exclusion_free(x);
}

static void exclusion_invalid_pattern_names_its_index(void **state)
{
    img_exclusion *x = NULL;
    const char *list[] = {"^ok$", "(?<=x)y"};
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(img_exclusion_new(&x, list, 2, &err), BERTH_EINVAL);
    assert_null(x);
    assert_non_null(strstr(berth_error_message(err), "spec.exclusionList[1]"));
    berth_error_free(err);
}

static void go_float_follows_strconv(void **state)
{
    static const struct {
        const char *s;
        bool ok;
        double v;
    } t[] = {
        {"1", true, 1},        {"1.5", true, 1.5},   {".5", true, 0.5},      {"5.", true, 5},
        {"1e3", true, 1000},   {"1E+3", true, 1000}, {"0x1p-2", true, 0.25}, {"0x1.8p1", true, 3},
        {"1_000", true, 1000}, {"0x_1p0", true, 1},  {"1e-400", true, 0},    {"007", true, 7},
        {"0x10", false, 0},    {"_1", false, 0},     {"1__0", false, 0},     {"1_", false, 0},
        {"1_.5", false, 0},    {"1e400", false, 0},  {"", false, 0},         {"abc", false, 0},
        {"1.2.3", false, 0},   {"0b101", false, 0},  {"1e", false, 0},       {" 1", false, 0},
        {"1 ", false, 0},      {"+nan", false, 0},   {"infin", false, 0},    {"info", false, 0},
        {".", false, 0},       {"0x", false, 0},
    };
    double v;
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        bool ok = img_parse_go_float(t[i].s, &v);
        if (ok != t[i].ok)
            fail_msg("\"%s\": ok %d, want %d", t[i].s, ok, t[i].ok);
        if (ok && v != t[i].v)
            fail_msg("\"%s\": %g, want %g", t[i].s, v, t[i].v);
    }
    assert_true(img_parse_go_float("inf", &v) && isinf(v) && v > 0);
    assert_true(img_parse_go_float("-Infinity", &v) && isinf(v) && v < 0);
    assert_true(img_parse_go_float("+INF", &v) && isinf(v) && v > 0);
    assert_true(img_parse_go_float("NaN", &v) && isnan(v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(policy_table),
        cmocka_unit_test(policy_error_message_quotes_the_range),
        cmocka_unit_test(policy_stream_of_ten_thousand_tags),
        cmocka_unit_test(policy_extract_expands_like_go),
        cmocka_unit_test(order_parse_accepts_asc_desc_and_default),
        cmocka_unit_test(exclusion_defaults_drop_signatures_and_attestations),
        cmocka_unit_test(exclusion_explicit_list_replaces_defaults),
        cmocka_unit_test(exclusion_invalid_pattern_names_its_index),
        cmocka_unit_test(go_float_follows_strconv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
