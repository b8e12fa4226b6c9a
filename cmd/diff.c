/*
 * berth diff artifact: compare a pushed artifact with a local directory by content. Exits 0 with
 * "no changes detected", or 1 with the differing paths (like diff(1), a difference is exit 1).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_diff_artifact(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "path",
         .shorthand = 'f',
         .kind = CLI_STR,
         .meta = "DIR|FILE",
         .attrs = CLI_REQUIRED,
         .help = "local directory or file to compare"},
        CLI_FLAGS_IGNORE,
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth diff artifact",
        .usage = "oci://REG/REPO:TAG|@DIGEST --path=DIR [flags]",
        .summary = "Compare an artifact in a registry with a local directory.",
        .details = "Exit status: 0 when equal, 1 when different (the differing paths are listed)\n"
                   "or on failure, 2 on a usage error.",
        .examples = "  berth diff artifact oci://127.0.0.1:5000/app:v1 --path=./deploy",
        .min_args = 1,
        .max_args = 1,
        .flags = flags};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_error *err = NULL;
    char *ignore = NULL, *report = NULL;
    bool differs = false;
    cli_progress prog;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE ||
        (code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    ignore = cli_ignore_paths(&cmd);
    cli_progress_init(&prog, &cmd);
    if ((rc = cli_client_new(&client, &cmd, NULL, &prog, &err)) == 0)
        rc = berth_artifact_diff(&differs, &report, client, &ref, cli_str(&cmd, "path"), ignore,
                                 &err);
    cli_progress_end(&prog);
    if (rc < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (!differs) {
        puts("no changes detected");
        code = CLI_EXIT_OK;
        goto out;
    }
    if (report && *report)
        fputs(report, stdout);
    if (report && *report && report[strlen(report) - 1] != '\n')
        fputc('\n', stdout);
    fputs("berth: the remote artifact contents differs from the local one\n", stderr);
    code = CLI_EXIT_FAIL;
out:
    free(report);
    free(ignore);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
