/*
 * Unit tests for engine/yaml.c: scalar typing as kustomize (go-yaml v3) reads it, text mode,
 * quoting marks, anchors and merge keys, the limits that protect against hostile input, and an
 * emitter whose output reads back as the same tree.
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
#include "engine/yaml.h"

static json_t *parse_ok(const char *yaml, unsigned flags)
{
    json_t *docs = NULL;
    berth_error *err = NULL;
    int rc = eng_yaml_parse(&docs, yaml, strlen(yaml), flags, "t.yaml", &err);
    if (rc != 0)
        fail_msg("parsing \"%s\": %s", yaml, err ? berth_error_message(err) : "?");
    return docs;
}

static void parse_fails(const char *yaml, unsigned flags, int code, const char *word)
{
    json_t *docs = NULL;
    berth_error *err = NULL;
    int rc = eng_yaml_parse(&docs, yaml, strlen(yaml), flags, "t.yaml", &err);
    if (rc != code || !err || !strstr(berth_error_message(err), word))
        fail_msg("\"%.40s\": rc %d message \"%s\", want %d \"%s\"", yaml, rc,
                 err ? berth_error_message(err) : "(none)", code, word);
    assert_null(docs);
    berth_error_free(err);
}

/* The value of key v in the only document of yaml, compared with want (JSON). */
static void expect_read(const char *yaml, unsigned flags, const char *want)
{
    json_t *docs = parse_ok(yaml, flags);
    json_t *expected = json_loads(want, JSON_DECODE_ANY, NULL);
    json_t *got = json_object_get(json_array_get(docs, 0), "v");
    char *text = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
    assert_non_null(expected);
    if (!got || !json_equal(got, expected))
        fail_msg("\"%s\" read as %s, want %s", yaml, text ? text : "(missing)", want);
    free(text);
    json_decref(expected);
    json_decref(docs);
}

static void yaml_types_plain_scalars_like_go_yaml_v3(void **state)
{
    static const char *const cases[][2] = {
        {"v: 1", "1"},
        {"v: -42", "-42"},
        {"v: +12", "12"},
        {"v: 0x1F", "31"},
        {"v: 0o17", "15"},
        {"v: 017", "15"},
        {"v: 0b101", "5"},
        {"v: 1_000", "1000"},
        {"v: 08", "8.0"},
        {"v: 1.5e3", "1500.0"},
        {"v: .5", "0.5"},
        {"v: 1.", "1.0"},
        {"v: 9223372036854775808", "9223372036854775808.0"},
        {"v: 1e400", "\"1e400\""},
        {"v: true", "true"},
        {"v: False", "false"},
        {"v: TRUE", "true"},
        {"v: yes", "\"yes\""},
        {"v: on", "\"on\""},
        {"v: ~", "null"},
        {"v:", "null"},
        {"v: Null", "null"},
        {"v: -x", "\"-x\""},
        {"v: .inf", "\".inf\""},
        {"v: 2001-12-14", "\"2001-12-14\""},
        {"v: 1.2.3", "\"1.2.3\""},
        {"v: \"123\"", "\"123\""},
        {"v: '1.5'", "\"1.5\""},
        {"v: !!str 123", "\"123\""},
        {"v: !!float 3", "3.0"},
        {"v: ! 12", "\"12\""},
        {"v: |\n  a\n  b\n", "\"a\\nb\\n\""},
        {"v: >-\n  a\n  b\n", "\"a b\""},
        {"v: ${x}", "\"${x}\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        expect_read(cases[i][0], 0, cases[i][1]);
}

static void yaml_reads_yaml11_booleans_only_when_asked(void **state)
{
    (void)state;
    expect_read("v: on", ENG_YAML_YAML11_BOOLS, "true");
    expect_read("v: No", ENG_YAML_YAML11_BOOLS, "false");
    expect_read("v: \"on\"", ENG_YAML_YAML11_BOOLS, "\"on\"");
    expect_read("v: on", 0, "\"on\"");
}

static void yaml_text_mode_keeps_the_source_text(void **state)
{
    (void)state;
    expect_read("v: 1.20", ENG_YAML_TEXT_SCALARS, "\"1.20\"");
    expect_read("v: 007", ENG_YAML_TEXT_SCALARS, "\"007\"");
    expect_read("v: true", ENG_YAML_TEXT_SCALARS, "\"true\"");
    expect_read("v: ~", ENG_YAML_TEXT_SCALARS, "null");
    expect_read("v: [1, {a: 2}]", ENG_YAML_TEXT_SCALARS, "[\"1\", {\"a\": \"2\"}]");
}

static void yaml_marks_quoted_placeholders(void **state)
{
    json_t *docs = parse_ok("d: \"${x}\"\ns: '${x}'\np: ${x}\nq: \"no var\"\nl: |\n  ${x}\n",
                            ENG_YAML_MARK_QUOTED);
    json_t *doc = json_array_get(docs, 0);
    (void)state;
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "d")), 'd');
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "s")), 's');
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "l")), 'l');
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "p")), 0);
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "q")), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "d")), "${x}");
    assert_int_equal(eng_yaml_strlen(json_object_get(doc, "d")), 4);
    assert_int_equal(eng_yaml_unmark(docs), 0);
    assert_int_equal(eng_yaml_mark(json_object_get(doc, "d")), 0);
    assert_int_equal(json_string_length(json_object_get(doc, "d")), 4);
    json_decref(docs);
}

