/* Unit tests for engine/config.c: the file store's YAML loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/config.h"

/* ---- helpers ---- */

static char *fixture(const char *rel)
{
    const char *root = getenv("BERTH_TESTDATA");
    char *p = core_sprintf("%s/engine/config/%s", root ? root : "testdata", rel);
    assert_non_null(p);
    return p;
}

/* 1-based line of the first line of the file containing needle (the fixture decides). */
static int line_of(const char *path, const char *needle)
{
    berth_buf b = BERTH_BUF_INIT;
    int line = 1;
    assert_int_equal(core_fs_read_file(&b, path, 0, NULL), 0);
    char *hit = strstr(b.ptr, needle);
    assert_non_null(hit);
    for (char *p = b.ptr; p < hit; p++)
        line += *p == '\n';
    berth_buf_dispose(&b);
    return line;
}

static eng_config *load(const char *rel)
{
    eng_config *cfg = NULL;
    berth_error *err = NULL;
    char *path = fixture(rel);
    int rc = eng_config_load(&cfg, path, &err);
    if (rc != 0)
        fail_msg("loading %s: %s", path, berth_error_message(err));
    core_free(path);
    return cfg;
}

static eng_config *parse(const char *yaml)
{
    eng_config *cfg = NULL;
    assert_int_equal(eng_config_parse(&cfg, yaml, strlen(yaml), "inline.yaml", NULL), 0);
    return cfg;
}

static const eng_config_error *only_error(const eng_config *cfg)
{
    if (cfg->errors_len != 1) {
        for (size_t i = 0; i < cfg->errors_len; i++)
            print_message("error: %s\n", cfg->errors[i].text);
        fail_msg("want 1 error, got %zu", cfg->errors_len);
    }
    return &cfg->errors[0];
}

