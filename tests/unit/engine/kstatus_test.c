/*
 * Unit tests for engine/kstatus.c. The rules are pinned by the table in testdata/kstatus/: one
 * JSON file per case, {"why", "object", "status", "message"}, a live object as the API server
 * returns it and the status and message kstatus gives for it (spec/engine.md §4.2). Every file
 * of the directory is run; the list of rules each must cover is checked too, so a deleted case
 * fails the test.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/core.h"
#include "engine/kstatus.h"

static char *testdata_path(const char *rel)
{
    const char *td = getenv("BERTH_TESTDATA");
    char *p = core_sprintf("%s/%s", td ? td : "testdata", rel);
    assert_non_null(p);
    return p;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case files of testdata/kstatus, sorted; *n_out their count. */
static char **list_cases(size_t *n_out)
{
    char *dir = testdata_path("kstatus");
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    if (!d)
        fail_msg("cannot open %s", dir);
    while ((de = readdir(d)) != NULL) {
        if (!core_str_has_suffix(de->d_name, ".json"))
            continue;
        names = core_realloc(names, (n + 1) * sizeof(*names));
        assert_non_null(names);
        names[n] = core_strdup(de->d_name);
        assert_non_null(names[n++]);
    }
    closedir(d);
    core_free(dir);
    qsort(names, n, sizeof(*names), name_cmp);
    *n_out = n;
    return names;
}

static void free_cases(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(names[i]);
    core_free(names);
}

static void kstatus_table_cases_match(void **state)
{
    size_t n = 0, failed = 0;
    char **names = list_cases(&n);
    (void)state;
    assert_true(n >= 70);
    for (size_t i = 0; i < n; i++) {
        char *rel = core_sprintf("kstatus/%s", names[i]), *path = testdata_path(rel);
        json_error_t jerr;
        json_t *tc = json_load_file(path, 0, &jerr);
        eng_kstatus st = ENG_KSTATUS_CURRENT;
        char *msg = NULL;
        berth_error *err = NULL;
        const char *want_st, *want_msg;
        if (!tc)
            fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
        want_st = json_string_value(json_object_get(tc, "status"));
        want_msg = json_string_value(json_object_get(tc, "message"));
        assert_non_null(want_st);
        assert_non_null(want_msg);
        json_t *obj = json_object_get(tc, "object");
        if (json_is_null(obj))
            obj = NULL;
        assert_int_equal(eng_kstatus_compute(&st, &msg, obj, &err), 0);
        assert_null(err);
        assert_non_null(msg);
        if (strcmp(eng_kstatus_name(st), want_st) != 0 || strcmp(msg, want_msg) != 0) {
            print_error("%s (%s): got %s \"%s\", want %s \"%s\"\n", names[i],
                        json_string_value(json_object_get(tc, "why")), eng_kstatus_name(st), msg,
                        want_st, want_msg);
            failed++;
        }
        core_free(msg);
        json_decref(tc);
        core_free(path);
        core_free(rel);
    }
    free_cases(names, n);
    assert_int_equal(failed, 0);
}

/* Each rule of spec/engine.md §4.2 has at least one case file with this prefix. */
static void kstatus_table_covers_every_rule(void **state)
{
    static const char *const prefixes[] = {"terminating",
                                           "generation-not-observed",
                                           "generic-reconciling",
                                           "generic-stalled",
                                           "generic-ready-true",
                                           "generic-ready-false",
                                           "generic-no-conditions",
                                           "deployment-",
                                           "statefulset-",
                                           "daemonset-",
                                           "replicaset-",
                                           "job-",
                                           "cronjob",
                                           "pod-",
                                           "pvc-",
                                           "service-lb-",
                                           "crd-",
                                           "pdb",
                                           "configmap",
                                           "secret",
                                           "not-found"};
    size_t n = 0;
    char **names = list_cases(&n);
    (void)state;
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = core_str_has_prefix(names[i], prefixes[p]);
        if (!found)
            fail_msg("no testdata/kstatus case for rule \"%s\"", prefixes[p]);
    }
    free_cases(names, n);
}

