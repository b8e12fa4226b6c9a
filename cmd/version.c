/* berth version: the version of the berth binary (which embeds the library). */
#include "cli.h"

int cli_version(int argc, char **argv)
{
    cli_flag flags[] = {
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth version",
                   .usage = "[flags]",
                   .summary = "Print the berth version.",
                   .min_args = 0,
                   .max_args = 0,
                   .flags = flags};
    int code;

    if ((code = cli_parse(&cmd, argc, argv)) == CLI_CONTINUE) {
        if (cli_output_format(&cmd) == CLI_OUT_JSON) {
            fputs("{\n  \"version\": ", stdout);
            cli_json_str(stdout, berth_version());
            fputs("\n}\n", stdout);
        } else {
            printf("berth version %s\n", berth_version());
        }
        code = CLI_EXIT_OK;
    }
    cli_cmd_dispose(&cmd);
    return code;
}
