/*
 * Unit tests for oci/artifact_build.c and oci/artifact.c: the reproducible layer (spec §1.3),
 * checked with libarchive and with the system's gzip, igzip and tar; and push/pull/diff against
 * a real registry when BERTH_TEST_REGISTRY (host:port of a plain-HTTP registry on loopback) is
 * set, skipped otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include <berth/artifact.h>

#include "core/core.h"

/* ---- helpers ---- */
static char *tmpdir(void)
{
    char *p = core_strdup("/tmp/berth-artifact-test-XXXXXX");
    assert_non_null(p);
    assert_non_null(mkdtemp(p));
    return p;
}

static char *join(const char *a, const char *b)
{
    char *p = core_sprintf("%s/%s", a, b);
    assert_non_null(p);
    return p;
}

static void rm_rf(char *p)
{
    assert_int_equal(core_fs_remove_all(p, NULL), 0);
    core_free(p);
}

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char *p = join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(core_fs_mkdirs(p, 0755, NULL), 0);
    *slash = '/';
    assert_int_equal(core_fs_write_atomic(p, text, strlen(text), mode, NULL), 0);
    core_free(p);
}

static char *slurp(const char *path)
{
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, path, 16u << 20, NULL), 0);
    return berth_buf_detach(&b);
}

/* The sample tree: sorted order ".", "a.yaml", "b", "b/c.yaml", "b.yaml", "empty". */
static char *sample_tree(void)
{
    char *d = tmpdir();
    put(d, "b.yaml", "b: 2\n", 0755);
    put(d, "a.yaml", "a: 1\n", 0644);
    put(d, "b/c.yaml", "c: 3\n", 0600);
    char *e = join(d, "empty"), *l = join(d, "link"), *f = join(d, "fifo");
    assert_int_equal(mkdir(e, 0750), 0);
    assert_int_equal(chmod(e, 0750), 0);
    assert_int_equal(symlink("a.yaml", l), 0);
    assert_int_equal(mkfifo(f, 0644), 0);
    core_free(e);
    core_free(l);
    core_free(f);
    return d;
}

/* Run argv, stdout into out (may be NULL); returns the exit status. */
static int run(const char *const argv[], berth_buf *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(fds[1], 1);
        dup2(null, 2);
        close(fds[0]);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
        if (out)
            assert_int_equal(berth_buf_put(out, chunk, (size_t)n), 0);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool have_tool(const char *name)
{
    const char *argv[] = {"sh", "-c", NULL, NULL};
    char *cmd = core_sprintf("command -v %s", name);
    argv[2] = cmd;
    int rc = run(argv, NULL);
    core_free(cmd);
    return rc == 0;
}

static void build_ok(berth_artifact_layer *l, const char *path, const char *out, const char *ignore)
{
    berth_artifact_build_opts o = BERTH_ARTIFACT_BUILD_OPTS_INIT;
    berth_error *err = NULL;
    o.ignore_paths = ignore;
    int rc = berth_artifact_build(l, path, out, &o, &err);
    if (rc < 0) {
        char *t = berth_error_text(err);
        fail_msg("build %s: %s", path, t);
    }
}

typedef struct entry {
    char name[256];
    int type;
    unsigned mode;
    int64_t uid, gid, mtime;
    bool has_owner_name;
} entry;

/* Read a .tar.gz with libarchive (its own gzip reader, not ours). */
static size_t list_layer(const char *file, entry *v, size_t cap)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    assert_int_equal(archive_read_open_filename(a, file, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    size_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(n < cap);
        snprintf(v[n].name, sizeof(v[n].name), "%s", archive_entry_pathname(e));
        v[n].type = (int)archive_entry_filetype(e);
        v[n].mode = archive_entry_perm(e);
        v[n].uid = archive_entry_uid(e);
        v[n].gid = archive_entry_gid(e);
        v[n].mtime = archive_entry_mtime(e);
        const char *u = archive_entry_uname(e), *g = archive_entry_gname(e);
        v[n].has_owner_name = (u && *u) || (g && *g);
        n++;
    }
    archive_read_free(a);
    return n;
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- build ---- */
static void build_twice_gives_same_digest(void **state)
{
    (void)state;
    char *tree = sample_tree(), *work = tmpdir();
    char *o1 = join(work, "one.tgz"), *o2 = join(work, "two.tgz");
    berth_artifact_layer l1, l2;
    build_ok(&l1, tree, o1, NULL);
    build_ok(&l2, tree, o2, NULL);
    assert_string_equal(l1.digest, l2.digest);
    assert_string_equal(l1.diff_id, l2.diff_id);
    assert_true(core_str_has_prefix(l1.digest, "sha256:"));
    assert_int_equal(strlen(l1.digest), 71);
    assert_int_equal(l1.files, 3);
    struct stat st;
    assert_int_equal(stat(o1, &st), 0);
    assert_int_equal(st.st_size, l1.size);
    /* The digest is the sha256 of the file's bytes. */
    berth_buf b = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&b, o1, 1 << 20, NULL), 0);
    char want[72];
    core_sha256_digest(want, b.ptr, b.len);
    assert_string_equal(want, l1.digest);
    berth_buf_dispose(&b);
    /* Nothing but the two outputs in the directory: the temp files were renamed. */
    assert_int_equal(count_entries(work), 2);
    core_free(o1);
    core_free(o2);
    rm_rf(tree);
    rm_rf(work);
}

