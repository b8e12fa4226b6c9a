/* Unit tests for core/: errors, buffers, atomic files, safe paths, base64, time. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

static void error_wrap_keeps_cause_code_and_renders_chain(void **state)
{
    (void)state;
    berth_error *err = NULL;
    assert_int_equal(core_error_set(&err, BERTH_ENOTFOUND, "manifest %s not found", "\"a:1\""),
                     BERTH_ENOTFOUND);
    assert_int_equal(core_error_wrap(&err, "reconcile %s", "app/web"), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_code(err), BERTH_ENOTFOUND);
    char *text = berth_error_text(err);
    assert_string_equal(text, "reconcile app/web: manifest \"a:1\" not found");
    free(text);
    assert_string_equal(berth_error_message(berth_error_cause(err)), "manifest \"a:1\" not found");
    berth_error_free(err);
}

static void error_null_err_still_returns_code(void **state)
{
    (void)state;
    assert_int_equal(core_error_set(NULL, BERTH_EAUTH, "x"), BERTH_EAUTH);
    assert_int_equal(core_error_wrap(NULL, "y"), BERTH_ERROR);
}

static void error_long_message_is_cut_with_ellipsis(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    berth_error *err = NULL;
    core_error_set(&err, BERTH_EINVAL, "%s", big);
    const char *m = berth_error_message(err);
    assert_int_equal(strlen(m), 255);
    assert_string_equal(m + 252, "...");
    berth_error_free(err);
}

static void error_transient_only_for_net_and_timeout(void **state)
{
    (void)state;
    berth_error *a = NULL, *b = NULL;
    core_error_set(&a, BERTH_ENET, "reset");
    core_error_set(&b, BERTH_EVERIFY, "digest");
    assert_true(berth_error_is_transient(a));
    assert_false(berth_error_is_transient(b));
    berth_error_free(a);
    berth_error_free(b);
}

static void buf_refuses_growth_past_ceiling(void **state)
{
    (void)state;
    berth_buf b;
    berth_buf_init(&b, 8);
    assert_int_equal(berth_buf_puts(&b, "12345678"), 0);
    assert_int_equal(berth_buf_put(&b, "9", 1), BERTH_EINVAL);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.ptr, "12345678");
    berth_buf_dispose(&b);
}

static void buf_printf_appends(void **state)
{
    (void)state;
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(berth_buf_printf(&b, "%s-%d", "a", 42), 0);
    assert_int_equal(berth_buf_printf(&b, "/%s", "b"), 0);
    assert_string_equal(b.ptr, "a-42/b");
    char *p = berth_buf_detach(&b);
    assert_null(b.ptr);
    assert_string_equal(p, "a-42/b");
    free(p);
}

static void fs_write_atomic_replaces_whole_file(void **state)
{
    (void)state;
    char *dir = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-core-test-", NULL), 0);
    char *path = core_sprintf("%s/state.json", dir);
    assert_int_equal(core_fs_write_atomic(path, "old", 3, 0600, NULL), 0);
    assert_int_equal(core_fs_write_atomic(path, "newer", 5, 0640, NULL), 0);
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, path, 0, NULL), 0);
    assert_string_equal(b.ptr, "newer");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    berth_buf_dispose(&b);
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    assert_false(core_fs_exists(dir));
    core_free(path);
    core_free(dir);
}

/* The number of entries of dir other than "." and "..". */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void fs_atomic_stream_keeps_the_old_file_until_commit(void **state)
{
    (void)state;
    char *dir = NULL;
    core_fs_atomic a;
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-core-test-", NULL), 0);
    char *path = core_sprintf("%s/tags", dir);
    assert_int_equal(core_fs_write_atomic(path, "old\n", 4, 0600, NULL), 0);

    /* aborted: the old file stays, no temp file is left */
    assert_int_equal(core_fs_atomic_open(&a, path, 0600, NULL), 0);
    assert_int_equal(core_fs_atomic_write(&a, "a\n", 2, NULL), 0);
    assert_int_equal(dir_entries(dir), 2); /* tags and the temp */
    core_fs_atomic_abort(&a);
    core_fs_atomic_abort(&a); /* twice is harmless */
    assert_int_equal(dir_entries(dir), 1);
    assert_int_equal(core_fs_read_file(&b, path, 0, NULL), 0);
    assert_string_equal(b.ptr, "old\n");
    berth_buf_clear(&b);

    /* committed in pieces: the new content replaces the file whole */
    assert_int_equal(core_fs_atomic_open(&a, path, 0640, NULL), 0);
    assert_int_equal(core_fs_atomic_write(&a, "a\n", 2, NULL), 0);
    assert_int_equal(core_fs_atomic_write(&a, "b\n", 2, NULL), 0);
    assert_int_equal(core_fs_atomic_commit(&a, NULL), 0);
    core_fs_atomic_abort(&a); /* after a commit: does nothing */
    assert_int_equal(dir_entries(dir), 1);
    assert_int_equal(core_fs_read_file(&b, path, 0, NULL), 0);
    assert_string_equal(b.ptr, "a\nb\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    berth_buf_dispose(&b);
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(path);
    core_free(dir);
}

static void fs_read_file_refuses_over_ceiling_naming_file(void **state)
{
    (void)state;
    char *dir = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-core-test-", NULL), 0);
    char *path = core_sprintf("%s/big", dir);
    assert_int_equal(core_fs_write_atomic(path, "0123456789", 10, 0600, NULL), 0);
    berth_buf b = BERTH_BUF_INIT;
    berth_error *err = NULL;
    assert_int_equal(core_fs_read_file(&b, path, 4, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "big"));
    berth_error_free(err);
    berth_buf_dispose(&b);
    core_fs_remove_all(dir, NULL);
    core_free(path);
    core_free(dir);
}

static void fs_read_missing_file_is_not_found(void **state)
{
    (void)state;
    berth_buf b = BERTH_BUF_INIT;
    berth_error *err = NULL;
    assert_int_equal(core_fs_read_file(&b, "/nonexistent/berth", 0, &err), BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), "/nonexistent/berth"));
    berth_error_free(err);
}

