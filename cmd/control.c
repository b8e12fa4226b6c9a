/*
 * berth reconcile|suspend|resume source oci NAME | kustomization NAME: the day-2 verbs. When a
 * `berth run` loop is running on the state directory they ask it over its control socket
 * (STATE/berth.sock) to reconcile the object now, or to suspend / resume it. Without a loop,
 * reconcile runs that one object (and its source with --with-source) once in-process from
 * --config, and suspend / resume write or remove the override in the state directory, which the
 * next `berth run` honours.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "cli.h"

typedef enum { ACT_RECONCILE, ACT_SUSPEND, ACT_RESUME } action;

static const char *const act_words[] = {"reconcile", "suspend", "resume"};

/* Ask the loop; CLI_CONTINUE when no loop listens, else the exit code. */
static int ask_loop(const cli_cmd *cmd, const char *state_dir, action act, const char *kind,
                    const char *ns, const char *name, bool with_source)
{
    char path[1024];
    berth_error *err = NULL;
    char *body = NULL;
    int status = 0, rc;

    snprintf(path, sizeof(path), "/v1/%s/%s/%s/%s%s", act_words[act], kind, ns, name,
             with_source ? "?withSource=true" : "");
    rc = berth_engine_control(&status, &body, state_dir, "POST", path, &err);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(err);
        return CLI_CONTINUE;
    }
    if (rc < 0)
        return cli_fail(cmd, rc, err);
    berth_engine_free_string(body);
    if (status == 404) {
        fprintf(stderr, "berth: %s \"%s/%s\" is not in the config of the running loop\n", kind, ns,
                name);
        return CLI_EXIT_FAIL;
    }
    if (status < 200 || status > 299) {
        fprintf(stderr, "berth: the running loop refused the request (HTTP %d)\n", status);
        return CLI_EXIT_FAIL;
    }
    if (!cli_bool(cmd, "quiet"))
        printf("%s requested for %s %s/%s (berth run is running)\n", act_words[act], kind, ns,
               name);
    return CLI_EXIT_OK;
}

