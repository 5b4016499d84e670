"""ReadAheadListing: a bucket's pages, read ahead at guessed page starts, must be exactly the bucket's keys.

The S3 side is an in-process ListObjectsV2 over a sorted key list, with
random delays, so that answers arrive in every order; the tests over HTTP
(moto, rclone serve s3) are in tests/integration/test_s3_mirror.py.
"""

from __future__ import annotations

import bisect
import random
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError

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
    """Drive a target ReadAheadListing as s3_mirror does: the source through follow() in its own thread, the target merged."""
    listing = L.ReadAheadListing(target, "target", "dst", target_prefix, depth, source_prefix=source_prefix,
                                 page_size=page_size)
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
    listing = L.ReadAheadListing(target, "target", "dst", "", 4, source_prefix="", page_size=3)
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


# ---------------------------------------------------------------- guesses from the first page's ids

def uuid_keys(count, seed=0, stem="uploads/", thumbnails=0):
    """Directus' file names: ``<uuid>.jpg``, and ``<uuid>__<hash>.jpg`` transformations beside some."""
    rng = random.Random(seed)
    ids = ["%s-%s-4%s-%s-%s" % tuple(("%032x" % rng.getrandbits(128))[a:b] for a, b in ((0, 8), (8, 12), (13, 16), (16, 20), (20, 32)))
           for _i in range(count)]
    return sorted([stem + i + ".jpg" for i in ids] + [stem + i + "__a1b2.jpg" for i in ids[:thumbnails]])


def test_guesses_start_at_the_last_key_and_step_about_a_page_over_the_hex_range():
    keys = uuid_keys(10000)
    guesses = L.id_guesses(keys[:1000], "", 1000)
    assert guesses[0] == keys[999]
    assert guesses == sorted(guesses) and len(set(guesses)) == len(guesses)
    assert all(re.fullmatch(r"uploads/[0-9a-f]{8}", guess) for guess in guesses[1:])
    assert int(guesses[-1][8:], 16) < 16 ** 8 <= int(guesses[-1][8:], 16) + (int(guesses[2][8:], 16) - int(guesses[1][8:], 16))
    # 9,000 keys after the first page, a guess every 0.85 estimated pages
    assert 9 / L.PAGE_SPACING - 2 <= len(guesses) - 1 <= 9 / L.PAGE_SPACING + 2
    # how many keys lie between two guesses: about 850, as estimated
    starts = [bisect.bisect_right(keys, guess) for guess in guesses[1:]]
    between = [b - a for a, b in zip(starts, starts[1:])]
    assert 750 <= min(between) and max(between) <= 950, between


def test_guesses_under_a_prefix_and_beside_a_few_other_keys():
    keys = ["assets/_directus_promote_trash/run.json"] + uuid_keys(3000, seed=1, stem="assets/", thumbnails=500)
    guesses = L.id_guesses(keys[:100], "assets/", 100)
    assert guesses[0] == keys[99] and len(guesses) > 20
    assert all(guess.startswith("assets/") for guess in guesses)


@pytest.mark.parametrize("page, prefix", [
    (["k%04d" % i for i in range(100)], ""),  # not hex ids below a stem: "k0..." (decimal counters are no ids either)
    (["uploads/%s.jpg" % name for name in ("anna", "bert", "carl", "dora")], ""),
    (uuid_keys(50) + ["uploads/readme.txt"], ""),  # the last key is no id
    (uuid_keys(40) + ["uploads/x%d" % i for i in range(10)], ""),  # fewer than nine in ten ids
    (["uploads/0000000a", "uploads/0000000a.jpg"], ""),  # no spread
    (["uploads/0000000a"], ""),
    ([], ""),
])
def test_no_guesses_when_the_keys_are_no_spread_hex_ids(page, prefix):
    assert L.id_guesses(sorted(page), prefix, len(page) or 1) == []


def test_a_prefix_made_of_hex_digits_stays_the_stem():
    keys = ["cafe/%08x.jpg" % (i * 1000003) for i in range(200)]
    guesses = L.id_guesses(["cafe" + k[4:] for k in keys][:50], "cafe", 50)
    assert guesses and all(guess.startswith("cafe") for guess in guesses)


