"""Unit tests of s3_mirror's pure planning functions (no service involved)."""

from __future__ import annotations

import datetime
import random
import re

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import s3_mirror_plan as P


def pages(keys, page_size=3, prefix=""):
    """ListObjectsV2-shaped pages from (key, size, etag) tuples."""
    objects = [{"Key": prefix + k, "Size": s, "ETag": '"%s"' % e} for k, s, e in keys]
    if not objects:
        return [{"KeyCount": 0}]
    return [{"Contents": objects[i:i + page_size]} for i in range(0, len(objects), page_size)]


def listing(*items):
    return list(items)


# ---------------------------------------------------------------- keys and prefixes

@pytest.mark.parametrize("prefix, expected", [("", ""), ("a", "a/"), ("a/", "a/"), ("a/b", "a/b/")])
def test_normalize_prefix_gives_folder_semantics(prefix, expected):
    assert P.normalize_prefix(prefix) == expected


def test_remap_key_moves_relative_part_to_target_prefix():
    assert P.remap_key("a/x", "a/", "b/") == "b/x"
    assert P.remap_key("a/sub/y z", "a/", "") == "sub/y z"
    assert P.remap_key("x", "", "b/") == "b/x"
    with pytest.raises(ValueError):
        P.remap_key("c/x", "a/", "b/")


def test_ranges_overlap():
    assert P.ranges_overlap("b", "", "b", "x/")
    assert P.ranges_overlap("b", "x/y/", "b", "x/")
    assert not P.ranges_overlap("b", "x/", "b", "y/")
    assert not P.ranges_overlap("b1", "", "b2", "")


def test_key_filter_include_exclude():
    assert P.key_filter(None, None) is None
    only_images = P.key_filter(["*.jpg", "*.png"], ["cache/*"])
    assert only_images("a/b.jpg")
    assert only_images("x.png")
    assert not only_images("x.txt")
    assert not only_images("cache/a.jpg")
    no_tmp = P.key_filter(None, ["*.tmp"])
    assert no_tmp("a.txt") and not no_tmp("dir/a.tmp")
    # case-sensitive, and the pattern must match the whole key
    assert not only_images("X.JPG")
    assert not P.key_filter(["a"], None)("ab")


def test_key_filter_handles_awkward_characters_literally():
    selected = P.key_filter(["dir with space/*+%#*"], None)
    assert selected("dir with space/a+%#b")
    assert not selected("dir with space/a-b")
    # regex metacharacters in globs are literal
    assert P.key_filter(["a.b(c)"], None)("a.b(c)")
    assert not P.key_filter(["a.b(c)"], None)("aXb(c)")


def test_iter_listing_strips_prefix_filters_and_unquotes_etags():
    data = pages([("a/1", 1, "e1"), ("a/2.tmp", 2, "e2"), ("a/3", 3, "e3-2")], page_size=2)
    out = list(P.iter_listing(data, "a/", P.key_filter(None, ["*.tmp"])))
    assert out == [("1", 1, "e1"), ("3", 3, "e3-2")]


def test_iter_listing_refuses_unordered_listing():
    data = pages([("b", 1, "e"), ("a", 1, "e")])
    with pytest.raises(P.PlanError, match="not in UTF-8 binary key order"):
        list(P.iter_listing(data, "", None, "target listing"))


def test_iter_listing_refuses_keys_outside_prefix():
    with pytest.raises(P.PlanError, match="outside prefix"):
        list(P.iter_listing([{"Contents": [{"Key": "z/1", "Size": 1, "ETag": "e"}]}], "a/"))


def test_iter_listing_of_empty_bucket():
    assert list(P.iter_listing([{"KeyCount": 0}], "")) == []


def test_python_order_is_utf8_binary_order():
    """The merge relies on str order == UTF-8 byte order (what S3 returns)."""
    rng = random.Random(7)
    alphabet = ["a", "Z", "0", " ", "+", "%", "?", "#", "/", "\u00e9", "\u00fc", "\u4e2d", "\U0001f600", "\uffff", "~"]
    keys = {"".join(rng.choice(alphabet) for _char in range(rng.randint(1, 6))) for _key in range(2000)}
    assert sorted(keys) == sorted(keys, key=lambda k: k.encode("utf-8"))


