/*
 * berth copy --from-list / --to-registry: mirror many references in one run (issue 6). Called
 * by cli_copy once its flags are parsed; prints one line per reference as it finishes and a
 * summary, or one JSON document; exits non-zero when any reference failed, naming each.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const status_word[] = {"copied", "resumed", "failed"};

static void print_item(void *payload, const berth_copy_item *it)
{
    const cli_cmd *cmd = payload;
    char *why;

    if (cli_output_format(cmd) == CLI_OUT_JSON)
        return;
    if (it->status == BERTH_COPY_ITEM_FAILED) {
        why = berth_error_text(it->error);
        printf("failed  %s: %s\n", it->source, why ? why : "unknown error");
        free(why);
    } else if (it->status == BERTH_COPY_ITEM_RESUMED) {
        printf("done    %s -> %s (%s, in an earlier run)\n", it->source, it->destination,
               it->result.digest);
    } else {
        printf("copied  %s -> %s (%s, %zu blobs sent, %zu present)\n", it->source, it->destination,
               it->result.digest, it->result.blobs, it->result.blobs_skipped);
    }
    fflush(stdout);
}

static void print_json(const berth_copy_list *l, bool kept)
{
    printf("{\n  \"references\": [");
    for (size_t i = 0; i < l->n; i++) {
        const berth_copy_item *it = &l->items[i];
        char *why = it->error ? berth_error_text(it->error) : NULL;
        printf("%s\n    {\"source\": ", i ? "," : "");
        cli_json_str(stdout, it->source);
        fputs(", \"destination\": ", stdout);
        cli_json_str(stdout, it->destination);
        printf(", \"status\": \"%s\", \"digest\": ", status_word[it->status]);
        cli_json_str(stdout, it->result.digest[0] ? it->result.digest : NULL);
        printf(", \"manifests\": %zu, \"manifests_skipped\": %zu, \"blobs\": %zu, "
               "\"blobs_skipped\": %zu, \"signatures\": %zu, \"error\": ",
               it->result.manifests, it->result.manifests_skipped, it->result.blobs,
               it->result.blobs_skipped, it->result.signatures);
        cli_json_str(stdout, why);
        fputc('}', stdout);
        free(why);
    }
    printf("%s],\n  \"copied\": %zu,\n  \"resumed\": %zu,\n  \"failed\": %zu,\n  \"state_file\": ",
           l->n ? "\n  " : "", l->copied, l->resumed, l->failed);
    cli_json_str(stdout, kept ? l->state_file : NULL);
    fputs("\n}\n", stdout);
}

static bool is_file_location(const char *loc)
{
    return strncmp(loc, "oci-layout:", 11) == 0 || strncmp(loc, "oci-archive:", 12) == 0;
}

/* Which of the three list-mode forms cmd is; prints the usage error and returns false if none. */
static bool check_form(cli_cmd *cmd, int *code)
{
    bool to_reg = cli_str(cmd, "to-registry") != NULL, list = cli_str(cmd, "from-list") != NULL;

    if (!(to_reg ? (cmd->n_args == 1 || (list && cmd->n_args == 0)) : cmd->n_args == 1)) {
        *code = cli_usage_error(cmd, "list mode wants --from-list=FILE with DST or "
                                     "--to-registry, or oci-archive:FILE|oci-layout:DIR "
                                     "with --to-registry");
        return false;
    }
    if (cmd->n_args == 1 && !is_file_location(cmd->args[0])) {
        *code = cli_usage_error(cmd,
                                "\"%s\": list mode takes oci-archive:FILE or oci-layout:DIR "
                                "here (registries: --to-registry)",
                                cmd->args[0]);
        return false;
    }
    return true;
}

static int run(cli_cmd *cmd, berth_oci_client *src, berth_oci_client *dst, cli_progress *prog)
{
    berth_copy_list_opts opts;
    berth_copy_list res;
    berth_error *err = NULL;
    char **refs = NULL;
    size_t n_refs = 0;
    const char *list = cli_str(cmd, "from-list");
    int rc = 0, code = CLI_EXIT_OK, worst = 0;

    memset(&opts, 0, sizeof(opts));
    memset(&res, 0, sizeof(res));
    opts.version = BERTH_COPY_LIST_OPTS_VERSION;
    opts.copy.version = BERTH_COPY_OPTS_VERSION;
    opts.copy.src_client = src;
    opts.copy.dst_client = dst;
    opts.copy.skip_signatures = cli_bool(cmd, "no-signatures");
    if (prog->enabled) {
        opts.copy.progress = cli_progress_cb;
        opts.copy.progress_payload = prog;
    }
    opts.to_registry = cli_str(cmd, "to-registry");
    opts.state_file = cli_str(cmd, "state-file");
    opts.list_file = list;
    opts.on_item = print_item;
    opts.payload = cmd;
    /* the positional argument is the archive/layout side: the source when --to-registry */
    if (cmd->n_args == 1 && opts.to_registry)
        opts.from = cmd->args[0];
    else if (cmd->n_args == 1)
        opts.to = cmd->args[0];
    if (list && (rc = berth_copy_list_read(&refs, &n_refs, list, &err)) < 0)
        goto out;
    rc = berth_copy_list_run(&res, refs, n_refs, &opts, &err);
    cli_progress_end(prog);
    if (rc < 0)
        goto out;
    if (cli_output_format(cmd) == CLI_OUT_JSON)
        print_json(&res, res.failed > 0);
    else
        printf("%zu references: %zu copied, %zu done in an earlier run, %zu failed\n", res.n,
               res.copied, res.resumed, res.failed);
    if (res.failed > 0) {
        fprintf(stderr, "berth: %zu of %zu references failed:", res.failed, res.n);
        for (size_t i = 0; i < res.n; i++) {
            if (res.items[i].status != BERTH_COPY_ITEM_FAILED)
                continue;
            fprintf(stderr, " %s", res.items[i].source);
            if (cli_exit_code(berth_error_code(res.items[i].error)) > worst)
                worst = cli_exit_code(berth_error_code(res.items[i].error));
        }
        fprintf(stderr, "\nberth: progress kept in %s: run the same command again to resume\n",
                res.state_file);
        code = worst;
    }
out:
    if (rc < 0)
        code = cli_fail(cmd, rc, err);
    berth_copy_list_dispose(&res);
    berth_strv_free(refs, n_refs);
    return code;
}

int cli_copy_list(cli_cmd *cmd)
{
    berth_oci_client *src = NULL, *dst = NULL;
    berth_error *err = NULL;
    bool to_reg = cli_str(cmd, "to-registry") != NULL;
    cli_progress prog;
    int rc = 0, code = CLI_EXIT_OK;

    if (!check_form(cmd, &code))
        return code;
    cli_progress_init(&prog, cmd);
    /* a registry source unless the positional archive/layout is the source */
    if ((cmd->n_args == 0 || !to_reg) && (rc = cli_client_new(&src, cmd, "src", &prog, &err)) < 0)
        goto out;
    if (to_reg && (rc = cli_client_new(&dst, cmd, "dest", &prog, &err)) < 0)
        goto out;
    code = run(cmd, src, dst, &prog);
out:
    if (rc < 0)
        code = cli_fail(cmd, rc, err);
    berth_oci_client_free(src);
    berth_oci_client_free(dst);
    return code;
}
