# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every phase shares: the parameters, the connections, the audit log and the findings."""

from __future__ import annotations

import contextlib
import datetime
import signal
import time

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import connect, quote_ident
from ansible_collections.casper.directus_promote.plugins.module_utils.progress import reporter

try:
    import pymysql
except ImportError:  # pragma: no cover - the module reports the missing library
    pymysql = None

LOCK_PREFIX = "directus_promote:"
FETCH_CHUNK = 2000


class Failure(Exception):
    """Stop the run with one clear message (after cleanup)."""


class Interrupted(BaseException):
    """SIGTERM (an AWX cancel) or SIGINT (Ctrl-C): ends the run through the same path as a failure.

    A BaseException like KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interruption(exc):
    """The Interrupted behind ``exc`` (a driver error raised while unwinding it, such as a cursor that cannot
    close on a half-read connection), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def raise_interrupted(signum, _frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_raise():
    """SIGTERM and SIGINT raise Interrupted in the main thread while the block runs."""
    previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def interrupts_deferred(reraise=True):
    """SIGTERM and SIGINT wait until the block (a repair that must not stop half-way) has run; then they end
    the run (``reraise``) or are dropped (the run is ending anyway)."""
    caught = []
    previous = {s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught and reraise:
        raise Interrupted(caught[0])


def _dec(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def side_of(conn):
    return getattr(conn, "casper_side", None)


def _tag(exc, conn):
    """Remember on a server error which side's connection raised it (the failure message names it)."""
    if getattr(exc, "side", None) is None:
        exc.side = side_of(conn)


@contextlib.contextmanager
def tagged(conn):
    """A server error raised inside the block (a cursor used directly) names ``conn``'s side."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        _tag(exc, conn)
        raise


def execute(conn, sql, args=None, rows=False):
    """Run one statement (and fetch its rows); a failing statement's cursor is closed quietly, so that what
    ended the statement (a server error, an interrupt) is what propagates."""
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
        result = cur.fetchall() if rows else None
    except BaseException as exc:
        if isinstance(exc, pymysql.err.MySQLError):
            _tag(exc, conn)
        try:
            cur.close()
        except Exception:  # noqa: BLE001 - the statement's own error is the one to report
            pass
        raise
    cur.close()
    return result


def fetch(conn, sql, args=None):
    """All rows of a query, bytes decoded to str (works for raw and normal connections)."""
    return [tuple(_dec(v) for v in row) for row in execute(conn, sql, args, rows=True)]


def stream_rows(cur):
    while True:
        chunk = cur.fetchmany(FETCH_CHUNK)
        if not chunk:
            return
        yield from chunk


def reason_of(exc):
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) >= 2 else str(exc)


class Run:
    """One module run: parameters, connections (each knows its side), audit log, findings, timings."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check = check_mode
        self.diff = diff
        self.db = params["target"]["database"]
        source = params.get("source")
        self.src_db = source.get("database") if isinstance(source, dict) else None
        self.commands = []
        self.timings = {}
        self.findings = []
        self.conns = []
        self.target = None   # the main target connection: holds the promotion lock, writes the journal
        self.source = None   # the source snapshot (one consistent read of everything)
        self.lock_held = False
        self.plan = None      # the promotion's Plan, once gathered
        self.journal = None   # this run's journal entry, once opened
        self.result = {"changed": False, "tables": [], "changed_tables": [], "backup_schema": None}
        self.progress = reporter(params)  # live progress of the long phases (a no-op without progress_file)

    # ------------------------------------------------------------------ connections and statements
    def open(self, side, **kw):
        conn = connect(self.params[side], side, **kw)
        conn.casper_side = side
        self.conns.append(conn)
        return conn

    def open_target(self):
        """The main target connection (foreign_key_checks off: our DDL moves tables that reference each other)."""
        self.target = self.open("target")
        self.sql(self.target, "SET SESSION foreign_key_checks = 0", record=False)
        return self.target

    def utc(self, side):
        """A new connection in UTC: UNIX_TIMESTAMP() of information_schema times and TIMESTAMP text are exact."""
        conn = self.open(side)
        self.sql(conn, "SET SESSION time_zone = '+00:00'", record=False)
        return conn

    def sql(self, conn, sql, args=None, record=True):
        if record:
            self.commands.append(sql if isinstance(sql, str) else sql.decode("utf-8", "replace"))
        execute(conn, sql, args)

    def own_threads(self):
        """Server thread ids of this run's open target connections."""
        return {conn.thread_id() for conn in self.conns if conn.open and side_of(conn) == "target"}

    def close(self):
        if self.target is not None and self.lock_held:
            try:
                fetch(self.target, "SELECT RELEASE_LOCK(%s)", (self.lock_name,))
            except Exception:  # noqa: BLE001 - the connection may be gone; the lock dies with it
                pass
        for conn in self.conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.conns = []

    # ------------------------------------------------------------------ the promotion lock
    @property
    def lock_name(self):
        return (LOCK_PREFIX + self.db)[:64]

    def acquire_lock(self, conn=None):
        """The target's promotion lock (GET_LOCK on the main connection); in check mode only whether it is free."""
        conn = conn or self.target
        if self.check:
            free = fetch(conn, "SELECT IS_FREE_LOCK(%s)", (self.lock_name,))[0][0]
            if str(free) != "1":
                self.add("lock", "warning", "another promotion into %s is running right now (lock %s is held)"
                         % (self.db, self.lock_name))
            else:
                self.add("lock", "ok", "no other promotion into %s is running" % self.db)
            return
        timeout = int(self.params["lock_timeout"])
        got = fetch(conn, "SELECT GET_LOCK(%s, %s)", (self.lock_name, timeout))[0][0]
        if str(got) != "1":
            holder = fetch(conn, "SELECT IS_USED_LOCK(%s)", (self.lock_name,))[0][0]
            raise Failure("another promotion into database '%s' on the target is running (lock '%s' held by session %s "
                          "after %s s); nothing was changed" % (self.db, self.lock_name, holder, timeout))
        self.lock_held = True
        self.add("lock", "ok", "target lock %s acquired" % self.lock_name)

    def lock_free_now(self):
        return str(fetch(self.target, "SELECT IS_FREE_LOCK(%s)", (self.lock_name,))[0][0]) == "1"

    # ------------------------------------------------------------------ the report
    def add(self, check, status, message, **extra):
        self.findings.append(rules.finding(check, status, message, **extra))

    def errors(self):
        return [f for f in self.findings if f["status"] == "error"]

    def fail_if_errors(self):
        errs = self.errors()
        if errs:
            raise Failure(" | ".join(f["message"] for f in errs))

    @contextlib.contextmanager
    def timed(self, name):
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0) + time.monotonic() - start, 3)

    # ------------------------------------------------------------------ the target's schemas
    def schemas(self, conn=None):
        return [r[0] for r in fetch(conn or self.target, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]

    def new_stamp(self, *marks):
        """This second's timestamp for new side schemas of ``marks``, numbered when the second already has one."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        return rules.free_stamp(self.db, marks, stamp, set(self.schemas()))

    def create_schema_like_live(self, name):
        charset, collation = fetch(self.target, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                                   "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.db,))[0]
        self.sql(self.target, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (quote_ident(name), charset, collation))
