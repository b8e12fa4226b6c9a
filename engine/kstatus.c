/*
 * engine/kstatus.c: the health of one live object, as kstatus (sigs.k8s.io/cli-utils
 * pkg/kstatus/status) and Flux compute it: spec/engine.md §4.2.
 *
 * Design: one pass in §4.2's order: deletionTimestamp, the observedGeneration check, the standard
 * Reconciling/Stalled conditions, then a rule per kind (keyed "group/Kind", core kinds without a
 * group), then the Ready condition, then Current. Every rule returns a status and a message worded
 * as kstatus's, so `berth` output and Flux's health-check messages read the same. Two departures
 * from upstream kstatus, both Flux's: a running Job is InProgress until it completes (Flux's Job
 * reader), and objects without a kind-specific rule honour a Ready condition.
 * Integers are read as kstatus reads them: a missing field or one of another type takes the
 * rule's default. Nothing here allocates except the message.
 */
#include "engine/kstatus.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"

/* How long a Pod may stay Unschedulable before it is Failed (kstatus's ScheduleWindow). */
#define SCHEDULE_WINDOW_S 15
/* The Deployment controller's "no progress deadline" value (math.MaxInt32). */
#define NO_DEADLINE INT64_C(2147483647)

typedef struct result {
    eng_kstatus status;
    char *msg; /* heap */
} result;

const char *eng_kstatus_name(eng_kstatus s)
{
    switch (s) {
    case ENG_KSTATUS_CURRENT:
        return "Current";
    case ENG_KSTATUS_IN_PROGRESS:
        return "InProgress";
    case ENG_KSTATUS_FAILED:
        return "Failed";
    case ENG_KSTATUS_TERMINATING:
        return "Terminating";
    case ENG_KSTATUS_NOT_FOUND:
        return "NotFound";
    case ENG_KSTATUS_UNKNOWN:
        break;
    }
    return "Unknown";
}

/* ---- field access ---- */

static const json_t *at(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return v;
}

static int64_t int_at(const json_t *o, int64_t def, const char *a, const char *b, const char *c)
{
    const json_t *v = at(o, a, b, c);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static bool int_present(const json_t *o, const char *a, const char *b)
{
    return json_is_integer(at(o, a, b, NULL));
}

static const char *str_at(const json_t *o, const char *def, const char *a, const char *b,
                          const char *c)
{
    const char *s = json_string_value(at(o, a, b, c));
    return s ? s : def;
}

static const char *cond_str(const json_t *cond, const char *key)
{
    const char *s = json_string_value(json_object_get(cond, key));
    return s ? s : "";
}

/* True when a condition of this type has this status ("True", "False"). */
static bool cond_is(const json_t *obj, const char *type, const char *status)
{
    const json_t *conds = at(obj, "status", "conditions", NULL), *c;
    size_t i;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(cond_str(c, "type"), type) == 0 && strcmp(cond_str(c, "status"), status) == 0)
            return true;
    }
    return false;
}

/* The first condition of this type, or NULL. */
static const json_t *cond_get(const json_t *obj, const char *type)
{
    const json_t *conds = at(obj, "status", "conditions", NULL), *c;
    size_t i;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(cond_str(c, "type"), type) == 0)
            return c;
    }
    return NULL;
}

