"""s3_mirror against the sandbox's moto S3 server over HTTP.

Write requests are counted, and failures injected, with the sandbox's
RecordingProxy between the module and moto.
"""

from __future__ import annotations

import datetime
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest

from sandbox.directus_fixture import bucket_listing

MODULE = "s3_mirror"
MIB = 1024 * 1024

FULL_HEADERS = dict(
    ContentType="image/png", CacheControl="public, max-age=31536000", ContentDisposition='inline; filename="a b.png"',
    ContentEncoding="identity", ContentLanguage="de-CH",
    Expires=datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
    Metadata={"directus-file-id": "0f7c1f4e", "owner": "staging"},
)
TAGS = "classification=public&team=web%20site"
AWKWARD = ["space key.txt", "unicode-\u00e4\u00f6\u00fc-\u4e2d\u6587.txt", "plus+sign.txt", "percent%20literal.txt",
           "question?mark.txt", "hash#tag.txt", "deep/ nested /x&y=z.txt", "emoji-\U0001f600.txt"]


def unique(name):
    return "s3m-%s-%s" % (name, uuid.uuid4().hex[:10])


@pytest.fixture
def buckets(sandbox):
    """A fresh (source, target) bucket pair per test."""
    s3 = sandbox.aws.client("s3")
    src, dst = unique("src"), unique("dst")
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    return src, dst


def conn(sandbox, endpoint=None, **extra):
    # the asset trash has tests of its own (test_s3_mirror_trash.py); here the target holds the mirror only
    return sandbox.aws.module_args(endpoint, **{"trash": False, **extra})


def put_many(s3, bucket, keys, body=lambda key: key.encode("utf-8") * 3, **kwargs):
    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=body(key), **kwargs)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, keys))


def contents(s3, bucket, prefix=""):
    return {key[len(prefix):]: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in bucket_listing(s3, bucket, prefix)}


def writes(proxy):
    return [(r.method, r.path) for r in proxy.writes()]


def object_headers(s3, bucket, key):
    head = s3.head_object(Bucket=bucket, Key=key)
    metadata = dict(head["Metadata"])
    metadata.pop("mirror-source-etag", None)
    names = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "ContentLength")
    fields = {name: head.get(name) for name in names}
    fields["Expires"] = head["ResponseMetadata"]["HTTPHeaders"].get("expires")
    fields["Metadata"] = metadata
    tags = sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"])
    return fields, tags


# ---------------------------------------------------------------- mirror, re-run, check mode

def test_mirror_then_rerun_writes_nothing(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["a/%02d.jpg" % i for i in range(20)], ContentType="image/jpeg")
    put_many(s3, dst, ["a/00.jpg", "a/01.jpg", "old/1.txt", "old/2.txt"])
    s3.put_object(Bucket=dst, Key="a/01.jpg", Body=b"a/01.jpg" * 3)  # same content as the source: unchanged
    s3.put_object(Bucket=dst, Key="a/00.jpg", Body=b"stale")  # changed

    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["counts"] == {"copied": 18, "updated": 1, "deleted": 2, "unchanged": 1,
                                "bytes_copied": sum(len(("a/%02d.jpg" % i).encode()) * 3 for i in range(20) if i != 1)}
    assert sorted(result["deleted_keys"]) == ["old/1.txt", "old/2.txt"]
    assert result["changed_keys_total"] == 19 and "a/00.jpg" in result["changed_keys"]
    assert result["plan"]["copy_method"] == "server"
    assert contents(s3, dst) == contents(s3, src)
    assert s3.head_object(Bucket=dst, Key="a/05.jpg")["ContentType"] == "image/jpeg"
    # prune happens only after every copy: no copy request after the first delete request
    methods = [(r.method, r.query) for r in recording_proxy.requests if r.is_write]
    first_delete = next(i for i, (m, q) in enumerate(methods) if m == "DELETE" or "delete" in q)
    assert all(m != "PUT" for m, _q in methods[first_delete:])
    assert len([m for m, _q in methods if m == "PUT"]) == 19

    recording_proxy.clear()
    again = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert again["changed"] is False, again
    assert again["counts"] == {"copied": 0, "updated": 0, "deleted": 0, "unchanged": 20, "bytes_copied": 0}
    assert writes(recording_proxy) == []
    assert recording_proxy.requests, "the re-run must have listed through the proxy"


