"""Simulated controllers of the test API server: CRD establishment, garbage collection, namespace
and CRD cleanup, and rollouts (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, PVC,
LoadBalancer Service).

Why: berth waits for health with the kstatus rules (engine.md §4), for CRDs to be Established
before applying their CRs, and for deleted objects to disappear. None of that can be tested
against a store that never changes status, so this module plays kube-controller-manager and the
apiextensions controllers, on a clock tests can speed up.

Design: one daemon thread ticks every few milliseconds. Each tick reads the store under its lock
and writes status through `api.controller_write` (an Update by "kube-controller-manager" on the
status subresource, so it bumps resourceVersion, records managedFields and emits watch events
like a real controller). Rollouts advance one replica per `rollout_step_ms`: a pod is first
"updated" (created at the new template), then "ready" one step later. An object annotated
`kubeapi.berth.dev/fail-rollout: "true"` never gets ready pods (a Deployment then reports
Progressing=False/ProgressDeadlineExceeded once spec.progressDeadlineSeconds × time_scale has
passed without progress; a Job fails with BackoffLimitExceeded; a Pod crash-loops; a PVC stays
Pending). `kubeapi.berth.dev/no-controller: "true"` (or the `controllers` setting off) leaves an
object's status to the test. Per-object progress lives in memory, keyed by uid.
"""
import copy
import hashlib
import sys
import threading
import time
import traceback

import api
from discovery import condition, crd_is_established
from storage import now_rfc3339

FAIL = "kubeapi.berth.dev/fail-rollout"
NO_CONTROLLER = "kubeapi.berth.dev/no-controller"
APISERVER = "kube-apiserver"
_ALPHA = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(tpl):
    h = hashlib.sha256(repr(sorted_json(tpl)).encode()).digest()
    return "".join(_ALPHA[b % len(_ALPHA)] for b in h[:10])


def sorted_json(v):
    if isinstance(v, dict):
        return [(k, sorted_json(v[k])) for k in sorted(v)]
    if isinstance(v, list):
        return [sorted_json(x) for x in v]
    return v


def _ann(obj, key):
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(key) == "true"


def set_condition(status, ctype, cstatus, reason, message, update_time=False):
    """Set a condition like the real controllers: lastTransitionTime moves only when status
    changes; Deployments also carry lastUpdateTime (moved when reason or message change)."""
    conds = status.setdefault("conditions", [])
    now = now_rfc3339()
    for c in conds:
        if c.get("type") == ctype:
            changed = c.get("reason") != reason or c.get("message") != message or c.get("status") != cstatus
            if c.get("status") != cstatus:
                c["lastTransitionTime"] = now
            if update_time and changed:
                c["lastUpdateTime"] = now
            c.update({"status": cstatus, "reason": reason, "message": message})
            return
    c = {"type": ctype, "status": cstatus}
    if update_time:
        c["lastUpdateTime"] = now
    c.update({"lastTransitionTime": now, "reason": reason, "message": message})
    conds.append(c)


