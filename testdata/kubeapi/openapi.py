"""A minimal OpenAPI v2 document (/openapi/v2) for the test API server.

Why: kubectl fetches /openapi/v2 (as gnostic protobuf) to validate manifests and, for
`--dry-run=server`, to check that a kind's PATCH operation takes a `dryRun` parameter; without
the document, `kubectl create --dry-run=server` refuses to run. This serves just enough: one path
per resource whose PATCH operation carries the x-kubernetes-group-version-kind extension and the
dryRun/fieldManager/force query parameters. It has no definitions, so kubectl's client-side
schema validation finds no schema and skips (as it does for unknown kinds).

Design: a hand-written protobuf encoder for the few gnostic openapi_v2 messages used (field
numbers from gnostic's OpenAPIv2.proto: Document.swagger=1 info=2 paths=8; Info.title=1
version=2; Paths.path=2; NamedPathItem.name=1 value=2; PathItem.patch=8; Operation.operation_id=5
parameters=8 vendor_extension=13; ParametersItem.parameter=1; Parameter.non_body_parameter=2;
NonBodyParameter.query_parameter_sub_schema=3; QueryParameterSubSchema.in=2 name=4 type=6;
NamedAny.name=1 value=2; Any.yaml=2). The JSON form is served to any other Accept.
"""
import json

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _paths(registry):
    out = []
    for r in registry.resources():
        base = "/api/" + r.version if not r.group else "/apis/%s/%s" % (r.group, r.version)
        ns = "/namespaces/{namespace}" if r.namespaced else ""
        out.append((base + ns + "/" + r.plural + "/{name}", r))
    return out


_PARAMS = ("dryRun", "fieldManager", "force")


def protobuf(registry):
    paths = b""
    for path, r in _paths(registry):
        op = _field(5, "patch%s%s" % (r.group.replace(".", ""), r.kind))
        for p in _PARAMS:
            q = _field(2, "query") + _field(4, p) + _field(6, "string" if p != "force" else "boolean")
            op += _field(8, _field(1, _field(2, _field(3, q))))
        gvk = json.dumps({"group": r.group, "kind": r.kind, "version": r.version})
        op += _field(13, _field(1, "x-kubernetes-group-version-kind") + _field(2, _field(2, gvk)))
        paths += _field(2, _field(1, path) + _field(2, _field(8, op)))
    doc = _field(1, "2.0") + _field(2, _field(1, "Kubernetes") + _field(2, "v1.30.0")) + _field(8, paths)
    return doc


def document(registry):
    paths = {}
    for path, r in _paths(registry):
        paths[path] = {"patch": {
            "operationId": "patch%s%s" % (r.group.replace(".", ""), r.kind),
            "parameters": [{"in": "query", "name": p, "type": "string" if p != "force" else "boolean"}
                           for p in _PARAMS],
            "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version}}}
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.30.0"}, "paths": paths}
