# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The molecule scenario extensions/molecule/default, run on the session's sandbox (it rebuilds the fixtures:
pytest runs this directory after tests/integration)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_molecule_scenario_converges_idempotently(sandbox):
    """extensions/molecule/default on the session's sandbox: converge, idempotence, verify."""
    molecule = Path(sys.executable).parent / "molecule"  # pinned in tests/requirements.txt
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_", "MOLECULE_"))}
    env.update(PROMOTE_SANDBOX_DIR=str(sandbox.base_dir), NO_COLOR="1", ANSIBLE_NOCOLOR="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    proc = subprocess.run([str(molecule), "test", "-s", "default"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1100, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    for step in ("converge", "idempotence", "verify"):
        assert re.search(r"default\W+%s\W+Executed: Successful" % step, out), (step, out[-4000:])
