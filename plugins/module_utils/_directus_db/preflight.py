# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Preflight: read both catalogs into a Plan, then every check that must pass before anything is written."""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, ddl
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.plan import Plan
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure, fetch
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified, quote_ident


def gather(run, src_ident, tgt_ident):
    """Both catalogs (the source's inside its snapshot) and the per-table actions."""
    p, snap, tgt = run.params, run.source, run.target
    src_tables, src_views = catalog.base_tables(snap, run.src_db)
    tgt_tables, _tgt_views = catalog.base_tables(tgt, run.db)
    if src_views:
        run.add("views", "warning", "views are not promoted: %s" % ", ".join(src_views))
    if not src_tables:
        raise Failure("source database '%s' has no tables; refusing to promote an empty database" % run.src_db)
    try:
        merge_spec = rules.parse_merge_spec(p["merge_tables"])
    except rules.PlanError as exc:
        raise Failure(str(exc)) from None
    actions, findings = rules.classify_tables(src_tables, tgt_tables, p["keep_tables"], merge_spec, p["replace_tables"],
                                              p["exclude_tables"])
    run.findings.extend(findings)
    plan = Plan(src_ident=src_ident, tgt_ident=tgt_ident, src_tables=set(src_tables), tgt_tables=set(tgt_tables),
                src_cols=catalog.columns(snap, run.src_db), tgt_cols=catalog.columns(tgt, run.db), src_create={},
                tgt_create={}, actions=actions, merge_spec=merge_spec)
    for name in plan.promoted + [n for n in plan.kept if n in plan.src_tables]:
        plan.src_create[name] = ddl.checked_create(catalog.show_create(snap, run.src_db, name), name, "source")
    for name in plan.promoted:
        if name in plan.tgt_tables:
            plan.tgt_create[name] = catalog.show_create(tgt, run.db, name)
    return plan


def check(run, plan):
    """Every preflight finding; fills the remaps, the kept tables' new columns and the user mapping."""
    check_migrations(run, plan)
    check_storage(run, plan)
    plan_remaps(run, plan)
    check_admins(run, plan)
    plan_kept_columns(run, plan)
    plan_user_refs(run, plan)


def check_migrations(run, plan):
    name = "directus_migrations"
    if name in plan.src_tables and name in plan.tgt_tables:
        src = [r[0] for r in fetch(run.source, "SELECT version FROM %s" % qualified(run.src_db, name))]
        tgt = [r[0] for r in fetch(run.target, "SELECT version FROM %s" % qualified(run.db, name))]
        run.findings.append(rules.compare_migrations(src, tgt, run.params["require_same_migrations"]))
    else:
        run.add("migrations", "warning" if not run.params["require_same_migrations"] else "error",
                "directus_migrations is missing on the %s: not a Directus database?"
                % ("source" if name not in plan.src_tables else "target"))


def check_storage(run, plan):
    """directus_files.storage holds a storage location name; both environments must use the same ones."""
    files = "directus_files"
    if plan.actions.get(files) != "replace" or files not in plan.tgt_tables:
        return
    if "storage" not in [c[0] for c in plan.src_cols.get(files, [])]:
        return
    src = {r[0] for r in fetch(run.source, "SELECT DISTINCT storage FROM %s" % qualified(run.src_db, files))}
    tgt = {r[0] for r in fetch(run.target, "SELECT DISTINCT storage FROM %s" % qualified(run.db, files))}
    if tgt and src - tgt:
        run.add("storage_locations", "warning", "promoted files use storage location(s) %s that the target's files "
                "do not use (%s): check STORAGE_LOCATIONS on the target" % (
                    ", ".join(sorted(str(x) for x in src - tgt)), ", ".join(sorted(str(x) for x in tgt))))


