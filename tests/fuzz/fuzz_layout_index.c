/*
 * Fuzz target for the index.json reader of oci/layout.c (oci_layout_index_parse): an OCI layout
 * or archive comes from elsewhere (another site, a USB stick), so its index is untrusted. Any
 * byte string either fails with an error and no entries, or gives entries that each have a
 * digest and a non-negative size; nothing leaks either way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oci_layout_index ix;
    berth_error *err = NULL;
    int rc = oci_layout_index_parse(&ix, data, size, &err);

    if (rc < 0) {
        if (!err || berth_error_code(err) != rc || ix.n != 0 || ix.v != NULL)
            abort();
        berth_error_free(err);
        return 0;
    }
    if (err)
        abort();
    for (size_t i = 0; i < ix.n; i++) {
        const oci_layout_entry *e = &ix.v[i];
        if (!e->digest || !strchr(e->digest, ':') || e->size < 0)
            abort();
        if (e->ref_name && strlen(e->ref_name) > size)
            abort();
    }
    oci_layout_index_dispose(&ix);
    return 0;
}
