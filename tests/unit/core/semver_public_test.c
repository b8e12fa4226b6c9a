/* Unit tests for core/semver_public.c: the public semver wrapper the CLI filters tags with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/semver.h>

static void semver_public_constraint_filters_tags_like_flux(void **state)
{
    berth_semver_constraint *c = NULL;
    berth_error *err = NULL;
    (void)state;

    assert_int_equal(berth_semver_constraint_parse(&c, ">=1.0.0 <2.0.0", &err), 0);
    assert_true(berth_semver_constraint_check(c, "1.2.3"));
    assert_true(berth_semver_constraint_check(c, "v1.9.0"));
    assert_false(berth_semver_constraint_check(c, "2.0.0"));
    assert_false(berth_semver_constraint_check(c, "1.2"));        /* fewer than two dots */
    assert_false(berth_semver_constraint_check(c, "1.5.0-rc.1")); /* prerelease */
    assert_false(berth_semver_constraint_check(c, "latest"));
    berth_semver_constraint_free(c);
}

static void semver_public_rejects_malformed_constraint(void **state)
{
    berth_semver_constraint *c = NULL;
    berth_error *err = NULL;
    char *text;
    (void)state;

    assert_int_equal(berth_semver_constraint_parse(&c, ">=x.y.z!!", &err), BERTH_EINVAL);
    assert_null(c);
    text = berth_error_text(err);
    assert_non_null(strstr(text, ">=x.y.z!!"));
    free(text);
    berth_error_free(err);
}

static void semver_public_compare_orders_by_precedence(void **state)
{
    (void)state;
    assert_true(berth_semver_compare("1.10.0", "1.9.0") > 0);
    assert_true(berth_semver_compare("v2.0.0", "1.99.99") > 0);
    assert_true(berth_semver_compare("1.0.0-rc.1", "1.0.0") < 0);
    assert_int_equal(berth_semver_compare("1.0.0+a", "1.0.0+b"), 0);
    assert_true(berth_semver_compare("latest", "0.0.1") < 0); /* non-versions sort first */
    assert_true(berth_semver_compare("b", "a") > 0);
    assert_true(berth_semver_is_valid("v1.2.3"));
    assert_false(berth_semver_is_valid("1.2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(semver_public_constraint_filters_tags_like_flux),
        cmocka_unit_test(semver_public_rejects_malformed_constraint),
        cmocka_unit_test(semver_public_compare_orders_by_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