def test_check_mode_writes_nothing_and_returns_the_real_plan(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["k%02d" % i for i in range(12)])
    put_many(s3, dst, ["k00", "zz-extra"])
    s3.put_object(Bucket=dst, Key="k01", Body=b"different size")
    before = (bucket_listing(s3, src), bucket_listing(s3, dst))
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst, max_keys_returned=5)

    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert writes(recording_proxy) == []
    assert (bucket_listing(s3, src), bucket_listing(s3, dst)) == before
    assert check["changed"] is True
    assert check["counts"] == {"copied": 10, "updated": 1, "deleted": 1, "unchanged": 1, "bytes_copied": 99}
    # diff lists keys, truncated with totals
    assert "k01 (updated, 9 bytes)" in check["diff"]["after"]
    assert "... and 6 more objects added or updated" in check["diff"]["after"]
    assert "zz-extra (deleted" in check["diff"]["before"]
    assert "10 to add, 1 to update, 1 to delete" in check["diff"]["before_header"]
    assert len(check["changed_keys"]) == 5 and check["changed_keys_total"] == 11 and check["keys_truncated"]

    real = run_module(MODULE, args)
    assert real["plan"] == check["plan"]
    assert real["counts"] == check["counts"]
    assert bucket_listing(s3, dst).keys() == bucket_listing(s3, src).keys()

    recording_proxy.clear()
    after = run_module(MODULE, args, check=True, diff=True)
    assert after["changed"] is False and after["diff"]["after"] == "" and after["diff"]["before"] == ""


# ---------------------------------------------------------------- copy / prune modes, prefixes, awkward keys

def test_copy_then_prune_with_prefix_remapping_and_awkward_keys(sandbox, buckets, run_module):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["assets/" + key for key in AWKWARD] + ["other/not-mirrored.txt"])
    put_many(s3, dst, ["live/gone.txt", "live/" + AWKWARD[0], "elsewhere/keep.txt"])
    args = dict(conn(sandbox), source_bucket=src, source_prefix="assets", target_bucket=dst, target_prefix="live/",
                max_delete_percent=100)

    copy = run_module(MODULE, dict(args, mode="copy"))
    assert not copy.get("failed"), copy.get("msg")
    assert copy["counts"]["copied"] == len(AWKWARD) - 1 and copy["counts"]["updated"] == 1
    assert copy["counts"]["deleted"] == 0 and copy["deleted_keys"] == []
    assert sorted(copy["changed_keys"]) == sorted("live/" + key for key in AWKWARD)
    assert "live/gone.txt" in bucket_listing(s3, dst)

    prune = run_module(MODULE, dict(args, mode="prune"))
    assert prune["changed"] is True and prune["counts"]["copied"] == 0
    assert prune["deleted_keys"] == ["live/gone.txt"]
    assert contents(s3, dst, "live/") == contents(s3, src, "assets/")
    assert "elsewhere/keep.txt" in bucket_listing(s3, dst)  # outside the target prefix
    assert not any(key.startswith("live/other") for key in bucket_listing(s3, dst))

    for mode in ("mirror", "copy", "prune"):
        assert run_module(MODULE, dict(args, mode=mode))["changed"] is False


def test_include_exclude_filters_both_sides(sandbox, buckets, run_module):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["a.jpg", "b.png", "c.txt", "cache/d.jpg"])
    put_many(s3, dst, ["cache/stale.jpg", "old.jpg", "notes.txt"])
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst, include=["*.jpg", "*.png"],
                                     exclude=["cache/*"], max_delete_percent=100))
    assert not result.get("failed"), result.get("msg")
    assert sorted(result["changed_keys"]) == ["a.jpg", "b.png"]
    assert result["deleted_keys"] == ["old.jpg"]
    assert sorted(bucket_listing(s3, dst)) == ["a.jpg", "b.png", "cache/stale.jpg", "notes.txt"]


# ---------------------------------------------------------------- metadata and tags on both copy paths

