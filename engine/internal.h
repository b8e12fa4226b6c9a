/*
 * engine/internal.h: what the engine's reconcilers share (internal, prefix eng_): the context
 * of one pass (config, state, target), the logfmt logger and the status writer that skips
 * unchanged documents, so a no-change reconcile rewrites nothing.
 */
#ifndef BERTH_ENGINE_INTERNAL_H
#define BERTH_ENGINE_INTERNAL_H

#include <jansson.h>

#include <berth/buf.h>
#include <berth/engine.h>
#include <berth/error.h>

#include "engine/config.h"
#include "engine/sched.h"
#include "engine/state.h"
#include "engine/target.h"

#define ENG_KIND_OCIREPO "OCIRepository"
#define ENG_KIND_KS "Kustomization"

typedef struct eng_clients eng_clients;
typedef struct eng_remotes eng_remotes;

/**
 * What a reconcile works with; everything borrowed. One eng_ctx per thread: the loop's workers
 * each have their own target and client cache and share the state (engine/state.h says what
 * is safe to share).
 */
typedef struct eng_ctx {
    eng_state *state;
    const eng_config *cfg;
    eng_target *target;
    bool debug;     /* trace registry exchanges */
    int64_t now_ms; /* wall clock read once per reconcile */
    bool changed;   /* set by a reconcile that stored a new artifact / applied a new revision */
    eng_clients *clients; /* this thread's registry clients kept across reconciles, or NULL */
    eng_remotes *remotes; /* this thread's spec.kubeConfig targets, or NULL: none allowed */
} eng_ctx;

/**
 * Reconcile one OCIRepository (oci-artifacts.md §2.7) and write its status. Object failures go
 * into the status (*ready_out false); the return is 0, or a negative code when the state
 * directory could not be written (or ENOMEM).
 */
int eng_source_oci_reconcile(eng_ctx *ctx, const eng_ocirepo *repo, bool *ready_out,
                             berth_error **err);

/** Reconcile one Kustomization (engine.md §1) and write its status and inventory. Same returns. */
int eng_kustomization_reconcile(eng_ctx *ctx, const eng_kustomization *ks, bool *ready_out,
                                berth_error **err);

/**
 * A registry client for an object in namespace ns, its traffic bounded by timeout_ms (0: none):
 * docker config from the Secret secret_ref
 * (.dockerconfigjson), CA / client certificate from cert_secret_ref (ca.crt, tls.crt + tls.key),
 * either may be NULL. Secret bytes go to a private temp dir under the state dir, *tmpdir_out
 * (NULL when none), which the caller removes with eng_registry_tmp_remove after the client is
 * done. With borrowed_out and no Secrets the client comes from the worker's cache (ctx->clients):
 * *borrowed_out is then true and the caller must not free it. Returns 0, BERTH_ENOTFOUND (Secret
 * missing), BERTH_EINVAL (key missing), EIO, ENOMEM.
 */
struct berth_oci_client;
int eng_registry_client_new(struct berth_oci_client **out, char **tmpdir_out, bool *borrowed_out,
                            eng_ctx *ctx, const char *ns, const char *secret_ref,
                            const char *cert_secret_ref, bool insecure, int64_t timeout_ms,
                            berth_error **err);
/** Wipe and remove a credentials dir of eng_registry_client_new, and free the string. NULL ok. */
void eng_registry_tmp_remove(char *tmpdir);

/* ---- engine/kustomization.c: drift in status ---- */

/**
 * What plan found drifted, as {"count": N, "objects": [{"id", "subject", "drift": "modified" |
 * "missing"}]} (the first 100 objects), or *out NULL when nothing drifted. 0 or BERTH_ENOMEM.
 */
int eng_kustomization_drift_json(json_t **out, const eng_plan *plan);
/**
 * The Ready message of an applied Kustomization: "Applied revision: <rev>", plus "; drift
 * corrected at <time>: <n> object(s) restored" while status.lastDriftCorrection is of that
 * revision. Heap, NULL on OOM.
 */
char *eng_kustomization_ready_message(const json_t *status, const char *revision);

/* ---- engine/mem.c ---- */

/** How long nothing must be due before the loop gives memory back (eng_mem_idle). */
#define ENG_IDLE_RELEASE_MS 10000
/**
 * Give memory back between bursts of work: malloc_trim(0), and with release_pages the clean
 * file-backed private mappings of the process are paged out (MADV_PAGEOUT). Best effort; loop
 * thread only.
 */
void eng_mem_idle(bool release_pages);

/* ---- engine/log.c ---- */

/** Send log records to fn in format (fn NULL: drop them). Set before threads start. */
void eng_log_set_sink(berth_log_format format, berth_log_fn fn, void *payload);

