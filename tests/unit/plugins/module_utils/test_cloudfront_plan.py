"""Unit tests of the pure planning functions of cloudfront_invalidate (no service needed)."""

from __future__ import annotations

import random
import string

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import cloudfront_plan as plan
from ansible_collections.casper.directus_promote.plugins.module_utils.cloudfront_plan import PlanError


def covered(path, by):
    """Whether CloudFront path ``by`` (maybe a wildcard) invalidates ``path``."""
    if by.endswith("*"):
        return path.startswith(by[:-1])
    return path == by


def assert_covers(result, originals):
    for path in originals:
        assert any(covered(path, r) for r in result), "%s not covered by %s" % (path, result)


# -- encoding -------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    ("index.html", "/index.html"),                      # leading slash added
    ("  /a.html\n", "/a.html"),                          # surrounding whitespace removed
    ("/a b.jpg", "/a%20b.jpg"),                          # space
    ("/ü/é.png", "/%C3%BC/%C3%A9.png"),                  # non-ASCII as UTF-8, upper-case hex
    ("/日本.txt", "/%E6%97%A5%E6%9C%AC.txt"),
    ("/100%.html", "/100%25.html"),                      # lone % is encoded
    ("/a%20b", "/a%20b"),                                # an existing escape is kept...
    ("/a%2fb", "/a%2Fb"),                                # ...with upper-case hex
    ("/a%zz", "/a%25zz"),                                # % not followed by two hex digits
    ("/a%2", "/a%252"),
    ("/c++.html", "/c%2B%2B.html"),                      # + in the path part (S3 reads it as a space)
    ("/~user/{x}|[y]^`\\\"<>", "/%7Euser/%7Bx%7D%7C%5By%5D%5E%60%5C%22%3C%3E"),  # RFC 1738 unsafe
    ("/a#b", "/a%23b"),
    ("/keep-_.!$'(),;:@&=/x", "/keep-_.!$'(),;:@&=/x"),  # safe characters stay
    ("/images/*", "/images/*"),                          # trailing wildcard
    ("*", "/*"),
    ("/page?lang=en&q=a b+c", "/page?lang=en&q=a%20b+c"),  # query string: ? = & + stay, space encoded
    ("/p?x=1*", "/p?x=1*"),
])
def test_normalise_path(given, expected):
    assert plan.normalise_path(given) == expected


def test_normalise_path_is_idempotent():
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + " %+~#?&=*üé日/" + string.punctuation
    for _i in range(500):
        raw = "/" + "".join(rng.choice(alphabet) for _i in range(rng.randint(0, 20))).replace("*", "")
        once = plan.normalise_path(raw)
        assert plan.normalise_path(once) == once
        assert all(ord(c) < 128 and c not in " \"<>\\^`{|}~" for c in once)


@pytest.mark.parametrize("bad, message", [
    ("", "empty path"),
    ("   ", "empty path"),
    ("/a*/b", "only allowed as the last character"),
    ("/**", "only allowed as the last character"),
    ("/" + "a" * 4000, "CloudFront allows 4000"),
    ("/\ud800", "lone surrogate"),
])
def test_normalise_path_rejects(bad, message):
    with pytest.raises(PlanError, match=message):
        plan.normalise_path(bad)


@pytest.mark.parametrize("key, key_prefix, path_prefix, expected", [
    ("a.jpg", "", "", "/a.jpg"),
    ("uploads/a.jpg", "uploads", "", "/a.jpg"),
    ("uploads/a.jpg", "uploads/", "", "/a.jpg"),
    ("uploads/a.jpg", "uploads/", "/assets", "/assets/a.jpg"),
    ("uploads/sub/a.jpg", "uploads", "assets/", "/assets/sub/a.jpg"),
    ("uploads/a+b c.jpg", "uploads", "", "/a%2Bb%20c.jpg"),   # + and space encoded
    ("uploads/what?.jpg", "uploads", "", "/what%3F.jpg"),      # ? is part of a key, not a query
    ("uploads/50%#*.jpg", "uploads", "", "/50%25%23%2A.jpg"),  # %, # and * literal in keys
    ("uploads/%20.jpg", "uploads", "", "/%2520.jpg"),          # keys are raw: an escape-like % is literal
    ("uploads/~ü.jpg", "uploads", "", "/%7E%C3%BC.jpg"),
    ("uploads/", "uploads", "/assets", "/assets/"),           # the folder itself
    ("/lead", "", "", "//lead"),                               # a key starting with / keeps it
])
def test_key_to_path(key, key_prefix, path_prefix, expected):
    assert plan.key_to_path(key, key_prefix, plan.normalise_path_prefix(path_prefix)) == expected