static void assert_contains(const char *s, const char *needle)
{
    if (!s || !strstr(s, needle))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", needle);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

#define KS_HEAD                                                                                    \
    "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: k\n"

/* ---- loading ---- */

static void config_loads_every_kind_from_a_directory_recursively(void **state)
{
    (void)state;
    eng_config *cfg = load("good");
    for (size_t i = 0; i < cfg->errors_len; i++)
        print_message("unexpected: %s\n", cfg->errors[i].text);
    assert_int_equal(cfg->errors_len, 0);
    assert_false(cfg->incomplete);
    assert_int_equal(cfg->files, 4); /* .hidden.yaml and README.md are not read */
    assert_int_equal(cfg->ocirepos_len, 2);
    assert_int_equal(cfg->kustomizations_len, 2);
    assert_int_equal(cfg->secrets_len, 1);
    assert_int_equal(cfg->configmaps_len, 1);
    /* sorted by namespace, name */
    assert_string_equal(cfg->ocirepos[0].meta.ns, "default");
    assert_string_equal(cfg->ocirepos[1].meta.ns, "flux-system");
    assert_string_equal(cfg->kustomizations[0].meta.name, "app");
    assert_string_equal(cfg->kustomizations[1].meta.name, "infra");
    eng_config_free(cfg);
}

static void config_ocirepository_reads_every_field(void **state)
{
    (void)state;
    eng_config *cfg = load("good/sources.yaml");
    char *path = fixture("good/sources.yaml");
    const eng_ocirepo *o = eng_config_find_ocirepo(cfg, "flux-system", "podinfo");
    assert_non_null(o);
    assert_string_equal(o->meta.api_version, "source.toolkit.fluxcd.io/v1");
    assert_string_equal(o->meta.file, path);
    assert_int_equal(o->meta.line, line_of(path, "apiVersion: source.toolkit.fluxcd.io/v1\n"));
    assert_string_equal(jstr(o->meta.labels, "app.kubernetes.io/part-of"), "demo");
    assert_string_equal(jstr(o->meta.annotations, "note"), "all fields");
    assert_true(core_str_has_prefix(o->meta.content_digest, "sha256:"));
    assert_string_equal(o->url, "oci://ghcr.io/stefanprodan/manifests/podinfo");
    assert_string_equal(o->ref_tag, "latest");
    assert_string_equal(o->ref_semver, ">=6.0.0 <7.0.0");
    assert_string_equal(o->ref_semver_filter, ".*-rc.*");
    assert_true(core_str_has_prefix(o->ref_digest, "sha256:0000"));
    assert_true(o->has_layer_selector);
    assert_string_equal(o->layer_media_type, "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
    assert_int_equal(o->layer_operation, ENG_LAYER_COPY);
    assert_string_equal(o->ignore, "# exclude all\n/*\n!/deploy\n");
    assert_int_equal(o->interval_ms, 90000);
    assert_int_equal(o->timeout_ms, 120000);
    assert_false(o->suspend);
    assert_true(o->insecure);
    assert_string_equal(o->provider, "aws");
    assert_string_equal(o->secret_ref, "regcred");
    assert_string_equal(o->cert_secret_ref, "tls");
    assert_string_equal(o->proxy_secret_ref, "proxy");
    assert_string_equal(o->service_account_name, "puller");
    assert_non_null(o->verify);
    assert_string_equal(o->verify->provider, "cosign");
    assert_string_equal(o->verify->secret_ref, "cosign-pub");
    assert_int_equal(o->verify->match_oidc_len, 1);
    assert_string_equal(o->verify->match_oidc[0].issuer,
                        "^https://token.actions.githubusercontent.com$");
    assert_string_equal(o->verify->trusted_root_secret_ref, "root");
    core_free(path);
    eng_config_free(cfg);
}

static void config_ocirepository_defaults_follow_the_crd(void **state)
{
    (void)state;
    eng_config *cfg = load("good/sources.yaml");
    const eng_ocirepo *o = eng_config_find_ocirepo(cfg, "default", "minimal");
    assert_non_null(o);
    assert_string_equal(o->meta.api_version, "source.toolkit.fluxcd.io/v1beta2");
    assert_int_equal(json_object_size(o->meta.labels), 0);
    assert_int_equal(o->interval_ms, 600000);
    assert_int_equal(o->timeout_ms, 60000);
    assert_string_equal(o->provider, "generic");
    assert_int_equal(o->layer_operation, ENG_LAYER_EXTRACT);
    assert_false(o->has_layer_selector);
    assert_null(o->ref_tag);
    assert_null(o->verify);
    eng_config_free(cfg);
}

static void config_kustomization_reads_every_field(void **state)
{
    (void)state;
    eng_config *cfg = load("good/apps/app.yaml");
    const eng_kustomization *k = eng_config_find_kustomization(cfg, "apps", "app");
    assert_non_null(k);
    assert_string_equal(k->source_ref.kind, "OCIRepository");
    assert_string_equal(k->source_ref.name, "podinfo");
    assert_string_equal(k->source_ref.ns, "flux-system");
    assert_string_equal(k->path, "./deploy/production");
    assert_int_equal(k->interval_ms, 3600000);
    assert_int_equal(k->retry_interval_ms, 120000);
    assert_int_equal(k->timeout_ms, 180000);
    assert_true(k->prune && k->wait && k->force);
    assert_false(k->suspend);
    assert_int_equal(k->deletion_policy, ENG_DELETION_ORPHAN);
    assert_int_equal(k->depends_on_len, 2);
    assert_string_equal(k->depends_on[0].name, "infra");
    assert_string_equal(k->depends_on[0].ns, "apps"); /* defaulted to the KS namespace */
    assert_string_equal(k->depends_on[1].ns, "flux-system");
    assert_string_equal(k->target_namespace, "production");
    assert_string_equal(k->name_prefix, "prod-");
    assert_string_equal(k->name_suffix, "-v1");
    assert_string_equal(jstr(json_object_get(k->common_metadata, "labels"), "team"), "platform");
    assert_string_equal(jstr(json_object_get(k->common_metadata, "annotations"), "owner"), "ops");
    assert_int_equal(json_array_size(k->patches), 1);
    assert_contains(jstr(json_array_get(k->patches, 0), "patch"), "op: replace");
    assert_string_equal(
        jstr(json_object_get(json_array_get(k->patches, 0), "target"), "labelSelector"),
        "app=podinfo");
    assert_string_equal(jstr(json_array_get(k->images, 0), "newTag"), "6.5.0");
    assert_string_equal(json_string_value(json_array_get(k->components, 0)),
                        "../components/monitoring");
    assert_true(k->ignore_missing_components);
    assert_true(k->has_post_build);
    assert_string_equal(jstr(k->substitute, "cluster_name"), "edge-01");
    assert_string_equal(jstr(k->substitute, "replicas"), "2");
    assert_int_equal(k->substitute_from_len, 2);
    assert_string_equal(k->substitute_from[1].kind, "Secret");
    assert_true(k->substitute_from[1].optional);
    assert_false(k->substitute_from[0].optional);
    assert_true(k->substitute_always);
    assert_int_equal(k->health_checks_len, 1);
    assert_string_equal(k->health_checks[0].api_version, "apps/v1");
    assert_string_equal(k->health_checks[0].ns, "production");
    assert_string_equal(k->service_account_name, "deployer");
    eng_config_free(cfg);
}

static void config_kustomization_defaults_follow_the_controller(void **state)
{
    (void)state;
    eng_config *cfg = load("good/nested/deeper/infra.yaml");
    const eng_kustomization *k = eng_config_find_kustomization(cfg, "apps", "infra");
    assert_non_null(k);
    assert_int_equal(k->interval_ms, 300000);
    assert_int_equal(k->retry_interval_ms, 300000);
    assert_int_equal(k->timeout_ms, 270000); /* interval - 30s */
    assert_string_equal(k->source_ref.ns, "apps");
    assert_false(k->prune);
    assert_int_equal(k->deletion_policy, ENG_DELETION_MIRROR_PRUNE);
    assert_false(k->has_post_build);
    assert_null(k->patches);
    eng_config_free(cfg);

    /* a short interval floors the timeout at 30s */
    cfg = parse(KS_HEAD "spec:\n  sourceRef: {kind: OCIRepository, name: s}\n"
                        "  interval: 40s\n  prune: true\n");
    assert_int_equal(cfg->kustomizations_len, 1);
    assert_int_equal(cfg->kustomizations[0].timeout_ms, 30000);
    eng_config_free(cfg);
}

static void config_secret_data_is_decoded_and_string_data_wins(void **state)
{
    (void)state;
    eng_config *cfg = load("good/apps/vars.yml");
    const eng_secret *s = eng_config_find_secret(cfg, "apps", "cluster-secrets");
    assert_non_null(s);
    assert_string_equal(s->type, "Opaque");
    assert_int_equal(s->data_len, 2);
    assert_string_equal(eng_kv_find(s->data, s->data_len, "password")->value, "hunter2");
    assert_string_equal(eng_kv_find(s->data, s->data_len, "token")->value, "new-token");
    assert_null(eng_kv_find(s->data, s->data_len, "missing"));
    eng_config_free(cfg);
}

static void config_configmap_keeps_data_and_decodes_binary_data(void **state)
{
    (void)state;
    eng_config *cfg = load("good/apps/vars.yml");
    const eng_configmap *m = eng_config_find_configmap(cfg, "apps", "cluster-vars");
    json_t *vars = NULL;
    assert_non_null(m);
    assert_string_equal(eng_kv_find(m->data, m->data_len, "port")->value, "8080");
    const eng_kv *blob = eng_kv_find(m->binary_data, m->binary_data_len, "blob");
    assert_non_null(blob);
    assert_int_equal(blob->len, 4);
    assert_memory_equal(blob->value, "\x00\x01\x02\xff", 4);
    assert_int_equal(
        eng_kv_to_json(&vars, m->data, m->data_len, "ConfigMap apps/cluster-vars", NULL), 0);
    assert_string_equal(jstr(vars, "region"), "eu-west-1");
    json_decref(vars);
    eng_config_free(cfg);
}

static void config_kv_to_json_refuses_binary_values_naming_the_key(void **state)
{
    (void)state;
    eng_config *cfg = load("good/apps/vars.yml");
    const eng_configmap *m = eng_config_find_configmap(cfg, "apps", "cluster-vars");
    json_t *vars = NULL;
    berth_error *err = NULL;
    assert_int_equal(eng_kv_to_json(&vars, m->binary_data, m->binary_data_len, "cm", &err),
                     BERTH_EINVAL);
    assert_contains(berth_error_message(err), "\"blob\"");
    assert_null(vars);
    berth_error_free(err);
    eng_config_free(cfg);
}

/* ---- errors: file, line, field; only the bad object is dropped ---- */

static void config_unknown_field_names_file_line_and_path(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/unknown-field.yaml");
    char *path = fixture("bad/unknown-field.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_string_equal(e->file, path);
    assert_int_equal(e->line, line_of(path, "semverr:"));
    assert_int_equal(e->code, BERTH_EINVAL);
    assert_string_equal(e->message, "unknown field \"spec.ref.semverr\"");
    assert_string_equal(e->kind, "OCIRepository");
    assert_string_equal(e->ns, "default");
    assert_string_equal(e->name, "broken");
    assert_contains(e->text, path);
    assert_contains(e->text, "OCIRepository/default/broken");
    assert_false(cfg->incomplete);
    /* the neighbours survive, the broken one is gone and findable as an error */
    assert_non_null(eng_config_find_configmap(cfg, "default", "fine"));
    assert_non_null(eng_config_find_ocirepo(cfg, "default", "also-fine"));
    assert_null(eng_config_find_ocirepo(cfg, "default", "broken"));
    assert_ptr_equal(eng_config_find_error(cfg, "OCIRepository", "default", "broken"), e);
    assert_null(eng_config_find_error(cfg, "OCIRepository", "default", "also-fine"));
    core_free(path);
    eng_config_free(cfg);
}

static void config_unknown_kind_is_reported_with_its_line(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/unknown-kind.yaml");
    char *path = fixture("bad/unknown-kind.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->line, line_of(path, "apiVersion: helm"));
    assert_int_equal(e->code, BERTH_EUNSUPPORTED);
    assert_contains(e->message, "unknown kind \"HelmRelease\"");
    assert_string_equal(e->name, "redis");
    assert_non_null(eng_config_find_configmap(cfg, "default", "survivor"));
    core_free(path);
    eng_config_free(cfg);
}

static void config_missing_required_field_is_named(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/missing-field.yaml");
    char *path = fixture("bad/missing-field.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_string_equal(e->message, "missing required field \"spec.prune\"");
    assert_int_equal(e->line, line_of(path, "  sourceRef:")); /* the spec mapping */
    assert_int_equal(cfg->kustomizations_len, 0);
    core_free(path);
    eng_config_free(cfg);
}

static void config_bad_duration_names_the_field_and_the_text(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/bad-duration.yaml");
    char *path = fixture("bad/bad-duration.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->line, line_of(path, "10x"));
    assert_contains(e->message, "field \"spec.interval\"");
    assert_contains(e->message, "invalid duration \"10x\"");
    core_free(path);
    eng_config_free(cfg);
}

static void config_invalid_base64_names_the_key_not_the_value(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/bad-base64.yaml");
    char *path = fixture("bad/bad-base64.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->line, line_of(path, "\"not base64!\""));
    assert_string_equal(e->message, "field \"data.password\": invalid base64");
    assert_null(strstr(e->text, "not base64"));
    assert_int_equal(cfg->secrets_len, 0);
    core_free(path);
    eng_config_free(cfg);
}

static void config_unsupported_field_says_berth_does_not_support_it(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/unsupported.yaml");
    char *path = fixture("bad/unsupported.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->code, BERTH_EUNSUPPORTED);
    assert_int_equal(e->line, line_of(path, "decryption:"));
    assert_string_equal(e->message, "field \"spec.decryption\" is not supported by berth");
    core_free(path);
    eng_config_free(cfg);
}

#define KS_KUBECONFIG_HEAD                                                                         \
    "apiVersion: kustomize.toolkit.fluxcd.io/v1\n"                                                 \
    "kind: Kustomization\n"                                                                        \
    "metadata: {name: remote, namespace: apps}\n"                                                  \
    "spec:\n"                                                                                      \
    "  interval: 1m\n"                                                                             \
    "  prune: true\n"                                                                              \
    "  sourceRef: {kind: OCIRepository, name: app}\n"

static void config_kustomization_reads_kubeconfig_secret_ref(void **state)
{
    (void)state;
    const eng_kustomization *k;
    eng_config *cfg;

    cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig:\n"
                                   "    secretRef: {name: prod-kubeconfig, key: config}\n");
    assert_int_equal(cfg->errors_len, 0);
    assert_non_null(k = eng_config_find_kustomization(cfg, "apps", "remote"));
    assert_string_equal(k->kubeconfig_secret, "prod-kubeconfig");
    assert_string_equal(k->kubeconfig_key, "config");
    eng_config_free(cfg);
    cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig: {secretRef: {name: other}}\n");
    assert_non_null(k = eng_config_find_kustomization(cfg, "apps", "remote"));
    assert_string_equal(k->kubeconfig_secret, "other");
    assert_null(k->kubeconfig_key); /* the reconciler tries "value", then "value.yaml" */
    eng_config_free(cfg);
    cfg = parse(KS_KUBECONFIG_HEAD);
    assert_non_null(k = eng_config_find_kustomization(cfg, "apps", "remote"));
    assert_null(k->kubeconfig_secret);
    eng_config_free(cfg);
}

static void config_kubeconfig_configmap_ref_is_refused_with_its_line(void **state)
{
    (void)state;
    eng_config *cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig:\n"
                                               "    configMapRef: {name: workload-identity}\n");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->code, BERTH_EUNSUPPORTED);
    assert_int_equal(e->line, 9);
    assert_string_equal(e->message,
                        "field \"spec.kubeConfig.configMapRef\" is not supported by berth");
    assert_contains(e->text, "inline.yaml:9:");
    assert_contains(e->text, "Kustomization/apps/remote");
    assert_null(eng_config_find_kustomization(cfg, "apps", "remote"));
    eng_config_free(cfg);
}

static void config_kubeconfig_needs_a_secret_ref_with_a_name(void **state)
{
    (void)state;
    eng_config *cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig: {}\n");
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->message, "missing required field \"spec.kubeConfig.secretRef\"");
    eng_config_free(cfg);
    cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig: {secretRef: {key: value}}\n");
    e = only_error(cfg);
    assert_contains(e->message, "missing required field \"spec.kubeConfig.secretRef.name\"");
    eng_config_free(cfg);
    cfg = parse(KS_KUBECONFIG_HEAD "  kubeConfig: {secretRef: {name: a, namespace: b}}\n");
    e = only_error(cfg);
    assert_contains(e->message, "unknown field \"spec.kubeConfig.secretRef.namespace\"");
    eng_config_free(cfg);
}

static void config_duplicate_object_names_both_files_and_drops_it(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/dup");
    char *a = fixture("bad/dup/a.yaml"), *b = fixture("bad/dup/b.yaml");
    const eng_config_error *e = only_error(cfg);
    char want[64];
    assert_int_equal(e->code, BERTH_ECONFLICT);
    assert_contains(e->message, "defined twice");
    assert_contains(e->message, a);
    assert_contains(e->message, b);
    snprintf(want, sizeof(want), "line %d", line_of(a, "apiVersion"));
    assert_contains(e->message, want);
    assert_string_equal(e->file, b);
    assert_int_equal(e->line, line_of(b, "apiVersion"));
    assert_null(eng_config_find_configmap(cfg, "apps", "shared"));
    assert_non_null(eng_config_find_configmap(cfg, "apps", "unique"));
    core_free(a);
    core_free(b);
    eng_config_free(cfg);
}

static void config_duplicate_of_an_invalid_object_still_drops_both(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbogus: 1\n");
    assert_int_equal(cfg->errors_len, 2);
    assert_contains(cfg->errors[0].message, "unknown field \"bogus\"");
    assert_contains(cfg->errors[1].message, "defined twice");
    assert_int_equal(cfg->configmaps_len, 0);
    eng_config_free(cfg);
}

static void config_syntax_error_keeps_earlier_objects_and_marks_incomplete(void **state)
{
    (void)state;
    eng_config *cfg = load("bad/syntax.yaml");
    char *path = fixture("bad/syntax.yaml");
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->message, "invalid YAML");
    assert_null(e->name);
    assert_int_equal(e->line, line_of(path, "data: {}"));
    assert_true(cfg->incomplete);
    assert_non_null(eng_config_find_configmap(cfg, "default", "before-the-error"));
    core_free(path);
    eng_config_free(cfg);
}

