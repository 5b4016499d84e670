# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The journal: a record, in the target's state schema, of every change to a live object before it is made.

An entry holds the run's *work order* (everything the swap and what follows it will do: tables swapped,
columns added with their inverses, foreign keys re-pointed with their full definitions, ids remapped,
references set to NULL, merged rows to catch up, the state to record) and, as ``journal_steps``, each step
announced before it runs and marked done after. Row changes are recorded in ``journal_rows`` with their
old values, in the same transaction as the change and its "done" mark. The entry is closed (complete,
undone) in the same transaction as what the next run reads (table_state, backups).
"""

from __future__ import annotations

import json
import socket
import uuid

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import state
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch

OPEN, COMPLETE, UNDONE = "open", "complete", "undone"


class Journal:
    """One entry: ``order`` is its work order (a JSON-able dict)."""

    def __init__(self, run, run_id, kind, order, conn=None, status=OPEN, thread_id=None, started_at=None, controller=None):
        self.run = run
        self.run_id = run_id
        self.kind = kind
        self.order = order
        self.conn = conn or run.target
        self.status = status
        self.thread_id = thread_id
        self.started_at = started_at
        self.controller = controller
        self._seq = None

    def _table(self, name):
        return state.table(self.run.db, name)

    # ------------------------------------------------------------------ writing
    @classmethod
    def begin(cls, run, kind, order):
        """Open an entry (before the first statement that touches a live object)."""
        state.ensure(run)
        run_id = uuid.uuid4().hex
        thread_id = int(fetch(run.target, "SELECT CONNECTION_ID()")[0][0])
        entry = cls(run, run_id, kind, order, thread_id=thread_id, controller=socket.gethostname()[:255])
        run.sql(run.target, "INSERT INTO %s (run_id, kind, status, started_at, thread_id, controller, work_order) VALUES "
                "(%%s, %%s, %%s, UTC_TIMESTAMP(6), %%s, %%s, %%s)" % entry._table("journal"),
                (run_id, kind, OPEN, thread_id, entry.controller, entry.dump_order()), record=False)
        run.commands.append("journal entry %s opened (%s)" % (run_id, kind))
        entry._seq = 0
        return entry

    def dump_order(self):
        return json.dumps(self.order, sort_keys=True, default=str)

    def save_order(self):
        """The work order grew (before the swap): write it again."""
        self.run.sql(self.conn, "UPDATE %s SET work_order = %%s WHERE run_id = %%s" % self._table("journal"),
                     (self.dump_order(), self.run_id), record=False)

    def _next_seq(self):
        if self._seq is None:
            self._seq = int(fetch(self.conn, "SELECT COALESCE(MAX(seq), 0) FROM %s WHERE run_id = %%s" % self._table(
                "journal_steps"), (self.run_id,))[0][0])
        self._seq += 1
        return self._seq

    def step_statement(self, step, phase, detail=None):
        """(sql, args) marking ``step`` -- run it alone or inside the transaction that does the step."""
        return ("INSERT INTO %s (run_id, seq, step, phase, at, detail) VALUES (%%s, %%s, %%s, %%s, UTC_TIMESTAMP(6), %%s)"
                % self._table("journal_steps"),
                (self.run_id, self._next_seq(), step[:200], phase, None if detail is None else json.dumps(detail, default=str)))

    def step(self, step, phase="intent", detail=None):
        sql, args = self.step_statement(step, phase, detail)
        self.run.sql(self.conn, sql, args, record=False)

    def transaction(self, statements, step):
        """Run (sql, args) statements and mark ``step`` done, all or nothing."""
        run = self.run
        run.sql(self.conn, "START TRANSACTION", record=False)
        try:
            for sql, args in statements:
                run.sql(self.conn, sql, args, record=not sql.startswith("INSERT INTO %s" % self._table("journal_rows")))
            sql, args = self.step_statement(step, "done")
            run.sql(self.conn, sql, args, record=False)
            run.sql(self.conn, "COMMIT", record=False)
        except BaseException:
            try:
                run.sql(self.conn, "ROLLBACK", record=False)
            except Exception:  # noqa: BLE001 - the connection may be gone: the server rolls back without it
                pass
            self._seq = None
            raise

    def row_statements(self, step, rows):
        """INSERTs recording (pk, old value, new value) of rows a step changes, in chunks."""
        out = []
        rows = list(rows)
        for i in range(0, len(rows), 500):
            chunk = rows[i:i + 500]
            out.append(("INSERT INTO %s (run_id, step, seq, pk, old_value, new_value) VALUES %s" % (
                self._table("journal_rows"), ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))),
                tuple(v for n, (pk, old, new) in enumerate(chunk, start=i)
                      for v in (self.run_id, step[:200], n, str(pk), _text(old), _text(new)))))
        return out

    def close_statement(self, status, outcome=None):
        return ("UPDATE %s SET status = %%s, finished_at = UTC_TIMESTAMP(6), outcome = %%s WHERE run_id = %%s"
                % self._table("journal"), (status, None if outcome is None else json.dumps(outcome, default=str),
                                           self.run_id))

    def close(self, status, statements=(), outcome=None):
        """Close the entry together with ``statements`` (what the next run reads), in one transaction."""
        run = self.run
        run.sql(self.conn, "START TRANSACTION", record=False)
        try:
            for sql, args in list(statements) + [self.close_statement(status, outcome)]:
                run.sql(self.conn, sql, args, record=False)
            run.sql(self.conn, "COMMIT", record=False)
        except BaseException:
            try:
                run.sql(self.conn, "ROLLBACK", record=False)
            except Exception:  # noqa: BLE001
                pass
            raise
        self.status = status
        run.commands.append("journal entry %s %s" % (self.run_id, status))

    # ------------------------------------------------------------------ reading
    def steps(self):
        """[(step, phase, detail)] in order."""
        return [(r[0], r[1], None if r[2] is None else json.loads(r[2])) for r in fetch(
            self.conn, "SELECT step, phase, detail FROM %s WHERE run_id = %%s ORDER BY seq" % self._table("journal_steps"),
            (self.run_id,))]

    def has(self, step, phase="done"):
        return bool(fetch(self.conn, "SELECT 1 FROM %s WHERE run_id = %%s AND step = %%s AND phase = %%s LIMIT 1"
                          % self._table("journal_steps"), (self.run_id, step[:200], phase)))

    def rows(self, step):
        """[(pk, old value, new value)] a done step recorded."""
        return fetch(self.conn, "SELECT pk, old_value, new_value FROM %s WHERE run_id = %%s AND step = %%s ORDER BY seq"
                     % self._table("journal_rows"), (self.run_id, step[:200]))

    def row_steps(self):
        return [r[0] for r in fetch(self.conn, "SELECT DISTINCT step FROM %s WHERE run_id = %%s ORDER BY step"
                                    % self._table("journal_rows"), (self.run_id,))]

    @classmethod
    def load(cls, run, conn, where, args=()):
        if not state.exists(run, conn):
            return []
        rows = fetch(conn, "SELECT run_id, kind, status, thread_id, started_at, controller, work_order FROM %s WHERE %s "
                     "ORDER BY started_at" % (state.table(run.db, "journal"), where), args)
        return [cls(run, r[0], r[1], json.loads(r[6]), conn=conn, status=r[2], thread_id=int(r[3]), started_at=str(r[4]),
                    controller=r[5]) for r in rows]

    @classmethod
    def open_entries(cls, run, conn):
        return cls.load(run, conn, "status = %s", (OPEN,))

    @classmethod
    def by_id(cls, run, conn, run_id):
        found = cls.load(run, conn, "run_id = %s", (run_id,))
        return found[0] if found else None

    def describe(self):
        return "%s %s started %s UTC from %s" % (self.kind, self.run_id, self.started_at, self.controller)


def _text(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)
