/*
 * berth tag artifact: give an artifact more tags by putting its exact manifest bytes (and media
 * type) under each new tag, as `flux tag artifact` does; the digest never changes.
 */
#include <stdlib.h>

#include "cli.h"

int cli_tag_artifact(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "tag",
         .kind = CLI_LIST,
         .meta = "TAG",
         .attrs = CLI_REQUIRED | CLI_CSV,
         .help = "new tag"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth tag artifact",
                   .usage = "oci://REG/REPO:TAG|@DIGEST --tag=NEW [--tag=NEW2 ...] [flags]",
                   .summary = "Tag an existing artifact with one or more new tags.",
                   .examples =
                       "  berth tag artifact oci://127.0.0.1:5000/app:v1 --tag=latest --tag=stable",
                   .min_args = 1,
                   .max_args = 1,
                   .flags = flags};
    const cli_flag *tags = cli_flag_get(&cmd, "tag");
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_blob manifest = {.data = NULL};
    berth_oci_client *client = NULL;
    berth_error *err = NULL;
    bool json;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    for (size_t i = 0; i < tags->n; i++) {
        if (!berth_oci_tag_is_valid(tags->values[i])) {
            code = cli_usage_error(&cmd, "invalid tag \"%s\"", tags->values[i]);
            goto out;
        }
    }
    if ((rc = cli_client_new(&client, &cmd, NULL, NULL, &err)) < 0 ||
        (rc = berth_oci_manifest_get(&manifest, client, &ref, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    json = cli_output_format(&cmd) == CLI_OUT_JSON;
    for (size_t i = 0; i < tags->n; i++) {
        if ((rc = berth_oci_ref_set(&ref, tags->values[i], NULL)) < 0 ||
            (rc = berth_oci_manifest_put(NULL, client, &ref, manifest.media_type, manifest.data,
                                         manifest.len, &err)) < 0) {
            code = cli_fail(&cmd, rc, err);
            goto out;
        }
        if (!json)
            printf("artifact tagged as %s/%s:%s\n", ref.registry, ref.repository, tags->values[i]);
    }
    if (json) {
        printf("{\n  \"repository\": \"%s/%s\",\n  \"digest\": ", ref.registry, ref.repository);
        /* berth_oci_manifest_get always sets the digest of the bytes it fetched */
        cli_json_str(stdout, manifest.digest);
        fputs(",\n  \"tags\": [", stdout);
        for (size_t i = 0; i < tags->n; i++) {
            fputs(i ? ", " : "", stdout);
            cli_json_str(stdout, tags->values[i]);
        }
        fputs("]\n}\n", stdout);
    }
    code = CLI_EXIT_OK;
out:
    berth_oci_blob_dispose(&manifest);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
