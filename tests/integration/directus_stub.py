# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small local HTTP stand-in for the Directus endpoints the promote role calls.

Only what the role needs, answered the way Directus 11 answers it:

* ``GET  /server/health``            -> 200 ``{"status": "ok"}`` (``health`` attribute; 503 when not ok)
* ``GET  /server/info``              -> ``data.project`` for everyone, ``data.version`` for an admin token
* ``POST /utils/cache/clear[?system]`` -> 200 for the admin token, 401 without a token, 403 for another one

Every request is recorded in ``calls`` as ``Call(method, path, query, authorized)`` — ``authorized``
is whether the admin token was sent — and never the token itself, so tests can assert that the
cache was cleared once, with the right token, and only when the promotion changed something.
The real Directus comes with the end-to-end tests.
"""

from __future__ import annotations

import json
import threading
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Call = namedtuple("Call", "method path query authorized")


class DirectusStub:
    def __init__(self, admin_token, version="11.3.5", project_name="Directus"):
        self.admin_token = admin_token
        self.version = version
        self.project_name = project_name
        self.health = "ok"
        self.cache_clear_status = None  # set e.g. 500 to make the cache clear fail
        self.calls = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                stub._handle(self, "GET")

            def do_POST(self):
                stub._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="directus-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return "http://%s:%d" % (host, port)

    # -- recording ---------------------------------------------------------------------
    def clear(self):
        with self._lock:
            self.calls.clear()

    def calls_to(self, method, path):
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path == path]

    # -- the endpoints -------------------------------------------------------------------
    def _handle(self, handler, method):
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        auth = handler.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            if length:
                handler.rfile.read(length)
        with self._lock:
            self.calls.append(Call(method, parts.path, query, token == self.admin_token))

        route = (method, parts.path.rstrip("/"))
        if route == ("GET", "/server/health"):
            status = 200 if self.health in ("ok", "warn") else 503
            return self._send(handler, status, {"status": self.health}, "application/health+json")
        if route == ("GET", "/server/info"):
            if token is not None and token != self.admin_token:
                return self._error(handler, 401, "INVALID_CREDENTIALS", "Invalid user credentials.")
            data = {"project": {"project_name": self.project_name, "default_language": "en-US"}}
            if token == self.admin_token:
                data["version"] = self.version  # Directus 10/11: admin-only, at data.version
            return self._send(handler, 200, {"data": data})
        if route == ("POST", "/utils/cache/clear"):
            if token is None:
                return self._error(handler, 401, "INVALID_CREDENTIALS", "Invalid user credentials.")
            if token != self.admin_token:
                return self._error(handler, 403, "FORBIDDEN", "You don't have permission to access this.")
            if self.cache_clear_status:
                return self._error(handler, self.cache_clear_status, "INTERNAL_SERVER_ERROR", "An unexpected error occurred.")
            return self._send(handler, 200, None)
        return self._error(handler, 404, "ROUTE_NOT_FOUND", "Route %s doesn't exist." % parts.path)

    @staticmethod
    def _error(handler, status, code, message):
        return DirectusStub._send(handler, status, {"errors": [{"message": message, "extensions": {"code": code}}]})

    @staticmethod
    def _send(handler, status, body, content_type="application/json; charset=utf-8"):
        payload = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if payload:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
