"""Unit tests of s3_mirror's option handling (pure parts of the module)."""

from __future__ import annotations

import pytest

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


def test_defaults_for_real_world_latency():
    spec = s3_mirror.argument_spec()
    assert spec["workers"]["default"] == 128
    assert spec["retry_mode"]["default"] == "standard"
    assert "direct_requests" not in spec  # hand-signed requests relied on botocore's private internals: gone
    options = s3_mirror.client_options(params(), check_mode=False)
    assert options["max_pool_connections"] >= 128 + 2 * s3_mirror.LISTING_READ_AHEAD
    assert options["retry_mode"] == "standard" and options["max_attempts"] == 9


@pytest.mark.parametrize("workers", [1, 8, 256])
def test_the_pool_holds_the_workers_both_listings_and_the_trash_reads(workers):
    # source and target share one client when they share an account: a smaller pool would open and drop connections
    read_ahead = min(workers, s3_mirror.LISTING_READ_AHEAD)
    assert s3_mirror.client_options(params(workers=workers), check_mode=False)["max_pool_connections"] >= \
        workers + 2 * read_ahead + 2


def test_role_default_workers_match_the_module():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[4]
    defaults = yaml.safe_load((root / "roles/promote/defaults/main.yml").read_text())
    specs = yaml.safe_load((root / "roles/promote/meta/argument_specs.yml").read_text())
    role_spec = specs["argument_specs"]["main"]["options"]["promote_s3_workers"]
    assert defaults["promote_s3_workers"] == role_spec["default"] == s3_mirror.argument_spec()["workers"]["default"]


def test_byte_budget_bounds_what_is_held_at_once():
    import threading
    import time

    budget = s3_mirror.ByteBudget(100)
    held = []
    lock = threading.Lock()

    def take(size):
        with budget.holding(size):
            with lock:
                held.append(budget.used)
            time.sleep(0.01)

    threads = [threading.Thread(target=take, args=(size,)) for size in [40] * 10 + [30] * 5]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(held) == 15 and max(held) <= 100 and budget.peak <= 100 and budget.used == 0


def test_byte_budget_lets_one_oversized_taker_through_alone():
    budget = s3_mirror.ByteBudget(100)
    budget.take(500)  # a part larger than the budget: alone, never stuck
    assert budget.used == 500
    budget.give(500)
    budget.take(60)
    budget.take(40)
    assert budget.used == 100
    budget.give(60)
    budget.give(40)
    assert budget.used == 0
