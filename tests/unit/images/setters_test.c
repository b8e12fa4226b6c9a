/*
 * Unit tests for images/setters.c: the Setters rewrite, driven by the cases in
 * testdata/images/setters/<case>/ (input.yaml, policies.json, expected.yaml compared byte for
 * byte), plus the report, the notes, errors and the directory walker.
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/core.h"
#include "images/setters.h"

static const img_policy_result policies[] = {
    {"flux-system", "app", "ghcr.io/acme/app", "1.4.2", NULL},
    {"flux-system", "redis", "docker.io/library/redis", "7.2.4", ""},
    {"apps", "signed", "reg.example.com/team/api", "2.0.0", "sha256:0123"},
};
#define NPOL (sizeof(policies) / sizeof(policies[0]))

static char *testdata_path(const char *rel)
{
    const char *root = getenv("BERTH_TESTDATA");
    char *p = core_sprintf("%s/%s", root ? root : "testdata", rel);
    assert_non_null(p);
    return p;
}

static void read_all(berth_buf *b, const char *path)
{
    berth_error *err = NULL;
    berth_buf_init(b, 0);
    if (core_fs_read_file(b, path, 1u << 20, &err) < 0)
        fail_msg("%s", berth_error_message(err));
}

/* Apply with the fixed policies; the call must succeed. */
static void apply_ok(berth_buf *out, img_setter_report *rep, const char *yaml)
{
    berth_error *err = NULL;
    berth_buf_init(out, 0);
    img_setter_report_init(rep);
    if (img_setters_apply(out, yaml, strlen(yaml), policies, NPOL, rep, &err) < 0)
        fail_msg("%s", berth_error_message(err));
}

/* ------------------------------------------------------------------ the testdata table */

static void load_policies(img_policy_result **pol, size_t *n, json_t *doc)
{
    json_t *arr = json_object_get(doc, "policies"), *p;
    size_t i;
    assert_true(json_is_array(arr));
    *n = json_array_size(arr);
    *pol = calloc(*n ? *n : 1, sizeof(**pol));
    assert_non_null(*pol);
    json_array_foreach(arr, i, p)
    {
        (*pol)[i].ns = json_string_value(json_object_get(p, "namespace"));
        (*pol)[i].name = json_string_value(json_object_get(p, "name"));
        (*pol)[i].image = json_string_value(json_object_get(p, "image"));
        (*pol)[i].tag = json_string_value(json_object_get(p, "tag"));
        (*pol)[i].digest = json_string_value(json_object_get(p, "digest"));
    }
}

static void run_case(const char *dir, const char *name)
{
    char *in_path = core_sprintf("%s/%s/input.yaml", dir, name);
    char *exp_path = core_sprintf("%s/%s/expected.yaml", dir, name);
    char *pol_path = core_sprintf("%s/%s/policies.json", dir, name);
    berth_buf in, exp, out = BERTH_BUF_INIT, again = BERTH_BUF_INIT;
    img_setter_report rep, rep2;
    img_policy_result *pol = NULL;
    berth_error *err = NULL;
    json_error_t jerr;
    json_t *doc;
    size_t npol = 0;

    read_all(&in, in_path);
    read_all(&exp, exp_path);
    if (!(doc = json_load_file(pol_path, 0, &jerr)))
        fail_msg("%s: %s", pol_path, jerr.text);
    load_policies(&pol, &npol, doc);
    img_setter_report_init(&rep);
    img_setter_report_init(&rep2);
    if (img_setters_apply(&out, in.ptr, in.len, pol, npol, &rep, &err) < 0)
        fail_msg("%s: %s", name, berth_error_message(err));
    if (out.len != exp.len || memcmp(out.ptr, exp.ptr, exp.len) != 0)
        fail_msg("%s: output differs from expected.yaml\n--- got\n%s\n--- want\n%s", name, out.ptr,
                 exp.ptr);
    if (rep.n_changes != (size_t)json_integer_value(json_object_get(doc, "changes")))
        fail_msg("%s: %zu changes, want %lld", name, rep.n_changes,
                 json_integer_value(json_object_get(doc, "changes")));
    if (rep.n_notes != (size_t)json_integer_value(json_object_get(doc, "notes")))
        fail_msg("%s: %zu notes (first: %s), want %lld", name, rep.n_notes,
                 rep.n_notes ? rep.notes[0].message : "-",
                 json_integer_value(json_object_get(doc, "notes")));
    /* the rewrite is idempotent: a second pass changes nothing */
    if (img_setters_apply(&again, out.ptr, out.len, pol, npol, &rep2, &err) < 0)
        fail_msg("%s: second pass: %s", name, berth_error_message(err));
    assert_int_equal(rep2.n_changes, 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.ptr, out.ptr, out.len);

    img_setter_report_dispose(&rep);
    img_setter_report_dispose(&rep2);
    berth_buf_dispose(&in);
    berth_buf_dispose(&exp);
    berth_buf_dispose(&out);
    berth_buf_dispose(&again);
    json_decref(doc);
    free(pol);
    core_free(in_path);
    core_free(exp_path);
    core_free(pol_path);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void setters_testdata_cases(void **state)
{
    char *dir = testdata_path("images/setters");
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    DIR *d = opendir(dir);
    (void)state;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < 256)
        if (de->d_name[0] != '.')
            names[n++] = core_strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    assert_true(n >= 15);
    for (size_t i = 0; i < n; i++) {
        run_case(dir, names[i]);
        core_free(names[i]);
    }
    core_free(dir);
}

