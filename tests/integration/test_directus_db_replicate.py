# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""directus_db_replicate against the sandbox's two real MariaDB servers (staging -> prod)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import threading
import time

import pymysql
import pytest

from sandbox import directus_fixture as fx
from sandbox.servers import free_port

MODULE = "directus_db_replicate"
DB = "directus"
# Kept tables that no promotion step may touch at all in the fixture scenario.
UNTOUCHED = ["directus_sessions", "directus_notifications", "directus_comments", "directus_settings",
             "directus_extensions", "directus_webhooks", "directus_migrations", "directus_activity"]
# Replaced tables without references to users: byte-identical to staging after a promotion.
IDENTICAL = ["directus_collections", "directus_fields", "directus_relations", "directus_roles", "directus_policies",
             "directus_permissions", "directus_translations", "directus_folders", "tags", "articles_tags"]
USER_COLUMNS = {"user_created", "user_updated", "uploaded_by", "modified_by"}


def conn_args(server, **override):
    args = dict(host=server.host, port=server.port, user=server.user, password=server.password, database=DB)
    args.update(override)
    return args


def promote_args(sb, **extra):
    args = dict(source=conn_args(sb.staging), target=conn_args(sb.prod))
    args.update(extra)
    return args


def drop_side_schemas(server):
    conn = server.root_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'directus\\_\\_%'")
        for (name,) in cur.fetchall():
            cur.execute("DROP DATABASE `%s`" % name)
    conn.close()


def build(sb, staging=None, prod=None):
    for server in (sb.staging, sb.prod):
        drop_side_schemas(server)
    s, p = sb.staging.root_connect(), sb.prod.root_connect()
    fx.build_directus_db(s, DB, **dict(dict(env="staging", seed=1, content_rows=1500), **(staging or {})))
    fx.build_directus_db(p, DB, **dict(dict(env="prod", seed=1, content_rows=400), **(prod or {})))
    s.close()
    p.close()


