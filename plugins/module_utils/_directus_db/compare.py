# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Compare: which tables change (checksums, recorded state), which kept rows follow, and the report."""

from __future__ import annotations

import hashlib
import threading

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import (
    catalog,
    ddl,
    preflight,
    reuse,
    state,
)
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.plan import FILES_TABLE
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure, fetch, reason_of
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified, quote_ident

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None


def decide(run, plan, probes, snap_thread):
    """Per table: unchanged, or swapped in/out; kept tables' changes; the dangling references; the report."""
    plan.state = st = state.read_table_state(run)
    replace = plan.names("replace")
    plan.comparable = plan.src_ident["version"].split("-")[0] == plan.tgt_ident["version"].split("-")[0]
    plan_kept_files(run, plan)
    checksums(run, plan, probes, snap_thread, replace, st)
    tables = []
    raw_tgt = None
    src_est = plan.src_est
    for name in sorted(plan.actions):
        action = plan.actions[name]
        entry = {"name": name, "policy": action, "action": action, "source_rows": None, "target_rows": None}
        if action == "replace":
            fp = plan.transform_fp(name)
            same = plan.comparable and ddl.same_shape(plan.src_create[name], plan.tgt_create.get(name)) and \
                rules.replace_unchanged(plan.src_ck.get(name), plan.tgt_ck.get(name), st.get(name), fp)
            if same:
                # identical checksums: InnoDB's row estimates are enough for the report
                entry["action"] = "unchanged"
                entry["source_rows"], entry["target_rows"] = src_est.get(name), plan.tgt_est.get(name)
                entry["rows_estimated"] = True
            else:
                entry["source_rows"] = catalog.count(run.source, run.src_db, name)
                if name in plan.tgt_tables:
                    entry["target_rows"] = catalog.count(run.target, run.db, name)
                plan.swap_in.append(name)
                if name in plan.tgt_tables:
                    plan.swap_out.append(name)
        elif action == "merge":
            split = rules.merge_column(name, plan.merge_spec)
            src_cols = [c[0] for c in plan.src_cols[name] if not c[2]]
            if split not in src_cols:
                raise Failure("merge table %s has no column '%s' in the source" % (name, split))
            s_hash, s_rows = merge_part_hash(run.source, run.src_db, name, src_cols, split)
            entry["source_rows"] = s_rows
            same = False
            if name in plan.tgt_tables:
                entry["target_rows"] = catalog.count(run.target, run.db, name)
                tgt_cols = [c[0] for c in plan.tgt_cols[name] if not c[2]]
                if raw_tgt is None:
                    raw_tgt = run.open("target", raw=True)
                if tgt_cols == src_cols and ddl.same_shape(plan.src_create[name], plan.tgt_create[name]):
                    t_hash, _n = merge_part_hash(raw_tgt, run.db, name, src_cols, split)
                    remap_here = any(t == name for t, _c in plan.role_cols + plan.policy_cols) and (
                        plan.role_map or plan.policy_map)
                    same = t_hash == s_hash and not remap_here
            if same:
                entry["action"] = "unchanged"
            else:
                plan.swap_in.append(name)
                if name in plan.tgt_tables:
                    plan.swap_out.append(name)
        elif action == "drop":
            entry["target_rows"] = catalog.count(run.target, run.db, name)
            plan.swap_out.append(name)
        elif action == "keep" and name in plan.tgt_tables:
            changes = ["add column %s" % a.column for a in plan.column_adds if a.table == name]
            if plan.role_map and any(t == name for t, _c in plan.role_cols):
                changes.append("remap roles")
            if plan.policy_map and any(t == name for t, _c in plan.policy_cols):
                changes.append("remap policies")
            if changes:
                plan.kept_changes[name] = changes
                entry["changes"] = changes
        tables.append(entry)
    plan.tables = tables
    plan_dangling(run, plan)
    plan.changed_tables = sorted(set(plan.swap_in) | set(plan.swap_out) | set(plan.kept_changes))
    count_user_refs(run, plan)


