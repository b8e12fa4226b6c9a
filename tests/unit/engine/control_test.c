/*
 * Unit tests for engine/control.c (the suspend override, the control socket's server and client)
 * and engine/query.c (the readers behind `berth events` and `berth tree`). The loop itself with
 * a real registry is covered by tests/integration/test_engine_day2.sh.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"

static int setup_dir(void **state)
{
    char *dir = NULL;
    const char *tmp = getenv("TMPDIR");
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-ctl-", NULL), 0);
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    core_fs_remove_all(*state, NULL);
    core_free(*state);
    return 0;
}

static void assert_err_contains(berth_error *err, const char *needle)
{
    char *t = berth_error_text(err);
    if (!t || !strstr(t, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", t ? t : "(null)", needle);
    free(t);
    berth_error_free(err);
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char *p = core_sprintf("%s/%s", dir, rel), *slash;
    assert_non_null(p);
    slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(core_fs_mkdirs(p, 0700, NULL), 0);
    *slash = '/';
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), 0600, NULL), 0);
    core_free(p);
}

static void suspend_override_is_written_and_removed(void **state)
{
    const char *dir = *state;
    char *p = core_sprintf("%s/suspend/kustomization/flux-system/app", dir);

    assert_int_equal(
        berth_engine_suspend_set(dir, "Kustomization", "flux-system", "app", true, NULL), 0);
    assert_true(core_fs_exists(p));
    assert_int_equal(
        berth_engine_suspend_set(dir, "Kustomization", "flux-system", "app", false, NULL), 0);
    assert_false(core_fs_exists(p));
    /* resuming what is not suspended is fine */
    assert_int_equal(
        berth_engine_suspend_set(dir, "Kustomization", "flux-system", "app", false, NULL), 0);
    core_free(p);
}

static void suspend_rejects_unknown_kind_and_path_names(void **state)
{
    berth_error *err = NULL;

    assert_int_equal(berth_engine_suspend_set(*state, "GitRepository", "ns", "app", true, &err),
                     BERTH_EINVAL);
    assert_err_contains(err, "cannot be suspended");
    err = NULL;
    assert_int_equal(berth_engine_suspend_set(*state, "Kustomization", "ns", "../x", true, &err),
                     BERTH_EINVAL);
    assert_err_contains(err, "not a valid name");
}

static void control_without_loop_is_not_found(void **state)
{
    berth_error *err = NULL;
    int status = -1;

    assert_int_equal(berth_engine_control(&status, NULL, *state, "GET", "/v1/status", &err),
                     BERTH_ENOTFOUND);
    assert_err_contains(err, "no berth run loop");
    assert_int_equal(status, 0);
}

typedef struct woken {
    char kind[32], ns[32], name[32];
    bool with_source;
    bool reload_first;
    int calls;
} woken;

static bool wake_known(void *payload, const char *kind, const char *ns, const char *name,
                       bool with_source, bool reload_first)
{
    woken *w = payload;
    w->calls++;
    snprintf(w->kind, sizeof(w->kind), "%s", kind);
    snprintf(w->ns, sizeof(w->ns), "%s", ns);
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->with_source = with_source;
    w->reload_first = reload_first;
    return strcmp(name, "app") == 0;
}

/* Serve one request from a forked client; returns the HTTP status it saw, modulo 256. */
static int round_trip(const char *dir, woken *w, const char *method, const char *path)
{
    eng_control *c = NULL;
    pid_t pid;
    int wstatus = 0;

    assert_int_equal(eng_control_open(&c, dir, NULL), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int status = 0;
        char *body = NULL;
        if (berth_engine_control(&status, &body, dir, method, path, NULL) < 0 || !body ||
            body[0] != '{')
            _exit(255);
        _exit(status % 256); /* exit codes are one byte: 200, 202, 144 (400), 148, 149 */
    }
    eng_control_serve(c, 5000, wake_known, w, 2);
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    eng_control_free(c);
    assert_true(WIFEXITED(wstatus));
    assert_int_not_equal(WEXITSTATUS(wstatus), 255);
    return WEXITSTATUS(wstatus);
}

