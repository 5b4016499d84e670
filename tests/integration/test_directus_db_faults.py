# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection: directus_db_replicate stopped at every step (SIGKILL, SIGTERM, SIGINT, a killed connection).

Every trial starts from the same freshly built staging and production. After the fault:
(a) the swapped tables are all old or all new, none missing; (b) kept tables hold their rows and every foreign
key they had; (c) nothing dangles (directus_users.role and every other FK); (d) the next run succeeds and leaves
exactly what an uninterrupted promotion leaves; (e) a rollback after it restores the content before the promotion.
SIGTERM and SIGINT repair in-process, so (b) and (c) hold right after them; after SIGKILL they hold once the next
run has repaired (check mode first reports what it would repair).

The module stops at a step through the test-only environment variable CASPER_DIRECTUS_PROMOTE_FAULT
(``<step>:kill|term|int``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from sandbox.module_runner import MODULE_PACKAGE, module_env
from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from sandbox import directus_fixture as fx
from test_directus_db_replicate import (
    DB,
    MODULE,
    build,
    conn_args,
    kill_when_seen,
    promote_args,
    q,
    reading_transaction,
    rows_hash,
    schemas,
)

FAULT_ENV = "CASPER_DIRECTUS_PROMOTE_FAULT"
# where a promotion can be stopped, in the order it passes them
PROMOTION_STEPS = ["journal_begun", "copy", "copied", "column_add", "prepared", "swap", "kept_fks_repointed", "swapped",
                   "kept_fks_ensured", "remapped", "commit:remap", "commit:null", "kept_rows_done", "before_complete"]
ROLLBACK_STEPS = ["journal_begun", "prepared", "swap", "kept_fks_repointed", "swapped", "commit:restore",
                  "kept_rows_done", "before_complete"]
# columns of kept tables that a promotion changes on purpose: the custom field it adds, remapped role ids, and
# (read from the reference promotion's report) references it sets to NULL
KEPT_CHANGES = {"directus_users": {"department", "role"}}
INTERRUPTS = {"term": "SIGTERM", "int": "SIGINT"}


def run_faulted(args, fault=None, check=False, timeout=300):
    """Run the module as Ansible does, stopping at ``fault``: (returncode, result or None when it printed none)."""
    payload = dict(args)
    payload.update({"_ansible_check_mode": check, "_ansible_diff": False, "_ansible_verbosity": 0})
    env = module_env({FAULT_ENV: fault} if fault else None)
    proc = subprocess.run([sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, MODULE)],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}), capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        assert proc.returncode < 0, "no JSON and no signal: rc=%s\n%s" % (proc.returncode, proc.stderr[-3000:])
        return proc.returncode, None


def scenario(sb):
    """Staging and production that differ in every way a promotion handles: content, a custom field on the kept
    directus_users (a column added), production admins on a role id staging lacks (remapped), kept references
    to files staging lacks (set to NULL), per-user access rows (merged)."""
    build(sb, staging=dict(content_rows=150), prod=dict(content_rows=60))
    conn = sb.staging.root_connect()
    fx.add_custom_user_field(conn, DB)
    conn.close()


def live_state(server):
    """{table: content checksum} of the live schema, and its FK definitions."""
    conn = server.root_connect()
    try:
        content = fx.table_checksums(conn, DB)
    finally:
        conn.close()
    return content, fk_definitions(server)


def fk_definitions(server):
    return sorted(q(server, "SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, r.UNIQUE_CONSTRAINT_SCHEMA, r.REFERENCED_TABLE_NAME, "
                            "r.UPDATE_RULE, r.DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS r "
                            "WHERE r.CONSTRAINT_SCHEMA = %s", (DB,)))


def kept_rows(server):
    """Kept tables' rows, without the columns a promotion changes on purpose."""
    tables = [r[0] for r in q(server, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (DB,))
              if r[0] in KEPT_TABLES]
    return {t: rows_hash(server, t, exclude=KEPT_CHANGES.get(t, set())) for t in tables}