def test_guesses_are_capped():
    keys = ["%08x" % i for i in range(0, 1000)]  # dense: the estimate is billions of pages
    guesses = L.id_guesses(keys, "", 1000, limit=50)
    assert len(guesses) == 50 and guesses[0] == keys[-1]


def read(listing):
    return [obj["Key"] for page in listing.pages() for obj in page["Contents"]]


@pytest.mark.parametrize("seed", range(30))
def test_random_id_buckets_are_listed_exactly(seed):
    # uniform ids, ids denser or sparser after the first page than in it, ids with other keys among and after them
    rng = random.Random(seed)
    page_size = rng.choice((5, 20, 100))
    keys = uuid_keys(rng.randint(0, 40 * page_size), seed=seed, thumbnails=rng.randint(0, 50))
    kind = rng.choice(("uniform", "dense first", "sparse first", "others"))
    if kind == "dense first":
        keys = sorted(set(keys + ["uploads/00%06x" % rng.getrandbits(24) for _i in range(3 * page_size)]))
    elif kind == "sparse first":
        keys = [k for k in keys if k > "uploads/4" or rng.random() < 0.2]
    elif kind == "others":
        keys = sorted(keys + ["uploads/_trash/%d" % i for i in range(rng.randint(0, 3))] + ["z/%d" % i for i in range(rng.randint(0, 3 * page_size))])
    bucket = Listed(keys, delay=0.002, seed=seed)
    listing = L.ReadAheadListing(bucket, "source", "src", "uploads/" if kind != "others" else "", rng.choice((1, 4, 8)),
                                 page_size=page_size)
    got = read(listing)
    assert got == [k for k in keys if kind == "others" or k.startswith("uploads/")]
    assert len(bucket.calls) == len(set(bucket.calls)) == listing.requests


@pytest.mark.parametrize("seed", range(3))
def test_uniform_ids_cost_about_a_request_per_guess(seed):
    # pages of 1,000 as S3 sends them: the first page estimates the rest within a few percent
    keys = uuid_keys(20000, seed=seed, thumbnails=2000)
    bucket = Listed(keys)
    listing = L.ReadAheadListing(bucket, "source", "src", "uploads/", 8)
    assert read(listing) == keys
    pages = len(keys) / 1000
    # a guess every 0.85 pages, and at most a few pages whose keys fell short of the next guess
    assert pages <= len(bucket.calls) <= pages / L.PAGE_SPACING + 4, len(bucket.calls)


def test_id_guesses_are_asked_for_before_the_chain_gets_there():
    # Nobody reads the pages: the first answer alone sends the guesses, as many as the depth allows (6 answers
    # not used yet, the first one among them).
    keys = uuid_keys(2000, seed=3)
    bucket = Listed(keys)
    listing = L.ReadAheadListing(bucket, "source", "src", "", 6, page_size=100)
    deadline = time.monotonic() + 5
    while len(bucket.calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert len(bucket.calls) == 6 and bucket.calls[0] is None and bucket.calls[1] == keys[99]
    assert all(re.fullmatch(r"uploads/[0-9a-f]{8}", after) for after in bucket.calls[2:])
    assert read(listing) == keys


def test_a_target_with_id_guesses_of_its_own_does_not_follow_the_source():
    keys = uuid_keys(1200, seed=4)
    target = Listed(keys, first_delay=0.05)
    got, listing = run(keys, target, page_size=100, depth=8)
    assert got == keys
    # the target's own guesses only: none of them a source page end a margin early
    source_ends = {keys[i * 100 + 99 - 5] for i in range(11)}
    assert not source_ends & set(target.calls)
    assert listing.requests <= 12 / L.PAGE_SPACING + 4


def test_a_source_error_names_the_source():
    keys = uuid_keys(300, seed=5)
    bucket = Listed(keys, fail_after={keys[99]})
    with pytest.raises(L.ListingError) as info:
        read(L.ReadAheadListing(bucket, "source", "src", "", 4, page_size=100))
    assert info.value.side == "source" and info.value.message().startswith("Cannot list the source bucket 'src'")