def test_key_outside_key_prefix_is_an_error():
    with pytest.raises(PlanError, match="not under key_prefix"):
        plan.key_to_path("uploadsX/a.jpg", "uploads", "")
    with pytest.raises(PlanError, match="not under key_prefix"):
        plan.key_to_path("other/a.jpg", "uploads/", "")


@pytest.mark.parametrize("bad", ["/a*", "/a?x"])
def test_path_prefix_rejects_wildcard_and_query(bad):
    with pytest.raises(PlanError, match="path_prefix"):
        plan.normalise_path_prefix(bad)


def test_normalise_paths_merges_dedupes_sorts_and_reports_every_error():
    result = plan.normalise_paths(paths=["/b", "b", "/a b", "/a%20b"], keys=["up/a b", "up/c"],
                                  key_prefix="up/", path_prefix="/")
    assert result == ["/a%20b", "/b", "/c"]
    with pytest.raises(PlanError) as info:
        plan.normalise_paths(paths=["", "/ok", "/x*y"], keys=["elsewhere/k"], key_prefix="up")
    message = str(info.value)
    assert message.startswith("3 invalid entries")
    assert "empty path" in message and "'/x*y'" in message and "'elsewhere/k'" in message


# -- wildcards, collapse ---------------------------------------------------------------------------------
def test_remove_covered_drops_paths_under_a_wildcard():
    assert plan.remove_covered(["/a/*", "/a/b.jpg", "/a/c/*", "/a", "/ab", "/b*", "/b/c", "/c"]) == \
        ["/a", "/a/*", "/ab", "/b*", "/c"]
    assert plan.remove_covered(["/x", "/x*"]) == ["/x*"]


def test_no_collapse_at_or_below_threshold():
    paths = ["/p%d" % i for i in range(100)]
    assert plan.collapse(sorted(paths), 100) == (sorted(paths), False, None)


def test_collapse_to_prefix_wildcards_within_limits():
    paths = sorted(["/uploads/%d.jpg" % i for i in range(500)] + ["/index.html", "/css/a.css", "/css/b.css"])
    result, collapsed, reason = plan.collapse(paths, 100)
    assert collapsed
    assert reason.startswith("503 paths exceed collapse_threshold 100: collapsed to %d paths" % len(result))
    assert len(result) <= 15
    assert sum(1 for p in result if p.endswith("*")) <= 15
    assert "/*" not in result and "/uploads/*" not in result  # narrower than the directory
    assert "/index.html" in result                              # a single file stays a single path
    assert_covers(result, paths)


def test_collapse_to_everything_when_nothing_narrower_fits():
    # 16 top-level directories with two files each: no 15 prefixes cover them without '/*'.
    paths = sorted("/%s/f%d" % (d, i) for d in "0123456789abcdef" for i in range(2))
    result, collapsed, reason = plan.collapse(paths, 10)
    assert (result, collapsed) == (["/*"], True)
    assert reason == "32 paths exceed collapse_threshold 10: collapsed to '/*' (everything)"


def test_collapse_uuid_folder_to_one_wildcard():
    rng = random.Random(1)
    paths = sorted("/assets/%032x.jpg" % rng.getrandbits(128) for _i in range(2000))
    result, collapsed, _reason = plan.collapse(paths, 100)
    assert collapsed and result == ["/assets/*"]   # 16 first hex digits do not fit in 15 wildcards


def test_collapse_when_too_many_wildcards_even_below_threshold():
    paths = sorted("/d%02d/*" % i for i in range(20))
    result, collapsed, reason = plan.collapse(paths, 100)
    assert collapsed and "20 wildcard paths exceed CloudFront's limit of 15" in reason
    assert sum(1 for p in result if p.endswith("*")) <= 15
    assert_covers(result, [p[:-1] + "x" for p in paths])