KEPT_TABLES = {"directus_users", "directus_sessions", "directus_notifications", "directus_shares", "directus_comments",
               "directus_settings", "directus_extensions", "directus_webhooks", "directus_migrations", "directus_activity",
               "directus_revisions"}


@pytest.fixture(scope="module")
def reference(sandbox):
    """The state before a promotion and after an uninterrupted one (the fixture is deterministic: checked)."""
    sb = sandbox
    scenario(sb)
    old = live_state(sb.prod)
    result = run_faulted(promote_args(sb))[1]
    assert not result.get("failed"), result.get("msg")
    # the scenario reaches every step of a promotion
    assert result["preflight"]["added_columns"] and result["preflight"]["remapped_roles"]
    assert [f for f in result["preflight"]["findings"] if f["check"] == "kept_references" and f["status"] == "changed"]
    for entry in result["tables"]:
        for change in entry.get("changes", []):
            if change.startswith("set ") and " to NULL" in change:
                KEPT_CHANGES.setdefault(entry["name"], set()).add(change.split()[1])
    scenario(sb)
    old_kept = kept_rows(sb.prod)
    assert live_state(sb.prod) == old, "the scenario is not built the same way twice"
    assert run_faulted(promote_args(sb))[1]["changed"]
    new = live_state(sb.prod)
    swapped = sorted(t for t in set(old[0]) | set(new[0]) if old[0].get(t) != new[0].get(t) and t not in KEPT_TABLES)
    assert "articles" in swapped and "directus_roles" in swapped
    return {"old": old, "new": new, "kept": old_kept, "swapped": swapped}


def whole(ref, state):
    """'old' or 'new' when every swapped table is entirely one of them (none missing); fails otherwise."""
    content = state[0]
    seen = {t: "old" if content.get(t) == ref["old"][0].get(t) else "new" if content.get(t) == ref["new"][0].get(t)
            else "neither" for t in ref["swapped"]}
    assert len(set(seen.values())) == 1 and "neither" not in seen.values(), seen
    return seen[ref["swapped"][0]]


def consistent(sb, ref):
    """(b) kept tables hold their rows and every FK, pointing at live; (c) nothing dangles."""
    assert kept_rows(sb.prod) == ref["kept"]
    fks = fk_definitions(sb.prod)
    assert fks == ref["old"][1] == ref["new"][1], "foreign keys differ from what production had"
    conn = sb.prod.root_connect()
    try:
        assert fx.fk_violations(conn, DB) == {}
    finally:
        conn.close()
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.directus_users u LEFT JOIN directus.directus_roles r ON r.id = u.role "
                      "WHERE u.role IS NOT NULL AND r.id IS NULL")[0][0] == 0


def side_schemas(server):
    """Shadow schemas (a backup, the state and a rolled-back schema stay by design)."""
    return [s for s in schemas(server) if "__shadow_" in s]


def finish_and_roll_back(sb, ref):
    """(d) the next run promotes exactly what an uninterrupted one does; (e) a rollback restores the content before."""
    rc, again = run_faulted(promote_args(sb))
    assert rc == 0 and not again.get("failed"), again.get("msg")
    assert live_state(sb.prod) == ref["new"]
    consistent(sb, ref)
    assert side_schemas(sb.prod) == []
    assert q(sb.prod, "SELECT COUNT(*) FROM directus__promote_state.journal WHERE status = 'open'")[0][0] == 0
    rc, back = run_faulted(dict(target=conn_args(sb.prod), rollback=True))
    assert rc == 0 and not back.get("failed") and back["changed"], back.get("msg")
    rolled = live_state(sb.prod)
    # the added custom column stays (data production may have entered in it is never dropped)
    assert {t: c for t, c in rolled[0].items() if t != "directus_users"} == \
        {t: c for t, c in ref["old"][0].items() if t != "directus_users"}
    assert rows_hash(sb.prod, "directus_users", exclude={"department"}) == ref["old_users"]
    assert rolled[1] == ref["old"][1]


@pytest.fixture
def fresh_scenario(sandbox, reference):
    scenario(sandbox)
    reference.setdefault("old_users", rows_hash(sandbox.prod, "directus_users", exclude={"department"}))
    return sandbox


