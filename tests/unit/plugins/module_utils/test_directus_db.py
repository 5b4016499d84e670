# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning functions of directus_db_replicate (no server needed)."""

from __future__ import annotations

import random

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as plan

SRC = ["articles", "directus_access", "directus_presets", "directus_roles", "directus_users", "directus_settings",
       "directus_oauth_google", "staging_only"]
TGT = ["articles", "directus_access", "directus_presets", "directus_roles", "directus_users", "directus_settings",
       "legacy_prod_table", "directus_sessions"]


def classify(**kw):
    args = dict(keep=plan.DEFAULT_KEEP_TABLES, merge_spec=plan.parse_merge_spec(plan.DEFAULT_MERGE_TABLES),
                replace=None, exclude=[])
    args.update(kw)
    return plan.classify_tables(SRC, TGT, **args)


def test_default_policy_replaces_keeps_merges_and_drops():
    actions, findings = classify()
    assert actions["articles"] == "replace"
    assert actions["staging_only"] == "replace"
    assert actions["directus_roles"] == "replace"
    assert actions["directus_users"] == "keep"
    assert actions["directus_settings"] == "keep"
    assert actions["directus_sessions"] == "keep"
    assert actions["directus_access"] == "merge"
    assert actions["directus_presets"] == "merge"
    assert actions["legacy_prod_table"] == "drop"
    # glob keep pattern, table only on the source: kept (not created) and reported
    assert actions["directus_oauth_google"] == "keep"
    assert [f["check"] for f in findings] == ["kept_table_missing"]


def test_exclude_wins_and_explicit_replace_leaves_others_alone():
    actions, _findings = classify(exclude=["legacy_*"], replace=["articles"])
    assert actions["legacy_prod_table"] == "exclude"
    assert actions["articles"] == "replace"
    assert actions["staging_only"] == "keep"
    assert actions["directus_roles"] == "keep"


def test_merge_spec_with_custom_column():
    spec = plan.parse_merge_spec(["directus_presets", "my_prefs:owner"])
    assert spec == {"directus_presets": "user", "my_prefs": "owner"}
    assert plan.merge_column("my_prefs", spec) == "owner"
    assert plan.merge_column("articles", spec) is None
    with pytest.raises(plan.PlanError):
        plan.parse_merge_spec([":user"])


def test_same_database_uses_uuid_or_host_port_datadir():
    a = {"hostname": "db", "port": 3306, "datadir": "/var/lib/mysql/", "server_uuid": None, "database": "directus"}
    assert plan.same_database(a, dict(a))
    assert not plan.same_database(a, dict(a, database="other"))
    assert not plan.same_database(a, dict(a, port=3307))
    assert not plan.same_database(a, dict(a, datadir="/srv/db/"))
    # MySQL: server_uuid decides even when host names match
    assert not plan.same_database(dict(a, server_uuid="u1"), dict(a, server_uuid="u2"))
    assert plan.same_database(dict(a, server_uuid="u1", hostname="x"), dict(a, server_uuid="u1", hostname="y"))


def test_migrations_mismatch_is_an_error_unless_overridden():
    ok = plan.compare_migrations(["1", "2"], ["2", "1"])
    assert ok["status"] == "ok"
    bad = plan.compare_migrations(["1", "2", "3"], ["1", "2", "9"])
    assert bad["status"] == "error"
    assert bad["only_source"] == ["3"] and bad["only_target"] == ["9"]
    assert plan.compare_migrations(["1"], ["2"], required=False)["status"] == "warning"