/* ------------------------------------------------------------------ the report */

static void setters_report_positions_values_and_policies(void **state)
{
    const char *yaml = "a: 1\n"
                       "---\n"
                       "x:\n"
                       "  - img: 'ghcr.io/acme/app:1.0' # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "  - tag: v7 # {\"$imagepolicy\": \"flux-system:redis:tag\"}\n"
                       "  - same: 7.2.4 # {\"$imagepolicy\": \"flux-system:redis:tag\"}\n";
    berth_buf out;
    img_setter_report rep;
    (void)state;
    apply_ok(&out, &rep, yaml);
    assert_int_equal(rep.n_changes, 2);
    assert_int_equal(rep.changes[0].line, 4);
    assert_int_equal(rep.changes[0].column, 10);
    assert_int_equal(rep.changes[0].offset, (size_t)(strstr(yaml, "'ghcr") - yaml));
    assert_int_equal(rep.changes[0].doc, 1);
    assert_int_equal(rep.changes[0].policy, 0);
    assert_int_equal(rep.changes[0].field, IMG_SETTER_IMAGE);
    assert_string_equal(rep.changes[0].marker, "flux-system:app");
    assert_string_equal(rep.changes[0].old_value, "ghcr.io/acme/app:1.0");
    assert_string_equal(rep.changes[0].new_value, "ghcr.io/acme/app:1.4.2");
    assert_int_equal(rep.changes[1].line, 5);
    assert_int_equal(rep.changes[1].policy, 1);
    assert_int_equal(rep.changes[1].field, IMG_SETTER_TAG);
    assert_string_equal(rep.changes[1].old_value, "v7");
    assert_string_equal(rep.changes[1].new_value, "7.2.4");
    /* both policies are used, the second also by the line already current */
    assert_int_equal(rep.n_used, 2);
    assert_int_equal(rep.used[0], 0);
    assert_int_equal(rep.used[1], 1);
    assert_int_equal(rep.n_notes, 0);
    assert_non_null(strstr(out.ptr, "tag: 7.2.4 #"));
    img_setter_report_dispose(&rep);
    berth_buf_dispose(&out);
}

static void setters_notes_say_why_a_marker_was_not_applied(void **state)
{
    const char *yaml = "a: &x ghcr.io/acme/app:1.4.2 # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "b: *x # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "c: # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "  d: 1\n"
                       "e: |- # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "  text\n"
                       "f: x # {\"$imagepolicy\": \"kube-system:app\"}\n"
                       "g: x # {\"$imagepolicy\": \"flux-system:app:sha\"}\n"
                       "h: x # {\"$imagepolicy\": \"flux-system:redis:digest\"}\n"
                       "i: x # {$imagepolicy: flux-system:app}\n";
    static const img_setter_note_kind want[] = {
        IMG_NOTE_ALIAS,          IMG_NOTE_NOT_A_SCALAR,  IMG_NOTE_BLOCK_SCALAR,
        IMG_NOTE_UNKNOWN_POLICY, IMG_NOTE_UNKNOWN_FIELD, IMG_NOTE_UNKNOWN_FIELD,
        IMG_NOTE_MALFORMED,
    };
    static const char *const words[] = {"alias", "key",    "block",       "kube-system:app",
                                        "field", "digest", "not a marker"};
    berth_buf out;
    img_setter_report rep;
    (void)state;
    apply_ok(&out, &rep, yaml);
    assert_int_equal(rep.n_changes, 0);
    assert_int_equal(out.len, strlen(yaml));
    assert_memory_equal(out.ptr, yaml, out.len);
    assert_int_equal(rep.n_notes, 7);
    for (size_t i = 0; i < 7; i++) {
        if (rep.notes[i].kind != want[i] || !strstr(rep.notes[i].message, words[i]))
            fail_msg("note %zu: kind %d \"%s\", want kind %d with \"%s\"", i,
                     (int)rep.notes[i].kind, rep.notes[i].message, (int)want[i], words[i]);
    }
    assert_int_equal(rep.notes[0].line, 2);
    assert_int_equal(rep.notes[3].line, 7);
    assert_string_equal(rep.notes[3].marker, "kube-system:app");
    img_setter_report_dispose(&rep);
    berth_buf_dispose(&out);
}