static void fs_relpath_refuses_escapes(void **state)
{
    (void)state;
    const char *bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a/..", "a\\b", ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        berth_error *err = NULL;
        assert_int_equal(core_fs_check_relpath(bad[i], &err), BERTH_EINVAL);
        berth_error_free(err);
    }
    const char *good[] = {"a", "a/b.yaml", "./a", "a/..b", "..a/b", "a/b/"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(core_fs_check_relpath(good[i], NULL), 0);
}

static void fs_mkdirs_creates_nested_and_is_idempotent(void **state)
{
    (void)state;
    char *dir = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-core-test-", NULL), 0);
    char *deep = core_sprintf("%s/a/b/c", dir);
    assert_int_equal(core_fs_mkdirs(deep, 0755, NULL), 0);
    assert_int_equal(core_fs_mkdirs(deep, 0755, NULL), 0);
    assert_true(core_fs_is_dir(deep));
    char *file = core_sprintf("%s/a/f", dir);
    assert_int_equal(core_fs_write_atomic(file, "x", 1, 0600, NULL), 0);
    char *under = core_sprintf("%s/a/f/g", dir);
    berth_error *err = NULL;
    assert_true(core_fs_mkdirs(under, 0755, &err) < 0);
    berth_error_free(err);
    core_fs_remove_all(dir, NULL);
    core_free(under);
    core_free(file);
    core_free(deep);
    core_free(dir);
}

static void fs_sweep_removes_only_atomic_write_leftovers(void **state)
{
    (void)state;
    char *dir = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-core-test-", NULL), 0);
    char *ns = core_sprintf("%s/ns", dir);
    char *keep = core_sprintf("%s/ns/a.yaml", dir);
    char *dotkeep = core_sprintf("%s/ns/.hidden", dir);
    char *left = core_sprintf("%s/ns/.a.yaml.tmp-AbC123", dir);
    assert_int_equal(core_fs_mkdirs(ns, 0755, NULL), 0);
    assert_int_equal(core_fs_write_atomic(keep, "x", 1, 0644, NULL), 0);
    assert_int_equal(core_fs_write_atomic(dotkeep, "x", 1, 0644, NULL), 0);
    assert_int_equal(core_fs_write_atomic(left, "", 0, 0600, NULL), 0);
    assert_true(core_fs_is_temp_name(".a.yaml.tmp-AbC123"));
    assert_false(core_fs_is_temp_name("a.yaml"));
    assert_false(core_fs_is_temp_name(".hidden"));
    assert_int_equal(core_fs_sweep_temps(dir, 1, NULL), 0);
    assert_true(core_fs_exists(keep));
    assert_true(core_fs_exists(dotkeep));
    assert_false(core_fs_exists(left));
    core_fs_remove_all(dir, NULL);
    core_free(left);
    core_free(dotkeep);
    core_free(keep);
    core_free(ns);
    core_free(dir);
}

