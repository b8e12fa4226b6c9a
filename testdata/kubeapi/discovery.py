"""Resource table and discovery documents of the test API server.

Why: a Kubernetes client maps kinds to URLs through discovery (/api, /apis, /api/v1,
/apis/GROUP/VERSION); kubectl also resolves short names (`cm`, `deploy`) from it. This module
holds the built-in resources the server serves and derives the resources of every Established
CustomResourceDefinition, so a new CRD's kinds appear in discovery (and become servable) only
once its Established condition is True.

Design: `Resource` describes one group/version/plural (scope, kind, verbs, short names, whether
it has a status subresource and a metadata.generation). `Registry.resources()` is the built-in
list plus one entry per served version of each Established CRD (read from the store on every
call, so discovery never lags the CRD objects). Discovery documents are built from that list.
"""

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


class Resource:
    def __init__(self, group, version, plural, kind, namespaced, short=(), status=False,
                 generation=False, singular=None, categories=(), crd=None, schema=None,
                 columns=None, storage_version=None, verbs=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.status = status              # has a /status subresource
        self.generation = generation      # objects carry metadata.generation
        self.singular = singular or kind.lower()
        self.categories = list(categories)
        self.crd = crd                    # name of the defining CRD (custom resources only)
        self.schema = schema              # openAPIV3Schema of this version (custom resources)
        self.columns = columns or []      # additionalPrinterColumns (custom resources)
        self.storage_version = storage_version or version
        self.verbs = verbs or VERBS
        self.scale = group == "apps" and plural in ("deployments", "statefulsets", "replicasets")

    @property
    def group_version(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def api_version(self):
        return self.group_version

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def gr(self):
        """Storage identity: objects are shared by all versions of one group/resource."""
        return (self.group, self.plural)

    def __repr__(self):
        return "<Resource %s %s>" % (self.group_version, self.plural)


def _b(group, version, plural, kind, namespaced, short=(), status=False, generation=False,
       categories=(), verbs=None):
    return Resource(group, version, plural, kind, namespaced, short, status, generation,
                    categories=categories, verbs=verbs)


ALL = ("all",)
BUILTIN = [
    _b("", "v1", "namespaces", "Namespace", False, ["ns"], status=True,
       verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    _b("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    _b("", "v1", "secrets", "Secret", True),
    _b("", "v1", "services", "Service", True, ["svc"], status=True, categories=ALL,
       verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    _b("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    _b("", "v1", "pods", "Pod", True, ["po"], status=True, categories=ALL),
    _b("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], status=True),
    _b("", "v1", "events", "Event", True, ["ev"]),
    _b("apps", "v1", "deployments", "Deployment", True, ["deploy"], True, True, ALL),
    _b("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], True, True, ALL),
    _b("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], True, True, ALL),
    _b("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], True, True, ALL),
    _b("batch", "v1", "jobs", "Job", True, [], True, True, ALL),
    _b("batch", "v1", "cronjobs", "CronJob", True, ["cj"], True, True, ALL),
    _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _b("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _b("coordination.k8s.io", "v1", "leases", "Lease", True),
    _b("events.k8s.io", "v1", "events", "Event", True, ["ev"]),
    _b("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"]),
    _b("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"], status=True),
    _b("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], True, True),
    _b("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ["crd", "crds"], True, True),
]

# Group order in /apis follows a real server's (built-in groups first, CRD groups after).
BUILTIN_GROUP_ORDER = []
for _r in BUILTIN:
    if _r.group and _r.group not in BUILTIN_GROUP_ORDER:
        BUILTIN_GROUP_ORDER.append(_r.group)


def condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def crd_is_established(crd):
    c = condition(crd, "Established")
    return bool(c and c.get("status") == "True")


def crd_resources(crd):
    """The resources (one per served version) a CRD defines."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = spec.get("versions") or []
    storage = next((v.get("name") for v in versions if v.get("storage")), None)
    out = []
    for v in versions:
        if not v.get("served"):
            continue
        subs = v.get("subresources") or {}
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(Resource(group, v.get("name"), names.get("plural", ""), names.get("kind", ""),
                            spec.get("scope") == "Namespaced", names.get("shortNames") or [],
                            status="status" in subs, generation=True,
                            singular=names.get("singular") or names.get("kind", "").lower(),
                            categories=names.get("categories") or [],
                            crd=crd["metadata"]["name"], schema=schema,
                            columns=v.get("additionalPrinterColumns") or [],
                            storage_version=storage))
    return out


class Registry:
    """Built-in plus CRD-defined resources; `crds` is a callable returning the CRD objects."""

    def __init__(self, crds):
        self._crds = crds

    def resources(self, include_unestablished=False):
        out = list(BUILTIN)
        builtin_gr = {(r.group, r.plural) for r in BUILTIN}
        for crd in self._crds():
            if not include_unestablished and not crd_is_established(crd):
                continue
            for r in crd_resources(crd):
                if (r.group, r.plural) not in builtin_gr:
                    out.append(r)
        return out

    def lookup(self, group, version, plural):
        for r in self.resources():
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def by_gr(self, group, plural):
        for r in self.resources():
            if r.group == group and r.plural == plural:
                return r
        return None

    def storage_resource(self, group, plural):
        """The resource entry of the storage version (falls back to any served version)."""
        best = None
        for r in self.resources():
            if r.group == group and r.plural == plural:
                if r.version == r.storage_version:
                    return r
                best = best or r
        return best

    def by_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        for r in self.resources():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def groups(self):
        """[(group, [versions])] for /apis, built-in groups first."""
        order, versions = [], {}
        for r in self.resources():
            if not r.group:
                continue
            if r.group not in versions:
                versions[r.group] = []
                order.append(r.group)
            if r.version not in versions[r.group]:
                versions[r.group].append(r.version)
        order.sort(key=lambda g: (BUILTIN_GROUP_ORDER.index(g) if g in BUILTIN_GROUP_ORDER
                                  else len(BUILTIN_GROUP_ORDER), g if g not in BUILTIN_GROUP_ORDER else ""))
        return [(g, _sort_versions(versions[g])) for g in order]

    def group_doc(self, group):
        for g, vs in self.groups():
            if g == group:
                return _api_group(g, vs)
        return None

    def group_list_doc(self):
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_api_group(g, vs) for g, vs in self.groups()]}

    def resource_list_doc(self, group, version):
        rs = [r for r in self.resources() if r.group == group and r.version == version]
        if not rs:
            return None
        items = []
        for r in rs:
            e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs)}
            if r.short:
                e["shortNames"] = list(r.short)
            if r.categories:
                e["categories"] = list(r.categories)
            items.append(e)
            if r.scale:
                items.append({"name": r.plural + "/scale", "singularName": "", "namespaced": r.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": list(STATUS_VERBS)})
            if r.status:
                items.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": list(STATUS_VERBS)})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": group + "/" + version if group else version, "resources": items}


def _version_key(v):
    # Kubernetes version priority: GA > beta > alpha, higher numbers first.
    import re
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, v)


def _sort_versions(vs):
    return sorted(vs, key=_version_key)


def _api_group(g, vs):
    gvs = [{"groupVersion": g + "/" + v, "version": v} for v in vs]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": gvs, "preferredVersion": gvs[0]}


def api_versions_doc(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


VERSION_DOC = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-kubeapi", "gitCommit": "berth-test-server",
               "gitTreeState": "clean", "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2",
               "compiler": "gc", "platform": "linux/amd64"}