def test_role_remap_by_name_and_refusal_list():
    refs = {"prod-admin": [("directus_users", "role", 2)], "prod-editor": [("directus_users", "role", 5)],
            "shared": [("directus_users", "role", 1)]}
    tgt = {"prod-admin": "Administrator", "prod-editor": "Editor", "shared": "Reader"}
    src = {"stg-admin": "Administrator", "shared": "Reader", "stg-x": "Other"}
    mapping, findings = plan.plan_id_remap("role", refs, tgt, src, "name")
    assert mapping == {"prod-admin": "stg-admin"}
    assert findings[0]["status"] == "error"
    assert "Editor" in findings[0]["message"] and "5 directus_users.role" in findings[0]["message"]
    # everything matched -> 'changed' with the mapping
    del refs["prod-editor"]
    mapping, findings = plan.plan_id_remap("role", refs, tgt, src, "name")
    assert mapping == {"prod-admin": "stg-admin"} and findings[0]["status"] == "changed"
    # id mode refuses instead of renaming
    mapping, findings = plan.plan_id_remap("role", refs, tgt, src, "id")
    assert mapping == {} and findings[0]["status"] == "error"


def test_role_remap_refuses_ambiguous_names():
    mapping, findings = plan.plan_id_remap("role", {"t": [("directus_users", "role", 1)]}, {"t": "Admin"},
                                           {"a": "Admin", "b": "Admin"}, "name")
    assert mapping == {}
    assert "several promoted roles" in findings[0]["message"]


def test_admins_losing_access():
    admins = [("u1", "admin@prod", "prod-admin"), ("u2", "boss@prod", "prod-boss")]
    role_map = {"prod-admin": "stg-admin", "prod-boss": "stg-reader"}
    src_access = [("stg-admin", "pol-admin"), ("stg-reader", "pol-read")]
    policies = {"pol-admin": True, "pol-read": False}
    assert plan.admins_losing_access(admins, role_map, {}, src_access, {}, {}, policies) == ["boss@prod"]
    # a kept user-level access row to the admin policy keeps the admin in
    assert plan.admins_losing_access(admins, role_map, {}, src_access, {"u2": ["pol-admin"]}, {}, policies) == []
    # Directus 10: admin flag on the role
    assert plan.admins_losing_access(admins, role_map, {"stg-admin": True, "stg-reader": True}, [], {}, {}, {}) == []


def test_user_map_by_email_null_and_same_id():
    src = {"s1": "Editor@Example.test", "s2": "gone@example.test", "same": "x@example.test", "s3": None}
    tgt = {"t1": "editor@example.test", "same": "x@example.test"}
    assert plan.plan_user_map(src, tgt, "map_email") == {"s1": "t1", "s2": None, "s3": None}
    assert plan.plan_user_map(src, tgt, "null") == {"s1": None, "s2": None, "s3": None}


def test_user_ref_columns_from_fks_and_relations():
    fks = [("articles", "user_created", "directus_users", "id"), ("articles", "author", "authors", "id"),
           ("directus_users", "role", "directus_roles", "id"), ("notes", "owner", "directus_users", "id")]
    rel = [("articles", "reviewer", "directus_users"), ("articles", "alias_field", "directus_users")]
    cols = {"articles": {"user_created", "reviewer", "author"}}
    got = plan.user_ref_columns(fks, rel, {"articles"}, cols)
    assert got == [("articles", "reviewer"), ("articles", "user_created")]


def test_user_ref_summary_counts_and_fail_mode():
    counts = {("articles", "user_created"): {"s1": 3, "s2": 2}}
    mapping = {"s1": "t1", "s2": None}
    mapped, nulled, findings = plan.user_ref_summary(counts, mapping, "map_email")
    assert (mapped, nulled) == (3, 2) and findings[0]["status"] == "changed"
    _m, _n, findings = plan.user_ref_summary(counts, mapping, "fail")
    assert findings[0]["status"] == "error" and "articles.user_created: 2 row(s)" in findings[0]["message"]
    assert plan.user_ref_summary({}, mapping, "fail")[2][0]["status"] == "ok"


