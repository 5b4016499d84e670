"""The shortcut parser for flat S3/CloudFront structures gives botocore's own results.

Every document is parsed twice, by botocore's RestXMLParser and by
FlatStructureXMLParser (both with s3_mirror's timestamp parser), and the
results must be equal: the shortcut may only be faster, never different.
The check that replaces botocore's second parse of listing pages must hand
anything but a complete page to botocore's own check (the integration tests
serve such pages over HTTP).
"""

from __future__ import annotations

import random

import botocore.session
import pytest
from botocore.parsers import RestXMLParser

from ansible_collections.casper.directus_promote.plugins.module_utils import s3_parsing as aws

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
CF_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"


@pytest.fixture(scope="module")
def models():
    session = botocore.session.get_session()
    return {name: session.get_service_model(name) for name in ("s3", "cloudfront")}


def parse_both(model, operation, body, status=200, headers=None):
    shape = model.operation_model(operation).output_shape
    response = {"body": body.encode("utf-8"), "headers": headers or {}, "status_code": status}
    stock = RestXMLParser(timestamp_parser=aws.fast_timestamp).parse(dict(response), shape)
    fast = aws.FastParserFactory()
    fast.set_parser_defaults(timestamp_parser=aws.fast_timestamp)
    return stock, fast.create_parser("rest-xml").parse(dict(response), shape)


def contents(key, size=1, etag='"0f"', extra=""):
    return ("<Contents><Key>%s</Key><LastModified>2026-11-25T10:11:12.000Z</LastModified><ETag>%s</ETag>"
            "<Size>%d</Size>%s<StorageClass>STANDARD</StorageClass></Contents>" % (key, etag, size, extra))


def listing(*items, ns=S3_NS, truncated=False, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult%s><Name>b</Name><Prefix></Prefix>'
            "<KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>"
            "<IsTruncated>%s</IsTruncated>%s%s</ListBucketResult>"
            % (' xmlns="%s"' % ns if ns else "", len(items), "true" if truncated else "false", "".join(items), extra))


LISTINGS = {
    "plain": listing(contents("a"), contents("b%2Fc", 65536)),
    "no namespace": listing(contents("a"), ns=None),
    "aws checksums (a flattened list)": listing(contents(
        "a", extra="<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumAlgorithm>SHA256</ChecksumAlgorithm>"
        "<ChecksumType>FULL_OBJECT</ChecksumType>")),
    "owner (nested: botocore's path)": listing(contents(
        "a", extra="<Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>")),
    "restore status (nested)": listing(contents(
        "a", extra="<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>")),
    "empty elements": listing(contents("", 0, etag="")),
    "unknown element": listing(contents("a", extra="<Surprise>x</Surprise>")),
    "prefixes and token": listing(truncated=True, extra="<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"
                                  "<NextContinuationToken>tok</NextContinuationToken>"),
    "empty bucket": listing(),
}


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_listing_pages_parse_exactly_as_botocore_does(models, name):
    stock, fast = parse_both(models["s3"], "ListObjectsV2", LISTINGS[name])
    assert fast == stock


def test_a_repeated_scalar_takes_botocores_path(models):
    # botocore hands the repeated elements themselves through; so does the shortcut, by not taking it
    body = listing(contents("a", extra="<StorageClass>GLACIER</StorageClass>"))
    stock, fast = parse_both(models["s3"], "ListObjectsV2", body)
    texts = [[e.text for e in page["Contents"][0]["StorageClass"]] for page in (stock, fast)]
    assert texts[0] == texts[1] == ["GLACIER", "STANDARD"]


def test_random_listing_pages_parse_exactly_as_botocore_does(models):
    rng = random.Random(7)
    optional = ["<ChecksumAlgorithm>CRC32</ChecksumAlgorithm>", "<ChecksumType>COMPOSITE</ChecksumType>",
                "<Owner><ID>x</ID></Owner>", ""]
    for _page in range(20):
        items = []
        for _item in range(rng.randint(0, 60)):
            key = "".join(rng.choice(["a", "b", "z", "0", "9", " ", "%2B", "&amp;", "&lt;", "\u00e9", "\u4e2d", "/"]) for _c in range(rng.randint(1, 12)))
            items.append(contents(key, rng.randint(0, 2 ** 40), '"%032x"' % rng.getrandbits(128),
                                  "".join(rng.sample(optional, rng.randint(0, 2)))))
        stock, fast = parse_both(models["s3"], "ListObjectsV2", listing(*items))
        assert fast == stock
        assert len(fast.get("Contents", [])) == len(items)


