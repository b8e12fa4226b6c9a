/*
 * berth/engine.h: the GitOps engine as the CLI sees it: run the reconcilers over a file store
 * (`berth run`) and read the status they wrote (`berth get`).
 *
 * The engine reads Flux-kind YAML (OCIRepository, Kustomization, Secret, ConfigMap), reconciles
 * sources first and then Kustomizations in dependency order, applies to a target ("dir:PATH")
 * and keeps status, inventories and events in a state directory (design.md "State on disk").
 */
#ifndef BERTH_ENGINE_H
#define BERTH_ENGINE_H

#include <signal.h>

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_engine_opts {
    unsigned int version;
    const char *config_path; /* a YAML file or a directory (required) */
    const char *state_dir;   /* required */
    const char *target;      /* "dir:PATH"; NULL: "dir:<state_dir>/target" */
    bool once;               /* one pass, then return */
    bool debug;              /* trace registry exchanges */
    /* set (by a signal handler) to stop the loop after the current reconcile; may be NULL */
    const volatile sig_atomic_t *stop;
} berth_engine_opts;
#define BERTH_ENGINE_OPTS_VERSION 1
#define BERTH_ENGINE_OPTS_INIT                                                                     \
    {                                                                                              \
        .version = BERTH_ENGINE_OPTS_VERSION                                                       \
    }

/**
 * Run the engine. With opts->once every object is reconciled once and *all_ready_out says
 * whether every OCIRepository and Kustomization that is not suspended ended Ready. Without it the
 * loop reconciles each object every interval (±5% jitter) until *opts->stop becomes non-zero.
 * Structured logs (logfmt: level, event, kind, name, msg) go to stderr.
 * Returns 0 (object failures are in their status, not in the return), or BERTH_EINVAL (bad
 * options, target), BERTH_ECONFLICT (state dir in use), BERTH_ENOTFOUND / BERTH_EIO (config
 * path or state dir unreadable), BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_run(bool *all_ready_out, const berth_engine_opts *opts,
                                  berth_error **err);

/** One object's status, as `berth get` prints it. Strings are heap. */
typedef struct berth_engine_row {
    char *kind; /* "OCIRepository", "Kustomization" */
    char *ns;
    char *name;
    char *revision; /* artifact.revision or lastAppliedRevision; "" when none */
    bool suspended;
    char *ready;       /* "True", "False", "Unknown" */
    char *reason;      /* of the Ready condition, "" when none */
    char *message;     /* of the Ready condition, "" when none */
    char *status_json; /* the whole status document */
} berth_engine_row;

/**
 * Read the status files of state_dir for kind ("OCIRepository", "Kustomization", or NULL for
 * both) into *rows_out (sorted by kind, namespace, name; free with berth_engine_rows_free).
 * A state dir without status is an empty list. Returns 0, BERTH_EIO, BERTH_EINVAL (a status
 * file that is not JSON: the message names it) or BERTH_ENOMEM. Takes no lock.
 */
BERTH_EXTERN int berth_engine_status_list(berth_engine_row **rows_out, size_t *n_out,
                                          const char *state_dir, const char *kind,
                                          berth_error **err);
/** Free rows. Accepts NULL. */
BERTH_EXTERN void berth_engine_rows_free(berth_engine_row *rows, size_t n);

#ifdef __cplusplus
}
#endif
#endif