def test_replace_unchanged_by_checksum_or_recorded_state():
    assert plan.replace_unchanged("1", "1", None, None)
    assert not plan.replace_unchanged("1", None, None, None)
    assert not plan.replace_unchanged("1", "2", None, None)
    state = {"source_checksum": "1", "target_checksum": "2", "fingerprint": "fp"}
    assert plan.replace_unchanged("1", "2", state, "fp")
    assert not plan.replace_unchanged("1", "2", state, "other-mapping")
    assert not plan.replace_unchanged("1", "3", state, "fp")  # target edited since
    assert not plan.replace_unchanged("5", "2", state, "fp")  # source edited since


FK_ROWS = [
    # schema, table, name, column, pos, ref_schema, ref_table, ref_column, upd, del
    ("live", "directus_users", "users_role", "role", 1, "live", "directus_roles", "id", "RESTRICT", "SET NULL"),
    ("live", "directus_permissions", "perm_policy", "policy", 1, "live", "directus_policies", "id", "RESTRICT", "CASCADE"),
    ("live", "directus_files", "files_uploaded_by", "uploaded_by", 1, "live", "directus_users", "id", "RESTRICT", "RESTRICT"),
    ("shadow", "directus_files", "files_uploaded_by", "uploaded_by", 1, "shadow", "directus_users", "id", "RESTRICT",
     "RESTRICT"),
    ("shadow", "directus_permissions", "perm_policy", "policy", 1, "shadow", "directus_policies", "id", "RESTRICT",
     "CASCADE"),
    ("live", "pair", "pair_fk", "b", 2, "live", "other", "y", "CASCADE", "CASCADE"),
    ("live", "pair", "pair_fk", "a", 1, "live", "other", "x", "CASCADE", "CASCADE"),
]


def test_group_foreign_keys_orders_columns():
    fks = {(f["schema"], f["table"]): f for f in plan.group_foreign_keys(FK_ROWS)}
    assert fks[("live", "pair")]["columns"] == ["a", "b"]
    assert fks[("live", "pair")]["ref_columns"] == ["x", "y"]


def test_fk_fixups_keep_kept_tables_pointing_at_the_new_live_tables():
    fks = plan.group_foreign_keys(FK_ROWS)
    out = ["directus_roles", "directus_files", "directus_permissions", "directus_policies"]
    inn = ["directus_roles", "directus_files", "directus_permissions", "directus_policies"]
    fix = plan.plan_fk_fixups(fks, "live", "backup", out, "shadow", inn)
    names = {k: sorted((f["schema"], f["table"], ref) for f, ref in v) for k, v in fix.items()}
    # kept users.role would follow the old roles table into the backup: dropped before, re-added after
    assert names["pre_drop"] == [("live", "directus_users", None)]
    assert names["post_add"] == [("live", "directus_users", "live")]
    # shadow files.uploaded_by points at shadow.directus_users, which is never swapped in: -> live
    assert names["pre_repoint"] == [("shadow", "directus_files", "live")]
    # old files rows must not restrict deleting live users: -> backup
    assert names["post_repoint"] == [("live", "directus_files", "backup")]


def test_one_rename_statement_moves_out_before_in():
    sql = plan.build_rename("d", "d__backup_1", ["b", "a"], "d__shadow_1", ["a", "c"])
    assert sql == ("RENAME TABLE `d`.`a` TO `d__backup_1`.`a`, `d`.`b` TO `d__backup_1`.`b`, "
                   "`d__shadow_1`.`a` TO `d`.`a`, `d__shadow_1`.`c` TO `d`.`c`")
    assert plan.build_rename("d", "x", [], "y", []) is None


