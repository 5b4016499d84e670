"""TargetListing: the target's pages, read ahead at the source's page ends, must be exactly the target's keys.

The S3 side is an in-process ListObjectsV2 over a sorted key list, with
random delays, so that answers arrive in every order; the tests over HTTP
(moto, rclone serve s3) are in tests/integration/test_s3_mirror.py.
"""

from __future__ import annotations

import random
import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ansible_collections.casper.directus_promote.plugins.module_utils import s3_listing as L
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import PlanError


class Listed:
    """ListObjectsV2 semantics over sorted keys (Prefix, StartAfter, MaxKeys), recording every call."""

    def __init__(self, keys, delay=0.0, seed=0, fail_after=(), order=None, first_delay=0.0):
        self.keys = sorted(keys) if order is None else order
        self.delay = delay
        self.first_delay = first_delay  # the first page (no StartAfter) takes this long
        self.rng = random.Random(seed)
        self.fail_after = set(fail_after)
        self.calls = []
        self.lock = threading.Lock()

    def list_objects_v2(self, Bucket, MaxKeys, Prefix="", StartAfter=None):  # noqa: N803 - boto3's names
        with self.lock:
            self.calls.append(StartAfter)
            pause = self.rng.random() * self.delay + (self.first_delay if StartAfter is None else 0.0)
        time.sleep(pause)
        if StartAfter in self.fail_after:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "ListObjectsV2")
        after = [k for k in self.keys if k.startswith(Prefix) and (StartAfter is None or k > StartAfter)]
        page = after[:MaxKeys]
        return {"Contents": [{"Key": k, "Size": 1, "ETag": '"e"'} for k in page], "IsTruncated": len(after) > MaxKeys}


def source_pages(keys, page_size, prefix=""):
    keys = sorted(k for k in keys if k.startswith(prefix))
    chunks = [keys[i:i + page_size] for i in range(0, len(keys), page_size)] or [[]]
    for number, chunk in enumerate(chunks):
        yield {"Contents": [{"Key": k} for k in chunk], "IsTruncated": number < len(chunks) - 1}


def run(source_keys, target, page_size=3, depth=4, source_prefix="", target_prefix=""):
    """Drive a TargetListing as s3_mirror does: the source through follow() in its own thread, the target merged."""
    listing = L.TargetListing(target, "dst", target_prefix, source_prefix, depth, page_size=page_size)
    source = L.prefetched(listing.follow(source_pages(source_keys, page_size, source_prefix)), depth=depth + 1)
    got = []
    for page in listing.pages():
        got.extend(obj["Key"] for obj in page["Contents"])
        next(source, None)  # the merge takes source pages along the way
    list(source)
    return got, listing


