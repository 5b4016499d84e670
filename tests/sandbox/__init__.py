"""The local sandbox: two MariaDB servers (staging, prod) and an S3 + CloudFront emulator.

    from sandbox import Sandbox
    with Sandbox() as sb:
        sb.staging.connect(), sb.prod.connect(), sb.aws.client("s3"), sb.inventory_dir

It also writes an Ansible inventory for the two environments, with passwords
in vault-encrypted files, so playbooks run against it exactly as they would
against real environments. ``python -m sandbox up|down|status`` drives it from
a shell (the demo uses that).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .inventory import write_inventory
from .servers import MariaDBServer, MotoServer, SandboxError, running_as_root

__all__ = ["Sandbox", "SandboxError"]

STATE_FILE = "sandbox.json"
TEMP_PREFIX = "dpsb-"
BUCKETS = {"staging": "directus-staging", "prod": "directus-prod"}
PROD_ALIAS = "cdn.prod.example.test"


class Sandbox:
    def __init__(self, base_dir=None):
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # As root, mariadbd runs as mysql and must traverse every parent of its datadir; a
        # checkout in /root or in a 0700 mktemp -d is out of its reach, the system temp dir is not.
        if base_dir is not None and running_as_root():
            self.server_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "db-"))
        else:
            self.server_dir = self.base_dir
        self.staging = MariaDBServer("staging", self.server_dir, server_id=101)
        self.prod = MariaDBServer("prod", self.server_dir, server_id=202)
        self.aws = MotoServer(self.base_dir)
        self.buckets = dict(BUCKETS)
        self.distribution_id = None
        self.distribution_domain = None
        self.inventory_dir = self.base_dir / "inventory"
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        reap_stale()
        if running_as_root():
            # mariadbd runs as mysql and must reach its datadir below this one.
            os.chmod(self.server_dir, 0o755)
        for directory in self._marked_dirs():
            (directory / "owner.pid").write_text(str(os.getpid()))
        atexit.register(self.stop)
        _exit_cleanly_on_sigterm()
        try:
            errors = []

            def start(server):
                try:
                    server.start()
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=start, args=(s,)) for s in (self.staging, self.prod, self.aws)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            self._create_aws_resources()
            write_inventory(self)
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_aws_resources(self):
        s3 = self.aws.client("s3")
        for bucket in self.buckets.values():
            s3.create_bucket(Bucket=bucket)
        cloudfront = self.aws.client("cloudfront")
        origin = "%s.s3.amazonaws.com" % self.buckets["prod"]
        created = cloudfront.create_distribution(DistributionConfig={
            "CallerReference": "sandbox-prod",
            "Aliases": {"Quantity": 1, "Items": [PROD_ALIAS]},
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "assets", "DomainName": origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "assets", "ViewerProtocolPolicy": "redirect-to-https",
                                     "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                     "TrustedSigners": {"Enabled": False, "Quantity": 0}},
            "Comment": "directus prod assets (sandbox)",
            "Enabled": True,
        })
        self.distribution_id = created["Distribution"]["Id"]
        self.distribution_domain = created["Distribution"]["DomainName"]

    def _write_state(self):
        state = {
            "base_dir": str(self.base_dir),
            "server_dir": str(self.server_dir),
            "inventory": str(self.inventory_dir / "hosts.yml"),
            "vault_password_file": str(self.inventory_dir / ".vault_pass"),
            "endpoint_url": self.aws.endpoint_url,
            "distribution_id": self.distribution_id,
            "buckets": self.buckets,
            "pids": [p.process.pid for p in (self.staging, self.prod, self.aws)],
            "owner": os.getpid(),
        }
        # Also beside the servers, so that reap_stale() finds them after a kill -9.
        for directory in self._marked_dirs():
            (directory / STATE_FILE).write_text(json.dumps(state, indent=2))

    def _marked_dirs(self):
        return [self.base_dir] if self.server_dir == self.base_dir else [self.base_dir, self.server_dir]

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        for server in (self.aws, self.prod, self.staging):
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        if self.server_dir != self.base_dir:
            shutil.rmtree(self.server_dir, ignore_errors=True)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        else:
            for name in ("staging", "prod", "moto", "inventory", STATE_FILE, "owner.pid"):
                target = self.base_dir / name
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists():
                    target.unlink()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- convenience -----------------------------------------------------------------
    def server(self, env):
        return {"staging": self.staging, "prod": self.prod}[env]

    def ansible_env(self):
        """Environment for ansible-playbook runs against this sandbox's inventory."""
        env = dict(os.environ)
        env.update({
            "ANSIBLE_VAULT_PASSWORD_FILE": str(self.inventory_dir / ".vault_pass"),
            "ANSIBLE_INVENTORY": str(self.inventory_dir / "hosts.yml"),
        })
        return env


def _exit_cleanly_on_sigterm():
    """Make SIGTERM an ordinary exit, so finally blocks and atexit stop the servers.

    Only where nobody chose a handler already, and only from the main thread
    (the one place Python lets a handler be set).
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum, _frame):
    raise SystemExit(128 + signum)


def reap_stale():
    """Stop servers of sandboxes whose owning process died without tearing down (kill -9)."""
    for directory in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
        owner_file = directory / "owner.pid"
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        try:
            pids = json.loads((directory / STATE_FILE).read_text()).get("pids", [])
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
