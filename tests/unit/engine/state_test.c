/* Unit tests for engine/state.c: the state directory, inventories, conditions, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/state.h"

/* ---- helpers ---- */

static int setup_dir(void **state)
{
    char *dir = NULL;
    const char *tmp = getenv("TMPDIR");
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-state-", NULL), 0);
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

static char *path_in(const char *dir, const char *rel)
{
    char *p = core_sprintf("%s/%s", dir, rel);
    assert_non_null(p);
    return p;
}

static eng_state *open_state(const char *dir, const eng_state_opts *opts)
{
    eng_state *st = NULL;
    berth_error *err = NULL;
    if (eng_state_open(&st, dir, opts, &err) != 0)
        fail_msg("open: %s", berth_error_message(err));
    return st;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

/* ---- the directory ---- */

static void state_status_survives_a_restart(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    json_t *status = eng_status_new(), *back = NULL;
    eng_condition ready = {"Ready", "True", "Succeeded", "stored artifact", 3};
    assert_int_equal(eng_status_set_condition(status, &ready, 1700000000000, NULL), 0);
    json_object_set_new(status, "lastAppliedRevision", json_string("latest@sha256:ab"));
    assert_int_equal(eng_state_status_write(st, "OCIRepository", "apps", "web", status, NULL), 0);
    eng_state_free(st);

    st = open_state(dir, NULL);
    assert_int_equal(eng_state_status_read(&back, st, "OCIRepository", "apps", "web", NULL), 0);
    assert_non_null(back);
    assert_true(json_equal(status, back));
    char *file = path_in(dir, "status/ocirepository/apps/web.json");
    assert_true(core_fs_exists(file));
    core_free(file);
    json_decref(back);
    json_decref(status);
    eng_state_free(st);
}

static void state_status_absent_reads_as_null(void **state)
{
    eng_state *st = open_state(*state, NULL);
    json_t *sentinel = json_object(), *back = sentinel;
    assert_int_equal(eng_state_status_read(&back, st, "Kustomization", "apps", "none", NULL), 0);
    assert_null(back);
    json_decref(sentinel);
    eng_state_free(st);
}

static void state_writes_are_atomic_and_owner_only(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    char *sdir = path_in(dir, "status/kustomization/apps");
    char *file = path_in(dir, "status/kustomization/apps/web.json");
    for (int i = 0; i < 5; i++) {
        json_t *s = eng_status_new();
        json_object_set_new(s, "observedGeneration", json_integer(i));
        assert_int_equal(eng_state_status_write(st, "Kustomization", "apps", "web", s, NULL), 0);
        json_decref(s);
    }
    assert_int_equal(count_entries(sdir), 1); /* no temp file left behind */
    assert_int_equal(file_mode(file), 0600);
    assert_int_equal(file_mode(dir), 0700);
    assert_int_equal(file_mode(sdir), 0700);
    json_t *back = NULL;
    assert_int_equal(eng_state_status_read(&back, st, "Kustomization", "apps", "web", NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(back, "observedGeneration")), 4);
    json_decref(back);
    core_free(sdir);
    core_free(file);
    eng_state_free(st);
}

static void state_corrupt_status_is_an_error_naming_the_file(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    char *file = path_in(dir, "status/kustomization/apps/web.json");
    json_t *back = NULL, *s = eng_status_new();
    berth_error *err = NULL;
    assert_int_equal(eng_state_status_write(st, "Kustomization", "apps", "web", s, NULL), 0);
    assert_int_equal(core_fs_write_atomic(file, "{\"half", 6, 0600, NULL), 0);
    assert_int_equal(eng_state_status_read(&back, st, "Kustomization", "apps", "web", &err),
                     BERTH_EINVAL);
    assert_contains(berth_error_message(err), file);
    assert_null(back);
    berth_error_free(err);
    json_decref(s);
    core_free(file);
    eng_state_free(st);
}

static void state_second_open_is_refused_naming_the_directory(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL), *again = NULL;
    berth_error *err = NULL;
    char pid[32];
    assert_int_equal(eng_state_open(&again, dir, NULL, &err), BERTH_ECONFLICT);
    assert_null(again);
    char *text = berth_error_text(err);
    assert_contains(text, dir);
    assert_contains(text, "in use by another berth process");
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    assert_contains(text, pid);
    free(text);
    berth_error_free(err);
    err = NULL;

    /* another process is refused too */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        eng_state *other = NULL;
        int rc = eng_state_open(&other, dir, NULL, NULL);
        _exit(rc == BERTH_ECONFLICT ? 0 : 100 - rc);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* closing releases the lock */
    eng_state_free(st);
    assert_int_equal(eng_state_open(&again, dir, NULL, &err), 0);
    eng_state_free(again);
}

static void state_refuses_names_that_leave_the_directory(void **state)
{
    eng_state *st = open_state(*state, NULL);
    json_t *s = eng_status_new();
    char *out = NULL;
    berth_error *err = NULL;
    assert_int_equal(eng_state_status_write(st, "Kustomization", "apps", "../../escape", s, &err),
                     BERTH_EINVAL);
    assert_contains(berth_error_message(err), "\"../../escape\"");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(eng_state_artifact_dir(&out, st, "OCIRepository", "..", "x", &err),
                     BERTH_EINVAL);
    assert_contains(berth_error_message(err), "namespace");
    assert_null(out);
    berth_error_free(err);
    json_decref(s);
    eng_state_free(st);
}

static void state_artifact_dir_is_created_owner_only(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    char *out = NULL, *want = path_in(dir, "artifacts/ocirepository/apps/web");
    assert_int_equal(eng_state_artifact_dir(&out, st, "OCIRepository", "apps", "web", NULL), 0);
    assert_string_equal(out, want);
    assert_true(core_fs_is_dir(out));
    assert_int_equal(file_mode(out), 0700);
    core_free(out);
    core_free(want);
    eng_state_free(st);
}

/* ---- inventories ---- */

static void state_inventory_is_written_sorted_and_read_back(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    eng_inventory inv = ENG_INVENTORY_INIT, back;
    assert_int_equal(eng_inventory_add(&inv, "apps_web_apps_Deployment", "v1", "sha256:bb", NULL),
                     0);
    assert_int_equal(eng_inventory_add(&inv, "apps_web__Service", "v1", NULL, NULL), 0);
    assert_int_equal(eng_inventory_add(&inv, "_admin_rbac.authorization.k8s.io_ClusterRole", "v1",
                                       "sha256:aa", NULL),
                     0);
    assert_int_equal(eng_state_inventory_write(st, "apps", "web", &inv, NULL), 0);
    /* the caller's order is untouched */
    assert_string_equal(inv.entries[0].id, "apps_web_apps_Deployment");
    eng_state_free(st);

    st = open_state(dir, NULL);
    assert_int_equal(eng_state_inventory_read(&back, st, "apps", "web", NULL), 0);
    assert_int_equal(back.len, 3);
    assert_string_equal(back.entries[0].id, "_admin_rbac.authorization.k8s.io_ClusterRole");
    assert_string_equal(back.entries[1].id, "apps_web__Service");
    assert_string_equal(back.entries[2].id, "apps_web_apps_Deployment");
    assert_string_equal(back.entries[2].digest, "sha256:bb");
    assert_null(back.entries[1].digest);
    assert_string_equal(back.entries[0].version, "v1");
    eng_inventory_dispose(&back);

    assert_int_equal(eng_state_inventory_remove(st, "apps", "web", NULL), 0);
    assert_int_equal(eng_state_inventory_read(&back, st, "apps", "web", NULL), 0);
    assert_int_equal(back.len, 0);
    eng_inventory_dispose(&back);
    eng_inventory_dispose(&inv);
    eng_state_free(st);
}

static void inventory_records_prune_on_removal_and_reads_old_files_as_unknown(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    eng_inventory inv = ENG_INVENTORY_INIT, back;
    json_t *j = NULL;

    assert_int_equal(eng_inventory_add(&inv, "apps_web__Service", "v1", NULL, NULL), 0);
    inv.prune = ENG_INV_PRUNE_ON;
    assert_int_equal(eng_state_inventory_write(st, "apps", "web", &inv, NULL), 0);
    assert_int_equal(eng_state_inventory_read(&back, st, "apps", "web", NULL), 0);
    assert_int_equal(back.prune, ENG_INV_PRUNE_ON);
    eng_inventory_dispose(&back);
    inv.prune = ENG_INV_PRUNE_OFF;
    assert_int_equal(eng_state_inventory_write(st, "apps", "web", &inv, NULL), 0);
    assert_int_equal(eng_state_inventory_read(&back, st, "apps", "web", NULL), 0);
    assert_int_equal(back.prune, ENG_INV_PRUNE_OFF);
    eng_inventory_dispose(&back);
    /* a file written before prune was recorded */
    inv.prune = ENG_INV_PRUNE_UNKNOWN;
    assert_int_equal(eng_inventory_to_json(&j, &inv, NULL), 0);
    assert_null(json_object_get(j, "prune"));
    assert_int_equal(eng_inventory_from_json(&back, j, "old", NULL), 0);
    assert_int_equal(back.prune, ENG_INV_PRUNE_UNKNOWN);
    eng_inventory_dispose(&back);
    json_object_set_new(j, "prune", json_string("yes"));
    assert_int_equal(eng_inventory_from_json(&back, j, "bad", NULL), BERTH_EINVAL);
    json_decref(j);
    eng_inventory_dispose(&inv);
    eng_state_free(st);
}

static void inventory_records_its_cluster_and_keeps_the_kubeconfig_beside_it(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    eng_inventory inv = ENG_INVENTORY_INIT, back;
    berth_buf kc = BERTH_BUF_INIT;
    json_t *status = json_object();
    char *path = core_sprintf("%s/inventory/apps/web.kubeconfig", dir);
    struct stat sb;

    assert_int_equal(eng_inventory_add(&inv, "apps_web__Service", "v1", NULL, NULL), 0);
    assert_non_null(inv.cluster = core_strdup("https://remote:6443"));
    assert_int_equal(eng_state_inventory_write(st, "apps", "web", &inv, NULL), 0);
    assert_int_equal(eng_state_inventory_read(&back, st, "apps", "web", NULL), 0);
    assert_string_equal(back.cluster, "https://remote:6443");
    eng_inventory_dispose(&back);
    /* Flux's status shape: never the cluster */
    assert_int_equal(eng_status_set_inventory(status, &inv, NULL), 0);
    assert_non_null(json_object_get(json_object_get(status, "inventory"), "entries"));
    assert_null(json_object_get(json_object_get(status, "inventory"), "cluster"));
    assert_int_equal(eng_state_kubeconfig_read(&kc, st, "apps", "web", NULL), BERTH_ENOTFOUND);
    assert_int_equal(eng_state_kubeconfig_write(st, "apps", "web", "kc-bytes", 8, NULL), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(eng_state_kubeconfig_read(&kc, st, "apps", "web", NULL), 0);
    assert_int_equal(kc.len, 8);
    assert_memory_equal(kc.ptr, "kc-bytes", 8);
    /* removing the inventory removes its kubeconfig */
    assert_int_equal(eng_state_inventory_remove(st, "apps", "web", NULL), 0);
    assert_int_equal(stat(path, &sb), -1);
    berth_buf_dispose(&kc);
    core_free(path);
    json_decref(status);
    eng_inventory_dispose(&inv);
    eng_state_free(st);
}

static void inventory_add_replaces_the_same_id(void **state)
{
    (void)state;
    eng_inventory inv = ENG_INVENTORY_INIT;
    assert_int_equal(eng_inventory_add(&inv, "a_x__ConfigMap", "v1", "sha256:1", NULL), 0);
    assert_int_equal(eng_inventory_add(&inv, "a_x__ConfigMap", "v1", "sha256:2", NULL), 0);
    assert_int_equal(inv.len, 1);
    assert_string_equal(eng_inventory_find(&inv, "a_x__ConfigMap")->digest, "sha256:2");
    eng_inventory_dispose(&inv);
}

static void inventory_diff_ignores_versions(void **state)
{
    (void)state;
    eng_inventory old = ENG_INVENTORY_INIT, cur = ENG_INVENTORY_INIT, stale;
    eng_inventory_add(&old, "a_web_apps_Deployment", "v1", NULL, NULL);
    eng_inventory_add(&old, "a_hpa_autoscaling_HorizontalPodAutoscaler", "v1", NULL, NULL);
    eng_inventory_add(&old, "a_gone__ConfigMap", "v1", NULL, NULL);
    eng_inventory_add(&cur, "a_web_apps_Deployment", "v1", NULL, NULL);
    eng_inventory_add(&cur, "a_hpa_autoscaling_HorizontalPodAutoscaler", "v2", NULL, NULL);
    assert_int_equal(eng_inventory_diff(&stale, &old, &cur, NULL), 0);
    assert_int_equal(stale.len, 1);
    assert_string_equal(stale.entries[0].id, "a_gone__ConfigMap");
    eng_inventory_dispose(&stale);
    eng_inventory_dispose(&old);
    eng_inventory_dispose(&cur);
}

static void objid_round_trips_flux_ids(void **state)
{
    (void)state;
    static const struct {
        const char *ns, *name, *group, *kind, *id;
    } cases[] = {
        {"default", "podinfo", "apps", "Deployment", "default_podinfo_apps_Deployment"},
        {"default", "podinfo", "", "Service", "default_podinfo__Service"},
        {"", "podinfo", "rbac.authorization.k8s.io", "ClusterRole",
         "_podinfo_rbac.authorization.k8s.io_ClusterRole"},
        {"", "system:auth", "rbac.authorization.k8s.io", "ClusterRoleBinding",
         "_system__auth_rbac.authorization.k8s.io_ClusterRoleBinding"},
        {"ns", "a_b", "", "ConfigMap", "ns_a_b__ConfigMap"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *id = NULL;
        eng_objid p;
        assert_int_equal(
            eng_objid_format(&id, cases[i].ns, cases[i].name, cases[i].group, cases[i].kind, NULL),
            0);
        assert_string_equal(id, cases[i].id);
        assert_int_equal(eng_objid_parse(&p, id, NULL), 0);
        assert_string_equal(p.ns, cases[i].ns);
        assert_string_equal(p.name, cases[i].name);
        assert_string_equal(p.group, cases[i].group);
        assert_string_equal(p.kind, cases[i].kind);
        eng_objid_dispose(&p);
        core_free(id);
    }
}

static void objid_parse_refuses_malformed_ids(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "nounderscore", "a_b", "a__Kind", "a_b_c_"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        eng_objid p;
        berth_error *err = NULL;
        assert_int_equal(eng_objid_parse(&p, bad[i], &err), BERTH_EINVAL);
        assert_contains(berth_error_message(err), "invalid inventory id");
        berth_error_free(err);
    }
}

static void object_id_refuses_objects_without_kind_or_name(void **state)
{
    (void)state;
    json_t *no_kind = json_pack("{s:s, s:{s:s}}", "apiVersion", "v1", "metadata", "name", "cm");
    json_t *no_name =
        json_pack("{s:s, s:s, s:{}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata");
    json_t *ok = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "apps/v1", "kind",
                           "Deployment", "metadata", "name", "web", "namespace", "apps");
    char *id = NULL, *v = NULL;
    berth_error *err = NULL;
    assert_int_equal(eng_object_id(&id, &v, no_kind, 4, &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err), "object 4 (name \"cm\") has no kind");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(eng_object_id(&id, &v, no_name, 0, &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err),
                        "object 0 (kind \"ConfigMap\") has no metadata.name");
    berth_error_free(err);
    assert_int_equal(eng_object_id(&id, &v, ok, 0, NULL), 0);
    assert_string_equal(id, "apps_web_apps_Deployment");
    assert_string_equal(v, "v1");
    core_free(id);
    core_free(v);
    json_decref(no_kind);
    json_decref(no_name);
    json_decref(ok);
}

/* ---- conditions ---- */

static void condition_transition_time_changes_only_with_the_condition(void **state)
{
    (void)state;
    json_t *s = eng_status_new();
    eng_condition c = {"Ready", "False", "ArtifactFailed", "not found", 1};
    assert_int_equal(eng_status_set_condition(s, &c, 1000000000, NULL), 0);
    const char *t0 =
        json_string_value(json_object_get(eng_status_condition(s, "Ready"), "lastTransitionTime"));
    assert_string_equal(t0, "1970-01-12T13:46:40Z");
    c.observed_generation = 2; /* same status, reason, message: time kept */
    assert_int_equal(eng_status_set_condition(s, &c, 2000000000, NULL), 0);
    json_t *r = eng_status_condition(s, "Ready");
    assert_string_equal(json_string_value(json_object_get(r, "lastTransitionTime")),
                        "1970-01-12T13:46:40Z");
    assert_int_equal(json_integer_value(json_object_get(r, "observedGeneration")), 2);
    c.message = "other";
    assert_int_equal(eng_status_set_condition(s, &c, 2000000000, NULL), 0);
    r = eng_status_condition(s, "Ready");
    assert_string_equal(json_string_value(json_object_get(r, "lastTransitionTime")),
                        "1970-01-24T03:33:20Z");
    assert_int_equal(json_array_size(json_object_get(s, "conditions")), 1);
    json_decref(s);
}

static void conditions_are_sorted_stalled_reconciling_ready_then_others(void **state)
{
    (void)state;
    json_t *s = eng_status_new();
    const char *types[] = {"ArtifactInStorage", "Ready", "FetchFailed", "Reconciling", "Stalled"};
    for (size_t i = 0; i < 5; i++) {
        eng_condition c = {types[i], "True", "R", "m", 1};
        assert_int_equal(eng_status_set_condition(s, &c, 0, NULL), 0);
    }
    const char *want[] = {"Stalled", "Reconciling", "Ready", "ArtifactInStorage", "FetchFailed"};
    json_t *conds = json_object_get(s, "conditions");
    assert_int_equal(json_array_size(conds), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(conds, i), "type")),
                            want[i]);
    eng_status_remove_condition(s, "Reconciling");
    assert_null(eng_status_condition(s, "Reconciling"));
    assert_int_equal(json_array_size(conds), 4);
    json_decref(s);
}

