/* Unit tests for images/reconcile.c: which object wakes which (the engine's scheduling edges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "images/policy.h"
#include "images/reconcile.h"

static const char cfg_yaml[] =
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: fleet, namespace: apps}\n"
    "spec: {url: 'oci://reg.example/fleet/config', interval: 1m}\n"
    "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: other, namespace: apps}\n"
    "spec: {url: 'oci://reg.example/fleet/config-old', interval: 1m}\n"
    "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: src, namespace: apps}\n"
    "spec: {url: 'oci://reg.example/fleet/src', interval: 1m}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    "metadata: {name: app, namespace: apps}\nspec: {image: reg.example/app, interval: 1m}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    "metadata: {name: web, namespace: apps}\nspec: {image: reg.example/web, interval: 1m}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
    "metadata: {name: app, namespace: apps, labels: {fleet: 'yes'}}\n"
    "spec: {imageRepositoryRef: {name: app}, policy: {numerical: {order: desc}}}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
    "metadata: {name: web, namespace: apps}\n"
    "spec: {imageRepositoryRef: {name: web}, policy: {semver: {range: '1.x'}}}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
    "metadata: {name: fleet, namespace: apps}\n"
    "spec:\n  interval: 1m\n  sourceRef: {kind: OCIRepository, name: src}\n"
    "  policySelector: {matchLabels: {fleet: 'yes'}}\n"
    "  publish: {url: 'oci://reg.example/fleet/config:latest', signingKey: {secretRef: {name: "
    "k}}}\n";

static eng_config *load(void)
{
    eng_config *cfg = NULL;
    assert_int_equal(eng_config_parse(&cfg, cfg_yaml, strlen(cfg_yaml), "t.yaml", NULL), 0);
    for (size_t i = 0; i < cfg->errors_len; i++)
        print_message("error: %s\n", cfg->errors[i].text);
    assert_int_equal(cfg->errors_len, 0);
    return cfg;
}

static void consumes_policy_after_its_own_repository_only(void **state)
{
    (void)state;
    eng_config *cfg = load();
    const eng_imagepolicy *app = eng_config_find_imagepolicy(cfg, "apps", "app");
    assert_true(img_consumes(IMG_KIND_POLICY, app, IMG_KIND_REPO,
                             eng_config_find_imagerepo(cfg, "apps", "app")));
    assert_false(img_consumes(IMG_KIND_POLICY, app, IMG_KIND_REPO,
                              eng_config_find_imagerepo(cfg, "apps", "web")));
    eng_config_free(cfg);
}

static void consumes_automation_after_selected_policies_and_its_source(void **state)
{
    (void)state;
    eng_config *cfg = load();
    const eng_imageupdate *u = eng_config_find_imageupdate(cfg, "apps", "fleet");
    assert_true(img_consumes(IMG_KIND_UPDATE, u, IMG_KIND_POLICY,
                             eng_config_find_imagepolicy(cfg, "apps", "app")));
    /* web has no fleet=yes label: the selector leaves it out */
    assert_false(img_consumes(IMG_KIND_UPDATE, u, IMG_KIND_POLICY,
                              eng_config_find_imagepolicy(cfg, "apps", "web")));
    assert_true(img_consumes(IMG_KIND_UPDATE, u, ENG_KIND_OCIREPO,
                             eng_config_find_ocirepo(cfg, "apps", "src")));
    assert_false(img_consumes(IMG_KIND_UPDATE, u, ENG_KIND_OCIREPO,
                              eng_config_find_ocirepo(cfg, "apps", "fleet")));
    eng_config_free(cfg);
}

static void consumes_ocirepository_after_an_automation_publishing_to_its_url(void **state)
{
    (void)state;
    eng_config *cfg = load();
    const eng_imageupdate *u = eng_config_find_imageupdate(cfg, "apps", "fleet");
    assert_true(img_consumes(ENG_KIND_OCIREPO, eng_config_find_ocirepo(cfg, "apps", "fleet"),
                             IMG_KIND_UPDATE, u));
    /* a URL that merely starts with the published repository is another repository */
    assert_false(img_consumes(ENG_KIND_OCIREPO, eng_config_find_ocirepo(cfg, "apps", "other"),
                              IMG_KIND_UPDATE, u));
    assert_false(img_consumes(ENG_KIND_OCIREPO, eng_config_find_ocirepo(cfg, "apps", "src"),
                              IMG_KIND_UPDATE, u));
    eng_config_free(cfg);
}

static void policy_spec_of_maps_the_config_fields(void **state)
{
    (void)state;
    eng_config *cfg = load();
    img_policy_spec spec;
    img_policy_spec_of(&spec, eng_config_find_imagepolicy(cfg, "apps", "app"));
    assert_int_equal(spec.kind, IMG_POLICY_NUMERICAL);
    assert_int_equal(spec.order, IMG_ORDER_DESC);
    img_policy_spec_of(&spec, eng_config_find_imagepolicy(cfg, "apps", "web"));
    assert_int_equal(spec.kind, IMG_POLICY_SEMVER);
    assert_string_equal(spec.semver_range, "1.x");
    assert_int_equal(spec.order, IMG_ORDER_ASC);
    assert_string_equal(
        img_meta(IMG_KIND_POLICY, eng_config_find_imagepolicy(cfg, "apps", "web"))->name, "web");
    assert_null(img_meta(ENG_KIND_KS, cfg));
    eng_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumes_policy_after_its_own_repository_only),
        cmocka_unit_test(consumes_automation_after_selected_policies_and_its_source),
        cmocka_unit_test(consumes_ocirepository_after_an_automation_publishing_to_its_url),
        cmocka_unit_test(policy_spec_of_maps_the_config_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
