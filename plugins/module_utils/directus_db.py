# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure planning functions for promoting a Directus database (no I/O here).

Everything a promotion decides — which table is replaced, merged, kept or
dropped, whether the preflight passes, how kept rows are remapped, which
foreign keys must be re-pointed around the cut-over, the one RENAME TABLE
statement — is computed here from plain data so it can be unit-tested
without a server. ``directus_db_replicate`` gathers the data and executes.
"""

from __future__ import annotations

import decimal
import fnmatch
import hashlib
import json
import re

DEFAULT_KEEP_TABLES = [
    "directus_users", "directus_sessions", "directus_notifications", "directus_shares", "directus_comments",
    "directus_settings", "directus_extensions", "directus_webhooks", "directus_migrations", "directus_activity",
    "directus_revisions", "directus_oauth_*", "directus_deployment*",
]
DEFAULT_MERGE_TABLES = ["directus_access", "directus_presets"]
DEFAULT_MERGE_COLUMN = "user"

USERS_TABLE = "directus_users"
ROLES_TABLE = "directus_roles"
POLICIES_TABLE = "directus_policies"
ACCESS_TABLE = "directus_access"

ACTIONS = ("replace", "merge", "keep", "drop", "exclude")

# References Directus keeps in its code only (no FK, no directus_relations row in 11.x): (table, column, parent)
SYSTEM_REFERENCES = [("directus_users", "avatar", "directus_files")]

BACKUP_MARK = "__backup_"
SHADOW_MARK = "__shadow_"
ROLLEDBACK_MARK = "__rolledback_"
STATE_MARK = "__promote_state"
TIMESTAMP_RE = re.compile(r"^\d{8}T\d{6}(_\d+)?$")


class PlanError(Exception):
    """Invalid input to a planning function (reported as one clear error)."""


# --------------------------------------------------------------------------- table policy

def matches(name, patterns):
    """True when ``name`` matches one of the glob patterns (exact names are globs too)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns or ())


def parse_merge_spec(entries):
    """``['directus_access', 'my_table:owner']`` -> {pattern: split column} (default column ``user``)."""
    spec = {}
    for entry in entries or ():
        pattern, _sep, column = str(entry).partition(":")
        pattern = pattern.strip()
        if not pattern:
            raise PlanError("merge_tables: empty table name in %r" % (entry,))
        spec[pattern] = column.strip() or DEFAULT_MERGE_COLUMN
    return spec


def merge_column(name, merge_spec):
    for pattern, column in merge_spec.items():
        if fnmatch.fnmatchcase(name, pattern):
            return column
    return None


def classify_tables(source_tables, target_tables, keep, merge_spec, replace, exclude):
    """Decide the action for every table of either side.

    Precedence: exclude > keep > merge > replace. With ``replace=None`` every other
    source table is replaced and every other target-only table is dropped from live
    (moved into the backup). With an explicit ``replace`` list, unlisted tables are
    left alone (kept).

    Returns (actions {table: action}, findings [dict]).
    """
    source_tables = set(source_tables)
    target_tables = set(target_tables)
    actions = {}
    findings = []
    for name in sorted(source_tables | target_tables):
        in_source = name in source_tables
        in_target = name in target_tables
        if matches(name, exclude):
            action = "exclude"
        elif matches(name, keep):
            action = "keep"
            if in_source and not in_target:
                findings.append(finding(
                    "kept_table_missing", "warning",
                    "kept table %s exists only in the source; it is not created on the target" % name))
        elif merge_column(name, merge_spec) is not None:
            action = "merge" if in_source else "keep"
        elif replace is None or matches(name, replace):
            action = "replace" if in_source else "drop"
        else:
            action = "keep"
        actions[name] = action
    return actions, findings


def finding(check, status, message, **extra):
    """One preflight finding. status: ok | warning | changed | error."""
    item = {"check": check, "status": status, "message": message}
    item.update(extra)
    return item


