/* Unit tests for engine/target_dir.c (and target.c): the directory target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/config.h"
#include "engine/target.h"

#define CM_PATH "apps/core_ConfigMap_cm.yaml"
#define WEB_PATH "apps/apps_Deployment_web.yaml"
#define ROLE_PATH "_cluster/rbac.authorization.k8s.io_ClusterRole_system%3Aview.yaml"

typedef struct fx {
    char *dir;
    eng_target *t;
} fx;

static int setup(void **state)
{
    fx *f = core_calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    char *base = NULL;
    assert_int_equal(core_fs_mkdtemp(&base, tmp ? tmp : "/tmp", "berth-dir-", NULL), 0);
    f->dir = core_sprintf("%s/out", base); /* the target creates it */
    core_free(base);
    assert_int_equal(eng_target_dir_new(&f->t, f->dir, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char *base = core_strndup(f->dir, strlen(f->dir) - 4);
    eng_target_free(f->t);
    core_fs_remove_all(base, NULL);
    core_free(base);
    core_free(f->dir);
    core_free(f);
    return 0;
}

static void assert_contains(const char *s, const char *needle)
{
    if (!s || !strstr(s, needle))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", needle);
}

static char *in(const fx *f, const char *rel)
{
    char *p = core_sprintf("%s/%s", f->dir, rel);
    assert_non_null(p);
    return p;
}

static char *slurp(const fx *f, const char *rel)
{
    berth_buf b = BERTH_BUF_INIT;
    char *p = in(f, rel);
    assert_int_equal(core_fs_read_file(&b, p, 0, NULL), 0);
    core_free(p);
    return berth_buf_detach(&b);
}

static void put(const fx *f, const char *rel, const char *text)
{
    char *p = in(f, rel);
    char *dir = core_strndup(p, (size_t)(strrchr(p, '/') - p));
    assert_int_equal(core_fs_mkdirs(dir, 0755, NULL), 0);
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), 0644, NULL), 0);
    core_free(dir);
    core_free(p);
}

static bool exists(const fx *f, const char *rel)
{
    char *p = in(f, rel);
    bool e = core_fs_exists(p);
    core_free(p);
    return e;
}

static json_t *objects(int replicas)
{
    json_t *a = json_pack(
        "[{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}},"
        " {s:s, s:s, s:{s:s, s:s}, s:{s:i, s:{s:{s:s}}}},"
        " {s:s, s:s, s:{s:s}, s:[{s:[s], s:[s], s:[s]}]}]",
        "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", "cm", "namespace", "apps",
        "data", "flag", "true", "num", "123", "n", "no", "multi", "a\nb\n", "plain", "hello",
        "colon", "a: b", "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", "web",
        "namespace", "apps", "spec", "replicas", replicas, "selector", "matchLabels", "app", "web",
        "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "ClusterRole", "metadata", "name",
        "system:view", "rules", "apiGroups", "", "resources", "pods", "verbs", "get");
    assert_non_null(a);
    return a;
}

static const eng_change *change_for(const eng_plan *p, const char *subject)
{
    for (size_t i = 0; i < p->len; i++)
        if (strcmp(p->changes[i].subject, subject) == 0)
            return &p->changes[i];
    fail_msg("no change for %s", subject);
    return NULL;
}

/* plan + apply; *inv is replaced by the new inventory. */
static void sync_objects(fx *f, const json_t *objs, eng_inventory *inv, eng_plan *plan_out)
{
    eng_plan plan;
    eng_inventory next;
    berth_error *err = NULL;
    if (eng_target_plan(f->t, &plan, objs, inv, &err) != 0)
        fail_msg("plan: %s", berth_error_message(err));
    if (eng_target_apply(f->t, &next, &plan, &err) != 0)
        fail_msg("apply: %s", berth_error_message(err));
    eng_inventory_dispose(inv);
    *inv = next;
    if (plan_out)
        *plan_out = plan;
    else
        eng_plan_dispose(&plan);
}

static void file_digest(char out[72], const fx *f, const char *rel)
{
    char *text = slurp(f, rel);
    core_sha256_digest(out, text, strlen(text));
    free(text);
}

/* ---- tests ---- */

