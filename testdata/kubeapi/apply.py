"""Server-side apply, field ownership (managedFields) and the patch types of the test API server.

Why: berth's Kubernetes target applies with server-side apply and relies on its ownership rules
(409 conflicts naming field and manager, force taking ownership, removal of fields a manager
stops applying, shared ownership of equal values, no-op applies that change nothing). This module
models structured-merge-diff (the engine inside kube-apiserver) closely enough for those rules,
plus JSON merge patch, a keyed strategic merge patch and JSON patch.

Design: a field set is a Python set of paths; a path is a tuple of elements ('f', name) for a
map or struct field, ('k', json) for an associative-list item (its key fields as compact JSON
with sorted keys), ('v', json) for a set-list item. Granularity is the leaf: scalars, atomic
lists and atomic maps are members; a list item is a member (serialised as "." next to its
children); free-form maps (labels, annotations, data, CR maps without properties) are members
too, as in the real server; structs are not. List semantics come from `Ctx`: for built-in kinds
a table of the associative lists of the Kubernetes schema (containers by name, container ports by
containerPort+protocol, Service ports by port+protocol, env, volumes, conditions, ...); for custom
resources the CRD's openAPIV3Schema (x-kubernetes-list-type/-list-map-keys/-map-type); anything
else is an atomic list. Managers are entries keyed by (manager, operation, subresource) like
metav1.ManagedFieldsEntry; their sets are decoded from and encoded to FieldsV1.

Apply (as merge.Updater.Apply): merged = live merged with the config (maps by key, associative
lists by key, everything else replaced); the fields this manager applied last time and no longer
applies are removed unless another manager owns them; conflicts are the other managers' fields
whose value this apply adds or changes; without force they fail the request (409), with force the
other managers lose them. Updates (POST/PUT/PATCH) give the writer every field they add or change
and take those fields from everyone else (as merge.Updater.Update).
"""
import copy
import json

from apierrors import StatusError, bad_request

# ---------------------------------------------------------------------------- schema context
# Associative lists of the built-in schema: last field name -> key fields; ports depend on parent.
_BUILTIN_MAP_LISTS = {
    "containers": ["name"], "initContainers": ["name"], "ephemeralContainers": ["name"],
    "env": ["name"], "volumes": ["name"], "volumeMounts": ["mountPath"],
    "volumeDevices": ["devicePath"], "imagePullSecrets": ["name"], "hostAliases": ["ip"],
    "topologySpreadConstraints": ["topologyKey", "whenUnsatisfiable"], "conditions": ["type"],
    "ownerReferences": ["uid"], "resourceClaims": ["name"],
}
_BUILTIN_SET_LISTS = {("metadata", "finalizers")}
# Free-form maps (map[string]T in Go): each key is a member of the set.
_FREE_MAPS = {"labels", "annotations", "data", "binaryData", "stringData", "matchLabels",
              "nodeSelector", "limits", "requests", "capacity", "allocatable", "parameters", "hard",
              "used", "selector_service"}
_KEY_DEFAULTS = {"protocol": "TCP"}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


