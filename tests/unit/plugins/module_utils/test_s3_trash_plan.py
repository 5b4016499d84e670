"""Unit tests of s3_mirror's trash planning: keys, manifests, the trash actions, restore, purge, protected keys."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import s3_trash_plan as tp
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import ADD, UPDATE, Entries, build_plan

T = "_directus_promote_trash/"


def entries(*rows):
    out = Entries()
    for row in rows:
        out.append(*row)
    return out


def part(seq, mode="copy", saved=(), added=(), written=(), bucket="prod"):
    return seq, mode, tp.manifest_document("r1", mode, seq, bucket, "", bucket, T, False, saved, added, written)


# ---------------------------------------------------------------- run ids and keys

def test_new_run_ids_are_valid_unique_and_sort_by_time():
    early = tp.new_run_id(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
    assert early.startswith("20260102T030405Z-") and tp.valid_run_id(early)
    assert tp.new_run_id() != tp.new_run_id()
    assert early < tp.new_run_id()


@pytest.mark.parametrize("run_id, valid", [
    ("prod-20261125T134620Z-de32f65f", True), ("a", True), ("a.b_c-1", True), ("", False), (None, False),
    ("..", False), (".", False), ("a/b", False), ("-x", False), ("x" * 129, False), ("sp ace", False)])
def test_run_ids_are_one_folder_name(run_id, valid):
    assert tp.valid_run_id(run_id) is valid


def test_trash_keys_and_their_parsing():
    assert tp.trash_object_key(T, "r1", "uploads/a b.jpg") == T + "r1/objects/uploads/a b.jpg"
    key = tp.manifest_key(T, "r1", 12, "prune")
    assert key == T + "r1/manifest-000012-prune.json"
    assert tp.parse_manifest_key(T, "r1", key) == (12, "prune")
    assert tp.parse_manifest_key(T, "r1", T + "r1/objects/manifest-000001-copy.json") is None
    assert tp.parse_manifest_key(T, "r2", key) is None
    assert tp.run_of_key(T, key) == "r1"
    assert tp.run_of_key(T, T + "loose-object") is None
    assert tp.run_of_key(T, "elsewhere/r1/x") is None


def test_the_trash_inside_the_target_range_is_left_out_on_both_sides():
    assert tp.trash_inside_target("prod", "", "prod", T) == T
    assert tp.trash_inside_target("prod", "live/", "prod", "live/" + T) == T
    assert tp.trash_inside_target("prod", "live/", "prod", T) is None
    assert tp.trash_inside_target("prod", "", "trash", T) is None
    keep = tp.exclude_prefix(lambda key: not key.endswith(".tmp"), T)
    assert [k for k in ["a.jpg", T + "r1/x", "b.tmp", "_directus_promote_trashy"] if keep(k)] == ["a.jpg", "_directus_promote_trashy"]
    assert tp.exclude_prefix(None, None) is None
    plan = build_plan([("a", 1, "e")], [(key, 1, "e") for key in ("a", T + "r/x")], "mirror")
    assert len(plan.deletes) == 1  # without the filter the trash would be pruned
    plan = build_plan([("a", 1, "e"), (T + "s", 1, "e")], [(T + "r/x", 1, "e")],
                      "mirror")
    assert len(plan.copies) == 2


def test_trash_locations_that_cannot_work_are_refused():
    assert tp.trash_location_problems("staging", "", "prod", "", "prod", T) == []
    assert tp.trash_location_problems("staging", "", "prod", "", "prod", "") == [
        "trash_prefix must not be empty (the trash needs a folder of its own)"]
    assert tp.trash_location_problems("staging", "", "prod", "trash/live/", "prod", "trash/") == [
        "the target range lies inside the trash location s3://prod/trash/"]
    assert tp.trash_location_problems("shared", "staging/", "prod", "", "shared", "staging/trash/") == [
        "the trash location s3://shared/staging/trash/ overlaps the source range"]
    assert tp.trash_location_problems("shared", "staging/", "prod", "", "shared", "trash/") == []
    assert tp.trash_location_problems(None, "", "prod", "", "prod", T) == []


# ---------------------------------------------------------------- protected keys

def test_protected_keys_cover_their_directus_transformations():
    protected = tp.protect_matcher(["0b1f.jpg", "dir/3c9e.png", "noext", "a__b.jpg"])
    yes = ["0b1f.jpg", "0b1f__a1b2.jpg", "0b1f__c3d4.webp", "dir/3c9e.png", "dir/3c9e__x.png", "noext", "noext__1",
           "a__b.jpg", "a__b__thumb.jpg"]
    no = ["0b1f.png", "0b1f_a1b2.jpg", "0b1f0.jpg", "x0b1f__a.jpg", "3c9e__x.png", "other/0b1f__a.jpg", "dir/3c9e",
          "a__c.jpg", "a.jpg"]
    assert [key for key in yes if not protected(key)] == []
    assert [key for key in no if protected(key)] == []
    assert tp.protect_matcher([]) is None and tp.protect_matcher(None) is None and tp.protect_matcher([""]) is None


def test_split_protected_keeps_order_and_reports_the_spared():
    kept, spared = tp.split_protected(entries(("a.jpg", 1, "e", 0), ("a__t.jpg", 2, "e", 0), ("b.jpg", 3, "e", 0)),
                                      tp.protect_matcher(["a.jpg"]), Entries)
    assert list(kept) == [("b.jpg", 3, "e", 0)] and spared == ["a.jpg", "a__t.jpg"]


# ---------------------------------------------------------------- manifests

def test_manifests_round_trip_and_merge_with_the_first_save_winning():
    first = tp.manifest_document("r1", "copy", 1, "prod", "up/", "prod", T, False,
                                 saved=[{"key": "up/a", "size": 3, "etag": "old", "trash_key": T + "r1/objects/up/a", "trash_etag": "old"}],
                                 added=[{"key": "up/n", "etag": "e1", "size": 1}], written=[{"key": "up/a", "etag": "new1"}],
                                 now=datetime.datetime(2026, 12, 3, 16, 0, tzinfo=datetime.timezone.utc))
    data = tp.serialize_manifest(first)
    assert isinstance(data, bytes) and tp.parse_manifest(data) == first
    assert first["created"] == "2026-12-03T16:00:00Z" and first["format"] == tp.MANIFEST_FORMAT
    second = tp.manifest_document("r1", "copy", 2, "prod", "up/", "prod", T, False,
                                  saved=[{"key": "up/a", "size": 4, "etag": "new1", "trash_key": "x", "trash_etag": "new1"},
                                         {"key": "up/gone", "size": 1, "etag": "g", "trash_key": "y", "trash_etag": "g"}],
                                  added=[], written=[{"key": "up/a", "etag": "new2"}, {"key": "up/n", "etag": "e2"}])
    record = tp.merge_manifests([(2, "copy", tp.parse_manifest(tp.serialize_manifest(second))), (1, "copy", first)])
    assert record.saved["up/a"]["etag"] == "old"  # the first save: the bytes from before the run
    assert set(record.saved) == {"up/a", "up/gone"} and record.added == {"up/n"}
    assert record.written == {"up/a": {"new1", "new2"}, "up/n": {"e1", "e2"}}
    assert record.parts == [(1, "copy"), (2, "copy")] and record.next_seq() == 3
    assert record.knows("up/a") and record.knows("up/n") and not record.knows("up/other")
    assert tp.merge_manifests([]).next_seq() == 1


def test_bad_manifests_are_one_clear_error():
    with pytest.raises(tp.TrashError, match="not valid JSON"):
        tp.parse_manifest(b"{not json")
    with pytest.raises(tp.TrashError, match="not a JSON object"):
        tp.parse_manifest(b"[]")
    with pytest.raises(tp.TrashError, match="unknown format"):
        tp.merge_manifests([(1, "copy", {"format": 99})])
    with pytest.raises(tp.TrashError, match="two target buckets"):
        tp.merge_manifests([part(1), part(2, bucket="other")])


# ---------------------------------------------------------------- the trash actions of a plan

def test_plan_trash_saves_what_is_overwritten_or_deleted_and_journals_what_is_added():
    copies = entries(("new.jpg", 5, "n1", ADD), ("a.jpg", 7, "a2", UPDATE), ("known.jpg", 1, "k2", UPDATE))
    deletes = entries(("old.jpg", 3, "o1", 0), ("added-before.jpg", 1, "x", 0))
    record = tp.merge_manifests([part(1, saved=[{"key": "up/known.jpg", "etag": "k0", "size": 1}],
                                      added=[{"key": "up/added-before.jpg", "etag": "x"}])])
    actions = tp.plan_trash(copies, deletes, "up/", record, ADD)
    assert actions.to_save == ["up/a.jpg", "up/old.jpg"]
    assert actions.added == [{"key": "up/new.jpg", "etag": "n1", "size": 5}]
    assert actions.written == [{"key": "up/a.jpg", "etag": "a2"}, {"key": "up/known.jpg", "etag": "k2"}]
    assert actions.journal_size() == 5
    assert tp.plan_trash(Entries(), Entries(), "", tp.RunRecord(), ADD).journal_size() == 0


# ---------------------------------------------------------------- restore

def restore_record():
    return tp.merge_manifests([
        part(1, saved=[{"key": "over", "size": 3, "etag": "old", "trash_key": T + "r1/objects/over", "trash_etag": "old"},
                       {"key": "multi", "size": 9, "etag": "abc-2", "trash_key": "t", "trash_etag": "md5"},
                       {"key": "edited", "size": 3, "etag": "old", "version_id": "v1"}],
             added=[{"key": "new", "etag": "n1"}, {"key": "new2", "etag": "n2"}, {"key": "mine-later", "etag": "m1"}],
             written=[{"key": "over", "etag": "o2"}, {"key": "multi", "etag": "m2"}, {"key": "edited", "etag": "e2"}]),
        part(2, "prune", saved=[{"key": "deleted", "size": 1, "etag": "d", "trash_key": "t2", "trash_etag": "d"}]),
    ])


def test_restore_puts_back_saved_objects_and_removes_added_ones_still_holding_the_runs_bytes():
    current = {"over": (4, "o2", None), "multi": (9, "big-3", "m2"), "edited": (5, "someone-else", None), "deleted": None,
               "new": (2, "n1", None), "new2": None, "mine-later": (1, "other", None)}
    plan = tp.plan_restore(restore_record(), current)
    assert [entry["key"] for entry in plan.restore] == ["deleted", "multi", "over"]
    assert plan.remove == [("new", "n1")]
    assert plan.gone == ["new2"]
    assert plan.changed_since == ["edited", "mine-later"]
    assert plan.in_place == [] and plan.changed()


def test_a_restore_in_two_steps_puts_back_first_and_removes_last():
    """A rollback: scope=saved, its database swap, then scope=added; together what scope=all does."""
    current = {"over": (4, "o2", None), "multi": (9, "big-3", "m2"), "edited": (5, "someone-else", None), "deleted": None,
               "new": (2, "n1", None), "new2": None, "mine-later": (1, "other", None)}
    saved = tp.plan_restore(restore_record(), current, "saved")
    assert [entry["key"] for entry in saved.restore] == ["deleted", "multi", "over"]
    assert saved.remove == [] and saved.gone == [] and saved.changed_since == ["edited"]
    added = tp.plan_restore(restore_record(), current, "added")
    assert added.restore == [] and added.remove == [("new", "n1")] and added.changed_since == ["mine-later"]
    everything = tp.plan_restore(restore_record(), current, "all")
    assert (everything.restore, everything.remove) == (saved.restore, added.remove)


def test_a_second_restore_changes_nothing():
    current = {"over": (3, "old", None), "multi": (9, "md5", None), "edited": (3, "old", None), "deleted": (1, "d", None),
               "new": None, "new2": None, "mine-later": None}
    plan = tp.plan_restore(restore_record(), current)
    assert plan.restore == [] and plan.remove == [] and not plan.changed()
    assert plan.in_place == ["deleted", "edited", "multi", "over"]
    assert plan.gone == ["mine-later", "new", "new2"]


def test_a_run_killed_after_its_journal_restores_nothing_it_did_not_write():
    record = tp.merge_manifests([part(1, saved=[{"key": "a", "size": 1, "etag": "e0", "trash_key": "t", "trash_etag": "e0"}],
                                      added=[{"key": "n", "etag": "n1"}], written=[{"key": "a", "etag": "e1"}])])
    plan = tp.plan_restore(record, {"a": (1, "e0", None), "n": None})
    assert not plan.changed() and plan.in_place == ["a"] and plan.gone == ["n"]


# ---------------------------------------------------------------- purge

def at(second):
    return datetime.datetime(2026, 12, 3, 16, 0, second, tzinfo=datetime.timezone.utc)


def test_purge_keeps_the_newest_runs_by_their_first_object():
    objects = [(T + "r-old/manifest-000001-copy.json", at(1)), (T + "r-old/manifest-000002-prune.json", at(50)),
               (T + "r-mid/objects/a", at(10)), (T + "r-mid/manifest-000001-copy.json", at(11)),
               (T + "a-new/manifest-000001-copy.json", at(20)), (T + "loose", at(0))]
    kept, purged, keys = tp.plan_purge(objects, T, 1)
    assert kept == ["a-new"] and purged == ["r-mid", "r-old"]
    assert keys == {"r-mid": [T + "r-mid/manifest-000001-copy.json", T + "r-mid/objects/a"],
                    "r-old": [T + "r-old/manifest-000001-copy.json", T + "r-old/manifest-000002-prune.json"]}
    assert tp.plan_purge(objects, T, 3)[1] == []
    assert tp.plan_purge(objects, T, 0)[1] == ["a-new", "r-mid", "r-old"]
    kept, purged, _keys = tp.plan_purge(objects, T, 1, keep="r-old")  # the current run is never purged
    assert kept == ["a-new", "r-old"] and purged == ["r-mid"]


def test_purge_deletes_recorded_versions_never_a_current_one_and_manifests_last():
    record = tp.merge_manifests([part(1, saved=[{"key": "a", "etag": "e", "version_id": "v1"},
                                                {"key": "b", "etag": "e", "version_id": "v2"},
                                                {"key": "c", "etag": "e", "trash_key": "t"}])])
    assert tp.purge_versions(record, {"a": "v9", "b": "v2"}) == [("a", "v1")]
    assert tp.manifests_last(["r/manifest-000001-copy.json", "r/objects/z", "r/objects/a"]) == [
        "r/objects/a", "r/objects/z", "r/manifest-000001-copy.json"]


# ---------------------------------------------------------------- the module's use of them

def test_protect_plan_spares_updates_and_deletions_not_additions():
    from ansible_collections.casper.directus_promote.plugins.module_utils.s3_trash import protect_plan

    plan = build_plan([("f1.jpg", 9, "new"), ("f1__t.jpg", 1, "t"), ("x.jpg", 2, "x")],
                      [("f1.jpg", 3, "old"), ("f1__a.jpg", 1, "a"), ("f2.jpg", 1, "b")], "mirror")
    assert (plan.to_add, plan.to_update, len(plan.deletes)) == (2, 1, 2)
    spared = protect_plan(plan, tp.protect_matcher(["f1.jpg"]), UPDATE)
    assert spared == ["f1.jpg", "f1__a.jpg"]
    assert [row[0] for row in plan.copies] == ["f1__t.jpg", "x.jpg"]  # adding a missing thumbnail overwrites nothing
    assert [row[0] for row in plan.deletes] == ["f2.jpg"]
    assert protect_plan(plan, None, UPDATE) == []


def module_params(**overrides):
    from ansible_collections.casper.directus_promote.plugins.modules import s3_mirror

    values = {name: option.get("default") for name, option in s3_mirror.argument_spec().items()}
    values.update(source_bucket="staging", target_bucket="prod")
    values.update(overrides)
    return s3_mirror.validate(values)


def test_the_modes_options_are_validated_together():
    assert module_params() == []
    assert module_params(mode="restore", source_bucket=None, run_id="r1") == []
    assert module_params(mode="purge_trash", source_bucket=None, keep_runs=3) == []
    assert module_params(source_bucket=None) == ["source_bucket is required with mode=mirror"]
    assert module_params(mode="restore", source_bucket=None) == ["run_id is required with mode=restore (the run to undo)"]
    assert module_params(mode="purge_trash", keep_runs=-1) == ["keep_runs must not be negative"]
    assert module_params(run_id="a/b") == [
        "run_id must be 1 to 128 letters, digits, '.', '_' or '-' (it names a folder of the trash)"]
    assert module_params(trash_prefix="") == ["trash_prefix must not be empty (the trash needs a folder of its own)"]
    assert module_params(trash=False, trash_prefix="") == []  # no trash: its location does not matter
    assert module_params(target_prefix="_directus_promote_trash/live") == [
        "the target range lies inside the trash location s3://prod/_directus_promote_trash/"]
