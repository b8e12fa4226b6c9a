/*
 * engine/target.h: the one writer to the world (internal, prefix eng_), design.md "One flow".
 *
 * A target takes the built objects of one Kustomization and its inventory and answers four
 * questions: plan (what would change, drift included), apply (make it so, returning the new
 * inventory), prune (delete what left the inventory), health (are the objects ready). The
 * directory target (eng_target_dir_new) and the Kubernetes target implement the same vtable;
 * a test target can record the calls. Targets are used from the engine's loop thread or from
 * one worker at a time: an eng_target is not shared between threads.
 *
 * Objects are jansson objects with apiVersion, kind, metadata.name and optional
 * metadata.namespace; a list of objects is a JSON array. Inventory ids are Flux's
 * "<ns>_<name>_<group>_<kind>" (engine/state.h).
 */
#ifndef BERTH_ENGINE_TARGET_H
#define BERTH_ENGINE_TARGET_H

#include <jansson.h>

#include <berth/buf.h>
#include <berth/error.h>

#include "engine/state.h"

/** What happens (or happened) to one object; the names are Flux's change-set actions. */
typedef enum {
    ENG_CHANGE_CREATE = 0, /* "created" */
    ENG_CHANGE_UPDATE,     /* "configured" */
    ENG_CHANGE_UNCHANGED,  /* "unchanged" */
    ENG_CHANGE_DELETE,     /* "deleted" */
    ENG_CHANGE_SKIPPED,    /* "skipped" */
    ENG_CHANGE_UNKNOWN     /* "unknown": a delete that was not confirmed */
} eng_change_action;

/** How the target's copy differs from what the inventory recorded. */
typedef enum {
    ENG_DRIFT_NONE = 0,
    ENG_DRIFT_MODIFIED, /* changed out of band */
    ENG_DRIFT_MISSING   /* deleted out of band */
} eng_drift;

/** One entry of a plan or of a prune result. */
typedef struct eng_change {
    eng_change_action action;
    eng_drift drift;
    char *id;       /* inventory id */
    char *version;  /* "v1" */
    char *subject;  /* "Kind/ns/name", or "Kind/name" for cluster-scoped objects */
    char *digest;   /* "sha256:<hex>" of the content to write; NULL for deletes */
    json_t *object; /* the desired object (a reference), NULL for deletes */
} eng_change;

/** A list of changes: desired objects in their given order, then deletions in id order. */
typedef struct eng_plan {
    eng_change *changes;
    size_t len;
    size_t cap;
} eng_plan;

void eng_plan_init(eng_plan *p);
/** Free the changes (and drop the object references). Accepts NULL. */
void eng_plan_dispose(eng_plan *p);
/** "created", "configured", "unchanged", "deleted", "skipped" or "unknown". */
const char *eng_change_action_name(eng_change_action a);
/** True when some change is not ENG_CHANGE_UNCHANGED. */
bool eng_plan_has_changes(const eng_plan *p);
/** Number of changes with drift. */
size_t eng_plan_drift_count(const eng_plan *p);
/**
 * Append Flux's change-set text to out: one "<subject> <action>" line per change that is not
 * unchanged (the Kustomization event message). Returns 0 or BERTH_ENOMEM.
 */
int eng_plan_render(berth_buf *out, const eng_plan *p);
/**
 * Append a change (copies of the strings; object gets a new reference; digest, object may be
 * NULL). Returns 0 or BERTH_ENOMEM. For target implementations.
 */
int eng_plan_add(eng_plan *p, eng_change_action action, eng_drift drift, const char *id,
                 const char *version, const char *subject, const char *digest, json_t *object,
                 berth_error **err);

/** Result of a health check. */
typedef struct eng_health {
    bool healthy;  /* every object is ready */
    char *message; /* heap: what is not ready, NULL when healthy */
} eng_health;

/** Free the message. Accepts NULL. */
void eng_health_dispose(eng_health *h);

typedef struct eng_target eng_target;

/** Which Kustomization the next plan/apply/prune/health calls work for (all borrowed). */
typedef struct eng_target_scope {
    const char *ks_ns;           /* owner labels kustomize.toolkit.fluxcd.io/namespace */
    const char *ks_name;         /* and kustomize.toolkit.fluxcd.io/name */
    const char *service_account; /* spec.serviceAccountName, or NULL */
    bool force;                  /* spec.force: recreate on immutable-field errors */
    int64_t timeout_ms;          /* spec.timeout: health checks and waits */
} eng_target_scope;

#define ENG_TARGET_VERSION 1