@pytest.mark.parametrize("copy_method", ["server", "stream"])
def test_metadata_and_tags_identical_on_single_and_multipart_copies(sandbox, buckets, run_module, recording_proxy, copy_method):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    big = bytes(range(256)) * (6 * MIB // 256 + 7)  # > 6 MiB: two parts with a 5 MiB threshold
    s3.put_object(Bucket=src, Key="big file.bin", Body=big, Tagging=TAGS, **FULL_HEADERS)
    s3.put_object(Bucket=src, Key="small+file.png", Body=b"png" * 100, Tagging=TAGS, **FULL_HEADERS)
    s3.put_object(Bucket=src, Key="plain.txt", Body=b"plain")
    # an object uploaded in parts (multipart ETag) but copied with a single CopyObject
    upload = s3.create_multipart_upload(Bucket=src, Key="parts.bin", ContentType="application/x-parts",
                                        Metadata={"k": "v"}, Tagging="p=1")
    part = s3.upload_part(Bucket=src, Key="parts.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1024)
    s3.complete_multipart_upload(Bucket=src, Key="parts.bin", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst, copy_method=copy_method,
                multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)

    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["counts"]["copied"] == 4
    assert result["plan"]["copy_method"] == copy_method
    sent = recording_proxy.requests
    if copy_method == "server":
        assert any("uploadId" in r.query and "x-amz-copy-source-range" in {h.lower() for h in r.headers} for r in sent)
        # the object's bytes never travel through the module: only its tags are read
        assert not any(r.method == "GET" and "big file.bin" in r.path and "tagging" not in r.query for r in sent)
    else:
        assert not any("x-amz-copy-source" in {h.lower() for h in r.headers} and src in r.headers.get("x-amz-copy-source", "")
                       for r in sent)
        assert any(r.method == "GET" and r.path.endswith("/big file.bin") for r in sent)
    for key in ("big file.bin", "small+file.png", "plain.txt", "parts.bin"):
        assert object_headers(s3, dst, key) == object_headers(s3, src, key), key
        assert s3.get_object(Bucket=dst, Key=key)["Body"].read() == s3.get_object(Bucket=src, Key=key)["Body"].read()
    assert s3.head_object(Bucket=dst, Key="big file.bin")["Metadata"]["mirror-source-etag"] == \
        s3.head_object(Bucket=src, Key="big file.bin")["ETag"].strip('"')

    recording_proxy.clear()
    again = run_module(MODULE, args)
    assert again["changed"] is False and again["counts"]["unchanged"] == 4, again
    assert writes(recording_proxy) == []


def test_stream_with_separate_source_credentials_and_auto_detection(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["s/%d.txt" % i for i in range(5)], ContentType="text/plain", Metadata={"m": "1"})
    # different endpoints for the two sides: auto must stream (GET with the source side, PUT with the target's)
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, source_endpoint_url=recording_proxy.url,
                source_access_key="staging-account-key", source_secret_key="staging-account-secret")
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["plan"]["copy_method"] == "stream"
    assert result["counts"]["copied"] == 5
    source_side = recording_proxy.requests
    assert [r.method for r in source_side if r.method not in ("GET", "HEAD")] == []
    assert sum(1 for r in source_side if r.method == "GET" and "/s/" in r.path) == 5
    assert contents(s3, dst) == contents(s3, src)
    assert s3.head_object(Bucket=dst, Key="s/1.txt")["Metadata"] == {"m": "1"}
    assert run_module(MODULE, args)["changed"] is False


# ---------------------------------------------------------------- deletion guard

def test_guard_refuses_empty_source_before_any_change(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, dst, ["keep/%d" % i for i in range(3)])
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst)
    for check in (True, False):
        result = run_module(MODULE, args, check=check)
        assert result["failed"]
        assert "the source lists no object (set allow_empty_source=true to empty the target)" in result["msg"]
        assert result["msg"].endswith("Would delete: keep/0, keep/1, keep/2. Nothing was changed.")
    assert writes(recording_proxy) == []
    assert len(bucket_listing(s3, dst)) == 3
    # copy mode never deletes, so an empty source is no danger there
    assert run_module(MODULE, dict(args, mode="copy"))["changed"] is False
    allowed = run_module(MODULE, dict(args, allow_empty_source=True, max_delete_percent=100))
    assert allowed["counts"]["deleted"] == 3 and bucket_listing(s3, dst) == {}


def test_guard_refuses_too_many_deletions_before_any_change(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["new.txt", "k00"])
    put_many(s3, dst, ["k%02d" % i for i in range(10)])
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst)
    by_count = run_module(MODULE, dict(args, max_delete=5, max_delete_percent=100))
    assert by_count["failed"] and "more than max_delete=5 (raise it to 9, or set force_delete=true)" in by_count["msg"]
    assert "k01" in by_count["msg"] and "k09" in by_count["msg"]
    # defaults: 9 of 10 is above 50 %, and a source of 2 objects is no young target's source
    by_percent = run_module(MODULE, args, check=True)
    assert by_percent["failed"] and by_percent["msg"].startswith(
        "Refusing to delete 9 objects: 90.0% of the target's 10 objects, more than max_delete_percent=50, from a source "
        "of only 2 objects (raise it to 90, or set force_delete=true). Would delete: k01, ")
    # a caller's names for the options (the promote role's variables) replace them in the message
    names = dict(max_delete_percent="promote_s3_max_delete_percent", force_delete="promote_s3_force_delete")
    renamed = run_module(MODULE, dict(args, guard_option_names=names))
    assert "more than promote_s3_max_delete_percent=50, " in renamed["msg"]
    assert "or set promote_s3_force_delete=true)" in renamed["msg"]
    assert writes(recording_proxy) == []
    assert "new.txt" not in bucket_listing(s3, dst)  # not even the copies ran
    forced = run_module(MODULE, dict(args, max_delete=5, force_delete=True))
    assert forced["counts"]["deleted"] == 9 and forced["counts"]["copied"] == 1


def directus_objects(files, thumbnailed):
    """Keys of a Directus storage: originals ``<id>.jpg``, transformations ``<id>__<hash>.jpg`` beside them."""
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, "file-%d" % i).hex for i in range(files)]
    return ["%s.jpg" % i for i in ids] + ["%s__%s.jpg" % (i, t) for i in ids[:thumbnailed] for t in ("a1b2", "c3d4")]


