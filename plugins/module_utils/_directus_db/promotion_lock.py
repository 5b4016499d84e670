# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The promotion lock: one row in the target's state schema that a whole promotion (or rollback) holds.

Unlike GET_LOCK, it outlives a module call and a dropped connection: the role takes it before the first
write, every writing step checks it still holds it, and it is released at the end. A holder that died is
taken over once its last sign of life is older than its expiry, or explicitly (break)."""

from __future__ import annotations

import json
import socket

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import state
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure, fetch

TABLE = "promotion_lock"
DEFINITION = ("(id TINYINT NOT NULL PRIMARY KEY, run_id VARCHAR(128) NOT NULL, kind VARCHAR(16) NOT NULL, "
              "source VARCHAR(255) NULL, controller VARCHAR(255) NOT NULL, started_at DATETIME(6) NOT NULL, "
              "seen_at DATETIME(6) NOT NULL, expiry INT NOT NULL)")
COLUMNS = ("run_id", "kind", "source", "controller", "started_at", "seen_at", "expiry", "age", "expired")


def holder(run, conn, for_update=False):
    """The current holder as a dict (with ``age``: seconds since it was last seen, ``expired``), or None."""
    if not state.exists(run, conn) or not fetch(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                                      "AND TABLE_NAME = %s", (state.schema_name(run.db), TABLE)):
        return None
    rows = fetch(conn, "SELECT run_id, kind, source, controller, started_at, seen_at, expiry, "
                       "TIMESTAMPDIFF(SECOND, seen_at, UTC_TIMESTAMP(6)), "
                       "TIMESTAMPDIFF(SECOND, seen_at, UTC_TIMESTAMP(6)) > expiry FROM %s WHERE id = 1%s"
                 % (state.table(run.db, TABLE), " FOR UPDATE" if for_update else ""))
    if not rows:
        return None
    found = dict(zip(COLUMNS, rows[0]))
    found.update(started_at=str(found["started_at"]), seen_at=str(found["seen_at"]), expired=str(found["expired"]) == "1",
                 age=int(found["age"]))
    return found


def describe(found):
    return "run %s (%s from %s, started %s UTC on %s, last seen %d s ago%s)" % (
        found["run_id"], found["kind"], found["source"] or "-", found["started_at"], found["controller"], found["age"],
        ", past its expiry of %d s" % found["expiry"] if found["expired"] else "")


def acquire(run, conn, run_id, kind, source, expiry, break_lock=False):
    """Take the lock for ``run_id`` (or renew it). Returns {acquired, renewed, took_over: holder or None}.
    Failure naming the holder when another live run holds it."""
    if not run.check:
        state.ensure(run, conn)
        run.sql(conn, "CREATE TABLE IF NOT EXISTS %s %s ENGINE=InnoDB" % (state.table(run.db, TABLE), DEFINITION), record=False)
        run.sql(conn, "START TRANSACTION", record=False)
    try:
        found = holder(run, conn, for_update=not run.check)
        if found and found["run_id"] == run_id:
            outcome = {"acquired": False, "renewed": True, "took_over": None}
        elif found and not found["expired"] and not break_lock:
            raise Failure("another promotion holds the promotion lock of database '%s': %s; nothing was changed. Wait for "
                          "it to end; if it died, the lock is free once it has not been seen for %d s, or break it "
                          "(role: -e promote_break_lock=true)" % (run.db, describe(found), found["expiry"]))
        else:
            outcome = {"acquired": True, "renewed": False, "took_over": found}
        if not run.check:
            run.sql(conn, "REPLACE INTO %s (id, run_id, kind, source, controller, started_at, seen_at, expiry) VALUES "
                    "(1, %%s, %%s, %%s, %%s, %s, UTC_TIMESTAMP(6), %%s)" % (
                        state.table(run.db, TABLE), "%s" if outcome["renewed"] else "UTC_TIMESTAMP(6)"),
                    (run_id, kind, source, socket.gethostname()[:255]) + (
                        (found["started_at"],) if outcome["renewed"] else ()) + (int(expiry),), record=False)
            run.sql(conn, "COMMIT", record=False)
    except BaseException:
        if not run.check:
            run.sql(conn, "ROLLBACK", record=False)
        raise
    return outcome


def check(run, conn, run_id):
    """Whether ``run_id`` still holds the lock (renewing its sign of life); Failure naming who holds it if not."""
    found = holder(run, conn)
    if found is None:
        if run.check:
            return None  # check mode took no lock: nothing to hold
        raise Failure("this promotion (run %s) no longer holds the promotion lock of database '%s': nobody holds it "
                      "(it was released or broken); stopping before this step writes anything" % (run_id, run.db))
    if found["run_id"] != run_id:
        raise Failure("this promotion (run %s) no longer holds the promotion lock of database '%s': %s holds it; "
                      "stopping before this step writes anything" % (run_id, run.db, describe(found)))
    if not run.check:
        run.sql(conn, "UPDATE %s SET seen_at = UTC_TIMESTAMP(6) WHERE id = 1 AND run_id = %%s" % state.table(run.db, TABLE),
                (run_id,), record=False)
    return found


def release(run, conn, run_id):
    """Release the lock if ``run_id`` holds it. Returns whether it did."""
    found = holder(run, conn)
    if found is None or found["run_id"] != run_id:
        return False
    if not run.check:
        run.sql(conn, "DELETE FROM %s WHERE id = 1 AND run_id = %%s" % state.table(run.db, TABLE), (run_id,), record=False)
    return True


def guard_writes(run, conn, run_id):
    """For a module about to write: another live promotion's lock refuses; ``run_id`` must hold it when given."""
    if run_id:
        return check(run, conn, run_id)
    found = holder(run, conn)
    if found and not found["expired"]:
        raise Failure("a promotion holds the promotion lock of database '%s': %s; nothing was changed (pass its "
                      "promotion_run_id when this run is part of it)" % (run.db, describe(found)))
    return found


def as_json(found):
    return json.loads(json.dumps(found, default=str)) if found else None