def ref_columns(run, plan, side, parent, tables):
    """(table, column) of ``tables`` referencing ``parent`` on one side: FKs + directus_relations."""
    conn, schema = (run.target, run.db) if side == "target" else (run.source, run.src_db)
    names = plan.tgt_tables if side == "target" else plan.src_tables
    cols = plan.tgt_cols if side == "target" else plan.src_cols
    found = set()
    for fk in catalog.foreign_keys(conn, [schema]):
        if fk["ref_table"] == parent and fk["table"] in tables and len(fk["columns"]) == 1:
            found.add((fk["table"], fk["columns"][0]))
    if "directus_relations" in names:
        for many_collection, many_field in fetch(
                conn, "SELECT many_collection, many_field FROM %s WHERE one_collection = %%s"
                % qualified(schema, "directus_relations"), (parent,)):
            if many_collection in tables:
                found.add((many_collection, many_field))
    return sorted((t, c) for t, c in found if c in [x[0] for x in cols.get(t, [])])


def kept_refs(run, plan, parent):
    """({target id: [(table, column, rows)]}, columns) referenced by kept rows (and kept parts of merged tables)."""
    merged = [n for n in plan.names("merge") if n in plan.tgt_tables]
    refs = {}
    cols = ref_columns(run, plan, "target", parent, set(plan.kept) | set(merged))
    for table, column in cols:
        where = "WHERE %s IS NOT NULL" % quote_ident(column)
        if table in merged:
            where += " AND %s IS NOT NULL" % quote_ident(rules.merge_column(table, plan.merge_spec))
        for value, rows in fetch(run.target, "SELECT %s, COUNT(*) FROM %s %s GROUP BY 1" % (
                quote_ident(column), qualified(run.db, table), where)):
            refs.setdefault(value, []).append((table, column, int(rows)))
    return refs, cols


def plan_remaps(run, plan):
    for parent, kind in ((rules.ROLES_TABLE, "role"), (rules.POLICIES_TABLE, "policy")):
        if plan.actions.get(parent) != "replace" or parent not in plan.tgt_tables:
            continue
        refs, cols = kept_refs(run, plan, parent)
        tgt_names = dict(fetch(run.target, "SELECT id, name FROM %s" % qualified(run.db, parent)))
        src_names = dict(fetch(run.source, "SELECT id, name FROM %s" % qualified(run.src_db, parent)))
        mapping, findings = rules.plan_id_remap(kind, refs, tgt_names, src_names, run.params["role_mapping"])
        run.findings.extend(findings)
        if kind == "role":
            plan.role_map, plan.role_cols = mapping, cols
            plan.stats["remapped_roles"] = mapping
        else:
            plan.policy_map, plan.policy_cols = mapping, cols
            plan.stats["remapped_policies"] = mapping


def check_admins(run, plan):
    """Production admins must keep admin access after the promotion."""
    users, roles, policies, access = rules.USERS_TABLE, rules.ROLES_TABLE, rules.POLICIES_TABLE, rules.ACCESS_TABLE
    if plan.actions.get(users) != "keep" or users not in plan.tgt_tables or plan.actions.get(roles) != "replace":
        return
    db, src_db, tgt, snap = run.db, run.src_db, run.target, run.source
    tcols = {t: [c[0] for c in cs] for t, cs in plan.tgt_cols.items()}
    scols = {t: [c[0] for c in cs] for t, cs in plan.src_cols.items()}
    status_filter = " AND u.status = 'active'" if "status" in tcols.get(users, []) else ""
    admins = []
    if access in plan.tgt_tables and policies in plan.tgt_tables and "admin_access" in tcols.get(policies, []):
        admins = fetch(tgt, (
            "SELECT DISTINCT u.id, u.email, u.role FROM {u} u JOIN {a} a ON (a.user = u.id OR a.role = u.role) "
            "JOIN {p} p ON p.id = a.policy WHERE p.admin_access = 1" + status_filter).format(
            u=qualified(db, users), a=qualified(db, access), p=qualified(db, policies)))
    elif "admin_access" in tcols.get(roles, []):
        admins = fetch(tgt, (
            "SELECT u.id, u.email, u.role FROM {u} u JOIN {r} r ON r.id = u.role WHERE r.admin_access = 1"
            + status_filter).format(u=qualified(db, users), r=qualified(db, roles)))
    if not admins:
        return
    src_role_admin, src_access, src_policy_admin, user_policies = {}, [], {}, {}
    if "admin_access" in scols.get(roles, []):
        src_role_admin = {r: str(v) == "1" for r, v in fetch(snap, "SELECT id, admin_access FROM %s" % qualified(src_db, roles))}
    if access in plan.src_tables and policies in plan.src_tables and "admin_access" in scols.get(policies, []):
        src_access = fetch(snap, "SELECT role, policy FROM %s WHERE role IS NOT NULL AND user IS NULL" % qualified(src_db, access))
        src_policy_admin = {r: str(v) == "1" for r, v in fetch(
            snap, "SELECT id, admin_access FROM %s" % qualified(src_db, policies))}
    if access in plan.tgt_tables and plan.actions.get(access) in ("merge", "keep"):
        for user, pol in fetch(tgt, "SELECT user, policy FROM %s WHERE user IS NOT NULL" % qualified(db, access)):
            user_policies.setdefault(user, []).append(pol)
    losing = rules.admins_losing_access(admins, plan.role_map, src_role_admin, src_access, user_policies,
                                        plan.policy_map, src_policy_admin)
    if losing:
        run.add("admin_access", "error",
                "production admins would lose admin access after the promotion: %s (their role maps to no promoted "
                "role with an admin policy); nothing was changed" % ", ".join(str(x) for x in losing), users=losing)
    else:
        run.add("admin_access", "ok", "%d production admin(s) keep admin access" % len(admins))


