/* Unit tests for core/semver.c: parsing, precedence and Masterminds constraints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/semver.h"

typedef struct parse_case {
    const char *text;
    bool strict;
    bool ok;
    uint64_t major, minor, patch;
    const char *pre, *build; /* NULL when absent */
} parse_case;

static const parse_case parse_cases[] = {
    {"1.2.3", true, true, 1, 2, 3, NULL, NULL},
    {"v1.2.3", true, true, 1, 2, 3, NULL, NULL},
    {"1.2.3-rc.1+build.5", true, true, 1, 2, 3, "rc.1", "build.5"},
    {"1.2.3+meta-data", true, true, 1, 2, 3, NULL, "meta-data"},
    {"v2025.02.03-rc.1", true, true, 2025, 2, 3, "rc.1", NULL},
    {"01.002.0003", true, true, 1, 2, 3, NULL, NULL},
    {"1.2", false, true, 1, 2, 0, NULL, NULL},
    {"1", false, true, 1, 0, 0, NULL, NULL},
    {"v1-beta", false, true, 1, 0, 0, "beta", NULL},
    {"1.2-rc.1", true, true, 1, 2, 0, "rc.1", NULL}, /* two dots: Flux lets it through */
    {"1.0.0--x-", true, true, 1, 0, 0, "-x-", NULL},
    {"18446744073709551615.0.0", true, true, UINT64_MAX, 0, 0, NULL, NULL},
    {"1.2", true, false, 0, 0, 0, NULL, NULL},
    {"1", true, false, 0, 0, 0, NULL, NULL},
    {"", false, false, 0, 0, 0, NULL, NULL},
    {"v", false, false, 0, 0, 0, NULL, NULL},
    {"V1.2.3", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3.4", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3-", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3-a..b", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3-01", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3+", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3+a_b", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.x", false, false, 0, 0, 0, NULL, NULL},
    {" 1.2.3", false, false, 0, 0, 0, NULL, NULL},
    {"1.2.3 ", false, false, 0, 0, 0, NULL, NULL},
    {"18446744073709551616.0.0", false, false, 0, 0, 0, NULL, NULL},
    {"latest", false, false, 0, 0, 0, NULL, NULL},
};

static void semver_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case *c = &parse_cases[i];
        core_semver v;
        berth_error *err = NULL;
        int rc = core_semver_parse(&v, c->text, c->strict, &err);
        if (!c->ok) {
            if (rc != BERTH_EINVAL)
                fail_msg("\"%s\" parsed, want an error", c->text);
            assert_non_null(strstr(berth_error_message(err), "invalid version"));
            assert_null(v.original);
            berth_error_free(err);
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": %s", c->text, berth_error_message(err));
        assert_true(v.major == c->major && v.minor == c->minor && v.patch == c->patch);
        if (c->pre)
            assert_string_equal(v.pre, c->pre);
        else
            assert_null(v.pre);
        if (c->build)
            assert_string_equal(v.build, c->build);
        else
            assert_null(v.build);
        assert_string_equal(v.original, c->text);
        core_semver_dispose(&v);
    }
    core_semver_dispose(NULL);
}

static void semver_strict_error_names_missing_parts(void **state)
{
    (void)state;
    core_semver v;
    berth_error *err = NULL;
    assert_int_equal(core_semver_parse(&v, "v1.2", true, &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err),
                        "invalid version \"v1.2\": needs major.minor.patch");
    berth_error_free(err);
}

static int cmp(const char *a, const char *b)
{
    core_semver va, vb;
    int c;
    if (core_semver_parse(&va, a, false, NULL) < 0 || core_semver_parse(&vb, b, false, NULL) < 0)
        fail_msg("cannot parse \"%s\" or \"%s\"", a, b);
    c = core_semver_compare(&va, &vb);
    core_semver_dispose(&va);
    core_semver_dispose(&vb);
    return c;
}

