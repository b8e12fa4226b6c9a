/* Unit tests for the pure parts of controller mode (engine/kube_store_doc.c, declared in
 * engine/kube_store.h): which Secrets and ConfigMaps a spec references, the store document of a
 * CR and of a Secret, the Secret/ConfigMap watches' filter, and the status merge patch
 * (observedGeneration, lastHandledReconcileAt, "nothing differs"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/core.h"
#include "engine/kube_store.h"

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

/* The keys of an object, sorted, comma-joined, into buf. */
static const char *keys_of(json_t *o, char *buf, size_t cap)
{
    char *dump;
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) json_array_append_new(arr, json_string(k));
    dump = json_dumps(arr, JSON_COMPACT);
    snprintf(buf, cap, "%s", dump ? dump : "");
    free(dump);
    json_decref(arr);
    return buf;
}

static void refs_of_a_kustomization_and_an_ocirepository(void **state)
{
    (void)state;
    json_t *refs = json_object();
    json_t *ks =
        js("{\"decryption\": {\"provider\": \"sops\", \"secretRef\": {\"name\": \"sops-age\"}},"
           " \"kubeConfig\": {\"secretRef\": {\"name\": \"remote\", \"key\": \"value\"}},"
           " \"postBuild\": {\"substitute\": {\"a\": \"b\"}, \"substituteFrom\": ["
           "   {\"kind\": \"ConfigMap\", \"name\": \"vars\"},"
           "   {\"kind\": \"Secret\", \"name\": \"secret-vars\", \"optional\": true},"
           "   {\"kind\": \"Other\", \"name\": \"ignored\"}]},"
           " \"sourceRef\": {\"kind\": \"OCIRepository\", \"name\": \"app\"}}");
    json_t *src =
        js("{\"url\": \"oci://r/app\", \"secretRef\": {\"name\": \"pull\"},"
           " \"certSecretRef\": {\"name\": \"tls\"}, \"proxySecretRef\": {\"name\": \"px\"},"
           " \"verify\": {\"provider\": \"cosign\", \"secretRef\": {\"name\": \"cosign-pub\"}},"
           " \"ref\": {\"tag\": \"v1\"}}");
    char buf[512];
    assert_int_equal(eng_kstore_refs_collect(refs, ks, "team-a"), 0);
    assert_string_equal(keys_of(refs, buf, sizeof(buf)),
                        "[\"Secret/team-a/sops-age\",\"Secret/team-a/remote\","
                        "\"ConfigMap/team-a/vars\",\"Secret/team-a/secret-vars\"]");
    json_object_clear(refs);
    assert_int_equal(eng_kstore_refs_collect(refs, src, "flux-system"), 0);
    assert_int_equal(json_object_size(refs), 4);
    assert_non_null(json_object_get(refs, "Secret/flux-system/pull"));
    assert_non_null(json_object_get(refs, "Secret/flux-system/tls"));
    assert_non_null(json_object_get(refs, "Secret/flux-system/px"));
    assert_non_null(json_object_get(refs, "Secret/flux-system/cosign-pub"));
    /* a sourceRef is not a Secret, nor is a secretRef without a name */
    json_object_clear(refs);
    json_decref(src);
    src = js("{\"secretRef\": {}, \"sourceRef\": {\"name\": \"x\"}, \"ref\": {\"name\": \"y\"}}");
    assert_int_equal(eng_kstore_refs_collect(refs, src, "ns"), 0);
    assert_int_equal(json_object_size(refs), 0);
    json_decref(src);
    json_decref(ks);
    json_decref(refs);
}

static void store_doc_keeps_identity_labels_and_spec_only(void **state)
{
    (void)state;
    static const char *const cr_keys[] = {"spec", NULL};
    json_t *obj =
        js("{\"apiVersion\": \"kustomize.toolkit.fluxcd.io/v1\", \"kind\": \"Kustomization\","
           " \"metadata\": {\"name\": \"app\", \"namespace\": \"flux-system\","
           "   \"labels\": {\"shard\": \"a\"}, \"annotations\": {\"x\": \"y\"},"
           "   \"uid\": \"u-1\", \"resourceVersion\": \"42\", \"generation\": 3,"
           "   \"managedFields\": []},"
           " \"spec\": {\"interval\": \"10m\", \"path\": \"./\"},"
           " \"status\": {\"observedGeneration\": 2}}");
    json_t *doc = eng_kstore_doc(obj, "kustomize.toolkit.fluxcd.io/v1", "Kustomization", cr_keys);
    json_t *want =
        js("{\"apiVersion\": \"kustomize.toolkit.fluxcd.io/v1\", \"kind\": \"Kustomization\","
           " \"metadata\": {\"name\": \"app\", \"namespace\": \"flux-system\","
           "   \"labels\": {\"shard\": \"a\"}},"
           " \"spec\": {\"interval\": \"10m\", \"path\": \"./\"}}");
    assert_non_null(doc);
    assert_true(json_equal(doc, want));
    json_decref(doc);
    json_decref(want);
    /* empty labels are left out */
    json_object_set_new(json_object_get(obj, "metadata"), "labels", json_object());
    doc = eng_kstore_doc(obj, "kustomize.toolkit.fluxcd.io/v1", "Kustomization", cr_keys);
    assert_null(json_object_get(json_object_get(doc, "metadata"), "labels"));
    json_decref(doc);
    json_decref(obj);
}