static void yaml_expands_anchors_and_merge_keys(void **state)
{
    json_t *docs = parse_ok("base: &b {a: 1, b: 2}\n"
                            "other: &o {c: 3}\n"
                            "m:\n  <<: [*b, *o]\n  b: 20\n"
                            "l: *b\n",
                            0);
    json_t *want = json_loads("{\"base\":{\"a\":1,\"b\":2},\"other\":{\"c\":3},"
                              "\"m\":{\"b\":20,\"a\":1,\"c\":3},\"l\":{\"a\":1,\"b\":2}}",
                              0, NULL);
    (void)state;
    assert_true(json_equal(json_array_get(docs, 0), want));
    /* an alias is a copy: changing it leaves the anchor alone */
    json_object_set_new(json_object_get(json_array_get(docs, 0), "l"), "a", json_integer(9));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_array_get(docs, 0), "base"), "a")),
        1);
    json_decref(want);
    json_decref(docs);
}

static void yaml_drops_empty_documents(void **state)
{
    json_t *docs = parse_ok("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n...\n", 0);
    (void)state;
    assert_int_equal(json_array_size(docs), 2);
    json_decref(docs);
    docs = parse_ok("", 0);
    assert_int_equal(json_array_size(docs), 0);
    json_decref(docs);
}

static void yaml_rejects_duplicate_keys(void **state)
{
    (void)state;
    parse_fails("a: 1\nb: 2\na: 3\n", 0, BERTH_EINVAL, "mapping key \"a\" already defined");
    parse_fails("a: 1\nb: 2\na: 3\n", 0, BERTH_EINVAL, "line 3 column 1");
}

static void yaml_rejects_malformed_input(void **state)
{
    (void)state;
    parse_fails("a: [1, 2\n", 0, BERTH_EINVAL, "parsing \"t.yaml\": line");
    parse_fails("a: *nowhere\n", 0, BERTH_EINVAL, "unknown anchor");
    parse_fails("? [a, b]\n: c\n", 0, BERTH_EINVAL, "only scalar mapping keys");
    parse_fails("a: !!int abc\n", 0, BERTH_EINVAL, "explicit tag");
    parse_fails("<<: 1\n", 0, BERTH_EINVAL, "merge key value");
}

