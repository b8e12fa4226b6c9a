/*
 * Unit tests for oci/extract.c (berth_extractor, berth_artifact_extract_file) and the block
 * queue under it. The hostile archives come from testdata/artifacts (mk-evil.sh).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/artifact.h>

#include "core/core.h"
#include "oci/gzip.h"

/* ---- helpers ---- */
static char *fixture(const char *name)
{
    const char *td = getenv("BERTH_TESTDATA");
    char *p = core_sprintf("%s/artifacts/%s", td ? td : "testdata", name);
    assert_non_null(p);
    return p;
}

static char *tmpdir(void)
{
    char *p = core_strdup("/tmp/berth-extract-test-XXXXXX");
    assert_non_null(p);
    assert_non_null(mkdtemp(p));
    return p;
}

static char *join(const char *a, const char *b)
{
    char *p = core_sprintf("%s/%s", a, b);
    assert_non_null(p);
    return p;
}

static void rm_rf(char *p)
{
    assert_int_equal(core_fs_remove_all(p, NULL), 0);
    core_free(p);
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, path, 1 << 20, NULL), 0);
    return berth_buf_detach(&b);
}

static void read_all(const char *path, berth_buf *out)
{
    berth_buf_init(out, 0);
    assert_int_equal(core_fs_read_file(out, path, 64u << 20, NULL), 0);
}

/* Extract a fixture into a fresh directory; returns the code, *text_out the error text. */
static int extract_fixture(const char *name, const berth_extract_opts *opts, char **dir_out,
                           char **text_out)
{
    char *tgz = fixture(name), *dir = tmpdir();
    berth_error *err = NULL;
    int rc = berth_artifact_extract_file(tgz, dir, opts, &err);
    if (rc < 0) {
        assert_non_null(err);
        assert_int_equal(berth_error_code(err), rc);
        *text_out = berth_error_text(err);
    } else {
        assert_null(err);
        *text_out = NULL;
    }
    berth_error_free(err);
    core_free(tgz);
    *dir_out = dir;
    return rc;
}

static void expect_refused(const char *name, const char *word1, const char *word2)
{
    char *dir, *text;
    assert_int_equal(extract_fixture(name, NULL, &dir, &text), BERTH_EINVAL);
    if (!strstr(text, word1) || (word2 && !strstr(text, word2)))
        fail_msg("%s: message \"%s\" lacks \"%s\"/\"%s\"", name, text, word1, word2 ? word2 : "");
    free(text);
    rm_rf(dir);
}

/* ---- hostile archives ---- */
static void extract_rejects_dotdot_entry(void **state)
{
    (void)state;
    expect_refused("dotdot.tar.gz", "\"../x\"", "escapes");
    expect_refused("nested-dotdot.tar.gz", "sub/../../x", "escapes");
}

static void extract_rejects_absolute_path(void **state)
{
    (void)state;
    expect_refused("abs.tar.gz", "/abs/x", "absolute");
}

static void extract_rejects_backslash(void **state)
{
    (void)state;
    expect_refused("backslash.tar.gz", "a\\..\\x", "backslash");
}

static void extract_rejects_escaping_symlink(void **state)
{
    (void)state;
    expect_refused("symlink-escape.tar.gz", "sub/evil", "outside");
    expect_refused("symlink-abs.tar.gz", "/etc/passwd", "outside");
}

static void extract_rejects_hardlink(void **state)
{
    (void)state;
    expect_refused("hardlink.tar.gz", "b.yaml", "hard link");
}

static void extract_rejects_device_and_fifo(void **state)
{
    (void)state;
    expect_refused("device.tar.gz", "\"null\"", "character device");
    expect_refused("fifo.tar.gz", "\"pipe\"", "fifo");
}

static void extract_skips_in_tree_symlink(void **state)
{
    (void)state;
    char *dir, *text;
    assert_int_equal(extract_fixture("symlink-inside.tar.gz", NULL, &dir, &text), 0);
    char *link = join(dir, "sub/link"), *b = join(dir, "sub/b.yaml");
    struct stat st;
    assert_int_equal(lstat(link, &st), -1);
    assert_int_equal(lstat(b, &st), 0);
    core_free(link);
    core_free(b);
    rm_rf(dir);
}

