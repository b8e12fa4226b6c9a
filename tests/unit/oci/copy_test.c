/*
 * Unit tests for berth_copy between OCI layouts and OCI archives (no registry needed). Source
 * layouts are written here with plain file writes, as another tool would leave them, so the
 * reader is not only tested against our own writer.
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

#include <berth/copy.h>

#include "core/core.h"
#include "oci/store.h"

/* ---------------------------------------------------------------- fixture writers */

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/berth-copy-test-XXXXXX";
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

/* A source layout under construction: blobs go to disk at once, index entries pile up. */
typedef struct src_layout {
    char *dir;
    berth_buf entries; /* comma-separated index.json descriptors */
} src_layout;

static void src_init(src_layout *s, const char *dir)
{
    char *f;
    s->dir = core_strdup(dir);
    berth_buf_init(&s->entries, 0);
    f = path_of(dir, "blobs/sha256");
    assert_int_equal(core_fs_mkdirs(f, 0755, NULL), 0);
    core_free(f);
    f = path_of(dir, "oci-layout");
    file_write(f, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
    core_free(f);
}

static void src_blob(src_layout *s, const char *data, char digest_out[72])
{
    char *rel, *f;
    core_sha256_digest(digest_out, data, strlen(data));
    rel = core_sprintf("blobs/sha256/%s", digest_out + 7);
    f = path_of(s->dir, rel);
    file_write(f, data, strlen(data));
    core_free(f);
    core_free(rel);
}

/* A manifest with a config and one layer, both named by marker; subject may be NULL. */
static char *src_image(src_layout *s, const char *marker, const char *subject, char digest_out[72])
{
    char cfg[72], layer[72];
    char *cfg_text = core_sprintf("{\"marker\":\"%s\"}", marker);
    char *layer_text = core_sprintf("layer bytes of %s", marker);
    char *subj = subject ? core_sprintf(",\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
                                        "\"size\":1}",
                                        BERTH_MT_OCI_MANIFEST, subject)
                         : core_strdup("");
    char *m;

    src_blob(s, cfg_text, cfg);
    src_blob(s, layer_text, layer);
    m = core_sprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
                     "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\","
                     "\"digest\":\"%s\",\"size\":%zu}]%s}",
                     BERTH_MT_OCI_MANIFEST, BERTH_MT_FLUX_CONFIG, cfg, strlen(cfg_text),
                     BERTH_MT_FLUX_CONTENT, layer, strlen(layer_text), subj);
    src_blob(s, m, digest_out);
    core_free(cfg_text);
    core_free(layer_text);
    core_free(subj);
    return m;
}

