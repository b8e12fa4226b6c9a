/* Unit tests for engine/remote.c: the target of a Kustomization with spec.kubeConfig (which
 * Secret key, the errors that name the Secret, the per-thread cache) and the target kept for its
 * inventory. No request is sent: making a Kubernetes target does not contact its server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kube.h"

static const char local_kubeconfig[] =
    "current-context: l\n"
    "clusters: [{name: c, cluster: {server: https://local:6443}}]\n"
    "users: [{name: u, user: {token: t}}]\n"
    "contexts: [{name: l, context: {cluster: c, user: u}}]\n";

/* A config with a Kustomization whose kubeConfig Secret has data (YAML mapping lines). */
static eng_config *config_with(const char *ks_key, const char *secret_data)
{
    char *yaml = core_sprintf("apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
                              "kind: Kustomization\n"
                              "metadata: {name: app, namespace: apps}\n"
                              "spec:\n"
                              "  interval: 1m\n"
                              "  prune: true\n"
                              "  sourceRef: {kind: OCIRepository, name: app}\n"
                              "  kubeConfig: {secretRef: {name: kc%s%s}}\n"
                              "---\n"
                              "apiVersion: v1\n"
                              "kind: Secret\n"
                              "metadata: {name: kc, namespace: apps}\n"
                              "stringData:\n%s",
                              ks_key ? ", key: " : "", ks_key ? ks_key : "", secret_data);
    eng_config *cfg = NULL;
    assert_non_null(yaml);
    assert_int_equal(eng_config_parse(&cfg, yaml, strlen(yaml), "inline.yaml", NULL), 0);
    core_free(yaml);
    assert_int_equal(cfg->errors_len, 0);
    return cfg;
}

/* stringData lines: key holding a kubeconfig for server https://HOST:6443 */
static char *secret_line(const char *key, const char *host)
{
    return core_sprintf("  %s: |\n"
                        "    current-context: r\n"
                        "    clusters: [{name: c, cluster: {server: https://%s:6443}}]\n"
                        "    users: [{name: u, user: {token: t}}]\n"
                        "    contexts: [{name: r, context: {cluster: c, user: u}}]\n",
                        key, host);
}

typedef struct fixture {
    eng_target *local;
    eng_remotes *remotes;
    eng_ctx ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    eng_kube_config *kc = NULL;
    assert_int_equal(
        eng_kube_config_parse(&kc, local_kubeconfig, strlen(local_kubeconfig), "l", NULL, NULL), 0);
    assert_int_equal(eng_target_kube_from_config(&f->local, kc, NULL), 0);
    assert_int_equal(eng_remotes_new(&f->remotes, false, false, NULL), 0);
    f->ctx.target = f->local;
    f->ctx.remotes = f->remotes;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    eng_remotes_free(f->remotes);
    eng_target_free(f->local);
    free(f);
    return 0;
}

static int resolve(eng_ks_target *t, fixture *f, eng_config *cfg, char **msg_out)
{
    berth_error *e = NULL;
    int rc;
    f->ctx.cfg = cfg;
    rc = eng_ks_target_resolve(t, &f->ctx, &cfg->kustomizations[0], &e);
    *msg_out = rc < 0 ? berth_error_text(e) : NULL;
    berth_error_free(e);
    return rc;
}

static void remote_key_value_wins_then_value_yaml(void **state)
{
    fixture *f = *state;
    char *a = secret_line("value", "a"), *b = secret_line("value.yaml", "b");
    char *both = core_sprintf("%s%s", a, b), *msg = NULL;
    eng_config *cfg = config_with(NULL, both);
    eng_ks_target t;

    assert_int_equal(resolve(&t, f, cfg, &msg), 0);
    assert_string_equal(t.cluster, "https://a:6443");
    assert_string_equal(t.where, "kubeConfig Secret \"apps/kc\" (server https://a:6443)");
    assert_ptr_not_equal(t.target, f->local);
    assert_non_null(strstr(t.kubeconfig.ptr, "https://a:6443"));
    eng_ks_target_dispose(&t);
    eng_config_free(cfg);
    cfg = config_with(NULL, b);
    assert_int_equal(resolve(&t, f, cfg, &msg), 0);
    assert_string_equal(t.cluster, "https://b:6443");
    eng_ks_target_dispose(&t);
    eng_config_free(cfg);
    core_free(a);
    core_free(b);
    core_free(both);
}