# --------------------------------------------------------------------------- preflight

def same_database(source_ident, target_ident):
    """True when both connections reach the same schema on the same server.

    ident: {server_uuid, hostname, port, datadir, database}. MySQL has
    @@server_uuid; MariaDB has not, so hostname + port + datadir identify it.
    """
    if source_ident.get("database") != target_ident.get("database"):
        return False
    su, tu = source_ident.get("server_uuid"), target_ident.get("server_uuid")
    if su and tu:
        return su == tu
    keys = ("hostname", "port", "datadir")
    return all(source_ident.get(k) == target_ident.get(k) for k in keys)


def same_server(source_ident, target_ident):
    su, tu = source_ident.get("server_uuid"), target_ident.get("server_uuid")
    if su and tu:
        return su == tu
    return all(source_ident.get(k) == target_ident.get(k) for k in ("hostname", "port", "datadir"))


def compare_migrations(source_versions, target_versions, required=True):
    """Finding about the directus_migrations sets (the Directus version)."""
    src, tgt = set(source_versions), set(target_versions)
    if src == tgt:
        return finding("migrations", "ok", "directus_migrations identical (%d migrations)" % len(src))
    only_src = sorted(src - tgt)
    only_tgt = sorted(tgt - src)
    msg = "directus_migrations differ (different Directus versions): only in source: %s; only in target: %s" % (
        _short_list(only_src), _short_list(only_tgt))
    return finding("migrations", "error" if required else "warning", msg,
                   only_source=only_src, only_target=only_tgt)


def _short_list(items, limit=5):
    items = list(items)
    if not items:
        return "none"
    text = ", ".join(str(i) for i in items[:limit])
    if len(items) > limit:
        text += " (+%d more)" % (len(items) - limit)
    return text


def plan_id_remap(kind, references, target_names, source_names, mode):
    """Remap ids that kept rows reference (roles or policies) onto the promoted ones.

    references: {target_id: [(table, column, row_count), ...]}
    target_names / source_names: {id: name} of the target's current and the promoted table.
    mode: 'name' (rewrite to the promoted item of the same name) or 'id' (ids must exist).
    Returns (mapping {target_id: source_id}, findings).
    """
    mapping = {}
    findings = []
    missing = []
    by_name = {}
    for sid, name in source_names.items():
        by_name.setdefault(name, []).append(sid)
    for tid in sorted(references, key=str):
        if tid in source_names:
            continue
        where = ", ".join("%d %s.%s" % (count, table, column) for table, column, count in references[tid])
        name = target_names.get(tid)
        if mode == "name" and name is not None and len(by_name.get(name, ())) == 1:
            mapping[tid] = by_name[name][0]
            continue
        if mode == "name" and name is not None and len(by_name.get(name, ())) > 1:
            reason = "several promoted %ss are named '%s'" % (kind, name)
        elif mode == "name":
            reason = "no promoted %s is named %s" % (kind, "'%s'" % name if name is not None else "(unknown name)")
        else:
            reason = "role_mapping=id and the promoted %ss have no id %s" % (kind, tid)
        missing.append("%s '%s' (id %s, referenced by %s): %s" % (kind, name, tid, where, reason))
    if missing:
        findings.append(finding(
            "%s_mapping" % kind, "error",
            "kept rows reference %ss that the promotion would remove: %s. Create them in the source "
            "(same name) or map them explicitly; nothing was changed." % (kind, "; ".join(missing)),
            unmatched=missing))
    elif mapping:
        findings.append(finding(
            "%s_mapping" % kind, "changed",
            "%d kept %s reference(s) rewritten to the promoted %s of the same name" % (len(mapping), kind, kind),
            mapping=dict(mapping)))
    else:
        findings.append(finding("%s_mapping" % kind, "ok", "every %s referenced by kept rows is promoted" % kind))
    return mapping, findings


