/*
 * berth uninstall: undo `berth bootstrap --host=ROOT` (docs/cli/berth-uninstall.md). Stops and
 * disables the service when ROOT is this host and systemd runs, removes the unit and the sync
 * config, and keeps what berth applied unless --prune is given. The state directory is kept.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/bootstrap.h>

#include "cli.h"

int cli_uninstall(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "host",
         .kind = CLI_STR,
         .meta = "ROOT",
         .help = "the root bootstrap --host wrote to (/ for this host)"},
        {.name = "kube", .kind = CLI_BOOL, .help = "uninstall from the current Kubernetes cluster"},
        {.name = "prune",
         .kind = CLI_BOOL,
         .help = "also delete the objects berth applied (ROOT/var/lib/berth inventories)"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth uninstall",
                   .usage = "--host=ROOT [--prune] [flags]",
                   .summary = "Remove the berth host service and its config.",
                   .details = "  Applied objects stay in place unless --prune is given; the state\n"
                              "  directory ROOT/var/lib/berth is kept.",
                   .examples = "  berth uninstall --host=/\n  berth uninstall --host=/ --prune",
                   .min_args = 0,
                   .max_args = 0,
                   .flags = flags};
    static const char *const disable[] = {"systemctl", "disable", "--now", "berth", NULL};
    static const char *const reload[] = {"systemctl", "daemon-reload", NULL};
    berth_bootstrap_file *files = NULL;
    berth_error *err = NULL;
    const char *root;
    char *state = NULL, *target = NULL;
    size_t n = 0, pruned = 0, len;
    bool json, live;
    int rc = 0, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if (cli_bool(&cmd, "kube")) {
        code = CLI_EXIT_FAIL;
        fputs("berth: --kube: uninstalling from a Kubernetes cluster is not yet available; "
              "use --host=ROOT\n",
              stderr);
        goto out;
    }
    if (!(root = cli_str(&cmd, "host"))) {
        code = cli_usage_error(&cmd, "--host=ROOT is required");
        goto out;
    }
    json = cli_output_format(&cmd) == CLI_OUT_JSON;
    live = cli_host_is_live(root);
    if (live) /* stop first: the state lock is free for --prune, nothing runs on a removed unit */
        cli_systemctl(disable, true);
    len = strlen(root) + 32;
    state = cli_xmalloc(len);
    target = cli_xmalloc(len);
    snprintf(state, len, "%s/var/lib/berth", strcmp(root, "/") == 0 ? "" : root);
    snprintf(target, len, "%s/target", state);
    if (cli_bool(&cmd, "prune") && (rc = berth_bootstrap_prune(&pruned, state, target, &err)) < 0)
        goto out;
    if ((rc = berth_bootstrap_host_uninstall(&files, &n, root, &err)) < 0)
        goto out;
    if (live)
        cli_systemctl(reload, false);
    if (json) {
        printf("{\n  \"pruned\": %zu,\n  \"files\": [", pruned);
        for (size_t i = 0; i < n; i++) {
            const char *keys[2] = {"path", "state"};
            const char *vals[2] = {files[i].path, berth_bootstrap_state_name(files[i].state)};
            fputs(i ? ",\n" : "\n", stdout);
            cli_json_object(stdout, 4, keys, vals, 2);
        }
        fputs("\n  ]\n}\n", stdout);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("file      %-9s %s\n", berth_bootstrap_state_name(files[i].state),
                   files[i].path);
        if (cli_bool(&cmd, "prune"))
            printf("pruned    %zu object%s from %s\n", pruned, pruned == 1 ? "" : "s", target);
        else
            printf("kept      the applied objects in %s (--prune deletes them)\n", target);
        if (!live)
            printf("service   on that host, run: systemctl disable --now berth && "
                   "systemctl daemon-reload\n");
    }
    code = CLI_EXIT_OK;
out:
    if (rc < 0)
        code = cli_fail(&cmd, rc, err);
    berth_bootstrap_files_free(files, n);
    free(state);
    free(target);
    cli_cmd_dispose(&cmd);
    return code;
}
