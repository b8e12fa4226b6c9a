/* Unit tests for engine/bootstrap.c: the sync objects, the host files and the staged tree. */
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

#include <berth/bootstrap.h>

#include "core/core.h"
#include "engine/build.h"
#include "engine/config.h"

static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEabcdefghijklmnopqrstuvwxyzAB\n"
                              "CDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz==\n"
                              "-----END PUBLIC KEY-----\n";

static berth_bootstrap_opts opts_with_key(void)
{
    berth_bootstrap_opts o = BERTH_BOOTSTRAP_OPTS_INIT;
    o.url = "oci://127.0.0.1:5000/fleet";
    o.tag = "prod";
    o.pubkey_pem = pub_pem;
    o.pubkey_len = strlen(pub_pem);
    o.berth_bin = "/usr/local/bin/berth";
    return o;
}

static char *tmpdir(void)
{
    char *dir = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-boot-test-", NULL), 0);
    return dir;
}

static char *slurp(const char *dir, const char *rel)
{
    berth_buf b = BERTH_BUF_INIT;
    char *p = core_sprintf("%s/%s", dir, rel);
    assert_int_equal(core_fs_read_file(&b, p, 0, NULL), 0);
    core_free(p);
    return berth_buf_detach(&b);
}

static void sync_objects_load_as_flux_kinds(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_buf b = BERTH_BUF_INIT;
    eng_config *cfg = NULL;
    (void)state;
    assert_int_equal(berth_bootstrap_key_yaml(&b, &o, NULL), 0);
    assert_int_equal(berth_buf_puts(&b, "---\n"), 0);
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, NULL), 0);
    assert_int_equal(eng_config_parse(&cfg, b.ptr, b.len, "sync.yaml", NULL), 0);
    assert_int_equal(cfg->errors_len, 0);
    assert_int_equal(cfg->ocirepos_len, 1);
    assert_int_equal(cfg->kustomizations_len, 1);
    const eng_ocirepo *r = eng_config_find_ocirepo(cfg, "berth-system", "berth-system");
    assert_non_null(r);
    assert_string_equal(r->url, "oci://127.0.0.1:5000/fleet");
    assert_string_equal(r->ref_tag, "prod");
    assert_non_null(r->verify);
    assert_string_equal(r->verify->secret_ref, "berth-system-verify");
    assert_false(r->insecure);
    const eng_secret *s = eng_config_find_secret(cfg, "berth-system", "berth-system-verify");
    assert_non_null(s);
    const eng_kv *kv = eng_kv_find(s->data, s->data_len, "cosign.pub");
    assert_non_null(kv);
    assert_int_equal(kv->len, strlen(pub_pem));
    assert_memory_equal(kv->value, pub_pem, kv->len);
    const eng_kustomization *k = eng_config_find_kustomization(cfg, "berth-system", "berth-system");
    assert_non_null(k);
    assert_string_equal(k->path, "./");
    eng_config_free(cfg);
    berth_buf_dispose(&b);
}

static void sync_without_key_has_no_verify_and_numeric_tag_stays_a_string(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_buf b = BERTH_BUF_INIT;
    eng_config *cfg = NULL;
    (void)state;
    o.pubkey_pem = NULL;
    o.pubkey_len = 0;
    o.tag = "1.10";
    o.insecure = true;
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, NULL), 0);
    assert_int_equal(eng_config_parse(&cfg, b.ptr, b.len, "sync.yaml", NULL), 0);
    assert_int_equal(cfg->errors_len, 0);
    assert_null(cfg->ocirepos[0].verify);
    assert_string_equal(cfg->ocirepos[0].ref_tag, "1.10");
    assert_true(cfg->ocirepos[0].insecure);
    eng_config_free(cfg);
    berth_buf_dispose(&b);
}

/* deploy/host/sync.yaml is what bootstrap writes for oci://registry.local:5000/fleet:prod */
static void shipped_default_config_matches_the_generator(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_buf b = BERTH_BUF_INIT;
    const char *td = getenv("BERTH_TESTDATA");
    (void)state;
    o.url = "oci://registry.local:5000/fleet";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, NULL), 0);
    char *dir = core_sprintf("%s/../deploy/host", td ? td : "testdata");
    char *shipped = slurp(dir, "sync.yaml");
    assert_string_equal(shipped, b.ptr);
    free(shipped);
    core_free(dir);
    berth_buf_dispose(&b);
}

