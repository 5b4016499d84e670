# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/promote.yml (the promote role) end to end on the sandbox.

The real ``ansible-playbook`` runs from the repository root (its ansible.cfg resolves the
collection) against the sandbox's inventory, unchanged, plus a second inventory source that adds
``directus_url``/``directus_admin_token`` pointing at small local Directus stubs. Production content,
users, sessions, settings, buckets and CloudFront are read from the real servers before and after.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from directus_stub import DirectusStub
from sandbox import directus_fixture as fx

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
DB = "directus"
SEED = 7
FILES = 20
STAGING_TOKEN = "stub-staging-admin-token-Qx81"
PROD_TOKEN = "stub-prod-admin-token-Zk42"
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Kept tables that must not change at all. (directus_revisions is kept too, but a revision pointing to a
# production-only content version that the promotion removes gets version = NULL: the module reports it.)
KEEP_BYTE_IDENTICAL = ("directus_sessions", "directus_settings", "directus_activity", "directus_migrations",
                       "directus_notifications", "directus_shares", "directus_webhooks", "directus_extensions",
                       "directus_comments")


# --------------------------------------------------------------------------- helpers

class Run:
    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        self.seconds = seconds
        m = RECAP.findall(self.out)
        self.recap = tuple(int(x) for x in m[-1]) if m else None

    @property
    def changed(self):
        return self.recap[1]

    def changed_tasks(self):
        """Names of the tasks that reported changed."""
        names, current = [], None
        for line in self.out.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                current = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed: [") and current:
                names.append(current)
        return names

    def summary(self):
        """The summary table lines printed by the summary phase."""
        return [line.strip().strip('",') for line in self.out.splitlines() if line.strip().startswith('"|')]


def playbook_env(sandbox, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(ANSIBLE_VAULT_PASSWORD_FILE=str(sandbox.inventory_dir / ".vault_pass"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0", PATH=os.path.dirname(sys.executable)
               + os.pathsep + env.get("PATH", ""))
    env.update(extra or {})
    return env


def run_playbook(inventories, extra_vars, *args, env=None, timeout=900, playbook="playbooks/promote.yml"):
    cmd = [ANSIBLE_PLAYBOOK, playbook]
    for inv in inventories:
        cmd += ["-i", str(inv)]
    cmd += ["-e", json.dumps(extra_vars)] + list(args)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return Run(proc, time.monotonic() - started)


TRASH = "_directus_promote_trash/"  # the role's default trash location, inside production's own bucket


def served(listing):
    """A bucket listing without the trash (what Directus may serve)."""
    return {k: v for k, v in listing.items() if not k.startswith(TRASH)}


def invalidations(cf, distribution_id):
    """{id: set(decoded paths)} of every invalidation of the distribution."""
    out = {}
    for page in cf.get_paginator("list_invalidations").paginate(DistributionId=distribution_id):
        for item in page["InvalidationList"].get("Items", []) or []:
            inv = cf.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"]
            paths = inv["InvalidationBatch"]["Paths"].get("Items", []) or []
            out[item["Id"]] = {urllib.parse.unquote(p) for p in paths}
    return out


def user_fk_columns(conn, database):
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                    "AND REFERENCED_TABLE_NAME = 'directus_users'", (database,))
        out = {}
        for table, column in cur.fetchall():
            out.setdefault(table, set()).add(column)
        return out


def user_emails(conn, database):
    with conn.cursor() as cur:
        cur.execute("SELECT id, email FROM `%s`.`directus_users`" % database)
        return dict(cur.fetchall())


def rows_by_email(conn, database, table, user_columns, known_emails=None):
    """Every row of `table` (primary-key order) with user references replaced by the user's e-mail.

    With known_emails, a reference to a user whose e-mail is not in it becomes None (what the
    promotion does with references to staging users that production does not have).
    """
    emails = user_emails(conn, database)
    if known_emails is not None:
        emails = {k: v for k, v in emails.items() if v in known_emails}
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                    "ORDER BY ORDINAL_POSITION", (database, table))
        columns = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", (database, table))
        pk = [r[0] for r in cur.fetchall()] or columns
        select = ", ".join("`%s`" % c for c in columns)
        order = ", ".join("`%s`" % c for c in pk)
        cur.execute("SELECT %s FROM `%s`.`%s` ORDER BY %s" % (select, database, table, order))
        out = []
        for row in cur.fetchall():
            out.append(tuple(v if (c not in user_columns or v is None)
                             else (("user:%s" % emails[v]) if v in emails else (None if known_emails is not None else "?unknown?"))
                             for c, v in zip(columns, row)))
        return columns, out


def users_view(conn, database):
    """Production users as they must survive: every column, with the role compared by name."""
    with conn.cursor() as cur:
        cur.execute("SELECT u.*, r.name AS role_name FROM `%s`.directus_users u LEFT JOIN `%s`.directus_roles r "
                    "ON r.id = u.role ORDER BY u.id" % (database, database))
        names = [d[0] for d in cur.description]
        return [{k: v for k, v in zip(names, row) if k != "role"} for row in cur.fetchall()]


def revision_ids(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM `%s`.directus_revisions ORDER BY id" % DB)
        return [r[0] for r in cur.fetchall()]


class Prober(threading.Thread):
    """Reads production's directus_files and bucket listing in a loop during the run.

    A key counts as missing only when it is referenced both before and after the listing that
    lacks it (so a row that was swapped out meanwhile is not a false alarm).
    """

    def __init__(self, sandbox, bucket):
        super().__init__(daemon=True)
        self.sandbox, self.bucket = sandbox, bucket
        self.stop_event = threading.Event()
        self.rounds, self.missing, self.errors = 0, [], []

    def referenced(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT filename_disk FROM `%s`.directus_files WHERE storage = 's3'" % DB)
            return {r[0] for r in cur.fetchall()}

    def run(self):
        conn = self.sandbox.prod.connect(autocommit=True)
        s3 = self.sandbox.aws.client("s3")
        try:
            while not self.stop_event.is_set():
                try:
                    before = self.referenced(conn)
                    keys = set(fx.bucket_listing(s3, self.bucket))
                    after = self.referenced(conn)
                except Exception as exc:  # noqa: BLE001 - a missing table is exactly what we look for
                    self.errors.append(repr(exc))
                    continue
                gone = (before & after) - keys
                if gone:
                    self.missing.append(sorted(gone))
                self.rounds += 1
                time.sleep(0.01)
        finally:
            conn.close()


# --------------------------------------------------------------------------- the promotion

HEALTH_PROBE_KEYS = {"staging": "health-5b0e3c1a", "prod": "health-9d41f7e2"}


@pytest.fixture(scope="module")
def world(sandbox, tmp_path_factory):
    """Directus-shaped staging and prod, Directus stubs, and the inventories of the sandbox."""
    tmp = tmp_path_factory.mktemp("promote")
    s3 = sandbox.aws.client("s3")
    fx.build_environments(sandbox, DB, seed=SEED, content_rows=400, files=FILES)
    for env, key in HEALTH_PROBE_KEYS.items():
        # What Directus' /server/health leaves for a moment in every storage location.
        s3.put_object(Bucket=sandbox.buckets[env], Key=key, Body=b"check")
    conn = sandbox.staging.connect()
    try:
        fx.staging_edit(conn, DB, seed=SEED)
    finally:
        conn.close()

    stubs = {"staging": DirectusStub(STAGING_TOKEN).start(), "prod": DirectusStub(PROD_TOKEN).start()}
    extra_inventory = tmp / "directus.yml"
    extra_inventory.write_text(json.dumps({"all": {"children": {"directus_environments": {"hosts": {
        "staging": {"directus_url": stubs["staging"].url, "directus_admin_token": STAGING_TOKEN},
        "prod": {"directus_url": stubs["prod"].url, "directus_admin_token": PROD_TOKEN},
    }}}}}))
    state_dir = tmp / "state"
    try:
        yield {
            "tmp": tmp, "stubs": stubs, "s3": s3, "cf": sandbox.aws.client("cloudfront"),
            "inventories": [sandbox.inventory_dir, extra_inventory], "state_dir": state_dir,
            "vars": {"source": "staging", "target": "prod", "promote_state_dir": str(state_dir),
                     "promote_verify_health_delay": 1, "promote_report_dir": str(tmp / "reports")},
            "reports": tmp / "reports",
            "env": playbook_env(sandbox),
        }
    finally:
        for stub in stubs.values():
            stub.stop()


def snapshot(sandbox, world):
    conn = sandbox.prod.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
            schemas = [r[0] for r in cur.fetchall()]
        return {
            "checksums": fx.table_checksums(conn, DB),
            "schemas": schemas,
            "bucket": fx.bucket_listing(world["s3"], sandbox.buckets["prod"]),
            "invalidations": invalidations(world["cf"], sandbox.distribution_id),
            "users": users_view(conn, DB),
            "revision_ids": revision_ids(conn),
            "cache_calls": len(world["stubs"]["prod"].calls_to("POST", "/utils/cache/clear")),
            "state_files": sorted(p.name for p in world["state_dir"].glob("*")) if world["state_dir"].exists() else [],
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def promoted(sandbox, world):
    """Check run, real run (with a prober), second run; everything measured around them."""
    s3 = world["s3"]
    staging_objects = fx.bucket_listing(s3, sandbox.buckets["staging"])
    prod_objects = fx.bucket_listing(s3, sandbox.buckets["prod"])
    expected_keys = {k for k, v in staging_objects.items() if prod_objects.get(k) != v} | (set(prod_objects) - set(staging_objects))
    expected_keys -= set(HEALTH_PROBE_KEYS.values())

    before = snapshot(sandbox, world)
    check = run_playbook(world["inventories"], world["vars"], "--check", "--diff", env=world["env"])
    after_check = snapshot(sandbox, world)

    prober = Prober(sandbox, sandbox.buckets["prod"])
    prober.start()
    first = run_playbook(world["inventories"], world["vars"], "-v", env=world["env"])
    prober.stop_event.set()
    prober.join(timeout=30)
    after_first = snapshot(sandbox, world)

    second = run_playbook(world["inventories"], world["vars"], env=world["env"])
    after_second = snapshot(sandbox, world)
    return dict(check=check, first=first, second=second, before=before, after_check=after_check,
                after_first=after_first, after_second=after_second, prober=prober, expected_keys=expected_keys,
                staging_objects=staging_objects)


def test_check_mode_changes_nothing_and_prints_the_plan(promoted):
    run = promoted["check"]
    assert run.rc == 0, run.out[-6000:]
    assert promoted["after_check"] == promoted["before"]
    # The plan is printed: the asset diff names a key that will be copied, and the summary says so.
    assert any(key in run.out for key in promoted["expected_keys"]), run.out[-6000:]
    assert any("CHECK MODE" in line for line in run.out.splitlines())
    assert any(line.startswith("| database") and "would change" in line for line in run.summary()), run.summary()


def test_promotion_succeeds_and_prints_one_summary_table(promoted):
    run = promoted["first"]
    assert run.rc == 0, run.out[-8000:]
    phases = [line.split("|")[1].strip() for line in run.summary() if line.startswith("| ")]
    assert phases[1:] == ["validate", "preflight", "assets_copy", "database", "assets_prune", "cdn", "cache", "verify"]
    assert any(line.startswith("| assets_copy") and "changed" in line for line in run.summary())


def read_report(world, run):
    """The report file the run wrote (its run id is in the summary's validate row)."""
    run_id = re.search(r"run id (\S+?)[ |,]", "\n".join(run.summary())).group(1)
    return json.loads((world["reports"] / ("%s.json" % run_id)).read_text())


def test_each_run_writes_its_report(world, promoted):
    check, first, second = (read_report(world, promoted[name]) for name in ("check", "first", "second"))
    assert [r["result"] for r in (check, first, second)] == ["check mode", "changed", "unchanged"]
    assert len({r["run_id"] for r in (check, first, second)}) == 3
    assert [p["name"] for p in first["phases"]] == [
        "validate", "preflight", "assets_copy", "database", "assets_prune", "cdn", "cache", "verify"]
    phases = {p["name"]: p for p in first["phases"]}
    assert phases["assets_copy"]["counts"]["copied"] + phases["assets_copy"]["counts"]["updated"] > 0
    assert phases["database"]["result"] == "changed" and all(p["seconds"] is not None for p in first["phases"])
    assert first["database_backup"].startswith(DB + "__backup_")
    assert first["cloudfront_invalidations"] and first["source"] == "staging" and first["target"] == "prod"
    assert first["started"] < first["ended"]
    assert {p["name"]: p["result"] for p in check["phases"]}["database"] == "would change"
    assert {p["name"]: p["details"] for p in second["phases"]}["verify"] == "health ok, assets in sync, database in sync"


def test_production_content_equals_staging(sandbox, promoted):
    staging = sandbox.staging.connect()
    prod = sandbox.prod.connect()
    try:
        user_columns = user_fk_columns(staging, DB)
        prod_emails = set(user_emails(prod, DB).values())
        for table in fx.CONTENT_TABLES + ("directus_collections", "directus_fields", "directus_relations",
                                          "directus_files", "directus_folders", "directus_flows"):
            cols_s, rows_s = rows_by_email(staging, DB, table, user_columns.get(table, set()), known_emails=prod_emails)
            cols_p, rows_p = rows_by_email(prod, DB, table, user_columns.get(table, set()))
            assert cols_p == cols_s, table
            assert rows_p == rows_s, table
        assert fx.fk_violations(prod, DB) == {}
    finally:
        staging.close()
        prod.close()


def test_production_users_sessions_and_settings_untouched(promoted):
    before, after = promoted["before"], promoted["after_first"]
    assert after["users"] == before["users"]
    for table in KEEP_BYTE_IDENTICAL:
        assert after["checksums"][table] == before["checksums"][table], table
    assert after["revision_ids"] == before["revision_ids"]


def test_assets_mirrored_without_a_dangling_moment(sandbox, promoted):
    probes = set(HEALTH_PROBE_KEYS.values())
    assert ({k: v for k, v in served(promoted["after_first"]["bucket"]).items() if k not in probes}
            == {k: v for k, v in promoted["staging_objects"].items() if k not in probes})
    # what the promotion overwrote or pruned is kept in its trash
    assert any(k.startswith(TRASH) for k in promoted["after_first"]["bucket"])
    prober = promoted["prober"]
    assert prober.rounds > 0
    assert prober.missing == []
    assert prober.errors == []


def test_directus_health_probe_objects_are_neither_copied_nor_pruned(sandbox, promoted):
    prod_keys = set(promoted["after_first"]["bucket"])
    assert HEALTH_PROBE_KEYS["prod"] in prod_keys
    assert HEALTH_PROBE_KEYS["staging"] not in prod_keys


def test_cdn_invalidated_with_exactly_the_changed_paths(promoted):
    before, after = promoted["before"]["invalidations"], promoted["after_first"]["invalidations"]
    new = {i: paths for i, paths in after.items() if i not in before}
    assert len(new) == 1, new
    (paths,) = new.values()
    assert promoted["expected_keys"], "the fixtures must make staging and prod differ"
    assert paths == {"/" + key for key in promoted["expected_keys"]}


def test_cache_cleared_once_with_the_production_admin_token(world, promoted):
    calls = world["stubs"]["prod"].calls_to("POST", "/utils/cache/clear")
    assert len(calls) == 1
    assert calls[0].authorized and "system" in calls[0].query
    assert world["stubs"]["staging"].calls_to("POST", "/utils/cache/clear") == []
    assert world["stubs"]["prod"].calls_to("GET", "/server/health")


def test_second_run_changes_nothing(promoted):
    run = promoted["second"]
    assert run.rc == 0, run.out[-6000:]
    assert run.changed == 0, run.changed_tasks()
    assert promoted["after_second"] == promoted["after_first"]
    assert any("no change" in line for line in run.out.splitlines())


def test_no_secret_is_printed(sandbox, promoted):
    secrets = [sandbox.staging.password, sandbox.prod.password, sandbox.aws.secret_key, STAGING_TOKEN, PROD_TOKEN]
    for name in ("check", "first", "second"):
        for secret in secrets:
            assert secret not in promoted[name].out, (name, "a secret was printed")


def test_a_promotion_refuses_while_another_holds_the_target_lock(sandbox, world, promoted, run_module):
    """Another promotion holds prod's lock: this one refuses before it reads or writes anything, naming the holder
    and the variable that breaks the lock; with promote_break_lock=true it goes through and says whose lock it broke."""
    target = dict(sandbox.prod.connection_settings())
    held = run_module("promotion_lock", dict(target=target, run_id="other-run", source="qa"))
    assert held["changed"], held
    try:
        refused = run_playbook(world["inventories"], world["vars"], env=world["env"])
        assert refused.rc != 0 and "run other-run (promote from qa" in refused.out, refused.out[-4000:]
        assert "promote_break_lock=true" in refused.out
        assert "Plan the asset mirror" not in refused.out and "Copy new and changed assets" not in refused.out
        broken = run_playbook(world["inventories"], dict(world["vars"], promote_break_lock=True), env=world["env"])
        assert broken.rc == 0 and "took over the promotion lock from run other-run" in broken.out, broken.out[-4000:]
        # released at the end: nobody holds it
        assert run_module("promotion_lock", dict(target=target, run_id="x", state="checked")).get("failed")
    finally:
        run_module("promotion_lock", dict(target=target, run_id="other-run", state="absent"))


def test_unfinished_promotion_invalidates_on_the_rerun_once(sandbox, world, promoted):
    """A promotion that fails before its CDN phase still invalidates on the re-run, exactly once."""
    s3, cf = world["s3"], world["cf"]
    key = "retry-%d.txt" % time.time_ns()
    s3.put_object(Bucket=sandbox.buckets["staging"], Key=key, Body=b"retry")
    before = invalidations(cf, sandbox.distribution_id)
    # Stop after the database phase, as a failure there would: the new key is copied, not invalidated.
    cut = run_playbook(world["inventories"], world["vars"], "--tags", "assets_copy,database", env=world["env"])
    assert cut.rc == 0, cut.out[-6000:]
    state = world["state_dir"] / "prod.cdn-pending.json"
    pending = json.loads(state.read_text())
    assert key in pending["s3_keys"] and pending["run_id"]
    saved = state.read_text()

    rerun = run_playbook(world["inventories"], world["vars"], env=world["env"])
    assert rerun.rc == 0, rerun.out[-6000:]
    assert not state.exists()
    after = invalidations(cf, sandbox.distribution_id)
    new = [paths for i, paths in after.items() if i not in before]
    assert new == [{"/" + key}]

    # The same promotion retried (its state file back, same run id): the invalidation is found again.
    state.write_text(saved)
    retried = run_playbook(world["inventories"], world["vars"], "--tags", "cdn", env=world["env"])
    assert retried.rc == 0, retried.out[-6000:]
    assert invalidations(cf, sandbox.distribution_id) == after
    assert retried.changed == 1, retried.changed_tasks()  # only the state file's removal
    s3.delete_object(Bucket=sandbox.buckets["staging"], Key=key)


def test_restart_commands_run_once_after_a_change_and_never_without_one(sandbox, world, promoted, tmp_path):
    s3 = world["s3"]
    marker = tmp_path / "restarts.log"
    extra = dict(world["vars"], promote_restart_commands=[
        {"name": "restart instance 1", "argv": ["sh", "-c", "echo one >> '%s'" % marker]},
        {"cmd": "sh -c 'echo two >> %s'" % marker}])
    key = "restart-%d.txt" % time.time_ns()
    s3.put_object(Bucket=sandbox.buckets["staging"], Key=key, Body=b"restart")
    clears = len(world["stubs"]["prod"].calls_to("POST", "/utils/cache/clear"))
    try:
        changed = run_playbook(world["inventories"], extra, env=world["env"])
        assert changed.rc == 0, changed.out[-6000:]
        assert marker.read_text().split() == ["one", "two"]
        assert len(world["stubs"]["prod"].calls_to("POST", "/utils/cache/clear")) == clears + 1
        unchanged = run_playbook(world["inventories"], extra, env=world["env"])
        assert unchanged.rc == 0 and unchanged.changed == 0, unchanged.changed_tasks()
        assert marker.read_text().split() == ["one", "two"]
        assert len(world["stubs"]["prod"].calls_to("POST", "/utils/cache/clear")) == clears + 1
    finally:
        s3.delete_object(Bucket=sandbox.buckets["staging"], Key=key)
        assert run_playbook(world["inventories"], world["vars"], env=world["env"]).rc == 0


def test_many_changed_paths_collapse_to_wildcards(sandbox, world, promoted):
    s3, cf = world["s3"], world["cf"]
    keys = ["collapse/%d-%d.txt" % (time.time_ns(), i) for i in range(4)]
    for key in keys:
        s3.put_object(Bucket=sandbox.buckets["staging"], Key=key, Body=b"x")
    before = invalidations(cf, sandbox.distribution_id)
    try:
        run = run_playbook(world["inventories"], dict(world["vars"], promote_cdn_collapse_threshold=2), env=world["env"])
        assert run.rc == 0, run.out[-6000:]
        new = [paths for i, paths in invalidations(cf, sandbox.distribution_id).items() if i not in before]
        assert len(new) == 1
        paths = new[0]
        assert 0 < len(paths) <= 2 and any(path.endswith("*") for path in paths), paths

        def covered(key):
            return any(path == "/" + key or (path.endswith("*") and ("/" + key).startswith(path[:-1])) for path in paths)
        assert all(covered(key) for key in keys), paths
        assert any(line.startswith("| cdn") and "collapsed" in line for line in run.summary()), run.summary()
    finally:
        s3.delete_objects(Bucket=sandbox.buckets["staging"], Delete={"Objects": [{"Key": k} for k in keys]})
        assert run_playbook(world["inventories"], world["vars"], env=world["env"]).rc == 0


def test_failed_cache_clear_is_reported_and_done_by_the_rerun(sandbox, world, promoted):
    s3, prod = world["s3"], world["stubs"]["prod"]
    key = "cache-%d.txt" % time.time_ns()
    s3.put_object(Bucket=sandbox.buckets["staging"], Key=key, Body=b"cache")
    clears = len(prod.calls_to("POST", "/utils/cache/clear"))
    prod.cache_clear_status = 500
    try:
        failed = run_playbook(world["inventories"], world["vars"], env=world["env"])
    finally:
        prod.cache_clear_status = None
    try:
        assert failed.rc != 0
        assert "/utils/cache/clear?system failed (HTTP 500)" in failed.out, failed.out[-4000:]
        assert PROD_TOKEN not in failed.out
        assert len(prod.calls_to("POST", "/utils/cache/clear")) == clears + 1
        # Nothing is left to copy, but the cache still has to be cleared: the re-run does it, once.
        rerun = run_playbook(world["inventories"], world["vars"], env=world["env"])
        assert rerun.rc == 0, rerun.out[-4000:]
        assert len(prod.calls_to("POST", "/utils/cache/clear")) == clears + 2
        again = run_playbook(world["inventories"], world["vars"], env=world["env"])
        assert again.rc == 0 and again.changed == 0, again.changed_tasks()
        assert len(prod.calls_to("POST", "/utils/cache/clear")) == clears + 2
    finally:
        s3.delete_object(Bucket=sandbox.buckets["staging"], Key=key)
        assert run_playbook(world["inventories"], world["vars"], env=world["env"]).rc == 0


def test_wrong_admin_token_is_one_clear_error(world, promoted, tmp_path):
    wrong = tmp_path / "wrong-token.yml"
    wrong.write_text(json.dumps({"all": {"hosts": {"prod": {"directus_admin_token": "not-the-admin-token-Vb7"}}}}))
    run = run_playbook(world["inventories"] + [wrong], world["vars"], env=world["env"])
    assert run.rc != 0
    assert "target Directus %s/server/info failed (HTTP 401)" % world["stubs"]["prod"].url in run.out, run.out[-4000:]
    assert "admin token" in run.out and "not-the-admin-token-Vb7" not in run.out
    assert run.changed == 0


def test_different_directus_versions_are_refused_before_any_change(world, promoted):
    staging = world["stubs"]["staging"]
    staging.version = "11.4.0"
    try:
        run = run_playbook(world["inventories"], world["vars"], env=world["env"])
    finally:
        staging.version = "11.3.5"
    assert run.rc != 0
    assert "Directus versions differ: source 'staging' runs 11.4.0, target 'prod' runs 11.3.5" in run.out, run.out[-4000:]
    assert run.changed == 0
    assert "Copy new and changed assets" not in run.out


def test_unhealthy_target_fails_the_verify_phase(world, promoted):
    prod = world["stubs"]["prod"]
    prod.health = "error"
    try:
        run = run_playbook(world["inventories"], dict(world["vars"], promote_verify_health_retries=2,
                                                      promote_verify_health_delay=0), "--tags", "verify", env=world["env"])
    finally:
        prod.health = "ok"
    assert run.rc != 0
    assert "Wait for the target Directus to report healthy" in run.out and '"status": "error"' in run.out, run.out[-4000:]


# --------------------------------------------------------------------------- deletion guard

def directus_keys(files, thumbnailed):
    """Keys of a Directus storage: originals ``<id>.jpg``, transformations ``<id>__<hash>.jpg`` beside them."""
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, "guard-file-%d" % i).hex for i in range(files)]
    return ["%s.jpg" % i for i in ids] + ["%s__%s.jpg" % (i, t) for i in ids[:thumbnailed] for t in ("a1b2", "c3d4")]


def own_buckets(sandbox, tmp_path, staging_keys, prod_keys):
    """An inventory source giving staging and prod fresh buckets holding these keys (the world's stay untouched)."""
    s3 = sandbox.aws.client("s3")
    inventory, buckets = tmp_path / "buckets", {}
    for env, keys in (("staging", staging_keys), ("prod", prod_keys)):
        buckets[env] = "guard-%s-%s" % (env, uuid.uuid4().hex[:10])
        s3.create_bucket(Bucket=buckets[env])
        for key in keys:
            s3.put_object(Bucket=buckets[env], Key=key, Body=key.encode())
        (inventory / "host_vars" / env).mkdir(parents=True)
        # host_vars of a later inventory source win over the sandbox inventory's
        (inventory / "host_vars" / env / "vars.yml").write_text(json.dumps({"directus_s3_bucket": buckets[env]}))
    (inventory / "hosts.yml").write_text(json.dumps({"all": {"children": {"directus_environments": {"hosts": {
        "staging": {}, "prod": {}}}}}}))
    return inventory, buckets


BARE_GUARD_OPTION = re.compile(r"(?<!promote_s3_)\b(?:max_delete|max_delete_percent|max_delete_percent_min_count|"
                               r"allow_empty_source|force_delete)=")


def test_a_first_promotion_onto_a_young_production_passes_the_deletion_guard(sandbox, world, tmp_path):
    # Issue 18: staging with 10 files (22 objects with thumbnails), production with one file of its own (3 objects,
    # 2 of them not in staging): 66.7 % of production's objects go, which the default guard refused.
    s3 = world["s3"]
    staging = directus_keys(10, 6)
    inventory, buckets = own_buckets(sandbox, tmp_path, staging, staging[:1] + ["ffffffff-own.jpg", "ffffffff-own__a1b2.jpg"])
    run = run_playbook(world["inventories"] + [inventory], dict(world["vars"], promote_state_dir=str(tmp_path / "state")),
                       "--tags", "preflight,assets_copy,assets_prune", env=world["env"])
    assert run.rc == 0, run.out[-6000:]
    assert "assets: 21 to copy, 0 to update, 2 to delete, 1 unchanged" in run.out, run.out[-6000:]
    assert served(fx.bucket_listing(s3, buckets["prod"])) == fx.bucket_listing(s3, buckets["staging"])
    assert len(served(fx.bucket_listing(s3, buckets["prod"]))) == 22


@pytest.mark.parametrize("phase", ["preflight", "assets_prune"])
def test_a_deletion_guard_refusal_names_the_role_variables(sandbox, world, tmp_path, phase):
    # A whole promotion stops at the preflight; the prune phase alone (--tags assets_prune) refuses the same way.
    s3 = world["s3"]
    inventory, buckets = own_buckets(sandbox, tmp_path, ["kept.jpg", "new.jpg"],
                                     ["kept.jpg"] + ["old-%02d.jpg" % i for i in range(11)])
    prod_before, before = fx.bucket_listing(s3, buckets["prod"]), snapshot(sandbox, world)
    tags = ["--tags", "assets_prune"] if phase == "assets_prune" else []
    run = run_playbook(world["inventories"] + [inventory], dict(world["vars"], promote_s3_max_delete=5), *tags,
                       env=world["env"])
    assert run.rc != 0
    failed_task = re.findall(r"^TASK \[([^\]]*)\]", run.out.split("fatal: [localhost]")[0], re.M)[-1]
    assert failed_task.endswith({"preflight": "Plan the asset mirror (both buckets, deletion guards)",
                                 "assets_prune": "Prune target assets absent from the source"}[phase]), failed_task
    assert ("Refusing to delete 11 objects: more than promote_s3_max_delete=5 (raise it to 11, or set "
            "promote_s3_force_delete=true); 91.7% of the target's 12 objects, more than promote_s3_max_delete_percent=50, "
            "from a source of only 2 objects (raise it to 92, or set promote_s3_force_delete=true). Would delete: "
            "old-00.jpg") in run.out, run.out[-6000:]
    assert not BARE_GUARD_OPTION.search(run.out), BARE_GUARD_OPTION.search(run.out)
    assert "Copy new and changed assets" not in run.out and run.changed == 0
    assert fx.bucket_listing(s3, buckets["prod"]) == prod_before and snapshot(sandbox, world) == before
    assert sandbox.aws.secret_key not in run.out


def test_an_empty_source_is_refused_in_check_mode_naming_the_role_variable(sandbox, world, tmp_path):
    s3 = world["s3"]
    inventory, buckets = own_buckets(sandbox, tmp_path, [], directus_keys(1, 1))
    run = run_playbook(world["inventories"] + [inventory], world["vars"], "--check", env=world["env"])
    assert run.rc != 0
    assert ("Refusing to delete 3 objects: the source lists no object (set promote_s3_allow_empty_source=true to empty "
            "the target); 100.0% of the target's 3 objects, more than promote_s3_max_delete_percent=50 (raise it to "
            "100, or set promote_s3_force_delete=true)") in run.out, run.out[-6000:]
    assert not BARE_GUARD_OPTION.search(run.out), BARE_GUARD_OPTION.search(run.out)
    assert len(fx.bucket_listing(s3, buckets["prod"])) == 3


# --------------------------------------------------------------------------- rollback


def bucket_contents(s3, bucket):
    """{key: bytes} of what Directus may serve (the trash left out)."""
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for key in fx.bucket_listing(s3, bucket) if not key.startswith(TRASH)}


def test_rollback_undoes_the_newest_promotion_assets_first(sandbox, world, tmp_path):
    """A promotion that adds, overwrites and prunes objects and swaps tables; then playbooks/rollback.yml."""
    s3 = world["s3"]
    staging_keys = directus_keys(4, 2)
    inventory, buckets = own_buckets(sandbox, tmp_path, staging_keys,
                                     staging_keys[:2] + ["eeeeeeee-own.jpg", "eeeeeeee-own__a1b2.jpg"])
    s3.put_object(Bucket=buckets["prod"], Key=staging_keys[0], Body=b"production's own bytes")  # to be overwritten
    conn = sandbox.staging.connect()
    try:
        fx.staging_edit(conn, DB, seed=SEED + 7)  # something new for the database to promote
    finally:
        conn.close()
    inventories = world["inventories"] + [inventory]
    state = str(tmp_path / "state")
    prod_assets = bucket_contents(s3, buckets["prod"])
    prod_db = snapshot(sandbox, world)

    promote = run_playbook(inventories, dict(world["vars"], promote_state_dir=state), env=world["env"])
    assert promote.rc == 0, promote.out[-6000:]
    assert bucket_contents(s3, buckets["prod"]) == bucket_contents(s3, buckets["staging"])
    assert snapshot(sandbox, world)["checksums"] != prod_db["checksums"]

    rollback_vars = {"target": "prod", "promote_state_dir": state, "promote_verify_health_delay": 1}
    promoted_state = (bucket_contents(s3, buckets["prod"]), fx.bucket_listing(s3, buckets["prod"]),
                      snapshot(sandbox, world)["checksums"])
    check = run_playbook(inventories, rollback_vars, "--check", env=world["env"], playbook="playbooks/rollback.yml")
    assert check.rc == 0, check.out[-6000:]
    assert (bucket_contents(s3, buckets["prod"]), fx.bucket_listing(s3, buckets["prod"]),
            snapshot(sandbox, world)["checksums"]) == promoted_state
    assert "Undoing promotion prod-" in check.out

    rollback = run_playbook(inventories, rollback_vars, env=world["env"], playbook="playbooks/rollback.yml")
    assert rollback.rc == 0, rollback.out[-8000:]
    assert bucket_contents(s3, buckets["prod"]) == prod_assets
    after = snapshot(sandbox, world)
    assert after["checksums"] == prod_db["checksums"]
    assert after["users"] == prod_db["users"]
    # assets first: the restore ran before the swap, the removal after it
    tasks = [line for line in rollback.out.splitlines() if line.startswith("TASK [")]
    order = [next(i for i, t in enumerate(tasks) if name in t) for name in (
        "Put back the assets the promotion deleted or overwrote", "Swap the database backup back in",
        "Remove the assets the promotion added")]
    assert order == sorted(order), tasks
    assert sandbox.aws.secret_key not in rollback.out


# --------------------------------------------------------------------------- validation errors

BASE_ENV = {
    "directus_db_host": "127.0.0.1", "directus_db_port": 3306, "directus_db_name": "directus_{name}",
    "directus_db_user": "directus", "directus_db_password": "{{ vault_directus_db_password }}",
    "directus_s3_bucket": "bucket-{name}",
}


def write_inventory(path, envs, vault=None):
    hosts = {}
    for name, overrides in envs.items():
        hv = {k: (v.format(name=name) if isinstance(v, str) and "{name}" in v else v) for k, v in BASE_ENV.items()}
        hv.update(vault_directus_db_password="pw-" + name)
        hv.update(overrides)
        hosts[name] = {k: v for k, v in hv.items() if v is not None}
    path.mkdir(parents=True, exist_ok=True)
    (path / "hosts.yml").write_text(json.dumps({"all": {"children": {"directus_environments": {"hosts": hosts}}}}))
    return path


VALIDATION_CASES = {
    "source missing": ({"staging": {}, "prod": {"directus_promote_allow_target": True}}, {"target": "prod"},
                       ["source is not set: pass -e source=<environment> (one of: staging, prod)"]),
    "unknown target": ({"staging": {}, "prod": {}}, {"source": "staging", "target": "qa"},
                       ["target 'qa' is not a host of group 'directus_environments' (known: staging, prod)"]),
    "same environment": ({"staging": {"directus_promote_allow_target": True}}, {"source": "staging", "target": "staging"},
                         ["source and target are the same environment ('staging')"]),
    "target not allowed": ({"staging": {}, "prod": {}}, {"source": "staging", "target": "prod"},
                           ["target 'prod' does not allow being overwritten: set directus_promote_allow_target: true"]),
    "missing vault variable": ({"staging": {"vault_directus_db_password": None}, "prod": {"directus_promote_allow_target": True}},
                               {"source": "staging", "target": "prod"},
                               ["source 'staging': directus_db_password is not defined (or references an undefined variable"]),
    "missing variables": ({"staging": {"directus_s3_bucket": None, "directus_db_host": None},
                           "prod": {"directus_db_user": "", "directus_promote_allow_target": True}},
                          {"source": "staging", "target": "prod"},
                          ["source 'staging': directus_s3_bucket is not defined",
                           "source 'staging': set directus_db_host (or directus_db_unix_socket)",
                           "target 'prod': directus_db_user must be a non-empty string"]),
    "bad port and url": ({"staging": {"directus_db_port": "db"},
                          "prod": {"directus_promote_allow_target": True, "directus_url": "cms.example.com"}},
                         {"source": "staging", "target": "prod"},
                         ["source 'staging': directus_db_port must be a TCP port number, got 'db'",
                          "target 'prod': directus_url must start with http:// or https://"]),
    "same database and bucket": ({"staging": {"directus_s3_bucket": "shared", "directus_s3_prefix": "uploads",
                                              "directus_db_name": "directus"},
                                  "prod": {"directus_s3_bucket": "shared", "directus_s3_prefix": "/uploads/",
                                           "directus_db_name": "directus",
                                           "directus_promote_allow_target": True}},
                                 {"source": "staging", "target": "prod"},
                                 ["source and target use the same database (127.0.0.1/directus)",
                                  "source and target assets overlap (bucket 'shared', prefixes 'uploads' and 'uploads')"]),
    "no such group": ({"staging": {}, "prod": {"directus_promote_allow_target": True}},
                      {"source": "staging", "target": "prod", "promote_group": "cms_environments"},
                      ["the inventory has no group 'cms_environments'",
                       "source 'staging' is not a host of group 'cms_environments' (known: none)",
                       "target 'prod' is not a host of group 'cms_environments' (known: none)"]),
    "everything at once": ({"staging": {"directus_db_name": None}, "prod": {"directus_s3_bucket": None}},
                           {"source": "staging", "target": "prod"},
                           ["source 'staging': directus_db_name is not defined",
                            "target 'prod': directus_s3_bucket is not defined",
                            "target 'prod' does not allow being overwritten"]),
}


@pytest.mark.parametrize("case", sorted(VALIDATION_CASES))
def test_validation_error(case, tmp_path):
    """One clear error listing every problem, before any connection (nothing else ran)."""
    envs, extra, expected = VALIDATION_CASES[case]
    inventory = write_inventory(tmp_path / "inv", envs)
    run = run_playbook([inventory], dict(extra, promote_state_dir=str(tmp_path / "state")),
                       env=playbook_env_plain())
    assert run.rc != 0
    errors = [line for line in run.out.splitlines() if "Promotion refused" in line]
    assert errors, run.out[-4000:]
    assert "%d problem(s)" % len(expected) in errors[0], run.out[-4000:]
    for message in expected:
        assert message in run.out, (message, run.out[-4000:])
    assert run.recap[3] == 1 and "Plan the asset mirror" not in run.out and "/server/info" not in run.out
    assert not (tmp_path / "state").exists()


def test_role_argument_spec_rejects_bad_input(tmp_path):
    inventory = write_inventory(tmp_path / "inv", {"staging": {}, "prod": {"directus_promote_allow_target": True}})
    run = run_playbook([inventory], {"source": "staging", "target": "prod", "promote_s3_workers": "many",
                                     "promote_db_role_mapping": "guess"}, env=playbook_env_plain())
    assert run.rc != 0
    assert "promote_s3_workers" in run.out and "promote_db_role_mapping" in run.out, run.out[-4000:]
    assert run.recap[0] == 0  # nothing ran before the argument check


def test_example_inventory_validates_and_is_encrypted():
    example = REPO / "inventories" / "example"
    for env in ("staging", "prod"):
        text = (example / "host_vars" / env / "vault.yml").read_text()
        assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;example\n")
        assert "CHANGE-ME" not in text
    run = run_playbook([example], {"source": "staging", "target": "prod"}, "--tags", "validate",
                       "--vault-id", "example@%s" % (example / "vault-password.example"), env=playbook_env_plain())
    assert run.rc == 0, run.out[-4000:]
    assert run.changed == 0
    assert "| validate     | ok" in run.out


def test_collection_playbook_name_works(tmp_path):
    """`ansible-playbook casper.directus_promote.promote` from the repository root, no galaxy install."""
    inventory = write_inventory(tmp_path / "inv", {"staging": {}, "prod": {"directus_promote_allow_target": True}})
    cmd = [ANSIBLE_PLAYBOOK, "casper.directus_promote.promote", "-i", str(inventory), "-e", "source=staging",
           "-e", "target=prod", "-e", "promote_state_dir=%s" % (tmp_path / "state"), "--tags", "validate"]
    proc = subprocess.run(cmd, cwd=REPO, env=playbook_env_plain(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "| validate     | ok" in proc.stdout


def playbook_env_plain():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    return env