static void condition_message_is_trimmed_on_a_character_boundary(void **state)
{
    (void)state;
    size_t n = ENG_CONDITION_MESSAGE_MAX + 100;
    char *msg = core_malloc(n + 1);
    /* two-byte characters, so a plain cut would split one */
    for (size_t i = 0; i + 1 < n; i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);
    msg[n - (n % 2)] = '\0';
    json_t *s = eng_status_new();
    eng_condition c = {"Ready", "False", "BuildFailed", msg, 1};
    assert_int_equal(eng_status_set_condition(s, &c, 0, NULL), 0);
    const char *got =
        json_string_value(json_object_get(eng_status_condition(s, "Ready"), "message"));
    assert_true(strlen(got) <= ENG_CONDITION_MESSAGE_MAX);
    assert_true(core_str_has_suffix(got, "..."));
    json_decref(s);
    core_free(msg);
}

static void artifact_is_written_in_flux_shape(void **state)
{
    (void)state;
    json_t *s = eng_status_new();
    eng_artifact_info a = {"latest@sha256:ab", "sha256:cd", 1234, 1700000000000, NULL, NULL};
    assert_int_equal(eng_status_set_artifact(s, &a, NULL), 0);
    json_t *art = json_object_get(s, "artifact");
    assert_string_equal(json_string_value(json_object_get(art, "revision")), "latest@sha256:ab");
    assert_string_equal(json_string_value(json_object_get(art, "digest")), "sha256:cd");
    assert_int_equal(json_integer_value(json_object_get(art, "size")), 1234);
    assert_string_equal(json_string_value(json_object_get(art, "lastUpdateTime")),
                        "2023-11-14T22:13:20Z");
    assert_null(json_object_get(art, "url"));
    json_decref(s);
}

