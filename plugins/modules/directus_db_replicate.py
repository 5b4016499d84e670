# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: directus_db_replicate
short_description: Promote a Directus database to another MariaDB/MySQL server atomically and idempotently
version_added: "0.1.0"
description:
  - Copies a Directus database (for example staging) into another one (for example production) while the
    target keeps its own users, sessions, settings, audit trail and other environment state.
  - Every table gets a policy. C(replace) tables (content and the schema/configuration system tables) come from
    the source; C(keep) tables stay as they are on the target; C(merge) tables (C(directus_access),
    C(directus_presets)) combine the source's rows without a user with the target's per-user rows; tables that
    exist only on the target and are not kept are moved out of the live schema.
  - A full preflight runs before any write. It checks that source and target are different databases, that both
    have the same C(directus_migrations), that every role and policy referenced by kept rows exists in what is
    promoted (rewriting references to the promoted role/policy of the same name, or refusing with a list), that
    production admins keep admin access, which columns the source declares on kept tables that the target lacks,
    and which promoted rows reference source users absent on the target.
  - The source is read in one consistent snapshot and streamed (unbuffered) into a shadow schema on the target
    server, verified by row counts and checksums, then swapped in with one atomic C(RENAME TABLE); the previous live
    tables move into a backup schema C(<database>__backup_<timestamp>). Foreign keys of tables that stay live are
    re-created against the new tables.
  - Per-table checksums decide what changed. When nothing differs no schema is created and nothing is written.
    A table not written on either side since the promotion that copied it reuses that promotion's checksums instead
    of reading the whole table again (O(reuse_checksums)).
  - O(rollback=true) swaps the newest backup back in, also with one C(RENAME TABLE).
author:
  - casper.directus_promote contributors (@casper)
requirements:
  - PyMySQL
  - MariaDB 10.3+ or MySQL 8.0+ on both sides, InnoDB tables
extends_documentation_fragment:
  - casper.directus_promote.mysql