# ---------------------------------------------------------------- compact entries

def test_entries_roundtrip_awkward_keys():
    entries = P.Entries()
    items = [("k 1+%?#\u00fc", 0, "abc", P.ADD), ("\U0001f600/x", 5, "d-2", P.UPDATE), ("", 7, "", P.ADD)]
    for item in items:
        entries.append(*item)
    assert list(entries) == items
    assert len(entries) == 3
    assert entries[-1] == items[-1]
    assert entries.keys(2) == ["k 1+%?#\u00fc", "\U0001f600/x"]
    assert entries.total_size() == 12
    with pytest.raises(IndexError):
        entries[3]  # pylint: disable=pointless-statement


# ---------------------------------------------------------------- merging plans

SRC = listing(("a", 1, "ea"), ("b", 2, "eb"), ("c", 3, "ec"), ("d", 4, "ed-2"), ("f", 6, "ef"))
TGT = listing(("b", 2, "eb"), ("c", 3, "OTHER"), ("d", 4, "xx-3"), ("e", 5, "ee"), ("f", 7, "ef"))


def test_build_plan_mirror_classifies_every_object():
    plan = P.build_plan(SRC, TGT, "mirror")
    assert [(k, f) for k, _s, _e, f in plan.copies] == [("a", P.ADD), ("f", P.UPDATE)]
    # same size, different ETag: only the target's recorded ETag can tell
    assert plan.verify.keys() == ["c", "d"]
    assert plan.deletes.keys() == ["e"]
    assert plan.unchanged == 1
    assert (plan.source_objects, plan.target_objects) == (5, 5)
    assert plan.source_bytes == 16
    assert plan.changed()


def test_build_plan_copy_never_deletes():
    plan = P.build_plan(SRC, TGT, "copy")
    assert plan.deletes.keys() == []
    assert plan.extra_ignored == 1
    assert plan.copies.keys() == ["a", "f"]


def test_build_plan_prune_only_deletes():
    plan = P.build_plan(SRC, TGT, "prune")
    assert plan.copies.keys() == [] and plan.verify.keys() == []
    assert plan.deletes.keys() == ["e"]
    assert plan.missing_ignored == 1
    assert plan.changed_ignored == 3


def test_build_plan_identical_listings_is_no_change():
    plan = P.build_plan(SRC, list(SRC), "mirror")
    assert not plan.changed()
    assert plan.unchanged == len(SRC)


def test_build_plan_empty_sides():
    plan = P.build_plan([], TGT, "mirror")
    assert plan.deletes.keys() == ["b", "c", "d", "e", "f"] and plan.source_objects == 0
    plan = P.build_plan(SRC, [], "mirror")
    assert len(plan.copies) == 5 and plan.to_add == 5 and plan.to_update == 0
    assert not P.build_plan([], [], "mirror").changed()


def test_build_plan_matches_dict_based_reference_on_random_listings():
    rng = random.Random(42)
    for _round in range(50):
        universe = sorted({"k%03d\u00e9" % rng.randint(0, 200) for _pick in range(120)})
        src = {k: (rng.randint(0, 3), rng.choice("xyz")) for k in universe if rng.random() < 0.7}
        tgt = {k: (rng.randint(0, 3), rng.choice("xyz")) for k in universe if rng.random() < 0.7}
        plan = P.build_plan([(k, *src[k]) for k in sorted(src)], [(k, *tgt[k]) for k in sorted(tgt)], "mirror")
        adds = sorted(k for k in src if k not in tgt)
        deletes = sorted(k for k in tgt if k not in src)
        same = [k for k in src if k in tgt and src[k] == tgt[k]]
        verify = sorted(k for k in src if k in tgt and src[k][0] == tgt[k][0] and src[k][1] != tgt[k][1])
        updates = sorted(k for k in src if k in tgt and src[k][0] != tgt[k][0])
        assert [k for k, _s, _e, f in plan.copies if f == P.ADD] == adds
        assert [k for k, _s, _e, f in plan.copies if f == P.UPDATE] == updates
        assert plan.deletes.keys() == deletes
        assert plan.verify.keys() == verify
        assert plan.unchanged == len(same)