class Ctx:
    """Where in an object a value sits, and what the schema says about it."""

    __slots__ = ("kind", "fields", "node", "custom")

    def __init__(self, kind, fields=(), node=None, custom=False):
        self.kind = kind
        self.fields = fields      # field names from the root, list items skipped
        self.node = node          # openAPI schema node (custom resources, outside metadata)
        self.custom = custom

    @staticmethod
    def for_resource(res):
        if res.schema is not None or res.crd:
            # No schema: the deduced type of structured-merge-diff (every map granular).
            return Ctx(res.kind, (), res.schema, True)
        return Ctx(res.kind)

    def child(self, name):
        fields = self.fields + (name,)
        if not self.custom or (not self.fields and name == "metadata"):
            return Ctx(self.kind, fields, None, False)
        n = self.node
        sub = None
        if isinstance(n, dict):
            props = n.get("properties") or {}
            if name in props:
                sub = props[name]
            elif isinstance(n.get("additionalProperties"), dict):
                sub = n["additionalProperties"]
        return Ctx(self.kind, fields, sub, True)

    def item(self):
        if self.custom:
            n = self.node.get("items") if isinstance(self.node, dict) else None
            return Ctx(self.kind, self.fields, n, True)
        return self

    def list_info(self):
        """('map', keys) | ('set', None) | ('atomic', None)."""
        if self.custom:
            n = self.node if isinstance(self.node, dict) else {}
            lt = n.get("x-kubernetes-list-type")
            if lt == "map":
                return "map", list(n.get("x-kubernetes-list-map-keys") or [])
            if lt == "set":
                return "set", None
            return "atomic", None
        if self.fields in _BUILTIN_SET_LISTS:
            return "set", None
        last = self.fields[-1] if self.fields else ""
        if last == "ports":
            parent = self.fields[-2] if len(self.fields) > 1 else ""
            if parent in _CONTAINER_LISTS:
                return "map", ["containerPort", "protocol"]
            if self.kind == "Service" and self.fields == ("spec", "ports"):
                return "map", ["port", "protocol"]
            return "atomic", None
        if last == "finalizers" and self.fields == ("spec", "finalizers"):
            return "set", None
        if last in _BUILTIN_MAP_LISTS:
            return "map", _BUILTIN_MAP_LISTS[last]
        return "atomic", None

    def free_map(self):
        if self.custom:
            n = self.node
            if not isinstance(n, dict):
                return True  # not in the schema: a deduced (granular) map
            if n.get("x-kubernetes-map-type") == "atomic":
                return False
            if isinstance(n.get("additionalProperties"), dict) or n.get("additionalProperties") is True:
                return True
            return not n.get("properties") and n.get("x-kubernetes-preserve-unknown-fields", False)
        last = self.fields[-1] if self.fields else ""
        if self.kind == "Service" and self.fields == ("spec", "selector"):
            return True
        return last in _FREE_MAPS

    def atomic_map(self):
        if self.custom:
            if self.fields[:1] == ("metadata",):
                return False
            return isinstance(self.node, dict) and (self.node.get("x-kubernetes-map-type") == "atomic" or
                                                    self.node.get("x-kubernetes-map-type") == "granular" and False)
        # metav1.LabelSelector is +structType=atomic
        last = self.fields[-1] if self.fields else ""
        if last == "selector":
            return not (self.kind == "Service" and self.fields == ("spec", "selector"))
        return last in ("labelSelector", "namespaceSelector", "podSelector")


# ---------------------------------------------------------------------------- paths
def _canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def item_key(item, keys):
    """The 'k' element JSON of an associative-list item, or None if a key field is missing."""
    if not isinstance(item, dict):
        return None
    k = {}
    for name in keys:
        if name in item:
            k[name] = item[name]
        elif name in _KEY_DEFAULTS:
            k[name] = _KEY_DEFAULTS[name]
        else:
            return None
    return _canon(k)


def _effective_list(lst, ctx):
    """(type, keys) for a concrete list: an associative list whose items lack keys or repeat a
    key is treated as atomic (a real server rejects it)."""
    lt, keys = ctx.list_info()
    if lt == "map":
        seen = set()
        for it in lst:
            k = item_key(it, keys)
            if k is None or k in seen:
                return "atomic", None
            seen.add(k)
    elif lt == "set":
        seen = set()
        for it in lst:
            if isinstance(it, (dict, list)) or _canon(it) in seen:
                return "atomic", None
            seen.add(_canon(it))
    return lt, keys


def path_string(path):
    """A path as structured-merge-diff prints it: .spec.containers[name="app"].image"""
    out = ""
    for kind, v in path:
        if kind == "f":
            out += "." + v
        elif kind == "k":
            d = json.loads(v)
            out += "[" + ",".join("%s=%s" % (k, json.dumps(d[k])) for k in sorted(d)) + "]"
        elif kind == "v":
            out += "[=" + v + "]"
        else:
            out += "[%s]" % v
    return out


def _walk(value, ctx, path, out, nodes=True, entry=False):
    """Add value's member paths (value sits at path) to out. A map is a member itself when it
    is empty or atomic, or an entry of a free-form map; with nodes (the sets an Update records,
    built from a comparison) a free-form map is a member too, as in the real server's output."""
    if isinstance(value, dict):
        if ctx.atomic_map() or not value:
            out.add(path)
            return
        free = ctx.free_map()
        if entry or (nodes and free):
            out.add(path)
        for k, v in value.items():
            _walk(v, ctx.child(k), path + (("f", k),), out, nodes, free)
        return
    if isinstance(value, list):
        lt, keys = _effective_list(value, ctx)
        if lt == "atomic" or not value:
            out.add(path)
            return
        ictx = ctx.item()
        for it in value:
            if lt == "map":
                ip = path + (("k", item_key(it, keys)),)
                out.add(ip)
                for k, v in it.items():
                    _walk(v, ictx.child(k), ip + (("f", k),), out, nodes)
            else:
                out.add(path + (("v", _canon(it)),))
        return
    out.add(path)