static void extract_never_writes_through_archive_symlink(void **state)
{
    (void)state;
    /* "sub" -> "." is skipped; "sub/x" then lands in a real directory "sub". */
    char *dir, *text;
    assert_int_equal(extract_fixture("symlink-dir-write.tar.gz", NULL, &dir, &text), 0);
    char *sub = join(dir, "sub"), *top = join(dir, "x");
    struct stat st;
    assert_int_equal(lstat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(lstat(top, &st), -1);
    core_free(sub);
    core_free(top);
    rm_rf(dir);
}

static void extract_does_not_follow_existing_symlink(void **state)
{
    (void)state;
    char *dir = tmpdir(), *outside = tmpdir();
    char *link = join(dir, "sub"), *tgz = fixture("good.tar.gz");
    assert_int_equal(symlink(outside, link), 0);
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_extract_file(tgz, dir, NULL, &err), BERTH_EINVAL);
    char *text = berth_error_text(err);
    assert_non_null(strstr(text, "sub"));
    free(text);
    berth_error_free(err);
    assert_int_equal(count_entries(outside), 0);
    core_free(link);
    core_free(tgz);
    rm_rf(dir);
    rm_rf(outside);
}

/* ---- bombs ---- */
static void extract_size_ceiling_trips_on_bomb(void **state)
{
    (void)state;
    berth_extract_opts opts = BERTH_EXTRACT_OPTS_INIT;
    opts.max_bytes = 1 << 20;
    char *dir, *text;
    assert_int_equal(extract_fixture("zeros.tar.gz", &opts, &dir, &text), BERTH_EINVAL);
    assert_non_null(strstr(text, "exceeds"));
    assert_non_null(strstr(text, "zeros.bin"));
    free(text);
    rm_rf(dir);
    /* Within the default ceiling the same archive is fine. */
    assert_int_equal(extract_fixture("zeros.tar.gz", NULL, &dir, &text), 0);
    rm_rf(dir);
}

static void extract_huge_header_fails_before_writing(void **state)
{
    (void)state;
    char *dir, *text;
    assert_int_equal(extract_fixture("huge-header.tar.gz", NULL, &dir, &text), BERTH_EINVAL);
    assert_non_null(strstr(text, "exceeds"));
    assert_non_null(strstr(text, "huge.bin"));
    free(text);
    assert_int_equal(count_entries(dir), 0);
    rm_rf(dir);
}

static void extract_entry_ceiling_trips(void **state)
{
    (void)state;
    berth_extract_opts opts = BERTH_EXTRACT_OPTS_INIT;
    opts.max_entries = 50;
    char *dir, *text;
    assert_int_equal(extract_fixture("many.tar.gz", &opts, &dir, &text), BERTH_EINVAL);
    assert_non_null(strstr(text, "50 entries"));
    free(text);
    rm_rf(dir);
    assert_int_equal(extract_fixture("many.tar.gz", NULL, &dir, &text), 0);
    assert_int_equal(count_entries(dir), 200);
    rm_rf(dir);
}