/* An index over the given child manifests (digests and sizes). */
static char *src_index(src_layout *s, char (*children)[72], const size_t *sizes, size_t n,
                       char digest_out[72])
{
    berth_buf b = BERTH_BUF_INIT;
    const char *arch[] = {"amd64", "arm64", "s390x"};
    char *m;
    berth_buf_printf(&b, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[",
                     BERTH_MT_OCI_INDEX);
    for (size_t i = 0; i < n; i++)
        berth_buf_printf(&b,
                         "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
                         "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}",
                         i ? "," : "", BERTH_MT_OCI_MANIFEST, children[i], sizes[i], arch[i % 3]);
    berth_buf_puts(&b, "]}");
    m = berth_buf_detach(&b);
    src_blob(s, m, digest_out);
    return m;
}

static void src_entry(src_layout *s, const char *media_type, const char *digest, size_t size,
                      const char *tag)
{
    if (s->entries.len)
        berth_buf_puts(&s->entries, ",");
    berth_buf_printf(&s->entries, "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu",
                     media_type, digest, size);
    if (tag)
        berth_buf_printf(&s->entries, ",\"annotations\":{\"%s\":\"%s\"}", BERTH_ANN_REF_NAME, tag);
    berth_buf_puts(&s->entries, "}");
}

static void src_finish(src_layout *s)
{
    char *f = path_of(s->dir, "index.json");
    char *text = core_sprintf("{\"schemaVersion\":2,\"manifests\":[%s]}",
                              s->entries.ptr ? s->entries.ptr : "");
    file_write(f, text, strlen(text));
    core_free(text);
    core_free(f);
    berth_buf_dispose(&s->entries);
    core_free(s->dir);
}

/* ---------------------------------------------------------------- checks */

static void index_of(oci_layout_index *ix, const char *dir)
{
    size_t len;
    char *f = path_of(dir, "index.json");
    char *text = file_read(f, &len);
    assert_int_equal(oci_layout_index_parse(ix, text, len, NULL), 0);
    core_free(text);
    core_free(f);
}

static const char *digest_of_ref(const oci_layout_index *ix, const char *tag)
{
    for (size_t i = 0; i < ix->n; i++)
        if (ix->v[i].ref_name && strcmp(ix->v[i].ref_name, tag) == 0)
            return ix->v[i].digest;
    return NULL;
}

/* The blob exists in dir with exactly the bytes of the same blob in src_dir. */
static void assert_same_blob(const char *src_dir, const char *dir, const char *digest)
{
    char *rel = core_sprintf("blobs/sha256/%s", digest + 7);
    char *a = path_of(src_dir, rel), *b = path_of(dir, rel);
    size_t la, lb;
    char *ta, *tb;
    char got[72];
    if (!core_fs_exists(b))
        fail_msg("blob %s missing in %s", digest, dir);
    ta = file_read(a, &la);
    tb = file_read(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);
    core_sha256_digest(got, tb, lb);
    assert_string_equal(got, digest);
    core_free(ta);
    core_free(tb);
    core_free(a);
    core_free(b);
    core_free(rel);
}

static void assert_image_copied(const char *src_dir, const char *dir, const char *marker,
                                const char *manifest_digest)
{
    char d[72];
    char *cfg_text = core_sprintf("{\"marker\":\"%s\"}", marker);
    char *layer_text = core_sprintf("layer bytes of %s", marker);
    core_sha256_digest(d, cfg_text, strlen(cfg_text));
    assert_same_blob(src_dir, dir, d);
    core_sha256_digest(d, layer_text, strlen(layer_text));
    assert_same_blob(src_dir, dir, d);
    assert_same_blob(src_dir, dir, manifest_digest);
    core_free(cfg_text);
    core_free(layer_text);
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

static int copy(berth_copy_result *res, const char *src, const char *dst, bool skip_sigs,
                berth_error **err)
{
    berth_copy_opts o;
    memset(&o, 0, sizeof(o));
    o.version = BERTH_COPY_OPTS_VERSION;
    o.skip_signatures = skip_sigs;
    return berth_copy(res, src, dst, &o, err);
}

/* ---------------------------------------------------------------- tests */

static void copy_layout_to_archive_to_layout_keeps_every_digest(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    oci_layout_index ix = {NULL, 0};
    char digest[72];
    char *m, *loc_src, *loc_tar, *loc_tar_tag, *loc_dst;
    berth_error *e = NULL;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "roundtrip", NULL, digest);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, digest, strlen(m), "v1");
    src_finish(&s);

    loc_src = core_sprintf("oci-layout:%s:v1", src);
    loc_tar = core_sprintf("oci-archive:%s/x.tar", tmp);
    loc_tar_tag = core_sprintf("oci-archive:%s/x.tar:v1", tmp);
    loc_dst = core_sprintf("oci-layout:%s", dst);

    assert_int_equal(copy(&res, loc_src, loc_tar, false, &e), 0);
    assert_string_equal(res.digest, digest);
    assert_int_equal(res.manifests, 1);
    assert_int_equal(res.blobs, 2);
    assert_int_equal(res.blobs_skipped, 0);

    /* the archive kept the tag: no tag needed to read it back */
    assert_int_equal(copy(&res, loc_tar_tag, loc_dst, false, &e), 0);
    assert_string_equal(res.digest, digest);
    index_of(&ix, dst);
    assert_non_null(digest_of_ref(&ix, "v1"));
    assert_string_equal(digest_of_ref(&ix, "v1"), digest);
    assert_image_copied(src, dst, "roundtrip", digest);

    /* a second copy finds every blob in place */
    assert_int_equal(copy(&res, loc_tar_tag, loc_dst, false, NULL), 0);
    assert_int_equal(res.blobs, 0);
    assert_int_equal(res.blobs_skipped, 2);

    oci_layout_index_dispose(&ix);
    core_free(m);
    core_free(loc_src);
    core_free(loc_tar);
    core_free(loc_tar_tag);
    core_free(loc_dst);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

static void copy_index_copies_every_child(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    oci_layout_index ix = {NULL, 0};
    char kids[2][72], idx[72];
    size_t sizes[2];
    char *m0, *m1, *mi, *loc_src, *loc_dst;
    (void)state;

    src_init(&s, src);
    m0 = src_image(&s, "amd64", NULL, kids[0]);
    m1 = src_image(&s, "arm64", NULL, kids[1]);
    sizes[0] = strlen(m0);
    sizes[1] = strlen(m1);
    mi = src_index(&s, kids, sizes, 2, idx);
    src_entry(&s, BERTH_MT_OCI_INDEX, idx, strlen(mi), "multi");
    src_finish(&s);

    loc_src = core_sprintf("oci-layout:%s:multi", src);
    loc_dst = core_sprintf("oci-layout:%s:copied", dst);
    assert_int_equal(copy(&res, loc_src, loc_dst, false, NULL), 0);
    assert_string_equal(res.digest, idx);
    assert_int_equal(res.manifests, 3);
    assert_int_equal(res.blobs, 4);

    index_of(&ix, dst);
    assert_string_equal(digest_of_ref(&ix, "copied"), idx);
    assert_same_blob(src, dst, idx);
    assert_image_copied(src, dst, "amd64", kids[0]);
    assert_image_copied(src, dst, "arm64", kids[1]);

    oci_layout_index_dispose(&ix);
    core_free(m0);
    core_free(m1);
    core_free(mi);
    core_free(loc_src);
    core_free(loc_dst);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

static void copy_carries_cosign_signature_tag(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst"),
         *dst2 = path_of(tmp, "dst2");
    src_layout s;
    berth_copy_result res;
    oci_layout_index ix = {NULL, 0};
    char root[72], sig[72];
    char *m, *ms, *sig_tag, *loc_src, *loc_dst, *loc_dst2;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "signed", NULL, root);
    ms = src_image(&s, "signature", NULL, sig);
    sig_tag = core_sprintf("sha256-%s.sig", root + 7);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, root, strlen(m), "v1");
    src_entry(&s, BERTH_MT_OCI_MANIFEST, sig, strlen(ms), sig_tag);
    src_finish(&s);

    loc_src = core_sprintf("oci-layout:%s:v1", src);
    loc_dst = core_sprintf("oci-layout:%s", dst);
    assert_int_equal(copy(&res, loc_src, loc_dst, false, NULL), 0);
    assert_int_equal(res.signatures, 1);
    assert_int_equal(res.manifests, 2);
    index_of(&ix, dst);
    assert_string_equal(digest_of_ref(&ix, "v1"), root);
    assert_non_null(digest_of_ref(&ix, sig_tag));
    assert_string_equal(digest_of_ref(&ix, sig_tag), sig);
    assert_image_copied(src, dst, "signature", sig);
    oci_layout_index_dispose(&ix);

    /* skip_signatures leaves it behind */
    loc_dst2 = core_sprintf("oci-layout:%s", dst2);
    assert_int_equal(copy(&res, loc_src, loc_dst2, true, NULL), 0);
    assert_int_equal(res.signatures, 0);
    index_of(&ix, dst2);
    assert_null(digest_of_ref(&ix, sig_tag));
    assert_int_equal(ix.n, 1);

    oci_layout_index_dispose(&ix);
    core_free(m);
    core_free(ms);
    core_free(sig_tag);
    core_free(loc_src);
    core_free(loc_dst);
    core_free(loc_dst2);
    core_free(src);
    core_free(dst);
    core_free(dst2);
    tmpdir_free(tmp);
}

