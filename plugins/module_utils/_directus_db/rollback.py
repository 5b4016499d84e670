# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rollback: the newest backup of a completed promotion swapped back in (one RENAME TABLE), the kept rows
that promotion changed (remapped ids, references set to NULL) restored from its journal."""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, cutover, state
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.journal import Journal
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import fault_point
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified, quote_ident


def choose_backup(run):
    """(backup schema, its record): the newest backup whose promotion completed and that holds every table
    that promotion swapped out. Failure when there is none."""
    backups = rules.schemas_with_mark(run.schemas(), run.db, rules.BACKUP_MARK)
    if not backups:
        raise Failure("nothing to roll back: no backup schema %s<timestamp> on the target" % (run.db + rules.BACKUP_MARK))
    skipped = []
    for backup in reversed(backups):
        record = state.backup_record(run, backup)
        if record is None or record["status"] != "complete":
            skipped.append("%s (%s)" % (backup, "no record of the promotion that made it" if record is None
                                        else "its promotion did not complete"))
            continue
        held = set(catalog.base_tables(run.target, backup)[0])
        missing = sorted(set(record["swapped_out"]) - held)
        if missing:
            raise Failure("refusing to roll back to %s: it lacks %s, which its promotion swapped out; nothing was "
                          "changed" % (backup, ", ".join(missing)))
        if skipped:
            run.add("rollback", "warning", "not used: %s" % "; ".join(skipped))
        return backup, record
    raise Failure("nothing to roll back: no backup of a completed promotion (%s); nothing was changed" % "; ".join(skipped))


def plan_rollback(run):
    """The rollback's work order and the report, read-only."""
    backup, record = choose_backup(run)
    run.result["rollback_of"] = {"backup_schema": backup, "journal_entry": record["run_id"],
                                 "promotion_run_id": record.get("promotion_id")}
    in_tables = catalog.base_tables(run.target, backup)[0]
    live_tables = set(catalog.base_tables(run.target, run.db)[0])
    out_tables = sorted(t for t in record["swapped_in"] if t in live_tables)
    promotion = Journal.by_id(run, run.target, record["run_id"]) if record["run_id"] else None
    restores = promotion.row_steps() if promotion else []
    legacy = record["kept_remaps"] if not record["run_id"] else None
    if legacy and (legacy.get("roles") or legacy.get("policies") or legacy.get("nulled")):
        restores.append("legacy kept_remaps")
    run.result["tables"] = (
        [{"name": t, "action": "restore", "policy": "rollback", "source_rows": None, "target_rows": None} for t in in_tables]
        + [{"name": t, "action": "remove", "policy": "rollback", "source_rows": None, "target_rows": None}
           for t in out_tables if t not in in_tables])
    kept_restored = sorted({s.split(":", 1)[1].split(".")[0] for s in restores if ":" in s})
    run.result["changed_tables"] = sorted(set(in_tables) | set(out_tables) | set(kept_restored))
    run.result["changed"] = bool(run.result["changed_tables"] or restores)
    run.add("rollback", "changed", "restore %d table(s) from %s%s" % (
        len(in_tables), backup, "; restore kept rows: %s" % ", ".join(restores) if restores else ""))
    if run.diff:
        changed = sorted(run.result["changed_tables"])
        run.result["diff"] = {"before": "".join("%s: current\n" % t for t in changed),
                              "after": "".join("%s: %s\n" % (t, "from %s" % backup if t in in_tables else
                                                             "kept rows restored" if t in kept_restored else "removed")
                                               for t in changed)}
    rolled = rules.side_schema_name(run.db, rules.ROLLEDBACK_MARK, run.new_stamp(rules.ROLLEDBACK_MARK))
    order = {"kind": "rollback", "live": run.db, "incoming": backup, "outgoing": rolled, "swap_in": in_tables,
             "swap_out": out_tables, "kept_fks": [], "restore_run": record["run_id"], "legacy_remaps": legacy,
             "restores": restores}
    return order


def execute(run, order):
    """Journal, swap, finish (recovery finishes it the same way when this run is killed)."""
    journal = run.journal = Journal.begin(run, "rollback", order)
    fault_point("journal_begun")
    live, backup, rolled = order["live"], order["incoming"], order["outgoing"]
    if order["swap_out"]:
        journal.step("rolledback_schema", "intent")
        run.create_schema_like_live(rolled)
    fixes = rules.plan_fk_fixups(catalog.foreign_keys(run.target, [live, backup]), live, rolled, order["swap_out"], backup,
                                 order["swap_in"])
    order["kept_fks"] = [fk for fk, _ref in fixes["pre_drop"]]
    journal.save_order()
    # FKs of incoming tables whose parent stays behind in the backup: to the live parent before the swap
    for table_fks in cutover.group_fks([fk for fk, _ref in fixes["pre_repoint"]]):
        cutover.repoint(run, table_fks, live)
    fault_point("prepared")
    cutover.swap(run, journal, "nothing was rolled back")
    finish(run, journal)
    return journal


