/*
 * engine/kstatus.h: the kstatus of one live Kubernetes object (spec/engine.md §4), internal,
 * prefix eng_. Used by the Kubernetes target's health check.
 */
#ifndef BERTH_ENGINE_KSTATUS_H
#define BERTH_ENGINE_KSTATUS_H

#include <jansson.h>

#include <berth/error.h>

typedef enum {
    ENG_KSTATUS_CURRENT = 0,
    ENG_KSTATUS_IN_PROGRESS,
    ENG_KSTATUS_FAILED,
    ENG_KSTATUS_TERMINATING,
    ENG_KSTATUS_NOT_FOUND,
    ENG_KSTATUS_UNKNOWN
} eng_kstatus;

/** "Current", "InProgress", "Failed", "Terminating", "NotFound", "Unknown". */
const char *eng_kstatus_name(eng_kstatus s);

/* kstatus of one live object (NULL obj = NotFound); *msg_out (heap, may be NULL) says why. */
int eng_kstatus_compute(eng_kstatus *out, char **msg_out, const json_t *obj, berth_error **err);

#endif
