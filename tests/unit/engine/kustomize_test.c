/*
 * Unit tests for the build stage (engine/build.h): one table-driven test runs every case under
 * testdata/kustomize/<case>/ (input/ is the artifact root; options.yaml, when present, holds the
 * Kustomization spec fields Flux applies; expected.yaml is the expected output, compared as
 * JSON trees; or expected-error.txt holds a substring of the error chain and, on an optional
 * second line "code=ENAME", the expected code). Further tests pin the hash vectors of
 * spec/engine.md §2.4, determinism and argument checks.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/core.h"
#include "engine/build.h"

#define MIN_CASES 30

typedef struct case_opts {
    eng_build_opts opts;
    eng_postbuild pb;
    eng_subst_from from[8];
    json_t *doc; /* options.yaml, owns what opts point to */
    const char *path;
} case_opts;

static const char *testdata(void)
{
    const char *d = getenv("BERTH_TESTDATA");
    return d ? d : "testdata";
}

static char *read_text(const char *path)
{
    berth_buf b;
    berth_error *err = NULL;
    berth_buf_init(&b, 0);
    if (core_fs_read_file(&b, path, 1 << 20, &err) < 0) {
        berth_error_free(err);
        return NULL;
    }
    return berth_buf_detach(&b);
}

static json_t *parse_file(const char *path)
{
    char *text = read_text(path);
    json_t *docs = NULL;
    berth_error *err = NULL;
    if (!text)
        return NULL;
    if (eng_yaml_parse(&docs, text, strlen(text), 0, path, &err) < 0) {
        char *msg = berth_error_text(err);
        print_error("%s\n", msg);
        free(msg);
        berth_error_free(err);
    }
    free(text);
    return docs;
}

/* options.yaml -> eng_build_opts (borrowing from c->doc). */
static void load_options(case_opts *c, const char *case_dir)
{
    char *path = core_sprintf("%s/options.yaml", case_dir);
    const json_t *o, *pb, *from;
    size_t i;
    memset(c, 0, sizeof(*c));
    c->opts = (eng_build_opts)ENG_BUILD_OPTS_INIT;
    assert_non_null(path);
    if (core_fs_exists(path)) {
        c->doc = parse_file(path);
        assert_non_null(c->doc);
    }
    core_free(path);
    o = json_array_get(c->doc, 0);
    c->path = json_string_value(json_object_get(o, "path"));
    c->opts.target_namespace = json_string_value(json_object_get(o, "targetNamespace"));
    c->opts.name_prefix = json_string_value(json_object_get(o, "namePrefix"));
    c->opts.name_suffix = json_string_value(json_object_get(o, "nameSuffix"));
    c->opts.patches = json_object_get(o, "patches");
    c->opts.images = json_object_get(o, "images");
    c->opts.components = json_object_get(o, "components");
    c->opts.ignore_missing_components = json_is_true(json_object_get(o, "ignoreMissingComponents"));
    c->opts.common_metadata = json_object_get(o, "commonMetadata");
    if (!(pb = json_object_get(o, "postBuild")))
        return;
    c->pb.substitute = json_object_get(pb, "substitute");
    c->pb.always = json_is_true(json_object_get(pb, "always"));
    c->pb.strict = !json_is_false(json_object_get(pb, "strict"));
    from = json_object_get(pb, "substituteFrom");
    for (i = 0; i < json_array_size(from) && i < 8; i++) {
        const json_t *f = json_array_get(from, i);
        c->from[i].kind = json_string_value(json_object_get(f, "kind"));
        c->from[i].name = json_string_value(json_object_get(f, "name"));
        c->from[i].optional = json_is_true(json_object_get(f, "optional"));
        c->from[i].data = json_object_get(f, "data");
    }
    c->pb.from = c->from;
    c->pb.from_len = i;
    c->opts.post_build = &c->pb;
}

