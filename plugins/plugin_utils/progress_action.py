# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The action plugin of the modules with long phases: runs the module as Ansible would, and meanwhile
prints the progress the module writes (docs/progress.md)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.casper.directus_promote.plugins.module_utils.progress import (
    DEFAULT_INTERVAL,
    progress_line,
)

display = Display()

#: how often the progress file is read (seconds; lines are printed at most every progress_interval)
READ_EVERY = 0.25


def read_snapshot(path):
    """The module's last snapshot, or None (not written yet, or being replaced)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


class Watcher:
    """Prints a line of the module's progress at most every ``interval`` seconds while a phase runs.

    ``tick`` is the whole decision (tested with an injected clock, reader and emitter); ``start``
    and ``stop`` run it in a thread of the worker process, whose display goes to the controller's
    output (and, under ansible-runner, becomes a ``verbose`` job event)."""

    def __init__(self, path, interval, name, emit=None, read=read_snapshot, clock=time.monotonic, wall=time.time):
        self.path = path
        self.interval = interval
        self.name = name
        self.emit = emit or display.display
        self.read = read
        self.clock = clock
        self.wall = wall
        self.last = clock()   # the first line comes one interval after the module started
        self.lines = 0
        self._stop = threading.Event()
        self._thread = None

    def tick(self):
        """Print a line when an interval has passed and a phase is running; True when it did."""
        now = self.clock()
        if now - self.last < self.interval:
            return False
        snapshot = self.read(self.path)
        if not snapshot or not snapshot.get("active"):
            return False
        self.emit(progress_line(snapshot, self.wall(), self.name))
        self.last = now
        self.lines += 1
        return True

    def _loop(self):
        while not self._stop.wait(min(READ_EVERY, self.interval)):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - progress never fails a task
                pass

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def interval_of(args):
    """progress_interval of the task's arguments: seconds, 0 (or invalid: left to the module) for none."""
    value = args.get("progress_interval", DEFAULT_INTERVAL)
    try:
        value = float(DEFAULT_INTERVAL if value is None else value)
    except (TypeError, ValueError):
        return 0
    return value if value > 0 else 0


class ProgressAction(ActionBase):
    """``normal`` plus the progress watcher, when the module runs on this controller as this user."""

    _supports_check_mode = True
    _supports_async = True

    def watchable(self):
        return (getattr(self._connection, "transport", None) in ("local", "ansible.builtin.local")
                and not self._task.async_val and not self._play_context.become
                and not self._task.args.get("progress_file") and interval_of(self._task.args) > 0)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        wrap_async = self._task.async_val and not self._connection.has_native_async
        if not self.watchable():
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        else:
            workdir = tempfile.mkdtemp(prefix="directus-promote-progress-")
            path = os.path.join(workdir, "progress.json")
            args = dict(self._task.args, progress_file=path)
            name = self._task.action.rpartition(".")[2]
            if len((task_vars or {}).get("ansible_play_hosts_all") or ()) > 1:
                name = "[%s] %s" % (task_vars.get("inventory_hostname"), name)   # whose progress, among several
            watcher = Watcher(path, interval_of(self._task.args), name)
            watcher.start()
            try:
                module_result = self._execute_module(module_args=args, task_vars=task_vars)
            finally:
                watcher.stop()
                shutil.rmtree(workdir, ignore_errors=True)
            # the result as without the watcher: the invocation shows the task's own arguments
            invocation = module_result.get("invocation")
            if isinstance(invocation, dict) and isinstance(invocation.get("module_args"), dict):
                invocation["module_args"]["progress_file"] = self._task.args.get("progress_file")
            result = merge_hash(result, module_result)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