def test_build_plan_consumes_generators_lazily():
    consumed = []

    def gen(n):
        for i in range(n):
            consumed.append(i)
            yield ("k%06d" % i, 1, "e")

    plan = P.build_plan(gen(1000), iter([("k%06d" % i, 1, "e") for i in range(1000)]), "mirror")
    assert plan.unchanged == 1000 and len(plan.copies) == 0 and len(consumed) == 1000


def test_build_plan_rejects_unknown_mode():
    with pytest.raises(P.PlanError):
        P.build_plan([], [], "sync")


# ---------------------------------------------------------------- recorded ETag

def test_resolve_verified_uses_recorded_source_etag():
    plan = P.build_plan(SRC, TGT, "mirror")
    recorded = {"c": {"mirror-source-etag": "stale"}, "d": {P.SOURCE_ETAG_METADATA: '"ed-2"'}}
    P.resolve_verified(plan, [P.is_unchanged_copy(etag, recorded[key]) for key, _size, etag, _flag in plan.verify])
    assert len(plan.verify) == 0
    assert plan.unchanged == 2  # b, plus d recorded as copied from ed-2
    assert [(k, f) for k, _s, _e, f in plan.copies] == [("a", P.ADD), ("f", P.UPDATE), ("c", P.UPDATE)]


def test_resolve_verified_missing_object_or_metadata_means_update():
    plan = P.build_plan(SRC, TGT, "mirror")
    P.resolve_verified(plan, [P.is_unchanged_copy("ec", None), P.is_unchanged_copy("ed-2", {})])
    assert sorted(plan.copies.keys()) == ["a", "c", "d", "f"]


def test_resolve_verified_needs_one_result_per_object():
    plan = P.build_plan(SRC, TGT, "mirror")
    with pytest.raises(ValueError):
        P.resolve_verified(plan, [True])


def test_is_unchanged_copy():
    assert P.is_unchanged_copy('"abc-3"', {P.SOURCE_ETAG_METADATA: "abc-3"})
    assert not P.is_unchanged_copy("abc-3", {P.SOURCE_ETAG_METADATA: "abc-4"})
    assert not P.is_unchanged_copy("abc-3", {})
    assert not P.is_unchanged_copy("abc-3", None)


def test_needs_recorded_etag():
    assert P.needs_recorded_etag("abc", True)
    assert P.needs_recorded_etag("abc-2", False)
    assert not P.needs_recorded_etag('"abc"', False)


def test_copy_metadata_copies_headers_and_records_etag():
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    head = {"ContentType": "image/png", "CacheControl": "max-age=60", "ContentDisposition": "inline",
            "ContentEncoding": "gzip", "ContentLanguage": "de", "Expires": expires, "Metadata": {"a": "1"},
            "ETag": '"e-2"', "ContentLength": 5, "LastModified": expires}
    params = P.copy_metadata(head, head["ETag"], True)
    assert params == {"ContentType": "image/png", "CacheControl": "max-age=60", "ContentDisposition": "inline",
                      "ContentEncoding": "gzip", "ContentLanguage": "de", "Expires": expires,
                      "Metadata": {"a": "1", P.SOURCE_ETAG_METADATA: "e-2"}}
    assert P.copy_metadata({"Metadata": {"a": "1"}}) == {"Metadata": {"a": "1"}}
    assert head["Metadata"] == {"a": "1"}  # not mutated


def test_tagging_header_is_url_encoded():
    assert P.tagging_header([{"Key": "a b", "Value": "x&y"}, {"Key": "c", "Value": "="}]) == "a+b=x%26y&c=%3D"
    assert P.tagging_header([]) == ""


