/* Unit tests for oci/ignore.c: Flux's --ignore-paths (go-git gitignore subset, spec §1.4) and
 * Go's filepath.Match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/artifact.h>

#include "core/core.h"
#include "oci/ignore.h"

typedef struct glob_case {
    const char *pattern, *name;
    bool match;
} glob_case;

/* From Go's path/filepath match_test.go (errors read as "no match"). */
static const glob_case glob_cases[] = {
    {"abc", "abc", true},
    {"*", "abc", true},
    {"*c", "abc", true},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "ab/c", false},
    {"a*/b", "abc/b", true},
    {"a*/b", "a/c/b", false},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
    {"a*b?c*x", "abxbbxdbxebxczzx", true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false},
    {"ab[c]", "abc", true},
    {"ab[b-d]", "abc", true},
    {"ab[e-g]", "abc", false},
    {"ab[^c]", "abc", false},
    {"ab[^b-d]", "abc", false},
    {"ab[^e-g]", "abc", true},
    {"a\\*b", "a*b", true},
    {"a\\*b", "ab", false},
    {"a?b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a[^a]b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a???b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"a[^a][^a][^a]b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"[a-\xce\xb6]*", "\xce\xb1", true},
    {"*[a-\xce\xb6]", "A", false},
    {"a?b", "a/b", false},
    {"a*b", "a/b", false},
    {"[\\]a]", "]", true},
    {"[\\-]", "-", true},
    {"[x\\-]", "x", true},
    {"[x\\-]", "-", true},
    {"[x\\-]", "z", false},
    {"[\\-x]", "x", true},
    {"[\\-x]", "-", true},
    {"[\\-x]", "a", false},
    {"[]a]", "]", false},
    {"[-]", "-", false},
    {"[x-]", "x", false},
    {"[x-]", "-", false},
    {"[-x]", "x", false},
    {"\\", "a", false},
    {"[a-b-c]", "a", false},
    {"[", "a", false},
    {"[^", "a", false},
    {"[^bc", "a", false},
    {"a[", "a", false},
    {"a[", "ab", false},
    {"*x", "xxx", true},
};

static void glob_matches_like_go_filepath_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
        const glob_case *c = &glob_cases[i];
        if (oci_glob_match(c->pattern, c->name) != c->match)
            fail_msg("pattern \"%s\" name \"%s\": expected %s", c->pattern, c->name,
                     c->match ? "match" : "no match");
    }
}

typedef struct ignore_case {
    const char *patterns; /* comma-separated; NULL: the default set */
    const char *path;
    bool is_dir;
    bool excluded;
} ignore_case;

static const ignore_case ignore_cases[] = {
    /* the default set */
    {NULL, ".git", true, true},
    {NULL, ".git/config", false, true},
    {NULL, ".git/objects/ab", true, true},
    {NULL, "sub/.git", true, true}, /* no '/' inside: any depth */
    {NULL, ".git", false, false},   /* a submodule's .git file: dir-only pattern */
    {NULL, ".gitignore", false, true},
    {NULL, "a/.gitmodules", false, true},
    {NULL, "x.png", false, true},
    {NULL, "img/logo.jpeg", false, true},
    {NULL, "dist/app.tar.gz", false, true},
    {NULL, "app.tar", false, false},
    {NULL, "png", false, false},
    {NULL, "deploy.yaml", false, false},
    {NULL, "git/x.yaml", false, false},
    /* components */
    {"node_modules", "node_modules", true, true},
    {"node_modules", "a/node_modules/x/y.js", false, true},
    {"*.yaml", "a.yaml", false, true},
    {"*.yaml", "dir/b.yaml", false, true},
    {"*.yaml", "a.yml", false, false},
    {"*.yaml", "x.yaml/inner.txt", false, true}, /* a matching directory hides its children */
    /* anchored */
    {"/root.yaml", "root.yaml", false, true},
    {"/root.yaml", "dir/root.yaml", false, false},
    {"dir/*.yaml", "dir/a.yaml", false, true},
    {"dir/*.yaml", "x/dir/a.yaml", false, false},
    {"dir/*.yaml", "dir/sub/a.yaml", false, false},
    {"dir/sub", "dir/sub/deeper/f", false, true}, /* once all parts match, deeper paths too */
    /* ** */
    {"**/foo", "foo", false, true},
    {"**/foo", "a/b/foo", false, true},
    {"**/foo", "a/b/foox", false, false},
    {"a/**", "a/x", false, true},
    {"a/**", "a/x/y", false, true},
    {"a/**", "b/x", false, false},
    {"a/**/b", "a/b", false, true},
    {"a/**/b", "a/x/y/b", false, true},
    {"a/**/b", "a/x", false, false},
    {"a/**x/b", "a/yx/b", false, false}, /* "**" inside a part is refused */
    /* directories only */
    {"build/", "build", true, true},
    {"build/", "build", false, false},
    {"build/", "build/out.o", false, true},
    {"build/", "src/build", true, true},
    {"out/bin/", "out/bin", false, false},
    {"out/bin/", "out/bin", true, true},
    /* negation and order: the last matching pattern decides */
    {"*.yaml,!keep.yaml", "keep.yaml", false, false},
    {"*.yaml,!keep.yaml", "drop.yaml", false, true},
    {"!keep.yaml,*.yaml", "keep.yaml", false, true},
    {".git/,!.git/keep", ".git/keep", false, false},
    {".git/,!.git/keep", ".git/other", false, true},
    /* classes, ?, escapes */
    {"file[0-9].txt", "file1.txt", false, true},
    {"file[0-9].txt", "filea.txt", false, false},
    {"[^a]x", "bx", false, true},
    {"[^a]x", "ax", false, false},
    {"?.txt", "a.txt", false, true},
    {"?.txt", "ab.txt", false, false},
    {"\\*.txt", "*.txt", false, true},
    {"\\*.txt", "a.txt", false, false},
    {"[", "[", false, false}, /* malformed: matches nothing */
    /* list syntax */
    {",,#comment,  ,x.txt", "x.txt", false, true},
    {"#x.txt", "x.txt", false, false},
    {"x.txt  ", "x.txt", false, true},   /* trailing spaces trimmed */
    {"x.txt\\ ", "x.txt", false, false}, /* unless escaped */
    {"", "anything", false, false},
    /* the root is never matched */
    {"*", ".", true, false},
    {"*", "", true, false},
};