static void copy_carries_referrer_with_subject(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    char root[72], ref[72];
    char *m, *mr, *loc_src, *loc_dst;
    oci_store *st = NULL;
    berth_oci_desc *v = NULL;
    size_t n = 0;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "subject", NULL, root);
    mr = src_image(&s, "sbom", root, ref);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, root, strlen(m), "v1");
    src_entry(&s, BERTH_MT_OCI_MANIFEST, ref, strlen(mr), NULL);
    src_finish(&s);

    loc_src = core_sprintf("oci-layout:%s:v1", src);
    loc_dst = core_sprintf("oci-archive:%s/out.tar:v1", tmp);
    assert_int_equal(copy(&res, loc_src, loc_dst, false, NULL), 0);
    assert_int_equal(res.signatures, 1);

    /* the destination finds it as a referrer of the root */
    core_free(loc_dst);
    loc_dst = core_sprintf("%s/out.tar", tmp);
    assert_int_equal(oci_archive_open(&st, loc_dst, NULL, false, NULL), 0);
    assert_int_equal(st->ops->referrers(st, root, &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].digest, ref);
    assert_string_equal(v[0].artifact_type, BERTH_MT_FLUX_CONFIG);
    berth_oci_desc_dispose(&v[0]);
    core_free(v);
    oci_store_close(st);

    core_free(m);
    core_free(mr);
    core_free(loc_src);
    core_free(loc_dst);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

