/*
 * berth: the command-line entry point. `berth VERB [NOUN] [flags]` is looked up in a table of
 * (verb, noun) pairs and handed to the verb's function with the arguments after the command
 * words; later verbs (sign, verify, run, get, reconcile ...) are one more table row each.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct cli_verb {
    const char *verb;
    const char *noun; /* NULL: the verb takes no noun */
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_verb;

static const cli_verb verbs[] = {
    {"bootstrap", NULL, cli_bootstrap,
     "push a fleet with its sync config and install berth on a host"},
    {"build", "artifact", cli_build_artifact, "build a directory into an artifact .tar.gz"},
    {"copy", NULL, cli_copy, "copy an artifact between registries, OCI layouts and archives"},
    {"diff", "artifact", cli_diff_artifact, "compare a pushed artifact with a local directory"},
    {"generate-key-pair", NULL, cli_generate_key_pair,
     "create a cosign-compatible key pair (cosign.key, cosign.pub)"},
    {"images", "list-refs", cli_images_list_refs,
     "list the container images a deployment directory refers to"},
    {"list", "artifacts", cli_list_artifacts, "list the artifacts (tags) of a repository"},
    {"pull", "artifact", cli_pull_artifact, "pull an artifact and extract it into a directory"},
    {"push", "artifact", cli_push_artifact, "build a directory into an artifact and push it"},
    {"sign", NULL, cli_sign, "sign an artifact in a registry with a cosign key"},
    {"tag", "artifact", cli_tag_artifact, "add tags to an artifact"},
    {"verify", NULL, cli_verify, "verify the signatures of an artifact with public keys"},
    {"version", NULL, cli_version, "print the berth version"},
    {"run", NULL, cli_run, "run the GitOps engine (OCIRepository -> Kustomization -> target)"},
    {"get", NULL, cli_get, "show the status of the engine's objects"},
    {"reconcile", "source", cli_reconcile_source, "reconcile an OCIRepository now"},
    {"reconcile", "kustomization", cli_reconcile_kustomization, "reconcile a Kustomization now"},
    {"suspend", "source", cli_suspend_source, "suspend an OCIRepository"},
    {"suspend", "kustomization", cli_suspend_kustomization, "suspend a Kustomization"},
    {"resume", "source", cli_resume_source, "resume an OCIRepository"},
    {"resume", "kustomization", cli_resume_kustomization, "resume a Kustomization"},
    {"events", NULL, cli_events, "show the events the engine recorded"},
    {"tree", "kustomization", cli_tree_kustomization, "show the objects a Kustomization applied"},
    {"uninstall", NULL, cli_uninstall, "remove the berth host service and its config"},
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static void usage(FILE *f)
{
    fputs("berth: a registry-first GitOps engine\n\n"
          "Usage:\n  berth VERB [NOUN] [flags]\n  berth help VERB\n\nCommands:\n",
          f);
    for (size_t i = 0; i < N_VERBS; i++) {
        char words[40];
        snprintf(words, sizeof(words), "%s %s", verbs[i].verb, verbs[i].noun ? verbs[i].noun : "");
        fprintf(f, "  %-23s %s\n", words, verbs[i].summary);
    }
    fputs("\nRun 'berth VERB [NOUN] --help' for the flags of a command.\n", f);
}

static bool verb_known(const char *verb)
{
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].verb, verb) == 0)
            return true;
    }
    return false;
}

static void list_verbs(FILE *f)
{
    fputs("Verbs:", f);
    for (size_t i = 0; i < N_VERBS; i++) {
        if (i == 0 || strcmp(verbs[i].verb, verbs[i - 1].verb) != 0)
            fprintf(f, " %s", verbs[i].verb);
    }
    fputs("\nRun 'berth --help' for usage.\n", f);
}

static void list_nouns(FILE *f, const char *verb)
{
    fprintf(f, "Nouns of \"berth %s\":", verb);
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].verb, verb) == 0 && verbs[i].noun)
            fprintf(f, " %s", verbs[i].noun);
    }
    fputc('\n', f);
}

/* argv[0] is the verb. */
static int dispatch(int argc, char **argv)
{
    const char *noun = argc > 1 ? argv[1] : NULL;
    static char help_flag[] = "--help";
    char *help_argv[] = {help_flag, NULL};
    const cli_verb *only = NULL;
    size_t with_noun = 0;

    if (!verb_known(argv[0])) {
        fprintf(stderr, "berth: unknown command \"%s\"\n", argv[0]);
        list_verbs(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].verb, argv[0]) != 0)
            continue;
        if (!verbs[i].noun)
            return verbs[i].run(argc - 1, argv + 1);
        if (noun && strcmp(verbs[i].noun, noun) == 0)
            return verbs[i].run(argc - 2, argv + 2);
        only = &verbs[i];
        with_noun++;
    }
    if (noun && (strcmp(noun, "--help") == 0 || strcmp(noun, "-h") == 0)) {
        if (with_noun == 1)
            return only->run(1, help_argv);
        list_nouns(stdout, argv[0]);
        return CLI_EXIT_OK;
    }
    if (noun)
        fprintf(stderr, "berth: unknown command \"%s\" for \"berth %s\"\n", noun, argv[0]);
    else
        fprintf(stderr, "berth: \"berth %s\" needs a noun\n", argv[0]);
    list_nouns(stderr, argv[0]);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static char help_flag[] = "--help";

    if (berth_init() < 0) {
        fputs("berth: initialising the library failed\n", stderr);
        return CLI_EXIT_FAIL;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc == 2)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cli_version(0, argv + argc);
    if (strcmp(argv[1], "help") == 0) {
        /* berth help VERB [NOUN]: the verb's own --help */
        char *words[4] = {argv[2], argc > 3 ? argv[3] : help_flag, help_flag, NULL};
        return dispatch(argc > 3 ? 3 : 2, words);
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "berth: unknown flag \"%s\" for \"berth\"\n", argv[1]);
        list_verbs(stderr);
        return CLI_EXIT_USAGE;
    }
    return dispatch(argc - 1, argv + 1);
}
