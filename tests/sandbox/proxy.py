"""An HTTP proxy in front of the emulator that records requests and can fail or edit some.

Tests point a module's ``endpoint_url`` at ``RecordingProxy.url`` to count the
requests it really sends (e.g. zero writes on a re-run), to inject server
errors for chosen requests (e.g. 500 for some copies) and to change the
emulator's answers (e.g. a listing page without its continuation token),
which no emulator setting can do.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
WRITE_METHODS = {"PUT", "POST", "DELETE", "PATCH"}


class RecordedRequest(tuple):
    """(method, path, query) with the path percent-decoded; also .headers."""

    __slots__ = ()

    def __new__(cls, method, path, query, headers):
        return super().__new__(cls, (method, path, query, headers))

    method = property(lambda self: self[0])
    path = property(lambda self: self[1])
    query = property(lambda self: self[2])
    headers = property(lambda self: self[3])

    @property
    def is_write(self):
        return self.method in WRITE_METHODS


class RecordingProxy:
    def __init__(self, upstream_url):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port or 80)
        self.requests = []
        self._lock = threading.Lock()
        self._fail_when = None
        self._edit_answer = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self):
                body = self._body()
                raw_path, _sep, query = self.path.partition("?")
                record = RecordedRequest(self.command, unquote(raw_path), query, dict(self.headers))
                with proxy._lock:
                    proxy.requests.append(record)
                    fail_when = proxy._fail_when
                    edit_answer = proxy._edit_answer
                answer = fail_when(record.method, record.path, record.query) if fail_when else None
                if answer:
                    # a status, or (status, body): e.g. S3's errors sent with 200
                    status, payload = answer if isinstance(answer, tuple) else (answer, (
                        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InjectedFailure</Code>"
                        b"<Message>failure injected by the test proxy</Message></Error>"))
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    if edit_answer:
                        payload = edit_answer(record.method, record.path, record.query, payload) or payload
                    self.send_response(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() not in HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="recording-proxy", daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def fail_when(self, predicate):
        """predicate(method, path, query) -> HTTP status (or (status, body)) to answer instead, or None to forward."""
        with self._lock:
            self._fail_when = predicate

    def edit_answers(self, editor):
        """editor(method, path, query, body) -> the body to answer instead of the upstream's, or None to keep it."""
        with self._lock:
            self._edit_answer = editor

    def clear(self):
        with self._lock:
            self.requests = []
            self._fail_when = None
            self._edit_answer = None

    def writes(self):
        with self._lock:
            return [r for r in self.requests if r.is_write]

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
