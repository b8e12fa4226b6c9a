/* Unit tests for engine/kube_config.c (kubeconfig and in-cluster configuration) and the kind
 * ordering of engine/target_kube.c. */
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
#include "engine/kube.h"

/* base64 of "-----BEGIN CERTIFICATE-----\nCA\n" and of "CERT\n" / "KEY\n" */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCg=="
#define CERT_B64 "Q0VSVAo="
#define KEY_B64 "S0VZCg=="

static const char kubeconfig[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: prod\n"
    "clusters:\n"
    "- name: prod-cluster\n"
    "  cluster:\n"
    "    server: https://10.0.0.1:6443/\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "- name: dev-cluster\n"
    "  cluster:\n"
    "    server: https://dev.example:443\n"
    "    certificate-authority: certs/ca.crt\n"
    "    insecure-skip-tls-verify: true\n"
    "users:\n"
    "- name: admin\n"
    "  user:\n"
    "    token: s3cret\n"
    "    as: someone\n"
    "- name: dev\n"
    "  user:\n"
    "    client-certificate: certs/dev.crt\n"
    "    client-key: /abs/dev.key\n"
    "- name: inline\n"
    "  user:\n"
    "    client-certificate-data: " CERT_B64 "\n"
    "    client-key-data: " KEY_B64 "\n"
    "- name: plugin\n"
    "  user:\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
    "      command: get-token\n"
    "      args: [--cluster, prod]\n"
    "      env: [{name: REGION, value: eu}]\n"
    "contexts:\n"
    "- name: prod\n"
    "  context: {cluster: prod-cluster, user: admin, namespace: apps}\n"
    "- name: dev\n"
    "  context: {cluster: dev-cluster, user: dev}\n"
    "- name: inline\n"
    "  context: {cluster: prod-cluster, user: inline}\n"
    "- name: plugin\n"
    "  context: {cluster: prod-cluster, user: plugin}\n"
    "- name: broken\n"
    "  context: {cluster: nowhere, user: admin}\n";

static eng_kube_config *parse_ok(const char *context)
{
    eng_kube_config *c = NULL;
    berth_error *e = NULL;
    int rc = eng_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), "/home/u/.kube/config",
                                   context, &e);
    if (rc != 0) {
        char *t = berth_error_text(e);
        print_error("%s\n", t ? t : "?");
        free(t);
    }
    berth_error_free(e);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static void test_current_context_token_ca_data(void **state)
{
    eng_kube_config *c = parse_ok(NULL);
    (void)state;
    assert_string_equal(c->server, "https://10.0.0.1:6443"); /* trailing '/' dropped */
    assert_string_equal(c->ca_pem, "-----BEGIN CERTIFICATE-----\nCA\n");
    assert_null(c->ca_file);
    assert_false(c->insecure);
    assert_string_equal(c->token, "s3cret");
    assert_string_equal(c->impersonate, "someone");
    assert_string_equal(c->ns, "apps");
    assert_non_null(strstr(c->source, "context prod"));
    eng_kube_config_free(c);
}

static void test_context_files_relative_to_kubeconfig(void **state)
{
    eng_kube_config *c = parse_ok("dev");
    (void)state;
    assert_string_equal(c->server, "https://dev.example:443");
    assert_string_equal(c->ca_file, "/home/u/.kube/certs/ca.crt");
    assert_true(c->insecure);
    assert_string_equal(c->cert_file, "/home/u/.kube/certs/dev.crt");
    assert_string_equal(c->key_file, "/abs/dev.key");
    assert_null(c->token);
    assert_string_equal(c->ns, "default");
    eng_kube_config_free(c);
}

static void test_inline_client_certificate(void **state)
{
    eng_kube_config *c = parse_ok("inline");
    (void)state;
    assert_string_equal(c->cert_pem, "CERT\n");
    assert_string_equal(c->key_pem, "KEY\n");
    eng_kube_config_free(c);
}

static void test_exec_plugin(void **state)
{
    eng_kube_config *c = parse_ok("plugin");
    (void)state;
    assert_string_equal(c->exec_command, "get-token");
    assert_string_equal(c->exec_api_version, "client.authentication.k8s.io/v1beta1");
    assert_string_equal(c->exec_args[0], "--cluster");
    assert_string_equal(c->exec_args[1], "prod");
    assert_null(c->exec_args[2]);
    assert_string_equal(c->exec_env[0], "REGION=eu");
    assert_null(c->exec_env[1]);
    eng_kube_config_free(c);
}

