# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Recovery: an open journal entry repaired from what the server shows now.

A run that dies (SIGKILL, a lost connection, a crash) leaves its entry open. The next run, once it holds
the promotion lock, and a run that fails or is interrupted, on a new connection, settle it:

- first every statement the dead run may still have running is stopped (a RENAME TABLE its client sent
  can still complete once the locks it waits for are free), and only then is the server looked at;
- *forward* when the swap happened (the incoming tables left the shadow schema): the kept tables' FKs,
  remaps, NULLed references and merged rows are finished exactly as the run would have, and the entry
  closes complete with the state rollback needs;
- *backward* when it did not: the kept tables' FKs point at their live parents again, columns the run
  added to kept tables are dropped, the shadow, an empty backup and a donor the run took tables from are
  dropped, and the entry closes undone.
"""

from __future__ import annotations

import time

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, cutover, ddl, locks
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import rollback as rollback_phase
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import state
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.journal import UNDONE, Journal
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch, interrupts_deferred
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import quote_ident

SETTLE_WAIT = 30.0


def swapped(run, journal):
    """Whether the entry's RENAME TABLE took effect, read from where the tables are now."""
    order = journal.order
    if not (order["swap_in"] or order["swap_out"]) or not journal.has("swap", "intent"):
        return False
    schemas = set(run.schemas())
    incoming = set(catalog.base_tables(run.target, order["incoming"])[0]) if order["incoming"] in schemas else set()
    if order["swap_in"]:
        # RENAME TABLE is atomic: none of them left the incoming schema, or all did
        return not any(t in incoming for t in order["swap_in"])
    outgoing = set(catalog.base_tables(run.target, order["outgoing"])[0]) if order["outgoing"] in schemas else set()
    return all(t in outgoing for t in order["swap_out"])


def stop_statements(run, threads=(), schemas=(), kill_connection=True):
    """Stop what other sessions run for a promotion: the given threads and any statement naming one of
    ``schemas``; wait until they ended. Returns the thread ids stopped."""
    own = int(fetch(run.target, "SELECT CONNECTION_ID()")[0][0])
    threads = {int(t) for t in threads if t} - {own}
    stopped = set()
    deadline = time.monotonic() + SETTLE_WAIT
    while True:
        busy = []
        for thread, command, info in fetch(run.target, "SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST "
                                                       "WHERE ID <> CONNECTION_ID()"):
            thread = int(thread)
            mine = thread in threads or (info and any(s and s in info for s in schemas))
            if mine and (kill_connection or command not in ("Sleep", "Killed")) and command != "Daemon":
                busy.append(thread)
        if not busy:
            return sorted(stopped)
        if time.monotonic() > deadline:
            raise RuntimeError("sessions %s of an earlier run did not end within %d s" % (busy, SETTLE_WAIT))
        for thread in busy:
            if thread not in stopped:
                try:
                    run.sql(run.target, "KILL %s%d" % ("" if kill_connection else "QUERY ", thread), record=False)
                except Exception:  # noqa: BLE001 - it may have ended meanwhile
                    pass
                stopped.add(thread)
        time.sleep(0.05)


def entry_schemas(order):
    return [s for s in (order.get("incoming"), order.get("outgoing"), order.get("donor")) if s]


def repair(run, journal, reraise=True):
    """Settle an open entry, forward or backward. Returns (state, [what was done]). A SIGTERM or SIGINT waits
    until it is settled, then ends the run (``reraise``) or is dropped (a failed run settling its own entry)."""
    with interrupts_deferred(reraise):
        if swapped(run, journal):
            done = forward(run, journal)
            return "swapped", done
        return "not swapped", backward(run, journal)


def forward(run, journal):
    order = journal.order
    done = []
    if order["kind"] == "promote":
        done += cutover.ensure_kept_fks(run, order)
        cutover.finish(run, journal)
    else:
        done += cutover.ensure_kept_fks(run, order)
        rollback_phase.finish(run, journal)
    done.append("finished what followed the swap (journal entry %s complete)" % journal.run_id)
    return done


def backward(run, journal):
    order = journal.order
    done = cutover.ensure_kept_fks(run, order)
    live = order["live"]
    schemas = set(run.schemas())
    if order["kind"] == "promote":
        columns = {(t, c) for t, cs in catalog.columns(run.target, live).items() for c, _d, _g in cs}
        for add in order.get("column_adds") or []:
            if journal.has("column_add:%s.%s" % (add["table"], add["column"]), "intent") \
                    and (add["table"], add["column"]) in columns:
                locks.bounded_ddl(run, run.target, ddl.drop_column_sql(live, ddl.ColumnAdd(**add)), "it stays added")
                done.append("column %s.%s the run had added dropped again" % (add["table"], add["column"]))
        if order.get("donor") and order["donor"] in schemas:
            state.drop_backup(run, order["donor"])
            done.append("backup %s dropped (the run had taken tables from it; it was due for pruning)" % order["donor"])
    else:
        # the backup's FKs that were pointed at live parents for the swap go back into the backup
        done += cutover.ensure_side_fks(run, order["incoming"], live)
    for schema, what in ((order["incoming"] if order["kind"] == "promote" else None, "shadow schema"),
                         (order["outgoing"], "empty %s schema" % ("backup" if order["kind"] == "promote" else "rolled-back"))):
        if schema and schema in schemas:
            if what.startswith("empty") and catalog.base_tables(run.target, schema)[0]:
                continue
            run.sql(run.target, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
            done.append("%s %s dropped" % (what, schema))
    journal.close(UNDONE, outcome={"swapped": False, "repaired": done})
    return done


def recover_open(run):
    """At the start of a run: settle every entry a dead run left open (check mode: report what it would do).
    Returns [(entry, 'swapped' | 'not swapped', [what was done])] of the entries settled (would settle)."""
    settled = []
    for journal in Journal.open_entries(run, run.target):
        if run.check:
            if run.lock_free_now():
                run.add("recovery", "changed", describe(run, journal))
                settled.append((journal, "swapped" if swapped(run, journal) else "not swapped", []))
            else:
                run.add("recovery", "warning", "journal entry %s is open and its run may still be running" % journal.describe())
            continue
        stop_statements(run, threads=[journal.thread_id], schemas=entry_schemas(journal.order))
        where, done = repair(run, journal)
        run.add("recovery", "changed", "interrupted %s (%s): %s" % (
            journal.describe(), where, "; ".join(done) or "nothing left to do"))
        settled.append((journal, where, done))
    return settled


def describe(run, journal):
    """What settling an open entry would do (read-only)."""
    order = journal.order
    if swapped(run, journal):
        return ("interrupted %s: its swap completed; this run would finish what follows it (kept tables' foreign "
                "keys, remapped ids, references, merged rows) and close the entry" % journal.describe())
    return ("interrupted %s: its swap did not happen; this run would put the kept tables' foreign keys back, drop the "
            "columns it added and the schemas it created (%s) and close the entry" % (
                journal.describe(), ", ".join(entry_schemas(order))))