def fieldset(obj, ctx, nodes=False):
    """The member paths of an object: nodes=False for an applied configuration (ToFieldSet),
    True for what an Update of the whole object records."""
    out = set()
    free = ctx.free_map()
    for k, v in (obj or {}).items():
        _walk(v, ctx.child(k), (("f", k),), out, nodes, free)
    return out


_STRIPPED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def strip_set(s, has_status, subresource):
    """Drop the paths a real server never records as owned (stripMetaManager + reset fields)."""
    out = set()
    for p in s:
        if not p:
            continue
        top = p[0][1]
        if top in ("apiVersion", "kind"):
            continue
        if top == "metadata" and len(p) > 1 and p[1][1] in _STRIPPED_META:
            continue
        if subresource == "status":
            if top != "status":
                continue
        elif has_status and top == "status":
            continue
        out.add(p)
    return out


# ---------------------------------------------------------------------------- FieldsV1
def _el_key(el):
    kind, v = el
    return "%s:%s" % (kind, v)


def encode_fields(paths):
    root = {}
    for p in sorted(paths, key=lambda p: [_el_key(e) for e in p]):
        node = root
        for el in p:
            node = node.setdefault(_el_key(el), {})
        node["."] = node.get(".", {})
    # A member with children is {".": {}, ...}; a member without children is {}.
    def fix(n):
        for k, v in list(n.items()):
            if k == ".":
                continue
            fix(v)
            if list(v.keys()) == ["."]:
                n[k] = {}
        return n
    return _sorted_dict(fix(root))


def _sorted_dict(d):
    return {k: _sorted_dict(d[k]) for k in sorted(d, key=lambda k: (k != ".", k))}


def decode_fields(fv1):
    out = set()

    def rec(node, path):
        if not isinstance(node, dict):
            return
        if not node and path:
            out.add(path)
            return
        for k, v in node.items():
            if k == ".":
                if path:
                    out.add(path)
                continue
            kind, _, rest = k.partition(":")
            rec(v, path + ((kind, rest),))
    rec(fv1 or {}, ())
    return out


class Entry:
    __slots__ = ("manager", "operation", "subresource", "api_version", "time", "set", "raw")

    def __init__(self, manager, operation, subresource, api_version, time, fset, raw=None):
        self.manager = manager
        self.operation = operation
        self.subresource = subresource
        self.api_version = api_version
        self.time = time
        self.set = fset
        self.raw = raw

    @property
    def ident(self):
        return (self.manager, self.operation, self.subresource)

    def label(self):
        """The manager as conflict messages print it (fieldmanager printManager)."""
        s = json.dumps(self.manager)
        if self.subresource:
            s += " with subresource %s" % json.dumps(self.subresource)
        if self.operation == "Update":
            s += " using %s" % self.api_version
            if self.time:
                s += " at %s" % self.time
        return s

    def to_json(self):
        e = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            e["time"] = self.time
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = encode_fields(self.set)
        if self.subresource:
            e["subresource"] = self.subresource
        return e


def decode_managed(obj):
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict) or not e.get("manager") and not e.get("fieldsV1"):
            continue
        out.append(Entry(e.get("manager", ""), e.get("operation", "Update"), e.get("subresource", ""),
                         e.get("apiVersion", ""), e.get("time"), decode_fields(e.get("fieldsV1")), e))
    return out


def validate_managed(mf):
    """400 for managedFields a client may not write (as the real decoder rejects them)."""
    if mf is None:
        return
    if not isinstance(mf, list):
        raise bad_request("metadata.managedFields: must be a list")
    for e in mf:
        if not isinstance(e, dict):
            raise bad_request("metadata.managedFields: entries must be objects")
        if e and e.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise bad_request('metadata.managedFields: fieldsType must be "FieldsV1"')
        if e and e.get("operation") not in ("Apply", "Update"):
            raise bad_request('metadata.managedFields: operation must be "Apply" or "Update"')


def encode_managed(entries):
    return [e.to_json() for e in entries if e.set]