static void semver_precedence_follows_semver_2(void **state)
{
    (void)state;
    /* SemVer 2.0 item 11's example chain, plus numeric parts and big numbers */
    static const char *const order[] = {
        "0.9.99",
        "1.0.0-0",
        "1.0.0-2",
        "1.0.0-10",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0-rc.1",
        "2.0.0",
        "10.0.0",
        "18446744073709551615.0.0",
    };
    size_t n = sizeof(order) / sizeof(order[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = i < j ? -1 : i > j ? 1 : 0;
            int got = cmp(order[i], order[j]);
            if (got != want)
                fail_msg("compare(%s, %s) = %d, want %d", order[i], order[j], got, want);
        }
}

static void semver_build_metadata_is_ignored(void **state)
{
    (void)state;
    assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
    assert_int_equal(cmp("1.0.0-rc.1+x", "1.0.0-rc.1"), 0);
    assert_int_equal(cmp("v1.2.3", "1.2.3"), 0);
    assert_int_equal(cmp("1.2", "1.2.0"), 0);
    assert_int_equal(cmp("1.0.0-B", "1.0.0-a"), -1); /* ASCII order */
    assert_int_equal(cmp("1.0.0-a-b", "1.0.0-a"), 1);
}

typedef struct check_case {
    const char *constraint;
    const char *version;
    bool want;
} check_case;

static const check_case check_cases[] = {
    /* plain comparisons */
    {"1.2.3", "1.2.3", true},
    {"=1.2.3", "1.2.4", false},
    {"!=1.2.3", "1.2.4", true},
    {"!=1.2.3", "1.2.3", false},
    {">1.2.3", "1.2.4", true},
    {">1.2.3", "1.2.3", false},
    {"<1.2.3", "1.2.2", true},
    {"<1.2.3", "1.2.3", false},
    {">=1.2.3", "1.2.3", true},
    {"=>1.2.3", "1.2.2", false},
    {"<=1.2.3", "1.2.3", true},
    {"=<1.2.3", "1.2.4", false},
    {">= 1.2.3", "1.3.0", true},
    {">=v1.2.3", "1.3.0", true},
    {"1.2.3", "v1.2.3", true},
    {"1.2.3", "1.2.3+build", true},
    /* AND, OR */
    {">=1.0.0 <2.0.0", "1.9.9", true},
    {">=1.0.0 <2.0.0", "2.0.0", false},
    {">=1.0.0, <2.0.0", "0.9.0", false},
    {">=1.0.0,<2.0.0", "1.0.0", true},
    {">=1.0.0 , <2.0.0", "1.5.0", true},
    {"<1.0.0 || >=3.0.0", "0.5.0", true},
    {"<1.0.0 || >=3.0.0", "2.0.0", false},
    {"<1.0.0 || >=3.0.0", "3.1.0", true},
    {"1.2.3||1.2.5", "1.2.5", true},
    /* tilde */
    {"~1.2.3", "1.2.9", true},
    {"~1.2.3", "1.3.0", false},
    {"~1.2.3", "1.2.2", false},
    {"~1.2", "1.2.0", true},
    {"~1.2", "1.3.0", false},
    {"~1", "1.9.0", true},
    {"~1", "2.0.0", false},
    {"~>1.2.3", "1.2.4", true},
    {"~0.0.0", "5.0.0", true},
    /* caret */
    {"^1.2.3", "1.9.0", true},
    {"^1.2.3", "2.0.0", false},
    {"^1.2.3", "1.2.2", false},
    {"^0.2.3", "0.2.9", true},
    {"^0.2.3", "0.3.0", false},
    {"^0.0.3", "0.0.3", true},
    {"^0.0.3", "0.0.4", false},
    {"^0", "0.9.0", true},
    {"^0", "1.0.0", false},
    {"^0.0", "0.0.9", true},
    {"^0.0", "0.1.0", false},
    {"^1.2", "1.2.0", true},
    {"^1.x", "1.9.0", true},
    /* wildcards */
    {"1.x", "1.9.0", true},
    {"1.x", "2.0.0", false},
    {"1.2.x", "1.2.7", true},
    {"1.2.X", "1.3.0", false},
    {"1.2.*", "1.2.0", true},
    {"*", "0.0.1", true},
    {"x", "99.0.0", true},
    {"1.2", "1.2.9", true},
    {"1", "1.9.9", true},
    {"1", "2.0.0", false},
    {">1.x", "1.9.0", false},
    {">1.x", "2.0.0", true},
    {">1.2", "1.2.9", false},
    {">1.2", "1.3.0", true},
    {"<=1.2", "1.2.9", true},
    {"<=1.2", "1.3.0", false},
    {"<=1.x", "1.9.0", true},
    {"!=1.x", "1.5.0", false},
    {"!=1.x", "2.0.0", true},
    {"!=1.2.x", "1.2.5", false},
    {"!=1.2.x", "1.3.0", true},
    /* hyphen ranges */
    {"1.2 - 1.4.5", "1.2.0", true},
    {"1.2 - 1.4.5", "1.4.5", true},
    {"1.2 - 1.4.5", "1.4.6", false},
    {"1.2 - 1.4.5", "1.1.9", false},
    {"1.2.3 - 2", "2.9.0", true},
    {"1.2.3 - 2", "3.0.0", false},
    {"1.0.0 - 1.1.0 || 3.0.0", "3.0.0", true},
    /* pre-releases: only when the AND group carries one */
    {">=1.0.0", "1.1.0-rc.1", false},
    {"*", "1.0.0-rc.1", false},
    {"^1.0.0", "1.2.0-beta", false},
    {">=1.0.0-0", "1.1.0-rc.1", true},
    {">=1.0.0-0", "1.0.0-alpha", true},
    {">=1.0.0-rc.2", "1.0.0-rc.1", false},
    {">=1.0.0-rc.2", "1.0.0-rc.10", true},
    {">=1.0.0-0 <2.0.0", "1.5.0-beta", true},
    {"<2.0.0 >=1.0.0-0", "2.0.0-rc.1", true},
    {"<2.0.0 >=1.0.0-0", "2.0.0", false},
    {">=1.0.0-0 <2.0.0 || >=3.0.0", "3.1.0-rc.1", false},
    {"^1.2.3-beta", "1.2.3-beta.2", true},
    {"^1.2.3-beta", "1.2.3-alpha", false},
    {"~1.2.3-beta", "1.2.4-rc.1", true},
    {"1.2.3-rc.1", "1.2.3-rc.1", true},
    {"1.2.3-rc.1", "1.2.3", false},
};

static void semver_constraint_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        const check_case *c = &check_cases[i];
        core_semver_constraint *cs = NULL;
        core_semver v;
        berth_error *err = NULL;
        if (core_semver_constraint_parse(&cs, c->constraint, &err) < 0)
            fail_msg("constraint \"%s\": %s", c->constraint, berth_error_message(err));
        if (core_semver_parse(&v, c->version, false, &err) < 0)
            fail_msg("version \"%s\": %s", c->version, berth_error_message(err));
        if (core_semver_constraint_check(cs, &v) != c->want)
            fail_msg("\"%s\" check \"%s\": got %d, want %d", c->constraint, c->version, !c->want,
                     c->want);
        assert_string_equal(core_semver_constraint_string(cs), c->constraint);
        core_semver_dispose(&v);
        core_semver_constraint_free(cs);
    }
    core_semver_constraint_free(NULL);
}

