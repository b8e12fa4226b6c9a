/*
 * berth get sources oci|kustomizations|images all|repository|policy|update|all [NAME]: the status
 * the engine wrote, as `flux get` prints it (NAME, REVISION, SUSPENDED, READY, MESSAGE), or the
 * status documents with -o json. Reads the state directory's status files; needs no lock, so it
 * works while `berth run` is running.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "cli.h"

/* On stderr (so -o json stays one document): the running berth kept its previous config. */
static void config_error_warn(const char *state_dir)
{
    char *text = NULL, *nl;
    if (berth_engine_config_error(&text, state_dir, NULL) < 0 || !text)
        return;
    nl = strchr(text, '\n');
    fprintf(stderr,
            "berth: warning: a config file failed as a whole (since %.*s): the objects below are "
            "from the last configuration that loaded, and nothing is pruned or collected until "
            "it is fixed:\n",
            nl ? (int)(nl - text) : 0, text);
    for (char *line = nl ? nl + 1 : text; *line;) {
        char *end = strchr(line, '\n');
        fprintf(stderr, "  %.*s\n", end ? (int)(end - line) : (int)strlen(line), line);
        line = end ? end + 1 : line + strlen(line);
    }
    berth_engine_free_string(text);
}

void cli_engine_print(FILE *f, const berth_engine_row *rows, size_t n, bool json, bool kinds)
{
    static const char *const heads[] = {"NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"};
    static char s_true[] = "True", s_false[] = "False";
    char **cells;

    if (json) {
        fputs("[", f);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s\n  {\"kind\": ", i ? "," : "");
            cli_json_str(f, rows[i].kind);
            fputs(", \"namespace\": ", f);
            cli_json_str(f, rows[i].ns);
            fputs(", \"name\": ", f);
            cli_json_str(f, rows[i].name);
            fprintf(f, ", \"status\": %s}", rows[i].status_json);
        }
        fputs(n ? "\n]\n" : "]\n", f);
        return;
    }
    cells = cli_xmalloc((n + 1) * 5 * sizeof(*cells));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(rows[i].kind) + strlen(rows[i].ns) + strlen(rows[i].name) + 3;
        char *name = cli_xmalloc(len);
        if (kinds) {
            size_t k = 0;
            for (; rows[i].kind[k]; k++) /* "ocirepository/NAME", "imagepolicy/NAME" ... */
                name[k] = (char)(rows[i].kind[k] >= 'A' && rows[i].kind[k] <= 'Z'
                                     ? rows[i].kind[k] - 'A' + 'a'
                                     : rows[i].kind[k]);
            snprintf(name + k, len - k, "/%s", rows[i].name);
        } else
            snprintf(name, len, "%s", rows[i].name);
        cells[i * 5] = name;
        cells[i * 5 + 1] = rows[i].revision;
        cells[i * 5 + 2] = rows[i].suspended ? s_true : s_false;
        cells[i * 5 + 3] = rows[i].ready;
        cells[i * 5 + 4] = rows[i].message;
    }
    cli_table(f, heads, 5, 5, cells, n);
    for (size_t i = 0; i < n; i++)
        free(cells[i * 5]);
    free(cells);
}

