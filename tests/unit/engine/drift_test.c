/*
 * Unit tests for drift in the Kustomization status (engine/kustomization.c): a target file edited
 * or deleted out of band is restored and recorded as status.lastDriftCorrection {time, revision,
 * count, objects[{id, subject, drift}]}, which the Ready message mentions and which stays until
 * the next correction. The engine runs offline: the OCIRepository is suspended and its status
 * (an artifact already in storage) is written by the test, as a previous run would have.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"

static const char *const config =
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: app\n"
    "spec:\n  url: oci://127.0.0.1:1/app\n  interval: 5m\n  suspend: true\n---\n"
    "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: web\n"
    "spec:\n  interval: 5m\n  prune: true\n  sourceRef:\n    kind: OCIRepository\n    name: app\n";

#define REV "v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = core_sprintf("%s/%s", dir, rel), *slash;
    assert_non_null(p);
    slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(core_fs_mkdirs(p, 0755, NULL), 0);
    *slash = '/';
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), 0644, NULL), 0);
    core_free(p);
}

static int setup(void **state)
{
    char *dir = NULL;
    const char *tmp = getenv("TMPDIR");

    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-drift-", NULL), 0);
    put(dir, "config.yaml", config);
    put(dir, "state/artifacts/ocirepository/default/app/1111/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: default\ndata:\n  "
        "k: v\n");
    put(dir, "state/artifacts/ocirepository/default/app/1111/cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n  namespace: default\ndata:\n  "
        "k: v\n");
    put(dir, "state/status/ocirepository/default/app.json",
        "{\"observedGeneration\": 1, \"conditions\": [{\"type\": \"Ready\", \"status\": \"True\", "
        "\"reason\": \"Succeeded\", \"message\": \"stored\", \"lastTransitionTime\": "
        "\"2026-01-01T00:00:00Z\", \"observedGeneration\": 1}], \"artifact\": {\"revision\": "
        "\"" REV "\", \"digest\": \"sha256:1111\", \"path\": \"ocirepository/default/app/1111\", "
        "\"lastUpdateTime\": \"2026-01-01T00:00:00Z\"}}");
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    if (!getenv("KEEP"))
        core_fs_remove_all(*state, NULL);
    core_free(*state);
    return 0;
}

static bool run(const char *dir)
{
    berth_engine_opts o = BERTH_ENGINE_OPTS_INIT;
    char *cfg = core_sprintf("%s/config.yaml", dir), *st = core_sprintf("%s/state", dir);
    char *tgt = core_sprintf("dir:%s/target", dir);
    berth_error *err = NULL;
    bool ready = false;

    o.config_path = cfg;
    o.state_dir = st;
    o.target = tgt;
    o.once = true;
    if (berth_engine_run(&ready, &o, &err) != 0)
        fail_msg("run: %s", berth_error_message(err));
    core_free(cfg);
    core_free(st);
    core_free(tgt);
    return ready;
}

/* The Kustomization's status document and its Ready message (heap, via *msg). */
static json_t *ks_status(const char *dir, char **msg)
{
    char *st = core_sprintf("%s/state", dir);
    berth_engine_row *rows = NULL;
    size_t n = 0;
    json_t *j = NULL;

    assert_int_equal(berth_engine_status_list(&rows, &n, st, "Kustomization", NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].ready, "True");
    j = json_loads(rows[0].status_json, 0, NULL);
    assert_non_null(j);
    *msg = core_strdup(rows[0].message);
    berth_engine_rows_free(rows, n);
    core_free(st);
    return j;
}

static void contains(const char *s, const char *needle)
{
    if (!s || !strstr(s, needle))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", needle);
}

