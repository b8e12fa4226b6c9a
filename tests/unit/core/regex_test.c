/* Unit tests for core/regex.c: RE2 syntax and semantics over PCRE2 (include/berth/regex.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/regex.h>

/* Match text against pattern, which must compile. */
static bool matches(const char *pattern, const char *text)
{
    berth_regex *re = NULL;
    berth_error *err = NULL;
    bool ok = false;

    assert_int_equal(berth_regex_compile(&re, pattern, &err), 0);
    assert_null(err);
    assert_int_equal(berth_regex_match(&ok, re, text, &err), 0);
    berth_regex_free(re);
    return ok;
}

/* Compile pattern, expect BERTH_EINVAL with word in the message. */
static void refused(const char *pattern, const char *word)
{
    berth_regex *re = NULL;
    berth_error *err = NULL;
    char *text;

    assert_int_equal(berth_regex_compile(&re, pattern, &err), BERTH_EINVAL);
    assert_null(re);
    assert_int_equal(berth_error_code(err), BERTH_EINVAL);
    text = berth_error_text(err);
    assert_non_null(strstr(text, word));
    assert_non_null(strstr(text, pattern));
    free(text);
    berth_error_free(err);
}

static void regex_search_is_unanchored(void **state)
{
    (void)state;
    assert_true(matches("rc", "v1.0.0-rc.1"));
    assert_true(matches("^v1\\.", "v1.2.3"));
    assert_false(matches("^v1\\.", "xv1.2.3"));
    assert_false(matches("rc", "v1.0.0"));
}

static void regex_dollar_matches_only_at_the_very_end(void **state)
{
    (void)state;
    assert_true(matches("a$", "ba"));
    assert_false(matches("a$", "a\n")); /* PCRE's default would match here; RE2 does not */
}

static void regex_accepts_re2_groups_flags_and_classes(void **state)
{
    (void)state;
    assert_true(matches("(?i)ABC", "xabcx"));
    assert_true(matches("(?P<major>[0-9]+)\\.x", "12.x"));
    assert_true(matches("(?:a|b)+c", "abac"));
    assert_true(matches("^[]a]+$", "]a]"));
    assert_true(matches("^[[:digit:]]+$", "123"));
    assert_true(matches("a+?b", "aab"));
    assert_true(matches("\\Q(?=\\E", "x(?=y"));
    assert_true(matches("^\\d{3}$", "123"));
}

static void regex_is_utf8_aware(void **state)
{
    (void)state;
    assert_true(matches("^.$", "\xc3\xa9"));
    assert_true(matches("^\xc3\xa9+$", "\xc3\xa9\xc3\xa9"));
    assert_false(matches("^..$", "\xc3\xa9"));
}

static void regex_rejects_backreferences(void **state)
{
    (void)state;
    refused("(a)\\1", "backreference");
    refused("(?P<x>a)(?P=x)", "backreference");
    refused("(a)\\g1", "backreference");
    refused("(?<x>a)\\k<x>", "backreference");
}

static void regex_rejects_lookaround(void **state)
{
    (void)state;
    refused("v(?=1)", "lookaround");
    refused("v(?!1)", "lookaround");
    refused("(?<=v)1", "lookaround");
    refused("(?<!v)1", "lookaround");
}

static void regex_rejects_other_backtracking_constructs(void **state)
{
    (void)state;
    refused("(?>a+)b", "atomic");
    refused("a*+b", "possessive");
    refused("a{2}+", "possessive");
    refused("(*UTF)a", "verb");
    refused("(?(1)a|b)", "conditional");
    refused("(a(?R)?b)", "group");
    refused("a\\Z", "escape");
    refused("\\Ka", "escape");
}

static void regex_reports_syntax_errors_with_offset(void **state)
{
    (void)state;
    refused("(v1", "offset");
    refused("[a", "offset");
    refused("a\\", "backslash");
}

static void regex_free_accepts_null(void **state)
{
    (void)state;
    berth_regex_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(regex_search_is_unanchored),
        cmocka_unit_test(regex_dollar_matches_only_at_the_very_end),
        cmocka_unit_test(regex_accepts_re2_groups_flags_and_classes),
        cmocka_unit_test(regex_is_utf8_aware),
        cmocka_unit_test(regex_rejects_backreferences),
        cmocka_unit_test(regex_rejects_lookaround),
        cmocka_unit_test(regex_rejects_other_backtracking_constructs),
        cmocka_unit_test(regex_reports_syntax_errors_with_offset),
        cmocka_unit_test(regex_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
