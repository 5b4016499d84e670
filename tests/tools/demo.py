"""`make demo`: a whole promotion on the local sandbox, twice.

Starts two MariaDB servers and the S3/CloudFront emulator, builds a staging and
a production Directus database and their asset buckets, runs
``ansible-playbook playbooks/promote.yml -e source=staging -e target=prod``
against the sandbox inventory, then runs it again to show that nothing changes,
and stops everything (also on Ctrl-C).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "collections")]

from sandbox import Sandbox  # noqa: E402  (needs the path above)
from sandbox.directus_fixture import bucket_listing, build_environments, describe, staging_edit  # noqa: E402


def banner(text):
    print("\n\033[1m== %s ==\033[0m" % text, flush=True)


def recap_totals(output):
    totals = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if match and "ok=" in match.group(2):
            for key, value in re.findall(r"(\w+)=(\d+)", match.group(2)):
                totals[key] = totals.get(key, 0) + int(value)
    return totals


def run_playbook(sandbox, label):
    banner(label)
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/promote.yml",
               "-i", str(sandbox.inventory_dir / "hosts.yml"), "-e", "source=staging", "-e", "target=prod"]
    print("$ " + " ".join(command[1:]) + "   (vault password file from ANSIBLE_VAULT_PASSWORD_FILE)", flush=True)
    started = time.monotonic()
    env = sandbox.ansible_env()
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "1" if sys.stdout.isatty() else "0"
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        sys.stdout.write(line)
    proc.wait()
    output = "".join(lines)
    totals = recap_totals(re.sub(r"\x1b\[[0-9;]*m", "", output))
    print("-- %s: exit %d in %.1f s; tasks changed=%s failed=%s"
          % (label, proc.returncode, time.monotonic() - started, totals.get("changed"), totals.get("failed")), flush=True)
    if proc.returncode != 0:
        raise SystemExit("the promotion failed (exit %d)" % proc.returncode)
    return totals


def main():
    sandbox = Sandbox(base_dir=REPO / ".sandbox")
    banner("Starting the sandbox: two MariaDB servers (staging, prod) and an S3 + CloudFront emulator")
    sandbox.start()
    try:
        print("staging MariaDB on 127.0.0.1:%d, prod MariaDB on 127.0.0.1:%d, emulator at %s"
              % (sandbox.staging.port, sandbox.prod.port, sandbox.aws.endpoint_url))
        print("inventory: %s (secrets vault-encrypted)" % sandbox.inventory_dir)

        banner("Building Directus-shaped databases and asset buckets")
        database = sandbox.staging.database
        built = build_environments(sandbox, database, seed=1, content_rows=2000, files=24)
        with sandbox.staging.connect() as conn:
            staging_edit(conn, database, seed=1)
        s3 = sandbox.aws.client("s3")
        for env in ("staging", "prod"):
            with sandbox.server(env).connect() as conn:
                ids = describe(conn, database)
            objects = bucket_listing(s3, sandbox.buckets[env])
            print("%-7s %6d rows in %d tables, %d objects in s3://%s, admin role %s"
                  % (env, sum(built[env]["rows"].values()), len(built[env]["rows"]), len(objects), sandbox.buckets[env],
                     ids.get("admin_role_id")))

        first = run_playbook(sandbox, "Promotion: staging -> prod")
        second = run_playbook(sandbox, "Same promotion again: nothing left to change")
        banner("Result")
        print("first run: %s task(s) changed; second run: %s task(s) changed"
              % (first.get("changed", 0), second.get("changed", 0)))
        if second.get("changed", 0):
            raise SystemExit("the second run changed something: it should not")
    finally:
        banner("Stopping the sandbox")
        sandbox.stop()
        print("stopped; no server left running")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