def _scaled(value, total, round_up):
    """An int-or-percent (maxSurge, maxUnavailable) resolved against total."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 0
        n = pct * total
        return -(-n // 100) if round_up else n // 100
    return 0


def _drop_owner(obj, uid):
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _put(status, field, n):
    """Counts are omitempty in the real API: zero is left out."""
    if n:
        status[field] = n
    else:
        status.pop(field, None)


class Controllers(threading.Thread):
    def __init__(self, state, log=None):
        super().__init__(name="kubeapi-controllers", daemon=True)
        self.state = state
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.progress = {}   # uid -> per-object rollout state
        self.seen = {}       # uid -> monotonic time first seen (CRD accept time, GC orphan time)
        self._stop = threading.Event()

    def stop(self):
        self._stop.set()

    def run(self):
        while not self._stop.is_set():
            step = max(self.state.settings.rollout_step_ms, 1) / 1000.0
            self._stop.wait(min(0.05, max(step / 4, 0.005)))
            try:
                self.tick()
            except Exception:  # keep serving; a controller bug must show in the log, not kill the server
                self.log("controller error:\n" + traceback.format_exc())

    # ------------------------------------------------------------------ one pass
    def tick(self):
        st = self.state
        now = time.monotonic()
        with st.store.lock:
            objs = [(k, o) for k, o in st.store.objects.items()]
        live_uids = {o["metadata"].get("uid") for _, o in objs}
        for key in list(self.progress):
            if key not in live_uids:
                del self.progress[key]
        for key, obj in objs:
            g, p = key[0], key[1]
            if (g, p) == api.CRD_GR:
                self.crd(key, obj, now)
        if st.settings.gc:
            self.gc(objs, now)
            for key, obj in objs:
                if (key[0], key[1]) == api.NS_GR and obj["metadata"].get("deletionTimestamp"):
                    self.namespace_cleanup(key, obj)
        if not st.settings.controllers:
            return
        handlers = {("apps", "deployments"): self.deployment, ("apps", "statefulsets"): self.statefulset,
                    ("apps", "daemonsets"): self.daemonset, ("apps", "replicasets"): self.replicaset,
                    ("batch", "jobs"): self.job, ("", "pods"): self.pod,
                    ("", "persistentvolumeclaims"): self.pvc, ("", "services"): self.service}
        for key, obj in objs:
            h = handlers.get((key[0], key[1]))
            if h is None or _ann(obj, NO_CONTROLLER) or obj["metadata"].get("deletionTimestamp"):
                continue
            h(key, obj, now)

    def _write(self, key, mutate, manager=api.CONTROLLER_MANAGER, subresource="status"):
        return api.controller_write(self.state, key, mutate, manager, subresource)

    def _step_due(self, pr, now):
        step = max(self.state.settings.rollout_step_ms, 0) / 1000.0
        if now - pr.get("last_step", 0) >= step:
            pr["last_step"] = now
            return True
        return False

    # ------------------------------------------------------------------ CRDs
    def crd(self, key, obj, now):
        uid = obj["metadata"]["uid"]
        if obj["metadata"].get("deletionTimestamp"):
            self.crd_cleanup(key, obj)
            return
        names = (obj.get("spec") or {}).get("names") or {}
        group = (obj.get("spec") or {}).get("group")
        accepted = condition(obj, "NamesAccepted")
        if accepted is None:
            clash = None
            with self.state.store.lock:
                for k, o in self.state.store.objects.items():
                    if k[:2] != api.CRD_GR or o is obj or o["metadata"]["uid"] == uid:
                        continue
                    s = o.get("spec") or {}
                    on = s.get("names") or {}
                    if s.get("group") == group and crd_is_established(o):
                        if on.get("plural") == names.get("plural"):
                            clash = ("PluralConflict", '"%s" is already in use' % names.get("plural"))
                        elif on.get("kind") == names.get("kind"):
                            clash = ("KindConflict", '"%s" is already in use' % names.get("kind"))

            def accept(o):
                s = o.setdefault("status", {})
                if clash:
                    set_condition(s, "NamesAccepted", "False", clash[0], clash[1])
                    set_condition(s, "Established", "False", "NotAccepted", "not all names are accepted")
                    return
                an = {"plural": names.get("plural", ""), "singular": names.get("singular", ""),
                      "kind": names.get("kind", ""), "listKind": names.get("listKind", names.get("kind", "") + "List")}
                for f in ("shortNames", "categories"):
                    if names.get(f):
                        an[f] = names[f]
                s["acceptedNames"] = an
                set_condition(s, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
                set_condition(s, "Established", "False", "Installing", "the initial names have been accepted")
            self.seen[uid] = now
            self._write(key, accept, APISERVER)
            return
        est = condition(obj, "Established")
        if accepted.get("status") == "True" and (est is None or est.get("status") != "True"):
            t0 = self.seen.setdefault(uid, now)
            if (now - t0) * 1000 >= self.state.settings.crd_establish_delay_ms:
                self._write(key, lambda o: set_condition(o.setdefault("status", {}), "Established", "True",
                                                         "InitialNamesAccepted", "the initial names have been accepted"),
                            APISERVER)
        elif accepted.get("status") == "True":
            # Names changed after establishment: accept the new ones too.
            an = (obj.get("status") or {}).get("acceptedNames") or {}
            if names.get("shortNames", []) != an.get("shortNames", []) or names.get("categories", []) != an.get("categories", []):
                def upd(o):
                    a = o["status"].setdefault("acceptedNames", {})
                    for f in ("shortNames", "categories"):
                        if names.get(f):
                            a[f] = names[f]
                        else:
                            a.pop(f, None)
                self._write(key, upd, APISERVER)

    def crd_cleanup(self, key, obj):
        spec = obj.get("spec") or {}
        group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
        st = self.state
        with st.store.lock:
            res = st.registry.storage_resource(group, plural)
            left = st.store.items(group, plural)
            for k, o in left:
                if not o["metadata"].get("deletionTimestamp") and res is not None:
                    api.delete_object(st, res, k, {"propagationPolicy": "Background"}, False)
            left = st.store.items(group, plural)
        if not left:
            fin = "customresourcecleanup.apiextensions.k8s.io"
            self._write(key, lambda o: o["metadata"].__setitem__(
                "finalizers", [f for f in o["metadata"].get("finalizers") or [] if f != fin]), APISERVER, "")

    # ------------------------------------------------------------------ garbage collection
    def gc(self, objs, now):
        st = self.state
        by_uid = {o["metadata"].get("uid"): (k, o) for k, o in objs}
        dependents = {}
        for k, o in objs:
            for ref in o["metadata"].get("ownerReferences") or []:
                dependents.setdefault(ref.get("uid"), []).append((k, o))
        for k, o in objs:
            md = o["metadata"]
            if not md.get("deletionTimestamp"):
                continue
            fins = md.get("finalizers") or []
            deps = dependents.get(md.get("uid"), [])
            if "orphan" in fins:
                for dk, _ in deps:
                    self._write(dk, lambda d, uid=md["uid"]: _drop_owner(d, uid), subresource="")
                self._write(k, lambda d: d["metadata"].__setitem__(
                    "finalizers", [f for f in d["metadata"].get("finalizers") or [] if f != "orphan"]), subresource="")
            elif "foregroundDeletion" in fins:
                live = [(dk, d) for dk, d in deps if dk in st.store.objects]
                for dk, d in live:
                    if not d["metadata"].get("deletionTimestamp"):
                        self._delete(dk, "Foreground")
                if not live:
                    self._write(k, lambda d: d["metadata"].__setitem__(
                        "finalizers", [f for f in d["metadata"].get("finalizers") or [] if f != "foregroundDeletion"]),
                        subresource="")
        # Dependents whose owners are all gone are deleted in the background.
        for k, o in objs:
            refs = o["metadata"].get("ownerReferences") or []
            if not refs or o["metadata"].get("deletionTimestamp"):
                continue
            if all(r.get("uid") not in by_uid for r in refs):
                uid = o["metadata"]["uid"]
                t0 = self.seen.setdefault(("orphaned", uid), now)
                if (now - t0) * 1000 >= st.settings.gc_delay_ms:
                    self.seen.pop(("orphaned", uid), None)
                    self._delete(k, "Background")

    def _delete(self, key, policy):
        st = self.state
        with st.store.lock:
            res = st.registry.storage_resource(key[0], key[1])
            if res is None or key not in st.store.objects:
                return
            try:
                api.delete_object(st, res, key, {"propagationPolicy": policy}, False)
            except api.E.StatusError:
                pass

    def namespace_cleanup(self, key, ns):
        st = self.state
        name = key[3]
        with st.store.lock:
            inside = [(k, o) for k, o in st.store.objects.items() if k[2] == name and k[:2] != api.NS_GR]
        for k, o in inside:
            if not o["metadata"].get("deletionTimestamp"):
                self._delete(k, "Background")
        with st.store.lock:
            left = [k for k in st.store.objects if k[2] == name and k[:2] != api.NS_GR]
        if not left and "kubernetes" in ((ns.get("spec") or {}).get("finalizers") or []):
            def fin(o):
                f = [x for x in (o.get("spec") or {}).get("finalizers") or [] if x != "kubernetes"]
                if f:
                    o["spec"]["finalizers"] = f
                else:
                    o.setdefault("spec", {}).pop("finalizers", None)
            self._write(key, fin, subresource="")

    # ------------------------------------------------------------------ rollouts
    def _progress(self, obj, now):
        uid = obj["metadata"]["uid"]
        pr = self.progress.get(uid)
        if pr is None:
            pr = self.progress[uid] = {"last_step": now, "gen": None, "hash": None, "updated": 0, "ready": 0,
                                       "old": 0, "last_progress": now, "created": True}
        return pr

    def _advance(self, pr, desired, fail, now, ordered=False):
        """One step: create (update) one pod at the new template, or make one ready."""
        progressed = False
        if pr["updated"] > desired:
            pr["updated"] = desired
            progressed = True
        if pr["ready"] > pr["updated"]:
            pr["ready"] = pr["updated"]
        if ordered and pr["ready"] < pr["updated"]:
            if not fail:
                pr["ready"] += 1
                progressed = True
        elif pr["updated"] < desired:
            pr["updated"] += 1
            progressed = True
        elif pr["ready"] < pr["updated"] and not fail:
            pr["ready"] += 1
            progressed = True
        # Old pods go as new ones become ready; scale-downs take old pods first.
        old = max(0, min(pr["old"], desired - pr["ready"]))
        if old != pr["old"]:
            pr["old"] = old
            progressed = True
        if progressed:
            pr["last_progress"] = now
        return progressed

    def _new_rollout(self, pr, obj, tpl_hash, now, old_ready):
        pr["hash"] = tpl_hash
        pr["old"] = old_ready
        pr["updated"] = 0
        pr["ready"] = 0
        pr["last_progress"] = now

    def deployment(self, key, obj, now):
        pr = self._progress(obj, now)
        spec = obj.get("spec") or {}
        md = obj["metadata"]
        desired = spec.get("replicas", 1)
        gen = md.get("generation")
        h = template_hash(spec.get("template"))
        fail = _ann(obj, FAIL)
        changed = False
        if pr["gen"] != gen:
            if pr["hash"] != h:
                first = pr["hash"] is None
                self._new_rollout(pr, obj, h, now, 0 if first else pr["ready"] + pr["old"])
                pr["new_rs"] = True
            pr["gen"] = gen
            pr["deadline_hit"] = False
            pr["last_step"] = now
            changed = True
        elif not spec.get("paused") and self._step_due(pr, now):
            changed = self._advance(pr, desired, fail, now)
        rs = "%s-%s" % (md["name"], h)
        replicas = pr["updated"] + pr["old"]
        available = pr["ready"] + pr["old"]
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            max_unavail = 0
        else:
            max_unavail = _scaled((strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"), desired, False)
            surge = _scaled((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), desired, True)
            if max_unavail == 0 and surge == 0:
                max_unavail = 1
        complete = pr["updated"] == desired and replicas == desired and available == desired
        pds = spec.get("progressDeadlineSeconds")
        deadline = pds is not None and not complete and not spec.get("paused") and \
            (now - pr["last_progress"]) >= pds * float(self.state.settings.time_scale)
        if deadline and not pr.get("deadline_hit"):
            pr["deadline_hit"] = True
            changed = True
        if not changed and (obj.get("status") or {}).get("observedGeneration") == gen:
            return
        new_rs = pr.pop("new_rs", False)

        def mutate(o):
            s = o.setdefault("status", {})
            s["observedGeneration"] = gen
            _put(s, "replicas", replicas)
            _put(s, "updatedReplicas", pr["updated"])
            _put(s, "readyReplicas", available)
            _put(s, "availableReplicas", available)
            _put(s, "unavailableReplicas", max(0, max(desired, replicas) - available))
            if available >= desired - max_unavail:
                set_condition(s, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", True)
            else:
                set_condition(s, "Available", "False", "MinimumReplicasUnavailable",
                              "Deployment does not have minimum availability.", True)
            if spec.get("paused"):
                set_condition(s, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", True)
            elif complete:
                set_condition(s, "Progressing", "True", "NewReplicaSetAvailable",
                              'ReplicaSet "%s" has successfully progressed.' % rs, True)
            elif pr.get("deadline_hit"):
                set_condition(s, "Progressing", "False", "ProgressDeadlineExceeded",
                              'ReplicaSet "%s" has timed out progressing.' % rs, True)
            elif new_rs:
                set_condition(s, "Progressing", "True", "NewReplicaSetCreated", 'Created new replica set "%s"' % rs, True)
            else:
                set_condition(s, "Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "%s" is progressing.' % rs, True)
            # Available first, Progressing second, as a real Deployment lists them.
            s["conditions"].sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        self._write(key, mutate)

    def statefulset(self, key, obj, now):
        pr = self._progress(obj, now)
        spec = obj.get("spec") or {}
        md = obj["metadata"]
        desired = spec.get("replicas", 1)
        gen = md.get("generation")
        h = template_hash(spec.get("template"))
        fail = _ann(obj, FAIL)
        changed = False
        if pr["gen"] != gen:
            if pr["hash"] != h:
                first = pr["hash"] is None
                pr["current_rev"] = "%s-%s" % (md["name"], h) if first else pr.get("update_rev")
                self._new_rollout(pr, obj, h, now, 0 if first else pr["ready"] + pr["old"])
                pr["update_rev"] = "%s-%s" % (md["name"], h)
            pr["gen"] = gen
            pr["last_step"] = now
            changed = True
        elif self._step_due(pr, now):
            ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
            changed = self._advance(pr, desired, fail, now, ordered)
        if pr["updated"] == desired and pr["ready"] == desired:
            if pr.get("current_rev") != pr["update_rev"]:
                pr["current_rev"] = pr["update_rev"]
                changed = True
        if not changed:
            return
        done = pr["current_rev"] == pr["update_rev"]

        def mutate(o):
            s = o.setdefault("status", {})
            s["observedGeneration"] = gen
            s["replicas"] = pr["updated"] + pr["old"]
            _put(s, "readyReplicas", pr["ready"] + pr["old"])
            _put(s, "availableReplicas", pr["ready"] + pr["old"])
            _put(s, "currentReplicas", pr["updated"] if done else pr["old"])
            _put(s, "updatedReplicas", pr["updated"])
            s["currentRevision"] = pr["current_rev"]
            s["updateRevision"] = pr["update_rev"]
            s["collisionCount"] = 0
        self._write(key, mutate)

    def daemonset(self, key, obj, now):
        pr = self._progress(obj, now)
        spec = obj.get("spec") or {}
        gen = obj["metadata"].get("generation")
        desired = int(self.state.settings.nodes)
        h = template_hash(spec.get("template"))
        changed = False
        if pr["gen"] != gen:
            if pr["hash"] != h:
                self._new_rollout(pr, obj, h, now, 0 if pr["hash"] is None else pr["ready"] + pr["old"])
            pr["gen"] = gen
            changed = True
        elif self._step_due(pr, now):
            changed = self._advance(pr, desired, _ann(obj, FAIL), now)
        if not changed:
            return

        def mutate(o):
            s = o.setdefault("status", {})
            s["observedGeneration"] = gen
            s["desiredNumberScheduled"] = desired
            s["currentNumberScheduled"] = pr["updated"] + pr["old"]
            s["numberMisscheduled"] = 0
            s["numberReady"] = pr["ready"] + pr["old"]
            _put(s, "updatedNumberScheduled", pr["updated"])
            _put(s, "numberAvailable", pr["ready"] + pr["old"])
            _put(s, "numberUnavailable", max(0, desired - pr["ready"] - pr["old"]))
        self._write(key, mutate)

    def replicaset(self, key, obj, now):
        pr = self._progress(obj, now)
        spec = obj.get("spec") or {}
        gen = obj["metadata"].get("generation")
        desired = spec.get("replicas", 1)
        changed = False
        if pr["gen"] != gen:
            pr["gen"] = gen
            changed = True
        elif self._step_due(pr, now):
            changed = self._advance(pr, desired, _ann(obj, FAIL), now)
        if not changed:
            return

        def mutate(o):
            s = o.setdefault("status", {})
            s["observedGeneration"] = gen
            s["replicas"] = pr["updated"]
            _put(s, "fullyLabeledReplicas", pr["updated"])
            _put(s, "readyReplicas", pr["ready"])
            _put(s, "availableReplicas", pr["ready"])
        self._write(key, mutate)

    def job(self, key, obj, now):
        pr = self._progress(obj, now)
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        if any(c.get("status") == "True" and c.get("type") in ("Complete", "Failed")
               for c in status.get("conditions") or []):
            return
        if spec.get("suspend"):
            if not condition(obj, "Suspended"):
                self._write(key, lambda o: set_condition(o.setdefault("status", {}), "Suspended", "True",
                                                         "JobSuspended", "Job suspended"))
            return
        completions = spec.get("completions") or 1
        parallel = spec.get("parallelism", 1)
        fail = _ann(obj, FAIL)
        if not status.get("startTime"):
            def start(o):
                s = o.setdefault("status", {})
                s["startTime"] = now_rfc3339()
                s["active"] = min(parallel, completions)
                s["ready"] = 0
                s["terminating"] = 0
                c = condition(o, "Suspended")
                if c:
                    set_condition(s, "Suspended", "False", "JobResumed", "Job resumed")
            pr["last_step"] = now
            self._write(key, start)
            return
        if not self._step_due(pr, now):
            return
        pr["done"] = pr.get("done", 0) + 1

        def mutate(o):
            s = o.setdefault("status", {})
            if fail:
                limit = spec.get("backoffLimit", 6)
                s["failed"] = pr["done"]
                if pr["done"] > limit or pr["done"] >= 3:
                    s["active"] = 0
                    set_condition(s, "FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                    set_condition(s, "Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                return
            s["succeeded"] = min(pr["done"], completions)
            s["active"] = max(0, min(parallel, completions - s["succeeded"]))
            s["ready"] = 0
            if s["succeeded"] >= completions:
                s["completionTime"] = now_rfc3339()
                set_condition(s, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods")
                set_condition(s, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")
        self._write(key, mutate)

    def pod(self, key, obj, now):
        pr = self._progress(obj, now)
        status = obj.get("status") or {}
        fail = _ann(obj, FAIL)
        if status.get("phase") in ("Running", "Succeeded", "Failed") and pr.get("done"):
            return
        if not condition(obj, "PodScheduled"):
            def sched(o):
                s = o.setdefault("status", {})
                s["phase"] = "Pending"
                set_condition(s, "PodScheduled", "True", None, None)
                for c in s["conditions"]:
                    c.pop("reason", None)
                    c.pop("message", None)
            pr["last_step"] = now
            self._write(key, sched)
            return
        if not self._step_due(pr, now):
            return
        pr["done"] = True
        containers = (obj.get("spec") or {}).get("containers") or []
        ip_last = 2 + (sum(obj["metadata"]["uid"].encode()) % 250)

        def run(o):
            s = o.setdefault("status", {})
            t = now_rfc3339()
            s["phase"] = "Running"
            s["hostIP"] = "10.0.0.2"
            s["podIP"] = "10.244.0.%d" % ip_last
            s["podIPs"] = [{"ip": s["podIP"]}]
            s["startTime"] = s.get("startTime", t)
            cs = []
            for c in containers:
                e = {"name": c.get("name"), "image": c.get("image"), "imageID": "", "restartCount": 1 if fail else 0,
                     "ready": not fail, "started": not fail}
                if fail:
                    e["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                              "message": "back-off 10s restarting failed container=%s" % c.get("name")}}
                    e["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t}}
                else:
                    e["state"] = {"running": {"startedAt": t}}
                cs.append(e)
            s["containerStatuses"] = cs
            names = "[%s]" % " ".join(c.get("name", "") for c in containers)
            for ctype in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
                ok = not fail or ctype in ("Initialized", "PodScheduled")
                if ok:
                    set_condition(s, ctype, "True", None, None)
                    for c in s["conditions"]:
                        if c["type"] == ctype:
                            c.pop("reason", None)
                            c.pop("message", None)
                else:
                    set_condition(s, ctype, "False", "ContainersNotReady", "containers with unready status: " + names)
        self._write(key, run)

    def pvc(self, key, obj, now):
        pr = self._progress(obj, now)
        status = obj.get("status") or {}
        if status.get("phase") == "Bound" or _ann(obj, FAIL):
            return
        if not self._step_due(pr, now):
            return
        spec = obj.get("spec") or {}
        if not spec.get("volumeName"):
            def bind(o):
                o["spec"]["volumeName"] = "pvc-" + o["metadata"]["uid"]
                ann = o["metadata"].setdefault("annotations", {})
                ann["pv.kubernetes.io/bind-completed"] = "yes"
                ann["pv.kubernetes.io/bound-by-controller"] = "yes"
            self._write(key, bind, subresource="")
            return

        def bound(o):
            s = o.setdefault("status", {})
            s["phase"] = "Bound"
            s["accessModes"] = copy.deepcopy(spec.get("accessModes") or [])
            s["capacity"] = {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "")}
        self._write(key, bound)

    def service(self, key, obj, now):
        spec = obj.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or _ann(obj, FAIL):
            return
        if ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            return
        pr = self._progress(obj, now)
        if not self._step_due(pr, now):
            return
        n = 10 + (sum(obj["metadata"]["uid"].encode()) % 200)
        self._write(key, lambda o: o.setdefault("status", {}).__setitem__(
            "loadBalancer", {"ingress": [{"ip": "192.0.2.%d" % n, "ipMode": "VIP"}]}))