def test_backup_pruning_and_schema_names():
    schemas = ["directus", "directus__backup_20260101T000000", "directus__backup_20260301T000000",
               "directus__backup_20260201T000000", "directus__backup_notatimestamp", "other__backup_20250101T000000",
               "directus__promote_state"]
    assert plan.backups_to_prune(schemas, "directus", 2) == ["directus__backup_20260101T000000"]
    assert plan.backups_to_prune(schemas, "directus", 0) == [
        "directus__backup_20260101T000000", "directus__backup_20260201T000000", "directus__backup_20260301T000000"]
    assert plan.backups_to_prune(schemas, "directus", 5) == []
    with pytest.raises(plan.PlanError):
        plan.backups_to_prune(schemas, "directus", -1)
    with pytest.raises(plan.PlanError):
        plan.side_schema_name("x" * 60, plan.BACKUP_MARK, "20260101T000000")


def test_schemas_of_one_second_get_numbered_names_in_order():
    stamp = "20260101T000000"
    existing = {"directus__backup_" + stamp, "directus__shadow_%s_2" % stamp}
    # the backup and shadow of one promotion share a stamp: skip a number either one uses
    assert plan.free_stamp("directus", (plan.BACKUP_MARK, plan.SHADOW_MARK), stamp, existing) == stamp + "_3"
    assert plan.free_stamp("directus", (plan.ROLLEDBACK_MARK,), stamp, existing) == stamp
    names = ["directus__backup_%s%s" % (stamp, suffix) for suffix in ("_10", "_2", "", "_9")] + [
        "directus__backup_20251231T235959"]
    assert plan.schemas_with_mark(names, "directus", plan.BACKUP_MARK) == [
        "directus__backup_20251231T235959", "directus__backup_" + stamp, "directus__backup_%s_2" % stamp,
        "directus__backup_%s_9" % stamp, "directus__backup_%s_10" % stamp]
    assert plan.backups_to_prune(names, "directus", 1) == names[4:5] + names[2:3] + names[1:2] + names[3:4]


def test_fingerprint_is_stable_and_sensitive():
    assert plan.fingerprint({"a": 1, "b": None}, "map_email") == plan.fingerprint({"b": None, "a": 1}, "map_email")
    assert plan.fingerprint({"a": 1}, "map_email") != plan.fingerprint({"a": 2}, "map_email")


def test_shadow_fks_already_pointing_at_live_need_no_repoint():
    rows = [("shadow", "files", "f_user", "u", 1, "live", "directus_users", "id", "RESTRICT", "RESTRICT")]
    fix = plan.plan_fk_fixups(plan.group_foreign_keys(rows), "live", "backup", [], "shadow", ["files"])
    assert fix == {"pre_repoint": [], "pre_drop": [], "post_add": [], "post_repoint": []}


# --------------------------------------------------------------------------- checksum reuse

MARIADB = "10.11.19-MariaDB-0+deb12u1"
IDENT = plan.server_ident({"hostname": "db1", "port": 3306, "datadir": "/var/lib/mysql/", "database": "directus"})
RECORDED = {"checksum": "12345", "ident": IDENT, "mark": 1000, "create_time": 990, "table_id": 42}


def current(**override):
    cur = {"version": MARIADB, "ident": IDENT, "engine": "InnoDB", "create_options": "", "create_time": 990,
           "update_time": 999, "table_id": 42}
    cur.update(override)
    return cur


def test_checksum_reusable_when_unwritten_since_the_mark():
    assert plan.checksum_reusable(RECORDED, current()) == (True, "not written since the last promotion recorded it")
    # values as a raw connection returns them (text) compare the same
    assert plan.checksum_reusable(dict(RECORDED, mark="1000", table_id="42"), current(update_time="999", create_time="990"))[0]