static void bad_options_are_refused(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_buf b = BERTH_BUF_INIT;
    berth_error *err = NULL;
    (void)state;
    o.url = "https://reg/fleet";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "oci://"));
    berth_error_free(err);
    err = NULL;
    o = opts_with_key();
    o.url = "oci://reg/fleet\"\n  evil: true";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, NULL), BERTH_EINVAL);
    o = opts_with_key();
    o.tag = "bad tag";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, NULL), BERTH_EINVAL);
    o = opts_with_key();
    o.interval = "soon";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &o, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "interval"));
    berth_error_free(err);
    o = opts_with_key();
    o.pubkey_pem = "not a key\n";
    o.pubkey_len = strlen(o.pubkey_pem);
    assert_int_equal(berth_bootstrap_key_yaml(&b, &o, NULL), BERTH_EINVAL);
    berth_buf_dispose(&b);
}

static void host_install_is_idempotent_and_reports_each_file(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_bootstrap_file *f = NULL;
    size_t n = 0;
    char *root = tmpdir();
    struct stat st;
    (void)state;

    /* dry run: reports, writes nothing */
    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, true, NULL), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f[i].state, BERTH_BOOTSTRAP_CREATED);
    berth_bootstrap_files_free(f, n);
    char *etc = core_sprintf("%s/etc", root);
    assert_false(core_fs_exists(etc));

    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, NULL), 0);
    assert_int_equal(n, 3);
    assert_non_null(strstr(f[0].path, "/etc/berth/sync.yaml"));
    assert_non_null(strstr(f[1].path, "/etc/berth/verify-key.yaml"));
    assert_non_null(strstr(f[2].path, "/etc/systemd/system/berth.service"));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i].state, BERTH_BOOTSTRAP_CREATED);
        assert_int_equal(stat(f[i].path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
    }
    berth_bootstrap_files_free(f, n);
    char *unit = slurp(root, "etc/systemd/system/berth.service");
    assert_non_null(strstr(unit, "\nExecStart=/usr/local/bin/berth run --config=/etc/berth "
                                 "--state-dir=/var/lib/berth\n"));
    assert_null(strstr(unit, "@BERTH_BIN@"));
    assert_non_null(strstr(unit, "\nProtectSystem=strict\n"));
    assert_non_null(strstr(unit, "\nStateDirectory=berth\n"));
    free(unit);

    /* again: nothing to do */
    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f[i].state, BERTH_BOOTSTRAP_UNCHANGED);
    berth_bootstrap_files_free(f, n);

    /* a file edited by hand and a changed mode are put back */
    char *sync = core_sprintf("%s/etc/berth/sync.yaml", root);
    assert_int_equal(core_fs_write_atomic(sync, "x\n", 2, 0644, NULL), 0);
    char *unit_path = core_sprintf("%s/etc/systemd/system/berth.service", root);
    assert_int_equal(chmod(unit_path, 0600), 0);
    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, NULL), 0);
    assert_int_equal(f[0].state, BERTH_BOOTSTRAP_UPDATED);
    assert_int_equal(f[1].state, BERTH_BOOTSTRAP_UNCHANGED);
    assert_int_equal(f[2].state, BERTH_BOOTSTRAP_UPDATED);
    berth_bootstrap_files_free(f, n);
    assert_int_equal(stat(unit_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    /* without a key: the key file goes, sync.yaml loses verify */
    o.pubkey_pem = NULL;
    o.pubkey_len = 0;
    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(f[0].state, BERTH_BOOTSTRAP_UPDATED);
    assert_int_equal(f[1].state, BERTH_BOOTSTRAP_REMOVED);
    berth_bootstrap_files_free(f, n);
    assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, NULL), 0);
    assert_int_equal(n, 2); /* an absent key file is not listed */
    berth_bootstrap_files_free(f, n);

    /* uninstall: removed, then absent; a foreign file in etc/berth keeps the directory */
    char *foreign = core_sprintf("%s/etc/berth/mine.yaml", root);
    assert_int_equal(core_fs_write_atomic(foreign, "a: 1\n", 5, 0644, NULL), 0);
    assert_int_equal(berth_bootstrap_host_uninstall(&f, &n, root, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(f[0].state, BERTH_BOOTSTRAP_REMOVED);
    assert_int_equal(f[1].state, BERTH_BOOTSTRAP_REMOVED);
    assert_int_equal(f[2].state, BERTH_BOOTSTRAP_ABSENT);
    berth_bootstrap_files_free(f, n);
    assert_true(core_fs_exists(foreign));
    assert_false(core_fs_exists(sync));

    core_free(foreign);
    core_free(sync);
    core_free(unit_path);
    core_free(etc);
    assert_int_equal(core_fs_remove_all(root, NULL), 0);
    core_free(root);
}

static void host_install_refuses_a_missing_root_and_unsafe_binary_paths(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    berth_bootstrap_file *f = NULL;
    berth_error *err = NULL;
    size_t n = 0;
    char *root = tmpdir();
    (void)state;
    assert_int_equal(
        berth_bootstrap_host_install(&f, &n, "/nonexistent/berth-root", &o, false, &err),
        BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), "/nonexistent/berth-root"));
    berth_error_free(err);
    err = NULL;
    static const char *const bad[] = {"berth", "/usr/bin/be rth", "/opt/%n/berth", "/x;rm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.berth_bin = bad[i];
        assert_int_equal(berth_bootstrap_host_install(&f, &n, root, &o, false, &err), BERTH_EINVAL);
        assert_non_null(strstr(berth_error_message(err), "absolute path"));
        berth_error_free(err);
        err = NULL;
    }
    char *etc = core_sprintf("%s/etc/berth/sync.yaml", root);
    /* the unit is rendered before anything is written */
    assert_false(core_fs_exists(etc));
    core_free(etc);
    assert_int_equal(core_fs_remove_all(root, NULL), 0);
    core_free(root);
}