static void build_digest_follows_content_and_mode(void **state)
{
    (void)state;
    char *tree = sample_tree(), *work = tmpdir(), *out = join(work, "l.tgz");
    berth_artifact_layer base, changed, chmodded;
    build_ok(&base, tree, out, NULL);
    put(tree, "a.yaml", "a: 2\n", 0644);
    build_ok(&changed, tree, out, NULL);
    assert_string_not_equal(base.diff_id, changed.diff_id);
    assert_string_not_equal(base.digest, changed.digest);
    char *a = join(tree, "a.yaml");
    assert_int_equal(chmod(a, 0600), 0);
    build_ok(&chmodded, tree, out, NULL);
    assert_string_not_equal(changed.diff_id, chmodded.diff_id);
    /* mtimes do not matter */
    assert_int_equal(chmod(a, 0644), 0);
    const char *argv[] = {"touch", "-d", "2001-02-03", a, NULL};
    assert_int_equal(run(argv, NULL), 0);
    berth_artifact_layer touched;
    build_ok(&touched, tree, out, NULL);
    assert_string_equal(changed.digest, touched.digest);
    core_free(a);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_lists_root_first_then_sorted_with_zeroed_owners(void **state)
{
    (void)state;
    char *tree = sample_tree(), *work = tmpdir(), *out = join(work, "l.tgz");
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    entry v[16];
    size_t n = list_layer(out, v, 16);
    static const char *names[] = {".", "a.yaml", "b", "b/c.yaml", "b.yaml", "empty"};
    static const unsigned modes[] = {0, 0644, 0755, 0600, 0755, 0750};
    assert_int_equal(n, 6); /* the symlink and the FIFO are skipped */
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].name, names[i]);
        assert_int_equal(v[i].uid, 0);
        assert_int_equal(v[i].gid, 0);
        assert_int_equal(v[i].mtime, 0);
        assert_false(v[i].has_owner_name);
        if (i > 0)
            assert_int_equal(v[i].mode, modes[i]);
    }
    assert_int_equal(v[0].type, AE_IFDIR);
    assert_int_equal(v[2].type, AE_IFDIR);
    assert_int_equal(v[4].type, AE_IFREG);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_output_is_readable_by_gzip_igzip_and_tar(void **state)
{
    (void)state;
    if (!have_tool("gzip") || !have_tool("tar")) {
        skip();
        return;
    }
    char *tree = sample_tree(), *work = tmpdir(), *out = join(work, "l.tgz");
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    const char *gz[] = {"gzip", "-t", out, NULL};
    assert_int_equal(run(gz, NULL), 0);
    if (have_tool("igzip")) {
        const char *ig[] = {"igzip", "-d", "-c", out, NULL};
        berth_buf tar = BERTH_BUF_INIT;
        assert_int_equal(run(ig, &tar), 0);
        char d[72];
        core_sha256_digest(d, tar.ptr, tar.len);
        assert_string_equal(d, l.diff_id); /* the diff_id is the sha256 of the tar */
        berth_buf_dispose(&tar);
    }
    const char *tv[] = {"tar", "-tzvf", out, NULL};
    berth_buf list = BERTH_BUF_INIT;
    assert_int_equal(run(tv, &list), 0);
    /* "drwxr-xr-x 0/0 0 1970-01-01 00:00 ." first, then the sorted entries */
    const char *want[] = {" .\n", " a.yaml\n", " b\n", " b/c.yaml\n", " b.yaml\n", " empty\n"};
    const char *p = list.ptr;
    for (size_t i = 0; i < 6; i++) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        char line[256];
        snprintf(line, sizeof(line), "%.*s", (int)(eol - p + 1), p);
        if (!strstr(line, want[i]) || !strstr(line, " 0/0 ") || !strstr(line, "1970-01-01"))
            fail_msg("tar -tzvf line %zu: \"%s\", expected \"%s\"", i, line, want[i]);
        p = eol + 1;
    }
    assert_int_equal(*p, '\0');
    berth_buf_dispose(&list);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_gzip_header_has_no_name_and_zero_mtime(void **state)
{
    (void)state;
    char *tree = sample_tree(), *work = tmpdir(), *out = join(work, "l.tgz");
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    char *bytes = slurp(out);
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    assert_memory_equal(bytes, hdr, sizeof(hdr));
    free(bytes);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_writes_plain_pax_path_for_utf8_names(void **state)
{
    (void)state;
    if (!have_tool("gzip")) {
        skip();
        return;
    }
    char *tree = tmpdir(), *work = tmpdir(), *out = join(work, "l.tgz");
    put(tree, "h\xc3\xa9llo.yaml", "x\n", 0644);
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    const char *dc[] = {"gzip", "-dc", out, NULL};
    berth_buf tar = BERTH_BUF_INIT;
    assert_int_equal(run(dc, &tar), 0);
    /* Exactly Go's record: "20 path=héllo.yaml\n", and no hdrcharset record. */
    const char rec[] = "20 path=h\xc3\xa9llo.yaml\n";
    bool found = false;
    for (size_t i = 0; i + sizeof(rec) - 1 <= tar.len; i++)
        if (memcmp(tar.ptr + i, rec, sizeof(rec) - 1) == 0)
            found = true;
    assert_true(found);
    for (size_t i = 0; i + 10 <= tar.len; i++)
        assert_false(memcmp(tar.ptr + i, "hdrcharset", 10) == 0);
    berth_buf_dispose(&tar);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_applies_default_and_custom_ignore_rules(void **state)
{
    (void)state;
    char *tree = tmpdir(), *work = tmpdir(), *out = join(work, "l.tgz");
    put(tree, ".git/config", "[core]\n", 0644);
    put(tree, ".gitignore", "x\n", 0644);
    put(tree, "img/logo.png", "png", 0644);
    put(tree, "keep.yaml", "k\n", 0644);
    put(tree, "drop.yaml", "d\n", 0644);
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    entry v[16];
    size_t n = list_layer(out, v, 16);
    /* ".", "drop.yaml", "img", "keep.yaml": .git, .gitignore and the png are ignored */
    assert_int_equal(n, 4);
    assert_string_equal(v[1].name, "drop.yaml");
    assert_string_equal(v[2].name, "img");
    assert_string_equal(v[3].name, "keep.yaml");
    assert_int_equal(l.files, 2);
    /* --ignore-paths replaces the defaults */
    build_ok(&l, tree, out, "*.yaml,!keep.yaml");
    n = list_layer(out, v, 16);
    assert_int_equal(n, 7); /* . .git .git/config .gitignore img img/logo.png keep.yaml */
    assert_string_equal(v[1].name, ".git");
    assert_string_equal(v[6].name, "keep.yaml");
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_single_file_archives_dot_and_basename(void **state)
{
    (void)state;
    char *tree = tmpdir(), *work = tmpdir(), *out = join(work, "l.tgz");
    put(tree, "one.yaml", "one: 1\n", 0640);
    char *file = join(tree, "one.yaml");
    berth_artifact_layer l;
    build_ok(&l, file, out, NULL);
    entry v[4];
    size_t n = list_layer(out, v, 4);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, ".");
    assert_int_equal(v[0].type, AE_IFDIR);
    assert_int_equal(v[0].mode, 0700);
    assert_string_equal(v[1].name, "one.yaml");
    assert_int_equal(v[1].mode, 0640);
    assert_int_equal(l.files, 1);
    core_free(file);
    core_free(out);
    rm_rf(tree);
    rm_rf(work);
}

static void build_missing_path_is_named(void **state)
{
    (void)state;
    char *work = tmpdir(), *out = join(work, "l.tgz"), *missing = join(work, "nope");
    berth_artifact_layer l;
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_build(&l, missing, out, NULL, &err), BERTH_ENOTFOUND);
    char *t = berth_error_text(err);
    assert_non_null(strstr(t, missing));
    free(t);
    berth_error_free(err);
    assert_int_equal(count_entries(work), 0); /* no temp file left */
    err = NULL;
    berth_artifact_build_opts o = BERTH_ARTIFACT_BUILD_OPTS_INIT;
    o.level = 9;
    assert_int_equal(berth_artifact_build(&l, work, out, &o, &err), BERTH_EINVAL);
    t = berth_error_text(err);
    assert_non_null(strstr(t, "level"));
    free(t);
    berth_error_free(err);
    core_free(missing);
    core_free(out);
    rm_rf(work);
}

static void build_large_files_round_trip_through_extractor(void **state)
{
    (void)state;
    char *tree = tmpdir(), *work = tmpdir(), *out = join(work, "l.tgz");
    /* 6 MiB of poorly compressible bytes and 3 MiB of text: many queue blocks each way. */
    size_t big = 6u << 20;
    char *data = core_malloc(big + 1);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (char)(x >> 16);
    }
    char *p = join(tree, "rand.bin");
    assert_int_equal(core_fs_write_atomic(p, data, big, 0644, NULL), 0);
    core_free(p);
    for (size_t i = 0; i < (3u << 20); i++)
        data[i] = "key: value\n"[i % 11];
    data[3u << 20] = '\0';
    put(tree, "d/text.yaml", data, 0644);
    berth_artifact_layer l;
    build_ok(&l, tree, out, NULL);
    for (int level = 0; level <= 3; level += 3) {
        berth_artifact_build_opts o = BERTH_ARTIFACT_BUILD_OPTS_INIT;
        berth_artifact_layer ll;
        o.level = level;
        assert_int_equal(berth_artifact_build(&ll, tree, out, &o, NULL), 0);
        assert_string_equal(ll.diff_id, l.diff_id); /* same tar whatever the level */
    }
    char *dir = tmpdir();
    berth_extractor *xt = NULL;
    char diff_id[72];
    assert_int_equal(berth_extractor_new(&xt, dir, NULL, NULL), 0);
    char *gz = slurp(out);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(berth_extractor_write(xt, gz, (size_t)st.st_size), 0);
    assert_int_equal(berth_extractor_finish(xt, diff_id, NULL), 0);
    berth_extractor_free(xt);
    free(gz);
    assert_string_equal(diff_id, l.diff_id);
    char *rand = join(dir, "rand.bin");
    berth_buf got = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&got, rand, 16u << 20, NULL), 0);
    assert_int_equal(got.len, big);
    x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        if (got.ptr[i] != (char)(x >> 16))
            fail_msg("byte %zu differs", i);
    }
    berth_buf_dispose(&got);
    core_free(rand);
    core_free(data);
    core_free(out);
    rm_rf(dir);
    rm_rf(tree);
    rm_rf(work);
}