static void dir_first_apply_creates_one_file_per_object(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    char d[72];
    sync_objects(f, objs, &inv, &plan);
    assert_int_equal(plan.len, 3);
    for (size_t i = 0; i < plan.len; i++) {
        assert_int_equal(plan.changes[i].action, ENG_CHANGE_CREATE);
        assert_int_equal(plan.changes[i].drift, ENG_DRIFT_NONE);
    }
    assert_string_equal(plan.changes[2].subject, "ClusterRole/system:view");
    assert_true(exists(f, CM_PATH) && exists(f, WEB_PATH) && exists(f, ROLE_PATH));
    assert_int_equal(inv.len, 3);
    assert_string_equal(inv.entries[0].id, "apps_cm__ConfigMap");
    assert_string_equal(inv.entries[1].version, "v1");
    file_digest(d, f, WEB_PATH);
    assert_string_equal(eng_inventory_find(&inv, "apps_web_apps_Deployment")->digest, d);
    file_digest(d, f, ROLE_PATH);
    assert_string_equal(
        eng_inventory_find(&inv, "_system__view_rbac.authorization.k8s.io_ClusterRole")->digest, d);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_yaml_keeps_string_types_and_reads_back(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_config *cfg = NULL;
    sync_objects(f, objs, &inv, NULL);
    char *cm = slurp(f, CM_PATH), *web = slurp(f, WEB_PATH);
    assert_contains(cm, "flag: \"true\"\n");
    assert_contains(cm, "num: \"123\"\n");
    assert_contains(cm, "\"n\": \"no\"\n"); /* YAML 1.1 booleans, keys too */
    assert_contains(cm, "multi: |\n    a\n    b\n");
    assert_contains(cm, "plain: hello\n");
    assert_contains(web, "replicas: 2\n");
    /* the ConfigMap file is itself valid config: read it with the config loader */
    assert_int_equal(eng_config_parse(&cfg, cm, strlen(cm), CM_PATH, NULL), 0);
    assert_int_equal(cfg->errors_len, 0);
    const eng_configmap *m = eng_config_find_configmap(cfg, "apps", "cm");
    assert_non_null(m);
    assert_string_equal(eng_kv_find(m->data, m->data_len, "multi")->value, "a\nb\n");
    assert_string_equal(eng_kv_find(m->data, m->data_len, "colon")->value, "a: b");
    assert_string_equal(eng_kv_find(m->data, m->data_len, "flag")->value, "true");
    eng_config_free(cfg);
    free(cm);
    free(web);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_second_plan_is_unchanged_and_writes_nothing(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    struct stat before, after;
    char *web = in(f, WEB_PATH);
    sync_objects(f, objs, &inv, NULL);
    assert_int_equal(stat(web, &before), 0);
    sync_objects(f, objs, &inv, &plan);
    assert_false(eng_plan_has_changes(&plan));
    assert_int_equal(eng_plan_drift_count(&plan), 0);
    assert_int_equal(inv.len, 3);
    assert_int_equal(stat(web, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* not even rewritten */
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    core_free(web);
    json_decref(objs);
}

static void dir_changed_object_is_configured(void **state)
{
    fx *f = *state;
    json_t *v2 = objects(2), *v3 = objects(3);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    char d[72];
    sync_objects(f, v2, &inv, NULL);
    sync_objects(f, v3, &inv, &plan);
    assert_int_equal(change_for(&plan, "Deployment/apps/web")->action, ENG_CHANGE_UPDATE);
    assert_int_equal(change_for(&plan, "Deployment/apps/web")->drift, ENG_DRIFT_NONE);
    assert_int_equal(change_for(&plan, "ConfigMap/apps/cm")->action, ENG_CHANGE_UNCHANGED);
    char *web = slurp(f, WEB_PATH);
    assert_contains(web, "replicas: 3\n");
    file_digest(d, f, WEB_PATH);
    assert_string_equal(eng_inventory_find(&inv, "apps_web_apps_Deployment")->digest, d);
    free(web);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    json_decref(v2);
    json_decref(v3);
}

static void dir_prune_removes_only_owned_files(void **state)
{
    fx *f = *state;
    json_t *all = objects(2), *fewer = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT, old = ENG_INVENTORY_INIT, stale;
    eng_plan plan, pruned;
    sync_objects(f, all, &inv, NULL);
    put(f, "apps/notes.txt", "mine\n");
    put(f, "apps/core_ConfigMap_other.yaml", "not in the inventory\n");
    put(f, "elsewhere/x.yaml", "foreign\n");
    assert_int_equal(json_array_remove(fewer, 2), 0); /* the ClusterRole */
    assert_int_equal(json_array_remove(fewer, 0), 0); /* the ConfigMap */
    for (size_t i = 0; i < inv.len; i++)
        eng_inventory_add(&old, inv.entries[i].id, inv.entries[i].version, inv.entries[i].digest,
                          NULL);
    sync_objects(f, fewer, &inv, &plan);
    assert_int_equal(change_for(&plan, "ClusterRole/system:view")->action, ENG_CHANGE_DELETE);
    assert_int_equal(change_for(&plan, "ConfigMap/apps/cm")->action, ENG_CHANGE_DELETE);
    assert_true(exists(f, ROLE_PATH)); /* apply leaves deletes to prune */
    assert_int_equal(inv.len, 1);
    assert_int_equal(eng_inventory_diff(&stale, &old, &inv, NULL), 0);
    assert_int_equal(stale.len, 2);
    assert_int_equal(eng_target_prune(f->t, &pruned, &stale, NULL), 0);
    assert_int_equal(pruned.len, 2);
    assert_int_equal(pruned.changes[0].action, ENG_CHANGE_DELETE);
    assert_false(exists(f, ROLE_PATH));
    assert_false(exists(f, "_cluster")); /* emptied namespace directory goes too */
    assert_false(exists(f, CM_PATH));
    assert_true(exists(f, WEB_PATH));
    assert_true(exists(f, "apps/notes.txt"));
    assert_true(exists(f, "apps/core_ConfigMap_other.yaml"));
    assert_true(exists(f, "elsewhere/x.yaml"));
    berth_buf text = BERTH_BUF_INIT;
    assert_int_equal(eng_plan_render(&text, &pruned), 0);
    assert_contains(text.ptr, "ClusterRole/system:view deleted\n");
    berth_buf_dispose(&text);
    eng_plan_dispose(&pruned);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&stale);
    eng_inventory_dispose(&old);
    eng_inventory_dispose(&inv);
    json_decref(all);
    json_decref(fewer);
}

static void dir_edited_file_is_drift_and_apply_restores_it(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    sync_objects(f, objs, &inv, NULL);
    char *original = slurp(f, CM_PATH);
    put(f, CM_PATH, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {hacked: x}\n");
    sync_objects(f, objs, &inv, &plan);
    const eng_change *c = change_for(&plan, "ConfigMap/apps/cm");
    assert_int_equal(c->action, ENG_CHANGE_UPDATE);
    assert_int_equal(c->drift, ENG_DRIFT_MODIFIED);
    assert_int_equal(eng_plan_drift_count(&plan), 1);
    char *restored = slurp(f, CM_PATH);
    assert_string_equal(restored, original);
    free(original);
    free(restored);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_deleted_file_is_drift_and_apply_restores_it(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    char *web = in(f, WEB_PATH);
    sync_objects(f, objs, &inv, NULL);
    assert_int_equal(unlink(web), 0);
    sync_objects(f, objs, &inv, &plan);
    const eng_change *c = change_for(&plan, "Deployment/apps/web");
    assert_int_equal(c->action, ENG_CHANGE_CREATE);
    assert_int_equal(c->drift, ENG_DRIFT_MISSING);
    assert_true(core_fs_exists(web));
    core_free(web);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_refuses_objects_without_kind_or_name(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_plan plan;
    berth_error *err = NULL;
    json_array_append_new(
        objs, json_pack("{s:s, s:{s:s}}", "apiVersion", "v1", "metadata", "name", "orphan"));
    assert_int_equal(eng_target_plan(f->t, &plan, objs, NULL, &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err), "object 3 (name \"orphan\") has no kind");
    assert_int_equal(plan.len, 0);
    assert_false(exists(f, CM_PATH)); /* nothing written */
    berth_error_free(err);
    err = NULL;
    json_array_remove(objs, 3);
    json_array_append_new(
        objs, json_pack("{s:s, s:s, s:{}}", "apiVersion", "v1", "kind", "Secret", "metadata"));
    assert_int_equal(eng_target_plan(f->t, &plan, objs, NULL, &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err),
                        "object 3 (kind \"Secret\") has no metadata.name");
    berth_error_free(err);
    json_decref(objs);
}

static void dir_refuses_the_same_object_twice(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_plan plan;
    berth_error *err = NULL;
    json_array_append(objs, json_array_get(objs, 1));
    assert_int_equal(eng_target_plan(f->t, &plan, objs, NULL, &err), BERTH_EINVAL);
    assert_contains(berth_error_message(err), "Deployment/apps/web) appears twice");
    berth_error_free(err);
    json_decref(objs);
}

static void dir_file_names_are_encoded_and_stay_inside(void **state)
{
    fx *f = *state;
    json_t *objs = json_pack("[{s:s, s:s, s:{s:s, s:s}}]", "apiVersion", "v1", "kind", "ConfigMap",
                             "metadata", "name", "../../etc/pass_wd", "namespace", "..");
    eng_inventory inv = ENG_INVENTORY_INIT;
    char *path = NULL, *want = in(f, "%2E./core_ConfigMap_%2E.%2F..%2Fetc%2Fpass%5Fwd.yaml");
    sync_objects(f, objs, &inv, NULL);
    assert_int_equal(inv.len, 1);
    assert_int_equal(eng_target_dir_path(&path, f->dir, inv.entries[0].id, NULL), 0);
    assert_string_equal(path, want);
    assert_true(core_fs_exists(want));
    core_free(path);
    /* a group literally named "core" can not collide with the core group */
    assert_int_equal(eng_target_dir_path(&path, f->dir, "ns_x_core_Thing", NULL), 0);
    assert_contains(path, "/ns/%63ore_Thing_x.yaml");
    core_free(path);
    core_free(want);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_secrets_are_written_owner_only(void **state)
{
    fx *f = *state;
    json_t *objs =
        json_pack("[{s:s, s:s, s:{s:s, s:s}, s:{s:s}}]", "apiVersion", "v1", "kind", "Secret",
                  "metadata", "name", "s", "namespace", "apps", "data", "k", "dg==");
    eng_inventory inv = ENG_INVENTORY_INIT;
    struct stat st;
    char *p = in(f, "apps/core_Secret_s.yaml"), *cm = in(f, CM_PATH);
    sync_objects(f, objs, &inv, NULL);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_decref(objs);
    objs = objects(2);
    sync_objects(f, objs, &inv, NULL);
    assert_int_equal(stat(cm, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    core_free(p);
    core_free(cm);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_prune_failure_is_unknown_and_named(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan pruned;
    berth_error *err = NULL;
    char *role = in(f, ROLE_PATH);
    sync_objects(f, objs, &inv, NULL);
    /* a directory where the file should be: unlink fails */
    assert_int_equal(unlink(role), 0);
    assert_int_equal(mkdir(role, 0755), 0);
    assert_int_equal(eng_target_prune(f->t, &pruned, &inv, &err), BERTH_EIO);
    char *text = berth_error_text(err);
    assert_contains(text, "delete failed, errors: ");
    assert_contains(text, ROLE_PATH);
    assert_int_equal(pruned.len, 3);
    assert_int_equal(change_for(&pruned, "ClusterRole/system:view")->action, ENG_CHANGE_UNKNOWN);
    assert_int_equal(change_for(&pruned, "ConfigMap/apps/cm")->action, ENG_CHANGE_DELETE);
    assert_false(exists(f, CM_PATH));
    free(text);
    berth_error_free(err);
    core_free(role);
    eng_plan_dispose(&pruned);
    eng_inventory_dispose(&inv);
    json_decref(objs);
}

static void dir_health_is_always_healthy(void **state)
{
    fx *f = *state;
    json_t *objs = objects(2);
    eng_health h;
    assert_int_equal(eng_target_health(f->t, &h, objs, NULL), 0);
    assert_true(h.healthy);
    assert_null(h.message);
    eng_health_dispose(&h);
    json_decref(objs);
}

static void plan_render_lists_changed_objects_only(void **state)
{
    fx *f = *state;
    json_t *v2 = objects(2), *v3 = objects(3);
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    berth_buf text = BERTH_BUF_INIT;
    sync_objects(f, v2, &inv, NULL);
    assert_int_equal(eng_target_plan(f->t, &plan, v3, &inv, NULL), 0);
    assert_int_equal(eng_plan_render(&text, &plan), 0);
    assert_string_equal(text.ptr, "Deployment/apps/web configured\n");
    berth_buf_dispose(&text);
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    json_decref(v2);
    json_decref(v3);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(dir_first_apply_creates_one_file_per_object),
        T(dir_yaml_keeps_string_types_and_reads_back),
        T(dir_second_plan_is_unchanged_and_writes_nothing),
        T(dir_changed_object_is_configured),
        T(dir_prune_removes_only_owned_files),
        T(dir_edited_file_is_drift_and_apply_restores_it),
        T(dir_deleted_file_is_drift_and_apply_restores_it),
        T(dir_refuses_objects_without_kind_or_name),
        T(dir_refuses_the_same_object_twice),
        T(dir_file_names_are_encoded_and_stay_inside),
        T(dir_secrets_are_written_owner_only),
        T(dir_prune_failure_is_unknown_and_named),
        T(dir_health_is_always_healthy),
        T(plan_render_lists_changed_objects_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