def plan_kept_columns(run, plan):
    """Columns the source's directus_fields declares on kept tables that production's table lacks.

    Only real columns of the source table are added, each defined from the source's information_schema
    (ddl.column_definition checks every part), never from the text of its CREATE TABLE."""
    if "directus_fields" not in plan.src_tables:
        return
    fields = fetch(run.source, "SELECT collection, field FROM %s" % qualified(run.src_db, "directus_fields"))
    kept_in_source = [t for t in plan.kept if t in plan.src_tables]
    declared = {}
    for collection, field in fields:
        if collection in kept_in_source:
            declared.setdefault(collection, set()).add(field)
    for table in sorted(declared):
        target_columns = [c[0] for c in plan.tgt_cols.get(table, [])]
        if not declared[table] - set(target_columns):
            continue
        details = catalog.column_details(run.source, run.src_db, table)
        try:
            adds = ddl.missing_columns(table, declared[table], details, target_columns, plan.src_ident.get("version"))
        except ddl.UnsafeText as exc:
            run.add("kept_columns", "error", "source %s: %s; nothing was changed" % (table, exc))
            continue
        for add in adds:
            run.add("kept_columns", "changed", "column %s.%s (declared in the source's directus_fields) is added to the "
                    "kept table with the source definition: %s" % (add.table, add.column, add.definition))
            plan.stats["added_columns"].append("%s.%s" % (add.table, add.column))
            plan.column_adds.append(add)


def plan_user_refs(run, plan):
    users = rules.USERS_TABLE
    if users not in plan.src_tables or users not in plan.tgt_tables:
        return
    src_users = dict(fetch(run.source, "SELECT id, email FROM %s" % qualified(run.src_db, users)))
    tgt_users = dict(fetch(run.target, "SELECT id, email FROM %s" % qualified(run.db, users)))
    mode = run.params["unknown_user_references"]
    plan.user_map = rules.plan_user_map(src_users, tgt_users, mode)
    fk_rows = [(fk["table"], fk["columns"][0], fk["ref_table"], fk["ref_columns"][0])
               for fk in catalog.foreign_keys(run.source, [run.src_db]) if len(fk["columns"]) == 1]
    relations = []
    if "directus_relations" in plan.src_tables:
        relations = fetch(run.source, "SELECT many_collection, many_field, one_collection FROM %s"
                          % qualified(run.src_db, "directus_relations"))
    columns = {t: {c[0] for c in cs} for t, cs in plan.src_cols.items()}
    user_cols = rules.user_ref_columns(fk_rows, relations, set(plan.promoted), columns)
    # The merge split column holds NULL in promoted rows and target ids in kept rows.
    plan.user_cols = [(t, c) for t, c in user_cols
                      if not (plan.actions.get(t) == "merge" and rules.merge_column(t, plan.merge_spec) == c)]
    plan.user_fp = rules.fingerprint(sorted(plan.user_map.items(), key=lambda kv: str(kv[0])), mode)
