/*
 * berth copy: copy an artifact (and its signatures) between registries, OCI image layouts and OCI
 * archives, the air-gap path. Each registry side gets its own client, so --src-* and --dest-*
 * flags can differ; they override the global registry flags.
 */
#include <string.h>

#include "cli.h"

#define SIDE_FLAGS(side, what)                                                                     \
    {.name = side "-creds",                                                                        \
     .kind = CLI_STR,                                                                              \
     .meta = "USER:PASS",                                                                          \
     .attrs = CLI_SECRET,                                                                          \
     .help = "credentials for the " what " registry"},                                             \
        {.name = side "-ca-file",                                                                  \
         .kind = CLI_STR,                                                                          \
         .meta = "PEM",                                                                            \
         .help = "extra CA certificates for the " what " registry"},                               \
        {.name = side "-cert-file",                                                                \
         .kind = CLI_STR,                                                                          \
         .meta = "PEM",                                                                            \
         .help = "TLS client certificate for the " what " registry"},                              \
        {.name = side "-key-file",                                                                 \
         .kind = CLI_STR,                                                                          \
         .meta = "PEM",                                                                            \
         .help = "TLS client key for the " what " registry"},                                      \
    {                                                                                              \
        .name = side "-insecure", .kind = CLI_BOOL,                                                \
        .help = "allow plain HTTP and skip TLS verification for the " what " registry"             \
    }

static bool is_registry(const char *loc)
{
    return strncmp(loc, "oci://", 6) == 0 || strncmp(loc, "docker://", 9) == 0;
}

static bool is_location(const char *loc)
{
    return is_registry(loc) || strncmp(loc, "oci-layout:", 11) == 0 ||
           strncmp(loc, "oci-archive:", 12) == 0;
}

int cli_copy(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "no-signatures",
         .kind = CLI_BOOL,
         .help = "do not copy signatures, attestations and SBOMs (.sig/.att/.sbom, referrers)"},
        {.name = "from-list",
         .kind = CLI_STR,
         .meta = "FILE",
         .help = "copy every reference listed in FILE (one per line, # comments)"},
        {.name = "to-registry",
         .kind = CLI_STR,
         .meta = "HOST[/PREFIX]",
         .help = "list mode: copy each REG/PATH:TAG to HOST/PREFIX/PATH:TAG"},
        {.name = "state-file",
         .kind = CLI_STR,
         .meta = "FILE",
         .help = "list mode: progress journal (default: beside the archive or the list)"},
        SIDE_FLAGS("src", "source"),
        SIDE_FLAGS("dest", "destination"),
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth copy",
        .usage = "SRC DST | --from-list=FILE (--to-registry=HOST[/PREFIX] | DST) |\n"
                 "       oci-archive:FILE --to-registry=HOST[/PREFIX] [--from-list=FILE] [flags]",
        .summary = "Copy an artifact and its signatures between registries, layouts and archives.",
        .details = "SRC and DST are oci://REG/REPO[:TAG|@DIGEST], oci-layout:DIR[:TAG] or\n"
                   "oci-archive:FILE.tar[:TAG]. Digests never change; every byte is verified.\n"
                   "With --from-list or --to-registry many references are copied in one run: to a\n"
                   "registry under a prefix, or into one oci-archive/oci-layout (each under its\n"
                   "full name) and back out. Rerunning an interrupted run resumes it.",
        .examples =
            "  berth copy oci://reg.example/app:v1 oci-archive:app.tar:v1\n"
            "  berth copy oci-archive:app.tar:v1 oci://10.0.0.5:5000/app:v1 --dest-insecure\n"
            "  berth copy --from-list=refs.txt oci-archive:mirror.tar\n"
            "  berth copy oci-archive:mirror.tar --to-registry=10.0.0.5:5000/mirror",
        .min_args = 0,
        .max_args = 2,
        .flags = flags};
    berth_copy_opts opts = {.version = BERTH_COPY_OPTS_VERSION};
    berth_copy_result res;
    berth_oci_client *src = NULL, *dst = NULL;
    berth_error *err = NULL;
    cli_progress prog;
    int rc = 0, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if (cli_str(&cmd, "from-list") || cli_str(&cmd, "to-registry")) {
        code = cli_copy_list(&cmd); /* cmd/copy_list.c */
        goto out;
    }
    if (cmd.n_args != 2) {
        code = cli_usage_error(&cmd, "want SRC and DST (or --from-list / --to-registry)");
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        if (!is_location(cmd.args[i])) {
            code = cli_usage_error(&cmd,
                                   "unknown location \"%s\": want oci://REG/REPO[:TAG], "
                                   "oci-layout:DIR[:TAG] or oci-archive:FILE[:TAG]",
                                   cmd.args[i]);
            goto out;
        }
    }
    cli_progress_init(&prog, &cmd);
    if ((is_registry(cmd.args[0]) && (rc = cli_client_new(&src, &cmd, "src", &prog, &err)) < 0) ||
        (is_registry(cmd.args[1]) && (rc = cli_client_new(&dst, &cmd, "dest", &prog, &err)) < 0))
        goto out;
    opts.src_client = src;
    opts.dst_client = dst;
    opts.skip_signatures = cli_bool(&cmd, "no-signatures");
    if (prog.enabled) {
        opts.progress = cli_progress_cb;
        opts.progress_payload = &prog;
    }
    rc = berth_copy(&res, cmd.args[0], cmd.args[1], &opts, &err);
    cli_progress_end(&prog);
    if (rc < 0)
        goto out;
    if (cli_output_format(&cmd) == CLI_OUT_JSON) {
        fputs("{\n  \"digest\": ", stdout);
        cli_json_str(stdout, res.digest);
        printf(",\n  \"manifests\": %zu,\n  \"blobs\": %zu,\n  \"blobs_skipped\": %zu,\n"
               "  \"signatures\": %zu\n}\n",
               res.manifests, res.blobs, res.blobs_skipped, res.signatures);
    } else {
        printf("copied %s -> %s (%s)\n", cmd.args[0], cmd.args[1], res.digest);
    }
    code = CLI_EXIT_OK;
out:
    if (rc < 0)
        code = cli_fail(&cmd, rc, err);
    berth_oci_client_free(src);
    berth_oci_client_free(dst);
    cli_cmd_dispose(&cmd);
    return code;
}