def checksums(run, plan, probes, snap_thread, replace, st):
    """Both sides' checksums of the replaced tables, at the same time (the source inside its snapshot);
    recorded ones stand in for CHECKSUM TABLE only where MariaDB proves the table unchanged."""
    reuse_on = bool(run.params["reuse_checksums"]) and plan.comparable and any(n in st for n in replace)
    reasons, tgt_reasons, tgt_ck, side = {}, {}, {}, {}
    # one CHECKSUM TABLE for many tables: no count to show, but what runs and for how long
    run.progress.start("computing the checksums of %d table(s) on both sides" % len(replace), unit=None)

    def target_side():
        try:
            conn = run.open("target")
            todo = [n for n in replace if n in plan.tgt_tables]
            if reuse_on and reuse.recording(run, plan.tgt_ident):
                run.sql(conn, "SET SESSION time_zone = '+00:00'", record=False)
                try:
                    stats = catalog.table_stats(conn, run.db)
                except pymysql.err.MySQLError as exc:
                    plan.reuse_notes.append("target: cannot read table statistics (%s); it needs the PROCESS "
                                            "privilege" % reason_of(exc))
                else:
                    plan.tgt_reused = reuse.reusable(st, todo, "target", plan.tgt_ident, stats, tgt_reasons)
                    tgt_ck.update(plan.tgt_reused)
                    todo = [n for n in todo if n not in plan.tgt_reused]
            tgt_ck.update(catalog.checksums(conn, run.db, todo))
            side["estimates"] = {n: rows for n, (rows, _bytes) in catalog.table_sizes(conn, run.db).items()}
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            side["error"] = exc

    thread = threading.Thread(target=target_side, daemon=True)
    thread.start()
    src_ck = {}
    if reuse.recording(run, plan.src_ident) and (reuse_on or (not run.check and plan.src_mark is not None)):
        conn = run.utc("source")
        guard = probes.source_guard(conn, snap_thread) if reuse_on else "not needed"
        try:
            # read after the guard: every commit the snapshot sees has stamped its UPDATE_TIME by now
            plan.src_stats = catalog.table_stats(conn, run.src_db)
        except pymysql.err.MySQLError as exc:
            guard = "cannot read table statistics (%s); it needs the PROCESS privilege" % reason_of(exc)
            plan.src_stats = {}
        if not run.check:
            # CREATE_TIME has whole seconds: an ALTER TABLE later in the second of a recorded
            # CREATE_TIME would leave it equal, so let that second pass before going on
            reuse.wait_for_next_second(conn, reuse.newest_create_time(plan.src_stats.values()))
        if reuse_on and guard is None:
            plan.src_reused = reuse.reusable(st, replace, "source", plan.src_ident, plan.src_stats, reasons)
            src_ck.update(plan.src_reused)
        elif reuse_on:
            plan.reuse_notes.append("source: %s; source checksums computed" % guard)
    src_ck.update(catalog.checksums(run.source, run.src_db, [n for n in replace if n not in plan.src_reused]))
    sizes = catalog.table_sizes(run.source, run.src_db)
    plan.src_est = {n: rows for n, (rows, _b) in sizes.items()}
    plan.src_bytes = {n: size for n, (_r, size) in sizes.items()}
    thread.join()
    run.progress.finish()
    if "error" in side:
        raise side["error"]
    plan.tgt_est = side.get("estimates", {})
    plan.src_ck, plan.tgt_ck = src_ck, tgt_ck
    for name, why in tgt_reasons.items():
        reasons.setdefault(name, []).extend(w for w in why if w not in reasons[name])
    report_checksums(run, plan, replace, reasons)
    if not plan.comparable:
        run.add("checksums", "warning", "source (%s) and target (%s) run different server versions: CHECKSUM TABLE "
                "values are not comparable, every table is copied and verified by row counts"
                % (plan.src_ident["version"], plan.tgt_ident["version"]))