/* ---- push / pull / diff against a registry ---- */
static const char *registry(void)
{
    const char *r = getenv("BERTH_TEST_REGISTRY");
    return r && *r ? r : NULL;
}

static berth_oci_client *client(void)
{
    berth_oci_client *c = NULL;
    berth_oci_client_opts o = BERTH_OCI_CLIENT_OPTS_INIT;
    assert_int_equal(berth_oci_client_new(&c, &o, NULL), 0);
    return c;
}

static void parse_ref(berth_oci_ref *r, const char *repo_tag)
{
    char *text = core_sprintf("%s/%s", registry(), repo_tag);
    assert_int_equal(berth_oci_ref_parse(r, text, NULL), 0);
    core_free(text);
}

static void push_ok(berth_push_result *res, berth_oci_client *c, const berth_oci_ref *ref,
                    const char *path, const berth_push_opts *o)
{
    berth_error *err = NULL;
    if (berth_artifact_push(res, c, ref, path, o, &err) < 0) {
        char *t = berth_error_text(err);
        fail_msg("push: %s", t);
    }
}

static void push_then_pull_round_trips(void **state)
{
    (void)state;
    if (!registry()) {
        print_message("BERTH_TEST_REGISTRY not set: skipping\n");
        skip();
        return;
    }
    berth_oci_client *c = client();
    berth_oci_ref ref;
    parse_ref(&ref, "berth-unit/artifact:v1");
    char *tree = sample_tree();
    berth_push_opts po = BERTH_PUSH_OPTS_INIT;
    po.source = "https://example.com/repo<&>";
    po.revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
    po.reproducible = true;
    static char team_key[] = "org.example.team", team_value[] = "platform";
    berth_kv extra[] = {{team_key, team_value}};
    po.annotations = extra;
    po.annotations_len = 1;
    berth_push_result pr;
    push_ok(&pr, c, &ref, tree, &po);
    assert_true(core_str_has_suffix(pr.repository, "/berth-unit/artifact"));
    assert_string_equal(pr.tag, "v1");
    assert_int_equal(pr.layer.files, 3);

    /* The manifest as the registry serves it: Go's compact form and key order. */
    berth_oci_blob mb = {0};
    assert_int_equal(berth_oci_manifest_get(&mb, c, &ref, NULL), 0);
    assert_string_equal(mb.digest, pr.digest);
    char *want = core_sprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.cncf.flux.config.v1+json\",\"size\":233,");
    assert_true(core_str_has_prefix(mb.data, want));
    core_free(want);
    want = core_sprintf("\"layers\":[{\"mediaType\":\"application/vnd.cncf.flux.content.v1.tar+"
                        "gzip\",\"size\":%lld,\"digest\":\"%s\"}],\"annotations\":{\"org."
                        "example.team\":\"platform\",\"org.opencontainers.image.created\":"
                        "\"1970-01-01T00:00:00Z\",\"org.opencontainers.image.revision\":\"main@"
                        "sha1:0123456789abcdef0123456789abcdef01234567\",\"org.opencontainers."
                        "image.source\":\"https://example.com/repo\\u003c\\u0026\\u003e\"}}",
                        (long long)pr.layer.size, pr.layer.digest);
    assert_non_null(strstr(mb.data, want));
    core_free(want);
    berth_oci_blob_dispose(&mb);

    /* pull into a directory that already holds other files */
    char *out = tmpdir();
    put(out, "a.yaml", "stale\n", 0644);
    put(out, "other.txt", "kept\n", 0644);
    berth_pull_result pl;
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_pull(&pl, c, &ref, out, NULL, NULL, &err), 0);
    assert_string_equal(pl.digest, pr.digest);
    assert_string_equal(pl.source, po.source);
    assert_string_equal(pl.revision, po.revision);
    assert_string_equal(pl.layer_media_type, BERTH_MT_FLUX_CONTENT);
    char *a = join(out, "a.yaml"), *cc = join(out, "b/c.yaml"), *o = join(out, "other.txt");
    char *t = slurp(a);
    assert_string_equal(t, "a: 1\n");
    free(t);
    t = slurp(cc);
    assert_string_equal(t, "c: 3\n");
    free(t);
    t = slurp(o);
    assert_string_equal(t, "kept\n");
    free(t);
    /* a.yaml b b.yaml empty other.txt: no staging or trash directory left beside or inside */
    assert_int_equal(count_entries(out), 5);
    berth_pull_result_dispose(&pl);

    /* diff: same content, then a change */
    bool differs = true;
    char *report = NULL;
    assert_int_equal(berth_artifact_diff(&differs, &report, c, &ref, tree, NULL, NULL), 0);
    assert_false(differs);
    assert_string_equal(report, "");
    free(report);
    put(tree, "a.yaml", "a: changed\n", 0644);
    put(tree, "new.yaml", "n\n", 0644);
    char *bc = join(tree, "b/c.yaml");
    assert_int_equal(unlink(bc), 0);
    assert_int_equal(berth_artifact_diff(&differs, &report, c, &ref, tree, NULL, NULL), 0);
    assert_true(differs);
    assert_string_equal(report, "~ a.yaml\n- b/c.yaml\n+ new.yaml\n");
    free(report);

    core_free(bc);
    core_free(a);
    core_free(cc);
    core_free(o);
    berth_push_result_dispose(&pr);
    berth_oci_ref_dispose(&ref);
    berth_oci_client_free(c);
    rm_rf(out);
    rm_rf(tree);
}

