"""AWS-exact CloudFront behaviour the emulator lacks, with botocore's Stubber.

The emulator creates invalidations already COMPLETED and makes a new one for a
reused CallerReference; AWS answers InProgress then Completed, returns the
existing invalidation for a repeated CallerReference with the same paths and
InvalidationBatchAlreadyExists for different paths, and refuses batches over
its in-progress limits with TooManyInvalidationsInProgress. Back-off and
waiting run on a fake clock, so nothing here sleeps.
"""

from __future__ import annotations

import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.casper.directus_promote.plugins.module_utils.cloudfront_plan import build_plan
from ansible_collections.casper.directus_promote.plugins.modules import cloudfront_invalidate as mod

DIST = "E2QWRUHAPOMQZL"
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


class FakeClock:
    def __init__(self):
        self.t = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture(scope="module")
def cloudfront():
    return boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example-secret",
                                 region_name="us-east-1").client("cloudfront")


@pytest.fixture
def client(cloudfront):
    """The client with a fresh Stubber: any call not queued below fails the test."""
    with Stubber(cloudfront) as stub:
        cloudfront.stub = stub
        yield cloudfront
        stub.assert_no_pending_responses()


@pytest.fixture
def clock():
    return FakeClock()


def invalidator(client, clock, timeout=600, scan_limit=30):
    return mod.Invalidator(client, DIST, timeout, sleep=clock.sleep, monotonic=clock.monotonic,
                           now=lambda: NOW, scan_limit=scan_limit, workers=1, jitter=False)


