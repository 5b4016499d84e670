# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The e2e harness decides correctly when Directus cannot run (skip with a reason) and where it installs."""

from __future__ import annotations

import threading
import time

from sandbox import directus_app


def _fake_tool(directory, name, output):
    tool = directory / name
    tool.write_text("#!/bin/sh\necho '%s'\n" % output)
    tool.chmod(0o755)


def test_missing_node_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "node is not installed" in directus_app.runtime_problem()


def test_old_node_is_reported(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "node", "v16.20.2")
    _fake_tool(tmp_path, "npm", "8.19.4")
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = directus_app.runtime_problem()
    assert "node 16" in problem and ">= 18" in problem


def test_missing_npm_is_reported(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "node", "v20.11.1")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "npm is not installed" in directus_app.runtime_problem()


def test_supported_node_and_npm_are_accepted(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "node", "v18.19.0")
    _fake_tool(tmp_path, "npm", "9.2.0")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert directus_app.runtime_problem() is None


def test_cache_lives_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("CASPER_DIRECTUS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert directus_app.install_dir() == tmp_path / "casper-directus-promote" / "directus-11.3.5"
    monkeypatch.setenv("CASPER_DIRECTUS_CACHE", str(tmp_path / "elsewhere"))
    assert directus_app.install_dir() == tmp_path / "elsewhere" / "directus-11.3.5"
    assert not directus_app.is_installed()


def test_install_lock_serialises_parallel_runs(tmp_path):
    lock = tmp_path / "directus.lock"
    order = []

    def holder():
        with directus_app._file_lock(lock, 30, order.append):  # pylint: disable=protected-access
            order.append("first in")
            time.sleep(1.5)
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.3)
    with directus_app._file_lock(lock, 30, order.append):  # pylint: disable=protected-access
        order.append("second in")
    thread.join()
    assert order[0] == "first in" and order[-1] == "second in"
    assert order.index("first out") < order.index("second in")
    assert any(str(lock) in entry for entry in order if entry.startswith("waiting"))