static void pull_failure_leaves_out_dir_untouched(void **state)
{
    (void)state;
    if (!registry()) {
        print_message("BERTH_TEST_REGISTRY not set: skipping\n");
        skip();
        return;
    }
    berth_oci_client *c = client();
    berth_oci_ref ref;
    parse_ref(&ref, "berth-unit/artifact:does-not-exist");
    char *out = tmpdir();
    put(out, "a.yaml", "old\n", 0644);
    berth_pull_result pl;
    berth_error *err = NULL;
    assert_int_equal(berth_artifact_pull(&pl, c, &ref, out, NULL, NULL, &err), BERTH_ENOTFOUND);
    berth_error_free(err);
    assert_int_equal(count_entries(out), 1);
    char *a = join(out, "a.yaml"), *t = slurp(a);
    assert_string_equal(t, "old\n");
    free(t);
    core_free(a);

    /* a bad user "created" annotation is refused before anything is uploaded */
    berth_oci_ref_dispose(&ref);
    parse_ref(&ref, "berth-unit/artifact:bad-created");
    static char created_key[] = BERTH_ANN_CREATED, created_value[] = "yesterday";
    berth_kv bad[] = {{created_key, created_value}};
    berth_push_opts po = BERTH_PUSH_OPTS_INIT;
    po.source = "s";
    po.revision = "r";
    po.annotations = bad;
    po.annotations_len = 1;
    berth_push_result pr;
    err = NULL;
    assert_int_equal(berth_artifact_push(&pr, c, &ref, out, &po, &err), BERTH_EINVAL);
    t = berth_error_text(err);
    assert_non_null(strstr(t, "yesterday"));
    free(t);
    berth_error_free(err);

    berth_oci_ref_dispose(&ref);
    berth_oci_client_free(c);
    rm_rf(out);
}