static void semver_constraint_rejects_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "||",
        "1.2.3 ||",
        ">=",
        ">>1.2.3",
        "1.2.3,",
        ",1.2.3",
        ">=1.2.3<2",
        "1.2.3 -",
        ">1.0 - 2.0",
        "abc",
        "1.2.3.4",
        "1.2.3-01",
        "1.x.y",
        "1xx",
        "=! 1.2.3",
        ">=1.2.3 |",
        "1.2.3 - - 2",
        "v",
        "~>",
        "1.2.3 2.0.0 - ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        core_semver_constraint *cs = NULL;
        berth_error *err = NULL;
        if (core_semver_constraint_parse(&cs, bad[i], &err) != BERTH_EINVAL)
            fail_msg("constraint \"%s\" parsed, want an error", bad[i]);
        assert_null(cs);
        assert_non_null(strstr(berth_error_message(err), "invalid semver constraint"));
        berth_error_free(err);
    }
}

static void semver_picks_highest_matching_tag_like_flux(void **state)
{
    (void)state;
    /* Flux keeps tags that parse strictly and match, then takes the highest. */
    static const char *const tags[] = {"latest", "1.2",   "v1.4.0",        "1.10.0-rc.1",
                                       "1.9.3",  "2.0.0", "1.9.3+build.7", "sha256-abc.sig"};
    core_semver_constraint *cs = NULL;
    core_semver best = {0};
    const char *winner = NULL;
    assert_int_equal(core_semver_constraint_parse(&cs, ">=1.0.0 <2.0.0", NULL), 0);
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        core_semver v;
        berth_error *err = NULL;
        if (core_semver_parse(&v, tags[i], true, &err) < 0) {
            berth_error_free(err); /* not a version tag: skipped on purpose */
            continue;
        }
        if (core_semver_constraint_check(cs, &v) &&
            (!winner || core_semver_compare(&v, &best) > 0)) {
            core_semver_dispose(&best);
            best = v;
            winner = tags[i];
            continue;
        }
        core_semver_dispose(&v);
    }
    assert_non_null(winner);
    assert_string_equal(winner, "1.9.3");
    core_semver_dispose(&best);
    core_semver_constraint_free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(semver_parse_table),
        cmocka_unit_test(semver_strict_error_names_missing_parts),
        cmocka_unit_test(semver_precedence_follows_semver_2),
        cmocka_unit_test(semver_build_metadata_is_ignored),
        cmocka_unit_test(semver_constraint_table),
        cmocka_unit_test(semver_constraint_rejects_malformed),
        cmocka_unit_test(semver_picks_highest_matching_tag_like_flux),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
