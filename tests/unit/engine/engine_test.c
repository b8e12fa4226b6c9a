/*
 * Unit tests for engine/engine.c and the reconcilers' offline paths: a run without any registry
 * (invalid objects Stalled with file:line, a URL with a tag Stalled URLInvalid, a Kustomization
 * whose source has no artifact ArtifactFailed, dependency order, suspend), the --once verdict,
 * the status reader behind `berth get` and option errors. The registry paths are covered by
 * tests/integration/test_engine.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/engine.h>

#include "core/core.h"

static int setup_dir(void **state)
{
    char *dir = NULL;
    const char *tmp = getenv("TMPDIR");
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-engine-", NULL), 0);
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    core_fs_remove_all(*state, NULL);
    core_free(*state);
    return 0;
}

static void assert_contains(const char *s, const char *needle)
{
    if (!s || !strstr(s, needle))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", needle);
}

static char *write_config(const char *dir, const char *yaml)
{
    char *p = core_sprintf("%s/config.yaml", dir);
    assert_non_null(p);
    assert_int_equal(core_fs_write_atomic(p, yaml, strlen(yaml), 0600, NULL), 0);
    return p;
}

/* Run once over yaml in dir; returns the verdict. */
static bool run_once(const char *dir, const char *yaml)
{
    berth_engine_opts o = BERTH_ENGINE_OPTS_INIT;
    char *cfg = write_config(dir, yaml), *st = core_sprintf("%s/state", dir);
    berth_error *err = NULL;
    bool ready = true;
    int rc;

    o.config_path = cfg;
    o.state_dir = st;
    o.once = true;
    rc = berth_engine_run(&ready, &o, &err);
    if (rc != 0)
        fail_msg("run: %s", berth_error_message(err));
    core_free(cfg);
    core_free(st);
    return ready;
}

static const berth_engine_row *find_row(const berth_engine_row *rows, size_t n, const char *kind,
                                        const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].kind, kind) == 0 && strcmp(rows[i].name, name) == 0)
            return &rows[i];
    }
    fail_msg("no status for %s %s", kind, name);
    return NULL;
}

static void list(berth_engine_row **rows, size_t *n, const char *dir, const char *kind)
{
    char *st = core_sprintf("%s/state", dir);
    berth_error *err = NULL;
    if (berth_engine_status_list(rows, n, st, kind, &err) != 0)
        fail_msg("list: %s", berth_error_message(err));
    core_free(st);
}

#define KS(name_, extra_)                                                                          \
    "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  "          \
    "name: " name_                                                                                 \
    "\nspec:\n  interval: 5m\n  prune: true\n  sourceRef:\n    kind: OCIRepository\n    name: "    \
    "tagged\n" extra_

static const char *const offline_config =
    "apiVersion: source.toolkit.fluxcd.io/v1\n"
    "kind: OCIRepository\n"
    "metadata:\n  name: tagged\n"
    "spec:\n  url: oci://127.0.0.1:1/app:v1\n  interval: 5m\n" KS("app", "")
        KS("broken", "  bogus: 1\n");

static void url_with_tag_is_stalled_and_run_is_not_ready(void **state)
{
    berth_engine_row *rows = NULL;
    const berth_engine_row *r;
    size_t n = 0;

    assert_false(run_once(*state, offline_config));
    list(&rows, &n, *state, "OCIRepository");
    assert_int_equal(n, 1);
    r = find_row(rows, n, "OCIRepository", "tagged");
    assert_string_equal(r->ready, "False");
    assert_string_equal(r->reason, "URLInvalid");
    assert_contains(r->message, "must not contain a tag");
    assert_contains(r->status_json, "\"Stalled\"");
    assert_string_equal(r->revision, "");
    berth_engine_rows_free(rows, n);
}

static void kustomization_without_source_artifact_is_artifact_failed(void **state)
{
    berth_engine_row *rows = NULL;
    const berth_engine_row *r;
    size_t n = 0;

    assert_false(run_once(*state, offline_config));
    list(&rows, &n, *state, "Kustomization");
    r = find_row(rows, n, "Kustomization", "app");
    assert_string_equal(r->ready, "False");
    assert_string_equal(r->reason, "ArtifactFailed");
    assert_contains(r->message, "OCIRepository 'default/tagged' has no stored artifact");
    berth_engine_rows_free(rows, n);
}