# ---------------------------------------------------------------------------- values at paths
def _find_item(lst, el):
    kind, v = el
    if kind == "k":
        want = json.loads(v)
        for i, it in enumerate(lst):
            if isinstance(it, dict) and all(it.get(k, _KEY_DEFAULTS.get(k)) == x for k, x in want.items()):
                return i
    elif kind == "v":
        want = json.loads(v)
        for i, it in enumerate(lst):
            if it == want:
                return i
    elif kind == "i":
        i = int(v)
        if 0 <= i < len(lst):
            return i
    return None


def get_path(obj, path):
    cur = obj
    for el in path:
        if el[0] == "f":
            if not isinstance(cur, dict) or el[1] not in cur:
                return False, None
            cur = cur[el[1]]
        else:
            if not isinstance(cur, list):
                return False, None
            i = _find_item(cur, el)
            if i is None:
                return False, None
            cur = cur[i]
    return True, cur


def remove_path(obj, path):
    found, parent = get_path(obj, path[:-1])
    if not found:
        return
    el = path[-1]
    if el[0] == "f":
        if isinstance(parent, dict):
            parent.pop(el[1], None)
    elif isinstance(parent, list):
        i = _find_item(parent, el)
        if i is not None:
            parent.pop(i)


# ---------------------------------------------------------------------------- comparison
def compare(old, new, ctx, path=()):
    """(added, removed, modified) member paths between two values at path (typed.Compare)."""
    added, removed, modified = set(), set(), set()
    _cmp(old, new, ctx, path, added, removed, modified)
    return added, removed, modified


def _cmp(old, new, ctx, path, added, removed, modified):
    if isinstance(old, dict) and isinstance(new, dict) and not ctx.atomic_map() and (old or new):
        free = ctx.free_map()
        for k in set(old) | set(new):
            c, p = ctx.child(k), path + (("f", k),)
            if k not in old:
                _walk(new[k], c, p, added, True, free)
            elif k not in new:
                _walk(old[k], c, p, removed, True, free)
            else:
                _cmp(old[k], new[k], c, p, added, removed, modified)
        return
    if isinstance(old, list) and isinstance(new, list) and (old or new):
        lo, ko = _effective_list(old, ctx)
        ln, kn = _effective_list(new, ctx)
        if lo == ln == "map" and ko == kn:
            ictx = ctx.item()
            om = {item_key(i, ko): i for i in old}
            nm = {item_key(i, kn): i for i in new}
            for k in set(om) | set(nm):
                ip = path + (("k", k),)
                if k not in om:
                    added.add(ip)
                    for f, v in nm[k].items():
                        _walk(v, ictx.child(f), ip + (("f", f),), added)
                elif k not in nm:
                    removed.add(ip)
                    for f, v in om[k].items():
                        _walk(v, ictx.child(f), ip + (("f", f),), removed)
                else:
                    for f in set(om[k]) | set(nm[k]):
                        c, p = ictx.child(f), ip + (("f", f),)
                        if f not in om[k]:
                            _walk(nm[k][f], c, p, added)
                        elif f not in nm[k]:
                            _walk(om[k][f], c, p, removed)
                        else:
                            _cmp(om[k][f], nm[k][f], c, p, added, removed, modified)
            return
        if lo == ln == "set":
            os_ = {_canon(i) for i in old}
            ns_ = {_canon(i) for i in new}
            added.update(path + (("v", v),) for v in ns_ - os_)
            removed.update(path + (("v", v),) for v in os_ - ns_)
            return
    if old != new:
        modified.add(path)


# ---------------------------------------------------------------------------- merging
def strip_nulls(v):
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v]
    return v


def merge(live, cfg, ctx):
    """live merged with cfg as structured-merge-diff merges an applied config."""
    if isinstance(cfg, dict) and isinstance(live, dict) and not ctx.atomic_map():
        out = dict(live)
        for k, v in cfg.items():
            out[k] = merge(live.get(k), v, ctx.child(k)) if k in live else copy.deepcopy(v)
        return out
    if isinstance(cfg, list) and isinstance(live, list):
        lt, keys = _effective_list(cfg, ctx)
        lt2, keys2 = _effective_list(live, ctx)
        if lt == lt2 == "map" and keys == keys2:
            # Live items in their order (merged with the config's), then the config's new items
            # in its order, as structured-merge-diff 4.1 does (newer versions interleave them).
            ictx = ctx.item()
            cm = {item_key(i, keys): i for i in cfg}
            out, seen = [], set()
            for li in live:
                lk = item_key(li, keys)
                seen.add(lk)
                out.append(merge(li, cm[lk], ictx) if lk in cm else li)
            for ci in cfg:
                if item_key(ci, keys) not in seen:
                    out.append(copy.deepcopy(ci))
            return out
        if lt == lt2 == "set":
            out = list(live)
            for v in cfg:
                if v not in out:
                    out.append(v)
            return out
    return copy.deepcopy(cfg)


