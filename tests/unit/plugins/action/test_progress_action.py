# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins' progress watcher: one line at most every interval, only while a phase runs."""

from __future__ import annotations

import json
import os
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


class FakeTask:
    def __init__(self, args, async_val=0):
        self.args = args
        self.async_val = async_val
        self.action = "casper.directus_promote.s3_mirror"


class FakeConnection:
    transport = "local"
    has_native_async = False

    class _shell:   # noqa: N801 - ActionBase's attribute name
        tmpdir = None


class FakePlayContext:
    become = False


def action(args, lines, module, **task):
    """A ProgressAction around a fake module run (what _execute_module would return), printing into ``lines``."""
    plugin = pa.ProgressAction.__new__(pa.ProgressAction)
    plugin._task = FakeTask(args, **task)
    plugin._connection = FakeConnection()
    plugin._play_context = FakePlayContext()
    plugin._remove_tmp_path = lambda path: None
    plugin.seen_args = []

    def execute_module(module_args=None, task_vars=None, wrap_async=False):
        plugin.seen_args.append(module_args)
        return module(module_args if module_args is not None else args)

    plugin._execute_module = execute_module
    return plugin


def slow_module(args, pause=0.2):
    """Two seconds of a phase, then the result (with the invocation a module returns)."""
    reporter = Reporter(args.get("progress_file"))
    reporter.start("copying objects", 10, "objects")
    for _number in range(10):
        time.sleep(pause)
        reporter.advance(1)
    reporter.finish()
    return {"changed": True, "counts": {"copied": 10}, "invocation": {"module_args": dict(args)}}


@pytest.fixture
def printed(monkeypatch):
    lines = []
    monkeypatch.setattr(pa.display, "display", lines.append)
    monkeypatch.setattr(pa.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    return lines


def test_the_action_prints_while_the_module_runs_and_returns_its_result_unchanged(printed):
    plugin = action({"source_bucket": "a", "progress_interval": 0.5}, printed, slow_module)
    result = plugin.run(task_vars={})
    path = plugin.seen_args[0]["progress_file"]
    assert path.endswith("progress.json") and not os.path.exists(os.path.dirname(path))   # removed afterwards
    assert result == {"changed": True, "counts": {"copied": 10}, "invocation": {"module_args": {
        "source_bucket": "a", "progress_interval": 0.5, "progress_file": None}}}
    assert 2 <= len(printed) <= 4, printed   # 2 s at most every 0.5 s
    assert all(line.startswith("s3_mirror: copying objects: ") for line in printed)


@pytest.mark.parametrize("args, task, change", [
    ({"progress_interval": 0}, {}, None),
    ({"progress_interval": 0.3, "progress_file": "/tmp/mine.json"}, {}, None),
    ({"progress_interval": 0.3}, {"async_val": 60}, None),
    ({"progress_interval": 0.3}, {}, ("_connection", "transport", "ssh")),
    ({"progress_interval": 0.3}, {}, ("_play_context", "become", True)),
])
def test_no_watcher_when_the_module_cannot_be_watched_or_none_is_wanted(printed, tmp_path, args, task, change):
    """(The module runs 1 s: a watcher would print 3 lines.)"""
    args = dict(args)
    if "progress_file" in args:
        args["progress_file"] = str(tmp_path / "mine.json")
    plugin = action(args, printed, lambda module_args: slow_module(module_args, pause=0.1), **task)
    if change:
        target = type("Changed", (), {change[1]: change[2], "has_native_async": False, "_shell": FakeConnection._shell})()
        setattr(plugin, change[0], target)
    result = plugin.run(task_vars={})
    assert plugin.seen_args == [None]   # the task's own arguments, untouched
    assert result["invocation"]["module_args"] == args and printed == []