static void config_error_in_a_list_item_names_its_index(void **state)
{
    (void)state;
    eng_config *cfg = parse(KS_HEAD "spec:\n  sourceRef: {kind: OCIRepository, name: s}\n"
                                    "  interval: 1m\n  prune: true\n  dependsOn:\n"
                                    "  - name: a\n  - name: b\n    nme: c\n");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->line, 12);
    assert_int_equal(e->column, 5);
    assert_string_equal(e->message, "unknown field \"spec.dependsOn[1].nme\"");
    eng_config_free(cfg);
}

static void config_repeated_key_is_an_error(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->line, 5);
    assert_string_equal(e->message, "duplicate field \"metadata.name\"");
    eng_config_free(cfg);
}

static void config_values_are_type_checked(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *message;
    } cases[] = {
        {"  prune: \"true\"\n", "field \"spec.prune\": expected true or false"},
        {"  prune: yes\n", "field \"spec.prune\": expected true or false"},
        {"  prune: true\n  path: [a]\n", "field \"spec.path\": expected a string"},
        {"  prune: true\n  deletionPolicy: Never\n", "\"Never\" is not one of"},
        {"  prune: true\n  targetNamespace: \"\"\n", "length 0 is outside 1..63"},
        {"  prune: true\n  postBuild: {substituteFrom: [{kind: Bucket, name: b}]}\n",
         "field \"spec.postBuild.substituteFrom[0].kind\""},
        {"  prune: true\n  dependsOn: [{name: a, readyExpr: \"true\"}]\n",
         "\"spec.dependsOn[0].readyExpr\" is not supported"},
        {"  prune: true\n  timeout: 0s\n", "field \"spec.timeout\": must be greater than zero"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *yaml = core_sprintf(KS_HEAD "spec:\n  sourceRef: {kind: OCIRepository, name: s}\n"
                                          "  interval: 1m\n%s",
                                  cases[i].spec);
        eng_config *cfg = parse(yaml);
        const eng_config_error *e = only_error(cfg);
        assert_contains(e->message, cases[i].message);
        assert_int_equal(cfg->kustomizations_len, 0);
        eng_config_free(cfg);
        core_free(yaml);
    }
}