@pytest.mark.parametrize("step", PROMOTION_STEPS)
def test_a_promotion_killed_at_any_step_is_finished_or_undone_by_the_next_run(fresh_scenario, reference, step):
    sb, ref = fresh_scenario, reference
    rc, result = run_faulted(promote_args(sb), "%s:kill" % step)
    assert rc == -9 and result is None, "the run was not stopped at %s" % step
    whole(ref, live_state(sb.prod))
    # check mode reports the open entry and what settling it would do, and changes nothing
    before = live_state(sb.prod), fk_definitions(sb.prod), schemas(sb.prod)
    rc, planned = run_faulted(promote_args(sb), check=True)
    assert rc == 0 and not planned.get("failed"), planned.get("msg")
    assert [f for f in planned["preflight"]["findings"] if f["check"] == "recovery"], planned["preflight"]["findings"]
    assert (live_state(sb.prod), fk_definitions(sb.prod), schemas(sb.prod)) == before
    finish_and_roll_back(sb, ref)


# SIGTERM and SIGINT take one path (the repair on a new connection): SIGTERM where the repair differs (before the
# first live change, amid the changes before the swap, right before and after it, amid the row steps, at the end),
# SIGINT at three of those
TERM_STEPS = ["journal_begun", "copy", "column_add", "kept_fks_repointed", "swapped", "commit:remap", "before_complete"]


@pytest.mark.parametrize("step, signal_name", [(step, "term") for step in TERM_STEPS] + [
    (step, "int") for step in ("copy", "kept_fks_repointed", "commit:remap")])
def test_a_promotion_interrupted_at_any_step_repairs_itself(fresh_scenario, reference, step, signal_name):
    sb, ref = fresh_scenario, reference
    rc, result = run_faulted(promote_args(sb), "%s:%s" % (step, signal_name))
    assert result is not None and result.get("failed"), (rc, result)
    assert "interrupted by %s" % INTERRUPTS[signal_name] in result["msg"], result["msg"]
    state = whole(ref, live_state(sb.prod))
    if state == "old":
        assert "production was not changed: checked on a new connection" in result["msg"], result["msg"]
        assert live_state(sb.prod)[0]["directus_users"] == ref["old"][0]["directus_users"]
    else:
        assert "the swap had completed" in result["msg"], result["msg"]
        assert live_state(sb.prod) == ref["new"]
    assert result["recovery"]["state"] == ("not swapped" if state == "old" else "swapped")
    consistent(sb, ref)
    assert side_schemas(sb.prod) == []
    finish_and_roll_back(sb, ref)


@pytest.fixture
def promoted_scenario(fresh_scenario, reference):
    rc, result = run_faulted(promote_args(fresh_scenario))
    assert rc == 0 and not result.get("failed"), result.get("msg")
    return fresh_scenario


@pytest.mark.parametrize("step, signal_name", [(step, "kill") for step in ROLLBACK_STEPS] + [
    (step, "term") for step in ("swap", "swapped", "commit:restore")])
def test_a_rollback_stopped_at_any_step_is_finished_or_undone_by_the_next_rollback(
        promoted_scenario, reference, step, signal_name):
    sb, ref = promoted_scenario, reference
    args = dict(target=conn_args(sb.prod), rollback=True)
    rc, result = run_faulted(args, "%s:%s" % (step, signal_name))
    if signal_name == "kill":
        assert rc == -9 and result is None, "the rollback was not stopped at %s" % step
    else:
        assert result and "interrupted by SIGTERM" in result["msg"], (rc, result)
        consistent(sb, ref)
    whole(ref, live_state(sb.prod))
    rc, back = run_faulted(args)
    if result and result["recovery"]["state"] == "swapped":
        # the interrupted rollback finished itself: there is nothing left to roll back, and the next one says so
        assert back.get("failed") and "nothing to roll back" in back["msg"], back
    else:
        assert rc == 0 and not back.get("failed") and back["changed"], back.get("msg")
    rolled = live_state(sb.prod)
    assert {t: c for t, c in rolled[0].items() if t != "directus_users"} == \
        {t: c for t, c in ref["old"][0].items() if t != "directus_users"}
    assert rows_hash(sb.prod, "directus_users", exclude={"department"}) == ref["old_users"]
    consistent(sb, ref)
    assert q(sb.prod, "SELECT COUNT(*) FROM directus__promote_state.journal WHERE status = 'open'")[0][0] == 0
    # and production promotes again from there
    rc, again = run_faulted(promote_args(sb))
    assert rc == 0 and not again.get("failed") and live_state(sb.prod) == ref["new"], again.get("msg")