def test_collapse_random_inputs_always_cover_and_respect_limits():
    rng = random.Random(7)
    for _i in range(200):
        n = rng.randint(2, 400)
        paths = set()
        for _i in range(n):
            depth = rng.randint(1, 4)
            parts = ["".join(rng.choice("abcxyz01") for _i in range(rng.randint(1, 3))) for _i in range(depth)]
            paths.add("/" + "/".join(parts) + ("*" if rng.random() < 0.05 else ""))
        threshold = rng.randint(0, 60)
        original = plan.remove_covered(sorted(paths))
        result, collapsed, _reason = plan.collapse(original, threshold)
        if collapsed:
            assert len(result) <= min(max(threshold, 1), 15)
            assert sum(1 for p in result if p.endswith("*")) <= 15
        else:
            assert result == original
        assert_covers(result, [p[:-1] if p.endswith("*") else p for p in original])
        assert result == sorted(result)


def test_collapse_threshold_zero_always_collapses_to_one_path():
    result, collapsed, _reason = plan.collapse(["/a/x", "/a/y"], 0)
    assert (result, collapsed) == (["/a/*"], True)


# -- batches and references ------------------------------------------------------------------------
def test_split_batches():
    paths = ["/p%05d" % i for i in range(6500)]
    batches = plan.split_batches(paths)
    assert [len(b) for b in batches] == [3000, 3000, 500]
    assert [p for b in batches for p in b] == paths
    assert plan.split_batches([]) == []


def test_derived_reference_is_deterministic_and_order_independent():
    a = plan.derived_reference("run-1", ["/b", "/a"])
    assert a == plan.derived_reference("run-1", ["/a", "/b"])
    assert a.startswith(plan.REFERENCE_PREFIX) and len(a) == len(plan.REFERENCE_PREFIX) + 40
    assert a != plan.derived_reference("run-2", ["/a", "/b"])   # a new promotion invalidates again
    assert a != plan.derived_reference("run-1", ["/a", "/c"])   # other paths, other reference


def test_caller_references_per_batch():
    batches = [["/a"], ["/b"], ["/c"]]
    refs = plan.caller_references(batches, run_id="r")
    base = plan.derived_reference("r", ["/a", "/b", "/c"])
    assert refs == [base + "-1", base + "-2", base + "-3"]
    assert plan.caller_references([["/a"]], run_id="r", caller_reference="mine") == ["mine"]
    assert plan.caller_references(batches, caller_reference="mine") == ["mine-1", "mine-2", "mine-3"]
    with pytest.raises(PlanError, match="run_id"):
        plan.caller_references(batches)


def test_build_plan_end_to_end():
    keys = ["uploads/%04d.jpg" % i for i in range(7000)]
    result = plan.build_plan(keys=keys, key_prefix="uploads", path_prefix="/assets", collapse_threshold=10000, run_id="r")
    assert [len(b["paths"]) for b in result["batches"]] == [3000, 3000, 1000]
    assert result["collapsed"] is False and result["collapse_reason"] is None
    assert result["paths"][0] == "/assets/0000.jpg"
    assert len({b["caller_reference"] for b in result["batches"]}) == 3
    again = plan.build_plan(keys=list(reversed(keys)), key_prefix="uploads/", path_prefix="assets", collapse_threshold=10000, run_id="r")
    assert again == result

    collapsed = plan.build_plan(keys=keys, key_prefix="uploads", path_prefix="/assets", run_id="r")
    assert collapsed["collapsed"] is True and len(collapsed["paths"]) <= 15
    assert len(collapsed["batches"]) == 1

    assert plan.build_plan(paths=[], keys=[], run_id="r") == {
        "paths": [], "collapsed": False, "collapse_reason": None, "batches": []}
    with pytest.raises(PlanError, match="collapse_threshold"):
        plan.build_plan(paths=["/a"], collapse_threshold=-1, run_id="r")


def test_status_is_case_insensitive():
    assert plan.status_is("COMPLETED", "Completed") and plan.status_is("Completed", "completed")
    assert not plan.status_is("InProgress", "Completed") and not plan.status_is(None, "Completed")


def test_backoff_delays():
    delays = plan.backoff_delays(initial=2, factor=2, maximum=20)
    assert [next(delays) for _i in range(6)] == [2, 4, 8, 16, 20, 20]
