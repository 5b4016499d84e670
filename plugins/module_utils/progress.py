# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Live progress of a module's long phases (docs/progress.md).

The module side: a Reporter that the module code tells what it does (``start``), how far it got
(``advance``) and that it is done (``finish``). It writes a JSON snapshot of that, atomically and at
most once per WRITE_EVERY seconds, to the file the collection's action plugin named in the module
option ``progress_file``; without one it does nothing. The action plugin reads the file and prints
``progress_line`` of it at most every ``progress_interval`` seconds.

The formatting functions are pure (the action plugin and the unit tests call them with a snapshot
and a time).
"""

from __future__ import annotations

import json
import os
import threading
import time

#: the module writes its snapshot at most this often (seconds)
WRITE_EVERY = 1.0
DEFAULT_INTERVAL = 10


def progress_argument_spec():
    """The options of the doc fragment casper.directus_promote.progress."""
    return dict(
        progress_interval=dict(type="float", default=DEFAULT_INTERVAL),
        progress_file=dict(type="path"),
    )


class Reporter:
    """What a module is doing, as a snapshot file; a no-op without a path. Thread-safe."""

    def __init__(self, path=None, clock=time.monotonic, wall=time.time, write_every=WRITE_EVERY):
        self.path = path or None
        self.clock = clock
        self.wall = wall
        self.write_every = write_every
        self.lock = threading.Lock()
        self.state = None
        self.started = None       # clock() at start
        self.last_write = None    # clock() at the last write
        self.seq = 0
        self.writes = 0

    @property
    def enabled(self):
        return self.path is not None

    def start(self, phase, total=None, unit="items", total_bytes=None, detail=None):
        """A new phase: ``total`` units (None: unknown) and, when known, ``total_bytes``."""
        if not self.enabled:
            return
        with self.lock:
            self.started = self.clock()
            self.state = {"phase": phase, "unit": unit, "done": 0, "total": total, "bytes_done": 0,
                          "bytes_total": total_bytes, "detail": detail, "started": self.wall(), "active": True}
            self._write()

    def advance(self, items=0, nbytes=0, detail=None):
        """``items`` more units done (and ``nbytes`` more bytes)."""
        if not self.enabled or self.state is None:
            return
        with self.lock:
            self.state["done"] += items
            self.state["bytes_done"] += nbytes
            if detail is not None:
                self.state["detail"] = detail
            self._maybe_write()

    def update(self, done=None, total=None, detail=None):
        """Set the count done (or the total, or the detail) outright."""
        if not self.enabled or self.state is None:
            return
        with self.lock:
            for key, value in (("done", done), ("total", total), ("detail", detail)):
                if value is not None:
                    self.state[key] = value
            self._maybe_write()

    def finish(self):
        """The phase is over: nothing is shown until the next ``start``."""
        if not self.enabled or self.state is None:
            return
        with self.lock:
            self.state["active"] = False
            self._write()

    def snapshot(self):
        if self.state is None:
            return None
        snap = dict(self.state)
        snap["elapsed"] = round(self.clock() - self.started, 3)
        snap["seq"] = self.seq
        return snap

    def _maybe_write(self):
        if self.last_write is None or self.clock() - self.last_write >= self.write_every:
            self._write()

    def _write(self):
        self.seq += 1
        self.last_write = self.clock()
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump(self.snapshot(), out)
            os.replace(tmp, self.path)
            self.writes += 1
        except OSError:
            # progress is a courtesy: a vanished directory (the task ended) never fails the module
            pass


def reporter(params):
    """The Reporter for a module's parameters (``progress_file``)."""
    return Reporter(params.get("progress_file"))


# --------------------------------------------------------------------------- formatting (pure)

def format_count(value):
    if value is None:
        return "?"
    if isinstance(value, float) and not value.is_integer():
        return "{0:,.1f}".format(value)
    return "{0:,}".format(int(value))


def format_bytes(value):
    if value is None:
        return "?"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%.1f TiB" % value  # pragma: no cover - the loop returns


def format_duration(seconds):
    seconds = int(round(max(0, seconds)))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    hours, rest = divmod(seconds, 3600)
    return "%dh%02dm" % (hours, rest // 60)


def format_rate(per_second):
    if per_second >= 100:
        return format_count(int(round(per_second)))
    return "%.1f" % per_second


def measures(snapshot, now):
    """Elapsed seconds, rates (units and bytes per second, over the whole phase so far) and the ETA in
    seconds (None when unknown) of a snapshot, seen at wall time ``now``. A phase that stalls shows a
    falling rate and a growing ETA, not an ETA that runs out."""
    elapsed = max(0.0, now - snapshot["started"])
    span = max(elapsed, 1e-3)
    rate = max(0, snapshot.get("done") or 0) / span
    byte_rate = max(0, snapshot.get("bytes_done") or 0) / span
    eta = None
    if snapshot.get("bytes_total") and byte_rate > 0:
        eta = max(0.0, (snapshot["bytes_total"] - snapshot["bytes_done"]) / byte_rate)
    elif snapshot.get("total") and rate > 0:
        eta = max(0.0, (snapshot["total"] - snapshot["done"]) / rate)
    return {"elapsed": elapsed, "rate": rate, "byte_rate": byte_rate, "eta": eta}


def progress_line(snapshot, now, name=None):
    """One line: what the module does, done of total (and bytes), rate, elapsed time and ETA."""
    got = measures(snapshot, now)
    unit = snapshot.get("unit")
    parts = []
    if unit:
        count = "%s/%s %s" % (format_count(snapshot["done"]), format_count(snapshot.get("total")), unit)
        if snapshot.get("total"):
            count += " (%d%%)" % min(100, int(100 * snapshot["done"] / snapshot["total"]))
        parts.append(count)
    if snapshot.get("bytes_total"):
        part = "%s/%s" % (format_bytes(snapshot["bytes_done"]), format_bytes(snapshot["bytes_total"]))
        if not (unit and snapshot.get("total")):
            part += " (%d%%)" % min(100, int(100 * snapshot["bytes_done"] / snapshot["bytes_total"]))
        parts.append(part)
    if unit and got["rate"]:
        parts.append("%s %s/s" % (format_rate(got["rate"]), unit))
    if snapshot.get("bytes_total") and got["byte_rate"]:
        parts.append("%s/s" % format_bytes(got["byte_rate"]))
    parts.append("%s elapsed" % format_duration(got["elapsed"]))
    if got["eta"] is not None:
        parts.append("ETA %s" % format_duration(got["eta"]))
    head = snapshot["phase"]
    if snapshot.get("detail"):
        head += " (%s)" % snapshot["detail"]
    return "%s%s: %s" % ("%s: " % name if name else "", head, ", ".join(parts))