/**
 * Append one record as a line (with '\n') to out: logfmt "ts level event [kind] [name] msg" or a
 * JSON object with ts (RFC 3339, milliseconds, UTC), level, event, kind, name ("ns/name"),
 * namespace, msg; kind and name are left out when NULL. Returns 0 or BERTH_ENOMEM.
 */
int eng_log_format_line(berth_buf *out, berth_log_format format, int64_t wall_ms, const char *level,
                        const char *event, const char *kind, const char *ns, const char *name,
                        const char *msg);

/** One record to the sink: level, event, kind, name ("ns/name"), msg. One sink call per line. */
void eng_log(const char *level, const char *event, const char *kind, const char *ns,
             const char *name, const char *fmt, ...) BERTH_PRINTF(6, 7);

/** Set a condition with observedGeneration 1 (the file store has no generations). */
int eng_cond(json_t *status, const char *type, const char *st, const char *reason,
             const char *message, int64_t now_ms, berth_error **err);

/**
 * Controller mode's view of reconciles (engine/kube_store.c, lastHandledReconcileAt): the
 * OCIRepository, Kustomization and image reconcilers call eng_reconcile_mark(.., false) when they
 * start, and eng_status_commit calls it with ended true. One hook per process: set before the
 * loop starts and cleared (NULL) after it stopped; fn runs on the workers, concurrently.
 */
typedef void (*eng_reconcile_hook_fn)(void *payload, const char *kind, const char *ns,
                                      const char *name, bool ended);
void eng_reconcile_hook_set(eng_reconcile_hook_fn fn, void *payload);
void eng_reconcile_mark(const char *kind, const char *ns, const char *name, bool ended);

/** Write status unless it equals old (which may be NULL); marks the reconcile's end
 * (eng_reconcile_mark). Returns 0 or the state's codes. */
int eng_status_commit(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                      const json_t *old, const json_t *status, berth_error **err);

/** Record an event (best effort: a failure is logged, never returned). */
void eng_emit(eng_ctx *ctx, const char *severity, const char *kind, const char *ns,
              const char *name, const char *reason, const char *message);

/** "True" when the status's Ready condition is True. */
bool eng_status_is_ready(const json_t *status);

/** A string member of status (path of up to two keys), or NULL. */
const char *eng_status_str(const json_t *status, const char *k1, const char *k2);

/* ---- engine/clients.c: registry clients kept alive across reconciles ---- */

struct berth_oci_client_opts;
struct berth_oci_client;
/** An empty cache. Returns 0 or BERTH_ENOMEM. */
int eng_clients_new(eng_clients **out, berth_error **err);
/** Free the cache and its clients. Accepts NULL. */
void eng_clients_free(eng_clients *c);
/**
 * A client made with opts, from the cache when one with the same options is there, else made
 * and kept. Only options without files or credentials are cached (creds, docker_config,
 * ca_file, cert_file, key_file, progress all NULL), else BERTH_EINVAL: such clients are made per
 * reconcile. *out is borrowed until eng_clients_free. One thread per cache. Returns 0 or the
 * codes of berth_oci_client_new.
 */
int eng_clients_get(struct berth_oci_client **out, eng_clients *c,
                    const struct berth_oci_client_opts *opts, berth_error **err);

/* ---- engine/remote.c: spec.kubeConfig, Kustomizations applying to remote clusters ---- */

/**
 * An empty cache of remote Kubernetes targets, for one thread. allow_exec / allow_insecure_tls:
 * a Secret's kubeconfig may run exec plugins / skip TLS verification (eng_kube_secret_policy).
 * Returns 0 or BERTH_ENOMEM.
 */
int eng_remotes_new(eng_remotes **out, bool allow_exec, bool allow_insecure_tls, berth_error **err);
/** Free the cache and its targets. Accepts NULL. */
void eng_remotes_free(eng_remotes *r);
/** Free the targets not used for 5 minutes (the loop's workers, after each job). NULL ok. */
void eng_remotes_expire(eng_remotes *r);
/** How many targets the cache holds (tests). */
size_t eng_remotes_count(const eng_remotes *r);

/** Where a Kustomization's objects go (eng_ks_target_dispose). */
typedef struct eng_ks_target {
    eng_target *target;   /* borrowed: ctx->target, or a target of ctx->remotes */
    char *where;          /* "kubeConfig Secret \"ns/name\" (server URL)"; NULL: ctx->target */
    char *cluster;        /* the remote server URL (the inventory's cluster); NULL: ctx->target */
    berth_buf kubeconfig; /* the remote's kubeconfig bytes (a secret, wiped on dispose) */
} eng_ks_target;