static void yaml_limits_alias_expansion(void **state)
{
    berth_buf b;
    (void)state;
    berth_buf_init(&b, 0);
    assert_int_equal(berth_buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"), 0);
    for (int i = 1; i < 12; i++) {
        assert_int_equal(berth_buf_printf(&b, "a%d: &a%d [", i, i), 0);
        for (int k = 0; k < 10; k++)
            assert_int_equal(berth_buf_printf(&b, "%s*a%d", k ? ", " : "", i - 1), 0);
        assert_int_equal(berth_buf_puts(&b, "]\n"), 0);
    }
    parse_fails(b.ptr, 0, BERTH_EINVAL, "too many nodes");
    berth_buf_dispose(&b);
}

static void yaml_limits_nesting(void **state)
{
    berth_buf b;
    (void)state;
    berth_buf_init(&b, 0);
    for (int i = 0; i < ENG_YAML_MAX_DEPTH + 5; i++)
        assert_int_equal(berth_buf_puts(&b, "["), 0);
    parse_fails(b.ptr, 0, BERTH_EINVAL, "nesting too deep");
    berth_buf_dispose(&b);
}

static char *emit(const json_t *docs)
{
    berth_buf b;
    berth_buf_init(&b, 0);
    assert_int_equal(eng_yaml_emit(&b, docs, NULL), 0);
    return berth_buf_detach(&b);
}

static void yaml_emit_quotes_strings_that_would_change_type(void **state)
{
    json_t *docs = json_loads("[{\"a\":\"123\",\"b\":\"yes\",\"c\":\"true\",\"d\":\"\","
                              "\"e\":\"2001-12-14\",\"f\":\"plain text\",\"g\":\"1.5\","
                              "\"h\":\"null\",\"i\":\"~\",\"j\":\"0o17\",\"k\":\"off\","
                              "\"l\":\"1:20\",\"m\":\".inf\",\"n\":\"- x\",\"o\":\"#x\"}]",
                              0, NULL);
    char *text = emit(docs);
    json_t *back = parse_ok(text, ENG_YAML_YAML11_BOOLS);
    (void)state;
    if (!json_equal(docs, back))
        fail_msg("emitted yaml does not read back:\n%s", text);
    assert_non_null(strstr(text, "a: \"123\"\n"));
    assert_non_null(strstr(text, "b: \"yes\"\n"));
    assert_non_null(strstr(text, "f: plain text\n"));
    json_decref(back);
    json_decref(docs);
    free(text);
}

static void yaml_emit_round_trips_values(void **state)
{
    json_t *docs = json_loads(
        "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"},"
        "\"data\":{\"multi\":\"line one\\nline two\\n\",\"trail\":\"no newline\\nat end\","
        "\"spaces\":\"  lead and trail  \",\"unicode\":\"h\\u00e9llo \\u2603\","
        "\"tab\":\"a\\tb\",\"quote\":\"it's \\\"q\\\"\"},"
        "\"n\":[1,-2,0.1,1e21,2.5e-7,true,false,null,{},[]]},"
        "{\"second\":\"doc\"}]",
        0, NULL);
    char *text = emit(docs);
    json_t *back = parse_ok(text, 0);
    (void)state;
    assert_non_null(docs);
    if (!json_equal(docs, back))
        fail_msg("round trip differs:\n%s", text);
    assert_non_null(strstr(text, "\n---\n"));
    assert_non_null(strstr(text, "multi: |\n"));
    json_decref(back);
    json_decref(docs);
    free(text);
}

static void yaml_emit_writes_marked_strings_in_their_style(void **state)
{
    json_t *docs = parse_ok("d: \"${x}\"\ns: '${y}'\np: ${z}\n", ENG_YAML_MARK_QUOTED);
    char *text = emit(docs);
    (void)state;
    assert_string_equal(text, "d: \"${x}\"\ns: '${y}'\np: ${z}\n");
    json_decref(docs);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yaml_types_plain_scalars_like_go_yaml_v3),
        cmocka_unit_test(yaml_reads_yaml11_booleans_only_when_asked),
        cmocka_unit_test(yaml_text_mode_keeps_the_source_text),
        cmocka_unit_test(yaml_marks_quoted_placeholders),
        cmocka_unit_test(yaml_expands_anchors_and_merge_keys),
        cmocka_unit_test(yaml_drops_empty_documents),
        cmocka_unit_test(yaml_rejects_duplicate_keys),
        cmocka_unit_test(yaml_rejects_malformed_input),
        cmocka_unit_test(yaml_limits_alias_expansion),
        cmocka_unit_test(yaml_limits_nesting),
        cmocka_unit_test(yaml_emit_quotes_strings_that_would_change_type),
        cmocka_unit_test(yaml_emit_round_trips_values),
        cmocka_unit_test(yaml_emit_writes_marked_strings_in_their_style),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