/* ---- well-formed input ---- */
static void check_good_tree(const char *dir)
{
    char *a = join(dir, "a.yaml"), *run = join(dir, "sub/run.sh");
    char *h = join(dir, "sub/h\xc3\xa9llo.yaml"), *deep = join(dir, "deep/er/file.txt");
    char *sub = join(dir, "sub"), *empty = join(dir, "empty");
    char *text = slurp(a);
    assert_string_equal(text, "a: 1\n");
    free(text);
    text = slurp(h);
    assert_string_equal(text, "caf\xc3\xa9: 2\n");
    free(text);
    text = slurp(deep);
    assert_string_equal(text, "implicit parents\n");
    free(text);
    struct stat st;
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(stat(run, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755 & ~um);
    assert_int_equal(stat(a, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644 & ~um);
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0700, 0700);
    assert_int_equal(stat(empty, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    core_free(a);
    core_free(run);
    core_free(h);
    core_free(deep);
    core_free(sub);
    core_free(empty);
}

static void extract_good_archive_creates_tree(void **state)
{
    (void)state;
    char *dir, *text;
    assert_int_equal(extract_fixture("good.tar.gz", NULL, &dir, &text), 0);
    check_good_tree(dir);
    rm_rf(dir);
}

static void extract_plain_tar_and_multi_member_gzip(void **state)
{
    (void)state;
    char *dir, *text;
    assert_int_equal(extract_fixture("good.tar", NULL, &dir, &text), 0);
    check_good_tree(dir);
    rm_rf(dir);
    assert_int_equal(extract_fixture("multi.tar.gz", NULL, &dir, &text), 0);
    check_good_tree(dir);
    rm_rf(dir);
}

/* Feed a file in pieces of the given size; return the code and the diff_id. */
static int feed(const char *file, size_t piece, char diff_id[72], char **dir_out, berth_error **err)
{
    berth_buf data;
    read_all(file, &data);
    char *dir = tmpdir();
    berth_extractor *x = NULL;
    assert_int_equal(berth_extractor_new(&x, dir, NULL, err), 0);
    for (size_t off = 0; off < data.len; off += piece) {
        size_t n = data.len - off < piece ? data.len - off : piece;
        if (berth_extractor_write(x, data.ptr + off, n) < 0)
            break;
    }
    int rc = berth_extractor_finish(x, diff_id, err);
    berth_extractor_free(x);
    berth_buf_dispose(&data);
    *dir_out = dir;
    return rc;
}

static void extractor_diff_id_is_sha256_of_tar_for_any_chunking(void **state)
{
    (void)state;
    char *plain = fixture("good.tar"), *tgz = fixture("good.tar.gz");
    berth_buf tar;
    read_all(plain, &tar);
    char want[72];
    core_sha256_digest(want, tar.ptr, tar.len);
    size_t pieces[] = {1, 7, 512, 100000};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        char got[72] = "";
        char *dir;
        assert_int_equal(feed(tgz, pieces[i], got, &dir, NULL), 0);
        assert_string_equal(got, want);
        check_good_tree(dir);
        rm_rf(dir);
    }
    berth_buf_dispose(&tar);
    core_free(plain);
    core_free(tgz);
}

static void extract_truncated_gzip_is_an_error(void **state)
{
    (void)state;
    char *src = fixture("zeros.tar.gz"), *work = tmpdir();
    char *cut = join(work, "cut.tar.gz");
    berth_buf data;
    read_all(src, &data);
    /* Half of the stream: the tar is not finished either. */
    assert_int_equal(core_fs_write_atomic(cut, data.ptr, data.len / 2, 0600, NULL), 0);
    char *dir = tmpdir();
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_extract_file(cut, dir, NULL, &err), BERTH_EINVAL);
    char *text = berth_error_text(err);
    assert_true(strstr(text, "truncated") || strstr(text, "Truncated"));
    free(text);
    berth_error_free(err);
    /* Only the 8-byte trailer missing: the tar is complete, the gzip stream is not. */
    err = NULL;
    assert_int_equal(core_fs_write_atomic(cut, data.ptr, data.len - 4, 0600, NULL), 0);
    assert_int_equal(berth_artifact_extract_file(cut, dir, NULL, &err), BERTH_EINVAL);
    text = berth_error_text(err);
    assert_non_null(strstr(text, "truncated gzip"));
    free(text);
    berth_error_free(err);
    berth_buf_dispose(&data);
    core_free(src);
    core_free(cut);
    rm_rf(dir);
    rm_rf(work);
}

static void extract_corrupt_gzip_is_an_error(void **state)
{
    (void)state;
    char *src = fixture("good.tar.gz"), *work = tmpdir();
    char *bad = join(work, "bad.tar.gz");
    berth_buf data;
    read_all(src, &data);
    data.ptr[data.len - 6] ^= 0x55; /* inside the CRC-32 */
    assert_int_equal(core_fs_write_atomic(bad, data.ptr, data.len, 0600, NULL), 0);
    char *dir = tmpdir();
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_extract_file(bad, dir, NULL, &err), BERTH_EINVAL);
    char *text = berth_error_text(err);
    assert_non_null(strstr(text, "gzip"));
    free(text);
    berth_error_free(err);
    /* Trailing bytes that are not another member. */
    berth_buf_dispose(&data);
    read_all(src, &data);
    assert_int_equal(berth_buf_puts(&data, "garbage!"), 0);
    assert_int_equal(core_fs_write_atomic(bad, data.ptr, data.len, 0600, NULL), 0);
    rm_rf(dir);
    dir = tmpdir();
    err = NULL;
    assert_int_equal(berth_artifact_extract_file(bad, dir, NULL, &err), BERTH_EINVAL);
    text = berth_error_text(err);
    assert_non_null(strstr(text, "gzip"));
    free(text);
    berth_error_free(err);
    berth_buf_dispose(&data);
    core_free(src);
    core_free(bad);
    rm_rf(dir);
    rm_rf(work);
}