def _below(k, p):
    return len(k) > len(p) and k[:len(p)] == p


def _prune(obj, paths, keep):
    """Remove the paths nobody keeps (merge.Updater.prune): a path with kept paths below it
    stays (only its unkept children go), and the key fields of an item that stays are never
    removed. Maps emptied by the removal go too, unless kept."""
    done = set()
    for p in sorted(paths, key=len):
        if any(d == p[:len(d)] for d in done):
            continue  # inside a subtree already removed
        if any(_below(k, p) for k in keep):
            continue
        if len(p) >= 2 and p[-1][0] == "f" and p[-2][0] == "k" and p[-1][1] in json.loads(p[-2][1]):
            continue  # a key field of an item that is not itself removed
        remove_path(obj, p)
        done.add(p)
        q = p[:-1]
        while q:
            found, v = get_path(obj, q)
            if not found or v or q in keep or any(_below(k, q) for k in keep):
                break
            remove_path(obj, q)
            q = q[:-1]


def server_side_apply(live, cfg, manager, force, ctx, entries, api_version, has_status, subresource, now):
    """Apply cfg as manager onto live (None to create). Returns (merged, entries).
    Raises the 409 apply conflict unless force."""
    cfg = strip_nulls(cfg)
    base = copy.deepcopy(live) if live is not None else {}
    merged = merge(base, cfg, ctx)
    new_set = strip_set(fieldset(cfg, ctx), has_status, subresource)
    mine = next((e for e in entries if e.ident == (manager, "Apply", subresource)), None)
    others = [e for e in entries if e is not mine]
    # Fields this manager applied before and omits now: removed unless someone else owns them.
    if mine is not None:
        owned = set(new_set)
        for e in others:
            owned |= e.set
        gone = mine.set - owned
        if gone:
            _prune(merged, gone, owned)
    # Conflicts: other managers' fields that this apply adds or changes.
    added, removed, modified = compare(base, merged, ctx)
    changed = added | modified
    conflicts, taken = [], {}
    for e in others:
        c = e.set & changed
        if c:
            taken[id(e)] = c
            for p in sorted(c, key=path_string):
                conflicts.append((e.label(), path_string(p)))
    if conflicts and not force:
        from apierrors import apply_conflict
        raise apply_conflict(conflicts)
    out = []
    for e in others:
        s = e.set - taken.get(id(e), set()) - removed
        if s != e.set:
            e = Entry(e.manager, e.operation, e.subresource, e.api_version, e.time, s)
        if s:
            out.append(e)
    content_changed = bool(added or removed or modified)
    if mine is not None and mine.set == new_set and not content_changed and mine.api_version == api_version:
        out.append(mine)
    elif new_set:
        out.append(Entry(manager, "Apply", subresource, api_version,
                         now if (content_changed or mine is None or mine.set != new_set) else mine.time, new_set))
    return merged, _order(entries, out)


def update_managed(live, new, manager, ctx, entries, api_version, has_status, subresource, now):
    """Ownership after a non-apply write of new over live (None on create)."""
    if live is None:
        added, removed, modified = strip_set(fieldset(new, ctx, True), has_status, subresource), set(), set()
    else:
        a, r, m = compare(live, new, ctx)
        added, removed, modified = (strip_set(x, has_status, subresource) for x in (a, r, m))
    changed = added | modified
    if not (changed or removed):
        return list(entries)
    out, mine = [], None
    for e in entries:
        if e.ident == (manager, "Update", subresource):
            mine = e
            continue
        s = e.set - changed - removed
        if s != e.set:
            e = Entry(e.manager, e.operation, e.subresource, e.api_version, e.time, s)
        if s:
            out.append(e)
    s = ((mine.set if mine else set()) | changed) - removed
    if s:
        out.append(Entry(manager, "Update", subresource, api_version, now, s))
    return _order(entries, out)