def admins_losing_access(target_admins, role_map, source_role_admin, source_access, user_policies, policy_map,
                         source_policy_admin):
    """Production admins who would lose admin access after the promotion.

    target_admins: [(user_id, email, role_id)] users with admin access today.
    role_map / policy_map: remaps planned for kept references.
    source_role_admin: {role_id: bool} admin flag of promoted roles (Directus 10 column), may be empty.
    source_access: [(role_id, policy_id)] promoted role-level access rows (Directus 11+).
    user_policies: {user_id: [policy_id]} kept user-level access rows (target ids).
    source_policy_admin: {policy_id: bool}.
    Returns [email or id].
    """
    role_policies = {}
    for role_id, policy_id in source_access:
        role_policies.setdefault(role_id, set()).add(policy_id)
    losing = []
    for user_id, email, role_id in target_admins:
        new_role = role_map.get(role_id, role_id)
        admin = bool(source_role_admin.get(new_role))
        for pol in role_policies.get(new_role, ()):
            admin = admin or bool(source_policy_admin.get(pol))
        for pol in user_policies.get(user_id, ()):
            admin = admin or bool(source_policy_admin.get(policy_map.get(pol, pol)))
        if not admin:
            losing.append(email or user_id)
    return sorted(losing, key=str)


def plan_user_map(source_users, target_users, mode):
    """Where promoted references to source users point on the target.

    source_users / target_users: {id: email}. Only ids absent on the target are
    mapped: to the target user with the same e-mail (case-insensitive) when
    ``mode == 'map_email'``, else to None (NULL). ``mode == 'fail'`` maps to None
    as well; the caller refuses when such a reference exists.
    Returns {source_id: target_id_or_None}.
    """
    by_email = {}
    for tid, email in target_users.items():
        if email:
            by_email.setdefault(email.strip().lower(), []).append(tid)
    mapping = {}
    for sid, email in source_users.items():
        if sid in target_users:
            continue
        target = None
        if mode == "map_email" and email:
            found = by_email.get(email.strip().lower(), [])
            if len(found) == 1:
                target = found[0]
        mapping[sid] = target
    return mapping


def user_ref_columns(fk_rows, relation_rows, tables, columns):
    """Columns of promoted tables that reference directus_users.id.

    fk_rows: [(table, column, referenced_table, referenced_column)] from KEY_COLUMN_USAGE.
    relation_rows: [(many_collection, many_field, one_collection)] from directus_relations.
    tables: promoted table names; columns: {table: set(columns)} (alias fields are skipped).
    Returns sorted [(table, column)].
    """
    found = set()
    for table, column, ref_table, ref_column in fk_rows:
        if ref_table == USERS_TABLE and (ref_column in (None, "id")) and table in tables:
            found.add((table, column))
    for many_collection, many_field, one_collection in relation_rows:
        if one_collection == USERS_TABLE and many_collection in tables and many_field in columns.get(many_collection, ()):
            found.add((many_collection, many_field))
    return sorted(found)


def user_ref_summary(counts, mapping, mode):
    """Findings for promoted references to source users absent on the target.

    counts: {(table, column): {source_user_id: rows}} for ids in ``mapping``.
    Returns (mapped_rows, nulled_rows, findings).
    """
    mapped = nulled = 0
    details = []
    for (table, column), per_id in sorted(counts.items()):
        for uid, rows in sorted(per_id.items(), key=lambda kv: str(kv[0])):
            if not rows:
                continue
            if mapping.get(uid) is None:
                nulled += rows
                details.append("%s.%s: %d row(s) -> user %s absent on target" % (table, column, rows, uid))
            else:
                mapped += rows
    if mode == "fail" and nulled:
        return mapped, nulled, [finding(
            "user_references", "error",
            "promoted rows reference %d source user id(s) that do not exist on the target "
            "(unknown_user_references=fail): %s" % (nulled, _short_list(details)), details=details)]
    if mapped or nulled:
        return mapped, nulled, [finding(
            "user_references", "changed",
            "references to source users: %d mapped by e-mail, %d set to NULL" % (mapped, nulled),
            details=details)]
    return 0, 0, [finding("user_references", "ok", "every promoted user reference exists on the target")]