static void status_inventory_has_flux_shape_without_digests(void **state)
{
    (void)state;
    json_t *s = eng_status_new();
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_inventory_add(&inv, "default_podinfo_apps_Deployment", "v1", "sha256:aa", NULL);
    eng_inventory_add(&inv, "default_podinfo__Service", "v1", NULL, NULL);
    assert_int_equal(eng_status_set_inventory(s, &inv, NULL), 0);
    json_t *want = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "entries", "id",
                             "default_podinfo_apps_Deployment", "v", "v1", "id",
                             "default_podinfo__Service", "v", "v1");
    assert_true(json_equal(json_object_get(s, "inventory"), want));
    json_decref(want);
    eng_inventory_dispose(&inv);
    json_decref(s);
}

/* ---- events ---- */

static void state_events_are_appended_as_json_lines(void **state)
{
    const char *dir = *state;
    eng_state *st = open_state(dir, NULL);
    json_t *meta = json_pack("{s:s}", "kustomize.toolkit.fluxcd.io/revision", "v1@sha256:ab");
    for (int i = 0; i < 3; i++) {
        eng_event ev = {1700000000000 + i * 1000,
                        i == 2 ? "error" : "info",
                        NULL,
                        "Kustomization",
                        "apps",
                        "web",
                        "ReconciliationSucceeded",
                        "Applied revision",
                        meta};
        assert_int_equal(eng_state_event_append(st, &ev, NULL), 0);
    }
    char *file = path_in(dir, "events.jsonl");
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, file, 0, NULL), 0);
    int lines = 0;
    for (char *line = b.ptr, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1, lines++) {
        json_t *ev = json_loadb(line, (size_t)(nl - line), 0, NULL);
        assert_non_null(ev);
        json_t *io = json_object_get(ev, "involvedObject");
        assert_string_equal(json_string_value(json_object_get(io, "kind")), "Kustomization");
        assert_string_equal(json_string_value(json_object_get(io, "name")), "web");
        assert_string_equal(json_string_value(json_object_get(ev, "reason")),
                            "ReconciliationSucceeded");
        assert_string_equal(json_string_value(json_object_get(ev, "severity")),
                            lines == 2 ? "error" : "info");
        assert_non_null(json_object_get(json_object_get(ev, "metadata"),
                                        "kustomize.toolkit.fluxcd.io/revision"));
        if (lines == 1)
            assert_string_equal(json_string_value(json_object_get(ev, "timestamp")),
                                "2023-11-14T22:13:21Z");
        json_decref(ev);
    }
    assert_int_equal(lines, 3);
    assert_int_equal(file_mode(file), 0600);
    berth_buf_dispose(&b);
    core_free(file);
    json_decref(meta);
    eng_state_free(st);
}