@pytest.mark.parametrize("override, reason", [
    (dict(update_time=None), "UPDATE_TIME unknown"),               # restart / evicted definition
    (dict(update_time=1000), "same second"),                       # a write in the mark's second may be after it
    (dict(update_time=1001), "written since"),
    (dict(create_time=995), "renamed or altered"),                 # RENAME TABLE, ALTER TABLE
    (dict(create_time=None), "renamed or altered"),
    (dict(table_id=43), "TRUNCATE"),                               # TRUNCATE / IMPORT TABLESPACE keep both times
    (dict(table_id=None), "TRUNCATE"),
    (dict(ident=plan.server_ident(dict(hostname="db2", port=3306, datadir="/var/lib/mysql/", database="directus"))),
     "another server"),
    (dict(ident=plan.server_ident(dict(hostname="db1", port=3306, datadir="/var/lib/mysql/", database="directus_copy"))),
     "another server or schema"),
    (dict(version="8.0.36"), "not MariaDB"),                       # MySQL 8 caches information_schema statistics
    (dict(engine="Aria"), "not an InnoDB table"),
    (dict(create_options="partitioned"), "partitioned"),
])
def test_checksum_not_reusable(override, reason):
    ok, why = plan.checksum_reusable(RECORDED, current(**override))
    assert ok is False and reason in why


@pytest.mark.parametrize("missing", ["checksum", "ident", "mark", "create_time", "table_id"])
def test_checksum_not_reusable_without_a_complete_record(missing):
    # state rows of an older release (no reuse columns) or of a run that could not prove its mark
    assert plan.checksum_reusable(dict(RECORDED, **{missing: None}), current())[0] is False
    assert plan.checksum_reusable(None, current())[0] is False


def test_whole_seconds_floors_exactly():
    assert plan.whole_seconds("1795623303.999999") == 1795623303
    assert plan.whole_seconds(b"1795623304.000000") == 1795623304
    assert plan.whole_seconds(1795623303) == 1795623303
    assert plan.whole_seconds(None) is None and plan.whole_seconds("junk") is None


def test_write_mark_is_the_earliest_start_of_a_transaction_that_may_write():
    # (thread, started, autocommit_non_locking, read_only); the probe itself is thread 7
    rows = [(7, "1005", 0, 0), (8, "990", 0, 0), (9, "980", 1, 0), (10, "970", 0, 1), (11, "960", 0, 0)]
    writers = plan.foreign_writers(rows, 7, ignore=[11])
    assert writers == [(8, "990")]              # single-statement reads, READ ONLY and ignored threads cannot write
    assert plan.write_mark("1000.5", writers) == 990
    assert plan.write_mark("1000.5", []) == 1000
    # a listing without the probe's own transaction is a stale cache: nothing is proven
    assert plan.foreign_writers([(8, "990", 0, 0)], 7) is None
    assert plan.write_mark("1000.5", None) is None
    assert plan.write_mark("1000.5", [(8, None)]) is None


def test_seconds_to_next_waits_only_when_the_last_write_is_in_this_second():
    assert plan.seconds_to_next(999, "1000.25") == 0.0
    assert plan.seconds_to_next(None, "1000.25") == 0.0
    assert 0.75 < plan.seconds_to_next(1000, "1000.25") < 0.8


def test_innodb_name_only_for_plain_names():
    assert plan.innodb_name("directus", "articles") == "directus/articles"
    assert plan.innodb_name("my-db", "articles") is None         # stored as my@002ddb: unknown id, never reused
    assert plan.innodb_name("directus", "ärger") is None


# --------------------------------------------------------------------------- backup recycling

def backups(*stamps):
    return ["directus__backup_%s" % s for s in stamps] + ["directus", "directus__promote_state", "other__backup_20250101T000000"]


def test_recycle_donor_is_a_backup_pruning_removes_and_never_the_newest():
    three = backups("20250101T000000", "20250102T000000", "20250103T000000")
    # keep 3: the oldest goes once this promotion adds a fourth
    assert plan.recycle_donor(three, "directus", 3) == "directus__backup_20250101T000000"
    # keep 2: the two oldest go; the newer of them is closer to today's data
    assert plan.recycle_donor(three, "directus", 2) == "directus__backup_20250102T000000"
    # keep 1 or 0: everything goes, but the newest backup stays the rollback target while the promotion runs
    assert plan.recycle_donor(three, "directus", 1) == "directus__backup_20250102T000000"
    assert plan.recycle_donor(three, "directus", 0) == "directus__backup_20250102T000000"
    assert plan.recycle_donor(backups("20250101T000000"), "directus", 1) is None
    assert plan.recycle_donor(backups("20250101T000000", "20250102T000000"), "directus", 3) is None
    assert plan.recycle_donor(backups(), "directus", 2) is None
    with pytest.raises(plan.PlanError):
        plan.recycle_donor(three, "directus", -1)


