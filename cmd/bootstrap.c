/*
 * berth bootstrap: make a registry artifact the source of a berth install (docs/edge.md,
 * docs/cli/berth-bootstrap.md). With --path it pushes DIR plus the sync config (berth-system/)
 * as a signed artifact; with --host=ROOT it writes the config, the public key and the systemd
 * unit under ROOT and, on this host with systemd running, enables the service. Every step says
 * whether it created, updated or left unchanged what it touched.
 */
#define _XOPEN_SOURCE 700 /* realpath(3) is XSI */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <berth/bootstrap.h>

#include "cli.h"

typedef struct boot_ctx {
    const cli_cmd *cmd;
    berth_oci_client *client;
    berth_oci_ref ref;
    berth_bootstrap_opts opts;
    berth_buf pub;         /* the public key PEM, empty without a key */
    const char *key_name;  /* where it came from */
    char digest[72];       /* the artifact's digest */
    const char *art_state; /* "created", "updated", "unchanged", NULL: not pushed */
    bool verified;
    char *stage; /* the pushed tree (--kube installs it), or NULL */
} boot_ctx;

int cli_systemctl(const char *const *args, bool quiet)
{
    pid_t pid = fork();
    int status = 0;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp("systemctl", (char *const *)(uintptr_t)args);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!quiet && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fprintf(stderr, "berth: systemctl %s %s failed\n", args[1], args[2] ? args[2] : "");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

bool cli_host_is_live(const char *root)
{
    char real[PATH_MAX];
    return realpath(root, real) && strcmp(real, "/") == 0 &&
           access("/run/systemd/system", F_OK) == 0;
}

/* The public key: --verify-key, else the public half of --sign-key; both must agree. */
static int load_pub(boot_ctx *b, const berth_sign_privkey *skey)
{
    const char *vpath = cli_str(b->cmd, "verify-key");
    berth_buf derived = BERTH_BUF_INIT;
    berth_sign_pubkey *pk = NULL;
    berth_error *err = NULL;
    int rc = 0;

    if (vpath && ((rc = berth_sign_pubkey_load_file(&pk, vpath, &err)) < 0 ||
                  (rc = berth_sign_pubkey_pem(&b->pub, pk, &err)) < 0))
        goto out;
    if (skey && (rc = berth_sign_privkey_public_pem(&derived, skey, &err)) < 0)
        goto out;
    if (vpath && skey &&
        (derived.len != b->pub.len || memcmp(derived.ptr, b->pub.ptr, b->pub.len))) {
        fprintf(stderr, "berth: --verify-key \"%s\" is not the public half of --sign-key \"%s\"\n",
                vpath, cli_str(b->cmd, "sign-key"));
        berth_buf_dispose(&derived);
        berth_sign_pubkey_free(pk);
        return CLI_EXIT_USAGE;
    }
    if (!vpath && skey) {
        berth_buf_dispose(&b->pub);
        b->pub = derived;
        derived = (berth_buf)BERTH_BUF_INIT;
    }
    b->key_name = vpath ? vpath : cli_str(b->cmd, "sign-key");
out:
    berth_buf_dispose(&derived);
    berth_sign_pubkey_free(pk);
    return rc < 0 ? cli_fail(b->cmd, rc, err) : CLI_CONTINUE;
}

/* Push DIR + berth-system/ (reproducibly, so an unchanged tree is an unchanged digest). */
static int push(boot_ctx *b, const berth_sign_privkey *skey)
{
    berth_push_opts popts = BERTH_PUSH_OPTS_INIT;
    berth_push_result res = {.repository = NULL};
    const char *tmp = getenv("TMPDIR");
    berth_error *err = NULL;
    char *old = NULL;
    int rc, code = CLI_CONTINUE;

    rc = berth_oci_manifest_head(&old, NULL, b->client, &b->ref, &err);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(err); /* a first bootstrap: nothing there yet */
        err = NULL;
        rc = 0;
    }
    if (rc < 0 || (rc = berth_bootstrap_stage(&b->stage, cli_str(b->cmd, "path"),
                                              tmp && *tmp ? tmp : "/tmp", &b->opts, &err)) < 0)
        goto out;
    popts.source = cli_str(b->cmd, "source");
    popts.revision = cli_str(b->cmd, "revision");
    popts.reproducible = true;
    if ((rc = berth_artifact_push(&res, b->client, &b->ref, b->stage, &popts, &err)) < 0)
        goto out;
    snprintf(b->digest, sizeof(b->digest), "%s", res.digest);
    b->art_state = !old ? "created" : strcmp(old, res.digest) == 0 ? "unchanged" : "updated";
    if (skey) {
        berth_oci_ref signed_ref = {.registry = NULL};
        if (berth_oci_ref_copy(&signed_ref, &b->ref, NULL) < 0 ||
            berth_oci_ref_set(&signed_ref, NULL, res.digest) < 0)
            abort(); /* out of memory: the CLI may abort */
        code =
            cli_sign_ref(b->cmd, b->client, &signed_ref, skey, cli_bool(b->cmd, "bundle"), stderr);
        berth_oci_ref_dispose(&signed_ref);
        if (code == CLI_EXIT_OK)
            code = CLI_CONTINUE;
    }
out:
    berth_push_result_dispose(&res);
    free(old);
    return rc < 0 ? cli_fail(b->cmd, rc, err) : code;
}

