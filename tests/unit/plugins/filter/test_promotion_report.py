# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's report and summary table (filters promotion_report and promotion_summary)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.casper.directus_promote.plugins.filter.promotion_report import (
    FilterModule, durations, human_bytes, promotion_report, promotion_summary)

T0 = 1796299200.0  # 2026-12-03T12:00:00Z


def marks(*phases, step=2.0):
    return [["start", T0]] + [[name, T0 + step * (i + 1)] for i, name in enumerate(phases)]


ALL = ("validate", "preflight", "assets_copy", "database", "assets_prune", "cdn", "cache", "verify", "summary")


def promotion(check_mode=False, **results):
    base = {
        "preflight_db": {"changed": False, "preflight": {"findings": [{"status": "ok"}, {"status": "warning",
                                                                                         "message": "slow disk"}]}},
        "preflight_s3": {"changed": False}, "preflight_cdn": {"changed": False},
        "assets_copy": {"changed": True, "counts": {"copied": 3, "updated": 1, "unchanged": 7, "bytes_copied": 3 << 20},
                        "trash": {"bucket": "prod", "prefix": "_directus_promote_trash/r1/", "saved": 1}},
        "database": {"changed": True, "changed_tables": ["articles", "tags"], "backup_schema": "d__backup_1"},
        "assets_prune": {"changed": True, "counts": {"deleted": 2}},
        "cdn": {"changed": True, "invalidations": [{"id": "I1"}], "paths": ["/a", "/b"], "collapsed": False},
        "cache": {"changed": True, "status": 204},
        "health": {"json": {"status": "ok"}},
        "verify_assets": {"changed": False}, "verify_db": {"changed": False}, "verify_check": {"failed": False},
    }
    base.update(results)
    return {"kind": "promote", "run_id": "prod-r1", "source": "staging", "target": "prod", "check_mode": check_mode,
            "marks": marks(*ALL), "notices": ["NOTICE: something optional"], "failure": None,
            "results": base, "settings": {"distribution": True, "target_directus": True, "restart_commands": 0,
                                          "versions": {"source": "11.3.5", "target": "11.3.5"}}}


def closing(lines):
    """The sentence after the table."""
    return [line for line in lines if not line.startswith(("|", "+", "warning: "))][0]


def test_a_promotion_report_has_every_phase_with_counts_and_durations():
    report = promotion_report(promotion())
    assert [p["name"] for p in report["phases"]] == list(ALL[:-1])
    by_name = {p["name"]: p for p in report["phases"]}
    assert by_name["assets_copy"] == {"name": "assets_copy", "result": "changed", "seconds": 2.0,
                                      "details": "3 copied, 1 updated, 7 unchanged, 3.0 MiB",
                                      "counts": {"copied": 3, "updated": 1, "unchanged": 7, "bytes_copied": 3 << 20}}
    assert by_name["preflight"]["details"] == "Directus 11.3.5, 2 db checks (1 with changes), distribution found"
    assert by_name["verify"]["details"] == "health ok, assets in sync, database in sync"
    assert report["result"] == "changed"
    assert (report["started"], report["ended"], report["seconds"]) == ("2026-12-03T12:00:00+00:00",
                                                                       "2026-12-03T12:00:18+00:00", 18.0)
    assert report["database_backup"] == "d__backup_1"
    assert report["asset_trash"]["prefix"] == "_directus_promote_trash/r1/"
    assert report["cloudfront_invalidations"] == ["I1"]
    assert report["warnings"] == ["NOTICE: something optional", "preflight_db: slow disk"]
    json.dumps(report)  # a JSON document


def test_verify_never_says_in_sync_without_comparing():
    report = promotion_report(promotion(verify_assets={"skipped": True}, verify_db=None, health={"skipped": True}))
    verify = report["phases"][-1]
    assert verify["details"] == "health skipped, assets skipped, database skipped"
    assert "in sync" not in json.dumps(report)


def test_a_failed_verification_is_reported_failed():
    report = promotion_report(promotion(verify_check={"failed": True}, failure={"task": "Check the target", "msg": "x"}))
    assert report["phases"][-1]["result"] == "FAILED" and report["result"] == "failed"
    assert closing(promotion_summary(report)) == "Promotion staging -> prod: FAILED in verify (run id prod-r1)"