static void setters_rejects_invalid_yaml_with_position(void **state)
{
    const char *yaml = "a: ghcr.io/acme/app:1.0 # {\"$imagepolicy\": \"flux-system:app\"}\n"
                       "b: [unclosed\n";
    berth_buf out = BERTH_BUF_INIT;
    img_setter_report rep;
    berth_error *err = NULL;
    (void)state;
    img_setter_report_init(&rep);
    assert_int_equal(img_setters_apply(&out, yaml, strlen(yaml), policies, NPOL, &rep, &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "invalid yaml at line"));
    /* nothing is half-done */
    assert_int_equal(out.len, 0);
    assert_int_equal(rep.n_changes, 0);
    berth_error_free(err);
    err = NULL;
    assert_int_equal(img_setters_apply(&out,
                                       "\xff\xfe"
                                       "a\0:\0",
                                       6, policies, NPOL, NULL, &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "UTF-16"));
    berth_error_free(err);
}

static void setters_respect_the_output_ceiling(void **state)
{
    const char *yaml = "image: a # {\"$imagepolicy\": \"flux-system:app\"}\n";
    berth_buf out;
    berth_error *err = NULL;
    (void)state;
    berth_buf_init(&out, strlen(yaml) + 5);
    assert_int_equal(img_setters_apply(&out, yaml, strlen(yaml), policies, NPOL, NULL, &err),
                     BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "exceeds"));
    berth_error_free(err);
    berth_buf_dispose(&out);
}

static void setters_empty_input_is_empty_output(void **state)
{
    berth_buf out;
    img_setter_report rep;
    (void)state;
    apply_ok(&out, &rep, "");
    assert_int_equal(out.len, 0);
    assert_int_equal(rep.n_changes, 0);
    berth_buf_dispose(&out);
    img_setter_report_dispose(&rep);
}

static void setters_keep_an_anchor_apart_from_the_new_value(void **state)
{
    /* found by fuzz_setters: an anchor may touch a plain scalar that starts with ':' */
    const char *yaml = "a: &x:old # {\"$imagepolicy\": \"apps:signed:digest\"}\n";
    berth_buf out, again;
    img_setter_report rep, rep2;
    (void)state;
    apply_ok(&out, &rep, yaml);
    assert_int_equal(rep.n_changes, 1);
    assert_string_equal(out.ptr,
                        "a: &x sha256:0123 # {\"$imagepolicy\": \"apps:signed:digest\"}\n");
    apply_ok(&again, &rep2, out.ptr);
    assert_int_equal(rep2.n_changes, 0);
    img_setter_report_dispose(&rep);
    img_setter_report_dispose(&rep2);
    berth_buf_dispose(&out);
    berth_buf_dispose(&again);
}

/* ------------------------------------------------------------------ directories */

static void write_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char *p = core_sprintf("%s/%s", dir, rel);
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), mode, NULL), 0);
    core_free(p);
}

static char *slurp(const char *dir, const char *rel)
{
    char *p = core_sprintf("%s/%s", dir, rel);
    berth_buf b;
    read_all(&b, p);
    core_free(p);
    return b.ptr;
}

