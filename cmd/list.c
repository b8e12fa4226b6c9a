/*
 * berth list artifacts: the tags of a repository with the digest, source and revision of each,
 * as `flux list artifacts` shows them (spec oci-artifacts.md 1.7). Signature, attestation, SBOM
 * and referrers-fallback tags are hidden. One manifest GET per tag gives both the annotations
 * and the digest (computed over the bytes), where Flux spends a GET and a HEAD.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/regex.h>
#include <berth/semver.h>

#include "cli.h"

#define NCOL 5 /* artifact, digest, source, revision, tag: heap strings */

static bool hidden(const char *t)
{
    size_t len = strlen(t);
    bool fallback =
        len == 71 && strncmp(t, "sha256-", 7) == 0 && strspn(t + 7, "0123456789abcdef") == 64;
    return fallback ||
           (len >= 4 && (!strcmp(t + len - 4, ".sig") || !strcmp(t + len - 4, ".att"))) ||
           (len >= 5 && !strcmp(t + len - 5, ".sbom"));
}

static int by_string_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

static int by_semver_desc(const void *a, const void *b)
{
    return berth_semver_compare(*(char *const *)b, *(char *const *)a);
}

static void print_rows(const cli_cmd *cmd, char *const *cells, size_t n)
{
    static const char *const heads[NCOL] = {"ARTIFACT", "DIGEST", "SOURCE", "REVISION", "TAG"};
    static const char *const keys[NCOL] = {"artifact", "digest", "source", "revision", "tag"};

    if (cli_output_format(cmd) != CLI_OUT_JSON) {
        cli_table(stdout, heads, NCOL - 1, NCOL, cells, n);
        return;
    }
    fputs(n ? "[\n" : "[]\n", stdout);
    for (size_t i = 0; i < n; i++) {
        cli_json_object(stdout, 2, keys, (const char *const *)cells + i * NCOL, NCOL);
        fputs(i + 1 < n ? ",\n" : "\n]\n", stdout);
    }
}

/* GET tag's manifest into the NCOL cells at r. */
static int fetch_row(char **r, berth_oci_client *c, berth_oci_ref *ref, const char *tag,
                     berth_error **err)
{
    berth_oci_blob blob = {.data = NULL};
    berth_oci_manifest m = {.media_type = NULL};
    const char *v;
    size_t len = strlen(ref->registry) + strlen(ref->repository) + strlen(tag) + 3;
    int rc;

    if ((rc = berth_oci_ref_set(ref, tag, NULL)) < 0 ||
        (rc = berth_oci_manifest_get(&blob, c, ref, err)) < 0 ||
        (rc = berth_oci_manifest_parse(&m, blob.data, blob.len, blob.media_type, err)) < 0)
        goto out;
    r[0] = cli_xmalloc(len);
    snprintf(r[0], len, "%s/%s:%s", ref->registry, ref->repository, tag);
    r[1] = cli_xstrdup(blob.digest);
    v = berth_kv_get(m.annotations, m.annotations_len, BERTH_ANN_SOURCE);
    r[2] = cli_xstrdup(v ? v : "");
    v = berth_kv_get(m.annotations, m.annotations_len, BERTH_ANN_REVISION);
    r[3] = cli_xstrdup(v ? v : "");
    r[4] = cli_xstrdup(tag);
out:
    berth_oci_manifest_dispose(&m);
    berth_oci_blob_dispose(&blob);
    return rc;
}

int cli_list_artifacts(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "filter-regex",
         .kind = CLI_STR,
         .meta = "RE",
         .help = "keep tags matching this RE2 expression (unanchored)"},
        {.name = "filter-semver",
         .kind = CLI_STR,
         .meta = "CONSTRAINT",
         .help = "keep semver tags satisfying the constraint, e.g. \">=1.0.0 <2.0.0\""},
        CLI_FLAG_FORMAT("table|json", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth list artifacts",
                   .usage = "oci://REG/REPO [flags]",
                   .summary = "List the artifacts of a repository, newest tag first.",
                   .examples =
                       "  berth list artifacts oci://127.0.0.1:5000/app --filter-semver='^1'",
                   .min_args = 1,
                   .max_args = 1,
                   .flags = flags};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_semver_constraint *sv = NULL;
    berth_regex *re = NULL;
    berth_error *err = NULL;
    char **tags = NULL, **keep = NULL;
    size_t n_tags = 0, n_keep = 0, n_rows = 0;
    char **cells = NULL;
    bool ok;
    int rc = 0, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE ||
        (code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    if ((cli_str(&cmd, "filter-semver") &&
         (rc = berth_semver_constraint_parse(&sv, cli_str(&cmd, "filter-semver"), &err)) < 0) ||
        (cli_str(&cmd, "filter-regex") &&
         (rc = berth_regex_compile(&re, cli_str(&cmd, "filter-regex"), &err)) < 0)) {
        cli_fail(&cmd, rc, err);
        code = CLI_EXIT_USAGE;
        rc = 0;
        goto out;
    }
    if ((rc = cli_client_new(&client, &cmd, NULL, NULL, &err)) < 0 ||
        (rc = berth_oci_tags_list(&tags, &n_tags, client, &ref, 0, &err)) < 0)
        goto out;
    keep = cli_xmalloc((n_tags + 1) * sizeof(char *));
    for (size_t i = 0; i < n_tags; i++) {
        if (hidden(tags[i]) || (sv && !berth_semver_constraint_check(sv, tags[i])))
            continue;
        if (re && (rc = berth_regex_match(&ok, re, tags[i], &err)) < 0)
            goto out;
        if (!re || ok)
            keep[n_keep++] = tags[i];
    }
    qsort(keep, n_keep, sizeof(char *), sv ? by_semver_desc : by_string_desc);
    cells = cli_xmalloc((n_keep * NCOL + 1) * sizeof(char *));
    for (; n_rows < n_keep; n_rows++) {
        if ((rc = fetch_row(cells + n_rows * NCOL, client, &ref, keep[n_rows], &err)) < 0)
            goto out;
    }
    print_rows(&cmd, cells, n_rows);
    code = CLI_EXIT_OK;
out:
    if (rc < 0)
        code = cli_fail(&cmd, rc, err);
    for (size_t i = 0; i < n_rows * NCOL; i++)
        free(cells[i]);
    free(cells);
    free(keep);
    berth_strv_free(tags, n_tags);
    berth_regex_free(re);
    berth_semver_constraint_free(sv);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