def test_part_ranges_cover_the_object_within_s3_limits():
    mib = 1024 * 1024
    assert P.part_ranges(12 * mib, 5 * mib) == [(0, 5 * mib - 1), (5 * mib, 10 * mib - 1), (10 * mib, 12 * mib - 1)]
    # chunks below 5 MiB are raised to the minimum
    assert P.part_ranges(6 * mib, 1)[0] == (0, 5 * mib - 1)
    # at most 10,000 parts
    big = 100 * 1024 * mib * 1024  # 100 TiB (beyond S3's limit, but the arithmetic must hold)
    ranges = P.part_ranges(6 * 1024 * 1024 * mib, 5 * mib)
    assert len(ranges) <= P.S3_MAX_PARTS
    assert ranges[0][0] == 0 and ranges[-1][1] == 6 * 1024 * 1024 * mib - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))
    assert max(r[1] - r[0] + 1 for r in P.part_ranges(big, 5 * mib)) <= P.S3_MAX_PART
    assert P.copy_strategy(10, "e", 10) == "single" and P.copy_strategy(11, "e", 10) == "multipart"


# ---------------------------------------------------------------- deletion guard

def guard_plan(source, target):
    return P.build_plan([("s%04d" % i, 1, "e") for i in range(source)], [("t%04d" % i, 1, "e") for i in range(target)])


def objects(names):
    return [(name, 1, "e") for name in sorted(names)]


# Directus 11.3.5 staging with 10 files (22 objects with thumbnails) and a young production with one file of its
# own (3 objects, one of them also in staging), as issue 18 met them.
STAGING_22 = ["f%02d.jpg" % i for i in range(10)] + ["f%02d__thumb%d.jpg" % (i, t) for i in range(6) for t in range(2)]
YOUNG_PROD_3 = ["f00.jpg", "own.jpg", "own__thumb0.jpg"]
ROLE_NAMES = {option: "promote_s3_" + option for option in
              ("max_delete", "max_delete_percent", "max_delete_percent_min_count", "allow_empty_source", "force_delete")}


def test_guard_refuses_empty_source_and_names_the_keys():
    message = P.delete_guard(guard_plan(0, 3), max_delete=1000, max_delete_percent=100)
    assert message == ("Refusing to delete 3 objects: the source lists no object (set allow_empty_source=true to "
                       "empty the target). Would delete: t0000, t0001, t0002")
    assert P.delete_guard(guard_plan(0, 3), max_delete_percent=100, allow_empty_source=True) is None
    # force_delete does not override the empty-source check
    assert P.delete_guard(guard_plan(0, 3), force_delete=True) is not None
    # an empty source is never one the percentage spares: it takes allow_empty_source and the percentage
    assert "100.0% of the target's 3 objects" in P.delete_guard(guard_plan(0, 3), allow_empty_source=True)


def test_guard_count_and_percent():
    plan = guard_plan(10, 30)  # 30 deletions of 30 target objects
    message = P.delete_guard(plan, max_delete=20, max_delete_percent=50, sample=5)
    assert message.startswith("Refusing to delete 30 objects: more than max_delete=20 (raise it to 30, or set "
                              "force_delete=true); 100.0% of the target's 30 objects, more than max_delete_percent=50, "
                              "from a source of only 10 objects (raise it to 100, or set force_delete=true). Would "
                              "delete: t0000, ")
    assert "... and 25 more" in message
    assert P.delete_guard(plan, max_delete=30, max_delete_percent=100) is None
    assert P.delete_guard(plan, max_delete=0, max_delete_percent=0, force_delete=True) is None
    # percent relative to the target's objects in scope
    plan = P.build_plan([("k%02d" % i, 1, "e") for i in range(8)], [("k%02d" % i, 1, "e") for i in range(10)])
    assert len(plan.deletes) == 2
    assert P.delete_guard(plan, max_delete_percent=20, max_delete_percent_min_count=0) is None
    assert "20.0%" in P.delete_guard(plan, max_delete_percent=19.9, max_delete_percent_min_count=0)