static void setters_dir_rewrites_yaml_files_atomically(void **state)
{
    const char *marked =
        "image: ghcr.io/acme/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n";
    const char *want = "image: ghcr.io/acme/app:1.4.2 # {\"$imagepolicy\": \"flux-system:app\"}\n";
    const char *unknown = "image: x # {\"$imagepolicy\": \"flux-system:gone\"}\n";
    const char *tmpl = "image: {{ .Values.image }}\n  bad: [\n";
    img_setter_files files = {0};
    berth_error *err = NULL;
    char *dir = NULL, *path, *text;
    struct stat st;
    (void)state;

    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-setters-", NULL), 0);
    path = core_sprintf("%s/sub/.hidden", dir);
    assert_int_equal(core_fs_mkdirs(path, 0755, NULL), 0);
    core_free(path);
    write_file(dir, "a.yaml", marked, 0640);
    write_file(dir, "sub/b.yml", marked, 0644);
    write_file(dir, "sub/.hidden/c.yaml", marked, 0644);
    write_file(dir, "sub/.d.yaml", marked, 0644);
    write_file(dir, "e.txt", marked, 0644);
    write_file(dir, "f.yaml", unknown, 0644);
    write_file(dir, "chart-template.yaml", tmpl, 0644);
    path = core_sprintf("%s/link.yaml", dir);
    assert_int_equal(symlink("a.yaml", path), 0);
    core_free(path);

    if (img_setters_apply_dir(&files, dir, policies, NPOL, &err) < 0)
        fail_msg("%s", berth_error_message(err));
    assert_int_equal(files.n, 3);
    assert_string_equal(files.files[0].path, "a.yaml");
    assert_true(files.files[0].changed);
    assert_int_equal(files.files[0].report.n_changes, 1);
    assert_string_equal(files.files[1].path, "f.yaml");
    assert_false(files.files[1].changed);
    assert_int_equal(files.files[1].report.n_notes, 1);
    assert_string_equal(files.files[2].path, "sub/b.yml");
    assert_true(files.files[2].changed);

    text = slurp(dir, "a.yaml");
    assert_string_equal(text, want);
    free(text);
    text = slurp(dir, "sub/b.yml");
    assert_string_equal(text, want);
    free(text);
    text = slurp(dir, "sub/.hidden/c.yaml");
    assert_string_equal(text, marked);
    free(text);
    text = slurp(dir, "e.txt");
    assert_string_equal(text, marked);
    free(text);
    text = slurp(dir, "f.yaml");
    assert_string_equal(text, unknown);
    free(text);
    path = core_sprintf("%s/a.yaml", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    core_free(path);
    path = core_sprintf("%s/link.yaml", dir);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* not replaced by a regular file */
    core_free(path);
    img_setter_files_dispose(&files);

    /* a second run has nothing to change */
    assert_int_equal(img_setters_apply_dir(&files, dir, policies, NPOL, NULL), 0);
    assert_int_equal(files.n, 1);
    assert_string_equal(files.files[0].path, "f.yaml");
    img_setter_files_dispose(&files);

    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(dir);
}

static void setters_dir_names_the_file_that_is_not_yaml(void **state)
{
    img_setter_files files = {0};
    berth_error *err = NULL;
    char *dir = NULL, *text;
    (void)state;
    assert_int_equal(core_fs_mkdtemp(&dir, "/tmp", "berth-setters-", NULL), 0);
    write_file(dir, "bad.yaml", "a: x # {\"$imagepolicy\": \"flux-system:app\"}\nb: [\n", 0644);
    assert_int_equal(img_setters_apply_dir(&files, dir, policies, NPOL, &err), BERTH_EINVAL);
    text = berth_error_text(err);
    assert_non_null(strstr(text, "bad.yaml"));
    assert_non_null(strstr(text, "invalid yaml"));
    free(text);
    berth_error_free(err);
    err = NULL;
    img_setter_files_dispose(&files);
    assert_int_equal(img_setters_apply_dir(&files, "/nonexistent-berth-dir", policies, NPOL, &err),
                     BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_message(err), "not a directory"));
    berth_error_free(err);
    assert_int_equal(core_fs_remove_all(dir, NULL), 0);
    core_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(setters_testdata_cases),
        cmocka_unit_test(setters_report_positions_values_and_policies),
        cmocka_unit_test(setters_notes_say_why_a_marker_was_not_applied),
        cmocka_unit_test(setters_rejects_invalid_yaml_with_position),
        cmocka_unit_test(setters_respect_the_output_ceiling),
        cmocka_unit_test(setters_empty_input_is_empty_output),
        cmocka_unit_test(setters_keep_an_anchor_apart_from_the_new_value),
        cmocka_unit_test(setters_dir_rewrites_yaml_files_atomically),
        cmocka_unit_test(setters_dir_names_the_file_that_is_not_yaml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
