/* Unit tests for oci/manifest.c: media types, descriptors, embedded data, annotations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/oci.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define DESC(mt, d, n) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #n "}"

static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"artifactType\":\"application/vnd.example+type\","
    "\"config\":" DESC(
        "application/vnd.cncf.flux.config.v1+json", D1,
        233) ","
             "\"layers\":[" DESC(
                 "application/vnd.cncf.flux.content.v1.tar+gzip", D2,
                 1024) "],"
                       "\"annotations\":{\"org.opencontainers.image.source\":\"https://example.com/"
                       "repo\","
                       "\"org.opencontainers.image.created\":\"2025-01-02T03:04:05Z\","
                       "\"org.opencontainers.image.revision\":\"main@sha1:abc\"},"
                       "\"unknownField\":{\"tolerated\":[1,2,3]}}";

static int parse(berth_oci_manifest *m, const char *json, const char *ct, berth_error **err)
{
    return berth_oci_manifest_parse(m, json, strlen(json), ct, err);
}

/* Assert a failure with code and a word of the message, then free the error. */
static void expect_failure(const char *json, const char *ct, int code, const char *word)
{
    berth_oci_manifest m;
    berth_error *err = NULL;
    int rc = parse(&m, json, ct, &err);
    if (rc != code)
        fail_msg("rc %d (%s), want %d", rc, err ? berth_error_message(err) : "no error", code);
    assert_non_null(err);
    assert_int_equal(berth_error_code(err), code);
    if (!strstr(berth_error_message(err), word))
        fail_msg("message \"%s\" lacks \"%s\"", berth_error_message(err), word);
    assert_null(m.media_type);
    assert_null(m.layers);
    berth_error_free(err);
}

static void manifest_parses_oci_image_manifest(void **state)
{
    (void)state;
    berth_oci_manifest m;
    berth_error *err = NULL;
    assert_int_equal(parse(&m, oci_manifest, BERTH_MT_OCI_MANIFEST, &err), 0);
    assert_null(err);
    assert_string_equal(m.media_type, BERTH_MT_OCI_MANIFEST);
    assert_false(m.is_index);
    assert_string_equal(m.artifact_type, "application/vnd.example+type");
    assert_string_equal(m.config.media_type, BERTH_MT_FLUX_CONFIG);
    assert_string_equal(m.config.digest, D1);
    assert_int_equal(m.config.size, 233);
    assert_int_equal(m.layers_len, 1);
    assert_string_equal(m.layers[0].media_type, BERTH_MT_FLUX_CONTENT);
    assert_string_equal(m.layers[0].digest, D2);
    assert_int_equal(m.layers[0].size, 1024);
    assert_null(m.layers[0].platform_os);
    assert_null(m.subject);
    berth_oci_manifest_dispose(&m);
    berth_oci_manifest_dispose(NULL);
}

static void manifest_annotations_are_sorted_by_key(void **state)
{
    (void)state;
    berth_oci_manifest m;
    assert_int_equal(parse(&m, oci_manifest, NULL, NULL), 0);
    assert_int_equal(m.annotations_len, 3);
    assert_string_equal(m.annotations[0].key, BERTH_ANN_CREATED);
    assert_string_equal(m.annotations[1].key, BERTH_ANN_REVISION);
    assert_string_equal(m.annotations[2].key, BERTH_ANN_SOURCE);
    assert_string_equal(berth_kv_get(m.annotations, m.annotations_len, BERTH_ANN_REVISION),
                        "main@sha1:abc");
    assert_null(berth_kv_get(m.annotations, m.annotations_len, "missing"));
    berth_oci_manifest_dispose(&m);
}

static void manifest_content_type_parameters_are_ignored(void **state)
{
    (void)state;
    berth_oci_manifest m;
    assert_int_equal(parse(&m, oci_manifest,
                           " application/vnd.oci.image.manifest.v1+json ; charset=utf-8", NULL),
                     0);
    assert_string_equal(m.media_type, BERTH_MT_OCI_MANIFEST);
    berth_oci_manifest_dispose(&m);
}

static void manifest_rejects_content_type_mismatch(void **state)
{
    (void)state;
    expect_failure(oci_manifest, BERTH_MT_DOCKER_MANIFEST, BERTH_EINVAL, "does not match");
}