static void control_reconcile_wakes_the_object(void **state)
{
    woken w = {.calls = 0};
    char *sock = core_sprintf("%s/berth.sock", (const char *)*state);
    struct stat sb;
    eng_control *c = NULL;

    assert_int_equal(round_trip(*state, &w, "POST",
                                "/v1/reconcile/kustomization/flux-system/app?withSource=true"),
                     202 % 256);
    assert_int_equal(w.calls, 1);
    assert_string_equal(w.kind, "Kustomization");
    assert_string_equal(w.ns, "flux-system");
    assert_string_equal(w.name, "app");
    assert_true(w.with_source);
    assert_false(w.reload_first);
    assert_false(core_fs_exists(sock)); /* removed when the loop stops */
    /* controller mode's store asks for a reload first; flags in any order, exact names only */
    assert_int_equal(
        round_trip(*state, &w, "POST", "/v1/reconcile/Kustomization/flux-system/app?reload=true"),
        202 % 256);
    assert_true(w.reload_first);
    assert_false(w.with_source);
    assert_int_equal(
        round_trip(*state, &w, "POST",
                   "/v1/reconcile/Kustomization/flux-system/app?reload=true&withSource=true"),
        202 % 256);
    assert_true(w.reload_first);
    assert_true(w.with_source);
    assert_int_equal(
        round_trip(*state, &w, "POST", "/v1/reconcile/Kustomization/flux-system/app?reloaded=true"),
        202 % 256);
    assert_false(w.reload_first);
    /* owner-only */
    assert_int_equal(eng_control_open(&c, *state, NULL), 0);
    assert_int_equal(stat(sock, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    eng_control_free(c);
    core_free(sock);
}

static void control_suspend_writes_the_override(void **state)
{
    woken w = {.calls = 0};

    assert_int_equal(round_trip(*state, &w, "POST", "/v1/suspend/OCIRepository/ns/app"), 202 % 256);
    assert_string_equal(w.kind, "OCIRepository");
    assert_false(w.with_source);
    {
        eng_state *st = NULL;
        assert_int_equal(eng_state_open(&st, *state, NULL, NULL), 0);
        assert_true(eng_suspend_override(st, "OCIRepository", "ns", "app"));
        assert_false(eng_suspend_override(st, "Kustomization", "ns", "app"));
        eng_state_free(st);
    }
    assert_int_equal(round_trip(*state, &w, "POST", "/v1/resume/OCIRepository/ns/app"), 202 % 256);
    {
        eng_state *st = NULL;
        assert_int_equal(eng_state_open(&st, *state, NULL, NULL), 0);
        assert_false(eng_suspend_override(st, "OCIRepository", "ns", "app"));
        eng_state_free(st);
    }
}

static void control_answers_unknown_objects_paths_and_methods(void **state)
{
    woken w = {.calls = 0};

    assert_int_equal(round_trip(*state, &w, "POST", "/v1/reconcile/Kustomization/ns/other"),
                     404 % 256);
    assert_int_equal(round_trip(*state, &w, "POST", "/v1/explode/Kustomization/ns/app"), 404 % 256);
    assert_int_equal(round_trip(*state, &w, "POST", "/v1/reconcile/Kustomization/ns/app/extra"),
                     404 % 256);
    assert_int_equal(round_trip(*state, &w, "POST", "/v1/reconcile/GitRepository/ns/app"),
                     400 % 256);
    assert_int_equal(round_trip(*state, &w, "GET", "/v1/reconcile/Kustomization/ns/app"),
                     405 % 256);
    assert_int_equal(round_trip(*state, &w, "GET", "/v1/status"), 200 % 256);
    assert_int_equal(w.calls, 1); /* only the well-formed POST for "other" reached the loop */
}

static void control_survives_clients_that_hang_up_or_stall(void **state)
{
    char *sock = core_sprintf("%s/berth.sock", (const char *)*state);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    eng_control *c = NULL;
    woken w = {.calls = 0};
    int64_t t0;

    assert_int_equal(eng_control_open(&c, *state, NULL), 0);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    for (int stall = 0; stall < 2; stall++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(1);
            if (stall) { /* half a request, then silence */
                if (write(fd, "POST /v1/rec", 12) != 12)
                    _exit(1);
                sleep(4);
            }
            _exit(0); /* hang up without reading the answer */
        }
        t0 = core_mono_now();
        eng_control_serve(c, 5000, wake_known, &w, 2);
        assert_true(core_mono_now() - t0 < 3500); /* the 2 s read timeout, not the client */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    eng_control_free(c);
    assert_int_equal(w.calls, 0);
    /* still serving */
    assert_int_equal(round_trip(*state, &w, "POST", "/v1/reconcile/Kustomization/ns/app"),
                     202 % 256);
    core_free(sock);
}

static void events_are_filtered_and_torn_lines_skipped(void **state)
{
    const char *dir = *state;
    berth_engine_event *ev = NULL;
    size_t n = 0;

    write_file(dir, "events.jsonl.1",
               "{\"involvedObject\":{\"kind\":\"Kustomization\",\"namespace\":\"ns\",\"name\":"
               "\"app\"},\"severity\":\"info\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"reason\":"
               "\"Old\",\"message\":\"first\"}\n");
    write_file(dir, "events.jsonl",
               "{\"involvedObject\":{\"kind\":\"OCIRepository\",\"namespace\":\"ns\",\"name\":"
               "\"app\"},\"severity\":\"info\",\"timestamp\":\"2026-01-01T00:00:01Z\",\"reason\":"
               "\"NewArtifact\",\"message\":\"stored\"}\n"
               "not json\n"
               "{\"involvedObject\":{\"kind\":\"Kustomization\",\"namespace\":\"ns\",\"name\":"
               "\"app\"},\"severity\":\"info\",\"timestamp\":\"2026-01-01T00:00:02Z\",\"reason\":"
               "\"ReconciliationSucceeded\",\"message\":\"applied\"}\n"
               "{\"involvedObject\":{\"kind\":\"Kustomization\"");
    assert_int_equal(berth_engine_events_list(&ev, &n, dir, "kustomization", "app", NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].reason, "Old"); /* rotated file first */
    assert_string_equal(ev[1].message, "applied");
    assert_string_equal(ev[1].ns, "ns");
    berth_engine_events_free(ev, n);
    assert_int_equal(berth_engine_events_list(&ev, &n, dir, NULL, NULL, NULL), 0);
    assert_int_equal(n, 3);
    berth_engine_events_free(ev, n);
}

static void events_of_a_missing_state_dir_fail(void **state)
{
    berth_engine_event *ev = NULL;
    berth_error *err = NULL;
    size_t n = 0;
    char *missing = core_sprintf("%s/nope", (const char *)*state);

    assert_int_equal(berth_engine_events_list(&ev, &n, missing, NULL, NULL, &err), BERTH_ENOTFOUND);
    assert_err_contains(err, "does not exist");
    core_free(missing);
}

static void inventory_is_listed_as_objects(void **state)
{
    const char *dir = *state;
    berth_engine_object *objs = NULL;
    berth_error *err = NULL;
    size_t n = 0;

    write_file(dir, "inventory/ns/app.json",
               "{\"entries\":[{\"id\":\"demo_web_apps_Deployment\",\"v\":\"v1\"},"
               "{\"id\":\"_demo__Namespace\",\"v\":\"v1\"}]}");
    assert_int_equal(berth_engine_inventory_list(&objs, &n, dir, "ns", "app", NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(objs[0].kind, "Namespace"); /* sorted by id */
    assert_string_equal(objs[0].ns, "");
    assert_string_equal(objs[1].group, "apps");
    assert_string_equal(objs[1].ns, "demo");
    assert_string_equal(objs[1].name, "web");
    berth_engine_objects_free(objs, n);

    assert_int_equal(berth_engine_inventory_list(&objs, &n, dir, "ns", "other", &err),
                     BERTH_ENOTFOUND);
    assert_err_contains(err, "has no inventory");
    err = NULL;
    write_file(dir, "inventory/ns/bad.json", "{\"entries\":7}");
    assert_int_equal(berth_engine_inventory_list(&objs, &n, dir, "ns", "bad", &err), BERTH_EINVAL);
    assert_err_contains(err, "bad.json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(suspend_override_is_written_and_removed, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(suspend_rejects_unknown_kind_and_path_names, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(control_without_loop_is_not_found, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(control_reconcile_wakes_the_object, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(control_suspend_writes_the_override, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(control_answers_unknown_objects_paths_and_methods,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(control_survives_clients_that_hang_up_or_stall, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(events_are_filtered_and_torn_lines_skipped, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(events_of_a_missing_state_dir_fail, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(inventory_is_listed_as_objects, setup_dir, teardown_dir),
    };
    berth_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
