# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Statements that need metadata locks production sessions may hold: each waits at most cutover_lock_wait
seconds, so that production's queries never queue behind it for longer, and is tried cutover_attempts times."""

from __future__ import annotations

import time

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure, fetch

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None

# MariaDB and MySQL report a metadata lock wait that ran out (lock_wait_timeout) as this error
ER_LOCK_WAIT_TIMEOUT = 1205
CUTOVER_PAUSE = 2.0


def bounded_locks(run, conn, attempt, what, outcome, undo=None):
    """Run ``attempt()`` on ``conn`` waiting at most cutover_lock_wait seconds for metadata locks; after a
    timeout, ``undo()`` and, after a pause, the next of cutover_attempts attempts. Returns what ``attempt``
    returns; fails naming the holders, with ``outcome`` (what has become of the run) after the last attempt."""
    wait = int(run.params["cutover_lock_wait"])
    attempts = int(run.params["cutover_attempts"])
    holders = None
    for number in range(1, attempts + 1):
        if number > 1:
            time.sleep(CUTOVER_PAUSE)
        run.sql(conn, "SET SESSION lock_wait_timeout = %d" % wait, record=False)
        try:
            return attempt()
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != ER_LOCK_WAIT_TIMEOUT:
                raise
            holders = lock_holders(run, conn, wait) or "a session that could not be identified"
        finally:
            # what follows (the undo, the statements after the swap) must not give up half-way
            run.sql(conn, "SET SESSION lock_wait_timeout = DEFAULT", record=False)
        if undo:
            undo()
        message = "%s, attempt %d of %d: waited %d s for a metadata lock, held by %s" % (what, number, attempts, wait, holders)
        run.add("cutover", "warning", message)
        run.commands.append(message)
    raise Failure("%s could not get its metadata locks in %d attempts of %d s (held by %s); production was not "
                  "stalled longer than that, %s" % (what, attempts, wait, holders, outcome))


def bounded_ddl(run, conn, sql, outcome="the live tables were not swapped"):
    """One DDL statement on a live table (or on the child of a live parent) under bounded_locks. Each
    statement is atomic: a timed-out one changed nothing."""
    bounded_locks(run, conn, lambda: run.sql(conn, sql), sql[:120], outcome)


def lock_holders(run, conn, wait):
    """Who may hold the live tables: other sessions in an open transaction, or running one statement
    for at least ``wait`` seconds (MariaDB shows metadata locks only with a plugin)."""
    own = run.own_threads()
    try:
        rows = fetch(conn, "SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, t.trx_started IS NOT NULL, "
                     "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) FROM information_schema.PROCESSLIST p "
                     "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
                     "WHERE p.COMMAND NOT IN ('Daemon', 'Binlog Dump') AND (t.trx_started IS NOT NULL OR "
                     "(p.COMMAND <> 'Sleep' AND p.TIME >= %s)) ORDER BY p.TIME DESC", (wait,))
    except pymysql.err.MySQLError:
        return None
    found = []
    for thread, user, host, command, seconds, in_trx, trx_seconds in rows:
        if int(thread) in own:
            continue
        if in_trx:
            what = "a transaction open for %s s (%s)" % (trx_seconds, "idle" if command == "Sleep" else command)
        else:
            what = "a statement running for %s s" % seconds
        found.append("session %s (%s@%s, %s)" % (thread, user, (host or "").split(":")[0], what))
    return ", ".join(found[:5]) + (" and %d more" % (len(found) - 5) if len(found) > 5 else "") if found else None