/**
 * The target of ks: ctx->target without spec.kubeConfig, else the cluster of the kubeconfig in
 * its Secret (eng_kube_config_from_secret's checks). Fails, naming the Secret, when the
 * engine's target is not Kubernetes (or ctx->remotes is NULL), the Secret or its key is
 * missing, or the kubeconfig is malformed or refused: BERTH_EINVAL, BERTH_ENOTFOUND,
 * BERTH_EDENIED, BERTH_ENOMEM. out is initialised here; dispose it also on failure.
 */
int eng_ks_target_resolve(eng_ks_target *out, eng_ctx *ctx, const eng_kustomization *ks,
                          berth_error **err);
/**
 * The target that holds the objects of inventory inv of Kustomization ns/name: ctx->target when
 * inv->cluster is NULL, else the cluster of the kubeconfig the state kept for it. Same codes.
 */
int eng_ks_target_stored(eng_ks_target *out, eng_ctx *ctx, const char *ns, const char *name,
                         const eng_inventory *inv, berth_error **err);
/** Free what t owns (not the target). Accepts NULL. */
void eng_ks_target_dispose(eng_ks_target *t);
/** True when t is the cluster old's objects were applied to (local_target: ctx->target). */
bool eng_ks_target_same_cluster(const eng_ks_target *t, const eng_inventory *old,
                                const eng_target *local_target);

/* ---- engine/gc.c: state of objects that left the config ---- */

/**
 * Whether removing ks from the config deletes its inventory's objects (engine.md §1.9):
 * deletionPolicy MirrorPrune follows spec.prune, Delete and WaitForTermination delete, Orphan
 * keeps. (Suspension is checked at removal time, from the status.)
 */
bool eng_ks_prune_on_removal(const eng_kustomization *ks);

/**
 * Garbage-collect an object that left the config (a worker job). OCIRepository: its status,
 * stored artifacts and suspend override are removed. Kustomization: when its inventory file
 * records prune on and its last status is not suspended, the inventory's objects are deleted
 * from the target first (as a prune, engine.md §3.9); then inventory, status and suspend
 * override are removed. A failed deletion keeps what could not be deleted in the inventory and
 * the status, and returns the error (the loop retries). Logs and records an event.
 * Returns 0 or the codes of the state and target.
 */
int eng_gc_object(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                  berth_error **err);

/** Objects found in the state directory; the strings are owned by the list. */
typedef struct eng_keylist {
    eng_objkey *keys; /* kind is ENG_KIND_OCIREPO or ENG_KIND_KS; ns and name point into owned */
    size_t len;
    char **owned;
    size_t n_owned;
} eng_keylist;

/**
 * The objects with a status file (STATE/status/<kind>/<ns>/<name>.json) or, for a
 * Kustomization, an inventory (STATE/inventory/<ns>/<name>.json), each once, into *out
 * (initialised here; eng_keylist_dispose). Returns 0, BERTH_EIO or BERTH_ENOMEM.
 */
int eng_keylist_from_state(eng_keylist *out, eng_state *st, berth_error **err);
/** Free the list. Accepts NULL. */
void eng_keylist_dispose(eng_keylist *l);

/* ---- engine/control.c: the suspend override and the control socket ---- */

/** True when the state dir holds a suspend override for the object (berth suspend). */
bool eng_suspend_override(const eng_state *st, const char *kind, const char *ns, const char *name);

typedef struct eng_control eng_control;
/**
 * Make the object (and with_source its OCIRepository) due now; false when there is none. With
 * reload_first the loop first reloads its config if the files changed (a writer of the config,
 * controller mode's store, wrote them before asking: no race with the config poll).
 */
typedef bool (*eng_control_wake_fn)(void *payload, const char *kind, const char *ns,
                                    const char *name, bool with_source, bool reload_first);
/**
 * Listen on state_dir/berth.sock (mode 0600; a stale socket is replaced: the caller holds the
 * state lock). Returns 0, BERTH_EINVAL (path too long for a Unix socket), BERTH_EIO, ENOMEM.
 */
int eng_control_open(eng_control **out, const char *state_dir, berth_error **err);
/** The listening socket, for the loop's poll (POLLIN: a client waits; serve with timeout 0). */
int eng_control_fd(const eng_control *c);
/** Close and unlink the socket. Accepts NULL. */
void eng_control_free(eng_control *c);
/**
 * Wait up to timeout_ms for one client; answer its request (engine.h "control API") and close
 * it. Never fails: a bad or slow client gets an error answer or is dropped.
 */
void eng_control_serve(eng_control *c, int64_t timeout_ms, eng_control_wake_fn wake, void *payload,
                       size_t n_objects);

#endif
