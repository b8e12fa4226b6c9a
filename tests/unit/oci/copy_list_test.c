/*
 * Unit tests for the copy-list parser of oci/copy_list.c (berth copy --from-list): comments,
 * blanks, schemes, duplicates by canonical name, and errors naming file and line. The copying
 * itself runs against real registries in tests/integration/test_copy_list.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/copy.h>
#include <berth/oci.h>

static int parse(char ***v, size_t *n, const char *text, berth_error **e)
{
    return berth_copy_list_parse(v, n, text, strlen(text), "refs.txt", e);
}

static void expect_error(const char *text, int code, const char *needle)
{
    char **v = NULL;
    size_t n = 7;
    berth_error *e = NULL;
    char *msg;

    assert_int_equal(parse(&v, &n, text, &e), code);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_non_null(e);
    msg = berth_error_text(e);
    assert_non_null(msg);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    free(msg);
    berth_error_free(e);
}

static void comments_blanks_and_schemes(void **state)
{
    char **v = NULL;
    size_t n = 0;
    berth_error *e = NULL;
    (void)state;
    assert_int_equal(parse(&v, &n,
                           "# mirror for site A\n"
                           "\n"
                           "reg.example/team/app:v1\n"
                           "   oci://reg.example/team/cfg:v2   # pinned by the release\r\n"
                           "\t\n"
                           "docker://127.0.0.1:5000/lib/multi@sha256:"
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
                           "  # indented comment\n"
                           "nginx",
                           &e),
                     0);
    assert_null(e);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "reg.example/team/app:v1");
    assert_string_equal(v[1], "reg.example/team/cfg:v2");
    assert_string_equal(v[2], "127.0.0.1:5000/lib/multi@sha256:"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_string_equal(v[3], "nginx"); /* kept as written, the last line without a newline */
    berth_strv_free(v, n);
}

static void duplicates_by_canonical_name_are_kept_once(void **state)
{
    char **v = NULL;
    size_t n = 0;
    (void)state;
    /* "nginx", "docker.io/library/nginx:latest" and "oci://nginx:latest" are one reference */
    assert_int_equal(parse(&v, &n,
                           "nginx\nreg.example/app:v1\ndocker.io/library/nginx:latest\n"
                           "oci://nginx:latest\nreg.example/app:v1\nreg.example/app:v2\n",
                           NULL),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "nginx");
    assert_string_equal(v[1], "reg.example/app:v1");
    assert_string_equal(v[2], "reg.example/app:v2");
    berth_strv_free(v, n);
}

static void empty_and_comment_only_lists_hold_nothing(void **state)
{
    char **v = (char **)1;
    size_t n = 9;
    (void)state;
    assert_int_equal(berth_copy_list_parse(&v, &n, "", 0, NULL, NULL), 0);
    assert_int_equal(n, 0);
    berth_strv_free(v, n);
    assert_int_equal(parse(&v, &n, "# nothing yet\n\n   \n", NULL), 0);
    assert_int_equal(n, 0);
    berth_strv_free(v, n);
}

static void bad_lines_are_named_with_file_and_line(void **state)
{
    (void)state;
    expect_error("reg.example/app:v1\n\nNot A Reference\n", BERTH_EINVAL, "refs.txt:3");
    expect_error("reg.example/app:v1 extra\n", BERTH_EINVAL, "refs.txt:1");
    expect_error("reg.example/app:v1#nospace\n", BERTH_EINVAL,
                 "refs.txt:1: \"#\" must start a line or follow a blank");
    expect_error("reg.example/app:bad tag!\n", BERTH_EINVAL, "refs.txt:1");
}

static void nul_bytes_are_refused(void **state)
{
    char **v = NULL;
    size_t n = 0;
    berth_error *e = NULL;
    (void)state;
    assert_int_equal(berth_copy_list_parse(&v, &n, "reg/app:v1\n\0\n", 13, "l", &e), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(e), "NUL"));
    berth_error_free(e);
}

static void read_names_a_missing_file(void **state)
{
    char **v = NULL;
    size_t n = 0;
    berth_error *e = NULL;
    char *msg;
    (void)state;
    assert_int_equal(berth_copy_list_read(&v, &n, "/nonexistent/refs.txt", &e), BERTH_ENOTFOUND);
    msg = berth_error_text(e);
    assert_non_null(strstr(msg, "/nonexistent/refs.txt"));
    free(msg);
    berth_error_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comments_blanks_and_schemes),
        cmocka_unit_test(duplicates_by_canonical_name_are_kept_once),
        cmocka_unit_test(empty_and_comment_only_lists_hold_nothing),
        cmocka_unit_test(bad_lines_are_named_with_file_and_line),
        cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(read_names_a_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
