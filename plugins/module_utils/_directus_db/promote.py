# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The orchestrator: a promotion or a rollback, phase after phase, and what becomes of a failed one."""

from __future__ import annotations

import gzip
import os
import time

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import (
    catalog,
    compare,
    cutover,
    preflight,
    promotion_lock,
    recovery,
    reuse,
    rollback,
    state,
)
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.copy import ShadowCopy
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.journal import Journal
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import (
    Failure,
    fetch,
    stream_rows,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import fault_point
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    connect,
    insert_batches,
    literal_kind,
    qualified,
    quote_ident,
    row_encoder,
)

# the longest timestamp a side schema can carry: a second's stamp with a number
LONGEST_STAMP = "20260101T000000_99"


def check_schema_names(run):
    """Every schema name a promotion or rollback derives from the database name fits MySQL's 64 characters."""
    too_long = [rules.STATE_MARK] if len(state.schema_name(run.db)) > 64 else []
    for mark in (rules.SHADOW_MARK, rules.BACKUP_MARK, rules.ROLLEDBACK_MARK):
        if len(run.db + mark + LONGEST_STAMP) > 64:
            too_long.append(mark + "<timestamp>")
    if too_long:
        raise Failure("the target database name '%s' (%d characters) is too long for the schemas promotions keep beside "
                      "it (%s, up to %d characters in all; MySQL allows 64); nothing was changed"
                      % (run.db, len(run.db), ", ".join(run.db + m for m in too_long),
                         len(run.db + rules.ROLLEDBACK_MARK + LONGEST_STAMP)))


def start(run):
    """Connect to the target, check the derived names, take the lock, settle what an interrupted run left.
    Returns the entries settled (recovery.recover_open)."""
    with run.timed("connect"):
        run.open_target()
    check_schema_names(run)
    run.acquire_lock()
    run.result["promotion_lock"] = promotion_lock.as_json(
        promotion_lock.guard_writes(run, run.target, run.params.get("promotion_run_id")))
    settled = recovery.recover_open(run)
    clean_leftovers(run)
    return settled