static void stage_copies_dir_and_adds_berth_system(void **state)
{
    berth_bootstrap_opts o = opts_with_key();
    char *src = tmpdir(), *stage = NULL;
    (void)state;
    char *sub = core_sprintf("%s/apps", src);
    assert_int_equal(mkdir(sub, 0755), 0);
    char *f1 = core_sprintf("%s/apps/a.yaml", src);
    assert_int_equal(core_fs_write_atomic(f1, "kind: A\n", 8, 0644, NULL), 0);
    char *link = core_sprintf("%s/link.yaml", src);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    char *own = core_sprintf("%s/berth-system", src);
    assert_int_equal(mkdir(own, 0755), 0);
    char *stale = core_sprintf("%s/berth-system/sync.yaml", src);
    assert_int_equal(core_fs_write_atomic(stale, "stale\n", 6, 0644, NULL), 0);

    assert_int_equal(berth_bootstrap_stage(&stage, src, "/tmp", &o, NULL), 0);
    char *a = slurp(stage, "apps/a.yaml");
    assert_string_equal(a, "kind: A\n");
    free(a);
    char *lk = core_sprintf("%s/link.yaml", stage);
    assert_false(core_fs_exists(lk)); /* symlinks are not followed nor copied */
    char *k = slurp(stage, "berth-system/kustomization.yaml");
    assert_non_null(strstr(k, "- sync.yaml\n  - verify-key.yaml\n"));
    free(k);
    char *s = slurp(stage, "berth-system/sync.yaml");
    assert_non_null(strstr(s, "kind: OCIRepository"));
    free(s);
    char *v = slurp(stage, "berth-system/verify-key.yaml");
    assert_non_null(strstr(v, "kind: Secret"));
    free(v);
    char *src_sync = slurp(src, "berth-system/sync.yaml");
    assert_string_equal(src_sync, "stale\n"); /* the source tree is not touched */
    free(src_sync);
    char *stage_copy = core_strdup(stage);
    berth_bootstrap_unstage(stage);
    assert_false(core_fs_exists(stage_copy));
    core_free(stage_copy);

    berth_error *err = NULL;
    char *missing = core_sprintf("%s/nope", src);
    assert_int_equal(berth_bootstrap_stage(&stage, missing, "/tmp", &o, &err), BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), missing));
    assert_null(stage);
    berth_error_free(err);

    core_free(missing);
    core_free(lk);
    core_free(stale);
    core_free(own);
    core_free(link);
    core_free(f1);
    core_free(sub);
    assert_int_equal(core_fs_remove_all(src, NULL), 0);
    core_free(src);
}

/* The deployed object of kind/name in a built list, or NULL. */
static const json_t *find_obj(const json_t *objs, const char *kind, const char *name)
{
    size_t i;
    const json_t *o;
    json_array_foreach(objs, i, o)
    {
        const json_t *md = json_object_get(o, "metadata");
        if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(md, "name")), name) == 0)
            return o;
    }
    return NULL;
}

static const char *annotation(const json_t *o, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(o, "metadata"), "annotations"), key));
}

