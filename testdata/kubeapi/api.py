"""The REST semantics of the test API server: get, list, create, update, patch (server-side
apply, merge, strategic merge, JSON patch), delete and deletecollection, the status subresource,
dry-run, resourceVersion/generation rules and deletion with finalizers.

Why: berth's Kubernetes target and controller mode speak the Kubernetes REST protocol; this is
the behaviour they are tested against (../../docs/kubeapi.md lists what is and is not modelled).

Design: `State` owns the store, the registry and the settings. `handle(state, req)` routes one
request (already authenticated) and returns (code, body) or a `WatchSpec` the HTTP layer streams.
Every write goes through `_commit`, which applies the generation rule (bumped when anything but
metadata, and status for kinds with a status subresource, changes), skips no-op writes (no new
resourceVersion), honours dry-run (nothing stored; a dry-run create has an empty
resourceVersion), and removes an object whose deletion was pending once its finalizers are gone.
Objects are stored in their storage version; `view` renders them in the requested version.
All of it runs under the store lock, so requests are serialised (fine for tests).
"""
import base64
import copy
import json
import random
import threading
import urllib.parse

import apierrors as E
import apply as A
import kinds as K
from discovery import Registry, crd_is_established
from storage import (Store, match_fields, match_labels, new_uid, now_rfc3339, parse_field_selector,
                     parse_label_selector)

try:  # PyYAML is optional: kubectl and berth send apply bodies as JSON (which is YAML).
    import yaml as _yaml
except ImportError:  # pragma: no cover
    _yaml = None

CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_GR = ("", "namespaces")
CONTROLLER_MANAGER = "kube-controller-manager"


class Settings:
    def __init__(self):
        self.crd_establish_delay_ms = 0
        self.rollout_step_ms = 100
        self.time_scale = 1.0
        self.watch_window = 1000
        self.bookmark_interval_ms = 5000
        self.gc = True
        self.gc_delay_ms = 0
        self.controllers = True
        self.nodes = 1
        self.latency_ms = 0
        self.watch_expired_mode = "event"  # or "http": how a too-old watch RV is reported

    def update(self, d):
        names = {"crdEstablishDelayMs": "crd_establish_delay_ms", "rolloutStepMs": "rollout_step_ms",
                 "timeScale": "time_scale", "watchWindow": "watch_window",
                 "bookmarkIntervalMs": "bookmark_interval_ms", "gc": "gc", "gcDelayMs": "gc_delay_ms",
                 "controllers": "controllers", "nodes": "nodes", "latencyMs": "latency_ms",
                 "watchExpiredMode": "watch_expired_mode"}
        for k, v in d.items():
            if k not in names:
                raise E.bad_request("unknown setting %r (known: %s)" % (k, ", ".join(sorted(names))))
            setattr(self, names[k], v)

    def to_json(self):
        return {"crdEstablishDelayMs": self.crd_establish_delay_ms, "rolloutStepMs": self.rollout_step_ms,
                "timeScale": self.time_scale, "watchWindow": self.watch_window,
                "bookmarkIntervalMs": self.bookmark_interval_ms, "gc": self.gc, "gcDelayMs": self.gc_delay_ms,
                "controllers": self.controllers, "nodes": self.nodes, "latencyMs": self.latency_ms,
                "watchExpiredMode": self.watch_expired_mode}


class State:
    def __init__(self, settings):
        self.settings = settings
        self.store = Store(settings.watch_window)
        self.registry = Registry(self._crds)
        self._next_ip = 10
        self._next_port = 30000
        self.bootstrap()

    def _crds(self):
        return [o for k, o in self.store.objects.items() if k[:2] == CRD_GR]

    def alloc_cluster_ip(self):
        self._next_ip += 1
        return "10.96.%d.%d" % (self._next_ip // 250, self._next_ip % 250 + 1)

    def alloc_node_port(self):
        self._next_port += 1
        return self._next_port

    def bootstrap(self):
        """The objects every cluster starts with."""
        with self.store.lock:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.internal_create("", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}}, "kube-apiserver")
            self.internal_create("", "services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}},
                "kube-apiserver")

    def reset(self):
        with self.store.lock:
            self.store.clear()
            self.bootstrap()

    def internal_create(self, group, plural, obj, manager):
        res = self.registry.storage_resource(group, plural)
        return _create(self, res, obj["metadata"].get("namespace", ""), obj, False, manager)