def clean_leftovers(run):
    """Shadow schemas no journal entry accounts for (a release before the journal, a run killed before its entry)."""
    for schema in rules.schemas_with_mark(run.schemas(), run.db, rules.SHADOW_MARK):
        if run.check:
            run.add("leftovers", "warning", "shadow schema %s left by an interrupted run will be removed" % schema)
        else:
            run.sql(run.target, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
            run.add("leftovers", "changed", "removed shadow schema %s left by an interrupted run" % schema)


# --------------------------------------------------------------------------- promotion

def promote(run):
    if not run.params.get("source"):
        raise Failure("source is required unless rollback=true")
    start_time = time.monotonic()
    with run.timed("connect"):
        # one consistent snapshot of the source for everything read from it
        run.source = run.open("source", raw=True, streaming=True)
        run.open_target()
    src_ident = catalog.identity(run.source, run.src_db)
    tgt_ident = catalog.identity(run.target, run.db)
    if rules.same_database(src_ident, tgt_ident):
        raise Failure("source and target are the same database ('%s' on %s:%s); refusing to promote a database onto itself"
                      % (run.db, tgt_ident["hostname"], tgt_ident["port"]))
    check_schema_names(run)
    run.acquire_lock()
    run.result["promotion_lock"] = promotion_lock.as_json(
        promotion_lock.guard_writes(run, run.target, run.params.get("promotion_run_id")))
    pending = recovery.recover_open(run)
    if run.check and pending:
        # what the tables will be is known only once the entry is settled: report the repair, not a guess
        run.add("plan", "warning", "the per-table plan is made once the interrupted run is settled; run without check "
                "mode to settle it, then check again")
        run.result["changed"] = True
        return
    clean_leftovers(run)
    probes = reuse.Probes(run)
    snap = run.source
    run.sql(snap, "SET SESSION time_zone = '+00:00'", record=False)
    run.sql(snap, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", record=False)
    snap_thread = fetch(snap, "SELECT CONNECTION_ID()")[0][0]
    try:
        merge_spec = rules.parse_merge_spec(run.params["merge_tables"])
    except rules.PlanError:
        merge_spec = {}  # reported by the preflight
    src_mark, note = probes.source_mark((run.params["keep_tables"], run.params["exclude_tables"], merge_spec), snap,
                                        src_ident)
    run.sql(snap, "START TRANSACTION WITH CONSISTENT SNAPSHOT", record=False)
    plan = preflight.gather(run, src_ident, tgt_ident)
    plan.src_mark = src_mark
    if note:
        plan.reuse_notes.append(note)
    preflight.check(run, plan)
    run.timings["preflight"] = round(time.monotonic() - start_time - run.timings.get("connect", 0), 3)
    with run.timed("compare"):
        compare.decide(run, plan, probes, snap_thread)
    run.result.update(tables=plan.tables, changed_tables=plan.changed_tables)
    if run.diff:
        run.result["diff"] = compare.diff(run, plan)
    run.plan = plan
    run.fail_if_errors()
    run.result["changed"] = bool(plan.changed_tables)
    if run.result["changed"] and not run.check:
        execute(run, plan, probes)


def execute(run, plan, probes):
    """Journal, shadow copy, swap, finish; a failure settles the journal entry before it is reported."""
    run.result["recycled"] = []
    stamp = run.new_stamp(rules.BACKUP_MARK, rules.SHADOW_MARK)
    shadow = rules.side_schema_name(run.db, rules.SHADOW_MARK, stamp)
    backup = rules.side_schema_name(run.db, rules.BACKUP_MARK, stamp)
    journal = run.journal = Journal.begin(run, "promote", cutover.work_order(run, plan, shadow, backup))
    newest = None
    fault_point("journal_begun")
    copy = ShadowCopy(run, plan, shadow, journal)
    run.result["recycled"] = copy.recycled_report
    with run.timed("copy"):
        copy.build()
    journal.order["merged"] = copy.merged
    if run.params.get("backup_file"):
        with run.timed("backup_file"):
            write_backup_file(run, plan, run.params["backup_file"])
    with run.timed("mark"):
        # after the last write to the shadow tables, before they go live
        mark_conn, marks = reuse.target_mark(run, plan, probes, shadow, copy.new_state)
    reuse.record_source_marks(plan, copy.new_state)
    journal.order["state"] = copy.new_state
    journal.save_order()
    fault_point("copied")
    with run.timed("swap"):
        cutover.prepare(run, journal)
        started = time.monotonic()
        cutover.swap(run, journal, "the live tables were not swapped")
        run.timings["cutover"] = round(time.monotonic() - started, 3)
        newest = reuse.record_target_marks(run, plan, copy.new_state, mark_conn, marks)
        cutover.finish(run, journal, state.table_state_statements(run.db, copy.new_state))
    run.result["backup_schema"] = backup if plan.swap_out else None
    with run.timed("finish"):
        if newest is not None:
            # the cut-over just set these CREATE_TIMEs: end only after their second, so that no later
            # ALTER TABLE (a foreign key re-created by the next run, a migration) can share it unseen
            reuse.wait_for_next_second(mark_conn, newest)
        prune(run, rules.BACKUP_MARK)


def prune(run, mark):
    keep = int(run.params["keep_backups"])
    for schema in rules.backups_to_prune(run.schemas(), run.db, keep, mark=mark):
        if mark == rules.BACKUP_MARK:
            state.drop_backup(run, schema)
        else:
            run.sql(run.target, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))


def write_backup_file(run, plan, path):
    """Logical SQL backup (0600) of the live tables about to be swapped out."""
    raw = run.open("target", raw=True, streaming=True)
    run.sql(raw, "SET SESSION time_zone = '+00:00'", record=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    fh = os.fdopen(fd, "wb")
    out = gzip.GzipFile(fileobj=fh, mode="wb") if path.endswith(".gz") else fh
    try:
        out.write(b"-- casper.directus_promote backup of %s\nSET NAMES utf8mb4;\nSET foreign_key_checks = 0;\n"
                  b"SET unique_checks = 0;\nSET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET time_zone = '+00:00';\n"
                  % run.db.encode("utf-8"))
        for name in sorted(plan.swap_out):
            create = catalog.show_create(run.target, run.db, name)
            out.write(b"\nDROP TABLE IF EXISTS %s;\n%s;\n" % (quote_ident(name).encode("utf-8"), create.encode("utf-8")))
            cols = [c for c in plan.tgt_cols[name] if not c[2]]
            col_sql = ", ".join(quote_ident(c[0]) for c in cols)
            prefix = ("INSERT INTO %s (%s) VALUES " % (quote_ident(name), col_sql)).encode("utf-8")
            encoder = row_encoder([literal_kind(c[1]) for c in cols])
            with raw.cursor() as cur:
                cur.execute("SELECT %s FROM %s" % (col_sql, qualified(run.db, name)))
                for stmt, _count in insert_batches(stream_rows(cur), prefix, encoder, 1024 * 1024):
                    out.write(stmt + b";\n")
    finally:
        if out is not fh:
            out.close()
        fh.close()
    run.commands.append("backup file written: %s (%d tables)" % (path, len(plan.swap_out)))


# --------------------------------------------------------------------------- rollback

def roll_back(run):
    finished = [j for j, where, _done in start(run) if j.kind == "rollback" and where == "swapped"]
    if finished:
        # an interrupted rollback whose swap had completed: finishing it was this rollback
        run.result.update(changed=True, changed_tables=sorted(set(finished[0].order["swap_in"]) | set(
            finished[0].order["swap_out"])), backup_schema=finished[0].order["outgoing"])
        return
    order = rollback.plan_rollback(run)
    if run.check or not run.result["changed"]:
        return
    with run.timed("rollback"):
        rollback.execute(run, order)
    run.result["backup_schema"] = order["outgoing"] if order["swap_out"] else None
    prune(run, rules.ROLLEDBACK_MARK)


# --------------------------------------------------------------------------- after a failure

def settle_after_failure(run):
    """Settle this run's open journal entry on a new connection: stop our statements still running (a RENAME
    waiting for its locks), then repair forward or backward from what the server shows. Returns the outcome:
    {entry, state: 'not swapped' | 'swapped' | 'unknown', repaired: [...], detail}."""
    journal = getattr(run, "journal", None)
    if journal is None or journal.status != "open":
        return None
    outcome = {"entry": journal.run_id, "state": "unknown", "repaired": [], "detail": None}
    try:
        fresh = connect(run.params["target"], "target")
    except Exception as exc:  # noqa: BLE001 - reported as the outcome
        outcome["detail"] = "cannot reconnect to the target (%s)" % exc
        return outcome
    fresh.casper_side = "target"
    own = {conn.thread_id() for conn in run.conns if getattr(conn, "casper_side", None) == "target"}
    run.conns.append(fresh)
    run.target = journal.conn = fresh
    journal._seq = None  # pylint: disable=protected-access
    try:
        run.sql(fresh, "SET SESSION foreign_key_checks = 0", record=False)
        recovery.stop_statements(run, threads=own, kill_connection=False)
        holder = fetch(fresh, "SELECT IS_USED_LOCK(%s)", (run.lock_name,))[0][0]
        if holder is None:
            # the session that held the lock is gone (a lost connection): take it again before repairing
            if str(fetch(fresh, "SELECT GET_LOCK(%s, 0)", (run.lock_name,))[0][0]) != "1":
                raise Failure("another run took the promotion lock")
        elif int(holder) not in own:
            outcome["detail"] = "another run (session %s) holds the promotion lock and settles the entry" % holder
            return outcome
        where, done = recovery.repair(run, journal, reraise=False)
        outcome.update(state=where, repaired=done)
        fault_point("settled")
    except BaseException as exc:  # noqa: BLE001 - reported as the outcome
        outcome["detail"] = "repairing failed (%s)" % exc
    return outcome


def describe_outcome(outcome):
    """One sentence on production's state after a failed run, for the failure message."""
    if outcome is None:
        return None
    if outcome["state"] == "not swapped":
        return "production was not changed: checked on a new connection, journal entry %s undone (%s)" % (
            outcome["entry"], "; ".join(outcome["repaired"]) or "nothing to undo")
    if outcome["state"] == "swapped":
        return "the swap had completed: production has the new content; finished on a new connection (%s)" % (
            "; ".join(outcome["repaired"]))
    return ("production's state could not be checked (%s); the next run repairs it from journal entry %s"
            % (outcome["detail"], outcome["entry"]))


def describe_early_stop(run):
    """For a run that stopped before opening its journal entry: it wrote nothing but the repairs it reported."""
    if run.journal is not None or run.check:
        return None
    repaired = [f["message"] for f in run.findings if f["check"] in ("recovery", "leftovers") and f["status"] == "changed"]
    if repaired:
        return "the run stopped before promoting anything; before that it settled: %s" % "; ".join(repaired)
    return "production was not changed: the run stopped before its first write"
