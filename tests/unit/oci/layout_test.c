/*
 * Unit tests for oci/layout.c: OCI image layouts and archives as stores (oci/store.h). Layouts are
 * written in a fresh temp directory per test and read back through the same vtable berth_copy
 * uses; fixtures that must be independent of the writer are made with plain file writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "oci/store.h"

/* ---------------------------------------------------------------- helpers */

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/berth-layout-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return core_strdup(tmpl);
}

static void tmpdir_free(char *dir)
{
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(dir);
}

static char *path_of(const char *dir, const char *rel)
{
    char *p = core_sprintf("%s/%s", dir, rel);
    assert_non_null(p);
    return p;
}

static void file_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *file_read(const char *path, size_t *len_out)
{
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, path, 1u << 24, NULL), 0);
    *len_out = b.len;
    return berth_buf_detach(&b);
}

/* Put a blob through the store from a temp file; digest_out gets its digest. */
static void store_blob(oci_store *s, const char *tmp, const char *data, char digest_out[72])
{
    char *f = path_of(tmp, "blob-in");
    core_sha256_digest(digest_out, data, strlen(data));
    file_write(f, data, strlen(data));
    assert_int_equal(s->ops->put_blob(s, digest_out, (int64_t)strlen(data), f, NULL), 0);
    unlink(f);
    core_free(f);
}

/* A manifest with one config and one layer (their digests and sizes), optional subject. */
static char *manifest_text(const char *cfg, size_t cfg_len, const char *layer, size_t layer_len,
                           const char *subject)
{
    char *subj = subject ? core_sprintf(",\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
                                        "\"size\":100}",
                                        BERTH_MT_OCI_MANIFEST, subject)
                         : core_strdup("");
    char *m = core_sprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                           "\"%s\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
                           "\"%s\",\"digest\":\"%s\",\"size\":%zu}]%s}",
                           BERTH_MT_OCI_MANIFEST, BERTH_MT_FLUX_CONFIG, cfg, cfg_len,
                           BERTH_MT_FLUX_CONTENT, layer, layer_len, subj);
    core_free(subj);
    assert_non_null(m);
    return m;
}

/* Write a small image (config, layer, manifest) into s, tagged when tag is non-NULL. */
static char *store_image(oci_store *s, const char *tmp, const char *marker, const char *tag,
                         const char *subject, char digest_out[72])
{
    char cfg[72], layer[72];
    char *cfg_text = core_sprintf("{\"marker\":\"%s\"}", marker);
    char *layer_text = core_sprintf("layer bytes of %s", marker);
    char *m;

    store_blob(s, tmp, cfg_text, cfg);
    store_blob(s, tmp, layer_text, layer);
    m = manifest_text(cfg, strlen(cfg_text), layer, strlen(layer_text), subject);
    core_sha256_digest(digest_out, m, strlen(m));
    assert_int_equal(s->ops->put_manifest(s, BERTH_MT_OCI_MANIFEST, digest_out, m, strlen(m), tag,
                                          tag || subject ? OCI_PUT_ROOT : OCI_PUT_CHILD, NULL),
                     0);
    core_free(cfg_text);
    core_free(layer_text);
    return m;
}

static void index_of(oci_layout_index *ix, const char *dir)
{
    size_t len;
    char *f = path_of(dir, "index.json");
    char *text = file_read(f, &len);
    assert_int_equal(oci_layout_index_parse(ix, text, len, NULL), 0);
    core_free(text);
    core_free(f);
}

static size_t count_ref(const oci_layout_index *ix, const char *tag)
{
    size_t n = 0;
    for (size_t i = 0; i < ix->n; i++)
        if (ix->v[i].ref_name && strcmp(ix->v[i].ref_name, tag) == 0)
            n++;
    return n;
}

static const char *digest_of_ref(const oci_layout_index *ix, const char *tag)
{
    for (size_t i = 0; i < ix->n; i++)
        if (ix->v[i].ref_name && strcmp(ix->v[i].ref_name, tag) == 0)
            return ix->v[i].digest;
    return NULL;
}