@pytest.mark.parametrize("own", [1, 2, 3])
def test_guard_lets_a_first_promotion_onto_a_young_target_through(sandbox, buckets, run_module, recording_proxy, own):
    # Issue 18: Directus 11.3.5 staging with 10 files (22 objects with thumbnails); a young production of 3 objects,
    # `own` of them its own (not in staging). 2 deletions were 66.7 % of the target and refused with the defaults.
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    staging = directus_objects(10, 6)
    prod = staging[:3 - own] + ["ffffffff-own.jpg", "ffffffff-own__a1b2.jpg", "ffffffff-own__c3d4.jpg"][:own]
    put_many(s3, src, staging)
    put_many(s3, dst, prod)
    assert len(staging) == 22 and len(bucket_listing(s3, dst)) == 3
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst)

    check = run_module(MODULE, args, check=True)
    assert not check.get("failed"), check.get("msg")
    assert (check["plan"]["to_delete"], check["plan"]["to_copy"], check["plan"]["target_objects"]) == (own, 19 + own, 3)
    assert writes(recording_proxy) == [] and len(bucket_listing(s3, dst)) == 3

    real = run_module(MODULE, args)
    assert not real.get("failed"), real.get("msg")
    assert real["plan"] == check["plan"] and real["counts"]["deleted"] == own
    assert contents(s3, dst) == contents(s3, src)
    assert run_module(MODULE, args)["changed"] is False


def test_guard_refuses_a_source_that_is_a_small_fraction_of_the_target(sandbox, buckets, run_module, recording_proxy):
    # fewer than 10 deletions, but the source (a wrong prefix, say) lists fewer objects than would be deleted
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    prod = directus_objects(4, 2)
    put_many(s3, src, prod[:1])
    put_many(s3, dst, prod)
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert result["failed"] and result["msg"].startswith(
        "Refusing to delete 7 objects: 87.5% of the target's 8 objects, more than max_delete_percent=50, from a source "
        "of only 1 object (raise it to 88, or set force_delete=true).")
    assert writes(recording_proxy) == [] and len(bucket_listing(s3, dst)) == 8


# ---------------------------------------------------------------- pagination

def test_more_than_1000_objects_paginate(sandbox, buckets, run_module):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    keys = ["p/%04d" % i for i in range(1105)]
    put_many(s3, src, keys, body=lambda key: b"x")
    put_many(s3, dst, keys[:3] + ["p/9999-extra"], body=lambda key: b"x")
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst, max_keys_returned=10))
    assert not result.get("failed"), result.get("msg")
    assert result["counts"] == {"copied": 1102, "updated": 0, "deleted": 1, "unchanged": 3, "bytes_copied": 1102}
    assert result["changed_keys_total"] == 1102 and len(result["changed_keys"]) == 10 and result["keys_truncated"]
    assert len(bucket_listing(s3, dst)) == 1105
    again = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst))
    assert again["changed"] is False and again["counts"]["unchanged"] == 1105


def test_listing_asks_for_each_page_once(sandbox, buckets, run_module, recording_proxy):
    # A 2,300-key source is three ListObjectsV2 pages, each asked for once, and no HeadObject on the re-run.
    # The target is read ahead where the source's pages end: with half of the keys, that costs at most one
    # request more than its own two pages; with the same keys, none.
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    keys = ["q/%04d" % i for i in range(2300)]
    put_many(s3, src, keys, body=lambda key: b"y")
    put_many(s3, dst, keys[::2], body=lambda key: b"y")
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert not result.get("failed"), result.get("msg")
    assert result["counts"]["copied"] == 1150 and result["counts"]["unchanged"] == 1150
    for bucket, pages in ((src, (3,)), (dst, (2, 3))):
        lists = [r.query for r in recording_proxy.requests if r.method == "GET" and r.path == "/" + bucket]
        assert len(lists) in pages and len(set(lists)) == len(lists), lists
    recording_proxy.clear()
    again = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert again["changed"] is False and again["counts"]["unchanged"] == 2300
    lists = [r.query for r in recording_proxy.requests if r.path == "/" + dst]
    assert len(lists) == 3 and len(set(lists)) == 3, lists


# Reading the target ahead at the keys where the source's pages end (StartAfter=<key>) must not change what the
# plan sees, whatever keys the target holds. Source: 2,100 keys (three pages) under p/, with awkward keys where
# pages end; each variant gives the target's keys under t/ (the mirror remaps p/ to t/).
PAGED_KEYS = sorted(["%04d" % i for i in range(2100) if i not in (999, 1999)] + ["0999 \u00e9+%20?#x", "1999 \u4e2d&=;"])
TARGET_VARIANTS = {
    "same keys": list,
    "every third missing, others added": lambda keys: [k for i, k in enumerate(keys) if i % 3] + [
        k + "~" for k in keys[990:1010] + keys[1995:2005]],
    "only keys before the source's": lambda keys: ["!%04d" % i for i in range(1500)],
    "keys after the source's too": lambda keys: list(keys) + ["z%04d" % i for i in range(1200)],
}


