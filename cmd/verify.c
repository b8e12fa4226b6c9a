/*
 * berth verify: check the signatures of an artifact against trusted public keys, as `cosign
 * verify --key` (with --insecure-ignore-tlog) and Flux's key mode do, plus the digest claim.
 * Also holds the verification step pull artifact --verify-key shares.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/signatures.h>

#include "cli.h"

void cli_verify_print(FILE *f, const berth_signatures_result *res)
{
    for (size_t i = 0; i < res->n_entries; i++) {
        const berth_signatures_entry *e = &res->entries[i];
        fprintf(f, "  %-8s %-7s %s: ", e->check.ok ? "verified" : "failed",
                berth_signatures_format_name(e->format), e->location);
        if (e->check.ok)
            fprintf(f, "key %s (%s)\n", e->check.key_name, e->check.key_fingerprint);
        else
            fprintf(f, "%s\n", e->check.reason[0] ? e->check.reason : "not verified");
    }
}

int cli_verify_ref(berth_signatures_result *res, const cli_cmd *cmd, berth_oci_client *client,
                   const berth_oci_ref *ref, char *const *key_paths, size_t n_keys)
{
    berth_sign_pubkey **keys = cli_xmalloc((n_keys ? n_keys : 1) * sizeof(*keys));
    berth_sign_verify_opts trust = BERTH_SIGN_VERIFY_OPTS_INIT;
    berth_signatures_verify_opts opts = BERTH_SIGNATURES_VERIFY_OPTS_INIT;
    berth_error *err = NULL;
    size_t loaded = 0;
    int rc = 0, code = CLI_CONTINUE;

    for (; loaded < n_keys; loaded++) {
        if ((rc = berth_sign_pubkey_load_file(&keys[loaded], key_paths[loaded], &err)) < 0) {
            code = cli_fail(cmd, rc, err);
            goto out;
        }
    }
    trust.keys = (const berth_sign_pubkey *const *)keys;
    trust.n_keys = n_keys;
    opts.trust = &trust;
    rc = berth_signatures_verify(res, client, ref, &opts, &err);
    if (rc == BERTH_EVERIFY) {
        fprintf(stderr, "%zu signature%s of %s/%s@%s:\n", res->n_entries,
                res->n_entries == 1 ? "" : "s", ref->registry, ref->repository, res->digest);
        cli_verify_print(stderr, res);
    }
    if (rc < 0)
        code = cli_fail(cmd, rc, err);
out:
    for (size_t i = 0; i < loaded; i++)
        berth_sign_pubkey_free(keys[i]);
    free(keys);
    return code;
}

static void print_json(const berth_signatures_result *res, const char *ref)
{
    fputs("{\n  \"reference\": ", stdout);
    cli_json_str(stdout, ref);
    fputs(",\n  \"digest\": ", stdout);
    cli_json_str(stdout, res->digest);
    fprintf(stdout, ",\n  \"verified\": %s,\n  \"signatures\": [", res->ok ? "true" : "false");
    for (size_t i = 0; i < res->n_entries; i++) {
        const berth_signatures_entry *e = &res->entries[i];
        const char *keys[5] = {"format", "location", "key", "fingerprint", "reason"};
        const char *vals[5] = {berth_signatures_format_name(e->format), e->location,
                               e->check.ok ? e->check.key_name : NULL,
                               e->check.ok ? e->check.key_fingerprint : NULL,
                               e->check.ok ? NULL : e->check.reason};
        fputs(i ? ",\n" : "\n", stdout);
        cli_json_object(stdout, 4, keys, vals, 5);
    }
    fputs(res->n_entries ? "\n  ]\n}\n" : "]\n}\n", stdout);
}

int cli_verify(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "key",
         .kind = CLI_LIST,
         .meta = "PUB",
         .attrs = CLI_REQUIRED,
         .help = "trusted public key (PEM, e.g. cosign.pub); any one verifying is enough"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_REGISTRY,
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth verify",
        .usage = "oci://REG/REPO:TAG|@DIGEST --key=cosign.pub [--key=...] [flags]",
        .summary = "Verify the cosign signatures of an artifact with trusted public keys.",
        .details = "  Looks at Sigstore bundle referrers and the classic sha256-<hex>.sig tag. A\n"
                   "  signature passes when a key verifies it and it names the artifact's digest.\n"
                   "  Exit 0 when one passes, 3 when none does (the reason per signature).",
        .examples =
            "  berth verify oci://127.0.0.1:5000/app:v1 --key=cosign.pub\n"
            "  berth verify oci://127.0.0.1:5000/app:v1 --key=old.pub --key=new.pub -o json",
        .min_args = 1,
        .max_args = 1,
        .flags = flags};
    const cli_flag *keys = cli_flag_get(&cmd, "key");
    berth_signatures_result res = {.ok = false};
    berth_oci_ref ref = {.registry = NULL};
    berth_oci_client *client = NULL;
    berth_error *err = NULL;
    char *name = NULL;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((code = cli_ref_parse(&ref, &cmd, cmd.args[0])) != CLI_CONTINUE)
        goto out;
    if ((rc = cli_client_new(&client, &cmd, NULL, NULL, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    code = cli_verify_ref(&res, &cmd, client, &ref, keys->values, keys->n);
    if (code != CLI_CONTINUE && res.n_entries == 0)
        goto out;
    name = berth_oci_ref_string(&ref);
    if (cli_output_format(&cmd) == CLI_OUT_JSON) {
        print_json(&res, name);
    } else if (res.ok) {
        const berth_signatures_entry *e = &res.entries[res.verified];
        printf("Verified %s/%s@%s with %s (%s)\n", ref.registry, ref.repository, res.digest,
               e->check.key_name, berth_signatures_format_name(e->format));
        cli_verify_print(stdout, &res);
    }
    if (code == CLI_CONTINUE)
        code = CLI_EXIT_OK;
out:
    free(name);
    berth_signatures_result_dispose(&res);
    berth_oci_client_free(client);
    berth_oci_ref_dispose(&ref);
    cli_cmd_dispose(&cmd);
    return code;
}
