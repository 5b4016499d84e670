"""cloudfront_invalidate against the sandbox's CloudFront emulator, run as Ansible runs modules.

The emulator's invalidations are COMPLETED at once and it makes a new one for
a reused CallerReference, so these tests show that the module itself finds a
retried promotion's invalidation (no second one appears). AWS-only behaviour
(InProgress polling, InvalidationBatchAlreadyExists, TooManyInvalidationsInProgress)
is in tests/unit/plugins/modules/test_cloudfront_invalidate.py.
"""

from __future__ import annotations

import uuid

import pytest

MODULE = "cloudfront_invalidate"


def connection(sandbox, endpoint_url=None):
    return sandbox.aws.module_args(endpoint_url)


@pytest.fixture(scope="module")
def distribution(sandbox, cloudfront_client):
    """A distribution of this test module's own, so other tests' invalidations never mix in."""
    alias = "cdn-%s.cf-test.example" % uuid.uuid4().hex[:8]
    created = cloudfront_client.create_distribution(DistributionConfig={
        "CallerReference": "cf-test-" + alias,
        "Aliases": {"Quantity": 1, "Items": [alias]},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "assets", "DomainName": "directus-prod.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "assets", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        "Comment": "cloudfront_invalidate tests", "Enabled": True,
    })["Distribution"]
    return {"id": created["Id"], "alias": alias, "domain": created["DomainName"]}


def all_invalidations(client, dist_id):
    pages = client.get_paginator("list_invalidations").paginate(DistributionId=dist_id)
    return [item for page in pages for item in (page["InvalidationList"].get("Items") or [])]


def invalidation_paths(client, dist_id, inv_id):
    inv = client.get_invalidation(DistributionId=dist_id, Id=inv_id)["Invalidation"]
    return inv["InvalidationBatch"]["Paths"].get("Items") or [], inv["InvalidationBatch"]["CallerReference"]


def cf_requests(proxy):
    return [r for r in proxy.requests if "/distribution" in r.path]


def test_create_wait_and_retry_returns_the_same_invalidation(
        sandbox, distribution, cloudfront_client, run_module, recording_proxy):
    run_id = uuid.uuid4().hex
    args = dict(connection(sandbox, recording_proxy.url), distribution_id=distribution["id"], run_id=run_id, wait=True,
                paths=["/index.html", "assets/a b.jpg", "/ünï.css", "/index.html"])
    before = len(all_invalidations(cloudfront_client, distribution["id"]))

    first = run_module(MODULE, args, diff=True)
    assert first["_rc"] == 0 and not first.get("failed"), first
    assert first["changed"] is True
    assert first["paths"] == ["/%C3%BCn%C3%AF.css", "/assets/a%20b.jpg", "/index.html"]
    [inv] = first["invalidations"]
    assert inv["status"].lower() == "completed" and inv["existing"] is False and inv["path_count"] == 3
    paths, ref = invalidation_paths(cloudfront_client, distribution["id"], inv["id"])
    assert sorted(paths) == first["paths"] and ref == inv["caller_reference"]
    assert first["diff"]["before"] == "" and "/assets/a%20b.jpg\n" in first["diff"]["after"]
    assert len([r for r in cf_requests(recording_proxy) if r.method == "POST"]) == 1

    recording_proxy.clear()
    again = run_module(MODULE, args)   # the task retried: same run_id, same paths
    assert again["changed"] is False
    assert [i["id"] for i in again["invalidations"]] == [inv["id"]] and again["invalidations"][0]["existing"] is True
    assert recording_proxy.writes() == []
    assert len(all_invalidations(cloudfront_client, distribution["id"])) == before + 1

    following = run_module(MODULE, dict(args, run_id=uuid.uuid4().hex))   # the next promotion invalidates again
    assert following["changed"] is True and following["invalidations"][0]["id"] != inv["id"]
    assert len(all_invalidations(cloudfront_client, distribution["id"])) == before + 2


def test_check_mode_reports_the_would_be_invalidation_and_writes_nothing(
        sandbox, distribution, cloudfront_client, run_module, recording_proxy):
    args = dict(connection(sandbox, recording_proxy.url), distribution_id=distribution["id"], run_id=uuid.uuid4().hex,
                keys=["uploads/x+y.png", "uploads/sub/z.png"], key_prefix="uploads/", path_prefix="/assets")
    before = len(all_invalidations(cloudfront_client, distribution["id"]))

    checked = run_module(MODULE, args, check=True, diff=True)
    assert checked["changed"] is True, checked
    assert checked["paths"] == ["/assets/sub/z.png", "/assets/x%2By.png"]
    assert checked["invalidations"] == [{"id": None, "status": None, "caller_reference": checked["invalidations"][0]["caller_reference"],
                                         "path_count": 2, "existing": False, "create_time": None}]
    assert checked["diff"]["after"].splitlines()[1:] == ["/assets/sub/z.png", "/assets/x%2By.png"]
    assert recording_proxy.writes() == []
    assert len(all_invalidations(cloudfront_client, distribution["id"])) == before

    real = run_module(MODULE, args)
    assert real["changed"] is True
    assert real["invalidations"][0]["caller_reference"] == checked["invalidations"][0]["caller_reference"]

    recording_proxy.clear()
    after = run_module(MODULE, args, check=True, diff=True)   # check mode after the run tells the truth too
    assert after["changed"] is False and after["invalidations"][0]["id"] == real["invalidations"][0]["id"]
    assert after["diff"]["before"] == after["diff"]["after"]
    assert recording_proxy.writes() == []


