# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Catalog reads (information_schema, SHOW CREATE TABLE, CHECKSUM TABLE) of MariaDB/MySQL.

Everything here only reads. Structure comes from information_schema as data (names, types,
rules); the text of SHOW CREATE TABLE is only ever read through ``ddl.parse_create_table``.
"""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified

CHECKSUM_CHUNK = 50


def identity(conn, database):
    host, port, datadir, version = fetch(conn, "SELECT @@hostname, @@port, @@datadir, VERSION()")[0]
    uuid_rows = fetch(conn, "SHOW VARIABLES LIKE 'server_uuid'")
    return {"hostname": host, "port": int(port), "datadir": datadir, "version": version,
            "server_uuid": uuid_rows[0][1] if uuid_rows else None, "database": database}


def base_tables(conn, schema):
    """(sorted base tables, sorted views) of a schema."""
    rows = fetch(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,))
    views = sorted(r[0] for r in rows if r[1] != "BASE TABLE")
    return sorted(r[0] for r in rows if r[1] == "BASE TABLE"), views


def columns(conn, schema):
    """{table: [(column, data_type, generated)]} in column order."""
    cols = {}
    for table, column, data_type, extra, _pos in fetch(
            conn, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA, ORDINAL_POSITION FROM information_schema.COLUMNS "
                  "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (schema,)):
        generated = "GENERATED" in (extra or "").upper() or (extra or "").upper() in ("VIRTUAL", "PERSISTENT", "STORED")
        cols.setdefault(table, []).append((column, data_type, generated))
    return cols


def column_details(conn, schema, table):
    """[{name, type, nullable, default, extra, charset, collation, comment, generation}] of one table, in order,
    exactly as information_schema holds them (``ddl.column_definition`` turns them into verified DDL)."""
    rows = fetch(conn, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, "
                       "COLLATION_NAME, COLUMN_COMMENT, GENERATION_EXPRESSION FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (schema, table))
    return [{"name": r[0], "type": r[1], "nullable": r[2] == "YES", "default": r[3], "extra": r[4] or "",
             "charset": r[5], "collation": r[6], "comment": r[7] or "", "generation": r[8]} for r in rows]


def show_create(conn, schema, table):
    return fetch(conn, "SHOW CREATE TABLE %s" % qualified(schema, table))[0][1]


def foreign_keys(conn, schemas):
    """Every FK of tables in ``schemas`` as data (rules.group_foreign_keys): names, columns, parent, rules."""
    marks = ", ".join(["%s"] * len(schemas))
    rows = fetch(conn, (
        "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.ORDINAL_POSITION, "
        "k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
        "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
        "AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.TABLE_SCHEMA IN (%s) AND k.REFERENCED_TABLE_NAME IS NOT NULL") % marks, tuple(schemas))
    return rules.group_foreign_keys(rows)


def primary_key(conn, schema, table):
    return [r[0] for r in fetch(conn, "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
                                "TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' "
                                "ORDER BY ORDINAL_POSITION", (schema, table))]


def nullable_columns(conn, schema):
    """{(table, column): nullable} of a schema."""
    return {(t, c): n == "YES" for t, c, n in fetch(
        conn, "SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", (schema,))}


def count(conn, schema, table, where="", args=None):
    return int(fetch(conn, "SELECT COUNT(*) FROM %s %s" % (qualified(schema, table), where), args)[0][0])


def checksums(conn, schema, tables):
    """{table: CHECKSUM TABLE value as text, None when the server has none}."""
    out = {}
    tables = list(tables)
    for i in range(0, len(tables), CHECKSUM_CHUNK):
        chunk = tables[i:i + CHECKSUM_CHUNK]
        sql = "CHECKSUM TABLE " + ", ".join(qualified(schema, t) for t in chunk)
        # the server names each table schema.table; the schema is ours, the table name may hold dots
        for name, value in fetch(conn, sql):
            out[name[len(schema) + 1:]] = None if value is None else str(value)
    return out


def table_sizes(conn, schema):
    """{table: (estimated rows, data + index bytes)} from information_schema.TABLES."""
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in fetch(
        conn, "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
              "WHERE TABLE_SCHEMA = %s", (schema,))}


def table_stats(conn, schema):
    """{table: {engine, create_options, create_time, update_time, table_id}} of a schema's base tables
    (times in UNIX seconds; table_id None when unknown)."""
    stats = {}
    for name, engine, options, created, updated in fetch(
            conn, "SELECT TABLE_NAME, ENGINE, CREATE_OPTIONS, UNIX_TIMESTAMP(CREATE_TIME), UNIX_TIMESTAMP(UPDATE_TIME) "
                  "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'", (schema,)):
        stats[name] = {"engine": engine, "create_options": options, "create_time": created, "update_time": updated,
                       "table_id": None}
    wanted = {rules.innodb_name(schema, n): n for n in stats if rules.innodb_name(schema, n)}
    if wanted:
        for full, table_id in fetch(conn, "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE %s",
                                    (schema + "/%",)):
            if full in wanted:
                stats[wanted[full]]["table_id"] = table_id
    return stats
