/*
 * berth run: the engine over a file store: `--config` (Flux-kind YAML), `--state-dir`,
 * `--target=dir:PATH` or `--target=kube` (with --kubeconfig, --context). With --once it reconciles
 * everything once, prints a summary (as `berth get all`) and exits 0 when every object is Ready,
 * else 1. Without it, it runs until SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "cli.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int cli_run(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "config",
         .kind = CLI_STR,
         .meta = "PATH",
         .attrs = CLI_REQUIRED,
         .help = "Flux-kind YAML: a file or a directory of *.yaml files"},
        {.name = "state-dir",
         .kind = CLI_STR,
         .meta = "DIR",
         .def = "./.berth",
         .help = "artifacts, status, inventories and events"},
        {.name = "target",
         .kind = CLI_STR,
         .meta = "dir:PATH|kube",
         .help = "where Kustomizations apply: a directory, or the Kubernetes cluster of the "
                 "kubeconfig (default dir:<state-dir>/target)"},
        {.name = "kubeconfig",
         .kind = CLI_STR,
         .meta = "PATH",
         .help = "with --target=kube (default $KUBECONFIG, in-cluster, ~/.kube/config)"},
        {.name = "context", .kind = CLI_STR, .meta = "NAME", .help = "kubeconfig context"},
        {.name = "once", .kind = CLI_BOOL, .help = "reconcile everything once and exit"},
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth run",
                   .usage = "--config=PATH [--state-dir=DIR] [--target=dir:PATH|kube] "
                            "[--kubeconfig=PATH] [--context=NAME] [--once]",
                   .summary = "Run the GitOps engine: OCIRepository -> Kustomization -> target.",
                   .details = "Logs (logfmt) go to stderr. With --once the exit status is 0 when "
                              "every object is Ready, else 1.",
                   .examples = "  berth run --config=./clusters/edge --state-dir=./.berth "
                               "--target=dir:./out --once\n"
                               "  berth run --config=./clusters/prod --target=kube "
                               "--kubeconfig=./admin.conf --context=prod",
                   .min_args = 0,
                   .max_args = 0,
                   .flags = flags};
    berth_engine_opts opts = BERTH_ENGINE_OPTS_INIT;
    berth_engine_row *rows = NULL;
    berth_error *err = NULL;
    struct sigaction sa;
    bool ready = false;
    size_t n = 0;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    /* Logs are written a field at a time: buffer a line, then one write(2) per line. */
    setvbuf(stderr, NULL, _IOLBF, BUFSIZ);
    opts.config_path = cli_str(&cmd, "config");
    opts.state_dir = cli_str(&cmd, "state-dir");
    opts.target = cli_str(&cmd, "target");
    opts.kubeconfig = cli_str(&cmd, "kubeconfig");
    opts.kube_context = cli_str(&cmd, "context");
    opts.once = cli_bool(&cmd, "once");
    opts.debug = cli_bool(&cmd, "debug");
    opts.stop = &stop_flag;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if ((rc = berth_engine_run(&ready, &opts, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (opts.once && !cli_bool(&cmd, "quiet") &&
        berth_engine_status_list(&rows, &n, opts.state_dir, NULL, NULL) == 0)
        cli_engine_print(stdout, rows, n, false, true);
    code = ready || !opts.once ? CLI_EXIT_OK : CLI_EXIT_FAIL; /* a stopped loop is a clean exit */
out:
    berth_engine_rows_free(rows, n);
    cli_cmd_dispose(&cmd);
    return code;
}