def plan_on(s3, run_module, args, src, dst, target_keys, proxy):
    put_many(s3, dst, ["t/" + k for k in target_keys], body=lambda key: b"z")
    if proxy is not None:
        proxy.clear()
    result = run_module(MODULE, dict(args, source_bucket=src, target_bucket=dst, source_prefix="p/", target_prefix="t/",
                                     force_delete=True, _ansible_check_mode=True))
    assert not result.get("failed"), result.get("msg")
    source, target = set(PAGED_KEYS), set(target_keys)
    assert result["plan"]["to_copy"] == len(source - target) and result["plan"]["unchanged"] == len(source & target)
    assert result["plan"]["to_delete"] == len(target - source)
    if proxy is not None:
        lists = [r.query for r in proxy.requests if r.method == "GET" and r.path == "/" + dst]
        pages = max(1, -(-len(target) // 1000))
        assert len(set(lists)) == len(lists) <= pages + 2, lists  # each StartAfter once; at most the two page ends more
        if target == source:
            assert len(lists) == pages
    return result


@pytest.fixture(scope="module")
def paged_source(sandbox):
    s3 = sandbox.aws.client("s3")
    src = unique("paged")
    s3.create_bucket(Bucket=src)
    put_many(s3, src, ["p/" + k for k in PAGED_KEYS], body=lambda key: b"z")
    return src


@pytest.mark.parametrize("variant", list(TARGET_VARIANTS))
def test_the_target_read_ahead_plans_on_exactly_the_targets_keys(sandbox, paged_source, run_module, recording_proxy, variant):
    s3 = sandbox.aws.client("s3")
    dst = unique("dst")
    s3.create_bucket(Bucket=dst)
    plan_on(s3, run_module, conn(sandbox, recording_proxy.url), paged_source, dst, TARGET_VARIANTS[variant](PAGED_KEYS),
            recording_proxy)


def list_requests(proxy, bucket):
    """The StartAfter of each ListObjectsV2 request the proxy saw for ``bucket`` (None: the first page)."""
    queries = [parse_qs(r.query) for r in proxy.requests if r.method == "GET" and r.path == "/" + bucket]
    return [query.get("start-after", [None])[0] for query in queries if "list-type" in query]


@pytest.fixture(scope="module")
def directus_source(sandbox):
    """A Directus storage of 2,000 files and 600 transformations (2,600 objects, three pages)."""
    s3 = sandbox.aws.client("s3")
    src = unique("directus")
    s3.create_bucket(Bucket=src)
    put_many(s3, src, ["uploads/" + key for key in directus_objects(2000, 300)], body=lambda key: key[-12:].encode())
    return src


def test_directus_keys_are_listed_at_guessed_page_starts(sandbox, directus_source, buckets, run_module, recording_proxy):
    # UUID file names spread evenly over the hex range: after the first page, the pages after it are asked for at
    # once, at the keys where they most likely begin, and the plan is exactly the buckets' keys all the same.
    s3 = sandbox.aws.client("s3")
    _src, dst = buckets
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=directus_source, target_bucket=dst,
                source_prefix="uploads/", target_prefix="prod/")
    first = run_module(MODULE, args)
    assert not first.get("failed"), first.get("msg")
    assert first["counts"]["copied"] == 2600
    source_lists = list_requests(recording_proxy, directus_source)
    assert source_lists[0] is None and len(set(source_lists)) == len(source_lists) <= 3 / 0.85 + 3, source_lists
    assert any(re.fullmatch(r"uploads/[0-9a-f]{8}", after or "") for after in source_lists), source_lists
    assert contents(s3, dst, "prod/") == contents(s3, directus_source, "uploads/")

    recording_proxy.clear()
    again = run_module(MODULE, args)
    assert again["changed"] is False and again["counts"]["unchanged"] == 2600 and writes(recording_proxy) == []
    target_lists = list_requests(recording_proxy, dst)
    assert any(re.fullmatch(r"prod/[0-9a-f]{8}", after or "") for after in target_lists), target_lists
    assert len(set(target_lists)) == len(target_lists) <= 3 / 0.85 + 3, target_lists


def test_a_directus_target_with_other_keys_is_planned_on_exactly(sandbox, directus_source, buckets, run_module):
    s3 = sandbox.aws.client("s3")
    _src, dst = buckets
    source = ["uploads/" + key for key in directus_objects(2000, 300)]
    # a production with every third object missing, 1,500 files of its own, and keys that are no ids
    target = [key for i, key in enumerate(source) if i % 3] + [
        "uploads/" + key for key in directus_objects(3500, 0)[2000:]] + ["uploads/_notes/%d.txt" % i for i in range(20)]
    put_many(s3, dst, target, body=lambda key: key[-12:].encode())
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=directus_source, target_bucket=dst, force_delete=True),
                        check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["plan"]["to_copy"] == len(set(source) - set(target))
    assert result["plan"]["unchanged"] == len(set(source) & set(target))
    assert result["plan"]["to_delete"] == len(set(target) - set(source)) == 1520


# ---------------------------------------------------------------- errors

