/*
 * cmd/cli.h: helpers shared by the berth CLI verbs (not part of the library): the flag parser,
 * registry flags -> berth_oci_client_opts, error printing and exit codes, JSON/YAML output, the
 * progress bar and the --timeout deadline.
 *
 * A verb is one file (cmd/<verb>.c): it declares a flag table and a cli_cmd, calls cli_parse,
 * fills an options struct, calls one library function and prints. The CLI may abort on out of
 * memory (style.md 2.5); cli_xmalloc and friends do.
 */
#ifndef BERTH_CMD_CLI_H
#define BERTH_CMD_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <berth/artifact.h>
#include <berth/buf.h>
#include <berth/common.h>
#include <berth/copy.h>
#include <berth/error.h>
#include <berth/image_refs.h>
#include <berth/oci.h>
#include <berth/signatures.h>

/* ---------------------------------------------------------------- exit codes (docs/errors.md) */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,   /* the operation failed (or `diff` found differences) */
    CLI_EXIT_USAGE = 2,  /* bad command line */
    CLI_EXIT_VERIFY = 3, /* digest or signature verification failed */
};
/** Returned by cli_parse when the verb should go on (anything else is an exit code). */
#define CLI_CONTINUE (-1)

/* ---------------------------------------------------------------- flags */
typedef enum {
    CLI_BOOL, /* --x, --x=true|false */
    CLI_STR,  /* --x=v or --x v; the last one wins */
    CLI_LIST, /* repeatable; every value kept in order */
} cli_kind;

#define CLI_REQUIRED 0x1u /* must be given */
#define CLI_SECRET 0x2u   /* value copied and wiped from argv (it shows in ps) */
#define CLI_CSV 0x4u      /* CLI_LIST: each value is also split on ',' */

typedef struct cli_flag {
    const char *name; /* long name without "--"; NULL ends a table */
    char shorthand;   /* single-letter alias or 0 */
    cli_kind kind;
    const char *meta;    /* value placeholder in the help: "DIR" */
    const char *help;    /* one line */
    unsigned int attrs;  /* CLI_REQUIRED | CLI_SECRET | CLI_CSV */
    const char *def;     /* default shown in the help and returned by cli_str, or NULL */
    const char *choices; /* "json|yaml": allowed values, or NULL */
    const char *alias;   /* second long name, or NULL */
    /* filled by cli_parse */
    bool set;          /* given on the command line */
    const char *value; /* CLI_STR: the value; CLI_BOOL: "true" or "false" */
    char **values;     /* CLI_LIST: heap array of heap copies (cli_cmd_dispose) */
    size_t n;          /* CLI_LIST: number of values */
} cli_flag;

#define CLI_FLAG_END                                                                               \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* Flags every verb has. */
#define CLI_FLAGS_COMMON                                                                           \
    {.name = "debug", .kind = CLI_BOOL, .help = "show error code names and trace HTTP exchanges"}, \
        {.name = "quiet", .shorthand = 'q', .kind = CLI_BOOL, .help = "no progress output"},       \
    {                                                                                              \
        .name = "help", .shorthand = 'h', .kind = CLI_BOOL, .help = "show this help"               \
    }

/* Flags of every verb that talks to a registry. */
#define CLI_FLAGS_REGISTRY                                                                         \
    {.name = "creds",                                                                              \
     .kind = CLI_STR,                                                                              \
     .meta = "USER:PASS",                                                                          \
     .attrs = CLI_SECRET,                                                                          \
     .help = "registry credentials, or a lone bearer token"},                                      \
        {.name = "insecure-registry",                                                              \
         .kind = CLI_BOOL,                                                                         \
         .help = "allow plain HTTP and skip TLS verification (loopback is always allowed)"},       \
        {.name = "ca-file", .kind = CLI_STR, .meta = "PEM", .help = "extra CA certificates"},      \
        {.name = "cert-file",                                                                      \
         .kind = CLI_STR,                                                                          \
         .meta = "PEM",                                                                            \
         .help = "TLS client certificate (mTLS)"},                                                 \
        {.name = "key-file", .kind = CLI_STR, .meta = "PEM", .help = "TLS client key (mTLS)"},     \
        {.name = "docker-config",                                                                  \
         .kind = CLI_STR,                                                                          \
         .meta = "PATH",                                                                           \
         .help = "docker config.json for credentials (default $DOCKER_CONFIG, ~/.docker)"},        \
        {.name = "chunk-size",                                                                     \
         .kind = CLI_STR,                                                                          \
         .meta = "BYTES",                                                                          \
         .help =                                                                                   \
             "upload blobs larger than this in chunked PATCHes (default 134217728; 0: never)"},    \
    {                                                                                              \
        .name = "timeout", .kind = CLI_STR, .meta = "DURATION", .def = "5m",                       \
        .help = "give up after this long (0: never), e.g. 30s, 5m, 1h30m"                          \
    }