static void diff_compares_content_of_foreign_layer(void **state)
{
    (void)state;
    if (!registry() || !have_tool("tar")) {
        print_message("BERTH_TEST_REGISTRY not set or no tar: skipping\n");
        skip();
        return;
    }
    /* A layer made by GNU tar (./ prefixes, real mtimes, the symlink and the FIFO included)
     * under a config without diff_ids: only a content comparison can call it equal. */
    berth_oci_client *c = client();
    berth_oci_ref ref;
    parse_ref(&ref, "berth-unit/foreign:v1");
    char *tree = sample_tree(), *work = tmpdir(), *tgz = join(work, "gnu.tgz");
    const char *argv[] = {"tar", "-czf", tgz, "-C", tree, ".", NULL};
    assert_int_equal(run(argv, NULL), 0);
    berth_buf layer = BERTH_BUF_INIT;
    assert_int_equal(core_fs_read_file(&layer, tgz, 1 << 20, NULL), 0);
    char layer_digest[72], config_digest[72];
    core_sha256_digest(layer_digest, layer.ptr, layer.len);
    core_sha256_digest(config_digest, "{}", 2);
    berth_oci_upload up[2];
    memset(up, 0, sizeof(up));
    up[0].digest = config_digest;
    up[0].size = 2;
    up[0].data = "{}";
    up[1].digest = layer_digest;
    up[1].size = (int64_t)layer.len;
    up[1].data = layer.ptr;
    assert_int_equal(berth_oci_blobs_push(c, &ref, up, 2, NULL, NULL), 0);
    char *manifest = core_sprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"size\":2,"
        "\"digest\":\"%s\"},\"layers\":[{\"mediaType\":\"%s\",\"size\":%zu,\"digest\":\"%s\"}]}",
        BERTH_MT_OCI_MANIFEST, BERTH_MT_FLUX_CONFIG, config_digest, BERTH_MT_FLUX_CONTENT,
        layer.len, layer_digest);
    assert_int_equal(berth_oci_manifest_put(NULL, c, &ref, BERTH_MT_OCI_MANIFEST, manifest,
                                            strlen(manifest), NULL),
                     0);
    bool differs = true;
    char *report = NULL;
    assert_int_equal(berth_artifact_diff(&differs, &report, c, &ref, tree, NULL, NULL), 0);
    assert_false(differs);
    assert_string_equal(report, "");
    free(report);
    char *bc = join(tree, "b/c.yaml");
    assert_int_equal(chmod(bc, 0640), 0);
    char *e = join(tree, "empty");
    assert_int_equal(rmdir(e), 0);
    assert_int_equal(berth_artifact_diff(&differs, &report, c, &ref, tree, NULL, NULL), 0);
    assert_true(differs);
    assert_string_equal(report, "~ b/c.yaml\n- empty\n");
    free(report);
    core_free(bc);
    core_free(e);
    core_free(manifest);
    berth_buf_dispose(&layer);
    core_free(tgz);
    berth_oci_ref_dispose(&ref);
    berth_oci_client_free(c);
    rm_rf(tree);
    rm_rf(work);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_twice_gives_same_digest),
        cmocka_unit_test(build_digest_follows_content_and_mode),
        cmocka_unit_test(build_lists_root_first_then_sorted_with_zeroed_owners),
        cmocka_unit_test(build_output_is_readable_by_gzip_igzip_and_tar),
        cmocka_unit_test(build_gzip_header_has_no_name_and_zero_mtime),
        cmocka_unit_test(build_writes_plain_pax_path_for_utf8_names),
        cmocka_unit_test(build_applies_default_and_custom_ignore_rules),
        cmocka_unit_test(build_single_file_archives_dot_and_basename),
        cmocka_unit_test(build_missing_path_is_named),
        cmocka_unit_test(build_large_files_round_trip_through_extractor),
        cmocka_unit_test(push_then_pull_round_trips),
        cmocka_unit_test(pull_failure_leaves_out_dir_untouched),
        cmocka_unit_test(diff_compares_content_of_foreign_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
