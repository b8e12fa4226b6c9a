/*
 * Fuzz target for the copy-list parser (berth copy --from-list): any bytes either fail with a
 * message and nothing allocated, or give references that each parse, are unique by canonical
 * name, and parse again to the same list when written back one per line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <berth/copy.h>
#include <berth/oci.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **v = NULL, **again = NULL, *joined;
    size_t n = 0, n2 = 0, len = 0, off = 0;
    berth_error *err = NULL;

    if (berth_copy_list_parse(&v, &n, data, size, "fuzz", &err) < 0) {
        if (!err || !berth_error_message(err)[0] || v || n)
            abort();
        berth_error_free(err);
        return 0;
    }
    if (err)
        abort();
    for (size_t i = 0; i < n; i++) {
        berth_oci_ref r;
        if (!v[i][0] || berth_oci_ref_parse(&r, v[i], NULL) < 0)
            abort();
        berth_oci_ref_dispose(&r);
        len += strlen(v[i]) + 1;
    }
    if (!(joined = malloc(len + 1)))
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(joined + off, v[i], l);
        joined[off + l] = '\n';
        off += l + 1;
    }
    if (berth_copy_list_parse(&again, &n2, joined, off, "again", NULL) < 0 || n2 != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], again[i]) != 0)
            abort();
    free(joined);
    berth_strv_free(again, n2);
    berth_strv_free(v, n);
    return 0;
}