/* The -o/--output-format flag; alias_ is a second long name (e.g. "output", as Flux spells it). */
#define CLI_FLAG_FORMAT(choices_, alias_)                                                          \
    {                                                                                              \
        .name = "output-format", .shorthand = 'o', .kind = CLI_STR, .meta = "FORMAT",              \
        .choices = (choices_), .alias = (alias_), .help = "output format"                          \
    }

/* --ignore-paths and --add-ignore-paths (push, build, diff), read with cli_ignore_paths. */
#define CLI_FLAGS_IGNORE                                                                           \
    {.name = "ignore-paths",                                                                       \
     .kind = CLI_LIST,                                                                             \
     .meta = "P1,P2",                                                                              \
     .attrs = CLI_CSV,                                                                             \
     .help = "gitignore patterns to exclude, replacing the default set"},                          \
    {                                                                                              \
        .name = "add-ignore-paths", .kind = CLI_LIST, .meta = "P1,P2", .attrs = CLI_CSV,           \
        .help = "gitignore patterns to exclude, added to --ignore-paths"                           \
    }

/** A command: its name, help text, positional arity and flag table. */
typedef struct cli_cmd {
    const char *path;     /* "berth push artifact" */
    const char *usage;    /* after the path: "oci://REG/REPO:TAG --path=DIR [flags]" */
    const char *summary;  /* one line */
    const char *details;  /* more lines, or NULL */
    const char *examples; /* lines, or NULL */
    int min_args;         /* positional arguments */
    int max_args;
    cli_flag *flags; /* ends with CLI_FLAG_END */
    /* filled by cli_parse */
    char **args; /* positional arguments (borrowed from argv; array is heap) */
    int n_args;
    char **secrets; /* heap copies of CLI_SECRET values, wiped on dispose */
    size_t n_secrets;
} cli_cmd;

/**
 * Parse argv (the arguments after the command words) into cmd. Prints the help and returns
 * CLI_EXIT_OK for --help; prints `berth: <problem>` and returns CLI_EXIT_USAGE for an unknown
 * flag, a missing value or required flag, a bad choice or the wrong number of arguments. Arms
 * the --timeout deadline when the table has one. Otherwise returns CLI_CONTINUE.
 */
int cli_parse(cli_cmd *cmd, int argc, char **argv);
/** Free what cli_parse allocated (secret copies are wiped first). */
void cli_cmd_dispose(cli_cmd *cmd);
/** Print the help of cmd to f. */
void cli_help(const cli_cmd *cmd, FILE *f);
/** The flag named name (aborts if the table has none: a programming error). */
const cli_flag *cli_flag_get(const cli_cmd *cmd, const char *name);
/** A CLI_STR flag's value, else its default (may be NULL). */
const char *cli_str(const cli_cmd *cmd, const char *name);
bool cli_bool(const cli_cmd *cmd, const char *name);
/** The values of a CLI_LIST flag joined with ',' (heap, free()); NULL when not given. */
char *cli_list_join(const cli_cmd *cmd, const char *name);
/** Print `berth: <message>` and a hint to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) BERTH_PRINTF(2, 3);

/** Parse a Go-style duration ("90s", "5m", "1h30m", "250ms", "0") into milliseconds. */
bool cli_duration_parse(int64_t *ms_out, const char *text);
/** After ms (> 0), print `berth: timed out after <text> (--timeout)` and exit 1. */
void cli_deadline_arm(int64_t ms, const char *text);

/**
 * The ignore set from CLI_FLAGS_IGNORE (heap, free()): --ignore-paths replaces the default set,
 * --add-ignore-paths appends to it. NULL when neither is given (the library default).
 */
char *cli_ignore_paths(const cli_cmd *cmd);