static void config_names_and_namespaces_are_validated(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n---\n"
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: "
                            "a.b}\n---\n"
                            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {\"a/b\": "
                            "eA==}\n");
    assert_int_equal(cfg->errors_len, 3);
    assert_contains(cfg->errors[0].message, "\"Bad_Name\" is not a valid name");
    assert_contains(cfg->errors[1].message, "\"a.b\" is not a valid namespace");
    assert_contains(cfg->errors[2].message, "field \"data.a/b\": invalid key");
    eng_config_free(cfg);
}

static void config_ocirepository_url_and_timeout_follow_the_crd(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
                            "metadata: {name: o}\nspec:\n  url: https://reg/app\n"
                            "  interval: 1m\n  timeout: 1h\n");
    assert_int_equal(cfg->errors_len, 2);
    assert_contains(cfg->errors[0].message, "must start with \"oci://\"");
    assert_int_equal(cfg->errors[0].line, 5);
    assert_contains(cfg->errors[1].message, "hours are not allowed");
    assert_int_equal(cfg->errors[1].line, 7);
    eng_config_free(cfg);
}

static void config_wrong_api_version_is_unsupported(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                            "metadata: {name: k}\nresources: [a.yaml]\n");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->code, BERTH_EUNSUPPORTED);
    assert_contains(e->message, "unsupported apiVersion \"kustomize.config.k8s.io/v1beta1\"");
    eng_config_free(cfg);
}