/* Emit objects and read them back: the comparison goes through the real output. */
static json_t *round_trip(const json_t *objects)
{
    berth_buf b;
    json_t *docs = NULL;
    berth_error *err = NULL;
    berth_buf_init(&b, 0);
    assert_int_equal(eng_yaml_emit(&b, objects, &err), 0);
    assert_int_equal(eng_yaml_parse(&docs, b.ptr ? b.ptr : "", b.len, 0, "output", &err), 0);
    berth_buf_dispose(&b);
    return docs;
}

static void print_yaml(const char *label, const json_t *docs)
{
    berth_buf b;
    berth_buf_init(&b, 0);
    if (eng_yaml_emit(&b, docs, NULL) == 0)
        print_error("---- %s\n%s", label, b.ptr ? b.ptr : "(nothing)\n");
    berth_buf_dispose(&b);
}

static bool check_error(const char *name, const char *dir, int rc, berth_error *err)
{
    char *path = core_sprintf("%s/expected-error.txt", dir);
    char *want = path ? read_text(path) : NULL, *code_line, *text = berth_error_text(err);
    bool ok = want && rc < 0 && text;
    assert_non_null(want);
    if ((code_line = strstr(want, "\ncode=")) != NULL) {
        *code_line = '\0';
        code_line += 6;
        code_line[strcspn(code_line, "\r\n")] = '\0';
        ok = ok && strcmp(berth_code_name(rc), code_line) == 0;
    }
    want[strcspn(want, "\r\n")] = '\0';
    ok = ok && strstr(text, want) != NULL;
    if (!ok)
        print_error("case %s: rc %d (%s) error \"%s\", want \"%s\" code %s\n", name, rc,
                    berth_code_name(rc), text ? text : "(none)", want,
                    code_line ? code_line : "(any)");
    free(text);
    free(want);
    core_free(path);
    return ok;
}

static bool check_output(const char *name, const char *dir, json_t *objects)
{
    char *path = core_sprintf("%s/expected.yaml", dir);
    json_t *want = path ? parse_file(path) : NULL, *got = round_trip(objects);
    bool ok = want && json_equal(want, got);
    if (!ok) {
        print_error("case %s: output differs\n", name);
        print_yaml("got", got);
        if (want)
            print_yaml("want", want);
    }
    json_decref(want);
    json_decref(got);
    core_free(path);
    return ok;
}

static bool run_case(const char *name)
{
    char *dir = core_sprintf("%s/kustomize/%s", testdata(), name);
    char *input = core_sprintf("%s/input", dir),
         *exp_err = core_sprintf("%s/expected-error.txt", dir);
    json_t *objects = NULL;
    berth_error *err = NULL;
    case_opts c;
    bool ok;
    int rc;
    assert_true(dir && input && exp_err);
    load_options(&c, dir);
    rc = eng_build(&objects, input, c.path ? c.path : "", &c.opts, &err);
    if (core_fs_exists(exp_err)) {
        ok = check_error(name, dir, rc, err);
        assert_null(objects);
    } else if (rc < 0) {
        char *text = berth_error_text(err);
        print_error("case %s: build failed: %s\n", name, text);
        free(text);
        ok = false;
    } else {
        ok = check_output(name, dir, objects);
    }
    berth_error_free(err);
    json_decref(objects);
    json_decref(c.doc);
    core_free(dir);
    core_free(input);
    core_free(exp_err);
    return ok;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void build_matches_every_testdata_case(void **state)
{
    char *root = core_sprintf("%s/kustomize", testdata());
    char *names[256];
    size_t n = 0, failed = 0;
    struct dirent *de;
    DIR *d;
    (void)state;
    assert_non_null(root);
    d = opendir(root);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 256) {
        if (de->d_name[0] != '.')
            names[n++] = core_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!run_case(names[i]))
            failed++;
        core_free(names[i]);
    }
    core_free(root);
    print_message("%zu kustomize cases, %zu failed\n", n, failed);
    assert_true(n >= MIN_CASES);
    assert_int_equal(failed, 0);
}