/* Flip the first byte of marker inside file. */
static void tamper(const char *file, const char *marker)
{
    size_t len, ml = strlen(marker);
    char *data = file_read(file, &len);
    char *hit = NULL;
    for (size_t i = 0; i + ml <= len && !hit; i++)
        if (memcmp(data + i, marker, ml) == 0)
            hit = data + i;
    assert_non_null(hit);
    hit[0] ^= 0x20;
    file_write(file, data, len);
    core_free(data);
}

static void copy_tampered_archive_fails_and_tags_nothing(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    berth_error *e = NULL;
    oci_layout_index ix = {NULL, 0};
    char root[72], layer[72];
    char *m, *loc_src, *loc_tar, *loc_dst, *tar;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "precious", NULL, root);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, root, strlen(m), "v1");
    src_finish(&s);
    core_sha256_digest(layer, "layer bytes of precious", strlen("layer bytes of precious"));

    loc_src = core_sprintf("oci-layout:%s:v1", src);
    tar = path_of(tmp, "x.tar");
    loc_tar = core_sprintf("oci-archive:%s:v1", tar);
    loc_dst = core_sprintf("oci-layout:%s", dst);
    assert_int_equal(copy(&res, loc_src, loc_tar, false, NULL), 0);
    tamper(tar, "layer bytes of precious");

    assert_int_equal(copy(&res, loc_tar, loc_dst, false, &e), BERTH_EVERIFY);
    {
        char *text = berth_error_text(e);
        assert_non_null(strstr(text, layer));
        assert_non_null(strstr(text, "oci-archive:"));
        free(text);
    }
    assert_error(e, BERTH_EVERIFY, "digest");
    index_of(&ix, dst);
    assert_int_equal(ix.n, 0);

    oci_layout_index_dispose(&ix);
    core_free(m);
    core_free(loc_src);
    core_free(loc_tar);
    core_free(loc_dst);
    core_free(tar);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

static void copy_unknown_scheme_is_einval_listing_forms(void **state)
{
    berth_copy_result res;
    berth_error *e = NULL;
    (void)state;
    assert_int_equal(copy(&res, "dir:/tmp/x", "oci-layout:/tmp/y", false, &e), BERTH_EINVAL);
    {
        char *text = berth_error_text(e);
        assert_non_null(strstr(text, "dir:/tmp/x"));
        assert_non_null(strstr(text, "oci-archive:"));
        free(text);
    }
    assert_error(e, BERTH_EINVAL, "oci-layout:DIR");
}

static void copy_missing_tag_in_layout_is_not_found(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    berth_error *e = NULL;
    char root[72];
    char *m, *loc_src, *loc_dst;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "t", NULL, root);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, root, strlen(m), "v1");
    src_finish(&s);
    loc_src = core_sprintf("oci-layout:%s:nope", src);
    loc_dst = core_sprintf("oci-layout:%s", dst);
    assert_int_equal(copy(&res, loc_src, loc_dst, false, &e), BERTH_ENOTFOUND);
    {
        char *text = berth_error_text(e);
        assert_non_null(strstr(text, src));
        free(text);
    }
    assert_error(e, BERTH_ENOTFOUND, "\"nope\"");

    core_free(m);
    core_free(loc_src);
    core_free(loc_dst);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

typedef struct progress_seen {
    size_t calls;
    bool overshoot;   /* done ever above total */
    size_t completed; /* calls with done == total */
} progress_seen;

static void on_progress(void *payload, const char *what, int64_t done, int64_t total)
{
    progress_seen *p = payload;
    p->calls++;
    if (!what || strncmp(what, "sha256:", 7) != 0 || done > total)
        p->overshoot = true;
    if (done == total)
        p->completed++;
}

