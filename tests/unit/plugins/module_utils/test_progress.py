# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress reporter a module writes with, and the pure formatting of its lines."""

from __future__ import annotations

import json
import threading

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import progress as p


class Clock:
    def __init__(self, start=100.0):
        self.now = start

    def __call__(self):
        return self.now


def written(path):
    return json.loads(path.read_text())


def test_without_a_path_nothing_is_written(tmp_path):
    reporter = p.Reporter(None)
    reporter.start("copying", 10, "rows")
    reporter.advance(5)
    reporter.finish()
    assert not reporter.enabled and reporter.writes == 0 and reporter.snapshot() is None
    assert list(tmp_path.iterdir()) == []


def test_start_advance_finish_write_snapshots_at_most_once_per_second(tmp_path):
    clock, wall = Clock(), Clock(1_700_000_000.0)
    path = tmp_path / "progress.json"
    reporter = p.Reporter(str(path), clock=clock, wall=wall)
    reporter.start("copying objects", 4, "objects", total_bytes=4000)
    first = written(path)
    assert first == {"phase": "copying objects", "unit": "objects", "done": 0, "total": 4, "bytes_done": 0,
                     "bytes_total": 4000, "detail": None, "started": 1_700_000_000.0, "active": True,
                     "elapsed": 0.0, "seq": 1}
    clock.now += 0.5
    reporter.advance(1, 1000)
    assert written(path)["done"] == 0 and reporter.writes == 1   # throttled
    clock.now += 0.5
    reporter.advance(1, 1000)
    snap = written(path)
    assert (snap["done"], snap["bytes_done"], snap["elapsed"], reporter.writes) == (2, 2000, 1.0, 2)
    reporter.update(detail="table 2 of 2: big")
    assert reporter.writes == 2   # throttled too
    reporter.finish()   # always written: the phase is over
    snap = written(path)
    assert snap["active"] is False and snap["detail"] == "table 2 of 2: big" and reporter.writes == 3
    assert [f.name for f in tmp_path.iterdir()] == ["progress.json"]   # the temporary file was renamed


def test_advance_from_many_threads_counts_everything(tmp_path):
    reporter = p.Reporter(str(tmp_path / "progress.json"))
    reporter.start("deleting objects", 8000, "objects")

    def work():
        for _number in range(1000):
            reporter.advance(1, 3)

    threads = [threading.Thread(target=work) for _number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reporter.finish()
    snap = written(tmp_path / "progress.json")
    assert (snap["done"], snap["bytes_done"]) == (8000, 24000)


def test_a_vanished_directory_never_fails_the_module(tmp_path):
    reporter = p.Reporter(str(tmp_path / "gone" / "progress.json"))
    reporter.start("copying", 1, "rows")
    reporter.advance(1)
    reporter.finish()
    assert reporter.writes == 0


def test_reporter_of_module_params():
    assert p.reporter({"progress_file": None}).enabled is False
    assert p.reporter({}).enabled is False
    assert p.reporter({"progress_file": "/tmp/x.json"}).path == "/tmp/x.json"
    assert set(p.progress_argument_spec()) == {"progress_file", "progress_interval"}


@pytest.mark.parametrize("value, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536 * 1024, "1.5 MiB"),
                                         (5 * 1024 ** 3, "5.0 GiB"), (3 * 1024 ** 5, "3072.0 TiB"), (None, "?")])
def test_format_bytes(value, text):
    assert p.format_bytes(value) == text


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"),
                                           (7325, "2h02m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert p.format_duration(seconds) == text


def test_format_count_and_rate():
    assert p.format_count(1234567) == "1,234,567" and p.format_count(None) == "?" and p.format_count(2.5) == "2.5"
    assert p.format_rate(41.04) == "41.0" and p.format_rate(34724.4) == "34,724"


def snapshot(**changes):
    snap = {"phase": "copying tables into the shadow schema", "unit": "rows", "done": 0, "total": None,
            "bytes_done": 0, "bytes_total": None, "detail": None, "started": 1000.0, "active": True,
            "elapsed": 0.0, "seq": 1}
    snap.update(changes)
    return snap


def test_rate_and_eta_from_rows():
    snap = snapshot(done=120_000, total=400_000)
    got = p.measures(snap, 1060.0)
    assert got == {"elapsed": 60.0, "rate": 2000.0, "byte_rate": 0.0, "eta": 140.0}
    assert p.progress_line(snap, 1060.0, "directus_db_replicate") == (
        "directus_db_replicate: copying tables into the shadow schema: 120,000/400,000 rows (30%), 2,000 rows/s, "
        "1m00s elapsed, ETA 2m20s")


def test_a_stalled_phase_shows_a_falling_rate_and_a_growing_eta():
    snap = snapshot(done=100, total=200)
    early, late = p.measures(snap, 1010.0), p.measures(snap, 1020.0)
    assert late["rate"] < early["rate"] and late["eta"] > early["eta"]


def test_eta_from_bytes_when_known():
    snap = snapshot(phase="copying objects", unit="objects", done=10, total=20, bytes_done=1024 ** 2,
                    bytes_total=10 * 1024 ** 2)
    assert p.measures(snap, 1010.0)["eta"] == 90.0   # the bytes, not the half of the objects, say how long
    assert p.progress_line(snap, 1010.0) == (
        "copying objects: 10/20 objects (50%), 1.0 MiB/10.0 MiB, 1.0 objects/s, 102.4 KiB/s, 10s elapsed, ETA 1m30s")


def test_line_without_total_detail_and_bytes_only():
    assert p.progress_line(snapshot(done=5, detail="table 3 of 9: articles"), 1002.0) == (
        "copying tables into the shadow schema (table 3 of 9: articles): 5/? rows, 2.5 rows/s, 2s elapsed")
    assert p.progress_line(snapshot(unit=None, bytes_done=512, bytes_total=1024), 1001.0) == (
        "copying tables into the shadow schema: 512 B/1.0 KiB (50%), 512 B/s, 1s elapsed, ETA 1s")


def test_a_phase_without_counts_shows_what_runs_and_for_how_long():
    snap = snapshot(phase="computing the checksums of 31 table(s) on both sides", unit=None)
    assert p.progress_line(snap, 1042.0, "directus_db_replicate") == (
        "directus_db_replicate: computing the checksums of 31 table(s) on both sides: 42s elapsed")


def test_no_rate_nor_eta_before_anything_is_done_and_done_past_an_estimate_stays_at_100_percent():
    assert p.progress_line(snapshot(total=10), 1000.0) == "copying tables into the shadow schema: 0/10 rows (0%), 0s elapsed"
    assert "(100%)" in p.progress_line(snapshot(done=12, total=10), 1006.0)
