/* Unit tests for engine/sched.c (the loop's decisions) and the GC choice of engine/gc.c. */
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
#include "engine/sched.h"

static const char *repo_yaml(const char *name, const char *tag)
{
    static char buf[8][512];
    static int n;
    char *b = buf[n++ % 8];
    snprintf(b, 512,
             "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: %s\n"
             "  namespace: ns\nspec:\n  url: oci://reg.example/%s\n  interval: 1m\n  ref:\n"
             "    tag: %s\n---\n",
             name, name, tag);
    return b;
}

static const char *ks_yaml(const char *name, const char *source, const char *dep, bool prune)
{
    static char buf[8][640];
    static int n;
    char *b = buf[n++ % 8];
    snprintf(b, 640,
             "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
             "  name: %s\n  namespace: ns\nspec:\n  interval: 1m\n  prune: %s\n"
             "  sourceRef:\n    kind: OCIRepository\n    name: %s\n%s%s%s---\n",
             name, prune ? "true" : "false", source, dep ? "  dependsOn:\n    - name: " : "",
             dep ? dep : "", dep ? "\n" : "");
    return b;
}

static eng_config *parse(const char *a, const char *b, const char *c, const char *d)
{
    char *yaml = core_sprintf("%s%s%s%s", a ? a : "", b ? b : "", c ? c : "", d ? d : "");
    eng_config *cfg = NULL;
    assert_non_null(yaml);
    assert_int_equal(eng_config_parse(&cfg, yaml, strlen(yaml), "t.yaml", NULL), 0);
    core_free(yaml);
    return cfg;
}

static size_t pos_of(const eng_sched *s, const char *kind, const char *name)
{
    eng_item *it = eng_sched_find(s, kind, "ns", name);
    assert_non_null(it);
    return eng_sched_pos(s, it);
}

static eng_item *item(const eng_sched *s, const char *kind, const char *name)
{
    eng_item *it = eng_sched_find(s, kind, "ns", name);
    assert_non_null(it);
    return it;
}

/* ---- starting rules ---- */

static void kustomization_waits_while_its_source_is_due_or_in_flight(void **state)
{
    eng_config *cfg = parse(repo_yaml("app", "v1"), ks_yaml("app", "app", NULL, true), NULL, NULL);
    eng_sched s;
    size_t src, ks;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 100, NULL), 0);
    assert_int_equal(s.len, 2);
    src = pos_of(&s, ENG_KIND_OCIREPO, "app");
    ks = pos_of(&s, ENG_KIND_KS, "app");
    assert_true(src < ks); /* sources come first */
    assert_true(eng_sched_can_start(&s, src, 100));
    assert_false(eng_sched_can_start(&s, ks, 100)); /* source due */
    s.items[src]->in_flight = true;
    s.items[src]->due_ms = ENG_SCHED_NEVER;
    assert_false(eng_sched_can_start(&s, ks, 100));  /* source in flight */
    assert_false(eng_sched_can_start(&s, src, 100)); /* never twice at once */
    s.items[src]->in_flight = false;
    s.items[src]->due_ms = 60100;
    assert_true(eng_sched_can_start(&s, ks, 100));
    assert_false(eng_sched_can_start(&s, ks, 99)); /* not due yet */
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void source_waits_while_a_consumer_is_in_flight(void **state)
{
    eng_config *cfg = parse(repo_yaml("app", "v1"), ks_yaml("app", "app", NULL, true), NULL, NULL);
    eng_sched s;
    eng_item *src;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    src = item(&s, ENG_KIND_OCIREPO, "app");
    src->consumers_in_flight = 1;
    assert_false(eng_sched_can_start(&s, pos_of(&s, ENG_KIND_OCIREPO, "app"), 0));
    src->consumers_in_flight = 0;
    assert_true(eng_sched_can_start(&s, pos_of(&s, ENG_KIND_OCIREPO, "app"), 0));
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void dependent_waits_for_its_dependency_and_a_cycle_cannot_deadlock(void **state)
{
    /* infra is named after app, so only dependency order puts it first */
    eng_config *cfg = parse(repo_yaml("src", "v1"), ks_yaml("app", "src", "zinfra", true),
                            ks_yaml("zinfra", "src", NULL, true), NULL);
    eng_config *cyc = parse(repo_yaml("src", "v1"), ks_yaml("a", "src", "b", true),
                            ks_yaml("b", "src", "a", true), NULL);
    eng_sched s;
    size_t app, infra, a, b;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    item(&s, ENG_KIND_OCIREPO, "src")->due_ms = 1000; /* the source is done */
    app = pos_of(&s, ENG_KIND_KS, "app");
    infra = pos_of(&s, ENG_KIND_KS, "zinfra");
    assert_true(infra < app);
    assert_true(eng_sched_can_start(&s, infra, 0));
    assert_false(eng_sched_can_start(&s, app, 0)); /* its dependency is due before it */
    s.items[infra]->in_flight = true;
    s.items[infra]->due_ms = ENG_SCHED_NEVER;
    assert_false(eng_sched_can_start(&s, app, 0)); /* in flight */
    s.items[infra]->in_flight = false;
    s.items[infra]->due_ms = 60000;
    assert_true(eng_sched_can_start(&s, app, 0));
    eng_sched_dispose(&s);

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cyc, NULL, 0, false, 0, NULL), 0);
    item(&s, ENG_KIND_OCIREPO, "src")->due_ms = 1000;
    a = pos_of(&s, ENG_KIND_KS, "a");
    b = pos_of(&s, ENG_KIND_KS, "b");
    assert_true(a < b);                          /* a cycle: name order */
    assert_true(eng_sched_can_start(&s, a, 0));  /* the first of the cycle may start */
    assert_false(eng_sched_can_start(&s, b, 0)); /* the second waits for it */
    eng_sched_dispose(&s);
    eng_config_free(cfg);
    eng_config_free(cyc);
}

