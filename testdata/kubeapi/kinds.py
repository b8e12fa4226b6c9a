"""Per-kind rules of the test API server: defaulting, validation, immutable fields, custom
resource schemas, and the server-side tables kubectl prints.

Why: what a client sends is not what a real server stores (defaults: Deployment replicas, port
protocols, a Service's clusterIP, Secret stringData folded into data), some writes are refused
(422 Invalid with causes: a missing selector, a selector not matching the template, a changed
immutable field), and custom resources are pruned, defaulted and validated by their CRD's
openAPIV3Schema. berth's drift detection and immutable-field recreation are only honest if the
server does these things, so this module does the commonly hit subset (see docs/kubeapi.md).

Design: `default(res, obj, state)` mutates obj in place; `validate(res, obj, old)` returns a
list of field causes (apierrors.field_error) for create (old None) or update; custom resources
go through `schema_apply` (prune, default, validate). `table(res, objs, include)` renders
meta.k8s.io/v1 Table objects with the columns a real server's printers use.
"""
import base64
import copy
import datetime
import json
import re

from apierrors import field_error as fe

POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"), "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUB = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _get(obj, *path):
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _ensure(obj, *path):
    cur = obj
    for p in path:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}
        cur = cur[p]
    return cur


# ---------------------------------------------------------------------------- defaulting
def _default_pod_spec(spec, job=False):
    if not isinstance(spec, dict):
        return
    for lst in ("initContainers", "containers"):
        for c in spec.get(lst) or []:
            if not isinstance(c, dict):
                continue
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
            img = c.get("image") or ""
            tag = img.rsplit("/", 1)[-1]
            latest = "@" not in img and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
    if not job:
        spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)


def default(res, obj, state):
    """Apply the server defaults for res to obj (in place). state gives allocators."""
    kind = res.kind
    md = obj.setdefault("metadata", {})
    if res.group == "" and kind == "Namespace":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md.get("name", "")
        _ensure(obj, "spec").setdefault("finalizers", ["kubernetes"])
    if res.crd or res.group not in ("", "apps", "batch"):
        if kind == "CustomResourceDefinition" and res.group == "apiextensions.k8s.io":
            spec = _ensure(obj, "spec")
            spec.setdefault("conversion", {"strategy": "None"})
            names = _ensure(spec, "names")
            if names.get("kind"):
                names.setdefault("listKind", names["kind"] + "List")
            if names.get("plural"):
                names.setdefault("singular", (names.get("kind") or "").lower())
        return
    tpath = POD_TEMPLATE_PATHS.get(kind)
    if tpath:
        _default_pod_spec(_get(obj, *tpath, "spec"), job=kind in ("Job", "CronJob"))
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if kind == "Pod":
        _default_pod_spec(spec)
        if spec is not None:
            spec.setdefault("enableServiceLinks", True)
    elif kind == "Deployment" and spec is not None:
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        st = spec.setdefault("strategy", {})
        st.setdefault("type", "RollingUpdate")
        if st["type"] == "RollingUpdate":
            ru = st.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")
    elif kind == "StatefulSet" and spec is not None:
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif kind == "DaemonSet" and spec is not None:
        spec.setdefault("revisionHistoryLimit", 10)
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = us.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
    elif kind == "ReplicaSet" and spec is not None:
        spec.setdefault("replicas", 1)
    elif kind == "Job" and spec is not None:
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
    elif kind == "CronJob" and spec is not None:
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    elif kind == "Service":
        spec = _ensure(obj, "spec")
        stype = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
                if stype in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                    p["nodePort"] = state.alloc_node_port()
        if stype != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = state.alloc_cluster_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            if spec["clusterIP"] != "None":
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if stype in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict) and sd:
            data = obj.setdefault("data", {})
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "PersistentVolumeClaim":
        spec = _ensure(obj, "spec")
        spec.setdefault("volumeMode", "Filesystem")


