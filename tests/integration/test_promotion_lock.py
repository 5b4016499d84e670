# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""promotion_lock against the sandbox's production MariaDB: one promotion (or rollback) at a time per target."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sandbox.module_runner import MODULE_PACKAGE, module_env
from test_directus_db_replicate import DB, MODULE, conn_args, production_state, promote_args, q
from test_directus_db_replicate import fresh  # noqa: F401 pylint: disable=unused-import

LOCK = "promotion_lock"


@pytest.fixture(autouse=True)
def no_lock_left(sandbox):
    """Every test here leaves production's promotion lock free (later tests and the e2e share the servers)."""
    yield
    q(sandbox.prod, "DROP TABLE IF EXISTS directus__promote_state.promotion_lock")


def lock(run_module, sb, run_id, state="present", check=False, **extra):
    return run_module(LOCK, dict(target=conn_args(sb.prod), run_id=run_id, state=state, source="staging", **extra),
                      check=check)


def test_a_second_promotion_refuses_before_it_writes_naming_the_holder(fresh, run_module):
    sb = fresh
    first = lock(run_module, sb, "run-a")
    assert first["changed"] is True and first["holder"] is None, first
    assert lock(run_module, sb, "run-a")["changed"] is False  # renewing is not a change
    for check in (True, False):
        second = lock(run_module, sb, "run-b", check=check)
        assert second.get("failed") and "run run-a (promote from staging" in second["msg"], second
        assert "promote_break_lock=true" in second["msg"] and "nothing was changed" in second["msg"]
    # the database module refuses too, before it writes, with or without a run id of its own
    before = production_state(sb.prod)
    for extra in (dict(promotion_run_id="run-b"), {}):
        refused = run_module(MODULE, promote_args(sb, **extra))
        assert refused.get("failed") and "run-a" in refused["msg"] and refused["journal_entry"] is None, refused["msg"]
    assert production_state(sb.prod) == before
    # the holder's own steps go through, and check that they still hold it
    assert not lock(run_module, sb, "run-a", state="checked").get("failed")
    assert lock(run_module, sb, "run-b", state="checked").get("failed")
    promoted = run_module(MODULE, promote_args(sb, promotion_run_id="run-a"))
    assert not promoted.get("failed") and promoted["changed"], promoted.get("msg")
    assert promoted["promotion_lock"]["run_id"] == "run-a"
    # released: the next one takes it
    assert lock(run_module, sb, "run-b", state="absent")["changed"] is False
    assert lock(run_module, sb, "run-a", state="absent")["changed"] is True
    assert lock(run_module, sb, "run-b")["changed"] is True


def test_a_stale_lock_is_taken_over_after_its_expiry_and_a_live_one_only_when_broken(fresh, run_module):
    sb = fresh
    assert lock(run_module, sb, "dead-run", expiry=1)["changed"]
    time.sleep(2.2)
    taken = lock(run_module, sb, "run-c")
    assert taken["changed"] and taken["broken"]["run_id"] == "dead-run" and taken["broken"]["expired"], taken
    assert "took over the promotion lock from run dead-run" in json.dumps(taken.get("warnings", []))
    # a live holder: refused, unless broken on purpose
    assert lock(run_module, sb, "run-d").get("failed")
    broken = lock(run_module, sb, "run-d", break_lock=True)
    assert broken["changed"] and broken["broken"]["run_id"] == "run-c" and not broken["broken"]["expired"], broken
    lost = lock(run_module, sb, "run-c", state="checked")
    assert lost.get("failed") and "no longer holds" in lost["msg"] and "run run-d" in lost["msg"], lost


def test_the_lock_outlives_a_lost_connection_of_the_run_holding_it(fresh, run_module, tmp_path):
    """The database module of run A loses every connection mid-run: A's promotion fails and undoes itself, but the
    promotion lock stays A's -- a run B started meanwhile is refused, where a connection-bound lock would have let
    it in."""
    sb = fresh
    assert lock(run_module, sb, "run-a")["changed"]
    marker = tmp_path / "copied"
    payload = dict(promote_args(sb, promotion_run_id="run-a"), _ansible_check_mode=False, _ansible_diff=False,
                   _ansible_verbosity=0)
    proc = subprocess.Popen([sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, MODULE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=module_env({"CASPER_DIRECTUS_PROMOTE_FAULT": "copied:wait:%s" % marker}))
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc.stdin.close()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    for (session,) in q(sb.prod, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (sb.prod.user,)):
        q(sb.prod, "KILL %d" % session)
    refused = run_module(MODULE, promote_args(sb, promotion_run_id="run-b"))
    assert refused.get("failed") and "run-a" in refused["msg"], refused.get("msg")
    marker.unlink()
    failed = json.loads(proc.stdout.read())
    proc.wait(60)
    assert failed.get("failed") and "production was not changed: checked on a new connection" in failed["msg"], failed
    assert q(sb.prod, "SELECT run_id FROM directus__promote_state.promotion_lock")[0][0] == "run-a"
    again = run_module(MODULE, promote_args(sb, promotion_run_id="run-a"))
    assert not again.get("failed") and again["changed"], again.get("msg")


def test_without_a_lock_the_database_module_runs_alone(fresh, run_module):
    sb = fresh
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed") and result["promotion_lock"] is None, result.get("msg")
    assert q(sb.prod, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
             (DB + "__promote_state", LOCK))[0][0] == 0


def test_rollback_reports_the_promotion_it_undoes(fresh, run_module):
    sb = fresh
    assert lock(run_module, sb, "run-a")["changed"]
    assert run_module(MODULE, promote_args(sb, promotion_run_id="run-a"))["changed"]
    assert lock(run_module, sb, "run-a", state="absent")["changed"]
    planned = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True), check=True)
    assert planned["rollback_of"]["promotion_run_id"] == "run-a", planned
    assert planned["rollback_of"]["backup_schema"].startswith(DB + "__backup_")
    assert lock(run_module, sb, "rollback-1", kind="rollback")["changed"]
    refused = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert refused.get("failed") and "rollback-1 (rollback from staging" in refused["msg"], refused.get("msg")
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True, promotion_run_id="rollback-1"))
    assert not back.get("failed") and back["changed"] and back["rollback_of"]["promotion_run_id"] == "run-a", back