static void kstatus_names_are_kstatus_words(void **state)
{
    (void)state;
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_CURRENT), "Current");
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_IN_PROGRESS), "InProgress");
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_FAILED), "Failed");
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_TERMINATING), "Terminating");
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_NOT_FOUND), "NotFound");
    assert_string_equal(eng_kstatus_name(ENG_KSTATUS_UNKNOWN), "Unknown");
    assert_string_equal(eng_kstatus_name((eng_kstatus)42), "Unknown");
}

static void kstatus_rejects_non_objects(void **state)
{
    eng_kstatus st = ENG_KSTATUS_CURRENT;
    static char untouched[] = "untouched";
    char *msg = untouched;
    berth_error *err = NULL;
    json_t *arr = json_array(), *nokind = json_pack("{s:{s:s}}", "metadata", "name", "web");
    (void)state;
    assert_int_equal(eng_kstatus_compute(&st, &msg, arr, &err), BERTH_EINVAL);
    assert_int_equal(st, ENG_KSTATUS_UNKNOWN);
    assert_null(msg);
    assert_non_null(strstr(berth_error_message(err), "not a JSON object"));
    berth_error_free(err);
    err = NULL;
    assert_int_equal(eng_kstatus_compute(&st, &msg, nokind, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "web"));
    assert_non_null(strstr(berth_error_message(err), "kind"));
    berth_error_free(err);
    /* err may be NULL: the code is still returned */
    assert_int_equal(eng_kstatus_compute(&st, NULL, nokind, NULL), BERTH_EINVAL);
    json_decref(arr);
    json_decref(nokind);
}

static void kstatus_message_is_optional(void **state)
{
    eng_kstatus st = ENG_KSTATUS_UNKNOWN;
    json_t *cm = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                           "name", "c");
    (void)state;
    assert_int_equal(eng_kstatus_compute(&st, NULL, cm, NULL), 0);
    assert_int_equal(st, ENG_KSTATUS_CURRENT);
    assert_int_equal(eng_kstatus_compute(&st, NULL, NULL, NULL), 0);
    assert_int_equal(st, ENG_KSTATUS_NOT_FOUND);
    json_decref(cm);
}

/* A stalled object with no message still gets a (empty) message, never NULL. */
static void kstatus_stalled_without_message_is_empty(void **state)
{
    eng_kstatus st = ENG_KSTATUS_UNKNOWN;
    char *msg = NULL;
    json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:[{s:s,s:s}]}}", "apiVersion", "example.com/v1",
                          "kind", "Widget", "metadata", "name", "w", "status", "conditions", "type",
                          "Stalled", "status", "True");
    (void)state;
    assert_int_equal(eng_kstatus_compute(&st, &msg, o, NULL), 0);
    assert_int_equal(st, ENG_KSTATUS_FAILED);
    assert_non_null(msg);
    assert_string_equal(msg, "");
    core_free(msg);
    json_decref(o);
}

/* The 15 s scheduling window is measured against now: a pod created 5 s ago is still
 * InProgress, one created 60 s ago is Failed. */
static void kstatus_pod_schedule_window_uses_now(void **state)
{
    int64_t now = core_wall_now() / 1000;
    const int64_t ages[] = {5, 60};
    const eng_kstatus want[] = {ENG_KSTATUS_IN_PROGRESS, ENG_KSTATUS_FAILED};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char ts[32];
        eng_kstatus st = ENG_KSTATUS_UNKNOWN;
        core_time_rfc3339(ts, now - ages[i]);
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:[{s:s,s:s,s:s}]}}", "apiVersion", "v1",
                              "kind", "Pod", "metadata", "name", "p", "creationTimestamp", ts,
                              "status", "phase", "Pending", "conditions", "type", "PodScheduled",
                              "status", "False", "reason", "Unschedulable");
        assert_int_equal(eng_kstatus_compute(&st, NULL, o, NULL), 0);
        assert_int_equal(st, want[i]);
        json_decref(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kstatus_table_cases_match),
        cmocka_unit_test(kstatus_table_covers_every_rule),
        cmocka_unit_test(kstatus_names_are_kstatus_words),
        cmocka_unit_test(kstatus_rejects_non_objects),
        cmocka_unit_test(kstatus_message_is_optional),
        cmocka_unit_test(kstatus_stalled_without_message_is_empty),
        cmocka_unit_test(kstatus_pod_schedule_window_uses_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
