/*
 * engine/kube_store.h: controller mode, the Kubernetes API as the engine's store (internal,
 * prefix eng_kstore_; engine/kube_store.c, docs/kubernetes.md "Controller mode").
 */
#ifndef BERTH_ENGINE_KUBE_STORE_H
#define BERTH_ENGINE_KUBE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/engine.h>
#include <berth/error.h>

/**
 * berth_engine_run with opts->kube_store: materialise the cluster's OCIRepository and
 * Kustomization objects (and the Secrets and ConfigMaps they reference) into
 * opts->state_dir/kube-store, run the engine on that directory, and keep the directory and the
 * objects' status subresources in step while it runs. Returns berth_engine_run's codes, or the
 * Kubernetes client's (no configuration, the API or the CRDs unreachable) for the first pass.
 */
int eng_kstore_run(bool *all_ready_out, const berth_engine_opts *opts, berth_error **err);

/* ---- the pure parts (engine/kube_store_doc.c): JSON in, JSON out; no I/O ---- */

/** A name the store may put in a file name: a DNS label or subdomain (no '/', '_', not "."). */
bool eng_kstore_name_ok(const char *s);

/**
 * The store document of an object: {apiVersion, kind, metadata {name, namespace, labels (when
 * non-empty)}, and obj's top-level keys (NULL-terminated; absent ones skipped)}. Annotations,
 * uid, status and managedFields are left out. New reference; NULL on ENOMEM.
 */
json_t *eng_kstore_doc(const json_t *obj, const char *api_version, const char *kind,
                       const char *const *keys);

/**
 * Add the Secrets and ConfigMaps a spec references to refs as "Kind/ns/name" keys (value true):
 * every {name} under a key ending in "secretRef"/"SecretRef" (verify.secretRef,
 * decryption.secretRef, kubeConfig.secretRef, ...) is a Secret, and postBuild.substituteFrom
 * entries of kind Secret or ConfigMap; all in the object's namespace ns. Returns 0 or
 * BERTH_ENOMEM.
 */
int eng_kstore_refs_collect(json_t *refs, json_t *spec, const char *ns);

/**
 * The Secret/ConfigMap watches' filter: obj (kind "Secret" or "ConfigMap") is kept only when
 * refs (as eng_kstore_refs_collect fills it) names it; every other object is dropped on arrival.
 */
bool eng_kstore_ref_wanted(const json_t *refs, const char *kind, const json_t *obj);

/**
 * The status to merge-patch onto an object: the reconcile's status file with observedGeneration
 * (top level and in each condition) set to generation when > 0, and lastHandledReconcileAt set
 * to handled when non-NULL. *out is that status (new reference) when some top-level field
 * differs from live_status (the object's status, may be NULL), else NULL: nothing to write.
 * Returns 0 or BERTH_ENOMEM.
 */
int eng_kstore_status_patch(json_t **out, const json_t *file_status, const json_t *live_status,
                            int64_t generation, const char *handled);

/**
 * What a follower last saw of another replica's Lease: the record (holder, renewTime,
 * leaseTransitions, duration as one string) and the local monotonic time it last changed.
 * record is heap (eng_kstore_lease_obs_dispose).
 */
typedef struct eng_kstore_lease_obs {
    char *record;
    int64_t changed_ms;
} eng_kstore_lease_obs;

void eng_kstore_lease_obs_dispose(eng_kstore_lease_obs *o);

/**
 * client-go's expiry rule: another holder's Lease (spec as read) is expired once its record has
 * not changed for its leaseDurationSeconds (default_s when absent) by the local monotonic clock
 * now_ms. Clocks of different machines are never compared, so skew cannot make two leaders.
 * A record seen for the first time, or changed, restarts the count. Returns 1 expired, 0 not,
 * BERTH_ENOMEM.
 */
int eng_kstore_lease_expired(eng_kstore_lease_obs *o, const json_t *spec, int64_t default_s,
                             int64_t now_ms);

#endif
