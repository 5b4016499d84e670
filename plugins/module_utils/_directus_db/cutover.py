# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cut-over: the swap's work order, the statements before the swap, the one RENAME TABLE, and what follows it.

Everything after the swap reads only the work order and the journal, never the Plan, so that the same
functions finish a swap that a killed run left half done (recovery.py).
"""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, ddl, locks, state
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.rows import (
    fetch_raw,
    key_text,
    remapped,
    row_digest,
)
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import fetch
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import fault_point
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    insert_batches,
    qualified,
    quote_ident,
    row_encoder,
)

ROW_CHUNK = 1000


# --------------------------------------------------------------------------- the work order

def work_order(run, plan, shadow, backup):
    """What the swap and what follows it will do, as data (journaled before anything live is touched)."""
    remaps = []
    for mapping, cols in ((plan.role_map, plan.role_cols), (plan.policy_map, plan.policy_cols)):
        for table, column in cols:
            if mapping and plan.actions.get(table) == "keep":
                remaps.append({"table": table, "column": column, "map": {str(k): str(v) for k, v in mapping.items()}})
    return {
        "kind": "promote", "live": run.db, "incoming": shadow, "outgoing": backup, "donor": None,
        "swap_in": sorted(plan.swap_in), "swap_out": sorted(plan.swap_out),
        "column_adds": [dict(add._asdict()) for add in plan.column_adds],
        "remaps": remaps,
        "nulls": [{"table": t, "column": c, "values": [str(v) for v in values]} for t, c, values in plan.dangling],
        "kept_fks": [], "shadow_fks": [], "merged": [], "state": {},
        "backup_meta": {"roles": plan.role_map, "policies": plan.policy_map},
        "promotion_run_id": run.params.get("promotion_run_id"),
    }


def group_fks(fks):
    by_table = {}
    for fk in fks:
        by_table.setdefault((fk["schema"], fk["table"]), []).append(fk)
    return [group for _key, group in sorted(by_table.items())]


# --------------------------------------------------------------------------- before the swap

def prepare(run, journal):
    """The statements before the swap that touch live tables, each announced in the journal first:
    columns the promoted directus_fields declare added to kept tables; the shadow tables' FKs to
    parents that stay behind re-pointed to live; the kept tables' FKs to swapped tables written
    down (the swap re-points them); the backup schema."""
    order = journal.order
    live, shadow, backup = order["live"], order["incoming"], order["outgoing"]
    for add in order["column_adds"]:
        step = "column_add:%s.%s" % (add["table"], add["column"])
        journal.step(step, "intent")
        fault_point("column_add")
        locks.bounded_ddl(run, run.target, ddl.add_column_sql(live, ddl.ColumnAdd(**add)))
        journal.step(step, "done")
    schemas = [live, shadow] if shadow in run.schemas() else [live]
    fixes = rules.plan_fk_fixups(catalog.foreign_keys(run.target, schemas), live, backup, order["swap_out"], shadow,
                                 order["swap_in"])
    for table_fks in group_fks([fk for fk, _ref in fixes["pre_repoint"]]):
        repoint(run, table_fks, live)
    order["kept_fks"] = [fk for fk, _ref in fixes["pre_drop"]]
    journal.save_order()
    if order["swap_out"]:
        journal.step("backup_schema", "intent")
        run.create_schema_like_live(backup)
    fault_point("prepared")


def repoint(run, table_fks, ref_schema, conn=None):
    """Point one table's FKs at ``ref_schema``: drop them, add them again (two statements: MariaDB refuses
    to drop and add a constraint of the same name in one), each waiting a bounded time for its locks."""
    conn = conn or run.target
    fk0 = table_fks[0]
    table = qualified(fk0["schema"], fk0["table"])
    locks.bounded_ddl(run, conn, "ALTER TABLE %s %s" % (table, ", ".join(
        "DROP FOREIGN KEY %s" % quote_ident(fk["name"]) for fk in table_fks)))
    add_fks(run, table_fks, ref_schema, conn)


def add_fks(run, table_fks, ref_schema, conn=None):
    conn = conn or run.target
    fk0 = table_fks[0]
    locks.bounded_ddl(run, conn, "ALTER TABLE %s %s" % (qualified(fk0["schema"], fk0["table"]), ", ".join(
        "ADD " + ddl.fk_clause(fk, ref_schema) for fk in table_fks)))


# --------------------------------------------------------------------------- the swap

def swap(run, journal, outcome):
    """Re-point the kept tables' FKs to the shadow copies of their parents (or drop those whose parent only
    leaves), then RENAME TABLE: every live table swapped at once, and the FKs followed their new parents
    into production. Under bounded_locks: an attempt that cannot get its locks puts the FKs back."""
    order = journal.order
    live, shadow, backup = order["live"], order["incoming"], order["outgoing"]
    swap_in = set(order["swap_in"])
    rename = rules.build_rename(live, backup, order["swap_out"], shadow, order["swap_in"])

    def attempt():
        for table_fks in group_fks(order["kept_fks"]):
            following = [fk for fk in table_fks if fk["ref_table"] in swap_in]
            table = qualified(table_fks[0]["schema"], table_fks[0]["table"])
            run.sql(run.target, "ALTER TABLE %s %s" % (table, ", ".join(
                "DROP FOREIGN KEY %s" % quote_ident(fk["name"]) for fk in table_fks)))
            if following:
                run.sql(run.target, "ALTER TABLE %s %s" % (table, ", ".join(
                    "ADD " + ddl.fk_clause(fk, shadow) for fk in following)))
        fault_point("kept_fks_repointed")
        if rename:
            run.sql(run.target, rename)

    journal.step("swap", "intent")
    fault_point("swap")
    locks.bounded_locks(run, run.target, attempt, "the swap of the live tables", outcome,
                        undo=lambda: ensure_kept_fks(run, order))
    journal.step("swap", "done")
    fault_point("swapped")


# --------------------------------------------------------------------------- after the swap

def finish(run, journal, statements_before_close=()):
    """Everything after the swap, each step done once (its done mark in the journal): kept FKs to live
    parents, remapped ids, references set to NULL, merged rows caught up, the backup's FKs into the
    backup, the shadow schema dropped; then the entry closed with the state the next run reads."""
    order = journal.order
    ensure_kept_fks(run, order)
    fault_point("kept_fks_ensured")
    for remap in order["remaps"]:
        apply_remap(run, journal, remap)
    fault_point("remapped")
    for null in order["nulls"]:
        apply_null(run, journal, null)
    for record in order["merged"]:
        catch_up_merged(run, journal, record)
    fault_point("kept_rows_done")
    ensure_side_fks(run, order["outgoing"], order["live"])
    run.sql(run.target, "DROP DATABASE IF EXISTS %s" % quote_ident(order["incoming"]))
    if order.get("donor"):
        state.drop_backup(run, order["donor"])
    fault_point("before_complete")
    statements = list(statements_before_close) or state.table_state_statements(run.db, order["state"])
    if order["swap_out"]:
        statements.append(state.backup_statement(run.db, order["outgoing"], journal.run_id, order["swap_in"],
                                                 order["swap_out"], order["backup_meta"], order.get("promotion_run_id")))
    journal.close("complete", statements, outcome={"swapped": True})


def ensure_kept_fks(run, order):
    """Every FK the work order re-points (kept tables' FKs to swapped parents) exists and references live.

    State-based, so it serves before the swap (putting them back), after it (re-creating those whose
    parent only left) and in recovery alike. Returns what it had to change."""
    live = order["live"]
    if not order["kept_fks"]:
        return []
    done = []
    current = {(fk["table"], fk["name"]): fk for fk in catalog.foreign_keys(run.target, [live])}
    for table_fks in group_fks(order["kept_fks"]):
        wrong = [fk for fk in table_fks if (fk["table"], fk["name"]) in current
                 and current[(fk["table"], fk["name"])]["ref_schema"] != live]
        missing = [fk for fk in table_fks if (fk["table"], fk["name"]) not in current]
        if wrong:
            table = qualified(live, wrong[0]["table"])
            locks.bounded_ddl(run, run.target, "ALTER TABLE %s %s" % (table, ", ".join(
                "DROP FOREIGN KEY %s" % quote_ident(fk["name"]) for fk in wrong)), "the swap is being finished")
        if wrong or missing:
            add_fks(run, wrong + missing, live)
            done.append("foreign key(s) %s of %s point at live %s again" % (
                ", ".join(fk["name"] for fk in wrong + missing), table_fks[0]["table"],
                ", ".join(sorted({fk["ref_table"] for fk in wrong + missing}))))
    return done


def ensure_side_fks(run, side_schema, live):
    """FKs of the tables in a backup (or rolled-back) schema whose parent stayed live point into that schema,
    so that rows kept there never restrict or cascade production's writes. Returns what it changed."""
    if not side_schema or side_schema not in run.schemas():
        return []
    stray = [fk for fk in catalog.foreign_keys(run.target, [side_schema]) if fk["ref_schema"] == live]
    for table_fks in group_fks(stray):
        repoint(run, table_fks, side_schema)
    return ["%d foreign key(s) of %s re-pointed into it" % (len(stray), side_schema)] if stray else []


def _rows_by_key(run, table, column, pk, values, where=""):
    """[(pk, value)] of rows whose ``column`` is one of ``values``, locked for the transaction."""
    out = []
    for i in range(0, len(values), ROW_CHUNK):
        chunk = values[i:i + ROW_CHUNK]
        out += fetch(run.target, "SELECT %s, %s FROM %s WHERE %s IN (%s)%s FOR UPDATE" % (
            quote_ident(pk), quote_ident(column), table, quote_ident(column), ", ".join(["%s"] * len(chunk)), where),
            tuple(chunk))
    return out


def _single_pk(run, live, table):
    pk = catalog.primary_key(run.target, live, table)
    return pk[0] if len(pk) == 1 else None


def apply_remap(run, journal, remap):
    """Kept rows follow the promoted role/policy of the same name: each row's old id recorded in the same
    transaction (what a rollback restores)."""
    step = "remap:%s.%s" % (remap["table"], remap["column"])
    if journal.has(step):
        return
    live = journal.order["live"]
    table, column, mapping = qualified(live, remap["table"]), remap["column"], remap["map"]
    pk = _single_pk(run, live, remap["table"])
    olds = sorted(mapping)
    statements = []
    run.sql(run.target, "START TRANSACTION", record=False)
    try:
        if pk:
            rows = _rows_by_key(run, table, column, pk, olds)
            statements += journal.row_statements(step, [(key, old, mapping[str(old)]) for key, old in rows])
        for i in range(0, len(olds), ROW_CHUNK):
            chunk = olds[i:i + ROW_CHUNK]
            case = " ".join(["WHEN %s THEN %s"] * len(chunk))
            statements.append(("UPDATE %s SET %s = CASE %s %s END WHERE %s IN (%s)" % (
                table, quote_ident(column), quote_ident(column), case, quote_ident(column), ", ".join(["%s"] * len(chunk))),
                tuple(v for old in chunk for v in (old, mapping[old])) + tuple(chunk)))
        commit_with(run, journal, statements, step)
    except BaseException:
        rollback_transaction(run)
        raise


def apply_null(run, journal, null):
    """Kept references to rows the promotion removed set to NULL, each old value recorded alongside."""
    step = "null:%s.%s" % (null["table"], null["column"])
    if journal.has(step):
        return
    live = journal.order["live"]
    table, column, values = qualified(live, null["table"]), null["column"], null["values"]
    pk = _single_pk(run, live, null["table"])
    statements = []
    run.sql(run.target, "START TRANSACTION", record=False)
    try:
        if pk:
            rows = _rows_by_key(run, table, column, pk, values)
            statements += journal.row_statements(step, [(key, old, None) for key, old in rows])
        else:
            run.add("kept_references", "warning", "%s has no single-column primary key: the references set to NULL "
                    "are not recorded and a rollback cannot restore them" % null["table"])
        for i in range(0, len(values), ROW_CHUNK):
            chunk = values[i:i + ROW_CHUNK]
            statements.append(("UPDATE %s SET %s = NULL WHERE %s IN (%s)" % (
                table, quote_ident(column), quote_ident(column), ", ".join(["%s"] * len(chunk))), tuple(chunk)))
        commit_with(run, journal, statements, step)
    except BaseException:
        rollback_transaction(run)
        raise


def commit_with(run, journal, statements, step):
    """Run statements inside the transaction already started, mark the step done, commit."""
    for sql, args in statements:
        run.sql(run.target, sql, args, record=not (isinstance(sql, str) and sql.startswith("INSERT INTO %s" % state.table(
            run.db, "journal_rows"))))
    sql, args = journal.step_statement(step, "done")
    run.sql(run.target, sql, args, record=False)
    fault_point("commit:" + step.split(":")[0])
    run.sql(run.target, "COMMIT", record=False)


def rollback_transaction(run):
    try:
        run.sql(run.target, "ROLLBACK", record=False)
    except Exception:  # noqa: BLE001 - a broken connection: the server rolls back without us
        pass


def catch_up_merged(run, journal, record):
    """Production's per-user rows of a merged table changed between the merge into the shadow copy and the
    swap: the backup holds them as they were at the swap; apply what differs from what was merged."""
    if record["pk"] is None:
        return
    step = "merge_catch_up:%s" % record["table"]
    if journal.has(step):
        return
    order = journal.order
    live, backup = order["live"], order["outgoing"]
    name, split, pk, columns = record["table"], record["split"], record["pk"], record["columns"]
    if backup not in run.schemas() or name not in catalog.base_tables(run.target, backup)[0]:
        return
    raw = run.open("target", raw=True)
    run.sql(raw, "SET SESSION time_zone = '+00:00'", record=False)
    encode = row_encoder(record["kinds"])
    at = columns.index(pk)
    now = fetch_raw(raw, "SELECT %s FROM %s WHERE %s IS NOT NULL" % (
        ", ".join(quote_ident(c) for c in columns), qualified(backup, name), quote_ident(split)))
    snapshot, rekeyed = record["snapshot"], record["rekeyed"]
    changed, current = [], set()
    for row in now:
        key = key_text(row[at])
        current.add(key)
        if snapshot.get(key) != row_digest(encode(row)):
            changed.append(row)
    gone = [k for k in snapshot if k not in current]
    if not changed and not gone:
        journal.step(step, "done")
        return
    table = qualified(live, name)
    promoted = {key_text(r[0]) for r in fetch_raw(raw, "SELECT %s FROM %s WHERE %s IS NULL" % (
        quote_ident(pk), table, quote_ident(split)))}
    statements = []
    for key in gone:
        statements.append(("DELETE FROM %s WHERE %s = %%s AND %s IS NOT NULL" % (table, quote_ident(pk), quote_ident(split)),
                           (rekeyed.get(key, key),)))
    literals, fresh_keys = [], []
    for row in changed:
        key = key_text(row[at])
        row = list(remapped(row, columns, record["remap"]))
        if key in rekeyed:
            row[at] = rekeyed[key].encode("utf-8")
        elif key in promoted and key not in snapshot:
            if not record["auto"]:
                run.add("merge", "warning", "%s: a row production added during the promotion shares its key %s with a "
                        "promoted row and was not kept" % (name, key))
                continue
            fresh_keys.append(row)
            continue
        literals.append(encode(row))
    prefix = ("REPLACE INTO %s (%s) VALUES " % (table, ", ".join(quote_ident(c) for c in columns))).encode("utf-8")
    statements += [(stmt, None) for stmt, _n in insert_batches(literals, prefix, lambda lit: lit, 1024 * 1024)]
    if fresh_keys:
        others = [c for c in columns if c != pk]
        encode_others = row_encoder([k for c, k in zip(columns, record["kinds"]) if c != pk])
        prefix = ("INSERT INTO %s (%s) VALUES " % (table, ", ".join(quote_ident(c) for c in others))).encode("utf-8")
        statements += [(prefix + encode_others([v for i, v in enumerate(row) if i != at]), None) for row in fresh_keys]
    run.sql(run.target, "START TRANSACTION", record=False)
    try:
        commit_with(run, journal, statements, step)
    except BaseException:
        rollback_transaction(run)
        raise
    run.commands.append("%s: caught up %d row(s) production changed and %d it deleted during the promotion" % (
        table, len(changed), len(gone)))