static void new_artifact_wakes_exactly_its_consumers(void **state)
{
    eng_config *cfg = parse(repo_yaml("one", "v1"), repo_yaml("two", "v1"),
                            ks_yaml("k1", "one", NULL, true), ks_yaml("k2", "two", "k1", true));
    eng_sched s;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, NULL, 0, false, 0, NULL), 0);
    for (size_t i = 0; i < s.len; i++)
        s.items[i]->due_ms = 60000;
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, ENG_KIND_OCIREPO, "one"), 5, false),
                     1);
    assert_int_equal(item(&s, ENG_KIND_KS, "k1")->due_ms, 5);
    assert_int_equal(item(&s, ENG_KIND_KS, "k2")->due_ms, 60000);
    /* a new applied revision of k1 wakes its dependent k2 */
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, ENG_KIND_KS, "k1"), 7, false), 1);
    assert_int_equal(item(&s, ENG_KIND_KS, "k2")->due_ms, 7);
    /* with once, what already ran is not run again */
    item(&s, ENG_KIND_KS, "k1")->due_ms = ENG_SCHED_NEVER;
    item(&s, ENG_KIND_KS, "k1")->ran = true;
    assert_int_equal(eng_sched_wake_consumers(&s, pos_of(&s, ENG_KIND_OCIREPO, "one"), 9, true), 0);
    assert_int_equal(item(&s, ENG_KIND_KS, "k1")->due_ms, ENG_SCHED_NEVER);
    eng_sched_dispose(&s);
    eng_config_free(cfg);
}

static void backoff_doubles_from_one_second_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(eng_sched_backoff(1, 600000), 1000);
    assert_int_equal(eng_sched_backoff(2, 600000), 2000);
    assert_int_equal(eng_sched_backoff(4, 600000), 8000);
    assert_int_equal(eng_sched_backoff(30, 600000), 600000);
    assert_int_equal(eng_sched_backoff(3, 1500), 1500);
}

/* ---- reload and GC choice ---- */

