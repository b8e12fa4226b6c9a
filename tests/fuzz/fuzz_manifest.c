/*
 * Fuzz target for oci/manifest.c: parse the bytes under every Content-Type a registry may send
 * (and none). Success must give a consistent structure whose descriptors copy cleanly; failure
 * must give an error and leave nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <berth/oci.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
    NULL,
    BERTH_MT_OCI_MANIFEST,
    BERTH_MT_OCI_INDEX,
    BERTH_MT_DOCKER_MANIFEST,
    BERTH_MT_DOCKER_LIST,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json; charset=utf-8",
};

static void check_desc(const berth_oci_desc *d)
{
    berth_oci_desc copy;
    if (!d->media_type || !d->digest || d->size < 0 || !berth_oci_digest_is_valid(d->digest))
        abort();
    for (size_t i = 1; i < d->annotations_len; i++)
        if (strcmp(d->annotations[i - 1].key, d->annotations[i].key) >= 0)
            abort();
    if (berth_oci_desc_copy(&copy, d, NULL) < 0)
        abort();
    if (strcmp(copy.digest, d->digest) != 0 || copy.size != d->size ||
        copy.annotations_len != d->annotations_len)
        abort();
    berth_oci_desc_dispose(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t k = 0; k < sizeof(content_types) / sizeof(content_types[0]); k++) {
        berth_oci_manifest m;
        berth_error *err = NULL;
        if (berth_oci_manifest_parse(&m, data, size, content_types[k], &err) < 0) {
            if (!err || m.media_type || m.layers || m.subject)
                abort();
            berth_error_free(err);
            continue;
        }
        if (err || !m.media_type)
            abort();
        if (!m.is_index)
            check_desc(&m.config);
        for (size_t i = 0; i < m.layers_len; i++)
            check_desc(&m.layers[i]);
        if (m.subject)
            check_desc(m.subject);
        (void)berth_kv_get(m.annotations, m.annotations_len, BERTH_ANN_CREATED);
        berth_oci_manifest_dispose(&m);
    }
    return 0;
}