static void state_events_rotate_at_the_size_limit(void **state)
{
    const char *dir = *state;
    eng_state_opts opts = ENG_STATE_OPTS_INIT;
    opts.events_max_bytes = 400;
    opts.events_keep = 2;
    eng_state *st = open_state(dir, &opts);
    for (int i = 0; i < 20; i++) {
        eng_event ev = {0,
                        "info",
                        NULL,
                        "OCIRepository",
                        "apps",
                        "web",
                        "NewArtifact",
                        "stored artifact with revision 'latest@sha256:0123456789'",
                        NULL};
        assert_int_equal(eng_state_event_append(st, &ev, NULL), 0);
    }
    char *cur = path_in(dir, "events.jsonl"), *one = path_in(dir, "events.jsonl.1"),
         *two = path_in(dir, "events.jsonl.2"), *three = path_in(dir, "events.jsonl.3");
    struct stat sb;
    assert_int_equal(stat(cur, &sb), 0);
    assert_true(sb.st_size > 0 && sb.st_size <= 400);
    assert_int_equal(stat(one, &sb), 0);
    assert_true(sb.st_size <= 400);
    assert_true(core_fs_exists(two));
    assert_false(core_fs_exists(three));
    core_free(cur);
    core_free(one);
    core_free(two);
    core_free(three);
    eng_state_free(st);
}