/* Check, offline, that the artifact the host will follow is there and signed with the key. */
static int check_artifact(boot_ctx *b)
{
    berth_sign_verify_opts trust = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_signatures_verify_opts vopts = BERTH_SIGNATURES_VERIFY_OPTS_INIT;
    berth_signatures_result res = {.media_type = NULL};
    const berth_sign_pubkey *keys[1];
    berth_sign_pubkey *pk = NULL;
    berth_error *err = NULL;
    char *digest = NULL;
    int rc;

    if (b->pub.len == 0) {
        if ((rc = berth_oci_manifest_head(&digest, NULL, b->client, &b->ref, &err)) == 0)
            snprintf(b->digest, sizeof(b->digest), "%s", digest);
        free(digest);
        return rc < 0 ? cli_fail(b->cmd, rc, err) : CLI_CONTINUE;
    }
    if ((rc = berth_sign_pubkey_load_pem(&pk, b->key_name, b->pub.ptr, b->pub.len, &err)) < 0)
        return cli_fail(b->cmd, rc, err);
    keys[0] = pk;
    trust.keys = keys;
    trust.n_keys = 1;
    vopts.trust = &trust;
    rc = berth_signatures_verify(&res, b->client, &b->ref, &vopts, &err);
    if (rc == BERTH_EVERIFY) {
        cli_verify_print(stderr, &res);
        fprintf(stderr,
                "berth: the artifact is not signed with --verify-key \"%s\": nothing "
                "installed\n",
                b->key_name);
    }
    if (rc == 0) {
        snprintf(b->digest, sizeof(b->digest), "%s", res.digest);
        b->verified = true;
    }
    berth_signatures_result_dispose(&res);
    berth_sign_pubkey_free(pk);
    return rc < 0 ? cli_fail(b->cmd, rc, err) : CLI_CONTINUE;
}

/* Enable (or show how to enable) the service; returns the JSON "service" action. */
static const char *service(const cli_cmd *cmd, const char *root, bool changed, bool json)
{
    static const char *const reload[] = {"systemctl", "daemon-reload", NULL};
    static const char *const enable[] = {"systemctl", "enable", "berth", NULL};
    static const char *const restart[] = {"systemctl", "restart", "berth", NULL};
    static const char *const enable_now[] = {"systemctl", "enable", "--now", "berth", NULL};
    const char *how = changed ? "systemctl daemon-reload && systemctl enable berth && "
                                "systemctl restart berth"
                              : "systemctl enable --now berth";
    FILE *f = json ? stderr : stdout;

    if (!cli_host_is_live(root) || cli_bool(cmd, "no-start")) {
        fprintf(f, "service   not started: %s; to start it on that host, run: %s\n",
                cli_bool(cmd, "no-start") ? "--no-start"
                : strcmp(root, "/") == 0  ? "systemd is not running here"
                                          : "ROOT is not this host's /",
                how);
        return "manual";
    }
    if (changed) {
        if (cli_systemctl(reload, false) < 0 || cli_systemctl(enable, false) < 0 ||
            cli_systemctl(restart, false) < 0)
            return NULL;
        fputs("service   restarted berth.service\n", f);
        return "restarted";
    }
    if (cli_systemctl(enable_now, false) < 0)
        return NULL;
    fputs("service   enabled berth.service (already up to date)\n", f);
    return "enabled";
}