static void config_document_without_name_makes_config_incomplete(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\n- a list\n");
    assert_int_equal(cfg->errors_len, 2);
    assert_contains(cfg->errors[0].message, "missing required field \"metadata.name\"");
    assert_string_equal(cfg->errors[0].kind, "ConfigMap");
    assert_null(cfg->errors[0].name);
    assert_contains(cfg->errors[1].message, "document is not a mapping");
    assert_true(cfg->incomplete);
    eng_config_free(cfg);
}

static void config_alias_expansion_is_bounded(void **state)
{
    (void)state;
    berth_buf b = BERTH_BUF_INIT;
    /* billion laughs: 9 levels of 10 aliases each, and a cycle */
    assert_int_equal(berth_buf_puts(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
                                        "data:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"),
                     0);
    for (int i = 1; i < 9; i++)
        assert_int_equal(berth_buf_printf(&b,
                                          "  a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                                          "*a%d, *a%d, *a%d, *a%d]\n",
                                          i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                                          i - 1, i - 1, i - 1),
                         0);
    assert_int_equal(berth_buf_puts(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: &m "
                                        "{name: y, labels: *m}\n"),
                     0);
    clock_t start = clock();
    eng_config *cfg = NULL;
    assert_int_equal(eng_config_parse(&cfg, b.ptr, b.len, "bomb.yaml", NULL), 0);
    assert_true((clock() - start) / CLOCKS_PER_SEC < 5);
    assert_int_equal(cfg->configmaps_len, 0);
    assert_true(cfg->errors_len >= 2);
    eng_config_free(cfg);
    berth_buf_dispose(&b);
}

