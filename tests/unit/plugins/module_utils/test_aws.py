"""Shared AWS connection options: amazon.aws names, env fallbacks, source-side resolution."""

from __future__ import annotations

import json

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import aws


def _module(monkeypatch, params, env=None):
    """A real AnsibleModule built from the shared argument spec."""
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    for key in list(__import__("os").environ):
        if key.startswith(("AWS_", "EC2_")):
            monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    spec = dict(aws.aws_connection_argument_spec())
    spec.update(aws.aws_connection_argument_spec("source_"))
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": params})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    return basic.AnsibleModule(argument_spec=spec, supports_check_mode=True)


def test_option_names_and_aliases_match_amazon_aws():
    spec = aws.aws_connection_argument_spec()
    assert set(spec) == {"access_key", "secret_key", "session_token", "profile", "region", "endpoint_url",
                         "validate_certs", "aws_ca_bundle"}
    assert "aws_access_key_id" in spec["access_key"]["aliases"]
    assert "aws_secret_access_key" in spec["secret_key"]["aliases"]
    assert "aws_region" in spec["region"]["aliases"]
    assert "aws_endpoint_url" in spec["endpoint_url"]["aliases"]
    for secret in ("access_key", "secret_key", "session_token"):
        assert spec[secret]["no_log"] is True
        assert aws.aws_connection_argument_spec("source_")["source_" + secret]["no_log"] is True


def test_environment_fallbacks(monkeypatch):
    module = _module(monkeypatch, {}, env={
        "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token",
        "AWS_DEFAULT_REGION": "eu-central-1", "AWS_URL": "http://127.0.0.1:9", "AWS_CA_BUNDLE": "/etc/ssl/ca.pem"})
    resolved = aws.connection_params(module.params)
    assert resolved == {"access_key": "AKIAENV", "secret_key": "env-secret", "session_token": "env-token",
                        "profile": None, "region": "eu-central-1", "endpoint_url": "http://127.0.0.1:9",
                        "validate_certs": True, "aws_ca_bundle": "/etc/ssl/ca.pem"}


def test_explicit_options_beat_the_environment(monkeypatch):
    module = _module(monkeypatch, {"aws_access_key_id": "AKIAOPT", "secret_key": "opt", "region": "us-west-2"},
                     env={"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env", "AWS_REGION": "eu-west-1"})
    resolved = aws.connection_params(module.params)
    assert (resolved["access_key"], resolved["secret_key"], resolved["region"]) == ("AKIAOPT", "opt", "us-west-2")


def test_source_side_falls_back_to_target_as_a_whole_for_credentials():
    params = {"access_key": "TARGET", "secret_key": "target-secret", "session_token": "target-token",
              "region": "eu-west-1", "endpoint_url": "https://s3.example", "validate_certs": False,
              "source_region": "us-east-2"}
    resolved = aws.connection_params(params, "source_")
    assert resolved["access_key"] == "TARGET" and resolved["session_token"] == "target-token"
    assert resolved["region"] == "us-east-2"
    assert resolved["endpoint_url"] == "https://s3.example" and resolved["validate_certs"] is False

    # A source profile alone must not inherit the target's keys or token.
    params["source_profile"] = "staging-account"
    resolved = aws.connection_params(params, "source_")
    assert resolved["profile"] == "staging-account"
    assert resolved["access_key"] is None and resolved["secret_key"] is None and resolved["session_token"] is None


@pytest.mark.parametrize("resolved, problem", [
    ({"profile": "p", "access_key": "a", "secret_key": "s"}, "mutually exclusive"),
    ({"access_key": "a"}, "must be given together"),
    ({"secret_key": "s"}, "must be given together"),
])
def test_connection_problems(resolved, problem):
    problems = aws.connection_problems(resolved, "source")
    assert len(problems) == 1 and problem in problems[0] and "source side" in problems[0]


def test_no_problem_with_a_complete_key_pair_or_a_profile():
    assert aws.connection_problems({"access_key": "a", "secret_key": "s"}) == []
    assert aws.connection_problems({"profile": "p"}) == []


def test_client_uses_retry_mode_pool_size_and_path_style_for_custom_endpoints(monkeypatch):
    module = _module(monkeypatch, {"access_key": "a", "secret_key": "s", "endpoint_url": "http://127.0.0.1:9",
                                   "region": "eu-west-1"})
    client = aws.aws_client(module, "s3", max_pool_connections=32)
    config = client.meta.config
    assert config.retries["mode"] == "adaptive" and config.retries["total_max_attempts"] == 11
    standard = aws.aws_client(module, "s3", retry_mode="standard", max_attempts=9).meta.config
    assert standard.retries["mode"] == "standard" and standard.retries["total_max_attempts"] == 10
    assert config.max_pool_connections == 32
    assert config.s3["addressing_style"] == "path"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert aws.USER_AGENT in config.user_agent_extra


def test_error_message_is_one_line_with_code_and_operation():
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                       "ResponseMetadata": {"HTTPStatusCode": 403}}, "ListObjectsV2")
    assert aws.aws_error_message(exc) == "AccessDenied: Access Denied (ListObjectsV2)"
    assert aws.aws_error_code(exc) == "AccessDenied"
    bare = ClientError({"Error": {}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadBucket")
    assert aws.aws_error_message(bare) == "404 (HeadBucket)"


def test_s3_mirror_parses_iso_timestamps_fast_and_exactly():
    import datetime

    from botocore.utils import parse_timestamp

    from ansible_collections.casper.directus_promote.plugins.module_utils import s3_parsing

    for text in ("2026-11-25T13:37:34.000Z", "2026-11-25T13:37:34Z", "2026-11-25T13:37:34.123456+02:00",
                 "2026-11-25T13:49:45.1Z", "1700000000"):
        assert s3_parsing.fast_timestamp(text) == parse_timestamp(text)
        assert s3_parsing.fast_timestamp(text).utcoffset() is not None
    # HTTP dates (response headers) still go to botocore's parser.
    assert s3_parsing.fast_timestamp("Wed, 25 Nov 2026 13:37:34 GMT") == datetime.datetime(
        2026, 11, 25, 13, 37, 34, tzinfo=datetime.timezone.utc)
