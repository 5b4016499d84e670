# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The target's state schema ``<database>__promote_state``: what the next run reads.

- ``table_state``: per promoted table the checksums (and what proves them current) the last promotion recorded;
- ``backups``: per backup schema what its promotion swapped and remapped (what ``rollback`` undoes);
- ``journal``, ``journal_steps``, ``journal_rows``: the journal (see journal.py).
"""

from __future__ import annotations

import json

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified, quote_ident

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None

# table_state columns added for checksum reuse (older installs lack them until a promotion writes)
STATE_COLUMNS = [("source_ident", "CHAR(64) NULL"), ("source_mark", "BIGINT NULL"), ("source_create_time", "BIGINT NULL"),
                 ("source_table_id", "BIGINT NULL"), ("target_ident", "CHAR(64) NULL"), ("target_mark", "BIGINT NULL"),
                 ("target_create_time", "BIGINT NULL"), ("target_table_id", "BIGINT NULL")]
STATE_NAMES = ["source_checksum", "target_checksum", "fingerprint"] + [c for c, _t in STATE_COLUMNS]
TABLES = {
    "table_state": "(table_name VARCHAR(64) NOT NULL PRIMARY KEY, source_checksum VARCHAR(32) NULL, "
                   "target_checksum VARCHAR(32) NULL, fingerprint CHAR(64) NULL, updated_at DATETIME NOT NULL, %s)"
                   % ", ".join("%s %s" % ct for ct in STATE_COLUMNS),
    "backups": "(backup_schema VARCHAR(64) NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL, swapped_in LONGTEXT NOT NULL, "
               "swapped_out LONGTEXT NOT NULL, kept_remaps LONGTEXT NOT NULL, run_id CHAR(32) NULL, "
               "promotion_id VARCHAR(128) NULL)",
    "journal": "(run_id CHAR(32) NOT NULL PRIMARY KEY, kind VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL, "
               "started_at DATETIME(6) NOT NULL, finished_at DATETIME(6) NULL, thread_id BIGINT NOT NULL, "
               "controller VARCHAR(255) NOT NULL, work_order LONGTEXT NOT NULL, outcome LONGTEXT NULL, KEY (status))",
    "journal_steps": "(run_id CHAR(32) NOT NULL, seq INT NOT NULL, step VARCHAR(200) NOT NULL, phase VARCHAR(8) NOT NULL, "
                     "at DATETIME(6) NOT NULL, detail LONGTEXT NULL, PRIMARY KEY (run_id, seq))",
    "journal_rows": "(run_id CHAR(32) NOT NULL, step VARCHAR(200) NOT NULL, seq INT NOT NULL, pk LONGTEXT NOT NULL, "
                    "old_value LONGTEXT NULL, new_value LONGTEXT NULL, PRIMARY KEY (run_id, step, seq))",
}


def schema_name(db):
    return db + rules.STATE_MARK


def table(db, name):
    return qualified(schema_name(db), name)


def exists(run, conn=None):
    return schema_name(run.db) in run.schemas(conn)


def columns_of(conn, db, name):
    return {r[0] for r in fetch(conn, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                                "AND TABLE_NAME = %s", (schema_name(db), name))}


def ensure(run, conn=None):
    """Create the state schema and its tables; extend tables of an older release (new columns read as NULL)."""
    conn = conn or run.target
    schema = schema_name(run.db)
    run.sql(conn, "CREATE DATABASE IF NOT EXISTS %s" % quote_ident(schema), record=False)
    for name, definition in TABLES.items():
        run.sql(conn, "CREATE TABLE IF NOT EXISTS %s %s ENGINE=InnoDB" % (table(run.db, name), definition), record=False)
    present = columns_of(conn, run.db, "table_state")
    missing = [(c, t) for c, t in STATE_COLUMNS if c not in present]
    if missing:
        run.sql(conn, "ALTER TABLE %s %s" % (table(run.db, "table_state"), ", ".join(
            "ADD COLUMN %s %s" % ct for ct in missing)), record=False)
    present = columns_of(conn, run.db, "backups")
    for column, definition in (("run_id", "CHAR(32) NULL"), ("promotion_id", "VARCHAR(128) NULL")):
        if column not in present:
            run.sql(conn, "ALTER TABLE %s ADD COLUMN %s %s" % (table(run.db, "backups"), column, definition), record=False)
    return schema


def read_table_state(run):
    """{table: recorded state row} ({} when there is no state yet)."""
    if not exists(run):
        return {}
    names = ["table_name"] + STATE_NAMES
    try:
        present = columns_of(run.target, run.db, "table_state")
        # a state table of an older release lacks the reuse columns: they read as NULL
        select = ", ".join(quote_ident(c) if c in present else "NULL" for c in names)
        rows = fetch(run.target, "SELECT %s FROM %s" % (select, table(run.db, "table_state")))
    except pymysql.err.MySQLError:
        return {}
    return {r[0]: dict(zip(names[1:], r[1:])) for r in rows}


def table_state_statements(db, new_state):
    """REPLACE statements (sql, args) recording the checksums of the tables a promotion wrote."""
    out = []
    for name, entry in sorted(new_state.items()):
        out.append(("REPLACE INTO %s (table_name, updated_at, %s) VALUES (%%s, UTC_TIMESTAMP(), %s)" % (
            table(db, "table_state"), ", ".join(STATE_NAMES), ", ".join(["%s"] * len(STATE_NAMES))),
            (name,) + tuple(entry.get(c) for c in STATE_NAMES)))
    return out


def backup_statement(db, backup, run_id, swapped_in, swapped_out, kept_remaps, promotion_id=None):
    return ("REPLACE INTO %s (backup_schema, created_at, swapped_in, swapped_out, kept_remaps, run_id, promotion_id) "
            "VALUES (%%s, UTC_TIMESTAMP(), %%s, %%s, %%s, %%s, %%s)" % table(db, "backups"),
            (backup, json.dumps(sorted(swapped_in)), json.dumps(sorted(swapped_out)), json.dumps(kept_remaps, default=str),
             run_id, promotion_id))


def backup_record(run, backup):
    """What the promotion that made ``backup`` recorded: {swapped_in, swapped_out, kept_remaps, run_id, status}
    (status: that run's journal status; 'complete' for a record of a release before the journal), or None."""
    if not exists(run):
        return None
    present = columns_of(run.target, run.db, "backups")
    rows = fetch(run.target, "SELECT swapped_in, swapped_out, kept_remaps, %s, %s FROM %s WHERE backup_schema = %%s" % (
        "run_id" if "run_id" in present else "NULL", "promotion_id" if "promotion_id" in present else "NULL",
        table(run.db, "backups")), (backup,))
    if not rows:
        return None
    record = {"swapped_in": json.loads(rows[0][0]), "swapped_out": json.loads(rows[0][1]),
              "kept_remaps": json.loads(rows[0][2]), "run_id": rows[0][3], "promotion_id": rows[0][4], "status": "complete"}
    if record["run_id"]:
        status = fetch(run.target, "SELECT status FROM %s WHERE run_id = %%s" % table(run.db, "journal"), (record["run_id"],))
        record["status"] = status[0][0] if status else None
    return record


def drop_backup(run, schema, conn=None):
    conn = conn or run.target
    run.sql(conn, "DROP DATABASE IF EXISTS %s" % quote_ident(schema))
    if exists(run, conn):
        run.sql(conn, "DELETE FROM %s WHERE backup_schema = %%s" % table(run.db, "backups"), (schema,), record=False)