/* ---------------------------------------------------------------- errors and exit codes */
/** The exit code for a library code: BERTH_EVERIFY -> 3, anything else -> 1. */
int cli_exit_code(int rc);
/**
 * Print `berth: <rendered chain>` (with the code name under --debug) to stderr, free err and
 * return cli_exit_code(rc).
 */
int cli_fail(const cli_cmd *cmd, int rc, berth_error *err);

/* ---------------------------------------------------------------- output */
typedef enum { CLI_OUT_TEXT, CLI_OUT_JSON, CLI_OUT_YAML } cli_out;
/** The --output-format flag as an enum (CLI_OUT_TEXT when absent or "table"/"text"). */
cli_out cli_output_format(const cli_cmd *cmd);
/** Write s as a JSON string literal (NULL -> null). */
void cli_json_str(FILE *f, const char *s);
/**
 * Write a JSON object of n string members ("key": "value", NULL values as null) with 2-space
 * indent inside, starting at column indent, without a final newline.
 */
void cli_json_object(FILE *f, int indent, const char *const *keys, const char *const *vals,
                     size_t n);
/**
 * Print a table: a header line of n_cols heads, then n_rows rows whose cells start at
 * cells[row * stride]; columns are padded to align and separated by three spaces.
 */
void cli_table(FILE *f, const char *const *heads, size_t n_cols, size_t stride, char *const *cells,
               size_t n_rows);
/** Write s as a YAML scalar, plain when that is unambiguous, else double-quoted. */
void cli_yaml_str(FILE *f, const char *s);

/* ---------------------------------------------------------------- progress */
#define CLI_PROGRESS_SLOTS 16
typedef struct cli_progress {
    bool enabled; /* stderr is a terminal and not --quiet */
    bool drawn;   /* something is on the line */
    int64_t start_ms;
    int64_t last_draw_ms;
    size_t n;
    struct {
        char what[64];
        int64_t done;
        int64_t total; /* -1 unknown */
    } slot[CLI_PROGRESS_SLOTS];
} cli_progress;
/** Enable the bar when stderr is a terminal and cmd has no -q. */
void cli_progress_init(cli_progress *p, const cli_cmd *cmd);
/** A berth_progress_fn; payload is a cli_progress. Redraws at most 10 times a second. */
void cli_progress_cb(void *payload, const char *what, int64_t done, int64_t total);
/** Clear the line. */
void cli_progress_end(cli_progress *p);

/* ---------------------------------------------------------------- registry clients */
/**
 * Create a client from the registry flags. side is NULL, or "src"/"dest": then the flags
 * --<side>-creds, --<side>-ca-file, --<side>-cert-file, --<side>-key-file and --<side>-insecure
 * override the global ones when given. prog may be NULL.
 */
int cli_client_new(berth_oci_client **out, const cli_cmd *cmd, const char *side, cli_progress *prog,
                   berth_error **err);

/**
 * Parse a reference given on the command line. A malformed one is a usage error: the library's
 * message is printed and CLI_EXIT_USAGE returned; else CLI_CONTINUE.
 */
int cli_ref_parse(berth_oci_ref *out, const cli_cmd *cmd, const char *text);

/* ---------------------------------------------------------------- memory */
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* ---------------------------------------------------------------- verbs (cmd/<verb>.c) */
int cli_build_artifact(int argc, char **argv);
int cli_copy(int argc, char **argv);
/* berth copy --from-list/--to-registry (cmd/copy_list.c), after cli_copy parsed the flags. */
int cli_copy_list(cli_cmd *cmd);
int cli_diff_artifact(int argc, char **argv);
int cli_images_list_refs(int argc, char **argv);
int cli_generate_key_pair(int argc, char **argv);

/*
 * Read a key password into buf (NUL-terminated): $BERTH_PASSWORD, else $COSIGN_PASSWORD (set but
 * empty means the empty password), else a no-echo prompt on the terminal, asked twice when
 * confirm, else the whole of stdin, a trailing newline included, as cosign reads it. Returns 0,
 * or -1 after printing `berth: <why>`. The caller wipes buf with berth_sign_secret_wipe.
 */
int cli_password_read(char *buf, size_t size, bool confirm);
int cli_list_artifacts(int argc, char **argv);
int cli_sign(int argc, char **argv);
int cli_verify(int argc, char **argv);