# --------------------------------------------------------------------------- idempotence

def fingerprint(*parts):
    """Stable sha256 of JSON-able parts (mapping decisions that transform promoted rows)."""
    data = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def replace_unchanged(source_checksum, target_checksum, state, transform_fp):
    """Whether a replaced table (of the same definition on both sides) already holds what a promotion would write.

    Untransformed data: equal checksums. Transformed data (user ids mapped): the
    state recorded by the last promotion must match both sides' checksums and
    the same mapping fingerprint.
    """
    if source_checksum is None or target_checksum is None:
        return False
    if source_checksum == target_checksum:
        return True
    if state and transform_fp is not None:
        return (str(state.get("source_checksum")) == str(source_checksum)
                and str(state.get("target_checksum")) == str(target_checksum)
                and state.get("fingerprint") == transform_fp)
    return False


# --------------------------------------------------------------------------- checksum reuse
#
# A no-change re-run would spend almost all its time in CHECKSUM TABLE. A table's checksum recorded
# by the promotion that last wrote it still describes the table when MariaDB proves the table was
# not written since. The proof, per side (source snapshot / target cut-over):
#
# - InnoDB stamps information_schema.TABLES.UPDATE_TIME at commit with the *start* time of the
#   committing transaction (whole seconds; in memory only: NULL after a restart or when the table
#   definition left the cache). A transaction that started before a plain "now" mark and commits
#   after the snapshot/swap would stamp an older time, so the mark is the earliest start of every
#   transaction that may still write (INNODB_TRX), capped by "now" read before that listing. The
#   listing is a cache (refreshed at most every 100 ms, never while someone polls it faster), so it
#   only counts when it shows the probing transaction itself.
# - TRUNCATE TABLE and DISCARD/IMPORT TABLESPACE change the content but neither UPDATE_TIME nor
#   CREATE_TIME; they give the table a new InnoDB table id. RENAME TABLE keeps the id and changes
#   CREATE_TIME (so does ALTER TABLE). Both are recorded and must be equal.
# - Only MariaDB (MySQL 8 caches these statistics), InnoDB, not partitioned (a partitioned table's
#   UPDATE_TIME hides a partition evicted after a write), same server and schema.

REUSE_ENGINE = "innodb"


