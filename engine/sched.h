/*
 * engine/sched.h: the loop's schedule (internal, prefix eng_sched_): one item per object of the
 * config, the decisions of which item may start now, and what a (re)load of the config does to
 * the items: new objects and changed specs are due at once, objects gone from the config become
 * "removed" items that a garbage-collection job clears (engine/gc.c).
 *
 * Design: everything here is owned and used by the loop thread only, and is pure (no I/O), so
 * the decisions are unit-tested without threads or a clock. Items are heap objects that outlive
 * a reload: a job on a worker holds its item's pointer, and a reload keeps the item of an object
 * that stays (matched by kind/namespace/name) with its due time, failures and in-flight flag.
 * The table is ordered: OCIRepositories (config order), then Kustomizations with dependencies
 * first (a cycle falls back to name order), then removed items. Positions (source, deps) are
 * recomputed by each build.
 *
 * The rules of eng_sched_can_start (design.md "Reconcilers and the loop"):
 *   - an object is never in two jobs at once;
 *   - a Kustomization waits while its OCIRepository is in flight or due (so the first pass
 *     applies the source's new artifact, not the previous one or none);
 *   - an OCIRepository waits while a Kustomization reading it is in flight (its reconcile
 *     removes superseded artifact directories that the Kustomization may be reading);
 *   - a Kustomization waits while a dependency (dependsOn) is in flight, and while a dependency
 *     that comes earlier in the order is due (a cycle can not deadlock: the wait on "due" only
 *     points backwards in a total order, and in-flight jobs always finish).
 */
#ifndef BERTH_ENGINE_SCHED_H
#define BERTH_ENGINE_SCHED_H

#include <stdint.h>

#include <berth/error.h>

#include "engine/config.h"

#define ENG_SCHED_NONE ((size_t)-1)
#define ENG_SCHED_NEVER INT64_MAX

/** One object the loop knows. */
typedef struct eng_item {
    const char *kind;                 /* ENG_KIND_OCIREPO or ENG_KIND_KS (static strings) */
    char *ns;                         /* heap */
    char *name;                       /* heap */
    const eng_ocirepo *repo;          /* spec in the current config, or NULL */
    const eng_kustomization *ks;      /* spec in the current config, or NULL */
    char digest[72];                  /* content digest of that spec ("" when none) */
    size_t source;                    /* KS: position of its OCIRepository, or ENG_SCHED_NONE */
    size_t *deps;                     /* KS: positions of its dependsOn items that exist */
    size_t deps_len;                  /* number of deps */
    int64_t due_ms;                   /* monotonic; ENG_SCHED_NEVER: not scheduled */
    unsigned int failures;            /* consecutive failed jobs (backoff) */
    unsigned int consumers_in_flight; /* OCIRepository: Kustomization jobs reading it now */
    bool in_flight;                   /* a job of this item runs on a worker */
    bool ready;                       /* the last reconcile ended Ready (or suspended) */
    bool ran;                         /* a job of this item finished since the start */
    bool removed;                     /* gone from the config: its state is to be collected */
} eng_item;

/** The table of items. */
typedef struct eng_sched {
    eng_item **items; /* owned */
    size_t len;
    size_t cap;
} eng_sched;

void eng_sched_init(eng_sched *s);
/** Free every item. Accepts NULL. */
void eng_sched_dispose(eng_sched *s);

/** An object identity (strings borrowed). */
typedef struct eng_objkey {
    const char *kind;
    const char *ns;
    const char *name;
} eng_objkey;

/**
 * Rebuild the table for cfg (which must outlive the next build or dispose): an object of cfg
 * keeps its item (state kept; due now when its content digest changed or it was removed
 * before), a new object gets a new item due now. An item whose object left cfg becomes removed
 * (due now, spec cleared) unless in_config_with_errors says cfg still names it with an error,
 * or keep_missing is set (the config is incomplete: absence proves nothing): then it keeps no
 * spec and is not scheduled. extra (n_extra keys) are objects found in the state directory:
 * those not in cfg become removed items too (unless keep_missing). Items that end up with no
 * spec and not removed are freed unless a job points at them (in_flight, consumers_in_flight):
 * those stay, "parked", until eng_sched_is_parked_idle says the loop may drop them.
 * Returns 0 or BERTH_ENOMEM (the table then holds the items and specs it held; due times may
 * have moved).
 */
int eng_sched_build(eng_sched *s, const eng_config *cfg, const eng_objkey *extra, size_t n_extra,
                    bool keep_missing, int64_t now, berth_error **err);

/** The item of kind/ns/name, or NULL. */
eng_item *eng_sched_find(const eng_sched *s, const char *kind, const char *ns, const char *name);

/** Whether the item at pos may start a job now (the rules above). */
bool eng_sched_can_start(const eng_sched *s, size_t pos, int64_t now);

/**
 * After a job of the item at pos produced a new artifact (OCIRepository) or applied a new
 * revision (Kustomization): its consumers (the Kustomizations reading the source, the
 * dependents of the Kustomization) become due at now. With once, consumers that already ran
 * are left alone. Returns how many were woken.
 */
size_t eng_sched_wake_consumers(eng_sched *s, size_t pos, int64_t now, bool once);

/** The position of item in the table, or ENG_SCHED_NONE. */
size_t eng_sched_pos(const eng_sched *s, const eng_item *item);

/** True for an item with no spec, not removed, that no job points at (the loop drops it). */
bool eng_sched_is_parked_idle(const eng_item *item);

/** Remove item from the table and free it (a collected removed item). */
void eng_sched_drop(eng_sched *s, eng_item *item);

/**
 * The earliest due time after `after` among items that are not in flight (ENG_SCHED_NEVER when
 * none). Items due by `after` that could not start wait for a job to finish (the loop wakes on
 * that), so the loop sleeps until eng_sched_next_due(s, now); eng_sched_next_due(s, INT64_MIN)
 * is ENG_SCHED_NEVER when nothing is scheduled at all (the end of a --once pass).
 */
int64_t eng_sched_next_due(const eng_sched *s, int64_t after);

/**
 * The retry delay after a failed job: 1 s, 2 s, 4 s ... doubling per consecutive failure
 * (failures >= 1), capped at cap_ms.
 */
int64_t eng_sched_backoff(unsigned int failures, int64_t cap_ms);

#endif