static void ignore_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ignore_cases) / sizeof(ignore_cases[0]); i++) {
        const ignore_case *c = &ignore_cases[i];
        oci_ignore *ig = NULL;
        berth_error *err = NULL;
        assert_int_equal(oci_ignore_new(&ig, c->patterns, &err), 0);
        bool got = oci_ignore_match(ig, c->path, c->is_dir);
        oci_ignore_free(ig);
        if (got != c->excluded)
            fail_msg("patterns \"%s\" path \"%s\"%s: expected %s",
                     c->patterns ? c->patterns : "(default)", c->path, c->is_dir ? " (dir)" : "",
                     c->excluded ? "excluded" : "included");
    }
}

static void ignore_reports_negation(void **state)
{
    (void)state;
    oci_ignore *a = NULL, *b = NULL;
    assert_int_equal(oci_ignore_new(&a, "*.png", NULL), 0);
    assert_int_equal(oci_ignore_new(&b, "*.png,!logo.png", NULL), 0);
    assert_false(oci_ignore_has_negation(a));
    assert_true(oci_ignore_has_negation(b));
    oci_ignore_free(a);
    oci_ignore_free(b);
}

static void ignore_handles_long_and_deep_paths(void **state)
{
    (void)state;
    /* More than 64 components and more than 1 KiB: the heap path of the matcher. */
    char path[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "%sdir%02d", i ? "/" : "", i);
    snprintf(path + n, sizeof(path) - n, "/x.png");
    oci_ignore *ig = NULL;
    assert_int_equal(oci_ignore_new(&ig, "dir42", NULL), 0);
    assert_true(oci_ignore_match(ig, path, false));
    oci_ignore_free(ig);
    assert_int_equal(oci_ignore_new(&ig, "/dir00/dir02", NULL), 0);
    assert_false(oci_ignore_match(ig, path, false));
    oci_ignore_free(ig);
}

static void touch(const char *root, const char *rel)
{
    char *p = core_sprintf("%s/%s", root, rel), *slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(core_fs_mkdirs(p, 0755, NULL), 0);
    *slash = '/';
    assert_int_equal(core_fs_write_atomic(p, "x", 1, 0644, NULL), 0);
    core_free(p);
}

static bool present(const char *root, const char *rel)
{
    char *p = core_sprintf("%s/%s", root, rel);
    bool r = core_fs_exists(p);
    core_free(p);
    return r;
}

/* spec.ignore on an extracted tree: comments and blank lines skipped, a directory pattern takes
 * its subtree, a '!' brings one file back from an excluded directory, an excluded directory left
 * empty goes too. */
static void apply_ignore_removes_what_the_patterns_exclude(void **state)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;

    (void)state;
    assert_int_equal(core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-ign-", NULL), 0);
    touch(dir, "app/cm.yaml");
    touch(dir, "app/notes.txt");
    touch(dir, "docs/a.md");
    touch(dir, "docs/keep.md");
    touch(dir, "build/x/y.o");
    touch(dir, ".git/config");
    assert_int_equal(berth_artifact_apply_ignore(dir,
                                                 "# comment\r\n\n.git/\n*.txt\ndocs/\n"
                                                 "!docs/keep.md\n/build\n",
                                                 NULL),
                     0);
    assert_true(present(dir, "app/cm.yaml"));
    assert_false(present(dir, "app/notes.txt"));
    assert_false(present(dir, "docs/a.md"));
    assert_true(present(dir, "docs/keep.md"));
    assert_false(present(dir, "build"));
    assert_false(present(dir, ".git"));
    assert_int_equal(berth_artifact_apply_ignore(dir, "docs/\n", NULL), 0);
    assert_false(present(dir, "docs"));
    assert_true(present(dir, "app/cm.yaml"));
    core_fs_remove_all(dir, NULL);
    core_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(glob_matches_like_go_filepath_match),
        cmocka_unit_test(ignore_table),
        cmocka_unit_test(ignore_reports_negation),
        cmocka_unit_test(apply_ignore_removes_what_the_patterns_exclude),
        cmocka_unit_test(ignore_handles_long_and_deep_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