class Request:
    def __init__(self, method, path, query, body, ctype, accept, user_agent):
        self.warnings = []          # sent back as "Warning: 299 - ..." headers
        self.method = method
        self.path = path
        self.query = query          # {name: last value}
        self.body = body
        self.ctype = ctype
        self.accept = accept or ""
        self.user_agent = user_agent or ""


class WatchSpec:
    def __init__(self, res, ns, labels, fields, rv, bookmarks, timeout, render, initial_events):
        self.res = res
        self.ns = ns
        self.labels = labels
        self.fields = fields
        self.rv = rv
        self.bookmarks = bookmarks
        self.timeout = timeout
        self.render = render
        self.initial_events = initial_events


# ---------------------------------------------------------------------------- helpers
def view(res, obj):
    o = copy.deepcopy(obj)
    o["apiVersion"] = res.api_version
    o["kind"] = res.kind
    return o


def _key(res, ns, name):
    return (res.group, res.plural, ns if res.namespaced else "", name)


def _json_body(req):
    if not req.body:
        raise E.bad_request("the request body is empty")
    try:
        return json.loads(req.body)
    except ValueError:
        pass
    if req.ctype == "application/apply-patch+yaml" and _yaml is not None:
        try:
            return _yaml.safe_load(req.body)
        except _yaml.YAMLError as e:
            raise E.bad_request("error decoding YAML: %s" % e)
    raise E.bad_request("couldn't get version/kind; json parse error: invalid JSON in the request body")


def _dry_run(req):
    v = req.query.get("dryRun")
    if v is None or v == "":
        return False
    if v != "All":
        raise E.bad_request('dryRun: Unsupported value: "%s": supported values: "All"' % v)
    return True


def _manager(req, required=False):
    m = req.query.get("fieldManager")
    if m:
        if len(m) > 128:
            raise E.bad_request("fieldManager: Too long: must have at most 128 bytes")
        return m
    if required:
        raise E.bad_request("fieldManager must be set for apply requests")
    return (req.user_agent.split("/")[0] or "unknown")[:128]


def _render_mode(req):
    a = req.accept
    if "as=Table" in a:
        return ("table", "meta.k8s.io/v1beta1" if "v=v1beta1" in a and "v=v1;" not in a else "meta.k8s.io/v1")
    if "as=PartialObjectMetadata" in a:
        return ("partial", "meta.k8s.io/v1")
    return ("json", None)


def _check_kind(res, obj):
    if not isinstance(obj, dict):
        raise E.bad_request("the body of the request must be a JSON object")
    kind, av = obj.get("kind"), obj.get("apiVersion")
    if not kind:
        raise E.bad_request("Object 'Kind' is missing in '%s'" % json.dumps(obj)[:200])
    if not av:
        raise E.bad_request("Object 'apiVersion' is missing in '%s'" % json.dumps(obj)[:200])
    if av != res.api_version:
        raise E.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                            % (av, res.api_version))
    if kind != res.kind:
        raise E.bad_request("the kind in the data (%s) does not match the expected kind (%s)" % (kind, res.kind))
    if not isinstance(obj.get("metadata", {}), dict):
        raise E.bad_request("metadata must be an object")


def _check_namespace(state, res, ns, name, creating=True):
    if not res.namespaced:
        return
    nso = state.store.get(("", "namespaces", "", ns))
    if nso is None:
        raise E.namespace_not_found(ns)
    if creating and nso["metadata"].get("deletionTimestamp"):
        raise E.forbidden(res, name, '%s "%s" is forbidden: unable to create new content in namespace %s because '
                          "it is being terminated" % (E.qualified_resource(res), name, ns),
                          [{"reason": "NamespaceTerminating", "message": "namespace %s is being terminated" % ns,
                            "field": "metadata.namespace"}])


def _crd_terminating(state, res):
    if not res.crd:
        return False
    crd = state.store.get(("apiextensions.k8s.io", "customresourcedefinitions", "", res.crd))
    return bool(crd and crd["metadata"].get("deletionTimestamp"))


_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _generate_name(prefix):
    return prefix + "".join(random.choice(_GEN_ALPHABET) for _ in range(5))


def _content(res, obj, subresource=""):
    o = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    if res.status:
        o.pop("status", None)
    return o


def finalized(res, obj):
    md = obj["metadata"]
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if (res.group, res.plural) == NS_GR and (obj.get("spec") or {}).get("finalizers"):
        return False
    return True


_CURRENT = threading.local()


def _warn(msg):
    req = getattr(_CURRENT, "req", None)
    if req is not None and msg not in req.warnings:
        req.warnings.append(msg)