static void state_event_without_reason_is_refused(void **state)
{
    eng_state *st = open_state(*state, NULL);
    eng_event ev = {0, "info", NULL, "Kustomization", "apps", "web", NULL, "m", NULL};
    berth_error *err = NULL;
    assert_int_equal(eng_state_event_append(st, &ev, &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "reason");
    berth_error_free(err);
    eng_state_free(st);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        DIR_TEST(state_status_survives_a_restart),
        DIR_TEST(state_status_absent_reads_as_null),
        DIR_TEST(state_writes_are_atomic_and_owner_only),
        DIR_TEST(state_corrupt_status_is_an_error_naming_the_file),
        DIR_TEST(state_second_open_is_refused_naming_the_directory),
        DIR_TEST(state_refuses_names_that_leave_the_directory),
        DIR_TEST(state_artifact_dir_is_created_owner_only),
        DIR_TEST(state_inventory_is_written_sorted_and_read_back),
        DIR_TEST(inventory_records_prune_on_removal_and_reads_old_files_as_unknown),
        DIR_TEST(inventory_records_its_cluster_and_keeps_the_kubeconfig_beside_it),
        cmocka_unit_test(inventory_add_replaces_the_same_id),
        cmocka_unit_test(inventory_diff_ignores_versions),
        cmocka_unit_test(objid_round_trips_flux_ids),
        cmocka_unit_test(objid_parse_refuses_malformed_ids),
        cmocka_unit_test(object_id_refuses_objects_without_kind_or_name),
        cmocka_unit_test(condition_transition_time_changes_only_with_the_condition),
        cmocka_unit_test(conditions_are_sorted_stalled_reconciling_ready_then_others),
        cmocka_unit_test(condition_message_is_trimmed_on_a_character_boundary),
        cmocka_unit_test(artifact_is_written_in_flux_shape),
        cmocka_unit_test(status_inventory_has_flux_shape_without_digests),
        DIR_TEST(state_events_are_appended_as_json_lines),
        DIR_TEST(state_events_rotate_at_the_size_limit),
        DIR_TEST(state_event_without_reason_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
