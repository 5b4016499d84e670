"""Fault points: inert without the variable, and each fires once where a test asks for it."""

import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import faults


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    monkeypatch.setattr(faults, "_FIRED", set())


def test_without_the_variable_nothing_happens():
    started = time.monotonic()
    faults.fault_point("copy")
    assert list(faults.faulted_jobs(iter(range(5)), "copy", 2)) == [0, 1, 2, 3, 4]
    assert time.monotonic() - started < 1


def test_wait_holds_the_step_until_the_marker_is_removed_and_fires_once(monkeypatch, tmp_path):
    marker = tmp_path / "waiting"
    monkeypatch.setenv(faults.FAULT_ENV, "copying:wait:%s" % marker)
    seen = []

    def release():
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(marker.read_text())
        marker.unlink()

    helper = threading.Thread(target=release)
    helper.start()
    jobs = list(faults.faulted_jobs(iter("abcde"), "copying", 2))
    helper.join()
    assert jobs == list("abcde")
    assert seen == [str(os.getpid())]  # the marker names the waiting process
    faults.fault_point("copying")  # fired already: returns at once, no marker
    assert not marker.exists()


def test_another_step_is_not_stopped(monkeypatch, tmp_path):
    monkeypatch.setenv(faults.FAULT_ENV, "swap:wait:%s" % (tmp_path / "never"))
    faults.fault_point("swapped")
    faults.fault_point("swa")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("action, code", [("term", -15), ("int", -2), ("kill", -9)])
def test_signals_reach_the_process_itself(action, code):
    script = ("from ansible_collections.casper.directus_promote.plugins.module_utils import faults\n"
              "print('before', flush=True)\nfaults.fault_point('journaled')\nprint('after', flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path),
               **{faults.FAULT_ENV: "journaled:%s" % action})
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.stdout == "before\n"
    assert proc.returncode == code or (action == "int" and proc.returncode == 1 and "KeyboardInterrupt" in proc.stderr)
