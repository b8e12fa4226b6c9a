/*
 * berth tree kustomization NAME: the objects a Kustomization applied (its inventory in the state
 * directory) as a tree under the Kustomization, like `flux tree kustomization`, or as a JSON
 * array with -o json. Needs no lock, so it works while `berth run` is running.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "cli.h"

int cli_tree_kustomization(int argc, char **argv)
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
         .def = "default",
         .help = "the Kustomization's namespace (the config's default is \"default\")"},
        CLI_FLAG_FORMAT("tree|json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth tree kustomization",
                   .usage = "NAME [-n NAMESPACE] [--state-dir=DIR] [-o json]",
                   .summary = "Show the objects a Kustomization applied, as a tree.",
                   .details = "Reads the Kustomization's inventory in the state directory.",
                   .examples = "  berth tree kustomization app -n flux-system --state-dir=./.berth",
                   .min_args = 1,
                   .max_args = 1,
                   .flags = flags};
    berth_engine_object *objs = NULL;
    berth_error *err = NULL;
    const char *ns;
    size_t n = 0;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    ns = cli_str(&cmd, "namespace");
    if ((rc = berth_engine_inventory_list(&objs, &n, cli_str(&cmd, "state-dir"), ns, cmd.args[0],
                                          &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (cli_output_format(&cmd) == CLI_OUT_JSON) {
        static const char *const keys[] = {"group", "version", "kind", "namespace", "name"};
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            const char *vals[] = {objs[i].group, objs[i].version, objs[i].kind, objs[i].ns,
                                  objs[i].name};
            fputs(i ? ",\n  " : "\n  ", stdout);
            cli_json_object(stdout, 2, keys, vals, 5);
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
        code = CLI_EXIT_OK;
        goto out;
    }
    printf("Kustomization/%s/%s\n", ns, cmd.args[0]);
    for (size_t i = 0; i < n; i++) {
        printf("%s %s/%s%s%s\n", i + 1 == n ? "\u2514\u2500\u2500" : "\u251c\u2500\u2500",
               objs[i].kind, objs[i].ns, objs[i].ns[0] ? "/" : "", objs[i].name);
    }
    code = CLI_EXIT_OK;
out:
    berth_engine_objects_free(objs, n);
    cli_cmd_dispose(&cmd);
    return code;
}