static void manifest_without_media_type_uses_content_type(void **state)
{
    (void)state;
    static const char doc[] = "{\"schemaVersion\":2,"
                              "\"config\":" DESC("application/vnd.docker.container.image.v1+json",
                                                 D1, 10) ","
                                                         "\"layers\":[]}";
    berth_oci_manifest m;
    assert_int_equal(parse(&m, doc, BERTH_MT_DOCKER_MANIFEST, NULL), 0);
    assert_string_equal(m.media_type, BERTH_MT_DOCKER_MANIFEST);
    assert_int_equal(m.layers_len, 0);
    berth_oci_manifest_dispose(&m);
    /* neither: the shape decides */
    assert_int_equal(parse(&m, doc, NULL, NULL), 0);
    assert_string_equal(m.media_type, BERTH_MT_OCI_MANIFEST);
    berth_oci_manifest_dispose(&m);
    /* a generic content type makes no claim */
    assert_int_equal(parse(&m, doc, "application/json", NULL), 0);
    assert_string_equal(m.media_type, BERTH_MT_OCI_MANIFEST);
    berth_oci_manifest_dispose(&m);
}

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
    "\"size\":500,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
    "\"size\":501,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"},"
    "\"annotations\":{\"b\":\"2\",\"a\":\"1\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
    "\"size\":502,\"artifactType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}]}";

static void index_children_carry_platform(void **state)
{
    (void)state;
    berth_oci_manifest m;
    assert_int_equal(parse(&m, oci_index, BERTH_MT_OCI_INDEX, NULL), 0);
    assert_true(m.is_index);
    assert_string_equal(m.media_type, BERTH_MT_OCI_INDEX);
    assert_int_equal(m.layers_len, 3);
    assert_null(m.config.digest);
    assert_string_equal(m.layers[0].platform_os, "linux");
    assert_string_equal(m.layers[0].platform_arch, "amd64");
    assert_string_equal(m.layers[1].platform_arch, "arm64");
    assert_int_equal(m.layers[1].annotations_len, 2);
    assert_string_equal(m.layers[1].annotations[0].key, "a");
    assert_string_equal(m.layers[1].annotations[1].value, "2");
    assert_null(m.layers[2].platform_os);
    assert_string_equal(m.layers[2].artifact_type, "application/vnd.dev.sigstore.bundle.v0.3+json");
    assert_int_equal(m.layers[2].size, 502);
    berth_oci_manifest_dispose(&m);
}

static void index_detected_by_shape_without_media_type(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"schemaVersion\":2,\"manifests\":[" DESC(BERTH_MT_OCI_MANIFEST, D1, 7) "]}";
    berth_oci_manifest m;
    assert_int_equal(parse(&m, doc, NULL, NULL), 0);
    assert_true(m.is_index);
    assert_string_equal(m.media_type, BERTH_MT_OCI_INDEX);
    berth_oci_manifest_dispose(&m);
}

static void docker_manifest_list_is_an_index(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":9,"
        "\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\",\"os.version\":\"10\"}}]}";
    berth_oci_manifest m;
    assert_int_equal(parse(&m, doc, BERTH_MT_DOCKER_LIST, NULL), 0);
    assert_true(m.is_index);
    assert_string_equal(m.media_type, BERTH_MT_DOCKER_LIST);
    assert_string_equal(m.layers[0].platform_os, "windows");
    berth_oci_manifest_dispose(&m);
}

static void index_platform_needs_os_and_architecture(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST
        "\",\"digest\":\"" D1 "\",\"size\":9,\"platform\":{\"os\":\"linux\"}}]}";
    expect_failure(doc, NULL, BERTH_EINVAL, "architecture");
}

static void manifest_subject_is_parsed(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.dev.cosign.artifact.sig.v1+json\","
        "\"config\":{\"mediaType\":\"" BERTH_MT_OCI_EMPTY "\",\"digest\":\"" EMPTY_DIGEST
        "\",\"size\":2,\"data\":\"e30=\"},"
        "\"layers\":[" DESC("application/vnd.dev.cosign.simplesigning.v1+json", D2,
                            250) "],"
                                 "\"subject\":" DESC(BERTH_MT_OCI_MANIFEST, D3, 700) "}";
    berth_oci_manifest m;
    berth_oci_desc copy;
    assert_int_equal(parse(&m, doc, NULL, NULL), 0);
    assert_non_null(m.subject);
    assert_string_equal(m.subject->digest, D3);
    assert_int_equal(m.subject->size, 700);
    assert_string_equal(m.config.digest, EMPTY_DIGEST);
    assert_int_equal(berth_oci_desc_copy(&copy, m.subject, NULL), 0);
    berth_oci_manifest_dispose(&m);
    assert_string_equal(copy.media_type, BERTH_MT_OCI_MANIFEST);
    assert_string_equal(copy.digest, D3);
    berth_oci_desc_dispose(&copy);
}