static void extract_not_a_tar_is_an_error(void **state)
{
    (void)state;
    char *work = tmpdir(), *f = join(work, "junk"), *dir = tmpdir();
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 1);
    assert_int_equal(core_fs_write_atomic(f, junk, sizeof(junk), 0600, NULL), 0);
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_extract_file(f, dir, NULL, &err), BERTH_EINVAL);
    char *text = berth_error_text(err);
    assert_non_null(strstr(text, "reading the layer"));
    free(text);
    berth_error_free(err);
    core_free(f);
    rm_rf(work);
    rm_rf(dir);
}

static void extractor_write_fails_after_worker_error(void **state)
{
    (void)state;
    char *tgz = fixture("device.tar.gz"), *dir = tmpdir();
    berth_buf data;
    read_all(tgz, &data);
    berth_extractor *x = NULL;
    assert_int_equal(berth_extractor_new(&x, dir, NULL, NULL), 0);
    assert_int_equal(berth_extractor_write(x, data.ptr, data.len), 0);
    berth_error *err = NULL;
    assert_int_equal(berth_extractor_finish(x, NULL, &err), BERTH_EINVAL);
    berth_error_free(err);
    assert_int_equal(berth_extractor_write(x, "x", 1), BERTH_EINVAL); /* after finish */
    berth_extractor_free(x);
    /* A worker that fails while input keeps coming makes write() return its code. */
    x = NULL;
    assert_int_equal(berth_extractor_new(&x, dir, NULL, NULL), 0);
    char zeros[65536];
    memset(zeros, 0x42, sizeof(zeros));
    int rc = 0;
    for (int i = 0; i < 4096 && rc == 0; i++) /* 256 MiB of junk at most */
        rc = berth_extractor_write(x, zeros, sizeof(zeros));
    assert_int_equal(rc, BERTH_EINVAL);
    berth_extractor_free(x); /* without finish: joins the worker */
    berth_buf_dispose(&data);
    core_free(tgz);
    rm_rf(dir);
}

/* ---- staging + commit, as pull does ---- */
static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), 0644, NULL), 0);
    core_free(p);
}

static void staging_then_commit_moves_files(void **state)
{
    (void)state;
    char *target = tmpdir(), *staging = tmpdir();
    write_text(target, "a.yaml", "old\n");
    write_text(target, "keep.txt", "untouched\n");
    char *tgz = fixture("good.tar.gz");
    assert_int_equal(berth_artifact_extract_file(tgz, staging, NULL, NULL), 0);
    assert_int_equal(berth_artifact_commit_dir(staging, target, NULL), 0);
    check_good_tree(target);
    char *keep = join(target, "keep.txt");
    char *text = slurp(keep);
    assert_string_equal(text, "untouched\n");
    free(text);
    assert_false(core_fs_exists(staging));
    /* a.yaml keep.txt sub empty deep: no trash directory left behind */
    assert_int_equal(count_entries(target), 5);
    core_free(keep);
    core_free(tgz);
    rm_rf(target);
    core_free(staging);
}

static void failed_extraction_leaves_target_untouched(void **state)
{
    (void)state;
    char *target = tmpdir(), *staging = tmpdir();
    write_text(target, "a.yaml", "old\n");
    char *tgz = fixture("hardlink.tar.gz"); /* a.yaml is extracted before the refusal */
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_extract_file(tgz, staging, NULL, &err), BERTH_EINVAL);
    berth_error_free(err);
    assert_int_equal(core_fs_remove_all(staging, NULL), 0); /* what pull does */
    char *a = join(target, "a.yaml");
    char *text = slurp(a);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(count_entries(target), 1);
    core_free(a);
    core_free(tgz);
    rm_rf(target);
    core_free(staging);
}

static void commit_rolls_back_when_a_move_fails(void **state)
{
    (void)state;
    /* A staging directory on another file system makes rename() fail with EXDEV after the
     * old entry was moved aside: the old entry must come back. */
    struct stat st_tmp, st_shm;
    if (stat("/tmp", &st_tmp) < 0 || stat("/dev/shm", &st_shm) < 0 ||
        st_tmp.st_dev == st_shm.st_dev) {
        skip();
        return;
    }
    char *target = tmpdir();
    char *staging = core_strdup("/dev/shm/berth-commit-test-XXXXXX");
    assert_non_null(mkdtemp(staging));
    write_text(target, "a.yaml", "old\n");
    write_text(staging, "a.yaml", "new\n");
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_commit_dir(staging, target, &err), BERTH_EIO);
    char *text = berth_error_text(err);
    assert_non_null(strstr(text, "a.yaml"));
    free(text);
    berth_error_free(err);
    char *a = join(target, "a.yaml");
    text = slurp(a);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(count_entries(target), 1);
    assert_int_equal(count_entries(staging), 1);
    core_free(a);
    rm_rf(target);
    rm_rf(staging);
}