def test_missing_bucket_gives_one_clear_message(sandbox, buckets, run_module):
    src, dst = buckets
    missing = unique("missing")
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=missing, target_bucket=dst))
    assert result["failed"] and result["msg"] == "The source bucket %r does not exist." % missing
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=missing))
    assert result["failed"] and result["msg"] == "The target bucket %r does not exist." % missing
    assert "Traceback" not in result["_stderr"]


def test_access_denied_gives_one_clear_message(sandbox, buckets, run_module, recording_proxy):
    src, dst = buckets
    recording_proxy.fail_when(lambda method, path, query: 403 if path.startswith("/" + dst) else None)
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst))
    assert result["failed"]
    assert result["msg"].startswith("Access denied listing the target bucket %r" % dst)
    assert "check the target credentials" in result["msg"]


@pytest.mark.parametrize("bad_page", ["error sent with 200", "cut short"])
def test_a_bad_200_listing_page_is_retried_not_read_as_an_empty_bucket(sandbox, buckets, run_module, recording_proxy, bad_page):
    # The module skips botocore's second parse of complete listing pages; an S3
    # error sent with status 200, or a page cut short, must still be retried.
    # Read as a page, either would look like an empty or partial source.
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    keys = ["k/%02d" % i for i in range(12)]
    put_many(s3, src, keys)
    put_many(s3, dst, keys)
    complete = s3.list_objects_v2(Bucket=src)  # what moto sends, for a believable truncated copy
    body = {"error sent with 200": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
                                   b"<Message>We encountered an internal error. Please try again.</Message></Error>",
            "cut short": ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/'
                          'doc/2006-03-01/"><Name>%s</Name><IsTruncated>false</IsTruncated><Contents><Key>k/00</Key>'
                          % src).encode()}[bad_page]
    assert complete["KeyCount"] == 12
    served = []

    def first_source_listing(method, path, query):
        if method == "GET" and path == "/" + src and "list-type=2" in query and not served:
            served.append(query)
            return 200, body
        return None

    recording_proxy.fail_when(first_source_listing)
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst,
                                     retry_mode="standard"))
    assert not result.get("failed"), result.get("msg")
    assert served, "the bad page was not served"
    source_lists = [r for r in recording_proxy.requests if r.method == "GET" and r.path == "/" + src]
    assert len(source_lists) == 2  # the bad page, then botocore's retry
    assert result["changed"] is False and result["counts"]["unchanged"] == 12 and result["counts"]["deleted"] == 0
    assert writes(recording_proxy) == []


def drop_continuation_token(bucket):
    """An answer editor: the bucket's ListObjectsV2 pages lose NextContinuationToken but still say IsTruncated=true."""
    def edit(method, path, query, body):
        if method == "GET" and path == "/" + bucket and "list-type=2" in query:
            return re.sub(rb"<NextContinuationToken>[^<]*</NextContinuationToken>", b"", body)
        return None
    return edit


@pytest.fixture(scope="module")
def mirrored_2000(sandbox):
    """Source and target holding the same 2,000 keys (two listing pages each)."""
    s3 = sandbox.aws.client("s3")
    src, dst = unique("src"), unique("dst")
    keys = ["m/%04d" % i for i in range(2000)]
    for bucket in (src, dst):
        s3.create_bucket(Bucket=bucket)
        put_many(s3, bucket, keys, body=lambda key: b"m")
    return src, dst


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_page_truncated_without_a_continuation_token_is_followed_with_start_after(sandbox, mirrored_2000, run_module,
                                                                                    recording_proxy, side):
    # botocore's paginator ends without an error at a page that says IsTruncated=true but gives no token: a plan on
    # it would see 1,000 of the source's 2,000 keys and delete the other 1,000 from the target (exactly 50 %, so
    # neither max_delete nor max_delete_percent would stop it). Both listings go on with StartAfter=<last key read>,
    # never with the token: they stay complete.
    src, dst = mirrored_2000
    bucket = src if side == "source" else dst
    recording_proxy.edit_answers(drop_continuation_token(bucket))
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst), check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["plan"]["target_objects"] == 2000 and result["plan"]["to_delete"] == 0
    assert result["plan"]["unchanged"] == 2000
    lists = [r.query for r in recording_proxy.requests if r.method == "GET" and r.path == "/" + bucket]
    assert len(lists) == 2 and "start-after=m%2F0999" in lists[1], lists
    assert writes(recording_proxy) == []


def test_invalid_options_fail_before_any_request(sandbox, buckets, run_module, recording_proxy):
    src, _dst = buckets
    result = run_module(MODULE, dict(conn(sandbox, recording_proxy.url), source_bucket=src, source_prefix="a/",
                                     target_bucket=src, target_prefix="a/b", workers=0))
    assert result["failed"]
    assert "workers must be between 1 and 256" in result["msg"] and "overlap" in result["msg"]
    assert recording_proxy.requests == []