/* The JSON result; open: leave the object unclosed for more members. */
static void print_json(const boot_ctx *b, const berth_bootstrap_file *files, size_t n,
                       const char *svc, bool close)
{
    fputs("{\n  \"url\": ", stdout);
    cli_json_str(stdout, b->opts.url);
    fputs(",\n  \"tag\": ", stdout);
    cli_json_str(stdout, b->opts.tag);
    fputs(",\n  \"digest\": ", stdout);
    cli_json_str(stdout, b->digest[0] ? b->digest : NULL);
    fputs(",\n  \"artifact\": ", stdout);
    cli_json_str(stdout, b->art_state);
    printf(",\n  \"verified\": %s,\n  \"files\": [", b->verified ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        const char *keys[2] = {"path", "state"};
        const char *vals[2] = {files[i].path, berth_bootstrap_state_name(files[i].state)};
        fputs(i ? ",\n" : "\n", stdout);
        cli_json_object(stdout, 4, keys, vals, 2);
    }
    fputs(n ? "\n  ],\n  \"service\": " : "],\n  \"service\": ", stdout);
    cli_json_str(stdout, svc);
    fputs(close ? "\n}\n" : "", stdout);
}

/* Write the host files and start the service; prints what happened. */
static int install_host(boot_ctx *b, bool json)
{
    const char *root = cli_str(b->cmd, "host");
    berth_bootstrap_file *files = NULL;
    berth_error *err = NULL;
    const char *svc = NULL;
    bool changed = false;
    size_t n = 0;
    int rc;

    if ((rc = berth_bootstrap_host_install(&files, &n, root, &b->opts, false, &err)) < 0)
        return cli_fail(b->cmd, rc, err);
    for (size_t i = 0; i < n; i++) {
        changed |= files[i].state != BERTH_BOOTSTRAP_UNCHANGED;
        if (!json)
            printf("file      %-9s %s\n", berth_bootstrap_state_name(files[i].state),
                   files[i].path);
    }
    svc = service(b->cmd, root, changed, json);
    if (json)
        print_json(b, files, n, svc, true);
    berth_bootstrap_files_free(files, n);
    return svc ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void progress(void *payload, const char *line)
{
    (void)payload;
    fprintf(stderr, "progress  %s\n", line);
}

/* Install only: pull the artifact that was just verified (by its digest) as the tree to apply. */
static int fetch_kube(boot_ctx *b, bool json)
{
    berth_oci_ref by_digest;
    berth_error *err = NULL;
    int rc;

    /* a copy: b->opts.tag borrows b->ref's tag */
    memset(&by_digest, 0, sizeof(by_digest));
    if ((rc = berth_oci_ref_copy(&by_digest, &b->ref, &err)) < 0 ||
        (rc = berth_oci_ref_set(&by_digest, NULL, b->digest)) < 0) {
        berth_oci_ref_dispose(&by_digest);
        return cli_fail(b->cmd, rc, err);
    }
    rc = berth_bootstrap_kube_fetch(&b->stage, b->client, &by_digest, &b->opts, NULL, &err);
    berth_oci_ref_dispose(&by_digest);
    if (rc < 0)
        return cli_fail(b->cmd, rc, err);
    if (!json)
        printf("artifact  pulled    %s:%s@%s\n", b->opts.url, b->opts.tag, b->digest);
    return CLI_CONTINUE;
}

/* Apply the pushed tree to the cluster and wait for berth; prints what happened. */
static int install_kube(boot_ctx *b, bool json, int64_t wait_ms)
{
    berth_bootstrap_kube_opts ko = BERTH_BOOTSTRAP_KUBE_OPTS_INIT;
    berth_bootstrap_object *objs = NULL;
    berth_error *err = NULL;
    size_t n = 0;
    int rc;

    ko.kubeconfig = cli_str(b->cmd, "kubeconfig");
    ko.context = cli_str(b->cmd, "context");
    ko.timeout_ms = wait_ms > 100 ? wait_ms : 100; /* one look, then the message */
    ko.progress = progress;
    rc = berth_bootstrap_kube_install(&objs, &n, b->stage, &ko, &err);
    for (size_t i = 0; i < n && !json; i++)
        printf("object    %-10s %s\n", objs[i].action, objs[i].subject);
    if (rc == 0 && !json)
        printf("ready     Deployment/%s/berth and the CRDs (image %s)\n", BERTH_BOOTSTRAP_NAME,
               b->opts.image ? b->opts.image : BERTH_BOOTSTRAP_IMAGE);
    if (json) {
        print_json(b, NULL, 0, NULL, false);
        printf(",\n  \"ready\": %s,\n  \"objects\": [", rc == 0 ? "true" : "false");
        for (size_t i = 0; i < n; i++) {
            const char *keys[2] = {"subject", "action"};
            const char *vals[2] = {objs[i].subject, objs[i].action};
            fputs(i ? ",\n" : "\n", stdout);
            cli_json_object(stdout, 4, keys, vals, 2);
        }
        fputs(n ? "\n  ]\n}\n" : "]\n}\n", stdout);
    }
    berth_bootstrap_objects_free(objs, n);
    return rc < 0 ? cli_fail(b->cmd, rc, err) : CLI_EXIT_OK;
}

/* An unreachable or misconfigured cluster fails before anything is pushed. */
static int kube_check(const cli_cmd *cmd)
{
    berth_bootstrap_kube_opts ko = BERTH_BOOTSTRAP_KUBE_OPTS_INIT;
    berth_error *err = NULL;
    int rc;

    ko.kubeconfig = cli_str(cmd, "kubeconfig");
    ko.context = cli_str(cmd, "context");
    if ((rc = berth_bootstrap_kube_check(&ko, &err)) < 0)
        return cli_fail(cmd, rc, err);
    return CLI_CONTINUE;
}

static char *self_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return cli_xstrdup("/usr/bin/berth");
    buf[n] = '\0';
    return cli_xstrdup(buf);
}

