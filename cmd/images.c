/*
 * berth images list-refs: the container images a deployment directory runs, built as a
 * Kustomization builds it, one per line (or -o json with the objects naming each), to feed
 * `berth copy --from-list` when mirroring a site.
 */
#define _XOPEN_SOURCE 700 /* realpath(3) is XSI */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The path of dir relative to root (both must exist): "." for root itself, NULL if outside. */
static char *relative_to(const char *root, const char *dir)
{
    char *r = realpath(root, NULL), *d = realpath(dir, NULL), *rel = NULL;
    size_t n;

    if (r && d) {
        n = strlen(r);
        if (strcmp(r, d) == 0)
            rel = cli_xstrdup(".");
        else if (strncmp(r, d, n) == 0 && (d[n] == '/' || (n == 1 && r[0] == '/')))
            rel = cli_xstrdup(d + n + (n == 1 ? 0 : 1));
    }
    free(r);
    free(d);
    return rel;
}

static void print_json(const berth_image_ref *v, size_t n)
{
    fputs("{\n  \"images\": [", stdout);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n    {\"image\": ", i ? "," : "");
        cli_json_str(stdout, v[i].image);
        fputs(", \"objects\": [", stdout);
        for (size_t j = 0; j < v[i].n_objects; j++) {
            fputs(j ? ", " : "", stdout);
            cli_json_str(stdout, v[i].objects[j]);
        }
        fputs("]}", stdout);
    }
    fputs(n ? "\n  ]\n}\n" : "]\n}\n", stdout);
}

int cli_images_list_refs(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "path",
         .shorthand = 'f',
         .kind = CLI_STR,
         .meta = "DIR",
         .attrs = CLI_REQUIRED,
         .help = "directory to build (kustomization.yaml, or plain YAML files)"},
        {.name = "root",
         .kind = CLI_STR,
         .meta = "DIR",
         .help = "files may be read anywhere under DIR (default: --path), e.g. ../base"},
        CLI_FLAG_FORMAT("json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth images list-refs",
        .usage = "--path=DIR [--root=DIR] [flags]",
        .summary = "List the container images a deployment directory refers to.",
        .details = "DIR is built as a Kustomization builds it (kustomize subset with its images\n"
                   "transformer; Flux's generated kustomization when there is no\n"
                   "kustomization.yaml). Every image: key of the built objects is listed once,\n"
                   "sorted: feed the list to berth copy --from-list.",
        .examples =
            "  berth images list-refs --path=./deploy/prod >> mirror.txt\n"
            "  berth images list-refs --root=./deploy --path=./deploy/overlays/prod -o json",
        .min_args = 0,
        .max_args = 0,
        .flags = flags};
    berth_image_ref *refs = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    const char *root;
    char *rel = NULL;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    root = cli_str(&cmd, "root") ? cli_str(&cmd, "root") : cli_str(&cmd, "path");
    if (!(rel = relative_to(root, cli_str(&cmd, "path")))) {
        code = cli_usage_error(&cmd, "--path \"%s\" is not a directory inside --root \"%s\"",
                               cli_str(&cmd, "path"), root);
        goto out;
    }
    if ((rc = berth_images_list_refs(&refs, &n, root, rel, &err)) < 0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (cli_output_format(&cmd) == CLI_OUT_JSON)
        print_json(refs, n);
    else
        for (size_t i = 0; i < n; i++)
            puts(refs[i].image);
    code = CLI_EXIT_OK;
out:
    berth_image_refs_free(refs, n);
    free(rel);
    cli_cmd_dispose(&cmd);
    return code;
}