static void expect_fail(const char *text, const char *context, const char *needle)
{
    eng_kube_config *c = NULL;
    berth_error *e = NULL;
    char *msg;
    assert_int_equal(eng_kube_config_parse(&c, text, strlen(text), "/k/cfg", context, &e),
                     BERTH_EINVAL);
    assert_null(c);
    msg = berth_error_text(e);
    assert_non_null(msg);
    if (!strstr(msg, needle))
        print_error("message: %s\n", msg);
    assert_non_null(strstr(msg, needle));
    free(msg);
    berth_error_free(e);
}

static void test_errors_name_the_entry(void **state)
{
    (void)state;
    expect_fail(kubeconfig, "nope", "/k/cfg: context \"nope\" is not defined");
    expect_fail(kubeconfig, "broken", "cluster \"nowhere\" of context \"broken\" is not defined");
    expect_fail("apiVersion: v1\nkind: Config\n", NULL, "no current-context");
    expect_fail("clusters: [{name: c, cluster: {server: https://x, certificate-authority-data: "
                "'!!'}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
                NULL, "certificate-authority-data of \"c\" is not base64");
    expect_fail("clusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: "
                "c}}]\ncurrent-context: x\n",
                NULL, "cluster \"c\" has no server");
    expect_fail("clusters: [{name: c, cluster: {server: https://x}}]\nusers: [{name: u, user: "
                "{auth-provider: {name: gcp}}}]\ncontexts: [{name: x, context: {cluster: c, user: "
                "u}}]\ncurrent-context: x\n",
                NULL, "auth-provider");
    expect_fail("[a, b]\n", NULL, "not a kubeconfig");
}

/* $KUBECONFIG lists files; the first that defines an entry wins, missing files are skipped. */
/* The shared kubeconfig with current-context set to context, as a Secret would hold it. */
static int from_secret(eng_kube_config **out, const char *context,
                       const eng_kube_secret_policy *policy, char **msg_out)
{
    const char *at = strstr(kubeconfig, "current-context: prod\n");
    char *text = core_sprintf("%.*scurrent-context: %s\n%s", (int)(at - kubeconfig), kubeconfig,
                              context, at + strlen("current-context: prod\n"));
    berth_error *e = NULL;
    int rc;
    assert_non_null(text);
    rc = eng_kube_config_from_secret(out, text, strlen(text),
                                     "kubeConfig Secret \"apps/remote\" key \"value\"", policy, &e);
    *msg_out = rc < 0 ? berth_error_text(e) : NULL;
    berth_error_free(e);
    core_free(text);
    return rc;
}

static void test_secret_kubeconfig_inline_credentials_are_accepted(void **state)
{
    eng_kube_config *c = NULL;
    char *msg = NULL;
    (void)state;
    assert_int_equal(from_secret(&c, "prod", NULL, &msg), 0);
    assert_string_equal(c->server, "https://10.0.0.1:6443");
    assert_string_equal(c->token, "s3cret");
    eng_kube_config_free(c);
    assert_int_equal(from_secret(&c, "inline", NULL, &msg), 0);
    assert_string_equal(c->key_pem, "KEY\n");
    eng_kube_config_free(c);
}

static void test_secret_kubeconfig_refuses_exec_unless_allowed(void **state)
{
    eng_kube_secret_policy allow = {.allow_exec = true};
    eng_kube_config *c = NULL;
    char *msg = NULL;
    (void)state;
    assert_int_equal(from_secret(&c, "plugin", NULL, &msg), BERTH_EDENIED);
    assert_null(c);
    assert_non_null(strstr(msg, "kubeConfig Secret \"apps/remote\""));
    assert_non_null(strstr(msg, "exec credential plugin (\"get-token\")"));
    assert_non_null(strstr(msg, "--insecure-kubeconfig-exec"));
    free(msg);
    assert_int_equal(from_secret(&c, "plugin", &allow, &msg), 0);
    assert_string_equal(c->exec_command, "get-token");
    eng_kube_config_free(c);
}

