#!/usr/bin/env python3
"""kubeapi: a Kubernetes API test server for berth's Kubernetes target and controller mode.

Why: no real kube-apiserver can be installed on the machines berth is built and tested on
(Debian ships only the client). berth's Kubernetes code is tested against this server instead,
and the server itself is checked against Debian's kubectl 1.20 (tests/integration/
test_kubeapi.sh) so its answers are shaped like a real server's. docs/kubeapi.md says exactly
what it models and what it does not.

Design: Python 3 stdlib only (PyYAML is used for YAML apply bodies when installed). A
ThreadingHTTPServer on 127.0.0.1:PORT (0 = any free port) that writes its port to --port-file and
prints "listening on 127.0.0.1:PORT" once it accepts connections. HTTPS with --tls-cert/--tls-key
(handshakes happen in the connection's thread), client certificates with --client-ca, a static
bearer token with --token; /version, /healthz, /readyz, /livez are public as on a real server.
Modules: discovery (resource table, discovery documents), storage (objects, resource versions,
watch history, selectors), api (REST verbs), apply (server-side apply, managedFields, patches),
kinds (defaults, validation, immutable fields, CR schemas, tables), watch (streams), rollout
(simulated controllers). Every API request is appended to --log as one JSON line (method, path,
query, contentType, status, user, fieldManager, userAgent; the body too with --log-bodies).
/_kubeapi/... is a control API for tests (no auth): reset, dump objects, the request log,
settings (delays, rollout speed, watch window, ...), injected faults, forbidden requests,
watch-history compaction, bookmarks now, closing every watch. See docs/kubeapi.md.
"""
import argparse
import collections
import http.server
import json
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api  # noqa: E402
import openapi  # noqa: E402
import apierrors as E  # noqa: E402
import watch  # noqa: E402
from discovery import VERSION_DOC, api_versions_doc  # noqa: E402
from rollout import Controllers  # noqa: E402
from storage import now_rfc3339  # noqa: E402

PUBLIC = ("/version", "/healthz", "/readyz", "/livez")
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, socket.timeout)):
            return  # a client that failed the TLS handshake or went away: nothing to report
        super().handle_error(request, client_address)


class Control:
    """Server-wide mutable state that is not Kubernetes state."""

    def __init__(self, args, state):
        self.args = args
        self.state = state
        self.lock = threading.Lock()
        self.requests = collections.deque(maxlen=20000)
        self.faults = []
        self.forbid = []
        self.log_file = open(args.log, "a", buffering=1) if args.log else None

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry, sort_keys=True) + "\n")