/* a - b, saturated: counts come from the object, and a hostile one must not overflow. */
static int64_t sub(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

/* ---- results ---- */

static int set(result *r, eng_kstatus st, const char *fmt, ...) BERTH_PRINTF(3, 4);

static int set(result *r, eng_kstatus st, const char *fmt, ...)
{
    va_list ap;
    char tmp[256];
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    r->status = st;
    core_free(r->msg);
    if (n >= 0 && (size_t)n < sizeof(tmp)) {
        r->msg = core_strdup(tmp);
    } else {
        va_start(ap, fmt);
        r->msg = n < 0 ? NULL : core_malloc((size_t)n + 1);
        if (r->msg)
            vsnprintf(r->msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return r->msg ? 1 : BERTH_ENOMEM;
}

/* Rules return 1 when they decided (r set), 0 to fall through, or BERTH_ENOMEM. */

static int rule_deployment(result *r, const json_t *o)
{
    bool progressing =
        int_at(o, NO_DEADLINE, "spec", "progressDeadlineSeconds", NULL) == NO_DEADLINE;
    bool available = false;
    const json_t *conds = at(o, "status", "conditions", NULL), *c;
    size_t i;
    json_array_foreach(conds, i, c)
    {
        const char *type = cond_str(c, "type"), *st = cond_str(c, "status");
        const char *reason = cond_str(c, "reason");
        if (strcmp(type, "Progressing") == 0) {
            if (strcmp(reason, "ProgressDeadlineExceeded") == 0)
                return set(r, ENG_KSTATUS_FAILED, "Progress deadline exceeded");
            if (strcmp(st, "True") == 0 && strcmp(reason, "NewReplicaSetAvailable") == 0)
                progressing = true;
        } else if (strcmp(type, "Available") == 0 && strcmp(st, "True") == 0) {
            available = true;
        }
    }
    int64_t spec = int_at(o, 1, "spec", "replicas", NULL);
    int64_t replicas = int_at(o, 0, "status", "replicas", NULL);
    int64_t updated = int_at(o, 0, "status", "updatedReplicas", NULL);
    int64_t ready = int_at(o, 0, "status", "readyReplicas", NULL);
    int64_t avail = int_at(o, 0, "status", "availableReplicas", NULL);
    if (spec > replicas)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Replicas: %lld/%lld", (long long)replicas,
                   (long long)spec);
    if (spec > updated)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Updated: %lld/%lld", (long long)updated,
                   (long long)spec);
    if (replicas > spec)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Pending termination: %lld",
                   (long long)sub(replicas, spec));
    if (updated > avail)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Available: %lld/%lld", (long long)avail,
                   (long long)updated);
    if (spec > ready)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Ready: %lld/%lld", (long long)ready,
                   (long long)spec);
    if (!progressing)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "ReplicaSet not Available");
    if (!available)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Deployment not Available");
    return set(r, ENG_KSTATUS_CURRENT, "Deployment is available. Replicas: %lld",
               (long long)replicas);
}

static int rule_statefulset(result *r, const json_t *o)
{
    if (strcmp(str_at(o, "", "spec", "updateStrategy", "type"), "OnDelete") == 0)
        return set(r, ENG_KSTATUS_CURRENT, "StatefulSet is using the ondelete update strategy");
    int64_t spec = int_at(o, 1, "spec", "replicas", NULL);
    int64_t replicas = int_at(o, 0, "status", "replicas", NULL);
    int64_t ready = int_at(o, 0, "status", "readyReplicas", NULL);
    int64_t current = int_at(o, 0, "status", "currentReplicas", NULL);
    int64_t updated = int_at(o, 0, "status", "updatedReplicas", NULL);
    const json_t *ru = at(o, "spec", "updateStrategy", "rollingUpdate");
    int64_t partition = int_at(ru, -1, "partition", NULL, NULL);
    if (spec > replicas)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Replicas: %lld/%lld", (long long)replicas,
                   (long long)spec);
    if (spec > ready)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Ready: %lld/%lld", (long long)ready,
                   (long long)spec);
    if (replicas > spec)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Pending termination: %lld",
                   (long long)sub(replicas, spec));
    if (partition != -1) {
        if (updated < sub(spec, partition))
            return set(r, ENG_KSTATUS_IN_PROGRESS, "updated: %lld/%lld", (long long)updated,
                       (long long)sub(spec, partition));
        return set(r, ENG_KSTATUS_CURRENT, "Partition rollout complete. updated: %lld",
                   (long long)updated);
    }
    if (spec > current)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "current: %lld/%lld", (long long)current,
                   (long long)spec);
    if (strcmp(str_at(o, "", "status", "currentRevision", NULL),
               str_at(o, "", "status", "updateRevision", NULL)) != 0)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Waiting for updated revision to match current");
    return set(r, ENG_KSTATUS_CURRENT, "All replicas scheduled as expected. Replicas: %lld",
               (long long)replicas);
}

static int rule_daemonset(result *r, const json_t *o, const char *kind)
{
    if (!int_present(o, "metadata", "generation"))
        return set(r, ENG_KSTATUS_IN_PROGRESS, "%s metadata.generation not found", kind);
    if (!int_present(o, "status", "observedGeneration"))
        return set(r, ENG_KSTATUS_IN_PROGRESS, "%s status.observedGeneration not found", kind);
    int64_t desired = int_at(o, -1, "status", "desiredNumberScheduled", NULL);
    int64_t current = int_at(o, 0, "status", "currentNumberScheduled", NULL);
    int64_t updated = int_at(o, 0, "status", "updatedNumberScheduled", NULL);
    int64_t avail = int_at(o, 0, "status", "numberAvailable", NULL);
    int64_t ready = int_at(o, 0, "status", "numberReady", NULL);
    if (desired == -1)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Missing .status.desiredNumberScheduled");
    if (desired > current)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Current: %lld/%lld", (long long)current,
                   (long long)desired);
    if (desired > updated)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Updated: %lld/%lld", (long long)updated,
                   (long long)desired);
    if (desired > avail)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Available: %lld/%lld", (long long)avail,
                   (long long)desired);
    if (desired > ready)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Ready: %lld/%lld", (long long)ready,
                   (long long)desired);
    return set(r, ENG_KSTATUS_CURRENT, "All replicas scheduled as expected. Replicas: %lld",
               (long long)desired);
}

