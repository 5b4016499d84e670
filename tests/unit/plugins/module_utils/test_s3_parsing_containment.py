"""s3_mirror's parsing shortcuts stay on s3_mirror's own clients.

cloudfront_invalidate, the plain ``aws_client`` and s3_mirror in check mode
(the promotion's preflight) get botocore's stock response parser and its
check for S3 errors sent with status 200, also after s3_mirror and its
module_utils were imported and an s3_mirror client was made in the same
process. (The handler lists are read through botocore's private attributes:
a test may look, the collection does not.)
"""

from __future__ import annotations

import json

import botocore.handlers
import botocore.parsers
import botocore.session
import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import aws, s3_parsing
from ansible_collections.casper.directus_promote.plugins.modules import s3_mirror

PARAMS = {"access_key": "a", "secret_key": "s", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}


def _module(monkeypatch):
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": PARAMS})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    return basic.AnsibleModule(argument_spec=aws.aws_connection_argument_spec(), supports_check_mode=True)


def parser_factory(client):
    return client._endpoint._response_parser_factory  # pylint: disable=protected-access


def before_parse(client, operation="ListObjectsV2"):
    service = client.meta.service_model.endpoint_prefix
    return list(client.meta.events._emitter._handlers.prefix_search(  # pylint: disable=protected-access
        "before-parse.%s.%s" % (service, operation)))


def assert_stock(client):
    factory = parser_factory(client)
    assert type(factory) is botocore.parsers.ResponseParserFactory  # pylint: disable=unidiomatic-typecheck
    protocol = client.meta.service_model.protocol
    parser = factory.create_parser(protocol)
    assert type(parser) is botocore.parsers.PROTOCOL_PARSERS[protocol]  # pylint: disable=unidiomatic-typecheck
    assert parser._timestamp_parser is not s3_parsing.fast_timestamp  # pylint: disable=protected-access
    if client.meta.service_model.service_name == "s3":
        handlers = before_parse(client)
        assert botocore.handlers._handle_200_error in handlers  # pylint: disable=protected-access
        assert not any(getattr(h, "__name__", "") == "check" for h in handlers)


def mirror_params(**overrides):
    values = {name: option.get("default") for name, option in s3_mirror.argument_spec().items()}
    values.update(PARAMS, source_bucket="a", target_bucket="b")
    values.update(overrides)
    return values


@pytest.fixture
def mirror_client(monkeypatch):
    """An s3_mirror client for a run that writes, made first in this process."""
    module = _module(monkeypatch)
    options = s3_mirror.client_options(mirror_params(), check_mode=False)
    return aws.aws_client(module, "s3", **options)


def test_s3_mirror_clients_have_the_shortcuts(mirror_client):
    factory = parser_factory(mirror_client)
    assert isinstance(factory, s3_parsing.FastParserFactory)
    parser = factory.create_parser("rest-xml")
    assert isinstance(parser, s3_parsing.FlatStructureXMLParser)
    assert parser._timestamp_parser is s3_parsing.fast_timestamp  # pylint: disable=protected-access
    handlers = before_parse(mirror_client)
    assert botocore.handlers._handle_200_error not in handlers  # pylint: disable=protected-access
    assert handlers[0].__name__ == "check"  # listing_aware_200_check, which calls botocore's for anything else


@pytest.mark.parametrize("service", ["cloudfront", "s3"])
def test_other_clients_use_plain_botocore_after_an_s3_mirror_client(mirror_client, monkeypatch, service):
    assert isinstance(parser_factory(mirror_client), s3_parsing.FastParserFactory)
    assert_stock(aws.aws_client(_module(monkeypatch), service))


def test_cloudfront_invalidate_uses_plain_botocore(mirror_client, monkeypatch):
    from ansible_collections.casper.directus_promote.plugins.modules import cloudfront_invalidate

    created = []
    real = aws.aws_client

    def spy(*args, **kwargs):
        created.append(real(*args, **kwargs))
        return created[-1]

    # cloudfront_invalidate creates its client with aws_client and nothing else
    assert cloudfront_invalidate.aws_client is aws.aws_client
    monkeypatch.setattr(cloudfront_invalidate, "aws_client", spy)
    cloudfront_invalidate.aws_client(_module(monkeypatch), "cloudfront")
    assert_stock(created[0])


def test_s3_mirror_in_check_mode_uses_plain_botocore(mirror_client, monkeypatch):
    options = s3_mirror.client_options(mirror_params(), check_mode=True)
    assert "setup_session" not in options and "setup_client" not in options
    assert_stock(aws.aws_client(_module(monkeypatch), "s3", **options))


def test_a_fresh_botocore_session_is_untouched(mirror_client):
    client = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="s")
    assert_stock(client)
