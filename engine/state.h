/*
 * engine/state.h: the standalone state directory (internal, prefix eng_), design.md "State on
 * disk":
 *
 *   STATE/berth.lock                           flock: one berth process per state dir
 *   STATE/artifacts/<kind>/<ns>/<name>/        per-object artifact storage
 *   STATE/status/<kind>/<ns>/<name>.json       the object's status (Flux's shape)
 *   STATE/inventory/<ns>/<name>.json           a Kustomization's inventory
 *   STATE/events.jsonl                         one event per line, rotated to .1 .. .N
 *
 * <kind> is the kind in lowercase ("ocirepository", as source-controller's storage does).
 * Directories are created 0700, files 0600. Status and inventory files are written atomically
 * (core_fs_write_atomic: temp, fsync, rename, fsync dir), so a crash leaves the previous file
 * whole. Events are appended with one write(2) per line and are not fsynced: a crash may lose
 * the last lines or leave a torn last line, which readers skip.
 *
 * Also here, because every target and the status writer share them: the inventory (Flux's
 * "<ns>_<name>_<group>_<kind>" ids, engine.md §1.6, plus a per-entry content digest) and the
 * status condition helpers (engine.md §1.6, oci-artifacts.md §2.6).
 *
 * An eng_state is shared by the loop thread and its workers: paths are read-only, status and
 * inventory files are per object (the loop never runs two jobs of one object) and written
 * atomically, and events.jsonl is appended and rotated under a mutex.
 */
#ifndef BERTH_ENGINE_STATE_H
#define BERTH_ENGINE_STATE_H

#include <jansson.h>

#include <berth/buf.h>
#include <berth/error.h>

/* ---- inventory ---- */

/** One applied object. */
typedef struct eng_inv_entry {
    char *id;      /* "<ns>_<name>_<group>_<kind>" (engine.md §1.6) */
    char *version; /* "v1", never "group/version" */
    char *digest;  /* "sha256:<hex>" of the content the target wrote, or NULL */
} eng_inv_entry;

/** What removing the Kustomization from the config does to its inventory's objects. */
typedef enum {
    ENG_INV_PRUNE_UNKNOWN = 0, /* not recorded (an older file): the objects are kept */
    ENG_INV_PRUNE_ON,          /* deleted (engine.md §1.9: deletionPolicy applied to prune) */
    ENG_INV_PRUNE_OFF          /* kept */
} eng_inv_prune;

/** A list of entries; kept sorted by id by eng_inventory_sort and when read from disk. */
typedef struct eng_inventory {
    eng_inv_entry *entries;
    size_t len;
    size_t cap;
    eng_inv_prune prune; /* "prune": true|false in the file; recorded by each apply */
    char *cluster;       /* "cluster" in the file: the API server URL of the remote cluster (the
                            Kustomization's spec.kubeConfig) the entries were applied to, whose
                            kubeconfig is kept beside the inventory (eng_state_kubeconfig_write);
                            NULL: the engine's own target */
    int64_t wait_ms;     /* "waitForTermination" in the file: deletionPolicy WaitForTermination's
                            wait (the Kustomization's timeout) for the deleted objects to be gone
                            when it is removed; 0: no wait */
} eng_inventory;

#define ENG_INVENTORY_INIT                                                                         \
    {                                                                                              \
        NULL, 0, 0, ENG_INV_PRUNE_UNKNOWN, NULL, 0                                                 \
    }

/** An inventory id taken apart. Every field is heap (eng_objid_dispose). */
typedef struct eng_objid {
    char *ns;    /* "" for cluster-scoped objects */
    char *name;  /* with ':' restored for the RBAC kinds */
    char *group; /* "" for the core group */
    char *kind;
} eng_objid;

void eng_inventory_init(eng_inventory *inv);
/** Free the entries and reset to empty. Accepts NULL. */
void eng_inventory_dispose(eng_inventory *inv);
/**
 * Add an entry (copies of the strings; digest may be NULL). An entry with the same id is
 * replaced. Returns 0 or BERTH_ENOMEM.
 */
int eng_inventory_add(eng_inventory *inv, const char *id, const char *version, const char *digest,
                      berth_error **err);
/** Sort by id (byte order). */
void eng_inventory_sort(eng_inventory *inv);
/** The entry with this id or NULL (linear; borrowed until inv changes). */
const eng_inv_entry *eng_inventory_find(const eng_inventory *inv, const char *id);
/**
 * *stale_out (initialised here) = the entries of old whose id is not in cur (versions are
 * ignored, engine.md §3.9), in old's order. Returns 0 or BERTH_ENOMEM.
 */
int eng_inventory_diff(eng_inventory *stale_out, const eng_inventory *old, const eng_inventory *cur,
                       berth_error **err);