def q(server, sql, args=None):
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def schemas(server):
    return sorted(r[0] for r in q(server, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"))


def checksums(server, tables=None, method="content"):
    conn = server.root_connect()
    try:
        return fx.table_checksums(conn, DB, tables, method=method)
    finally:
        conn.close()


def write_counters(server):
    """Server-wide counters that move on any row write or DDL (InnoDB rows, not internal temp tables)."""
    names = ("Innodb_rows_inserted", "Innodb_rows_updated", "Innodb_rows_deleted", "Com_create_db", "Com_drop_db",
             "Com_create_table", "Com_drop_table", "Com_alter_table", "Com_rename_table")
    rows = q(server, "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % ", ".join(["%s"] * len(names)), names)
    return dict(rows)


def rows_hash(server, table, exclude=()):
    cols = [r[0] for r in q(server, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                            "TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (DB, table)) if r[0] not in exclude]
    select = ", ".join("`%s`" % c for c in cols)
    h = hashlib.sha256()
    for row in q(server, "SELECT %s FROM `%s`.`%s` ORDER BY 1" % (select, DB, table)):
        h.update(repr(row).encode())
    return h.hexdigest()


def findings(result, check):
    return [f for f in result["preflight"]["findings"] if f["check"] == check]


def assert_unchanged(sb, before_ck, before_schemas, before_counters):
    assert write_counters(sb.prod) == before_counters
    assert schemas(sb.prod) == before_schemas
    assert checksums(sb.prod, method="checksum_table") == before_ck


@pytest.fixture
def fresh(sandbox):
    build(sandbox)
    return sandbox


def test_promotion_check_mode_real_run_and_idempotence(sandbox, run_module):
    sb = sandbox
    build(sb)
    s = sb.staging.root_connect()
    fx.add_custom_user_field(s, DB)
    s.close()
    prod_before = fx.describe(sb.prod.root_connect(), DB)
    staging_desc = fx.describe(sb.staging.root_connect(), DB)
    kept_before = checksums(sb.prod, UNTOUCHED)
    users_before = rows_hash(sb.prod, "directus_users", exclude={"role"})
    prod_user_access = q(sb.prod, "SELECT id, user, policy FROM directus.directus_access WHERE user IS NOT NULL ORDER BY id")
    ck0, sch0, cnt0 = checksums(sb.prod, method="checksum_table"), schemas(sb.prod), write_counters(sb.prod)

    # --- check mode: the plan and every finding, nothing written
    planned = run_module(MODULE, promote_args(sb), check=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    actions = {t["name"]: t["action"] for t in planned["tables"]}
    assert actions["articles"] == "replace" and actions["directus_users"] == "keep"
    assert actions["directus_access"] == "merge" and actions["directus_sessions"] == "keep"
    assert planned["preflight"]["added_columns"] == ["directus_users.department"]
    assert planned["preflight"]["remapped_roles"] == {prod_before["admin_role_id"]: staging_desc["admin_role_id"]}
    assert planned["preflight"]["user_refs_mapped"] > 0 and planned["preflight"]["user_refs_nulled"] > 0
    assert "articles: " in planned["diff"]["before"] and "articles: replace from source" in planned["diff"]["after"]
    assert planned["backup_schema"] is None and planned["executed_commands"] == []
    assert_unchanged(sb, ck0, sch0, cnt0)

    # --- real run
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert sorted(result["changed_tables"]) == sorted(planned["changed_tables"])
    backup = result["backup_schema"]
    assert backup.startswith("directus__backup_") and backup in schemas(sb.prod)
    assert not [x for x in schemas(sb.prod) if "__shadow_" in x]
    renames = [c for c in result["executed_commands"] if c.startswith("RENAME TABLE")]
    assert len(renames) == 1

    # data fidelity: byte-identical where nothing is mapped, identical but the user columns elsewhere
    assert checksums(sb.prod, IDENTICAL) == checksums(sb.staging, IDENTICAL)
    for table in ("articles", "awkward_values", "authors", "directus_files"):
        assert rows_hash(sb.prod, table, USER_COLUMNS) == rows_hash(sb.staging, table, USER_COLUMNS), table
    # kept tables untouched byte for byte; users only got the remapped role and the new column
    assert checksums(sb.prod, UNTOUCHED) == kept_before
    assert rows_hash(sb.prod, "directus_users", exclude={"role", "department"}) == users_before
    col = q(sb.prod, "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='directus' "
                     "AND TABLE_NAME='directus_users' AND COLUMN_NAME='department'")
    assert col == (("varchar(255)", "YES"),)
    # production's admin keeps the admin role of the promoted roles, which has the admin policy
    admin_role = q(sb.prod, "SELECT role FROM directus.directus_users WHERE id=%s", (prod_before["admin_user_id"],))[0][0]
    assert admin_role == staging_desc["admin_role_id"]
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.directus_access a JOIN directus.directus_policies p ON p.id=a.policy "
                      "WHERE a.role=%s AND p.admin_access=1", (admin_role,))[0][0] == 1
    # user references: mapped by e-mail or NULL, never dangling
    editor_prod = prod_before["users"]["editor@example.test"]
    editor_stg = staging_desc["users"]["editor@example.test"]
    n_editor = q(sb.staging, "SELECT COUNT(*) FROM directus.articles WHERE user_created=%s", (editor_stg,))[0][0]
    assert n_editor > 0
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.articles WHERE user_created=%s", (editor_prod,))[0][0] == n_editor
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.articles a LEFT JOIN directus.directus_users u ON u.id=a.user_created "
                      "WHERE a.user_created IS NOT NULL AND u.id IS NULL")[0][0] == 0
    conn = sb.prod.root_connect()
    assert fx.fk_violations(conn, DB) == {}
    conn.close()
    # merges: staging's role/public rows + production's per-user rows
    stg_shared = q(sb.staging, "SELECT id, role, policy FROM directus.directus_access WHERE user IS NULL ORDER BY id")
    assert q(sb.prod, "SELECT id, role, policy FROM directus.directus_access WHERE user IS NULL ORDER BY id") == stg_shared
    assert q(sb.prod, "SELECT id, user, policy FROM directus.directus_access WHERE user IS NOT NULL ORDER BY id") == \
        prod_user_access
    stg_presets = q(sb.staging, "SELECT bookmark, collection, layout_query FROM directus.directus_presets "
                                "WHERE user IS NULL ORDER BY 1, 2")
    assert q(sb.prod, "SELECT bookmark, collection, layout_query FROM directus.directus_presets WHERE user IS NULL "
                      "ORDER BY 1, 2") == stg_presets
    # foreign keys: kept tables point at the NEW live tables; nothing live points into a backup and back
    fks = q(sb.prod, "SELECT TABLE_SCHEMA, TABLE_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM "
                     "information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND TABLE_SCHEMA LIKE "
                     "'directus%%'")
    assert ("directus", "directus_users", "directus", "directus_roles") in fks
    assert [f for f in fks if (f[0] == "directus") != (f[2] == "directus")] == []
    # ... and the constraint really bites on the new table: a user with a promoted-only role is accepted,
    # one with an unknown role is refused
    conn = sb.prod.root_connect()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO directus.directus_users (id, email, role, status, provider) VALUES "
                    "('00000000-0000-4000-8000-00000000fk01', 'fk@example.test', %s, 'active', 'default')", (admin_role,))
        with pytest.raises(pymysql.err.IntegrityError):
            cur.execute("INSERT INTO directus.directus_users (id, email, role, status, provider) VALUES "
                        "('00000000-0000-4000-8000-00000000fk02', 'fk2@example.test', %s, 'active', 'default')",
                        (prod_before["admin_role_id"],))
        cur.execute("DELETE FROM directus.directus_users WHERE id='00000000-0000-4000-8000-00000000fk01'")
    conn.close()

    # --- second run: nothing differs -> changed false, no schema, no write
    ck1, sch1, cnt1 = checksums(sb.prod, method="checksum_table"), schemas(sb.prod), write_counters(sb.prod)
    again = run_module(MODULE, promote_args(sb), diff=True)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["changed_tables"] == [] and again["executed_commands"] == []
    assert {t["action"] for t in again["tables"] if t["policy"] == "replace"} == {"unchanged"}
    assert_unchanged(sb, ck1, sch1, cnt1)

    # --- an editor session on staging: only what changed is promoted; backups pruned; backup file 0600
    s = sb.staging.root_connect()
    fx.staging_edit(s, DB, seed=7)
    s.close()
    planned = run_module(MODULE, promote_args(sb), check=True)
    assert planned["changed_tables"] == ["articles", "directus_permissions"]
    path = os.path.join(str(sb.base_dir), "prod-backup.sql.gz")
    result = run_module(MODULE, promote_args(sb, keep_backups=1, backup_file=path))
    assert result["changed_tables"] == ["articles", "directus_permissions"], result.get("msg")
    assert os.stat(path).st_mode & 0o777 == 0o600
    import gzip
    with gzip.open(path, "rb") as fh:
        dump = fh.read()
    assert b"CREATE TABLE `articles`" in dump and b"INSERT INTO `articles`" in dump
    assert b"directus_users" not in dump.split(b"CREATE TABLE `articles`")[0]
    assert sb.prod.password.encode() not in dump and sb.prod.password not in result["_stdout"]
    assert [x for x in schemas(sb.prod) if "__backup_" in x] == [result["backup_schema"]]
    assert checksums(sb.prod, ["articles_tags", "directus_permissions"]) == \
        checksums(sb.staging, ["articles_tags", "directus_permissions"])


def test_rollback_restores_previous_state(fresh, run_module):
    sb = fresh
    before = checksums(sb.prod)
    result = run_module(MODULE, promote_args(sb))
    assert result["changed"] is True, result.get("msg")
    assert checksums(sb.prod) != before
    planned = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True), check=True)
    assert planned["changed"] is True and checksums(sb.prod) != before
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed"), back.get("msg")
    assert len([c for c in back["executed_commands"] if c.startswith("RENAME TABLE")]) == 1
    # every live table (kept users' remapped role and NULLed references included) is as before
    assert checksums(sb.prod) == before
    assert result["backup_schema"] not in schemas(sb.prod)
    assert back["backup_schema"].startswith("directus__rolledback_")
    conn = sb.prod.root_connect()
    assert fx.fk_violations(conn, DB) == {}
    conn.close()
    fks = q(sb.prod, "SELECT TABLE_SCHEMA, REFERENCED_TABLE_SCHEMA FROM information_schema.KEY_COLUMN_USAGE "
                     "WHERE REFERENCED_TABLE_NAME IS NOT NULL AND TABLE_SCHEMA LIKE 'directus%%'")
    assert [f for f in fks if (f[0] == "directus") != (f[1] == "directus")] == []
    # promoting again works from the rolled-back state
    again = run_module(MODULE, promote_args(sb))
    assert again["changed"] is True and not again.get("failed"), again.get("msg")


def test_rollback_leaves_a_dangling_foreign_key_to_a_table_the_promotion_created_in_production(fresh, run_module):
    """A kept table's FK to a name production lacks (left by a DROP TABLE with foreign_key_checks=0) resolves
    once a promotion brings that table; rolling back must not drag the FK into the rolled-back schema."""
    sb = fresh
    q(sb.staging, "CREATE TABLE directus.campaigns (id CHAR(36) NOT NULL PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB")
    q(sb.staging, "INSERT INTO directus.campaigns VALUES ('c1', 'spring')")
    conn = sb.prod.root_connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        cur.execute("ALTER TABLE directus.directus_sessions ADD COLUMN campaign CHAR(36) NULL, ADD CONSTRAINT "
                    "sessions_campaign FOREIGN KEY (campaign) REFERENCES directus.campaigns (id)")
    conn.close()

    def campaign_fk():
        return q(sb.prod, "SELECT UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                          "WHERE CONSTRAINT_SCHEMA = 'directus' AND CONSTRAINT_NAME = 'sessions_campaign'")

    assert campaign_fk() == (("directus", "campaigns"),)
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert "campaigns" in result["changed_tables"] and campaign_fk() == (("directus", "campaigns"),)
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed"), back.get("msg")
    assert "campaigns" not in [r[0] for r in q(sb.prod, "SHOW TABLES FROM directus")]
    assert campaign_fk() == (("directus", "campaigns"),)  # dangling again, as before the promotion
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed") and campaign_fk() == (("directus", "campaigns"),), again.get("msg")


def refused(sb, run_module, args, *needles, check=False):
    ck, sch, cnt = checksums(sb.prod, method="checksum_table"), schemas(sb.prod), write_counters(sb.prod)
    result = run_module(MODULE, args, check=check)
    assert result.get("failed") is True, result
    for needle in needles:
        assert needle in result["msg"], result["msg"]
    assert "\n" not in result["msg"]
    assert_unchanged(sb, ck, sch, cnt)
    return result


def test_locked_out_admin_is_refused(fresh, run_module):
    sb = fresh
    # staging renamed its admin role: production's admins would keep a role id that no longer exists
    q(sb.staging, "UPDATE directus.directus_roles SET name='Admins' WHERE name='Administrator'")
    for check in (True, False):
        result = refused(sb, run_module, promote_args(sb), "Administrator", "nothing was changed", check=check)
        errors = [f for f in result["preflight"]["findings"] if f["status"] == "error"]
        assert [f["check"] for f in errors] == ["role_mapping", "admin_access"]
    # role_mapping=id refuses even before names are looked at
    q(sb.staging, "UPDATE directus.directus_roles SET name='Administrator' WHERE name='Admins'")
    refused(sb, run_module, promote_args(sb, role_mapping="id"), "role_mapping=id")


def test_migrations_mismatch_same_database_and_fail_mode_refused(sandbox, run_module):
    sb = sandbox
    build(sb, staging=dict(extra_migrations=[("20250101A", "Newer Directus")]))
    result = refused(sb, run_module, promote_args(sb), "directus_migrations differ", "20250101A")
    assert findings(result, "migrations")[0]["status"] == "error"
    # overridable
    ok = run_module(MODULE, promote_args(sb, require_same_migrations=False), check=True)
    assert not ok.get("failed") and findings(ok, "migrations")[0]["status"] == "warning"
    refused(sb, run_module, promote_args(sb, unknown_user_references="fail", require_same_migrations=False),
            "unknown_user_references=fail")
    same = dict(source=conn_args(sb.prod), target=conn_args(sb.prod, host="localhost"))
    refused(sb, run_module, same, "same database")


def test_concurrent_run_refused(fresh, run_module):
    sb = fresh
    holder = sb.prod.root_connect()
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK('directus_promote:directus', 0)")
        assert cur.fetchone()[0] == 1
    try:
        refused(sb, run_module, promote_args(sb, lock_timeout=1), "another promotion")
        planned = run_module(MODULE, promote_args(sb), check=True)
        assert findings(planned, "lock")[0]["status"] == "warning"
    finally:
        holder.close()
    assert run_module(MODULE, promote_args(sb))["changed"] is True


def test_connection_errors_are_one_clear_message(sandbox, run_module):
    sb = sandbox
    cases = [
        (dict(source=conn_args(sb.staging, password="wrong-" + sb.staging.password)), "source: access denied for user"),
        (dict(target=conn_args(sb.prod, database="no_such_db")), "target: unknown database 'no_such_db'"),
        (dict(source=conn_args(sb.staging, port=free_port(), connect_timeout=3)), "source: cannot reach"),
    ]
    for override, needle in cases:
        args = promote_args(sb)
        args.update(override)
        result = run_module(MODULE, args)
        assert result.get("failed") is True
        assert needle in result["msg"] and "\n" not in result["msg"], result["msg"]
        assert sb.staging.password not in result["_stdout"] and sb.prod.password not in result["_stdout"]
        assert "Traceback" not in result["_stderr"]


def kill_when_seen(server, pattern, timeout=60):
    """A started thread that KILLs the first connection of the module's user running a statement LIKE pattern."""
    killed = []

    def killer():
        conn = server.root_connect()
        deadline = time.monotonic() + timeout
        try:
            with conn.cursor() as cur:
                while time.monotonic() < deadline and not killed:
                    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER=%s AND INFO LIKE '" + pattern + "'",
                                (server.user,))
                    row = cur.fetchone()
                    if row:
                        cur.execute("KILL %d" % row[0])
                        killed.append(row[0])
                    time.sleep(0.005)
        finally:
            conn.close()

    thread = threading.Thread(target=killer)
    thread.start()
    return killed, thread


def test_killed_source_connection_leaves_target_untouched(sandbox, run_module):
    sb = sandbox
    build(sb, staging=dict(content_rows=40000))
    before = checksums(sb.prod, method="checksum_table")
    sch = schemas(sb.prod)
    killed, thread = kill_when_seen(sb.staging, "SELECT %%FROM `directus`.`articles`%%")
    result = run_module(MODULE, promote_args(sb))
    thread.join()
    assert killed, "the copy of articles was never seen on the source"
    assert result.get("failed") is True
    assert "source" in result["msg"] and "not changed" in result["msg"], result["msg"]
    assert checksums(sb.prod, method="checksum_table") == before
    # no shadow or backup schema is left; the state schema (lock, journal) is the module's own and may be new
    leftovers = [x for x in schemas(sb.prod) if x not in sch and not x.endswith("__promote_state")]
    assert leftovers == []
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed"), again.get("msg")
    assert checksums(sb.prod, ["articles_tags", "tags"]) == checksums(sb.staging, ["articles_tags", "tags"])
    assert rows_hash(sb.prod, "articles", USER_COLUMNS) == rows_hash(sb.staging, "articles", USER_COLUMNS)


def test_leftover_shadow_schema_of_an_interrupted_run_is_removed(fresh, run_module):
    sb = fresh
    q(sb.prod, "CREATE DATABASE directus__shadow_20200101T000000")
    q(sb.prod, "CREATE TABLE directus__shadow_20200101T000000.articles (id int primary key)")
    planned = run_module(MODULE, promote_args(sb), check=True)
    assert findings(planned, "leftovers")[0]["status"] == "warning"
    assert "directus__shadow_20200101T000000" in schemas(sb.prod)
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert findings(result, "leftovers")[0]["status"] == "changed"
    assert [x for x in schemas(sb.prod) if "__shadow_" in x] == []


def run_with_1mb_source_packet(sb, run_module, args):
    """One module run while staging's max_allowed_packet is 1 MB (new connections only), restored after."""
    old_packet = q(sb.staging, "SELECT @@GLOBAL.max_allowed_packet")[0][0]
    q(sb.staging, "SET GLOBAL max_allowed_packet = 1048576")
    try:
        return run_module(MODULE, args)
    finally:
        q(sb.staging, "SET GLOBAL max_allowed_packet = %d" % old_packet)


def test_every_type_copied_byte_identical(sandbox, run_module):
    """Same users on both sides (nothing to map): every promoted table ends byte-identical to the source."""
    sb = sandbox
    build(sb, staging=dict(seed=3, content_rows=1200), prod=dict(env="staging", seed=3, content_rows=300))
    # a 700 KB blob: its hex literal (1.4 MB) is too long for a source with max_allowed_packet = 1 MB, so
    # that table is copied with client-built literals instead
    q(sb.staging, "INSERT INTO directus.awkward_values (label, blob_value) VALUES ('big blob', %s)",
      (bytes(range(256)) * 2800,))
    result = run_with_1mb_source_packet(sb, run_module, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert any(c.startswith("awkward_values: rows too long") for c in result["executed_commands"])
    assert result["preflight"]["user_refs_mapped"] == 0 and result["preflight"]["user_refs_nulled"] == 0
    promoted = [t["name"] for t in result["tables"] if t["policy"] == "replace"]
    assert {"awkward_values", "articles", "authors", "directus_files"} <= set(promoted)
    assert checksums(sb.prod, promoted) == checksums(sb.staging, promoted)
    assert checksums(sb.prod, promoted, method="checksum_table") == checksums(sb.staging, promoted, method="checksum_table")
    shows = {t: q(sb.prod, "SHOW CREATE TABLE directus.`%s`" % t)[0][1] for t in promoted}
    assert shows == {t: q(sb.staging, "SHOW CREATE TABLE directus.`%s`" % t)[0][1] for t in promoted}


def test_the_biggest_table_re_read_with_client_literals_while_two_writers_share_it(sandbox, run_module):
    """The last, biggest table is written by both target connections; a re-read (rows too long for the
    source to build) must not race with inserts still running on the other connection."""
    sb = sandbox
    build(sb, staging=dict(seed=4, content_rows=1200), prod=dict(env="staging", seed=4, content_rows=300))
    # 40 INSERTs of 64 KB before the first row that is too long, so both connections are busy when it comes
    q(sb.staging, "INSERT INTO directus.awkward_values (label, long_text) SELECT CONCAT('filler ', seq), REPEAT('x', 200) "
                  "FROM directus.seq_1_to_12000")
    # six 700 KB blobs make awkward_values the biggest table, each too long for a 1 MB source packet as hex
    for number in range(6):
        q(sb.staging, "INSERT INTO directus.awkward_values (label, blob_value) VALUES (%s, %s)",
          ("big blob %d" % number, bytes([number]) + bytes(range(256)) * 2800))
    q(sb.staging, "ANALYZE TABLE directus.awkward_values")  # its size, as the module reads it, now counts the blobs
    result = run_with_1mb_source_packet(sb, run_module, promote_args(sb, batch_bytes=65536))
    assert not result.get("failed"), result.get("msg")
    commands = result["executed_commands"]
    assert "awkward_values: rows too long for server-side literals, copied with client-side ones" in commands
    loads = [c.split("`")[3] for c in commands if c.startswith("INSERT INTO `directus__shadow_")]
    assert loads[-2:] == ["awkward_values", "awkward_values"], loads  # loaded last, by both connections
    promoted = [t["name"] for t in result["tables"] if t["policy"] == "replace"]
    assert checksums(sb.prod, promoted) == checksums(sb.staging, promoted)
    assert checksums(sb.prod, promoted, method="checksum_table") == checksums(sb.staging, promoted, method="checksum_table")


def test_servers_in_other_time_zones_promote_timestamps_unchanged(fresh, run_module):
    """TIMESTAMP values travel as text in the session's time zone: every connection that reads or writes
    them, the verification's included, must use the same one whatever the servers' own zones are."""
    sb = fresh
    zones = {server: q(server, "SELECT @@GLOBAL.time_zone")[0][0] for server in (sb.staging, sb.prod)}
    q(sb.staging, "SET GLOBAL time_zone = '-03:00'")
    q(sb.prod, "SET GLOBAL time_zone = '+05:30'")
    try:
        result = run_module(MODULE, promote_args(sb))
        again = run_module(MODULE, promote_args(sb))
    finally:
        for server, zone in zones.items():
            q(server, "SET GLOBAL time_zone = %s", (zone,))
    assert not result.get("failed"), result.get("msg")
    assert result["preflight"]["user_refs_mapped"] > 0  # articles' user columns mapped while reading
    for table in ("articles", "authors", "directus_files"):
        assert rows_hash(sb.prod, table, exclude=USER_COLUMNS) == rows_hash(sb.staging, table, exclude=USER_COLUMNS), table
    assert checksums(sb.prod, IDENTICAL) == checksums(sb.staging, IDENTICAL)
    assert not again.get("failed") and not again["changed"], again.get("msg") or again["changed_tables"]


def test_servers_with_unusual_sql_modes_promote_and_roll_back_unchanged(fresh, run_module):
    """The servers' own sql_mode must not change what the module's SQL means: ANSI_QUOTES makes "..." an
    identifier, NO_BACKSLASH_ESCAPES reads a backslash as itself, PAD_CHAR_TO_FULL_LENGTH pads CHAR values,
    and strict modes refuse the zero dates a source may hold."""
    sb = fresh
    q(sb.staging, "INSERT INTO directus.awkward_values (label, text_value, dt3, d, uuid_value, blob_value) "
                  "VALUES (%s, %s, %s, %s, %s, %s)",
      ("modes", "back\\slash, 'single', \"double\"", "0000-00-00 00:00:00", "0000-00-00", "short", b"a\\b\0c"))
    modes = "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,PAD_CHAR_TO_FULL_LENGTH,STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE"
    saved = {server: q(server, "SELECT @@GLOBAL.sql_mode")[0][0] for server in (sb.staging, sb.prod)}
    before = checksums(sb.prod)
    for server in saved:
        q(server, "SET GLOBAL sql_mode = %s", (modes,))
    try:
        result = run_module(MODULE, promote_args(sb))
        again = run_module(MODULE, promote_args(sb))
    finally:
        for server, mode in saved.items():
            q(server, "SET GLOBAL sql_mode = %s", (mode,))
    assert not result.get("failed"), result.get("msg")
    awkward = [rows_hash(server, "awkward_values", exclude=USER_COLUMNS) for server in (sb.prod, sb.staging)]
    assert awkward[0] == awkward[1]
    row = "SELECT text_value, CAST(dt3 AS CHAR), CAST(d AS CHAR), uuid_value, blob_value FROM directus.awkward_values " \
          "WHERE label = 'modes'"
    assert q(sb.prod, row) == q(sb.staging, row) == (
        ("back\\slash, 'single', \"double\"", "0000-00-00 00:00:00.000", "0000-00-00", "short", b"a\\b\0c"),)
    assert checksums(sb.prod, IDENTICAL) == checksums(sb.staging, IDENTICAL)
    assert not again.get("failed") and not again["changed"], again.get("msg") or again["changed_tables"]
    for server in saved:
        q(server, "SET GLOBAL sql_mode = %s", (modes,))
    try:
        back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    finally:
        for server, mode in saved.items():
            q(server, "SET GLOBAL sql_mode = %s", (mode,))
    assert not back.get("failed"), back.get("msg")
    assert checksums(sb.prod) == before


# --------------------------------------------------------------------------- checksum reuse (no-change re-runs)

def com_checksum(server):
    """CHECKSUM TABLE statements the server has run, all sessions together."""
    return int(q(server, "SHOW GLOBAL STATUS LIKE 'Com_checksum'")[0][1])


def run_counting_checksums(sb, run_module, args):
    before = com_checksum(sb.staging), com_checksum(sb.prod)
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    return result, (com_checksum(sb.staging) - before[0], com_checksum(sb.prod) - before[1])


def replaced_tables(result):
    return sorted(t["name"] for t in result["tables"] if t["policy"] == "replace")


# one production-only edit for each replaced table the fixtures build identically on both sides
PROD_EDITS = {
    "directus_collections": "UPDATE directus.directus_collections SET note = 'production only' ORDER BY collection LIMIT 1",
    "directus_folders": "UPDATE directus.directus_folders SET name = CONCAT(name, ' (production)') ORDER BY id LIMIT 1",
    "directus_relations": "UPDATE directus.directus_relations SET one_deselect_action = 'delete' ORDER BY id LIMIT 1",
}


def promote_everything(sb, run_module):
    """A first promotion that copies every replaced table (so every one gets a recorded checksum).

    A table identical on both sides would be left alone and never recorded: edit those on prod first."""
    planned = run_module(MODULE, promote_args(sb), check=True)
    same = [t["name"] for t in planned["tables"] if t["policy"] == "replace" and t["action"] == "unchanged"]
    assert set(same) <= set(PROD_EDITS), same
    for name in same:
        q(sb.prod, PROD_EDITS[name])
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert set(replaced_tables(result)) <= set(result["changed_tables"])
    return result


def state_row(sb, table):
    rows = q(sb.prod, "SELECT source_mark, target_mark, source_table_id, target_table_id FROM "
                      "directus__promote_state.table_state WHERE table_name = %s", (table,))
    return dict(zip(("source_mark", "target_mark", "source_table_id", "target_table_id"), rows[0])) if rows else None


def trx_start(conn):
    """UNIX second the connection's open transaction started (what InnoDB stamps as UPDATE_TIME)."""
    with conn.cursor() as cur:
        cur.execute("SELECT UNIX_TIMESTAMP(trx_started) FROM information_schema.INNODB_TRX "
                    "WHERE trx_mysql_thread_id = CONNECTION_ID()")
        return int(cur.fetchone()[0])


def open_transaction(server, *statements):
    """A root connection of ``server`` in a transaction that ``statements`` ((sql, args) pairs) started,
    and the UNIX second it started; returns after that second is more than a second old."""
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            for sql, args in statements:
                cur.execute(sql, args)
        started = trx_start(conn)
    except BaseException:
        conn.close()
        raise
    time.sleep(1.2)
    return conn, started


def first_article(server):
    return q(server, "SELECT id FROM directus.articles ORDER BY id LIMIT 1")[0][0]


def assert_articles_promoted(sb):
    assert rows_hash(sb.prod, "articles", USER_COLUMNS) == rows_hash(sb.staging, "articles", USER_COLUMNS)


def test_no_change_rerun_reuses_recorded_checksums(fresh, run_module):
    sb = fresh
    first = promote_everything(sb, run_module)
    replaced = replaced_tables(first)
    assert first["checksums"]["reused"] == []
    assert state_row(sb, "articles")["source_mark"] is not None and state_row(sb, "articles")["target_mark"] is not None

    ck, sch, cnt = checksums(sb.prod, method="checksum_table"), schemas(sb.prod), write_counters(sb.prod)
    again, statements = run_counting_checksums(sb, run_module, promote_args(sb))
    assert again["changed"] is False and again["changed_tables"] == [] and again["executed_commands"] == []
    assert again["checksums"]["reused"] == replaced and again["checksums"]["computed"] == []
    assert again["checksums"]["source"]["reused"] == replaced and again["checksums"]["target"]["reused"] == replaced
    # the servers agree: not one CHECKSUM TABLE statement on either side, and nothing written
    assert statements == (0, 0)
    assert_unchanged(sb, ck, sch, cnt)
    # check mode reuses as well
    planned = run_module(MODULE, promote_args(sb), check=True)
    assert planned["changed"] is False and planned["checksums"]["computed"] == []


def test_staging_write_right_after_a_promotion_is_promoted(fresh, run_module):
    sb = fresh
    promote_everything(sb, run_module)
    # same second as the promotion's end (and possibly its mark): UPDATE_TIME is not after the mark, yet it counts
    q(sb.staging, "UPDATE directus.articles SET title = CONCAT(title, ' (same second)') WHERE id = %s", (first_article(sb.staging),))
    again, statements = run_counting_checksums(sb, run_module, promote_args(sb))
    assert again["changed"] is True and again["changed_tables"] == ["articles"]
    assert again["checksums"]["source"]["computed"] == ["articles"]
    assert "source: written since" in again["checksums"]["computed_because"]["articles"]
    assert statements[0] >= 1
    assert_articles_promoted(sb)


def test_production_write_to_a_replaced_table_is_undone(fresh, run_module):
    sb = fresh
    promote_everything(sb, run_module)
    q(sb.prod, "UPDATE directus.articles SET title = 'changed on production' WHERE id = %s", (first_article(sb.prod),))
    again = run_module(MODULE, promote_args(sb))
    assert again["changed_tables"] == ["articles"], again.get("msg")
    assert again["checksums"]["target"]["computed"] == ["articles"]
    assert again["checksums"]["source"]["reused"] == replaced_tables(again)
    assert_articles_promoted(sb)
    # TRUNCATE keeps both UPDATE_TIME and CREATE_TIME: the table id tells
    conn = sb.prod.root_connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        cur.execute("TRUNCATE TABLE directus.tags")
    conn.close()
    again = run_module(MODULE, promote_args(sb))
    assert again["changed_tables"] == ["tags"], again.get("msg")
    assert "another table object" in again["checksums"]["computed_because"]["tags"]
    assert checksums(sb.prod, ["tags"]) == checksums(sb.staging, ["tags"])
    # a write that reaches a replaced table only through ON DELETE SET NULL stamps that table as well
    author = q(sb.prod, "SELECT author FROM directus.articles WHERE author IS NOT NULL LIMIT 1")[0][0]
    q(sb.prod, "DELETE FROM directus.authors WHERE id = %s", (author,))
    again = run_module(MODULE, promote_args(sb))
    assert again["changed_tables"] == ["articles", "authors"], again.get("msg")
    assert "target: written since" in again["checksums"]["computed_because"]["articles"]
    assert_articles_promoted(sb)


def test_source_transaction_spanning_a_promotion_is_not_missed(fresh, run_module):
    """InnoDB stamps UPDATE_TIME with the transaction's START time: an edit that began before a promotion's
    snapshot and commits after it carries an older stamp than a plain 'now' mark."""
    sb = fresh
    promote_everything(sb, run_module)
    editor, started = open_transaction(sb.staging, ("BEGIN", None), (
        "UPDATE directus.articles SET title = 'slow editor' WHERE id = %s", (first_article(sb.staging),)))
    try:
        # a promotion that copies articles (production changed it) while the edit is still open
        q(sb.prod, "UPDATE directus.articles SET title = 'changed on production' WHERE id = %s", (first_article(sb.prod),))
        during = run_module(MODULE, promote_args(sb))
        assert during["changed_tables"] == ["articles"], during.get("msg")
        # the open transaction also kept the source checksums from being reused right after the snapshot
        assert any("write transactions were running on the source" in n for n in during["checksums"]["notes"])
        assert state_row(sb, "articles")["source_mark"] <= started
        editor.commit()
    finally:
        editor.close()  # an open transaction would block the next test's DROP DATABASE
    after = run_module(MODULE, promote_args(sb))
    assert after["changed_tables"] == ["articles"], after.get("msg")
    assert "source: written since" in after["checksums"]["computed_because"]["articles"]
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.articles WHERE title = 'slow editor'")[0][0] == 1
    assert_articles_promoted(sb)


def test_production_transaction_spanning_the_cut_over_is_not_missed(fresh, run_module):
    """A production transaction that started before the swap and writes the new live table after it."""
    sb = fresh
    promote_everything(sb, run_module)
    app, started = open_transaction(
        sb.prod, ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", None), ("BEGIN", None),
        ("SELECT COUNT(*) FROM directus.directus_migrations", None))  # starts it; the promotion leaves that table alone
    try:
        s = sb.staging.root_connect()
        fx.staging_edit(s, DB, seed=11)
        s.close()
        during = run_module(MODULE, promote_args(sb))
        assert "articles" in during["changed_tables"], during.get("msg")
        assert state_row(sb, "articles")["target_mark"] <= started
        with app.cursor() as cur:
            cur.execute("UPDATE directus.articles SET title = 'written by a transaction older than the swap' WHERE id = %s",
                        (first_article(sb.prod),))
        app.commit()
    finally:
        app.close()
    after = run_module(MODULE, promote_args(sb))
    assert after["changed_tables"] == ["articles"], after.get("msg")
    assert "target: written since" in after["checksums"]["computed_because"]["articles"]
    assert_articles_promoted(sb)


def fk_definitions(server):
    return sorted(q(server, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA, "
                            "REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                            "WHERE CONSTRAINT_SCHEMA LIKE 'directus%%'"))


class ReadProber(threading.Thread):
    """Reads a live table of production every 50 ms on its own connection; records the slowest read."""

    def __init__(self, server, table):
        super().__init__(daemon=True)
        self.server, self.table = server, table
        self.stop = threading.Event()
        self.slowest = 0.0
        self.reads = 0

    def run(self):
        conn = self.server.root_connect()
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                with conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM directus.`%s` WHERE 1 = 0" % self.table)
                    cur.fetchall()
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.reads += 1
                time.sleep(0.05)
        finally:
            conn.close()


def production_state(server):
    """What a promotion that gives up must leave exactly as it was (its journal in the state schema aside)."""
    return (checksums(server, method="checksum_table"), [s for s in schemas(server) if not s.endswith("__promote_state")],
            fk_definitions(server))


def reading_transaction(server, table, statement=None):
    """A root connection of ``server`` in an open transaction that has read ``table`` (or run ``statement``), and
    its session id."""
    conn = server.root_connect()
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(statement or "SELECT id FROM directus.`%s` LIMIT 1" % table)
        cur.fetchall()
        cur.execute("SELECT CONNECTION_ID()")
        return conn, cur.fetchone()[0]


@contextlib.contextmanager
def table_held_by_an_idle_transaction(server, table, statement=None):
    """(session id, ReadProber of ``table``) while an idle transaction holds ``table`` (it read it, or ran
    ``statement``); it ends after 20 s at the latest, a safety net for a module that would wait without limit."""
    app, holder = reading_transaction(server, table, statement)
    release = threading.Timer(20, app.rollback)
    prober = ReadProber(server, table)
    release.start()
    prober.start()
    try:
        yield holder, prober
    finally:
        release.cancel()
        prober.stop.set()
        prober.join()
        app.close()


def session_waiting_for_metadata_lock(server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if q(server, "SELECT ID FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock%%'"):
            return True
        time.sleep(0.05)
    return False


def test_a_long_production_transaction_never_stalls_production_behind_the_swap(fresh, run_module):
    """A production session holding a table open (an idle transaction that read it) keeps the RENAME from
    its metadata lock. Waiting for it would queue every new reader of that table behind the RENAME: the
    swap waits a bounded time, retries, then gives up with the session named and nothing changed."""
    sb = fresh
    before = production_state(sb.prod)
    with table_held_by_an_idle_transaction(sb.prod, "articles") as (holder, prober):
        started = time.monotonic()
        result = run_module(MODULE, promote_args(sb, cutover_lock_wait=1, cutover_attempts=2))
        took = time.monotonic() - started
    assert result.get("failed"), "the promotion waited for the transaction and went through"
    assert "metadata lock" in result["msg"] and ("session %d" % holder) in result["msg"], result["msg"]
    assert "production was not changed: checked on a new connection" in result["msg"], result["msg"]
    assert took < 15, took
    assert prober.reads > 10 and prober.slowest < 1.8, (prober.reads, prober.slowest)
    assert production_state(sb.prod) == before


def test_a_rollback_also_gives_up_on_a_held_table_and_changes_nothing(fresh, run_module):
    sb = fresh
    promoted = run_module(MODULE, promote_args(sb))
    assert promoted["changed"] and not promoted.get("failed"), promoted.get("msg")
    before = production_state(sb.prod)
    with table_held_by_an_idle_transaction(sb.prod, "articles"):
        back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True, cutover_lock_wait=1, cutover_attempts=2))
    assert back.get("failed") and "nothing was rolled back" in back["msg"], back.get("msg")
    assert production_state(sb.prod) == before
    again = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert again["changed"] and not again.get("failed"), again.get("msg")


def test_adding_a_custom_user_column_never_stalls_production_behind_it(fresh, run_module):
    """The custom field's column is added to production's live directus_users before the swap: that ALTER
    waits for sessions holding the table the same bounded way, and gives up with nothing swapped."""
    sb = fresh
    s = sb.staging.root_connect()
    fx.add_custom_user_field(s, DB)
    s.close()
    before = production_state(sb.prod)
    with table_held_by_an_idle_transaction(sb.prod, "directus_users") as (holder, prober):
        result = run_module(MODULE, promote_args(sb, cutover_lock_wait=1, cutover_attempts=2))
    assert result.get("failed") and "could not get its metadata locks" in result["msg"], result.get("msg")
    assert ("session %d" % holder) in result["msg"] and "ADD COLUMN" in result["msg"], result["msg"]
    assert prober.reads > 10 and prober.slowest < 1.8, (prober.reads, prober.slowest)
    assert production_state(sb.prod) == before
    again = run_module(MODULE, promote_args(sb))
    assert again["changed"] and not again.get("failed"), again.get("msg")


def test_the_swap_goes_through_once_the_long_transaction_ends(fresh, run_module):
    sb = fresh
    app, _holder = reading_transaction(sb.prod, "articles")

    def end_after_the_first_wait():
        session_waiting_for_metadata_lock(sb.prod)
        time.sleep(1.5)  # the first attempt (1 s) has given up by now
        app.rollback()

    ender = threading.Thread(target=end_after_the_first_wait, daemon=True)
    ender.start()
    try:
        result = run_module(MODULE, promote_args(sb, cutover_lock_wait=1, cutover_attempts=5))
    finally:
        ender.join(60)
        app.close()
    assert not result.get("failed"), result.get("msg")
    waits = [f for f in findings(result, "cutover") if f["status"] == "warning"]
    assert waits and "metadata lock" in waits[0]["message"], result["preflight"]["findings"]
    assert_articles_promoted(sb)


def test_a_rollback_in_a_second_that_already_has_a_rolledback_schema_takes_the_next_number(fresh, run_module):
    sb = fresh
    before = checksums(sb.prod)
    assert run_module(MODULE, promote_args(sb))["changed"] is True
    # schema names carry whole seconds: occupy the next few seconds' names as a rollback moments ago would have
    start = datetime.datetime.now(datetime.timezone.utc)
    taken = ["directus__rolledback_%s" % (start + datetime.timedelta(seconds=i)).strftime("%Y%m%dT%H%M%S") for i in range(6)]
    for name in taken:
        q(sb.prod, "CREATE DATABASE `%s`" % name)
    try:
        back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True, keep_backups=10))
        assert not back.get("failed"), back.get("msg")
        assert back["backup_schema"] in [name + "_2" for name in taken]
        assert checksums(sb.prod) == before
    finally:
        for name in schemas(sb.prod):
            if name.startswith("directus__rolledback_"):
                q(sb.prod, "DROP DATABASE `%s`" % name)


def test_after_a_rollback_checksums_are_computed(fresh, run_module):
    sb = fresh
    promote_everything(sb, run_module)
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert back["changed"] is True, back.get("msg")
    again, statements = run_counting_checksums(sb, run_module, promote_args(sb))
    assert again["changed"] is True
    assert again["checksums"]["reused"] == [] and again["checksums"]["computed"] == replaced_tables(again)
    assert statements[0] >= 1 and statements[1] >= 1
    assert checksums(sb.prod, IDENTICAL) == checksums(sb.staging, IDENTICAL)
    assert_articles_promoted(sb)


def test_reuse_checksums_false_computes_every_checksum_and_records_nothing(fresh, run_module):
    sb = fresh
    promote_everything(sb, run_module)
    again, statements = run_counting_checksums(sb, run_module, promote_args(sb, reuse_checksums=False))
    assert again["changed"] is False
    assert again["checksums"]["reused"] == [] and again["checksums"]["computed"] == replaced_tables(again)
    assert again["checksums"]["notes"] == ["reuse_checksums=false: every checksum computed"]
    assert statements[0] >= 1 and statements[1] >= 1
    # a promotion with reuse off records no marks: the next run computes what it copied
    s = sb.staging.root_connect()
    fx.staging_edit(s, DB, seed=5)
    s.close()
    written = run_module(MODULE, promote_args(sb, reuse_checksums=False))
    assert written["changed_tables"] == ["articles", "directus_permissions"], written.get("msg")
    assert state_row(sb, "articles")["source_mark"] is None
    after = run_module(MODULE, promote_args(sb))
    assert after["changed"] is False
    because = after["checksums"]["computed_because"]
    assert "no recorded ident" in because["articles"] and "no recorded ident" in because["directus_permissions"]
    # articles_tags was not copied, but its foreign keys to articles were re-created (ALTER TABLE): it is not
    # recorded again by a run that did not copy it, so from now on it is computed until a promotion copies it
    assert sorted(after["checksums"]["computed"]) == ["articles", "articles_tags", "directus_permissions"]
    assert "target: created, renamed or altered since" in because["articles_tags"]


def test_state_table_of_an_older_release_is_extended_only_by_a_writing_run(fresh, run_module):
    sb = fresh
    promote_everything(sb, run_module)
    q(sb.prod, "ALTER TABLE directus__promote_state.table_state DROP COLUMN source_ident, DROP COLUMN source_mark, "
               "DROP COLUMN source_create_time, DROP COLUMN source_table_id, DROP COLUMN target_ident, DROP COLUMN target_mark, "
               "DROP COLUMN target_create_time, DROP COLUMN target_table_id")
    cnt = write_counters(sb.prod)
    again = run_module(MODULE, promote_args(sb))
    assert again["changed"] is False and again["checksums"]["reused"] == [], again.get("msg")
    assert write_counters(sb.prod) == cnt
    s = sb.staging.root_connect()
    fx.staging_edit(s, DB, seed=6)
    s.close()
    written = run_module(MODULE, promote_args(sb))
    assert written["changed"] is True, written.get("msg")
    assert state_row(sb, "articles")["target_mark"] is not None
    after = run_module(MODULE, promote_args(sb))
    assert after["changed"] is False and "articles" in after["checksums"]["reused"]


# --------------------------------------------------------------------------- recycling the prunable backup

def edit_and_promote(sb, run_module, seed, **extra):
    conn = sb.staging.root_connect()
    try:
        edit = fx.staging_edit(conn, DB, seed=seed)
    finally:
        conn.close()
    result = run_module(MODULE, promote_args(sb, **extra))
    assert result.get("changed") is True and not result.get("failed"), result.get("msg")
    return edit, result


def recycled_tables(result):
    return {r["table"]: r for r in result["recycled"]}


def expected_user_columns(sb):
    """articles' user columns as a promotion writes them: staging users mapped by e-mail, else NULL."""
    by_email = dict(q(sb.prod, "SELECT email, id FROM directus.directus_users"))
    mapping = {uid: by_email.get(email) for uid, email in q(sb.staging, "SELECT id, email FROM directus.directus_users")}
    rows = q(sb.staging, "SELECT id, user_created, user_updated FROM directus.articles")
    return sorted((aid, mapping.get(created), mapping.get(updated)) for aid, created, updated in rows)


def cross_schema_fks(server):
    return q(server, "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA FROM "
                     "information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND "
                     "TABLE_SCHEMA LIKE 'directus%%' AND TABLE_SCHEMA <> REFERENCED_TABLE_SCHEMA")


def test_backup_that_pruning_would_drop_is_recycled_into_the_shadow_copy(fresh, run_module):
    sb = fresh
    args = dict(keep_backups=2, recycle_min_rows=0)
    first = run_module(MODULE, promote_args(sb, **args))
    assert first["changed"] is True and first["recycled"] == []  # no backup yet
    edits = []
    edit, second = edit_and_promote(sb, run_module, 11, **args)
    edits.append(edit)
    assert second["recycled"] == []  # the only backup is the rollback target: never a donor
    edit, third = edit_and_promote(sb, run_module, 12, **args)
    edits.append(edit)
    # that donor holds production's own original articles: most rows differ, so they are copied whole
    assert "articles" not in recycled_tables(third)
    assert any(c.startswith("articles: copied whole") and first["backup_schema"] in c for c in third["executed_commands"])
    assert first["backup_schema"] not in schemas(sb.prod)
    before = rows_hash(sb.prod, "articles")
    donor = second["backup_schema"]
    edit, fourth = edit_and_promote(sb, run_module, 13, **args)
    edits.append(edit)
    recycled = recycled_tables(fourth)
    assert set(recycled) == {"articles", "directus_permissions"}, fourth["recycled"]
    assert {r["from_schema"] for r in recycled.values()} == {donor}
    # the donor holds the articles of the first promotion: three editor sessions differ from it
    updated = set().union(*(e["updated"] for e in edits))
    assert recycled["articles"]["deleted"] == len(updated)
    assert recycled["articles"]["inserted"] == len(updated) + len(edits)
    assert recycled["articles"]["rows"] == q(sb.staging, "SELECT COUNT(*) FROM directus.articles")[0][0]
    assert not [c for c in fourth["executed_commands"] if c.startswith("INSERT INTO") and "articles" in c.split(":")[0]]
    # what a full copy writes: content byte-identical, user ids mapped, same table definitions
    assert rows_hash(sb.prod, "articles", USER_COLUMNS) == rows_hash(sb.staging, "articles", USER_COLUMNS)
    assert sorted(q(sb.prod, "SELECT id, user_created, user_updated FROM directus.articles")) == expected_user_columns(sb)
    assert checksums(sb.prod, ["directus_permissions"], method="checksum_table") == \
        checksums(sb.staging, ["directus_permissions"], method="checksum_table")
    for table in ("articles", "directus_permissions"):
        assert q(sb.prod, "SHOW CREATE TABLE directus.`%s`" % table)[0][1] == \
            q(sb.staging, "SHOW CREATE TABLE directus.`%s`" % table)[0][1]
    conn = sb.prod.root_connect()
    assert fx.fk_violations(conn, DB) == {}
    conn.close()
    assert list(cross_schema_fks(sb.prod)) == []
    # the donor is gone, the previous live tables are the newest backup, and a re-run changes nothing
    backups = [x for x in schemas(sb.prod) if "__backup_" in x]
    assert backups == sorted([third["backup_schema"], fourth["backup_schema"]])
    again = run_module(MODULE, promote_args(sb, **args))
    assert again["changed"] is False, again["changed_tables"]
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed"), back.get("msg")
    assert rows_hash(sb.prod, "articles") == before


def test_failure_after_taking_from_the_donor_drops_only_the_donor(fresh, run_module):
    sb = fresh
    args = dict(keep_backups=2, recycle_min_rows=0)
    run_module(MODULE, promote_args(sb, **args))
    _e, second = edit_and_promote(sb, run_module, 21, **args)
    _e, third = edit_and_promote(sb, run_module, 22, **args)
    donor, newest = second["backup_schema"], third["backup_schema"]
    # a trigger cannot move to another schema: RENAME TABLE fails after the donor's FKs were dropped
    q(sb.prod, "CREATE TRIGGER `%s`.articles_stamp BEFORE INSERT ON `%s`.articles FOR EACH ROW SET NEW.sort = NEW.sort"
      % (donor, donor))
    live = checksums(sb.prod, method="checksum_table")
    kept = {t: rows_hash_in(sb.prod, newest, t) for t in ("articles", "directus_permissions")}
    before = set(schemas(sb.prod))
    conn = sb.staging.root_connect()
    fx.staging_edit(conn, DB, seed=23)
    conn.close()
    failed = run_module(MODULE, promote_args(sb, **args))
    assert failed.get("failed") is True and "Trigger in wrong schema" in failed["msg"], failed.get("msg")
    assert "production was not changed: checked on a new connection" in failed["msg"], failed["msg"]
    assert checksums(sb.prod, method="checksum_table") == live
    assert set(schemas(sb.prod)) == before - {donor}
    assert {t: rows_hash_in(sb.prod, newest, t) for t in kept} == kept
    again = run_module(MODULE, promote_args(sb, **args))
    assert again["changed"] is True and again["recycled"] == [], again.get("msg")
    assert rows_hash(sb.prod, "articles", USER_COLUMNS) == rows_hash(sb.staging, "articles", USER_COLUMNS)


def rows_hash_in(server, schema, table):
    h = hashlib.sha256()
    for row in q(server, "SELECT * FROM `%s`.`%s` ORDER BY 1" % (schema, table)):
        h.update(repr(row).encode())
    return h.hexdigest()


def test_recycling_with_rows_too_long_for_the_source_to_build(fresh, run_module):
    """A row whose literal the source cannot build is inserted with client-built literals; a row too
    long even to digest makes its table copied whole (never compared as if it were NULL)."""
    sb = fresh
    args = dict(keep_backups=2, recycle_min_rows=0)
    touch = "UPDATE directus.awkward_values SET label = CONCAT(label, '+') ORDER BY id LIMIT 1"
    run_module(MODULE, promote_args(sb, **args))
    for _round in range(2):  # awkward_values changes in each promotion, so each backup holds it
        q(sb.staging, touch)
        assert run_module(MODULE, promote_args(sb, **args))["changed"] is True
    # 700 KB: its hex literal (1.4 MB) is longer than max_allowed_packet, the row's values are not
    q(sb.staging, "UPDATE directus.awkward_values SET blob_value = %s ORDER BY id DESC LIMIT 1", (bytes(range(256)) * 2800,))
    recycled = run_with_1mb_source_packet(sb, run_module, promote_args(sb, **args))
    assert not recycled.get("failed"), recycled.get("msg")
    assert recycled_tables(recycled)["awkward_values"]["inserted"] == 2, recycled["recycled"]
    assert rows_hash(sb.prod, "awkward_values", USER_COLUMNS) == rows_hash(sb.staging, "awkward_values", USER_COLUMNS)
    # 1.5 MB: longer than max_allowed_packet even as plain values
    q(sb.staging, touch)
    assert run_module(MODULE, promote_args(sb, **args))["changed"] is True
    before = checksums(sb.prod, method="checksum_table")
    q(sb.staging, "UPDATE directus.awkward_values SET blob_value = %s ORDER BY id DESC LIMIT 1", (bytes(range(256)) * 6000,))
    whole = run_with_1mb_source_packet(sb, run_module, promote_args(sb, **args))
    # the table falls back to a whole copy, which refuses such rows when user ids are mapped while reading
    assert "awkward_values: copied whole (a row is longer than max_allowed_packet to digest)" in whole["executed_commands"]
    assert whole.get("failed") is True and "raise the source's max_allowed_packet" in whole["msg"], whole.get("msg")
    assert checksums(sb.prod, method="checksum_table") == before


def test_killed_source_connection_while_comparing_rows_keeps_the_donor(sandbox, run_module):
    sb = sandbox
    build(sb, staging=dict(content_rows=40000))
    args = dict(keep_backups=2, recycle_min_rows=0)
    run_module(MODULE, promote_args(sb, **args))
    for seed in (41, 42):
        edit_and_promote(sb, run_module, seed, **args)
    conn = sb.staging.root_connect()
    fx.staging_edit(conn, DB, seed=43)
    conn.close()
    before, sch = checksums(sb.prod, method="checksum_table"), schemas(sb.prod)
    killed, thread = kill_when_seen(sb.staging, "SELECT CONCAT(UNHEX(SHA2(%%FROM `directus`.`articles` ORDER BY%%")
    result = run_module(MODULE, promote_args(sb, **args))
    thread.join()
    assert killed, "the row digests of articles were never seen on the source"
    assert result.get("failed") is True
    assert result["msg"].startswith("source") and "not changed" in result["msg"], result["msg"]
    # nothing was taken from the donor yet: every schema, the donor included, is as before
    assert checksums(sb.prod, method="checksum_table") == before
    assert schemas(sb.prod) == sch
    again = run_module(MODULE, promote_args(sb, **args))
    assert not again.get("failed"), again.get("msg")
    assert "articles" in recycled_tables(again)
    assert rows_hash(sb.prod, "articles", USER_COLUMNS) == rows_hash(sb.staging, "articles", USER_COLUMNS)


def test_a_write_transaction_on_the_live_parent_of_recycled_tables_never_stalls_production(fresh, run_module):
    """Recycled articles get the source's FKs, two of them to production's live directus_users, and production
    has a write transaction open on directus_users. Measured here (MariaDB 10.11): adding those FKs to the
    shadow copy (FK checks off) does not wait for it; swapping articles in does. The swap waits the bounded
    way, gives up with the session named, and drops the shadow copy with the recycled tables in it. The live
    schema is untouched, readers of directus_users never queue, and the next promotion goes through."""
    sb = fresh
    args = dict(keep_backups=2, recycle_min_rows=0)
    assert run_module(MODULE, promote_args(sb, **args))["changed"]
    edit_and_promote(sb, run_module, 21, **args)
    _edit, third = edit_and_promote(sb, run_module, 22, **args)
    assert not third.get("failed"), third.get("msg")
    conn = sb.staging.root_connect()
    try:
        fx.staging_edit(conn, DB, seed=23)
    finally:
        conn.close()
    live = (checksums(sb.prod, method="checksum_table"),
            [fk for fk in fk_definitions(sb.prod) if fk[0] == DB])
    # an UPDATE that changes nothing still holds directus_users for writing until the transaction ends
    with table_held_by_an_idle_transaction(sb.prod, "directus_users",
                                           "UPDATE directus.directus_users SET email = email") as (holder, prober):
        result = run_module(MODULE, promote_args(sb, cutover_lock_wait=1, cutover_attempts=2, **args))
    assert result.get("failed"), "the promotion waited for the write transaction and went through"
    assert "could not get its metadata locks" in result["msg"] and ("session %d" % holder) in result["msg"], result["msg"]
    assert "the swap of the live tables" in result["msg"] and "production was not changed" in result["msg"], result["msg"]
    assert {r["table"] for r in result["recycled"]} >= {"articles"}, result["recycled"]
    assert any("ADD CONSTRAINT `articles_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES "
               "`directus`.`directus_users`" in c for c in result["executed_commands"])
    assert prober.reads > 10 and prober.slowest < 1.8, (prober.reads, prober.slowest)
    assert (checksums(sb.prod, method="checksum_table"), [fk for fk in fk_definitions(sb.prod) if fk[0] == DB]) == live
    again = run_module(MODULE, promote_args(sb, **args))
    assert again["changed"] and not again.get("failed"), again.get("msg")


def per_user_rows(server):
    """Production's own rows of the merged tables (keys of re-keyed presets aside)."""
    access = q(server, "SELECT id, user, policy, sort FROM directus.directus_access WHERE user IS NOT NULL ORDER BY id")
    presets = q(server, "SELECT bookmark, user, collection, search, layout, CAST(layout_query AS CHAR) FROM "
                        "directus.directus_presets WHERE user IS NOT NULL ORDER BY user, collection, search")
    return access, presets


def test_per_user_rows_production_writes_during_a_promotion_survive_the_swap(fresh, run_module, tmp_path):
    """directus_access and directus_presets are merged: production's per-user rows go into the shadow copy while it
    is built. Rows a production user adds, changes or deletes after that and before the swap are caught up from
    the backup right after it (the module waits after the copy here while the test writes)."""
    import json
    import subprocess
    import sys

    from sandbox.module_runner import MODULE_PACKAGE, module_env

    sb = fresh
    marker = tmp_path / "copied"
    payload = dict(promote_args(sb), _ansible_check_mode=False, _ansible_diff=False, _ansible_verbosity=0)
    proc = subprocess.Popen([sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, MODULE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=module_env({"CASPER_DIRECTUS_PROMOTE_FAULT": "copied:wait:%s" % marker}))
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc.stdin.close()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the promotion never finished its copy"
        time.sleep(0.05)
    editor = q(sb.prod, "SELECT id FROM directus.directus_users WHERE email = 'editor@example.test'")[0][0]
    gone = q(sb.prod, "SELECT id FROM directus.directus_access WHERE user IS NOT NULL ORDER BY id LIMIT 1")[0][0]
    policy = q(sb.prod, "SELECT policy FROM directus.directus_access WHERE id = %s", (gone,))[0][0]
    q(sb.prod, "DELETE FROM directus.directus_access WHERE id = %s", (gone,))
    q(sb.prod, "INSERT INTO directus.directus_access (id, user, policy, sort) VALUES "
               "('00000000-0000-4000-8000-0000000000aa', %s, %s, 7)", (editor, policy))
    q(sb.prod, "UPDATE directus.directus_presets SET search = 'changed during the promotion' WHERE user = %s", (editor,))
    # production's next preset id is one the promoted presets use too: it collides, and gets a new key
    q(sb.prod, "INSERT INTO directus.directus_presets (bookmark, user, collection, layout) VALUES "
               "('added during the promotion', %s, 'tags', 'tabular')", (editor,))
    expected = per_user_rows(sb.prod)
    marker.unlink()
    result = json.loads(proc.stdout.read())
    proc.wait(60)
    assert not result.get("failed"), result.get("msg")
    assert per_user_rows(sb.prod) == expected
    assert [c for c in result["executed_commands"] if "caught up" in c and "directus_presets" in c]
    conn = sb.prod.root_connect()
    assert fx.fk_violations(conn, DB) == {}
    conn.close()
    # a rollback brings back production's tables as they were at the swap, these rows included
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed"), back.get("msg")
    assert per_user_rows(sb.prod) == expected


@pytest.fixture
def canary(sandbox):
    """A function on production that records each call (what an expression slipped into a row would run)."""
    q(sandbox.prod, "CREATE DATABASE IF NOT EXISTS canary")
    q(sandbox.prod, "CREATE TABLE IF NOT EXISTS canary.calls (at DATETIME(6) NOT NULL)")
    q(sandbox.prod, "DELETE FROM canary.calls")
    q(sandbox.prod, "DROP FUNCTION IF EXISTS canary.pwned")
    q(sandbox.prod, "CREATE FUNCTION canary.pwned() RETURNS VARCHAR(8) MODIFIES SQL DATA "
                    "BEGIN INSERT INTO canary.calls VALUES (NOW(6)); RETURN 'pwned'; END")
    try:
        yield lambda: q(sandbox.prod, "SELECT COUNT(*) FROM canary.calls")[0][0]
    finally:
        q(sandbox.prod, "DROP DATABASE canary")


def test_a_source_that_answers_an_expression_instead_of_a_row_value_is_refused(fresh, run_module, canary):
    """A compromised staging server (or anyone on an unencrypted link) answers the copy's row literal with an
    expression: the module refuses the row before production's server sees it, and nothing changes."""
    from sandbox.tcp_rewrite import RewritingProxy

    sb = fresh
    marker = "Z" * 40
    q(sb.staging, "UPDATE directus.articles SET title = %s ORDER BY id LIMIT 1", (marker,))
    quoted = ("'%s'" % marker).encode()
    expression = b"(SELECT canary.pwned()" + b" " * (len(quoted) - 23) + b")"
    proxy = RewritingProxy(sb.staging.host, sb.staging.port, quoted, expression)
    before = production_state(sb.prod)
    try:
        result = run_module(MODULE, promote_args(sb, source=conn_args(sb.staging, port=proxy.port)))
    finally:
        proxy.close()
    assert proxy.rewrites >= 1, "the source's answer was never rewritten"
    assert canary() == 0, "production's server ran an expression the source sent"
    assert result.get("failed") and "not a plain row of values" in result["msg"], result.get("msg")
    assert result["msg"].startswith("source:") and "production was not changed" in result["msg"], result["msg"]
    assert production_state(sb.prod) == before


# every character str.splitlines() splits on besides \n and \r: MariaDB leaves them as they are in a string
SPLITTERS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85"]


def column_info(server, table):
    return {r[0]: r[1:] for r in q(server, "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT, COLUMN_COMMENT FROM "
                                           "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                                   (DB, table))}


def test_hostile_comments_and_defaults_of_custom_user_fields_stay_data(fresh, run_module):
    """Staging declares custom fields on the kept directus_users whose comments and defaults hold line-splitting
    characters followed by DDL. Production gets exactly those columns, with exactly those comments and defaults,
    and nothing else: no fake column, no dropped e-mail."""
    sb = fresh
    fields = []
    for n, splitter in enumerate(SPLITTERS):
        hostile = "x%s`pwn%d` int, DROP COLUMN `email` #" % (splitter, n)
        name = "custom_%d" % n
        q(sb.staging, "ALTER TABLE directus.directus_users ADD COLUMN `%s` varchar(100) DEFAULT %%s COMMENT %%s" % name,
          (hostile, hostile))
        fields += [name, "pwn%d" % n]
    for field in fields:
        q(sb.staging, "INSERT INTO directus.directus_fields (collection, field, readonly, hidden, width) VALUES "
                      "('directus_users', %s, 0, 0, 'full')", (field,))
    emails = q(sb.prod, "SELECT id, email FROM directus.directus_users ORDER BY id")
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    staged, live = column_info(sb.staging, "directus_users"), column_info(sb.prod, "directus_users")
    assert sorted(c for c in live if c.startswith(("custom_", "pwn"))) == ["custom_%d" % n for n in range(len(SPLITTERS))]
    assert all(live[c] == staged[c] for c in live if c.startswith("custom_"))
    assert q(sb.prod, "SELECT id, email FROM directus.directus_users ORDER BY id") == emails
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed") and again["changed"] is False, (again.get("msg"), again.get("changed_tables"))


def test_references_in_a_comment_is_text(fresh, run_module):
    """A promoted column's comment that mentions REFERENCES: copied as it is, and a re-run sees nothing to do."""
    sb = fresh
    q(sb.staging, "ALTER TABLE directus.tags MODIFY `color` varchar(255) DEFAULT NULL "
                  "COMMENT 'shown next to REFERENCES `directus_users` (`id`) in lists'")
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed") and "tags" in result["changed_tables"], result.get("msg")
    assert column_info(sb.prod, "tags")["color"] == column_info(sb.staging, "tags")["color"]
    assert q(sb.prod, "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
                      "AND TABLE_NAME = 'tags'", (DB,))[0][0] == 0
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed") and again["changed"] is False, again.get("changed_tables")


def test_names_with_backticks_quotes_and_unicode_are_promoted_and_rolled_back(fresh, run_module):
    sb = fresh
    parent, child = "pa`rent 'ü\"\u2028", "chi`ld 'ß\" #"
    key, ref = "k`ey 'ñ\"", "re`f -- x"
    qp, qc, qk, qr = ("`%s`" % n.replace("`", "``") for n in (parent, child, key, ref))
    q(sb.staging, "CREATE TABLE directus.%s (%s int NOT NULL PRIMARY KEY, `label` varchar(20) COMMENT 'it''s \u2028 `x`') "
                  "ENGINE=InnoDB" % (qp, qk))
    q(sb.staging, "CREATE TABLE directus.%s (`id` int NOT NULL PRIMARY KEY, %s int NULL, CONSTRAINT %s FOREIGN KEY (%s) "
                  "REFERENCES %s (%s) ON DELETE SET NULL) ENGINE=InnoDB" % (qc, qr, "`f``k 'x\"`", qr, qp, qk))
    q(sb.staging, "INSERT INTO directus.%s VALUES (1, 'one'), (2, 'two')" % qp)
    q(sb.staging, "INSERT INTO directus.%s VALUES (10, 1), (11, NULL)" % qc)
    before = checksums(sb.prod)
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed"), result.get("msg")
    assert checksums(sb.prod, [parent, child]) == checksums(sb.staging, [parent, child])
    fks = q(sb.prod, "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DELETE_RULE FROM "
                     "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
            (DB, child))
    assert fks == (("f`k 'x\"", parent, "SET NULL"),)
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed") and again["changed"] is False, again.get("changed_tables")
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed"), back.get("msg")
    assert checksums(sb.prod) == before


def prod_only_avatar(sb):
    """A production user's avatar: a file only production has (a row copied from one of its files, new id)."""
    file_id = "0000aaaa-0000-4000-8000-00000000a7a7"
    cols = [r[0] for r in q(sb.prod, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                                     "TABLE_NAME = 'directus_files' AND COLUMN_NAME NOT IN ('id', 'filename_disk') "
                                     "ORDER BY ORDINAL_POSITION", (DB,))]
    select = ", ".join("`%s`" % c for c in cols)
    q(sb.prod, "INSERT INTO directus.directus_files (id, filename_disk, %s) SELECT %%s, %%s, %s FROM "
               "directus.directus_files ORDER BY id LIMIT 1" % (select, select), (file_id, "prod-avatar.jpg"))
    user = q(sb.prod, "SELECT id FROM directus.directus_users WHERE email = 'admin@example.test'")[0][0]
    q(sb.prod, "UPDATE directus.directus_users SET avatar = %s WHERE id = %s", (file_id, user))
    return file_id, user


def test_production_files_that_kept_rows_reference_are_kept(fresh, run_module):
    sb = fresh
    file_id, user = prod_only_avatar(sb)
    row = q(sb.prod, "SELECT * FROM directus.directus_files WHERE id = %s", (file_id,))
    planned = run_module(MODULE, promote_args(sb), check=True)
    assert planned["kept_files"] == [{"id": file_id, "filename_disk": "prod-avatar.jpg", "storage": row[0][1]}] or \
        [f["filename_disk"] for f in planned["kept_files"]] == ["prod-avatar.jpg"], planned.get("kept_files")
    result = run_module(MODULE, promote_args(sb))
    assert not result.get("failed") and [f["id"] for f in result["kept_files"]] == [file_id], result.get("msg")
    assert q(sb.prod, "SELECT avatar FROM directus.directus_users WHERE id = %s", (user,))[0][0] == file_id
    assert q(sb.prod, "SELECT * FROM directus.directus_files WHERE id = %s", (file_id,)) == row

    # every other file is staging's
    def ids(server):
        return [r[0] for r in q(server, "SELECT id FROM directus.directus_files WHERE id <> %s ORDER BY id", (file_id,))]

    assert ids(sb.prod) == ids(sb.staging)
    conn = sb.prod.root_connect()
    assert fx.fk_violations(conn, DB) == {}
    conn.close()
    again = run_module(MODULE, promote_args(sb))
    assert not again.get("failed") and again["changed"] is False, again.get("changed_tables")
    back = run_module(MODULE, dict(target=conn_args(sb.prod), rollback=True))
    assert not back.get("failed") and q(sb.prod, "SELECT * FROM directus.directus_files WHERE id = %s", (file_id,)) == row


def test_without_keep_referenced_files_the_reference_is_set_to_null(fresh, run_module):
    sb = fresh
    file_id, user = prod_only_avatar(sb)
    result = run_module(MODULE, promote_args(sb, keep_referenced_files=False))
    assert not result.get("failed") and "kept_files" not in result, result.get("msg")
    assert q(sb.prod, "SELECT avatar FROM directus.directus_users WHERE id = %s", (user,))[0][0] is None
    assert q(sb.prod, "SELECT COUNT(*) FROM directus.directus_files WHERE id = %s", (file_id,))[0][0] == 0