options:
  keep_tables:
    description:
      - Tables (glob patterns) whose target content is kept as it is.
    type: list
    elements: str
    default: [directus_users, directus_sessions, directus_notifications, directus_shares, directus_comments,
              directus_settings, directus_extensions, directus_webhooks, directus_migrations, directus_activity,
              directus_revisions, directus_oauth_*, directus_deployment*]
  merge_tables:
    description:
      - Tables (glob patterns) merged from both sides. The source's rows whose split column is NULL are promoted and
        the target's rows whose split column is not NULL are kept.
      - The split column is C(user) unless given as C(table:column).
      - Target rows whose auto-increment key collides with a promoted row get a new key.
    type: list
    elements: str
    default: [directus_access, directus_presets]
  replace_tables:
    description:
      - Tables (glob patterns) replaced from the source.
      - When not set, every source table that is not kept, merged or excluded is replaced, and every target-only table
        that is not kept or excluded is moved out of the live schema into the backup.
      - When set, tables matching none of the lists are left alone.
    type: list
    elements: str
  exclude_tables:
    description:
      - Tables (glob patterns) neither read nor changed.
    type: list
    elements: str
    default: []
  role_mapping:
    description:
      - How references of kept rows (for example C(directus_users.role), user-level C(directus_access.policy)) to
        roles and policies that the promotion would remove are resolved.
      - C(name) rewrites them to the promoted role or policy of the same name and refuses with a list when none
        matches. C(id) requires identical ids.
    type: str
    choices: [name, id]
    default: name
  unknown_user_references:
    description:
      - What to do with promoted rows that reference source users absent on the target.
      - C(map_email) points them to the target user with the same e-mail, else sets them to NULL; C(null) sets them to
        NULL; C(fail) refuses with the counts.
    type: str
    choices: [map_email, "null", fail]
    default: map_email
  require_same_migrations:
    description:
      - Refuse when the C(directus_migrations) sets differ (different Directus versions).
    type: bool
    default: true
  keep_backups:
    description:
      - How many backup schemas C(<database>__backup_<timestamp>) to keep on the target after a promotion; older ones are
        dropped. C(0) drops the backup right after a successful swap.
    type: int
    default: 3
  rollback:
    description:
      - Instead of promoting, swap the newest backup schema back into the live database (one C(RENAME TABLE)). The
        tables it replaces move into C(<database>__rolledback_<timestamp>). O(source) is not needed.
    type: bool
    default: false
  backup_file:
    description:
      - Also write a logical SQL backup of the live tables that are about to be swapped out to this path (mode 0600),
        gzip-compressed when the name ends in C(.gz).
    type: path
  lock_timeout:
    description:
      - Seconds to wait for the target's promotion lock (C(GET_LOCK)) held by another run.
    type: int
    default: 10
  cutover_lock_wait:
    description:
      - Seconds the swap waits for the metadata locks of the live tables it renames (and of the kept tables whose
        foreign keys it re-creates) before it gives up this attempt. While it waits, every new query on those tables
        queues behind it, so production stalls at most this long per attempt when a session (an idle open
        transaction, a long report query) holds one of those tables.
      - A timed-out attempt undoes its foreign-key changes; after the last attempt the module fails, names the
        sessions that held the tables, drops the shadow copy, and nothing in production has changed. A rollback
        swaps under the same limits, and so do the statements before the swap that lock live tables (a custom
        field's column added to C(directus_users), a foreign key added towards a live parent).
    type: int
    default: 2
  cutover_attempts:
    description:
      - How many times the swap tries to get those locks, two seconds apart.
    type: int
    default: 5
  batch_bytes:
    description:
      - Maximum size of one multi-row INSERT statement while copying (capped by the target's C(max_allowed_packet)).
    type: int
    default: 4194304
  reuse_checksums:
    description:
      - Skip C(CHECKSUM TABLE) for a replaced table when MariaDB proves that it was not written on that side since the
        promotion that last copied it, and use the checksum that promotion recorded in C(<database>__promote_state).
      - "What it trusts, per side and table: MariaDB's C(information_schema) C(UPDATE_TIME) (InnoDB stamps it with the
        start time of every committing transaction), C(CREATE_TIME) (changed by C(RENAME TABLE) and C(ALTER TABLE)) and
        the InnoDB table id (changed by C(TRUNCATE TABLE) and tablespace import), compared with a time mark taken before
        the source snapshot and before the target cut-over. The mark is moved back to the start of any transaction
        that could still write, read from C(INFORMATION_SCHEMA.INNODB_TRX) (needs the C(PROCESS) privilege)."
      - "It falls back to C(CHECKSUM TABLE) when anything is unknown or different: a server restart or an evicted table
        definition (C(UPDATE_TIME) is NULL), a write in or after the mark's second, a rename, C(ALTER TABLE),
        C(TRUNCATE TABLE) or tablespace import since, another source server or schema, a server that is not MariaDB
        (MySQL caches these statistics), a table that is not InnoDB or is partitioned, no C(PROCESS) privilege, a
        C(INNODB_TRX) listing that cannot be shown fresh, or write transactions still running on the source right
        after its snapshot."
      - "Only tables a promotion copied have recorded checksums: a table identical on both sides from the start, every
        table after a rollback, and a table that stayed live while a table it references was copied (its foreign keys
        are re-created, which changes its C(CREATE_TIME)) are computed until a promotion copies them."
      - It also relies on the servers' clocks not stepping backwards (NTP slewing is fine).
      - C(CREATE_TIME) has whole seconds. A promotion that records checksums returns only once the second of its
        cut-over has passed, and waits likewise after reading the source's statistics, so that a later C(ALTER TABLE)
        shows a different C(CREATE_TIME) (up to one second per promotion). An C(ALTER TABLE) by another session within
        that same second, while the promotion runs, is not told apart.
      - C(false) computes every checksum and records nothing for later reuse.
    type: bool
    default: true
  recycle_backups:
    description:
      - Build a replaced table's shadow copy from the same table in the backup schema that this promotion prunes
        anyway (the newest backup beyond O(keep_backups) once this promotion's backup exists), instead of copying
        every row. That table is moved into the shadow schema, gets the source's foreign keys and
        C(AUTO_INCREMENT), and only the rows whose digest (SHA-256 of every value) differs from the source snapshot are
        deleted and inserted. Verification as for copied tables, plus the inserted rows read back.
      - "A table qualifies when it has the source's columns, indexes and table options, a primary key, at least
        O(recycle_min_rows) rows, and when at most half of its rows need rewriting (judged on its first 2,000 rows,
        then on all). Otherwise it is copied whole."
      - "The newest backup (what O(rollback) swaps back in) is never taken from, so recycling needs
        O(keep_backups) >= 2 and starts once that many backups exist. If a promotion fails after taking tables from
        the backup, that backup is dropped (the promotion would have pruned it); the live tables and newer backups
        are untouched."
    type: bool
    default: true
  recycle_min_rows:
    description:
      - Tables with fewer rows (InnoDB's estimate on the source) are copied whole; comparing would cost more.
    type: int
    default: 10000
attributes:
  check_mode:
    support: full
    description: Returns the per-table plan and the preflight findings; writes nothing (no lock, schema or row).
  diff_mode:
    support: full
    description: Table-level before/after listing of the tables that change.
  idempotent:
    support: full
    description: A run when nothing differs reports C(changed=false) and writes nothing.
notes:
  - Kept tables are never copied. Around the swap, foreign keys of tables that stay live and point at swapped
    tables are dropped just before the C(RENAME TABLE) and re-created against the new tables right after it, because
    InnoDB moves such a reference along with the renamed parent table.
  - Rewriting C(directus_users.role) to a promoted role of the same name happens right after the swap (milliseconds).
    Directus serves permissions from its cache until the cache is cleared, which the role does afterwards.
  - Each connection sets its own C(sql_mode), C(time_zone) (UTC wherever row values are read or written as text)
    and limits (no statement time limit, C(wait_timeout) 8 hours, network timeouts 10 minutes), so the servers'
    defaults for other clients do not change what is copied or verified.
"""

EXAMPLES = r"""
- name: Promote staging's database to production
  casper.directus_promote.directus_db_replicate:
    source:
      host: staging-db.internal
      user: directus
      password: "{{ vault_staging_db_password }}"
      database: directus
    target:
      host: prod-db.internal
      user: directus
      password: "{{ vault_prod_db_password }}"
      database: directus
    keep_backups: 3
  register: db

- name: Undo the last promotion
  casper.directus_promote.directus_db_replicate:
    target:
      host: prod-db.internal
      user: directus
      password: "{{ vault_prod_db_password }}"
      database: directus
    rollback: true
"""

RETURN = r"""
changed:
  description: Whether the target was (or, in check mode, would be) changed.
  returned: always
  type: bool
tables:
  description:
    - Per-table plan. C(action) is replace, merge, keep, drop, exclude or unchanged (configured policy in C(policy)).
    - Row counts are exact for tables that change; for unchanged tables they are InnoDB's estimates (C(rows_estimated)).
    - Kept tables that are altered (added columns, remapped or NULLed references) list them in C(changes).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "articles", "action": "replace", "policy": "replace", "source_rows": 1200, "target_rows": 1100}]
changed_tables:
  description: Tables that change on the target.
  returned: always
  type: list
  elements: str
backup_schema:
  description: Schema now holding the previous live tables, or null when nothing was swapped.
  returned: always
  type: str
preflight:
  description: Preflight results.
  returned: always
  type: dict
  contains:
    findings:
      description: List of C({check, status, message}); status is ok, warning, changed or error.
      type: list
      elements: dict
    remapped_roles:
      description: Target role id -> promoted role id rewritten in kept rows.
      type: dict
    remapped_policies:
      description: Target policy id -> promoted policy id rewritten in kept rows.
      type: dict
    user_refs_mapped:
      description: Promoted references to source users re-pointed to target users by e-mail.
      type: int
    user_refs_nulled:
      description: Promoted references to source users set to NULL.
      type: int
    added_columns:
      description: C(table.column) added to kept tables with the source's definition.
      type: list
      elements: str
recycled:
  description:
    - Replaced tables built from a backup table (O(recycle_backups)) instead of a full copy.
  returned: when promoting
  type: list
  elements: dict
  contains:
    table:
      description: Table name.
      type: str
    from_schema:
      description: The backup schema the table was taken from (pruned at the end of the promotion).
      type: str
    rows:
      description: Rows in the source snapshot (and now in the table).
      type: int
    deleted:
      description: Rows deleted from the backup table (changed or gone on the source).
      type: int
    inserted:
      description: Rows inserted from the source snapshot (changed or new).
      type: int
  sample: [{"table": "articles", "from_schema": "directus__backup_20250101T120000", "rows": 446930, "deleted": 9,
            "inserted": 12}]
checksums:
  description:
    - Which replaced tables' checksums were computed with C(CHECKSUM TABLE) and which were reused from the state the
      last promotion recorded (O(reuse_checksums)).
  returned: when promoting
  type: dict
  contains:
    reused:
      description: Tables with no C(CHECKSUM TABLE) on either side.
      type: list
      elements: str
    computed:
      description: Tables with a C(CHECKSUM TABLE) on at least one side.
      type: list
      elements: str
    source:
      description: C({reused, computed}) table lists of the source side.
      type: dict
    target:
      description: C({reused, computed}) table lists of the target side (tables the target has).
      type: dict
    computed_because:
      description: For computed tables, why the recorded checksum could not be reused, per side.
      type: dict
    notes:
      description: Why reuse was not possible at all on a side in this run, if so.
      type: list
      elements: str
  sample: {"reused": ["articles", "directus_fields"], "computed": ["tags"], "source": {"reused": ["articles", "directus_fields"],
           "computed": ["tags"]}, "target": {"reused": ["articles", "directus_fields"], "computed": ["tags"]},
           "computed_because": {"tags": "source: written since (or in the same second)"}, "notes": []}
timings:
  description: Seconds per phase.
  returned: always
  type: dict
executed_commands:
  description: Statements run on the target (data statements summarised); no secrets.
  returned: always
  type: list
  elements: str
"""

import datetime
import gzip
import hashlib
import json
import os
import queue
import threading
import time
import traceback
import zlib

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as plan
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    HAS_PYMYSQL,
    LOAD_SQL_MODE,
    PYMYSQL_IMPORT_ERROR,
    DatabaseError,
    RowTooLong,
    case_map_sql,
    connect,
    friendly_error,
    insert_batches,
    literal_kind,
    mysql_connection_options,
    qualified,
    quote_ident,
    row_encoder,
    server_row_encoder,
    row_digest_sql,
    server_row_sql,
)

if HAS_PYMYSQL:
    import pymysql

LOCK_PREFIX = "directus_promote:"
FETCH_CHUNK = 2000
INLINE_MAP_LIMIT = 500
COPY_WRITERS = 2
COPY_QUEUE = 16
# rows compared before a table is read whole for recycling
RECYCLE_SAMPLE = 2000
RESTART = object()
# INNODB_TRX is a cache that InnoDB refreshes only when nobody read it for 100 ms
# MariaDB and MySQL report a metadata lock wait that ran out (lock_wait_timeout) as this error
ER_LOCK_WAIT_TIMEOUT = 1205
CUTOVER_PAUSE = 2.0
PROBE_IDLE = 0.12
PROBE_ATTEMPTS = 4
GUARD_ATTEMPTS = 3
# table_state columns added for checksum reuse (older installs lack them until a promotion writes)
STATE_COLUMNS = [("source_ident", "CHAR(64) NULL"), ("source_mark", "BIGINT NULL"), ("source_create_time", "BIGINT NULL"),
                 ("source_table_id", "BIGINT NULL"), ("target_ident", "CHAR(64) NULL"), ("target_mark", "BIGINT NULL"),
                 ("target_create_time", "BIGINT NULL"), ("target_table_id", "BIGINT NULL")]


def argument_spec():
    return dict(
        source=dict(type="dict", options=mysql_connection_options()),
        target=dict(type="dict", required=True, options=mysql_connection_options()),
        keep_tables=dict(type="list", elements="str", default=list(plan.DEFAULT_KEEP_TABLES)),
        merge_tables=dict(type="list", elements="str", default=list(plan.DEFAULT_MERGE_TABLES)),
        replace_tables=dict(type="list", elements="str"),
        exclude_tables=dict(type="list", elements="str", default=[]),
        role_mapping=dict(type="str", choices=["name", "id"], default="name"),
        unknown_user_references=dict(type="str", choices=["map_email", "null", "fail"], default="map_email"),
        require_same_migrations=dict(type="bool", default=True),
        keep_backups=dict(type="int", default=3),
        rollback=dict(type="bool", default=False),
        backup_file=dict(type="path"),
        lock_timeout=dict(type="int", default=10),
        cutover_lock_wait=dict(type="int", default=2),
        cutover_attempts=dict(type="int", default=5),
        batch_bytes=dict(type="int", default=4 * 1024 * 1024),
        reuse_checksums=dict(type="bool", default=True),
        recycle_backups=dict(type="bool", default=True),
        recycle_min_rows=dict(type="int", default=10000),
    )


def newest_create_time(stats):
    """The latest CREATE_TIME (UNIX seconds) among table_stats() entries, None when none is known."""
    times = [plan.whole_seconds(entry.get("create_time")) for entry in stats]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _reason_of(exc):
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) >= 2 else str(exc)


def _dec(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def fetch(conn, sql, args=None):
    """All rows of a query, bytes decoded to str (works for raw and normal connections)."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    return [tuple(_dec(v) for v in row) for row in rows]


def stream_rows(cur):
    while True:
        chunk = cur.fetchmany(FETCH_CHUNK)
        if not chunk:
            return
        yield from chunk


def crc_encoder(total):
    """Server-built row literals, summing their CRC32 into total[0] (verified against the target)."""
    def encode(row):
        value = server_row_encoder(row)
        total[0] += zlib.crc32(value)
        return value
    return encode


class Failure(Exception):
    """Stop the run with one clear message (after cleanup)."""


class Replicator:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.commands = []
        self.timings = {}
        self.findings = []
        self.conns = []
        self.tgt = None
        self.snap = None
        self.db = self.p["target"]["database"]
        self.src_db = (self.p.get("source") or {}).get("database")
        self.lock_held = False
        self.probe_at = {}
        self.reuse_notes = []
        self.src_mark = None
        self.src_stats = {}
        self.src_reused, self.tgt_reused = {}, {}
        self.donor = None
        self._digest_conn = None
        self._source_keys = {}
        self.stats = {"remapped_roles": {}, "remapped_policies": {}, "user_refs_mapped": 0, "user_refs_nulled": 0,
                      "added_columns": []}

    # ------------------------------------------------------------------ helpers
    def _open(self, side, **kw):
        params = self.p[side]
        conn = connect(params, side, **kw)
        self.conns.append(conn)
        return conn

    def run_sql(self, conn, sql, args=None, record=True):
        if record:
            self.commands.append(sql if isinstance(sql, str) else sql.decode("utf-8", "replace"))
        with conn.cursor() as cur:
            cur.execute(sql, args)

    def timed(self, name, start):
        self.timings[name] = round(self.timings.get(name, 0) + time.monotonic() - start, 3)

    def close(self):
        if self.tgt is not None and self.lock_held:
            try:
                fetch(self.tgt, "SELECT RELEASE_LOCK(%s)", (self.lock_name,))
            except Exception:  # noqa: BLE001 - the connection may be gone; the lock dies with it
                pass
        for conn in self.conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    @property
    def lock_name(self):
        return (LOCK_PREFIX + self.db)[:64]

    def identity(self, conn, database):
        host, port, datadir, version = fetch(conn, "SELECT @@hostname, @@port, @@datadir, VERSION()")[0]
        uuid_rows = fetch(conn, "SHOW VARIABLES LIKE 'server_uuid'")
        return {"hostname": host, "port": int(port), "datadir": datadir, "version": version,
                "server_uuid": uuid_rows[0][1] if uuid_rows else None, "database": database}

    def schemas(self, conn):
        return [r[0] for r in fetch(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]

    def base_tables(self, conn, schema):
        rows = fetch(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,))
        views = sorted(r[0] for r in rows if r[1] != "BASE TABLE")
        return sorted(r[0] for r in rows if r[1] == "BASE TABLE"), views

    def columns(self, conn, schema):
        cols = {}
        for table, column, data_type, extra, _pos in fetch(
                conn, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA, ORDINAL_POSITION FROM information_schema.COLUMNS "
                      "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (schema,)):
            generated = "GENERATED" in (extra or "").upper() or (extra or "").upper() in ("VIRTUAL", "PERSISTENT", "STORED")
            cols.setdefault(table, []).append((column, data_type, generated))
        return cols

    def show_create(self, conn, schema, table):
        return fetch(conn, "SHOW CREATE TABLE %s" % qualified(schema, table))[0][1]

    def foreign_keys(self, conn, schemas, clauses=False):
        marks = ", ".join(["%s"] * len(schemas))
        rows = fetch(conn, (
            "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.ORDINAL_POSITION, "
            "k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
            "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
            "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
            "AND r.TABLE_NAME = k.TABLE_NAME "
            "WHERE k.TABLE_SCHEMA IN (%s) AND k.REFERENCED_TABLE_NAME IS NOT NULL") % marks, tuple(schemas))
        fks = plan.group_foreign_keys(rows)
        if clauses:
            texts = {}
            for fk in fks:
                key = (fk["schema"], fk["table"])
                if key not in texts:
                    texts[key] = plan.fk_clauses(self.show_create(conn, fk["schema"], fk["table"]))
                fk["clause"] = texts[key].get(fk["name"])
        return fks

    def checksums(self, conn, schema, tables):
        out = {}
        tables = list(tables)
        for i in range(0, len(tables), 50):
            chunk = tables[i:i + 50]
            if not chunk:
                continue
            sql = "CHECKSUM TABLE " + ", ".join(qualified(schema, t) for t in chunk)
            for name, value in fetch(conn, sql):
                out[name.split(".", 1)[1]] = None if value is None else str(value)
        return out

    # ------------------------------------------------------------------ checksum reuse (see plan.checksum_reusable)
    def recording(self, ident):
        """Whether this run trusts and records UPDATE_TIME marks on that server."""
        return bool(self.p["reuse_checksums"]) and plan.is_mariadb(ident.get("version"))

    def utc_conn(self, side):
        conn = self._open(side)
        # UNIX_TIMESTAMP() of information_schema DATETIMEs is exact only in a zone without DST
        self.run_sql(conn, "SET SESSION time_zone = '+00:00'", record=False)
        return conn

    def wait_for_next_second(self, conn, newest_write):
        now = fetch(conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0]
        delay = plan.seconds_to_next(newest_write, now)
        if delay:
            time.sleep(delay)

    def trx_probe(self, side, conn, ignore=()):
        """(now, writers, problem): the server's clock, then INNODB_TRX read inside a new transaction of
        ``conn`` (plan.foreign_writers). problem is None or why nothing can be concluded."""
        try:
            own = fetch(conn, "SELECT CONNECTION_ID()")[0][0]
            for _attempt in range(PROBE_ATTEMPTS):
                idle = PROBE_IDLE - (time.monotonic() - self.probe_at.get(side, -PROBE_IDLE))
                if idle > 0:
                    time.sleep(idle)
                now = fetch(conn, "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0]
                self.run_sql(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT", record=False)
                try:
                    rows = fetch(conn, "SELECT trx_mysql_thread_id, UNIX_TIMESTAMP(trx_started), trx_autocommit_non_locking, "
                                 "trx_is_read_only FROM information_schema.INNODB_TRX")
                    # the listing says when it was truncated (memory limit) in a warning
                    warned = fetch(conn, "SHOW WARNINGS")
                finally:
                    self.run_sql(conn, "COMMIT", record=False)
                    self.probe_at[side] = time.monotonic()
                writers = plan.foreign_writers(rows, own, ignore)
                if writers is not None and not warned:
                    return now, writers, None
            return None, None, "INNODB_TRX showed no fresh listing (something polls it more often than every 100 ms)"
        except pymysql.err.MySQLError as exc:
            return None, None, "cannot read INNODB_TRX (%s); it needs the PROCESS privilege" % _reason_of(exc)

    def table_stats(self, conn, schema):
        """{table: {engine, create_options, create_time, update_time, table_id}} of a schema's base tables
        (times in UNIX seconds; table_id None when unknown)."""
        stats = {}
        for name, engine, options, created, updated in fetch(
                conn, "SELECT TABLE_NAME, ENGINE, CREATE_OPTIONS, UNIX_TIMESTAMP(CREATE_TIME), UNIX_TIMESTAMP(UPDATE_TIME) "
                      "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'", (schema,)):
            stats[name] = {"engine": engine, "create_options": options, "create_time": created, "update_time": updated,
                           "table_id": None}
        wanted = {plan.innodb_name(schema, n): n for n in stats if plan.innodb_name(schema, n)}
        if wanted:
            for full, table_id in fetch(conn, "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE %s",
                                        (schema + "/%",)):
                if full in wanted:
                    stats[wanted[full]]["table_id"] = table_id
        return stats

    def source_mark(self):
        """The mark of the snapshot about to be taken (plan.write_mark); None when not recorded."""
        if self.check or not self.recording(self.src_ident):
            return None
        # only tables that may be replaced count: kept ones (sessions, activity) are written all the time
        try:
            merge_spec = plan.parse_merge_spec(self.p["merge_tables"])
        except plan.PlanError:
            merge_spec = {}  # reported by the preflight
        newest = [plan.whole_seconds(updated) for name, updated in fetch(
            self.snap, "SELECT TABLE_NAME, UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (self.src_db,)) if updated is not None and not plan.matches(name, self.p["keep_tables"])
            and not plan.matches(name, self.p["exclude_tables"]) and plan.merge_column(name, merge_spec) is None]
        self.wait_for_next_second(self.snap, max(newest) if newest else None)
        now, writers, problem = self.trx_probe("source", self.snap)
        if problem:
            self.reuse_notes.append("source: %s; checksums read in this run are not recorded for reuse" % problem)
        return plan.write_mark(now, writers)

    def source_guard(self, conn):
        """None when no write transaction runs on the source right after the snapshot, else why.

        InnoDB stamps UPDATE_TIME just after a commit became visible; a transaction caught between the
        two would be in the snapshot without its stamp. Such a transaction is still listed."""
        why = None
        for _attempt in range(GUARD_ATTEMPTS):
            _now, writers, problem = self.trx_probe("source", conn, ignore=(self.snap_thread,))
            if problem:
                return problem
            if not writers:
                return None
            why = "write transactions were running on the source (thread ids %s)" % ", ".join(
                sorted({str(w[0]) for w in writers}))
        return why

    def recorded(self, name, side):
        row = self.state.get(name) or {}
        return {"checksum": row.get("%s_checksum" % side), "ident": row.get("%s_ident" % side), "mark": row.get("%s_mark" % side),
                "create_time": row.get("%s_create_time" % side), "table_id": row.get("%s_table_id" % side)}

    def reusable(self, names, side, ident, stats, reasons):
        """{table: recorded checksum} for the tables whose recorded checksum may be reused on that side."""
        out = {}
        current_ident = plan.server_ident(ident)
        for name in names:
            if name not in self.state:
                reasons[name] = ["no checksum recorded yet (never written by a promotion)"]
                continue
            current = dict(stats.get(name) or {}, version=ident.get("version"), ident=current_ident)
            recorded = self.recorded(name, side)
            ok, why = plan.checksum_reusable(recorded, current)
            if ok:
                out[name] = str(recorded["checksum"])
            else:
                reasons.setdefault(name, []).append("%s: %s" % (side, why))
        return out

    def count(self, conn, schema, table, where=""):
        return int(fetch(conn, "SELECT COUNT(*) FROM %s %s" % (qualified(schema, table), where))[0][0])

    def add(self, check, status, message, **extra):
        self.findings.append(plan.finding(check, status, message, **extra))

    def errors(self):
        return [f for f in self.findings if f["status"] == "error"]

    def fail_if_errors(self, result):
        errs = self.errors()
        if errs:
            raise Failure(" | ".join(f["message"] for f in errs))

    # ------------------------------------------------------------------ entry
    def run(self):
        start = time.monotonic()
        result = {"changed": False, "tables": [], "changed_tables": [], "backup_schema": None}
        self.result = result
        try:
            t = time.monotonic()
            self.tgt = self._open("target")
            # our DDL moves and drops whole schemas whose tables are FK parents/children of each other
            self.run_sql(self.tgt, "SET SESSION foreign_key_checks = 0", record=False)
            self.timed("connect", t)
            if self.p["rollback"]:
                self.rollback()
            else:
                if not self.p.get("source"):
                    raise Failure("source is required unless rollback=true")
                self.promote()
        finally:
            self.close()
            self.timings["total"] = round(time.monotonic() - start, 3)
        return result

    def acquire_lock(self):
        if self.check:
            free = fetch(self.tgt, "SELECT IS_FREE_LOCK(%s)", (self.lock_name,))[0][0]
            if str(free) != "1":
                self.add("lock", "warning", "another promotion into %s is running right now (lock %s is held)"
                         % (self.db, self.lock_name))
            else:
                self.add("lock", "ok", "no other promotion into %s is running" % self.db)
            return
        got = fetch(self.tgt, "SELECT GET_LOCK(%s, %s)", (self.lock_name, int(self.p["lock_timeout"])))[0][0]
        if str(got) != "1":
            raise Failure("another promotion into database '%s' on the target is running (lock '%s' still held after %s s); "
                          "nothing was changed" % (self.db, self.lock_name, self.p["lock_timeout"]))
        self.lock_held = True
        self.add("lock", "ok", "target lock %s acquired" % self.lock_name)

    def clean_leftovers(self):
        leftovers = plan.schemas_with_mark(self.schemas(self.tgt), self.db, plan.SHADOW_MARK)
        for schema in leftovers:
            if self.check:
                self.add("leftovers", "warning", "shadow schema %s left by an interrupted run will be removed" % schema)
            else:
                self.run_sql(self.tgt, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
                self.add("leftovers", "changed", "removed shadow schema %s left by an interrupted run" % schema)

    # ------------------------------------------------------------------ promote: gather + plan
    def promote(self):
        p = self.p
        t = time.monotonic()
        # One consistent snapshot of the source for everything read from it.
        self.snap = self._open("source", raw=True, streaming=True)
        self.timed("connect", t)
        t = time.monotonic()
        self.src_ident = self.identity(self.snap, self.src_db)
        self.tgt_ident = self.identity(self.tgt, self.db)
        if plan.same_database(self.src_ident, self.tgt_ident):
            raise Failure("source and target are the same database ('%s' on %s:%s); refusing to promote a database onto itself"
                          % (self.db, self.tgt_ident["hostname"], self.tgt_ident["port"]))
        self.acquire_lock()
        self.clean_leftovers()
        self.run_sql(self.snap, "SET SESSION time_zone = '+00:00'", record=False)
        self.run_sql(self.snap, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", record=False)
        self.snap_thread = fetch(self.snap, "SELECT CONNECTION_ID()")[0][0]
        self.src_mark = self.source_mark()
        self.run_sql(self.snap, "START TRANSACTION WITH CONSISTENT SNAPSHOT", record=False)

        src_tables, src_views = self.base_tables(self.snap, self.src_db)
        tgt_tables, _tgt_views = self.base_tables(self.tgt, self.db)
        if src_views:
            self.add("views", "warning", "views are not promoted: %s" % ", ".join(src_views))
        if not src_tables:
            raise Failure("source database '%s' has no tables; refusing to promote an empty database" % self.src_db)
        try:
            merge_spec = plan.parse_merge_spec(p["merge_tables"])
        except plan.PlanError as exc:
            raise Failure(str(exc)) from None
        self.actions, cls_findings = plan.classify_tables(
            src_tables, tgt_tables, p["keep_tables"], merge_spec, p["replace_tables"], p["exclude_tables"])
        self.findings.extend(cls_findings)
        self.merge_spec = merge_spec
        self.src_tables, self.tgt_tables = set(src_tables), set(tgt_tables)
        self.src_cols = self.columns(self.snap, self.src_db)
        self.tgt_cols = self.columns(self.tgt, self.db)
        promoted = [n for n, a in self.actions.items() if a in ("replace", "merge")]
        kept = [n for n, a in self.actions.items() if a == "keep" and n in self.tgt_tables]
        self.src_create = {n: self.show_create(self.snap, self.src_db, n) for n in promoted}
        for n in kept:
            if n in self.src_tables:
                self.src_create[n] = self.show_create(self.snap, self.src_db, n)
        self.tgt_create = {n: self.show_create(self.tgt, self.db, n) for n in promoted if n in self.tgt_tables}

        self.check_migrations()
        self.check_storage()
        self.plan_remaps(kept)
        self.plan_kept_columns(kept)
        self.plan_user_refs(promoted)
        self.timed("preflight", t)

        t = time.monotonic()
        self.decide(promoted, kept)
        self.plan_dangling()
        self.build_diff()
        self.timed("compare", t)
        self.count_user_refs()
        self.fail_if_errors(self.result)

        self.result["changed"] = bool(self.result["changed_tables"])
        if not self.result["changed"] or self.check:
            self.finish_result()
            return
        self.execute()
        self.finish_result()

    def finish_result(self):
        if "checksums" in self.result:
            self.result["checksums"]["notes"] = self.reuse_summary()
        self.result["preflight"] = dict(self.stats, findings=self.findings)
        self.result["timings"] = self.timings
        self.result["executed_commands"] = self.commands

    def check_migrations(self):
        name = "directus_migrations"
        if name in self.src_tables and name in self.tgt_tables:
            src = [r[0] for r in fetch(self.snap, "SELECT version FROM %s" % qualified(self.src_db, name))]
            tgt = [r[0] for r in fetch(self.tgt, "SELECT version FROM %s" % qualified(self.db, name))]
            self.findings.append(plan.compare_migrations(src, tgt, self.p["require_same_migrations"]))
        else:
            self.add("migrations", "warning" if not self.p["require_same_migrations"] else "error",
                     "directus_migrations is missing on the %s: not a Directus database?"
                     % ("source" if name not in self.src_tables else "target"))

    def check_storage(self):
        """directus_files.storage holds a storage location name; both environments must use the same ones."""
        files = "directus_files"
        if self.actions.get(files) != "replace" or files not in self.tgt_tables:
            return
        if "storage" not in [c[0] for c in self.src_cols.get(files, [])]:
            return
        src = {r[0] for r in fetch(self.snap, "SELECT DISTINCT storage FROM %s" % qualified(self.src_db, files))}
        tgt = {r[0] for r in fetch(self.tgt, "SELECT DISTINCT storage FROM %s" % qualified(self.db, files))}
        if tgt and src - tgt:
            self.add("storage_locations", "warning", "promoted files use storage location(s) %s that the target's files "
                     "do not use (%s): check STORAGE_LOCATIONS on the target" % (
                         ", ".join(sorted(str(x) for x in src - tgt)), ", ".join(sorted(str(x) for x in tgt))))

    def ref_columns(self, conn, schema, parent, tables):
        """(table, column) of ``tables`` referencing ``parent``: FKs + directus_relations."""
        found = set()
        for fk in self.foreign_keys(conn, [schema]):
            if fk["ref_table"] == parent and fk["table"] in tables and len(fk["columns"]) == 1:
                found.add((fk["table"], fk["columns"][0]))
        if "directus_relations" in (self.tgt_tables if conn is self.tgt else self.src_tables):
            for many_collection, many_field in fetch(
                    conn, "SELECT many_collection, many_field FROM %s WHERE one_collection = %%s"
                    % qualified(schema, "directus_relations"), (parent,)):
                if many_collection in tables:
                    found.add((many_collection, many_field))
        cols = self.tgt_cols if conn is self.tgt else self.src_cols
        return sorted((t, c) for t, c in found if c in [x[0] for x in cols.get(t, [])])

    def kept_refs(self, parent, kept):
        """{target id: [(table, column, rows)]} referenced by kept rows (and kept parts of merged tables)."""
        merged = [n for n, a in self.actions.items() if a == "merge" and n in self.tgt_tables]
        refs = {}
        cols = self.ref_columns(self.tgt, self.db, parent, set(kept) | set(merged))
        for table, column in cols:
            where = "WHERE %s IS NOT NULL" % quote_ident(column)
            if table in merged:
                where += " AND %s IS NOT NULL" % quote_ident(plan.merge_column(table, self.merge_spec))
            for value, rows in fetch(self.tgt, "SELECT %s, COUNT(*) FROM %s %s GROUP BY 1" % (
                    quote_ident(column), qualified(self.db, table), where)):
                refs.setdefault(value, []).append((table, column, int(rows)))
        return refs, cols

    def plan_remaps(self, kept):
        self.role_map, self.policy_map = {}, {}
        self.role_cols, self.policy_cols = [], []
        for parent, kind in ((plan.ROLES_TABLE, "role"), (plan.POLICIES_TABLE, "policy")):
            if self.actions.get(parent) != "replace" or parent not in self.tgt_tables:
                continue
            refs, cols = self.kept_refs(parent, kept)
            tgt_names = dict(fetch(self.tgt, "SELECT id, name FROM %s" % qualified(self.db, parent)))
            src_names = dict(fetch(self.snap, "SELECT id, name FROM %s" % qualified(self.src_db, parent)))
            mapping, findings = plan.plan_id_remap(kind, refs, tgt_names, src_names, self.p["role_mapping"])
            self.findings.extend(findings)
            if kind == "role":
                self.role_map, self.role_cols = mapping, cols
                self.stats["remapped_roles"] = mapping
            else:
                self.policy_map, self.policy_cols = mapping, cols
                self.stats["remapped_policies"] = mapping
        self.check_admins()

    def check_admins(self):
        """Production admins must keep admin access after the promotion."""
        users, roles, policies, access = plan.USERS_TABLE, plan.ROLES_TABLE, plan.POLICIES_TABLE, plan.ACCESS_TABLE
        if self.actions.get(users) != "keep" or users not in self.tgt_tables or self.actions.get(roles) != "replace":
            return
        tcols = {t: [c[0] for c in cs] for t, cs in self.tgt_cols.items()}
        scols = {t: [c[0] for c in cs] for t, cs in self.src_cols.items()}
        status_filter = " AND u.status = 'active'" if "status" in tcols.get(users, []) else ""
        admins = []
        if access in self.tgt_tables and policies in self.tgt_tables and "admin_access" in tcols.get(policies, []):
            admins = fetch(self.tgt, (
                "SELECT DISTINCT u.id, u.email, u.role FROM {u} u JOIN {a} a ON (a.user = u.id OR a.role = u.role) "
                "JOIN {p} p ON p.id = a.policy WHERE p.admin_access = 1" + status_filter).format(
                u=qualified(self.db, users), a=qualified(self.db, access), p=qualified(self.db, policies)))
        elif "admin_access" in tcols.get(roles, []):
            admins = fetch(self.tgt, (
                "SELECT u.id, u.email, u.role FROM {u} u JOIN {r} r ON r.id = u.role WHERE r.admin_access = 1"
                + status_filter).format(u=qualified(self.db, users), r=qualified(self.db, roles)))
        if not admins:
            return
        src_role_admin, src_access, src_policy_admin, user_policies = {}, [], {}, {}
        if "admin_access" in scols.get(roles, []):
            src_role_admin = {r: str(v) == "1" for r, v in fetch(
                self.snap, "SELECT id, admin_access FROM %s" % qualified(self.src_db, roles))}
        if access in self.src_tables and policies in self.src_tables and "admin_access" in scols.get(policies, []):
            src_access = fetch(self.snap, "SELECT role, policy FROM %s WHERE role IS NOT NULL AND user IS NULL"
                               % qualified(self.src_db, access))
            src_policy_admin = {r: str(v) == "1" for r, v in fetch(
                self.snap, "SELECT id, admin_access FROM %s" % qualified(self.src_db, policies))}
        if access in self.tgt_tables and self.actions.get(access) in ("merge", "keep"):
            for user, pol in fetch(self.tgt, "SELECT user, policy FROM %s WHERE user IS NOT NULL" % qualified(self.db, access)):
                user_policies.setdefault(user, []).append(pol)
        losing = plan.admins_losing_access(admins, self.role_map, src_role_admin, src_access, user_policies,
                                           self.policy_map, src_policy_admin)
        if losing:
            self.add("admin_access", "error",
                     "production admins would lose admin access after the promotion: %s (their role maps to no promoted "
                     "role with an admin policy); nothing was changed" % ", ".join(str(x) for x in losing),
                     users=losing)
        else:
            self.add("admin_access", "ok", "%d production admin(s) keep admin access" % len(admins))

    def plan_kept_columns(self, kept):
        self.column_adds = []
        if "directus_fields" not in self.src_tables:
            return
        fields = fetch(self.snap, "SELECT collection, field FROM %s" % qualified(self.src_db, "directus_fields"))
        tgt_cols = {t: {c[0] for c in self.tgt_cols.get(t, [])} for t in kept}
        src_create = {t: self.src_create[t] for t in kept if t in self.src_create}
        self.column_adds = plan.missing_kept_columns(set(kept), fields, src_create, tgt_cols)
        for table, column, definition, _after in self.column_adds:
            self.add("kept_columns", "changed", "column %s.%s (declared in the source's directus_fields) is added to the "
                     "kept table with the source definition: %s" % (table, column, definition))
            self.stats["added_columns"].append("%s.%s" % (table, column))

    def plan_user_refs(self, promoted):
        users = plan.USERS_TABLE
        self.user_map, self.user_cols = {}, []
        if users not in self.src_tables or users not in self.tgt_tables:
            return
        src_users = dict(fetch(self.snap, "SELECT id, email FROM %s" % qualified(self.src_db, users)))
        tgt_users = dict(fetch(self.tgt, "SELECT id, email FROM %s" % qualified(self.db, users)))
        mode = self.p["unknown_user_references"]
        self.user_map = plan.plan_user_map(src_users, tgt_users, mode)
        fk_rows = [(fk["table"], fk["columns"][0], fk["ref_table"], fk["ref_columns"][0])
                   for fk in self.foreign_keys(self.snap, [self.src_db]) if len(fk["columns"]) == 1]
        relations = []
        if "directus_relations" in self.src_tables:
            relations = fetch(self.snap, "SELECT many_collection, many_field, one_collection FROM %s"
                              % qualified(self.src_db, "directus_relations"))
        columns = {t: {c[0] for c in cs} for t, cs in self.src_cols.items()}
        self.user_cols = plan.user_ref_columns(fk_rows, relations, set(promoted), columns)
        # The merge split column holds NULL in promoted rows and target ids in kept rows.
        self.user_cols = [(t, c) for t, c in self.user_cols
                          if not (self.actions.get(t) == "merge" and plan.merge_column(t, self.merge_spec) == c)]
        self.user_fp = plan.fingerprint(sorted(self.user_map.items(), key=lambda kv: str(kv[0])), mode)

    def build_diff(self):
        tables = self.result["tables"]
        if self.module._diff:
            before, after = {}, {}
            for e in tables:
                n = e["name"]
                if n not in self.result["changed_tables"]:
                    continue
                before[n] = "absent" if n not in self.tgt_tables else "%s rows" % (
                    e["target_rows"] if e["target_rows"] is not None else "kept")
                if e["action"] == "drop":
                    after[n] = "removed from live (moved to the backup schema)"
                elif e["action"] in ("replace", "merge"):
                    after[n] = "%s from source (%s source rows)" % (e["action"], e["source_rows"])
                else:
                    after[n] = "kept: " + ", ".join(self.kept_changes.get(n, []))
            b, a = plan.table_diff(before, after)
            self.result["diff"] = {"before": b, "after": a, "before_header": "%s (target)" % self.db,
                                   "after_header": "%s (after promotion)" % self.db}

    def plan_dangling(self):
        """Kept rows whose foreign key points at a promoted row that will not exist any more.

        A nullable column is set to NULL right after the swap (what ON DELETE SET NULL would do and
        what keeps the database consistent for later migrations); otherwise it is reported.
        """
        self.dangling = []
        remapped = set(self.role_cols if self.role_map else []) | set(self.policy_cols if self.policy_map else [])
        swapping = set(self.swap_in)
        nullable = {}
        for table, column, is_nullable in fetch(self.tgt, "SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE FROM "
                                                "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", (self.db,)):
            nullable[(table, column)] = is_nullable == "YES"
        for fk in self.foreign_keys(self.tgt, [self.db]):
            if len(fk["columns"]) != 1 or self.actions.get(fk["table"]) != "keep" or fk["ref_schema"] != self.db:
                continue
            if fk["ref_table"] not in swapping or (fk["table"], fk["columns"][0]) in remapped:
                continue
            col, ref_col = fk["columns"][0], fk["ref_columns"][0]
            values = [r[0] for r in fetch(self.tgt, "SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL" % (
                quote_ident(col), qualified(self.db, fk["table"]), quote_ident(col)))]
            present = set()
            for i in range(0, len(values), 1000):
                chunk = values[i:i + 1000]
                present.update(str(r[0]) for r in fetch(self.snap, "SELECT %s FROM %s WHERE %s IN (%s)" % (
                    quote_ident(ref_col), qualified(self.src_db, fk["ref_table"]), quote_ident(ref_col),
                    ", ".join(["%s"] * len(chunk))), tuple(chunk)))
            missing = [v for v in values if str(v) not in present]
            if not missing:
                continue
            rows = self.count(self.tgt, self.db, fk["table"], "WHERE %s IN (%s)" % (
                quote_ident(col), ", ".join(self.tgt.escape(v) for v in missing)))
            where = "%s.%s -> %s.%s" % (fk["table"], col, fk["ref_table"], ref_col)
            if nullable.get((fk["table"], col)):
                self.dangling.append((fk["table"], col, missing))
                self.kept_changes.setdefault(fk["table"], []).append("set %s to NULL in %d row(s)" % (col, rows))
                self.add("kept_references", "changed", "%s: %d kept row(s) reference %d promoted-away row(s); set to NULL"
                         % (where, rows, len(missing)))
            else:
                self.add("kept_references", "warning", "%s: %d kept row(s) reference %d row(s) absent from the promoted "
                         "table and the column is NOT NULL; left as they are" % (where, rows, len(missing)))
        for entry in self.result["tables"]:
            if entry["name"] in self.kept_changes:
                entry["changes"] = self.kept_changes[entry["name"]]
        self.result["changed_tables"] = sorted(set(self.result["changed_tables"]) | set(self.kept_changes))

    def count_user_refs(self):
        """Counts of promoted references to source users absent on the target (changed tables only)."""
        if not self.user_map:
            self.findings.append(plan.finding("user_references", "ok", "every source user exists on the target"))
            return
        counts = {}
        changed = set(self.swap_in)
        for table, column in self.user_cols:
            if table not in changed:
                continue
            where = ""
            if self.actions.get(table) == "merge":
                where = "WHERE %s IS NULL" % quote_ident(plan.merge_column(table, self.merge_spec))
            per = {}
            for value, rows in fetch(self.snap, "SELECT %s, COUNT(*) FROM %s %s GROUP BY 1" % (
                    quote_ident(column), qualified(self.src_db, table), where)):
                if value in self.user_map:
                    per[value] = int(rows)
            if per:
                counts[(table, column)] = per
        mapped, nulled, findings = plan.user_ref_summary(counts, self.user_map, self.p["unknown_user_references"])
        self.findings.extend(findings)
        self.stats["user_refs_mapped"], self.stats["user_refs_nulled"] = mapped, nulled
        self.user_counts = counts

    # ------------------------------------------------------------------ compare
    def read_state(self):
        state_schema = self.db + plan.STATE_MARK
        self.state_schema = state_schema
        if state_schema not in self.schemas(self.tgt):
            return {}
        names = ["table_name", "source_checksum", "target_checksum", "fingerprint"] + [c for c, _t in STATE_COLUMNS]
        try:
            present = self.state_columns(state_schema)
            # a state table of an older release lacks the reuse columns: they read as NULL
            select = ", ".join(quote_ident(c) if c in present else "NULL" for c in names)
            rows = fetch(self.tgt, "SELECT %s FROM %s" % (select, qualified(state_schema, "table_state")))
        except pymysql.err.MySQLError:
            return {}
        return {r[0]: dict(zip(names[1:], r[1:])) for r in rows}

    def state_columns(self, state_schema):
        """Column names of the state schema's table_state (older releases have fewer)."""
        return {r[0] for r in fetch(self.tgt, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                                    "AND TABLE_NAME = 'table_state'", (state_schema,))}

    def report_checksums(self, replace, reasons):
        in_target = [n for n in replace if n in self.tgt_tables]
        src_computed = sorted(n for n in replace if n not in self.src_reused)
        tgt_computed = sorted(n for n in in_target if n not in self.tgt_reused)
        computed = sorted(set(src_computed) | set(tgt_computed))
        self.result["checksums"] = {
            "reused": sorted(n for n in replace if n not in computed),
            "computed": computed,
            "source": {"reused": sorted(self.src_reused), "computed": src_computed},
            "target": {"reused": sorted(self.tgt_reused), "computed": tgt_computed},
            "computed_because": {n: "; ".join(reasons[n]) for n in computed if reasons.get(n)},
            "notes": self.reuse_summary(),
        }

    def reuse_summary(self):
        if not self.p["reuse_checksums"]:
            return ["reuse_checksums=false: every checksum computed"]
        notes = []
        for label, ident in (("source", self.src_ident), ("target", self.tgt_ident)):
            if not plan.is_mariadb(ident.get("version")):
                notes.append("%s: %s is not MariaDB: its checksums are always computed" % (label, ident.get("version")))
        return notes + list(self.reuse_notes)

    def merge_part_hash(self, conn, schema, table, columns, split, null):
        cols = ", ".join(quote_ident(c) for c in columns)
        h = hashlib.sha256()
        rows = fetch(conn, "SELECT %s FROM %s WHERE %s IS %sNULL ORDER BY %s" % (
            cols, qualified(schema, table), quote_ident(split), "" if null else "NOT ", cols))
        for row in rows:
            h.update(repr(row).encode("utf-8", "surrogateescape"))
        return h.hexdigest(), len(rows)

    def decide(self, promoted, kept):
        state = self.read_state()
        self.state = state
        replace = [n for n in promoted if self.actions[n] == "replace"]
        self.comparable = self.src_ident["version"].split("-")[0] == self.tgt_ident["version"].split("-")[0]
        # recorded checksums stand in for CHECKSUM TABLE only where MariaDB proves the table unchanged
        reuse = bool(self.p["reuse_checksums"]) and self.comparable and any(n in state for n in replace)
        reasons = {}
        tgt_reasons = {}
        # both servers checksum at the same time (the source inside its snapshot)
        tgt_ck = {}
        side = {}

        def target_side():
            try:
                conn = self._open("target")
                todo = [n for n in replace if n in self.tgt_tables]
                if reuse and self.recording(self.tgt_ident):
                    self.run_sql(conn, "SET SESSION time_zone = '+00:00'", record=False)
                    try:
                        stats = self.table_stats(conn, self.db)
                    except pymysql.err.MySQLError as exc:
                        self.reuse_notes.append("target: cannot read table statistics (%s); it needs the PROCESS "
                                                "privilege" % _reason_of(exc))
                    else:
                        self.tgt_reused = self.reusable(todo, "target", self.tgt_ident, stats, tgt_reasons)
                        tgt_ck.update(self.tgt_reused)
                        todo = [n for n in todo if n not in self.tgt_reused]
                tgt_ck.update(self.checksums(conn, self.db, todo))
                side["estimates"] = dict((r[0], int(r[1] or 0)) for r in fetch(
                    conn, "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (self.db,)))
            except Exception as exc:  # noqa: BLE001 - re-raised below
                side["error"] = exc

        thread = threading.Thread(target=target_side, daemon=True)
        thread.start()
        src_ck = {}
        if self.recording(self.src_ident) and (reuse or (not self.check and self.src_mark is not None)):
            conn = self.utc_conn("source")
            guard = self.source_guard(conn) if reuse else "not needed"
            try:
                # read after the guard: every commit the snapshot sees has stamped its UPDATE_TIME by now
                self.src_stats = self.table_stats(conn, self.src_db)
            except pymysql.err.MySQLError as exc:
                guard = "cannot read table statistics (%s); it needs the PROCESS privilege" % _reason_of(exc)
                self.src_stats = {}
            if not self.check:
                # CREATE_TIME has whole seconds: an ALTER TABLE later in the second of a recorded
                # CREATE_TIME would leave it equal, so let that second pass before going on
                self.wait_for_next_second(conn, newest_create_time(self.src_stats.values()))
            if reuse and guard is None:
                self.src_reused = self.reusable(replace, "source", self.src_ident, self.src_stats, reasons)
                src_ck.update(self.src_reused)
            elif reuse:
                self.reuse_notes.append("source: %s; source checksums computed" % guard)
        src_ck.update(self.checksums(self.snap, self.src_db, [n for n in replace if n not in self.src_reused]))
        src_tables = fetch(self.snap, "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
                           "WHERE TABLE_SCHEMA = %s", (self.src_db,))
        src_est = self.src_est = dict((r[0], int(r[1] or 0)) for r in src_tables)
        self.src_bytes = dict((r[0], int(r[2] or 0)) for r in src_tables)
        thread.join()
        if "error" in side:
            raise side["error"]
        tgt_est = side.get("estimates", {})
        self.src_ck, self.tgt_ck = src_ck, tgt_ck
        for name, why in tgt_reasons.items():
            reasons.setdefault(name, []).extend(w for w in why if w not in reasons[name])
        self.report_checksums(replace, reasons)
        if not self.comparable:
            self.add("checksums", "warning", "source (%s) and target (%s) run different server versions: CHECKSUM TABLE "
                     "values are not comparable, every table is copied and verified by row counts"
                     % (self.src_ident["version"], self.tgt_ident["version"]))
        user_tables = {t for t, _c in self.user_cols}
        raw_tgt = None
        self.swap_in, self.swap_out, self.kept_changes = [], [], {}
        tables = []
        for name in sorted(self.actions):
            action = self.actions[name]
            entry = {"name": name, "policy": action, "action": action, "source_rows": None, "target_rows": None}
            if action == "replace":
                fp = self.user_fp if (name in user_tables and self.user_map) else None
                same = self.comparable and plan.replace_unchanged(
                    self.src_create[name], self.tgt_create.get(name), src_ck.get(name), tgt_ck.get(name),
                    state.get(name), fp)
                if same:
                    # identical checksums: InnoDB's row estimates are enough for the report
                    entry["action"] = "unchanged"
                    entry["source_rows"], entry["target_rows"] = src_est.get(name), tgt_est.get(name)
                    entry["rows_estimated"] = True
                else:
                    entry["source_rows"] = self.count(self.snap, self.src_db, name)
                    if name in self.tgt_tables:
                        entry["target_rows"] = self.count(self.tgt, self.db, name)
                    self.swap_in.append(name)
                    if name in self.tgt_tables:
                        self.swap_out.append(name)
            elif action == "merge":
                split = plan.merge_column(name, self.merge_spec)
                src_cols = [c[0] for c in self.src_cols[name] if not c[2]]
                if split not in src_cols:
                    raise Failure("merge table %s has no column '%s' in the source" % (name, split))
                s_hash, s_rows = self.merge_part_hash(self.snap, self.src_db, name, src_cols, split, True)
                entry["source_rows"] = s_rows
                same = False
                if name in self.tgt_tables:
                    entry["target_rows"] = self.count(self.tgt, self.db, name)
                    tgt_cols = [c[0] for c in self.tgt_cols[name] if not c[2]]
                    if raw_tgt is None:
                        raw_tgt = self._open("target", raw=True)
                    if tgt_cols == src_cols and plan.normalize_create(self.src_create[name]) == plan.normalize_create(
                            self.tgt_create[name]):
                        t_hash, _n = self.merge_part_hash(raw_tgt, self.db, name, src_cols, split, True)
                        remap_here = any(t == name for t, _c in self.role_cols + self.policy_cols) and (
                            self.role_map or self.policy_map)
                        same = t_hash == s_hash and not remap_here
                if same:
                    entry["action"] = "unchanged"
                else:
                    self.swap_in.append(name)
                    if name in self.tgt_tables:
                        self.swap_out.append(name)
            elif action == "drop":
                entry["target_rows"] = self.count(self.tgt, self.db, name)
                self.swap_out.append(name)
            elif action == "keep" and name in self.tgt_tables:
                entry["target_rows"] = None
                changes = []
                changes += ["add column %s" % c for t, c, _d, _a in self.column_adds if t == name]
                if self.role_map and any(t == name for t, _c in self.role_cols):
                    changes.append("remap roles")
                if self.policy_map and any(t == name for t, _c in self.policy_cols):
                    changes.append("remap policies")
                if changes:
                    self.kept_changes[name] = changes
                    entry["changes"] = changes
            tables.append(entry)
        self.result["tables"] = tables
        self.result["changed_tables"] = sorted(set(self.swap_in) | set(self.swap_out) | set(self.kept_changes))

    # ------------------------------------------------------------------ execute
    def new_stamp(self, *marks):
        """This second's timestamp for new side schemas of ``marks``, numbered when the second already has one."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        return plan.free_stamp(self.db, marks, stamp, set(self.schemas(self.tgt)))

    def execute(self):
        self.result["recycled"] = []
        stamp = self.new_stamp(plan.BACKUP_MARK, plan.SHADOW_MARK)
        shadow = plan.side_schema_name(self.db, plan.SHADOW_MARK, stamp)
        backup = plan.side_schema_name(self.db, plan.BACKUP_MARK, stamp)
        charset, collation = fetch(self.tgt, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                                   "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.db,))[0]
        self.run_sql(self.tgt, "SET SESSION foreign_key_checks = 0", record=False)
        swapped = False
        shadow_created = False
        dropped_fks = []
        try:
            t = time.monotonic()
            if self.swap_in:
                self.run_sql(self.tgt, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (
                    quote_ident(shadow), charset, collation))
                shadow_created = True
                self.build_shadow(shadow)
            self.timed("copy", t)
            t = time.monotonic()
            if self.p.get("backup_file"):
                self.write_backup_file(self.p["backup_file"])
                self.timed("backup_file", t)
            t = time.monotonic()
            for table, column, definition, after in self.column_adds:
                self.bounded_ddl(self.tgt, plan.add_column_sql(self.db, table, column, definition, after))
            schemas = [self.db, shadow] if shadow_created else [self.db]
            fks = self.foreign_keys(self.tgt, schemas, clauses=True)
            fixes = plan.plan_fk_fixups(fks, self.db, backup, self.swap_out, shadow, self.swap_in)
            for sql in plan.fk_group_sql(fixes["pre_repoint"], "drop") + plan.fk_group_sql(fixes["pre_repoint"], "add"):
                self.bounded_ddl(self.tgt, sql)
            # after our last write to the shadow tables, before they go live
            t_mark = time.monotonic()
            marks = self.target_mark(shadow)
            self.timed("mark", t_mark)
            t += time.monotonic() - t_mark  # the swap phase's time leaves the mark out
            rename = plan.build_rename(self.db, backup, self.swap_out, shadow, self.swap_in)
            if self.swap_out:
                self.run_sql(self.tgt, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (
                    quote_ident(backup), charset, collation))
            cutover = self.cut_over(fixes["pre_drop"], rename, dropped_fks,
                                    "nothing was changed and the shadow copy was dropped")
            swapped = True
            self.result["backup_schema"] = backup if self.swap_out else None
            # Right after the swap: kept references follow the promoted ids, FKs point at the new tables.
            self.apply_kept_remaps(self.db, live_only=True)
            self.nulled = []
            for table, column, missing in self.dangling:
                pk = self.primary_key(self.db, table)
                if len(pk) == 1:
                    # remembered so that a rollback can put the values back
                    for i in range(0, len(missing), 1000):
                        chunk = missing[i:i + 1000]
                        self.nulled.append([table, column, pk[0], fetch(self.tgt, "SELECT %s, %s FROM %s WHERE %s IN (%s)" % (
                            quote_ident(pk[0]), quote_ident(column), qualified(self.db, table), quote_ident(column),
                            ", ".join(["%s"] * len(chunk))), tuple(chunk))])
                for i in range(0, len(missing), 1000):
                    chunk = missing[i:i + 1000]
                    self.run_sql(self.tgt, "UPDATE %s SET %s = NULL WHERE %s IN (%s)" % (
                        qualified(self.db, table), quote_ident(column), quote_ident(column),
                        ", ".join(["%s"] * len(chunk))), tuple(chunk))
            for sql in plan.fk_group_sql(fixes["post_add"], "add"):
                self.run_sql(self.tgt, sql)
            dropped_fks = []
            # from dropping the kept tables' FKs to re-creating them: the only moment production's kept
            # tables run without those constraints (never without a table)
            self.timings["cutover"] = round(time.monotonic() - cutover, 3)
            for sql in (plan.fk_group_sql(fixes["post_repoint"], "drop", schema=backup)
                        + plan.fk_group_sql(fixes["post_repoint"], "add", schema=backup)):
                self.run_sql(self.tgt, sql)
            self.timed("swap", t)
        except Exception:
            if not swapped:
                for fk in dropped_fks:
                    try:
                        self.run_sql(self.tgt, plan.fk_add_sql(fk, self.db))
                    except Exception:  # noqa: BLE001 - best effort; reported by the original error
                        pass
                for schema in (shadow, backup):
                    try:
                        self.run_sql(self.tgt, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
                    except Exception:  # noqa: BLE001 - the next run removes leftovers
                        pass
                if self.donor:
                    try:
                        self.drop_backup(self.donor)
                    except Exception:  # noqa: BLE001 - the next run's pruning removes it
                        pass
            raise
        t = time.monotonic()
        if shadow_created:
            self.run_sql(self.tgt, "DROP DATABASE IF EXISTS %s" % quote_ident(shadow))
        self.complete_state(marks)
        self.save_state(backup if self.swap_out else None)
        self.prune(plan.BACKUP_MARK)
        self.timed("finish", t)

    def cut_over(self, pre_drop, rename, dropped_fks, outcome):
        """Drop the kept tables' FKs to swapped tables, then RENAME, under bounded_locks: a timed-out attempt
        re-creates the FKs it dropped. ``dropped_fks`` holds the FKs dropped so far (for the caller's clean-up).
        Returns when the successful attempt started (the cut-over's start)."""
        def attempt():
            started = time.monotonic()
            for table_fks in plan.group_by_table(pre_drop):
                self.run_sql(self.tgt, plan.fk_group_sql(table_fks, "drop")[0])
                dropped_fks.extend(fk for fk, _ref in table_fks)
            if rename:
                self.run_sql(self.tgt, rename)
            return started

        def undo():
            for fk in list(dropped_fks):
                self.run_sql(self.tgt, plan.fk_add_sql(fk, self.db))
                dropped_fks.remove(fk)

        return self.bounded_locks(self.tgt, attempt, "the swap of the live tables", outcome, undo)

    def bounded_ddl(self, conn, sql):
        """One DDL statement that needs metadata locks production sessions may hold (a live table, or the live
        parent of a new FK), under bounded_locks. Each statement is atomic: a timed-out one changed nothing."""
        self.bounded_locks(conn, lambda: self.run_sql(conn, sql), sql[:120], "the live tables were not swapped")

    def bounded_locks(self, conn, attempt, what, outcome, undo=None):
        """Run ``attempt()`` on ``conn`` waiting at most cutover_lock_wait seconds for metadata locks, so that
        production's queries never queue behind it for longer; after a timeout, ``undo()`` and, after a pause,
        the next of cutover_attempts attempts. Returns what ``attempt`` returns; fails naming the holders, with
        ``outcome`` (what has become of the run) after the last attempt."""
        wait = int(self.p["cutover_lock_wait"])
        attempts = int(self.p["cutover_attempts"])
        for number in range(1, attempts + 1):
            if number > 1:
                time.sleep(CUTOVER_PAUSE)
            self.run_sql(conn, "SET SESSION lock_wait_timeout = %d" % wait, record=False)
            try:
                return attempt()
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != ER_LOCK_WAIT_TIMEOUT:
                    raise
                holders = self.lock_holders(wait) or "a session that could not be identified"
            finally:
                # what follows (FKs re-created against the new tables, the undo) must not give up
                self.run_sql(conn, "SET SESSION lock_wait_timeout = DEFAULT", record=False)
            if undo:
                undo()
            message = "%s, attempt %d of %d: waited %d s for a metadata lock, held by %s" % (
                what, number, attempts, wait, holders)
            self.add("cutover", "warning", message)
            self.commands.append(message)
        raise Failure("%s could not get its metadata locks in %d attempts of %d s (held by %s); production was not "
                      "stalled longer than that, %s" % (what, attempts, wait, holders, outcome))

    def lock_holders(self, wait):
        """Who may hold the live tables: other sessions in an open transaction, or running one statement
        for at least ``wait`` seconds (MariaDB shows metadata locks only with a plugin)."""
        own = {conn.thread_id() for conn in self.conns if conn.open}
        try:
            rows = fetch(self.tgt, "SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, t.trx_started IS NOT NULL, "
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

    def target_mark(self, shadow):
        """{mark, ids} for the tables about to go live (plan.write_mark), None when not recorded."""
        recorded = sorted(getattr(self, "new_state", {}))
        if not recorded or not self.recording(self.tgt_ident):
            return None
        conn = self.mark_conn = self.utc_conn("target")
        try:
            stats = self.table_stats(conn, shadow)
        except pymysql.err.MySQLError as exc:
            self.reuse_notes.append("target: cannot read table statistics (%s); it needs the PROCESS privilege" % _reason_of(exc))
            return None
        newest = [plan.whole_seconds(stats.get(n, {}).get("update_time")) for n in recorded]
        newest = [x for x in newest if x is not None]
        # our own last write must be in an earlier second than the mark, or the next run cannot trust it
        self.wait_for_next_second(conn, max(newest) if newest else None)
        now, writers, problem = self.trx_probe("target", conn)
        if problem:
            self.reuse_notes.append("target: %s; target checksums are not recorded for reuse" % problem)
            return None
        return {"mark": plan.write_mark(now, writers), "ids": {n: stats.get(n, {}).get("table_id") for n in recorded}}

    def complete_state(self, marks):
        """Add what the next run needs to trust the recorded checksums (plan.checksum_reusable)."""
        new_state = getattr(self, "new_state", {})
        if not new_state:
            return
        live = {}
        if marks is not None:
            try:
                # after the cut-over: RENAME TABLE changed CREATE_TIME, the table ids moved along
                live = self.table_stats(self.mark_conn, self.db)
            except pymysql.err.MySQLError as exc:
                self.reuse_notes.append("target: cannot read table statistics (%s)" % _reason_of(exc))
        src_ident = plan.server_ident(self.src_ident)
        tgt_ident = plan.server_ident(self.tgt_ident)
        recorded_live = []
        for name, entry in new_state.items():
            src = self.src_stats.get(name) or {}
            if self.src_mark is not None and src.get("table_id") is not None:
                entry.update(source_ident=src_ident, source_mark=self.src_mark, source_create_time=src.get("create_time"),
                             source_table_id=src.get("table_id"))
            now_live = live.get(name) or {}
            shadow_id = marks["ids"].get(name) if marks else None
            if marks and marks["mark"] is not None and shadow_id is not None and str(now_live.get("table_id")) == str(shadow_id):
                entry.update(target_ident=tgt_ident, target_mark=marks["mark"], target_create_time=now_live.get("create_time"),
                             target_table_id=shadow_id)
                recorded_live.append(now_live)
        if recorded_live:
            # the cut-over just set these CREATE_TIMEs: end only after their second, so that no later
            # ALTER TABLE (a foreign key re-created by the next run, a migration) can share it unseen
            self.wait_for_next_second(self.mark_conn, newest_create_time(recorded_live))

    def open_loader(self, shadow):
        loader = self._open("target", database=False)
        for sql in ("SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0",
                    "SET SESSION sql_mode = '%s'" % LOAD_SQL_MODE, "SET SESSION time_zone = '+00:00'"):
            self.run_sql(loader, sql, record=False)
        self.run_sql(loader, "USE %s" % quote_ident(shadow), record=False)
        return loader

    def build_shadow(self, shadow):
        loader = self.open_loader(shadow)
        self.loader = loader
        local = set(self.swap_in)
        max_packet = int(fetch(self.tgt, "SELECT @@max_allowed_packet")[0][0])
        batch = max(64 * 1024, min(int(self.p["batch_bytes"]), max_packet // 2))
        # user references are mapped while reading (CASE on the source) when the map is small
        self.inline = {}
        if self.user_map and len(self.user_map) <= INLINE_MAP_LIMIT:
            for table, column in self.user_cols:
                if table in local:
                    self.inline.setdefault(table, {})[column] = case_map_sql(column, self.user_map, self.snap.escape)
        self.copied, self.crc, self.recycled = {}, {}, {}
        t = time.monotonic()
        self.recycle_tables(shadow, loader, batch)
        self.timed("recycle", t)
        for name in sorted(self.swap_in):
            if name not in self.recycled:
                # FKs to tables that are not swapped in (kept users, unchanged tables) point at live from the start
                self.run_sql(loader, plan.qualify_references(self.src_create[name], self.db, local))
        # smallest first: when the reader reaches the biggest table, the second biggest is still being
        # inserted by the other writer from its queue, so the two largest loads overlap
        order = sorted((n for n in self.swap_in if n not in self.recycled), key=lambda n: (self.src_bytes.get(n, 0), n))
        self.copy_tables(order, shadow, batch)
        for name in sorted(self.swap_in):
            if self.actions[name] == "merge" and name in self.tgt_tables:
                self.merge_target_rows(loader, shadow, name, [c for c in self.src_cols[name] if not c[2]])
        # verify against the snapshot before any further transformation
        t = time.monotonic()
        replaced = [n for n in self.swap_in if self.actions[n] == "replace"]
        plain = [n for n in replaced if n not in self.inline]
        user_tables = {t for t, _c in self.user_cols}
        transformed = [n for n in replaced if n in user_tables and self.user_map]
        # user references mapped while reading are final: transform_shadow leaves those tables as loaded
        settled = [n for n in transformed if n in self.inline]
        scans = self.verification_scans(shadow, replaced, plain, settled)
        shadow_ck = {n: scans[("checksum", n)] for n in plain if ("checksum", n) in scans}
        for name in sorted(replaced):
            if ("crc", name) in scans:
                got, crc = scans[("crc", name)]
                if int(got) != self.copied[name] or int(crc) != self.crc[name]:
                    raise Failure("verification failed for %s: %s rows / CRC %s in the shadow copy, %d rows / CRC %d read "
                                  "from the source snapshot" % (name, got, crc, self.copied[name], self.crc[name]))
                continue
            got = scans[("count", name)]
            if got != self.copied[name]:
                raise Failure("verification failed for %s: %d rows read from the source, %d in the shadow copy"
                              % (name, self.copied[name], got))
            if self.comparable and name in plain and shadow_ck.get(name) != self.src_ck.get(name) and name in self.src_reused:
                # the recorded checksum stood in for the source's: compute the real one before judging the copy
                real = self.checksums(self.snap, self.src_db, [name]).get(name)
                self.add("checksums", "warning", "%s: the checksum recorded by the last promotion (%s) no longer matched the "
                         "source (%s) although its statistics said unchanged" % (name, self.src_ck.get(name), real))
                self.src_ck[name] = real
                del self.src_reused[name]
            if self.comparable and name in plain and shadow_ck.get(name) != self.src_ck.get(name):
                raise Failure("verification failed for %s: checksum %s in the shadow copy, %s in the source snapshot"
                              % (name, shadow_ck.get(name), self.src_ck.get(name)))
        for name, inserted in sorted(self.recycled.items()):
            # the rows kept from the donor matched the source's digests; the inserted ones are read back
            for i in range(0, len(inserted), 1000):
                chunk = inserted[i:i + 1000]
                with self.digest_conn().cursor() as cur:
                    cur.execute(self.digest_query(shadow, name, False, keys=[plan.line_key(line) for line in chunk]))
                    got = {row[0] for row in cur.fetchall()}
                if got != set(chunk):
                    raise Failure("verification failed for %s: rows inserted into the recycled table differ from the "
                                  "source snapshot" % name)
        for name in sorted(self.swap_in):
            if self.actions[name] == "merge":
                split = plan.merge_column(name, self.merge_spec)
                got = self.count(self.tgt, shadow, name, "WHERE %s IS NULL" % quote_ident(split))
                if got != self.copied[name]:
                    raise Failure("verification failed for %s: %d promoted rows read from the source, %d in the shadow copy"
                                  % (name, self.copied[name], got))
        self.timed("verify", t)
        self.transform_shadow(loader, shadow)
        self.new_state = {}
        after_ck = {n: scans[("checksum", n)] for n in settled}
        rewritten = [n for n in transformed if n not in after_ck]
        after_ck.update(self.checksums(self.tgt, shadow, rewritten) if rewritten else {})
        for name in replaced:
            fp = self.user_fp if name in transformed else None
            self.new_state[name] = {"source_checksum": self.src_ck.get(name),
                                    "target_checksum": after_ck.get(name, shadow_ck.get(name)), "fingerprint": fp}

    def verification_scans(self, shadow, replaced, plain, settled):
        """Read back every replaced shadow table: {(kind, table): result}, kind in count, crc, checksum.

        ``crc`` (rows, summed CRC32 of the row literals) for tables whose user ids were mapped while
        reading, to compare with what the source sent; ``count`` for the others, with ``checksum``
        (CHECKSUM TABLE) where the source's can be compared; ``checksum`` also for ``settled`` tables,
        whose checksum the next run's reuse needs. Each is a full scan, so they run on COPY_WRITERS
        connections at once, biggest table first. The row literals hold TIMESTAMP values as text, so
        these sessions use the UTC of the snapshot, whatever the target server's own time zone.
        """
        scans = {}
        for name in replaced:
            table = qualified(shadow, name)
            if name in self.crc and self.comparable:
                cols = [c for c in self.src_cols[name] if not c[2]]
                row_sql = server_row_sql([c[0] for c in cols], [literal_kind(c[1]) for c in cols])
                scans[("crc", name)] = "SELECT COUNT(*), COALESCE(SUM(CRC32(%s)), 0) FROM %s" % (row_sql, table)
            else:
                scans[("count", name)] = "SELECT COUNT(*) FROM %s" % table
            if (name in plain and self.comparable) or name in settled:
                scans[("checksum", name)] = "CHECKSUM TABLE %s" % table
        work = queue.Queue()
        for key in sorted(scans, key=lambda k: (-self.src_bytes.get(k[1], 0), k)):
            work.put(key)
        results, errors = {}, []

        def scan():
            try:
                conn = self.utc_conn("target")
                while not errors:
                    try:
                        key = work.get_nowait()
                    except queue.Empty:
                        return
                    row = fetch(conn, scans[key])[0]
                    if key[0] == "count":
                        results[key] = int(row[0])
                    elif key[0] == "crc":
                        results[key] = (int(row[0]), int(row[1]))
                    else:
                        results[key] = None if row[1] is None else str(row[1])
            except Exception as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=scan, daemon=True) for _i in range(min(COPY_WRITERS, len(scans)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def recycle_tables(self, shadow, loader, batch):
        """Take replaced tables from the backup this promotion prunes anyway (plan.recycle_donor).

        A table qualifies when it has the source's shape and primary key and differs from the source
        snapshot in at most plan.RECYCLE_MAX_SHARE of its rows: it moves into the shadow schema, gets
        the source's foreign keys, and only the differing rows are deleted and re-inserted.
        """
        if not self.p["recycle_backups"] or not self.comparable:
            return
        donor = plan.recycle_donor(self.schemas(self.tgt), self.db, int(self.p["keep_backups"]))
        if donor is None:
            return
        donor_tables = set(self.base_tables(self.tgt, donor)[0])
        # a FK from another schema would follow its parent into production: such parents stay put
        pinned = {r[0] for r in fetch(self.tgt, "SELECT DISTINCT REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
                                      "WHERE REFERENCED_TABLE_SCHEMA = %s AND TABLE_SCHEMA <> %s", (donor, donor))}
        user_tables = {t for t, _c in self.user_cols}
        # rows rewritten after loading (transform_shadow) would not compare with the source's
        remapped = {t for t, _c in self.role_cols + self.policy_cols}
        chosen = {}
        for name in sorted(self.swap_in):
            if (self.actions[name] != "replace" or name not in donor_tables or name in pinned or name in remapped
                    or self.src_est.get(name, 0) < int(self.p["recycle_min_rows"])
                    or (name in user_tables and self.user_map and name not in self.inline)
                    or not self.source_key(name)
                    or not plan.same_table_shape(self.show_create(self.tgt, donor, name), self.src_create[name])):
                continue
            found = self.compare_rows(donor, name)
            if found is not None:
                chosen[name] = found
        if not chosen:
            return
        names = sorted(chosen)
        # from the first write on, a failure removes the donor: this run would have pruned it
        self.donor = donor
        drops = [(fk, None) for fk in self.foreign_keys(self.tgt, [donor])
                 if fk["table"] in chosen or (fk["ref_schema"] == donor and fk["ref_table"] in chosen)]
        for sql in plan.fk_group_sql(drops, "drop"):
            self.run_sql(self.tgt, sql)
        self.run_sql(self.tgt, "RENAME TABLE " + ", ".join(
            "%s TO %s" % (qualified(donor, n), qualified(shadow, n)) for n in names))
        local = set(self.swap_in)
        for name in names:
            found = chosen[name]
            table = qualified(shadow, name)
            clauses = plan.shadow_fk_clauses(self.src_create[name], self.db, shadow, local)
            if clauses:
                # adding a FK waits for production's write transactions on its live parent
                self.bounded_ddl(loader, "ALTER TABLE %s %s" % (table, ", ".join("ADD " + c for c in clauses)))
            key_sql = "(%s)" % ", ".join(quote_ident(k) for k in self.source_key(name))
            inserted = [plan.line_key(line) for line in found["insert"]]
            for i in range(0, len(found["delete"]), 1000):
                self.run_sql(loader, b"DELETE FROM " + table.encode("utf-8") + b" WHERE " + key_sql.encode("utf-8")
                             + b" IN (" + b",".join(found["delete"][i:i + 1000]) + b")", record=False)
            cols = [c for c in self.src_cols[name] if not c[2]]
            prefix = ("INSERT INTO %s (%s) VALUES " % (table, ", ".join(quote_ident(c[0]) for c in cols))).encode("utf-8")
            # few rows: literals built here, so that no row is too long for the source to build one
            exprs = self.inline.get(name, {})
            select = ", ".join(exprs.get(c[0]) or quote_ident(c[0]) for c in cols)
            encoder = row_encoder([literal_kind(c[1]) for c in cols])
            for i in range(0, len(inserted), 1000):
                with self.snap.cursor() as cur:
                    cur.execute(("SELECT %s FROM %s WHERE %s IN (" % (select, qualified(self.src_db, name), key_sql)).encode(
                        "utf-8") + b",".join(inserted[i:i + 1000]) + b")")
                    rows = cur.fetchall()
                for stmt, _count in insert_batches(rows, prefix, encoder, batch):
                    self.run_sql(loader, stmt, record=False)
            counter = plan.auto_increment(self.src_create[name])
            if counter:
                self.run_sql(loader, "ALTER TABLE %s AUTO_INCREMENT = %d" % (table, counter))
            self.copied[name] = found["rows"]
            self.recycled[name] = found["insert"]
            self.commands.append("%s: recycled from %s: %d rows deleted, %d inserted (%d rows)" % (
                table, quote_ident(donor), len(found["delete"]), len(found["insert"]), found["rows"]))
            self.result["recycled"].append({"table": name, "from_schema": donor, "rows": found["rows"],
                                            "deleted": len(found["delete"]), "inserted": len(found["insert"])})

    def source_key(self, name):
        """The source table's primary key columns, or None when it has none usable for recycling."""
        if name not in self._source_keys:
            key = self.primary_key(self.src_db, name, self.snap)
            plain = {c[0] for c in self.src_cols[name] if not c[2]}
            mapped = set(self.inline.get(name, {}))
            self._source_keys[name] = key if key and all(k in plain and k not in mapped for k in key) else None
        return self._source_keys[name]

    def digest_sql(self, name, source):
        """(row digest SQL, key literal SQL) of a table; on the source with user ids mapped as when copying."""
        cols = [c for c in self.src_cols[name] if not c[2]]
        kinds = dict((c[0], literal_kind(c[1])) for c in cols)
        key = self.source_key(name)
        exprs = self.inline.get(name) if source else None
        return row_digest_sql([c[0] for c in cols], exprs), server_row_sql(key, [kinds[k] for k in key])

    def sample_pays(self, donor, name):
        """Compare the donor's first RECYCLE_SAMPLE rows (key order) with the source's before reading whole tables."""
        delta = plan.RowDelta()
        with self.digest_conn().cursor() as cur:
            cur.execute(self.digest_query(donor, name, False, limit=RECYCLE_SAMPLE))
            lines = [row[0] for row in cur.fetchall()]
        if not lines or None in lines:
            # nothing to sample, or a row too long to digest (compare_rows says so)
            return True
        delta.add_target(lines)
        with self.snap.cursor() as cur:
            cur.execute(self.digest_query(self.src_db, name, True, keys=delta.result()[0]))
            delta.add_source(row[0] for row in cur.fetchall() if row[0] is not None)
        delete, insert = delta.result()
        if plan.recycle_pays(delta.target_rows, delta.target_rows, delete, insert):
            return True
        self.commands.append("%s: copied whole (%d of the first %d rows of %s differ from the source)" % (
            name, len(delete), delta.target_rows, donor))
        return False

    def digest_conn(self):
        """The target connection that reads digests (one per run; every use closes its cursor)."""
        if self._digest_conn is None:
            self._digest_conn = self._open("target", raw=True, streaming=True)
            # TIMESTAMP values read as text depend on the session time zone: the snapshot's is UTC
            self.run_sql(self._digest_conn, "SET SESSION time_zone = '+00:00'", record=False)
        return self._digest_conn

    def digest_query(self, schema, name, source, keys=None, limit=None):
        """SELECT of digest lines: the rows with these key literals, or every row (up to ``limit``) in
        primary-key order (InnoDB's own order: no sort)."""
        digest, key_sql = self.digest_sql(name, source)
        key_cols = ", ".join(quote_ident(k) for k in self.source_key(name))
        sql = ("SELECT CONCAT(%s, HEX(%s)) FROM %s" % (digest, key_sql, qualified(schema, name))).encode("utf-8")
        if keys is not None:
            return sql + (" WHERE (%s) IN (" % key_cols).encode("utf-8") + b",".join(keys) + b")"
        return sql + (" ORDER BY %s%s" % (key_cols, " LIMIT %d" % limit if limit else "")).encode("utf-8")

    def compare_rows(self, donor, name):
        """Row digests of the source snapshot and of the donor's table, paired; None when recycling does not pay.

        Both servers stream their digests in key order at the same time; one thread reads a chunk of
        each in turn, so neither server waits long and only unmatched rows stay in memory.
        """
        if not self.sample_pays(donor, name):
            return None
        started = time.monotonic()
        delta = plan.RowDelta()
        source = self.snap.cursor()
        target = self.digest_conn().cursor()
        try:
            source.execute(self.digest_query(self.src_db, name, True))
            target.execute(self.digest_query(donor, name, False))
            streams = [(source, delta.add_source), (target, delta.add_target)]
            while streams:
                for stream in list(streams):
                    lines = [row[0] for row in stream[0].fetchmany(FETCH_CHUNK)]
                    if None in lines:
                        self.commands.append("%s: copied whole (a row is longer than max_allowed_packet to digest)" % name)
                        return None
                    if lines:
                        stream[1](lines)
                    else:
                        streams.remove(stream)
        finally:
            for cursor in (source, target):
                try:
                    cursor.close()
                except Exception:  # noqa: BLE001 - a broken stream must not hide the error that broke it
                    pass
            self.timed("recycle_digests", started)
        delete, insert = delta.result()
        if not plan.recycle_pays(delta.source_rows, delta.target_rows, delete, insert):
            self.commands.append("%s: copied whole (%d of %d rows differ from %s)" % (
                name, max(len(delete), len(insert)), delta.source_rows, donor))
            return None
        return {"delete": delete, "insert": insert, "rows": delta.source_rows}

    def copy_tables(self, names, shadow, batch):
        """Stream tables from the one snapshot connection into the shadow schema.

        The source is read table after table (one consistent snapshot); each table is written by
        one of COPY_WRITERS target connections, so a big table's inserts overlap with reading and
        inserting the next ones. The last (biggest) table is also written by the other connection
        as soon as it is free: the target's inserts, not the reading, are what take the time.
        Row literals are built by the source server; a table whose rows are too long for that is
        re-read with client-side literals.
        """
        pool = queue.Queue()
        for _i in range(COPY_WRITERS):
            pool.put(self.open_loader(shadow))
        errors = []
        threads = []
        try:
            for index, name in enumerate(names):
                conn = pool.get()
                if errors:
                    pool.put(conn)
                    break
                work = queue.Queue(maxsize=COPY_QUEUE)
                thread = threading.Thread(target=self._writer, args=(conn, work, name, shadow, pool, errors), daemon=True)
                thread.start()
                threads.append(thread)
                if index == len(names) - 1 and index > 0:
                    helper = threading.Thread(target=self._second_writer, args=(work, name, shadow, pool, errors), daemon=True)
                    helper.start()
                    threads.append(helper)
                try:
                    self._read_table(name, shadow, batch, work, errors)
                finally:
                    work.put(None)
        finally:
            for thread in threads:
                thread.join()
        if errors:
            name, exc = errors[0]
            if isinstance(exc, Failure):
                raise exc
            raise Failure("%s while loading %s into the shadow schema; the live tables were not changed" % (
                friendly_error("target", self.p["target"], exc), name))

    def _second_writer(self, work, name, shadow, pool, errors):
        """Share ``work`` with its first writer once another connection is free (both commit per statement)."""
        self._writer(pool.get(), work, name, shadow, pool, errors)

    def _writer(self, conn, work, name, shadow, pool, errors):
        started = time.monotonic()
        statements = 0
        failed = False
        try:
            # autocommit per statement: measured 2-3x faster than one transaction per table on
            # MariaDB 10.11 (its bulk-insert path for empty tables is slow with large rows)
            with conn.cursor() as cur:
                while True:
                    item = work.get()
                    if item is None:
                        work.task_done()
                        work.put(None)  # for the other writer of this table, if any
                        break
                    try:
                        if failed:
                            continue
                        if item is RESTART:
                            cur.execute("TRUNCATE TABLE %s" % qualified(shadow, name))
                            continue
                        cur.execute(item)
                        statements += 1
                    except Exception as exc:  # noqa: BLE001 - handed to the reading thread
                        errors.append((name, exc))
                        failed = True
                    finally:
                        work.task_done()  # the reader joins the queue before a RESTART
                if not failed and statements:
                    self.commands.append("INSERT INTO %s: %d statements in %.2f s" % (
                        qualified(shadow, name), statements, time.monotonic() - started))
        except Exception as exc:  # noqa: BLE001
            errors.append((name, exc))
        finally:
            pool.put(conn)

    def _read_table(self, name, shadow, batch, work, errors):
        cols = [c for c in self.src_cols[name] if not c[2]]
        kinds = [literal_kind(c[1]) for c in cols]
        col_sql = ", ".join(quote_ident(c[0]) for c in cols)
        prefix = ("INSERT INTO %s (%s) VALUES " % (qualified(shadow, name), col_sql)).encode("utf-8")
        where = ""
        if self.actions[name] == "merge":
            where = " WHERE %s IS NULL" % quote_ident(plan.merge_column(name, self.merge_spec))
        exprs = self.inline.get(name)
        for server_side in (True, False):
            if server_side:
                select = server_row_sql([c[0] for c in cols], kinds, exprs)
                crc = [0]
                encoder = crc_encoder(crc)
            else:
                select = col_sql
                encoder = row_encoder(kinds)
                if exprs:
                    raise Failure("a row of %s is too long for the source server to build (max_allowed_packet) and user "
                                  "references are mapped while reading; raise the source's max_allowed_packet" % name)
            total = 0
            cur = self.snap.cursor()
            try:
                cur.execute("SELECT %s FROM %s%s" % (select, qualified(self.src_db, name), where))
                for stmt, count in insert_batches(stream_rows(cur), prefix, encoder, batch):
                    if errors:
                        break
                    work.put(stmt)
                    total += count
                cur.close()
            except pymysql.err.MySQLError as exc:
                raise Failure("%s while copying %s; the live tables were not changed" % (
                    friendly_error("source", self.p["source"], exc), name)) from None
            except RowTooLong:
                cur.close()  # drains the unbuffered result so the snapshot connection stays usable
                # two writers may share this table: every INSERT queued so far ends before it is emptied,
                # and it is empty before the first re-read row is queued
                work.join()
                work.put(RESTART)
                work.join()
                self.commands.append("%s: rows too long for server-side literals, copied with client-side ones" % name)
                continue
            self.copied[name] = total
            if server_side and exprs:
                self.crc[name] = crc[0]
            return

    def merge_target_rows(self, loader, shadow, name, src_cols):
        """Add the target's per-user rows; colliding auto-increment keys get new ones."""
        split = plan.merge_column(name, self.merge_spec)
        tgt_names = {c[0] for c in self.tgt_cols[name] if not c[2]}
        cols = [c[0] for c in src_cols if c[0] in tgt_names]
        pk = self.primary_key(self.db, name)
        col_sql = ", ".join(quote_ident(c) for c in cols)
        live, shad = qualified(self.db, name), qualified(shadow, name)
        if len(pk) == 1:
            key = quote_ident(pk[0])
            conflict = "%s IN (SELECT %s FROM %s WHERE %s IS NULL)" % (key, key, shad, quote_ident(split))
            self.run_sql(loader, "INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s IS NOT NULL AND NOT %s" % (
                shad, col_sql, col_sql, live, quote_ident(split), conflict))
            auto = any("auto_increment" in (r[0] or "") for r in fetch(
                self.tgt, "SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                "AND COLUMN_NAME=%s", (self.db, name, pk[0])))
            clashes = self.count(self.tgt, self.db, name, "WHERE %s IS NOT NULL AND %s" % (quote_ident(split), conflict))
            if clashes and auto:
                other = [c for c in cols if c != pk[0]]
                other_sql = ", ".join(quote_ident(c) for c in other)
                self.run_sql(loader, "INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s IS NOT NULL AND %s ORDER BY %s" % (
                    shad, other_sql, other_sql, live, quote_ident(split), conflict, key))
                self.add("merge", "changed", "%s: %d kept row(s) got a new %s (it collided with a promoted row)"
                         % (name, clashes, pk[0]))
            elif clashes:
                self.add("merge", "warning", "%s: %d kept row(s) share their key with a promoted row and were not kept"
                         % (name, clashes))
        else:
            self.run_sql(loader, "INSERT IGNORE INTO %s (%s) SELECT %s FROM %s WHERE %s IS NOT NULL" % (
                shad, col_sql, col_sql, live, quote_ident(split)))

    def transform_shadow(self, loader, shadow):
        """User references -> target users; kept parts of merged tables -> promoted role/policy ids."""
        targets = [(t, c) for t, c in self.user_cols if t in self.swap_in and c not in self.inline.get(t, {})]
        if self.user_map and targets:
            id_type = fetch(self.tgt, "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                            "TABLE_NAME=%s AND COLUMN_NAME='id'", (self.db, plan.USERS_TABLE))
            id_type = id_type[0][0] if id_type else "varchar(255)"
            umap = qualified(shadow, "__user_map")
            self.run_sql(loader, "CREATE TABLE %s (src %s NOT NULL PRIMARY KEY, dst %s NULL)" % (umap, id_type, id_type))
            items = sorted(self.user_map.items(), key=lambda kv: str(kv[0]))
            for i in range(0, len(items), 1000):
                chunk = items[i:i + 1000]
                self.run_sql(loader, "INSERT INTO %s (src, dst) VALUES %s" % (
                    umap, ", ".join(["(%s, %s)"] * len(chunk))), tuple(v for kv in chunk for v in kv), record=False)
            for table, column in targets:
                self.run_sql(loader, "UPDATE %s t JOIN %s m ON t.%s = m.src SET t.%s = m.dst" % (
                    qualified(shadow, table), umap, quote_ident(column), quote_ident(column)))
            self.run_sql(loader, "DROP TABLE %s" % umap)
        self.apply_kept_remaps(shadow, live_only=False, conn=loader)

    def apply_kept_remaps(self, schema, live_only, conn=None):
        conn = conn or self.tgt
        for mapping, cols in ((self.role_map, self.role_cols), (self.policy_map, self.policy_cols)):
            if not mapping:
                continue
            for table, column in cols:
                action = self.actions.get(table)
                if live_only and action != "keep":
                    continue
                if not live_only and not (action == "merge" and table in self.swap_in):
                    continue
                where = ""
                if action == "merge":
                    where = " AND %s IS NOT NULL" % quote_ident(plan.merge_column(table, self.merge_spec))
                items = sorted(mapping.items(), key=lambda kv: str(kv[0]))
                case = " ".join(["WHEN %s THEN %s"] * len(items))
                args = tuple(v for kv in items for v in kv) + tuple(k for k, _v in items)
                self.run_sql(conn, "UPDATE %s SET %s = CASE %s %s END WHERE %s IN (%s)%s" % (
                    qualified(schema, table), quote_ident(column), quote_ident(column), case, quote_ident(column),
                    ", ".join(["%s"] * len(items)), where), args)

    def primary_key(self, schema, table, conn=None):
        return [r[0] for r in fetch(conn or self.tgt, "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
                                    "TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' "
                                    "ORDER BY ORDINAL_POSITION", (schema, table))]

    def write_backup_file(self, path):
        """Logical SQL backup (0600) of the live tables about to be swapped out."""
        raw = self._open("target", raw=True, streaming=True)
        self.run_sql(raw, "SET SESSION time_zone = '+00:00'", record=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        fh = os.fdopen(fd, "wb")
        out = gzip.GzipFile(fileobj=fh, mode="wb") if path.endswith(".gz") else fh
        try:
            out.write(b"-- casper.directus_promote backup of %s\nSET NAMES utf8mb4;\nSET foreign_key_checks = 0;\n"
                      b"SET unique_checks = 0;\nSET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET time_zone = '+00:00';\n"
                      % self.db.encode("utf-8"))
            for name in sorted(self.swap_out):
                create = self.show_create(self.tgt, self.db, name)
                out.write(b"\nDROP TABLE IF EXISTS %s;\n%s;\n" % (quote_ident(name).encode("utf-8"), create.encode("utf-8")))
                cols = [c for c in self.tgt_cols[name] if not c[2]]
                col_sql = ", ".join(quote_ident(c[0]) for c in cols)
                prefix = ("INSERT INTO %s (%s) VALUES " % (quote_ident(name), col_sql)).encode("utf-8")
                encoder = row_encoder([literal_kind(c[1]) for c in cols])
                with raw.cursor() as cur:
                    cur.execute("SELECT %s FROM %s" % (col_sql, qualified(self.db, name)))
                    for stmt, _count in insert_batches(stream_rows(cur), prefix, encoder, 1024 * 1024):
                        out.write(stmt + b";\n")
        finally:
            if out is not fh:
                out.close()
            fh.close()
        self.commands.append("backup file written: %s (%d tables)" % (path, len(self.swap_out)))

    def ensure_state_schema(self):
        schema = self.db + plan.STATE_MARK
        self.run_sql(self.tgt, "CREATE DATABASE IF NOT EXISTS %s" % quote_ident(schema))
        self.run_sql(self.tgt, "CREATE TABLE IF NOT EXISTS %s (table_name VARCHAR(64) NOT NULL PRIMARY KEY, "
                     "source_checksum VARCHAR(32) NULL, target_checksum VARCHAR(32) NULL, fingerprint CHAR(64) NULL, "
                     "updated_at DATETIME NOT NULL, %s) ENGINE=InnoDB" % (
                         qualified(schema, "table_state"), ", ".join("%s %s" % (c, t) for c, t in STATE_COLUMNS)))
        present = self.state_columns(schema)
        missing = [(c, t) for c, t in STATE_COLUMNS if c not in present]
        if missing:
            # a state table of an older release: add the checksum-reuse columns (NULL: nothing to reuse yet)
            self.run_sql(self.tgt, "ALTER TABLE %s %s" % (qualified(schema, "table_state"), ", ".join(
                "ADD COLUMN %s %s" % (c, t) for c, t in missing)))
        self.run_sql(self.tgt, "CREATE TABLE IF NOT EXISTS %s (backup_schema VARCHAR(64) NOT NULL PRIMARY KEY, "
                     "created_at DATETIME NOT NULL, swapped_in LONGTEXT NOT NULL, swapped_out LONGTEXT NOT NULL, "
                     "kept_remaps LONGTEXT NOT NULL) ENGINE=InnoDB" % qualified(schema, "backups"))
        return schema

    def save_state(self, backup):
        schema = self.ensure_state_schema()
        names = ["source_checksum", "target_checksum", "fingerprint"] + [c for c, _t in STATE_COLUMNS]
        for name, entry in sorted(getattr(self, "new_state", {}).items()):
            self.run_sql(self.tgt, "REPLACE INTO %s (table_name, updated_at, %s) VALUES (%%s, UTC_TIMESTAMP(), %s)" % (
                qualified(schema, "table_state"), ", ".join(names), ", ".join(["%s"] * len(names))),
                (name,) + tuple(entry.get(c) for c in names), record=False)
        if backup:
            remaps = {"roles": self.role_map, "policies": self.policy_map, "nulled": getattr(self, "nulled", []),
                      "role_columns": [list(x) for x in self.role_cols if self.actions.get(x[0]) == "keep"],
                      "policy_columns": [list(x) for x in self.policy_cols if self.actions.get(x[0]) == "keep"]}
            self.run_sql(self.tgt, "REPLACE INTO %s VALUES (%%s, UTC_TIMESTAMP(), %%s, %%s, %%s)"
                         % qualified(schema, "backups"),
                         (backup, json.dumps(sorted(self.swap_in)), json.dumps(sorted(self.swap_out)),
                          json.dumps(remaps, default=str)), record=False)

    def prune(self, mark):
        keep = int(self.p["keep_backups"])
        for schema in plan.backups_to_prune(self.schemas(self.tgt), self.db, keep, mark=mark):
            if mark == plan.BACKUP_MARK:
                self.drop_backup(schema)
            else:
                self.run_sql(self.tgt, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))

    def drop_backup(self, schema):
        self.run_sql(self.tgt, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
        if (self.db + plan.STATE_MARK) in self.schemas(self.tgt):
            self.run_sql(self.tgt, "DELETE FROM %s WHERE backup_schema = %%s"
                         % qualified(self.db + plan.STATE_MARK, "backups"), (schema,), record=False)

    # ------------------------------------------------------------------ rollback
    def rollback(self):
        self.acquire_lock()
        self.clean_leftovers()
        backups = plan.schemas_with_mark(self.schemas(self.tgt), self.db, plan.BACKUP_MARK)
        if not backups:
            raise Failure("nothing to roll back: no backup schema %s<timestamp> on the target" % (self.db + plan.BACKUP_MARK))
        backup = backups[-1]
        in_tables, _views = self.base_tables(self.tgt, backup)
        live_tables, _views = self.base_tables(self.tgt, self.db)
        meta = None
        state_schema = self.db + plan.STATE_MARK
        if state_schema in self.schemas(self.tgt):
            rows = fetch(self.tgt, "SELECT swapped_in, swapped_out, kept_remaps FROM %s WHERE backup_schema = %%s"
                         % qualified(state_schema, "backups"), (backup,))
            if rows:
                meta = {"swapped_in": json.loads(rows[0][0]), "swapped_out": json.loads(rows[0][1]),
                        "kept_remaps": json.loads(rows[0][2])}
        if meta is not None:
            out_tables = [t for t in meta["swapped_in"] if t in live_tables]
        else:
            out_tables = [t for t in in_tables if t in live_tables]
        self.result["tables"] = ([{"name": t, "action": "restore", "policy": "rollback", "source_rows": None,
                                   "target_rows": None} for t in in_tables]
                                 + [{"name": t, "action": "remove", "policy": "rollback", "source_rows": None,
                                     "target_rows": None} for t in out_tables if t not in in_tables])
        self.result["changed_tables"] = sorted(set(in_tables) | set(out_tables))
        self.result["changed"] = bool(self.result["changed_tables"])
        self.add("rollback", "changed", "restore %d table(s) from %s" % (len(in_tables), backup))
        if self.module._diff:
            self.result["diff"] = {"before": "".join("%s: current\n" % t for t in sorted(self.result["changed_tables"])),
                                   "after": "".join("%s: %s\n" % (t, "from %s" % backup if t in in_tables else "removed")
                                                    for t in sorted(self.result["changed_tables"]))}
        if self.check or not self.result["changed"]:
            self.finish_result()
            return
        t = time.monotonic()
        rolled = plan.side_schema_name(self.db, plan.ROLLEDBACK_MARK, self.new_stamp(plan.ROLLEDBACK_MARK))
        self.run_sql(self.tgt, "SET SESSION foreign_key_checks = 0", record=False)
        charset, collation = fetch(self.tgt, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                                   "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.db,))[0]
        fks = self.foreign_keys(self.tgt, [self.db, backup], clauses=True)
        fixes = plan.plan_fk_fixups(fks, self.db, rolled, out_tables, backup, in_tables)
        if out_tables:
            self.run_sql(self.tgt, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (quote_ident(rolled), charset, collation))
        repointed = fixes["pre_repoint"]
        for sql in plan.fk_group_sql(repointed, "drop") + plan.fk_group_sql(repointed, "add"):
            self.bounded_ddl(self.tgt, sql)
        dropped_fks = []
        try:
            self.cut_over(fixes["pre_drop"], plan.build_rename(self.db, rolled, out_tables, backup, in_tables), dropped_fks,
                          "nothing was rolled back")
        except Exception:
            # nothing was renamed: production's FKs and the backup's go back to what they were
            back = [(fk, backup) for fk, _ref in repointed]
            for sql in ([plan.fk_add_sql(fk, self.db) for fk in dropped_fks]
                        + plan.fk_group_sql(back, "drop") + plan.fk_group_sql(back, "add")
                        + (["DROP DATABASE IF EXISTS %s" % quote_ident(rolled)] if out_tables else [])):
                try:
                    self.run_sql(self.tgt, sql)
                except Exception:  # noqa: BLE001 - best effort; the original error is what the run reports
                    pass
            raise
        if meta:
            remaps = meta["kept_remaps"]
            self.actions = {}
            for key, cols_key in (("roles", "role_columns"), ("policies", "policy_columns")):
                inverse = {v: k for k, v in (remaps.get(key) or {}).items()}
                if not inverse:
                    continue
                for table, column in remaps.get(cols_key) or []:
                    items = sorted(inverse.items())
                    case = " ".join(["WHEN %s THEN %s"] * len(items))
                    args = tuple(v for kv in items for v in kv) + tuple(k for k, _v in items)
                    self.run_sql(self.tgt, "UPDATE %s SET %s = CASE %s %s END WHERE %s IN (%s)" % (
                        qualified(self.db, table), quote_ident(column), quote_ident(column), case, quote_ident(column),
                        ", ".join(["%s"] * len(items))), args)
            for table, column, pk, rows in remaps.get("nulled") or []:
                for key, value in rows:
                    self.run_sql(self.tgt, "UPDATE %s SET %s = %%s WHERE %s = %%s AND %s IS NULL" % (
                        qualified(self.db, table), quote_ident(column), quote_ident(pk), quote_ident(column)),
                        (value, key), record=False)
                self.commands.append("restored %s.%s in %d row(s)" % (table, column, len(rows)))
        for sql in (plan.fk_group_sql(fixes["post_add"], "add")
                    + plan.fk_group_sql(fixes["post_repoint"], "drop", schema=rolled)
                    + plan.fk_group_sql(fixes["post_repoint"], "add", schema=rolled)):
            self.run_sql(self.tgt, sql)
        self.run_sql(self.tgt, "DROP DATABASE %s" % quote_ident(backup))
        if state_schema in self.schemas(self.tgt):
            self.run_sql(self.tgt, "DELETE FROM %s" % qualified(state_schema, "table_state"))
            self.run_sql(self.tgt, "DELETE FROM %s WHERE backup_schema = %%s" % qualified(state_schema, "backups"), (backup,))
        self.result["backup_schema"] = rolled if out_tables else None
        self.prune(plan.ROLLEDBACK_MARK)
        self.timed("rollback", t)
        self.finish_result()


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("rollback", False, ("source",))],
    )
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    if module.params["keep_backups"] < 0:
        module.fail_json(msg="keep_backups must be 0 or more")
    if module.params["recycle_min_rows"] < 0:
        module.fail_json(msg="recycle_min_rows must be 0 or more")
    if module.params["cutover_lock_wait"] < 1 or module.params["cutover_attempts"] < 1:
        module.fail_json(msg="cutover_lock_wait and cutover_attempts must be 1 or more")
    rep = Replicator(module)
    rep.result = {"changed": False, "tables": [], "changed_tables": [], "backup_schema": None}
    try:
        result = rep.run()
    except Failure as exc:
        rep.finish_result()
        module.fail_json(msg=str(exc), **_partial(rep))
    except DatabaseError as exc:
        rep.finish_result()
        module.fail_json(msg=str(exc), **_partial(rep))
    except pymysql.err.MySQLError as exc:
        rep.finish_result()
        side = "source" if _is_source_error(rep, exc) else "target"
        module.fail_json(msg=friendly_error(side, rep.p.get(side) or {}, exc) + "; the live tables were not changed"
                         if not rep.result.get("backup_schema") else friendly_error(side, rep.p.get(side) or {}, exc),
                         **_partial(rep))
    except plan.PlanError as exc:
        rep.finish_result()
        module.fail_json(msg=str(exc), **_partial(rep))
    except Exception as exc:  # noqa: BLE001 - one clear error, with the trace for -vvv
        rep.finish_result()
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc(), **_partial(rep))
    module.exit_json(**result)


def _is_source_error(rep, exc):
    code = getattr(exc, "args", [None])[0]
    return code in (2006, 2013) and rep.snap is not None and not rep.snap.open


def _partial(rep):
    out = dict(rep.result)
    out.pop("changed", None)
    out.pop("failed", None)
    out.pop("msg", None)
    return out


if __name__ == "__main__":
    main()
