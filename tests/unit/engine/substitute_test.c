/*
 * Unit tests for engine/substitute.c: Flux's envsubst dialect (table-driven, one row per rule of
 * spec/engine.md §1.4) and post-build substitution over objects (sources, precedence, strategy,
 * opt-out, quoting, errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/build.h"

typedef struct envsubst_row {
    const char *text;
    const char *vars; /* JSON object */
    bool strict;
    const char *want;  /* expected output, or NULL when an error is expected */
    const char *error; /* a word of the expected message */
} envsubst_row;

static const envsubst_row rows[] = {
    {"${a}", "{\"a\":\"x\"}", true, "x", NULL},
    {"a ${a} b ${c:-d}", "{\"a\":\"x\"}", true, "a x b d", NULL},
    {"$a and $HOME stay", "{\"a\":\"x\"}", true, "$a and $HOME stay", NULL},
    {"${b:=def}", "{}", true, "def", NULL},
    {"${b=def}", "{}", true, "def", NULL},
    {"${b:-def}", "{}", true, "def", NULL},
    {"${b:+def}", "{}", true, "def", NULL},
    {"${b:?def}", "{}", true, "def", NULL},
    {"${a:-def}", "{\"a\":\"x\"}", true, "x", NULL},
    {"${a:-def}", "{\"a\":\"\"}", true, "def", NULL},
    {"${b:=x y: z/w}", "{}", true, "x y: z/w", NULL},
    {"${b:=${a}}", "{\"a\":\"x\"}", true, "x", NULL},
    {"${b:=pre-${a}-post}", "{\"a\":\"x\"}", true, "pre-x-post", NULL},
    {"${b-def}", "{}", true, NULL, "missing closing brace"},
    {"${b}", "{}", true, NULL, "variable not set (strict mode): \"b\""},
    {"${b}", "{}", false, "", NULL},
    {"$${a}", "{\"a\":\"x\"}", true, "${a}", NULL},
    {"echo $$HOME", "{}", true, "echo $HOME", NULL},
    {"cost: 5$", "{}", true, "cost: 5$", NULL},
    {"${", "{}", true, NULL, "unable to parse variable name"},
    {"${}", "{}", true, NULL, "unable to parse variable name"},
    {"${x", "{\"x\":\"1\"}", true, NULL, "missing closing brace"},
    {"${x:-abc", "{}", true, NULL, "unable to parse substitution within function"},
    {"${#a}", "{\"a\":\"hello\"}", true, "5", NULL},
    {"${a:1}", "{\"a\":\"hello\"}", true, "ello", NULL},
    {"${a:1:3}", "{\"a\":\"hello\"}", true, "ell", NULL},
    {"${a:10}", "{\"a\":\"hello\"}", true, "", NULL},
    {"${a^}", "{\"a\":\"hello\"}", true, "Hello", NULL},
    {"${a^^}", "{\"a\":\"hello\"}", true, "HELLO", NULL},
    {"${a,}", "{\"a\":\"HELLO\"}", true, "hELLO", NULL},
    {"${a,,}", "{\"a\":\"HELLO\"}", true, "hello", NULL},
    {"${a#*/}", "{\"a\":\"a/b/c\"}", true, "b/c", NULL},
    {"${a##*/}", "{\"a\":\"a/b/c\"}", true, "c", NULL},
    {"${a%/*}", "{\"a\":\"a/b/c\"}", true, "a/b", NULL},
    {"${a%%/*}", "{\"a\":\"a/b/c\"}", true, "a", NULL},
    {"${a#[ab]}", "{\"a\":\"abc\"}", true, "bc", NULL},
    {"${a/b/x}", "{\"a\":\"abab\"}", true, "axab", NULL},
    {"${a//b/x}", "{\"a\":\"abab\"}", true, "axax", NULL},
    {"${a/#ab/x}", "{\"a\":\"abab\"}", true, "xab", NULL},
    {"${a/%ab/x}", "{\"a\":\"abab\"}", true, "abx", NULL},
    {"${a//b}", "{\"a\":\"abab\"}", true, NULL, "bad substitution"}, /* '}' is a pattern char */
    {"${a/\\//-}", "{\"a\":\"a/b\"}", true, "a-b", NULL},
    {"${#b}", "{}", true, NULL, "strict mode"},
};

static void assert_error_text(const berth_error *err, const char *word)
{
    char *text = berth_error_text(err);
    assert_non_null(text);
    if (!strstr(text, word))
        fail_msg("error \"%s\" lacks \"%s\"", text, word);
    free(text);
}

static json_t *vars_of(const char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    assert_non_null(v);
    return v;
}

static void envsubst_follows_the_flux_dialect(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        const envsubst_row *r = &rows[i];
        json_t *vars = vars_of(r->vars);
        berth_error *err = NULL;
        char *out = NULL;
        int rc = eng_envsubst(&out, r->text, vars, r->strict, &err);
        if (r->want && (rc != 0 || strcmp(out, r->want) != 0))
            fail_msg("row %zu \"%s\": rc %d out \"%s\", want \"%s\"", i, r->text, rc,
                     out ? out : "(null)", r->want);
        if (!r->want) {
            if (rc != BERTH_EINVAL || !err || !strstr(berth_error_message(err), r->error))
                fail_msg("row %zu \"%s\": rc %d message \"%s\", want \"%s\"", i, r->text, rc,
                         err ? berth_error_message(err) : "(none)", r->error);
            assert_null(out);
        }
        core_free(out);
        berth_error_free(err);
        json_decref(vars);
    }
}

/* A one-object array parsed like build output (quoted strings marked). */
static json_t *objects_of(const char *yaml)
{
    json_t *docs = NULL;
    assert_int_equal(eng_yaml_parse(&docs, yaml, strlen(yaml), ENG_YAML_MARK_QUOTED, "t", NULL), 0);
    return docs;
}

