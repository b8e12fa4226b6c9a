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

/** Formats of the engine's log lines (berth_engine_opts.log_format). */
typedef enum {
    BERTH_LOG_LOGFMT = 0, /* ts=... level=... event=... kind=... name=ns/name msg="..." */
    BERTH_LOG_JSON = 1    /* {"ts":..., "level":..., "event":..., "kind":..., "name":..., ...} */
} berth_log_format;

/**
 * Receives one complete log line of len bytes ending in '\n' (line[len] is '\0'). Called once
 * per line, possibly from several engine threads at once: write it with one write(2) so lines
 * never interleave. Must not call back into the engine.
 */
typedef void (*berth_log_fn)(void *payload, const char *line, size_t len);

typedef struct berth_engine_opts {
    unsigned int version;
    const char *config_path; /* a YAML file or a directory (required) */
    const char *state_dir;   /* required */
    const char *target;      /* "dir:PATH" or "kube"; NULL: "dir:<state_dir>/target" */
    bool once;               /* one pass, then return */
    bool debug;              /* trace registry exchanges */
    /* set (by a signal handler) to stop the loop after the current reconcile; may be NULL */
    const volatile sig_atomic_t *stop;
    /* with once: reconcile only this object ("OCIRepository" or "Kustomization", namespace,
     * name; all three or none) and, with with_source, the OCIRepository it reads first; an
     * object that is not in the config is BERTH_ENOTFOUND */
    const char *only_kind;
    const char *only_ns;
    const char *only_name;
    bool with_source;
    /* loop workers running reconciles at once, 1..64; 0: 4 */
    unsigned int workers;
    /* set (by a SIGHUP handler) to reload the config now; the engine clears it; may be NULL */
    volatile sig_atomic_t *reload;
    /* how often the loop checks the config path's files for changes (names, sizes, mtimes) and
     * reloads when they changed; 0: 2000 ms, < 0: never (only *reload) */
    int64_t config_poll_ms;
    /* Logs: every record goes to log(log_payload, line, len) as one line in log_format. NULL
     * (the default): the engine logs nothing; it never writes to stdout or stderr by itself. */
    berth_log_format log_format;
    berth_log_fn log;
    void *log_payload;
    /* Loop mode, once the loop has worked and nothing is due for 10 s: free heap pages always go
     * back to the kernel (malloc_trim); with this set, the process's clean file-backed pages
     * (text of berth and its shared libraries) are also paged out (MADV_PAGEOUT), process-wide,
     * and fault back from the page cache on the next reconcile. For a process that is mostly
     * idle, such as `berth run`. */
    bool release_idle_pages;
    /* target "kube": the kubeconfig (NULL: $KUBECONFIG, in-cluster, ~/.kube/config) and the
     * context (NULL: current-context) */
    const char *kubeconfig;
    const char *kube_context;
    /* controller mode (berth run --kube): the objects come from the Kubernetes API of
     * kubeconfig/kube_context instead of config_path (ignored), and their status is written back
     * there (docs/kubernetes.md "Controller mode") */
    bool kube_store;
    /* with kube_store: list only the objects this label selector matches (sharding); NULL: all */
    const char *watch_label_selector;
    /* with kube_store: reconcile only while holding the coordination.k8s.io/v1 Lease
     * "berth-leader" in leader_election_namespace (NULL: the kubeconfig's or the pod's) */
    bool leader_elect;
    const char *leader_election_namespace;
    /* Kustomizations with spec.kubeConfig (a kubeconfig in a Secret, applied to that cluster):
     * let that kubeconfig run an exec credential plugin / skip TLS verification (Flux's
     * --insecure-kubeconfig-exec and --insecure-kubeconfig-tls); refused by default. Local file
     * paths in such a kubeconfig are always refused. */
    bool insecure_kubeconfig_exec;
    bool insecure_kubeconfig_tls;
} berth_engine_opts;
#define BERTH_ENGINE_OPTS_VERSION 1
#define BERTH_ENGINE_OPTS_INIT                                                                     \
    {                                                                                              \
        .version = BERTH_ENGINE_OPTS_VERSION                                                       \
    }

/**
 * Run the engine. With opts->once every object is reconciled once and *all_ready_out says
 * whether every OCIRepository and Kustomization that is not suspended ended Ready. Without it the
 * loop reconciles each object every interval (±5% jitter) until *opts->stop becomes non-zero;
 * then no reconcile starts, those in flight finish, and it returns 0. Reconciles run on
 * opts->workers threads; an object is never reconciled twice at once, a Kustomization waits for
 * its source and its dependencies. The loop reloads the config on *opts->reload and when its
 * files change; objects that left the config (and, at start, state of objects the config does
 * not have) are garbage-collected: status, inventory, artifacts, and a Kustomization's objects
 * when its last apply recorded prune (deletionPolicy), unless the config has a file that failed
 * as a whole. Structured logs (ts, level, event, kind, name, msg) go to opts->log when it is set;
 * the sink is process-wide while the call runs, so run one engine per process. Returns 0 (object
 * failures are in their status, not in the return), or BERTH_EINVAL (bad options, target),
 * BERTH_ECONFLICT (state dir in use), BERTH_ENOTFOUND / BERTH_EIO (config path or state dir
 * unreadable), BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_run(bool *all_ready_out, const berth_engine_opts *opts,
                                  berth_error **err);

/** One object's status, as `berth get` prints it. Strings are heap. */
typedef struct berth_engine_row {
    char *kind; /* "OCIRepository", "Kustomization", "ImageRepository", ... */
    char *ns;
    char *name;
    char *revision; /* artifact.revision, lastAppliedRevision, "N tags" (ImageRepository),
                       "image:tag" (ImagePolicy), lastPublishedRevision (automation); "" none */
    bool suspended;
    char *ready;       /* "True", "False", "Unknown" */
    char *reason;      /* of the Ready condition, "" when none */
    char *message;     /* of the Ready condition, "" when none */
    char *status_json; /* the whole status document */
} berth_engine_row;

