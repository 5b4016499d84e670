"""Unit tests of s3_mirror's option handling (pure parts of the module)."""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.modules import s3_mirror


def params(**overrides):
    spec = s3_mirror.argument_spec()
    values = {name: option.get("default") for name, option in spec.items()}
    values.update(source_bucket="staging", target_bucket="prod")
    values.update(overrides)
    return values


def test_defaults_are_valid():
    assert s3_mirror.validate(params()) == []


def test_validate_reports_every_problem_at_once():
    problems = s3_mirror.validate(params(workers=0, max_delete=-1, max_delete_percent=101, multipart_threshold=6 * 1024 ** 3,
                                         multipart_chunksize=1024, max_keys_returned=-1, retry_max_attempts=0))
    assert len(problems) == 7
    assert any("CopyObject limit" in p for p in problems)


def test_validate_refuses_overlapping_ranges_of_one_bucket():
    assert s3_mirror.validate(params(target_bucket="staging")) == [
        "source and target overlap (same bucket, one prefix contains the other)"]
    assert s3_mirror.validate(params(target_bucket="staging", source_prefix="a", target_prefix="a2")) == []
    assert s3_mirror.validate(params(target_bucket="staging", source_prefix="a", target_prefix="a/b")) != []


def test_argument_spec_has_both_connection_sides_with_secrets_hidden():
    spec = s3_mirror.argument_spec()
    for name in ("secret_key", "source_secret_key", "access_key", "source_access_key", "session_token", "source_session_token"):
        assert spec[name]["no_log"] is True, name
    assert "aws_access_key_id" in spec["access_key"]["aliases"]
    assert spec["mode"]["choices"] == ["mirror", "copy", "prune"]
    assert spec["copy_method"]["choices"] == ["auto", "server", "stream"]
    assert spec["multipart_threshold"]["default"] == 5 * 1024 ** 3


def test_fast_timestamp_matches_botocore_on_every_format():
    from botocore.utils import parse_timestamp

    for value in ("2026-11-25T13:49:45.098Z", "2026-11-25T13:49:45Z", "2026-11-25T13:49:45.123456+00:00",
                  "Wed, 25 Nov 2026 13:39:11 GMT", "1700000000", "2026-11-25T13:49:45.1Z"):
        assert s3_mirror.fast_timestamp(value) == parse_timestamp(value), value


def test_fast_timestamps_are_installed_on_a_real_client():
    import boto3

    client = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    s3_mirror.use_fast_timestamps(client)
    factory = client._endpoint._response_parser_factory  # pylint: disable=protected-access
    parser = factory.create_parser("rest-xml")
    assert parser._timestamp_parser is s3_mirror.fast_timestamp  # pylint: disable=protected-access
