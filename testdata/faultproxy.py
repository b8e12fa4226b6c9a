#!/usr/bin/env python3
"""Fault-injecting HTTP reverse proxy for berth's integration tests (stdlib only).

Why: retry and resume logic in berth's registry client can only be shown against a real
registry if something between the two misbehaves on cue. This proxy sits in front of a plain
HTTP registry on loopback and injects exactly the faults a test asks for.

Design: a ThreadingHTTPServer bound to 127.0.0.1:PORT (0 = any free port); once listening it
writes the port to --port-file and prints "listening on 127.0.0.1:PORT". Every request is
forwarded to --upstream over a fresh http.client connection with its method, path, headers
(Host kept, so the registry's absolute Location URLs point back at the proxy) and body
(chunked request bodies are de-chunked and sent with Content-Length). Responses go back with
their status (206 included), headers and body. Faults, matched with re.search against the
string "METHOD /path?query":
  --fail-regex RE --fail-count N [--fail-status 500]
      the first N matching requests get the status and an OCI error body, never reaching the
      registry; later ones pass through.
  --cut-regex RE --cut-after K [--cut-count 1]
      for the first matching request whose upstream answer is a 200 with a body longer than K
      bytes, send the full headers (with the real Content-Length), then K bytes of body, then
      close the socket: the client sees a truncated transfer and must resume with Range.
  --delay-regex RE --delay-ms N
      every matching request is answered slowly: the headers at once, then the body in 20
      pieces spread over N ms (a HEAD or empty body waits N ms before the headers), so a test
      can act while a transfer is in flight.
Every request is appended to --log as one line:
  METHOD PATH STATUS range=<Range header or -> [injected|cut@K]
"""
import argparse
import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}


class Faults:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.fail_re = re.compile(args.fail_regex) if args.fail_regex else None
        self.fail_left = args.fail_count
        self.fail_status = args.fail_status
        self.cut_re = re.compile(args.cut_regex) if args.cut_regex else None
        self.cut_after = args.cut_after
        self.cut_left = args.cut_count
        self.delay_re = re.compile(args.delay_regex) if args.delay_regex else None
        self.delay_s = args.delay_ms / 1000.0

    def delay_for(self, line):
        if self.delay_re and self.delay_s > 0 and self.delay_re.search(line):
            return self.delay_s
        return 0.0

    def take_fail(self, line):
        with self.lock:
            if self.fail_re and self.fail_left > 0 and self.fail_re.search(line):
                self.fail_left -= 1
                return True
        return False

    def may_cut(self, line):
        return bool(self.cut_re and self.cut_re.search(line))

    def take_cut(self):
        with self.lock:
            if self.cut_left > 0:
                self.cut_left -= 1
                return True
        return False


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # (host, port)
    faults = None
    log_file = None
    log_lock = threading.Lock()

    def record(self, status, note=""):
        rng = self.headers.get("Range") or "-"
        line = "%s %s %d range=%s%s\n" % (self.command, self.path, status, rng.replace(" ", ""),
                                          (" " + note) if note else "")
        if self.log_file:
            with self.log_lock, open(self.log_file, "a", encoding="utf-8") as f:
                f.write(line)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else None

    def send_plain(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        line = "%s %s" % (self.command, self.path)
        body = self.read_body()
        if self.faults.take_fail(line):
            status = self.faults.fail_status
            err = {"errors": [{"code": "UNKNOWN", "message": "faultproxy: injected %d" % status}]}
            self.record(status, "injected")
            self.send_plain(status, json.dumps(err).encode())
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.record(502, "upstream-error")
            self.send_plain(502, ("faultproxy: upstream: %s\n" % e).encode(), "text/plain")
            return
        finally:
            conn.close()

        delay = self.faults.delay_for(line)
        if delay > 0 and (self.command == "HEAD" or not data):
            time.sleep(delay)
            delay = 0.0
        cut = (self.command == "GET" and resp.status == 200 and
               len(data) > self.faults.cut_after and self.faults.may_cut(line) and
               self.faults.take_cut())
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            # send_response already wrote Date and Server; Content-Length is recomputed below
            if k.lower() in HOP_BY_HOP or k.lower() in ("content-length", "date", "server"):
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut:
            k = self.faults.cut_after
            self.record(resp.status, "cut@%d" % k)
            self.wfile.write(data[:k])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.record(resp.status)
        if self.command != "HEAD":
            self.write_paced(data, delay)

    def write_paced(self, data, delay):
        if delay <= 0 or not data:
            self.wfile.write(data)
            return
        pieces = 20
        step = (len(data) + pieces - 1) // pieces
        for off in range(0, len(data), step):
            self.wfile.write(data[off:off + step])
            self.wfile.flush()
            time.sleep(delay / pieces)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, fmt, *args):
        sys.stderr.write("faultproxy: " + (fmt % args) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the plain HTTP registry")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log", help="append one line per request")
    ap.add_argument("--fail-regex")
    ap.add_argument("--fail-count", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=500)
    ap.add_argument("--cut-regex")
    ap.add_argument("--cut-after", type=int, default=0)
    ap.add_argument("--cut-count", type=int, default=1)
    ap.add_argument("--delay-regex")
    ap.add_argument("--delay-ms", type=int, default=0)
    args = ap.parse_args()

    host, _, port = args.upstream.rpartition(":")
    Proxy.upstream = (host, int(port))
    Proxy.faults = Faults(args)
    Proxy.log_file = args.log
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    srv.daemon_threads = True
    bound = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write("%d\n" % bound)
        os.replace(args.port_file + ".tmp", args.port_file)
    print("listening on 127.0.0.1:%d" % bound, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