/**
 * Read the status files of state_dir for kind ("OCIRepository", "Kustomization",
 * "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "images" for the three image kinds,
 * or NULL for all) into *rows_out (sorted by kind, namespace, name; free with
 * berth_engine_rows_free). A state dir without status is an empty list. Returns 0, BERTH_EIO,
 * BERTH_EINVAL (a status file that is not JSON: the message names it) or BERTH_ENOMEM. Takes no
 * lock.
 */
BERTH_EXTERN int berth_engine_status_list(berth_engine_row **rows_out, size_t *n_out,
                                          const char *state_dir, const char *kind,
                                          berth_error **err);
/** Free rows. Accepts NULL. */
BERTH_EXTERN void berth_engine_rows_free(berth_engine_row *rows, size_t n);

/* ---- the control API (engine/control.c): `berth run` in loop mode listens on
 * STATE/berth.sock (HTTP/1.1 over a Unix socket, mode 0600) for
 *   GET  /v1/status                                  {"objects": N}
 *   POST /v1/reconcile/{kind}/{namespace}/{name}     make the object due now
 *   POST /v1/suspend/{kind}/{namespace}/{name}       set the suspend override, then as reconcile
 *   POST /v1/resume/{kind}/{namespace}/{name}        clear it, then as reconcile
 * kind is "OCIRepository", "Kustomization", "ImageRepository", "ImagePolicy" or
 * "ImageUpdateAutomation"; "?withSource=true" on a Kustomization's reconcile
 * also makes its OCIRepository due. Answers: 202 (accepted), 404 (no such object or path), 400,
 * 405. ---- */

/**
 * Send one request (method "GET" or "POST", path as above) to the loop listening on
 * state_dir/berth.sock. *status_out gets the HTTP status; *body_out (body_out may be NULL) the
 * response body, to free with berth_engine_free_string. Returns 0, BERTH_ENOTFOUND when no
 * loop listens there, BERTH_EIO / BERTH_ETIMEOUT (the exchange failed) or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_control(int *status_out, char **body_out, const char *state_dir,
                                      const char *method, const char *path, berth_error **err);
/**
 * Why the loop running on state_dir keeps its previous configuration: a file of the config
 * failed as a whole at start or at the last reload (nothing is pruned or collected meanwhile).
 * *text_out (berth_engine_free_string) is "TIME\nERROR\n..." or NULL when the config loaded.
 * Returns 0, BERTH_EIO or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_config_error(char **text_out, const char *state_dir,
                                           berth_error **err);
/** Free a string returned by the engine API. Accepts NULL. */
BERTH_EXTERN void berth_engine_free_string(char *s);

/**
 * Set (suspend true) or clear the suspend override of an object in state_dir: a file
 * STATE/suspend/<kind lowercase>/<ns>/<name> that makes the reconcilers treat the object as
 * spec.suspend=true until it is cleared. Returns 0, BERTH_EINVAL (kind not OCIRepository or
 * Kustomization, ns or name not a path component), BERTH_EIO, BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_suspend_set(const char *state_dir, const char *kind, const char *ns,
                                          const char *name, bool suspend, berth_error **err);

/* ---- reading events and inventories (engine/query.c; no lock needed) ---- */

/** One recorded event. Strings are heap. */
typedef struct berth_engine_event {
    char *timestamp; /* RFC 3339 */
    char *severity;  /* "info", "error" */
    char *kind;
    char *ns;
    char *name;
    char *reason;
    char *message;
    char *json; /* the whole line */
} berth_engine_event;

/**
 * Read the events of state_dir (events.jsonl and its rotated files, oldest first) into
 * *out; kind and name (either may be NULL) keep only those of that object (kind compared
 * without case). Torn or non-JSON lines are skipped. A state dir without events is an empty
 * list. Returns 0, BERTH_ENOTFOUND (no state dir), BERTH_EIO or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_events_list(berth_engine_event **out, size_t *n_out,
                                          const char *state_dir, const char *kind, const char *name,
                                          berth_error **err);
/** Free events. Accepts NULL. */
BERTH_EXTERN void berth_engine_events_free(berth_engine_event *ev, size_t n);

/** One object of a Kustomization's inventory. Strings are heap. */
typedef struct berth_engine_object {
    char *group; /* "" for the core group */
    char *version;
    char *kind;
    char *ns; /* "" for cluster-scoped objects */
    char *name;
} berth_engine_object;

/**
 * Read the inventory of Kustomization ns/name from state_dir into *out (sorted by id).
 * Returns 0, BERTH_ENOTFOUND (no inventory was written for it), BERTH_EINVAL (malformed file:
 * the message names it), BERTH_EIO or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_engine_inventory_list(berth_engine_object **out, size_t *n_out,
                                             const char *state_dir, const char *ns,
                                             const char *name, berth_error **err);
/** Free objects. Accepts NULL. */
BERTH_EXTERN void berth_engine_objects_free(berth_engine_object *objs, size_t n);

#ifdef __cplusplus
}
#endif
#endif