static void invalid_object_is_stalled_with_file_and_line(void **state)
{
    berth_engine_row *rows = NULL;
    const berth_engine_row *r;
    size_t n = 0;

    assert_false(run_once(*state, offline_config));
    list(&rows, &n, *state, NULL);
    assert_int_equal(n, 3);
    r = find_row(rows, n, "Kustomization", "broken");
    assert_string_equal(r->reason, "InvalidConfig");
    assert_contains(r->message, "config.yaml:");
    assert_contains(r->message, "bogus");
    assert_contains(r->status_json, "\"Stalled\"");
    berth_engine_rows_free(rows, n);
}

static void suspended_objects_keep_their_status_and_do_not_fail_the_run(void **state)
{
    static const char *const cfg = "apiVersion: source.toolkit.fluxcd.io/v1\n"
                                   "kind: OCIRepository\n"
                                   "metadata:\n  name: tagged\n"
                                   "spec:\n  url: oci://127.0.0.1:1/app:v1\n  interval: 5m\n"
                                   "  suspend: true\n" KS("app", "  suspend: true\n");
    berth_engine_row *rows = NULL;
    size_t n = 0;

    assert_true(run_once(*state, cfg));
    list(&rows, &n, *state, NULL);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(rows[i].suspended);
        assert_string_equal(rows[i].ready, "Unknown");
    }
    berth_engine_rows_free(rows, n);
}

static void missing_dependency_is_dependency_not_ready(void **state)
{
    static const char *const cfg = "apiVersion: source.toolkit.fluxcd.io/v1\n"
                                   "kind: OCIRepository\n"
                                   "metadata:\n  name: tagged\n"
                                   "spec:\n  url: oci://127.0.0.1:1/app:v1\n  interval: 5m\n"
                                   "  suspend: true\n" KS("app", "  dependsOn:\n    - name: x\n");
    berth_engine_row *rows = NULL;
    const berth_engine_row *r;
    size_t n = 0;
    char *art = core_sprintf("%s/state/status/ocirepository/default", (char *)*state);
    char *file = core_sprintf("%s/tagged.json", art);
    /* a stored artifact, as a previous run would have left it */
    static const char *const st = "{\"artifact\":{\"revision\":\"v1@sha256:00\",\"path\":"
                                  "\"ocirepository/default/tagged/00\"},"
                                  "\"conditions\":[]}";
    char *adir = core_sprintf("%s/state/artifacts/ocirepository/default/tagged/00", (char *)*state);

    assert_int_equal(core_fs_mkdirs(art, 0700, NULL), 0);
    assert_int_equal(core_fs_mkdirs(adir, 0700, NULL), 0);
    assert_int_equal(core_fs_write_atomic(file, st, strlen(st), 0600, NULL), 0);
    assert_false(run_once(*state, cfg));
    list(&rows, &n, *state, "Kustomization");
    r = find_row(rows, n, "Kustomization", "app");
    assert_string_equal(r->reason, "DependencyNotReady");
    assert_contains(r->message, "dependency 'default/x' not found");
    berth_engine_rows_free(rows, n);
    core_free(art);
    core_free(file);
    core_free(adir);
}

static void unsupported_target_is_refused(void **state)
{
    berth_engine_opts o = BERTH_ENGINE_OPTS_INIT;
    char *cfg = write_config(*state, offline_config),
         *st = core_sprintf("%s/state", (char *)*state);
    berth_error *err = NULL;
    bool ready = true;

    o.config_path = cfg;
    o.state_dir = st;
    o.target = "kube:default";
    o.once = true;
    assert_int_equal(berth_engine_run(&ready, &o, &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "not supported");
    assert_false(ready);
    berth_error_free(err);
    core_free(cfg);
    core_free(st);
}

static void status_list_of_a_missing_state_dir_is_not_found(void **state)
{
    berth_engine_row *rows = NULL;
    berth_error *err = NULL;
    size_t n = 0;
    char *st = core_sprintf("%s/nope", (char *)*state);

    assert_int_equal(berth_engine_status_list(&rows, &n, st, NULL, &err), BERTH_ENOTFOUND);
    assert_contains(berth_error_message(err), "does not exist");
    assert_null(rows);
    berth_error_free(err);
    core_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(url_with_tag_is_stalled_and_run_is_not_ready, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(kustomization_without_source_artifact_is_artifact_failed,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(invalid_object_is_stalled_with_file_and_line, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(suspended_objects_keep_their_status_and_do_not_fail_the_run,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(missing_dependency_is_dependency_not_ready, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(unsupported_target_is_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(status_list_of_a_missing_state_dir_is_not_found, setup_dir,
                                        teardown_dir),
    };
    berth_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