def line(digest_char, key_literal):
    return (digest_char * 32).encode() + key_literal.hex().upper().encode()


def delta_of(source, target, order):
    """RowDelta fed with the two sides in chunks, interleaved as ``order`` says ('s' or 't' per chunk)."""
    delta = plan.RowDelta()
    source, target = list(source), list(target)
    for side in order:
        if side == "s":
            delta.add_source(source[:3])
            source = source[3:]
        else:
            delta.add_target(target[:3])
            target = target[3:]
    delta.add_source(source)
    delta.add_target(target)
    return delta


def test_row_delta_deletes_old_versions_and_inserts_source_rows():
    source = [line("a", b"('1')"), line("b", b"('2')"), line("d", b"(3,'x')")]
    target = [line("a", b"('1')"), line("c", b"('2')"), line("e", b"('gone')")]
    for order in ("", "st", "ts", "ttss"):
        delta = delta_of(source, target, order)
        delete, insert = delta.result()
        assert delete == [b"('2')", b"('gone')"]
        assert insert == sorted([line("b", b"('2')"), line("d", b"(3,'x')")])
        assert [plan.line_key(x) for x in insert] == [b"('2')", b"(3,'x')"]
        assert (delta.source_rows, delta.target_rows, delta.waiting()) == (3, 3, 2)
    assert delta_of(source, source, "stst").result() == ([], [])


def test_row_delta_matches_set_arithmetic_in_any_interleaving():
    rng = random.Random(7)
    for _round in range(200):
        keys = [("('k%d')" % i).encode() for i in range(rng.randrange(0, 40))]
        target = {k: rng.choice("abc") for k in keys if rng.random() < 0.8}
        source = {k: (v if rng.random() < 0.7 else rng.choice("abcd")) for k, v in target.items() if rng.random() < 0.9}
        source.update({k: "n" for k in keys if k not in target and rng.random() < 0.5})
        src_lines = sorted(line(v, k) for k, v in source.items())
        tgt_lines = sorted(line(v, k) for k, v in target.items())
        order = "".join(rng.choice("st") for _i in range(rng.randrange(0, 30)))
        delete, insert = delta_of(src_lines, tgt_lines, order).result()
        assert delete == sorted(plan.line_key(x) for x in set(tgt_lines) - set(src_lines))
        assert insert == sorted(set(src_lines) - set(tgt_lines))


def test_row_delta_keeps_only_unmatched_rows_when_both_sides_arrive_in_key_order():
    lines = [line("a", ("('%06d')" % i).encode()) for i in range(10000)]
    changed = list(lines)
    changed[5000] = line("b", b"('005000')")
    delta = plan.RowDelta()
    peak = 0
    for i in range(0, 10000, 500):
        delta.add_source(changed[i:i + 500])
        delta.add_target(lines[i:i + 500])
        peak = max(peak, delta.waiting())
    assert peak == 0
    assert delta.result() == ([b"('005000')"], [changed[5000]])


def test_recycling_pays_up_to_half_the_rows_rewritten():
    assert plan.recycle_pays(1000, 1000, [b"k"] * 250, [b"k"] * 250)
    assert not plan.recycle_pays(1000, 1000, [b"k"] * 250, [b"k"] * 251)
    # a source that grew: measured against the larger side
    assert plan.recycle_pays(100, 2000, [b"k"] * 1000, [])
    assert plan.recycle_pays(0, 0, [], [])