static void desc_copy_copies_annotations_and_platform(void **state)
{
    (void)state;
    berth_oci_manifest m;
    berth_oci_desc copy;
    assert_int_equal(parse(&m, oci_index, NULL, NULL), 0);
    assert_int_equal(berth_oci_desc_copy(&copy, &m.layers[1], NULL), 0);
    berth_oci_manifest_dispose(&m);
    assert_string_equal(copy.platform_arch, "arm64");
    assert_int_equal(copy.annotations_len, 2);
    assert_string_equal(berth_kv_get(copy.annotations, copy.annotations_len, "b"), "2");
    berth_oci_desc_dispose(&copy);
    berth_oci_desc_dispose(NULL);
}

static void manifest_refuses_docker_schema1(void **state)
{
    (void)state;
    static const char v1[] = "{\"schemaVersion\":1,\"name\":\"a\",\"tag\":\"b\","
                             "\"fsLayers\":[],\"history\":[],\"signatures\":[]}";
    expect_failure(v1, NULL, BERTH_EUNSUPPORTED, "schema1");
    expect_failure(v1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                   BERTH_EUNSUPPORTED, "schema1");
    static const char v1mt[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest."
        "v1+json\"}";
    expect_failure(v1mt, NULL, BERTH_EUNSUPPORTED, "schema1");
}

static void manifest_requires_schema_version_2(void **state)
{
    (void)state;
    expect_failure("{\"config\":{},\"layers\":[]}", NULL, BERTH_EINVAL, "schemaVersion");
    expect_failure("{\"schemaVersion\":\"2\"}", NULL, BERTH_EINVAL, "schemaVersion");
    expect_failure("{\"schemaVersion\":3}", NULL, BERTH_EUNSUPPORTED, "schemaVersion 3");
}

static void manifest_rejects_unknown_media_type(void **state)
{
    (void)state;
    expect_failure("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact.manifest."
                   "v1+json\",\"blobs\":[]}",
                   NULL, BERTH_EUNSUPPORTED, "unsupported manifest media type");
}

static void manifest_rejects_bad_descriptor_digest(void **state)
{
    (void)state;
    static const char doc[] = "{\"schemaVersion\":2,\"config\":" DESC(
        BERTH_MT_FLUX_CONFIG, D1, 1) ","
                                     "\"layers\":[" DESC(BERTH_MT_FLUX_CONTENT, D2, 1) "," DESC(
                                         BERTH_MT_FLUX_CONTENT, "sha256:ABC", 1) "]}";
    expect_failure(doc, NULL, BERTH_EINVAL, "layers[1]: invalid digest \"sha256:ABC\"");
}

static void manifest_rejects_bad_descriptors(void **state)
{
    (void)state;
    expect_failure(
        "{\"schemaVersion\":2,\"config\":" DESC(BERTH_MT_FLUX_CONFIG, D1, -1) ",\"layers\":[]}",
        NULL, BERTH_EINVAL, "non-negative");
    expect_failure(
        "{\"schemaVersion\":2,\"config\":" DESC(BERTH_MT_FLUX_CONFIG, D1, 1.5) ",\"layers\":[]}",
        NULL, BERTH_EINVAL, "size");
    expect_failure("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
                   "\"layers\":[]}",
                   NULL, BERTH_EINVAL, "mediaType");
    expect_failure("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":1},"
                   "\"layers\":[]}",
                   NULL, BERTH_EINVAL, "no digest");
    expect_failure("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1
                   "\"},\"layers\":[]}",
                   NULL, BERTH_EINVAL, "no size");
    expect_failure("{\"schemaVersion\":2,\"config\":" DESC("x", D1, 1) ",\"layers\":[7]}", NULL,
                   BERTH_EINVAL, "layers[0]");
    expect_failure("{\"schemaVersion\":2,\"config\":" DESC("x", D1, 1) "}", NULL, BERTH_EINVAL,
                   "layers");
    expect_failure("{\"schemaVersion\":2,\"layers\":[]}", NULL, BERTH_EINVAL, "config");
    expect_failure("{\"schemaVersion\":2,\"config\":" DESC(
                       "x", D1, 1) ",\"layers\":[],\"annotations\":{\"a\":1}}",
                   NULL, BERTH_EINVAL, "annotations");
}

