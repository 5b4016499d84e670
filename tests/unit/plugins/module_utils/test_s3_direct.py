"""DirectCopy learns from botocore's own CopyObject and sends only what it can sign identically.

botocore builds and signs real CopyObject requests here; a before-send hook
captures each one and answers it locally, so no request leaves the process.
learn_copy_request() must accept exactly the requests it would have built
itself, byte for byte and with the same SigV4 signature, and refuse anything
else with a reason. The integration tests send direct requests to servers
that check signatures (rclone serve s3) and through a failing proxy.
"""

from __future__ import annotations

import functools
import random

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from ansible_collections.casper.directus_promote.plugins.module_utils import s3_direct

AWKWARD = ["plain.jpg", "a b/c d.png", "ü/日本語/é.txt", "plus+sign", "100%/done?.txt", "hash#tag", "tilde~/(x)[y]{z}",
           "semi;colon,comma=eq&amp", "  leading space", "dots/../up", "trailing/"]


class Answering:
    """Answers each CopyObject botocore sends, without sending it: the next (status, headers, body) given, then
    200 with a CopyObjectResult. Keeps every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, request, **kwargs):
        self.requests.append(request)
        status, headers, body = self.answers.pop(0) if self.answers else (
            200, {}, b"<CopyObjectResult><ETag>&quot;0f&quot;</ETag></CopyObjectResult>")

        class Raw:
            def stream(self, **kwargs):
                yield body

        return AWSResponse(request.url, status, headers, Raw())


@functools.lru_cache(maxsize=None)
def make_client(endpoint_url=None, region="eu-west-1", token=None, secret="secret/key+1"):
    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", secret, token)
    client = session.create_client("s3", region_name=region, endpoint_url=endpoint_url,
                                   config=Config(s3={"addressing_style": "path"} if endpoint_url else {}))
    captured = Answering()
    client.meta.events.register("before-send.s3.CopyObject", captured)
    return client, captured, session.get_credentials()


def botocore_copy(client, captured, target_key, source_bucket="staging-assets", source_key=None, **extra):
    client.copy_object(Bucket="prod-assets", Key=target_key, MetadataDirective="COPY", TaggingDirective="COPY",
                       CopySource={"Bucket": source_bucket, "Key": target_key if source_key is None else source_key},
                       **extra)
    return captured.requests[-1]


def learn(request, credentials, target_key, source_bucket="staging-assets", source_key=None):
    return s3_direct.learn_copy_request(request.method, request.url, request.headers, target_key, source_bucket,
                                        target_key if source_key is None else source_key,
                                        credentials.get_frozen_credentials())


@pytest.mark.parametrize("endpoint_url, prefix", [
    (None, "https://prod-assets.s3.eu-west-1.amazonaws.com/"),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000/prod-assets/"),
    ("https://s3.example.test:443", "https://s3.example.test:443/prod-assets/"),
])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE+/token=="])
@pytest.mark.parametrize("key", AWKWARD)
def test_botocore_requests_are_learned_and_signed_identically(endpoint_url, prefix, token, key):
    client, captured, credentials = make_client(endpoint_url, token=token)
    request = botocore_copy(client, captured, key)
    template, reason = learn(request, credentials, key)
    assert reason is None
    assert template == (prefix, "eu-west-1", "s3", s3_direct.EMPTY_SHA256)
    assert request.url == prefix + s3_direct.uri_encode(key)


def test_sign_v4_equals_botocore_for_random_keys_and_dates():
    rng = random.Random(7)
    alphabet = "abcXYZ019 /+%?#&=~!$'()*,;:@[]-_.üé日\t"
    for region in ("us-east-1", "ap-southeast-2"):
        client, captured, credentials = make_client(region=region, token=rng.choice([None, "tok"]))
        for _index in range(40):
            key = "".join(rng.choice(alphabet) for _char in range(rng.randint(1, 40)))
            source = "".join(rng.choice(alphabet) for _char in range(rng.randint(1, 40)))
            request = botocore_copy(client, captured, key, source_key=source)
            template, reason = learn(request, credentials, key, source_key=source)
            assert reason is None, (key, source)
            assert template[1] == region


def test_copy_headers_equal_what_botocore_sends():
    client, captured, credentials = make_client(token="tok")
    request = botocore_copy(client, captured, "a b/ü+x", source_key="a/é %")
    sent = {name.lower(): s3_direct.text(value) for name, value in request.headers.items()}
    mine = s3_direct.copy_headers("staging-assets", "a/é %", "prod-assets.s3.eu-west-1.amazonaws.com",
                                  sent["x-amz-date"], "tok")
    assert {name: sent[name] for name in mine if name != "host"} == {k: v for k, v in mine.items() if k != "host"}
    assert mine["x-amz-copy-source"] == "staging-assets/a/%C3%A9%20%25"


@pytest.mark.parametrize("extra, reason", [
    ({"ExpectedBucketOwner": "111122223333"}, "x-amz-expected-bucket-owner"),
    ({"RequestPayer": "requester"}, "x-amz-request-payer"),
    ({"ServerSideEncryption": "aws:kms"}, "x-amz-server-side-encryption"),
    ({"StorageClass": "GLACIER"}, "x-amz-storage-class"),
])
def test_requests_with_more_headers_are_refused(extra, reason):
    client, captured, credentials = make_client()
    request = botocore_copy(client, captured, "k", **extra)
    template, why = learn(request, credentials, "k")
    assert template is None
    assert reason in why


def test_an_access_point_copy_source_is_refused():
    client, captured, credentials = make_client()
    arn = "arn:aws:s3:eu-west-1:111122223333:accesspoint/staging"
    request = botocore_copy(client, captured, "k", source_bucket=arn)
    template, why = learn(request, credentials, "k", source_bucket=arn)
    assert template is None
    assert "x-amz-copy-source" in why


def test_other_credentials_or_a_different_signature_are_refused():
    client, captured, credentials = make_client()
    request = botocore_copy(client, captured, "k")
    other, _captured, other_credentials = make_client(secret="another-secret")
    template, why = learn(request, other_credentials, "k")
    assert template is None and "signature" in why
    request.headers["Authorization"] = request.headers["Authorization"].replace(b"AKIDEXAMPLE", b"AKIDOTHER")
    template, why = learn(request, credentials, "k")
    assert template is None and "other credentials" in why


def test_a_request_for_another_key_or_with_a_query_is_refused():
    client, captured, credentials = make_client()
    request = botocore_copy(client, captured, "k1")
    assert learn(request, credentials, "k2")[0] is None
    template, why = s3_direct.learn_copy_request("PUT", request.url + "?versionId=1", request.headers, "k1",
                                                 "staging-assets", "k1", credentials.get_frozen_credentials())
    assert template is None and "botocore sent the copy as" in why


def test_canonical_host_leaves_out_default_ports_only():
    assert s3_direct.canonical_host("https://h.example:443/x") == "h.example"
    assert s3_direct.canonical_host("http://h.example:80/x") == "h.example"
    assert s3_direct.canonical_host("http://h.example:443/x") == "h.example:443"
    assert s3_direct.canonical_host("http://127.0.0.1:9000/b/") == "127.0.0.1:9000"


def scripted_client(*answers):
    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "secret/key+1")
    client = session.create_client("s3", region_name="eu-west-1",
                                   config=Config(retries={"mode": "standard", "max_attempts": 3}))
    script = Answering(*answers)
    client.meta.events.register("before-send.s3.CopyObject", script)
    direct = s3_direct.DirectCopy(client, session.get_credentials(), "test direct")
    return client, script, direct


def copy_watched(client, direct, key="k"):
    with direct.watching(key, "staging-assets", key):
        client.copy_object(Bucket="prod-assets", Key=key, CopySource={"Bucket": "staging-assets", "Key": key},
                           MetadataDirective="COPY", TaggingDirective="COPY")


def test_the_request_that_succeeded_after_a_region_redirect_teaches():
    moved = b"<Error><Code>PermanentRedirect</Code><Message>use the bucket's region</Message></Error>"
    client, script, direct = scripted_client((301, {"x-amz-bucket-region": "us-west-2"}, moved))
    copy_watched(client, direct)
    assert script.requests[0].url.startswith("https://prod-assets.s3.eu-west-1.amazonaws.com/")
    assert script.requests[-1].url.startswith("https://prod-assets.s3.us-west-2.amazonaws.com/")
    assert direct.report() == {"enabled": True, "sent": 0, "stopped_by": None}
    assert direct._prefix == "https://prod-assets.s3.us-west-2.amazonaws.com/"
    assert direct._region == "us-west-2"


def test_a_failed_copy_teaches_nothing_and_the_next_one_does():
    denied = (403, {}, b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")
    client, _script, direct = scripted_client(denied)
    with pytest.raises(Exception, match="AccessDenied"):
        copy_watched(client, direct, "first")
    assert direct.report() == {"enabled": False, "sent": 0, "stopped_by": None}
    copy_watched(client, direct, "second")
    assert direct.enabled


def test_copies_nobody_watches_teach_nothing():
    client, _script, direct = scripted_client()
    client.copy_object(Bucket="prod-assets", Key="k", CopySource={"Bucket": "staging-assets", "Key": "k"},
                       MetadataDirective="COPY", TaggingDirective="COPY")
    assert not direct.enabled