static void config_directory_symlink_loop_is_reported_not_followed(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL, *link = NULL, *file = NULL;
    const char *cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: only}\n";
    eng_config *cfg = NULL;
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-config-", NULL), 0);
    link = core_sprintf("%s/loop", dir);
    file = core_sprintf("%s/a.yaml", dir);
    assert_int_equal(symlink(".", link), 0);
    assert_int_equal(core_fs_write_atomic(file, cm, strlen(cm), 0600, NULL), 0);
    assert_int_equal(eng_config_load(&cfg, dir, NULL), 0);
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->message, "is a link to its own parent");
    assert_string_equal(e->file, link);
    assert_int_equal(cfg->configmaps_len, 1);
    assert_int_equal(cfg->files, 1);
    eng_config_free(cfg);
    core_fs_remove_all(dir, NULL);
    core_free(dir);
    core_free(link);
    core_free(file);
}

static void config_missing_path_fails_with_enotfound(void **state)
{
    (void)state;
    eng_config *cfg = NULL;
    berth_error *err = NULL;
    assert_int_equal(eng_config_load(&cfg, "/nonexistent/berth-config", &err), BERTH_ENOTFOUND);
    assert_contains(berth_error_message(err), "/nonexistent/berth-config");
    assert_null(cfg);
    berth_error_free(err);
}

static void config_content_digest_ignores_metadata_only(void **state)
{
    (void)state;
    eng_config *a = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n");
    eng_config *b = parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: "
                          "{l: v}\ndata:\n  k: v\n");
    eng_config *c = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: w}\n");
    assert_string_equal(a->configmaps[0].meta.content_digest, b->configmaps[0].meta.content_digest);
    assert_string_not_equal(a->configmaps[0].meta.content_digest,
                            c->configmaps[0].meta.content_digest);
    eng_config_free(a);
    eng_config_free(b);
    eng_config_free(c);
}

/* ---- durations ---- */

static void duration_parses_the_crd_grammar(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"1m30s", 90000}, {"10m", 600000},        {"1h", 3600000}, {"1.5h", 5400000},
                {"250ms", 250},   {"1h1m1s1ms", 3661001}, {"0s", 0},       {"2.0005s", 2000}};
    static const char *const bad[] = {
        "", "10", "1x", "-1s", "1.s", ".5s", "1m 30s", "1d", "99999999999999999999h"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(eng_duration_parse(&ms, good[i].text, true, NULL), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        berth_error *err = NULL;
        assert_int_equal(eng_duration_parse(&ms, bad[i], true, &err), BERTH_EINVAL);
        assert_contains(berth_error_message(err), "invalid duration");
        berth_error_free(err);
    }
}

static void duration_formats_like_go(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{0, "0s"},           {500, "500ms"},      {1500, "1.5s"},   {90000, "1m30s"},
                 {3600000, "1h0m0s"}, {61001, "1m1.001s"}, {600000, "10m0s"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        int64_t back;
        eng_duration_format(out, cases[i].ms);
        assert_string_equal(out, cases[i].text);
        assert_int_equal(eng_duration_parse(&back, out, true, NULL), 0);
        assert_int_equal(back, cases[i].ms);
    }
}

/* ---- image.toolkit.fluxcd.io kinds ---- */