/* --kube and its flags: only together; --push-only needs --path; *wait_ms_out from --timeout. */
static int kube_flags_check(const cli_cmd *cmd, int64_t *wait_ms_out)
{
    static const char *const kube_only[] = {
        "kubeconfig",           "context",          "image", "push-only", "registry-secret",
        "registry-cert-secret", "image-pull-secret"};
    bool kube = cli_bool(cmd, "kube");
    int64_t ms = 0;

    for (size_t i = 0; i < sizeof(kube_only) / sizeof(kube_only[0]) && !kube; i++)
        if (cli_flag_get(cmd, kube_only[i])->set)
            return cli_usage_error(cmd, "--%s needs --kube", kube_only[i]);
    if (!kube)
        return CLI_CONTINUE;
    if (cli_str(cmd, "host"))
        return cli_usage_error(cmd, "--kube and --host: give one of them");
    if (cli_str(cmd, "path") && cli_str(cmd, "verify-key") && !cli_str(cmd, "sign-key"))
        return cli_usage_error(cmd,
                               "--kube --verify-key=\"%s\" needs --sign-key: the artifact "
                               "pushed would not be signed with it",
                               cli_str(cmd, "verify-key"));
    if (!cli_str(cmd, "path") && cli_bool(cmd, "push-only"))
        return cli_usage_error(cmd, "--push-only needs --path=DIR (what to push)");
    cli_duration_parse(&ms, cli_str(cmd, "timeout")); /* checked by cli_parse */
    /* 0 (never) waits a day; else end the wait (its last health round can overrun by a poll
     * interval and a read) early enough to report what is not ready before --timeout fires */
    *wait_ms_out = ms == 0 ? 86400000 : ms > 6000 ? ms - 3000 : ms / 2;
    return CLI_CONTINUE;
}

