/*
 * berth sign: sign an artifact in a registry with a cosign.key, as `cosign sign --key` does:
 * the classic sha256-<hex>.sig tag by default, a Sigstore bundle referrer with --bundle.
 * Also holds the signing step push artifact --sign-key shares.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <berth/signatures.h>

#include "cli.h"

#define PASSWORD_MAX 1024

int cli_sign_key_load(berth_sign_privkey **out, const cli_cmd *cmd, const char *flag)
{
    const char *path = cli_str(cmd, flag);
    berth_error *err = NULL;
    char password[PASSWORD_MAX];
    FILE *probe;
    int rc;

    *out = NULL;
    if (!path && cli_bool(cmd, "bundle"))
        return cli_usage_error(cmd, "--bundle needs --%s", flag);
    if (!path)
        return CLI_CONTINUE;
    probe = fopen(path, "r"); /* fail before asking for a password */
    if (!probe) {
        fprintf(stderr, "berth: cannot read key \"%s\": %s\n", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    fclose(probe);
    if (cli_password_read(password, sizeof(password), false) != 0)
        return CLI_EXIT_FAIL;
    rc = berth_sign_privkey_load_file(out, path, password, &err);
    berth_sign_secret_wipe(password, sizeof(password));
    return rc < 0 ? cli_fail(cmd, rc, err) : CLI_CONTINUE;
}

int cli_sign_ref(const cli_cmd *cmd, berth_oci_client *client, const berth_oci_ref *ref,
                 const berth_sign_privkey *key, bool bundle, FILE *report)
{
    berth_signatures_sign_opts opts = BERTH_SIGNATURES_SIGN_OPTS_INIT;
    berth_signatures_sign_result res = {.location = NULL};
    berth_error *err = NULL;
    int rc;

    opts.format = bundle ? BERTH_SIGNATURES_BUNDLE : BERTH_SIGNATURES_CLASSIC;
    if ((rc = berth_signatures_sign(&res, client, ref, key, &opts, &err)) < 0)
        return cli_fail(cmd, rc, err);
    fprintf(report, "Signed %s/%s@%s (%s): %s", ref->registry, ref->repository, res.digest,
            berth_signatures_format_name(res.format), res.location);
    if (res.format == BERTH_SIGNATURES_CLASSIC && !res.appended)
        fputs(" (already signed with this key, nothing written)", report);
    else if (res.format == BERTH_SIGNATURES_CLASSIC)
        fprintf(report, " (%zu signature%s)", res.signatures, res.signatures == 1 ? "" : "s");
    fputc('\n', report);
    berth_signatures_sign_result_dispose(&res);
    return CLI_EXIT_OK;
}

int cli_sign(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "key",
         .kind = CLI_STR,
         .meta = "KEY",
         .attrs = CLI_REQUIRED,
         .help = "cosign private key file (cosign.key)"},
        {.name = "bundle",
         .kind = CLI_BOOL,
         .help = "write a Sigstore bundle v0.3 referrer (cosign v3's format) instead of a "
                 "classic .sig signature"},
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth sign",
        .usage = "oci://REG/REPO:TAG|@DIGEST --key=cosign.key [--bundle] [flags]",
        .summary = "Sign an artifact in a registry with a cosign key.",
        .details =
            "  The tag is resolved to a digest and the digest is signed. Classic signatures are\n"
            "  appended to the REPO:sha256-<hex>.sig manifest; --bundle pushes a referrer.\n"
            "  The key password comes from $BERTH_PASSWORD, else $COSIGN_PASSWORD, else a\n"
            "  prompt on the terminal, else stdin. No transparency log is written.",
        .examples = "  berth sign oci://127.0.0.1:5000/app:v1 --key=cosign.key\n"
                    "  BERTH_PASSWORD= berth sign oci://127.0.0.1:5000/app:v1 --key=cosign.key "
                    "--bundle",
        .min_args = 1,
        .max_args = 1,
        .flags = flags};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_sign_privkey *key = NULL;
    berth_error *err = NULL;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    if ((code = cli_sign_key_load(&key, &cmd, "key")) != CLI_CONTINUE)
        goto out;
    if ((rc = cli_client_new(&client, &cmd, NULL, NULL, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    code = cli_sign_ref(&cmd, client, &ref, key, cli_bool(&cmd, "bundle"), stdout);
out:
    berth_sign_privkey_free(key);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