def test_a_killed_loader_connection_mid_copy_changes_nothing(fresh_scenario, reference):
    sb, ref = fresh_scenario, reference
    killed, thread = kill_when_seen(sb.prod, "INSERT INTO `directus__shadow_%%")
    rc, result = run_faulted(promote_args(sb))
    thread.join()
    assert killed, "no INSERT into the shadow schema was seen"
    assert result.get("failed") and result["msg"].startswith("target:"), result.get("msg")
    assert "production was not changed: checked on a new connection" in result["msg"], result["msg"]
    assert live_state(sb.prod) == ref["old"]
    consistent(sb, ref)
    assert side_schemas(sb.prod) == []
    finish_and_roll_back(sb, ref)


def rename_waiting(server, timeout=60):
    """The session id of a RENAME TABLE waiting for a metadata lock, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = q(server, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%%' "
                         "AND STATE LIKE 'Waiting for table metadata lock%%'")
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError("no RENAME TABLE waited for its locks")


def start_module(args, fault=None):
    """The module as a running process (for signals sent from outside)."""
    payload = dict(args)
    payload.update({"_ansible_check_mode": False, "_ansible_diff": False, "_ansible_verbosity": 0})
    proc = subprocess.Popen([sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, MODULE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=module_env({FAULT_ENV: fault} if fault else None))
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc.stdin.close()
    return proc


def in_background(target):
    out = {}
    thread = threading.Thread(target=lambda: out.update(result=target()))
    thread.start()
    return thread, out


def test_the_connection_killed_while_the_rename_waits_changes_nothing(fresh_scenario, reference):
    """The main connection (it holds the promotion lock) is killed while its RENAME waits: the run reconnects,
    takes the lock again, finds the swap did not happen and puts the kept tables' FKs back."""
    sb, ref = fresh_scenario, reference
    holder, _session = reading_transaction(sb.prod, "articles")
    try:
        thread, out = in_background(lambda: run_faulted(promote_args(sb, cutover_lock_wait=20, cutover_attempts=1)))
        q(sb.prod, "KILL %d" % rename_waiting(sb.prod))
        thread.join()
    finally:
        holder.rollback()
        holder.close()
    rc, result = out["result"]
    assert result.get("failed") and "production was not changed: checked on a new connection" in result["msg"], result
    assert live_state(sb.prod) == ref["old"]
    consistent(sb, ref)
    finish_and_roll_back(sb, ref)


@pytest.mark.parametrize("signal_name", ["term", "int"])
def test_an_interrupt_while_the_rename_waits_stops_it_and_changes_nothing(
        fresh_scenario, reference, signal_name, tmp_path):
    """SIGTERM/SIGINT while the RENAME waits for its locks: the run stops its own RENAME on a new connection before
    it looks, puts the FKs back, and says production was not changed -- which stays true when the blocking
    transaction ends right after the run looked (the run waits there, while it still holds its sessions)."""
    sb, ref = fresh_scenario, reference
    marker = tmp_path / "settled"
    holder, _session = reading_transaction(sb.prod, "articles")
    proc = start_module(promote_args(sb, cutover_lock_wait=20, cutover_attempts=1), "settled:wait:%s" % marker)
    try:
        rename_waiting(sb.prod)
        proc.send_signal({"term": 15, "int": 2}[signal_name])
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the run never settled"
            time.sleep(0.05)
    finally:
        holder.rollback()
        holder.close()
    time.sleep(1)  # a RENAME still waiting would now get its locks and complete
    assert live_state(sb.prod) == (ref["old"][0], ref["old"][1])
    marker.unlink()
    result = json.loads(proc.stdout.read())
    proc.wait(60)
    assert "interrupted by %s" % INTERRUPTS[signal_name] in result["msg"], result["msg"]
    assert "production was not changed: checked on a new connection" in result["msg"], result["msg"]
    assert live_state(sb.prod) == ref["old"]
    consistent(sb, ref)
    finish_and_roll_back(sb, ref)


