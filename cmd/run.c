/*
 * berth run: the engine over a file store: `--config` (Flux-kind YAML), `--state-dir`,
 * `--target=dir:PATH` or `--target=kube` (with --kubeconfig, --context). With --once it reconciles
 * everything once, prints a summary (as `berth get all`) and exits 0 when every object is Ready,
 * else 1. Without it, it runs until SIGTERM or SIGINT (in-flight reconciles finish, exit 0);
 * SIGHUP reloads the config.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/engine.h>

#include "cli.h"

static volatile sig_atomic_t stop_flag, reload_flag;

void cli_log_stderr(void *payload, const char *line, size_t len)
{
    (void)payload;
    while (len > 0) { /* one write for any line under PIPE_BUF; a short write goes on */
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        line += w;
        len -= (size_t)w;
    }
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

int cli_run(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "config",
         .kind = CLI_STR,
         .meta = "PATH",
         .help = "Flux-kind YAML: a file or a directory of *.yaml files (required without "
                 "--kube)"},
        {.name = "kube",
         .kind = CLI_BOOL,
         .help = "controller mode: the OCIRepository and Kustomization objects of the Kubernetes "
                 "API (the kubeconfig's cluster); their status is written back; implies "
                 "--target=kube; the default inside a pod when --config is not given"},
        {.name = "watch-label-selector",
         .kind = CLI_STR,
         .meta = "SELECTOR",
         .help = "with --kube: only the objects this label selector matches (sharding)"},
        {.name = "leader-elect",
         .kind = CLI_STR,
         .meta = "true|false",
         .def = "true",
         .help = "with --kube: reconcile only while holding the Lease berth-leader, so two "
                 "replicas never reconcile at once"},
        {.name = "leader-election-namespace",
         .kind = CLI_STR,
         .meta = "NS",
         .help = "the Lease's namespace (default the pod's, or the kubeconfig context's)"},
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
        {.name = "insecure-kubeconfig-exec",
         .kind = CLI_BOOL,
         .help = "let the kubeconfig of a Kustomization's spec.kubeConfig Secret run an exec "
                 "credential plugin (refused by default, as Flux)"},
        {.name = "insecure-kubeconfig-tls",
         .kind = CLI_BOOL,
         .help = "let such a kubeconfig skip TLS verification (insecure-skip-tls-verify)"},
        {.name = "once", .kind = CLI_BOOL, .help = "reconcile everything once and exit"},
        {.name = "workers",
         .kind = CLI_STR,
         .meta = "N",
         .def = "4",
         .help = "reconciles run at once (1..64)"},
        {.name = "log-format",
         .kind = CLI_STR,
         .meta = "logfmt|json",
         .def = "logfmt",
         .help = "log lines on stderr: logfmt, or one JSON object per line"},
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth run",
                   .usage = "--config=PATH|--kube [--watch-label-selector=SEL] [--state-dir=DIR] "
                            "[--target=dir:PATH|kube] "
                            "[--kubeconfig=PATH] [--context=NAME] [--once] [--workers=N] "
                            "[--log-format=logfmt|json]",
                   .summary = "Run the GitOps engine: OCIRepository -> Kustomization -> target.",
                   .details = "Logs go to stderr, one line per record: logfmt (ts, level, event, "
                              "kind, name, msg), or with --log-format=json one JSON object with "
                              "the same fields. With --once the exit status is 0 when every "
                              "object is Ready, else 1. Without it the loop reloads the config on "
                              "SIGHUP and when its files change (checked every 2 s), and stops on "
                              "SIGTERM or SIGINT after the reconciles in flight.",
                   .examples =
                       "  berth run --config=./clusters/edge --state-dir=./.berth "
                       "--target=dir:./out --once\n"
                       "  berth run --config=./clusters/prod --target=kube "
                       "--kubeconfig=./admin.conf --context=prod\n"
                       "  berth run --kube --kubeconfig=./admin.conf --state-dir=/var/lib/berth",
                   .min_args = 0,
                   .max_args = 0,
                   .flags = flags};
    berth_engine_opts opts = BERTH_ENGINE_OPTS_INIT;
    berth_engine_row *rows = NULL;
    berth_error *err = NULL;
    struct sigaction sa;
    bool ready = false;
    size_t n = 0;
    const char *workers;
    char *end = NULL;
    long nw;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if (strcmp(cli_str(&cmd, "log-format"), "logfmt") == 0) {
        opts.log_format = BERTH_LOG_LOGFMT;
    } else if (strcmp(cli_str(&cmd, "log-format"), "json") == 0) {
        opts.log_format = BERTH_LOG_JSON;
    } else {
        code = cli_usage_error(&cmd, "--log-format must be \"logfmt\" or \"json\", not \"%s\"",
                               cli_str(&cmd, "log-format"));
        goto out;
    }
    opts.log = cli_log_stderr;
    /* a long-lived, mostly idle process; BERTH_IDLE_RELEASE=0 keeps the pages (to measure) */
    opts.release_idle_pages =
        !getenv("BERTH_IDLE_RELEASE") || strcmp(getenv("BERTH_IDLE_RELEASE"), "0") != 0;