static void store_doc_of_a_secret_keeps_type_and_data(void **state)
{
    (void)state;
    static const char *const secret_keys[] = {"type", "data", "stringData", NULL};
    json_t *obj =
        js("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"type\": \"Opaque\","
           " \"metadata\": {\"name\": \"cosign-pub\", \"namespace\": \"flux-system\","
           "   \"annotations\": {\"kubectl.kubernetes.io/last-applied-configuration\": \"{}\"}},"
           " \"data\": {\"cosign.pub\": \"LS0t\"}, \"immutable\": false}");
    json_t *doc = eng_kstore_doc(obj, "v1", "Secret", secret_keys);
    json_t *want = js("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"type\": \"Opaque\","
                      " \"metadata\": {\"name\": \"cosign-pub\", \"namespace\": \"flux-system\"},"
                      " \"data\": {\"cosign.pub\": \"LS0t\"}}");
    assert_true(json_equal(doc, want));
    json_decref(doc);
    json_decref(want);
    json_decref(obj);
}

static void watch_filter_keeps_only_referenced_objects(void **state)
{
    (void)state;
    json_t *refs = js("{\"Secret/flux-system/cosign-pub\": true, \"ConfigMap/apps/vars\": true}");
    json_t *pub = js("{\"metadata\": {\"name\": \"cosign-pub\", \"namespace\": \"flux-system\"}}");
    json_t *other_ns = js("{\"metadata\": {\"name\": \"cosign-pub\", \"namespace\": \"default\"}}");
    json_t *vars = js("{\"metadata\": {\"name\": \"vars\", \"namespace\": \"apps\"}}");
    json_t *nameless = js("{\"metadata\": {\"namespace\": \"apps\"}}");
    assert_true(eng_kstore_ref_wanted(refs, "Secret", pub));
    assert_false(eng_kstore_ref_wanted(refs, "ConfigMap", pub)); /* same name, other kind */
    assert_false(eng_kstore_ref_wanted(refs, "Secret", other_ns));
    assert_true(eng_kstore_ref_wanted(refs, "ConfigMap", vars));
    assert_false(eng_kstore_ref_wanted(refs, "Secret", vars));
    assert_false(eng_kstore_ref_wanted(refs, "ConfigMap", nameless));
    assert_false(eng_kstore_ref_wanted(NULL, "Secret", pub));
    json_decref(refs);
    json_decref(pub);
    json_decref(other_ns);
    json_decref(vars);
    json_decref(nameless);
}

static const char *file_status =
    "{\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\", \"reason\": \"Succeeded\","
    " \"observedGeneration\": 1, \"lastTransitionTime\": \"2026-01-01T00:00:00Z\"}],"
    " \"observedGeneration\": 1, \"lastAppliedRevision\": \"v1@sha256:aa\"}";

static void status_patch_sets_generation_everywhere(void **state)
{
    (void)state;
    json_t *st = js(file_status), *out = NULL;
    assert_int_equal(eng_kstore_status_patch(&out, st, NULL, 4, NULL), 0);
    assert_non_null(out);
    assert_int_equal(json_integer_value(json_object_get(out, "observedGeneration")), 4);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(json_object_get(out, "conditions"), 0),
                                           "observedGeneration")),
        4);
    assert_null(json_object_get(out, "lastHandledReconcileAt"));
    /* the file's own status is left alone */
    assert_int_equal(json_integer_value(json_object_get(st, "observedGeneration")), 1);
    json_decref(out);
    json_decref(st);
}