static const char image_kinds_yaml[] =
    "apiVersion: image.toolkit.fluxcd.io/v1\n"
    "kind: ImageRepository\n"
    "metadata: {name: app, namespace: apps}\n"
    "spec:\n"
    "  image: 127.0.0.1:5000/team/app\n"
    "  interval: 5m\n"
    "  exclusionList: ['^.*\\.sig$', '^rc-']\n"
    "  secretRef: {name: regcred}\n"
    "  insecure: true\n"
    "---\n"
    "apiVersion: image.toolkit.fluxcd.io/v1\n"
    "kind: ImagePolicy\n"
    "metadata: {name: app, namespace: apps}\n"
    "spec:\n"
    "  imageRepositoryRef: {name: app}\n"
    "  filterTags: {pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts'}\n"
    "  policy: {numerical: {order: desc}}\n"
    "  digestReflectionPolicy: IfNotPresent\n"
    "---\n"
    "apiVersion: image.toolkit.fluxcd.io/v1\n"
    "kind: ImageUpdateAutomation\n"
    "metadata: {name: fleet, namespace: apps}\n"
    "spec:\n"
    "  interval: 1m\n"
    "  sourceRef: {kind: OCIRepository, name: fleet-src}\n"
    "  update: {path: ./clusters/edge, strategy: Setters}\n"
    "  policySelector: {matchLabels: {team: a}}\n"
    "  publish:\n"
    "    url: oci://127.0.0.1:5000/fleet/config:latest\n"
    "    signingKey: {secretRef: {name: cosign}}\n";

static void config_image_kinds_read_every_field(void **state)
{
    (void)state;
    eng_config *cfg = parse(image_kinds_yaml);
    const eng_imagerepo *r = eng_config_find_imagerepo(cfg, "apps", "app");
    const eng_imagepolicy *p = eng_config_find_imagepolicy(cfg, "apps", "app");
    const eng_imageupdate *u = eng_config_find_imageupdate(cfg, "apps", "fleet");

    for (size_t i = 0; i < cfg->errors_len; i++)
        print_message("error: %s\n", cfg->errors[i].text);
    assert_int_equal(cfg->errors_len, 0);
    assert_non_null(r);
    assert_string_equal(r->image, "127.0.0.1:5000/team/app");
    assert_int_equal(r->interval_ms, 300000);
    assert_int_equal(r->timeout_ms, 300000); /* defaults to the interval */
    assert_string_equal(r->secret_ref, "regcred");
    assert_string_equal(r->provider, "generic");
    assert_true(r->insecure);
    assert_int_equal(json_array_size(r->exclusion_list), 2);
    assert_string_equal(json_string_value(json_array_get(r->exclusion_list, 1)), "^rc-");
    assert_non_null(p);
    assert_string_equal(p->repo_ref.name, "app");
    assert_string_equal(p->repo_ref.ns, "apps");
    assert_true(p->has_num);
    assert_false(p->has_alpha);
    assert_null(p->semver_range);
    assert_string_equal(p->num_order, "desc");
    assert_string_equal(p->filter_extract, "$ts");
    assert_int_equal(p->digest_reflection, ENG_DIGEST_IF_NOT_PRESENT);
    assert_non_null(u);
    assert_string_equal(u->source_ref.kind, "OCIRepository");
    assert_string_equal(u->source_ref.ns, "apps");
    assert_string_equal(u->update_path, "./clusters/edge");
    assert_string_equal(u->publish_url, "oci://127.0.0.1:5000/fleet/config:latest");
    assert_string_equal(u->publish_key_ref, "cosign");
    assert_string_equal(jstr(u->policy_selector, "team"), "a");
    eng_config_free(cfg);
}

static void config_image_policy_needs_exactly_one_policy(void **state)
{
    (void)state;
    eng_config *cfg =
        parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: p}\n"
              "spec:\n  imageRepositoryRef: {name: r}\n"
              "  policy:\n    semver: {range: '>=1.0.0'}\n    alphabetical: {order: asc}\n");
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->text, "inline.yaml:7:");
    assert_contains(e->text, "ImagePolicy/default/p");
    assert_contains(e->message, "exactly one of semver, alphabetical, numerical");
    assert_int_equal(cfg->imagepolicies_len, 0);
    eng_config_free(cfg);
}

static void config_image_policy_bad_range_and_pattern_are_load_errors(void **state)
{
    (void)state;
    eng_config *cfg =
        parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: p}\n"
              "spec:\n  imageRepositoryRef: {name: r}\n  policy: {semver: {range: '>=x.y'}}\n");
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->message, "spec.policy.semver.range");
    assert_contains(e->message, ">=x.y");
    eng_config_free(cfg);
    cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: p}\n"
                "spec:\n  imageRepositoryRef: {name: r}\n  policy: {alphabetical: {}}\n"
                "  filterTags: {pattern: '(unclosed'}\n");
    e = only_error(cfg);
    assert_contains(e->message, "spec.filterTags.pattern");
    eng_config_free(cfg);
}

static void config_image_repository_refuses_a_tag_and_unknown_fields(void **state)
{
    (void)state;
    eng_config *cfg =
        parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: r}\n"
              "spec:\n  image: reg.example/app:1.0\n  interval: 1m\n");
    const eng_config_error *e = only_error(cfg);
    assert_contains(e->text, "inline.yaml:5:");
    assert_contains(e->message, "must not contain a tag or digest");
    eng_config_free(cfg);
    cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: "
                "r}\nspec:\n  image: reg.example:5000/app\n  interval: 1m\n  scanAll: true\n");
    e = only_error(cfg);
    assert_contains(e->message, "unknown field \"spec.scanAll\"");
    eng_config_free(cfg);
    cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: "
                "r}\nspec:\n  image: reg.example:5000/app\n  interval: 1m\n"
                "  exclusionList: ['(bad']\n");
    e = only_error(cfg);
    assert_contains(e->message, "spec.exclusionList[0]");
    eng_config_free(cfg);
}