/** The target vtable; implementations embed it as their first member. */
struct eng_target {
    unsigned int version;
    const char *name; /* "dir", "kube", "test" */
    /**
     * Compare objects (a JSON array) with the target and with inv (the previous inventory):
     * *out (initialised here) gets one change per object and one ENG_CHANGE_DELETE per inventory
     * entry no longer desired. Nothing is written. Refuses (BERTH_EINVAL, naming the object) an
     * object without apiVersion, kind or metadata.name, and the same object twice.
     */
    int (*plan)(eng_target *t, eng_plan *out, const json_t *objects, const eng_inventory *inv,
                berth_error **err);
    /**
     * Carry out the creates and updates of plan (deletes are left to prune) and set *inv_out
     * (initialised here) to the new inventory: every non-delete change with its digest, in plan
     * order. On failure nothing of *inv_out is kept; files already written stay written.
     */
    int (*apply)(eng_target *t, eng_inventory *inv_out, const eng_plan *plan, berth_error **err);
    /**
     * Delete the objects of entries, only those (the stale part of an inventory). *out
     * (initialised here) gets one change per entry: ENG_CHANGE_DELETE when the object is gone,
     * ENG_CHANGE_UNKNOWN when its deletion failed (the error names every failure; the caller
     * keeps those entries in the inventory to retry). *out is to be disposed even on failure.
     */
    int (*prune)(eng_target *t, eng_plan *out, const eng_inventory *entries, berth_error **err);
    /** Assess readiness of objects (a JSON array) into *out (initialised here). */
    int (*health)(eng_target *t, eng_health *out, const json_t *objects, berth_error **err);
    /** Free the target. */
    void (*free)(eng_target *t);
    /** Set the scope of the calls that follow (copied), or NULL: targets that need none. */
    int (*scope)(eng_target *t, const eng_target_scope *s, berth_error **err);
    /**
     * Wait until the objects pruned (the ENG_CHANGE_DELETE changes of plan) are gone from the
     * target (their finalizers done), until the monotonic time deadline_ms: BERTH_ETIMEOUT
     * naming what is still there. NULL: deletions are immediate (the directory target).
     */
    int (*wait_gone)(eng_target *t, const eng_plan *pruned, int64_t deadline_ms, berth_error **err);
};

/* Calls through the vtable. */
int eng_target_plan(eng_target *t, eng_plan *out, const json_t *objects, const eng_inventory *inv,
                    berth_error **err);
int eng_target_apply(eng_target *t, eng_inventory *inv_out, const eng_plan *plan,
                     berth_error **err);
int eng_target_prune(eng_target *t, eng_plan *out, const eng_inventory *entries, berth_error **err);
int eng_target_health(eng_target *t, eng_health *out, const json_t *objects, berth_error **err);
/** Through the wait_gone hook; 0 at once for targets without one. */
int eng_target_wait_gone(eng_target *t, const eng_plan *pruned, int64_t deadline_ms,
                         berth_error **err);
/** Accepts NULL. */
void eng_target_free(eng_target *t);
/** Through the scope hook; 0 for targets without one. */
int eng_target_set_scope(eng_target *t, const eng_target_scope *s, berth_error **err);

/* ---- the directory target (engine/target_dir.c) ---- */

/**
 * A target that keeps one YAML file per object under dir (created 0755 if needed):
 *
 *   <dir>/<namespace>/<group>_<kind>_<name>.yaml
 *
 * <namespace> is "_cluster" for objects without one; <group> is "core" for the core group.
 * Each component is percent-encoded: every byte outside [A-Za-z0-9.-] (so '_', '/', ':', '%')
 * and a leading '.' become %XX, and a group literally named "core" is written "%63ore", so the
 * name maps back to exactly one object and never leaves its directory. File names longer than
 * 255 bytes are refused.
 * Files are written atomically, mode 0644 (0600 for kind Secret), as one YAML document each.
 * The inventory digest is the sha256 of the file's bytes; a file whose bytes differ from the
 * recorded digest is ENG_DRIFT_MODIFIED, a missing one ENG_DRIFT_MISSING, and apply rewrites
 * both. Prune removes only files named by the entries given (and then the namespace directory
 * if it became empty); foreign files are never touched. health: always healthy.
 * Returns 0, BERTH_EIO / BERTH_EDENIED (directory), BERTH_ENOMEM.
 */
int eng_target_dir_new(eng_target **out, const char *dir, berth_error **err);

/**
 * The file path (heap) the directory target uses for the object with inventory id id.
 * Returns 0, BERTH_EINVAL (bad id, name too long) or BERTH_ENOMEM.
 */
int eng_target_dir_path(char **out, const char *dir, const char *id, berth_error **err);

/**
 * Emit one object as a YAML document (block style, keys in stored order, strings that could
 * read back as another type double-quoted). This is the directory target's format. Returns 0,
 * BERTH_EINVAL (a value YAML can not hold) or BERTH_ENOMEM.
 */
int eng_target_dir_emit(berth_buf *out, const json_t *obj, berth_error **err);

#endif
