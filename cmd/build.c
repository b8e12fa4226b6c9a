/*
 * berth build artifact: only the local step of a push: archive a directory (or file) into the
 * reproducible .tar.gz an artifact layer holds. No network.
 */
#include <stdlib.h>

#include "cli.h"

int cli_build_artifact(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "path",
         .shorthand = 'f',
         .kind = CLI_STR,
         .meta = "DIR|FILE",
         .attrs = CLI_REQUIRED,
         .help = "directory or file to archive"},
        {.name = "output",
         .kind = CLI_STR,
         .meta = "FILE.tgz",
         .attrs = CLI_REQUIRED,
         .help = "where to write the archive"},
        CLI_FLAGS_IGNORE,
        CLI_FLAG_FORMAT("json", NULL),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth build artifact",
        .usage = "--path=DIR --output=FILE.tgz [flags]",
        .summary = "Archive a directory into an artifact layer (.tar.gz) without pushing it.",
        .details = "The archive is reproducible: the same tree always gives the same digest.",
        .examples = "  berth build artifact --path=./deploy --output=./deploy.tgz",
        .min_args = 0,
        .max_args = 0,
        .flags = flags};
    berth_artifact_build_opts opts = {.version = BERTH_ARTIFACT_BUILD_OPTS_VERSION, .level = 1};
    berth_artifact_layer layer;
    berth_error *err = NULL;
    char *ignore = NULL;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    ignore = cli_ignore_paths(&cmd);
    opts.ignore_paths = ignore;
    rc = berth_artifact_build(&layer, cli_str(&cmd, "path"), cli_str(&cmd, "output"), &opts, &err);
    if (rc < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (cli_output_format(&cmd) == CLI_OUT_JSON) {
        fputs("{\n  \"path\": ", stdout);
        cli_json_str(stdout, cli_str(&cmd, "output"));
        fputs(",\n  \"digest\": ", stdout);
        cli_json_str(stdout, layer.digest);
        fputs(",\n  \"diff_id\": ", stdout);
        cli_json_str(stdout, layer.diff_id);
        printf(",\n  \"size\": %lld,\n  \"files\": %lld\n}\n", (long long)layer.size,
               (long long)layer.files);
    } else {
        printf("artifact created at %s (%s, %lld files, %lld bytes)\n", cli_str(&cmd, "output"),
               layer.digest, (long long)layer.files, (long long)layer.size);
    }
    code = CLI_EXIT_OK;
out:
    free(ignore);
    cli_cmd_dispose(&cmd);
    return code;
}