static void remote_errors_name_the_secret(void **state)
{
    fixture *f = *state;
    char *a = secret_line("value", "a"), *msg = NULL, *tmp = NULL;
    eng_config *cfg = config_with("config", a);
    eng_target *dir = NULL;
    eng_ks_target t;

    assert_int_equal(resolve(&t, f, cfg, &msg), BERTH_EINVAL);
    assert_string_equal(msg,
                        "kubeConfig Secret \"apps/kc\" has no key \"config\" with a kubeconfig");
    free(msg);
    eng_config_free(cfg);
    cfg = config_with(NULL, "  other: x\n");
    assert_int_equal(resolve(&t, f, cfg, &msg), BERTH_EINVAL);
    assert_non_null(strstr(msg, "has no key \"value\" or \"value.yaml\""));
    free(msg);
    /* the Secret missing: no Secret of that name in the namespace */
    core_free(cfg->secrets[0].meta.name);
    assert_non_null(cfg->secrets[0].meta.name = core_strdup("zz-other"));
    assert_int_equal(resolve(&t, f, cfg, &msg), BERTH_ENOTFOUND);
    assert_string_equal(msg, "kubeConfig Secret \"apps/kc\" not found");
    free(msg);
    eng_config_free(cfg);
    /* the directory target can not apply to a cluster */
    cfg = config_with(NULL, a);
    assert_int_equal(
        core_fs_mkdtemp(&tmp, getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "berth-remote-", NULL),
        0);
    assert_int_equal(eng_target_dir_new(&dir, tmp, NULL), 0);
    f->ctx.target = dir;
    assert_int_equal(resolve(&t, f, cfg, &msg), BERTH_EINVAL);
    assert_non_null(strstr(msg, "kubeConfig Secret \"apps/kc\": spec.kubeConfig needs the "
                                "Kubernetes target"));
    free(msg);
    f->ctx.target = f->local;
    eng_target_free(dir);
    assert_int_equal(core_fs_remove_all(tmp, NULL), 0);
    core_free(tmp);
    eng_config_free(cfg);
    core_free(a);
}

static void
remote_targets_are_cached_per_kubeconfig_and_dropped_when_the_secret_changes(void **state)
{
    fixture *f = *state;
    char *a = secret_line("value", "a"), *b = secret_line("value", "b"), *msg = NULL;
    eng_config *cfg = config_with(NULL, a);
    eng_target *first;
    eng_ks_target t;

    assert_int_equal(resolve(&t, f, cfg, &msg), 0);
    first = t.target;
    eng_ks_target_dispose(&t);
    assert_int_equal(resolve(&t, f, cfg, &msg), 0);
    assert_ptr_equal(t.target, first); /* the same kubeconfig: the same client */
    eng_ks_target_dispose(&t);
    assert_int_equal(eng_remotes_count(f->remotes), 1);
    eng_config_free(cfg);
    cfg = config_with(NULL, b); /* the Secret now holds another kubeconfig */
    assert_int_equal(resolve(&t, f, cfg, &msg), 0);
    assert_string_equal(t.cluster, "https://b:6443");
    assert_int_equal(eng_remotes_count(f->remotes), 1); /* the old one was dropped */
    eng_ks_target_dispose(&t);
    eng_config_free(cfg);
    core_free(a);
    core_free(b);
}

static void remote_same_cluster_compares_servers(void **state)
{
    fixture *f = *state;
    eng_inventory old = ENG_INVENTORY_INIT;
    char a[] = "https://a:6443", l[] = "https://local:6443";
    eng_ks_target local = {.target = f->local}, remote = {.cluster = a};

    assert_true(eng_ks_target_same_cluster(&local, &old, f->local));
    assert_false(eng_ks_target_same_cluster(&remote, &old, f->local));
    old.cluster = a;
    assert_true(eng_ks_target_same_cluster(&remote, &old, f->local));
    assert_false(eng_ks_target_same_cluster(&local, &old, f->local));
    old.cluster = l; /* applied through a Secret to the local server */
    assert_true(eng_ks_target_same_cluster(&local, &old, f->local));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(remote_key_value_wins_then_value_yaml, setup, teardown),
        cmocka_unit_test_setup_teardown(remote_errors_name_the_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(
            remote_targets_are_cached_per_kubeconfig_and_dropped_when_the_secret_changes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(remote_same_cluster_compares_servers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