def test_guard_lets_a_first_promotion_onto_a_young_target_through():
    preflight = P.build_plan(objects(STAGING_22), objects(YOUNG_PROD_3), "mirror")
    assert (len(preflight.deletes), preflight.target_objects, preflight.source_objects) == (2, 3, 22)  # 66.7 %
    assert P.delete_guard(preflight) is None
    # the role's prune, once the copy has run: the target holds staging's objects and its own two
    prune = P.build_plan(objects(STAGING_22), objects(set(STAGING_22) | set(YOUNG_PROD_3)), "prune")
    assert len(prune.deletes) == 2 and P.delete_guard(prune) is None
    # a young target sharing nothing with the source: all 3 objects go, still a first promotion
    assert P.delete_guard(P.build_plan(objects(STAGING_22), objects(["own%d" % i for i in range(3)]))) is None


def test_guard_percentage_applies_from_the_minimum_count():
    def plan(deletions):  # a target of 2 shared objects and its own, the source 22 objects
        return P.build_plan(objects(STAGING_22), objects(STAGING_22[:2] + ["own%02d" % i for i in range(deletions)]))

    assert P.delete_guard(plan(9)) is None  # 81.8 %, but 9 < max_delete_percent_min_count=10
    message = P.delete_guard(plan(10))
    assert "Refusing to delete 10 objects: 83.3% of the target's 12 objects, more than max_delete_percent=50 (raise it " \
           "to 84, or set force_delete=true)" in message
    assert P.delete_guard(plan(10), max_delete_percent_min_count=11) is None
    assert P.delete_guard(plan(3)) is None
    assert P.delete_guard(plan(3), max_delete_percent_min_count=0) is not None  # 0: the percentage applies to all


def test_guard_percentage_spares_few_deletions_only_from_a_source_at_least_as_large():
    # a source that is a small fraction of the target: 7 of 8 objects would go, the source lists 1
    small_source = P.build_plan(objects(["k0"]), objects(["k%d" % i for i in range(8)]))
    message = P.delete_guard(small_source)
    assert message.startswith("Refusing to delete 7 objects: 87.5% of the target's 8 objects, more than "
                              "max_delete_percent=50, from a source of only 1 object (raise it to 88, or set "
                              "force_delete=true).")
    # as many source objects as deletions: spared; one fewer: refused
    assert P.delete_guard(P.build_plan(objects(["s%d" % i for i in range(4)]), objects(["t%d" % i for i in range(4)]))) is None
    assert P.delete_guard(P.build_plan(objects(["s%d" % i for i in range(3)]), objects(["t%d" % i for i in range(4)])))


def test_guard_suggested_percentage_lets_the_plan_through():
    plan = P.build_plan(objects(STAGING_22), objects(YOUNG_PROD_3))
    message = P.delete_guard(plan, max_delete_percent_min_count=0)
    assert "66.7% of the target's 3 objects" in message and "raise it to 67" in message
    assert P.delete_guard(plan, max_delete_percent=67, max_delete_percent_min_count=0) is None
    assert P.delete_guard(plan, max_delete_percent=66.6, max_delete_percent_min_count=0) is not None


def test_guard_names_options_by_the_names_it_is_given():
    plans = [guard_plan(0, 3), guard_plan(10, 30), P.build_plan(objects(["k0"]), objects(["k%d" % i for i in range(8)]))]
    messages = [P.delete_guard(plan, max_delete=5, names=ROLE_NAMES) for plan in plans]
    assert "set promote_s3_allow_empty_source=true to empty the target" in messages[0]
    assert "more than promote_s3_max_delete=5 (raise it to 30, or set promote_s3_force_delete=true)" in messages[1]
    assert "more than promote_s3_max_delete_percent=50" in messages[2]
    for message in messages:
        assert re.findall(r"(?<!promote_s3_)\b(?:max_delete|max_delete_percent|allow_empty_source|force_delete)\b",
                          message) == [], message
    # names not given stay the options' own
    assert "set force_delete=true" in P.delete_guard(guard_plan(10, 30), names={"max_delete": "limit"})


