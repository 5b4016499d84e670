# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Directus (from npm) for the end-to-end tests.

* ``runtime_problem()``  -> None, or the reason Directus cannot run here (no Node >= 18 / npm).
* ``ensure_installed()`` -> installs ``directus@11.3.5`` once into a cache directory outside the
  repository (``$CASPER_DIRECTUS_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/casper-directus-promote``),
  guarded by a file lock so parallel runs wait for each other instead of clashing; returns the CLI path.
* ``DirectusApp``        -> bootstrap / start / health wait / stop one instance on a free loopback
  port, against a given MariaDB database and an S3 bucket on an emulator (path-style endpoint).
* ``DirectusClient``     -> a tiny REST client (stdlib only): login, token, JSON calls, uploads, raw bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

DIRECTUS_VERSION = "11.3.5"
MIN_NODE_MAJOR = 18
INSTALL_MARKER = ".casper-install-complete"


# --------------------------------------------------------------------------- runtime and install

def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v?(\d+)\.", out.strip())
    return int(match.group(1)) if match else None


def runtime_problem() -> str | None:
    """Why Directus cannot run on this machine, or None when Node >= 18 and npm are available."""
    node = shutil.which("node")
    if not node:
        return "node is not installed (Directus %s needs Node >= %d)" % (DIRECTUS_VERSION, MIN_NODE_MAJOR)
    major = _node_major(node)
    if major is None:
        return "cannot read the version of %s" % node
    if major < MIN_NODE_MAJOR:
        return "node %d found at %s; Directus %s needs Node >= %d" % (major, node, DIRECTUS_VERSION, MIN_NODE_MAJOR)
    if not shutil.which("npm"):
        return "npm is not installed (needed once to install directus@%s into the cache)" % DIRECTUS_VERSION
    return None


def cache_root() -> Path:
    override = os.environ.get("CASPER_DIRECTUS_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "casper-directus-promote"


def install_dir(version: str = DIRECTUS_VERSION) -> Path:
    return cache_root() / ("directus-%s" % version)


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float, log):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    log("waiting for another run holding %s" % path)
                    announced = True
                if time.monotonic() > deadline:
                    raise TimeoutError("could not lock %s within %ss" % (path, timeout))
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _cli_path(directory: Path) -> Path:
    return directory / "node_modules" / "directus" / "cli.js"


def _installed_version(directory: Path) -> str | None:
    try:
        with open(directory / "node_modules" / "directus" / "package.json", encoding="utf-8") as handle:
            return json.load(handle).get("version")
    except (OSError, ValueError):
        return None


def is_installed(version: str = DIRECTUS_VERSION) -> bool:
    directory = install_dir(version)
    return ((directory / INSTALL_MARKER).is_file() and _cli_path(directory).is_file()
            and _installed_version(directory) == version)


