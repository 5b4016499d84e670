# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fault points: named steps where a fault-injection test stops a module's own process.

Nothing happens unless the environment variable CASPER_DIRECTUS_PROMOTE_FAULT
is ``<step>:<action>`` (tests/integration set it on the module's process).
Each fault fires once per process: the repair that follows may pass the same step.
"""

from __future__ import annotations

import os
import signal
import time

FAULT_ENV = "CASPER_DIRECTUS_PROMOTE_FAULT"
_FIRED = set()


def fault_point(step):
    """Act at ``step`` when CASPER_DIRECTUS_PROMOTE_FAULT is ``<step>:<action>``.

    Actions: kill/term/int send SIGKILL/SIGTERM/SIGINT to this process; ``wait:<file>`` creates the file and waits
    until the test has removed it (meanwhile the test looks, signals, or changes what the run meets)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted or not wanted.startswith(step + ":") or wanted in _FIRED:
        return
    _FIRED.add(wanted)
    action = wanted[len(step) + 1:]
    if action.startswith("wait:"):
        marker = action[len("wait:"):]
        with open(marker, "w", encoding="utf-8") as out:
            out.write(str(os.getpid()))
        deadline = time.monotonic() + 120
        while os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    signum = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}.get(action)
    if signum is not None:
        os.kill(os.getpid(), signum)
        time.sleep(5)  # a handled signal is raised from inside this sleep


def faulted_jobs(jobs, step, after):
    """Yield ``jobs``, passing fault point ``step`` once ``after`` of them were handed out."""
    if not os.environ.get(FAULT_ENV, "").startswith(step + ":"):
        yield from jobs
        return
    for count, job in enumerate(jobs):
        if count == after:
            fault_point(step)
        yield job
    fault_point(step)  # fewer jobs: once all were handed out