def test_guard_that_passes_the_preflight_passes_the_prune():
    # The role plans a mirror before copying (preflight), and prunes after the copy: whatever the preflight let
    # through must not be refused once the database is swapped.
    rng = random.Random(18)
    passed_with_deletions = 0
    for _round in range(500):
        universe = ["k%03d" % i for i in range(rng.randint(1, 60))]
        source = [k for k in universe if rng.random() < rng.random()]
        target = [k for k in universe if rng.random() < rng.random()]
        options = dict(max_delete=rng.choice([5, 1000]), max_delete_percent=rng.choice([0, 20, 50, 90]),
                       max_delete_percent_min_count=rng.choice([0, 3, 10]), allow_empty_source=rng.random() < 0.5)
        preflight = P.build_plan(objects(source), objects(target), "mirror")
        if P.delete_guard(preflight, **options) is None:
            prune = P.build_plan(objects(source), objects(set(source) | set(target)), "prune")
            assert P.delete_guard(prune, **options) is None, (source, target, options)
            passed_with_deletions += bool(len(prune.deletes))
    assert passed_with_deletions > 100


def test_guard_without_deletions_is_silent():
    assert P.delete_guard(guard_plan(0, 0)) is None
    assert P.delete_guard(P.build_plan([], [("a", 1, "e")], "copy")) is None


# ---------------------------------------------------------------- results and diff

def test_key_lists_are_full_target_keys_truncated_with_totals():
    plan = P.build_plan([("n%d" % i, 1, "e") for i in range(5)], [("o%d" % i, 1, "e") for i in range(3)])
    lists = P.plan_key_lists(plan, "b/", 2)
    assert lists["changed_keys"] == ["b/n0", "b/n1"] and lists["changed_keys_total"] == 5
    assert lists["deleted_keys"] == ["b/o0", "b/o1"] and lists["deleted_keys_total"] == 3
    assert lists["keys_truncated"]
    assert not P.plan_key_lists(plan, "b/", 10)["keys_truncated"]


def test_diff_lists_adds_updates_deletes_and_truncates():
    plan = P.build_plan([("a", 1, "x"), ("b", 2, "y"), ("c", 3, "z")], [("b", 5, "y"), ("d", 4, "w")])
    diff = P.build_diff(plan, "bucket", "p/", 10)
    assert diff["after"] == "p/a (added, 1 bytes)\np/b (updated, 2 bytes)\np/c (added, 3 bytes)\n"
    assert diff["before"] == "p/b\np/d (deleted, 4 bytes)\n"
    assert "2 to add, 1 to update, 1 to delete" in diff["before_header"]
    small = P.build_diff(plan, "bucket", "p/", 1)
    assert "... and 2 more objects added or updated" in small["after"]
    assert small["before"].count("\n") == 1  # only the deletion (limit 1) shown
    assert P.build_diff(P.build_plan([], []), "b", "", 5)["after"] == ""


def test_plan_summary_counts():
    plan = P.build_plan(SRC, TGT, "mirror")
    P.resolve_verified(plan, [False, False])
    summary = plan.summary()
    assert summary["to_copy"] == 1 and summary["to_update"] == 3 and summary["to_delete"] == 1
    assert summary["bytes_to_copy"] == 1 + 6 + 3 + 4
    assert summary["bytes_to_delete"] == 5
    assert summary["unchanged"] == 1


def test_failure_message_names_each_reason_once_and_counts_the_rest():
    outage = "ServiceUnavailable: Please reduce your request rate. (CopyObject)"
    denied = "AccessDenied: x (CopyObject)"
    failed = [("b/%02d" % i, outage) for i in range(38)] + [("a/1", denied), ("c/9", denied)]
    message = P.failure_message(failed, nothing_deleted=True)
    assert message.startswith("40 objects failed after retries; nothing was deleted: ")
    assert message.count(outage) == 1 and message.count("AccessDenied") == 1
    assert "AccessDenied: x (CopyObject) (a/1, c/9)" in message
    assert "b/17, ...)" in message and "b/18" not in message  # 20 keys named in all
    assert message.endswith(" ... and 20 more")
    assert P.failure_message([("k", "boom")]) == "1 object failed after retries: boom (k)"