static void assert_error(berth_error *e, int code, const char *word)
{
    char *text = berth_error_text(e);
    assert_non_null(text);
    if (!strstr(text, word))
        fail_msg("error \"%s\" does not mention \"%s\"", text, word);
    assert_int_equal(berth_error_code(e), code);
    free(text);
    berth_error_free(e);
}

typedef struct mem_sink {
    berth_buf buf;
} mem_sink;

static int mem_sink_write(void *payload, const void *data, size_t len)
{
    mem_sink *m = payload;
    return berth_buf_put(&m->buf, data, len);
}

/* ---------------------------------------------------------------- tests */

static void layout_written_is_read_back_verbatim(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay"), *f;
    oci_store *s = NULL;
    berth_oci_blob b = {0};
    mem_sink ms = {BERTH_BUF_INIT};
    char digest[72], layer[72];
    char **tags = NULL;
    size_t n = 0, len;
    char *m, *text;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m = store_image(s, tmp, "one", "v1", NULL, digest);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    oci_store_close(s);

    f = path_of(dir, "oci-layout");
    text = file_read(f, &len);
    assert_non_null(strstr(text, "\"imageLayoutVersion\":\"1.0.0\""));
    core_free(text);
    core_free(f);

    assert_int_equal(oci_layout_open(&s, dir, "v1", false, NULL), 0);
    assert_int_equal(s->ops->resolve(s, NULL, &b, NULL), 0);
    assert_int_equal(b.len, strlen(m));
    assert_memory_equal(b.data, m, b.len);
    assert_string_equal(b.digest, digest);
    assert_string_equal(b.media_type, BERTH_MT_OCI_MANIFEST);

    core_sha256_digest(layer, "layer bytes of one", strlen("layer bytes of one"));
    assert_int_equal(s->ops->get_blob(s, layer, 18, mem_sink_write, &ms, NULL), 0);
    assert_int_equal(ms.buf.len, 18);
    assert_memory_equal(ms.buf.ptr, "layer bytes of one", 18);

    assert_int_equal(s->ops->list_tags(s, &tags, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(tags[0], "v1");

    berth_strv_free(tags, n);
    berth_buf_dispose(&ms.buf);
    berth_oci_blob_dispose(&b);
    oci_store_close(s);
    core_free(m);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_put_with_existing_tag_replaces_entry(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay");
    oci_store *s = NULL;
    oci_layout_index ix = {NULL, 0};
    char d1[72], d2[72], d3[72];
    char *m1, *m2, *m3;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m1 = store_image(s, tmp, "first", "v1", NULL, d1);
    m2 = store_image(s, tmp, "other", "v2", NULL, d2);
    m3 = store_image(s, tmp, "second", "v1", NULL, d3);
    oci_store_close(s);

    index_of(&ix, dir);
    assert_int_equal(ix.n, 2);
    assert_int_equal(count_ref(&ix, "v1"), 1);
    assert_string_equal(digest_of_ref(&ix, "v1"), d3);
    assert_string_equal(digest_of_ref(&ix, "v2"), d2);
    assert_string_not_equal(d1, d3);

    oci_layout_index_dispose(&ix);
    core_free(m1);
    core_free(m2);
    core_free(m3);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_tampered_blob_fails_verification_naming_digest(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay"), *f, *rel;
    oci_store *s = NULL;
    berth_error *e = NULL;
    mem_sink ms = {BERTH_BUF_INIT};
    char digest[72], layer[72];
    char *m;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m = store_image(s, tmp, "tamper", "v1", NULL, digest);
    core_sha256_digest(layer, "layer bytes of tamper", strlen("layer bytes of tamper"));
    rel = core_sprintf("blobs/sha256/%s", layer + 7);
    f = path_of(dir, rel);
    file_write(f, "layer bytes of TAMPER", strlen("layer bytes of TAMPER"));

    assert_int_equal(s->ops->get_blob(s, layer, 21, mem_sink_write, &ms, &e), BERTH_EVERIFY);
    assert_error(e, BERTH_EVERIFY, layer);

    /* a manifest is verified too */
    core_free(rel);
    core_free(f);
    rel = core_sprintf("blobs/sha256/%s", digest + 7);
    f = path_of(dir, rel);
    file_write(f, "{\"schemaVersion\":2}", 19);
    e = NULL;
    {
        berth_oci_blob b = {0};
        assert_int_equal(s->ops->resolve(s, "v1", &b, &e), BERTH_EVERIFY);
        berth_oci_blob_dispose(&b);
    }
    assert_error(e, BERTH_EVERIFY, digest);

    berth_buf_dispose(&ms.buf);
    oci_store_close(s);
    core_free(m);
    core_free(rel);
    core_free(f);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_missing_tag_is_not_found_naming_tag_and_path(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay");
    oci_store *s = NULL;
    berth_oci_blob b = {0};
    berth_error *e = NULL;
    char digest[72];
    char *m;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m = store_image(s, tmp, "x", "v1", NULL, digest);
    assert_int_equal(s->ops->resolve(s, "v9", &b, &e), BERTH_ENOTFOUND);
    {
        char *text = berth_error_text(e);
        assert_non_null(strstr(text, "\"v9\""));
        assert_non_null(strstr(text, dir));
        free(text);
    }
    berth_error_free(e);
    oci_store_close(s);
    core_free(m);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_open_of_plain_directory_is_not_found(void **state)
{
    char *tmp = tmpdir_new();
    oci_store *s = NULL;
    berth_error *e = NULL;
    (void)state;

    assert_int_equal(oci_layout_open(&s, tmp, NULL, false, &e), BERTH_ENOTFOUND);
    assert_null(s);
    assert_error(e, BERTH_ENOTFOUND, "oci-layout");
    tmpdir_free(tmp);
}

static void layout_default_root_is_the_only_manifest(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay");
    oci_store *s = NULL;
    berth_oci_blob b = {0};
    berth_error *e = NULL;
    char d1[72], d2[72], sig[72], *sig_tag;
    char *m1, *m2, *ms;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m1 = store_image(s, tmp, "only", "v1", NULL, d1);
    /* companions do not count as candidates: a cosign tag and an untagged referrer */
    sig_tag = core_sprintf("sha256-%s.sig", d1 + 7);
    ms = store_image(s, tmp, "cosign", sig_tag, NULL, sig);
    m2 = store_image(s, tmp, "referrer", NULL, d1, d2);
    oci_store_close(s);

    assert_int_equal(oci_layout_open(&s, dir, NULL, false, NULL), 0);
    assert_int_equal(s->ops->resolve(s, NULL, &b, NULL), 0);
    assert_string_equal(b.digest, d1);
    assert_non_null(s->tag);
    assert_string_equal(s->tag, "v1");
    berth_oci_blob_dispose(&b);
    oci_store_close(s);
    core_free(m2);

    /* a second named manifest makes the choice ambiguous */
    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m2 = store_image(s, tmp, "another", "v2", NULL, d2);
    assert_int_equal(s->ops->resolve(s, NULL, &b, &e), BERTH_EINVAL);
    assert_error(e, BERTH_EINVAL, "manifests");
    oci_store_close(s);

    core_free(sig_tag);
    core_free(m1);
    core_free(m2);
    core_free(ms);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_referrers_come_from_subject_and_fallback_tag(void **state)
{
    char *tmp = tmpdir_new(), *dir = path_of(tmp, "lay");
    oci_store *s = NULL;
    berth_oci_desc *v = NULL;
    size_t n = 0;
    char root[72], ref1[72], ref2[72], idx_digest[72];
    char *m0, *m1, *m2, *idx, *ftag;
    bool saw1 = false, saw2 = false;
    (void)state;

    assert_int_equal(oci_layout_open(&s, dir, NULL, true, NULL), 0);
    m0 = store_image(s, tmp, "root", "v1", NULL, root);
    m1 = store_image(s, tmp, "ref-by-subject", NULL, root, ref1);
    m2 = store_image(s, tmp, "ref-by-tag", NULL, NULL, ref2);
    idx = core_sprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":"
                       "\"%s\",\"digest\":\"%s\",\"size\":%zu,\"artifactType\":\"x/y\"}]}",
                       BERTH_MT_OCI_INDEX, BERTH_MT_OCI_MANIFEST, ref2, strlen(m2));
    core_sha256_digest(idx_digest, idx, strlen(idx));
    ftag = oci_store_digest_tag(root);
    assert_int_equal(s->ops->put_manifest(s, BERTH_MT_OCI_INDEX, idx_digest, idx, strlen(idx), ftag,
                                          OCI_PUT_ROOT, NULL),
                     0);

    assert_int_equal(s->ops->referrers(s, root, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        saw1 = saw1 || strcmp(v[i].digest, ref1) == 0;
        saw2 = saw2 || strcmp(v[i].digest, ref2) == 0;
        berth_oci_desc_dispose(&v[i]);
    }
    core_free(v);
    assert_true(saw1 && saw2);

    /* nothing refers to the referrer */
    assert_int_equal(s->ops->referrers(s, ref1, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    core_free(v);

    oci_store_close(s);
    core_free(m0);
    core_free(m1);
    core_free(m2);
    core_free(idx);
    core_free(ftag);
    core_free(dir);
    tmpdir_free(tmp);
}

static void layout_reading_tolerates_unknown_files_and_media_types(void **state)
{
    char *tmp = tmpdir_new(), *f;
    oci_store *s = NULL;
    berth_oci_blob b = {0};
    char digest[72];
    const char *m = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing+json\","
                    "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:"
                    "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\","
                    "\"size\":2},\"layers\":[]}";
    char *idx, *rel;
    (void)state;

    core_sha256_digest(digest, m, strlen(m));
    f = path_of(tmp, "oci-layout");
    file_write(f, "{\"imageLayoutVersion\": \"1.0.0\"}", 31);
    core_free(f);
    f = path_of(tmp, "blobs/sha256");
    assert_int_equal(core_fs_mkdirs(f, 0755, NULL), 0);
    core_free(f);
    f = path_of(tmp, "manifest.json"); /* docker's, unknown to OCI */
    file_write(f, "[]", 2);
    core_free(f);
    rel = core_sprintf("blobs/sha256/%s", digest + 7);
    f = path_of(tmp, rel);
    file_write(f, m, strlen(m));
    core_free(f);
    idx = core_sprintf("{\"schemaVersion\":2,\"x-extra\":[1,2],\"manifests\":[{\"mediaType\":"
                       "\"application/vnd.example.thing+json\",\"digest\":\"%s\",\"size\":%zu,"
                       "\"annotations\":{\"org.opencontainers.image.ref.name\":\"t\","
                       "\"other\":\"x\"}}]}",
                       digest, strlen(m));
    f = path_of(tmp, "index.json");
    file_write(f, idx, strlen(idx));
    core_free(f);

    assert_int_equal(oci_layout_open(&s, tmp, "t", false, NULL), 0);
    assert_int_equal(s->ops->resolve(s, NULL, &b, NULL), 0);
    assert_string_equal(b.media_type, "application/vnd.example.thing+json");
    assert_string_equal(b.digest, digest);
    berth_oci_blob_dispose(&b);
    oci_store_close(s);
    core_free(idx);
    core_free(rel);
    tmpdir_free(tmp);
}

static void index_parse_rejects_invalid_digest(void **state)
{
    oci_layout_index ix = {NULL, 0};
    berth_error *e = NULL;
    const char *bad = "{\"manifests\":[{\"mediaType\":\"a\",\"digest\":\"sha256\",\"size\":1}]}";
    const char *neg =
        "{\"manifests\":[{\"mediaType\":\"a\",\"digest\":\"sha256:ab\",\"size\":-1}]}";
    (void)state;

    assert_int_equal(oci_layout_index_parse(&ix, bad, strlen(bad), &e), BERTH_EINVAL);
    assert_error(e, BERTH_EINVAL, "digest");
    e = NULL;
    assert_int_equal(oci_layout_index_parse(&ix, neg, strlen(neg), &e), BERTH_EINVAL);
    assert_error(e, BERTH_EINVAL, "size");
    e = NULL;
    assert_int_equal(oci_layout_index_parse(&ix, "[1]", 3, &e), BERTH_EINVAL);
    assert_error(e, BERTH_EINVAL, "object");
    assert_int_equal(ix.n, 0);
}

static void index_parse_lists_entries_with_ref_names(void **state)
{
    oci_layout_index ix = {NULL, 0};
    const char *text = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"m\",\"digest\":"
                       "\"sha512:abc\",\"size\":3},{\"digest\":\"sha256:def\",\"size\":4,"
                       "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}";
    (void)state;

    assert_int_equal(oci_layout_index_parse(&ix, text, strlen(text), NULL), 0);
    assert_int_equal(ix.n, 2);
    assert_string_equal(ix.v[0].media_type, "m");
    assert_null(ix.v[0].ref_name);
    assert_int_equal(ix.v[0].size, 3);
    assert_null(ix.v[1].media_type);
    assert_string_equal(ix.v[1].ref_name, "v1");
    oci_layout_index_dispose(&ix);
}

static void archive_round_trip_keeps_blobs_and_tags(void **state)
{
    char *tmp = tmpdir_new(), *file = path_of(tmp, "x.tar");
    oci_store *s = NULL;
    berth_oci_blob b = {0};
    char digest[72];
    char *m;
    (void)state;

    assert_int_equal(oci_archive_open(&s, file, NULL, true, NULL), 0);
    m = store_image(s, tmp, "arch", "v1", NULL, digest);
    assert_false(core_fs_exists(file)); /* nothing until commit */
    assert_int_equal(s->ops->commit(s, NULL), 0);
    oci_store_close(s);
    assert_true(core_fs_exists(file));

    assert_int_equal(oci_archive_open(&s, file, "v1", false, NULL), 0);
    assert_int_equal(s->ops->resolve(s, NULL, &b, NULL), 0);
    assert_string_equal(b.digest, digest);
    assert_memory_equal(b.data, m, b.len);
    berth_oci_blob_dispose(&b);
    oci_store_close(s);

    core_free(m);
    core_free(file);
    tmpdir_free(tmp);
}

static void archive_missing_file_is_not_found(void **state)
{
    oci_store *s = NULL;
    berth_error *e = NULL;
    (void)state;
    assert_int_equal(oci_archive_open(&s, "/nonexistent/berth.tar", NULL, false, &e),
                     BERTH_ENOTFOUND);
    assert_error(e, BERTH_ENOTFOUND, "/nonexistent/berth.tar");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_written_is_read_back_verbatim),
        cmocka_unit_test(layout_put_with_existing_tag_replaces_entry),
        cmocka_unit_test(layout_tampered_blob_fails_verification_naming_digest),
        cmocka_unit_test(layout_missing_tag_is_not_found_naming_tag_and_path),
        cmocka_unit_test(layout_open_of_plain_directory_is_not_found),
        cmocka_unit_test(layout_default_root_is_the_only_manifest),
        cmocka_unit_test(layout_referrers_come_from_subject_and_fallback_tag),
        cmocka_unit_test(layout_reading_tolerates_unknown_files_and_media_types),
        cmocka_unit_test(index_parse_rejects_invalid_digest),
        cmocka_unit_test(index_parse_lists_entries_with_ref_names),
        cmocka_unit_test(archive_round_trip_keeps_blobs_and_tags),
        cmocka_unit_test(archive_missing_file_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