def test_a_run_that_failed_in_a_phase_reports_the_phases_after_it_as_not_run():
    run = promotion(database={"failed": True, "msg": "cut-over timed out"}, assets_prune=None, cdn=None, cache=None,
                    health=None, verify_assets=None, verify_db=None, verify_check=None,
                    failure={"task": "Replicate the database onto the target", "msg": "cut-over timed out"})
    run["marks"] = marks("validate", "preflight", "assets_copy", "summary")
    report = promotion_report(run)
    assert [(p["name"], p["result"]) for p in report["phases"]] == [
        ("validate", "ok"), ("preflight", "ok"), ("assets_copy", "changed"), ("database", "FAILED"),
        ("assets_prune", "not run"), ("cdn", "not run"), ("cache", "not run"), ("verify", "not run")]
    assert report["result"] == "failed" and report["failed_phases"] == ["database"]


def test_check_mode_says_would_change_and_the_table_is_the_plan():
    report = promotion_report(promotion(check_mode=True, cache=None))
    assert report["result"] == "check mode"
    assert {p["name"]: p["result"] for p in report["phases"]}["database"] == "would change"
    assert {p["name"]: p["details"] for p in report["phases"]}["cache"] == "would clear the cache"
    assert "CHECK MODE: nothing was changed; the table is the plan." in promotion_summary(report)


def test_an_unchanged_promotion_and_a_partial_one():
    quiet = {"changed": False, "counts": {}}
    run = promotion(assets_copy=quiet, database={"changed": False, "changed_tables": []}, assets_prune=quiet,
                    cdn={"skipped": True}, cache=None)
    assert closing(promotion_summary(promotion_report(run))) == "Promotion staging -> prod: no change (already in sync)"
    run["results"]["assets_prune"] = None
    assert closing(promotion_summary(promotion_report(run))).startswith("Promotion staging -> prod: no change (phases run:")


def test_a_rollback_report():
    run = {"kind": "rollback", "run_id": "prod-rollback-1", "source": "", "target": "prod", "check_mode": False,
           "marks": marks("validate", "assets_restore", "database", "assets_remove", "cdn", "cache", "verify", "summary"),
           "results": {"assets_restore": {"changed": True, "restored": 2, "removed": 0},
                       "database": {"changed": True, "changed_tables": ["a"], "rollback_of": {"backup_schema": "d__b"}},
                       "assets_remove": {"changed": True, "restored": 0, "removed": 5, "changed_since": ["x"]},
                       "cdn": None, "health": {"json": {"status": "ok"}}, "verify_restore": {"changed": False}},
           "settings": {"distribution": False, "target_directus": False}}
    report = promotion_report(run)
    assert [(p["name"], p["result"], p["details"]) for p in report["phases"]] == [
        ("validate", "ok", "undo the newest promotion of prod, run id prod-rollback-1"),
        ("assets_restore", "changed", "2 put back, 0 removed"),
        ("database", "changed", "1 table(s) changed, backup d__b swapped back in"),
        ("assets_remove", "changed", "0 put back, 5 removed, 1 changed since (left alone)"),
        ("cdn", "skipped", "no directus_cloudfront_distribution_id on prod"),
        ("cache", "skipped", "no directus_url/directus_admin_token on prod"),
        ("verify", "ok", "health ok, asset restore complete")]
    assert report["source"] is None and report["rollback_of"] == {"backup_schema": "d__b"}
    assert closing(promotion_summary(report)) == "Rollback of prod: CHANGED"


def test_the_summary_table_is_aligned():
    lines = promotion_summary(promotion_report(promotion()))
    table = [line for line in lines if line.startswith(("|", "+"))]
    assert len({len(line) for line in table}) == 1
    assert table[1].split("|")[1].strip() == "phase" and table[3].startswith("| validate ")


def test_helpers_and_bad_input():
    assert durations([["start", 1], ["a", 3.5], ["b", 4], ["a", 5]]) == {"a": 3.5, "b": 0.5}
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 << 20, 3 << 30)] == ["0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3.0 GiB"]
    with pytest.raises(AnsibleFilterError):
        promotion_report({"kind": "deploy"})
    assert set(FilterModule().filters()) == {"promotion_report", "promotion_summary"}