def _unknown_fields(unknown):
    """Strict field validation fails the request; the default (Warn) answers with warnings."""
    if not unknown:
        return
    req = getattr(_CURRENT, "req", None)
    mode = req.query.get("fieldValidation", "Warn") if req is not None else "Warn"
    if mode == "Strict":
        raise E.bad_request("strict decoding error: " + ", ".join('unknown field "%s"' % u for u in unknown))
    if mode != "Ignore":
        for u in unknown:
            _warn('unknown field "%s"' % u)


def _schema_of(state, res):
    if res.schema is not None:
        return res.schema
    sres = state.registry.storage_resource(res.group, res.plural)
    return sres.schema if sres else None


def _validate(state, res, obj, old):
    causes = []
    if res.crd:
        unknown = []
        causes += K.schema_apply(_schema_of(state, res), obj, unknown)
        _unknown_fields(unknown)
    causes += K.validate(res, obj, old)
    if causes:
        raise E.invalid(res, obj["metadata"].get("name", ""), causes)


def _store_form(state, res, obj):
    """The object as stored: in the storage version of its resource."""
    sres = state.registry.storage_resource(res.group, res.plural) or res
    obj["apiVersion"] = sres.api_version
    obj["kind"] = res.kind
    return obj


# ---------------------------------------------------------------------------- routing
def parse_path(path):
    """(group, version, rest) for /api/v1/... and /apis/G/V/..., else None."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def handle(state, req):
    _CURRENT.req = req
    try:
        return _handle(state, req)
    finally:
        _CURRENT.req = None


def _handle(state, req):
    fv = req.query.get("fieldValidation")
    if fv not in (None, "", "Ignore", "Warn", "Strict"):
        raise E.bad_request('fieldValidation: Unsupported value: "%s": supported values: "Ignore", "Strict", '
                            '"Warn"' % fv)
    parsed = parse_path(req.path)
    if parsed is None:
        raise E.not_found_path(req.path)
    group, version, rest = parsed
    with state.store.lock:
        if not rest:
            if req.method != "GET":
                raise E.method_not_allowed()
            doc = state.registry.resource_list_doc(group, version)
            if doc is None:
                raise E.not_found_path(req.path)
            return 200, doc
        ns, plural, name, sub = "", None, "", ""
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
            plural = rest[0]
            if len(rest) > 1:
                name = rest[1]
            if len(rest) > 2:
                sub = rest[2]
            if len(rest) > 3:
                raise E.not_found_path(req.path)
        else:
            plural = rest[0]
            if len(rest) > 1:
                name = rest[1]
            if len(rest) > 2:
                sub = rest[2]
            if len(rest) > 3:
                raise E.not_found_path(req.path)
        res = state.registry.lookup(group, version, plural)
        if res is None or (ns and not res.namespaced):
            raise E.not_found_path(req.path)
        if res.namespaced and name and not ns:
            raise E.not_found_path(req.path)
        if sub:
            ok = (sub == "status" and res.status) or (sub == "finalize" and (res.group, res.plural) == NS_GR) or \
                (sub == "scale" and res.scale)
            if not ok:
                raise E.not_found_path(req.path)
        m = req.method
        if sub == "scale":
            return _scale(state, req, res, ns, name)
        if not name:
            if m == "GET":
                if req.query.get("watch") in ("1", "true"):
                    return _watch_spec(state, req, res, ns, "")
                return _list(state, req, res, ns)
            if m == "POST":
                body = _json_body(req)
                return _create(state, res, ns, body, _dry_run(req), _manager(req))
            if m == "DELETE":
                return _delete_collection(state, req, res, ns)
            raise E.method_not_allowed()
        if m == "GET":
            if req.query.get("watch") in ("1", "true") and not sub:
                return _watch_spec(state, req, res, ns, name)
            obj = state.store.get(_key(res, ns, name))
            if obj is None:
                raise E.not_found(res, name)
            return 200, _render_one(req, res, view(res, obj))
        if m == "PUT":
            return _update(state, req, res, ns, name, sub)
        if m == "PATCH" and sub != "finalize":
            return _patch(state, req, res, ns, name, sub)
        if m == "DELETE" and not sub:
            return _delete(state, req, res, ns, name)
        raise E.method_not_allowed(res=res, name=name)


def _render_one(req, res, obj):
    mode, av = _render_mode(req)
    if mode == "table":
        return K.table(res, [obj], req.query.get("includeObject", "Metadata"), av)
    if mode == "partial":
        return K.partial(obj)
    return obj


# ---------------------------------------------------------------------------- list and watch
def _selected(state, req, res, ns, name=""):
    ls = parse_label_selector(req.query.get("labelSelector", ""))
    fs = parse_field_selector(req.query.get("fieldSelector", ""), res.kind)
    if name:
        fs = fs + [("metadata.name", "=", name)]
    return ls, fs


def _list(state, req, res, ns):
    ls, fs = _selected(state, req, res, ns)
    objs = [view(res, o) for _, o in state.store.items(res.group, res.plural, ns or None)
            if match_labels(ls, o["metadata"].get("labels")) and match_fields(fs, o)]
    list_rv = state.store.rv
    start = 0
    cont = req.query.get("continue")
    if cont:
        try:
            tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
            list_rv, start = int(tok["rv"]), int(tok["start"])
        except (ValueError, KeyError, TypeError):
            raise E.bad_request("continue key is not valid: incorrect encoded start resourceVersion")
        if list_rv < state.store.floor:
            raise E.expired("The provided continue parameter is too old to display a consistent list result. "
                            "You can start a new list without the continue parameter, or use the continue "
                            "token in this response to retrieve the remainder of the results. Continuing with "
                            "the provided token results in an inconsistent list - objects that were created, "
                            "modified, or deleted between the time the first chunk was returned and now may "
                            "show up in the list.")
    meta = {"resourceVersion": str(list_rv)}
    limit = req.query.get("limit")
    if limit:
        try:
            n = int(limit)
        except ValueError:
            raise E.bad_request("limit: Invalid value: %r" % limit)
        if n > 0 and start + n < len(objs):
            tok = json.dumps({"rv": list_rv, "start": start + n}).encode()
            meta["continue"] = base64.urlsafe_b64encode(tok).decode().rstrip("=")
            meta["remainingItemCount"] = len(objs) - start - n
            objs = objs[start:start + n]
        else:
            objs = objs[start:]
    elif start:
        objs = objs[start:]
    mode, av = _render_mode(req)
    if mode == "table":
        t = K.table(res, objs, req.query.get("includeObject", "Metadata"), av)
        t["metadata"] = meta
        return 200, t
    if mode == "partial":
        return 200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                     "items": [K.partial(o) for o in objs]}
    if not res.crd:
        for o in objs:  # typed lists of a real server carry no kind/apiVersion per item
            o.pop("kind", None)
            o.pop("apiVersion", None)
    return 200, {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": objs}


def _watch_spec(state, req, res, ns, name):
    ls, fs = _selected(state, req, res, ns, name)
    rv = req.query.get("resourceVersion", "")
    if rv not in ("", "0"):
        try:
            rv = int(rv)
        except ValueError:
            raise E.bad_request('resourceVersion: Invalid value: "%s": must be a valid resource version' % rv)
    timeout = req.query.get("timeoutSeconds")
    try:
        timeout = float(timeout) if timeout else None
    except ValueError:
        raise E.bad_request("timeoutSeconds: Invalid value")
    mode, av = _render_mode(req)
    return WatchSpec(res, ns, ls, fs, rv, req.query.get("allowWatchBookmarks") in ("1", "true"), timeout,
                     (mode, av, req.query.get("includeObject", "Metadata")),
                     req.query.get("sendInitialEvents") in ("1", "true"))


# ---------------------------------------------------------------------------- writes
_PROTECTED_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                   "selfLink")


def _carry_meta(new, old):
    nm, om = new.setdefault("metadata", {}), old["metadata"]
    for f in _PROTECTED_META:
        if f in om:
            nm[f] = om[f]
        else:
            nm.pop(f, None)
    nm["name"], nm["resourceVersion"] = om["name"], om["resourceVersion"]
    if "namespace" in om:
        nm["namespace"] = om["namespace"]
    else:
        nm.pop("namespace", None)


def _check_finalizers(res, new, old):
    if old["metadata"].get("deletionTimestamp"):
        added = [f for f in new["metadata"].get("finalizers") or [] if f not in (old["metadata"].get("finalizers") or [])]
        if added:
            raise E.invalid(res, old["metadata"]["name"], [E.field_error(
                "metadata.finalizers", "Forbidden",
                "no new finalizers can be added if the object is being deleted, found new finalizers %s"
                % json.dumps(added))])


def _create(state, res, ns, body, dry, manager, entries=None):
    _check_kind(res, body)
    obj = copy.deepcopy(body)
    md = obj.setdefault("metadata", {})
    if res.namespaced:
        if md.get("namespace") and md["namespace"] != ns and ns:
            raise E.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not ns:
            raise E.method_not_allowed(res=res)
        md["namespace"] = ns
    else:
        md.pop("namespace", None)
    if not md.get("name") and md.get("generateName"):
        md["name"] = _generate_name(md["generateName"])
    name = md.get("name", "")
    if md.get("resourceVersion") and entries is None:
        raise E.bad_request("resourceVersion should not be set on objects to be created")
    if _crd_terminating(state, res):
        raise E.method_not_allowed("create not allowed while custom resource definition is terminating", res, name)
    if name:
        _check_namespace(state, res, ns, name)
    mf = md.get("managedFields")
    A.validate_managed(mf)
    for f in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        md.pop(f, None)
    md["uid"] = new_uid()
    md["creationTimestamp"] = now_rfc3339()
    if res.generation:
        md["generation"] = 1
    else:
        md.pop("generation", None)
    if res.status:
        obj["status"] = {}
    kind = res.kind if not res.crd else None
    if res.group == "" and kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif res.group == "" and kind == "PersistentVolumeClaim":
        obj["status"] = {"phase": "Pending"}
    elif res.group == "" and kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif res.group == "" and kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    elif (res.group, res.plural) == CRD_GR:
        versions = (obj.get("spec") or {}).get("versions") or []
        stored = [v.get("name") for v in versions if v.get("storage")][:1]
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored}
    K.default(res, obj, state)
    _validate(state, res, obj, None)
    key = _key(res, ns, name)
    if state.store.get(key) is not None:
        raise E.already_exists(res, name)
    ctx = A.Ctx.for_resource(res)
    if entries is not None:
        md["managedFields"] = A.encode_managed(entries)
    elif mf and mf != [{}]:
        md["managedFields"] = mf
    else:
        md.pop("managedFields", None)
        ents = A.update_managed(None, obj, manager, ctx, [], res.api_version, res.status, "", now_rfc3339())
        md["managedFields"] = A.encode_managed(ents)
    if not md["managedFields"]:
        md.pop("managedFields")
    _store_form(state, res, obj)
    if dry:
        md["resourceVersion"] = ""
        return 201, view(res, obj)
    state.store.put(key, obj)
    return 201, view(res, obj)


def _commit(state, res, key, old, new, dry, subresource=""):
    """Store new over old (both storage form). Returns (200, view)."""
    if res.generation and subresource != "status" and _content(res, new) != _content(res, old):
        new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
    _store_form(state, res, new)
    if new == old:
        return 200, view(res, old)
    if dry:
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return 200, view(res, new)
    if finalized(res, new):
        state.store.put(key, new)
        gone = state.store.remove(key)
        return 200, view(res, gone)
    state.store.put(key, new)
    return 200, view(res, new)


def _managed_base(new, old):
    """Entries to start from for a non-apply write (client-written managedFields win)."""
    mf = new.get("metadata", {}).get("managedFields")
    if mf == [{}]:
        return []
    if mf and mf != old["metadata"].get("managedFields"):
        A.validate_managed(mf)
        return A.decode_managed(new)
    return A.decode_managed(old)


def write_update(state, res, key, old, body, manager, dry, subresource="", check_rv=True):
    """A full-object write (PUT, or the result of a non-apply patch) by manager."""
    name = old["metadata"]["name"]
    bm = body.get("metadata") or {}
    if check_rv and bm.get("resourceVersion") and bm["resourceVersion"] != old["metadata"]["resourceVersion"]:
        raise E.modified_conflict(res, name)
    if subresource == "status":
        new = copy.deepcopy(old)
        if "status" in body:
            new["status"] = copy.deepcopy(body["status"])
        else:
            new.pop("status", None)
    else:
        new = copy.deepcopy(body)
        new.setdefault("metadata", {})
        if res.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if (res.group, res.plural) == NS_GR:
            if subresource == "finalize":
                fin = (body.get("spec") or {}).get("finalizers")
                new = copy.deepcopy(old)
                new.setdefault("spec", {})["finalizers"] = fin or []
                if not fin:
                    new["spec"].pop("finalizers")
            elif old["metadata"].get("deletionTimestamp"):
                new["spec"] = copy.deepcopy(old.get("spec") or {})
    base = _managed_base(new, old) if subresource != "status" else A.decode_managed(old)
    _carry_meta(new, old)
    _check_finalizers(res, new, old)
    new["apiVersion"], new["kind"] = res.api_version, res.kind
    if subresource != "status":
        K.default(res, new, state)
    _validate(state, res, new, old)
    ctx = A.Ctx.for_resource(res)
    now = now_rfc3339()
    oldv = view(res, old)
    oldv["metadata"].pop("managedFields", None)
    cmpnew = copy.deepcopy(new)
    cmpnew["metadata"].pop("managedFields", None)
    ents = A.update_managed(oldv, cmpnew, manager, ctx, base, res.api_version, res.status,
                            subresource if subresource in ("status", "scale") else "", now)
    new["metadata"]["managedFields"] = A.encode_managed(ents)
    if not new["metadata"]["managedFields"]:
        new["metadata"].pop("managedFields")
    return _commit(state, res, key, old, new, dry, subresource)


def _update(state, req, res, ns, name, sub):
    body = _json_body(req)
    _check_kind(res, body)
    bm = body.get("metadata") or {}
    if bm.get("name") and bm["name"] != name:
        raise E.bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (bm["name"], name))
    if res.namespaced and bm.get("namespace") and bm["namespace"] != ns:
        raise E.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    key = _key(res, ns, name)
    old = state.store.get(key)
    if old is None:
        raise E.not_found(res, name)
    return write_update(state, res, key, old, body, _manager(req), _dry_run(req), sub)


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def _patch(state, req, res, ns, name, sub):
    ctype = req.ctype
    accepted = [t for t in PATCH_TYPES if not (res.crd and t == "application/strategic-merge-patch+json")]
    if ctype not in accepted:
        raise E.unsupported_media(ctype, accepted)
    dry = _dry_run(req)
    force = req.query.get("force")
    if force not in (None, "", "true", "false"):
        raise E.bad_request('force: Invalid value: "%s"' % force)
    if ctype != "application/apply-patch+yaml" and force == "true":
        raise E.bad_request("force: Invalid value: true: may not be specified for non-apply patch")
    key = _key(res, ns, name)
    old = state.store.get(key)
    if ctype == "application/apply-patch+yaml":
        return _apply(state, req, res, ns, name, sub, key, old, dry, force == "true")
    if old is None:
        raise E.not_found(res, name)
    patch = _json_body(req)
    cur = view(res, old)
    if ctype == "application/json-patch+json":
        patched = A.json_patch(cur, patch)
    elif ctype == "application/merge-patch+json":
        if not isinstance(patch, dict):
            raise E.bad_request("merge patch must be a JSON object")
        patched = A.merge_patch(cur, patch)
    else:
        if not isinstance(patch, dict):
            raise E.bad_request("strategic merge patch must be a JSON object")
        patched = A.strategic_merge_patch(cur, patch, A.Ctx.for_resource(res))
    if not isinstance(patched, dict):
        raise E.bad_request("the patched object is not a JSON object")
    pm = patched.get("metadata") or {}
    if pm.get("name", name) != name:
        raise E.bad_request("metadata.name: Invalid value: %s: field is immutable" % json.dumps(pm.get("name")))
    if pm.get("resourceVersion") and pm["resourceVersion"] != old["metadata"]["resourceVersion"]:
        raise E.modified_conflict(res, name)
    return write_update(state, res, key, old, patched, _manager(req), dry, sub, check_rv=False)


_APPLY_META_DROP = ("uid", "resourceVersion", "generation", "creationTimestamp", "selfLink", "deletionTimestamp",
                    "deletionGracePeriodSeconds")


def _apply(state, req, res, ns, name, sub, key, old, dry, force):
    manager = _manager(req, required=True)
    cfg = _json_body(req)
    if not isinstance(cfg, dict):
        raise E.bad_request("the apply configuration must be an object")
    _check_kind(res, cfg)
    cm = cfg.get("metadata") or {}
    if cm.get("managedFields") is not None:
        raise E.bad_request("metadata.managedFields must be nil")
    if cm.get("name") and cm["name"] != name:
        raise E.bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (cm["name"], name))
    if res.namespaced and cm.get("namespace") and cm["namespace"] != ns:
        raise E.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    cfg = copy.deepcopy(cfg)
    md = cfg.setdefault("metadata", {})
    md["name"] = name
    if res.namespaced:
        md["namespace"] = ns
    else:
        md.pop("namespace", None)
    if old is not None:
        if md.get("uid") and md["uid"] != old["metadata"]["uid"]:
            raise E.conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                             % (md["uid"], old["metadata"]["uid"]))
        if md.get("resourceVersion") and md["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise E.modified_conflict(res, name)
    for f in _APPLY_META_DROP:
        md.pop(f, None)
    subresource = "status" if sub == "status" else ""
    if subresource == "status":
        cfg = {k: v for k, v in cfg.items() if k in ("apiVersion", "kind", "metadata", "status")}
        cfg["metadata"] = {k: v for k, v in md.items() if k in ("name", "namespace")}
    elif res.status:
        cfg.pop("status", None)
    if res.crd:
        unknown = []
        K.schema_apply(_schema_of(state, res), cfg, unknown, full=False)
        _unknown_fields(unknown)
    ctx = A.Ctx.for_resource(res)
    now = now_rfc3339()
    if old is None:
        if sub:
            raise E.not_found(res, name)
        merged, entries = A.server_side_apply(None, cfg, manager, force, ctx, [], res.api_version, res.status,
                                              "", now)
        merged["apiVersion"], merged["kind"] = res.api_version, res.kind
        return _create(state, res, ns, merged, dry, manager, entries=entries)
    cur = view(res, old)
    cur["metadata"].pop("managedFields", None)
    entries = A.decode_managed(old)
    merged, entries = A.server_side_apply(cur, cfg, manager, force, ctx, entries, res.api_version, res.status,
                                          subresource, now)
    new = merged
    if subresource == "status":
        new = copy.deepcopy(old)
        if "status" in merged:
            new["status"] = merged["status"]
        else:
            new.pop("status", None)
    elif res.status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    _carry_meta(new, old)
    _check_finalizers(res, new, old)
    if subresource != "status":
        K.default(res, new, state)
    _validate(state, res, new, old)
    new["metadata"]["managedFields"] = A.encode_managed(entries)
    if not new["metadata"]["managedFields"]:
        new["metadata"].pop("managedFields")
    # Unchanged content and ownership: keep the old timestamps (no write, no new resourceVersion).
    _restore_times(new, old)
    return _commit(state, res, key, old, new, dry, subresource)


def _restore_times(new, old):
    def strip(o):
        o = copy.deepcopy(o)
        for e in o["metadata"].get("managedFields") or []:
            e.pop("time", None)
        return o
    if strip(new) == strip(old):
        new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"].get("managedFields"))
        if new["metadata"]["managedFields"] is None:
            new["metadata"].pop("managedFields")


# ---------------------------------------------------------------------------- scale
def _scale_view(obj):
    md = obj["metadata"]
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    m = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": m,
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join("%s=%s" % kv for kv in sorted(sel.items()))}}


def _scale(state, req, res, ns, name):
    """The autoscaling/v1 Scale subresource of Deployments, StatefulSets and ReplicaSets."""
    key = _key(res, ns, name)
    old = state.store.get(key)
    if old is None:
        raise E.not_found(res, name)
    cur = _scale_view(old)
    if req.method == "GET":
        return 200, cur
    if req.method == "PUT":
        body = _json_body(req)
    elif req.method == "PATCH":
        patch = _json_body(req)
        if req.ctype == "application/json-patch+json":
            body = A.json_patch(cur, patch)
        elif req.ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            body = A.merge_patch(cur, patch)
        else:
            raise E.unsupported_media(req.ctype, PATCH_TYPES[:3])
    else:
        raise E.method_not_allowed(res=res, name=name)
    if not isinstance(body, dict) or not isinstance((body.get("spec") or {}).get("replicas"), int):
        raise E.bad_request("Scale spec.replicas must be an integer")
    rv = (body.get("metadata") or {}).get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        raise E.modified_conflict(res, name)
    new = view(res, old)
    new["spec"]["replicas"] = body["spec"]["replicas"]
    new["metadata"].pop("managedFields", None)
    _, obj = write_update(state, res, key, old, new, _manager(req), _dry_run(req), "scale", check_rv=False)
    return 200, _scale_view(obj)


# ---------------------------------------------------------------------------- delete
def _delete_options(req):
    opts = {}
    if req.body and req.body.strip():
        try:
            opts = json.loads(req.body)
        except ValueError:
            raise E.bad_request("the body of the DeleteOptions request is not valid JSON")
        if not isinstance(opts, dict):
            raise E.bad_request("DeleteOptions must be an object")
    for q in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if q in req.query and q not in opts:
            v = req.query[q]
            opts[q] = (v == "true") if q == "orphanDependents" else v
    dry = _dry_run(req)
    if opts.get("dryRun"):
        dr = opts["dryRun"]
        if dr != ["All"]:
            raise E.bad_request('dryRun: Unsupported value: %s: supported values: "All"' % json.dumps(dr))
        dry = True
    return opts, dry


def delete_object(state, res, key, opts, dry):
    old = state.store.get(key)
    name = key[3]
    if old is None:
        raise E.not_found(res, name)
    pre = opts.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
        raise E.conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                         % (pre["uid"], old["metadata"]["uid"]))
    if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
        raise E.conflict(res, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion "
                         "in object meta: %s" % (pre["resourceVersion"], old["metadata"]["resourceVersion"]))
    policy = opts.get("propagationPolicy")
    if policy is None and opts.get("orphanDependents") is True:
        policy = "Orphan"
    if policy is None:
        policy = "Background"
    if policy not in ("Foreground", "Background", "Orphan"):
        raise E.invalid(res, name, [E.field_error("propagationPolicy", "NotSupported",
                                                  'supported values: "Foreground", "Background", "Orphan"', policy)])
    new = copy.deepcopy(old)
    md = new["metadata"]
    fins = list(md.get("finalizers") or [])
    if policy == "Foreground" and "foregroundDeletion" not in fins:
        fins.append("foregroundDeletion")
    if policy == "Orphan" and "orphan" not in fins:
        fins.append("orphan")
    if (res.group, res.plural) == CRD_GR and crd_is_established(old) and \
            "customresourcecleanup.apiextensions.k8s.io" not in fins:
        fins.append("customresourcecleanup.apiextensions.k8s.io")
    is_ns = (res.group, res.plural) == NS_GR
    if fins or (is_ns and (new.get("spec") or {}).get("finalizers")):
        if md.get("deletionTimestamp") and fins == (md.get("finalizers") or []):
            return 200, view(res, old)
        if fins:
            md["finalizers"] = fins
        if not md.get("deletionTimestamp"):
            md["deletionTimestamp"] = now_rfc3339()
            md["deletionGracePeriodSeconds"] = 0
            if res.generation:
                md["generation"] = int(md.get("generation") or 0) + 1
        if is_ns:
            new.setdefault("status", {})["phase"] = "Terminating"
        if (res.group, res.plural) == CRD_GR:
            _set_cond(new, "Terminating", "True", "InstanceDeletionPending",
                      "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")
        if dry:
            return 200, view(res, new)
        state.store.put(key, new)
        return 200, view(res, new)
    if dry:
        return 200, view(res, old)
    gone = state.store.remove(key)
    return 200, view(res, gone)


def _set_cond(obj, ctype, status, reason, message):
    conds = obj.setdefault("status", {}).setdefault("conditions", [])
    now = now_rfc3339()
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != status:
                c["lastTransitionTime"] = now
            c.update({"status": status, "reason": reason, "message": message})
            return
    conds.append({"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason, "message": message})


def _delete(state, req, res, ns, name):
    opts, dry = _delete_options(req)
    return delete_object(state, res, _key(res, ns, name), opts, dry)


def _delete_collection(state, req, res, ns):
    if "deletecollection" not in res.verbs:
        raise E.method_not_allowed(res=res)
    opts, dry = _delete_options(req)
    ls, fs = _selected(state, req, res, ns)
    out = []
    for key, o in state.store.items(res.group, res.plural, ns or None):
        if match_labels(ls, o["metadata"].get("labels")) and match_fields(fs, o):
            _, v = delete_object(state, res, key, opts, dry)
            out.append(v)
    return 200, {"kind": res.list_kind, "apiVersion": res.api_version,
                 "metadata": {"resourceVersion": str(state.store.rv)}, "items": out}


# ---------------------------------------------------------------------------- controller writes
def controller_write(state, key, mutate, manager=CONTROLLER_MANAGER, subresource="status"):
    """Used by the simulated controllers: mutate a copy of the stored object and write it as an
    Update by manager (status subresource by default). Returns the new object or None."""
    with state.store.lock:
        old = state.store.get(key)
        if old is None:
            return None
        res = state.registry.storage_resource(key[0], key[1])
        if res is None:
            return None
        new = copy.deepcopy(old)
        if mutate(new) is False or new == old:
            return None
        ctx = A.Ctx.for_resource(res)
        oldv, newv = copy.deepcopy(old), copy.deepcopy(new)
        oldv["metadata"].pop("managedFields", None)
        newv["metadata"].pop("managedFields", None)
        ents = A.update_managed(oldv, newv, manager, ctx, A.decode_managed(old), res.api_version, res.status,
                                subresource, now_rfc3339())
        new["metadata"]["managedFields"] = A.encode_managed(ents)
        if not new["metadata"]["managedFields"]:
            new["metadata"].pop("managedFields")
        if res.generation and subresource != "status" and _content(res, new) != _content(res, old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if finalized(res, new):
            state.store.put(key, new)
            state.store.remove(key)
            return None
        state.store.put(key, new)
        return new