/**
 * {"entries":[{"id","v","digest"?}],"prune"?: bool} in the inventory's order ("prune" only when
 * known). Returns 0 or BERTH_ENOMEM.
 */
int eng_inventory_to_json(json_t **out, const eng_inventory *inv, berth_error **err);
/**
 * The reverse of eng_inventory_to_json into *out (initialised here), sorted. what names the
 * source in messages. Returns 0, BERTH_EINVAL (wrong shape) or BERTH_ENOMEM.
 */
int eng_inventory_from_json(eng_inventory *out, const json_t *j, const char *what,
                            berth_error **err);

/**
 * Flux's inventory id "<ns>_<name>_<group>_<kind>" into *out (heap): ns "" for cluster-scoped,
 * group "" for core; for Role, ClusterRole, RoleBinding and ClusterRoleBinding of
 * rbac.authorization.k8s.io every ':' of the name becomes "__". Returns 0, BERTH_EINVAL (empty
 * name or kind, or '_' in ns, group or kind) or BERTH_ENOMEM.
 */
int eng_objid_format(char **out, const char *ns, const char *name, const char *group,
                     const char *kind, berth_error **err);
/**
 * Parse an id: ns up to the first '_', kind after the last, group after the one before, the
 * rest is the name ("__" back to ':' for the RBAC kinds). Returns 0, BERTH_EINVAL or ENOMEM.
 */
int eng_objid_parse(eng_objid *out, const char *id, berth_error **err);
void eng_objid_dispose(eng_objid *id);
/**
 * The id and version of a manifest object (apiVersion, kind, metadata.name required;
 * metadata.namespace optional). *id_out and *version_out are heap. index (0-based position in
 * its list) is used in messages for objects without a name. Returns 0, BERTH_EINVAL with a
 * message naming the object and the missing field, or BERTH_ENOMEM.
 */
int eng_object_id(char **id_out, char **version_out, const json_t *obj, size_t index,
                  berth_error **err);

/* ---- status helpers (the JSON shape of Flux's status) ---- */

/** {"observedGeneration": -1, "conditions": []}; NULL on OOM. The caller owns the reference. */
json_t *eng_status_new(void);

/** A condition to set (all strings borrowed). */
typedef struct eng_condition {
    const char *type;   /* "Ready", "Reconciling", "Stalled", ... */
    const char *status; /* "True", "False", "Unknown" */
    const char *reason;
    const char *message; /* trimmed to 32768 bytes with "..." */
    int64_t observed_generation;
} eng_condition;

#define ENG_CONDITION_MESSAGE_MAX 32768

/**
 * Set (add or replace) a condition in status["conditions"]. lastTransitionTime (RFC 3339, from
 * now_ms) changes only when status, reason or message change. Conditions stay sorted: Stalled,
 * Reconciling, Ready, then the others in insertion order. Returns 0, BERTH_EINVAL (status not
 * an object, or a field missing) or BERTH_ENOMEM.
 */
int eng_status_set_condition(json_t *status, const eng_condition *c, int64_t now_ms,
                             berth_error **err);
/** The condition of this type or NULL (borrowed). */
json_t *eng_status_condition(const json_t *status, const char *type);
/** Remove the condition of this type if present. */
void eng_status_remove_condition(json_t *status, const char *type);

/** status.artifact (oci-artifacts.md §2.2): strings borrowed, url/path may be NULL. */
typedef struct eng_artifact_info {
    const char *revision; /* "<tag>@sha256:<hex>" or "sha256:<hex>" */
    const char *digest;   /* digest of the stored tarball */
    int64_t size;         /* bytes of the stored file, < 0: absent */
    int64_t updated_ms;   /* lastUpdateTime */
    const char *path;     /* "ocirepository/<ns>/<name>/<digest>.tar.gz" or NULL */
    const char *url;      /* or NULL */
} eng_artifact_info;

/** Set status["artifact"]. Returns 0, BERTH_EINVAL or BERTH_ENOMEM. */
int eng_status_set_artifact(json_t *status, const eng_artifact_info *a, berth_error **err);

/**
 * Set status["inventory"] = {"entries":[{"id","v"}]} in inv's order (Flux's shape: the digests
 * stay in the inventory file). Returns 0, BERTH_EINVAL (status not an object) or BERTH_ENOMEM.
 */
int eng_status_set_inventory(json_t *status, const eng_inventory *inv, berth_error **err);

/* ---- the state directory ---- */

typedef struct eng_state eng_state;

#define ENG_STATE_OPTS_VERSION 1
typedef struct eng_state_opts {
    unsigned int version;
    size_t events_max_bytes;  /* rotate events.jsonl before it would pass this; 0: 8 MiB */
    unsigned int events_keep; /* rotated files kept (events.jsonl.1 .. .N); 0: 3 */
} eng_state_opts;

