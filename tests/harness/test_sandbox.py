"""The sandbox itself: real, separate servers; a real emulator; a real vault; clean teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for every practical purpose.
    try:
        return Path("/proc/%d/stat" % pid).read_text().split()[2] != "Z"
    except OSError:
        return False


def test_databases_are_two_separate_servers(sandbox):
    staging = sandbox.staging.query_one("SELECT @@server_id, @@datadir, @@port, @@socket")
    prod = sandbox.prod.query_one("SELECT @@server_id, @@datadir, @@port, @@socket")
    assert staging[0] != prod[0]
    assert staging[1] != prod[1]
    assert (staging[2], prod[2]) == (sandbox.staging.port, sandbox.prod.port)
    assert staging[2] != prod[2] and staging[3] != prod[3]
    assert sandbox.staging.process.pid != sandbox.prod.process.pid
    # A database created on one server does not exist on the other.
    with sandbox.staging.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE only_on_staging")
    try:
        assert sandbox.prod.query_one("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'only_on_staging'")[0] == 0
    finally:
        with sandbox.staging.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE only_on_staging")


def test_password_user_and_no_anonymous_accounts(sandbox):
    import pymysql

    for server in (sandbox.staging, sandbox.prod):
        assert server.query_one("SELECT COUNT(*) FROM mysql.user WHERE User = ''")[0] == 0
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0] == "directus@127.0.0.1"
        with pytest.raises(pymysql.err.OperationalError) as failure:
            server.connect(password="wrong-" + server.password)
        assert failure.value.args[0] == 1045  # access denied
        # Only the password user and root (with a password, on the socket) remain.
        accounts = server.query_one("SELECT GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host) FROM mysql.user "
                                    "WHERE User NOT IN ('mariadb.sys')")[0]
        assert accounts == "directus@127.0.0.1,directus@localhost,root@localhost"
        with pytest.raises(pymysql.err.OperationalError):
            server.connect(user="root", password="")


def test_emulator_serves_s3_and_cloudfront(sandbox, s3_client, cloudfront_client):
    bucket = sandbox.buckets["staging"]
    s3_client.put_object(Bucket=bucket, Key="sandbox/check é.txt", Body=b"\x00payload", ContentType="text/plain")
    head = s3_client.head_object(Bucket=bucket, Key="sandbox/check é.txt")
    assert head["ContentLength"] == 8 and head["ContentType"] == "text/plain"
    s3_client.delete_object(Bucket=bucket, Key="sandbox/check é.txt")
    names = {b["Name"] for b in s3_client.list_buckets()["Buckets"]}
    assert set(sandbox.buckets.values()) <= names

    distribution = cloudfront_client.get_distribution(Id=sandbox.distribution_id)["Distribution"]
    assert distribution["DistributionConfig"]["Aliases"]["Items"] == ["cdn.prod.example.test"]
    created = cloudfront_client.create_invalidation(
        DistributionId=sandbox.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/sandbox-check"]}, "CallerReference": "sandbox-check-%f" % time.time()})
    fetched = cloudfront_client.get_invalidation(DistributionId=sandbox.distribution_id, Id=created["Invalidation"]["Id"])
    assert fetched["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/sandbox-check"]


def test_inventory_secrets_are_vault_encrypted_and_resolve(sandbox):
    inventory = sandbox.inventory_dir
    for env in ("staging", "prod"):
        vault_text = (inventory / "host_vars" / env / "vault.yml").read_text()
        assert vault_text.startswith("$ANSIBLE_VAULT;1.2;AES256;sandbox")
        assert sandbox.server(env).password not in vault_text
        assert sandbox.aws.secret_key not in vault_text
        plain = (inventory / "host_vars" / env / "vars.yml").read_text()
        assert sandbox.server(env).password not in plain
    assert oct((inventory / ".vault_pass").stat().st_mode & 0o777) == "0o600"

    # ansible itself decrypts it with the sandbox's vault password file.
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "prod", "-i", str(inventory / "hosts.yml"),
         "-m", "ansible.builtin.debug", "-a", "var=directus_db_password", "-o"],
        env=sandbox.ansible_env(), capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert sandbox.prod.password in result.stdout

    # Without the password, the secrets cannot be read.
    env = sandbox.ansible_env()
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE")
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "prod", "-i", str(inventory / "hosts.yml"),
         "-m", "ansible.builtin.debug", "-a", "var=directus_db_password", "-o"],
        env=env, capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode != 0
    assert sandbox.prod.password not in result.stdout + result.stderr


def _assert_gone(state, timeout):
    """Every server of the sandbox stops within ``timeout`` seconds, and its directory is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid_alive(pid) for pid in state["pids"]):
        time.sleep(0.1)
    assert not any(_pid_alive(pid) for pid in state["pids"])
    assert not Path(state["dir"]).exists()


def _start_sandbox_in_subprocess(tmp_path):
    """A child process that starts a sandbox, reports its state and waits to be stopped."""
    script = (
        "import json, sys, time\n"
        "from sandbox import Sandbox\n"
        "sb = Sandbox().start()\n"
        "print(json.dumps({'dir': str(sb.base_dir), 'pids': [sb.staging.process.pid, sb.prod.process.pid, sb.aws.process.pid]}), flush=True)\n"
        "try:\n"
        "    time.sleep(120)\n"
        "finally:\n"
        "    sb.stop()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "collections")]))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, json.loads(line)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_teardown_leaves_no_process_and_no_directory(tmp_path, signum):
    proc, state = _start_sandbox_in_subprocess(tmp_path)
    assert all(_pid_alive(pid) for pid in state["pids"])
    assert Path(state["dir"]).is_dir()
    # SIGINT is Ctrl-C; SIGTERM is what a CI timeout or `kill` sends.
    proc.send_signal(signum)
    proc.wait(60)
    _assert_gone(state, timeout=30)


def test_servers_of_a_killed_owner_are_reaped_by_the_next_sandbox(tmp_path):
    from sandbox import reap_stale

    proc, state = _start_sandbox_in_subprocess(tmp_path)
    proc.kill()  # SIGKILL: no teardown at all
    proc.wait(10)
    assert any(_pid_alive(pid) for pid in state["pids"])
    reap_stale()
    _assert_gone(state, timeout=10)


def test_sandbox_in_a_private_directory_like_a_home_checkout(tmp_path):
    """`make demo` from a clone in /root or a 0700 mktemp -d: mariadbd (as mysql) must still start."""
    from sandbox import Sandbox

    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    box = Sandbox(base_dir=private / ".sandbox").start()
    pids = [box.staging.process.pid, box.prod.process.pid, box.aws.process.pid]
    try:
        assert box.prod.query_one("SELECT 1")[0] == 1
        assert (private / ".sandbox" / "inventory" / "hosts.yml").exists()
    finally:
        box.stop()
    assert not any(_pid_alive(pid) for pid in pids)
    assert not box.server_dir.exists() or box.server_dir == box.base_dir
    assert not (private / ".sandbox" / "inventory").exists()
