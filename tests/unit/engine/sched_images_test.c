/* Unit tests for the image kinds in engine/sched.c: their order, starting rules, wake-ups and
 * removal (the loop's decisions for ImageRepository, ImagePolicy, ImageUpdateAutomation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/sched.h"
#include "images/reconcile.h"

static const char sources[] =
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: fleet, namespace: ns}\n"
    "spec: {url: 'oci://reg.example/fleet/config', interval: 1m}\n"
    "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: other, namespace: ns}\n"
    "spec: {url: 'oci://reg.example/fleet/other', interval: 1m}\n"
    "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
    "metadata: {name: src, namespace: ns}\n"
    "spec: {url: 'oci://reg.example/fleet/src', interval: 1m}\n"
    "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
    "metadata: {name: fleet, namespace: ns}\n"
    "spec: {interval: 1m, prune: true, sourceRef: {kind: OCIRepository, name: fleet}}\n";

static const char images[] =
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
    "metadata: {name: auto, namespace: ns}\n"
    "spec:\n  interval: 1m\n  sourceRef: {kind: OCIRepository, name: src}\n"
    "  policySelector: {matchLabels: {fleet: 'yes'}}\n"
    "  publish: {url: 'oci://reg.example/fleet/config:latest', signingKey: {secretRef: {name: "
    "k}}}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
    "metadata: {name: app, namespace: ns, labels: {fleet: 'yes'}}\n"
    "spec: {imageRepositoryRef: {name: app}, policy: {numerical: {order: desc}}}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
    "metadata: {name: web, namespace: ns}\n"
    "spec: {imageRepositoryRef: {name: web}, policy: {semver: {range: '1.x'}}}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    "metadata: {name: app, namespace: ns}\nspec: {image: reg.example/app, interval: 1m}\n"
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    "metadata: {name: web, namespace: ns}\nspec: {image: reg.example/web, interval: 1m}\n";

static eng_config *parse(bool with_images)
{
    char *yaml = core_sprintf("%s%s", sources, with_images ? images : "");
    eng_config *cfg = NULL;
    assert_non_null(yaml);
    assert_int_equal(eng_config_parse(&cfg, yaml, strlen(yaml), "t.yaml", NULL), 0);
    for (size_t i = 0; i < cfg->errors_len; i++)
        print_message("error: %s\n", cfg->errors[i].text);
    assert_int_equal(cfg->errors_len, 0);
    core_free(yaml);
    return cfg;
}

static eng_item *item(const eng_sched *s, const char *kind, const char *name)
{
    eng_item *it = eng_sched_find(s, kind, "ns", name);
    assert_non_null(it);
    return it;
}

static size_t pos_of(const eng_sched *s, const char *kind, const char *name)
{
    return eng_sched_pos(s, item(s, kind, name));
}

static void all_due_at(eng_sched *s, int64_t t)
{
    for (size_t i = 0; i < s->len; i++)
        s->items[i]->due_ms = t;
}

static void image_objects_are_items_ordered_after_their_producers(void **state)
{
    eng_config *cfg = parse(true);
    eng_sched s;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    assert_int_equal(s.len, 4 + 5);
    /* written automation first, policies, then repositories: the table puts producers first */
    assert_true(pos_of(&s, IMG_KIND_REPO, "app") < pos_of(&s, IMG_KIND_POLICY, "app"));
    assert_true(pos_of(&s, IMG_KIND_REPO, "web") < pos_of(&s, IMG_KIND_POLICY, "app"));
    assert_true(pos_of(&s, IMG_KIND_POLICY, "web") < pos_of(&s, IMG_KIND_UPDATE, "auto"));
    assert_ptr_equal(item(&s, IMG_KIND_POLICY, "app")->img,
                     eng_config_find_imagepolicy(cfg, "ns", "app"));
    assert_int_equal(item(&s, IMG_KIND_UPDATE, "auto")->source,
                     pos_of(&s, ENG_KIND_OCIREPO, "src"));
    assert_int_equal(item(&s, IMG_KIND_REPO, "app")->due_ms, 0); /* new: due now */
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void policy_waits_for_its_repository_automation_for_its_policies_and_source(void **state)
{
    eng_config *cfg = parse(true);
    eng_sched s;
    size_t repo, pol, web, upd;
    eng_item *src;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    repo = pos_of(&s, IMG_KIND_REPO, "app");
    pol = pos_of(&s, IMG_KIND_POLICY, "app");
    web = pos_of(&s, IMG_KIND_POLICY, "web");
    upd = pos_of(&s, IMG_KIND_UPDATE, "auto");
    src = item(&s, ENG_KIND_OCIREPO, "src");
    assert_true(eng_sched_can_start(&s, repo, 0));
    assert_false(eng_sched_can_start(&s, pol, 0)); /* its repository is due */
    s.items[repo]->in_flight = true;
    s.items[repo]->due_ms = ENG_SCHED_NEVER;
    assert_false(eng_sched_can_start(&s, pol, 0));  /* its repository is in flight */
    assert_false(eng_sched_can_start(&s, repo, 0)); /* never twice at once */
    s.items[repo]->in_flight = false;
    s.items[repo]->due_ms = 60000;
    assert_true(eng_sched_can_start(&s, pol, 0));
    assert_false(eng_sched_can_start(&s, web, 0)); /* its own repository web is still due */
    item(&s, IMG_KIND_REPO, "web")->due_ms = 60000;
    assert_true(eng_sched_can_start(&s, web, 0));

    assert_false(eng_sched_can_start(&s, upd, 0)); /* the selected policy app is due */
    s.items[pol]->due_ms = 60000;
    assert_false(eng_sched_can_start(&s, upd, 0)); /* its source is due */
    src->due_ms = 60000;
    assert_true(eng_sched_can_start(&s, upd, 0)); /* web is due, but not selected */
    src->in_flight = true;
    assert_false(eng_sched_can_start(&s, upd, 0)); /* its source is in flight */
    src->in_flight = false;
    s.items[pol]->in_flight = true;
    assert_false(eng_sched_can_start(&s, upd, 0)); /* a selected policy is in flight */
    s.items[pol]->in_flight = false;
    /* an automation reading the source holds the source back, as a Kustomization does */
    src->due_ms = 0;
    src->consumers_in_flight = 1;
    assert_false(eng_sched_can_start(&s, eng_sched_pos(&s, src), 0));
    src->consumers_in_flight = 0;
    assert_true(eng_sched_can_start(&s, eng_sched_pos(&s, src), 0));
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void new_output_wakes_exactly_its_image_consumers(void **state)
{
    eng_config *cfg = parse(true);
    eng_sched s;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    all_due_at(&s, 60000);
    /* new tags of app: the policy app, nothing else */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, IMG_KIND_REPO, "app"), 5, false), 1);
    assert_int_equal(item(&s, IMG_KIND_POLICY, "app")->due_ms, 5);
    assert_int_equal(item(&s, IMG_KIND_POLICY, "web")->due_ms, 60000);
    assert_int_equal(item(&s, IMG_KIND_UPDATE, "auto")->due_ms, 60000);
    /* a new latestRef of app: the automation selecting it */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, IMG_KIND_POLICY, "app"), 6, false), 1);
    assert_int_equal(item(&s, IMG_KIND_UPDATE, "auto")->due_ms, 6);
    /* web is not selected: nothing */
    item(&s, IMG_KIND_UPDATE, "auto")->due_ms = 60000;
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, IMG_KIND_POLICY, "web"), 7, false), 0);
    /* a publication: the OCIRepository of that repository, not the others, no Kustomization */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, IMG_KIND_UPDATE, "auto"), 8, false),
                     1);
    assert_int_equal(item(&s, ENG_KIND_OCIREPO, "fleet")->due_ms, 8);
    assert_int_equal(item(&s, ENG_KIND_OCIREPO, "other")->due_ms, 60000);
    assert_int_equal(item(&s, ENG_KIND_KS, "fleet")->due_ms, 60000);
    /* a new artifact of the automation's source: the automation (and no Kustomization reads it) */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, ENG_KIND_OCIREPO, "src"), 9, false),
                     1);
    assert_int_equal(item(&s, IMG_KIND_UPDATE, "auto")->due_ms, 9);
    /* the fleet source's new artifact still wakes its Kustomization only */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, ENG_KIND_OCIREPO, "fleet"), 10, false),
                     1);
    assert_int_equal(item(&s, ENG_KIND_KS, "fleet")->due_ms, 10);
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void removed_image_objects_become_removed_items(void **state)
{
    eng_config *c1 = parse(true), *c2 = parse(false);
    eng_objkey disk[] = {{"ImageRepository", "ns", "old"}, {"ImagePolicy", "ns", "web"}};
    eng_sched s;
    eng_item *it;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 0, NULL), 0);
    all_due_at(&s, 60000);
    assert_int_equal(eng_sched_build(&s, c2, disk, 2, false, 50, NULL), 0);
    assert_int_equal(s.len, 4 + 5 + 1); /* the 5 image objects and "old" are removed items */
    it = item(&s, IMG_KIND_REPO, "old");
    assert_string_equal(it->kind, IMG_KIND_REPO);
    assert_true(it->removed);
    assert_int_equal(it->due_ms, 50);
    it = item(&s, IMG_KIND_UPDATE, "auto");
    assert_true(it->removed);
    assert_null(it->img);
    assert_true(eng_sched_can_start(&s, eng_sched_pos(&s, it), 50)); /* collected now */
    /* back in the config before collection: reconciled again, not collected */
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 60, NULL), 0);
    assert_false(item(&s, IMG_KIND_UPDATE, "auto")->removed);
    assert_non_null(item(&s, IMG_KIND_UPDATE, "auto")->img);
    assert_int_equal(item(&s, IMG_KIND_UPDATE, "auto")->due_ms, 60);
    assert_true(item(&s, IMG_KIND_REPO, "old")->removed);
    eng_sched_dispose(&s);
    eng_config_free(c1);
    eng_config_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_objects_are_items_ordered_after_their_producers),
        cmocka_unit_test(policy_waits_for_its_repository_automation_for_its_policies_and_source),
        cmocka_unit_test(new_output_wakes_exactly_its_image_consumers),
        cmocka_unit_test(removed_image_objects_become_removed_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