static void reload_schedules_new_and_changed_now_and_removes_what_left(void **state)
{
    eng_config *c1 = parse(repo_yaml("app", "v1"), ks_yaml("keep", "app", NULL, true),
                           ks_yaml("gone", "app", NULL, true), NULL);
    eng_config *c2 = parse(repo_yaml("app", "v2"), ks_yaml("keep", "app", NULL, true),
                           ks_yaml("new", "app", NULL, true), NULL);
    eng_sched s;
    eng_item *keep, *gone;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 0, NULL), 0);
    for (size_t i = 0; i < s.len; i++)
        s.items[i]->due_ms = 60000;
    keep = item(&s, ENG_KIND_KS, "keep");
    gone = item(&s, ENG_KIND_KS, "gone");
    gone->in_flight = true; /* a job of it runs while the config changes */
    assert_int_equal(eng_sched_build(&s, c2, NULL, 0, false, 500, NULL), 0);
    assert_ptr_equal(item(&s, ENG_KIND_KS, "keep"), keep); /* the same item, state kept */
    assert_int_equal(keep->due_ms, 60000);                 /* unchanged spec: not rushed */
    assert_ptr_equal(keep->ks, eng_config_find_kustomization(c2, "ns", "keep"));
    assert_int_equal(item(&s, ENG_KIND_OCIREPO, "app")->due_ms, 500); /* changed: now */
    assert_int_equal(item(&s, ENG_KIND_KS, "new")->due_ms, 500);      /* new: now */
    assert_ptr_equal(item(&s, ENG_KIND_KS, "gone"), gone);
    assert_true(gone->removed);
    assert_null(gone->ks);
    assert_int_equal(gone->due_ms, 500);
    assert_false(eng_sched_can_start(&s, eng_sched_pos(&s, gone), 500)); /* in flight */
    gone->in_flight = false;
    assert_true(eng_sched_can_start(&s, eng_sched_pos(&s, gone), 500));
    assert_int_equal(eng_sched_pos(&s, gone), s.len - 1); /* removed items come last */
    eng_sched_drop(&s, gone);                             /* collected */
    assert_null(eng_sched_find(&s, ENG_KIND_KS, "ns", "gone"));
    assert_int_equal(s.len, 3);
    eng_sched_dispose(&s);
    eng_config_free(c1);
    eng_config_free(c2);
}

static void objects_with_errors_are_not_collected(void **state)
{
    const char *bad = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                      "metadata:\n  name: broken\n  namespace: ns\nspec:\n  interval: 1m\n"
                      "  prune: true\n  bogus: 1\n  sourceRef:\n    kind: OCIRepository\n"
                      "    name: app\n---\n";
    eng_config *c1 =
        parse(repo_yaml("app", "v1"), ks_yaml("broken", "app", NULL, true), NULL, NULL);
    eng_config *c2 = parse(repo_yaml("app", "v1"), bad, NULL, NULL);
    eng_objkey disk[] = {
        {ENG_KIND_KS, "ns", "broken"}, {ENG_KIND_KS, "ns", "old"}, {ENG_KIND_OCIREPO, "ns", "app"}};
    eng_sched s;
    (void)state;

    assert_non_null(eng_config_find_error(c2, ENG_KIND_KS, "ns", "broken"));
    assert_false(c2->incomplete);
    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 0, NULL), 0);
    assert_int_equal(eng_sched_build(&s, c2, disk, 3, false, 10, NULL), 0);
    /* broken is named by an error: neither scheduled nor collected; old is on disk only */
    assert_null(eng_sched_find(&s, ENG_KIND_KS, "ns", "broken"));
    assert_true(item(&s, ENG_KIND_KS, "old")->removed);
    assert_int_equal(item(&s, ENG_KIND_KS, "old")->due_ms, 10);
    assert_false(item(&s, ENG_KIND_OCIREPO, "app")->removed);
    assert_int_equal(s.len, 2);
    eng_sched_dispose(&s);
    eng_config_free(c1);
    eng_config_free(c2);
}

static void incomplete_config_collects_nothing(void **state)
{
    const char *broken = "apiVersion: v1\nkind: [\n";
    char *yaml = core_sprintf("%s---\n%s", repo_yaml("app", "v1"), broken);
    eng_config *cfg = NULL;
    eng_objkey disk[] = {{ENG_KIND_KS, "ns", "elsewhere"}, {ENG_KIND_OCIREPO, "ns", "gone"}};
    eng_sched s;
    (void)state;

    assert_non_null(yaml);
    assert_int_equal(eng_config_parse(&cfg, yaml, strlen(yaml), "t.yaml", NULL), 0);
    assert_true(cfg->incomplete);
    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, cfg, disk, 2, cfg->incomplete, 0, NULL), 0);
    assert_int_equal(s.len, 1);
    for (size_t i = 0; i < s.len; i++)
        assert_false(s.items[i]->removed);
    eng_sched_dispose(&s);
    eng_config_free(cfg);
    core_free(yaml);
}

