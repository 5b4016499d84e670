# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins' progress watcher: one line at most every interval, only while a phase runs."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils.progress import Reporter
from ansible_collections.casper.directus_promote.plugins.plugin_utils import progress_action as pa


class Clock:
    def __init__(self, start=50.0):
        self.now = start

    def __call__(self):
        return self.now


def test_one_line_at_most_every_interval_and_only_while_a_phase_runs():
    clock, lines = Clock(), []
    state = {"snap": None}
    watcher = pa.Watcher("unused", 10, "s3_mirror", emit=lines.append, read=lambda _path: state["snap"],
                         clock=clock, wall=lambda: 1000.0 + clock.now)
    clock.now += 9.9
    state["snap"] = {"phase": "copying objects", "unit": "objects", "done": 5, "total": 10, "bytes_done": 0,
                     "bytes_total": None, "detail": None, "started": 1000.0 + 50.0, "active": True}
    assert not watcher.tick()          # the first line comes one interval after the start
    clock.now += 0.1
    assert watcher.tick() and lines == ["s3_mirror: copying objects: 5/10 objects (50%), 0.5 objects/s, 10s elapsed, ETA 10s"]
    for _tick in range(39):
        clock.now += 0.25
        watcher.tick()
    assert len(lines) == 1             # 9.75 s later: still one line
    clock.now += 0.25
    assert watcher.tick() and len(lines) == 2
    state["snap"] = dict(state["snap"], active=False)
    clock.now += 30
    assert not watcher.tick() and len(lines) == 2   # between phases: nothing
    state["snap"] = None
    assert not watcher.tick()          # no file yet (or being replaced): nothing


def test_the_thread_prints_what_a_reporter_writes(tmp_path):
    path = str(tmp_path / "progress.json")
    reporter = Reporter(path)
    lines = []
    watcher = pa.Watcher(path, 0.2, "directus_db_replicate", emit=lines.append)
    watcher.start()
    try:
        reporter.start("verifying the shadow tables", 3, "scans")
        deadline = time.monotonic() + 5
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert lines and lines[0].startswith("directus_db_replicate: verifying the shadow tables: 0/3 scans (0%), ")
    assert not watcher._thread.is_alive()


def test_read_snapshot_tolerates_a_missing_or_partial_file(tmp_path):
    path = tmp_path / "progress.json"
    assert pa.read_snapshot(str(path)) is None
    path.write_text('{"phase": "cop')
    assert pa.read_snapshot(str(path)) is None
    path.write_text(json.dumps({"phase": "x"}))
    assert pa.read_snapshot(str(path)) == {"phase": "x"}


@pytest.mark.parametrize("args, seconds", [({}, 10), ({"progress_interval": None}, 10), ({"progress_interval": "1"}, 1.0),
                                           ({"progress_interval": 0}, 0), ({"progress_interval": -5}, 0),
                                           ({"progress_interval": "soon"}, 0), ({"progress_interval": 2.5}, 2.5)])
def test_interval_of_task_args(args, seconds):
    assert pa.interval_of(args) == seconds
