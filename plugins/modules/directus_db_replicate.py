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
  - O(rollback=true) swaps the newest backup of a completed promotion back in, also with one C(RENAME TABLE), and
    restores the kept rows that promotion changed (remapped role/policy ids, references it set to NULL).
  - Before it touches anything live, a run writes what it will do into a journal in
    C(<database>__promote_state). A run that is killed (SIGKILL, a lost connection) is repaired by the next run,
    promotion or rollback, before anything else; a run that fails or gets SIGTERM (an AWX cancel) or SIGINT
    repairs itself on a new connection. Either way the repair reads what the server shows, then finishes the
    promotion when the swap took effect and undoes it when it did not; the failure message says which. See
    C(docs/database-journal.md) in the collection.
author:
  - casper.directus_promote contributors (@casper)
requirements:
  - PyMySQL
  - MariaDB 10.3+ or MySQL 8.0+ on both sides, InnoDB tables
extends_documentation_fragment:
  - casper.directus_promote.mysql
  - casper.directus_promote.progress
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
      - Seconds to wait for the target's promotion lock (C(GET_LOCK)) held by another run (0 or more).
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
        field's column added to C(directus_users), a foreign key added towards a live parent) and after it (foreign keys
        re-created by a repair).
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
  keep_referenced_files:
    description:
      - Production's C(directus_files) rows that kept rows reference (a production user's avatar, a logo in
        C(directus_settings), a file field of a kept table) and that the source lacks stay in the promoted
        C(directus_files), so that those references and the files' objects stay valid. Their objects are listed in
        C(kept_files) for the asset mirror to leave alone.
      - C(false) sets those references to NULL instead.
    type: bool
    default: true
  promotion_run_id:
    description:
      - The run id of the promotion this call is part of, which holds the target's promotion lock
        (P(casper.directus_promote.promotion_lock#module)). The run refuses before it writes unless that run holds it.
      - Without it, the run refuses while any promotion holds the lock (it has not expired).
      - Recorded with the backup, so that a rollback reports which promotion it undoes (C(rollback_of)).
    type: str
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
  - Kept tables are never copied. Foreign keys of kept tables that point at swapped tables are pointed at the shadow
    copies of those tables just before the C(RENAME TABLE), so that they follow them into production (InnoDB moves
    such a reference along with the renamed parent table).
  - Columns that the promoted C(directus_fields) declares on kept tables are defined from the source's
    C(information_schema), never from the text of its C(CREATE TABLE); shadow tables are created from a checked
    reading of that text. Row values the source server formats are checked to be plain values before the target
    receives them. Anything else makes the run stop before it writes.
  - Rewriting C(directus_users.role) to a promoted role of the same name happens right after the swap (milliseconds),
    in one transaction that also records each row's old role for O(rollback).
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
kept_files:
  description: Production's files kept by O(keep_referenced_files) (C(id), C(filename_disk), C(storage)).
  returned: when there are any
  type: list
  elements: dict
  sample: [{"id": "9e3f6c1e-0d5c-4c2e-9a7e-2f7d0b6c1a11", "filename_disk": "9e3f6c1e-0d5c-4c2e-9a7e-2f7d0b6c1a11.jpg",
            "storage": "s3"}]
rollback_of:
  description: With O(rollback=true), the backup swapped back in, the journal entry of the promotion that made it,
    and the promotion run id it was part of (null when it had none). Check mode reports it too.
  returned: when rolling back
  type: dict
  sample: {"backup_schema": "directus__backup_20260101T120000", "journal_entry": "6c0dfb91f9c84b38aa6f487b1910ccb9",
           "promotion_run_id": "prod-20260101T120000Z-1a2b3c4d"}
promotion_lock:
  description: The promotion lock's holder as the run found it (null when nobody held it).
  returned: always
  type: dict
journal_entry:
  description: Id of this run's journal entry in C(<database>__promote_state), or null when it wrote nothing.
  returned: always
  type: str
recovery:
  description:
    - When the run failed after opening its journal entry, what the repair on a new connection found and did.
    - C(state) is C(not swapped) (production was put back as it was), C(swapped) (the swap had completed and was
      finished) or C(unknown) (it could not be checked; the next run repairs it).
  returned: on failure after the first write
  type: dict
  sample: {"entry": "6c0dfb91f9c84b38aa6f487b1910ccb9", "state": "not swapped", "detail": null,
           "repaired": ["shadow schema directus__shadow_20260101T120000 dropped"]}
executed_commands:
  description: Statements run on the target (data statements summarised); no secrets.
  returned: always
  type: list
  elements: str
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import ddl, promote, reuse
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import (
    Failure,
    Interrupted,
    Run,
    interruption,
    interrupts_raise,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    HAS_PYMYSQL,
    PYMYSQL_IMPORT_ERROR,
    DatabaseError,
    friendly_error,
    mysql_connection_options,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.progress import progress_argument_spec

if HAS_PYMYSQL:
    import pymysql


def argument_spec():
    spec = dict(
        source=dict(type="dict", options=mysql_connection_options()),
        target=dict(type="dict", required=True, options=mysql_connection_options()),
        keep_tables=dict(type="list", elements="str", default=list(rules.DEFAULT_KEEP_TABLES)),
        merge_tables=dict(type="list", elements="str", default=list(rules.DEFAULT_MERGE_TABLES)),
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
        promotion_run_id=dict(type="str"),
        keep_referenced_files=dict(type="bool", default=True),
    )
    spec.update(progress_argument_spec())
    return spec


def invalid_values(params):
    """Values the argument spec cannot refuse by type: one message naming each."""
    problems = []
    for name, low in (("keep_backups", 0), ("recycle_min_rows", 0), ("lock_timeout", 0), ("cutover_lock_wait", 1),
                      ("cutover_attempts", 1), ("batch_bytes", 1024)):
        if params[name] < low:
            problems.append("%s must be %d or more (got %d)" % (name, low, params[name]))
    for side in ("source", "target"):
        if params.get(side) and params[side]["connect_timeout"] < 1:
            problems.append("%s.connect_timeout must be 1 or more" % side)
    return problems


def error_message(run, exc):
    """One line for what stopped the run, naming the side a server error came from."""
    if isinstance(exc, (Failure, DatabaseError, ddl.UnsafeText, rules.PlanError)):
        return str(exc)
    if isinstance(exc, Interrupted):
        return "interrupted by %s" % exc
    if HAS_PYMYSQL and isinstance(exc, pymysql.err.MySQLError):
        side = getattr(exc, "side", None) or "target"
        return friendly_error(side, run.params.get(side) or {}, exc)
    return "unexpected error: %s" % exc


def finish_result(run):
    plan = run.plan
    if "checksums" in run.result and plan is not None:
        run.result["checksums"]["notes"] = reuse.summary(run, plan)
    stats = plan.stats if plan is not None else {"remapped_roles": {}, "remapped_policies": {}, "user_refs_mapped": 0,
                                                 "user_refs_nulled": 0, "added_columns": []}
    run.result["preflight"] = dict(stats, findings=run.findings)
    run.result["timings"] = run.timings
    run.result["executed_commands"] = run.commands
    run.result["journal_entry"] = run.journal.run_id if run.journal is not None else None
    run.result.setdefault("promotion_lock", None)
    return run.result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("rollback", False, ("source",))],
    )
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    problems = invalid_values(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    run = Run(module.params, module.check_mode, module._diff)
    failure, trace = None, None
    start = time.monotonic()
    try:
        with interrupts_raise():
            try:
                if module.params["rollback"]:
                    promote.roll_back(run)
                else:
                    promote.promote(run)
            except BaseException as exc:  # noqa: BLE001 - SIGTERM and SIGINT end the run here too
                failure = interruption(exc) or exc
                if not isinstance(exc, (Failure, DatabaseError, ddl.UnsafeText, rules.PlanError, Interrupted)) and not (
                        HAS_PYMYSQL and isinstance(exc, pymysql.err.MySQLError)):
                    trace = traceback.format_exc()
                outcome = promote.settle_after_failure(run)
                if outcome is not None:
                    run.result["recovery"] = outcome
    finally:
        run.close()
        run.timings["total"] = round(time.monotonic() - start, 3)
    result = finish_result(run)
    if failure is not None:
        message = error_message(run, failure)
        said = promote.describe_outcome(result.get("recovery")) or promote.describe_early_stop(run)
        if said:
            message = "%s; %s" % (message, said)
        out = dict(result)
        # changed: what this run leaves changed -- a swap that completed, or an earlier run's entry it settled
        out["changed"] = (result.get("recovery") or {}).get("state") == "swapped" or any(
            f["check"] in ("recovery", "leftovers") and f["status"] == "changed" for f in run.findings)
        if trace:
            out["exception"] = trace
        module.fail_json(msg=message, **out)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
