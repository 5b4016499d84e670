"""The collection's own quality gates, run as part of `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(command, timeout):
    env = dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PYTHON=sys.executable)
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_ansible_test_sanity():
    rc, output = _run(["bash", "tests/tools/sanity.sh"], timeout=1500)
    lines = [line for line in output.splitlines() if "ERROR" in line or "FATAL" in line]
    assert rc == 0, "ansible-test sanity failed:\n" + "\n".join(lines[-60:] or output.splitlines()[-60:])


def test_ansible_lint_production_profile():
    rc, output = _run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor"], timeout=600)
    assert rc == 0, "ansible-lint failed:\n" + output[-6000:]
    assert "Profile 'production' was required" in output or "Passed" in output


def test_changelog_fragments_lint():
    tool = BIN / "antsibull-changelog"
    assert tool.exists() or shutil.which("antsibull-changelog")
    rc, output = _run([str(tool) if tool.exists() else "antsibull-changelog", "lint"], timeout=120)
    assert rc == 0, output