# ---------------------------------------------------------------------------- validation
def _name_causes(res, md, namespace):
    causes = []
    name = md.get("name")
    if not name:
        causes.append(fe("metadata.name", "Required", "name or generateName is required"))
        return causes
    label_names = res.kind in ("Namespace", "Service")
    if label_names:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            causes.append(fe("metadata.name", "Invalid", "a lowercase RFC 1123 label must consist of lower "
                             "case alphanumeric characters or '-', and must start and end with an alphanumeric "
                             "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')", name))
    elif res.kind not in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") and \
            (len(name) > 253 or not _DNS1123_SUB.match(name)):
        causes.append(fe("metadata.name", "Invalid", "a lowercase RFC 1123 subdomain must consist of lower "
                         "case alphanumeric characters, '-' or '.', and must start and end with an "
                         "alphanumeric character (e.g. 'example.com', regex used for validation is "
                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')", name))
    for k, v in (md.get("labels") or {}).items():
        key = k.split("/", 1)[-1]
        if not _QUALIFIED.match(key) or len(key) > 63:
            causes.append(fe("metadata.labels", "Invalid", "name part must consist of alphanumeric "
                             "characters, '-', '_' or '.', and must start and end with an alphanumeric character", k))
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(fe("metadata.labels", "Invalid", "a valid label must be an empty string or consist "
                             "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                             "alphanumeric character", v))
    return causes


def _containers_causes(spec, prefix):
    causes = []
    cs = spec.get("containers") if isinstance(spec, dict) else None
    if not cs:
        causes.append(fe(prefix + ".containers", "Required", ""))
        return causes
    for i, c in enumerate(cs):
        if not isinstance(c, dict):
            continue
        if not c.get("name"):
            causes.append(fe("%s.containers[%d].name" % (prefix, i), "Required", ""))
        if not c.get("image"):
            causes.append(fe("%s.containers[%d].image" % (prefix, i), "Required", ""))
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 0 < port < 65536:
                causes.append(fe("%s.containers[%d].ports[%d].containerPort" % (prefix, i, j), "Invalid",
                                 "must be between 1 and 65535, inclusive", port))
    return causes


def _selector_matches(sel, labels):
    from storage import match_labels, selector_from_match
    return match_labels(selector_from_match(sel), labels or {})


def validate(res, obj, old):
    """Field causes for obj (old is the stored object on update, None on create)."""
    md = obj.get("metadata") or {}
    causes = _name_causes(res, md, md.get("namespace"))
    kind = res.kind
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if res.crd:
        return causes
    if kind in WORKLOADS and res.group == "apps":
        sel = spec.get("selector")
        if not sel:
            causes.append(fe("spec.selector", "Required", ""))
        else:
            if not (sel.get("matchLabels") or sel.get("matchExpressions")):
                causes.append(fe("spec.selector", "Invalid", "empty selector is invalid for deployment", sel))
            tl = _get(spec, "template", "metadata", "labels")
            if not _selector_matches(sel, tl):
                causes.append(fe("spec.template.metadata.labels", "Invalid",
                                 "`selector` does not match template `labels`", tl or {}))
        causes += _containers_causes(_get(spec, "template", "spec"), "spec.template.spec")
        if kind != "DaemonSet":
            r = spec.get("replicas")
            if r is not None and (not isinstance(r, int) or r < 0):
                causes.append(fe("spec.replicas", "Invalid", "must be greater than or equal to 0", r))
    elif kind == "Job" and res.group == "batch":
        tspec = _get(spec, "template", "spec")
        causes += _containers_causes(tspec, "spec.template.spec")
        rp = (tspec or {}).get("restartPolicy")
        if rp not in ("OnFailure", "Never"):
            if rp is None:
                causes.append(fe("spec.template.spec.restartPolicy", "Required", 'valid values: "OnFailure", "Never"'))
            else:
                causes.append(fe("spec.template.spec.restartPolicy", "NotSupported",
                                 'supported values: "OnFailure", "Never"', rp))
    elif kind == "Pod" and res.group == "":
        causes += _containers_causes(spec, "spec")
    elif kind == "Service" and res.group == "":
        if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None" and not spec.get("ports"):
            causes.append(fe("spec.ports", "Required", ""))
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("port") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 0 < port < 65536:
                causes.append(fe("spec.ports[%d].port" % i, "Invalid", "must be between 1 and 65535, inclusive", port))
        if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(fe("spec.type", "NotSupported", 'supported values: "ClusterIP", "ExternalName", '
                             '"LoadBalancer", "NodePort"', spec.get("type")))
    elif kind == "PersistentVolumeClaim":
        if not spec.get("accessModes"):
            causes.append(fe("spec.accessModes", "Required", "at least 1 access mode is required"))
        if not _get(spec, "resources", "requests", "storage"):
            causes.append(fe("spec.resources[storage]", "Required", ""))
    elif kind == "CustomResourceDefinition":
        causes += _crd_causes(obj)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        rr = obj.get("roleRef") or {}
        if not rr.get("name"):
            causes.append(fe("roleRef.name", "Required", ""))
        if not rr.get("kind"):
            causes.append(fe("roleRef.kind", "NotSupported", 'supported values: "Role", "ClusterRole"', ""))
    if old is not None:
        causes += _immutable_causes(res, obj, old)
    return causes


def _crd_causes(obj):
    causes = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    if not group:
        causes.append(fe("spec.group", "Required", ""))
    elif "." not in group:
        causes.append(fe("spec.group", "Invalid", "should be a domain with at least one dot", group))
    if not names.get("plural"):
        causes.append(fe("spec.names.plural", "Required", ""))
    if not names.get("kind"):
        causes.append(fe("spec.names.kind", "Required", ""))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(fe("spec.scope", "NotSupported", 'supported values: "Cluster", "Namespaced"', spec.get("scope")))
    want = "%s.%s" % (names.get("plural"), group)
    if names.get("plural") and group and obj["metadata"].get("name") != want:
        causes.append(fe("metadata.name", "Invalid", 'must be spec.names.plural+"."+spec.group',
                         obj["metadata"].get("name")))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(fe("spec.versions", "Invalid", "must have exactly one version marked as storage version", []))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(fe("spec.versions", "Invalid", "must have exactly one version marked as storage version",
                         versions))
    for i, v in enumerate(versions):
        if not (v.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(fe("spec.versions[%d].schema.openAPIV3Schema" % i, "Required",
                             "schemas are required"))
    return causes


def _immutable(causes, field, new, old, detail="field is immutable"):
    if new != old:
        causes.append(fe(field, "Invalid", detail, new))


def _immutable_causes(res, obj, old):
    causes = []
    kind = res.kind
    spec, ospec = obj.get("spec") or {}, old.get("spec") or {}
    if kind in WORKLOADS and res.group == "apps":
        _immutable(causes, "spec.selector", spec.get("selector"), ospec.get("selector"))
    if kind == "StatefulSet" and res.group == "apps":
        allowed = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                   "minReadySeconds"}
        a = {k: v for k, v in spec.items() if k not in allowed}
        b = {k: v for k, v in ospec.items() if k not in allowed}
        if a != b:
            causes.append(fe("spec", "Forbidden", "updates to statefulset spec for fields other than 'replicas', "
                             "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                             "'minReadySeconds' are forbidden"))
    elif kind == "Job" and res.group == "batch":
        _immutable(causes, "spec.template", spec.get("template"), ospec.get("template"))
        _immutable(causes, "spec.completions", spec.get("completions"), ospec.get("completions"))
        _immutable(causes, "spec.selector", spec.get("selector"), ospec.get("selector"))
    elif kind == "Service" and res.group == "":
        if ospec.get("clusterIP") and spec.get("type") != "ExternalName":
            _immutable(causes, "spec.clusterIP", spec.get("clusterIP"), ospec.get("clusterIP"))
    elif kind == "PersistentVolumeClaim":
        a = dict(spec)
        b = dict(ospec)
        for d in (a, b):
            d.pop("volumeName", None)
            if isinstance(d.get("resources"), dict):
                d["resources"] = {k: v for k, v in d["resources"].items() if k != "requests"}
        if a != b:
            causes.append(fe("spec", "Forbidden", "spec is immutable after creation except resources.requests "
                             "and volumeAttributesClassName for bound claims"))
    elif kind in ("ConfigMap", "Secret") and res.group == "":
        if old.get("immutable"):
            for f in ("data", "binaryData", "stringData"):
                if obj.get(f) != old.get(f) and not (f == "stringData"):
                    causes.append(fe(f, "Forbidden", "field is immutable when `immutable` is set"))
            if not obj.get("immutable"):
                causes.append(fe("immutable", "Forbidden", "field is immutable when `immutable` is set"))
        if kind == "Secret":
            _immutable(causes, "type", obj.get("type"), old.get("type"))
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        if obj.get("roleRef") != old.get("roleRef"):
            causes.append(fe("roleRef", "Invalid", "cannot change roleRef", obj.get("roleRef")))
    elif kind == "CustomResourceDefinition":
        _immutable(causes, "spec.group", spec.get("group"), ospec.get("group"))
    return causes


# ---------------------------------------------------------------------------- CR schemas
def schema_apply(schema, obj, unknown=None, full=True):
    """Prune unknown fields, apply defaults and validate a custom resource against its
    openAPIV3Schema (full=False: only prune, for an apply configuration). Unknown field paths
    are appended to unknown. Returns the causes (obj is changed in place)."""
    causes = []
    if unknown is None:
        unknown = []
    if not isinstance(schema, dict) or not schema:
        return causes
    props = schema.get("properties") or {}
    for k in list(obj):
        if k in ("apiVersion", "kind", "metadata"):
            continue
        if k not in props and not schema.get("x-kubernetes-preserve-unknown-fields"):
            unknown.append(k)
            del obj[k]
            continue
        if k in props:
            obj[k] = _walk_schema(props[k], obj[k], k, causes, unknown, full)
    if full:
        for k, sub in props.items():
            if k not in obj and isinstance(sub, dict) and "default" in sub and k != "metadata":
                obj[k] = copy.deepcopy(sub["default"])
        for r in schema.get("required") or []:
            if r not in obj and r not in ("apiVersion", "kind", "metadata"):
                causes.append(fe(r, "Required", ""))
    return causes


_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def _type_ok(t, v):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    py = _TYPES.get(t)
    return py is None or isinstance(v, py)


def _walk_schema(s, v, path, causes, unknown, full):
    if not isinstance(s, dict):
        return v
    if full:
        _check_value(s, v, path, causes)
    if isinstance(v, list):
        items = s.get("items")
        return [_walk_schema(items, x, "%s[%d]" % (path, i), causes, unknown, full) for i, x in enumerate(v)]
    if isinstance(v, dict):
        if s.get("x-kubernetes-embedded-resource") and s.get("x-kubernetes-preserve-unknown-fields"):
            return v
        props = s.get("properties")
        addl = s.get("additionalProperties")
        out = {}
        for k, x in v.items():
            if props and k in props:
                out[k] = _walk_schema(props[k], x, path + "." + k, causes, unknown, full)
            elif isinstance(addl, dict):
                out[k] = _walk_schema(addl, x, path + "." + k, causes, unknown, full)
            elif addl is True or s.get("x-kubernetes-preserve-unknown-fields"):
                out[k] = x
            else:
                unknown.append(path + "." + k)
        if full:
            for k, sub in (props or {}).items():
                if k not in out and isinstance(sub, dict) and "default" in sub:
                    out[k] = copy.deepcopy(sub["default"])
            for r in s.get("required") or []:
                if r not in out:
                    causes.append(fe(path + "." + r, "Required", ""))
            if "maxProperties" in s and len(out) > s["maxProperties"]:
                causes.append(fe(path, "Invalid", "must have at most %d properties" % s["maxProperties"], v))
        return out
    return v


def _check_value(s, v, path, causes):
    if s.get("x-kubernetes-int-or-string"):
        if not (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))):
            causes.append(fe(path, "Invalid", "%s in body must be of type int-or-string: %s"
                             % (path, json.dumps(_jtype(v))), _jtype(v)))
        return
    t = s.get("type")
    if v is None:
        if t and not s.get("nullable"):
            causes.append(fe(path, "Invalid", '%s in body must be of type %s: "null"' % (path, t), "null"))
        return
    if t and not _type_ok(t, v):
        causes.append(fe(path, "Invalid", '%s in body must be of type %s: "%s"' % (path, t, _jtype(v)), _jtype(v)))
        return
    if "enum" in s and v not in s["enum"]:
        causes.append(fe(path, "NotSupported", "supported values: " + ", ".join(json.dumps(e) for e in s["enum"]), v))
    if isinstance(v, str):
        if "pattern" in s:
            try:
                if not re.search(s["pattern"], v):
                    causes.append(fe(path, "Invalid", "%s in body should match '%s'" % (path, s["pattern"]), v))
            except re.error:
                pass
        if "maxLength" in s and len(v) > s["maxLength"]:
            causes.append(fe(path, "Invalid", "%s in body should be at most %d chars long" % (path, s["maxLength"]), v))
        if "minLength" in s and len(v) < s["minLength"]:
            causes.append(fe(path, "Invalid", "%s in body should be at least %d chars long" % (path, s["minLength"]), v))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            causes.append(fe(path, "Invalid", "%s in body should be greater than or equal to %s" % (path, s["minimum"]), v))
        if "maximum" in s and v > s["maximum"]:
            causes.append(fe(path, "Invalid", "%s in body should be less than or equal to %s" % (path, s["maximum"]), v))
    if isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            causes.append(fe(path, "Invalid", "must have at most %d items" % s["maxItems"], v))
        if "minItems" in s and len(v) < s["minItems"]:
            causes.append(fe(path, "Invalid", "should have at least %d items" % s["minItems"], v))


def _jtype(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


# ---------------------------------------------------------------------------- tables
def _parse_ts(ts):
    try:
        return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def human_duration(seconds):
    s = int(max(seconds, 0))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = m // 60
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    d = h // 24
    return "%dd" % d if d < 730 else "%dy" % (d // 365)


def _age(obj):
    t = _parse_ts(_get(obj, "metadata", "creationTimestamp"))
    if not t:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _col(name, typ="string", fmt="", desc="", priority=0):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


def _n(v):
    return v if isinstance(v, int) else 0


def _ports(spec):
    out = []
    for p in spec.get("ports") or []:
        s = str(p.get("port"))
        if p.get("nodePort"):
            s += ":%s" % p["nodePort"]
        out.append("%s/%s" % (s, p.get("protocol", "TCP")))
    return ",".join(out) or "<none>"


def _builtin_columns(kind):
    N = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
    A = _col("Age")
    cols = {
        "Namespace": [N, _col("Status"), A],
        "ConfigMap": [N, _col("Data", "integer"), A],
        "Secret": [N, _col("Type"), _col("Data", "integer"), A],
        "Service": [N, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), A,
                    _col("Selector", priority=1)],
        "ServiceAccount": [N, A],
        "Pod": [N, _col("Ready"), _col("Status"), _col("Restarts", "string"), A],
        "PersistentVolumeClaim": [N, _col("Status"), _col("Volume"), _col("Capacity"), _col("Access Modes"),
                                  _col("StorageClass"), A],
        "Deployment": [N, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), A],
        "StatefulSet": [N, _col("Ready"), A],
        "DaemonSet": [N, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                      _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"), A],
        "ReplicaSet": [N, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), A],
        "Job": [N, _col("Status"), _col("Completions"), _col("Duration"), A],
        "CustomResourceDefinition": [N, _col("Created At", "date")],
        "Lease": [N, _col("Holder"), A],
    }
    return cols.get(kind, [N, A])


def _builtin_cells(kind, o):
    md, spec, st = o.get("metadata") or {}, o.get("spec") or {}, o.get("status") or {}
    name = md.get("name", "")
    if kind == "Namespace":
        return [name, st.get("phase", ""), _age(o)]
    if kind == "ConfigMap":
        return [name, len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)]
    if kind == "Secret":
        return [name, o.get("type", ""), len(o.get("data") or {}), _age(o)]
    if kind == "Service":
        ext = ",".join(i.get("ip") or i.get("hostname", "") for i in _get(st, "loadBalancer", "ingress") or [])
        if not ext:
            ext = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
        sel = ",".join("%s=%s" % kv for kv in sorted((spec.get("selector") or {}).items())) or "<none>"
        return [name, spec.get("type", ""), spec.get("clusterIP", "<none>"), ext, _ports(spec), _age(o), sel]
    if kind == "Pod":
        cs = st.get("containerStatuses") or []
        ready = sum(1 for c in cs if c.get("ready"))
        total = len(spec.get("containers") or [])
        reason = st.get("phase", "Pending")
        for c in cs:
            w = (c.get("state") or {}).get("waiting")
            if w and w.get("reason"):
                reason = w["reason"]
        if md.get("deletionTimestamp"):
            reason = "Terminating"
        restarts = sum(_n(c.get("restartCount")) for c in cs)
        return [name, "%d/%d" % (ready, total), reason, str(restarts), _age(o)]
    if kind == "PersistentVolumeClaim":
        cap = (st.get("capacity") or {}).get("storage", "")
        modes = ",".join({"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                          "ReadWriteOncePod": "RWOP"}.get(m, m) for m in st.get("accessModes") or [])
        return [name, st.get("phase", ""), spec.get("volumeName", ""), cap, modes,
                spec.get("storageClassName", "<unset>"), _age(o)]
    if kind == "Deployment":
        return [name, "%d/%d" % (_n(st.get("readyReplicas")), _n(spec.get("replicas"))),
                _n(st.get("updatedReplicas")), _n(st.get("availableReplicas")), _age(o)]
    if kind == "StatefulSet":
        return [name, "%d/%d" % (_n(st.get("readyReplicas")), _n(spec.get("replicas"))), _age(o)]
    if kind == "DaemonSet":
        sel = ",".join("%s=%s" % kv for kv in sorted((_get(spec, "template", "spec", "nodeSelector") or {}).items()))
        return [name, _n(st.get("desiredNumberScheduled")), _n(st.get("currentNumberScheduled")),
                _n(st.get("numberReady")), _n(st.get("updatedNumberScheduled")), _n(st.get("numberAvailable")),
                sel or "<none>", _age(o)]
    if kind == "ReplicaSet":
        return [name, _n(spec.get("replicas")), _n(st.get("replicas")), _n(st.get("readyReplicas")), _age(o)]
    if kind == "Job":
        status = "Running"
        for c in st.get("conditions") or []:
            if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
                status = c["type"]
        dur = ""
        a, b = _parse_ts(st.get("startTime")), _parse_ts(st.get("completionTime"))
        if a:
            b = b or datetime.datetime.now(datetime.timezone.utc)
            dur = human_duration((b - a).total_seconds())
        return [name, status, "%d/%d" % (_n(st.get("succeeded")), _n(spec.get("completions") or 1)), dur, _age(o)]
    if kind == "CustomResourceDefinition":
        return [name, md.get("creationTimestamp", "")]
    if kind == "Lease":
        return [name, spec.get("holderIdentity", ""), _age(o)]
    return [name, _age(o)]


def _jsonpath(obj, expr):
    """The small JSONPath subset additionalPrinterColumns use: .a.b, .a[0], .a[?(@.k=="v")].b"""
    cur = [obj]
    for part in re.findall(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_]+)==[\"']([^\"']*)[\"']\)\]", expr):
        field, idx, fk, fv = part
        nxt = []
        for c in cur:
            if field:
                if isinstance(c, dict) and field in c:
                    nxt.append(c[field])
            elif idx:
                if isinstance(c, list) and int(idx) < len(c):
                    nxt.append(c[int(idx)])
            else:
                if isinstance(c, list):
                    nxt.extend(x for x in c if isinstance(x, dict) and str(x.get(fk)) == fv)
        cur = nxt
    if not cur:
        return None
    v = cur[0]
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return v


def table(res, objs, include, api_version):
    if res.crd:
        cols = [_col("Name", fmt="name", desc="Name must be unique within a namespace.")]
        specs = list(res.columns) or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        for c in specs:
            cols.append(_col(c.get("name", ""), c.get("type", "string"), c.get("format", ""),
                             c.get("description", ""), c.get("priority", 0)))
        if res.columns:
            cols.append(_col("Age", "date"))
            specs = specs + [{"jsonPath": ".metadata.creationTimestamp"}]
        rows = []
        for o in objs:
            cells = [o["metadata"].get("name", "")]
            for c in specs:
                v = _jsonpath(o, c.get("jsonPath", ""))
                if c.get("type", "date" if c.get("jsonPath") == ".metadata.creationTimestamp" else "") == "date" \
                        and isinstance(v, str) and _parse_ts(v):
                    v = human_duration((datetime.datetime.now(datetime.timezone.utc) - _parse_ts(v)).total_seconds())
                cells.append(v)
            rows.append(_row(o, cells, include))
    else:
        cols = _builtin_columns(res.kind)
        rows = [_row(o, _builtin_cells(res.kind, o), include) for o in objs]
    return {"kind": "Table", "apiVersion": api_version, "metadata": {}, "columnDefinitions": cols, "rows": rows}


def _row(o, cells, include):
    r = {"cells": cells}
    if include == "Object":
        r["object"] = o
    elif include != "None":
        r["object"] = partial(o)
    return r


def partial(o):
    md = copy.deepcopy(o.get("metadata") or {})
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}