def test_a_promotion_killed_while_the_rename_waits_is_settled_by_the_next_run(fresh_scenario, reference):
    """SIGKILL while the RENAME waits for its locks. What the server then does with the statement of a client that
    is gone is its own affair (MariaDB 10.11 here aborts it once it notices); the next run waits for the dead
    session's lock if need be, looks, settles, and ends where an uninterrupted promotion ends."""
    sb, ref = fresh_scenario, reference
    holder, _session = reading_transaction(sb.prod, "articles")
    try:
        proc = start_module(promote_args(sb, cutover_lock_wait=20, cutover_attempts=1))
        rename_waiting(sb.prod)
        proc.kill()
        proc.wait(30)
    finally:
        holder.rollback()
        holder.close()
    # the dead run's RENAME, completed or aborted: over once its session is gone
    deadline = time.monotonic() + 30
    while q(sb.prod, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (sb.prod.user,)):
        assert time.monotonic() < deadline, "the dead run's sessions did not end"
        time.sleep(0.05)
    whole(ref, live_state(sb.prod))
    finish_and_roll_back(sb, ref)


def test_a_rename_a_dead_run_sent_that_completes_later_is_finished_by_the_next_run(fresh_scenario, reference):
    """A server that completes the RENAME of a dead client once the blocking transaction ends (the issue saw it):
    emulated exactly, with the dead run's statement replayed on a session that holds its promotion lock. The next
    run, started while it waits, waits for that lock, then reads that the swap happened and finishes it (remaps,
    NULLed references, merged rows, the state rollback needs) instead of trusting what a client last saw."""
    sb, ref = fresh_scenario, reference
    rc, _result = run_faulted(promote_args(sb), "kept_fks_repointed:kill")
    assert rc == -9
    order = json.loads(q(sb.prod, "SELECT work_order FROM directus__promote_state.journal WHERE status = 'open'")[0][0])
    rename = rules.build_rename(order["live"], order["outgoing"], order["swap_out"], order["incoming"], order["swap_in"])
    orphan = sb.prod.root_connect()
    holder, _session = reading_transaction(sb.prod, "articles")
    try:
        with orphan.cursor() as cur:
            cur.execute("SELECT GET_LOCK('directus_promote:directus', 0)")
            assert cur.fetchone()[0] == 1
        replay, _out = in_background(lambda: orphan.cursor().execute(rename))
        rename_waiting(sb.prod)
        thread, out = in_background(lambda: run_faulted(promote_args(sb, lock_timeout=30)))
        time.sleep(1.5)
        assert thread.is_alive(), "the next run did not wait for the lock of the dead run's session"
    finally:
        holder.rollback()
        holder.close()
    replay.join()
    orphan.close()
    thread.join()
    rc, result = out["result"]
    assert rc == 0 and not result.get("failed"), result.get("msg")
    recovered = [f["message"] for f in result["preflight"]["findings"] if f["check"] == "recovery"]
    assert recovered and "(swapped)" in recovered[0], result["preflight"]["findings"]
    # the swap the dead run sent was the promotion: nothing was left to copy
    assert result["changed"] is False, result["changed_tables"]
    assert live_state(sb.prod) == ref["new"]
    consistent(sb, ref)
    rc, back = run_faulted(dict(target=conn_args(sb.prod), rollback=True))
    assert rc == 0 and back["changed"] and not back.get("failed"), back.get("msg")
    assert rows_hash(sb.prod, "directus_users", exclude={"department"}) == ref["old_users"]
