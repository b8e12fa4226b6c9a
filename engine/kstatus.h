/*
 * engine/kstatus.h: health of one live Kubernetes object (internal, prefix eng_), the kstatus
 * rules of spec/engine.md §4.2. Pure: no network, no state; the only input besides the object is
 * the wall clock (a Pending Pod is Unschedulable only after 15 s). Thread-safe.
 */
#ifndef BERTH_ENGINE_KSTATUS_H
#define BERTH_ENGINE_KSTATUS_H

#include <jansson.h>

#include <berth/error.h>

/** kstatus's statuses (spec/engine.md §4.1). */
typedef enum {
    ENG_KSTATUS_CURRENT = 0,
    ENG_KSTATUS_IN_PROGRESS,
    ENG_KSTATUS_FAILED,
    ENG_KSTATUS_TERMINATING,
    ENG_KSTATUS_NOT_FOUND,
    ENG_KSTATUS_UNKNOWN
} eng_kstatus;

/** "Current", "InProgress", "Failed", "Terminating", "NotFound", "Unknown" (static). */
const char *eng_kstatus_name(eng_kstatus s);

/**
 * kstatus of one live object (NULL obj = NotFound); *msg_out (heap, may be NULL) says why.
 *
 * obj is the object as read from the API server (apiVersion, kind, metadata, spec, status).
 * *out is always set. *msg_out, when msg_out is not NULL, gets a heap string (core_free) in
 * kstatus's words ("Deployment is available. Replicas: 3", "Updated: 1/3", ...); it may be empty
 * (a Stalled condition without a message) but is never NULL after a 0 return. Fields of the
 * wrong JSON type count as absent, as kstatus's defaults do; a Pod phase kstatus does not know
 * gives Unknown. With a NULL obj the kind is unknown here, so the caller applies Flux's rule that
 * a Job with spec.ttlSecondsAfterFinished that is NotFound counts as Current.
 * Returns 0; BERTH_EINVAL (obj is not a JSON object, or has no string "kind"; *out is Unknown)
 * or BERTH_ENOMEM.
 */
int eng_kstatus_compute(eng_kstatus *out, char **msg_out, const json_t *obj, berth_error **err);

#endif