static void status_patch_is_null_when_live_status_already_has_it(void **state)
{
    (void)state;
    json_t *st = js(file_status), *out = NULL, *live;
    assert_int_equal(eng_kstore_status_patch(&out, st, NULL, 2, "req-1"), 0);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "lastHandledReconcileAt")), "req-1");
    /* written back: the live status now equals it, plus fields of its own */
    live = json_deep_copy(out);
    json_object_set_new(live, "somethingElse", json_string("kept"));
    json_decref(out);
    assert_int_equal(eng_kstore_status_patch(&out, st, live, 2, "req-1"), 0);
    assert_null(out);
    /* a newer request handled, or a new generation: a patch again */
    assert_int_equal(eng_kstore_status_patch(&out, st, live, 2, "req-2"), 0);
    assert_non_null(out);
    json_decref(out);
    assert_int_equal(eng_kstore_status_patch(&out, st, live, 3, "req-1"), 0);
    assert_non_null(out);
    json_decref(out);
    /* lastHandledReconcileAt not yet handled: not written, and its absence is no difference */
    assert_int_equal(eng_kstore_status_patch(&out, st, live, 2, NULL), 0);
    assert_null(out);
    json_decref(live);
    json_decref(st);
}

static void status_patch_with_generation_zero_keeps_the_file(void **state)
{
    (void)state;
    json_t *st = js(file_status), *out = NULL;
    assert_int_equal(eng_kstore_status_patch(&out, st, NULL, 0, NULL), 0);
    assert_true(json_equal(out, st));
    json_decref(out);
    json_decref(st);
}

static void names_the_store_accepts(void **state)
{
    (void)state;
    assert_true(eng_kstore_name_ok("flux-system"));
    assert_true(eng_kstore_name_ok("a.b-c"));
    assert_false(eng_kstore_name_ok(NULL));
    assert_false(eng_kstore_name_ok(""));
    assert_false(eng_kstore_name_ok("."));
    assert_false(eng_kstore_name_ok(".."));
    assert_false(eng_kstore_name_ok("a/b"));
    assert_false(eng_kstore_name_ok("a_b")); /* '_' separates the parts of a store file name */
    assert_false(eng_kstore_name_ok("Upper"));
}

/* client-go's rule: a follower counts the lease duration from when it saw the record change, on
 * its own clock; a renewTime far in the past or future (another node's skewed clock) does not
 * matter. */
static void lease_expires_by_the_local_clock_from_the_last_change(void **state)
{
    (void)state;
    eng_kstore_lease_obs o = {0};
    json_t *a = js("{\"holderIdentity\":\"a_1\",\"renewTime\":\"1999-01-01T00:00:00.000000Z\","
                   "\"leaseDurationSeconds\":15,\"leaseTransitions\":2}");
    json_t *b = js("{\"holderIdentity\":\"a_1\",\"renewTime\":\"1999-01-01T00:00:05.000000Z\","
                   "\"leaseDurationSeconds\":15,\"leaseTransitions\":2}");
    json_t *nodur = js("{\"holderIdentity\":\"c_3\",\"renewTime\":\"2999-01-01T00:00:00Z\"}");

    /* first sight: not expired, however old renewTime looks */
    assert_int_equal(eng_kstore_lease_expired(&o, a, 15, 1000), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, a, 15, 15999), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, a, 15, 16000), 1);
    /* a renewal seen restarts the count */
    assert_int_equal(eng_kstore_lease_expired(&o, b, 15, 17000), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, b, 15, 31999), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, b, 15, 32000), 1);
    /* no leaseDurationSeconds: the default, even with a renewTime in the future */
    assert_int_equal(eng_kstore_lease_expired(&o, nodur, 7, 40000), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, nodur, 7, 46999), 0);
    assert_int_equal(eng_kstore_lease_expired(&o, nodur, 7, 47000), 1);
    eng_kstore_lease_obs_dispose(&o);
    assert_null(o.record);
    json_decref(a);
    json_decref(b);
    json_decref(nodur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refs_of_a_kustomization_and_an_ocirepository),
        cmocka_unit_test(store_doc_keeps_identity_labels_and_spec_only),
        cmocka_unit_test(store_doc_of_a_secret_keeps_type_and_data),
        cmocka_unit_test(watch_filter_keeps_only_referenced_objects),
        cmocka_unit_test(status_patch_sets_generation_everywhere),
        cmocka_unit_test(status_patch_is_null_when_live_status_already_has_it),
        cmocka_unit_test(status_patch_with_generation_zero_keeps_the_file),
        cmocka_unit_test(names_the_store_accepts),
        cmocka_unit_test(lease_expires_by_the_local_clock_from_the_last_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