def describe(method, path, query):
    """(verb, group, resource, namespace, name, subresource) of an API path, or None."""
    p = api.parse_path(path)
    if p is None:
        return None
    group, _, rest = p
    ns = name = sub = ""
    if rest and rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    if not rest:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    watching = query.get("watch") in ("1", "true")
    if method == "GET":
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = VERBS.get(method, method.lower())
    return verb, group, plural, ns, name, sub


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi"
    sys_version = ""

    def log_message(self, fmt, *args):  # the JSON request log replaces the default stderr lines
        pass

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()  # in this thread, so a slow client never blocks accept()
            self.request.settimeout(None)
        super().setup()

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ plumbing
    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline().strip()
                n = int(line.split(b";")[0], 16) if line else 0
                if n == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, obj, extra_headers=None):
        body = (json.dumps(obj) + "\n").encode() if obj is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (extra_headers or {}).items():
            for one in (v if isinstance(v, list) else [v]):
                self.send_header(k, one)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        self.status_code = code

    def _user(self):
        """The authenticated user, or None."""
        a = self.server.args
        if not a.token and not a.client_ca:
            return "admin"
        auth = self.headers.get("Authorization", "")
        if a.token and auth == "Bearer " + a.token:
            return a.token_user
        if a.client_ca and isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            return v
                return "client-cert"
        return None

    def _closed(self):
        sock = self.connection
        try:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return False
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(0)
                try:
                    return sock.recv(1) == b""
                except (ssl.SSLWantReadError, BlockingIOError):
                    return False
                finally:
                    sock.settimeout(None)
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # ------------------------------------------------------------------ dispatch
    def dispatch(self):
        ctl = self.server.control
        state = self.server.state
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        self.status_code = 0
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path.startswith("/_kubeapi/") or path == "/_kubeapi":
            try:
                self._control(path, query, body)
            except E.StatusError as e:
                self._send(e.code, e.status())
            except Exception as e:  # a control-API bug must answer, not hang the test
                self._send(500, E.internal(str(e)).status())
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        entry = {"time": now_rfc3339(), "method": self.command, "path": path, "query": query,
                 "contentType": ctype, "userAgent": self.headers.get("User-Agent", "")}
        if query.get("fieldManager"):
            entry["fieldManager"] = query["fieldManager"]
        imp = self.headers.get("Impersonate-User")
        if imp:
            entry["impersonate"] = imp
        if self.server.args.log_bodies and body:
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body.decode("utf-8", "replace")
        self._entry, self._logged = entry, False
        try:
            user = self._user()
            entry["user"] = user or ""
            if path not in PUBLIC and user is None:
                raise E.unauthorized()
            self._faults(self.command + " " + path + ("?" + u.query if u.query else ""))
            if state.settings.latency_ms:
                time.sleep(state.settings.latency_ms / 1000.0)
            self._check_forbidden(imp or user, path, query)
            self._api(path, query, body, ctype)
        except E.StatusError as e:
            self._send(e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            tb = traceback.format_exc()
            sys.stderr.write(tb)
            sys.stderr.flush()
            try:
                self._send(500, E.internal(tb.strip().splitlines()[-1]).status())
            except OSError:
                pass
        entry["status"] = self.status_code
        if not self._logged:
            ctl.record(entry)

    def _faults(self, line):
        ctl = self.server.control
        hit = None
        with ctl.lock:
            for f in ctl.faults:
                if f.get("count", 1) == 0:
                    continue
                if f.get("method") and f["method"] != self.command:
                    continue
                if not re.search(f.get("path", ""), line):
                    continue
                if f.get("count", 1) > 0:
                    f["count"] = f.get("count", 1) - 1
                hit = dict(f)
                break
        if hit is None:
            return
        if hit.get("delayMs"):
            time.sleep(hit["delayMs"] / 1000.0)
        code = hit.get("code")
        if code:
            headers = {}
            if hit.get("retryAfter") is not None:
                headers["Retry-After"] = str(hit["retryAfter"])
            reason = hit.get("reason") or E.FAULT_REASONS.get(code, "InternalError")
            raise E.StatusError(code, reason, hit.get("message") or "injected fault (%s)" % reason,
                                hit.get("details"), headers)

    def _check_forbidden(self, user, path, query):
        ctl = self.server.control
        if not ctl.forbid:
            return
        d = describe(self.command, path, query)
        if d is None:
            return
        verb, group, plural, ns, name, sub = d
        for r in list(ctl.forbid):
            if r.get("user") and r["user"] != user:
                continue
            if r.get("verb") and r["verb"] != verb:
                continue
            if r.get("resource") and r["resource"] != plural:
                continue
            if r.get("group") is not None and r.get("group") != group:
                continue
            if r.get("namespace") and r["namespace"] != ns:
                continue
            what = plural + ("." + group if group else "")
            msg = '%s%s is forbidden: User "%s" cannot %s resource "%s"%s in API group "%s"' % (
                what, ' "%s"' % name if name else "", user, verb, plural,
                '' if not sub else ' subresource "%s"' % sub, group)
            msg += ' in the namespace "%s"' % ns if ns else " at the cluster scope"
            details = {"kind": plural}
            if name:
                details["name"] = name
            if group:
                details["group"] = group
            raise E.StatusError(403, "Forbidden", msg, details)

    def _api(self, path, query, body, ctype):
        state = self.server.state
        if self.command not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise E.method_not_allowed()
        p = path.rstrip("/") or "/"
        if p == "/version":
            return self._send(200, VERSION_DOC)
        if p in ("/healthz", "/readyz", "/livez"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            self.status_code = 200
            return
        if p == "/openapi/v2":
            with state.store.lock:
                if openapi.PROTOBUF in (self.headers.get("Accept") or ""):
                    data = openapi.protobuf(state.registry)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.status_code = 200
                    return
                return self._send(200, openapi.document(state.registry))
        if p == "/api":
            host = "%s:%d" % self.server.server_address[:2]
            return self._send(200, api_versions_doc(host))
        if p == "/apis":
            with state.store.lock:
                return self._send(200, state.registry.group_list_doc())
        parts = p.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "apis":
            with state.store.lock:
                doc = state.registry.group_doc(parts[1])
            if doc is None:
                raise E.not_found_path(p)
            return self._send(200, doc)
        req = api.Request(self.command, p, query, body, ctype, self.headers.get("Accept"),
                          self.headers.get("User-Agent"))
        result = api.handle(state, req)
        if isinstance(result, api.WatchSpec):
            return self._stream(result)
        code, obj = result
        return self._send(code, obj, {"Warning": ['299 - "%s"' % w.replace('"', '\\"') for w in req.warnings]})

    def _stream(self, spec):
        state = self.server.state
        watch.check(state, spec)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.status_code = 200
        # Log the watch now: it may last for the whole test.
        self._entry["status"] = 200
        self.server.control.record(self._entry)
        self._logged = True
        self.close_connection = True

        def send(ev):
            data = (json.dumps(ev) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        try:
            watch.run(state, spec, send, self._closed)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    # ------------------------------------------------------------------ control API
    def _control(self, path, query, body):
        ctl = self.server.control
        state = self.server.state
        what = path[len("/_kubeapi/"):].strip("/")
        data = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                raise E.bad_request("control request body must be JSON")
        m = self.command
        if what == "healthz":
            return self._send(200, {"ok": True})
        if what == "reset" and m == "POST":
            state.reset()
            with ctl.lock:
                ctl.requests.clear()
                ctl.faults = []
                ctl.forbid = []
            return self._send(200, {"ok": True})
        if what == "objects" and m == "GET":
            with state.store.lock:
                items = [o for k, o in sorted(state.store.objects.items())
                         if (not query.get("group") or k[0] == query["group"] or (query["group"] == "core" and not k[0]))
                         and (not query.get("resource") or k[1] == query["resource"])
                         and (not query.get("namespace") or k[2] == query["namespace"])]
                return self._send(200, {"resourceVersion": str(state.store.rv), "items": items})
        if what == "requests":
            if m == "DELETE":
                with ctl.lock:
                    ctl.requests.clear()
                return self._send(200, {"ok": True})
            with ctl.lock:
                return self._send(200, {"items": list(ctl.requests)})
        if what == "settings":
            if m in ("POST", "PUT", "PATCH"):
                with state.store.lock:
                    state.settings.update(data or {})
                    state.store.set_window(int(state.settings.watch_window))
                    state.store.cond.notify_all()
            return self._send(200, state.settings.to_json())
        if what == "faults":
            with ctl.lock:
                if m == "DELETE":
                    ctl.faults = []
                elif m in ("POST", "PUT"):
                    rules = data if isinstance(data, list) else [data]
                    for r in rules:
                        if not isinstance(r, dict):
                            raise E.bad_request("a fault rule is an object")
                        re.compile(r.get("path", ""))
                    ctl.faults.extend(rules)
                return self._send(200, {"items": ctl.faults})
        if what == "forbid":
            with ctl.lock:
                if m == "DELETE":
                    ctl.forbid = []
                elif m in ("POST", "PUT"):
                    ctl.forbid.extend(data if isinstance(data, list) else [data])
                return self._send(200, {"items": ctl.forbid})
        if what == "compact" and m == "POST":
            state.store.compact()
            return self._send(200, {"floor": str(state.store.floor)})
        if what == "bookmark" and m == "POST":
            with state.store.lock:
                state.store.bookmark_now += 1
                state.store.cond.notify_all()
            return self._send(200, {"resourceVersion": str(state.store.rv)})
        if what == "close-watches" and m == "POST":
            with state.store.lock:
                state.store.epoch += 1
                state.store.cond.notify_all()
            return self._send(200, {"ok": True})
        raise E.not_found_path(path)


def write_kubeconfig(path, url, args):
    cluster = {"server": url}
    if url.startswith("https"):
        if args.kubeconfig_ca:
            cluster["certificate-authority"] = os.path.abspath(args.kubeconfig_ca)
        else:
            cluster["insecure-skip-tls-verify"] = True
    user = {}
    if args.token:
        user["token"] = args.token
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "kubeapi", "preferences": {},
           "clusters": [{"name": "kubeapi", "cluster": cluster}],
           "users": [{"name": "kubeapi", "user": user}],
           "contexts": [{"name": "kubeapi", "context": {"cluster": "kubeapi", "user": "kubeapi", "namespace": "default"}}]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Kubernetes API test server (see docs/kubeapi.md)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--log", help="append one JSON line per API request here")
    ap.add_argument("--log-bodies", action="store_true", help="include request bodies in the log")
    ap.add_argument("--token", help="require this bearer token (also accepts client certs with --client-ca)")
    ap.add_argument("--token-user", default="admin", help="the user the token authenticates as")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    ap.add_argument("--client-ca", help="accept client certificates signed by this CA as authentication")
    ap.add_argument("--write-kubeconfig", help="write a kubeconfig for this server here once listening")
    ap.add_argument("--kubeconfig-ca", help="CA file the written kubeconfig trusts (else insecure-skip-tls-verify)")
    ap.add_argument("--crd-establish-delay-ms", type=int, default=0)
    ap.add_argument("--rollout-step-ms", type=int, default=100)
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiplies progressDeadlineSeconds (0.01: 600 s become 6 s)")
    ap.add_argument("--watch-window", type=int, default=1000, help="watch events kept for resuming")
    ap.add_argument("--bookmark-interval-ms", type=int, default=5000)
    ap.add_argument("--watch-expired-mode", choices=("event", "http"), default="event")
    ap.add_argument("--no-gc", action="store_true", help="no garbage collection, namespace or CRD cleanup")
    ap.add_argument("--gc-delay-ms", type=int, default=0)
    ap.add_argument("--no-controllers", action="store_true", help="no rollout simulation (tests write status)")
    ap.add_argument("--nodes", type=int, default=1, help="node count DaemonSets schedule on")
    ap.add_argument("--latency-ms", type=int, default=0, help="delay every API request")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        ap.error("--client-ca needs --tls-cert/--tls-key")

    settings = api.Settings()
    settings.crd_establish_delay_ms = args.crd_establish_delay_ms
    settings.rollout_step_ms = args.rollout_step_ms
    settings.time_scale = args.time_scale
    settings.watch_window = args.watch_window
    settings.bookmark_interval_ms = args.bookmark_interval_ms
    settings.watch_expired_mode = args.watch_expired_mode
    settings.gc = not args.no_gc
    settings.gc_delay_ms = args.gc_delay_ms
    settings.controllers = not args.no_controllers
    settings.nodes = args.nodes
    settings.latency_ms = args.latency_ms
    state = api.State(settings)

    srv = Server((args.host, args.port), Handler)
    srv.args = args
    srv.state = state
    srv.control = Control(args, state)
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    port = srv.server_address[1]
    Controllers(state).start()
    url = "%s://%s:%d" % (scheme, args.host, port)
    if args.write_kubeconfig:
        write_kubeconfig(args.write_kubeconfig, url, args)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("listening on %s:%d (%s)" % (args.host, port, url), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