def report_checksums(run, plan, replace, reasons):
    in_target = [n for n in replace if n in plan.tgt_tables]
    src_computed = sorted(n for n in replace if n not in plan.src_reused)
    tgt_computed = sorted(n for n in in_target if n not in plan.tgt_reused)
    computed = sorted(set(src_computed) | set(tgt_computed))
    run.result["checksums"] = {
        "reused": sorted(n for n in replace if n not in computed),
        "computed": computed,
        "source": {"reused": sorted(plan.src_reused), "computed": src_computed},
        "target": {"reused": sorted(plan.tgt_reused), "computed": tgt_computed},
        "computed_because": {n: "; ".join(reasons[n]) for n in computed if reasons.get(n)},
        "notes": [],
    }


def merge_part_hash(conn, schema, table, columns, split):
    """sha256 and count of a merged table's shared rows (split column NULL), in a stable order."""
    cols = ", ".join(quote_ident(c) for c in columns)
    h = hashlib.sha256()
    rows = fetch(conn, "SELECT %s FROM %s WHERE %s IS NULL ORDER BY %s" % (cols, qualified(schema, table), quote_ident(split), cols))
    for row in rows:
        h.update(repr(row).encode("utf-8", "surrogateescape"))
    return h.hexdigest(), len(rows)


def missing_in_source(run, table, column, values):
    """The ``values`` the source's ``table.column`` does not hold."""
    present = set()
    for i in range(0, len(values), 1000):
        chunk = values[i:i + 1000]
        present.update(str(r[0]) for r in fetch(run.source, "SELECT %s FROM %s WHERE %s IN (%s)" % (
            quote_ident(column), qualified(run.src_db, table), quote_ident(column), ", ".join(["%s"] * len(chunk))),
            tuple(chunk)))
    return [v for v in values if str(v) not in present]


def plan_kept_files(run, plan):
    """Production's directus_files rows that kept rows reference (a user's avatar, a setting's logo, a custom
    file field of a kept table) and that the source lacks: they stay, with their objects (keep_referenced_files)."""
    files = FILES_TABLE
    if not run.params["keep_referenced_files"] or plan.actions.get(files) != "replace" or files not in plan.tgt_tables \
            or files not in plan.src_tables:
        return
    columns = preflight.ref_columns(run, plan, "target", files, set(plan.kept))
    columns = sorted(set(columns) | {(t, c) for t, c, parent in rules.SYSTEM_REFERENCES if parent == files
                                     and t in plan.kept and c in [x[0] for x in plan.tgt_cols.get(t, [])]})
    values = set()
    for table, column in columns:
        values.update(r[0] for r in fetch(run.target, "SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL" % (
            quote_ident(column), qualified(run.db, table), quote_ident(column))))
    values = sorted(values, key=str)
    existing = {str(r[0]) for i in range(0, len(values), 1000) for r in fetch(
        run.target, "SELECT id FROM %s WHERE id IN (%s)" % (qualified(run.db, files), ", ".join(
            ["%s"] * len(values[i:i + 1000]))), tuple(values[i:i + 1000]))}
    plan.kept_files = [v for v in missing_in_source(run, files, "id", values) if str(v) in existing]
    names = {c[0] for c in plan.tgt_cols.get(files, [])}
    if plan.kept_files and {"filename_disk", "storage"} <= names:
        ids = plan.kept_files
        run.result["kept_files"] = [{"id": i, "filename_disk": f, "storage": st} for i, f, st in fetch(
            run.target, "SELECT id, filename_disk, storage FROM %s WHERE id IN (%s) ORDER BY id" % (
                qualified(run.db, files), ", ".join(["%s"] * len(ids))), tuple(ids))]
    if plan.kept_files:
        run.add("kept_files", "changed", "%d production file(s) that kept rows reference (%s) and the source lacks are "
                "kept, with their objects" % (len(plan.kept_files), ", ".join("%s.%s" % tc for tc in columns)),
                files=[str(v) for v in plan.kept_files])