/* --sign-key and --bundle of push artifact (read with cli_sign_key_load). */
#define CLI_FLAGS_SIGN                                                                             \
    {.name = "sign-key",                                                                           \
     .kind = CLI_STR,                                                                              \
     .meta = "KEY",                                                                                \
     .help = "sign the pushed digest with this cosign private key"},                               \
    {                                                                                              \
        .name = "bundle", .kind = CLI_BOOL,                                                        \
        .help = "with --sign-key: write a Sigstore bundle referrer instead of a .sig signature"    \
    }

/* --kubeconfig and --context, as `berth bootstrap --kube` and `berth uninstall --kube` take them.
 */
#define CLI_FLAGS_KUBECONFIG                                                                       \
    {.name = "kubeconfig",                                                                         \
     .kind = CLI_STR,                                                                              \
     .meta = "PATH",                                                                               \
     .help = "with --kube (default $KUBECONFIG, in-cluster, ~/.kube/config)"},                     \
    {                                                                                              \
        .name = "context", .kind = CLI_STR, .meta = "NAME",                                        \
        .help = "with --kube: kubeconfig context"                                                  \
    }

/**
 * Load the private key named by the flag `flag` (cmd/sign.c), asking for its password with
 * cli_password_read. Flag not given: *out = NULL (a usage error if --bundle was given). Returns
 * CLI_CONTINUE, or the exit code after printing the error. Free *out with
 * berth_sign_privkey_free.
 */
int cli_sign_key_load(berth_sign_privkey **out, const cli_cmd *cmd, const char *flag);
/**
 * Sign ref with key in the classic or bundle format and print one "Signed ..." line to report.
 * Returns CLI_EXIT_OK or the exit code after printing the error.
 */
int cli_sign_ref(const cli_cmd *cmd, berth_oci_client *client, const berth_oci_ref *ref,
                 const berth_sign_privkey *key, bool bundle, FILE *report);
/**
 * Verify ref (cmd/verify.c) with the public keys at key_paths. Returns CLI_CONTINUE when a
 * signature verified (*res filled: res->digest is the digest to fetch); otherwise prints the
 * error (and the reason per signature) and returns the exit code (3 when nothing verified).
 * Dispose *res in every case.
 */
int cli_verify_ref(berth_signatures_result *res, const cli_cmd *cmd, berth_oci_client *client,
                   const berth_oci_ref *ref, char *const *key_paths, size_t n_keys);
/** Print one line per signature of res ("verified"/"failed", format, location, key or why). */
void cli_verify_print(FILE *f, const berth_signatures_result *res);
int cli_pull_artifact(int argc, char **argv);
int cli_push_artifact(int argc, char **argv);
int cli_tag_artifact(int argc, char **argv);
int cli_version(int argc, char **argv);

/* ---------------------------------------------------------------- engine verbs (run, get) */
#include <berth/engine.h>
int cli_run(int argc, char **argv);
/** A berth_log_fn for the engine: one write(2) of the line to stderr (lines stay whole). */
void cli_log_stderr(void *payload, const char *line, size_t len);
int cli_get(int argc, char **argv);
/** Print engine rows (cmd/get.c) as the `flux get` table, or as JSON; kinds: prefix the kind. */
void cli_engine_print(FILE *f, const berth_engine_row *rows, size_t n, bool json, bool kinds);
/* cmd/control.c: the day-2 verbs over the control socket */
int cli_reconcile_source(int argc, char **argv);
int cli_reconcile_kustomization(int argc, char **argv);
int cli_reconcile_image(int argc, char **argv);
int cli_suspend_image(int argc, char **argv);
int cli_resume_image(int argc, char **argv);
int cli_suspend_source(int argc, char **argv);
int cli_suspend_kustomization(int argc, char **argv);
int cli_resume_source(int argc, char **argv);
int cli_resume_kustomization(int argc, char **argv);
/* cmd/bootstrap.c, cmd/uninstall.c: the host install */
int cli_bootstrap(int argc, char **argv);
int cli_uninstall(int argc, char **argv);
/** Run systemctl with args (args[0] is "systemctl"); 0 when it exits 0. Prints a failure
 * unless quiet. */
int cli_systemctl(const char *const *args, bool quiet);
/** True when root is this host's "/" and systemd runs here (/run/systemd/system exists). */
bool cli_host_is_live(const char *root);
/* cmd/events.c, cmd/tree.c */
int cli_events(int argc, char **argv);
int cli_tree_kustomization(int argc, char **argv);

#endif
