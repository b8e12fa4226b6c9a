"""Object storage, resource versions, watch history and selectors of the test API server.

Why: every write of a real API server gets a new, cluster-wide resourceVersion and produces a
watch event that clients resume from; list/watch filter with label and field selectors. This
module is that part of etcd + the watch cache, in memory.

Design: one `Store` guarded by one re-entrant lock (`cond`, a Condition over it, wakes watchers).
Objects are kept by (group, plural, namespace, name) as plain JSON dicts, exactly as they are
returned (storage version). The resourceVersion is a global integer counter, rendered as a
string; `history` keeps the last `window` events (type, key, object, previous object) so a
watch can resume from any RV newer than `floor` (the RV of the newest dropped event); older RVs
are "too old" (410). The Store knows nothing about API semantics; `api.py` does.
"""
import collections
import copy
import datetime
import re
import threading
import uuid

from apierrors import bad_request


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid():
    return str(uuid.uuid4())


class Event:
    __slots__ = ("rv", "type", "key", "obj", "prev")

    def __init__(self, rv, etype, key, obj, prev):
        self.rv = rv
        self.type = etype
        self.key = key
        self.obj = obj
        self.prev = prev


class Store:
    FIRST_RV = 1000  # resource versions start here so no client mistakes them for counts

    def __init__(self, window):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.objects = {}
        self.rv = self.FIRST_RV
        self.history = collections.deque()
        self.floor = self.FIRST_RV
        self.window = window
        self.epoch = 0  # bumped to make every open watch end (control endpoint)
        self.bookmark_now = 0  # bumped to make every bookmark watch send a bookmark now

    # -- resource versions and events
    def next_rv(self):
        self.rv += 1
        return self.rv

    def _record(self, rv, etype, key, obj, prev):
        self.history.append(Event(rv, etype, key, copy.deepcopy(obj), copy.deepcopy(prev) if prev else None))
        while len(self.history) > max(self.window, 0):
            self.floor = self.history.popleft().rv
        self.cond.notify_all()

    def compact(self):
        """Forget all history: every RV before now becomes too old to watch from."""
        with self.lock:
            self.history.clear()
            self.floor = self.rv
            self.cond.notify_all()

    def set_window(self, n):
        with self.lock:
            self.window = n
            while len(self.history) > max(self.window, 0):
                self.floor = self.history.popleft().rv

    def events_after(self, rv):
        """Events with rv > rv, or None when some of them were dropped (too old)."""
        if rv < self.floor:
            return None
        return [e for e in self.history if e.rv > rv]

    # -- objects
    def get(self, key):
        return self.objects.get(key)

    def put(self, key, obj):
        """Store obj (its metadata.resourceVersion is set here) and emit ADDED or MODIFIED."""
        prev = self.objects.get(key)
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.objects[key] = obj
        self._record(rv, "MODIFIED" if prev is not None else "ADDED", key, obj, prev)
        return obj

    def remove(self, key):
        prev = self.objects.pop(key, None)
        if prev is None:
            return None
        rv = self.next_rv()
        gone = copy.deepcopy(prev)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._record(rv, "DELETED", key, gone, prev)
        return gone

    def items(self, group=None, plural=None, namespace=None):
        out = []
        for key, obj in self.objects.items():
            g, p, ns, _ = key
            if group is not None and g != group:
                continue
            if plural is not None and p != plural:
                continue
            if namespace and ns != namespace:
                continue
            out.append((key, obj))
        out.sort(key=lambda kv: (kv[0][2], kv[0][3]))
        return out

    def clear(self):
        with self.lock:
            for key in list(self.objects):
                self.remove(key)


# ---------------------------------------------------------------------------- label selectors
_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(s):
    """Parse a labelSelector query value into [(key, op, values)]; 400 on bad syntax."""
    reqs = []
    if not s:
        return reqs
    for part in _split_top(s):
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % _KEY, part)
        if m:
            vals = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append((m.group(1), m.group(2), set(vals)))
            continue
        m = re.fullmatch(r"!\s*(%s)" % _KEY, part)
        if m:
            reqs.append((m.group(1), "!", set()))
            continue
        m = re.fullmatch(r"(%s)\s*(==|!=|=)\s*([-A-Za-z0-9_.]*)" % _KEY, part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, {m.group(3)}))
            continue
        m = re.fullmatch(r"(%s)" % _KEY, part)
        if m:
            reqs.append((m.group(1), "exists", set()))
            continue
        raise bad_request("unable to parse requirement: %r is not a valid label selector" % part)
    return reqs


def match_labels(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v in vals):
            return False
        if op == "!=" and has and v in vals:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
    return True


def selector_from_match(sel):
    """A LabelSelector object (matchLabels/matchExpressions) as requirements."""
    reqs = []
    for k, v in ((sel or {}).get("matchLabels") or {}).items():
        reqs.append((k, "=", {v}))
    for e in (sel or {}).get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(e.get("operator"))
        if op:
            reqs.append((e.get("key"), op, set(e.get("values") or [])))
    return reqs


# ---------------------------------------------------------------------------- field selectors
# Fields a real server accepts in fieldSelector, per kind (metadata.name/namespace everywhere).
FIELD_LABELS = {
    "Event": ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
              "regarding.kind", "regarding.name", "regarding.namespace", "regarding.uid",
              "reportingController"],
    "Pod": ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP", "status.nominatedNodeName"],
    "Secret": ["type"],
    "Namespace": ["status.phase"],
    "Job": ["status.successful"],
    "ReplicaSet": ["status.replicas"],
}


def parse_field_selector(s, kind):
    reqs = []
    if not s:
        return reqs
    allowed = ["metadata.name", "metadata.namespace"] + FIELD_LABELS.get(kind, [])
    for part in _split_top(s):
        m = re.fullmatch(r"([A-Za-z0-9.]+)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field, op, val = m.group(1), m.group(2), m.group(3)
        if field not in allowed:
            raise bad_request('field label not supported: %s' % field)
        reqs.append((field, "!=" if op == "!=" else "=", val))
    return reqs


def _field_value(obj, field):
    cur = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(reqs, obj):
    for field, op, val in reqs:
        v = _field_value(obj, field)
        if (op == "=") != (v == val):
            return False
    return True