#define ENG_STATE_OPTS_INIT                                                                        \
    {                                                                                              \
        ENG_STATE_OPTS_VERSION, 0, 0                                                               \
    }

/**
 * Open (creating with mode 0700 if needed) the state directory dir and take its lock. A second
 * open of the same directory, from this or another process, fails with BERTH_ECONFLICT and a
 * message naming the directory (and the holder's pid). opts may be NULL.
 * Returns 0, BERTH_ECONFLICT, BERTH_EIO / BERTH_EDENIED (file system), BERTH_ENOMEM.
 */
int eng_state_open(eng_state **out, const char *dir, const eng_state_opts *opts, berth_error **err);
/** Release the lock and free. Accepts NULL. */
void eng_state_free(eng_state *st);
/** The directory (borrowed). */
const char *eng_state_path(const eng_state *st);

/**
 * The artifact directory of an object, created (0700) if needed; *out is heap. kind, ns and name
 * must be safe path components (no '/', not "." or ".."), else BERTH_EINVAL.
 */
int eng_state_artifact_dir(char **out, eng_state *st, const char *kind, const char *ns,
                           const char *name, berth_error **err);

/**
 * Read an object's status: *out is a new reference, or NULL when none was written.
 * Returns 0, BERTH_EINVAL (unreadable JSON: the message names the file), BERTH_EIO, ENOMEM.
 */
int eng_state_status_read(json_t **out, eng_state *st, const char *kind, const char *ns,
                          const char *name, berth_error **err);
/** Write an object's status atomically (indented JSON). Returns 0, EINVAL, EIO, ENOMEM. */
int eng_state_status_write(eng_state *st, const char *kind, const char *ns, const char *name,
                           const json_t *status, berth_error **err);
/** Remove an object's status (absent is fine). */
int eng_state_status_remove(eng_state *st, const char *kind, const char *ns, const char *name,
                            berth_error **err);

/**
 * Read a Kustomization's inventory into *out (initialised here; empty when none was written),
 * sorted by id. Returns 0, BERTH_EINVAL (malformed file), BERTH_EIO, BERTH_ENOMEM.
 */
int eng_state_inventory_read(eng_inventory *out, eng_state *st, const char *ns, const char *name,
                             berth_error **err);
/** Write it atomically, sorted by id (inv is not changed). Returns 0, EINVAL, EIO, ENOMEM. */
int eng_state_inventory_write(eng_state *st, const char *ns, const char *name,
                              const eng_inventory *inv, berth_error **err);
/** Remove an inventory and its kubeconfig (absent is fine). */
int eng_state_inventory_remove(eng_state *st, const char *ns, const char *name, berth_error **err);
/**
 * Keep the kubeconfig (bytes of a spec.kubeConfig Secret) the inventory's objects were applied
 * with, as STATE/inventory/<ns>/<name>.kubeconfig (0600, atomic; not rewritten when unchanged),
 * so pruning after the Secret changed or went away, and garbage collection, reach the cluster
 * that holds them. Returns 0, BERTH_EIO, BERTH_ENOMEM.
 */
int eng_state_kubeconfig_write(eng_state *st, const char *ns, const char *name, const void *data,
                               size_t len, berth_error **err);
/** Read it into out (a secret: wipe it). Returns 0, BERTH_ENOTFOUND, BERTH_EIO, BERTH_ENOMEM. */
int eng_state_kubeconfig_read(berth_buf *out, eng_state *st, const char *ns, const char *name,
                              berth_error **err);
/** Remove it (absent is fine). */
int eng_state_kubeconfig_remove(eng_state *st, const char *ns, const char *name, berth_error **err);

/** An event (strings borrowed). */
typedef struct eng_event {
    int64_t time_ms;         /* wall clock */
    const char *severity;    /* "info" or "error" */
    const char *api_version; /* of the object, or NULL */
    const char *kind;
    const char *ns;
    const char *name;
    const char *reason;
    const char *message;
    const json_t *metadata; /* object of strings, or NULL */
} eng_event;

/**
 * Append one line to events.jsonl in the notification wire format (engine.md §6.1):
 * {"involvedObject":{"kind","namespace","name","apiVersion"?},"severity","timestamp","reason",
 * "message","metadata"?,"reportingController":"berth"}. Before the file would pass
 * events_max_bytes it is rotated (events.jsonl -> .1 -> .2 ...; the oldest is dropped).
 * Returns 0, BERTH_EINVAL (kind, name, reason or severity missing), BERTH_EIO, ENOMEM.
 */
int eng_state_event_append(eng_state *st, const eng_event *ev, berth_error **err);

#endif