/* Build a kube stage with image and return the berth Deployment's image (heap). */
static char *staged_image(const char *src, const char *image, json_t **objs_out)
{
    berth_bootstrap_opts o = opts_with_key();
    char *stage = NULL, *out;
    json_t *objs = NULL;
    o.kube = true;
    o.image = image;
    assert_int_equal(berth_bootstrap_stage(&stage, src, "/tmp", &o, NULL), 0);
    assert_int_equal(eng_build(&objs, stage, ".", NULL, NULL), 0);
    const json_t *dep = find_obj(objs, "Deployment", "berth");
    assert_non_null(dep);
    out = core_strdup(json_string_value(json_object_get(
        json_array_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec"),
                "containers"),
            0),
        "image")));
    berth_bootstrap_unstage(stage);
    if (objs_out)
        *objs_out = objs;
    else
        json_decref(objs);
    return out;
}

static void stage_for_a_cluster_adds_deploy_and_sets_the_image(void **state)
{
    char *src = tmpdir();
    json_t *objs = NULL;
    (void)state;

    /* NAME:TAG with a registry port, a digest, the default */
    char *img = staged_image(src, "reg.example:5000/team/berth:1.2.3", &objs);
    assert_string_equal(img, "reg.example:5000/team/berth:1.2.3");
    core_free(img);
    img = staged_image(src,
                       "berth@sha256:0123456789abcdef0123456789abcdef0123456789abcdef012345678"
                       "9abcdef",
                       NULL);
    assert_string_equal(img, "berth@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456"
                             "789abcdef");
    core_free(img);
    img = staged_image(src, NULL, NULL);
    assert_string_equal(img, BERTH_BOOTSTRAP_IMAGE);
    core_free(img);

    /* deploy/ whole: 5 CRDs, the Namespace, RBAC, the Deployment; plus the sync objects */
    size_t crds = 0, i;
    const json_t *o;
    json_array_foreach(objs, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "kind")), "CustomResourceDefinition") ==
            0) {
            crds++;
            assert_string_equal(annotation(o, "kustomize.toolkit.fluxcd.io/prune"), "disabled");
        }
    }
    assert_int_equal(crds, 5);
    assert_string_equal(annotation(find_obj(objs, "Namespace", "berth-system"),
                                   "kustomize.toolkit.fluxcd.io/prune"),
                        "disabled");
    assert_null(
        annotation(find_obj(objs, "Deployment", "berth"), "kustomize.toolkit.fluxcd.io/prune"));
    assert_non_null(find_obj(objs, "ClusterRole", "berth-apply"));
    assert_non_null(find_obj(objs, "OCIRepository", "berth-system"));
    assert_non_null(find_obj(objs, "Kustomization", "berth-system"));
    assert_non_null(find_obj(objs, "Secret", "berth-system-verify"));
    json_decref(objs);

    /* install/ is deploy/ byte for byte */
    berth_bootstrap_opts bo = opts_with_key();
    char *stage = NULL;
    bo.kube = true;
    assert_int_equal(berth_bootstrap_stage(&stage, src, "/tmp", &bo, NULL), 0);
    const char *td = getenv("BERTH_TESTDATA");
    assert_non_null(td);
    char *deploy = core_sprintf("%s/../deploy", td);
    static const char *const files[] = {"deployment.yaml", "rbac.yaml", "kustomization.yaml",
                                        "crds/source.toolkit.fluxcd.io_ocirepositories.yaml"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *rel = core_sprintf("berth-system/install/%s", files[f]);
        char *got = slurp(stage, rel), *want = slurp(deploy, files[f]);
        assert_string_equal(got, want);
        free(got);
        free(want);
        core_free(rel);
    }
    berth_bootstrap_unstage(stage);
    core_free(deploy);

    /* a bad image is refused by the option check */
    berth_error *err = NULL;
    berth_buf b = BERTH_BUF_INIT;
    bo.image = "berth:";
    assert_int_equal(berth_bootstrap_sync_yaml(&b, &bo, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "--image \"berth:\""));
    berth_error_free(err);
    berth_buf_dispose(&b);
    assert_int_equal(core_fs_remove_all(src, NULL), 0);
    core_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_objects_load_as_flux_kinds),
        cmocka_unit_test(sync_without_key_has_no_verify_and_numeric_tag_stays_a_string),
        cmocka_unit_test(shipped_default_config_matches_the_generator),
        cmocka_unit_test(bad_options_are_refused),
        cmocka_unit_test(host_install_is_idempotent_and_reports_each_file),
        cmocka_unit_test(host_install_refuses_a_missing_root_and_unsafe_binary_paths),
        cmocka_unit_test(stage_copies_dir_and_adds_berth_system),
        cmocka_unit_test(stage_for_a_cluster_adds_deploy_and_sets_the_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