def test_failed_copies_prevent_deletions_and_rerun_completes(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["f/%02d" % i for i in range(10)])
    put_many(s3, dst, ["f/old-1", "f/old-2"])
    bad = {"/%s/f/03" % dst, "/%s/f/07" % dst}
    recording_proxy.fail_when(lambda method, path, query: 500 if method == "PUT" and path in bad else None)
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst, retry_mode="standard",
                retry_max_attempts=2, max_delete_percent=100)

    result = run_module(MODULE, dict(args, workers=1))  # one worker: a known order of requests
    assert result["failed"]
    assert result["failed_keys"] == ["f/03", "f/07"]
    assert "f/03" in result["msg"] and "nothing was deleted" in result["msg"]
    assert result["counts"]["copied"] == 8 and result["counts"]["deleted"] == 0
    retried = [r for r in recording_proxy.requests if r.method == "PUT" and r.path in bad]
    assert sorted(r.path for r in retried) == sorted(list(bad) * 2)  # each sent twice (retry_max_attempts=2), then given up
    assert not any(r.method == "DELETE" or "delete" in r.query for r in recording_proxy.requests)
    assert {"f/old-1", "f/old-2"} <= set(bucket_listing(s3, dst))

    recording_proxy.clear()
    again = run_module(MODULE, args)
    assert not again.get("failed"), again.get("msg")
    assert again["counts"] == {"copied": 2, "updated": 0, "deleted": 2, "unchanged": 8, "bytes_copied": 2 * len(b"f/03") * 3}
    assert contents(s3, dst) == contents(s3, src)


def test_versioned_buckets_mirror_current_versions_and_delete_leaves_a_marker(sandbox, buckets, run_module):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    for bucket in buckets:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=src, Key="doc.txt", Body=b"version one")
    s3.put_object(Bucket=src, Key="doc.txt", Body=b"version two, current")
    s3.put_object(Bucket=src, Key="gone.txt", Body=b"deleted in the source")
    s3.delete_object(Bucket=src, Key="gone.txt")  # only a delete marker is current
    s3.put_object(Bucket=dst, Key="extra.txt", Body=b"only in the target")
    s3.put_object(Bucket=src, Key="keep.txt", Body=b"k")
    result = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst, max_delete_percent=100))
    assert not result.get("failed"), result.get("msg")
    assert sorted(result["changed_keys"]) == ["doc.txt", "keep.txt"] and result["deleted_keys"] == ["extra.txt"]
    assert s3.get_object(Bucket=dst, Key="doc.txt")["Body"].read() == b"version two, current"
    versions = s3.list_object_versions(Bucket=dst, Prefix="extra.txt")
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]
    assert len(versions.get("Versions", [])) == 1  # the old version is still there, behind the marker
    assert run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst))["changed"] is False


def test_auto_streams_when_target_credentials_cannot_read_the_source(sandbox, buckets, run_module, recording_proxy):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    put_many(s3, src, ["a.txt", "b.txt"], ContentType="text/plain")
    target_key = sandbox.aws.access_key

    def deny_target_reads_of_source(method, path, query):
        # the probe is a HEAD of a source object signed with the target's key; the proxy sees the path only,
        # so deny every source HEAD: the streamed copy then reads with GET
        return 403 if method == "HEAD" and path.startswith("/%s/" % src) else None

    recording_proxy.fail_when(deny_target_reads_of_source)
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst,
                source_access_key="staging-only-key", source_secret_key="staging-only-secret")
    check = run_module(MODULE, args, check=True)
    assert check["plan"]["copy_method"] == "stream"
    assert writes(recording_proxy) == []
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["plan"]["copy_method"] == "stream" and result["counts"]["copied"] == 2
    assert not any("x-amz-copy-source" in {h.lower() for h in r.headers} for r in recording_proxy.requests)
    gets = [r for r in recording_proxy.requests if r.method == "GET" and r.path.startswith("/%s/" % src)]
    assert len(gets) == 2 and all(target_key not in r.headers.get("Authorization", "") for r in gets)
    assert contents(s3, dst) == contents(s3, src)


# ---------------------------------------------------------------- unexpected copy answers

@pytest.mark.parametrize("answer", ["SlowDown", "error sent with 200", "body cut short"])
def test_a_throttled_or_broken_copy_answer_is_retried(sandbox, buckets, run_module, recording_proxy, answer):
    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    keys = ["d/%02d" % i for i in range(6)] + AWKWARD
    put_many(s3, src, keys, ContentType="text/plain", Metadata={"origin": "staging"}, Tagging=TAGS)
    failing = "/%s/d/03" % dst
    served = []

    def first_copy_of_d03(method, path, query):
        if method == "PUT" and path == failing and not served:
            served.append(path)
            return {"SlowDown": 503,
                    "error sent with 200": (200, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError'
                                                 b'</Code><Message>try again</Message></Error>'),
                    "body cut short": (200, b"<?xml version=")}[answer]
        return None

    recording_proxy.fail_when(first_copy_of_d03)
    args = dict(conn(sandbox, recording_proxy.url), source_bucket=src, target_bucket=dst, workers=1)
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert served
    assert result["counts"]["copied"] == len(keys)
    puts = [r for r in recording_proxy.requests if r.method == "PUT"]
    # one worker: the keys in order, d/03 sent again right after the answer botocore did not accept
    order = sorted(keys, key=lambda key: key.encode("utf-8"))
    assert [r.path for r in puts] == ["/%s/%s" % (dst, key) for key in order[:order.index("d/03") + 1]] + [failing] + [
        "/%s/%s" % (dst, key) for key in order[order.index("d/03") + 1:]]
    assert contents(s3, dst) == contents(s3, src)
    for key in ("d/03", AWKWARD[1]):
        assert object_headers(s3, dst, key) == object_headers(s3, src, key)
    recording_proxy.clear()
    assert run_module(MODULE, args)["changed"] is False
    assert writes(recording_proxy) == []