static void object_back_before_collection_is_reconciled_not_collected(void **state)
{
    eng_config *c1 = parse(repo_yaml("app", "v1"), NULL, NULL, NULL);
    eng_config *c2 = parse(repo_yaml("other", "v1"), NULL, NULL, NULL);
    eng_config *c3 = parse(repo_yaml("app", "v1"), NULL, NULL, NULL);
    eng_sched s;
    eng_item *app;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 0, NULL), 0);
    app = item(&s, ENG_KIND_OCIREPO, "app");
    app->due_ms = 60000;
    app->in_flight = true;
    assert_int_equal(eng_sched_build(&s, c2, NULL, 0, false, 5, NULL), 0);
    assert_true(app->removed);
    assert_int_equal(eng_sched_build(&s, c3, NULL, 0, false, 9, NULL), 0);
    assert_ptr_equal(item(&s, ENG_KIND_OCIREPO, "app"), app);
    assert_false(app->removed);
    assert_non_null(app->repo);
    assert_int_equal(app->due_ms, 9);
    assert_true(item(&s, ENG_KIND_OCIREPO, "other")->removed);
    eng_sched_dispose(&s);
    eng_config_free(c1);
    eng_config_free(c2);
    eng_config_free(c3);
}

static void item_a_running_job_points_at_outlives_a_reload(void **state)
{
    const char *bad = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n"
                      "  name: app\n  namespace: ns\nspec:\n  url: oci://reg.example/app\n"
                      "  interval: 1m\n  bogus: 1\n---\n";
    eng_config *c1 = parse(repo_yaml("app", "v1"), ks_yaml("app", "app", NULL, true), NULL, NULL);
    eng_config *c2 = parse(bad, ks_yaml("app", "app", NULL, true), NULL, NULL);
    eng_sched s;
    eng_item *src;
    (void)state;

    eng_sched_init(&s);
    assert_int_equal(eng_sched_build(&s, c1, NULL, 0, false, 0, NULL), 0);
    src = item(&s, ENG_KIND_OCIREPO, "app");
    src->consumers_in_flight = 1; /* the Kustomization's job reads it */
    assert_int_equal(eng_sched_build(&s, c2, NULL, 0, false, 5, NULL), 0);
    /* now named by an error: no spec, not collected, but kept for the running job */
    assert_ptr_equal(eng_sched_find(&s, ENG_KIND_OCIREPO, "ns", "app"), src);
    assert_null(src->repo);
    assert_false(src->removed);
    assert_false(eng_sched_is_parked_idle(src));
    assert_int_equal(item(&s, ENG_KIND_KS, "app")->source, ENG_SCHED_NONE);
    src->consumers_in_flight = 0;
    assert_true(eng_sched_is_parked_idle(src));
    eng_sched_drop(&s, src);
    assert_int_equal(s.len, 1);
    eng_sched_dispose(&s);
    eng_config_free(c1);
    eng_config_free(c2);
}

static void prune_on_removal_follows_the_deletion_policy(void **state)
{
    eng_kustomization ks;
    (void)state;

    memset(&ks, 0, sizeof(ks));
    ks.deletion_policy = ENG_DELETION_MIRROR_PRUNE;
    ks.prune = true;
    assert_true(eng_ks_prune_on_removal(&ks));
    ks.prune = false;
    assert_false(eng_ks_prune_on_removal(&ks));
    ks.deletion_policy = ENG_DELETION_DELETE;
    assert_true(eng_ks_prune_on_removal(&ks));
    ks.deletion_policy = ENG_DELETION_WAIT_FOR_TERMINATION;
    assert_true(eng_ks_prune_on_removal(&ks));
    ks.prune = true;
    ks.deletion_policy = ENG_DELETION_ORPHAN;
    assert_false(eng_ks_prune_on_removal(&ks));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kustomization_waits_while_its_source_is_due_or_in_flight),
        cmocka_unit_test(source_waits_while_a_consumer_is_in_flight),
        cmocka_unit_test(dependent_waits_for_its_dependency_and_a_cycle_cannot_deadlock),
        cmocka_unit_test(new_artifact_wakes_exactly_its_consumers),
        cmocka_unit_test(backoff_doubles_from_one_second_up_to_the_cap),
        cmocka_unit_test(reload_schedules_new_and_changed_now_and_removes_what_left),
        cmocka_unit_test(objects_with_errors_are_not_collected),
        cmocka_unit_test(incomplete_config_collects_nothing),
        cmocka_unit_test(object_back_before_collection_is_reconciled_not_collected),
        cmocka_unit_test(item_a_running_job_points_at_outlives_a_reload),
        cmocka_unit_test(prune_on_removal_follows_the_deletion_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