def plan_dangling(run, plan):
    """Kept rows whose foreign key (or a reference Directus keeps in code) points at a promoted row that will not
    exist any more.

    A nullable column is set to NULL right after the swap (what ON DELETE SET NULL would do and
    what keeps the database consistent for later migrations); otherwise it is reported.
    """
    remapped = set(plan.role_cols if plan.role_map else []) | set(plan.policy_cols if plan.policy_map else [])
    swapping = set(plan.swap_in)
    nullable = catalog.nullable_columns(run.target, run.db)
    references = {(fk["table"], fk["columns"][0]): (fk["ref_table"], fk["ref_columns"][0])
                  for fk in catalog.foreign_keys(run.target, [run.db])
                  if len(fk["columns"]) == 1 and fk["ref_schema"] == run.db}
    for table, column, parent in rules.SYSTEM_REFERENCES:
        if column in [c[0] for c in plan.tgt_cols.get(table, [])]:
            references.setdefault((table, column), (parent, "id"))
    for (table, col), (ref_table, ref_col) in sorted(references.items()):
        if plan.actions.get(table) != "keep" or ref_table not in swapping or (table, col) in remapped:
            continue
        values = [r[0] for r in fetch(run.target, "SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL" % (
            quote_ident(col), qualified(run.db, table), quote_ident(col)))]
        kept = {str(v) for v in plan.kept_files} if ref_table == FILES_TABLE else set()
        missing = [v for v in missing_in_source(run, ref_table, ref_col, values) if str(v) not in kept]
        if not missing:
            continue
        rows = 0
        for i in range(0, len(missing), 1000):
            chunk = missing[i:i + 1000]
            rows += catalog.count(run.target, run.db, table, "WHERE %s IN (%s)" % (
                quote_ident(col), ", ".join(["%s"] * len(chunk))), tuple(chunk))
        where = "%s.%s -> %s.%s" % (table, col, ref_table, ref_col)
        if nullable.get((table, col)):
            plan.dangling.append((table, col, missing))
            plan.kept_changes.setdefault(table, []).append("set %s to NULL in %d row(s)" % (col, rows))
            run.add("kept_references", "changed", "%s: %d kept row(s) reference %d promoted-away row(s); set to NULL"
                    % (where, rows, len(missing)))
        else:
            run.add("kept_references", "warning", "%s: %d kept row(s) reference %d row(s) absent from the promoted "
                    "table and the column is NOT NULL; left as they are" % (where, rows, len(missing)))
    for entry in plan.tables:
        if entry["name"] in plan.kept_changes:
            entry["changes"] = plan.kept_changes[entry["name"]]


def count_user_refs(run, plan):
    """Counts of promoted references to source users absent on the target (changed tables only)."""
    if not plan.user_map:
        run.findings.append(rules.finding("user_references", "ok", "every source user exists on the target"))
        return
    counts = {}
    changed = set(plan.swap_in)
    for table, column in plan.user_cols:
        if table not in changed:
            continue
        where = ""
        if plan.actions.get(table) == "merge":
            where = "WHERE %s IS NULL" % quote_ident(rules.merge_column(table, plan.merge_spec))
        per = {}
        for value, rows in fetch(run.source, "SELECT %s, COUNT(*) FROM %s %s GROUP BY 1" % (
                quote_ident(column), qualified(run.src_db, table), where)):
            if value in plan.user_map:
                per[value] = int(rows)
        if per:
            counts[(table, column)] = per
    mapped, nulled, findings = rules.user_ref_summary(counts, plan.user_map, run.params["unknown_user_references"])
    run.findings.extend(findings)
    plan.stats["user_refs_mapped"], plan.stats["user_refs_nulled"] = mapped, nulled
    plan.user_counts = counts


def diff(run, plan):
    """Table-level before/after text for --diff."""
    before, after = {}, {}
    for e in plan.tables:
        n = e["name"]
        if n not in plan.changed_tables:
            continue
        before[n] = "absent" if n not in plan.tgt_tables else "%s rows" % (
            e["target_rows"] if e["target_rows"] is not None else "kept")
        if e["action"] == "drop":
            after[n] = "removed from live (moved to the backup schema)"
        elif e["action"] in ("replace", "merge"):
            after[n] = "%s from source (%s source rows)" % (e["action"], e["source_rows"])
        else:
            after[n] = "kept: " + ", ".join(plan.kept_changes.get(n, []))
    b, a = rules.table_diff(before, after)
    return {"before": b, "after": a, "before_header": "%s (target)" % run.db, "after_header": "%s (after promotion)" % run.db}
