"""Kubernetes `Status` error objects for the test API server.

Why: clients (berth, kubectl) decode every non-2xx answer as a metav1.Status and show its
message; reasons, codes, `details` and message wording follow k8s.io/apimachinery's
api/errors package so a client tested here reads a real server's errors the same way.
"""
import json


class StatusError(Exception):
    """An API error; `status()` is the body sent to the client."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            st["details"] = self.details
        return st


def qualified_resource(res):
    """`configmaps` or `deployments.apps`, as error messages name a resource."""
    return res.plural + ("." + res.group if res.group else "")


def qualified_kind(res):
    """`ConfigMap` or `Deployment.apps`, as Invalid messages name a kind."""
    return res.kind + ("." + res.group if res.group else "")


def _details(res, name):
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res, name):
    return StatusError(404, "NotFound", '%s "%s" not found' % (qualified_resource(res), name),
                       _details(res, name))


def namespace_not_found(ns):
    return StatusError(404, "NotFound", 'namespaces "%s" not found' % ns,
                       {"name": ns, "kind": "namespaces"})


def not_found_path(path):
    # What a real server says for a URL no resource serves.
    return StatusError(404, "NotFound", "the server could not find the requested resource",
                       {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def already_exists(res, name):
    return StatusError(409, "AlreadyExists", '%s "%s" already exists' % (qualified_resource(res), name),
                       _details(res, name))


def conflict(res, name, why):
    return StatusError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                       % (qualified_resource(res), name, why), _details(res, name))


def modified_conflict(res, name):
    return conflict(res, name, "the object has been modified; please apply your changes to the "
                    "latest version and try again")


def field_error(field, kind, detail="", value=None):
    """One field.Error: kind is Invalid|Required|Forbidden|NotSupported|Duplicate."""
    reasons = {"Invalid": ("FieldValueInvalid", "Invalid value"),
               "Required": ("FieldValueRequired", "Required value"),
               "Forbidden": ("FieldValueForbidden", "Forbidden"),
               "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
               "Duplicate": ("FieldValueDuplicate", "Duplicate value")}
    reason, text = reasons[kind]
    if kind in ("Invalid", "NotSupported", "Duplicate"):
        msg = "%s: %s" % (text, _render(value))
        if detail:
            msg += ": " + detail
    else:
        msg = text + (": " + detail if detail else "")
    return {"reason": reason, "message": msg, "field": field}


def _render(value):
    if isinstance(value, str):
        return json.dumps(value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def invalid(res, name, causes):
    """422 Invalid with one cause per field error (apimachinery NewInvalid)."""
    parts = ["%s: %s" % (c["field"], c["message"]) for c in causes]
    agg = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {"name": name, "kind": res.kind, "causes": causes}
    if res.group:
        details = {"name": name, "group": res.group, "kind": res.kind, "causes": causes}
    return StatusError(422, "Invalid", '%s "%s" is invalid: %s' % (qualified_kind(res), name, agg), details)


def bad_request(message):
    return StatusError(400, "BadRequest", message)


def unauthorized():
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(res, name, message, causes=None):
    d = _details(res, name)
    if causes:
        d["causes"] = causes
    return StatusError(403, "Forbidden", message, d)


def method_not_allowed(message="the server does not allow this method on the requested resource", res=None, name=""):
    return StatusError(405, "MethodNotAllowed", message, _details(res, name) if res else None)


def expired(message):
    """410 for a resource version or continue token older than the server keeps."""
    return StatusError(410, "Expired", message)


def gone(message):
    return StatusError(410, "Gone", message)


def unsupported_media(ctype, accepted):
    return StatusError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types "
                       "include: " + ", ".join(accepted))


def apply_conflict(conflicts):
    """409 for server-side apply conflicts; conflicts is [(manager_label, path_string)]."""
    causes = [{"reason": "FieldManagerConflict", "message": "conflict with " + m, "field": p}
              for m, p in conflicts]
    if len(conflicts) == 1:
        msg = "Apply failed with 1 conflict: conflict with %s: %s" % conflicts[0]
    else:
        by = {}
        for m, p in conflicts:
            by.setdefault(m, []).append(p)
        lines = []
        for m in sorted(by):
            lines.append("conflicts with %s:" % m)
            lines.extend("- " + p for p in by[m])
        msg = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
    return StatusError(409, "Conflict", msg, {"causes": causes})


def internal(message):
    return StatusError(500, "InternalError", "Internal error occurred: " + message,
                       {"causes": [{"message": message}]})


# Reasons a fault rule may ask for (control endpoint), with their codes.
FAULT_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed", 409: "Conflict", 410: "Gone", 415: "UnsupportedMediaType",
                 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                 503: "ServiceUnavailable", 504: "Timeout"}