def ensure_installed(version: str = DIRECTUS_VERSION, log=print, timeout: float = 1800) -> Path:
    """Install directus@<version> into the cache (once; locked) and return the path of its cli.js."""
    problem = runtime_problem()
    if problem:
        raise RuntimeError(problem)
    directory = install_dir(version)
    with _file_lock(cache_root() / ("directus-%s.lock" % version), timeout, log):
        if is_installed(version):
            return _cli_path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / INSTALL_MARKER).unlink(missing_ok=True)
        with open(directory / "package.json", "w", encoding="utf-8") as handle:
            json.dump({"name": "casper-directus-promote-e2e-cache", "private": True,
                       "dependencies": {"directus": version}}, handle)
        log("installing directus@%s into %s (first run only; ~470 MB, several minutes)" % (version, directory))
        started = time.monotonic()
        with open(directory / "npm-install.log", "w", encoding="utf-8") as out:
            # Install scripts must run: isolated-vm (loaded at start-up) fetches its prebuilt binary
            # there (or compiles it); with --ignore-scripts `directus bootstrap` fails to start.
            proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=warn"],
                                  cwd=directory, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if proc.returncode != 0 or _installed_version(directory) != version:
            tail = (directory / "npm-install.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError("npm install directus@%s failed (rc=%s):\n%s" % (version, proc.returncode, tail))
        (directory / INSTALL_MARKER).write_text("%s installed in %.0fs\n" % (version, time.monotonic() - started))
        log("installed directus@%s in %.0f s" % (version, time.monotonic() - started))
        return _cli_path(directory)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- REST client

class DirectusError(Exception):
    def __init__(self, method, url, status, body):
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__("%s %s -> HTTP %s: %s" % (method, url, status, body[:800]))


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None


class DirectusClient:
    """Minimal Directus REST client. ``token`` is a static or access token (sent as a Bearer header)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def url(self, path: str, params: dict | None = None) -> str:
        url = self.base_url + "/" + path.lstrip("/")
        if params:
            encoded = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()}
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(encoded)
        return url

    def raw(self, method: str, path: str, *, params=None, body: bytes | None = None, json_body=None,
            headers: dict | None = None, token: str | None = None, auth: bool = True) -> Response:
        url = self.url(path, params)
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        tok = token if token is not None else self.token
        if auth and tok:
            hdrs["Authorization"] = "Bearer %s" % tok
        req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Response(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers.items()), err.read())

    def call(self, method: str, path: str, *, expect=(200, 204), **kw):
        resp = self.raw(method, path, **kw)
        if resp.status not in expect:
            raise DirectusError(method, self.url(path, kw.get("params")), resp.status,
                                resp.body.decode("utf-8", "replace"))
        doc = resp.json()
        return doc.get("data") if isinstance(doc, dict) and "data" in doc else doc

    def get(self, path, params=None, **kw):
        return self.call("GET", path, params=params, **kw)

    def post(self, path, data=None, **kw):
        return self.call("POST", path, json_body=data if data is not None else {}, **kw)

    def patch(self, path, data, **kw):
        return self.call("PATCH", path, json_body=data, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    # -- auth
    def login_response(self, email: str, password: str) -> Response:
        return self.raw("POST", "/auth/login", json_body={"email": email, "password": password}, auth=False)

    def login(self, email: str, password: str) -> "DirectusClient":
        """Log in (creates a session row) and keep the access token. Returns self."""
        resp = self.login_response(email, password)
        if resp.status != 200:
            raise DirectusError("POST", self.url("/auth/login"), resp.status, resp.body.decode("utf-8", "replace"))
        self.token = resp.json()["data"]["access_token"]
        return self

    def as_token(self, token: str) -> "DirectusClient":
        return DirectusClient(self.base_url, token, self.timeout)

    # -- files
    def upload(self, filename: str, content: bytes, content_type: str, **fields) -> dict:
        """multipart POST /files; extra fields (title, folder, ...) are sent before the file part."""
        boundary = "----casper%s" % uuid.uuid4().hex
        parts = []
        for key, value in fields.items():
            if value is None:
                continue
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                          % (boundary, key, value)).encode("utf-8"))
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                      "Content-Type: %s\r\n\r\n" % (boundary, filename, content_type)).encode("utf-8"))
        parts.append(content)
        parts.append(("\r\n--%s--\r\n" % boundary).encode("utf-8"))
        return self.call("POST", "/files", body=b"".join(parts),
                         headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})

    def asset(self, file_id: str, **params) -> Response:
        return self.raw("GET", "/assets/%s" % file_id, params=params or None)


# --------------------------------------------------------------------------- one Directus instance

class DirectusApp:
    """One Directus instance (bootstrap, start, health wait, stop) on a free loopback port.

    db: dict(host, port, user, password, database); s3: dict(bucket, endpoint_url, access_key,
    secret_key, region, root). workdir holds the log and Directus' working directory.
    """

    def __init__(self, name: str, *, db: dict, s3: dict, admin_email: str, admin_password: str,
                 workdir, port: int | None = None, cli: Path | None = None, extra_env: dict | None = None,
                 storage_location: str = "s3"):
        self.name = name
        self.db = dict(db)
        self.s3 = dict(s3)
        self.admin_email = admin_email
        self.admin_password = admin_password
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.cli = Path(cli) if cli else _cli_path(install_dir())
        self.extra_env = dict(extra_env or {})
        self.location = storage_location
        self.key = str(uuid.uuid4())
        self.secret = uuid.uuid4().hex + uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        self.home = self.workdir / ("directus-%s" % name)
        self.log_path = self.workdir / ("directus-%s.log" % name)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def env(self) -> dict:
        loc = self.location.upper()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.workdir)),
            "NODE_ENV": "production",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PUBLIC_URL": self.url,
            "KEY": self.key,
            "SECRET": self.secret,
            "ADMIN_EMAIL": self.admin_email,
            "ADMIN_PASSWORD": self.admin_password,
            "TELEMETRY": "false",
            "LOG_LEVEL": "warn",
            "LOG_STYLE": "raw",
            "DB_CLIENT": "mysql",
            "DB_HOST": str(self.db["host"]),
            "DB_PORT": str(self.db.get("port", 3306)),
            "DB_DATABASE": self.db["database"],
            "DB_USER": self.db["user"],
            "DB_PASSWORD": self.db.get("password") or "",
            # Data + schema cache in memory, purged on API writes: a database changed behind
            # Directus' back stays invisible until /utils/cache/clear (what the promotion must do).
            "CACHE_ENABLED": "true",
            "CACHE_STORE": "memory",
            "CACHE_AUTO_PURGE": "true",
            "CACHE_SCHEMA": "true",
            "CACHE_TTL": "30m",
            "RATE_LIMITER_ENABLED": "false",
            "WEBSOCKETS_ENABLED": "false",
            "EXTENSIONS_PATH": str(self.home / "extensions"),
            "EXTENSIONS_AUTO_RELOAD": "false",
            "STORAGE_LOCATIONS": self.location,
            "STORAGE_%s_DRIVER" % loc: "s3",
            "STORAGE_%s_KEY" % loc: self.s3["access_key"],
            "STORAGE_%s_SECRET" % loc: self.s3["secret_key"],
            "STORAGE_%s_BUCKET" % loc: self.s3["bucket"],
            "STORAGE_%s_REGION" % loc: self.s3.get("region") or "us-east-1",
            "STORAGE_%s_ENDPOINT" % loc: self.s3["endpoint_url"],
            "STORAGE_%s_FORCE_PATH_STYLE" % loc: "true",
        }
        if self.s3.get("root"):
            env["STORAGE_%s_ROOT" % loc] = self.s3["root"]
        env.update(self.extra_env)
        return env

    def _log_tail(self, limit=4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    def _prepare_home(self) -> None:
        """Directus' working directory: a package.json and an empty extensions folder (no warnings)."""
        (self.home / "extensions").mkdir(parents=True, exist_ok=True)
        package = self.home / "package.json"
        if not package.exists():
            package.write_text(json.dumps({"name": "directus-%s" % self.name, "private": True}) + "\n")

    def _node(self, *args, timeout=300) -> subprocess.CompletedProcess:
        self._prepare_home()
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write("\n$ directus %s\n" % " ".join(args))
            log.flush()
            return subprocess.run(["node", str(self.cli), *args], cwd=self.home, env=self.env(),
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)

    def bootstrap(self, timeout=300) -> None:
        """Create Directus' tables, run the migrations and create the admin user (idempotent)."""
        proc = self._node("bootstrap", timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError("directus bootstrap (%s) failed rc=%s:\n%s" % (self.name, proc.returncode, self._log_tail()))

    def start(self, timeout=120) -> "DirectusApp":
        if self.proc and self.proc.poll() is None:
            return self
        self._prepare_home()
        log = open(self.log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        log.write("\n$ directus start (port %d)\n" % self.port)
        log.flush()
        self.proc = subprocess.Popen(["node", str(self.cli), "start"], cwd=self.home, env=self.env(),  # pylint: disable=consider-using-with
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_healthy(timeout)
        return self

    def health(self) -> Response:
        return DirectusClient(self.url, timeout=5).raw("GET", "/server/health", auth=False)

    def wait_healthy(self, timeout=120) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("directus %s exited rc=%s during start:\n%s"
                                   % (self.name, self.proc.returncode, self._log_tail()))
            try:
                resp = self.health()
                last = resp.status
                if resp.status == 200 and resp.json().get("status") == "ok":
                    return resp.json()
            except (OSError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise TimeoutError("directus %s not healthy after %ss (last: %s):\n%s" % (self.name, timeout, last, self._log_tail()))

    def stop(self, timeout=20) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def client(self, token: str | None = None) -> DirectusClient:
        return DirectusClient(self.url, token)

    def admin(self) -> DirectusClient:
        return self.client().login(self.admin_email, self.admin_password)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
