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
                                         multipart_chunksize=1024, max_keys_returned=-1, retry_max_attempts=0,
                                         max_delete_percent_min_count=-1))
    assert len(problems) == 8
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
    assert spec["mode"]["choices"] == ["mirror", "copy", "prune", "restore", "purge_trash"]
    assert spec["copy_method"]["choices"] == ["auto", "server", "stream"]
    assert spec["multipart_threshold"]["default"] == 5 * 1024 ** 3