def finish(run, journal):
    """After the rollback's swap: kept FKs, kept rows restored, the rolled-back tables' FKs into their
    schema, the emptied backup and the state dropped; the promotion's entry marked rolled back."""
    order = journal.order
    cutover.ensure_kept_fks(run, order)
    if order.get("restore_run"):
        promotion = Journal.by_id(run, run.target, order["restore_run"])
        for step in (promotion.row_steps() if promotion else []):
            restore_rows(run, journal, promotion, step)
    elif order.get("legacy_remaps"):
        restore_legacy(run, journal, order["legacy_remaps"])
    fault_point("kept_rows_done")
    cutover.ensure_side_fks(run, order["outgoing"], order["live"])
    fault_point("before_complete")
    statements = [("DELETE FROM %s" % state.table(run.db, "table_state"), None),
                  ("DELETE FROM %s WHERE backup_schema = %%s" % state.table(run.db, "backups"), (order["incoming"],))]
    if order.get("restore_run"):
        statements.append(("UPDATE %s SET status = 'rolled_back' WHERE run_id = %%s" % state.table(run.db, "journal"),
                           (order["restore_run"],)))
    # the backup's tables are all live again: what is left of it is an empty schema
    leftover = catalog.base_tables(run.target, order["incoming"])[0] if order["incoming"] in run.schemas() else []
    if not leftover:
        run.sql(run.target, "DROP DATABASE IF EXISTS %s" % quote_ident(order["incoming"]))
    journal.close("complete", statements, outcome={"swapped": True})


def restore_rows(run, journal, promotion, step):
    """Put back the values ``step`` of the promotion changed, in rows that still hold what it wrote."""
    mine = "restore:" + step
    if journal.has(mine):
        return
    kind, _sep, where = step.partition(":")
    table_name, _dot, column = where.partition(".")
    live = journal.order["live"]
    if kind not in ("remap", "null") or table_name not in catalog.base_tables(run.target, live)[0]:
        return
    pk = catalog.primary_key(run.target, live, table_name)
    if len(pk) != 1:
        return
    table = qualified(live, table_name)
    by_new = {}
    for key, old, new in promotion.rows(step):
        by_new.setdefault(new, []).append((key, old))
    statements = []
    for new, rows in sorted(by_new.items(), key=lambda kv: str(kv[0])):
        for i in range(0, len(rows), cutover.ROW_CHUNK):
            chunk = rows[i:i + cutover.ROW_CHUNK]
            case = " ".join(["WHEN %s THEN %s"] * len(chunk))
            statements.append(("UPDATE %s SET %s = CASE %s %s END WHERE %s IN (%s) AND %s <=> %%s" % (
                table, quote_ident(column), quote_ident(pk[0]), case, quote_ident(pk[0]), ", ".join(["%s"] * len(chunk)),
                quote_ident(column)), tuple(v for kv in chunk for v in kv) + tuple(k for k, _o in chunk) + (new,)))
    run.sql(run.target, "START TRANSACTION", record=False)
    try:
        cutover.commit_with(run, journal, statements, mine)
    except BaseException:
        cutover.rollback_transaction(run)
        raise
    run.commands.append("restored %s.%s in %d row(s)" % (table_name, column, sum(len(r) for r in by_new.values())))


def restore_legacy(run, journal, remaps):
    """A backup recorded by a release before the journal: its kept_remaps, inverted."""
    step = "restore:legacy"
    if journal.has(step):
        return
    live = journal.order["live"]
    statements = []
    for key, cols_key in (("roles", "role_columns"), ("policies", "policy_columns")):
        inverse = {v: k for k, v in (remaps.get(key) or {}).items()}
        for table, column in (remaps.get(cols_key) or []) if inverse else []:
            items = sorted(inverse.items())
            case = " ".join(["WHEN %s THEN %s"] * len(items))
            statements.append(("UPDATE %s SET %s = CASE %s %s END WHERE %s IN (%s)" % (
                qualified(live, table), quote_ident(column), quote_ident(column), case, quote_ident(column),
                ", ".join(["%s"] * len(items))), tuple(v for kv in items for v in kv) + tuple(k for k, _v in items)))
    for table, column, pk, rows in remaps.get("nulled") or []:
        for key, value in rows:
            statements.append(("UPDATE %s SET %s = %%s WHERE %s = %%s AND %s IS NULL" % (
                qualified(live, table), quote_ident(column), quote_ident(pk), quote_ident(column)), (value, key)))
    run.sql(run.target, "START TRANSACTION", record=False)
    try:
        cutover.commit_with(run, journal, statements, step)
    except BaseException:
        cutover.rollback_transaction(run)
        raise