static void copy_into_existing_archive_keeps_its_tags_and_reports_progress(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *out = path_of(tmp, "out");
    src_layout s;
    berth_copy_result res;
    berth_copy_opts o;
    progress_seen seen = {0, false, 0};
    oci_layout_index ix = {NULL, 0};
    char d1[72], d2[72];
    char *m1, *m2, *a, *b, *tar_v1, *tar_v2, *loc_out;
    (void)state;

    src_init(&s, src);
    m1 = src_image(&s, "first", NULL, d1);
    m2 = src_image(&s, "second", NULL, d2);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, d1, strlen(m1), "a");
    src_entry(&s, BERTH_MT_OCI_MANIFEST, d2, strlen(m2), "b");
    src_finish(&s);

    a = core_sprintf("oci-layout:%s:a", src);
    b = core_sprintf("oci-layout:%s:b", src);
    tar_v1 = core_sprintf("oci-archive:%s/both.tar:v1", tmp);
    tar_v2 = core_sprintf("oci-archive:%s/both.tar:v2", tmp);
    memset(&o, 0, sizeof(o));
    o.version = BERTH_COPY_OPTS_VERSION;
    o.progress = on_progress;
    o.progress_payload = &seen;
    assert_int_equal(berth_copy(&res, a, tar_v1, &o, NULL), 0);
    assert_int_equal(seen.completed, 2); /* config and layer, each to its end */
    assert_false(seen.overshoot);
    assert_int_equal(copy(&res, b, tar_v2, false, NULL), 0);

    /* both tags are in the archive: unpack it to a layout and look */
    loc_out = core_sprintf("oci-layout:%s", out);
    assert_int_equal(copy(&res, tar_v1, loc_out, false, NULL), 0);
    assert_int_equal(copy(&res, tar_v2, loc_out, false, NULL), 0);
    index_of(&ix, out);
    assert_string_equal(digest_of_ref(&ix, "v1"), d1);
    assert_string_equal(digest_of_ref(&ix, "v2"), d2);
    assert_image_copied(src, out, "first", d1);
    assert_image_copied(src, out, "second", d2);

    oci_layout_index_dispose(&ix);
    core_free(m1);
    core_free(m2);
    core_free(a);
    core_free(b);
    core_free(tar_v1);
    core_free(tar_v2);
    core_free(loc_out);
    core_free(src);
    core_free(out);
    tmpdir_free(tmp);
}

static void copy_by_digest_from_layout_writes_untagged_entry(void **state)
{
    char *tmp = tmpdir_new(), *src = path_of(tmp, "src"), *dst = path_of(tmp, "dst");
    src_layout s;
    berth_copy_result res;
    oci_layout_index ix = {NULL, 0};
    char root[72];
    char *m, *loc_src, *loc_dst;
    (void)state;

    src_init(&s, src);
    m = src_image(&s, "bydigest", NULL, root);
    src_entry(&s, BERTH_MT_OCI_MANIFEST, root, strlen(m), "v1");
    src_finish(&s);
    loc_src = core_sprintf("oci-layout:%s:%s", src, root);
    loc_dst = core_sprintf("oci-layout:%s", dst);
    assert_int_equal(copy(&res, loc_src, loc_dst, false, NULL), 0);
    assert_string_equal(res.digest, root);
    index_of(&ix, dst);
    assert_int_equal(ix.n, 1);
    assert_string_equal(ix.v[0].digest, root);
    assert_null(ix.v[0].ref_name);

    oci_layout_index_dispose(&ix);
    core_free(m);
    core_free(loc_src);
    core_free(loc_dst);
    core_free(src);
    core_free(dst);
    tmpdir_free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copy_layout_to_archive_to_layout_keeps_every_digest),
        cmocka_unit_test(copy_index_copies_every_child),
        cmocka_unit_test(copy_carries_cosign_signature_tag),
        cmocka_unit_test(copy_carries_referrer_with_subject),
        cmocka_unit_test(copy_tampered_archive_fails_and_tags_nothing),
        cmocka_unit_test(copy_unknown_scheme_is_einval_listing_forms),
        cmocka_unit_test(copy_missing_tag_in_layout_is_not_found),
        cmocka_unit_test(copy_by_digest_from_layout_writes_untagged_entry),
        cmocka_unit_test(copy_into_existing_archive_keeps_its_tags_and_reports_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