/* ---- the block queue ---- */
typedef struct qtest {
    oci_blockq *q;
    size_t total;
    uint64_t sum;
    bool order_ok;
} qtest;

static uint8_t pat(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static void *slow_consumer(void *p)
{
    qtest *t = p;
    const uint8_t *d;
    size_t len;
    t->order_ok = true;
    while (oci_blockq_get(t->q, &d, &len) == 1) {
        for (size_t i = 0; i < len; i++)
            if (d[i] != pat(t->total + i))
                t->order_ok = false;
        t->total += len;
        struct timespec ts = {0, 200000}; /* 0.2 ms per block: the producer waits */
        nanosleep(&ts, NULL);
        oci_blockq_release(t->q);
    }
    return NULL;
}

static void blockq_keeps_order_when_consumer_is_slow(void **state)
{
    (void)state;
    qtest t = {0};
    assert_int_equal(oci_blockq_new(&t.q, 3, 4096, NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_consumer, &t), 0);
    uint8_t buf[10000];
    size_t sent = 0, step = 1;
    while (sent < (4u << 20)) {
        size_t n = step % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pat(sent + i);
        assert_int_equal(oci_blockq_put(t.q, buf, n), 0);
        sent += n;
        step = step * 5 + 1;
    }
    assert_int_equal(oci_blockq_close(t.q), 0);
    pthread_join(th, NULL);
    assert_true(t.order_ok);
    assert_int_equal(t.total, sent);
    oci_blockq_free(t.q);
}

static void blockq_abort_wakes_producer(void **state)
{
    (void)state;
    oci_blockq *q = NULL;
    assert_int_equal(oci_blockq_new(&q, 1, 16, NULL), 0);
    assert_int_equal(oci_blockq_put(q, "0123456789abcdef", 16), 0); /* fills the only slot */
    oci_blockq_abort(q, BERTH_EVERIFY);
    assert_int_equal(oci_blockq_put(q, "x", 1), BERTH_EVERIFY);
    const uint8_t *d;
    size_t len;
    assert_int_equal(oci_blockq_get(q, &d, &len), BERTH_EVERIFY);
    oci_blockq_free(q);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(extract_rejects_dotdot_entry),
        cmocka_unit_test(extract_rejects_absolute_path),
        cmocka_unit_test(extract_rejects_backslash),
        cmocka_unit_test(extract_rejects_escaping_symlink),
        cmocka_unit_test(extract_rejects_hardlink),
        cmocka_unit_test(extract_rejects_device_and_fifo),
        cmocka_unit_test(extract_skips_in_tree_symlink),
        cmocka_unit_test(extract_never_writes_through_archive_symlink),
        cmocka_unit_test(extract_does_not_follow_existing_symlink),
        cmocka_unit_test(extract_size_ceiling_trips_on_bomb),
        cmocka_unit_test(extract_huge_header_fails_before_writing),
        cmocka_unit_test(extract_entry_ceiling_trips),
        cmocka_unit_test(extract_good_archive_creates_tree),
        cmocka_unit_test(extract_plain_tar_and_multi_member_gzip),
        cmocka_unit_test(extractor_diff_id_is_sha256_of_tar_for_any_chunking),
        cmocka_unit_test(extract_truncated_gzip_is_an_error),
        cmocka_unit_test(extract_corrupt_gzip_is_an_error),
        cmocka_unit_test(extract_not_a_tar_is_an_error),
        cmocka_unit_test(extractor_write_fails_after_worker_error),
        cmocka_unit_test(staging_then_commit_moves_files),
        cmocka_unit_test(failed_extraction_leaves_target_untouched),
        cmocka_unit_test(commit_rolls_back_when_a_move_fails),
        cmocka_unit_test(blockq_keeps_order_when_consumer_is_slow),
        cmocka_unit_test(blockq_abort_wakes_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
