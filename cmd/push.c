/*
 * berth push artifact: build a directory (or file) into a Flux-format artifact and push it.
 * Flags and output follow `flux push artifact` (spec oci-artifacts.md 1.6); --sign-key signs
 * the pushed digest right away (berth sign).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Split "k=v" on '=' into exactly two parts, as Flux does (a value containing '=' is refused). */
static bool annotation_split(berth_kv *out, char *text)
{
    char *eq = strchr(text, '=');

    if (!eq || eq == text || strchr(eq + 1, '='))
        return false;
    *eq = '\0';
    out->key = text;
    out->value = eq + 1;
    return true;
}

static void print_result(const cli_cmd *cmd, const berth_push_result *res, const char *tag)
{
    cli_out fmt = cli_output_format(cmd);
    const char *keys[4] = {"url", "repository", "tag", "digest"};
    char url[600];
    const char *vals[4] = {url, res->repository, tag, res->digest};

    snprintf(url, sizeof(url), "oci://%s@%s", res->repository, res->digest);
    if (fmt == CLI_OUT_TEXT) {
        printf("%s@%s\n", res->repository, res->digest);
    } else if (fmt == CLI_OUT_JSON) {
        cli_json_object(stdout, 0, keys, vals, 4);
        fputc('\n', stdout);
    } else {
        static const int sorted[4] = {3, 1, 2, 0}; /* sigs.k8s.io/yaml sorts keys, as Flux has */
        for (int i = 0; i < 4; i++) {
            printf("%s: ", keys[sorted[i]]);
            cli_yaml_str(stdout, vals[sorted[i]]);
            fputc('\n', stdout);
        }
    }
}

int cli_push_artifact(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "path",
         .shorthand = 'f',
         .kind = CLI_STR,
         .meta = "DIR|FILE",
         .attrs = CLI_REQUIRED,
         .help = "directory or file to archive"},
        {.name = "source",
         .kind = CLI_STR,
         .meta = "URL",
         .attrs = CLI_REQUIRED,
         .help = "source address, e.g. the Git URL (org.opencontainers.image.source)"},
        {.name = "revision",
         .kind = CLI_STR,
         .meta = "REV",
         .attrs = CLI_REQUIRED,
         .help = "source revision, e.g. main@sha1:<commit> (org.opencontainers.image.revision)"},
        {.name = "annotations",
         .shorthand = 'a',
         .kind = CLI_LIST,
         .meta = "KEY=VALUE",
         .help = "extra manifest annotation"},
        CLI_FLAGS_IGNORE,
        {.name = "reproducible",
         .kind = CLI_BOOL,
         .help = "set the created annotation to the Unix epoch so equal trees give equal digests"},
        CLI_FLAGS_SIGN,
        CLI_FLAG_FORMAT("json|yaml", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth push artifact",
        .usage = "oci://REG/REPO:TAG --path=DIR --source=URL --revision=REV [flags]",
        .summary = "Build a directory into a Flux-format artifact and push it to a registry.",
        .details = "Prints REG/REPO@sha256:<digest>. SOURCE_DATE_EPOCH sets the created time.",
        .examples = "  berth push artifact oci://127.0.0.1:5000/app:v1 --path=./deploy \\\n"
                    "    --source=https://git.example/app --revision=main@sha1:4f2c9e1",
        .min_args = 1,
        .max_args = 1,
        .flags = flags};
    berth_push_opts opts = {.version = BERTH_PUSH_OPTS_VERSION};
    berth_push_result res = {.repository = NULL};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_sign_privkey *skey = NULL;
    berth_error *err = NULL;
    cli_progress prog;
    const cli_flag *ann = cli_flag_get(&cmd, "annotations");
    berth_kv *kv = NULL;
    char *ignore = NULL;
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((code = cli_sign_key_load(&skey, &cmd, "sign-key")) != CLI_CONTINUE)
        goto out; /* before the push: a wrong password leaves nothing unsigned behind */
    kv = cli_xmalloc((ann->n + 1) * sizeof(*kv));
    for (size_t i = 0; i < ann->n; i++) {
        if (!annotation_split(&kv[i], ann->values[i])) {
            code =
                cli_usage_error(&cmd, "invalid annotation \"%s\": want KEY=VALUE", ann->values[i]);
            goto out;
        }
    }
    if (epoch && *epoch) {
        char *end;
        errno = 0;
        opts.created = (int64_t)strtoll(epoch, &end, 10);
        if (errno || *end || opts.created < 0) {
            code = cli_usage_error(&cmd, "invalid SOURCE_DATE_EPOCH \"%s\"", epoch);
            goto out;
        }
    }
    ignore = cli_ignore_paths(&cmd);
    opts.source = cli_str(&cmd, "source");
    opts.revision = cli_str(&cmd, "revision");
    opts.annotations = kv;
    opts.annotations_len = ann->n;
    opts.ignore_paths = ignore;
    opts.reproducible = cli_bool(&cmd, "reproducible");
    if ((code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    cli_progress_init(&prog, &cmd);
    if ((rc = cli_client_new(&client, &cmd, NULL, &prog, &err)) == 0)
        rc = berth_artifact_push(&res, client, &ref, cli_str(&cmd, "path"), &opts, &err);
    cli_progress_end(&prog);
    if (rc < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    print_result(&cmd, &res, res.tag ? res.tag : ref.tag);
    code = CLI_EXIT_OK;
    if (skey && berth_oci_ref_set(&ref, NULL, res.digest) < 0) /* sign what was pushed */
        abort();
    if (skey)
        code = cli_sign_ref(&cmd, client, &ref, skey, cli_bool(&cmd, "bundle"), stderr);
out:
    berth_sign_privkey_free(skey);
    berth_push_result_dispose(&res);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    free(ignore);
    free(kv);
    cli_cmd_dispose(&cmd);
    return code;
}