static const char *data_str(const json_t *objects, size_t i, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(objects, i), "data"), key));
}

static const char cm_yaml[] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
                              "data:\n  quoted: \"${n}\"\n  plain: ${n}\n  joined: ${a}\n";

static void substitute_keeps_quoted_placeholders_strings(void **state)
{
    json_t *objects = objects_of(cm_yaml);
    json_t *inline_vars = vars_of("{\"n\":\"5\",\"a\":\"x\\ny\"}");
    eng_postbuild pb = {inline_vars, NULL, 0, false, true};
    const json_t *data;
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, NULL), 0);
    data = json_object_get(json_array_get(objects, 0), "data");
    assert_string_equal(json_string_value(json_object_get(data, "quoted")), "5");
    assert_int_equal(json_integer_value(json_object_get(data, "plain")), 5);
    assert_true(json_is_integer(json_object_get(data, "plain")));
    assert_string_equal(json_string_value(json_object_get(data, "joined")), "xy");
    json_decref(objects);
    json_decref(inline_vars);
}

static void substitute_later_sources_win_and_inline_wins_over_all(void **state)
{
    json_t *objects = objects_of(cm_yaml);
    json_t *first = vars_of("{\"n\":\"1\",\"a\":\"from-first\"}");
    json_t *second = vars_of("{\"n\":\"2\"}");
    json_t *inline_vars = vars_of("{\"a\":\"inline\"}");
    eng_subst_from from[3] = {{"ConfigMap", "first", false, first},
                              {"Secret", "absent", true, NULL},
                              {"Secret", "second", false, second}};
    eng_postbuild pb = {inline_vars, from, 3, false, true};
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, NULL), 0);
    assert_string_equal(data_str(objects, 0, "quoted"), "2");
    assert_string_equal(data_str(objects, 0, "joined"), "inline");
    json_decref(objects);
    json_decref(first);
    json_decref(second);
    json_decref(inline_vars);
}

static void substitute_fails_on_missing_required_source(void **state)
{
    json_t *objects = objects_of(cm_yaml);
    eng_subst_from from[1] = {{"Secret", "creds", false, NULL}};
    eng_postbuild pb = {NULL, from, 1, false, true};
    berth_error *err = NULL;
    char *text;
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, &err), BERTH_ENOTFOUND);
    text = berth_error_text(err);
    assert_non_null(strstr(text, "post build failed for 'ConfigMap.v1.[noGrp]/cm'"));
    assert_non_null(strstr(text, "substitute from 'Secret/creds' error: secrets \"creds\""));
    free(text);
    berth_error_free(err);
    json_decref(objects);
}

static void substitute_without_variables_leaves_objects_unless_always(void **state)
{
    const char yaml[] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
                        "data:\n  v: ${x:=dflt}\n  w: ${undefined}\n";
    json_t *objects = objects_of(yaml), *empty = vars_of("{}");
    eng_postbuild pb = {empty, NULL, 0, false, true};
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, NULL), 0);
    assert_string_equal(data_str(objects, 0, "v"), "${x:=dflt}");
    pb.always = true;
    pb.strict = false;
    assert_int_equal(eng_substitute(objects, &pb, NULL), 0);
    assert_string_equal(data_str(objects, 0, "v"), "dflt");
    /* non-strict: an undefined variable is empty, and `w: ` reads back as null */
    assert_true(
        json_is_null(json_object_get(json_object_get(json_array_get(objects, 0), "data"), "w")));
    json_decref(objects);
    objects = objects_of(yaml);
    pb.strict = true;
    assert_int_equal(eng_substitute(objects, &pb, &err), BERTH_EINVAL);
    assert_error_text(err, "variable not set (strict mode): \"undefined\"");
    berth_error_free(err);
    json_decref(objects);
    json_decref(empty);
}

static void substitute_rejects_invalid_variable_names(void **state)
{
    json_t *objects = objects_of(cm_yaml), *vars = vars_of("{\"n\":\"1\",\"1bad\":\"x\"}");
    eng_postbuild pb = {vars, NULL, 0, false, true};
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, &err), BERTH_EINVAL);
    assert_error_text(err, "envsubst error: '1bad' var name is invalid");
    berth_error_free(err);
    json_decref(objects);
    json_decref(vars);
}

static void substitute_honours_the_opt_out_annotation_and_label(void **state)
{
    const char yaml[] =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n"
        "    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  v: ${n}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels:\n"
        "    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  v: ${n}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n"
        "    kustomize.toolkit.fluxcd.io/substitute: Disabled\ndata:\n  v: ${n}\n";
    json_t *objects = objects_of(yaml), *vars = vars_of("{\"n\":\"one\"}");
    eng_postbuild pb = {vars, NULL, 0, false, true};
    (void)state;
    assert_int_equal(eng_substitute(objects, &pb, NULL), 0);
    assert_string_equal(data_str(objects, 0, "v"), "${n}");
    assert_string_equal(data_str(objects, 1, "v"), "${n}");
    assert_string_equal(data_str(objects, 2, "v"), "one");
    json_decref(objects);
    json_decref(vars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envsubst_follows_the_flux_dialect),
        cmocka_unit_test(substitute_keeps_quoted_placeholders_strings),
        cmocka_unit_test(substitute_later_sources_win_and_inline_wins_over_all),
        cmocka_unit_test(substitute_fails_on_missing_required_source),
        cmocka_unit_test(substitute_without_variables_leaves_objects_unless_always),
        cmocka_unit_test(substitute_rejects_invalid_variable_names),
        cmocka_unit_test(substitute_honours_the_opt_out_annotation_and_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