static void base64_round_trip_and_optional_padding(void **state)
{
    (void)state;
    char *enc = core_base64_encode("berth:s3cret", 12);
    assert_string_equal(enc, "YmVydGg6czNjcmV0");
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_base64_decode(&b, enc, strlen(enc), false, NULL), 0);
    assert_memory_equal(b.ptr, "berth:s3cret", 12);
    berth_buf_clear(&b);
    assert_int_equal(core_base64_decode(&b, "e30=", 4, false, NULL), 0);
    assert_string_equal(b.ptr, "{}");
    berth_buf_clear(&b);
    assert_int_equal(core_base64_decode(&b, "e30", 3, false, NULL), 0);
    assert_string_equal(b.ptr, "{}");
    berth_error *err = NULL;
    assert_int_equal(core_base64_decode(&b, "e3!0", 4, false, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "base64"));
    berth_error_free(err);
    berth_buf_dispose(&b);
    core_free(enc);
}

static void time_rfc3339_round_trip(void **state)
{
    (void)state;
    char out[32];
    core_time_rfc3339(out, 0);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    core_time_rfc3339(out, 1735787045);
    assert_string_equal(out, "2025-01-02T03:04:05Z");
    int64_t t = 0;
    assert_int_equal(core_time_parse_rfc3339(&t, "2025-01-02T03:04:05Z"), 0);
    assert_int_equal(t, 1735787045);
    assert_int_equal(core_time_parse_rfc3339(&t, "2025-01-02T05:04:05.123+02:00"), 0);
    assert_int_equal(t, 1735787045);
    assert_int_equal(core_time_parse_rfc3339(&t, "2025-13-02T03:04:05Z"), BERTH_EINVAL);
    assert_int_equal(core_time_parse_rfc3339(&t, "yesterday"), BERTH_EINVAL);
}

static void sha256_stream_equals_one_shot(void **state)
{
    (void)state;
    core_sha256 *h = NULL;
    char hex[65], one[72];
    assert_int_equal(core_sha256_new(&h, NULL), 0);
    core_sha256_update(h, "{", 1);
    core_sha256_update(h, "}", 1);
    core_sha256_final_hex(h, hex);
    core_sha256_free(h);
    core_sha256_digest(one, "{}", 2);
    assert_string_equal(one,
                        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    assert_string_equal(one + 7, hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_wrap_keeps_cause_code_and_renders_chain),
        cmocka_unit_test(error_null_err_still_returns_code),
        cmocka_unit_test(error_long_message_is_cut_with_ellipsis),
        cmocka_unit_test(error_transient_only_for_net_and_timeout),
        cmocka_unit_test(buf_refuses_growth_past_ceiling),
        cmocka_unit_test(buf_printf_appends),
        cmocka_unit_test(fs_write_atomic_replaces_whole_file),
        cmocka_unit_test(fs_atomic_stream_keeps_the_old_file_until_commit),
        cmocka_unit_test(fs_read_file_refuses_over_ceiling_naming_file),
        cmocka_unit_test(fs_read_missing_file_is_not_found),
        cmocka_unit_test(fs_relpath_refuses_escapes),
        cmocka_unit_test(fs_mkdirs_creates_nested_and_is_idempotent),
        cmocka_unit_test(fs_sweep_removes_only_atomic_write_leftovers),
        cmocka_unit_test(base64_round_trip_and_optional_padding),
        cmocka_unit_test(time_rfc3339_round_trip),
        cmocka_unit_test(sha256_stream_equals_one_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