OTHER_DOCUMENTS = [
    ("s3", "GetObjectTagging", '<Tagging xmlns="%s"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>'
     "<Tag><Key>k2</Key><Value></Value></Tag></TagSet></Tagging>" % S3_NS),
    ("s3", "CopyObject", '<CopyObjectResult xmlns="%s"><LastModified>2026-11-25T10:11:12.000Z</LastModified>'
     '<ETag>"e"</ETag></CopyObjectResult>' % S3_NS),
    ("s3", "UploadPartCopy", '<CopyPartResult xmlns="%s"><LastModified>2026-11-25T10:11:12Z</LastModified>'
     '<ETag>"e"</ETag></CopyPartResult>' % S3_NS),
    ("s3", "CreateMultipartUpload", '<InitiateMultipartUploadResult xmlns="%s"><Bucket>b</Bucket><Key>k</Key>'
     "<UploadId>u</UploadId></InitiateMultipartUploadResult>" % S3_NS),
    ("s3", "DeleteObjects", '<DeleteResult xmlns="%s"><Deleted><Key>a</Key></Deleted><Error><Key>b</Key>'
     "<Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>" % S3_NS),
    ("cloudfront", "GetInvalidation", '<Invalidation xmlns="%s"><Id>I1</Id><Status>Completed</Status>'
     "<CreateTime>2026-11-25T10:11:12.123Z</CreateTime><InvalidationBatch><Paths><Quantity>2</Quantity>"
     "<Items><Path>/a</Path><Path>/b</Path></Items></Paths><CallerReference>c</CallerReference>"
     "</InvalidationBatch></Invalidation>" % CF_NS),
    ("cloudfront", "ListInvalidations", '<InvalidationList xmlns="%s"><Marker></Marker><MaxItems>100</MaxItems>'
     "<IsTruncated>false</IsTruncated><Quantity>1</Quantity><Items><InvalidationSummary><Id>I1</Id>"
     "<CreateTime>2026-11-25T10:11:12Z</CreateTime><Status>InProgress</Status></InvalidationSummary></Items>"
     "</InvalidationList>" % CF_NS),
]


@pytest.mark.parametrize("service,operation,body", OTHER_DOCUMENTS, ids=[d[1] for d in OTHER_DOCUMENTS])
def test_other_responses_parse_exactly_as_botocore_does(models, service, operation, body):
    stock, fast = parse_both(models[service], operation, body)
    assert fast == stock
    assert len(fast) > 1  # the document was read, not skipped


def test_error_responses_parse_exactly_as_botocore_does(models):
    body = "<Error><Code>NoSuchBucket</Code><Message>gone</Message><BucketName>b</BucketName></Error>"
    stock, fast = parse_both(models["s3"], "ListObjectsV2", body, status=404)
    assert fast == stock
    assert fast["Error"]["Code"] == "NoSuchBucket"


# ------------------------------------------------------------------ the 200-error check

def run_check(models, operation, body, status=200):
    calls = []

    def botocore_check(**kwargs):
        calls.append(kwargs)
        kwargs["response_dict"]["status_code"] = 500

    response = {"body": body.encode("utf-8"), "status_code": status, "headers": {}}
    aws.listing_aware_200_check(botocore_check)(operation_model=models["s3"].operation_model(operation),
                                                response_dict=response, customized_response_dict={})
    return calls, response["status_code"]


def test_a_complete_listing_page_skips_the_second_parse(models):
    calls, status = run_check(models, "ListObjectsV2", LISTINGS["plain"] + "\n")
    assert (calls, status) == ([], 200)


@pytest.mark.parametrize("body", [
    LISTINGS["plain"][:-40],                                         # cut short by the network
    "<?xml version=\"1.0\"?><Error><Code>InternalError</Code></Error>",  # an error sent with 200
    "",
])
def test_anything_else_from_a_listing_gets_botocores_check(models, body):
    calls, status = run_check(models, "ListObjectsV2", body)
    assert len(calls) == 1 and status == 500


def test_other_operations_get_botocores_check(models):
    calls, _status = run_check(models, "CopyObject", '<CopyObjectResult><ETag>"e"</ETag></CopyObjectResult>')
    assert len(calls) == 1


def fast_parse(model, operation, body):
    factory = aws.FastParserFactory()
    factory.set_parser_defaults(timestamp_parser=aws.fast_timestamp)
    response = {"body": body.encode("utf-8"), "headers": {}, "status_code": 200}
    return factory.create_parser("rest-xml").parse(response, model.operation_model(operation).output_shape)


def test_the_shortcut_reads_flat_objects_and_leaves_nested_ones_to_botocore(models, monkeypatch):
    from botocore.parsers import BaseXMLResponseParser

    generic = []
    original = BaseXMLResponseParser._handle_structure

    def counting(self, shape, node):
        generic.append(shape.name)
        return original(self, shape, node)

    monkeypatch.setattr(BaseXMLResponseParser, "_handle_structure", counting)
    fast = fast_parse(models["s3"], "ListObjectsV2", LISTINGS["plain"])
    assert [c["Size"] for c in fast["Contents"]] == [1, 65536]
    assert "Object" not in generic
    del generic[:]
    fast_parse(models["s3"], "ListObjectsV2", LISTINGS["owner (nested: botocore's path)"])
    assert generic.count("Object") == 1  # nested Owner: botocore walks the object (its flat Owner is read fast)
