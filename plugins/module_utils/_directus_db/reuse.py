# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Checksum reuse: the server facts that let a recorded checksum stand in for CHECKSUM TABLE
(directus_db.checksum_reusable holds the rule; this module reads the facts and takes the marks)."""

from __future__ import annotations

import time

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch, reason_of

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None

# INNODB_TRX is a cache that InnoDB refreshes only when nobody read it for 100 ms
PROBE_IDLE = 0.12
PROBE_ATTEMPTS = 4
GUARD_ATTEMPTS = 3


def newest_create_time(stats):
    """The latest CREATE_TIME (UNIX seconds) among table_stats() entries, None when none is known."""
    times = [rules.whole_seconds(entry.get("create_time")) for entry in stats]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def recording(run, ident):
    """Whether this run trusts and records UPDATE_TIME marks on that server."""
    return bool(run.params["reuse_checksums"]) and rules.is_mariadb(ident.get("version"))


def wait_for_next_second(conn, newest_write):
    now = fetch(conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0]
    delay = rules.seconds_to_next(newest_write, now)
    if delay:
        time.sleep(delay)


class Probes:
    """INNODB_TRX listings of one side, spaced so that each is a fresh one."""

    def __init__(self, run):
        self.run = run
        self.probe_at = {}

    def trx_probe(self, side, conn, ignore=()):
        """(now, writers, problem): the server's clock, then INNODB_TRX read inside a new transaction of
        ``conn`` (rules.foreign_writers). problem is None or why nothing can be concluded."""
        try:
            own = fetch(conn, "SELECT CONNECTION_ID()")[0][0]
            for _attempt in range(PROBE_ATTEMPTS):
                idle = PROBE_IDLE - (time.monotonic() - self.probe_at.get(side, -PROBE_IDLE))
                if idle > 0:
                    time.sleep(idle)
                now = fetch(conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0]
                self.run.sql(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT", record=False)
                try:
                    rows = fetch(conn, "SELECT trx_mysql_thread_id, UNIX_TIMESTAMP(trx_started), trx_autocommit_non_locking, "
                                 "trx_is_read_only FROM information_schema.INNODB_TRX")
                    # the listing says when it was truncated (memory limit) in a warning
                    warned = fetch(conn, "SHOW WARNINGS")
                finally:
                    self.run.sql(conn, "COMMIT", record=False)
                    self.probe_at[side] = time.monotonic()
                writers = rules.foreign_writers(rows, own, ignore)
                if writers is not None and not warned:
                    return now, writers, None
            return None, None, "INNODB_TRX showed no fresh listing (something polls it more often than every 100 ms)"
        except pymysql.err.MySQLError as exc:
            return None, None, "cannot read INNODB_TRX (%s); it needs the PROCESS privilege" % reason_of(exc)

    def source_mark(self, plan_inputs, snap, src_ident):
        """The mark of the source snapshot about to be taken (rules.write_mark); None when not recorded.

        ``plan_inputs``: (keep, exclude, merge_spec) -- only tables that may be replaced count: kept ones
        (sessions, activity) are written all the time."""
        run = self.run
        if run.check or not recording(run, src_ident):
            return None, None
        keep, exclude, merge_spec = plan_inputs
        newest = [rules.whole_seconds(updated) for name, updated in fetch(
            snap, "SELECT TABLE_NAME, UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (run.src_db,)) if updated is not None and not rules.matches(name, keep)
            and not rules.matches(name, exclude) and rules.merge_column(name, merge_spec) is None]
        wait_for_next_second(snap, max(newest) if newest else None)
        now, writers, problem = self.trx_probe("source", snap)
        note = "source: %s; checksums read in this run are not recorded for reuse" % problem if problem else None
        return rules.write_mark(now, writers), note

    def source_guard(self, conn, snap_thread):
        """None when no write transaction runs on the source right after the snapshot, else why.

        InnoDB stamps UPDATE_TIME just after a commit became visible; a transaction caught between the
        two would be in the snapshot without its stamp. Such a transaction is still listed."""
        why = None
        for _attempt in range(GUARD_ATTEMPTS):
            _now, writers, problem = self.trx_probe("source", conn, ignore=(snap_thread,))
            if problem:
                return problem
            if not writers:
                return None
            why = "write transactions were running on the source (thread ids %s)" % ", ".join(
                sorted({str(w[0]) for w in writers}))
        return why


def recorded(state, name, side):
    row = state.get(name) or {}
    return {"checksum": row.get("%s_checksum" % side), "ident": row.get("%s_ident" % side), "mark": row.get("%s_mark" % side),
            "create_time": row.get("%s_create_time" % side), "table_id": row.get("%s_table_id" % side)}


def reusable(state, names, side, ident, stats, reasons):
    """{table: recorded checksum} for the tables whose recorded checksum may be reused on that side."""
    out = {}
    current_ident = rules.server_ident(ident)
    for name in names:
        if name not in state:
            reasons[name] = ["no checksum recorded yet (never written by a promotion)"]
            continue
        current = dict(stats.get(name) or {}, version=ident.get("version"), ident=current_ident)
        ok, why = rules.checksum_reusable(recorded(state, name, side), current)
        if ok:
            out[name] = str(recorded(state, name, side)["checksum"])
        else:
            reasons.setdefault(name, []).append("%s: %s" % (side, why))
    return out


def summary(run, plan):
    """Why reuse was not possible at all on a side in this run."""
    if not run.params["reuse_checksums"]:
        return ["reuse_checksums=false: every checksum computed"]
    notes = []
    for label, ident in (("source", plan.src_ident), ("target", plan.tgt_ident)):
        if not rules.is_mariadb(ident.get("version")):
            notes.append("%s: %s is not MariaDB: its checksums are always computed" % (label, ident.get("version")))
    return notes + list(plan.reuse_notes)


def target_mark(run, plan, probes, shadow, new_state):
    """(conn, {mark, ids}) for the tables about to go live (rules.write_mark); (conn, None) when not recorded."""
    if not new_state or not recording(run, plan.tgt_ident):
        return None, None
    conn = run.utc("target")
    try:
        stats = catalog.table_stats(conn, shadow)
    except pymysql.err.MySQLError as exc:
        plan.reuse_notes.append("target: cannot read table statistics (%s); it needs the PROCESS privilege" % reason_of(exc))
        return conn, None
    newest = [rules.whole_seconds(stats.get(n, {}).get("update_time")) for n in new_state]
    newest = [x for x in newest if x is not None]
    # our own last write must be in an earlier second than the mark, or the next run cannot trust it
    wait_for_next_second(conn, max(newest) if newest else None)
    now, writers, problem = probes.trx_probe("target", conn)
    if problem:
        plan.reuse_notes.append("target: %s; target checksums are not recorded for reuse" % problem)
        return conn, None
    return conn, {"mark": rules.write_mark(now, writers), "ids": {n: stats.get(n, {}).get("table_id") for n in new_state}}


def record_source_marks(plan, new_state):
    """What the next run needs to trust the recorded source checksums (rules.checksum_reusable)."""
    src_ident = rules.server_ident(plan.src_ident)
    for name, entry in new_state.items():
        src = plan.src_stats.get(name) or {}
        if plan.src_mark is not None and src.get("table_id") is not None:
            entry.update(source_ident=src_ident, source_mark=plan.src_mark, source_create_time=src.get("create_time"),
                         source_table_id=src.get("table_id"))


def record_target_marks(run, plan, new_state, conn, marks):
    """The same for the target, read right after the swap; returns the newest CREATE_TIME recorded for a live
    table (the caller lets its second pass before it ends), or None."""
    if not new_state or marks is None:
        return None
    try:
        # after the cut-over: RENAME TABLE changed CREATE_TIME, the table ids moved along
        live = catalog.table_stats(conn, run.db)
    except pymysql.err.MySQLError as exc:
        plan.reuse_notes.append("target: cannot read table statistics (%s)" % reason_of(exc))
        return None
    tgt_ident = rules.server_ident(plan.tgt_ident)
    recorded_live = []
    for name, entry in new_state.items():
        now_live = live.get(name) or {}
        shadow_id = marks["ids"].get(name)
        if marks["mark"] is not None and shadow_id is not None and str(now_live.get("table_id")) == str(shadow_id):
            entry.update(target_ident=tgt_ident, target_mark=marks["mark"], target_create_time=now_live.get("create_time"),
                         target_table_id=shadow_id)
            recorded_live.append(now_live)
    return newest_create_time(recorded_live)