static void test_secret_kubeconfig_refuses_local_files_and_insecure_tls(void **state)
{
    eng_kube_secret_policy allow_all = {.allow_exec = true, .allow_insecure_tls = true};
    eng_kube_config *c = NULL;
    char *msg = NULL;
    (void)state;
    /* dev: client-certificate, client-key and certificate-authority are paths */
    assert_int_equal(from_secret(&c, "dev", &allow_all, &msg), BERTH_EDENIED);
    assert_null(c);
    assert_non_null(strstr(msg, "kubeConfig Secret \"apps/remote\""));
    assert_non_null(strstr(msg, "names a local file (client-certificate)"));
    free(msg);
    {
        static const char insecure[] =
            "current-context: x\n"
            "clusters: [{name: c, cluster: {server: https://r:6443, insecure-skip-tls-verify: "
            "true}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n";
        static const char token_file[] =
            "current-context: x\n"
            "clusters: [{name: c, cluster: {server: https://r:6443}}]\n"
            "users: [{name: u, user: {tokenFile: /var/run/token}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n";
        berth_error *e = NULL;
        assert_int_equal(eng_kube_config_from_secret(&c, insecure, strlen(insecure), "S", NULL, &e),
                         BERTH_EDENIED);
        assert_non_null(strstr(berth_error_message(e), "--insecure-kubeconfig-tls"));
        berth_error_free(e);
        e = NULL;
        assert_int_equal(
            eng_kube_config_from_secret(&c, insecure, strlen(insecure), "S", &allow_all, &e), 0);
        assert_true(c->insecure);
        eng_kube_config_free(c);
        c = NULL;
        assert_int_equal(
            eng_kube_config_from_secret(&c, token_file, strlen(token_file), "S", &allow_all, &e),
            BERTH_EDENIED);
        assert_non_null(strstr(berth_error_message(e), "local file (tokenFile)"));
        berth_error_free(e);
    }
}

static void test_kubeconfig_env_list(void **state)
{
    char *dir = NULL, *a, *b, *list;
    eng_kube_config *c = NULL;
    const char *tmp = getenv("TMPDIR");
    (void)state;
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-kcfg-", NULL), 0);
    a = core_sprintf("%s/a", dir);
    b = core_sprintf("%s/b", dir);
    list = core_sprintf("%s/missing:%s:%s", dir, a, b);
    assert_int_equal(
        core_fs_write_atomic(a, "current-context: x\nusers: [{name: u, user: {token: from-a}}]\n",
                             60, 0600, NULL),
        0);
    {
        const char *bt = "current-context: y\nusers: [{name: u, user: {token: from-b}}]\n"
                         "clusters: [{name: c, cluster: {server: http://b:1}}]\n"
                         "contexts: [{name: x, context: {cluster: c, user: u}}]\n";
        assert_int_equal(core_fs_write_atomic(b, bt, strlen(bt), 0600, NULL), 0);
    }
    setenv("KUBECONFIG", list, 1);
    assert_int_equal(eng_kube_config_load(&c, NULL, NULL, NULL), 0);
    assert_string_equal(c->server, "http://b:1");
    assert_string_equal(c->token, "from-a"); /* context x (a's current-context), user u of a */
    eng_kube_config_free(c);
    c = NULL;
    assert_int_equal(eng_kube_config_load(&c, b, "x", NULL), 0); /* --kubeconfig wins */
    assert_string_equal(c->token, "from-b");
    eng_kube_config_free(c);
    unsetenv("KUBECONFIG");
    c = NULL;
    assert_int_equal(eng_kube_config_load(&c, "/nonexistent/kubeconfig", NULL, NULL),
                     BERTH_ENOTFOUND);
    assert_null(c);
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(a);
    core_free(b);
    core_free(list);
    core_free(dir);
}