def _order(before, after):
    """Keep existing entries in their order, new ones at the end (as the real server)."""
    pos = {e.ident: i for i, e in enumerate(before)}
    return sorted(after, key=lambda e: pos.get(e.ident, len(before)))


# ---------------------------------------------------------------------------- patches
def merge_patch(orig, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


_DELETE = object()


def strategic_merge_patch(orig, patch, ctx):
    """Strategic merge patch, simplified: maps merge; lists with a merge key (the first key of the
    associative lists above) merge by it and honour `$patch: delete|replace`; primitive set lists
    (finalizers) are unioned and `$deleteFromPrimitiveList/<f>` is honoured; other lists are
    replaced. `$setElementOrder/<f>` is ignored; `$retainKeys` keeps only the listed keys."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return _DELETE
    out = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in (v or [])]
            continue
        if v is None:
            out.pop(k, None)
            continue
        c = ctx.child(k)
        if isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, c)
        else:
            r = strategic_merge_patch(out.get(k), v, c)
            if r is _DELETE:
                out.pop(k, None)
            else:
                out[k] = r
    if isinstance(patch.get("$retainKeys"), list):
        keep = set(patch["$retainKeys"])
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _smp_list(orig, patch, ctx):
    lt, keys = ctx.list_info()
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [p for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if lt == "map" and isinstance(orig, list):
        key = keys[0]
        out = copy.deepcopy(orig)
        ictx = ctx.item()
        for p in patch:
            if not isinstance(p, dict) or key not in p:
                return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
            idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == p[key]), None)
            if p.get("$patch") == "delete":
                if idx is not None:
                    out.pop(idx)
                continue
            if idx is None:
                out.append({k: v for k, v in p.items() if k != "$patch"})
            else:
                out[idx] = strategic_merge_patch(out[idx], p, ictx)
        return out
    if lt == "set" and isinstance(orig, list):
        out = list(orig)
        for p in patch:
            if p not in out:
                out.append(p)
        return out
    return [p for p in patch if not (isinstance(p, dict) and "$patch" in p)]


def _unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise _patch_error("invalid JSON pointer %r" % path)
    return [_unescape(t) for t in path[1:].split("/")]


def _patch_error(msg):
    return StatusError(422, "Invalid", "the server rejected our request due to an error in our request: " + msg)


def _resolve(doc, toks):
    cur = doc
    for t in toks:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            raise _patch_error("doc is missing path: /" + "/".join(toks))
    return cur


def json_patch(doc, ops):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _patch_error("invalid operation %r" % (op,))
        kind, toks = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _patch_error('missing value for "%s" operation' % kind)
        if kind == "test":
            if _resolve(doc, toks) != op["value"]:
                raise _patch_error("testing value %s failed" % op["path"])
            continue
        if kind in ("move", "copy"):
            val = copy.deepcopy(_resolve(doc, _pointer(op.get("from", ""))))
            if kind == "move":
                doc = _remove(doc, _pointer(op["from"]))
            doc = _add(doc, toks, val)
            continue
        if kind == "remove":
            doc = _remove(doc, toks)
        elif kind == "replace":
            _resolve(doc, toks)
            doc = _remove(doc, toks)
            doc = _add(doc, toks, copy.deepcopy(op["value"]))
        elif kind == "add":
            doc = _add(doc, toks, copy.deepcopy(op["value"]))
        else:
            raise _patch_error('unexpected operation "%s"' % kind)
    return doc


def _add(doc, toks, val):
    if not toks:
        return val
    parent = _resolve(doc, toks[:-1])
    t = toks[-1]
    if isinstance(parent, dict):
        parent[t] = val
    elif isinstance(parent, list):
        if t == "-":
            parent.append(val)
        elif t.isdigit() and int(t) <= len(parent):
            parent.insert(int(t), val)
        else:
            raise _patch_error("index out of range: /" + "/".join(toks))
    else:
        raise _patch_error("doc is missing path: /" + "/".join(toks))
    return doc


def _remove(doc, toks):
    if not toks:
        return None
    parent = _resolve(doc, toks[:-1])
    t = toks[-1]
    if isinstance(parent, dict) and t in parent:
        del parent[t]
    elif isinstance(parent, list) and t.isdigit() and int(t) < len(parent):
        parent.pop(int(t))
    else:
        raise _patch_error("unable to remove nonexistent key: %s: missing value" % t)
    return doc
