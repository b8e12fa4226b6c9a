/*
 * Fuzz target for oci/ref.c: any byte string either fails to parse with an error, or parses to
 * a reference whose string form parses back to the same fields. A copy must match too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <berth/oci.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_ref(const berth_oci_ref *a, const berth_oci_ref *b)
{
    return same(a->registry, b->registry) && same(a->api_host, b->api_host) &&
           same(a->repository, b->repository) && same(a->tag, b->tag) && same(a->digest, b->digest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    berth_oci_ref r, again, copy;
    berth_error *err = NULL;
    char *s;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (berth_oci_ref_parse(&r, text, &err) < 0) {
        /* a failure must say why, and leave nothing allocated */
        if (!err || !berth_error_message(err)[0] || r.registry || r.repository)
            abort();
        berth_error_free(err);
        free(text);
        return 0;
    }
    if (err || !r.registry || !r.api_host || !r.repository)
        abort();
    if (r.tag && !berth_oci_tag_is_valid(r.tag))
        abort();
    if (r.digest && !berth_oci_digest_is_valid(r.digest))
        abort();
    if (!(s = berth_oci_ref_string(&r)))
        abort();
    if (berth_oci_ref_parse(&again, s, &err) < 0 || !same_ref(&r, &again))
        abort();
    if (berth_oci_ref_copy(&copy, &r, NULL) < 0 || !same_ref(&r, &copy))
        abort();
    (void)berth_oci_ref_target(&r);
    free(s);
    berth_oci_ref_dispose(&copy);
    berth_oci_ref_dispose(&again);
    berth_oci_ref_dispose(&r);
    free(text);
    return 0;
}