static void build_is_deterministic(void **state)
{
    char *input = core_sprintf("%s/kustomize/generator-behavior-merge/input", testdata());
    json_t *a = NULL, *b = NULL;
    (void)state;
    assert_int_equal(eng_build(&a, input, "overlay", NULL, NULL), 0);
    assert_int_equal(eng_build(&b, input, "overlay", NULL, NULL), 0);
    assert_true(json_equal(a, b));
    assert_true(json_array_size(a) > 0);
    json_decref(a);
    json_decref(b);
    core_free(input);
}

static void build_rejects_missing_path(void **state)
{
    char *input = core_sprintf("%s/kustomize/resources-files/input", testdata());
    json_t *objects = NULL;
    berth_error *err = NULL;
    (void)state;
    assert_int_equal(eng_build(&objects, input, "no/such/dir", NULL, &err), BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), "kustomization path not found"));
    assert_null(objects);
    berth_error_free(err);
    err = NULL;
    assert_int_equal(eng_build(&objects, input, "../escape", NULL, &err), BERTH_EINVAL);
    assert_non_null(err);
    berth_error_free(err);
    core_free(input);
}

/* spec/engine.md §2.4 test vectors. */
static void hash_matches_spec_vectors(void **state)
{
    static const char *const vectors[][2] = {
        {"{\"data\":\"\",\"kind\":\"ConfigMap\",\"name\":\"\"}", "6ct58987ht"},
        {"{\"data\":{\"one\":\"\"},\"kind\":\"ConfigMap\",\"name\":\"\"}", "9g67k2htb6"},
        {"{\"data\":{\"one\":\"\",\"three\":3,\"two\":2},\"kind\":\"ConfigMap\",\"name\":\"\"}",
         "7757f9kkct"},
        {"{\"binaryData\":{\"two\":\"\"},\"data\":{\"one\":\"\"},\"kind\":\"ConfigMap\",\"name\":"
         "\"\"}",
         "698h7c7t9m"},
        {"{\"data\":\"\",\"kind\":\"Secret\",\"name\":\"\",\"type\":\"my-type\"}", "5gmgkf8578"},
        {"{\"data\":{\"one\":\"\"},\"kind\":\"Secret\",\"name\":\"\",\"stringData\":{\"two\":2},"
         "\"type\":\"my-type\"}",
         "c4h4264gdb"},
        {"{\"data\":{\"key\":\"value\"},\"kind\":\"ConfigMap\",\"name\":\"app-config\"}",
         "6fmtht4dcf"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(*vectors); i++) {
        json_t *v = json_loads(vectors[i][0], 0, NULL);
        char out[11];
        assert_non_null(v);
        assert_int_equal(eng_kz_json_hash(out, v, NULL), 0);
        assert_string_equal(out, vectors[i][1]);
        json_decref(v);
    }
}

/* The object form: missing data and type contribute "", not null. */
static void object_hash_uses_empty_strings_for_missing_fields(void **state)
{
    json_t *cm =
        json_loads("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{}}", 0, NULL);
    json_t *secret = json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{},"
                                "\"type\":\"my-type\"}",
                                0, NULL);
    char out[11];
    (void)state;
    assert_int_equal(eng_kz_object_hash(out, cm, NULL), 0);
    assert_string_equal(out, "6ct58987ht");
    assert_int_equal(eng_kz_object_hash(out, secret, NULL), 0);
    assert_string_equal(out, "5gmgkf8578");
    json_decref(cm);
    json_decref(secret);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_matches_every_testdata_case),
        cmocka_unit_test(build_is_deterministic),
        cmocka_unit_test(build_rejects_missing_path),
        cmocka_unit_test(hash_matches_spec_vectors),
        cmocka_unit_test(object_hash_uses_empty_strings_for_missing_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