def target_pages(keys, page_size):
    return max(1, -(-len(keys) // page_size))


@pytest.mark.parametrize("seed", range(40))
def test_random_targets_are_listed_exactly_each_start_once(seed):
    rng = random.Random(seed)
    universe = ["k%03d" % i for i in range(rng.randint(0, 120))] + ["k%03dx" % i for i in range(0, 120, 7)]
    source_keys = [k for k in universe if rng.random() < rng.choice((0.3, 0.9, 1.0))]
    kind = rng.choice(("same", "subset", "superset", "shifted", "random"))
    if kind == "same":
        target_keys = list(source_keys)
    elif kind == "subset":
        target_keys = [k for k in source_keys if rng.random() < 0.6]
    elif kind == "superset":
        target_keys = source_keys + [k + "+" for k in source_keys if rng.random() < 0.4] + ["z%02d" % i for i in range(rng.randint(0, 20))]
    elif kind == "shifted":
        target_keys = [k + "0" for k in source_keys]
    else:
        target_keys = [k for k in universe if rng.random() < 0.5]
    target = Listed(target_keys, delay=0.002, seed=seed)
    page_size = rng.choice((1, 2, 3, 7))
    got, listing = run(source_keys, target, page_size=page_size, depth=rng.choice((1, 2, 4, 8)))
    assert got == sorted(set(target_keys))
    assert len(target.calls) == len(set(target.calls)) == listing.requests
    source_ends = max(0, target_pages(source_keys, page_size) - 1)
    # the target's pages, each source page end once, and at most one next link of each read-ahead answer (which
    # one the chain uses depends on the order the answers arrive in: on a loaded machine, any order)
    assert len(target.calls) <= target_pages(target_keys, page_size) + 2 * source_ends


@pytest.mark.parametrize("page_size", [1, 3, 10])
def test_the_same_keys_cost_one_request_a_page(page_size):
    keys = ["a/%04d" % i for i in range(95)]
    target = Listed(["b/" + k[2:] for k in keys], delay=0.001)
    got, _listing = run(keys, target, page_size=page_size, source_prefix="a/", target_prefix="b/")
    assert got == sorted(target.keys)
    assert sorted(target.calls, key=str) == sorted([None] + got[page_size - 1:-1:page_size], key=str)


@pytest.mark.parametrize("extra", [1, 2, 5])
def test_a_few_extra_target_keys_still_cost_one_request_a_page(extra):
    # s3_mirror's trash manifest sorts before "uploads/": every target page then ends a key before the source's.
    # Reading ahead at the source's page ends exactly, each of those answers would start past the chain's position,
    # go unused, and the chain would ask again for each page, one at a time.
    keys = ["uploads/%04d" % i for i in range(400)]
    target = Listed(["_trash/%d" % i for i in range(extra)] + keys, first_delay=0.2)
    got, _listing = run(keys, target, page_size=100, depth=8)
    assert got == sorted(target.keys)
    assert len(target.calls) == len(set(target.calls)) == target_pages(target.keys, 100)


@pytest.mark.parametrize("seed", range(12))
def test_random_targets_with_large_pages_are_listed_exactly(seed):
    # pages of 20 keys and more read ahead a margin before the source's page ends
    rng = random.Random(seed)
    source_keys = ["k%04d" % i for i in range(rng.randint(0, 600)) if rng.random() < 0.9]
    target_keys = [k for k in source_keys if rng.random() < rng.choice((0.5, 0.99, 1.0))]
    target_keys += {"k%04d+" % rng.randint(0, 700) for _extra in range(rng.randint(0, 30))}
    target = Listed(target_keys, delay=0.002, seed=seed)
    page_size = rng.choice((20, 40, 100))
    got, listing = run(source_keys, target, page_size=page_size, depth=rng.choice((1, 4, 8)))
    assert got == sorted(set(target_keys))
    assert len(target.calls) == len(set(target.calls)) == listing.requests
    assert len(target.calls) <= target_pages(target_keys, page_size) + 2 * max(0, target_pages(source_keys, page_size) - 1)


def test_an_empty_target_costs_one_request():
    target = Listed([], delay=0.001)
    got, _listing = run(["k%03d" % i for i in range(100)], target)
    assert got == [] and target.calls == [None]


def test_a_target_that_fits_one_page_costs_one_request():
    target = Listed(["k001", "k050", "zzz"])
    got, _listing = run(["k%03d" % i for i in range(100)], target)
    assert got == ["k001", "k050", "zzz"] and target.calls == [None]


def test_reading_ahead_starts_at_once_when_the_target_has_more_pages():
    # The source's page ends are asked for before the merge gets there: with the merge not reading at all,
    # the answers for the first source page ends are requested already.
    keys = ["k%03d" % i for i in range(30)]
    target = Listed(keys)
    listing = L.TargetListing(target, "dst", "", "", 4, page_size=3)
    list(listing.follow(source_pages(keys, 3)))
    deadline = time.monotonic() + 5
    while len(target.calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(target.calls) == {None, "k002", "k005", "k008"}


def test_a_failed_answer_nobody_needs_does_not_fail_the_listing():
    # The target lacks k002, where the first source page ends: the chain goes on from k003, so an answer
    # for k002 (if it was asked for at all) is never used, and its error with it.
    source_keys = ["k%03d" % i for i in range(12)]
    target = Listed([k for k in source_keys if k != "k002"], fail_after={"k002"})
    got, _listing = run(source_keys, target, page_size=3)
    assert got == sorted(target.keys)


def test_a_failed_answer_the_listing_needs_is_a_listing_error():
    keys = ["k%03d" % i for i in range(12)]
    target = Listed(keys, fail_after={"k005"})
    with pytest.raises(L.ListingError) as info:
        run(keys, target, page_size=3)
    assert info.value.side == "target" and "InternalError" in info.value.message()


def test_a_server_out_of_order_is_refused():
    target = Listed([], order=["k001", "k003", "k002", "k004"])
    with pytest.raises(PlanError, match="not in UTF-8 binary key order"):
        run(["k%03d" % i for i in range(6)], target, page_size=10)


def test_a_truncated_page_without_keys_is_an_error_not_a_loop():
    class Empty(Listed):
        def list_objects_v2(self, **kwargs):
            super().list_objects_v2(**kwargs)
            return {"IsTruncated": True}

    with pytest.raises(L.ListingError, match="target"):
        run(["k1"], Empty([]))


# ---------------------------------------------------------------- the source listing (botocore's paginator)

def stubbed_pages(*pages):
    """listing_pages() over a real S3 client whose ListObjectsV2 answers are ``pages``, in order."""
    client = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example-secret",
                                   region_name="us-east-1").client("s3")
    with Stubber(client) as stub:
        for page in pages:
            stub.add_response("list_objects_v2", page)
        yield from L.listing_pages(client, "source", "src", "")


def test_the_source_listing_follows_continuation_tokens():
    pages = list(stubbed_pages({"Contents": [{"Key": "a"}], "IsTruncated": True, "NextContinuationToken": "t1"},
                               {"Contents": [{"Key": "b"}], "IsTruncated": False}))
    assert [obj["Key"] for page in pages for obj in page["Contents"]] == ["a", "b"]


def test_a_source_page_truncated_without_a_token_is_a_listing_error_not_the_end():
    # botocore's paginator would end here without an error, with the rest of the source unlisted
    pages = stubbed_pages({"Contents": [{"Key": "a"}, {"Key": "b"}], "IsTruncated": True})
    with pytest.raises(L.ListingError) as info:
        list(pages)
    assert info.value.side == "source"
    assert info.value.message() == (
        "Cannot list the source bucket 'src': the server answered a truncated page (IsTruncated=true) without a "
        "continuation token after key 'b', so the rest of the listing cannot be asked for; refusing to plan on part of it")