int cli_bootstrap(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "path", .kind = CLI_STR, .meta = "DIR", .help = "push DIR plus the sync config"},
        {.name = "host",
         .kind = CLI_STR,
         .meta = "ROOT",
         .help = "install the host service under ROOT (/ for this host)"},
        {.name = "kube",
         .kind = CLI_BOOL,
         .help = "push berth's own install with DIR and install it into the cluster"},
        CLI_FLAGS_KUBECONFIG,
        {.name = "image",
         .kind = CLI_STR,
         .meta = "REF",
         .help = "with --kube: berth's image (default " BERTH_BOOTSTRAP_IMAGE ")"},
        {.name = "push-only",
         .kind = CLI_BOOL,
         .help = "with --kube: push (and sign) only; the running berth applies it to itself"},
        {.name = "registry-secret",
         .kind = CLI_STR,
         .meta = "NAME",
         .help = "with --kube: docker-registry Secret in berth-system the cluster pulls the "
                 "artifact with (spec.secretRef)"},
        {.name = "registry-cert-secret",
         .kind = CLI_STR,
         .meta = "NAME",
         .help = "with --kube: Secret in berth-system with the registry's ca.crt (and a client "
                 "tls.crt/tls.key) (spec.certSecretRef)"},
        {.name = "image-pull-secret",
         .kind = CLI_STR,
         .meta = "NAME",
         .help = "with --kube: Secret in berth-system the berth pod pulls its image with"},
        {.name = "verify-key",
         .kind = CLI_STR,
         .meta = "PUB",
         .help = "cosign public key the host verifies the artifact with"},
        CLI_FLAGS_SIGN,
        {.name = "interval",
         .kind = CLI_STR,
         .meta = "DURATION",
         .def = "1m",
         .help = "how often the host checks the registry"},
        {.name = "berth-bin",
         .kind = CLI_STR,
         .meta = "PATH",
         .help = "berth binary in the unit's ExecStart (default: this binary)"},
        {.name = "no-start", .kind = CLI_BOOL, .help = "write the files, leave systemd alone"},
        {.name = "source",
         .kind = CLI_STR,
         .meta = "URL",
         .def = "berth://bootstrap",
         .help = "with --path: the artifact's source annotation"},
        {.name = "revision",
         .kind = CLI_STR,
         .meta = "REV",
         .def = "bootstrap",
         .help = "with --path: the artifact's revision annotation"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth bootstrap",
        .usage = "oci://REG/REPO:TAG [--path=DIR] [--sign-key=KEY] [--verify-key=PUB] "
                 "[--host=ROOT | --kube [--image=REF] [--push-only]] [flags]",
        .summary = "Make a registry artifact the source of a berth install.",
        .details =
            "  --path pushes DIR plus berth-system/ (the OCIRepository following REPO:TAG and\n"
            "  the Kustomization applying it), signed with --sign-key. --host=ROOT writes\n"
            "  ROOT/etc/berth/{sync,verify-key}.yaml and ROOT/etc/systemd/system/berth.service;\n"
            "  with ROOT=/ and systemd running it enables and (re)starts berth. Without --path\n"
            "  the artifact must be in the registry already (and signed with the key).\n"
            "  --kube (with --path) adds berth's install (deploy/: CRDs, Namespace, RBAC, the\n"
            "  Deployment with --image) under berth-system/install/, pushes, then applies it all\n"
            "  with server-side apply and waits for berth to be Ready (--timeout); --push-only\n"
            "  stops after the push (an upgrade: the running berth applies it to itself).\n"
            "  --kube without --path installs an artifact CI pushed that way: it is verified\n"
            "  with --verify-key, pulled by digest, and must follow this REPO:TAG.\n"
            "  Running it again changes only what differs and says what changed.",
        .examples =
            "  berth bootstrap oci://ci.example/fleet:prod --path=./fleet --sign-key=cosign.key\n"
            "  berth bootstrap oci://10.0.0.5:5000/fleet:prod --verify-key=cosign.pub "
            "--host=/\n"
            "  berth bootstrap oci://ghcr.io/acme/fleet:prod --path=./fleet --sign-key=cosign.key "
            "--kube\n"
            "  berth bootstrap oci://ghcr.io/acme/fleet:prod --verify-key=cosign.pub --kube",
        .min_args = 1,
        .max_args = 1,
        .flags = flags};
    boot_ctx b = {.cmd = &cmd, .opts = BERTH_BOOTSTRAP_OPTS_INIT};
    berth_buf probe = BERTH_BUF_INIT;
    berth_sign_privkey *skey = NULL;
    berth_error *err = NULL;
    char *url = NULL, *bin = NULL;
    int64_t start_ms = mono_ms(), wait_ms = 0;
    bool json;
    int rc, code;

    berth_buf_init(&b.pub, 0);
    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    json = cli_output_format(&cmd) == CLI_OUT_JSON;
    if ((code = kube_flags_check(&cmd, &wait_ms)) != CLI_CONTINUE)
        goto out;
    if (!cli_str(&cmd, "path") && !cli_str(&cmd, "host") && !cli_bool(&cmd, "kube")) {
        code = cli_usage_error(&cmd, "nothing to do: give --path=DIR (push), --host=ROOT or "
                                     "--kube (install), or both");
        goto out;
    }
    if ((code = cli_ref_parse(&b.ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    if (!b.ref.tag || b.ref.digest) {
        code = cli_usage_error(&cmd, "\"%s\": want oci://REG/REPO:TAG (berth follows a tag)",
                               cmd.args[0]);
        goto out;
    }
    if ((code = cli_sign_key_load(&skey, &cmd, "sign-key")) != CLI_CONTINUE ||
        (code = load_pub(&b, skey)) != CLI_CONTINUE)
        goto out;
    if (b.pub.len == 0)
        fputs("berth: warning: no --verify-key or --sign-key: berth will not verify "
              "signatures\n",
              stderr);
    url = cli_xmalloc(strlen(b.ref.registry) + strlen(b.ref.repository) + 8);
    snprintf(url, strlen(b.ref.registry) + strlen(b.ref.repository) + 8, "oci://%s/%s",
             b.ref.registry, b.ref.repository);
    bin = cli_str(&cmd, "berth-bin") ? cli_xstrdup(cli_str(&cmd, "berth-bin")) : self_path();
    if (cli_str(&cmd, "host") && cli_host_is_live(cli_str(&cmd, "host")) &&
        access(bin, X_OK) != 0) {
        code = cli_usage_error(&cmd, "--berth-bin \"%s\" is not an executable file", bin);
        goto out;
    }
    b.opts.url = url;
    b.opts.tag = b.ref.tag;
    b.opts.pubkey_pem = b.pub.len ? b.pub.ptr : NULL;
    b.opts.pubkey_len = b.pub.len;
    b.opts.insecure = cli_bool(&cmd, "insecure-registry");
    b.opts.interval = cli_str(&cmd, "interval");
    b.opts.berth_bin = bin;
    b.opts.kube = cli_bool(&cmd, "kube");
    b.opts.image = cli_str(&cmd, "image");
    b.opts.registry_secret = cli_str(&cmd, "registry-secret");
    b.opts.registry_cert_secret = cli_str(&cmd, "registry-cert-secret");
    b.opts.image_pull_secret = cli_str(&cmd, "image-pull-secret");
    /* bad --interval, ROOT or --berth-bin: fail before anything is pushed */
    if (cli_str(&cmd, "host")) {
        berth_bootstrap_file *files = NULL;
        size_t n = 0;
        rc = berth_bootstrap_host_install(&files, &n, cli_str(&cmd, "host"), &b.opts, true, &err);
        berth_bootstrap_files_free(files, n);
    } else {
        rc = berth_bootstrap_sync_yaml(&probe, &b.opts, &err);
        berth_buf_dispose(&probe);
    }
    if (rc < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (b.opts.kube && !cli_bool(&cmd, "push-only") && (code = kube_check(&cmd)) != CLI_CONTINUE)
        goto out;
    if ((rc = cli_client_new(&b.client, &cmd, NULL, NULL, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (cli_str(&cmd, "path") && (code = push(&b, skey)) != CLI_CONTINUE)
        goto out;
    if (b.art_state && !json)
        printf("artifact  %-9s %s:%s@%s\n", b.art_state, url, b.ref.tag, b.digest);
    code = CLI_EXIT_OK;
    if (cli_str(&cmd, "host") || b.opts.kube) {
        if ((code = check_artifact(&b)) != CLI_CONTINUE)
            goto out;
        if (b.verified && !json)
            printf("artifact  verified  %s:%s@%s with %s\n", url, b.ref.tag, b.digest, b.key_name);
        code = CLI_EXIT_OK;
    }
    if (b.opts.kube && !cli_str(&cmd, "path") && (code = fetch_kube(&b, json)) != CLI_CONTINUE)
        goto out;
    if (cli_str(&cmd, "host")) {
        code = install_host(&b, json);
    } else if (b.opts.kube && !cli_bool(&cmd, "push-only")) {
        code = install_kube(&b, json, wait_ms - (mono_ms() - start_ms));
    } else if (json) {
        print_json(&b, NULL, 0, NULL, true);
    }
out:
    berth_sign_privkey_free(skey);
    berth_oci_client_free(b.client);
    berth_oci_ref_dispose(&b.ref);
    berth_buf_dispose(&b.pub);
    free(url);
    free(bin);
    berth_bootstrap_unstage(b.stage);
    cli_cmd_dispose(&cmd);
    return code;
}