def whole_seconds(value):
    """Floor of a UNIX timestamp the server returned (int, Decimal, float or their text); None stays None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii")
    try:
        return int(decimal.Decimal(str(value)).to_integral_value(rounding=decimal.ROUND_FLOOR))
    except (decimal.InvalidOperation, ValueError):
        return None


def server_ident(ident):
    """One string naming a server and schema (what state rows are compared by)."""
    server = ident.get("server_uuid") or "%s:%s:%s" % (ident.get("hostname"), ident.get("port"), ident.get("datadir"))
    return fingerprint(server, ident.get("database"))


def is_mariadb(version):
    return "mariadb" in str(version or "").lower()


_PLAIN_NAME = re.compile(r"^[0-9A-Za-z_]+$")


def innodb_name(schema, table):
    """``schema/table`` as INNODB_SYS_TABLES spells it, or None when a name needs MariaDB's file-name
    encoding (then the table id is unknown and the recorded checksum is never reused)."""
    if not _PLAIN_NAME.match(schema or "") or not _PLAIN_NAME.match(table or ""):
        return None
    return "%s/%s" % (schema, table)


def foreign_writers(transactions, probe_thread, ignore=()):
    """Transactions that may write, from an INNODB_TRX listing read inside a transaction of ``probe_thread``.

    transactions: [(thread_id, started, autocommit_non_locking, read_only)].
    Returns None when the listing does not show the probe's own transaction (a stale cache: nothing
    can be concluded), else [(thread_id, started)] of the other transactions except ``ignore``,
    single-statement autocommit reads and READ ONLY transactions (neither can write a table).
    """
    probe = int(probe_thread)
    ignored = {int(t) for t in ignore}
    fresh = False
    out = []
    for thread, started, non_locking, read_only in transactions:
        thread = int(thread or 0)
        if thread == probe:
            fresh = True
            continue
        if thread in ignored or str(non_locking) == "1" or str(read_only) == "1":
            continue
        out.append((thread, started))
    return out if fresh else None


def write_mark(now, writers):
    """Whole seconds before which every later write to a table is stamped: min(now, start of each
    transaction that may still write). ``now`` is the server's clock read before the listing;
    None when nothing can be proven (stale listing, unknown start)."""
    if writers is None:
        return None
    mark = whole_seconds(now)
    if mark is None:
        return None
    for _thread, started in writers:
        start = whole_seconds(started)
        if start is None:
            return None
        mark = min(mark, start)
    return mark


def seconds_to_next(newest_write, now):
    """How long to wait so that ``now`` is in a later whole second than ``newest_write`` (0 if it is).

    A write in the very second of a mark cannot be told apart from one after it, so a promotion
    waits (under a second) before taking its mark when it (or an editor) has just written."""
    newest, current = whole_seconds(newest_write), whole_seconds(now)
    if newest is None or current is None or newest < current:
        return 0.0
    return max(0.0, float(newest + 1) - float(decimal.Decimal(str(now)))) + 0.02


def checksum_reusable(recorded, current):
    """Whether one side's checksum recorded by the last promotion may stand in for CHECKSUM TABLE.

    recorded: {checksum, ident, mark, create_time, table_id} from the state row (None when absent).
    current: {version, ident, engine, create_options, create_time, update_time, table_id} read now
    (times as UNIX seconds).
    Returns (reusable, reason). When in doubt: not reusable.
    """
    if not recorded or recorded.get("checksum") is None:
        return False, "no recorded checksum"
    if not is_mariadb(current.get("version")):
        return False, "not MariaDB (UPDATE_TIME is not trusted)"
    for key in ("ident", "mark", "create_time", "table_id"):
        if recorded.get(key) is None:
            return False, "no recorded %s" % key
    if recorded["ident"] != current.get("ident"):
        return False, "recorded for another server or schema"
    if str(current.get("engine") or "").lower() != REUSE_ENGINE:
        return False, "not an InnoDB table"
    if "partitioned" in str(current.get("create_options") or "").lower():
        return False, "partitioned table"
    if current.get("table_id") is None or str(current["table_id"]) != str(recorded["table_id"]):
        return False, "another table object (TRUNCATE, tablespace import, rename or rebuild)"
    created = whole_seconds(current.get("create_time"))
    if created is None or created != whole_seconds(recorded["create_time"]):
        return False, "created, renamed or altered since"
    updated = whole_seconds(current.get("update_time"))
    if updated is None:
        return False, "UPDATE_TIME unknown (server restart or table definition evicted)"
    mark = whole_seconds(recorded["mark"])
    if mark is None or updated >= mark:
        return False, "written since (or in the same second)"
    return True, "not written since the last promotion recorded it"


# --------------------------------------------------------------------------- foreign keys

def group_foreign_keys(rows):
    """Rows (schema, table, name, column, position, ref_schema, ref_table, ref_column, on_update, on_delete)
    -> [fk dict] with ordered column lists."""
    fks = {}
    for schema, table, name, column, position, ref_schema, ref_table, ref_column, on_update, on_delete in rows:
        key = (schema, table, name)
        fk = fks.setdefault(key, {
            "schema": schema, "table": table, "name": name, "columns": [], "ref_schema": ref_schema,
            "ref_table": ref_table, "ref_columns": [], "on_update": on_update or "RESTRICT",
            "on_delete": on_delete or "RESTRICT", "_pos": [],
        })
        fk["_pos"].append((int(position), column, ref_column))
    out = []
    for key in sorted(fks):
        fk = fks[key]
        fk["_pos"].sort()
        fk["columns"] = [c for _p, c, _r in fk["_pos"]]
        fk["ref_columns"] = [r for _p, _c, r in fk["_pos"]]
        del fk["_pos"]
        out.append(fk)
    return out


def plan_fk_fixups(fks, live, out_schema, out_tables, in_schema, in_tables):
    """Foreign-key work around ``RENAME TABLE`` (InnoDB re-points a FK when its parent is renamed).

    - ``pre_repoint``: FKs of incoming tables (in ``in_schema``) whose parent stays behind in
      ``in_schema`` (or is outside it) -> re-point to the live parent before the swap;
    - ``pre_drop``/``post_add``: FKs of live tables that stay live (kept, unchanged) whose parent
      leaves live: dropped just before the swap and re-created against the new live parent right
      after it (otherwise they would follow the old parent into the backup schema);
    - ``post_repoint``: FKs of outgoing tables whose parent stays live -> re-point into
      ``out_schema`` so backup rows never restrict or cascade production writes.
    Returns dict of lists of (fk, new_ref_schema_or_None).
    """
    out_set, in_set = set(out_tables), set(in_tables)
    plan = {"pre_repoint": [], "pre_drop": [], "post_add": [], "post_repoint": []}
    for fk in fks:
        if fk["schema"] == in_schema and fk["table"] in in_set:
            if fk["ref_schema"] == in_schema and fk["ref_table"] not in in_set:
                plan["pre_repoint"].append((fk, live))
        elif fk["schema"] == live and fk["table"] not in out_set:
            if fk["ref_schema"] == live and fk["ref_table"] in out_set:
                plan["pre_drop"].append((fk, None))
                plan["post_add"].append((fk, live))
        elif fk["schema"] == live and fk["table"] in out_set:
            if fk["ref_schema"] == live and fk["ref_table"] not in out_set:
                plan["post_repoint"].append((fk, out_schema))
    return plan


def _q(name):
    return "`" + str(name).replace("`", "``") + "`"


def build_rename(live, out_schema, out_tables, in_schema, in_tables):
    """The one atomic RENAME TABLE: every outgoing live table first, then every incoming one."""
    parts = ["%s.%s TO %s.%s" % (_q(live), _q(t), _q(out_schema), _q(t)) for t in sorted(out_tables)]
    parts += ["%s.%s TO %s.%s" % (_q(in_schema), _q(t), _q(live), _q(t)) for t in sorted(in_tables)]
    if not parts:
        return None
    return "RENAME TABLE " + ", ".join(parts)


# --------------------------------------------------------------------------- schemas

def side_schema_name(database, mark, timestamp):
    name = "%s%s%s" % (database, mark, timestamp)
    if len(name) > 64:
        raise PlanError("database name %r is too long for a %s schema (max 64 characters)" % (database, mark.strip("_")))
    return name


def free_stamp(database, marks, stamp, existing):
    """``stamp``, or ``stamp_2``, ``stamp_3``...: the first for which no ``<database><mark><stamp>`` of
    ``marks`` is in ``existing`` (schema names carry whole seconds; runs can be faster)."""
    number = 1
    candidate = stamp
    while any(side_schema_name(database, mark, candidate) in existing for mark in marks):
        number += 1
        candidate = "%s_%d" % (stamp, number)
    return candidate


def _stamp_order(stamp):
    base, _sep, number = stamp.partition("_")
    return base, int(number or 1)


def schemas_with_mark(schemas, database, mark):
    """Schemas named ``<database><mark><timestamp>[_n]``, oldest first."""
    prefix = database + mark
    found = [s for s in schemas if s.startswith(prefix) and TIMESTAMP_RE.match(s[len(prefix):])]
    return sorted(found, key=lambda s: _stamp_order(s[len(prefix):]))


def backups_to_prune(schemas, database, keep, mark=BACKUP_MARK):
    """Backup schemas beyond the newest ``keep`` (oldest first)."""
    backups = schemas_with_mark(schemas, database, mark)
    if keep < 0:
        raise PlanError("keep_backups must be >= 0")
    return backups[:max(0, len(backups) - keep)]


def table_diff(before, after):
    """Text diff lines (table-level) for --diff: before/after {table: description}."""
    lines_before = ["%s: %s" % (t, before[t]) for t in sorted(before)]
    lines_after = ["%s: %s" % (t, after[t]) for t in sorted(after)]
    return "\n".join(lines_before) + "\n", "\n".join(lines_after) + "\n"


# --------------------------------------------------------------------------- backup recycling
#
# A promotion writes every row of each replaced table into a new shadow table, although most rows
# usually equal those of an earlier promotion. The oldest backup schema that this promotion prunes
# anyway holds such an earlier generation: its table is moved into the shadow schema and only the
# rows that differ from the source snapshot (by a SHA-256 of each row's values) are deleted and
# re-inserted. The newest backup (what rollback swaps back in) is never a donor.

RECYCLE_MAX_SHARE = 0.5
DIGEST_BYTES = 32


def recycle_donor(schemas, database, keep):
    """The backup schema a promotion may take tables from, or None.

    The newest of the backups that pruning removes once this promotion has added its own, as long
    as it is not the newest backup of all (the rollback target while the promotion runs).
    """
    backups = schemas_with_mark(schemas, database, BACKUP_MARK)
    if keep < 0:
        raise PlanError("keep_backups must be >= 0")
    doomed = [b for b in backups[:max(0, len(backups) + 1 - keep)] if b != backups[-1]]
    return doomed[-1] if doomed else None


def line_key(line):
    """The key literal (``('id')``, ``(1,'x')``) of a ``<32-byte row digest><hex of the key literal>`` line."""
    return bytes.fromhex(line[DIGEST_BYTES:].decode("ascii"))


class RowDelta:
    """Pairs the digest lines of a source and a target stream, fed in any interleaving.

    A line is ``<32-byte row digest><hex of the key literal>``. A row waits only until the same key
    arrives from the other side; both streams are read in primary-key order, so the waiting rows are
    the differing ones plus one read-ahead chunk, never the whole table.
    """

    def __init__(self):
        self.source_rows = 0
        self.target_rows = 0
        self._source_only = {}
        self._target_only = {}
        self._changed = []

    def add_source(self, lines):
        self.source_rows += self._add(lines, self._source_only, self._target_only, lambda mine, other: (other, mine))

    def add_target(self, lines):
        self.target_rows += self._add(lines, self._target_only, self._source_only, lambda mine, other: (mine, other))

    def _add(self, lines, waiting_here, waiting_there, as_pair):
        """Match each line with a waiting one of the other side, or let it wait; changed pairs are (target, source)."""
        count = 0
        for line in lines:
            count += 1
            key = line[DIGEST_BYTES:]
            other = waiting_there.pop(key, None)
            if other is None:
                waiting_here[key] = line
            elif other != line:
                self._changed.append(as_pair(line, other))
        return count

    def waiting(self):
        return len(self._source_only) + len(self._target_only)

    def result(self):
        """(keys to delete, source lines to insert): a changed row is in both, sorted for a deterministic plan."""
        delete = sorted(line_key(line) for line in list(self._target_only.values()) + [t for t, _s in self._changed])
        insert = sorted(list(self._source_only.values()) + [s for _t, s in self._changed])
        return delete, insert


def recycle_pays(source_rows, target_rows, delete, insert):
    """Recycling beats a full copy when the rows to rewrite are at most a share of the table."""
    changed = len(delete) + len(insert)
    return changed <= RECYCLE_MAX_SHARE * max(int(source_rows), int(target_rows), 1)
