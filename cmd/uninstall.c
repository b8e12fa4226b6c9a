/*
 * berth uninstall: undo `berth bootstrap --host=ROOT` (docs/cli/berth-uninstall.md). Stops and
 * disables the service when ROOT is this host and systemd runs, removes the unit and the sync
 * config, and keeps what berth applied unless --prune is given. The state directory is kept.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/bootstrap.h>

#include "cli.h"

/* --kube: remove berth's own install from the cluster; prints what happened to each object. */
static int uninstall_kube(const cli_cmd *cmd)
{
    berth_bootstrap_kube_opts ko = BERTH_BOOTSTRAP_KUBE_OPTS_INIT;
    berth_bootstrap_object *objs = NULL;
    bool json = cli_output_format(cmd) == CLI_OUT_JSON;
    berth_error *err = NULL;
    size_t n = 0;
    int rc;

    if (cli_str(cmd, "host") || cli_bool(cmd, "prune"))
        return cli_usage_error(cmd, "--kube: no --host or --prune (the CRDs and what berth "
                                    "applied stay; docs/deploy.md says how to remove them)");
    if (!cli_duration_parse(&ko.timeout_ms, cli_str(cmd, "timeout")))
        return cli_usage_error(cmd, "invalid duration \"%s\" for --timeout",
                               cli_str(cmd, "timeout"));
    /* 0: a day; else end before the --timeout deadline cli_parse armed, to say what is left */
    ko.timeout_ms = ko.timeout_ms == 0     ? 86400000
                    : ko.timeout_ms > 6000 ? ko.timeout_ms - 3000
                                           : ko.timeout_ms / 2;
    ko.kubeconfig = cli_str(cmd, "kubeconfig");
    ko.context = cli_str(cmd, "context");
    rc = berth_bootstrap_kube_uninstall(&objs, &n, &ko, &err);
    if (json)
        fputs("{\n  \"objects\": [", stdout);
    for (size_t i = 0; i < n; i++) {
        const char *keys[2] = {"subject", "action"};
        const char *vals[2] = {objs[i].subject, objs[i].action};
        if (json) {
            fputs(i ? ",\n" : "\n", stdout);
            cli_json_object(stdout, 4, keys, vals, 2);
        } else {
            printf("object    %-10s %s\n", objs[i].action, objs[i].subject);
        }
    }
    if (json)
        fputs(n ? "\n  ]\n}\n" : "]\n}\n", stdout);
    else if (rc == 0)
        printf("kept      the CRDs, namespace %s and every object berth applied\n",
               BERTH_BOOTSTRAP_NAME);
    berth_bootstrap_objects_free(objs, n);
    return rc < 0 ? cli_fail(cmd, rc, err) : CLI_EXIT_OK;
}

int cli_uninstall(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "host",
         .kind = CLI_STR,
         .meta = "ROOT",
         .help = "the root bootstrap --host wrote to (/ for this host)"},
        {.name = "kube",
         .kind = CLI_BOOL,
         .help = "remove berth from the cluster (bootstrap --kube); keeps CRDs and workloads"},
        CLI_FLAGS_KUBECONFIG,
        {.name = "timeout",
         .kind = CLI_STR,
         .meta = "DURATION",
         .def = "5m",
         .help = "with --kube: how long to wait for the berth Deployment to go"},
        {.name = "prune",
         .kind = CLI_BOOL,
         .help = "also delete the objects berth applied (ROOT/var/lib/berth inventories)"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth uninstall",
                   .usage = "--host=ROOT [--prune] | --kube [flags]",
                   .summary = "Remove the berth host service and its config, or berth from a "
                              "cluster.",
                   .details =
                       "  Applied objects stay in place unless --prune is given; the state\n"
                       "  directory ROOT/var/lib/berth is kept. --kube suspends the sync objects,\n"
                       "  deletes the berth Deployment (waiting until it is gone), then the sync\n"
                       "  objects, the key Secret and berth's RBAC; the CRDs, the namespace\n"
                       "  berth-system and everything berth applied stay (docs/deploy.md).",
                   .examples = "  berth uninstall --host=/\n  berth uninstall --host=/ --prune\n"
                               "  berth uninstall --kube --kubeconfig=./admin.conf",
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
        code = uninstall_kube(&cmd);
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