static int rule_replicaset(result *r, const json_t *o)
{
    if (cond_is(o, "ReplicaFailure", "True"))
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Replica Failure condition. Check Pods");
    int64_t spec = int_at(o, 1, "spec", "replicas", NULL);
    int64_t replicas = int_at(o, 0, "status", "replicas", NULL);
    int64_t ready = int_at(o, 0, "status", "readyReplicas", NULL);
    int64_t avail = int_at(o, 0, "status", "availableReplicas", NULL);
    int64_t labelled = int_at(o, 0, "status", "fullyLabeledReplicas", NULL);
    if (spec > labelled)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Labelled: %lld/%lld", (long long)labelled,
                   (long long)spec);
    if (spec > avail)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Available: %lld/%lld", (long long)avail,
                   (long long)spec);
    if (spec > ready)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Ready: %lld/%lld", (long long)ready,
                   (long long)spec);
    if (replicas > spec)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Pending termination: %lld",
                   (long long)sub(replicas, spec));
    return set(r, ENG_KSTATUS_CURRENT, "ReplicaSet is available. Replicas: %lld",
               (long long)replicas);
}

/* Flux's Job reader: a Job is healthy once it has completed, not while it runs. */
static int rule_job(result *r, const json_t *o)
{
    const json_t *susp = at(o, "spec", "suspend", NULL);
    int64_t parallelism = int_at(o, 1, "spec", "parallelism", NULL);
    int64_t completions = int_at(o, parallelism, "spec", "completions", NULL);
    int64_t succeeded = int_at(o, 0, "status", "succeeded", NULL);
    int64_t active = int_at(o, 0, "status", "active", NULL);
    int64_t failed = int_at(o, 0, "status", "failed", NULL);
    const json_t *conds = at(o, "status", "conditions", NULL), *c;
    size_t i;
    if (json_is_true(susp))
        return set(r, ENG_KSTATUS_CURRENT, "Job is suspended");
    json_array_foreach(conds, i, c)
    {
        const char *type = cond_str(c, "type");
        if (strcmp(cond_str(c, "status"), "True") != 0)
            continue;
        if (strcmp(type, "Complete") == 0)
            return set(r, ENG_KSTATUS_CURRENT, "Job Completed. succeeded: %lld/%lld",
                       (long long)succeeded, (long long)completions);
        if (strcmp(type, "Failed") == 0)
            return set(r, ENG_KSTATUS_FAILED, "Job Failed. failed: %lld/%lld", (long long)failed,
                       (long long)completions);
        if (strcmp(type, "Suspended") == 0)
            return set(r, ENG_KSTATUS_CURRENT, "Job is suspended");
    }
    if (!str_at(o, NULL, "status", "startTime", NULL) ||
        !*str_at(o, NULL, "status", "startTime", NULL))
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Job not started");
    return set(r, ENG_KSTATUS_IN_PROGRESS,
               "Job in progress. success:%lld, active: %lld, failed: %lld", (long long)succeeded,
               (long long)active, (long long)failed);
}

