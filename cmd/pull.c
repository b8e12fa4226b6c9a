/*
 * berth pull artifact: download an artifact and extract its content layer into an existing
 * directory. The directory only ever sees verified bytes (berth_artifact_pull stages them).
 * With --verify-key the tag is resolved and its signatures verified first, then the verified
 * digest is pulled: a failed verification downloads no layer at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void print_result(const cli_cmd *cmd, const berth_oci_ref *ref, const berth_pull_result *res)
{
    static const char *const keys[3] = {"source", "revision", "digest"};
    size_t len = strlen(ref->registry) + strlen(ref->repository) + strlen(res->digest) + 3;
    char *digest = cli_xmalloc(len);
    const char *vals[3] = {res->source ? res->source : "", res->revision ? res->revision : "",
                           digest};

    snprintf(digest, len, "%s/%s@%s", ref->registry, ref->repository, res->digest);
    if (cli_output_format(cmd) == CLI_OUT_JSON) {
        cli_json_object(stdout, 0, keys, vals, 3);
        fputc('\n', stdout);
    } else {
        for (int i = 0; i < 3; i++)
            printf("%s: %s\n", keys[i], vals[i]);
    }
    free(digest);
}

int cli_pull_artifact(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "output",
         .kind = CLI_STR,
         .meta = "DIR",
         .attrs = CLI_REQUIRED,
         .help = "existing directory to extract into"},
        {.name = "layer-media-type",
         .kind = CLI_STR,
         .meta = "MT",
         .help = "extract the layer of this media type instead of the first tar+gzip one"},
        {.name = "verify-key",
         .kind = CLI_LIST,
         .meta = "PUB",
         .help = "verify the signatures with this public key first (any key may verify)"},
        CLI_FLAG_FORMAT("json", NULL),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth pull artifact",
                   .usage = "oci://REG/REPO:TAG|@DIGEST --output=DIR [flags]",
                   .summary = "Pull an artifact from a registry and extract it into a directory.",
                   .details = "Prints the source, revision and digest of the artifact.",
                   .examples = "  mkdir -p ./out\n"
                               "  berth pull artifact oci://127.0.0.1:5000/app:v1 --output=./out",
                   .min_args = 1,
                   .max_args = 1,
                   .flags = flags};
    berth_pull_result res = {.source = NULL};
    berth_signatures_result vres = {.ok = false};
    const cli_flag *vkeys = cli_flag_get(&cmd, "verify-key");
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_error *err = NULL;
    cli_progress prog;
    const char *dir;
    struct stat st;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    dir = cli_str(&cmd, "output");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "berth: output directory \"%s\" %s\n", dir,
                stat(dir, &st) == 0 ? "is not a directory"
                : errno == ENOENT   ? "does not exist"
                                    : strerror(errno));
        code = CLI_EXIT_FAIL;
        goto out;
    }
    cli_progress_init(&prog, &cmd);
    if ((rc = cli_client_new(&client, &cmd, NULL, &prog, &err)) == 0 && vkeys->n > 0) {
        code = cli_verify_ref(&vres, &cmd, client, &ref, vkeys->values, vkeys->n);
        cli_progress_end(&prog);
        if (code != CLI_CONTINUE)
            goto out;
        if (!cli_bool(&cmd, "quiet"))
            fprintf(stderr, "verified %s with %s (%s)\n", vres.digest,
                    vres.entries[vres.verified].check.key_name,
                    berth_signatures_format_name(vres.entries[vres.verified].format));
        if (berth_oci_ref_set(&ref, NULL, vres.digest) < 0) /* pull what was verified */
            abort();
    }
    if (rc == 0)
        rc = berth_artifact_pull(&res, client, &ref, dir, cli_str(&cmd, "layer-media-type"), NULL,
                                 &err);
    cli_progress_end(&prog);
    if (rc < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    print_result(&cmd, &ref, &res);
    code = CLI_EXIT_OK;
out:
    berth_signatures_result_dispose(&vres);
    berth_pull_result_dispose(&res);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