@pytest.fixture(scope="module")
def rclone_s3(tmp_path_factory):
    from sandbox.servers import RcloneS3Server

    server = RcloneS3Server(tmp_path_factory.mktemp("rclone"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_server_that_checks_signatures_accepts_the_copies_of_awkward_keys(rclone_s3, run_module):
    s3 = rclone_s3.client()
    src, dst = unique("src"), unique("dst")
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    keys = AWKWARD + ["x/%03d.bin" % i for i in range(60)] + ["tilde~/(p)[q]!$'*,;=@.txt", "sp  two"]
    put_many(s3, src, keys, ContentType="image/png", Metadata={"origin": "staging"})
    # the control: this server refuses a request signed with another secret
    with pytest.raises(Exception, match="SignatureDoesNotMatch|AccessDenied|403"):
        rclone_s3.client(secret_key="not-the-secret").head_object(Bucket=src, Key=keys[0])

    args = rclone_s3.module_args(source_bucket=src, target_bucket=dst, trash=False)
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["counts"]["copied"] == len(keys)
    assert contents(s3, dst) == contents(s3, src)
    assert s3.head_object(Bucket=dst, Key=AWKWARD[1])["ContentType"] == "image/png"
    assert run_module(MODULE, args)["changed"] is False


def test_the_target_read_ahead_on_a_second_server(rclone_s3, run_module):
    # rclone serve s3 is another implementation of ListObjectsV2 with StartAfter, over a real directory tree
    s3 = rclone_s3.client()
    src = unique("paged")
    s3.create_bucket(Bucket=src)
    put_many(s3, src, ["p/" + k for k in PAGED_KEYS], body=lambda key: b"z")
    args = rclone_s3.module_args()
    for variant in ("same keys", "every third missing, others added"):
        dst = unique("dst")
        s3.create_bucket(Bucket=dst)
        plan_on(s3, run_module, args, src, dst, TARGET_VARIANTS[variant](PAGED_KEYS), None)


# ---------------------------------------------------------------- SlowDown

def test_slowdown_answers_are_retried_and_the_mirror_completes(sandbox, buckets, run_module):
    # S3 answers 503 SlowDown when a prefix gets more requests than it takes; at the defaults (standard retries,
    # many workers) each such request is retried after its own backoff, and the mirror is complete and exact.
    from sandbox.delay_proxy import DelayProxy

    s3 = sandbox.aws.client("s3")
    src, dst = buckets
    keys = ["s/%03d.jpg" % i for i in range(300)]
    put_many(s3, src, keys, ContentType="image/jpeg")
    put_many(s3, dst, ["s/old-%d" % i for i in range(3)])
    with DelayProxy(sandbox.aws.endpoint_url, delay=0.0, slowdown=0.1, seed=7) as proxy:
        args = dict(conn(sandbox, proxy.url), source_bucket=src, target_bucket=dst)
        result = run_module(MODULE, args)
        assert not result.get("failed"), result.get("msg")
        assert proxy.slowdowns >= 10, proxy.slowdowns
        assert result["counts"]["copied"] == 300 and result["counts"]["deleted"] == 3
        assert contents(s3, dst) == contents(s3, src)
        again = run_module(MODULE, args)
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False and again["counts"]["unchanged"] == 300


def test_the_delay_proxy_delays_and_passes_everything_through(sandbox, buckets):
    import time

    from sandbox.delay_proxy import DelayProxy

    s3 = sandbox.aws.client("s3")
    src, _dst = buckets
    with DelayProxy(sandbox.aws.endpoint_url, delay=0.1) as proxy:
        client = sandbox.aws.client("s3", endpoint_url=proxy.url)
        body = bytes(range(256)) * 8192  # 2 MiB: a body streamed after the delay
        client.put_object(Bucket=src, Key="big", Body=body)
        start = time.monotonic()
        for _round in range(3):  # one connection, kept alive
            assert client.get_object(Bucket=src, Key="big")["Body"].read() == body
        assert time.monotonic() - start >= 0.3
        assert client.head_object(Bucket=src, Key="big")["ContentLength"] == len(body)
        assert proxy.requests == 5
    assert s3.get_object(Bucket=src, Key="big")["Body"].read() == body