static void manifest_rejects_embedded_data_mismatch(void **state)
{
    (void)state;
    /* "e30=" is "{}": right size, wrong digest */
    expect_failure("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1
                   "\",\"size\":2,\"data\":\"e30=\"},\"layers\":[]}",
                   NULL, BERTH_EVERIFY, "digest");
    /* right digest, wrong size */
    expect_failure("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
                   "\"" EMPTY_DIGEST "\",\"size\":3,\"data\":\"e30=\"},\"layers\":[]}",
                   NULL, BERTH_EVERIFY, "2 bytes");
    expect_failure("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
                   "\"" EMPTY_DIGEST "\",\"size\":2,\"data\":\"!!!\"},\"layers\":[]}",
                   NULL, BERTH_EINVAL, "base64");
}

static void manifest_rejects_mixed_index_and_manifest_fields(void **state)
{
    (void)state;
    expect_failure("{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST
                   "\",\"config\":" DESC("x", D1, 1) ",\"layers\":[],\"manifests\":[]}",
                   NULL, BERTH_EINVAL, "manifests");
    expect_failure("{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}", NULL, BERTH_EINVAL,
                   "layers");
}

static void manifest_rejects_malformed_json(void **state)
{
    (void)state;
    expect_failure("{\"schemaVersion\":2,", NULL, BERTH_EINVAL, "JSON");
    expect_failure("[]", NULL, BERTH_EINVAL, "object");
    expect_failure("", NULL, BERTH_EINVAL, "JSON");
    expect_failure("{\"schemaVersion\":2,\"schemaVersion\":2}", NULL, BERTH_EINVAL, "JSON");
    expect_failure("{\"schemaVersion\":2} trailing", NULL, BERTH_EINVAL, "JSON");
}

static void manifest_rejects_more_than_4_mib(void **state)
{
    (void)state;
    size_t n = BERTH_OCI_MANIFEST_MAX + 1;
    char *big = malloc(n);
    berth_oci_manifest m;
    berth_error *err = NULL;
    assert_non_null(big);
    memset(big, ' ', n);
    assert_int_equal(berth_oci_manifest_parse(&m, big, n, NULL, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "limit"));
    berth_error_free(err);
    free(big);
}

static void strv_free_accepts_null_and_frees_all(void **state)
{
    (void)state;
    char **v = calloc(2, sizeof(char *));
    assert_non_null(v);
    v[0] = malloc(3);
    v[1] = malloc(3);
    berth_strv_free(v, 2);
    berth_strv_free(NULL, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(manifest_parses_oci_image_manifest),
        cmocka_unit_test(manifest_annotations_are_sorted_by_key),
        cmocka_unit_test(manifest_content_type_parameters_are_ignored),
        cmocka_unit_test(manifest_rejects_content_type_mismatch),
        cmocka_unit_test(manifest_without_media_type_uses_content_type),
        cmocka_unit_test(index_children_carry_platform),
        cmocka_unit_test(index_detected_by_shape_without_media_type),
        cmocka_unit_test(docker_manifest_list_is_an_index),
        cmocka_unit_test(index_platform_needs_os_and_architecture),
        cmocka_unit_test(manifest_subject_is_parsed),
        cmocka_unit_test(desc_copy_copies_annotations_and_platform),
        cmocka_unit_test(manifest_refuses_docker_schema1),
        cmocka_unit_test(manifest_requires_schema_version_2),
        cmocka_unit_test(manifest_rejects_unknown_media_type),
        cmocka_unit_test(manifest_rejects_bad_descriptor_digest),
        cmocka_unit_test(manifest_rejects_bad_descriptors),
        cmocka_unit_test(manifest_rejects_embedded_data_mismatch),
        cmocka_unit_test(manifest_rejects_mixed_index_and_manifest_fields),
        cmocka_unit_test(manifest_rejects_malformed_json),
        cmocka_unit_test(manifest_rejects_more_than_4_mib),
        cmocka_unit_test(strv_free_accepts_null_and_frees_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
