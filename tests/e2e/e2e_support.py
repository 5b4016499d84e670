# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running playbooks/promote.yml like a user does, and reading its recap."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ansible_bin(name):
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise AssertionError("%s not found next to %s nor on PATH" % (name, sys.executable))
    return found


RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)", re.M)


class PlaybookRun:
    def __init__(self, argv, proc, seconds):
        self.argv, self.rc, self.stdout, self.stderr, self.seconds = argv, proc.returncode, proc.stdout, proc.stderr, seconds
        self.recap = {m.group("host"): {k: int(m.group(k)) for k in ("ok", "changed", "unreachable", "failed")}
                      for m in RECAP.finditer(self.stdout)}

    @property
    def changed(self):
        return sum(h["changed"] for h in self.recap.values())

    @property
    def failed(self):
        return sum(h["failed"] + h["unreachable"] for h in self.recap.values())

    def changed_tasks(self):
        """Names of the tasks that reported 'changed' (from the default callback's output)."""
        tasks, current = [], None
        for line in self.stdout.splitlines():
            if line.startswith("TASK ["):
                current = line[6:line.rfind("]")]
            elif line.startswith("changed:") and current:
                tasks.append(current)
        return tasks

    def tail(self, chars=12000):
        return "$ %s\n(rc=%s, %.1f s)\n%s\n--- stderr ---\n%s" % (
            " ".join(self.argv), self.rc, self.seconds, self.stdout[-chars:], self.stderr[-3000:])


def run_playbook(sandbox, inventories, *args, extra_env=None, timeout=900, playbook="playbooks/promote.yml"):
    """ansible-playbook playbooks/promote.yml (or another playbook) from the repository root, the way users run it.

    AWS_* variables of the test process are removed: the inventory alone must be enough.
    """
    argv = [ansible_bin("ansible-playbook"), playbook]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    argv += list(args)
    env = {k: v for k, v in sandbox.ansible_env().items() if not k.startswith("AWS_")}
    env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "PYTHONUNBUFFERED": "1"})
    env.pop("ANSIBLE_INVENTORY", None)
    env.update(extra_env or {})
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookRun(argv, proc, time.monotonic() - started)