/* Names of the containers waiting in CrashLoopBackOff, comma-separated, into out. */
static int crashlooping(berth_buf *out, const json_t *o)
{
    const json_t *css = at(o, "status", "containerStatuses", NULL), *cs;
    size_t i;
    json_array_foreach(css, i, cs)
    {
        const char *name = json_string_value(json_object_get(cs, "name"));
        if (!name || strcmp(str_at(cs, "", "state", "waiting", "reason"), "CrashLoopBackOff") != 0)
            continue;
        if ((out->len && berth_buf_puts(out, ",") < 0) || berth_buf_puts(out, name) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

static int rule_pod(result *r, const json_t *o)
{
    const char *phase = str_at(o, "", "status", "phase", NULL);
    if (strcmp(phase, "Succeeded") == 0)
        return set(r, ENG_KSTATUS_CURRENT, "Pod has completed successfully");
    if (strcmp(phase, "Failed") == 0)
        return set(r, ENG_KSTATUS_CURRENT, "Pod has completed, but not successfully");
    if (strcmp(phase, "Running") == 0) {
        berth_buf names = BERTH_BUF_INIT;
        int rc;
        if (cond_is(o, "Ready", "True"))
            return set(r, ENG_KSTATUS_CURRENT, "Pod is Ready");
        if (crashlooping(&names, o) < 0) {
            berth_buf_dispose(&names);
            return BERTH_ENOMEM;
        }
        if (names.len)
            rc = set(r, ENG_KSTATUS_FAILED, "Containers in CrashLoop state: %s", names.ptr);
        else
            rc = set(r, ENG_KSTATUS_IN_PROGRESS, "Pod is running but is not Ready");
        berth_buf_dispose(&names);
        return rc;
    }
    if (strcmp(phase, "Pending") == 0) {
        const json_t *c = cond_get(o, "PodScheduled");
        if (c && strcmp(cond_str(c, "status"), "False") == 0 &&
            strcmp(cond_str(c, "reason"), "Unschedulable") == 0) {
            const char *created = str_at(o, "", "metadata", "creationTimestamp", NULL);
            int64_t t = 0;
            /* Without a readable creationTimestamp the pod counts as created at the epoch,
             * as a zero Go time does: long past the window. */
            if (core_time_parse_rfc3339(&t, created) < 0)
                t = 0;
            if (core_wall_now() / 1000 - SCHEDULE_WINDOW_S < t)
                return set(r, ENG_KSTATUS_IN_PROGRESS, "Pod has not been scheduled");
            return set(r, ENG_KSTATUS_FAILED, "Pod could not be scheduled");
        }
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Pod is in the Pending phase");
    }
    if (!*phase)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "Pod phase not available");
    return set(r, ENG_KSTATUS_UNKNOWN, "unknown phase %s", phase);
}

static int rule_pvc(result *r, const json_t *o)
{
    const char *phase = str_at(o, "unknown", "status", "phase", NULL);
    if (strcmp(phase, "Bound") != 0)
        return set(r, ENG_KSTATUS_IN_PROGRESS, "PVC is not Bound. phase: %s", phase);
    return set(r, ENG_KSTATUS_CURRENT, "PVC is Bound");
}

static int rule_service(result *r, const json_t *o)
{
    if (strcmp(str_at(o, "ClusterIP", "spec", "type", NULL), "LoadBalancer") == 0 &&
        !*str_at(o, "", "spec", "clusterIP", NULL))
        return set(r, ENG_KSTATUS_IN_PROGRESS, "ClusterIP not set. Service type: LoadBalancer");
    return set(r, ENG_KSTATUS_CURRENT, "Service is ready");
}

static int rule_crd(result *r, const json_t *o)
{
    const json_t *conds = at(o, "status", "conditions", NULL), *c;
    size_t i;
    json_array_foreach(conds, i, c)
    {
        const char *type = cond_str(c, "type"), *st = cond_str(c, "status");
        if (strcmp(type, "NamesAccepted") == 0 && strcmp(st, "False") == 0)
            return set(r, ENG_KSTATUS_FAILED, "%s", cond_str(c, "message"));
        if (strcmp(type, "Established") == 0) {
            if (strcmp(st, "False") == 0 && strcmp(cond_str(c, "reason"), "Installing") != 0)
                return set(r, ENG_KSTATUS_FAILED, "%s", cond_str(c, "message"));
            if (strcmp(st, "True") == 0)
                return set(r, ENG_KSTATUS_CURRENT, "CRD is established");
        }
    }
    return set(r, ENG_KSTATUS_IN_PROGRESS, "Install in progress");
}

/* §4.2 steps 1-3: deletion, generation, the standard conditions. */
static int generic(result *r, const json_t *o, const char *kind)
{
    const char *del = str_at(o, "", "metadata", "deletionTimestamp", NULL);
    const json_t *conds = at(o, "status", "conditions", NULL), *c;
    size_t i;
    if (*del)
        return set(r, ENG_KSTATUS_TERMINATING, "Resource scheduled for deletion");
    if (int_present(o, "metadata", "generation") &&
        int_present(o, "status", "observedGeneration")) {
        int64_t gen = int_at(o, 0, "metadata", "generation", NULL);
        int64_t seen = int_at(o, 0, "status", "observedGeneration", NULL);
        if (gen != seen)
            return set(r, ENG_KSTATUS_IN_PROGRESS,
                       "%s generation is %lld, but latest observed generation is %lld", kind,
                       (long long)gen, (long long)seen);
    }
    json_array_foreach(conds, i, c)
    {
        const char *type = cond_str(c, "type");
        if (strcmp(cond_str(c, "status"), "True") != 0)
            continue;
        if (strcmp(type, "Reconciling") == 0)
            return set(r, ENG_KSTATUS_IN_PROGRESS, "%s", cond_str(c, "message"));
        if (strcmp(type, "Stalled") == 0)
            return set(r, ENG_KSTATUS_FAILED, "%s", cond_str(c, "message"));
    }
    return 0;
}

/* §4.2 step 5: a Ready condition decides for kinds without their own rule. */
static int ready_condition(result *r, const json_t *o)
{
    const json_t *c = cond_get(o, "Ready");
    const char *msg;
    if (!c)
        return 0;
    msg = cond_str(c, "message");
    if (strcmp(cond_str(c, "status"), "True") == 0)
        return set(r, ENG_KSTATUS_CURRENT, "%s", *msg ? msg : "Resource is Ready");
    return set(r, ENG_KSTATUS_IN_PROGRESS, "%s", *msg ? msg : "Resource is not Ready");
}

/* Step 4: the rule of "group/Kind"; 0 when the kind has none. */
static int kind_rule(result *r, const json_t *o, const char *group, const char *kind)
{
    bool core = !*group, apps = strcmp(group, "apps") == 0 || strcmp(group, "extensions") == 0;
    if (apps && strcmp(kind, "Deployment") == 0)
        return rule_deployment(r, o);
    if (apps && strcmp(kind, "DaemonSet") == 0)
        return rule_daemonset(r, o, kind);
    if (apps && strcmp(kind, "ReplicaSet") == 0)
        return rule_replicaset(r, o);
    if (strcmp(group, "apps") == 0 && strcmp(kind, "StatefulSet") == 0)
        return rule_statefulset(r, o);
    if (strcmp(group, "batch") == 0 && strcmp(kind, "Job") == 0)
        return rule_job(r, o);
    if (strcmp(group, "apiextensions.k8s.io") == 0 && strcmp(kind, "CustomResourceDefinition") == 0)
        return rule_crd(r, o);
    if (strcmp(group, "policy") == 0 && strcmp(kind, "PodDisruptionBudget") == 0)
        return set(r, ENG_KSTATUS_CURRENT, "AllowedDisruptions has been computed.");
    if ((strcmp(group, "batch") == 0 && strcmp(kind, "CronJob") == 0) ||
        (core && (strcmp(kind, "ConfigMap") == 0 || strcmp(kind, "Secret") == 0)))
        return set(r, ENG_KSTATUS_CURRENT, "Resource is always ready");
    if (core && strcmp(kind, "Pod") == 0)
        return rule_pod(r, o);
    if (core && strcmp(kind, "PersistentVolumeClaim") == 0)
        return rule_pvc(r, o);
    if (core && strcmp(kind, "Service") == 0)
        return rule_service(r, o);
    return 0;
}

int eng_kstatus_compute(eng_kstatus *out, char **msg_out, const json_t *obj, berth_error **err)
{
    result r = {ENG_KSTATUS_UNKNOWN, NULL};
    const char *kind, *api, *slash;
    char *group = NULL;
    int rc;

    BERTH_ARG_CHECK(out);
    *out = ENG_KSTATUS_UNKNOWN;
    if (msg_out)
        *msg_out = NULL;
    if (!obj) {
        rc = set(&r, ENG_KSTATUS_NOT_FOUND, "Resource not found");
        goto out;
    }
    if (!json_is_object(obj))
        return core_error_set(err, BERTH_EINVAL, "kstatus: the object is not a JSON object");
    kind = json_string_value(json_object_get(obj, "kind"));
    if (!kind || !*kind)
        return core_error_set(err, BERTH_EINVAL, "kstatus: object %s has no \"kind\"",
                              str_at(obj, "(unnamed)", "metadata", "name", NULL));
    api = str_at(obj, "", "apiVersion", NULL, NULL);
    slash = strchr(api, '/');
    if (!(group = slash ? core_strndup(api, (size_t)(slash - api)) : core_strdup(""))) {
        rc = BERTH_ENOMEM;
        goto out;
    }
    if ((rc = generic(&r, obj, kind)) != 0)
        goto out;
    if ((rc = kind_rule(&r, obj, group, kind)) != 0)
        goto out;
    if ((rc = ready_condition(&r, obj)) != 0)
        goto out;
    rc = set(&r, ENG_KSTATUS_CURRENT, "Resource is current");
out:
    core_free(group);
    if (rc < 0) {
        core_free(r.msg);
        return core_error_set(err, BERTH_ENOMEM, "kstatus: out of memory");
    }
    *out = r.status;
    if (msg_out)
        *msg_out = r.msg;
    else
        core_free(r.msg);
    return 0;
}