def invalidation(inv_id, ref, paths, status="InProgress", created=NOW):
    return {"Id": inv_id, "Status": status, "CreateTime": created,
            "InvalidationBatch": {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": ref}}


def list_page(items, truncated=False, next_marker=None):
    page = {"Marker": "", "MaxItems": 100, "IsTruncated": truncated, "Quantity": len(items),
            "Items": [{"Id": i["Id"], "CreateTime": i["CreateTime"], "Status": i["Status"]} for i in items]}
    if next_marker:
        page["NextMarker"] = next_marker
    return {"InvalidationList": page}


def expect_list(client, items, **kwargs):
    params = {"DistributionId": DIST, "MaxItems": "100"}
    if kwargs.get("marker"):
        params["Marker"] = kwargs.pop("marker")
    client.stub.add_response("list_invalidations", list_page(items, **kwargs), params)


def expect_get(client, inv):
    client.stub.add_response("get_invalidation", {"Invalidation": inv}, {"DistributionId": DIST, "Id": inv["Id"]})


def expect_create(client, inv, paths=None):
    batch = inv["InvalidationBatch"]
    expected = {"DistributionId": DIST, "InvalidationBatch": {
        "Paths": {"Quantity": len(paths or batch["Paths"]["Items"]), "Items": paths or batch["Paths"]["Items"]},
        "CallerReference": batch["CallerReference"]}}
    client.stub.add_response("create_invalidation", {"Location": "https://x/" + inv["Id"], "Invalidation": inv}, expected)


def plan_for(paths, run_id="promotion-1", **kwargs):
    return build_plan(paths=paths, run_id=run_id, **kwargs)


def test_creates_then_polls_in_progress_until_completed(client, clock):
    plan = plan_for(["/index.html", "/a b.jpg"])
    ref = plan["batches"][0]["caller_reference"]
    paths = plan["batches"][0]["paths"]
    expect_list(client, [])
    expect_create(client, invalidation("I1", ref, paths))
    expect_get(client, invalidation("I1", ref, paths, "InProgress"))
    expect_get(client, invalidation("I1", ref, paths, "InProgress"))
    expect_get(client, invalidation("I1", ref, paths, "Completed"))
    summaries, changed = invalidator(client, clock).run(plan["batches"], wait=True)
    assert changed is True
    assert summaries == [{"id": "I1", "status": "Completed", "caller_reference": ref, "path_count": 2,
                          "existing": False, "create_time": NOW.isoformat()}]
    assert clock.sleeps == [2.0, 4.0]   # back-off between polls


def test_upper_case_completed_needs_no_poll(client, clock):
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    expect_list(client, [])
    expect_create(client, invalidation("I1", ref, ["/a"], "COMPLETED"))
    summaries, changed = invalidator(client, clock).run(plan["batches"], wait=True)
    assert changed and summaries[0]["status"] == "COMPLETED" and clock.sleeps == []


def test_wait_times_out_with_a_clear_message(client, clock):
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    expect_list(client, [])
    expect_create(client, invalidation("I1", ref, ["/a"]))
    for _i in range(5):   # polls at t=0, 2, 6, 14 and, the last one, at the deadline (20 s)
        expect_get(client, invalidation("I1", ref, ["/a"], "InProgress"))
    with pytest.raises(mod.InvalidationError) as info:
        invalidator(client, clock, timeout=20).run(plan["batches"], wait=True)
    assert "Timed out after 20 s (wait_timeout) waiting for invalidation I1 to complete (status InProgress)" in info.value.msg
    assert info.value.invalidations[0]["id"] == "I1"
    assert sum(clock.sleeps) == 20


def test_throttled_poll_is_retried(client, clock):
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    expect_list(client, [])
    expect_create(client, invalidation("I1", ref, ["/a"]))
    client.stub.add_client_error("get_invalidation", "Throttling", "Rate exceeded", 400)
    expect_get(client, invalidation("I1", ref, ["/a"], "Completed"))
    summaries, _changed = invalidator(client, clock).run(plan["batches"], wait=True)
    assert summaries[0]["status"] == "Completed" and clock.sleeps == [2.0]


def test_existing_reference_among_recent_invalidations_is_returned_without_create(client, clock):
    plan = plan_for(["/a", "/b"])
    ref = plan["batches"][0]["caller_reference"]
    older = NOW - datetime.timedelta(minutes=3)
    mine = invalidation("I1", ref, ["/b", "/a"], "Completed", older)   # same paths, other order
    other = invalidation("I2", "someone-else", ["/*"], "Completed", NOW)
    expect_list(client, [other, mine])           # AWS: newest first
    expect_get(client, other)
    expect_get(client, mine)
    summaries, changed = invalidator(client, clock).run(plan["batches"], wait=True)
    assert changed is False
    assert summaries[0]["id"] == "I1" and summaries[0]["existing"] is True


def test_reused_reference_beyond_the_scanned_window_returns_the_existing_invalidation(client, clock):
    """CreateInvalidation with a repeated CallerReference and the same paths answers the old invalidation."""
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    recent = [invalidation("R%d" % i, "other-%d" % i, ["/x"], "Completed", NOW - datetime.timedelta(minutes=i))
              for i in range(2)]
    expect_list(client, recent)
    for inv in recent:   # scan_limit=2: only these are read
        expect_get(client, inv)
    yesterday = NOW - datetime.timedelta(days=1)
    expect_create(client, invalidation("IOLD", ref, ["/a"], "Completed", yesterday))
    summaries, changed = invalidator(client, clock, scan_limit=2).run(plan["batches"], wait=True)
    assert changed is False
    assert summaries[0]["id"] == "IOLD" and summaries[0]["existing"] is True


def test_invalidation_batch_already_exists_fails_clearly(client, clock):
    plan = plan_for(["/a"], caller_reference="fixed-reference", run_id=None)
    expect_list(client, [])
    client.stub.add_client_error(
        "create_invalidation", "InvalidationBatchAlreadyExists",
        "The caller reference that you are using to create an invalidation batch already exists.", 409)
    with pytest.raises(mod.InvalidationError) as info:
        invalidator(client, clock).run(plan["batches"])
    assert "CallerReference 'fixed-reference' was already used" in info.value.msg
    assert "InvalidationBatchAlreadyExists" in info.value.msg


def test_found_reference_with_other_paths_fails_like_aws(client, clock):
    plan = plan_for(["/a"], caller_reference="fixed-reference", run_id=None)
    old = invalidation("I9", "fixed-reference", ["/other"], "Completed")
    expect_list(client, [old])
    expect_get(client, old)
    with pytest.raises(mod.InvalidationError, match="already used for invalidation I9 .* with different paths"):
        invalidator(client, clock).run(plan["batches"])


def test_too_many_invalidations_in_progress_is_retried_with_backoff(client, clock):
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    expect_list(client, [])
    for _i in range(3):
        client.stub.add_client_error("create_invalidation", "TooManyInvalidationsInProgress",
                                     "Processing your request will cause you to exceed the maximum number of "
                                     "in-progress wildcard invalidations.", 400)
    client.stub.add_client_error("create_invalidation", "Throttling", "Rate exceeded", 400)
    expect_create(client, invalidation("I1", ref, ["/a"]))
    summaries, changed = invalidator(client, clock).run(plan["batches"])
    assert changed and summaries[0]["id"] == "I1"
    assert clock.sleeps == [2.0, 4.0, 8.0, 16.0]


def test_too_many_invalidations_in_progress_fails_after_wait_timeout(client, clock):
    plan = plan_for(["/a"])
    expect_list(client, [])
    for _i in range(5):   # attempts at t=0, 2, 6, 14 and, the last one, at the deadline (20 s)
        client.stub.add_client_error("create_invalidation", "TooManyInvalidationsInProgress", "Too many", 400)
    with pytest.raises(mod.InvalidationError) as info:
        invalidator(client, clock, timeout=20).run(plan["batches"])
    assert clock.sleeps == [2.0, 4.0, 8.0, 6.0]   # never sleeps past the deadline
    msg = info.value.msg
    assert "still refused the invalidation" in msg
    assert "after 5 attempts in 20 s (wait_timeout): TooManyInvalidationsInProgress: Too many" in msg
    assert "15 wildcard paths in progress" in msg


def test_more_than_3000_paths_become_several_invalidations(client, clock):
    plan = build_plan(paths=["/p%05d" % i for i in range(6500)], collapse_threshold=10000, run_id="big")
    batches = plan["batches"]
    assert [len(b["paths"]) for b in batches] == [3000, 3000, 500]
    expect_list(client, [])
    for number, batch in enumerate(batches, 1):
        assert batch["caller_reference"].endswith("-%d" % number)
        if number > 1:
            # Over the 3,000 paths in progress until the previous batch completes.
            client.stub.add_client_error("create_invalidation", "TooManyInvalidationsInProgress", "Too many", 400)
        expect_create(client, invalidation("I%d" % number, batch["caller_reference"], batch["paths"]))
    summaries, changed = invalidator(client, clock).run(batches)
    assert changed and [s["path_count"] for s in summaries] == [3000, 3000, 500]
    assert [s["id"] for s in summaries] == ["I1", "I2", "I3"]
    assert clock.sleeps == [2.0, 2.0]


def test_partly_done_batches_only_create_the_missing_ones(client, clock):
    plan = build_plan(paths=["/p%05d" % i for i in range(3500)], collapse_threshold=10000, run_id="r")
    first, second = plan["batches"]
    done = invalidation("I1", first["caller_reference"], first["paths"], "InProgress")
    expect_list(client, [done])
    expect_get(client, done)
    client.stub.add_client_error("create_invalidation", "TooManyInvalidationsInProgress", "Too many", 400)
    expect_create(client, invalidation("I2", second["caller_reference"], second["paths"]))
    summaries, changed = invalidator(client, clock).run(plan["batches"])
    assert changed is True
    assert [(s["id"], s["existing"]) for s in summaries] == [("I1", True), ("I2", False)]


def test_check_mode_reads_but_never_creates(client, clock):
    plan = plan_for(["/a"])
    expect_list(client, [])
    summaries, changed = invalidator(client, clock).run(plan["batches"], check_mode=True, wait=True)
    assert changed is True
    assert summaries == [{"id": None, "status": None, "caller_reference": plan["batches"][0]["caller_reference"],
                          "path_count": 1, "existing": False, "create_time": None}]


def test_emulator_order_is_paged_to_the_newest(client, clock, monkeypatch):
    """A server listing oldest first (the emulator) is paged on; the newest are read first."""
    monkeypatch.setattr(mod, "LIST_PAGE_SIZE", 100)
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    page1 = [invalidation("O%d" % i, "old-%d" % i, ["/x"], "Completed", NOW - datetime.timedelta(hours=10 - i))
             for i in range(3)]
    mine = invalidation("MINE", ref, ["/a"], "Completed", NOW - datetime.timedelta(minutes=1))
    page2 = [invalidation("O9", "old-9", ["/x"], "Completed", NOW - datetime.timedelta(hours=2)), mine]
    expect_list(client, page1, truncated=True, next_marker="m2")
    expect_list(client, page2, marker="m2")
    expect_get(client, mine)     # newest first: found at once, the others are never read
    summaries, changed = invalidator(client, clock).run(plan["batches"])
    assert changed is False and summaries[0]["id"] == "MINE"


def test_aws_order_reads_a_single_page(client, clock):
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    newest = [invalidation("N%d" % i, "other-%d" % i, ["/x"], "Completed", NOW - datetime.timedelta(minutes=i))
              for i in range(3)]
    expect_list(client, newest, truncated=True, next_marker="more")   # never followed
    for inv in newest:
        expect_get(client, inv)
    expect_create(client, invalidation("NEW", ref, ["/a"]))
    summaries, changed = invalidator(client, clock).run(plan["batches"])
    assert changed is True and summaries[0]["id"] == "NEW"


def test_busy_distribution_is_never_listed_in_full(client, clock):
    """One page of the newest invalidations and at most SCAN_LIMIT reads, however many exist (community.aws#234)."""
    plan = plan_for(["/a"])
    ref = plan["batches"][0]["caller_reference"]
    newest = [invalidation("N%03d" % i, "other-%d" % i, ["/x"], "Completed", NOW - datetime.timedelta(minutes=i))
              for i in range(100)]
    expect_list(client, newest, truncated=True, next_marker="page-2-of-many")
    for inv in newest[:mod.SCAN_LIMIT]:
        expect_get(client, inv)
    expect_create(client, invalidation("NEW", ref, ["/a"]))
    inv = mod.Invalidator(client, DIST, 600, sleep=clock.sleep, monotonic=clock.monotonic, now=lambda: NOW,
                          workers=1, jitter=False)
    summaries, changed = inv.run(plan["batches"])
    assert changed is True and summaries[0]["id"] == "NEW"


def test_alias_lookup_pages_through_distributions(client):
    def dist(dist_id, domain, aliases):
        return {"Id": dist_id, "ARN": "arn:aws:cloudfront::1:distribution/" + dist_id, "Status": "Deployed",
                "LastModifiedTime": NOW, "DomainName": domain,
                "Aliases": {"Quantity": len(aliases), "Items": aliases} if aliases else {"Quantity": 0},
                "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "b.s3.amazonaws.com"}]},
                "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
                "CacheBehaviors": {"Quantity": 0}, "CustomErrorResponses": {"Quantity": 0}, "Comment": "",
                "PriceClass": "PriceClass_All", "Enabled": True,
                "ViewerCertificate": {}, "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
                "WebACLId": "", "HttpVersion": "http2", "IsIPV6Enabled": True, "Staging": False}

    def page(items, truncated, next_marker=None):
        body = {"Marker": "", "MaxItems": 1, "IsTruncated": truncated, "Quantity": len(items), "Items": items}
        if next_marker:
            body["NextMarker"] = next_marker
        return {"DistributionList": body}

    for _i in range(2):
        client.stub.add_response("list_distributions", page([dist("EA", "d1.cloudfront.net", ["a.example"])], True, "m"), {})
        client.stub.add_response("list_distributions", page([dist("EB", "d2.cloudfront.net", ["cdn.example.com"])], False),
                                 {"Marker": "m"})
    assert mod.find_distribution(client, "CDN.example.com.") == "EB"
    assert mod.find_distribution(client, "d2.cloudfront.net") == "EB"
    client.stub.add_response("list_distributions", page([dist("EA", "d1.cloudfront.net", [])], False), {})
    with pytest.raises(mod.InvalidationError, match="No CloudFront distribution has the alias or domain name 'nope.example'"):
        mod.find_distribution(client, "nope.example")


def test_other_errors_are_not_retried(client, clock):
    plan = plan_for(["/a"])
    expect_list(client, [])
    client.stub.add_client_error("create_invalidation", "AccessDenied", "User is not authorized", 403)
    with pytest.raises(mod.InvalidationError, match="Cannot create the invalidation .*AccessDenied: User is not authorized"):
        invalidator(client, clock).run(plan["batches"])
    assert clock.sleeps == []


def test_diff_lists_paths_existing_on_both_sides():
    batches = [{"caller_reference": "r-1", "paths": ["/a", "/b"]}, {"caller_reference": "r-2", "paths": ["/c"]}]
    summaries = [{"id": "I1", "existing": True}, {"id": None, "existing": False}]
    diff = mod.diff_text(batches, summaries)
    assert diff["before"] == "# invalidation I1 (r-1)\n/a\n/b\n"
    assert diff["after"] == "# invalidation I1 (r-1)\n/a\n/b\n# invalidation (new) (r-2)\n/c\n"


def test_waiting_reports_its_progress(client, clock, tmp_path):
    """What the action plugin shows during wait=true: which invalidation, its last status, done of total."""
    from ansible_collections.casper.directus_promote.plugins.module_utils.progress import Reporter

    class Recording(Reporter):
        def _write(self):
            super()._write()
            self.seen = getattr(self, "seen", []) + [self.snapshot()]

    plan = plan_for(["/index.html"])
    ref, paths = plan["batches"][0]["caller_reference"], plan["batches"][0]["paths"]
    expect_list(client, [])
    expect_create(client, invalidation("I1", ref, paths))
    expect_get(client, invalidation("I1", ref, paths, "InProgress"))
    expect_get(client, invalidation("I1", ref, paths, "InProgress"))
    expect_get(client, invalidation("I1", ref, paths, "Completed"))
    progress = Recording(str(tmp_path / "progress.json"), clock=clock.monotonic, wall=clock.monotonic)
    inv = mod.Invalidator(client, DIST, 600, sleep=clock.sleep, monotonic=clock.monotonic, now=lambda: NOW,
                          workers=1, jitter=False, progress=progress)
    inv.run(plan["batches"], wait=True)
    seen = [(s["phase"], s["done"], s["total"], s["detail"], s["active"]) for s in progress.seen]
    phase = "waiting for invalidation I1 to complete"
    assert seen == [(phase, 0, 1, "wait_timeout 600 s", True),   # (the first poll, at once: not written again)
                    (phase, 0, 1, "status InProgress, wait_timeout 600 s", True),   # 2 s later
                    (phase, 1, 1, "status Completed, wait_timeout 600 s", True),
                    (phase, 1, 1, "status Completed, wait_timeout 600 s", False)]