int cli_get(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "state-dir",
         .kind = CLI_STR,
         .meta = "DIR",
         .def = "./.berth",
         .help = "the state directory of `berth run`"},
        {.name = "namespace",
         .shorthand = 'n',
         .kind = CLI_STR,
         .meta = "NS",
         .help = "with NAME: the object's namespace (default: any)"},
        CLI_FLAG_FORMAT("table|json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth get",
                   .usage = "sources oci [NAME]|kustomizations [NAME]|"
                            "images all|repository|policy|update [NAME]|all [flags]",
                   .summary = "Show the status of the engine's objects.",
                   .details = "Reads the status files of the state directory (no lock needed).",
                   .examples = "  berth get all --state-dir=./.berth\n"
                               "  berth get sources oci -o json\n"
                               "  berth get kustomization web -n apps -o json\n"
                               "  berth get images policy -o json",
                   .min_args = 1,
                   .max_args = 3,
                   .flags = flags};
    berth_engine_row *rows = NULL;
    berth_error *err = NULL;
    const char *kind = NULL, *what, *only = NULL, *ns;
    size_t n = 0, kept = 0;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    what = cmd.args[0];
    if (strcmp(what, "sources") == 0 || strcmp(what, "source") == 0) {
        if (cmd.n_args < 2 ||
            (strcmp(cmd.args[1], "oci") != 0 && strcmp(cmd.args[1], "all") != 0)) {
            code = cli_usage_error(&cmd, "\"berth get sources\" takes \"oci\" (or \"all\")");
            goto out;
        }
        kind = "OCIRepository";
        only = cmd.n_args == 3 ? cmd.args[2] : NULL;
    } else if (strcmp(what, "kustomizations") == 0 || strcmp(what, "kustomization") == 0 ||
               strcmp(what, "ks") == 0) {
        kind = "Kustomization";
    } else if (strcmp(what, "images") == 0 || strcmp(what, "image") == 0) {
        static const char *const words[] = {"all", "repository", "policy", "update"};
        static const char *const kinds[] = {"images", "ImageRepository", "ImagePolicy",
                                            "ImageUpdateAutomation"};
        for (size_t i = 0; cmd.n_args >= 2 && i < 4; i++)
            if (strcmp(cmd.args[1], words[i]) == 0)
                kind = kinds[i];
        only = cmd.n_args == 3 ? cmd.args[2] : NULL;
        if (!kind) {
            code = cli_usage_error(&cmd, "\"berth get images\" takes all, repository, policy or "
                                         "update");
            goto out;
        }
    } else if (strcmp(what, "all") != 0) {
        code = cli_usage_error(&cmd,
                               "unknown object type \"%s\" (want sources oci, "
                               "kustomizations, images or all)",
                               what);
        goto out;
    }
    if (kind && strcmp(kind, "Kustomization") == 0)
        only = cmd.n_args >= 2 ? cmd.args[1] : NULL;
    if ((!kind && cmd.n_args > 1) ||
        (kind && strcmp(kind, "Kustomization") == 0 && cmd.n_args > 2)) {
        code = cli_usage_error(&cmd, "unexpected argument \"%s\"", cmd.args[cmd.n_args - 1]);
        goto out;
    }
    if ((rc = berth_engine_status_list(&rows, &n, cli_str(&cmd, "state-dir"), kind, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    ns = cli_str(&cmd, "namespace");
    for (size_t i = 0; i < n; i++) { /* keep the rows of NAME (and NS) only */
        bool keep =
            (!only || strcmp(rows[i].name, only) == 0) && (!ns || strcmp(rows[i].ns, ns) == 0);
        if (keep) {
            berth_engine_row t = rows[kept];
            rows[kept++] = rows[i];
            rows[i] = t;
        }
    }
    if ((only || ns) && kept == 0) {
        fprintf(stderr, "berth: %s %s%s%s not found in \"%s\"\n", kind ? kind : "object",
                ns ? ns : "", ns ? "/" : "", only ? only : "*", cli_str(&cmd, "state-dir"));
        code = CLI_EXIT_FAIL;
        goto out;
    }
    config_error_warn(cli_str(&cmd, "state-dir"));
    if (kept == 0 && cli_output_format(&cmd) != CLI_OUT_JSON)
        fputs("no objects found\n", stderr);
    else
        cli_engine_print(stdout, rows, kept, cli_output_format(&cmd) == CLI_OUT_JSON,
                         !kind || strcmp(kind, "images") == 0);
    code = CLI_EXIT_OK;
out:
    berth_engine_rows_free(rows, n);
    cli_cmd_dispose(&cmd);
    return code;
}