static void config_image_update_git_output_says_the_adapter_is_missing(void **state)
{
    (void)state;
    eng_config *cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
                            "metadata: {name: u, namespace: flux-system}\n"
                            "spec:\n  interval: 1m\n  sourceRef: {kind: OCIRepository, name: s}\n"
                            "  git:\n    commit: {author: {name: bot, email: bot@example.com}}\n");
    const eng_config_error *e = only_error(cfg);
    assert_int_equal(e->code, BERTH_EUNSUPPORTED);
    assert_contains(e->text, "inline.yaml:8:"); /* the value under spec.git */
    assert_contains(e->text, "ImageUpdateAutomation/flux-system/u");
    assert_contains(e->message, "Git output needs the Git adapter, not yet available");
    eng_config_free(cfg);
    cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
                "metadata: {name: u}\nspec:\n  interval: 1m\n"
                "  sourceRef: {kind: GitRepository, name: s}\n");
    e = only_error(cfg);
    assert_contains(e->message, "GitRepository source needs the Git adapter");
    eng_config_free(cfg);
    cfg = parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
                "metadata: {name: u}\nspec:\n  interval: 1m\n"
                "  sourceRef: {kind: OCIRepository, name: s}\n");
    e = only_error(cfg);
    assert_contains(e->message, "missing required field \"spec.publish\"");
    eng_config_free(cfg);
    cfg =
        parse("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
              "metadata: {name: u}\nspec:\n  interval: 1m\n"
              "  sourceRef: {kind: OCIRepository, name: s}\n"
              "  publish: {url: 'oci://reg.example/fleet', signingKey: {secretRef: {name: k}}}\n");
    e = only_error(cfg);
    assert_contains(e->message, "must be oci://HOST/REPO:TAG");
    eng_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_loads_every_kind_from_a_directory_recursively),
        cmocka_unit_test(config_ocirepository_reads_every_field),
        cmocka_unit_test(config_ocirepository_defaults_follow_the_crd),
        cmocka_unit_test(config_kustomization_reads_every_field),
        cmocka_unit_test(config_kustomization_defaults_follow_the_controller),
        cmocka_unit_test(config_secret_data_is_decoded_and_string_data_wins),
        cmocka_unit_test(config_configmap_keeps_data_and_decodes_binary_data),
        cmocka_unit_test(config_kv_to_json_refuses_binary_values_naming_the_key),
        cmocka_unit_test(config_unknown_field_names_file_line_and_path),
        cmocka_unit_test(config_unknown_kind_is_reported_with_its_line),
        cmocka_unit_test(config_missing_required_field_is_named),
        cmocka_unit_test(config_bad_duration_names_the_field_and_the_text),
        cmocka_unit_test(config_invalid_base64_names_the_key_not_the_value),
        cmocka_unit_test(config_unsupported_field_says_berth_does_not_support_it),
        cmocka_unit_test(config_kustomization_reads_kubeconfig_secret_ref),
        cmocka_unit_test(config_kubeconfig_configmap_ref_is_refused_with_its_line),
        cmocka_unit_test(config_kubeconfig_needs_a_secret_ref_with_a_name),
        cmocka_unit_test(config_duplicate_object_names_both_files_and_drops_it),
        cmocka_unit_test(config_duplicate_of_an_invalid_object_still_drops_both),
        cmocka_unit_test(config_syntax_error_keeps_earlier_objects_and_marks_incomplete),
        cmocka_unit_test(config_error_in_a_list_item_names_its_index),
        cmocka_unit_test(config_repeated_key_is_an_error),
        cmocka_unit_test(config_image_kinds_read_every_field),
        cmocka_unit_test(config_image_policy_needs_exactly_one_policy),
        cmocka_unit_test(config_image_policy_bad_range_and_pattern_are_load_errors),
        cmocka_unit_test(config_image_repository_refuses_a_tag_and_unknown_fields),
        cmocka_unit_test(config_image_update_git_output_says_the_adapter_is_missing),
        cmocka_unit_test(config_values_are_type_checked),
        cmocka_unit_test(config_names_and_namespaces_are_validated),
        cmocka_unit_test(config_ocirepository_url_and_timeout_follow_the_crd),
        cmocka_unit_test(config_wrong_api_version_is_unsupported),
        cmocka_unit_test(config_document_without_name_makes_config_incomplete),
        cmocka_unit_test(config_alias_expansion_is_bounded),
        cmocka_unit_test(config_directory_symlink_loop_is_reported_not_followed),
        cmocka_unit_test(config_missing_path_fails_with_enotfound),
        cmocka_unit_test(config_content_digest_ignores_metadata_only),
        cmocka_unit_test(duration_parses_the_crd_grammar),
        cmocka_unit_test(duration_formats_like_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