static void test_in_cluster(void **state)
{
    char *dir = NULL, *f;
    eng_kube_config *c = NULL;
    const char *tmp = getenv("TMPDIR");
    (void)state;
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(eng_kube_config_in_cluster(&c, "/nonexistent", NULL), BERTH_ENOTFOUND);
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-sa-", NULL), 0);
    f = core_sprintf("%s/namespace", dir);
    assert_int_equal(core_fs_write_atomic(f, "flux-system\n", 12, 0600, NULL), 0);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(eng_kube_config_in_cluster(&c, dir, NULL), 0);
    assert_string_equal(c->server, "https://[fd00::1]:443");
    assert_string_equal(c->ns, "flux-system");
    assert_non_null(strstr(c->token_file, "/token"));
    assert_non_null(strstr(c->ca_file, "/ca.crt"));
    assert_null(c->token); /* read per request, re-read as it rotates */
    eng_kube_config_free(c);
    c = NULL;
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    assert_int_equal(eng_kube_config_in_cluster(&c, dir, NULL), 0);
    assert_string_equal(c->server, "https://10.96.0.1:443");
    eng_kube_config_free(c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(f);
    core_free(dir);
}

static json_t *obj(const char *av, const char *kind, const char *ns, const char *name)
{
    json_t *o =
        json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", av, "kind", kind, "metadata", "name", name);
    if (ns)
        json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
    return o;
}

static int cmp(const void *a, const void *b)
{
    return eng_kube_compare(*(json_t *const *)a, *(json_t *const *)b);
}

static void test_kind_order_and_stages(void **state)
{
    json_t *objs[] = {
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", NULL, "v"),
        obj("example.com/v1", "Widget", "b", "w"),
        obj("apps/v1", "Deployment", "b", "web"),
        obj("v1", "ConfigMap", "b", "z"),
        obj("v1", "ConfigMap", "a", "z"),
        obj("networking.k8s.io/v1", "Ingress", "b", "i"),
        obj("v1", "Namespace", NULL, "b"),
        obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", NULL, "m"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", NULL, "widgets.example.com"),
        obj("storage.k8s.io/v1", "StorageClass", NULL, "fast"),
        obj("batch/v1", "Job", "b", "j"),
    };
    const char *want[] = {"CustomResourceDefinition",
                          "Namespace",
                          "StorageClass",
                          "ConfigMap",
                          "ConfigMap",
                          "Deployment",
                          "Job",
                          "Widget",
                          "Ingress",
                          "MutatingWebhookConfiguration",
                          "ValidatingWebhookConfiguration"};
    const size_t n = sizeof(objs) / sizeof(objs[0]);
    (void)state;
    qsort(objs, n, sizeof(objs[0]), cmp);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(objs[i], "kind")), want[i]);
    /* same rank: group, then kind, namespace, name ("" < "example.com" < "networking...") */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(objs[3], "metadata"), "namespace")), "a");
    for (size_t i = 0; i < n; i++)
        json_decref(objs[i]);
    assert_int_equal(eng_kube_kind_rank("CustomResourceDefinition"), -23);
    assert_int_equal(eng_kube_kind_rank("PodDisruptionBudget"), -1);
    assert_int_equal(eng_kube_kind_rank("HorizontalPodAutoscaler"), 0);
    assert_int_equal(eng_kube_kind_rank("ValidatingWebhookConfiguration"), 2);
    assert_int_equal(eng_kube_stage("apiextensions.k8s.io", "CustomResourceDefinition"), 1);
    assert_int_equal(eng_kube_stage("", "Namespace"), 1);
    assert_int_equal(eng_kube_stage("rbac.authorization.k8s.io", "ClusterRole"), 1);
    assert_int_equal(eng_kube_stage("example.com", "Namespace"), 3); /* a CR named like it */
    assert_int_equal(eng_kube_stage("storage.k8s.io", "StorageClass"), 2);
    assert_int_equal(eng_kube_stage("networking.k8s.io", "IngressClass"), 2);
    assert_int_equal(eng_kube_stage("rbac.authorization.k8s.io", "ClusterRoleBinding"), 3);
    assert_int_equal(eng_kube_stage("apps", "Deployment"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_context_token_ca_data),
        cmocka_unit_test(test_context_files_relative_to_kubeconfig),
        cmocka_unit_test(test_inline_client_certificate),
        cmocka_unit_test(test_exec_plugin),
        cmocka_unit_test(test_errors_name_the_entry),
        cmocka_unit_test(test_secret_kubeconfig_inline_credentials_are_accepted),
        cmocka_unit_test(test_secret_kubeconfig_refuses_exec_unless_allowed),
        cmocka_unit_test(test_secret_kubeconfig_refuses_local_files_and_insecure_tls),
        cmocka_unit_test(test_kubeconfig_env_list),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_kind_order_and_stages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