#ifdef M_ARENA_MAX
    /* glibc gives each thread that allocates (extraction, workers) an arena of its own, up to
     * 8 per core, and keeps their free pages: two arenas bound what idle RSS can hold */
    (void)mallopt(M_ARENA_MAX, 2);
#endif
    opts.config_path = cli_str(&cmd, "config");
    /* inside a pod without --config: controller mode */
    opts.kube_store =
        cli_bool(&cmd, "kube") || (!opts.config_path && getenv("KUBERNETES_SERVICE_HOST") &&
                                   getenv("KUBERNETES_SERVICE_HOST")[0]);
    if (opts.kube_store && opts.config_path) {
        code = cli_usage_error(&cmd, "--config and --kube exclude each other");
        goto out;
    }
    if (!opts.kube_store && !opts.config_path) {
        code = cli_usage_error(&cmd, "--config is required (or --kube for controller mode)");
        goto out;
    }
    opts.watch_label_selector = cli_str(&cmd, "watch-label-selector");
    if (strcmp(cli_str(&cmd, "leader-elect"), "true") != 0 &&
        strcmp(cli_str(&cmd, "leader-elect"), "false") != 0) {
        code = cli_usage_error(&cmd, "--leader-elect must be \"true\" or \"false\", not \"%s\"",
                               cli_str(&cmd, "leader-elect"));
        goto out;
    }
    opts.leader_elect = opts.kube_store && !cli_bool(&cmd, "once") &&
                        strcmp(cli_str(&cmd, "leader-elect"), "true") == 0;
    opts.leader_election_namespace = cli_str(&cmd, "leader-election-namespace");
    if (opts.watch_label_selector && !opts.kube_store) {
        code = cli_usage_error(&cmd, "--watch-label-selector needs --kube");
        goto out;
    }
    opts.state_dir = cli_str(&cmd, "state-dir");
    opts.target = cli_str(&cmd, "target");
    if (opts.kube_store && !opts.target)
        opts.target = "kube";
    opts.kubeconfig = cli_str(&cmd, "kubeconfig");
    opts.kube_context = cli_str(&cmd, "context");
    opts.insecure_kubeconfig_exec = cli_bool(&cmd, "insecure-kubeconfig-exec");
    opts.insecure_kubeconfig_tls = cli_bool(&cmd, "insecure-kubeconfig-tls");
    opts.once = cli_bool(&cmd, "once");
    opts.debug = cli_bool(&cmd, "debug");
    workers = cli_str(&cmd, "workers");
    nw = strtol(workers, &end, 10);
    if (end == workers || *end || nw < 1 || nw > 64) {
        code = cli_usage_error(&cmd, "--workers \"%s\" is not a number from 1 to 64", workers);
        goto out;
    }
    opts.workers = (unsigned int)nw;
    opts.stop = &stop_flag;
    opts.reload = &reload_flag;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
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