static int reconcile_offline(const cli_cmd *cmd, const char *state_dir, const char *kind,
                             const char *ns, const char *name)
{
    berth_engine_opts opts = BERTH_ENGINE_OPTS_INIT;
    berth_engine_row *rows = NULL;
    berth_error *err = NULL;
    bool ready = false;
    size_t n = 0;
    int rc;

    if (!cli_str(cmd, "config")) {
        fprintf(stderr,
                "berth: no berth run loop is listening on \"%s/berth.sock\"; give --config to "
                "reconcile once in-process\n",
                state_dir);
        return CLI_EXIT_FAIL;
    }
    opts.config_path = cli_str(cmd, "config");
    opts.state_dir = state_dir;
    opts.target = cli_str(cmd, "target");
    opts.once = true;
    opts.debug = cli_bool(cmd, "debug");
    opts.only_kind = kind;
    opts.only_ns = ns;
    opts.only_name = name;
    opts.with_source = cli_flag_get(cmd, "with-source")->set && cli_bool(cmd, "with-source");
    opts.log = cli_log_stderr;
    if ((rc = berth_engine_run(&ready, &opts, &err)) < 0)
        return cli_fail(cmd, rc, err);
    if (!cli_bool(cmd, "quiet") && berth_engine_status_list(&rows, &n, state_dir, NULL, NULL) == 0)
        cli_engine_print(stdout, rows, n, false, true);
    berth_engine_rows_free(rows, n);
    return ready ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int control_verb(int argc, char **argv, action act, bool source)
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
         .help = "the object's namespace (the config's default is \"default\")"},
        {.name = "config",
         .kind = CLI_STR,
         .meta = "PATH",
         .help = "reconcile: without a running loop, reconcile once from this config"},
        {.name = "target",
         .kind = CLI_STR,
         .meta = "dir:PATH",
         .help = "reconcile: the target of the in-process run (default dir:<state-dir>/target)"},
        {.name = "with-source",
         .kind = CLI_BOOL,
         .help = "reconcile kustomization: reconcile its OCIRepository first"},
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    static const char *const summaries[] = {
        "Reconcile an object now, through the running loop or once in-process.",
        "Suspend the reconciliation of an object.",
        "Resume the reconciliation of a suspended object."};
    static const char *const details[] = {
        "With a `berth run` loop on the state directory the request goes over its control socket "
        "(STATE/berth.sock) and the loop reconciles the object at once. Without one, the object "
        "(and, with --with-source, its OCIRepository first) is reconciled once in-process from "
        "--config; the exit status is 0 when it ends Ready.",
        "Writes a suspend override into the state directory (STATE/suspend/...): berth cannot "
        "edit your YAML as `flux suspend` patches spec.suspend, so the override wins over "
        "spec.suspend=false until `berth resume`. A running loop is told at once and shows "
        "SUSPENDED True.",
        "Removes the suspend override and makes a running loop reconcile the object at once. "
        "spec.suspend=true in the config still suspends it."};
    char path[64], usage[128];
    cli_cmd cmd = {.path = path,
                   .usage = usage,
                   .summary = summaries[act],
                   .details = details[act],
                   .min_args = source ? 2 : 1,
                   .max_args = source ? 2 : 1,
                   .flags = flags};
    const char *kind = source ? "OCIRepository" : "Kustomization", *name, *ns, *state_dir;
    char examples[256];
    berth_error *err = NULL;
    int code, rc;

    snprintf(path, sizeof(path), "berth %s %s", act_words[act],
             source ? "source" : "kustomization");
    snprintf(usage, sizeof(usage), "%sNAME [-n NAMESPACE] [--state-dir=DIR]%s",
             source ? "oci " : "",
             act != ACT_RECONCILE ? ""
             : source             ? " [--config=PATH]"
                                  : " [--with-source] [--config=PATH]");
    snprintf(examples, sizeof(examples), "  berth %s %s app -n flux-system --state-dir=./.berth",
             act_words[act], source ? "source oci" : "kustomization");
    cmd.examples = examples;
    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if (source && strcmp(cmd.args[0], "oci") != 0) {
        code = cli_usage_error(&cmd, "unknown source type \"%s\" (want oci)", cmd.args[0]);
        goto out;
    }
    if (act != ACT_RECONCILE &&
        (cli_flag_get(&cmd, "config")->set || cli_flag_get(&cmd, "target")->set)) {
        code = cli_usage_error(&cmd, "--config and --target are flags of \"berth reconcile\"");
        goto out;
    }
    if ((act != ACT_RECONCILE || source) && cli_flag_get(&cmd, "with-source")->set) {
        code =
            cli_usage_error(&cmd, "--with-source is a flag of \"berth reconcile kustomization\"");
        goto out;
    }
    name = cmd.args[source ? 1 : 0];
    ns = cli_str(&cmd, "namespace");
    state_dir = cli_str(&cmd, "state-dir");
    if ((code = ask_loop(&cmd, state_dir, act, kind, ns, name,
                         act == ACT_RECONCILE && !source && cli_bool(&cmd, "with-source"))) !=
        CLI_CONTINUE)
        goto out;
    if (act != ACT_RECONCILE) {
        if ((rc = berth_engine_suspend_set(state_dir, kind, ns, name, act == ACT_SUSPEND, &err)) <
            0) {
            code = cli_fail(&cmd, rc, err);
            goto out;
        }
        if (!cli_bool(&cmd, "quiet"))
            printf("%s %s %s/%s (takes effect when berth run next starts)\n",
                   act == ACT_SUSPEND ? "suspended" : "resumed", kind, ns, name);
        code = CLI_EXIT_OK;
        goto out;
    }
    code = reconcile_offline(&cmd, state_dir, kind, ns, name);
out:
    cli_cmd_dispose(&cmd);
    return code;
}

int cli_reconcile_source(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_RECONCILE, true);
}

int cli_reconcile_kustomization(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_RECONCILE, false);
}

int cli_suspend_source(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_SUSPEND, true);
}

int cli_suspend_kustomization(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_SUSPEND, false);
}

int cli_resume_source(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_RESUME, true);
}

int cli_resume_kustomization(int argc, char **argv)
{
    return control_verb(argc, argv, ACT_RESUME, false);
}