static void drift_is_recorded_in_status_and_kept_until_the_next(void **state)
{
    const char *dir = *state;
    char *msg = NULL, *p1 = core_sprintf("%s/target/default/core_ConfigMap_one.yaml", dir);
    char *p2 = core_sprintf("%s/target/default/core_ConfigMap_two.yaml", dir);
    json_t *st, *d, *o;

    /* 1. first apply: nothing drifted, no record */
    assert_true(run(dir));
    st = ks_status(dir, &msg);
    assert_null(json_object_get(st, "lastDriftCorrection"));
    assert_string_equal(msg, "Applied revision: " REV);
    json_decref(st);
    core_free(msg);

    /* 2. one file edited out of band: restored and recorded as modified */
    put(dir, "target/default/core_ConfigMap_one.yaml", "edited: by hand\n");
    assert_true(run(dir));
    st = ks_status(dir, &msg);
    d = json_object_get(st, "lastDriftCorrection");
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "revision")), REV);
    assert_int_equal(json_integer_value(json_object_get(d, "count")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(d, "time"))), 20);
    assert_int_equal(json_array_size(json_object_get(d, "objects")), 1);
    o = json_array_get(json_object_get(d, "objects"), 0);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "default_one__ConfigMap");
    assert_string_equal(json_string_value(json_object_get(o, "subject")), "ConfigMap/default/one");
    assert_string_equal(json_string_value(json_object_get(o, "drift")), "modified");
    contains(msg, "Applied revision: " REV "; drift corrected at ");
    contains(msg, ": 1 object(s) restored");
    json_decref(st);
    core_free(msg);
    {
        berth_buf text = BERTH_BUF_INIT;
        assert_int_equal(core_fs_read_file(&text, p1, 1 << 20, NULL), 0);
        contains(text.ptr, "name: one");
        berth_buf_dispose(&text);
    }

    /* 3. a pass without drift keeps the record */
    assert_true(run(dir));
    st = ks_status(dir, &msg);
    d = json_object_get(st, "lastDriftCorrection");
    assert_non_null(d);
    assert_int_equal(json_integer_value(json_object_get(d, "count")), 1);
    contains(msg, "drift corrected at ");
    json_decref(st);
    core_free(msg);

    /* 4. both files deleted: the next correction replaces the record */
    assert_int_equal(remove(p1), 0);
    assert_int_equal(remove(p2), 0);
    assert_true(run(dir));
    st = ks_status(dir, &msg);
    d = json_object_get(st, "lastDriftCorrection");
    assert_int_equal(json_integer_value(json_object_get(d, "count")), 2);
    assert_int_equal(json_array_size(json_object_get(d, "objects")), 2);
    for (size_t i = 0; i < 2; i++) {
        o = json_array_get(json_object_get(d, "objects"), i);
        assert_string_equal(json_string_value(json_object_get(o, "drift")), "missing");
    }
    contains(msg, ": 2 object(s) restored");
    json_decref(st);
    core_free(msg);
    assert_true(core_fs_exists(p1) && core_fs_exists(p2));
    core_free(p1);
    core_free(p2);
}

static void ready_message_mentions_drift_only_for_the_applied_revision(void **state)
{
    json_t *st = json_pack("{s:{s:s, s:s, s:i}}", "lastDriftCorrection", "time",
                           "2026-11-22T06:00:00Z", "revision", "v1@sha256:aa", "count", 3);
    char *m;

    (void)state;
    m = eng_kustomization_ready_message(st, "v1@sha256:aa");
    assert_string_equal(
        m, "Applied revision: v1@sha256:aa; drift corrected at 2026-11-22T06:00:00Z: 3 object(s) "
           "restored");
    core_free(m);
    m = eng_kustomization_ready_message(st, "v2@sha256:bb");
    assert_string_equal(m, "Applied revision: v2@sha256:bb");
    core_free(m);
    json_decref(st);
}

static void drift_json_lists_at_most_100_objects_but_counts_all(void **state)
{
    eng_plan p;
    json_t *d = NULL;

    (void)state;
    eng_plan_init(&p);
    assert_int_equal(eng_kustomization_drift_json(&d, &p), 0);
    assert_null(d);
    for (int i = 0; i < 150; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ns_n%d__ConfigMap", i);
        assert_int_equal(eng_plan_add(&p, ENG_CHANGE_UPDATE,
                                      i % 3 == 0 ? ENG_DRIFT_NONE : ENG_DRIFT_MODIFIED, id, "v1",
                                      "ConfigMap/ns/n", "sha256:00", NULL, NULL),
                         0);
    }
    assert_int_equal(eng_kustomization_drift_json(&d, &p), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "count")), 100);
    assert_int_equal(json_array_size(json_object_get(d, "objects")), 100);
    json_decref(d);
    eng_plan_dispose(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(drift_is_recorded_in_status_and_kept_until_the_next, setup,
                                        teardown),
        cmocka_unit_test(ready_message_mentions_drift_only_for_the_applied_revision),
        cmocka_unit_test(drift_json_lists_at_most_100_objects_but_counts_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