def test_no_paths_is_a_no_op_without_any_request(sandbox, distribution, run_module, recording_proxy):
    result = run_module(MODULE, dict(connection(sandbox, recording_proxy.url), distribution_id=distribution["id"],
                                     paths=[], keys=[], run_id="r", wait=True))
    assert result["changed"] is False and result["invalidations"] == [] and result["paths"] == []
    assert recording_proxy.requests == []


def test_alias_lookup(sandbox, distribution, run_module):
    by_alias = run_module(MODULE, dict(connection(sandbox), alias=distribution["alias"].upper(), paths=["/a"],
                                       run_id=uuid.uuid4().hex))
    assert by_alias["changed"] is True and by_alias["distribution_id"] == distribution["id"]
    by_domain = run_module(MODULE, dict(connection(sandbox), alias=distribution["domain"], paths=["/a"],
                                        run_id=uuid.uuid4().hex), check=True)
    assert by_domain["distribution_id"] == distribution["id"]
    sandbox_prod = run_module(MODULE, dict(connection(sandbox), alias="cdn.prod.example.test", paths=["/a"], run_id="x"),
                              check=True)
    assert sandbox_prod["distribution_id"] == sandbox.distribution_id


def test_collapse_and_split(sandbox, distribution, cloudfront_client, run_module):
    keys = ["uploads/%s/%04d.jpg" % (folder, i) for folder in ("img", "doc") for i in range(150)]
    collapsed = run_module(MODULE, dict(connection(sandbox), distribution_id=distribution["id"], keys=keys,
                                        key_prefix="uploads", run_id=uuid.uuid4().hex))
    assert collapsed["collapsed"] is True
    assert collapsed["collapse_reason"].startswith("300 paths exceed collapse_threshold 100")
    assert 1 < len(collapsed["paths"]) <= 15 and all(p.startswith(("/img/", "/doc/")) for p in collapsed["paths"])
    [inv] = collapsed["invalidations"]
    paths, _ref = invalidation_paths(cloudfront_client, distribution["id"], inv["id"])
    assert sorted(paths) == collapsed["paths"]

    many = ["/p/%05d.html" % i for i in range(3500)]
    split = run_module(MODULE, dict(connection(sandbox), distribution_id=distribution["id"], paths=many,
                                    collapse_threshold=5000, run_id=uuid.uuid4().hex))
    assert split["collapsed"] is False
    assert [i["path_count"] for i in split["invalidations"]] == [3000, 500]
    refs = [i["caller_reference"] for i in split["invalidations"]]
    assert refs[0].endswith("-1") and refs[1].endswith("-2")
    stored = [invalidation_paths(cloudfront_client, distribution["id"], i["id"])[0] for i in split["invalidations"]]
    assert sorted(stored[0] + stored[1]) == many


def test_transient_server_errors_are_retried(sandbox, distribution, cloudfront_client, run_module, recording_proxy):
    failures = {"left": 2}

    def fail_first_creates(method, path, query):
        if method == "POST" and path.endswith("/invalidation") and failures["left"]:
            failures["left"] -= 1
            return 503
        return None

    recording_proxy.fail_when(fail_first_creates)
    before = len(all_invalidations(cloudfront_client, distribution["id"]))
    result = run_module(MODULE, dict(connection(sandbox, recording_proxy.url), distribution_id=distribution["id"],
                                     paths=["/retry.html"], run_id=uuid.uuid4().hex))
    assert result["changed"] is True and not result.get("failed"), result
    assert failures["left"] == 0
    assert len([r for r in recording_proxy.requests if r.method == "POST"]) == 3
    assert len(all_invalidations(cloudfront_client, distribution["id"])) == before + 1


@pytest.mark.parametrize("args, message", [
    (dict(alias="nothing.example", paths=["/a"], run_id="r"), "No CloudFront distribution has the alias or domain name 'nothing.example'"),
    (dict(distribution_id="ENOSUCHDIST", paths=["/a"], run_id="r"), "NoSuchDistribution"),
    (dict(distribution_id="E1", paths=["/a*b"], run_id="r"), "'*' is only allowed as the last character"),
    (dict(distribution_id="E1", alias="x", paths=["/a"]), "mutually exclusive"),
    (dict(paths=["/a"]), "one of the following is required: distribution_id, alias"),
])
def test_bad_input_fails_clearly(sandbox, run_module, args, message):
    result = run_module(MODULE, dict(connection(sandbox), **args))
    assert result.get("failed") is True and message in result["msg"], result
    assert sandbox.aws.secret_key not in result["_stdout"]
