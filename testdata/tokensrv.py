#!/usr/bin/env python3
"""Docker token-auth server for berth's integration tests (stdlib + the openssl CLI only).

Why: docker-registry (distribution 2.8) delegates bearer auth to an external token service and
Debian ships none, so the harness starts this one next to the registry on loopback.

Design: a ThreadingHTTPServer bound to 127.0.0.1:PORT (0 = any free port). Once listening it
writes the port to --port-file (and prints "listening on 127.0.0.1:PORT" on stdout) so the
harness never guesses ports. Tokens are RS256 JWTs signed by `openssl dgst -sha256 -sign` with
the signer certificate in the `x5c` header, which distribution verifies against its
`rootcertbundle`. Policy: the one user given with --creds gets every action it asks for;
anonymous callers get `pull` only; wrong Basic credentials get 401. Both the classic GET flow
(Basic auth, ?service=&scope=) and the OAuth2 POST form (grant_type=password|refresh_token) are
served. Every request is appended to --log as one line "METHOD user=<u|-> scope=<...> status"
(never the password) so tests can assert what a client asked for.
"""
import argparse
import base64
import hmac
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self, key, cert, issuer, service, creds):
        self.key = key
        self.issuer = issuer
        self.service = service
        user, _, password = creds.partition(":")
        self.user = user
        self.password = password
        with open(cert, encoding="ascii") as f:
            self.cert_der = ssl.PEM_cert_to_DER_cert(f.read())
        self.refresh_tokens = set()
        self.lock = threading.Lock()

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), capture_output=True,
                             check=True).stdout
        return signing_input + "." + b64url(sig)

    def check_password(self, user, password):
        return (hmac.compare_digest(user.encode(), self.user.encode()) and
                hmac.compare_digest(password.encode(), self.password.encode()))

    @staticmethod
    def parse_scope(scope):
        """'repository:a/b:pull,push' -> (type, name, [actions]); names may hold ':' (ports)."""
        typ, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if not name:
            name, actions = rest, ""
        return typ, name, [a for a in actions.split(",") if a]

    def token(self, user, scopes, service):
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                if not one:
                    continue
                typ, name, actions = self.parse_scope(one)
                if user is None:
                    actions = [a for a in actions if a == "pull"]
                access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        return self.sign({"iss": self.issuer, "sub": user or "", "aud": service or self.service,
                          "exp": now + 300, "nbf": now - 10, "iat": now,
                          "jti": str(uuid.uuid4()), "access": access})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    issuer = None
    log_file = None
    log_lock = threading.Lock()

    def record(self, user, scopes, status):
        if not self.log_file:
            return
        line = "%s user=%s scope=%s %d\n" % (self.command, user or "-",
                                             "|".join(scopes) or "-", status)
        with self.log_lock, open(self.log_file, "a", encoding="utf-8") as f:
            f.write(line)

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="berth-token"')
        self.end_headers()
        self.wfile.write(body)

    def basic_user(self):
        """None for anonymous, the user name when valid, False when the credentials are wrong."""
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user if self.issuer.check_password(user, password) else False

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        scopes = q.get("scope", [])
        user = self.basic_user()
        if user is False:
            self.record("?", scopes, 401)
            self.reply(401, {"details": "invalid username/password"})
            return
        tok = self.issuer.token(user, scopes, q.get("service", [None])[0])
        self.record(user, scopes, 200)
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        scopes = form.get("scope", [])
        grant = form.get("grant_type", [""])[0]
        user = None
        if grant == "password":
            u = form.get("username", [""])[0]
            p = form.get("password", [""])[0]
            if not self.issuer.check_password(u, p):
                self.record("?", scopes, 401)
                self.reply(401, {"details": "invalid username/password"})
                return
            user = u
        elif grant == "refresh_token":
            rt = form.get("refresh_token", [""])[0]
            with self.issuer.lock:
                ok = rt in self.issuer.refresh_tokens
            if not ok:
                self.record("?", scopes, 401)
                self.reply(401, {"details": "invalid refresh token"})
                return
            user = self.issuer.user
        else:
            self.record("?", scopes, 400)
            self.reply(400, {"details": "unsupported grant_type"})
            return
        tok = self.issuer.token(user, scopes, form.get("service", [None])[0])
        refresh = str(uuid.uuid4())
        with self.issuer.lock:
            self.issuer.refresh_tokens.add(refresh)
        self.record(user, scopes, 200)
        self.reply(200, {"access_token": tok, "token": tok, "refresh_token": refresh,
                         "expires_in": 300})

    def log_message(self, fmt, *args):
        sys.stderr.write("tokensrv: " + (fmt % args) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--key", required=True, help="PEM private key that signs tokens")
    ap.add_argument("--cert", required=True, help="PEM certificate of --key (sent as x5c)")
    ap.add_argument("--issuer", default="berth-test-issuer")
    ap.add_argument("--service", default="berth-registry")
    ap.add_argument("--creds", default="berth:s3cret", help="USER:PASS granted everything")
    ap.add_argument("--log", help="append one line per token request")
    args = ap.parse_args()

    Handler.issuer = TokenIssuer(args.key, args.cert, args.issuer, args.service, args.creds)
    Handler.log_file = args.log
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.replace(args.port_file + ".tmp", args.port_file)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
